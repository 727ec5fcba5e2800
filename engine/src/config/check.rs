//! One knob's value against its entry in the knob table: type, then range.

use super::error::{ConfigError, Source};
use super::knobs::{Kind, Knob};
use super::peer::PeerAddr;
use std::net::SocketAddr;
use toml::Value;

/// Checks `value` for `knob`, naming the key, the value and where it came from when it fails.
pub fn check_value(knob: &Knob, value: &Value, origin: Option<&Source>) -> Result<(), ConfigError> {
    let invalid = |reason: String| ConfigError::Invalid {
        key: knob.key.to_owned(),
        value: show(value),
        origin: origin.cloned(),
        reason,
    };
    match knob.kind {
        Kind::Int { min, max, .. } => {
            let Value::Integer(n) = value else {
                return Err(invalid(format!(
                    "must be an integer, not {}",
                    type_name(value)
                )));
            };
            if *n < 0 || (*n as u64) < min || (*n as u64) > max {
                let why = match knob.bound {
                    "" => String::new(),
                    bound => format!(" ({bound})"),
                };
                return Err(invalid(format!("must be between {min} and {max}{why}")));
            }
        }
        Kind::Bool => {
            if !value.is_bool() {
                return Err(invalid(format!(
                    "must be true or false, not {}",
                    type_name(value)
                )));
            }
        }
        Kind::Choice(choices) => {
            if !value.as_str().is_some_and(|s| choices.contains(&s)) {
                let list: Vec<String> = choices.iter().map(|c| format!("{c:?}")).collect();
                return Err(invalid(format!("must be one of {}", list.join(", "))));
            }
        }
        Kind::Addr => {
            let ok = value
                .as_str()
                .is_some_and(|s| s.parse::<SocketAddr>().is_ok());
            if !ok {
                return Err(invalid(
                    "must be an address IP:port, such as \"127.0.0.1:9500\" or \"[::]:9500\""
                        .to_owned(),
                ));
            }
        }
        Kind::Path | Kind::OptPath => match value.as_str() {
            Some("") => return Err(invalid("must be a path, not empty".to_owned())),
            Some(s) if s.contains('\0') => {
                return Err(invalid("must be a path without NUL bytes".to_owned()))
            }
            Some(_) => {}
            None => {
                return Err(invalid(format!(
                    "must be a path (a string), not {}",
                    type_name(value)
                )))
            }
        },
        Kind::Peers { max } => check_peers(knob, value, origin, max)?,
    }
    Ok(())
}

fn check_peers(
    knob: &Knob,
    value: &Value,
    origin: Option<&Source>,
    max: usize,
) -> Result<(), ConfigError> {
    let invalid = |key: String, value: &Value, reason: String| ConfigError::Invalid {
        key,
        value: show(value),
        origin: origin.cloned(),
        reason,
    };
    let Some(list) = value.as_array() else {
        return Err(invalid(
            knob.key.to_owned(),
            value,
            format!(
                "must be a list of \"IP:port#NodeId\" strings, not {}",
                type_name(value)
            ),
        ));
    };
    if list.len() > max {
        return Err(invalid(
            knob.key.to_owned(),
            value,
            format!("lists {} peers; at most {max} are allowed", list.len()),
        ));
    }
    let mut seen: Vec<PeerAddr> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let key = format!("{}[{i}]", knob.key);
        let Some(s) = item.as_str() else {
            return Err(invalid(
                key,
                item,
                format!(
                    "must be a string \"IP:port#NodeId\", not {}",
                    type_name(item)
                ),
            ));
        };
        let peer = PeerAddr::parse(s).map_err(|reason| invalid(key.clone(), item, reason))?;
        if let Some(j) = seen.iter().position(|p| p.node_id == peer.node_id) {
            return Err(invalid(
                key,
                item,
                format!("the same NodeId as {}[{j}]", knob.key),
            ));
        }
        seen.push(peer);
    }
    Ok(())
}

/// A value as TOML writes it (`"text"`, `42`, `["a", "b"]`), for error messages; a long one is
/// cut short.
pub fn show(value: &Value) -> String {
    const MAX_CHARS: usize = 120;
    let text = value.to_string();
    match text.char_indices().nth(MAX_CHARS) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// `an integer`, `a string`, ...: for "must be X, not Y".
pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::String(_) => "a string",
        Value::Integer(_) => "an integer",
        Value::Float(_) => "a float",
        Value::Boolean(_) => "a boolean",
        Value::Datetime(_) => "a date-time",
        Value::Array(_) => "a list",
        Value::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::knobs::{knob, KNOBS};

    fn err(key: &str, value: Value) -> String {
        let knob = knob(key).unwrap();
        check_value(knob, &value, Some(&Source::Env("RONODE_X".into())))
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn every_default_passes() {
        for knob in KNOBS {
            if let Some(v) = knob.default_value() {
                check_value(knob, &v, None).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }

    #[test]
    fn range_errors_name_key_value_source_and_bound() {
        assert_eq!(
            err("session.chunk_bytes", Value::Integer(100)),
            "config: session.chunk_bytes = 100 (from environment RONODE_X): must be between 4096 \
             and 1048538 (PROTOCOL.md 2.1: 4 KiB .. the largest payload a frame can carry)"
        );
        assert_eq!(
            err("shards", Value::Integer(-1)),
            "config: shards = -1 (from environment RONODE_X): must be between 0 and 1024"
        );
    }

    #[test]
    fn type_errors_name_the_expected_type() {
        let cases = [
            (
                "session.max_rps",
                Value::String("fast".into()),
                "must be an integer, not a string",
            ),
            (
                "session.max_rps",
                Value::Float(1.5),
                "must be an integer, not a float",
            ),
            ("pin", Value::String("on".into()), "must be true or false"),
            (
                "pq_mode",
                Value::String("pq".into()),
                r#"must be one of "off", "hybrid", "pq_only""#,
            ),
            (
                "listen",
                Value::String("localhost:9500".into()),
                "must be an address IP:port",
            ),
            ("listen", Value::Integer(9500), "must be an address IP:port"),
            (
                "data_dir",
                Value::String(String::new()),
                "must be a path, not empty",
            ),
            (
                "identity",
                Value::Boolean(true),
                "must be a path (a string), not a boolean",
            ),
            ("peers", Value::String("x".into()), "must be a list"),
        ];
        for (key, value, want) in cases {
            let e = err(key, value);
            assert!(e.starts_with(&format!("config: {key} = ")), "{e}");
            assert!(e.contains(want), "{key}: {e}");
        }
    }

    #[test]
    fn peers_are_checked_one_by_one() {
        let id = "ab".repeat(32);
        let good = Value::String(format!("10.0.0.1:9500#{id}"));
        let e = err("peers", Value::Array(vec![good.clone(), Value::Integer(3)]));
        assert!(e.starts_with("config: peers[1] = 3 "), "{e}");
        let e = err(
            "peers",
            Value::Array(vec![good.clone(), "10.0.0.2:1#zz".into()]),
        );
        assert!(e.starts_with("config: peers[1] = \"10.0.0.2:1#zz\""), "{e}");
        assert!(e.contains("64 hex digits"), "{e}");
        let twice = Value::String(format!("10.0.0.2:9500#{id}"));
        let e = err("peers", Value::Array(vec![good, twice]));
        assert!(e.ends_with("the same NodeId as peers[0]"), "{e}");
        let many = Value::Array(
            (0..257)
                .map(|i| Value::String(format!("10.0.0.1:{}#{:064x}", 1000 + i, i)))
                .collect(),
        );
        assert!(err("peers", many).contains("lists 257 peers; at most 256"));
    }
}
