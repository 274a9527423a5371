//! [`SessionCore`] driven by hand: every input a driver can give, no I/O, a fake clock.

use std::time::{Duration, Instant};

use zeroring_engine::pipe::{pipe, PipeConfig, PipeWriter};
use zeroring_engine::Msg;

use super::*;
use crate::driver::PipeEnds;

const MS: Duration = Duration::from_millis(1);

fn config() -> SessionConfig {
    SessionConfig {
        reconnect_ivl: Some(100 * MS),
        reconnect_ivl_max: Duration::ZERO,
        connect_timeout: None,
        immediate: false,
        tcp: true,
        seed: 7,
        stop_on_refused: false,
        stop_on_handshake_failed: false,
    }
}

/// Early pipes, and the socket's writer into them (to queue output).
fn early() -> (Kept, PipeWriter<Msg>) {
    let (to_socket, _reader) = pipe(PipeConfig::with_hwm(10));
    let (writer, from_socket) = pipe(PipeConfig::with_hwm(10));
    let kept = Kept::early(PipeEnds {
        to_socket,
        from_socket,
        handover: None,
    });
    (kept, writer)
}

fn queue(w: &mut PipeWriter<Msg>) {
    w.write(Msg::from_bytes(&b"owed"[..])).unwrap();
    w.flush();
}

fn actions(s: &mut SessionCore) -> Vec<SessionAction> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

fn events(s: &mut SessionCore) -> Vec<MonitorEvent> {
    std::iter::from_fn(|| s.poll_event()).map(|e| e.0).collect()
}

/// A session that connected once (now a stream runs), and the pipes its stream holds.
fn up(config: SessionConfig, kept: Option<Kept>, t0: Instant) -> (SessionCore, Option<Kept>) {
    let mut s = SessionCore::new(config, 1, kept);
    assert_eq!(actions(&mut s), [SessionAction::Connect]);
    s.handle_connect_started(t0);
    let (_, held) = s.handle_connected(3).expect("IMMEDIATE off");
    assert_eq!(
        events(&mut s),
        [MonitorEvent::ConnectDelayed, MonitorEvent::Connected]
    );
    (s, held)
}

#[test]
fn refused_attempts_retry_on_the_schedule() {
    let t0 = Instant::now();
    let mut c = config();
    c.reconnect_ivl_max = 400 * MS;
    let mut s = SessionCore::new(c, 1, None);
    assert_eq!(actions(&mut s), [SessionAction::Connect]);
    let mut now = t0;
    let mut waits = Vec::new();
    for _ in 0..5 {
        s.handle_connect_started(now);
        s.handle_connect_failed(now);
        let due = s.poll_timeout().expect("a retry is scheduled");
        waits.push(due - now);
        assert!(actions(&mut s).is_empty(), "no attempt before the timer");
        s.handle_timeout(due - MS);
        assert!(actions(&mut s).is_empty(), "not one millisecond early");
        now = due;
        s.handle_timeout(now);
        assert_eq!(actions(&mut s), [SessionAction::Connect]);
    }
    // With RECONNECT_IVL_MAX, exact waits doubling up to the maximum (libzmq 4.3.5).
    assert_eq!(waits, [100 * MS, 200 * MS, 400 * MS, 400 * MS, 400 * MS]);
    let ev = events(&mut s);
    assert_eq!(
        ev.iter()
            .filter(|e| **e == MonitorEvent::ConnectRetried)
            .count(),
        5
    );
}

/// libzmq's connecter closes a failed attempt's descriptor and says so (ZMQ_EVENT_CLOSED)
/// before it schedules the next (CONNECT_RETRIED); an attempt that never had a descriptor
/// (a name that did not resolve) reports only the retry.
#[test]
fn a_failed_attempt_reports_its_descriptor_closed_before_the_retry() {
    let t0 = Instant::now();
    let mut s = SessionCore::new(config(), 1, None);
    assert_eq!(actions(&mut s), [SessionAction::Connect]);
    s.handle_connect_started(t0);
    s.handle_connect_closed(7);
    s.handle_connect_failed(t0);
    let mut seen = Vec::new();
    while let Some(e) = s.poll_event() {
        seen.push(e);
    }
    assert_eq!(
        seen[0],
        (MonitorEvent::ConnectDelayed, libc::EINPROGRESS as u32)
    );
    assert_eq!(seen[1], (MonitorEvent::Closed, 7));
    assert_eq!(seen[2].0, MonitorEvent::ConnectRetried);
    assert_eq!(seen.len(), 3);
    // Outside an attempt it reports nothing.
    s.handle_connect_closed(8);
    assert!(s.poll_event().is_none());
}

