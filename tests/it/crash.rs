//! The receiver as an operator runs it (`xenguard receiver --config FILE`), killed with
//! SIGKILL in the middle of a fenced recovery and started again: it resumes from the journal,
//! never fences twice, never starts a VM twice. Its logs, journal and metrics never contain a
//! secret.

use crate::common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::bmc::{BMC_PASSWORD, Bmcs};
use serde_json::json;
use xenguard::remediation::journal::Journal;
use xenguard::sim::RunningSim;

const POOL_PASSWORD: &str = "Pool-s3cret-91c2";
const TOKEN: &str = "Hook-t0ken-5d8e";

struct Run {
    sim: Arc<RunningSim>,
    bmcs: Bmcs,
    dir: tempfile::TempDir,
    config: PathBuf,
    port: u16,
    logs: Vec<PathBuf>,
}

impl Run {
    async fn start() -> Run {
        let sim = Arc::new(common::start_sim_with_password(3, 2, POOL_PASSWORD).await);
        let bmcs = Bmcs::start(&sim);
        let dir = tempfile::tempdir().unwrap();
        let password = dir.path().join("pool.pw");
        std::fs::write(&password, format!("{POOL_PASSWORD}\n")).unwrap();
        let token = dir.path().join("token");
        std::fs::write(&token, format!("{TOKEN}\n")).unwrap();
        let port = common::free_port();
        let yaml = format!(
            "pools:\n  - name: sim\n    hosts: [{}]\n    scheme: http\n    port: {}\n    password_file: {}\n    timeouts: {{connect_seconds: 1, call_seconds: 2, start_vm_seconds: 30}}\nreceiver:\n  listen: 127.0.0.1:{port}\n  mode: auto\n  auth: {{bearer_token_file: {}}}\n  journal_path: {}\n  confirm_window_seconds: 1\n  confirm_probes: 2\n  refused_grace_seconds: 2\n  startup_quiet_seconds: 0\n{}\n",
            common::hosts_yaml(&sim),
            sim.port(),
            password.display(),
            token.display(),
            dir.path().join("journal.db").display(),
            bmcs.fencing_yaml("sim"),
        );
        let config = dir.path().join("xenguard.yml");
        std::fs::write(&config, yaml).unwrap();
        let url = format!("{}/clock/scale", common::control_url(&sim));
        reqwest::Client::new()
            .post(url)
            .json(&json!({"scale": 20.0}))
            .send()
            .await
            .unwrap();
        Run {
            sim,
            bmcs,
            dir,
            config,
            port,
            logs: Vec::new(),
        }
    }

    fn spawn(&mut self) -> Child {
        let log = self
            .dir
            .path()
            .join(format!("receiver-{}.log", self.logs.len()));
        let child = Command::new(env!("CARGO_BIN_EXE_xenguard"))
            .arg("receiver")
            .arg("--config")
            .arg(&self.config)
            .env("RUST_LOG", "debug")
            .stdout(Stdio::from(std::fs::File::create(&log).unwrap()))
            .stderr(Stdio::from(
                std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
            ))
            .spawn()
            .unwrap();
        self.logs.push(log);
        child
    }

