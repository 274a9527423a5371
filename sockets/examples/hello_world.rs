//! The zguide's "Hello World": a REP server and a REQ client (over inproc until tcp arrives).
//!
//! Run: `cargo run -p zeroring --example hello_world`

use std::thread;

use zeroring::{Context, SocketType};

fn main() -> zeroring::Result<()> {
    let ctx = Context::new();

    // hwserver: answers every "Hello" with "World".
    let server = ctx.socket(SocketType::Rep)?;
    server.bind("inproc://hello")?;
    let handle = thread::spawn(move || -> zeroring::Result<()> {
        for _ in 0..10 {
            let request = server.recv_string(0)?.expect("UTF-8");
            println!("Received {request}");
            server.send("World", 0)?;
        }
        Ok(())
    });

    // hwclient: ten requests, each waiting for its reply.
    let client = ctx.socket(SocketType::Req)?;
    client.connect("inproc://hello")?;
    for n in 0..10 {
        println!("Sending Hello {n}…");
        client.send("Hello", 0)?;
        let reply = client.recv_string(0)?.expect("UTF-8");
        println!("Received {reply} {n}");
    }
    handle.join().expect("server thread")?;
    Ok(())
}
