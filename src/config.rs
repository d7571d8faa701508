//! The configuration file: one YAML document, validated as a whole.
//!
//! [`load`] and [`parse`] return a validated [`Config`], or a [`ConfigErrors`] holding *every*
//! problem found, each with `file:line:column`. `xenguard check-config FILE`
//! ([`check_config_command`]) prints them, one per line, and exits 1; on success it prints a
//! one-line summary and exits 0. `tests/fixtures/config/example.yml` documents every key.
//!
//! # How every error is reported at once
//!
//! A serde deserializer stops at the first error, so the file is not handed to one directly.
//! Three steps, with the schema stated once (the `Raw*` structs below):
//!
//! 1. **A located tree.** serde-saphyr's own YAML parser (`granit-parser`, re-exported as
//!    [`serde_saphyr::granit_parser`], so no extra dependency) turns the text into a small tree
//!    whose every node knows its line and column. Anchors and aliases are expanded, `<<` merge
//!    keys applied, duplicate keys and unsupported tags reported. Only a YAML *syntax* error
//!    stops the check here (nothing after it can be trusted).
//! 2. **The schema, by serde.** The `Raw*` structs derive `Deserialize` with
//!    `deny_unknown_fields`; they are the only statement of which keys exist and what type each
//!    has. A small serde `Deserializer` over the tree feeds them and
//!    - reports *every* key a struct does not declare (serde hands it the struct's field list)
//!      and skips it, so unknown keys never stop the run;
//!    - attaches the node's position to each error serde raises (wrong type, bad value, missing
//!      key);
//!    - when serde does stop (a wrong type, say), records the error, hides the offending node and
//!      deserializes again, until it succeeds. A mistake in one pool therefore does not mask a
//!      mistake in the next, and a "missing key" caused by a hidden node is not reported twice.
//! 3. **Semantic checks** run on the raw values, which carry their positions (`Located`).
//!    A check about the *absence* or *combination* of keys (say, `mode: auto` without `auth`) is
//!    skipped for a mapping in which step 2 hid a node, so one mistake does not produce spurious
//!    follow-up errors.
//!
//! Scalars resolve as in YAML 1.2's core schema, driven by the type the schema expects (as
//! serde-saphyr does): `port: 443` is a number; `lanplus: 1` is the string `"1"` where a string
//! is expected; `null`, `~` or nothing means "absent" only where a key is optional, and an empty
//! section (`exporter:`) means "all defaults". A unit test checks that serde-saphyr's own
//! deserializer reads a valid file into the same [`Config`].
//!
//! # Secrets
//!
//! Passwords are never written in the file: a pool names a `password_file` or a `password_env`,
//! and an inline `password` key is rejected with a pointer to those. [`PoolConfig::password`]
//! reads the secret when it is needed; [`Secret`] never prints its content.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use serde::de::{
    self, DeserializeOwned, DeserializeSeed, Deserializer, IntoDeserializer, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde::{Deserialize, Serialize};
use serde_saphyr::granit_parser::{Event, Marker, Parser, ScalarStyle, Span, Tag};

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

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
}

impl Default for ExporterConfig {
    fn default() -> Self {
        ExporterConfig {
            listen: SocketAddr::from((Ipv4Addr::UNSPECIFIED, defaults::EXPORTER_PORT)),
            probe_interval: Duration::from_secs(defaults::PROBE_INTERVAL_SECONDS),
            probe_timeout: Duration::from_secs(defaults::PROBE_TIMEOUT_SECONDS),
            event_timeout: Duration::from_secs(defaults::EVENT_TIMEOUT_SECONDS),
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
            pool_lease: Duration::from_secs(defaults::POOL_LEASE_SECONDS),
            attestation_max_age: Duration::from_secs(defaults::ATTESTATION_MAX_AGE_SECONDS),
            step_timeout: Duration::from_secs(defaults::STEP_TIMEOUT_SECONDS),
            startup_quiet: Duration::from_secs(defaults::STARTUP_QUIET_SECONDS),
            host_cooldown: Duration::from_secs(defaults::HOST_COOLDOWN_SECONDS),
            fence_budget: FenceBudget::default(),
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

/// How to fence one host (the ClusterLabs fence-agents contract: `key=value` lines on stdin).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FenceHost {
    /// Name of the pool the host belongs to.
    pub pool: String,
    /// The host: its address, name label or uuid.
    pub host: String,
    /// Agent program name (looked up in `PATH`) or path, e.g. `fence_ipmilan`.
    pub agent: String,
    /// Arguments written to the agent's stdin as `key=value` (xenguard adds `action`).
    pub args: BTreeMap<String, String>,
    /// File whose content becomes the `password` argument.
    pub password_file: Option<PathBuf>,
}

impl FenceHost {
    /// Reads the BMC password, when the entry names a `password_file`.
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

/// Errors of this module.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A problem at a place in the configuration file.
    #[error("{file}:{line}:{column}: {message}")]
    Invalid {
        /// The file name as given.
        file: String,
        /// 1-based line.
        line: usize,
        /// 1-based column (in characters).
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// The configuration file could not be read.
    #[error("{file}: cannot read: {source}")]
    Read {
        /// The file name as given.
        file: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A password or token file could not be read.
    #[error("cannot read secret file {}: {source}", path.display())]
    SecretFile {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A password or token source holds nothing.
    #[error("{origin} is empty")]
    EmptySecret {
        /// `file PATH` or `environment variable NAME`.
        origin: String,
    },
    /// A password environment variable is not set (or not UTF-8).
    #[error("environment variable {name} is not set or not valid UTF-8")]
    SecretEnv {
        /// The variable's name.
        name: String,
    },
}

/// Every error found in a configuration file, in file order; `Display` prints one per line.
#[derive(Debug)]
pub struct ConfigErrors(Vec<ConfigError>);

impl ConfigErrors {
    /// The errors, in file order.
    pub fn errors(&self) -> &[ConfigError] {
        &self.0
    }

    /// Number of errors (at least one when returned by [`parse`] or [`load`]).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no error.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, error) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{error}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl IntoIterator for ConfigErrors {
    type Item = ConfigError;
    type IntoIter = std::vec::IntoIter<ConfigError>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| {
        ConfigErrors(vec![ConfigError::Read {
            file: file.clone(),
            source,
        }])
    })?;
    parse(&text, &file)
}

/// Validates the text of a configuration file; `file_name` only prefixes the messages.
pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    let report = analyse(text);
    let errors: Vec<ConfigError> = report
        .problems
        .iter()
        .filter(|problem| problem.severity == Severity::Error)
        .map(|problem| problem.to_error(file_name))
        .collect();
    match report.config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(ConfigErrors(errors)),
    }
}

/// `xenguard check-config FILE`: prints every error (and warning) as `FILE:LINE:COLUMN: ...` on
/// stderr and exits 1, or prints `FILE: ok (summary)` on stdout and exits 0.
pub fn check_config_command(file: &Path) -> ExitCode {
    let name = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(source) => {
            eprintln!("{}", ConfigError::Read { file: name, source });
            return ExitCode::FAILURE;
        }
    };
    let report = analyse(&text);
    for problem in &report.problems {
        eprintln!("{}", problem.render(&name));
    }
    match report.config {
        Some(config) if !report.has_errors() => {
            println!("{name}: ok ({})", config.summary());
            ExitCode::SUCCESS
        }
        _ => ExitCode::FAILURE,
    }
}

// ---------------------------------------------------------------------------------------------
// Diagnostics
// ---------------------------------------------------------------------------------------------

/// A 1-based line and column; `0:0` when unknown (values not read from a located tree).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
struct Pos {
    line: usize,
    column: usize,
}

impl Pos {
    fn of(marker: &Marker) -> Pos {
        Pos {
            line: marker.line(),
            column: marker.col() + 1,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Severity {
    Error,
    Warning,
}

/// Ordered by position, then errors before warnings.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Problem {
    pos: Pos,
    severity: Severity,
    message: String,
}

impl Problem {
    fn error(pos: Pos, message: impl Into<String>) -> Problem {
        Problem {
            pos,
            severity: Severity::Error,
            message: message.into(),
        }
    }

    fn warning(pos: Pos, message: impl Into<String>) -> Problem {
        Problem {
            pos,
            severity: Severity::Warning,
            message: message.into(),
        }
    }

    fn render(&self, file: &str) -> String {
        match self.severity {
            Severity::Error => self.to_error(file).to_string(),
            Severity::Warning => format!(
                "{file}:{}:{}: warning: {}",
                self.pos.line, self.pos.column, self.message
            ),
        }
    }

    fn to_error(&self, file: &str) -> ConfigError {
        ConfigError::Invalid {
            file: file.to_owned(),
            line: self.pos.line,
            column: self.pos.column,
            message: self.message.clone(),
        }
    }
}

/// Everything the three steps found.
struct Report {
    config: Option<Config>,
    /// Sorted by position.
    problems: Vec<Problem>,
}

impl Report {
    fn has_errors(&self) -> bool {
        self.problems
            .iter()
            .any(|problem| problem.severity == Severity::Error)
    }
}

fn analyse(text: &str) -> Report {
    let (root, tree_problems, poisoned) = match build_tree(text) {
        Ok(built) => built,
        Err(fatal) => {
            return Report {
                config: None,
                problems: vec![fatal],
            };
        }
    };
    let (raw, mut problems, hidden) = deserialize_all::<RawConfig>(&root, poisoned);
    problems.extend(tree_problems);
    let config = raw.map(|raw| {
        let mut checker = Checker {
            problems: Vec::new(),
            hidden,
        };
        let config = checker.config(&raw);
        problems.extend(checker.problems);
        config
    });
    Report {
        config,
        problems: problems.into_iter().collect(),
    }
}

// ---------------------------------------------------------------------------------------------
// Step 2's input: the schema (the only place that says which keys exist and their types)
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "the top level",
    expecting = "a mapping with `pools` and optionally `exporter`, `receiver`, `fencing`"
)]
struct RawConfig {
    pools: Located<Vec<Located<RawPool>>>,
    exporter: Option<Located<RawExporter>>,
    receiver: Option<Located<RawReceiver>>,
    fencing: Option<Located<RawFencing>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "a pool",
    expecting = "a pool (a mapping)"
)]
struct RawPool {
    name: Located<String>,
    hosts: Located<Vec<Located<String>>>,
    port: Option<Located<u16>>,
    scheme: Option<Located<Scheme>>,
    tls: Option<Located<RawTls>>,
    username: Option<Located<String>>,
    password_file: Option<Located<PathBuf>>,
    password_env: Option<Located<String>>,
    timeouts: Option<Located<RawTimeouts>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "`tls`", expecting = "a mapping")]
struct RawTls {
    ca_file: Option<Located<PathBuf>>,
    pins: Option<Located<LocatedMap<Located<String>>>>,
    insecure_skip_verify: Option<Located<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "`timeouts`", expecting = "a mapping")]
struct RawTimeouts {
    connect_seconds: Option<Located<u64>>,
    call_seconds: Option<Located<u64>>,
    start_vm_seconds: Option<Located<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "`exporter`", expecting = "a mapping")]
struct RawExporter {
    listen: Option<Located<String>>,
    probe_interval_seconds: Option<Located<u64>>,
    probe_timeout_seconds: Option<Located<u64>>,
    event_timeout_seconds: Option<Located<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "`receiver`", expecting = "a mapping")]
