//! The validated configuration [`parse`](super::parse) returns, the defaults of its optional
//! keys, and the secrets it names (read when needed, never stored in the file).

use std::collections::BTreeMap;
use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::diagnostics::ConfigError;

/// Default values of the optional keys (README's configuration reference lists the same).
pub mod defaults {
    /// Pool `port` with `scheme: https`.
    pub const HTTPS_PORT: u16 = 443;
    /// Pool `port` with `scheme: http`.
    pub const HTTP_PORT: u16 = 80;
    /// Pool `username`.
    pub const USERNAME: &str = "root";
    /// Pool `timeouts.connect_seconds`.
    pub const CONNECT_SECONDS: u64 = 3;
    /// Pool `timeouts.call_seconds`.
    pub const CALL_SECONDS: u64 = 10;
    /// Pool `timeouts.start_vm_seconds`.
    pub const START_VM_SECONDS: u64 = 600;
    /// Port of `exporter.listen` (on all IPv4 addresses).
    pub const EXPORTER_PORT: u16 = 9878;
    /// `exporter.probe_interval_seconds`.
    pub const PROBE_INTERVAL_SECONDS: u64 = 10;
    /// `exporter.probe_timeout_seconds`.
    pub const PROBE_TIMEOUT_SECONDS: u64 = 3;
    /// `exporter.event_timeout_seconds`.
    pub const EVENT_TIMEOUT_SECONDS: u64 = 30;
    /// `exporter.event_min_interval_seconds`.
    pub const EVENT_MIN_INTERVAL_SECONDS: u64 = 5;
    /// `exporter.rrd_interval_seconds` (0: resource metrics are not collected).
    pub const RRD_INTERVAL_SECONDS: u64 = 0;
    /// Port of `receiver.listen` (on all IPv4 addresses).
    pub const RECEIVER_PORT: u16 = 9879;
    /// `receiver.journal_path`.
    pub const JOURNAL_PATH: &str = "/var/lib/xenguard/journal.db";
    /// `receiver.max_body_bytes`.
    pub const MAX_BODY_BYTES: u64 = 1_048_576;
    /// `receiver.confirm_window_seconds`.
    pub const CONFIRM_WINDOW_SECONDS: u64 = 10;
    /// `receiver.confirm_probes`.
    pub const CONFIRM_PROBES: u32 = 3;
    /// `receiver.refused_grace_seconds`: above the 30-90 s of a toolstack restart.
    pub const REFUSED_GRACE_SECONDS: u64 = 120;
    /// `receiver.step_timeout_seconds`: declare_dead's hooks walk every SR of the host.
    pub const STEP_TIMEOUT_SECONDS: u64 = 600;
    /// `receiver.attestation_max_age_seconds`.
    pub const ATTESTATION_MAX_AGE_SECONDS: u64 = 3600;
    /// `receiver.rejoin_wait_seconds`: a slave's xapi restart after `pool.recover_slaves`.
    pub const REJOIN_WAIT_SECONDS: u64 = 120;
    /// `receiver.rejoin_healthy_seconds`.
    pub const REJOIN_HEALTHY_SECONDS: u64 = 600;
    /// `receiver.pool_lease_seconds`: three default step timeouts.
    pub const POOL_LEASE_SECONDS: u64 = 1800;
    /// `receiver.startup_quiet_seconds`.
    pub const STARTUP_QUIET_SECONDS: u64 = 120;
    /// `receiver.host_cooldown_seconds`.
    pub const HOST_COOLDOWN_SECONDS: u64 = 3600;
    /// `receiver.fence_budget.max_fences`.
    pub const MAX_FENCES: u32 = 1;
    /// `receiver.fence_budget.window_seconds`.
    pub const FENCE_WINDOW_SECONDS: u64 = 3600;
    /// `receiver.storm.max_unhealthy`: more than half the pool's hosts.
    pub const MAX_UNHEALTHY_PERCENT: u32 = 50;
    /// `receiver.storm.window_seconds`.
    pub const STORM_WINDOW_SECONDS: u64 = 600;
    /// `receiver.storm.cooldown_seconds`.
    pub const STORM_COOLDOWN_SECONDS: u64 = 1800;
    /// `fencing.agent_timeout_seconds`.
    pub const AGENT_TIMEOUT_SECONDS: u64 = 60;
    /// Largest accepted value of any `*_seconds` key (one year).
    pub const MAX_SECONDS: u64 = 365 * 24 * 3600;
}

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The pools to watch, in file order (at least one).
    pub pools: Vec<PoolConfig>,
    /// The exporter's settings.
    pub exporter: ExporterConfig,
    /// The webhook receiver's settings.
    pub receiver: ReceiverConfig,
    /// How to power off each host through its BMC.
    pub fencing: FencingConfig,
}

