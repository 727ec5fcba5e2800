//! A session this node dialled to a peer: the dialer side of OAP/1. HELLO first, a PING every
//! `ping_interval` (a peer that does not answer one within `answer_timeout` is dropped), and
//! the GETs the fetcher queues for this peer ([`Link::push`]), pipelined up to the protocol's
//! in-flight bound, each answer handed to `on_answer` when its last frame arrived; and the
//! gossip frames the plane has for this peer ([`Link::push_gossip`]): EVENTs, and IHAVE / IWANT
//! REQs whose `{"ok": true}` answers are taken and ignored. Gossip EVENTs the peer sends on this
//! session go to `on_event`, as if they came on a session the peer dialled (gossip runs both
//! ways whoever dialled); an EVENT asking ACK_REQ is acknowledged.

use super::tls_conn::TlsConn;
use bytes::{Bytes, BytesMut};
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use ronode_proto::control::{Control, Hello, APP_CONTROL};
use ronode_proto::frame::{FrameEncoder, OutFrame};
use ronode_proto::inbound::Inbound;
use ronode_proto::limits::MAX_INFLIGHT;
use ronode_proto::msg::objects::{Get, ObjectRequest};
use ronode_proto::msg::APP_GOSSIP;
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::sequence::Role;
use ronode_proto::Flags;
use ronode_proto::{Kind, ObjectAddr};
use ronode_shards::gossip::PeerMsg as GossipMsg;
use ronode_shards::objects::fetch::Answer;
use ronode_shards::session::SERVED_APPS;
use ronode_shards::ShardId;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::time::{Duration, Instant};

/// GETs queued for one peer beyond those in flight; past it a try fails at once.
const LINK_QUEUE: usize = 256;
/// Gossip frames queued for one peer; past it they are dropped (lazy repair recovers them).
const GOSSIP_QUEUE: usize = 8_192;

/// How a link behaves.
#[derive(Debug, Clone)]
pub struct LinkCfg {
    pub ping_interval: Duration,
    /// How long the HELLO, a PING or a write may take.
    pub answer_timeout: Duration,
    pub max_frame: u32,
    /// The largest object body accepted (`objects.max_bytes`).
    pub max_body: u64,
    /// How long a read waits before the loop looks at its timers again.
    pub tick: Duration,
}

/// A GET the fetcher wants this peer asked, and where its answer goes.
#[derive(Debug, Clone, Copy)]
pub struct LinkGet {
    pub try_id: u64,
    /// The shard whose fetcher waits for the answer.
    pub origin: ShardId,
    pub addr: ObjectAddr,
    pub hops: u8,
}

/// The queue of GETs for one link, and the signal that wakes it.
pub struct Link {
    queue: RefCell<VecDeque<LinkGet>>,
    gossip: RefCell<VecDeque<GossipMsg>>,
    closed: Cell<bool>,
    /// The node drains: the link says GOAWAY and closes.
    draining: Cell<bool>,
    wake_tx: LocalSender<()>,
    wake_rx: LocalReceiver<()>,
}

impl Link {
    pub fn new() -> Link {
        let (wake_tx, wake_rx) = local_channel::new_bounded(1);
        Link {
            queue: RefCell::new(VecDeque::new()),
            gossip: RefCell::new(VecDeque::new()),
            closed: Cell::new(false),
            draining: Cell::new(false),
            wake_tx,
            wake_rx,
        }
    }

    /// Queues a GET; hands it back when the link is closed or its queue full.
    pub fn push(&self, get: LinkGet) -> Result<(), LinkGet> {
        let mut q = self.queue.borrow_mut();
        if self.closed.get() || q.len() >= LINK_QUEUE {
            return Err(get);
        }
        q.push_back(get);
        let _ = self.wake_tx.try_send(());
        Ok(())
    }

    /// The node drains: the link sends GOAWAY `draining` and closes (GETs in flight are
    /// answered `Failed` to their fetchers, like any link that ends).
    pub fn drain(&self) {
        self.draining.set(true);
        let _ = self.wake_tx.try_send(());
    }

    /// Queues a gossip frame; false when the link is closed or its gossip queue full.
    pub fn push_gossip(&self, msg: GossipMsg) -> bool {
        let mut q = self.gossip.borrow_mut();
        if self.closed.get() || q.len() >= GOSSIP_QUEUE {
            return false;
        }
        q.push_back(msg);
        let _ = self.wake_tx.try_send(());
        true
    }
}

/// Why a link ended.
#[derive(Debug)]
pub enum LinkEnd {
    /// The peer closed the session.
    Closed,
    /// The peer broke the protocol, or the socket failed.
    Failed(String),
    /// No answer to HELLO or a PING in time.
    Unresponsive,
    /// This node drained; GOAWAY was sent.
    Drained,
}

