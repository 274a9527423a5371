//! The async API on two executors (tokio, and a twenty-line `block_on` to show it needs no
//! runtime), cancel-safety, and back-pressure at the high-water mark.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context as TaskContext, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::Duration;

use zeroring::{AsyncSocket, Context, Msg, SocketType};

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }
}

/// The smallest executor: poll, park until woken, poll again.
fn block_on<F: Future>(f: F) -> F::Output {
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        if let Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        // Bounded, so that a lost wakeup fails the test instead of hanging it.
        thread::park_timeout(Duration::from_secs(20));
    }
}

fn pair(ctx: &Context, a: SocketType, b: SocketType) -> (AsyncSocket, AsyncSocket) {
    let x = ctx.socket(a).unwrap();
    x.bind("tcp://127.0.0.1:*").unwrap();
    let ep = x.get_last_endpoint().unwrap().unwrap();
    let y = ctx.socket(b).unwrap();
    y.connect(&ep).unwrap();
    (AsyncSocket::new(x), AsyncSocket::new(y))
}

#[test]
fn req_rep_on_tokio() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let ctx = Context::new();
    let (mut rep, mut req) = pair(&ctx, SocketType::Rep, SocketType::Req);
    let server = rt.spawn(async move {
        for _ in 0..1000 {
            let m = rep.recv_multipart().await.unwrap();
            rep.send_multipart(m).await.unwrap();
        }
    });
    rt.block_on(async move {
        for i in 0..1000u32 {
            req.send(i.to_string()).await.unwrap();
            let reply = req.recv().await.unwrap();
            assert_eq!(reply.data(), i.to_string().as_bytes());
        }
    });
    rt.block_on(server).unwrap();
}

#[test]
fn push_pull_with_a_plain_block_on() {
    let ctx = Context::new();
    let (mut pull, mut push) = pair(&ctx, SocketType::Pull, SocketType::Push);
    let producer = thread::spawn(move || {
        block_on(async {
            for i in 0..10_000u32 {
                let parts = vec![Msg::from(format!("{i}")), Msg::from("tail")];
                push.send_multipart(parts).await.unwrap();
            }
        });
        push
    });
    block_on(async {
        for i in 0..10_000u32 {
            let parts = pull.recv_multipart().await.unwrap();
            assert_eq!(parts.len(), 2);
            assert_eq!(parts[0].data(), i.to_string().as_bytes());
        }
    });
    drop(producer.join().unwrap());
}

#[test]
fn a_dropped_recv_loses_nothing() {
    let ctx = Context::new();
    let (mut pull, mut push) = pair(&ctx, SocketType::Pull, SocketType::Push);
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    {
        // Polled once with nothing there, then dropped.
        let mut f = pin!(pull.recv());
        assert!(f.as_mut().poll(&mut cx).is_pending());
    }
    block_on(push.send("kept")).unwrap();
    assert_eq!(block_on(pull.recv()).unwrap().data(), b"kept");
}

#[test]
fn send_waits_at_the_high_water_mark_and_a_dropped_send_sends_nothing() {
    let ctx = Context::new();
    let pull = ctx.socket(SocketType::Pull).unwrap();
    pull.set_rcvhwm(1).unwrap();
    pull.bind("inproc://async-hwm").unwrap();
    let push = ctx.socket(SocketType::Push).unwrap();
    push.set_sndhwm(1).unwrap();
    push.connect("inproc://async-hwm").unwrap();
    let (mut pull, mut push) = (AsyncSocket::new(pull), AsyncSocket::new(push));
    // Fill the pipe (inproc: one pipe of HWM 1 + 1).
    let mut sent = 0;
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = TaskContext::from_waker(&waker);
    loop {
        let mut f = pin!(push.send(format!("m{sent}")));
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(r) => {
                r.unwrap();
                sent += 1;
            }
            // Full: this future is dropped here, its message unsent.
            Poll::Pending => break,
        }
        assert!(sent < 100, "the high-water mark never held");
    }
    // A send that waits is woken by the reader making room.
    let reader = thread::spawn(move || {
        block_on(async {
            let mut got = Vec::new();
            for _ in 0..sent + 1 {
                got.push(pull.recv().await.unwrap().data().to_vec());
            }
            got
        })
    });
    block_on(push.send("after")).unwrap();
    let got = reader.join().unwrap();
    let want: Vec<Vec<u8>> = (0..sent)
        .map(|i| format!("m{i}").into_bytes())
        .chain([b"after".to_vec()])
        .collect();
    assert_eq!(got, want, "the dropped send sent nothing");
}

#[test]
fn stream_and_sink_adapters() {
    use futures_core::Stream;
    use futures_sink::Sink;
    let ctx = Context::new();
    let (mut pull, mut push) = pair(&ctx, SocketType::Pull, SocketType::Push);
    block_on(std::future::poll_fn(|cx| {
        let mut sink = std::pin::Pin::new(&mut push);
        if sink.as_mut().poll_ready(cx).is_pending() {
            return Poll::Pending;
        }
        sink.as_mut()
            .start_send(vec![Msg::from("via"), Msg::from("sink")])
            .unwrap();
        sink.as_mut().poll_flush(cx)
    }))
    .unwrap();
    let item = block_on(std::future::poll_fn(|cx| {
        std::pin::Pin::new(&mut pull).poll_next(cx)
    }));
    let parts = item.expect("a message").unwrap();
    assert_eq!(parts[0].data(), b"via");
    assert_eq!(parts[1].data(), b"sink");
}
