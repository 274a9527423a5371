//! The simulator's connecter: a thin driver of the production
//! [`SessionCore`] over turmoil TCP, as the engine's
//! `ConnectSession` drives it over io_uring/epoll.
//!
//! Owns: the turmoil connect attempt, the running connection (see [`crate::connection`]), the
//! one timer, and the trace and record of what the core decided. Must never decide anything
//! itself: when to connect, how long to wait, whether pipes survive a disconnect, how long to
//! linger — all of that is the core's, exactly as in production.

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::time::{Duration, Instant};

use turmoil::net::TcpStream;
use zeroring_transports::driver::netopts::{
    RECONNECT_STOP_CONN_REFUSED, RECONNECT_STOP_HANDSHAKE_FAILED,
};
use zeroring_transports::driver::{Kept, SessionAction, SessionConfig, SessionCore, StreamEnd};
use zeroring_transports::monitor::MonitorEvent;

use crate::connection::{self, StopSignal};
use crate::socket::Inner;
use crate::trace::sim_now;

/// What a closing socket tells one of its connecters or accepted connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    /// zmq_disconnect: stop now.
    Stop,
    /// The socket closed: deliver what it queued within this long (`None`: no limit).
    Linger(Option<Duration>),
}

/// The socket's handle on one connecter.
#[derive(Debug, Default)]
pub(crate) struct Control {
    order: Cell<Option<Order>>,
    wake: tokio::sync::Notify,
}

impl Control {
    pub(crate) fn order(&self, o: Order) {
        self.order.set(Some(o));
        self.wake.notify_one();
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

type Attempt = Pin<Box<dyn Future<Output = io::Result<TcpStream>>>>;
type Running = Pin<Box<dyn Future<Output = (Option<Kept>, StreamEnd)>>>;

/// Runs one connecter until its core closes it.
pub(crate) async fn run_connecter(
    inner: Rc<Inner>,
    host: String,
    port: u16,
    key: u64,
    kept: Option<Kept>,
    control: Rc<Control>,
) {
    let endpoint = format!("tcp://{host}:{port}");
    let path = format!("s{} connect {endpoint} #{key}", inner.incarnation);
    let opts = inner.opts.clone();
    let config = SessionConfig {
        reconnect_ivl: opts.reconnect_ivl,
        reconnect_ivl_max: opts.reconnect_ivl_max,
        connect_timeout: opts.connect_timeout,
        immediate: inner.immediate(),
        tcp: true,
        seed: opts.backoff_seed,
        // As the engine's driver sets them (tcp: both bits apply).
        stop_on_refused: opts.reconnect_stop & RECONNECT_STOP_CONN_REFUSED != 0
            && !opts.ignore_reconnect_stop,
        stop_on_handshake_failed: opts.reconnect_stop & RECONNECT_STOP_HANDSHAKE_FAILED != 0
            && !opts.ignore_reconnect_stop,
    };
    let mut session = SessionCore::new(config, key, kept);
    let (record, me) = (inner.record.clone(), inner.host.clone());
    let mut attempt: Option<Attempt> = None;
    let mut stream: Option<(Running, Rc<StopSignal>)> = None;
    let far = tokio::time::Instant::now() + Duration::from_secs(365 * 24 * 3600);
    let report = |session: &mut SessionCore| {
        while let Some((event, value)) = session.poll_event() {
            inner.monitor_event(&path, event);
            if event == MonitorEvent::ConnectRetried {
                let delay = Duration::from_millis(value as u64);
                record.with(|r| r.reconnect_delays.push(delay));
                inner
                    .trace
                    .event(&me, format_args!("reconnect in {}ms", delay.as_millis()));
            }
        }
    };
    let failed = |e: &io::Error| {
        record.with(|r| r.connect_failures += 1);
        inner
            .trace
            .event(&me, format_args!("connect failed: {}", e.kind()));
    };
    loop {
        while let Some(action) = session.poll_action() {
            match action {
                SessionAction::Connect => {
                    record.with(|r| r.connect_attempts.push(sim_now()));
                    inner
                        .trace
                        .event(&me, format_args!("connect {host}:{port}"));
                    attempt = Some(Box::pin(TcpStream::connect((host.clone(), port))));
                    session.handle_connect_started(now());
                }
                SessionAction::CancelConnect => {
                    attempt = None;
                    failed(&io::Error::new(io::ErrorKind::TimedOut, "connect timeout"));
                    session.handle_connect_closed(0);
                    session.handle_connect_failed(now());
                }
                SessionAction::StopStream => {
                    if let Some((_, stop)) = &stream {
                        stop.stop();
                    }
                }
                SessionAction::Close => {
                    record.with(|r| r.sessions_closed.push(sim_now()));
                    report(&mut session);
                    if let Some((running, stop)) = stream.take() {
                        stop.stop();
                        running.await;
                    }
                    inner.trace.event(&me, format_args!("{path} closed"));
                    inner.session_done();
                    return;
                }
            }
        }
        report(&mut session);
        let deadline = session
            .poll_timeout()
            .map_or(far, tokio::time::Instant::from_std);
        tokio::select! {
            biased;
            r = async { attempt.as_mut().expect("enabled only with an attempt").await }, if attempt.is_some() => {
                attempt = None;
                match r.and_then(|s| s.peer_addr().map(|a| (s, a))) {
                    Ok((tcp, remote)) => {
                        inner.trace.event(
                            &me,
                            format_args!("connected to {}", connection::host_of(remote)),
                        );
                        let keep = session.handle_connected(0);
                        report(&mut session);
                        let stop = Rc::new(StopSignal::default());
                        let running = connection::run(
                            inner.clone(),
                            tcp,
                            remote,
                            endpoint.clone(),
                            keep,
                            stop.clone(),
                            path.clone(),
                        );
                        stream = Some((Box::pin(running), stop));
                    }
                    Err(e) => {
                        failed(&e);
                        session.handle_connect_closed(0);
                        if e.kind() == io::ErrorKind::ConnectionRefused {
                            record.with(|r| r.connect_refusals.push(sim_now()));
                            session.handle_connect_refused(now());
                        } else {
                            session.handle_connect_failed(now());
                        }
                    }
                }
            }
            (kept, end) = async { stream.as_mut().expect("enabled only with a stream").0.as_mut().await }, if stream.is_some() => {
                stream = None;
                session.handle_stream_done(kept, end, now());
            }
            _ = tokio::time::sleep_until(deadline) => session.handle_timeout(now()),
            _ = control.wake.notified() => match control.order.take() {
                Some(Order::Stop) => session.handle_stop(),
                Some(Order::Linger(limit)) => {
                    let lingers = session.handle_linger(limit, now());
                    inner.trace.event(
                        &me,
                        format_args!("{path}: socket closed, {}", if lingers { "lingering" } else { "nothing owed" }),
                    );
                }
                None => {}
            },
        }
    }
}
