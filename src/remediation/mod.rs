//! The Alertmanager webhook receiver and the fenced recovery it drives (architecture.md §6).
//!
//! # Expected flow
//! Alertmanager posts a notification; the [`webhook`] authenticates it, checks it and journals
//! every alert (deduplicated on fingerprint and startsAt) before answering. The [`executor`]
//! turns each new firing alert the [`policy`] maps to a plan into one remediation per firing
//! and, in `approve` (once approved) or `auto` mode, drives it through the [`machine`]:
//! [`confirm`], [`guards`], [`fence`], then the [`recovery`] steps.
//!
//! # Guarantees
//! - Nothing acts inside a request; a request is acknowledged only once journaled.
//! - A resolved notification never triggers an action; it aborts a plan that has not acted.
//! - The receiver refuses to start in `approve` or `auto` mode without webhook authentication.
//! - Only the executor's recovery steps hold a `PoolActuator`.
//!
//! # Assumptions
//! Alertmanager delivers duplicates and whole groups by design; handling is idempotent.

pub mod alert;
pub mod clock;
pub mod confirm;
pub mod decision;
mod effects;
pub mod executor;
pub mod fence;
pub mod guards;
pub mod inventory;
pub mod journal;
pub mod lease;
pub mod machine;
pub mod metrics;
pub mod policy;
pub mod recovery;
pub mod split_brain;
pub mod tls;
pub mod webhook;
pub mod words;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tokio::sync::mpsc;

use crate::config::{Config, Mode, ReceiverAuth};

use self::clock::{Clock, SystemClock};
use self::executor::{Command, Context, Executor};
use self::inventory::PoolClient;
use self::journal::{Journal, JournalError};
pub use self::metrics::ReceiverMetrics;
use self::webhook::Authenticator;

/// How often the receiver re-reads each pool's inventory (hosts, HA, the master's VMs): the
/// VMs a dead master ran are known from the last read before its death.
const HOST_REFRESH: Duration = Duration::from_secs(15);

/// Seconds since the Unix epoch by the system clock (for the command line; the receiver reads
/// its [`Clock`]).
pub fn unix_now() -> f64 {
    SystemClock.unix()
}

