//! The socket's option methods: `zmq_setsockopt` / `zmq_getsockopt` over the C representation,
//! and their typed forms (`set_linger`, `get_rcvhwm`, …), all through one path, so a typed
//! setter checks exactly what the C call checks. What an option means lives in
//! [`crate::options`]; this file only reads and writes it on a socket.

use super::*;

impl Socket {
    // ----- options --------------------------------------------------------------------------

    /// `zmq_setsockopt`: `value` is the option's C representation (native-endian `int`,
    /// `int64_t`, `uint64_t`, or bytes). Unknown options, options this socket type does not
    /// take, and wrong sizes → EINVAL.
    ///
    /// ```
    /// use zeroring::{options::num, Context, Error, SocketType};
    ///
    /// let ctx = Context::new();
    /// let s = ctx.socket(SocketType::Dealer)?;
    /// s.set_option(num::LINGER, &0i32.to_ne_bytes())?;
    /// assert_eq!(s.set_option(num::LINGER, &[0u8]), Err(Error::EINVAL)); // wrong size
    /// assert_eq!(s.set_option(9999, &0i32.to_ne_bytes()), Err(Error::EINVAL)); // unknown
    /// assert_eq!(s.set_option(num::SUBSCRIBE, b"x"), Err(Error::EINVAL)); // not a SUB
    /// # Ok::<(), zeroring::Error>(())
    /// ```
    pub fn set_option(&self, option: i32, value: &[u8]) -> Result<()> {
        let mut c = self.core();
        c.process_commands()?;
        // An option may write to the pipes (SUBSCRIBE): with their readers' progress as it is.
        c.refresh_credit();
        let spec = c.sc.options.check(option, true)?;
        let v = Value::decode(spec.kind, value)?;
        c.sc.set_value(option, v)
    }

    /// `zmq_getsockopt`: the option's C representation (strings NUL-terminated).
    pub fn get_option(&self, option: i32) -> Result<Vec<u8>> {
        let spec = self.core().sc.options.check(option, false)?;
        Ok(self.get_value(option)?.encode(spec.kind))
    }

    fn get_value(&self, option: i32) -> Result<Value> {
        match option {
            num::RCVMORE => Ok(Value::Int(self.get_rcvmore()? as i32)),
            num::EVENTS => Ok(Value::Int(self.get_events()?)),
            num::FD => Ok(Value::Int(self.get_fd())),
            num::TOPICS_COUNT => {
                let mut c = self.core();
                c.process_commands()?;
                let (p, mut cx) = c.sc.cx();
                Ok(Value::Int(p.topics_count(&mut cx).unwrap_or(0) as i32))
            }
            _ => {
                let c = self.core();
                if c.ctx.is_terminated() {
                    return Err(Error::ETERM);
                }
                c.sc.options.get(option)
            }
        }
    }

    fn set_int(&self, option: i32, v: i32) -> Result<()> {
        self.set_option(option, &v.to_ne_bytes())
    }

    fn get_int(&self, option: i32) -> Result<i32> {
        match self.get_value(option)? {
            Value::Int(v) => Ok(v),
            _ => Err(Error::EINVAL),
        }
    }

    fn get_bytes(&self, option: i32) -> Result<Vec<u8>> {
        match self.get_value(option)? {
            Value::Bytes(v) => Ok(v.to_vec()),
            _ => Err(Error::EINVAL),
        }
    }
}