#[test]
fn a_connection_resets_the_schedule_and_keeps_the_pipes() {
    let t0 = Instant::now();
    let (kept, mut w) = early();
    let mut c = config();
    c.reconnect_ivl_max = 10_000 * MS;
    let mut s = SessionCore::new(c, 9, Some(kept));
    actions(&mut s);
    s.handle_connect_started(t0);
    s.handle_connect_failed(t0);
    let t1 = s.poll_timeout().unwrap();
    s.handle_timeout(t1);
    assert_eq!(actions(&mut s), [SessionAction::Connect]);
    s.handle_connect_started(t1);
    let (key, pipes) = s.handle_connected(5).expect("IMMEDIATE off keeps pipes");
    assert_eq!(key, 9);
    queue(&mut w);
    // The stream hands the pipes back when it ends; the next stream gets them again.
    s.handle_stream_done(pipes, StreamEnd::Lost, t1);
    let t2 = s.poll_timeout().unwrap();
    assert!(t2 - t1 < 200 * MS, "the schedule started again at 100 ms");
    s.handle_timeout(t2);
    assert_eq!(actions(&mut s), [SessionAction::Connect]);
    s.handle_connect_started(t2);
    let (_, pipes) = s.handle_connected(6).unwrap();
    assert!(pipes.is_some_and(|p| p.owes_output()), "same queue");
}

/// A stream that ends in a protocol error (the peer broke ZMTP, sent ERROR, or has a socket
/// type we may not talk to) is not retried: libzmq's session terminates then, while a lost
/// connection or a timeout reconnects.
#[test]
fn a_protocol_error_ends_the_session_without_a_retry() {
    let t0 = Instant::now();
    let (kept, mut w) = early();
    let (mut s, held) = up(config(), Some(kept), t0);
    queue(&mut w);
    s.handle_stream_done(held, StreamEnd::ProtocolError, t0);
    assert_eq!(actions(&mut s), [SessionAction::Close]);
    // Ended on the peer's side: the pipes, with what they hold, go back to the socket.
    let (_, back) = s.take_ended_pipes().expect("handed back");
    assert!(back.owes_output());
    assert!(s.is_closed());
    assert_eq!(s.poll_timeout(), None, "no retry scheduled");
    assert!(!events(&mut s).contains(&MonitorEvent::ConnectRetried));

    let e = |err: ZmtpError| StreamEnd::of(Some(&err), true);
    use crate::zmtp::error::FrameError;
    use crate::zmtp::ZmtpError;
    assert_eq!(e(ZmtpError::ConnectionClosed), StreamEnd::Lost);
    assert_eq!(
        e(ZmtpError::ReadFailed(crate::Errno(libc::ECONNRESET))),
        StreamEnd::Lost
    );
    assert_eq!(e(ZmtpError::HandshakeTimeout), StreamEnd::Lost);
    assert_eq!(e(ZmtpError::HeartbeatTimeout), StreamEnd::Lost);
    assert_eq!(e(ZmtpError::Frame(FrameError::Truncated)), StreamEnd::Lost);
    assert_eq!(StreamEnd::of(None, true), StreamEnd::Lost);
    // Before the handshake completed, a lost connection or a timeout is a failed handshake;
    // a protocol error stays one.
    assert_eq!(StreamEnd::of(None, false), StreamEnd::HandshakeLost);
    assert_eq!(
        StreamEnd::of(Some(&ZmtpError::HandshakeTimeout), false),
        StreamEnd::HandshakeLost
    );
    assert_eq!(
        StreamEnd::of(Some(&ZmtpError::OutOfSequence), false),
        StreamEnd::ProtocolError
    );
    assert_eq!(
        e(ZmtpError::PeerError {
            reason: "400".into()
        }),
        StreamEnd::ProtocolError
    );
    assert_eq!(e(ZmtpError::OutOfSequence), StreamEnd::ProtocolError);
    assert_eq!(
        e(ZmtpError::MechanismMismatch { peer: [0; 20] }),
        StreamEnd::ProtocolError
    );
}

