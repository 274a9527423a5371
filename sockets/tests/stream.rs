//! STREAM sockets with plain TCP peers (no ZMTP on the wire), both accepting and connecting:
//! connect/disconnect notifications, `[id, data]` framing, closing a peer with an empty part,
//! EHOSTUNREACH for an unknown id; and where libzmq 4.3 differs from a naive STREAM: a
//! connecter keeps its routing id across reconnects, a connection closed by the socket
//! itself (an empty part, unbind, disconnect) is not announced as gone, STREAM_NOTIFY 0 announces nothing — each checked on
//! zeroring and on libzmq (the `zmq` crate) with the same script.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use zeroring::options::num;
use zeroring::{Context, Error, SocketType, SNDMORE};

fn stream(ctx: &Context) -> zeroring::Socket {
    let s = ctx.socket(SocketType::Stream).unwrap();
    s.set_rcvtimeo(10_000).unwrap();
    s.set_linger(0).unwrap();
    s
}

/// A bound STREAM socket, its address, and a plain TCP client connected to it (reads time out
/// after 10 s).
fn bound_with_client(ctx: &Context) -> (zeroring::Socket, String, TcpStream) {
    let s = stream(ctx);
    s.bind("tcp://127.0.0.1:*").unwrap();
    let addr = s.get_last_endpoint().unwrap().unwrap();
    let client = TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    (s, addr, client)
}

#[test]
fn accepted_raw_peer_round_trip_and_close() {
    let ctx = Context::new();
    let (s, addr, mut client) = bound_with_client(&ctx);

    let hello = s.recv_multipart(0).unwrap();
    assert_eq!(hello.len(), 2);
    assert!(
        hello[1].is_empty(),
        "a connection is announced with an empty part"
    );
    let id = hello[0].clone();
    assert_eq!(id.len(), 5, "generated ids are 5 bytes, as libzmq's");

    client.write_all(b"GET /\r\n").unwrap();
    let mut got = Vec::new();
    while got.len() < 7 {
        let m = s.recv_multipart(0).unwrap();
        assert_eq!(m[0], id, "data carries its peer's id");
        got.extend_from_slice(&m[1]);
    }
    assert_eq!(got, b"GET /\r\n");

    s.send(&id[..], SNDMORE).unwrap();
    s.send("200 OK", 0).unwrap();
    let mut reply = [0u8; 6];
    client.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"200 OK");

    // An empty part closes the connection; a connection we closed ourselves is not
    // announced as gone (libzmq terminates the pipe): the next notice is a new peer's.
    s.send(&id[..], SNDMORE).unwrap();
    s.send("", 0).unwrap();
    let mut rest = Vec::new();
    assert_eq!(client.read_to_end(&mut rest).unwrap(), 0, "peer sees EOF");
    let _second = TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
    let next = s.recv_multipart(0).unwrap();
    assert_ne!(
        next[0], id,
        "no departure notice for a connection we closed"
    );
    assert!(next[1].is_empty());

    // Sending to it now fails like sending to any unknown id.
    assert_eq!(s.send(&id[..], SNDMORE), Err(Error::EHOSTUNREACH));
}

#[test]
fn connecting_stream_talks_to_a_plain_server() {
    let ctx = Context::new();
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = stream(&ctx);
    s.connect(&format!("tcp://{}", server.local_addr().unwrap()))
        .unwrap();
    let (mut peer, _) = server.accept().unwrap();
    peer.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let hello = s.recv_multipart(0).unwrap();
    let id = hello[0].clone();
    assert!(hello[1].is_empty());
    s.send(&id[..], SNDMORE).unwrap();
    s.send("ping", 0).unwrap();
    let mut buf = [0u8; 4];
    peer.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"ping");
    peer.write_all(b"pong").unwrap();
    assert_eq!(
        s.recv_multipart(0).unwrap(),
        vec![id.clone(), b"pong".to_vec()]
    );
    // The server going away is announced too.
    drop(peer);
    assert_eq!(s.recv_multipart(0).unwrap(), vec![id, vec![]]);
}

