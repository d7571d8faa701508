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
//!
//! Here: assembling and running the demo. `alerts` is the stand-in alert poster, `page` the
//! landing page.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use tokio::task::JoinHandle;

mod alerts;
mod page;

use self::alerts::{ALERT_FOR, alerter};
use self::page::{PAGE_REFRESH_SECONDS, Page, landing};
use crate::config::defaults;
use crate::exporter::Exporter;
use crate::remediation::Receiver;
use crate::sim::{RunningSim, SimOptions};

/// Simulated seconds per real second in the demo: the 600 s liveness timeout passes in 60 s.
pub const DEMO_TIME_SCALE: f64 = 10.0;

/// Port of the demo's landing page (on 127.0.0.1).
pub const PAGE_PORT: u16 = 9881;

/// The name of the pool in the demo's configuration, metrics and alerts.
const POOL: &str = "demo";

/// Receiver and client settings of the demo, shorter than the production defaults so that a
/// recovery completes within a minute of a host's death. Printed in the banner.
mod settings {
    /// `receiver.confirm_window_seconds`.
    pub const CONFIRM_WINDOW_SECONDS: u64 = 2;
    /// `receiver.confirm_probes`.
    pub const CONFIRM_PROBES: u32 = 2;
    /// `receiver.refused_grace_seconds`: a host whose xapi was stopped is fenced 20 s later.
    pub const REFUSED_GRACE_SECONDS: u64 = 20;
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
                "  refused_grace_seconds {} [{}],",
                settings::REFUSED_GRACE_SECONDS,
                defaults::REFUSED_GRACE_SECONDS
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
    let names: Vec<(String, String)> = sim.with_model(|m, _| {
        m.hosts
            .iter()
            .map(|h| (h.name.clone(), h.uuid.clone()))
            .collect()
    });
    let mode = if options.auto { "auto" } else { "observe" };
    let mut yaml = format!(
        "# Written by `xenguard demo` ({mode} mode); removed when the demo stops.\n\
         pools:\n  - name: {POOL}\n    hosts: [{}]\n    scheme: http\n    port: {}\n    password_file: {}\n\
         \x20   timeouts: {{connect_seconds: {}, call_seconds: {}, start_vm_seconds: {}}}\n\
         exporter:\n  listen: {exporter}\n  probe_interval_seconds: 2\n  probe_timeout_seconds: 1\n  event_timeout_seconds: 5\n  event_min_interval_seconds: 1\n  rrd_interval_seconds: 5\n\
         receiver:\n  listen: {receiver}\n  mode: {mode}\n  auth: {{bearer_token_file: {}}}\n  journal_path: {}\n\
         \x20 confirm_window_seconds: {}\n  confirm_probes: {}\n  refused_grace_seconds: {}\n  startup_quiet_seconds: {}\n  host_cooldown_seconds: {}\n\
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
        settings::REFUSED_GRACE_SECONDS,
        settings::STARTUP_QUIET_SECONDS,
        settings::HOST_COOLDOWN_SECONDS,
        settings::MAX_FENCES,
        settings::FENCE_WINDOW_SECONDS,
        settings::AGENT_TIMEOUT_SECONDS,
    );
    let control = quoted(&format!("http://{}", sim.control_addr()));
    let agent = path_text(agent)?;
    // Keyed by uuid, as check-config demands when the receiver may act.
    for (name, uuid) in names {
        let (name, uuid) = (quoted(&name), quoted(&uuid));
        let _ = write!(
            yaml,
            "    - pool: {POOL}\n      host: {uuid}\n      agent: {agent}\n      args: {{control: {control}, host: {name}}}\n"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_and_paths_quoted_for_yaml() {
        let (a, b) = (random_token().unwrap(), random_token().unwrap());
        assert_eq!(a.len(), 48);
        assert_ne!(a, b);
        assert_eq!(quoted("/srv/a \"b\"\\c"), r#""/srv/a \"b\"\\c""#);
    }
}
