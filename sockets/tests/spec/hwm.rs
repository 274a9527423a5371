use zeroring::{Context, Error, Socket, SocketType, DONTWAIT};

use crate::common::*;

const MAX: usize = 10_000;

fn fill(push: &Socket) -> usize {
    let mut n = 0;
    while n < MAX && push.send("", DONTWAIT).is_ok() {
        n += 1;
    }
    n
}

fn drain(pull: &Socket) -> usize {
    let mut n = 0;
    while pull.recv_bytes(DONTWAIT).is_ok() {
        n += 1;
    }
    n
}

fn count(snd: i32, rcv: i32, bind_first: bool) -> usize {
    let ctx = Context::new();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_sndhwm(snd).unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvhwm(rcv).unwrap();
    if bind_first {
        pull.bind("inproc://hwm").unwrap();
        push.connect("inproc://hwm").unwrap();
    } else {
        push.connect("inproc://hwm").unwrap();
        pull.bind("inproc://hwm").unwrap();
    }
    let sent = fill(&push);
    assert_eq!(drain(&pull), sent);
    push.send("", 0).unwrap();
    assert_eq!(pull.recv_bytes(0).unwrap(), b"");
    sent
}

#[test]
fn defaults_queue_two_thousand() {
    assert_eq!(count(1000, 1000, true), 2000);
}

#[test]
fn inproc_capacity_is_sndhwm_plus_rcvhwm() {
    assert_eq!(count(1, 1, true), 2);
    assert_eq!(count(3, 5, true), 8);
}

#[test]
fn zero_means_unlimited() {
    assert_eq!(count(0, 0, true), MAX);
    assert_eq!(count(1, 0, true), MAX);
    assert_eq!(count(0, 1, true), MAX);
    assert_eq!(count(0, 0, false), MAX);
}

#[test]
fn connect_then_close_before_bind_keeps_what_was_queued() {
    let ctx = Context::new();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_sndhwm(3).unwrap();
    push.connect("inproc://hwm-close").unwrap();
    let sent = fill(&push);
    assert_eq!(sent, 3);
    drop(push);
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.bind("inproc://hwm-close").unwrap();
    assert_eq!(drain(&pull), 3);
}

#[test]
fn blocked_push_resumes_when_the_reader_drains() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.set_rcvhwm(1).unwrap();
    pull.bind("inproc://hwm-block").unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.set_sndhwm(1).unwrap();
    push.connect("inproc://hwm-block").unwrap();
    assert_eq!(fill(&push), 2);
    assert_eq!(push.send("x", DONTWAIT), Err(Error::EAGAIN));
    std::thread::scope(|s| {
        s.spawn(move || {
            // Blocks until the main thread drains.
            push.send("late", 0).unwrap();
        });
        assert_eq!(pull.recv_bytes(0).unwrap(), b"");
        assert_eq!(pull.recv_bytes(0).unwrap(), b"");
        assert_eq!(recv_str(&pull), "late");
    });
}

#[test]
fn conflate_keeps_only_the_newest() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.set_conflate(true).unwrap();
    pull.bind("inproc://conflate").unwrap();
    let push = connected(&ctx, SocketType::Push, "inproc://conflate");
    for i in 0..20 {
        push.send(format!("{i}"), 0).unwrap();
    }
    assert_eq!(recv_str(&pull), "19");
    assert_no_msg(&pull);
}

#[test]
fn conflating_sender_never_blocks() {
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.set_rcvhwm(1).unwrap();
    pull.bind("inproc://conflate2").unwrap();
    let push = sock(&ctx, SocketType::Push);
    push.set_conflate(true).unwrap();
    push.set_sndhwm(1).unwrap();
    push.connect("inproc://conflate2").unwrap();
    for i in 0..50 {
        push.send(format!("{i}"), DONTWAIT).unwrap();
    }
    assert_eq!(recv_str(&pull), "49");
}

#[test]
fn dealer_and_pair_block_at_hwm() {
    for t in [SocketType::Dealer, SocketType::Pair] {
        let ctx = Context::new();
        let a = ctx.socket(t).unwrap();
        a.set_sndhwm(2).unwrap();
        a.bind("inproc://hwm-block-types").unwrap();
        let b = ctx.socket(t).unwrap();
        b.set_rcvhwm(3).unwrap();
        b.connect("inproc://hwm-block-types").unwrap();
        assert_eq!(fill(&a), 5, "{t}");
        a.set_sndtimeo(20).unwrap();
        assert_eq!(a.send("x", 0), Err(Error::EAGAIN));
        assert_eq!(drain(&b), 5);
        a.send("x", 0).unwrap();
    }
}

#[test]
fn xsub_drops_upstream_at_hwm() {
    let ctx = Context::new();
    let xpub = ctx.socket(SocketType::XPub).unwrap();
    xpub.set_rcvhwm(1).unwrap();
    xpub.bind("inproc://hwm-xsub").unwrap();
    let xsub = ctx.socket(SocketType::XSub).unwrap();
    xsub.set_sndhwm(1).unwrap();
    xsub.connect("inproc://hwm-xsub").unwrap();
    for _ in 0..5 {
        xsub.send("up", DONTWAIT).unwrap();
    }
    assert_eq!(xsub.stats().dropped_hwm, 3);
}
