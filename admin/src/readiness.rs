//! `/readyz` (WIRE.md section 7): 200 only when every plane the node runs is ready, with a JSON
//! body naming each plane's state and, on 503, what is missing.

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
    planes: &'a [PlaneState],
}

/// The status and JSON body of `/readyz` for these planes. No planes at all is not ready: a
/// node that has not started any plane has nothing to serve.
pub fn readyz(planes: &[PlaneState]) -> (u16, String) {
    let ready = !planes.is_empty() && planes.iter().all(|p| p.ready);
    let body = serde_json::to_string(&Body { ready, planes }).expect("readiness serializes");
    (if ready { 200 } else { 503 }, body)
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
}