struct RawReceiver {
    listen: Option<Located<String>>,
    mode: Option<Located<Mode>>,
    auth: Option<Located<RawAuth>>,
    tls: Option<Located<RawReceiverTls>>,
    journal_path: Option<Located<PathBuf>>,
    kill_switch_file: Option<Located<PathBuf>>,
    auth_reads: Option<Located<bool>>,
    max_body_bytes: Option<Located<u64>>,
    confirm_window_seconds: Option<Located<u64>>,
    confirm_probes: Option<Located<u32>>,
    refused_grace_seconds: Option<Located<u64>>,
    rejoin_wait_seconds: Option<Located<u64>>,
    pool_lease_seconds: Option<Located<u64>>,
    attestation_max_age_seconds: Option<Located<u64>>,
    step_timeout_seconds: Option<Located<u64>>,
    startup_quiet_seconds: Option<Located<u64>>,
    host_cooldown_seconds: Option<Located<u64>>,
    fence_budget: Option<Located<RawFenceBudget>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "`receiver.auth`",
    expecting = "a mapping"
)]
struct RawAuth {
    bearer_token_file: Option<Located<PathBuf>>,
    basic: Option<Located<RawBasicAuth>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "`receiver.auth.basic`",
    expecting = "a mapping with `username` and `password_file`"
)]
struct RawBasicAuth {
    username: Located<String>,
    password_file: Located<PathBuf>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "`receiver.tls`",
    expecting = "a mapping with `cert_file` and `key_file`"
)]
struct RawReceiverTls {
    cert_file: Located<PathBuf>,
    key_file: Located<PathBuf>,
    client_ca_file: Option<Located<PathBuf>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "`receiver.fence_budget`",
    expecting = "a mapping"
)]
struct RawFenceBudget {
    max_fences: Option<Located<u32>>,
    window_seconds: Option<Located<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "`fencing`", expecting = "a mapping")]
struct RawFencing {
    agent_timeout_seconds: Option<Located<u64>>,
    hosts: Option<Located<Vec<Located<RawFenceHost>>>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "a fencing host",
    expecting = "a mapping with `pool`, `host`, `agent`"
)]
struct RawFenceHost {
    pool: Located<String>,
    host: Located<String>,
    agent: Located<String>,
    args: Option<Located<LocatedMap<Located<String>>>>,
    password_file: Option<Located<PathBuf>>,
}

/// A value with the position and node ids of the YAML node it came from.
#[derive(Debug, Clone)]
struct Located<T> {
    value: T,
    pos: Pos,
    /// Preorder ids of the node and its descendants: `first..=last` (empty when unknown).
    first: usize,
    last: usize,
}

impl<T> Located<T> {
    fn unlocated(value: T) -> Self {
        Located {
            value,
            pos: Pos::default(),
            first: 1,
            last: 0,
        }
    }
}

/// The newtype name by which [`Located`] asks the tree deserializer for its position.
const LOCATED: &str = "$xenguard::config::Located";

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LocatedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for LocatedVisitor<T> {
            type Value = Located<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a located value")
            }

            // The tree deserializer: line, column, first id, last id, value.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut numbers = [0usize; 4];
                for (index, number) in numbers.iter_mut().enumerate() {
                    let value: u64 = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(index, &self))?;
                    *number = usize::try_from(value).map_err(de::Error::custom)?;
                }
                let value = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(4, &self))?;
                let [line, column, first, last] = numbers;
                Ok(Located {
                    value,
                    pos: Pos { line, column },
                    first,
                    last,
                })
            }

            // Any other deserializer: the value without a position.
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Self::Value, D::Error> {
                T::deserialize(deserializer).map(Located::unlocated)
            }
        }

        deserializer.deserialize_newtype_struct(LOCATED, LocatedVisitor(PhantomData))
    }
}

