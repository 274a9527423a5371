use zeroring::{Context, Error, SocketType, DONTWAIT};

use crate::common::*;

/// Waits until the publisher has seen `n` distinct topics.
fn wait_topics(publ: &zeroring::Socket, n: i32) {
    eventually(|| publ.get_topics_count().unwrap() == n);
}

#[test]
fn sub_filters_by_prefix() {
    let ctx = Context::new();
    let publ = bound(&ctx, SocketType::Pub, "inproc://ps1");
    let sub = connected(&ctx, SocketType::Sub, "inproc://ps1");
    sub.set_subscribe(b"A").unwrap();
    wait_topics(&publ, 1);
    for m in ["B1", "A1", "AB", "C", "A"] {
        publ.send(m, 0).unwrap();
    }
    assert_eq!(recv_str(&sub), "A1");
    assert_eq!(recv_str(&sub), "AB");
    assert_eq!(recv_str(&sub), "A");
    assert_no_msg(&sub);
    assert_eq!(sub.stats().filtered, 0, "PUB filters before sending");
}

#[test]
fn subscriptions_are_counted() {
    let ctx = Context::new();
    let publ = bound(&ctx, SocketType::Pub, "inproc://ps2");
    let sub = connected(&ctx, SocketType::Sub, "inproc://ps2");
    sub.set_subscribe(b"T").unwrap();
    sub.set_subscribe(b"T").unwrap();
    assert_eq!(sub.get_topics_count().unwrap(), 1);
    wait_topics(&publ, 1);
    sub.set_unsubscribe(b"T").unwrap();
    // Still subscribed once.
    publ.send("T1", 0).unwrap();
    assert_eq!(recv_str(&sub), "T1");
    sub.set_unsubscribe(b"T").unwrap();
    assert_eq!(sub.get_topics_count().unwrap(), 0);
    wait_topics(&publ, 0);
    publ.send("T2", 0).unwrap();
    assert_no_msg(&sub);
}

#[test]
fn empty_subscription_matches_all_and_multipart_follows_first_part() {
    let ctx = Context::new();
    let publ = bound(&ctx, SocketType::Pub, "inproc://ps3");
    let sub = connected(&ctx, SocketType::Sub, "inproc://ps3");
    sub.set_subscribe(b"").unwrap();
    wait_topics(&publ, 1);
    send_parts(&publ, &[b"anything", b"second"]);
    assert_eq!(
        recv_parts(&sub),
        vec![b"anything".to_vec(), b"second".to_vec()]
    );
}

#[test]
fn subscriptions_made_before_connect_and_sub_binding() {
    let ctx = Context::new();
    // SUB binds, subscribes before anyone connects; the PUB connects later.
    let sub = sock(&ctx, SocketType::Sub);
    sub.set_subscribe(b"x").unwrap();
    sub.bind("inproc://ps4").unwrap();
    let publ = connected(&ctx, SocketType::Pub, "inproc://ps4");
    // The SUB attaches the PUB's pipe (and replays its subscriptions) when it runs.
    eventually(|| {
        let _ = sub.get_events();
        publ.get_topics_count().unwrap() == 1
    });
    publ.send("xyz", 0).unwrap();
    publ.send("abc", 0).unwrap();
    assert_eq!(recv_str(&sub), "xyz");
    assert_no_msg(&sub);
}

#[test]
fn pub_fans_out_to_every_matching_subscriber() {
    let ctx = Context::new();
    let publ = bound(&ctx, SocketType::Pub, "inproc://ps5");
    let subs: Vec<_> = (0..3)
        .map(|i| {
            let s = connected(&ctx, SocketType::Sub, "inproc://ps5");
            s.set_subscribe(if i == 2 { b"z" } else { b"a" }).unwrap();
            s
        })
        .collect();
    wait_topics(&publ, 2);
    publ.send("a-msg", 0).unwrap();
    publ.send("z-msg", 0).unwrap();
    assert_eq!(recv_str(&subs[0]), "a-msg");
    assert_eq!(recv_str(&subs[1]), "a-msg");
    assert_eq!(recv_str(&subs[2]), "z-msg");
    for s in &subs {
        assert_no_msg(s);
    }
}

