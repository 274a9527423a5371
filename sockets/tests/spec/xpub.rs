use zeroring::{Context, Error, SocketType, DONTWAIT};

use crate::common::*;

#[test]
fn xpub_reports_new_topics_once_and_last_unsubscribe() {
    let ctx = Context::new();
    let xpub = bound(&ctx, SocketType::XPub, "inproc://xp1");
    let s1 = connected(&ctx, SocketType::Sub, "inproc://xp1");
    let s2 = connected(&ctx, SocketType::Sub, "inproc://xp1");
    s1.set_subscribe(b"A").unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01A".to_vec()]);
    s2.set_subscribe(b"A").unwrap();
    s2.set_subscribe(b"B").unwrap();
    // Duplicate "A" is not reported without XPUB_VERBOSE.
    assert_eq!(recv_parts(&xpub), vec![b"\x01B".to_vec()]);
    s1.set_unsubscribe(b"A").unwrap();
    s2.set_unsubscribe(b"A").unwrap();
    // Only the last unsubscription of "A" is reported.
    assert_eq!(recv_parts(&xpub), vec![b"\x00A".to_vec()]);
    assert_no_msg(&xpub);
    assert_eq!(xpub.get_topics_count().unwrap(), 1);
}

#[test]
fn xpub_verbose_and_verboser() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.set_xpub_verbose(true).unwrap();
    xpub.bind("inproc://xp2").unwrap();
    let s1 = connected(&ctx, SocketType::Sub, "inproc://xp2");
    let s2 = connected(&ctx, SocketType::Sub, "inproc://xp2");
    s1.set_subscribe(b"A").unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01A".to_vec()]);
    s2.set_subscribe(b"A").unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01A".to_vec()]);
    s1.set_unsubscribe(b"A").unwrap();
    s2.set_unsubscribe(b"A").unwrap();
    // VERBOSE: only the last unsubscription.
    assert_eq!(recv_parts(&xpub), vec![b"\x00A".to_vec()]);
    assert_no_msg(&xpub);

    xpub.set_xpub_verboser(true).unwrap();
    s1.set_subscribe(b"B").unwrap();
    s2.set_subscribe(b"B").unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01B".to_vec()]);
    assert_eq!(recv_parts(&xpub), vec![b"\x01B".to_vec()]);
    s1.set_unsubscribe(b"B").unwrap();
    s2.set_unsubscribe(b"B").unwrap();
    // VERBOSER: every unsubscription.
    assert_eq!(recv_parts(&xpub), vec![b"\x00B".to_vec()]);
    assert_eq!(recv_parts(&xpub), vec![b"\x00B".to_vec()]);
}

#[test]
fn subscriber_leaving_unsubscribes() {
    let ctx = Context::new();
    let xpub = bound(&ctx, SocketType::XPub, "inproc://xp3");
    let sub = connected(&ctx, SocketType::Sub, "inproc://xp3");
    sub.set_subscribe(b"T").unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01T".to_vec()]);
    drop(sub);
    assert_eq!(recv_parts(&xpub), vec![b"\x00T".to_vec()]);
    assert_eq!(xpub.get_topics_count().unwrap(), 0);
}

#[test]
fn xpub_manual_lets_the_user_decide() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.set_xpub_manual(true).unwrap();
    xpub.bind("inproc://xp4").unwrap();
    let sub = connected(&ctx, SocketType::Sub, "inproc://xp4");
    sub.set_subscribe(b"A").unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01A".to_vec()]);
    // Nothing is subscribed until the user says so; the user maps "A" to "B".
    xpub.send("A1", 0).unwrap();
    xpub.set_subscribe(b"B").unwrap();
    xpub.send("A2", 0).unwrap();
    xpub.send("B1", 0).unwrap();
    // The SUB still filters on "A": a "B" message reaches it only if it also matches.
    assert_no_msg(&sub);
    sub.set_subscribe(b"B").unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01B".to_vec()]);
    xpub.send("B2", 0).unwrap();
    assert_eq!(recv_str(&sub), "B2");
    xpub.set_unsubscribe(b"B").unwrap();
    xpub.send("B3", 0).unwrap();
    assert_no_msg(&sub);
}

#[test]
fn xpub_nodrop_gives_eagain_instead_of_dropping() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.set_xpub_nodrop(true).unwrap();
    xpub.set_sndhwm(2).unwrap();
    xpub.bind("inproc://xp5").unwrap();
    let sub = sock(&ctx, SocketType::Sub);
    sub.set_rcvhwm(2).unwrap();
    sub.connect("inproc://xp5").unwrap();
    sub.set_subscribe(b"").unwrap();
    recv_parts(&xpub);
    let mut sent = 0;
    while xpub.send("m", DONTWAIT).is_ok() {
        sent += 1;
        assert!(sent < 100);
    }
    assert_eq!(sent, 4);
    assert_eq!(xpub.send("m", DONTWAIT), Err(Error::EAGAIN));
    assert_eq!(xpub.stats().dropped_hwm, 0);
    // Draining makes room again (the low-water mark).
    for _ in 0..4 {
        recv_str(&sub);
    }
    xpub.send("again", 0).unwrap();
    assert_eq!(recv_str(&sub), "again");
}

