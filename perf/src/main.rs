//! `zeroring-perf`: the perf harness's command line. See the crate docs for the method.

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use zeroring_perf::measure::{self, LatSample, ThrSample};
use zeroring_perf::subject::{unavailable, Mechanism, Params, Subject, Transport};
use zeroring_perf::{conns, isolate, report, soak};

#[derive(Parser, Debug)]
#[command(
    name = "zeroring-perf",
    version,
    about = "Throughput and latency of zeroring, side by side with libzmq, zmq.rs and the raw-socket floor"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Cmd>,
    #[command(flatten)]
    opts: Opts,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Throughput: PUSH→PULL, the receiver times the first to the last message.
    Thr,
    /// Latency: REQ/REP round trips into an HdrHistogram.
    Lat,
    /// Both, over every size given.
    All,
    /// Connection scale: N tcp connections into one socket — connect time, memory per idle
    /// connection, fan-in and fan-out throughput, and the RSS of an idle context.
    Conns(ConnsArgs),
    /// The async API (AsyncSocket on tokio) against the blocking one: REQ/REP latency and
    /// PUSH/PULL throughput over tcp loopback, interleaved rounds.
    Async(AsyncArgs),
    /// Hostile load for minutes against one bound socket (issue 17): slow-loris, connect/close
    /// cycles, a flood that never reads, an endless multipart message and subscription storms,
    /// while healthy clients measure their service; RSS, fds and latency over time.
    Soak(SoakArgs),
    /// (internal) a process of the conns workload.
    #[command(hide = true)]
    ConnsChild(ConnsChildArgs),
    /// (internal) the peer side, run in a child process.
    #[command(hide = true)]
    Peer(PeerArgs),
    /// (internal) one measurement in a process of its own; prints its result line.
    #[command(hide = true)]
    MeasureOne(MeasureOneArgs),
}

#[derive(Args, Debug)]
struct MeasureOneArgs {
    #[arg(long, value_enum)]
    kind: isolate::Kind,
    #[arg(long, value_enum)]
    subject: Subject,
    #[arg(long, value_enum)]
    transport: Transport,
    #[arg(long)]
    size: usize,
    #[arg(long)]
    count: u64,
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    #[arg(long, default_value_t = 1)]
    io_threads: i32,
    #[arg(long, value_delimiter = ',')]
    pin: Vec<usize>,
    #[arg(long, value_enum, default_value = "null")]
    mechanism: Mechanism,
}

