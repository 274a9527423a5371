//! The receive into a caller's buffer (`Op::RecvInto`) on both backends: the bytes land in
//! the `BodyBuf` after what it already held, never past its length, and the buffer comes back
//! with its completion — whole when the bytes were there, partial when the peer sent less,
//! unchanged after a cancel, and with `Ok(0)` at end of stream.

#![cfg(not(loom))]

mod common;

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use common::{backends, engine};
use zeroring_engine::body_pool::{BodyBuf, PooledBody};
use zeroring_engine::{BufPoolConfig, Completion, Cx, Handler, Op, OpId, SharedFd};

const LIMIT: Duration = Duration::from_secs(30);

/// What one receive gave back: its result (bytes or errno) and the buffer's bytes so far.
type Report = (Result<usize, i32>, Vec<u8>);

/// Receives into `buf` until it is whole (each completion reported), or once when
/// `cancel_at_once` cancels the first receive right away.
struct Into {
    fd: SharedFd,
    buf: Option<BodyBuf>,
    cancel_at_once: bool,
    tx: mpsc::Sender<Report>,
}

impl Handler for Into {
    fn on_start(&mut self, cx: &mut Cx<'_>) {
        let buf = self.buf.take().expect("a buffer to lend");
        let op = cx.submit(Op::RecvInto {
            fd: self.fd.clone(),
            buf,
        });
        if self.cancel_at_once {
            cx.cancel(op);
        }
    }
    fn on_completion(&mut self, cx: &mut Cx<'_>, _: OpId, c: Completion<'_>, more: bool) {
        assert!(!more, "one completion per receive");
        let Completion::ReceivedInto { result, buf } = c else {
            return;
        };
        let done = buf.remaining() == 0;
        let again = matches!(result, Ok(n) if n > 0) && !done;
        let result = result.map_err(|e| e.raw_os_error().unwrap_or(0));
        let bytes = buf.as_slice().to_vec();
        let _ = self.tx.send((result, bytes));
        if again {
            cx.submit(Op::RecvInto {
                fd: self.fd.clone(),
                buf,
            });
        }
    }
}

fn spawn(
    choice: zeroring_engine::BackendChoice,
    fd: UnixStream,
    buf: BodyBuf,
    cancel_at_once: bool,
) -> (zeroring_engine::Engine, mpsc::Receiver<Report>) {
    let engine = engine(
        choice,
        BufPoolConfig {
            count: 8,
            size: 4096,
        },
    );
    fd.set_nonblocking(true).unwrap();
    let (tx, rx) = mpsc::channel();
    let fd: SharedFd = Arc::new(fd.into());
    engine.threads()[0]
        .spawn(move || Into {
            fd,
            buf: Some(buf),
            cancel_at_once,
            tx,
        })
        .unwrap();
    (engine, rx)
}

#[test]
fn a_receive_into_fills_the_buffer_after_what_it_held_and_no_further() {
    for choice in backends() {
        let (a, mut b) = UnixStream::pair().unwrap();
        let mut buf = BodyBuf::with_len(40_000).unwrap();
        assert_eq!(buf.extend_from_slice(b"head"), 4);
        // More than the buffer wants: the rest stays in the kernel.
        let sent: Vec<u8> = (0..50_000u32).map(|i| (i % 251) as u8).collect();
        b.write_all(&sent).unwrap();
        let (engine, rx) = spawn(choice, a, buf, false);
        let mut last = Vec::new();
        let mut total = 0;
        while total < 40_000 - 4 {
            let (r, bytes) = rx.recv_timeout(LIMIT).unwrap();
            let n = r.unwrap_or_else(|e| panic!("{choice:?}: errno {e}"));
            assert!(n > 0, "{choice:?}: data was there");
            total += n;
            last = bytes;
        }
        assert_eq!(
            total,
            40_000 - 4,
            "{choice:?}: never past the buffer's length"
        );
        assert_eq!(&last[..4], b"head", "{choice:?}");
        assert_eq!(&last[4..], &sent[..40_000 - 4], "{choice:?}");
        drop(engine);
    }
}

#[test]
fn a_receive_into_ends_with_what_arrived_at_end_of_stream() {
    for choice in backends() {
        let (a, mut b) = UnixStream::pair().unwrap();
        b.write_all(&[9u8; 1000]).unwrap();
        drop(b);
        let (engine, rx) = spawn(choice, a, BodyBuf::with_len(5000).unwrap(), false);
        let (r, bytes) = rx.recv_timeout(LIMIT).unwrap();
        assert_eq!(r, Ok(1000), "{choice:?}: the bytes that were there");
        assert_eq!(bytes, vec![9u8; 1000]);
        let (r, bytes) = rx.recv_timeout(LIMIT).unwrap();
        assert_eq!(r, Ok(0), "{choice:?}: then the end of the stream");
        assert_eq!(
            bytes.len(),
            1000,
            "{choice:?}: the buffer came back as it was"
        );
        drop(engine);
    }
}

#[test]
fn a_receive_into_cancelled_before_data_gives_the_buffer_back_unchanged() {
    for choice in backends() {
        let (a, _b) = UnixStream::pair().unwrap();
        let mut buf = BodyBuf::with_len(3000).unwrap();
        buf.extend_from_slice(&[1, 2, 3]);
        let (engine, rx) = spawn(choice, a, buf, true);
        let (r, bytes) = rx.recv_timeout(LIMIT).unwrap();
        assert_eq!(r, Err(libc::ECANCELED), "{choice:?}");
        assert_eq!(bytes, vec![1, 2, 3], "{choice:?}");
        drop(engine);
    }
}

/// A buffer whose receive is still in flight when its engine goes away is dropped with the
/// operation, after the kernel let go of it: the engine shuts down, and the pool goes on.
#[test]
fn an_engine_dropped_with_a_receive_into_in_flight_shuts_down() {
    for choice in backends() {
        let (a, _b) = UnixStream::pair().unwrap();
        let (engine, _rx) = spawn(choice, a, BodyBuf::with_len(2000).unwrap(), false);
        drop(engine);
        assert!(PooledBody::copy_from(b"the pool still works").is_some());
    }
}
