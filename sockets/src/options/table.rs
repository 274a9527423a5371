//! The option table: every option's zmq.h number, name, C type, default, access and the
//! socket types that take it. Pure data; the store and its checks are in `options.rs`.
//!
//! Must never: hold state, or list an option twice (a unit test checks).

use zeroring_transports::socket_type::SocketType;

/// Option numbers from zmq.h.
#[allow(missing_docs)]
pub mod num {
    pub const AFFINITY: i32 = 4;
    pub const ROUTING_ID: i32 = 5;
    pub const SUBSCRIBE: i32 = 6;
    pub const UNSUBSCRIBE: i32 = 7;
    pub const RATE: i32 = 8;
    pub const RECOVERY_IVL: i32 = 9;
    pub const SNDBUF: i32 = 11;
    pub const RCVBUF: i32 = 12;
    pub const RCVMORE: i32 = 13;
    pub const FD: i32 = 14;
    pub const EVENTS: i32 = 15;
    pub const TYPE: i32 = 16;
    pub const LINGER: i32 = 17;
    pub const RECONNECT_IVL: i32 = 18;
    pub const BACKLOG: i32 = 19;
    pub const RECONNECT_IVL_MAX: i32 = 21;
    pub const MAXMSGSIZE: i32 = 22;
    pub const SNDHWM: i32 = 23;
    pub const RCVHWM: i32 = 24;
    pub const MULTICAST_HOPS: i32 = 25;
    pub const RCVTIMEO: i32 = 27;
    pub const SNDTIMEO: i32 = 28;
    pub const LAST_ENDPOINT: i32 = 32;
    pub const ROUTER_MANDATORY: i32 = 33;
    pub const TCP_KEEPALIVE: i32 = 34;
    pub const TCP_KEEPALIVE_CNT: i32 = 35;
    pub const TCP_KEEPALIVE_IDLE: i32 = 36;
    pub const TCP_KEEPALIVE_INTVL: i32 = 37;
    pub const IMMEDIATE: i32 = 39;
    pub const XPUB_VERBOSE: i32 = 40;
    pub const IPV6: i32 = 42;
    pub const MECHANISM: i32 = 43;
    pub const PROBE_ROUTER: i32 = 51;
    pub const REQ_CORRELATE: i32 = 52;
    pub const REQ_RELAXED: i32 = 53;
    pub const CONFLATE: i32 = 54;
    pub const ROUTER_HANDOVER: i32 = 56;
    pub const TOS: i32 = 57;
    pub const CONNECT_ROUTING_ID: i32 = 61;
    pub const HANDSHAKE_IVL: i32 = 66;
    pub const XPUB_NODROP: i32 = 69;
    pub const XPUB_MANUAL: i32 = 71;
    pub const XPUB_WELCOME_MSG: i32 = 72;
    pub const INVERT_MATCHING: i32 = 74;
    pub const HEARTBEAT_IVL: i32 = 75;
    pub const HEARTBEAT_TTL: i32 = 76;
    pub const HEARTBEAT_TIMEOUT: i32 = 77;
    pub const XPUB_VERBOSER: i32 = 78;
    pub const CONNECT_TIMEOUT: i32 = 79;
    pub const TCP_MAXRT: i32 = 80;
    pub const THREAD_SAFE: i32 = 81;
    pub const PLAIN_SERVER: i32 = 44;
    pub const PLAIN_USERNAME: i32 = 45;
    pub const PLAIN_PASSWORD: i32 = 46;
    pub const CURVE_SERVER: i32 = 47;
    pub const CURVE_PUBLICKEY: i32 = 48;
    pub const CURVE_SECRETKEY: i32 = 49;
    pub const CURVE_SERVERKEY: i32 = 50;
    pub const ZAP_DOMAIN: i32 = 55;
    pub const BINDTODEVICE: i32 = 92;
    pub const ZAP_ENFORCE_DOMAIN: i32 = 93;
    pub const METADATA: i32 = 95;
    pub const XPUB_MANUAL_LAST_VALUE: i32 = 98;
    pub const ONLY_FIRST_SUBSCRIBE: i32 = 108;
    pub const XSUB_VERBOSE_UNSUBSCRIBE: i32 = 115;
    pub const TOPICS_COUNT: i32 = 116;
    pub const IPV4ONLY: i32 = 31;
    pub const TCP_ACCEPT_FILTER: i32 = 38;
    pub const ROUTER_RAW: i32 = 41;
    pub const IPC_FILTER_PID: i32 = 58;
    pub const IPC_FILTER_UID: i32 = 59;
    pub const IPC_FILTER_GID: i32 = 60;
    pub const SOCKS_PROXY: i32 = 68;
    pub const STREAM_NOTIFY: i32 = 73;
    pub const MULTICAST_MAXTPDU: i32 = 84;
    pub const USE_FD: i32 = 89;
    pub const LOOPBACK_FASTPATH: i32 = 94;
    pub const MULTICAST_LOOP: i32 = 96;
    pub const ROUTER_NOTIFY: i32 = 97;
    pub const SOCKS_USERNAME: i32 = 99;
    pub const SOCKS_PASSWORD: i32 = 100;
    pub const IN_BATCH_SIZE: i32 = 101;
    pub const OUT_BATCH_SIZE: i32 = 102;
    pub const RECONNECT_STOP: i32 = 109;
    pub const HELLO_MSG: i32 = 110;
    pub const DISCONNECT_MSG: i32 = 111;
    pub const PRIORITY: i32 = 112;
    pub const BUSY_POLL: i32 = 113;
    pub const HICCUP_MSG: i32 = 114;
    /// The pre-4.0 names of ROUTING_ID and CONNECT_ROUTING_ID (same numbers).
    pub const IDENTITY: i32 = ROUTING_ID;
    pub const CONNECT_RID: i32 = CONNECT_ROUTING_ID;
    /// zeroring's own, outside libzmq's numbering: the most memory one connection's
    /// incomplete multipart message may hold (bytes, each part counted with 64 bytes of
    /// overhead); a peer that exceeds it is disconnected. Default 64 MiB.
    pub const ZR_MAX_INCOMPLETE_MSG: i32 = 10_001;
    /// zeroring's own: the most accepted connections one bound endpoint (listener) keeps in
    /// their ZMTP handshake at once; accepting one more evicts the oldest still in its
    /// handshake (reported as a handshake timeout: HANDSHAKE_FAILED_NO_DETAIL with ETIMEDOUT,
    /// then DISCONNECTED). At least 1; read at bind. Default 4096.
    pub const ZR_MAX_HANDSHAKES: i32 = 10_002;
}

