//! The objects plane on a shard: the sans-IO `ObjectsPlane` (capabilities, BLAKE3, framing) for
//! the sessions this shard serves, the store (RAM or disk) for the objects whose address prefix
//! this shard owns, and the mesh that carries store operations to the owner shard and
//! completions back.
//!
//! After every input (a frame, a completion from the mesh or from the disk) [`Objects::drain`]
//! runs the plane's outputs to exhaustion: store operations go to the local store or over the
//! mesh, transmits go to their session's outbox, and the session is woken to write them. The
//! RAM store completes an operation on the spot; the disk store completes index-only operations
//! on the spot and runs the others as local tasks, whose completion is then handled like one
//! from the mesh ([`Objects::complete`]).

use super::disk::{DiskStore, Started};
use super::mesh;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use ronode_proto::inbound::Received;
use ronode_shards::objects::{
    ObjectStore, ObjectsPlane, RamStore, SessionId, StoreDone, StoreOp, Transmit,
};
use ronode_shards::stats::StoreUsage;
use ronode_shards::{shard_of, ShardId};
use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::{Rc, Weak};

/// The store of the objects this shard owns.
pub enum Store {
    Ram(RefCell<RamStore>),
    Disk(Rc<DiskStore>),
}

impl Store {
    pub fn usage(&self) -> StoreUsage {
        match self {
            Store::Ram(ram) => {
                let ram = ram.borrow();
                StoreUsage {
                    objects: ram.len() as u64,
                    bytes: ram.used_bytes(),
                    quarantined: 0,
                    disk_full: 0,
                    reserved: ram.reserved_bytes(),
                }
            }
            Store::Disk(disk) => disk.usage(),
        }
    }
}

/// What crosses the mesh between two shards.
#[derive(Debug)]
pub enum MeshMsg {
    /// A store operation for an object the receiving shard owns.
    Op(StoreOp),
    /// The completion of an operation the receiving shard's plane issued.
    Done(StoreDone),
}

/// A session's outbox pauses its GET streams (`ObjectsPlane::set_session_blocked`) past
/// `send_window_frames` frames and resumes them at a quarter of that: what a session holds stays
/// near its window however many GETs it has in flight and however slowly it reads.
fn resume_at(window: usize) -> usize {
    window / 4
}

/// The shard's object store, as the node configured it; `capacity_bytes` is this shard's share.
#[derive(Debug, Clone)]
pub enum StoreSeed {
    Ram {
        capacity_bytes: u64,
    },
    /// `objects_dir` was prepared by `disk::layout::prepare`.
    Disk {
        objects_dir: std::path::PathBuf,
        capacity_bytes: u64,
        /// This shard's share of `store.cache_bytes`.
        cache_bytes: u64,
    },
}

impl StoreSeed {
    /// Builds the store (a disk store indexes what this shard owns on disk).
    pub fn open(self, shard: ShardId, shard_count: u16) -> std::io::Result<Store> {
        Ok(match self {
            StoreSeed::Ram { capacity_bytes } => {
                Store::Ram(RefCell::new(RamStore::new(capacity_bytes)))
            }
            StoreSeed::Disk {
                objects_dir,
                capacity_bytes,
                cache_bytes,
            } => Store::Disk(Rc::new(DiskStore::open(
                objects_dir,
                shard,
                shard_count,
                capacity_bytes,
                cache_bytes,
            )?)),
        })
    }
}

/// Most frames a session's outbox holds. What the planes queue for one session is bounded
/// below it: GET body frames pause at `session.send_window_frames` (at most 1,024), whole-frame
/// answers are at most one per request in flight (64), gossip deliveries and relays stop at
/// `gossip::MAX_OUTBOX_FRAMES` (4,096). Past it a frame is refused and counted
/// (`queue_dropped_total{queue="send"}`); for an answer that means a broken bound above.
pub const OUTBOX_FRAMES: usize = 8_192;

/// A session's queue of frames to send, and the signal that wakes it.
pub struct Outbox {
    queue: RefCell<VecDeque<Transmit>>,
    /// Frames past which the session's GET streams pause.
    window: usize,
    /// Whether the plane was told to pause this session's GET streams.
    blocked: std::cell::Cell<bool>,
    wake_tx: LocalSender<()>,
    wake_rx: LocalReceiver<()>,
}

