use zeroring::{Context, Error, SocketType, DONTWAIT, SNDMORE};

use crate::common::*;

#[test]
fn req_rep_round_trip_and_strict_alternation() {
    let ctx = Context::new();
    let rep = bound(&ctx, SocketType::Rep, "inproc://rr1");
    let req = connected(&ctx, SocketType::Req, "inproc://rr1");
    // REQ: recv before send, REP: send before recv → EFSM.
    assert_eq!(req.recv_bytes(DONTWAIT), Err(Error::EFSM));
    assert_eq!(rep.send("x", DONTWAIT), Err(Error::EFSM));
    req.send("hello", 0).unwrap();
    assert_eq!(req.send("again", DONTWAIT), Err(Error::EFSM));
    assert_eq!(recv_str(&rep), "hello");
    assert_eq!(rep.recv_bytes(DONTWAIT), Err(Error::EFSM));
    rep.send("world", 0).unwrap();
    assert_eq!(recv_str(&req), "world");
    // Multipart request and reply.
    send_parts(&req, &[b"a", b"b"]);
    assert_eq!(recv_parts(&rep), vec![b"a".to_vec(), b"b".to_vec()]);
    send_parts(&rep, &[b"c", b"d"]);
    assert_eq!(recv_parts(&req), vec![b"c".to_vec(), b"d".to_vec()]);
}

#[test]
fn req_round_robins_requests() {
    let ctx = Context::new();
    let req = bound(&ctx, SocketType::Req, "inproc://rr2");
    let reps: Vec<_> = (0..3)
        .map(|_| connected(&ctx, SocketType::Rep, "inproc://rr2"))
        .collect();
    eventually(|| req.peer_count() == 3);
    for (i, _) in reps.iter().enumerate() {
        req.send(format!("q{i}"), 0).unwrap();
        // Exactly one REP got it; it answers.
        let mut got = None;
        eventually(|| {
            for r in &reps {
                if let Ok(m) = r.recv_string(DONTWAIT) {
                    got = Some((r, m.unwrap()));
                    return true;
                }
            }
            false
        });
        let (r, m) = got.unwrap();
        assert_eq!(m, format!("q{i}"));
        r.send("a", 0).unwrap();
        assert_eq!(recv_str(&req), "a");
    }
    // Every REP was used once.
    for r in &reps {
        assert_eq!(r.stats().received, 1);
    }
}

#[test]
fn req_envelope_seen_by_router_and_reply_from_other_peers_ignored() {
    let ctx = Context::new();
    let req = bound(&ctx, SocketType::Req, "inproc://env");
    let routers: Vec<_> = (0..3)
        .map(|i| {
            let r = sock(&ctx, SocketType::Router);
            r.set_routing_id(format!("R{i}").as_bytes()).unwrap();
            r.connect("inproc://env").unwrap();
            r
        })
        .collect();
    eventually(|| req.peer_count() == 3);
    req.set_routing_id(b"REQ").ok(); // too late to matter; just must not fail
    req.send("ask", 0).unwrap();
    let mut target = None;
    eventually(|| {
        for (i, r) in routers.iter().enumerate() {
            if let Ok(parts) = r.recv_multipart(DONTWAIT) {
                target = Some((i, parts));
                return true;
            }
        }
        false
    });
    let (i, parts) = target.unwrap();
    // [routing id of the REQ, empty delimiter, body]
    assert_eq!(parts.len(), 3);
    assert_eq!(parts[1], b"");
    assert_eq!(parts[2], b"ask");
    let req_id = parts[0].clone();
    // The other routers answer too: REQ must ignore them.
    for (k, r) in routers.iter().enumerate() {
        if k != i {
            r.send_multipart([&req_id[..], b"", b"wrong"], 0).unwrap();
        }
    }
    routers[i]
        .send_multipart([&req_id[..], b"", b"right"], 0)
        .unwrap();
    assert_eq!(recv_str(&req), "right");
    // The wrong replies are discarded (at the latest when the next request is sent).
    req.send("ask2", 0).unwrap();
    assert_eq!(req.stats().dropped_invalid, 2);
}

