//! The connection-scale workload (`zeroring-perf conns`): N tcp connections into one socket.
//!
//! For each N and subject, in processes of their own (so the two libraries never share a heap):
//! - **connect**: N PUSH clients connect at once to one PULL and each sends one message; the
//!   time from "go" until the PULL has all N (connect, handshake and one message each);
//! - **memory per idle connection**: the RSS growth of the PULL's process over those N
//!   connections, and of the clients' processes over their N sockets, each divided by N;
//! - **fan-in**: every client sends `msgs` small messages; messages/s into the one PULL, timed
//!   from its first to its last message;
//! - **fan-out**: one XPUB (XPUB_VERBOSE, to count subscriptions) to N SUBs: the time until all
//!   N subscriptions have arrived, then `msgs` messages published; deliveries/s (N × msgs over
//!   the time from the first publish to the last delivery, on CLOCK_MONOTONIC across processes);
//! - **idle context**: the RSS growth of a fresh process from creating one context and one
//!   socket, nothing else.
//!
//! Clients are spread over several processes (`--per-process` connections each) so that no
//! process needs more descriptors than RLIMIT_NOFILE's hard limit allows; within a process,
//! clients use one context per 1,000 sockets (libzmq's default MAX_SOCKETS is 1023 and the
//! `zmq` crate cannot raise it), for both subjects alike.
//!
//! Children talk to the parent in lines: commands on stdin, answers on stdout. This file is the
//! parent (it spawns the processes, times the phases and prints the table); `child.rs` is the
//! children, `sockets.rs` the two libraries behind the one interface both use.
//! Must never: wait unboundedly (every receive has a timeout and a failed child ends its run).

use std::fmt::Write as _;
use std::io::{self, BufRead, BufReader, Write};
use std::process::{ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use crate::subject::Subject;

mod child;
mod sockets;

pub use child::{run_child, ChildArgs, Mode, Role};

/// How long any receive may wait before a run is called stalled.
const STALL_MS: i32 = 30_000;

/// Client sockets per context in a client process.
const SOCKETS_PER_CONTEXT: usize = 1_000;

/// Size of the fan-in and fan-out messages.
pub const MSG_SIZE: usize = 64;

// ----- process-level helpers ------------------------------------------------------------

/// This process's resident set, in KiB.
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // SAFETY: sysconf only reads a configuration value.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page / 1024
}

/// CLOCK_MONOTONIC in ns: one clock for every process of a run.
fn mono_ns() -> u64 {
    // SAFETY: timespec is plain data that clock_gettime fills in.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: a valid clock id and a live out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Raises the soft RLIMIT_NOFILE to the hard limit; returns the limit now in force.
pub fn raise_nofile() -> u64 {
    // SAFETY: rlimit is plain data that getrlimit fills in.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let mut raised = lim;
            raised.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                return raised.rlim_cur;
            }
        }
    }
    lim.rlim_cur
}

fn bad(what: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_string())
}

/// Reads one command or answer line (without its newline); EOF is an error.
fn read_line(r: &mut impl BufRead, from: &str) -> io::Result<String> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("{from} ended without answering (see its error above)"),
        ));
    }
    Ok(line.trim_end().to_string())
}

fn say(line: impl std::fmt::Display) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()
}

fn expect_cmd(stdin: &mut impl BufRead, want: &str) -> io::Result<()> {
    let got = read_line(stdin, "the parent")?;
    if got == "quit" {
        // The parent gave up on this run (another process failed): leave quietly.
        std::process::exit(0);
    }
    if got == want {
        Ok(())
    } else {
        Err(bad(format!("expected command {want:?}, got {got:?}")))
    }
}

// ----- the parent ------------------------------------------------------------------------

/// A child process and its two line streams.
struct Proc {
    child: std::process::Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
    name: String,
}

