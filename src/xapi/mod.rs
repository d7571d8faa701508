//! The XAPI client: XML-RPC codec, typed records and errors, transport, sessions, and the two
//! faces remediation and the exporter see — the read-only [`PoolReader`] and the
//! [`PoolActuator`] for the few mutating calls. Knows nothing of Prometheus, alerts or
//! remediation.

pub mod actuator;
pub mod coerce;
pub mod error;
pub mod input;
pub mod probe;
pub mod reader;
pub mod records;
pub mod session;
pub mod stream;
pub mod transport;
pub mod typed;
pub mod wire;

pub use actuator::PoolActuator;
pub use error::{Error, ErrorCode, Failure, NoAnswer};
pub use reader::PoolReader;
pub use session::{Credentials, LocalSession, Password, Session};
