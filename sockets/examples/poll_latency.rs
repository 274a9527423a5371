//! A REQ/REP round trip over tcp where both sides wait in `poll` before each `recv`, as
//! event-loop programs do (not a benchmark harness: that is `perf/`). It shows what the
//! yielding spin of `poll` buys; compare with `ZERORING_SOCKET_SPIN_US=0`.
//! Run in release: `cargo run --release -p zeroring --example poll_latency`.

use std::thread;
use std::time::Instant;
use zeroring::{poll, Context, PollItem, SocketType, POLLIN};

fn main() -> zeroring::Result<()> {
    let n = 20_000usize;
    let warmup = 2_000usize;
    let sctx = Context::new();
    let rep = sctx.socket(SocketType::Rep)?;
    rep.bind("tcp://127.0.0.1:*")?;
    let ep = rep
        .get_last_endpoint()?
        .expect("a bound socket has a last endpoint");
    let server = thread::spawn(move || -> zeroring::Result<()> {
        for _ in 0..n + warmup {
            let mut items = [PollItem::from_socket(&rep, POLLIN as i16)];
            poll(&mut items, -1)?;
            let m = rep.recv_msg(0)?;
            rep.send_msg(m, 0)?;
        }
        Ok(())
    });
    let cctx = Context::new();
    let req = cctx.socket(SocketType::Req)?;
    req.connect(&ep)?;
    let mut v = Vec::with_capacity(n);
    for i in 0..n + warmup {
        let t = Instant::now();
        req.send(&[0u8; 64][..], 0)?;
        let mut items = [PollItem::from_socket(&req, POLLIN as i16)];
        poll(&mut items, -1)?;
        req.recv_msg(0)?;
        if i >= warmup {
            v.push(t.elapsed().as_secs_f64() * 1e6);
        }
    }
    server.join().expect("server")?;
    v.sort_by(f64::total_cmp);
    println!(
        "REQ/REP over tcp, 64 B, waiting in poll: {n} round trips, p50 {:.1} µs, p99 {:.1} µs",
        v[n / 2],
        v[n * 99 / 100]
    );
    Ok(())
}
