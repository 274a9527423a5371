//! Subscription tries: a radix (path-compressed) prefix trie, counted for the subscriber side
//! ([`SubTrie`], libzmq's `trie_t`) and keyed by pipe for the publisher side ([`MTrie`],
//! libzmq's `mtrie_t`). One node per subscription and per branching point, with exact-size
//! child arrays (boxed slices, no growth slack) and a pipe set that holds its first pipe
//! inline, so memory follows the bytes subscribed (a node per *byte* made 100,000 random
//! 32-byte topics cost ~670 MB; this layout ~2.9x the topic bytes, see
//! `tests/trie_memory.rs`) and shrinks back as subscriptions are cancelled.
//!
//! Must never: keep capacity for what was cancelled, or allocate per matched message.
//!
//! A message matches a subscription when the subscription is a prefix of the message's first
//! part; the empty subscription matches everything.

use bytes::Bytes;

use super::PipeId;

/// One node of a radix (path-compressed) trie: the edge from its parent is `label`, so a run
/// of bytes that no subscription branches on costs one node, not one per byte.
#[derive(Debug, Default)]
struct Node<V> {
    /// The bytes from the parent to this node; empty only at the root.
    label: Box<[u8]>,
    value: V,
    /// Sorted by the first byte of their labels (which are non-empty and distinct). A boxed
    /// slice rather than a `Vec`: 8 bytes less per node and never any spare capacity.
    children: Box<[Node<V>]>,
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl<V: Default> Node<V> {
    fn new(label: &[u8]) -> Self {
        Node {
            label: label.into(),
            value: V::default(),
            children: Box::default(),
        }
    }

    /// Inserts `node` as child `i`, growing the array by exactly one.
    fn insert_child(&mut self, i: usize, node: Node<V>) {
        let mut v = std::mem::take(&mut self.children).into_vec();
        v.reserve_exact(1);
        v.insert(i, node);
        self.children = v.into_boxed_slice();
    }

    /// Removes child `i`, shrinking the array by exactly one.
    fn remove_child(&mut self, i: usize) -> Node<V> {
        let mut v = std::mem::take(&mut self.children).into_vec();
        let node = v.remove(i);
        self.children = v.into_boxed_slice();
        node
    }

    fn find(&self, b: u8) -> Result<usize, usize> {
        self.children
            .binary_search_by_key(&b, |c| c.label.first().copied().unwrap_or(0))
    }

    /// Child `i` after something under it changed: drops it when it holds nothing, merges it
    /// into its only child when it holds no value of its own (so the trie stays compressed and
    /// memory follows what is subscribed).
    fn fix_child(&mut self, i: usize, empty: &impl Fn(&V) -> bool) {
        let Some(c) = self.children.get_mut(i) else {
            return;
        };
        if !empty(&c.value) {
            return;
        }
        match c.children.len() {
            0 => {
                self.remove_child(i);
            }
            1 => {
                let mut only = c.remove_child(0);
                let mut label = Vec::with_capacity(c.label.len() + only.label.len());
                label.extend_from_slice(&c.label);
                label.extend_from_slice(&only.label);
                only.label = label.into_boxed_slice();
                *c = only;
            }
            _ => {}
        }
    }
}

/// The generic trie: one value per subscription (and per branching point).
#[derive(Debug, Default)]
struct Trie<V> {
    root: Node<V>,
}

impl<V: Default> Trie<V> {
    fn entry(&mut self, topic: &[u8]) -> &mut V {
        let mut n = &mut self.root;
        let mut rest = topic;
        loop {
            let Some(&b) = rest.first() else {
                return &mut n.value;
            };
            let i = match n.find(b) {
                Err(i) => {
                    n.insert_child(i, Node::new(rest));
                    return &mut n.children[i].value;
                }
                Ok(i) => i,
            };
            let c = &mut n.children[i];
            let common = common_prefix(&c.label, rest);
            if common < c.label.len() {
                // Split the edge: a new node for the shared part, the old one below it.
                let head = Node::new(&c.label[..common]);
                let mut old = std::mem::replace(c, head);
                old.label = old.label[common..].into();
                c.children = Box::new([old]);
            }
            rest = &rest[common..];
            n = &mut n.children[i];
        }
    }

    /// Applies `f` to the node of `topic` (if present), then prunes and merges nodes left
    /// empty.
    fn update<R>(
        &mut self,
        topic: &[u8],
        empty: &impl Fn(&V) -> bool,
        f: impl FnOnce(&mut V) -> R,
    ) -> Option<R> {
        fn go<V: Default, R>(
            n: &mut Node<V>,
            rest: &[u8],
            empty: &impl Fn(&V) -> bool,
            f: impl FnOnce(&mut V) -> R,
        ) -> Option<R> {
            let Some(&b) = rest.first() else {
                return Some(f(&mut n.value));
            };
            let i = n.find(b).ok()?;
            let c = &mut n.children[i];
            let below = rest.strip_prefix(&c.label[..])?;
            let r = go(c, below, empty, f);
            n.fix_child(i, empty);
            r
        }
        go(&mut self.root, topic, empty, f)
    }

