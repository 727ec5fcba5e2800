//! The objects runtime on a shard: the driver of the shard's [`ShardCore`], which decides
//! everything (where a store operation runs, where a completion goes, fetch on miss, when a
//! session's GET streams pause). This file executes what the core asks: operations on this
//! shard's store (RAM, or disk I/O run as local tasks), messages over the bounded mesh to other
//! shards, fetch tries through the peers, and waking the sessions that have frames queued.
//!
//! After every input, [`Objects::run_outputs`] executes the core's outputs until it has none.
//! The RAM store completes an operation on the spot; the disk store completes index-only
//! operations on the spot and runs the others as tasks, whose completion is an input again.

use super::clock::Clock;
use super::disk::{DiskStore, Started};
use super::mesh;
use super::peers::Peers;
use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::channels::shared_channel::{ConnectedReceiver, ConnectedSender};
use ronode_proto::inbound::Received;
use ronode_shards::objects::fetch::Answer;
use ronode_shards::objects::{ObjectStore, RamStore, SessionId, StoreDone, StoreOp, Transmit};
use ronode_shards::shard_core::{CoreOut, ShardCore};
use ronode_shards::stats::StoreUsage;
use ronode_shards::ShardId;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};

pub use ronode_shards::shard_core::MeshMsg;

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

/// The signal that wakes a session's driver: frames were queued for it in the core, or the
/// shard's tick wants it to look at its timers.
pub struct Wake {
    tx: LocalSender<()>,
    rx: LocalReceiver<()>,
}

impl Wake {
    fn new() -> Wake {
        let (tx, rx) = local_channel::new_bounded(1);
        Wake { tx, rx }
    }

    /// Wakes the session (a full channel means a wake-up is already pending).
    fn wake(&self) {
        let _ = self.tx.try_send(());
    }

    /// Waits until woken (returns at once if a wake-up is pending).
    pub async fn wait(&self) {
        let _ = self.rx.recv().await;
    }
}

/// The shard's objects runtime; see the module docs.
pub struct Objects {
    core: RefCell<ShardCore>,
    store: Store,
    clock: Clock,
    /// This runtime, for the disk tasks that hand their completions back to it.
    me: Weak<Objects>,
    wakes: RefCell<BTreeMap<SessionId, Rc<Wake>>>,
    /// Senders to every other shard, indexed by shard (None for this one, or until connected).
    mesh: RefCell<Vec<Option<Rc<ConnectedSender<MeshMsg>>>>>,
    /// Messages that must reach a shard whose channel is still connecting (the first moments
    /// after start), by shard; sent once it is connected.
    parked: RefCell<Vec<Vec<(MeshMsg, mesh::Place)>>>,
    /// The shard's peers, which fetch tries go through (attached once they exist).
    peers: RefCell<Option<Rc<Peers>>>,
}

impl Objects {
    pub fn new(shard_count: u16, core: ShardCore, store: Store, clock: Clock) -> Rc<Objects> {
        Rc::new_cyclic(|me| Objects {
            core: RefCell::new(core),
            store,
            clock,
            me: me.clone(),
            wakes: RefCell::new(BTreeMap::new()),
            mesh: RefCell::new((0..shard_count).map(|_| None).collect()),
            parked: RefCell::new((0..shard_count).map(|_| Vec::new()).collect()),
            peers: RefCell::new(None),
        })
    }

    /// Adds the sender towards `to`, and sends what waited for it.
    pub fn connect_mesh(&self, to: ShardId, sender: ConnectedSender<MeshMsg>) {
        let sender = Rc::new(sender);
        self.mesh.borrow_mut()[to.0 as usize] = Some(sender.clone());
        let parked = std::mem::take(&mut self.parked.borrow_mut()[to.0 as usize]);
        if !parked.is_empty() {
            glommio::spawn_local(async move {
                for (msg, place) in parked {
                    let _ = sender.send(msg).await;
                    drop(place);
                }
            })
            .detach();
        }
    }

    /// Connects fetch on miss to the shard's peers; their answers come back here.
    pub fn attach_peers(self: &Rc<Self>, peers: Rc<Peers>) {
        let me = Rc::downgrade(self);
        peers.set_sink(Box::new(move |try_id, answer| {
            if let Some(me) = me.upgrade() {
                me.handle_fetch_answer(try_id, answer);
            }
        }));
        *self.peers.borrow_mut() = Some(peers);
    }

    /// A new session: its id and its wake signal; its GET streams pause at `window` frames.
    pub fn open_session(&self, window: usize) -> (SessionId, Rc<Wake>) {
        let id = self.core.borrow_mut().handle_session_open(window);
        let wake = Rc::new(Wake::new());
        self.wakes.borrow_mut().insert(id, wake.clone());
        (id, wake)
    }

    pub fn close_session(&self, session: SessionId) {
        self.wakes.borrow_mut().remove(&session);
        self.core.borrow_mut().handle_session_closed(session);
        self.run_outputs();
    }

    pub fn set_max_frame(&self, session: SessionId, max_frame: u32) {
        self.core.borrow_mut().set_max_frame(session, max_frame);
    }

    /// Wakes every session (the shard's tick), so that each looks at its timers and the drain
    /// flag without a timer per read.
    pub fn wake_sessions(&self) {
        for wake in self.wakes.borrow().values() {
            wake.wake();
        }
    }

    /// The next frame for `session` to send.
    pub fn next_transmit(&self, session: SessionId) -> Option<Transmit> {
        let t = self.core.borrow_mut().next_transmit(session);
        self.run_outputs();
        t
    }

