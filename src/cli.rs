//! The command line (architecture.md §2 is the contract: docs, tests, Helm and the demo use it).

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Keeps XenServer / XCP-ng pools alive: a Prometheus exporter that tells the truth about each
/// pool even when its master is gone, and an Alertmanager webhook receiver that runs a fenced,
/// confirmed, journaled recovery.
#[derive(Debug, Parser)]
#[command(name = "xenguard", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Log line format on stderr: `text` (coloured only on a terminal), `logfmt` or `json`.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        env = "XENGUARD_LOG_FORMAT"
    )]
    pub log_format: crate::telemetry::LogFormat,
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulated 3-host pool, exporter and receiver in one process; prints the URLs and a
    /// short script of faults to try. Ctrl-C stops it.
    Demo(DemoArgs),
    /// Run the XAPI simulator: one XML-RPC endpoint per simulated host on 127.0.0.(10+i), and
    /// a control API to inject faults and read the ground truth.
    Sim(SimArgs),
    /// Run the Prometheus exporter for the pools in the configuration file.
    Exporter(ConfigArgs),
    /// Run the Alertmanager webhook receiver that performs fenced recovery.
    Receiver(ConfigArgs),
    /// Run exporter and receiver in one process.
    Serve(ConfigArgs),
    /// Validate a configuration file; prints every error at once, with file:line.
    CheckConfig(CheckConfigArgs),
    /// Operator view of the remediation journal.
    Journal(JournalArgs),
    /// A fence agent for simulated hosts (ClusterLabs contract: `key=value` lines on stdin,
    /// `action=off|on|status|monitor`, `control=URL`, `host=NAME`; exit 0 on, 2 off, 1 error).
    /// Hidden: the demo runs it as its hosts' BMCs.
    #[command(hide = true)]
    FenceSim,
}

/// Arguments of `demo`.
#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Let the receiver act: `auto` mode, a simulated BMC per host (`fence-sim`), so a host
    /// that dies is confirmed dead, fenced and its VMs restarted elsewhere. Without it the
    /// receiver only plans and journals (observe mode).
    #[arg(long)]
    pub auto: bool,
    /// `realistic`: calls that contact a silent host wait as real xapi does (docs/simulator.md,
    /// "Timing"); `instant`: every call answers at once.
    #[arg(long, default_value = "realistic")]
    pub timing: crate::sim::Timing,
}

/// Arguments of `sim`.
#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Number of simulated hosts (1 to 1000); host i (1-based) listens on 127.0.0.(10+i), and
    /// past host 200 on 127.0.1.x, 127.0.2.x and so on.
    #[arg(long, default_value_t = 3)]
    pub hosts: u16,
    /// VMs started on each host.
    #[arg(long, default_value_t = 2)]
    pub vms_per_host: u32,
    /// TCP port every simulated host listens on (0: any free port, the same on every host;
    /// printed at start).
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Scenario file (YAML) of timed faults.
    #[arg(long)]
    pub scenario: Option<PathBuf>,
    /// Simulated seconds per real second (60 makes the 600 s liveness timeout pass in 10 s).
    #[arg(long, default_value_t = 1.0)]
    pub time_scale: f64,
    /// `realistic`: calls that contact a silent host wait as real xapi does (docs/simulator.md,
    /// "Timing"); `instant`: every call answers at once.
    #[arg(long, default_value = "realistic")]
    pub timing: crate::sim::Timing,
    /// Serve every host's XAPI over HTTPS (same address and port) with its own self-signed
    /// certificate; `GET /hosts` gives each one's SHA-256 fingerprint for the pins.
    #[arg(long)]
    pub tls: bool,
    /// File holding the root password of the simulated hosts (default: `xenguard`).
    #[arg(long)]
    pub password_file: Option<PathBuf>,
    /// Address of the control API.
    #[arg(long, default_value = "127.0.0.1:9880")]
    pub control: String,
}

/// A configuration file argument.
#[derive(Debug, clap::Args)]
pub struct ConfigArgs {
    /// Path of the YAML configuration file.
    #[arg(long, short)]
    pub config: PathBuf,
}

/// Arguments of `check-config`.
#[derive(Debug, clap::Args)]
pub struct CheckConfigArgs {
    /// Path of the YAML configuration file to check.
    pub file: PathBuf,
}

/// Arguments of `journal`.
#[derive(Debug, clap::Args)]
pub struct JournalArgs {
    /// What to do with the journal.
    #[command(subcommand)]
    pub action: Option<JournalAction>,
    /// Path of the YAML configuration file (names the journal database).
    #[arg(long, short, global = true)]
    pub config: Option<PathBuf>,
}

/// Journal actions.
#[derive(Debug, Subcommand)]
pub enum JournalAction {
    /// List remediations, newest first (the default).
    List,
    /// Show one remediation with its steps and evidence.
    Show {
        /// Remediation id.
        id: u64,
    },
    /// Approve a remediation waiting in `approve` mode.
    Approve {
        /// Remediation id.
        id: u64,
    },
    /// Abort a remediation that has not acted yet (before the fence), or one held half-way
    /// (you finish the recovery by hand).
    Abort {
        /// Remediation id.
        id: u64,
    },
    /// Continue a remediation held before a recovery step (kill switch, or a restart in
    /// `observe` mode): remove the kill-switch file first.
    Resume {
        /// Remediation id.
        id: u64,
    },
    /// Record an operator's attestation that the host is powered off (instead of a fence);
    /// only for a remediation waiting for it (no fence agent configured for the host).
    Attest {
        /// Remediation id.
        id: u64,
        /// Required: you checked (console, BMC, power strip) that the host is powered off.
        /// Starting its VMs elsewhere while it still runs them corrupts their disks.
        #[arg(long)]
        host_is_powered_off: bool,
    },
}
