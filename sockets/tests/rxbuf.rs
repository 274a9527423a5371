//! Issue 12 [rxbuf]: received data must never hold the I/O thread's receive pool hostage.
//!
//! Each I/O thread receives tcp/ipc into one shared pool of buffers. Whatever the application
//! leaves unread — a backlog of tasks, one huge multipart message, the metadata of thousands of
//! connections — must not stop that thread from receiving for every other connection it serves.
//! Every test here is a shape that stalled when received frames were zero-copy slices of pool
//! buffers; each is bounded (a stall fails with a message, it never hangs the run).
//!
//! Each test runs on the backend the environment chooses; CI runs this file again with
//! `ZERORING_BACKEND=epoll`.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Mutex};
use std::time::Duration;

use zeroring::{Context, Socket, SocketType};

// ----- shared helpers ----------------------------------------------------------------------

/// How long one receive or send may wait before the test calls it a stall.
const STALL_MS: i32 = 20_000;

/// The bound on a whole test: generous, so that only a stall ever reaches it.
const TEST_LIMIT: Duration = Duration::from_secs(120);

/// The two stream transports; every receive-path test runs on both.
#[derive(Clone, Copy, Debug)]
enum Transport {
    Tcp,
    Ipc,
}

/// A socket as every test here wants it: no linger, bounded sends and receives.
fn sock(ctx: &Context, t: SocketType) -> Socket {
    let s = ctx.socket(t).unwrap();
    s.set_linger(0).unwrap();
    s.set_rcvtimeo(STALL_MS).unwrap();
    s.set_sndtimeo(STALL_MS).unwrap();
    s
}

/// Binds `s` on a fresh loopback port or ipc path and returns the endpoint to connect to.
fn bind(s: &Socket, t: Transport) -> String {
    match t {
        Transport::Tcp => {
            s.bind("tcp://127.0.0.1:*").unwrap();
            s.get_last_endpoint().unwrap().unwrap()
        }
        Transport::Ipc => {
            let ep = format!("ipc://{}", ipc_path().display());
            s.bind(&ep).unwrap();
            ep
        }
    }
}

/// A fresh socket path in the temp dir, unique to this process and call.
fn ipc_path() -> PathBuf {
    static SEQ: AtomicU64 = AtomicU64::new(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed);
    std::env::temp_dir().join(format!("zeroring-rxbuf-{}-{n}.sock", std::process::id()))
}

/// Receives one part, or fails naming what stalled.
fn recv(s: &Socket, what: impl std::fmt::Display) -> Vec<u8> {
    s.recv_bytes(0)
        .unwrap_or_else(|e| panic!("{what}: nothing received within {STALL_MS} ms ({e:?})"))
}

/// Runs `body` on its own thread and fails if it does not finish within `limit`, so that a
/// stall anywhere — a receive, a send, a context that will not terminate — fails the test
/// instead of hanging the run. A panic in `body` is passed on as it is.
fn bounded(limit: Duration, body: impl FnOnce() + Send + 'static) {
    let (done_tx, done_rx) = mpsc::channel();
    let worker = std::thread::spawn(move || {
        body();
        let _ = done_tx.send(());
    });
    match done_rx.recv_timeout(limit) {
        Ok(()) => worker.join().unwrap(),
        Err(mpsc::RecvTimeoutError::Disconnected) => {
            if let Err(panic) = worker.join() {
                std::panic::resume_unwind(panic);
            }
        }
        // The stalled thread is left behind: the test binary exits when the tests are done.
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("did not finish within {limit:?} (see any panic above)")
        }
    }
}

/// A context for many sockets: MAX_SOCKETS well above the default 1023.
fn big_context() -> Context {
    let ctx = Context::new();
    ctx.set_max_sockets(8_192).unwrap();
    ctx
}

