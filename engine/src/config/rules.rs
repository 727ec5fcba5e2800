//! Rules between knobs: the values one knob implies for another, and the pairs that cannot hold
//! together.

use super::check::show;
use super::error::{ConfigError, Conflict, Source};
use super::knobs::{self, ram_store_capacity};
use super::layers::{Layered, Origins};
use super::{NodeConfig, StoreKind};
use ronode_proto::limits::HEADER_LEN;
use std::net::SocketAddr;
use toml::Value;

/// Applies what `amnesia` implies, on a table whose values passed their knob checks:
///
/// - `amnesia = true` turns a `store.kind = "disk"` that came from the defaults or a profile into
///   `"ram"`; one the operator set (file, environment, flag) is a contradiction and refused.
/// - A RAM store whose `store.capacity_bytes` came from the defaults, or from a layer below the
///   one that chose the RAM store (say macronode's 64 GiB disk capacity under `--amnesia`), gets
///   the RAM default (256 MiB) instead of a disk-sized one.
pub fn apply_implied(layered: &mut Layered) -> Result<(), ConfigError> {
    let amnesia = knobs::value(&layered.table, "amnesia").and_then(Value::as_bool) == Some(true);
    let kind = knobs::value(&layered.table, "store.kind").and_then(Value::as_str);
    if amnesia && kind == Some("disk") {
        let kind_origin = layered.origins.get("store.kind").cloned();
        if kind_origin.as_ref().is_some_and(Source::is_explicit) {
            return Err(ConfigError::Conflict(Box::new(Conflict {
                key: "amnesia".to_owned(),
                value: "true".to_owned(),
                origin: layered.origins.get("amnesia").cloned(),
                other_key: "store.kind".to_owned(),
                other_value: "\"disk\"".to_owned(),
                other_origin: kind_origin,
                reason: "amnesia writes nothing to disk; drop one of them (amnesia alone gives a \
                         RAM store)"
                    .to_owned(),
            })));
        }
        layered.apply(vec![entry(
            "store.kind",
            "ram".into(),
            Source::ImpliedByAmnesia,
        )]);
    }
    let kind = knobs::value(&layered.table, "store.kind").and_then(Value::as_str);
    if kind == Some("ram") {
        let keep = match (
            layered.origins.get("store.capacity_bytes"),
            layered.origins.get("store.kind"),
        ) {
            (Some(capacity), _) if capacity.is_explicit() => true,
            // A profile that chose the RAM store sized it.
            (Some(Source::Profile(_)), Some(Source::Profile(_))) => true,
            _ => false,
        };
        if !keep {
            let ram = Value::Integer(ram_store_capacity() as i64);
            layered.apply(vec![entry("store.capacity_bytes", ram, Source::RamDefault)]);
        }
    }
    Ok(())
}

fn entry(key: &str, value: Value, source: Source) -> super::layers::Entry {
    super::layers::Entry {
        key: key.to_owned(),
        value,
        source,
    }
}

/// Checks the pairs of knobs that must agree, naming both and where each came from.
pub fn check_relations(c: &NodeConfig, origins: &Origins) -> Result<(), ConfigError> {
    let conflict = |key: &str, value: Value, other: &str, other_value: Value, reason: String| {
        Err(ConfigError::Conflict(Box::new(Conflict {
            key: key.to_owned(),
            value: show(&value),
            origin: origins.get(key).cloned(),
            other_key: other.to_owned(),
            other_value: show(&other_value),
            other_origin: origins.get(other).cloned(),
            reason,
        })))
    };
    let addr = |a: SocketAddr| Value::String(a.to_string());
    let int = |n: u64| Value::Integer(n as i64);
    if overlap(c.admin, c.listen) {
        return conflict(
            "admin",
            addr(c.admin),
            "listen",
            addr(c.listen),
            "the admin plane needs its own port".to_owned(),
        );
    }
    if c.amnesia && c.store.kind == StoreKind::Disk {
        return conflict(
            "amnesia",
            Value::Boolean(true),
            "store.kind",
            "disk".into(),
            "amnesia writes nothing to disk".to_owned(),
        );
    }
    let chunk = u64::from(c.session.chunk_bytes);
    let frame = u64::from(c.session.max_frame);
    if chunk + HEADER_LEN as u64 > frame {
        return conflict(
            "session.chunk_bytes",
            int(chunk),
            "session.max_frame",
            int(frame),
            format!(
                "a chunk plus the {HEADER_LEN}-byte header must fit in one frame; lower \
                 chunk_bytes to {} or raise max_frame",
                frame - HEADER_LEN as u64
            ),
        );
    }
    if c.objects.max_bytes > c.store.capacity_bytes {
        return conflict(
            "objects.max_bytes",
            int(c.objects.max_bytes),
            "store.capacity_bytes",
            int(c.store.capacity_bytes),
            "the store could never hold an object of the largest size allowed; raise \
             store.capacity_bytes or lower objects.max_bytes"
                .to_owned(),
        );
    }
    Ok(())
}

/// Whether two listeners would fight over a port: the same port (not 0, which the system
/// assigns) on the same IP, or on any IP when either is the unspecified one (`0.0.0.0`, `::`).
fn overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() != 0
        && a.port() == b.port()
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_listeners() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert!(overlap(a("127.0.0.1:9500"), a("127.0.0.1:9500")));
        assert!(overlap(a("0.0.0.0:9500"), a("127.0.0.1:9500")));
        assert!(overlap(a("127.0.0.1:9500"), a("[::]:9500")));
        assert!(!overlap(a("127.0.0.1:9500"), a("127.0.0.2:9500")));
        assert!(!overlap(a("127.0.0.1:9500"), a("127.0.0.1:9600")));
        assert!(!overlap(a("127.0.0.1:0"), a("127.0.0.1:0")));
    }
}