#[test]
fn stream_notify_off_suppresses_the_notices() {
    let ctx = Context::new();
    let s = stream(&ctx);
    s.set_option(num::STREAM_NOTIFY, &0i32.to_ne_bytes())
        .unwrap();
    s.bind("tcp://127.0.0.1:*").unwrap();
    let addr = s.get_last_endpoint().unwrap().unwrap();
    let addr = addr.trim_start_matches("tcp://");
    let mut a = TcpStream::connect(addr).unwrap();
    a.write_all(b"abc").unwrap();
    let m = s.recv_multipart(0).unwrap();
    assert_eq!(m[1], b"abc", "no arrival notice before the data");
    let first = m[0].clone();
    drop(a);
    let mut b = TcpStream::connect(addr).unwrap();
    b.write_all(b"xyz").unwrap();
    let m = s.recv_multipart(0).unwrap();
    assert_ne!(m[0], first, "no departure notice for the first peer");
    assert_eq!(m[1], b"xyz");
}

#[test]
fn a_connecting_stream_keeps_its_routing_id_across_reconnects() {
    let ctx = Context::new();
    let s = stream(&ctx);
    s.set_reconnect_ivl(20).unwrap();
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    s.connect(&format!("tcp://{}", server.local_addr().unwrap()))
        .unwrap();
    let (conn, _) = server.accept().unwrap();
    let hello = s.recv_multipart(0).unwrap();
    assert!(hello[1].is_empty());
    let id = hello[0].clone();
    drop(conn);
    assert_eq!(
        s.recv_multipart(0).unwrap(),
        vec![id.clone(), vec![]],
        "departure"
    );
    let (mut conn, _) = server.accept().unwrap();
    assert_eq!(
        s.recv_multipart(0).unwrap(),
        vec![id.clone(), vec![]],
        "the reconnection is announced under the same id"
    );
    conn.write_all(b"again").unwrap();
    assert_eq!(s.recv_multipart(0).unwrap(), vec![id, b"again".to_vec()]);
}

/// The reconnect script on libzmq's STREAM: the same id for every connection of one connect.
#[test]
fn libzmq_keeps_the_id_across_reconnects_too() {
    let zctx = zmq::Context::new();
    let s = zctx.socket(zmq::STREAM).unwrap();
    s.set_rcvtimeo(10_000).unwrap();
    s.set_linger(0).unwrap();
    s.set_reconnect_ivl(20).unwrap();
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    s.connect(&format!("tcp://{}", server.local_addr().unwrap()))
        .unwrap();
    let (conn, _) = server.accept().unwrap();
    let hello = s.recv_multipart(0).unwrap();
    assert!(hello[1].is_empty());
    drop(conn);
    assert_eq!(s.recv_multipart(0).unwrap(), vec![hello[0].clone(), vec![]]);
    let (_conn, _) = server.accept().unwrap();
    assert_eq!(s.recv_multipart(0).unwrap(), vec![hello[0].clone(), vec![]]);
}

/// The self-close script on libzmq's STREAM: no departure notice; the next notice is the
/// next peer's.
#[test]
fn libzmq_does_not_announce_a_connection_it_closed() {
    let zctx = zmq::Context::new();
    let s = zctx.socket(zmq::STREAM).unwrap();
    s.set_rcvtimeo(10_000).unwrap();
    s.set_linger(0).unwrap();
    s.bind("tcp://127.0.0.1:*").unwrap();
    let addr = s.get_last_endpoint().unwrap().unwrap();
    let addr = addr.trim_start_matches("tcp://").to_string();
    let _first = TcpStream::connect(&addr).unwrap();
    let hello = s.recv_multipart(0).unwrap();
    s.send(&hello[0][..], zmq::SNDMORE).unwrap();
    s.send(&b""[..], 0).unwrap();
    let _second = TcpStream::connect(&addr).unwrap();
    let next = s.recv_multipart(0).unwrap();
    assert_ne!(next[0], hello[0], "no departure notice for the closed one");
    assert!(next[1].is_empty());
}