impl Outbox {
    fn new(window: usize) -> Outbox {
        let (wake_tx, wake_rx) = local_channel::new_bounded(1);
        Outbox {
            queue: RefCell::new(VecDeque::new()),
            window: window.max(1),
            blocked: std::cell::Cell::new(false),
            wake_tx,
            wake_rx,
        }
    }

    fn pop(&self) -> Option<Transmit> {
        self.queue.borrow_mut().pop_front()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.borrow().is_empty()
    }

    fn len(&self) -> usize {
        self.queue.borrow().len()
    }

    /// Waits until something is queued (returns at once if a wake-up is pending).
    pub async fn wait(&self) {
        let _ = self.wake_rx.recv().await;
    }

    /// Queues `t` unless [`OUTBOX_FRAMES`] are queued: handed back then.
    fn push(&self, t: Transmit) -> Result<(), Transmit> {
        let mut queue = self.queue.borrow_mut();
        if queue.len() >= OUTBOX_FRAMES {
            return Err(t);
        }
        queue.push_back(t);
        // A full signal channel means a wake-up is already pending.
        let _ = self.wake_tx.try_send(());
        Ok(())
    }
}

/// The shard's objects runtime; see the module docs.
pub struct Objects {
    shard: ShardId,
    shard_count: u16,
    plane: RefCell<ObjectsPlane>,
    store: Store,
    /// This runtime, for the disk tasks that hand their completions back to it.
    me: Weak<Objects>,
    outboxes: RefCell<BTreeMap<u64, Rc<Outbox>>>,
    next_session: std::cell::Cell<u64>,
    /// Senders to every other shard, indexed by shard (None for this one).
    mesh: RefCell<Vec<Option<Rc<ConnectedSender<MeshMsg>>>>>,
    /// Times a mesh channel was found full (or not yet connected).
    lagged: std::cell::Cell<u64>,
    /// Completions for shards whose channel is still connecting, by shard; each holds one of
    /// the shard's [`mesh::MESH_WAITING`] places.
    parked: RefCell<Vec<Vec<(StoreDone, mesh::Place)>>>,
    /// Frames refused at a full outbox ([`OUTBOX_FRAMES`]), for `queue_dropped_total{queue="send"}`.
    outbox_refused: std::cell::Cell<u64>,
    /// Fetch on miss for the addresses this shard owns (see `fetch.rs`).
    pub(super) fetch: super::fetch::FetchState,
}

impl Objects {
    pub fn new(
        shard: ShardId,
        shard_count: u16,
        plane: ObjectsPlane,
        store: Store,
        fetch: super::fetch::FetchState,
    ) -> Rc<Objects> {
        Rc::new_cyclic(|me| Objects {
            fetch,
            shard,
            shard_count,
            plane: RefCell::new(plane),
            store,
            me: me.clone(),
            outboxes: RefCell::new(BTreeMap::new()),
            next_session: std::cell::Cell::new(1),
            mesh: RefCell::new((0..shard_count).map(|_| None).collect()),
            lagged: std::cell::Cell::new(0),
            parked: RefCell::new((0..shard_count).map(|_| Vec::new()).collect()),
            outbox_refused: std::cell::Cell::new(0),
        })
    }

    pub(super) fn shard_id(&self) -> ShardId {
        self.shard
    }

    /// Adds the sender towards `to`.
    pub fn connect_mesh(&self, to: ShardId, sender: ConnectedSender<MeshMsg>) {
        let sender = Rc::new(sender);
        self.mesh.borrow_mut()[to.0 as usize] = Some(sender.clone());
        // Completions that came due before this channel was connected.
        let parked = std::mem::take(&mut self.parked.borrow_mut()[to.0 as usize]);
        if !parked.is_empty() {
            glommio::spawn_local(async move {
                for (done, place) in parked {
                    let _ = sender.send(MeshMsg::Done(done)).await;
                    drop(place);
                }
            })
            .detach();
        }
    }

