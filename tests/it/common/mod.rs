//! Shared test harness: simulated pools on addresses no other test uses.

#![allow(dead_code)]

pub mod bmc;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use xenguard::sim::{PoolSpec, RunningSim, SimOptions};
use xenguard::xapi::transport::{Scheme, Transport, TransportOptions};
use xenguard::xapi::{Credentials, Password, Session};

static NEXT_POOL: AtomicU8 = AtomicU8::new(0);

/// Starts a pool of `hosts` hosts with `vms` guests each on its own 127.a.b.11+ addresses and
/// a free port, with the clock stopped (tests move it with `advance`).
pub async fn start_sim(hosts: usize, vms: usize) -> RunningSim {
    start_sim_with_password(hosts, vms, "xenguard").await
}

/// [`start_sim`] with every host's XAPI over HTTPS (its own self-signed certificate).
pub async fn start_sim_tls(hosts: usize, vms: usize) -> RunningSim {
    start_sim_options(hosts, vms, "xenguard", true, None).await
}

/// [`start_sim`] playing a scenario file.
pub async fn start_sim_scenario(hosts: usize, vms: usize, scenario: &Path) -> RunningSim {
    start_sim_options(hosts, vms, "xenguard", false, Some(scenario.to_owned())).await
}

/// [`start_sim`] with another root password.
pub async fn start_sim_with_password(hosts: usize, vms: usize, password: &str) -> RunningSim {
    start_sim_options(hosts, vms, password, false, None).await
}

async fn start_sim_options(
    hosts: usize,
    vms: usize,
    password: &str,
    tls: bool,
    scenario: Option<std::path::PathBuf>,
) -> RunningSim {
    let pid = std::process::id();
    let second = 20 + (pid % 200) as u8;
    let third = NEXT_POOL.fetch_add(1, Ordering::SeqCst);
    let options = SimOptions {
        spec: PoolSpec {
            hosts,
            vms_per_host: vms,
            first_address: [127, second, third, 11],
            password: password.to_owned(),
            timing: xenguard::sim::Timing::Realistic,
        },
        port: 0,
        control: SocketAddr::from(([127, 0, 0, 1], 0)),
        time_scale: 0.0,
        scenario,
        tls,
    };
    RunningSim::start(options).await.expect("simulator starts")
}

/// A port that was free a moment ago on loopback: only for a process the test starts, which
/// must be told its port before it binds (servers in this process bind port 0 themselves).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A plain-HTTP transport to the simulator with short limits.
pub fn transport(sim: &RunningSim) -> Transport {
    Transport::new(TransportOptions {
        scheme: Scheme::Http,
        port: sim.port(),
        connect_timeout: Duration::from_millis(500),
        call_timeout: Duration::from_secs(2),
        ..TransportOptions::default()
    })
    .unwrap()
}

/// root / xenguard.
pub fn credentials() -> Credentials {
    Credentials {
        username: "root".into(),
        password: Password::new("xenguard"),
    }
}

/// A pool session seeded with every host address.
pub fn session(sim: &RunningSim) -> Session {
    Session::new(
        transport(sim),
        credentials(),
        "xenguard-test",
        sim.host_addresses(),
    )
}

/// [`session`] for a `--tls` simulator. The test's own side channel: it trusts any
/// certificate (the product under test is configured with pins).
pub fn session_tls(sim: &RunningSim) -> Session {
    let transport = Transport::new(TransportOptions {
        scheme: Scheme::Https,
        port: sim.port(),
        connect_timeout: Duration::from_millis(500),
        call_timeout: Duration::from_secs(2),
        tls: xenguard::xapi::transport::TlsOptions {
            insecure_skip_verify: true,
            ..Default::default()
        },
        ..TransportOptions::default()
    })
    .unwrap();
    Session::new(
        transport,
        credentials(),
        "xenguard-test",
        sim.host_addresses(),
    )
}

/// Every host but the first (the dead master) is in emergency mode and answers a login with
/// `INTERNAL_ERROR`, the error of its last failed connect to the master.
pub fn assert_slaves_answer_internal_error(sim: &RunningSim) {
    let errors = sim.with_model(|m, _| {
        m.hosts[1..]
            .iter()
            .map(|h| (h.emergency, h.emergency_error.code.to_string()))
            .collect::<Vec<_>>()
    });
    assert!(
        errors
            .iter()
            .all(|(emergency, code)| *emergency && code == "INTERNAL_ERROR"),
        "{errors:?}"
    );
}

/// Moves a running guest of host `from` to host `to` with `VM.pool_migrate` (the one on shared
/// storage; a guest on `from`'s local disk cannot move) and returns its record as it was.
pub async fn migrate_a_guest(
    session: &std::sync::Arc<Session>,
    from: &xenguard::xapi::records::Ref<xenguard::xapi::records::Host>,
    to: &xenguard::xapi::records::Ref<xenguard::xapi::records::Host>,
) -> xenguard::xapi::records::Vm {
    use xenguard::xapi::records::Vm;
    use xenguard::xapi::wire::Value as Xml;
    let reader = xenguard::xapi::PoolReader::new(session.clone());
    let on_from: Vec<_> = reader
        .all::<Vm>()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, v)| v.is_guest() && v.resident_on == *from)
        .collect();
    for (vm, record) in on_from {
        let params = [
            Xml::string(vm.as_str()),
            Xml::string(to.as_str()),
            Xml::Struct(vec![]),
        ];
        if session.call("VM.pool_migrate", &params).await.is_ok() {
            return record;
        }
    }
    panic!("no guest of {from:?} could migrate");
}

