//! ZR_MAX_HANDSHAKES's second trigger: a listener that runs out of descriptors (EMFILE on
//! accept) evicts the oldest connection still in its handshake, so slow-loris connections
//! holding every descriptor the process may open cannot lock a healthy client out.
//!
//! Its own test binary: it lowers the process's RLIMIT_NOFILE, which every thread shares, and
//! restores it before it asserts. The limit comes down before the bind: io_uring's multishot
//! accept reads the limit once, when it is armed.

use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use zeroring::{Context, MonitorEvent, SocketType};

#[path = "common/hostile.rs"]
mod common;
use common::*;

/// The lowest descriptor number not in use: with RLIMIT_NOFILE set just above it, the process
/// can open exactly one more descriptor.
fn lowest_free_fd() -> i32 {
    (0..i32::MAX)
        .find(|&fd| {
            // SAFETY: F_GETFD only reads the descriptor's flags; an unused number gives EBADF.
            let flags = unsafe { libc::fcntl(fd, libc::F_GETFD) };
            flags == -1
        })
        .unwrap()
}

fn set_fd_limit(soft: libc::rlim_t) -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid rlimit for the call to fill and then to read.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        let old = lim.rlim_cur;
        lim.rlim_cur = soft.min(lim.rlim_max);
        assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        old
    }
}

#[test]
fn out_of_descriptors_the_listener_evicts_the_oldest_handshake_for_a_healthy_client() {
    const ATTACKERS: usize = 20;
    let ctx = Context::new();
    let rep = ctx.socket(SocketType::Rep).unwrap();
    // The healthy client is made first (its socket's own descriptors).
    let req = ctx.socket(SocketType::Req).unwrap();
    req.set_linger(0).unwrap();
    req.set_rcvtimeo(10_000).unwrap();
    // Room for the listener, the attackers' both ends and the monitor; filled up below.
    let limit = lowest_free_fd() as libc::rlim_t + 2 * ATTACKERS as libc::rlim_t + 64;
    let old = set_fd_limit(limit);
    // The cap stays at its default (4,096): only the descriptor limit can evict here.
    rep.set_rcvtimeo(20).unwrap();
    rep.bind("tcp://127.0.0.1:*").unwrap();
    let endpoint = rep.get_last_endpoint().unwrap().unwrap();

    // Accept failures as the monitor reports them (EMFILE expected).
    let stop_monitor = Arc::new(AtomicBool::new(false));
    let (accept_failed, monitor) =
        count_monitor_events(&ctx, &rep, "emfile", stop_monitor.clone(), |e, value| {
            e == MonitorEvent::AcceptFailed && value == libc::EMFILE as u32
        });

    let stop = Arc::new(AtomicBool::new(false));
    let in_handshake = Arc::new(AtomicUsize::new(0));
    let server = {
        let (stop, in_handshake) = (stop.clone(), in_handshake.clone());
        thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                in_handshake.store(rep.handshakes().in_handshake, Ordering::Relaxed);
                if let Ok(m) = rep.recv_multipart(0) {
                    rep.send_multipart(m, 0).unwrap();
                }
            }
            rep
        })
    };

    // The attack: connections that never send a byte, each holding a descriptor in the
    // server while its handshake waits (HANDSHAKE_IVL is 30 s).
    let attackers: Vec<TcpStream> = (0..ATTACKERS)
        .map(|_| TcpStream::connect(addr(&endpoint)).unwrap())
        .collect();

    // Every attacker is in the server's handshake before the limit comes down.
    assert!(
        wait_for(Duration::from_secs(10), || in_handshake
            .load(Ordering::Relaxed)
            >= ATTACKERS),
        "the server accepted every attacker"
    );
    // Now the process may open exactly one more descriptor: the client's connection. The
    // server's accept of it fails with EMFILE until an eviction closes the oldest slow-loris
    // connection.
    let mut filler = Vec::new();
    while (lowest_free_fd() as libc::rlim_t) < limit - 1 {
        filler.push(std::fs::File::open("/dev/null").unwrap());
    }
    {
        // Exactly one: a second open fails with EMFILE.
        let _last = std::fs::File::open("/dev/null").unwrap();
        let e = std::fs::File::open("/dev/null").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::EMFILE));
    }
    let started = Instant::now();
    let connected = req.connect(&endpoint);
    let sent = connected.and_then(|()| req.send("healthy", 0));
    let got = sent.and_then(|()| req.recv_bytes(0));
    let took = started.elapsed();
    drop(filler);
    set_fd_limit(old);

    assert_eq!(got.unwrap(), b"healthy");
    assert!(
        took < Duration::from_secs(2),
        "healthy client served after {took:?}"
    );
    stop.store(true, Ordering::Relaxed);
    let rep = server.join().unwrap();
    let counts = rep.handshakes();
    println!(
        "{ATTACKERS} silent connections, one descriptor left: healthy client served in \
         {took:?}; {counts:?}; accept failures with EMFILE reported: {}",
        accept_failed.load(Ordering::Relaxed)
    );
    assert!(counts.evicted >= 1, "an eviction made room: {counts:?}");
    assert!(
        wait_for(Duration::from_secs(10), || accept_failed
            .load(Ordering::Relaxed)
            >= 1),
        "the monitor reported ACCEPT_FAILED with EMFILE"
    );
    drop(attackers);
    stop_monitor.store(true, Ordering::Relaxed);
    monitor.join().unwrap();
}
