//! [`GossipPlane`]: the state machine, its lifecycle inputs (peers, subscriptions), the two
//! ways a message enters (published here, or an EVENT from a peer), eager push and local
//! delivery. Lazy repair (IHAVE / IWANT and the tick) is in `repair.rs`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use ronode_proto::id::NodeId;
use ronode_proto::limits::{MAX_CLOCK_SKEW_S, MAX_TOPIC_BYTES};
use ronode_proto::msg::gossip::{msg_id, GossipEvent, GossipEventRef, MsgId};
use ronode_proto::reason::Reason;

use super::cache::{Cached, MessageCache, SeenCache};
use super::config::{ConfigError, GossipConfig};
use super::counters::GossipCounters;
use super::outcome::{EventOutcome, PublishError, SubscribeError};
use super::output::{Delivery, PeerFrame, PeerMsg};
use crate::limiter::TokenBucket;
use crate::rng::SplitMix64;

/// The gossip plane of one shard, for the topics the shard owns. `S` names a local subscriber
/// (a client session, e.g. `(ShardId, SessionId)`); peers are [`NodeId`]s.
///
/// Inputs: `handle_peer_up` / `handle_peer_down`, `handle_subscribe` / `handle_unsubscribe` /
/// `handle_session_closed`, `handle_publish`, `handle_event`, `handle_ihave`, `handle_iwant`,
/// and `handle_timeout` once `now_ms` reaches [`GossipPlane::poll_timeout`].
///
/// Drain order, after any input: [`GossipPlane::poll_delivery`] until `None`, then
/// [`GossipPlane::poll_transmit`] until `None` (neither output feeds an input, so the order
/// between them only decides whether local subscribers or peers hear first: local first), then
/// re-arm the timer from [`GossipPlane::poll_timeout`]. Both queues are bounded
/// (`max_queued_deliveries`, `max_queued_frames`); what does not fit is dropped and counted.
#[derive(Debug)]
pub struct GossipPlane<S> {
    pub(super) config: GossipConfig,
    rng: SplitMix64,
    pub(super) peers: BTreeMap<NodeId, PeerState>,
    topics: BTreeMap<Arc<str>, TopicState<S>>,
    subscriptions: usize,
    pub(super) seen: SeenCache,
    pub(super) messages: MessageCache,
    /// Ids asked for with IWANT, with the time after which another peer may be asked.
    pub(super) pending_iwant: BTreeMap<MsgId, u64>,
    frames: VecDeque<PeerFrame>,
    deliveries: VecDeque<Delivery<S>>,
    pub(super) next_tick_ms: u64,
    pub(super) counters: GossipCounters,
}

#[derive(Debug)]
pub(super) struct PeerState {
    pub budget: TokenBucket,
}

#[derive(Debug)]
struct TopicState<S> {
    subscribers: BTreeSet<S>,
    budget: TokenBucket,
    /// Last time a message of the topic was accepted, to pick which idle topic to forget.
    last_used_ms: u64,
}

/// A new message, ready to be accepted.
struct Incoming<S> {
    id: MsgId,
    topic: Arc<str>,
    /// For local subscribers, and the payload a relay sends on.
    deliver: Bytes,
    relay: Bytes,
    forward: bool,
    from_peer: Option<NodeId>,
    from_session: Option<S>,
}