/// A non-blocking send may see its pipe full by an old view of the reader's progress (libzmq's
/// lazily processed activate_write: test_hwm_pubsub's XPUB_NODROP over tcp relies on it), but
/// never for long: EVENTS looks again (so a poll loop sees POLLOUT and its send succeeds), and
/// so does a send that finds no room once the view is a millisecond old.
#[test]
fn a_nonblocking_sender_sees_room_after_events_or_a_millisecond() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.set_xpub_nodrop(true).unwrap();
    xpub.set_sndhwm(2).unwrap();
    xpub.bind("inproc://xp-lazy").unwrap();
    let sub = sock(&ctx, SocketType::Sub);
    sub.set_rcvhwm(2).unwrap();
    sub.connect("inproc://xp-lazy").unwrap();
    sub.set_subscribe(b"").unwrap();
    recv_parts(&xpub);
    for round in 0..20 {
        let mut sent = 0;
        while xpub.send("m", DONTWAIT).is_ok() {
            sent += 1;
            assert!(sent <= 4, "past the mark");
        }
        assert!(sent >= 1, "round {round}: no room after the reader drained");
        for _ in 0..sent {
            assert_eq!(recv_str(&sub), "m");
        }
        if round % 2 == 0 {
            // A poll loop: EVENTS shows the room, and the send that follows takes it.
            assert_ne!(xpub.get_events().unwrap() & zeroring::POLLOUT, 0);
            xpub.send("m", DONTWAIT).unwrap();
        } else {
            // Retrying alone: within a millisecond or so (bounded generously).
            let start = std::time::Instant::now();
            while xpub.send("m", DONTWAIT).is_err() {
                assert!(start.elapsed() < std::time::Duration::from_secs(10));
            }
        }
        assert_eq!(recv_str(&sub), "m");
    }
    assert_eq!(xpub.stats().dropped_hwm, 0);
}

#[test]
fn xpub_welcome_message() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.set_xpub_welcome_msg(b"W").unwrap();
    xpub.bind("inproc://xp6").unwrap();
    let sub = connected(&ctx, SocketType::Sub, "inproc://xp6");
    sub.set_subscribe(b"W").unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01W".to_vec()]);
    assert_eq!(recv_str(&sub), "W");
}

#[test]
fn xsub_sends_subscriptions_and_messages_upstream() {
    let ctx = Context::new();
    let xpub = bound(&ctx, SocketType::XPub, "inproc://xp7");
    let xsub = connected(&ctx, SocketType::XSub, "inproc://xp7");
    xsub.send(&b"\x01topic"[..], 0).unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01topic".to_vec()]);
    xpub.send("topic-1", 0).unwrap();
    assert_eq!(recv_str(&xsub), "topic-1");
    // A user message upstream reaches the XPUB user as is.
    xsub.send("hello upstream", 0).unwrap();
    assert_eq!(recv_str(&xpub), "hello upstream");
    // Cancel: forwarded when the count falls to zero.
    xsub.send(&b"\x00topic"[..], 0).unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x00topic".to_vec()]);
    assert_eq!(xsub.get_topics_count().unwrap(), 0);
}

#[test]
fn xpub_xsub_proxy_forwards_both_ways() {
    let ctx = Context::new();
    let publ = bound(&ctx, SocketType::Pub, "inproc://up");
    let xsub = connected(&ctx, SocketType::XSub, "inproc://up");
    let xpub = bound(&ctx, SocketType::XPub, "inproc://down");
    let sub = connected(&ctx, SocketType::Sub, "inproc://down");
    sub.set_subscribe(b"news").unwrap();
    // Proxy the subscription upstream by hand.
    let s = xpub.recv_msg(0).unwrap();
    xsub.send_msg(s, 0).unwrap();
    eventually(|| publ.get_topics_count().unwrap() == 1);
    publ.send("news: it works", 0).unwrap();
    let m = xsub.recv_msg(0).unwrap();
    xpub.send_msg(m, 0).unwrap();
    assert_eq!(recv_str(&sub), "news: it works");
}

#[test]
fn xpub_manual_cancels_the_peers_own_subscriptions_when_it_leaves() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.set_xpub_manual(true).unwrap();
    xpub.bind("inproc://xp8").unwrap();
    let sub = connected(&ctx, SocketType::Sub, "inproc://xp8");
    sub.set_subscribe(b"A").unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01A".to_vec()]);
    xpub.set_subscribe(b"mapped").unwrap();
    assert_eq!(xpub.get_topics_count().unwrap(), 1);
    // Manual mode passes duplicates too.
    sub.set_subscribe(b"A").unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01A".to_vec()]);
    drop(sub);
    assert_eq!(recv_parts(&xpub), vec![b"\x00A".to_vec()]);
    assert_eq!(xpub.get_topics_count().unwrap(), 0);
    // SUBSCRIBE after the unsubscription applies to no pipe.
    xpub.set_subscribe(b"x").unwrap();
    assert_eq!(xpub.get_topics_count().unwrap(), 0);
}

