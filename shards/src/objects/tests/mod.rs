//! Plane tests. Every frame goes through the real pipelines: the client's requests through the
//! node's `Inbound` (acceptor) before the plane sees them, and every frame the plane emits through
//! the node's `SequenceTracker::on_send` and then the client's `Inbound` (dialer), so the answers
//! are checked as a client would check them.

use std::collections::BTreeMap;

use bytes::BytesMut;
use ronode_proto::cap::Capability;
use ronode_proto::control::{Control, Hello, HelloReply, APP_CONTROL};
use ronode_proto::error_body::ErrorBody;
use ronode_proto::flags::Flags;
use ronode_proto::frame::{Frame, FrameEncoder, OutFrame};
use ronode_proto::id::ObjectAddr;
use ronode_proto::inbound::{Inbound, ServedApps};
use ronode_proto::limits::MAX_FRAME;
use ronode_proto::msg::objects::{ByteRange, Get, Head, ObjectRequest, Put, PutResp};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::reason::Reason;
use ronode_proto::sequence::Role;

use super::*;

mod exchange;
mod limits;
mod on_miss;

const NOW: u64 = 1_700_000_000;
const ROOT: [u8; 32] = [0x55; 32];
const KID: [u8; 8] = *b"rootkey1";
/// Body bytes per PUT frame the test client sends (not a multiple of the node's chunk).
const CLIENT_FRAME: usize = 100_000;

const S1: SessionId = SessionId(1);
const S2: SessionId = SessionId(2);

fn body(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_be_bytes()[0] ^ seed)
        .collect()
}

fn cap(caveats: &[&str]) -> Vec<u8> {
    Capability::mint(&ROOT, KID, caveats).encode()
}

fn put_cap() -> Vec<u8> {
    cap(&["scope=put"])
}

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn config() -> ObjectsConfig {
    ObjectsConfig::default()
}

/// The frames the client received for one request.
#[derive(Debug)]
struct Resp {
    frames: Vec<Frame>,
    /// The frames as the node encoded them.
    raw: Vec<Vec<u8>>,
}

impl Resp {
    fn code(&self) -> u16 {
        self.frames.last().expect("an answer").header.code
    }
    fn body(&self) -> Vec<u8> {
        self.frames
            .iter()
            .flat_map(|f| f.payload.to_vec())
            .collect()
    }
    fn flags(&self) -> Vec<Flags> {
        self.frames.iter().map(|f| f.header.flags).collect()
    }
    fn error(&self) -> ErrorBody {
        let last = self.frames.last().expect("an answer");
        ErrorBody::decode(APP_OBJECTS, &last.payload).expect("an error body")
    }
    fn reason(&self) -> Reason {
        self.error().reason().expect("a known label")
    }
    fn put(&self) -> PutResp {
        assert_eq!(self.code(), 200, "{:?}", self.error_text());
        PutResp::decode(&self.body()).unwrap()
    }
    fn error_text(&self) -> String {
        String::from_utf8_lossy(&self.body()).into_owned()
    }
}

/// One session seen from both ends.
struct Peer {
    node_in: Inbound,
    client_in: Inbound,
    client_enc: FrameEncoder,
    node_enc: FrameEncoder,
    got: BTreeMap<u64, Resp>,
}

/// A node's plane with a RAM store, and clients.
struct Node {
    plane: ObjectsPlane,
    store: RamStore,
    peers: BTreeMap<SessionId, Peer>,
    now: u64,
    /// Run store operations at once (a RAM store); when false they wait in `held`.
    sync_store: bool,
    held: Vec<StoreOp>,
    /// Drain answers after each frame sent.
    auto_pump: bool,
    /// Like a disk store: answer reads in windows of this many `min_len`s.
    read_window: Option<u64>,
    /// Fail the reads after this many succeeded.
    reads_before_failure: Option<usize>,
}

impl Node {
    fn new(config: ObjectsConfig, capacity_bytes: u64) -> Node {
        let keys = CapKeys::with(KID, ROOT);
        Node {
            plane: ObjectsPlane::new(ShardId(3), config, keys).unwrap(),
            store: RamStore::new(capacity_bytes),
            peers: BTreeMap::new(),
            now: NOW,
            sync_store: true,
            held: Vec::new(),
            auto_pump: true,
            read_window: None,
            reads_before_failure: None,
        }
    }

    fn default_node() -> Node {
        Node::new(config(), 64 << 20)
    }