    fn for_each_prefix(&self, data: &[u8], mut f: impl FnMut(&V)) {
        let mut n = &self.root;
        f(&n.value);
        let mut rest = data;
        while let Some(&b) = rest.first() {
            let Ok(i) = n.find(b) else {
                return;
            };
            let c = &n.children[i];
            let Some(below) = rest.strip_prefix(&c.label[..]) else {
                return;
            };
            f(&c.value);
            rest = below;
            n = c;
        }
    }

    fn for_each(&self, mut f: impl FnMut(&[u8], &V)) {
        fn go<V>(n: &Node<V>, path: &mut Vec<u8>, f: &mut impl FnMut(&[u8], &V)) {
            f(path, &n.value);
            for c in n.children.iter() {
                let len = path.len();
                path.extend_from_slice(&c.label);
                go(c, path, f);
                path.truncate(len);
            }
        }
        go(&self.root, &mut Vec::new(), &mut f);
    }

    fn for_each_mut(&mut self, empty: &impl Fn(&V) -> bool, mut f: impl FnMut(&[u8], &mut V)) {
        fn go<V: Default>(
            n: &mut Node<V>,
            path: &mut Vec<u8>,
            empty: &impl Fn(&V) -> bool,
            f: &mut impl FnMut(&[u8], &mut V),
        ) {
            f(path, &mut n.value);
            for c in n.children.iter_mut() {
                let len = path.len();
                path.extend_from_slice(&c.label);
                go(c, path, empty, f);
                path.truncate(len);
            }
            for i in (0..n.children.len()).rev() {
                n.fix_child(i, empty);
            }
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

/// The pipes subscribed to one topic. Most topics have one subscriber: it is held inline, so
/// such a topic costs no allocation beyond its node (a `Vec` cost 24 bytes in the node plus a
/// heap block).
#[derive(Debug, Default)]
enum Pipes {
    #[default]
    Empty,
    One(PipeId),
    /// Two or more, in no order. Boxed so that the enum stays 16 bytes (a thin pointer);
    /// a bare `Vec` or a `Box<[_]>` would make every node 8 bytes bigger.
    #[allow(clippy::box_collection)]
    Many(Box<Vec<PipeId>>),
}

impl Pipes {
    fn is_empty(&self) -> bool {
        matches!(self, Pipes::Empty)
    }

    fn as_slice(&self) -> &[PipeId] {
        match self {
            Pipes::Empty => &[],
            Pipes::One(p) => std::slice::from_ref(p),
            Pipes::Many(v) => v,
        }
    }

    /// Adds `pipe` unless present.
    fn insert(&mut self, pipe: PipeId) {
        match self {
            Pipes::Empty => *self = Pipes::One(pipe),
            Pipes::One(p) if *p == pipe => {}
            Pipes::One(p) => *self = Pipes::Many(Box::new(vec![*p, pipe])),
            Pipes::Many(v) => {
                if !v.contains(&pipe) {
                    v.push(pipe);
                }
            }
        }
    }

    /// Removes `pipe`; returns whether it was present.
    fn remove(&mut self, pipe: PipeId) -> bool {
        match self {
            Pipes::Empty => false,
            Pipes::One(p) => {
                let hit = *p == pipe;
                if hit {
                    *self = Pipes::Empty;
                }
                hit
            }
            Pipes::Many(v) => {
                let Some(i) = v.iter().position(|p| *p == pipe) else {
                    return false;
                };
                v.swap_remove(i);
                if v.len() == 1 {
                    *self = Pipes::One(v[0]);
                } else if v.capacity() > 2 * v.len() + 4 {
                    v.shrink_to_fit();
                }
                true
            }
        }
    }
}

/// The publisher's trie: for each topic, the set of pipes subscribed to it.
#[derive(Debug, Default)]
pub struct MTrie {
    trie: Trie<Pipes>,
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
        set.insert(pipe);
        if first {
            self.topics += 1;
        }
        first
    }

    /// Unsubscribes `pipe` from `topic`.
    pub fn rm(&mut self, topic: &[u8], pipe: PipeId) -> RmResult {
        let r = self
            .trie
            .update(topic, &Pipes::is_empty, |set| {
                if !set.remove(pipe) {
                    RmResult::NotFound
                } else if set.is_empty() {
                    RmResult::LastValueRemoved
                } else {
                    RmResult::ValuesRemain
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
        self.trie.for_each_mut(&Pipes::is_empty, |t, set| {
            if set.remove(pipe) {
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
            for p in set.as_slice() {
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

    use proptest::prelude::*;
    use std::collections::BTreeMap;

    /// A subscribe, cancel or match on a small alphabet (so topics share prefixes, split
    /// edges and merge them back).
    #[derive(Debug, Clone)]
    enum Op {
        Add(Vec<u8>, PipeId),
        Rm(Vec<u8>, PipeId),
        RmPipe(PipeId),
        Match(Vec<u8>),
    }

    fn topic() -> impl Strategy<Value = Vec<u8>> {
        proptest::collection::vec(0u8..3, 0..6)
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            (topic(), 0u64..4).prop_map(|(t, p)| Op::Add(t, p)),
            (topic(), 0u64..4).prop_map(|(t, p)| Op::Rm(t, p)),
            (0u64..4).prop_map(Op::RmPipe),
            proptest::collection::vec(0u8..3, 0..8).prop_map(Op::Match),
        ]
    }

    proptest! {
        /// MTrie against a map of topic → pipes; SubTrie against a map of topic → count.
        #[test]
        fn tries_match_a_simple_model(ops in proptest::collection::vec(op(), 0..200)) {
            let mut t = MTrie::new();
            let mut s = SubTrie::new();
            let mut model: BTreeMap<Vec<u8>, Vec<PipeId>> = BTreeMap::new();
            let mut counts: BTreeMap<Vec<u8>, u32> = BTreeMap::new();
            for op in ops {
                match op {
                    Op::Add(topic, p) => {
                        let set = model.entry(topic.clone()).or_default();
                        prop_assert_eq!(t.add(&topic, p), set.is_empty());
                        if !set.contains(&p) {
                            set.push(p);
                        }
                        let c = counts.entry(topic.clone()).or_default();
                        *c += 1;
                        prop_assert_eq!(s.add(&topic), *c == 1);
                    }
                    Op::Rm(topic, p) => {
                        let want = match model.get_mut(&topic) {
                            Some(set) if set.contains(&p) => {
                                set.retain(|x| *x != p);
                                if set.is_empty() {
                                    model.remove(&topic);
                                    RmResult::LastValueRemoved
                                } else {
                                    RmResult::ValuesRemain
                                }
                            }
                            _ => RmResult::NotFound,
                        };
                        prop_assert_eq!(t.rm(&topic, p), want);
                        let gone = match counts.get_mut(&topic) {
                            Some(c) => {
                                *c -= 1;
                                if *c == 0 {
                                    counts.remove(&topic);
                                    true
                                } else {
                                    false
                                }
                            }
                            None => false,
                        };
                        prop_assert_eq!(s.rm(&topic), gone);
                    }
                    Op::RmPipe(p) => {
                        let mut seen = Vec::new();
                        t.rm_pipe(p, |topic, last| seen.push((topic.to_vec(), last)));
                        let mut want = Vec::new();
                        model.retain(|topic, set| {
                            if let Some(i) = set.iter().position(|x| *x == p) {
                                set.remove(i);
                                want.push((topic.clone(), set.is_empty()));
                            }
                            !set.is_empty()
                        });
                        seen.sort();
                        prop_assert_eq!(seen, want);
                    }
                    Op::Match(data) => {
                        let mut got = Vec::new();
                        t.matching(&data, |p| got.push(p));
                        got.sort();
                        let mut want: Vec<PipeId> = model
                            .iter()
                            .filter(|(topic, _)| data.starts_with(topic))
                            .flat_map(|(_, set)| set.iter().copied())
                            .collect();
                        want.sort();
                        prop_assert_eq!(got, want);
                        prop_assert_eq!(
                            s.check(&data),
                            counts.keys().any(|topic| data.starts_with(topic))
                        );
                    }
                }
                prop_assert_eq!(t.num_topics(), model.len());
                prop_assert_eq!(s.num_topics(), counts.len());
            }
            let mut topics: Vec<Vec<u8>> = s.topics().iter().map(|b| b.to_vec()).collect();
            topics.sort();
            prop_assert_eq!(topics, counts.keys().cloned().collect::<Vec<_>>());
        }
    }

    #[test]
    fn cancelling_everything_leaves_an_empty_root() {
        let mut t = MTrie::new();
        for i in 0u32..1000 {
            t.add(&i.to_be_bytes(), 1);
            t.add(&(i * 7).to_le_bytes(), 2);
        }
        t.rm_pipe(2, |_, _| {});
        for i in 0u32..1000 {
            assert_eq!(t.rm(&i.to_be_bytes(), 1), RmResult::LastValueRemoved);
        }
        assert_eq!(t.num_topics(), 0);
        assert!(t.trie.root.children.is_empty(), "every node went");
    }
}