#[test]
fn pub_never_blocks_and_counts_drops_at_hwm() {
    let ctx = Context::new();
    let publ = sock(&ctx, SocketType::Pub);
    publ.set_sndhwm(5).unwrap();
    publ.bind("inproc://ps6").unwrap();
    let sub = sock(&ctx, SocketType::Sub);
    sub.set_rcvhwm(5).unwrap();
    sub.connect("inproc://ps6").unwrap();
    sub.set_subscribe(b"").unwrap();
    wait_topics(&publ, 1);
    for i in 0..100 {
        publ.send(format!("{i}"), DONTWAIT).unwrap();
    }
    let mut got = 0;
    while sub.recv_bytes(DONTWAIT).is_ok() {
        got += 1;
    }
    assert_eq!(got, 10);
    assert_eq!(publ.stats().dropped_hwm, 90);
    assert_eq!(publ.stats().sent, 100);
}

/// A socket sees its readers' progress lazily (libzmq's activate_write, processed when the
/// socket processes commands), but PUB's "full" drops a message rather than refusing it: the
/// drop decision looks at the reader's live progress, so a subscriber that has read everything
/// loses nothing, however soon the publisher sends again (a stale view would drop the whole
/// second batch: PUB's sends never wait or poll, so nothing else would make it look).
#[test]
fn pub_drops_nothing_after_its_subscriber_drained() {
    let ctx = Context::new();
    let publ = sock(&ctx, SocketType::Pub);
    publ.set_sndhwm(5).unwrap();
    publ.bind("inproc://ps-lazy").unwrap();
    let sub = sock(&ctx, SocketType::Sub);
    sub.set_rcvhwm(5).unwrap();
    sub.connect("inproc://ps-lazy").unwrap();
    sub.set_subscribe(b"").unwrap();
    wait_topics(&publ, 1);
    for round in 0..5 {
        for i in 0..10 {
            publ.send(format!("{round}.{i}"), DONTWAIT).unwrap();
        }
        for i in 0..10 {
            assert_eq!(recv_str(&sub), format!("{round}.{i}"));
        }
    }
    assert_eq!(publ.stats().dropped_hwm, 0);
    assert_eq!(publ.stats().sent, 50);
}

#[test]
fn pub_without_subscribers_drops_silently() {
    let ctx = Context::new();
    let publ = sock(&ctx, SocketType::Pub);
    publ.send("nobody", DONTWAIT).unwrap();
    assert_eq!(
        publ.get_events().unwrap() & zeroring::POLLOUT,
        zeroring::POLLOUT
    );
}

#[test]
fn invert_matching() {
    let ctx = Context::new();
    let publ = sock(&ctx, SocketType::Pub);
    publ.set_invert_matching(true).unwrap();
    publ.bind("inproc://ps7").unwrap();
    let sub = sock(&ctx, SocketType::Sub);
    sub.set_invert_matching(true).unwrap();
    sub.connect("inproc://ps7").unwrap();
    sub.set_subscribe(b"prefix").unwrap();
    wait_topics(&publ, 1);
    publ.send("prefix-no", 0).unwrap();
    publ.send("other-yes", 0).unwrap();
    assert_eq!(recv_str(&sub), "other-yes");
    assert_no_msg(&sub);
}

/// A publisher that does not filter: a raw pipe pair attached to the SUB through the
/// transports' entry point, the way a ZMTP connection to a peer will be.
fn raw_publisher(
    sub: &zeroring::Socket,
) -> (
    zeroring::engine::pipe::PipeWriter<zeroring::Msg>,
    zeroring::engine::pipe::PipeReader<zeroring::Msg>,
) {
    use zeroring::attach::{Peer, PeerAttachment};
    use zeroring::engine::pipe::{pipe, PipeConfig};
    let (to_sub_w, to_sub_r) = pipe(PipeConfig::with_hwm(100));
    let (from_sub_w, from_sub_r) = pipe(PipeConfig::with_hwm(100));
    sub.attach_handle()
        .attach(PeerAttachment::new(
            from_sub_w,
            to_sub_r,
            Peer::new(SocketType::Pub, "raw://test"),
        ))
        .unwrap();
    (to_sub_w, from_sub_r)
}

#[test]
fn sub_filters_locally() {
    let ctx = Context::new();
    let sub = sock(&ctx, SocketType::Sub);
    sub.set_subscribe(b"keep").unwrap();
    let (mut w, _subscriptions) = raw_publisher(&sub);
    for m in ["drop-this", "keep-this"] {
        w.write(zeroring::Msg::from(m)).unwrap();
    }
    w.write(zeroring::Msg::from("drop").with_more(true))
        .unwrap();
    w.write(zeroring::Msg::from("tail")).unwrap();
    w.flush();
    assert_eq!(recv_str(&sub), "keep-this");
    assert_no_msg(&sub);
    assert_eq!(sub.stats().filtered, 2);
}

