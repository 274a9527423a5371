//! Turning samples into what people read: medians, per-run ratios with their spread, tables,
//! JSON and CSV, and HdrHistogram percentile-distribution files for plotting tools.
//!
//! Owns: aggregation and formatting. Must never: compare figures from different rounds as if
//! they were one (ratios are formed within a round, then summarised).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::path::Path;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::measure::{LatSample, ThrSample};
use crate::subject::{Subject, Transport};

/// Median and range of a per-round ratio.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Spread {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    let m = v.len() / 2;
    if v.len() % 2 == 1 {
        v[m]
    } else {
        (v[m - 1] + v[m]) / 2.0
    }
}

fn spread(v: Vec<f64>) -> Option<Spread> {
    if v.is_empty() {
        return None;
    }
    let min = v.iter().copied().fold(f64::INFINITY, f64::min);
    let max = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some(Spread {
        median: median(v),
        min,
        max,
    })
}

/// One throughput row: a subject on one workload, over all rounds.
#[derive(Clone, Debug, Serialize)]
pub struct ThrRow {
    pub transport: Transport,
    pub size: usize,
    pub count: u64,
    pub subject: Subject,
    pub runs: usize,
    pub msgs_per_sec: f64,
    pub mb_per_sec: f64,
    pub cpu_ns_per_msg: f64,
    pub peak_rss_kib: u64,
    /// This subject's msg/s over libzmq's, per round.
    pub vs_libzmq: Option<Spread>,
    /// This subject's msg/s over the raw floor's, per round.
    pub vs_raw: Option<Spread>,
    /// This subject's msg/s over zmq.rs's, per round (only when zmq.rs was measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_zmqrs: Option<Spread>,
    /// This subject's msg/s over omq.rs's, per round (only when omq.rs was measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub vs_omq: Option<Spread>,
}

/// One latency row.
#[derive(Clone, Debug, Serialize)]
pub struct LatRow {
    pub transport: Transport,
    pub size: usize,
    pub count: u64,
    pub subject: Subject,
    pub runs: usize,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub p9999_us: f64,
    pub max_us: f64,
    pub cpu_ns_per_msg: f64,
    pub peak_rss_kib: u64,
    /// p50 over libzmq's p50, per round.
    pub p50_vs_libzmq: Option<Spread>,
    /// p99.9 over libzmq's p99.9, per round.
    pub p999_vs_libzmq: Option<Spread>,
    /// p50 over the raw floor's p50, per round (the distance to the floor).
    pub p50_vs_raw: Option<Spread>,
    /// p50 over zmq.rs's p50, per round (only when zmq.rs was measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_vs_zmqrs: Option<Spread>,
    /// p50 over omq.rs's p50, per round (only when omq.rs was measured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub p50_vs_omq: Option<Spread>,
    #[serde(skip)]
    pub hist: Histogram<u64>,
}

type Key = (Transport, usize);

/// Rows from throughput samples; `rounds[i]` holds round i's samples.
pub fn thr_rows(rounds: &[Vec<ThrSample>]) -> Vec<ThrRow> {
    let mut by: BTreeMap<(u8, usize, Subject), Vec<&ThrSample>> = BTreeMap::new();
    for round in rounds {
        for s in round {
            by.entry((s.params.transport as u8, s.params.size, s.subject))
                .or_default()
                .push(s);
        }
    }
    let find = |round: &[ThrSample], key: Key, subject: Subject| {
        round
            .iter()
            .find(|s| s.subject == subject && s.params.transport == key.0 && s.params.size == key.1)
            .map(|s| s.msgs_per_sec())
    };
    by.into_iter()
        .map(|((_, size, subject), samples)| {
            let first = samples[0];
            let key = (first.params.transport, size);
            let ratio_to = |other: Subject| {
                spread(
                    rounds
                        .iter()
                        .filter_map(|r| Some(find(r, key, subject)? / find(r, key, other)?))
                        .collect(),
                )
                .filter(|_| other != subject)
            };
            ThrRow {
                transport: first.params.transport,
                size,
                count: first.params.count,
                subject,
                runs: samples.len(),
                msgs_per_sec: median(samples.iter().map(|s| s.msgs_per_sec()).collect()),
                mb_per_sec: median(samples.iter().map(|s| s.mb_per_sec()).collect()),
                cpu_ns_per_msg: median(samples.iter().map(|s| s.cpu_ns_per_msg).collect()),
                peak_rss_kib: samples.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0),
                vs_libzmq: ratio_to(Subject::Libzmq),
                vs_raw: ratio_to(Subject::Raw),
                vs_zmqrs: ratio_to(Subject::Zmqrs),
                vs_omq: ratio_to(Subject::Omq),
            }
        })
        .collect()
}

fn us(h: &Histogram<u64>, q: f64) -> f64 {
    h.value_at_quantile(q) as f64 / 1000.0
}

