//! [`ObjectsPlane`]: the objects plane of one shard, a sans-IO state machine. The module docs of
//! [`crate::objects`] describe its inputs, outputs and drain order.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use ronode_proto::cap::{CapError, Op};
use ronode_proto::flags::{Flags, Kind};
use ronode_proto::frame::Frame;
use ronode_proto::id::ObjectAddr;
use ronode_proto::inbound::Received;
use ronode_proto::limits::MAX_FRAME;
use ronode_proto::msg::objects::{Get, Head, HeadResp, ObjectRequest, Put, PutResp};
use ronode_proto::msg::APP_OBJECTS;
use ronode_proto::reason::Reason;
use ronode_proto::sequence::Progress;

use super::config::{CapKeys, ConfigError, ObjectsConfig, Policy};
use super::counters::ObjectsCounters;
use super::get::{Filled, GetStream, Next};
use super::put::{Begin, Phase, PutState};
use super::store::{Begun, Committed, ObjectStore, ReadChunk, StoreDone, StoreError, StoreOp};
use super::transmit::{ReplyTo, Transmit};
use super::{OpId, SessionId};
use crate::placement::ShardId;

/// A request stream of a session: (session, corr_id).
type StreamKey = (SessionId, u64);

/// What the plane knows of a session.
#[derive(Debug, Clone, Copy)]
struct SessionState {
    /// Negotiated `max_frame`: bounds the body frames sent to it.
    max_frame: u32,
    /// The engine's send queue for it is full: its GET streams wait.
    blocked: bool,
    /// Its uploads in progress.
    puts: usize,
}

impl Default for SessionState {
    fn default() -> SessionState {
        SessionState {
            max_frame: MAX_FRAME,
            blocked: false,
            puts: 0,
        }
    }
}

/// The objects plane of one shard; see the module docs of [`crate::objects`].
#[derive(Debug)]
pub struct ObjectsPlane {
    shard: ShardId,
    config: ObjectsConfig,
    keys: CapKeys,
    /// Sessions that sent a frame or were configured, until closed (bounded by the engine's
    /// sessions per shard).
    sessions: BTreeMap<SessionId, SessionState>,
    /// Uploads in progress (at most `max_puts`), by id.
    puts: BTreeMap<OpId, PutState>,
    /// Uploads still taking body frames, by stream.
    receiving: BTreeMap<StreamKey, OpId>,
    /// Deadlines of the uploads still taking body frames.
    deadlines: BTreeSet<(u64, OpId)>,
    /// GET answers in progress, by stream (with `heads`, at most `max_reads`).
    gets: BTreeMap<StreamKey, GetStream>,
    /// HEADs waiting for their `Stat`.
    heads: BTreeMap<OpId, (ReplyTo, ObjectAddr)>,
    /// GET reads in flight.
    reads: BTreeMap<OpId, StreamKey>,
    /// Output: store operations (at most one per upload or read in progress, plus aborts).
    store_ops: VecDeque<StoreOp>,
    /// Output: whole-frame answers, in the order they were decided (at most one per request in
    /// progress: the session's `max_inflight` bounds them).
    answers: VecDeque<Transmit>,
    /// GET streams with a frame ready, in round-robin order.
    ready: VecDeque<StreamKey>,
    next_seq: u64,
    /// Sum of the `charged` bytes of `puts`.
    inflight_put_bytes: u64,
    counters: ObjectsCounters,
}

impl ObjectsPlane {
    /// The plane of `shard` (its ids carry it, so completions find their way back), with
    /// `config` (validated here) and the capability root `keys`.
    pub fn new(
        shard: ShardId,
        config: ObjectsConfig,
        keys: CapKeys,
    ) -> Result<ObjectsPlane, ConfigError> {
        config.validate()?;
        Ok(ObjectsPlane {
            shard,
            config,
            keys,
            sessions: BTreeMap::new(),
            puts: BTreeMap::new(),
            receiving: BTreeMap::new(),
            deadlines: BTreeSet::new(),
            gets: BTreeMap::new(),
            heads: BTreeMap::new(),
            reads: BTreeMap::new(),
            store_ops: VecDeque::new(),
            answers: VecDeque::new(),
            ready: VecDeque::new(),
            next_seq: 0,
            inflight_put_bytes: 0,
            counters: ObjectsCounters::default(),
        })
    }

