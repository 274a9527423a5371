//! `zmq_proxy`, `zmq_proxy_steerable` and `zmq_device`: move whole messages between a frontend
//! and a backend socket, both ways, with an optional capture socket that gets a copy of every
//! part and an optional control socket (PAUSE, RESUME, TERMINATE, STATISTICS).
//!
//! Semantics of libzmq 4.3's proxy: a message is taken from one side only when the other side
//! can take it (POLLIN there and POLLOUT here), in bursts of up to [`BURST`] messages, all of a
//! message's parts together; the capture socket gets each part with its MORE flag. Waiting is
//! [`crate::poll`](fn@crate::poll) on exactly the events that can make progress, never a busy loop.
//!
//! Owns: the forwarding loop and its counters. Must never: split a message between sides, or
//! lose a part it has taken (a failed send ends the proxy with that error, as in libzmq).

use zeroring_engine::Msg;

use crate::error::{Error, Result};
use crate::poll::{poll, PollItem};
use crate::socket::{Socket, DONTWAIT, POLLIN, POLLOUT, SNDMORE};
use crate::SocketType;

/// Most messages moved one way before the other way gets a turn (libzmq's proxy_burst_size).
pub const BURST: usize = 1000;

/// `zmq_device` kinds; every kind runs the same proxy, as in libzmq.
pub const STREAMER: i32 = 1;
/// See [`STREAMER`].
pub const FORWARDER: i32 = 2;
/// See [`STREAMER`].
pub const QUEUE: i32 = 3;

/// One side's counters, as `STATISTICS` reports them. Like libzmq 4.3.5's, they count
/// message parts: a three-part message is three.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SideStats {
    /// Parts received from this socket.
    pub msg_in: u64,
    /// Bytes received from this socket.
    pub bytes_in: u64,
    /// Parts sent to this socket.
    pub msg_out: u64,
    /// Bytes sent to this socket.
    pub bytes_out: u64,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Active,
    Paused,
    Terminated,
}

/// Moves up to [`BURST`] whole messages from `from` to `to`; returns how many.
fn forward(
    from: &Socket,
    to: &Socket,
    capture: Option<&Socket>,
    from_stats: &mut SideStats,
    to_stats: &mut SideStats,
) -> Result<usize> {
    let mut moved = 0;
    let mut msg = Msg::new();
    while moved < BURST {
        let mut first = true;
        loop {
            match from.recv(&mut msg, DONTWAIT) {
                Ok(()) => first = false,
                // At a message boundary: nothing more to move now.
                Err(Error::EAGAIN) if first => return Ok(moved),
                Err(e) => return Err(e),
            }
            let size = msg.len() as u64;
            from_stats.msg_in += 1;
            from_stats.bytes_in += size;
            let more = msg.more();
            let flags = if more { SNDMORE } else { 0 };
            if let Some(c) = capture {
                c.send_msg(msg.clone(), flags)?;
            }
            to.send_msg(std::mem::take(&mut msg), flags)?;
            to_stats.msg_out += 1;
            to_stats.bytes_out += size;
            if !more {
                break;
            }
        }
        moved += 1;
    }
    Ok(moved)
}

/// Answers STATISTICS: eight u64 frames (frontend in/in bytes/out/out bytes, then backend's).
fn reply_stats(control: &Socket, front: &SideStats, back: &SideStats) -> Result<()> {
    let values = [
        front.msg_in,
        front.bytes_in,
        front.msg_out,
        front.bytes_out,
        back.msg_in,
        back.bytes_in,
        back.msg_out,
        back.bytes_out,
    ];
    for (i, v) in values.iter().enumerate() {
        let flags = if i + 1 < values.len() { SNDMORE } else { 0 };
        control.send(&v.to_ne_bytes()[..], flags)?;
    }
    Ok(())
}

/// `zmq_proxy`: forwards between `frontend` and `backend` until an error (ETERM when the
/// context is terminated); never returns `Ok`.
pub fn proxy(frontend: &Socket, backend: &Socket, capture: Option<&Socket>) -> Result<()> {
    proxy_steerable(frontend, backend, capture, None)
}

