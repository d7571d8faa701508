//! The exporter against `xenguard sim`: the truth about a pool in each failure the recovery
//! guides describe, golden expositions checked with promtool, and hosts that answer garbage.
//! Resource metrics (`/rrd_updates`) are in `resources.rs`, on the same harness.

mod resources;

use crate::common;

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{control_url, start_sim};
use serde_json::json;
use xenguard::exporter::Exporter;
use xenguard::sim::RunningSim;
use xenguard::xapi::{PoolActuator, Session};

struct Harness {
    sim: RunningSim,
    exporter: Arc<Exporter>,
    _password: tempfile::NamedTempFile,
}

/// An exporter watching the simulated pool, probing every second.
async fn harness(hosts: usize, vms: usize) -> Harness {
    harness_with(start_sim(hosts, vms).await, "", "")
}

/// An exporter on every host of `sim` over plain HTTP, with extra lines for the pool
/// (`pool_yaml`, indented four spaces) and for `exporter:` (`exporter_yaml`, two).
fn harness_with(sim: RunningSim, pool_yaml: &str, exporter_yaml: &str) -> Harness {
    let yaml = format!(
        "    hosts: [{}]\n    scheme: http\n{pool_yaml}",
        common::hosts_yaml(&sim)
    );
    harness_on(sim, yaml, exporter_yaml)
}

/// [`harness`] over HTTPS with every host pinned, the slaves listed before the master.
async fn harness_tls(hosts: usize, vms: usize) -> Harness {
    let sim = common::start_sim_tls(hosts, vms).await;
    let mut addresses = sim.host_addresses();
    addresses.reverse();
    let yaml = format!(
        "    hosts: [{}]\n    scheme: https\n{}",
        addresses.join(", "),
        common::tls_pins_yaml(&sim).await
    );
    harness_on(sim, yaml, "")
}

/// `exporter_yaml`: more keys of the `exporter` section.
fn harness_on(sim: RunningSim, pool_yaml: String, exporter_yaml: &str) -> Harness {
    let password = common::password_file();
    // Quick defaults for the timings the test does not set itself.
    let mut exporter = exporter_yaml.to_owned();
    for key in [
        "probe_interval_seconds",
        "probe_timeout_seconds",
        "event_timeout_seconds",
    ] {
        if !exporter_yaml.contains(key) {
            exporter.push_str(&format!("  {key}: 1\n"));
        }
    }
    let yaml = format!(
        "pools:\n  - name: sim\n{pool_yaml}    port: {}\n    password_file: {}\n    timeouts: {{connect_seconds: 1, call_seconds: 2}}\nexporter:\n{exporter}",
        sim.port(),
        password.path().display()
    );
    let config = xenguard::config::parse(&yaml, "test.yml").unwrap_or_else(|e| panic!("{e}"));
    let exporter = Arc::new(Exporter::start(&config).unwrap());
    Harness {
        sim,
        exporter,
        _password: password,
    }
}

impl Harness {
    /// The value of the first sample whose line starts with `series` (name plus labels).
    fn value(&self, series: &str) -> Option<f64> {
        let text = self.exporter.render();
        text.lines()
            .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
    }

    /// Waits until `series` has `want`, or fails with the exposition. The limit is generous:
    /// the suite runs every test binary's tests side by side on two cores, and a 100 MB answer
    /// decoded meanwhile can take most of a minute.
    async fn expect(&self, series: &str, want: f64) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while Instant::now() < deadline {
            if self.value(series) == Some(want) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "{series} never became {want}; last {:?}\n{}",
            self.value(series),
            self.exporter.render()
        );
    }

    fn host_uuid(&self, i: usize) -> String {
        self.sim.with_model(|m, _| m.hosts[i].uuid.clone())
    }

    fn host(&self, metric: &str, i: usize) -> String {
        format!(
            "{metric}{{pool=\"sim\",host_uuid=\"{}\"}}",
            self.host_uuid(i)
        )
    }

    async fn control(&self, path: &str, body: serde_json::Value) {
        let response = reqwest::Client::new()
            .post(format!("{}{path}", control_url(&self.sim)))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
    }

    fn count(&self, prefix: &str) -> usize {
        self.exporter
            .render()
            .lines()
            .filter(|l| l.starts_with(prefix))
            .count()
    }

    fn actuator(&self, order: &[usize]) -> PoolActuator {
        let addresses = self.sim.host_addresses();
        let seeds = order.iter().map(|&i| addresses[i].clone()).collect();
        PoolActuator::new(Arc::new(Session::new(
            common::transport(&self.sim),
            common::credentials(),
            "test",
            seeds,
        )))
    }
}

