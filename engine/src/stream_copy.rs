//! Copies that go past the cache: the bytes are written with non-temporal stores, straight
//! to memory, for a destination nobody reads soon.
//!
//! Owns one function and its threshold. It must never be used for bytes the next reader
//! takes while they would still be cached (an inproc part: measured 0.63× at 64 KiB), only for
//! a body queued behind others on its way to the kernel (docs/performance.md, "tcp 64 KiB:
//! bodies written past the cache").
//!
//! Why it pays there: a connection's send pipe holds up to SNDHWM parts (1,000 × 64 KiB is
//! twice the L3) and the kernel reads a part only after the parts ahead of it. A cached copy
//! reads each destination line in first, then evicts lines in use, and is itself evicted
//! before the kernel reads it; the streaming copy does neither.

/// Bodies at least this long are streamed by [`copy`]; shorter ones are copied as usual (the
/// fence and the missed store-to-load reuse cost more than they save below it).
pub const STREAM_MIN: usize = 32 * 1024;

/// Copies `src` to `dst`, with non-temporal stores when `src` is at least [`STREAM_MIN`] bytes
/// long (x86-64), ordinarily otherwise. On return every byte is visible to another thread
/// that synchronises with this one afterwards (release/acquire, as for an ordinary store):
/// the streaming stores are fenced.
///
/// # Safety
///
/// `dst` must be valid for `src.len()` bytes of writes, 16-byte aligned, and must not
/// overlap `src`.
#[inline]
pub unsafe fn copy(src: &[u8], dst: *mut u8) {
    #[cfg(all(target_arch = "x86_64", not(miri)))]
    if src.len() >= STREAM_MIN {
        // SAFETY: the caller's contract; SSE2 is part of the x86-64 baseline.
        unsafe { stream_sse2(src, dst) };
        return;
    }
    // SAFETY: the caller's contract.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst, src.len()) };
}

/// 64 bytes a step: four unaligned loads, four non-temporal stores to the aligned
/// destination; the tail is copied ordinarily. The `sfence` orders the weakly ordered
/// streaming stores before any store that follows (the pipe's release of the part).
#[cfg(all(target_arch = "x86_64", not(miri)))]
#[inline(never)]
unsafe fn stream_sse2(src: &[u8], dst: *mut u8) {
    use std::arch::x86_64::{__m128i, _mm_loadu_si128, _mm_sfence, _mm_stream_si128};
    debug_assert_eq!(dst as usize % 16, 0);
    let n = src.len();
    let s = src.as_ptr();
    let mut i = 0;
    while i + 64 <= n {
        // SAFETY: `i + 64 <= n`: the 64 bytes at `i` are within `src` and within `dst`
        // (valid for `n` bytes); `dst + i` is 16-aligned since `dst` is and `i` is a multiple
        // of 64; loads are unaligned.
        unsafe {
            let a = _mm_loadu_si128(s.add(i).cast::<__m128i>());
            let b = _mm_loadu_si128(s.add(i + 16).cast::<__m128i>());
            let c = _mm_loadu_si128(s.add(i + 32).cast::<__m128i>());
            let d = _mm_loadu_si128(s.add(i + 48).cast::<__m128i>());
            _mm_stream_si128(dst.add(i).cast::<__m128i>(), a);
            _mm_stream_si128(dst.add(i + 16).cast::<__m128i>(), b);
            _mm_stream_si128(dst.add(i + 32).cast::<__m128i>(), c);
            _mm_stream_si128(dst.add(i + 48).cast::<__m128i>(), d);
        }
        i += 64;
    }
    // SAFETY: the last `n - i` (< 64) bytes of both, in bounds as above; then the fence (SSE,
    // baseline on x86-64).
    unsafe {
        std::ptr::copy_nonoverlapping(s.add(i), dst.add(i), n - i);
        _mm_sfence();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every length around the threshold and the 64-byte step, from sources at every offset
    /// within a line, into an aligned destination: the bytes arrive, and nothing past `len`
    /// is written.
    #[test]
    fn copies_exactly_the_bytes_at_every_length_and_source_offset() {
        let src: Vec<u8> = (0..STREAM_MIN + 256).map(|i| (i * 7 + 3) as u8).collect();
        let mut lens: Vec<usize> = (0..130).collect();
        lens.extend(STREAM_MIN - 65..STREAM_MIN + 130);
        for off in [0, 1, 7, 15, 16, 33, 63] {
            for &len in &lens {
                let s = &src[off..off + len];
                // u128 storage: 16-byte aligned, as the contract asks.
                let mut dst = vec![u128::from_ne_bytes([0xEE; 16]); (len + 64).div_ceil(16)];
                let d = dst.as_mut_ptr().cast::<u8>();
                // SAFETY: `dst` has room for `len + 64` bytes, is 16-aligned, and is its own
                // allocation.
                unsafe { copy(s, d) };
                // SAFETY: the same allocation, read back as bytes.
                let got = unsafe { std::slice::from_raw_parts(d, len + 16) };
                assert_eq!(&got[..len], s, "len {len} offset {off}");
                assert!(
                    got[len..].iter().all(|&b| b == 0xEE),
                    "len {len}: wrote past"
                );
            }
        }
    }

    /// A streamed copy published to another thread through a release/acquire pair is seen
    /// whole there (the fence's job).
    #[test]
    fn a_streamed_copy_is_whole_on_the_thread_it_is_handed_to() {
        use std::sync::mpsc;
        let (tx, rx) = mpsc::channel::<Box<[u128]>>();
        let reader = std::thread::spawn(move || {
            for round in 0..50u8 {
                let got = rx.recv().unwrap();
                // SAFETY: the box's own bytes.
                let b = unsafe { std::slice::from_raw_parts(got.as_ptr().cast::<u8>(), 65536) };
                assert!(b.iter().all(|&x| x == round), "round {round}");
            }
        });
        for round in 0..50u8 {
            let src = vec![round; 65536];
            let mut dst = vec![0u128; 4096].into_boxed_slice();
            // SAFETY: 65,536 bytes of room, 16-aligned, its own allocation.
            unsafe { copy(&src, dst.as_mut_ptr().cast()) };
            tx.send(dst).unwrap();
        }
        reader.join().unwrap();
    }
}
