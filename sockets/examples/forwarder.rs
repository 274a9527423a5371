//! A PUB/SUB forwarder (the zguide's weather proxy): XSUB ← publisher, XPUB → subscribers,
//! `zeroring::proxy` between them, so subscriptions travel upstream and messages downstream.
//!
//! Run: `cargo run -p zeroring --example forwarder`

use std::thread;

use zeroring::{Context, SocketType};

fn main() -> zeroring::Result<()> {
    let ctx = Context::new();
    let publisher = ctx.socket(SocketType::Pub)?;
    publisher.bind("tcp://127.0.0.1:*")?;
    let upstream = publisher.get_last_endpoint()?.expect("a tcp endpoint");

    let frontend = ctx.socket(SocketType::XSub)?;
    frontend.connect(&upstream)?;
    let backend = ctx.socket(SocketType::XPub)?;
    backend.bind("tcp://127.0.0.1:*")?;
    let downstream = backend.get_last_endpoint()?.expect("a tcp endpoint");
    let forwarder = thread::spawn(move || zeroring::proxy(&frontend, &backend, None));

    let subscriber = ctx.socket(SocketType::Sub)?;
    subscriber.set_subscribe(b"10001 ")?;
    subscriber.set_rcvtimeo(50)?;
    subscriber.connect(&downstream)?;
    // The subscription reaches the publisher through the forwarder; publish until it shows.
    let mut got = Vec::new();
    let mut n = 0u32;
    while got.len() < 5 {
        publisher.send(format!("10001 {n} degrees"), 0)?;
        publisher.send(format!("20002 {n} degrees"), 0)?;
        n += 1;
        if let Ok(m) = subscriber.recv_string(0) {
            got.push(m.unwrap_or_default());
        }
    }
    for m in &got {
        println!("{m}");
    }
    ctx.shutdown();
    let _ = forwarder.join();
    Ok(())
}