#[test]
fn immediate_gives_the_stream_no_pipes() {
    let mut c = config();
    c.immediate = true;
    let mut s = SessionCore::new(c, 1, None);
    actions(&mut s);
    s.handle_connect_started(Instant::now());
    assert!(s.handle_connected(3).is_none());
}

#[test]
fn connect_timeout_cancels_then_retries() {
    let t0 = Instant::now();
    let mut c = config();
    c.connect_timeout = Some(50 * MS);
    let mut s = SessionCore::new(c, 1, None);
    actions(&mut s);
    s.handle_connect_started(t0);
    assert_eq!(s.poll_timeout(), Some(t0 + 50 * MS));
    s.handle_timeout(t0 + 50 * MS);
    assert_eq!(actions(&mut s), [SessionAction::CancelConnect]);
    assert_eq!(s.poll_timeout(), None, "waits for the cancelled attempt");
    s.handle_connect_failed(t0 + 51 * MS);
    assert!(s.poll_timeout().is_some());
}

#[test]
fn no_reconnect_ivl_closes_after_the_first_failure() {
    let mut c = config();
    c.reconnect_ivl = None;
    let mut s = SessionCore::new(c, 1, None);
    actions(&mut s);
    s.handle_connect_failed(Instant::now());
    assert_eq!(actions(&mut s), [SessionAction::Close]);
    assert!(s.is_closed());
    assert!(events(&mut s).is_empty(), "no CONNECT_RETRIED, as libzmq");
}

#[test]
fn a_session_ended_by_the_peer_without_reconnect_hands_its_pipes_back() {
    let mut c = config();
    c.reconnect_ivl = None;
    let t0 = Instant::now();
    // The connection was lost: the pipes go back to the socket, with their key.
    let (kept, mut w) = early();
    let (mut s, held) = up(c.clone(), Some(kept), t0);
    queue(&mut w);
    s.handle_stream_done(held, StreamEnd::Lost, t0);
    assert_eq!(actions(&mut s), [SessionAction::Close]);
    let (key, back) = s.take_ended_pipes().expect("handed back");
    assert_eq!(key, 1);
    assert!(
        back.owes_output(),
        "what the socket queued is still in them"
    );
    assert!(s.take_ended_pipes().is_none(), "once");
    // A connect that failed before any connection: likewise.
    let (kept, _w) = early();
    let mut s = SessionCore::new(c.clone(), 2, Some(kept));
    actions(&mut s);
    s.handle_connect_failed(t0);
    assert_eq!(s.take_ended_pipes().map(|(k, _)| k), Some(2));
    // Ended by the socket (disconnect, or closed and lingering): dropped, not handed back.
    let (kept, _w) = early();
    let (mut s, _held) = up(c.clone(), Some(kept), t0);
    s.handle_stop();
    assert!(s.take_ended_pipes().is_none());
    let (kept, mut w) = early();
    let (mut s, held) = up(c, Some(kept), t0);
    queue(&mut w);
    assert!(s.handle_linger(None, t0));
    s.handle_stream_done(held, StreamEnd::Lost, t0);
    assert!(s.is_closed());
    assert!(s.take_ended_pipes().is_none());
}

#[test]
fn ipc_reports_no_connect_delayed() {
    let mut c = config();
    c.tcp = false;
    let mut s = SessionCore::new(c, 1, None);
    actions(&mut s);
    s.handle_connect_started(Instant::now());
    s.handle_connected(3);
    assert_eq!(events(&mut s), [MonitorEvent::Connected]);
}

#[test]
fn stop_ends_a_running_stream() {
    let (mut s, _) = up(config(), None, Instant::now());
    s.handle_stop();
    assert_eq!(
        actions(&mut s),
        [SessionAction::StopStream, SessionAction::Close]
    );
    s.handle_stop();
    s.handle_timeout(Instant::now() + Duration::from_secs(100));
    assert!(actions(&mut s).is_empty(), "nothing after Close");
}

#[test]
fn linger_zero_stops_at_once() {
    let (mut s, _) = up(config(), None, Instant::now());
    assert!(!s.handle_linger(Some(Duration::ZERO), Instant::now()));
    assert_eq!(
        actions(&mut s),
        [SessionAction::StopStream, SessionAction::Close]
    );
}

