//! ZMTP 3.1 heartbeats, timed as libzmq times them: every HEARTBEAT_IVL a PING
//! (carrying our HEARTBEAT_TTL in deciseconds) is sent and, if none is running,
//! a HEARTBEAT_TIMEOUT timer starts; a PING from the peer with a TTL starts a
//! TTL timer; any inbound frame cancels both.
//!
//! Owns: heartbeat deadlines. Must never: read a clock (time comes in as `now`).

use std::time::{Duration, Instant};

/// Heartbeat options (ZMQ_HEARTBEAT_IVL / _TTL / _TIMEOUT).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct HeartbeatConfig {
    /// Interval between PINGs; `None` (libzmq: 0) sends none.
    pub interval: Option<Duration>,
    /// TTL announced in our PINGs. libzmq keeps it in deciseconds, so values
    /// under 100 ms are 0 (no effect); the maximum is 6553.5 s.
    pub ttl: Duration,
    /// How long to wait for traffic after a PING; `None` means "same as the
    /// interval" (libzmq's -1 default).
    pub timeout: Option<Duration>,
}

impl HeartbeatConfig {
    /// The TTL field of our PINGs, in deciseconds.
    pub fn ttl_deciseconds(&self) -> u16 {
        u16::try_from(self.ttl.as_millis() / 100).unwrap_or(u16::MAX)
    }

    fn effective_timeout(&self) -> Option<Duration> {
        self.interval?;
        self.timeout.or(self.interval).filter(|d| !d.is_zero())
    }
}

/// What a heartbeat deadline asks the connection to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeartbeatAction {
    /// Send a PING with this TTL (deciseconds).
    SendPing { ttl: u16 },
    /// HEARTBEAT_TIMEOUT expired.
    TimedOut,
    /// The peer's TTL expired.
    TtlExpired,
}

/// Heartbeat timers of one connection.
#[derive(Clone, Debug)]
pub struct Heartbeat {
    config: HeartbeatConfig,
    next_ping: Option<Instant>,
    timeout_at: Option<Instant>,
    ttl_at: Option<Instant>,
}

impl Heartbeat {
    pub fn new(config: HeartbeatConfig) -> Self {
        Heartbeat {
            config,
            next_ping: None,
            timeout_at: None,
            ttl_at: None,
        }
    }

    /// The handshake completed: start the PING interval.
    pub fn start(&mut self, now: Instant) {
        if let Some(ivl) = self.config.interval.filter(|d| !d.is_zero()) {
            self.next_ping = Some(now + ivl);
        }
    }

    /// Any frame arrived from the peer: cancel the timeout and TTL timers.
    pub fn on_inbound(&mut self) {
        self.timeout_at = None;
        self.ttl_at = None;
    }

    /// The peer sent a PING with `ttl` deciseconds.
    pub fn on_ping(&mut self, ttl: u16, now: Instant) {
        if self.ttl_at.is_none() && ttl > 0 {
            self.ttl_at = Some(now + Duration::from_millis(u64::from(ttl) * 100));
        }
    }

    /// The earliest deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [self.next_ping, self.timeout_at, self.ttl_at]
            .into_iter()
            .flatten()
            .min()
    }

    /// Fires due deadlines; returns the first action due (call again until `None`).
    pub fn handle_timeout(&mut self, now: Instant) -> Option<HeartbeatAction> {
        if self.ttl_at.is_some_and(|t| t <= now) {
            self.ttl_at = None;
            return Some(HeartbeatAction::TtlExpired);
        }
        if self.timeout_at.is_some_and(|t| t <= now) {
            self.timeout_at = None;
            return Some(HeartbeatAction::TimedOut);
        }
        if self.next_ping.is_some_and(|t| t <= now) {
            let ivl = self.config.interval.unwrap_or_default();
            // Re-armed from now, as libzmq re-arms its interval timer when it fires: with
            // HEARTBEAT_TIMEOUT equal to the interval (the default) the timeout armed below
            // then comes due with the next PING and, checked first, ends a silent peer before
            // that PING goes (from the deadline instead, a late wakeup put the PING first).
            self.next_ping = Some(now + ivl);
            if self.timeout_at.is_none() {
                if let Some(to) = self.config.effective_timeout() {
                    self.timeout_at = Some(now + to);
                }
            }
            return Some(HeartbeatAction::SendPing {
                ttl: self.config.ttl_deciseconds(),
            });
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_then_timeout_unless_traffic() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut hb = Heartbeat::new(HeartbeatConfig {
            interval: Some(ms(100)),
            ttl: ms(1050),
            timeout: None,
        });
        assert_eq!(hb.poll_timeout(), None);
        hb.start(t0);
        assert_eq!(hb.poll_timeout(), Some(t0 + ms(100)));
        assert_eq!(hb.handle_timeout(t0 + ms(50)), None);
        assert_eq!(
            hb.handle_timeout(t0 + ms(100)),
            Some(HeartbeatAction::SendPing { ttl: 10 })
        );
        assert_eq!(hb.poll_timeout(), Some(t0 + ms(200)));
        hb.on_inbound();
        assert_eq!(
            hb.handle_timeout(t0 + ms(200)),
            Some(HeartbeatAction::SendPing { ttl: 10 })
        );
        assert_eq!(
            hb.handle_timeout(t0 + ms(300)),
            Some(HeartbeatAction::TimedOut)
        );
    }

    #[test]
    fn a_silent_peer_gets_one_ping_when_the_timeout_is_the_interval() {
        // libzmq 4.3.5 beside a raw peer that never answers (HEARTBEAT_IVL 100, the timeout
        // defaulting to it): one PING, then the close. A late wakeup must not slip a second
        // PING in before the timeout.
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut hb = Heartbeat::new(HeartbeatConfig {
            interval: Some(ms(100)),
            ttl: Duration::ZERO,
            timeout: None,
        });
        hb.start(t0);
        assert_eq!(
            hb.handle_timeout(t0 + ms(103)),
            Some(HeartbeatAction::SendPing { ttl: 0 })
        );
        assert_eq!(hb.poll_timeout(), Some(t0 + ms(203)));
        assert_eq!(
            hb.handle_timeout(t0 + ms(203)),
            Some(HeartbeatAction::TimedOut)
        );
    }

    #[test]
    fn peer_ttl() {
        let t0 = Instant::now();
        let mut hb = Heartbeat::new(HeartbeatConfig::default());
        hb.start(t0);
        hb.on_ping(0, t0);
        assert_eq!(hb.poll_timeout(), None);
        hb.on_ping(5, t0);
        assert_eq!(hb.poll_timeout(), Some(t0 + Duration::from_millis(500)));
        assert_eq!(
            hb.handle_timeout(t0 + Duration::from_millis(500)),
            Some(HeartbeatAction::TtlExpired)
        );
        let cfg = HeartbeatConfig {
            ttl: Duration::from_millis(99),
            ..Default::default()
        };
        assert_eq!(cfg.ttl_deciseconds(), 0);
        let cfg = HeartbeatConfig {
            ttl: Duration::from_secs(100_000),
            ..Default::default()
        };
        assert_eq!(cfg.ttl_deciseconds(), u16::MAX);
    }
}
