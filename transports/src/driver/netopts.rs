//! Socket-level options of tcp and ipc connections, and applying them to descriptors.
//!
//! Owns: the transport half of libzmq's options (reconnect and connect timing, BACKLOG,
//! TCP_KEEPALIVE*, SNDBUF, RCVBUF, TOS, IPV6, BINDTODEVICE, AFFINITY) with libzmq's defaults.
//! Must never: know about ZMTP or socket patterns.

use std::io;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

/// The send buffer asked for on an ipc connection whose ZMQ_SNDBUF is left at -1 (the kernel
/// doubles it, capped by `net.core.wmem_max`: 512 KiB, or 416 KiB where the cap is the usual
/// 208 KiB). A unix stream socket, unlike tcp, does not grow its buffer with the traffic: at
/// the default of 208 KiB a writer that batches small messages fills it and sleeps several
/// times as often, and PUSH→PULL at 64 B ran at 0.64× the rate it reaches with this (the median
/// of 12 alternated pairs, docs/performance.md). It bounds what the kernel holds for one slow
/// peer, as tcp's autotuning (up to 4 MiB) does. An explicit ZMQ_SNDBUF, and tcp, are left as
/// libzmq leaves them.
pub const IPC_SNDBUF_DEFAULT: usize = 256 * 1024;

/// ZMQ_RECONNECT_STOP's bit: give up on a refused connect.
pub const RECONNECT_STOP_CONN_REFUSED: i32 = 1;
/// ZMQ_RECONNECT_STOP's bit: give up on a connection that ends before its handshake completed.
pub const RECONNECT_STOP_HANDSHAKE_FAILED: i32 = 2;

/// Transport options with libzmq's defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransportOptions {
    /// ZMQ_RECONNECT_IVL; `None` (libzmq: -1) disables reconnection. Default 100 ms.
    pub reconnect_ivl: Option<Duration>,
    /// ZMQ_RECONNECT_IVL_MAX; zero (the default) keeps the interval constant.
    pub reconnect_ivl_max: Duration,
    /// ZMQ_CONNECT_TIMEOUT; `None` (0) uses the OS's.
    pub connect_timeout: Option<Duration>,
    /// ZMQ_BACKLOG (default 100): the listen(2) backlog, the kernel's bound on connections
    /// waiting to be accepted (capped by net.core.somaxconn).
    pub backlog: i32,
    /// ZR_MAX_HANDSHAKES: the most accepted connections one listener keeps in their ZMTP
    /// handshake; accepting one more evicts the oldest (see [`super::handshakes`]).
    pub max_handshakes: usize,
    /// ZMQ_TCP_KEEPALIVE: -1 leaves the OS default, 0 off, 1 on.
    pub tcp_keepalive: i32,
    /// ZMQ_TCP_KEEPALIVE_CNT (-1 = OS default).
    pub tcp_keepalive_cnt: i32,
    /// ZMQ_TCP_KEEPALIVE_IDLE in seconds (-1 = OS default).
    pub tcp_keepalive_idle: i32,
    /// ZMQ_TCP_KEEPALIVE_INTVL in seconds (-1 = OS default).
    pub tcp_keepalive_intvl: i32,
    /// ZMQ_SNDBUF in bytes (-1 = OS default over tcp, [`IPC_SNDBUF_DEFAULT`] over ipc).
    pub sndbuf: i32,
    /// ZMQ_RCVBUF in bytes (-1 = OS default).
    pub rcvbuf: i32,
    /// ZMQ_TOS (0 = leave).
    pub tos: u32,
    /// ZMQ_IPV6: allow IPv6 addresses (default off, as libzmq).
    pub ipv6: bool,
    /// ZMQ_BINDTODEVICE.
    pub bind_to_device: Option<String>,
    /// ZMQ_AFFINITY: which I/O threads may carry this socket's connections (0 = any).
    pub affinity: u64,
    /// ZMQ_IMMEDIATE: a connecting socket's pipe lives only while connected. Off (libzmq's
    /// default), the pipe outlives disconnects and queues across reconnects.
    pub immediate: bool,
    /// ZMQ_PRIORITY: SO_PRIORITY on tcp sockets (0 = leave).
    pub priority: i32,
    /// ZMQ_BUSY_POLL: SO_BUSY_POLL microseconds on tcp sockets (0 = leave); raising it past
    /// the system's setting needs CAP_NET_ADMIN, and a refusal is ignored.
    pub busy_poll: i32,
    /// ZMQ_TCP_MAXRT: how long (ms) sent data may stay unacknowledged before the connection
    /// is dropped (Linux TCP_USER_TIMEOUT, as libzmq; 0 = leave).
    pub tcp_maxrt: i32,
    /// ZMQ_USE_FD: a listening socket made elsewhere (systemd socket activation) that bind
    /// uses instead of creating one; −1: none. zeroring listens on a duplicate, so the
    /// caller's descriptor stays the caller's to close.
    pub use_fd: i32,
    /// ZMQ_RECONNECT_STOP: bit 1 ([`RECONNECT_STOP_CONN_REFUSED`]) stops a connecter on
    /// ECONNREFUSED, bit 2 ([`RECONNECT_STOP_HANDSHAKE_FAILED`]) when a connection ends before
    /// its ZMTP handshake completed; the session's core decides
    /// ([`super::SessionConfig`]). (AFTER_DISCONNECT holds anyway: `disconnect` stops the
    /// connecter.)
    pub reconnect_stop: i32,
    /// ZMQ_SOCKS_PROXY (+ USERNAME/PASSWORD): tcp connects go through this SOCKS5 proxy.
    pub socks: Option<super::socks::SocksRequest>,
    /// ZMQ_TCP_ACCEPT_FILTER and ZMQ_IPC_FILTER_*: which peers a listener keeps.
    pub accept_filters: super::filter::AcceptFilters,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            reconnect_ivl: Some(Duration::from_millis(100)),
            reconnect_ivl_max: Duration::ZERO,
            connect_timeout: None,
            backlog: 100,
            max_handshakes: super::handshakes::DEFAULT_MAX_HANDSHAKES,
            tcp_keepalive: -1,
            tcp_keepalive_cnt: -1,
            tcp_keepalive_idle: -1,
            tcp_keepalive_intvl: -1,
            sndbuf: -1,
            rcvbuf: -1,
            tos: 0,
            ipv6: false,
            bind_to_device: None,
            affinity: 0,
            immediate: false,
            priority: 0,
            busy_poll: 0,
            tcp_maxrt: 0,
            use_fd: -1,
            reconnect_stop: 0,
            socks: None,
            accept_filters: super::filter::AcceptFilters::default(),
        }
    }
}

