//! The patterns driven directly, without a Socket, the way the simulator will.

use zeroring_engine::pipe::{pipe, PipeConfig};

use bytes::Bytes;
use zeroring_engine::pipe::PipeReader;
use zeroring_engine::MsgMetadata;

use super::*;

/// A pipe pair attached to a pattern, and the far ends for the test to play the peer.
fn peer(id: PipeId, hwm: usize) -> (Pipe, PipeWriter<Msg>, PipeReader<Msg>) {
    let (to_us_w, to_us_r) = pipe(PipeConfig::with_hwm(hwm));
    let (from_us_w, from_us_r) = pipe(PipeConfig::with_hwm(hwm));
    let p = Pipe {
        id,
        writer: from_us_w,
        reader: to_us_r,
        peer: Peer {
            routing_id: None,
            socket_type: SocketType::Pull,
            metadata: None,
            endpoint: format!("test://{id}"),
            conflate: false,
            key: None,
        },
        routing_id: Bytes::new(),
        queued: false,
        reports_ready: false,
        out_boost: 0,
        rcv_share: hwm as i32,
        direct: None,
    };
    (p, to_us_w, from_us_r)
}

/// A body copied for a tcp/ipc pipe (it has a hand-over of its connection's writes) is
/// streamed past the cache; one for an inproc peer is not.
#[test]
fn only_a_connection_pipe_streams_its_copies() {
    assert_eq!(peer(1, 10).0.copy_hint(), zeroring_engine::CopyHint::Cached);
    assert_eq!(
        connection_peer(1, 10).0.copy_hint(),
        zeroring_engine::CopyHint::Streamed
    );
}

/// `peer`, as a tcp/ipc pipe (with a connection's hand-over).
fn connection_peer(id: PipeId, hwm: usize) -> (Pipe, PipeWriter<Msg>, PipeReader<Msg>) {
    let (mut p, w, r) = peer(id, hwm);
    p.direct = Some(direct::Direct::new(Arc::new(
        zeroring_transports::driver::WireHandover::new(),
    )));
    (p, w, r)
}

/// A part that may go to any pipe is streamed only when every pipe is a connection; one
/// for a given pipe follows that pipe.
#[test]
fn a_set_of_pipes_streams_only_when_every_pipe_is_a_connection() {
    use zeroring_engine::CopyHint::{Cached, Streamed};
    let mut pipes = Pipes::default();
    assert_eq!(pipes.copy_hint(), Cached, "no pipe");
    pipes.push(connection_peer(1, 10).0);
    pipes.push(connection_peer(2, 10).0);
    assert_eq!(pipes.copy_hint(), Streamed);
    pipes.push(peer(3, 10).0);
    assert_eq!(pipes.copy_hint(), Cached, "an inproc peer among them");
    assert_eq!(pipes.copy_hint_of(Some(1)), Streamed);
    assert_eq!(pipes.copy_hint_of(Some(3)), Cached);
    assert_eq!(pipes.copy_hint_of(Some(9)), Cached, "no such pipe");
    assert_eq!(pipes.copy_hint_of(None), Cached);
}