/// Rows from latency samples; `rounds[i]` holds round i's samples.
pub fn lat_rows(rounds: &[Vec<LatSample>]) -> Vec<LatRow> {
    let mut by: BTreeMap<(u8, usize, Subject), Vec<&LatSample>> = BTreeMap::new();
    for round in rounds {
        for s in round {
            by.entry((s.params.transport as u8, s.params.size, s.subject))
                .or_default()
                .push(s);
        }
    }
    let find = |round: &[LatSample], key: Key, subject: Subject, q: f64| {
        round
            .iter()
            .find(|s| s.subject == subject && s.params.transport == key.0 && s.params.size == key.1)
            .map(|s| us(&s.hist, q))
    };
    by.into_iter()
        .map(|((_, size, subject), samples)| {
            let first = samples[0];
            let key = (first.params.transport, size);
            let mut hist = first.hist.clone();
            for s in &samples[1..] {
                let _ = hist.add(&s.hist);
            }
            let ratio = |other: Subject, q: f64| {
                spread(
                    rounds
                        .iter()
                        .filter_map(|r| Some(find(r, key, subject, q)? / find(r, key, other, q)?))
                        .collect(),
                )
                .filter(|_| other != subject)
            };
            LatRow {
                transport: first.params.transport,
                size,
                count: first.params.count,
                subject,
                runs: samples.len(),
                p50_us: us(&hist, 0.5),
                p90_us: us(&hist, 0.9),
                p99_us: us(&hist, 0.99),
                p999_us: us(&hist, 0.999),
                p9999_us: us(&hist, 0.9999),
                max_us: hist.max() as f64 / 1000.0,
                cpu_ns_per_msg: median(samples.iter().map(|s| s.cpu_ns_per_msg).collect()),
                peak_rss_kib: samples.iter().map(|s| s.peak_rss_kib).max().unwrap_or(0),
                p50_vs_libzmq: ratio(Subject::Libzmq, 0.5),
                p999_vs_libzmq: ratio(Subject::Libzmq, 0.999),
                p50_vs_raw: ratio(Subject::Raw, 0.5),
                p50_vs_zmqrs: ratio(Subject::Zmqrs, 0.5),
                p50_vs_omq: ratio(Subject::Omq, 0.5),
                hist,
            }
        })
        .collect()
}

fn fmt_spread(s: &Option<Spread>) -> String {
    match s {
        Some(s) => format!("{:.2}× ({:.2}–{:.2})", s.median, s.min, s.max),
        None => "—".into(),
    }
}

fn human_size(n: usize) -> String {
    if n >= 1 << 20 && n % (1 << 20) == 0 {
        format!("{} MiB", n >> 20)
    } else if n >= 1024 && n % 1024 == 0 {
        format!("{} KiB", n >> 10)
    } else {
        format!("{n} B")
    }
}

fn transport_name(t: Transport) -> &'static str {
    match t {
        Transport::Tcp => "tcp",
        Transport::Ipc => "ipc",
        Transport::Inproc => "inproc",
    }
}

fn subject_name(s: Subject) -> &'static str {
    match s {
        Subject::Zeroring => "zeroring",
        Subject::Libzmq => "libzmq",
        Subject::Raw => "raw floor",
        Subject::Zmqrs => "zmq.rs",
        Subject::Rzmq => "rzmq",
        Subject::Omq => "omq.rs",
    }
}

/// The throughput table.
pub fn thr_table(rows: &[ThrRow]) -> String {
    let mut out = String::new();
    // The zmq.rs and omq.rs columns appear only when that peer was measured.
    let zmqrs = rows.iter().any(|r| r.vs_zmqrs.is_some());
    let omq = rows.iter().any(|r| r.vs_omq.is_some());
    let _ = write!(
        out,
        "{:<7} {:>8} {:<10} {:>14} {:>10} {:>9} {:>22} {:>22}",
        "thr", "size", "subject", "msg/s", "MB/s", "cpu ns/m", "vs libzmq", "vs raw floor"
    );
    let _ = writeln!(
        out,
        "{}{}",
        peer_col(zmqrs, "vs zmq.rs"),
        peer_col(omq, "vs omq.rs")
    );
    for r in rows {
        let _ = write!(
            out,
            "{:<7} {:>8} {:<10} {:>14.0} {:>10.1} {:>9.0} {:>22} {:>22}",
            transport_name(r.transport),
            human_size(r.size),
            subject_name(r.subject),
            r.msgs_per_sec,
            r.mb_per_sec,
            r.cpu_ns_per_msg,
            fmt_spread(&r.vs_libzmq),
            fmt_spread(&r.vs_raw)
        );
        let _ = writeln!(
            out,
            "{}{}",
            peer_col(zmqrs, &fmt_spread(&r.vs_zmqrs)),
            peer_col(omq, &fmt_spread(&r.vs_omq))
        );
    }
    out
}

/// An optional peer's column's cell: `text` right-aligned, or nothing when it is not shown.
fn peer_col(shown: bool, text: &str) -> String {
    if shown {
        format!(" {text:>22}")
    } else {
        String::new()
    }
}

