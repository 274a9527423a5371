//! Engine behaviour beyond the echo path, on both backends: the provided-buffer ring running
//! dry and recovering, connect (success and refusal), zero-copy send and close, and shutdown
//! with operations in flight.

#![cfg(not(loom))]

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixStream;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use common::{backends, engine, payload, wait_until, EchoListener};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use zeroring_engine::{BufPoolConfig, Completion, Cx, Handler, Op, OpId, SendBuf, SharedFd};

const LIMIT: Duration = Duration::from_secs(30);

/// Hands a copy of every received chunk to the test thread.
struct Forward {
    fd: SharedFd,
    tx: mpsc::Sender<Bytes>,
}

impl Handler for Forward {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        cx.submit(Op::Recv {
            fd: self.fd.clone(),
        });
    }
    fn on_completion(&mut self, cx: &mut Cx<'_>, _: OpId, c: Completion<'_>, more: bool) {
        if let Completion::Received(Ok(b)) = c {
            // The slice is the pool's buffer, lent for this call only.
            let _ = self.tx.send(Bytes::copy_from_slice(b));
        }
        if !more {
            cx.close();
        }
    }
}

/// A pool of four 4 KiB buffers carries 256 KiB intact while the test thread holds every
/// chunk it was given: a buffer goes back to the pool when its completion has been handled,
/// whatever the receiver keeps, so the pool never stays dry. (When the kernel fills all four
/// before the thread reaps them, the receive parks and is re-armed: the counters say so.)
#[test]
fn provided_ring_recovers_after_running_dry() {
    for choice in backends() {
        let engine = engine(
            choice,
            BufPoolConfig {
                count: 4,
                size: 4096,
            },
        );
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let (tx, rx) = mpsc::channel();
        let fd: SharedFd = Arc::new(a.into());
        let thread = &engine.threads()[0];
        thread.spawn(move || Forward { fd, tx }).unwrap();

        let total = 256 * 1024;
        let data = payload(1, 1, total);
        let sent = data.clone();
        let writer = std::thread::spawn(move || {
            b.write_all(&sent).unwrap();
            b
        });

        let mut held = Vec::new();
        let mut got = Vec::new();
        while got.len() < total {
            let chunk = rx
                .recv_timeout(LIMIT)
                .expect("data keeps coming while earlier chunks are held");
            got.extend_from_slice(&chunk);
            held.push(chunk);
        }
        assert!(got == data, "{choice:?}: bytes differ");
        assert!(
            held.len() >= total / 4096,
            "{choice:?}: chunks larger than a buffer"
        );
        let stats = thread.stats();
        assert!(
            stats.recv_rearmed.load(Ordering::Relaxed)
                >= stats.recv_starved.load(Ordering::Relaxed).min(1),
            "{choice:?}: a starved receive was never re-armed"
        );
        drop(writer.join().unwrap());
        engine.shutdown();
    }
}

/// Connects, sends its payload (zero-copy when asked), closes, and reports each step.
struct Client {
    fd: Option<OwnedFd>,
    shared: Option<SharedFd>,
    addr: Option<SockAddr>,
    body: Bytes,
    zero_copy: bool,
    tx: mpsc::Sender<String>,
}

impl Handler for Client {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        let fd = Arc::new(self.fd.take().unwrap());
        self.shared = Some(fd.clone());
        cx.submit(Op::Connect {
            fd,
            addr: self.addr.take().unwrap(),
        });
    }
    fn on_completion(&mut self, cx: &mut Cx<'_>, _: OpId, c: Completion<'_>, _more: bool) {
        match c {
            Completion::Connected(Ok(())) => {
                let fd = self.shared.clone().unwrap();
                cx.submit(Op::Send {
                    fd,
                    bufs: vec![SendBuf::from(self.body.clone())],
                    zero_copy: self.zero_copy,
                });
            }
            Completion::Connected(Err(e)) => {
                let _ = self.tx.send(format!("connect failed: {:?}", e.kind()));
                cx.close();
            }
            Completion::Sent { result, .. } => {
                let _ = self
                    .tx
                    .send(format!("sent {:?}", result.map_err(|e| e.kind())));
                let fd = Arc::try_unwrap(self.shared.take().unwrap()).expect("no other holder");
                cx.submit(Op::Close { fd });
            }
            Completion::Closed(r) => {
                let _ = self
                    .tx
                    .send(format!("closed {:?}", r.map_err(|e| e.kind())));
                cx.close();
            }
            other => panic!("unexpected {other:?}"),
        }
    }
}

fn tcp_socket() -> OwnedFd {
    let s = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    s.set_nonblocking(true).unwrap();
    s.into()
}

