//! The zguide's request-reply broker (rrbroker) with its clients and workers in one program:
//! REQ clients → ROUTER | `zeroring::proxy` | DEALER → REP workers, over tcp loopback.
//!
//! Run: `cargo run -p zeroring --example rrbroker`

use std::thread;

use zeroring::{Context, Error, SocketType};

fn main() -> zeroring::Result<()> {
    let ctx = Context::new();
    let frontend = ctx.socket(SocketType::Router)?;
    frontend.bind("tcp://127.0.0.1:*")?;
    let clients_at = frontend.get_last_endpoint()?.expect("a tcp endpoint");
    let backend = ctx.socket(SocketType::Dealer)?;
    backend.bind("tcp://127.0.0.1:*")?;
    let workers_at = backend.get_last_endpoint()?.expect("a tcp endpoint");
    // The broker: returns with ETERM once the context is shut down below.
    let broker = thread::spawn(move || zeroring::proxy(&frontend, &backend, None));

    let workers: Vec<_> = (0..2)
        .map(|id| {
            let rep = ctx.socket(SocketType::Rep)?;
            rep.connect(&workers_at)?;
            Ok(thread::spawn(move || -> zeroring::Result<()> {
                loop {
                    let request = match rep.recv_string(0) {
                        Err(Error::ETERM) => return Ok(()),
                        r => r?.unwrap_or_default(),
                    };
                    rep.send(format!("World from worker {id} ({request})"), 0)?;
                }
            }))
        })
        .collect::<zeroring::Result<_>>()?;

    let requester = ctx.socket(SocketType::Req)?;
    requester.connect(&clients_at)?;
    for n in 0..10 {
        requester.send(format!("Hello {n}"), 0)?;
        println!("{}", requester.recv_string(0)?.unwrap_or_default());
    }
    drop(requester);
    ctx.shutdown();
    for w in workers {
        let _ = w.join();
    }
    let _ = broker.join();
    Ok(())
}
