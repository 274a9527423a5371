//! ZMTP metadata: the property list carried by READY and INITIATE (and a ZAP
//! reply): `u8 name-len, name, u32 BE value-len, value`, repeated.
//!
//! Owns: parsing (zero-copy slices of the command body), encoding, and the
//! case-insensitive lookup RFC 37 asks for. Must never: allocate based on a
//! declared length (lengths are checked against the bytes actually present).

use bytes::{BufMut, Bytes, BytesMut};

/// The property naming the socket type.
pub const SOCKET_TYPE: &str = "Socket-Type";
/// The property carrying the routing id (libzmq's name; RFC 37 also allows
/// "Routing-Id", which lookups accept too).
pub const IDENTITY: &str = "Identity";
/// RFC 37's newer name for the routing id property.
pub const ROUTING_ID: &str = "Routing-Id";
/// The ZAP-provided user id property.
pub const USER_ID: &str = "User-Id";

/// Why a property list does not parse, or a property cannot be encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetadataError {
    /// The list ends inside a property.
    Truncated,
    /// A name is empty or longer than 255 bytes (encoding only).
    BadName,
    /// A value is longer than 2^31 - 1 bytes (encoding only).
    ValueTooLong,
}

impl std::fmt::Display for MetadataError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MetadataError::Truncated => "metadata ends inside a property",
            MetadataError::BadName => "metadata property name must be 1 to 255 bytes",
            MetadataError::ValueTooLong => "metadata property value is too long",
        })
    }
}

impl std::error::Error for MetadataError {}

/// An ordered list of properties.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Metadata {
    props: Vec<(Bytes, Bytes)>,
}

impl Metadata {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a property (names are 1..=255 bytes).
    pub fn push(
        &mut self,
        name: impl Into<Bytes>,
        value: impl Into<Bytes>,
    ) -> Result<(), MetadataError> {
        let name = name.into();
        let value = value.into();
        if name.is_empty() || name.len() > usize::from(u8::MAX) {
            return Err(MetadataError::BadName);
        }
        if value.len() > 0x7FFF_FFFF {
            return Err(MetadataError::ValueTooLong);
        }
        self.props.push((name, value));
        Ok(())
    }

    /// Parses ZMQ_METADATA's `"X-key:value"` form and appends it.
    pub fn push_app_property(&mut self, spec: &str) -> Result<(), MetadataError> {
        let (k, v) = spec.split_once(':').ok_or(MetadataError::BadName)?;
        if !k.starts_with("X-") && !k.starts_with("x-") {
            return Err(MetadataError::BadName);
        }
        self.push(
            Bytes::copy_from_slice(k.as_bytes()),
            Bytes::copy_from_slice(v.as_bytes()),
        )
    }

