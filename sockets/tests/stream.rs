//! STREAM sockets with plain TCP peers (no ZMTP on the wire), both accepting and connecting:
//! connect/disconnect notifications, `[id, data]` framing, closing a peer with an empty part,
//! EHOSTUNREACH for an unknown id.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use zeroring::{Context, Error, SocketType, SNDMORE};

fn stream(ctx: &Context) -> zeroring::Socket {
    let s = ctx.socket(SocketType::Stream).unwrap();
    s.set_rcvtimeo(10_000).unwrap();
    s.set_linger(0).unwrap();
    s
}

#[test]
fn accepted_raw_peer_round_trip_and_close() {
    let ctx = Context::new();
    let s = stream(&ctx);
    s.bind("tcp://127.0.0.1:*").unwrap();
    let addr = s.get_last_endpoint().unwrap().unwrap();
    let mut client = TcpStream::connect(addr.trim_start_matches("tcp://")).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();

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
