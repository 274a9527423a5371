//! Endpoint strings (`tcp://`, `ipc://`, `inproc://`): a pure parser with the
//! errors libzmq gives (EPROTONOSUPPORT, EINVAL, ENAMETOOLONG) and messages a
//! person can act on, plus (in [`resolve`]) the functions that ask the OS to
//! turn names into addresses.
//!
//! Owns: endpoint syntax. Must never: resolve names or touch the network in
//! [`parse`]; only the [`resolve`] module calls into std/libc.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use crate::errno::Errno;

/// Whether the endpoint is for `bind` or `connect` (the rules differ: only a
/// bind may use `*` wildcards and interface names, only a connect a source
/// address; both may name a host).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    Bind,
    Connect,
}

/// Longest ipc path: `sizeof(sockaddr_un.sun_path) - 1` on Linux.
pub const IPC_PATH_MAX: usize = 107;

/// A parsed endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Tcp(TcpEndpoint),
    Ipc(IpcEndpoint),
    Inproc(String),
}

/// A tcp endpoint: `[source;]host:port`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpEndpoint {
    /// Source address to bind before connecting (`tcp://src;dst`).
    pub source: Option<TcpAddr>,
    pub addr: TcpAddr,
}

/// A host and port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TcpAddr {
    pub host: Host,
    /// 0 means "any port" (from `*` or `0`).
    pub port: u16,
}

/// The host part of a tcp address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    /// `*`: every interface (bind only).
    Any,
    /// A literal address, with an optional IPv6 zone (`%eth0` or `%2`).
    Ip { addr: IpAddr, zone: Option<String> },
    /// A name: for a bind an interface name or, failing that, a host name; for a connect a
    /// host name.
    Name(String),
}

/// An ipc endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpcEndpoint {
    /// `ipc://*`: bind to a fresh unique path (bind only).
    Wildcard,
    /// A filesystem path.
    Path(String),
    /// `ipc://@name`: Linux abstract namespace (the name without the `@`).
    Abstract(String),
}

/// What is wrong with an endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointErrorKind {
    /// No `://` separator.
    MissingScheme,
    /// Nothing after `://`.
    EmptyAddress,
    /// A transport libzmq does not know.
    UnknownTransport(String),
    /// A libzmq transport zeroring does not implement (pgm, epgm, norm, tipc,
    /// vmci, udp, ws, wss).
    UnsupportedTransport(String),
    /// A tcp address without `:port`.
    MissingPort,
    /// A port that is not `*` or a number in 1..=65535 (0 allowed).
    InvalidPort(String),
    /// A `*` where only a bind may use one.
    WildcardInConnect,
    /// An empty host.
    EmptyHost,
    /// A host name with characters no DNS name has (libzmq's resolver refuses it at once).
    BadHostName(String),
    /// `ipc://@` with no name after the `@`.
    EmptyAbstractName,
    /// `[` without `]`, or brackets around something that is not IPv6.
    BadBrackets,
    /// An empty or invalid `%zone`.
    BadZone,
    /// An ipc path longer than [`IPC_PATH_MAX`] bytes.
    PathTooLong { len: usize },
    /// A source address on a bind.
    SourceInBind,
}

