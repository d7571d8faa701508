//! The XAPI simulator: a ground-truth model of a pool ([`model`]), each host's XAPI answers
//! derived from it the way the real xapi's are ([`methods`], specification: docs/xapi-notes.md),
//! one XML-RPC endpoint per host on its own loopback address ([`server`]), and a control API to
//! inject faults and read the truth ([`control`]).
//!
//! It depends on `xapi::wire`, `xapi::records` and `xapi::error` only: it must not know what
//! the exporter or the remediation expect.

pub mod certs;
pub mod clock;
pub mod control;
pub mod db;
mod events;
mod faults;
mod generic;
pub mod methods;
pub mod model;
mod padding;
mod physical;
pub mod rrd;
pub mod scenario;
pub mod server;
mod tasks;
mod vms;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use clock::Clock;
pub use model::{Model, PoolSpec, Timing};
use server::{Shared, Sockets};

/// How to run a simulated pool.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// The pool to build.
    pub spec: PoolSpec,
    /// Port every host listens on (0: the first host binds any free port, the others the same).
    pub port: u16,
    /// Address of the control API (port 0 = any free port).
    pub control: SocketAddr,
    /// Simulated seconds per real second.
    pub time_scale: f64,
    /// Scenario file of timed faults to play.
    pub scenario: Option<std::path::PathBuf>,
    /// Serve every host's XAPI over HTTPS with its own self-signed certificate.
    pub tls: bool,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            spec: PoolSpec::default(),
            port: 8080,
            control: SocketAddr::from(([127, 0, 0, 1], 9880)),
            time_scale: 1.0,
            scenario: None,
            tls: false,
        }
    }
}

/// Why the simulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A host or control address could not be bound.
    #[error("{0}")]
    Bind(#[from] std::io::Error),
    /// The options make no sense.
    #[error("invalid simulator options: {0}")]
    Options(String),
    /// The scenario file is unreadable or wrong.
    #[error(transparent)]
    Scenario(#[from] scenario::ScenarioError),
}

/// The first host's address with port 0.
/// Most hosts one simulator runs: four times the largest real pool (64 hosts), for the
/// exporter's scale benchmark.
pub const MAX_HOSTS: usize = 1000;

fn first_address(model: &Model) -> Result<SocketAddr, SimError> {
    let address = model
        .hosts
        .first()
        .map(|h| h.address.as_str())
        .unwrap_or("");
    format!("{address}:0")
        .parse()
        .map_err(|e| SimError::Options(format!("host address {address:?}: {e}")))
}

/// A running simulated pool. Dropping it does not stop it; call [`RunningSim::shutdown`].
#[derive(Debug)]
pub struct RunningSim {
    shared: Arc<Shared>,
    control: SocketAddr,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl RunningSim {
    /// Builds the pool, binds every host and the control API, and starts the clock.
    pub async fn start(options: SimOptions) -> Result<RunningSim, SimError> {
        if options.spec.hosts == 0 || options.spec.hosts > MAX_HOSTS {
            return Err(SimError::Options(format!(
                "hosts must be 1 to {MAX_HOSTS}, not {}",
                options.spec.hosts
            )));
        }
        if !(options.time_scale.is_finite() && options.time_scale >= 0.0) {
            return Err(SimError::Options(
                "time scale must be a non-negative number".into(),
            ));
        }
        let mut model = Model::build(&options.spec);
        let scenario = match &options.scenario {
            Some(path) => Some(scenario::Scenario::load(path, &model)?),
            None => None,
        };
        if let Some(timing) = scenario.as_ref().and_then(|s| s.timing) {
            model.params = timing;
        }
        // Port 0: the first host's listener picks the port, and is kept for that host.
        let (port, sockets) = if options.port == 0 {
            let listener = server::bind(first_address(&model)?).await?;
            (
                listener.local_addr()?.port(),
                Sockets::with_listener(0, listener),
            )
        } else {
            (options.port, Sockets::default())
        };
        let (changed, _) = tokio::sync::watch::channel(0);
        let certs = if options.tls {
            let hosts: Vec<(String, String)> = model
                .hosts
                .iter()
                .map(|h| (h.name.clone(), h.address.clone()))
                .collect();
            let mut certs = Vec::new();
            for (name, address) in hosts {
                certs.push(certs::generate(&name, &address).map_err(SimError::Options)?);
            }
            Some(Mutex::new(certs))
        } else {
            None
        };
        let shared = Arc::new(Shared {
            certs,
            model: Mutex::new(model),
            clock: Mutex::new(Clock::new(options.time_scale)),
            changed,
            port,
            sockets: tokio::sync::Mutex::new(sockets),
            traffic: (0..options.spec.hosts)
                .map(|_| Default::default())
                .collect(),
        });
        shared.settle().await?;
        let listener = tokio::net::TcpListener::bind(options.control)
            .await
            .map_err(|e| {
                std::io::Error::new(
                    e.kind(),
                    format!("cannot listen on {} (control API): {e}", options.control),
                )
            })?;
        let control = listener.local_addr()?;
        let app = control::router(shared.clone());
        let control_task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "Simulator control API stopped.");
            }
        });
        let mut tasks = vec![control_task, tokio::spawn(tick(shared.clone()))];
        if let Some(scenario) = scenario {
            tasks.push(tokio::spawn(scenario::play(shared.clone(), scenario)));
        }
        Ok(RunningSim {
            shared,
            control,
            tasks,
        })
    }

    /// Address of the control API.
    pub fn control_addr(&self) -> SocketAddr {
        self.control
    }

    /// Port the hosts listen on.
    pub fn port(&self) -> u16 {
        self.shared.port
    }

    /// Management addresses of the hosts, in order.
    pub fn host_addresses(&self) -> Vec<String> {
        self.shared
            .with_model(|m, _| m.hosts.iter().map(|h| h.address.clone()).collect())
    }

    /// Direct access to the model, for tests and the demo.
    pub fn with_model<T>(&self, f: impl FnOnce(&mut Model, f64) -> T) -> T {
        self.shared.with_model(f)
    }

    /// Moves the simulated clock forward.
    pub fn advance(&self, seconds: f64) {
        self.shared
            .clock
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .advance(seconds);
        self.shared.with_model(|_, _| ());
    }

    /// Stops every listener and the clock.
    pub fn shutdown(self) {
        for task in self.tasks {
            task.abort();
        }
        if let Ok(mut sockets) = self.shared.sockets.try_lock() {
            sockets.shutdown();
        }
    }
}

/// Advances timers and keeps sockets matching the model, on every change and at least every
/// 100 ms.
async fn tick(shared: Arc<Shared>) {
    let mut changes = shared.changed.subscribe();
    loop {
        let _ = tokio::time::timeout(Duration::from_millis(100), changes.changed()).await;
        if let Err(e) = shared.settle().await {
            tracing::error!(error = %e, "Simulated host socket could not be opened.");
        }
    }
}