#[test]
fn connect_send_zero_copy_and_close() {
    for choice in backends() {
        let engine = engine(choice, BufPoolConfig::default());
        for zero_copy in [false, true] {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let body = Bytes::from(payload(3, zero_copy as usize, 4 << 20));
            let (tx, rx) = mpsc::channel();
            let (b2, fd) = (body.clone(), tcp_socket());
            engine.threads()[1]
                .spawn(move || Client {
                    fd: Some(fd),
                    shared: None,
                    addr: Some(addr.into()),
                    body: b2,
                    zero_copy,
                    tx,
                })
                .unwrap();
            let (mut peer, _) = listener.accept().unwrap();
            peer.set_read_timeout(Some(LIMIT)).unwrap();
            let mut got = Vec::new();
            peer.read_to_end(&mut got).unwrap();
            assert!(
                got == body[..],
                "{choice:?} zc={zero_copy}: bytes differ ({} of {})",
                got.len(),
                body.len()
            );
            assert_eq!(
                rx.recv_timeout(LIMIT).unwrap(),
                format!("sent Ok({})", body.len())
            );
            assert_eq!(rx.recv_timeout(LIMIT).unwrap(), "closed Ok(())");
        }

        // A refused connect is reported, not hidden.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let fd = tcp_socket();
        engine.threads()[0]
            .spawn(move || Client {
                fd: Some(fd),
                shared: None,
                addr: Some(port.into()),
                body: Bytes::new(),
                zero_copy: false,
                tx,
            })
            .unwrap();
        assert_eq!(
            rx.recv_timeout(LIMIT).unwrap(),
            "connect failed: ConnectionRefused"
        );
        engine.shutdown();
    }
}

#[test]
fn shutdown_with_operations_in_flight_terminates() {
    for choice in backends() {
        let engine = engine(choice, BufPoolConfig::default());
        // A listener with a pending accept, idle connections with pending receives, and a
        // send stuck on a peer that never reads.
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let lfd: SharedFd = Arc::new(listener.into());
        engine.threads()[0]
            .spawn(move || EchoListener { fd: lfd })
            .unwrap();
        let idle: Vec<TcpStream> = (0..8).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let (a, _stuck_peer) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let (tx, _rx) = mpsc::channel();
        let fd: OwnedFd = a.into();
        engine.threads()[1]
            .spawn(move || Client {
                fd: Some(fd),
                shared: None,
                addr: None,
                body: Bytes::new(),
                zero_copy: false,
                tx,
            })
            .map(|_| ())
            .unwrap_or(());
        wait_until(LIMIT, "connections to be accepted", || {
            engine.threads()[0].load() >= 9
        });

        let (done_tx, done_rx) = mpsc::channel();
        std::thread::spawn(move || {
            engine.shutdown();
            let _ = done_tx.send(());
        });
        done_rx
            .recv_timeout(LIMIT)
            .expect("engine shutdown hung with operations in flight");
        drop(idle);
    }
}

#[test]
fn pinning_failure_is_reported_not_fatal() {
    // 1000 fits a cpu_set_t but no such core exists here; 4095 does not even fit.
    let engine = zeroring_engine::Engine::start(zeroring_engine::EngineConfig {
        cpus: Some(vec![1000, 4095]),
        io_threads: 2,
        backend: backends()[0],
        ..Default::default()
    })
    .expect("an engine starts even when it cannot pin");
    for (t, core) in engine.threads().iter().zip(["1000", "4095"]) {
        let info = t.info();
        assert_eq!(info.pinned_to, None);
        assert!(
            info.pin_error.as_deref().unwrap_or("").contains(core),
            "{info:?}"
        );
    }
    // And it works: a thread that could not be pinned still runs handlers.
    let (tx, rx) = mpsc::channel();
    engine.threads()[0]
        .execute(move |cx| tx.send(cx.handle().index()).unwrap())
        .unwrap();
    assert_eq!(rx.recv_timeout(LIMIT).unwrap(), 0);
    engine.shutdown();
}

#[test]
fn nothing_is_pinned_unless_asked() {
    // libzmq pins nothing by default; pinning every process's first I/O thread to the first
    // allowed core put the I/O threads of two processes on one core.
    let engine = zeroring_engine::Engine::start(zeroring_engine::EngineConfig {
        io_threads: 2,
        backend: backends()[0],
        ..Default::default()
    })
    .unwrap();
    for t in engine.threads() {
        let info = t.info();
        assert_eq!((info.pinned_to, info.pin_error.clone()), (None, None));
    }
    engine.shutdown();
    // Asked for: thread i goes to cpus[i % len].
    let allowed = core_affinity::get_core_ids().unwrap_or_default();
    let Some(last) = allowed.last().map(|c| c.id) else {
        return;
    };
    let engine = zeroring_engine::Engine::start(zeroring_engine::EngineConfig {
        io_threads: 1,
        cpus: Some(vec![last]),
        backend: backends()[0],
        ..Default::default()
    })
    .unwrap();
    assert_eq!(engine.threads()[0].info().pinned_to, Some(last));
    engine.shutdown();
}
