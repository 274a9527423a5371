//! zeroring's sockets: the same PUSH→PULL and REQ/REP workloads through the blocking
//! `Socket`. Must never: time the connection, or reuse one payload buffer across messages where
//! the others copy a fresh one.

use super::*;
use zeroring::{Context, Socket, SocketType};

fn ctx(p: Params) -> io::Result<Context> {
    let c = Context::new();
    c.set_io_threads(p.io_threads).map_err(zerr)?;
    Ok(c)
}

fn zerr(e: zeroring::Error) -> io::Error {
    io::Error::other(format!("zeroring: {e}"))
}

/// Fixed benchmark keys: the binding (measuring) side is the CURVE server, its peer
/// the client. Both processes derive the same pairs.
const SERVER_SECRET: [u8; 32] = [0x5e; 32];
const CLIENT_SECRET: [u8; 32] = [0xc1; 32];

fn secure(s: &Socket, p: Params, server: bool) -> io::Result<()> {
    if p.mechanism != Mechanism::Curve {
        return Ok(());
    }
    let public = |secret: [u8; 32]| {
        let z = zeroring::transports::z85::encode(&secret).map_err(|_| io::Error::other("z85"))?;
        zeroring::curve_public(&z).map_err(zerr)
    };
    if server {
        s.set_curve_server(true).map_err(zerr)?;
        s.set_curve_secretkey(SERVER_SECRET).map_err(zerr)?;
    } else {
        s.set_curve_serverkey(public(SERVER_SECRET)?)
            .map_err(zerr)?;
        s.set_curve_publickey(public(CLIENT_SECRET)?)
            .map_err(zerr)?;
        s.set_curve_secretkey(CLIENT_SECRET).map_err(zerr)?;
    }
    Ok(())
}

fn bind(s: &Socket, t: Transport, tag: &str) -> io::Result<(String, IpcFile)> {
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
    ctx: Context,
    sock: Socket,
    endpoint: String,
    _ipc: IpcFile,
    p: Params,
}

impl ThrReceiver for Thr {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
    fn run(&mut self) -> io::Result<Duration> {
        // One reused part, as libzmq's subject (and local_thr) receive.
        let mut msg = zeroring::Msg::new();
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
fn send_all(ctx: &Context, endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
    let s = ctx.socket(SocketType::Push).map_err(zerr)?;
    // Deliver everything before the process ends, as libzmq's default linger does.
    s.set_linger(-1).map_err(zerr)?;
    secure(&s, p, false)?;
    s.connect(endpoint).map_err(zerr)?;
    let body = vec![0x5Au8; p.size];
    for _ in 0..p.count {
        // A fresh copy of the payload per message, as applications send (and as the
        // libzmq subject's `send(&[u8])` does): small bodies go inline, larger ones are
        // copied into an allocation of their own.
        s.send(&body[..], 0).map_err(zerr)?;
    }
    received();
    Ok(())
}

pub(super) fn thr_receiver(p: Params) -> io::Result<Box<dyn ThrReceiver>> {
    let ctx = ctx(p)?;
    let sock = ctx.socket(SocketType::Pull).map_err(zerr)?;
    secure(&sock, p, true)?;
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
    send_all(&ctx, endpoint, p, received)?;
    // Context drop waits for LINGER: every message is delivered before the process exits.
    ctx.term();
    Ok(())
}

struct Lat {
    ctx: Context,
    sock: Socket,
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
        for i in 0..warmup + self.p.count {
            let t = Instant::now();
            // A fresh copy per request, as the libzmq subject sends.
            self.sock.send(&body[..], 0).map_err(zerr)?;
            self.sock.recv_msg(0).map_err(zerr)?;
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
        let (ctx, ep, p) = (self.ctx.clone(), self.endpoint.clone(), self.p);
        Ok(std::thread::spawn(move || echo(&ctx, &ep, p, total)))
    }
}

fn echo(ctx: &Context, endpoint: &str, p: Params, total: u64) -> io::Result<()> {
    let s = ctx.socket(SocketType::Rep).map_err(zerr)?;
    s.set_linger(-1).map_err(zerr)?;
    secure(&s, p, false)?;
    s.connect(endpoint).map_err(zerr)?;
    for _ in 0..total {
        let m = s.recv_msg(0).map_err(zerr)?;
        s.send_msg(m, 0).map_err(zerr)?;
    }
    Ok(())
}

pub(super) fn lat_client(p: Params) -> io::Result<Box<dyn LatClient>> {
    let ctx = ctx(p)?;
    let sock = ctx.socket(SocketType::Req).map_err(zerr)?;
    secure(&sock, p, true)?;
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
    echo(&ctx, endpoint, p, total)?;
    ctx.term();
    Ok(())
}
