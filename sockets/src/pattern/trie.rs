//! Subscription tries: a byte-wise prefix trie, counted for the subscriber side ([`SubTrie`],
//! libzmq's `trie_t`) and keyed by pipe for the publisher side ([`MTrie`], libzmq's `mtrie_t`).
//!
//! A message matches a subscription when the subscription is a prefix of the message's first
//! part; the empty subscription matches everything.

use bytes::Bytes;

use super::PipeId;

#[derive(Debug, Default)]
struct Node<V> {
    value: V,
    children: Vec<(u8, Node<V>)>,
}

impl<V: Default> Node<V> {
    fn child(&self, b: u8) -> Option<&Node<V>> {
        self.children
            .binary_search_by_key(&b, |c| c.0)
            .ok()
            .map(|i| &self.children[i].1)
    }

    fn child_mut_or_insert(&mut self, b: u8) -> &mut Node<V> {
        let i = match self.children.binary_search_by_key(&b, |c| c.0) {
            Ok(i) => i,
            Err(i) => {
                self.children.insert(i, (b, Node::default()));
                i
            }
        };
        &mut self.children[i].1
    }
}

/// The generic trie: one value per node.
#[derive(Debug, Default)]
struct Trie<V> {
    root: Node<V>,
}

impl<V: Default> Trie<V> {
    fn entry(&mut self, topic: &[u8]) -> &mut V {
        let mut n = &mut self.root;
        for &b in topic {
            n = n.child_mut_or_insert(b);
        }
        &mut n.value
    }

    /// Applies `f` to the node of `topic` (if present), then prunes nodes left empty.
    fn update<R>(
        &mut self,
        topic: &[u8],
        empty: &impl Fn(&V) -> bool,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R> {
        fn go<V: Default, R>(
            n: &mut Node<V>,
            topic: &[u8],
            empty: &impl Fn(&V) -> bool,
            f: impl FnOnce(&mut V) -> R,
        ) -> Option<R> {
            match topic.split_first() {
                None => Some(f(&mut n.value)),
                Some((&b, rest)) => {
                    let i = n.children.binary_search_by_key(&b, |c| c.0).ok()?;
                    let r = go(&mut n.children[i].1, rest, empty, f);
                    let c = &n.children[i].1;
                    if c.children.is_empty() && empty(&c.value) {
                        n.children.remove(i);
                    }
                    r
                }
            }
        }
        go(&mut self.root, topic, empty, f)
    }

    fn for_each_prefix(&self, data: &[u8], mut f: impl FnMut(&V)) {
        let mut n = &self.root;
        f(&n.value);
        for &b in data {
            match n.child(b) {
                Some(c) => {
                    n = c;
                    f(&n.value);
                }
                None => return,
            }
        }
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], &V)) {
        fn go<V>(n: &Node<V>, path: &mut Vec<u8>, f: &mut impl FnMut(&[u8], &V)) {
            f(path, &n.value);
            for (b, c) in &n.children {
                path.push(*b);
                go(c, path, f);
                path.pop();
            }
        }
        go(&self.root, &mut Vec::new(), &mut f);
    }

    fn for_each_mut(&mut self, empty: &impl Fn(&V) -> bool, mut f: impl FnMut(&[u8], &mut V)) {
        fn go<V>(
            n: &mut Node<V>,
            path: &mut Vec<u8>,
            empty: &impl Fn(&V) -> bool,
            f: &mut impl FnMut(&[u8], &mut V),
        ) {
            f(path, &mut n.value);
            for (b, c) in &mut n.children {
                path.push(*b);
                go(c, path, empty, f);
                path.pop();
            }
            n.children
                .retain(|(_, c)| !(c.children.is_empty() && empty(&c.value)));
        }
        go(&mut self.root, &mut Vec::new(), empty, &mut f);
    }
}

/// The subscriber's trie: each topic with a subscription count (two SUBSCRIBE "A" need two
/// UNSUBSCRIBE "A").
#[derive(Debug, Default)]
pub struct SubTrie {
    trie: Trie<u32>,
    topics: usize,
}

impl SubTrie {
    /// An empty trie.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one subscription; returns whether the topic is new.
    pub fn add(&mut self, topic: &[u8]) -> bool {
        let c = self.trie.entry(topic);
        *c += 1;
        let first = *c == 1;
        if first {
            self.topics += 1;
        }
        first
    }

    /// Removes one subscription; returns whether the topic is now gone entirely (false when it
    /// was not subscribed, or still is).
    pub fn rm(&mut self, topic: &[u8]) -> bool {
        let gone = self
            .trie
            .update(topic, &|c| *c == 0, |c| {
                if *c == 0 {
                    return false;
                }
                *c -= 1;
                *c == 0
            })
            .unwrap_or(false);
        if gone {
            self.topics -= 1;
        }
        gone
    }

