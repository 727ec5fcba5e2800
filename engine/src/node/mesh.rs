//! The bounded SPSC mesh between shards: one glommio shared channel for every ordered pair of
//! shards, handed out as each shard starts (its senders to its executor `from`, its receivers to
//! its executor `to`). A node runs one mesh per kind of message so that a burst of one never
//! holds up another: store work and completions (`objects::MeshMsg`), peer sessions handed to
//! the shard owning their NodeId (`handoff`), peers (`peers::PeerMsg`: up-peer snapshots, fetch
//! GETs and answers, gossip frames for a peer's link) and gossip (`gossip::GossipMsg`:
//! publishes, subscriptions and peer EVENTs for a topic's owner, deliveries back).
//!
//! A message that may be lost is tried once and shed when the channel is full (counted in
//! `bus_lagged_total`); one that must not be lost waits for room ([`send_or_wait`]), within the
//! shard's [`MESH_WAITING`] bound.

use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use ronode_shards::ShardId;
use std::cell::Cell;

/// Messages a shard holds, on all its mesh channels together, because they must not be lost
/// and their channel is full or still connecting: store commits and aborts, completions, fetch
/// answers and up-peer snapshots. The planes bound what they can have outstanding towards one
/// shard (2 x `objects.max_puts` commits and aborts plus `queues.work` reads and their
/// completions: 2 x 1,024 + 2 x 2,048 at the knobs' maxima), so a node within its own bounds
/// stays below this with a few shards waiting at once; past it a message is refused, counted
/// (`queue_dropped_total{queue="mesh"}`) and handed back to its sender.
pub const MESH_WAITING: usize = 16_384;

thread_local! {
    /// This shard's messages waiting for a mesh channel (each shard is one thread).
    static WAITING: Cell<usize> = const { Cell::new(0) };
    /// Messages this shard refused because [`MESH_WAITING`] were waiting.
    static REFUSED: Cell<u64> = const { Cell::new(0) };
}

/// Messages waiting for a mesh channel on this shard now: `queue_depth{queue="mesh"}`.
pub fn waiting() -> usize {
    WAITING.with(Cell::get)
}

/// Messages refused since start: `queue_dropped_total{queue="mesh"}`.
pub fn refused() -> u64 {
    REFUSED.with(Cell::get)
}

/// One message's place among the [`MESH_WAITING`], given back when dropped (sent, or its task
/// or holder gone).
#[derive(Debug)]
pub struct Place(());

impl Place {
    /// A place, or `None` (counted) when every one is taken.
    pub fn take() -> Option<Place> {
        if waiting() >= MESH_WAITING {
            REFUSED.with(|r| r.set(r.get() + 1));
            return None;
        }
        WAITING.with(|w| w.set(w.get() + 1));
        Some(Place(()))
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        WAITING.with(|w| w.set(w.get() - 1));
    }
}

/// See the module docs.
pub struct Mesh<T: Send + Sized> {
    senders: Vec<Vec<(ShardId, SharedSender<T>)>>,
    receivers: Vec<Vec<SharedReceiver<T>>>,
}

impl<T: Send + Sized> Mesh<T> {
    /// Channels of `capacity` messages between every ordered pair of `shards`.
    pub fn new(shards: u16, capacity: usize) -> Mesh<T> {
        let n = shards as usize;
        let mut senders: Vec<Vec<_>> = (0..n).map(|_| Vec::new()).collect();
        let mut receivers: Vec<Vec<_>> = (0..n).map(|_| Vec::new()).collect();
        for (from, out) in senders.iter_mut().enumerate() {
            for to in (0..n).filter(|&to| to != from) {
                let (tx, rx) = shared_channel::new_bounded(capacity);
                out.push((ShardId(to as u16), tx));
                receivers[to].push(rx);
            }
        }
        Mesh { senders, receivers }
    }

    /// The senders from `from` to every other shard (taken once).
    pub fn senders_from(&mut self, from: ShardId) -> Vec<(ShardId, SharedSender<T>)> {
        std::mem::take(&mut self.senders[from.0 as usize])
    }

    /// The receivers into `to` from every other shard (taken once).
    pub fn receivers_to(&mut self, to: ShardId) -> Vec<SharedReceiver<T>> {
        std::mem::take(&mut self.receivers[to.0 as usize])
    }
}

/// The message a failed `try_send` hands back (the channel was full or closed).
pub fn returned<T>(e: glommio::GlommioError<T>) -> T {
    match e {
        glommio::GlommioError::WouldBlock(glommio::ResourceType::Channel(msg))
        | glommio::GlommioError::Closed(glommio::ResourceType::Channel(msg)) => msg,
        other => panic!("unexpected channel error: {other}"),
    }
}

/// How [`send_or_wait`] went.
#[derive(Debug)]
pub enum Sent<T> {
    /// The channel took it.
    Now,
    /// It waits for room in a task (for the caller's `bus_lagged_total`).
    Waiting,
    /// [`MESH_WAITING`] messages were already waiting: handed back, counted.
    Refused(T),
}

/// Sends a message that must not be lost: at once when the channel has room, otherwise from a
/// task that waits for room (such messages tolerate reordering), while fewer than
/// [`MESH_WAITING`] wait; else it is refused and handed back.
pub fn send_or_wait<T: Send + 'static>(
    tx: &std::rc::Rc<glommio::channels::shared_channel::ConnectedSender<T>>,
    msg: T,
) -> Sent<T> {
    let Err(e) = tx.try_send(msg) else {
        return Sent::Now;
    };
    let msg = returned(e);
    let Some(place) = Place::take() else {
        return Sent::Refused(msg);
    };
    let tx = tx.clone();
    glommio::spawn_local(async move {
        let _ = tx.send(msg).await;
        drop(place);
    })
    .detach();
    Sent::Waiting
}

#[cfg(test)]
mod tests {
    use super::*;
    use glommio::{LocalExecutorBuilder, Placement};
    use std::rc::Rc;

    /// A channel of one message whose receiver never reads: the first message goes, then
    /// `MESH_WAITING` wait, and the next is refused, handed back and counted.
    #[test]
    fn past_mesh_waiting_a_message_is_refused_and_counted() {
        let (tx, rx) = shared_channel::new_bounded::<u64>(1);
        let (stop_tx, stop_rx) = std::sync::mpsc::channel::<()>();
        // A connect may wait for the other end's, so the receiver connects, then holds its end,
        // unread, until the sender is done (polling, so its executor stays responsive).
        let receiver = LocalExecutorBuilder::new(Placement::Unbound)
            .spawn(move || async move {
                let _rx = rx.connect().await;
                while stop_rx.try_recv().is_err() {
                    glommio::timer::sleep(std::time::Duration::from_millis(5)).await;
                }
            })
            .unwrap();
        let sender = LocalExecutorBuilder::new(Placement::Unbound)
            .spawn(move || async move {
                let tx = Rc::new(tx.connect().await);
                assert!(matches!(send_or_wait(&tx, 0), Sent::Now));
                for i in 1..=MESH_WAITING as u64 {
                    assert!(matches!(send_or_wait(&tx, i), Sent::Waiting), "message {i}");
                }
                assert_eq!((waiting(), refused()), (MESH_WAITING, 0));
                match send_or_wait(&tx, 7) {
                    Sent::Refused(7) => {}
                    other => panic!("past the bound: {other:?}"),
                }
                assert_eq!((waiting(), refused()), (MESH_WAITING, 1));
            })
            .unwrap();
        sender.join().unwrap();
        stop_tx.send(()).unwrap();
        receiver.join().unwrap();
    }
}
