//! The endpoint each monitor event names, side by side with libzmq (the `zmq` crate): an
//! accepted tcp connection's events (ACCEPTED, HANDSHAKE_*, DISCONNECTED) name the connection's
//! own local address, as libzmq's `tcp_listener_t` names them (`get_socket_name` of the
//! accepted descriptor), so a wildcard bind's connections are `tcp://127.0.0.1:P`, not the
//! listener's `tcp://0.0.0.0:P`; LISTENING and CLOSED name the listener.

use zeroring::{Context, MonitorEvent, SocketType};

const LIMIT_MS: i32 = 10_000;

/// (event, endpoint) read from a monitor PAIR until `last`.
fn until(mon: impl Fn() -> Vec<Vec<u8>>, last: MonitorEvent) -> Vec<(MonitorEvent, String)> {
    let mut seen = Vec::new();
    loop {
        let parts = mon();
        let ev = MonitorEvent::from_code(u16::from_le_bytes([parts[0][0], parts[0][1]])).unwrap();
        seen.push((ev, String::from_utf8(parts[1].clone()).unwrap()));
        if ev == last {
            return seen;
        }
    }
}

/// Binds `bind` (a wildcard), connects a PUSH to 127.0.0.1 on its port, sends one message,
/// closes the PUSH: the PULL's events up to DISCONNECTED, with the port written `P`.
fn zeroring_events(bind: &str) -> Vec<(MonitorEvent, String)> {
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_linger(0).unwrap();
    pull.set_rcvtimeo(LIMIT_MS).unwrap();
    pull.monitor("inproc://monitor-endpoints", MonitorEvent::ALL)
        .unwrap();
    let mon = ctx.socket(SocketType::Pair).unwrap();
    mon.set_rcvtimeo(LIMIT_MS).unwrap();
    mon.connect("inproc://monitor-endpoints").unwrap();
    pull.bind(bind).unwrap();
    let port = port_of(&pull.get_last_endpoint().unwrap().unwrap());
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_linger(0).unwrap();
    push.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    push.send("x", 0).unwrap();
    pull.recv_bytes(0).unwrap();
    drop(push);
    let seen = until(
        || mon.recv_multipart(0).expect("an event in time"),
        MonitorEvent::Disconnected,
    );
    masked(seen, port)
}

fn libzmq_events(bind: &str) -> Vec<(MonitorEvent, String)> {
    let ctx = zmq::Context::new();
    let pull = ctx.socket(zmq::PULL).unwrap();
    pull.set_linger(0).unwrap();
    pull.set_rcvtimeo(LIMIT_MS).unwrap();
    pull.monitor("inproc://monitor-endpoints", zmq::SocketEvent::ALL as i32)
        .unwrap();
    let mon = ctx.socket(zmq::PAIR).unwrap();
    mon.set_rcvtimeo(LIMIT_MS).unwrap();
    mon.connect("inproc://monitor-endpoints").unwrap();
    pull.bind(bind).unwrap();
    let port = port_of(&pull.get_last_endpoint().unwrap().unwrap());
    let push = ctx.socket(zmq::PUSH).unwrap();
    push.set_linger(0).unwrap();
    push.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    push.send("x", 0).unwrap();
    pull.recv_bytes(0).unwrap();
    drop(push);
    let seen = until(
        || mon.recv_multipart(0).expect("an event in time"),
        MonitorEvent::Disconnected,
    );
    masked(seen, port)
}

fn port_of(endpoint: &str) -> String {
    endpoint.rsplit(':').next().unwrap().to_string()
}

fn masked(seen: Vec<(MonitorEvent, String)>, port: String) -> Vec<(MonitorEvent, String)> {
    seen.into_iter()
        .map(|(e, ep)| (e, ep.replace(&format!(":{port}"), ":P")))
        .collect()
}

#[test]
fn an_accepted_connection_is_named_by_its_own_address_as_in_libzmq() {
    for bind in ["tcp://*:*", "tcp://0.0.0.0:*", "tcp://127.0.0.1:*"] {
        let ours = zeroring_events(bind);
        assert_eq!(ours, libzmq_events(bind), "{bind}");
        let accepted = ours.iter().find(|(e, _)| *e == MonitorEvent::Accepted);
        assert_eq!(
            accepted.map(|(_, ep)| ep.as_str()),
            Some("tcp://127.0.0.1:P"),
            "{bind}"
        );
    }
}