/// The socket types on the generic send path pick the hint of where the part goes: a
/// ROUTER the pipe its routing id chose, a REP the pipe of the request, a PAIR, REQ or
/// XPUB all their pipes; and a large body sent through them arrives whole.
#[test]
fn each_socket_type_hints_for_where_its_part_goes() {
    use zeroring_engine::CopyHint::{Cached, Streamed};
    let big = vec![0xA5u8; zeroring_engine::stream_copy::STREAM_MIN + 3];

    // ROUTER: cached for the routing id, then the chosen pipe's hint.
    let options = Options::new(SocketType::Router);
    let mut stats = Stats::default();
    let mut router = new_pattern(SocketType::Router).unwrap();
    let (mut a, mut aw, mut ar) = connection_peer(1, 10);
    a.peer.routing_id = Some(Bytes::from_static(b"A"));
    let (mut b, _bw, _br) = peer(2, 10);
    b.peer.routing_id = Some(Bytes::from_static(b"B"));
    let mut cx = PatternCx {
        options: &options,
        stats: &mut stats,
    };
    router.attach(a, &mut cx);
    router.attach(b, &mut cx);
    // The ROUTER learns its peers' ids from their first messages.
    aw.write(Msg::from("hi")).unwrap();
    aw.flush();
    router.recv(&mut cx).unwrap();
    router.recv(&mut cx).unwrap();
    assert_eq!(router.copy_hint(), Cached);
    router
        .send(Msg::from("A").with_more(true), &mut cx)
        .unwrap();
    assert_eq!(router.copy_hint(), Streamed);
    router.send_slice(&big, false, &mut cx).unwrap();
    assert_eq!(router.copy_hint(), Cached, "the message ended");
    assert_eq!(ar.read().unwrap().data(), &big[..]);

    // REP: the request's pipe.
    let options = Options::new(SocketType::Rep);
    let mut rep = new_pattern(SocketType::Rep).unwrap();
    let (a, mut aw, mut ar) = connection_peer(1, 10);
    let mut cx = PatternCx {
        options: &options,
        stats: &mut stats,
    };
    rep.attach(a, &mut cx);
    aw.write(Msg::from("").with_more(true)).unwrap();
    aw.write(Msg::from("q")).unwrap();
    aw.flush();
    assert_eq!(rep.recv(&mut cx).unwrap().data(), b"q");
    assert_eq!(rep.copy_hint(), Streamed);
    rep.send_slice(&big, false, &mut cx).unwrap();
    assert_eq!(ar.read().unwrap().data(), b"");
    assert_eq!(ar.read().unwrap().data(), &big[..]);

    // PAIR, REQ, XPUB: all their pipes.
    for t in [SocketType::Pair, SocketType::Req, SocketType::XPub] {
        let options = Options::new(t);
        let mut pat = new_pattern(t).unwrap();
        let mut cx = PatternCx {
            options: &options,
            stats: &mut stats,
        };
        assert_eq!(pat.copy_hint(), Cached, "{t:?} without pipes");
        pat.attach(connection_peer(1, 10).0, &mut cx);
        assert_eq!(pat.copy_hint(), Streamed, "{t:?}");
    }
    let options = Options::new(SocketType::XPub);
    let mut xpub = new_pattern(SocketType::XPub).unwrap();
    let mut cx = PatternCx {
        options: &options,
        stats: &mut stats,
    };
    xpub.attach(connection_peer(1, 10).0, &mut cx);
    xpub.attach(peer(2, 10).0, &mut cx);
    assert_eq!(xpub.copy_hint(), Cached, "an inproc subscriber too");
}

#[test]
fn push_pattern_load_balances_and_skips_full_pipes() {
    let options = Options::new(SocketType::Push);
    let mut stats = Stats::default();
    let mut push = new_pattern(SocketType::Push).unwrap();
    let (a, _aw, mut ar) = peer(1, 1);
    let (b, _bw, mut br) = peer(2, 1);
    let mut cx = PatternCx {
        options: &options,
        stats: &mut stats,
    };
    push.attach(a, &mut cx);
    push.attach(b, &mut cx);
    push.send(Msg::from("1"), &mut cx).unwrap();
    push.send(Msg::from("2"), &mut cx).unwrap();
    // Both pipes are at their HWM of 1.
    let e = push.send(Msg::from("3"), &mut cx).unwrap_err();
    assert_eq!(e.error, Error::EAGAIN);
    assert_eq!(ar.read().unwrap().data(), b"1");
    assert_eq!(br.read().unwrap().data(), b"2");
    push.send(e.msg, &mut cx).unwrap();
    assert_eq!(stats.sent, 3);
}

/// With one peer (the load-balancer's shortcut): multipart messages stay whole, the
/// mark refuses a first part with EAGAIN until the reader drains, and a peer that left
/// is detached by the full path the refusal falls through to.
#[test]
fn push_pattern_with_one_peer() {
    let options = Options::new(SocketType::Push);
    let mut stats = Stats::default();
    let mut push = new_pattern(SocketType::Push).unwrap();
    let mut cx = PatternCx {
        options: &options,
        stats: &mut stats,
    };
    let (a, _aw, mut ar) = peer(1, 1);
    push.attach(a, &mut cx);
    push.send_slice(b"a1", true, &mut cx).unwrap();
    push.send_slice(b"a2", false, &mut cx).unwrap();
    assert_eq!(push.send_slice(b"b", false, &mut cx), Err(Error::EAGAIN));
    assert_eq!(ar.read().unwrap().data(), b"a1");
    assert_eq!(ar.read().unwrap().data(), b"a2");
    push.send_slice(b"b", false, &mut cx).unwrap();
    assert_eq!(ar.read().unwrap().data(), b"b");
    assert_eq!(cx.stats.sent, 2);
    ar.close();
    assert_eq!(push.send_slice(b"c", false, &mut cx), Err(Error::EAGAIN));
    assert_eq!(push.peers(), 0);
    assert_eq!(cx.stats.peers_detached, 1);
}

