//! zmq_proxy / zmq_proxy_steerable / zmq_device, after libzmq's test_proxy and
//! test_proxy_steerable: whole messages both ways, a capture copy of every part, the control
//! commands and their STATISTICS reply, the zguide broker (ROUTER/DEALER).

use std::thread;

use zeroring::{proxy, proxy_steerable, Context, Error, SocketType, SNDMORE};

use crate::common::*;

/// Reads a STATISTICS reply: eight native-endian u64 frames.
fn stats(control: &zeroring::Socket) -> Vec<u64> {
    control.send("STATISTICS", 0).unwrap();
    recv_parts(control)
        .iter()
        .map(|p| u64::from_ne_bytes(p[..].try_into().expect("8-byte counter")))
        .collect()
}

#[test]
fn steerable_proxy_forwards_captures_pauses_counts_and_terminates() {
    let ctx = Context::new();
    let fe = bound(&ctx, SocketType::Pull, "inproc://px-fe");
    let be = bound(&ctx, SocketType::Push, "inproc://px-be");
    let cap = bound(&ctx, SocketType::Push, "inproc://px-cap");
    let ctl = bound(&ctx, SocketType::Pair, "inproc://px-ctl");
    let proxy_thread = thread::spawn(move || proxy_steerable(&fe, &be, Some(&cap), Some(&ctl)));
    let producer = connected(&ctx, SocketType::Push, "inproc://px-fe");
    let consumer = connected(&ctx, SocketType::Pull, "inproc://px-be");
    let captured = connected(&ctx, SocketType::Pull, "inproc://px-cap");
    let control = connected(&ctx, SocketType::Pair, "inproc://px-ctl");

    send_parts(&producer, &[b"a", b"bc"]);
    assert_eq!(recv_parts(&consumer), vec![b"a".to_vec(), b"bc".to_vec()]);
    assert_eq!(recv_parts(&captured), vec![b"a".to_vec(), b"bc".to_vec()]);
    // Parts, as libzmq 4.3.5 counts them: frontend 2 in (3 bytes), 0 out; backend 0 in,
    // 2 out (3 bytes).
    assert_eq!(stats(&control), vec![2, 3, 0, 0, 0, 0, 2, 3]);

    control.send("PAUSE", 0).unwrap();
    // The reply to STATISTICS comes after PAUSE took effect.
    assert_eq!(stats(&control)[0], 2);
    producer.send("held", 0).unwrap();
    assert_eq!(stats(&control)[0], 2, "a paused proxy forwards nothing");
    assert_no_msg(&consumer);
    control.send("RESUME", 0).unwrap();
    assert_eq!(recv_str(&consumer), "held");
    control.send("TERMINATE", 0).unwrap();
    assert_eq!(proxy_thread.join().unwrap(), Ok(()));
}

#[test]
fn broker_routes_requests_and_replies_through_router_and_dealer() {
    // The zguide's request-reply broker: REQ clients → ROUTER | proxy | DEALER → REP workers.
    let ctx = Context::new();
    let fe = bound(&ctx, SocketType::Router, "tcp://127.0.0.1:*");
    let fe_ep = fe.get_last_endpoint().unwrap().unwrap();
    let be = bound(&ctx, SocketType::Dealer, "tcp://127.0.0.1:*");
    let be_ep = be.get_last_endpoint().unwrap().unwrap();
    let broker = thread::spawn(move || proxy(&fe, &be, None));
    let workers: Vec<_> = (0..2)
        .map(|w| {
            let rep = connected(&ctx, SocketType::Rep, &be_ep);
            thread::spawn(move || {
                for _ in 0..10 {
                    let req = recv_str(&rep);
                    rep.send(format!("{req} by {w}"), 0).unwrap();
                }
                rep
            })
        })
        .collect();
    let clients: Vec<_> = (0..4)
        .map(|c| {
            let req = connected(&ctx, SocketType::Req, &fe_ep);
            thread::spawn(move || {
                for i in 0..5 {
                    req.send(format!("c{c}-{i}"), 0).unwrap();
                    let reply = recv_str(&req);
                    assert!(reply.starts_with(&format!("c{c}-{i} by ")), "{reply}");
                }
                req
            })
        })
        .collect();
    for c in clients {
        drop(c.join().unwrap());
    }
    for w in workers {
        drop(w.join().unwrap());
    }
    // The proxy ends with ETERM when its context goes.
    ctx.shutdown();
    assert_eq!(broker.join().unwrap(), Err(Error::ETERM));
}

