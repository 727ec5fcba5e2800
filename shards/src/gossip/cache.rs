//! The plane's two bounded memories of messages: [`SeenCache`] (ids, for deduplication) and
//! [`MessageCache`] (whole messages, to answer IWANT and to build IHAVE digests). Both forget
//! the oldest entry first when full: a bound that never grows (ARCHITECTURE.md rule 3). Maps are
//! `BTree*` so that nothing depends on hash order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use ronode_proto::id::NodeId;
use ronode_proto::msg::gossip::MsgId;

/// The ids of the messages this plane accepted, at most `cap`, oldest forgotten first. A
/// forgotten id is accepted again if it comes back; the hop limit ends such a message's travel.
#[derive(Debug, Clone)]
pub struct SeenCache {
    order: VecDeque<MsgId>,
    ids: BTreeSet<MsgId>,
    cap: usize,
}

impl SeenCache {
    pub fn new(cap: usize) -> SeenCache {
        assert!(cap > 0, "validated by GossipConfig");
        SeenCache {
            order: VecDeque::new(),
            ids: BTreeSet::new(),
            cap,
        }
    }

    pub fn contains(&self, id: &MsgId) -> bool {
        self.ids.contains(id)
    }

    /// Remembers `id`; false when it was already there. At the bound the oldest id goes.
    pub fn insert(&mut self, id: MsgId) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > self.cap {
            let old = self
                .order
                .pop_front()
                .expect("over the bound, so not empty");
            self.ids.remove(&old);
        }
        true
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

/// A message kept for lazy repair.
#[derive(Debug, Clone)]
pub(crate) struct Cached {
    pub topic: Arc<str>,
    /// The EVENT payload as this node sends it on: `hops + 1` of what it received, or 0 when
    /// published here. Encoded once, shared by every push and every IWANT answer.
    pub relay: Bytes,
    /// When this node first saw it (its clock, not the publisher's `ts`).
    pub at_ms: u64,
    /// Whether it may travel further (its relay `hops` is within `max_hops`).
    pub forward: bool,
    /// Peers known to hold it: the one it came from, those that sent it again or an IHAVE of
    /// it, and those served it. Never announced to, never served again. At most the peers the
    /// plane tracks.
    pub knows: Vec<NodeId>,
    /// Peers it was eagerly pushed to (at most `relay_fanout`): not announced to during the
    /// first `ihave_interval_ms` (the push is likely still in flight), announced to after that
    /// unless they proved they hold it, since a lost push is otherwise never repaired when
    /// every holder pushed to the same peer.
    pub pushed: Vec<NodeId>,
}

impl Cached {
    pub fn knows(&self, peer: &NodeId) -> bool {
        self.knows.contains(peer)
    }

    /// Whether an IHAVE should name it to `peer`: not known to hold it, and not pushed to while
    /// that push may still be in flight.
    pub fn worth_announcing(&self, peer: &NodeId, push_in_flight: bool) -> bool {
        let skip = self.knows(peer) || (push_in_flight && self.pushed.contains(peer));
        !skip
    }

    pub fn learn(&mut self, peer: NodeId) {
        if !self.knows(&peer) {
            self.knows.push(peer);
        }
    }
}

/// Messages by id, at most `cap`, oldest dropped first, and dropped once `ttl_ms` old.
#[derive(Debug, Clone)]
pub(crate) struct MessageCache {
    /// Ids in the order they were first seen (so by `at_ms`, as time never goes back).
    order: VecDeque<MsgId>,
    entries: BTreeMap<MsgId, Cached>,
    cap: usize,
}

impl MessageCache {
    pub fn new(cap: usize) -> MessageCache {
        MessageCache {
            order: VecDeque::new(),
            entries: BTreeMap::new(),
            cap,
        }
    }

    pub fn insert(&mut self, id: MsgId, msg: Cached) {
        if self.entries.insert(id, msg).is_some() {
            // A forgotten-then-seen-again id (seen cache evicted it): keep its first place.
            return;
        }
        self.order.push_back(id);
        if self.order.len() > self.cap {
            self.pop_oldest();
        }
    }

    pub fn get_mut(&mut self, id: &MsgId) -> Option<&mut Cached> {
        self.entries.get_mut(id)
    }

    /// Drops what is `ttl_ms` old at `now_ms`.
    pub fn expire(&mut self, now_ms: u64, ttl_ms: u64) {
        while let Some(id) = self.order.front() {
            if self.entries[id].at_ms.saturating_add(ttl_ms) > now_ms {
                break;
            }
            self.pop_oldest();
        }
    }

    /// The messages first seen less than `window_ms` before `now_ms`, oldest first.
    pub fn window(&self, now_ms: u64, window_ms: u64) -> impl Iterator<Item = (&MsgId, &Cached)> {
        let fresh = self
            .order
            .iter()
            .rev()
            .take_while(|id| self.entries[*id].at_ms.saturating_add(window_ms) > now_ms)
            .count();
        self.order
            .range(self.order.len() - fresh..)
            .map(|id| (id, &self.entries[id]))
    }

    pub fn len(&self) -> usize {
        self.order.len()
    }

    fn pop_oldest(&mut self) {
        if let Some(id) = self.order.pop_front() {
            self.entries.remove(&id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> MsgId {
        MsgId([n; 32])
    }

    fn cached(at_ms: u64) -> Cached {
        Cached {
            topic: Arc::from("t"),
            relay: Bytes::new(),
            at_ms,
            forward: true,
            knows: Vec::new(),
            pushed: Vec::new(),
        }
    }

    #[test]
    fn seen_cache_forgets_the_oldest_at_its_bound() {
        let mut s = SeenCache::new(3);
        assert!(s.insert(id(1)) && s.insert(id(2)) && s.insert(id(3)));
        assert!(!s.insert(id(2)), "a duplicate");
        assert!(s.insert(id(4)));
        assert_eq!(s.len(), 3);
        assert!(!s.contains(&id(1)), "the oldest went");
        assert!(s.contains(&id(2)) && s.contains(&id(4)));
        // A forgotten id is new again, and pushes out the next oldest.
        assert!(s.insert(id(1)));
        assert!(!s.contains(&id(2)));
    }

    #[test]
    fn message_cache_bound_ttl_and_window() {
        let mut c = MessageCache::new(3);
        for n in 0..4u8 {
            c.insert(id(n), cached(u64::from(n) * 100));
        }
        assert_eq!(c.len(), 3);
        assert!(
            c.get_mut(&id(0)).is_none(),
            "over the bound, the oldest went"
        );
        let window: Vec<u8> = c.window(350, 200).map(|(i, _)| i.0[0]).collect();
        assert_eq!(
            window,
            vec![2, 3],
            "seen at 200 and 300, within 200 ms of 350"
        );
        c.expire(300, 150);
        assert_eq!(c.len(), 2, "seen at 100: 150 ms old at 300");
        assert!(c.get_mut(&id(2)).is_some());
        c.expire(u64::MAX, 1);
        assert_eq!(c.len(), 0);
    }
}