#[test]
fn linger_with_nothing_owed_between_connections_closes_at_once() {
    let t0 = Instant::now();
    let (kept, _w) = early();
    let mut s = SessionCore::new(config(), 1, Some(kept));
    actions(&mut s);
    s.handle_connect_failed(t0);
    assert!(!s.handle_linger(None, t0));
    assert_eq!(actions(&mut s), [SessionAction::Close]);
}

#[test]
fn linger_ends_when_the_stream_drained() {
    let t0 = Instant::now();
    let (mut s, _) = up(config(), None, t0);
    assert!(s.handle_linger(Some(1000 * MS), t0));
    assert_eq!(s.poll_timeout(), Some(t0 + 1000 * MS));
    assert!(actions(&mut s).is_empty(), "the stream goes on draining");
    // The stream read the socket's closed, empty pipe and ended.
    s.handle_stream_done(None, StreamEnd::Lost, t0 + 10 * MS);
    assert_eq!(actions(&mut s), [SessionAction::Close]);
}

#[test]
fn linger_deadline_stops_the_stream() {
    let t0 = Instant::now();
    let (mut s, _) = up(config(), None, t0);
    assert!(s.handle_linger(Some(300 * MS), t0));
    s.handle_timeout(t0 + 299 * MS);
    assert!(actions(&mut s).is_empty());
    s.handle_timeout(t0 + 300 * MS);
    assert_eq!(
        actions(&mut s),
        [SessionAction::StopStream, SessionAction::Close]
    );
}

#[test]
fn lingering_output_survives_a_disconnect_and_goes_out_on_reconnect() {
    // libzmq's session reconnects after a connection error even while its socket is gone,
    // so a peer that comes back within LINGER still gets the queue.
    let t0 = Instant::now();
    let (kept, mut w) = early();
    let (mut s, _held) = up(config(), Some(kept), t0);
    queue(&mut w);
    drop(w); // the socket closed
    assert!(s.handle_linger(Some(5000 * MS), t0));
    // What the stream hands back when the peer drops the connection: the queue, still owed.
    let (handed_back, mut w2) = early();
    queue(&mut w2);
    s.handle_stream_done(Some(handed_back), StreamEnd::Lost, t0 + 10 * MS);
    assert!(actions(&mut s).is_empty(), "no Close: output is owed");
    let due = s.poll_timeout().unwrap();
    assert!(due < t0 + 5000 * MS);
    s.handle_timeout(due);
    assert_eq!(actions(&mut s), [SessionAction::Connect]);
    s.handle_connect_started(due);
    let (_, pipes) = s.handle_connected(4).unwrap();
    assert!(pipes.is_some_and(|p| p.owes_output()));
    s.handle_stream_done(None, StreamEnd::Lost, due + 5 * MS);
    assert_eq!(actions(&mut s), [SessionAction::Close]);
}

#[test]
fn lingering_while_disconnected_keeps_trying_until_the_deadline() {
    let t0 = Instant::now();
    let (kept, mut w) = early();
    queue(&mut w);
    let mut s = SessionCore::new(config(), 1, Some(kept));
    actions(&mut s);
    s.handle_connect_started(t0);
    s.handle_connect_failed(t0);
    assert!(s.handle_linger(Some(250 * MS), t0));
    let mut attempts = 0;
    let closed_at = loop {
        let now = s.poll_timeout().unwrap();
        s.handle_timeout(now);
        let a = actions(&mut s);
        if a == [SessionAction::Close] {
            break now;
        }
        assert_eq!(a, [SessionAction::Connect]);
        attempts += 1;
        s.handle_connect_started(now);
        s.handle_connect_failed(now);
    };
    assert_eq!(closed_at, t0 + 250 * MS, "closes exactly at the deadline");
    assert!(attempts >= 1, "kept reconnecting meanwhile");
}

