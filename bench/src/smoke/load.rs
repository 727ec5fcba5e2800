//! One load run: a pinned glommio executor, `conns` session tasks, and a monitor that prints
//! progress each second and reads CPU and RSS at the measured window's edges.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::{LocalExecutorBuilder, Placement};

use super::report::{cpu_of, percentiles_ms, round4, rss_of, Report};
use super::session::{run_session, Plan, Target};
use super::tracker::{Expect, Stats};
use super::Class;

/// Bytes glommio registers for io_uring buffers per ring: small, `ulimit -l` is 8 MiB here and
/// the sessions read into their own buffers.
pub const IO_MEMORY: usize = 512 * 1024;
/// How long a task may run before `yield_if_needed` yields (glommio's default is 100 ms).
const PREEMPT: Duration = Duration::from_millis(2);

/// Everything one run needs.
#[derive(Debug, Clone)]
pub struct LoadOpts {
    pub class: Class,
    /// How the report names the target.
    pub target_label: String,
    pub target: Target,
    pub expect: Expect,
    pub conns: usize,
    pub depth: usize,
    pub rate: f64,
    pub warmup: Duration,
    pub duration: Duration,
    pub cpu: Option<usize>,
    pub server_pids: Vec<String>,
    pub quiet: bool,
}

/// The executor for a run: pinned to `cpu` when given, small `io_memory`.
pub fn executor(cpu: Option<usize>, name: &str) -> LocalExecutorBuilder {
    let placement = match cpu {
        Some(c) => Placement::Fixed(c),
        None => Placement::Unbound,
    };
    LocalExecutorBuilder::new(placement)
        .name(name)
        .io_memory(IO_MEMORY)
        .ring_depth(1024)
        // Sessions whose sockets always have bytes yield at this interval (see
        // `yield_if_needed` in the session loop), so timers (pacing, the monitor) stay on time.
        .preempt_timer(PREEMPT)
}

/// Runs the load and returns its report.
pub fn run_load(opts: LoadOpts) -> anyhow::Result<Report> {
    let handle = executor(opts.cpu, "overlay-smoke")
        .spawn(move || async move { load(opts).await })
        .map_err(|e| anyhow::anyhow!("starting glommio (check `ulimit -l`): {e}"))?;
    handle
        .join()
        .map_err(|e| anyhow::anyhow!("executor: {e}"))?
}

async fn load(opts: LoadOpts) -> anyhow::Result<Report> {
    let start = Instant::now();
    let window_start = start + opts.warmup;
    let end = window_start + opts.duration;
    let stats = Rc::new(RefCell::new(Stats::new(window_start, end)));
    let plan = Plan {
        conns: opts.conns,
        depth: opts.depth,
        rate: opts.rate,
        start,
        end,
    };
    let target = Rc::new(opts.target.clone());
    let sessions: Vec<_> = (0..opts.conns)
        .map(|i| {
            glommio::spawn_local(run_session(
                i,
                Rc::clone(&target),
                plan,
                Rc::clone(&stats),
                opts.expect,
            ))
        })
        .collect();

    // Monitor: progress each second; CPU and RSS at the window's edges.
    let mut last_ok = 0;
    let mut at_window: Option<(Option<f64>, f64, Instant)> = None;
    let mut tick = start;
    loop {
        tick += Duration::from_secs(1);
        let next = if at_window.is_none() && window_start < tick {
            window_start
        } else {
            tick.min(end)
        };
        glommio::timer::sleep(next.saturating_duration_since(Instant::now())).await;
        let now = Instant::now();
        if at_window.is_none() && now >= window_start {
            at_window = Some((
                cpu_of(&opts.server_pids),
                super::report::proc_cpu_s("self")?,
                now,
            ));
            tick = now;
        }
        if now >= end {
            break;
        }
        if !opts.quiet {
            let s = stats.borrow();
            let phase = if now < window_start {
                "warmup"
            } else {
                "measure"
            };
            eprintln!(
                "overlay-smoke: {:5.1}s {phase} {} req/s, {} errors",
                (now - start).as_secs_f64(),
                s.ok_total - last_ok,
                s.errors
            );
            last_ok = s.ok_total;
        }
    }
    let end_cpu = cpu_of(&opts.server_pids);
    let end_self = super::report::proc_cpu_s("self")?;
    let rss = rss_of(&opts.server_pids);
    let measured_end = Instant::now();
    let mut negotiated = None;
    for s in sessions {
        if let Some(n) = s.await {
            negotiated.get_or_insert(n);
        }
    }
    let (suite, group) = negotiated.unwrap_or_default();
    let (cpu0, self0, t0) = at_window.expect("the window began before it ended");
    let secs = (measured_end - t0).as_secs_f64().max(1e-9);
    let stats = stats.borrow();
    let [p50, p95, p99, p999, max] = percentiles_ms(&stats.hist);
    let server_cpu = match (cpu0, end_cpu) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let window = opts.duration.as_secs_f64();
    let client_cpu = end_self - self0;
    Ok(Report {
        class: opts.class.label().to_owned(),
        target: opts.target_label,
        rate: opts.rate,
        rps: round4(stats.ok as f64 / window),
        gbps: round4(stats.bytes as f64 * 8.0 / window / 1e9),
        gbytes_s: round4(stats.bytes as f64 / window / 1e9),
        p50_ms: p50,
        p95_ms: p95,
        p99_ms: p99,
        p999_ms: p999,
        max_ms: max,
        errors: stats.errors,
        server_cpu_s: server_cpu.map(round4),
        server_rss_mb: rss.map(round4),
        server_util: server_cpu.map(|c| round4(c / secs)),
        server_cpu_us_per_req: server_cpu
            .filter(|_| stats.ok > 0)
            .map(|c| round4(c * 1e6 / stats.ok as f64)),
        client_cpu_s: round4(client_cpu),
        client_util: round4(client_cpu / secs),
        requests: stats.ok,
        duration_s: round4(window),
        conns: opts.conns,
        depth: opts.depth,
        verified: stats.verified,
        tls_suite: suite,
        kx_group: group,
    })
}
