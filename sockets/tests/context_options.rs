//! Context options (zmq_ctx_set / zmq_ctx_get) with libzmq's defaults, ranges and effects:
//! the I/O threads take their name prefix, CPU set and scheduling policy when they start
//! (observed in /proc), and a priority the kernel refuses leaves a working context.

use std::fs;

use zeroring::context::ctx_opt;
use zeroring::{Context, Error, SocketType};

const TIMEOUT_MS: i32 = 10_000;

/// The ids of this process's threads whose name starts with `prefix`.
fn threads_named(prefix: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc/self/task").unwrap() {
        let tid = e.unwrap().file_name().into_string().unwrap();
        let comm = fs::read_to_string(format!("/proc/self/task/{tid}/comm")).unwrap_or_default();
        if comm.trim_end().starts_with(prefix) {
            out.push(tid);
        }
    }
    out
}

/// Field `n` (1-based, as proc(5) numbers them) of /proc/self/task/TID/stat.
fn stat_field(tid: &str, n: usize) -> i64 {
    let stat = fs::read_to_string(format!("/proc/self/task/{tid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    after_comm
        .split_whitespace()
        .nth(n - 3)
        .unwrap()
        .parse()
        .unwrap()
}

/// This thread's id: what an I/O thread inherits its policy and nice value from (the context
/// starts the engine on the calling thread).
fn own_tid() -> String {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) }.to_string()
}

