//! Misbehaviour injected into one host's XAPI endpoint through the control API
//! (`POST /hosts/{host}/faults`, docs/simulator.md "Injected faults").

use serde::Serialize;

/// An injected misbehaviour of one host's XAPI endpoint (control API `faults`).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// Answer every call (or only `methods`) with this failure.
    Fail {
        /// `ErrorDescription`: code then parameters.
        error: Vec<String>,
    },
    /// Answer with malformed XML.
    Garbage,
    /// Answer with a well-formed body whose value has the wrong type.
    WrongTypes,
    /// Answer with a body of this many bytes.
    Oversize {
        /// Body size in bytes.
        bytes: usize,
    },
    /// Accept the call and never answer.
    Silence,
    /// Answer normally, this many real milliseconds late (only the `methods` named).
    Slow {
        /// Delay in real milliseconds.
        ms: u64,
    },
}

/// Faults and latency configured on one host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Added before every answer, in real milliseconds.
    #[serde(default)]
    pub latency_ms: u64,
    /// The misbehaviour, if any.
    #[serde(default)]
    pub fault: Option<Fault>,
    /// Methods the fault applies to (all when empty).
    #[serde(default)]
    pub methods: Vec<String>,
}
