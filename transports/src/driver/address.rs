//! From parsed endpoints to what the driver binds and connects: name resolution, the unique
//! path of `ipc://*`, the source address of `tcp://src;dst`, and an ipc connection's
//! `Peer-Address`.
//!
//! Owns: the step between [`crate::endpoint`] (pure parsing) and the OS. Must never: accept an
//! endpoint for the wrong direction (the parser already refuses those).

use std::io;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use socket2::SockAddr;

use super::listener::BindAddr;
use super::session::ConnectTarget;
use crate::endpoint::{resolve, Direction, Endpoint, Host, IpcEndpoint, TcpEndpoint};

/// The `Peer-Address` of an ipc connection, as libzmq writes it: `localhost` (what
/// `getnameinfo` names any unix-socket peer) and the peer's `:uid:gid:pid` (SO_PEERCRED), or
/// `localhost` alone when the credentials cannot be read.
pub(crate) fn ipc_peer_address(fd: &impl std::os::fd::AsFd) -> bytes::Bytes {
    let text = match super::filter::peer_cred(fd) {
        Some(c) => format!("localhost:{}:{}:{}", c.uid, c.gid, c.pid),
        None => "localhost".to_string(),
    };
    bytes::Bytes::from(text)
}

fn not_stream_transport(endpoint: &Endpoint) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{endpoint} is not a tcp or ipc endpoint; the stream driver carries only those"),
    )
}

/// Where `ipc://*` makes its directory, given the environment lookup `var`
/// ([`unique_ipc_path`]).
fn wildcard_dir(var: impl Fn(&str) -> Option<std::ffi::OsString>) -> PathBuf {
    ["TMPDIR", "TEMPDIR", "TMP"]
        .into_iter()
        .filter_map(var)
        .map(PathBuf::from)
        .find(|p| p.is_dir())
        .unwrap_or_else(|| PathBuf::from("/tmp"))
}

/// A fresh ipc path for `ipc://*`: a private directory holding `socket`, as libzmq does (its
/// directory is created now; the listener creates the socket file). The directory goes in
/// the first of TMPDIR, TEMPDIR and TMP that names a directory, as libzmq's
/// `create_ipc_wildcard_address` looks; without any, in `/tmp` (libzmq then uses the working
/// directory, which may not be writable and is not where a user looks for such files).
fn unique_ipc_path() -> io::Result<PathBuf> {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let base = wildcard_dir(|v| std::env::var_os(v));
    for _ in 0..100 {
        let n = SEQ.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("zeroring-{}-{n}", std::process::id()));
        match std::fs::create_dir(&dir) {
            Ok(()) => return Ok(dir.join("socket")),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::from_raw_os_error(libc::EADDRINUSE))
}

/// The forms under which libzmq's `zmq_unbind` and `zmq_disconnect` also look for a tcp
/// endpoint not found as written (`socket_base_t::resolve_tcp_addr`), in the order it tries
/// them: the address resolved as a connect resolves it (a host name through the resolver),
/// then as a bind resolves it (`*`, an interface name), each written as LAST_ENDPOINT writes
/// an address. libzmq gives up when the first does not resolve, so then there are none: a
/// bind to `tcp://*:5555` is unbound by `tcp://0.0.0.0:5555`, not by its own form. Blocks in
/// the system resolver, as libzmq's `zmq_unbind` does.
pub fn tcp_lookup_forms(endpoint: &str, ipv6: bool) -> Vec<String> {
    let first = |direction| match crate::endpoint::parse(endpoint, direction) {
        Ok(Endpoint::Tcp(tcp)) => resolve::tcp(&tcp.addr, direction, ipv6)
            .ok()
            .and_then(|a| a.into_iter().next())
            .map(super::listener::format_tcp),
        _ => None,
    };
    let Some(connect) = first(Direction::Connect) else {
        return Vec::new();
    };
    let mut forms = vec![connect];
    forms.extend(first(Direction::Bind).filter(|b| *b != forms[0]));
    forms
}

