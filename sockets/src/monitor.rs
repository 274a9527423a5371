//! Socket monitoring (`zmq_socket_monitor`): events published on a PAIR socket in libzmq's v1
//! format — a 6-byte frame `[u16 LE event][u32 LE value]`, then the endpoint.
//!
//! Owns: the sink that I/O threads report into and the PAIR socket it writes. Must never block
//! the reporting thread: an event that does not fit the PAIR's queue is dropped and counted.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use zeroring_transports::monitor::MonitorEvent;

/// Where the events go: the socket driver's PAIR socket (implemented where sockets are, so
/// that this file depends on no driver).
pub(crate) trait EventTarget: Send {
    /// Publishes one event (its 6-byte head, then the endpoint) without blocking; false when
    /// it did not fit.
    fn publish(&self, head: &[u8], endpoint: &str) -> bool;
}

struct Target {
    socket: Box<dyn EventTarget>,
    events: u32,
}

#[derive(Default)]
struct Inner {
    target: Mutex<Option<Target>>,
    dropped: AtomicU64,
}

/// Where a socket's monitor events go; cheap to clone, shared with its connections.
#[derive(Clone, Default)]
pub(crate) struct MonitorSink(Arc<Inner>);

impl fmt::Debug for MonitorSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorSink")
            .field("dropped", &self.0.dropped.load(Ordering::Relaxed))
            .finish()
    }
}

impl MonitorSink {
    /// Starts publishing the events in mask `events` on `socket` (a bound PAIR).
    pub(crate) fn start(&self, socket: Box<dyn EventTarget>, events: u32) {
        let old = self
            .0
            .target
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .replace(Target { socket, events });
        if let Some(old) = old {
            Self::send(&old, MonitorEvent::MonitorStopped, 0, "", &self.0.dropped);
        }
    }

    /// Stops publishing; the last event is MONITOR_STOPPED (when the mask has it).
    pub(crate) fn stop(&self) {
        drop(self.detach());
    }

    /// [`stop`](Self::stop), handing back the PAIR socket the events went to, for the caller
    /// to close when it chooses.
    pub(crate) fn detach(&self) -> Option<Box<dyn EventTarget>> {
        let old = self
            .0
            .target
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()?;
        Self::send(&old, MonitorEvent::MonitorStopped, 0, "", &self.0.dropped);
        Some(old.socket)
    }

    /// Reports an event (from any thread).
    pub(crate) fn emit(&self, event: MonitorEvent, value: u32, endpoint: &str) {
        let guard = self.0.target.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = guard.as_ref() {
            Self::send(t, event, value, endpoint, &self.0.dropped);
        }
    }

    fn send(t: &Target, event: MonitorEvent, value: u32, endpoint: &str, dropped: &AtomicU64) {
        // MONITOR_STOPPED too only when asked for, as libzmq's stop_monitor (a handshake
        // monitor in test_security_zap expects nothing after its socket closed).
        if t.events & event.code() as u32 == 0 {
            return;
        }
        let head = event.encode(value);
        if !t.socket.publish(&head[..], endpoint) {
            dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Events dropped because the monitor's PAIR queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.0.dropped.load(Ordering::Relaxed)
    }
}
