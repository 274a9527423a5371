//! The harness's default: each measurement in a process of its own (`measure-one`), its
//! sample read back by the parent. Runs the built harness on small workloads over tcp
//! loopback and checks that both kinds of sample come back whole.

use std::process::Command;

fn harness(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_zeroring-perf"))
        .args(args)
        .output()
        .expect("the harness starts");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "harness failed: {}\n{text}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// The row of `subject` in a table, split into fields.
fn row<'a>(table: &'a str, transport: &str, subject: &str) -> Vec<&'a str> {
    table
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|f| f.first() == Some(&transport) && f.get(3) == Some(&subject))
        .unwrap_or_else(|| panic!("no {transport} {subject} row in:\n{table}"))
}

#[test]
fn a_throughput_sample_comes_back_from_its_process() {
    let t = harness(&[
        "--runs",
        "1",
        "--subject",
        "zeroring",
        "thr",
        "--transport",
        "tcp",
        "--size",
        "64",
        "--count",
        "20000",
    ]);
    let f = row(&t, "tcp", "zeroring");
    // msg/s, MB/s, CPU ns per message: all measured, so positive.
    for v in &f[4..7] {
        assert!(v.parse::<f64>().unwrap() > 0.0, "{v} in {f:?}");
    }
}

#[test]
fn a_latency_histogram_comes_back_whole_from_its_process() {
    let t = harness(&[
        "--runs",
        "1",
        "--subject",
        "zeroring",
        "lat",
        "--transport",
        "tcp",
        "--size",
        "64",
        "--count",
        "2000",
    ]);
    let f = row(&t, "tcp", "zeroring");
    // p50 ≤ p90 ≤ p99 ≤ p99.9 ≤ p99.99 ≤ max, all above zero: the whole histogram arrived.
    let p: Vec<f64> = f[4..10].iter().map(|v| v.parse().unwrap()).collect();
    assert!(p[0] > 0.0, "{f:?}");
    assert!(p.windows(2).all(|w| w[0] <= w[1]), "{f:?}");
}

/// omq.rs, the pure-Rust peer issue 14 names (feature `omq`; CI runs this with it): every
/// message of a throughput run arrives over each transport it has, a latency run completes,
/// and the ratio column against it is filled in.
#[cfg(feature = "omq")]
#[test]
fn omq_rs_runs_the_workloads_on_every_transport() {
    for transport in ["tcp", "ipc", "inproc"] {
        let t = harness(&[
            "--runs",
            "1",
            "--subject",
            "zeroring,omq",
            "thr",
            "--transport",
            transport,
            "--size",
            "64",
            "--count",
            "20000",
        ]);
        let f = row(&t, transport, "omq.rs");
        for v in &f[4..7] {
            assert!(v.parse::<f64>().unwrap() > 0.0, "{v} in {f:?}");
        }
        // zeroring's row ends with its ratio to omq.rs, e.g. "2.98× (2.98–2.98)".
        let z = row(&t, transport, "zeroring");
        assert!(z[z.len() - 2].ends_with('×'), "no ratio to omq.rs in {z:?}");
        let l = harness(&[
            "--runs",
            "1",
            "--subject",
            "omq",
            "lat",
            "--transport",
            transport,
            "--size",
            "64",
            "--count",
            "2000",
        ]);
        let f = row(&l, transport, "omq.rs");
        let p: Vec<f64> = f[4..10].iter().map(|v| v.parse().unwrap()).collect();
        assert!(p[0] > 0.0, "{f:?}");
    }
}
