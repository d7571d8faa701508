//! The receiver's webhook against real HTTP clients and a real Alertmanager: authentication,
//! limits, strict parsing, pool and host checks, deduplication, planning in observe mode,
//! aborting on `resolved`, and a journal that survives a restart.

use crate::common;

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::start_sim;
use serde_json::{Value, json};
use xenguard::remediation::Receiver;
use xenguard::sim::RunningSim;

struct Harness {
    sim: RunningSim,
    dir: tempfile::TempDir,
    address: SocketAddr,
    receiver: Arc<Receiver>,
    yaml: String,
}

fn write(dir: &tempfile::TempDir, name: &str, content: &str) -> String {
    let path = dir.path().join(name);
    let mut f = std::fs::File::create(&path).unwrap();
    writeln!(f, "{content}").unwrap();
    path.display().to_string()
}

fn config_yaml(sim: &RunningSim, dir: &tempfile::TempDir, mode: &str) -> String {
    let password = write(dir, "pool.pw", "xenguard");
    let token = write(dir, "token", "s3cret-token");
    format!(
        "pools:\n  - name: sim\n    hosts: [{}]\n    scheme: http\n    port: {}\n    password_file: {password}\nreceiver:\n  mode: {mode}\n  auth: {{bearer_token_file: {token}}}\n  journal_path: {}\n  max_body_bytes: 65536\n",
        common::hosts_yaml(sim),
        sim.port(),
        dir.path().join("journal.db").display()
    )
}

async fn serve(receiver: &Arc<Receiver>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = receiver.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    address
}

async fn harness() -> Harness {
    let sim = start_sim(3, 1).await;
    let dir = tempfile::tempdir().unwrap();
    let yaml = config_yaml(&sim, &dir, "observe");
    let config = xenguard::config::parse(&yaml, "test.yml").unwrap_or_else(|e| panic!("{e}"));
    let receiver = Receiver::start(&config).unwrap();
    let address = serve(&receiver).await;
    Harness {
        sim,
        dir,
        address,
        receiver,
        yaml,
    }
}

/// A well-formed uuid that names no simulated host.
const STRANGER: &str = "00000000-0000-4000-8000-000000000000";

fn payload(status: &str, alertname: &str, host_uuid: &str, starts_at: &str) -> Value {
    let labels = json!({"alertname": alertname, "host_uuid": host_uuid});
    let fingerprint = format!("fp-{host_uuid}");
    common::notification(
        status,
        vec![common::alert(status, labels, starts_at, &fingerprint)],
    )
}

impl Harness {
    async fn post(&self, body: &Value, token: Option<&str>) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .post(format!("http://{}/alertmanager", self.address))
            .json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    async fn remediations(&self) -> Vec<Value> {
        let url = format!("http://{}/remediations", self.address);
        reqwest::get(url)
            .await
            .unwrap()
            .json::<Vec<Value>>()
            .await
            .unwrap()
    }