/// Why the receiver cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The configuration asks for something unsafe.
    #[error("{0}")]
    Unsafe(String),
    /// A secret file could not be read.
    #[error("{0}")]
    Secret(String),
    /// The journal cannot be opened.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A pool's client could not be set up.
    #[error(transparent)]
    Pool(#[from] crate::pools::PoolSetupError),
    /// The TLS certificate, key or client CA file cannot be used (the message names it).
    #[error("{0}")]
    Tls(String),
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

/// The running receiver.
#[derive(Debug)]
pub struct Receiver {
    config: Config,
    journal: Arc<Journal>,
    auth: Option<Authenticator>,
    pools: BTreeMap<String, Arc<PoolClient>>,
    metrics: ReceiverMetrics,
    executor: mpsc::UnboundedSender<Command>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    clock: Arc<dyn Clock>,
}

impl Receiver {
    /// Opens the journal, resumes what it left mid-way and starts the inventory refreshers.
    pub fn start(config: &Config) -> Result<Arc<Receiver>, ReceiverError> {
        Receiver::start_with_clock(config, Arc::new(SystemClock))
    }

    /// [`start`](Self::start) with another clock (tests step it).
    pub fn start_with_clock(
        config: &Config,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<Receiver>, ReceiverError> {
        let auth = match &config.receiver.auth {
            None if config.receiver.mode != Mode::Observe => {
                return Err(ReceiverError::Unsafe(format!(
                    "receiver.mode {} acts on pools: configure receiver.auth (bearer token or basic auth) so that only Alertmanager can trigger it",
                    config.receiver.mode
                )));
            }
            None => {
                tracing::warn!(
                    "The receiver accepts unauthenticated webhooks (observe mode only)."
                );
                None
            }
            Some(ReceiverAuth::Bearer { token_file }) => {
                let token = crate::config::read_secret_file(token_file)
                    .map_err(|e| ReceiverError::Secret(e.to_string()))?;
                Some(Authenticator::bearer(token.expose()))
            }
            Some(ReceiverAuth::Basic {
                username,
                password_file,
            }) => {
                let password = crate::config::read_secret_file(password_file)
                    .map_err(|e| ReceiverError::Secret(e.to_string()))?;
                Some(Authenticator::basic(username, password.expose()))
            }
        };
        let journal = Arc::new(Journal::open(&config.receiver.journal_path)?);
        journal.hold()?;
        let names: Vec<String> = config.pools.iter().map(|p| p.name.clone()).collect();
        let metrics = ReceiverMetrics::new(&names);
        let mut pools = BTreeMap::new();
        for pool in &config.pools {
            let client = PoolClient::new(pool)?;
            // Before anything may need it (resumed remediations included): the inventory an
            // earlier run read, in case this pool's master no longer answers.
            match journal.inventory(&pool.name) {
                Ok(Some(inventory)) => {
                    tracing::info!(
                        pool = %pool.name,
                        age_seconds = (clock.unix() - inventory.read_at).round(),
                        "Starting from the host inventory kept in the journal until the master answers."
                    );
                    client.restore(inventory);
                }
                Ok(None) => {}
                Err(e) => {
                    metrics.journal_error();
                    tracing::warn!(pool = %pool.name, error = %e, "Cannot read the kept host inventory.");
                }
            }
            pools.insert(pool.name.clone(), Arc::new(client));
        }
        let (executor, inbox) = mpsc::unbounded_channel();
        let context = Arc::new(Context {
            config: config.clone(),
            journal: journal.clone(),
            metrics: metrics.clone(),
            pools: pools.clone(),
            started: clock.monotonic(),
            clock: clock.clone(),
            fences: Default::default(),
            storm_record: Default::default(),
            owner: lease::owner_name(&journal.instance()?),
        });
        let mut tasks = vec![tokio::spawn(Executor::run(
            context,
            executor.clone(),
            inbox,
        ))];
        for client in pools.values() {
            tasks.push(tokio::spawn(refresh_inventory(
                client.clone(),
                journal.clone(),
                metrics.clone(),
                clock.clone(),
                config.receiver.rejoin_healthy,
            )));
        }
        Ok(Arc::new(Receiver {
            config: config.clone(),
            journal,
            auth,
            pools,
            metrics,
            executor,
            tasks,
            clock,
        }))
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Whether the host inventory of `pool` has been read at least once.
    pub fn hosts_known(&self, pool: &str) -> bool {
        self.pools
            .get(pool)
            .is_some_and(|p| p.inventory().is_some())
    }

    /// Whether `host_uuid` may be named in a plan for `pool`: the pool must be configured, and
    /// the host must be one of its hosts once their list is known.
    fn check_target(&self, pool: &str, host_uuid: &str) -> Result<(), String> {
        if !host_uuid.is_empty() && !crate::xapi::records::is_uuid(host_uuid) {
            return Err(format!("host_uuid {host_uuid:?} is not a UUID"));
        }
        let Some(client) = self.pools.get(pool) else {
            return Err(format!("unknown pool {pool:?}: not in the configuration"));
        };
        match client.inventory() {
            Some(inventory)
                if !host_uuid.is_empty()
                    && !inventory.hosts.iter().any(|h| h.uuid == host_uuid) =>
            {
                Err(format!("host {host_uuid:?} is not a host of pool {pool:?}"))
            }
            _ => Ok(()),
        }
    }

    /// Routes: `POST /alertmanager`, `GET /remediations`, `/metrics`, `/-/healthy`, `/-/ready`.
    pub fn router(self: &Arc<Self>) -> Router {
        Router::new()
            .route("/alertmanager", post(webhook::alertmanager))
            .route("/remediations", get(remediations))
            .route("/remediations/{id}", get(remediation))
            .route("/metrics", get(metrics))
            .route("/-/healthy", get(|| async { "OK\n" }))
            .route("/-/ready", get(|| async { "OK\n" }))
            .with_state(self.clone())
    }

    /// Stops the background tasks.
    pub fn shutdown(&self) {
        for task in &self.tasks {
            task.abort();
        }
        self.journal.release();
    }
}

/// Reads a pool's inventory now and then, so webhooks naming a host of another pool are
/// refused and hosts can be named when the master is gone. Failures keep the last one. Each
/// new one (read here, or by a confirmation or a recovery in between) is kept in the journal.
async fn refresh_inventory(
    client: Arc<PoolClient>,
    journal: Arc<Journal>,
    metrics: ReceiverMetrics,
    clock: Arc<dyn Clock>,
    rejoin_healthy: Duration,
) {
    let mut kept_at = None;
    loop {
        match client.refresh(clock.unix()).await {
            Ok(inventory) => {
                show_held(&client, &inventory, &journal, &metrics, rejoin_healthy).await
            }
            Err(e) => {
                tracing::debug!(pool = %client.name, error = %e, "Cannot refresh the host inventory.");
            }
        }
        if let Some(inventory) = client.inventory()
            && kept_at != Some(inventory.read_at)
        {
            match journal.save_inventory(&client.name, &inventory) {
                Ok(()) => kept_at = Some(inventory.read_at),
                Err(e) => {
                    metrics.journal_error();
                    tracing::warn!(pool = %client.name, error = %e, "Cannot keep the host inventory in the journal.");
                }
            }
        }
        tokio::time::sleep(HOST_REFRESH).await;
    }
}

/// Sets `xenguard_remediation_host_held` for every host of a freshly read inventory.
async fn show_held(
    client: &PoolClient,
    inventory: &inventory::Inventory,
    journal: &Journal,
    metrics: &ReceiverMetrics,
    healthy: Duration,
) {
    let fenced = match journal.fenced_hosts(&client.name) {
        Ok(fenced) => fenced,
        Err(e) => {
            metrics.journal_error();
            tracing::warn!(pool = %client.name, error = %e, "Cannot read the pool's fenced hosts.");
            return;
        }
    };
    let hold = recovery::Hold::read(client, fenced, healthy).await;
    for host in &inventory.hosts {
        let held = hold.holds(&host.uuid, inventory.boot_times.get(&host.uuid).copied());
        metrics.host_held(&client.name, &host.name_label, &host.uuid, held);
    }
}

/// With `receiver.auth_reads`, the read endpoints want the webhook's credentials.
fn read_refused(receiver: &Receiver, headers: &HeaderMap) -> Option<Response> {
    if !receiver.config.receiver.auth_reads {
        return None;
    }
    let auth = receiver.auth.as_ref()?;
    let header = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let status = match auth.check(header) {
        webhook::AuthOutcome::Ok => return None,
        webhook::AuthOutcome::Missing => StatusCode::UNAUTHORIZED,
        webhook::AuthOutcome::Wrong => StatusCode::FORBIDDEN,
    };
    receiver.metrics.webhook(status.as_u16());
    Some(
        (
            status,
            Json(json!({"error": "credentials required (receiver.auth_reads)"})),
        )
            .into_response(),
    )
}

async fn remediations(State(receiver): State<Arc<Receiver>>, headers: HeaderMap) -> Response {
    if let Some(refused) = read_refused(&receiver, &headers) {
        return refused;
    }
    match receiver.journal.list(200) {
        Ok(list) => Json(list).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn remediation(
    State(receiver): State<Arc<Receiver>>,
    Path(id): Path<i64>,
    headers: HeaderMap,
) -> Response {
    if let Some(refused) = read_refused(&receiver, &headers) {
        return refused;
    }
    match receiver.journal.show(id) {
        Ok(Some((r, steps))) => Json(json!({"remediation": r, "steps": steps})).into_response(),
        Ok(None) => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": format!("no remediation {id}")})),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn metrics(State(receiver): State<Arc<Receiver>>) -> Response {
    for (name, client) in &receiver.pools {
        if let Some(inventory) = client.inventory() {
            receiver.metrics.inventory_read(name, inventory.read_at);
        }
    }
    let encoder = prometheus::TextEncoder::new();
    let text = encoder
        .encode_to_string(&receiver.metrics.gather())
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response()
}

/// `xenguard receiver`: serves until `shutdown` resolves.
pub async fn run(
    config: &Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ReceiverError> {
    let tls = config
        .receiver
        .tls
        .as_ref()
        .map(tls::server_config)
        .transpose()?;
    let address = config.receiver.listen;
    // The port first: a receiver that cannot serve must not resume remediations either.
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ReceiverError::Listen {
            address: address.to_string(),
            source,
        })?;
    let receiver = Receiver::start(config)?;
    let transport = match &config.receiver.tls {
        None => "http",
        Some(tls) if tls.client_ca_file.is_some() => "https, client certificates required (mTLS)",
        Some(_) => "https",
    };
    tracing::info!(%address, transport, mode = %config.receiver.mode, journal = %config.receiver.journal_path.display(), "Receiver listening.");
    let served = match tls {
        Some(tls) => {
            tls::serve(listener, tls, receiver.router(), shutdown).await;
            Ok(())
        }
        None => {
            axum::serve(listener, receiver.router())
                .with_graceful_shutdown(shutdown)
                .await
        }
    };
    receiver.shutdown();
    served.map_err(|source| ReceiverError::Listen {
        address: address.to_string(),
        source,
    })
}