fn allowed_cpus(tid: &str) -> String {
    let status = fs::read_to_string(format!("/proc/self/task/{tid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
        .unwrap()
        .trim()
        .to_string()
}

/// A message through the context over tcp: it works.
fn round_trip(ctx: &Context) {
    round_trip_of(ctx, b"ping");
}

/// `body` from a PUSH to a PULL of `ctx` over tcp loopback, arriving whole.
fn round_trip_of(ctx: &Context, body: &[u8]) {
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvtimeo(TIMEOUT_MS).unwrap();
    pull.bind("tcp://127.0.0.1:*").unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_linger(0).unwrap();
    push.connect(&pull.get_last_endpoint().unwrap().unwrap())
        .unwrap();
    push.send(body, 0).unwrap();
    assert_eq!(pull.recv_bytes(0).unwrap(), body);
}

#[test]
fn defaults_are_libzmqs() {
    let ctx = Context::new();
    for (opt, v) in [
        (ctx_opt::IO_THREADS, 1),
        (ctx_opt::MAX_SOCKETS, 1023),
        (ctx_opt::SOCKET_LIMIT, 65535),
        (ctx_opt::MAX_MSGSZ, i32::MAX),
        (ctx_opt::MSG_T_SIZE, 64),
        (ctx_opt::BLOCKY, 1),
        (ctx_opt::IPV6, 0),
        (ctx_opt::ZERO_COPY_RECV, 1),
        (ctx_opt::THREAD_SCHED_POLICY, -1),
    ] {
        assert_eq!(ctx.get(opt), Ok(v), "option {opt}");
    }
    // And libzmq agrees where the zmq crate can ask it.
    let z = zmq::Context::new();
    assert_eq!(
        ctx.get(ctx_opt::IO_THREADS).unwrap(),
        z.get_io_threads().unwrap()
    );
}

#[test]
fn values_round_trip_and_bad_ones_are_refused() {
    let ctx = Context::new();
    ctx.set(ctx_opt::ZERO_COPY_RECV, 0).unwrap();
    assert_eq!(ctx.get(ctx_opt::ZERO_COPY_RECV), Ok(0));
    ctx.set(ctx_opt::THREAD_SCHED_POLICY, libc::SCHED_BATCH)
        .unwrap();
    assert_eq!(ctx.get(ctx_opt::THREAD_SCHED_POLICY), Ok(libc::SCHED_BATCH));
    ctx.set(ctx_opt::THREAD_NAME_PREFIX, 7).unwrap();
    assert_eq!(ctx.get(ctx_opt::THREAD_NAME_PREFIX), Ok(7));
    ctx.set(ctx_opt::MAX_MSGSZ, 1000).unwrap();
    assert_eq!(ctx.get(ctx_opt::MAX_MSGSZ), Ok(1000));
    for (opt, bad) in [
        (ctx_opt::ZERO_COPY_RECV, 2),
        (ctx_opt::THREAD_PRIORITY, -2),
        (ctx_opt::THREAD_SCHED_POLICY, -5),
        (ctx_opt::THREAD_NAME_PREFIX, -1),
        (ctx_opt::THREAD_AFFINITY_CPU_ADD, -1),
        (ctx_opt::THREAD_AFFINITY_CPU_REMOVE, 3), // not in the set
        (ctx_opt::MAX_SOCKETS, 0),
        (ctx_opt::IO_THREADS, -1),
        (ctx_opt::MSG_T_SIZE, 1), // read-only
    ] {
        assert_eq!(
            ctx.set(opt, bad),
            Err(Error::EINVAL),
            "option {opt} = {bad}"
        );
    }
    // MAX_SOCKETS above SOCKET_LIMIT: libzmq on Linux takes any positive value (its epoll
    // poller clips nothing); pyzmq's libzmq 4.3.5 took 2^30 and read it back.
    ctx.set(ctx_opt::MAX_SOCKETS, 1 << 30).unwrap();
    assert_eq!(ctx.get(ctx_opt::MAX_SOCKETS), Ok(1 << 30));
    // THREAD_PRIORITY shares number 3 with SOCKET_LIMIT: writes are the priority, reads the
    // limit, as in zmq.h.
    ctx.set(ctx_opt::THREAD_PRIORITY, 5).unwrap();
    assert_eq!(ctx.get(ctx_opt::SOCKET_LIMIT), Ok(65535));
}

/// The receive pool: a shape the pool can take is kept and used by the engine it starts (a
/// one-buffer pool still carries a message larger than the buffer); anything else is EINVAL
/// and changes nothing.
#[test]
fn the_receive_pool_is_set_before_the_engine_starts() {
    let ctx = Context::new();
    let default = ctx.receive_pool();
    assert_eq!((default.count, default.size), (64, 64 * 1024));
    for (count, size) in [(0u16, 4096u32), (3, 4096), (4, 0), (65535, 4096)] {
        assert_eq!(
            ctx.set_receive_pool(count, size),
            Err(Error::EINVAL),
            "{count} x {size}"
        );
    }
    assert_eq!(ctx.receive_pool(), default);
    ctx.set_receive_pool(1, 512).unwrap();
    assert_eq!(
        (ctx.receive_pool().count, ctx.receive_pool().size),
        (1, 512)
    );
    round_trip_of(&ctx, &[0xA5u8; 10_000]);
}

#[test]
fn io_threads_take_the_name_prefix_and_the_cpu_set() {
    let ctx = Context::new();
    ctx.set(ctx_opt::IO_THREADS, 2).unwrap();
    ctx.set(ctx_opt::THREAD_NAME_PREFIX, 41).unwrap();
    ctx.set(ctx_opt::THREAD_AFFINITY_CPU_ADD, 0).unwrap();
    ctx.set(ctx_opt::THREAD_AFFINITY_CPU_ADD, 1).unwrap();
    ctx.set(ctx_opt::THREAD_AFFINITY_CPU_REMOVE, 1).unwrap();
    round_trip(&ctx);
    let tids = threads_named("41-zeroring-io");
    assert_eq!(tids.len(), 2, "both I/O threads carry the prefix");
    for tid in &tids {
        assert_eq!(allowed_cpus(tid), "0", "thread {tid} runs on the set only");
    }
}

#[test]
fn io_threads_take_the_scheduling_policy() {
    let ctx = Context::new();
    ctx.set(ctx_opt::THREAD_NAME_PREFIX, 42).unwrap();
    // SCHED_BATCH needs no privilege, so the change is observable anywhere.
    ctx.set(ctx_opt::THREAD_SCHED_POLICY, libc::SCHED_BATCH)
        .unwrap();
    round_trip(&ctx);
    let tids = threads_named("42-zeroring-io");
    assert_eq!(tids.len(), 1);
    // proc(5): field 41 is the scheduling policy.
    assert_eq!(stat_field(&tids[0], 41), libc::SCHED_BATCH as i64);
}

#[test]
fn a_refused_priority_leaves_a_working_context() {
    // A real-time priority needs CAP_SYS_NICE: granted or refused, the context works, and
    // the thread has either what was asked or what it inherited.
    let me = own_tid();
    let (inherited_policy, inherited_nice) = (stat_field(&me, 41), stat_field(&me, 19));
    let ctx = Context::new();
    ctx.set(ctx_opt::THREAD_NAME_PREFIX, 43).unwrap();
    ctx.set(ctx_opt::THREAD_SCHED_POLICY, libc::SCHED_RR)
        .unwrap();
    ctx.set(ctx_opt::THREAD_PRIORITY, 1).unwrap();
    round_trip(&ctx);
    let tids = threads_named("43-zeroring-io");
    assert_eq!(tids.len(), 1);
    let policy = stat_field(&tids[0], 41);
    let rt_priority = stat_field(&tids[0], 40);
    assert!(
        (policy, rt_priority) == (libc::SCHED_RR as i64, 1) || policy == inherited_policy,
        "policy {policy}, rt priority {rt_priority}"
    );

    // Under SCHED_OTHER a priority asks for nice −20 (libzmq's reading); also survivable.
    let ctx = Context::new();
    ctx.set(ctx_opt::THREAD_NAME_PREFIX, 44).unwrap();
    ctx.set(ctx_opt::THREAD_PRIORITY, 10).unwrap();
    round_trip(&ctx);
    let tids = threads_named("44-zeroring-io");
    assert_eq!(tids.len(), 1);
    // proc(5): field 19 is the nice value.
    let nice = stat_field(&tids[0], 19);
    assert!(nice == -20 || nice == inherited_nice, "nice {nice}");
}