    pub fn config(&self) -> &ObjectsConfig {
        &self.config
    }

    pub fn counters(&self) -> &ObjectsCounters {
        &self.counters
    }

    /// Bytes of PUT bodies this shard holds or has promised to hold (announced sizes of the
    /// uploads in progress that are not duplicates).
    pub fn inflight_put_bytes(&self) -> u64 {
        self.inflight_put_bytes
    }

    /// Uploads in progress, committing ones included.
    pub fn puts_in_progress(&self) -> usize {
        self.puts.len()
    }

    /// GET answers and HEADs in progress.
    pub fn reads_in_progress(&self) -> usize {
        self.gets.len() + self.heads.len()
    }

    // -----------------------------------------------------------------------------------------
    // Inputs

    /// A frame of app 1 that passed the session's receive pipeline (`Inbound::poll`), from
    /// `session`, at `now` (unix seconds, for capability expiry and upload deadlines).
    pub fn handle_frame(&mut self, session: SessionId, rx: Received, now: u64) {
        let Received { frame, progress } = rx;
        if frame.app_proto_id() != APP_OBJECTS || frame.kind() != Kind::Req {
            self.counters.ignored_frames += 1;
            return;
        }
        self.sessions.entry(session).or_default();
        let to = ReplyTo {
            session,
            corr_id: frame.corr_id(),
            tenant_id: frame.header.tenant_id,
        };
        if progress.begins() {
            self.on_request(to, &frame, progress, now);
        } else {
            self.on_body(to, &frame.payload, progress);
        }
    }

    /// The completion of a [`StoreOp`] this plane emitted. Completions of requests that were
    /// dropped meanwhile (their session closed, their upload failed) are ignored.
    pub fn handle_store_done(&mut self, done: StoreDone) {
        match done {
            StoreDone::Stat { op, result } => self.on_stat(op, result),
            StoreDone::Read { op, result } => self.on_read(op, result),
            StoreDone::BeginPut { put, result } => self.on_begun(put, result),
            StoreDone::CommitPut { put, result } => self.on_committed(put, result),
        }
    }

    /// Answers 408 `slow_client` to every upload whose body is not complete `put_timeout_s`
    /// after its START frame. Call when `now` reaches [`ObjectsPlane::poll_timeout`].
    pub fn handle_timeout(&mut self, now: u64) {
        while let Some(&(deadline, id)) = self.deadlines.first() {
            if deadline > now {
                break;
            }
            let st = self.drop_put(id);
            let message = format!(
                "PUT body not complete within {} s",
                self.config.put_timeout_s
            );
            self.refuse(st.to, Reason::SlowClient, message);
        }
    }

    /// `session` is gone: its uploads still receiving are dropped (their reservations aborted),
    /// its GET and HEAD answers and queued frames are dropped. An upload already committing
    /// completes in the store, unanswered.
    pub fn handle_session_closed(&mut self, session: SessionId) {
        let ids: Vec<OpId> = self
            .puts
            .iter()
            .filter(|(_, p)| p.to.session == session && !p.orphaned)
            .map(|(id, _)| *id)
            .collect();
        for id in ids {
            let st = self.puts.get_mut(&id).expect("listed above");
            if st.phase == Phase::Committing {
                st.orphaned = true;
            } else {
                self.drop_put(id);
            }
        }
        let range = (session, 0)..=(session, u64::MAX);
        let keys: Vec<StreamKey> = self.gets.range(range).map(|(k, _)| *k).collect();
        for key in keys {
            if let Some(op) = self.gets.remove(&key).and_then(|s| s.read_op) {
                self.reads.remove(&op);
            }
        }
        self.heads.retain(|_, (to, _)| to.session != session);
        self.answers.retain(|t| t.session != session);
        self.ready.retain(|k| k.0 != session);
        self.sessions.remove(&session);
    }

    /// The `max_frame` HELLO negotiated for `session` (default 1 MiB): body frames to it carry
    /// at most `max_frame - 38` bytes.
    pub fn set_session_max_frame(&mut self, session: SessionId, max_frame: u32) {
        self.sessions.entry(session).or_default().max_frame = max_frame;
    }

