//! One buffer of an outgoing send: bytes shared by reference count, either as [`Bytes`] or as
//! a pooled body, or a few bytes held in the buffer itself (a frame's header) — so that a large
//! part goes from the pipe to the kernel without a copy and without an allocation per message.
//!
//! Owns: the choice between the representations and read access to the bytes. Must never:
//! copy shared bytes. Shared and pooled bytes stay where they are while a `SendBuf` moves; an
//! inline buffer's bytes move with it, so a send's iovec array may point at them only while
//! the buffers stay in place — as `Op::Send` keeps its `Vec<SendBuf>` untouched from a
//! submission until its completion.

use std::ops::Deref;

use bytes::Bytes;

use crate::body_pool::PooledBody;

/// An immutable, reference-counted buffer to write: what [`Op::Send`](crate::Op::Send)
/// carries and an encoder hands out.
#[derive(Clone)]
pub enum SendBuf {
    /// Bytes shared by the `bytes` crate's reference count (an encoder's batch, a part the
    /// caller gave as `Bytes`, a body too large for the pools).
    Shared(Bytes),
    /// A part's pooled body, shared by its block's reference count: its block goes home when
    /// the last reference (the part, or the send that wrote it) is dropped.
    Pooled(PooledBody),
    /// Up to [`SendBuf::INLINE_MAX`] bytes held here (a large body's frame header: no shared
    /// batch buffer is split off for it).
    Inline {
        /// The bytes; those past `len` are unused.
        bytes: [u8; SendBuf::INLINE_MAX],
        /// How many of `bytes` are the buffer.
        len: u8,
    },
}

impl SendBuf {
    /// The most bytes an inline buffer holds.
    pub const INLINE_MAX: usize = 16;

    /// An empty buffer.
    pub const fn new() -> Self {
        SendBuf::Shared(Bytes::new())
    }

    /// A copy of `data` held in the buffer itself, or `None` when it is longer than
    /// [`SendBuf::INLINE_MAX`].
    #[inline]
    pub fn inline(data: &[u8]) -> Option<Self> {
        let mut bytes = [0; SendBuf::INLINE_MAX];
        bytes.get_mut(..data.len())?.copy_from_slice(data);
        Some(SendBuf::Inline {
            bytes,
            len: data.len() as u8,
        })
    }

    /// The bytes.
    #[inline]
    pub fn as_slice(&self) -> &[u8] {
        match self {
            SendBuf::Shared(b) => b,
            SendBuf::Pooled(p) => p.as_slice(),
            SendBuf::Inline { bytes, len } => &bytes[..usize::from(*len)],
        }
    }

    /// Length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        match self {
            SendBuf::Shared(b) => b.len(),
            SendBuf::Pooled(p) => p.len(),
            SendBuf::Inline { len, .. } => usize::from(*len),
        }
    }

    /// Whether the buffer is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes as `Bytes`: shared as they are, a pooled body wrapped (one small allocation;
    /// for the rare paths that need `Bytes`, never for a send).
    pub fn into_bytes(self) -> Bytes {
        match self {
            SendBuf::Shared(b) => b,
            SendBuf::Pooled(p) => Bytes::from_owner(p),
            SendBuf::Inline { bytes, len } => Bytes::copy_from_slice(&bytes[..usize::from(len)]),
        }
    }
}

impl Default for SendBuf {
    fn default() -> Self {
        SendBuf::new()
    }
}

impl Deref for SendBuf {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl AsRef<[u8]> for SendBuf {
    fn as_ref(&self) -> &[u8] {
        self.as_slice()
    }
}

impl From<Bytes> for SendBuf {
    fn from(b: Bytes) -> Self {
        SendBuf::Shared(b)
    }
}

impl From<PooledBody> for SendBuf {
    fn from(p: PooledBody) -> Self {
        SendBuf::Pooled(p)
    }
}

impl From<&'static [u8]> for SendBuf {
    fn from(b: &'static [u8]) -> Self {
        SendBuf::Shared(Bytes::from_static(b))
    }
}

/// Equal when the bytes are, whichever way each side holds them.
impl PartialEq for SendBuf {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for SendBuf {}

impl std::fmt::Debug for SendBuf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SendBuf::Shared(b) => f.debug_tuple("Shared").field(&b.len()).finish(),
            SendBuf::Pooled(p) => f.debug_tuple("Pooled").field(&p.len()).finish(),
            SendBuf::Inline { len, .. } => f.debug_tuple("Inline").field(len).finish(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_kinds_read_the_same_bytes_and_share_without_copying() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let pooled = PooledBody::copy_from(&data).expect("5000 B fits the pools");
        let shared = Bytes::from(data.clone());
        let a = SendBuf::from(pooled.clone());
        let b = SendBuf::from(shared.clone());
        assert_eq!(&a[..], &data[..]);
        assert_eq!(&b[..], &data[..]);
        assert_eq!(a.len(), 5000);
        assert_eq!(a, b);
        // Shared, not copied: the bytes are where the part keeps them.
        assert_eq!(a.as_ptr(), pooled.as_slice().as_ptr());
        assert_eq!(b.as_ptr(), shared.as_ptr());
        assert!(
            !pooled.is_unique(),
            "the buffer holds a reference to the block"
        );
        drop(a);
        assert!(
            pooled.is_unique(),
            "dropping the buffer gives its reference back"
        );
        let wrapped = SendBuf::from(pooled.clone()).into_bytes();
        assert_eq!(&wrapped[..], &data[..]);
        assert_eq!(wrapped.as_ptr(), pooled.as_slice().as_ptr());
        assert!(SendBuf::new().is_empty());
    }

    #[test]
    fn inline_buffers_hold_up_to_their_limit() {
        let nine = [0x02, 0, 0, 0, 0, 0, 1, 0, 0];
        let h = SendBuf::inline(&nine).unwrap();
        assert_eq!(&h[..], &nine);
        assert_eq!(h, SendBuf::from(Bytes::copy_from_slice(&nine)));
        assert_eq!(&h.clone().into_bytes()[..], &nine);
        let full = [7u8; SendBuf::INLINE_MAX];
        assert_eq!(SendBuf::inline(&full).unwrap().len(), SendBuf::INLINE_MAX);
        assert!(SendBuf::inline(&[7u8; SendBuf::INLINE_MAX + 1]).is_none());
        assert!(SendBuf::inline(&[]).unwrap().is_empty());
    }
}
