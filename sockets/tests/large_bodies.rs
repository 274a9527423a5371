//! Large frame bodies arrive whole and in order over tcp and ipc: split across receive
//! buffers, assembled in pooled blocks up to 64 KiB and received straight into them (the
//! stream lends the body to a receive when at least 16 KiB of it is still to come), larger
//! ones in the decoder's buffer; with the receiver's pipe filling up mid-body (the receive
//! is cancelled and the body taken back partial), and from libzmq as the sender. Bodies of
//! 32 KiB and more are also the sender's streamed copies (`engine::stream_copy`).
//!
//! Runs on the backend the environment chooses; CI runs the suite again with
//! `ZERORING_BACKEND=epoll`.

use zeroring::{Context, Socket, SocketType};

const LIMIT_MS: i32 = 20_000;

/// Sizes around the thresholds: the inline size, the encoder's copy threshold, one receive
/// buffer (16 KiB, the lending minimum), the sender's streamed copy (32 KiB and up, written
/// past the cache for a tcp/ipc pipe), the pools' largest class (64 KiB), and beyond.
const SIZES: [usize; 14] = [
    39,
    2049,
    16 * 1024 - 10,
    16 * 1024 + 1,
    20_000,
    32 * 1024 - 1,
    32 * 1024,
    40_000,
    65_535,
    65_536,
    65_537,
    100_000,
    300_000,
    1 << 20,
];

/// The body of message `seq`, part `part`: its own bytes, so a misplaced byte shows.
fn body(seq: usize, part: usize, size: usize) -> Vec<u8> {
    (0..size)
        .map(|i| (i.wrapping_mul(31) ^ seq.wrapping_mul(7) ^ part) as u8)
        .collect()
}

fn sock(ctx: &Context, t: SocketType) -> Socket {
    let s = ctx.socket(t).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(LIMIT_MS).unwrap();
    s.set_sndtimeo(LIMIT_MS).unwrap();
    s
}