/// RECONNECT_STOP_CONN_REFUSED: a refused connect ends the session (no CONNECT_RETRIED), its
/// pipes are dropped rather than handed back, and the socket is told to forget the endpoint,
/// as libzmq's connecter has its socket `term_endpoint` it. Any other failure still retries,
/// and without the bit a refusal does too.
#[test]
fn reconnect_stop_conn_refused_gives_up_on_a_refusal_only() {
    let t0 = Instant::now();
    for stop in [false, true] {
        let mut c = config();
        c.stop_on_refused = stop;
        let (kept, _w) = early();
        let mut s = SessionCore::new(c.clone(), 9, Some(kept));
        assert_eq!(actions(&mut s), [SessionAction::Connect]);
        // Another failure (unreachable, timed out): retried whatever the bit says.
        s.handle_connect_started(t0);
        s.handle_connect_closed(5);
        s.handle_connect_failed(t0);
        assert_eq!(
            events(&mut s),
            [
                MonitorEvent::ConnectDelayed,
                MonitorEvent::Closed,
                MonitorEvent::ConnectRetried
            ]
        );
        let due = s.poll_timeout().unwrap();
        s.handle_timeout(due);
        assert_eq!(actions(&mut s), [SessionAction::Connect]);
        s.handle_connect_started(due);
        s.handle_connect_closed(5);
        s.handle_connect_refused(due);
        if stop {
            assert_eq!(actions(&mut s), [SessionAction::Close]);
            assert_eq!(
                events(&mut s),
                [MonitorEvent::ConnectDelayed, MonitorEvent::Closed],
                "CLOSED for the descriptor, no retry"
            );
            assert_eq!(s.gave_up(), Some(9));
            assert!(s.take_ended_pipes().is_none(), "the pipes are dropped");
        } else {
            assert!(actions(&mut s).is_empty());
            assert_eq!(
                events(&mut s),
                [
                    MonitorEvent::ConnectDelayed,
                    MonitorEvent::Closed,
                    MonitorEvent::ConnectRetried
                ]
            );
            assert_eq!(s.gave_up(), None);
        }
    }
}

/// libzmq's connecter gives up on a refusal even while its session lingers.
#[test]
fn reconnect_stop_conn_refused_gives_up_while_lingering_too() {
    let t0 = Instant::now();
    let mut c = config();
    c.stop_on_refused = true;
    let (kept, mut w) = early();
    let (mut s, held) = up(c, Some(kept), t0);
    queue(&mut w);
    s.handle_stream_done(held, StreamEnd::Lost, t0);
    assert!(s.handle_linger(None, t0), "output owed: it lingers");
    let due = s.poll_timeout().unwrap();
    s.handle_timeout(due);
    assert_eq!(actions(&mut s), [SessionAction::Connect]);
    s.handle_connect_started(due);
    s.handle_connect_refused(due);
    assert_eq!(actions(&mut s), [SessionAction::Close]);
    assert!(s.is_closed());
}

/// RECONNECT_STOP_HANDSHAKE_FAILED: a connection that ends before its handshake completed
/// ends the session as a protocol error does (the pipes go back to the socket, the endpoint
/// stays), with no CLOSED (libzmq's engine turns the error into a protocol error; no
/// connecter closes anything). A connection lost after its handshake still reconnects.
#[test]
fn reconnect_stop_handshake_failed_ends_the_session_as_a_protocol_error() {
    let t0 = Instant::now();
    for stop in [false, true] {
        let mut c = config();
        c.stop_on_handshake_failed = stop;
        let (kept, _w) = early();
        let (mut s, held) = up(c.clone(), Some(kept), t0);
        s.handle_stream_done(held, StreamEnd::Lost, t0);
        assert!(actions(&mut s).is_empty(), "after its handshake: reconnect");
        assert_eq!(events(&mut s), [MonitorEvent::ConnectRetried]);
        let due = s.poll_timeout().unwrap();
        s.handle_timeout(due);
        assert_eq!(actions(&mut s), [SessionAction::Connect]);
        s.handle_connect_started(due);
        let (_, held) = s.handle_connected(4).unwrap();
        events(&mut s);
        s.handle_stream_done(held, StreamEnd::HandshakeLost, due);
        if stop {
            assert_eq!(actions(&mut s), [SessionAction::Close]);
            assert!(events(&mut s).is_empty(), "no CLOSED, no CONNECT_RETRIED");
            assert!(s.take_ended_pipes().is_some(), "handed back");
            assert_eq!(s.gave_up(), None, "the endpoint stays");
        } else {
            assert!(actions(&mut s).is_empty());
            assert_eq!(events(&mut s), [MonitorEvent::ConnectRetried]);
        }
    }
}