    /// A new session: its id and its outbox, whose GET streams pause at `window` frames.
    pub fn open_session(&self, window: usize) -> (SessionId, Rc<Outbox>) {
        let id = self.next_session.get();
        self.next_session.set(id + 1);
        let outbox = Rc::new(Outbox::new(window));
        self.outboxes.borrow_mut().insert(id, outbox.clone());
        (SessionId(id), outbox)
    }

    pub fn close_session(&self, session: SessionId) {
        self.outboxes.borrow_mut().remove(&session.0);
        self.plane.borrow_mut().handle_session_closed(session);
        self.drain();
    }

    pub fn set_max_frame(&self, session: SessionId, max_frame: u32) {
        self.plane
            .borrow_mut()
            .set_session_max_frame(session, max_frame);
    }

    /// Wakes every session (the shard's tick), so that each looks at its timers and the drain
    /// flag without a timer per read.
    pub fn wake_sessions(&self) {
        for outbox in self.outboxes.borrow().values() {
            let _ = outbox.wake_tx.try_send(());
        }
    }

    /// The next frame for `session` to send. Resumes the session's GET streams once its outbox
    /// has room again.
    pub fn next_transmit(&self, session: SessionId, outbox: &Outbox) -> Option<Transmit> {
        let t = outbox.pop();
        if outbox.blocked.get() && outbox.len() <= resume_at(outbox.window) {
            outbox.blocked.set(false);
            self.plane.borrow_mut().set_session_blocked(session, false);
            self.drain();
        }
        t
    }

    /// A frame of app 1 from `session`; `now_s` is unix seconds (capability expiry).
    pub fn handle_frame(&self, session: SessionId, rx: Received, now_s: u64) {
        self.plane.borrow_mut().handle_frame(session, rx, now_s);
        self.drain();
    }

    /// Answers 408 `slow_client` to the uploads whose body is not complete `put_timeout_s` after
    /// their START, and gives their reservations back (an `AbortPut` to the owner's store); the
    /// shard's tick calls it. `now_s` is unix seconds, the clock their deadlines were set on.
    pub fn handle_put_timeout(&self, now_s: u64) {
        let due = self
            .plane
            .borrow()
            .poll_timeout()
            .is_some_and(|t| t <= now_s);
        if due {
            self.plane.borrow_mut().handle_timeout(now_s);
            self.drain();
        }
    }

    /// Frames queued in this shard's session outboxes now: `queue_depth{queue="send"}`.
    pub fn outbox_frames(&self) -> usize {
        self.outboxes.borrow().values().map(|o| o.len()).sum()
    }

    /// Frames refused at a full outbox since start: `queue_dropped_total{queue="send"}`.
    pub fn outbox_refused(&self) -> u64 {
        self.outbox_refused.get()
    }

    /// Times a mesh channel was found full since start, for `bus_lagged_total`.
    pub fn lagged(&self) -> u64 {
        self.lagged.get()
    }

    /// What the store holds and has quarantined, for the shard's stats.
    pub fn store_usage(&self) -> StoreUsage {
        self.store.usage()
    }

    /// The store's work queues: (depth, refused since start); a RAM store completes every
    /// operation on the spot and queues none.
    pub fn store_work(&self) -> (u64, u64) {
        match &self.store {
            Store::Ram(_) => (0, 0),
            Store::Disk(disk) => disk.work(),
        }
    }

    /// Refusals by reason since start, for the shard's `rejected_total`.
    pub fn refusals(&self) -> Vec<(ronode_proto::Reason, u64)> {
        self.plane.borrow().counters().refusals().collect()
    }

    /// Runs the plane's outputs until there are none.
    pub fn drain(&self) {
        loop {
            let op = self.plane.borrow_mut().poll_store_op();
            if let Some(op) = op {
                self.route(op);
                continue;
            }
            let t = self.plane.borrow_mut().poll_transmit();
            match t {
                Some(t) => self.push(t),
                None => return,
            }
        }
    }

