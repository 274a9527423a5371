//! One measurement: set up the measuring side, start the peer (another process, or a thread
//! for inproc), run the workload, and collect time, CPU and memory.
//!
//! Owns: process orchestration and resource accounting. Must never: count set-up or
//! connection time in the workload's timing.

use std::io;
use std::process::{Command, Stdio};
use std::time::Duration;

use hdrhistogram::Histogram;

use crate::subject::{self, Params, Subject, Transport};

/// A throughput run's result.
#[derive(Clone, Debug)]
pub struct ThrSample {
    pub subject: Subject,
    pub params: Params,
    pub elapsed: Duration,
    /// CPU time of both sides, all threads, per message.
    pub cpu_ns_per_msg: f64,
    /// Largest resident set of the two sides, in KiB.
    pub peak_rss_kib: u64,
}

impl ThrSample {
    /// Messages per second, as libzmq's local_thr computes it (count over first→last time).
    pub fn msgs_per_sec(&self) -> f64 {
        self.params.count as f64 / self.elapsed.as_secs_f64()
    }

    /// Payload megabytes (10^6) per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.msgs_per_sec() * self.params.size as f64 / 1e6
    }
}

/// A latency run's result.
#[derive(Clone, Debug)]
pub struct LatSample {
    pub subject: Subject,
    pub params: Params,
    /// Round-trip times in nanoseconds.
    pub hist: Histogram<u64>,
    pub cpu_ns_per_msg: f64,
    pub peak_rss_kib: u64,
}

fn rusage(who: i32) -> libc::rusage {
    // SAFETY: rusage is plain data; getrusage fills it for a valid `who`.
    unsafe {
        let mut r: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut r);
        r
    }
}

fn cpu_of(r: &libc::rusage) -> Duration {
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    tv(r.ru_utime) + tv(r.ru_stime)
}

/// A peer process started with this very binary's hidden `peer` command.
struct Child(std::process::Child);

