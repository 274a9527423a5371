//! Load-balancing (libzmq's `lb_t`): each message goes to the next pipe, round robin, that can
//! take it; a multipart message stays on one pipe. Pipes at their high-water mark are skipped;
//! when none can take a message the send fails with EAGAIN (the socket then blocks or returns
//! it). If the pipe dies in the middle of a message, the rest of that message is dropped.

use zeroring_engine::pipe::{Fill, WriteError};
use zeroring_engine::{CopyHint, Msg};

use super::{Pipe, PipeId, Pipes, SendError};
use crate::error::Error;

/// A part on its way into a pipe: a [`Msg`] to move, or a borrowed body to copy into the
/// pipe's slot. A write that fails leaves the part here for the next pipe.
trait Outgoing {
    fn more(&self) -> bool;
    fn write_to(&mut self, p: &mut Pipe) -> Result<(), WriteError<()>>;
}

/// A whole `Msg` (always `Some` between writes).
struct Owned(Option<Msg>);

impl Outgoing for Owned {
    #[inline(always)]
    fn more(&self) -> bool {
        self.0.as_ref().is_some_and(Msg::more)
    }

    #[inline(always)]
    fn write_to(&mut self, p: &mut Pipe) -> Result<(), WriteError<()>> {
        let Some(m) = self.0.take() else {
            return Err(WriteError::Closed(()));
        };
        match p.writer.write(m) {
            Ok(()) => Ok(()),
            Err(WriteError::Full(m)) => {
                self.0 = Some(m);
                Err(WriteError::Full(()))
            }
            Err(WriteError::Closed(m)) => {
                self.0 = Some(m);
                Err(WriteError::Closed(()))
            }
        }
    }
}

/// A body to copy, and whether parts follow.
struct Borrowed<'a> {
    data: &'a [u8],
    more: bool,
}

impl Outgoing for Borrowed<'_> {
    #[inline(always)]
    fn more(&self) -> bool {
        self.more
    }

    #[inline(always)]
    fn write_to(&mut self, p: &mut Pipe) -> Result<(), WriteError<()>> {
        let how = p.copy_hint();
        p.writer
            .write_in_place(|slot| Msg::write_copied(slot, self.data, self.more, how))
    }
}

/// A single-part body to copy into a pipe's slot ([`Lb::send_slice_ready`]).
struct CopyIn<'a>(&'a [u8]);

impl Fill<Msg> for CopyIn<'_> {
    #[inline(always)]
    fn fill(self, slot: &mut std::mem::MaybeUninit<Msg>) -> &mut Msg {
        // Only bodies small enough to be inline come this way: the hint is never used.
        Msg::write_copied(slot, self.0, false, CopyHint::Cached)
    }
}

/// A single-part `Msg` to move into a pipe's slot ([`Lb::send_msg_ready`]); given back unused
/// when the fast path does not take it.
struct MoveIn(Msg);

impl Fill<Msg> for MoveIn {
    #[inline(always)]
    fn fill(self, slot: &mut std::mem::MaybeUninit<Msg>) -> &mut Msg {
        slot.write(self.0)
    }
}

/// Load-balancer state.
#[derive(Debug)]
pub struct Lb {
    current: usize,
    /// The pipe carrying the message in progress.
    more: Option<PipeId>,
    /// The pipe died mid-message: drop parts until the last one.
    dropping: bool,
    /// The next single-part message may be written directly ([`Lb::try_direct`]). A direct
    /// write clears it and the owning pattern sets it again when the application receives or
    /// polls: a request-reply exchange writes every message directly, while a stream of
    /// messages without receives in between goes through the pipe after its first, where
    /// the I/O thread writes many with one system call (a direct write costs one each).
    pub direct_armed: bool,
}

impl Default for Lb {
    fn default() -> Self {
        Lb {
            current: 0,
            more: None,
            dropping: false,
            direct_armed: true,
        }
    }
}

impl Lb {
    /// The send fast path ([`super::direct`]): the whole message `parts` written straight to
    /// the only peer's connection, when no message is under way; the pipe it went to, or
    /// `None` when it must go through the pipe. The checks that usually say no are inlined;
    /// the write is not (it would keep `send_slice` from being inlined into its callers).
    #[inline(always)]
    pub fn try_direct(
        &mut self,
        pipes: &mut Pipes,
        parts: &[&[u8]],
        stats: &mut super::Stats,
    ) -> Option<PipeId> {
        if !self.direct_armed || pipes.len() != 1 || self.dropping || self.more.is_some() {
            return None;
        }
        self.direct_write(pipes, parts, stats)
    }

    #[inline(never)]
    fn direct_write(
        &mut self,
        pipes: &mut Pipes,
        parts: &[&[u8]],
        stats: &mut super::Stats,
    ) -> Option<PipeId> {
        let p = &mut pipes.list[0];
        let d = p.direct.as_mut()?;
        if !d.try_write_counted(&p.writer, parts, stats) {
            return None;
        }
        self.direct_armed = false;
        self.current = 0;
        Some(p.id)
    }

    /// The fast paths' condition: one pipe, no message under way or being dropped, nothing
    /// dead to reap.
    #[inline(always)]
    fn at_rest(&self, pipes: &Pipes) -> bool {
        pipes.len() == 1 && !self.dropping && self.more.is_none() && pipes.dead.is_empty()
    }

