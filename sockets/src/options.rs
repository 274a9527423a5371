//! Socket options: one table, and the typed store behind it.
//!
//! [`OPTIONS`] lists every option zeroring knows: its number (zmq.h), name, value type,
//! default, access (read/write) and the socket types that accept it. The raw entry points
//! ([`crate::Socket::set_option`] / [`crate::Socket::get_option`], the future C ABI's
//! `zmq_setsockopt`/`zmq_getsockopt`) and the typed setters/getters on [`crate::Socket`] all go
//! through [`Options::set`] / [`Options::get`], which consult the table: an unknown number, an
//! option the socket type does not accept, a write to a read-only option, a value of the wrong
//! size or out of range → [`Error::EINVAL`].
//!
//! Integers travel as native-endian bytes, as `zmq_setsockopt` takes them: `int` options are 4
//! bytes (8 accepted too, for bindings that pass every integer as 64 bits), `int64`/`uint64`
//! options 8; booleans are `int` 0 or 1.
//!
//! The table holds every option of libzmq 4.3's zmq_setsockopt/zmq_getsockopt pages except
//! GSSAPI and VMCI (not built: EINVAL, as such a libzmq), plus 4.3.5's BUSY_POLL, HICCUP_MSG,
//! XSUB_VERBOSE_UNSUBSCRIBE and TOPICS_COUNT; docs/sockets.md says which act and which are
//! only stored.

use bytes::Bytes;
use zeroize::{Zeroize, Zeroizing};
use zeroring_transports::socket_type::SocketType;
use zeroring_transports::z85;
use zeroring_transports::zmtp::mechanism::curve::{
    CurveSecretKey, KEY_LEN as CURVE_KEY_LEN, KEY_LEN_Z85 as CURVE_KEY_LEN_Z85,
};

use crate::error::{Error, Result};
use zeroring_transports::driver::AcceptFilters;

mod table;
pub use table::*;

/// A decoded option value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `int` (also booleans).
    Int(i32),
    /// `int64_t`.
    Int64(i64),
    /// `uint64_t`.
    Uint64(u64),
    /// Bytes or a string.
    Bytes(Bytes),
}

impl Value {
    /// Decodes `raw` as the option's C type; wrong sizes → EINVAL. An `int` option also
    /// takes 8 bytes (bindings that pass every integer as 64 bits), if the value fits.
    pub fn decode(kind: Kind, raw: &[u8]) -> Result<Value> {
        Ok(match kind {
            Kind::Int | Kind::Bool if raw.len() == 8 => {
                let wide = i64::from_ne_bytes(raw.try_into().map_err(|_| Error::EINVAL)?);
                Value::Int(i32::try_from(wide).map_err(|_| Error::EINVAL)?)
            }
            Kind::Int | Kind::Bool => Value::Int(i32::from_ne_bytes(
                raw.try_into().map_err(|_| Error::EINVAL)?,
            )),
            Kind::Int64 => Value::Int64(i64::from_ne_bytes(
                raw.try_into().map_err(|_| Error::EINVAL)?,
            )),
            Kind::Uint64 => Value::Uint64(u64::from_ne_bytes(
                raw.try_into().map_err(|_| Error::EINVAL)?,
            )),
            Kind::Bytes | Kind::Str => Value::Bytes(Bytes::copy_from_slice(raw)),
        })
    }

    /// Encodes as the C type (strings NUL-terminated, as libzmq returns them).
    pub fn encode(&self, kind: Kind) -> Vec<u8> {
        match self {
            Value::Int(v) => v.to_ne_bytes().to_vec(),
            Value::Int64(v) => v.to_ne_bytes().to_vec(),
            Value::Uint64(v) => v.to_ne_bytes().to_vec(),
            Value::Bytes(b) => {
                let mut v = b.to_vec();
                if kind == Kind::Str {
                    v.push(0);
                }
                v
            }
        }
    }

    fn int(&self) -> i32 {
        match self {
            Value::Int(v) => *v,
            _ => 0,
        }
    }
}