    /// Whether the engine's send queue for `session` is full. While blocked, the session's GET
    /// streams produce no frames (whole-frame answers still come out: they are bounded by the
    /// session's requests in flight).
    pub fn set_session_blocked(&mut self, session: SessionId, blocked: bool) {
        let state = self.sessions.entry(session).or_default();
        if state.blocked == blocked {
            return;
        }
        state.blocked = blocked;
        if blocked {
            return;
        }
        let range = (session, 0)..=(session, u64::MAX);
        for (key, stream) in self.gets.range_mut(range) {
            if stream.has_buffered() && !stream.queued {
                stream.queued = true;
                self.ready.push_back(*key);
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Outputs

    /// The next store operation to run (in the order emitted).
    pub fn poll_store_op(&mut self) -> Option<StoreOp> {
        self.store_ops.pop_front()
    }

    /// The next frame to send: whole-frame answers first, in the order decided, then one body
    /// frame from each GET stream with bytes ready, round-robin. Cutting a stream's last buffered
    /// frame may queue its next store read, so drain [`ObjectsPlane::poll_store_op`] again after.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        if let Some(t) = self.answers.pop_front() {
            return Some(t);
        }
        while let Some(key) = self.ready.pop_front() {
            let frame_len = self.frame_len(key.0);
            let blocked = self.sessions.get(&key.0).is_some_and(|s| s.blocked);
            let Some(stream) = self.gets.get_mut(&key) else {
                continue;
            };
            if !stream.queued {
                continue; // a stale entry
            }
            stream.queued = false;
            if blocked {
                continue; // parked until the session is unblocked
            }
            match stream.next_frame(frame_len) {
                Next::Frame {
                    flags,
                    payload,
                    last,
                } => {
                    self.counters.bytes_out += payload.len() as u64;
                    let t = stream.to.frame(flags, stream.code, payload);
                    if last {
                        self.gets.remove(&key);
                        self.counters.gets_served += 1;
                    } else if stream.has_buffered() {
                        stream.queued = true;
                        self.ready.push_back(key);
                    } else {
                        let range = stream.read_range();
                        self.issue_read(key, range, None);
                    }
                    return Some(t);
                }
                Next::Read(range) => self.issue_read(key, range, None),
            }
        }
        None
    }

    /// The earliest upload deadline (unix seconds), for the engine's timer.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.deadlines.first().map(|&(deadline, _)| deadline)
    }

    /// Runs every pending store operation on a synchronous store (RAM), feeding each completion
    /// back at once, until none is left; returns how many ran.
    pub fn run_store<S: ObjectStore + ?Sized>(&mut self, store: &mut S) -> usize {
        let mut ran = 0;
        while let Some(op) = self.store_ops.pop_front() {
            if let Some(done) = op.execute(store) {
                self.handle_store_done(done);
            }
            ran += 1;
        }
        ran
    }

    // -----------------------------------------------------------------------------------------
    // Requests

    fn on_request(&mut self, to: ReplyTo, frame: &Frame, progress: Progress, now: u64) {
        let req = match ObjectRequest::decode(&frame.payload) {
            Ok(req) => req,
            Err(_) => {
                return self.refuse(to, Reason::Malformed, "not a GET, HEAD or PUT request");
            }
        };
        match req {
            ObjectRequest::Put(put) => self.start_put(to, frame, put, progress, now),
            _ if progress != Progress::Whole => {
                self.refuse(to, Reason::Malformed, "GET and HEAD are one-frame messages")
            }
            ObjectRequest::Get(get) => self.start_get(to, frame, get, now),
            ObjectRequest::Head(head) => self.start_head(to, frame, head, now),
        }
    }

    /// Checks the frame's capability for `op` under `policy` (PROTOCOL.md section 10.4).
    fn authorize(
        &self,
        policy: Policy,
        op: Op,
        frame: &Frame,
        bytes: Option<u64>,
        now: u64,
    ) -> Result<(), CapError> {
        self.keys.authorize(policy, op, frame, bytes, now)
    }

