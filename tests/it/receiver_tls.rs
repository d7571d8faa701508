//! `receiver.tls`: the receiver over HTTPS, with and without client certificates (mTLS),
//! against reqwest clients that trust, or do not trust, a CA generated here; and the start-up
//! errors of unusable certificate files.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::start_sim;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    SanType,
};
use serde_json::json;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use xenguard::remediation::ReceiverError;
use xenguard::sim::RunningSim;

const TOKEN: &str = "tls-test-token";

/// A CA that can sign leaf certificates.
struct Ca {
    pem: String,
    params: CertificateParams,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { pem, params, key }
    }

    /// A leaf certificate and its key, both PEM.
    fn leaf(&self, name: &str, usage: ExtendedKeyUsagePurpose) -> (String, String) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        if usage == ExtendedKeyUsagePurpose::ServerAuth {
            params.subject_alt_names = vec![
                SanType::IpAddress("127.0.0.1".parse().unwrap()),
                SanType::DnsName("localhost".try_into().unwrap()),
            ];
        }
        params.extended_key_usages = vec![usage];
        let issuer = Issuer::from_params(&self.params, &self.key);
        let cert = params.signed_by(&key, &issuer).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn certificate(&self) -> reqwest::Certificate {
        reqwest::Certificate::from_pem(self.pem.as_bytes()).unwrap()
    }

    /// A client identity (certificate and key in one PEM) signed by this CA.
    fn client_identity(&self) -> reqwest::Identity {
        let (cert, key) = self.leaf("alertmanager", ExtendedKeyUsagePurpose::ClientAuth);
        reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap()
    }
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

/// A receiver started through `remediation::run` with `receiver.tls`.
struct Running {
    _sim: RunningSim,
    _dir: tempfile::TempDir,
    port: u16,
    host_uuid: String,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ReceiverError>>,
}

impl Running {
    /// Stops the receiver and checks that `run` returned cleanly.
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let result = tokio::time::timeout(Duration::from_secs(10), &mut self.task)
            .await
            .expect("the receiver stops after the shutdown signal")
            .unwrap();
        assert!(result.is_ok(), "{result:?}");
    }
}

/// Starts the receiver on a free port; `client_ca` turns on mTLS.
async fn start(server_ca: &Ca, client_ca: Option<&Ca>) -> Running {
    let sim = start_sim(2, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = server_ca.leaf("xenguard-receiver", ExtendedKeyUsagePurpose::ServerAuth);
    let cert_file = write(dir.path(), "receiver.crt", &cert);
    let key_file = write(dir.path(), "receiver.key", &key);
    let password = write(dir.path(), "pool.pw", "xenguard\n");
    let token = write(dir.path(), "token", &format!("{TOKEN}\n"));
    let client_ca_line = match client_ca {
        Some(ca) => format!(
            "    client_ca_file: {}\n",
            write(dir.path(), "clients.pem", &ca.pem).display()
        ),
        None => String::new(),
    };
    let port = common::free_port();
    let yaml = format!(
        "pools:\n  - name: sim\n    hosts: [{}]\n    scheme: http\n    port: {}\n    password_file: {}\n\
         receiver:\n  listen: 127.0.0.1:{port}\n  auth: {{bearer_token_file: {}}}\n  journal_path: {}\n\
         \x20 tls:\n    cert_file: {}\n    key_file: {}\n{client_ca_line}",
        common::hosts_yaml(&sim),
        sim.port(),
        password.display(),
        token.display(),
        dir.path().join("journal.db").display(),
        cert_file.display(),
        key_file.display(),
    );
    let config = xenguard::config::parse(&yaml, "test.yml").unwrap_or_else(|e| panic!("{e}"));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        xenguard::remediation::run(&config, async {
            let _ = stopped.await;
        })
        .await
    });
    let host_uuid = sim.with_model(|m, _| m.hosts[0].uuid.clone());
    Running {
        _sim: sim,
        _dir: dir,
        port,
        host_uuid,
        stop: Some(stop),
        task,
    }
}

/// A client trusting only `ca`, optionally presenting `identity`.
fn client(ca: &Ca, identity: Option<reqwest::Identity>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .tls_certs_only([ca.certificate()]);
    if let Some(identity) = identity {
        builder = builder.identity(identity);
    }
    builder.build().unwrap()
}

async fn healthy(client: &reqwest::Client, url: &str) -> Result<String, reqwest::Error> {
    client
        .get(url)
        .send()
        .await?
        .error_for_status()?
        .text()
        .await
}

