//! The ZMTP frame decoder: an incremental parser over any sequence of input
//! buffers. [`FrameDecoder::decode_slice`] hands out a body that lies whole in
//! the input as a borrowed slice (the caller copies what it keeps, so nothing
//! holds on to the input buffer) and assembles, copying, a body split across
//! inputs; [`FrameDecoder::decode`] is the same over `Bytes`, with zero-copy
//! slices of the input. A split body of at most
//! [`MAX_POOLED`](zeroring_engine::body_pool::MAX_POOLED) bytes is assembled straight into a
//! pooled block of its size ([`BodyBuf`]), which the message part then keeps: one copy, into
//! memory the pool keeps warm. A larger one is assembled in the decoder's buffer, which the
//! body shares.
//!
//! Owns: the flags/size/body framing of RFC 23/37 and its limits. Must never:
//! panic on peer input, or hold more for a frame than [`ASSEMBLY_CHUNK`] bytes ahead of the
//! bytes actually received (a declared size is checked against the limit before anything is
//! reserved; a pooled block is at most `MAX_POOLED`, the same bound, and taken only once the
//! body's first bytes arrive; a larger body grows with the data that arrives).

use bytes::{Buf, Bytes, BytesMut};
use zeroring_engine::body_pool::{BodyBuf, PooledBody};

use super::error::FrameError;

/// Flag bit: more frames follow in this message.
pub const FLAG_MORE: u8 = 0x01;
/// Flag bit: the size is 8 bytes (big-endian) instead of 1.
pub const FLAG_LONG: u8 = 0x02;
/// Flag bit: this frame is a command.
pub const FLAG_COMMAND: u8 = 0x04;
/// Bits that must be zero.
pub const FLAGS_RESERVED: u8 = 0xF8;

/// The length of the header of a frame with a `size`-byte body: 2, or 9 when the size needs
/// the 8-byte (LONG) form.
#[inline]
pub const fn header_len(size: usize) -> usize {
    if size > u8::MAX as usize {
        9
    } else {
        2
    }
}

/// Writes a frame header (`flags`, LONG added when `size` needs the 8-byte form) to `buf`;
/// returns its length ([`header_len`]). The one place the header's layout is written: the
/// encoder and the send fast path's direct writes both call it.
#[inline]
pub fn put_header(buf: &mut impl bytes::BufMut, flags: u8, size: usize) -> usize {
    if header_len(size) == 9 {
        buf.put_u8(flags | FLAG_LONG);
        buf.put_u64(size as u64);
    } else {
        buf.put_u8(flags);
        buf.put_u8(size as u8);
    }
    header_len(size)
}

/// One decoded frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    /// More frames of this message follow.
    pub more: bool,
    /// This is a command frame.
    pub command: bool,
    /// The frame body.
    pub body: Bytes,
}

/// The body of a frame from [`FrameDecoder::decode_slice`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FrameBody<'i> {
    /// The body lay whole in the input: a slice of it.
    Borrowed(&'i [u8]),
    /// The body was split across inputs and assembled into an allocation of its own.
    Assembled(Bytes),
    /// The body was split across inputs and assembled into a pooled block.
    Pooled(PooledBody),
}

impl FrameBody<'_> {
    /// The body's bytes.
    pub fn as_slice(&self) -> &[u8] {
        match self {
            FrameBody::Borrowed(b) => b,
            FrameBody::Assembled(b) => b,
            FrameBody::Pooled(p) => p.as_slice(),
        }
    }

    /// The body as `Bytes` of its own (a borrowed body is copied).
    pub fn into_owned(self) -> Bytes {
        match self {
            FrameBody::Borrowed(b) => Bytes::copy_from_slice(b),
            FrameBody::Assembled(b) => b,
            FrameBody::Pooled(p) => Bytes::from_owner(p),
        }
    }
}

/// One decoded frame whose body may borrow the decoder's input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FrameRef<'i> {
    /// More frames of this message follow.
    pub more: bool,
    /// This is a command frame.
    pub command: bool,
    /// The frame body.
    pub body: FrameBody<'i>,
}

