//! The JSON report and what feeds it: percentiles from the latency histogram, CPU time and RSS
//! read from `/proc` (no libc: `/proc/<pid>/stat` counts in clock ticks, which Linux fixes at
//! 100 per second for user space, `USER_HZ`).

use hdrhistogram::Histogram;
use serde::Serialize;

/// Linux's `USER_HZ`: the unit of `utime`/`stime` in `/proc/<pid>/stat` on every architecture
/// Linux supports for this project.
const USER_HZ: f64 = 100.0;

/// The report `overlay-smoke` prints on stdout, one JSON object. `rps`, `gbps` and the
/// percentiles cover the measured window only (after the warm-up).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// `S`, `M` or `L`.
    pub class: String,
    /// `IP:port` (OAP/1) or the URL (HTTP).
    pub target: String,
    /// Requests per second asked for; 0: flat out.
    pub rate: f64,
    pub rps: f64,
    /// Object bytes per second, in gigabits (10^9 bits).
    pub gbps: f64,
    /// The same in gigabytes (10^9 bytes) per second.
    pub gbytes_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
    /// Bad answers and failed sessions over the whole run (see [`super::tracker::Stats`]).
    pub errors: u64,
    /// CPU seconds (user + system) the `--server-pid` processes used in the window (summed).
    pub server_cpu_s: Option<f64>,
    /// Their resident memory at the window's end, MB (10^6 bytes).
    pub server_rss_mb: Option<f64>,
    /// `server_cpu_s` over the window: 1.0 is one core busy.
    pub server_util: Option<f64>,
    /// Server CPU microseconds per good answer in the window.
    pub server_cpu_us_per_req: Option<f64>,
    /// This process's CPU seconds in the window.
    pub client_cpu_s: f64,
    pub client_util: f64,
    /// Good answers in the window, and the window's length.
    pub requests: u64,
    pub duration_s: f64,
    pub conns: usize,
    pub depth: usize,
    /// Answers whose digest was checked (all were length-checked).
    pub verified: u64,
    pub tls_suite: String,
    pub kx_group: String,
}

/// Latency percentiles in milliseconds from a microsecond histogram: p50, p95, p99, p99.9, max.
pub fn percentiles_ms(h: &Histogram<u64>) -> [f64; 5] {
    if h.is_empty() {
        return [0.0; 5];
    }
    let ms = |us: u64| us as f64 / 1000.0;
    [
        ms(h.value_at_quantile(0.50)),
        ms(h.value_at_quantile(0.95)),
        ms(h.value_at_quantile(0.99)),
        ms(h.value_at_quantile(0.999)),
        ms(h.max()),
    ]
}

/// CPU seconds (utime + stime, all threads) of process `pid`, from `/proc/<pid>/stat`.
pub fn proc_cpu_s(pid: &str) -> std::io::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat_cpu_ticks(&stat)
        .map(|t| t as f64 / USER_HZ)
        .ok_or_else(|| std::io::Error::other(format!("unreadable /proc/{pid}/stat")))
}

/// utime + stime in ticks from the text of a `/proc/<pid>/stat` (fields 14 and 15; the command
/// name, field 2, may hold spaces and parentheses, so fields count from the last `)`).
pub fn parse_stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After the name: field 3 (state) is index 0, so utime (14) is index 11.
    let utime: u64 = fields.nth(11)?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
}

/// Resident memory of `pid` in MB, from `VmRSS` in `/proc/<pid>/status`.
pub fn proc_rss_mb(pid: &str) -> std::io::Result<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_status_rss_kb(&status)
        .map(|kb| kb as f64 * 1024.0 / 1e6)
        .ok_or_else(|| std::io::Error::other(format!("no VmRSS in /proc/{pid}/status")))
}

pub fn parse_status_rss_kb(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// Sum of [`proc_cpu_s`] over `pids`; `None` when there are none or one cannot be read.
pub fn cpu_of(pids: &[String]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| proc_cpu_s(p).ok()).sum()
}

/// Sum of [`proc_rss_mb`] over `pids`.
pub fn rss_of(pids: &[String]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    pids.iter().map(|p| proc_rss_mb(p).ok()).sum()
}

/// Rounds to 4 decimals for a readable report.
pub fn round4(x: f64) -> f64 {
    (x * 10_000.0).round() / 10_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_after_a_tricky_name() {
        let stat = "4242 (ro de) x)) S 1 4242 4242 0 -1 4194560 1525 0 0 0 250 37 0 0 20 0 \
                    5 0 123 456789 1000 18446744073709551615";
        assert_eq!(parse_stat_cpu_ticks(stat), Some(287));
        assert_eq!(parse_stat_cpu_ticks("garbage"), None);
        let me = proc_cpu_s("self").unwrap();
        assert!(me >= 0.0);
    }

    #[test]
    fn rss_from_status() {
        let status = "Name:\tronode\nVmPeak:\t  9000 kB\nVmRSS:\t   12345 kB\nThreads:\t4\n";
        assert_eq!(parse_status_rss_kb(status), Some(12345));
        assert!(proc_rss_mb("self").unwrap() > 0.0);
    }

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut h = super::super::tracker::latency_histogram();
        for us in 1..=10_000u64 {
            h.record(us).unwrap();
        }
        let [p50, p95, p99, p999, max] = percentiles_ms(&h);
        let near = |a: f64, b: f64| (a - b).abs() <= b * 0.002;
        assert!(
            near(p50, 5.0) && near(p95, 9.5) && near(p99, 9.9),
            "{p50} {p95} {p99}"
        );
        assert!(near(p999, 9.99) && near(max, 10.0), "{p999} {max}");
        assert_eq!(
            percentiles_ms(&super::super::tracker::latency_histogram()),
            [0.0; 5]
        );
    }
}
