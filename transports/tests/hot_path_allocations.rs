//! The per-message path allocates nothing once warm: encoding small frames
//! into the batch, handing chunks out, and decoding small frames straight into
//! inline messages handed to a sink (the path a stream takes).

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use zeroring_engine::Msg;
use zeroring_transports::zmtp::{Connection, ConnectionConfig, FrameSink};
use zeroring_transports::SocketType;

struct Counting;

static ALLOCS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn drain(c: &mut Connection) -> Bytes {
    let mut out = BytesMut::new();
    while let Some(x) = c.poll_transmit() {
        out.extend_from_slice(&x);
    }
    out.freeze()
}

/// Keeps what it is given in a reused vector.
struct Collect(Vec<Msg>);

impl FrameSink for Collect {
    fn deliver(&mut self, msg: Msg) {
        self.0.push(msg);
    }
}

#[test]
fn steady_state_messages_do_not_allocate() {
    let now = Instant::now();
    let mut a = Connection::new(ConnectionConfig::new(SocketType::Push), now).unwrap();
    let mut b = Connection::new(ConnectionConfig::new(SocketType::Pull), now).unwrap();
    for _ in 0..8 {
        let x = drain(&mut a);
        b.handle_input(x, now);
        let y = drain(&mut b);
        a.handle_input(y, now);
    }
    while a.poll_event().is_some() {}
    while b.poll_event().is_some() {}
    assert!(a.is_ready() && b.is_ready());

    let body = Bytes::from_static(b"0123456789abcdef0123456789abcdef");
    // One inbound buffer holding many frames, prepared outside the measurement.
    for _ in 0..100 {
        a.send_frame(body.clone(), false).unwrap();
    }
    let wire = drain(&mut a);
    let mut chunks = Vec::with_capacity(16);

    // Warm up the queues once.
    let mut sink = Collect(Vec::with_capacity(128));
    assert_eq!(b.handle_input_with(&wire, now, &mut sink), wire.len());
    assert_eq!(sink.0.len(), 100);
    assert!(sink
        .0
        .iter()
        .all(|m| m.is_inline() && m.data() == &body[..]));
    sink.0.clear();

    for round in 0..3 {
        let before = ALLOCS.load(Ordering::Relaxed);
        // Outbound: 100 small frames into the batch, then hand the chunks out.
        for _ in 0..100 {
            a.send_frame(body.clone(), false).unwrap();
        }
        while let Some(c) = a.poll_transmit() {
            chunks.push(c);
        }
        chunks.clear();
        // Inbound: 100 frames of one buffer decoded into inline messages.
        assert_eq!(b.handle_input_with(&wire, now, &mut sink), wire.len());
        assert_eq!(sink.0.len(), 100);
        assert!(b.poll_event().is_none());
        sink.0.clear();
        let allocs = ALLOCS.load(Ordering::Relaxed) - before;
        // The batch buffer may be re-allocated once when the previous chunk is
        // still alive elsewhere; nothing may be allocated per message.
        eprintln!("round {round}: {allocs}");
        assert!(
            allocs <= 2,
            "round {round}: {allocs} allocations for 200 messages"
        );
    }
}