    async fn wait_for_phase(&self, phase: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let list = self.remediations().await;
            if list.iter().any(|r| r["phase"] == phase) {
                return list;
            }
            assert!(
                Instant::now() < deadline,
                "no remediation reached {phase}: {list:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn host_uuid(&self, i: usize) -> String {
        self.sim.with_model(|m, _| m.hosts[i].uuid.clone())
    }

    /// Waits until the receiver has read the pool's host list (unknown hosts become 422),
    /// then checks that an unknown host is refused.
    async fn wait_for_host_list(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.receiver.hosts_known("sim") {
            assert!(Instant::now() < deadline, "host list never loaded");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let stranger = payload("firing", "XenHostNotLive", STRANGER, "2026-01-01T00:00:00Z");
        let (status, body) = self.post(&stranger, Some("s3cret-token")).await;
        assert_eq!(status, 422, "{body}");
        assert!(
            body["error"]
                .as_str()
                .unwrap()
                .contains("not a host of pool"),
            "{body}"
        );
    }
}

#[tokio::test]
async fn requests_are_authenticated_bounded_and_checked() {
    let h = harness().await;
    let host = h.host_uuid(1);
    let good = payload(
        "firing",
        "XenVmsStuckOnDeadHost",
        &host,
        "2026-11-22T04:00:00Z",
    );
    assert_eq!(h.post(&good, None).await.0, 401);
    assert_eq!(h.post(&good, Some("wrong")).await.0, 403);

    let http = reqwest::Client::new();
    let url = format!("http://{}/alertmanager", h.address);
    let text = http
        .post(&url)
        .bearer_auth("s3cret-token")
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(text.status(), 415);
    let big = http
        .post(&url)
        .bearer_auth("s3cret-token")
        .header("content-type", "application/json")
        .body(vec![b' '; 70_000])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let huge = http
        .post(&url)
        .bearer_auth("s3cret-token")
        .header("content-type", "application/json")
        .body(vec![b' '; 10 * 1024 * 1024])
        .send()
        .await;
    // Refused at the limit: a 413, or the connection closed before the body was all sent.
    assert!(huge.is_err() || huge.unwrap().status() == 413);
    let bad = http
        .post(&url)
        .bearer_auth("s3cret-token")
        .header("content-type", "application/json")
        .body("{\"version\":\"4\"")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let mut other_pool = good.clone();
    other_pool["alerts"][0]["labels"]["pool"] = json!("elsewhere");
    let (status, body) = h.post(&other_pool, Some("s3cret-token")).await;
    assert_eq!(status, 422);
    assert!(
        body["error"].as_str().unwrap().contains("unknown pool"),
        "{body}"
    );
    h.wait_for_host_list().await;

    // Label values that try shell or path injection name no pool or host: refused, and the
    // fence agent (whose input comes from the configuration only) never hears of them.
    for (label, value) in [
        ("host_uuid", "$(poweroff); rm -rf / #"),
        ("host_uuid", "../../../etc/passwd"),
        ("pool", "sim`reboot`"),
        ("host_uuid", "a\naction=on"),
    ] {
        let mut evil = good.clone();
        evil["alerts"][0]["labels"][label] = json!(value);
        let (status, body) = h.post(&evil, Some("s3cret-token")).await;
        assert_eq!(status, 422, "{value}: {body}");
    }
    assert_eq!(
        h.receiver.journal().counts().unwrap().3,
        0,
        "no remediation"
    );

    let (status, body) = h.post(&good, Some("s3cret-token")).await;
    assert_eq!((status, body["new"].as_u64()), (200, Some(1)));
    let (_, _, rejections, _) = h.receiver.journal().counts().unwrap();
    assert!(
        rejections >= 10,
        "every rejection is journaled ({rejections})"
    );
}

#[tokio::test]
async fn a_bad_alert_is_rejected_alone_and_bad_times_or_names_are_refused() {
    let h = harness().await;
    // A label that is no uuid is refused before the host list is even known.
    let forged = payload(
        "firing",
        "XenHostNotLive",
        "x\nlevel=ERROR msg=forged",
        "2026-11-22T04:00:00Z",
    );
    let (status, body) = h.post(&forged, Some("s3cret-token")).await;
    assert_eq!(status, 422, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("is not a UUID"),
        "{body}"
    );
    h.wait_for_host_list().await;
    let host = h.host_uuid(1);
    // One alert about a host the pool lacks, one good: the good one is taken.
    let mut mixed = payload("firing", "XenHostNotLive", &host, "2026-11-22T04:00:00Z");
    let mut bad = mixed["alerts"][0].clone();
    bad["labels"]["host_uuid"] = json!(STRANGER);
    bad["fingerprint"] = json!("fp-stranger");
    mixed["alerts"].as_array_mut().unwrap().insert(0, bad);
    let (status, body) = h.post(&mixed, Some("s3cret-token")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["new"], 1, "{body}");
    let rejected = body["rejected"].as_array().unwrap();
    assert_eq!(rejected.len(), 1, "{body}");
    assert!(
        rejected[0].as_str().unwrap().contains("not a host of pool"),
        "{body}"
    );
    let list = h.wait_for_phase("planned").await;
    assert!(
        list.iter().any(|r| r["host_uuid"] == host.as_str()),
        "{list:?}"
    );
    // Times that are not RFC 3339 make no remediation.
    for field in ["startsAt", "endsAt"] {
        let mut undated = payload("firing", "XenHostNotLive", &host, "2026-11-22T05:00:00Z");
        undated["alerts"][0][field] = json!("not-a-date");
        undated["alerts"][0]["fingerprint"] = json!(format!("fp-{field}"));
        let (status, body) = h.post(&undated, Some("s3cret-token")).await;
        assert_eq!(status, 400, "{field}: {body}");
        assert!(
            body["error"].as_str().unwrap().contains("RFC 3339"),
            "{body}"
        );
    }
    assert_eq!(
        h.receiver.journal().counts().unwrap().3,
        1,
        "one remediation"
    );
}

#[tokio::test]
async fn duplicates_make_one_plan_and_resolved_aborts_it() {
    let h = harness().await;
    h.wait_for_host_list().await;
    let host = h.host_uuid(1);
    let firing = payload(
        "firing",
        "XenVmsStuckOnDeadHost",
        &host,
        "2026-11-22T04:00:00Z",
    );
    for _ in 0..3 {
        assert_eq!(h.post(&firing, Some("s3cret-token")).await.0, 200);
    }
    let list = h.wait_for_phase("planned").await;
    let ours: Vec<&Value> = list
        .iter()
        .filter(|r| r["host_uuid"] == host.as_str())
        .collect();
    assert_eq!(ours.len(), 1, "one plan for one firing: {list:?}");
    assert_eq!(ours[0]["kind"], "recover_host");
    let id = ours[0]["id"].as_i64().unwrap();
    let detail: Value = reqwest::get(format!("http://{}/remediations/{id}", h.address))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(detail["steps"][0]["kind"], "planned");
    assert!(
        detail["steps"][0]["detail"]["steps"][1]
            .as_str()
            .unwrap()
            .starts_with("fence")
    );

    let (status, body) = h
        .post(
            &payload(
                "resolved",
                "XenVmsStuckOnDeadHost",
                &host,
                "2026-11-22T04:00:00Z",
            ),
            Some("s3cret-token"),
        )
        .await;
    assert_eq!((status, body["new"].as_u64()), (200, Some(1)));
    h.wait_for_phase("aborted").await;

    // A resolved notification never plans anything by itself.
    let other = h.host_uuid(2);
    assert_eq!(
        h.post(
            &payload(
                "resolved",
                "XenVmsStuckOnDeadHost",
                &other,
                "2026-11-22T05:00:00Z"
            ),
            Some("s3cret-token")
        )
        .await
        .0,
        200
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        h.remediations()
            .await
            .iter()
            .all(|r| r["host_uuid"] != other.as_str())
    );

    // The journal survives a restart: the same firing still maps to its remediation.
    h.receiver.shutdown();
    let config = xenguard::config::parse(&h.yaml, "test.yml").unwrap();
    let again = Receiver::start(&config).unwrap();
    let list = again.journal().list(10).unwrap();
    assert!(list.iter().any(|r| r.id == id && r.phase == "aborted"));
    assert!(h.dir.path().join("journal.db").exists());
}

#[tokio::test]
async fn acting_modes_need_webhook_authentication() {
    let sim = start_sim(1, 0).await;
    let dir = tempfile::tempdir().unwrap();
    for mode in ["auto", "approve"] {
        let yaml = config_yaml(&sim, &dir, mode);
        let without_auth: String = yaml
            .lines()
            .filter(|l| !l.contains("auth:"))
            .map(|l| format!("{l}\n"))
            .collect();
        let err = xenguard::config::parse(&without_auth, "t.yml")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("`mode: {mode}` needs `receiver.auth`")),
            "{err}"
        );
        let config = xenguard::config::parse(&yaml, "t.yml").unwrap();
        Receiver::start(&config)
            .unwrap_or_else(|e| panic!("{mode} with auth: {e}"))
            .shutdown();
    }
}

