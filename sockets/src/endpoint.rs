//! Endpoint parsing and dispatch.
//!
//! `zeroring_transports::endpoint` is still a placeholder while the wire issue lands, so this
//! module parses the `transport://address` form itself. Every bind/connect goes through
//! [`Endpoint::parse`] and then one `match` in `socket.rs` (`Socket::bind` / `Socket::connect`):
//! the wire issue adds tcp and ipc there, in one place, and can swap this parser for the
//! transports crate's.

use crate::error::{Error, Result};

/// A parsed endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `inproc://name`.
    Inproc(String),
    /// `tcp://host:port` (arrives with the wire issue).
    Tcp(String),
    /// `ipc://path` (arrives with the wire issue).
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
