//! `Msg`: one message part, the unit every layer of zeroring passes around.
//!
//! A `Msg` holds its body either **inline** (bodies of at most [`Msg::INLINE_CAP`] bytes live in
//! the `Msg` itself: no allocation, no refcount, nothing shared between threads), in a
//! refcounted block recycled through its thread's [`body_pool`](crate::body_pool) (copies of
//! up to [`MAX_POOLED`](crate::body_pool::MAX_POOLED) bytes, and bodies the decoder assembled),
//! or as refcounted [`Bytes`] (larger copies, and bodies the caller hands over). Cloning shares the body by its
//! reference count, which is what PUB fan-out needs. It also carries a MORE
//! flag, a few flag bits reserved for the layers above, and optional shared metadata (connection
//! properties such as Peer-Address).
//!
//! A received `Msg` never borrows an I/O thread's receive buffer ([`crate::bufpool`]): the
//! stream copies small bodies inline and gives larger ones their own allocation, so a message
//! left unread in a pipe holds only its own bytes.
//!
//! It must stay within 64 bytes and 8-byte alignment: the future C ABI stores a `Msg` by value
//! inside a caller's `zmq_msg_t`.

use std::fmt;
use std::sync::Arc;

use bytes::Bytes;

use crate::body_pool::PooledBody;
use crate::send_buf::SendBuf;

pub use crate::msg_metadata::MsgMetadata;

/// How a copied body is written, by when its next reader takes it ([`Msg::write_copied`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CopyHint {
    /// Through the cache: the reader may take it at once (another thread, inproc).
    Cached,
    /// Past the cache when it is large ([`crate::stream_copy`]): the reader is the kernel,
    /// after the queue ahead of the part in a connection's send pipe.
    Streamed,
}

/// Where a part's bytes live.
#[derive(Clone)]
enum Body {
    /// `len` bytes at the front of `buf`.
    Inline {
        len: u8,
        buf: [u8; Msg::INLINE_CAP],
    },
    Shared(Bytes),
    /// A mid-size copy in a recycled block ([`crate::body_pool`]).
    Pooled(PooledBody),
}

impl Body {
    /// A copy of `data`: inline when it fits. (The same as [`Msg::copy_from_slice`]'s body,
    /// which is kept apart: the decoder's calls measured cheaper with it as it is.)
    #[inline(always)]
    fn copied(data: &[u8]) -> Body {
        match u8::try_from(data.len()) {
            Ok(len) if data.len() <= Msg::INLINE_CAP => {
                let mut buf = [0; Msg::INLINE_CAP];
                copy_small(&mut buf, data);
                Body::Inline { len, buf }
            }
            // Out of line: keeps the inline case small enough to build in place.
            _ => Body::shared_copy(data),
        }
    }

    /// A copy of `data` in an allocation of its own: a recycled block up to
    /// [`MAX_POOLED`](crate::body_pool::MAX_POOLED) bytes (a part is usually freed on another thread than the
    /// one that made it, which the global allocator serves slowly), else `Bytes`.
    #[inline(never)]
    fn shared_copy(data: &[u8]) -> Body {
        match PooledBody::copy_with(data, false) {
            Some(p) => Body::Pooled(p),
            None => Body::Shared(Bytes::copy_from_slice(data)),
        }
    }

    /// A copy of `data` out of line, written as `how` says: streamed when it is at least
    /// [`STREAM_MIN`](crate::stream_copy::STREAM_MIN) bytes and `how` is
    /// [`CopyHint::Streamed`], else [`Body::shared_copy`]. The length is tested first, so a
    /// small body never looks at the hint.
    #[inline(always)]
    fn out_of_line(data: &[u8], how: CopyHint) -> Body {
        if data.len() >= crate::stream_copy::STREAM_MIN && how == CopyHint::Streamed {
            Body::streamed_copy(data)
        } else {
            Body::shared_copy(data)
        }
    }