/// Raises the soft RLIMIT_NOFILE as far as the hard limit allows and checks that `fds`
/// descriptors fit.
fn allow_fds(fds: u64) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        if lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            assert_eq!(libc::setrlimit(libc::RLIMIT_NOFILE, &lim), 0);
        }
    }
    assert!(
        lim.rlim_cur >= fds,
        "this test needs {fds} file descriptors; RLIMIT_NOFILE allows {}",
        lim.rlim_cur
    );
}

/// The tests with thousands of connections run one at a time: each needs several thousand
/// descriptors, and two at once on a small machine only measure the scheduler.
fn one_crowd_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    static CROWD: Mutex<()> = Mutex::new(());
    CROWD
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Connections in the crowd tests (each needs about three descriptors: two ends and a socket).
const CROWD: usize = 2_000;

/// Descriptors a crowd test needs, with room for the rest of the process.
const CROWD_FDS: u64 = CROWD as u64 * 3 + 512;

// ----- a backlog of unread messages ----------------------------------------------------------

/// The worker pattern: tasks queue unread in a PULL while the worker, for each task, asks a
/// service over a REQ socket of the same context (the same I/O thread). The service sends two
/// tasks per request, so the backlog grows by one per round trip, each burst arriving on its
/// own — as tasks arriving 1 ms apart did when this stalled after 59 tasks.
#[test]
fn worker_round_trips_continue_while_tasks_queue() {
    // Enough round trips for the unread bursts to outnumber the 256 pool buffers, with the
    // backlog (ROUNDS tasks) still under the default RCVHWM of 1000.
    const ROUNDS: u32 = 900;
    const PER_REQUEST: u32 = 2;
    bounded(TEST_LIMIT, || {
        let worker_ctx = Context::new();
        let tasks = sock(&worker_ctx, SocketType::Pull);
        let task_ep = bind(&tasks, Transport::Tcp);

        let service_ctx = Context::new();
        let service = sock(&service_ctx, SocketType::Rep);
        let service_ep = bind(&service, Transport::Tcp);
        let producer = sock(&service_ctx, SocketType::Push);
        producer.connect(&task_ep).unwrap();

        let service_thread = std::thread::spawn(move || {
            let mut next_task = 0u32;
            for round in 0..ROUNDS {
                let request = recv(&service, format_args!("service, request {round}"));
                for _ in 0..PER_REQUEST {
                    producer
                        .send(format!("task {next_task}").as_bytes(), 0)
                        .unwrap();
                    next_task += 1;
                }
                service.send(request, 0).unwrap();
            }
            (service, producer, service_ctx)
        });

        let req = sock(&worker_ctx, SocketType::Req);
        req.connect(&service_ep).unwrap();
        for round in 0..ROUNDS {
            req.send(format!("request {round}").as_bytes(), 0).unwrap();
            let reply = recv(
                &req,
                format_args!(
                    "worker's round trip {round} ({} tasks queued unread)",
                    round * (PER_REQUEST - 1)
                ),
            );
            assert_eq!(reply, format!("request {round}").as_bytes());
            let task = recv(&tasks, format_args!("worker, task {round}"));
            assert_eq!(task, format!("task {round}").as_bytes(), "tasks in order");
        }
        for n in ROUNDS..ROUNDS * PER_REQUEST {
            let task = recv(&tasks, format_args!("worker draining, task {n}"));
            assert_eq!(task, format!("task {n}").as_bytes(), "tasks in order");
        }
        drop(service_thread.join().unwrap());
    });
}

