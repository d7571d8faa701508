//! The failure drills (README, "Failure drills"), end to end with the real alert
//! path: the simulator over HTTPS (a self-signed certificate per host, pinned) with a real BMC
//! per host (`ipmi_sim`, fenced by `fence_ipmilan`), `xenguard serve` in `auto` mode
//! (a separate process), a real Prometheus evaluating the shipped alert rules on the exporter's
//! metrics, and a real Alertmanager routing with the shipped example configuration to the
//! receiver. A drill injects a failure through the simulator's control API and waits for the
//! outcome, watching the ground truth: no VM may ever run twice.
//!
//! Speed: by default every duration of the shipped rules and Alertmanager route (`interval`,
//! `for`, `group_wait`, …), the scrape interval (15 s) and the exporter's probe interval are
//! divided by 15 (scrape and evaluation every second), the receiver confirms over 1 s with 2
//! probes, and the simulated clock runs 10 times faster. `DRILL_SPEED=real` keeps the shipped
//! durations and defaults (what `scripts/drill-report.sh` uses for the README's table); both
//! set the receiver's start-up quiet period to 0 because the failures are injected right after
//! start. Each drill prints one `DRILL|…` line that the report script turns into a table.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::bmc::Bmcs;
use serde_json::{Value, json};
use xenguard::remediation::journal::{Journal, Remediation};
use xenguard::remediation::unix_now;
use xenguard::sim::RunningSim;

const TOKEN: &str = "drill-token-2f6c";

/// How much faster than shipped the drill runs (15 = scrape every second).
fn speedup() -> f64 {
    match std::env::var("DRILL_SPEED").as_deref() {
        Ok("real") => 1.0,
        _ => 15.0,
    }
}

/// Parses a Prometheus duration (`15s`, `1m`, `4h`, `500ms`) into seconds.
fn seconds(text: &str) -> f64 {
    let split = text.find(|c: char| c.is_ascii_alphabetic()).unwrap();
    let (n, unit) = text.split_at(split);
    let n: f64 = n.parse().unwrap();
    n * match unit {
        "ms" => 0.001,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86400.0,
        other => panic!("unit {other}"),
    }
}

/// A duration divided by the speed-up, as Prometheus/Alertmanager accept it.
fn scaled(text: &str) -> String {
    let ms = (seconds(text) * 1000.0 / speedup()).round() as u64;
    format!("{}ms", ms.max(1))
}