    /// Whether another GET or HEAD may start; refuses it when not.
    fn admit_read(&mut self, to: ReplyTo) -> bool {
        if self.reads_in_progress() < self.config.max_reads {
            return true;
        }
        let message = format!(
            "{} GET and HEAD answers in progress on this shard, its most",
            self.config.max_reads
        );
        self.refuse(to, Reason::Busy, message);
        false
    }

    fn start_get(&mut self, to: ReplyTo, frame: &Frame, get: Get, now: u64) {
        if let Err(e) = self.authorize(self.config.get_policy, Op::Get, frame, None, now) {
            return self.refuse(to, e.reason(), e.to_string());
        }
        if !self.admit_read(to) {
            return;
        }
        let key = (to.session, to.corr_id);
        if self.gets.contains_key(&key) {
            return self.refuse(to, Reason::BadSequence, "corr_id already in use");
        }
        let requested = get.range.map_or(0..u64::MAX, |r| r.start..r.end);
        let stream = GetStream::new(to, get.addr, get.status(), requested.clone());
        self.gets.insert(key, stream);
        self.issue_read(key, requested, Some(get.hops));
    }

    fn start_head(&mut self, to: ReplyTo, frame: &Frame, head: Head, now: u64) {
        if let Err(e) = self.authorize(self.config.get_policy, Op::Get, frame, None, now) {
            return self.refuse(to, e.reason(), e.to_string());
        }
        if !self.admit_read(to) {
            return;
        }
        let op = self.next_id();
        self.heads.insert(op, (to, head.addr));
        self.store_ops.push_back(StoreOp::Stat {
            op,
            addr: head.addr,
        });
    }

    fn start_put(&mut self, to: ReplyTo, frame: &Frame, put: Put, progress: Progress, now: u64) {
        let size = put.size;
        let put_policy = self.config.put_policy;
        if let Err(e) = self.authorize(put_policy, Op::Put, frame, Some(size), now) {
            return self.refuse(to, e.reason(), e.to_string());
        }
        let c = &self.config;
        let refusal = if size > c.max_bytes {
            Some((
                Reason::Oversize,
                format!(
                    "object of {size} bytes is over objects.max_bytes ({})",
                    c.max_bytes
                ),
            ))
        } else if self.sessions[&to.session].puts >= c.max_puts_per_session {
            Some((
                Reason::Quota,
                format!(
                    "{} uploads in progress on this session, its most",
                    c.max_puts_per_session
                ),
            ))
        } else if self.puts.len() >= c.max_puts {
            Some((
                Reason::Busy,
                format!("{} uploads in progress on this shard, its most", c.max_puts),
            ))
        } else if self.inflight_put_bytes + size > c.max_inflight_put_bytes {
            Some((
                Reason::Busy,
                format!(
                    "{} bytes of uploads in progress on this shard; {size} more would pass its {}",
                    self.inflight_put_bytes, c.max_inflight_put_bytes
                ),
            ))
        } else if self.receiving.contains_key(&(to.session, to.corr_id)) {
            Some((Reason::BadSequence, "corr_id already in use".to_owned()))
        } else {
            None
        };
        if let Some((reason, message)) = refusal {
            return self.refuse(to, reason, message);
        }
        let id = self.next_id();
        let deadline = now.saturating_add(self.config.put_timeout_s);
        self.puts
            .insert(id, PutState::new(to, put.addr, size, deadline));
        self.receiving.insert((to.session, to.corr_id), id);
        self.deadlines.insert((deadline, id));
        self.inflight_put_bytes += size;
        if let Some(s) = self.sessions.get_mut(&to.session) {
            s.puts += 1;
        }
        self.store_ops.push_back(StoreOp::BeginPut {
            put: id,
            addr: put.addr,
            size,
        });
        if progress.ends() {
            self.end_put(id);
        }
    }

    fn on_body(&mut self, to: ReplyTo, payload: &Bytes, progress: Progress) {
        let len = payload.len() as u64;
        let Some(&id) = self.receiving.get(&(to.session, to.corr_id)) else {
            // The rest of a request already answered (refused, failed or timed out).
            self.counters.discarded_bytes += len;
            return;
        };
        let st = self
            .puts
            .get_mut(&id)
            .expect("receiving lists live uploads");
        if let Err(e) = st.absorb(payload) {
            self.counters.discarded_bytes += len;
            return self.fail_put(id, Reason::BadDigest, e.message());
        }
        self.counters.bytes_in += len;
        if progress.ends() {
            self.end_put(id);
        }
    }

