//! The blocking driver of one socket: the state a [`Socket`](super::Socket) holds behind its
//! `RefCell`, and the calls that run the sans-IO [`SocketCore`] from the calling thread. Every
//! send and recv first processes the socket's command mailbox (peers attaching, pipes ending),
//! then runs the pattern; when the pattern says EAGAIN and the call may block, it waits on the
//! socket's one readiness [`Signal`] — notified by every pipe of the socket, by the mailbox and
//! by context shutdown — for at most the remaining RCVTIMEO / SNDTIMEO, spinning briefly first.
//!
//! Must never: decide what a pattern decides (routing, fair-queueing, what a full pipe means),
//! or wait without a deadline the caller's timeout allows.

use std::sync::Arc;
use std::time::{Duration, Instant};

use zeroring_engine::mailbox::Mailbox;
use zeroring_engine::pipe::{CreditEpoch, NotifyHandle};
use zeroring_engine::signal::{Signal, Wake};
use zeroring_engine::Msg;
use zeroring_transports::socket_type::SocketType;

use super::{ended, DONTWAIT, SNDMORE};
use crate::attach::{AttachHandle, Command, PeerAttachment};
use crate::context::{Context, InprocInfo};
use crate::core::SocketCore;
use crate::error::{Error, Result};
use crate::options::{num, Options, Value};
use crate::pattern::SendError;

/// The default spin of a blocking call before it sleeps: about one loopback round trip, so
/// that a reply that comes that fast wakes no one (docs/performance.md, "Yielding spins").
pub const DEFAULT_SPIN: Duration = Duration::from_micros(20);

/// The spin of new sockets: `ZERORING_SOCKET_SPIN_US` (µs) if set; else [`DEFAULT_SPIN`]
/// where there is more than one core, and none on one. The spin yields the CPU between looks
/// (`Signal::wait`), so it does not delay the I/O thread it waits for when the two share a
/// core (a spin that kept the core did, on 2 cores: REQ/REP p50 15.5 µs without spin, 26 µs
/// with 5 µs).
fn socket_spin() -> Duration {
    if let Some(us) = std::env::var("ZERORING_SOCKET_SPIN_US")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return Duration::from_micros(us);
    }
    match std::thread::available_parallelism() {
        Ok(n) if n.get() > 1 => DEFAULT_SPIN,
        _ => Duration::ZERO,
    }
}

/// What `poll` spins before it sleeps: [`socket_spin`]'s value, read once per process (a poll
/// loop calls it often, and the environment takes a lock to read).
pub(crate) fn poll_spin() -> Duration {
    static SPIN: std::sync::OnceLock<Duration> = std::sync::OnceLock::new();
    *SPIN.get_or_init(socket_spin)
}

pub(super) struct Driver {
    pub(super) ctx: Context,
    pub(super) id: u64,
    /// Options, pattern, counters: the sans-IO part.
    pub(super) sc: SocketCore,
    pub(super) signal: Arc<Signal>,
    pub(super) mailbox: Mailbox<Command>,
    pub(super) rcvmore: bool,
    pub(super) spin: Duration,
    /// The context's MAX_MSGSZ when the socket was made; `usize::MAX` for none (−1).
    pub(super) max_msgsz: usize,
    pub(super) commands: Vec<Command>,
    /// tcp:// and ipc:// endpoints (listeners and connecters on the context's engine).
    pub(super) wire: crate::wire::Wire,
    /// Where monitor events go (`Socket::monitor`).
    pub(super) monitor: crate::monitor::MonitorSink,
    /// When the pipes this socket writes to look again at their readers' progress (lazy
    /// credit, as libzmq's socket learns it from commands): advanced whenever the socket waits,
    /// polls (EVENTS) or sets an option, and by a non-blocking send that finds no room at most
    /// once per [`CREDIT_REFRESH`].
    pub(super) credit: Arc<CreditEpoch>,
    /// When `credit` was last advanced.
    pub(super) credit_at: Option<Instant>,
    /// Ends of pipes whose connecting session ended for good, held for a moment.
    pub(super) ended: ended::Ended,
    /// ZMQ_FD was handed out: its signal is armed for an external poller
    /// ([`Signal::arm_for_poller`]).
    pub(super) fd_handed_out: bool,
}

