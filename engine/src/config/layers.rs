//! The layers of a configuration and their merge: defaults < profile < file < environment <
//! flags. Each layer becomes a flat list of `(key, value, source)` entries, its keys checked
//! against the knob table; the entries are then set key by key into one table (a deep merge:
//! a layer replaces the keys it names and leaves the others, a list is replaced whole).

use super::error::{ConfigError, Source};
use super::knobs::{self, Kind, SECTIONS};
use super::{ConfigOverrides, Profile};
use std::collections::BTreeMap;
use std::path::Path;
use toml::{Table, Value};

/// `RONODE_*` variables that belong to the CLI, not to the configuration.
pub const NOT_CONFIG_VARS: &[&str] = &[
    "RONODE_CAP",
    "RONODE_LOG",
    "RONODE_LOG_FORMAT",
    "RONODE_BLESS_DOCS",
];
/// Selects the profile, as `--profile` does (the flag wins).
pub const PROFILE_VAR: &str = "RONODE_PROFILE";
/// Names the configuration file, as `--config` does (the flag wins).
pub const CONFIG_VAR: &str = "RONODE_CONFIG";

/// One value set by one layer.
#[derive(Debug, Clone)]
pub struct Entry {
    pub key: String,
    pub value: Value,
    pub source: Source,
}

/// Where each key's value came from.
#[derive(Debug, Clone, Default)]
pub struct Origins(BTreeMap<String, Source>);

impl Origins {
    pub fn get(&self, key: &str) -> Option<&Source> {
        self.0.get(key)
    }
}

/// The merged table and the origin of each value in it.
#[derive(Debug, Clone)]
pub struct Layered {
    pub table: Table,
    pub origins: Origins,
}

impl Layered {
    /// The defaults layer.
    pub fn defaults() -> Layered {
        let mut origins = Origins::default();
        for knob in knobs::KNOBS {
            if knob.default_value().is_some() {
                origins.0.insert(knob.key.to_owned(), Source::Default);
            }
        }
        Layered {
            table: knobs::defaults_table(),
            origins,
        }
    }

    /// Lays `entries` over what is there, key by key.
    pub fn apply(&mut self, entries: Vec<Entry>) {
        for entry in entries {
            knobs::set(&mut self.table, &entry.key, entry.value);
            self.origins.0.insert(entry.key, entry.source);
        }
    }
}

/// The entries of a TOML document (a file or a profile), refusing keys no knob has.
pub fn document(name: &str, text: &str, source: &Source) -> Result<Vec<Entry>, ConfigError> {
    let doc: Table = toml::from_str(text).map_err(|e| ConfigError::Syntax {
        file: name.to_owned(),
        message: syntax_message(text, &e),
    })?;
    let mut entries = Vec::new();
    for (key, value) in doc {
        if SECTIONS.contains(&key.as_str()) {
            let Value::Table(inner) = value else {
                return Err(ConfigError::NotASection {
                    origin: source.clone(),
                    key,
                });
            };
            for (name, value) in inner {
                entries.push(entry(format!("{key}.{name}"), value, source)?);
            }
        } else {
            entries.push(entry(key, value, source)?);
        }
    }
    Ok(entries)
}

fn entry(key: String, value: Value, source: &Source) -> Result<Entry, ConfigError> {
    if knobs::knob(&key).is_none() {
        return Err(ConfigError::UnknownKey {
            origin: source.clone(),
            suggestion: suggest(&key),
            key,
        });
    }
    Ok(Entry {
        key,
        value,
        source: source.clone(),
    })
}

/// `line L, column C: message` from a TOML parse error.
fn syntax_message(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim_end();
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message.to_owned(),
    }
}

/// The environment's layer, and its two selectors.
#[derive(Debug, Default)]
pub struct EnvLayer {
    pub entries: Vec<Entry>,
    /// `RONODE_PROFILE`, parsed.
    pub profile: Option<Profile>,
    /// `RONODE_CONFIG`.
    pub config: Option<String>,
}

/// Reads the `RONODE_*` variables of `env`: `RONODE_<KEY>` for a top-level knob,
/// `RONODE_<SECTION>__<KEY>` for a knob in a section. Any other `RONODE_*` variable, except the
/// CLI's own ([`NOT_CONFIG_VARS`]) and the selectors, is refused by name (fail closed: a
/// misspelt knob must not be silently ignored). Variables outside `RONODE_*` are ignored.
pub fn environment(env: &[(String, String)]) -> Result<EnvLayer, ConfigError> {
    let mut vars: Vec<&(String, String)> = env
        .iter()
        .filter(|(name, _)| name.starts_with("RONODE_") && !NOT_CONFIG_VARS.contains(&&**name))
        .collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    let mut layer = EnvLayer::default();
    for (name, raw) in vars {
        let source = Source::Env(name.clone());
        if name == PROFILE_VAR {
            layer.profile = Some(raw.parse().map_err(|reason| ConfigError::Selector {
                origin: source,
                reason,
            })?);
            continue;
        }
        if name == CONFIG_VAR {
            if raw.is_empty() {
                return Err(ConfigError::Selector {
                    origin: source,
                    reason: "must name a file, not be empty".to_owned(),
                });
            }
            layer.config = Some(raw.clone());
            continue;
        }
        let key = name["RONODE_".len()..]
            .to_ascii_lowercase()
            .replace("__", ".");
        let knob = knobs::knob(&key).filter(|k| knobs::env_var(k.key) == *name);
        let Some(knob) = knob else {
            return Err(ConfigError::UnknownEnv {
                name: name.clone(),
                suggestion: knobs::knob(&key)
                    .map(|k| k.key.to_owned())
                    .or_else(|| suggest(&key))
                    .map(|k| knobs::env_var(&k)),
            });
        };
        layer.entries.push(Entry {
            key,
            value: env_value(knob.kind, raw),
            source,
        });
    }
    Ok(layer)
}

