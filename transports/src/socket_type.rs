//! Socket types: libzmq's numbers (zmq.h), the names sent in the READY
//! `Socket-Type` property, and the peer-compatibility table ZMTP checks.
//!
//! Owns: the type vocabulary only. Must never: know about socket patterns
//! (routing, fair-queueing); that lives in the sockets crate.

use std::fmt;

/// A ZeroMQ socket type, with libzmq's numeric value as discriminant.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i32)]
pub enum SocketType {
    Pair = 0,
    Pub = 1,
    Sub = 2,
    Req = 3,
    Rep = 4,
    Dealer = 5,
    Router = 6,
    Pull = 7,
    Push = 8,
    XPub = 9,
    XSub = 10,
    Stream = 11,
    // Draft types (ZMQ_BUILD_DRAFT_API).
    Server = 12,
    Client = 13,
    Radio = 14,
    Dish = 15,
    Gather = 16,
    Scatter = 17,
    Dgram = 18,
    Peer = 19,
    Channel = 20,
}

impl SocketType {
    /// Every type, in numeric order.
    pub const ALL: [SocketType; 21] = [
        SocketType::Pair,
        SocketType::Pub,
        SocketType::Sub,
        SocketType::Req,
        SocketType::Rep,
        SocketType::Dealer,
        SocketType::Router,
        SocketType::Pull,
        SocketType::Push,
        SocketType::XPub,
        SocketType::XSub,
        SocketType::Stream,
        SocketType::Server,
        SocketType::Client,
        SocketType::Radio,
        SocketType::Dish,
        SocketType::Gather,
        SocketType::Scatter,
        SocketType::Dgram,
        SocketType::Peer,
        SocketType::Channel,
    ];

    /// The type for libzmq's number (`ZMQ_PAIR` = 0 …), or `None` (libzmq: EINVAL).
    pub fn from_raw(raw: i32) -> Option<SocketType> {
        usize::try_from(raw)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// libzmq's number for this type.
    pub const fn raw(self) -> i32 {
        self as i32
    }

    /// Whether the type is only in libzmq's draft API.
    pub const fn is_draft(self) -> bool {
        (self as i32) >= 12
    }

    /// The name sent in the READY `Socket-Type` property ("PAIR", "PUB", …).
    pub const fn name(self) -> &'static str {
        match self {
            SocketType::Pair => "PAIR",
            SocketType::Pub => "PUB",
            SocketType::Sub => "SUB",
            SocketType::Req => "REQ",
            SocketType::Rep => "REP",
            SocketType::Dealer => "DEALER",
            SocketType::Router => "ROUTER",
            SocketType::Pull => "PULL",
            SocketType::Push => "PUSH",
            SocketType::XPub => "XPUB",
            SocketType::XSub => "XSUB",
            SocketType::Stream => "STREAM",
            SocketType::Server => "SERVER",
            SocketType::Client => "CLIENT",
            SocketType::Radio => "RADIO",
            SocketType::Dish => "DISH",
            SocketType::Gather => "GATHER",
            SocketType::Scatter => "SCATTER",
            SocketType::Dgram => "DGRAM",
            SocketType::Peer => "PEER",
            SocketType::Channel => "CHANNEL",
        }
    }

    /// Parses a `Socket-Type` value. Exact match, as libzmq compares it
    /// (`memcmp`, case-sensitive).
    pub fn from_name(name: &[u8]) -> Option<SocketType> {
        Self::ALL
            .iter()
            .copied()
            .find(|t| t.name().as_bytes() == name)
    }

    /// Whether this type sends the `Identity` property in READY/INITIATE
    /// (libzmq: REQ, DEALER and ROUTER do, even when the routing id is empty).
    pub const fn sends_identity(self) -> bool {
        matches!(
            self,
            SocketType::Req | SocketType::Dealer | SocketType::Router
        )
    }

    /// Whether a peer of type `peer` may talk to a socket of this type
    /// (libzmq's `mechanism_t::check_socket_type`).
    pub const fn is_compatible_with(self, peer: SocketType) -> bool {
        use SocketType::*;
        match self {
            Req => matches!(peer, Rep | Router),
            Rep => matches!(peer, Req | Dealer),
            Dealer => matches!(peer, Rep | Dealer | Router),
            Router => matches!(peer, Req | Dealer | Router),
            Push => matches!(peer, Pull),
            Pull => matches!(peer, Push),
            Pub | XPub => matches!(peer, Sub | XSub),
            Sub | XSub => matches!(peer, Pub | XPub),
            Pair => matches!(peer, Pair),
            Server => matches!(peer, Client),
            Client => matches!(peer, Server),
            Radio => matches!(peer, Dish),
            Dish => matches!(peer, Radio),
            Gather => matches!(peer, Scatter),
            Scatter => matches!(peer, Gather),
            Dgram => matches!(peer, Dgram),
            Peer => matches!(peer, Peer),
            Channel => matches!(peer, Channel),
            // STREAM speaks raw TCP, never ZMTP.
            Stream => false,
        }
    }

    /// Whether this side receives subscriptions (and so turns `\x01topic` /
    /// `\x00topic` messages from a ZMTP 3.0 peer into subscribe/cancel).
    pub const fn receives_subscriptions(self) -> bool {
        matches!(self, SocketType::Pub | SocketType::XPub)
    }
}

impl fmt::Display for SocketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_names_round_trip() {
        for (i, t) in SocketType::ALL.iter().enumerate() {
            assert_eq!(t.raw(), i as i32);
            assert_eq!(SocketType::from_raw(i as i32), Some(*t));
            assert_eq!(SocketType::from_name(t.name().as_bytes()), Some(*t));
        }
        assert_eq!(SocketType::from_raw(21), None);
        assert_eq!(SocketType::from_raw(-1), None);
        assert_eq!(SocketType::from_name(b"pub"), None);
    }

    #[test]
    fn compatibility_is_symmetric() {
        for a in SocketType::ALL {
            for b in SocketType::ALL {
                assert_eq!(
                    a.is_compatible_with(b),
                    b.is_compatible_with(a),
                    "{a} vs {b}"
                );
            }
        }
        assert!(SocketType::Req.is_compatible_with(SocketType::Router));
        assert!(!SocketType::Req.is_compatible_with(SocketType::Req));
        assert!(SocketType::XPub.is_compatible_with(SocketType::Sub));
        assert!(!SocketType::Push.is_compatible_with(SocketType::Push));
    }
}
