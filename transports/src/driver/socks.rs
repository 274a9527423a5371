//! SOCKS5 (RFC 1928, with RFC 1929 username/password) client side, sans-IO: what a connecting
//! session says to a proxy (ZMQ_SOCKS_PROXY) before ZMTP starts on the same connection.
//!
//! libzmq's socks_connecter does the same exchange: greeting (no authentication, or
//! username/password when ZMQ_SOCKS_USERNAME is set), then CONNECT to the endpoint's host —
//! by name when it is a name (the proxy resolves it), by address otherwise.
//!
//! Owns: the bytes of the exchange and their validation. Must never: trust a length from the
//! proxy beyond the reply format (a reply is at most 4 + 1 + 255 + 2 bytes), or let bytes that
//! arrive after the CONNECT reply (the server's ZMTP greeting) go missing — they are handed
//! back to start the stream with.

use std::fmt;
use std::net::IpAddr;

use crate::endpoint::{Host, TcpAddr};

/// What to ask the proxy for.
#[derive(Clone, PartialEq, Eq)]
pub struct SocksRequest {
    /// The proxy (`host:port`, resolved by the session's caller).
    pub proxy: std::net::SocketAddr,
    /// The local address to bind before connecting to the proxy (libzmq's `src;proxy` form
    /// of ZMQ_SOCKS_PROXY, as for a tcp endpoint).
    pub source: Option<std::net::SocketAddr>,
    /// Where the proxy should connect.
    pub host: SocksHost,
    /// Its port.
    pub port: u16,
    /// ZMQ_SOCKS_USERNAME / ZMQ_SOCKS_PASSWORD, when a username is set.
    pub auth: Option<(Vec<u8>, Vec<u8>)>,
}

impl fmt::Debug for SocksRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the password.
        f.debug_struct("SocksRequest")
            .field("proxy", &self.proxy)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("auth", &self.auth.as_ref().map(|(u, _)| u))
            .finish()
    }
}

/// The destination as the CONNECT request names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SocksHost {
    /// ATYP 1 or 4.
    Ip(IpAddr),
    /// ATYP 3: the proxy resolves it.
    Name(String),
}

impl SocksRequest {
    /// The request for a tcp endpoint's destination; `None` for a host SOCKS cannot name
    /// (`*`, or a name longer than 255 bytes).
    pub fn for_addr(
        proxy: std::net::SocketAddr,
        dest: &TcpAddr,
        auth: Option<(Vec<u8>, Vec<u8>)>,
    ) -> Option<Self> {
        let host = match &dest.host {
            Host::Ip { addr, .. } => SocksHost::Ip(*addr),
            Host::Name(n) if !n.is_empty() && n.len() <= 255 => SocksHost::Name(n.clone()),
            _ => return None,
        };
        Some(SocksRequest {
            proxy,
            source: None,
            host,
            port: dest.port,
            auth,
        })
    }
}

/// Why the exchange failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocksError {
    /// The proxy answered something that is not SOCKS5.
    Protocol,
    /// The proxy accepts none of the methods offered.
    NoAcceptableMethod,
    /// Username/password refused.
    AuthRejected,
    /// The CONNECT failed with this reply code (RFC 1928 §6).
    ConnectFailed(u8),
    /// Credentials longer than 255 bytes.
    BadCredentials,
}

/// What to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send these bytes, then read.
    Send(Vec<u8>),
    /// Read more.
    Read,
    /// Done: start the stream, giving it these bytes first (what followed the reply).
    Done(Vec<u8>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Greeting,
    Auth,
    Connect,
    Done,
}

/// One exchange with a proxy.
#[derive(Debug)]
pub struct SocksClient {
    req: SocksRequest,
    phase: Phase,
    buf: Vec<u8>,
}

impl SocksClient {
    /// A client for `req`; [`SocksClient::start`] gives the first bytes to send.
    pub fn new(req: SocksRequest) -> Self {
        SocksClient {
            req,
            phase: Phase::Greeting,
            buf: Vec::new(),
        }
    }

    /// The greeting: version 5, the methods offered (no authentication, and
    /// username/password when a username is set).
    pub fn start(&self) -> Vec<u8> {
        match self.req.auth {
            Some(_) => vec![5, 2, 0, 2],
            None => vec![5, 1, 0],
        }
    }