/// A PULL with ≥ 400 messages left unread, each arriving on its own, and an unrelated
/// PUSH→PULL pair in the same contexts that must keep flowing throughout and afterwards.
fn backlog_leaves_other_pairs_flowing(t: Transport) {
    const BACKLOG: u32 = 400;
    const AFTERWARDS: u32 = 2_000;
    bounded(TEST_LIMIT, move || {
        let server = Context::new();
        let idle_pull = sock(&server, SocketType::Pull);
        let idle_ep = bind(&idle_pull, t);
        let busy_pull = sock(&server, SocketType::Pull);
        let busy_ep = bind(&busy_pull, t);

        let client = Context::new();
        let idle_push = sock(&client, SocketType::Push);
        idle_push.connect(&idle_ep).unwrap();
        let busy_push = sock(&client, SocketType::Push);
        busy_push.connect(&busy_ep).unwrap();

        // One message to the idle PULL, then one through the busy pair: by the time the busy
        // one is read, the idle one has been received on its own.
        for i in 0..BACKLOG {
            idle_push.send(format!("unread {i}").as_bytes(), 0).unwrap();
            busy_push.send(format!("busy {i}").as_bytes(), 0).unwrap();
            let got = recv(
                &busy_pull,
                format_args!("{t:?}: busy pair, message {i}, with {i} left unread elsewhere"),
            );
            assert_eq!(got, format!("busy {i}").as_bytes());
        }
        // The backlog stays; the other pair still carries a stream of messages.
        for i in 0..AFTERWARDS {
            busy_push.send(format!("after {i}").as_bytes(), 0).unwrap();
        }
        for i in 0..AFTERWARDS {
            let got = recv(
                &busy_pull,
                format_args!("{t:?}: busy pair after the backlog, message {i}"),
            );
            assert_eq!(got, format!("after {i}").as_bytes());
        }
        // And the backlog itself is intact.
        for i in 0..BACKLOG {
            let got = recv(&idle_pull, format_args!("{t:?}: backlog, message {i}"));
            assert_eq!(got, format!("unread {i}").as_bytes());
        }
    });
}

#[test]
fn backlog_leaves_other_pairs_flowing_tcp() {
    backlog_leaves_other_pairs_flowing(Transport::Tcp);
}

#[test]
fn backlog_leaves_other_pairs_flowing_ipc() {
    backlog_leaves_other_pairs_flowing(Transport::Ipc);
}

// ----- one huge multipart message ------------------------------------------------------------

/// One message of `parts` parts of `size` bytes each (more data than the whole pool holds),
/// delivered intact: the receiver gets nothing until the last part is in.
fn huge_multipart_is_delivered(t: Transport, parts: usize, size: usize) {
    bounded(TEST_LIMIT, move || {
        let server = Context::new();
        let pull = sock(&server, SocketType::Pull);
        let ep = bind(&pull, t);
        let client = Context::new();
        let push = sock(&client, SocketType::Push);
        push.connect(&ep).unwrap();

        let part = |i: usize| -> Vec<u8> {
            let mut p = vec![(i % 251) as u8; size];
            p[..4].copy_from_slice(&(i as u32).to_be_bytes());
            p
        };
        push.send_multipart((0..parts).map(part), 0).unwrap();
        let got = pull.recv_multipart(0).unwrap_or_else(|e| {
            panic!(
                "{t:?}: a message of {parts} × {size} B never arrived \
                 ({e:?} after {STALL_MS} ms)"
            )
        });
        assert_eq!(got.len(), parts, "{t:?}: parts received");
        for (i, p) in got.iter().enumerate() {
            assert!(*p == part(i), "{t:?}: part {i} of {parts} differs");
        }
    });
}

#[test]
fn ten_thousand_small_parts_tcp() {
    huge_multipart_is_delivered(Transport::Tcp, 10_000, 600);
}

#[test]
fn ten_thousand_small_parts_ipc() {
    huge_multipart_is_delivered(Transport::Ipc, 10_000, 600);
}

#[test]
fn nine_hundred_ninety_nine_large_parts_tcp() {
    huge_multipart_is_delivered(Transport::Tcp, 999, 10 * 1024);
}

#[test]
fn nine_hundred_ninety_nine_large_parts_ipc() {
    huge_multipart_is_delivered(Transport::Ipc, 999, 10 * 1024);
}

