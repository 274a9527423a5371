//! A whole connection — `zeroring_transports::driver::StreamCore`, the sans-IO half of every
//! tcp/ipc stream — fed arbitrary bytes, timer ticks, send completions, end of stream, ZAP
//! verdicts and the socket's side of its pipes (reads, writes), in either role (the mechanism
//! decides it: NULL, PLAIN client, PLAIN server) and for every socket type, STREAM included.
//!
//! The first two bytes choose the configuration; with bit 0 of the second set, an honest peer
//! (a real `Connection` of a compatible type and mechanism) completes the handshake first, so
//! the fuzzer spends its time after READY; its later frames can be interleaved with raw
//! garbage. Network bytes may arrive through a lent body (`StreamCore::lend_body`, filled and
//! given back as a receive into it would), as the stream driver does for large bodies.
//! Checked at every step:
//! - nothing panics;
//! - heap in use stays under 2 MiB + 256 bytes per input byte (a peer's declared sizes, held
//!   messages, stalled bytes and partial messages are all bounded by what it really sent);
//! - the socket only ever sees whole messages (a reader that runs dry never stops mid-message)
//!   and sees nothing before the handshake succeeded;
//! - once `drive` says Done, it stays Done and nothing more is sent or wanted;
//! - the honest handshake succeeds (where the configuration allows it).
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zeroring_engine::pipe::{pipe, PipeConfig, PipeReader, PipeWriter, ReadError};
use zeroring_engine::Msg;
use zeroring_transports::driver::{PipeEnds, SocketLink, Status, StreamCore};
use zeroring_transports::monitor::MonitorEvent;
use zeroring_transports::zmtp::{
    Connection, ConnectionConfig, Event, HeartbeatConfig, MechanismConfig, PeerInfo, ZapReply,
};
use zeroring_transports::SocketType;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

fn grew(by: isize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: forwards to the system allocator unchanged; only counts live bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grew(layout.size() as isize);
        // SAFETY: same contract as our caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: same contract as our caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grew(new_size as isize - layout.size() as isize);
        // SAFETY: same contract as our caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// The socket's ends of the pipes the core asked for.
struct FuzzLink {
    hwm: usize,
    ends: Mutex<Option<(PipeWriter<Msg>, PipeReader<Msg>)>>,
}

impl FuzzLink {
    fn pipes(&self) -> Option<PipeEnds> {
        let mut ends = self.ends.lock().unwrap();
        if ends.is_some() {
            // One connection attaches once.
            return None;
        }
        let (to_socket, socket_reader) = pipe(PipeConfig::with_hwm(self.hwm));
        let (socket_writer, from_socket) = pipe(PipeConfig::with_hwm(self.hwm));
        *ends = Some((socket_writer, socket_reader));
        Some(PipeEnds {
            to_socket,
            from_socket,
            handover: None,
        })
    }
}

impl SocketLink for FuzzLink {
    fn attach(&self, _peer: &PeerInfo, _endpoint: &str, _key: Option<u64>) -> Option<PipeEnds> {
        self.pipes()
    }
    fn attach_raw(
        &self,
        _endpoint: &str,
        _key: Option<u64>,
        _metadata: Option<Arc<zeroring_engine::MsgMetadata>>,
    ) -> Option<PipeEnds> {
        self.pipes()
    }
    fn monitor(&self, _event: MonitorEvent, _value: u32, _endpoint: &str) {}
}

/// (core's type, honest peer's type)
const PAIRS: [(SocketType, SocketType); 12] = [
    (SocketType::Pair, SocketType::Pair),
    (SocketType::Push, SocketType::Pull),
    (SocketType::Pull, SocketType::Push),
    (SocketType::Req, SocketType::Rep),
    (SocketType::Rep, SocketType::Req),
    (SocketType::Dealer, SocketType::Router),
    (SocketType::Router, SocketType::Dealer),
    (SocketType::Pub, SocketType::Sub),
    (SocketType::Sub, SocketType::Pub),
    (SocketType::XPub, SocketType::XSub),
    (SocketType::XSub, SocketType::XPub),
    (SocketType::Stream, SocketType::Stream),
];

fn plain_client() -> MechanismConfig {
    MechanismConfig::PlainClient {
        username: Bytes::from_static(b"admin"),
        password: Bytes::from_static(b"secret"),
    }
}

/// Takes `n` bytes (fewer at the end).
fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (a, b) = data.split_at(n.min(data.len()));
    *data = b;
    a
}

fn byte(data: &mut &[u8]) -> u8 {
    take(data, 1).first().copied().unwrap_or(0)
}

/// The honest peer takes in its events, and its ZAP handler says yes.
fn peer_events(peer: &mut Connection, now: Instant) {
    while let Some(e) = peer.poll_event() {
        if let Event::ZapRequest(req) = e {
            let mut r = ZapReply::ok("user");
            r.request_id = req.request_id.clone();
            peer.zap_reply(r, now);
        }
    }
}

