//! ZAP (RFC 27): the request a server-side mechanism asks its socket to send to
//! the handler at `inproc://zeromq.zap.01`, and the reply it applies.
//!
//! Owns: the request/reply frame layouts and libzmq's reply validation. Must
//! never: talk to the handler itself; the driver carries frames both ways.

use bytes::{Bytes, BytesMut};

use super::error::ZapError;
use super::metadata::Metadata;

/// The ZAP version string.
pub const ZAP_VERSION: &[u8] = b"1.0";
/// The endpoint a ZAP handler binds.
pub const ZAP_ENDPOINT: &str = "inproc://zeromq.zap.01";
/// libzmq always uses request id "1" (one request per connection).
pub const REQUEST_ID: &[u8] = b"1";

/// A ZAP request, ready to be sent as frames.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZapRequest {
    pub request_id: Bytes,
    pub domain: Bytes,
    /// The peer's address (IP for tcp).
    pub address: Bytes,
    /// Our own routing id (libzmq sends the local socket's, not the peer's).
    pub routing_id: Bytes,
    /// "NULL", "PLAIN" or "CURVE".
    pub mechanism: &'static str,
    /// Mechanism credentials (PLAIN: username, password; CURVE: client key).
    pub credentials: Vec<Bytes>,
}

impl ZapRequest {
    /// The request as the frames of one multipart message:
    /// "", "1.0", request id, domain, address, routing id, mechanism, credentials…
    pub fn frames(&self) -> Vec<Bytes> {
        let mut f = vec![
            Bytes::new(),
            Bytes::from_static(ZAP_VERSION),
            self.request_id.clone(),
            self.domain.clone(),
            self.address.clone(),
            self.routing_id.clone(),
            Bytes::from_static(self.mechanism.as_bytes()),
        ];
        f.extend(self.credentials.iter().cloned());
        f
    }
}

/// A ZAP reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZapReply {
    pub request_id: Bytes,
    /// 200, 300, 400 or 500.
    pub status_code: u16,
    pub status_text: Bytes,
    /// Becomes the `User-Id` property of the connection.
    pub user_id: Bytes,
    pub metadata: Metadata,
}

impl ZapReply {
    /// A 200 reply with `user_id`.
    pub fn ok(user_id: impl Into<Bytes>) -> Self {
        ZapReply {
            request_id: Bytes::from_static(REQUEST_ID),
            status_code: 200,
            status_text: Bytes::from_static(b"OK"),
            user_id: user_id.into(),
            metadata: Metadata::new(),
        }
    }

    /// A refusal with `status_code` (300, 400 or 500).
    pub fn deny(status_code: u16) -> Self {
        ZapReply {
            request_id: Bytes::from_static(REQUEST_ID),
            status_code,
            status_text: Bytes::from_static(b"Denied"),
            user_id: Bytes::new(),
            metadata: Metadata::new(),
        }
    }

    /// Parses a reply's frames with libzmq's checks, in libzmq's order.
    pub fn parse(frames: &[Bytes]) -> Result<ZapReply, ZapError> {
        let [delim, version, request_id, status, text, user_id, metadata] = frames else {
            return Err(ZapError::MalformedReply);
        };
        if !delim.is_empty() {
            return Err(ZapError::Unspecified);
        }
        if &version[..] != ZAP_VERSION {
            return Err(ZapError::BadVersion);
        }
        if &request_id[..] != REQUEST_ID {
            return Err(ZapError::BadRequestId);
        }
        let status_code = match &status[..] {
            [d @ b'2'..=b'5', b'0', b'0'] => u16::from(d - b'0') * 100,
            _ => return Err(ZapError::InvalidStatusCode),
        };
        let metadata = Metadata::parse(metadata).map_err(|_| ZapError::InvalidMetadata)?;
        Ok(ZapReply {
            request_id: request_id.clone(),
            status_code,
            status_text: text.clone(),
            user_id: user_id.clone(),
            metadata,
        })
    }

    /// The reply as frames (what a ZAP handler sends).
    pub fn frames(&self) -> Vec<Bytes> {
        let mut meta = BytesMut::new();
        self.metadata.encode(&mut meta);
        vec![
            Bytes::new(),
            Bytes::from_static(ZAP_VERSION),
            self.request_id.clone(),
            Bytes::from(self.status_code.to_string()),
            self.status_text.clone(),
            self.user_id.clone(),
            meta.freeze(),
        ]
    }

    /// Validates a reply built in code (same checks as [`ZapReply::parse`]).
    pub fn validate(&self) -> Result<(), ZapError> {
        if &self.request_id[..] != REQUEST_ID {
            return Err(ZapError::BadRequestId);
        }
        if !matches!(self.status_code, 200 | 300 | 400 | 500) {
            return Err(ZapError::InvalidStatusCode);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_round_trip_and_checks() {
        let mut r = ZapReply::ok("alice");
        r.metadata.push("X-Role", "admin").unwrap();
        assert_eq!(ZapReply::parse(&r.frames()).unwrap(), r);
        let mut f = r.frames();
        f[0] = Bytes::from_static(b"x");
        assert_eq!(ZapReply::parse(&f), Err(ZapError::Unspecified));
        let mut f = r.frames();
        f[1] = Bytes::from_static(b"2.0");
        assert_eq!(ZapReply::parse(&f), Err(ZapError::BadVersion));
        let mut f = r.frames();
        f[2] = Bytes::from_static(b"2");
        assert_eq!(ZapReply::parse(&f), Err(ZapError::BadRequestId));
        let mut f = r.frames();
        f[3] = Bytes::from_static(b"201");
        assert_eq!(ZapReply::parse(&f), Err(ZapError::InvalidStatusCode));
        let mut f = r.frames();
        f[6] = Bytes::from_static(b"\x03");
        assert_eq!(ZapReply::parse(&f), Err(ZapError::InvalidMetadata));
        assert_eq!(ZapReply::parse(&f[..6]), Err(ZapError::MalformedReply));
    }
}
