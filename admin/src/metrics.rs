//! `/metrics`: the shards' published statistics as OpenMetrics text (the admin plane; README.md).
//!
//! A [`prometheus_client`] registry holds one [`Collector`] that reads the [`StatsBoard`] at
//! scrape time: shards count into their own [`ShardStats`](ronode_shards::stats::ShardStats)
//! and nothing is copied per event. Each shard's slot is held only while its counters (a
//! fixed-size copy) and its latency buckets are taken out, so a shard publishing meanwhile
//! skips one turn at most. Every family is written for every shard and every known label value
//! whether or not anything was counted, so all of them exist, at zero, from the first scrape.
//!
//! Families (counters are named without `_total`; the library appends it):
//!
//! | family | type | labels |
//! | --- | --- | --- |
//! | `request_latency_seconds` | histogram | `app` (`control`, `objects`, `gossip`), `shard`: from a request's acceptance to its answer's last frame written |
//! | `rejected_total` | counter | `reason` (every [`Reason`]), `shard` |
//! | `tls_handshake_failures_total` | counter | `reason` (every [`TlsFailure`]), `shard` |
//! | `overlay_sessions_active` | gauge | `shard` |
//! | `overlay_frames_total` | counter | `dir` (`in`, `out`), `kind` (`req`, `resp`, `event`), `shard` |
//! | `overlay_bytes_total` | counter | `dir`, `shard` |
//! | `bus_lagged_total` | counter | `shard` |
//! | `queue_depth` | gauge | `queue` (`work`, `mesh`, `send`), `shard`: items in the shard's bounded queues |
//! | `queue_dropped_total` | counter | `queue`, `shard`: items refused because their queue was full |
//! | `conns_refused_total` | counter | `shard` |
//! | `drain_cut_total` | counter | `shard`: sessions the drain deadline closed with requests unanswered |
//! | `sessions_shed_total` | counter | `shard`: sessions closed for too many refused requests |
//! | `store_objects` | gauge | `shard`: objects the shard's store holds |
//! | `store_bytes` | gauge | `shard`: their bytes |
//! | `store_quarantined_total` | counter | `shard`: files the store moved to quarantine |
//! | `store_disk_full_total` | counter | `shard`: uploads refused 507 because the disk was full |
//! | `store_reserved_bytes` | gauge | `shard`: room the store promised to uploads in progress |
//! | `overlay_peers` | gauge | `state` (`down`, `dialing`, `up`), `shard`: configured peers the shard dials |
//! | `overlay_dial_failures_total` | counter | `reason` (`connect`, `timeout`, `handshake`, `mismatch`), `shard` |
//! | `objects_fetch_total` | counter | `result` (every [`FetchResult`]), `shard`: fetch on miss |
//! | `gossip_messages_total` | counter | `event` (every [`GossipEvent`]), `shard`: the gossip plane |
//! | `session_buffer_bytes` | gauge | `shard`: bytes the shard's sessions hold in buffers (0 when all idle) |
//! | `readyz_state` | gauge | none: 1 when `/readyz` answers 200, else 0 |

use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};
use ronode_proto::reason::Reason;
use ronode_shards::peers::{DialFailure, PeerState};
use ronode_shards::stats::{
    App, Counters, Dir, FetchResult, FrameKind, GossipEvent, Queue, StatsBoard, TlsFailure,
};
use ronode_shards::ShardId;

use crate::readiness::Readiness;

/// The content type of `/metrics`.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// Upper bounds of the `request_latency_seconds` buckets, in microseconds (`+Inf` follows).
/// Dense around the seeds' SLOs (50 to 300 ms). The last stays below the histogram's 60 s top,
/// so requests clamped there count in `+Inf` only.
pub const LATENCY_BUCKETS_US: [u64; 20] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 75_000, 100_000, 150_000, 200_000,
    300_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000, 30_000_000,
];

const BUCKETS: usize = LATENCY_BUCKETS_US.len() + 1;

