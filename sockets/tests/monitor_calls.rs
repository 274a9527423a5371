//! `zmq_socket_monitor` called again on a monitored socket, as libzmq 4.3.5 answers it: the
//! running monitor stops first (its reader gets MONITOR_STOPPED), then the new endpoint is
//! bound, and when that fails no monitor is left. Found with a pyzmq script beside the wheel's
//! libzmq 4.3.5, whose answers the comments give (not in capi/probe: that libzmq then hangs
//! closing its context).

use zeroring::{Context, Error, MonitorEvent, Socket, SocketType, DONTWAIT};

const LIMIT_MS: i32 = 10_000;

fn reader(ctx: &Context, endpoint: &str) -> Socket {
    let r = ctx.socket(SocketType::Pair).unwrap();
    r.set_linger(0).unwrap();
    r.set_rcvtimeo(LIMIT_MS).unwrap();
    r.connect(endpoint).unwrap();
    r
}

/// The event of the next monitor message on `r`.
fn event(r: &Socket) -> MonitorEvent {
    let parts = r.recv_multipart(0).unwrap();
    MonitorEvent::from_code(u16::from_le_bytes([parts[0][0], parts[0][1]])).unwrap()
}

#[test]
fn a_second_monitor_stops_the_first_even_when_its_bind_fails() {
    let ctx = Context::new();
    let s = ctx.socket(SocketType::Pull).unwrap();
    s.set_linger(0).unwrap();
    let all = MonitorEvent::ALL;
    s.monitor("inproc://monitor-calls-a", all).unwrap();
    let first = reader(&ctx, "inproc://monitor-calls-a");
    // The same endpoint again: the first monitor stops, and its endpoint is still taken when
    // the new one binds (libzmq: EADDRINUSE, and MONITOR_STOPPED on the first reader).
    assert_eq!(
        s.monitor("inproc://monitor-calls-a", all),
        Err(Error::EADDRINUSE)
    );
    assert_eq!(event(&first), MonitorEvent::MonitorStopped);
    // No monitor is left: a bind reports nowhere.
    s.bind("tcp://127.0.0.1:*").unwrap();
    assert_eq!(first.recv_bytes(DONTWAIT), Err(Error::EAGAIN));
    // A new endpoint is bound, and the monitor runs there.
    s.monitor("inproc://monitor-calls-b", all).unwrap();
    let second = reader(&ctx, "inproc://monitor-calls-b");
    s.bind("tcp://127.0.0.1:*").unwrap();
    assert_eq!(event(&second), MonitorEvent::Listening);
    // A malformed or non-inproc endpoint is refused before anything stops (libzmq checks
    // the endpoint first).
    assert_eq!(
        s.monitor("tcp://127.0.0.1:5555", all),
        Err(Error::EPROTONOSUPPORT)
    );
    s.unbind(&s.get_last_endpoint().unwrap().unwrap()).unwrap();
    assert_eq!(event(&second), MonitorEvent::Closed);
    // Replacing it with a free endpoint: MONITOR_STOPPED to the old reader, events to the new.
    s.monitor("inproc://monitor-calls-c", all).unwrap();
    assert_eq!(event(&second), MonitorEvent::MonitorStopped);
    let third = reader(&ctx, "inproc://monitor-calls-c");
    s.bind("tcp://127.0.0.1:*").unwrap();
    assert_eq!(event(&third), MonitorEvent::Listening);
}