/// A mapping with located string keys, in file order (duplicates are rejected by the tree).
#[derive(Debug, Clone)]
struct LocatedMap<V>(Vec<(Located<String>, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for LocatedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = LocatedMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(LocatedMap(entries))
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}

// ---------------------------------------------------------------------------------------------
// Step 3: semantic checks, raw -> Config
// ---------------------------------------------------------------------------------------------

struct Checker {
    problems: Vec<Problem>,
    /// Nodes hidden by step 2 (their values were replaced by defaults).
    hidden: HashSet<usize>,
}

impl Checker {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.problems.push(Problem::error(pos, message));
    }

    fn warning(&mut self, pos: Pos, message: impl Into<String>) {
        self.problems.push(Problem::warning(pos, message));
    }

    /// True when step 2 hid a node inside this value: checks about absent or combined keys
    /// are skipped there.
    fn tainted<T>(&self, value: &Located<T>) -> bool {
        self.hidden
            .iter()
            .any(|id| (value.first..=value.last).contains(id))
    }

    fn seconds(&mut self, value: Option<&Located<u64>>, key: &str, default: u64) -> Duration {
        match value {
            None => Duration::from_secs(default),
            Some(value) => {
                if value.value == 0 {
                    self.error(value.pos, format!("`{key}` must be at least 1"));
                }
                self.seconds_or_zero(Some(value), key, default)
            }
        }
    }

    fn seconds_or_zero(
        &mut self,
        value: Option<&Located<u64>>,
        key: &str,
        default: u64,
    ) -> Duration {
        match value {
            None => Duration::from_secs(default),
            Some(value) => {
                if value.value > defaults::MAX_SECONDS {
                    self.error(
                        value.pos,
                        format!(
                            "`{key}` must be at most {} (one year), got {}",
                            defaults::MAX_SECONDS,
                            value.value
                        ),
                    );
                }
                Duration::from_secs(value.value)
            }
        }
    }

    fn positive<T: Copy + PartialEq + Default>(
        &mut self,
        value: Option<&Located<T>>,
        key: &str,
        default: T,
    ) -> T {
        match value {
            None => default,
            Some(value) => {
                if value.value == T::default() {
                    self.error(value.pos, format!("`{key}` must be at least 1"));
                }
                value.value
            }
        }
    }

    fn listen(&mut self, value: Option<&Located<String>>, default: SocketAddr) -> SocketAddr {
        let Some(value) = value else { return default };
        match value.value.parse::<SocketAddr>() {
            Ok(address) => address,
            Err(_) => {
                self.error(
                    value.pos,
                    format!(
                        "`listen` must be an IP address and port such as `0.0.0.0:{}` or \
                         `[::]:{}`, got `{}`",
                        default.port(),
                        default.port(),
                        value.value
                    ),
                );
                default
            }
        }
    }

    fn path(&mut self, value: &Located<PathBuf>, key: &str) -> PathBuf {
        if value.value.as_os_str().is_empty() {
            self.error(value.pos, format!("`{key}` must not be empty"));
        }
        value.value.clone()
    }

    fn non_empty(&mut self, value: &Located<String>, key: &str) -> String {
        if value.value.trim().is_empty() {
            self.error(value.pos, format!("`{key}` must not be empty"));
        }
        value.value.clone()
    }

    fn config(&mut self, raw: &RawConfig) -> Config {
        let pools = self.pools(&raw.pools);
        let exporter = raw
            .exporter
            .as_ref()
            .map(|exporter| self.exporter(exporter))
            .unwrap_or_default();
        let receiver = raw
            .receiver
            .as_ref()
            .map(|receiver| self.receiver(receiver))
            .unwrap_or_default();
        if exporter.listen == receiver.listen {
            let pos = raw
                .receiver
                .as_ref()
                .and_then(|receiver| receiver.value.listen.as_ref())
                .or_else(|| raw.exporter.as_ref().and_then(|e| e.value.listen.as_ref()))
                .map_or(Pos::default(), |listen| listen.pos);
            self.warning(
                pos,
                format!(
                    "exporter and receiver both listen on {}; `xenguard serve` cannot run both",
                    receiver.listen
                ),
            );
        }
        let pool_names = (!self.tainted(&raw.pools)).then(|| {
            pools
                .iter()
                .map(|pool| pool.name.clone())
                .collect::<Vec<_>>()
        });
        let fencing = raw
            .fencing
            .as_ref()
            .map(|fencing| {
                let acting = receiver.mode != Mode::Observe;
                self.fencing(fencing, pool_names.as_deref(), acting)
            })
            .unwrap_or_default();
        if receiver.mode != Mode::Observe
            && let Some(mode) = raw.receiver.as_ref().and_then(|r| r.value.mode.as_ref())
        {
            for pool in &pools {
                if !fencing.hosts.iter().any(|entry| entry.pool == pool.name) {
                    self.warning(
                        mode.pos,
                        format!(
                            "mode `{}` but no fence agent is configured for pool `{}`: its hosts \
                             are recovered only after an operator attestation",
                            receiver.mode, pool.name
                        ),
                    );
                }
            }
        }
        Config {
            pools,
            exporter,
            receiver,
            fencing,
        }
    }

    fn pools(&mut self, raw: &Located<Vec<Located<RawPool>>>) -> Vec<PoolConfig> {
        if raw.value.is_empty() && !self.tainted(raw) {
            self.error(raw.pos, "`pools` must list at least one pool");
        }
        let mut names: HashMap<String, Pos> = HashMap::new();
        let mut host_owner: HashMap<String, (String, Pos)> = HashMap::new();
        let mut pools = Vec::new();
        for pool in &raw.value {
            let name = &pool.value.name;
            if let Some(first) = names.get(&name.value) {
                self.error(
                    name.pos,
                    format!(
                        "duplicate pool name `{}` (first used on line {})",
                        name.value, first.line
                    ),
                );
            } else {
                names.insert(name.value.clone(), name.pos);
            }
            let config = self.pool(pool);
            for (host, raw_host) in config.hosts.iter().zip(&pool.value.hosts.value) {
                match host_owner.get(&host_key(host)) {
                    Some((owner, first)) if *owner != config.name => self.error(
                        raw_host.pos,
                        format!(
                            "host `{host}` is already listed in pool `{owner}` (line {})",
                            first.line
                        ),
                    ),
                    _ => {
                        host_owner.insert(host_key(host), (config.name.clone(), raw_host.pos));
                    }
                }
            }
            pools.push(config);
        }
        pools
    }

    fn pool(&mut self, located: &Located<RawPool>) -> PoolConfig {
        let raw = &located.value;
        let name = raw.name.value.clone();
        if !valid_pool_name(&name) {
            self.error(
                raw.name.pos,
                format!(
                    "pool name `{name}` must be 1 to 63 characters from `a-z`, `0-9`, `_` and `-`"
                ),
            );
        }

        if raw.hosts.value.is_empty() && !self.tainted(&raw.hosts) {
            self.error(
                raw.hosts.pos,
                format!("pool `{name}` needs at least one host"),
            );
        }
        let mut seen: HashMap<String, Pos> = HashMap::new();
        let mut hosts = Vec::new();
        for host in &raw.hosts.value {
            if let Err(why) = check_address(&host.value) {
                self.error(host.pos, format!("host `{}` {why}", host.value));
            }
            if let Some(first) = seen.get(&host_key(&host.value)) {
                self.error(
                    host.pos,
                    format!(
                        "host `{}` is listed twice (first on line {})",
                        host.value, first.line
                    ),
                );
                continue;
            }
            seen.insert(host_key(&host.value), host.pos);
            hosts.push(host.value.clone());
        }

        let scheme = raw.scheme.as_ref().map_or(Scheme::Https, |s| s.value);
        if let Some(scheme) = raw.scheme.as_ref().filter(|s| s.value == Scheme::Http) {
            self.warning(
                scheme.pos,
                format!("pool `{name}` uses plain HTTP: its password crosses the network in clear"),
            );
        }
        let port = match &raw.port {
            None => scheme.default_port(),
            Some(port) => {
                if port.value == 0 {
                    self.error(port.pos, "`port` must be between 1 and 65535");
                }
                port.value
            }
        };

        let tls = match &raw.tls {
            None => TlsConfig::default(),
            Some(tls) => self.tls(tls, scheme, &name, &hosts),
        };

        let username = match &raw.username {
            None => defaults::USERNAME.to_owned(),
            Some(username) => self.non_empty(username, "username"),
        };

        let credentials = match (&raw.password_file, &raw.password_env) {
            (Some(file), None) => Credentials::File(self.path(file, "password_file")),
            (None, Some(env)) => {
                if !valid_env_name(&env.value) {
                    self.error(
                        env.pos,
                        format!(
                            "`password_env` must be an environment variable name \
                             (letters, digits, `_`, not starting with a digit), got `{}`",
                            env.value
                        ),
                    );
                }
                Credentials::Env(env.value.clone())
            }
            (Some(file), Some(env)) => {
                let later = if env.pos > file.pos {
                    env.pos
                } else {
                    file.pos
                };
                self.error(
                    later,
                    format!("pool `{name}` sets both `password_file` and `password_env`; keep one"),
                );
                Credentials::File(file.value.clone())
            }
            (None, None) => {
                if !self.tainted(located) {
                    self.error(
                        located.pos,
                        format!(
                            "pool `{name}` needs `password_file` or `password_env` \
                             (passwords are never written in this file)"
                        ),
                    );
                }
                Credentials::Env(String::new())
            }
        };

        let timeouts = match &raw.timeouts {
            None => PoolTimeouts::default(),
            Some(timeouts) => {
                let t = &timeouts.value;
                PoolTimeouts {
                    connect: self.seconds(
                        t.connect_seconds.as_ref(),
                        "connect_seconds",
                        defaults::CONNECT_SECONDS,
                    ),
                    call: self.seconds(
                        t.call_seconds.as_ref(),
                        "call_seconds",
                        defaults::CALL_SECONDS,
                    ),
                    start_vm: self.seconds(
                        t.start_vm_seconds.as_ref(),
                        "start_vm_seconds",
                        defaults::START_VM_SECONDS,
                    ),
                }
            }
        };

        PoolConfig {
            name,
            hosts,
            port,
            scheme,
            tls,
            username,
            credentials,
            timeouts,
        }
    }

    fn tls(
        &mut self,
        tls: &Located<RawTls>,
        scheme: Scheme,
        pool: &str,
        hosts: &[String],
    ) -> TlsConfig {
        let raw = &tls.value;
        if scheme == Scheme::Http {
            self.error(
                tls.pos,
                format!(
                    "pool `{pool}` uses `scheme: http`, so its `tls` settings would be ignored"
                ),
            );
        }
        let ca_file = raw
            .ca_file
            .as_ref()
            .map(|ca_file| self.path(ca_file, "ca_file"));
        let mut pins = BTreeMap::new();
        if let Some(raw_pins) = &raw.pins {
            for (address, fingerprint) in &raw_pins.value.0 {
                let Some(host) = hosts
                    .iter()
                    .find(|host| host_key(host) == host_key(&address.value))
                else {
                    self.error(
                        address.pos,
                        format!(
                            "pin for `{}`, which is not in pool `{pool}`'s `hosts`",
                            address.value
                        ),
                    );
                    continue;
                };
                match normalise_fingerprint(&fingerprint.value) {
                    Some(normalised) => {
                        pins.insert(host.clone(), normalised);
                    }
                    None => self.error(
                        fingerprint.pos,
                        format!(
                            "pin for `{}` is not a SHA-256 fingerprint (64 hex digits, \
                             optionally in colon-separated pairs)",
                            address.value
                        ),
                    ),
                }
            }
        }
        let insecure = raw.insecure_skip_verify.as_ref().is_some_and(|v| v.value);
        if let Some(flag) = raw.insecure_skip_verify.as_ref().filter(|v| v.value) {
            let has_pins = raw.pins.as_ref().is_some_and(|p| !p.value.0.is_empty());
            if raw.ca_file.is_some() || has_pins {
                self.error(
                    flag.pos,
                    "`insecure_skip_verify: true` contradicts `ca_file`/`pins`: remove one",
                );
            } else {
                self.warning(
                    flag.pos,
                    format!("pool `{pool}` skips TLS certificate verification"),
                );
            }
        }
        TlsConfig {
            ca_file,
            pins,
            insecure_skip_verify: insecure,
        }
    }

    fn exporter(&mut self, located: &Located<RawExporter>) -> ExporterConfig {
        let raw = &located.value;
        let default = ExporterConfig::default();
        let probe_interval = self.seconds(
            raw.probe_interval_seconds.as_ref(),
            "probe_interval_seconds",
            defaults::PROBE_INTERVAL_SECONDS,
        );
        let probe_timeout = self.seconds(
            raw.probe_timeout_seconds.as_ref(),
            "probe_timeout_seconds",
            defaults::PROBE_TIMEOUT_SECONDS,
        );
        if probe_timeout > probe_interval
            && !probe_interval.is_zero()
            && let Some(pos) = raw
                .probe_timeout_seconds
                .as_ref()
                .or(raw.probe_interval_seconds.as_ref())
                .map(|v| v.pos)
        {
            self.error(
                pos,
                format!(
                    "`probe_timeout_seconds` ({}) must not exceed `probe_interval_seconds` ({})",
                    probe_timeout.as_secs(),
                    probe_interval.as_secs()
                ),
            );
        }
        ExporterConfig {
            listen: self.listen(raw.listen.as_ref(), default.listen),
            probe_interval,
            probe_timeout,
            event_timeout: self.seconds(
                raw.event_timeout_seconds.as_ref(),
                "event_timeout_seconds",
                defaults::EVENT_TIMEOUT_SECONDS,
            ),
        }
    }

    fn receiver(&mut self, located: &Located<RawReceiver>) -> ReceiverConfig {
        let raw = &located.value;
        let default = ReceiverConfig::default();
        let mode = raw.mode.as_ref().map_or(Mode::Observe, |mode| mode.value);
        let auth = raw.auth.as_ref().and_then(|auth| self.auth(auth));
        let tls = raw.tls.as_ref().map(|tls| ReceiverTls {
            cert_file: self.path(&tls.value.cert_file, "cert_file"),
            key_file: self.path(&tls.value.key_file, "key_file"),
            client_ca_file: tls
                .value
                .client_ca_file
                .as_ref()
                .map(|path| self.path(path, "client_ca_file")),
        });
        if let Some(mode) = raw.mode.as_ref().filter(|m| m.value != Mode::Observe)
            && raw.auth.is_none()
            && !self.tainted(located)
        {
            self.error(
                mode.pos,
                format!(
                    "`mode: {}` needs `receiver.auth`: the receiver refuses to act on \
                     unauthenticated webhooks",
                    mode.value
                ),
            );
        }
        let fence_budget = match &raw.fence_budget {
            None => FenceBudget::default(),
            Some(budget) => FenceBudget {
                max_fences: self.positive(
                    budget.value.max_fences.as_ref(),
                    "max_fences",
                    defaults::MAX_FENCES,
                ),
                window: self.seconds(
                    budget.value.window_seconds.as_ref(),
                    "window_seconds",
                    defaults::FENCE_WINDOW_SECONDS,
                ),
            },
        };
        let step_timeout = self.seconds(
            raw.step_timeout_seconds.as_ref(),
            "step_timeout_seconds",
            defaults::STEP_TIMEOUT_SECONDS,
        );
        let pool_lease = self.seconds(
            raw.pool_lease_seconds.as_ref(),
            "pool_lease_seconds",
            defaults::POOL_LEASE_SECONDS,
        );
        let lease_or_step = raw
            .pool_lease_seconds
            .as_ref()
            .or(raw.step_timeout_seconds.as_ref());
        if let Some(lease) = lease_or_step
            && pool_lease <= step_timeout * 2
        {
            // A lease must outlive the step that runs between two renewals, with room to spare.
            self.error(
                lease.pos,
                format!(
                    "`pool_lease_seconds` ({}) must exceed twice `step_timeout_seconds` ({}): a lease that expires while a step runs lets another receiver act",
                    pool_lease.as_secs(),
                    step_timeout.as_secs()
                ),
            );
        }
        ReceiverConfig {
            listen: self.listen(raw.listen.as_ref(), default.listen),
            mode,
            auth,
            tls,
            journal_path: raw
                .journal_path
                .as_ref()
                .map_or(default.journal_path, |path| self.path(path, "journal_path")),
            kill_switch_file: raw
                .kill_switch_file
                .as_ref()
                .map(|path| self.path(path, "kill_switch_file")),
            auth_reads: raw.auth_reads.as_ref().is_some_and(|v| v.value),
            max_body_bytes: self.positive(
                raw.max_body_bytes.as_ref(),
                "max_body_bytes",
                defaults::MAX_BODY_BYTES,
            ),
            confirm_window: self.seconds(
                raw.confirm_window_seconds.as_ref(),
                "confirm_window_seconds",
                defaults::CONFIRM_WINDOW_SECONDS,
            ),
            confirm_probes: self.positive(
                raw.confirm_probes.as_ref(),
                "confirm_probes",
                defaults::CONFIRM_PROBES,
            ),
            refused_grace: self.seconds_or_zero(
                raw.refused_grace_seconds.as_ref(),
                "refused_grace_seconds",
                defaults::REFUSED_GRACE_SECONDS,
            ),
            rejoin_wait: self.seconds_or_zero(
                raw.rejoin_wait_seconds.as_ref(),
                "rejoin_wait_seconds",
                defaults::REJOIN_WAIT_SECONDS,
            ),
            attestation_max_age: self.seconds(
                raw.attestation_max_age_seconds.as_ref(),
                "attestation_max_age_seconds",
                defaults::ATTESTATION_MAX_AGE_SECONDS,
            ),
            step_timeout,
            pool_lease,
            startup_quiet: self.seconds_or_zero(
                raw.startup_quiet_seconds.as_ref(),
                "startup_quiet_seconds",
                defaults::STARTUP_QUIET_SECONDS,
            ),
            host_cooldown: self.seconds(
                raw.host_cooldown_seconds.as_ref(),
                "host_cooldown_seconds",
                defaults::HOST_COOLDOWN_SECONDS,
            ),
            fence_budget,
        }
    }

    fn auth(&mut self, located: &Located<RawAuth>) -> Option<ReceiverAuth> {
        let raw = &located.value;
        match (&raw.bearer_token_file, &raw.basic) {
            (Some(file), None) => Some(ReceiverAuth::Bearer {
                token_file: self.path(file, "bearer_token_file"),
            }),
            (None, Some(basic)) => Some(ReceiverAuth::Basic {
                username: self.non_empty(&basic.value.username, "username"),
                password_file: self.path(&basic.value.password_file, "password_file"),
            }),
            (Some(_), Some(basic)) => {
                self.error(
                    basic.pos,
                    "`receiver.auth` sets both `bearer_token_file` and `basic`; keep one",
                );
                None
            }
            (None, None) => {
                if !self.tainted(located) {
                    self.error(
                        located.pos,
                        "`receiver.auth` needs `bearer_token_file` or `basic`",
                    );
                }
                None
            }
        }
    }

    fn fencing(
        &mut self,
        located: &Located<RawFencing>,
        pools: Option<&[String]>,
        acting: bool,
    ) -> FencingConfig {
        let raw = &located.value;
        let agent_timeout = self.seconds(
            raw.agent_timeout_seconds.as_ref(),
            "agent_timeout_seconds",
            defaults::AGENT_TIMEOUT_SECONDS,
        );
        let mut seen: HashMap<(String, String), Pos> = HashMap::new();
        let mut hosts = Vec::new();
        for entry in raw.hosts.iter().flat_map(|hosts| &hosts.value) {
            let entry = &entry.value;
            if let Some(pools) = pools
                && !pools.contains(&entry.pool.value)
            {
                self.error(
                    entry.pool.pos,
                    format!(
                        "unknown pool `{}` (configured pools: {})",
                        entry.pool.value,
                        pools.join(", ")
                    ),
                );
            }
            let host = self.non_empty(&entry.host, "host");
            if acting && !host.is_empty() && !crate::xapi::records::is_uuid(&host) {
                self.error(
                    entry.host.pos,
                    format!(
                        "`host` must be the host's uuid when the receiver may act (mode approve or auto): a name or address (`{host}`) can come to mean another host after a rename or a reinstall, and its BMC would power off the wrong machine (`xe host-list params=uuid,name-label,address`)"
                    ),
                );
            }
            let key = (entry.pool.value.clone(), host.clone());
            if let Some(first) = seen.get(&key) {
                self.error(
                    entry.host.pos,
                    format!(
                        "host `{host}` of pool `{}` already has a fence agent (line {})",
                        entry.pool.value, first.line
                    ),
                );
            } else {
                seen.insert(key, entry.host.pos);
            }
            if let Err(why) = check_agent(&entry.agent.value) {
                self.error(entry.agent.pos, format!("`agent` {why}"));
            }
            let mut args = BTreeMap::new();
            for (key, value) in entry.args.iter().flat_map(|args| &args.value.0) {
                if let Err(why) = check_fence_arg(&key.value, entry.password_file.is_some()) {
                    self.error(key.pos, why);
                } else if value.value.contains(['\n', '\r', '\0']) {
                    self.error(
                        value.pos,
                        format!(
                            "fence argument `{}` must be a single line (no newline)",
                            key.value
                        ),
                    );
                }
                args.insert(key.value.clone(), value.value.clone());
            }
            hosts.push(FenceHost {
                pool: entry.pool.value.clone(),
                host,
                agent: entry.agent.value.clone(),
                args,
                password_file: entry
                    .password_file
                    .as_ref()
                    .map(|path| self.path(path, "password_file")),
            });
        }
        FencingConfig {
            agent_timeout,
            hosts,
        }
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

fn valid_pool_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn valid_env_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// How two spellings of a host address are compared: IPs by value, names case-insensitively.
fn host_key(host: &str) -> String {
    match host.parse::<IpAddr>() {
        Ok(ip) => ip.to_string(),
        Err(_) => host.trim_end_matches('.').to_ascii_lowercase(),
    }
}

/// Accepts an IP address or a DNS name (RFC 1123); explains what is wrong otherwise.
fn check_address(host: &str) -> Result<(), String> {
    if host.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if host.contains("://") {
        return Err(
            "is a URL; give the host's address only (and `scheme`/`port` if needed)".into(),
        );
    }
    if host.parse::<SocketAddr>().is_ok()
        || host
            .rsplit_once(':')
            .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
    {
        return Err("must be an address without a port (set the pool's `port`)".into());
    }
    if host.starts_with('[') {
        return Err("must be written without brackets".into());
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let labels_ok = !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            (1..=63).contains(&label.len())
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        });
    let numeric_tld = name
        .rsplit('.')
        .next()
        .is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit()));
    if labels_ok && !numeric_tld {
        Ok(())
    } else {
        Err("is neither an IP address nor a valid DNS name".into())
    }
}

