//! A quick inproc REQ/REP round-trip and PUSH/PULL throughput check (not a benchmark harness:
//! that is `perf/`). Run in release: `cargo run --release -p zeroring --example inproc_latency`.

use std::thread;
use std::time::Instant;

use zeroring::{Context, SocketType};

fn main() -> zeroring::Result<()> {
    let ctx = Context::new();
    let round_trips = 100_000u32;

    let rep = ctx.socket(SocketType::Rep)?;
    rep.bind("inproc://lat")?;
    let server = thread::spawn(move || -> zeroring::Result<()> {
        for _ in 0..round_trips {
            let m = rep.recv_msg(0)?;
            rep.send_msg(m, 0)?;
        }
        Ok(())
    });
    let req = ctx.socket(SocketType::Req)?;
    req.connect("inproc://lat")?;
    let t = Instant::now();
    for _ in 0..round_trips {
        req.send(&[0u8; 16][..], 0)?;
        req.recv_msg(0)?;
    }
    let el = t.elapsed();
    server.join().expect("server")?;
    println!(
        "REQ/REP inproc: {round_trips} round trips, {:.2} µs each",
        el.as_secs_f64() * 1e6 / round_trips as f64
    );

    let messages = 2_000_000u32;
    let pull = ctx.socket(SocketType::Pull)?;
    pull.bind("inproc://thr")?;
    let push = ctx.socket(SocketType::Push)?;
    push.connect("inproc://thr")?;
    let sender = thread::spawn(move || -> zeroring::Result<()> {
        for _ in 0..messages {
            push.send(&[0u8; 16][..], 0)?;
        }
        Ok(())
    });
    let t = Instant::now();
    for _ in 0..messages {
        pull.recv_msg(0)?;
    }
    let el = t.elapsed();
    sender.join().expect("sender")?;
    println!(
        "PUSH/PULL inproc: {messages} messages of 16 bytes, {:.1} M msg/s",
        messages as f64 / el.as_secs_f64() / 1e6
    );
    Ok(())
}