/// An endpoint refused by [`parse`]: errno as libzmq sets it, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointError {
    pub errno: Errno,
    pub kind: EndpointErrorKind,
    pub endpoint: String,
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ep = &self.endpoint;
        match &self.kind {
            EndpointErrorKind::MissingScheme => write!(
                f,
                "invalid endpoint {ep:?}: expected transport://address, e.g. tcp://127.0.0.1:5555"
            ),
            EndpointErrorKind::EmptyAddress => write!(f, "invalid endpoint {ep:?}: the address after :// is empty"),
            EndpointErrorKind::UnknownTransport(t) => write!(
                f,
                "unknown transport {t:?} in {ep:?}: use tcp://, ipc:// or inproc://"
            ),
            EndpointErrorKind::UnsupportedTransport(t) => write!(
                f,
                "transport {t:?} in {ep:?} is not supported by zeroring: use tcp://, ipc:// or inproc://"
            ),
            EndpointErrorKind::MissingPort => write!(f, "invalid endpoint {ep:?}: a tcp address needs :port"),
            EndpointErrorKind::InvalidPort(p) => write!(
                f,
                "invalid port {p:?} in {ep:?}: use a number from 1 to 65535 (or * / 0 to bind any port)"
            ),
            EndpointErrorKind::WildcardInConnect => write!(
                f,
                "invalid endpoint {ep:?}: '*' can only be used to bind; connect needs a host and port"
            ),
            EndpointErrorKind::EmptyHost => write!(f, "invalid endpoint {ep:?}: the host is empty"),
            EndpointErrorKind::BadHostName(h) => write!(
                f,
                "invalid host name {h:?} in {ep:?}: use letters, digits, '-', '_' and '.'"
            ),
            EndpointErrorKind::EmptyAbstractName => write!(
                f,
                "invalid endpoint {ep:?}: an abstract ipc name needs at least one character after '@'"
            ),
            EndpointErrorKind::BadBrackets => write!(
                f,
                "invalid endpoint {ep:?}: a bracket around the host is not closed (an IPv6 address is written as in tcp://[::1]:5555)"
            ),
            EndpointErrorKind::BadZone => write!(f, "invalid endpoint {ep:?}: the %zone after the IPv6 address is invalid"),
            EndpointErrorKind::PathTooLong { len } => write!(
                f,
                "ipc path in {ep:?} is {len} bytes long; the limit is {IPC_PATH_MAX} bytes (sun_path): use a shorter path"
            ),
            EndpointErrorKind::SourceInBind => write!(
                f,
                "invalid endpoint {ep:?}: a source address (src;dst) is only meaningful for connect"
            ),
        }
    }
}

impl std::error::Error for EndpointError {}

/// Parses an endpoint for `bind` or `connect`.
pub fn parse(endpoint: &str, direction: Direction) -> Result<Endpoint, EndpointError> {
    let err = |errno: Errno, kind: EndpointErrorKind| EndpointError {
        errno,
        kind,
        endpoint: endpoint.to_string(),
    };
    let (scheme, address) = endpoint
        .split_once("://")
        .ok_or_else(|| err(Errno::EINVAL, EndpointErrorKind::MissingScheme))?;
    if scheme.is_empty() {
        return Err(err(Errno::EINVAL, EndpointErrorKind::MissingScheme));
    }
    if address.is_empty() {
        return Err(err(Errno::EINVAL, EndpointErrorKind::EmptyAddress));
    }
    match scheme {
        "tcp" => parse_tcp(address, direction)
            .map(Endpoint::Tcp)
            .map_err(|k| err(Errno::EINVAL, k)),
        "ipc" => parse_ipc(address, direction)
            .map(Endpoint::Ipc)
            .map_err(|k| {
                let errno = if matches!(k, EndpointErrorKind::PathTooLong { .. }) {
                    Errno::ENAMETOOLONG
                } else {
                    Errno::EINVAL
                };
                err(errno, k)
            }),
        "inproc" => Ok(Endpoint::Inproc(address.to_string())),
        "pgm" | "epgm" | "norm" | "tipc" | "vmci" | "udp" | "ws" | "wss" => Err(err(
            Errno::EPROTONOSUPPORT,
            EndpointErrorKind::UnsupportedTransport(scheme.to_string()),
        )),
        _ => Err(err(
            Errno::EPROTONOSUPPORT,
            EndpointErrorKind::UnknownTransport(scheme.to_string()),
        )),
    }
}

fn parse_tcp(address: &str, direction: Direction) -> Result<TcpEndpoint, EndpointErrorKind> {
    // libzmq splits at the last ';'.
    let (source, dest) = match address.rfind(';') {
        Some(i) => (Some(&address[..i]), &address[i + 1..]),
        None => (None, address),
    };
    let source = match source {
        Some(_) if direction == Direction::Bind => return Err(EndpointErrorKind::SourceInBind),
        Some(s) => Some(parse_host_port(s, true)?),
        None => None,
    };
    let addr = parse_host_port(dest, direction == Direction::Bind)?;
    Ok(TcpEndpoint { source, addr })
}

fn parse_host_port(s: &str, bindable: bool) -> Result<TcpAddr, EndpointErrorKind> {
    let i = s.rfind(':').ok_or(EndpointErrorKind::MissingPort)?;
    let (host, port) = (&s[..i], &s[i + 1..]);
    let port = match port {
        "*" if bindable => 0,
        "*" => return Err(EndpointErrorKind::WildcardInConnect),
        "0" => 0,
        p if !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(n) if n > 0 => n,
                _ => return Err(EndpointErrorKind::InvalidPort(p.to_string())),
            }
        }
        p => return Err(EndpointErrorKind::InvalidPort(p.to_string())),
    };
    let host = parse_host(host, bindable)?;
    Ok(TcpAddr { host, port })
}

