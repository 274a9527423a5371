//! The async API: futures for send and receive over any executor, plus `Stream`/`Sink`.
//!
//! Runtime-agnostic: a task that finds nothing to do arms its socket (ZMQ_EVENTS, which makes
//! the socket's fd edge-triggered, see [`Socket::get_events`]) and hands its `Waker` to one
//! process-wide watcher thread that polls the armed fds (the `polling` crate) and wakes the
//! tasks whose socket fired. No executor hooks, so it runs on tokio, async-std, smol or a
//! hand-written `block_on` alike.
//!
//! **Cancel-safe**: a receive takes a message only in the poll that returns it, all its parts
//! at once (a stream hands its socket whole messages), so a dropped `recv` future loses
//! nothing; a send hands a message to the socket only in the poll that returns `Ready`, all
//! parts at once (the high-water mark is checked at a message's first part only), so a
//! dropped `send` future leaves no half-sent message — the message it held is dropped unsent.
//!
//! Owns: the futures and the watcher. Must never: block an executor thread, or spin.

use std::collections::HashMap;
use std::future::Future;
use std::os::fd::{BorrowedFd, RawFd};
use std::pin::Pin;
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context as TaskContext, Poll, Waker};

use zeroring_engine::Msg;

use crate::error::{Error, Result};
use crate::socket::{Socket, DONTWAIT, POLLIN, POLLOUT, SNDMORE};

/// The watcher: armed socket fds and the wakers waiting on them.
struct Watcher {
    poller: polling::Poller,
    /// fd → (registered with the poller, wakers to wake).
    waiting: Mutex<HashMap<RawFd, (bool, Vec<Waker>)>>,
}

impl Watcher {
    fn get() -> &'static Arc<Watcher> {
        static WATCHER: OnceLock<Arc<Watcher>> = OnceLock::new();
        WATCHER.get_or_init(|| {
            let w = Arc::new(Watcher {
                poller: polling::Poller::new().expect("an epoll instance for the async watcher"),
                waiting: Mutex::new(HashMap::new()),
            });
            let run = w.clone();
            // Blocks every signal, as zeroring's other threads do.
            zeroring_engine::thread::spawn("zeroring-async".into(), move || run.run())
                .expect("the async watcher thread");
            w
        })
    }

    fn run(&self) {
        let mut events = polling::Events::new();
        loop {
            events.clear();
            if self.poller.wait(&mut events, None).is_err() {
                continue;
            }
            let mut wake = Vec::new();
            {
                let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
                for ev in events.iter() {
                    if let Some((registered, wakers)) = waiting.get_mut(&(ev.key as RawFd)) {
                        // One-shot: the fd is re-armed by the next `wait_for`.
                        *registered = false;
                        wake.append(wakers);
                    }
                }
            }
            for w in wake {
                w.wake();
            }
        }
    }

    /// Wakes `waker` once `fd` becomes readable.
    fn wait_for(&self, fd: RawFd, waker: &Waker) -> Result<()> {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        let entry = waiting.entry(fd).or_insert((false, Vec::new()));
        if !entry.1.iter().any(|w| w.will_wake(waker)) {
            entry.1.push(waker.clone());
        }
        let interest = polling::Event::readable(fd as usize);
        // SAFETY: `fd` is a live socket's signal fd; `forget` removes it from the poller before
        // the socket (and so the fd) goes away.
        let borrowed = unsafe { BorrowedFd::borrow_raw(fd) };
        let r = if entry.0 {
            self.poller.modify(borrowed, interest)
        } else {
            // SAFETY: as above: the registration is deleted before the fd is closed.
            match unsafe { self.poller.add(fd, interest) } {
                Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                    self.poller.modify(borrowed, interest)
                }
                r => r,
            }
        };
        r.map_err(|_| Error::EFAULT)?;
        entry.0 = true;
        Ok(())
    }

    /// Drops `fd` from the poller (its socket is closing).
    fn forget(&self, fd: RawFd) {
        let mut waiting = self.waiting.lock().unwrap_or_else(|e| e.into_inner());
        if waiting.remove(&fd).is_some() {
            // SAFETY: the fd is still open (the socket drops after this).
            let _ = self.poller.delete(unsafe { BorrowedFd::borrow_raw(fd) });
        }
    }
}

/// A socket driven by futures. `Send`, not `Sync`, like [`Socket`]; its futures borrow it
/// mutably, so they are `Send` too (one task at a time drives a socket, as with libzmq).
#[derive(Debug)]
pub struct AsyncSocket {
    socket: Socket,
    /// The message a `Sink` accepted and has not handed to the socket yet.
    sink_pending: Option<Vec<Msg>>,
}

impl AsyncSocket {
    /// Wraps `socket`.
    pub fn new(socket: Socket) -> Self {
        AsyncSocket {
            socket,
            sink_pending: None,
        }
    }

    /// The socket, for options, bind and connect.
    pub fn get_ref(&self) -> &Socket {
        &self.socket
    }

