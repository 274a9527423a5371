//! Completion dispatch: turning one backend completion into handler callbacks. A multishot
//! accept or receive the kernel ended early is re-armed, a receive that found no buffer is
//! parked until buffers come back, a received buffer is lent to its handler for the one
//! callback and then taken back, and an operation's resources are freed only with its final
//! completion.
//!
//! Must never: hand a handler a buffer past its callback, or free an operation's resources on a
//! completion that says more will come.

use std::io;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::Ordering;

use super::{Completion, Core, HandlerId, OpId, MAX_SEND_SPARES};
use crate::backend::{op_key, split_key, OpState, RawCompletion, IGNORED_KEY};

/// Transient accept errors after which accepting goes on (libzmq retries these too).
fn accept_error_is_transient(errno: i32) -> bool {
    matches!(
        errno,
        libc::ECONNABORTED
            | libc::EMFILE
            | libc::ENFILE
            | libc::ENOBUFS
            | libc::ENOMEM
            | libc::EPROTO
            | libc::EINTR
            | libc::EAGAIN
    )
}

impl Core {
    pub(super) fn resubmit(&mut self, index: usize) {
        let slot = &mut self.ops[index];
        let key = op_key(index, slot.gen);
        self.backend.submit(key, &mut slot.state, &mut self.pool);
    }

