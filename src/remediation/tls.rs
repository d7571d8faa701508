//! TLS on the receiver's listener: `receiver.tls` becomes a rustls [`ServerConfig`].
//!
//! The certificate chain and key are read once, at start-up; any problem with a file is a
//! start-up error naming that file. With `client_ca_file`, every client must present a
//! certificate that chains to one of its CAs (mutual TLS); without it, any client may connect
//! and the webhook's own authentication is the only check.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

use super::ReceiverError;
use crate::config::ReceiverTls;

/// Longest wait for a client's TLS handshake; a client that stalls loses its connection.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Pause after a failed `accept` (out of file descriptors, say).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// Builds the listener's TLS configuration (HTTP/1.1 over TLS 1.2 or 1.3).
pub fn server_config(tls: &ReceiverTls) -> Result<Arc<ServerConfig>, ReceiverError> {
    let provider = Arc::new(tokio_rustls::rustls::crypto::aws_lc_rs::default_provider());
    let chain = certificates(&tls.cert_file, "cert_file")?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_file)
        .map_err(|e| file_error("key_file", &tls.key_file, e))?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| ReceiverError::Tls(format!("receiver.tls: {e}")))?;
    let builder = match &tls.client_ca_file {
        None => builder.with_no_client_auth(),
        Some(path) => builder.with_client_cert_verifier(client_verifier(path, provider)?),
    };
    let mut config = builder.with_single_cert(chain, key).map_err(|e| {
        ReceiverError::Tls(format!(
            "receiver.tls: the key in {} does not fit the certificate in {}: {e}",
            tls.key_file.display(),
            tls.cert_file.display()
        ))
    })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Clients must present a certificate signed by a CA of `path`.
fn client_verifier(
    path: &Path,
    provider: Arc<CryptoProvider>,
) -> Result<Arc<dyn tokio_rustls::rustls::server::danger::ClientCertVerifier>, ReceiverError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(path, "client_ca_file")? {
        roots
            .add(cert)
            .map_err(|e| file_error("client_ca_file", path, e))?;
    }
    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
        .build()
        .map_err(|e| file_error("client_ca_file", path, e))
}

/// Every certificate of a PEM file; at least one.
fn certificates(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, ReceiverError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(Iterator::collect::<Result<Vec<_>, _>>)
        .map_err(|e| file_error(key, path, e))?;
    if certs.is_empty() {
        return Err(file_error(key, path, "no PEM certificate found"));
    }
    Ok(certs)
}

fn file_error(key: &str, path: &Path, error: impl std::fmt::Display) -> ReceiverError {
    ReceiverError::Tls(format!("receiver.tls.{key} {}: {error}", path.display()))
}

/// Serves `router` over TLS on `listener` until `shutdown` resolves, then stops accepting and
/// drops the connections still open. A failed or stalled handshake only drops its connection.
pub async fn serve(
    listener: TcpListener,
    config: Arc<ServerConfig>,
    router: Router,
    shutdown: impl Future<Output = ()>,
) {
    let acceptor = TlsAcceptor::from(config);
    let mut connections = JoinSet::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        while connections.try_join_next().is_some() {}
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors, say: back off instead of spinning.
                tracing::debug!(%error, "Cannot accept a connection.");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        connections.spawn(connection(acceptor.clone(), stream, peer, router.clone()));
    }
    connections.shutdown().await;
}

/// One connection: the handshake, then HTTP/1.1 until the client or the server closes it.
async fn connection(acceptor: TlsAcceptor, stream: TcpStream, peer: SocketAddr, router: Router) {
    let tls = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => tls,
        Ok(Err(error)) => {
            tracing::debug!(%peer, %error, "TLS handshake failed; connection dropped.");
            return;
        }
        Err(_) => {
            tracing::debug!(%peer, "TLS handshake timed out; connection dropped.");
            return;
        }
    };
    let served = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(tls), TowerToHyperService::new(router))
        .await;
    if let Err(error) = served {
        tracing::debug!(%peer, %error, "Connection ended with an error.");
    }
}
