//! The bounded SPSC mesh between shards: one glommio shared channel for every ordered pair of
//! shards, handed out as each shard starts (its senders to its executor `from`, its receivers to
//! its executor `to`). A node runs one mesh per kind of message (store work, session hand-offs)
//! so that a burst of one never holds up the other.

use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use ronode_shards::ShardId;

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

/// Sends a message that must not be lost: at once when the channel has room, otherwise from a
/// task that waits for room (such messages tolerate reordering). `false` when it had to wait,
/// for the caller's `bus_lagged_total`.
pub fn send_or_wait<T: Send + 'static>(
    tx: &std::rc::Rc<glommio::channels::shared_channel::ConnectedSender<T>>,
    msg: T,
) -> bool {
    let Err(e) = tx.try_send(msg) else {
        return true;
    };
    let msg = returned(e);
    let tx = tx.clone();
    glommio::spawn_local(async move {
        let _ = tx.send(msg).await;
    })
    .detach();
    false
}