/// The default LINGER of zeroring sockets, in milliseconds: one second.
///
/// libzmq defaults to −1 (wait forever for pending messages at close / `zmq_ctx_term`), the
/// best-known cause of programs that hang on exit when a peer went away. Zero (czmq's choice)
/// silently drops messages a program just sent before closing. One second delivers what a live
/// peer can take and bounds the wait when the peer is gone.
pub const DEFAULT_LINGER_MS: i32 = 1000;

/// The default LINGER of a socket of type `t`: [`DEFAULT_LINGER_MS`], except SUB and XSUB,
/// whose only output is subscriptions: 0, as libzmq's XSUB constructor sets it ("we don't want
/// to wait till pending subscription commands are sent to the wire"), so that closing a
/// subscriber whose publisher never came never holds up `term`.
pub fn default_linger(t: SocketType) -> i32 {
    match t {
        SocketType::Sub | SocketType::XSub => 0,
        _ => DEFAULT_LINGER_MS,
    }
}

/// The option values of one socket. Hot flags are plain fields; the options only the wire
/// transports read live in `extra`, keyed by number.
#[derive(Debug, Clone)]
pub struct Options {
    /// The socket's type (ZMQ_TYPE).
    pub socket_type: SocketType,
    /// ZMQ_SNDHWM (0 = unlimited).
    pub sndhwm: i32,
    /// ZMQ_RCVHWM (0 = unlimited).
    pub rcvhwm: i32,
    /// ZMQ_LINGER in ms (−1 = forever).
    pub linger: i32,
    /// ZMQ_SNDTIMEO in ms (−1 = forever).
    pub sndtimeo: i32,
    /// ZMQ_RCVTIMEO in ms (−1 = forever).
    pub rcvtimeo: i32,
    /// ZMQ_ROUTING_ID (empty = none).
    pub routing_id: Bytes,
    /// ZMQ_CONNECT_ROUTING_ID, consumed by the next connect.
    pub connect_routing_id: Option<Bytes>,
    /// ZMQ_ROUTER_MANDATORY.
    pub router_mandatory: bool,
    /// ZMQ_ROUTER_HANDOVER.
    pub router_handover: bool,
    /// ZMQ_PROBE_ROUTER.
    pub probe_router: bool,
    /// ZMQ_REQ_CORRELATE.
    pub req_correlate: bool,
    /// ZMQ_REQ_RELAXED.
    pub req_relaxed: bool,
    /// ZMQ_XPUB_VERBOSE: pass duplicate subscriptions.
    pub xpub_verbose: bool,
    /// ZMQ_XPUB_VERBOSER: also pass every unsubscription.
    pub xpub_verboser: bool,
    /// ZMQ_XPUB_MANUAL.
    pub xpub_manual: bool,
    /// ZMQ_XPUB_NODROP.
    pub xpub_nodrop: bool,
    /// ZMQ_XPUB_MANUAL_LAST_VALUE: manual, and a message goes only to the pipe that sent the
    /// last subscription the user received.
    pub xpub_manual_last_value: bool,
    /// ZMQ_ONLY_FIRST_SUBSCRIBE: only a message's first part may be a (un)subscription.
    pub only_first_subscribe: bool,
    /// ZMQ_XSUB_VERBOSE_UNSUBSCRIBE: forward every unsubscription upstream.
    pub xsub_verbose_unsubscribe: bool,
    /// ZMQ_XPUB_WELCOME_MSG.
    pub xpub_welcome_msg: Option<Bytes>,
    /// ZMQ_INVERT_MATCHING.
    pub invert_matching: bool,
    /// ZMQ_CONFLATE.
    pub conflate: bool,
    /// ZMQ_IMMEDIATE.
    pub immediate: bool,
    /// ZMQ_MAXMSGSIZE (−1 = unlimited).
    pub maxmsgsize: i64,
    /// ZMQ_AFFINITY.
    pub affinity: u64,
    /// ZMQ_METADATA entries, `(name, value)` with names starting with `X-`.
    pub metadata: Vec<(String, String)>,
    /// ZMQ_LAST_ENDPOINT.
    pub last_endpoint: String,
    /// The security mechanism the last security option chose (ZMQ_MECHANISM: 0 NULL,
    /// 1 PLAIN, 2 CURVE), as libzmq tracks it: PLAIN_SERVER, PLAIN_USERNAME/PASSWORD,
    /// CURVE_SERVER and the CURVE keys each switch it.
    pub mechanism: i32,
    /// Whether this socket is the server side of its mechanism (PLAIN_SERVER / CURVE_SERVER).
    pub as_server: bool,
    /// ZMQ_CURVE_PUBLICKEY, ZMQ_CURVE_SECRETKEY (wiped on drop), ZMQ_CURVE_SERVERKEY.
    pub curve_public: [u8; CURVE_KEY_LEN],
    pub curve_secret: CurveSecretKey,
    pub curve_server: [u8; CURVE_KEY_LEN],
    /// ZMQ_ROUTER_NOTIFY: bit 1 announces a peer's arrival, bit 2 its departure, each as
    /// `[routing id, ""]`.
    pub router_notify: i32,
    /// ZMQ_STREAM_NOTIFY (default on): STREAM announces connects and disconnects.
    pub stream_notify: bool,
    /// ZMQ_HELLO_MSG: sent to every new peer (DEALER, ROUTER) before anything else.
    pub hello_msg: Option<Bytes>,
    /// ZMQ_DISCONNECT_MSG: a ROUTER receives it from a peer whose connection is lost.
    pub disconnect_msg: Option<Bytes>,
    /// ZMQ_TCP_ACCEPT_FILTER and ZMQ_IPC_FILTER_PID/UID/GID: each set adds one, an empty
    /// value clears the list (the IPC ones take an `int`, raw).
    pub accept_filters: zeroring_transports::driver::AcceptFilters,
    /// Every other stored option (transport options), by number.
    pub extra: std::collections::BTreeMap<i32, Value>,
}