/// The C type of an option's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `int`, 4 bytes.
    Int,
    /// `int` restricted to 0 and 1.
    Bool,
    /// `int64_t`, 8 bytes.
    Int64,
    /// `uint64_t`, 8 bytes.
    Uint64,
    /// Binary data (routing ids, topics).
    Bytes,
    /// A character string (endpoints, metadata); read back NUL-terminated.
    Str,
}

/// Whether an option may be set, read, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// `zmq_setsockopt` and `zmq_getsockopt`.
    ReadWrite,
    /// `zmq_getsockopt` only.
    ReadOnly,
    /// `zmq_setsockopt` only.
    WriteOnly,
}

/// A bit set of socket types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Types(pub u32);

impl Types {
    /// Every socket type.
    pub const ALL: Types = Types(u32::MAX);

    const fn of(list: &[SocketType]) -> Types {
        let mut bits = 0u32;
        let mut i = 0;
        while i < list.len() {
            bits |= 1 << (list[i] as u32);
            i += 1;
        }
        Types(bits)
    }

    /// Whether `t` is in the set.
    pub const fn contains(self, t: SocketType) -> bool {
        self.0 & (1 << (t as u32)) != 0
    }
}

/// One row of the option table.
#[derive(Debug, Clone, Copy)]
pub struct OptionSpec {
    /// zmq.h number.
    pub num: i32,
    /// zmq.h name without the `ZMQ_` prefix.
    pub name: &'static str,
    /// Value type.
    pub kind: Kind,
    /// Default, as documentation text.
    pub default: &'static str,
    /// Read / write access.
    pub access: Access,
    /// Socket types that accept the option.
    pub types: Types,
}

use SocketType as T;
// Which types take an option follows libzmq 4.3.5's setsockopt, type by type: XSUB takes no
// SUBSCRIBE (its subscriptions are messages); REP takes ROUTER's options, since libzmq's REP is
// a ROUTER (zeroring stores them there without effect: docs/sockets.md).
const SUBS: Types = Types::of(&[T::Sub, T::XPub]);
const PUBS: Types = Types::of(&[T::Pub, T::XPub]);
const ROUTER: Types = Types::of(&[T::Router, T::Rep]);
const REQ: Types = Types::of(&[T::Req]);
const PROBE: Types = Types::of(&[T::Router, T::Dealer, T::Req, T::Rep]);
const ROUTER_ONLY: Types = Types::of(&[T::Router]);
const CONNECT_RID: Types = Types::of(&[T::Router, T::Stream, T::Rep]);
const PUBSUB: Types = Types::of(&[T::Pub, T::XPub, T::Sub, T::XSub]);
const XPUB_XSUB: Types = Types::of(&[T::Pub, T::XPub, T::XSub]);
const SUB_SIDE: Types = Types::of(&[T::Sub, T::XSub]);
const STREAM: Types = Types::of(&[T::Stream]);

