//! `cargo run -p zeroring-sim -- --scenario NAME --seed N` replays one run and prints its
//! trace; `--seeds A..B` sweeps; `--list` names the scenarios.

use std::process::ExitCode;

use clap::Parser;
use zeroring_sim::{run, scenarios, SimOptions};

/// Deterministic network-fault simulation of zeroring.
#[derive(Debug, Parser)]
#[command(name = "zeroring-sim")]
struct Args {
    /// Scenario to run (`all` for every scenario).
    #[arg(long, default_value = "all")]
    scenario: String,
    /// One seed: run it and print its trace and verdict.
    #[arg(long, conflicts_with = "seeds")]
    seed: Option<u64>,
    /// A sweep `A..B` (B exclusive): one line per failing run, with its replay command.
    #[arg(long)]
    seeds: Option<String>,
    /// List the scenarios.
    #[arg(long)]
    list: bool,
    /// Sweep on this many threads (each run is single-threaded and deterministic; the output
    /// is the same for any number).
    #[arg(long, default_value_t = 1)]
    jobs: usize,
    /// Drop the socket's hiccups, so SUB never replays its subscriptions (shows what a violation looks like).
    #[arg(long)]
    no_replay: bool,
    /// Turn heartbeats off (shows what a violation looks like).
    #[arg(long)]
    no_heartbeats: bool,
    /// Turn REQ_CORRELATE off (shows what a violation looks like).
    #[arg(long)]
    no_correlate: bool,
    /// Make the PULL socket (pushpull, inproc-tcp) silently discard every 97th message (shows
    /// what a violation looks like).
    #[arg(long)]
    lossy_recv: bool,
    /// Make close drop the queue whatever LINGER says (shows what a violation looks like).
    #[arg(long)]
    drop_on_close: bool,
    /// Make the monitor lose DISCONNECTED events (shows what a violation looks like).
    #[arg(long)]
    skip_disconnected: bool,
    /// Run the ROUTER without ROUTER_MANDATORY (shows what a violation looks like).
    #[arg(long)]
    no_mandatory: bool,
    /// Make the connecter ignore RECONNECT_STOP (shows what a violation looks like).
    #[arg(long)]
    ignore_reconnect_stop: bool,
}

fn parse_range(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.split_once("..")?;
    Some((a.trim().parse().ok()?, b.trim().parse().ok()?))
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.list {
        for s in scenarios() {
            println!("{:<14} {}", s.name, s.about);
        }
        return ExitCode::SUCCESS;
    }
    let opts = SimOptions {
        replay_subscriptions: !args.no_replay,
        heartbeats: !args.no_heartbeats,
        req_correlate: !args.no_correlate,
        lossy_recv: args.lossy_recv,
        drop_on_close: args.drop_on_close,
        skip_disconnected: args.skip_disconnected,
        no_mandatory: args.no_mandatory,
        ignore_reconnect_stop: args.ignore_reconnect_stop,
    };
    let names: Vec<&str> = if args.scenario == "all" {
        scenarios().iter().map(|s| s.name).collect()
    } else if scenarios().iter().any(|s| s.name == args.scenario) {
        vec![args.scenario.as_str()]
    } else {
        eprintln!("unknown scenario `{}`; --list names them", args.scenario);
        return ExitCode::from(2);
    };
    if let Some(seed) = args.seed {
        let mut ok = true;
        for name in names {
            let outcome = run(name, seed, &opts).expect("known scenario");
            print!("{}", outcome.render());
            ok &= outcome.passed();
        }
        return if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    let (a, b) = match args.seeds.as_deref().map(parse_range) {
        Some(Some(r)) => r,
        Some(None) => {
            eprintln!("--seeds wants A..B");
            return ExitCode::from(2);
        }
        None => (0, 10),
    };
    let mut failures = 0;
    let jobs = args.jobs.max(1) as u64;
    for name in names {
        // Thread j runs seeds a+j, a+j+jobs, …; the failures are printed in seed order.
        let mut failed: Vec<(u64, String, String)> = std::thread::scope(|s| {
            let workers: Vec<_> = (0..jobs)
                .map(|j| {
                    let opts = opts.clone();
                    s.spawn(move || {
                        (a + j..b)
                            .step_by(jobs as usize)
                            .filter_map(|seed| {
                                let outcome = run(name, seed, &opts).expect("known scenario");
                                (!outcome.passed()).then(|| {
                                    (
                                        seed,
                                        outcome.violations.first().cloned().unwrap_or_default(),
                                        outcome.replay_command(),
                                    )
                                })
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a sweep thread panicked"))
                .collect()
        });
        failed.sort_by_key(|f| f.0);
        for (seed, first, replay) in &failed {
            println!("FAIL {name} seed {seed}: {first}");
            println!("  replay: {replay}");
        }
        failures += failed.len();
        let total = b.saturating_sub(a);
        println!(
            "{name}: {}/{total} seeds passed",
            total - failed.len() as u64
        );
    }
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