/// One alert of an Alertmanager notification: `labels` over `pool="sim"`,
/// `severity="critical"`.
pub fn alert(
    status: &str,
    labels: serde_json::Value,
    starts_at: &str,
    fingerprint: &str,
) -> serde_json::Value {
    let mut all = serde_json::json!({"pool": "sim", "severity": "critical"});
    if let (Some(all), Some(labels)) = (all.as_object_mut(), labels.as_object()) {
        all.extend(labels.clone());
    }
    serde_json::json!({
        "status": status, "labels": all, "annotations": {}, "startsAt": starts_at,
        "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "", "fingerprint": fingerprint
    })
}

/// An Alertmanager webhook notification (version 4) of `alerts`, as Alertmanager sends it.
pub fn notification(status: &str, alerts: Vec<serde_json::Value>) -> serde_json::Value {
    serde_json::json!({
        "version": "4", "groupKey": "{}:{pool=\"sim\"}", "truncatedAlerts": 0, "status": status,
        "receiver": "xenguard", "groupLabels": {}, "commonLabels": {}, "commonAnnotations": {},
        "externalURL": "http://am:9093", "alerts": alerts
    })
}

/// Base URL of the control API.
pub fn control_url(sim: &RunningSim) -> String {
    format!("http://{}", sim.control_addr())
}

/// The pool's host addresses as a YAML flow list (`"127.x.y.11", "127.x.y.12"`).
pub fn hosts_yaml(sim: &RunningSim) -> String {
    let quoted: Vec<String> = sim
        .host_addresses()
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect();
    quoted.join(", ")
}

/// A pool's `tls:` line pinning each host of a `--tls` simulator to the certificate
/// fingerprint `GET /hosts` gives (indented for a `pools:` entry).
pub async fn tls_pins_yaml(sim: &RunningSim) -> String {
    let hosts: Vec<serde_json::Value> = reqwest::get(format!("{}/hosts", control_url(sim)))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pins: Vec<String> = hosts
        .iter()
        .map(|h| {
            format!(
                "\"{}\": \"{}\"",
                h["address"].as_str().unwrap(),
                h["tls_sha256"].as_str().unwrap()
            )
        })
        .collect();
    format!("    tls: {{pins: {{{}}}}}\n", pins.join(", "))
}

/// A temporary file holding the simulated pool's password.
pub fn password_file() -> tempfile::NamedTempFile {
    use std::io::Write as _;
    let mut file = tempfile::NamedTempFile::new().unwrap();
    writeln!(file, "xenguard").unwrap();
    file
}

/// `POST {control}/{path}` with a JSON body; panics unless it succeeds.
pub async fn control(sim: &RunningSim, path: &str, body: serde_json::Value) {
    let url = format!("{}/{path}", control_url(sim));
    let response = reqwest::Client::new()
        .post(&url)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
}

/// The uuid of a simulated host named by name label, address, uuid or reference.
pub fn host_uuid(sim: &RunningSim, host: &str) -> String {
    sim.with_model(|m, _| m.hosts[m.find_host(host).unwrap()].uuid.clone())
}

/// Ground truth: guest uuid -> the uuids of the hosts it really runs on.
pub fn truth(sim: &RunningSim) -> std::collections::BTreeMap<String, Vec<String>> {
    sim.with_model(|m, _| {
        m.guests
            .keys()
            .map(|vm| {
                let on = m
                    .running
                    .get(vm)
                    .map(|s| s.iter().cloned().collect())
                    .unwrap_or_default();
                (vm.clone(), on)
            })
            .collect()
    })
}

/// The guests that really run on `host` now.
pub fn guests_on(sim: &RunningSim, host: &str) -> Vec<String> {
    let uuid = host_uuid(sim, host);
    truth(sim)
        .into_iter()
        .filter(|(_, on)| on.contains(&uuid))
        .map(|(vm, _)| vm)
        .collect()
}

/// Samples the ground truth every 5 ms and keeps the most VMs ever seen running twice.
pub struct DoubleRunning {
    max: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl DoubleRunning {
    /// Starts sampling `sim`.
    pub fn watch(sim: std::sync::Arc<RunningSim>) -> DoubleRunning {
        let max = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = max.clone();
        let task = tokio::spawn(async move {
            loop {
                seen.fetch_max(sim.with_model(|m, _| m.double_running()), Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        });
        DoubleRunning { max, task }
    }

    /// The most VMs seen running on two hosts at once so far.
    pub fn max(&self) -> usize {
        self.max.load(Ordering::SeqCst)
    }
}

impl Drop for DoubleRunning {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `DELETE {control}/{path}`; panics unless it succeeds.
pub async fn control_delete(sim: &RunningSim, path: &str) {
    let url = format!("{}/{path}", control_url(sim));
    let response = reqwest::Client::new().delete(&url).send().await.unwrap();
    assert!(
        response.status().is_success(),
        "{url}: {}",
        response.status()
    );
}