/// What to bind for `endpoint` (parsed with [`Direction::Bind`]). `ipv6` is ZMQ_IPV6.
pub fn bind_addr(endpoint: &Endpoint, ipv6: bool) -> io::Result<BindAddr> {
    match endpoint {
        Endpoint::Tcp(tcp) => {
            let addrs = resolve::tcp(&tcp.addr, Direction::Bind, ipv6)?;
            let addr = addrs
                .into_iter()
                .next()
                .ok_or_else(|| io::Error::from_raw_os_error(libc::ENODEV))?;
            Ok(BindAddr::Tcp(addr))
        }
        Endpoint::Ipc(IpcEndpoint::Path(p)) => Ok(BindAddr::Ipc(PathBuf::from(p))),
        Endpoint::Ipc(IpcEndpoint::Abstract(name)) => {
            Ok(BindAddr::IpcAbstract(name.as_bytes().to_vec()))
        }
        Endpoint::Ipc(IpcEndpoint::Wildcard) => Ok(BindAddr::Ipc(unique_ipc_path()?)),
        Endpoint::Inproc(_) => Err(not_stream_transport(endpoint)),
    }
}

/// A tcp endpoint that names a host: resolved again before every connection attempt, as
/// libzmq's connecter does, so a name that does not resolve yet (or moves) is retried.
#[derive(Clone, Debug)]
pub struct Resolve {
    endpoint: TcpEndpoint,
    ipv6: bool,
}

impl Resolve {
    /// The peer address (the first one, IPv4 preferred unless ZMQ_IPV6) and the source
    /// address to bind, if any. Blocks in the system resolver, as libzmq's I/O thread does.
    pub fn resolve(&self) -> io::Result<(SockAddr, Option<SockAddr>)> {
        resolve_tcp(&self.endpoint, self.ipv6)
    }
}

fn resolve_tcp(tcp: &TcpEndpoint, ipv6: bool) -> io::Result<(SockAddr, Option<SockAddr>)> {
    let addr = resolve::tcp(&tcp.addr, Direction::Connect, ipv6)?
        .into_iter()
        .next()
        .ok_or_else(|| io::Error::from_raw_os_error(libc::EHOSTUNREACH))?;
    let source = match &tcp.source {
        Some(src) => {
            let s = resolve::tcp(src, Direction::Bind, ipv6)?
                .into_iter()
                .find(|s| s.is_ipv4() == addr.is_ipv4())
                .ok_or_else(|| io::Error::from_raw_os_error(libc::EADDRNOTAVAIL))?;
            Some(SockAddr::from(s))
        }
        None => None,
    };
    Ok((addr.into(), source))
}

