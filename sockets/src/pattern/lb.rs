//! Load-balancing (libzmq's `lb_t`): each message goes to the next pipe, round robin, that can
//! take it; a multipart message stays on one pipe. Pipes at their high-water mark are skipped;
//! when none can take a message the send fails with EAGAIN (the socket then blocks or returns
//! it). If the pipe dies in the middle of a message, the rest of that message is dropped.

use zeroring_engine::pipe::WriteError;
use zeroring_engine::Msg;

use super::{PipeId, Pipes, SendError};
use crate::error::Error;

/// Load-balancer state.
#[derive(Debug, Default)]
pub struct Lb {
    current: usize,
    /// The pipe carrying the message in progress.
    more: Option<PipeId>,
    /// The pipe died mid-message: drop parts until the last one.
    dropping: bool,
}

impl Lb {
    /// Sends one part; returns the pipe it went to (`None` when dropped mid-message).
    #[inline]
    pub fn send(&mut self, pipes: &mut Pipes, msg: Msg) -> Result<Option<PipeId>, SendError> {
        let more = msg.more();
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
            return match pipes.list[i].writer.write(msg) {
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
        let mut msg = msg;
        let mut tried = 0;
        // The index wraps by comparison: a `%` per send is a division, dearer than the rest of
        // the choice together.
        let mut i = self.current;
        while tried < pipes.len() {
            if i >= pipes.len() {
                i = 0;
            }
            match pipes.list[i].writer.write(msg) {
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
                Err(WriteError::Full(m)) => {
                    msg = m;
                    tried += 1;
                    i += 1;
                }
                Err(WriteError::Closed(m)) => {
                    msg = m;
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
        Err(SendError::new(Error::EAGAIN, msg))
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
