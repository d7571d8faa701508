//! HTTP(S) transport for XML-RPC calls: one connection pool per configured pool of hosts,
//! timeouts on every call, bounded answers, and TLS that verifies by default.
//!
//! TLS modes (xapi-notes.md §1.4): the system trust store; a CA bundle; a per-host SHA-256 pin of
//! the leaf certificate (xapi's default certificates are self-signed, so pinning is the practical
//! strict mode); or, only when explicitly configured, no verification at all, logged loudly.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};

use super::error::{Error, Failure};
use serde::de::DeserializeOwned;

use super::stream;
use super::wire::{self, Value, WireError};

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// Plain HTTP (xapi's port 80; the simulator).
    Http,
    /// HTTPS (stunnel on port 443 in front of xapi).
    Https,
}

/// How to trust a host's certificate.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    /// PEM bundle of CAs to trust instead of the system store.
    pub ca_pem: Option<Vec<u8>>,
    /// Host address -> SHA-256 of its leaf certificate (32 bytes).
    pub pins: BTreeMap<String, [u8; 32]>,
    /// Accept any certificate. Explicit opt-in only; logged as a warning at start.
    pub insecure_skip_verify: bool,
}

/// Largest answer read by default. A 5,000-VM pool's full `event.from` dump of every class the
/// exporter watches is about 76 MB with realistic records; this leaves room for larger pools
/// while bounding what a broken or hostile peer can make the client hold.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Transport settings for one pool.
#[derive(Debug, Clone)]
pub struct TransportOptions {
    /// Scheme of every host in the pool.
    pub scheme: Scheme,
    /// Port of every host in the pool.
    pub port: u16,
    /// TCP (and TLS) connect limit.
    pub connect_timeout: Duration,
    /// Whole-call limit unless a call asks for another.
    pub call_timeout: Duration,
    /// Largest answer read; a larger one is abandoned with [`Error::TooLarge`].
    pub max_response_bytes: usize,
    /// Certificate trust.
    pub tls: TlsOptions,
}

impl Default for TransportOptions {
    fn default() -> Self {
        TransportOptions {
            scheme: Scheme::Https,
            port: 443,
            connect_timeout: Duration::from_secs(3),
            call_timeout: Duration::from_secs(10),
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            tls: TlsOptions::default(),
        }
    }
}

/// Told about every call: method, outcome (`ok` or an [`Error::kind`]) and duration. Lets
/// callers count calls without this module knowing how they are reported.
pub type CallObserver = Arc<dyn Fn(&str, &str, Duration) + Send + Sync>;