/// `ab:cd:..` or `abcd..` (64 hex digits, any case) -> `AB:CD:..`, as xapi prints it.
fn normalise_fingerprint(text: &str) -> Option<String> {
    let hex: String = if text.contains(':') {
        let pairs: Vec<&str> = text.split(':').collect();
        if pairs.len() != 32 || pairs.iter().any(|pair| pair.len() != 2) {
            return None;
        }
        pairs.concat()
    } else {
        text.to_owned()
    };
    if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let upper = hex.to_ascii_uppercase();
    let mut out = String::with_capacity(95);
    for (index, digit) in upper.chars().enumerate() {
        if index > 0 && index % 2 == 0 {
            out.push(':');
        }
        out.push(digit);
    }
    Some(out)
}

fn check_agent(agent: &str) -> Result<(), String> {
    if agent.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if agent.contains('/') {
        return Ok(());
    }
    if agent
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
    {
        Ok(())
    } else {
        Err(format!(
            "must be a program name such as `fence_ipmilan` or a path, got `{agent}`"
        ))
    }
}

fn check_fence_arg(key: &str, has_password_file: bool) -> Result<(), String> {
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "fence argument name `{key}` must be letters, digits, `_` or `-`"
        ));
    }
    match key {
        "action" => Err("fence argument `action` is set by xenguard (off, on, status)".into()),
        "password" | "passwd" => Err(if has_password_file {
            format!("fence argument `{key}` comes from `password_file`; remove it")
        } else {
            format!(
                "inline passwords are not allowed: put it in a file and set `password_file` instead of `{key}`"
            )
        }),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Step 1: the located tree
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Node {
    /// Preorder id; the node's descendants have ids `id + 1 ..= last`.
    id: usize,
    last: usize,
    pos: Pos,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

#[derive(Debug, Clone)]
struct Scalar {
    text: String,
    /// Unquoted and untagged (or tagged with a core type other than `!!str`): may resolve to
    /// null, a boolean or a number.
    plain: bool,
}

#[derive(Debug, Clone)]
struct Entry {
    /// Always a scalar.
    key: Node,
    value: Node,
}

impl Entry {
    fn name(&self) -> &str {
        match &self.key.kind {
            Kind::Scalar(scalar) => &scalar.text,
            _ => "",
        }
    }
}

enum Int {
    Unsigned(u64),
    Signed(i64),
}

impl Scalar {
    fn is_null(&self) -> bool {
        self.plain && matches!(self.text.as_str(), "" | "~" | "null" | "Null" | "NULL")
    }

    fn as_bool(&self) -> Option<bool> {
        match self.text.as_str() {
            "true" | "True" | "TRUE" if self.plain => Some(true),
            "false" | "False" | "FALSE" if self.plain => Some(false),
            _ => None,
        }
    }

    /// YAML 1.2 core integers: decimal, `0x` hex, `0o` octal, optional sign.
    fn as_int(&self) -> Option<Int> {
        if !self.plain {
            return None;
        }
        let text = self.text.as_str();
        let (negative, unsigned) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (radix, digits) = if let Some(hex) = unsigned.strip_prefix("0x") {
            (16, hex)
        } else if let Some(octal) = unsigned.strip_prefix("0o") {
            (8, octal)
        } else {
            (10, unsigned)
        };
        if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
            return None;
        }
        let magnitude = u64::from_str_radix(digits, radix).ok()?;
        if negative {
            i64::try_from(-i128::from(magnitude)).ok().map(Int::Signed)
        } else {
            Some(Int::Unsigned(magnitude))
        }
    }

    fn as_float(&self) -> Option<f64> {
        if !self.plain {
            return None;
        }
        let text = self.text.as_str();
        match text {
            ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => return Some(f64::INFINITY),
            "-.inf" | "-.Inf" | "-.INF" => return Some(f64::NEG_INFINITY),
            ".nan" | ".NaN" | ".NAN" => return Some(f64::NAN),
            _ => {}
        }
        let numeric = text.bytes().any(|b| b.is_ascii_digit())
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || matches!(b, b'+' | b'-' | b'.' | b'e' | b'E'));
        if numeric { text.parse().ok() } else { None }
    }
}

const MAX_DEPTH: usize = 64;
const MAX_NODES: usize = 100_000;

/// Parses the text into a located tree. Recoverable problems (duplicate keys, unsupported
/// tags, a second document) come back with the tree, with the ids of the nodes they make
/// unusable; a syntax error is fatal.
fn build_tree(text: &str) -> Result<(Node, Vec<Problem>, HashSet<usize>), Problem> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        anchors: HashMap::new(),
        problems: Vec::new(),
        poisoned: HashSet::new(),
        next_id: 0,
        end: Pos { line: 1, column: 1 },
    };
    let root = builder.document()?;
    Ok((root, builder.problems, builder.poisoned))
}

struct Builder<'a> {
    parser: Parser<'a, serde_saphyr::granit_parser::StrInput<'a>>,
    anchors: HashMap<usize, Node>,
    problems: Vec<Problem>,
    /// Nodes step 2 must treat as hidden from the start (their problem is already reported).
    poisoned: HashSet<usize>,
    next_id: usize,
    /// Position of the last event read (for "unexpected end").
    end: Pos,
}

impl<'a> Builder<'a> {
    /// The next structural event (comments and anchor metadata are skipped).
    fn next(&mut self) -> Result<(Event<'a>, Span), Problem> {
        loop {
            match self.parser.next() {
                None => return Err(Problem::error(self.end, "unexpected end of the YAML input")),
                Some(Err(error)) => {
                    return Err(Problem::error(
                        Pos::of(error.marker()),
                        format!("YAML syntax error: {}", error.info()),
                    ));
                }
                Some(Ok((event, span))) => {
                    self.end = Pos::of(&span.start);
                    if matches!(
                        event,
                        Event::StreamStart
                            | Event::StreamEnd
                            | Event::DocumentStart(..)
                            | Event::DocumentEnd
                            | Event::Alias(_)
                            | Event::UnresolvedAlias(_)
                            | Event::Scalar(..)
                            | Event::SequenceStart(..)
                            | Event::SequenceEnd
                            | Event::MappingStart(..)
                            | Event::MappingEnd
                    ) {
                        return Ok((event, span));
                    }
                }
            }
        }
    }