/// An environment value: a TOML value where it parses as one (numbers, booleans, lists), else
/// the text itself. For knobs whose values are strings (addresses, paths, choices) the text is
/// taken as is unless it is a quoted TOML string, so `RONODE_DATA_DIR=2024` names a directory.
/// `RONODE_PEERS` also takes a comma-separated list.
fn env_value(kind: Kind, raw: &str) -> Value {
    let parsed = toml_value(raw);
    match kind {
        Kind::Int { .. } | Kind::Bool => parsed.unwrap_or_else(|| Value::String(raw.to_owned())),
        Kind::Choice(_) | Kind::Addr | Kind::Path | Kind::OptPath => match parsed {
            Some(Value::String(s)) => Value::String(s),
            _ => Value::String(raw.to_owned()),
        },
        Kind::Peers { .. } => match parsed {
            Some(list @ Value::Array(_)) => list,
            _ => Value::Array(
                raw.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| Value::String(s.to_owned()))
                    .collect(),
            ),
        },
    }
}

/// `raw` as one TOML value, if it is exactly one.
fn toml_value(raw: &str) -> Option<Value> {
    let table: Table = toml::from_str(&format!("v = {raw}")).ok()?;
    if table.len() != 1 {
        return None;
    }
    table.get("v").cloned()
}

/// The flags' layer. A path that is not UTF-8 cannot be written in TOML and is refused.
pub fn flags(o: &ConfigOverrides) -> Result<Vec<Entry>, ConfigError> {
    let mut entries = Vec::new();
    let mut add = |key: &str, flag: &'static str, value: Value| {
        entries.push(Entry {
            key: key.to_owned(),
            value,
            source: Source::Flag(flag),
        })
    };
    let text = |v: &dyn ToString| Value::String(v.to_string());
    if let Some(a) = o.listen {
        add("listen", "--listen", text(&a));
    }
    if let Some(a) = o.admin {
        add("admin", "--admin", text(&a));
    }
    if let Some(n) = o.shards {
        add("shards", "--shards", Value::Integer(n.into()));
    }
    if let Some(b) = o.pin {
        add("pin", "--pin", Value::Boolean(b));
    }
    if let Some(b) = o.amnesia {
        add("amnesia", "--amnesia", Value::Boolean(b));
    }
    if let Some(m) = o.pq_mode {
        add("pq_mode", "--pq-mode", text(&m));
    }
    if !o.peers.is_empty() {
        let list = o.peers.iter().map(|p| Value::String(p.clone())).collect();
        add("peers", "--peer", Value::Array(list));
    }
    let paths = [
        ("data_dir", "--data-dir", &o.data_dir),
        ("identity", "--identity", &o.identity),
        ("cap_key", "--cap-key", &o.cap_key),
    ];
    for (key, flag, path) in paths {
        if let Some(path) = path {
            add(key, flag, Value::String(utf8(key, flag, path)?));
        }
    }
    Ok(entries)
}

/// A path as UTF-8, or an error naming the key and flag.
pub fn utf8(key: &str, flag: &'static str, path: &Path) -> Result<String, ConfigError> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| ConfigError::Invalid {
            key: key.to_owned(),
            value: format!("{:?}", path.to_string_lossy()),
            origin: Some(Source::Flag(flag)),
            reason: "must be valid UTF-8".to_owned(),
        })
}

/// The closest known key to a misspelt one: within two edits, or the same name in another
/// section (`max_rps` -> `session.max_rps`).
pub fn suggest(key: &str) -> Option<String> {
    let by_distance = knobs::KNOBS
        .iter()
        .map(|k| (edit_distance(key, k.key), k.key))
        .filter(|(d, _)| *d <= 2)
        .min();
    if let Some((_, k)) = by_distance {
        return Some(k.to_owned());
    }
    let name = key.rsplit('.').next().unwrap_or(key);
    knobs::KNOBS
        .iter()
        .find(|k| k.split().1 == name)
        .map(|k| k.key.to_owned())
}

