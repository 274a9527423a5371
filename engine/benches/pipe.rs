//! Micro-benchmark of the lock-free plumbing (a plain timed binary, not a test):
//!
//! (a) pipe throughput of `u64` items between two threads pinned to cores 0 and 1, the writer
//!     flushing every N items, the reader spinning with `try_read` (which, unlike `read`,
//!     does not arm the wakeup when it finds the pipe empty);
//! (b) cross-thread wakeup round trip through two `Signal`s, with `spin = 0` (every wait sleeps
//!     in poll(2) and is woken through the eventfd) and with a spin budget.
//!
//! `cargo bench -p zeroring-engine --bench pipe`. Set `PIPE_BENCH_ITEMS` / `PIPE_BENCH_ROUNDS`
//! to change the sizes.

#[cfg(loom)]
fn main() {}

#[cfg(not(loom))]
fn main() {
    bench::main();
}

#[cfg(not(loom))]
mod bench {
    use std::hint::black_box;
    use std::sync::{Arc, Barrier};
    use std::thread;
    use std::time::{Duration, Instant};

    use zeroring_engine::pipe::{pipe, PipeConfig, ReadError, WriteError};
    use zeroring_engine::signal::Signal;

    const RUNS: usize = 5;

    fn env(name: &str, default: u64) -> u64 {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    }

    type Pins = Option<(core_affinity::CoreId, core_affinity::CoreId)>;

    /// The two cores to pin to. Asked once, from the unpinned main thread: the answer is the
    /// calling thread's affinity mask, so a pinned thread would only see its own core. Every
    /// benchmark thread is spawned (and pinned) explicitly; the main thread stays unpinned.
    fn cores() -> Pins {
        let ids = core_affinity::get_core_ids()?;
        if ids.len() >= 2 {
            Some((ids[0], ids[1]))
        } else {
            None
        }
    }

    fn pin(core: Option<core_affinity::CoreId>) {
        if let Some(c) = core {
            core_affinity::set_for_current(c);
        }
    }

    fn median(v: &mut [f64]) -> f64 {
        v.sort_by(|a, b| a.partial_cmp(b).unwrap());
        v[v.len() / 2]
    }

    /// One throughput run: items per second.
    fn throughput_run(pins: Pins, items: u64, flush_every: u64, hwm: usize) -> f64 {
        let (mut w, mut r) = pipe::<u64>(PipeConfig::with_hwm(hwm));
        let start = Arc::new(Barrier::new(2));
        let start2 = start.clone();
        let writer = thread::spawn(move || {
            pin(pins.map(|p| p.1));
            start2.wait();
            let mut i = 0u64;
            while i < items {
                match w.write(i) {
                    Ok(()) => {
                        i += 1;
                        if i % flush_every == 0 {
                            w.flush();
                        }
                    }
                    Err(WriteError::Full(_)) => {
                        while !w.is_writable() {
                            std::hint::spin_loop();
                        }
                    }
                    Err(WriteError::Closed(_)) => unreachable!(),
                }
            }
            w.flush();
        });
        let reader = thread::spawn(move || {
            pin(pins.map(|p| p.0));
            start.wait();
            let t0 = Instant::now();
            let mut expect = 0u64;
            while expect < items {
                // Spin the recommended way: `try_read` does not arm the wakeup.
                match r.try_read() {
                    Ok(v) => {
                        debug_assert_eq!(v, expect);
                        black_box(v);
                        expect += 1;
                    }
                    Err(ReadError::Empty) => std::hint::spin_loop(),
                    Err(ReadError::Closed) => unreachable!(),
                }
            }
            t0.elapsed()
        });
        let dt = reader.join().unwrap();
        writer.join().unwrap();
        items as f64 / dt.as_secs_f64()
    }

    fn throughput(pins: Pins, items: u64, flush_every: u64, hwm: usize) {
        let mut rates: Vec<f64> = (0..RUNS)
            .map(|_| throughput_run(pins, items, flush_every, hwm))
            .collect();
        let med = median(&mut rates);
        let min = rates[0];
        let max = rates[rates.len() - 1];
        println!(
            "pipe u64  flush every {flush_every:>3}  hwm {hwm:>5}: median {:>7.1} M items/s  \
             (min {:.1}, max {:.1}, {RUNS} runs of {items})",
            med / 1e6,
            min / 1e6,
            max / 1e6
        );
    }

    /// Ping-pong through two signals; returns per-round-trip nanoseconds, sorted.
    fn round_trips(pins: Pins, rounds: usize, spin: Duration) -> Vec<u64> {
        let a = Arc::new(Signal::new().unwrap());
        let b = Arc::new(Signal::new().unwrap());
        let (a2, b2) = (a.clone(), b.clone());
        let warmup = rounds / 10;
        let t = thread::spawn(move || {
            pin(pins.map(|p| p.1));
            for _ in 0..rounds + warmup {
                b2.wait(None, spin);
                a2.notify();
            }
        });
        let main = thread::spawn(move || {
            pin(pins.map(|p| p.0));
            let mut ns = Vec::with_capacity(rounds);
            for i in 0..rounds + warmup {
                let t0 = Instant::now();
                b.notify();
                a.wait(None, spin);
                if i >= warmup {
                    ns.push(t0.elapsed().as_nanos() as u64);
                }
            }
            ns
        });
        let mut ns = main.join().unwrap();
        t.join().unwrap();
        ns.sort_unstable();
        ns
    }

    fn wakeup(pins: Pins, rounds: usize, spin: Duration) {
        let mut meds = Vec::new();
        let mut p99s = Vec::new();
        for _ in 0..3 {
            let ns = round_trips(pins, rounds, spin);
            meds.push(ns[ns.len() / 2] as f64);
            p99s.push(ns[ns.len() * 99 / 100] as f64);
        }
        println!(
            "signal round trip spin {:>6?}: median {:>7.0} ns  p99 {:>7.0} ns  \
             (median of 3 runs of {rounds})",
            spin,
            median(&mut meds),
            median(&mut p99s)
        );
    }

    pub fn main() {
        let items = env("PIPE_BENCH_ITEMS", 20_000_000);
        let rounds = env("PIPE_BENCH_ROUNDS", 50_000) as usize;
        let pins = cores();
        match pins {
            Some((a, b)) => println!("pinned to cores {} and {}", a.id, b.id),
            None => println!("fewer than 2 cores: not pinned"),
        }
        throughput(pins, items, 64, 0);
        throughput(pins, items, 256, 0);
        throughput(pins, items / 4, 1, 0);
        throughput(pins, items, 64, 1000);
        wakeup(pins, rounds / 5, Duration::ZERO);
        wakeup(pins, rounds, Duration::from_micros(50));
    }
}