impl Proc {
    fn spawn(a: &ChildArgs, name: String) -> io::Result<Proc> {
        let subject = match a.subject {
            Subject::Zeroring => "zeroring",
            Subject::Libzmq => "libzmq",
            Subject::Raw => "raw",
            Subject::Zmqrs => "zmqrs",
            Subject::Rzmq => "rzmq",
            Subject::Omq => "omq",
        };
        let role = match a.role {
            Role::Server => "server",
            Role::Client => "client",
            Role::Idle => "idle",
        };
        let mode = match a.mode {
            Mode::Fanin => "fanin",
            Mode::Fanout => "fanout",
        };
        let mut child = Command::new(std::env::current_exe()?)
            .args(["conns-child", "--role", role, "--mode", mode])
            .args(["--subject", subject, "--endpoint", &a.endpoint])
            .args(["--n", &a.n.to_string(), "--msgs", &a.msgs.to_string()])
            .args(["--io-threads", &a.io_threads.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let stdin = child.stdin.take().ok_or_else(|| bad("no stdin"))?;
        let stdout = BufReader::new(child.stdout.take().ok_or_else(|| bad("no stdout"))?);
        Ok(Proc {
            child,
            stdin,
            stdout,
            name,
        })
    }

    fn tell(&mut self, cmd: &str) -> io::Result<()> {
        writeln!(self.stdin, "{cmd}")?;
        self.stdin.flush()
    }

    /// The next answer, which must start with `tag`; returns its fields after the tag.
    fn answer(&mut self, tag: &str) -> io::Result<Vec<String>> {
        let line = read_line(&mut self.stdout, &self.name)?;
        if let Some(why) = line.strip_prefix("error ") {
            return Err(io::Error::other(format!("{}: {why}", self.name)));
        }
        let mut it = line.split_whitespace();
        if it.next() != Some(tag) {
            return Err(bad(format!(
                "{}: expected {tag:?}, got {line:?}",
                self.name
            )));
        }
        Ok(it.map(str::to_string).collect())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        // Our own child: a finished run has been told to quit; a failed one is stopped here.
        let _ = self.tell("quit");
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match self.child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(20))
                }
                Ok(None) => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    return;
                }
            }
        }
    }
}

fn num<T: std::str::FromStr>(fields: &[String], i: usize) -> io::Result<T> {
    fields
        .get(i)
        .and_then(|f| f.parse().ok())
        .ok_or_else(|| bad(format!("field {i} of {fields:?}")))
}

/// The parent's parameters.
#[derive(Clone, Debug)]
pub struct Config {
    pub ns: Vec<usize>,
    pub subjects: Vec<Subject>,
    /// Client connections per client process.
    pub per_process: usize,
    /// Fan-in / fan-out messages in all per N (each client sends, each subscriber receives,
    /// `total / N` of them, at least 1; at most 1,000 for a subscriber, 1,000,000 for a
    /// sender).
    pub total_msgs: u64,
    pub io_threads: i32,
}

/// One (N, subject) result; each phase may have failed on its own.
#[derive(Debug)]
pub struct Row {
    pub n: usize,
    pub subject: Subject,
    pub connect: Result<Duration, String>,
    pub server_kib_per_conn: Option<f64>,
    pub client_kib_per_conn: Option<f64>,
    pub fanin_msgs_per_sec: Result<f64, String>,
    pub subscribe: Result<Duration, String>,
    pub fanout_msgs_per_sec: Result<f64, String>,
    /// How long the XPUB's sends of the fan-out messages took (they only queue).
    pub publish: Option<Duration>,
}

/// Messages each connection sends (fan-in) or receives (fan-out): `total / N`, at least 1. A
/// fan-out delivers every message to every subscriber, so it stays within the XPUB's
/// high-water mark (1,000: none dropped); a fan-in may run longer, which a comparison of the
/// backends needs (100 connections × 1,000 messages took ~40 ms).
fn msgs_per_client(c: &Config, n: usize, mode: Mode) -> u64 {
    let cap = match mode {
        Mode::Fanout => 1_000,
        Mode::Fanin => 1_000_000,
    };
    (c.total_msgs / n as u64).clamp(1, cap)
}

fn spawn_clients(
    c: &Config,
    subject: Subject,
    mode: Mode,
    n: usize,
    endpoint: &str,
) -> io::Result<Vec<Proc>> {
    let mut procs = Vec::new();
    let mut left = n;
    while left > 0 {
        let k = left.min(c.per_process.max(1));
        left -= k;
        let a = ChildArgs {
            role: Role::Client,
            mode,
            subject,
            n: k,
            msgs: msgs_per_client(c, n, mode),
            endpoint: endpoint.to_string(),
            io_threads: c.io_threads,
        };
        procs.push(Proc::spawn(
            &a,
            format!("{subject:?} client {}", procs.len()),
        )?);
    }
    for p in &mut procs {
        p.answer("ready")?;
    }
    Ok(procs)
}

struct Fanin {
    connect: Duration,
    server_kib_per_conn: f64,
    client_kib_per_conn: f64,
    rate: Result<f64, String>,
}

