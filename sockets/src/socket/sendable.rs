//! What [`Socket::send`](super::Socket::send) takes: a [`Msg`] as it is, owned bytes without a
//! copy, and borrowed bytes, which the socket copies where the part is built (a pipe slot)
//! rather than into an allocation first.

use bytes::Bytes;
use zeroring_engine::Msg;

/// Something that can be sent as one message part.
pub trait Sendable {
    /// Converts into a part.
    fn into_msg(self) -> Msg;

    /// A borrowed body that the send will copy anyway: the socket then copies it straight
    /// into the pipe (no intermediate `Msg` moved through the layers). `None` (the default)
    /// for parts that are moved, not copied.
    #[doc(hidden)]
    fn body_to_copy(&self) -> Option<&[u8]> {
        None
    }
}

impl Sendable for Msg {
    fn into_msg(self) -> Msg {
        self
    }
}
impl Sendable for Bytes {
    fn into_msg(self) -> Msg {
        Msg::from_bytes(self)
    }
}
impl Sendable for Vec<u8> {
    fn into_msg(self) -> Msg {
        Msg::from_bytes(self)
    }
}
impl Sendable for String {
    fn into_msg(self) -> Msg {
        Msg::from_bytes(self.into_bytes())
    }
}
impl Sendable for &[u8] {
    fn into_msg(self) -> Msg {
        Msg::copy_from_slice(self)
    }
    fn body_to_copy(&self) -> Option<&[u8]> {
        Some(self)
    }
}
impl Sendable for &str {
    fn into_msg(self) -> Msg {
        Msg::copy_from_slice(self.as_bytes())
    }
    fn body_to_copy(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}
impl Sendable for &String {
    fn into_msg(self) -> Msg {
        Msg::copy_from_slice(self.as_bytes())
    }
    fn body_to_copy(&self) -> Option<&[u8]> {
        Some(self.as_bytes())
    }
}
impl Sendable for &Vec<u8> {
    fn into_msg(self) -> Msg {
        Msg::copy_from_slice(self)
    }
    fn body_to_copy(&self) -> Option<&[u8]> {
        Some(self)
    }
}
impl<const N: usize> Sendable for &[u8; N] {
    fn into_msg(self) -> Msg {
        Msg::copy_from_slice(self)
    }
    fn body_to_copy(&self) -> Option<&[u8]> {
        Some(&self[..])
    }
}
impl<const N: usize> Sendable for [u8; N] {
    fn into_msg(self) -> Msg {
        Msg::copy_from_slice(&self)
    }
}