/// The latency table (round-trip times in µs).
pub fn lat_table(rows: &[LatRow]) -> String {
    let mut out = String::new();
    let zmqrs = rows.iter().any(|r| r.p50_vs_zmqrs.is_some());
    let omq = rows.iter().any(|r| r.p50_vs_omq.is_some());
    let _ = write!(
        out,
        "{:<7} {:>8} {:<10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>22} {:>22} {:>22}",
        "lat µs",
        "size",
        "subject",
        "p50",
        "p90",
        "p99",
        "p99.9",
        "p99.99",
        "max",
        "p50 vs libzmq",
        "p99.9 vs libzmq",
        "p50 vs raw floor"
    );
    let _ = writeln!(
        out,
        "{}{}",
        peer_col(zmqrs, "p50 vs zmq.rs"),
        peer_col(omq, "p50 vs omq.rs")
    );
    for r in rows {
        let _ = write!(
            out,
            "{:<7} {:>8} {:<10} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>8.1} {:>22} {:>22} {:>22}",
            transport_name(r.transport),
            human_size(r.size),
            subject_name(r.subject),
            r.p50_us,
            r.p90_us,
            r.p99_us,
            r.p999_us,
            r.p9999_us,
            r.max_us,
            fmt_spread(&r.p50_vs_libzmq),
            fmt_spread(&r.p999_vs_libzmq),
            fmt_spread(&r.p50_vs_raw)
        );
        let _ = writeln!(
            out,
            "{}{}",
            peer_col(zmqrs, &fmt_spread(&r.p50_vs_zmqrs)),
            peer_col(omq, &fmt_spread(&r.p50_vs_omq))
        );
    }
    out
}

/// Everything as one JSON document.
pub fn json(thr: &[ThrRow], lat: &[LatRow]) -> String {
    serde_json::to_string_pretty(&serde_json::json!({ "throughput": thr, "latency": lat }))
        .unwrap_or_default()
}

/// Throughput and latency rows as CSV (one header line each, in two blocks).
pub fn csv(thr: &[ThrRow], lat: &[LatRow]) -> String {
    let mut out = String::from("kind,transport,size,subject,runs,msgs_per_sec,mb_per_sec,p50_us,p90_us,p99_us,p999_us,p9999_us,max_us,cpu_ns_per_msg,peak_rss_kib,ratio_vs_libzmq,ratio_vs_raw\n");
    let med = |s: &Option<Spread>| s.map(|s| format!("{:.4}", s.median)).unwrap_or_default();
    for r in thr {
        let _ = writeln!(
            out,
            "thr,{},{},{},{},{:.0},{:.3},,,,,,,{:.1},{},{},{}",
            transport_name(r.transport),
            r.size,
            subject_name(r.subject),
            r.runs,
            r.msgs_per_sec,
            r.mb_per_sec,
            r.cpu_ns_per_msg,
            r.peak_rss_kib,
            med(&r.vs_libzmq),
            med(&r.vs_raw)
        );
    }
    for r in lat {
        let _ = writeln!(
            out,
            "lat,{},{},{},{},,,{:.2},{:.2},{:.2},{:.2},{:.2},{:.2},{:.1},{},{},{}",
            transport_name(r.transport),
            r.size,
            subject_name(r.subject),
            r.runs,
            r.p50_us,
            r.p90_us,
            r.p99_us,
            r.p999_us,
            r.p9999_us,
            r.max_us,
            r.cpu_ns_per_msg,
            r.peak_rss_kib,
            med(&r.p50_vs_libzmq),
            med(&r.p50_vs_raw)
        );
    }
    out
}

/// Writes one `.hgrm` percentile distribution per latency row (HdrHistogram's text format,
/// values in µs), readable by HdrHistogram's plotter.
pub fn write_hgrm(dir: &Path, rows: &[LatRow]) -> io::Result<Vec<std::path::PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut written = Vec::new();
    for r in rows {
        let name = format!(
            "lat-{}-{}-{}.hgrm",
            transport_name(r.transport),
            r.size,
            subject_name(r.subject).replace(' ', "-")
        );
        let mut out = String::from("       Value     Percentile TotalCount 1/(1-Percentile)\n\n");
        for v in r.hist.iter_quantiles(1) {
            let q = v.quantile_iterated_to();
            let inv = if q < 1.0 {
                format!("{:.2}", 1.0 / (1.0 - q))
            } else {
                "inf".into()
            };
            let _ = writeln!(
                out,
                "{:12.3} {:14.12} {:10} {:>14}",
                v.value_iterated_to() as f64 / 1000.0,
                q,
                v.count_since_last_iteration(),
                inv
            );
        }
        let _ = writeln!(
            out,
            "#[Mean    = {:12.3}, StdDeviation   = {:12.3}]",
            r.hist.mean() / 1000.0,
            r.hist.stdev() / 1000.0
        );
        let _ = writeln!(
            out,
            "#[Max     = {:12.3}, Total count    = {:12}]",
            r.hist.max() as f64 / 1000.0,
            r.hist.len()
        );
        let path = dir.join(name);
        std::fs::write(&path, out)?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_spreads() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
        let s = spread(vec![2.0, 1.0, 4.0]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 4.0));
        assert!(spread(vec![]).is_none());
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_size(1), "1 B");
        assert_eq!(human_size(65536), "64 KiB");
        assert_eq!(human_size(16 << 20), "16 MiB");
    }
}