/// Levenshtein distance over bytes (keys are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn one(name: &str, raw: &str) -> Entry {
        let mut layer = environment(&env(&[(name, raw)])).unwrap();
        assert_eq!(layer.entries.len(), 1);
        layer.entries.remove(0)
    }

    #[test]
    fn env_names_map_to_keys() {
        let e = one("RONODE_SESSION__MAX_RPS", "100");
        assert_eq!(e.key, "session.max_rps");
        assert_eq!(e.value, Value::Integer(100));
        assert_eq!(e.source, Source::Env("RONODE_SESSION__MAX_RPS".into()));
        assert_eq!(one("RONODE_LISTEN", "0.0.0.0:1").key, "listen");
    }

    #[test]
    fn env_values_parse_by_type() {
        assert_eq!(one("RONODE_PIN", "false").value, Value::Boolean(false));
        assert_eq!(
            one("RONODE_SESSION__CHUNK_BYTES", "65_536").value,
            Value::Integer(65_536)
        );
        // Not a number: kept as text, refused later by the range check with its name.
        assert_eq!(
            one("RONODE_SHARDS", "many").value,
            Value::String("many".into())
        );
        // Strings are taken as they are, even when they would parse as something else.
        assert_eq!(
            one("RONODE_DATA_DIR", "2024-01-01").value,
            Value::String("2024-01-01".into())
        );
        assert_eq!(
            one("RONODE_DATA_DIR", "\"/srv/x\"").value,
            Value::String("/srv/x".into())
        );
        assert_eq!(
            one("RONODE_PQ_MODE", "pq_only").value,
            Value::String("pq_only".into())
        );
        let list =
            |v: &[&str]| Value::Array(v.iter().map(|s| Value::String((*s).into())).collect());
        assert_eq!(
            one("RONODE_PEERS", "[\"a\", \"b\"]").value,
            list(&["a", "b"])
        );
        assert_eq!(one("RONODE_PEERS", "a, b").value, list(&["a", "b"]));
        assert_eq!(one("RONODE_PEERS", "").value, list(&[]));
        // A value smuggling a second key is one string, not two settings.
        assert_eq!(
            one("RONODE_SHARDS", "1\nshards = 2").value,
            Value::String("1\nshards = 2".into())
        );
    }

    #[test]
    fn unknown_config_variables_are_refused_by_name() {
        let cases = [
            ("RONODE_SESSION_MAX_RPS", Some("RONODE_SESSION__MAX_RPS")),
            ("RONODE_MAX_RPS", Some("RONODE_SESSION__MAX_RPS")),
            ("RONODE_session__max_rps", Some("RONODE_SESSION__MAX_RPS")),
            ("RONODE_DATADIR", Some("RONODE_DATA_DIR")),
            ("RONODE_SESSION", None),
            ("RONODE_FROBNICATE", None),
        ];
        for (name, hint) in cases {
            let e = environment(&env(&[(name, "1")])).unwrap_err();
            let text = e.to_string();
            assert_eq!(e.subject(), name, "{text}");
            assert!(
                text.starts_with(&format!("environment: unknown variable {name}")),
                "{text}"
            );
            match hint {
                Some(h) => assert!(text.ends_with(&format!("did you mean {h}?")), "{text}"),
                None => assert!(!text.contains("did you mean"), "{text}"),
            }
        }
    }

    #[test]
    fn cli_variables_and_others_are_not_config() {
        let layer = environment(&env(&[
            ("RONODE_CAP", "token"),
            ("RONODE_LOG", "debug"),
            ("RONODE_BLESS_DOCS", "1"),
            ("PATH", "/bin"),
            ("RONODE_PROFILE", "micronode"),
            ("RONODE_CONFIG", "/etc/ronode.toml"),
        ]))
        .unwrap();
        assert!(layer.entries.is_empty());
        assert_eq!(layer.profile, Some(Profile::Micronode));
        assert_eq!(layer.config.as_deref(), Some("/etc/ronode.toml"));
        let e = environment(&env(&[("RONODE_PROFILE", "edge")])).unwrap_err();
        assert_eq!(
            e.to_string(),
            "environment RONODE_PROFILE: unknown profile \"edge\": must be micronode or macronode"
        );
    }

    #[test]
    fn documents_refuse_unknown_keys_and_misplaced_sections() {
        let file = Source::File("ronode.toml".into());
        let e = document("ronode.toml", "[objects]\nmax_byte = 5\n", &file).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config file ronode.toml: unknown key objects.max_byte; did you mean objects.max_bytes?"
        );
        let e = document("ronode.toml", "[session]\nlisten = \"1.2.3.4:5\"\n", &file).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config file ronode.toml: unknown key session.listen; did you mean listen?"
        );
        let e = document("ronode.toml", "session = 5\n", &file).unwrap_err();
        assert_eq!(
            e.to_string(),
            "config file ronode.toml: session must be a section ([session]), not a value"
        );
        let e = document("ronode.toml", "[dht]\nk = 20\n", &file).unwrap_err();
        assert_eq!(e.to_string(), "config file ronode.toml: unknown key dht");
        let e = document("ronode.toml", "shards = 1\nshards = 2\n", &file).unwrap_err();
        assert!(
            e.to_string()
                .starts_with("config file ronode.toml: line 2, column 1: "),
            "{e}"
        );
    }

    #[test]
    fn edit_distances() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("max_rps", "max_rps"), 0);
        assert_eq!(suggest("zzz"), None);
    }
}
