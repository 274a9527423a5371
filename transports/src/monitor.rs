//! Socket monitor events: libzmq's numbers (zmq.h `ZMQ_EVENT_*`) and what each value means.
//!
//! Owns: the vocabulary only. The transports layer reports events through
//! [`crate::driver::SocketLink::monitor`]; the sockets crate publishes them on a PAIR socket in
//! libzmq's two-frame format (`[u16 LE event][u32 LE value]`, endpoint).

use std::fmt;

/// One monitor event kind, with libzmq's number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum MonitorEvent {
    /// Connection established (value: the fd).
    Connected = 0x0001,
    /// Synchronous connect failed, retrying asynchronously (value: errno).
    ConnectDelayed = 0x0002,
    /// Reconnect scheduled (value: the reconnect interval in ms).
    ConnectRetried = 0x0004,
    /// Bound and listening (value: the fd).
    Listening = 0x0008,
    /// Bind failed (value: errno).
    BindFailed = 0x0010,
    /// Connection accepted (value: the fd).
    Accepted = 0x0020,
    /// Accept failed (value: errno).
    AcceptFailed = 0x0040,
    /// Listener or connection closed (value: the fd).
    Closed = 0x0080,
    /// Close failed (value: errno).
    CloseFailed = 0x0100,
    /// Session disconnected (value: the fd).
    Disconnected = 0x0200,
    /// Monitoring stopped.
    MonitorStopped = 0x0400,
    /// Handshake failed without detail (value: errno).
    HandshakeFailedNoDetail = 0x0800,
    /// Handshake succeeded (value: 0).
    HandshakeSucceeded = 0x1000,
    /// Handshake failed for a protocol reason (value: `ZMQ_PROTOCOL_ERROR_*`).
    HandshakeFailedProtocol = 0x2000,
    /// Handshake failed in authentication (value: the ZAP status code).
    HandshakeFailedAuth = 0x4000,
}

impl MonitorEvent {
    /// Every event (libzmq's ZMQ_EVENT_ALL).
    pub const ALL: u32 = 0xFFFF;

    /// The event number.
    pub const fn code(self) -> u16 {
        self as u16
    }

    /// The event for a number, if it is one.
    pub fn from_code(code: u16) -> Option<MonitorEvent> {
        use MonitorEvent::*;
        [
            Connected,
            ConnectDelayed,
            ConnectRetried,
            Listening,
            BindFailed,
            Accepted,
            AcceptFailed,
            Closed,
            CloseFailed,
            Disconnected,
            MonitorStopped,
            HandshakeFailedNoDetail,
            HandshakeSucceeded,
            HandshakeFailedProtocol,
            HandshakeFailedAuth,
        ]
        .into_iter()
        .find(|e| e.code() == code)
    }

    /// libzmq's v1 wire form of the first frame: `[u16 LE event][u32 LE value]`.
    pub fn encode(self, value: u32) -> [u8; 6] {
        let mut b = [0u8; 6];
        b[..2].copy_from_slice(&self.code().to_le_bytes());
        b[2..].copy_from_slice(&value.to_le_bytes());
        b
    }
}

impl fmt::Display for MonitorEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_match_zmq_h_and_round_trip() {
        assert_eq!(MonitorEvent::HandshakeFailedAuth.code(), 0x4000);
        assert_eq!(MonitorEvent::Disconnected.code(), 0x200);
        for bit in 0..15 {
            let e = MonitorEvent::from_code(1 << bit).unwrap();
            assert_eq!(e.code(), 1 << bit);
        }
        assert_eq!(MonitorEvent::from_code(0x8000), None);
        assert_eq!(MonitorEvent::Accepted.encode(7), [0x20, 0, 7, 0, 0, 0]);
    }
}