impl TransportOptions {
    /// Applies the buffer, TOS, device and keepalive options to a socket (connected, accepted
    /// or listening). TCP_NODELAY is always set on tcp, as libzmq does.
    pub fn apply(&self, sock: SockRef<'_>, tcp: bool) -> io::Result<()> {
        if self.sndbuf >= 0 {
            sock.set_send_buffer_size(self.sndbuf as usize)?;
        } else if !tcp {
            // Only a hint: a refusal leaves the OS default, which works, only slower.
            let _ = sock.set_send_buffer_size(IPC_SNDBUF_DEFAULT);
        }
        if self.rcvbuf >= 0 {
            sock.set_recv_buffer_size(self.rcvbuf as usize)?;
        }
        if !tcp {
            return Ok(());
        }
        sock.set_nodelay(true)?;
        if self.tos != 0 {
            // IPv6 sockets take the traffic class; ignore EINVAL for the family mismatch.
            let _ = sock.set_tos(self.tos);
        }
        if let Some(dev) = &self.bind_to_device {
            sock.bind_device(Some(dev.as_bytes()))?;
        }
        if self.priority > 0 {
            set_int(&sock, libc::SOL_SOCKET, libc::SO_PRIORITY, self.priority)?;
        }
        if self.busy_poll > 0 {
            let _ = set_int(&sock, libc::SOL_SOCKET, libc::SO_BUSY_POLL, self.busy_poll);
        }
        if self.tcp_maxrt > 0 {
            sock.set_tcp_user_timeout(Some(Duration::from_millis(self.tcp_maxrt as u64)))?;
        }
        if self.tcp_keepalive == 0 {
            sock.set_keepalive(false)?;
        } else if self.tcp_keepalive == 1 {
            let mut ka = TcpKeepalive::new();
            if self.tcp_keepalive_idle > 0 {
                ka = ka.with_time(Duration::from_secs(self.tcp_keepalive_idle as u64));
            }
            if self.tcp_keepalive_intvl > 0 {
                ka = ka.with_interval(Duration::from_secs(self.tcp_keepalive_intvl as u64));
            }
            if self.tcp_keepalive_cnt > 0 {
                ka = ka.with_retries(self.tcp_keepalive_cnt as u32);
            }
            sock.set_tcp_keepalive(&ka)?;
        }
        Ok(())
    }
}

/// An `int` socket option socket2 has no setter for.
fn set_int(sock: &SockRef<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: `value` is a live i32 whose size is passed; the fd is the live socket `sock`
    // borrows.
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            level,
            name,
            (&value as *const i32).cast(),
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// libzmq 4.3.5's reconnect schedule. Without RECONNECT_IVL_MAX (0), every wait is
/// RECONNECT_IVL plus a random jitter below it. With RECONNECT_IVL_MAX set, the waits are
/// exact and grow: RECONNECT_IVL, then twice the last, capped at RECONNECT_IVL_MAX (so a
/// maximum below RECONNECT_IVL is every wait). A connection that succeeds starts it again.
#[derive(Clone, Debug)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    /// The last wait of a growing schedule; `None` before the first.
    current: Option<Duration>,
    rng: u64,
}