impl<'i> FrameRef<'i> {
    fn new(flags: u8, body: FrameBody<'i>) -> Self {
        FrameRef {
            more: flags & FLAG_MORE != 0,
            command: flags & FLAG_COMMAND != 0,
            body,
        }
    }

    /// The frame with a body of its own (a borrowed body is copied).
    pub fn into_owned(self) -> Frame {
        Frame {
            more: self.more,
            command: self.command,
            body: self.body.into_owned(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Waiting for a flags byte.
    Flags,
    /// Collecting the size field (`need` is 1 or 8 bytes).
    Size { flags: u8, need: usize },
    /// Collecting a body of `size` bytes.
    Body { flags: u8, size: usize },
}

/// Incremental ZMTP 2.0/3.x frame decoder.
#[derive(Debug)]
pub struct FrameDecoder {
    state: State,
    size_buf: [u8; 8],
    size_have: usize,
    /// Body (larger than the pools serve) being assembled across input buffers.
    partial: BytesMut,
    /// Body (that the pools serve) being assembled across input buffers.
    pooled: Option<BodyBuf>,
    /// That body is lent to a receive ([`FrameDecoder::lend_body`]): no input until it is
    /// back.
    lent: bool,
    /// Largest accepted frame body, `None` for unlimited.
    limit: Option<u64>,
}

/// Assembly reserves at most this much ahead of the data that has arrived.
pub const ASSEMBLY_CHUNK: usize = 64 * 1024;

// A pooled assembly block is bounded like the decoder's own buffer.
const _: () = assert!(zeroring_engine::body_pool::MAX_POOLED <= ASSEMBLY_CHUNK);

impl FrameDecoder {
    /// A decoder accepting bodies up to `limit` bytes (`None`: unlimited).
    pub fn new(limit: Option<u64>) -> Self {
        FrameDecoder {
            state: State::Flags,
            size_buf: [0; 8],
            size_have: 0,
            partial: BytesMut::new(),
            pooled: None,
            lent: false,
            limit,
        }
    }

    /// A decoder with libzmq's MAXMSGSIZE convention (-1 or any negative: unlimited).
    pub fn with_max_msg_size(max_msg_size: i64) -> Self {
        Self::new(u64::try_from(max_msg_size).ok())
    }

    /// Changes the body limit (applies from the next frame header).
    pub fn set_limit(&mut self, limit: Option<u64>) {
        self.limit = limit;
    }

    /// The current body limit.
    pub fn limit(&self) -> Option<u64> {
        self.limit
    }

    /// Whether the decoder is between frames.
    pub fn is_idle(&self) -> bool {
        self.state == State::Flags
    }

    /// Call at end of stream: an error if the stream ended inside a frame.
    pub fn finish(&self) -> Result<(), FrameError> {
        if self.is_idle() {
            Ok(())
        } else {
            Err(FrameError::Truncated)
        }
    }

    /// Decodes the next frame from the front of `input`, consuming what it uses.
    /// `Ok(None)` means `input` is exhausted without completing a frame (the
    /// partial state is kept; feed the next buffer). After an error the decoder
    /// must not be used again. Bodies that lie whole in `input` are zero-copy
    /// slices of it.
    pub fn decode(&mut self, input: &mut Bytes) -> Result<Option<Frame>, FrameError> {
        let mut rest: &[u8] = input;
        let decoded = self.decode_slice(&mut rest);
        let consumed = input.len() - rest.len();
        let frame = match decoded {
            Ok(Some(f)) => f,
            Ok(None) => {
                input.advance(consumed);
                return Ok(None);
            }
            Err(e) => {
                input.advance(consumed);
                return Err(e);
            }
        };
        let (more, command) = (frame.more, frame.command);
        let body = match frame.body {
            FrameBody::Borrowed(b) => {
                // `b` ends where the consumed prefix ends: slice it out without a copy.
                input.slice(consumed - b.len()..consumed)
            }
            FrameBody::Assembled(b) => b,
            FrameBody::Pooled(p) => Bytes::from_owner(p),
        };
        input.advance(consumed);
        Ok(Some(Frame {
            more,
            command,
            body,
        }))
    }

    /// Whether [`FrameDecoder::lend_body`] would lend now.
    pub fn lendable(&self, min: usize) -> bool {
        !self.lent
            && matches!(self.state, State::Body { .. })
            && self
                .pooled
                .as_ref()
                .is_some_and(|b| b.remaining() >= min.max(1))
    }

    /// Lends the body being assembled, when it is a pooled one with at least `min` bytes
    /// still to come, so that a receive fills the rest of it where the part keeps it (no
    /// receive buffer, no copy). Until [`FrameDecoder::return_body`] gives it back, input is
    /// refused ([`FrameError::InputWhileLent`]).
    pub fn lend_body(&mut self, min: usize) -> Option<BodyBuf> {
        if !self.lendable(min) {
            return None;
        }
        self.lent = true;
        self.pooled.take()
    }

    /// Takes back the body lent by [`FrameDecoder::lend_body`], with what the receive wrote:
    /// the frame when it is whole, else `None` and decoding goes on with the next input. A
    /// buffer returned with nothing lent is dropped.
    pub fn return_body(&mut self, buf: BodyBuf) -> Option<FrameRef<'static>> {
        if !std::mem::replace(&mut self.lent, false) {
            return None;
        }
        let State::Body { flags, .. } = self.state else {
            return None;
        };
        if buf.remaining() > 0 {
            self.pooled = Some(buf);
            return None;
        }
        self.state = State::Flags;
        Some(FrameRef::new(flags, FrameBody::Pooled(buf.freeze())))
    }

    /// A whole short *data* frame (flags 0 or MORE, a one-byte size, the body all in
    /// `input`, within the limit) at the front of `input`, between frames: its MORE flag and
    /// body, `input` advanced past it. `None` (nothing consumed) for anything else, which
    /// [`FrameDecoder::decode_slice`] then takes. The receive loop's fast path for small
    /// messages: no `FrameRef` built, nothing returned through memory.
    #[inline(always)]
    pub fn short_data_frame<'i>(&mut self, input: &mut &'i [u8]) -> Option<(bool, &'i [u8])> {
        if self.state != State::Flags {
            return None;
        }
        let cur: &'i [u8] = input;
        let [flags, size, rest @ ..] = cur else {
            return None;
        };
        let size = usize::from(*size);
        if *flags & !FLAG_MORE != 0
            || rest.len() < size
            || self.limit.is_some_and(|l| size as u64 > l)
        {
            return None;
        }
        let (body, rest) = rest.split_at(size);
        *input = rest;
        Some((*flags & FLAG_MORE != 0, body))
    }

    /// [`FrameDecoder::short_data_frame`] for a single-part frame only (flags 0): its body,
    /// `input` advanced past it; `None` (nothing consumed) for anything else, a frame with
    /// MORE included.
    #[inline(always)]
    pub fn short_single_frame<'i>(&mut self, input: &mut &'i [u8]) -> Option<&'i [u8]> {
        if self.state != State::Flags {
            return None;
        }
        let cur: &'i [u8] = input;
        let [0, size, rest @ ..] = cur else {
            return None;
        };
        let size = usize::from(*size);
        if rest.len() < size || self.limit.is_some_and(|l| size as u64 > l) {
            return None;
        }
        let (body, rest) = rest.split_at(size);
        *input = rest;
        Some(body)
    }

    /// [`FrameDecoder::decode`] over a borrowed slice, which it advances past what it uses.
    /// A body that lies whole in `input` comes back borrowed from it; the caller copies what
    /// it keeps, so no allocation or reference outlives `input`'s buffer.
    pub fn decode_slice<'i>(
        &mut self,
        input: &mut &'i [u8],
    ) -> Result<Option<FrameRef<'i>>, FrameError> {
        // Fast path: a whole short frame at the front of the input, between frames (the
        // common case for small messages); everything else takes the state machine below.
        if self.state == State::Flags {
            let cur: &'i [u8] = input;
            if let [flags, size, rest @ ..] = cur {
                let (flags, size) = (*flags, usize::from(*size));
                if flags & !(FLAG_MORE | FLAG_COMMAND) == 0
                    && flags != FLAG_MORE | FLAG_COMMAND
                    && rest.len() >= size
                    && self.limit.is_none_or(|l| size as u64 <= l)
                {
                    let (body, rest) = rest.split_at(size);
                    *input = rest;
                    return Ok(Some(FrameRef::new(flags, FrameBody::Borrowed(body))));
                }
            }
        }
        loop {
            match self.state {
                State::Flags => {
                    let Some((&flags, rest)) = input.split_first() else {
                        return Ok(None);
                    };
                    *input = rest;
                    if flags & FLAGS_RESERVED != 0 {
                        return Err(FrameError::ReservedFlags { flags });
                    }
                    if flags & FLAG_COMMAND != 0 && flags & FLAG_MORE != 0 {
                        return Err(FrameError::CommandWithMore);
                    }
                    let need = if flags & FLAG_LONG != 0 { 8 } else { 1 };
                    self.size_have = 0;
                    self.state = State::Size { flags, need };
                }
                State::Size { flags, need } => {
                    if self.size_have == 0 && input.len() >= need {
                        // Fast path: the whole size field is here.
                        let size = if need == 1 {
                            u64::from(input.get_u8())
                        } else {
                            input.get_u64()
                        };
                        self.start_body(flags, size)?;
                        continue;
                    }
                    let want = need - self.size_have;
                    let take = want.min(input.len());
                    if take == 0 {
                        return Ok(None);
                    }
                    let (dst, src) = (
                        self.size_buf.get_mut(self.size_have..self.size_have + take),
                        input.get(..take),
                    );
                    if let (Some(dst), Some(src)) = (dst, src) {
                        dst.copy_from_slice(src);
                    }
                    input.advance(take);
                    self.size_have += take;
                    if self.size_have < need {
                        return Ok(None);
                    }
                    let size = if need == 1 {
                        u64::from(self.size_buf[0])
                    } else {
                        u64::from_be_bytes(self.size_buf)
                    };
                    self.start_body(flags, size)?;
                }
                State::Body { flags, size } => {
                    if self.lent {
                        return if input.is_empty() {
                            Ok(None)
                        } else {
                            Err(FrameError::InputWhileLent)
                        };
                    }
                    let starting = self.partial.is_empty() && self.pooled.is_none();
                    if starting && input.len() >= size {
                        // The whole body is in this buffer.
                        let (body, rest) = input.split_at(size);
                        *input = rest;
                        self.state = State::Flags;
                        return Ok(Some(FrameRef::new(flags, FrameBody::Borrowed(body))));
                    }
                    if input.is_empty() {
                        return Ok(None);
                    }
                    if starting {
                        // `None` past MAX_POOLED (or on a thread that is ending): the
                        // decoder's own buffer then.
                        self.pooled = BodyBuf::with_len(size);
                    }
                    if let Some(buf) = self.pooled.as_mut() {
                        let n = buf.extend_from_slice(input);
                        input.advance(n);
                        if buf.remaining() > 0 {
                            return Ok(None);
                        }
                        let Some(buf) = self.pooled.take() else {
                            return Ok(None);
                        };
                        self.state = State::Flags;
                        return Ok(Some(FrameRef::new(flags, FrameBody::Pooled(buf.freeze()))));
                    }
                    let missing = size - self.partial.len();
                    let take = missing.min(input.len());
                    if take == 0 {
                        return Ok(None);
                    }
                    // Grow with the data that arrives, never by the declared size alone.
                    if self.partial.capacity() - self.partial.len() < take {
                        self.partial.reserve(take.max(missing.min(ASSEMBLY_CHUNK)));
                    }
                    let (chunk, rest) = input.split_at(take);
                    self.partial.extend_from_slice(chunk);
                    *input = rest;
                    if self.partial.len() < size {
                        return Ok(None);
                    }
                    let body = self.partial.split().freeze();
                    self.state = State::Flags;
                    return Ok(Some(FrameRef::new(flags, FrameBody::Assembled(body))));
                }
            }
        }
    }

    fn start_body(&mut self, flags: u8, size: u64) -> Result<(), FrameError> {
        if let Some(limit) = self.limit {
            if size > limit {
                return Err(FrameError::TooLarge { size, limit });
            }
        }
        // Sizes beyond isize::MAX can never be held in memory.
        let size = usize::try_from(size)
            .ok()
            .filter(|&s| isize::try_from(s).is_ok())
            .ok_or(FrameError::TooLarge {
                size,
                limit: isize::MAX as u64,
            })?;
        self.state = State::Body { flags, size };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zmtp::encoder::Encoder;
    use proptest::prelude::*;

    fn decode_all(dec: &mut FrameDecoder, chunks: &[Bytes]) -> Result<Vec<Frame>, FrameError> {
        let mut out = Vec::new();
        for c in chunks {
            let mut c = c.clone();
            while let Some(f) = dec.decode(&mut c)? {
                out.push(f);
            }
            assert!(c.is_empty());
        }
        Ok(out)
    }

    #[test]
    fn decode_slice_borrows_whole_bodies_and_assembles_split_ones() {
        let mut wire = vec![
            0x01, 3, b'a', b'b', b'c', 0x04, 5, 4, b'P', b'I', b'N', b'G',
        ];
        wire.extend_from_slice(&[0x00, 6, b'x', b'y']);
        let mut dec = FrameDecoder::new(None);
        let mut input: &[u8] = &wire;
        let a = dec.decode_slice(&mut input).unwrap().unwrap();
        assert!(a.more && !a.command && a.body == FrameBody::Borrowed(b"abc"));
        let b = dec.decode_slice(&mut input).unwrap().unwrap();
        assert!(b.command && b.body.as_slice() == b"\x04PING");
        assert_eq!(dec.decode_slice(&mut input), Ok(None));
        assert!(input.is_empty());
        let mut input: &[u8] = b"zzzw!";
        let c = dec.decode_slice(&mut input).unwrap().unwrap();
        assert!(matches!(&c.body, FrameBody::Pooled(b) if b.as_slice() == b"xyzzzw"));
        assert_eq!(input, b"!");
    }

    /// A pooled body under way is lent only with at least `min` bytes to come; while it is
    /// out, input is refused; back partial, decoding goes on where it stopped; back whole, it
    /// is the frame.
    #[test]
    fn a_lent_body_comes_back_partial_or_whole_and_input_waits_for_it() {
        let body: Vec<u8> = (0..30_000u32).map(|i| (i % 253) as u8).collect();
        let mut wire = vec![0x03];
        wire.extend_from_slice(&(body.len() as u64).to_be_bytes());
        wire.extend_from_slice(&body[..1000]);
        let mut dec = FrameDecoder::new(None);
        let mut input: &[u8] = &wire;
        assert_eq!(dec.decode_slice(&mut input), Ok(None));
        assert!(!dec.lendable(29_001), "29,000 bytes to come, not more");
        assert!(dec.lend_body(29_001).is_none());
        let mut buf = dec.lend_body(16 * 1024).expect("lendable");
        assert!(!dec.lendable(1), "lent once");
        let mut more: &[u8] = &body[1000..2000];
        assert_eq!(
            dec.decode_slice(&mut more),
            Err(FrameError::InputWhileLent),
            "no input while the body is out"
        );
        // Back with part of the rest: decoding goes on from there.
        assert_eq!(buf.extend_from_slice(&body[1000..10_000]), 9000);
        assert!(dec.return_body(buf).is_none());
        let mut buf = dec.lend_body(1).expect("lendable again");
        assert_eq!(buf.extend_from_slice(&body[10_000..]), 20_000);
        let frame = dec.return_body(buf).expect("whole: the frame");
        assert!(frame.more && !frame.command);
        assert_eq!(frame.body.as_slice(), &body[..]);
        assert!(dec.is_idle());
        // A frame after it decodes as usual; nothing is lent between frames.
        let mut next: &[u8] = &[0x00, 2, b'o', b'k'];
        let f = dec.decode_slice(&mut next).unwrap().unwrap();
        assert_eq!(f.body.as_slice(), b"ok");
        assert!(dec.lend_body(1).is_none());
        // A body past the pools' largest class is never lent (it is not in a pooled block).
        let mut big = vec![0x02];
        big.extend_from_slice(&(200_000u64).to_be_bytes());
        big.extend_from_slice(&[1; 100]);
        let mut input: &[u8] = &big;
        assert_eq!(dec.decode_slice(&mut input), Ok(None));
        assert!(dec.lend_body(1).is_none());
    }

    /// A split body up to MAX_POOLED goes into a pooled block, taken only once its first
    /// bytes arrive; a larger one into the decoder's buffer, grown with the data.
    #[test]
    fn split_bodies_assemble_pooled_up_to_the_pools_limit_and_in_the_buffer_past_it() {
        use zeroring_engine::body_pool::MAX_POOLED;
        for size in [40usize, 2000, MAX_POOLED, MAX_POOLED + 1] {
            let body: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
            let mut wire = vec![0x02];
            wire.extend_from_slice(&(size as u64).to_be_bytes());
            let mut dec = FrameDecoder::new(None);
            let mut input: &[u8] = &wire;
            assert_eq!(dec.decode_slice(&mut input), Ok(None));
            assert!(
                dec.pooled.is_none(),
                "nothing taken before the body's first byte"
            );
            let mut got = None;
            let (first, rest) = body.split_at(1);
            for chunk in std::iter::once(first).chain(rest.chunks(16 * 1024 - 3)) {
                let mut input: &[u8] = chunk;
                if let Some(f) = dec.decode_slice(&mut input).unwrap() {
                    got = Some(f);
                }
                assert!(input.is_empty());
            }
            let f = got.expect("the frame completes with its last byte");
            assert_eq!(f.body.as_slice(), &body[..]);
            if size <= MAX_POOLED {
                assert!(matches!(f.body, FrameBody::Pooled(_)), "{size}");
            } else {
                assert!(matches!(f.body, FrameBody::Assembled(_)), "{size}");
            }
            assert!(dec.is_idle() && dec.pooled.is_none());
        }
    }

    #[test]
    fn short_and_long_frames() {
        let mut wire = vec![0x01, 3, b'a', b'b', b'c', 0x02];
        wire.extend_from_slice(&300u64.to_be_bytes());
        wire.extend(std::iter::repeat_n(7u8, 300));
        wire.extend_from_slice(&[0x04, 5, 4, b'P', b'I', b'N', b'G']);
        let mut dec = FrameDecoder::new(None);
        let frames = decode_all(&mut dec, &[Bytes::from(wire)]).unwrap();
        assert_eq!(frames.len(), 3);
        assert!(frames[0].more && !frames[0].command);
        assert_eq!(&frames[0].body[..], b"abc");
        assert_eq!(frames[1].body.len(), 300);
        assert!(frames[2].command);
        assert!(dec.is_idle());
    }

    #[test]
    fn body_is_a_zero_copy_slice() {
        let input = Bytes::from(vec![0x00, 4, 1, 2, 3, 4]);
        let base = input.as_ptr() as usize;
        let mut c = input.clone();
        let f = FrameDecoder::new(None).decode(&mut c).unwrap().unwrap();
        assert_eq!(f.body.as_ptr() as usize, base + 2);
    }

    #[test]
    fn errors() {
        let mut dec = FrameDecoder::new(None);
        assert_eq!(
            dec.decode(&mut Bytes::from_static(&[0x08, 0])),
            Err(FrameError::ReservedFlags { flags: 0x08 })
        );
        let mut dec = FrameDecoder::new(None);
        assert_eq!(
            dec.decode(&mut Bytes::from_static(&[0x05, 0])),
            Err(FrameError::CommandWithMore)
        );
        let mut dec = FrameDecoder::new(Some(10));
        assert_eq!(
            dec.decode(&mut Bytes::from_static(&[0x00, 11])),
            Err(FrameError::TooLarge {
                size: 11,
                limit: 10
            })
        );
        // An absurd declared size with no limit is refused, not allocated.
        let mut dec = FrameDecoder::new(None);
        let mut huge = vec![0x02];
        huge.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(matches!(
            dec.decode(&mut Bytes::from(huge)),
            Err(FrameError::TooLarge { .. })
        ));
        // A large but legal declared size allocates only what arrives.
        let mut dec = FrameDecoder::new(None);
        let mut big = vec![0x02];
        big.extend_from_slice(&(1u64 << 40).to_be_bytes());
        big.extend_from_slice(&[1, 2, 3]);
        assert_eq!(dec.decode(&mut Bytes::from(big)), Ok(None));
        assert!(dec.partial.capacity() <= ASSEMBLY_CHUNK);
        assert_eq!(dec.finish(), Err(FrameError::Truncated));
    }

    fn arb_frames() -> impl Strategy<Value = Vec<(bool, bool, Vec<u8>)>> {
        proptest::collection::vec(
            (
                any::<bool>(),
                any::<bool>(),
                prop_oneof![
                    proptest::collection::vec(any::<u8>(), 0..20),
                    proptest::collection::vec(any::<u8>(), 250..600),
                ],
            ),
            0..8,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|(more, command, body)| (more && !command, command, body))
                .collect()
        })
    }

    proptest! {
        #[test]
        fn encode_decode_round_trip_any_split(frames in arb_frames(), splits in proptest::collection::vec(any::<prop::sample::Index>(), 0..6), threshold in 0usize..400) {
            let mut enc = Encoder::new(threshold);
            for (more, command, body) in &frames {
                enc.frame(*more, *command, &Bytes::from(body.clone()));
            }
            let mut wire = Vec::new();
            while let Some(c) = enc.next_chunk() {
                wire.extend_from_slice(&c);
            }
            let mut cuts: Vec<usize> = splits.iter().map(|i| i.index(wire.len() + 1)).collect();
            cuts.sort_unstable();
            let mut chunks = Vec::new();
            let mut prev = 0;
            for c in cuts {
                chunks.push(Bytes::copy_from_slice(&wire[prev..c]));
                prev = c;
            }
            chunks.push(Bytes::copy_from_slice(&wire[prev..]));
            let mut dec = FrameDecoder::new(None);
            let got = decode_all(&mut dec, &chunks).unwrap();
            prop_assert_eq!(got.len(), frames.len());
            for (g, (more, command, body)) in got.iter().zip(frames.iter()) {
                prop_assert_eq!(g.more, *more);
                prop_assert_eq!(g.command, *command);
                prop_assert_eq!(&g.body[..], &body[..]);
            }
            prop_assert!(dec.is_idle());
        }

        /// The receive loop's short-frame path (taken whenever it applies, `decode_slice`
        /// otherwise) gives exactly the frames and the error that `decode_slice` alone gives,
        /// on any bytes, any limit and any split of the input.
        #[test]
        fn short_frame_path_decodes_as_decode_slice(
            data in proptest::collection::vec(prop_oneof![Just(0u8), Just(1u8), Just(4u8), Just(2u8), any::<u8>()], 0..300),
            limit in proptest::option::of(0u64..300),
            cut in any::<prop::sample::Index>(),
        ) {
            type Out = (Vec<(bool, bool, Vec<u8>)>, Option<FrameError>);
            fn run(data: &[u8], limit: Option<u64>, cut: usize, short: bool) -> Out {
                let mut dec = FrameDecoder::new(limit);
                let mut frames = Vec::new();
                for chunk in [&data[..cut], &data[cut..]] {
                    let mut input: &[u8] = chunk;
                    while !input.is_empty() {
                        if short {
                            if let Some((more, body)) = dec.short_data_frame(&mut input) {
                                frames.push((more, false, body.to_vec()));
                                continue;
                            }
                        }
                        match dec.decode_slice(&mut input) {
                            Ok(Some(f)) => {
                                let body = match &f.body {
                                    FrameBody::Borrowed(b) => b.to_vec(),
                                    FrameBody::Assembled(b) => b.to_vec(),
                                    FrameBody::Pooled(b) => b.as_slice().to_vec(),
                                };
                                frames.push((f.more, f.command, body));
                            }
                            Ok(None) => break,
                            Err(e) => return (frames, Some(e)),
                        }
                    }
                }
                (frames, None)
            }
            let cut = cut.index(data.len() + 1);
            prop_assert_eq!(run(&data, limit, cut, true), run(&data, limit, cut, false));
        }

        #[test]
        fn garbage_never_panics(data in proptest::collection::vec(any::<u8>(), 0..200), limit in proptest::option::of(0u64..300)) {
            let mut dec = FrameDecoder::new(limit);
            let mut input = Bytes::from(data);
            while let Ok(Some(f)) = dec.decode(&mut input) {
                if let Some(l) = limit {
                    prop_assert!(f.body.len() as u64 <= l);
                }
            }
        }
    }
}
