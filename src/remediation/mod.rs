//! The Alertmanager webhook receiver and the fenced recovery it drives (DESIGN.md §6).
//!
//! # Expected flow
//! Alertmanager posts a notification; the [`webhook`] authenticates it, checks it and journals
//! every alert (deduplicated on fingerprint and startsAt) before answering. The engine then
//! turns each new firing alert the [`policy`] maps to a plan into one remediation per firing,
//! journaled with its steps; a `resolved` notification aborts a remediation that has not
//! started acting.
//!
//! # Guarantees
//! - Nothing acts inside a request; a request is acknowledged only once journaled.
//! - A resolved notification never triggers an action.
//! - This version plans and journals only (`observe` mode): it holds no `PoolActuator`. The
//!   receiver refuses to start in `approve` or `auto` mode until the confirmation, fencing and
//!   recovery executor exists (issue 5), rather than acting without them.
//!
//! # Assumptions
//! Alertmanager delivers duplicates and whole groups by design; handling is idempotent.

pub mod alert;
pub mod fence;
pub mod guards;
pub mod journal;
pub mod machine;
pub mod policy;
pub mod webhook;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use prometheus::{IntCounterVec, Opts, Registry};
use serde_json::json;
use tokio::sync::mpsc;

use crate::config::{Config, Mode, ReceiverAuth};
use crate::pools::{credentials, transport_options};
use crate::xapi::records::Host;
use crate::xapi::transport::Transport;
use crate::xapi::{PoolReader, Session};

use self::alert::Status;
use self::journal::{Journal, JournalError, NewAlert};
use self::policy::intent_for;
use self::webhook::Authenticator;

/// How often the receiver refreshes the host list of each pool (to reject unknown hosts).
const HOST_REFRESH: Duration = Duration::from_secs(60);

