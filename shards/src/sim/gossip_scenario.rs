//! The gossip scenario: `nodes` [`GossipNode`]s, each dialling `degree` others chosen from the
//! seed, a few topics each subscribed by a share of the nodes, messages published at random
//! live nodes at a steady pace, a partition that heals and a share of the nodes killed on the
//! way. Figures: delivery ratio over the subscribers alive at the end (every message to every
//! one of them), p50/p99 of publish-to-delivery virtual latency, duplicates.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use ronode_proto::id::NodeId;
use ronode_proto::msg::gossip::MsgId;

use super::gossip_node::{GossipNode, GossipNodeConfig, GossipNote, GossipOp};
use super::net::{mix, Profile, PURPOSE_SCENARIO};
use super::node::Now;
use super::report::{percentile, rss_mb, Json};
use super::world::{node_id, Sim, SimConfig, SimError};
use crate::rng::SplitMix64;

/// Draws for a live publisher before a publish is skipped (all or nearly all nodes killed).
const MAX_PUBLISHER_DRAWS: u32 = 1_000;

/// A gossip run's parameters. Times are virtual ms from the start.
#[derive(Debug, Clone)]
pub struct GossipScenario {
    pub seed: u64,
    pub nodes: u32,
    pub profile: Profile,
    pub node: GossipNodeConfig,
    /// Peers each node dials (so about twice as many links per node).
    pub degree: usize,
    pub topics: usize,
    /// Share of nodes subscribing to each topic, per mille.
    pub subscribe_permille: u32,
    pub messages: usize,
    pub warmup_ms: u64,
    pub publish_every_ms: u64,
    /// Nodes cut off from `partition_at_ms` to `heal_at_ms`, per mille (0: none).
    pub partition_permille: u32,
    pub partition_at_ms: u64,
    pub heal_at_ms: u64,
    /// Nodes killed at `kill_at_ms` for good, per mille (0: none).
    pub kill_permille: u32,
    pub kill_at_ms: u64,
    /// Time after the last publish for repair to finish.
    pub drain_ms: u64,
}

impl GossipScenario {
    /// The defaults of `scripts/sim.sh --scenario gossip`: 8 peers dialled per node, 4 topics
    /// each subscribed by half of the nodes, 200 messages one every 20 ms after 1 s of warm-up,
    /// 10 % cut off from 1.5 s to 3 s, 10 % killed at 3.5 s, 5 s to drain.
    pub fn new(seed: u64, nodes: u32, shards: u16, profile: Profile) -> GossipScenario {
        GossipScenario {
            seed,
            nodes,
            profile,
            node: GossipNodeConfig {
                shards,
                ..GossipNodeConfig::default()
            },
            degree: 8,
            topics: 4,
            subscribe_permille: 500,
            messages: 200,
            warmup_ms: 1_000,
            publish_every_ms: 20,
            partition_permille: 100,
            partition_at_ms: 1_500,
            heal_at_ms: 3_000,
            kill_permille: 100,
            kill_at_ms: 3_500,
            drain_ms: 5_000,
        }
    }
}

/// What a gossip run measured.
#[derive(Debug, Clone)]
pub struct GossipOutcome {
    pub published: u64,
    pub refused: u64,
    /// Delivered (subscriber, message) pairs over those expected (subscribers alive at the end).
    pub delivered: u64,
    pub expected: u64,
    pub duplicates: u64,
    pub p50_ms: Option<u64>,
    pub p99_ms: Option<u64>,
    pub max_ms: Option<u64>,
    pub trace_hash: String,
    pub virtual_ms: u64,
    pub wall_s: f64,
    pub events: u64,
    /// The report, one JSON object.
    pub json: String,
}

impl GossipOutcome {
    pub fn delivery(&self) -> f64 {
        if self.expected == 0 {
            1.0
        } else {
            self.delivered as f64 / self.expected as f64
        }
    }
}

/// `count` distinct nodes of `0..n` other than `not`, drawn from `rng`.
fn pick(rng: &mut SplitMix64, n: u32, count: usize, not: Option<u32>) -> Vec<u32> {
    let count = count.min(n as usize - usize::from(not.is_some()));
    let mut out: Vec<u32> = Vec::with_capacity(count);
    while out.len() < count {
        let c = rng.below(n as usize) as u32;
        if Some(c) != not && !out.contains(&c) {
            out.push(c);
        }
    }
    out
}