#[test]
fn req_discards_malformed_replies() {
    let ctx = Context::new();
    let router = bound(&ctx, SocketType::Router, "inproc://malformed");
    let req = connected(&ctx, SocketType::Req, "inproc://malformed");
    req.send("q", 0).unwrap();
    let p = recv_parts(&router);
    // Reply without the empty delimiter: discarded; then a good one.
    router.send_multipart([&p[0][..], b"bad"], 0).unwrap();
    router.send_multipart([&p[0][..], b"", b"good"], 0).unwrap();
    assert_eq!(recv_str(&req), "good");
    assert_eq!(req.stats().dropped_invalid, 1);
}

#[test]
fn rep_keeps_envelope_for_dealer_and_routes_replies_back() {
    let ctx = Context::new();
    let rep = bound(&ctx, SocketType::Rep, "inproc://repenv");
    let d1 = connected(&ctx, SocketType::Dealer, "inproc://repenv");
    let d2 = connected(&ctx, SocketType::Dealer, "inproc://repenv");
    send_parts(&d1, &[b"X", b"Y", b"", b"one"]);
    send_parts(&d2, &[b"", b"two"]);
    // Fair-queued: one from each.
    let mut seen = Vec::new();
    for _ in 0..2 {
        let m = recv_str(&rep);
        rep.send(format!("re:{m}"), 0).unwrap();
        seen.push(m);
    }
    seen.sort();
    assert_eq!(seen, vec!["one", "two"]);
    assert_eq!(
        recv_parts(&d1),
        vec![b"X".to_vec(), b"Y".to_vec(), vec![], b"re:one".to_vec()]
    );
    assert_eq!(recv_parts(&d2), vec![vec![], b"re:two".to_vec()]);
}

#[test]
fn rep_drops_requests_without_delimiter() {
    let ctx = Context::new();
    let rep = bound(&ctx, SocketType::Rep, "inproc://repbad");
    let d = connected(&ctx, SocketType::Dealer, "inproc://repbad");
    d.send("no-envelope", 0).unwrap();
    send_parts(&d, &[b"", b"ok"]);
    assert_eq!(recv_str(&rep), "ok");
    assert_eq!(rep.stats().dropped_invalid, 1);
}

#[test]
fn rep_reply_to_a_peer_that_left_is_dropped() {
    let ctx = Context::new();
    let rep = bound(&ctx, SocketType::Rep, "inproc://repgone");
    let req = connected(&ctx, SocketType::Req, "inproc://repgone");
    req.send("q", 0).unwrap();
    assert_eq!(recv_str(&rep), "q");
    drop(req);
    rep.send("lost", 0).unwrap();
    // REP is ready for the next request.
    let req2 = connected(&ctx, SocketType::Req, "inproc://repgone");
    req2.send("q2", 0).unwrap();
    assert_eq!(recv_str(&rep), "q2");
    rep.send("a2", SNDMORE).unwrap();
    rep.send("b2", 0).unwrap();
    assert_eq!(recv_parts(&req2), vec![b"a2".to_vec(), b"b2".to_vec()]);
    assert_eq!(rep.stats().dropped_unroutable, 1);
}

#[test]
fn req_correlate_and_relaxed() {
    let ctx = Context::new();
    let router = bound(&ctx, SocketType::Router, "inproc://corr");
    let req = sock(&ctx, SocketType::Req);
    req.set_req_correlate(true).unwrap();
    req.set_req_relaxed(true).unwrap();
    req.connect("inproc://corr").unwrap();

    req.send("first", 0).unwrap();
    let p1 = recv_parts(&router);
    // [routing id, 4-byte request id, "", body]
    assert_eq!(p1.len(), 4);
    assert_eq!(p1[1].len(), 4);
    assert_eq!(p1[2], b"");
    assert_eq!(p1[3], b"first");

    // Relaxed: a second request without waiting for the reply.
    req.send("second", 0).unwrap();
    let p2 = recv_parts(&router);
    assert_ne!(p1[1], p2[1], "request ids differ");

    // The reply to the first request is stale: discarded. The second's is taken.
    router
        .send_multipart([&p1[0][..], &p1[1][..], b"", b"stale"], 0)
        .unwrap();
    router
        .send_multipart([&p2[0][..], &p2[1][..], b"", b"fresh"], 0)
        .unwrap();
    assert_eq!(recv_str(&req), "fresh");
    assert!(req.stats().dropped_invalid >= 1);
}

