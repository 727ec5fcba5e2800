//! The knob table written for people: the tables of `tuning/KNOBS.md` (kept in sync by a test)
//! and of `ronode config knobs`.

use super::knobs::{self, DefaultValue, Kind, Knob, Unit, GIB, KIB, MIB, TIB};
use super::Profile;
use toml::Value;

/// Every knob: key, environment variable, default, safe range and what it does.
pub fn knob_table() -> String {
    let mut out = String::from(
        "| key | environment | default | safe range | what it does |\n\
         | --- | --- | --- | --- | --- |\n",
    );
    for knob in knobs::KNOBS {
        let doc = match knob.bound {
            "" => knob.doc.to_owned(),
            bound => format!("{} Range: {bound}.", knob.doc),
        };
        out.push_str(&format!(
            "| `{}` | `{}` | {} | {} | {} |\n",
            knob.key,
            knobs::env_var(knob.key),
            default(knob),
            range(knob),
            doc
        ));
    }
    out
}

/// The knobs each profile sets, with the default beside them.
pub fn profile_table() -> String {
    let profiles: Vec<(Profile, toml::Table)> = Profile::ALL
        .iter()
        .map(|p| {
            (
                *p,
                toml::from_str(p.toml()).expect("profiles parse (tested)"),
            )
        })
        .collect();
    let mut out = String::from("| key | default |");
    let mut rule = String::from("| --- | --- |");
    for (p, _) in &profiles {
        out.push_str(&format!(" {p} |"));
        rule.push_str(" --- |");
    }
    out.push('\n');
    out.push_str(&rule);
    out.push('\n');
    for knob in knobs::KNOBS {
        let values: Vec<Option<&Value>> = profiles
            .iter()
            .map(|(_, t)| knobs::value(t, knob.key))
            .collect();
        if values.iter().all(Option::is_none) {
            continue;
        }
        out.push_str(&format!("| `{}` | {} |", knob.key, default(knob)));
        for value in values {
            let cell = match value {
                Some(v) => literal(v, unit(knob)),
                None => "(default)".to_owned(),
            };
            out.push_str(&format!(" {cell} |"));
        }
        out.push('\n');
    }
    out
}

fn unit(knob: &Knob) -> Unit {
    match knob.kind {
        Kind::Int { unit, .. } => unit,
        _ => Unit::Count,
    }
}

fn default(knob: &Knob) -> String {
    match knob.default {
        DefaultValue::Int(n) => number(n, unit(knob)),
        DefaultValue::IntByStore { disk, ram } => format!(
            "disk: {}, ram: {}",
            number(disk, Unit::Bytes),
            number(ram, Unit::Bytes)
        ),
        DefaultValue::Absent => "unset".to_owned(),
        _ => literal(&knob.default_value().expect("a default"), unit(knob)),
    }
}

fn range(knob: &Knob) -> String {
    match knob.kind {
        Kind::Int { min, max, unit } => format!("{} ..= {}", number(min, unit), number(max, unit)),
        Kind::Bool => "`true`, `false`".to_owned(),
        Kind::Choice(choices) => choices
            .iter()
            .map(|c| format!("`{c:?}`"))
            .collect::<Vec<_>>()
            .join(", "),
        Kind::Addr => "`\"IP:port\"`".to_owned(),
        Kind::Path => "a path".to_owned(),
        Kind::OptPath => "a path, or unset".to_owned(),
        Kind::Peers { max } => format!("up to {max} of `\"IP:port#NodeId\"`, no NodeId twice"),
    }
}

/// A TOML value in backquotes, an integer with its size or duration when it has a round one.
fn literal(value: &Value, unit: Unit) -> String {
    match value {
        Value::Integer(n) if *n >= 0 => number(*n as u64, unit),
        other => format!("`{other}`"),
    }
}