/// Where to connect for `endpoint` (parsed with [`Direction::Connect`]); never fails for a
/// tcp endpoint that parsed. Literal addresses are resolved now; an endpoint with a host or
/// interface *name*, or one that does not resolve, is left to the session, which resolves it
/// before each attempt ([`ConnectTarget::resolve`]) and retries a failure: libzmq's
/// `zmq_connect` checks only the syntax of a tcp address.
pub fn connect_target(endpoint: &Endpoint, ipv6: bool) -> io::Result<ConnectTarget> {
    let text = endpoint.to_string();
    match endpoint {
        Endpoint::Tcp(tcp) => {
            let named = |a: &crate::endpoint::TcpAddr| matches!(a.host, Host::Name(_));
            let fixed = if named(&tcp.addr) || tcp.source.as_ref().is_some_and(named) {
                None
            } else {
                // Literal addresses resolve without the network; one that does not (an
                // unknown IPv6 zone, a source of the other family) is retried like a name.
                resolve_tcp(tcp, ipv6).ok()
            };
            Ok(match fixed {
                Some((addr, source)) => ConnectTarget {
                    endpoint: text,
                    addr,
                    tcp: true,
                    source,
                    resolve: None,
                },
                None => ConnectTarget {
                    endpoint: text,
                    // Stands in until the first resolution; never connected to as it is.
                    addr: std::net::SocketAddr::from(([0, 0, 0, 0], tcp.addr.port)).into(),
                    tcp: true,
                    source: None,
                    resolve: Some(Resolve {
                        endpoint: tcp.clone(),
                        ipv6,
                    }),
                },
            })
        }
        Endpoint::Ipc(IpcEndpoint::Path(p)) => Ok(ConnectTarget {
            endpoint: text,
            addr: SockAddr::unix(p)?,
            tcp: false,
            source: None,
            resolve: None,
        }),
        Endpoint::Ipc(IpcEndpoint::Abstract(name)) => {
            let mut raw = vec![0u8];
            raw.extend_from_slice(name.as_bytes());
            let path = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(&raw);
            Ok(ConnectTarget {
                endpoint: text,
                addr: SockAddr::unix(path)?,
                tcp: false,
                source: None,
                resolve: None,
            })
        }
        Endpoint::Ipc(IpcEndpoint::Wildcard) | Endpoint::Inproc(_) => {
            Err(not_stream_transport(endpoint))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::endpoint::parse;

    #[test]
    fn an_ipc_wildcard_dir_is_the_first_temp_variable_naming_a_directory() {
        let here = std::env::current_dir().unwrap();
        let env = |pairs: Vec<(&'static str, std::path::PathBuf)>| {
            move |v: &str| {
                pairs
                    .iter()
                    .find(|(k, _)| *k == v)
                    .map(|(_, p)| p.clone().into_os_string())
            }
        };
        let none = here.join("no-such-directory-here");
        assert_eq!(wildcard_dir(env(vec![])), PathBuf::from("/tmp"));
        assert_eq!(
            wildcard_dir(env(vec![("TMPDIR", none.clone()), ("TMP", here.clone())])),
            here
        );
        assert_eq!(
            wildcard_dir(env(vec![("TEMPDIR", here.clone()), ("TMPDIR", none)])),
            here
        );
    }

    #[test]
    fn wildcards_and_sources_resolve() {
        let ep = parse("tcp://*:*", Direction::Bind).unwrap();
        assert_eq!(
            bind_addr(&ep, false).unwrap(),
            BindAddr::Tcp("0.0.0.0:0".parse().unwrap())
        );
        let ep = parse("ipc://*", Direction::Bind).unwrap();
        match bind_addr(&ep, false).unwrap() {
            BindAddr::Ipc(p) => {
                assert!(p.parent().unwrap().is_dir());
                std::fs::remove_dir(p.parent().unwrap()).unwrap();
            }
            other => panic!("{other:?}"),
        }
        let ep = parse("tcp://127.0.0.1:0;127.0.0.1:5555", Direction::Connect).unwrap();
        let t = connect_target(&ep, false).unwrap();
        assert_eq!(
            t.addr.as_socket().unwrap(),
            "127.0.0.1:5555".parse().unwrap()
        );
        assert_eq!(
            t.source.unwrap().as_socket().unwrap(),
            "127.0.0.1:0".parse().unwrap()
        );
        let ep = parse("ipc://@zeroring-abstract", Direction::Connect).unwrap();
        let t = connect_target(&ep, false).unwrap();
        assert_eq!(
            t.addr.as_abstract_namespace(),
            Some(&b"zeroring-abstract"[..])
        );
        assert!(bind_addr(&parse("inproc://x", Direction::Bind).unwrap(), false).is_err());
    }

    #[test]
    fn names_resolve_at_each_attempt_not_at_connect() {
        let ep = parse("tcp://no-such-host.invalid:5555", Direction::Connect).unwrap();
        let t = connect_target(&ep, false).expect("a name that does not resolve is no error yet");
        assert!(t.resolve.expect("resolved later").resolve().is_err());
        let ep = parse("tcp://localhost:5555", Direction::Connect).unwrap();
        let t = connect_target(&ep, false).unwrap();
        let (addr, source) = t.resolve.expect("resolved later").resolve().unwrap();
        assert!(addr.as_socket().unwrap().ip().is_loopback());
        assert_eq!(addr.as_socket().unwrap().port(), 5555);
        assert!(source.is_none());
        // Literal addresses need no resolver...
        let ep = parse("tcp://127.0.0.1:5555", Direction::Connect).unwrap();
        assert!(connect_target(&ep, false).unwrap().resolve.is_none());
        // ...unless they do not resolve (no such zone): retried too, as libzmq.
        let ep = parse("tcp://[fe80::1%no-such-if0]:5555", Direction::Connect).unwrap();
        let t = connect_target(&ep, true).expect("retried, not refused");
        assert!(t.resolve.expect("resolved later").resolve().is_err());
    }
}