/// Whether `int` is a value option `num` takes: libzmq 4.3.5's checks (options.cpp). Options
/// not listed take any `int` from -1 up (booleans are checked against 0 and 1 before).
fn in_range(num: i32, int: i32) -> bool {
    match num {
        num::RATE | num::MULTICAST_HOPS | num::MULTICAST_MAXTPDU => int > 0,
        num::SNDHWM
        | num::RCVHWM
        | num::RECOVERY_IVL
        | num::TOS
        | num::CONNECT_TIMEOUT
        | num::TCP_MAXRT
        | num::RECONNECT_IVL_MAX
        | num::BACKLOG
        | num::HANDSHAKE_IVL
        | num::HEARTBEAT_IVL
        | num::HEARTBEAT_TIMEOUT => int >= 0,
        num::TCP_KEEPALIVE => (-1..=1).contains(&int),
        // A bit set (libzmq takes any int).
        num::RECONNECT_STOP => true,
        _ => int >= -1,
    }
}

/// The lengths a string option takes, in bytes (libzmq's limits: ZAP_DOMAIN cannot be emptied,
/// its "relaxed" string; BINDTODEVICE is an interface name, IFNAMSIZ with its NUL).
fn string_lengths(num: i32) -> Option<std::ops::RangeInclusive<usize>> {
    match num {
        num::ZAP_DOMAIN => Some(1..=255),
        num::PLAIN_USERNAME
        | num::PLAIN_PASSWORD
        | num::SOCKS_USERNAME
        | num::SOCKS_PASSWORD
        | num::TCP_ACCEPT_FILTER => Some(0..=255),
        num::BINDTODEVICE => Some(0..=16),
        _ => None,
    }
}

impl Options {
    /// Defaults for a socket of type `t`.
    pub fn new(t: SocketType) -> Self {
        Options {
            socket_type: t,
            sndhwm: 1000,
            rcvhwm: 1000,
            linger: default_linger(t),
            sndtimeo: -1,
            rcvtimeo: -1,
            routing_id: Bytes::new(),
            connect_routing_id: None,
            router_mandatory: false,
            router_handover: false,
            probe_router: false,
            req_correlate: false,
            req_relaxed: false,
            xpub_verbose: false,
            xpub_verboser: false,
            xpub_manual: false,
            xpub_nodrop: false,
            xpub_manual_last_value: false,
            only_first_subscribe: false,
            xsub_verbose_unsubscribe: false,
            xpub_welcome_msg: None,
            invert_matching: false,
            conflate: false,
            immediate: false,
            maxmsgsize: -1,
            affinity: 0,
            metadata: Vec::new(),
            last_endpoint: String::new(),
            mechanism: MECHANISM_NULL,
            as_server: false,
            curve_public: [0; CURVE_KEY_LEN],
            curve_secret: CurveSecretKey::from_bytes([0; CURVE_KEY_LEN]),
            curve_server: [0; CURVE_KEY_LEN],
            router_notify: 0,
            stream_notify: true,
            hello_msg: None,
            disconnect_msg: None,
            accept_filters: Default::default(),
            extra: Default::default(),
        }
    }

