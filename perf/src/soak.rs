//! `zeroring-perf soak`: every hostile workload of issue 17 at once, for minutes, against one
//! bound ROUTER (and a PUB for the subscription storm) in this process, while healthy clients
//! measure the service they get. Prints RSS, descriptors, the healthy clients' latency and
//! what each attacker managed, every few seconds and at the end.
//!
//! Attackers (each a thread, raw TCP; ZMTP spoken through the sans-IO `Connection`):
//! - slow-loris: N connections trickling a greeting one byte at a time (the ROUTER's
//!   HANDSHAKE_IVL cuts them; each reconnects);
//! - connect/close cycles;
//! - a DEALER flooding requests and never reading the replies;
//! - a DEALER sending one multipart message that never ends (cut at ZR_MAX_INCOMPLETE_MSG;
//!   it reconnects and starts over);
//! - a SUB subscribing to 100,000 random 32-byte topics, cancelling them all, and again;
//! - a SUB subscribing to new random topics without end into an XPUB (XPUB_VERBOSE) whose
//!   user publishes but never reads: RCVHWM holds it back.
//!
//! The ROUTER's ZR_MAX_HANDSHAKES is below the slow-loris count, so the oldest handshakes are
//! evicted as newer connections arrive.
//!
//! Healthy: a REQ making a round trip every 10 ms to the ROUTER (latency into a histogram;
//! a round trip over 2 s is a failure), and a SUB on each of the PUB and the XPUB that must
//! keep receiving their ticks.
//!
//! Must never: hide a failure of the healthy clients (they are counted and printed), or run
//! without a deadline (every thread stops at `--secs`).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use bytes::Bytes;
use hdrhistogram::Histogram;
use zeroring::options::num;
use zeroring::transports::zmtp::greeting::{greeting_v3, MechanismName};
use zeroring::transports::zmtp::{Connection, ConnectionConfig};
use zeroring::{Context, SocketType, DONTWAIT};

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// How long the attack lasts.
    pub secs: u64,
    /// Slow-loris connections open at once.
    pub loris: usize,
    /// Topics per subscription storm.
    pub storm_topics: usize,
    /// The ROUTER's ZR_MAX_HANDSHAKES.
    pub max_handshakes: usize,
    /// Seconds between progress lines.
    pub every: u64,
}