/// Sends XML-RPC calls to the hosts of one pool.
#[derive(Clone)]
pub struct Transport {
    client: reqwest::Client,
    options: Arc<TransportOptions>,
    observer: Option<CallObserver>,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Transport {
    /// Builds the HTTP client; fails on an unusable CA bundle.
    pub fn new(options: TransportOptions) -> Result<Transport, Error> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("xenguard/", env!("CARGO_PKG_VERSION")))
            .no_proxy()
            .pool_idle_timeout(Duration::from_secs(60));
        if options.scheme == Scheme::Https {
            builder = configure_tls(builder, &options.tls)?;
        }
        let client = builder.build().map_err(|e| Error::Config(e.to_string()))?;
        Ok(Transport {
            client,
            options: Arc::new(options),
            observer: None,
        })
    }

    /// The same transport, reporting every call to `observer`.
    pub fn with_observer(mut self, observer: CallObserver) -> Transport {
        self.observer = Some(observer);
        self
    }

    /// The options this transport was built with.
    pub fn options(&self) -> &TransportOptions {
        &self.options
    }

    /// The endpoint URL of a host address.
    pub fn url(&self, address: &str) -> String {
        let scheme = match self.options.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        let host = if address.contains(':') && !address.starts_with('[') {
            format!("[{address}]")
        } else {
            address.to_owned()
        };
        format!("{scheme}://{host}:{}/", self.options.port)
    }

    /// `GET` of `path_and_query` on the host at `address` (xapi's HTTP handlers), within
    /// `timeout`, reading at most `limit` bytes; any status but 200 is [`Error::HttpStatus`].
    pub async fn get(
        &self,
        address: &str,
        path_and_query: &str,
        timeout: Duration,
        limit: usize,
    ) -> Result<Vec<u8>, Error> {
        let what = path_and_query.split('?').next().unwrap_or_default();
        let url = format!(
            "{}{}",
            self.url(address),
            path_and_query.trim_start_matches('/')
        );
        let attempt = async {
            // xapi's HTTP handlers (xcp-rrdd behind `/rrd_updates`) close the connection after
            // one answer while saying keep-alive: never put it back in the pool.
            let response = self
                .client
                .get(url)
                .header(reqwest::header::CONNECTION, "close")
                .send()
                .await
                .map_err(|e| classify(address, what, self.options.connect_timeout, e))?;
            if response.status() != reqwest::StatusCode::OK {
                return Err(Error::HttpStatus {
                    address: address.to_owned(),
                    status: response.status().as_u16(),
                });
            }
            read_whole(address, what, response, limit).await
        };
        tokio::time::timeout(timeout, attempt)
            .await
            .map_err(|_| Error::Timeout {
                address: address.to_owned(),
                method: what.to_owned(),
                seconds: timeout.as_secs_f64(),
            })?
    }

    /// Calls `method` on the host at `address`; `timeout` overrides the default call limit.
    /// An API failure comes back as [`Error::Api`].
    pub async fn call(
        &self,
        address: &str,
        method: &str,
        params: &[Value],
        timeout: Option<Duration>,
    ) -> Result<Value, Error> {
        self.call_as(address, method, params, timeout).await
    }

    /// [`Transport::call`], decoding the result straight into `T` as the body streams through
    /// the parser: no intermediate [`Value`] tree (a 5,000-VM answer decodes in a tenth of the
    /// memory).
    pub async fn call_as<T: DeserializeOwned + Send + 'static>(
        &self,
        address: &str,
        method: &str,
        params: &[Value],
        timeout: Option<Duration>,
    ) -> Result<T, Error> {
        let started = tokio::time::Instant::now();
        let result = self.call_unobserved(address, method, params, timeout).await;
        if let Some(observer) = &self.observer {
            let outcome = match &result {
                Ok(_) => "ok",
                Err(e) => e.kind(),
            };
            observer(method, outcome, started.elapsed());
        }
        result
    }

    async fn call_unobserved<T: DeserializeOwned + Send + 'static>(
        &self,
        address: &str,
        method: &str,
        params: &[Value],
        timeout: Option<Duration>,
    ) -> Result<T, Error> {
        let limit = timeout.unwrap_or(self.options.call_timeout);
        let body = wire::encode_call(method, params);
        let attempt = async {
            let response = self
                .client
                .post(self.url(address))
                .header(reqwest::header::CONTENT_TYPE, "text/xml")
                .body(body)
                .send()
                .await
                .map_err(|e| classify(address, method, self.options.connect_timeout, e))?;
            let status = response.status();
            if status != reqwest::StatusCode::OK {
                return Err(Error::HttpStatus {
                    address: address.to_owned(),
                    status: status.as_u16(),
                });
            }
            decode_body::<T>(address, method, response, self.options.max_response_bytes).await
        };
        let decoded =
            tokio::time::timeout(limit, attempt)
                .await
                .map_err(|_| Error::Timeout {
                    address: address.to_owned(),
                    method: method.to_owned(),
                    seconds: limit.as_secs_f64(),
                })??;
        match decoded {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(description)) => Err(Failure::from_description(description).into()),
            Err(WireError::Fault { code, message }) => Err(Error::Fault {
                address: address.to_owned(),
                code,
                message,
            }),
            Err(source) => Err(Error::Decode {
                address: address.to_owned(),
                method: method.to_owned(),
                source,
            }),
        }
    }
}

/// Answers of a known size up to this are read whole and decoded in place (most calls: a
/// login, a record, an empty event batch); larger or unsized ones are decoded as they arrive.
const READ_WHOLE_UP_TO: u64 = 256 * 1024;

