//! Fetch on miss on the shard that owns an address (PROTOCOL.md section 6.1.1): the driver of
//! the sans-IO [`OnMiss`](ronode_shards::objects::OnMiss), which decides everything.
//!
//! The objects runtime hands it every operation its store runs and every completion; this file
//! executes what it asks for: tries go to the peers through [`Peers`] (the link of a peer lives
//! on the shard that owns its NodeId) and their answers come back here; answers to reads go on
//! like store completions; caching a fetched object runs on the store.

use super::objects::Objects;
use super::peers::Peers;
use ronode_shards::objects::fetch::Answer;
use ronode_shards::objects::{MissOut, StoreDone, StoreOp};
use std::rc::Rc;

impl Objects {
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

    /// Fetch counters since start, for `objects_fetch_total{result}`.
    pub fn fetch_counters(&self) -> ronode_shards::objects::fetch::FetchCounters {
        self.on_miss.borrow().counters()
    }

    /// An operation about to run on this shard's store.
    pub(super) fn note_fetchable(&self, op: &StoreOp) {
        self.on_miss.borrow_mut().handle_op(op);
    }

    /// Takes the completions fetch on miss owns (a miss peers may fill, a step of caching);
    /// everything else goes on.
    pub(super) fn intercept(&self, done: StoreDone) -> Option<StoreDone> {
        let peers = self.peers.borrow().clone();
        let up = || peers.map(|p| p.up()).unwrap_or_default();
        let now = self.now_ms();
        let done = self.on_miss.borrow_mut().handle_done(done, up, now);
        if done.is_none() {
            self.drain_fetch();
        }
        done
    }

    /// A peer's answer to one of this shard's tries.
    fn handle_fetch_answer(&self, try_id: u64, answer: Answer) {
        let now = self.now_ms();
        self.on_miss.borrow_mut().handle_answer(try_id, answer, now);
        self.drain_fetch();
        self.drain();
    }

    /// Moves tries past their deadline on (the shard calls it every tick).
    pub fn handle_fetch_timeout(&self) {
        let now = self.now_ms();
        let due = self
            .on_miss
            .borrow()
            .poll_timeout()
            .is_some_and(|t| t <= now);
        if due {
            self.on_miss.borrow_mut().handle_timeout(now);
            self.drain_fetch();
            self.drain();
        }
    }

    /// Executes what fetch on miss asks for, until it has nothing more.
    fn drain_fetch(&self) {
        loop {
            let out = self.on_miss.borrow_mut().poll();
            match out {
                None => return,
                Some(MissOut::Try(t)) => match self.peers.borrow().clone() {
                    Some(peers) => peers.send_try(t),
                    None => {
                        let now = self.now_ms();
                        let mut on_miss = self.on_miss.borrow_mut();
                        on_miss.handle_answer(t.id, Answer::Failed, now);
                    }
                },
                Some(MissOut::Answer(done)) => self.complete(done),
                Some(MissOut::Store(op)) => self.execute(op),
            }
        }
    }
}