    async fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://127.0.0.1:{}/-/ready", self.port);
        while reqwest::get(&url).await.is_err() {
            assert!(Instant::now() < deadline, "the receiver never listened");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until the receiver has read the pool's inventory.
    async fn wait_inventory(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        let url = format!("http://127.0.0.1:{}/metrics", self.port);
        loop {
            let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
            let read = text.lines().any(|l| {
                l.starts_with("xenguard_remediation_inventory_timestamp_seconds{pool=\"sim\"}")
                    && !l.ends_with(" 0")
            });
            if read {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver never read the pool"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn journal(&self) -> Journal {
        Journal::open(&self.dir.path().join("journal.db")).unwrap()
    }

    fn uuid(&self, host: &str) -> String {
        common::host_uuid(&self.sim, host)
    }

    fn truth(&self) -> BTreeMap<String, Vec<String>> {
        common::truth(&self.sim)
    }

    async fn control(&self, path: &str, body: serde_json::Value) {
        common::control(&self.sim, path, body).await;
    }

    async fn post(&self, alertname: &str, host_uuid: &str) {
        assert_eq!(self.post_status(alertname, host_uuid).await, 200);
    }

    async fn post_status(&self, alertname: &str, host_uuid: &str) -> u16 {
        let labels = json!({"alertname": alertname, "host_uuid": host_uuid});
        let body = common::notification(
            "firing",
            vec![common::alert(
                "firing",
                labels,
                "2026-11-22T08:00:00Z",
                "fp-crash",
            )],
        );
        let response = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/alertmanager", self.port))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap();
        response.status().as_u16()
    }
}

fn file_contains(path: &Path, needle: &str) -> bool {
    std::fs::read(path)
        .is_ok_and(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
}

/// Which host fails, and how.
#[derive(Clone, Copy, PartialEq)]
enum Failure {
    /// host2's xapi dies while its VMs keep running: only the fence makes a restart safe.
    SlaveXapi,
    /// host1, the master, loses power: promotion and slave recovery come first.
    MasterPower,
}

/// Kills the receiver once the journal shows `phase`, restarts it, and checks the outcome.
/// Every surviving host answers 300 ms late, so that each phase lasts long enough to be seen.
async fn kill_during(failure: Failure, phase: &str) {
    let mut run = Run::start().await;
    let victim = if failure == Failure::SlaveXapi {
        "host2"
    } else {
        "host1"
    };
    let dead = run.uuid(victim);
    let before: Vec<String> = run
        .truth()
        .into_iter()
        .filter(|(_, on)| on.contains(&dead))
        .map(|(vm, _)| vm)
        .collect();
    for host in ["host1", "host2", "host3"]
        .into_iter()
        .filter(|h| *h != victim)
    {
        run.control(&format!("hosts/{host}/faults"), json!({"latency_ms": 300}))
            .await;
    }
    let double = common::DoubleRunning::watch(run.sim.clone());
    let mut child = run.spawn();
    run.wait_ready().await;
    // The receiver names hosts from the inventory it read while the pool was healthy.
    run.wait_inventory().await;
    match failure {
        Failure::SlaveXapi => {
            run.control("hosts/host2/xapi", json!({"running": false}))
                .await
        }
        Failure::MasterPower => {
            run.control("hosts/host1/power", json!({"state": "off"}))
                .await
        }
    }
    match failure {
        Failure::SlaveXapi => run.post("XenHostUnreachable", &dead).await,
        Failure::MasterPower => run.post("XenPoolMasterUnreachable", "").await,
    }
    let journal = run.journal();
    let deadline = Instant::now() + Duration::from_secs(60);
    let seen = loop {
        let now = journal.list(1).unwrap().first().map(|r| r.phase.clone());
        if now.as_deref() == Some(phase)
            || now
                .as_deref()
                .is_some_and(|p| ["done", "failed"].contains(&p))
        {
            break now.unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "never reached {phase}: {:#?}",
            journal
                .list(1)
                .ok()
                .and_then(|l| l.first().and_then(|r| journal.show(r.id).ok()))
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let mut again = run.spawn();
    run.wait_ready().await;
    let deadline = Instant::now() + Duration::from_secs(90);
    let r = loop {
        let r = journal.list(1).unwrap().remove(0);
        if ["done", "failed", "blocked", "aborted"].contains(&r.phase.as_str()) {
            break r;
        }
        assert!(
            Instant::now() < deadline,
            "never finished after the restart: {r:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let metrics = reqwest::get(format!("http://127.0.0.1:{}/metrics", run.port))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    again.kill().unwrap();
    again.wait().unwrap();
    let (_, steps) = journal.show(r.id).unwrap().unwrap();
    let kinds: Vec<&str> = steps.iter().map(|s| s.kind.as_str()).collect();
    assert_eq!(seen, phase, "the kill came too late");
    assert!(kinds.contains(&"resumed"), "killed in {seen}: {kinds:?}");
    assert_eq!(double.max(), 0, "killed in {seen}");
    let fences: usize = ["host1", "host2", "host3"]
        .iter()
        .map(|h| run.bmcs.power_offs(h))
        .sum();
    assert!(fences <= 1, "killed in {seen}: fenced twice");
    let truth = run.truth();
    if r.phase == "done" {
        // The powered-off master reads off at once: its agent has nothing to switch off.
        let expected = usize::from(failure == Failure::SlaveXapi);
        assert_eq!(run.bmcs.power_offs(victim), expected);
        // The dead master's last VM has its disk on the master's local storage.
        let local = usize::from(failure == Failure::MasterPower);
        let elsewhere = before
            .iter()
            .filter(|vm| truth[*vm].len() == 1 && truth[*vm][0] != dead)
            .count();
        assert_eq!(
            elsewhere,
            before.len() - local,
            "killed in {seen}: {truth:?}"
        );
    } else {
        // Killed between journaling the fence and the agent's `off`: the restart does not
        // fence again, and nothing is reset or started.
        assert_eq!(seen, "fencing", "{r:?}");
        assert!(r.reason.contains("not fencing again"), "{r:?}");
        for vm in &before {
            assert_eq!(truth[vm].len(), 1);
        }
    }
    // No secret anywhere an operator or a scraper can read.
    let journal_files = ["journal.db", "journal.db-wal"].map(|f| run.dir.path().join(f));
    for secret in [POOL_PASSWORD, BMC_PASSWORD, TOKEN] {
        for file in run.logs.iter().chain(&journal_files) {
            assert!(
                !file_contains(file, secret),
                "{secret:?} in {}",
                file.display()
            );
        }
        assert!(!metrics.contains(secret));
    }
    eprintln!("killed in {seen}: outcome {} ({})", r.phase, r.reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_slave_confirming() {
    kill_during(Failure::SlaveXapi, "confirming").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_slave_fencing() {
    kill_during(Failure::SlaveXapi, "fencing").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_slave_resetting_vms() {
    kill_during(Failure::SlaveXapi, "resetting_vms").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_slave_releasing_locks() {
    kill_during(Failure::SlaveXapi, "releasing_locks").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_slave_clearing_affinity() {
    kill_during(Failure::SlaveXapi, "clearing_affinity").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_slave_starting_vms() {
    kill_during(Failure::SlaveXapi, "starting_vms").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_slave_verifying() {
    kill_during(Failure::SlaveXapi, "verifying").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_master_promoting() {
    kill_during(Failure::MasterPower, "promoting").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_master_recovering_slaves() {
    kill_during(Failure::MasterPower, "recovering_slaves").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_master_starting_vms() {
    kill_during(Failure::MasterPower, "starting_vms").await;
}