/// Connections the socket ends by `unbind` or `disconnect` are not announced as gone either
/// (libzmq's raw engine announces only the ends it did not choose): the next message after
/// each is a new connection's notice.
#[test]
fn unbind_and_disconnect_announce_no_departure() {
    let ctx = Context::new();
    let (s, addr, _client) = bound_with_client(&ctx);
    let hello = s.recv_multipart(0).unwrap();
    s.unbind(&addr).unwrap();
    s.bind("tcp://127.0.0.1:*").unwrap();
    let addr2 = s.get_last_endpoint().unwrap().unwrap();
    let _client2 = TcpStream::connect(addr2.trim_start_matches("tcp://")).unwrap();
    let next = s.recv_multipart(0).unwrap();
    assert_ne!(next[0], hello[0], "no departure notice after unbind");
    assert!(next[1].is_empty());

    let servers = [
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    ];
    let eps: Vec<String> = servers
        .iter()
        .map(|l| format!("tcp://{}", l.local_addr().unwrap()))
        .collect();
    s.connect(&eps[0]).unwrap();
    let _a = servers[0].accept().unwrap();
    let first = s.recv_multipart(0).unwrap();
    assert!(first[1].is_empty());
    s.disconnect(&eps[0]).unwrap();
    s.connect(&eps[1]).unwrap();
    let _b = servers[1].accept().unwrap();
    let next = s.recv_multipart(0).unwrap();
    assert_ne!(next[0], first[0], "no departure notice after disconnect");
    assert!(next[1].is_empty());
}

#[test]
fn libzmq_announces_no_departure_after_unbind_or_disconnect() {
    let zctx = zmq::Context::new();
    let s = zctx.socket(zmq::STREAM).unwrap();
    s.set_rcvtimeo(10_000).unwrap();
    s.set_linger(0).unwrap();
    s.bind("tcp://127.0.0.1:*").unwrap();
    let addr = s.get_last_endpoint().unwrap().unwrap();
    let _client = TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
    let hello = s.recv_multipart(0).unwrap();
    s.unbind(&addr).unwrap();
    s.bind("tcp://127.0.0.1:*").unwrap();
    let addr2 = s.get_last_endpoint().unwrap().unwrap();
    let _client2 = TcpStream::connect(addr2.trim_start_matches("tcp://")).unwrap();
    let next = s.recv_multipart(0).unwrap();
    assert_ne!(next[0], hello[0], "no departure notice after unbind");
    assert!(next[1].is_empty());

    let servers = [
        TcpListener::bind("127.0.0.1:0").unwrap(),
        TcpListener::bind("127.0.0.1:0").unwrap(),
    ];
    let eps: Vec<String> = servers
        .iter()
        .map(|l| format!("tcp://{}", l.local_addr().unwrap()))
        .collect();
    s.connect(&eps[0]).unwrap();
    let _a = servers[0].accept().unwrap();
    let first = s.recv_multipart(0).unwrap();
    assert!(first[1].is_empty());
    s.disconnect(&eps[0]).unwrap();
    s.connect(&eps[1]).unwrap();
    let _b = servers[1].accept().unwrap();
    let next = s.recv_multipart(0).unwrap();
    assert_ne!(next[0], first[0], "no departure notice after disconnect");
    assert!(next[1].is_empty());
}

/// The connect notification and every chunk carry the connection's Peer-Address, and the id
/// generated for an accepted peer becomes the socket's own ROUTING_ID (libzmq's
/// `stream_t::identify_peer`; test_stream and test_stream_disconnect rely on both).
#[test]
fn notices_carry_peer_address_and_routing_id_follows_the_new_peer() {
    let ctx = Context::new();
    let s = stream(&ctx);
    s.bind("tcp://127.0.0.1:*").unwrap();
    let addr = s.get_last_endpoint().unwrap().unwrap();
    let mut client = TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
    let id = s.recv_msg(0).unwrap();
    assert!(id.more());
    assert_eq!(id.gets("Peer-Address"), Some(&b"127.0.0.1"[..]));
    assert!(s.recv_msg(0).unwrap().is_empty());
    assert_eq!(s.get_routing_id().unwrap(), id.data());
    client.write_all(b"x").unwrap();
    let chunk_id = s.recv_msg(0).unwrap();
    assert_eq!(chunk_id.data(), id.data());
    assert_eq!(chunk_id.gets("Peer-Address"), Some(&b"127.0.0.1"[..]));
    assert_eq!(s.recv_msg(0).unwrap().data(), b"x");
}

