//! Endpoint parsing and dispatch.
//!
//! This module only splits `transport://address` and dispatches on the transport; tcp and ipc
//! addresses are then parsed by `zeroring_transports::endpoint` in `wire.rs`, with libzmq's
//! errnos. Every bind/connect goes through [`Endpoint::parse`] and then one `match` in
//! `socket/mod.rs` (`Socket::bind` / `Socket::connect`).

use crate::error::{Error, Result};

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `inproc://name`.
    Inproc(String),
    /// `tcp://host:port`.
    Tcp(String),
    /// `ipc://path`.
    Ipc(String),
}

impl Endpoint {
    /// Parses `transport://address`. A missing `://` or an empty address → EINVAL; a transport
    /// zeroring does not know (pgm, epgm, norm, vmci, udp, tipc, …) → EPROTONOSUPPORT.
    pub fn parse(s: &str) -> Result<Endpoint> {
        let (scheme, addr) = s.split_once("://").ok_or(Error::EINVAL)?;
        if addr.is_empty() {
            return Err(Error::EINVAL);
        }
        match scheme {
            "inproc" => Ok(Endpoint::Inproc(addr.to_string())),
            "tcp" => Ok(Endpoint::Tcp(addr.to_string())),
            "ipc" => Ok(Endpoint::Ipc(addr.to_string())),
            _ => Err(Error::EPROTONOSUPPORT),
        }
    }

    /// The endpoint as text (`inproc://name`, …).
    pub fn uri(&self) -> String {
        match self {
            Endpoint::Inproc(a) => format!("inproc://{a}"),
            Endpoint::Tcp(a) => format!("tcp://{a}"),
            Endpoint::Ipc(a) => format!("ipc://{a}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses() {
        assert_eq!(
            Endpoint::parse("inproc://a"),
            Ok(Endpoint::Inproc("a".into()))
        );
        assert_eq!(
            Endpoint::parse("tcp://127.0.0.1:5555"),
            Ok(Endpoint::Tcp("127.0.0.1:5555".into()))
        );
        assert_eq!(Endpoint::parse("inproc://"), Err(Error::EINVAL));
        assert_eq!(Endpoint::parse("inproc:/a"), Err(Error::EINVAL));
        assert_eq!(Endpoint::parse("pgm://x"), Err(Error::EPROTONOSUPPORT));
    }
}
