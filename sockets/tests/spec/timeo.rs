use std::time::{Duration, Instant};

use zeroring::{Context, Error, SocketType, DONTWAIT};

use crate::common::*;

#[test]
fn rcvtimeo_returns_eagain_after_at_least_the_timeout() {
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.bind("inproc://timeo").unwrap();
    pull.set_rcvtimeo(100).unwrap();
    let t = Instant::now();
    assert_eq!(pull.recv_bytes(0), Err(Error::EAGAIN));
    assert!(t.elapsed() >= Duration::from_millis(100));
    // Zero: never blocks.
    pull.set_rcvtimeo(0).unwrap();
    assert_eq!(pull.recv_bytes(0), Err(Error::EAGAIN));
    assert_eq!(pull.get_rcvtimeo().unwrap(), 0);
}

#[test]
fn sndtimeo_returns_eagain_after_at_least_the_timeout() {
    let ctx = Context::new();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_sndtimeo(100).unwrap();
    let t = Instant::now();
    assert_eq!(push.send("x", 0), Err(Error::EAGAIN));
    assert!(t.elapsed() >= Duration::from_millis(100));
}

#[test]
fn a_message_arriving_during_the_wait_is_received() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("inproc://timeo2").unwrap();
    let push = connected(&ctx, SocketType::Push, "inproc://timeo2");
    std::thread::scope(|s| {
        let h = s.spawn(move || recv_str(&pull));
        push.send("wake", 0).unwrap();
        assert_eq!(h.join().unwrap(), "wake");
    });
}

#[test]
fn dontwait_overrides_timeouts() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    let t = Instant::now();
    assert_eq!(pull.recv_bytes(DONTWAIT), Err(Error::EAGAIN));
    assert!(t.elapsed() < Duration::from_secs(4));
}