/// Chunks read ahead of the decoder at most: with hyper's chunks of at most a few hundred KiB,
/// this bounds what a large answer holds in flight.
const CHUNKS_IN_FLIGHT: usize = 4;

type Decoded<T> = Result<Result<T, Vec<String>>, WireError>;

/// Decodes an answer, never holding a large one whole: over [`READ_WHOLE_UP_TO`] the decoder
/// runs on a blocking thread and reads the chunks as this task receives them. Either way the
/// body limit is counted as bytes arrive.
async fn decode_body<T: DeserializeOwned + Send + 'static>(
    address: &str,
    method: &str,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Decoded<T>, Error> {
    let too_large = || Error::TooLarge {
        address: address.to_owned(),
        limit,
    };
    let length = response.content_length();
    if length.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    if length.is_some_and(|n| n <= READ_WHOLE_UP_TO) {
        let body = read_whole(address, method, response, limit).await?;
        return Ok(stream::decode_response_into::<T>(&body));
    }
    let (tx, rx) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
    // Dropping this task's future (the call's timeout) drops `tx`: the decoder then meets the
    // end of its input and stops, so no thread is left waiting on a peer.
    let decoder = tokio::task::spawn_blocking(move || {
        stream::decode_response_from::<T, _>(Chunks {
            rx,
            current: bytes::Bytes::new(),
        })
    });
    let mut received = 0;
    let mut failed = None;
    loop {
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                failed = Some(classify(address, method, Duration::ZERO, e));
                break;
            }
        };
        received += chunk.len();
        if received > limit {
            failed = Some(too_large());
            break;
        }
        if tx.send(Ok(chunk)).await.is_err() {
            break; // The decoder has finished or failed.
        }
    }
    if let Some(e) = &failed {
        // The decoder must not take a cut-off body for a short one.
        let _ = tx.send(Err(e.to_string())).await;
    }
    drop(tx);
    let decoded = decoder.await.map_err(|e| Error::Transport {
        address: address.to_owned(),
        message: format!("the decoder stopped: {e}"),
    })?;
    match failed {
        Some(e) => Err(e),
        None => Ok(decoded),
    }
}

