//! CURVE at the API: key pairs in Z85 (`zmq_curve_keypair`, `zmq_curve_public`), the
//! capability query (`zmq_has`), and the typed CURVE options on [`Socket`].
//!
//! Owns: the user-facing forms of CURVE keys (32 raw bytes or 40 Z85 characters; a read
//! returns the form the caller's buffer size asks for, as `zmq_getsockopt` does). Must
//! never: leave a secret key's bytes behind in memory it allocated (secrets are wiped on
//! drop).

use zeroize::Zeroizing;
use zeroring_transports::z85;
use zeroring_transports::zmtp::mechanism::curve::{self, CurveSecretKey, KEY_LEN};

use crate::error::{Error, Result};
use crate::options::{decode_curve_key, num};
use crate::Socket;

/// A CURVE key pair in Z85 text (40 characters each), as `zmq_curve_keypair` gives it.
#[derive(Clone)]
pub struct CurveKeyPair {
    /// The public key.
    pub public: String,
    /// The secret key (wiped on drop).
    pub secret: Zeroizing<String>,
}

impl std::fmt::Debug for CurveKeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CurveKeyPair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

/// A fresh CURVE key pair (`zmq_curve_keypair`). Fails (EFAULT, as libzmq without
/// randomness) only when the OS gives no random bytes.
pub fn curve_keypair() -> Result<CurveKeyPair> {
    let (public, secret) = curve::keypair().map_err(|_| Error::EFAULT)?;
    Ok(CurveKeyPair {
        public: z85::encode(&public).map_err(|_| Error::EFAULT)?,
        secret: Zeroizing::new(z85::encode(secret.as_bytes()).map_err(|_| Error::EFAULT)?),
    })
}

/// The Z85 public key of a Z85 secret key (`zmq_curve_public`); EINVAL for text that is
/// not a 40-character Z85 key.
pub fn curve_public(secret_z85: &str) -> Result<String> {
    if secret_z85.len() != 40 {
        return Err(Error::EINVAL);
    }
    let raw = Zeroizing::new(decode_curve_key(secret_z85.as_bytes())?);
    let secret = CurveSecretKey::from_bytes(*raw);
    z85::encode(&secret.public_key()).map_err(|_| Error::EINVAL)
}

/// Whether a capability is built in (`zmq_has`): "ipc", "curve" → true; "pgm", "tipc",
/// "norm", "gssapi", "draft" and anything else → false.
pub fn has(capability: &str) -> bool {
    matches!(capability, "ipc" | "curve")
}

impl Socket {
    /// ZMQ_CURVE_SERVER: act as the CURVE server (needs only CURVE_SECRETKEY).
    pub fn set_curve_server(&self, on: bool) -> Result<()> {
        self.set_option(num::CURVE_SERVER, &i32::from(on).to_ne_bytes())
    }

    /// ZMQ_CURVE_SERVER.
    pub fn get_curve_server(&self) -> Result<bool> {
        let v = self.get_option(num::CURVE_SERVER)?;
        Ok(v.as_slice() != 0i32.to_ne_bytes())
    }

    /// ZMQ_CURVE_PUBLICKEY: 32 raw bytes or 40 Z85 characters.
    pub fn set_curve_publickey(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.set_option(num::CURVE_PUBLICKEY, key.as_ref())
    }

    /// ZMQ_CURVE_SECRETKEY: 32 raw bytes or 40 Z85 characters.
    pub fn set_curve_secretkey(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.set_option(num::CURVE_SECRETKEY, key.as_ref())
    }

    /// ZMQ_CURVE_SERVERKEY (makes this socket a CURVE client): 32 raw bytes or 40 Z85
    /// characters.
    pub fn set_curve_serverkey(&self, key: impl AsRef<[u8]>) -> Result<()> {
        self.set_option(num::CURVE_SERVERKEY, key.as_ref())
    }

    /// Reads a CURVE key option the way `zmq_getsockopt` does for a buffer of `buf_len`
    /// bytes: 32 → the raw key, 41 → Z85 text and a NUL; any other size → EINVAL.
    pub fn get_curve_key(&self, option: i32, buf_len: usize) -> Result<Zeroizing<Vec<u8>>> {
        if !matches!(
            option,
            num::CURVE_PUBLICKEY | num::CURVE_SECRETKEY | num::CURVE_SERVERKEY
        ) {
            return Err(Error::EINVAL);
        }
        let raw = Zeroizing::new(self.get_option(option)?);
        match buf_len {
            KEY_LEN => Ok(raw),
            41 => {
                let text = Zeroizing::new(z85::encode(&raw).map_err(|_| Error::EINVAL)?);
                let mut out = Zeroizing::new(Vec::with_capacity(41));
                out.extend_from_slice(text.as_bytes());
                out.push(0);
                Ok(out)
            }
            _ => Err(Error::EINVAL),
        }
    }
}