// ----- thousands of connections --------------------------------------------------------------

/// Every PUSH client of a crowd connects at once and sends one message; the PULL gets them all.
#[test]
fn crowd_of_push_clients_into_one_pull() {
    let _one = one_crowd_at_a_time();
    allow_fds(CROWD_FDS);
    bounded(TEST_LIMIT, || {
        let server = Context::new();
        let pull = sock(&server, SocketType::Pull);
        pull.set_backlog(CROWD as i32).unwrap();
        let ep = bind(&pull, Transport::Tcp);

        let clients = big_context();
        let pushes: Vec<Socket> = (0..CROWD)
            .map(|i| {
                let s = sock(&clients, SocketType::Push);
                s.connect(&ep).unwrap();
                s.send(format!("client {i}").as_bytes(), 0).unwrap();
                s
            })
            .collect();

        let mut seen = BTreeSet::new();
        for n in 0..CROWD {
            let got = recv(&pull, format_args!("PULL, after {n} of {CROWD} clients"));
            let got = String::from_utf8(got).unwrap();
            assert!(seen.insert(got.clone()), "{got} twice");
        }
        let want: BTreeSet<String> = (0..CROWD).map(|i| format!("client {i}")).collect();
        assert_eq!(seen, want);
        drop(pushes);
    });
}

/// A fan-in that outruns its reader: 100 PUSH clients into one PULL whose I/O thread has a
/// receive pool of 4 small buffers. First every client sends until its own pipe refuses
/// (DONTWAIT), with small kernel buffers on both sides, so every PULL pipe fills and every
/// connection pauses (its receive cancelled) while the other connections take the few
/// buffers; then the PULL reads everything while the clients send the rest, pausing and
/// resuming the connections over and over. Nothing may be lost, duplicated or reordered per
/// client, and no connection may be dropped: a cancelled receive that found no buffer was once
/// taken for a failed connection (the connection closed, what its peer had written was lost,
/// and the PULL stalled). Without that fix this failed in 4 of 6 runs (a gap in a client's
/// sequence, or the stall); `reactor::tests::a_cancelled_receive_that_runs_out_of_buffers_
/// ends_as_cancelled` is the deterministic check of the sequence itself.
#[test]
fn a_fan_in_that_fills_every_pipe_loses_nothing_and_drops_no_connection() {
    const CLIENTS: usize = 100;
    const EACH: u32 = 20_000;
    let _one = one_crowd_at_a_time();
    bounded(TEST_LIMIT, || {
        let server = Context::new();
        server.set_receive_pool(4, 4096).unwrap();
        let pull = sock(&server, SocketType::Pull);
        pull.set_rcvbuf(4096).unwrap();
        let ep = bind(&pull, Transport::Tcp);
        let clients = Context::new();
        let pushes: Vec<Socket> = (0..CLIENTS)
            .map(|_| {
                let s = sock(&clients, SocketType::Push);
                s.set_sndbuf(4096).unwrap();
                s.connect(&ep).unwrap();
                s
            })
            .collect();
        let body = |i: usize, seq: u32| {
            let mut b = [0u8; 64];
            b[..2].copy_from_slice(&(i as u16).to_le_bytes());
            b[2..6].copy_from_slice(&seq.to_le_bytes());
            b
        };
        // Every client sends until its pipe is full all the way back (or it sent them all).
        let mut sent = vec![0u32; CLIENTS];
        for (i, s) in pushes.iter().enumerate() {
            while sent[i] < EACH && s.send(&body(i, sent[i])[..], zeroring::DONTWAIT).is_ok() {
                sent[i] += 1;
            }
        }
        let sender = std::thread::spawn(move || {
            for (i, s) in pushes.iter().enumerate() {
                for seq in sent[i]..EACH {
                    s.send(&body(i, seq)[..], 0).unwrap();
                }
            }
            pushes
        });
        let mut next = vec![0u32; CLIENTS];
        for n in 0..CLIENTS as u64 * u64::from(EACH) {
            let got = recv(&pull, format_args!("PULL, after {n} messages"));
            let i = usize::from(u16::from_le_bytes([got[0], got[1]]));
            let seq = u32::from_le_bytes([got[2], got[3], got[4], got[5]]);
            assert_eq!(
                seq, next[i],
                "client {i}: message {seq} where {} was due",
                next[i]
            );
            next[i] += 1;
        }
        let pushes = sender.join().unwrap();
        let stats = pull.stats();
        assert_eq!(
            (stats.peers_attached, stats.peers_detached),
            (CLIENTS as u64, 0),
            "every connection stays up under the load"
        );
        drop(pushes);
    });
}