    /// [`Body::shared_copy`] of a body of at least [`STREAM_MIN`](crate::stream_copy::STREAM_MIN)
    /// bytes for [`CopyHint::Streamed`].
    #[inline(never)]
    #[cold]
    fn streamed_copy(data: &[u8]) -> Body {
        match PooledBody::copy_with(data, true) {
            Some(p) => Body::Pooled(p),
            None => Body::Shared(Bytes::copy_from_slice(data)),
        }
    }

    #[inline]
    fn as_slice(&self) -> &[u8] {
        match self {
            // `len <= INLINE_CAP` is the constructor's invariant; `get` keeps this panic-free.
            Body::Inline { len, buf } => buf.get(..usize::from(*len)).unwrap_or_default(),
            Body::Shared(b) => b,
            Body::Pooled(p) => p.as_slice(),
        }
    }
}

impl Default for Body {
    fn default() -> Self {
        Body::Inline {
            len: 0,
            buf: [0; Msg::INLINE_CAP],
        }
    }
}

/// Copies `src` (at most `INLINE_CAP` bytes) to the front of `dst` with at most two
/// fixed-size, possibly overlapping moves, instead of a call to `memcpy` for a few bytes.
#[inline(always)]
fn copy_small(dst: &mut [u8; Msg::INLINE_CAP], src: &[u8]) {
    #[inline(always)]
    fn two<const K: usize>(dst: &mut [u8; Msg::INLINE_CAP], src: &[u8]) {
        let n = src.len();
        if let (Some(d), Some(s)) = (dst.get_mut(..K), src.get(..K)) {
            d.copy_from_slice(s);
        }
        if let (Some(d), Some(s)) = (dst.get_mut(n - K..n), src.get(n - K..)) {
            d.copy_from_slice(s);
        }
    }
    match src.len() {
        0 => {}
        1..=3 => {
            let n = src.len();
            dst[0] = src[0];
            dst[n / 2] = src[n / 2];
            dst[n - 1] = src[n - 1];
        }
        4..=7 => two::<4>(dst, src),
        8..=15 => two::<8>(dst, src),
        16..=31 => two::<16>(dst, src),
        32..=Msg::INLINE_CAP => two::<32>(dst, src),
        _ => dst[..src.len()].copy_from_slice(src),
    }
}

/// A [`Body`] in 8-byte words ([`Msg::swap_contents`] swaps it as such).
const BODY_WORDS: usize = 5;
const _: () = assert!(std::mem::size_of::<Body>() == BODY_WORDS * 8);
const _: () = assert!(std::mem::align_of::<Body>() == 8);

/// One message part.
#[derive(Clone, Default)]
pub struct Msg {
    body: Body,
    metadata: Option<Arc<MsgMetadata>>,
    flags: u8,
}

// The C ABI keeps a Msg inside a 64-byte, 8-aligned zmq_msg_t; pipes move Msgs by value, so
// the inline capacity is chosen to keep it at 56 bytes.
const _: () = assert!(std::mem::size_of::<Msg>() <= 56);
const _: () = assert!(Msg::INLINE_CAP <= u8::MAX as usize);
const _: () = assert!(std::mem::align_of::<Msg>() <= 8);

impl Msg {
    /// Bodies up to this many bytes are stored inside the `Msg` (libzmq's "very small message"
    /// is 33 bytes; this is what the 56-byte `Msg` has room for).
    pub const INLINE_CAP: usize = 38;

    /// More parts of the same message follow this one.
    pub const MORE: u8 = 0x01;
    /// Flag bits the engine never interprets; layers above give them meaning
    /// (e.g. "this part is a ZMTP command").
    pub const USER_MASK: u8 = 0xF0;

    /// An empty part.
    pub fn new() -> Self {
        Self::default()
    }

    /// A part holding `data` (no copy when `data` is already `Bytes`).
    pub fn from_bytes(data: impl Into<Bytes>) -> Self {
        Msg {
            body: Body::Shared(data.into()),
            metadata: None,
            flags: 0,
        }
    }

    /// A part holding a copy of `data`: inline when it fits, else in an allocation of its own.
    pub fn copy_from_slice(data: &[u8]) -> Self {
        // The hint is a constant here: the streamed branch folds away.
        Self::copy_with_hint(data, CopyHint::Cached)
    }

