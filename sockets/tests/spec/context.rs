use std::sync::mpsc;

use zeroring::context::ctx_opt;
use zeroring::{Context, Error, SocketType, DONTWAIT};

use crate::common::*;

#[test]
fn shutdown_wakes_blocked_calls_with_eterm() {
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.bind("inproc://term").unwrap();
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        tx.send(()).unwrap();
        let r = pull.recv_bytes(0);
        (r, pull)
    });
    rx.recv().unwrap();
    ctx.shutdown();
    let (r, pull) = h.join().unwrap();
    assert_eq!(r, Err(Error::ETERM));
    assert_eq!(pull.send("x", DONTWAIT), Err(Error::ETERM));
    assert_eq!(pull.recv_bytes(DONTWAIT), Err(Error::ETERM));
    assert_eq!(ctx.socket(SocketType::Pair).err(), Some(Error::ETERM));
    drop(pull);
    ctx.term();
}

#[test]
fn term_waits_for_sockets_to_close() {
    let ctx = Context::new();
    let s = ctx.socket(SocketType::Rep).unwrap();
    let (tx, rx) = mpsc::channel();
    let h = std::thread::spawn(move || {
        // Blocks until term's shutdown wakes it, then closes.
        let r = s.recv_bytes(0);
        tx.send(r).unwrap();
        drop(s);
    });
    ctx.clone().term();
    assert_eq!(rx.recv().unwrap(), Err(Error::ETERM));
    h.join().unwrap();
    assert_eq!(ctx.socket_count(), 0);
}

#[test]
fn context_options() {
    let ctx = Context::new();
    assert_eq!(ctx.get(ctx_opt::IO_THREADS).unwrap(), 1);
    assert_eq!(ctx.get(ctx_opt::MAX_SOCKETS).unwrap(), 1023);
    assert_eq!(ctx.get(ctx_opt::SOCKET_LIMIT).unwrap(), 65535);
    assert_eq!(ctx.get(ctx_opt::MSG_T_SIZE).unwrap(), 64);
    assert_eq!(ctx.get(ctx_opt::BLOCKY).unwrap(), 1);
    assert_eq!(ctx.get(ctx_opt::IPV6).unwrap(), 0);
    assert_eq!(ctx.get(ctx_opt::MAX_MSGSZ).unwrap(), i32::MAX);
    assert_eq!(ctx.get(12345), Err(Error::EINVAL));
    assert_eq!(ctx.set(ctx_opt::MAX_SOCKETS, 0), Err(Error::EINVAL));
    ctx.set_io_threads(2).unwrap();
    assert_eq!(ctx.io_threads(), 2);
    ctx.add_thread_cpu(0).unwrap();
    ctx.remove_thread_cpu(0).unwrap();
    assert_eq!(ctx.remove_thread_cpu(0), Err(Error::EINVAL));
    ctx.set_thread_name_prefix("app").unwrap();
    assert_eq!(ctx.thread_name_prefix(), "app");
    // Inproc never starts I/O threads.
    let _a = bound(&ctx, SocketType::Pair, "inproc://noio");
    assert!(!ctx.engine_started());
}

#[test]
fn max_sockets_is_enforced() {
    let ctx = Context::new();
    ctx.set_max_sockets(2).unwrap();
    let a = ctx.socket(SocketType::Pair).unwrap();
    let _b = ctx.socket(SocketType::Pair).unwrap();
    assert_eq!(ctx.socket(SocketType::Pair).err(), Some(Error::EMFILE));
    drop(a);
    ctx.socket(SocketType::Pair).unwrap();
}

#[test]
fn blocky_false_means_linger_zero_and_ipv6_default() {
    let ctx = Context::new();
    ctx.set_blocky(false).unwrap();
    ctx.set_ipv6(true).unwrap();
    let s = ctx.socket(SocketType::Pair).unwrap();
    assert_eq!(s.get_linger().unwrap(), 0);
    assert!(s.get_ipv6().unwrap());
}

#[test]
fn max_msgsz_refuses_bigger_messages() {
    let ctx = Context::new();
    ctx.set_max_msgsz(4).unwrap();
    let s = ctx.socket(SocketType::Pair).unwrap();
    assert_eq!(s.send("12345", DONTWAIT), Err(Error::EMSGSIZE));
}

#[test]
fn draft_types_are_not_available_yet() {
    let ctx = Context::new();
    assert!(
        ctx.socket(SocketType::Stream).is_ok(),
        "STREAM arrived with the wire transports"
    );
    assert_eq!(ctx.socket(SocketType::Server).err(), Some(Error::EINVAL));
}
