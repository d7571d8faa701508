//! The Prometheus exporter (architecture.md §5): per configured pool, a watcher keeping a cache
//! with `event.from` and a prober contacting every host directly; `/metrics` renders a fresh
//! exposition from that state (shared by scrapes that arrive during one render) and never
//! waits on the network. Pools are
//! isolated: each has its own credentials, TLS settings, timeouts and tasks.

pub mod cache;
pub mod collect;
pub mod prober;
pub mod rrd;
pub mod rrd_collector;
pub mod self_metrics;
pub mod state;
pub mod watcher;

use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::pools::{PoolSetupError, credentials, transport_options};
use crate::xapi::transport::Transport;
use crate::xapi::{PoolReader, Session};

use self::collect::PoolView;
use self::self_metrics::SelfMetrics;
use self::state::PoolState;

/// Content type of the classic text exposition (required by Prometheus 3.x).
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// The ticker of a background task's rounds: the first now, then every `interval`; a round
/// that overruns delays the next instead of letting rounds bunch up.
fn rounds(interval: std::time::Duration) -> tokio::time::Interval {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker
}

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExporterError {
    /// A pool's transport or credentials could not be set up.
    #[error(transparent)]
    Pool(#[from] PoolSetupError),
    /// The listen address could not be bound.
    #[error("cannot listen on {address}: {source}")]
    Listen {
        /// The address.
        address: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// A running exporter: its pools' state and background tasks.
#[derive(Debug)]
pub struct Exporter {
    pools: Vec<Arc<PoolState>>,
    metrics: SelfMetrics,
    max_state_age: f64,
    tasks: Vec<JoinHandle<()>>,
    /// The latest exposition served, shared with scrapes that arrived while it was rendered.
    latest: tokio::sync::Mutex<bytes::Bytes>,
    /// Renders finished, counted under `latest`'s lock.
    renders: AtomicU64,
}

impl Exporter {
    /// Starts a watcher and a prober per pool.
    pub fn start(config: &Config) -> Result<Exporter, ExporterError> {
        let metrics = SelfMetrics::new();
        let exporter_config = &config.exporter;
        let mut pools = Vec::new();
        let mut tasks = Vec::new();
        for pool in &config.pools {
            rrd::check_selection(&pool.resource_metrics).map_err(|message| PoolSetupError {
                pool: pool.name.clone(),
                message,
            })?;
            let options = transport_options(pool)?;
            let transport = Transport::new(options)
                .map_err(|e| PoolSetupError {
                    pool: pool.name.clone(),
                    message: e.to_string(),
                })?
                .with_observer(metrics.observer(&pool.name));
            let credentials = credentials(pool)?;
            let state = Arc::new(PoolState::new(
                &pool.name,
                pool.hosts.clone(),
                pool.resource_metrics.clone(),
            ));
            let session = Arc::new(Session::new(
                transport.clone(),
                credentials.clone(),
                "xenguard-exporter",
                pool.hosts.clone(),
            ));
            if !exporter_config.rrd_interval.is_zero() {
                tasks.push(tokio::spawn(rrd_collector::collect_loop(
                    state.clone(),
                    session.clone(),
                    metrics.clone(),
                    exporter_config.rrd_interval,
                    exporter_config.probe_timeout,
                )));
            }
            tasks.push(tokio::spawn(watcher::watch(
                state.clone(),
                PoolReader::new(session),
                metrics.clone(),
                exporter_config.event_timeout,
                exporter_config.event_min_interval,
            )));
            tasks.push(tokio::spawn(prober::probe_loop(
                state.clone(),
                transport,
                credentials,
                metrics.clone(),
                exporter_config.probe_interval,
                exporter_config.probe_timeout,
            )));
            pools.push(state);
        }
        // The state is current if the last event.from ended within its timeout plus slack.
        let max_state_age = exporter_config.event_timeout.as_secs_f64() + 15.0;
        Ok(Exporter {
            pools,
            metrics,
            max_state_age,
            tasks,
            latest: tokio::sync::Mutex::new(bytes::Bytes::new()),
            renders: AtomicU64::new(0),
        })
    }

    /// The pools' state.
    pub fn pools(&self) -> &[Arc<PoolState>] {
        &self.pools
    }

    /// Renders the full exposition now, from memory only.
    pub fn render(&self) -> String {
        let started = std::time::Instant::now();
        let now = unix_now();
        let guards: Vec<_> = self
            .pools
            .iter()
            .map(|p| {
                (
                    p,
                    p.cache.read().unwrap_or_else(|e| e.into_inner()),
                    p.status.read().unwrap_or_else(|e| e.into_inner()),
                    p.probes.read().unwrap_or_else(|e| e.into_inner()),
                    p.resources.read().unwrap_or_else(|e| e.into_inner()),
                )
            })
            .collect();
        let views: Vec<PoolView<'_>> = guards
            .iter()
            .map(|(p, cache, status, probes, resources)| PoolView {
                name: &p.name,
                cache,
                status,
                probes,
                max_state_age: self.max_state_age,
                resources,
            })
            .collect();
        let mut text = collect::render(&views, now);
        drop(views);
        drop(guards);
        text.push_str(&collect::encode(&self.metrics.gather()));
        self.metrics.scraped(started.elapsed());
        text
    }

    /// The exposition for one scrape. A scrape that arrives while another is rendering (the
    /// usual pair of Prometheus replicas, or a dashboard's burst) waits for that render and
    /// serves its text, rather than rendering the same state again beside it: CPU per scrape
    /// stays flat however many scrapers there are. A scrape that finds no render running
    /// renders fresh, so the text is never older than the render it waited for.
    pub async fn render_shared(&self) -> bytes::Bytes {
        let seen = self.renders.load(Ordering::Acquire);
        let mut latest = self.latest.lock().await;
        if self.renders.load(Ordering::Acquire) != seen {
            // A render finished after this scrape arrived: it was running when it came.
            return latest.clone();
        }
        *latest = bytes::Bytes::from(self.render());
        self.renders.fetch_add(1, Ordering::Release);
        latest.clone()
    }

    /// The HTTP routes: `/metrics`, `/-/healthy`, `/-/ready` and a landing page.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/", get(landing))
            .route("/metrics", get(metrics))
            .route("/-/healthy", get(|| async { "OK\n" }))
            .route("/-/ready", get(ready))
            .with_state(self.clone())
    }

    /// Stops the background tasks.
    pub fn shutdown(&self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.shutdown();
    }
}

async fn metrics(State(exporter): State<Arc<Exporter>>) -> Response {
    let text = exporter.render_shared().await;
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// Ready once every pool has finished its first sync attempt, successful or not: a broken
/// pool is reported in the metrics, it does not make the exporter unready.
async fn ready(State(exporter): State<Arc<Exporter>>) -> Response {
    let waiting: Vec<&str> = exporter
        .pools
        .iter()
        .filter(|p| {
            let status = p.status.read().unwrap_or_else(|e| e.into_inner());
            status.last_update.is_none() && status.last_error.is_none()
        })
        .map(|p| p.name.as_str())
        .collect();
    if waiting.is_empty() {
        (StatusCode::OK, "OK\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("waiting for the first sync of: {}\n", waiting.join(", ")),
        )
            .into_response()
    }
}

async fn landing(State(exporter): State<Arc<Exporter>>) -> Html<String> {
    let mut page = String::from(
        "<!doctype html><html><head><title>xenguard exporter</title></head><body><h1>xenguard exporter</h1>\
         <p><a href=\"/metrics\">/metrics</a> · <a href=\"/-/healthy\">/-/healthy</a> · <a href=\"/-/ready\">/-/ready</a></p>\
         <table border=\"1\" cellpadding=\"4\"><tr><th>pool</th><th>connected</th><th>master</th><th>hosts reachable</th><th>last error</th></tr>",
    );
    for pool in &exporter.pools {
        let status = pool
            .status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let probes = pool.probes.read().unwrap_or_else(|e| e.into_inner());
        let reachable = probes.values().filter(|p| p.reachable()).count();
        let _ = write!(
            page,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{reachable} / {}</td><td>{}</td></tr>",
            escape(&pool.name),
            if status.connected { "yes" } else { "no" },
            escape(status.master.as_deref().unwrap_or("-")),
            probes.len(),
            escape(status.last_error.as_deref().unwrap_or("")),
        );
    }
    page.push_str("</table></body></html>");
    Html(page)
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `xenguard exporter`: serves until `shutdown` resolves.
pub async fn run(
    config: &Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ExporterError> {
    let exporter = Arc::new(Exporter::start(config)?);
    let address = config.exporter.listen;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ExporterError::Listen {
            address: address.to_string(),
            source,
        })?;
    tracing::info!(%address, pools = exporter.pools.len(), "Exporter listening.");
    let served = axum::serve(listener, exporter.router())
        .with_graceful_shutdown(shutdown)
        .await;
    exporter.shutdown();
    served.map_err(|source| ExporterError::Listen {
        address: address.to_string(),
        source,
    })
}