    /// Checks an option number against the table for this socket type and the wanted access.
    pub fn check(&self, num: i32, write: bool) -> Result<&'static OptionSpec> {
        let s = spec(num).ok_or(Error::EINVAL)?;
        if !s.types.contains(self.socket_type) {
            return Err(Error::EINVAL);
        }
        match (s.access, write) {
            (Access::ReadOnly, true) | (Access::WriteOnly, false) => Err(Error::EINVAL),
            _ => Ok(s),
        }
    }

    /// Stores an option that is pure state (the caller handles the action options SUBSCRIBE,
    /// UNSUBSCRIBE and XPUB_WELCOME_MSG' side effects). Validates ranges.
    pub fn set(&mut self, num: i32, value: Value) -> Result<()> {
        let s = self.check(num, true)?;
        let int = value.int();
        if s.kind == Kind::Bool && !(0..=1).contains(&int) {
            return Err(Error::EINVAL);
        }
        let b = int == 1;
        if !in_range(num, int) {
            return Err(Error::EINVAL);
        }
        if let (Some(lengths), Value::Bytes(v)) = (string_lengths(num), &value) {
            if !lengths.contains(&v.len()) {
                return Err(Error::EINVAL);
            }
        }
        match num {
            num::SNDHWM => self.sndhwm = int,
            num::RCVHWM => self.rcvhwm = int,
            num::LINGER => self.linger = int,
            num::SNDTIMEO => self.sndtimeo = int,
            num::RCVTIMEO => self.rcvtimeo = int,
            num::ROUTING_ID | num::CONNECT_ROUTING_ID => {
                let Value::Bytes(id) = value else {
                    return Err(Error::EINVAL);
                };
                if id.is_empty() || id.len() > 255 {
                    return Err(Error::EINVAL);
                }
                if num == num::ROUTING_ID {
                    self.routing_id = id;
                } else {
                    self.connect_routing_id = Some(id);
                }
            }
            num::ROUTER_MANDATORY => self.router_mandatory = b,
            num::ROUTER_HANDOVER => self.router_handover = b,
            num::PROBE_ROUTER => self.probe_router = b,
            num::REQ_CORRELATE => self.req_correlate = b,
            num::REQ_RELAXED => self.req_relaxed = b,
            // As libzmq: VERBOSE sets verbose subscriptions and clears verbose
            // unsubscriptions; VERBOSER sets (or clears) both.
            num::XPUB_VERBOSE => {
                self.xpub_verbose = b;
                self.xpub_verboser = false;
            }
            num::XPUB_VERBOSER => {
                self.xpub_verbose = b;
                self.xpub_verboser = b;
            }
            num::XPUB_MANUAL => self.xpub_manual = b,
            num::XPUB_MANUAL_LAST_VALUE => {
                self.xpub_manual = b;
                self.xpub_manual_last_value = b;
            }
            num::ONLY_FIRST_SUBSCRIBE => self.only_first_subscribe = b,
            num::XSUB_VERBOSE_UNSUBSCRIBE => self.xsub_verbose_unsubscribe = b,
            num::XPUB_NODROP => self.xpub_nodrop = b,
            num::XPUB_WELCOME_MSG => {
                let Value::Bytes(m) = value else {
                    return Err(Error::EINVAL);
                };
                self.xpub_welcome_msg = if m.is_empty() { None } else { Some(m) };
            }
            num::INVERT_MATCHING => self.invert_matching = b,
            num::CONFLATE => self.conflate = b,
            num::IMMEDIATE => self.immediate = b,
            // Any value, as libzmq: a negative one is no limit.
            num::MAXMSGSIZE => match value {
                Value::Int64(v) => self.maxmsgsize = v,
                _ => return Err(Error::EINVAL),
            },
            num::AFFINITY => match value {
                Value::Uint64(v) => self.affinity = v,
                _ => return Err(Error::EINVAL),
            },
            num::METADATA => {
                let Value::Bytes(raw) = value else {
                    return Err(Error::EINVAL);
                };
                let text = std::str::from_utf8(&raw).map_err(|_| Error::EINVAL)?;
                let (k, v) = text.split_once(':').ok_or(Error::EINVAL)?;
                if k.len() < 3 || !k.as_bytes()[..2].eq_ignore_ascii_case(b"x-") || v.is_empty() {
                    return Err(Error::EINVAL);
                }
                self.metadata.retain(|(n, _)| !n.eq_ignore_ascii_case(k));
                self.metadata.push((k.to_string(), v.to_string()));
            }
            num::SUBSCRIBE | num::UNSUBSCRIBE => {}
            // At least one handshake at a time.
            num::ZR_MAX_HANDSHAKES if int < 1 => return Err(Error::EINVAL),
            num::ROUTER_NOTIFY if !(0..=3).contains(&int) => return Err(Error::EINVAL),
            num::ROUTER_NOTIFY => self.router_notify = int,
            num::STREAM_NOTIFY => self.stream_notify = b,
            num::HELLO_MSG | num::DISCONNECT_MSG => {
                let Value::Bytes(m) = value else {
                    return Err(Error::EINVAL);
                };
                let m = (!m.is_empty()).then_some(m);
                if num == num::HELLO_MSG {
                    self.hello_msg = m;
                } else {
                    self.disconnect_msg = m;
                }
            }
            num::TCP_ACCEPT_FILTER => {
                let Value::Bytes(raw) = value else {
                    return Err(Error::EINVAL);
                };
                if raw.is_empty() {
                    self.accept_filters.tcp.clear();
                } else {
                    let text = std::str::from_utf8(&raw).map_err(|_| Error::EINVAL)?;
                    let f = AcceptFilters::parse_tcp(text.trim_end_matches('\0'))
                        .ok_or(Error::EINVAL)?;
                    self.accept_filters.tcp.push(f);
                }
            }
            num::IPC_FILTER_PID | num::IPC_FILTER_UID | num::IPC_FILTER_GID => {
                let Value::Bytes(raw) = value else {
                    return Err(Error::EINVAL);
                };
                let f = &mut self.accept_filters;
                if raw.is_empty() {
                    match num {
                        num::IPC_FILTER_PID => f.pids.clear(),
                        num::IPC_FILTER_UID => f.uids.clear(),
                        _ => f.gids.clear(),
                    }
                } else {
                    let Value::Int(id) = Value::decode(Kind::Int, &raw)? else {
                        return Err(Error::EINVAL);
                    };
                    match num {
                        num::IPC_FILTER_PID => f.pids.push(id),
                        num::IPC_FILTER_UID => f.uids.push(id as u32),
                        _ => f.gids.push(id as u32),
                    }
                }
            }
            // libzmq 4.3: raw mode, with a STREAM's connect and disconnect notices (its raw
            // engine notifies by default, and a ROUTER cannot turn that off: STREAM_NOTIFY is
            // EINVAL there). libzmq 4.2 and older had no notices.
            num::ROUTER_RAW => {
                self.extra.insert(num, value);
            }
            // libzmq keeps one flag: IPV4ONLY is IPV6's negation.
            num::IPV4ONLY => {
                self.extra.insert(num::IPV6, Value::Int(!b as i32));
            }
            num::PLAIN_SERVER => {
                self.as_server = b;
                self.mechanism = if b { MECHANISM_PLAIN } else { MECHANISM_NULL };
                self.extra.insert(num, value);
            }
            num::PLAIN_USERNAME | num::PLAIN_PASSWORD => {
                let Value::Bytes(v) = &value else {
                    return Err(Error::EINVAL);
                };
                // (The length was checked above.) libzmq: an empty value switches back to NULL.
                if v.is_empty() {
                    self.mechanism = MECHANISM_NULL;
                } else {
                    self.as_server = false;
                    self.mechanism = MECHANISM_PLAIN;
                }
                self.extra.insert(num, value);
            }
            num::CURVE_SERVER => {
                self.as_server = b;
                self.mechanism = if b { MECHANISM_CURVE } else { MECHANISM_NULL };
            }
            num::CURVE_PUBLICKEY | num::CURVE_SECRETKEY | num::CURVE_SERVERKEY => {
                let Value::Bytes(v) = &value else {
                    return Err(Error::EINVAL);
                };
                let key = Zeroizing::new(decode_curve_key(v)?);
                // Wipe the caller's copy of a secret key when this is the last reference.
                if num == num::CURVE_SECRETKEY {
                    if let Value::Bytes(b) = value {
                        if let Ok(mut m) = b.try_into_mut() {
                            m[..].zeroize();
                        }
                    }
                }
                match num {
                    num::CURVE_PUBLICKEY => self.curve_public = *key,
                    num::CURVE_SECRETKEY => self.curve_secret = CurveSecretKey::from_bytes(*key),
                    _ => {
                        self.curve_server = *key;
                        self.as_server = false;
                    }
                }
                self.mechanism = MECHANISM_CURVE;
            }
            _ => {
                self.extra.insert(num, value);
            }
        }
        Ok(())
    }

    /// Reads a stored option (the socket answers RCVMORE, EVENTS and TOPICS_COUNT itself).
    pub fn get(&self, num: i32) -> Result<Value> {
        let s = self.check(num, false)?;
        let v = |b: bool| Value::Int(b as i32);
        Ok(match num {
            num::TYPE => Value::Int(self.socket_type.raw()),
            num::SNDHWM => Value::Int(self.sndhwm),
            num::RCVHWM => Value::Int(self.rcvhwm),
            num::LINGER => Value::Int(self.linger),
            num::SNDTIMEO => Value::Int(self.sndtimeo),
            num::RCVTIMEO => Value::Int(self.rcvtimeo),
            num::ROUTING_ID => Value::Bytes(self.routing_id.clone()),
            num::ROUTER_MANDATORY => v(self.router_mandatory),
            num::ROUTER_HANDOVER => v(self.router_handover),
            num::PROBE_ROUTER => v(self.probe_router),
            num::REQ_CORRELATE => v(self.req_correlate),
            num::REQ_RELAXED => v(self.req_relaxed),
            num::XPUB_VERBOSE => v(self.xpub_verbose),
            num::XPUB_VERBOSER => v(self.xpub_verboser),
            num::XPUB_MANUAL => v(self.xpub_manual),
            num::XPUB_NODROP => v(self.xpub_nodrop),
            num::XPUB_MANUAL_LAST_VALUE => v(self.xpub_manual_last_value),
            num::ONLY_FIRST_SUBSCRIBE => v(self.only_first_subscribe),
            num::XSUB_VERBOSE_UNSUBSCRIBE => v(self.xsub_verbose_unsubscribe),
            num::INVERT_MATCHING => v(self.invert_matching),
            num::CONFLATE => v(self.conflate),
            num::IMMEDIATE => v(self.immediate),
            num::MAXMSGSIZE => Value::Int64(self.maxmsgsize),
            num::AFFINITY => Value::Uint64(self.affinity),
            num::LAST_ENDPOINT => Value::Bytes(Bytes::from(self.last_endpoint.clone())),
            num::THREAD_SAFE => Value::Int(0),
            num::ROUTER_NOTIFY => Value::Int(self.router_notify),
            num::IPV4ONLY => v(!matches!(self.extra.get(&num::IPV6), Some(Value::Int(1)))),
            num::MECHANISM => Value::Int(self.mechanism),
            num::PLAIN_SERVER => v(self.as_server && self.mechanism == MECHANISM_PLAIN),
            num::CURVE_SERVER => v(self.as_server && self.mechanism == MECHANISM_CURVE),
            num::CURVE_PUBLICKEY => Value::Bytes(Bytes::copy_from_slice(&self.curve_public)),
            num::CURVE_SECRETKEY => {
                Value::Bytes(Bytes::copy_from_slice(self.curve_secret.as_bytes()))
            }
            num::CURVE_SERVERKEY => Value::Bytes(Bytes::copy_from_slice(&self.curve_server)),
            num::METADATA => Value::Bytes(Bytes::from(
                self.metadata
                    .iter()
                    .map(|(k, v)| format!("{k}:{v}"))
                    .collect::<Vec<_>>()
                    .join(","),
            )),
            _ => match self.extra.get(&num) {
                Some(v) => v.clone(),
                None => default_of(s),
            },
        })
    }
}

