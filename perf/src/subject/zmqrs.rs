//! zmq.rs (crate `zeromq`), the pure-Rust peer: the same PUSH→PULL and REQ/REP workloads
//! as the other subjects, each side driving its socket from a current-thread tokio runtime of
//! its own (the way an application embeds it, and the way issue 14 measures omq.rs).
//!
//! Owns: the zmq.rs workload code and its two quirks — a send with no peer fails instead of
//! waiting, and a dropped socket does not linger (see [`linger`]). Must never: time the
//! connection or the wait for the peer, or reuse one payload buffer across messages.

use futures::channel::mpsc;
use futures::StreamExt as _;
use zeromq::prelude::*;
use zeromq::{PullSocket, PushSocket, RepSocket, ReqSocket, SocketEvent, ZmqMessage};

use super::*;

fn zerr(e: zeromq::ZmqError) -> io::Error {
    io::Error::other(format!("zmq.rs: {e}"))
}

/// A fresh copy of the payload, as the other subjects send (`ZmqMessage` owns a `Bytes`).
fn message(body: &[u8]) -> ZmqMessage {
    ZmqMessage::from(body.to_vec())
}

/// Binds to loopback tcp on a free port or a fresh ipc path and returns the endpoint the
/// peer connects to. (zmq.rs takes port 0 where libzmq takes `*`, hence not `bind_endpoint`.)
async fn bind(s: &mut impl Socket, t: Transport, tag: &str) -> io::Result<(String, IpcFile)> {
    match t {
        Transport::Tcp => {
            let ep = s.bind("tcp://127.0.0.1:0").await.map_err(zerr)?;
            Ok((ep.to_string(), IpcFile(None)))
        }
        Transport::Ipc => {
            let p = ipc_path(tag);
            let ep = s
                .bind(&format!("ipc://{}", p.display()))
                .await
                .map_err(zerr)?;
            Ok((ep.to_string(), IpcFile(Some(p))))
        }
        Transport::Inproc => Err(unsupported("zmq.rs has no inproc transport")),
    }
}

/// Waits for a reply or message, failing the run after [`PEER_SILENCE_MS`] of silence.
async fn recv(s: &mut impl SocketRecv) -> io::Result<ZmqMessage> {
    match tokio::time::timeout(Duration::from_millis(PEER_SILENCE_MS as u64), s.recv()).await {
        Ok(r) => r.map_err(zerr),
        Err(e) => Err(io::Error::new(io::ErrorKind::TimedOut, e.to_string())),
    }
}

/// zmq.rs has no LINGER: `send` only queues the message for a writer task, and dropping the
/// socket ends that task once its queue is drained — but only while the runtime still runs.
/// So the socket is dropped and the runtime kept turning until every task it spawned is done
/// (bounded, in case a peer stops reading), before the process may exit.
async fn linger(socket: impl Socket) {
    drop(socket);
    let deadline = Instant::now() + Duration::from_millis(PEER_SILENCE_MS as u64);
    let metrics = tokio::runtime::Handle::current().metrics();
    while metrics.num_alive_tasks() > 0 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

struct Thr {
    rt: tokio::runtime::Runtime,
    sock: PullSocket,
    endpoint: String,
    _ipc: IpcFile,
    p: Params,
}

impl ThrReceiver for Thr {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
    fn run(&mut self) -> io::Result<Duration> {
        let (sock, count) = (&mut self.sock, self.p.count);
        self.rt.block_on(async move {
            // The first message waits for the sender's connection: not timed.
            recv(sock).await.map_err(|e| short(0, count, e))?;
            let start = Instant::now();
            for i in 1..count {
                recv(sock).await.map_err(|e| short(i, count, e))?;
            }
            Ok(start.elapsed())
        })
    }
}

pub(super) fn thr_receiver(p: Params) -> io::Result<Box<dyn ThrReceiver>> {
    let rt = current_thread_runtime()?;
    let mut sock = PullSocket::new();
    let (endpoint, _ipc) = rt.block_on(bind(&mut sock, p.transport, "thr"))?;
    Ok(Box::new(Thr {
        rt,
        sock,
        endpoint,
        _ipc,
        p,
    }))
}

pub(super) fn thr_sender(endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
    current_thread_runtime()?.block_on(async {
        let mut s = PushSocket::new();
        // Returns once the handshake is done, so the first send has its peer.
        s.connect(endpoint).await.map_err(zerr)?;
        let body = vec![0x5Au8; p.size];
        for _ in 0..p.count {
            s.send(message(&body)).await.map_err(zerr)?;
        }
        // Off the runtime's thread, which keeps delivering meanwhile.
        let _ = tokio::task::spawn_blocking(received).await;
        linger(s).await;
        Ok(())
    })
}

struct Lat {
    rt: tokio::runtime::Runtime,
    sock: ReqSocket,
    /// The REQ socket's monitor: says when the echo has connected.
    events: mpsc::Receiver<SocketEvent>,
    endpoint: String,
    _ipc: IpcFile,
    p: Params,
}

impl LatClient for Lat {
    fn endpoint(&self) -> String {
        self.endpoint.clone()
    }
    fn run(&mut self, warmup: u64, hist: &mut Histogram<u64>) -> io::Result<()> {
        let (sock, events, p) = (&mut self.sock, &mut self.events, self.p);
        self.rt.block_on(async move {
            // A REQ send with no peer fails rather than waits: wait for the echo to connect.
            let connected = async {
                loop {
                    match events.next().await {
                        Some(SocketEvent::Accepted(..)) => return Ok(()),
                        Some(_) => continue,
                        None => return Err(io::Error::other("zmq.rs: monitor closed")),
                    }
                }
            };
            tokio::time::timeout(Duration::from_millis(PEER_SILENCE_MS as u64), connected)
                .await
                .map_err(|e| io::Error::new(io::ErrorKind::TimedOut, e.to_string()))??;
            let body = vec![0x5Au8; p.size];
            for i in 0..warmup + p.count {
                let t = Instant::now();
                sock.send(message(&body)).await.map_err(zerr)?;
                recv(sock).await?;
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
    let mut sock = ReqSocket::new();
    let events = sock.monitor();
    let (endpoint, _ipc) = rt.block_on(bind(&mut sock, p.transport, "lat"))?;
    Ok(Box::new(Lat {
        rt,
        sock,
        events,
        endpoint,
        _ipc,
        p,
    }))
}

pub(super) fn lat_echo(endpoint: &str, _p: Params, total: u64) -> io::Result<()> {
    current_thread_runtime()?.block_on(async {
        let mut s = RepSocket::new();
        s.connect(endpoint).await.map_err(zerr)?;
        for _ in 0..total {
            // The request itself goes back (moved, not copied), as the other echoes do.
            let m = recv(&mut s).await?;
            s.send(m).await.map_err(zerr)?;
        }
        linger(s).await;
        Ok(())
    })
}