    /// A session past its HELLO.
    fn connect(&mut self, s: SessionId) {
        let mut peer = Peer {
            node_in: Inbound::new(Role::Acceptor, MAX_FRAME, ServedApps::NODE),
            client_in: Inbound::new(Role::Dialer, MAX_FRAME, ServedApps::NODE),
            client_enc: FrameEncoder::new(MAX_FRAME),
            node_enc: FrameEncoder::new(MAX_FRAME),
            got: BTreeMap::new(),
        };
        let hello = Control::Hello(Hello {
            ua: None,
            max_frame: None,
        })
        .to_vec();
        let rx = Self::through(
            &mut peer.client_in,
            &mut peer.client_enc,
            &mut peer.node_in,
            &OutFrame::request(APP_CONTROL, 0, &hello),
        );
        assert_eq!(rx.frame.header.app_proto_id, APP_CONTROL);
        let reply = Control::HelloReply(HelloReply::default()).to_vec();
        let rx = Self::through(
            &mut peer.node_in,
            &mut peer.node_enc,
            &mut peer.client_in,
            &OutFrame::response(APP_CONTROL, 0, 200, &reply),
        );
        assert_eq!(rx.frame.header.code, 200);
        self.peers.insert(s, peer);
    }

    /// Sends `frame` from the side whose tracker is `from` to the pipeline `to`.
    fn through(
        from: &mut Inbound,
        enc: &mut FrameEncoder,
        to: &mut Inbound,
        frame: &OutFrame<'_>,
    ) -> ronode_proto::inbound::Received {
        from.tracker_mut()
            .on_send(&frame.header())
            .expect("the sender keeps the sequence rules");
        let mut buf = BytesMut::new();
        enc.encode(frame, &mut buf).unwrap();
        let rx = to
            .poll(&mut buf)
            .expect("a valid frame")
            .expect("a whole frame");
        assert!(buf.is_empty());
        rx
    }

    /// The client of `s` sends `frame`; the node's pipeline checks it and the plane takes it.
    fn send(&mut self, s: SessionId, frame: &OutFrame<'_>) {
        let peer = self.peers.get_mut(&s).expect("connected");
        let rx = Self::through(
            &mut peer.client_in,
            &mut peer.client_enc,
            &mut peer.node_in,
            frame,
        );
        self.plane.handle_frame(s, rx, self.now);
        if self.auto_pump {
            self.pump();
        }
    }

    fn run_ops(&mut self) {
        while let Some(op) = self.plane.poll_store_op() {
            if self.sync_store {
                self.execute(op);
            } else {
                self.held.push(op);
            }
        }
    }

    /// Runs one operation like the store the test asked for.
    fn execute(&mut self, op: StoreOp) {
        let min_len = match &op {
            StoreOp::Read { min_len, .. } => Some(*min_len),
            _ => None,
        };
        let Some(mut done) = op.execute(&mut self.store) else {
            return;
        };
        if let StoreDone::Read { result, .. } = &mut done {
            if let Some(left) = self.reads_before_failure.as_mut() {
                if *left == 0 {
                    *result = Err(StoreError::Io("injected".into()));
                } else {
                    *left -= 1;
                }
            }
            if let (Some(w), Ok(chunk)) = (self.read_window, result.as_mut()) {
                let window = (w * min_len.unwrap()) as usize;
                chunk.bytes.truncate(window);
            }
        }
        self.plane.handle_store_done(done);
    }

    /// Drains the plane: store operations, then frames, until nothing is left.
    fn pump(&mut self) {
        while self.pump_one() {}
        self.run_ops();
    }

    /// Runs pending store operations and delivers at most one frame; whether one was delivered.
    fn pump_one(&mut self) -> bool {
        self.run_ops();
        match self.plane.poll_transmit() {
            Some(t) => {
                self.deliver(t);
                true
            }
            None => false,
        }
    }

    fn deliver(&mut self, t: Transmit) {
        let peer = self.peers.get_mut(&t.session).expect("a live session");
        let mut raw = BytesMut::new();
        peer.node_enc.encode(&t.out_frame(), &mut raw).unwrap();
        assert_eq!(raw[..38], t.header().to_bytes());
        let raw_copy = raw.to_vec();
        peer.node_in
            .tracker_mut()
            .on_send(&t.header())
            .expect("the plane keeps the sequence rules");
        let rx = peer
            .client_in
            .poll(&mut raw)
            .expect("the client accepts the node's frame")
            .expect("a whole frame");
        let resp = peer.got.entry(t.corr_id).or_insert(Resp {
            frames: Vec::new(),
            raw: Vec::new(),
        });
        resp.frames.push(rx.frame);
        resp.raw.push(raw_copy);
    }

