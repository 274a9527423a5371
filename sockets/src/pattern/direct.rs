//! The send fast path: a whole message written by the socket's thread straight to its
//! connection, when the connection's I/O thread has nothing to send and the pipe to it is read
//! to its end — instead of queueing the message and waking the I/O thread, which costs a
//! thread hand-off (two per request-reply round trip).
//!
//! Owns: the framing of a whole message into one buffer and the one non-blocking write. The
//! protocol that makes it safe — who may write the connection, and what an unfinished write
//! leaves to the I/O thread — is the engine's [`Handover`](zeroring_engine::handover).
//!
//! Must never: write while a message of the same pipe waits in it or in the I/O thread's
//! encoder (the claim and the drained check), write part of a message without handing the
//! rest over, or block.

use std::os::fd::AsRawFd;
use std::sync::Arc;

use zeroring_engine::pipe::PipeWriter;
use zeroring_engine::Msg;
use zeroring_transports::driver::WireHandover;
use zeroring_transports::zmtp::frame::{header_len, put_header, FLAG_MORE};

/// Messages up to this many bytes on the wire (frames' headers included) may be written
/// directly; larger ones go through the pipe (the copy into one buffer would cost more than
/// the hand-off saves, and the I/O thread sends large bodies without copying them).
pub const DIRECT_MAX: usize = 8 * 1024;

/// How a direct write went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DirectWrite {
    /// The connection took the whole message.
    Whole,
    /// It took part; the rest was handed to the I/O thread, which writes it first.
    Part,
}

/// A pipe's side of the hand-over, with the buffer a message is framed into (kept between
/// messages).
#[derive(Debug)]
pub struct Direct {
    handover: Arc<WireHandover>,
    buf: Vec<u8>,
}

impl Direct {
    /// The socket's side of `handover`.
    pub fn new(handover: Arc<WireHandover>) -> Self {
        Direct {
            handover,
            buf: Vec::new(),
        }
    }

    /// The hand-over it wraps.
    pub fn into_handover(self) -> Arc<WireHandover> {
        self.handover
    }

    /// Writes the message `parts` (ZMTP data frames, MORE on all but the last) straight to the
    /// connection: [`DirectWrite::Whole`], or [`DirectWrite::Part`] with the rest handed to
    /// the I/O thread, which writes it before anything else; `None` when the message must go
    /// through the pipe: the I/O thread owns the connection (it has something
    /// to send, or no connection is open), `writer`'s reader has not read everything, the
    /// message is too large, or nothing could be written (the peer's window is full — the pipe
    /// and its high-water mark take over —, or the connection is ending).
    pub fn try_write(&mut self, writer: &PipeWriter<Msg>, parts: &[&[u8]]) -> Option<DirectWrite> {
        let wire_len: usize = parts.iter().map(|p| header_len(p.len()) + p.len()).sum();
        if wire_len > DIRECT_MAX || parts.is_empty() {
            return None;
        }
        let turn = self.handover.app_claim()?;
        // The claim synchronised with the I/O thread's release, which it made only after
        // reading the pipe to its end: a message written since is still there.
        if !writer.reader_drained() {
            turn.finish();
            return None;
        }
        let Some(fd) = turn.conn().map(|c| c.as_raw_fd()) else {
            turn.finish();
            return None;
        };
        self.buf.clear();
        let last = parts.len() - 1;
        for (i, p) in parts.iter().enumerate() {
            let flags = if i < last { FLAG_MORE } else { 0 };
            put_header(&mut self.buf, flags, p.len());
            self.buf.extend_from_slice(p);
        }
        // SAFETY: `fd` stays open for the turn (the hand-over's slot holds it); the buffer is
        // `buf.len()` initialised bytes. MSG_NOSIGNAL: a closed peer gives EPIPE, not SIGPIPE.
        let n = unsafe {
            libc::send(
                fd,
                self.buf.as_ptr().cast(),
                self.buf.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
            )
        };
        if n <= 0 {
            // Nothing went (EAGAIN: the peer reads slowly; or the connection is ending): the
            // message goes through the pipe, where the high-water mark applies.
            turn.finish();
            return None;
        }
        let n = n as usize;
        if n < self.buf.len() {
            turn.hand_over(bytes::Bytes::copy_from_slice(&self.buf[n..]));
            Some(DirectWrite::Part)
        } else {
            turn.finish();
            Some(DirectWrite::Whole)
        }
    }

    /// [`Direct::try_write`], counted in `stats` (as sent, and as sent directly); whether the
    /// message went.
    pub fn try_write_counted(
        &mut self,
        writer: &PipeWriter<Msg>,
        parts: &[&[u8]],
        stats: &mut super::Stats,
    ) -> bool {
        match self.try_write(writer, parts) {
            Some(w) => {
                stats.sent += 1;
                stats.sent_direct += 1;
                if w == DirectWrite::Part {
                    stats.sent_direct_partial += 1;
                }
                true
            }
            None => false,
        }
    }
}