/// Everything the threads count.
#[derive(Default)]
struct Counters {
    loris_bytes: AtomicU64,
    loris_cut: AtomicU64,
    cycles: AtomicU64,
    flood_msgs: AtomicU64,
    endless_bytes: AtomicU64,
    endless_cut: AtomicU64,
    storm_subs: AtomicU64,
    storm_cancels: AtomicU64,
    xstorm_subs: AtomicU64,
    xpub_deferred: AtomicU64,
    xsub_ticks: AtomicU64,
    hs_evicted: AtomicU64,
    hs_refused: AtomicU64,
    hs_peak: AtomicU64,
    served: AtomicU64,
    healthy_ok: AtomicU64,
    healthy_fail: AtomicU64,
    sub_ticks: AtomicU64,
    topics: AtomicU64,
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn addr(endpoint: &str) -> String {
    endpoint.trim_start_matches("tcp://").to_string()
}

/// A raw ZMTP peer after its NULL handshake, or `None` if the server cut it first.
fn raw_peer(endpoint: &str, socket_type: SocketType) -> Option<(TcpStream, Connection)> {
    let mut tcp = TcpStream::connect(addr(endpoint)).ok()?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    let mut conn = Connection::new(ConnectionConfig::new(socket_type), Instant::now()).ok()?;
    let mut buf = [0u8; 4096];
    loop {
        while let Some(out) = conn.poll_transmit() {
            tcp.write_all(&out).ok()?;
        }
        if conn.is_ready() {
            return Some((tcp, conn));
        }
        let n = tcp.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        conn.handle_input(Bytes::copy_from_slice(&buf[..n]), Instant::now());
        while conn.poll_event().is_some() {}
    }
}

fn flush(tcp: &mut TcpStream, conn: &mut Connection) -> bool {
    while let Some(out) = conn.poll_transmit() {
        if tcp.write_all(&out).is_err() {
            return false;
        }
    }
    true
}

fn loris(endpoint: String, n: usize, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let greeting = greeting_v3(MechanismName::Null, 0);
    let connect = || {
        let t = TcpStream::connect(addr(&endpoint)).ok()?;
        t.set_nonblocking(true).ok()?;
        Some(t)
    };
    let mut conns: Vec<(Option<TcpStream>, usize)> = (0..n).map(|_| (connect(), 0)).collect();
    while !stop.load(Ordering::Relaxed) {
        for (tcp, at) in &mut conns {
            let mut buf = [0u8; 128];
            let ok = match tcp.as_mut() {
                // The 64th byte never comes: wait to be cut (end of stream or an error).
                Some(t) if *at >= 63 => match t.read(&mut buf) {
                    Ok(0) => false,
                    Ok(_) => true,
                    Err(e) => e.kind() == std::io::ErrorKind::WouldBlock,
                },
                Some(t) => {
                    let wrote = t.write(&greeting[*at..*at + 1]);
                    if matches!(wrote, Ok(1)) {
                        *at += 1;
                        c.loris_bytes.fetch_add(1, Ordering::Relaxed);
                    }
                    wrote.is_ok()
                        || matches!(wrote, Err(ref e) if e.kind() == std::io::ErrorKind::WouldBlock)
                }
                None => false,
            };
            if !ok {
                c.loris_cut.fetch_add(1, Ordering::Relaxed);
                *tcp = connect();
                *at = 0;
            }
        }
        thread::sleep(Duration::from_millis(100));
    }
}

fn cycles(endpoint: String, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let greeting = greeting_v3(MechanismName::Null, 0);
    let mut i = 0u64;
    while !stop.load(Ordering::Relaxed) {
        if let Ok(mut t) = TcpStream::connect(addr(&endpoint)) {
            let _ = match i % 3 {
                0 => Ok(()),
                1 => t.write_all(&greeting[..5]),
                _ => t.write_all(&greeting),
            };
        }
        i += 1;
        c.cycles.fetch_add(1, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(2));
    }
}

fn flood(endpoint: String, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let body = Bytes::from(vec![0xA5u8; 1024]);
    while !stop.load(Ordering::Relaxed) {
        let Some((mut tcp, mut conn)) = raw_peer(&endpoint, SocketType::Dealer) else {
            continue;
        };
        // ~20,000 requests a second at most, never a read.
        'conn: while !stop.load(Ordering::Relaxed) {
            for _ in 0..200 {
                if conn.send_frame(body.clone(), false).is_err() || !flush(&mut tcp, &mut conn) {
                    break 'conn;
                }
                c.flood_msgs.fetch_add(1, Ordering::Relaxed);
            }
            thread::sleep(Duration::from_millis(10));
        }
    }
}

fn endless(endpoint: String, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let part = Bytes::from(vec![0x5Au8; 100]);
    while !stop.load(Ordering::Relaxed) {
        let Some((mut tcp, mut conn)) = raw_peer(&endpoint, SocketType::Dealer) else {
            continue;
        };
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            for _ in 0..100 {
                let _ = conn.send_frame(part.clone(), true);
            }
            let mut sent = 0;
            while let Some(out) = conn.poll_transmit() {
                if tcp.write_all(&out).is_err() {
                    c.endless_cut.fetch_add(1, Ordering::Relaxed);
                    sent = usize::MAX;
                    break;
                }
                sent += out.len();
            }
            if sent == usize::MAX {
                break;
            }
            c.endless_bytes.fetch_add(sent as u64, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(1));
        }
    }
}