/// A crowd of DEALERs each sends a request to one ROUTER, and each reply is routed back to
/// the DEALER that asked.
#[test]
fn crowd_of_dealers_get_their_replies() {
    let _one = one_crowd_at_a_time();
    allow_fds(CROWD_FDS);
    bounded(TEST_LIMIT, || {
        let server = Context::new();
        let router = sock(&server, SocketType::Router);
        router.set_backlog(CROWD as i32).unwrap();
        let ep = bind(&router, Transport::Tcp);

        let clients = big_context();
        let dealers: Vec<Socket> = (0..CROWD)
            .map(|i| {
                let s = sock(&clients, SocketType::Dealer);
                s.connect(&ep).unwrap();
                s.send(format!("request {i}").as_bytes(), 0).unwrap();
                s
            })
            .collect();

        for n in 0..CROWD {
            let msg = router.recv_multipart(0).unwrap_or_else(|e| {
                panic!(
                    "ROUTER, after {n} of {CROWD} requests: nothing within {STALL_MS} ms ({e:?})"
                )
            });
            assert_eq!(msg.len(), 2, "[routing id, request]");
            let request = String::from_utf8(msg[1].clone()).unwrap();
            let i = request.strip_prefix("request ").expect("a request");
            router
                .send_multipart([msg[0].clone(), format!("reply {i}").into_bytes()], 0)
                .unwrap();
        }
        for (i, d) in dealers.iter().enumerate() {
            let got = recv(d, format_args!("DEALER {i}'s reply"));
            assert_eq!(got, format!("reply {i}").as_bytes());
        }
    });
}

/// One publisher, a crowd of subscribers: once every subscription has arrived (counted on an
/// XPUB with XPUB_VERBOSE), one message published reaches every subscriber.
#[test]
fn crowd_of_subscribers_all_get_the_message() {
    let _one = one_crowd_at_a_time();
    allow_fds(CROWD_FDS);
    bounded(TEST_LIMIT, || {
        let server = Context::new();
        let xpub = sock(&server, SocketType::XPub);
        xpub.set_xpub_verbose(true).unwrap();
        xpub.set_backlog(CROWD as i32).unwrap();
        xpub.set_sndhwm(0).unwrap();
        let ep = bind(&xpub, Transport::Tcp);

        let clients = big_context();
        let subs: Vec<Socket> = (0..CROWD)
            .map(|_| {
                let s = sock(&clients, SocketType::Sub);
                s.connect(&ep).unwrap();
                // After connect: a subscription made before it is never sent (a separate
                // bug, not this file's subject).
                s.set_subscribe(b"news").unwrap();
                s
            })
            .collect();

        for n in 0..CROWD {
            let sub = recv(
                &xpub,
                format_args!("XPUB, after {n} of {CROWD} subscriptions"),
            );
            assert_eq!(sub, b"\x01news", "a subscription to the topic");
        }
        xpub.send(&b"news: all here"[..], 0).unwrap();
        for (i, s) in subs.iter().enumerate() {
            let got = recv(s, format_args!("SUB {i}"));
            assert_eq!(got, b"news: all here");
        }
    });
}