/// PULL with one peer (the fair-queue's shortcut), then two: messages whole and in
/// order, EAGAIN when empty, and round robin once a second peer joins.
#[test]
fn pull_pattern_with_one_peer_then_two() {
    let options = Options::new(SocketType::Pull);
    let mut stats = Stats::default();
    let mut pull = new_pattern(SocketType::Pull).unwrap();
    let mut cx = PatternCx {
        options: &options,
        stats: &mut stats,
    };
    let (a, mut aw, _ar) = peer(1, 0);
    pull.attach(a, &mut cx);
    let mut out = Msg::new();
    assert_eq!(pull.recv_into(&mut out, &mut cx), Err(Error::EAGAIN));
    for (body, more) in [("a1", true), ("a2", false), ("a3", false)] {
        aw.write(Msg::from(body).with_more(more)).unwrap();
    }
    aw.flush();
    let mut got = Vec::new();
    while pull.recv_into(&mut out, &mut cx).is_ok() {
        got.push((String::from_utf8(out.data().to_vec()).unwrap(), out.more()));
    }
    let want = [("a1", true), ("a2", false), ("a3", false)];
    assert_eq!(got, want.map(|(b, m)| (b.to_string(), m)));
    assert_eq!(cx.stats.received, 2);
    let (b, mut bw, _br) = peer(2, 0);
    pull.attach(b, &mut cx);
    for i in 0..2 {
        aw.write(Msg::from(format!("a{i}"))).unwrap();
        bw.write(Msg::from(format!("b{i}"))).unwrap();
    }
    aw.flush();
    bw.flush();
    let mut got = Vec::new();
    while pull.recv_into(&mut out, &mut cx).is_ok() {
        got.push(String::from_utf8(out.data().to_vec()).unwrap());
    }
    assert_eq!(got, ["a0", "b0", "a1", "b1"]);
}

/// A peer that left is skipped and detached; the round robin goes on over the others in
/// order, wrapping past the end, whichever slot the dead pipe held.
#[test]
fn push_pattern_round_robin_survives_a_peer_leaving_mid_rotation() {
    let options = Options::new(SocketType::Push);
    let mut stats = Stats::default();
    let mut push = new_pattern(SocketType::Push).unwrap();
    let mut cx = PatternCx {
        options: &options,
        stats: &mut stats,
    };
    let mut readers = Vec::new();
    for id in 1..=4 {
        let (p, _w, r) = peer(id, 100);
        push.attach(p, &mut cx);
        readers.push(r);
    }
    // 1 and 2 get one each; then 3 leaves while it is next in line.
    push.send(Msg::from("a"), &mut cx).unwrap();
    push.send(Msg::from("b"), &mut cx).unwrap();
    readers[2].close();
    for body in ["c", "d", "e", "f", "g"] {
        push.send(Msg::from(body), &mut cx).unwrap();
    }
    let mut got: Vec<Vec<String>> = Vec::new();
    for r in readers.iter_mut() {
        let mut v = Vec::new();
        while let Ok(m) = r.read() {
            v.push(String::from_utf8(m.data().to_vec()).unwrap());
        }
        got.push(v);
    }
    assert_eq!(got[0], ["a", "d", "g"]);
    assert_eq!(got[1], ["b", "e"]);
    assert!(got[2].is_empty());
    assert_eq!(got[3], ["c", "f"]);
    assert_eq!(push.peers(), 3);
}