/// `` `65536` (64 KiB) ``, `` `5000` (5 s) ``, `` `16` ``.
fn number(n: u64, unit: Unit) -> String {
    let scaled = |steps: &[(u64, &str)]| {
        steps
            .iter()
            .find(|(size, _)| n >= *size && n.is_multiple_of(*size))
            .map(|(size, name)| format!(" ({} {name})", n / size))
            .unwrap_or_default()
    };
    let human = match unit {
        Unit::Count => String::new(),
        Unit::Bytes => scaled(&[(TIB, "TiB"), (GIB, "GiB"), (MIB, "MiB"), (KIB, "KiB")]),
        Unit::Millis => scaled(&[(60_000, "min"), (1_000, "s")]),
        Unit::Micros => scaled(&[(1_000_000, "s"), (1_000, "ms")]),
        Unit::Secs => scaled(&[(86_400, "d"), (3_600, "h"), (60, "min")]),
    };
    format!("`{n}`{human}")
}

/// The generated blocks of `tuning/KNOBS.md`: marker name and content.
#[cfg(test)]
fn doc_blocks() -> [(&'static str, String); 2] {
    [("knobs", knob_table()), ("profiles", profile_table())]
}

/// `doc` with the content between `<!-- NAME:begin -->` and `<!-- NAME:end -->` replaced by
/// the generated block, or an error naming a missing marker.
#[cfg(test)]
fn regenerate(doc: &str) -> Result<String, String> {
    let mut out = doc.to_owned();
    for (name, block) in doc_blocks() {
        let begin = format!("<!-- {name}:begin -->\n");
        let end = format!("<!-- {name}:end -->");
        let start = out.find(&begin).ok_or(format!("no {begin:?} marker"))? + begin.len();
        let stop = start
            + out[start..]
                .find(&end)
                .ok_or(format!("no {end:?} marker"))?;
        out.replace_range(start..stop, &block);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `tuning/KNOBS.md` shows the code's table: every knob with the same default and range.
    /// `RONODE_BLESS_DOCS=1 cargo test -p ronode-engine knobs_md` rewrites its tables.
    #[test]
    fn knobs_md_matches_the_knob_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tuning/KNOBS.md");
        let doc = std::fs::read_to_string(path).expect("tuning/KNOBS.md exists");
        let generated = regenerate(&doc).unwrap_or_else(|e| panic!("tuning/KNOBS.md: {e}"));
        if generated == doc {
            return;
        }
        if std::env::var_os("RONODE_BLESS_DOCS").is_some() {
            std::fs::write(path, generated).expect("rewrite tuning/KNOBS.md");
            return;
        }
        let drift: Vec<&str> = generated
            .lines()
            .filter(|line| line.starts_with("| `") && !doc.lines().any(|l| l == *line))
            .collect();
        panic!(
            "tuning/KNOBS.md drifted from the knob table (engine/src/config/knobs.rs); rows as \
             the code has them:\n{}\nif the change is intended, run RONODE_BLESS_DOCS=1 cargo \
             test -p ronode-engine knobs_md",
            drift.join("\n")
        );
    }

    #[test]
    fn numbers_with_units() {
        assert_eq!(number(65_536, Unit::Bytes), "`65536` (64 KiB)");
        assert_eq!(number(1_048_538, Unit::Bytes), "`1048538`");
        assert_eq!(number(8 * GIB, Unit::Bytes), "`8589934592` (8 GiB)");
        assert_eq!(number(5_000, Unit::Millis), "`5000` (5 s)");
        assert_eq!(number(300_000, Unit::Millis), "`300000` (5 min)");
        assert_eq!(number(0, Unit::Micros), "`0`");
        assert_eq!(number(2_000, Unit::Count), "`2000`");
    }

    #[test]
    fn every_knob_has_a_row() {
        let table = knob_table();
        for knob in knobs::KNOBS {
            assert!(
                table.contains(&format!("| `{}` |", knob.key)),
                "{}",
                knob.key
            );
        }
        assert!(table.contains(
            "| `session.chunk_bytes` | `RONODE_SESSION__CHUNK_BYTES` | `65536` (64 KiB) | \
             `4096` (4 KiB) ..= `1048538` |"
        ));
    }
}