const fn row(
    num: i32,
    name: &'static str,
    kind: Kind,
    default: &'static str,
    access: Access,
    types: Types,
) -> OptionSpec {
    OptionSpec {
        num,
        name,
        kind,
        default,
        access,
        types,
    }
}

use Access::{ReadOnly as RO, ReadWrite as RW, WriteOnly as WO};
use Kind::{Bool, Bytes as B, Int, Int64, Str, Uint64};

/// Every socket option zeroring accepts. Options that only matter to the tcp/ipc transports
/// (reconnect, heartbeats, keepalive, …) are stored now and used by the wire issue.
pub static OPTIONS: &[OptionSpec] = &[
    row(num::AFFINITY, "AFFINITY", Uint64, "0", RW, Types::ALL),
    row(num::ROUTING_ID, "ROUTING_ID", B, "empty", RW, Types::ALL),
    row(num::SUBSCRIBE, "SUBSCRIBE", B, "-", WO, SUBS),
    row(num::UNSUBSCRIBE, "UNSUBSCRIBE", B, "-", WO, SUBS),
    row(num::RATE, "RATE", Int, "100", RW, Types::ALL),
    row(
        num::RECOVERY_IVL,
        "RECOVERY_IVL",
        Int,
        "10000",
        RW,
        Types::ALL,
    ),
    row(num::SNDBUF, "SNDBUF", Int, "-1", RW, Types::ALL),
    row(num::RCVBUF, "RCVBUF", Int, "-1", RW, Types::ALL),
    row(num::RCVMORE, "RCVMORE", Int, "0", RO, Types::ALL),
    row(num::EVENTS, "EVENTS", Int, "-", RO, Types::ALL),
    row(num::FD, "FD", Int, "-", RO, Types::ALL),
    row(num::TYPE, "TYPE", Int, "-", RO, Types::ALL),
    row(
        num::LINGER,
        "LINGER",
        Int,
        "1000 (libzmq: -1)",
        RW,
        Types::ALL,
    ),
    row(
        num::RECONNECT_IVL,
        "RECONNECT_IVL",
        Int,
        "100",
        RW,
        Types::ALL,
    ),
    row(num::BACKLOG, "BACKLOG", Int, "100", RW, Types::ALL),
    row(
        num::RECONNECT_IVL_MAX,
        "RECONNECT_IVL_MAX",
        Int,
        "0",
        RW,
        Types::ALL,
    ),
    row(num::MAXMSGSIZE, "MAXMSGSIZE", Int64, "-1", RW, Types::ALL),
    row(num::SNDHWM, "SNDHWM", Int, "1000", RW, Types::ALL),
    row(num::RCVHWM, "RCVHWM", Int, "1000", RW, Types::ALL),
    row(
        num::MULTICAST_HOPS,
        "MULTICAST_HOPS",
        Int,
        "1",
        RW,
        Types::ALL,
    ),
    row(num::RCVTIMEO, "RCVTIMEO", Int, "-1", RW, Types::ALL),
    row(num::SNDTIMEO, "SNDTIMEO", Int, "-1", RW, Types::ALL),
    row(
        num::LAST_ENDPOINT,
        "LAST_ENDPOINT",
        Str,
        "empty",
        RO,
        Types::ALL,
    ),
    row(
        num::ROUTER_MANDATORY,
        "ROUTER_MANDATORY",
        Bool,
        "0",
        RW,
        ROUTER,
    ),
    row(
        num::TCP_KEEPALIVE,
        "TCP_KEEPALIVE",
        Int,
        "-1",
        RW,
        Types::ALL,
    ),
    row(
        num::TCP_KEEPALIVE_CNT,
        "TCP_KEEPALIVE_CNT",
        Int,
        "-1",
        RW,
        Types::ALL,
    ),
    row(
        num::TCP_KEEPALIVE_IDLE,
        "TCP_KEEPALIVE_IDLE",
        Int,
        "-1",
        RW,
        Types::ALL,
    ),
    row(
        num::TCP_KEEPALIVE_INTVL,
        "TCP_KEEPALIVE_INTVL",
        Int,
        "-1",
        RW,
        Types::ALL,
    ),
    row(num::IMMEDIATE, "IMMEDIATE", Bool, "0", RW, Types::ALL),
    row(num::XPUB_VERBOSE, "XPUB_VERBOSE", Bool, "0", RW, PUBS),
    row(num::IPV6, "IPV6", Bool, "0", RW, Types::ALL),
    row(num::MECHANISM, "MECHANISM", Int, "0 (NULL)", RO, Types::ALL),
    row(num::PROBE_ROUTER, "PROBE_ROUTER", Bool, "0", RW, PROBE),
    row(num::REQ_CORRELATE, "REQ_CORRELATE", Bool, "0", RW, REQ),
    row(num::REQ_RELAXED, "REQ_RELAXED", Bool, "0", RW, REQ),
    row(num::CONFLATE, "CONFLATE", Bool, "0", RW, Types::ALL),
    row(
        num::ROUTER_HANDOVER,
        "ROUTER_HANDOVER",
        Bool,
        "0",
        RW,
        ROUTER,
    ),
    row(num::TOS, "TOS", Int, "0", RW, Types::ALL),
    row(
        num::CONNECT_ROUTING_ID,
        "CONNECT_ROUTING_ID",
        B,
        "-",
        WO,
        CONNECT_RID,
    ),
    row(
        num::HANDSHAKE_IVL,
        "HANDSHAKE_IVL",
        Int,
        "30000",
        RW,
        Types::ALL,
    ),
    row(num::XPUB_NODROP, "XPUB_NODROP", Bool, "0", RW, PUBS),
    row(num::XPUB_MANUAL, "XPUB_MANUAL", Bool, "0", RW, PUBS),
    row(num::XPUB_WELCOME_MSG, "XPUB_WELCOME_MSG", B, "-", WO, PUBS),
    row(
        num::INVERT_MATCHING,
        "INVERT_MATCHING",
        Bool,
        "0",
        RW,
        Types::ALL,
    ),
    row(
        num::HEARTBEAT_IVL,
        "HEARTBEAT_IVL",
        Int,
        "0",
        RW,
        Types::ALL,
    ),
    row(
        num::HEARTBEAT_TTL,
        "HEARTBEAT_TTL",
        Int,
        "0",
        RW,
        Types::ALL,
    ),
    row(
        num::HEARTBEAT_TIMEOUT,
        "HEARTBEAT_TIMEOUT",
        Int,
        "-1",
        RW,
        Types::ALL,
    ),
    row(num::XPUB_VERBOSER, "XPUB_VERBOSER", Bool, "0", RW, PUBS),
    row(
        num::CONNECT_TIMEOUT,
        "CONNECT_TIMEOUT",
        Int,
        "0",
        RW,
        Types::ALL,
    ),
    row(num::TCP_MAXRT, "TCP_MAXRT", Int, "0", RW, Types::ALL),
    row(num::THREAD_SAFE, "THREAD_SAFE", Bool, "0", RO, Types::ALL),
    row(num::PLAIN_SERVER, "PLAIN_SERVER", Bool, "0", RW, Types::ALL),
    row(
        num::PLAIN_USERNAME,
        "PLAIN_USERNAME",
        Str,
        "-",
        RW,
        Types::ALL,
    ),
    row(
        num::PLAIN_PASSWORD,
        "PLAIN_PASSWORD",
        Str,
        "-",
        RW,
        Types::ALL,
    ),
    row(num::CURVE_SERVER, "CURVE_SERVER", Bool, "0", RW, Types::ALL),
    row(
        num::CURVE_PUBLICKEY,
        "CURVE_PUBLICKEY",
        B,
        "32 zero bytes",
        RW,
        Types::ALL,
    ),
    row(
        num::CURVE_SECRETKEY,
        "CURVE_SECRETKEY",
        B,
        "32 zero bytes",
        RW,
        Types::ALL,
    ),
    row(
        num::CURVE_SERVERKEY,
        "CURVE_SERVERKEY",
        B,
        "32 zero bytes",
        RW,
        Types::ALL,
    ),
    row(num::ZAP_DOMAIN, "ZAP_DOMAIN", Str, "-", RW, Types::ALL),
    row(num::BINDTODEVICE, "BINDTODEVICE", Str, "-", RW, Types::ALL),
    row(
        num::ZAP_ENFORCE_DOMAIN,
        "ZAP_ENFORCE_DOMAIN",
        Bool,
        "0",
        RW,
        Types::ALL,
    ),
    row(num::METADATA, "METADATA", Str, "-", RW, Types::ALL),
    row(
        num::XPUB_MANUAL_LAST_VALUE,
        "XPUB_MANUAL_LAST_VALUE",
        Bool,
        "0",
        RW,
        PUBS,
    ),
    row(
        num::ONLY_FIRST_SUBSCRIBE,
        "ONLY_FIRST_SUBSCRIBE",
        Bool,
        "0",
        RW,
        XPUB_XSUB,
    ),
    row(
        num::XSUB_VERBOSE_UNSUBSCRIBE,
        "XSUB_VERBOSE_UNSUBSCRIBE",
        Bool,
        "0",
        RW,
        SUB_SIDE,
    ),
    row(num::TOPICS_COUNT, "TOPICS_COUNT", Int, "0", RO, PUBSUB),
    // Stored for the transports; see docs/sockets.md for which act today.
    row(num::IPV4ONLY, "IPV4ONLY", Bool, "1", RW, Types::ALL),
    row(
        num::TCP_ACCEPT_FILTER,
        "TCP_ACCEPT_FILTER",
        B,
        "-",
        WO,
        Types::ALL,
    ),
    row(num::ROUTER_RAW, "ROUTER_RAW", Bool, "0", WO, ROUTER),
    row(
        num::IPC_FILTER_PID,
        "IPC_FILTER_PID",
        // An `int`, or nothing to clear the list: taken raw.
        B,
        "-",
        WO,
        Types::ALL,
    ),
    row(
        num::IPC_FILTER_UID,
        "IPC_FILTER_UID",
        // An `int`, or nothing to clear the list: taken raw.
        B,
        "-",
        WO,
        Types::ALL,
    ),
    row(
        num::IPC_FILTER_GID,
        "IPC_FILTER_GID",
        // An `int`, or nothing to clear the list: taken raw.
        B,
        "-",
        WO,
        Types::ALL,
    ),
    row(num::SOCKS_PROXY, "SOCKS_PROXY", Str, "-", RW, Types::ALL),
    row(
        num::SOCKS_USERNAME,
        "SOCKS_USERNAME",
        Str,
        "-",
        RW,
        Types::ALL,
    ),
    row(
        num::SOCKS_PASSWORD,
        "SOCKS_PASSWORD",
        Str,
        "-",
        RW,
        Types::ALL,
    ),
    row(num::STREAM_NOTIFY, "STREAM_NOTIFY", Bool, "1", WO, STREAM),
    row(
        num::ROUTER_NOTIFY,
        "ROUTER_NOTIFY",
        Int,
        "0",
        RW,
        ROUTER_ONLY,
    ),
    row(
        num::MULTICAST_MAXTPDU,
        "MULTICAST_MAXTPDU",
        Int,
        "1500",
        RW,
        Types::ALL,
    ),
    row(
        num::MULTICAST_LOOP,
        "MULTICAST_LOOP",
        Bool,
        "1",
        RW,
        Types::ALL,
    ),
    row(num::USE_FD, "USE_FD", Int, "-1", RW, Types::ALL),
    row(
        num::LOOPBACK_FASTPATH,
        "LOOPBACK_FASTPATH",
        Bool,
        "0",
        RW,
        Types::ALL,
    ),
    row(
        num::IN_BATCH_SIZE,
        "IN_BATCH_SIZE",
        Int,
        "8192",
        RW,
        Types::ALL,
    ),
    row(
        num::OUT_BATCH_SIZE,
        "OUT_BATCH_SIZE",
        Int,
        "8192",
        RW,
        Types::ALL,
    ),
    row(
        num::RECONNECT_STOP,
        "RECONNECT_STOP",
        Int,
        "0",
        RW,
        Types::ALL,
    ),
    row(num::HELLO_MSG, "HELLO_MSG", B, "-", WO, Types::ALL),
    row(
        num::DISCONNECT_MSG,
        "DISCONNECT_MSG",
        B,
        "-",
        WO,
        ROUTER_ONLY,
    ),
    row(num::HICCUP_MSG, "HICCUP_MSG", B, "-", WO, Types::ALL),
    row(num::PRIORITY, "PRIORITY", Int, "0", RW, Types::ALL),
    row(num::BUSY_POLL, "BUSY_POLL", Int, "0", RW, Types::ALL),
    row(
        num::ZR_MAX_INCOMPLETE_MSG,
        "ZR_MAX_INCOMPLETE_MSG",
        Int64,
        "67108864",
        RW,
        Types::ALL,
    ),
    row(
        num::ZR_MAX_HANDSHAKES,
        "ZR_MAX_HANDSHAKES",
        Int,
        "4096",
        RW,
        Types::ALL,
    ),
];

/// The table row for an option number.
pub fn spec(num: i32) -> Option<&'static OptionSpec> {
    OPTIONS.iter().find(|s| s.num == num)
}
