//! One measurement in a process of its own: the harness starts itself (the hidden
//! `measure-one` command), which runs [`measure::thr`] or [`measure::lat`] and prints the sample
//! on one line of stdout for the parent to read back.
//!
//! Owns: that round trip (arguments out, one result line back). Must never: measure anything
//! itself, or change what a measurement does.
//!
//! Why: in one process, a subject measured after another inherits the allocator's state that
//! the other left. glibc raises its trim and mmap thresholds once any chunk it had mmapped is
//! freed (the raw floor's 256 KiB buffers do that), and from then on it keeps freed 64 KiB
//! parts instead of giving them back to the kernel; so a library that allocates a fresh part
//! per large message (libzmq) runs faster after the raw floor than it would in an application
//! of its own (docs/performance.md, "Each subject in a process of its own").

use std::io;
use std::process::{Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use clap::ValueEnum;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};

use crate::measure::{self, LatSample, ThrSample};
use crate::subject::{arg_name, Params, Subject};

/// What a `measure-one` child is asked to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    Thr,
    Lat,
}

/// [`measure::thr`] in a child process.
pub fn thr(subject: Subject, p: Params, pin: &[usize]) -> io::Result<ThrSample> {
    let line = run(Kind::Thr, subject, p, 0, pin)?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let [elapsed_ns, cpu, rss] = f[..] else {
        return Err(bad(&line));
    };
    Ok(ThrSample {
        subject,
        params: p,
        elapsed: Duration::from_nanos(elapsed_ns.parse().map_err(|_| bad(&line))?),
        cpu_ns_per_msg: cpu.parse().map_err(|_| bad(&line))?,
        peak_rss_kib: rss.parse().map_err(|_| bad(&line))?,
    })
}

/// [`measure::lat`] in a child process; the histogram comes back whole (HdrHistogram's V2
/// encoding, base64).
pub fn lat(subject: Subject, p: Params, warmup: u64, pin: &[usize]) -> io::Result<LatSample> {
    let line = run(Kind::Lat, subject, p, warmup, pin)?;
    let f: Vec<&str> = line.split_whitespace().collect();
    let [cpu, rss, hist] = f[..] else {
        return Err(bad(&line));
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(hist)
        .map_err(|_| bad(&line))?;
    let hist = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| io::Error::other(format!("latency histogram from the child: {e:?}")))?;
    Ok(LatSample {
        subject,
        params: p,
        hist,
        cpu_ns_per_msg: cpu.parse().map_err(|_| bad(&line))?,
        peak_rss_kib: rss.parse().map_err(|_| bad(&line))?,
    })
}

/// The child's side: runs the measurement here and returns the line to print.
pub fn child(
    kind: Kind,
    subject: Subject,
    p: Params,
    warmup: u64,
    pin: &[usize],
) -> io::Result<String> {
    match kind {
        Kind::Thr => {
            let s = measure::thr(subject, p, pin)?;
            Ok(format!(
                "{} {} {}",
                s.elapsed.as_nanos(),
                s.cpu_ns_per_msg,
                s.peak_rss_kib
            ))
        }
        Kind::Lat => {
            let s = measure::lat(subject, p, warmup, pin)?;
            let mut bytes = Vec::new();
            V2Serializer::new()
                .serialize(&s.hist, &mut bytes)
                .map_err(|e| io::Error::other(format!("latency histogram: {e:?}")))?;
            Ok(format!(
                "{} {} {}",
                s.cpu_ns_per_msg,
                s.peak_rss_kib,
                base64::engine::general_purpose::STANDARD.encode(bytes)
            ))
        }
    }
}

/// Starts `measure-one` and returns its last line of output.
fn run(kind: Kind, subject: Subject, p: Params, warmup: u64, pin: &[usize]) -> io::Result<String> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.arg("measure-one")
        .args(["--kind", &arg_name(kind)])
        .args(["--subject", &arg_name(subject)])
        .args(["--transport", &arg_name(p.transport)])
        .args(["--size", &p.size.to_string()])
        .args(["--count", &p.count.to_string()])
        .args(["--warmup", &warmup.to_string()])
        .args(["--io-threads", &p.io_threads.to_string()])
        .args(["--mechanism", &arg_name(p.mechanism)]);
    if !pin.is_empty() {
        let pins: Vec<String> = pin.iter().map(usize::to_string).collect();
        cmd.args(["--pin", &pins.join(",")]);
    }
    let out = cmd.stdin(Stdio::null()).stderr(Stdio::inherit()).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "measuring process failed ({}): {}",
            out.status,
            text.trim()
        )));
    }
    text.lines()
        .last()
        .map(str::to_owned)
        .ok_or_else(|| bad(""))
}

fn bad(line: &str) -> io::Error {
    io::Error::other(format!(
        "unreadable result from the measuring process: {line:?}"
    ))
}
