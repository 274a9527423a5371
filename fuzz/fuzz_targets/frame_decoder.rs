//! Frame decoder over arbitrary bytes, split into arbitrary buffers: never
//! panics, never hands out a body over the limit, and the same bytes decode to
//! the same frames whatever the split, and the receive loop's fast paths (short frames,
//! runs of short single-part frames) decode exactly as the general decoder, and so do bodies
//! lent to a receive and given back in pieces.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use zeroring_transports::zmtp::{Frame, FrameDecoder, FrameError};

fn run(limit: Option<u64>, chunks: &[&[u8]]) -> (Vec<Frame>, Option<FrameError>) {
    let mut dec = FrameDecoder::new(limit);
    let mut frames = Vec::new();
    for c in chunks {
        let mut input = Bytes::copy_from_slice(c);
        loop {
            match dec.decode(&mut input) {
                Ok(Some(f)) => {
                    if let Some(l) = limit {
                        assert!(f.body.len() as u64 <= l);
                    }
                    assert!(!(f.command && f.more));
                    frames.push(f);
                }
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

/// The receive loop's way: short data frames through `short_data_frame` whenever it takes
/// them, everything else through `decode_slice` (bodies borrowed from the input); with
/// `singles`, runs of single-part frames through `short_single_frame` first, as
/// `Connection::handle_input_with` does since the runs.
fn run_short(
    limit: Option<u64>,
    chunks: &[&[u8]],
    singles: bool,
) -> (Vec<Frame>, Option<FrameError>) {
    let mut dec = FrameDecoder::new(limit);
    let mut frames = Vec::new();
    let owned = |more, body: &[u8]| Frame {
        more,
        command: false,
        body: Bytes::copy_from_slice(body),
    };
    for c in chunks {
        let mut input: &[u8] = c;
        while !input.is_empty() {
            if singles {
                if let Some(body) = dec.short_single_frame(&mut input) {
                    frames.push(owned(false, body));
                    continue;
                }
            }
            if let Some((more, body)) = dec.short_data_frame(&mut input) {
                frames.push(owned(more, body));
                continue;
            }
            match dec.decode_slice(&mut input) {
                Ok(Some(f)) => frames.push(f.into_owned()),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

/// The stream's way with large bodies: after each input, a pooled body under way is lent
/// (`lend_body`), filled from the following input as a receive would (taking at most what it
/// still wants, maybe less: `take` caps each fill) and given back (`return_body`).
fn run_lent(limit: Option<u64>, chunks: &[&[u8]], take: usize) -> (Vec<Frame>, Option<FrameError>) {
    let mut dec = FrameDecoder::new(limit);
    let mut frames = Vec::new();
    for c in chunks {
        let mut input: &[u8] = c;
        loop {
            if let Some(mut buf) = dec.lend_body(1) {
                let n = buf.extend_from_slice(&input[..input.len().min(take.max(1))]);
                input = &input[n..];
                if let Some(f) = dec.return_body(buf) {
                    frames.push(f.into_owned());
                }
                if input.is_empty() {
                    break;
                }
                continue;
            }
            if input.is_empty() {
                break;
            }
            match dec.decode_slice(&mut input) {
                Ok(Some(f)) => frames.push(f.into_owned()),
                Ok(None) => break,
                Err(e) => return (frames, Some(e)),
            }
        }
    }
    (frames, None)
}

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let limit = match ctl & 3 {
        0 => None,
        1 => Some(u64::from(ctl)),
        2 => Some(0),
        _ => Some(1 << 20),
    };
    let whole = run(limit, &[rest]);
    let cut = usize::from(ctl >> 2) % (rest.len() + 1);
    let (a, b) = rest.split_at(cut);
    let split = run(limit, &[a, b]);
    assert_eq!(whole, split);
    // The short-frame fast path decodes exactly as the general decoder, whatever the split.
    // And with single-part runs taken first, as `Connection::handle_input_with` does.
    for singles in [false, true] {
        assert_eq!(whole, run_short(limit, &[rest], singles));
        assert_eq!(whole, run_short(limit, &[a, b], singles));
    }
    // Bodies lent to a "receive" and given back, whole or in pieces, decode the same.
    for take in [usize::MAX, 1 + usize::from(ctl)] {
        assert_eq!(whole, run_lent(limit, &[a, b], take));
    }
    // Byte-at-a-time feeding is slow; keep it for short inputs.
    if rest.len() <= 512 {
        let bytes: Vec<&[u8]> = rest.chunks(1).collect();
        assert_eq!(whole, run(limit, &bytes));
    }
});