    fn document(&mut self) -> Result<Node, Problem> {
        let (event, span) = self.next()?;
        if !matches!(event, Event::StreamStart) {
            return Err(Problem::error(
                Pos::of(&span.start),
                "malformed YAML stream",
            ));
        }
        let (event, span) = self.next()?;
        let root = match event {
            Event::StreamEnd => return Ok(self.null(Pos { line: 1, column: 1 })),
            Event::DocumentStart(..) => {
                let (event, span) = self.next()?;
                if matches!(event, Event::DocumentEnd) {
                    return Ok(self.null(Pos::of(&span.start)));
                }
                self.node(event, &span, 0)?
            }
            _ => {
                return Err(Problem::error(
                    Pos::of(&span.start),
                    "malformed YAML stream",
                ));
            }
        };
        let (event, span) = self.next()?;
        if !matches!(event, Event::DocumentEnd) {
            return Err(Problem::error(
                Pos::of(&span.start),
                "malformed YAML document",
            ));
        }
        let (event, span) = self.next()?;
        if matches!(event, Event::DocumentStart(..)) {
            self.problems.push(Problem::error(
                Pos::of(&span.start),
                "only one YAML document is allowed (found a second `---`)",
            ));
        }
        Ok(root)
    }

    fn alloc(&mut self, pos: Pos) -> Result<usize, Problem> {
        if self.next_id >= MAX_NODES {
            return Err(Problem::error(
                pos,
                format!("the document has more than {MAX_NODES} nodes (after expanding aliases)"),
            ));
        }
        self.next_id += 1;
        Ok(self.next_id - 1)
    }

    fn null(&mut self, pos: Pos) -> Node {
        let id = self.next_id;
        self.next_id += 1;
        Node {
            id,
            last: id,
            pos,
            kind: Kind::Scalar(Scalar {
                text: String::new(),
                plain: true,
            }),
        }
    }

    fn node(&mut self, event: Event<'a>, span: &Span, depth: usize) -> Result<Node, Problem> {
        let pos = Pos::of(&span.start);
        if depth > MAX_DEPTH {
            return Err(Problem::error(
                pos,
                format!("nested more than {MAX_DEPTH} levels deep"),
            ));
        }
        if let Event::Alias(anchor) = event {
            return self.alias(anchor, pos);
        }
        if let Event::UnresolvedAlias(name) = event {
            self.problems
                .push(Problem::error(pos, format!("unknown alias `*{name}`")));
            let node = self.null(pos);
            self.poisoned.insert(node.id);
            return Ok(node);
        }
        let id = self.alloc(pos)?;
        let tag_pos = span.tag_start().map_or(pos, |marker| Pos::of(&marker));
        let (kind, anchor) = match event {
            Event::Scalar(text, style, anchor, tag) => {
                let mut plain = style == ScalarStyle::Plain;
                if let Some(tag) = tag {
                    match tag.core_suffix() {
                        Some("str") => plain = false,
                        Some("null" | "bool" | "int" | "float") => plain = true,
                        _ if is_non_specific(&tag) => plain = false,
                        _ => self.unsupported_tag(&tag, id, tag_pos),
                    }
                }
                let text = text.into_owned();
                (Kind::Scalar(Scalar { text, plain }), anchor)
            }
            Event::SequenceStart(_, anchor, tag) => {
                if let Some(tag) = tag.filter(|tag| tag.core_suffix() != Some("seq")) {
                    self.unsupported_tag(&tag, id, tag_pos);
                }
                let mut items = Vec::new();
                loop {
                    let (event, span) = self.next()?;
                    if matches!(event, Event::SequenceEnd) {
                        break;
                    }
                    items.push(self.node(event, &span, depth + 1)?);
                }
                (Kind::Seq(items), anchor)
            }
            Event::MappingStart(_, anchor, tag) => {
                if let Some(tag) = tag.filter(|tag| tag.core_suffix() != Some("map")) {
                    self.unsupported_tag(&tag, id, tag_pos);
                }
                (Kind::Map(self.mapping(depth)?), anchor)
            }
            _ => return Err(Problem::error(pos, "malformed YAML: unexpected event")),
        };
        let node = Node {
            id,
            last: self.next_id - 1,
            pos,
            kind,
        };
        if anchor != 0 {
            self.anchors.insert(anchor, node.clone());
        }
        Ok(node)
    }

    fn unsupported_tag(&mut self, tag: &Tag, id: usize, pos: Pos) {
        self.poisoned.insert(id);
        self.problems.push(Problem::error(
            pos,
            format!(
                "unsupported YAML tag `{}{}`",
                tag.original_handle(),
                tag.suffix()
            ),
        ));
    }

    fn alias(&mut self, anchor: usize, pos: Pos) -> Result<Node, Problem> {
        match self.anchors.get(&anchor).cloned() {
            Some(mut node) => {
                self.renumber(&mut node)?;
                Ok(node)
            }
            None => {
                self.problems
                    .push(Problem::error(pos, "alias to an unknown anchor"));
                let node = self.null(pos);
                self.poisoned.insert(node.id);
                Ok(node)
            }
        }
    }

    /// Gives a copied subtree fresh preorder ids (each alias use is its own node).
    fn renumber(&mut self, node: &mut Node) -> Result<(), Problem> {
        node.id = self.alloc(node.pos)?;
        match &mut node.kind {
            Kind::Scalar(_) => {}
            Kind::Seq(items) => {
                for item in items {
                    self.renumber(item)?;
                }
            }
            Kind::Map(entries) => {
                for entry in entries {
                    self.renumber(&mut entry.key)?;
                    self.renumber(&mut entry.value)?;
                }
            }
        }
        node.last = self.next_id - 1;
        Ok(())
    }

    fn mapping(&mut self, depth: usize) -> Result<Vec<Entry>, Problem> {
        let mut entries: Vec<Entry> = Vec::new();
        let mut merges = Vec::new();
        loop {
            let (event, span) = self.next()?;
            if matches!(event, Event::MappingEnd) {
                break;
            }
            let key = self.node(event, &span, depth + 1)?;
            let (event, span) = self.next()?;
            let value = self.node(event, &span, depth + 1)?;
            let Kind::Scalar(scalar) = &key.kind else {
                self.problems.push(Problem::error(
                    key.pos,
                    "mapping keys must be plain strings, not lists or mappings",
                ));
                continue;
            };
            if scalar.plain && scalar.text == "<<" {
                merges.push(value);
                continue;
            }
            if let Some(first) = entries.iter().find(|entry| entry.name() == scalar.text) {
                self.problems.push(Problem::error(
                    key.pos,
                    format!(
                        "duplicate key `{}` (first on line {})",
                        scalar.text, first.key.pos.line
                    ),
                ));
                continue;
            }
            entries.push(Entry { key, value });
        }
        // `<<` merge keys: explicit keys win, then earlier merged mappings over later ones.
        for merge in merges {
            let pos = merge.pos;
            let sources = match merge.kind {
                Kind::Map(source) => vec![source],
                Kind::Seq(items) => {
                    let mut sources = Vec::new();
                    for item in items {
                        match item.kind {
                            Kind::Map(source) => sources.push(source),
                            _ => self.problems.push(Problem::error(
                                item.pos,
                                "a `<<` merge list may only hold mappings",
                            )),
                        }
                    }
                    sources
                }
                Kind::Scalar(_) => {
                    self.problems.push(Problem::error(
                        pos,
                        "a `<<` merge value must be a mapping or a list of mappings",
                    ));
                    Vec::new()
                }
            };
            for source in sources {
                for entry in source {
                    if !entries.iter().any(|e| e.name() == entry.name()) {
                        entries.push(entry);
                    }
                }
            }
        }
        Ok(entries)
    }
}

/// The non-specific tag `!` (as in `! 123`) makes a scalar a string.
fn is_non_specific(tag: &Tag) -> bool {
    tag.original_handle() == "!" && tag.suffix().is_empty()
}

// ---------------------------------------------------------------------------------------------
// Step 2: a serde Deserializer over the located tree
// ---------------------------------------------------------------------------------------------

/// Deserializes `T` from the tree, collecting every error (see the module documentation).
/// `hidden` starts with the nodes step 1 found unusable. Returns the value (when the root
/// itself could be read), the problems, and the hidden nodes.
fn deserialize_all<T: DeserializeOwned>(
    root: &Node,
    hidden: HashSet<usize>,
) -> (Option<T>, BTreeSet<Problem>, HashSet<usize>) {
    let mut context = Context {
        hidden,
        problems: RefCell::new(BTreeSet::new()),
        reported: RefCell::new(HashSet::new()),
    };
    // Each round hides one more node, so this ends after at most one round per node; past
    // MAX_ROUNDS errors the file is hopeless and the rest is not worth the time.
    for _ in 0..MAX_ROUNDS {
        let result = T::deserialize(De {
            node: root,
            context: &context,
        });
        let error = match result {
            Ok(value) => return context.finish(Some(value)),
            Err(error) => error,
        };
        let (id, pos) = error.at.unwrap_or((root.id, root.pos));
        if !is_consequence(root, &context.hidden, &error) {
            context
                .problems
                .get_mut()
                .insert(Problem::error(pos, plain_words(&error.message)));
        }
        if id == root.id || !context.hidden.insert(id) {
            return context.finish(None);
        }
    }
    context.problems.get_mut().insert(Problem::error(
        root.pos,
        format!("more than {MAX_ROUNDS} errors; stopped checking"),
    ));
    context.finish(None)
}

const MAX_ROUNDS: usize = 500;

/// serde names Rust types in its messages; say what they mean instead.
fn plain_words(message: &str) -> String {
    const WORDS: [(&str, &str); 4] = [
        ("expected u16", "expected a whole number from 0 to 65535"),
        (
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        ),
        ("expected u64", "expected a whole number, 0 or more"),
        ("expected path string", "expected a path"),
    ];
    for (rust, plain) in WORDS {
        if let Some(start) = message.strip_suffix(rust) {
            return format!("{start}{plain}");
        }
    }
    message.to_owned()
}

/// A "missing key" error for a key whose value was hidden (its error is already reported).
fn is_consequence(root: &Node, hidden: &HashSet<usize>, error: &DeError) -> bool {
    let (Some(field), Some((id, _))) = (error.missing, error.at) else {
        return false;
    };
    let Some(Kind::Map(entries)) = find(root, id).map(|node| &node.kind) else {
        return false;
    };
    entries.iter().any(|entry| {
        entry.name() == field
            && (hidden.contains(&entry.key.id) || hidden.contains(&entry.value.id))
    })
}

fn find(node: &Node, id: usize) -> Option<&Node> {
    if node.id == id {
        return Some(node);
    }
    if !(node.id..=node.last).contains(&id) {
        return None;
    }
    match &node.kind {
        Kind::Scalar(_) => None,
        Kind::Seq(items) => items.iter().find_map(|item| find(item, id)),
        Kind::Map(entries) => entries
            .iter()
            .find_map(|entry| find(&entry.key, id).or_else(|| find(&entry.value, id))),
    }
}

struct Context {
    hidden: HashSet<usize>,
    problems: RefCell<BTreeSet<Problem>>,
    /// Mappings whose unknown keys were reported (in an earlier round).
    reported: RefCell<HashSet<usize>>,
}

impl Context {
    fn finish<T>(self, value: Option<T>) -> (Option<T>, BTreeSet<Problem>, HashSet<usize>) {
        (value, self.problems.into_inner(), self.hidden)
    }

    fn is_hidden(&self, entry: &Entry) -> bool {
        self.hidden.contains(&entry.key.id) || self.hidden.contains(&entry.value.id)
    }
}

/// A serde error with the node it arose at.
#[derive(Debug)]
struct DeError {
    message: String,
    at: Option<(usize, Pos)>,
    /// Set by `missing_field`, so the retry loop can recognise consequences of hiding.
    missing: Option<&'static str>,
}