/// The same on libzmq's STREAM.
#[test]
fn libzmq_notices_carry_peer_address_and_routing_id_follows_the_new_peer() {
    let zctx = zmq::Context::new();
    let s = zctx.socket(zmq::STREAM).unwrap();
    s.set_rcvtimeo(10_000).unwrap();
    s.set_linger(0).unwrap();
    s.bind("tcp://127.0.0.1:*").unwrap();
    let addr = s.get_last_endpoint().unwrap().unwrap();
    let mut client = TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
    let mut id = s.recv_msg(0).unwrap();
    assert!(id.get_more());
    assert_eq!(id.gets("Peer-Address"), Some("127.0.0.1"));
    assert!(s.recv_msg(0).unwrap().is_empty());
    assert_eq!(s.get_identity().unwrap(), &id[..]);
    client.write_all(b"x").unwrap();
    let mut chunk_id = s.recv_msg(0).unwrap();
    assert_eq!(&chunk_id[..], &id[..]);
    assert_eq!(chunk_id.gets("Peer-Address"), Some("127.0.0.1"));
    assert_eq!(&s.recv_msg(0).unwrap()[..], b"x");
}

/// libzmq's test_connect_rid (test_stream_2_stream): a connecting STREAM that named its peer
/// with CONNECT_ROUTING_ID can send to it right after `connect` (libzmq attaches the pipe at
/// connect, IMMEDIATE off); the bytes go out once the connection is up.
#[test]
fn a_peer_named_at_connect_can_be_sent_to_at_once() {
    let ctx = Context::new();
    let server = stream(&ctx);
    server
        .set_option(num::STREAM_NOTIFY, &0i32.to_ne_bytes())
        .unwrap();
    server.bind("tcp://127.0.0.1:*").unwrap();
    let ep = server.get_last_endpoint().unwrap().unwrap();
    let client = stream(&ctx);
    client.set_connect_routing_id(b"conn1").unwrap();
    client.connect(&ep).unwrap();
    client.send("conn1", SNDMORE).unwrap();
    client.send("hi 1", 0).unwrap();
    let m = server.recv_multipart(0).unwrap();
    assert_eq!(m[0][0], 0, "a generated id");
    assert_eq!(m[1], b"hi 1");
    // The client announced its peer when it attached it, under the name it gave.
    let notice = client.recv_multipart(0).unwrap();
    assert_eq!(notice, vec![b"conn1".to_vec(), Vec::new()]);
}

/// A STREAM socket writes each body as it is, whatever it is held as: inline (small), a pooled
/// block (copied up to 64 KiB, sent by the block), or shared bytes (larger): the raw peer reads
/// them back to back, in order.
#[test]
fn bodies_of_every_kind_reach_a_raw_peer_in_order() {
    let ctx = Context::new();
    let (s, _, mut client) = bound_with_client(&ctx);
    let id = s.recv_multipart(0).unwrap()[0].clone();

    let sizes = [5usize, 30, 1000, 3000, 40_000, 65_536, 200_000, 7];
    let mut want = Vec::new();
    for (k, &n) in sizes.iter().enumerate() {
        let body: Vec<u8> = (0..n).map(|i| (i * 31 + k * 7) as u8).collect();
        s.send(&id[..], SNDMORE).unwrap();
        s.send(&body[..], 0).unwrap();
        want.extend_from_slice(&body);
    }
    let mut got = vec![0u8; want.len()];
    client.read_exact(&mut got).unwrap();
    assert!(got == want, "the raw peer read the bodies back to back");
}
