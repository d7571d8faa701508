//! Fenced recovery end to end, in process: the receiver in `auto` or `approve` mode against the
//! simulator, each simulated host with a real BMC (`ipmi_sim`, wired to the simulator's power
//! control) fenced by the real `fence_ipmilan`. Webhooks are posted directly (the Alertmanager
//! path is tested in `receiver.rs` and the drills). Throughout, the simulator's ground truth
//! must never show a VM running twice.

use crate::common;
mod lease;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::bmc::Bmcs;
use serde_json::{Value, json};
use xenguard::remediation::Receiver;
use xenguard::sim::RunningSim;
use xenguard::xapi::records::{Host, HostMetrics};

const TOKEN: &str = "recovery-test-token";
/// The journal of a dead master's full recovery, step by step.
const MASTER_RECOVERY_STEPS: &[&str] = &[
    "planned",
    "confirm",
    "fence",
    "promote",
    "recover_slaves",
    "reset_vms",
    "release_locks",
    "clear_affinity",
    "start_vms",
    "verify",
];

/// Simulated seconds per real second: the 10 s fuse of a promotion passes in half a second.
const TIME_SCALE: f64 = 20.0;

struct Pool {
    sim: Arc<RunningSim>,
    bmcs: Bmcs,
    /// Holds the journal and secret files for the pool's lifetime.
    _dir: tempfile::TempDir,
    config: xenguard::config::Config,
    receiver: Arc<Receiver>,
    server: tokio::task::JoinHandle<()>,
    address: SocketAddr,
    double: common::DoubleRunning,
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.receiver.shutdown();
        self.server.abort();
    }
}

/// Serves the receiver's routes on a free local port.
async fn serve(receiver: &Arc<Receiver>) -> (SocketAddr, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = receiver.router();
    let server = tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (address, server)
}

/// Options of a test pool.
struct Setup {
    hosts: usize,
    vms: usize,
    mode: &'static str,
    /// Hosts whose BMC is left out of the `fencing:` section.
    unfenced: &'static [&'static str],
    /// `receiver.refused_grace_seconds`.
    refused_grace: u64,
    /// Every host's XAPI over HTTPS, pinned.
    tls: bool,
    extra: String,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            hosts: 3,
            vms: 2,
            mode: "auto",
            unfenced: &[],
            refused_grace: 2,
            tls: false,
            extra: String::new(),
        }
    }
}

fn write(dir: &tempfile::TempDir, name: &str, content: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, format!("{content}\n")).unwrap();
    path.display().to_string()
}

