//! xenguard: keeps XenServer / XCP-ng pools alive.
//!
//! # Layout
//!
//! ```text
//! cli         the command line (clap): subcommands of architecture.md §2
//! config      one YAML file, validated as a whole (every error at once, with file:line):
//!             located YAML tree and its serde deserializer, raw schema, per-section checks,
//!             validated model
//! pools       configuration -> XAPI transport options and credentials
//! xapi        the XAPI client: XML-RPC codec (wire, stream; one set of conversion rules in
//!             coerce, shared by both decoders), records, errors, transport,
//!             session, probe, PoolReader (read-only) and PoolActuator (the few mutating
//!             calls). Knows nothing of Prometheus, alerts or remediation.
//! exporter    pool watchers (event.from cache), host probes, metric rendering, /metrics
//! remediation webhook, policy, confirmation (probes, then a pure decision), guards, state
//!             machine, executor and its effects, fencing levels, recovery steps, split
//!             brain, journal, the pool's lease, the receiver's clock, stored words,
//!             receiver metrics
//! sim         the XAPI simulator: ground-truth model, its database copies and their wire
//!             padding, XAPI methods, XML-RPC server per host, control API, scenarios
//! fence_sim   `xenguard fence-sim`: a fence agent (ClusterLabs contract) that powers simulated
//!             hosts off and on through the simulator's control API; the demo's BMCs
//! demo        `xenguard demo`: simulator, exporter, receiver, alert stand-in, landing page
//! shutdown    SIGINT/SIGTERM as a future
//! telemetry   tracing subscriber set-up (text, logfmt or JSON lines)
//! ```
//!
//! # Rules
//!
//! Dependencies point one way: `xapi` <- `exporter`, `xapi` <- `remediation`, `xapi::wire` and
//! `xapi::records` <- `sim`. The simulator never imports exporter or remediation code. Only the
//! remediation executor holds a `PoolActuator`. Pure logic has no I/O and no wall clock.

pub mod cli;
pub mod config;
pub mod demo;
pub mod exporter;
pub mod fence_sim;
pub mod pools;
pub mod remediation;
pub mod shutdown;
pub mod sim;
pub mod telemetry;
pub mod xapi;