/// What a scrape takes out of one shard's slot.
#[derive(Debug)]
struct ShardView {
    counters: Counters,
    /// By [`App`], in [`App::ALL`] order.
    latency: [LatencyView; App::ALL.len()],
}

/// One latency histogram as a scrape writes it.
#[derive(Debug, Default)]
struct LatencyView {
    /// Non-cumulative counts per bucket of [`LATENCY_BUCKETS_US`], then `+Inf`.
    buckets: [u64; BUCKETS],
    sum_us: u64,
    count: u64,
}

/// Renders the board and readiness as OpenMetrics text.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
}

impl Metrics {
    pub fn new(board: Arc<StatsBoard>, readiness: Arc<Readiness>) -> Self {
        let shard_labels = (0..board.shard_count()).map(|s| s.to_string()).collect();
        let mut registry = Registry::default();
        registry.register_collector(Box::new(BoardCollector {
            board,
            readiness,
            shard_labels,
        }));
        Metrics { registry }
    }

    /// The whole exposition, ending with `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(64 * 1024);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[derive(Debug)]
struct BoardCollector {
    board: Arc<StatsBoard>,
    readiness: Arc<Readiness>,
    shard_labels: Vec<String>,
}

impl BoardCollector {
    fn views(&self) -> Vec<ShardView> {
        (0..self.board.shard_count())
            .map(|s| {
                self.board.read(ShardId(s), |snap| ShardView {
                    counters: snap.counters,
                    latency: std::array::from_fn(|a| {
                        let mut view = LatencyView {
                            sum_us: snap.latency[a].sum_us(),
                            count: snap.latency[a].count(),
                            ..LatencyView::default()
                        };
                        snap.latency[a].bucket_counts(&LATENCY_BUCKETS_US, &mut view.buckets);
                        view
                    }),
                })
            })
            .collect()
    }
}

/// Writes one family: its descriptor, then one series per `(labels, value)`.
fn family<L: EncodeLabelSet>(
    enc: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    kind: MetricType,
    series: impl Iterator<Item = (L, u64)>,
) -> fmt::Result {
    let mut metric = enc.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in series {
        let mut m = metric.encode_family(&labels)?;
        match kind {
            MetricType::Counter => m.encode_counter::<NoLabelSet, _, u64>(&value, None)?,
            _ => m.encode_gauge(&value)?,
        }
    }
    Ok(())
}

impl Collector for BoardCollector {
    fn encode(&self, mut enc: DescriptorEncoder) -> fmt::Result {
        use MetricType::{Counter, Gauge};
        let views = self.views();
        let shards = || {
            views
                .iter()
                .zip(&self.shard_labels)
                .map(|(v, s)| (&v.counters, s.as_str()))
        };

        #[cfg(feature = "count-allocs")]
        family(
            &mut enc,
            "heap_allocations",
            "Heap allocations made by the shard threads (bench builds with count-allocs).",
            Counter,
            std::iter::once(([] as [(&str, &str); 0], crate::alloc_count::allocations())),
        )?;
        {
            let mut metric = enc.encode_descriptor(
                "request_latency",
                "Time from a request's acceptance to its answer's last frame written, by app.",
                Some(&Unit::Seconds),
                MetricType::Histogram,
            )?;
            let mut buckets = [(0.0, 0); BUCKETS];
            for (view, shard) in views.iter().zip(&self.shard_labels) {
                for (app, latency) in App::ALL.iter().zip(&view.latency) {
                    for (i, b) in buckets.iter_mut().enumerate() {
                        let le = LATENCY_BUCKETS_US
                            .get(i)
                            .map_or(f64::INFINITY, |&us| us as f64 / 1e6);
                        *b = (le, latency.buckets[i]);
                    }
                    metric
                        .encode_family(&[("app", app.label()), ("shard", shard.as_str())])?
                        .encode_histogram::<NoLabelSet>(
                            latency.sum_us as f64 / 1e6,
                            latency.count,
                            &buckets,
                            None,
                        )?;
                }
            }
        }
        family(
            &mut enc,
            "rejected",
            "Frames, sessions and requests rejected, by reason label.",
            Counter,
            shards().flat_map(|(c, s)| {
                Reason::ALL
                    .into_iter()
                    .map(move |r| ([("reason", r.label()), ("shard", s)], c.rejected(r)))
            }),
        )?;
        family(
            &mut enc,
            "tls_handshake_failures",
            "TLS handshakes that failed, by cause.",
            Counter,
            shards().flat_map(|(c, s)| {
                TlsFailure::ALL.into_iter().map(move |r| {
                    (
                        [("reason", r.label()), ("shard", s)],
                        c.tls_handshake_failures(r),
                    )
                })
            }),
        )?;
        family(
            &mut enc,
            "overlay_sessions_active",
            "Overlay sessions open now.",
            Gauge,
            shards().map(|(c, s)| ([("shard", s)], c.overlay_sessions_active())),
        )?;
        family(
            &mut enc,
            "overlay_frames",
            "OAP/1 frames received (in) and sent (out), by kind.",
            Counter,
            shards().flat_map(|(c, s)| {
                Dir::ALL.into_iter().flat_map(move |d| {
                    FrameKind::ALL.into_iter().map(move |k| {
                        (
                            [("dir", d.label()), ("kind", k.label()), ("shard", s)],
                            c.overlay_frames(d, k),
                        )
                    })
                })
            }),
        )?;
        family(
            &mut enc,
            "overlay_bytes",
            "OAP/1 bytes received (in) and sent (out).",
            Counter,
            shards().flat_map(|(c, s)| {
                Dir::ALL
                    .into_iter()
                    .map(move |d| ([("dir", d.label()), ("shard", s)], c.overlay_bytes(d)))
            }),
        )?;
        family(
            &mut enc,
            "bus_lagged",
            "Times a mesh channel to another shard was found full.",
            Counter,
            shards().map(|(c, s)| ([("shard", s)], c.bus_lagged())),
        )?;
        family(
            &mut enc,
            "queue_depth",
            "Items waiting in each bounded queue.",
            Gauge,
            shards().flat_map(|(c, s)| {
                Queue::ALL
                    .into_iter()
                    .map(move |q| ([("queue", q.label()), ("shard", s)], c.queue_depth(q)))
            }),
        )?;
        family(
            &mut enc,
            "queue_dropped",
            "Items refused because their queue was full.",
            Counter,
            shards().flat_map(|(c, s)| {
                Queue::ALL
                    .into_iter()
                    .map(move |q| ([("queue", q.label()), ("shard", s)], c.queue_dropped(q)))
            }),
        )?;
        family(
            &mut enc,
            "conns_refused",
            "Connections closed before the TLS handshake because max_conns was reached.",
            Counter,
            shards().map(|(c, s)| ([("shard", s)], c.conns_refused())),
        )?;
        family(
            &mut enc,
            "drain_cut",
            "Sessions the drain deadline closed before every request they sent was answered.",
            Counter,
            shards().map(|(c, s)| ([("shard", s)], c.drain_cut())),
        )?;
        family(
            &mut enc,
            "sessions_shed",
            "Sessions closed (GOAWAY quota) for collecting too many refused requests.",
            Counter,
            shards().map(|(c, s)| ([("shard", s)], c.sessions_shed())),
        )?;
        family(
            &mut enc,
            "store_objects",
            "Objects the shard's store holds.",
            Gauge,
            shards().map(|(c, s)| ([("shard", s)], c.store().objects)),
        )?;
        family(
            &mut enc,
            "store_bytes",
            "Bytes of the objects the shard's store holds.",
            Gauge,
            shards().map(|(c, s)| ([("shard", s)], c.store().bytes)),
        )?;
        family(
            &mut enc,
            "store_quarantined",
            "Object files moved to quarantine: failed verification, torn, or not named as an address.",
            Counter,
            shards().map(|(c, s)| ([("shard", s)], c.store().quarantined)),
        )?;
        family(
            &mut enc,
            "store_disk_full",
            "Uploads refused 507 store_full because the disk was full (ENOSPC, EDQUOT, a short write).",
            Counter,
            shards().map(|(c, s)| ([("shard", s)], c.store().disk_full)),
        )?;
        family(
            &mut enc,
            "store_reserved_bytes",
            "Bytes the shard's store promised to uploads in progress (given back at commit or abort).",
            Gauge,
            shards().map(|(c, s)| ([("shard", s)], c.store().reserved)),
        )?;
        family(
            &mut enc,
            "overlay_peers",
            "Configured peers this shard dials, by state.",
            Gauge,
            shards().flat_map(|(c, s)| {
                PeerState::ALL.into_iter().map(move |st| {
                    (
                        [("state", st.label()), ("shard", s)],
                        c.peers().peers[st as usize],
                    )
                })
            }),
        )?;
        family(
            &mut enc,
            "overlay_dial_failures",
            "Dials of configured peers that failed, by cause.",
            Counter,
            shards().flat_map(|(c, s)| {
                DialFailure::ALL.into_iter().map(move |r| {
                    (
                        [("reason", r.label()), ("shard", s)],
                        c.peers().dial_failures[r as usize],
                    )
                })
            }),
        )?;
        family(
            &mut enc,
            "objects_fetch",
            "Fetch on miss: fetches found or not, and tries that failed, by result.",
            Counter,
            shards().flat_map(|(c, s)| {
                FetchResult::ALL.into_iter().map(move |r| {
                    (
                        [("result", r.label()), ("shard", s)],
                        c.peers().fetches[r as usize],
                    )
                })
            }),
        )?;
        family(
            &mut enc,
            "gossip_messages",
            "Gossip messages published, relayed, delivered, dropped as duplicates or past a \
             budget or the hop limit, repaired, and dropped at a full queue, by event.",
            Counter,
            shards().flat_map(|(c, s)| {
                GossipEvent::ALL
                    .into_iter()
                    .map(move |e| ([("event", e.label()), ("shard", s)], c.gossip(e)))
            }),
        )?;
        family(
            &mut enc,
            "session_buffer_bytes",
            "Bytes the shard's sessions hold in read, write and ciphertext buffers; idle \
             sessions hold none.",
            Gauge,
            shards().map(|(c, s)| ([("shard", s)], c.session_buffer_bytes())),
        )?;
        enc.encode_descriptor(
            "readyz_state",
            "1 when /readyz answers 200, else 0.",
            None,
            Gauge,
        )?
        .encode_gauge(&u64::from(self.readiness.is_ready()))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ronode_shards::stats::{Publish, ShardStats, StoreUsage};

    fn metrics(shards: u16) -> (Arc<StatsBoard>, Arc<Readiness>, Metrics) {
        let board = Arc::new(StatsBoard::new(shards));
        let readiness = Arc::new(Readiness::new(&["overlay"]));
        let m = Metrics::new(board.clone(), readiness.clone());
        (board, readiness, m)
    }

    #[test]
    fn every_series_is_present_at_zero() {
        let (_, _, m) = metrics(2);
        let text = m.render();
        assert!(text.ends_with("# EOF\n"), "{text}");
        for shard in ["0", "1"] {
            for r in Reason::ALL {
                let line = format!("rejected_total{{reason=\"{r}\",shard=\"{shard}\"}} 0\n");
                assert!(text.contains(&line), "{line}");
            }
            for app in App::ALL {
                let app = app.label();
                let line = format!(
                    "request_latency_seconds_bucket{{le=\"+Inf\",app=\"{app}\",shard=\"{shard}\"}} 0"
                );
                assert!(text.contains(&line), "{line}");
            }
        }
        assert!(text.contains("# TYPE rejected counter\n"));
        assert!(text.contains("# UNIT request_latency_seconds seconds\n"));
        assert!(text.contains("\nreadyz_state 0\n"));
        for line in [
            "store_objects{shard=\"1\"} 0\n",
            "store_bytes{shard=\"0\"} 0\n",
            "store_quarantined_total{shard=\"1\"} 0\n",
            "store_disk_full_total{shard=\"0\"} 0\n",
            "overlay_peers{state=\"up\",shard=\"0\"} 0\n",
            "overlay_dial_failures_total{reason=\"mismatch\",shard=\"1\"} 0\n",
            "objects_fetch_total{result=\"bad_digest\",shard=\"0\"} 0\n",
            "gossip_messages_total{event=\"budget_shed\",shard=\"1\"} 0\n",
            "session_buffer_bytes{shard=\"0\"} 0\n",
            "store_reserved_bytes{shard=\"1\"} 0\n",
        ] {
            assert!(text.contains(line), "{line}");
        }
        // 1 + 29 + 5 + 1 + 6 + 2 + 1 + 3 + 3 + 1 + 3 + 3 + 4 + 6 + 8 + 1 series per shard, plus
        // store_disk_full_total, drain_cut_total and sessions_shed_total (3 more per shard),
        // store_reserved_bytes (1 more), plus readyz_state; the histogram writes sum, count and one line per bucket.
        let samples = text.lines().filter(|l| !l.starts_with('#')).count();
        assert_eq!(
            samples,
            2 * (3 * (2 + BUCKETS)
                + 29
                + 5
                + 1
                + 6
                + 2
                + 1
                + 3
                + 3
                + 1
                + 3
                + 3
                + 4
                + 6
                + 8
                + 1
                + 3
                + 1)
                + 1
        );
    }

    #[test]
    fn published_values_appear() {
        let (board, readiness, m) = metrics(2);
        let mut s = ShardStats::new(ShardId(1));
        s.rejected(Reason::RatioCap);
        s.frame(Dir::Out, FrameKind::Event, 64);
        s.set_queue_depth(Queue::Mesh, 3);
        s.set_store(StoreUsage {
            objects: 2,
            bytes: 4096,
            quarantined: 1,
            disk_full: 5,
            reserved: 7,
        });
        for us in [90, 1_500, 1_500, 70_000_000] {
            s.request_latency_us(App::Objects, us);
        }
        assert_eq!(board.publish(&mut s, 0), Publish::Published);
        readiness.set_ready("overlay");
        let text = m.render();
        for line in [
            "rejected_total{reason=\"ratio_cap\",shard=\"1\"} 1\n",
            "rejected_total{reason=\"ratio_cap\",shard=\"0\"} 0\n",
            "overlay_frames_total{dir=\"out\",kind=\"event\",shard=\"1\"} 1\n",
            "overlay_bytes_total{dir=\"out\",shard=\"1\"} 64\n",
            "queue_depth{queue=\"mesh\",shard=\"1\"} 3\n",
            "store_objects{shard=\"1\"} 2\n",
            "store_bytes{shard=\"1\"} 4096\n",
            "store_quarantined_total{shard=\"1\"} 1\n",
            "store_disk_full_total{shard=\"1\"} 5\n",
            "store_reserved_bytes{shard=\"1\"} 7\n",
            "request_latency_seconds_count{app=\"objects\",shard=\"1\"} 4\n",
            "request_latency_seconds_sum{app=\"objects\",shard=\"1\"} 70.00309\n",
            "request_latency_seconds_bucket{le=\"0.0001\",app=\"objects\",shard=\"1\"} 1\n",
            "request_latency_seconds_bucket{le=\"0.001\",app=\"objects\",shard=\"1\"} 1\n",
            "request_latency_seconds_bucket{le=\"0.0025\",app=\"objects\",shard=\"1\"} 3\n",
            "request_latency_seconds_bucket{le=\"30.0\",app=\"objects\",shard=\"1\"} 3\n",
            "request_latency_seconds_bucket{le=\"+Inf\",app=\"objects\",shard=\"1\"} 4\n",
            "\nreadyz_state 1\n",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