/// A real Alertmanager (Debian's prometheus-alertmanager 0.25) delivers to the receiver with
/// the bearer token from a credentials file; the receiver plans once.
#[tokio::test]
async fn a_real_alertmanager_delivers_and_the_receiver_plans() {
    let h = harness().await;
    h.wait_for_host_list().await;
    let token_file = h.dir.path().join("token").display().to_string();
    let am_port = common::free_port();
    let am_config = write(
        &h.dir,
        "alertmanager.yml",
        &format!(
            "route:\n  receiver: xenguard\n  group_by: ['alertname', 'pool', 'host_uuid']\n  group_wait: 0s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: xenguard\n    webhook_configs:\n      - url: http://{}/alertmanager\n        send_resolved: true\n        http_config:\n          authorization:\n            credentials_file: {token_file}\n",
            h.address
        ),
    );
    let mut am = std::process::Command::new("prometheus-alertmanager")
        .args([
            format!("--config.file={am_config}"),
            format!("--storage.path={}", h.dir.path().join("am").display()),
            format!("--web.listen-address=127.0.0.1:{am_port}"),
            "--cluster.listen-address=".into(),
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("prometheus-alertmanager is installed by scripts/setup.sh");
    let host = h.host_uuid(2);
    let alert = json!([{"labels": {"alertname": "XenVmsStuckOnDeadHost", "pool": "sim", "host_uuid": host, "severity": "critical"}, "annotations": {"summary": "test"}}]);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let posted = http
            .post(format!("http://127.0.0.1:{am_port}/api/v2/alerts"))
            .json(&alert)
            .send()
            .await;
        if posted.is_ok_and(|r| r.status().is_success()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "Alertmanager never accepted the alert"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let planned = loop {
        let list = h.remediations().await;
        if let Some(r) = list.iter().find(|r| r["host_uuid"] == host.as_str()) {
            break r.clone();
        }
        if Instant::now() > deadline {
            let _ = am.kill();
            panic!("Alertmanager's webhook never produced a plan: {list:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let _ = am.kill();
    let _ = am.wait();
    assert_eq!(planned["phase"], "planned");
    assert_eq!(planned["alertname"], "XenVmsStuckOnDeadHost");
    assert_eq!(
        h.receiver.journal().counts().unwrap().3,
        1,
        "exactly one remediation"
    );
}

#[tokio::test]
async fn two_receivers_never_share_a_journal() {
    let h = harness().await;
    let config = xenguard::config::parse(&h.yaml, "test.yml").unwrap();
    let second = Receiver::start(&config).unwrap_err().to_string();
    assert!(second.contains("held by another receiver"), "{second}");
    // The operator's commands still read it.
    assert!(xenguard::remediation::journal::Journal::open(&config.receiver.journal_path).is_ok());
    h.receiver.shutdown();
    let third = Receiver::start(&config).expect("the lock is free once the first stops");
    third.shutdown();
}

/// Requests without the right credentials are counted, never journaled: a flood of them
/// neither grows the journal nor queues fsyncs ahead of the executor's.
#[tokio::test]
async fn unauthenticated_floods_are_counted_not_journaled() {
    let h = harness().await;
    let journal = h.dir.path().join("journal.db");
    let size = |p: &std::path::Path| {
        let wal = p.with_extension("db-wal");
        std::fs::metadata(p).map_or(0, |m| m.len()) + std::fs::metadata(wal).map_or(0, |m| m.len())
    };
    let before = (h.receiver.journal().counts().unwrap().2, size(&journal));
    let body = payload("firing", "XenHostNotLive", STRANGER, "2026-11-22T04:00:00Z");
    let started = Instant::now();
    let n = 1_000;
    for i in 0..n {
        let token = if i % 2 == 0 { None } else { Some("wrong") };
        let status = h.post(&body, token).await.0;
        assert!(status == 401 || status == 403, "{status}");
    }
    let took = started.elapsed();
    let after = (h.receiver.journal().counts().unwrap().2, size(&journal));
    // Bytes may still change by the inventory the receiver keeps (every 15 s): rows may not.
    assert_eq!(after.0, before.0, "rejections journaled");
    let metrics = reqwest::get(format!("http://{}/metrics", h.address))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(&format!(
            "xenguard_remediation_webhooks_total{{code=\"401\"}} {}",
            n / 2
        )),
        "{metrics}"
    );
    println!(
        "{n} refused requests in {:.2} s ({:.0} µs each); journal {} bytes before, {} after",
        took.as_secs_f64(),
        took.as_secs_f64() * 1e6 / f64::from(n),
        before.1,
        after.1
    );
}

#[tokio::test]
async fn reads_can_require_the_webhook_credentials() {
    let h = harness().await;
    h.receiver.shutdown();
    let yaml = format!("{}  auth_reads: true\n", h.yaml);
    let config = xenguard::config::parse(&yaml, "test.yml").unwrap_or_else(|e| panic!("{e}"));
    let receiver = Receiver::start(&config).unwrap();
    let address = serve(&receiver).await;
    let http = reqwest::Client::new();
    for path in ["remediations", "remediations/1"] {
        let url = format!("http://{address}/{path}");
        assert_eq!(http.get(&url).send().await.unwrap().status(), 401, "{path}");
        let wrong = http.get(&url).bearer_auth("nope").send().await.unwrap();
        assert_eq!(wrong.status(), 403, "{path}");
        let right = http
            .get(&url)
            .bearer_auth("s3cret-token")
            .send()
            .await
            .unwrap();
        assert!(right.status() == 200 || right.status() == 404, "{path}");
    }
    // Without the key the list stays open, as before.
    let open = reqwest::get(format!("http://{}/remediations", h.address))
        .await
        .unwrap();
    assert_eq!(open.status(), 200);
    receiver.shutdown();
}
