//! The ZMTP frame encoder: batches headers and small bodies into one buffer
//! (many frames per write) and queues large bodies as separate [`SendBuf`]s (shared
//! `Bytes` or a part's pooled block) so a driver can send them with an iovec without
//! copying and without allocating.
//!
//! Owns: outbound framing and the queue of output chunks. Must never: copy a
//! body larger than the copy threshold, or reorder bytes.

use std::collections::VecDeque;

use bytes::{BufMut, Bytes, BytesMut};
use zeroring_engine::SendBuf;

use super::frame::{header_len, put_header, FLAG_COMMAND, FLAG_MORE};

/// The batch buffer's capacity once a connection is busy.
const BATCH_CAPACITY: usize = 8192;

/// Default: bodies up to this size are copied into the batch buffer.
pub const DEFAULT_COPY_THRESHOLD: usize = 2048;

/// Batches ZMTP frames into output chunks.
#[derive(Debug)]
pub struct Encoder {
    batch: BytesMut,
    /// The other batch buffer (see `room`): empty, its storage possibly still held by a chunk
    /// whose send is in flight.
    spare: BytesMut,
    queue: VecDeque<SendBuf>,
    copy_threshold: usize,
    pending: usize,
    /// What the batch was last grown to (256 B up to `BATCH_CAPACITY`, doubling per refill).
    grown: usize,
}

impl Default for Encoder {
    fn default() -> Self {
        Self::new(DEFAULT_COPY_THRESHOLD)
    }
}

impl Encoder {
    /// An encoder that copies bodies of at most `copy_threshold` bytes.
    pub fn new(copy_threshold: usize) -> Self {
        Encoder {
            // Grown on demand (see `room`): an idle connection only ever wrote its handshake.
            batch: BytesMut::new(),
            spare: BytesMut::new(),
            queue: VecDeque::new(),
            copy_threshold,
            pending: 0,
            grown: 0,
        }
    }

