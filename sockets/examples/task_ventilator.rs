//! The zguide's parallel pipeline: a ventilator PUSHes tasks to workers, workers PUSH results
//! to a sink (over inproc until tcp arrives).
//!
//! The ventilator sends 100 tasks (each a workload in milliseconds, kept tiny here), four
//! workers process them, the sink collects the 100 results and reports the total elapsed time.
//! When the sink is done, the context is shut down: the workers' blocking recv returns ETERM
//! and they exit, the idiomatic way to stop libzmq threads.
//!
//! Run: `cargo run -p zeroring --example task_ventilator`

use std::thread;
use std::time::{Duration, Instant};

use zeroring::{Context, Error, SocketType};

const TASKS: u32 = 100;
const WORKERS: usize = 4;

fn main() -> zeroring::Result<()> {
    let ctx = Context::new();

    // tasksink: binds first so that results have somewhere to go.
    let sink = ctx.socket(SocketType::Pull)?;
    sink.bind("inproc://sink")?;

    // taskvent
    let sender = ctx.socket(SocketType::Push)?;
    sender.bind("inproc://tasks")?;

    // taskwork × WORKERS
    let mut workers = Vec::new();
    for id in 0..WORKERS {
        let ctx = ctx.clone();
        workers.push(thread::spawn(move || -> zeroring::Result<u32> {
            let receiver = ctx.socket(SocketType::Pull)?;
            receiver.connect("inproc://tasks")?;
            let results = ctx.socket(SocketType::Push)?;
            results.connect("inproc://sink")?;
            let mut done = 0;
            loop {
                let task = match receiver.recv_string(0) {
                    Ok(t) => t.expect("UTF-8"),
                    Err(Error::ETERM) => return Ok(done),
                    Err(e) => return Err(e),
                };
                let workload: u64 = task.parse().unwrap();
                thread::sleep(Duration::from_micros(workload * 100));
                results.send(format!("{id}"), 0)?;
                done += 1;
            }
        }));
    }

    // The zguide asks the user to "press Enter when the workers are ready": a PUSH hands tasks
    // only to the workers connected so far. Here we wait until all of them are.
    while sender.peer_count() < WORKERS {
        thread::yield_now();
    }
    let start = Instant::now();
    let mut total_msec = 0u64;
    let mut seed = 42u64;
    for _ in 0..TASKS {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let workload = (seed >> 33) % 100 + 1;
        total_msec += workload;
        sender.send(workload.to_string(), 0)?;
    }
    println!("Total expected cost: {total_msec} msec (scaled down 10×)");

    let mut per_worker = [0u32; WORKERS];
    for n in 0..TASKS {
        let who: usize = sink.recv_string(0)?.expect("UTF-8").parse().unwrap();
        per_worker[who] += 1;
        print!("{}", if n % 10 == 9 { ":" } else { "." });
    }
    println!();
    println!("Total elapsed time: {} msec", start.elapsed().as_millis());
    println!("Tasks per worker: {per_worker:?}");

    // Stop the workers: their recv fails with ETERM.
    ctx.shutdown();
    for w in workers {
        w.join().expect("worker thread")?;
    }
    drop((sink, sender));
    ctx.term();
    Ok(())
}