impl Child {
    /// Starts a peer process. Its stdin is a pipe that stays open until [`Child::wait`] (or
    /// the end of this handle): a throughput sender keeps its connection open until then.
    fn spawn(args: &[String]) -> io::Result<Child> {
        let exe = std::env::current_exe()?;
        let child = Command::new(exe)
            .arg("peer")
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Child(child))
    }

    /// Tells the peer the receiving side is done (closes its stdin), then waits for it;
    /// returns its CPU time and peak RSS.
    fn wait(mut self) -> io::Result<(Duration, u64)> {
        drop(self.0.stdin.take());
        let pid = self.0.id() as libc::pid_t;
        let mut status = 0;
        // SAFETY: rusage is plain data that wait4 fills in for our own child.
        let mut r: libc::rusage = unsafe { std::mem::zeroed() };
        loop {
            // SAFETY: waits for our own child, writing into live locals.
            let rc = unsafe { libc::wait4(pid, &mut status, 0, &mut r) };
            if rc == pid {
                break;
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        if !libc::WIFEXITED(status) || libc::WEXITSTATUS(status) != 0 {
            return Err(io::Error::other(format!(
                "peer process failed (status {status:#x})"
            )));
        }
        Ok((cpu_of(&r), r.ru_maxrss as u64))
    }
}

fn peer_args(
    role: &str,
    subject: Subject,
    endpoint: &str,
    p: Params,
    total: u64,
    pin: Option<usize>,
) -> Vec<String> {
    let mut v = vec![
        "--role".into(),
        role.into(),
        "--subject".into(),
        subject::arg_name(subject),
        "--endpoint".into(),
        endpoint.into(),
        "--size".into(),
        p.size.to_string(),
        "--count".into(),
        total.to_string(),
        "--io-threads".into(),
        p.io_threads.to_string(),
        "--mechanism".into(),
        subject::arg_name(p.mechanism),
    ];
    if let Some(cpu) = pin {
        v.push("--pin".into());
        v.push(cpu.to_string());
    }
    v
}

fn pin_current(cpu: Option<usize>) {
    if let Some(id) = cpu {
        let _ = core_affinity::set_for_current(core_affinity::CoreId { id });
    }
}

/// A throughput sender's last step before it closes its connection: it waits until the
/// receiving process has every message (it closes our stdin). libzmq 4.3 loses what a PULL
/// at its RCVHWM has not read yet when an ipc peer hangs up (docs/performance.md, "libzmq
/// loses the tail of an ipc stream"), which failed a libzmq ipc round now and then; closing
/// after the receiver is done keeps every subject's run whole. The timed span (first to last
/// message received) is the same either way.
fn wait_for_receiver() {
    let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
}

/// The CPUs for (measuring side, peer).
fn pins(pin: &[usize]) -> (Option<usize>, Option<usize>) {
    match pin {
        [] => (None, None),
        [a] => (Some(*a), Some(*a)),
        [a, b, ..] => (Some(*a), Some(*b)),
    }
}

/// Measures one throughput run.
pub fn thr(subject: Subject, p: Params, pin: &[usize]) -> io::Result<ThrSample> {
    let (mine, theirs) = pins(pin);
    pin_current(mine);
    let mut rx = subject::thr_receiver(subject, p)?;
    let before = cpu_of(&rusage(libc::RUSAGE_SELF));
    let (elapsed, child) = if p.transport == Transport::Inproc {
        // The sender thread takes the peer's CPU: a thread starts with its creator's mask, so
        // the creator moves there for the spawn and back after.
        pin_current(theirs);
        let sender = rx.spawn_local_sender();
        pin_current(mine);
        let sender = sender?;
        let elapsed = rx.run()?;
        sender
            .join()
            .map_err(|_| io::Error::other("sender thread panicked"))??;
        (elapsed, None)
    } else {
        let child = Child::spawn(&peer_args(
            "thr-send",
            subject,
            &rx.endpoint(),
            p,
            p.count,
            theirs,
        ))?;
        let elapsed = rx.run()?;
        // The sender closes its connection only now (see `wait_for_receiver`).
        (elapsed, Some(child.wait()?))
    };
    let own = rusage(libc::RUSAGE_SELF);
    let (child_cpu, child_rss) = child.unwrap_or_default();
    let cpu = cpu_of(&own).saturating_sub(before) + child_cpu;
    Ok(ThrSample {
        subject,
        params: p,
        elapsed,
        cpu_ns_per_msg: cpu.as_nanos() as f64 / p.count as f64,
        peak_rss_kib: (own.ru_maxrss as u64).max(child_rss),
    })
}

/// Measures one latency run (`warmup` round trips are not recorded).
pub fn lat(subject: Subject, p: Params, warmup: u64, pin: &[usize]) -> io::Result<LatSample> {
    let (mine, theirs) = pins(pin);
    pin_current(mine);
    let mut client = subject::lat_client(subject, p)?;
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| io::Error::other(e.to_string()))?;
    let before = cpu_of(&rusage(libc::RUSAGE_SELF));
    let total = warmup + p.count;
    let child = if p.transport == Transport::Inproc {
        let echo = client.spawn_local_echo(total)?;
        client.run(warmup, &mut hist)?;
        echo.join()
            .map_err(|_| io::Error::other("echo thread panicked"))??;
        None
    } else {
        let child = Child::spawn(&peer_args(
            "lat-echo",
            subject,
            &client.endpoint(),
            p,
            total,
            theirs,
        ))?;
        client.run(warmup, &mut hist)?;
        Some(child.wait()?)
    };
    let own = rusage(libc::RUSAGE_SELF);
    let (child_cpu, child_rss) = child.unwrap_or_default();
    let cpu = cpu_of(&own).saturating_sub(before) + child_cpu;
    Ok(LatSample {
        subject,
        params: p,
        hist,
        cpu_ns_per_msg: cpu.as_nanos() as f64 / total as f64,
        peak_rss_kib: (own.ru_maxrss as u64).max(child_rss),
    })
}

/// The peer side, run by the hidden `peer` command in the child process.
pub fn run_peer(
    role: &str,
    subject: Subject,
    endpoint: &str,
    p: Params,
    pin: Option<usize>,
) -> io::Result<()> {
    pin_current(pin);
    match role {
        "thr-send" => subject::thr_sender(subject, endpoint, p, wait_for_receiver),
        "lat-echo" => subject::lat_echo(subject, endpoint, p, p.count),
        other => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("unknown peer role {other}"),
        )),
    }
}
