//! `xenguard demo`: a simulated 3-host pool, the exporter watching it and the receiver, in one
//! process, on the default ports, with a landing page and a short script of faults to try.
//!
//! Prometheus and Alertmanager are not needed: a small stand-in evaluates the shipped
//! `XenVmsStuckOnDeadHost` rule (`xen_host_stuck_vms > 0` for 15 s) on the exporter's own
//! exposition and posts Alertmanager version-4 notifications, firing and resolved, to the
//! receiver's webhook with a bearer token — the same contract a real Alertmanager uses.
//!
//! The receiver observes by default (plans are journaled, nothing is done). With `--auto` it
//! acts: every simulated host has a simulated BMC, the fence agent [`crate::fence_sim`] run
//! through the same [`crate::remediation::fence::FenceAgent`] contract as `fence_ipmilan`, so
//! no BMC simulator is needed either.
//!
//! Everything the demo writes (configuration, secrets, journal, the agent's link) lives in one
//! private temporary directory, removed when the demo stops.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::response::Html;
use axum::routing::get;
use tokio::task::JoinHandle;

use crate::config::defaults;
use crate::exporter::Exporter;
use crate::remediation::Receiver;
use crate::sim::control::{HostView, Truth};
use crate::sim::{RunningSim, SimOptions};

/// How long a host must have stuck VMs before the stand-in alert fires (the rule's `for:`).
const ALERT_FOR: Duration = Duration::from_secs(15);

/// Simulated seconds per real second in the demo: the 600 s liveness timeout passes in 60 s.
pub const DEMO_TIME_SCALE: f64 = 10.0;

/// Port of the demo's landing page (on 127.0.0.1).
pub const PAGE_PORT: u16 = 9881;

/// Seconds between the landing page's reloads.
const PAGE_REFRESH_SECONDS: u32 = 3;

/// The name of the pool in the demo's configuration, metrics and alerts.
const POOL: &str = "demo";

