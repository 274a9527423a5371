//! A socket's options as the transports want them: the ZMTP [`ConnectionConfig`] of a new
//! connection and the [`TransportOptions`] of a listener or connecter.
//!
//! Owns: that translation and nothing else. Must never: depend on a driver (context, socket,
//! wire): the sans-IO [`SocketCore`](crate::SocketCore) uses it.

use std::time::Duration;

use bytes::Bytes;
use zeroring_transports::driver::TransportOptions;
use zeroring_transports::zmtp::{ConnectionConfig, HeartbeatConfig, MechanismConfig};
use zeroring_transports::SocketType;

use crate::options::{num, Options, Value, MECHANISM_CURVE, MECHANISM_PLAIN};

fn int(o: &Options, n: i32, default: i32) -> i32 {
    match o.extra.get(&n) {
        Some(Value::Int(v)) => *v,
        _ => default,
    }
}

pub(crate) fn bytes(o: &Options, n: i32) -> Option<Bytes> {
    match o.extra.get(&n) {
        Some(Value::Bytes(b)) if !b.is_empty() => Some(b.clone()),
        _ => None,
    }
}

fn ms(v: i32) -> Option<Duration> {
    (v > 0).then(|| Duration::from_millis(v as u64))
}

/// The ZMTP side of a socket's options.
pub(crate) fn connection_config(o: &Options, zap_handler: bool) -> ConnectionConfig {
    // ROUTER_RAW: the connections speak raw tcp, as a STREAM's.
    let raw = matches!(o.extra.get(&num::ROUTER_RAW), Some(Value::Int(1)));
    let mut c = ConnectionConfig::new(if raw {
        SocketType::Stream
    } else {
        o.socket_type
    });
    c.routing_id = o.routing_id.clone();
    for (name, value) in &o.metadata {
        // Names and values were validated when ZMQ_METADATA was set.
        let _ = c
            .metadata
            .push(Bytes::from(name.clone()), Bytes::from(value.clone()));
    }
    c.max_msg_size = o.maxmsgsize;
    if matches!(o.socket_type, SocketType::Dealer | SocketType::Router) {
        c.hello_msg = o.hello_msg.clone();
    }
    if o.socket_type == SocketType::Dealer {
        c.hiccup_msg = bytes(o, num::HICCUP_MSG);
    }
    if let Some(Value::Int64(v)) = o.extra.get(&num::ZR_MAX_INCOMPLETE_MSG) {
        c.max_incomplete_msg = u64::try_from(*v).unwrap_or(u64::MAX);
    }
    c.handshake_ivl = ms(int(o, num::HANDSHAKE_IVL, 30_000));
    let timeout = int(o, num::HEARTBEAT_TIMEOUT, -1);
    c.heartbeat = HeartbeatConfig {
        interval: ms(int(o, num::HEARTBEAT_IVL, 0)),
        ttl: Duration::from_millis(int(o, num::HEARTBEAT_TTL, 0).max(0) as u64),
        timeout: if timeout < 0 {
            None
        } else {
            Some(Duration::from_millis(timeout as u64))
        },
    };
    c.mechanism = match (o.mechanism, o.as_server) {
        (MECHANISM_CURVE, true) => MechanismConfig::CurveServer {
            secret: o.curve_secret.clone(),
        },
        (MECHANISM_CURVE, false) => MechanismConfig::CurveClient {
            public: o.curve_public,
            secret: o.curve_secret.clone(),
            server: o.curve_server,
        },
        (MECHANISM_PLAIN, true) => MechanismConfig::PlainServer,
        (MECHANISM_PLAIN, false) => MechanismConfig::PlainClient {
            username: bytes(o, num::PLAIN_USERNAME).unwrap_or_default(),
            password: bytes(o, num::PLAIN_PASSWORD).unwrap_or_default(),
        },
        _ => MechanismConfig::Null,
    };
    c.zap.domain = bytes(o, num::ZAP_DOMAIN).unwrap_or_default();
    c.zap.enforce_domain = int(o, num::ZAP_ENFORCE_DOMAIN, 0) == 1;
    c.zap.handler_available = zap_handler;
    c
}

/// ZMQ_IPV6 as it applies to the socket: its own setting, else the context's.
pub(crate) fn ipv6(o: &Options, ctx_ipv6: bool) -> bool {
    int(o, num::IPV6, ctx_ipv6 as i32) == 1
}

/// The transport side of a socket's options.
pub(crate) fn transport_options(o: &Options, ctx_ipv6: bool) -> TransportOptions {
    let reconnect = int(o, num::RECONNECT_IVL, 100);
    TransportOptions {
        reconnect_ivl: if reconnect < 0 {
            None
        } else {
            Some(Duration::from_millis(reconnect as u64))
        },
        reconnect_ivl_max: Duration::from_millis(int(o, num::RECONNECT_IVL_MAX, 0).max(0) as u64),
        connect_timeout: ms(int(o, num::CONNECT_TIMEOUT, 0)),
        backlog: int(o, num::BACKLOG, 100),
        max_handshakes: int(
            o,
            num::ZR_MAX_HANDSHAKES,
            zeroring_transports::driver::DEFAULT_MAX_HANDSHAKES as i32,
        )
        .max(1) as usize,
        tcp_keepalive: int(o, num::TCP_KEEPALIVE, -1),
        tcp_keepalive_cnt: int(o, num::TCP_KEEPALIVE_CNT, -1),
        tcp_keepalive_idle: int(o, num::TCP_KEEPALIVE_IDLE, -1),
        tcp_keepalive_intvl: int(o, num::TCP_KEEPALIVE_INTVL, -1),
        sndbuf: int(o, num::SNDBUF, -1),
        rcvbuf: int(o, num::RCVBUF, -1),
        tos: int(o, num::TOS, 0).max(0) as u32,
        ipv6: ipv6(o, ctx_ipv6),
        bind_to_device: bytes(o, num::BINDTODEVICE)
            .map(|b| String::from_utf8_lossy(&b).into_owned()),
        affinity: o.affinity,
        immediate: o.immediate,
        priority: int(o, num::PRIORITY, 0),
        busy_poll: int(o, num::BUSY_POLL, 0),
        tcp_maxrt: int(o, num::TCP_MAXRT, 0),
        use_fd: int(o, num::USE_FD, -1),
        reconnect_stop: int(o, num::RECONNECT_STOP, 0),
        // Per connect: needs the endpoint (see `socks_request`).
        socks: None,
        accept_filters: o.accept_filters.clone(),
    }
}