impl DeError {
    fn locate(mut self, node: &Node) -> DeError {
        if self.at.is_none() {
            self.at = Some((node.id, node.pos));
        }
        self
    }
}

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(message: T) -> Self {
        DeError {
            message: message.to_string(),
            at: None,
            missing: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        DeError {
            message: format!("missing required key `{field}`"),
            at: None,
            missing: Some(field),
        }
    }
}

#[derive(Clone, Copy)]
struct De<'a> {
    node: &'a Node,
    context: &'a Context,
}

impl<'a> De<'a> {
    fn scalar(self) -> Option<&'a Scalar> {
        match &self.node.kind {
            Kind::Scalar(scalar) => Some(scalar),
            _ => None,
        }
    }

    fn is_null(self) -> bool {
        self.scalar().is_some_and(Scalar::is_null)
    }

    fn unexpected(self) -> Unexpected<'a> {
        match &self.node.kind {
            Kind::Seq(_) => Unexpected::Other("a list"),
            Kind::Map(_) => Unexpected::Other("a mapping"),
            Kind::Scalar(scalar) if scalar.is_null() => Unexpected::Other("nothing (null)"),
            Kind::Scalar(scalar) => match (scalar.as_bool(), scalar.as_int(), scalar.as_float()) {
                (Some(b), _, _) => Unexpected::Bool(b),
                (_, Some(Int::Unsigned(u)), _) => Unexpected::Unsigned(u),
                (_, Some(Int::Signed(i)), _) => Unexpected::Signed(i),
                (_, _, Some(f)) => Unexpected::Float(f),
                _ => Unexpected::Str(&scalar.text),
            },
        }
    }

    fn invalid<T>(self, expected: &dyn de::Expected) -> Result<T, DeError> {
        Err(de::Error::invalid_type(self.unexpected(), expected))
    }

    fn locate<T>(self, result: Result<T, DeError>) -> Result<T, DeError> {
        result.map_err(|error| error.locate(self.node))
    }

    fn seq<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            Kind::Seq(items) => visitor.visit_seq(SeqAcc {
                items: items.iter(),
                context: self.context,
            }),
            _ if self.is_null() => visitor.visit_seq(SeqAcc {
                items: [].iter(),
                context: self.context,
            }),
            _ => self.invalid(&visitor),
        };
        self.locate(result)
    }

    fn map<'de, V: Visitor<'de>>(
        self,
        fields: Option<&'static [&'static str]>,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = match &self.node.kind {
            Kind::Map(entries) => visitor.visit_map(MapAcc {
                entries: entries.iter(),
                fields,
                context: self.context,
                value: None,
            }),
            _ if self.is_null() => visitor.visit_map(MapAcc {
                entries: [].iter(),
                fields,
                context: self.context,
                value: None,
            }),
            _ => self.invalid(&visitor),
        };
        self.locate(result)
    }

    fn int<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.scalar().and_then(Scalar::as_int) {
            Some(Int::Unsigned(u)) => visitor.visit_u64(u),
            Some(Int::Signed(i)) => visitor.visit_i64(i),
            None => self.invalid(&visitor),
        };
        self.locate(result)
    }

    fn string<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.scalar() {
            Some(scalar) if !scalar.is_null() => visitor.visit_str(&scalar.text),
            _ => self.invalid(&visitor),
        };
        self.locate(result)
    }

    /// Records every key `fields` does not declare (they are then skipped).
    fn report_unknown_keys(self, name: &str, fields: &'static [&'static str]) {
        let Kind::Map(entries) = &self.node.kind else {
            return;
        };
        if !self.context.reported.borrow_mut().insert(self.node.id) {
            return;
        }
        for entry in entries {
            if self.context.is_hidden(entry) || fields.contains(&entry.name()) {
                continue;
            }
            let problem = Problem::error(
                entry.key.pos,
                unknown_key_message(name, entry.name(), fields),
            );
            self.context.problems.borrow_mut().insert(problem);
        }
    }
}

fn unknown_key_message(context: &str, key: &str, fields: &[&str]) -> String {
    let place = if context == "the top level" {
        "at the top level".to_owned()
    } else {
        format!("in {context}")
    };
    if matches!(key, "password" | "passwd") && fields.contains(&"password_file") {
        let alternatives = if fields.contains(&"password_env") {
            "`password_file` or `password_env`"
        } else {
            "`password_file`"
        };
        return format!(
            "inline passwords are not allowed ({place}): put the password in a file or the \
             environment and use {alternatives}"
        );
    }
    match fields
        .iter()
        .filter(|field| edit_distance(key, field) <= 2)
        .min_by_key(|field| edit_distance(key, field))
    {
        Some(suggestion) => format!("unknown key `{key}` {place} (did you mean `{suggestion}`?)"),
        None => format!(
            "unknown key `{key}` {place}; expected one of {}",
            fields
                .iter()
                .map(|field| format!("`{field}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(ca != *cb));
            diagonal = above;
        }
    }
    row[b.len()]
}

impl<'de> Deserializer<'de> for De<'_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        match &self.node.kind {
            Kind::Seq(_) => self.seq(visitor),
            Kind::Map(_) => self.map(None, visitor),
            Kind::Scalar(scalar) => {
                let result = if scalar.is_null() {
                    visitor.visit_unit()
                } else if let Some(b) = scalar.as_bool() {
                    visitor.visit_bool(b)
                } else if let Some(int) = scalar.as_int() {
                    match int {
                        Int::Unsigned(u) => visitor.visit_u64(u),
                        Int::Signed(i) => visitor.visit_i64(i),
                    }
                } else if let Some(f) = scalar.as_float() {
                    visitor.visit_f64(f)
                } else {
                    visitor.visit_str(&scalar.text)
                };
                self.locate(result)
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.scalar().and_then(Scalar::as_bool) {
            Some(b) => visitor.visit_bool(b),
            None => self.invalid(&visitor),
        };
        self.locate(result)
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.int(visitor)
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.deserialize_f64(visitor)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = match self.scalar().and_then(Scalar::as_float) {
            Some(f) => visitor.visit_f64(f),
            None => self.invalid(&visitor),
        };
        self.locate(result)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.is_null() {
            self.locate(visitor.visit_none())
        } else {
            self.locate(visitor.visit_some(self))
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let result = if self.is_null() {
            visitor.visit_unit()
        } else {
            self.invalid(&visitor)
        };
        self.locate(result)
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = if name == LOCATED {
            visitor.visit_seq(LocatedAcc { de: self, state: 0 })
        } else {
            visitor.visit_newtype_struct(self)
        };
        self.locate(result)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.map(None, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        self.report_unknown_keys(name, fields);
        self.map(Some(fields), visitor).map_err(|mut error| {
            if let Some(field) = error.missing
                && error.at.is_some_and(|(id, _)| id == self.node.id)
            {
                error.message = format!("missing required key `{field}` in {name}");
            }
            error
        })
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let result = match self.scalar() {
            Some(scalar) if !scalar.is_null() => visitor.visit_enum(
                IntoDeserializer::<DeError>::into_deserializer(scalar.text.as_str()),
            ),
            _ => self.invalid(&visitor),
        };
        self.locate(result)
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        self.string(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        visitor.visit_unit()
    }
}

struct SeqAcc<'a> {
    items: std::slice::Iter<'a, Node>,
    context: &'a Context,
}

impl<'de> SeqAccess<'de> for SeqAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let context = self.context;
        match self.items.find(|item| !context.hidden.contains(&item.id)) {
            Some(node) => seed.deserialize(De { node, context }).map(Some),
            None => Ok(None),
        }
    }
}

struct MapAcc<'a> {
    entries: std::slice::Iter<'a, Entry>,
    /// A struct's declared keys: other keys were reported and are skipped.
    fields: Option<&'static [&'static str]>,
    context: &'a Context,
    value: Option<&'a Node>,
}

impl<'de> MapAccess<'de> for MapAcc<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let context = self.context;
        let fields = self.fields;
        let next = self.entries.find(|entry| {
            !context.is_hidden(entry) && fields.is_none_or(|fields| fields.contains(&entry.name()))
        });
        match next {
            Some(entry) => {
                self.value = Some(&entry.value);
                seed.deserialize(De {
                    node: &entry.key,
                    context,
                })
                .map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        let node = self
            .value
            .take()
            .ok_or_else(|| <DeError as de::Error>::custom("a mapping value was read twice"))?;
        seed.deserialize(De {
            node,
            context: self.context,
        })
    }
}

/// What [`Located`] receives from the tree: line, column, first id, last id, then the value.
struct LocatedAcc<'a> {
    de: De<'a>,
    state: u8,
}

impl<'de> SeqAccess<'de> for LocatedAcc<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        let node = self.de.node;
        let number = match self.state {
            0 => node.pos.line,
            1 => node.pos.column,
            2 => node.id,
            3 => node.last,
            4 => {
                self.state += 1;
                return seed.deserialize(self.de).map(Some);
            }
            _ => return Ok(None),
        };
        self.state += 1;
        let number = u64::try_from(number).map_err(<DeError as de::Error>::custom)?;
        seed.deserialize(IntoDeserializer::<DeError>::into_deserializer(number))
            .map(Some)
    }
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = "\
pools:
  - name: lab
    hosts: [10.0.0.1]
    password_file: /etc/xenguard/lab.password
