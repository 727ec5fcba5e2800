//! The handshake bench: sessions opened and closed back to back (TCP connect, full TLS 1.3
//! handshake, HELLO and its answer, close_notify), `conns` at a time, for `pq_mode` off and then
//! hybrid; handshakes per second, latency percentiles, server CPU per handshake, and the hybrid
//! overhead ratios.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use ronode_client::tls::PqMode;
use serde::Serialize;

use super::load::executor;
use super::report::{cpu_of, percentiles_ms, proc_cpu_s, round4};
use super::session::{Conn, Target};
use super::tracker::{latency_histogram, Expect, Stats};

/// One mode's figures.
#[derive(Debug, Clone, Serialize)]
pub struct ModeReport {
    pub pq_mode: String,
    pub kx_group: String,
    pub handshakes: u64,
    pub hs_per_s: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub errors: u64,
    pub server_cpu_us_per_hs: Option<f64>,
    pub client_cpu_us_per_hs: f64,
}

/// Both modes and the overhead of hybrid over classical (1.25 = 25 % more).
#[derive(Debug, Clone, Serialize)]
pub struct HandshakeReport {
    pub target: String,
    pub conns: usize,
    pub off: ModeReport,
    pub hybrid: ModeReport,
    /// hybrid p95 / off p95.
    pub overhead_p95: f64,
    /// off handshakes/s / hybrid handshakes/s.
    pub overhead_rate: f64,
    /// hybrid server CPU per handshake / off's.
    pub overhead_server_cpu: Option<f64>,
}

/// How the bench runs.
#[derive(Debug, Clone)]
pub struct HandshakeOpts {
    pub target_label: String,
    /// Target with the off and the hybrid configuration.
    pub off: Target,
    pub hybrid: Target,
    pub conns: usize,
    pub warmup: Duration,
    pub duration: Duration,
    pub cpu: Option<usize>,
    pub server_pids: Vec<String>,
}

pub fn run_handshakes(opts: HandshakeOpts) -> anyhow::Result<HandshakeReport> {
    let handle = executor(opts.cpu, "overlay-smoke-hs")
        .spawn(move || async move {
            let off = mode_run(&opts, PqMode::Off).await?;
            let hybrid = mode_run(&opts, PqMode::Hybrid).await?;
            let ratio = |a: f64, b: f64| if b > 0.0 { round4(a / b) } else { 0.0 };
            Ok::<_, anyhow::Error>(HandshakeReport {
                target: opts.target_label.clone(),
                conns: opts.conns,
                overhead_p95: ratio(hybrid.p95_ms, off.p95_ms),
                overhead_rate: ratio(off.hs_per_s, hybrid.hs_per_s),
                overhead_server_cpu: match (hybrid.server_cpu_us_per_hs, off.server_cpu_us_per_hs) {
                    (Some(h), Some(o)) => Some(ratio(h, o)),
                    _ => None,
                },
                off,
                hybrid,
            })
        })
        .map_err(|e| anyhow::anyhow!("starting glommio (check `ulimit -l`): {e}"))?;
    handle
        .join()
        .map_err(|e| anyhow::anyhow!("executor: {e}"))?
}

#[derive(Debug)]
struct HsStats {
    window_start: Instant,
    end: Instant,
    hist: hdrhistogram::Histogram<u64>,
    done: u64,
    errors: u64,
    group: String,
}

async fn mode_run(opts: &HandshakeOpts, mode: PqMode) -> anyhow::Result<ModeReport> {
    let target = Rc::new(match mode {
        PqMode::Off => opts.off.clone(),
        _ => opts.hybrid.clone(),
    });
    let start = Instant::now();
    let window_start = start + opts.warmup;
    let end = window_start + opts.duration;
    let stats = Rc::new(RefCell::new(HsStats {
        window_start,
        end,
        hist: latency_histogram(),
        done: 0,
        errors: 0,
        group: String::new(),
    }));
    let tasks: Vec<_> = (0..opts.conns)
        .map(|_| glommio::spawn_local(hs_loop(Rc::clone(&target), Rc::clone(&stats))))
        .collect();
    glommio::timer::sleep(window_start.saturating_duration_since(Instant::now())).await;
    let cpu0 = cpu_of(&opts.server_pids);
    let self0 = proc_cpu_s("self")?;
    let t0 = Instant::now();
    glommio::timer::sleep(end.saturating_duration_since(t0)).await;
    let cpu1 = cpu_of(&opts.server_pids);
    let self1 = proc_cpu_s("self")?;
    let secs = t0.elapsed().as_secs_f64().max(1e-9);
    for t in tasks {
        t.await;
    }
    let s = stats.borrow();
    let [p50, p95, p99, _, _] = percentiles_ms(&s.hist);
    let per_hs = |cpu: f64| {
        if s.done > 0 {
            round4(cpu * 1e6 / s.done as f64)
        } else {
            0.0
        }
    };
    let report = ModeReport {
        pq_mode: mode.label().to_owned(),
        kx_group: s.group.clone(),
        handshakes: s.done,
        hs_per_s: round4(s.done as f64 / secs),
        p50_ms: p50,
        p95_ms: p95,
        p99_ms: p99,
        errors: s.errors,
        server_cpu_us_per_hs: match (cpu0, cpu1) {
            (Some(a), Some(b)) => Some(per_hs(b - a)),
            _ => None,
        },
        client_cpu_us_per_hs: per_hs(self1 - self0),
    };
    eprintln!(
        "overlay-smoke: handshakes pq_mode {}: {:.0}/s, p95 {:.3} ms, group {}, {} errors",
        report.pq_mode, report.hs_per_s, report.p95_ms, report.kx_group, report.errors
    );
    Ok(report)
}

async fn hs_loop(target: Rc<Target>, stats: Rc<RefCell<HsStats>>) {
    let end = stats.borrow().end;
    // HELLO's own bookkeeping; its counters are not used here.
    let scratch = RefCell::new(Stats::new(end, end));
    let expect = Expect {
        len: 0,
        digest: [0; 32],
        verify_every: 0,
    };
    while Instant::now() < end {
        let t = Instant::now();
        let result = async {
            let mut conn = Conn::connect(&target).await?;
            conn.hello(&scratch, expect).await?;
            Ok::<_, anyhow::Error>(conn)
        }
        .await;
        let now = Instant::now();
        let conn = {
            let mut s = stats.borrow_mut();
            match result {
                Ok(conn) => {
                    if s.group.is_empty() {
                        s.group = conn.negotiated().1;
                    }
                    if now >= s.window_start && now < s.end {
                        s.done += 1;
                        let us = (now - t).as_micros() as u64;
                        s.hist.saturating_record(us.max(1));
                    }
                    Some(conn)
                }
                Err(e) => {
                    if s.errors < 3 {
                        eprintln!("overlay-smoke: handshake failed: {e:#}");
                    }
                    s.errors += 1;
                    None
                }
            }
        };
        match conn {
            Some(conn) => conn.close().await,
            None => glommio::timer::sleep(Duration::from_millis(10)).await,
        }
    }
}
