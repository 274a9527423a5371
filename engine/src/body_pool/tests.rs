//! The pools' unit tests: reuse, limits, cross-thread return, and no leaks.

use std::cell::Cell;

use super::*;

/// Held by the tests that count live blocks.
static LEAK_CHECK: std::sync::Mutex<()> = std::sync::Mutex::new(());
/// Blocks other tests of this crate (which make a few pooled parts and do not take the
/// lock) may hold while a count is taken.
const OTHER_TESTS_SLACK: usize = 64;

fn kept(class: usize) -> usize {
    LOCAL.with(|l| l.kept(class))
}

/// Blocks of other homes in this thread's outboxes.
fn on_the_way_home() -> usize {
    LOCAL.with(|l| l.on_the_way_home())
}

#[test]
fn classes_cover_every_pooled_length() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(class_of(1), Some(0));
    assert_eq!(class_of(64), Some(0));
    assert_eq!(class_of(65), Some(1));
    assert_eq!(class_of(MAX_POOLED), Some(CLASSES.len() - 1));
    assert_eq!(class_of(MAX_POOLED + 1), None);
    assert!(PooledBody::copy_from(&[0; MAX_POOLED + 1]).is_none());
    assert_eq!(DATA_OFFSET % 16, 0);
}

#[test]
fn copies_are_exact_and_blocks_are_reused_on_their_thread() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    for len in [0usize, 1, 39, 64, 65, 500, 1024] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        let a = PooledBody::copy_from(&data).unwrap();
        assert_eq!(a.as_slice(), &data[..]);
        let first = a.block;
        drop(a);
        let b = PooledBody::copy_from(&data).unwrap();
        assert_eq!(
            b.block, first,
            "the block freed here is the next one given out"
        );
        assert_eq!(b.as_slice(), &data[..]);
    }
}

#[test]
fn clones_share_the_block_until_the_last_drop() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let a = PooledBody::copy_from(&[7; 100]).unwrap();
    let b = a.clone();
    assert_eq!(a.block, b.block);
    let before = kept(1);
    drop(a);
    assert_eq!(kept(1), before, "still referenced");
    assert_eq!(b.as_slice(), &[7; 100][..]);
    drop(b);
    assert_eq!(kept(1), before + 1);
}

#[test]
fn blocks_dropped_elsewhere_come_home_through_the_stack() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let bodies: Vec<_> = (0..100)
        .map(|i| PooledBody::copy_from(&[i as u8; 200]).unwrap())
        .collect();
    let blocks: Vec<_> = bodies.iter().map(|b| b.block).collect();
    std::thread::spawn(move || drop(bodies)).join().unwrap();
    // This thread's list of class 2 may hold older blocks; drain it, then the pushed
    // ones come back (in some order) once the private list is empty.
    LOCAL.with(|l| l.drain(2));
    let again: Vec<_> = (0..100)
        .map(|_| PooledBody::copy_from(&[1; 200]).unwrap())
        .collect();
    let got = again.iter().map(|b| b.block).collect();
    assert_same_blocks(got, blocks, "every block given back is reused, none twice");
}

#[test]
fn a_thread_keeps_at_most_its_limit() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let n = kept_cap(4) + 10;
    std::thread::spawn(move || {
        let bodies: Vec<_> = (0..n)
            .map(|_| PooledBody::copy_from(&[3; 1000]).unwrap())
            .collect();
        drop(bodies);
        assert_eq!(kept(4), kept_cap(4));
    })
    .join()
    .unwrap();
}

/// A pipe's worth of parts (the default HWM, 1,000) of the largest small class (1 KiB) made
/// on one thread and dropped on another all come home and are all reused: making them again
/// takes no block from the allocator. (A cap of 256 KiB alone kept 256 of 1 KiB and sent the
/// rest back to the allocator.)
#[test]
fn a_full_pipe_of_the_largest_small_class_comes_home_whole() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let class = class_of(SMALL_MAX).unwrap();
    assert!(kept_cap(class) >= 1_000);
    std::thread::spawn(|| {
        let make = || -> Vec<PooledBody> {
            (0..1_000)
                .map(|i| PooledBody::copy_from(&[i as u8; SMALL_MAX]).unwrap())
                .collect()
        };
        let first = make();
        assert_eq!(MADE_HERE.with(Cell::get), 1_000);
        std::thread::spawn(move || drop(first)).join().unwrap();
        let again = make();
        assert_eq!(
            MADE_HERE.with(Cell::get),
            1_000,
            "every block came back and was reused, none made anew"
        );
        drop(again);
    })
    .join()
    .unwrap();
}