#[tokio::test]
async fn healthy_pool() {
    let h = harness(3, 2).await;
    h.expect("xen_pool_up{pool=\"sim\"}", 1.0).await;
    for i in 0..3 {
        h.expect(&h.host("xen_host_reachable", i), 1.0).await;
        h.expect(&h.host("xen_host_live", i), 1.0).await;
        h.expect(&h.host("xen_host_emergency_mode", i), 0.0).await;
        h.expect(&h.host("xen_host_orphaned", i), 0.0).await;
        h.expect(&h.host("xen_host_stuck_vms", i), 0.0).await;
        h.expect(&h.host("xen_host_vdi_locks", i), 2.0).await;
    }
    h.expect("xen_pool_masters{pool=\"sim\"}", 1.0).await;
    h.expect("xen_pool_master_reachable{pool=\"sim\"}", 1.0)
        .await;
    h.expect(&h.host("xen_host_is_master", 0), 1.0).await;
    h.expect(&h.host("xen_host_is_master", 1), 0.0).await;
    assert_eq!(h.count("xen_vm_info{"), 6, "guests only");
    assert_eq!(h.count("xen_vm_stuck_running{"), 0);
    assert_eq!(h.count("xen_host_info{"), 3);
    assert_eq!(h.count("xen_pool_ha_enabled{pool=\"sim\"} 0"), 1);
}

#[tokio::test]
async fn over_tls_a_slave_listed_first_leads_to_the_master_and_a_rotated_certificate_is_unreachable()
 {
    let h = harness_tls(3, 2).await;
    // The first host asked answers HOST_IS_SLAVE with the master's address, reached over
    // HTTPS with its own pin.
    h.expect("xen_pool_up{pool=\"sim\"}", 1.0).await;
    for i in 0..3 {
        h.expect(&h.host("xen_host_reachable", i), 1.0).await;
    }
    assert_eq!(h.count("xen_vm_info{"), 6);
    // host2 gets a new certificate (its pin is now wrong) and its toolstack restarts, closing
    // the connections stunnel kept: it answers, but not verifiably.
    h.control("/hosts/host2/certificate", json!({})).await;
    h.control("/hosts/host2/xapi", json!({"running": false}))
        .await;
    h.control("/hosts/host2/xapi", json!({"running": true}))
        .await;
    h.expect(&h.host("xen_host_reachable", 1), 0.0).await;
    h.expect(&h.host("xen_host_reachable", 2), 1.0).await;
    assert!(
        h.exporter
            .render()
            .lines()
            .any(|l| l.starts_with("xenguard_xapi_calls_total{") && l.contains("outcome=\"tls\"")),
        "{}",
        h.exporter.render()
    );
}

