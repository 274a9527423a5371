//! The simulator's CI: fixed seeds for every scenario, a short sweep of fresh seeds, the
//! determinism check, and the proof that the simulator can fail.

use zeroring_sim::{run, scenarios, SimOptions};

/// Seeds every scenario must pass on every run (regressions found by sweeps are added here).
const FIXED: &[u64] = &[0, 1, 2, 3, 7, 42, 1234, 99_991];

/// Seeds a wide sweep once failed, with what they pin down (docs/simulation.md).
const REGRESSIONS: &[(&str, u64)] = &[
    // A write failing with EPIPE because the peer timed the connection out during a hold
    // ends the stream with no protocol error: a failure the fault explains.
    ("handshake", 1028),
    ("handshake", 1046),
    // The PUSH abandons a held connection; the PULL reads its bytes after the reconnect's
    // (libzmq does the same): late, in their own order, not a violation.
    ("pushpull", 1182),
    ("pushpull", 1394),
    // An XPUB_VERBOSE acknowledgement read from a connection that had already ended owes
    // nothing (libzmq does the same).
    ("pubsub", 1070),
    ("pubsub", 2425),
    // A DEALER's new connection took its routing id over (ROUTER_HANDOVER) while the old one
    // was still open, then ended: EHOSTUNREACH although the old connection lived on (libzmq
    // does the same: the handover closed the old pipe).
    ("router-mandatory", 352),
];

fn check(name: &str, seed: u64) {
    let outcome = run(name, seed, &SimOptions::default()).expect("scenario exists");
    assert!(
        outcome.passed(),
        "{name} seed {seed} failed:\n{}\nreplay: {}",
        outcome.violations.join("\n"),
        outcome.replay_command()
    );
}

/// Scenarios too costly for every seed list: hundreds of connections (a few seconds a run
/// in a debug build). They run their own short lists.
const HEAVY: &[&str] = &["fanin"];

fn light() -> impl Iterator<Item = &'static zeroring_sim::ScenarioInfo> {
    scenarios().iter().filter(|s| !HEAVY.contains(&s.name))
}

#[test]
fn fixed_seeds_pass_for_every_scenario() {
    for s in light() {
        for &seed in FIXED {
            check(s.name, seed);
        }
    }
}

/// Hundreds of PUSH connections into one slow PULL: fixed seeds (seed 1 also runs in the
/// determinism check) and one of the rotating window.
#[test]
fn fanin_fixed_and_rotating_seeds_pass() {
    for seed in [0, sweep_base()] {
        check("fanin", seed);
    }
}

#[test]
fn regression_seeds_pass() {
    for &(name, seed) in REGRESSIONS {
        check(name, seed);
    }
}

/// Seeds per scenario in the rotating window.
const WINDOW: u64 = 4;

/// The start of this run's window of fresh seeds: ZEROSIM_SWEEP_BASE when set (to replay a
/// CI run, or to pin one), else one derived from the date — a new window of WINDOW seeds per
/// scenario every day, from 100,000 up (above the seeds wide sweeps cover), so CI keeps
/// exploring new schedules. A failure prints the seed and the command that replays it.
fn sweep_base() -> u64 {
    if let Some(base) = std::env::var("ZEROSIM_SWEEP_BASE")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return base;
    }
    let days = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() / 86_400);
    100_000 + days * WINDOW
}

/// A short sweep over the rotating window: new fault schedules each day.
#[test]
fn short_random_sweep() {
    let base = sweep_base();
    eprintln!(
        "sweep window {base}..{} (ZEROSIM_SWEEP_BASE={base} replays it)",
        base + WINDOW
    );
    for s in light() {
        for seed in base..base + WINDOW {
            check(s.name, seed);
        }
    }
}

#[test]
fn same_seed_same_trace_byte_for_byte() {
    for s in scenarios() {
        // A cheap seed for the heavy ones.
        let seed = if HEAVY.contains(&s.name) { 1 } else { 17 };
        let a = run(s.name, seed, &SimOptions::default()).unwrap();
        let b = run(s.name, seed, &SimOptions::default()).unwrap();
        assert!(!a.trace.is_empty(), "{} produced no trace", s.name);
        assert_eq!(a.render(), b.render(), "{} is not reproducible", s.name);
        if HEAVY.contains(&s.name) {
            assert!(a.passed(), "{}", a.render());
        }
    }
}