/// Receiver and client settings of the demo, shorter than the production defaults so that a
/// recovery completes within a minute of a host's death. Printed in the banner.
mod settings {
    /// `receiver.confirm_window_seconds`.
    pub const CONFIRM_WINDOW_SECONDS: u64 = 2;
    /// `receiver.confirm_probes`.
    pub const CONFIRM_PROBES: u32 = 2;
    /// `receiver.startup_quiet_seconds`: the alert needs 15 s anyway.
    pub const STARTUP_QUIET_SECONDS: u64 = 0;
    /// `receiver.host_cooldown_seconds`: a host fenced and powered on again is not fenced a
    /// second time within 5 minutes.
    pub const HOST_COOLDOWN_SECONDS: u64 = 300;
    /// `receiver.fence_budget.max_fences`.
    pub const MAX_FENCES: u32 = 3;
    /// `receiver.fence_budget.window_seconds`.
    pub const FENCE_WINDOW_SECONDS: u64 = 600;
    /// `fencing.agent_timeout_seconds`.
    pub const AGENT_TIMEOUT_SECONDS: u64 = 15;
    /// Pool `timeouts.connect_seconds`.
    pub const CONNECT_SECONDS: u64 = 1;
    /// Pool `timeouts.call_seconds`: each confirmation probe of a dead host waits this long.
    pub const CALL_SECONDS: u64 = 2;
    /// Pool `timeouts.start_vm_seconds`.
    pub const START_VM_SECONDS: u64 = 30;
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The simulator could not start (ports in use?).
    #[error("simulator: {0}")]
    Sim(#[from] crate::sim::SimError),
    /// The exporter could not start.
    #[error("exporter: {0}")]
    Exporter(#[from] crate::exporter::ExporterError),
    /// The receiver could not start.
    #[error("receiver: {0}")]
    Receiver(#[from] crate::remediation::ReceiverError),
    /// The demo's configuration could not be made.
    #[error("demo configuration: {0}")]
    Config(String),
    /// The demo's own files or sockets.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// How to run the demo. [`DemoOptions::default`] is `xenguard demo`: the documented ports
/// (hosts 127.0.0.11-13:8080, control API 9880, exporter 9878, receiver 9879, page 9881).
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Let the receiver act (`auto` mode) instead of only planning (`observe`).
    pub auto: bool,
    /// The simulated pool and its control API.
    pub sim: SimOptions,
    /// Address of the exporter.
    pub exporter: SocketAddr,
    /// Address of the receiver.
    pub receiver: SocketAddr,
    /// Address of the landing page.
    pub page: SocketAddr,
    /// The `xenguard` executable, run as every simulated host's fence agent.
    pub executable: PathBuf,
}

impl Default for DemoOptions {
    fn default() -> Self {
        let local = |port| SocketAddr::from(([127, 0, 0, 1], port));
        DemoOptions {
            auto: false,
            sim: SimOptions {
                time_scale: DEMO_TIME_SCALE,
                ..SimOptions::default()
            },
            exporter: local(defaults::EXPORTER_PORT),
            receiver: local(defaults::RECEIVER_PORT),
            page: local(PAGE_PORT),
            executable: std::env::current_exe().unwrap_or_else(|_| PathBuf::from("xenguard")),
        }
    }
}

/// A running demo. Call [`Demo::shutdown`] to stop it and remove its files.
#[derive(Debug)]
pub struct Demo {
    sim: RunningSim,
    exporter: Arc<Exporter>,
    receiver: Arc<Receiver>,
    dir: PathBuf,
    config_path: PathBuf,
    executable: PathBuf,
    auto: bool,
    page: SocketAddr,
    exporter_at: SocketAddr,
    receiver_at: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
}

/// What [`Demo::start`] builds once the simulator runs.
struct Parts {
    exporter: Arc<Exporter>,
    receiver: Arc<Receiver>,
    config_path: PathBuf,
}

impl Demo {
    /// Binds every listener, starts the simulator, writes the configuration and secrets into a
    /// new private temporary directory, and starts the exporter, the receiver, the stand-in
    /// alert poster and the landing page.
    pub async fn start(options: DemoOptions) -> Result<Demo, DemoError> {
        if !options.executable.is_file() {
            return Err(DemoError::Config(format!(
                "the xenguard executable {} (the simulated hosts' fence agent) is not a file",
                options.executable.display()
            )));
        }
        let page_listener = bind(options.page).await?;
        let exporter_listener = bind(options.exporter).await?;
        let receiver_listener = bind(options.receiver).await?;
        let (page, exporter_at, receiver_at) = (
            page_listener.local_addr()?,
            exporter_listener.local_addr()?,
            receiver_listener.local_addr()?,
        );
        let sim = RunningSim::start(options.sim.clone()).await?;
        let dir = private_dir()?;
        let parts = match assemble(&options, &sim, &dir, exporter_at, receiver_at) {
            Ok(parts) => parts,
            Err(e) => {
                sim.shutdown();
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let token = crate::config::read_secret_file(&dir.join("webhook.token"))
            .map(|s| s.expose().to_owned())
            .unwrap_or_default();
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| DemoError::Config(format!("HTTP client: {e}")))?;
        let page_state = Arc::new(Page {
            control: format!("http://{}", sim.control_addr()),
            exporter: parts.exporter.clone(),
            receiver: parts.receiver.clone(),
            http: http.clone(),
            auto: options.auto,
            exporter_at,
            receiver_at,
        });
        let serve = |listener: tokio::net::TcpListener, router: Router| {
            tokio::spawn(async move {
                if let Err(e) = axum::serve(listener, router).await {
                    tracing::error!(error = %e, "A demo listener stopped.");
                }
            })
        };
        let tasks = vec![
            serve(exporter_listener, parts.exporter.router()),
            serve(receiver_listener, parts.receiver.router()),
            serve(
                page_listener,
                Router::new()
                    .route("/", get(landing))
                    .with_state(page_state),
            ),
            tokio::spawn(alerter(
                parts.exporter.clone(),
                http,
                format!("http://{receiver_at}/alertmanager"),
                token,
            )),
        ];
        Ok(Demo {
            sim,
            exporter: parts.exporter,
            receiver: parts.receiver,
            dir,
            config_path: parts.config_path,
            executable: options.executable,
            auto: options.auto,
            page,
            exporter_at,
            receiver_at,
            tasks,
        })
    }

    /// Address of the landing page.
    pub fn page_addr(&self) -> SocketAddr {
        self.page
    }

    /// Address of the exporter.
    pub fn exporter_addr(&self) -> SocketAddr {
        self.exporter_at
    }

    /// Address of the receiver.
    pub fn receiver_addr(&self) -> SocketAddr {
        self.receiver_at
    }

    /// Address of the simulator's control API.
    pub fn control_addr(&self) -> SocketAddr {
        self.sim.control_addr()
    }

    /// The configuration file the demo wrote (for `xenguard journal --config`).
    pub fn config_path(&self) -> &Path {
        &self.config_path
    }

    /// The demo's temporary directory (configuration, secrets, journal).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What `xenguard demo` prints: the landing page first, then the endpoints, what the
    /// receiver's mode will do, how to kill a host and how to watch.
    pub fn banner(&self) -> String {
        let mut out = String::new();
        self.write_banner(&mut out);
        out
    }

    fn write_banner(&self, out: &mut String) {
        let (control, exporter, receiver) =
            (self.sim.control_addr(), self.exporter_at, self.receiver_at);
        let mode = if self.auto { "auto" } else { "observe" };
        let _ = writeln!(
            out,
            "xenguard demo: open http://{}/ (the pool and the remediation journal, refreshed every {PAGE_REFRESH_SECONDS} s)",
            self.page
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "A simulated 3-host pool (clock at {DEMO_TIME_SCALE}x), the exporter and the receiver ({mode} mode):"
        );
        for (i, address) in self.sim.host_addresses().iter().enumerate() {
            let role = if i == 0 { "master" } else { "slave" };
            let _ = writeln!(
                out,
                "  host{}    http://{address}:{}/   XAPI, {role}, user root / password xenguard",
                i + 1,
                self.sim.port()
            );
        }
        let _ = writeln!(
            out,
            "  exporter http://{exporter}/metrics   (its own page: http://{exporter}/)"
        );
        let _ = writeln!(
            out,
            "  receiver http://{receiver}/remediations   (webhook POST /alertmanager, bearer token in {})",
            self.dir.join("webhook.token").display()
        );
        let _ = writeln!(
            out,
            "  control  http://{control}/hosts   http://{control}/truth   (the simulator's control API)"
        );
        let _ = writeln!(out, "  config   {}", self.config_path.display());
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "A host whose VMs stay stuck for {} s raises XenVmsStuckOnDeadHost (a built-in stand-in for",
            ALERT_FOR.as_secs()
        );
        let _ = writeln!(
            out,
            "Prometheus and Alertmanager posts it to the receiver). In {mode} mode the receiver"
        );
        if self.auto {
            let _ = writeln!(
                out,
                "  1. confirms the host is down: {} fresh probes over {} s, a majority of the pool answering,",
                settings::CONFIRM_PROBES,
                settings::CONFIRM_WINDOW_SECONDS
            );
            let _ = writeln!(out, "     HA off, the BMC's power status;");
            let _ = writeln!(
                out,
                "  2. fences it: powers it off through its simulated BMC (the fence agent `xenguard fence-sim`,"
            );
            let _ = writeln!(
                out,
                "     driving the control API) and reads the power-off back — no fence, no recovery;"
            );
            let _ = writeln!(
                out,
                "  3. promotes a survivor if the master died, recovers the slaves, resets the host's VMs,"
            );
            let _ = writeln!(
                out,
                "     releases their disk locks and starts them on the surviving hosts, then verifies."
            );
            let _ = writeln!(
                out,
                "  Demo settings [production defaults]: confirm_window_seconds {} [{}], confirm_probes {} [{}],",
                settings::CONFIRM_WINDOW_SECONDS,
                defaults::CONFIRM_WINDOW_SECONDS,
                settings::CONFIRM_PROBES,
                defaults::CONFIRM_PROBES
            );
            let _ = writeln!(
                out,
                "  startup_quiet_seconds {} [{}], host_cooldown_seconds {} [{}], fence budget {} per {} s [{} per {} s],",
                settings::STARTUP_QUIET_SECONDS,
                defaults::STARTUP_QUIET_SECONDS,
                settings::HOST_COOLDOWN_SECONDS,
                defaults::HOST_COOLDOWN_SECONDS,
                settings::MAX_FENCES,
                settings::FENCE_WINDOW_SECONDS,
                defaults::MAX_FENCES,
                defaults::FENCE_WINDOW_SECONDS
            );
            let _ = writeln!(
                out,
                "  pool call_seconds {} [{}] (each probe of a dead host waits up to this).",
                settings::CALL_SECONDS,
                defaults::CALL_SECONDS
            );
        } else {
            let _ = writeln!(
                out,
                "  journals the recovery plan it would run and does nothing (observe is the default);"
            );
            let _ = writeln!(
                out,
                "  the alert resolving aborts the plan. Run `xenguard demo --auto` to let it confirm, fence"
            );
            let _ = writeln!(
                out,
                "  (through a simulated BMC per host) and restart the dead host's VMs elsewhere."
            );
        }
        let _ = writeln!(out);
        let post = |path: &str, body: &str| {
            format!(
                "  curl -s -XPOST {control}/hosts/{path} -H 'content-type: application/json' -d '{body}'"
            )
        };
        let _ = writeln!(out, "Kill a host (in another terminal):");
        let _ = writeln!(out, "{}", post("host2/power", r#"{"state":"off"}"#));
        let _ = writeln!(
            out,
            "      host2 loses power: unreachable at once, not live after the simulated 600 s (1 min)"
        );
        if self.auto {
            let _ = writeln!(
                out,
                "      -> about {} s later the alert fires; host2 is fenced and its VMs run on host1/host3",
                ALERT_FOR.as_secs()
            );
        }
        let _ = writeln!(out, "{}", post("host3/xapi", r#"{"running":false}"#));
        let _ = writeln!(
            out,
            "      xapi dies but its VMs keep running: unreachable, not dead"
        );
        if self.auto {
            let _ = writeln!(
                out,
                "      -> the fence powers host3 off before its VMs start anywhere else"
            );
        }
        let _ = writeln!(out, "{}", post("host1/network", r#"{"connected":false}"#));
        let _ = writeln!(
            out,
            "      the master's cable is pulled (it still runs): xen_pool_up 0, slaves orphaned"
        );
        if self.auto {
            let _ = writeln!(
                out,
                "      -> host1 is fenced, a survivor promoted, the slaves recovered, host1's VMs restarted"
            );
            let _ = writeln!(
                out,
                "         (but vm0002, whose disk is on host1's local storage: the journal says why)"
            );
        }
        let _ = writeln!(out, "{}", post("host2/power", r#"{"state":"on"}"#));
        let _ = writeln!(
            out,
            "      power a host back on (likewise {{\"connected\":true}}, {{\"running\":true}})"
        );
        let _ = writeln!(
            out,
            "  One fault at a time: bring the host back before the next. With two of the three hosts down"
        );
        let _ = writeln!(
            out,
            "  the quorum guard blocks (the receiver must reach a majority of the other hosts)."
        );
        let _ = writeln!(out);
        let _ = writeln!(out, "Watch:");
        let _ = writeln!(out, "  http://{}/", self.page);
        let _ = writeln!(out, "  curl -s {receiver}/remediations");
        let _ = writeln!(
            out,
            "  {} journal list --config {}      (then: journal show ID)",
            self.executable.display(),
            self.config_path.display()
        );
        let _ = writeln!(
            out,
            "  curl -s {control}/truth     # where every VM really runs; double_running_vms must stay 0"
        );
        let _ = writeln!(
            out,
            "  curl -s {exporter}/metrics | grep -E '^xen_(pool|host)_(up|reachable|live|stuck_vms|masters|orphaned)'"
        );
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "No Prometheus, Alertmanager or BMC is needed. Ctrl-C stops it and removes {}.",
            self.dir.display()
        );
    }

    /// Stops every task, the receiver, the exporter and the simulator, and removes the demo's
    /// directory.
    pub fn shutdown(self) {
        for task in &self.tasks {
            task.abort();
        }
        self.receiver.shutdown();
        self.exporter.shutdown();
        self.sim.shutdown();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Runs the demo until `shutdown` resolves.
pub async fn run(
    options: DemoOptions,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    let demo = Demo::start(options).await?;
    print!("{}", demo.banner());
    shutdown.await;
    demo.shutdown();
    Ok(())
}

async fn bind(address: SocketAddr) -> Result<tokio::net::TcpListener, std::io::Error> {
    tokio::net::TcpListener::bind(address)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}")))
}

/// A new directory only this user can read, under the system's temporary directory.
fn private_dir() -> std::io::Result<PathBuf> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    loop {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("xenguard-demo-{}-{n}", std::process::id()));
        let mut builder = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        match builder.create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && n < 100 => continue,
            Err(e) => {
                return Err(std::io::Error::new(
                    e.kind(),
                    format!("cannot create {}: {e}", dir.display()),
                ));
            }
        }
    }
}

/// Writes a file only this user can read.
fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    file.write_all(content.as_bytes())
}

/// A fresh random bearer token (192 bits from the system's generator, hexadecimal).
fn random_token() -> std::io::Result<String> {
    use std::io::Read as _;
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|e| std::io::Error::new(e.kind(), format!("/dev/urandom: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// A YAML double-quoted scalar (JSON string syntax, which YAML accepts).
fn quoted(text: &str) -> String {
    serde_json::Value::from(text).to_string()
}

fn path_text(path: &Path) -> Result<String, DemoError> {
    path.to_str()
        .map(quoted)
        .ok_or_else(|| DemoError::Config(format!("{} is not UTF-8", path.display())))
}

/// The demo's configuration file.
fn config_yaml(
    options: &DemoOptions,
    sim: &RunningSim,
    dir: &Path,
    agent: &Path,
    exporter: SocketAddr,
    receiver: SocketAddr,
) -> Result<String, DemoError> {
    let hosts: Vec<String> = sim.host_addresses().iter().map(|a| quoted(a)).collect();
    let names: Vec<String> =
        sim.with_model(|m, _| m.hosts.iter().map(|h| h.name.clone()).collect());
    let mode = if options.auto { "auto" } else { "observe" };
    let mut yaml = format!(
        "# Written by `xenguard demo` ({mode} mode); removed when the demo stops.\n\
         pools:\n  - name: {POOL}\n    hosts: [{}]\n    scheme: http\n    port: {}\n    password_file: {}\n\
         \x20   timeouts: {{connect_seconds: {}, call_seconds: {}, start_vm_seconds: {}}}\n\
         exporter:\n  listen: {exporter}\n  probe_interval_seconds: 2\n  probe_timeout_seconds: 1\n  event_timeout_seconds: 5\n\
         receiver:\n  listen: {receiver}\n  mode: {mode}\n  auth: {{bearer_token_file: {}}}\n  journal_path: {}\n\
         \x20 confirm_window_seconds: {}\n  confirm_probes: {}\n  startup_quiet_seconds: {}\n  host_cooldown_seconds: {}\n\
         \x20 fence_budget: {{max_fences: {}, window_seconds: {}}}\n\
         fencing:\n  agent_timeout_seconds: {}\n  hosts:\n",
        hosts.join(", "),
        sim.port(),
        path_text(&dir.join("pool.password"))?,
        settings::CONNECT_SECONDS,
        settings::CALL_SECONDS,
        settings::START_VM_SECONDS,
        path_text(&dir.join("webhook.token"))?,
        path_text(&dir.join("journal.db"))?,
        settings::CONFIRM_WINDOW_SECONDS,
        settings::CONFIRM_PROBES,
        settings::STARTUP_QUIET_SECONDS,
        settings::HOST_COOLDOWN_SECONDS,
        settings::MAX_FENCES,
        settings::FENCE_WINDOW_SECONDS,
        settings::AGENT_TIMEOUT_SECONDS,
    );
    let control = quoted(&format!("http://{}", sim.control_addr()));
    let agent = path_text(agent)?;
    for name in names {
        let name = quoted(&name);
        let _ = write!(
            yaml,
            "    - pool: {POOL}\n      host: {name}\n      agent: {agent}\n      args: {{control: {control}, host: {name}}}\n"
        );
    }
    Ok(yaml)
}

/// Writes the demo's files into `dir` and starts the exporter and the receiver.
fn assemble(
    options: &DemoOptions,
    sim: &RunningSim,
    dir: &Path,
    exporter_at: SocketAddr,
    receiver_at: SocketAddr,
) -> Result<Parts, DemoError> {
    write_private(
        &dir.join("pool.password"),
        &format!("{}\n", options.sim.spec.password),
    )?;
    write_private(
        &dir.join("webhook.token"),
        &format!("{}\n", random_token()?),
    )?;
    // Fence agents are run without arguments: a link named like one makes the executable
    // act as `xenguard fence-sim`.
    let agent = dir.join(crate::fence_sim::AGENT_NAME);
    #[cfg(unix)]
    std::os::unix::fs::symlink(&options.executable, &agent)?;
    #[cfg(not(unix))]
    std::fs::copy(&options.executable, &agent)?;
    let yaml = config_yaml(options, sim, dir, &agent, exporter_at, receiver_at)?;
    let config_path = dir.join("xenguard.yml");
    write_private(&config_path, &yaml)?;
    let config = crate::config::parse(&yaml, &config_path.display().to_string())
        .map_err(|e| DemoError::Config(e.to_string()))?;
    let exporter = Arc::new(Exporter::start(&config)?);
    let receiver = Receiver::start(&config)?;
    Ok(Parts {
        exporter,
        receiver,
        config_path,
    })
}

/// The stand-in for Prometheus and Alertmanager (see the module documentation).
async fn alerter(exporter: Arc<Exporter>, http: reqwest::Client, webhook: String, token: String) {
    let mut pending: BTreeMap<String, Instant> = BTreeMap::new();
    let mut firing: BTreeMap<String, String> = BTreeMap::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    loop {
        ticker.tick().await;
        let stuck = host_series(&exporter.render(), "xen_host_stuck_vms");
        for (host, count) in &stuck {
            let since = *pending.entry(host.clone()).or_insert_with(Instant::now);
            if *count > 0.0 && since.elapsed() >= ALERT_FOR && !firing.contains_key(host) {
                let starts_at = rfc3339_now();
                notify(&http, &webhook, &token, "firing", host, &starts_at).await;
                firing.insert(host.clone(), starts_at);
            }
            if *count == 0.0 {
                pending.remove(host);
                if let Some(starts_at) = firing.remove(host) {
                    notify(&http, &webhook, &token, "resolved", host, &starts_at).await;
                }
            }
        }
    }
}

/// `host_uuid` -> value of the per-host series `metric` of the demo pool.
fn host_series(exposition: &str, metric: &str) -> BTreeMap<String, f64> {
    let prefix = format!("{metric}{{pool=\"{POOL}\",host_uuid=\"");
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (host, value) = rest.split_once("\"} ")?;
            Some((host.to_owned(), value.trim().parse::<f64>().ok()?))
        })
        .collect()
}

/// Value of the pool-level series `metric` of the demo pool.
fn pool_series(exposition: &str, metric: &str) -> Option<f64> {
    let prefix = format!("{metric}{{pool=\"{POOL}\"}} ");
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

async fn notify(
    http: &reqwest::Client,
    webhook: &str,
    token: &str,
    status: &str,
    host: &str,
    starts_at: &str,
) {
    let labels = serde_json::json!({
        "alertname": "XenVmsStuckOnDeadHost", "pool": POOL, "host_uuid": host, "severity": "critical"
    });
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    labels.to_string().hash(&mut hasher);
    let body = serde_json::json!({
        "version": "4", "groupKey": format!("{{}}:{{host_uuid=\"{host}\"}}"), "truncatedAlerts": 0,
        "status": status, "receiver": "xenguard", "groupLabels": {"host_uuid": host},
        "commonLabels": labels, "commonAnnotations": {}, "externalURL": "http://demo",
        "alerts": [{
            "status": status, "labels": labels, "annotations": {"summary": "VMs stuck on a dead host"},
            "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
            "fingerprint": format!("{:016x}", hasher.finish())
        }]
    });
    match http
        .post(webhook)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
    {
        Ok(r) => {
            tracing::info!(%host, status, http = r.status().as_u16(), "Demo alert sent to the receiver.")
        }
        Err(e) => tracing::warn!(%host, error = %e, "Demo alert could not be sent."),
    }
}

/// Now as RFC 3339 (UTC, seconds), the form Alertmanager writes `startsAt` in.
fn rfc3339_now() -> String {
    let secs = crate::remediation::unix_now() as i64;
    let compact = crate::xapi::typed::DateTime::from_unix(secs).0; // YYYYMMDDTHH:MM:SSZ
    format!("{}-{}-{}", &compact[0..4], &compact[4..6], &compact[6..])
}

/// `HH:MM:SS` (UTC) of a Unix time.
fn clock_time(unix: f64) -> String {
    let compact = crate::xapi::typed::DateTime::from_unix(unix as i64).0;
    compact[9..17].to_owned()
}

/// What the landing page reads from.
struct Page {
    control: String,
    exporter: Arc<Exporter>,
    receiver: Arc<Receiver>,
    http: reqwest::Client,
    auto: bool,
    exporter_at: SocketAddr,
    receiver_at: SocketAddr,
}

impl Page {
    async fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, String> {
        let url = format!("{}{path}", self.control);
        let response = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| e.to_string())?;
        response.json().await.map_err(|e| e.to_string())
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A table cell, marked bad (red) or good (green) when `good` says so.
fn cell(text: &str, good: Option<bool>) -> String {
    let class = match good {
        Some(true) => " class=\"ok\"",
        Some(false) => " class=\"bad\"",
        None => "",
    };
    format!("<td{class}>{}</td>", escape(text))
}

/// A 0/1 metric as yes/no, `-` when absent.
fn flag(value: Option<&f64>) -> &'static str {
    match value {
        Some(v) if *v > 0.0 => "yes",
        Some(_) => "no",
        None => "-",
    }
}

/// `GET /` of the landing page: the pool (simulator's truth and exporter's view), the VMs and
/// the remediation journal; plain HTML reloading itself.
async fn landing(State(page): State<Arc<Page>>) -> Html<String> {
    let hosts: Result<Vec<HostView>, String> = page.get("/hosts").await;
    let truth: Result<Truth, String> = page.get("/truth").await;
    let exposition = page.exporter.render();
    let names: BTreeMap<String, String> = hosts
        .as_ref()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.uuid.clone(), h.name.clone()))
                .collect()
        })
        .unwrap_or_default();
    let name_of = |uuid: &str| names.get(uuid).cloned().unwrap_or_else(|| uuid.to_owned());
    let mode = if page.auto { "auto" } else { "observe" };
    let mut html = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"{PAGE_REFRESH_SECONDS}\">\
         <title>xenguard demo</title><style>body{{font-family:sans-serif;margin:1.5em}}table{{border-collapse:collapse;margin-bottom:1em}}\
         td,th{{border:1px solid #bbb;padding:3px 8px;text-align:left}}th{{background:#eee}}.ok{{background:#dfd}}.bad{{background:#fcc}}\
         code{{background:#f4f4f4}}</style></head><body><h1>xenguard demo</h1><p>Receiver mode <b>{mode}</b>: {}. This page reloads every {PAGE_REFRESH_SECONDS} s.</p>",
        if page.auto {
            "a host whose VMs stay stuck is confirmed dead, fenced through its simulated BMC, and its VMs are restarted elsewhere"
        } else {
            "recovery plans are journaled, nothing is done (run <code>xenguard demo --auto</code> to let it act)"
        }
    );
    let pool_up = pool_series(&exposition, "xen_pool_up");
    let masters = pool_series(&exposition, "xen_pool_masters");
    let _ = write!(
        html,
        "<h2>Pool <code>{POOL}</code></h2><p>Exporter: pool up <b>{}</b>, hosts claiming master <b>{}</b>.</p>",
        flag(pool_up.as_ref()),
        masters.map_or("-".to_owned(), |m| m.to_string())
    );
    let series: BTreeMap<&str, BTreeMap<String, f64>> = [
        "xen_host_reachable",
        "xen_host_live",
        "xen_host_is_master",
        "xen_host_emergency_mode",
        "xen_host_orphaned",
        "xen_host_stuck_vms",
        "xen_host_vdi_locks",
    ]
    .into_iter()
    .map(|metric| (metric, host_series(&exposition, metric)))
    .collect();
    match &hosts {
        Err(e) => {
            let _ = write!(
                html,
                "<p class=\"bad\">The simulator's control API did not answer: {}</p>",
                escape(e)
            );
        }
        Ok(hosts) => {
            html.push_str(
                "<table><tr><th colspan=\"6\">simulator (ground truth)</th><th colspan=\"7\">exporter's view</th></tr>\
                 <tr><th>host</th><th>address</th><th>power</th><th>network</th><th>xapi</th><th>role</th>\
                 <th>reachable</th><th>live</th><th>master</th><th>emergency</th><th>orphaned</th><th>stuck VMs</th><th>VDI locks</th></tr>",
            );
            for h in hosts {
                let get = |metric: &str| series.get(metric).and_then(|m| m.get(&h.uuid));
                let role = if h.emergency {
                    format!("{} (emergency)", h.role)
                } else {
                    h.role.clone()
                };
                let stuck = get("xen_host_stuck_vms");
                let _ = write!(
                    html,
                    "<tr>{}{}{}{}{}{}{}{}{}{}{}{}{}</tr>",
                    cell(&h.name, None),
                    cell(&h.address, None),
                    cell(&h.power, Some(h.power == "on")),
                    cell(&h.network, Some(h.network == "up")),
                    cell(&h.xapi, Some(h.xapi == "running")),
                    cell(&role, None),
                    cell(
                        flag(get("xen_host_reachable")),
                        Some(flag(get("xen_host_reachable")) == "yes")
                    ),
                    cell(
                        flag(get("xen_host_live")),
                        Some(flag(get("xen_host_live")) == "yes")
                    ),
                    cell(flag(get("xen_host_is_master")), None),
                    cell(flag(get("xen_host_emergency_mode")), None),
                    cell(flag(get("xen_host_orphaned")), None),
                    cell(
                        &stuck.map_or("-".to_owned(), |v| v.to_string()),
                        stuck.map(|v| *v == 0.0)
                    ),
                    cell(
                        &get("xen_host_vdi_locks").map_or("-".to_owned(), |v| v.to_string()),
                        None
                    ),
                );
            }
            html.push_str("</table>");
        }
    }
    match &truth {
        Err(e) => {
            let _ = write!(html, "<p class=\"bad\">No ground truth: {}</p>", escape(e));
        }
        Ok(truth) => {
            let _ = write!(
                html,
                "<h2>VMs</h2><p>Running on more than one host at once (data corruption): <b class=\"{}\">{}</b></p><table><tr><th>VM</th><th>really runs on</th></tr>",
                if truth.double_running_vms == 0 {
                    "ok"
                } else {
                    "bad"
                },
                truth.double_running_vms
            );
            let mut vms: Vec<_> = truth.vms.iter().collect();
            vms.sort_by(|a, b| a.name.cmp(&b.name));
            for vm in vms {
                let on: Vec<String> = vm.running_on.iter().map(|u| name_of(u)).collect();
                let text = if on.is_empty() {
                    "(halted)".to_owned()
                } else {
                    on.join(", ")
                };
                let _ = write!(
                    html,
                    "<tr>{}{}</tr>",
                    cell(&vm.name, None),
                    cell(&text, Some(on.len() == 1))
                );
            }
            html.push_str("</table>");
        }
    }
    html.push_str("<h2>Remediations</h2>");
    let journal = page.receiver.journal();
    match journal.list(20) {
        Err(e) => {
            let _ = write!(
                html,
                "<p class=\"bad\">Journal: {}</p>",
                escape(&e.to_string())
            );
        }
        Ok(list) if list.is_empty() => {
            html.push_str("<p>None yet. Kill a host (see below) and wait for the alert.</p>");
        }
        Ok(list) => {
            html.push_str(
                "<table><tr><th>id</th><th>created (UTC)</th><th>host</th><th>alert</th><th>plan</th><th>phase</th><th>reason</th></tr>",
            );
            for r in &list {
                let good = match r.phase.as_str() {
                    "done" => Some(true),
                    "failed" | "blocked" => Some(false),
                    _ => None,
                };
                let _ = write!(
                    html,
                    "<tr>{}{}{}{}{}{}{}</tr>",
                    cell(&r.id.to_string(), None),
                    cell(&clock_time(r.created_at), None),
                    cell(&name_of(&r.host_uuid), None),
                    cell(&r.alertname, None),
                    cell(&r.kind, None),
                    cell(&r.phase, good),
                    cell(&r.reason, None),
                );
            }
            html.push_str("</table>");
            if let Ok(Some((r, steps))) = journal.show(list[0].id) {
                let _ = write!(
                    html,
                    "<h3>Remediation {} step by step</h3><table><tr><th>after</th><th>step</th><th>detail</th></tr>",
                    r.id
                );
                for step in steps {
                    let detail = &step.detail;
                    let mut detail = match (step.kind.as_str(), detail["from"].as_str()) {
                        ("phase", Some(from)) => format!(
                            "{from} → {} ({}) {}",
                            detail["to"].as_str().unwrap_or("?"),
                            detail["event"].as_str().unwrap_or(""),
                            detail["reason"].as_str().unwrap_or("")
                        ),
                        _ => detail.to_string(),
                    };
                    if detail.len() > 200 {
                        let cut = (0..=200).rev().find(|i| detail.is_char_boundary(*i));
                        detail.truncate(cut.unwrap_or(0));
                        detail.push('…');
                    }
                    let _ = write!(
                        html,
                        "<tr>{}{}{}</tr>",
                        cell(&format!("{:.1} s", step.at - r.created_at), None),
                        cell(&step.kind, None),
                        cell(&detail, None)
                    );
                }
                html.push_str("</table>");
            }
        }
    }
    let control = page.control.trim_start_matches("http://");
    let _ = write!(
        html,
        "<h2>Try</h2><pre>curl -s -XPOST {control}/hosts/host2/power -H 'content-type: application/json' -d '{{\"state\":\"off\"}}'\n\
         curl -s -XPOST {control}/hosts/host3/xapi -H 'content-type: application/json' -d '{{\"running\":false}}'\n\
         curl -s -XPOST {control}/hosts/host1/network -H 'content-type: application/json' -d '{{\"connected\":false}}'\n\
         curl -s -XPOST {control}/hosts/host2/power -H 'content-type: application/json' -d '{{\"state\":\"on\"}}'</pre>\
         <p>More: <a href=\"http://{exporter}/metrics\">exporter /metrics</a> · <a href=\"http://{receiver}/remediations\">receiver /remediations</a> · \
         <a href=\"http://{control}/hosts\">control /hosts</a> · <a href=\"http://{control}/truth\">control /truth</a></p></body></html>",
        exporter = page.exporter_at,
        receiver = page.receiver_at,
    );
    Html(html)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_host_and_pool_series_from_the_exposition() {
        let text = "xen_pool_up{pool=\"demo\"} 1\nxen_host_stuck_vms{pool=\"demo\",host_uuid=\"a\"} 2\nxen_host_stuck_vms{pool=\"demo\",host_uuid=\"b\"} 0\nxen_host_stuck_vms{pool=\"other\",host_uuid=\"c\"} 5\n";
        let stuck = host_series(text, "xen_host_stuck_vms");
        assert_eq!(
            stuck.into_iter().collect::<Vec<_>>(),
            vec![("a".to_owned(), 2.0), ("b".to_owned(), 0.0)]
        );
        assert_eq!(pool_series(text, "xen_pool_up"), Some(1.0));
        assert_eq!(pool_series(text, "xen_pool_masters"), None);
    }

    #[test]
    fn starts_at_is_rfc3339() {
        let t = rfc3339_now();
        assert_eq!(
            (t.len(), &t[4..5], &t[7..8], &t[10..11], &t[19..]),
            (20, "-", "-", "T", "Z"),
            "{t}"
        );
        assert_eq!(clock_time(3661.0), "01:01:01");
    }

    #[test]
    fn tokens_are_random_and_paths_quoted_for_yaml() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
        assert_eq!(quoted("/srv/a \"b\"\\c"), r#""/srv/a \"b\"\\c""#);
    }
}