";

    fn errors(text: &str) -> Vec<String> {
        match parse(text, "f.yml") {
            Ok(config) => panic!("expected errors, got {config:?}"),
            Err(errors) => errors.errors().iter().map(ToString::to_string).collect(),
        }
    }

    fn ok(text: &str) -> Config {
        match parse(text, "f.yml") {
            Ok(config) => config,
            Err(errors) => panic!("expected a valid config, got:\n{errors}"),
        }
    }

    fn warnings(text: &str) -> Vec<String> {
        analyse(text)
            .problems
            .iter()
            .filter(|p| p.severity == Severity::Warning)
            .map(|p| p.render("f.yml"))
            .collect()
    }

    #[test]
    fn minimal_file_gets_every_default() {
        let config = ok(MINIMAL);
        let pool = &config.pools[0];
        assert_eq!(pool.name, "lab");
        assert_eq!(pool.hosts, ["10.0.0.1"]);
        assert_eq!(pool.port, 443);
        assert_eq!(pool.scheme, Scheme::Https);
        assert_eq!(pool.username, "root");
        assert_eq!(pool.tls, TlsConfig::default());
        assert_eq!(
            pool.credentials,
            Credentials::File("/etc/xenguard/lab.password".into())
        );
        assert_eq!(pool.timeouts, PoolTimeouts::default());
        assert_eq!(config.exporter, ExporterConfig::default());
        assert_eq!(config.exporter.listen.to_string(), "0.0.0.0:9878");
        assert_eq!(config.receiver, ReceiverConfig::default());
        assert_eq!(config.receiver.listen.to_string(), "0.0.0.0:9879");
        assert_eq!(config.fencing, FencingConfig::default());
        assert_eq!(config.summary(), "1 pool, 1 host; receiver mode observe");
    }

    #[test]
    fn http_port_defaults_to_80_and_numbers_in_string_places_stay_text() {
        let config = ok("\
pools:
  - name: sim
    scheme: http
    hosts: [127.0.0.11, 127.0.0.12]
    password_env: SIM_PASSWORD
fencing:
  hosts:
    - {pool: sim, host: 127.0.0.11, agent: fence_ipmilan, args: {ipport: 9001, lanplus: 1, ip: 127.0.0.1}}
");
        assert_eq!(config.pools[0].port, 80);
        assert_eq!(
            config.pools[0].credentials,
            Credentials::Env("SIM_PASSWORD".into())
        );
        let args = &config.fencing.hosts[0].args;
        assert_eq!(args["ipport"], "9001");
        assert_eq!(args["lanplus"], "1");
    }

    #[test]
    fn every_unknown_key_is_reported_with_its_position() {
        let errors = errors(
            "\
pools:
  - name: a
    hosts: [h1]
    password_file: /p
    prot: 443
    colour: blue
exporter:
  listne: 0.0.0.0:1
bogus: 1
",
        );
        assert_eq!(
            errors,
            [
                "f.yml:5:5: unknown key `prot` in a pool (did you mean `port`?)",
                "f.yml:6:5: unknown key `colour` in a pool; expected one of `name`, `hosts`, \
                 `port`, `scheme`, `tls`, `username`, `password_file`, `password_env`, `timeouts`",
                "f.yml:8:3: unknown key `listne` in `exporter` (did you mean `listen`?)",
                "f.yml:9:1: unknown key `bogus` at the top level; expected one of `pools`, \
                 `exporter`, `receiver`, `fencing`",
            ]
        );
    }

    #[test]
    fn inline_password_is_refused_with_the_alternatives() {
        let errors = errors(
            "\
pools:
  - name: a
    hosts: [h1]
    password: hunter2
",
        );
        assert_eq!(errors.len(), 2, "{errors:?}");
        assert!(
            errors[0].starts_with("f.yml:2:5: pool `a` needs `password_file` or `password_env`")
        );
        assert!(errors[1].starts_with("f.yml:4:5: inline passwords are not allowed"));
        assert!(errors[1].contains("`password_file` or `password_env`"));
        assert!(!errors.join("\n").contains("hunter2"));
    }

    #[test]
    fn type_errors_do_not_hide_later_mistakes() {
        let errors = errors(
            "\
pools:
  - name: a
    hosts: [h1, {x: 1}]
    port: https
    password_file: /p
    timeouts: {connect_seconds: soon, call_seconds: 0}
  - name: [b]
    hosts: [h2]
    password_file: /p
receiver:
  mode: sometimes
  confirm_probes: -1
",
        );
        assert_eq!(
            errors,
            [
                "f.yml:3:17: invalid type: a mapping, expected a string",
                "f.yml:4:11: invalid type: string \"https\", expected a whole number from 0 to 65535",
                "f.yml:6:33: invalid type: string \"soon\", expected a whole number, 0 or more",
                "f.yml:6:53: `call_seconds` must be at least 1",
                "f.yml:7:11: invalid type: a list, expected a string",
                "f.yml:11:9: unknown variant `sometimes`, expected one of `observe`, `approve`, `auto`",
                "f.yml:12:19: invalid value: integer `-1`, expected a whole number from 0 to 4294967295",
            ]
        );
    }

    #[test]
    fn missing_required_keys_are_reported_per_pool() {
        let errors = errors(
            "\
pools:
  - hosts: [h1]
    password_file: /p
  - name: b
    password_file: /p
fencing:
  hosts:
    - {pool: b, host: h1}
",
        );
        assert_eq!(
            errors,
            [
                "f.yml:2:5: missing required key `name` in a pool",
                "f.yml:4:5: missing required key `hosts` in a pool",
                "f.yml:8:7: missing required key `agent` in a fencing host",
            ]
        );
    }

    #[test]
    fn semantic_checks() {
        let errors = errors(
            "\
pools:
  - name: Lab 1
    hosts: [10.0.0.1, 'https://x', 'h:443', -bad-, 10.0.0.1]
    port: 0
    password_file: /p
    password_env: 1BAD
  - name: b
    hosts: []
    password_env: B
  - name: b
    hosts: [10.0.0.1]
    password_file: ''
exporter:
  listen: localhost:9878
  probe_interval_seconds: 2
  probe_timeout_seconds: 5
receiver:
  mode: auto
  max_body_bytes: 0
  startup_quiet_seconds: 0
  step_timeout_seconds: 1000
  fence_budget: {max_fences: 0, window_seconds: 99999999999}
",
        );
        let expected = [
            "f.yml:2:11: pool name `Lab 1` must be 1 to 63 characters",
            "f.yml:3:23: host `https://x` is a URL",
            "f.yml:3:36: host `h:443` must be an address without a port",
            "f.yml:3:45: host `-bad-` is neither an IP address nor a valid DNS name",
            "f.yml:3:52: host `10.0.0.1` is listed twice (first on line 3)",
            "f.yml:4:11: `port` must be between 1 and 65535",
            "f.yml:6:19: pool `Lab 1` sets both `password_file` and `password_env`; keep one",
            "f.yml:8:12: pool `b` needs at least one host",
            "f.yml:10:11: duplicate pool name `b` (first used on line 7)",
            "f.yml:11:13: host `10.0.0.1` is already listed in pool `Lab 1`",
            "f.yml:12:20: `password_file` must not be empty",
            "f.yml:14:11: `listen` must be an IP address and port",
            "f.yml:16:26: `probe_timeout_seconds` (5) must not exceed `probe_interval_seconds` (2)",
            "f.yml:18:9: `mode: auto` needs `receiver.auth`",
            "f.yml:19:19: `max_body_bytes` must be at least 1",
            "f.yml:21:25: `pool_lease_seconds` (1800) must exceed twice `step_timeout_seconds` (1000)",
            "f.yml:22:30: `max_fences` must be at least 1",
            "f.yml:22:49: `window_seconds` must be at most 31536000",
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (error, expected) in errors.iter().zip(expected) {
            assert!(
                error.starts_with(expected),
                "{error:?} should start with {expected:?}"
            );
        }
    }

    #[test]
    fn tls_pins_are_normalised_and_checked() {
        let lower = "ab".repeat(32);
        let config = ok(&format!(
            "\
pools:
  - name: a
    hosts: [xen1.example.com, 10.0.0.2]
    password_file: /p
    tls:
      ca_file: /etc/ca.pem
      pins:
        XEN1.example.com.: \"{lower}\"
        10.0.0.2: \"{}\"
",
            vec!["0f"; 32].join(":")
        ));
        let pins = &config.pools[0].tls.pins;
        assert_eq!(pins["xen1.example.com"], vec!["AB"; 32].join(":"));
        assert_eq!(pins["10.0.0.2"], vec!["0F"; 32].join(":"));

        let errors = errors(&format!(
            "\
pools:
  - name: a
    hosts: [h1]
    password_file: /p
    tls:
      insecure_skip_verify: true
      pins:
        h2: {lower}
        h1: abc
"
        ));
        assert_eq!(errors.len(), 3, "{errors:#?}");
        assert!(errors[0].starts_with("f.yml:6:29: `insecure_skip_verify: true` contradicts"));
        assert!(
            errors[1].starts_with("f.yml:8:9: pin for `h2`, which is not in pool `a`'s `hosts`")
        );
        assert!(errors[2].starts_with("f.yml:9:13: pin for `h1` is not a SHA-256 fingerprint"));
    }

    #[test]
    fn tls_with_plain_http_and_insecure_warning() {
        let errors = errors(
            "\
pools:
  - name: a
    scheme: http
    hosts: [h1]
    password_file: /p
    tls: {ca_file: /ca.pem}
",
        );
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("f.yml:6:10: pool `a` uses `scheme: http`"));

        let text = "\
pools:
  - name: a
    hosts: [h1]
    password_file: /p
    tls: {insecure_skip_verify: true}
";
        assert!(ok(text).pools[0].tls.insecure_skip_verify);
        assert_eq!(
            warnings(text),
            ["f.yml:5:33: warning: pool `a` skips TLS certificate verification"]
        );
    }

    #[test]
    fn receiver_auth() {
        let config = ok(&format!(
            "{MINIMAL}receiver:\n  mode: approve\n  auth:\n    basic: {{username: am, password_file: /p}}\n"
        ));
        assert_eq!(config.receiver.mode, Mode::Approve);
        assert_eq!(
            config.receiver.auth,
            Some(ReceiverAuth::Basic {
                username: "am".into(),
                password_file: "/p".into()
            })
        );
        let errors = errors(&format!(
            "{MINIMAL}receiver:\n  auth:\n    bearer_token_file: /t\n    basic: {{username: am, password_file: /p}}\n"
        ));
        assert_eq!(errors.len(), 1);
        assert!(errors[0].starts_with("f.yml:8:12: `receiver.auth` sets both"));
        let empty = self::errors(&format!("{MINIMAL}receiver:\n  auth: {{}}\n"));
        assert_eq!(
            empty,
            ["f.yml:6:9: `receiver.auth` needs `bearer_token_file` or `basic`"]
        );
    }

    #[test]
    fn receiver_tls() {
        let config = ok(&format!(
            "{MINIMAL}receiver:\n  tls:\n    cert_file: /etc/xenguard/tls.crt\n    \
             key_file: /etc/xenguard/tls.key\n    client_ca_file: /etc/xenguard/clients.pem\n"
        ));
        assert_eq!(
            config.receiver.tls,
            Some(ReceiverTls {
                cert_file: "/etc/xenguard/tls.crt".into(),
                key_file: "/etc/xenguard/tls.key".into(),
                client_ca_file: Some("/etc/xenguard/clients.pem".into()),
            })
        );
        let server_only = ok(&format!(
            "{MINIMAL}receiver:\n  tls: {{cert_file: /c.pem, key_file: /k.pem}}\n"
        ));
        assert_eq!(
            server_only.receiver.tls,
            Some(ReceiverTls {
                cert_file: "/c.pem".into(),
                key_file: "/k.pem".into(),
                client_ca_file: None,
            })
        );
        assert_eq!(
            ok(&format!("{MINIMAL}receiver:\n  tls: ~\n")).receiver.tls,
            None
        );

        let errors = errors(&format!(
            "{MINIMAL}receiver:\n  tls:\n    cert_file: /c.pem\n    keyfile: /k.pem\n    \
             ca_file: /ca.pem\n"
        ));
        assert_eq!(
            errors,
            [
                "f.yml:7:5: missing required key `key_file` in `receiver.tls`",
                "f.yml:8:5: unknown key `keyfile` in `receiver.tls` (did you mean `key_file`?)",
                "f.yml:9:5: unknown key `ca_file` in `receiver.tls`; expected one of \
                 `cert_file`, `key_file`, `client_ca_file`",
            ]
        );
        let empty = self::errors(&format!("{MINIMAL}receiver:\n  tls: {{}}\n"));
        assert_eq!(
            empty,
            ["f.yml:6:8: missing required key `cert_file` in `receiver.tls`"]
        );
        let blank = self::errors(&format!(
            "{MINIMAL}receiver:\n  tls: {{cert_file: '', key_file: /k.pem, client_ca_file: [x]}}\n"
        ));
        assert_eq!(
            blank,
            [
                "f.yml:6:20: `cert_file` must not be empty",
                "f.yml:6:58: invalid type: a list, expected a path",
            ]
        );
    }

    #[test]
    fn a_broken_auth_does_not_add_a_spurious_mode_error() {
        let errors = errors(&format!(
            "{MINIMAL}receiver:\n  mode: auto\n  auth:\n    bearer_token_file: [x]\n"
        ));
        assert_eq!(
            errors,
            ["f.yml:8:24: invalid type: a list, expected a path"]
        );
    }

    #[test]
    fn fencing_checks() {
        let errors = errors(&format!(
            "{MINIMAL}fencing:
  agent_timeout_seconds: 0
  hosts:
    - pool: nope
      host: 10.0.0.1
      agent: fence ipmilan
      args:
        action: reboot
        password: secret
        ip: \"10.0.0.9\\nreboot\"
    - pool: lab
      host: 10.0.0.1
      agent: /usr/sbin/fence_ipmilan
      password_file: /bmc
      args: {{passwd: x}}
    - pool: lab
      host: 10.0.0.1
      agent: fence_ipmilan
"
        ));
        let expected = [
            "f.yml:6:26: `agent_timeout_seconds` must be at least 1",
            "f.yml:8:13: unknown pool `nope` (configured pools: lab)",
            "f.yml:10:14: `agent` must be a program name",
            "f.yml:12:9: fence argument `action` is set by xenguard",
            "f.yml:13:9: inline passwords are not allowed",
            "f.yml:14:13: fence argument `ip` must be a single line",
            "f.yml:19:14: fence argument `passwd` comes from `password_file`",
            "f.yml:21:13: host `10.0.0.1` of pool `lab` already has a fence agent (line 16)",
        ];
        assert_eq!(errors.len(), expected.len(), "{errors:#?}");
        for (error, expected) in errors.iter().zip(expected) {
            assert!(
                error.starts_with(expected),
                "{error:?} should start with {expected:?}"
            );
        }
    }

    #[test]
    fn an_acting_receiver_fences_hosts_by_uuid_only() {
        let config = |mode: &str, key: &str| {
            format!(
                "{MINIMAL}receiver:\n  mode: {mode}\n  auth: {{bearer_token_file: /t}}\nfencing:\n  hosts:\n    - pool: lab\n      host: {key}\n      agent: fence_ipmilan\n"
            )
        };
        for mode in ["auto", "approve"] {
            for key in ["10.0.0.1", "xen1", "6a1f0c8e-3b2d-4c51-9e7a-0d4b8f2a1c1"] {
                let errors = errors(&config(mode, key));
                assert_eq!(errors.len(), 1, "{mode} {key}: {errors:?}");
                assert!(
                    errors[0].starts_with("f.yml:11:13: `host` must be the host's uuid"),
                    "{errors:?}"
                );
            }
            ok(&config(mode, "6a1f0c8e-3b2d-4c51-9e7a-0d4b8f2a1c11"));
        }
        ok(&config("observe", "xen1"));
    }

    #[test]
    fn mode_auto_without_fencing_warns() {
        let text = format!("{MINIMAL}receiver:\n  mode: auto\n  auth: {{bearer_token_file: /t}}\n");
        ok(&text);
        assert_eq!(warnings(&text).len(), 1);
        assert!(warnings(&text)[0].contains("no fence agent is configured for pool `lab`"));
    }

    #[test]
    fn yaml_problems() {
        let syntax = errors("pools:\n  - name: a\n   bad: [\n");
        assert_eq!(syntax.len(), 1, "{syntax:?}");
        assert!(syntax[0].contains("YAML syntax error"), "{syntax:?}");

        assert_eq!(
            errors(""),
            ["f.yml:1:1: missing required key `pools` in the top level"]
        );
        assert_eq!(
            errors("pools: []\n"),
            ["f.yml:1:8: `pools` must list at least one pool"]
        );
        let duplicate = errors(&format!("{MINIMAL}exporter: {{}}\nexporter: {{}}\n"));
        assert_eq!(
            duplicate,
            ["f.yml:6:1: duplicate key `exporter` (first on line 5)"]
        );
        let second = errors(&format!("{MINIMAL}---\npools: []\n"));
        assert_eq!(
            second,
            ["f.yml:5:1: only one YAML document is allowed (found a second `---`)"]
        );
        let tag = errors(&format!("{MINIMAL}exporter: !include other.yml\n"));
        assert_eq!(tag.len(), 1, "{tag:?}");
        assert!(
            tag[0].starts_with("f.yml:5:11: unsupported YAML tag `!include`"),
            "{tag:?}"
        );
        assert_eq!(
            errors("[1, 2]\n"),
            [
                "f.yml:1:1: invalid type: a list, expected a mapping with `pools` and optionally \
                 `exporter`, `receiver`, `fencing`"
            ]
        );
    }

    #[test]
    fn anchors_and_merge_keys() {
        let config = ok("\
pools:
  - &first
    name: a
    hosts: [h1]
    password_file: /p
    timeouts: {call_seconds: 20}
  - <<: *first
    name: b
    hosts: [h2]
  - <<: *first
    name: c
    hosts: [h3]
    timeouts: {call_seconds: 30}
");
        assert_eq!(config.pools.len(), 3);
        assert_eq!(config.pools[1].name, "b");
        assert_eq!(config.pools[1].timeouts.call, Duration::from_secs(20));
        assert_eq!(config.pools[1].credentials, Credentials::File("/p".into()));
        assert_eq!(config.pools[2].timeouts.call, Duration::from_secs(30));
    }

    #[test]
    fn empty_sections_mean_defaults_and_nulls_mean_absent() {
        let config = ok(&format!(
            "{MINIMAL}exporter:\nreceiver:\n  auth: ~\nfencing:\n"
        ));
        assert_eq!(config.exporter, ExporterConfig::default());
        assert_eq!(config.receiver, ReceiverConfig::default());
        assert_eq!(config.fencing, FencingConfig::default());
    }

    #[test]
    fn serde_saphyr_reads_a_valid_file_into_the_same_config() {
        let text = include_str!("../tests/fixtures/config/example.yml");
        let ours = ok(text);
        let raw: RawConfig = match serde_saphyr::from_str(text) {
            Ok(raw) => raw,
            Err(error) => panic!("serde-saphyr: {error}"),
        };
        let mut checker = Checker {
            problems: Vec::new(),
            hidden: HashSet::new(),
        };
        let theirs = checker.config(&raw);
        assert!(
            checker
                .problems
                .iter()
                .all(|p| p.severity == Severity::Warning),
            "{:?}",
            checker.problems
        );
        assert_eq!(ours, theirs);
    }

    /// Every key of the schema appears in `example.yml` (the configuration reference). The
    /// schema's key lists are read from the "unknown key" messages of a probe document.
    #[test]
    fn the_example_documents_every_key() {
        let probe = "\
zzz: 1
pools:
  - zzz: 1
    tls: {zzz: 1}
    timeouts: {zzz: 1}
exporter: {zzz: 1}
receiver: {zzz: 1, auth: {zzz: 1, basic: {zzz: 1}}, tls: {zzz: 1}, fence_budget: {zzz: 1}}
fencing: {zzz: 1, hosts: [{zzz: 1}]}
";
        let messages = analyse(probe)
            .problems
            .into_iter()
            .filter_map(|p| {
                let (_, keys) = p.message.split_once("expected one of ")?;
                Some(keys.to_owned())
            })
            .collect::<Vec<_>>();
        assert_eq!(messages.len(), 12, "{messages:#?}");
        let example = include_str!("../tests/fixtures/config/example.yml");
        for keys in messages {
            for key in keys.split(", ") {
                let key = key.trim_matches('`');
                assert!(
                    example.contains(&format!("{key}:")),
                    "example.yml lacks `{key}`"
                );
            }
        }
    }

    #[test]
    fn a_hopeless_file_stops_after_max_rounds() {
        let hosts = vec!["{a: 1}"; MAX_ROUNDS + 100].join(", ");
        let errors = errors(&format!(
            "pools:\n  - name: a\n    password_file: /p\n    hosts: [{hosts}]\n"
        ));
        assert_eq!(errors.len(), MAX_ROUNDS + 1);
        assert_eq!(
            errors[0],
            format!("f.yml:1:1: more than {MAX_ROUNDS} errors; stopped checking")
        );
    }

    #[test]
    fn fingerprint_normalisation() {
        let upper = vec!["AB"; 32].join(":");
        assert_eq!(normalise_fingerprint(&"ab".repeat(32)), Some(upper.clone()));
        assert_eq!(normalise_fingerprint(&upper), Some(upper.clone()));
        assert_eq!(normalise_fingerprint(&"ab".repeat(31)), None);
        assert_eq!(normalise_fingerprint(&"zz".repeat(32)), None);
        assert_eq!(
            normalise_fingerprint(&format!("{}:", "ab".repeat(32))),
            None
        );
    }

    #[test]
    fn addresses() {
        for good in [
            "10.0.0.1",
            "fe80::1",
            "xen1",
            "xen-1.example.com",
            "xen1.example.com.",
        ] {
            assert_eq!(check_address(good), Ok(()), "{good}");
        }
        for bad in [
            "",
            "10.0.0.300",
            "[::1]",
            "h:80",
            "a..b",
            "-a",
            "a_b",
            "http://h",
        ] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_are_read_trimmed_and_never_printed() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("pw");
        std::fs::write(&path, "s3cret\n\n").unwrap_or_else(|e| panic!("{e}"));
        let mut config = ok(MINIMAL);
        config.pools[0].credentials = Credentials::File(path.clone());
        let secret = config.pools[0].password().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(secret.expose(), "s3cret\n");
        assert_eq!(format!("{secret:?}"), "***");
        std::fs::write(&path, "s3cret\r\n").unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            read_secret_file(&path)
                .map(|s| s.expose().to_owned())
                .ok()
                .as_deref(),
            Some("s3cret")
        );
        std::fs::write(&path, "\n").unwrap_or_else(|e| panic!("{e}"));
        assert!(matches!(
            read_secret_file(&path),
            Err(ConfigError::EmptySecret { .. })
        ));
        assert!(matches!(
            read_secret_file(&dir.path().join("missing")),
            Err(ConfigError::SecretFile { .. })
        ));
        config.pools[0].credentials =
            Credentials::Env("XENGUARD_TEST_SURELY_UNSET_VARIABLE".into());
        assert!(matches!(
            config.pools[0].password(),
            Err(ConfigError::SecretEnv { .. })
        ));
    }

    proptest::proptest! {
        #[test]
        fn never_panics_and_always_locates(text in "\\PC{0,200}") {
            if let Err(errors) = parse(&text, "p.yml") {
                proptest::prop_assert!(!errors.is_empty());
                for error in errors.errors() {
                    let is_located = matches!(error, ConfigError::Invalid { line, .. } if *line >= 1);
                    proptest::prop_assert!(is_located, "{}", error);
                }
            }
        }

        #[test]
        fn yamlish_input_never_panics(
            lines in proptest::collection::vec(
                "( {0,4})(- )?(pools|name|hosts|port|tls|pins|receiver|mode|auth|x)?(: )?(\\[|\\{|a|1|-1|true|~|&a|\\*a|<<)?",
                0..12,
            )
        ) {
            let text = lines.join("\n");
            let _ = parse(&text, "p.yml");
        }
    }
}