    /// Bytes from the proxy.
    pub fn on_data(&mut self, data: &[u8]) -> Result<Step, SocksError> {
        self.buf.extend_from_slice(data);
        loop {
            match self.phase {
                Phase::Greeting => {
                    if self.buf.len() < 2 {
                        return Ok(Step::Read);
                    }
                    if self.buf[0] != 5 {
                        return Err(SocksError::Protocol);
                    }
                    let method = self.buf[1];
                    self.buf.drain(..2);
                    return match (method, &self.req.auth) {
                        (0, _) => {
                            self.phase = Phase::Connect;
                            Ok(Step::Send(self.connect_request()))
                        }
                        (2, Some((user, pass))) => {
                            if user.len() > 255 || pass.len() > 255 {
                                return Err(SocksError::BadCredentials);
                            }
                            let mut m = vec![1, user.len() as u8];
                            m.extend_from_slice(user);
                            m.push(pass.len() as u8);
                            m.extend_from_slice(pass);
                            self.phase = Phase::Auth;
                            Ok(Step::Send(m))
                        }
                        _ => Err(SocksError::NoAcceptableMethod),
                    };
                }
                Phase::Auth => {
                    if self.buf.len() < 2 {
                        return Ok(Step::Read);
                    }
                    if self.buf[0] != 1 {
                        return Err(SocksError::Protocol);
                    }
                    if self.buf[1] != 0 {
                        return Err(SocksError::AuthRejected);
                    }
                    self.buf.drain(..2);
                    self.phase = Phase::Connect;
                    return Ok(Step::Send(self.connect_request()));
                }
                Phase::Connect => {
                    // VER REP RSV ATYP BND.ADDR BND.PORT
                    if self.buf.len() < 5 {
                        return Ok(Step::Read);
                    }
                    if self.buf[0] != 5 || self.buf[2] != 0 {
                        return Err(SocksError::Protocol);
                    }
                    if self.buf[1] != 0 {
                        return Err(SocksError::ConnectFailed(self.buf[1]));
                    }
                    let addr_len = match self.buf[3] {
                        1 => 4,
                        4 => 16,
                        3 => 1 + self.buf[4] as usize,
                        _ => return Err(SocksError::Protocol),
                    };
                    let total = 4 + addr_len + 2;
                    if self.buf.len() < total {
                        return Ok(Step::Read);
                    }
                    self.buf.drain(..total);
                    self.phase = Phase::Done;
                }
                Phase::Done => return Ok(Step::Done(std::mem::take(&mut self.buf))),
            }
        }
    }

    fn connect_request(&self) -> Vec<u8> {
        let mut m = vec![5, 1, 0];
        match &self.req.host {
            SocksHost::Ip(IpAddr::V4(a)) => {
                m.push(1);
                m.extend_from_slice(&a.octets());
            }
            SocksHost::Ip(IpAddr::V6(a)) => {
                m.push(4);
                m.extend_from_slice(&a.octets());
            }
            SocksHost::Name(n) => {
                m.push(3);
                // At most 255 bytes: `for_addr` refuses longer names.
                m.push(n.len() as u8);
                m.extend_from_slice(n.as_bytes());
            }
        }
        m.extend_from_slice(&self.req.port.to_be_bytes());
        m
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: SocksHost, auth: Option<(&str, &str)>) -> SocksRequest {
        SocksRequest {
            source: None,
            proxy: "127.0.0.1:1080".parse().unwrap(),
            host,
            port: 5555,
            auth: auth.map(|(u, p)| (u.as_bytes().to_vec(), p.as_bytes().to_vec())),
        }
    }

    #[test]
    fn no_auth_by_address_with_a_split_reply_and_leftover() {
        let mut c = SocksClient::new(req(SocksHost::Ip([10, 0, 0, 1].into()), None));
        assert_eq!(c.start(), [5, 1, 0]);
        assert_eq!(c.on_data(&[5]), Ok(Step::Read));
        assert_eq!(
            c.on_data(&[0]),
            Ok(Step::Send(vec![5, 1, 0, 1, 10, 0, 0, 1, 0x15, 0xb3]))
        );
        assert_eq!(c.on_data(&[5, 0, 0, 1, 0, 0]), Ok(Step::Read));
        // The rest of the reply, and the server's first greeting bytes behind it.
        assert_eq!(
            c.on_data(&[0, 0, 0, 0, 0xff, 0, 0]),
            Ok(Step::Done(vec![0xff, 0, 0]))
        );
    }

    #[test]
    fn username_password_and_names() {
        let mut c = SocksClient::new(req(
            SocksHost::Name("example.org".into()),
            Some(("u", "pw")),
        ));
        assert_eq!(c.start(), [5, 2, 0, 2]);
        assert_eq!(
            c.on_data(&[5, 2]),
            Ok(Step::Send(vec![1, 1, b'u', 2, b'p', b'w']))
        );
        let mut want = vec![5, 1, 0, 3, 11];
        want.extend_from_slice(b"example.org");
        want.extend_from_slice(&[0x15, 0xb3]);
        assert_eq!(c.on_data(&[1, 0]), Ok(Step::Send(want)));
        // A reply naming a domain (ATYP 3).
        assert_eq!(
            c.on_data(&[5, 0, 0, 3, 1, b'x', 0, 80]),
            Ok(Step::Done(vec![]))
        );
    }

    #[test]
    fn refusals_and_garbage_are_errors() {
        let mut c = SocksClient::new(req(SocksHost::Ip([10, 0, 0, 1].into()), None));
        assert_eq!(c.on_data(&[5, 0xff]), Err(SocksError::NoAcceptableMethod));
        let mut c = SocksClient::new(req(SocksHost::Ip([10, 0, 0, 1].into()), None));
        assert_eq!(c.on_data(b"HTTP/1.1 400"), Err(SocksError::Protocol));
        let mut c = SocksClient::new(req(SocksHost::Ip([10, 0, 0, 1].into()), None));
        c.on_data(&[5, 0]).unwrap();
        assert_eq!(
            c.on_data(&[5, 5, 0, 1, 0, 0, 0, 0, 0, 0]),
            Err(SocksError::ConnectFailed(5))
        );
        let mut c = SocksClient::new(req(SocksHost::Ip([10, 0, 0, 1].into()), Some(("u", "p"))));
        c.on_data(&[5, 2]).unwrap();
        assert_eq!(c.on_data(&[1, 1]), Err(SocksError::AuthRejected));
        // Offering no authentication only, a proxy asking for a password is refused.
        let mut c = SocksClient::new(req(SocksHost::Ip([10, 0, 0, 1].into()), None));
        assert_eq!(c.on_data(&[5, 2]), Err(SocksError::NoAcceptableMethod));
    }
}