struct Harness {
    core: StreamCore,
    link: Arc<FuzzLink>,
    peer: Option<Connection>,
    now: Instant,
    /// A send is in flight (handed out, not completed).
    sending: bool,
    /// Auto-complete sends (and hand their bytes to the honest peer).
    auto_send: bool,
    /// The socket has read a part with MORE and not yet the last part.
    socket_mid: bool,
    done: bool,
    raw: bool,
}

impl Harness {
    /// Lets the core move, then carries its output to the honest peer when sends complete
    /// automatically.
    fn step(&mut self) {
        if self.done {
            assert_eq!(self.core.drive(), Status::Done, "Done is final");
            assert!(self.core.poll_transmit(64).is_none());
            assert!(!self.core.wants_recv());
            assert!(self.core.poll_timeout().is_none());
            return;
        }
        if self.core.drive() == Status::Done {
            self.done = true;
            return;
        }
        if !self.sending {
            if let Some(bufs) = self.core.poll_transmit(64) {
                self.sending = true;
                if self.auto_send {
                    if let Some(peer) = self.peer.as_mut() {
                        for b in bufs {
                            peer.handle_input(b.into_bytes(), self.now);
                        }
                        peer_events(peer, self.now);
                    }
                    self.sending = false;
                    self.core.handle_send_result(true);
                }
            }
        }
    }

    /// Bytes from the network, as the stream driver hands them in. With `lend`, a large body
    /// under way is first lent (as for `Op::RecvInto`) and filled from the front of `chunk`,
    /// then given back; the rest goes in as ordinary input.
    fn feed(&mut self, chunk: &[u8], lend: bool) {
        let mut rest = chunk;
        if lend {
            if let Some(mut buf) = self.core.lend_body(1) {
                let n = buf.extend_from_slice(rest);
                rest = &rest[n..];
                self.core.return_body(buf, self.now);
                self.step();
            }
        }
        if !rest.is_empty() {
            self.core
                .handle_input(Bytes::copy_from_slice(rest), self.now);
        }
    }

    /// Whatever the honest peer has to say goes to the core, cut at `split`.
    fn peer_to_core(&mut self, split: usize, lend: bool) {
        let Some(peer) = self.peer.as_mut() else {
            return;
        };
        let mut out = Vec::new();
        while let Some(chunk) = peer.poll_transmit() {
            out.extend_from_slice(&chunk);
        }
        if out.is_empty() {
            return;
        }
        let split = split.min(out.len());
        for part in [&out[..split], &out[split..]] {
            if !part.is_empty() {
                self.feed(part, lend);
                self.step();
            }
        }
    }

    /// The socket reads up to `n` messages; a reader that runs dry never stops mid-message.
    fn socket_reads(&mut self, n: usize) {
        let mut ends = self.link.ends.lock().unwrap();
        let Some((_, reader)) = ends.as_mut() else {
            return;
        };
        for _ in 0..n {
            match reader.read() {
                Ok(m) => {
                    assert!(
                        self.raw || self.core.handshake_done(),
                        "a message before the handshake"
                    );
                    self.socket_mid = m.more();
                }
                Err(ReadError::Empty) => {
                    assert!(!self.socket_mid, "the socket saw part of a message");
                    break;
                }
                Err(ReadError::Closed) => break,
            }
        }
        drop(ends);
        self.core.pipe_writable(self.now);
    }

    /// The socket sends a message (one part or the last part).
    fn socket_writes(&mut self, body: &[u8], more: bool) {
        let mut ends = self.link.ends.lock().unwrap();
        if let Some((writer, _)) = ends.as_mut() {
            let _ = writer.write(Msg::from_bytes(Bytes::copy_from_slice(body)).with_more(more));
            if !more {
                writer.flush();
            }
        }
    }
}

