//! Work that was already waiting when an operation started is all delivered, on both
//! backends, with nothing new arriving to announce it: more queued bytes than one multishot
//! receive takes per readiness event, and more pending connections than one accept takes.
//! (The epoll backend waits edge-triggered, so it must come back for such work by itself.)

#![cfg(not(loom))]

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{backends, engine};
use zeroring_engine::{BufPoolConfig, Completion, Cx, Handler, Op, OpId, SharedFd};

const LIMIT: Duration = Duration::from_secs(30);

/// Bytes per provided buffer in these tests; the epoll backend's receive takes at most 16
/// buffers per readiness event.
const BUF: usize = 1024;

/// Reports how many bytes each completion of one multishot receive brought.
struct Take {
    fd: SharedFd,
    tx: mpsc::Sender<usize>,
}

impl Handler for Take {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        cx.submit(Op::Recv {
            fd: self.fd.clone(),
        });
    }
    fn on_completion(&mut self, cx: &mut Cx<'_>, _: OpId, c: Completion<'_>, more: bool) {
        match c {
            Completion::Received(Ok(data)) if !data.is_empty() => {
                let _ = self.tx.send(data.len());
            }
            _ => cx.close(),
        }
        if !more {
            cx.close();
        }
    }
}

#[test]
fn a_receive_takes_all_that_was_queued_before_it_started() {
    for choice in backends() {
        let engine = engine(
            choice,
            BufPoolConfig {
                count: 128,
                size: BUF as u32,
            },
        );
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.set_nonblocking(true).unwrap();
        // 64 buffers' worth, written whole before the receive starts (a Unix socket pair
        // queues it at once, so no more readiness comes after it): four rounds of 16, the
        // first when the receive is submitted, the second on the readiness event of its
        // registration, the last two with nothing new to announce them.
        let total = 64 * BUF;
        let written = b.write(&vec![3u8; total]).unwrap();
        assert_eq!(
            written, total,
            "the socket pair must queue the whole test input"
        );
        let (tx, rx) = mpsc::channel();
        let fd: SharedFd = Arc::new(a.into());
        engine.threads()[0].spawn(move || Take { fd, tx }).unwrap();
        let mut got = 0;
        while got < total {
            got += rx.recv_timeout(LIMIT).unwrap_or_else(|_| {
                panic!("{choice:?}: {got} of {total} queued bytes received, then nothing")
            });
        }
        assert_eq!(got, total, "{choice:?}");
        drop(b);
        drop(engine);
    }
}

/// Reports each accepted connection.
struct Accepting {
    fd: SharedFd,
    tx: mpsc::Sender<()>,
}

impl Handler for Accepting {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        cx.submit(Op::Accept {
            fd: self.fd.clone(),
        });
    }
    fn on_completion(&mut self, cx: &mut Cx<'_>, _: OpId, c: Completion<'_>, more: bool) {
        if let Completion::Accepted(Ok(_)) = c {
            let _ = self.tx.send(());
        }
        if !more {
            cx.close();
        }
    }
}

#[test]
fn an_accept_takes_every_connection_that_was_pending_before_it_started() {
    for choice in backends() {
        let engine = engine(choice, BufPoolConfig::default());
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        // Past one readiness event's 16 accepts; all complete in the kernel's backlog first.
        let n = 40;
        let clients: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(addr).unwrap()).collect();
        let (tx, rx) = mpsc::channel();
        let fd: SharedFd = Arc::new(listener.into());
        engine.threads()[0]
            .spawn(move || Accepting { fd, tx })
            .unwrap();
        for i in 0..n {
            rx.recv_timeout(LIMIT).unwrap_or_else(|_| {
                panic!("{choice:?}: {i} of {n} pending connections accepted, then nothing")
            });
        }
        drop(clients);
        drop(engine);
    }
}
