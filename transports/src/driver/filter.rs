//! Accept filters (libzmq's deprecated ZMQ_TCP_ACCEPT_FILTER and ZMQ_IPC_FILTER_PID/UID/GID):
//! which peers a listener keeps. A peer that no filter admits is closed right after accept,
//! before any byte is exchanged.
//!
//! Owns: the filter lists and the check. Must never: refuse a peer when no filter of its
//! transport is set (no filter = everyone, as libzmq).

use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};

/// The filters of one listener.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcceptFilters {
    /// tcp: `(network, prefix bits)`; a peer in any of them is admitted.
    pub tcp: Vec<(IpAddr, u8)>,
    /// ipc: peer process ids admitted.
    pub pids: Vec<i32>,
    /// ipc: peer user ids admitted.
    pub uids: Vec<u32>,
    /// ipc: peer (primary) group ids admitted.
    pub gids: Vec<u32>,
}

impl AcceptFilters {
    /// Parses a ZMQ_TCP_ACCEPT_FILTER value: an address, optionally `/bits` (libzmq's
    /// `tcp_address_mask_t`). `None` when malformed.
    pub fn parse_tcp(text: &str) -> Option<(IpAddr, u8)> {
        let (addr, bits) = match text.split_once('/') {
            Some((a, b)) => (a, Some(b)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
            Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max)?,
            None => max,
        };
        Some((addr, bits))
    }

    /// Whether the peer of an accepted connection may stay.
    pub fn admits(&self, fd: &impl AsFd, tcp: bool) -> bool {
        if tcp {
            if self.tcp.is_empty() {
                return true;
            }
            let sock = socket2::SockRef::from(fd);
            let Some(peer) = sock.peer_addr().ok().and_then(|a| a.as_socket()) else {
                return false;
            };
            self.admits_ip(peer.ip())
        } else {
            if self.pids.is_empty() && self.uids.is_empty() && self.gids.is_empty() {
                return true;
            }
            match peer_cred(fd) {
                Some(c) => {
                    self.pids.contains(&c.pid)
                        || self.uids.contains(&c.uid)
                        || self.gids.contains(&c.gid)
                }
                None => false,
            }
        }
    }

    /// Whether `ip` is in one of the tcp networks (an IPv4-mapped IPv6 peer counts as IPv4).
    pub fn admits_ip(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        self.tcp
            .iter()
            .any(|(net, bits)| in_network(ip, *net, *bits))
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    let prefix = |a: &[u8], b: &[u8]| {
        let (full, rest) = ((bits / 8) as usize, bits % 8);
        a[..full] == b[..full] && (rest == 0 || (a[full] ^ b[full]) & (0xffu8 << (8 - rest)) == 0)
    };
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(b)) => prefix(&a.octets(), &b.octets()),
        (IpAddr::V6(a), IpAddr::V6(b)) => prefix(&a.octets(), &b.octets()),
        _ => false,
    }
}

/// The credentials of a unix-socket peer (SO_PEERCRED).
pub(crate) fn peer_cred(fd: &impl AsFd) -> Option<libc::ucred> {
    let mut cred = libc::ucred {
        pid: 0,
        uid: 0,
        gid: 0,
    };
    let mut len = std::mem::size_of::<libc::ucred>() as libc::socklen_t;
    // SAFETY: `cred` and `len` are live locals of the size given; the fd is borrowed live.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_fd().as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_PEERCRED,
            (&mut cred as *mut libc::ucred).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some(cred)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn networks_and_masks() {
        let f = AcceptFilters {
            tcp: vec![
                AcceptFilters::parse_tcp("10.0.0.0/8").unwrap(),
                AcceptFilters::parse_tcp("192.168.1.7").unwrap(),
                AcceptFilters::parse_tcp("fe80::/10").unwrap(),
                AcceptFilters::parse_tcp("172.16.0.0/13").unwrap(),
            ],
            ..Default::default()
        };
        for (ip, ok) in [
            ("10.1.2.3", true),
            ("11.0.0.1", false),
            ("192.168.1.7", true),
            ("192.168.1.8", false),
            ("fe80::1", true),
            ("fec0::1", false),
            ("::ffff:10.9.9.9", true),
            ("172.23.255.255", true),
            ("172.24.0.0", false),
        ] {
            assert_eq!(f.admits_ip(ip.parse().unwrap()), ok, "{ip}");
        }
        assert_eq!(AcceptFilters::parse_tcp("10.0.0.0/33"), None);
        assert_eq!(AcceptFilters::parse_tcp("not an address"), None);
        assert_eq!(
            AcceptFilters::parse_tcp("0.0.0.0/0"),
            Some(("0.0.0.0".parse().unwrap(), 0))
        );
    }

    #[test]
    fn own_credentials_over_a_socketpair() {
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        // SAFETY: getuid/getgid cannot fail.
        let (uid, gid) = unsafe { (libc::getuid(), libc::getgid()) };
        let pid = std::process::id() as i32;
        let by = |f: AcceptFilters| f.admits(&a, false);
        assert!(by(AcceptFilters::default()), "no filter: everyone");
        assert!(by(AcceptFilters {
            uids: vec![uid],
            ..Default::default()
        }));
        assert!(by(AcceptFilters {
            gids: vec![gid],
            ..Default::default()
        }));
        assert!(by(AcceptFilters {
            pids: vec![pid],
            ..Default::default()
        }));
        assert!(!by(AcceptFilters {
            uids: vec![uid.wrapping_add(1)],
            pids: vec![pid.wrapping_add(1)],
            ..Default::default()
        }));
    }
}
