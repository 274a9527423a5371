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
/// Of those, made on the thread that runs the test (sends and receives).
static ON_TEST_THREAD: AtomicUsize = AtomicUsize::new(0);
/// The sizes of the first allocations since the window opened (0: none), for the message of
/// a failure: where an allocation comes from is half of finding it.
static SIZES: [AtomicUsize; 8] = [const { AtomicUsize::new(0) }; 8];
/// Allocations of more than [`WRAPPER_MAX`] bytes since the window opened.
static LARGE: AtomicUsize = AtomicUsize::new(0);

/// The most a pooled body's `Bytes` wrapper takes (`Bytes::from_owner`'s box).
const WRAPPER_MAX: usize = 64;

thread_local! {
    static TEST_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

fn count(size: usize) {
    ALLOCS.fetch_add(1, Ordering::Relaxed);
    if size > WRAPPER_MAX {
        LARGE.fetch_add(1, Ordering::Relaxed);
    }
    let _ = TEST_THREAD.try_with(|t| {
        if t.get() {
            ON_TEST_THREAD.fetch_add(1, Ordering::Relaxed);
        }
    });
    for s in &SIZES {
        if s.compare_exchange(0, size.max(1), Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            break;
        }
    }
}

// SAFETY: forwards to the system allocator unchanged; only counts calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Sends `n` messages of `size` bytes in bursts of `burst` (below the HWM, so the sender
/// never waits) and receives each burst into one reused `Msg`.
fn exchange(
    push: &zeroring::Socket,
    pull: &zeroring::Socket,
    msg: &mut Msg,
    n: usize,
    size: usize,
) {
    const BURST: usize = 100;
    let body = vec![0x5Au8; size];
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

/// The names of this process's threads.
fn thread_names() -> Vec<String> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| {
            d.filter_map(|t| std::fs::read_to_string(t.ok()?.path().join("comm")).ok())
                .map(|n| n.trim().to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// zeroring's threads in this process now (by name: the test harness starts a thread per
/// test as others finish, which must not count).
fn threads() -> usize {
    thread_names()
        .iter()
        .filter(|n| n.contains("zeroring"))
        .count()
}

fn steady_state(endpoint: &str, size: usize) {
    steady_state_allowing(endpoint, size, 0);
}

/// [`steady_state`], allowing `per_message` allocations per message, each of at most
/// [`WRAPPER_MAX`] bytes.
fn steady_state_allowing(endpoint: &str, size: usize, per_message: usize) {
    // The allocator counts every thread: the previous phase's context must be gone (its I/O
    // threads may finish their teardown after the drop returned, when the last reference went
    // from one of them), or its teardown's allocations land in this phase's window. (The
    // count is of zeroring's threads: the harness's thread for a test waiting on `serial`
    // may start in between.)
    let baseline = threads();
    measure(endpoint, size, per_message);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while threads() > baseline {
        assert!(
            std::time::Instant::now() < deadline,
            "the context's threads did not exit: {:?}",
            thread_names()
        );
        std::thread::yield_now();
    }
}

fn measure(endpoint: &str, size: usize, per_message: usize) {
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
    exchange(&push, &pull, &mut msg, 20_000, size);
    // Three windows: an allocation made per message shows in every one; one that comes from
    // the machine's timing (a teardown or a chunk swap racing under load) does not repeat in
    // all three, and the quietest window is the one judged.
    let mut windows = Vec::new();
    for _ in 0..3 {
        windows.push(window(&push, &pull, &mut msg, size));
        if windows
            .last()
            .is_some_and(|w| w.0 <= per_message * N + N / 1_000)
        {
            break;
        }
    }
    let (allocs, on_test_thread, sizes, large) =
        windows.iter().min_by_key(|w| w.0).unwrap().clone();
    // Not one per message (beyond those allowed): a few may come from the I/O threads'
    // occasional work (a timer, a pipe's spare chunk swapped while both ends race); one per
    // 1,000 messages is a bug. With large bodies queued as they are, the encoder's batch of
    // headers is sometimes still held by the send in flight when it needs room (one buffer
    // allocated, as its docs say), and the pools' blocks in flight reach a new high now and
    // then: one such per 100 messages is allowed there, and measured at 1–4 per 1,000.
    assert!(
        per_message == 0 || (allocs <= per_message * N + N / 100 && large <= N / 100),
        "{allocs} allocations ({large} of more than {WRAPPER_MAX} B) for {N} messages of \
         {size} B over {endpoint}, {per_message} small one(s) per message allowed \
         ({on_test_thread} on the test's thread, the rest on I/O threads; the first sizes: \
         {sizes:?}; all windows: {windows:?})"
    );
    assert!(
        per_message > 0 || allocs <= N / 1_000,
        "{allocs} allocations for {N} messages of {size} B over {endpoint} ({on_test_thread} on the test's \
         thread, the rest on I/O threads; the first sizes: {sizes:?}; all windows: {windows:?})"
    );
}

const N: usize = 20_000;

/// One measured window of `N` messages: allocations, those on the test's thread, the first
/// sizes, and those larger than a wrapper.
fn window(
    push: &zeroring::Socket,
    pull: &zeroring::Socket,
    msg: &mut Msg,
    size: usize,
) -> (usize, usize, Vec<usize>, usize) {
    TEST_THREAD.with(|t| t.set(true));
    let on_test_thread = ON_TEST_THREAD.load(Ordering::Relaxed);
    for s in &SIZES {
        s.store(0, Ordering::Relaxed);
    }
    let before = ALLOCS.load(Ordering::Relaxed);
    let large_before = LARGE.load(Ordering::Relaxed);
    exchange(push, pull, msg, N, size);
    let large = LARGE.load(Ordering::Relaxed) - large_before;
    let allocs = ALLOCS.load(Ordering::Relaxed) - before;
    let on_test_thread = ON_TEST_THREAD.load(Ordering::Relaxed) - on_test_thread;
    TEST_THREAD.with(|t| t.set(false));
    let sizes = SIZES.iter().map(|s| s.load(Ordering::Relaxed)).collect();
    (allocs, on_test_thread, sizes, large)
}

/// The allocator counts every thread of the process: the tests here run one at a time.
fn serial() -> std::sync::MutexGuard<'static, ()> {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn the_socket_path_allocates_nothing_per_message() {
    let _one_at_a_time = serial();
    steady_state("tcp://127.0.0.1:*", 8);
    let dir = std::env::temp_dir().join(format!("zr-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    steady_state(&format!("ipc://{}/s", dir.display()), 8);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Bodies past the inline size and up to `body_pool::MAX_POOLED` live in blocks recycled
/// between the thread that frees them and the one that made them: none allocates per message
/// either, on each transport (inproc: application thread to application thread). Over tcp and
/// ipc the larger sizes split a frame across two receive buffers every few messages:
/// the decoder assembles such a body in the pooled block the part keeps, so those allocate
/// nothing either. Up to the encoder's copy threshold (2 KiB) the sending side copies the
/// body into its output batch; past it, see the next test.
#[test]
fn mid_size_bodies_allocate_nothing_per_message() {
    let _one_at_a_time = serial();
    use zeroring::engine::body_pool::MAX_POOLED;
    steady_state("tcp://127.0.0.1:*", 64);
    steady_state("tcp://127.0.0.1:*", 1024);
    steady_state("tcp://127.0.0.1:*", 2048);
    let dir = std::env::temp_dir().join(format!("zr-alloc-mid-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    steady_state(&format!("ipc://{}/s", dir.display()), 150);
    steady_state(&format!("ipc://{}/s", dir.display()), 1000);
    let _ = std::fs::remove_dir_all(&dir);
    steady_state("inproc://mid-size-64", 64);
    steady_state("inproc://mid-size-max", MAX_POOLED);
}

/// Past the encoder's copy threshold a pooled body is queued for the kernel as it is: not
/// copied, not wrapped (the send carries the part's block, `SendBuf::Pooled`), its frame
/// header in an inline buffer of its own (no shared batch buffer split off per frame). No
/// body is allocated either: not by the decoder's assembly or a lent receive (the blocks come
/// home and are reused), up to the pools' largest class.
#[test]
fn large_bodies_allocate_nothing_per_message() {
    let _one_at_a_time = serial();
    use zeroring::engine::body_pool::MAX_POOLED;
    steady_state("tcp://127.0.0.1:*", 8192);
    steady_state("tcp://127.0.0.1:*", MAX_POOLED);
    let dir = std::env::temp_dir().join(format!("zr-alloc-large-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    steady_state(&format!("ipc://{}/s", dir.display()), 20_000);
    steady_state(&format!("ipc://{}/s", dir.display()), MAX_POOLED);
    let _ = std::fs::remove_dir_all(&dir);
}
