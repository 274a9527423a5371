//! ZMQ_SOCKS_PROXY: a zeroring socket reaches a libzmq peer through a SOCKS5 proxy (a small
//! RFC 1928/1929 proxy run by the test), by address and by name, with and without
//! username/password; the proxy records what it was asked.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use zeroring::options::num;
use zeroring::{Context, SocketType};

const TIMEOUT_MS: i32 = 10_000;

/// What the proxy was asked.
#[derive(Debug, PartialEq, Eq)]
struct Asked {
    /// ATYP and the address bytes as sent (1: 4 bytes, 3: the name).
    atyp: u8,
    host: Vec<u8>,
    port: u16,
    credentials: Option<(Vec<u8>, Vec<u8>)>,
}

fn read_n(s: &mut TcpStream, n: usize) -> Vec<u8> {
    let mut b = vec![0; n];
    s.read_exact(&mut b).unwrap();
    b
}

/// A SOCKS5 proxy for one connection: answers the exchange, connects on, relays both ways.
fn proxy(require: Option<(&'static [u8], &'static [u8])>) -> (SocketAddr, mpsc::Receiver<Asked>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let (mut c, _) = listener.accept().unwrap();
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let head = read_n(&mut c, 2);
        assert_eq!(head[0], 5, "SOCKS version");
        let methods = read_n(&mut c, head[1] as usize);
        let mut credentials = None;
        if let Some((user, pass)) = require {
            assert!(methods.contains(&2), "username/password offered");
            c.write_all(&[5, 2]).unwrap();
            let v = read_n(&mut c, 2);
            assert_eq!(v[0], 1);
            let u = read_n(&mut c, v[1] as usize);
            let plen = read_n(&mut c, 1)[0];
            let p = read_n(&mut c, plen as usize);
            let ok = u == user && p == pass;
            c.write_all(&[1, if ok { 0 } else { 1 }]).unwrap();
            credentials = Some((u, p));
            if !ok {
                return;
            }
        } else {
            assert!(methods.contains(&0));
            c.write_all(&[5, 0]).unwrap();
        }
        let req = read_n(&mut c, 4);
        assert_eq!(&req[..3], &[5, 1, 0], "CONNECT");
        let host = match req[3] {
            1 => read_n(&mut c, 4),
            3 => {
                let n = read_n(&mut c, 1)[0];
                read_n(&mut c, n as usize)
            }
            other => panic!("ATYP {other}"),
        };
        let port = u16::from_be_bytes(read_n(&mut c, 2).try_into().unwrap());
        let server = match req[3] {
            1 => TcpStream::connect((
                std::net::Ipv4Addr::new(host[0], host[1], host[2], host[3]),
                port,
            )),
            _ => TcpStream::connect((String::from_utf8(host.clone()).unwrap().as_str(), port)),
        }
        .unwrap();
        tx.send(Asked {
            atyp: req[3],
            host,
            port,
            credentials,
        })
        .unwrap();
        c.write_all(&[5, 0, 0, 1, 0, 0, 0, 0, 0, 0]).unwrap();
        c.set_read_timeout(None).unwrap();
        let (mut c2, mut s2) = (c.try_clone().unwrap(), server.try_clone().unwrap());
        thread::spawn(move || {
            let _ = std::io::copy(&mut c2, &mut s2);
            let _ = s2.shutdown(Shutdown::Write);
        });
        let (mut s, mut c) = (server, c);
        let _ = std::io::copy(&mut s, &mut c);
        let _ = c.shutdown(Shutdown::Write);
    });
    (addr, rx)
}

/// A libzmq ROUTER on loopback and its port.
fn libzmq_router(zctx: &zmq::Context) -> (zmq::Socket, u16) {
    let r = zctx.socket(zmq::ROUTER).unwrap();
    r.set_linger(0).unwrap();
    r.set_rcvtimeo(TIMEOUT_MS).unwrap();
    r.bind("tcp://127.0.0.1:*").unwrap();
    let ep = r.get_last_endpoint().unwrap().unwrap();
    let port = ep.rsplit(':').next().unwrap().parse().unwrap();
    (r, port)
}

fn round_trip(dealer: &zeroring::Socket, router: &zmq::Socket) {
    dealer.send("through the proxy", 0).unwrap();
    let m = router.recv_multipart(0).unwrap();
    assert_eq!(m[1], b"through the proxy");
    router
        .send_multipart([m[0].clone(), b"and back".to_vec()], 0)
        .unwrap();
    assert_eq!(dealer.recv_bytes(0).unwrap(), b"and back");
}

