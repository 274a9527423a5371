//! Subscriptions cost memory in proportion to what was subscribed (issue 17): 100,000 random
//! 32-byte topics on the publisher's trie (PUB/XPUB) and on the subscriber's (SUB/XSUB), live
//! heap bytes counted by the allocator, at most 3x the topic bytes, and all of it given back
//! when they are cancelled (one by one, or by the pipe leaving).
//!
//! One test function: the counter is process-wide, so two tests running at once would count
//! each other's allocations.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use zeroring::pattern::trie::{MTrie, RmResult, SubTrie};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged; only counts live bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn topics(n: usize) -> Vec<[u8; 32]> {
    let mut x = 0x2545_f491_4f6c_dd1du64;
    (0..n)
        .map(|_| {
            let mut t = [0u8; 32];
            for chunk in t.chunks_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes());
            }
            t
        })
        .collect()
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

#[test]
fn random_topics_cost_under_three_times_their_size_and_come_back() {
    const N: usize = 100_000;
    const LIMIT: f64 = 3.0;
    let topics = topics(N);
    let bytes = (N * 32) as f64;

    // Publisher side, one subscriber pipe per topic (the storm's shape), cancelled one by one.
    let before = live();
    let mut trie = MTrie::new();
    for t in &topics {
        assert!(trie.add(t, 1));
    }
    let used = live() - before;
    let ratio = used as f64 / bytes;
    println!(
        "MTrie: {N} random 32-byte topics: {used} live heap bytes, {ratio:.2}x the topic bytes"
    );
    // Heap bytes asked for (malloc's rounding comes on top). 4.65x with Vec children and a
    // Vec per pipe set; ~200x with the byte-wise trie before that.
    assert!(ratio < LIMIT, "MTrie {ratio:.2}x");
    // A second pipe on every topic costs a small set per topic, and goes with the pipe.
    for t in &topics {
        assert!(!trie.add(t, 2));
    }
    let mut gone = 0;
    trie.rm_pipe(2, |_, last| gone += usize::from(last));
    assert_eq!(gone, 0);
    let after_pipe = live() - before;
    assert!(
        after_pipe <= used + 4096,
        "{after_pipe} bytes after the second pipe left, {used} before it came"
    );
    for t in &topics {
        assert_eq!(trie.rm(t, 1), RmResult::LastValueRemoved);
    }
    let left = live() - before;
    assert!(
        left < 4096,
        "MTrie: {left} bytes still held after cancelling everything"
    );

    // Cancelled by the pipe leaving.
    for t in &topics {
        trie.add(t, 3);
    }
    trie.rm_pipe(3, |_, _| {});
    assert_eq!(trie.num_topics(), 0);
    let left = live() - before;
    assert!(
        left < 4096,
        "MTrie: {left} bytes still held after the pipe left"
    );
    drop(trie);

    // Subscriber side (SUB/XSUB keep a counted trie of their own subscriptions).
    let before = live();
    let mut sub = SubTrie::new();
    for t in &topics {
        assert!(sub.add(t));
    }
    let used = live() - before;
    let ratio = used as f64 / bytes;
    println!(
        "SubTrie: {N} random 32-byte topics: {used} live heap bytes, {ratio:.2}x the topic bytes"
    );
    assert!(ratio < LIMIT, "SubTrie {ratio:.2}x");
    for t in &topics {
        assert!(sub.rm(t));
    }
    let left = live() - before;
    assert!(
        left < 4096,
        "SubTrie: {left} bytes still held after cancelling everything"
    );
}