    /// The upload's END frame arrived: check the body, then commit once the store has begun.
    fn end_put(&mut self, id: OpId) {
        let st = self.puts.get_mut(&id).expect("a live upload");
        self.receiving.remove(&(st.to.session, st.to.corr_id));
        self.deadlines.remove(&(st.deadline, id));
        match st.finish() {
            Ok(body) => {
                st.phase = Phase::Verified(body);
                self.try_commit(id);
            }
            Err(e) => self.fail_put(id, Reason::BadDigest, e.message()),
        }
    }

    fn try_commit(&mut self, id: OpId) {
        let st = self.puts.get_mut(&id).expect("a live upload");
        if st.begin == Begin::Pending || !matches!(st.phase, Phase::Verified(_)) {
            return;
        }
        let Phase::Verified(body) = std::mem::replace(&mut st.phase, Phase::Committing) else {
            unreachable!("checked above");
        };
        let body = if st.begin == Begin::Duplicate {
            None
        } else {
            body
        };
        self.store_ops.push_back(StoreOp::CommitPut {
            put: id,
            addr: st.addr,
            body,
        });
    }

    // -----------------------------------------------------------------------------------------
    // Store completions

    fn on_stat(&mut self, op: OpId, result: Result<Option<u64>, StoreError>) {
        let Some((to, addr)) = self.heads.remove(&op) else {
            return;
        };
        match result {
            Ok(Some(size)) => {
                let mut out = Vec::with_capacity(16);
                HeadResp { size }.encode(&mut out);
                self.counters.heads_served += 1;
                self.answers
                    .push_back(to.frame(Flags::RESP, 200, Bytes::from(out)));
            }
            Ok(None) => {
                let e = StoreError::NotFound(addr);
                self.refuse(to, e.reason(), e.to_string());
            }
            Err(e) => self.refuse(to, e.reason(), e.to_string()),
        }
    }

    fn on_read(&mut self, op: OpId, result: Result<ReadChunk, StoreError>) {
        let Some(key) = self.reads.remove(&op) else {
            return; // the stream was dropped
        };
        let frame_len = self.frame_len(key.0);
        let Some(stream) = self.gets.get_mut(&key) else {
            return;
        };
        stream.read_op = None;
        let filled = result
            .map_err(|e| (e.reason(), e.to_string()))
            .and_then(|chunk| {
                stream
                    .fill(chunk, frame_len)
                    .map_err(|m| (Reason::Internal, m))
            });
        match filled {
            Ok(Filled::Whole(bytes)) => {
                let stream = self.gets.remove(&key).expect("looked up above");
                self.counters.bytes_out += bytes.len() as u64;
                self.counters.gets_served += 1;
                self.answers
                    .push_back(stream.to.frame(Flags::RESP, stream.code, bytes));
            }
            Ok(Filled::Stream) => self.make_ready(key),
            Err((reason, message)) => {
                let stream = self.gets.remove(&key).expect("looked up above");
                // A stream already open ends with the error (PROTOCOL.md section 6.1).
                let flags = if stream.started {
                    Flags::RESP | Flags::END
                } else {
                    Flags::RESP
                };
                self.refuse_with(stream.to, flags, reason, message);
            }
        }
    }

    fn on_begun(&mut self, id: OpId, result: Result<Begun, StoreError>) {
        let Some(st) = self.puts.get_mut(&id) else {
            return; // dropped meanwhile; its AbortPut is queued behind this BeginPut
        };
        match result {
            Ok(Begun::New) => {
                st.begin = Begin::New;
                self.try_commit(id);
            }
            Ok(Begun::Duplicate) => {
                st.become_duplicate();
                self.inflight_put_bytes -= st.charged;
                st.charged = 0;
                self.try_commit(id);
            }
            Err(e) => {
                // Nothing was reserved: nothing to abort.
                let st = self.remove_put(id);
                if !st.orphaned {
                    self.refuse(st.to, e.reason(), e.to_string());
                }
            }
        }
    }