fn fanin(c: &Config, subject: Subject, n: usize) -> io::Result<Fanin> {
    let msgs = msgs_per_client(c, n, Mode::Fanin);
    let mut server = Proc::spawn(
        &ChildArgs {
            role: Role::Server,
            mode: Mode::Fanin,
            subject,
            n,
            msgs,
            endpoint: String::new(),
            io_threads: c.io_threads,
        },
        format!("{subject:?} PULL"),
    )?;
    let ep = server
        .answer("ready")?
        .first()
        .cloned()
        .ok_or_else(|| bad("endpoint"))?;
    let mut clients = spawn_clients(c, subject, Mode::Fanin, n, &ep)?;
    server.tell("go")?;
    for p in &mut clients {
        p.tell("go")?;
    }
    let f = server.answer("connected")?;
    let connect = Duration::from_nanos(num(&f, 0)?);
    let (rss0, rss1): (u64, u64) = (num(&f, 1)?, num(&f, 2)?);
    let mut client_growth = 0u64;
    for p in &mut clients {
        p.tell("measure")?;
        let f = p.answer("rss")?;
        client_growth += num::<u64>(&f, 1)?.saturating_sub(num(&f, 0)?);
    }
    let rate = (|| -> io::Result<f64> {
        server.tell("fanin")?;
        for p in &mut clients {
            p.tell("fanin")?;
        }
        let ns: u64 = num(&server.answer("fanin")?, 0)?;
        for p in &mut clients {
            p.answer("sent")?;
        }
        Ok((n as u64 * msgs).saturating_sub(1) as f64 / (ns.max(1) as f64 / 1e9))
    })()
    .map_err(|e| e.to_string());
    Ok(Fanin {
        connect,
        server_kib_per_conn: rss1.saturating_sub(rss0) as f64 / n as f64,
        client_kib_per_conn: client_growth as f64 / n as f64,
        rate,
    })
}

/// The fan-out phase's results: the time to subscribe all, the deliveries/s, and how long
/// publishing itself took.
type FanoutResult = (Duration, Result<(f64, Duration), String>);

fn fanout(c: &Config, subject: Subject, n: usize) -> io::Result<FanoutResult> {
    let msgs = msgs_per_client(c, n, Mode::Fanout);
    let mut server = Proc::spawn(
        &ChildArgs {
            role: Role::Server,
            mode: Mode::Fanout,
            subject,
            n,
            msgs,
            endpoint: String::new(),
            io_threads: c.io_threads,
        },
        format!("{subject:?} XPUB"),
    )?;
    let ep = server
        .answer("ready")?
        .first()
        .cloned()
        .ok_or_else(|| bad("endpoint"))?;
    let mut clients = spawn_clients(c, subject, Mode::Fanout, n, &ep)?;
    server.tell("go")?;
    for p in &mut clients {
        p.tell("go")?;
    }
    let subscribe = Duration::from_nanos(num(&server.answer("subscribed")?, 0)?);
    let rate = (|| -> io::Result<(f64, Duration)> {
        for p in &mut clients {
            p.tell("measure")?;
            p.answer("rss")?;
            p.tell("fanout")?;
            p.answer("listening")?;
        }
        server.tell("fanout")?;
        let f = server.answer("published")?;
        let (t0, t1): (u64, u64) = (num(&f, 0)?, num(&f, 1)?);
        let mut last = t0;
        for p in &mut clients {
            last = last.max(num(&p.answer("received")?, 0)?);
        }
        let rate = (n as u64 * msgs) as f64 / (last.saturating_sub(t0).max(1) as f64 / 1e9);
        Ok((rate, Duration::from_nanos(t1.saturating_sub(t0))))
    })()
    .map_err(|e| e.to_string());
    Ok((subscribe, rate))
}

/// The RSS (KiB) of a fresh process before and after one context and one socket.
pub fn idle_context(subject: Subject, io_threads: i32) -> io::Result<(u64, u64)> {
    let mut p = Proc::spawn(
        &ChildArgs {
            role: Role::Idle,
            mode: Mode::Fanin,
            subject,
            n: 0,
            msgs: 0,
            endpoint: String::new(),
            io_threads,
        },
        format!("{subject:?} idle context"),
    )?;
    let f = p.answer("idle")?;
    Ok((num(&f, 0)?, num(&f, 1)?))
}