/// Above 1 KiB the classes keep KEPT_LARGE_BYTES of blocks together: a burst of 64 KiB parts
/// given back by another thread is served from them, and what goes past the limit goes back
/// to the allocator instead of staying idle here; blocks of another large class share it.
#[test]
fn large_classes_keep_their_byte_limit_together_and_reuse_what_comes_home() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let class = class_of(MAX_POOLED).unwrap();
    let cap = KEPT_LARGE_BYTES / MAX_POOLED;
    assert!(cap >= 100, "a burst of a hundred 64 KiB parts is kept");
    std::thread::spawn(move || {
        let make = |n: usize, len: usize| -> Vec<PooledBody> {
            (0..n)
                .map(|i| PooledBody::copy_from(&vec![i as u8; len]).unwrap())
                .collect()
        };
        let first = make(cap, MAX_POOLED);
        std::thread::spawn(move || drop(first)).join().unwrap();
        let again = make(cap, MAX_POOLED);
        assert_eq!(MADE_HERE.with(Cell::get), cap, "all reused");
        drop(again);
        assert_eq!(kept(class), cap);
        let burst = make(cap * 3, MAX_POOLED);
        std::thread::spawn(move || drop(burst)).join().unwrap();
        let _one = make(1, MAX_POOLED);
        assert_eq!(kept(class), cap - 1, "the rest went back");
        // The budget is shared: the room one 64 KiB block left takes two 32 KiB ones, and no
        // third.
        let half = class_of(MAX_POOLED / 2).unwrap();
        drop(make(3, MAX_POOLED / 2));
        assert_eq!(kept(half), 2);
    })
    .join()
    .unwrap();
}

/// A BodyBuf fills in order up to its length and no further, freezes into a body with the
/// bytes written, and one dropped unfrozen gives its block back.
#[test]
fn a_body_buf_fills_to_its_length_and_freezes_or_goes_home() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    std::thread::spawn(|| {
        let mut b = BodyBuf::with_len(3000).unwrap();
        assert_eq!(b.extend_from_slice(&[1; 1000]), 1000);
        assert_eq!(
            b.extend_from_slice(&[2; 5000]),
            2000,
            "never past its length"
        );
        assert_eq!((b.len(), b.remaining()), (3000, 0));
        assert_eq!(b.extend_from_slice(&[3]), 0);
        let body = b.freeze();
        assert_eq!(&body.as_slice()[..1000], &[1; 1000][..]);
        assert_eq!(&body.as_slice()[1000..], &[2; 2000][..]);
        let block = body.block;
        drop(body);
        let class = class_of(3000).unwrap();
        assert_eq!(kept(class), 1);
        let unfinished = BodyBuf::with_len(2500).unwrap();
        assert_eq!(unfinished.block, block, "the kept block is reused");
        drop(unfinished);
        assert_eq!(kept(class), 1, "an unfrozen buffer goes home too");
        assert!(BodyBuf::with_len(MAX_POOLED + 1).is_none());
        let z = PooledBody::zeroed(5000).unwrap();
        assert!(z.as_slice().iter().all(|&x| x == 0) && z.len() == 5000);
    })
    .join()
    .unwrap();
}