/// `zmq_device`: the proxy without capture (`kind` is [`STREAMER`], [`FORWARDER`] or
/// [`QUEUE`], all the same proxy, as in libzmq; anything else is EINVAL).
pub fn device(kind: i32, frontend: &Socket, backend: &Socket) -> Result<()> {
    if !matches!(kind, STREAMER | FORWARDER | QUEUE) {
        return Err(Error::EINVAL);
    }
    proxy(frontend, backend, None)
}

/// `zmq_proxy_steerable`: [`proxy`], steered by messages on `control`: `PAUSE` (stop
/// forwarding), `RESUME`, `TERMINATE` (return `Ok`), `STATISTICS` (reply with the eight
/// counters of [`SideStats`], frontend then backend, as u64 frames). Any other command is
/// ignored, and a REP control socket gets an empty reply to every command but STATISTICS, as
/// libzmq 4.3.5 does (4.3.4 asserted on an unknown command).
pub fn proxy_steerable(
    frontend: &Socket,
    backend: &Socket,
    capture: Option<&Socket>,
    control: Option<&Socket>,
) -> Result<()> {
    let same = std::ptr::eq(frontend, backend);
    let mut state = State::Active;
    let mut front = SideStats::default();
    let mut back = SideStats::default();
    loop {
        if let Some(c) = control {
            // Commands first, each one whole.
            loop {
                let cmd = match c.recv_multipart_msg(DONTWAIT) {
                    Ok(parts) => parts,
                    // EFSM: a REQ control socket (libzmq's test_proxy_single_socket uses one)
                    // has had its one reply and can take no more commands.
                    Err(Error::EAGAIN | Error::EFSM) => break,
                    Err(e) => return Err(e),
                };
                match cmd.first().map(Msg::data) {
                    Some(b"STATISTICS") => {
                        reply_stats(c, &front, &back)?;
                        continue;
                    }
                    Some(b"PAUSE") => state = State::Paused,
                    Some(b"RESUME") => state = State::Active,
                    Some(b"TERMINATE") => state = State::Terminated,
                    _ => {}
                }
                if c.socket_type() == SocketType::Rep {
                    // A REP must answer before it can take the next command.
                    c.send(&b""[..], 0)?;
                }
            }
        }
        if state == State::Terminated {
            return Ok(());
        }
        let mut progressed = false;
        let (fe, be) = (frontend.get_events()?, backend.get_events()?);
        if state == State::Active {
            if fe & POLLIN != 0 && (same || be & POLLOUT != 0) {
                progressed |= forward(frontend, backend, capture, &mut front, &mut back)? > 0;
            }
            if !same && be & POLLIN != 0 && fe & POLLOUT != 0 {
                progressed |= forward(backend, frontend, capture, &mut back, &mut front)? > 0;
            }
        }
        if progressed {
            continue;
        }
        // Wait for what can make progress: input on a side whose peer side can take it, or
        // room on the side that holds up pending input; and commands.
        let mut items = Vec::with_capacity(3);
        if state == State::Active {
            let (mut want_fe, mut want_be) = (0i16, 0i16);
            if same {
                want_fe |= POLLIN as i16;
            } else {
                if fe & POLLIN != 0 {
                    want_be |= POLLOUT as i16;
                } else {
                    want_fe |= POLLIN as i16;
                }
                if be & POLLIN != 0 {
                    want_fe |= POLLOUT as i16;
                } else {
                    want_be |= POLLIN as i16;
                }
            }
            items.push(PollItem::from_socket(frontend, want_fe));
            if !same {
                items.push(PollItem::from_socket(backend, want_be));
            }
        }
        if let Some(c) = control {
            items.push(PollItem::from_socket(c, POLLIN as i16));
        }
        if items.is_empty() {
            // Paused with no control socket cannot happen (only control pauses).
            return Err(Error::EINVAL);
        }
        poll(&mut items, -1)?;
    }
}
