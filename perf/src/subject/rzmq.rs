//! rzmq (crate `rzmq`), the second pure-Rust peer: libzmq-like sockets driven by tokio
//! actors. Same PUSH→PULL and REQ/REP workloads as the other subjects, each side on a
//! current-thread tokio runtime of its own, its default (non-io_uring) session path.
//!
//! Owns: the rzmq workload code. Must never: time the connection, or reuse one payload
//! buffer across messages.

use ::rzmq::socket::options::{LAST_ENDPOINT, RCVTIMEO};
use ::rzmq::{Context, Msg, Socket, SocketType};

use super::*;

fn zerr(e: ::rzmq::ZmqError) -> io::Error {
    io::Error::other(format!("rzmq: {e}"))
}

/// A fresh copy of the payload, as the other subjects send.
fn message(body: &[u8]) -> Msg {
    Msg::from_vec(body.to_vec())
}

async fn bind(s: &Socket, t: Transport, tag: &str) -> io::Result<(String, IpcFile)> {
    let (ep, file) = match t {
        Transport::Tcp => ("tcp://127.0.0.1:0".to_string(), IpcFile(None)),
        Transport::Ipc => {
            let p = ipc_path(tag);
            (format!("ipc://{}", p.display()), IpcFile(Some(p)))
        }
        Transport::Inproc => return Err(unsupported("rzmq inproc: not measured")),
    };
    s.bind(&ep).await.map_err(zerr)?;
    let last = s.get_option(LAST_ENDPOINT).await.map_err(zerr)?;
    let last = String::from_utf8(last).map_err(|_| io::Error::other("endpoint"))?;
    Ok((if last.is_empty() { ep } else { last }, file))
}

struct Thr {
    rt: tokio::runtime::Runtime,
    _ctx: Context,
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
        let (sock, count) = (&self.sock, self.p.count);
        self.rt.block_on(async move {
            sock.set_option(RCVTIMEO, PEER_SILENCE_MS)
                .await
                .map_err(zerr)?;
            sock.recv().await.map_err(|e| short(0, count, e))?;
            let start = Instant::now();
            for i in 1..count {
                sock.recv().await.map_err(|e| short(i, count, e))?;
            }
            Ok(start.elapsed())
        })
    }
}

pub(super) fn thr_receiver(p: Params) -> io::Result<Box<dyn ThrReceiver>> {
    let rt = current_thread_runtime()?;
    let (ctx, sock, endpoint, _ipc) = rt.block_on(async {
        let ctx = Context::new().map_err(zerr)?;
        let sock = ctx.socket(SocketType::Pull).map_err(zerr)?;
        let (ep, f) = bind(&sock, p.transport, "thr").await?;
        Ok::<_, io::Error>((ctx, sock, ep, f))
    })?;
    Ok(Box::new(Thr {
        rt,
        _ctx: ctx,
        sock,
        endpoint,
        _ipc,
        p,
    }))
}

pub(super) fn thr_sender(endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
    current_thread_runtime()?.block_on(async {
        let ctx = Context::new().map_err(zerr)?;
        let s = ctx.socket(SocketType::Push).map_err(zerr)?;
        s.connect(endpoint).await.map_err(zerr)?;
        let body = vec![0x5Au8; p.size];
        for _ in 0..p.count {
            s.send(message(&body)).await.map_err(zerr)?;
        }
        // Off the runtime's thread, which keeps delivering meanwhile.
        let _ = tokio::task::spawn_blocking(received).await;
        // LINGER is -1 by default (blocky context): term waits until everything is delivered.
        s.close().await.map_err(zerr)?;
        ctx.term().await.map_err(zerr)
    })
}

struct Lat {
    rt: tokio::runtime::Runtime,
    _ctx: Context,
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
        let (sock, p) = (&self.sock, self.p);
        self.rt.block_on(async move {
            sock.set_option(RCVTIMEO, PEER_SILENCE_MS)
                .await
                .map_err(zerr)?;
            let body = vec![0x5Au8; p.size];
            for i in 0..warmup + p.count {
                let t = Instant::now();
                sock.send(message(&body)).await.map_err(zerr)?;
                sock.recv().await.map_err(zerr)?;
                if i >= warmup {
                    record(hist, t);
                }
            }
            Ok(())
        })
    }
}

pub(super) fn lat_client(p: Params) -> io::Result<Box<dyn LatClient>> {
    let rt = current_thread_runtime()?;
    let (ctx, sock, endpoint, _ipc) = rt.block_on(async {
        let ctx = Context::new().map_err(zerr)?;
        let sock = ctx.socket(SocketType::Req).map_err(zerr)?;
        let (ep, f) = bind(&sock, p.transport, "lat").await?;
        Ok::<_, io::Error>((ctx, sock, ep, f))
    })?;
    Ok(Box::new(Lat {
        rt,
        _ctx: ctx,
        sock,
        endpoint,
        _ipc,
        p,
    }))
}

pub(super) fn lat_echo(endpoint: &str, _p: Params, total: u64) -> io::Result<()> {
    current_thread_runtime()?.block_on(async {
        let ctx = Context::new().map_err(zerr)?;
        let s = ctx.socket(SocketType::Rep).map_err(zerr)?;
        s.connect(endpoint).await.map_err(zerr)?;
        for _ in 0..total {
            // The request itself goes back (moved, not copied), as the other echoes do.
            let m = s.recv().await.map_err(zerr)?;
            s.send(m).await.map_err(zerr)?;
        }
        s.close().await.map_err(zerr)?;
        ctx.term().await.map_err(zerr)
    })
}