#[test]
fn different_seeds_give_different_traces() {
    for name in ["pushpull", "pubsub", "handshake"] {
        let a = run(name, 17, &SimOptions::default()).unwrap();
        let b = run(name, 18, &SimOptions::default()).unwrap();
        assert_ne!(
            a.trace, b.trace,
            "{name}: seeds 17 and 18 gave the same trace"
        );
    }
}

/// The simulator can fail: a SUB that does not replay its subscriptions on reconnect must be
/// reported for some seed of a small sweep (in practice, every seed).
#[test]
fn broken_subscription_replay_is_caught() {
    let broken = SimOptions {
        replay_subscriptions: false,
        ..SimOptions::default()
    };
    let failing: Vec<u64> = (0..5)
        .filter(|&seed| !run("pubsub", seed, &broken).unwrap().passed())
        .collect();
    assert!(
        !failing.is_empty(),
        "no seed in 0..5 caught the missing subscription replay"
    );
    let o = run("pubsub", failing[0], &broken).unwrap();
    assert!(
        o.violations.iter().any(|v| v.contains("subscription to")),
        "the replay violation is named: {:?}",
        o.violations
    );
    assert!(
        o.violations.iter().any(|v| v.contains("after the heal")),
        "the after-heal delivery violation is named: {:?}",
        o.violations
    );
    assert!(o.replay_command().ends_with("--no-replay"));
}

/// Without heartbeats a silent partition is never detected: the heartbeat scenario says so.
#[test]
fn missing_heartbeats_are_caught() {
    let broken = SimOptions {
        heartbeats: false,
        ..SimOptions::default()
    };
    let o = run("heartbeat", 3, &broken).unwrap();
    assert!(!o.passed());
    assert!(
        o.violations.iter().any(|v| v.contains("never detected")),
        "{:?}",
        o.violations
    );
}

/// Without REQ_CORRELATE, a late reply released by a hold is taken for the current request's.
#[test]
fn missing_req_correlate_is_caught() {
    let broken = SimOptions {
        req_correlate: false,
        ..SimOptions::default()
    };
    let caught = (0..5).any(|seed| {
        let o = run("req-rep", seed, &broken).unwrap();
        o.violations
            .iter()
            .any(|v| v.contains("taken as the reply"))
    });
    assert!(caught, "no seed in 0..5 caught the mismatched reply");
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_zeroring-sim"))
        .args(args)
        .output()
        .expect("the CLI runs")
}

/// Two processes replaying one seed print the same bytes (nothing depends on addresses, hash
/// seeds or the wall clock).
#[test]
fn cli_replay_is_identical_across_processes() {
    let a = cli(&["--scenario", "pubsub", "--seed", "5"]);
    let b = cli(&["--scenario", "pubsub", "--seed", "5"]);
    assert!(a.status.success());
    assert_eq!(a.stdout, b.stdout);
    assert!(String::from_utf8_lossy(&a.stdout).contains("PASS pubsub seed 5"));
}

/// A failing sweep names each failing seed with the command that replays it, and exits non-zero.
#[test]
fn cli_sweep_prints_the_replay_command() {
    let out = cli(&["--scenario", "pubsub", "--seeds", "3..5", "--no-replay"]);
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("cargo run -p zeroring-sim -- --scenario pubsub --seed 3 --no-replay"),
        "{text}"
    );
    let list = cli(&["--list"]);
    assert!(String::from_utf8_lossy(&list.stdout).contains("heartbeat"));
}