    /// Appends raw bytes (the greeting).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.room(bytes.len());
        self.batch.extend_from_slice(bytes);
        self.pending += bytes.len();
    }

    /// Bodies of at most this many bytes are copied into the batch; larger ones are queued.
    #[inline]
    pub fn copy_threshold(&self) -> usize {
        self.copy_threshold
    }

    /// Encodes one frame.
    pub fn frame(&mut self, more: bool, command: bool, body: &Bytes) {
        self.frame_with_prefix(more, command, &[], body);
    }

    /// Encodes one frame whose body is `prefix` followed by `body` (SUBSCRIBE's
    /// name, a 3.0 subscription's `\x01`): the prefix is copied, the body is
    /// batched or queued as usual.
    pub fn frame_with_prefix(&mut self, more: bool, command: bool, prefix: &[u8], body: &Bytes) {
        if body.len() <= self.copy_threshold {
            self.copied_frame(flags(more, command), prefix, body);
        } else {
            self.queued_frame(flags(more, command), prefix, SendBuf::Shared(body.clone()));
        }
    }

    /// Encodes one data frame whose body is shared (a part's pooled block, or `Bytes`): copied
    /// into the batch up to the copy threshold, queued as it is above (no copy, no allocation).
    pub fn frame_buf(&mut self, more: bool, body: SendBuf) {
        if body.len() <= self.copy_threshold {
            self.copied_frame(flags(more, false), &[], &body);
        } else {
            self.queued_frame(flags(more, false), &[], body);
        }
    }

    /// Encodes one frame, copying `body` into the batch whatever its size (for bodies that
    /// are not `Bytes`, such as a `Msg`'s inline bytes).
    pub fn frame_copied(&mut self, more: bool, command: bool, body: &[u8]) {
        self.copied_frame(flags(more, command), &[], body);
    }

    /// A frame written whole into the batch.
    fn copied_frame(&mut self, flags: u8, prefix: &[u8], body: &[u8]) {
        self.room(9 + prefix.len() + body.len());
        self.header(flags, prefix.len() + body.len());
        self.batch.extend_from_slice(prefix);
        self.batch.extend_from_slice(body);
        self.pending += prefix.len() + body.len();
    }

    /// A frame whose body is queued as it is, after what the batch holds so far. Its header
    /// (and prefix) travel in an inline buffer of their own where they fit: a run of large
    /// bodies splits no shared batch buffer per frame (which a send in flight would keep,
    /// making the batch's next growth an allocation).
    fn queued_frame(&mut self, flags: u8, prefix: &[u8], body: SendBuf) {
        if !self.batch.is_empty() {
            self.queue
                .push_back(SendBuf::Shared(self.batch.split().freeze()));
        }
        let size = prefix.len() + body.len();
        let head_len = header_len(size) + prefix.len();
        if head_len <= SendBuf::INLINE_MAX {
            let mut bytes = [0; SendBuf::INLINE_MAX];
            let mut w = &mut bytes[..];
            put_header(&mut w, flags, size);
            w.put_slice(prefix);
            self.queue.push_back(SendBuf::Inline {
                bytes,
                len: head_len as u8,
            });
            self.pending += head_len;
        } else {
            self.room(head_len);
            self.header(flags, size);
            self.batch.extend_from_slice(prefix);
            self.pending += prefix.len();
            self.queue
                .push_back(SendBuf::Shared(self.batch.split().freeze()));
        }
        self.pending += body.len();
        self.queue.push_back(body);
    }

    /// Encodes a data frame whose body is the first `len` bytes of `buf` (a `Msg`'s inline
    /// buffer): header and body go into the batch with fixed-size moves, no `memcpy` call.
    #[inline(always)]
    pub fn inline_frame<const N: usize>(&mut self, more: bool, buf: &[u8; N], len: usize) {
        const { assert!(N <= u8::MAX as usize) };
        let len = len.min(N);
        self.room(2 + N);
        let spare = self.batch.spare_capacity_mut();
        if spare.len() < 2 + N {
            return self.frame_copied(more, false, &buf[..len]);
        }
        let dst = spare.as_mut_ptr().cast::<u8>();
        // SAFETY: `dst` points to at least `2 + N` bytes of the batch's spare capacity
        // (checked above), which nothing else refers to; `buf` is `N` readable bytes that
        // cannot overlap the batch. The whole buffer is moved with a fixed size (a few vector
        // moves) rather than `len` bytes through a `memcpy` call; `set_len` then covers
        // only the `2 + len` bytes of the frame, all written here.
        unsafe {
            dst.write(if more { FLAG_MORE } else { 0 });
            dst.add(1).write(len as u8);
            std::ptr::copy_nonoverlapping(buf.as_ptr(), dst.add(2), N);
            self.batch.set_len(self.batch.len() + 2 + len);
        }
        self.pending += 2 + len;
    }

    /// Encodes a command frame from its name and data parts (all copied: for
    /// handshake and control commands, which are small).
    pub fn command(&mut self, name: &[u8], parts: &[&[u8]]) {
        let name_len = u8::try_from(name.len()).unwrap_or(u8::MAX);
        let name = name.get(..usize::from(name_len)).unwrap_or_default();
        let size = 1 + name.len() + parts.iter().map(|p| p.len()).sum::<usize>();
        self.room(9 + size);
        self.header(FLAG_COMMAND, size);
        self.batch.put_u8(name_len);
        self.batch.extend_from_slice(name);
        for p in parts {
            self.batch.extend_from_slice(p);
        }
        self.pending += size;
    }

    /// Makes room for `n` more bytes in the batch. Capacity grows geometrically from a small
    /// start up to [`BATCH_CAPACITY`], so a busy connection soon batches into reused buffers
    /// (reclaimed once the chunks handed out are dropped) while an idle one keeps only what
    /// its handshake needed.
    #[inline]
    fn room(&mut self, n: usize) {
        if self.batch.capacity() - self.batch.len() < n {
            self.refill(n);
        }
    }

    /// [`room`](Self::room) when the batch is out of room.
    ///
    /// Grown from the size the batch has reached (not from the tail a split left): a busy
    /// connection's refill asks for the whole batch at once instead of a chain of doublings
    /// from 256 bytes. A batch buffer is reclaimed in place when every chunk handed out from
    /// it is gone. When one is still being sent, the encoder moves to its other buffer, whose
    /// chunks went out a send earlier (the bytes not handed out yet are copied there, at most
    /// a batch): so a connection that always has a send in flight when its batch fills
    /// alternates between two buffers instead of allocating each time (measured: one
    /// allocation per ~800 frames of 8 B over ipc, per refill, which the allocation test
    /// caught under load). Only when both are held is one allocated; the buffer left behind
    /// becomes the spare. A batch still growing to [`BATCH_CAPACITY`] (a connection that has
    /// only shaken hands, or is just getting busy) grows in place as before and keeps no
    /// spare: an idle connection holds one small buffer.
    #[cold]
    #[inline(never)]
    fn refill(&mut self, n: usize) {
        let busy = self.grown == BATCH_CAPACITY;
        self.grown = (self.grown * 2).clamp(256, BATCH_CAPACITY);
        let want = n.max(self.grown);
        if self.batch.try_reclaim(want) {
            return;
        }
        if !busy {
            self.batch.reserve(want);
            return;
        }
        let pending = self.batch.len();
        let mut next = std::mem::take(&mut self.spare);
        if !next.try_reclaim(pending + want) {
            next = BytesMut::with_capacity(pending + want);
        }
        next.extend_from_slice(&self.batch);
        self.batch.clear();
        self.spare = std::mem::replace(&mut self.batch, next);
    }

    fn header(&mut self, flags: u8, size: usize) {
        self.pending += put_header(&mut self.batch, flags, size);
    }

    /// The next chunk to write, in order; `None` when everything was handed out.
    pub fn next_chunk(&mut self) -> Option<SendBuf> {
        let chunk = match self.queue.pop_front() {
            Some(c) => c,
            None if !self.batch.is_empty() => SendBuf::Shared(self.batch.split().freeze()),
            None => return None,
        };
        self.pending -= chunk.len();
        Some(chunk)
    }

    /// Whether there is nothing left to hand out.
    pub fn is_empty(&self) -> bool {
        self.pending == 0
    }

    /// Bytes queued and not yet handed out.
    pub fn pending_bytes(&self) -> usize {
        self.pending
    }
}

