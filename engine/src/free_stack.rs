//! A lock-free stack of freed nodes that any thread pushes onto and one thread (its owner)
//! empties: the return path of [`body_pool`](crate::body_pool), where a message part's body is
//! freed by whichever thread drops it last and handed back to the thread that allocated it.
//!
//! The protocol is one word: the head pointer, with its low bit meaning *closed*.
//! - [`FreeStack::push`] (any thread) links the node in front of the head with a CAS loop; on a
//!   closed stack it refuses, and the pusher frees the node itself.
//! - [`FreeStack::take_all`] (the owner) swaps the head for an empty one and walks the list it
//!   got. Nothing ever pops one node, so the ABA problem of Treiber stacks cannot arise: a push
//!   whose CAS succeeds links in front of whatever the head is at that instant.
//! - [`FreeStack::close`] (the owner, when its thread ends) swaps in the closed mark and gets
//!   the last list; every later push is refused. [`FreeStack::reopen`] gives a closed stack
//!   to a new owner.
//!
//! Since the closed flag and the head are the same word, a push either lands in a list that the
//! owner takes later or is refused: no node can be left behind in a closed stack (no
//! store-load fence pair is needed, as a separate flag would need).
//!
//! Must never: hand one node to two takers, or lose a pushed node. Modelled by loom
//! (`engine/tests/loom_free_stack.rs`).

use std::ptr::NonNull;

use crate::sync::{AtomicUsize, Ordering};

/// The low bit of the head: the owner is gone; pushes are refused.
const CLOSED: usize = 1;

/// The link a node carries (the first field of a `#[repr(C)]` node, so that a pointer to the
/// node is a pointer to its link). Nodes must be aligned to at least 2 bytes.
#[derive(Debug, Default)]
pub struct Link {
    next: AtomicUsize,
}

impl Link {
    /// An unlinked link.
    pub fn new() -> Self {
        Link {
            next: AtomicUsize::new(0),
        }
    }
}

/// See the module documentation.
#[derive(Debug, Default)]
pub struct FreeStack {
    head: AtomicUsize,
}

impl FreeStack {
    /// An empty, open stack.
    pub fn new() -> Self {
        FreeStack {
            head: AtomicUsize::new(0),
        }
    }

    /// Pushes `node` (any thread). `Err(node)` when the stack is closed: the node stays the
    /// caller's.
    ///
    /// # Safety
    ///
    /// `node` points to a live, 2-aligned [`Link`] in no list, and stays live until the owner
    /// takes it: the stack owns it from a successful push on.
    pub unsafe fn push(&self, node: NonNull<Link>) -> Result<(), NonNull<Link>> {
        let addr = node.as_ptr() as usize;
        debug_assert_eq!(addr & CLOSED, 0, "nodes are at least 2-aligned");
        let mut head = self.head.load(Ordering::Relaxed);
        loop {
            if head & CLOSED != 0 {
                return Err(node);
            }
            // SAFETY: the caller lends us the node; nobody else reads its link until the CAS
            // below publishes it (with Release, so the owner's Acquire swap sees this store).
            unsafe { node.as_ref() }.next.store(head, Ordering::Relaxed);
            match self
                .head
                .compare_exchange_weak(head, addr, Ordering::Release, Ordering::Relaxed)
            {
                Ok(_) => return Ok(()),
                Err(now) => head = now,
            }
        }
    }

    /// Takes every node pushed so far (the owner, while the stack is open): the first of a
    /// list walked with [`FreeStack::next`].
    pub fn take_all(&self) -> Option<NonNull<Link>> {
        // A cheap look first: the owner asks whenever its own list runs dry.
        if self.head.load(Ordering::Relaxed) == 0 {
            return None;
        }
        let head = self.head.swap(0, Ordering::Acquire);
        debug_assert_eq!(
            head & CLOSED,
            0,
            "only the owner closes, and it takes no more"
        );
        NonNull::new(head as *mut Link)
    }

    /// Closes the stack (the owner, once, as it goes away) and takes what it held; every later
    /// push is refused.
    pub fn close(&self) -> Option<NonNull<Link>> {
        let head = self.head.swap(CLOSED, Ordering::Acquire);
        NonNull::new((head & !CLOSED) as *mut Link)
    }

    /// Opens a closed stack for a new owner. Pushes refused before this stay refused; later
    /// ones land.
    pub fn reopen(&self) {
        let _was = self.head.swap(0, Ordering::AcqRel);
        debug_assert_eq!(_was, CLOSED, "only a closed, empty stack is reopened");
    }

    /// The node after `node` in a taken list.
    ///
    /// # Safety
    ///
    /// `node` is in a list taken by [`FreeStack::take_all`] or [`FreeStack::close`], still
    /// live, and its link was not changed since.
    pub unsafe fn next(node: NonNull<Link>) -> Option<NonNull<Link>> {
        // SAFETY: per the contract; the taker's Acquire swap made the pusher's store visible.
        NonNull::new(unsafe { node.as_ref() }.next.load(Ordering::Relaxed) as *mut Link)
    }

    /// Sets `node`'s link to `next`: for an owner keeping a taken list (or its own) as a
    /// private free list.
    ///
    /// # Safety
    ///
    /// `node` is live and in no stack (only the owner's private lists).
    pub unsafe fn set_next(node: NonNull<Link>, next: Option<NonNull<Link>>) {
        let next = next.map_or(0, |n| n.as_ptr() as usize);
        // SAFETY: per the contract.
        unsafe { node.as_ref() }.next.store(next, Ordering::Relaxed);
    }
}