/// The handshake scenario really hits handshakes: over the fixed seeds, faults land
/// mid-greeting, mid-PLAIN (even seeds) and mid-CURVE (odd seeds: HELLO..READY).
#[test]
fn handshake_faults_land_mid_greeting_and_mid_plain() {
    let (mut greeting, mut plain, mut curve) = (0u32, 0u32, 0u32);
    for &seed in FIXED {
        let o = run("handshake", seed, &SimOptions::default()).unwrap();
        let line = o
            .summary
            .iter()
            .find(|l| l.starts_with("faults landing"))
            .expect("summary line");
        let nums: Vec<u32> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter_map(|t| t.parse().ok())
            .collect();
        greeting += nums[0];
        if line.contains("mid-CURVE") {
            curve += nums[1];
        } else {
            plain += nums[1];
        }
    }
    assert!(
        greeting > 0 && plain > 0 && curve > 0,
        "greeting {greeting}, plain {plain}, curve {curve}"
    );
}

/// A socket that silently loses a message on a live connection breaks the message-flow
/// invariant: "every loss counted" is not vacuous.
#[test]
fn silent_loss_on_a_live_connection_is_caught() {
    let broken = SimOptions {
        lossy_recv: true,
        ..SimOptions::default()
    };
    let o = run("pushpull", 0, &broken).unwrap();
    assert!(
        o.violations
            .iter()
            .any(|v| v.contains("no disconnect to explain")),
        "{:?}",
        o.violations
    );
    assert!(o.replay_command().ends_with("--lossy-recv"));
}

/// Seeds of each LINGER case: the peer back within a finite LINGER (6), never back (4),
/// LINGER 0 (2), and LINGER −1 with the peer back (0, 7).
const LINGER_CASES: &[u64] = &[0, 2, 4, 6, 7];

#[test]
fn linger_that_drops_the_queue_is_caught() {
    let broken = SimOptions {
        drop_on_close: true,
        ..SimOptions::default()
    };
    // Peer back within LINGER: the queue must arrive.
    let o = run("linger", 0, &broken).unwrap();
    assert!(
        o.violations
            .iter()
            .any(|v| v.contains("came back within LINGER but got 0")),
        "{:?}",
        o.violations
    );
    // No peer: close must wait for LINGER, not return at once.
    let o = run("linger", 4, &broken).unwrap();
    assert!(
        o.violations.iter().any(|v| v.contains("before LINGER")),
        "{:?}",
        o.violations
    );
    assert!(o.replay_command().ends_with("--drop-on-close"));
    for &seed in LINGER_CASES {
        let o = run("linger", seed, &SimOptions::default()).unwrap();
        assert!(o.passed(), "seed {seed}: {:?}", o.violations);
    }
}

#[test]
fn a_monitor_that_loses_disconnected_is_caught() {
    let broken = SimOptions {
        skip_disconnected: true,
        ..SimOptions::default()
    };
    let o = run("monitor", 0, &broken).unwrap();
    assert!(
        o.violations
            .iter()
            .any(|v| v.contains("invalid monitor path")),
        "{:?}",
        o.violations
    );
    assert!(o.replay_command().ends_with("--skip-disconnected"));
}

#[test]
fn a_router_that_drops_instead_of_ehostunreach_is_caught() {
    let broken = SimOptions {
        no_mandatory: true,
        ..SimOptions::default()
    };
    let o = run("router-mandatory", 0, &broken).unwrap();
    assert!(
        o.violations
            .iter()
            .any(|v| v.contains("has no live pipe (libzmq: EHOSTUNREACH)")),
        "{:?}",
        o.violations
    );
    assert!(o.replay_command().ends_with("--no-mandatory"));
}

#[test]
fn a_loss_on_the_inproc_pipe_is_caught() {
    let broken = SimOptions {
        lossy_recv: true,
        ..SimOptions::default()
    };
    let o = run("inproc-tcp", 2, &broken).unwrap();
    assert!(
        o.violations
            .iter()
            .any(|v| v.contains("from local never arrived with no disconnect")),
        "{:?}",
        o.violations
    );
}

#[test]
fn a_connecter_that_ignores_reconnect_stop_is_caught() {
    let broken = SimOptions {
        ignore_reconnect_stop: true,
        ..SimOptions::default()
    };
    let o = run("reconnect-stop", 3, &broken).unwrap();
    assert!(
        o.violations
            .iter()
            .any(|v| v.contains("but the session closed at []")),
        "{:?}",
        o.violations
    );
    assert!(o.replay_command().ends_with("--ignore-reconnect-stop"));
}
