use zeroring::{Context, Error, SocketType, DONTWAIT};

use crate::common::*;

#[test]
fn connect_before_bind() {
    let ctx = Context::new();
    let push = sock(&ctx, SocketType::Push);
    push.connect("inproc://cbb").unwrap();
    // Queued before anybody binds.
    push.send("early", 0).unwrap();
    let pull = bound(&ctx, SocketType::Pull, "inproc://cbb");
    assert_eq!(recv_str(&pull), "early");
}

#[test]
fn connect_before_bind_pub_sub() {
    let ctx = Context::new();
    let sub = sock(&ctx, SocketType::Sub);
    sub.connect("inproc://cbb-ps").unwrap();
    sub.set_subscribe(b"").unwrap();
    let publ = bound(&ctx, SocketType::Pub, "inproc://cbb-ps");
    eventually(|| publ.get_topics_count().unwrap() == 1);
    publ.send("ok", 0).unwrap();
    assert_eq!(recv_str(&sub), "ok");
}

#[test]
fn many_connects_before_bind() {
    let ctx = Context::new();
    let pushes: Vec<_> = (0..10)
        .map(|i| {
            let p = sock(&ctx, SocketType::Push);
            p.connect("inproc://many").unwrap();
            p.send(format!("{i}"), 0).unwrap();
            p
        })
        .collect();
    let pull = bound(&ctx, SocketType::Pull, "inproc://many");
    let mut got: Vec<u32> = (0..10).map(|_| recv_str(&pull).parse().unwrap()).collect();
    got.sort();
    assert_eq!(got, (0..10).collect::<Vec<_>>());
    drop(pushes);
}

#[test]
fn routing_ids_are_exchanged_both_ways() {
    let ctx = Context::new();
    let router = sock(&ctx, SocketType::Router);
    router.connect("inproc://ids").unwrap();
    let dealer = sock(&ctx, SocketType::Dealer);
    dealer.set_routing_id(b"dealer-id").unwrap();
    dealer.bind("inproc://ids").unwrap();
    dealer.send("hi", 0).unwrap();
    assert_eq!(
        recv_parts(&router),
        vec![b"dealer-id".to_vec(), b"hi".to_vec()]
    );
}

#[test]
fn bind_twice_is_eaddrinuse_and_unbind_frees_the_name() {
    let ctx = Context::new();
    let a = bound(&ctx, SocketType::Pull, "inproc://taken");
    let b = sock(&ctx, SocketType::Pull);
    assert_eq!(b.bind("inproc://taken"), Err(Error::EADDRINUSE));
    assert_eq!(b.unbind("inproc://taken"), Err(Error::ENOENT));
    a.unbind("inproc://taken").unwrap();
    b.bind("inproc://taken").unwrap();
    // Closing a socket frees its names too.
    drop(b);
    let c = sock(&ctx, SocketType::Pull);
    c.bind("inproc://taken").unwrap();
}

#[test]
fn unbind_keeps_existing_peers() {
    let ctx = Context::new();
    let pull = bound(&ctx, SocketType::Pull, "inproc://unbind");
    let push = connected(&ctx, SocketType::Push, "inproc://unbind");
    pull.unbind("inproc://unbind").unwrap();
    push.send("still here", 0).unwrap();
    assert_eq!(recv_str(&pull), "still here");
}

#[test]
fn disconnect_closes_the_connection() {
    let ctx = Context::new();
    let pull = bound(&ctx, SocketType::Pull, "inproc://disc");
    let push = connected(&ctx, SocketType::Push, "inproc://disc");
    push.send("before", 0).unwrap();
    push.disconnect("inproc://disc").unwrap();
    assert_eq!(push.send("after", DONTWAIT), Err(Error::EAGAIN));
    assert_eq!(push.disconnect("inproc://disc"), Err(Error::ENOENT));
    assert_eq!(push.disconnect("inproc://never"), Err(Error::ENOENT));
    // What was sent before the disconnect is still delivered.
    assert_eq!(recv_str(&pull), "before");
    eventually(|| pull.peer_count() == 0);
}