impl Backoff {
    /// A schedule from `base` (RECONNECT_IVL) and `max` (RECONNECT_IVL_MAX, zero for none);
    /// `seed` makes the jitter reproducible.
    pub fn new(base: Duration, max: Duration, seed: u64) -> Self {
        Backoff {
            base,
            max,
            current: None,
            rng: seed | 1,
        }
    }

    fn random(&mut self) -> u64 {
        // xorshift64*: plenty for jitter, and deterministic from the seed.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// The wait before the next attempt.
    pub fn next_delay(&mut self) -> Duration {
        if self.max.is_zero() {
            let base_ms = self.base.as_millis().max(1) as u64;
            return self.base + Duration::from_millis(self.random() % base_ms);
        }
        let candidate = match self.current {
            None => self.base,
            Some(last) => last.saturating_mul(2),
        };
        let wait = candidate.min(self.max);
        self.current = Some(wait);
        wait
    }

    /// A connection succeeded: start again from RECONNECT_IVL.
    pub fn reset(&mut self) {
        self.current = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get_int(sock: &socket2::Socket, level: i32, name: i32) -> i32 {
        use std::os::fd::AsRawFd;
        let mut v = 0i32;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: `v` and `len` are live locals of the sizes given.
        let rc = unsafe {
            libc::getsockopt(
                sock.as_raw_fd(),
                level,
                name,
                (&mut v as *mut i32).cast(),
                &mut len,
            )
        };
        assert_eq!(rc, 0);
        v
    }

    #[test]
    fn priority_and_maxrt_reach_the_socket() {
        let sock =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        let opts = TransportOptions {
            priority: 3,
            tcp_maxrt: 1500,
            busy_poll: 10,
            ..TransportOptions::default()
        };
        opts.apply(SockRef::from(&sock), true).unwrap();
        assert_eq!(get_int(&sock, libc::SOL_SOCKET, libc::SO_PRIORITY), 3);
        assert_eq!(
            sock.tcp_user_timeout().unwrap(),
            Some(Duration::from_millis(1500))
        );
        // SO_BUSY_POLL may be refused without CAP_NET_ADMIN; applying never fails for it.
        let bp = get_int(&sock, libc::SOL_SOCKET, libc::SO_BUSY_POLL);
        assert!(bp == 10 || bp == 0, "busy poll {bp}");
    }

    #[test]
    fn an_ipc_socket_left_at_the_default_gets_the_larger_send_buffer_and_tcp_does_not() {
        let sndbuf = |s: &socket2::Socket| get_int(s, libc::SOL_SOCKET, libc::SO_SNDBUF);
        let unix = || socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None);
        let (ipc, fresh) = (unix().unwrap(), unix().unwrap());
        TransportOptions::default()
            .apply(SockRef::from(&ipc), false)
            .unwrap();
        // The kernel doubles what it is asked for, up to twice net.core.wmem_max.
        assert!(
            sndbuf(&ipc) > sndbuf(&fresh),
            "ipc {} vs the OS default {}",
            sndbuf(&ipc),
            sndbuf(&fresh)
        );
        // An explicit ZMQ_SNDBUF is what the socket gets, over ipc too.
        let small = unix().unwrap();
        let opts = TransportOptions {
            sndbuf: 8192,
            ..TransportOptions::default()
        };
        opts.apply(SockRef::from(&small), false).unwrap();
        assert_eq!(sndbuf(&small), 2 * 8192);
        // tcp keeps the OS default (and with it the kernel's autotuning).
        let tcp = || socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None);
        let (t, fresh_t) = (tcp().unwrap(), tcp().unwrap());
        TransportOptions::default()
            .apply(SockRef::from(&t), true)
            .unwrap();
        assert_eq!(sndbuf(&t), sndbuf(&fresh_t));
    }

    #[test]
    fn with_a_maximum_the_waits_double_exactly_to_it() {
        // libzmq 4.3.5 (the CONNECT_RETRIED values beside pyzmq's wheel: 50, 100, 200, 400,
        // 400 for RECONNECT_IVL 50 and RECONNECT_IVL_MAX 400).
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), ms(1000), 42);
        let waits: Vec<_> = (0..6).map(|_| b.next_delay()).collect();
        assert_eq!(
            waits,
            [ms(100), ms(200), ms(400), ms(800), ms(1000), ms(1000)]
        );
        b.reset();
        assert_eq!(b.next_delay(), ms(100));
        // A maximum below RECONNECT_IVL is every wait.
        let mut b = Backoff::new(ms(100), ms(50), 42);
        assert_eq!([b.next_delay(), b.next_delay()], [ms(50), ms(50)]);
    }

    #[test]
    fn no_max_keeps_the_interval() {
        let ms = Duration::from_millis;
        let mut b = Backoff::new(ms(100), Duration::ZERO, 7);
        for _ in 0..5 {
            let d = b.next_delay();
            assert!(d >= ms(100) && d < ms(200));
        }
    }
}