impl Config {
    /// Looks a pool up by name.
    pub fn pool(&self, name: &str) -> Option<&PoolConfig> {
        self.pools.iter().find(|pool| pool.name == name)
    }

    /// Number of hosts over all pools.
    pub fn host_count(&self) -> usize {
        self.pools.iter().map(|pool| pool.hosts.len()).sum()
    }

    /// One line such as `2 pools, 5 hosts; receiver mode observe`.
    pub fn summary(&self) -> String {
        format!(
            "{}, {}; receiver mode {}",
            plural(self.pools.len(), "pool"),
            plural(self.host_count(), "host"),
            self.receiver.mode
        )
    }
}

/// One resource pool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolConfig {
    /// Unique name, `[a-z0-9_-]`, used in metric labels and alerts.
    pub name: String,
    /// Management addresses (IP or DNS name) of the pool's hosts; any of them may be the master.
    pub hosts: Vec<String>,
    /// XAPI port on every host.
    pub port: u16,
    /// `https` (default) or `http`.
    pub scheme: Scheme,
    /// Certificate verification.
    pub tls: TlsConfig,
    /// XAPI user name.
    pub username: String,
    /// Where the password comes from.
    pub credentials: Credentials,
    /// Client timeouts.
    pub timeouts: PoolTimeouts,
    /// Which resource metric families are published for this pool.
    pub resource_metrics: ResourceMetrics,
}

/// `pools[].resource_metrics`: which resource families a pool publishes, as node_exporter's
/// collectors are switched on and off. A pattern is a family name or a prefix ending in `*`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceMetrics {
    /// Only these families (`None`: every family).
    pub allow: Option<Vec<String>>,
    /// Never these, even when allowed.
    pub deny: Vec<String>,
    /// Data sources the mapping does not know go to `xen_<class>_rrd_value{source=…}`
    /// instead of being dropped.
    pub unknown_sources: UnknownSources,
}

/// What happens to a data source xenguard's mapping does not know.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownSources {
    /// Not published (the default: a host has dozens of them, guests more).
    #[default]
    Drop,
    /// Published raw, under one generic family per class with the name as a label.
    Generic,
}

impl ResourceMetrics {
    /// Whether the family is published.
    pub fn publishes(&self, family: &str) -> bool {
        let matches = |pattern: &String| match pattern.strip_suffix('*') {
            Some(prefix) => family.starts_with(prefix),
            None => family == pattern,
        };
        self.allow
            .as_ref()
            .is_none_or(|allow| allow.iter().any(matches))
            && !self.deny.iter().any(matches)
    }
}

impl PoolConfig {
    /// Reads the pool's password from its file (one trailing newline removed) or environment
    /// variable. Call it when logging in, not at start-up, so a rotated file is picked up.
    pub fn password(&self) -> Result<Secret, ConfigError> {
        match &self.credentials {
            Credentials::File(path) => read_secret_file(path),
            Credentials::Env(name) => read_secret_env(name),
        }
    }
}

/// Where a pool's password comes from. There is deliberately no inline variant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credentials {
    /// A file holding the password (one trailing newline is ignored).
    File(PathBuf),
    /// The name of an environment variable holding the password.
    Env(String),
}

/// XAPI transport scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// HTTP over TLS (the default).
    #[default]
    Https,
    /// Plain HTTP: the password crosses the network in clear text (the simulator uses it).
    Http,
}