fn endpoints(tag: &str) -> Vec<String> {
    let dir = std::env::temp_dir().join(format!("zr-large-{tag}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    vec![
        "tcp://127.0.0.1:*".to_string(),
        format!("ipc://{}/s", dir.display()),
    ]
}

/// Message `seq` of the stream: one part, or two (a small one, then a large one) every third.
fn message(seq: usize) -> Vec<Vec<u8>> {
    let size = SIZES[seq % SIZES.len()];
    if seq % 3 == 0 {
        vec![body(seq, 0, 10), body(seq, 1, size)]
    } else {
        vec![body(seq, 0, size)]
    }
}

fn check(pull: &Socket, seq: usize, endpoint: &str) {
    for (part, want) in message(seq).iter().enumerate() {
        let got = pull.recv_bytes(0).unwrap_or_else(|e| {
            panic!("{endpoint}: message {seq} part {part} did not arrive: {e}")
        });
        assert!(
            got[..] == want[..],
            "{endpoint}: message {seq} part {part}: {} bytes, {} expected, first difference at {:?}",
            got.len(),
            want.len(),
            got.iter().zip(want.iter()).position(|(a, b)| a != b)
        );
        assert_eq!(pull.get_rcvmore().unwrap(), part + 1 < message(seq).len());
    }
}

const COUNT: usize = 120;

/// Sends the stream from a zeroring PUSH in a thread of its own and checks every message at
/// a PULL with `rcvhwm` (when given), on every transport.
fn stream_through(tag: &str, rcvhwm: Option<i32>) {
    for endpoint in endpoints(tag) {
        let ctx = Context::new();
        let pull = sock(&ctx, SocketType::Pull);
        if let Some(hwm) = rcvhwm {
            pull.set_rcvhwm(hwm).unwrap();
        }
        pull.bind(&endpoint).unwrap();
        let ep = pull.get_last_endpoint().unwrap().unwrap();
        let push = sock(&ctx, SocketType::Push);
        push.connect(&ep).unwrap();
        let sender = std::thread::spawn(move || {
            for seq in 0..COUNT {
                let parts = message(seq);
                for (i, p) in parts.iter().enumerate() {
                    let flags = if i + 1 < parts.len() {
                        zeroring::SNDMORE
                    } else {
                        0
                    };
                    push.send(&p[..], flags).unwrap();
                }
            }
            push
        });
        for seq in 0..COUNT {
            check(&pull, seq, &endpoint);
        }
        drop(sender.join().unwrap());
    }
}

#[test]
fn large_bodies_arrive_whole_and_in_order() {
    stream_through("order", None);
}

/// A receiver with RCVHWM 2 falls behind a sender that never waits: its stream pauses (and
/// cancels its receive) again and again, with large bodies under way.
#[test]
fn large_bodies_survive_a_receiver_that_pauses() {
    stream_through("pause", Some(2));
}

/// libzmq 4.3 sends the same stream: its frames split where its batches end, not where
/// zeroring's would.
#[test]
fn large_bodies_from_libzmq_arrive_whole_and_in_order() {
    for endpoint in endpoints("libzmq") {
        let ctx = Context::new();
        let pull = sock(&ctx, SocketType::Pull);
        pull.bind(&endpoint).unwrap();
        let ep = pull.get_last_endpoint().unwrap().unwrap();
        let sender = std::thread::spawn(move || {
            let lctx = zmq::Context::new();
            let push = lctx.socket(zmq::PUSH).unwrap();
            push.set_linger(LIMIT_MS).unwrap();
            push.set_sndtimeo(LIMIT_MS).unwrap();
            push.connect(&ep).unwrap();
            for seq in 0..COUNT {
                let parts = message(seq);
                for (i, p) in parts.iter().enumerate() {
                    let flags = if i + 1 < parts.len() { zmq::SNDMORE } else { 0 };
                    push.send(&p[..], flags).unwrap();
                }
            }
        });
        for seq in 0..COUNT {
            check(&pull, seq, &endpoint);
        }
        sender.join().unwrap();
    }
}

/// A hand-written ZMTP 3.0 PUSH peer over a plain tcp stream (NULL mechanism), so that the
/// test decides where the bytes of a frame are cut.
fn raw_push(ep: &str) -> std::net::TcpStream {
    use std::io::Write;
    let addr = ep.trim_start_matches("tcp://");
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let mut greeting = vec![0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0x7F, 3, 0];
    let mut mechanism = [0u8; 20];
    mechanism[..4].copy_from_slice(b"NULL");
    greeting.extend_from_slice(&mechanism);
    greeting.push(0); // as-server
    greeting.extend_from_slice(&[0; 31]);
    let mut ready = vec![5];
    ready.extend_from_slice(b"READY");
    ready.push(11);
    ready.extend_from_slice(b"Socket-Type");
    ready.extend_from_slice(&4u32.to_be_bytes());
    ready.extend_from_slice(b"PUSH");
    greeting.extend_from_slice(&[0x04, ready.len() as u8]);
    greeting.extend_from_slice(&ready);
    s.write_all(&greeting).unwrap();
    s
}

/// The header of a long (8-byte size) data frame.
fn long_header(size: usize) -> Vec<u8> {
    let mut h = vec![0x02];
    h.extend_from_slice(&(size as u64).to_be_bytes());
    h
}

/// A 60,000-byte body written in 2,000-byte pieces (the receiver's receives take what is
/// there: with the body lent, a receive may come back partial and be armed again), then a
/// frame cut short by the peer closing: the whole one arrives, the cut one never does, and
/// the socket goes on with its next peer.
#[test]
fn a_body_that_trickles_in_arrives_whole_and_a_cut_one_never_does() {
    use std::io::Write;
    let ctx = Context::new();
    let pull = sock(&ctx, SocketType::Pull);
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let ep = pull.get_last_endpoint().unwrap().unwrap();
    let whole = body(1, 0, 60_000);
    let mut peer = raw_push(&ep);
    peer.write_all(&long_header(whole.len())).unwrap();
    for piece in whole.chunks(2000) {
        peer.write_all(piece).unwrap();
        std::thread::yield_now();
    }
    let got = pull.recv_bytes(0).expect("the trickled body");
    assert!(
        got == whole,
        "{} bytes, first difference at {:?}",
        got.len(),
        got.iter().zip(whole.iter()).position(|(a, b)| a != b)
    );
    // Cut short: 30,000 of 60,000 bytes, then the peer goes.
    peer.write_all(&long_header(60_000)).unwrap();
    peer.write_all(&body(2, 0, 30_000)).unwrap();
    drop(peer);
    // The next peer's message is the next one the socket gives.
    let push = sock(&ctx, SocketType::Push);
    push.connect(&ep).unwrap();
    push.send(&b"after"[..], 0).unwrap();
    assert_eq!(pull.recv_bytes(0).unwrap(), b"after");
    pull.set_rcvtimeo(0).unwrap();
    assert!(pull.recv_bytes(0).is_err(), "nothing of the cut frame");
}