impl std::fmt::Display for LinkEnd {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkEnd::Closed => f.write_str("the peer closed the session"),
            LinkEnd::Failed(why) => write!(f, "{why}"),
            LinkEnd::Unresponsive => f.write_str("no answer to HELLO or PING in time"),
            LinkEnd::Drained => f.write_str("this node drained (GOAWAY sent)"),
        }
    }
}

/// An answer being received.
struct Pending {
    get: LinkGet,
    ok: bool,
    status: u16,
    body: Vec<u8>,
}

/// Runs the link until the session ends; every GET queued or in flight is answered
/// (`Answer::Failed` for those the end cut short).
pub async fn run(
    mut tls: TlsConn,
    link: &Link,
    cfg: &LinkCfg,
    on_answer: &dyn Fn(LinkGet, Answer),
    on_event: &dyn Fn(Bytes),
) -> LinkEnd {
    let mut state = LinkState {
        inbound: Inbound::new(Role::Dialer, cfg.max_frame, SERVED_APPS),
        encoder: FrameEncoder::new(cfg.max_frame),
        rbuf: BytesMut::with_capacity(64 * 1024),
        wbuf: Vec::new(),
        next_corr: 1,
        pending: BTreeMap::new(),
        gossip_reqs: BTreeSet::new(),
        control: None,
        hello_done: false,
    };
    let end = state.drive(&mut tls, link, cfg, on_answer, on_event).await;
    link.closed.set(true);
    for (_, p) in std::mem::take(&mut state.pending) {
        on_answer(p.get, Answer::Failed);
    }
    let queued: Vec<LinkGet> = link.queue.borrow_mut().drain(..).collect();
    for get in queued {
        on_answer(get, Answer::Failed);
    }
    let _ = tls.close().await;
    end
}

struct LinkState {
    inbound: Inbound,
    encoder: FrameEncoder,
    rbuf: BytesMut,
    wbuf: Vec<u8>,
    next_corr: u64,
    pending: BTreeMap<u64, Pending>,
    /// Gossip REQs (IHAVE, IWANT) sent and not yet answered, by corr_id.
    gossip_reqs: BTreeSet<u64>,
    /// The control request in flight (HELLO, then PINGs) and when it was sent.
    control: Option<(u64, Instant)>,
    hello_done: bool,
}

impl LinkState {
    async fn drive(
        &mut self,
        tls: &mut TlsConn,
        link: &Link,
        cfg: &LinkCfg,
        on_answer: &dyn Fn(LinkGet, Answer),
        on_event: &dyn Fn(Bytes),
    ) -> LinkEnd {
        let hello = Control::Hello(Hello {
            ua: Some(format!("ronode/{} peer", env!("CARGO_PKG_VERSION"))),
            max_frame: None,
        });
        self.control_request(&hello);
        let mut last_ping = Instant::now();
        loop {
            if let Err(e) = self.take_answers(cfg, on_answer, on_event) {
                return LinkEnd::Failed(e);
            }
            if link.draining.get() {
                // The peer's requests are not served on a dialled link: none is owed.
                let goaway = Control::GoAway(ronode_proto::control::GoAway {
                    reason: "draining".to_owned(),
                    last_corr_id: 0,
                });
                self.send(&OutFrame {
                    flags: Flags::EVENT,
                    ..OutFrame::request(APP_CONTROL, 0, &goaway.to_vec())
                });
                let write = glommio::timer::timeout(cfg.answer_timeout, async {
                    tls.write_all(&self.wbuf)
                        .await
                        .map_err(glommio::GlommioError::from)
                });
                let _ = write.await;
                return LinkEnd::Drained;
            }
            if self.hello_done {
                self.send_gets(link);
                self.send_gossip(link);
                if self.control.is_none() && last_ping.elapsed() >= cfg.ping_interval {
                    last_ping = Instant::now();
                    self.control_request(&Control::Ping(self.next_corr));
                }
            }
            if self
                .control
                .is_some_and(|(_, at)| at.elapsed() > cfg.answer_timeout)
            {
                return LinkEnd::Unresponsive;
            }
            if !self.wbuf.is_empty() {
                let write = glommio::timer::timeout(cfg.answer_timeout, async {
                    tls.write_all(&self.wbuf)
                        .await
                        .map_err(glommio::GlommioError::from)
                });
                if let Err(e) = write.await {
                    return LinkEnd::Failed(format!("write: {e}"));
                }
                self.wbuf.clear();
            }
            // Woken by a queued GET or frame, or after a tick to look at the PING timers.
            let wake = futures_lite::future::or(
                async {
                    let _ = link.wake_rx.recv().await;
                },
                glommio::timer::sleep(cfg.tick),
            );
            match tls.read_or_wake(&mut self.rbuf, wake).await {
                Ok(Some(0)) => return LinkEnd::Closed,
                Ok(_) => {}
                Err(e) => return LinkEnd::Failed(format!("read: {e}")),
            }
        }
    }