/// Bodies made, cloned and dropped on many threads at once, passed around by channels
/// (PUB's fan-out, inproc pairs): every byte reads as written, and once every thread has
/// ended, every block is back with the allocator except those this thread keeps.
#[test]
fn threads_trading_clones_lose_nothing_and_leak_nothing() {
    use std::sync::mpsc;
    const THREADS: usize = 6;
    // Under Miri (which runs this to find undefined behaviour in the pool's unsafe code), fewer
    // and smaller bodies: every class up to 4 KiB is still used, in the same pattern.
    const BODIES: usize = if cfg!(miri) { 120 } else { 3_000 };
    const LARGEST: usize = if cfg!(miri) { 4096 } else { MAX_POOLED };
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let (txs, rxs): (Vec<_>, Vec<_>) = (0..THREADS).map(|_| mpsc::channel::<PooledBody>()).unzip();
    let handles: Vec<_> = rxs
        .into_iter()
        .enumerate()
        .map(|(me, rx)| {
            let txs = txs.clone();
            std::thread::spawn(move || {
                let mut kept = Vec::new();
                for i in 0..BODIES {
                    let len = 39 + (i * 7919 + me) % (LARGEST - 38);
                    let fill = (i + me) as u8;
                    let b = PooledBody::copy_from(&vec![fill; len]).unwrap();
                    // Fan out: a clone to the next thread, one to the one after.
                    let _ = txs[(me + 1) % THREADS].send(b.clone());
                    let _ = txs[(me + 2) % THREADS].send(b.clone());
                    if i % 5 == 0 {
                        kept.push(b);
                    }
                    while let Ok(got) = rx.try_recv() {
                        let d = got.as_slice();
                        assert!(d.len() >= 39 && d.iter().all(|&x| x == d[0]));
                    }
                    if kept.len() > 50 {
                        kept.drain(..25);
                    }
                }
                drop(txs);
                // A last burst made and freed here: the thread ends with a full private
                // list, which its end must free.
                let burst: Vec<_> = (0..200)
                    .map(|_| PooledBody::copy_from(&[1; 100]).unwrap())
                    .collect();
                drop(burst);
                kept
            })
        })
        .collect();
    drop(txs);
    let leftovers: Vec<Vec<PooledBody>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    for (t, bodies) in leftovers.iter().enumerate() {
        for b in bodies {
            let d = b.as_slice();
            assert!(
                d.iter().all(|&x| x == d[0]),
                "thread {t}'s kept body intact"
            );
        }
    }
    // Their homes are closed: these go straight back to the allocator.
    drop(leftovers);
    // What is still live: blocks on this thread's private lists, and bodies other tests
    // running now hold (hence the lock: the tests that count run one at a time).
    let here = LOCAL.with(|l| l.kept_total() + l.on_the_way_home());
    assert!(
        LIVE_BLOCKS.load(Ordering::Relaxed) <= here + OTHER_TESTS_SLACK,
        "{} blocks live, {here} kept here",
        LIVE_BLOCKS.load(Ordering::Relaxed)
    );
}

#[test]
fn bodies_outlive_the_thread_that_made_them() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let bodies = std::thread::spawn(|| {
        (0..50)
            .map(|i| PooledBody::copy_from(&[i as u8; 300]).unwrap())
            .collect::<Vec<_>>()
    })
    .join()
    .unwrap();
    // The home is closed now: these go back to the allocator (or to a thread that took
    // the home over), and read fine until then.
    for (i, b) in bodies.iter().enumerate() {
        assert_eq!(b.as_slice(), &[i as u8; 300][..]);
    }
    let clones: Vec<_> = bodies.to_vec();
    drop(bodies);
    std::thread::spawn(move || drop(clones)).join().unwrap();
}

/// What other threads gave back to this thread's home in `class` (classes up to 1 KiB): the
/// length of each batch, and every block's address; the blocks go back to the allocator.
fn take_home(class: usize) -> (Vec<usize>, Vec<NonNull<Header>>) {
    let home = LOCAL.with(|l| l.home());
    let chain = home.stacks[class].0.take_all();
    let (mut lens, mut blocks) = (Vec::new(), Vec::new());
    let mut node = chain;
    while let Some(c) = node {
        let container = c.cast::<Header>();
        // SAFETY: the taken chain is ours alone; nothing is freed before the walk ends.
        unsafe {
            let n = batch_len(container);
            lens.push(n);
            blocks.extend((0..n).map(|i| addresses(container).add(i).read()));
            blocks.push(container);
            node = FreeStack::next(c);
        }
    }
    // SAFETY: as above.
    unsafe { free_chain(chain, class) };
    (lens, blocks)
}

/// Asserts that `got` and `want` hold the same blocks, each once, in any order.
fn assert_same_blocks(mut got: Vec<NonNull<Header>>, mut want: Vec<NonNull<Header>>, what: &str) {
    got.sort();
    want.sort();
    assert_eq!(got, want, "{what}");
}

/// Runs `body` on a new thread and waits for it to end.
fn on_a_thread<R: Send + 'static>(body: impl FnOnce() -> R + Send + 'static) -> R {
    std::thread::spawn(body).join().unwrap()
}