/// Rewrites the duration fields named `keys` anywhere in a YAML/JSON tree.
fn rescale(value: &mut Value, keys: &[&str]) {
    match value {
        Value::Object(map) => {
            for (key, v) in map.iter_mut() {
                if keys.contains(&key.as_str())
                    && let Value::String(s) = v
                {
                    *s = scaled(s);
                } else {
                    rescale(v, keys);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rescale(v, keys)),
        _ => {}
    }
}

fn repo_file(path: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(path)).unwrap()
}

fn yaml(path: &str) -> Value {
    serde_saphyr::from_str(&repo_file(path)).unwrap()
}

fn spawn(program: &str, args: &[String], log: &Path) -> Child {
    let file = std::fs::File::create(log).unwrap();
    Command::new(program)
        .args(args)
        .stdout(Stdio::from(file.try_clone().unwrap()))
        .stderr(Stdio::from(file))
        .spawn()
        .unwrap_or_else(|e| panic!("{program} (installed by scripts/setup.sh): {e}"))
}

struct Drill {
    name: &'static str,
    sim: Arc<RunningSim>,
    bmcs: Bmcs,
    dir: tempfile::TempDir,
    config: PathBuf,
    serve: Option<Child>,
    others: Vec<Child>,
    receiver_port: u16,
    prometheus_port: u16,
    double: common::DoubleRunning,
    injected_at: f64,
}

impl Drop for Drill {
    fn drop(&mut self) {
        for child in self.serve.iter_mut().chain(self.others.iter_mut()) {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drill {
    async fn start(name: &'static str, hosts: usize, vms: usize) -> Drill {
        Drill::start_with(name, hosts, vms, &[], "").await
    }

    /// [`Drill::start`], the hosts named in `outlets` also fed by two PDU outlets (their
    /// fencing has two levels, the BMC, then both outlets), and `receiver` lines added to the
    /// receiver's section.
    async fn start_with(
        name: &'static str,
        hosts: usize,
        vms: usize,
        outlets: &[&str],
        receiver: &str,
    ) -> Drill {
        // Real hosts speak HTTPS with self-signed certificates: pinned, as operators should.
        let sim = Arc::new(common::start_sim_tls(hosts, vms).await);
        let pins = common::tls_pins_yaml(&sim).await;
        let mut bmcs = Bmcs::start(&sim);
        for host in outlets {
            bmcs.add_outlets(host);
        }
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name).display().to_string();
        std::fs::write(path("pool.pw"), "xenguard\n").unwrap();
        std::fs::write(path("token"), format!("{TOKEN}\n")).unwrap();
        let (receiver_port, exporter_port) = (common::free_port(), common::free_port());
        let (prometheus_port, am_port) = (common::free_port(), common::free_port());
        let fast = speedup() > 1.0;
        let probe = if fast { "1" } else { "10" };
        let probe_timeout = if fast { "1" } else { "3" };
        let confirm = if fast {
            "  confirm_window_seconds: 1\n  confirm_probes: 2\n  refused_grace_seconds: 8\n"
        } else {
            ""
        };
        let config = format!(
            "pools:\n  - name: sim\n    hosts: [{}]\n    scheme: https\n    port: {}\n    password_file: {}\n{pins}    timeouts: {{connect_seconds: 1, call_seconds: 2, start_vm_seconds: 60}}\nexporter:\n  listen: 127.0.0.1:{exporter_port}\n  probe_interval_seconds: {probe}\n  probe_timeout_seconds: {probe_timeout}\nreceiver:\n  listen: 127.0.0.1:{receiver_port}\n  mode: auto\n  auth: {{bearer_token_file: {}}}\n  journal_path: {}\n  startup_quiet_seconds: 0\n{confirm}{receiver}{}\n",
            common::hosts_yaml(&sim),
            sim.port(),
            path("pool.pw"),
            path("token"),
            path("journal.db"),
            bmcs.fencing_yaml("sim"),
        );
        std::fs::write(path("xenguard.yml"), config).unwrap();

        // The shipped rules, durations scaled.
        let mut rules = yaml("alerts/xenguard.rules.yml");
        rescale(&mut rules, &["interval", "for"]);
        std::fs::write(path("rules.yml"), rules.to_string()).unwrap();
        let interval = scaled("15s");
        let prometheus = json!({
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [path("rules.yml")],
            "alerting": {"alertmanagers": [{"static_configs": [{"targets": [format!("127.0.0.1:{am_port}")]}]}]},
            "scrape_configs": [
                {"job_name": "xenguard", "static_configs": [{"targets": [format!("127.0.0.1:{exporter_port}")]}]},
                {"job_name": "xenguard-receiver", "static_configs": [{"targets": [format!("127.0.0.1:{receiver_port}")]}]}
            ]
        });
        std::fs::write(path("prometheus.yml"), prometheus.to_string()).unwrap();

        // The shipped Alertmanager example: its webhook pointed at this receiver and token,
        // the e-mail receiver emptied, durations scaled.
        let mut am = yaml("alerts/alertmanager.example.yml");
        rescale(
            &mut am,
            &["group_wait", "group_interval", "repeat_interval"],
        );
        am.as_object_mut().unwrap().remove("global");
        for receiver in am["receivers"].as_array_mut().unwrap() {
            if receiver["name"] == "xenguard" {
                let hook = &mut receiver["webhook_configs"][0];
                hook["url"] = json!(format!("http://127.0.0.1:{receiver_port}/alertmanager"));
                hook["http_config"]["authorization"]["credentials_file"] = json!(path("token"));
            } else {
                *receiver = json!({"name": receiver["name"]});
            }
        }
        std::fs::write(path("alertmanager.yml"), am.to_string()).unwrap();

        let others = vec![
            spawn(
                "prometheus",
                &[
                    format!("--config.file={}", path("prometheus.yml")),
                    format!("--storage.tsdb.path={}", path("prometheus")),
                    format!("--web.listen-address=127.0.0.1:{prometheus_port}"),
                ],
                &dir.path().join("prometheus.log"),
            ),
            spawn(
                "prometheus-alertmanager",
                &[
                    format!("--config.file={}", path("alertmanager.yml")),
                    format!("--storage.path={}", path("alertmanager")),
                    format!("--web.listen-address=127.0.0.1:{am_port}"),
                    "--cluster.listen-address=".into(),
                ],
                &dir.path().join("alertmanager.log"),
            ),
        ];
        let scale = if fast { 10.0 } else { 1.0 };
        reqwest::Client::new()
            .post(format!("{}/clock/scale", common::control_url(&sim)))
            .json(&json!({"scale": scale}))
            .send()
            .await
            .unwrap();
        let double = common::DoubleRunning::watch(sim.clone());
        let mut drill = Drill {
            name,
            sim,
            bmcs,
            config: dir.path().join("xenguard.yml"),
            dir,
            serve: None,
            others,
            receiver_port,
            prometheus_port,
            double,
            injected_at: 0.0,
        };
        drill.start_serve().await;
        // The whole path is up once Prometheus has scraped the pool and every host answers.
        drill
            .wait_until("Prometheus sees every host", 60, async |d| {
                d.query("sum(xen_host_reachable)").await == Some(hosts as f64)
            })
            .await;
        drill
    }

    async fn start_serve(&mut self) {
        let log = self.dir.path().join(format!("serve-{}.log", unix_now()));
        let child = spawn(
            env!("CARGO_BIN_EXE_xenguard"),
            &[
                "serve".into(),
                "--config".into(),
                self.config.display().to_string(),
            ],
            &log,
        );
        self.serve = Some(child);
        let url = format!("http://127.0.0.1:{}/-/ready", self.receiver_port);
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(&url).await.is_err() {
            let exited = self.serve.as_mut().unwrap().try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                let output = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("xenguard serve never listened ({exited:?}):\n{output}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    fn kill_serve(&mut self) {
        let mut child = self.serve.take().unwrap();
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }

    async fn query(&self, expr: &str) -> Option<f64> {
        let encoded: String = expr
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' | b'.' | b'-' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let url = format!(
            "http://127.0.0.1:{}/api/v1/query?query={encoded}",
            self.prometheus_port
        );
        let body: Value = reqwest::Client::new()
            .get(url)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        body["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    async fn control(&mut self, path: &str, body: Value) {
        if self.injected_at == 0.0 {
            self.injected_at = unix_now();
        }
        common::control(&self.sim, path, body).await;
    }

    async fn wait_until(&self, what: &str, seconds: u64, check: impl AsyncFn(&Drill) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(seconds) + self.slack();
        while !check(self).await {
            if Instant::now() > deadline {
                panic!(
                    "{}: {what} did not happen; journal: {:#?}",
                    self.name,
                    self.journal().list(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Extra waiting time at real speed.
    fn slack(&self) -> Duration {
        Duration::from_secs_f64(120.0 * (15.0 / speedup() - 1.0) / 14.0)
    }

    fn journal(&self) -> Journal {
        Journal::open(&self.dir.path().join("journal.db")).unwrap()
    }

    /// Waits until every remediation is terminal and at least `count` exist.
    async fn settled(&self, count: usize, seconds: u64) -> Vec<Remediation> {
        self.wait_until("the remediations settle", seconds, async |d| {
            let list = d.journal().list(50).unwrap();
            list.len() >= count
                && list
                    .iter()
                    .all(|r| ["done", "failed", "blocked", "aborted"].contains(&r.phase.as_str()))
        })
        .await;
        self.journal().list(50).unwrap()
    }

    fn uuid(&self, host: &str) -> String {
        common::host_uuid(&self.sim, host)
    }

    fn guests_on(&self, host: &str) -> Vec<String> {
        common::guests_on(&self.sim, host)
    }

    fn runs_once_elsewhere(&self, vms: &[String], dead: &str) -> usize {
        let dead = self.uuid(dead);
        self.sim.with_model(|m, _| {
            vms.iter()
                .filter(|vm| {
                    m.running
                        .get(*vm)
                        .is_some_and(|on| on.len() == 1 && !on.contains(&dead))
                })
                .count()
        })
    }

    /// Completed power-offs: through a host's BMC, or through both its outlets.
    fn fences(&self) -> usize {
        let names: Vec<String> = self
            .sim
            .with_model(|m, _| m.hosts.iter().map(|h| h.name.clone()).collect());
        names
            .iter()
            .map(|h| self.bmcs.power_offs(h) + self.bmcs.outlet_power_offs(h))
            .sum()
    }

    /// Pulls the cables of `hosts`, then waits up to `seconds` for an alert to reach the
    /// receiver.
    async fn cut_off(&mut self, hosts: &[&str], seconds: u64) {
        for host in hosts {
            self.control(
                &format!("hosts/{host}/network"),
                json!({"connected": false}),
            )
            .await;
        }
        self.wait_until("an alert reaches the receiver", seconds, async |d| {
            !d.journal().list(1).unwrap().is_empty()
        })
        .await;
    }

    /// Cuts a host's power, then waits up to `seconds` until every guest it ran runs once on
    /// another host; returns those guests.
    async fn power_off_until_recovered(&mut self, host: &str, seconds: u64) -> Vec<String> {
        let guests = self.guests_on(host);
        self.control(&format!("hosts/{host}/power"), json!({"state": "off"}))
            .await;
        self.wait_until(&format!("{host}'s VMs run elsewhere"), seconds, async |d| {
            d.runs_once_elsewhere(&guests, host) == guests.len()
        })
        .await;
        guests
    }

    /// Whether the alert fires in Prometheus now.
    async fn firing(&self, alert: &str) -> bool {
        self.query(&format!(
            "sum(ALERTS{{alertname=\"{alert}\",alertstate=\"firing\"}})"
        ))
        .await
        .is_some_and(|n| n >= 1.0)
    }

    /// The drill's report line: outcome, seconds from the failure to the alert reaching the
    /// receiver, to the fence confirmed, to the VMs running again; double runs; fences.
    fn report(&self, r: Option<&Remediation>, outcome: &str) {
        let since =
            |t: Option<f64>| t.map_or("-".to_owned(), |t| format!("{:.1}", t - self.injected_at));
        let (alert, fence, running) = match r {
            None => (None, None, None),
            Some(r) => {
                let (_, steps) = self.journal().show(r.id).unwrap().unwrap();
                let fence = steps.iter().find(|s| s.kind == "fence").map(|s| s.at);
                let running = (r.phase == "done").then_some(r.updated_at);
                (Some(r.created_at), fence, running)
            }
        };
        println!(
            "DRILL|{}|{}|{}|{}|{}|{}|{}",
            self.name,
            outcome,
            since(alert),
            since(fence),
            since(running),
            self.double.max(),
            self.fences()
        );
    }
}

fn done(list: &[Remediation]) -> Vec<&Remediation> {
    list.iter().filter(|r| r.phase == "done").collect()
}

/// Power loss, cable pull, xapi death, graceful shutdown of one host: fenced once, its VMs
/// (those on shared storage) running once on the survivors.
async fn host_dies(name: &'static str, hosts: usize, host: &str, how: (&str, Value)) {
    let mut d = Drill::start(name, hosts, 2).await;
    let before = d.guests_on(host);
    let local = if host == "host1" { 1 } else { 0 };
    d.control(&format!("hosts/{host}/{}", how.0), how.1).await;
    // A host whose xapi refuses is probed through the refusal grace (120 s shipped) first.
    let grace = if how.0 == "xapi" {
        120.0 / speedup()
    } else {
        0.0
    };
    d.wait_until("its VMs run elsewhere", 90 + grace as u64, async |d| {
        d.runs_once_elsewhere(&before, host) == before.len() - local
    })
    .await;
    let list = d.settled(1, 60).await;
    let done = done(&list);
    assert_eq!(done.len(), 1, "{list:#?}");
    assert!(
        list.iter()
            .all(|r| r.phase == "done" || r.phase == "aborted"),
        "{list:#?}"
    );
    assert_eq!(d.double.max(), 0);
    assert_eq!(
        d.bmcs.power_offs(host) + usize::from(how.0 == "power"),
        1,
        "{:?}",
        d.bmcs.power_log(host)
    );
    assert_eq!(d.fences(), d.bmcs.power_offs(host), "only {host} fenced");
    d.report(Some(done[0]), "recovered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_slave_loses_power() {
    host_dies(
        "slave loses power",
        3,
        "host3",
        ("power", json!({"state": "off"})),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_master_loses_power() {
    host_dies(
        "master loses power",
        3,
        "host1",
        ("power", json!({"state": "off"})),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_master_cable_pulled() {
    host_dies(
        "master's cable pulled",
        3,
        "host1",
        ("network", json!({"connected": false})),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_xapi_dies_vms_keep_running() {
    host_dies(
        "xapi dies, VMs run on",
        3,
        "host2",
        ("xapi", json!({"running": false})),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_graceful_master_shutdown() {
    // Graceful: the guests are shut down cleanly, so there is nothing to restart; the master
    // is still fenced (read back off) and replaced.
    let mut d = Drill::start("graceful master shutdown", 3, 2).await;
    d.control(
        "hosts/host1/power",
        json!({"state": "off", "graceful": true}),
    )
    .await;
    let list = d.settled(1, 90).await;
    let done = done(&list);
    assert_eq!(done.len(), 1, "{list:#?}");
    assert_eq!(d.double.max(), 0);
    let roles = d.sim.with_model(|m, _| {
        m.hosts
            .iter()
            .map(|h| format!("{:?}", h.role))
            .collect::<Vec<_>>()
    });
    assert!(roles[1].contains("Master"), "{roles:?}");
    d.report(Some(done[0]), "promoted");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_two_host_pool_master_dies() {
    host_dies(
        "two-host pool, master dies",
        2,
        "host1",
        ("power", json!({"state": "off"})),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_fence_fails() {
    let mut d = Drill::start("BMC unreachable", 3, 2).await;
    let before = d.guests_on("host3");
    d.bmcs.stop("host3");
    d.control("hosts/host3/xapi", json!({"running": false}))
        .await;
    // Its xapi refuses: the receiver probes it through the refusal grace (120 s shipped) first.
    let list = d.settled(1, 120 + (120.0 / speedup()) as u64).await;
    // Other alerts about the same host meet the spent fence budget: no second attempt.
    assert!(
        list.iter()
            .all(|r| ["failed", "aborted", "blocked"].contains(&r.phase.as_str())),
        "{list:#?}"
    );
    let failed = list.iter().find(|r| r.phase == "failed").unwrap();
    assert!(failed.reason.contains("fence failed"), "{failed:?}");
    assert_eq!(
        d.guests_on("host3"),
        before,
        "nothing reset or started elsewhere"
    );
    d.wait_until("the fence-failed alert fires", 60, async |d| {
        d.query("sum(xenguard_remediation_fences_total{outcome=\"failed\"})")
            .await
            == Some(1.0)
    })
    .await;
    d.report(Some(failed), "fence failed; nothing reset");
}

/// The whole chassis loses power and its BMC with it: level 1 (the BMC) cannot answer, level 2
/// (both PDU outlets) switches off and reads back off, and the guests run once on the survivors.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_chassis_power_lost_with_the_bmc_dead() {
    let mut d = Drill::start_with("chassis power lost, BMC dead", 3, 2, &["host3"], "").await;
    let before = d.guests_on("host3");
    d.bmcs.stop("host3");
    d.control("hosts/host3/feeds/1", json!({"on": false})).await;
    d.control("hosts/host3/feeds/2", json!({"on": false})).await;
    d.wait_until("its VMs run elsewhere", 120, async |d| {
        d.runs_once_elsewhere(&before, "host3") == before.len()
    })
    .await;
    let list = d.settled(1, 60).await;
    let done = done(&list);
    assert_eq!(done.len(), 1, "{list:#?}");
    assert_eq!(d.double.max(), 0);
    let (_, steps) = d.journal().show(done[0].id).unwrap().unwrap();
    let fence = steps.iter().find(|s| s.kind == "fence").unwrap();
    assert_eq!(fence.detail["fenced_at_level"], 2, "{:#}", fence.detail);
    assert_eq!(fence.detail["levels"][0]["off"], false);
    assert_eq!(fence.detail["levels"][1]["off"], true);
    // The outlets were already dead: fence_ipmilan reads them off and switches nothing.
    for feed in [1, 2] {
        let log = d.bmcs.outlet_log("host3", feed);
        assert!(
            log.contains(&"get power".to_owned()),
            "outlet {feed}: {log:?}"
        );
    }
    assert_eq!(
        d.fences(),
        0,
        "no device had to switch: the chassis had no power"
    );
    d.wait_until("XenguardFenceLevelFailed fires", 60, async |d| {
        d.firing("XenguardFenceLevelFailed").await
    })
    .await;
    assert!(!d.firing("XenguardFenceFailed").await);
    d.report(Some(done[0]), "recovered, fenced at level 2");
}

/// The host's cable is pulled (it still runs its guests), its BMC cannot be reached and one of
/// its two outlets is broken: level 2 switches one outlet off, the other fails, so the host
/// keeps its power and nothing is reset or started.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_one_outlet_of_two_fails() {
    let mut d = Drill::start_with("one outlet of two fails", 3, 2, &["host3"], "").await;
    let before = d.guests_on("host3");
    d.bmcs.stop("host3");
    d.bmcs.stop_outlet("host3", 2);
    d.control("hosts/host3/network", json!({"connected": false}))
        .await;
    let list = d.settled(1, 120).await;
    let failed = list.iter().find(|r| r.phase == "failed");
    let failed = failed.unwrap_or_else(|| panic!("{list:#?}"));
    assert!(
        failed.reason.contains("every fencing level failed"),
        "{failed:?}"
    );
    assert!(done(&list).is_empty(), "{list:#?}");
    assert_eq!(
        d.guests_on("host3"),
        before,
        "nothing reset or started elsewhere"
    );
    assert_eq!(d.double.max(), 0);
    assert_eq!(d.fences(), 0, "no level completed");
    d.wait_until("XenguardFenceFailed fires", 60, async |d| {
        d.firing("XenguardFenceFailed").await
    })
    .await;
    d.report(Some(failed), "not fenced; nothing reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_tool_cut_off() {
    let mut d = Drill::start("xenguard cut off", 3, 2).await;
    d.cut_off(&["host1", "host2", "host3"], 60).await;
    let list = d.settled(1, 60).await;
    assert!(list.iter().all(|r| r.phase == "blocked"), "{list:#?}");
    assert!(list[0].reason.contains("no quorum"), "{:?}", list[0]);
    assert_eq!(d.fences(), 0);
    assert_eq!(d.guests_on("host2").len(), 2);
    d.report(Some(&list[0]), "blocked: no quorum");
}

/// A host fenced and recovered comes back; minutes later another host dies. The returned host
/// is held (`rejoin_healthy_seconds`, shown by `xenguard_remediation_host_held` in Prometheus):
/// none of the second host's guests start on it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_fenced_host_flaps_back_and_is_held() {
    let budget = "  fence_budget: {max_fences: 2, window_seconds: 3600}\n";
    let mut d = Drill::start_with("fenced host comes back, held", 4, 2, &[], budget).await;
    d.power_off_until_recovered("host4", 120).await;
    d.settled(1, 60).await;
    d.control("hosts/host4/power", json!({"state": "on"})).await;
    d.wait_until("Prometheus shows host4 held", 120, async |d| {
        d.query("max(xenguard_remediation_host_held{host=\"host4\"})")
            .await
            == Some(1.0)
    })
    .await;
    let host4 = d.uuid("host4");
    let second = d.power_off_until_recovered("host3", 120).await;
    let list = d.settled(2, 60).await;
    let done = done(&list);
    assert_eq!(done.len(), 2, "{list:#?}");
    let on_host4 = d.sim.with_model(|m, _| {
        second
            .iter()
            .filter(|vm| m.running.get(*vm).is_some_and(|on| on.contains(&host4)))
            .count()
    });
    assert_eq!(on_host4, 0, "a held host took guests");
    assert_eq!(d.double.max(), 0);
    assert_eq!(
        d.fences(),
        0,
        "both hosts had lost power: nothing to switch"
    );
    d.report(Some(done[0]), "recovered; returned host held");
}

/// Three of five hosts drop off the network at once: not three host failures but one failure
/// of something they share. The pool stands down (storm), nobody is fenced, nothing is reset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_storm_three_of_five_hosts_unreachable() {
    let mut d = Drill::start("storm: 3 of 5 hosts unreachable", 5, 1).await;
    let before: Vec<Vec<String>> = ["host3", "host4", "host5"]
        .iter()
        .map(|h| d.guests_on(h))
        .collect();
    d.cut_off(&["host3", "host4", "host5"], 90).await;
    let list = d.settled(1, 90).await;
    assert!(list.iter().all(|r| r.phase == "blocked"), "{list:#?}");
    assert!(
        list.iter().any(|r| r.reason.contains("storm: ")),
        "{list:#?}"
    );
    assert_eq!(d.fences(), 0);
    let after: Vec<Vec<String>> = ["host3", "host4", "host5"]
        .iter()
        .map(|h| d.guests_on(h))
        .collect();
    assert_eq!(after, before, "nothing reset or started elsewhere");
    assert_eq!(d.double.max(), 0);
    d.wait_until("XenguardRemediationStorm fires", 60, async |d| {
        d.firing("XenguardRemediationStorm").await
    })
    .await;
    let storm = list.iter().find(|r| r.reason.contains("storm: ")).unwrap();
    d.report(Some(storm), "stood down: storm");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_ha_enabled() {
    let mut d = Drill::start("HA enabled", 3, 2).await;
    d.control("pool/ha", json!({"enabled": true})).await;
    d.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    d.wait_until("an alert reaches the receiver", 60, async |d| {
        !d.journal().list(1).unwrap().is_empty()
    })
    .await;
    let list = d.settled(1, 60).await;
    assert!(
        list.iter()
            .all(|r| r.phase == "blocked" && r.reason.contains("HA")),
        "{list:#?}"
    );
    assert_eq!(d.fences(), 0);
    d.report(Some(&list[0]), "stood down: HA");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_old_master_comes_back() {
    let mut d = Drill::start("old master comes back", 3, 2).await;
    d.control("hosts/host1/power", json!({"state": "off"}))
        .await;
    let list = d.settled(1, 90).await;
    assert_eq!(done(&list).len(), 1, "{list:#?}");
    let fences = d.fences();
    // Someone powers the old master on: it boots believing it is master, meets the new one
    // and becomes its slave; the exporter shows one master again and nobody is fenced.
    d.control("hosts/host1/power", json!({"state": "on"})).await;
    d.wait_until("one master again, host1 a slave", 90, async |d| {
        let roles = d.sim.with_model(|m, _| {
            m.hosts
                .iter()
                .map(|h| format!("{:?}", h.role))
                .collect::<Vec<_>>()
        });
        roles[0].contains("Slave") && d.query("max(xen_pool_masters)").await == Some(1.0)
    })
    .await;
    assert_eq!(d.fences(), fences, "the returning host was not fenced");
    assert_eq!(d.double.max(), 0);
    d.report(done(&list).first().copied(), "rejoined as slave");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_host_flaps() {
    let mut d = Drill::start("host flaps", 3, 2).await;
    d.control("hosts/host3/power", json!({"state": "off"}))
        .await;
    let list = d.settled(1, 90).await;
    assert_eq!(done(&list).len(), 1, "{list:#?}");
    let first = list.len();
    for _ in 0..2 {
        d.control("hosts/host3/power", json!({"state": "on"})).await;
        d.wait_until("host3 answers again", 60, async |d| {
            d.query(&format!(
                "xen_host_reachable{{host_uuid=\"{}\"}}",
                d.uuid("host3")
            ))
            .await
                == Some(1.0)
        })
        .await;
        d.control("hosts/host3/power", json!({"state": "off"}))
            .await;
        d.wait_until("a new alert reaches the receiver", 60, async |d| {
            d.journal().list(50).unwrap().len() > first
        })
        .await;
    }
    let list = d.settled(first + 1, 60).await;
    assert_eq!(done(&list).len(), 1, "one recovery: {list:#?}");
    assert!(
        list.iter()
            .filter(|r| r.phase != "done")
            .all(|r| r.reason.contains("cooldown") || r.phase == "aborted"),
        "{list:#?}"
    );
    assert!(
        d.bmcs.power_offs("host3") <= 1,
        "{:?}",
        d.bmcs.power_log("host3")
    );
    d.report(done(&list).first().copied(), "one fence in the window");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_receiver_killed_mid_remediation() {
    let mut d = Drill::start("receiver killed mid-way", 3, 2).await;
    let before = d.guests_on("host2");
    d.control("hosts/host2/xapi", json!({"running": false}))
        .await;
    d.wait_until("the fence begins", 90, async |d| {
        d.journal()
            .list(50)
            .unwrap()
            .iter()
            .any(|r| r.phase == "fencing")
    })
    .await;
    d.kill_serve();
    d.start_serve().await;
    d.wait_until("its VMs run elsewhere", 90, async |d| {
        d.runs_once_elsewhere(&before, "host2") == before.len()
    })
    .await;
    let list = d.settled(1, 60).await;
    let done = done(&list);
    assert_eq!(done.len(), 1, "{list:#?}");
    let (_, steps) = d.journal().show(done[0].id).unwrap().unwrap();
    assert!(steps.iter().any(|s| s.kind == "resumed"), "{steps:#?}");
    assert_eq!(d.bmcs.power_offs("host2"), 1, "fenced once");
    assert_eq!(d.double.max(), 0);
    d.report(Some(done[0]), "resumed, recovered");
}

#[test]
fn durations_scale() {
    assert_eq!(seconds("1m"), 60.0);
    assert_eq!(seconds("500ms"), 0.5);
    if speedup() == 15.0 {
        assert_eq!(scaled("15s"), "1000ms");
        assert_eq!(scaled("2m"), "8000ms");
    }
    let mut tree = json!({"a": [{"for": "30s", "expr": "x"}], "interval": "15s"});
    rescale(&mut tree, &["for", "interval"]);
    assert_eq!(tree["a"][0]["expr"], "x");
    assert_ne!(tree["a"][0]["for"], "30s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_receiver_alone_loses_a_slave() {
    // A firewall rule between the tools and host3 only: the exporter and the receiver lose it,
    // the pool does not. The master still reaches it: nobody is fenced.
    let mut d = Drill::start("receiver alone loses a slave", 3, 2).await;
    d.control(
        "hosts/host3/network",
        json!({"connected": false, "outside_only": true}),
    )
    .await;
    d.wait_until("an alert reaches the receiver", 60, async |d| {
        !d.journal().list(1).unwrap().is_empty()
    })
    .await;
    let list = d.settled(1, 90).await;
    assert!(list.iter().all(|r| r.phase == "blocked"), "{list:#?}");
    assert!(
        list.iter()
            .any(|r| r.reason.contains("the pool still reaches the host")),
        "{list:#?}"
    );
    assert_eq!(d.fences(), 0);
    assert_eq!(d.guests_on("host3").len(), 2);
    assert_eq!(d.double.max(), 0);
    d.report(Some(&list[0]), "blocked: the pool reaches it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_toolstack_restart() {
    // xe-toolstack-restart on a loaded host: xapi refuses connections for 60 s, its VMs run on.
    let mut d = Drill::start("60 s toolstack restart", 3, 2).await;
    d.control("hosts/host2/xapi", json!({"running": false}))
        .await;
    d.wait_until("an alert reaches the receiver", 60, async |d| {
        !d.journal().list(1).unwrap().is_empty()
    })
    .await;
    // Back 60 s (scaled) after it stopped; the alert needs about 30 s of that to fire.
    let restart = Duration::from_secs_f64(60.0 / speedup());
    tokio::time::sleep(restart.saturating_sub(Duration::from_secs_f64(30.0 / speedup()))).await;
    d.control("hosts/host2/xapi", json!({"running": true}))
        .await;
    let list = d.settled(1, 90).await;
    assert!(
        list.iter()
            .all(|r| r.phase == "blocked" || r.phase == "aborted"),
        "{list:#?}"
    );
    assert_eq!(d.fences(), 0, "a toolstack restart is not a death");
    assert_eq!(d.guests_on("host2").len(), 2);
    d.report(Some(&list[0]), "not fenced");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_old_master_boots_isolated_then_its_cable_comes_back() {
    let mut d = Drill::start("old master boots isolated", 3, 2).await;
    d.control("hosts/host1/power", json!({"state": "off"}))
        .await;
    let list = d.settled(1, 90).await;
    assert_eq!(done(&list).len(), 1, "{list:#?}");
    let fences = d.fences();
    // It boots with its cable still out (xapi's no-other-masters check reaches nobody), then
    // the cable comes back: two masters, until the receiver resolves it.
    d.control("hosts/host1/network", json!({"connected": false}))
        .await;
    d.control("hosts/host1/power", json!({"state": "on"})).await;
    d.control("hosts/host1/network", json!({"connected": true}))
        .await;
    d.wait_until("the split brain is resolved", 120, async |d| {
        d.journal()
            .list(50)
            .unwrap()
            .iter()
            .any(|r| r.kind == "resolve_split_brain" && r.phase == "done")
    })
    .await;
    let roles = d.sim.with_model(|m, _| {
        m.hosts
            .iter()
            .map(|h| format!("{:?}", h.role))
            .collect::<Vec<_>>()
    });
    assert!(roles[0].contains("Slave"), "{roles:?}");
    assert_eq!(d.fences(), fences, "nobody fenced for it");
    assert_eq!(d.double.max(), 0);
    let list = d.journal().list(50).unwrap();
    let resolved = list
        .iter()
        .find(|r| r.kind == "resolve_split_brain")
        .unwrap();
    d.report(Some(resolved), "split brain resolved");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_certificate_rotated_on_a_healthy_slave() {
    // `xe host-refresh-server-certificate` on host2, then a toolstack restart (which closes the
    // connections stunnel's reload kept), its pin not updated: every probe of it fails
    // verification while it runs its guests. It is alive: nobody is fenced, and
    // XenguardHostUnverifiable tells the operator why.
    let mut d = Drill::start("certificate rotated on a healthy slave", 3, 2).await;
    d.control("hosts/host2/certificate", json!({})).await;
    d.control("hosts/host2/xapi", json!({"running": false}))
        .await;
    d.control("hosts/host2/xapi", json!({"running": true}))
        .await;
    d.wait_until("an alert reaches the receiver", 60, async |d| {
        !d.journal().list(1).unwrap().is_empty()
    })
    .await;
    let list = d.settled(1, 90).await;
    assert!(list.iter().all(|r| r.phase == "blocked"), "{list:#?}");
    assert!(
        list.iter()
            .any(|r| r.reason.contains("not as a verifiable xapi")),
        "{list:#?}"
    );
    d.wait_until("XenguardHostUnverifiable fires", 60, async |d| {
        d.query("ALERTS{alertname=\"XenguardHostUnverifiable\",alertstate=\"firing\"}")
            .await
            == Some(1.0)
    })
    .await;
    assert_eq!(d.fences(), 0);
    assert_eq!(d.guests_on("host2").len(), 2);
    assert_eq!(d.double.max(), 0);
    d.report(Some(&list[0]), "blocked: unverifiable, alert raised");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_slave_dies_and_declare_dead_takes_40_s() {
    // The master still holds the dead slave live: declare_dead tries to reach it (20 s), then
    // runs the resetvdis hook for each of its two SRs (10 s each). The receiver waits for the
    // task and never resets VMs itself while it runs.
    let mut d = Drill::start("slave dies, declare_dead takes 40 s", 3, 2).await;
    d.control(
        "timing",
        json!({"forward_connect_timeout": 20.0, "declare_dead_hook_per_sr": 10.0}),
    )
    .await;
    d.power_off_until_recovered("host3", 120).await;
    let list = d.settled(1, 60).await;
    let done = done(&list);
    assert_eq!(done.len(), 1, "{list:#?}");
    let (_, steps) = d.journal().show(done[0].id).unwrap().unwrap();
    let reset = steps.iter().find(|s| s.kind == "reset_vms").unwrap();
    assert_eq!(
        reset.detail["declare_dead"]["Ok"], "ok",
        "{:#}",
        reset.detail
    );
    assert!(
        reset.detail.get("power_state_reset").is_none(),
        "no fallback raced the task: {:#}",
        reset.detail
    );
    assert_eq!(d.double.max(), 0);
    d.report(Some(done[0]), "recovered, no fallback race");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_master_dies_and_survivors_answer_internal_error() {
    // The master's xapi dies for good (its connections are refused); the slaves' toolstacks
    // restart meanwhile (an operator's reflex), so they come up in emergency mode answering
    // logins with the error of their last failed connect, INTERNAL_ERROR.
    let mut d = Drill::start("master dies, survivors answer INTERNAL_ERROR", 3, 2).await;
    let before = d.guests_on("host1");
    d.control("hosts/host1/xapi", json!({"running": false}))
        .await;
    for slave in ["host2", "host3"] {
        let path = format!("hosts/{slave}/xapi");
        d.control(&path, json!({"running": false})).await;
        d.control(&path, json!({"running": true})).await;
    }
    common::assert_slaves_answer_internal_error(&d.sim);
    // The master refuses (xapi down, host up): each alert about it is probed through the
    // refusal grace (120 s shipped) before it settles.
    let grace = (120.0 / speedup()) as u64;
    let list = d.settled(1, 120 + grace).await;
    let done = done(&list);
    assert_eq!(done.len(), 1, "{list:#?}");
    assert_eq!(d.double.max(), 0);
    // The guest on the dead master's local disk stays down; the other runs once elsewhere.
    assert_eq!(d.runs_once_elsewhere(&before, "host1"), before.len() - 1);
    d.report(Some(done[0]), "promoted, recovered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drill_guest_migrated_just_before_the_master_dies() {
    use xenguard::xapi::records::{Host, Ref};
    // A guest moves from the master to host3 seconds before the master dies: the slaves'
    // database backups and the receiver's last reading still place it on the master.
    let mut d = Drill::start("guest migrated just before the master dies", 3, 2).await;
    let session = Arc::new(common::session_tls(&d.sim));
    let reader = xenguard::xapi::PoolReader::new(session.clone());
    let hosts = reader.all::<Host>().await.unwrap();
    let reference = |uuid: &str| -> Ref<Host> {
        hosts
            .iter()
            .find(|(_, h)| h.uuid == uuid)
            .unwrap()
            .0
            .clone()
    };
    let (host1, host3) = (reference(&d.uuid("host1")), reference(&d.uuid("host3")));
    let moved = common::migrate_a_guest(&session, &host1, &host3).await.uuid;
    d.control("hosts/host1/power", json!({"state": "off"}))
        .await;
    let list = d.settled(1, 120).await;
    assert_eq!(done(&list).len(), 1, "{list:#?}");
    assert_eq!(
        common::truth(&d.sim)[&moved],
        vec![d.uuid("host3")],
        "the moved guest runs once, where it moved"
    );
    assert_eq!(d.double.max(), 0);
    d.report(Some(done(&list)[0]), "recovered, moved guest untouched");
}