/// How long a non-blocking send may see a pipe full by an old view of its reader's progress
/// before it looks again: libzmq's `max_command_delay` (3,000,000 TSC ticks, "about 1 ms on a
/// 3 GHz CPU"), the longest its socket goes without processing the reader's `activate_write`.
const CREDIT_REFRESH: Duration = Duration::from_millis(1);

/// When a call with timeout `ms` (−1: none) that starts waiting now gives up.
fn deadline_of(ms: i32) -> Option<Instant> {
    timeout_of(ms).map(|t| Instant::now() + t)
}

fn timeout_of(ms: i32) -> Option<Duration> {
    if ms < 0 {
        None
    } else {
        Some(Duration::from_millis(ms as u64))
    }
}

impl Driver {
    /// A new socket of type `t` in `ctx`, with the context's defaults applied (LINGER 0 when
    /// the context is not blocky, IPV6 when it is set); registered with the context.
    pub(super) fn new(ctx: Context, t: SocketType) -> Result<Driver> {
        let copts = ctx.options();
        let mut options = Options::new(t);
        if !copts.blocky {
            options.linger = 0;
        }
        if copts.ipv6 {
            options.extra.insert(num::IPV6, Value::Int(1));
        }
        let sc = SocketCore::with_options(options)?;
        let signal = Arc::new(Signal::new().map_err(|_| Error::EMFILE)?);
        let id = ctx.register_socket(signal.clone())?;
        let mailbox = Mailbox::new(signal.clone());
        Ok(Driver {
            ctx,
            id,
            sc,
            signal,
            mailbox,
            rcvmore: false,
            spin: socket_spin(),
            max_msgsz: usize::try_from(copts.max_msgsz).unwrap_or(usize::MAX),
            commands: Vec::new(),
            wire: crate::wire::Wire::default(),
            monitor: crate::monitor::MonitorSink::default(),
            credit: Arc::new(CreditEpoch::default()),
            credit_at: None,
            ended: ended::Ended::default(),
            fd_handed_out: false,
        })
    }

    /// Attaches a pipe pair to the pattern.
    pub(super) fn attach(&mut self, mut a: PeerAttachment) {
        let n: NotifyHandle = self.signal.clone();
        a.writer.set_credit_epoch(Some(self.credit.clone()));
        self.sc.attach(a, Some(n));
    }

    /// The pipes' next full checks look at their readers' progress again (libzmq's socket
    /// processing the readers' `activate_write` commands).
    #[inline]
    pub(super) fn refresh_credit(&mut self) {
        self.credit.advance();
        self.credit_at = Some(Instant::now());
    }

    /// Whether a non-blocking send that found no room should look again: its view is older
    /// than [`CREDIT_REFRESH`].
    #[inline]
    fn credit_due(&self) -> bool {
        self.credit_at.is_none_or(|t| t.elapsed() >= CREDIT_REFRESH)
    }

    /// Processes pending commands; ETERM after context shutdown. Two loads when there is
    /// nothing to do (every send and recv passes here).
    #[inline]
    pub(super) fn process_commands(&mut self) -> Result<()> {
        if self.ctx.is_terminated() {
            return Err(Error::ETERM);
        }
        if !self.mailbox.is_empty() {
            self.drain_commands();
        }
        Ok(())
    }

    #[inline(never)]
    fn drain_commands(&mut self) {
        let mut cmds = std::mem::take(&mut self.commands);
        self.mailbox.drain(&mut cmds);
        for c in cmds.drain(..) {
            match c {
                Command::Attach(a) => self.attach(*a),
                Command::Hiccup(key) => {
                    if let Some(a) = self.sc.hiccup(key) {
                        self.attach(a);
                    }
                }
                Command::Ended(ends) => self.ended.hold(*ends, Instant::now()),
                Command::GaveUp(key) => self.wire.forget(key),
                Command::RetireEnded => {
                    self.ended
                        .retire_due(Some(Instant::now()), &mut self.sc.stats);
                }
            }
        }
        self.commands = cmds;
        if self.ended.is_holding() {
            // Looked at again from the next call on (not this one: this call's sends still go
            // to a pipe it has just learnt has ended, as they would in libzmq).
            let _ = self.mailbox.sender().send(Command::RetireEnded);
        }
    }