/// ZMQ_MECHANISM values.
pub const MECHANISM_NULL: i32 = 0;
/// ZMQ_PLAIN.
pub const MECHANISM_PLAIN: i32 = 1;
/// ZMQ_CURVE.
pub const MECHANISM_CURVE: i32 = 2;

/// A CURVE key as `zmq_setsockopt` takes it: 32 raw bytes, 40 Z85 characters, or 40 Z85
/// characters and a NUL (41 bytes). Anything else → EINVAL.
pub fn decode_curve_key(v: &[u8]) -> Result<[u8; CURVE_KEY_LEN]> {
    let text = match v.len() {
        CURVE_KEY_LEN => return v.try_into().map_err(|_| Error::EINVAL),
        CURVE_KEY_LEN_Z85 => v,
        41 if v.last() == Some(&0) => v.get(..CURVE_KEY_LEN_Z85).unwrap_or_default(),
        _ => return Err(Error::EINVAL),
    };
    let raw = Zeroizing::new(z85::decode(text).map_err(|_| Error::EINVAL)?);
    raw.as_slice().try_into().map_err(|_| Error::EINVAL)
}

fn default_of(s: &OptionSpec) -> Value {
    match s.kind {
        Kind::Int | Kind::Bool => Value::Int(s.default.parse().unwrap_or(0)),
        Kind::Int64 => Value::Int64(s.default.parse().unwrap_or(0)),
        Kind::Uint64 => Value::Uint64(s.default.parse().unwrap_or(0)),
        Kind::Bytes | Kind::Str => Value::Bytes(Bytes::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_numbers_are_unique() {
        for (i, a) in OPTIONS.iter().enumerate() {
            for b in &OPTIONS[i + 1..] {
                assert_ne!(a.num, b.num, "{} and {}", a.name, b.name);
            }
        }
    }

    #[test]
    fn every_readable_option_has_a_value() {
        for t in [SocketType::Pub, SocketType::Router, SocketType::Req] {
            let o = Options::new(t);
            for s in OPTIONS {
                let r = o.get(s.num);
                let ok = s.access != Access::WriteOnly && s.types.contains(t);
                assert_eq!(r.is_ok(), ok, "{} on {t}", s.name);
            }
        }
    }

    #[test]
    fn ranges_and_sizes() {
        let mut o = Options::new(SocketType::Router);
        assert_eq!(Value::decode(Kind::Int, &[1, 2]), Err(Error::EINVAL));
        assert_eq!(o.set(num::SNDHWM, Value::Int(-1)), Err(Error::EINVAL));
        assert_eq!(
            o.set(num::ROUTER_MANDATORY, Value::Int(2)),
            Err(Error::EINVAL)
        );
        assert_eq!(o.set(num::TYPE, Value::Int(2)), Err(Error::EINVAL));
        assert_eq!(o.set(num::REQ_RELAXED, Value::Int(1)), Err(Error::EINVAL));
        assert_eq!(o.set(12345, Value::Int(1)), Err(Error::EINVAL));
        assert_eq!(
            o.set(num::ROUTING_ID, Value::Bytes(Bytes::new())),
            Err(Error::EINVAL)
        );
        o.set(num::RECONNECT_IVL, Value::Int(250)).unwrap();
        assert_eq!(o.get(num::RECONNECT_IVL), Ok(Value::Int(250)));
        assert_eq!(o.get(num::BACKLOG), Ok(Value::Int(100)));
        assert_eq!(o.get(num::LINGER), Ok(Value::Int(DEFAULT_LINGER_MS)));
        for t in [SocketType::Sub, SocketType::XSub] {
            assert_eq!(Options::new(t).get(num::LINGER), Ok(Value::Int(0)));
        }
    }
}