fn parse_host(host: &str, bindable: bool) -> Result<Host, EndpointErrorKind> {
    if host.is_empty() {
        return Err(EndpointErrorKind::EmptyHost);
    }
    if host == "*" {
        return if bindable {
            Ok(Host::Any)
        } else {
            Err(EndpointErrorKind::WildcardInConnect)
        };
    }
    // Brackets (needed around an IPv6 address) are taken off whatever they enclose, as
    // libzmq's resolver takes them off (`tcp://[127.0.0.1]:5555` connects, `tcp://[lo]:*`
    // binds).
    let inner = match (host.strip_prefix('['), host.ends_with(']')) {
        (Some(rest), true) => &rest[..rest.len() - 1],
        (None, false) => host,
        _ => return Err(EndpointErrorKind::BadBrackets),
    };
    let (addr_part, zone) = match inner.rfind('%') {
        Some(i) => {
            let zone = &inner[i + 1..];
            if zone.is_empty()
                || !zone
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.')
            {
                return Err(EndpointErrorKind::BadZone);
            }
            (&inner[..i], Some(zone.to_string()))
        }
        None => (inner, None),
    };
    if let Ok(v6) = addr_part.parse::<Ipv6Addr>() {
        return Ok(Host::Ip {
            addr: IpAddr::V6(v6),
            zone,
        });
    }
    if zone.is_some() {
        return Err(EndpointErrorKind::BadZone);
    }
    if let Ok(ip) = addr_part.parse::<IpAddr>() {
        return Ok(Host::Ip {
            addr: ip,
            zone: None,
        });
    }
    if addr_part.is_empty() {
        return Err(EndpointErrorKind::EmptyHost);
    }
    if !addr_part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(EndpointErrorKind::BadHostName(addr_part.to_string()));
    }
    Ok(Host::Name(addr_part.to_string()))
}

fn parse_ipc(address: &str, direction: Direction) -> Result<IpcEndpoint, EndpointErrorKind> {
    if address == "*" && direction == Direction::Bind {
        return Ok(IpcEndpoint::Wildcard);
    }
    // libzmq: path_len >= sizeof(sun_path) fails; '@' becomes the leading NUL.
    if address.len() > IPC_PATH_MAX {
        return Err(EndpointErrorKind::PathTooLong { len: address.len() });
    }
    Ok(match address.strip_prefix('@') {
        Some("") => return Err(EndpointErrorKind::EmptyAbstractName),
        Some(name) => IpcEndpoint::Abstract(name.to_string()),
        None => IpcEndpoint::Path(address.to_string()),
    })
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Host::Any => f.write_str("*"),
            Host::Ip {
                addr: IpAddr::V6(a),
                zone: Some(z),
            } => write!(f, "[{a}%{z}]"),
            Host::Ip {
                addr: IpAddr::V6(a),
                ..
            } => write!(f, "[{a}]"),
            Host::Ip { addr, .. } => write!(f, "{addr}"),
            Host::Name(n) => f.write_str(n),
        }
    }
}

impl fmt::Display for TcpAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Endpoint::Tcp(t) => match &t.source {
                Some(s) => write!(f, "tcp://{s};{}", t.addr),
                None => write!(f, "tcp://{}", t.addr),
            },
            Endpoint::Ipc(IpcEndpoint::Wildcard) => f.write_str("ipc://*"),
            Endpoint::Ipc(IpcEndpoint::Path(p)) => write!(f, "ipc://{p}"),
            Endpoint::Ipc(IpcEndpoint::Abstract(n)) => write!(f, "ipc://@{n}"),
            Endpoint::Inproc(n) => write!(f, "inproc://{n}"),
        }
    }
}

/// Name resolution: the part of endpoint handling that asks the OS. Kept out
/// of the sans-IO core; the driver calls it (possibly off the I/O thread).
pub mod resolve {
    use std::io;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

    use super::{Direction, Host, TcpAddr};

