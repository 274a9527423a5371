//! Fair-queuing (libzmq's `fq_t`): incoming messages are taken from the pipes round robin, one
//! whole message at a time; a multipart message is read from its pipe to the end before another
//! pipe gets a turn. Pipes found closed are detached.

use zeroring_engine::pipe::ReadError;
use zeroring_engine::Msg;

use super::{PipeId, Pipes};
use crate::error::{Error, Result};

/// Fair-queue state.
#[derive(Debug, Default)]
pub struct Fq {
    current: usize,
    /// The pipe whose message is being read.
    more: Option<PipeId>,
}

impl Fq {
    /// Receives one part and the pipe it came from.
    pub fn recv(&mut self, pipes: &mut Pipes) -> Result<(Msg, PipeId)> {
        if let Some(id) = self.more {
            match pipes.index_of(id) {
                Some(i) => match pipes.list[i].read() {
                    Ok(m) => {
                        if !m.more() {
                            self.more = None;
                            self.current = (i + 1) % pipes.len();
                        }
                        return Ok((m, id));
                    }
                    // Parts of a message are flushed together; this is defensive.
                    Err(ReadError::Empty) => return Err(Error::EAGAIN),
                    // The writer closed mid-message: the message is cut short.
                    Err(ReadError::Closed) => {
                        pipes.kill_at(i);
                        self.more = None;
                        self.current = 0;
                    }
                },
                None => self.more = None,
            }
        }
        let mut tried = 0;
        while tried < pipes.len() {
            let i = (self.current + tried) % pipes.len();
            match pipes.list[i].read() {
                Ok(m) => {
                    let id = pipes.list[i].id;
                    if m.more() {
                        self.more = Some(id);
                        self.current = i;
                    } else {
                        self.current = (i + 1) % pipes.len();
                    }
                    return Ok((m, id));
                }
                Err(ReadError::Empty) => tried += 1,
                Err(ReadError::Closed) => {
                    pipes.kill_at(i);
                    if self.current > i {
                        self.current -= 1;
                    }
                    if !pipes.is_empty() {
                        self.current %= pipes.len();
                    } else {
                        self.current = 0;
                    }
                }
            }
        }
        Err(Error::EAGAIN)
    }

    /// Whether a message is being read.
    pub fn in_message(&self) -> bool {
        self.more.is_some()
    }

    /// Whether a recv could succeed now (a hint).
    pub fn has_in(&self, pipes: &Pipes) -> bool {
        self.more.is_some() || pipes.any_readable()
    }
}
