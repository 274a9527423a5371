//! The sans-IO heart of a socket: its options, its pattern, its counters and its pipe ids.
//!
//! Every operation completes or says [`Error::EAGAIN`](crate::Error::EAGAIN); nothing here waits, reads a clock,
//! owns a thread or talks to a transport. [`Socket`](crate::Socket) wraps a `SocketCore` with
//! blocking calls, a command mailbox and the transports; the simulator (`zeroring-sim`) wraps
//! one with simulated connections, so both run the same option handling and patterns.

use zeroring_engine::pipe::NotifyHandle;
use zeroring_engine::Msg;
use zeroring_transports::driver::TransportOptions;
use zeroring_transports::socket_type::SocketType;
use zeroring_transports::zmtp::ConnectionConfig;

use crate::attach::{hwm_share, writer_hwm, PeerAttachment};
use crate::error::Result;
use crate::options::{num, Options, Value};
use crate::pattern::{new_pattern, Pattern, PatternCx, Pipe, SendError, Stats};

/// A socket's state and pattern, without any I/O.
#[derive(Debug)]
pub struct SocketCore {
    pub(crate) options: Options,
    pub(crate) pattern: Box<dyn Pattern>,
    pub(crate) stats: Stats,
    next_pipe_id: u64,
}

impl SocketCore {
    /// A socket of type `t` with libzmq's default options.
    pub fn new(t: SocketType) -> Result<Self> {
        Self::with_options(Options::new(t))
    }

    /// A socket with `options` (their `socket_type` decides the pattern).
    pub fn with_options(options: Options) -> Result<Self> {
        Ok(SocketCore {
            pattern: new_pattern(options.socket_type)?,
            options,
            stats: Stats::default(),
            next_pipe_id: 1,
        })
    }

    pub(crate) fn cx(&mut self) -> (&mut Box<dyn Pattern>, PatternCx<'_>) {
        (
            &mut self.pattern,
            PatternCx {
                options: &self.options,
                stats: &mut self.stats,
            },
        )
    }

    /// The socket's type.
    pub fn socket_type(&self) -> SocketType {
        self.options.socket_type
    }

    /// The socket's options.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// The socket's counters.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Attached pipes whose peer is still there.
    pub fn peers(&self) -> usize {
        self.pattern.peers()
    }

    /// A peer joins: both pipe ends will wake `notify` (the socket's readiness signal), and
    /// the pattern takes the pipe.
    pub fn attach(&mut self, a: PeerAttachment, notify: Option<NotifyHandle>) {
        let PeerAttachment {
            mut writer,
            mut reader,
            peer,
            out_boost,
            handover,
        } = a;
        let id = self.next_pipe_id;
        self.next_pipe_id += 1;
        writer.set_notify(notify.clone());
        // A fair-queuing pattern learns which pipe woke it, so it visits only those.
        let ready = self.pattern.ready_list();
        let reports_ready = ready.is_some();
        reader.set_notify(match ready {
            Some(list) => Some(list.notify_for(id, notify)),
            None => notify,
        });
        // ZMQ_HELLO_MSG: the first thing a new peer gets (libzmq: DEALER, ROUTER). The
        // tcp/ipc driver sends it itself on every connection; inproc has one, here.
        if let Some(hello) = &self.options.hello_msg {
            if matches!(
                self.options.socket_type,
                SocketType::Dealer | SocketType::Router
            ) && peer.endpoint.starts_with("inproc://")
                && writer.write(Msg::from_bytes(hello.clone())).is_ok()
            {
                writer.flush();
            }
        }
        let pipe = Pipe {
            id,
            writer,
            reader,
            peer,
            routing_id: bytes::Bytes::new(),
            queued: false,
            reports_ready,
            out_boost,
            rcv_share: self.options.rcvhwm,
            direct: handover.map(crate::pattern::direct::Direct::new),
        };
        let (p, mut cx) = self.cx();
        p.attach(pipe, &mut cx);
        if let Some(id) = self.pattern.take_own_routing_id() {
            self.options.routing_id = id;
        }
    }

