//! The floor: blocking sockets, one message = `size` bytes on the stream, the same workloads
//! as the libraries run with nothing between the application and the kernel. Must never: add
//! work a library could not avoid (no framing, no copies beyond the read itself).

use super::*;

enum Listener {
    Tcp(TcpListener),
    /// The listener, and its socket file (removed when the listener goes).
    Unix(UnixListener, IpcFile),
}

enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Listener {
    fn new(t: Transport) -> io::Result<Listener> {
        match t {
            Transport::Tcp => Ok(Listener::Tcp(TcpListener::bind("127.0.0.1:0")?)),
            Transport::Ipc => {
                let p = ipc_path("raw");
                Ok(Listener::Unix(UnixListener::bind(&p)?, IpcFile(Some(p))))
            }
            Transport::Inproc => Err(unsupported("raw inproc")),
        }
    }
    fn endpoint(&self) -> String {
        match self {
            Listener::Tcp(l) => format!("tcp://{}", l.local_addr().expect("bound")),
            Listener::Unix(_, f) => format!(
                "ipc://{}",
                f.0.as_deref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default()
            ),
        }
    }
    fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Tcp(l) => {
                let (s, _) = l.accept()?;
                s.set_nodelay(true)?;
                Ok(Stream::Tcp(s))
            }
            Listener::Unix(l, _) => Ok(Stream::Unix(l.accept()?.0)),
        }
    }
}

fn connect(endpoint: &str) -> io::Result<Stream> {
    if let Some(a) = endpoint.strip_prefix("tcp://") {
        let s = TcpStream::connect(a)?;
        s.set_nodelay(true)?;
        Ok(Stream::Tcp(s))
    } else if let Some(p) = endpoint.strip_prefix("ipc://") {
        Ok(Stream::Unix(UnixStream::connect(p)?))
    } else {
        Err(unsupported("raw endpoints are tcp:// or ipc://"))
    }
}

struct Thr(Listener, Params);

impl ThrReceiver for Thr {
    fn endpoint(&self) -> String {
        self.0.endpoint()
    }
    fn run(&mut self) -> io::Result<Duration> {
        let mut s = BufReader::with_capacity(256 * 1024, self.0.accept()?);
        let mut buf = vec![0u8; self.1.size.max(1)];
        let msg = &mut buf[..self.1.size];
        s.read_exact(msg)?;
        let start = Instant::now();
        for _ in 1..self.1.count {
            s.read_exact(msg)?;
        }
        Ok(start.elapsed())
    }
}

pub(super) fn thr_receiver(p: Params) -> io::Result<Box<dyn ThrReceiver>> {
    Ok(Box::new(Thr(Listener::new(p.transport)?, p)))
}

pub(super) fn thr_sender(endpoint: &str, p: Params, received: fn()) -> io::Result<()> {
    // Batched writes, as a messaging library batches small messages.
    let mut w = BufWriter::with_capacity(256 * 1024, connect(endpoint)?);
    let msg = vec![0x5Au8; p.size];
    for _ in 0..p.count {
        w.write_all(&msg)?;
    }
    w.flush()?;
    received();
    Ok(())
}

struct Lat(Listener, Params);

impl LatClient for Lat {
    fn endpoint(&self) -> String {
        self.0.endpoint()
    }
    fn run(&mut self, warmup: u64, hist: &mut Histogram<u64>) -> io::Result<()> {
        let mut s = self.0.accept()?;
        let mut msg = vec![0x5Au8; self.1.size.max(1)];
        let n = self.1.size;
        for i in 0..warmup + self.1.count {
            let t = Instant::now();
            s.write_all(&msg[..n])?;
            s.read_exact(&mut msg[..n])?;
            if i >= warmup {
                record(hist, t);
            }
        }
        Ok(())
    }
}

pub(super) fn lat_client(p: Params) -> io::Result<Box<dyn LatClient>> {
    Ok(Box::new(Lat(Listener::new(p.transport)?, p)))
}

pub(super) fn lat_echo(endpoint: &str, p: Params, total: u64) -> io::Result<()> {
    let mut s = connect(endpoint)?;
    let mut msg = vec![0u8; p.size];
    for _ in 0..total {
        s.read_exact(&mut msg)?;
        s.write_all(&msg)?;
    }
    Ok(())
}