impl Pool {
    async fn start(setup: Setup) -> Pool {
        let sim = Arc::new(if setup.tls {
            common::start_sim_tls(setup.hosts, setup.vms).await
        } else {
            common::start_sim(setup.hosts, setup.vms).await
        });
        // With TLS: https, and each host pinned to the fingerprint GET /hosts gives.
        let (scheme, pins) = if setup.tls {
            ("https", common::tls_pins_yaml(&sim).await)
        } else {
            ("http", String::new())
        };
        let bmcs = Bmcs::start(&sim);
        let dir = tempfile::tempdir().unwrap();
        let password = write(&dir, "pool.pw", "xenguard");
        let token = write(&dir, "token", TOKEN);
        let fencing: String = {
            // Drop the entries of unfenced hosts (each entry is five lines, keyed by uuid).
            let unfenced: Vec<String> = setup
                .unfenced
                .iter()
                .map(|h| common::host_uuid(&sim, h))
                .collect();
            let full = bmcs.fencing_yaml("sim");
            let mut out = Vec::new();
            let mut skip = 0;
            for line in full.lines() {
                if line.starts_with("    - pool:") {
                    skip = 0;
                }
                if line.trim_start().starts_with("host:")
                    && unfenced.iter().any(|h| {
                        line.trim_end().ends_with(&format!("\"{h}\""))
                            || line.trim_end().ends_with(h)
                    })
                {
                    out.pop();
                    skip = 4;
                    continue;
                }
                if skip > 0 {
                    skip -= 1;
                    continue;
                }
                out.push(line.to_owned());
            }
            out.join("\n")
        };
        let yaml = format!(
            "pools:\n  - name: sim\n    hosts: [{}]\n    scheme: {scheme}\n    port: {}\n    password_file: {password}\n{pins}    timeouts: {{connect_seconds: 1, call_seconds: 2, start_vm_seconds: 30}}\nreceiver:\n  mode: {}\n  auth: {{bearer_token_file: {token}}}\n  journal_path: {}\n  confirm_window_seconds: 1\n  confirm_probes: 2\n  refused_grace_seconds: {}\n  rejoin_wait_seconds: 5\n  startup_quiet_seconds: 0\n{}{}\n",
            common::hosts_yaml(&sim),
            sim.port(),
            setup.mode,
            dir.path().join("journal.db").display(),
            setup.refused_grace,
            setup.extra,
            fencing,
        );
        let config =
            xenguard::config::parse(&yaml, "test.yml").unwrap_or_else(|e| panic!("{e}\n{yaml}"));
        let receiver = Receiver::start(&config).unwrap();
        let (address, server) = serve(&receiver).await;
        let double = common::DoubleRunning::watch(sim.clone());
        let pool = Pool {
            sim,
            bmcs,
            _dir: dir,
            config,
            receiver,
            server,
            address,
            double,
        };
        pool.control("clock/scale", json!({"scale": TIME_SCALE}))
            .await;
        let deadline = Instant::now() + Duration::from_secs(20);
        while !pool.receiver.hosts_known("sim") {
            assert!(
                Instant::now() < deadline,
                "the receiver never read the pool"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        pool
    }

    /// Stops the receiver and starts a new one on the same configuration and journal.
    async fn restart_receiver(&mut self) {
        self.receiver.shutdown();
        self.server.abort();
        self.receiver = Receiver::start(&self.config).unwrap();
        (self.address, self.server) = serve(&self.receiver).await;
    }

    async fn control(&self, path: &str, body: Value) {
        common::control(&self.sim, path, body).await;
    }

    fn uuid(&self, host: &str) -> String {
        common::host_uuid(&self.sim, host)
    }

    fn truth(&self) -> BTreeMap<String, Vec<String>> {
        common::truth(&self.sim)
    }

    fn guests_on(&self, host: &str) -> Vec<String> {
        common::guests_on(&self.sim, host)
    }

    async fn post(&self, status: &str, alerts: &[(&str, &str, &str)]) {
        post_to(self.address, status, alerts).await;
    }

    async fn remediations(&self) -> Vec<Value> {
        reqwest::get(format!("http://{}/remediations", self.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn show(&self, id: i64) -> Value {
        reqwest::get(format!("http://{}/remediations/{id}", self.address))
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.address))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Waits until `count` remediations exist and each is in one of `phases`.
    async fn wait_for(&self, count: usize, phases: &[&str]) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let list = self.remediations().await;
            if list.len() >= count
                && list
                    .iter()
                    .all(|r| phases.contains(&r["phase"].as_str().unwrap_or("")))
            {
                return list;
            }
            if Instant::now() > deadline {
                let mut shown = Vec::new();
                for r in &list {
                    shown.push(self.show(r["id"].as_i64().unwrap()).await);
                }
                panic!("remediations never reached {phases:?}: {shown:#?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Each of `vms` runs on exactly one host, not `dead` (a uuid); no VM ever ran twice.
    fn assert_run_once_elsewhere(&self, vms: &[String], dead: &str) {
        let truth = self.truth();
        for vm in vms {
            assert_eq!(truth[vm].len(), 1, "{vm} runs on {:?}", truth[vm]);
            assert_ne!(truth[vm][0], dead, "{vm}");
        }
        assert_eq!(self.double.max(), 0);
    }

    /// Asserts the journal of remediation `id` holds these step kinds, in this order.
    async fn assert_steps(&self, id: i64, kinds: &[&str]) {
        let shown = self.show(id).await;
        let steps: Vec<&str> = shown["steps"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["kind"].as_str().unwrap())
            .filter(|k| *k != "phase")
            .collect();
        assert_eq!(steps, kinds, "{shown:#}");
    }
}

/// Posts an Alertmanager notification of `alerts` (alertname, host uuid, fingerprint) to the
/// receiver at `address`.
async fn post_to(address: SocketAddr, status: &str, alerts: &[(&str, &str, &str)]) {
    let alerts = alerts
        .iter()
        .map(|(alertname, host_uuid, fingerprint)| {
            let labels = json!({"alertname": alertname, "host_uuid": host_uuid});
            common::alert(status, labels, "2026-11-22T08:00:00Z", fingerprint)
        })
        .collect();
    let body = common::notification(status, alerts);
    let response = reqwest::Client::new()
        .post(format!("http://{address}/alertmanager"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
}

/// The first step of `kind` in a remediation as `GET /remediations/{id}` shows it.
fn step(shown: &Value, kind: &str) -> Value {
    shown["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["kind"] == kind))
        .cloned()
        .unwrap_or_else(|| panic!("no {kind} step in {shown:#}"))
}

fn metric(text: &str, name_and_labels: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(name_and_labels)
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or_else(|| panic!("no {name_and_labels} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_slave_is_fenced_then_its_vms_run_once_on_survivors() {
    let p = Pool::start(Setup::default()).await;
    let host3 = p.uuid("host3");
    let before = p.guests_on("host3");
    assert_eq!(before.len(), 2);
    p.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-slave")])
        .await;
    let list = p
        .wait_for(1, &["done", "failed", "blocked", "aborted"])
        .await;
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(list[0]["phase"], "done", "{:#}", p.show(id).await);
    assert_eq!(list[0]["reason"], "all 2 VMs running again");
    p.assert_steps(
        id,
        &[
            "planned",
            "confirm",
            "fence",
            "reset_vms",
            "release_locks",
            "clear_affinity",
            "start_vms",
            "verify",
        ],
    )
    .await;
    let truth = p.truth();
    for vm in &before {
        assert_eq!(truth[vm].len(), 1, "{vm} runs on {:?}", truth[vm]);
        assert_ne!(truth[vm][0], host3);
    }
    assert_eq!(p.double.max(), 0);
    // The host had lost power: the agent found it off and never powered anything on.
    let log = p.bmcs.power_log("host3");
    assert!(
        p.bmcs.power_offs("host3") <= 1 && !log.iter().any(|l| l == "set power 1"),
        "{log:?}"
    );
    for other in ["host1", "host2"] {
        assert_eq!(p.bmcs.power_offs(other), 0, "{other} was fenced");
    }
    let metrics = p.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "xenguard_remediation_fences_total{outcome=\"confirmed_off\",pool=\"sim\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "xenguard_remediation_plans_total{kind=\"recover_host\",outcome=\"done\",pool=\"sim\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(&metrics, "xenguard_remediation_in_flight{pool=\"sim\"}"),
        0.0
    );
    // The host flaps: back on, dead again. Within the cooldown it is not fenced again.
    p.control("hosts/host3/power", json!({"state": "on"})).await;
    p.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-flap")])
        .await;
    let list = p.wait_for(2, &["done", "blocked"]).await;
    assert_eq!(list[0]["phase"], "blocked", "{:#}", list[0]);
    let reason = list[0]["reason"].as_str().unwrap();
    assert!(reason.contains("host cooldown"), "{reason}");
    assert!(p.bmcs.power_offs("host3") <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_whose_xapi_died_is_powered_off_before_its_vms_start_elsewhere() {
    let p = Pool::start(Setup::default()).await;
    let host2 = p.uuid("host2");
    let before = p.guests_on("host2");
    p.control("hosts/host2/xapi", json!({"running": false}))
        .await;
    assert_eq!(p.guests_on("host2"), before, "its VMs keep running");
    p.post("firing", &[("XenVmsStuckOnDeadHost", &host2, "fp-xapi")])
        .await;
    let list = p
        .wait_for(1, &["done", "failed", "blocked", "aborted"])
        .await;
    assert_eq!(
        list[0]["phase"],
        "done",
        "{:#}",
        p.show(list[0]["id"].as_i64().unwrap()).await
    );
    assert_eq!(
        p.bmcs.power_offs("host2"),
        1,
        "{:?}",
        p.bmcs.power_log("host2")
    );
    p.assert_run_once_elsewhere(&before, &host2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_master_is_replaced_and_its_vms_restart_once() {
    let p = Pool::start(Setup::default()).await;
    let host1 = p.uuid("host1");
    let before = p.guests_on("host1");
    p.control("hosts/host1/power", json!({"state": "off"}))
        .await;
    // Three alerts about the same death in one notification: one recovery, the others stand down.
    p.post(
        "firing",
        &[
            ("XenPoolMasterUnreachable", "", "fp-master"),
            ("XenHostUnreachable", &host1, "fp-host1"),
            ("XenVmsStuckOnDeadHost", &host1, "fp-stuck"),
        ],
    )
    .await;
    let list = p
        .wait_for(3, &["done", "failed", "blocked", "aborted"])
        .await;
    let done: Vec<&Value> = list.iter().filter(|r| r["phase"] == "done").collect();
    assert_eq!(done.len(), 1, "{list:#?}");
    for r in list.iter().filter(|r| r["phase"] != "done") {
        assert_eq!(r["phase"], "aborted", "{r:#}");
        assert!(
            r["reason"].as_str().unwrap().contains("already recovered"),
            "{r:#}"
        );
    }
    let id = done[0]["id"].as_i64().unwrap();
    p.assert_steps(id, MASTER_RECOVERY_STEPS).await;
    // host2 (the first survivor by address) is master; host3 follows it.
    let roles = p.sim.with_model(|m, _| {
        m.hosts
            .iter()
            .map(|h| format!("{}:{:?}", h.name, h.role))
            .collect::<Vec<_>>()
    });
    assert!(roles[1].contains("Master"), "{roles:?}");
    assert!(roles[2].contains(&p.sim.host_addresses()[1]), "{roles:?}");
    // Every VM of the dead master runs once elsewhere, except the one on its local storage.
    let truth = p.truth();
    let local = before.iter().filter(|vm| truth[*vm].is_empty()).count();
    assert_eq!(local, 1, "{truth:?}");
    for vm in before.iter().filter(|vm| !truth[*vm].is_empty()) {
        assert_eq!(truth[vm].len(), 1);
        assert_ne!(truth[vm][0], host1);
    }
    let reason = done[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("1 of 2 VMs running again") && reason.contains("storage"),
        "{reason}"
    );
    assert_eq!(p.double.max(), 0);
    assert!(p.bmcs.power_offs("host1") <= 1);
}

/// A receiver (re)started while the master is already dead has never read the pool in this
/// run: it starts from the inventory its previous run kept in the journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_restarted_after_the_master_died_still_recovers_the_pool() {
    let mut p = Pool::start(Setup::default()).await;
    let host1 = p.uuid("host1");
    let before = p.guests_on("host1");
    let journal_path = p.config.receiver.journal_path.clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    while xenguard::remediation::journal::Journal::open(&journal_path)
        .unwrap()
        .inventory("sim")
        .unwrap()
        .is_none()
    {
        assert!(Instant::now() < deadline, "the inventory was never kept");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p.receiver.shutdown();
    p.control("hosts/host1/power", json!({"state": "off"}))
        .await;
    p.restart_receiver().await;
    assert!(p.receiver.hosts_known("sim"));
    let metrics = p.metrics().await;
    let read_at = metric(
        &metrics,
        "xenguard_remediation_inventory_timestamp_seconds{pool=\"sim\"}",
    );
    assert!(read_at > 0.0, "{metrics}");
    p.post("firing", &[("XenPoolMasterUnreachable", "", "fp-master")])
        .await;
    let list = p
        .wait_for(1, &["done", "failed", "blocked", "aborted"])
        .await;
    let shown = p.show(list[0]["id"].as_i64().unwrap()).await;
    assert_eq!(list[0]["phase"], "done", "{shown:#}");
    let truth = p.truth();
    for vm in before.iter().filter(|vm| !truth[*vm].is_empty()) {
        assert_eq!(truth[vm].len(), 1);
        assert_ne!(truth[vm][0], host1);
    }
    assert!(
        before.iter().any(|vm| !truth[vm].is_empty()),
        "no VM of the dead master runs again: {truth:?}"
    );
    p.assert_steps(list[0]["id"].as_i64().unwrap(), MASTER_RECOVERY_STEPS)
        .await;
    assert_eq!(p.double.max(), 0);
    assert!(p.bmcs.power_offs("host1") <= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fence_that_fails_blocks_every_reset_and_start() {
    let mut p = Pool::start(Setup::default()).await;
    let host3 = p.uuid("host3");
    let before = p.guests_on("host3");
    p.bmcs.stop("host3");
    p.control("hosts/host3/xapi", json!({"running": false}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-nobmc")])
        .await;
    let list = p
        .wait_for(1, &["done", "failed", "blocked", "aborted"])
        .await;
    let r = &list[0];
    assert_eq!(r["phase"], "failed", "{r:#}");
    assert!(
        r["reason"].as_str().unwrap().contains("fence failed"),
        "{r:#}"
    );
    p.assert_steps(r["id"].as_i64().unwrap(), &["planned", "confirm", "fence"])
        .await;
    assert_eq!(
        p.guests_on("host3"),
        before,
        "its VMs still run where they ran, once"
    );
    // Nothing was reset: XAPI still records them running on host3.
    let reader = xenguard::xapi::PoolReader::new(Arc::new(common::session(&p.sim)));
    let host3_ref = reader
        .all::<xenguard::xapi::records::Host>()
        .await
        .unwrap()
        .into_iter()
        .find(|(_, h)| h.uuid == host3)
        .unwrap()
        .0;
    let recorded = reader
        .all::<xenguard::xapi::records::Vm>()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, vm)| vm.resident_on == host3_ref && vm.is_guest())
        .count();
    assert_eq!(recorded, before.len());
    let metrics = p.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "xenguard_remediation_fences_total{outcome=\"failed\",pool=\"sim\"}"
        ),
        1.0
    );
    assert_eq!(
        metric(
            &metrics,
            "xenguard_remediation_plans_total{kind=\"recover_host\",outcome=\"failed\",pool=\"sim\"}"
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn guards_stand_down_without_fencing_anyone() {
    let stop_file = tempfile::tempdir().unwrap();
    let stop = stop_file.path().join("stop");
    let p = Pool::start(Setup {
        extra: format!("  kill_switch_file: {}\n", stop.display()),
        ..Setup::default()
    })
    .await;
    let (host2, host3) = (p.uuid("host2"), p.uuid("host3"));
    let mut expected = Vec::new();
    let mut check = async |fingerprint: &str, host: &str, reason: &str, code: &str| {
        p.post("firing", &[("XenHostUnreachable", host, fingerprint)])
            .await;
        expected.push((reason.to_owned(), code.to_owned()));
        let list = p
            .wait_for(expected.len(), &["blocked", "done", "failed", "aborted"])
            .await;
        let r = &list[0];
        assert_eq!(r["phase"], "blocked", "{r:#}");
        assert!(r["reason"].as_str().unwrap().contains(reason), "{r:#}");
        let metrics = p.metrics().await;
        let blocks = format!("xenguard_remediation_blocks_total{{pool=\"sim\",reason=\"{code}\"}}");
        assert!(metric(&metrics, &blocks) >= 1.0, "{blocks}");
    };
    // A healthy host answers the fresh probes, whatever the alert says.
    check(
        "fp-healthy",
        &host2,
        "answered 2 of 2 fresh probes",
        "host_answers",
    )
    .await;
    p.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    std::fs::write(&stop, "").unwrap();
    check("fp-kill", &host3, "kill-switch", "kill_switch").await;
    std::fs::remove_file(&stop).unwrap();
    p.control("pool/ha", json!({"enabled": true})).await;
    check("fp-ha", &host3, "HA is enabled", "ha_enabled").await;
    p.control("pool/ha", json!({"enabled": false})).await;
    // The receiver cut off from the rest of the pool: it may be the one that is isolated.
    for host in ["host1", "host2"] {
        p.control(
            &format!("hosts/{host}/network"),
            json!({"connected": false}),
        )
        .await;
    }
    check(
        "fp-quorum",
        &host3,
        "no quorum: reached 0 of 2",
        "no_quorum",
    )
    .await;
    for host in ["host1", "host2", "host3"] {
        assert!(
            !p.bmcs.power_log(host).iter().any(|l| l.starts_with("set")),
            "{host}: {:?}",
            p.bmcs.power_log(host)
        );
    }
    assert_eq!(p.guests_on("host2").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_mode_waits_for_an_operator_and_resolved_aborts_before_acting() {
    let p = Pool::start(Setup {
        mode: "approve",
        ..Setup::default()
    })
    .await;
    let host3 = p.uuid("host3");
    p.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-first")])
        .await;
    p.wait_for(1, &["awaiting_approval"]).await;
    let metrics = p.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "xenguard_remediation_waiting{for=\"approval\",pool=\"sim\"}"
        ),
        1.0
    );
    p.post("resolved", &[("XenHostUnreachable", &host3, "fp-first")])
        .await;
    let list = p.wait_for(1, &["aborted"]).await;
    assert_eq!(list[0]["reason"], "alert resolved before acting");
    assert_eq!(
        p.bmcs.power_log("host3"),
        Vec::<String>::new(),
        "not even a status read"
    );

    p.post("firing", &[("XenHostUnreachable", &host3, "fp-second")])
        .await;
    let list = p.wait_for(2, &["awaiting_approval", "aborted"]).await;
    let id = list[0]["id"].as_i64().unwrap();
    let journal = p.receiver.journal();
    // What `xenguard journal approve ID` writes.
    let request = journal.add_request(id, "approve", "alice", 0.0).unwrap();
    let list = p.wait_for(2, &["done", "aborted"]).await;
    assert_eq!(list[0]["phase"], "done", "{:#}", p.show(id).await);
    assert_eq!(
        journal.request_result(request).unwrap().as_deref(),
        Some("done")
    );
    let shown = p.show(id).await;
    let approve = step(&shown, "approve");
    assert_eq!(approve["detail"]["operator"], "alice");
    // A second approval of a finished remediation is refused, not replayed.
    let again = journal.add_request(id, "approve", "alice", 0.0).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while journal.request_result(again).unwrap().is_none() {
        assert!(Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        journal
            .request_result(again)
            .unwrap()
            .unwrap()
            .starts_with("refused")
    );
    assert_eq!(p.double.max(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_fence_agent_only_an_attestation_lets_recovery_go_on() {
    let p = Pool::start(Setup {
        unfenced: &["host3"],
        ..Setup::default()
    })
    .await;
    let host3 = p.uuid("host3");
    p.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-attest")])
        .await;
    let list = p.wait_for(1, &["awaiting_attestation"]).await;
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(p.guests_on("host3").len(), 0, "powered off");
    let metrics = p.metrics().await;
    assert_eq!(
        metric(
            &metrics,
            "xenguard_remediation_waiting{for=\"attestation\",pool=\"sim\"}"
        ),
        1.0
    );
    let journal = p.receiver.journal();
    let now = xenguard::remediation::unix_now();
    // Attestations expire (1 h by default), and one dated in the future has no known age.
    for at in [now - 7200.0, now + 600.0] {
        let request = journal.add_request(id, "attest", "bob", at).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        let answer = loop {
            if let Some(answer) = journal.request_result(request).unwrap() {
                break answer;
            }
            assert!(Instant::now() < deadline, "request never handled");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        assert!(answer.starts_with("refused"), "{answer}");
        assert_eq!(p.remediations().await[0]["phase"], "awaiting_attestation");
    }
    journal.add_request(id, "attest", "bob", now).unwrap();
    let list = p.wait_for(1, &["done"]).await;
    assert_eq!(list[0]["reason"], "all 2 VMs running again");
    assert_eq!(
        p.bmcs.power_log("host3"),
        Vec::<String>::new(),
        "no BMC was used"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_of_failures_leaves_no_vm_silently_down() {
    let p = Pool::start(Setup {
        hosts: 4,
        extra: "  fence_budget: {max_fences: 2, window_seconds: 3600}\n".into(),
        ..Setup::default()
    })
    .await;
    let host4 = p.uuid("host4");
    p.control("hosts/host4/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host4, "fp-first")])
        .await;
    p.wait_for(1, &["done"]).await;
    // Some of host4's VMs now run on the master; then the master dies. The promoted host's
    // database comes from a backup that may predate those starts.
    let on_master = p.guests_on("host1");
    p.control("hosts/host1/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenPoolMasterUnreachable", "", "fp-second")])
        .await;
    let list = p
        .wait_for(2, &["done", "failed", "blocked", "aborted"])
        .await;
    assert_eq!(
        list[0]["phase"],
        "done",
        "{:#}",
        p.show(list[0]["id"].as_i64().unwrap()).await
    );
    let summary = list[0]["reason"].as_str().unwrap().to_owned();
    let names = p.sim.with_model(|m, _| m.guests.clone());
    let truth = p.truth();
    for vm in &on_master {
        let name = &names[vm];
        let runs = truth[vm].len();
        assert!(
            runs == 1 || (runs == 0 && summary.contains(name.as_str())),
            "{name} runs {runs} times and the summary does not name it: {summary}"
        );
    }
    assert_eq!(p.double.max(), 0);
    let metrics = p.metrics().await;
    let unaccounted = metric(
        &metrics,
        "xenguard_remediation_vms_total{outcome=\"unaccounted\",pool=\"sim\"}",
    );
    let named = summary
        .split_once("NOT STARTED, check by hand: ")
        .map_or(0, |(_, tail)| tail.matches("vm0").count());
    assert_eq!(unaccounted as usize, named, "{summary}");
    eprintln!("{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_bmc_password_is_a_failed_fence_not_a_stuck_one() {
    let p = Pool::start(Setup::default()).await;
    let host3 = p.uuid("host3");
    std::fs::remove_file(p.bmcs.password_file()).unwrap();
    p.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-nopw")])
        .await;
    let list = p
        .wait_for(1, &["done", "failed", "blocked", "aborted"])
        .await;
    assert_eq!(list[0]["phase"], "failed", "{:#}", list[0]);
    let reason = list[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("fence failed") && reason.contains("password"),
        "{reason}"
    );
    let metrics = p.metrics().await;
    assert_eq!(
        metric(&metrics, "xenguard_remediation_in_flight{pool=\"sim\"}"),
        0.0,
        "the pool is free again"
    );
}

/// Waits until the newest remediation ends, asserts it was blocked with `reason` counted as
/// `code`, and returns it.
async fn blocked_with(p: &Pool, count: usize, reason: &str, code: &str) -> Value {
    let list = p
        .wait_for(count, &["blocked", "done", "failed", "aborted"])
        .await;
    let r = list[0].clone();
    let shown = p.show(r["id"].as_i64().unwrap()).await;
    assert_eq!(r["phase"], "blocked", "{shown:#}");
    assert!(r["reason"].as_str().unwrap().contains(reason), "{shown:#}");
    let blocks = format!("xenguard_remediation_blocks_total{{pool=\"sim\",reason=\"{code}\"}}");
    assert!(metric(&p.metrics().await, &blocks) >= 1.0, "{blocks}");
    shown
}

fn assert_nobody_fenced(p: &Pool) {
    let hosts = p
        .sim
        .with_model(|m, _| m.hosts.iter().map(|h| h.name.clone()).collect::<Vec<_>>());
    for host in &hosts {
        assert!(
            !p.bmcs.power_log(host).iter().any(|l| l.starts_with("set")),
            "{host}: {:?}",
            p.bmcs.power_log(host)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_answers_unverifiably_or_that_only_the_receiver_lost_is_never_fenced() {
    let p = Pool::start(Setup::default()).await;
    let (host1, host3) = (p.uuid("host1"), p.uuid("host3"));
    let before = p.guests_on("host3");
    // Powered and networked, its endpoint answering garbage: something is there.
    p.control("hosts/host3/faults", json!({"fault": {"kind": "garbage"}}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-garbage")])
        .await;
    blocked_with(&p, 1, "not as a verifiable xapi", "host_unverifiable").await;
    common::control_delete(&p.sim, "hosts/host3/faults").await;
    // Cut from the receiver only: the master still reaches it.
    p.control(
        "hosts/host3/network",
        json!({"connected": false, "outside_only": true}),
    )
    .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-partition")])
        .await;
    let shown = blocked_with(
        &p,
        2,
        "the pool still reaches the host",
        "host_answers_pool",
    )
    .await;
    assert!(
        !shown.to_string().contains("fresh probes: it is not down"),
        "the receiver saw only silence: {shown:#}"
    );
    p.control(
        "hosts/host3/network",
        json!({"connected": true, "outside_only": true}),
    )
    .await;
    // The master cut from the receiver only: its slaves still reach it.
    p.control(
        "hosts/host1/network",
        json!({"connected": false, "outside_only": true}),
    )
    .await;
    p.post("firing", &[("XenPoolMasterUnreachable", "", "fp-master")])
        .await;
    blocked_with(
        &p,
        3,
        "the pool still reaches the host",
        "host_answers_pool",
    )
    .await;
    assert_nobody_fenced(&p);
    assert_eq!(p.guests_on("host3"), before);
    assert_eq!(p.guests_on("host1").len(), 2);
    assert!(!host1.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_toolstack_restart_within_the_refusal_grace_is_not_fenced() {
    let p = Pool::start(Setup {
        refused_grace: 8,
        ..Setup::default()
    })
    .await;
    let host2 = p.uuid("host2");
    p.control("hosts/host2/xapi", json!({"running": false}))
        .await;
    p.post("firing", &[("XenVmsStuckOnDeadHost", &host2, "fp-restart")])
        .await;
    // Refused through the 1 s window, then xapi comes back within the grace.
    tokio::time::sleep(Duration::from_secs(3)).await;
    p.control("hosts/host2/xapi", json!({"running": true}))
        .await;
    let shown = blocked_with(&p, 1, "fresh probes: it is not down", "host_answers").await;
    let confirm = step(&shown, "confirm");
    let probes = confirm["detail"]["suspect_probes"].as_array().unwrap();
    assert!(
        probes.len() >= 3 && probes[0]["detail"].as_str().unwrap().starts_with("refused"),
        "{confirm:#}"
    );
    assert_nobody_fenced(&p);
    assert_eq!(p.guests_on("host2").len(), 2);
}

/// Slaves whose toolstack restarted while the master was gone come up in emergency mode and
/// answer logins with the error their start-up loop last hit: with the master's xapi refusing,
/// `INTERNAL_ERROR [Unix.Unix_error(Unix.ECONNREFUSED, ...)]`, not an emergency-mode code.
/// Their local sessions still say they are in emergency mode: they are survivors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_master_whose_slaves_answer_internal_error_is_still_replaced() {
    let p = Pool::start(Setup::default()).await;
    let before = p.guests_on("host1");
    p.control("hosts/host1/xapi", json!({"running": false}))
        .await;
    for slave in ["host2", "host3"] {
        let path = format!("hosts/{slave}/xapi");
        p.control(&path, json!({"running": false})).await;
        p.control(&path, json!({"running": true})).await;
    }
    common::assert_slaves_answer_internal_error(&p.sim);
    p.post(
        "firing",
        &[("XenPoolMasterUnreachable", "", "fp-emergency")],
    )
    .await;
    let list = p
        .wait_for(1, &["done", "failed", "blocked", "aborted"])
        .await;
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(list[0]["phase"], "done", "{:#}", p.show(id).await);
    p.assert_steps(id, MASTER_RECOVERY_STEPS).await;
    assert_eq!(p.bmcs.power_offs("host1"), 1);
    let truth = p.truth();
    for vm in before.iter().filter(|vm| !truth[*vm].is_empty()) {
        assert_eq!(truth[vm].len(), 1, "{vm}: {:?}", truth[vm]);
    }
    assert_eq!(p.double.max(), 0);
}

/// A guest of the master migrates to host3 after the last database backup; the master dies.
/// The promoted host's restored database still places the guest on the dead master, and host3
/// cannot rejoin to correct it (its local HA flag refuses `emergency_reset_master`). The
/// receiver last saw the guest on host3: it neither resets nor starts it, and names it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_guest_moved_after_the_last_backup_is_named_never_started_twice() {
    use xenguard::xapi::records::{Host, Ref};
    let mut p = Pool::start(Setup::default()).await;
    let session = Arc::new(common::session(&p.sim));
    let host_ref = |name: &str| {
        let i = p.sim.with_model(|m, _| m.find_host(name).unwrap());
        Ref::<Host>::new(p.sim.with_model(|m, _| m.hosts[i].reference.clone()))
    };
    let (host1, host3) = (host_ref("host1"), host_ref("host3"));
    let moved = common::migrate_a_guest(&session, &host1, &host3).await;
    assert_eq!(p.truth()[&moved.uuid], vec![p.uuid("host3")]);
    // The receiver reads the pool after the move.
    let since = xenguard::remediation::unix_now();
    p.restart_receiver().await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while metric(
        &p.metrics().await,
        "xenguard_remediation_inventory_timestamp_seconds{pool=\"sim\"}",
    ) < since
    {
        assert!(
            Instant::now() < deadline,
            "the receiver never re-read the pool"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    p.sim.with_model(|m, _| {
        let i = m.find_host("host3").unwrap();
        m.hosts[i].ha_armed = true;
    });
    p.control("hosts/host1/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenPoolMasterUnreachable", "", "fp-moved")])
        .await;
    let list = p
        .wait_for(1, &["done", "failed", "blocked", "aborted"])
        .await;
    let shown = p.show(list[0]["id"].as_i64().unwrap()).await;
    assert_eq!(list[0]["phase"], "done", "{shown:#}");
    let reason = list[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("NOT STARTED") && reason.contains(&moved.name_label),
        "{reason}"
    );
    assert_eq!(p.truth()[&moved.uuid], vec![p.uuid("host3")]);
    assert_eq!(p.double.max(), 0);
}

/// A guest's disk was paused on host3 (a snapshot in flight) when host3 died. declare_dead's
/// resetvdis hook leaves `paused`, and blktap will not attach a paused disk: the receiver
/// clears it with the host's tag, and the guest starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disk_left_paused_by_the_dead_host_is_released_and_its_guest_restarts() {
    use xenguard::xapi::records::Vdi;
    use xenguard::xapi::wire::Value as Xml;
    let p = Pool::start(Setup::default()).await;
    let host3 = p.uuid("host3");
    let before = p.guests_on("host3");
    let session = Arc::new(common::session(&p.sim));
    let reader = xenguard::xapi::PoolReader::new(session.clone());
    let host3_ref = p.sim.with_model(|m, _| {
        let i = m.find_host("host3").unwrap();
        m.hosts[i].reference.clone()
    });
    let tag = format!("host_{host3_ref}");
    let mut paused = 0;
    for (vdi, record) in reader.all::<Vdi>().await.unwrap() {
        if record.sm_config.contains_key(&tag) {
            let params = [
                Xml::string(vdi.as_str()),
                Xml::string("paused"),
                Xml::string("true"),
            ];
            session.call("VDI.add_to_sm_config", &params).await.unwrap();
            paused += 1;
        }
    }
    assert!(paused >= 2, "host3's guests have tagged disks");
    p.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-paused")])
        .await;
    let list = p
        .wait_for(1, &["done", "failed", "blocked", "aborted"])
        .await;
    let shown = p.show(list[0]["id"].as_i64().unwrap()).await;
    assert_eq!(list[0]["reason"], "all 2 VMs running again", "{shown:#}");
    p.assert_run_once_elsewhere(&before, &host3);
    let left = reader
        .all::<Vdi>()
        .await
        .unwrap()
        .into_iter()
        .filter(|(_, v)| v.sm_config.contains_key("paused"))
        .count();
    assert_eq!(left, 0);
    assert_eq!(p.double.max(), 0);
}

/// The kill switch appears while a recovery runs past the fence: the next step is not issued,
/// the remediation is journaled `held` (guests reset, not started), and it goes on only when
/// an operator resumes it after removing the switch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_kill_switch_holds_a_recovery_before_its_next_step_until_resumed() {
    let switch_dir = tempfile::tempdir().unwrap();
    let stop = switch_dir.path().join("stop");
    let p = Pool::start(Setup {
        extra: format!("  kill_switch_file: {}\n", stop.display()),
        ..Setup::default()
    })
    .await;
    let host3 = p.uuid("host3");
    let before = p.guests_on("host3");
    // Slow every VDI read on the master, so the lock release lasts long enough to pull the
    // switch in the middle of the recovery.
    p.control(
        "hosts/host1/faults",
        json!({"fault": {"kind": "slow", "ms": 1500}, "methods": ["VDI.get_all_records"]}),
    )
    .await;
    p.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-held")])
        .await;
    let list = p
        .wait_for(1, &["releasing_locks", "done", "failed", "blocked"])
        .await;
    assert_eq!(list[0]["phase"], "releasing_locks", "{list:#?}");
    std::fs::write(&stop, "").unwrap();
    let list = p.wait_for(1, &["held", "done", "failed"]).await;
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(list[0]["phase"], "held", "{:#}", p.show(id).await);
    let reason = list[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("clearing_affinity: ") && reason.contains("kill-switch"),
        "{reason}"
    );
    // Held: nothing runs anywhere, and it stays so.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let truth = p.truth();
    assert!(before.iter().all(|vm| truth[vm].is_empty()), "{truth:?}");
    assert_eq!(p.remediations().await[0]["phase"], "held");
    // Resuming with the switch still there holds it again.
    let journal =
        xenguard::remediation::journal::Journal::open(&p.config.receiver.journal_path).unwrap();
    let unix_now = xenguard::remediation::unix_now;
    journal
        .add_request(id, "resume", "test", unix_now())
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(p.remediations().await[0]["phase"], "held");
    std::fs::remove_file(&stop).unwrap();
    common::control_delete(&p.sim, "hosts/host1/faults").await;
    journal
        .add_request(id, "resume", "test", unix_now())
        .unwrap();
    let list = p.wait_for(1, &["done", "failed"]).await;
    assert_eq!(list[0]["phase"], "done", "{:#}", p.show(id).await);
    assert_eq!(list[0]["reason"], "all 2 VMs running again");
    p.assert_run_once_elsewhere(&before, &host3);
}

/// An attestation that the host is off, while it answers again (powered on since, or the wrong
/// console checked): the receiver probes it once more and stops before any reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attested_host_that_answers_again_is_not_recovered() {
    let p = Pool::start(Setup {
        unfenced: &["host3"],
        ..Setup::default()
    })
    .await;
    let host3 = p.uuid("host3");
    p.control("hosts/host3/network", json!({"connected": false}))
        .await;
    p.post(
        "firing",
        &[("XenHostUnreachable", &host3, "fp-attest-wrong")],
    )
    .await;
    let list = p.wait_for(1, &["awaiting_attestation"]).await;
    let id = list[0]["id"].as_i64().unwrap();
    p.control("hosts/host3/network", json!({"connected": true}))
        .await;
    let now = xenguard::remediation::unix_now();
    p.receiver
        .journal()
        .add_request(id, "attest", "bob", now)
        .unwrap();
    let list = p.wait_for(1, &["failed", "done"]).await;
    assert_eq!(list[0]["phase"], "failed", "{list:#?}");
    assert!(
        list[0]["reason"]
            .as_str()
            .unwrap()
            .contains("answers again"),
        "{list:#?}"
    );
    assert_eq!(
        p.guests_on("host3").len(),
        2,
        "its guests run on, untouched"
    );
    assert_eq!(p.double.max(), 0);
}

/// A dead slave whose `declare_dead` takes far longer than one call may (60 s: the connect
/// retries to a host still read live, then the hook per SR): the receiver waits for the task,
/// and never starts resetting VMs itself while the master is still working on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_declare_dead_is_waited_for_never_raced() {
    let p = Pool::start(Setup::default()).await;
    p.control(
        "timing",
        json!({"forward_connect_timeout": 20.0, "declare_dead_hook_per_sr": 20.0}),
    )
    .await;
    let host3 = p.uuid("host3");
    let before = p.guests_on("host3");
    p.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-slow")])
        .await;
    let list = p
        .wait_for(1, &["done", "failed", "blocked", "aborted"])
        .await;
    let id = list[0]["id"].as_i64().unwrap();
    let shown = p.show(id).await;
    assert_eq!(list[0]["phase"], "done", "{shown:#}");
    let reset = step(&shown, "reset_vms");
    assert_eq!(reset["detail"]["declare_dead"]["Ok"], "ok", "{reset:#}");
    assert!(
        reset["detail"].get("power_state_reset").is_none(),
        "{reset:#}"
    );
    p.assert_run_once_elsewhere(&before, &host3);
}

/// The old master comes back after its pool was recovered: it boots while its cable is still
/// pulled (xapi's no-other-masters check cannot reach anyone and gives up), then the cable
/// comes back. Two masters. The receiver keeps the promoted one (the journal's promotion, and
/// the master the slaves follow) and has it recover the slaves, which demotes the old one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_old_master_that_comes_back_isolated_is_made_a_slave_again() {
    let p = Pool::start(Setup::default()).await;
    p.control("hosts/host1/power", json!({"state": "off"}))
        .await;
    p.post("firing", &[("XenPoolMasterUnreachable", "", "fp-first")])
        .await;
    let list = p.wait_for(1, &["done", "failed", "blocked"]).await;
    assert_eq!(list[0]["phase"], "done", "{list:#?}");
    p.control("hosts/host1/network", json!({"connected": false}))
        .await;
    p.control("hosts/host1/power", json!({"state": "on"})).await;
    p.control("hosts/host1/network", json!({"connected": true}))
        .await;
    let masters = |p: &Pool| {
        p.sim.with_model(|m, _| {
            m.hosts
                .iter()
                .filter(|h| h.answers() && h.role == xenguard::sim::model::Role::Master)
                .map(|h| h.name.clone())
                .collect::<Vec<_>>()
        })
    };
    assert_eq!(masters(&p), ["host1", "host2"], "split brain");
    let split = json!({"alertname": "XenPoolSplitBrain"});
    let body = common::notification(
        "firing",
        vec![common::alert(
            "firing",
            split,
            "2026-11-22T09:00:00Z",
            "fp-split",
        )],
    );
    let response = reqwest::Client::new()
        .post(format!("http://{}/alertmanager", p.address))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let list = p
        .wait_for(2, &["done", "failed", "blocked", "aborted"])
        .await;
    let id = list[0]["id"].as_i64().unwrap();
    assert_eq!(list[0]["kind"], "resolve_split_brain", "{list:#?}");
    assert_eq!(list[0]["phase"], "done", "{:#}", p.show(id).await);
    assert_eq!(list[0]["reason"], "one master again: host2");
    p.assert_steps(id, &["planned", "confirm", "recover_slaves", "verify"])
        .await;
    assert_eq!(masters(&p), ["host2"]);
    let host1_role = p.sim.with_model(|m, _| m.hosts[0].role.clone());
    assert_eq!(
        host1_role,
        xenguard::sim::model::Role::Slave(p.sim.host_addresses()[1].clone())
    );
    // Nobody was fenced for it: the only power-off is the first recovery's.
    assert!(p.bmcs.power_offs("host1") <= 1);
    assert_eq!(p.bmcs.power_offs("host2") + p.bmcs.power_offs("host3"), 0);
    assert_eq!(p.double.max(), 0);
}

/// Over TLS with pinned certificates: a slave whose certificate changed (reinstalled, or
/// refreshed) fails every probe's pin check while the rest of the pool answers. It is alive,
/// so it is not fenced; then a slave whose xapi stops (stunnel completes the handshake and
/// closes) is a refusal, fenced only after the grace, and recovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_tls_a_rotated_certificate_blocks_and_a_dead_xapi_behind_stunnel_is_recovered() {
    // Four hosts: with host3 unverifiable, host2's recovery still has a majority of the others.
    let p = Pool::start(Setup {
        hosts: 4,
        tls: true,
        ..Setup::default()
    })
    .await;
    let (host2, host3) = (p.uuid("host2"), p.uuid("host3"));
    p.control("hosts/host3/certificate", json!({})).await;
    p.post("firing", &[("XenHostUnreachable", &host3, "fp-rotated")])
        .await;
    let shown = blocked_with(&p, 1, "not as a verifiable xapi", "host_unverifiable").await;
    assert!(
        shown.to_string().contains("unverifiable (tls)"),
        "{shown:#}"
    );
    assert_nobody_fenced(&p);
    assert_eq!(p.guests_on("host3").len(), 2);
    // host2's xapi dies behind stunnel: refused, then fenced after the grace and recovered.
    let before = p.guests_on("host2");
    p.control("hosts/host2/xapi", json!({"running": false}))
        .await;
    p.post("firing", &[("XenVmsStuckOnDeadHost", &host2, "fp-stunnel")])
        .await;
    let list = p
        .wait_for(2, &["done", "failed", "blocked", "aborted"])
        .await;
    let shown = p.show(list[0]["id"].as_i64().unwrap()).await;
    assert_eq!(list[0]["phase"], "done", "{shown:#}");
    assert!(
        shown.to_string().contains("refused (transport)"),
        "{shown:#}"
    );
    assert_eq!(p.bmcs.power_offs("host2"), 1);
    p.assert_run_once_elsewhere(&before, &host2);
}

/// A journal this version cannot read (a phase it does not know, a run state that does not
/// decode, a confirmed recovery without its target) blocks the remediation; it never falls back
/// to a default (a run state read as a default would treat a dead master as a slave and skip
/// its promotion).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreadable_journal_blocks_its_remediation_never_a_default() {
    let mut p = Pool::start(Setup::default()).await;
    let host1 = p.uuid("host1");
    let journal = p.receiver.journal();
    let now = xenguard::remediation::unix_now();
    let state = |target: &str| json!({"mode": "auto", "target": target, "suspect": null, "survivor": null, "answering": [], "vms": [], "approved_by": null, "attested_by": null, "summary": null});
    let cases = [
        ("promoting", state("mastre")),
        ("resetting_vms", json!({"mode": "auto"})),
        ("fencing", {
            let mut s = state("master");
            s["target"] = Value::Null;
            s
        }),
    ];
    let mut ids = Vec::new();
    for (k, (phase, state)) in cases.iter().enumerate() {
        let id = journal
            .create_remediation(
                "sim",
                &host1,
                "recover_master",
                "XenPoolMasterUnreachable",
                &format!("fp-unreadable-{k}"),
                "2026-11-22T08:00:00Z",
                phase,
                "",
                now,
            )
            .unwrap()
            .unwrap();
        journal.set_state(id, state, now).unwrap();
        ids.push(id);
    }
    // The receiver restarts and finds them mid-way.
    p.restart_receiver().await;
    let list = p.wait_for(3, &["blocked"]).await;
    for r in &list {
        assert!(
            r["reason"]
                .as_str()
                .unwrap()
                .contains("the journal cannot be read"),
            "{r:#}"
        );
    }
    let blocks = "xenguard_remediation_blocks_total{pool=\"sim\",reason=\"unreadable_journal\"}";
    assert_eq!(metric(&p.metrics().await, blocks), 3.0);
    assert_nobody_fenced(&p);
    let truth = p.truth();
    assert!(
        p.guests_on("host1").iter().all(|vm| truth[vm].len() == 1),
        "the master's guests run on, untouched"
    );
}

/// A host fenced and recovered comes back up; then another host dies. With the default
/// `rejoin_healthy_seconds` the returned host is held: the second recovery starts nothing on
/// it (the journal names it held). With 0 it is a target like any other (the empty host takes
/// guests), which shows the first run's outcome is the hold's doing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_host_that_comes_back_is_held_from_the_next_recovery() {
    for (healthy, held) in [("", true), ("  rejoin_healthy_seconds: 0\n", false)] {
        let p = Pool::start(Setup {
            hosts: 4,
            extra: format!("  fence_budget: {{max_fences: 2, window_seconds: 3600}}\n{healthy}"),
            ..Setup::default()
        })
        .await;
        let (host3, host4) = (p.uuid("host3"), p.uuid("host4"));
        p.control("hosts/host4/power", json!({"state": "off"}))
            .await;
        p.post("firing", &[("XenHostUnreachable", &host4, "fp-first")])
            .await;
        p.wait_for(1, &["done"]).await;
        // Back on: it boots, its xapi writes a new boot_time, it rejoins, and the master
        // counts it live and enabled again: a start target like the others.
        p.control("hosts/host4/power", json!({"state": "on"})).await;
        let reader = xenguard::xapi::PoolReader::new(Arc::new(common::session(&p.sim)));
        let mut rejoined = false;
        for _ in 0..100 {
            let hosts = reader.all::<Host>().await.unwrap();
            let metrics = reader.all::<HostMetrics>().await.unwrap();
            rejoined = hosts.iter().any(|(_, h)| {
                h.uuid == host4
                    && h.enabled
                    && metrics.iter().any(|(r, m)| *r == h.metrics && m.live)
            });
            if rejoined {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(rejoined, "host4 never rejoined as live and enabled");
        // The receiver shows the hold with its next inventory refresh (every 15 s).
        let series = format!(
            "xenguard_remediation_host_held{{host=\"host4\",pool=\"sim\",uuid=\"{host4}\"}}"
        );
        let shown = Instant::now();
        loop {
            let text = p.metrics().await;
            let value = text
                .lines()
                .find_map(|l| l.strip_prefix(series.as_str()))
                .map(|v| v.trim().parse::<f64>().unwrap());
            if value == Some(if held { 1.0 } else { 0.0 }) {
                break;
            }
            assert!(
                shown.elapsed() < Duration::from_secs(40),
                "{series} is {value:?}"
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let before = p.guests_on("host3");
        p.control("hosts/host3/power", json!({"state": "off"}))
            .await;
        p.post("firing", &[("XenHostUnreachable", &host3, "fp-second")])
            .await;
        let list = p
            .wait_for(2, &["done", "failed", "blocked", "aborted"])
            .await;
        let id = list[0]["id"].as_i64().unwrap();
        let shown = p.show(id).await;
        assert_eq!(list[0]["phase"], "done", "{shown:#}");
        let start = step(&shown, "start_vms");
        let truth = p.truth();
        let on_host4 = before
            .iter()
            .filter(|vm| truth[*vm].contains(&host4))
            .count();
        if held {
            assert_eq!(start["detail"]["held"], json!(["host4"]), "{start:#}");
            assert_eq!(on_host4, 0, "a held host took guests: {start:#}");
        } else {
            assert_eq!(start["detail"]["held"], json!([]), "{start:#}");
            assert!(on_host4 > 0, "the empty host took none: {start:#}");
        }
        for vm in &before {
            assert_eq!(truth[vm].len(), 1, "{vm}: {:?}", truth[vm]);
        }
        assert_eq!(p.double.max(), 0);
    }
}