#[test]
fn device_kinds_and_a_bad_command() {
    let ctx = Context::new();
    let fe = sock(&ctx, SocketType::Sub);
    let be = sock(&ctx, SocketType::Pub);
    assert_eq!(zeroring::device(7, &fe, &be), Err(Error::EINVAL));
    // An unknown command is ignored, as libzmq 4.3.5 ignores it (4.3.4 asserted).
    let ctl = bound(&ctx, SocketType::Pair, "inproc://px-bad");
    let control = connected(&ctx, SocketType::Pair, "inproc://px-bad");
    control.send("FROBNICATE", SNDMORE).unwrap();
    control.send("", 0).unwrap();
    control.send("TERMINATE", 0).unwrap();
    assert_eq!(proxy_steerable(&fe, &be, None, Some(&ctl)), Ok(()));
}

/// A REP control socket gets an empty reply to each command but STATISTICS (whose reply is
/// the counters), so its peer, a REQ, can send the next one; as libzmq 4.3.5.
#[test]
fn a_rep_control_socket_answers_every_command() {
    let ctx = Context::new();
    let fe = bound(&ctx, SocketType::Pull, "inproc://px-rep-fe");
    let be = bound(&ctx, SocketType::Push, "inproc://px-rep-be");
    let ctl = bound(&ctx, SocketType::Rep, "inproc://px-rep-ctl");
    let proxy_thread = thread::spawn(move || proxy_steerable(&fe, &be, None, Some(&ctl)));
    let control = connected(&ctx, SocketType::Req, "inproc://px-rep-ctl");
    for command in ["PAUSE", "RESUME", "FROBNICATE"] {
        control.send(command, 0).unwrap();
        assert_eq!(recv_parts(&control), vec![Vec::<u8>::new()], "{command}");
    }
    assert_eq!(stats(&control), vec![0; 8]);
    control.send("TERMINATE", 0).unwrap();
    assert_eq!(recv_parts(&control), vec![Vec::<u8>::new()]);
    assert_eq!(proxy_thread.join().unwrap(), Ok(()));
}

/// libzmq's test_proxy_single_socket: one REP socket as both frontend and backend, steered by
/// a REQ control socket that has sent one request and receives TERMINATE as the reply.
#[test]
fn single_rep_socket_proxy_stops_on_terminate_from_a_req_control() {
    let ctx = Context::new();
    let control_main = bound(&ctx, SocketType::Rep, "inproc://px-single-ctl");
    let c2 = ctx.clone();
    let server = thread::spawn(move || {
        let rep = bound(&c2, SocketType::Rep, "tcp://127.0.0.1:*");
        let endpoint = rep.get_last_endpoint().unwrap().unwrap();
        let control = connected(&c2, SocketType::Req, "inproc://px-single-ctl");
        control.send(endpoint.as_str(), 0).unwrap();
        proxy_steerable(&rep, &rep, None, Some(&control))
    });
    let endpoint = control_main.recv_string(0).unwrap().unwrap();
    let req = connected(&ctx, SocketType::Req, &endpoint);
    for text in ["msg1", "msg22"] {
        req.send(text, 0).unwrap();
        assert_eq!(req.recv_string(0).unwrap().unwrap(), text);
    }
    control_main.send("TERMINATE", 0).unwrap();
    assert_eq!(server.join().unwrap(), Ok(()));
}