fn storm(endpoint: String, n: usize, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    while !stop.load(Ordering::Relaxed) {
        let Some((mut tcp, mut conn)) = raw_peer(&endpoint, SocketType::Sub) else {
            continue;
        };
        let topics: Vec<Bytes> = (0..n)
            .map(|_| {
                let mut t = [0u8; 32];
                for chunk in t.chunks_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    chunk.copy_from_slice(&x.to_le_bytes());
                }
                t[0] |= 0x80;
                Bytes::copy_from_slice(&t)
            })
            .collect();
        for (subscribe, counter) in [(true, &c.storm_subs), (false, &c.storm_cancels)] {
            for chunk in topics.chunks(500) {
                if stop.load(Ordering::Relaxed) {
                    return;
                }
                for t in chunk {
                    let _ = if subscribe {
                        conn.send_subscribe(t)
                    } else {
                        conn.send_cancel(t)
                    };
                }
                if !flush(&mut tcp, &mut conn) {
                    break;
                }
                counter.fetch_add(chunk.len() as u64, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

/// New random topics without end into an XPUB whose user never reads: the writes stall once
/// its RCVHWM is reached (each write gives up after 200 ms and is retried until the stop).
fn xstorm(endpoint: String, stop: Arc<AtomicBool>, c: Arc<Counters>) {
    let mut x = 0x2545_F491_4F6C_DD1Du64;
    let Some((mut tcp, mut conn)) = raw_peer(&endpoint, SocketType::Sub) else {
        return;
    };
    let _ = tcp.set_write_timeout(Some(Duration::from_millis(200)));
    let mut out: Vec<u8> = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        if out.is_empty() {
            for _ in 0..100 {
                let mut t = [0u8; 32];
                for chunk in t.chunks_mut(8) {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    chunk.copy_from_slice(&x.to_le_bytes());
                }
                t[0] |= 0x80;
                let _ = conn.send_subscribe(&Bytes::copy_from_slice(&t));
            }
            while let Some(chunk) = conn.poll_transmit() {
                out.extend_from_slice(&chunk);
            }
        }
        match tcp.write(&out) {
            Ok(n) if n > 0 => {
                out.drain(..n);
                if out.is_empty() {
                    // All 100 handed to the kernel.
                    c.xstorm_subs.fetch_add(100, Ordering::Relaxed);
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            _ => return,
        }
    }
}

fn pct(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Runs the soak and prints its report.
pub fn run(cfg: &Config) -> Result<(), zeroring::Error> {
    let ctx = Context::new();
    let stop = Arc::new(AtomicBool::new(false));
    let c = Arc::new(Counters::default());

    let router = ctx.socket(SocketType::Router)?;
    router.set_handshake_ivl(5_000)?;
    router.set_option(
        num::ZR_MAX_HANDSHAKES,
        &(cfg.max_handshakes.min(i32::MAX as usize) as i32).to_ne_bytes(),
    )?;
    router.set_option(num::ZR_MAX_INCOMPLETE_MSG, &(4i64 << 20).to_ne_bytes())?;
    router.set_rcvtimeo(50)?;
    router.bind("tcp://127.0.0.1:*")?;
    let rep_ep = router.get_last_endpoint()?.unwrap_or_default();
    let publisher = ctx.socket(SocketType::Pub)?;
    publisher.bind("tcp://127.0.0.1:*")?;
    let pub_ep = publisher.get_last_endpoint()?.unwrap_or_default();
    let xpub = ctx.socket(SocketType::XPub)?;
    xpub.set_xpub_verbose(true)?;
    xpub.bind("tcp://127.0.0.1:*")?;
    let xpub_ep = xpub.get_last_endpoint()?.unwrap_or_default();

    let fd_base = fds();
    let rss_base = rss_mib();
    println!(
        "soak: {} s against a ROUTER at {rep_ep} and a PUB at {pub_ep}; baseline RSS {rss_base:.1} MiB, {fd_base} fds",
        cfg.secs
    );
    println!(
        "attackers: {} slow-loris (ZR_MAX_HANDSHAKES {}), connect/close cycles, 1 flooder (never reads), 1 endless multipart, 1 storm of {} topics, 1 endless storm into an XPUB at {xpub_ep} that never reads",
        cfg.loris, cfg.max_handshakes, cfg.storm_topics
    );

    let mut threads = Vec::new();
    {
        let (s, c) = (stop.clone(), c.clone());
        threads.push(thread::spawn(move || {
            let mut sampled = Instant::now();
            while !s.load(Ordering::Relaxed) {
                if sampled.elapsed() >= Duration::from_millis(100) {
                    let h = router.handshakes();
                    c.hs_evicted.store(h.evicted, Ordering::Relaxed);
                    c.hs_refused.store(h.refused, Ordering::Relaxed);
                    c.hs_peak.store(h.peak as u64, Ordering::Relaxed);
                    sampled = Instant::now();
                }
                let Ok(parts) = router.recv_multipart(0) else {
                    continue;
                };
                let _ = router.send_multipart(parts, DONTWAIT);
                c.served.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    {
        let (s, c) = (stop.clone(), c.clone());
        threads.push(thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let _ = publisher.send("tick", 0);
                if let Ok(n) = publisher.get_topics_count() {
                    c.topics.store(n as u64, Ordering::Relaxed);
                }
                thread::sleep(Duration::from_millis(10));
            }
        }));
    }
    {
        // The XPUB's user: publishes, never reads its subscriptions.
        let (s, c) = (stop.clone(), c.clone());
        threads.push(thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                let _ = xpub.send("tick", 0);
                c.xpub_deferred
                    .store(xpub.stats().reads_deferred, Ordering::Relaxed);
                thread::sleep(Duration::from_millis(10));
            }
        }));
    }
    let spawn = |f: Box<dyn FnOnce() + Send>| thread::spawn(f);
    threads.push(spawn({
        let (e, n, s, c) = (rep_ep.clone(), cfg.loris, stop.clone(), c.clone());
        Box::new(move || loris(e, n, s, c))
    }));
    threads.push(spawn({
        let (e, s, c) = (rep_ep.clone(), stop.clone(), c.clone());
        Box::new(move || cycles(e, s, c))
    }));
    threads.push(spawn({
        let (e, s, c) = (rep_ep.clone(), stop.clone(), c.clone());
        Box::new(move || flood(e, s, c))
    }));
    threads.push(spawn({
        let (e, s, c) = (rep_ep.clone(), stop.clone(), c.clone());
        Box::new(move || endless(e, s, c))
    }));
    threads.push(spawn({
        let (e, n, s, c) = (pub_ep.clone(), cfg.storm_topics, stop.clone(), c.clone());
        Box::new(move || storm(e, n, s, c))
    }));
    threads.push(spawn({
        let (e, s, c) = (xpub_ep.clone(), stop.clone(), c.clone());
        Box::new(move || xstorm(e, s, c))
    }));
    // The healthy SUB of the XPUB.
    {
        let sub = ctx.socket(SocketType::Sub)?;
        sub.set_subscribe(b"tick")?;
        sub.set_rcvtimeo(100)?;
        sub.connect(&xpub_ep)?;
        let (s, c) = (stop.clone(), c.clone());
        threads.push(thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if sub.recv_bytes(0).is_ok() {
                    c.xsub_ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    // The healthy SUB.
    {
        let sub = ctx.socket(SocketType::Sub)?;
        sub.set_subscribe(b"tick")?;
        sub.set_rcvtimeo(100)?;
        sub.connect(&pub_ep)?;
        let (s, c) = (stop.clone(), c.clone());
        threads.push(thread::spawn(move || {
            while !s.load(Ordering::Relaxed) {
                if sub.recv_bytes(0).is_ok() {
                    c.sub_ticks.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }

    // The healthy REQ, on this thread, with the progress lines.
    let mut total = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("bounds");
    let mut window = total.clone();
    let mut rss_max = rss_base;
    let mut fds_max = fd_base;
    let started = Instant::now();
    let mut next_line = started + Duration::from_secs(cfg.every);
    let fresh_req = |ctx: &Context| -> Result<zeroring::Socket, zeroring::Error> {
        let r = ctx.socket(SocketType::Req)?;
        r.set_linger(0)?;
        r.set_rcvtimeo(2_000)?;
        r.connect(&rep_ep)?;
        Ok(r)
    };
    let mut req = fresh_req(&ctx)?;
    let print_header = || {
        println!(
            "{:>5} {:>8} {:>5} {:>7} {:>8} {:>8} {:>6} {:>6} {:>8} {:>9} {:>8} {:>7} {:>9} {:>9} {:>9} {:>7} {:>8} {:>6} {:>6}",
            "t s", "RSS MiB", "fds", "ok", "fail", "p99 ms", "max ms", "ticks", "loris B",
            "loris cut", "hs evict", "cycles", "flood msg", "endl cut/MiB", "storm", "topics",
            "xstorm", "xdefer", "xticks"
        )
    };
    print_header();
    let row = |t: f64, w: &Histogram<u64>, c: &Counters, rss: f64, fds: usize| {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        println!(
            "{t:>5.0} {rss:>8.1} {fds:>5} {:>7} {:>8} {:>8.2} {:>6.1} {:>6} {:>8} {:>9} {:>8} {:>7} {:>9} {:>3}cut/{:<4} {:>9} {:>7} {:>8} {:>6} {:>6}",
            l(&c.healthy_ok),
            l(&c.healthy_fail),
            pct(w, 0.99),
            w.max() as f64 / 1000.0,
            l(&c.sub_ticks),
            l(&c.loris_bytes),
            l(&c.loris_cut),
            l(&c.hs_evicted),
            l(&c.cycles),
            l(&c.flood_msgs),
            l(&c.endless_cut),
            l(&c.endless_bytes) >> 20,
            l(&c.storm_subs) + l(&c.storm_cancels),
            l(&c.topics),
            l(&c.xstorm_subs),
            l(&c.xpub_deferred),
            l(&c.xsub_ticks),
        );
    };
    while started.elapsed() < Duration::from_secs(cfg.secs) {
        let t0 = Instant::now();
        let ok =
            req.send("healthy", 0).is_ok() && matches!(req.recv_bytes(0), Ok(m) if m == b"healthy");
        let us = t0.elapsed().as_micros() as u64;
        if ok && us < 2_000_000 {
            c.healthy_ok.fetch_add(1, Ordering::Relaxed);
            let _ = total.record(us.max(1));
            let _ = window.record(us.max(1));
        } else {
            c.healthy_fail.fetch_add(1, Ordering::Relaxed);
            // A REQ that lost its reply is stuck: a new one, as an application would.
            req = fresh_req(&ctx)?;
        }
        let now = Instant::now();
        if now >= next_line {
            let (rss, fd) = (rss_mib(), fds());
            rss_max = rss_max.max(rss);
            fds_max = fds_max.max(fd);
            row(started.elapsed().as_secs_f64(), &window, &c, rss, fd);
            window.reset();
            next_line += Duration::from_secs(cfg.every);
        }
        thread::sleep(Duration::from_millis(10));
    }
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    drop(req);
    // The attackers' descriptors are closed; the server's go as it sees them leave.
    let deadline = Instant::now() + Duration::from_secs(30);
    while fds() > fd_base && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(50));
    }
    let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
    println!("after {} s:", cfg.secs);
    println!(
        "  healthy REQ: {} round trips, {} over 2 s or lost; latency p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.1} ms",
        l(&c.healthy_ok),
        l(&c.healthy_fail),
        pct(&total, 0.5),
        pct(&total, 0.99),
        pct(&total, 0.999),
        total.max() as f64 / 1000.0
    );
    println!(
        "  healthy SUB: {} ticks received from the PUB, {} from the XPUB",
        l(&c.sub_ticks),
        l(&c.xsub_ticks)
    );
    println!(
        "  RSS: baseline {rss_base:.1} MiB, max {rss_max:.1} MiB, end {:.1} MiB; fds: baseline {fd_base}, max {fds_max}, after the attackers left {}",
        rss_mib(),
        fds()
    );
    println!(
        "  attackers: slow-loris {} bytes trickled, {} connections cut; {} connect/close cycles; flooder {} requests ({} served by the ROUTER in all); endless multipart cut {} times after {} MiB; storm {} subscribes + {} cancels",
        l(&c.loris_bytes),
        l(&c.loris_cut),
        l(&c.cycles),
        l(&c.flood_msgs),
        l(&c.served),
        l(&c.endless_cut),
        l(&c.endless_bytes) >> 20,
        l(&c.storm_subs),
        l(&c.storm_cancels)
    );
    println!(
        "  handshakes: {} evicted, {} refused (ZR_MAX_HANDSHAKES {}, at most {} at once); XPUB storm: {} subscriptions sent, its pipe left unread {} times",
        l(&c.hs_evicted),
        l(&c.hs_refused),
        cfg.max_handshakes,
        l(&c.hs_peak),
        l(&c.xstorm_subs),
        l(&c.xpub_deferred)
    );
    Ok(())
}