    /// [`Msg::copy_from_slice`], with a body out of line written as `how` says (a body of at
    /// least [`STREAM_MIN`](crate::stream_copy::STREAM_MIN) bytes is streamed for
    /// [`CopyHint::Streamed`]). Inlined, so that a constant hint folds away.
    #[inline]
    pub fn copy_with_hint(data: &[u8], how: CopyHint) -> Self {
        let body = match u8::try_from(data.len()) {
            Ok(len) if data.len() <= Self::INLINE_CAP => {
                let mut buf = [0; Self::INLINE_CAP];
                copy_small(&mut buf, data);
                Body::Inline { len, buf }
            }
            _ => Body::out_of_line(data, how),
        };
        Msg {
            body,
            metadata: None,
            flags: 0,
        }
    }

    /// [`Msg::copy_from_slice`] with the MORE flag set as `more`, inlined: for a sender that
    /// builds the part in its final place (a pipe slot) rather than moving it there. (The
    /// decoder calls the outlined [`Msg::copy_from_slice`]: inlined there, it measured worse.)
    #[inline]
    pub fn copied(data: &[u8], more: bool) -> Self {
        Msg {
            body: Body::copied(data),
            metadata: None,
            flags: if more { Self::MORE } else { 0 },
        }
    }

    /// [`Msg::copied`] built in `slot` (a pipe's, see
    /// [`PipeWriter::write_in_place`](crate::pipe::PipeWriter::write_in_place)), which it
    /// returns: a small body is copied straight into the slot's inline buffer, so the 56-byte
    /// part is written once, where it stays, not built on the stack and moved. A body out of
    /// line is written as `how` says.
    #[inline(always)]
    pub fn write_copied<'s>(
        slot: &'s mut std::mem::MaybeUninit<Msg>,
        data: &[u8],
        more: bool,
        how: CopyHint,
    ) -> &'s mut Msg {
        let flags = if more { Self::MORE } else { 0 };
        match u8::try_from(data.len()) {
            Ok(len) if data.len() <= Self::INLINE_CAP => {
                let m = slot.write(Msg {
                    body: Body::Inline {
                        len,
                        buf: [0; Self::INLINE_CAP],
                    },
                    metadata: None,
                    flags,
                });
                if let Body::Inline { buf, .. } = &mut m.body {
                    copy_small(buf, data);
                }
                m
            }
            _ => slot.write(Msg {
                body: Body::out_of_line(data, how),
                metadata: None,
                flags,
            }),
        }
    }

    /// A part holding a pooled body (the decoder's assembled frame): inline instead when it
    /// fits, and the block goes back to its pool at once.
    pub fn from_pooled(body: PooledBody) -> Self {
        if body.len() <= Self::INLINE_CAP {
            return Self::copy_from_slice(body.as_slice());
        }
        Msg {
            body: Body::Pooled(body),
            metadata: None,
            flags: 0,
        }
    }

    /// A part of `len` zero bytes for the caller to fill (`zmq_msg_init_size`): inline, a
    /// pooled block, or an allocation of its own past [`MAX_POOLED`](crate::body_pool::MAX_POOLED);
    /// `None` when that allocation fails.
    pub fn zeroed(len: usize) -> Option<Self> {
        let body = if len <= Self::INLINE_CAP {
            Body::Inline {
                len: len as u8,
                buf: [0; Self::INLINE_CAP],
            }
        } else if let Some(p) = PooledBody::zeroed(len) {
            Body::Pooled(p)
        } else {
            let mut v = Vec::new();
            v.try_reserve_exact(len).ok()?;
            v.resize(len, 0);
            Body::Shared(Bytes::from(v))
        };
        Some(Msg {
            body,
            metadata: None,
            flags: 0,
        })
    }

    /// A part for `data` that never shares `data`'s buffer when the body is small: small
    /// bodies are copied inline, larger ones are taken as they are. For bytes that may be a
    /// slice of a larger buffer only when small (what the ZMTP decoder hands out).
    pub fn from_small_or_owned(data: Bytes) -> Self {
        if data.len() <= Self::INLINE_CAP {
            Self::copy_from_slice(&data)
        } else {
            Self::from_bytes(data)
        }
    }

    /// The part's bytes.
    #[inline]
    pub fn data(&self) -> &[u8] {
        self.body.as_slice()
    }

    /// The inline body's whole buffer and its length (the first `len` bytes are the body),
    /// `None` for a body in an allocation of its own. For copying a small body with one
    /// fixed-size move instead of a `memcpy` call of variable length.
    #[inline(always)]
    pub fn inline_buf(&self) -> Option<(&[u8; Self::INLINE_CAP], usize)> {
        match &self.body {
            Body::Inline { len, buf } => Some((buf, usize::from(*len))),
            Body::Shared(_) | Body::Pooled(_) => None,
        }
    }

    /// Whether the body is stored inline (no allocation of its own).
    #[inline]
    pub fn is_inline(&self) -> bool {
        matches!(self.body, Body::Inline { .. })
    }

    /// Whether the body may be shared with another part (`ZMQ_SHARED`): a clone holds the same
    /// bytes, or they are the caller's own (a static or borrowed buffer, which libzmq calls a
    /// constant message). An inline body never is; a fresh copy is not until cloned.
    pub fn is_shared(&self) -> bool {
        match &self.body {
            Body::Inline { .. } => false,
            Body::Pooled(p) => !p.is_unique(),
            Body::Shared(b) => !b.is_unique(),
        }
    }

    /// Consumes the part, giving back its bytes (an inline body is copied out, a pooled one is
    /// wrapped: prefer [`Msg::data`] where a slice will do).
    pub fn into_bytes(self) -> Bytes {
        match self.body {
            Body::Shared(b) => b,
            Body::Pooled(p) => Bytes::from_owner(p),
            Body::Inline { .. } => Bytes::copy_from_slice(self.body.as_slice()),
        }
    }

    /// Consumes the part, giving back its body as a buffer to send: shared `Bytes` or the
    /// pooled block as they are (no allocation), an inline body copied (into the buffer itself
    /// where it fits).
    pub fn into_send_buf(self) -> SendBuf {
        match self.body {
            Body::Shared(b) => SendBuf::Shared(b),
            Body::Pooled(p) => SendBuf::Pooled(p),
            Body::Inline { .. } => {
                let data = self.body.as_slice();
                SendBuf::inline(data)
                    .unwrap_or_else(|| SendBuf::Shared(Bytes::copy_from_slice(data)))
            }
        }
    }

    /// The body as a buffer to send, without copying its bytes and without allocating: the
    /// `Bytes` or the pooled block shared by a clone — for an encoder that queues a large
    /// body instead of copying it. `None` for an inline body, which is copied instead.
    #[inline]
    pub fn share_buf(&self) -> Option<SendBuf> {
        match &self.body {
            Body::Shared(b) => Some(SendBuf::Shared(b.clone())),
            Body::Pooled(p) => Some(SendBuf::Pooled(p.clone())),
            Body::Inline { .. } => None,
        }
    }

    /// The body as `Bytes` when it is held as `Bytes` (given by the caller, or too large for
    /// the pools): shared by a clone, not copied. `None` for inline and pooled bodies (see
    /// [`Msg::share_buf`] for the latter).
    #[inline]
    pub fn shared_bytes(&self) -> Option<&Bytes> {
        match &self.body {
            Body::Shared(b) => Some(b),
            Body::Inline { .. } | Body::Pooled(_) => None,
        }
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        match &self.body {
            Body::Inline { len, .. } => usize::from(*len),
            Body::Shared(b) => b.len(),
            Body::Pooled(p) => p.len(),
        }
    }

    /// True for a zero-length part.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether more parts of the same message follow.
    pub fn more(&self) -> bool {
        self.flags & Self::MORE != 0
    }

    /// Sets or clears the MORE flag.
    pub fn set_more(&mut self, more: bool) {
        if more {
            self.flags |= Self::MORE;
        } else {
            self.flags &= !Self::MORE;
        }
    }

    /// Builder-style [`Msg::set_more`].
    pub fn with_more(mut self, more: bool) -> Self {
        self.set_more(more);
        self
    }

    /// All flag bits.
    pub fn flags(&self) -> u8 {
        self.flags
    }

    /// Replaces all flag bits.
    pub fn set_flags(&mut self, flags: u8) {
        self.flags = flags;
    }

    /// The connection properties attached to this part, if any.
    #[inline]
    pub fn metadata(&self) -> Option<&Arc<MsgMetadata>> {
        self.metadata.as_ref()
    }

    /// `zmq_msg_gets`: the value of the connection property `name` (compared
    /// case-insensitively) — `Socket-Type`, `Peer-Address`, `User-Id`, ZAP metadata and the
    /// peer's `X-` application properties. `None` when the part carries no such property (a
    /// part that came over inproc has none; like libzmq 4.3, the peer's routing id is not
    /// one).
    pub fn gets(&self, name: &str) -> Option<&[u8]> {
        self.metadata.as_deref()?.get(name).map(|b| &b[..])
    }

    /// Attaches connection properties.
    #[inline]
    pub fn set_metadata(&mut self, metadata: Option<Arc<MsgMetadata>>) {
        self.metadata = metadata;
    }

    /// Exchanges the body and flags of two parts; each keeps its connection properties. For a
    /// receiver reusing one part: the properties it carries usually are the ones the next
    /// part gets, and stay where they are.
    #[inline(always)]
    pub fn swap_contents(&mut self, other: &mut Msg) {
        // As `mem::swap` of the bodies, whose generic fallback (`typed_swap_nonoverlapping`,
        // and `ptr::swap_nonoverlapping`'s byte loop) the compiler left out of line in the
        // receive path, a call per message, depending on the build. Two reads and two writes
        // of the whole body are copies of a constant size, which it always inlines.
        type Words = std::mem::MaybeUninit<[u64; BODY_WORDS]>;
        let (a, b) = (
            (&mut self.body as *mut Body).cast::<Words>(),
            (&mut other.body as *mut Body).cast::<Words>(),
        );
        // SAFETY: `self` and `other` are two `&mut`, so the bodies do not overlap; each is
        // `BODY_WORDS` aligned words (asserted below), read and written whole as
        // `MaybeUninit` (padding included) and moved whole to the other place: each ends
        // holding the other's valid `Body`, exactly as `mem::swap` leaves them.
        unsafe {
            let (x, y) = (a.read(), b.read());
            a.write(y);
            b.write(x);
        }
        std::mem::swap(&mut self.flags, &mut other.flags);
    }

    /// Takes the connection properties out of this part (it has none afterwards). A receiver
    /// reusing one `Msg` moves them into the next part instead of cloning the `Arc`.
    #[inline]
    pub fn take_metadata(&mut self) -> Option<Arc<MsgMetadata>> {
        self.metadata.take()
    }
}