impl<S: Copy + Ord + fmt::Debug> GossipPlane<S> {
    /// A plane with no peers and no subscribers; `seed` seeds the eager-push choice (the engine
    /// derives it from `gossip.seed` and the shard), `now_ms` starts the repair tick.
    pub fn new(config: GossipConfig, seed: u64, now_ms: u64) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(GossipPlane {
            rng: SplitMix64::new(seed),
            peers: BTreeMap::new(),
            topics: BTreeMap::new(),
            subscriptions: 0,
            seen: SeenCache::new(config.seen_cache),
            messages: MessageCache::new(config.message_cache),
            pending_iwant: BTreeMap::new(),
            frames: VecDeque::new(),
            deliveries: VecDeque::new(),
            next_tick_ms: now_ms.saturating_add(config.ihave_interval_ms),
            counters: GossipCounters::default(),
            config,
        })
    }

    pub fn config(&self) -> &GossipConfig {
        &self.config
    }

    pub fn counters(&self) -> &GossipCounters {
        &self.counters
    }

    /// Peers the plane pushes to and announces to.
    pub fn peers(&self) -> impl Iterator<Item = &NodeId> {
        self.peers.keys()
    }

    /// Ids in the seen cache, and messages held for repair.
    pub fn seen_len(&self) -> usize {
        self.seen.len()
    }

    pub fn cached_len(&self) -> usize {
        self.messages.len()
    }

    /// A peer session is up: it takes part in push and repair from now on. False (and
    /// counted) past `max_peers`.
    pub fn handle_peer_up(&mut self, peer: NodeId, now_ms: u64) -> bool {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.config.max_peers {
            self.counters.peers_refused += 1;
            return false;
        }
        let budget = TokenBucket::new(self.config.peer_rate_per_s, self.config.peer_burst, now_ms);
        self.peers.entry(peer).or_insert(PeerState { budget });
        true
    }

    /// A peer session ended. Frames already queued for it stay queued (the engine drops them).
    pub fn handle_peer_down(&mut self, peer: &NodeId) {
        self.peers.remove(peer);
    }

    /// `subscriber` receives the topic's messages accepted from now on (again subscribing is
    /// not an error). Subscribing needs no capability.
    pub fn handle_subscribe(
        &mut self,
        subscriber: S,
        topic: &str,
        now_ms: u64,
    ) -> Result<(), SubscribeError> {
        if !topic_ok(topic) {
            return Err(SubscribeError::BadTopic);
        }
        if self.subscriptions >= self.config.max_subscriptions {
            return Err(SubscribeError::Full);
        }
        let state = self
            .topic_state(topic, now_ms)
            .ok_or(SubscribeError::Full)?;
        if state.subscribers.insert(subscriber) {
            self.subscriptions += 1;
        }
        Ok(())
    }

    pub fn handle_unsubscribe(&mut self, subscriber: S, topic: &str) {
        if let Some(state) = self.topics.get_mut(topic) {
            if state.subscribers.remove(&subscriber) {
                self.subscriptions -= 1;
            }
        }
    }

    /// The session ended: all its subscriptions go.
    pub fn handle_session_closed(&mut self, subscriber: S) {
        for state in self.topics.values_mut() {
            if state.subscribers.remove(&subscriber) {
                self.subscriptions -= 1;
            }
        }
    }

    /// A local client publishes `data` on `topic` with its own `ts` (unix ms) at `now_ms`: the
    /// message keeps the publisher's `ts` and so the `msg_id` the publisher computed (the engine
    /// decoded the client's EVENT, which verifies that id), so that subscribers can correlate
    /// with the publisher and a publisher's retry of the same message is a duplicate, not a
    /// second message. A `ts` more than [`MAX_CLOCK_SKEW_S`] away from `now_ms` is refused:
    /// an id may come back only within that window, where the seen cache dedups it. The EVENT
    /// goes out with `hops` 0, to the topic's other local subscribers and to peers. The caller
    /// has already checked the client's right to publish (a `scope=gossip` capability unless
    /// `gossip.pub_policy = "open"`): the plane holds no keys and knows no tenants, as the
    /// verdict belongs to the session that carried the frame.
    pub fn handle_publish(
        &mut self,
        publisher: S,
        topic: &str,
        ts: u64,
        data: &[u8],
        now_ms: u64,
    ) -> Result<MsgId, PublishError> {
        if !topic_ok(topic) {
            return Err(PublishError::BadTopic);
        }
        if ts.abs_diff(now_ms) > MAX_CLOCK_SKEW_S * 1_000 {
            return Err(PublishError::BadTs { ts, now_ms });
        }
        let id = msg_id(topic, ts, data);
        if self.seen.contains(&id) {
            self.counters.duplicates += 1;
            return Err(PublishError::Duplicate);
        }
        let topic = match self.take_topic_budget(topic, now_ms) {
            Ok(topic) => topic,
            Err(EventOutcome::TopicsFull) => return Err(PublishError::TopicsFull),
            Err(_) => {
                let retry_after_ms = self.retry_after(topic, now_ms);
                return Err(PublishError::Shed { retry_after_ms });
            }
        };
        let payload = encode_event(GossipEventRef {
            topic: &topic,
            msg_id: id,
            ts,
            hops: 0,
            data,
        });
        self.counters.published += 1;
        self.accept(
            Incoming {
                id,
                topic,
                deliver: payload.clone(),
                relay: payload,
                forward: true,
                from_peer: None,
                from_session: Some(publisher),
            },
            now_ms,
        );
        Ok(id)
    }

    /// An EVENT payload from `peer`. `Err(Malformed)` when it does not decode or its `msg_id`
    /// does not match its fields (a peer fault: the engine answers it as the session rules say);
    /// every other outcome is counted and needs nothing from the caller.
    pub fn handle_event(
        &mut self,
        peer: NodeId,
        payload: Bytes,
        now_ms: u64,
    ) -> Result<EventOutcome, Reason> {
        // `decode` recomputes the msg_id (the proto `Check`), so the id is verified once here.
        let event = GossipEvent::decode(&payload).inspect_err(|_| self.counters.malformed += 1)?;
        if !self.peers.contains_key(&peer) {
            return Ok(EventOutcome::UnknownPeer);
        }
        if event.hops > self.config.max_hops {
            self.counters.hop_limited += 1;
            return Ok(EventOutcome::HopLimited);
        }
        if self.seen.contains(&event.msg_id) {
            self.counters.duplicates += 1;
            if let Some(cached) = self.messages.get_mut(&event.msg_id) {
                cached.learn(peer);
            }
            return Ok(EventOutcome::Duplicate);
        }
        let budget = &mut self.peers.get_mut(&peer).expect("checked above").budget;
        if budget.try_take(now_ms).is_err() {
            self.counters.budget_shed += 1;
            return Ok(EventOutcome::Shed);
        }
        let topic = match self.take_topic_budget(&event.topic, now_ms) {
            Ok(topic) => topic,
            Err(outcome) => return Ok(outcome),
        };
        if self.pending_iwant.remove(&event.msg_id).is_some() {
            self.counters.pulled += 1;
        }
        // A relay sends `hops + 1`; at the limit the message stops here.
        let forward = event.hops < self.config.max_hops;
        let relay = if forward {
            encode_event(event.relayed(event.hops + 1))
        } else {
            Bytes::new()
        };
        self.accept(
            Incoming {
                id: event.msg_id,
                topic,
                deliver: payload,
                relay,
                forward,
                from_peer: Some(peer),
                from_session: None,
            },
            now_ms,
        );
        Ok(EventOutcome::Accepted)
    }

    /// The next frame for a peer, in the order decided.
    pub fn poll_transmit(&mut self) -> Option<PeerFrame> {
        self.frames.pop_front()
    }

    /// The next message for a local subscriber, in the order accepted.
    pub fn poll_delivery(&mut self) -> Option<Delivery<S>> {
        self.deliveries.pop_front()
    }

    /// When `handle_timeout` is next due (the repair tick).
    pub fn poll_timeout(&self) -> Option<u64> {
        Some(self.next_tick_ms)
    }

    /// Records a new message, delivers it locally once, and pushes it to at most
    /// `relay_fanout` peers other than the one it came from, chosen by the seeded RNG.
    fn accept(&mut self, m: Incoming<S>, now_ms: u64) {
        self.seen.insert(m.id);
        let subscribers = &self.topics[&m.topic].subscribers;
        for &subscriber in subscribers {
            if Some(subscriber) == m.from_session {
                continue; // the publisher has its own message
            }
            if self.deliveries.len() >= self.config.max_queued_deliveries {
                self.counters.deliveries_dropped += 1;
                continue;
            }
            self.deliveries.push_back(Delivery {
                subscriber,
                msg_id: m.id,
                payload: m.deliver.clone(),
            });
            self.counters.delivered += 1;
        }
        let mut pushed = Vec::new();
        if m.forward {
            let mut targets: Vec<NodeId> = self
                .peers
                .keys()
                .filter(|p| Some(**p) != m.from_peer)
                .copied()
                .collect();
            self.rng.choose(&mut targets, self.config.relay_fanout);
            for peer in targets {
                let payload = m.relay.clone();
                if self.send(
                    peer,
                    PeerMsg::Event {
                        payload,
                        repair: false,
                    },
                ) {
                    self.counters.relayed += 1;
                }
                pushed.push(peer);
            }
        }
        self.messages.insert(
            m.id,
            Cached {
                topic: m.topic,
                relay: m.relay,
                at_ms: now_ms,
                forward: m.forward,
                knows: m.from_peer.into_iter().collect(),
                pushed,
            },
        );
    }

    /// Queues a frame; false (and counted) when the queue is full.
    pub(super) fn send(&mut self, peer: NodeId, msg: PeerMsg) -> bool {
        if self.frames.len() >= self.config.max_queued_frames {
            self.counters.frames_dropped += 1;
            return false;
        }
        self.frames.push_back(PeerFrame { peer, msg });
        true
    }

    /// Takes one token of the topic's budget, creating the topic's state if needed; the
    /// topic's interned name, or why the message is dropped (counted).
    fn take_topic_budget(&mut self, topic: &str, now_ms: u64) -> Result<Arc<str>, EventOutcome> {
        let Some(state) = self.topic_state(topic, now_ms) else {
            self.counters.topics_full += 1;
            return Err(EventOutcome::TopicsFull);
        };
        if state.budget.try_take(now_ms).is_err() {
            self.counters.budget_shed += 1;
            return Err(EventOutcome::Shed);
        }
        state.last_used_ms = now_ms;
        let (name, _) = self.topics.get_key_value(topic).expect("just used");
        Ok(name.clone())
    }

    /// How long until the topic's budget has a token again (after a failed take).
    fn retry_after(&mut self, topic: &str, now_ms: u64) -> u64 {
        let state = self.topics.get_mut(topic).expect("exists after a take");
        match state.budget.try_take(now_ms) {
            Err(ms) => ms,
            Ok(()) => 1, // unreachable in practice: the take just failed at the same `now_ms`
        }
    }

    /// The topic's state, created if the table has room. When full, the least recently used
    /// topic without subscribers is forgotten (its budget restarts full if it comes back,
    /// which costs at most one burst); with every topic subscribed, `None`.
    fn topic_state(&mut self, topic: &str, now_ms: u64) -> Option<&mut TopicState<S>> {
        if !self.topics.contains_key(topic) {
            if self.topics.len() >= self.config.max_topics {
                let idle = self
                    .topics
                    .iter()
                    .filter(|(_, s)| s.subscribers.is_empty())
                    .min_by_key(|(_, s)| s.last_used_ms)
                    .map(|(name, _)| name.clone())?;
                self.topics.remove(&idle);
            }
            let budget = TokenBucket::new(
                self.config.topic_rate_per_s,
                self.config.topic_burst,
                now_ms,
            );
            let state = TopicState {
                subscribers: BTreeSet::new(),
                budget,
                last_used_ms: now_ms,
            };
            self.topics.insert(Arc::from(topic), state);
        }
        self.topics.get_mut(topic)
    }
}

/// Topics are 1 to 256 bytes of UTF-8 (PROTOCOL.md section 7.1), as a peer's EVENT decoder
/// checks; a local publish or subscribe is held to the same rule.
fn topic_ok(topic: &str) -> bool {
    (1..=MAX_TOPIC_BYTES).contains(&topic.len())
}

fn encode_event(event: GossipEventRef<'_>) -> Bytes {
    let mut out = Vec::with_capacity(96 + event.topic.len() + event.data.len());
    event.encode(&mut out);
    Bytes::from(out)
}
