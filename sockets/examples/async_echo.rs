//! An async echo: a REP server task and a REQ client task on a tokio runtime, through
//! `zeroring::AsyncSocket` (which needs no particular runtime: see its module docs).
//!
//! Run: `cargo run -p zeroring --example async_echo`

use zeroring::{AsyncSocket, Context, SocketType};

fn main() -> zeroring::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("a tokio runtime");
    let ctx = Context::new();
    let rep = ctx.socket(SocketType::Rep)?;
    rep.bind("tcp://127.0.0.1:*")?;
    let endpoint = rep.get_last_endpoint()?.expect("a tcp endpoint");
    let req = ctx.socket(SocketType::Req)?;
    req.connect(&endpoint)?;
    let (mut rep, mut req) = (AsyncSocket::new(rep), AsyncSocket::new(req));

    let server = rt.spawn(async move {
        for _ in 0..5 {
            let request = rep.recv_multipart().await?;
            rep.send_multipart(request).await?;
        }
        Ok::<_, zeroring::Error>(())
    });
    rt.block_on(async move {
        for i in 0..5 {
            req.send(format!("echo {i}")).await?;
            let reply = req.recv().await?;
            println!("{}", String::from_utf8_lossy(reply.data()));
        }
        Ok::<_, zeroring::Error>(())
    })?;
    rt.block_on(server).expect("the server task")?;
    Ok(())
}