/// Runs every N for every subject (subjects interleaved within each N).
pub fn run(c: &Config) -> Vec<Row> {
    let limit = raise_nofile();
    let mut rows = Vec::new();
    for &n in &c.ns {
        for &subject in &c.subjects {
            eprint!("\rconns: N = {n}, {subject:?}: fan-in            ");
            let _ = io::stderr().flush();
            let mut row = Row {
                n,
                subject,
                connect: Err(String::new()),
                server_kib_per_conn: None,
                client_kib_per_conn: None,
                fanin_msgs_per_sec: Err(String::new()),
                subscribe: Err(String::new()),
                fanout_msgs_per_sec: Err(String::new()),
                publish: None,
            };
            if n as u64 + 256 > limit {
                let why = format!(
                    "needs {} descriptors in one process; RLIMIT_NOFILE is {limit}",
                    n + 256
                );
                row.connect = Err(why.clone());
                row.fanin_msgs_per_sec = Err(why.clone());
                row.subscribe = Err(why.clone());
                row.fanout_msgs_per_sec = Err(why);
                rows.push(row);
                continue;
            }
            match fanin(c, subject, n) {
                Ok(f) => {
                    row.connect = Ok(f.connect);
                    row.server_kib_per_conn = Some(f.server_kib_per_conn);
                    row.client_kib_per_conn = Some(f.client_kib_per_conn);
                    row.fanin_msgs_per_sec = f.rate;
                }
                Err(e) => {
                    row.connect = Err(e.to_string());
                    row.fanin_msgs_per_sec = Err("not run".into());
                }
            }
            eprint!("\rconns: N = {n}, {subject:?}: fan-out           ");
            let _ = io::stderr().flush();
            match fanout(c, subject, n) {
                Ok((s, rate)) => {
                    row.subscribe = Ok(s);
                    row.publish = rate.as_ref().ok().map(|r| r.1);
                    row.fanout_msgs_per_sec = rate.map(|r| r.0);
                }
                Err(e) => {
                    row.subscribe = Err(e.to_string());
                    row.fanout_msgs_per_sec = Err("not run".into());
                }
            }
            rows.push(row);
        }
    }
    eprintln!("\r{:60}", "");
    rows
}

fn cell<T>(r: &Result<T, String>, f: impl Fn(&T) -> String) -> String {
    match r {
        Ok(v) => f(v),
        Err(_) => "FAILED".into(),
    }
}

fn kib(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.1}"))
}

/// A subject's idle-context RSS in KiB: (before, after) one context and one socket.
pub type IdleRss = (Subject, Result<(u64, u64), String>);

/// The table, then one line per failure.
pub fn table(rows: &[Row], idle: &[IdleRss]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:>6} {:<9} {:>10} {:>11} {:>12} {:>12} {:>13} {:>10} {:>14} {:>10}",
        "conns",
        "subject",
        "connect s",
        "connects/s",
        "srv KiB/conn",
        "cli KiB/conn",
        "fan-in msg/s",
        "subscr. s",
        "fan-out msg/s",
        "publish s"
    );
    let mut failures = Vec::new();
    for r in rows {
        let _ = writeln!(
            out,
            "{:>6} {:<9} {:>10} {:>11} {:>12} {:>12} {:>13} {:>10} {:>14} {:>10}",
            r.n,
            format!("{:?}", r.subject).to_lowercase(),
            cell(&r.connect, |d| format!("{:.3}", d.as_secs_f64())),
            cell(&r.connect, |d| format!(
                "{:.0}",
                r.n as f64 / d.as_secs_f64()
            )),
            kib(r.server_kib_per_conn),
            kib(r.client_kib_per_conn),
            cell(&r.fanin_msgs_per_sec, |v| format!("{v:.0}")),
            cell(&r.subscribe, |d| format!("{:.3}", d.as_secs_f64())),
            cell(&r.fanout_msgs_per_sec, |v| format!("{v:.0}")),
            r.publish
                .map_or("—".into(), |d| format!("{:.3}", d.as_secs_f64())),
        );
        for (what, e) in [
            ("connect", r.connect.as_ref().err()),
            ("fan-in", r.fanin_msgs_per_sec.as_ref().err()),
            ("subscribe", r.subscribe.as_ref().err()),
            ("fan-out", r.fanout_msgs_per_sec.as_ref().err()),
        ] {
            if let Some(e) = e.filter(|e| !e.is_empty() && *e != "not run") {
                failures.push(format!("  N = {} {:?} {what}: {e}", r.n, r.subject));
            }
        }
    }
    let _ = writeln!(
        out,
        "\nidle context (new process, one context + one socket), RSS KiB:"
    );
    for (s, r) in idle {
        let _ = match r {
            Ok((before, after)) => writeln!(
                out,
                "  {:<9} {:>8} before, {:>8} after: +{} KiB",
                format!("{s:?}").to_lowercase(),
                before,
                after,
                after.saturating_sub(*before)
            ),
            Err(e) => writeln!(out, "  {s:?}: FAILED ({e})"),
        };
    }
    if !failures.is_empty() {
        let _ = writeln!(out, "\nfailures:");
        for f in failures {
            let _ = writeln!(out, "{f}");
        }
    }
    out
}