/// Blocks of another home freed here gather in this thread's outbox and go home a full batch
/// (a container and `batch_cap` addresses) per push; the rest goes home when the thread
/// ends. Every block comes home once.
#[test]
fn blocks_freed_elsewhere_go_home_in_full_batches() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    on_a_thread(|| {
        let class = 0;
        let cap = batch_cap(class);
        assert_eq!(cap, 8, "a 64-byte body holds eight addresses");
        let n = (cap + 1) * 5 + 3;
        let bodies: Vec<_> = (0..n)
            .map(|i| PooledBody::copy_from(&[i as u8; 64]).unwrap())
            .collect();
        let want: Vec<_> = bodies.iter().map(|b| b.block).collect();
        let (to_other, there) = std::sync::mpsc::channel::<Vec<PooledBody>>();
        let (report, reported) = std::sync::mpsc::channel::<usize>();
        let (end, ending) = std::sync::mpsc::channel::<()>();
        let other = std::thread::spawn(move || {
            drop(there.recv().unwrap());
            report.send(on_the_way_home()).unwrap();
            ending.recv().unwrap();
        });
        to_other.send(bodies).unwrap();
        assert_eq!(
            reported.recv().unwrap(),
            3,
            "the last three wait in the outbox"
        );
        let (lens, mut got) = take_home(class);
        assert_eq!(lens, vec![cap; 5], "five full batches, one push each");
        end.send(()).unwrap();
        other.join().unwrap();
        let (lens, rest) = take_home(class);
        assert_eq!(lens, vec![2], "the outbox went home as the thread ended");
        got.extend(rest);
        assert_same_blocks(got, want, "every block came home, none twice");
    });
}

/// A thread freeing blocks of two homes in turn sends each batch to its own home.
#[test]
fn an_outbox_sends_each_block_to_its_own_home() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let (to_other, there) = std::sync::mpsc::channel::<Vec<PooledBody>>();
    let other = std::thread::spawn(move || {
        let a = there.recv().unwrap();
        let b = there.recv().unwrap();
        // In turn: each block of the other home sends the outbox home first.
        for (x, y) in a.into_iter().zip(b) {
            drop(x);
            drop(y);
        }
    });
    let (ends, waits): (Vec<_>, Vec<_>) = (0..2).map(|_| std::sync::mpsc::channel::<()>()).unzip();
    let homes: Vec<_> = waits
        .into_iter()
        .map(|wait| {
            let to_other = to_other.clone();
            std::thread::spawn(move || {
                let bodies: Vec<_> = (0..20)
                    .map(|i| PooledBody::copy_from(&[i as u8; 100]).unwrap())
                    .collect();
                let want: Vec<_> = bodies.iter().map(|b| b.block).collect();
                to_other.send(bodies).unwrap();
                wait.recv().unwrap();
                let (_, got) = take_home(class_of(100).unwrap());
                assert_same_blocks(got, want, "this home's blocks, all of them, and no other's");
            })
        })
        .collect();
    drop(to_other);
    other.join().unwrap();
    for end in ends {
        end.send(()).unwrap();
    }
    for h in homes {
        h.join().unwrap();
    }
}

/// A batch whose home has closed (its thread ended) is refused, and freed whole by the thread
/// that sent it: nothing leaks, nothing is freed twice (a refused push may leave a stale
/// link in the container, which must not be followed).
#[test]
fn a_batch_a_closed_home_refuses_is_freed_once() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    let before = LIVE_BLOCKS.load(Ordering::Relaxed);
    let bodies = on_a_thread(|| {
        let make = || {
            (0..500)
                .map(|i| PooledBody::copy_from(&[i as u8; 64]).unwrap())
                .collect::<Vec<_>>()
        };
        // Made, freed here (linked into the free list) and made again: each block's link
        // still names another block.
        drop(make());
        make()
    });
    on_a_thread(move || drop(bodies));
    let after = LIVE_BLOCKS.load(Ordering::Relaxed);
    assert!(
        after <= before + OTHER_TESTS_SLACK,
        "{before} blocks live before, {after} after"
    );
}

/// Every block starts on a cache line of its own (neighbouring blocks share no line), in
/// every class, and its body is whole and writable to the end of the class.
#[test]
fn blocks_start_on_lines_of_their_own() {
    let _serial = LEAK_CHECK.lock().unwrap_or_else(|e| e.into_inner());
    on_a_thread(|| {
        for (class, &size) in CLASSES.iter().enumerate() {
            let bodies: Vec<_> = (0..5)
                .map(|i| PooledBody::copy_from(&vec![i as u8; size]).unwrap())
                .collect();
            for (i, b) in bodies.iter().enumerate() {
                assert_eq!(b.block.as_ptr().addr() % LINE, 0, "class {class}");
                assert!(b.as_slice().iter().all(|&x| x == i as u8));
            }
        }
    });
}
