//! libzmq 4.3 through the `zmq` crate (feature `libzmq`), the reference: the same PUSH→PULL
//! and REQ/REP workloads, options as the other subjects set them. Must never: time the
//! connection, or reuse one payload buffer across messages where the others copy a fresh one.

use super::*;

fn ctx(p: Params) -> io::Result<zmq::Context> {
    let c = zmq::Context::new();
    c.set_io_threads(p.io_threads).map_err(zerr)?;
    Ok(c)
}

fn zerr(e: zmq::Error) -> io::Error {
    io::Error::other(format!("libzmq: {e}"))
}

fn bind(s: &zmq::Socket, t: Transport, tag: &str) -> io::Result<(String, IpcFile)> {
    bind_endpoint(
        t,
        tag,
        |ep| s.bind(ep).map_err(zerr),
        || {
            s.get_last_endpoint()
                .map_err(zerr)?
                .map_err(|_| io::Error::other("endpoint"))
        },
    )
}

struct Thr {
    ctx: zmq::Context,
    sock: zmq::Socket,
    endpoint: String,
    _ipc: IpcFile,
    p: Params,
}

impl ThrReceiver for Thr {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
    fn run(&mut self) -> io::Result<Duration> {
        let mut msg = zmq::Message::new();
        self.sock.set_rcvtimeo(PEER_SILENCE_MS).map_err(zerr)?;
        self.sock
            .recv(&mut msg, 0)
            .map_err(|e| short(0, self.p.count, e))?;
        let start = Instant::now();
        for i in 1..self.p.count {
            self.sock
                .recv(&mut msg, 0)
                .map_err(|e| short(i, self.p.count, e))?;
        }
        Ok(start.elapsed())
    }
    fn spawn_local_sender(&mut self) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
        let (ctx, ep, p) = (self.ctx.clone(), self.endpoint.clone(), self.p);
        Ok(std::thread::spawn(move || send_all(&ctx, &ep, p, || {})))
    }
}

/// Sends the run's messages; `received` runs before the socket closes.
fn send_all(ctx: &zmq::Context, endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
    let s = ctx.socket(zmq::PUSH).map_err(zerr)?;
    s.connect(endpoint).map_err(zerr)?;
    let body = vec![0x5Au8; p.size];
    for _ in 0..p.count {
        s.send(&body[..], 0).map_err(zerr)?;
    }
    received();
    Ok(())
}

pub(super) fn thr_receiver(p: Params) -> io::Result<Box<dyn ThrReceiver>> {
    let ctx = ctx(p)?;
    let sock = ctx.socket(zmq::PULL).map_err(zerr)?;
    let (endpoint, _ipc) = bind(&sock, p.transport, "thr")?;
    Ok(Box::new(Thr {
        ctx,
        sock,
        endpoint,
        _ipc,
        p,
    }))
}

pub(super) fn thr_sender(endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
    let ctx = ctx(p)?;
    send_all(&ctx, endpoint, p, received)
    // Dropping the context lingers until every message is delivered (LINGER -1).
}

struct Lat {
    ctx: zmq::Context,
    sock: zmq::Socket,
    endpoint: String,
    _ipc: IpcFile,
    p: Params,
}

impl LatClient for Lat {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
    fn run(&mut self, warmup: u64, hist: &mut Histogram<u64>) -> io::Result<()> {
        let body = vec![0x5Au8; self.p.size];
        let mut reply = zmq::Message::new();
        for i in 0..warmup + self.p.count {
            let t = Instant::now();
            self.sock.send(&body[..], 0).map_err(zerr)?;
            self.sock.recv(&mut reply, 0).map_err(zerr)?;
            if i >= warmup {
                record(hist, t);
            }
        }
        Ok(())
    }
    fn spawn_local_echo(
        &mut self,
        total: u64,
    ) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
        let (ctx, ep) = (self.ctx.clone(), self.endpoint.clone());
        Ok(std::thread::spawn(move || echo(&ctx, &ep, total)))
    }
}

fn echo(ctx: &zmq::Context, endpoint: &str, total: u64) -> io::Result<()> {
    let s = ctx.socket(zmq::REP).map_err(zerr)?;
    s.connect(endpoint).map_err(zerr)?;
    for _ in 0..total {
        // The request itself goes back (moved, not copied), as the zeroring echo does.
        let mut msg = zmq::Message::new();
        s.recv(&mut msg, 0).map_err(zerr)?;
        s.send(msg, 0).map_err(zerr)?;
    }
    Ok(())
}

pub(super) fn lat_client(p: Params) -> io::Result<Box<dyn LatClient>> {
    let ctx = ctx(p)?;
    let sock = ctx.socket(zmq::REQ).map_err(zerr)?;
    let (endpoint, _ipc) = bind(&sock, p.transport, "lat")?;
    Ok(Box::new(Lat {
        ctx,
        sock,
        endpoint,
        _ipc,
        p,
    }))
}

pub(super) fn lat_echo(endpoint: &str, p: Params, total: u64) -> io::Result<()> {
    let ctx = ctx(p)?;
    echo(&ctx, endpoint, total)
}