#[tokio::test]
async fn slave_powered_off() {
    let h = harness(3, 2).await;
    h.expect("xen_pool_up{pool=\"sim\"}", 1.0).await;
    h.expect(&h.host("xen_host_reachable", 1), 1.0).await;
    h.control("/hosts/host2/power", json!({"state": "off"}))
        .await;
    h.expect(&h.host("xen_host_reachable", 1), 0.0).await;
    assert_eq!(
        h.value(&h.host("xen_host_live", 1)),
        Some(1.0),
        "live until the master's 600 s timeout"
    );
    assert_eq!(
        h.value(&h.host("xen_host_stuck_vms", 1)),
        Some(2.0),
        "unreachable is enough to call its VMs stuck"
    );
    h.sim.advance(610.0);
    h.expect(&h.host("xen_host_live", 1), 0.0).await;
    h.expect(&h.host("xen_host_stuck_vms", 1), 2.0).await;
    h.expect(&h.host("xen_host_vdi_locks", 1), 2.0).await;
    assert_eq!(h.count("xen_vm_stuck_running{"), 2);
    assert_eq!(
        h.value("xen_pool_up{pool=\"sim\"}"),
        Some(1.0),
        "the master is fine"
    );
}

#[tokio::test]
async fn master_lost_then_promotion_then_recover_slaves() {
    let h = harness(3, 1).await;
    h.expect("xen_pool_up{pool=\"sim\"}", 1.0).await;
    h.control("/hosts/host1/power", json!({"state": "off"}))
        .await;
    h.expect("xen_pool_master_reachable{pool=\"sim\"}", 0.0)
        .await;
    h.expect("xen_pool_masters{pool=\"sim\"}", 0.0).await;
    h.expect("xen_pool_up{pool=\"sim\"}", 0.0).await;
    h.expect(&h.host("xen_host_reachable", 1), 1.0).await;
    h.expect(&h.host("xen_host_reachable", 2), 1.0).await;
    h.expect(&h.host("xen_host_orphaned", 1), 1.0).await;
    h.expect(&h.host("xen_host_stuck_vms", 0), 1.0).await;

    let addresses = h.sim.host_addresses();
    h.actuator(&[1])
        .emergency_transition_to_master(&addresses[1])
        .await
        .unwrap();
    h.sim.advance(11.0);
    h.expect("xen_pool_up{pool=\"sim\"}", 1.0).await;
    h.expect(&h.host("xen_host_is_master", 1), 1.0).await;
    h.expect("xen_pool_master_reachable{pool=\"sim\"}", 1.0)
        .await;
    h.expect(&h.host("xen_host_orphaned", 2), 1.0).await;
    h.expect(&h.host("xen_host_orphaned", 1), 0.0).await;

    let recovered = h
        .actuator(&[1])
        .recover_slaves(Duration::from_secs(60))
        .await
        .unwrap();
    assert_eq!(recovered.len(), 1);
    h.sim.advance(11.0);
    h.expect(&h.host("xen_host_orphaned", 2), 0.0).await;
    h.expect("xen_pool_masters{pool=\"sim\"}", 1.0).await;
}

#[tokio::test]
async fn old_master_returns_split_brain_until_recovered() {
    let h = harness(3, 1).await;
    h.expect("xen_pool_up{pool=\"sim\"}", 1.0).await;
    h.control("/hosts/host1/network", json!({"connected": false}))
        .await;
    h.expect(&h.host("xen_host_reachable", 0), 0.0).await;
    let addresses = h.sim.host_addresses();
    h.actuator(&[1])
        .emergency_transition_to_master(&addresses[1])
        .await
        .unwrap();
    h.sim.advance(11.0);
    h.expect("xen_pool_masters{pool=\"sim\"}", 1.0).await;
    h.control("/hosts/host1/network", json!({"connected": true}))
        .await;
    h.expect("xen_pool_masters{pool=\"sim\"}", 2.0).await;
    h.actuator(&[1])
        .recover_slaves(Duration::from_secs(60))
        .await
        .unwrap();
    h.sim.advance(11.0);
    h.expect("xen_pool_masters{pool=\"sim\"}", 1.0).await;
    h.expect(&h.host("xen_host_is_master", 1), 1.0).await;
}