fn dealer(ctx: &Context, proxy: SocketAddr) -> zeroring::Socket {
    let d = ctx.socket(SocketType::Dealer).unwrap();
    d.set_linger(0).unwrap();
    d.set_rcvtimeo(TIMEOUT_MS).unwrap();
    d.set_option(num::SOCKS_PROXY, proxy.to_string().as_bytes())
        .unwrap();
    d
}

#[test]
fn a_dealer_reaches_a_libzmq_router_through_a_socks5_proxy() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let (router, port) = libzmq_router(&zctx);
    let (paddr, asked) = proxy(None);
    let d = dealer(&ctx, paddr);
    d.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    round_trip(&d, &router);
    assert_eq!(
        asked.recv_timeout(Duration::from_secs(10)).unwrap(),
        Asked {
            atyp: 1,
            host: vec![127, 0, 0, 1],
            port,
            credentials: None
        }
    );
}

#[test]
fn a_name_is_left_for_the_proxy_to_resolve_and_credentials_are_sent() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let (router, port) = libzmq_router(&zctx);
    let (paddr, asked) = proxy(Some((b"user", b"secret")));
    let d = dealer(&ctx, paddr);
    d.set_option(num::SOCKS_USERNAME, b"user").unwrap();
    d.set_option(num::SOCKS_PASSWORD, b"secret").unwrap();
    d.connect(&format!("tcp://localhost:{port}")).unwrap();
    round_trip(&d, &router);
    assert_eq!(
        asked.recv_timeout(Duration::from_secs(10)).unwrap(),
        Asked {
            atyp: 3,
            host: b"localhost".to_vec(),
            port,
            credentials: Some((b"user".to_vec(), b"secret".to_vec()))
        }
    );
}

#[test]
fn an_unresolvable_proxy_is_refused_at_connect() {
    let ctx = Context::new();
    let d = ctx.socket(SocketType::Dealer).unwrap();
    d.set_option(num::SOCKS_PROXY, b"not a proxy").unwrap();
    assert_eq!(
        d.connect("tcp://127.0.0.1:5555"),
        Err(zeroring::Error::EINVAL)
    );
    // ipc does not go through a proxy.
    let ipc = std::env::temp_dir().join(format!("zeroring-socks-{}.sock", std::process::id()));
    d.connect(&format!("ipc://{}", ipc.display())).unwrap();
}

#[test]
fn no_authentication_by_name() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let (router, port) = libzmq_router(&zctx);
    let (paddr, _asked) = proxy(None);
    let d = dealer(&ctx, paddr);
    d.connect(&format!("tcp://localhost:{port}")).unwrap();
    round_trip(&d, &router);
}

#[test]
fn username_password_by_address() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let (router, port) = libzmq_router(&zctx);
    let (paddr, _asked) = proxy(Some((b"u", b"p")));
    let d = dealer(&ctx, paddr);
    d.set_option(num::SOCKS_USERNAME, b"u").unwrap();
    d.set_option(num::SOCKS_PASSWORD, b"p").unwrap();
    d.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    round_trip(&d, &router);
}

/// libzmq's `source;proxy` form: bind a local address, then connect to the proxy
/// (test_socks_bind_before_connect).
#[test]
fn a_source_address_before_the_proxy_is_bound_first() {
    let ctx = Context::new();
    let zctx = zmq::Context::new();
    let (router, port) = libzmq_router(&zctx);
    let (paddr, asked) = proxy(None);
    let d = ctx.socket(SocketType::Dealer).unwrap();
    d.set_linger(0).unwrap();
    d.set_rcvtimeo(TIMEOUT_MS).unwrap();
    d.set_option(num::SOCKS_PROXY, format!("127.0.0.1:0;{paddr}").as_bytes())
        .unwrap();
    d.connect(&format!("tcp://127.0.0.1:{port}")).unwrap();
    round_trip(&d, &router);
    assert_eq!(
        asked.recv_timeout(Duration::from_secs(10)).unwrap().port,
        port
    );
    // A source that does not resolve is refused like a proxy that does not.
    let bad = ctx.socket(SocketType::Dealer).unwrap();
    bad.set_option(num::SOCKS_PROXY, format!("no such;{paddr}").as_bytes())
        .unwrap();
    assert_eq!(
        bad.connect(&format!("tcp://127.0.0.1:{port}")),
        Err(zeroring::Error::EINVAL)
    );
}
