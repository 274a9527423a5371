//! The whole socket path allocates nothing per message once warm: `send(&[u8])` of a small
//! body through the socket, its pipe, the I/O thread's stream and encoder, the kernel, the
//! other I/O thread's decoder and pipe, to a `recv` into a reused `Msg` — over tcp and ipc,
//! on whichever backend the run uses (CI runs this suite on io_uring and on the forced epoll
//! fallback). The allocator below counts every thread's allocations, I/O threads included.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use zeroring::{Context, Msg, SocketType};

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

/// Sends `n` small messages in bursts of `burst` (below the HWM, so the sender never waits)
/// and receives each burst into one reused `Msg`.
fn exchange(push: &zeroring::Socket, pull: &zeroring::Socket, msg: &mut Msg, n: usize) {
    const BURST: usize = 100;
    let body = [0x5Au8; 8];
    for _ in 0..n / BURST {
        for _ in 0..BURST {
            push.send(&body[..], 0).unwrap();
        }
        for _ in 0..BURST {
            pull.recv(msg, 0).unwrap();
            assert_eq!(msg.data(), &body[..]);
        }
    }
}

fn steady_state(endpoint: &str) {
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvtimeo(10_000).unwrap();
    pull.bind(endpoint).unwrap();
    let ep = pull.get_last_endpoint().unwrap().unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_sndtimeo(10_000).unwrap();
    push.connect(&ep).unwrap();
    let mut msg = Msg::new();
    // Warm up: pipes' chunks, the encoder's batch, the receive pool, the send spares.
    exchange(&push, &pull, &mut msg, 20_000);
    let before = ALLOCS.load(Ordering::Relaxed);
    const N: usize = 20_000;
    exchange(&push, &pull, &mut msg, N);
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    // Not one per message: a few may come from the I/O threads' occasional work (a timer, a
    // pipe's spare chunk swapped while both ends race); one per 1,000 messages is a bug.
    assert!(
        allocs <= N / 1_000,
        "{allocs} allocations for {N} messages over {endpoint}"
    );
}

#[test]
fn the_socket_path_allocates_nothing_per_message() {
    steady_state("tcp://127.0.0.1:*");
    let dir = std::env::temp_dir().join(format!("zr-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    steady_state(&format!("ipc://{}/s", dir.display()));
    let _ = std::fs::remove_dir_all(&dir);
}