    /// The fast path of [`Lb::send_slice`] for a single-part message with a body small enough
    /// to be copied inline, when there is nothing else to do: one pipe, no message under way
    /// or being dropped, nothing dead to reap, and the pipe's writer taking it with no call
    /// ([`PipeWriter::write_flush_ready`]). Returns whether the pipe's reader must be woken
    /// ([`Pipes::wake_first`]); `None`, with nothing done, otherwise (the caller then takes
    /// the full path). Counts nothing: the caller counts the message as sent.
    #[inline(always)]
    pub(crate) fn send_slice_ready(&mut self, pipes: &mut Pipes, data: &[u8]) -> Option<bool> {
        if data.len() > Msg::INLINE_CAP || !self.at_rest(pipes) {
            return None;
        }
        let woke = pipes.list[0].writer.write_flush_ready(CopyIn(data)).ok()?;
        self.current = 0;
        Some(woke)
    }

    /// [`Lb::send_slice_ready`] for a whole `Msg` (`zmq_msg_send`), moved into the slot as it
    /// is, whatever its body: the same conditions, and the part itself must end its message.
    /// `Err(msg)` gives the part back unsent.
    #[inline(always)]
    pub(crate) fn send_msg_ready(&mut self, pipes: &mut Pipes, msg: Msg) -> Result<bool, Msg> {
        if msg.more() || !self.at_rest(pipes) {
            return Err(msg);
        }
        match pipes.list[0].writer.write_flush_ready(MoveIn(msg)) {
            Ok(woke) => {
                self.current = 0;
                Ok(woke)
            }
            Err(MoveIn(msg)) => Err(msg),
        }
    }

    /// Sends one part; returns the pipe it went to (`None` when dropped mid-message).
    #[inline]
    pub fn send(&mut self, pipes: &mut Pipes, msg: Msg) -> Result<Option<PipeId>, SendError> {
        let mut part = Owned(Some(msg));
        self.send_part(pipes, &mut part)
            .map_err(|e| SendError::new(e, part.0.take().unwrap_or_default()))
    }

    /// Sends one part given as a body to copy (`more`: parts follow), built in the pipe's
    /// slot rather than moved through the layers; on EAGAIN nothing was copied. Counts a
    /// complete message as sent, or as dropped when its pipe went away mid-message.
    /// `DIRECT`: the socket may write a single-part message straight to its only peer (see
    /// [`Lb::try_direct`]); PUSH does not, since the fast path is re-armed by receives and a
    /// PUSH never receives (it would carry one message, and cost every send a check).
    #[inline(always)]
    pub fn send_slice<const DIRECT: bool>(
        &mut self,
        pipes: &mut Pipes,
        data: &[u8],
        more: bool,
        stats: &mut super::Stats,
    ) -> Result<(), Error> {
        // A disarmed fast path (a stream of sends) costs one load and branch here.
        if DIRECT && self.direct_armed && !more && self.try_direct(pipes, &[data], stats).is_some()
        {
            return Ok(());
        }
        match self.send_part(pipes, &mut Borrowed { data, more }) {
            Ok(Some(_)) => {
                if !more {
                    stats.sent += 1;
                }
                Ok(())
            }
            Ok(None) => {
                if !more {
                    stats.dropped_unroutable += 1;
                }
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    #[inline(always)]
    fn send_part(
        &mut self,
        pipes: &mut Pipes,
        part: &mut impl Outgoing,
    ) -> Result<Option<PipeId>, Error> {
        let more = part.more();
        // One peer and no message under way (the common case): its pipe, without the round
        // robin's bookkeeping. A refusal falls through to the full path below, which tries it
        // again (a second full check arms nothing new) and handles the refusal.
        if pipes.len() == 1 && !self.dropping && self.more.is_none() {
            let p = &mut pipes.list[0];
            if part.write_to(p).is_ok() {
                if more {
                    self.more = Some(p.id);
                } else {
                    p.writer.flush();
                }
                self.current = 0;
                return Ok(Some(p.id));
            }
        }
        if self.dropping {
            self.dropping = more;
            return Ok(None);
        }
        if let Some(id) = self.more {
            let Some(i) = pipes.index_of(id) else {
                self.more = None;
                self.dropping = more;
                return Ok(None);
            };
            return match part.write_to(&mut pipes.list[i]) {
                Ok(()) => {
                    if !more {
                        pipes.list[i].writer.flush();
                        self.more = None;
                        self.advance(i, pipes.len());
                    }
                    Ok(Some(id))
                }
                Err(_) => {
                    pipes.kill_at(i);
                    self.more = None;
                    self.dropping = more;
                    Ok(None)
                }
            };
        }
        let mut tried = 0;
        // The index wraps by comparison: a `%` per send is a division, dearer than the rest of
        // the choice together.
        let mut i = self.current;
        while tried < pipes.len() {
            if i >= pipes.len() {
                i = 0;
            }
            match part.write_to(&mut pipes.list[i]) {
                Ok(()) => {
                    let id = pipes.list[i].id;
                    if more {
                        self.more = Some(id);
                        self.current = i;
                    } else {
                        pipes.list[i].writer.flush();
                        self.advance(i, pipes.len());
                    }
                    return Ok(Some(id));
                }
                Err(WriteError::Full(())) => {
                    tried += 1;
                    i += 1;
                }
                Err(WriteError::Closed(())) => {
                    if pipes.write_closed(i) {
                        // The next pipe moved into slot `i`: try it next, same count.
                        if self.current > i {
                            self.current -= 1;
                        }
                        if !pipes.is_empty() {
                            self.current %= pipes.len();
                        }
                    } else {
                        tried += 1;
                        i += 1;
                    }
                }
            }
        }
        Err(Error::EAGAIN)
    }

    #[inline]
    fn advance(&mut self, i: usize, n: usize) {
        self.current = if i + 1 >= n { 0 } else { i + 1 };
    }

    /// Whether a message is in progress.
    pub fn in_message(&self) -> bool {
        self.more.is_some() || self.dropping
    }

    /// Whether a send could succeed now.
    pub fn has_out(&self, pipes: &mut Pipes) -> bool {
        self.in_message() || pipes.any_writable()
    }
}