/// Per-mille share of `0..n` drawn from `rng`, sorted.
fn share(rng: &mut SplitMix64, n: u32, permille: u32) -> Vec<u32> {
    let mut all: Vec<u32> = (0..n).collect();
    rng.choose(&mut all, (n as u64 * u64::from(permille) / 1_000) as usize);
    all.sort_unstable();
    all
}

impl GossipScenario {
    /// Runs the scenario. An invariant failure stops it with the seed and step.
    pub fn run(&self) -> Result<GossipOutcome, SimError> {
        let started = Instant::now();
        let mut rng = SplitMix64::new(mix(self.seed, PURPOSE_SCENARIO, 0));
        let n = self.nodes;
        let peers: Vec<Vec<NodeId>> = (0..n)
            .map(|i| {
                pick(&mut rng, n, self.degree, Some(i))
                    .into_iter()
                    .map(|j| node_id(self.seed, j))
                    .collect()
            })
            .collect();
        let node_config = self.node.clone();
        let factory = Box::new(move |i: u32, id: NodeId, seed: u64| {
            let now = Now {
                mono_ms: 0,
                mono_us: 0,
                unix_s: 0,
            };
            GossipNode::new(id, node_config.clone(), &peers[i as usize], seed, now)
        });
        let config = SimConfig {
            seed: self.seed,
            profile: self.profile,
            keep_ram_on_restart: false,
        };
        let mut sim = Sim::new(config, n, factory);
        let topics: Vec<String> = (0..self.topics).map(|t| format!("topic-{t}")).collect();
        let mut subscribers: Vec<Vec<u32>> = Vec::new();
        for topic in &topics {
            let subs = share(&mut rng, n, self.subscribe_permille);
            for &s in &subs {
                sim.op(
                    s,
                    GossipOp::Subscribe {
                        topic: topic.clone(),
                    },
                )?;
            }
            subscribers.push(subs);
        }
        let cut = share(&mut rng, n, self.partition_permille);
        let killed = share(&mut rng, n, self.kill_permille);
        // The scenario's steps besides publishing, in time order: (time, step, done).
        let mut steps: Vec<(u64, Step, bool)> = Vec::new();
        if self.partition_permille > 0 {
            steps.push((self.partition_at_ms, Step::Partition, false));
            steps.push((self.heal_at_ms.max(self.partition_at_ms), Step::Heal, false));
        }
        if self.kill_permille > 0 {
            steps.push((self.kill_at_ms, Step::Kill, false));
        }
        steps.sort_by_key(|s| s.0);
        // Scenario steps in time order: publishes, then the partition, heal and kill.
        let mut published: BTreeMap<MsgId, (u64, usize)> = BTreeMap::new();
        let mut refused = 0u64;
        let mut deliveries: HashMap<(u32, MsgId), u64> = HashMap::new();
        let mut duplicates = 0u64;
        let mut latencies: Vec<u64> = Vec::new();
        let mut collect = |sim: &mut Sim<GossipNode>,
                           published: &mut BTreeMap<MsgId, (u64, usize)>,
                           refused: &mut u64,
                           topic: Option<usize>| {
            for (t, node, note) in sim.take_notes() {
                match note {
                    GossipNote::Published { msg_id } => {
                        published.insert(msg_id, (t, topic.expect("a publish note")));
                    }
                    GossipNote::Refused(_) => *refused += 1,
                    GossipNote::Delivered { msg_id } => match deliveries.entry((node, msg_id)) {
                        Entry::Occupied(_) => duplicates += 1,
                        Entry::Vacant(v) => {
                            v.insert(t);
                        }
                    },
                    GossipNote::Pushed { .. } => {}
                }
            }
        };
        for k in 0..self.messages {
            let at = self.warmup_ms + k as u64 * self.publish_every_ms;
            for step in steps.iter_mut().filter(|s| s.0 <= at && !s.2) {
                sim.run_until(step.0)?;
                collect(&mut sim, &mut published, &mut refused, None);
                apply(&mut sim, step.1, &cut, &killed);
                step.2 = true;
            }
            sim.run_until(at)?;
            collect(&mut sim, &mut published, &mut refused, None);
            let topic = rng.below(topics.len());
            let mut node = rng.below(n as usize) as u32;
            // A live node, drawn again while the drawn one is dead (none alive: no publish).
            let mut draws = 0;
            while !sim.is_alive(node) && draws < MAX_PUBLISHER_DRAWS {
                node = rng.below(n as usize) as u32;
                draws += 1;
            }
            if !sim.is_alive(node) {
                continue;
            }
            let data = format!("message {k} from {node}").into_bytes();
            sim.op(
                node,
                GossipOp::Publish {
                    topic: topics[topic].clone(),
                    data,
                },
            )?;
            collect(&mut sim, &mut published, &mut refused, Some(topic));
        }
        let end = self.warmup_ms + self.messages as u64 * self.publish_every_ms + self.drain_ms;
        for step in steps.iter_mut().filter(|s| !s.2) {
            sim.run_until(step.0.min(end))?;
            apply(&mut sim, step.1, &cut, &killed);
            step.2 = true;
        }
        sim.run_until(end)?;
        collect(&mut sim, &mut published, &mut refused, None);

        // Expected: every message to every subscriber of its topic alive at the end.
        let mut expected = 0u64;
        let mut delivered = 0u64;
        for (id, (t0, topic)) in &published {
            for &s in &subscribers[*topic] {
                if !sim.is_alive(s) {
                    continue;
                }
                expected += 1;
                if let Some(t) = deliveries.get(&(s, *id)) {
                    delivered += 1;
                    latencies.push(t - t0);
                }
            }
        }
        latencies.sort_unstable();
        let wall_s = started.elapsed().as_secs_f64();
        let c = sim.counters().clone();
        let mut outcome = GossipOutcome {
            published: published.len() as u64,
            refused,
            delivered,
            expected,
            duplicates,
            p50_ms: percentile(&latencies, 50),
            p99_ms: percentile(&latencies, 99),
            max_ms: latencies.last().copied(),
            trace_hash: sim.trace_hash(),
            virtual_ms: sim.now_ms(),
            wall_s,
            events: c.events,
            json: String::new(),
        };
        let mut plane = [0u64; 4];
        let mut links = [0u64; 3];
        for i in 0..n {
            if let Some(node) = sim.node(i) {
                for p in node.planes() {
                    let pc = p.counters();
                    plane[0] += pc.relayed;
                    plane[1] += pc.duplicates;
                    plane[2] += pc.repaired;
                    plane[3] += pc.budget_shed;
                }
                let lc = node.link_counters();
                links[0] += lc.no_link;
                links[1] += lc.reqs_shed;
                links[2] += lc.duplicate_links;
            }
        }
        let mut j = Json::new();
        j.str("scenario", "gossip");
        j.u64("nodes", u64::from(n));
        j.u64("shards", u64::from(self.node.shards));
        j.str("profile", self.profile.name);
        j.u64("seed", self.seed);
        j.null("fetch_success");
        j.f64("gossip_delivery", outcome.delivery());
        opt(&mut j, "gossip_p50_ms", outcome.p50_ms);
        opt(&mut j, "gossip_p99_ms", outcome.p99_ms);
        opt(&mut j, "gossip_max_ms", outcome.max_ms);
        j.u64("gossip_published", outcome.published);
        j.u64("gossip_refused", refused);
        j.u64("gossip_expected", expected);
        j.u64("gossip_delivered", delivered);
        j.u64("gossip_duplicate_deliveries", duplicates);
        j.u64("gossip_relayed", plane[0]);
        j.u64("gossip_duplicates_dropped", plane[1]);
        j.u64("gossip_repaired", plane[2]);
        j.u64("gossip_budget_shed", plane[3]);
        j.u64("frames_no_link", links[0]);
        j.u64("reqs_shed", links[1]);
        j.u64("duplicate_links", links[2]);
        j.u64(
            "partitioned_nodes",
            cut.len() as u64 * u64::from(self.partition_permille > 0),
        );
        j.u64(
            "killed_nodes",
            killed.len() as u64 * u64::from(self.kill_permille > 0),
        );
        j.u64("open_connections", sim.open_connections() as u64);
        c.write(&mut j);
        j.u64("virtual_ms", outcome.virtual_ms);
        j.str("trace_hash", &outcome.trace_hash);
        j.f64("wall_s", wall_s);
        j.f64("events_per_s", c.events as f64 / wall_s.max(1e-9));
        j.f64("rss_mb", rss_mb());
        outcome.json = j.finish();
        Ok(outcome)
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Partition,
    Heal,
    Kill,
}

fn apply(sim: &mut Sim<GossipNode>, step: Step, cut: &[u32], killed: &[u32]) {
    match step {
        Step::Partition => sim.partition(cut),
        Step::Heal => sim.heal(),
        Step::Kill => {
            for &k in killed {
                sim.kill(k);
            }
        }
    }
}

fn opt(j: &mut Json, key: &str, v: Option<u64>) {
    match v {
        Some(v) => j.u64(key, v),
        None => j.null(key),
    }
}
