//! The single-shot receive (`Op::RecvOnce`) on both backends: one completion, `more` false,
//! at most one provided buffer taken from the socket — the rest stays in the kernel until
//! asked for — and a cancel before data ends it with ECANCELED.

#![cfg(not(loom))]

mod common;

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{backends, engine};
use zeroring_engine::{BufPoolConfig, Completion, Cx, Handler, Op, OpId, SharedFd, RECV_ONCE_MAX};

const LIMIT: Duration = Duration::from_secs(30);

/// Bytes waiting in a socket's receive queue (FIONREAD).
fn queued(fd: &impl AsRawFd) -> usize {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int into `n`, on an open descriptor we hold.
    let r = unsafe { libc::ioctl(fd.as_raw_fd(), libc::FIONREAD, &mut n) };
    assert_eq!(r, 0);
    n as usize
}

/// Receives once (or `times` times, one single-shot receive after another) and reports each
/// completion: its length (or the error) and `more`.
struct Once {
    fd: SharedFd,
    times: usize,
    cancel_at_once: bool,
    tx: mpsc::Sender<(Result<usize, i32>, bool)>,
}

impl Handler for Once {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        let op = cx.submit(Op::RecvOnce {
            fd: self.fd.clone(),
        });
        if self.cancel_at_once {
            cx.cancel(op);
        }
    }
    fn on_completion(&mut self, cx: &mut Cx<'_>, _: OpId, c: Completion<'_>, more: bool) {
        if let Completion::Received(r) = c {
            let r = r
                .map(|b| b.len())
                .map_err(|e| e.raw_os_error().unwrap_or(0));
            let _ = self.tx.send((r, more));
        }
        self.times -= 1;
        if self.times > 0 {
            cx.submit(Op::RecvOnce {
                fd: self.fd.clone(),
            });
        }
    }
}

/// Writes `total` bytes into a unix socket pair, has an engine of `pool` make two single-shot
/// receives on the other end, and checks each: one completion, more than nothing and at most
/// `max` bytes. Returns (bytes taken, bytes still in the kernel's queue).
fn two_single_shot_receives(
    choice: zeroring_engine::BackendChoice,
    pool: BufPoolConfig,
    total: usize,
    max: usize,
) -> (usize, usize) {
    let engine = engine(choice, pool);
    let (a, mut b) = UnixStream::pair().unwrap();
    a.set_nonblocking(true).unwrap();
    let probe = a.try_clone().unwrap();
    b.write_all(&vec![7u8; total]).unwrap();
    let (tx, rx) = mpsc::channel();
    let fd: SharedFd = Arc::new(a.into());
    engine.threads()[0]
        .spawn(move || Once {
            fd,
            times: 2,
            cancel_at_once: false,
            tx,
        })
        .unwrap();
    let mut taken = 0;
    for _ in 0..2 {
        let (r, more) = rx.recv_timeout(LIMIT).unwrap();
        let n = r.unwrap();
        assert!(!more, "{choice:?}: one completion per receive");
        assert!(
            n > 0 && n <= max,
            "{choice:?}: {n} bytes from {pool:?}: at most {max}"
        );
        taken += n;
    }
    let left = queued(&probe);
    drop(engine);
    (taken, left)
}

#[test]
fn a_single_shot_receive_takes_one_buffer_and_leaves_the_rest_in_the_kernel() {
    for choice in backends() {
        let pool = BufPoolConfig {
            count: 8,
            size: 4096,
        };
        let total = 64 * 1024;
        let (taken, left) = two_single_shot_receives(choice, pool, total, 4096);
        // Nothing asked for more: the rest is still the kernel's.
        assert_eq!(left, total - taken, "{choice:?}");
        println!("{choice:?}: two single-shot receives took {taken} of {total} bytes");
    }
}

/// With the default pool, whose buffers (64 KiB) are larger than [`RECV_ONCE_MAX`], a
/// single-shot receive still reads at most `RECV_ONCE_MAX`: what bounds a paused connection's
/// intake is that cap, not the buffer size.
#[test]
fn a_single_shot_receive_reads_at_most_recv_once_max_from_a_larger_buffer() {
    let pool = BufPoolConfig::default();
    assert!(pool.size as usize > RECV_ONCE_MAX);
    for choice in backends() {
        // Four times the cap, within the unix socket's default send buffer (208 KiB).
        let total = 4 * RECV_ONCE_MAX;
        let (taken, left) = two_single_shot_receives(choice, pool, total, RECV_ONCE_MAX);
        assert_eq!(left, total - taken, "{choice:?}");
    }
}

#[test]
fn a_single_shot_receive_cancelled_before_data_ends_with_ecanceled() {
    for choice in backends() {
        let engine = engine(
            choice,
            BufPoolConfig {
                count: 8,
                size: 4096,
            },
        );
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let (tx, rx) = mpsc::channel();
        let fd: SharedFd = Arc::new(a.into());
        engine.threads()[0]
            .spawn(move || Once {
                fd,
                times: 1,
                cancel_at_once: true,
                tx,
            })
            .unwrap();
        let (r, more) = rx.recv_timeout(LIMIT).unwrap();
        assert_eq!(r, Err(libc::ECANCELED), "{choice:?}");
        assert!(!more);
        drop(engine);
    }
}