/// Waits until `client` gets an answer from `/-/healthy`.
async fn wait_healthy(running: &Running, client: &reqwest::Client) {
    let url = format!("https://127.0.0.1:{}/-/healthy", running.port);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match healthy(client, &url).await {
            Ok(text) => {
                assert_eq!(text, "OK\n");
                return;
            }
            Err(error) => {
                assert!(!running.task.is_finished(), "the receiver stopped: {error}");
                assert!(
                    Instant::now() < deadline,
                    "the receiver never answered: {error}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[tokio::test]
async fn tls_serves_https_only_to_clients_that_trust_its_ca() {
    let ca = Ca::new("receiver CA");
    let running = start(&ca, None).await;
    let trusting = client(&ca, None);
    wait_healthy(&running, &trusting).await;

    let localhost = format!("https://localhost:{}/-/healthy", running.port);
    assert_eq!(healthy(&trusting, &localhost).await.unwrap(), "OK\n");

    let plain = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let http = format!("http://127.0.0.1:{}/-/healthy", running.port);
    assert!(
        healthy(&plain, &http).await.is_err(),
        "plain HTTP is refused"
    );

    let stranger = client(&Ca::new("another CA"), None);
    let https = format!("https://127.0.0.1:{}/-/healthy", running.port);
    assert!(
        healthy(&stranger, &https).await.is_err(),
        "a client that does not trust the CA refuses the receiver"
    );
    // Failed handshakes do not stop the server.
    assert_eq!(healthy(&trusting, &https).await.unwrap(), "OK\n");

    let labels = json!({"alertname": "XenHostNotLive", "host_uuid": running.host_uuid});
    let payload = common::notification(
        "firing",
        vec![common::alert(
            "firing",
            labels,
            "2026-01-01T00:00:00Z",
            "fp-tls",
        )],
    );
    let webhook = format!("https://127.0.0.1:{}/alertmanager", running.port);
    let unauthenticated = trusting.post(&webhook).json(&payload).send().await.unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    let response = trusting
        .post(&webhook)
        .bearer_auth(TOKEN)
        .json(&payload)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    assert_eq!(status, 200, "{}", response.text().await.unwrap_or_default());

    running.stop().await;
}

#[tokio::test]
async fn mtls_requires_a_client_certificate_from_the_configured_ca() {
    let server_ca = Ca::new("receiver CA");
    let client_ca = Ca::new("client CA");
    let running = start(&server_ca, Some(&client_ca)).await;
    let authorised = client(&server_ca, Some(client_ca.client_identity()));
    wait_healthy(&running, &authorised).await;
    let url = format!("https://127.0.0.1:{}/-/healthy", running.port);

    let anonymous = client(&server_ca, None);
    assert!(
        healthy(&anonymous, &url).await.is_err(),
        "a client without a certificate is refused"
    );

    let outsider = client(&server_ca, Some(Ca::new("other CA").client_identity()));
    assert!(
        healthy(&outsider, &url).await.is_err(),
        "a client certificate from another CA is refused"
    );

    // A client certificate signed by the server's CA is not enough either.
    let wrong_signer = client(&server_ca, Some(server_ca.client_identity()));
    assert!(healthy(&wrong_signer, &url).await.is_err());

    assert_eq!(healthy(&authorised, &url).await.unwrap(), "OK\n");
    running.stop().await;
}

/// `run` with a `receiver.tls` section naming these files; returns its start-up error.
async fn startup_error(dir: &Path, cert_file: &Path, key_file: &Path) -> String {
    let yaml = format!(
        "pools:\n  - name: lab\n    hosts: [127.0.0.1]\n    scheme: http\n    password_file: /p\n\
         receiver:\n  listen: 127.0.0.1:{}\n  journal_path: {}\n  tls: {{cert_file: {}, key_file: {}}}\n",
        common::free_port(),
        dir.join("journal.db").display(),
        cert_file.display(),
        key_file.display(),
    );
    let config = xenguard::config::parse(&yaml, "test.yml").unwrap_or_else(|e| panic!("{e}"));
    let result = tokio::time::timeout(
        Duration::from_secs(10),
        xenguard::remediation::run(&config, std::future::pending()),
    )
    .await
    .expect("run returns at once");
    match result {
        Err(error @ ReceiverError::Tls(_)) => error.to_string(),
        other => panic!("expected a TLS start-up error, got {other:?}"),
    }
}

#[tokio::test]
async fn unusable_certificate_files_are_start_up_errors_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new("receiver CA");
    let (cert, key) = ca.leaf("xenguard-receiver", ExtendedKeyUsagePurpose::ServerAuth);
    let cert_file = write(dir.path(), "receiver.crt", &cert);
    let key_file = write(dir.path(), "receiver.key", &key);

    let missing = dir.path().join("missing.key");
    let message = startup_error(dir.path(), &cert_file, &missing).await;
    assert!(
        message.contains(&format!("receiver.tls.key_file {}", missing.display())),
        "{message}"
    );

    let message = startup_error(dir.path(), &key_file, &key_file).await;
    assert!(
        message.contains(&format!("receiver.tls.cert_file {}", key_file.display())),
        "{message}"
    );
    assert!(message.contains("no PEM certificate found"), "{message}");

    let message = startup_error(dir.path(), &cert_file, &cert_file).await;
    assert!(
        message.contains(&format!("receiver.tls.key_file {}", cert_file.display())),
        "{message}"
    );
}