#[test]
fn verbose_resets_verboser_as_in_libzmq() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.set_xpub_verboser(true).unwrap();
    assert!(xpub.get_xpub_verbose().unwrap());
    xpub.set_xpub_verbose(true).unwrap();
    assert!(!xpub.get_xpub_verboser().unwrap());
}

#[test]
fn xsub_verbose_unsubscribe_forwards_every_cancel() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.set_xpub_verboser(true).unwrap();
    xpub.bind("inproc://xp9").unwrap();
    let xsub = connected(&ctx, SocketType::XSub, "inproc://xp9");
    xsub.set_option(
        zeroring::options::num::XSUB_VERBOSE_UNSUBSCRIBE,
        &1i32.to_ne_bytes(),
    )
    .unwrap();
    xsub.send(&b"\x01a"[..], 0).unwrap();
    xsub.send(&b"\x01a"[..], 0).unwrap();
    xsub.send(&b"\x00a"[..], 0).unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01a".to_vec()]);
    assert_eq!(recv_parts(&xpub), vec![b"\x01a".to_vec()]);
    // Without the option this cancel would stay local (the count is still 1).
    assert_eq!(recv_parts(&xpub), vec![b"\x00a".to_vec()]);
}

#[test]
fn only_first_subscribe_treats_later_parts_as_data() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.set_option(
        zeroring::options::num::ONLY_FIRST_SUBSCRIBE,
        &1i32.to_ne_bytes(),
    )
    .unwrap();
    xpub.bind("inproc://xp10").unwrap();
    let xsub = sock(&ctx, SocketType::XSub);
    xsub.set_option(
        zeroring::options::num::ONLY_FIRST_SUBSCRIBE,
        &1i32.to_ne_bytes(),
    )
    .unwrap();
    xsub.connect("inproc://xp10").unwrap();
    // A user message whose second part happens to start with \x01.
    xsub.send_multipart([&b"data"[..], b"\x01not-a-topic"], 0)
        .unwrap();
    assert_eq!(
        recv_parts(&xpub),
        vec![b"data".to_vec(), b"\x01not-a-topic".to_vec()]
    );
    assert_eq!(xpub.get_topics_count().unwrap(), 0);
}

#[test]
fn a_subscription_with_more_parts_reaches_the_user_as_a_message_of_its_own() {
    // libzmq's XPUB queues a subscription without its MORE flag; the parts after it are
    // examined one by one (data goes to the user as sent, subscriptions apply).
    let ctx = Context::new();
    let xpub = bound(&ctx, SocketType::XPub, "inproc://xp12");
    let xsub = connected(&ctx, SocketType::XSub, "inproc://xp12");
    xsub.send_multipart([&b"\x01multi"[..], b"part"], 0)
        .unwrap();
    xsub.send_multipart([&b"\x01m2"[..], b"\x01m3", b"tail"], 0)
        .unwrap();
    xsub.send("sync", 0).unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01multi".to_vec()]);
    assert_eq!(recv_parts(&xpub), vec![b"part".to_vec()]);
    assert_eq!(recv_parts(&xpub), vec![b"\x01m2".to_vec()]);
    assert_eq!(recv_parts(&xpub), vec![b"\x01m3".to_vec()]);
    assert_eq!(recv_parts(&xpub), vec![b"tail".to_vec()]);
    assert_eq!(recv_parts(&xpub), vec![b"sync".to_vec()]);
    assert_eq!(xpub.get_topics_count().unwrap(), 3);
}

#[test]
fn xpub_manual_last_value_sends_only_to_the_last_subscriber() {
    let ctx = Context::new();
    let xpub = sock(&ctx, SocketType::XPub);
    xpub.set_option(
        zeroring::options::num::XPUB_MANUAL_LAST_VALUE,
        &1i32.to_ne_bytes(),
    )
    .unwrap();
    xpub.bind("inproc://xp11").unwrap();
    let s1 = connected(&ctx, SocketType::Sub, "inproc://xp11");
    s1.set_subscribe(b"A").unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01A".to_vec()]);
    xpub.set_subscribe(b"A").unwrap();
    let s2 = connected(&ctx, SocketType::Sub, "inproc://xp11");
    s2.set_subscribe(b"A").unwrap();
    assert_eq!(recv_parts(&xpub), vec![b"\x01A".to_vec()]);
    xpub.set_subscribe(b"A").unwrap();
    // The last value goes to s2 only (it sent the last subscription read)...
    xpub.send("A-last", 0).unwrap();
    assert_eq!(recv_str(&s2), "A-last");
    assert_no_msg(&s1);
    // ...and then everybody subscribed gets the next ones.
    xpub.send("A-all", 0).unwrap();
    assert_eq!(recv_str(&s1), "A-all");
    assert_eq!(recv_str(&s2), "A-all");
}
