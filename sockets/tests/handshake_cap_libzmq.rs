//! ZR_MAX_HANDSHAKES against real libzmq clients: a burst of libzmq 4.3 PUSH sockets (the `zmq`
//! crate) far past a zeroring PULL's cap. The gate refuses the newcomers while every handshake
//! under way is younger than its fresh grace, and evicts the oldest that are not; a refused or
//! evicted libzmq client has sent nothing but its greeting (the PULL's READY waits for the
//! client's), so it reconnects after its RECONNECT_IVL with its message still queued, and every
//! message arrives exactly once.

use std::time::Instant;

use zeroring::options::num;
use zeroring::{Context, SocketType};

#[path = "common/hostile.rs"]
mod common;
use common::receive_burst;

const CLIENTS: usize = 300;
const CAP: i32 = 8;

#[test]
fn a_burst_of_libzmq_clients_past_the_cap_is_served_whole() {
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_option(num::ZR_MAX_HANDSHAKES, &CAP.to_ne_bytes())
        .unwrap();
    pull.set_rcvtimeo(30_000).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = pull.get_last_endpoint().unwrap().unwrap();

    let zctx = zmq::Context::new();
    let started = Instant::now();
    let pushes: Vec<zmq::Socket> = (0..CLIENTS)
        .map(|i| {
            let s = zctx.socket(zmq::PUSH).unwrap();
            s.set_linger(0).unwrap();
            s.connect(&endpoint).unwrap();
            s.send(i.to_string().as_bytes(), 0).unwrap();
            s
        })
        .collect();

    receive_burst(&pull, CLIENTS);
    let counts = pull.handshakes();
    println!(
        "{CLIENTS} libzmq PUSH clients into a cap of {CAP}: all served in {:?}; {counts:?}",
        started.elapsed()
    );
    assert!(counts.peak <= CAP as usize, "{counts:?}");
    assert!(
        counts.evicted + counts.refused > 0,
        "the burst should have met the cap: {counts:?}"
    );
    // Nothing more comes: each client's one message arrived once.
    pull.set_rcvtimeo(200).unwrap();
    assert!(pull.recv_bytes(0).is_err());
    drop(pushes);
}
