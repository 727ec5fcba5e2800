//! The admin HTTP thread: a plain std thread running a current-thread tokio runtime with axum,
//! serving `/metrics`, `/healthz`, `/readyz` and `/version` on its own listener.
//!
//! Every handler answers from memory: the metrics collector reads the shards' slots (held only
//! for a fixed-size copy), readiness flags are atomics, the version JSON is rendered once at
//! start. Nothing on the runtime waits on I/O other than its own sockets.

use std::future::IntoFuture;
use std::io;
use std::net::SocketAddr;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use ronode_shards::stats::StatsBoard;
use tokio::sync::watch;

use crate::metrics::{self, Metrics};
use crate::readiness::Readiness;
use crate::version::VersionInfo;

/// How long [`AdminHandle::shutdown`] lets open requests finish before it drops them.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

const JSON: &str = "application/json";

/// Starts the admin plane; see [`AdminServer::start`].
#[derive(Debug)]
pub struct AdminServer;

/// The running admin thread. Dropping it shuts the thread down as [`AdminHandle::shutdown`] does.
#[derive(Debug)]
pub struct AdminHandle {
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<io::Result<()>>>,
}

#[derive(Debug)]
struct AppState {
    metrics: Metrics,
    readiness: Arc<Readiness>,
    version_json: String,
}

impl AdminServer {
    /// Serves the admin plane on `listener` (bound by the caller, who chose and probed the
    /// address) from a new thread named `ronode-admin`. Returns once the thread serves, or with
    /// the error that kept it from starting.
    pub fn start(
        listener: std::net::TcpListener,
        board: Arc<StatsBoard>,
        readiness: Arc<Readiness>,
        version: VersionInfo,
    ) -> io::Result<AdminHandle> {
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let state = Arc::new(AppState {
            metrics: Metrics::new(board, readiness.clone()),
            readiness,
            version_json: version.to_json(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let (started_tx, started_rx) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("ronode-admin".into())
            .spawn(move || serve(listener, router(state), stop_rx, started_tx))?;
        match started_rx.recv() {
            Ok(Ok(())) => Ok(AdminHandle {
                addr,
                stop,
                thread: Some(thread),
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => Err(join_error(thread.join())),
        }
    }
}

impl AdminHandle {
    /// The address the admin plane listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, lets open requests finish (at most [`SHUTDOWN_GRACE`]), and joins the
    /// thread.
    pub fn shutdown(mut self) -> io::Result<()> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> io::Result<()> {
        let _ = self.stop.send(true);
        match self.thread.take() {
            Some(thread) => match thread.join() {
                Ok(result) => result,
                Err(_) => Err(io::Error::other("admin thread panicked")),
            },
            None => Ok(()),
        }
    }
}

impl Drop for AdminHandle {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

fn join_error(joined: std::thread::Result<io::Result<()>>) -> io::Error {
    match joined {
        Ok(Err(e)) => e,
        Ok(Ok(())) => io::Error::other("admin thread ended before serving"),
        Err(_) => io::Error::other("admin thread panicked"),
    }
}

fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/metrics", get(metrics_handler))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/version", get(version))
        .with_state(state)
}

async fn metrics_handler(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, metrics::CONTENT_TYPE)],
        state.metrics.render(),
    )
}

async fn healthz() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "ok")
}

async fn readyz(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    let (status, body) = state.readiness.readyz();
    let status = StatusCode::from_u16(status).expect("200 or 503");
    (status, [(header::CONTENT_TYPE, JSON)], body)
}

async fn version(State(state): State<Arc<AppState>>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, JSON)], state.version_json.clone())
}

async fn stopped(mut stop: watch::Receiver<bool>) {
    // A dropped sender also means stop.
    let _ = stop.wait_for(|stop| *stop).await;
}

/// The thread's body: reports on `started` whether it serves, then serves until `stop`.
fn serve(
    listener: std::net::TcpListener,
    app: Router,
    stop: watch::Receiver<bool>,
    started: mpsc::Sender<io::Result<()>>,
) -> io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build();
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            let _ = started.send(Err(e));
            return Ok(());
        }
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                let _ = started.send(Err(e));
                return Ok(());
            }
        };
        let _ = started.send(Ok(()));
        let serve = axum::serve(listener, app)
            .with_graceful_shutdown(stopped(stop.clone()))
            .into_future();
        tokio::select! {
            result = serve => result,
            () = async {
                stopped(stop).await;
                tokio::time::sleep(SHUTDOWN_GRACE).await;
            } => Ok(()),
        }
    })
}