macro_rules! int_options {
    ($($(#[$doc:meta])* $set:ident, $get:ident, $num:expr;)*) => {
        impl Socket {$(
            $(#[$doc])*
            pub fn $set(&self, value: i32) -> Result<()> {
                self.set_int($num, value)
            }
            $(#[$doc])*
            pub fn $get(&self) -> Result<i32> {
                self.get_int($num)
            }
        )*}
    };
}

macro_rules! bool_options {
    ($($(#[$doc:meta])* $set:ident, $get:ident, $num:expr;)*) => {
        impl Socket {$(
            $(#[$doc])*
            pub fn $set(&self, value: bool) -> Result<()> {
                self.set_int($num, value as i32)
            }
            $(#[$doc])*
            pub fn $get(&self) -> Result<bool> {
                Ok(self.get_int($num)? != 0)
            }
        )*}
    };
}

int_options! {
    /// ZMQ_SNDHWM (messages; 0 = unlimited). Applies to pipes attached afterwards.
    set_sndhwm, get_sndhwm, num::SNDHWM;
    /// ZMQ_RCVHWM (messages; 0 = unlimited). Applies to pipes attached afterwards.
    set_rcvhwm, get_rcvhwm, num::RCVHWM;
    /// ZMQ_LINGER in ms (−1 = forever; zeroring's default is 1000).
    set_linger, get_linger, num::LINGER;
    /// ZMQ_SNDTIMEO in ms (−1 = block forever, 0 = never block).
    set_sndtimeo, get_sndtimeo, num::SNDTIMEO;
    /// ZMQ_RCVTIMEO in ms (−1 = block forever, 0 = never block).
    set_rcvtimeo, get_rcvtimeo, num::RCVTIMEO;
    /// ZMQ_RECONNECT_IVL in ms (used by the wire transports).
    set_reconnect_ivl, get_reconnect_ivl, num::RECONNECT_IVL;
    /// ZMQ_BACKLOG (used by the wire transports).
    set_backlog, get_backlog, num::BACKLOG;
    /// ZMQ_HANDSHAKE_IVL in ms (used by the wire transports).
    set_handshake_ivl, get_handshake_ivl, num::HANDSHAKE_IVL;
    /// ZMQ_RECONNECT_IVL_MAX in ms (0 = no backoff).
    set_reconnect_ivl_max, get_reconnect_ivl_max, num::RECONNECT_IVL_MAX;
    /// ZMQ_CONNECT_TIMEOUT in ms (0 = the OS's).
    set_connect_timeout, get_connect_timeout, num::CONNECT_TIMEOUT;
    /// ZMQ_HEARTBEAT_IVL in ms (0 = no PINGs).
    set_heartbeat_ivl, get_heartbeat_ivl, num::HEARTBEAT_IVL;
    /// ZMQ_HEARTBEAT_TTL in ms (announced to the peer; under 100 ms has no effect).
    set_heartbeat_ttl, get_heartbeat_ttl, num::HEARTBEAT_TTL;
    /// ZMQ_HEARTBEAT_TIMEOUT in ms (−1 = HEARTBEAT_IVL).
    set_heartbeat_timeout, get_heartbeat_timeout, num::HEARTBEAT_TIMEOUT;
    /// ZMQ_TCP_KEEPALIVE (−1 = OS default, 0 off, 1 on).
    set_tcp_keepalive, get_tcp_keepalive, num::TCP_KEEPALIVE;
    /// ZMQ_SNDBUF in bytes (−1 = OS default).
    set_sndbuf, get_sndbuf, num::SNDBUF;
    /// ZMQ_RCVBUF in bytes (−1 = OS default).
    set_rcvbuf, get_rcvbuf, num::RCVBUF;
    /// ZMQ_TOS.
    set_tos, get_tos, num::TOS;
}

bool_options! {
    /// ZMQ_PLAIN_SERVER: act as the PLAIN server (credentials checked through ZAP).
    set_plain_server, get_plain_server, num::PLAIN_SERVER;
    /// ZMQ_ZAP_ENFORCE_DOMAIN.
    set_zap_enforce_domain, get_zap_enforce_domain, num::ZAP_ENFORCE_DOMAIN;
    /// ZMQ_ROUTER_MANDATORY (ROUTER).
    set_router_mandatory, get_router_mandatory, num::ROUTER_MANDATORY;
    /// ZMQ_ROUTER_HANDOVER (ROUTER).
    set_router_handover, get_router_handover, num::ROUTER_HANDOVER;
    /// ZMQ_PROBE_ROUTER (ROUTER, DEALER, REQ).
    set_probe_router, get_probe_router, num::PROBE_ROUTER;
    /// ZMQ_REQ_CORRELATE (REQ).
    set_req_correlate, get_req_correlate, num::REQ_CORRELATE;
    /// ZMQ_REQ_RELAXED (REQ).
    set_req_relaxed, get_req_relaxed, num::REQ_RELAXED;
    /// ZMQ_XPUB_VERBOSE (PUB, XPUB).
    set_xpub_verbose, get_xpub_verbose, num::XPUB_VERBOSE;
    /// ZMQ_XPUB_VERBOSER (PUB, XPUB).
    set_xpub_verboser, get_xpub_verboser, num::XPUB_VERBOSER;
    /// ZMQ_XPUB_MANUAL (PUB, XPUB).
    set_xpub_manual, get_xpub_manual, num::XPUB_MANUAL;
    /// ZMQ_XPUB_NODROP (PUB, XPUB).
    set_xpub_nodrop, get_xpub_nodrop, num::XPUB_NODROP;
    /// ZMQ_INVERT_MATCHING (PUB, XPUB, SUB, XSUB).
    set_invert_matching, get_invert_matching, num::INVERT_MATCHING;
    /// ZMQ_CONFLATE: keep only the newest message (single-part messages only).
    set_conflate, get_conflate, num::CONFLATE;
    /// ZMQ_IMMEDIATE: queue only to completed connections.
    set_immediate, get_immediate, num::IMMEDIATE;
    /// ZMQ_IPV6.
    set_ipv6, get_ipv6, num::IPV6;
}

impl Socket {
    /// ZMQ_PLAIN_USERNAME: be a PLAIN client with this user name.
    pub fn set_plain_username(&self, name: &str) -> Result<()> {
        self.set_option(num::PLAIN_USERNAME, name.as_bytes())
    }

    /// ZMQ_PLAIN_PASSWORD.
    pub fn set_plain_password(&self, password: &str) -> Result<()> {
        self.set_option(num::PLAIN_PASSWORD, password.as_bytes())
    }

    /// ZMQ_ZAP_DOMAIN.
    pub fn set_zap_domain(&self, domain: &str) -> Result<()> {
        self.set_option(num::ZAP_DOMAIN, domain.as_bytes())
    }

    /// ZMQ_BINDTODEVICE.
    pub fn set_bindtodevice(&self, device: &str) -> Result<()> {
        self.set_option(num::BINDTODEVICE, device.as_bytes())
    }

    /// ZMQ_SUBSCRIBE (SUB, XSUB; XPUB under XPUB_MANUAL): receive messages that start with
    /// `topic` (empty: every message). EINVAL on other socket types.
    ///
    /// ```
    /// use zeroring::{Context, Error, SocketType};
    ///
    /// let ctx = Context::new();
    /// ctx.socket(SocketType::Sub)?.set_subscribe(b"weather.")?;
    /// let push = ctx.socket(SocketType::Push)?;
    /// assert_eq!(push.set_subscribe(b""), Err(Error::EINVAL));
    /// # Ok::<(), zeroring::Error>(())
    /// ```
    pub fn set_subscribe(&self, topic: &[u8]) -> Result<()> {
        self.set_option(num::SUBSCRIBE, topic)
    }

    /// ZMQ_UNSUBSCRIBE (SUB, XSUB; XPUB under XPUB_MANUAL).
    pub fn set_unsubscribe(&self, topic: &[u8]) -> Result<()> {
        self.set_option(num::UNSUBSCRIBE, topic)
    }

    /// ZMQ_ROUTING_ID (1 to 255 bytes).
    pub fn set_routing_id(&self, id: &[u8]) -> Result<()> {
        self.set_option(num::ROUTING_ID, id)
    }

    /// ZMQ_ROUTING_ID.
    pub fn get_routing_id(&self) -> Result<Vec<u8>> {
        self.get_bytes(num::ROUTING_ID)
    }

    /// ZMQ_CONNECT_ROUTING_ID: the routing id to give the peer of the next `connect`.
    pub fn set_connect_routing_id(&self, id: &[u8]) -> Result<()> {
        self.set_option(num::CONNECT_ROUTING_ID, id)
    }

    /// ZMQ_XPUB_WELCOME_MSG (empty = none).
    pub fn set_xpub_welcome_msg(&self, msg: &[u8]) -> Result<()> {
        self.set_option(num::XPUB_WELCOME_MSG, msg)
    }

    /// ZMQ_MAXMSGSIZE in bytes (−1 = unlimited; enforced on messages from the network).
    pub fn set_maxmsgsize(&self, size: i64) -> Result<()> {
        self.set_option(num::MAXMSGSIZE, &size.to_ne_bytes())
    }

    /// ZMQ_MAXMSGSIZE.
    pub fn get_maxmsgsize(&self) -> Result<i64> {
        match self.get_value(num::MAXMSGSIZE)? {
            Value::Int64(v) => Ok(v),
            _ => Err(Error::EINVAL),
        }
    }

    /// ZMQ_AFFINITY: the I/O threads (bit mask) this socket's connections may use.
    pub fn set_affinity(&self, mask: u64) -> Result<()> {
        self.set_option(num::AFFINITY, &mask.to_ne_bytes())
    }

    /// ZMQ_AFFINITY.
    pub fn get_affinity(&self) -> Result<u64> {
        match self.get_value(num::AFFINITY)? {
            Value::Uint64(v) => Ok(v),
            _ => Err(Error::EINVAL),
        }
    }

    /// ZMQ_METADATA: adds an application property `"X-name:value"` sent in the handshake.
    pub fn set_metadata(&self, property: &str) -> Result<()> {
        self.set_option(num::METADATA, property.as_bytes())
    }

    /// ZMQ_TYPE.
    pub fn get_socket_type(&self) -> Result<SocketType> {
        SocketType::from_raw(self.get_int(num::TYPE)?).ok_or(Error::EINVAL)
    }

    /// ZMQ_LAST_ENDPOINT: the last endpoint bound.
    pub fn get_last_endpoint(&self) -> Result<std::result::Result<String, Vec<u8>>> {
        let b = self.get_bytes(num::LAST_ENDPOINT)?;
        Ok(String::from_utf8(b).map_err(|e| e.into_bytes()))
    }

    /// ZMQ_TOPICS_COUNT: distinct topics subscribed (SUB/XSUB) or subscribed to (PUB/XPUB).
    pub fn get_topics_count(&self) -> Result<i32> {
        self.get_int(num::TOPICS_COUNT)
    }
}
