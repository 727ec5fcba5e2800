//! What a run counts ([`Counters`]) and how a report is printed: one JSON object, written by
//! hand ([`Json`]) so that the feature pulls in no serializer; `rss_mb` from
//! `/proc/self/status`.

use std::collections::BTreeMap;
use std::fmt::Write;

/// The simulator's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Events run (deliveries, connects, closes, timers).
    pub events: u64,
    /// Buffers handed to the network, and those delivered, with their bytes.
    pub sent: u64,
    pub messages: u64,
    pub bytes: u64,
    /// Deliveries that paid a retransmit (the loss model).
    pub retransmits: u64,
    /// Buffers not delivered, by cause (`closed`, `dead`, `partition`, `bad_conn`), and their
    /// bytes.
    pub drops: BTreeMap<&'static str, u64>,
    pub dropped_bytes: u64,
    pub dials: u64,
    pub dial_failures: u64,
    pub closes: u64,
    pub kills: u64,
    pub restarts: u64,
    pub partitions: u64,
}

impl Counters {
    pub fn drop(&mut self, cause: &'static str, bytes: usize) {
        *self.drops.entry(cause).or_default() += 1;
        self.dropped_bytes += bytes as u64;
    }

    /// Writes the counters into `json` under their names.
    pub fn write(&self, json: &mut Json) {
        json.u64("events", self.events);
        json.u64("messages_sent", self.sent);
        json.u64("messages", self.messages);
        json.u64("bytes", self.bytes);
        json.u64("retransmits", self.retransmits);
        let mut drops = Json::new();
        for (cause, n) in &self.drops {
            drops.u64(cause, *n);
        }
        json.raw("drops", &drops.finish());
        json.u64("dropped_bytes", self.dropped_bytes);
        json.u64("dials", self.dials);
        json.u64("dial_failures", self.dial_failures);
        json.u64("closes", self.closes);
        json.u64("kills", self.kills);
        json.u64("restarts", self.restarts);
    }
}

/// A JSON object built field by field, in the order written.
#[derive(Debug, Default)]
pub struct Json {
    out: String,
}

impl Json {
    pub fn new() -> Json {
        Json::default()
    }

    fn key(&mut self, key: &str) {
        self.out.push(if self.out.is_empty() { '{' } else { ',' });
        let _ = write!(self.out, "\"{}\":", escape(key));
    }

    pub fn u64(&mut self, key: &str, v: u64) {
        self.key(key);
        let _ = write!(self.out, "{v}");
    }

    /// A finite float with up to 6 decimals; a NaN or infinity is written `null`.
    pub fn f64(&mut self, key: &str, v: f64) {
        self.key(key);
        if v.is_finite() {
            let _ = write!(self.out, "{}", (v * 1e6).round() / 1e6);
        } else {
            self.out.push_str("null");
        }
    }

    pub fn str(&mut self, key: &str, v: &str) {
        self.key(key);
        let _ = write!(self.out, "\"{}\"", escape(v));
    }

    pub fn null(&mut self, key: &str) {
        self.key(key);
        self.out.push_str("null");
    }

    /// `v` must already be JSON.
    pub fn raw(&mut self, key: &str, v: &str) {
        self.key(key);
        self.out.push_str(v);
    }

    pub fn finish(mut self) -> String {
        if self.out.is_empty() {
            self.out.push('{');
        }
        self.out.push('}');
        self.out
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out
}

/// The process's peak resident set in MiB (`VmHWM`, else `VmRSS`), 0 where /proc is absent.
pub fn rss_mb() -> f64 {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return 0.0;
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
    };
    field("VmHWM:")
        .or_else(|| field("VmRSS:"))
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The `p`-th percentile (0..=100) of `sorted` by nearest rank, None when empty.
pub fn percentile(sorted: &[u64], p: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((sorted.len() as u64 * p).div_ceil(100)).max(1) - 1;
    Some(sorted[rank.min(sorted.len() as u64 - 1) as usize])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_and_percentiles() {
        let mut j = Json::new();
        j.u64("a", 1);
        j.str("b", "x\"y");
        j.null("c");
        j.f64("d", 0.5);
        assert_eq!(j.finish(), r#"{"a":1,"b":"x\"y","c":null,"d":0.5}"#);
        assert_eq!(Json::new().finish(), "{}");
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50), Some(50));
        assert_eq!(percentile(&v, 99), Some(99));
        assert_eq!(percentile(&v, 100), Some(100));
        assert_eq!(percentile(&[7], 99), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }
}
