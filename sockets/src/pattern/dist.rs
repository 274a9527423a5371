//! Distribution (libzmq's `dist_t`): one message to many pipes. The pipes that take a message
//! are chosen at its first part (by the caller's match); a pipe at its high-water mark misses
//! the message (counted as a drop) and the rest of the message follows the pipes that took the
//! first part.

use std::collections::HashSet;

use zeroring_engine::pipe::WriteError;
use zeroring_engine::Msg;

use super::{PipeId, PipeIdState, Pipes};

/// Distribution state.
#[derive(Debug, Default)]
pub struct Dist {
    /// Pipes carrying the message in progress.
    matching: Vec<PipeId>,
    /// The pipes already given the message in progress, when there are many (a scan of
    /// `matching` per target would make fan-out quadratic in the number of peers).
    seen: HashSet<PipeId, PipeIdState>,
    in_message: bool,
}

impl Dist {
    /// Sends one part. For a first part, `targets` are the matching pipes (duplicates
    /// allowed); for later parts it is ignored. Returns the number of pipes that missed the
    /// message because they were full (counted at the first part only).
    pub fn send(&mut self, pipes: &mut Pipes, targets: &[PipeId], msg: Msg) -> usize {
        let more = msg.more();
        let mut dropped = 0;
        if !self.in_message {
            self.matching.clear();
            let many = targets.len() > 8;
            if many {
                self.seen.clear();
            }
            for &id in targets {
                let duplicate = if many {
                    !self.seen.insert(id)
                } else {
                    self.matching.contains(&id)
                };
                if duplicate {
                    continue;
                }
                let Some(i) = pipes.index_of(id) else {
                    continue;
                };
                match super::write_or_drop(&mut pipes.list[i].writer, msg.clone()) {
                    Ok(()) => self.matching.push(id),
                    Err(WriteError::Full(_)) => dropped += 1,
                    Err(WriteError::Closed(_)) => {
                        pipes.write_closed(i);
                    }
                }
            }
        } else {
            let mut k = 0;
            while k < self.matching.len() {
                let id = self.matching[k];
                let ok = match pipes.index_of(id) {
                    Some(i) => match pipes.list[i].writer.write(msg.clone()) {
                        Ok(()) => true,
                        Err(_) => {
                            pipes.kill_at(i);
                            false
                        }
                    },
                    None => false,
                };
                if ok {
                    k += 1;
                } else {
                    self.matching.swap_remove(k);
                }
            }
        }
        self.in_message = more;
        if !more {
            for &id in &self.matching {
                if let Some(p) = pipes.get_mut(id) {
                    p.writer.flush();
                }
            }
            self.matching.clear();
        }
        dropped
    }

    /// Whether a message is in progress.
    pub fn in_message(&self) -> bool {
        self.in_message
    }

    /// Whether every pipe in `targets` can take a new message (XPUB_NODROP).
    pub fn all_writable(&self, pipes: &mut Pipes, targets: &[PipeId]) -> bool {
        targets
            .iter()
            .all(|&id| pipes.get_mut(id).is_none_or(|p| p.writer.is_writable()))
    }
}
