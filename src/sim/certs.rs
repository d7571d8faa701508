//! Each simulated host's TLS identity (`xenguard sim --tls`): a self-signed certificate with
//! the host's name and address as subject alternative names, as xapi generates at
//! installation, and the SHA-256 fingerprint the configuration's pins take. Rotating one
//! (`POST /hosts/{host}/certificate`) models a reinstall or `xe host-refresh-server-certificate`.

use std::sync::Arc;

use rcgen::{CertificateParams, DnType, KeyPair, SanType};
use sha2::{Digest, Sha256};
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// One host's certificate, ready to serve.
#[derive(Debug, Clone)]
pub struct HostCert {
    /// The rustls server configuration presenting it.
    pub config: Arc<ServerConfig>,
    /// SHA-256 of the certificate (DER), lower-case hex.
    pub sha256: String,
}

/// A new self-signed certificate for the host `name` at `address`.
pub fn generate(name: &str, address: &str) -> Result<HostCert, String> {
    let mut params = CertificateParams::new(vec![name.to_owned()]).map_err(|e| e.to_string())?;
    params.distinguished_name.push(DnType::CommonName, name);
    let ip = address
        .parse()
        .map_err(|e| format!("{address} is not an IP address: {e}"))?;
    params.subject_alt_names.push(SanType::IpAddress(ip));
    let key = KeyPair::generate().map_err(|e| e.to_string())?;
    let cert = params.self_signed(&key).map_err(|e| e.to_string())?;
    let der = CertificateDer::from(cert.der().to_vec());
    let sha256 = Sha256::digest(der.as_ref())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(
            vec![der],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        )
        .map_err(|e| e.to_string())?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(HostCert {
        config: Arc::new(config),
        sha256,
    })
}
