//! Endpoint splitting and dispatch: `transport://address` into a [`TransportAddr`].
//!
//! This module only splits `transport://address` and dispatches on the transport; tcp and ipc
//! addresses are then parsed by `zeroring_transports::endpoint` in `wire.rs`, with libzmq's
//! errnos. Every bind/connect goes through [`TransportAddr::parse`] and then one `match` in
//! `socket/mod.rs` (`Socket::bind` / `Socket::connect`).

use crate::error::{Error, Result};

/// An endpoint split into its transport and its address text (not parsed further: a tcp or
/// ipc address is `zeroring_transports::endpoint::Endpoint`'s to parse).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransportAddr {
    /// `inproc://name`.
    Inproc(String),
    /// `tcp://host:port`.
    Tcp(String),
    /// `ipc://path`.
    Ipc(String),
}

impl TransportAddr {
    /// Parses `transport://address`. A missing `://` or an empty address → EINVAL; `udp` →
    /// ENOCOMPATPROTO (libzmq knows it, for RADIO and DISH only: draft types not built here);
    /// a transport zeroring does not know (pgm, epgm, norm, vmci, tipc, …) → EPROTONOSUPPORT.
    pub fn parse(s: &str) -> Result<TransportAddr> {
        let (scheme, addr) = s.split_once("://").ok_or(Error::EINVAL)?;
        if addr.is_empty() {
            return Err(Error::EINVAL);
        }
        match scheme {
            "inproc" => Ok(TransportAddr::Inproc(addr.to_string())),
            "tcp" => Ok(TransportAddr::Tcp(addr.to_string())),
            "ipc" => Ok(TransportAddr::Ipc(addr.to_string())),
            "udp" => Err(Error::ENOCOMPATPROTO),
            _ => Err(Error::EPROTONOSUPPORT),
        }
    }

    /// The endpoint as text (`inproc://name`, …).
    pub fn uri(&self) -> String {
        match self {
            TransportAddr::Inproc(a) => format!("inproc://{a}"),
            TransportAddr::Tcp(a) => format!("tcp://{a}"),
            TransportAddr::Ipc(a) => format!("ipc://{a}"),
        }
    }
}

/// The old name of [`TransportAddr`], which it shared with the transports crate's fully parsed
/// tcp/ipc endpoint.
#[deprecated(note = "renamed `TransportAddr`")]
pub type Endpoint = TransportAddr;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            TransportAddr::parse("inproc://a"),
            Ok(TransportAddr::Inproc("a".into()))
        );
        assert_eq!(
            TransportAddr::parse("tcp://127.0.0.1:5555"),
            Ok(TransportAddr::Tcp("127.0.0.1:5555".into()))
        );
        assert_eq!(TransportAddr::parse("inproc://"), Err(Error::EINVAL));
        assert_eq!(TransportAddr::parse("inproc:/a"), Err(Error::EINVAL));
        assert_eq!(TransportAddr::parse("pgm://x"), Err(Error::EPROTONOSUPPORT));
        assert_eq!(
            TransportAddr::parse("udp://127.0.0.1:5555"),
            Err(Error::ENOCOMPATPROTO)
        );
    }
}
