//! The XAPI client: XML-RPC codec, typed records and errors, transport, sessions, and the two
//! faces remediation and the exporter see — the read-only [`PoolReader`] and the
//! [`PoolActuator`] for the few mutating calls. Knows nothing of Prometheus, alerts or
//! remediation.

pub mod wire;
