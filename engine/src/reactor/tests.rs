use super::*;
use crate::backend::BackendChoice;
use crate::bufpool::BufPoolConfig;
use crate::io_thread::test_core;
use bytes::Bytes;
use std::io::Read;
use std::os::unix::net::UnixStream;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

/// Bytes whose owner records when it is dropped.
struct Tracked {
    data: Vec<u8>,
    dropped: Arc<AtomicBool>,
}

impl AsRef<[u8]> for Tracked {
    fn as_ref(&self) -> &[u8] {
        &self.data
    }
}

impl Drop for Tracked {
    fn drop(&mut self) {
        self.dropped.store(true, Ordering::SeqCst);
    }
}

struct SendOnce {
    fd: SharedFd,
    bufs: Option<Vec<SendBuf>>,
}

impl Handler for SendOnce {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        let bufs = self.bufs.take().unwrap();
        cx.submit(Op::Send {
            fd: self.fd.clone(),
            bufs,
            zero_copy: false,
        });
        // Gone before the send can possibly have finished.
        cx.close();
    }
    fn on_completion(&mut self, _: &mut Cx<'_>, _: OpId, _: Completion<'_>, _: bool) {
        unreachable!("a closed handler gets no completions");
    }
}

/// Runs the core's completion loop until no operation is in flight (bounded: ~10 s).
fn drive_until_idle(core: &mut Core) {
    let mut out = Vec::new();
    for _ in 0..1000 {
        if core.total_ops() == 0 {
            return;
        }
        core.wait(Some(Duration::from_millis(10)), &mut out)
            .unwrap();
        core.take_synthetic(&mut out);
        for rc in out.drain(..) {
            core.complete(rc);
        }
    }
}

fn choices() -> Vec<BackendChoice> {
    match std::env::var("ZERORING_BACKEND").as_deref() {
        Ok("epoll") => vec![BackendChoice::Epoll],
        _ => vec![BackendChoice::Uring, BackendChoice::Epoll],
    }
}

#[test]
fn in_flight_send_keeps_its_buffer_after_its_handler_is_gone() {
    for choice in choices() {
        let (mut core, _mailbox) = test_core(
            choice,
            BufPoolConfig {
                count: 8,
                size: 4096,
            },
        );
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        let dropped = Arc::new(AtomicBool::new(false));
        let pattern: Vec<u8> = (0..8 << 20).map(|i: u32| (i % 251) as u8).collect();
        let bytes = Bytes::from_owner(Tracked {
            data: pattern.clone(),
            dropped: dropped.clone(),
        });
        core.spawn(Box::new(SendOnce {
            fd: Arc::new(a.into()),
            bufs: Some(vec![SendBuf::from(bytes)]),
        }));

        // The handler is gone and its send cancelled, but not finished: the buffer lives.
        assert_eq!(
            core.total_ops(),
            1,
            "{choice:?}: the send's slot outlives its handler"
        );
        assert!(
            !dropped.load(Ordering::SeqCst),
            "{choice:?}: buffer freed while in flight"
        );

        drive_until_idle(&mut core);
        assert_eq!(
            core.total_ops(),
            0,
            "{choice:?}: cancelled send never completed"
        );
        assert!(
            dropped.load(Ordering::SeqCst),
            "{choice:?}: buffer leaked after the final completion"
        );

        // Whatever the kernel took before the cancel must be the real bytes.
        b.set_nonblocking(true).unwrap();
        let mut got = Vec::new();
        let mut chunk = vec![0u8; 1 << 16];
        loop {
            match b.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => got.extend_from_slice(&chunk[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => panic!("{e}"),
            }
        }
        assert!(
            got.len() < pattern.len(),
            "{choice:?}: socket buffer should not hold 8 MiB"
        );
        assert_eq!(
            &got[..],
            &pattern[..got.len()],
            "{choice:?}: sent bytes corrupted"
        );
    }
}

/// Receives; cancels its receive on the first data (as a stream does when its pipe fills
/// up) and records what the receive ended with.
struct CancelOnFirstData {
    fd: SharedFd,
    got: usize,
    ended: Arc<std::sync::Mutex<Option<Option<i32>>>>,
}

impl Handler for CancelOnFirstData {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        cx.submit(Op::Recv {
            fd: self.fd.clone(),
        });
    }
    fn on_completion(&mut self, cx: &mut Cx<'_>, op: OpId, c: Completion<'_>, more: bool) {
        let Completion::Received(result) = c else {
            return;
        };
        match result {
            Ok(data) if !data.is_empty() => {
                if self.got == 0 {
                    cx.cancel(op);
                }
                self.got += data.len();
            }
            Ok(_) => *self.ended.lock().unwrap() = Some(None),
            Err(e) => *self.ended.lock().unwrap() = Some(e.raw_os_error()),
        }
        if !more {
            cx.close();
        }
    }
}

/// The pool has one buffer and four buffers' worth of data wait: the receive fills the
/// one buffer, and its next attempt finds none (ENOBUFS) in the same batch of
/// completions, after its owner cancelled it on the first data. It must end as cancelled:
/// reported as ENOBUFS, a stream took it for a failed connection and closed it, losing
/// what the peer had sent (the fan-in stall of 100 connections, docs/performance.md).
#[test]
fn a_cancelled_receive_that_runs_out_of_buffers_ends_as_cancelled() {
    use std::io::Write;
    for choice in choices() {
        let (mut core, _mailbox) = test_core(
            choice,
            BufPoolConfig {
                count: 1,
                size: 1024,
            },
        );
        let (a, mut b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        b.write_all(&[7u8; 4096]).unwrap();
        let ended = Arc::new(std::sync::Mutex::new(None));
        core.spawn(Box::new(CancelOnFirstData {
            fd: Arc::new(a.into()),
            got: 0,
            ended: ended.clone(),
        }));
        drive_until_idle(&mut core);
        assert_eq!(core.total_ops(), 0, "{choice:?}: the receive never ended");
        let ended = *ended.lock().unwrap();
        assert_eq!(
            ended,
            Some(Some(libc::ECANCELED)),
            "{choice:?}: a cancelled receive must end as cancelled (None: it never ended \
             for its owner; Some(None): as end of stream; Some(Some(e)): with errno e)"
        );
    }
}

struct RecvThenClose {
    fd: SharedFd,
}

impl Handler for RecvThenClose {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        cx.submit(Op::Recv {
            fd: self.fd.clone(),
        });
        cx.close();
    }
    fn on_completion(&mut self, _: &mut Cx<'_>, _: OpId, _: Completion<'_>, _: bool) {
        unreachable!("a closed handler gets no completions");
    }
}

#[test]
fn receive_of_a_closed_handler_ends_and_returns_every_buffer() {
    for choice in choices() {
        let (mut core, _mailbox) = test_core(
            choice,
            BufPoolConfig {
                count: 4,
                size: 1024,
            },
        );
        let (a, _b) = UnixStream::pair().unwrap();
        a.set_nonblocking(true).unwrap();
        core.spawn(Box::new(RecvThenClose {
            fd: Arc::new(a.into()),
        }));
        drive_until_idle(&mut core);
        assert_eq!(
            core.total_ops(),
            0,
            "{choice:?}: cancelled receive never completed"
        );
    }
}