    /// Resolves a tcp address to socket addresses: `*` to the any-address,
    /// interface names (bind) through `getifaddrs`, DNS names (connect) through
    /// the system resolver. `ipv6` is ZMQ_IPV6 (prefer/allow IPv6).
    pub fn tcp(addr: &TcpAddr, direction: Direction, ipv6: bool) -> io::Result<Vec<SocketAddr>> {
        let port = addr.port;
        match &addr.host {
            Host::Any => Ok(vec![if ipv6 {
                SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port)
            } else {
                SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port)
            }]),
            // Without ZMQ_IPV6 libzmq's bind resolves for IPv4 alone: an IPv6 address is
            // ENODEV, a v4-mapped one its IPv4 address. A connect takes it either way.
            Host::Ip {
                addr: IpAddr::V6(v6),
                ..
            } if direction == Direction::Bind && !ipv6 => match v6.to_ipv4_mapped() {
                Some(v4) => Ok(vec![SocketAddr::new(IpAddr::V4(v4), port)]),
                None => Err(io::Error::from_raw_os_error(libc::ENODEV)),
            },
            Host::Ip { addr: ip, zone } => {
                let mut sa = SocketAddr::new(*ip, port);
                if let (SocketAddr::V6(v6), Some(z)) = (&mut sa, zone) {
                    v6.set_scope_id(zone_index(z)?);
                }
                Ok(vec![sa])
            }
            Host::Name(name) => match direction {
                // An interface name first; else a host name, as libzmq 4.3.5 resolves one for
                // a bind too ("localhost", the machine's own name). ENODEV when neither.
                Direction::Bind => match interface_addrs(name, ipv6) {
                    Err(e) if e.raw_os_error() == Some(libc::ENODEV) => {
                        host_addrs(name, port, ipv6)
                            .ok()
                            // A name with IPv6 addresses only is ENODEV without ZMQ_IPV6.
                            .filter(|a| !a.is_empty() && (ipv6 || a.iter().any(|a| a.is_ipv4())))
                            .map(|a| if ipv6 { v6_first_or_mapped(a) } else { a })
                            .ok_or(e)
                    }
                    r => r.map(|ips| {
                        ips.into_iter()
                            .map(|ip| SocketAddr::new(ip, port))
                            .collect()
                    }),
                },
                Direction::Connect => host_addrs(name, port, ipv6),
            },
        }
    }

    /// With ZMQ_IPV6, what libzmq's bind resolves (getaddrinfo for AF_INET6 with
    /// AI_V4MAPPED): the name's IPv6 addresses, else its IPv4 ones as v4-mapped IPv6
    /// (`tcp://localhost:*` binds `[::ffff:127.0.0.1]`).
    fn v6_first_or_mapped(addrs: Vec<SocketAddr>) -> Vec<SocketAddr> {
        if addrs.iter().any(SocketAddr::is_ipv6) {
            return addrs.into_iter().filter(SocketAddr::is_ipv6).collect();
        }
        addrs
            .into_iter()
            .map(|a| match a {
                SocketAddr::V4(v4) => {
                    SocketAddr::new(IpAddr::V6(v4.ip().to_ipv6_mapped()), v4.port())
                }
                v6 => v6,
            })
            .collect()
    }

    /// A host name's addresses from the system resolver: IPv4 ones only, unless ZMQ_IPV6 is
    /// set or the name has no IPv4 address.
    fn host_addrs(name: &str, port: u16, ipv6: bool) -> io::Result<Vec<SocketAddr>> {
        let all: Vec<SocketAddr> = (name, port).to_socket_addrs()?.collect();
        let mut picked: Vec<SocketAddr> = all
            .iter()
            .copied()
            .filter(|a| ipv6 || a.is_ipv4())
            .collect();
        if picked.is_empty() {
            picked = all;
        }
        Ok(picked)
    }

    fn zone_index(zone: &str) -> io::Result<u32> {
        if let Ok(n) = zone.parse::<u32>() {
            return Ok(n);
        }
        let c =
            std::ffi::CString::new(zone).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: `c` is a valid NUL-terminated string that outlives the call.
        let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
        if idx == 0 {
            Err(io::Error::from_raw_os_error(libc::EINVAL))
        } else {
            Ok(idx)
        }
    }

    /// The addresses of interface `name` (ENODEV if there is no such interface,
    /// as libzmq reports).
    pub fn interface_addrs(name: &str, ipv6: bool) -> io::Result<Vec<IpAddr>> {
        let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
        // SAFETY: getifaddrs writes a list head into `head`, which we free below.
        if unsafe { libc::getifaddrs(&mut head) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let mut out = Vec::new();
        let mut cur = head;
        while !cur.is_null() {
            // SAFETY: `cur` is a node of the list getifaddrs returned, not yet freed.
            let ifa = unsafe { &*cur };
            cur = ifa.ifa_next;
            if ifa.ifa_name.is_null() || ifa.ifa_addr.is_null() {
                continue;
            }
            // SAFETY: ifa_name is a NUL-terminated string owned by the list.
            let ifname = unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) };
            if ifname.to_bytes() != name.as_bytes() {
                continue;
            }
            // SAFETY: ifa_addr is non-null and points to a sockaddr of the family it names.
            let family = i32::from(unsafe { (*ifa.ifa_addr).sa_family });
            if family == libc::AF_INET {
                // SAFETY: the family is AF_INET, so the sockaddr is a sockaddr_in.
                let sin = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in) };
                out.push(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                    sin.sin_addr.s_addr,
                ))));
            } else if family == libc::AF_INET6 && ipv6 {
                // SAFETY: the family is AF_INET6, so the sockaddr is a sockaddr_in6.
                let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
                out.push(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)));
            }
        }
        // SAFETY: `head` came from a successful getifaddrs and is freed once.
        unsafe { libc::freeifaddrs(head) };
        if out.is_empty() {
            return Err(io::Error::from_raw_os_error(libc::ENODEV));
        }
        // With ZMQ_IPV6 the interface's IPv6 address comes first, as libzmq picks it
        // (`tcp://lo:*` binds [::1] there, 127.0.0.1 without).
        out.sort_by_key(|a| a.is_ipv4());
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ok(s: &str, d: Direction) -> Endpoint {
        parse(s, d).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn errno(s: &str, d: Direction) -> Errno {
        parse(s, d).unwrap_err().errno
    }

    #[test]
    fn tcp_forms() {
        use Direction::*;
        assert_eq!(
            ok("tcp://127.0.0.1:5555", Connect),
            Endpoint::Tcp(TcpEndpoint {
                source: None,
                addr: TcpAddr {
                    host: Host::Ip {
                        addr: "127.0.0.1".parse().unwrap(),
                        zone: None
                    },
                    port: 5555
                }
            })
        );
        assert_eq!(ok("tcp://*:5555", Bind).to_string(), "tcp://*:5555");
        assert_eq!(ok("tcp://*:*", Bind).to_string(), "tcp://*:0");
        assert_eq!(ok("tcp://10.0.0.1:*", Bind).to_string(), "tcp://10.0.0.1:0");
        assert_eq!(ok("tcp://[::1]:80", Connect).to_string(), "tcp://[::1]:80");
        assert_eq!(ok("tcp://::1:80", Connect).to_string(), "tcp://[::1]:80");
        assert_eq!(
            ok("tcp://[fe80::1%eth0]:80", Connect).to_string(),
            "tcp://[fe80::1%eth0]:80"
        );
        assert_eq!(ok("tcp://eth0:5555", Bind).to_string(), "tcp://eth0:5555");
        assert_eq!(
            ok("tcp://localhost:5555", Connect).to_string(),
            "tcp://localhost:5555"
        );
        let Endpoint::Tcp(t) = ok("tcp://192.168.1.2:0;example.com:80", Connect) else {
            panic!()
        };
        assert_eq!(t.source.unwrap().to_string(), "192.168.1.2:0");
        assert_eq!(t.addr.host, Host::Name("example.com".into()));
        assert_eq!(
            ok("tcp://eth0:*;10.0.0.1:80", Connect).to_string(),
            "tcp://eth0:0;10.0.0.1:80"
        );
    }

    #[test]
    fn tcp_errors() {
        use Direction::*;
        assert_eq!(errno("tcp://127.0.0.1", Connect), Errno::EINVAL);
        assert_eq!(errno("tcp://*:5555", Connect), Errno::EINVAL);
        assert_eq!(errno("tcp://host:*", Connect), Errno::EINVAL);
        assert_eq!(errno("tcp://host:70000", Connect), Errno::EINVAL);
        assert_eq!(errno("tcp://host:12ab", Connect), Errno::EINVAL);
        assert_eq!(errno("tcp://:5555", Connect), Errno::EINVAL);
        // libzmq's test_connect_resolve: refused at connect, not at the first resolve.
        assert_eq!(errno("tcp://in val id:1234", Connect), Errno::EINVAL);
        // libzmq's test_abstract_ipc: an abstract name needs a name.
        assert_eq!(errno("ipc://@", Bind), Errno::EINVAL);
        assert_eq!(errno("tcp://[::1:5555", Connect), Errno::EINVAL);
        assert_eq!(
            ok("tcp://[1.2.3.4]:5555", Connect).to_string(),
            "tcp://1.2.3.4:5555"
        );
        assert_eq!(errno("tcp://[1.2.3.4%eth0]:5555", Connect), Errno::EINVAL);
        assert_eq!(errno("tcp://[fe80::1%]:5555", Connect), Errno::EINVAL);
        assert_eq!(errno("tcp://a:1;b:2", Bind), Errno::EINVAL);
        let e = parse("tcp://*:5555", Connect).unwrap_err();
        assert!(e.to_string().contains("only be used to bind"), "{e}");
    }

    #[test]
    fn ipc_and_inproc() {
        use Direction::*;
        assert_eq!(
            ok("ipc:///tmp/sock", Bind),
            Endpoint::Ipc(IpcEndpoint::Path("/tmp/sock".into()))
        );
        assert_eq!(
            ok("ipc://@abstract", Connect),
            Endpoint::Ipc(IpcEndpoint::Abstract("abstract".into()))
        );
        assert_eq!(ok("ipc://*", Bind), Endpoint::Ipc(IpcEndpoint::Wildcard));
        assert_eq!(
            ok("inproc://name", Connect),
            Endpoint::Inproc("name".into())
        );
        let max = format!("ipc:///{}", "a".repeat(IPC_PATH_MAX - 1));
        assert!(parse(&max, Bind).is_ok());
        let long = format!("ipc:///{}", "a".repeat(IPC_PATH_MAX));
        let e = parse(&long, Bind).unwrap_err();
        assert_eq!(e.errno, Errno::ENAMETOOLONG);
        assert!(
            e.to_string().contains(&long) && e.to_string().contains("107"),
            "{e}"
        );
    }

    #[test]
    fn scheme_errors() {
        use Direction::*;
        assert_eq!(errno("foo://bar", Bind), Errno::EPROTONOSUPPORT);
        assert_eq!(
            errno("pgm://eth0;239.1.1.1:5555", Connect),
            Errno::EPROTONOSUPPORT
        );
        assert_eq!(errno("tcp:/x", Bind), Errno::EINVAL);
        assert_eq!(errno("tcp://", Bind), Errno::EINVAL);
        assert_eq!(errno("://x", Bind), Errno::EINVAL);
        let e = parse("foo://bar", Bind).unwrap_err();
        assert!(e.to_string().contains("unknown transport \"foo\""), "{e}");
    }

    #[test]
    fn resolution() {
        let Endpoint::Tcp(t) = ok("tcp://*:0", Direction::Bind) else {
            panic!()
        };
        let addrs = resolve::tcp(&t.addr, Direction::Bind, false).unwrap();
        assert_eq!(addrs, vec!["0.0.0.0:0".parse().unwrap()]);
        let Endpoint::Tcp(t) = ok("tcp://lo:5555", Direction::Bind) else {
            panic!()
        };
        let addrs = resolve::tcp(&t.addr, Direction::Bind, false).unwrap();
        assert!(
            addrs.contains(&"127.0.0.1:5555".parse().unwrap()),
            "{addrs:?}"
        );
        assert_eq!(
            resolve::interface_addrs("no-such-if0", false)
                .unwrap_err()
                .raw_os_error(),
            Some(libc::ENODEV)
        );
        let Endpoint::Tcp(t) = ok("tcp://localhost:5555", Direction::Connect) else {
            panic!()
        };
        assert!(!resolve::tcp(&t.addr, Direction::Connect, false)
            .unwrap()
            .is_empty());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_display_round_trips(s in "\\PC{0,40}", bind in any::<bool>()) {
            let d = if bind { Direction::Bind } else { Direction::Connect };
            if let Ok(ep) = parse(&s, d) {
                let again = parse(&ep.to_string(), d).unwrap();
                prop_assert_eq!(again, ep);
            }
        }

        #[test]
        fn tcp_round_trip(a in any::<[u8; 4]>(), port in 1u16..) {
            let s = format!("tcp://{}.{}.{}.{}:{port}", a[0], a[1], a[2], a[3]);
            prop_assert_eq!(parse(&s, Direction::Connect).unwrap().to_string(), s);
        }
    }
}