    fn control_request(&mut self, msg: &Control) {
        let corr_id = self.next_corr;
        self.next_corr += 1;
        let payload = msg.to_vec();
        self.send(&OutFrame::request(APP_CONTROL, corr_id, &payload));
        self.control = Some((corr_id, Instant::now()));
    }

    /// Sends queued GETs while fewer than the protocol allows are in flight (one place is kept
    /// for the PING).
    fn send_gets(&mut self, link: &Link) {
        let mut payload = Vec::new();
        while self.pending.len() < MAX_INFLIGHT - 1 {
            let Some(get) = link.queue.borrow_mut().pop_front() else {
                return;
            };
            let corr_id = self.next_corr;
            self.next_corr += 1;
            payload.clear();
            ObjectRequest::Get(Get {
                hops: get.hops,
                ..Get::whole(get.addr)
            })
            .encode(&mut payload);
            self.send(&OutFrame::request(APP_OBJECTS, corr_id, &payload));
            let pending = Pending {
                get,
                ok: true,
                status: 0,
                body: Vec::new(),
            };
            self.pending.insert(corr_id, pending);
        }
    }

    /// Sends queued gossip frames: EVENTs at once, REQs while the in-flight bound (shared with
    /// the GETs, one place kept for the PING) has room.
    fn send_gossip(&mut self, link: &Link) {
        loop {
            let room = self.pending.len() + self.gossip_reqs.len() < MAX_INFLIGHT - 1;
            let msg = {
                let mut q = link.gossip.borrow_mut();
                match q.front() {
                    Some(GossipMsg::Event { .. }) => q.pop_front(),
                    Some(_) if room => q.pop_front(),
                    _ => None,
                }
            };
            let Some(msg) = msg else { return };
            let payload = msg.payload();
            let corr_id = if msg.flags() == Flags::REQ {
                let corr = self.next_corr;
                self.next_corr += 1;
                self.gossip_reqs.insert(corr);
                corr
            } else {
                0
            };
            self.send(&OutFrame {
                flags: msg.flags(),
                ..OutFrame::request(APP_GOSSIP, corr_id, &payload)
            });
        }
    }

    fn send(&mut self, frame: &OutFrame<'_>) {
        let recorded = self.inbound.tracker_mut().on_send(&frame.header());
        debug_assert!(recorded.is_ok(), "a peer link broke the sequence rules");
        let encoded = self.encoder.encode(frame, &mut self.wbuf);
        debug_assert!(encoded.is_ok(), "encoding our own frame failed");
    }

    /// Takes every whole frame buffered: answers to our requests, and the peer's gossip EVENTs
    /// (other EVENTs are dropped; the peer's requests are not served on a dialled link).
    fn take_answers(
        &mut self,
        cfg: &LinkCfg,
        on_answer: &dyn Fn(LinkGet, Answer),
        on_event: &dyn Fn(Bytes),
    ) -> Result<(), String> {
        while let Some(rx) = self
            .inbound
            .poll(&mut self.rbuf)
            .map_err(|r| format!("{}: {}", r.reason, r.detail))?
        {
            let h = rx.frame.header;
            if h.kind() == Some(Kind::Event) && h.app_proto_id == APP_GOSSIP {
                on_event(Bytes::copy_from_slice(&rx.frame.payload));
                if h.flags.contains(Flags::ACK_REQ) {
                    self.send(&OutFrame::response(APP_GOSSIP, h.corr_id, 200, &[]));
                }
                continue;
            }
            if h.kind() != Some(Kind::Resp) {
                continue;
            }
            if h.app_proto_id == APP_CONTROL {
                if self.control.is_some_and(|(corr, _)| corr == h.corr_id) {
                    if h.code != 200 {
                        return Err(format!("control request answered {}", h.code));
                    }
                    self.control = None;
                    self.hello_done = true;
                }
                continue;
            }
            if self.gossip_reqs.remove(&h.corr_id) {
                continue; // `{"ok": true}`, or an error the plane has no use for
            }
            let Some(p) = self.pending.get_mut(&h.corr_id) else {
                continue;
            };
            if rx.progress.begins() {
                p.status = h.code;
            }
            p.ok &= h.code == 200;
            if p.ok && p.body.len() as u64 + rx.frame.payload.len() as u64 <= cfg.max_body {
                p.body.extend_from_slice(&rx.frame.payload);
            } else {
                p.ok = false;
            }
            if rx.progress.ends() {
                let p = self.pending.remove(&h.corr_id).expect("pending");
                let answer = match (p.ok, p.status) {
                    (true, _) => Answer::Bytes(Bytes::from(p.body)),
                    (false, 404) => Answer::NotFound,
                    _ => Answer::Failed,
                };
                on_answer(p.get, answer);
            }
        }
        Ok(())
    }
}