#[test]
fn req_strict_by_default_relaxed_allows_resend_after_lost_peer() {
    let ctx = Context::new();
    let req = sock(&ctx, SocketType::Req);
    req.set_req_relaxed(true).unwrap();
    req.set_req_correlate(true).unwrap();
    let rep1 = bound(&ctx, SocketType::Rep, "inproc://relax1");
    req.connect("inproc://relax1").unwrap();
    req.send("q1", 0).unwrap();
    assert_eq!(recv_str(&rep1), "q1");
    // The REP goes away without answering; a relaxed REQ resends to another peer.
    drop(rep1);
    let rep2 = bound(&ctx, SocketType::Rep, "inproc://relax2");
    req.connect("inproc://relax2").unwrap();
    req.send("q2", 0).unwrap();
    assert_eq!(recv_str(&rep2), "q2");
    rep2.send("a2", 0).unwrap();
    assert_eq!(recv_str(&req), "a2");
}

#[test]
fn req_blocks_without_peers() {
    let ctx = Context::new();
    let req = sock(&ctx, SocketType::Req);
    assert_eq!(req.send("x", DONTWAIT), Err(Error::EAGAIN));
    // Still in the send state: the failed send did not count.
    assert_eq!(req.recv_bytes(DONTWAIT), Err(Error::EFSM));
}

#[test]
fn req_correlate_discards_replies_with_the_wrong_request_id() {
    let ctx = Context::new();
    let router = bound(&ctx, SocketType::Router, "inproc://corr2");
    let req = sock(&ctx, SocketType::Req);
    req.set_req_correlate(true).unwrap();
    req.connect("inproc://corr2").unwrap();
    req.send("X", 0).unwrap();
    let p = recv_parts(&router);
    assert_eq!(p.len(), 4);
    let mut wrong = p[1].clone();
    wrong[0] ^= 0xff;
    router
        .send_multipart([&p[0][..], &wrong[..], b"", b"bad"], 0)
        .unwrap();
    // Without the request id at all: malformed too.
    router
        .send_multipart([&p[0][..], b"", b"worse"], 0)
        .unwrap();
    router
        .send_multipart([&p[0][..], &p[1][..], b"", b"good"], 0)
        .unwrap();
    let t = std::time::Instant::now();
    assert_eq!(recv_str(&req), "good");
    assert_eq!(req.stats().dropped_invalid, 2);
    // The good reply was already queued: no waiting for a wakeup that never comes (this
    // used to sit out the whole RCVTIMEO).
    assert!(t.elapsed() < std::time::Duration::from_secs(4));
}

#[test]
fn rep_fair_queues_requests_from_many_reqs() {
    let ctx = Context::new();
    let rep = bound(&ctx, SocketType::Rep, "inproc://rep-fq");
    let reqs: Vec<_> = (0..3)
        .map(|_| connected(&ctx, SocketType::Req, "inproc://rep-fq"))
        .collect();
    for (i, r) in reqs.iter().enumerate() {
        r.send(format!("{i}"), 0).unwrap();
    }
    let mut order = Vec::new();
    for _ in 0..3 {
        let m = recv_str(&rep);
        rep.send(format!("re{m}"), 0).unwrap();
        order.push(m);
    }
    order.sort();
    assert_eq!(order, vec!["0", "1", "2"]);
    for (i, r) in reqs.iter().enumerate() {
        assert_eq!(recv_str(r), format!("re{i}"));
    }
}
