//! Multi-threaded stress over inproc: N senders, M receivers, nothing lost or duplicated where
//! the pattern promises delivery, order kept per sender.

use std::sync::{Arc, Barrier};
use std::thread;

use zeroring::{Context, Socket, SocketType};

const TIMEOUT_MS: i32 = 20_000;

fn socket(ctx: &Context, t: SocketType) -> Socket {
    let s = ctx.socket(t).unwrap();
    s.set_rcvtimeo(TIMEOUT_MS).unwrap();
    s.set_sndtimeo(TIMEOUT_MS).unwrap();
    s.set_sndhwm(100).unwrap();
    s.set_rcvhwm(100).unwrap();
    s
}

fn encode(sender: u32, seq: u32) -> [u8; 8] {
    let mut b = [0u8; 8];
    b[..4].copy_from_slice(&sender.to_le_bytes());
    b[4..].copy_from_slice(&seq.to_le_bytes());
    b
}

fn decode(b: &[u8]) -> (u32, u32) {
    (
        u32::from_le_bytes(b[..4].try_into().unwrap()),
        u32::from_le_bytes(b[4..8].try_into().unwrap()),
    )
}

/// PUSH×senders → PULL×receivers (every PUSH connects to every PULL).
fn push_pull(senders: u32, receivers: u32, per_sender: u32) {
    let ctx = Context::new();
    let total = senders as u64 * per_sender as u64;
    let pulls: Vec<Socket> = (0..receivers)
        .map(|r| {
            let s = socket(&ctx, SocketType::Pull);
            s.bind(&format!("inproc://stress-pp-{r}")).unwrap();
            s
        })
        .collect();
    let barrier = Arc::new(Barrier::new(senders as usize + 1));
    let (done_tx, done_rx) = std::sync::mpsc::channel::<Vec<u32>>();
    let mut handles = Vec::new();
    // Receivers: each records, per sender, the sequence numbers it saw (in order).
    let received = Arc::new(std::sync::atomic::AtomicU64::new(0));
    for pull in pulls {
        let done_tx = done_tx.clone();
        let received = received.clone();
        handles.push(thread::spawn(move || {
            let mut last = vec![None::<u32>; senders as usize];
            let mut seen: Vec<u32> = Vec::new();
            loop {
                let m = match pull.recv_msg(0) {
                    Ok(m) => m,
                    Err(_) => break, // idle: everyone is done
                };
                if m.is_empty() {
                    break; // end marker
                }
                let (s, q) = decode(m.data());
                if let Some(prev) = last[s as usize] {
                    assert!(q > prev, "order broken for sender {s}: {q} after {prev}");
                }
                last[s as usize] = Some(q);
                seen.push(s * per_sender + q);
                received.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            }
            done_tx.send(seen).unwrap();
        }));
    }
    drop(done_tx);
    let mut senders_h = Vec::new();
    for s in 0..senders {
        let ctx = ctx.clone();
        let barrier = barrier.clone();
        senders_h.push(thread::spawn(move || {
            let push = socket(&ctx, SocketType::Push);
            for r in 0..receivers {
                push.connect(&format!("inproc://stress-pp-{r}")).unwrap();
            }
            barrier.wait();
            for q in 0..per_sender {
                push.send(&encode(s, q)[..], 0).unwrap();
            }
            push
        }));
    }
    barrier.wait();
    let pushes: Vec<Socket> = senders_h.into_iter().map(|h| h.join().unwrap()).collect();
    // Wait for everything to arrive, then tell each receiver to stop (one marker per PULL via
    // a dedicated PUSH per receiver keeps the marker after every data message of that pipe…
    // but markers from another sender could overtake data, so wait for the count first).
    while received.load(std::sync::atomic::Ordering::Relaxed) < total {
        thread::yield_now();
    }
    for r in 0..receivers {
        let stop = socket(&ctx, SocketType::Push);
        stop.connect(&format!("inproc://stress-pp-{r}")).unwrap();
        stop.send(&b""[..], 0).unwrap();
    }
    let mut all: Vec<u32> = Vec::with_capacity(total as usize);
    for seen in done_rx {
        all.extend(seen);
    }
    for h in handles {
        h.join().unwrap();
    }
    drop(pushes);
    assert_eq!(all.len() as u64, total, "lost or duplicated");
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len() as u64, total, "duplicates");
}

