//! PAIR (RFC 31): exactly one peer; a second one is refused (its pipe is closed). Sends block
//! (EAGAIN) at the high-water mark or when there is no peer.

use zeroring_engine::pipe::{ReadError, WriteError};
use zeroring_engine::Msg;

use super::{drop_dead, Pattern, PatternCx, Pipe, Pipes, SendError};
use crate::error::{Error, Result};

/// PAIR.
#[derive(Debug, Default)]
pub struct Pair {
    pipes: Pipes,
    /// A part `has_in` read (arming the pipe), handed out by the next `recv`.
    prefetched: Option<Msg>,
    /// The next single-part message goes through the pipe, not directly (see
    /// [`super::lb::Lb::direct_armed`]): set by a direct write, cleared by a receive or poll.
    direct_spent: bool,
}

impl Pair {
    /// The next part from the peer; EAGAIN when there is none (the pipe is then armed).
    fn read(&mut self) -> Result<Msg> {
        if let Some(m) = self.prefetched.take() {
            return Ok(m);
        }
        match self.pipes.list.first_mut() {
            None => Err(Error::EAGAIN),
            Some(p) => match p.read() {
                Ok(m) => Ok(m),
                Err(ReadError::Empty) => Err(Error::EAGAIN),
                Err(ReadError::Closed) => {
                    self.pipes.kill_at(0);
                    Err(Error::EAGAIN)
                }
            },
        }
    }
}

impl Pattern for Pair {
    fn attach(&mut self, pipe: Pipe, cx: &mut PatternCx<'_>) {
        drop_dead(&mut self.pipes, cx);
        if self.pipes.is_empty() {
            cx.stats.peers_attached += 1;
            self.pipes.push(pipe);
        }
    }

    fn send(&mut self, msg: Msg, cx: &mut PatternCx<'_>) -> std::result::Result<(), SendError> {
        let more = msg.more();
        if let (Some(p), false) = (self.pipes.list.first_mut(), self.direct_spent) {
            // The send fast path ([`super::direct`]).
            if !more
                && p.direct
                    .as_mut()
                    .is_some_and(|d| d.try_write_counted(&p.writer, &[msg.data()], cx.stats))
            {
                self.direct_spent = true;
                return Ok(());
            }
        }
        let r = match self.pipes.list.first_mut() {
            None => Err(SendError::new(Error::EAGAIN, msg)),
            Some(p) => match p.writer.write(msg) {
                Ok(()) => {
                    if !more {
                        p.writer.flush();
                        cx.stats.sent += 1;
                    }
                    Ok(())
                }
                Err(WriteError::Full(m)) => Err(SendError::new(Error::EAGAIN, m)),
                Err(WriteError::Closed(m)) => {
                    self.pipes.write_closed(0);
                    Err(SendError::new(Error::EAGAIN, m))
                }
            },
        };
        drop_dead(&mut self.pipes, cx);
        r
    }

    fn recv(&mut self, cx: &mut PatternCx<'_>) -> Result<Msg> {
        self.direct_spent = false;
        let r = self.read();
        if let Ok(m) = &r {
            if !m.more() {
                cx.stats.received += 1;
            }
        }
        drop_dead(&mut self.pipes, cx);
        r
    }

    fn has_in(&mut self, cx: &mut PatternCx<'_>) -> bool {
        self.direct_spent = false;
        if self.prefetched.is_none() {
            self.prefetched = self.read().ok();
            drop_dead(&mut self.pipes, cx);
        }
        self.prefetched.is_some()
    }

    fn has_out(&mut self, _cx: &mut PatternCx<'_>) -> bool {
        self.pipes.any_writable()
    }

    fn copy_hint(&self) -> zeroring_engine::CopyHint {
        self.pipes.copy_hint()
    }

    fn disconnect(&mut self, endpoint: &str, cx: &mut PatternCx<'_>) -> usize {
        let n = self.pipes.kill_endpoint(endpoint);
        drop_dead(&mut self.pipes, cx);
        n
    }

    fn peers(&self) -> usize {
        self.pipes.live()
    }

    fn pipes_mut(&mut self) -> Option<&mut super::Pipes> {
        Some(&mut self.pipes)
    }
}