    /// The pipe attached with transport key `key` leads to a new connection (SUB/XSUB send
    /// their subscriptions again). Returns the pipe when the pattern had taken it out of
    /// service (a ROUTER's connection handed over to a newer peer): the caller attaches it
    /// again ([`SocketCore::attach`]), as libzmq's socket attaches the new pipe its session
    /// makes after reconnecting.
    #[must_use]
    pub fn hiccup(&mut self, key: u64) -> Option<PeerAttachment> {
        let (p, mut cx) = self.cx();
        p.hiccup(key, &mut cx);
        // Attached again under a new id (ids are never reused): its ends, its peer, and the
        // hand-over of its connection's writes.
        let pipe = self.pattern.take_retired(key)?;
        let mut a = PeerAttachment::new(pipe.writer, pipe.reader, pipe.peer);
        a.out_boost = pipe.out_boost;
        a.handover = pipe
            .direct
            .map(crate::pattern::direct::Direct::into_handover);
        Some(a)
    }

    /// Sends one part; EAGAIN hands the part back to try again later.
    pub fn send(&mut self, msg: Msg) -> std::result::Result<(), SendError> {
        let (p, mut cx) = self.cx();
        p.send(msg, &mut cx)
    }

    /// Receives one part; EAGAIN when nothing is ready.
    pub fn recv(&mut self) -> Result<Msg> {
        let (p, mut cx) = self.cx();
        p.recv(&mut cx)
    }

    /// Whether a receive could succeed now (a hint for some patterns).
    pub fn has_in(&mut self) -> bool {
        let (p, mut cx) = self.cx();
        p.has_in(&mut cx)
    }

    /// Whether a send could succeed now.
    pub fn has_out(&mut self) -> bool {
        let (p, mut cx) = self.cx();
        p.has_out(&mut cx)
    }

    /// ZMQ_TOPICS_COUNT, for the types that have subscriptions.
    pub fn topics_count(&mut self) -> Option<usize> {
        let (p, mut cx) = self.cx();
        p.topics_count(&mut cx)
    }

    /// Closes the pipes of `endpoint`; returns how many.
    pub fn disconnect(&mut self, endpoint: &str) -> usize {
        let (p, mut cx) = self.cx();
        p.disconnect(endpoint, &mut cx)
    }

    /// The ZMTP configuration the socket's options give a new connection (what tcp and ipc
    /// use); `zap_handler` says whether a ZAP handler is bound in the context.
    pub fn connection_config(&self, zap_handler: bool) -> ConnectionConfig {
        crate::config::connection_config(&self.options, zap_handler)
    }

    /// The transport settings the socket's options give (reconnect schedule, timeouts,
    /// IMMEDIATE, buffer sizes…).
    pub fn transport_options(&self, ctx_ipv6: bool) -> TransportOptions {
        crate::config::transport_options(&self.options, ctx_ipv6)
    }

    /// `zmq_setsockopt` with the option's C representation.
    pub fn set_option(&mut self, option: i32, value: &[u8]) -> Result<()> {
        let spec = self.options.check(option, true)?;
        let v = Value::decode(spec.kind, value)?;
        self.set_value(option, v)
    }

    /// Sets a decoded option: stored, then acted on by the pattern (SUBSCRIBE…); a pattern
    /// that refuses it leaves the options as they were.
    pub fn set_value(&mut self, option: i32, v: Value) -> Result<()> {
        let mut saved = self.options.clone();
        saved.set(option, v.clone())?;
        let old = std::mem::replace(&mut self.options, saved);
        let (p, mut cx) = self.cx();
        if let Err(e) = p.set_option(option, &v, &mut cx) {
            self.options = old;
            return Err(e);
        }
        if matches!(option, num::SNDHWM | num::RCVHWM) {
            self.update_pipe_hwms();
        }
        Ok(())
    }

    /// Applies SNDHWM/RCVHWM to the pipes that exist (libzmq's `update_pipe_options`): each
    /// writer's mark becomes SNDHWM plus what its peer adds (inproc), and each peer writer's
    /// mark moves by the change of RCVHWM (credit its reader grants, so a writer waiting at the
    /// old mark is woken by a raise). Queued messages stay; a lower mark only stops writers
    /// sooner. A pipe made without a mark (an end had 0, or CONFLATE) keeps none.
    fn update_pipe_hwms(&mut self) {
        let (sndhwm, rcvhwm) = (self.options.sndhwm, self.options.rcvhwm);
        let Some(pipes) = self.pattern.pipes_mut() else {
            return;
        };
        for p in pipes.iter_mut() {
            if p.peer.conflate {
                continue;
            }
            p.writer.set_hwm(writer_hwm(sndhwm, p.out_boost));
            if p.rcv_share != rcvhwm {
                p.reader
                    .adjust_writer_hwm(hwm_share(rcvhwm) - hwm_share(p.rcv_share));
                p.rcv_share = rcvhwm;
            }
        }
    }
}