/// PUSH's fast sends (`Lb::send_slice_ready` for a slice, `Lb::send_msg_ready` for a whole
/// part; no call) and its full ones take turns without a difference: order, whole
/// multipart messages, bodies past the inline size, the count of messages sent, EAGAIN at
/// the mark, and a reader that went to sleep on the empty pipe woken exactly once by the
/// next send, whichever path it took.
#[test]
fn push_fast_and_full_sends_take_turns_without_a_difference() {
    #[derive(Default)]
    struct Wakes(std::sync::atomic::AtomicUsize);
    impl zeroring_engine::pipe::Notify for Wakes {
        fn notify(&self) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
    let options = Options::new(SocketType::Push);
    let mut stats = Stats::default();
    let mut push = new_pattern(SocketType::Push).unwrap();
    let mut cx = PatternCx {
        options: &options,
        stats: &mut stats,
    };
    let (a, _aw, mut ar) = peer(1, 8);
    let wakes = Arc::new(Wakes::default());
    ar.set_notify(Some(wakes.clone()));
    push.attach(a, &mut cx);
    let big = vec![9u8; 100];
    let (mut sent, mut got, mut messages) = (Vec::new(), Vec::new(), 0u64);
    let mut i = 0usize;
    for round in 0..20 {
        assert_eq!(
            ar.read().map(|_| ()),
            Err(zeroring_engine::pipe::ReadError::Empty),
            "the reader sleeps"
        );
        loop {
            let parts: Vec<(Vec<u8>, bool)> = match i % 5 {
                0 => vec![(big.clone(), false)],
                2 => vec![
                    (b"head".to_vec(), true),
                    (format!("t{i}").into_bytes(), false),
                ],
                _ => vec![(format!("{i}").into_bytes(), false)],
            };
            // Every third message goes as a whole `Msg` (`zmq_msg_send`'s path), with
            // its first part as it is: a body of its own, or copied inline.
            let first = if i % 3 == 0 {
                let (body, more) = &parts[0];
                let m = Msg::copy_from_slice(body).with_more(*more);
                push.send(m, &mut cx).map_err(|e| e.error)
            } else {
                push.send_slice(&parts[0].0, parts[0].1, &mut cx)
            };
            if first == Err(Error::EAGAIN) {
                break;
            }
            first.unwrap();
            for (j, (body, more)) in parts.iter().enumerate() {
                if j > 0 {
                    push.send_slice(body, *more, &mut cx).unwrap();
                }
                sent.push((body.clone(), *more));
            }
            messages += 1;
            i += 1;
        }
        assert_eq!(
            wakes.0.load(std::sync::atomic::Ordering::SeqCst),
            round + 1,
            "woken once per sleep"
        );
        while let Ok(m) = ar.read() {
            got.push((m.data().to_vec(), m.more()));
        }
    }
    assert_eq!(got, sent);
    assert_eq!(cx.stats.sent, messages);
    assert!(messages > 100);
}

/// PULL and DEALER's fast receive (`Fq::recv_ready`, no call) and their full one take
/// turns without a difference: properties a part brings are carried and then kept, a
/// reused part whose body is pooled or whose properties are not the pipe's goes the full
/// way, multipart messages stay whole, the count of messages is exact, and a writer full
/// at its mark is given room again by reads that take the fast path.
#[test]
fn fast_and_full_receives_take_turns_without_a_difference() {
    for kind in [SocketType::Pull, SocketType::Dealer] {
        let options = Options::new(kind);
        let mut stats = Stats::default();
        let mut pat = new_pattern(kind).unwrap();
        let mut cx = PatternCx {
            options: &options,
            stats: &mut stats,
        };
        let (a, mut aw, _ar) = peer(1, 8);
        pat.attach(a, &mut cx);
        let md = {
            let mut m = MsgMetadata::new();
            m.insert("Peer-Address", "a".to_string());
            Arc::new(m)
        };
        let big = vec![7u8; 100];
        let mut want: Vec<(Vec<u8>, bool)> = Vec::new();
        let mut sent = 0;
        let mut write = |aw: &mut PipeWriter<Msg>, i: usize| {
            // Small bodies are copied inline, as the decoder and `send_slice` make them;
            // a body of its own (every seventh) takes the full path when it is the part
            // being reused.
            let m = match i % 7 {
                0 => Msg::from(big.clone()),
                3 => Msg::copy_from_slice(format!("m{i}").as_bytes()).with_more(true),
                _ => Msg::copy_from_slice(format!("{i}").as_bytes()),
            };
            let mut m = m;
            if i == 0 {
                m.set_metadata(Some(md.clone()));
            }
            want.push((m.data().to_vec(), m.more()));
            aw.write(m).unwrap();
            sent += 1;
        };
        let mut out = Msg::new();
        let mut got = Vec::new();
        let mut i = 0;
        for _round in 0..20 {
            // Fill to the mark (a multipart message may go one part past it).
            while aw.is_writable() {
                write(&mut aw, i);
                i += 1;
            }
            aw.flush();
            while let Ok(()) = pat.recv_into(&mut out, &mut cx) {
                assert!(
                    out.metadata().is_some_and(|m| Arc::ptr_eq(m, &md)),
                    "part {} lost the connection's properties",
                    got.len()
                );
                got.push((out.data().to_vec(), out.more()));
            }
            assert!(aw.is_writable(), "the reads gave the writer room");
        }
        assert_eq!(got, want, "{kind:?}");
        let messages = want.iter().filter(|(_, more)| !more).count() as u64;
        assert_eq!(cx.stats.received, messages, "{kind:?}");
        assert!(sent > 100);
    }
}

/// `Pipe::read_into` gives every part its connection's properties: those the first part
/// after a handshake brings, kept by the pipe for the parts without; a reused part's own
/// properties are kept when they are the connection's and replaced when not.
#[test]
fn read_into_carries_each_connections_properties() {
    let (mut p, mut w, _r) = peer(1, 0);
    let md = |v: &str| {
        let mut m = MsgMetadata::new();
        m.insert("Peer-Address", v.to_string());
        Arc::new(m)
    };
    let (a, b, other) = (md("a"), md("b"), md("x"));
    let mut first = Msg::from("1");
    first.set_metadata(Some(a.clone()));
    w.write(first).unwrap();
    w.write(Msg::from("2")).unwrap();
    let mut third = Msg::from("3");
    third.set_metadata(Some(b.clone()));
    w.write(third).unwrap();
    w.write(Msg::from("4")).unwrap();
    w.flush();
    let mut out = Msg::from("old");
    out.set_metadata(Some(other.clone()));
    let mut seen = Vec::new();
    while p.read_into(&mut out).is_ok() {
        let md = out.metadata().cloned();
        seen.push((out.data().to_vec(), md));
    }
    let want = [("1", &a), ("2", &a), ("3", &b), ("4", &b)];
    assert_eq!(seen.len(), want.len());
    for ((data, md), (body, props)) in seen.iter().zip(want) {
        assert_eq!(data, body.as_bytes());
        assert!(
            md.as_ref().is_some_and(|m| Arc::ptr_eq(m, props)),
            "part {body}"
        );
    }
    // Empty: `out` is untouched.
    assert_eq!(out.data(), b"4");
    // A pipe without properties leaves a reused part without any.
    let (mut q, mut w2, _r2) = peer(2, 0);
    w2.write(Msg::from("5")).unwrap();
    w2.flush();
    q.read_into(&mut out).unwrap();
    assert_eq!(out.data(), b"5");
    assert!(out.metadata().is_none());
    // Only the connection's own handles remain (no clone leaked).
    drop((out, p, seen));
    assert_eq!(Arc::strong_count(&a), 1);
    assert_eq!(Arc::strong_count(&b), 1);
    assert_eq!(Arc::strong_count(&other), 1);
}

#[test]
fn router_pattern_prefixes_and_routes() {
    let mut options = Options::new(SocketType::Router);
    options.router_mandatory = true;
    let mut stats = Stats::default();
    let mut router = new_pattern(SocketType::Router).unwrap();
    let (mut a, mut aw, mut ar) = peer(1, 10);
    a.peer.routing_id = Some(Bytes::from_static(b"A"));
    let mut cx = PatternCx {
        options: &options,
        stats: &mut stats,
    };
    router.attach(a, &mut cx);
    aw.write(Msg::from("hi")).unwrap();
    aw.flush();
    let id = router.recv(&mut cx).unwrap();
    assert_eq!((id.data(), id.more()), (&b"A"[..], true));
    assert_eq!(router.recv(&mut cx).unwrap().data(), b"hi");
    let e = router
        .send(Msg::from("B").with_more(true), &mut cx)
        .unwrap_err();
    assert_eq!(e.error, Error::EHOSTUNREACH);
    router
        .send(Msg::from("A").with_more(true), &mut cx)
        .unwrap();
    router.send(Msg::from("back"), &mut cx).unwrap();
    assert_eq!(ar.read().unwrap().data(), b"back");
}