    fn on_committed(&mut self, id: OpId, result: Result<Committed, StoreError>) {
        let Some(st) = self.puts.get(&id) else {
            return;
        };
        if st.phase != Phase::Committing {
            return; // not a completion of ours
        }
        let st = self.remove_put(id);
        if st.orphaned {
            return;
        }
        match result {
            Ok(Committed { stored }) => {
                if stored {
                    self.counters.puts_stored += 1;
                } else {
                    self.counters.puts_deduplicated += 1;
                }
                let mut out = Vec::with_capacity(64);
                PutResp {
                    addr: st.addr,
                    size: st.size,
                    stored,
                }
                .encode(&mut out);
                self.answers
                    .push_back(st.to.frame(Flags::RESP, 200, Bytes::from(out)));
            }
            Err(StoreError::NotFound(_)) if st.begin == Begin::Duplicate => {
                let message = format!(
                    "object {} was evicted while this upload was checked against it; send it again",
                    st.addr
                );
                self.refuse(st.to, Reason::Busy, message);
            }
            Err(e) => self.refuse(st.to, e.reason(), e.to_string()),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Helpers

    fn next_id(&mut self) -> OpId {
        self.next_seq += 1;
        OpId {
            shard: self.shard,
            seq: self.next_seq,
        }
    }

    fn frame_len(&self, session: SessionId) -> usize {
        let max_frame = self
            .sessions
            .get(&session)
            .map_or(MAX_FRAME, |s| s.max_frame);
        self.config.chunk_for(max_frame)
    }

    /// Asks the store for `range` of the stream's object; `fetch` is the GET's `hops` on its
    /// first read (a miss may be fetched from peers), `None` after.
    fn issue_read(&mut self, key: StreamKey, range: std::ops::Range<u64>, fetch: Option<u8>) {
        let min_len = self.frame_len(key.0) as u64;
        let op = self.next_id();
        let stream = self.gets.get_mut(&key).expect("a live stream");
        stream.read_op = Some(op);
        self.reads.insert(op, key);
        self.store_ops.push_back(StoreOp::Read {
            op,
            addr: stream.addr,
            range,
            min_len,
            fetch,
        });
    }

    fn make_ready(&mut self, key: StreamKey) {
        let blocked = self.sessions.get(&key.0).is_some_and(|s| s.blocked);
        let Some(stream) = self.gets.get_mut(&key) else {
            return;
        };
        if !blocked && !stream.queued {
            stream.queued = true;
            self.ready.push_back(key);
        }
    }

    /// Takes an upload out of every table and gives its budget back.
    fn remove_put(&mut self, id: OpId) -> PutState {
        let st = self.puts.remove(&id).expect("a live upload");
        let key = (st.to.session, st.to.corr_id);
        if self.receiving.get(&key) == Some(&id) {
            self.receiving.remove(&key);
        }
        self.deadlines.remove(&(st.deadline, id));
        self.inflight_put_bytes -= st.charged;
        if !st.orphaned {
            if let Some(s) = self.sessions.get_mut(&st.to.session) {
                s.puts -= 1;
            }
        }
        st
    }

    /// Drops an upload that has not reached its commit, releasing what the store reserved.
    fn drop_put(&mut self, id: OpId) -> PutState {
        let st = self.remove_put(id);
        debug_assert!(st.phase != Phase::Committing);
        if st.begin != Begin::Duplicate {
            self.store_ops.push_back(StoreOp::AbortPut {
                put: id,
                addr: st.addr,
            });
        }
        st
    }

    fn fail_put(&mut self, id: OpId, reason: Reason, message: String) {
        let st = self.drop_put(id);
        self.refuse(st.to, reason, message);
    }

    fn refuse(&mut self, to: ReplyTo, reason: Reason, message: impl Into<String>) {
        self.refuse_with(to, Flags::RESP, reason, message);
    }

    fn refuse_with(
        &mut self,
        to: ReplyTo,
        flags: Flags,
        reason: Reason,
        message: impl Into<String>,
    ) {
        self.counters.refuse(reason);
        let t = to.error(flags, reason, message, self.config.retry_after_ms);
        self.answers.push_back(t);
    }
}