/// DEALER×clients ↔ ROUTER echo server: every request answered, to the right client, in order.
fn dealer_router(clients: u32, per_client: u32) {
    let ctx = Context::new();
    let router = socket(&ctx, SocketType::Router);
    router.bind("inproc://stress-dr").unwrap();
    let total = clients as u64 * per_client as u64;
    let server = thread::spawn(move || {
        for _ in 0..total {
            let parts = router.recv_multipart_msg(0).unwrap();
            assert_eq!(parts.len(), 2);
            let mut it = parts.into_iter();
            let id = it.next().unwrap();
            router.send_msg(id, zeroring::SNDMORE).unwrap();
            router.send_msg(it.next().unwrap(), 0).unwrap();
        }
        router
    });
    let mut hs = Vec::new();
    for c in 0..clients {
        let ctx = ctx.clone();
        hs.push(thread::spawn(move || {
            let d = socket(&ctx, SocketType::Dealer);
            d.connect("inproc://stress-dr").unwrap();
            let window = 50u32;
            let mut next_expected = 0u32;
            let mut sent = 0u32;
            while next_expected < per_client {
                while sent < per_client && sent - next_expected < window {
                    d.send(&encode(c, sent)[..], 0).unwrap();
                    sent += 1;
                }
                let m = d.recv_msg(0).unwrap();
                let (who, q) = decode(m.data());
                assert_eq!(who, c, "reply routed to the wrong client");
                assert_eq!(q, next_expected, "reply order broken");
                next_expected += 1;
            }
        }));
    }
    for h in hs {
        h.join().unwrap();
    }
    server.join().unwrap();
}

/// PUB×publishers → SUB×subscribers with unlimited HWMs: every subscriber gets every message of
/// every publisher exactly once, in each publisher's order.
fn pub_sub(publishers: u32, subscribers: u32, per_publisher: u32) {
    let ctx = Context::new();
    let pubs: Vec<Socket> = (0..publishers)
        .map(|p| {
            let s = socket(&ctx, SocketType::Pub);
            s.set_sndhwm(0).unwrap();
            s.bind(&format!("inproc://stress-ps-{p}")).unwrap();
            s
        })
        .collect();
    let mut subs = Vec::new();
    for _ in 0..subscribers {
        let s = socket(&ctx, SocketType::Sub);
        s.set_rcvhwm(0).unwrap();
        for p in 0..publishers {
            s.connect(&format!("inproc://stress-ps-{p}")).unwrap();
        }
        s.set_subscribe(b"").unwrap();
        subs.push(s);
    }
    // Every publisher must know every subscriber's subscription before it sends.
    for p in &pubs {
        while p.stats().peers_attached < subscribers as u64 || p.get_topics_count().unwrap() < 1 {
            thread::yield_now();
        }
    }
    let readers: Vec<_> = subs
        .into_iter()
        .map(|s| {
            thread::spawn(move || {
                let mut next = vec![0u32; publishers as usize];
                for _ in 0..publishers as u64 * per_publisher as u64 {
                    let m = s.recv_msg(0).unwrap();
                    let (p, q) = decode(m.data());
                    assert_eq!(
                        q, next[p as usize],
                        "publisher {p}: lost, duplicated or reordered"
                    );
                    next[p as usize] += 1;
                }
                assert!(next.iter().all(|&n| n == per_publisher));
                s
            })
        })
        .collect();
    let writers: Vec<_> = pubs
        .into_iter()
        .enumerate()
        .map(|(i, p)| {
            thread::spawn(move || {
                for q in 0..per_publisher {
                    p.send(&encode(i as u32, q)[..], 0).unwrap();
                }
                assert_eq!(p.stats().dropped_hwm, 0);
                p
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    for r in readers {
        r.join().unwrap();
    }
}

#[test]
fn stress_pub_sub_fan_out() {
    pub_sub(2, 2, 100_000);
}

#[test]
fn stress_push_pull_many_to_many() {
    push_pull(4, 2, 300_000);
}

#[test]
fn stress_dealer_router_echo() {
    dealer_router(4, 100_000);
}

#[test]
#[ignore = "big: run with --ignored --release"]
fn stress_push_pull_big() {
    push_pull(8, 4, 2_000_000);
}

#[test]
#[ignore = "big: run with --ignored --release"]
fn stress_dealer_router_big() {
    dealer_router(8, 1_000_000);
}
