//! Lazy repair, in the manner of gossipsub and Plumtree: eager push reaches only
//! `relay_fanout` peers, so every `ihave_interval_ms` the plane announces the ids it saw in the
//! last `ihave_window_ms` (IHAVE) to the peers not known to hold them (not the source, not
//! having sent the message or an IHAVE of it) and, during the message's first interval, not
//! pushed to. Pushed peers are announced to after that, unless they showed they hold it: with
//! pushes lost, every holder may have pushed to the same peer, and nobody would announce to
//! it (the 30%-loss simulation found such runs). A peer that lacks an announced id
//! asks for it (IWANT), and the holder sends it as an ordinary EVENT. Announcing over a window
//! of several ticks retries a lost IHAVE, IWANT or answer; a pending IWANT is asked of one peer
//! at a time, and of another once `iwant_timeout_ms` passed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use ronode_proto::id::NodeId;
use ronode_proto::msg::gossip::{IHave, IWant, MsgId};

use super::output::PeerMsg;
use super::plane::GossipPlane;

impl<S: Copy + Ord + fmt::Debug> GossipPlane<S> {
    /// IHAVE from `peer`: asks it (one IWANT) for the announced ids that are neither seen nor
    /// already asked for, within `max_pending_iwant`.
    pub fn handle_ihave(&mut self, peer: NodeId, ihave: &IHave, now_ms: u64) {
        if !self.peers.contains_key(&peer) {
            return;
        }
        self.counters.ihave_received += 1;
        let mut wanted = Vec::new();
        for id in &ihave.ids {
            if let Some(cached) = self.messages.get_mut(id) {
                cached.learn(peer);
            }
            if self.seen.contains(id) || !self.may_ask(id, now_ms) {
                continue;
            }
            if self.pending_iwant.len() >= self.config.max_pending_iwant
                && !self.pending_iwant.contains_key(id)
            {
                break;
            }
            self.pending_iwant
                .insert(*id, now_ms.saturating_add(self.config.iwant_timeout_ms));
            wanted.push(*id);
        }
        if wanted.is_empty() {
            return;
        }
        let n = wanted.len() as u64;
        if self.send(peer, PeerMsg::IWant(IWant { ids: wanted })) {
            self.counters.iwant_sent += 1;
            self.counters.iwant_ids_sent += n;
        }
    }

    /// IWANT from `peer`: sends each wanted message still cached, once per peer. An IWANT takes
    /// a token of the peer's budget, so pulls are bounded like pushes.
    pub fn handle_iwant(&mut self, peer: NodeId, iwant: &IWant, now_ms: u64) {
        let Some(state) = self.peers.get_mut(&peer) else {
            return;
        };
        self.counters.iwant_received += 1;
        if state.budget.try_take(now_ms).is_err() {
            self.counters.budget_shed += 1;
            return;
        }
        for id in &iwant.ids {
            let Some(cached) = self.messages.get_mut(id) else {
                continue; // expired or never here: the peer asks someone else later
            };
            if !cached.forward || cached.knows(&peer) {
                continue;
            }
            cached.learn(peer);
            let payload = cached.relay.clone();
            if self.send(
                peer,
                PeerMsg::Event {
                    payload,
                    repair: true,
                },
            ) {
                self.counters.repaired += 1;
            }
        }
    }

    /// The repair tick, when `now_ms` reached [`GossipPlane::poll_timeout`] (earlier calls do
    /// nothing): expires cached messages and pending IWANTs, then sends the IHAVE digests.
    pub fn handle_timeout(&mut self, now_ms: u64) {
        if now_ms < self.next_tick_ms {
            return;
        }
        // From now, not from the missed deadline: a late tick does not make up for lost ones.
        self.next_tick_ms = now_ms.saturating_add(self.config.ihave_interval_ms);
        self.messages.expire(now_ms, self.config.message_ttl_ms);
        self.pending_iwant.retain(|_, deadline| *deadline > now_ms);

        // One IHAVE per (peer, topic) with at most `max_ihave_ids` ids, oldest first; a BTreeMap
        // so the frames go out in the same order every run.
        let mut digests: BTreeMap<(NodeId, Arc<str>), Vec<MsgId>> = BTreeMap::new();
        let window = self.messages.window(now_ms, self.config.ihave_window_ms);
        for (id, cached) in window.filter(|(_, c)| c.forward) {
            let push_in_flight =
                now_ms < cached.at_ms.saturating_add(self.config.ihave_interval_ms);
            let peers = self.peers.keys();
            for peer in peers.filter(|p| cached.worth_announcing(p, push_in_flight)) {
                let ids = digests.entry((*peer, cached.topic.clone())).or_default();
                if ids.len() < self.config.max_ihave_ids {
                    ids.push(*id);
                }
            }
        }
        for ((peer, topic), ids) in digests {
            let n = ids.len() as u64;
            let ihave = IHave {
                topic: topic.to_string(),
                ids,
            };
            if self.send(peer, PeerMsg::IHave(ihave)) {
                self.counters.ihave_sent += 1;
                self.counters.ihave_ids_sent += n;
            }
        }
    }

    /// Whether `id` may be asked for now: not asked yet, or its last ask timed out.
    fn may_ask(&self, id: &MsgId, now_ms: u64) -> bool {
        self.pending_iwant
            .get(id)
            .is_none_or(|deadline| *deadline <= now_ms)
    }
}
