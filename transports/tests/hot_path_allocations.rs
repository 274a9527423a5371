//! The per-message path allocates nothing once warm: encoding small frames
//! into the batch, handing chunks out, decoding frames as slices of the input
//! and queueing their events.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use zeroring_transports::zmtp::{Connection, ConnectionConfig, Event};
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
    b.handle_input(wire.clone(), now);
    while b.poll_event().is_some() {}

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
        // Inbound: 100 frames decoded as slices of one buffer, events drained.
        b.handle_input(wire.clone(), now);
        let mut n = 0;
        while let Some(e) = b.poll_event() {
            assert!(matches!(e, Event::Frame { .. }));
            n += 1;
        }
        assert_eq!(n, 100);
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
