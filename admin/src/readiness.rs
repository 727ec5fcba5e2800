//! `/readyz` (the admin plane; README.md): 200 only when every plane the node runs is ready, with a JSON
//! body naming each plane's state and, on 503, what is missing.
//!
//! [`Readiness`] is the node's shared view: the engine flips each plane's flag as the plane comes
//! up or falls back, and sets `draining` first when it stops. Flags are atomics, so
//! [`Readiness::is_ready`] (and the `readyz_state` gauge) never takes a lock; the "missing" texts
//! sit behind a mutex that only plane transitions and `/readyz` itself touch.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::Serialize;

/// One plane's readiness as its shards last published it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlaneState {
    pub plane: &'static str,
    pub ready: bool,
    /// What keeps the plane from being ready (empty when ready).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
}

#[derive(Debug, Serialize)]
struct Body<'a> {
    ready: bool,
    /// Node-wide reasons (today only `draining`); per-plane reasons sit in each plane.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    missing: &'a [&'static str],
    planes: &'a [PlaneState],
}

/// The status and JSON body of `/readyz` for these planes. No planes at all is not ready: a
/// node that has not started any plane has nothing to serve.
pub fn readyz(planes: &[PlaneState]) -> (u16, String) {
    render(planes, false)
}

/// As [`readyz`], for a node that may be draining: a draining node is not ready whatever its
/// planes say, and its body carries `"missing":["draining"]`.
pub fn render(planes: &[PlaneState], draining: bool) -> (u16, String) {
    let ready = !draining && !planes.is_empty() && planes.iter().all(|p| p.ready);
    let missing: &[&'static str] = if draining { &["draining"] } else { &[] };
    let body = serde_json::to_string(&Body {
        ready,
        missing,
        planes,
    })
    .expect("readiness serializes");
    (if ready { 200 } else { 503 }, body)
}

#[derive(Debug)]
struct PlaneSlot {
    name: &'static str,
    ready: AtomicBool,
    missing: Mutex<Vec<String>>,
}

/// The readiness of each plane the node runs, shared between the engine (writer) and the admin
/// thread (reader).
#[derive(Debug)]
pub struct Readiness {
    planes: Box<[PlaneSlot]>,
    draining: AtomicBool,
}

impl Readiness {
    /// Every plane starts not ready, missing `"starting"`.
    ///
    /// # Panics
    /// If two planes share a name.
    pub fn new(planes: &[&'static str]) -> Self {
        for (i, p) in planes.iter().enumerate() {
            assert!(!planes[..i].contains(p), "plane {p} named twice");
        }
        let planes = planes
            .iter()
            .map(|&name| PlaneSlot {
                name,
                ready: AtomicBool::new(false),
                missing: Mutex::new(vec!["starting".to_owned()]),
            })
            .collect();
        Readiness {
            planes,
            draining: AtomicBool::new(false),
        }
    }

    /// Marks `plane` ready.
    ///
    /// # Panics
    /// If the node has no such plane (a programmer error).
    pub fn set_ready(&self, plane: &str) {
        let slot = self.slot(plane);
        // The text first, then the flag: a reader that sees the flag sees no stale reason.
        slot.missing
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        slot.ready.store(true, Ordering::Release);
    }

    /// Marks `plane` not ready, for these reasons.
    ///
    /// # Panics
    /// If the node has no such plane.
    pub fn set_not_ready(&self, plane: &str, missing: Vec<String>) {
        let slot = self.slot(plane);
        slot.ready.store(false, Ordering::Release);
        *slot.missing.lock().unwrap_or_else(PoisonError::into_inner) = missing;
    }

    /// The node is stopping: `/readyz` answers 503 from now on. There is no way back.
    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::Release);
    }

    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Acquire)
    }

    /// Whether `/readyz` would answer 200 now. Lock-free.
    pub fn is_ready(&self) -> bool {
        !self.is_draining()
            && !self.planes.is_empty()
            && self.planes.iter().all(|p| p.ready.load(Ordering::Acquire))
    }

    /// Each plane's state, in the order given to [`Readiness::new`].
    pub fn planes(&self) -> Vec<PlaneState> {
        self.planes
            .iter()
            .map(|p| {
                let missing = p.missing.lock().unwrap_or_else(PoisonError::into_inner);
                let ready = p.ready.load(Ordering::Acquire);
                PlaneState {
                    plane: p.name,
                    ready,
                    missing: if ready { Vec::new() } else { missing.clone() },
                }
            })
            .collect()
    }

    /// The status and JSON body of `/readyz` now.
    pub fn readyz(&self) -> (u16, String) {
        render(&self.planes(), self.is_draining())
    }

    fn slot(&self, plane: &str) -> &PlaneSlot {
        self.planes
            .iter()
            .find(|p| p.name == plane)
            .unwrap_or_else(|| panic!("no plane named {plane}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_when_every_plane_is() {
        let overlay = PlaneState {
            plane: "overlay",
            ready: true,
            missing: vec![],
        };
        let dht = PlaneState {
            plane: "dht",
            ready: false,
            missing: vec!["bootstrap: 0 of 3 seeds answered".into()],
        };
        assert_eq!(readyz(std::slice::from_ref(&overlay)).0, 200);
        let (status, body) = readyz(&[overlay, dht]);
        assert_eq!(status, 503);
        assert!(
            body.contains(r#""missing":["bootstrap: 0 of 3 seeds answered"]"#),
            "{body}"
        );
        assert_eq!(readyz(&[]).0, 503);
    }

    #[test]
    fn shared_readiness_follows_planes_and_draining() {
        let r = Readiness::new(&["overlay", "dht"]);
        assert!(!r.is_ready());
        let (status, body) = r.readyz();
        assert_eq!(status, 503);
        assert!(body.contains(r#""missing":["starting"]"#), "{body}");
        r.set_ready("overlay");
        r.set_not_ready("dht", vec!["bootstrap: 1 of 3 seeds answered".into()]);
        let (status, body) = r.readyz();
        assert_eq!(status, 503);
        assert!(body.contains("1 of 3"), "{body}");
        r.set_ready("dht");
        assert!(r.is_ready());
        let (status, body) = r.readyz();
        assert_eq!((status, body.contains("missing")), (200, false), "{body}");
        r.set_draining();
        assert!(!r.is_ready());
        let (status, body) = r.readyz();
        assert_eq!(status, 503);
        assert!(
            body.starts_with(r#"{"ready":false,"missing":["draining"],"#),
            "{body}"
        );
        assert_eq!(Readiness::new(&[]).readyz().0, 503);
    }

    #[test]
    #[should_panic(expected = "no plane named gossip")]
    fn unknown_plane_is_a_programmer_error() {
        Readiness::new(&["overlay"]).set_ready("gossip");
    }
}