    fn take(&mut self, s: SessionId, corr_id: u64) -> Resp {
        let peer = self.peers.get_mut(&s).expect("connected");
        peer.got
            .remove(&corr_id)
            .unwrap_or_else(|| panic!("no answer to {corr_id}"))
    }

    fn answered(&self, s: SessionId, corr_id: u64) -> bool {
        self.peers[&s].got.contains_key(&corr_id)
    }

    fn close(&mut self, s: SessionId) {
        self.peers.remove(&s);
        self.plane.handle_session_closed(s);
        self.pump();
    }

    // --- requests -----------------------------------------------------------------------------

    /// The START frame of a PUT of `size` bytes for `addr`, for tenant 0.
    fn start_put(&mut self, s: SessionId, corr_id: u64, addr: ObjectAddr, size: u64, cap: &[u8]) {
        self.start_put_with(s, corr_id, Put { addr, size }, cap, 0, false);
    }

    fn start_put_with(
        &mut self,
        s: SessionId,
        corr_id: u64,
        put: Put,
        cap: &[u8],
        tenant_id: u128,
        end: bool,
    ) {
        let mut req = Vec::new();
        ObjectRequest::Put(put).encode(&mut req);
        let mut flags = Flags::REQ | Flags::START;
        if end {
            flags = flags | Flags::END;
        }
        self.send(
            s,
            &OutFrame {
                flags,
                code: 0,
                app_proto_id: APP_OBJECTS,
                tenant_id,
                corr_id,
                cap,
                payload: &req,
            },
        );
    }

    fn put_frame(&mut self, s: SessionId, corr_id: u64, bytes: &[u8], end: bool) {
        let flags = if end {
            Flags::REQ | Flags::END
        } else {
            Flags::REQ
        };
        self.send(
            s,
            &OutFrame {
                flags,
                code: 0,
                app_proto_id: APP_OBJECTS,
                tenant_id: 0,
                corr_id,
                cap: &[],
                payload: bytes,
            },
        );
    }

    /// A PUT of `bytes` announced as `size` bytes for `addr`, body in `CLIENT_FRAME` frames.
    fn put_as(
        &mut self,
        s: SessionId,
        corr_id: u64,
        addr: ObjectAddr,
        size: u64,
        bytes: &[u8],
        cap: &[u8],
    ) -> Resp {
        self.start_put_with(s, corr_id, Put { addr, size }, cap, 0, bytes.is_empty());
        let mut parts = bytes.chunks(CLIENT_FRAME).peekable();
        while let Some(part) = parts.next() {
            self.put_frame(s, corr_id, part, parts.peek().is_none());
        }
        self.take(s, corr_id)
    }

    fn put(&mut self, s: SessionId, corr_id: u64, bytes: &[u8]) -> Resp {
        let addr = ObjectAddr::of(bytes);
        self.put_as(s, corr_id, addr, bytes.len() as u64, bytes, &put_cap())
    }

    fn request(&mut self, s: SessionId, corr_id: u64, req: ObjectRequest, cap: &[u8]) {
        let mut payload = Vec::new();
        req.encode(&mut payload);
        let flags = if cap.is_empty() {
            Flags::REQ
        } else {
            Flags::REQ | Flags::START | Flags::END
        };
        self.send(
            s,
            &OutFrame {
                flags,
                code: 0,
                app_proto_id: APP_OBJECTS,
                tenant_id: 0,
                corr_id,
                cap,
                payload: &payload,
            },
        );
    }

    fn get_with(
        &mut self,
        s: SessionId,
        corr_id: u64,
        addr: ObjectAddr,
        range: Option<(u64, u64)>,
        cap: &[u8],
    ) -> Resp {
        let range = range.map(|(start, end)| ByteRange { start, end });
        self.request(
            s,
            corr_id,
            ObjectRequest::Get(Get {
                addr,
                range,
                hops: 0,
            }),
            cap,
        );
        self.take(s, corr_id)
    }

    fn get(&mut self, s: SessionId, corr_id: u64, addr: ObjectAddr) -> Resp {
        self.get_with(s, corr_id, addr, None, &[])
    }

    fn head(&mut self, s: SessionId, corr_id: u64, addr: ObjectAddr, cap: &[u8]) -> Resp {
        self.request(s, corr_id, ObjectRequest::Head(Head { addr }), cap);
        self.take(s, corr_id)
    }
}
