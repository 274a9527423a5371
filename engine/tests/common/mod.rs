//! Helpers shared by the engine's integration tests: which backends to run, an engine per
//! backend, and an echo server made of engine handlers.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use zeroring_engine::{
    BackendChoice, BufPoolConfig, Completion, Cx, Engine, EngineConfig, Handler, Op, OpId, SendBuf,
    SharedFd,
};

/// The backends a test runs on: both, unless `ZERORING_BACKEND` forces one (CI's second pass).
pub fn backends() -> Vec<BackendChoice> {
    match std::env::var("ZERORING_BACKEND").as_deref() {
        Ok("epoll") => vec![BackendChoice::Epoll],
        Ok("uring") | Ok("io_uring") => vec![BackendChoice::Uring],
        _ => vec![BackendChoice::Uring, BackendChoice::Epoll],
    }
}

pub fn engine(choice: BackendChoice, pool: BufPoolConfig) -> Engine {
    let engine = Engine::start(EngineConfig {
        backend: choice,
        pool,
        io_threads: 2,
        ..EngineConfig::default()
    })
    .unwrap_or_else(|e| panic!("engine with {choice:?} failed to start: {e}"));
    let want = match choice {
        BackendChoice::Epoll => "epoll",
        _ => "io_uring",
    };
    for t in engine.threads() {
        assert_eq!(
            t.info().backend.kind,
            want,
            "thread {} runs {}",
            t.index(),
            t.info().backend
        );
    }
    engine
}

/// Waits (bounded) until `cond` holds; panics with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Accepts connections and spawns an [`EchoConn`] for each.
pub struct EchoListener {
    pub fd: SharedFd,
}

impl Handler for EchoListener {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        cx.submit(Op::Accept {
            fd: self.fd.clone(),
        });
    }

    fn on_completion(
        &mut self,
        cx: &mut Cx<'_>,
        _op: OpId,
        completion: Completion<'_>,
        more: bool,
    ) {
        if let Completion::Accepted(Ok(fd)) = completion {
            cx.spawn(Box::new(EchoConn::new(fd)));
        }
        if !more {
            cx.close();
        }
    }
}

/// Sends back everything it receives, one send in flight at a time, batching what piled up.
pub struct EchoConn {
    fd: SharedFd,
    pending: VecDeque<Bytes>,
    sending: bool,
    eof: bool,
}

impl EchoConn {
    pub fn new(fd: OwnedFd) -> Self {
        EchoConn {
            fd: Arc::new(fd),
            pending: VecDeque::new(),
            sending: false,
            eof: false,
        }
    }

    fn flush(&mut self, cx: &mut Cx<'_>) {
        if self.sending || self.pending.is_empty() {
            return;
        }
        self.sending = true;
        let bufs: Vec<SendBuf> = self.pending.drain(..).map(SendBuf::from).collect();
        cx.submit(Op::Send {
            fd: self.fd.clone(),
            bufs,
            zero_copy: false,
        });
    }
}

impl Handler for EchoConn {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        cx.submit(Op::Recv {
            fd: self.fd.clone(),
        });
    }

    fn on_completion(
        &mut self,
        cx: &mut Cx<'_>,
        _op: OpId,
        completion: Completion<'_>,
        _more: bool,
    ) {
        match completion {
            Completion::Received(Ok(data)) if !data.is_empty() => {
                // The slice is the thread's receive buffer, lent for this call: keep a copy.
                self.pending.push_back(Bytes::copy_from_slice(data));
                self.flush(cx);
            }
            Completion::Received(Ok(_)) => self.eof = true,
            Completion::Sent { result: Ok(_), .. } => {
                self.sending = false;
                self.flush(cx);
            }
            _ => cx.close(),
        }
        if self.eof && !self.sending && self.pending.is_empty() {
            cx.close();
        }
    }
}

/// Deterministic payload of message `n` of connection `conn`.
pub fn payload(conn: usize, n: usize, len: usize) -> Vec<u8> {
    let mut x = (conn as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (n as u64).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}