    /// Processes pending commands and retires every ended pipe held now, grace or not: what a
    /// call that is not a send sees in libzmq, whose other calls never skip their commands.
    pub(super) fn process_all_commands(&mut self) -> Result<()> {
        self.process_commands()?;
        if self.ended.is_holding() {
            self.ended.retire_due(None, &mut self.sc.stats);
        }
        Ok(())
    }

    pub(super) fn inproc_info(&self) -> InprocInfo {
        InprocInfo {
            socket_id: self.id,
            socket_type: self.sc.options.socket_type,
            routing_id: self.sc.options.routing_id.clone(),
            sndhwm: self.sc.options.sndhwm,
            rcvhwm: self.sc.options.rcvhwm,
            conflate: self.sc.options.conflate,
        }
    }

    pub(super) fn handle(&self) -> AttachHandle {
        AttachHandle {
            sender: self.mailbox.sender(),
            signal: self.signal.clone(),
            socket_type: self.sc.options.socket_type,
        }
    }

    pub(super) fn wait(&self, deadline: Option<Instant>) -> Result<()> {
        let remaining = match deadline {
            None => None,
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(r) if !r.is_zero() => Some(r),
                _ => return Err(Error::EAGAIN),
            },
        };
        // A signal handled while blocked ends the call with EINTR, as libzmq's blocking
        // calls do; nothing was taken or queued, so the caller may simply retry.
        match self.signal.wait_interruptible(remaining, self.spin) {
            Wake::Interrupted => Err(Error::EINTR),
            Wake::Notified | Wake::TimedOut => Ok(()),
        }
    }

    #[inline]
    pub(super) fn send(&mut self, msg: Msg, flags: i32) -> Result<()> {
        self.send_returning(msg, flags).map_err(|e| e.error)
    }

    /// [`Driver::send`] that gives the part back when it was not sent.
    #[inline]
    pub(super) fn send_returning(
        &mut self,
        mut msg: Msg,
        flags: i32,
    ) -> std::result::Result<(), SendError> {
        if let Err(e) = self.process_commands() {
            return Err(SendError::new(e, msg));
        }
        msg.set_more(flags & SNDMORE != 0);
        if msg.len() > self.max_msgsz {
            return Err(SendError::new(Error::EMSGSIZE, msg));
        }
        let nonblocking = flags & DONTWAIT != 0 || self.sc.options.sndtimeo == 0;
        // The clock is read only if the call has to wait (not once per message).
        let mut deadline = None;
        let mut refreshed = false;
        loop {
            let (p, mut cx) = self.sc.cx();
            match p.send(msg, &mut cx) {
                Ok(()) => return Ok(()),
                Err(e) if e.error == Error::EAGAIN => {
                    msg = e.msg;
                    if let Err(e) = self.send_blocked(nonblocking, &mut refreshed, &mut deadline) {
                        return Err(SendError::new(e, msg));
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// What a send does after an attempt said EAGAIN, before it tries again (`Ok`) or gives up
    /// (`Err`). Full by the pipes' old view of their readers, it looks again once before
    /// waiting (the look arms the wakeup), or, not waiting, when the view is older than
    /// [`CREDIT_REFRESH`]. Otherwise a non-blocking send says EAGAIN, and a blocking one waits
    /// on the socket's signal until SNDTIMEO (its deadline is set at the first wait) and looks
    /// again. `refreshed` and `deadline` belong to the one send call.
    #[inline(never)]
    fn send_blocked(
        &mut self,
        nonblocking: bool,
        refreshed: &mut bool,
        deadline: &mut Option<Option<Instant>>,
    ) -> Result<()> {
        if !*refreshed && (!nonblocking || self.credit_due()) {
            *refreshed = true;
            self.refresh_credit();
            return Ok(());
        }
        if nonblocking {
            return Err(Error::EAGAIN);
        }
        let sndtimeo = self.sc.options.sndtimeo;
        let d = *deadline.get_or_insert_with(|| deadline_of(sndtimeo));
        self.wait(d)?;
        self.process_commands()?;
        self.refresh_credit();
        Ok(())
    }

    /// [`Driver::send`] of a body to copy: the pattern copies it into the pipe's slot. The first
    /// attempt is inlined into the caller; what follows an EAGAIN is [`Driver::send_slice_again`].
    #[inline(always)]
    pub(super) fn send_slice(&mut self, data: &[u8], flags: i32) -> Result<()> {
        self.process_commands()?;
        let more = flags & SNDMORE != 0;
        if data.len() > self.max_msgsz {
            return Err(Error::EMSGSIZE);
        }
        let (p, mut cx) = self.sc.cx();
        match p.send_slice(data, more, &mut cx) {
            Err(Error::EAGAIN) => self.send_slice_again(data, flags),
            r => r,
        }
    }

    /// [`Driver::send_slice`] after its first attempt said EAGAIN: look again at the readers'
    /// progress, or wait and retry, as in `send_returning`.
    #[inline(never)]
    fn send_slice_again(&mut self, data: &[u8], flags: i32) -> Result<()> {
        let more = flags & SNDMORE != 0;
        let nonblocking = flags & DONTWAIT != 0 || self.sc.options.sndtimeo == 0;
        let mut deadline = None;
        let mut refreshed = false;
        loop {
            // The last attempt said EAGAIN.
            self.send_blocked(nonblocking, &mut refreshed, &mut deadline)?;
            let (p, mut cx) = self.sc.cx();
            match p.send_slice(data, more, &mut cx) {
                Err(Error::EAGAIN) => {}
                r => return r,
            }
        }
    }

    #[inline]
    pub(super) fn recv(&mut self, flags: i32) -> Result<Msg> {
        let mut m = Msg::new();
        self.recv_into(&mut m, flags)?;
        Ok(m)
    }

    /// Receives one part into `out` (whose old contents are dropped); `out` is untouched on
    /// error. The patterns on the throughput path move the part from the pipe straight into
    /// `out` (see [`Pattern::recv_into`](crate::pattern::Pattern::recv_into)). The first
    /// attempt is inlined into the caller; what follows an EAGAIN is
    /// [`Driver::recv_into_again`].
    #[inline(always)]
    pub(super) fn recv_into(&mut self, out: &mut Msg, flags: i32) -> Result<()> {
        self.process_commands()?;
        let (p, mut cx) = self.sc.cx();
        match p.recv_into(out, &mut cx) {
            Ok(()) => {
                self.rcvmore = out.more();
                Ok(())
            }
            Err(Error::EAGAIN) => self.recv_into_again(out, flags),
            Err(e) => Err(e),
        }
    }

    /// [`Driver::recv_into`] after its first attempt said EAGAIN: EAGAIN for a non-blocking
    /// call, else retry or wait.
    #[inline(never)]
    fn recv_into_again(&mut self, out: &mut Msg, flags: i32) -> Result<()> {
        let nonblocking = flags & DONTWAIT != 0 || self.sc.options.rcvtimeo == 0;
        if nonblocking {
            return Err(Error::EAGAIN);
        }
        let mut deadline = None;
        let mut retries = 0u32;
        loop {
            // The last attempt said EAGAIN.
            let (p, mut cx) = self.sc.cx();
            // A pattern may say EAGAIN after discarding something (a stale REQ reply, a
            // filtered message) with more already queued: those pipes were not found empty,
            // so nothing will wake us for them. Retry at once then (bounded, in case `has_in`
            // is only a hint).
            if retries < 1024 && p.has_in(&mut cx) {
                retries += 1;
            } else {
                let rcvtimeo = self.sc.options.rcvtimeo;
                let d = *deadline.get_or_insert_with(|| deadline_of(rcvtimeo));
                self.wait(d)?;
                self.process_commands()?;
                // Having waited, the socket looks at its readers' progress again, as
                // libzmq's does when its wait ends with commands.
                self.refresh_credit();
            }
            let (p, mut cx) = self.sc.cx();
            match p.recv_into(out, &mut cx) {
                Ok(()) => {
                    self.rcvmore = out.more();
                    return Ok(());
                }
                Err(Error::EAGAIN) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Connections first: they stop accepting and reconnecting, and deliver what this
        // socket queued within LINGER (the pattern's pipes close when it drops below).
        let lingering = self.ctx.inner.lingering.clone();
        self.wire.linger_all(self.sc.options.linger, &lingering);
        self.monitor.stop();
        self.mailbox.close();
        // Dropping queued attachments and the pattern closes every pipe; peers see the close
        // after reading what was already sent.
        let mut cmds = Vec::new();
        while let Some(c) = self.mailbox.try_recv() {
            cmds.push(c);
        }
        drop(cmds);
        self.ctx.unregister_socket(self.id);
    }
}
