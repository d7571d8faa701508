//! From a configured pool to XAPI client parts: transport options (TLS, timeouts) and
//! credentials. Shared by the exporter and the receiver, which otherwise know nothing of each
//! other.

use std::collections::BTreeMap;

use crate::config::{self, PoolConfig};
use crate::xapi::transport::{Scheme, TlsOptions, TransportOptions, parse_fingerprint};
use crate::xapi::{Credentials, Password};

/// A configured pool could not be turned into a client.
#[derive(Debug, thiserror::Error)]
#[error("pool {pool}: {message}")]
pub struct PoolSetupError {
    /// Pool name.
    pub pool: String,
    /// What failed.
    pub message: String,
}

/// The transport settings of a configured pool (reads its CA bundle).
pub fn transport_options(pool: &PoolConfig) -> Result<TransportOptions, PoolSetupError> {
    let fail = |message: String| PoolSetupError {
        pool: pool.name.clone(),
        message,
    };
    let ca_pem = match &pool.tls.ca_file {
        Some(path) => Some(
            std::fs::read(path)
                .map_err(|e| fail(format!("cannot read CA bundle {}: {e}", path.display())))?,
        ),
        None => None,
    };
    let mut pins = BTreeMap::new();
    for (address, text) in &pool.tls.pins {
        let digest = parse_fingerprint(text)
            .ok_or_else(|| fail(format!("bad SHA-256 pin for {address}")))?;
        pins.insert(address.clone(), digest);
    }
    Ok(TransportOptions {
        scheme: match pool.scheme {
            config::Scheme::Http => Scheme::Http,
            config::Scheme::Https => Scheme::Https,
        },
        port: pool.port,
        connect_timeout: pool.timeouts.connect,
        call_timeout: pool.timeouts.call,
        tls: TlsOptions {
            ca_pem,
            pins,
            insecure_skip_verify: pool.tls.insecure_skip_verify,
        },
        ..TransportOptions::default()
    })
}

/// The credentials of a configured pool, read from their file or environment variable.
pub fn credentials(pool: &PoolConfig) -> Result<Credentials, PoolSetupError> {
    let secret = pool.password().map_err(|e| PoolSetupError {
        pool: pool.name.clone(),
        message: e.to_string(),
    })?;
    Ok(Credentials {
        username: pool.username.clone(),
        password: Password::new(secret.expose()),
    })
}