    /// The first value whose name matches `name`, ignoring ASCII case.
    pub fn get(&self, name: &str) -> Option<&Bytes> {
        self.props
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, v)| v)
    }

    /// The routing id property ("Identity" or "Routing-Id").
    pub fn routing_id(&self) -> Option<&Bytes> {
        self.get(IDENTITY).or_else(|| self.get(ROUTING_ID))
    }

    /// Iterates over `(name, value)` pairs in order.
    pub fn iter(&self) -> impl Iterator<Item = (&Bytes, &Bytes)> {
        self.props.iter().map(|(n, v)| (n, v))
    }

    /// Number of properties.
    pub fn len(&self) -> usize {
        self.props.len()
    }

    /// Whether there are no properties.
    pub fn is_empty(&self) -> bool {
        self.props.is_empty()
    }

    /// Appends every property of `other`.
    pub fn extend(&mut self, other: &Metadata) {
        self.props.extend(other.props.iter().cloned());
    }

    /// Size of the encoding.
    pub fn encoded_len(&self) -> usize {
        self.props
            .iter()
            .map(|(n, v)| 1 + n.len() + 4 + v.len())
            .sum()
    }

    /// Appends the wire encoding to `out`.
    pub fn encode(&self, out: &mut BytesMut) {
        out.reserve(self.encoded_len());
        for (n, v) in &self.props {
            encode_property(out, n, v);
        }
    }

    /// Parses a property list (zero-copy: names and values are slices of `data`).
    /// Like libzmq, a name may be empty; a list ending inside a property, or with
    /// one stray byte, is an error.
    pub fn parse(data: &Bytes) -> Result<Metadata, MetadataError> {
        let mut props = Vec::new();
        let mut pos = 0usize;
        let len = data.len();
        while pos < len {
            let name_len = usize::from(*data.get(pos).ok_or(MetadataError::Truncated)?);
            pos += 1;
            let name_end = pos
                .checked_add(name_len)
                .filter(|&e| e <= len)
                .ok_or(MetadataError::Truncated)?;
            let name = data.slice(pos..name_end);
            pos = name_end;
            let len_bytes = data.get(pos..pos + 4).ok_or(MetadataError::Truncated)?;
            let value_len =
                u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
            pos += 4;
            let value_len = usize::try_from(value_len).map_err(|_| MetadataError::Truncated)?;
            let value_end = pos
                .checked_add(value_len)
                .filter(|&e| e <= len)
                .ok_or(MetadataError::Truncated)?;
            let value = data.slice(pos..value_end);
            pos = value_end;
            props.push((name, value));
        }
        Ok(Metadata { props })
    }
}

/// Appends one property's encoding. `name` must be at most 255 bytes and
/// `value` at most 2^32 - 1 (callers validate; longer inputs are clipped).
pub fn encode_property(out: &mut BytesMut, name: &[u8], value: &[u8]) {
    let name = name.get(..name.len().min(255)).unwrap_or_default();
    let value = value
        .get(..value.len().min(u32::MAX as usize))
        .unwrap_or_default();
    out.put_u8(name.len() as u8);
    out.extend_from_slice(name);
    out.put_u32(value.len() as u32);
    out.extend_from_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lookup_is_case_insensitive() {
        let mut m = Metadata::new();
        m.push("Socket-Type", "DEALER").unwrap();
        m.push_app_property("X-Color:blue").unwrap();
        assert_eq!(m.get("socket-type").unwrap(), "DEALER");
        assert_eq!(m.get("x-color").unwrap(), "blue");
        assert!(m.push_app_property("Color:blue").is_err());
        assert_eq!(m.push("", "x"), Err(MetadataError::BadName));
    }

    #[test]
    fn truncation_is_an_error() {
        let mut out = BytesMut::new();
        encode_property(&mut out, b"Socket-Type", b"REQ");
        let full = out.freeze();
        for cut in 1..full.len() {
            assert_eq!(
                Metadata::parse(&full.slice(..cut)),
                Err(MetadataError::Truncated),
                "cut {cut}"
            );
        }
        assert_eq!(
            Metadata::parse(&full).unwrap().get(SOCKET_TYPE).unwrap(),
            "REQ"
        );
        // A value length pointing far beyond the data.
        let bad = Bytes::from_static(&[1, b'a', 0xFF, 0xFF, 0xFF, 0xFF, 1]);
        assert_eq!(Metadata::parse(&bad), Err(MetadataError::Truncated));
    }

    proptest! {
        #[test]
        fn round_trip(props in proptest::collection::vec((proptest::collection::vec(any::<u8>(), 1..20), proptest::collection::vec(any::<u8>(), 0..40)), 0..6)) {
            let mut m = Metadata::new();
            for (n, v) in &props {
                m.push(n.clone(), v.clone()).unwrap();
            }
            let mut out = BytesMut::new();
            m.encode(&mut out);
            prop_assert_eq!(out.len(), m.encoded_len());
            let parsed = Metadata::parse(&out.freeze()).unwrap();
            prop_assert_eq!(parsed, m);
        }

        #[test]
        fn parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..100)) {
            let _ = Metadata::parse(&Bytes::from(data));
        }
    }
}
