//! loom models of the free stack that carries message bodies back to the thread that
//! allocated them (`engine/src/free_stack.rs`, used by `body_pool`).
#![cfg(loom)]

mod loom_common;

use std::ptr::NonNull;

use loom::sync::atomic::{AtomicUsize, Ordering};
use loom::sync::Arc;
use loom::thread;
use zeroring_engine::free_stack::{FreeStack, Link};

use loom_common::model;

/// A node: its link first (as a body block's header is), then a payload written by the
/// thread that frees it, which the taker must see.
#[repr(C)]
struct Node {
    link: Link,
    id: usize,
    /// Written by the pusher before the push; read by whoever takes the node.
    last_user: AtomicUsize,
}

/// A node handed around as an address (the stack's nodes are raw memory).
#[derive(Clone, Copy)]
struct Ptr(NonNull<Link>);
// SAFETY: the models hand each node to one thread at a time; the stack publishes it.
unsafe impl Send for Ptr {}

fn node(id: usize) -> Ptr {
    let b = Box::new(Node {
        link: Link::new(),
        id,
        last_user: AtomicUsize::new(0),
    });
    Ptr(NonNull::from(Box::leak(b)).cast())
}

/// Pushes `p` as thread `who`; a refused node is freed here (as `body_pool` frees a block its
/// closed home refuses). Returns the id if it was refused.
fn give_back(stack: &FreeStack, p: Ptr, who: usize) -> Option<usize> {
    // SAFETY: the node is live and ours.
    let n = unsafe { p.0.cast::<Node>().as_ref() };
    n.last_user.store(who, Ordering::Relaxed);
    // SAFETY: live, 2-aligned, in no list.
    match unsafe { stack.push(p.0) } {
        Ok(()) => None,
        Err(back) => {
            // SAFETY: refused: still ours alone; made by `node`.
            let b = unsafe { Box::from_raw(back.cast::<Node>().as_ptr()) };
            Some(b.id)
        }
    }
}

/// Takes a list, checks each node's payload is the pusher's, frees the nodes; returns ids.
fn drain(mut head: Option<NonNull<Link>>, ids: &mut Vec<usize>) {
    while let Some(n) = head {
        // SAFETY: the taken list is ours; read the link before the node goes.
        unsafe {
            head = FreeStack::next(n);
            let b = Box::from_raw(n.cast::<Node>().as_ptr());
            assert_eq!(
                b.last_user.load(Ordering::Relaxed),
                b.id % 2 + 1,
                "the pusher's writes are visible to the taker"
            );
            ids.push(b.id);
        }
    }
}

/// Two threads give nodes back while the owner takes what arrived and then closes: every node
/// ends exactly once, either taken by the owner or refused and freed by its pusher — none is
/// left in the closed stack, none is taken twice (a double free would fail the model).
#[test]
fn pushes_racing_take_and_close_lose_nothing() {
    model(|| {
        let stack = Arc::new(FreeStack::new());
        let mut handles = Vec::new();
        for who in 1..=2usize {
            let stack = stack.clone();
            // Thread 1 frees odd ids, thread 2 even ones (ids 1..=4).
            let nodes: Vec<Ptr> = (1..=4).filter(|i| i % 2 + 1 == who).map(node).collect();
            handles.push(thread::spawn(move || {
                nodes
                    .into_iter()
                    .filter_map(|p| give_back(&stack, p, who))
                    .collect::<Vec<_>>()
            }));
        }
        let mut ids = Vec::new();
        drain(stack.take_all(), &mut ids);
        drain(stack.close(), &mut ids);
        for h in handles {
            ids.extend(h.join().unwrap());
        }
        ids.sort();
        assert_eq!(ids, vec![1, 2, 3, 4]);
    });
}

/// A closed stack given to a new owner: a push racing the reopen is either refused (and
/// freed by its pusher) or lands for the new owner — never both, never lost.
#[test]
fn a_push_racing_reopen_lands_once() {
    model(|| {
        let stack = Arc::new(FreeStack::new());
        assert!(stack.close().is_none());
        let pusher = {
            let stack = stack.clone();
            let p = node(1);
            thread::spawn(move || give_back(&stack, p, 2))
        };
        stack.reopen();
        let mut ids = Vec::new();
        drain(stack.take_all(), &mut ids);
        let refused = pusher.join().unwrap();
        drain(stack.close(), &mut ids);
        ids.extend(refused);
        assert_eq!(ids, vec![1]);
    });
}