    /// Whether `session` has frames queued.
    pub fn has_transmit(&self, session: SessionId) -> bool {
        self.core.borrow().has_transmit(session)
    }

    /// A frame of app 1 from `session`.
    pub fn handle_frame(&self, session: SessionId, rx: Received, now: ronode_shards::session::Now) {
        self.core
            .borrow_mut()
            .handle_objects_frame(session, rx, now);
        self.run_outputs();
    }

    /// Queues a frame of another plane (gossip) on its session unless the session already
    /// holds `max` frames: false when refused so (the caller counts it).
    pub fn offer(&self, t: Transmit, max: usize) -> bool {
        let taken = self.core.borrow_mut().offer(t, max);
        self.run_outputs();
        taken
    }

    /// The shard's tick: upload and fetch deadlines.
    pub fn handle_timeout(&self) {
        let now = self.clock.now();
        let due = self
            .core
            .borrow()
            .poll_timeout()
            .is_some_and(|t| t <= now.mono_ms);
        if due {
            self.core.borrow_mut().handle_timeout(now);
            self.run_outputs();
        }
    }

    /// A message from another shard's mesh channel.
    pub fn handle_mesh(&self, msg: MeshMsg) {
        self.core.borrow_mut().handle_mesh(msg);
        self.run_outputs();
    }

    /// Frames queued for this shard's sessions now: `queue_depth{queue="send"}`.
    pub fn outbox_frames(&self) -> usize {
        self.core.borrow().queued_frames()
    }

    /// Frames refused at a full session queue since start: `queue_dropped_total{queue="send"}`.
    pub fn outbox_refused(&self) -> u64 {
        self.core.borrow().counters().outbox_refused
    }

    /// The store's work queues: (depth, refused since start); a RAM store completes every
    /// operation on the spot and queues none.
    pub fn store_work(&self) -> (u64, u64) {
        match &self.store {
            Store::Ram(_) => (0, 0),
            Store::Disk(disk) => disk.work(),
        }
    }

    /// Times a mesh channel was found full (or not yet connected), for `bus_lagged_total`.
    pub fn lagged(&self) -> u64 {
        self.core.borrow().counters().mesh_full
    }

    /// What the store holds and has quarantined, for the shard's stats.
    pub fn store_usage(&self) -> StoreUsage {
        self.store.usage()
    }

    /// Refusals by reason since start, for the shard's `rejected_total`.
    pub fn refusals(&self) -> Vec<(ronode_proto::Reason, u64)> {
        self.core.borrow().objects().counters().refusals().collect()
    }

    /// Fetch counters since start, for `objects_fetch_total{result}`.
    pub fn fetch_counters(&self) -> ronode_shards::objects::fetch::FetchCounters {
        self.core.borrow().fetch_counters()
    }

    /// A peer's answer to one of this shard's fetch tries.
    fn handle_fetch_answer(&self, try_id: u64, answer: Answer) {
        let now = self.clock.now();
        self.core
            .borrow_mut()
            .handle_fetch_answer(try_id, answer, now);
        self.run_outputs();
    }

    /// A completion of this shard's store.
    fn complete(&self, done: StoreDone) {
        let peers = self.peers.borrow().clone();
        let up = || peers.map(|p| p.up()).unwrap_or_default();
        let now = self.clock.now();
        self.core.borrow_mut().handle_store_done(done, up, now);
    }

    /// Executes the core's outputs until it has none (each may lead to more: a RAM store
    /// completes on the spot).
    pub fn run_outputs(&self) {
        loop {
            let out = self.core.borrow_mut().poll();
            match out {
                None => return,
                Some(CoreOut::Store(op)) => self.execute(op),
                Some(CoreOut::Mesh { to, msg }) => self.send_mesh(to, msg),
                Some(CoreOut::Try(t)) => {
                    let peers = self.peers.borrow().clone();
                    match peers {
                        Some(peers) => peers.send_try(t),
                        None => self.core.borrow_mut().fail_try(t.id, self.clock.now()),
                    }
                }
                Some(CoreOut::Wake(session)) => {
                    if let Some(wake) = self.wakes.borrow().get(&session) {
                        wake.wake();
                    }
                }
            }
        }
    }

    /// Sends a message to another shard; when its channel has no room (or is still connecting)
    /// the core decides: answered here, or delivered once there is room.
    fn send_mesh(&self, to: ShardId, msg: MeshMsg) {
        let sender = self.mesh.borrow()[to.0 as usize].clone();
        let msg = match &sender {
            Some(tx) => match tx.try_send(msg) {
                Ok(()) => return,
                Err(e) => mesh::returned(e),
            },
            None => msg,
        };
        let Some(msg) = self.core.borrow_mut().handle_mesh_full(msg) else {
            return; // answered busy; the loop sends the answer on
        };
        match sender {
            Some(sender) => {
                if let mesh::Sent::Refused(msg) = mesh::send_or_wait(&sender, msg) {
                    self.core.borrow_mut().handle_mesh_refused(msg);
                }
            }
            // Still connecting: it waits here, holding one of the shard's waiting places.
            None => match mesh::Place::take() {
                Some(place) => self.parked.borrow_mut()[to.0 as usize].push((msg, place)),
                None => self.core.borrow_mut().handle_mesh_refused(msg),
            },
        }
    }

    /// Runs an operation on this shard's store; its completion goes back to the core now or,
    /// for disk I/O, when the task ends.
    fn execute(&self, op: StoreOp) {
        let disk = match &self.store {
            Store::Ram(ram) => {
                let done = op.execute(&mut *ram.borrow_mut());
                if let Some(done) = done {
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
                        me.run_outputs();
                    }
                })
                .detach();
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