impl Scheme {
    /// `https` or `http`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Https => "https",
            Scheme::Http => "http",
        }
    }

    /// The port used when the pool does not set one.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Https => defaults::HTTPS_PORT,
            Scheme::Http => defaults::HTTP_PORT,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Certificate verification for a pool.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TlsConfig {
    /// PEM bundle of CAs to trust instead of the system store.
    pub ca_file: Option<PathBuf>,
    /// SHA-256 certificate fingerprints by host address (as written in `hosts`), upper-case and
    /// colon-separated like xapi's `Certificate.fingerprint_sha256`.
    pub pins: BTreeMap<String, String>,
    /// Accept any certificate. Never together with `ca_file` or `pins`; loudly logged.
    pub insecure_skip_verify: bool,
}

/// Client timeouts for a pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolTimeouts {
    /// TCP/TLS connect timeout.
    pub connect: Duration,
    /// Timeout of an ordinary XAPI call.
    pub call: Duration,
    /// Timeout of `Async.VM.start` (the synchronous call can block for hours).
    pub start_vm: Duration,
}

impl Default for PoolTimeouts {
    fn default() -> Self {
        PoolTimeouts {
            connect: Duration::from_secs(defaults::CONNECT_SECONDS),
            call: Duration::from_secs(defaults::CALL_SECONDS),
            start_vm: Duration::from_secs(defaults::START_VM_SECONDS),
        }
    }
}

/// The exporter's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExporterConfig {
    /// Address of `/metrics`.
    pub listen: SocketAddr,
    /// How often every host is probed directly.
    pub probe_interval: Duration,
    /// Timeout of one probe.
    pub probe_timeout: Duration,
    /// Server-side timeout of one `event.from` call.
    pub event_timeout: Duration,
    /// Shortest time between the starts of two `event.from` calls: changes that happen
    /// meanwhile are fetched together, in one call.
    pub event_min_interval: Duration,
    /// How often every host's `/rrd_updates` is read; zero: never.
    pub rrd_interval: Duration,
}

impl Default for ExporterConfig {
    fn default() -> Self {
        ExporterConfig {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, defaults::EXPORTER_PORT)),
            probe_interval: Duration::from_secs(defaults::PROBE_INTERVAL_SECONDS),
            probe_timeout: Duration::from_secs(defaults::PROBE_TIMEOUT_SECONDS),
            event_timeout: Duration::from_secs(defaults::EVENT_TIMEOUT_SECONDS),
            event_min_interval: Duration::from_secs(defaults::EVENT_MIN_INTERVAL_SECONDS),
            rrd_interval: Duration::from_secs(defaults::RRD_INTERVAL_SECONDS),
        }
    }
}

/// What the receiver may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Plan and journal only (the default).
    #[default]
    Observe,
    /// Wait for `xenguard journal approve ID` before acting.
    Approve,
    /// Act on its own (after confirmation and fencing).
    Auto,
}

impl Mode {
    /// `observe`, `approve` or `auto`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Observe => "observe",
            Mode::Approve => "approve",
            Mode::Auto => "auto",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The webhook receiver's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverConfig {
    /// Address of `POST /alertmanager`.
    pub listen: SocketAddr,
    /// `observe`, `approve` or `auto`.
    pub mode: Mode,
    /// How Alertmanager authenticates (required unless `mode` is `observe`).
    pub auth: Option<ReceiverAuth>,
    /// TLS on the listener (plain HTTP when absent).
    pub tls: Option<ReceiverTls>,
    /// SQLite journal.
    pub journal_path: PathBuf,
    /// While this file exists, the receiver takes no action.
    pub kill_switch_file: Option<PathBuf>,
    /// `GET /remediations` asks for the same credentials as the webhook (it shows addresses,
    /// names and fence output).
    pub auth_reads: bool,
    /// Largest accepted webhook body.
    pub max_body_bytes: u64,
    /// How long the suspect host is probed before it is believed down.
    pub confirm_window: Duration,
    /// How many probes within that window must all fail.
    pub confirm_probes: u32,
    /// How long a host that refuses connections (up, xapi down) must keep refusing before it
    /// is believed dead.
    pub refused_grace: Duration,
    /// How long recovered slaves are waited for to rejoin the promoted master.
    pub rejoin_wait: Duration,
    /// A host fenced before is no start target until it has been up this long (0: never held).
    pub rejoin_healthy: Duration,
    /// The term of the lease a receiver writes into the pool before acting (renewed before
    /// each step); a lease left by a receiver that died blocks others this long.
    pub pool_lease: Duration,
    /// An operator's attestation older than this is refused.
    pub attestation_max_age: Duration,
    /// The longest one recovery call (declare_dead, a VM reset, recover_slaves) is waited for.
    pub step_timeout: Duration,
    /// No action for this long after the receiver starts.
    pub startup_quiet: Duration,
    /// No second remediation for the same host within this time.
    pub host_cooldown: Duration,
    /// At most this many fences per pool per window.
    pub fence_budget: FenceBudget,
    /// When too many of a pool's hosts fail together, stand down.
    pub storm: StormLimit,
}

