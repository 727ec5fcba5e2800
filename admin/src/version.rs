//! `/version`: what this binary is, as JSON.

use serde::Serialize;

/// The body of `/version`: `{"version":"0.1.0","git":"3201872","features":["tls13",...]}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VersionInfo {
    /// The crate version.
    pub version: String,
    /// The short git commit the binary was built from, or `unknown` (built outside git).
    pub git: String,
    /// The capabilities the node was built and configured with.
    pub features: Vec<String>,
}

impl VersionInfo {
    /// This build's version and commit, with `features` (for example
    /// `["tls13", "x25519mlkem768", "oap1", "amnesia"]`).
    pub fn new<S: Into<String>>(features: impl IntoIterator<Item = S>) -> Self {
        VersionInfo {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            git: env!("RONODE_GIT").to_owned(),
            features: features.into_iter().map(Into::into).collect(),
        }
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("version info serializes")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_has_version_git_and_features() {
        let v = VersionInfo::new(["tls13", "oap1"]);
        let json: serde_json::Value = serde_json::from_str(&v.to_json()).unwrap();
        assert_eq!(json["version"], env!("CARGO_PKG_VERSION"));
        assert!(!json["git"].as_str().unwrap().is_empty());
        assert_eq!(json["features"], serde_json::json!(["tls13", "oap1"]));
    }
}
