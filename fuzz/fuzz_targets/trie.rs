//! The subscription tries (`zeroring::pattern::trie`) under random subscribe / cancel /
//! pipe-leaves / match sequences, checked step by step against a simple model: a map of topic
//! to the set of pipes (MTrie, PUB/XPUB) and a multiset of topics (SubTrie, SUB/XSUB).
//!
//! Topics are drawn from a 4-letter alphabet (or raw bytes when the op's high bit says so), so
//! they share prefixes and the radix trie splits and merges its edges often. At the end every
//! subscription is cancelled and both tries must be empty.
#![no_main]

use std::collections::{BTreeMap, BTreeSet};

use libfuzzer_sys::fuzz_target;
use zeroring::pattern::trie::{MTrie, RmResult, SubTrie};

/// Reads one topic: a length byte, then that many bytes (mapped onto "abcd" unless `raw`).
fn topic<'a>(data: &mut &'a [u8], raw: bool) -> Vec<u8> {
    let Some((&len, rest)) = data.split_first() else {
        return Vec::new();
    };
    let len = usize::from(len % 12).min(rest.len());
    let (t, rest) = rest.split_at(len);
    *data = rest;
    if raw {
        t.to_vec()
    } else {
        t.iter().map(|b| b"abcd"[usize::from(b & 3)]).collect()
    }
}

fuzz_target!(|input: &[u8]| {
    let mut data = input;
    let mut mtrie = MTrie::new();
    let mut sub = SubTrie::new();
    let mut pipes: BTreeMap<Vec<u8>, BTreeSet<u64>> = BTreeMap::new();
    let mut counts: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
    while let Some((&op, rest)) = data.split_first() {
        data = rest;
        let raw = op & 0x80 != 0;
        let pipe = u64::from((op >> 3) & 3);
        match op & 7 {
            0 | 1 => {
                let t = topic(&mut data, raw);
                let set = pipes.entry(t.clone()).or_default();
                assert_eq!(mtrie.add(&t, pipe), set.is_empty(), "MTrie add {t:?}");
                set.insert(pipe);
                let c = counts.entry(t.clone()).or_default();
                *c += 1;
                assert_eq!(sub.add(&t), *c == 1, "SubTrie add {t:?}");
            }
            2 | 3 => {
                let t = topic(&mut data, raw);
                let want = match pipes.get_mut(&t) {
                    Some(set) if set.contains(&pipe) => {
                        set.remove(&pipe);
                        if set.is_empty() {
                            pipes.remove(&t);
                            RmResult::LastValueRemoved
                        } else {
                            RmResult::ValuesRemain
                        }
                    }
                    _ => RmResult::NotFound,
                };
                assert_eq!(mtrie.rm(&t, pipe), want, "MTrie rm {t:?} {pipe}");
                let gone = match counts.get_mut(&t) {
                    Some(c) => {
                        *c -= 1;
                        let gone = *c == 0;
                        if gone {
                            counts.remove(&t);
                        }
                        gone
                    }
                    None => false,
                };
                assert_eq!(sub.rm(&t), gone, "SubTrie rm {t:?}");
            }
            4 => {
                let mut seen = Vec::new();
                mtrie.rm_pipe(pipe, |t, last| seen.push((t.to_vec(), last)));
                seen.sort();
                let mut want = Vec::new();
                pipes.retain(|t, set| {
                    if set.remove(&pipe) {
                        want.push((t.clone(), set.is_empty()));
                    }
                    !set.is_empty()
                });
                assert_eq!(seen, want, "rm_pipe {pipe}");
            }
            _ => {
                // Match a message longer than any topic, so prefixes of every length count.
                let msg = topic(&mut data, raw);
                let mut got = Vec::new();
                mtrie.matching(&msg, |p| got.push(p));
                got.sort_unstable();
                got.dedup();
                let want: Vec<u64> = pipes
                    .iter()
                    .filter(|(t, _)| msg.starts_with(t))
                    .flat_map(|(_, set)| set.iter().copied())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                assert_eq!(got, want, "MTrie matching {msg:?}");
                assert_eq!(
                    sub.check(&msg),
                    counts.keys().any(|t| msg.starts_with(t)),
                    "SubTrie check {msg:?}"
                );
            }
        }
        assert_eq!(mtrie.num_topics(), pipes.len());
        assert_eq!(sub.num_topics(), counts.len());
    }
    let mut topics: Vec<Vec<u8>> = sub.topics().iter().map(|b| b.to_vec()).collect();
    topics.sort();
    assert_eq!(topics, counts.keys().cloned().collect::<Vec<_>>());
    // Cancel everything: both tries end empty and nothing matches.
    for (t, set) in std::mem::take(&mut pipes) {
        for p in set {
            assert_ne!(mtrie.rm(&t, p), RmResult::NotFound);
        }
    }
    for (t, c) in std::mem::take(&mut counts) {
        for _ in 0..c {
            sub.rm(&t);
        }
    }
    assert_eq!(mtrie.num_topics(), 0);
    assert_eq!(sub.num_topics(), 0);
    let mut any = false;
    mtrie.matching(b"abcdabcdabcd", |_| any = true);
    assert!(!any && !sub.check(b"") && sub.topics().is_empty());
});
