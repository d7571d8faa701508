//! TLS to a host (xapi-notes.md §1.4): verification on by default, a CA bundle, a per-host SHA-256
//! pin of the leaf certificate, and the explicit insecure mode, against a real TLS server.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use xenguard::xapi::Error;
use xenguard::xapi::transport::{Scheme, TlsOptions, Transport, TransportOptions};
use xenguard::xapi::wire::{self, Value};

/// A CA and a leaf certificate for 127.0.0.1 signed by it.
struct Pki {
    ca_pem: String,
    leaf_der: Vec<u8>,
    leaf_key_der: Vec<u8>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(Vec::<String>::new()).unwrap();
    leaf.subject_alt_names = vec![SanType::IpAddress("127.0.0.1".parse().unwrap())];
    leaf.distinguished_name.push(DnType::CommonName, "xcp-host");
    let issuer = rcgen::Issuer::from_params(&ca, &ca_key);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        leaf_der: leaf_cert.der().to_vec(),
        leaf_key_der: leaf_key.serialize_der(),
    }
}

/// Serves one XML-RPC answer per connection over TLS; returns the port.
async fn serve(pki: &Pki) -> u16 {
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let config = tokio_rustls::rustls::ServerConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![CertificateDer::from(pki.leaf_der.clone())],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(pki.leaf_key_der.clone())),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                let mut buf = vec![0u8; 8192];
                let _ = tls.read(&mut buf).await;
                let body = wire::encode_success(&Value::string("OpaqueRef:ok"));
                let head = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: text/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = tls.write_all(head.as_bytes()).await;
                let _ = tls.write_all(body.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    port
}

async fn call(port: u16, tls: TlsOptions) -> Result<Value, Error> {
    let transport = Transport::new(TransportOptions {
        scheme: Scheme::Https,
        port,
        connect_timeout: Duration::from_secs(2),
        call_timeout: Duration::from_secs(5),
        tls,
        ..TransportOptions::default()
    })?;
    transport.call("127.0.0.1", "pool.get_all", &[], None).await
}

#[tokio::test]
async fn verification_pins_ca_bundles_and_the_explicit_insecure_mode() {
    let pki = pki();
    let port = serve(&pki).await;
    let ok = Value::string("OpaqueRef:ok");

    let default = call(port, TlsOptions::default()).await.unwrap_err();
    assert!(
        matches!(default, Error::Tls { .. }),
        "a self-signed host is refused by default: {default}"
    );

    let ca = TlsOptions {
        ca_pem: Some(pki.ca_pem.clone().into_bytes()),
        ..TlsOptions::default()
    };
    assert_eq!(
        call(port, ca).await.unwrap(),
        ok,
        "trusted through the CA bundle"
    );

    let digest: [u8; 32] = Sha256::digest(&pki.leaf_der).into();
    let pinned = TlsOptions {
        pins: BTreeMap::from([("127.0.0.1".to_owned(), digest)]),
        ..TlsOptions::default()
    };
    assert_eq!(
        call(port, pinned).await.unwrap(),
        ok,
        "trusted through its pin alone"
    );

    let wrong = TlsOptions {
        pins: BTreeMap::from([("127.0.0.1".to_owned(), [7u8; 32])]),
        ..TlsOptions::default()
    };
    let err = call(port, wrong).await.unwrap_err();
    assert!(
        matches!(err, Error::Tls { .. }),
        "a pin mismatch is a TLS error: {err}"
    );
    assert!(err.to_string().contains("not the pinned"), "{err}");

    let insecure = TlsOptions {
        insecure_skip_verify: true,
        ..TlsOptions::default()
    };
    assert_eq!(call(port, insecure).await.unwrap(), ok);
}