#[test]
fn closing_either_end_detaches() {
    let ctx = Context::new();
    let pull = bound(&ctx, SocketType::Pull, "inproc://close");
    let push = connected(&ctx, SocketType::Push, "inproc://close");
    eventually(|| pull.peer_count() == 1);
    drop(pull);
    eventually(|| push.peer_count() == 0);
    assert_eq!(push.send("x", DONTWAIT), Err(Error::EAGAIN));
    // The name is free again; a new binder gets new connections.
    let pull2 = bound(&ctx, SocketType::Pull, "inproc://close");
    push.connect("inproc://close").unwrap();
    push.send("y", 0).unwrap();
    assert_eq!(recv_str(&pull2), "y");
}

#[test]
fn socket_types_are_not_checked() {
    // libzmq checks socket types only in the ZMTP handshake; over inproc a PAIR connects to a
    // PULL and its messages arrive, bound first or connected first (test_inproc_connect).
    let ctx = Context::new();
    let pull = bound(&ctx, SocketType::Pull, "inproc://compat");
    let pair = connected(&ctx, SocketType::Pair, "inproc://compat");
    pair.send("bound first", 0).unwrap();
    assert_eq!(recv_str(&pull), "bound first");
    let early = connected(&ctx, SocketType::Pair, "inproc://compat-later");
    early.send("connected first", 0).unwrap();
    let pull2 = bound(&ctx, SocketType::Pull, "inproc://compat-later");
    assert_eq!(recv_str(&pull2), "connected first");
}

#[test]
fn endpoints_parse_and_unknown_transports_are_refused() {
    let ctx = Context::new();
    let s = sock(&ctx, SocketType::Pair);
    assert_eq!(s.bind("nonsense"), Err(Error::EINVAL));
    assert_eq!(s.bind("inproc://"), Err(Error::EINVAL));
    assert_eq!(s.connect("pgm://x"), Err(Error::EPROTONOSUPPORT));
    assert_eq!(s.bind("tcp://127.0.0.1:notaport"), Err(Error::EINVAL));
    // tcp and ipc are served by the wire driver; LAST_ENDPOINT reports the real port.
    s.bind("tcp://127.0.0.1:*").unwrap();
    let last = s.get_last_endpoint().unwrap().unwrap();
    assert!(
        last.starts_with("tcp://127.0.0.1:") && !last.ends_with(":*"),
        "{last}"
    );
    assert_eq!(
        s.unbind("tcp://127.0.0.1:*"),
        Err(Error::ENOENT),
        "a wildcard is not a bound address"
    );
    s.unbind(&last).unwrap();
    s.bind("inproc://last").unwrap();
    assert_eq!(s.get_last_endpoint().unwrap().unwrap(), "inproc://last");
    // libzmq records connects too (inproc: the endpoint as given).
    s.connect("inproc://elsewhere").unwrap();
    assert_eq!(
        s.get_last_endpoint().unwrap().unwrap(),
        "inproc://elsewhere"
    );
}

#[test]
fn contexts_are_separate_namespaces() {
    let c1 = Context::new();
    let c2 = Context::new();
    let _a = bound(&c1, SocketType::Pull, "inproc://ns");
    let _b = bound(&c2, SocketType::Pull, "inproc://ns");
}

#[test]
fn concurrent_connects_and_bind() {
    let ctx = Context::new();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(9));
    let mut hs = Vec::new();
    for i in 0..8 {
        let ctx = ctx.clone();
        let barrier = barrier.clone();
        hs.push(std::thread::spawn(move || {
            let push = sock(&ctx, SocketType::Push);
            barrier.wait();
            push.connect("inproc://race").unwrap();
            push.send(format!("{i}"), 0).unwrap();
            push
        }));
    }
    barrier.wait();
    let pull = bound(&ctx, SocketType::Pull, "inproc://race");
    let mut got: Vec<u32> = (0..8).map(|_| recv_str(&pull).parse().unwrap()).collect();
    got.sort();
    assert_eq!(got, (0..8).collect::<Vec<_>>());
    for h in hs {
        drop(h.join().unwrap());
    }
}

#[test]
fn shutdown_with_a_pending_connect() {
    let ctx = Context::new();
    let push = sock(&ctx, SocketType::Push);
    push.connect("inproc://never-bound").unwrap();
    ctx.shutdown();
    assert_eq!(push.connect("inproc://x"), Err(Error::ETERM));
    assert_eq!(push.set_linger(0), Err(Error::ETERM));
    drop(push);
    ctx.term();
}
