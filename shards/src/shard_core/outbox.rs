//! A session's queue of frames to send, in the shard core.
//!
//! The objects plane's frames are bounded by flow control: past `window` frames the core pauses
//! the session's GET streams (`ObjectsPlane::set_session_blocked`) and resumes them at a quarter
//! of it, so what a session holds stays near its window however many GETs it has in flight and
//! however slowly it reads. Other planes' frames (gossip deliveries) are offered with a bound
//! of their own and refused past it.

use crate::objects::Transmit;
use std::collections::VecDeque;

#[derive(Debug)]
pub(super) struct Outbox {
    queue: VecDeque<Transmit>,
    /// Frames past which the session's GET streams pause.
    window: usize,
    /// Whether the plane was told to pause this session's GET streams.
    pub(super) blocked: bool,
}

impl Outbox {
    pub(super) fn new(window: usize) -> Outbox {
        Outbox {
            queue: VecDeque::new(),
            window: window.max(1),
            blocked: false,
        }
    }

    pub(super) fn len(&self) -> usize {
        self.queue.len()
    }

    pub(super) fn pop(&mut self) -> Option<Transmit> {
        self.queue.pop_front()
    }

    pub(super) fn push(&mut self, t: Transmit) {
        self.queue.push_back(t);
    }

    /// Whether the GET streams must pause now (the queue reached the window).
    pub(super) fn over_window(&self) -> bool {
        !self.blocked && self.queue.len() >= self.window
    }

    /// Whether paused GET streams may resume (the queue drained to a quarter of the window).
    pub(super) fn may_resume(&self) -> bool {
        self.blocked && self.queue.len() <= self.window / 4
    }
}
