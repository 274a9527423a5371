//! `MsgMetadata`: the connection properties a received part carries (ZMQ_MSG_GETS, ZMQ_SRCFD),
//! one shared set per connection: the peer's ZMTP metadata (`Socket-Type`, `Identity`, its
//! application properties), `Peer-Address`, ZAP's `User-Id` and properties, and the descriptor.
//! The stream builds it once after the handshake; the socket's end of the pipe attaches it to
//! every part it reads.
//!
//! Not ZMTP's property list on the wire (`zeroring_transports::zmtp::Metadata`, which parses
//! and encodes READY's): this set is what that list becomes once the connection is up.
//!
//! Must never: be changed after it is shared (it is read from any thread through an `Arc`).

use std::fmt;

use bytes::Bytes;

/// Connection properties attached to received parts, shared by every part of a connection.
///
/// Names compare case-insensitively (as ZMTP property names do); values are raw bytes.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct MsgMetadata {
    props: Vec<(Box<str>, Bytes)>,
    /// The connection's file descriptor (libzmq's deprecated ZMQ_SRCFD); not a property.
    src_fd: Option<i32>,
}

impl MsgMetadata {
    /// An empty property set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces `name`.
    pub fn insert(&mut self, name: &str, value: impl Into<Bytes>) {
        let value = value.into();
        match self
            .props
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            Some(slot) => slot.1 = value,
            None => self.props.push((name.into(), value)),
        }
    }

    /// The value of `name`, compared case-insensitively.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.props
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }

    /// All properties in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Bytes)> {
        self.props.iter().map(|(n, v)| (&**n, v))
    }

    /// Records the connection's file descriptor, for ZMQ_SRCFD.
    pub fn set_src_fd(&mut self, fd: i32) {
        self.src_fd = Some(fd);
    }

    /// The connection's file descriptor, when it came over one (ZMQ_SRCFD; libzmq reports
    /// −1 for other parts). It may be closed or reused once the connection ends.
    pub fn src_fd(&self) -> Option<i32> {
        self.src_fd
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.props.len()
    }

    /// True when there are no properties.
    pub fn is_empty(&self) -> bool {
        self.props.is_empty()
    }
}

impl fmt::Debug for MsgMetadata {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(
                self.props
                    .iter()
                    .map(|(n, v)| (n, String::from_utf8_lossy(v))),
            )
            .finish()
    }
}
