//! The zguide's weather update server and client: PUB/SUB with a topic filter (over inproc
//! until tcp arrives).
//!
//! The server publishes "zipcode temperature humidity" updates for random zip codes; the client
//! subscribes to one zip code, averages 100 updates, and the program ends.
//!
//! Run: `cargo run -p zeroring --example weather`

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use zeroring::{Context, SocketType};

/// A small xorshift generator: the example needs no crypto-grade randomness.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u32) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as u32
    }
}

fn main() -> zeroring::Result<()> {
    let ctx = Context::new();
    let stop = Arc::new(AtomicBool::new(false));

    // wuserver
    let publisher = ctx.socket(SocketType::Pub)?;
    publisher.bind("inproc://weather")?;
    let server = {
        let stop = stop.clone();
        thread::spawn(move || -> zeroring::Result<()> {
            let mut rng = Rng(0x2545_f491_4f6c_dd1d);
            while !stop.load(Ordering::Relaxed) {
                // Zip codes 10000..10100 so that the client's one shows up often.
                let zipcode = 10_000 + rng.below(100);
                let temperature = rng.below(215) as i32 - 80;
                let humidity = rng.below(50) + 10;
                publisher.send(format!("{zipcode:05} {temperature} {humidity}"), 0)?;
            }
            Ok(())
        })
    };

    // wuclient
    let filter = std::env::args().nth(1).unwrap_or_else(|| "10001 ".into());
    let subscriber = ctx.socket(SocketType::Sub)?;
    subscriber.connect("inproc://weather")?;
    subscriber.set_subscribe(filter.as_bytes())?;
    println!(
        "Collecting updates from the weather server for {}…",
        filter.trim()
    );
    let mut total = 0i64;
    let updates = 100;
    for _ in 0..updates {
        let update = subscriber.recv_string(0)?.expect("UTF-8");
        let temperature: i64 = update.split(' ').nth(1).unwrap().parse().unwrap();
        total += temperature;
    }
    println!(
        "Average temperature for zipcode '{}' was {}F",
        filter.trim(),
        total / updates
    );
    stop.store(true, Ordering::Relaxed);
    server.join().expect("server thread")?;
    Ok(())
}
