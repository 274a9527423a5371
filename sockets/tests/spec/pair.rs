use zeroring::{Context, Error, SocketType, DONTWAIT, SNDMORE};

use crate::common::*;

#[test]
fn pair_exchanges_both_ways_and_multipart() {
    let ctx = Context::new();
    let a = bound(&ctx, SocketType::Pair, "inproc://pair");
    let b = connected(&ctx, SocketType::Pair, "inproc://pair");
    b.send("hello", 0).unwrap();
    assert_eq!(recv_str(&a), "hello");
    a.send("x", SNDMORE).unwrap();
    a.send("y", 0).unwrap();
    assert_eq!(recv_str(&b), "x");
    assert!(b.get_rcvmore().unwrap());
    assert_eq!(recv_str(&b), "y");
    assert!(!b.get_rcvmore().unwrap());
}

#[test]
fn pair_refuses_a_second_peer() {
    let ctx = Context::new();
    let a = bound(&ctx, SocketType::Pair, "inproc://pair2");
    let b = connected(&ctx, SocketType::Pair, "inproc://pair2");
    b.send("first", 0).unwrap();
    assert_eq!(recv_str(&a), "first");
    let c = connected(&ctx, SocketType::Pair, "inproc://pair2");
    // c's pipe is closed by a; c has no peer left, so its send would block.
    // a refuses c's pipe when it processes the attachment (at its next call).
    eventually(|| a.peer_count() == 1 && c.peer_count() == 0);
    assert_eq!(c.send("x", DONTWAIT), Err(Error::EAGAIN));
    assert_eq!(a.peer_count(), 1);
}

#[test]
fn pair_without_peer_blocks() {
    let ctx = Context::new();
    let a = sock(&ctx, SocketType::Pair);
    assert_eq!(a.send("x", DONTWAIT), Err(Error::EAGAIN));
    assert_eq!(a.recv_bytes(DONTWAIT), Err(Error::EAGAIN));
}