impl Default for ReceiverConfig {
    fn default() -> Self {
        ReceiverConfig {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, defaults::RECEIVER_PORT)),
            mode: Mode::Observe,
            auth: None,
            tls: None,
            journal_path: PathBuf::from(defaults::JOURNAL_PATH),
            kill_switch_file: None,
            auth_reads: false,
            max_body_bytes: defaults::MAX_BODY_BYTES,
            confirm_window: Duration::from_secs(defaults::CONFIRM_WINDOW_SECONDS),
            confirm_probes: defaults::CONFIRM_PROBES,
            refused_grace: Duration::from_secs(defaults::REFUSED_GRACE_SECONDS),
            rejoin_wait: Duration::from_secs(defaults::REJOIN_WAIT_SECONDS),
            rejoin_healthy: Duration::from_secs(defaults::REJOIN_HEALTHY_SECONDS),
            pool_lease: Duration::from_secs(defaults::POOL_LEASE_SECONDS),
            attestation_max_age: Duration::from_secs(defaults::ATTESTATION_MAX_AGE_SECONDS),
            step_timeout: Duration::from_secs(defaults::STEP_TIMEOUT_SECONDS),
            startup_quiet: Duration::from_secs(defaults::STARTUP_QUIET_SECONDS),
            host_cooldown: Duration::from_secs(defaults::HOST_COOLDOWN_SECONDS),
            fence_budget: FenceBudget::default(),
            storm: StormLimit::default(),
        }
    }
}

/// How Alertmanager authenticates to the receiver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReceiverAuth {
    /// `Authorization: Bearer <token>`, the token read from a file.
    Bearer {
        /// File holding the token.
        token_file: PathBuf,
    },
    /// HTTP basic authentication, the password read from a file.
    Basic {
        /// Expected user name.
        username: String,
        /// File holding the password.
        password_file: PathBuf,
    },
}

/// TLS on the receiver's listener; with `client_ca_file`, mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceiverTls {
    /// PEM certificate chain the receiver presents, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key of the leaf certificate.
    pub key_file: PathBuf,
    /// PEM bundle of CAs: when set, every client must present a certificate signed by one.
    pub client_ca_file: Option<PathBuf>,
}

/// The storm limit: more than `max_unhealthy` of a pool's hosts unhealthy within `window` is
/// not the hosts failing but the network, the storage or the receiver: every remediation of
/// the pool stands down, and none fences for `cooldown` after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StormLimit {
    /// How many unhealthy hosts are still believed.
    pub max_unhealthy: MaxUnhealthy,
    /// How far back a host counts as unhealthy (an alert about it, or a failed probe now).
    pub window: Duration,
    /// No fence in the pool for this long after a stand-down.
    pub cooldown: Duration,
}

impl Default for StormLimit {
    fn default() -> Self {
        StormLimit {
            max_unhealthy: MaxUnhealthy::Percent(defaults::MAX_UNHEALTHY_PERCENT),
            window: Duration::from_secs(defaults::STORM_WINDOW_SECONDS),
            cooldown: Duration::from_secs(defaults::STORM_COOLDOWN_SECONDS),
        }
    }
}

/// `receiver.storm.max_unhealthy`: a count of hosts, or a percentage of the pool's hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxUnhealthy {
    /// At most this many hosts.
    Count(u32),
    /// At most this percentage of the pool's hosts, rounded down.
    Percent(u32),
}