/// Phases a remediation can be in while this receiver only plans.
pub mod phase {
    /// Journaled plan; observe mode does nothing more.
    pub const PLANNED: &str = "planned";
    /// The alert resolved before anything was done.
    pub const ABORTED: &str = "aborted";
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// Why the receiver cannot start.
#[derive(Debug, thiserror::Error)]
pub enum ReceiverError {
    /// The configuration asks for something this version cannot do safely.
    #[error("{0}")]
    Unsupported(String),
    /// A secret file could not be read.
    #[error("{0}")]
    Secret(String),
    /// The journal cannot be opened.
    #[error(transparent)]
    Journal(#[from] JournalError),
    /// A pool's client could not be set up.
    #[error(transparent)]
    Pool(#[from] crate::pools::PoolSetupError),
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

/// The receiver's own metrics (`xenguard_remediation_*`).
#[derive(Debug, Clone)]
pub struct ReceiverMetrics {
    registry: Registry,
    webhooks: IntCounterVec,
    alerts: IntCounterVec,
    plans: IntCounterVec,
    journal_errors: prometheus::IntCounter,
}

impl ReceiverMetrics {
    fn new() -> ReceiverMetrics {
        let registry = Registry::new();
        let webhooks = IntCounterVec::new(
            Opts::new(
                "xenguard_remediation_webhooks_total",
                "Webhook requests by HTTP status answered.",
            ),
            &["code"],
        )
        .expect("valid metric");
        let alerts = IntCounterVec::new(
            Opts::new(
                "xenguard_remediation_alerts_total",
                "Alerts received, new or duplicate (fingerprint, startsAt, status).",
            ),
            &["result"],
        )
        .expect("valid metric");
        let plans = IntCounterVec::new(
            Opts::new(
                "xenguard_remediation_plans_total",
                "Remediations by pool, kind and the phase they reached (planned, aborted).",
            ),
            &["pool", "kind", "phase"],
        )
        .expect("valid metric");
        let journal_errors = prometheus::IntCounter::new(
            "xenguard_remediation_journal_errors_total",
            "Journal writes that failed (each one answered 503 or left a plan unjournaled).",
        )
        .expect("valid metric");
        for c in [
            Box::new(webhooks.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(alerts.clone()),
            Box::new(plans.clone()),
            Box::new(journal_errors.clone()),
        ] {
            registry.register(c).expect("unique metric");
        }
        for result in ["new", "duplicate"] {
            alerts.with_label_values(&[result]);
        }
        ReceiverMetrics {
            registry,
            webhooks,
            alerts,
            plans,
            journal_errors,
        }
    }

    fn webhook(&self, code: u16) {
        self.webhooks.with_label_values(&[&code.to_string()]).inc();
    }

    fn alerts(&self, new: usize, duplicates: usize) {
        self.alerts.with_label_values(&["new"]).inc_by(new as u64);
        self.alerts
            .with_label_values(&["duplicate"])
            .inc_by(duplicates as u64);
    }

    fn plan(&self, pool: &str, kind: &str, phase: &str) {
        self.plans.with_label_values(&[pool, kind, phase]).inc();
    }

    fn journal_error(&self) {
        self.journal_errors.inc();
    }

    /// The current values.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }
}

/// The running receiver.
#[derive(Debug)]
pub struct Receiver {
    config: Config,
    journal: Arc<Journal>,
    auth: Option<Authenticator>,
    /// Host uuids per pool as last read from the pool; `None` until read once.
    known_hosts: RwLock<BTreeMap<String, Option<BTreeSet<String>>>>,
    metrics: ReceiverMetrics,
    engine: mpsc::UnboundedSender<NewAlert>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Receiver {
    /// Opens the journal and starts the engine and the host-list refreshers.
    pub fn start(config: &Config) -> Result<Arc<Receiver>, ReceiverError> {
        if config.receiver.mode != Mode::Observe {
            return Err(ReceiverError::Unsupported(format!(
                "receiver.mode {} needs the confirmation, fencing and recovery executor, which is not available yet (issue 5); \
                 use mode observe, which plans and journals without acting",
                config.receiver.mode
            )));
        }
        let auth = match &config.receiver.auth {
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
        let metrics = ReceiverMetrics::new();
        let (engine, inbox) = mpsc::unbounded_channel();
        let mut known = BTreeMap::new();
        for pool in &config.pools {
            known.insert(pool.name.clone(), None);
        }
        let mut readers = Vec::new();
        for pool in &config.pools {
            let transport = Transport::new(transport_options(pool)?).map_err(|e| {
                crate::pools::PoolSetupError {
                    pool: pool.name.clone(),
                    message: e.to_string(),
                }
            })?;
            let session = Session::new(
                transport,
                credentials(pool)?,
                "xenguard-receiver",
                pool.hosts.clone(),
            );
            readers.push((pool.name.clone(), PoolReader::new(Arc::new(session))));
        }
        let mut receiver = Receiver {
            config: config.clone(),
            journal: journal.clone(),
            auth,
            known_hosts: RwLock::new(known),
            metrics: metrics.clone(),
            engine,
            tasks: Vec::new(),
        };
        receiver
            .tasks
            .push(tokio::spawn(run_engine(journal, metrics, inbox)));
        let receiver = Arc::new_cyclic(|weak: &std::sync::Weak<Receiver>| {
            for (name, reader) in readers {
                receiver
                    .tasks
                    .push(tokio::spawn(refresh_hosts(weak.clone(), name, reader)));
            }
            receiver
        });
        Ok(receiver)
    }

    /// The journal.
    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Whether the host list of `pool` has been read at least once.
    pub fn hosts_known(&self, pool: &str) -> bool {
        let known = self.known_hosts.read().unwrap_or_else(|e| e.into_inner());
        known.get(pool).is_some_and(Option::is_some)
    }

    /// Whether `host_uuid` may be named in a plan for `pool`: the pool must be configured, and
    /// the host must be one of its hosts once their list is known.
    fn check_target(&self, pool: &str, host_uuid: &str) -> Result<(), String> {
        let known = self.known_hosts.read().unwrap_or_else(|e| e.into_inner());
        match known.get(pool) {
            None => Err(format!("unknown pool {pool:?}: not in the configuration")),
            Some(Some(hosts)) if !host_uuid.is_empty() && !hosts.contains(host_uuid) => {
                Err(format!("host {host_uuid:?} is not a host of pool {pool:?}"))
            }
            Some(_) => Ok(()),
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
    }
}

/// Reads each pool's host list now and then, so a webhook naming a host of another pool is
/// refused. Failures keep the last list.
async fn refresh_hosts(receiver: std::sync::Weak<Receiver>, pool: String, reader: PoolReader) {
    loop {
        match reader.all::<Host>().await {
            Ok(hosts) => {
                let Some(receiver) = receiver.upgrade() else {
                    return;
                };
                let uuids = hosts.into_iter().map(|(_, h)| h.uuid).collect();
                receiver
                    .known_hosts
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(pool.clone(), Some(uuids));
            }
            Err(e) => tracing::debug!(%pool, error = %e, "Cannot refresh the host list."),
        }
        if receiver.strong_count() == 0 {
            return;
        }
        tokio::time::sleep(HOST_REFRESH).await;
    }
}

/// Turns new alerts into journaled plans (observe mode) and aborts plans whose alert resolved.
async fn run_engine(
    journal: Arc<Journal>,
    metrics: ReceiverMetrics,
    mut inbox: mpsc::UnboundedReceiver<NewAlert>,
) {
    while let Some(alert) = inbox.recv().await {
        if let Err(e) = handle(&journal, &metrics, &alert) {
            metrics.journal_error();
            tracing::error!(error = %e, fingerprint = %alert.fingerprint, "Cannot journal a remediation decision.");
        }
    }
}

fn handle(
    journal: &Journal,
    metrics: &ReceiverMetrics,
    new: &NewAlert,
) -> Result<(), JournalError> {
    let now = unix_now();
    let probe = alert::Alert {
        status: new.status,
        labels: new.labels.clone(),
        annotations: Default::default(),
        starts_at: new.starts_at.clone(),
        ends_at: String::new(),
        generator_url: String::new(),
        fingerprint: new.fingerprint.clone(),
    };
    match new.status {
        Status::Firing => {
            let Ok(Some(intent)) = intent_for(&probe) else {
                return Ok(());
            };
            let kind = intent.kind.as_str();
            let reason = "observe mode: plan journaled, nothing done";
            let created = journal.create_remediation(
                &intent.pool,
                &intent.host_uuid,
                kind,
                probe.name(),
                &new.fingerprint,
                &new.starts_at,
                phase::PLANNED,
                reason,
                now,
            )?;
            if let Some(id) = created {
                journal.add_step(
                    id,
                    "planned",
                    &json!({"mode": "observe", "steps": intent.kind.steps(), "labels": new.labels}),
                    now,
                )?;
                metrics.plan(&intent.pool, kind, phase::PLANNED);
                tracing::info!(id, pool = %intent.pool, host = %intent.host_uuid, kind, "Remediation planned (observe mode: nothing done).");
            }
        }
        Status::Resolved => {
            let Some(r) = journal.remediation_for(&new.fingerprint, &new.starts_at)? else {
                return Ok(());
            };
            if r.phase == phase::PLANNED {
                journal.set_phase(r.id, phase::ABORTED, "alert resolved before acting", now)?;
                journal.add_step(
                    r.id,
                    "aborted",
                    &json!({"reason": "resolved notification"}),
                    now,
                )?;
                metrics.plan(&r.pool, &r.kind, phase::ABORTED);
                tracing::info!(id = r.id, "Remediation aborted: its alert resolved.");
            }
        }
    }
    Ok(())
}

async fn remediations(State(receiver): State<Arc<Receiver>>) -> Response {
    match receiver.journal.list(200) {
        Ok(list) => Json(list).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

async fn remediation(State(receiver): State<Arc<Receiver>>, Path(id): Path<i64>) -> Response {
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
    let text = crate::exporter::collect::encode(&receiver.metrics.gather());
    (
        [(header::CONTENT_TYPE, crate::exporter::CONTENT_TYPE)],
        text,
    )
        .into_response()
}

/// `xenguard receiver`: serves until `shutdown` resolves.
pub async fn run(
    config: &Config,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ReceiverError> {
    let receiver = Receiver::start(config)?;
    let address = config.receiver.listen;
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|source| ReceiverError::Listen {
            address: address.to_string(),
            source,
        })?;
    tracing::info!(%address, mode = %config.receiver.mode, journal = %config.receiver.journal_path.display(), "Receiver listening.");
    let served = axum::serve(listener, receiver.router())
        .with_graceful_shutdown(shutdown)
        .await;
    receiver.shutdown();
    served.map_err(|source| ReceiverError::Listen {
        address: address.to_string(),
        source,
    })
}
