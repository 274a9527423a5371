//! The two libraries behind one small interface, for the conns workload's processes: a
//! context makes sockets of the four kinds it uses, a socket binds, connects, sends and
//! receives with the bounds the workload needs. Must never: block past [`super::STALL_MS`].

use std::io;

use super::STALL_MS;
use crate::subject::Subject;

/// The socket types this workload uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Push,
    Pull,
    XPub,
    Sub,
}

pub(super) trait Ctx {
    /// A socket with LINGER 0 and bounded receives; listening kinds get a large BACKLOG, XPUB
    /// gets XPUB_VERBOSE and no send high-water mark.
    fn socket(&self, kind: Kind) -> io::Result<Box<dyn Sock>>;
}

pub(super) trait Sock {
    /// Binds loopback tcp on a free port and returns the endpoint.
    fn bind_tcp(&self) -> io::Result<String>;
    fn connect(&self, endpoint: &str) -> io::Result<()>;
    fn send(&self, data: &[u8]) -> io::Result<()>;
    /// Receives one part; `false` when `dontwait` and nothing is there.
    fn recv(&mut self, dontwait: bool) -> io::Result<bool>;
    /// The part received last.
    fn last(&self) -> &[u8];
    fn subscribe_all(&self) -> io::Result<()>;
}

pub(super) fn new_ctx(subject: Subject, io_threads: i32) -> io::Result<Box<dyn Ctx>> {
    match subject {
        Subject::Zeroring => zr::ctx(io_threads),
        #[cfg(feature = "libzmq")]
        Subject::Libzmq => lz::ctx(io_threads),
        other => Err(io::Error::new(
            io::ErrorKind::Unsupported,
            format!("{other:?} has no conns workload"),
        )),
    }
}

mod zr {
    use super::*;
    use zeroring::{Context, Msg, Socket, SocketType, DONTWAIT};

    fn zerr(e: zeroring::Error) -> io::Error {
        io::Error::other(format!("zeroring: {e:?}"))
    }

    struct C(Context);
    struct S(Socket, Option<Msg>);

    pub(super) fn ctx(io_threads: i32) -> io::Result<Box<dyn Ctx>> {
        let c = Context::new();
        c.set_io_threads(io_threads).map_err(zerr)?;
        Ok(Box::new(C(c)))
    }

    impl Ctx for C {
        fn socket(&self, kind: Kind) -> io::Result<Box<dyn Sock>> {
            let t = match kind {
                Kind::Push => SocketType::Push,
                Kind::Pull => SocketType::Pull,
                Kind::XPub => SocketType::XPub,
                Kind::Sub => SocketType::Sub,
            };
            let s = self.0.socket(t).map_err(zerr)?;
            s.set_linger(0).map_err(zerr)?;
            s.set_rcvtimeo(STALL_MS).map_err(zerr)?;
            s.set_sndtimeo(STALL_MS).map_err(zerr)?;
            if matches!(kind, Kind::Pull | Kind::XPub) {
                s.set_backlog(4096).map_err(zerr)?;
            }
            if kind == Kind::XPub {
                s.set_xpub_verbose(true).map_err(zerr)?;
                s.set_sndhwm(0).map_err(zerr)?;
            }
            Ok(Box::new(S(s, None)))
        }
    }

    impl Sock for S {
        fn bind_tcp(&self) -> io::Result<String> {
            self.0.bind("tcp://127.0.0.1:*").map_err(zerr)?;
            self.0
                .get_last_endpoint()
                .map_err(zerr)?
                .map_err(|_| io::Error::other("endpoint"))
        }
        fn connect(&self, endpoint: &str) -> io::Result<()> {
            self.0.connect(endpoint).map_err(zerr)
        }
        fn send(&self, data: &[u8]) -> io::Result<()> {
            self.0.send(data, 0).map_err(zerr)
        }
        fn recv(&mut self, dontwait: bool) -> io::Result<bool> {
            match self.0.recv_msg(if dontwait { DONTWAIT } else { 0 }) {
                Ok(m) => {
                    self.1 = Some(m);
                    Ok(true)
                }
                Err(zeroring::Error::EAGAIN) if dontwait => Ok(false),
                Err(e) => Err(zerr(e)),
            }
        }
        fn last(&self) -> &[u8] {
            self.1.as_ref().map_or(&[], |m| m.data())
        }
        fn subscribe_all(&self) -> io::Result<()> {
            self.0.set_subscribe(b"").map_err(zerr)
        }
    }
}

#[cfg(feature = "libzmq")]
mod lz {
    use super::*;

    fn zerr(e: zmq::Error) -> io::Error {
        io::Error::other(format!("libzmq: {e}"))
    }

    struct C(zmq::Context);
    struct S(zmq::Socket, zmq::Message);

    pub(super) fn ctx(io_threads: i32) -> io::Result<Box<dyn Ctx>> {
        let c = zmq::Context::new();
        c.set_io_threads(io_threads).map_err(zerr)?;
        Ok(Box::new(C(c)))
    }

    impl Ctx for C {
        fn socket(&self, kind: Kind) -> io::Result<Box<dyn Sock>> {
            let t = match kind {
                Kind::Push => zmq::PUSH,
                Kind::Pull => zmq::PULL,
                Kind::XPub => zmq::XPUB,
                Kind::Sub => zmq::SUB,
            };
            let s = self.0.socket(t).map_err(zerr)?;
            s.set_linger(0).map_err(zerr)?;
            s.set_rcvtimeo(STALL_MS).map_err(zerr)?;
            s.set_sndtimeo(STALL_MS).map_err(zerr)?;
            if matches!(kind, Kind::Pull | Kind::XPub) {
                s.set_backlog(4096).map_err(zerr)?;
            }
            if kind == Kind::XPub {
                s.set_xpub_verbose(true).map_err(zerr)?;
                s.set_sndhwm(0).map_err(zerr)?;
            }
            Ok(Box::new(S(s, zmq::Message::new())))
        }
    }

    impl Sock for S {
        fn bind_tcp(&self) -> io::Result<String> {
            self.0.bind("tcp://127.0.0.1:*").map_err(zerr)?;
            self.0
                .get_last_endpoint()
                .map_err(zerr)?
                .map_err(|_| io::Error::other("endpoint"))
        }
        fn connect(&self, endpoint: &str) -> io::Result<()> {
            self.0.connect(endpoint).map_err(zerr)
        }
        fn send(&self, data: &[u8]) -> io::Result<()> {
            self.0.send(data, 0).map_err(zerr)
        }
        fn recv(&mut self, dontwait: bool) -> io::Result<bool> {
            match self
                .0
                .recv(&mut self.1, if dontwait { zmq::DONTWAIT } else { 0 })
            {
                Ok(()) => Ok(true),
                Err(zmq::Error::EAGAIN) if dontwait => Ok(false),
                Err(e) => Err(zerr(e)),
            }
        }
        fn last(&self) -> &[u8] {
            &self.1
        }
        fn subscribe_all(&self) -> io::Result<()> {
            self.0.set_subscribe(b"").map_err(zerr)
        }
    }
}