impl MaxUnhealthy {
    /// How many unhealthy hosts of a pool of `hosts` are still believed.
    pub fn allowed(self, hosts: usize) -> usize {
        match self {
            MaxUnhealthy::Count(n) => n as usize,
            MaxUnhealthy::Percent(p) => hosts * p as usize / 100,
        }
    }
}

impl std::fmt::Display for MaxUnhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxUnhealthy::Count(n) => write!(f, "{n}"),
            MaxUnhealthy::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// Fence budget per pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FenceBudget {
    /// Fences allowed per window.
    pub max_fences: u32,
    /// Length of the sliding window.
    pub window: Duration,
}

impl Default for FenceBudget {
    fn default() -> Self {
        FenceBudget {
            max_fences: defaults::MAX_FENCES,
            window: Duration::from_secs(defaults::FENCE_WINDOW_SECONDS),
        }
    }
}

/// Fence agents, one entry per host that can be fenced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FencingConfig {
    /// Time limit of one agent run.
    pub agent_timeout: Duration,
    /// The hosts that can be fenced.
    pub hosts: Vec<FenceHost>,
}

impl Default for FencingConfig {
    fn default() -> Self {
        FencingConfig {
            agent_timeout: Duration::from_secs(defaults::AGENT_TIMEOUT_SECONDS),
            hosts: Vec::new(),
        }
    }
}

impl FencingConfig {
    /// The fence entry for a host of a pool, if one is configured.
    pub fn for_host(&self, pool: &str, host: &str) -> Option<&FenceHost> {
        self.hosts
            .iter()
            .find(|entry| entry.pool == pool && entry.host == host)
    }
}

/// How to fence one host: ordered levels (Pacemaker's fencing topology). The next level is
/// tried only when one fails; a level succeeds when every one of its agents powered its device
/// off and read it back off (a dual-PSU host behind two outlets is one level of two agents).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceHost {
    /// Name of the pool the host belongs to.
    pub pool: String,
    /// The host: its address, name label or uuid.
    pub host: String,
    /// The levels, first tried first; never empty.
    pub levels: Vec<FenceLevel>,
}

/// One fencing level: agents that must all succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceLevel {
    /// Its agents, run in this order; never empty.
    pub agents: Vec<FenceDevice>,
}

/// One fence agent run against one device (the ClusterLabs fence-agents contract: `key=value`
/// lines on stdin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceDevice {
    /// Agent program name (looked up in `PATH`) or path, e.g. `fence_ipmilan`.
    pub agent: String,
    /// Arguments written to the agent's stdin as `key=value` (xenguard adds `action`).
    pub args: BTreeMap<String, String>,
    /// File whose content becomes the `password` argument.
    pub password_file: Option<PathBuf>,
}

impl FenceDevice {
    /// Reads the device's password, when it names a `password_file`.
    pub fn password(&self) -> Result<Option<Secret>, ConfigError> {
        self.password_file
            .as_deref()
            .map(read_secret_file)
            .transpose()
    }
}

/// A password or token. `Debug` prints `***` and there is no `Display`, so it cannot end up in
/// a log line by accident; [`Secret::expose`] is the one way to the content.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Reads a secret from a file, removing one trailing newline (`\n` or `\r\n`).
pub fn read_secret_file(path: &Path) -> Result<Secret, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::SecretFile {
        path: path.to_path_buf(),
        source,
    })?;
    let value = text
        .strip_suffix('\n')
        .map(|rest| rest.strip_suffix('\r').unwrap_or(rest))
        .unwrap_or(&text);
    if value.is_empty() {
        return Err(ConfigError::EmptySecret {
            origin: format!("file {}", path.display()),
        });
    }
    Ok(Secret::new(value))
}

/// Reads a secret from an environment variable.
pub fn read_secret_env(name: &str) -> Result<Secret, ConfigError> {
    let value = std::env::var(name).map_err(|_| ConfigError::SecretEnv {
        name: name.to_owned(),
    })?;
    if value.is_empty() {
        return Err(ConfigError::EmptySecret {
            origin: format!("environment variable {name}"),
        });
    }
    Ok(Secret::new(value))
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}