    /// Queues a frame on its session's outbox (dropped when the session is gone), pausing the
    /// session's GET streams once the outbox reaches its window.
    fn push(&self, t: Transmit) {
        let outbox = self.outboxes.borrow().get(&t.session.0).cloned();
        if let Some(outbox) = outbox {
            let session = t.session;
            if let Err(t) = outbox.push(t) {
                self.outbox_refused.set(self.outbox_refused.get() + 1);
                let (app, corr) = (t.app_proto_id, t.corr_id);
                tracing::warn!(shard = %self.shard, "outbox of {session:?} full: a frame of app {app} (corr_id {corr}) refused");
                return;
            }
            if !outbox.blocked.get() && outbox.len() >= outbox.window {
                outbox.blocked.set(true);
                self.plane.borrow_mut().set_session_blocked(session, true);
            }
        }
    }

    /// Queues a frame of another plane (gossip) on its session's outbox unless the outbox
    /// already holds `max` frames: false when refused so (the caller counts it).
    pub fn offer(&self, t: Transmit, max: usize) -> bool {
        let full = self
            .outboxes
            .borrow()
            .get(&t.session.0)
            .is_some_and(|o| o.len() >= max);
        if !full {
            self.push(t);
        }
        !full
    }

    fn route(&self, op: StoreOp) {
        let owner = shard_of(op.addr().as_bytes(), self.shard_count);
        if owner == self.shard {
            // A completion on the spot goes to the plane; the drain already running sends on
            // whatever it queued.
            self.execute(op);
            return;
        }
        let sender = self.mesh.borrow()[owner.0 as usize].clone();
        let op = match &sender {
            Some(tx) => match tx.try_send(MeshMsg::Op(op)) {
                Ok(()) => return,
                Err(e) => {
                    self.lagged.set(self.lagged.get() + 1);
                    let MeshMsg::Op(op) = mesh::returned(e) else {
                        unreachable!("sent an Op")
                    };
                    op
                }
            },
            // Still connecting (the first milliseconds after start).
            None => {
                self.lagged.set(self.lagged.get() + 1);
                op
            }
        };
        match (StoreDone::busy(&op), sender) {
            (Some(done), _) => self.plane.borrow_mut().handle_store_done(done),
            // An abort (it releases a reservation) or a commit (its body was accepted whole) must
            // reach the owner: wait for room.
            (None, Some(sender)) => {
                if let mesh::Sent::Refused(MeshMsg::Op(op)) =
                    mesh::send_or_wait(&sender, MeshMsg::Op(op))
                {
                    self.refused(op);
                }
            }
            // Not connected yet (the first moments after start): neither may be lost (an
            // unanswered PUT, a reservation held for ever), so they wait for the channel.
            (None, None) => match mesh::Place::take() {
                Some(place) => self.send_when_connected(owner, op, place),
                None => self.refused(op),
            },
        }
        // The busy answer goes out with the drain already running (it loops until empty).
    }

    /// A commit or an abort the mesh refused (every one of the shard's [`mesh::MESH_WAITING`]
    /// places was taken; counted there): a commit's upload is answered 503 `busy`; an abort
    /// cannot be answered, and its reservation stays with the owner's store until it restarts.
    fn refused(&self, op: StoreOp) {
        let addr = op.addr();
        tracing::warn!(shard = %self.shard, "mesh full: a store operation on {addr} refused");
        if let StoreOp::CommitPut { put, .. } = op {
            let done = StoreDone::CommitPut {
                put,
                result: Err(ronode_shards::objects::StoreError::Busy),
            };
            self.plane.borrow_mut().handle_store_done(done);
        }
    }

    /// Sends `op` to `owner` once the mesh channel towards it is connected (the first moments
    /// after start), waiting for room then; `place` is its place among the waiting messages.
    fn send_when_connected(&self, owner: ShardId, op: StoreOp, place: mesh::Place) {
        let me = self.me.clone();
        glommio::spawn_local(async move {
            let _place = place;
            loop {
                let Some(objects) = me.upgrade() else { return };
                let sender = objects.mesh.borrow()[owner.0 as usize].clone();
                drop(objects);
                if let Some(sender) = sender {
                    let _ = sender.send(MeshMsg::Op(op)).await;
                    return;
                }
                glommio::timer::sleep(std::time::Duration::from_millis(1)).await;
            }
        })
        .detach();
    }

