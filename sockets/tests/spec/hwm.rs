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

#[test]
fn connect_before_bind_gets_both_hwms_too() {
    // libzmq's inproc bind boosts the pending pipes to the sum of both ends' HWMs
    // (test_hwm's *_connect_first cases, test_sockopt_hwm's test_change_before_connected).
    assert_eq!(count(1, 1, false), 2);
    assert_eq!(count(3, 5, false), 8);
    assert_eq!(count(1, 0, false), MAX);
    assert_eq!(count(0, 1, false), MAX);
    // The binder sends: its pipe had the connecter's RCVHWM alone.
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvhwm(2).unwrap();
    pull.connect("inproc://hwm-binder-sends").unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_sndhwm(2).unwrap();
    push.bind("inproc://hwm-binder-sends").unwrap();
    assert_eq!(fill(&push), 4);
}

#[test]
fn a_sender_blocked_before_the_bind_is_woken_by_it() {
    let ctx = Context::new();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_sndhwm(1).unwrap();
    push.connect("inproc://hwm-wake").unwrap();
    assert_eq!(fill(&push), 1);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(move || {
            // Blocks: the pipe holds one message and nobody reads.
            push.send("second", 0).unwrap();
            tx.send(()).unwrap();
        });
        let pull = ctx.socket(SocketType::Pull).unwrap();
        pull.set_rcvhwm(1).unwrap();
        pull.bind("inproc://hwm-wake").unwrap();
        // Room for 2 now: the send completes before anything is read.
        rx.recv_timeout(std::time::Duration::from_secs(10))
            .expect("the bind's larger HWM woke the sender");
        assert_eq!(drain(&pull), 2);
    });
}

#[test]
fn sndhwm_changed_after_connecting_resizes_the_pipe() {
    // test_sockopt_hwm's test_change_after_connected: 1 + 1 at the bind, then SNDHWM 5.
    let ctx = Context::new();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_sndhwm(1).unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvhwm(1).unwrap();
    pull.connect("inproc://hwm-after").unwrap();
    push.bind("inproc://hwm-after").unwrap();
    push.set_sndhwm(5).unwrap();
    assert_eq!(push.get_sndhwm().unwrap(), 5);
    assert_eq!(fill(&push), 6);
    assert_eq!(drain(&pull), 6);
}

#[test]
fn lowering_sndhwm_when_full_keeps_the_queue_and_stops_sooner() {
    // test_sockopt_hwm's test_decrease_when_full: 100 + 1, then SNDHWM 70.
    let ctx = Context::new();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_sndhwm(100).unwrap();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvhwm(1).unwrap();
    push.bind("inproc://hwm-lower").unwrap();
    pull.connect("inproc://hwm-lower").unwrap();
    assert_eq!(fill(&push), 101);
    push.set_sndhwm(70).unwrap();
    assert_eq!(drain(&pull), 101);
    assert_eq!(fill(&push), 71);
    assert_eq!(drain(&pull), 71);
}

#[test]
fn rcvhwm_changed_after_connecting_moves_the_peers_mark() {
    // The reader's side of the pipe: PULL's RCVHWM is part of PUSH's inproc mark.
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvhwm(2).unwrap();
    pull.bind("inproc://hwm-rcv").unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_sndhwm(1).unwrap();
    push.connect("inproc://hwm-rcv").unwrap();
    assert_eq!(fill(&push), 3);
    pull.set_rcvhwm(6).unwrap();
    assert_eq!(fill(&push), 4, "raised by 4: 7 in all");
    pull.set_rcvhwm(1).unwrap();
    assert_eq!(drain(&pull), 7);
    assert_eq!(fill(&push), 2, "1 + 1 now");
    pull.set_rcvhwm(0).unwrap();
    assert_eq!(fill(&push), MAX, "no limit");
    assert_eq!(drain(&pull), MAX + 2);
}