    /// Whether some subscription is a prefix of `data`.
    pub fn check(&self, data: &[u8]) -> bool {
        let mut hit = false;
        self.trie.for_each_prefix(data, |c| hit |= *c > 0);
        hit
    }

    /// Distinct topics subscribed.
    pub fn num_topics(&self) -> usize {
        self.topics
    }

    /// Every distinct topic.
    pub fn topics(&self) -> Vec<Bytes> {
        let mut out = Vec::new();
        self.trie.for_each(|t, c| {
            if *c > 0 {
                out.push(Bytes::copy_from_slice(t));
            }
        });
        out
    }
}

/// Outcome of [`MTrie::rm`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RmResult {
    /// The pipe had no such subscription.
    NotFound,
    /// The pipe was the last subscriber of the topic.
    LastValueRemoved,
    /// Other pipes still subscribe to the topic.
    ValuesRemain,
}

/// The publisher's trie: for each topic, the set of pipes subscribed to it.
#[derive(Debug, Default)]
pub struct MTrie {
    trie: Trie<Vec<PipeId>>,
    topics: usize,
}

impl MTrie {
    /// An empty trie.
    pub fn new() -> Self {
        Self::default()
    }

    /// Subscribes `pipe` to `topic`; returns whether the topic had no subscriber before.
    pub fn add(&mut self, topic: &[u8], pipe: PipeId) -> bool {
        let set = self.trie.entry(topic);
        let first = set.is_empty();
        if !set.contains(&pipe) {
            set.push(pipe);
        }
        if first {
            self.topics += 1;
        }
        first
    }

    /// Unsubscribes `pipe` from `topic`.
    pub fn rm(&mut self, topic: &[u8], pipe: PipeId) -> RmResult {
        let r = self
            .trie
            .update(topic, &|s: &Vec<PipeId>| s.is_empty(), |set| {
                match set.iter().position(|p| *p == pipe) {
                    None => RmResult::NotFound,
                    Some(i) => {
                        set.swap_remove(i);
                        if set.is_empty() {
                            RmResult::LastValueRemoved
                        } else {
                            RmResult::ValuesRemain
                        }
                    }
                }
            })
            .unwrap_or(RmResult::NotFound);
        if r == RmResult::LastValueRemoved {
            self.topics -= 1;
        }
        r
    }

    /// Removes every subscription of `pipe`; calls `f(topic, was_last)` for each.
    pub fn rm_pipe(&mut self, pipe: PipeId, mut f: impl FnMut(&[u8], bool)) {
        let mut gone = 0;
        self.trie
            .for_each_mut(&|s: &Vec<PipeId>| s.is_empty(), |t, set| {
                if let Some(i) = set.iter().position(|p| *p == pipe) {
                    set.swap_remove(i);
                    let last = set.is_empty();
                    if last {
                        gone += 1;
                    }
                    f(t, last);
                }
            });
        self.topics -= gone;
    }

    /// Calls `f` for every pipe with a subscription that is a prefix of `data` (a pipe may be
    /// reported more than once).
    pub fn matching(&self, data: &[u8], mut f: impl FnMut(PipeId)) {
        self.trie.for_each_prefix(data, |set| {
            for p in set {
                f(*p)
            }
        });
    }

    /// Distinct topics with at least one subscriber.
    pub fn num_topics(&self) -> usize {
        self.topics
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_trie_counts_and_prefixes() {
        let mut t = SubTrie::new();
        assert!(!t.check(b"abc"));
        assert!(t.add(b"ab"));
        assert!(!t.add(b"ab"));
        assert!(t.check(b"abc"));
        assert!(t.check(b"ab"));
        assert!(!t.check(b"a"));
        assert!(!t.rm(b"ab"));
        assert!(t.check(b"abc"));
        assert!(t.rm(b"ab"));
        assert!(!t.check(b"abc"));
        assert!(!t.rm(b"ab"));
        assert!(t.add(b""));
        assert!(t.check(b"anything"));
        assert_eq!(t.num_topics(), 1);
        assert_eq!(t.topics(), vec![Bytes::new()]);
    }

    #[test]
    fn mtrie_sets() {
        let mut t = MTrie::new();
        assert!(t.add(b"a", 1));
        assert!(!t.add(b"a", 2));
        assert!(!t.add(b"a", 2));
        assert!(t.add(b"ab", 2));
        let mut hits = Vec::new();
        t.matching(b"abc", |p| hits.push(p));
        hits.sort();
        assert_eq!(hits, vec![1, 2, 2]);
        assert_eq!(t.rm(b"a", 1), RmResult::ValuesRemain);
        assert_eq!(t.rm(b"a", 1), RmResult::NotFound);
        let mut seen = Vec::new();
        t.rm_pipe(2, |topic, last| seen.push((topic.to_vec(), last)));
        assert_eq!(seen, vec![(b"a".to_vec(), true), (b"ab".to_vec(), true)]);
        assert_eq!(t.num_topics(), 0);
    }
}