impl fmt::Debug for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let data = self.data();
        let shown = &data[..data.len().min(32)];
        f.debug_struct("Msg")
            .field("len", &data.len())
            .field("data", &String::from_utf8_lossy(shown))
            .field("flags", &self.flags)
            .field("metadata", &self.metadata)
            .finish()
    }
}

impl PartialEq for Msg {
    fn eq(&self, other: &Self) -> bool {
        self.data() == other.data() && self.flags == other.flags
    }
}

impl Eq for Msg {}

impl From<Bytes> for Msg {
    fn from(data: Bytes) -> Self {
        Msg::from_bytes(data)
    }
}

impl From<Vec<u8>> for Msg {
    fn from(data: Vec<u8>) -> Self {
        Msg::from_bytes(data)
    }
}

impl From<&'static [u8]> for Msg {
    fn from(data: &'static [u8]) -> Self {
        Msg::from_bytes(Bytes::from_static(data))
    }
}

impl From<&'static str> for Msg {
    fn from(data: &'static str) -> Self {
        Msg::from_bytes(Bytes::from_static(data.as_bytes()))
    }
}

impl From<String> for Msg {
    fn from(data: String) -> Self {
        Msg::from_bytes(data.into_bytes())
    }
}

impl crate::pipe::PipeItem for Msg {
    /// A multipart message ends at its first part without MORE; the pipe's high-water mark
    /// counts whole messages.
    fn ends_message(&self) -> bool {
        !self.more()
    }