    /// Runs an operation on this shard's store; its completion goes to [`Objects::complete`]
    /// now or, for disk I/O, when the task ends.
    pub(super) fn execute(&self, op: StoreOp) {
        self.note_fetchable(&op);
        let disk = match &self.store {
            Store::Ram(ram) => {
                if let Some(done) = op.execute(&mut *ram.borrow_mut()) {
                    self.complete(done);
                }
                return;
            }
            Store::Disk(disk) => disk,
        };
        match disk.start(op) {
            Started::Done(Some(done)) => self.complete(done),
            Started::Done(None) => {}
            Started::Io(io) => {
                let me = self.me.clone();
                glommio::spawn_local(async move {
                    let done = io.await;
                    if let Some(me) = me.upgrade() {
                        me.complete(done);
                        me.drain();
                    }
                })
                .detach();
            }
        }
    }

    /// A completion of this shard's store: to the local plane when it issued the operation,
    /// otherwise back over the mesh to the shard that did.
    pub(super) fn complete(&self, done: StoreDone) {
        // A miss that peers may fill, or the store's answer to caching a fetched object.
        let Some(done) = self.intercept(done) else {
            return;
        };
        let origin = done.id().shard;
        if origin == self.shard {
            self.plane.borrow_mut().handle_store_done(done);
            return;
        }
        // A completion must not be lost: park it until the channel back to its origin is
        // connected (the first moments after start), and wait for room rather than drop it.
        // Past the shard's bound on waiting messages it is refused (counted there) and lost:
        // its request is not answered.
        let sender = self.mesh.borrow()[origin.0 as usize].clone();
        let Some(sender) = sender else {
            match mesh::Place::take() {
                Some(place) => self.parked.borrow_mut()[origin.0 as usize].push((done, place)),
                None => {
                    let id = done.id();
                    tracing::warn!(shard = %self.shard, "mesh full: the completion of {id:?} refused")
                }
            }
            return;
        };
        let id = done.id();
        match mesh::send_or_wait(&sender, MeshMsg::Done(done)) {
            mesh::Sent::Now => {}
            mesh::Sent::Waiting => self.lagged.set(self.lagged.get() + 1),
            mesh::Sent::Refused(_) => {
                tracing::warn!(shard = %self.shard, "mesh full: the completion of {id:?} refused")
            }
        }
    }

    /// A message from another shard's mesh channel.
    pub fn handle_mesh(&self, msg: MeshMsg) {
        match msg {
            MeshMsg::Op(op) => self.execute(op),
            MeshMsg::Done(done) => {
                self.plane.borrow_mut().handle_store_done(done);
                self.drain();
            }
        }
    }
}

/// Serves one incoming mesh channel until its sender goes away.
pub async fn serve_mesh(objects: Rc<Objects>, rx: ConnectedReceiver<MeshMsg>) {
    while let Some(msg) = rx.recv().await {
        objects.handle_mesh(msg);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;
    use glommio::{LocalExecutorBuilder, Placement};

    fn frame(n: u64) -> Transmit {
        Transmit {
            session: SessionId(1),
            app_proto_id: ronode_proto::msg::APP_GOSSIP,
            flags: ronode_proto::Flags::EVENT,
            code: 0,
            tenant_id: 0,
            corr_id: n,
            payload: Bytes::new(),
        }
    }

    #[test]
    fn a_full_outbox_refuses_and_hands_back() {
        LocalExecutorBuilder::new(Placement::Unbound)
            .spawn(|| async {
                let outbox = Outbox::new(4);
                for n in 0..OUTBOX_FRAMES as u64 {
                    assert!(outbox.push(frame(n)).is_ok(), "frame {n}");
                }
                let back = outbox.push(frame(7)).expect_err("past OUTBOX_FRAMES");
                assert_eq!(back.corr_id, 7);
                assert_eq!(outbox.len(), OUTBOX_FRAMES);
                assert_eq!(outbox.pop().map(|t| t.corr_id), Some(0));
                assert!(outbox.push(frame(8)).is_ok(), "room again after a pop");
            })
            .unwrap()
            .join()
            .unwrap();
    }
}