    /// Arms the socket and registers the task; `Ready` when `want` showed up meanwhile.
    fn arm(&self, want: i32, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        match self.socket.get_events() {
            Ok(ev) if ev & want != 0 => Poll::Ready(Ok(())),
            Ok(_) => match Watcher::get().wait_for(self.socket.get_fd(), cx.waker()) {
                Ok(()) => Poll::Pending,
                Err(e) => Poll::Ready(Err(e)),
            },
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Tries `attempt` (a non-blocking call); on EAGAIN arms the socket for `want` and
    /// registers the task, trying again if `want` showed up meanwhile.
    fn poll_with<T>(
        &self,
        cx: &mut TaskContext<'_>,
        want: i32,
        mut attempt: impl FnMut(&Socket) -> Result<T>,
    ) -> Poll<Result<T>> {
        loop {
            match attempt(&self.socket) {
                Err(Error::EAGAIN) => {}
                r => return Poll::Ready(r),
            }
            match self.arm(want, cx) {
                Poll::Ready(Ok(())) => continue,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// Receives one whole message (all its parts), or registers the task to be woken.
    pub fn poll_recv_multipart(&self, cx: &mut TaskContext<'_>) -> Poll<Result<Vec<Msg>>> {
        self.poll_with(cx, POLLIN, |s| s.recv_multipart_msg(DONTWAIT))
    }

    /// Sends every part of `parts` (taken only on success), or registers the task.
    pub fn poll_send_multipart(
        &self,
        cx: &mut TaskContext<'_>,
        parts: &mut Option<Vec<Msg>>,
    ) -> Poll<Result<()>> {
        self.poll_with(cx, POLLOUT, |socket| {
            let Some(msg) = parts.as_ref() else {
                return Ok(());
            };
            let Some(first) = msg.first() else {
                *parts = None;
                return Err(Error::EINVAL);
            };
            let n = msg.len();
            let more = |i: usize| if i + 1 < n { SNDMORE } else { 0 };
            // A clone (an inline copy or a refcount) so that EAGAIN leaves the message ours.
            socket.send_msg(first.clone(), more(0) | DONTWAIT)?;
            // Later parts never wait: the high-water mark counts whole messages.
            for (i, p) in parts
                .take()
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .skip(1)
            {
                socket.send_msg(p, more(i) | DONTWAIT)?;
            }
            Ok(())
        })
    }

    /// Receives one part (the next part of a multipart message, or a whole single-part one).
    pub fn recv(&mut self) -> Recv<'_> {
        Recv { socket: self }
    }

    /// Receives one whole message.
    pub fn recv_multipart(&mut self) -> RecvMultipart<'_> {
        RecvMultipart { socket: self }
    }

    /// Sends a single-part message.
    pub fn send(&mut self, msg: impl crate::socket::Sendable) -> SendMultipart<'_> {
        SendMultipart {
            socket: self,
            parts: Some(vec![msg.into_msg()]),
        }
    }

    /// Sends a whole message.
    pub fn send_multipart(&mut self, parts: Vec<Msg>) -> SendMultipart<'_> {
        SendMultipart {
            socket: self,
            parts: Some(parts),
        }
    }
}

impl Drop for AsyncSocket {
    fn drop(&mut self) {
        Watcher::get().forget(self.socket.get_fd());
    }
}

/// Future of [`AsyncSocket::recv`].
#[derive(Debug)]
pub struct Recv<'a> {
    socket: &'a mut AsyncSocket,
}

impl Future for Recv<'_> {
    type Output = Result<Msg>;
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<Msg>> {
        self.socket.poll_with(cx, POLLIN, |s| s.recv_msg(DONTWAIT))
    }
}

/// Future of [`AsyncSocket::recv_multipart`].
#[derive(Debug)]
pub struct RecvMultipart<'a> {
    socket: &'a mut AsyncSocket,
}

impl Future for RecvMultipart<'_> {
    type Output = Result<Vec<Msg>>;
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<Vec<Msg>>> {
        self.socket.poll_recv_multipart(cx)
    }
}

/// Future of [`AsyncSocket::send`] and [`AsyncSocket::send_multipart`].
#[derive(Debug)]
pub struct SendMultipart<'a> {
    socket: &'a mut AsyncSocket,
    parts: Option<Vec<Msg>>,
}

impl Future for SendMultipart<'_> {
    type Output = Result<()>;
    fn poll(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        this.socket.poll_send_multipart(cx, &mut this.parts)
    }
}

impl futures_core::Stream for AsyncSocket {
    type Item = Result<Vec<Msg>>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        match self.poll_recv_multipart(cx) {
            Poll::Ready(Err(Error::ETERM)) => Poll::Ready(None),
            Poll::Ready(r) => Poll::Ready(Some(r)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl futures_sink::Sink<Vec<Msg>> for AsyncSocket {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        self.poll_flush(cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Vec<Msg>) -> Result<()> {
        self.get_mut().sink_pending = Some(item);
        Ok(())
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        let this = self.get_mut();
        let mut pending = this.sink_pending.take();
        let r = this.poll_send_multipart(cx, &mut pending);
        this.sink_pending = pending;
        r
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Result<()>> {
        self.poll_flush(cx)
    }
}