#[derive(Args, Debug)]
struct Opts {
    /// Transports to measure.
    #[arg(long, value_enum, value_delimiter = ',', global = true)]
    transport: Vec<Transport>,
    /// Message sizes in bytes.
    #[arg(long, value_delimiter = ',', global = true)]
    size: Vec<usize>,
    /// Messages (thr) or round trips (lat) per run; default scales with the size.
    #[arg(long, global = true)]
    count: Option<u64>,
    /// Interleaved rounds; medians and spreads are over these.
    #[arg(long, default_value_t = 3, global = true)]
    runs: usize,
    /// I/O threads of each library's context.
    #[arg(long, default_value_t = 1, global = true)]
    io_threads: i32,
    /// CPUs to pin to: the measuring side to the first, the peer (for inproc, the sending
    /// thread) to the second.
    #[arg(long, value_delimiter = ',', global = true)]
    pin: Vec<usize>,
    /// Subjects to measure (default: every one this build can run).
    #[arg(long, value_enum, value_delimiter = ',', global = true)]
    subject: Vec<Subject>,
    /// Also run libzmq (same as adding it to --subject).
    #[arg(long, global = true)]
    compare: bool,
    /// Run the identical workload through this peer library too (`libzmq`, `zmqrs`, `rzmq`,
    /// `omq`), in the same invocation, rounds interleaved.
    #[arg(long, value_enum, global = true)]
    peer: Option<Subject>,
    /// Security mechanism of the measured connections (`curve`: zeroring only).
    #[arg(long, value_enum, default_value = "null", global = true)]
    mechanism: Mechanism,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    /// Measure every subject in this one process, one after another, instead of each
    /// measurement in a process of its own (the default): the way this harness measured
    /// before 2026-12-06. A subject then runs with the allocator state the one before it
    /// left (docs/performance.md, "Each subject in a process of its own").
    #[arg(long, global = true)]
    shared_process: bool,
    /// Also write CSV to this file.
    #[arg(long, global = true)]
    csv: Option<PathBuf>,
    /// Write SVG charts (latency percentiles, throughput by size) into this folder.
    #[arg(long, global = true)]
    plot: Option<PathBuf>,
    /// Write HdrHistogram percentile files (.hgrm) into this folder.
    #[arg(long, global = true)]
    hdr_log: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct PeerArgs {
    #[arg(long)]
    role: String,
    #[arg(long, value_enum)]
    subject: Subject,
    #[arg(long)]
    endpoint: String,
    #[arg(long)]
    size: usize,
    #[arg(long)]
    count: u64,
    #[arg(long, default_value_t = 1)]
    io_threads: i32,
    #[arg(long)]
    pin: Option<usize>,
    #[arg(long, value_enum, default_value = "null")]
    mechanism: Mechanism,
}

#[derive(Args, Debug)]
struct ConnsArgs {
    /// Connection counts to measure.
    #[arg(long, value_delimiter = ',', default_values_t = [100, 1000, 10000])]
    n: Vec<usize>,
    /// Client connections per client process (each needs a few descriptors).
    #[arg(long, default_value_t = 2000)]
    per_process: usize,
    /// Fan-in and fan-out messages per N in all (each connection gets total / N: 1–1,000,000
    /// for a fan-in sender, 1–1,000 for a fan-out subscriber).
    #[arg(long, default_value_t = 200_000)]
    msgs: u64,
}

#[derive(Args, Debug)]
struct AsyncArgs {
    /// Round trips per latency run.
    #[arg(long, default_value_t = 20_000)]
    lat_count: u64,
    /// Messages per throughput run.
    #[arg(long, default_value_t = 500_000)]
    thr_count: u64,
}

#[derive(Args, Debug)]
struct ConnsChildArgs {
    #[arg(long, value_enum)]
    role: conns::Role,
    #[arg(long, value_enum)]
    mode: conns::Mode,
    #[arg(long, value_enum)]
    subject: Subject,
    #[arg(long)]
    n: usize,
    #[arg(long)]
    msgs: u64,
    #[arg(long, default_value = "")]
    endpoint: String,
    #[arg(long, default_value_t = 1)]
    io_threads: i32,
}

/// The soak workload's knobs.
#[derive(Args, Debug)]
struct SoakArgs {
    /// How long the attack lasts, in seconds.
    #[arg(long, default_value_t = 60)]
    secs: u64,
    /// Slow-loris connections open at once.
    #[arg(long, default_value_t = 200)]
    loris: usize,
    /// Topics per subscription storm (subscribed, then all cancelled, again and again).
    #[arg(long, default_value_t = 100_000)]
    storm_topics: usize,
    /// The ROUTER's ZR_MAX_HANDSHAKES: below --loris, so that newer connections evict the
    /// oldest slow-loris ones.
    #[arg(long, default_value_t = 100)]
    max_handshakes: usize,
    /// Seconds between progress lines.
    #[arg(long, default_value_t = 5)]
    every: u64,
}

/// The conns workload: every subject but the raw floor, which has no sockets to scale, and
/// the pure-Rust peers, for which it is not written (it drives sockets through the blocking `Ctx` trait).
fn run_conns(a: &ConnsArgs, o: &Opts) -> ExitCode {
    let mut subjects = subjects(o);
    subjects.retain(|s| *s != Subject::Raw);
    for peer in [Subject::Zmqrs, Subject::Rzmq, Subject::Omq] {
        if subjects.contains(&peer) {
            eprintln!("skipping {peer:?}: the conns workload is not written for it");
            subjects.retain(|s| *s != peer);
        }
    }
    subjects.retain(|s| match unavailable(*s, Transport::Tcp) {
        Some(why) => {
            eprintln!("skipping {s:?}: {why}");
            false
        }
        None => true,
    });
    if subjects.is_empty() {
        eprintln!("nothing to measure");
        return ExitCode::FAILURE;
    }
    let idle: Vec<_> = subjects
        .iter()
        .map(|&s| {
            (
                s,
                conns::idle_context(s, o.io_threads).map_err(|e| e.to_string()),
            )
        })
        .collect();
    let config = conns::Config {
        ns: a.n.clone(),
        subjects,
        per_process: a.per_process,
        total_msgs: a.msgs,
        io_threads: o.io_threads,
    };
    let rows = conns::run(&config);
    println!(
        "zeroring-perf conns: one run each, tcp loopback, {} I/O thread(s) per context, {} B messages",
        o.io_threads,
        conns::MSG_SIZE
    );
    println!("{}", conns::table(&rows, &idle));
    ExitCode::SUCCESS
}

fn default_count(kind: &str, size: usize) -> u64 {
    match kind {
        // About 1 GB of payload and headers, capped at a million messages: 0.3–1 s per run on
        // a small machine, and at 64 KiB fifteen times the 1,000-message pipe a sender fills
        // first, so that a run measures the steady state, not that first fill. (Until
        // 2026-12-06 it was a fifth of this: 3,048 messages at 64 KiB, ~0.1 s, a third of
        // them the fill, in a process whose memory was not yet faulted in.)
        "thr" => (1_000_000_000 / (size.max(64) as u64 + 64)).clamp(2_000, 1_000_000),
        _ => 20_000,
    }
}

fn subjects(opts: &Opts) -> Vec<Subject> {
    let mut s = if opts.subject.is_empty() {
        #[allow(unused_mut)] // extended only by optional peers
        let mut all = vec![Subject::Zeroring, Subject::Libzmq, Subject::Raw];
        // Listed only where built in, so that the default build's output stays as it was.
        #[cfg(feature = "zmqrs")]
        all.push(Subject::Zmqrs);
        #[cfg(feature = "rzmq")]
        all.push(Subject::Rzmq);
        #[cfg(feature = "omq")]
        all.push(Subject::Omq);
        all
    } else {
        opts.subject.clone()
    };
    if opts.compare && !s.contains(&Subject::Libzmq) {
        s.push(Subject::Libzmq);
    }
    if let Some(peer) = opts.peer {
        if !s.contains(&peer) {
            s.push(peer);
        }
    }
    s
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (thr_on, lat_on, quick) = match &cli.command {
        Some(Cmd::Conns(a)) => return run_conns(a, &cli.opts),
        Some(Cmd::Async(a)) => {
            let size = cli.opts.size.first().copied().unwrap_or(64);
            let table = zeroring_perf::asynch::run(size, a.lat_count, a.thr_count, cli.opts.runs);
            print!("{table}");
            return ExitCode::SUCCESS;
        }
        Some(Cmd::Soak(a)) => {
            let cfg = soak::Config {
                secs: a.secs,
                loris: a.loris,
                storm_topics: a.storm_topics,
                max_handshakes: a.max_handshakes.max(1),
                every: a.every.max(1),
            };
            return match soak::run(&cfg) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("soak: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Cmd::ConnsChild(a)) => {
            let args = conns::ChildArgs {
                role: a.role,
                mode: a.mode,
                subject: a.subject,
                n: a.n,
                msgs: a.msgs,
                endpoint: a.endpoint.clone(),
                io_threads: a.io_threads,
            };
            return match conns::run_child(&args) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    // On stdout too, so that the parent's table can say why.
                    println!("error {e}");
                    eprintln!("conns {:?} {:?} {:?}: {e}", a.subject, a.role, a.mode);
                    ExitCode::FAILURE
                }
            };
        }
        Some(Cmd::Peer(p)) => {
            let params = Params {
                transport: Transport::Tcp,
                size: p.size,
                count: p.count,
                io_threads: p.io_threads,
                mechanism: p.mechanism,
            };
            return match measure::run_peer(&p.role, p.subject, &p.endpoint, params, p.pin) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("peer: {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Cmd::MeasureOne(a)) => {
            let params = Params {
                transport: a.transport,
                size: a.size,
                count: a.count,
                io_threads: a.io_threads,
                mechanism: a.mechanism,
            };
            return match isolate::child(a.kind, a.subject, params, a.warmup, &a.pin) {
                Ok(line) => {
                    println!("{line}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    println!("error {e}");
                    ExitCode::FAILURE
                }
            };
        }
        Some(Cmd::Thr) => (true, false, false),
        Some(Cmd::Lat) => (false, true, false),
        Some(Cmd::All) => (true, true, false),
        None => (true, true, true),
    };
    let o = &cli.opts;
    let mut transports = if o.transport.is_empty() {
        vec![Transport::Tcp]
    } else {
        o.transport.clone()
    };
    if o.mechanism == Mechanism::Curve && transports.contains(&Transport::Inproc) {
        // As in libzmq, inproc has no security mechanism: it would measure NULL.
        eprintln!("skipping inproc: inproc connections have no security mechanism");
        transports.retain(|t| *t != Transport::Inproc);
    }
    let thr_sizes = if !o.size.is_empty() {
        o.size.clone()
    } else if quick {
        vec![1, 64, 65536]
    } else {
        vec![1, 64, 256, 1024, 4096, 16384, 65536]
    };
    let lat_sizes = if !o.size.is_empty() {
        o.size.clone()
    } else {
        vec![64]
    };
    let mut subjects = subjects(o);
    let mut notes = Vec::new();
    subjects.retain(|s| {
        if let Some(why) = o.mechanism.unavailable(*s) {
            notes.push(format!("skipping {s:?}: {why}"));
            return false;
        }
        let missing: Vec<&str> = transports
            .iter()
            .filter_map(|t| unavailable(*s, *t))
            .collect();
        if missing.len() == transports.len() {
            notes.push(format!("skipping {s:?}: {}", missing[0]));
            false
        } else {
            // Say which cells stay empty, and why, rather than leaving them out silently.
            for t in &transports {
                if let Some(why) = unavailable(*s, *t) {
                    notes.push(format!("{s:?} over {t:?}: {why}"));
                }
            }
            true
        }
    });
    for n in &notes {
        eprintln!("{n}");
    }
    if subjects.is_empty() {
        eprintln!("nothing to measure");
        return ExitCode::FAILURE;
    }

    let mut thr_rounds: Vec<Vec<ThrSample>> = Vec::new();
    let mut lat_rounds: Vec<Vec<LatSample>> = Vec::new();
    let total_rounds = o.runs.max(1);
    for round in 0..total_rounds {
        let mut thr_round = Vec::new();
        let mut lat_round = Vec::new();
        for &t in &transports {
            if thr_on {
                for &size in &thr_sizes {
                    let count = o.count.unwrap_or_else(|| default_count("thr", size));
                    for &s in &subjects {
                        if unavailable(s, t).is_some() {
                            continue;
                        }
                        eprint!(
                            "\rround {}/{total_rounds}: thr {t:?} {size} B {s:?}            ",
                            round + 1
                        );
                        let _ = std::io::stderr().flush();
                        let p = Params {
                            transport: t,
                            size,
                            count,
                            io_threads: o.io_threads,
                            mechanism: o.mechanism,
                        };
                        let sample = if o.shared_process {
                            measure::thr(s, p, &o.pin)
                        } else {
                            isolate::thr(s, p, &o.pin)
                        };
                        match sample {
                            Ok(sample) => thr_round.push(sample),
                            Err(e) => eprintln!("\nthr {t:?} {size} B {s:?} failed: {e}"),
                        }
                    }
                }
            }
            if lat_on {
                for &size in &lat_sizes {
                    let count = o.count.unwrap_or_else(|| default_count("lat", size));
                    for &s in &subjects {
                        if unavailable(s, t).is_some() {
                            continue;
                        }
                        eprint!(
                            "\rround {}/{total_rounds}: lat {t:?} {size} B {s:?}            ",
                            round + 1
                        );
                        let _ = std::io::stderr().flush();
                        let p = Params {
                            transport: t,
                            size,
                            count,
                            io_threads: o.io_threads,
                            mechanism: o.mechanism,
                        };
                        let sample = if o.shared_process {
                            measure::lat(s, p, count / 10, &o.pin)
                        } else {
                            isolate::lat(s, p, count / 10, &o.pin)
                        };
                        match sample {
                            Ok(sample) => lat_round.push(sample),
                            Err(e) => eprintln!("\nlat {t:?} {size} B {s:?} failed: {e}"),
                        }
                    }
                }
            }
        }
        thr_rounds.push(thr_round);
        lat_rounds.push(lat_round);
    }
    eprintln!("\r{:60}", "");

    let thr_rows = report::thr_rows(&thr_rounds);
    let lat_rows = report::lat_rows(&lat_rounds);
    if o.json {
        println!("{}", report::json(&thr_rows, &lat_rows));
    } else {
        println!("zeroring-perf: medians of {total_rounds} interleaved round(s); ratios are per round, median (min–max); mechanism {:?}", o.mechanism);
        if !thr_rows.is_empty() {
            println!("\n{}", report::thr_table(&thr_rows));
        }
        if !lat_rows.is_empty() {
            println!("{}", report::lat_table(&lat_rows));
        }
    }
    let mut failed = false;
    if let Some(path) = &o.csv {
        if let Err(e) = std::fs::write(path, report::csv(&thr_rows, &lat_rows)) {
            eprintln!("writing {}: {e}", path.display());
            failed = true;
        }
    }
    if let Some(dir) = &o.hdr_log {
        match report::write_hgrm(dir, &lat_rows) {
            Ok(files) => files
                .iter()
                .for_each(|f| eprintln!("wrote {}", f.display())),
            Err(e) => {
                eprintln!("writing .hgrm files: {e}");
                failed = true;
            }
        }
    }
    if let Some(dir) = &o.plot {
        let drawn = zeroring_perf::plot::latency(dir, &lat_rows).and_then(|mut v| {
            v.extend(zeroring_perf::plot::throughput(dir, &thr_rows)?);
            Ok(v)
        });
        match drawn {
            Ok(files) => files
                .iter()
                .for_each(|f| eprintln!("wrote {}", f.display())),
            Err(e) => {
                eprintln!("plotting: {e}");
                failed = true;
            }
        }
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
