//! A descriptor number closed and given to a new socket: operations on the new socket get
//! their readiness, on both backends. (The epoll backend keeps a descriptor registered after
//! its operations end; it must notice that the number now names another socket.)
//!
//! The only test in its binary, so that nothing else takes the freed number first.

#![cfg(not(loom))]

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{backends, engine, wait_until};
use zeroring_engine::{BufPoolConfig, Completion, Cx, Handler, Op, OpId, SharedFd};

const LIMIT: Duration = Duration::from_secs(30);

/// One single-shot receive; reports when it is submitted and what it got, then ends.
struct Once {
    fd: Option<SharedFd>,
    started: mpsc::Sender<()>,
    got: mpsc::Sender<Result<usize, i32>>,
}

impl Handler for Once {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        if let Some(fd) = &self.fd {
            cx.submit(Op::RecvOnce { fd: fd.clone() });
        }
        let _ = self.started.send(());
    }
    fn on_completion(&mut self, cx: &mut Cx<'_>, _: OpId, c: Completion<'_>, _: bool) {
        if let Completion::Received(r) = c {
            let _ = self.got.send(
                r.map(|b| b.len())
                    .map_err(|e| e.raw_os_error().unwrap_or(0)),
            );
        }
        // Drop the handler's reference now: the descriptor closes with the operation's.
        self.fd = None;
        cx.close();
    }
}

/// Receives once on `sock` after it waited for data: `peer` writes only once the receive was
/// submitted (and so found nothing and waits).
fn receive_after_waiting(
    engine: &zeroring_engine::Engine,
    sock: UnixStream,
    mut peer: &UnixStream,
) -> Result<usize, i32> {
    sock.set_nonblocking(true).unwrap();
    let (started_tx, started) = mpsc::channel();
    let (got_tx, got) = mpsc::channel();
    let fd: SharedFd = Arc::new(sock.into());
    engine.threads()[0]
        .spawn(move || Once {
            fd: Some(fd),
            started: started_tx,
            got: got_tx,
        })
        .unwrap();
    started.recv_timeout(LIMIT).unwrap();
    peer.write_all(b"ping").unwrap();
    got.recv_timeout(LIMIT)
        .expect("the waiting receive got no readiness")
}

fn is_open(fd: i32) -> bool {
    // SAFETY: F_GETFD only reads the descriptor's flags; a closed number gives EBADF.
    unsafe { libc::fcntl(fd, libc::F_GETFD) >= 0 }
}

#[test]
fn a_reused_descriptor_number_gets_its_new_sockets_readiness() {
    for choice in backends() {
        let engine = engine(choice, BufPoolConfig::default());
        let (a, a_peer) = UnixStream::pair().unwrap();
        let number = a.as_raw_fd();
        assert_eq!(
            receive_after_waiting(&engine, a, &a_peer),
            Ok(4),
            "{choice:?}"
        );
        wait_until(LIMIT, "the first socket to close", || !is_open(number));
        // The lowest free number is the one just closed.
        let (b, b_peer) = UnixStream::pair().unwrap();
        assert_eq!(
            b.as_raw_fd(),
            number,
            "the new socket should take the freed number"
        );
        assert_eq!(
            receive_after_waiting(&engine, b, &b_peer),
            Ok(4),
            "{choice:?}: the new socket behind the same number"
        );
        drop((a_peer, b_peer));
        drop(engine);
    }
}
