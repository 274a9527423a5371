//! omq.rs (crate `omq-tokio`, on its sans-IO core `omq-proto`), the pure-Rust peer that issue
//! 14 measured zeroring against: the same PUSH→PULL and REQ/REP workloads as the other
//! subjects, each side driving its socket from a current-thread tokio runtime of its own (the
//! way issue 14 ran it, and the way its own benchmarks run by default), options at their
//! defaults (high-water marks of 1,000 as libzmq's, its small-message arena on).
//!
//! Owns: the omq.rs workload code and its one quirk: a socket's LINGER defaults to zero (not
//! libzmq's forever), so a sender sets it to forever and closes its socket, which waits until
//! the queue is written. Must never: time the connection, or reuse one payload buffer across
//! messages.

use ::omq_tokio::{Message, Options, Socket, SocketType};

use super::*;

fn zerr(e: ::omq_tokio::Error) -> io::Error {
    io::Error::other(format!("omq.rs: {e}"))
}

/// A fresh copy of the payload per message, as the other subjects send (small bodies go
/// inline in the `Message`, larger ones into an allocation of their own).
fn message(body: &[u8]) -> Message {
    Message::from_slice(body)
}

/// A sending socket's options: LINGER forever, so that closing it delivers what is queued,
/// as libzmq's default does.
fn sender_options() -> Options {
    Options::default().linger_forever()
}

/// Binds to loopback tcp on a free port, a fresh ipc path or an inproc name, and returns the
/// endpoint the peer connects to.
async fn bind(s: &Socket, t: Transport, tag: &str) -> io::Result<(String, IpcFile)> {
    let (ep, file) = match t {
        Transport::Tcp => ("tcp://127.0.0.1:0".to_string(), IpcFile(None)),
        Transport::Ipc => {
            let p = ipc_path(tag);
            (format!("ipc://{}", p.display()), IpcFile(Some(p)))
        }
        // One name per socket: omq.rs's inproc names are process-wide, and rounds run one
        // after another in one process when asked to (`--shared-process`).
        Transport::Inproc => (format!("inproc://{}", unique_name(tag)), IpcFile(None)),
    };
    let resolved = s.bind(ep.as_str()).await.map_err(zerr)?;
    Ok((resolved.to_string(), file))
}

/// Waits for the next message, failing the run after [`PEER_SILENCE_MS`] of silence.
async fn recv(s: &Socket) -> io::Result<Message> {
    match tokio::time::timeout(Duration::from_millis(PEER_SILENCE_MS as u64), s.recv()).await {
        Ok(r) => r.map_err(zerr),
        Err(e) => Err(io::Error::new(io::ErrorKind::TimedOut, e.to_string())),
    }
}

/// The measuring side of either workload: a socket bound on a runtime of its own.
struct Bound {
    rt: tokio::runtime::Runtime,
    sock: Socket,
    endpoint: String,
    _ipc: IpcFile,
    p: Params,
}

/// Creates a socket of `socket_type` on a new runtime and binds it for `p.transport`.
fn bound(socket_type: SocketType, p: Params, tag: &str) -> io::Result<Bound> {
    let rt = current_thread_runtime()?;
    let (sock, endpoint, _ipc) = rt.block_on(async {
        let sock = Socket::new(socket_type, Options::default());
        let (ep, f) = bind(&sock, p.transport, tag).await?;
        Ok::<_, io::Error>((sock, ep, f))
    })?;
    Ok(Bound {
        rt,
        sock,
        endpoint,
        _ipc,
        p,
    })
}

struct Thr(Bound);

impl ThrReceiver for Thr {
    fn endpoint(&self) -> String {
        self.0.endpoint.clone()
    }
    fn run(&mut self) -> io::Result<Duration> {
        let (sock, count) = (&self.0.sock, self.0.p.count);
        self.0.rt.block_on(async move {
            // The first message waits for the sender's connection: not timed.
            recv(sock).await.map_err(|e| short(0, count, e))?;
            let start = Instant::now();
            for i in 1..count {
                recv(sock).await.map_err(|e| short(i, count, e))?;
            }
            Ok(start.elapsed())
        })
    }
    fn spawn_local_sender(&mut self) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
        let (ep, p) = (self.0.endpoint.clone(), self.0.p);
        Ok(std::thread::spawn(move || send_all(&ep, p, || {})))
    }
}

/// Sends the run's messages from a runtime of this thread's own; `received` runs (off the
/// runtime's thread, which keeps delivering meanwhile) before the socket closes.
fn send_all(endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
    current_thread_runtime()?.block_on(async {
        let s = Socket::new(SocketType::Push, sender_options());
        s.connect(endpoint).await.map_err(zerr)?;
        let body = vec![0x5Au8; p.size];
        for _ in 0..p.count {
            s.send(message(&body)).await.map_err(zerr)?;
        }
        let _ = tokio::task::spawn_blocking(received).await;
        s.close().await.map_err(zerr)
    })
}

pub(super) fn thr_receiver(p: Params) -> io::Result<Box<dyn ThrReceiver>> {
    Ok(Box::new(Thr(bound(SocketType::Pull, p, "thr")?)))
}

pub(super) fn thr_sender(endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
    send_all(endpoint, p, received)
}

struct Lat(Bound);

impl LatClient for Lat {
    fn endpoint(&self) -> String {
        self.0.endpoint.clone()
    }
    fn run(&mut self, warmup: u64, hist: &mut Histogram<u64>) -> io::Result<()> {
        let (sock, p) = (&self.0.sock, self.0.p);
        self.0.rt.block_on(async move {
            let body = vec![0x5Au8; p.size];
            for i in 0..warmup + p.count {
                let t = Instant::now();
                // A REQ with no peer yet waits (as libzmq's does): the first request waits
                // for the echo's connection, and is a warm-up one.
                sock.send(message(&body)).await.map_err(zerr)?;
                recv(sock).await?;
                if i >= warmup {
                    record(hist, t);
                }
            }
            Ok(())
        })
    }
    fn spawn_local_echo(
        &mut self,
        total: u64,
    ) -> io::Result<std::thread::JoinHandle<io::Result<()>>> {
        let ep = self.0.endpoint.clone();
        Ok(std::thread::spawn(move || echo(&ep, total)))
    }
}

pub(super) fn lat_client(p: Params) -> io::Result<Box<dyn LatClient>> {
    Ok(Box::new(Lat(bound(SocketType::Req, p, "lat")?)))
}

fn echo(endpoint: &str, total: u64) -> io::Result<()> {
    current_thread_runtime()?.block_on(async {
        let s = Socket::new(SocketType::Rep, sender_options());
        s.connect(endpoint).await.map_err(zerr)?;
        for _ in 0..total {
            // The request itself goes back (moved, not copied), as the other echoes do.
            let m = recv(&s).await?;
            s.send(m).await.map_err(zerr)?;
        }
        s.close().await.map_err(zerr)
    })
}

pub(super) fn lat_echo(endpoint: &str, _p: Params, total: u64) -> io::Result<()> {
    echo(endpoint, total)
}
