//! The conns workload's child processes: the server (the PULL or XPUB with every connection),
//! a share of the clients, or an idle context. Each takes its commands on stdin and answers on
//! stdout, one line each. Must never: wait unboundedly (every receive has a timeout).

use std::io::{self, BufRead};
use std::time::{Duration, Instant};

use super::sockets::{new_ctx, Ctx, Kind, Sock};
use super::{
    bad, expect_cmd, mono_ns, raise_nofile, rss_kib, say, MSG_SIZE, SOCKETS_PER_CONTEXT, STALL_MS,
};
use crate::subject::Subject;

/// Which side of which phase a child plays.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The PULL (fan-in) or XPUB (fan-out) with all the connections.
    Server,
    /// A share of the PUSH (fan-in) or SUB (fan-out) clients.
    Client,
    /// One context and one socket, nothing else.
    Idle,
}

/// Fan-in (PUSH clients → PULL) or fan-out (XPUB → SUB clients).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    Fanin,
    Fanout,
}

/// A child's parameters.
#[derive(Clone, Debug)]
pub struct ChildArgs {
    pub role: Role,
    pub mode: Mode,
    pub subject: Subject,
    /// Server: connections in all; client: this process's share.
    pub n: usize,
    pub msgs: u64,
    pub endpoint: String,
    pub io_threads: i32,
}

/// Runs a child (the hidden `conns-child` command).
pub fn run_child(a: &ChildArgs) -> io::Result<()> {
    raise_nofile();
    let mut stdin = io::stdin().lock();
    match (a.role, a.mode) {
        (Role::Idle, _) => {
            let before = rss_kib();
            let ctx = new_ctx(a.subject, a.io_threads)?;
            let s = ctx.socket(Kind::Push)?;
            // libzmq starts its threads with the first socket; both have them running now.
            let after = rss_kib();
            say(format!("idle {before} {after}"))?;
            drop(s);
            Ok(())
        }
        (Role::Server, Mode::Fanin) => fanin_server(a, &mut stdin),
        (Role::Server, Mode::Fanout) => fanout_server(a, &mut stdin),
        (Role::Client, mode) => client(a, mode, &mut stdin),
    }
}

fn fanin_server(a: &ChildArgs, stdin: &mut impl BufRead) -> io::Result<()> {
    let ctx = new_ctx(a.subject, a.io_threads)?;
    let mut pull = ctx.socket(Kind::Pull)?;
    let ep = pull.bind_tcp()?;
    let rss0 = rss_kib();
    say(format!("ready {ep}"))?;
    expect_cmd(stdin, "go")?;
    let start = Instant::now();
    for i in 0..a.n {
        pull.recv(false)
            .map_err(|e| stalled("PULL", i as u64, a.n as u64, "first messages", e))?;
    }
    let connect = start.elapsed();
    let rss1 = rss_kib();
    say(format!("connected {} {rss0} {rss1}", connect.as_nanos()))?;

    expect_cmd(stdin, "fanin")?;
    let total = a.n as u64 * a.msgs;
    pull.recv(false)
        .map_err(|e| stalled("PULL", 0, total, "fan-in messages", e))?;
    let first = Instant::now();
    for i in 1..total {
        pull.recv(false)
            .map_err(|e| stalled("PULL", i, total, "fan-in messages", e))?;
    }
    say(format!("fanin {}", first.elapsed().as_nanos()))?;
    expect_cmd(stdin, "quit")
}

fn stalled(who: &str, got: u64, of: u64, what: &str, e: io::Error) -> io::Error {
    io::Error::new(
        io::ErrorKind::TimedOut,
        format!("{who} stalled after {got} of {of} {what} ({e})"),
    )
}

fn fanout_server(a: &ChildArgs, stdin: &mut impl BufRead) -> io::Result<()> {
    let ctx = new_ctx(a.subject, a.io_threads)?;
    let mut xpub = ctx.socket(Kind::XPub)?;
    let ep = xpub.bind_tcp()?;
    say(format!("ready {ep}"))?;
    expect_cmd(stdin, "go")?;
    let start = Instant::now();
    for i in 0..a.n {
        xpub.recv(false)
            .map_err(|e| stalled("XPUB", i as u64, a.n as u64, "subscriptions", e))?;
        if xpub.last() != b"\x01" {
            return Err(bad(format!(
                "unexpected subscription message {:?}",
                xpub.last()
            )));
        }
    }
    say(format!("subscribed {}", start.elapsed().as_nanos()))?;
    expect_cmd(stdin, "fanout")?;
    let body = vec![0x5Au8; MSG_SIZE];
    let t0 = mono_ns();
    for _ in 0..a.msgs {
        xpub.send(&body)?;
    }
    say(format!("published {t0} {}", mono_ns()))?;
    expect_cmd(stdin, "quit")
}

fn client(a: &ChildArgs, mode: Mode, stdin: &mut impl BufRead) -> io::Result<()> {
    let kind = if mode == Mode::Fanin {
        Kind::Push
    } else {
        Kind::Sub
    };
    let rss0 = rss_kib();
    let contexts: Vec<Box<dyn Ctx>> = (0..a.n.div_ceil(SOCKETS_PER_CONTEXT))
        .map(|_| new_ctx(a.subject, a.io_threads))
        .collect::<io::Result<_>>()?;
    let mut socks: Vec<Box<dyn Sock>> = (0..a.n)
        .map(|i| contexts[i / SOCKETS_PER_CONTEXT].socket(kind))
        .collect::<io::Result<_>>()?;
    say("ready")?;
    expect_cmd(stdin, "go")?;
    let hello = vec![0x5Au8; MSG_SIZE];
    for s in &socks {
        s.connect(&a.endpoint)?;
        if mode == Mode::Fanin {
            s.send(&hello)?;
        } else {
            // After connect: zeroring loses a subscription made before it.
            s.subscribe_all()?;
        }
    }
    expect_cmd(stdin, "measure")?;
    say(format!("rss {rss0} {}", rss_kib()))?;

    if mode == Mode::Fanin {
        expect_cmd(stdin, "fanin")?;
        for _ in 0..a.msgs {
            for s in &socks {
                s.send(&hello)?;
            }
        }
        say("sent")?;
    } else {
        expect_cmd(stdin, "fanout")?;
        say("listening")?;
        let mut left: Vec<u64> = vec![a.msgs; socks.len()];
        let mut pending = socks.len();
        let mut last = mono_ns();
        let mut quiet_since = Instant::now();
        while pending > 0 {
            let mut any = false;
            for (s, l) in socks.iter_mut().zip(left.iter_mut()) {
                while *l > 0 {
                    if !s.recv(true)? {
                        break;
                    }
                    *l -= 1;
                    any = true;
                    if *l == 0 {
                        pending -= 1;
                    }
                }
            }
            if any {
                last = mono_ns();
                quiet_since = Instant::now();
            } else if quiet_since.elapsed() > Duration::from_millis(STALL_MS as u64) {
                let got: u64 = left.iter().map(|l| a.msgs - l).sum();
                return Err(stalled(
                    "SUBs",
                    got,
                    a.msgs * socks.len() as u64,
                    "deliveries",
                    io::Error::other("timeout"),
                ));
            } else {
                std::thread::yield_now();
            }
        }
        say(format!("received {last}"))?;
    }
    expect_cmd(stdin, "quit")
}