/// A frame's flags byte, without the length bit (`put_header` adds it).
#[inline]
fn flags(more: bool, command: bool) -> u8 {
    let mut flags = 0;
    if more {
        flags |= FLAG_MORE;
    }
    if command {
        flags |= FLAG_COMMAND;
    }
    flags
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A busy connection whose batch fills while a send still holds the chunk before: the
    /// encoder moves to its other buffer, and the time after to the first one again (freed
    /// by then), instead of allocating at each refill; the bytes come out whole and in order.
    #[test]
    fn a_busy_batch_alternates_between_two_buffers_while_a_send_is_in_flight() {
        let mut enc = Encoder::default();
        let mut wire = Vec::new();
        let mut expect = Vec::new();
        let mut frame = |enc: &mut Encoder, i: usize| {
            let body = [i as u8; 100];
            enc.frame_copied(false, false, &body);
            expect.extend_from_slice(&[0, 100]);
            expect.extend_from_slice(&body);
        };
        // Busy: the batch has grown to its full size.
        let mut i = 0;
        while enc.grown < BATCH_CAPACITY || enc.batch.capacity() < 2 * 102 {
            frame(&mut enc, i);
            i += 1;
            while let Some(c) = enc.next_chunk() {
                wire.extend_from_slice(&c);
            }
        }
        // Fills the batch until it must refill, holding each chunk handed out (the send in
        // flight) until the refill after, and records where each refill's first chunk starts.
        let mut in_flight: Option<SendBuf> = None;
        let mut first_of_each = Vec::new();
        for _round in 0..4 {
            let before = enc.batch.as_ptr();
            while enc.batch.as_ptr() == before {
                frame(&mut enc, i);
                i += 1;
            }
            // Refilled: the send of the chunk before is done now.
            if let Some(c) = in_flight.take() {
                wire.extend_from_slice(&c);
            }
            let c = enc.next_chunk().unwrap();
            first_of_each.push(c.as_ptr() as usize);
            in_flight = Some(c);
        }
        wire.extend_from_slice(&in_flight.take().unwrap());
        while let Some(c) = enc.next_chunk() {
            wire.extend_from_slice(&c);
        }
        assert_eq!(wire, expect, "every byte once, in order");
        assert!(
            first_of_each[2] == first_of_each[0] && first_of_each[3] == first_of_each[1],
            "the two buffers alternate: {first_of_each:x?}"
        );
    }

    #[test]
    fn small_frames_are_batched_large_bodies_are_not_copied() {
        let mut enc = Encoder::new(16);
        enc.frame(true, false, &Bytes::from_static(b"hi"));
        let big = Bytes::from(vec![9u8; 1000]);
        enc.frame(false, false, &big);
        enc.frame(false, false, &Bytes::from_static(b"x"));
        assert_eq!(enc.pending_bytes(), 4 + 9 + 1000 + 3);
        let a = enc.next_chunk().unwrap();
        assert_eq!(&a[..], &[0x01, 2, b'h', b'i']);
        let h = enc.next_chunk().unwrap();
        assert!(matches!(h, SendBuf::Inline { .. }), "{h:?}");
        assert_eq!(&h[..], &[0x02, 0, 0, 0, 0, 0, 0, 0x03, 0xE8]);
        let b = enc.next_chunk().unwrap();
        assert_eq!(b.as_ptr(), big.as_ptr());
        let c = enc.next_chunk().unwrap();
        assert_eq!(&c[..], &[0, 1, b'x']);
        assert!(enc.next_chunk().is_none());
        assert!(enc.is_empty());
    }

    /// A run of large bodies leaves the batch alone: each header travels inline, each body as
    /// it is (a pooled one by its block), so the run holds no shared batch buffer.
    #[test]
    fn a_run_of_large_bodies_splits_no_batch() {
        use zeroring_engine::body_pool::PooledBody;
        let mut enc = Encoder::new(16);
        let data: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let pooled = PooledBody::copy_from(&data).unwrap();
        for i in 0..100 {
            enc.frame_buf(i % 2 == 0, SendBuf::Pooled(pooled.clone()));
        }
        assert_eq!(enc.pending_bytes(), 100 * (9 + 300));
        assert_eq!(enc.batch.capacity(), 0, "nothing was written to the batch");
        for i in 0..100 {
            let h = enc.next_chunk().unwrap();
            let flags = if i % 2 == 0 { FLAG_MORE } else { 0 };
            assert!(matches!(h, SendBuf::Inline { .. }), "{h:?}");
            assert_eq!(&h[..], &[flags | 0x02, 0, 0, 0, 0, 0, 0, 1, 44]);
            let b = enc.next_chunk().unwrap();
            assert!(matches!(b, SendBuf::Pooled(_)), "{b:?}");
            assert_eq!(b.as_ptr(), pooled.as_slice().as_ptr());
        }
        assert!(enc.next_chunk().is_none());
        // A prefix rides in the inline header too; one too long for it goes through the batch.
        enc.frame_with_prefix(false, true, b"\x09SUBSCRIBE", &Bytes::from(data.clone()));
        let h = enc.next_chunk().unwrap();
        assert_eq!(&h[..2], &[FLAG_COMMAND | 0x02, 0]);
        assert_eq!(&h[9..], b"\x09SUBSCRIBE");
        assert!(
            matches!(h, SendBuf::Shared(_)),
            "9 + 10 bytes do not fit inline"
        );
        assert_eq!(&enc.next_chunk().unwrap()[..], &data[..]);
        enc.frame_with_prefix(false, false, b"\x01", &Bytes::from(data.clone()));
        let h = enc.next_chunk().unwrap();
        assert!(matches!(h, SendBuf::Inline { .. }), "{h:?}");
        assert_eq!(&h[..], &[0x02, 0, 0, 0, 0, 0, 0, 1, 45, 1]);
        assert_eq!(&enc.next_chunk().unwrap()[..], &data[..]);
        assert!(enc.is_empty());
    }

    /// The fixed-size inline path writes exactly what `frame_copied` writes, for every
    /// length and flag, across batch growth (many frames into one encoder).
    #[test]
    fn inline_frame_writes_what_frame_copied_writes() {
        let mut a = Encoder::new(16);
        let mut b = Encoder::new(16);
        for round in 0..300usize {
            let len = round % 39;
            let more = round % 3 == 0;
            let mut buf = [0u8; 38];
            for (i, x) in buf.iter_mut().enumerate() {
                // Bytes past `len` differ from round to round: they must not leak out.
                *x = (round * 7 + i) as u8;
            }
            a.inline_frame(more, &buf, len);
            b.frame_copied(more, false, &buf[..len]);
            assert_eq!(a.pending_bytes(), b.pending_bytes());
        }
        let (mut wa, mut wb) = (Vec::new(), Vec::new());
        while let Some(c) = a.next_chunk() {
            wa.extend_from_slice(&c);
        }
        while let Some(c) = b.next_chunk() {
            wb.extend_from_slice(&c);
        }
        assert_eq!(wa, wb);
        assert!(a.is_empty());
    }

    #[test]
    fn long_flag_only_above_255() {
        let mut enc = Encoder::new(1 << 20);
        enc.frame(false, false, &Bytes::from(vec![0u8; 255]));
        let c = enc.next_chunk().unwrap();
        assert_eq!(&c[..2], &[0, 255]);
        enc.frame(false, true, &Bytes::from(vec![0u8; 256]));
        let c = enc.next_chunk().unwrap();
        assert_eq!(&c[..9], &[0x06, 0, 0, 0, 0, 0, 0, 1, 0]);
    }

    #[test]
    fn command_encoding() {
        let mut enc = Encoder::default();
        enc.command(b"PING", &[&[0, 10]]);
        assert_eq!(
            &enc.next_chunk().unwrap()[..],
            &[0x04, 7, 4, b'P', b'I', b'N', b'G', 0, 10]
        );
    }

    /// One call on the encoder, for the property below.
    #[derive(Debug, Clone)]
    enum Call {
        /// `frame_with_prefix` (an empty prefix is `frame`).
        Frame {
            more: bool,
            command: bool,
            prefix: Vec<u8>,
            body: Vec<u8>,
        },
        /// `frame_buf` with a pooled body (or `Bytes` when too large for the pools).
        Buf { more: bool, body: Vec<u8> },
        /// `frame_copied`.
        Copied { more: bool, body: Vec<u8> },
        /// `inline_frame` with a 38-byte buffer.
        Inline { more: bool, len: usize },
        /// `raw`.
        Raw(Vec<u8>),
        /// Hand out up to this many chunks (the driver's send).
        Take(usize),
    }

    fn body(max: usize) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::prelude::*;
        // Mostly small, sometimes past the copy thresholds below and past 255 (long frames).
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..40),
            proptest::collection::vec(any::<u8>(), 200..max),
        ]
    }

    fn call() -> impl proptest::strategy::Strategy<Value = Call> {
        use proptest::prelude::*;
        prop_oneof![
            (
                any::<bool>(),
                any::<bool>(),
                proptest::collection::vec(any::<u8>(), 0..12),
                body(3000)
            )
                .prop_map(|(more, command, prefix, body)| Call::Frame {
                    more,
                    command,
                    prefix,
                    body
                }),
            (any::<bool>(), body(3000)).prop_map(|(more, body)| Call::Buf { more, body }),
            (any::<bool>(), body(600)).prop_map(|(more, body)| Call::Copied { more, body }),
            (any::<bool>(), 0usize..=38).prop_map(|(more, len)| Call::Inline { more, len }),
            proptest::collection::vec(any::<u8>(), 0..20).prop_map(Call::Raw),
            (0usize..4).prop_map(Call::Take),
        ]
    }

    /// The ZMTP encoding of one frame, written out plainly.
    fn reference(out: &mut Vec<u8>, more: bool, command: bool, body: &[u8]) {
        let mut flags = if more { FLAG_MORE } else { 0 } | if command { FLAG_COMMAND } else { 0 };
        if body.len() > 255 {
            flags |= 0x02;
            out.push(flags);
            out.extend_from_slice(&(body.len() as u64).to_be_bytes());
        } else {
            out.push(flags);
            out.push(body.len() as u8);
        }
        out.extend_from_slice(body);
    }

    proptest::proptest! {
        /// Whatever mix of calls, copy threshold and hand-outs, the chunks handed out are the
        /// frames' plain encoding in order; `pending_bytes` counts what is not handed out; a
        /// body past the threshold is never copied (a chunk points at the caller's bytes).
        #[test]
        fn chunks_are_the_frames_in_order(
            threshold in proptest::prop_oneof![proptest::strategy::Just(0usize), 0usize..64, 64usize..2048],
            calls in proptest::collection::vec(call(), 0..60),
        ) {
            use zeroring_engine::body_pool::PooledBody;
            let mut enc = Encoder::new(threshold);
            let mut want = Vec::new();
            let mut got = Vec::new();
            let take = |enc: &mut Encoder, got: &mut Vec<u8>, n: usize| {
                for _ in 0..n {
                    match enc.next_chunk() {
                        Some(c) => got.extend_from_slice(&c),
                        None => break,
                    }
                }
            };
            for c in calls {
                match c {
                    Call::Frame { more, command, prefix, body } => {
                        let b = Bytes::from(body.clone());
                        enc.frame_with_prefix(more, command, &prefix, &b);
                        let mut full = prefix.clone();
                        full.extend_from_slice(&body);
                        reference(&mut want, more, command, &full);
                        if body.len() > threshold {
                            let queued = enc.queue.iter().any(|q| q.as_ptr() == b.as_ptr() && q.len() == b.len());
                            proptest::prop_assert!(queued || b.is_empty(), "a body past the threshold is queued as it is");
                        }
                    }
                    Call::Buf { more, body } => {
                        let buf = PooledBody::copy_from(&body)
                            .map(SendBuf::Pooled)
                            .unwrap_or_else(|| SendBuf::Shared(Bytes::from(body.clone())));
                        enc.frame_buf(more, buf);
                        reference(&mut want, more, false, &body);
                    }
                    Call::Copied { more, body } => {
                        enc.frame_copied(more, false, &body);
                        reference(&mut want, more, false, &body);
                    }
                    Call::Inline { more, len } => {
                        let mut buf = [0u8; 38];
                        for (i, x) in buf.iter_mut().enumerate() {
                            *x = (i * 13 + len) as u8;
                        }
                        enc.inline_frame(more, &buf, len);
                        reference(&mut want, more, false, &buf[..len]);
                    }
                    Call::Raw(bytes) => {
                        enc.raw(&bytes);
                        want.extend_from_slice(&bytes);
                    }
                    Call::Take(n) => take(&mut enc, &mut got, n),
                }
                proptest::prop_assert_eq!(enc.pending_bytes(), want.len() - got.len());
            }
            take(&mut enc, &mut got, usize::MAX);
            proptest::prop_assert!(enc.is_empty());
            proptest::prop_assert!(got == want, "the chunks are the frames' encoding, in order");
        }
    }
}
