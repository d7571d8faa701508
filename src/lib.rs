//! xenguard: keeps XenServer / XCP-ng pools alive.
//!
//! # Layout
//!
//! ```text
//! config      one YAML file, validated as a whole (every error at once, with file:line)
//! telemetry   tracing subscriber set-up
//! xapi        the XAPI client: XML-RPC codec (wire), records, errors, transport, session,
//!             PoolReader (read-only) and PoolActuator (the few mutating calls).
//!             Knows nothing of Prometheus, alerts or remediation.
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
pub mod pools;
pub mod remediation;
pub mod shutdown;
pub mod sim;
pub mod telemetry;
pub mod xapi;