#[test]
fn subscribe_on_wrong_type_is_einval() {
    let ctx = Context::new();
    let publ = sock(&ctx, SocketType::Pub);
    assert_eq!(publ.set_subscribe(b"x"), Err(Error::EINVAL));
    let xpub = sock(&ctx, SocketType::XPub);
    // Without XPUB_MANUAL, XPUB refuses SUBSCRIBE.
    assert_eq!(xpub.set_subscribe(b"x"), Err(Error::EINVAL));
}

#[test]
fn sub_events_do_not_report_filtered_messages() {
    let ctx = Context::new();
    let sub = sock(&ctx, SocketType::Sub);
    sub.set_subscribe(b"a").unwrap();
    let (mut w, _subscriptions) = raw_publisher(&sub);
    w.write(zeroring::Msg::from("b")).unwrap();
    w.flush();
    assert_eq!(sub.get_events().unwrap() & zeroring::POLLIN, 0);
    w.write(zeroring::Msg::from("a")).unwrap();
    w.flush();
    assert_eq!(
        sub.get_events().unwrap() & zeroring::POLLIN,
        zeroring::POLLIN
    );
    assert_eq!(recv_str(&sub), "a");
    assert_eq!(sub.stats().filtered, 1);
}

#[test]
fn hiccup_replays_subscriptions_on_a_kept_pipe() {
    use zeroring::attach::{Peer, PeerAttachment};
    use zeroring::engine::pipe::{pipe, PipeConfig};
    let ctx = Context::new();
    let sub = sock(&ctx, SocketType::Sub);
    sub.set_subscribe(b"a").unwrap();
    sub.set_subscribe(b"b").unwrap();
    // What a tcp connecter does: one pipe pair for the socket, kept across reconnects.
    let (_to_sub_w, to_sub_r) = pipe(PipeConfig::with_hwm(100));
    let (from_sub_w, mut from_sub_r) = pipe(PipeConfig::with_hwm(100));
    let mut peer = Peer::new(SocketType::Pub, "tcp://example:1");
    peer.key = Some(7);
    let h = sub.attach_handle();
    h.attach(PeerAttachment::new(from_sub_w, to_sub_r, peer))
        .unwrap();
    let mut read_all = || {
        let _ = sub.get_events(); // let the socket process its commands
        let mut v = Vec::new();
        while let Ok(m) = from_sub_r.read() {
            v.push(m.data().to_vec());
        }
        v.sort();
        v
    };
    assert_eq!(read_all(), vec![b"\x01a".to_vec(), b"\x01b".to_vec()]);
    // The connection dropped and came back: the new PUB needs the subscriptions again.
    h.hiccup(7).unwrap();
    assert_eq!(read_all(), vec![b"\x01a".to_vec(), b"\x01b".to_vec()]);
    h.hiccup(8).unwrap(); // unknown key: nothing
    assert!(read_all().is_empty());
}

#[test]
fn subscriptions_made_before_a_tcp_connect_reach_the_publisher() {
    for t in [SocketType::Sub, SocketType::XSub] {
        let ctx = Context::new();
        let publ = sock(&ctx, SocketType::XPub);
        publ.bind("tcp://127.0.0.1:*").unwrap();
        let ep = publ.get_last_endpoint().unwrap().unwrap();
        let sub = sock(&ctx, t);
        if t == SocketType::Sub {
            sub.set_subscribe(b"A").unwrap();
        } else {
            sub.send(&b"\x01A"[..], 0).unwrap();
        }
        sub.connect(&ep).unwrap();
        assert_eq!(publ.recv_bytes(0).unwrap(), b"\x01A", "{t:?}");
        publ.send("A1", 0).unwrap();
        assert_eq!(recv_str(&sub), "A1");
    }
}

/// libzmq's test_xpub_manual (test_basic): an XSUB does not filter what arrives by its own
/// subscriptions (libzmq filters only for SUB); the publisher decides what it gets.
#[test]
fn xsub_passes_messages_its_subscriptions_do_not_match() {
    let ctx = Context::new();
    let xsub = sock(&ctx, SocketType::XSub);
    xsub.send(&b"\x01A"[..], 0).unwrap();
    let (mut w, _subscriptions) = raw_publisher(&xsub);
    w.write(zeroring::Msg::from("B")).unwrap();
    w.flush();
    assert_eq!(recv_str(&xsub), "B");
    assert_eq!(xsub.stats().filtered, 0);
}