    /// Turns one backend completion into handler callbacks.
    pub(crate) fn complete(&mut self, rc: RawCompletion) {
        if rc.key == IGNORED_KEY {
            return;
        }
        let (index, gen) = split_key(rc.key);
        let Some(slot) = self.ops.get_mut(index).filter(|s| s.gen == gen) else {
            // Stale (already finished) operation: just keep the buffer.
            if let Some(bid) = rc.bid {
                self.pool.put_free(bid);
            }
            return;
        };
        self.stats.completions.fetch_add(1, Ordering::Relaxed);
        let cancelled = slot.cancelled;
        let owner = slot.owner.map(|(key, gen)| HandlerId { key, gen });
        let op = OpId(rc.key);
        match &mut slot.state {
            OpState::Wake { .. } => {
                self.wake_fired = true;
                if !rc.more && !cancelled {
                    self.resubmit(index);
                } else if !rc.more {
                    self.finish(index);
                }
            }
            OpState::Recv { once, .. } => {
                let once = *once;
                if rc.res == -libc::ENOBUFS {
                    if let Some(bid) = rc.bid {
                        self.pool.put_free(bid);
                    }
                    if !cancelled {
                        self.stats.recv_starved.fetch_add(1, Ordering::Relaxed);
                        self.starved.push(rc.key);
                        return;
                    }
                    if rc.more {
                        return;
                    }
                    // A cancelled receive that found no buffer read nothing: it ends as
                    // cancelled. Reported as ENOBUFS, its owner took it for a failed
                    // connection and closed it (the stream cancels its receive whenever its
                    // pipe fills up, which is exactly when the pool runs dry under load).
                    self.finish_with(
                        index,
                        owner,
                        op,
                        Completion::Received(Err(io::Error::from_raw_os_error(libc::ECANCELED))),
                    );
                    return;
                }
                if rc.res > 0 {
                    let len = rc.res as usize;
                    let bid = match rc.bid {
                        Some(bid) if len <= self.pool.buf_size() && bid < self.pool.count() => bid,
                        _ => {
                            self.finish_with(
                                index,
                                owner,
                                op,
                                Completion::Received(Err(io::Error::other(
                                    "receive without a valid provided buffer",
                                ))),
                            );
                            return;
                        }
                    };
                    // A multishot receive the kernel ended on its own is re-armed; a single-shot
                    // one ends with its one completion.
                    if !rc.more && !cancelled && !once {
                        self.resubmit(index);
                    }
                    let ended = !rc.more && (cancelled || once);
                    if ended {
                        self.finish(index);
                    }
                    // SAFETY: `bid < count` and `len <= size`, so the range lies inside the
                    // pool's allocation, which lives as long as `self.pool`. The kernel (or the
                    // epoll backend's read) filled it and handed it over with this completion;
                    // the buffer is neither free nor lent to the kernel until `put_free` below,
                    // so nothing writes it while the handler reads the slice, and the slice's
                    // lifetime ends with the `deliver` call (`Completion` borrows it).
                    let data = unsafe { std::slice::from_raw_parts(self.pool.addr(bid), len) };
                    self.deliver(owner, op, Completion::Received(Ok(data)), !ended);
                    // The receive pool is a landing zone: the bytes were decoded or copied out.
                    self.pool.put_free(bid);
                    return;
                }
                let result = if rc.res == 0 {
                    Ok(&[][..])
                } else {
                    Err(io::Error::from_raw_os_error(-rc.res))
                };
                if rc.more {
                    // Not expected from either backend; keep the operation and report.
                    self.deliver(owner, op, Completion::Received(result), true);
                    return;
                }
                self.finish_with(index, owner, op, Completion::Received(result));
            }
            OpState::Accept { .. } => {
                if rc.res >= 0 {
                    // SAFETY: a successful accept's result is a new descriptor we now own.
                    let fd = unsafe { OwnedFd::from_raw_fd(rc.res) };
                    if !rc.more && !cancelled {
                        self.resubmit(index);
                    }
                    let ended = !rc.more && cancelled;
                    if ended {
                        self.finish(index);
                    }
                    self.deliver(owner, op, Completion::Accepted(Ok(fd)), !ended);
                    return;
                }
                let err = io::Error::from_raw_os_error(-rc.res);
                if !cancelled && accept_error_is_transient(-rc.res) {
                    if !rc.more {
                        self.resubmit(index);
                    }
                    self.deliver(owner, op, Completion::Accepted(Err(err)), true);
                    return;
                }
                if rc.more {
                    self.deliver(owner, op, Completion::Accepted(Err(err)), true);
                } else {
                    self.finish_with(index, owner, op, Completion::Accepted(Err(err)));
                }
            }
            OpState::Connect { .. } => {
                let result = if rc.res >= 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(-rc.res))
                };
                self.finish_with(index, owner, op, Completion::Connected(result));
            }
            OpState::RecvInto { .. } => {
                let Some(OpState::RecvInto { fd, mut buf }) = self.take(index) else {
                    return;
                };
                // Release the descriptor before the handler runs, so it may close it.
                drop(fd);
                let result = match rc.res {
                    n if n > 0 => {
                        // SAFETY: the kernel (or the epoll backend's recv) wrote `n` bytes at
                        // the spare pointer the operation was given, asked for at most
                        // `remaining()` bytes; the buffer was not touched since (the reactor
                        // held it). `assume_written` clamps to `remaining()` regardless.
                        unsafe { buf.assume_written(n as usize) };
                        Ok(n as usize)
                    }
                    0 => Ok(0),
                    e => Err(io::Error::from_raw_os_error(-e)),
                };
                self.deliver(owner, op, Completion::ReceivedInto { result, buf }, false);
            }
            OpState::Send(s) => {
                let res = if s.zero_copy {
                    if rc.notif {
                        s.zc_result.take().unwrap_or(0)
                    } else if rc.more {
                        // The send's result; its buffers stay in use until the notification.
                        s.zc_result = Some(rc.res);
                        return;
                    } else {
                        rc.res
                    }
                } else {
                    rc.res
                };
                if res >= 0 {
                    s.advance(res as usize);
                    if !s.done() && !cancelled && res > 0 {
                        self.resubmit(index);
                        return;
                    }
                }
                let Some(OpState::Send(s)) = self.take(index) else {
                    return;
                };
                let result = if res < 0 {
                    Err(io::Error::from_raw_os_error(-res))
                } else if s.done() {
                    Ok(s.sent)
                } else if cancelled {
                    Err(io::Error::from_raw_os_error(libc::ECANCELED))
                } else {
                    Err(io::Error::from(io::ErrorKind::WriteZero))
                };
                // Release the descriptor before the handler runs, so it may close it.
                let (bufs, fd, spare) = s.into_parts();
                drop(fd);
                if self.send_spares.len() < MAX_SEND_SPARES {
                    self.send_spares.push(spare);
                }
                self.deliver(owner, op, Completion::Sent { result, bufs }, false);
            }
            OpState::Close { .. } => {
                let result = if rc.res >= 0 {
                    Ok(())
                } else {
                    Err(io::Error::from_raw_os_error(-rc.res))
                };
                self.finish_with(index, owner, op, Completion::Closed(result));
            }
        }
    }

    pub(super) fn take(&mut self, index: usize) -> Option<OpState> {
        let slot = self.ops.try_remove(index)?;
        if slot.owner.is_none() {
            self.internal_ops -= 1;
        }
        Some(slot.state)
    }

    pub(super) fn finish(&mut self, index: usize) {
        drop(self.take(index));
    }

    pub(super) fn finish_with(
        &mut self,
        index: usize,
        owner: Option<HandlerId>,
        op: OpId,
        completion: Completion<'_>,
    ) {
        self.finish(index);
        self.deliver(owner, op, completion, false);
    }

    pub(super) fn deliver(
        &mut self,
        owner: Option<HandlerId>,
        op: OpId,
        completion: Completion<'_>,
        more: bool,
    ) {
        if let Some(owner) = owner {
            self.dispatch(owner, |h, cx| h.on_completion(cx, op, completion, more));
        }
    }
}
