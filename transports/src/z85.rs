//! Z85 (RFC 32): the printable encoding of binary keys.
//!
//! Owns: encode/decode and their errors. Must never: panic on bad input.

use std::fmt;

const ALPHABET: &[u8; 85] =
    b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

/// Reverse table: byte → digit value, 0xFF for bytes outside the alphabet.
const DECODER: [u8; 256] = {
    let mut t = [0xFFu8; 256];
    let mut i = 0;
    while i < 85 {
        t[ALPHABET[i] as usize] = i as u8;
        i += 1;
    }
    t
};

/// Why Z85 input was refused (libzmq: `zmq_z85_encode/decode` return NULL, EINVAL).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Z85Error {
    /// Encode input length is not a multiple of 4.
    EncodeLength { len: usize },
    /// Decode input length is not a multiple of 5.
    DecodeLength { len: usize },
    /// A character outside the Z85 alphabet.
    InvalidChar { position: usize, byte: u8 },
    /// A 5-character group whose value exceeds 0xFFFF_FFFF.
    Overflow { position: usize },
}

impl fmt::Display for Z85Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Z85Error::EncodeLength { len } => {
                write!(f, "Z85 encode: input length {len} is not a multiple of 4")
            }
            Z85Error::DecodeLength { len } => {
                write!(f, "Z85 decode: input length {len} is not a multiple of 5")
            }
            Z85Error::InvalidChar { position, byte } => write!(
                f,
                "Z85 decode: byte 0x{byte:02x} at position {position} is not a Z85 character"
            ),
            Z85Error::Overflow { position } => write!(
                f,
                "Z85 decode: the group at position {position} exceeds 0xFFFFFFFF"
            ),
        }
    }
}

impl std::error::Error for Z85Error {}

impl Z85Error {
    /// The errno libzmq sets.
    pub fn errno(&self) -> crate::errno::Errno {
        crate::errno::Errno::EINVAL
    }
}

/// Encodes `data` (length a multiple of 4) as Z85 text.
pub fn encode(data: &[u8]) -> Result<String, Z85Error> {
    if data.len() % 4 != 0 {
        return Err(Z85Error::EncodeLength { len: data.len() });
    }
    let mut out = String::with_capacity(data.len() / 4 * 5);
    for chunk in data.chunks_exact(4) {
        let mut value = u32::from_be_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
        let mut digits = [0u8; 5];
        for d in digits.iter_mut().rev() {
            *d = ALPHABET[(value % 85) as usize];
            value /= 85;
        }
        for d in digits {
            out.push(char::from(d));
        }
    }
    Ok(out)
}

/// Decodes Z85 text (length a multiple of 5).
pub fn decode(text: impl AsRef<[u8]>) -> Result<Vec<u8>, Z85Error> {
    let text = text.as_ref();
    if text.len() % 5 != 0 {
        return Err(Z85Error::DecodeLength { len: text.len() });
    }
    let mut out = Vec::with_capacity(text.len() / 5 * 4);
    for (g, group) in text.chunks_exact(5).enumerate() {
        let mut value: u64 = 0;
        for (i, &b) in group.iter().enumerate() {
            let digit = DECODER[usize::from(b)];
            if digit == 0xFF {
                return Err(Z85Error::InvalidChar {
                    position: g * 5 + i,
                    byte: b,
                });
            }
            value = value * 85 + u64::from(digit);
        }
        let value = u32::try_from(value).map_err(|_| Z85Error::Overflow { position: g * 5 })?;
        out.extend_from_slice(&value.to_be_bytes());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc32_vector() {
        let bin = [0x86, 0x4F, 0xD2, 0x6F, 0xB5, 0x59, 0xF7, 0x5B];
        assert_eq!(encode(&bin).unwrap(), "HelloWorld");
        assert_eq!(decode("HelloWorld").unwrap(), bin);
    }

    #[test]
    fn errors() {
        assert_eq!(encode(&[1, 2, 3]), Err(Z85Error::EncodeLength { len: 3 }));
        assert_eq!(decode("Hell"), Err(Z85Error::DecodeLength { len: 4 }));
        assert_eq!(
            decode("Hell\"World"),
            Err(Z85Error::InvalidChar {
                position: 4,
                byte: b'"'
            })
        );
        assert_eq!(decode("#####"), Err(Z85Error::Overflow { position: 0 }));
        assert_eq!(decode("%nSc0").unwrap(), [0xFF; 4]);
        assert_eq!(encode(&[]).unwrap(), "");
    }

    proptest! {
        #[test]
        fn round_trip(words in proptest::collection::vec(any::<[u8; 4]>(), 0..16)) {
            let data: Vec<u8> = words.concat();
            let text = encode(&data).unwrap();
            prop_assert_eq!(text.len(), data.len() / 4 * 5);
            prop_assert_eq!(decode(&text).unwrap(), data);
        }

        #[test]
        fn decode_never_panics(text in proptest::collection::vec(any::<u8>(), 0..40)) {
            let _ = decode(&text);
        }
    }
}