fuzz_target!(|input: &[u8]| {
    let mut data = input;
    let cfg_byte = byte(&mut data);
    let flags = byte(&mut data);
    let (local, remote) = PAIRS[usize::from(cfg_byte) % PAIRS.len()];
    let raw = local == SocketType::Stream;
    // Which side holds PLAIN's server role follows from the mechanism, not from who connected.
    let mech_kind = (cfg_byte / 16) % 3;
    let (mech, peer_mech) = match mech_kind {
        0 => (MechanismConfig::Null, MechanismConfig::Null),
        1 => (plain_client(), MechanismConfig::PlainServer),
        _ => (MechanismConfig::PlainServer, plain_client()),
    };
    let t0 = Instant::now();
    let mut config = ConnectionConfig::new(local);
    config.mechanism = mech;
    config.zap.handler_available = flags & 0x02 != 0;
    config.heartbeat = HeartbeatConfig {
        interval: (flags & 0x04 != 0).then(|| Duration::from_millis(100)),
        ttl: Duration::from_millis(if flags & 0x08 != 0 { 500 } else { 0 }),
        timeout: None,
    };
    config.max_msg_size = if flags & 0x10 != 0 { 300 } else { -1 };
    // A small incomplete-message limit so that going past it is reachable.
    config.max_incomplete_msg = if flags & 0x20 != 0 { 4096 } else { 1 << 20 };
    config.routing_id = Bytes::from_static(b"core");
    let link = Arc::new(FuzzLink {
        hwm: if flags & 0x40 != 0 { 2 } else { 1000 },
        ends: Mutex::new(None),
    });
    let dyn_link: Arc<dyn SocketLink> = link.clone();

    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);

    let Ok(mut core) = StreamCore::new(config, dyn_link, "tcp://fuzz".into(), 3, t0) else {
        return;
    };
    core.start();
    let peer = if raw {
        None
    } else {
        let mut pc = ConnectionConfig::new(remote);
        pc.mechanism = peer_mech;
        pc.zap.handler_available = true;
        Connection::new(pc, t0).ok()
    };
    let honest = flags & 0x01 != 0 && !raw;
    let mut h = Harness {
        core,
        link,
        peer,
        now: t0,
        sending: false,
        // The honest handshake needs its sends carried; the flags decide after it.
        auto_send: flags & 0x80 == 0 || honest,
        socket_mid: false,
        done: false,
        raw,
    };
    h.step();

    if honest {
        // The honest handshake (ZAP answered 200 on either side).
        for _ in 0..16 {
            h.peer_to_core(usize::MAX, false);
            while let Some(req) = h.core.poll_zap_request() {
                let mut r = ZapReply::ok("user");
                r.request_id = req.request_id;
                h.core.zap_reply(Ok(r), h.now);
            }
            if let Some(peer) = h.peer.as_mut() {
                peer_events(peer, h.now);
            }
            h.step();
            if h.done || (h.core.is_ready() && h.peer.as_ref().is_some_and(|p| p.is_ready())) {
                break;
            }
        }
        h.auto_send = flags & 0x80 == 0;
        // An honest peer always gets through, unless this side is a PLAIN server without a
        // ZAP handler (libzmq refuses every client then).
        if mech_kind != 2 || flags & 0x02 != 0 {
            assert!(h.core.is_ready() && !h.done, "the honest handshake failed");
        }
    }

    while !data.is_empty() {
        let op = byte(&mut data);
        match op % 9 {
            0 | 1 => {
                // Raw bytes from the network.
                let n = usize::from(byte(&mut data)) + 1;
                let chunk = take(&mut data, n);
                if !chunk.is_empty() {
                    h.feed(chunk, op & 0x80 != 0);
                }
            }
            2 => {
                // A frame from the honest peer (a command when op says so), cut anywhere.
                let n = usize::from(byte(&mut data));
                let body = Bytes::copy_from_slice(take(&mut data, n));
                let split = usize::from(byte(&mut data));
                if let Some(peer) = h.peer.as_mut() {
                    if peer.is_ready() {
                        let _ = match op / 9 % 3 {
                            0 => peer.send_frame(body, op & 0x80 != 0),
                            1 => peer.send_subscribe(&body),
                            _ => peer.send_cancel(&body),
                        };
                    }
                }
                h.peer_to_core(split, op & 0x40 != 0);
            }
            3 => {
                // Time passes; a due deadline fires.
                let ms = u64::from(byte(&mut data));
                h.now += Duration::from_millis(ms * ms);
                if h.core.poll_timeout().is_some_and(|d| d <= h.now) {
                    h.core.handle_timeout(h.now);
                }
            }
            4 => {
                let n = usize::from(op / 9) + 1;
                h.socket_reads(n);
            }
            5 => {
                let n = usize::from(byte(&mut data));
                let body = take(&mut data, n).to_vec();
                h.socket_writes(&body, op & 0x80 != 0);
            }
            6 => {
                if h.sending {
                    h.sending = false;
                    h.core.handle_send_result(op & 0x80 == 0);
                }
            }
            7 => {
                if op & 0x80 != 0 {
                    h.core.handle_eof(h.now);
                } else {
                    h.core.pipe_writable(h.now);
                }
            }
            _ => {
                if let Some(req) = h.core.poll_zap_request() {
                    let mut r = ZapReply::ok("user");
                    r.request_id = if op & 0x80 != 0 {
                        Bytes::from_static(b"bogus")
                    } else {
                        req.request_id
                    };
                    r.status_code = [200, 300, 400, 500, 201][usize::from(op / 9) % 5];
                    h.core.zap_reply(Ok(r), h.now);
                }
            }
        }
        h.step();
        let peak = PEAK.load(Ordering::Relaxed) - base;
        let bound = (2 << 20) + 256 * input.len() as isize;
        assert!(
            peak <= bound,
            "{peak} bytes of heap for {} input bytes",
            input.len()
        );
    }
    // The socket drains what is left: still whole messages only.
    h.socket_reads(usize::MAX);
    h.core.stop();
    h.done = true;
    h.step();
});