/// Reads a body whole, giving up as soon as it passes `limit`.
async fn read_whole(
    address: &str,
    what: &str,
    mut response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, Error> {
    let mut body =
        Vec::with_capacity(response.content_length().unwrap_or(0).min(limit as u64) as usize);
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| classify(address, what, Duration::ZERO, e))?
    {
        if body.len() + chunk.len() > limit {
            return Err(Error::TooLarge {
                address: address.to_owned(),
                limit,
            });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The chunks of a body as a blocking [`Read`](std::io::Read), for the decoder's thread.
struct Chunks {
    rx: tokio::sync::mpsc::Receiver<Result<bytes::Bytes, String>>,
    current: bytes::Bytes,
}

impl std::io::Read for Chunks {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(message)) => return Err(std::io::Error::other(message)),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len());
        out[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// Whether `e` is a rustls error, possibly wrapped in (nested) io::Errors, whose `source()`
/// skips the error they wrap.
fn is_rustls(e: &(dyn std::error::Error + 'static)) -> bool {
    if e.downcast_ref::<rustls::Error>().is_some() {
        return true;
    }
    e.downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
        .is_some_and(|inner| is_rustls(inner))
}

/// Whether an io error somewhere in `e`'s sources is a refused connection.
fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::ConnectionRefused)
        {
            return true;
        }
        source = s.source();
    }
    false
}

/// Sorts a reqwest error into the kinds a caller reasons about. reqwest itself only times out
/// connections (`connect_limit`); whole-call limits are enforced around it.
fn classify(address: &str, method: &str, connect_limit: Duration, e: reqwest::Error) -> Error {
    let address = address.to_owned();
    let mut message = e.to_string();
    let mut source = std::error::Error::source(&e);
    let mut tls = false;
    while let Some(s) = source {
        message = format!("{message}: {s}");
        tls |= is_rustls(s);
        source = s.source();
    }
    if tls {
        Error::Tls { address, message }
    } else if e.is_timeout() {
        Error::Timeout {
            address,
            method: method.to_owned(),
            seconds: connect_limit.as_secs_f64(),
        }
    } else if e.is_connect() {
        Error::Connect {
            address,
            message,
            refused: refused(&e),
        }
    } else {
        Error::Transport { address, message }
    }
}

fn configure_tls(
    builder: reqwest::ClientBuilder,
    tls: &TlsOptions,
) -> Result<reqwest::ClientBuilder, Error> {
    if tls.insecure_skip_verify {
        tracing::warn!(
            "TLS certificate verification is disabled by configuration: any host can impersonate the pool."
        );
        return Ok(builder.tls_danger_accept_invalid_certs(true));
    }
    let roots = match &tls.ca_pem {
        Some(pem) => Some(
            reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| Error::Config(format!("CA bundle: {e}")))?,
        ),
        None => None,
    };
    if tls.pins.is_empty() {
        return Ok(match roots {
            Some(certs) => builder.tls_certs_only(certs),
            None => builder,
        });
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let fallback: Arc<dyn ServerCertVerifier> = match &tls.ca_pem {
        Some(pem) => {
            let mut store = rustls::RootCertStore::empty();
            for cert in rustls::pki_types::pem::PemObject::pem_slice_iter(pem) {
                let cert: CertificateDer<'static> =
                    cert.map_err(|e| Error::Config(format!("CA bundle: {e}")))?;
                store
                    .add(cert)
                    .map_err(|e| Error::Config(format!("CA bundle: {e}")))?;
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(
                Arc::new(store),
                provider.clone(),
            )
            .build()
            .map_err(|e| Error::Config(format!("CA bundle: {e}")))?
        }
        None => Arc::new(
            rustls_platform_verifier::Verifier::new(provider.clone())
                .map_err(|e| Error::Config(format!("system trust store: {e}")))?,
        ),
    };
    let verifier = PinningVerifier {
        pins: tls.pins.clone(),
        fallback,
        provider: provider.clone(),
    };
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Config(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_no_client_auth();
    Ok(builder.tls_backend_preconfigured(config))
}

/// Trusts a pinned host by the SHA-256 of its leaf certificate alone (its chain, name and
/// dates are what the pin replaces); every other host goes to the fallback verifier.
#[derive(Debug)]
struct PinningVerifier {
    pins: BTreeMap<String, [u8; 32]>,
    fallback: Arc<dyn ServerCertVerifier>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinningVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = match server_name {
            ServerName::DnsName(d) => d.as_ref().to_owned(),
            ServerName::IpAddress(ip) => std::net::IpAddr::from(*ip).to_string(),
            _ => String::new(),
        };
        match self.pins.get(&name) {
            Some(pin) => {
                let digest: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
                if &digest == pin {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::General(format!(
                        "certificate of {name} has SHA-256 {}, not the pinned {}",
                        fingerprint(&digest),
                        fingerprint(pin)
                    )))
                }
            }
            None => {
                self.fallback
                    .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Upper-case hex bytes joined by `:`, as xapi prints `fingerprint_sha256` (xapi-notes.md §1.4).
pub fn fingerprint(digest: &[u8]) -> String {
    digest
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// Parses a SHA-256 fingerprint written as 64 hex digits, with or without colons.
pub fn parse_fingerprint(text: &str) -> Option<[u8; 32]> {
    let hex: String = text.chars().filter(|c| *c != ':').collect();
    if hex.len() != 64 || !hex.is_ascii() {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprints_round_trip() {
        let digest: [u8; 32] = Sha256::digest(b"cert").into();
        let text = fingerprint(&digest);
        assert_eq!(parse_fingerprint(&text), Some(digest));
        assert_eq!(
            parse_fingerprint(&text.replace(':', "").to_lowercase()),
            Some(digest)
        );
        assert_eq!(parse_fingerprint("AB:CD"), None);
    }

    #[test]
    fn urls_bracket_ipv6() {
        let t = Transport::new(TransportOptions {
            scheme: Scheme::Http,
            port: 8080,
            ..Default::default()
        })
        .unwrap();
        assert_eq!(t.url("127.0.0.11"), "http://127.0.0.11:8080/");
        assert_eq!(t.url("::1"), "http://[::1]:8080/");
    }
}
