use zeroring::options::{num, Kind, OPTIONS};
use zeroring::{Context, Error, SocketType, POLLIN, POLLOUT};

use crate::common::*;

#[test]
fn defaults() {
    let ctx = Context::new();
    let s = ctx.socket(SocketType::Dealer).unwrap();
    assert_eq!(s.get_sndhwm().unwrap(), 1000);
    assert_eq!(s.get_rcvhwm().unwrap(), 1000);
    assert_eq!(s.get_linger().unwrap(), 1000);
    assert_eq!(s.get_sndtimeo().unwrap(), -1);
    assert_eq!(s.get_rcvtimeo().unwrap(), -1);
    assert_eq!(s.get_maxmsgsize().unwrap(), -1);
    assert_eq!(s.get_affinity().unwrap(), 0);
    assert_eq!(s.get_routing_id().unwrap(), b"");
    assert!(!s.get_immediate().unwrap());
    assert!(!s.get_conflate().unwrap());
    assert_eq!(s.get_socket_type().unwrap(), SocketType::Dealer);
    assert_eq!(s.get_last_endpoint().unwrap().unwrap(), "");
    assert!(!s.get_rcvmore().unwrap());
    assert_eq!(s.get_events().unwrap(), 0);
}

#[test]
fn raw_options_go_through_the_table() {
    let ctx = Context::new();
    let s = ctx.socket(SocketType::Router).unwrap();
    s.set_option(num::SNDHWM, &42i32.to_ne_bytes()).unwrap();
    assert_eq!(s.get_option(num::SNDHWM).unwrap(), 42i32.to_ne_bytes());
    assert_eq!(s.get_sndhwm().unwrap(), 42);
    // Unknown option, wrong size, wrong socket type, read-only, out of range.
    assert_eq!(s.set_option(9999, &1i32.to_ne_bytes()), Err(Error::EINVAL));
    assert_eq!(s.get_option(9999), Err(Error::EINVAL));
    assert_eq!(s.set_option(num::SNDHWM, &[1, 2]), Err(Error::EINVAL));
    assert_eq!(
        s.set_option(num::MAXMSGSIZE, &1i32.to_ne_bytes()),
        Err(Error::EINVAL)
    );
    assert_eq!(s.set_req_relaxed(true), Err(Error::EINVAL));
    assert_eq!(
        s.set_option(num::TYPE, &1i32.to_ne_bytes()),
        Err(Error::EINVAL)
    );
    assert_eq!(s.set_sndhwm(-1), Err(Error::EINVAL));
    assert_eq!(s.set_linger(-2), Err(Error::EINVAL));
    assert_eq!(
        s.set_option(num::ROUTER_MANDATORY, &2i32.to_ne_bytes()),
        Err(Error::EINVAL)
    );
    assert_eq!(s.set_routing_id(b""), Err(Error::EINVAL));
    assert_eq!(s.set_routing_id(&[7u8; 256]), Err(Error::EINVAL));
    assert_eq!(s.get_option(num::SUBSCRIBE), Err(Error::EINVAL));
    // Strings come back NUL-terminated, as from zmq_getsockopt.
    assert_eq!(s.get_option(num::LAST_ENDPOINT).unwrap(), b"\0");
    s.set_maxmsgsize(1 << 20).unwrap();
    assert_eq!(s.get_maxmsgsize().unwrap(), 1 << 20);
    s.set_affinity(3).unwrap();
    assert_eq!(s.get_affinity().unwrap(), 3);
    s.set_metadata("X-color:blue").unwrap();
    assert_eq!(s.set_metadata("color:blue"), Err(Error::EINVAL));
    assert_eq!(s.get_option(num::TYPE).unwrap(), 6i32.to_ne_bytes());
}

#[test]
fn every_option_in_the_table_round_trips_or_is_refused_cleanly() {
    let ctx = Context::new();
    for t in [
        SocketType::Pair,
        SocketType::Pub,
        SocketType::Sub,
        SocketType::Req,
        SocketType::Rep,
        SocketType::Dealer,
        SocketType::Router,
        SocketType::Pull,
        SocketType::Push,
        SocketType::XPub,
        SocketType::XSub,
    ] {
        let s = ctx.socket(t).unwrap();
        for o in OPTIONS {
            let r = s.get_option(o.num);
            if let Ok(v) = r {
                let len = match o.kind {
                    Kind::Int | Kind::Bool => Some(4),
                    Kind::Int64 | Kind::Uint64 => Some(8),
                    _ => None,
                };
                if let Some(len) = len {
                    assert_eq!(v.len(), len, "{} on {t}", o.name);
                }
            }
        }
    }
}

#[test]
fn events_reflect_readiness() {
    let ctx = Context::new();
    let pull = bound(&ctx, SocketType::Pull, "inproc://events");
    let push = connected(&ctx, SocketType::Push, "inproc://events");
    assert_eq!(push.get_events().unwrap(), POLLOUT);
    assert_eq!(pull.get_events().unwrap(), 0);
    push.send("x", 0).unwrap();
    eventually(|| pull.get_events().unwrap() == POLLIN);
    let rep = bound(&ctx, SocketType::Rep, "inproc://events2");
    let req = connected(&ctx, SocketType::Req, "inproc://events2");
    assert_eq!(rep.get_events().unwrap(), 0);
    req.send("q", 0).unwrap();
    assert_eq!(req.get_events().unwrap(), 0);
    eventually(|| rep.get_events().unwrap() == POLLIN);
    recv_str(&rep);
    assert_eq!(rep.get_events().unwrap(), POLLOUT);
    rep.send("a", 0).unwrap();
    eventually(|| req.get_events().unwrap() & POLLIN != 0);
}

#[test]
fn immediate_does_not_hold_back_an_inproc_connect_before_bind() {
    // libzmq 4.3 attaches an inproc connection's pipe at connect, bound or not, so IMMEDIATE
    // does not stop sends from queueing for the binder (capi/probe/lifecycle.py compares).
    let ctx = Context::new();
    let push = sock(&ctx, SocketType::Push);
    push.set_immediate(true).unwrap();
    push.connect("inproc://imm").unwrap();
    push.send("x", zeroring::DONTWAIT).unwrap();
    let pull = bound(&ctx, SocketType::Pull, "inproc://imm");
    push.send("y", 0).unwrap();
    assert_eq!(recv_str(&pull), "x");
    assert_eq!(recv_str(&pull), "y");
}