#[tokio::test]
async fn emergency_mode_after_a_slave_restarts_without_master() {
    let h = harness(3, 1).await;
    h.expect("xen_pool_up{pool=\"sim\"}", 1.0).await;
    h.control("/hosts/host1/power", json!({"state": "off"}))
        .await;
    h.expect(&h.host("xen_host_emergency_mode", 2), 0.0).await;
    h.control("/hosts/host3/xapi", json!({"running": false}))
        .await;
    h.control("/hosts/host3/xapi", json!({"running": true}))
        .await;
    h.expect(&h.host("xen_host_emergency_mode", 2), 1.0).await;
    h.expect(&h.host("xen_host_orphaned", 2), 1.0).await;
    h.expect(&h.host("xen_host_emergency_mode", 1), 0.0).await;
}

/// A busy pool (a guest stopped or started four times a second) costs the master one
/// `event.from` per `event_min_interval_seconds`, not one per change, and no change is lost:
/// the last one is what the exporter shows. (Idle, the 5 s server timeout makes two calls in
/// the same window; without the interval each change makes its own.)
#[tokio::test]
async fn a_busy_pool_costs_one_event_from_per_interval() {
    let sim = start_sim(2, 2).await;
    let h = harness_with(
        sim,
        "",
        "  event_timeout_seconds: 5\n  event_min_interval_seconds: 3\n",
    );
    h.expect("xen_pool_up{pool=\"sim\"}", 1.0).await;
    let session = Arc::new(common::session(&h.sim));
    let reader = xenguard::xapi::PoolReader::new(session.clone());
    let (vm, record) = reader
        .all::<xenguard::xapi::records::Vm>()
        .await
        .unwrap()
        .into_iter()
        .find(|(_, v)| {
            v.is_guest() && v.power_state == xenguard::xapi::records::PowerState::Running
        })
        .unwrap();
    let calls = || {
        h.value("xenguard_xapi_calls_total{method=\"event.from\",outcome=\"ok\",pool=\"sim\"}")
            .unwrap_or(0.0)
    };
    // Start just after an answer, so the window holds whole intervals.
    let before = calls();
    while calls() == before {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first = calls();
    let vm_param = [xenguard::xapi::wire::Value::string(vm.as_str())];
    let started = Instant::now();
    let mut running = true;
    while started.elapsed() < Duration::from_secs(9) {
        if running {
            session.call("VM.hard_shutdown", &vm_param).await.unwrap();
        } else {
            let start = [
                vm_param[0].clone(),
                xenguard::xapi::wire::Value::Bool(false),
                xenguard::xapi::wire::Value::Bool(false),
            ];
            session.call("VM.start", &start).await.unwrap();
        }
        running = !running;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // One call at each 3 s mark (0, 3, 6, 9 s) and one more if the window's end races it.
    let made = calls() - first;
    assert!(
        made <= 5.0,
        "{made} event.from calls in 9 s of changes with a 3 s minimum interval"
    );
    let state = if running { "Running" } else { "Halted" };
    h.expect(
        &format!(
            "xen_vm_power_state{{pool=\"sim\",vm_uuid=\"{}\",state=\"{state}\"}}",
            record.uuid
        ),
        1.0,
    )
    .await;
}

/// Bad answers from a host: malformed XML, wrong types, silence, a 100 MB body. Each ends in
/// a counted error and a correct `up`, never a crash or a stuck scrape.
#[tokio::test]
async fn misbehaving_hosts_are_counted_not_fatal() {
    let h = harness(2, 1).await;
    h.expect("xen_pool_up{pool=\"sim\"}", 1.0).await;
    for (fault, outcome) in [
        (json!({"kind": "garbage"}), "decode"),
        (json!({"kind": "wrong_types"}), "decode"),
        (json!({"kind": "silence"}), "timeout"),
        // One 100 MB string, sent as it is generated: cut off at the 4 MiB a single value may
        // hold, long before the 256 MiB body limit; tests/it/xapi_streaming.rs covers answers
        // over the body limit.
        (json!({"kind": "oversize", "bytes": 100_000_000}), "decode"),
    ] {
        h.control("/hosts/host1/faults", json!({"fault": fault}))
            .await;
        let series = format!(
            "xenguard_xapi_calls_total{{method=\"event.from\",outcome=\"{outcome}\",pool=\"sim\"}}"
        );
        let deadline = Instant::now() + Duration::from_secs(90);
        while h.value(&series).is_none_or(|v| v < 1.0) {
            assert!(
                Instant::now() < deadline,
                "{series} never counted\n{}",
                h.exporter.render()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // `expect` renders from memory and gives up after its deadline: a stuck scrape or an
        // `up` that never drops fails here (no wall-clock assertion, which load makes flaky).
        h.expect("xen_pool_up{pool=\"sim\"}", 0.0).await;
        h.control_delete("/hosts/host1/faults").await;
        h.expect("xen_pool_up{pool=\"sim\"}", 1.0).await;
    }
}

impl Harness {
    async fn control_delete(&self, path: &str) {
        let response = reqwest::Client::new()
            .delete(format!("{}{path}", control_url(&self.sim)))
            .send()
            .await
            .unwrap();
        assert!(response.status().is_success());
    }
}

/// The exposition of each scenario, stripped of times and self-metrics, matches
/// `tests/golden/<name>.prom` (UPDATE_GOLDEN=1 rewrites them) and passes
/// `promtool check metrics` in full.
#[tokio::test]
async fn golden_expositions_pass_promtool() {
    let sim = start_sim(3, 2).await;
    // Resource metrics on, so the goldens name every family the alert rules may use.
    let h = harness_with(sim, "", "  rrd_interval_seconds: 1\n");
    h.expect("xen_pool_up{pool=\"sim\"}", 1.0).await;
    for i in 0..3 {
        h.expect(&h.host("xen_host_emergency_mode", i), 0.0).await;
        h.expect(&h.host("xen_host_rrd_up", i), 1.0).await;
    }
    golden(&h, "healthy");
    h.control("/hosts/host2/power", json!({"state": "off"}))
        .await;
    h.sim.advance(610.0);
    h.expect(&h.host("xen_host_live", 1), 0.0).await;
    h.expect(&h.host("xen_host_reachable", 1), 0.0).await;
    h.expect(&h.host("xen_host_rrd_up", 1), 0.0).await;
    // host2's resource series and its dead guests' expire after three intervals.
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.value(&h.host("xen_host_memory_total_bytes", 1)).is_some()
        || h.count("xen_vm_memory_bytes{") != 4
    {
        assert!(
            Instant::now() < deadline,
            "host2's resource series never expired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    golden(&h, "slave_dead");
}

fn golden(h: &Harness, name: &str) {
    let mut text = h.exporter.render();
    promtool_check(&text);
    // Test pools get unique loopback addresses; the golden files name hosts instead.
    for (i, address) in h.sim.host_addresses().iter().enumerate() {
        text = text.replace(&format!("\"{address}\""), &format!("\"<host{}>\"", i + 1));
    }
    let stable: String = text
        .lines()
        .filter(|l| !l.contains("xenguard_"))
        .map(|l| {
            let timed = [
                "xen_pool_state_age_seconds{",
                "xen_host_last_seen_timestamp_seconds{",
            ];
            // Resource values follow the simulated clock's start: only the series are stable.
            let resource = xenguard::exporter::rrd::FAMILIES
                .iter()
                .any(|(f, _)| *f != "xen_host_rrd_up" && l.starts_with(&format!("{f}{{")));
            if resource {
                format!(
                    "{} <value>\n",
                    l.rsplit_once(' ').map_or(l, |(series, _)| series)
                )
            } else if timed.iter().any(|t| l.starts_with(t)) {
                format!(
                    "{} <time>\n",
                    l.rsplit_once(' ').map_or(l, |(series, _)| series)
                )
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{name}.prom"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &stable).unwrap();
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    assert_eq!(stable, want, "exposition differs from {}", path.display());
}

fn promtool_check(text: &str) {
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed by scripts/setup.sh (apt package prometheus)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Two pools in one process: a dead one never spoils the other's series or the scrape, and the
/// HTTP endpoints answer as documented.
#[tokio::test]
async fn pools_are_isolated_and_http_endpoints_answer() {
    let sim = start_sim(2, 1).await;
    let password = common::password_file();
    let yaml = format!(
        "pools:\n  - name: good\n    hosts: [{}]\n    scheme: http\n    port: {port}\n    password_file: {pw}\n  - name: dead\n    hosts: [\"127.0.0.2\"]\n    scheme: http\n    port: {port}\n    password_file: {pw}\n    timeouts: {{connect_seconds: 1, call_seconds: 1}}\nexporter:\n  probe_interval_seconds: 1\n  probe_timeout_seconds: 1\n  event_timeout_seconds: 1\n",
        common::hosts_yaml(&sim),
        port = sim.port(),
        pw = password.path().display()
    );
    let config = xenguard::config::parse(&yaml, "test.yml").unwrap_or_else(|e| panic!("{e}"));
    let exporter = Arc::new(Exporter::start(&config).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = exporter.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });

    let deadline = Instant::now() + Duration::from_secs(20);
    let http = reqwest::Client::new();
    loop {
        let ready = http
            .get(format!("http://{address}/-/ready"))
            .send()
            .await
            .unwrap();
        let text = exporter.render();
        if ready.status() == 200
            && text.contains("xen_pool_up{pool=\"good\"} 1")
            && text.contains("xen_pool_up{pool=\"dead\"} 0")
        {
            break;
        }
        assert!(Instant::now() < deadline, "pools never settled:\n{text}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = http
        .get(format!("http://{address}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        metrics.headers()["content-type"],
        xenguard::exporter::CONTENT_TYPE
    );
    let body = metrics.text().await.unwrap();
    assert_eq!(body.matches("xen_host_reachable{pool=\"good\"").count(), 2);
    assert!(
        body.contains("xen_host_reachable{pool=\"dead\",host_uuid=\"address:127.0.0.2\"} 0"),
        "{body}"
    );
    assert_eq!(
        http.get(format!("http://{address}/-/healthy"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let landing = http
        .get(format!("http://{address}/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(landing.contains("<td>good</td>") && landing.contains("<td>dead</td>"));
    sim.shutdown();
}

/// Scrapes that arrive while another is rendering wait for it and serve the same text: several
/// scrapers at once (a Prometheus HA pair, a dashboard burst) cost one render, and every
/// answer is still a whole, current exposition.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_scrapes_share_one_render() {
    let h = harness(4, 300).await;
    h.expect("xen_pool_up{pool=\"sim\"}", 1.0).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/metrics", listener.local_addr().unwrap());
    let router = h.exporter.router();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    let http = reqwest::Client::new();
    let scrape = move || {
        let (http, url) = (http.clone(), url.clone());
        async move {
            let response = http.get(url).send().await.unwrap();
            assert_eq!(response.status(), 200);
            response.text().await.unwrap()
        }
    };
    let renders = |text: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix("xenguard_renders_total "))
            .and_then(|v| v.parse().ok())
            .expect("xenguard_renders_total")
    };
    let before = renders(&scrape().await);
    for _ in 0..5 {
        scrape().await;
    }
    let alone = renders(&scrape().await);
    assert_eq!(alone - before, 6.0, "a lone scrape renders fresh");
    let mut scrapes = 0.0;
    for _ in 0..20 {
        let mut set = tokio::task::JoinSet::new();
        for _ in 0..8 {
            set.spawn(scrape());
        }
        while let Some(text) = set.join_next().await {
            let text = text.unwrap();
            assert!(text.contains("xen_pool_up{pool=\"sim\"} 1"), "{text}");
            assert_eq!(text.matches("\nxen_vm_info{").count(), 4 * 300);
            scrapes += 1.0;
        }
    }
    let rendered = renders(&scrape().await) - alone - 1.0;
    assert!(
        rendered < scrapes,
        "{scrapes} overlapping scrapes rendered {rendered} times"
    );
}