    /// An inline body without properties: nothing to free (what a receiver that moved the
    /// contents out of the pipe's slot leaves there).
    #[inline(always)]
    fn drop_is_noop(&self) -> bool {
        matches!(self.body, Body::Inline { .. }) && self.metadata.is_none()
    }
}

impl AsRef<[u8]> for Msg {
    fn as_ref(&self) -> &[u8] {
        self.data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fits_the_c_abi_slot() {
        assert_eq!(std::mem::size_of::<Msg>(), 56);
        assert_eq!(std::mem::align_of::<Msg>(), 8);
    }

    #[test]
    fn more_flag_and_user_bits_are_independent() {
        let mut m = Msg::from("abc").with_more(true);
        m.set_flags(m.flags() | 0x10);
        assert!(m.more());
        m.set_more(false);
        assert!(!m.more());
        assert_eq!(m.flags() & Msg::USER_MASK, 0x10);
    }

    #[test]
    fn small_bodies_are_inline_large_ones_shared() {
        let small = Msg::copy_from_slice(&[5u8; Msg::INLINE_CAP]);
        assert!(small.is_inline());
        assert_eq!(small.data(), &[5u8; Msg::INLINE_CAP][..]);
        assert_eq!(small.len(), Msg::INLINE_CAP);
        let large = Msg::copy_from_slice(&[6u8; Msg::INLINE_CAP + 1]);
        assert!(!large.is_inline());
        assert_eq!(large.len(), Msg::INLINE_CAP + 1);
        assert!(Msg::new().is_empty() && Msg::new().is_inline());
        assert_eq!(
            small.clone().into_bytes(),
            Bytes::from(vec![5u8; Msg::INLINE_CAP])
        );
        assert_eq!(small, Msg::from_bytes(vec![5u8; Msg::INLINE_CAP]));
    }

    #[test]
    fn small_copies_are_exact_for_every_length() {
        let src: Vec<u8> = (1..=Msg::INLINE_CAP as u8).collect();
        for n in 0..=Msg::INLINE_CAP {
            let m = Msg::copy_from_slice(&src[..n]);
            assert_eq!(m.data(), &src[..n], "length {n}");
        }
    }

    #[test]
    fn written_in_place_like_copied_for_every_length() {
        let src: Vec<u8> = (1..=Msg::INLINE_CAP as u8 + 2).collect();
        for n in 0..=src.len() {
            for more in [false, true] {
                let mut slot = std::mem::MaybeUninit::<Msg>::uninit();
                let m = Msg::write_copied(&mut slot, &src[..n], more, CopyHint::Cached);
                assert_eq!(m.data(), &src[..n], "length {n}");
                assert_eq!(m.more(), more);
                assert_eq!(m.is_inline(), n <= Msg::INLINE_CAP);
                assert!(m.metadata().is_none());
                // SAFETY: `write_copied` initialised the slot; dropped once here.
                unsafe { slot.assume_init_drop() };
            }
        }
    }

    /// Either hint gives the same part: below, at and past the streaming threshold, in a
    /// pooled block and past the largest one.
    #[test]
    fn either_copy_hint_gives_the_same_part() {
        use crate::stream_copy::STREAM_MIN;
        let max = crate::body_pool::MAX_POOLED;
        let src: Vec<u8> = (0..max + 100).map(|i| (i % 251) as u8).collect();
        for n in [
            100,
            STREAM_MIN - 1,
            STREAM_MIN,
            STREAM_MIN + 17,
            max,
            max + 100,
        ] {
            for how in [CopyHint::Cached, CopyHint::Streamed] {
                let mut slot = std::mem::MaybeUninit::<Msg>::uninit();
                let m = Msg::write_copied(&mut slot, &src[..n], true, how);
                assert_eq!(m.data(), &src[..n], "length {n}, {how:?}");
                assert!(m.more());
                // SAFETY: `write_copied` initialised the slot; dropped once here.
                unsafe { slot.assume_init_drop() };
            }
        }
    }

    #[test]
    fn drop_is_noop_only_without_allocation_or_properties() {
        use crate::pipe::PipeItem;
        assert!(Msg::copy_from_slice(b"abc").drop_is_noop());
        assert!(Msg::new().drop_is_noop());
        assert!(!Msg::from(vec![1u8; 100]).drop_is_noop());
        assert!(!Msg::from_bytes(Bytes::from_static(b"static")).drop_is_noop());
        let mut m = Msg::copy_from_slice(b"abc");
        m.set_metadata(Some(Arc::new(MsgMetadata::new())));
        assert!(!m.drop_is_noop());
    }

    #[test]
    fn small_or_owned_never_keeps_a_small_slice_of_a_big_buffer() {
        let big = Bytes::from(vec![1u8; 4096]);
        let m = Msg::from_small_or_owned(big.slice(10..20));
        assert!(m.is_inline());
        let m = Msg::from_small_or_owned(big.slice(10..100));
        assert!(!m.is_inline());
        assert_eq!(m.data().as_ptr(), big[10..].as_ptr());
    }

    #[test]
    fn shared_means_what_zmq_shared_means() {
        for len in [10usize, 100, 5000] {
            let a = Msg::copy_from_slice(&vec![1u8; len]);
            assert!(!a.is_shared(), "a fresh copy of {len} B is not shared");
            let b = a.clone();
            assert_eq!(
                a.is_shared(),
                len > Msg::INLINE_CAP,
                "{len} B after a clone"
            );
            assert_eq!(b.is_shared(), len > Msg::INLINE_CAP);
            drop(b);
            assert!(!a.is_shared(), "{len} B again alone");
        }
        assert!(!Msg::from(vec![1u8; 100]).is_shared());
        assert!(
            Msg::from_bytes(Bytes::from_static(b"constant data")).is_shared(),
            "libzmq reports a constant message as shared"
        );
    }

    #[test]
    fn clones_share_bytes() {
        let m = Msg::from(vec![7u8; 1000]);
        let c = m.clone();
        assert_eq!(m.data().as_ptr(), c.data().as_ptr());
    }

    /// Each body kind becomes a send buffer holding the same bytes; shared and pooled bodies
    /// are handed over, not copied.
    #[test]
    fn bodies_become_send_buffers_without_copying_shared_bytes() {
        let pooled = Msg::copied(&[3u8; 5000], false);
        let at = pooled.data().as_ptr();
        assert!(!pooled.is_inline());
        let shared = pooled.share_buf().unwrap();
        assert!(matches!(shared, SendBuf::Pooled(_)));
        assert_eq!(shared.as_ptr(), at);
        let moved = pooled.into_send_buf();
        assert!(matches!(moved, SendBuf::Pooled(_)));
        assert_eq!(moved.as_ptr(), at);
        assert_eq!(&moved[..], &[3u8; 5000][..]);

        let given = Msg::from(vec![4u8; 100_000]);
        let at = given.data().as_ptr();
        let buf = given.into_send_buf();
        assert!(matches!(buf, SendBuf::Shared(_)));
        assert_eq!(buf.as_ptr(), at);

        let small = Msg::copied(b"twelve bytes", false);
        assert!(small.is_inline());
        assert!(
            small.share_buf().is_none(),
            "an inline body is copied by the encoder"
        );
        let buf = small.into_send_buf();
        assert!(matches!(buf, SendBuf::Inline { .. }));
        assert_eq!(&buf[..], b"twelve bytes");
        let longer = Msg::copied(&[5u8; 30], false);
        assert!(longer.is_inline());
        assert_eq!(&longer.into_send_buf()[..], &[5u8; 30][..]);
    }

    #[test]
    fn metadata_names_are_case_insensitive() {
        let mut md = MsgMetadata::new();
        md.insert("Socket-Type", "PUB");
        md.insert("socket-type", "SUB");
        assert_eq!(md.len(), 1);
        assert_eq!(md.get("SOCKET-TYPE").map(|b| &b[..]), Some(&b"SUB"[..]));
    }
}
