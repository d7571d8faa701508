//! The README's first command works: `xenguard demo` serves a simulated pool, the exporter's
//! metrics, the receiver and a landing page on the documented ports, and stops on SIGTERM.
//! `xenguard demo --auto` (in process, on addresses no other test uses) fences a dead host
//! through the simulated BMC and restarts its VMs elsewhere, each exactly once; and the
//! hidden `xenguard fence-sim` speaks the fence-agents contract against the simulator.

use crate::common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use xenguard::demo::{Demo, DemoOptions};
use xenguard::fence_sim::AGENT_NAME;
use xenguard::remediation::fence::{FenceAgent, Power};
use xenguard::sim::{PoolSpec, SimOptions};

const XENGUARD: &str = env!("CARGO_BIN_EXE_xenguard");

#[test]
fn demo_serves_the_pool_and_its_metrics() {
    let child = Command::new(XENGUARD)
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("xenguard demo starts");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut metrics = String::new();
    while Instant::now() < deadline {
        if let Ok(body) = http_get("127.0.0.1:9878", "/metrics")
            && body.contains("xen_pool_up{pool=\"demo\"} 1")
            && body.matches("xen_host_reachable{").count() == 3
        {
            metrics = body;
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let truth = http_get("127.0.0.1:9880", "/truth").unwrap_or_default();
    let remediations = http_get("127.0.0.1:9879", "/remediations").unwrap_or_default();
    let page = http_get("127.0.0.1:9881", "/").unwrap_or_default();
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        metrics.contains("xen_pool_masters{pool=\"demo\"} 1"),
        "no healthy metrics; demo printed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(truth.contains("\"double_running_vms\":0"), "{truth}");
    assert!(
        remediations.starts_with("HTTP/1.0 200") && remediations.ends_with("[]"),
        "the receiver answers with an empty journal: {remediations}"
    );
    assert!(
        page.starts_with("HTTP/1.0 200")
            && page.contains("http-equiv=\"refresh\"")
            && page.contains("<td>host3</td>")
            && page.contains("observe"),
        "the landing page shows the pool: {page}"
    );
    let first = stdout.lines().next().unwrap_or_default();
    assert!(first.contains("http://127.0.0.1:9881/"), "{stdout}");
    assert!(
        stdout.contains("http://127.0.0.1:9878/metrics")
            && stdout.contains("observe mode")
            && stdout.contains("journal list --config ")
            && stdout.contains("Ctrl-C stops it"),
        "{stdout}"
    );
    assert!(
        output.status.success(),
        "demo exits cleanly on SIGTERM: {:?}",
        output.status
    );
}

#[test]
fn fence_sim_is_hidden_from_help() {
    let help = Command::new(XENGUARD).arg("--help").output().unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(
        text.contains("demo") && !text.contains("fence-sim"),
        "{text}"
    );
}

/// `xenguard demo --auto` in process: a slave loses power; the stand-in alert fires, the
/// receiver confirms, fences through `fence_xenguard_sim`, and restarts the slave's VMs on the
/// survivors, each exactly once at every moment.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn demo_auto_fences_a_dead_slave_and_restarts_its_vms_elsewhere() {
    let any = SocketAddr::from(([127, 0, 0, 1], 0));
    let pid = std::process::id();
    let defaults = DemoOptions::default();
    let demo = Demo::start(DemoOptions {
        auto: true,
        sim: SimOptions {
            spec: PoolSpec {
                first_address: [127, 20 + (pid % 200) as u8, 250, 11],
                ..PoolSpec::default()
            },
            port: 0,
            control: any,
            ..defaults.sim
        },
        exporter: any,
        receiver: any,
        page: any,
        executable: PathBuf::from(XENGUARD),
    })
    .await
    .expect("the demo starts");
    let banner = demo.banner();
    let config = demo.config_path().display().to_string();
    assert!(
        banner
            .lines()
            .next()
            .unwrap()
            .contains(&format!("http://{}/", demo.page_addr()))
            && banner.contains("auto mode")
            && banner.contains(&config),
        "{banner}"
    );
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let control = format!("http://{}", demo.control_addr());
    let receiver = format!("http://{}", demo.receiver_addr());
    let get = |url: String| {
        let http = http.clone();
        async move {
            http.get(&url)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{url}: {e}"))
                .text()
                .await
                .unwrap()
        }
    };
    let exporter = format!("http://{}/metrics", demo.exporter_addr());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let text = get(exporter.clone()).await;
        let reachable = text
            .lines()
            .filter(|l| l.starts_with("xen_host_reachable{") && l.ends_with(" 1"))
            .count();
        if text.contains("xen_pool_up{pool=\"demo\"} 1") && reachable == 3 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the exporter never saw the whole pool:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let hosts: Vec<Value> = serde_json::from_str(&get(format!("{control}/hosts")).await).unwrap();
    let host2 = hosts.iter().find(|h| h["name"] == "host2").unwrap()["uuid"]
        .as_str()
        .unwrap()
        .to_owned();
    let before: Vec<String> = running_on(&get(format!("{control}/truth")).await)
        .into_iter()
        .filter(|(_, on)| on.contains(&host2))
        .map(|(vm, _)| vm)
        .collect();
    assert_eq!(before.len(), 2, "host2 runs two guests");
    let max_double = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (http, url, max) = (http.clone(), format!("{control}/truth"), max_double.clone());
        tokio::spawn(async move {
            loop {
                if let Ok(r) = http.get(&url).send().await
                    && let Ok(truth) = r.json::<Value>().await
                {
                    let now = truth["double_running_vms"].as_u64().unwrap_or(0) as usize;
                    max.fetch_max(now, Ordering::SeqCst);
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    let killed = Instant::now();
    let response = http
        .post(format!("{control}/hosts/host2/power"))
        .json(&json!({"state": "off"}))
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success());
    // The alert needs 15 s of stuck VMs, the confirmation a few seconds more.
    let deadline = Instant::now() + Duration::from_secs(120);
    let remediation = loop {
        let list: Vec<Value> =
            serde_json::from_str(&get(format!("{receiver}/remediations")).await).unwrap();
        let finished = list.iter().find(|r| {
            ["done", "failed", "blocked", "aborted"].contains(&r["phase"].as_str().unwrap_or(""))
        });
        if let Some(r) = finished {
            break r.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no remediation finished within 120 s: {list:#?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let elapsed = killed.elapsed();
    let id = remediation["id"].as_i64().unwrap();
    let shown: Value =
        serde_json::from_str(&get(format!("{receiver}/remediations/{id}")).await).unwrap();
    assert_eq!(remediation["phase"], "done", "{shown:#}");
    assert_eq!(remediation["host_uuid"], host2.as_str());
    let steps: Vec<&str> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .filter(|k| !["phase", "ignored"].contains(k))
        .collect();
    assert_eq!(
        steps,
        [
            "planned",
            "confirm",
            "fence",
            "reset_vms",
            "release_locks",
            "clear_affinity",
            "start_vms",
            "verify"
        ],
        "{shown:#}"
    );
    let fence = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "fence")
        .unwrap();
    assert_eq!(fence["detail"]["fenced_at_level"], 1, "{fence:#}");
    let agent = &fence["detail"]["levels"][0]["agents"][0];
    assert!(
        agent["agent"].as_str().unwrap().ends_with(AGENT_NAME),
        "{fence:#}"
    );
    let last_run = agent["runs"].as_array().unwrap().last().unwrap();
    assert_eq!(
        (&last_run["action"], &last_run["exit_code"]),
        (&json!("status"), &json!(2)),
        "the power-off was read back: {fence:#}"
    );
    let truth_text = get(format!("{control}/truth")).await;
    let truth = running_on(&truth_text);
    for vm in &before {
        assert_eq!(truth[vm].len(), 1, "{vm}: {truth_text}");
        assert_ne!(truth[vm][0], host2, "{vm}: {truth_text}");
    }
    assert!(
        truth_text.contains("\"double_running_vms\":0"),
        "{truth_text}"
    );
    watcher.abort();
    assert_eq!(max_double.load(Ordering::SeqCst), 0, "a VM ran twice");
    let page = get(format!("http://{}/", demo.page_addr())).await;
    assert!(
        page.contains("<td class=\"ok\">done</td>") && page.contains("<td class=\"bad\">off</td>"),
        "{page}"
    );
    let listed = tokio::process::Command::new(XENGUARD)
        .args(["journal", "list", "--config", &config])
        .output()
        .await
        .unwrap();
    let listed_text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && listed_text.contains("done") && listed_text.contains(&host2),
        "the printed journal command works: {listed_text}{}",
        String::from_utf8_lossy(&listed.stderr)
    );
    eprintln!("host2 killed -> remediation done in {elapsed:.1?} (alert for: 15 s)");
    let dir = demo.dir().to_owned();
    demo.shutdown();
    assert!(!dir.exists(), "{} is removed", dir.display());
}

const BMC_SECRET: &str = "never-print-me-91f2";

/// `fence_xenguard_sim` through the receiver's own [`FenceAgent`]: status 0 = on, 2 = off, 1 =
/// error; off and on change the simulator's power; the password is never echoed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_sim_speaks_the_fence_agent_contract() {
    let sim = common::start_sim(3, 1).await;
    let control = common::control_url(&sim);
    let dir = tempfile::tempdir().unwrap();
    let link = dir.path().join(AGENT_NAME);
    std::os::unix::fs::symlink(XENGUARD, &link).unwrap();
    let agent = |host: &str, control: &str| FenceAgent {
        program: link.display().to_string(),
        args: [
            ("control".to_owned(), control.to_owned()),
            ("host".to_owned(), host.to_owned()),
            ("ipaddr".to_owned(), "10.0.0.9".to_owned()),
        ]
        .into(),
        password: Some(BMC_SECRET.into()),
        timeout: Duration::from_secs(20),
    };
    let powered = |name: &str| {
        sim.with_model(|m, _| {
            let i = m.find_host(name).unwrap();
            m.hosts[i].power_on
        })
    };
    let mut runs = Vec::new();
    let host2 = agent("host2", &control);

    let (power, run) = host2.status().await.unwrap();
    assert_eq!((power, run.stdout.trim()), (Power::On, "Status: ON"));
    runs.push(run);
    let off = host2
        .power_off_confirmed(3, Duration::from_millis(100))
        .await
        .unwrap();
    assert_eq!(off[0].stdout.trim(), "Success: Powered OFF", "{off:?}");
    assert_eq!(off.last().unwrap().exit_code, Some(2));
    assert!(!powered("host2"));
    runs.extend(off);
    let again = host2.run("off").await.unwrap();
    assert_eq!(
        (again.exit_code, again.stdout.trim()),
        (Some(0), "Success: Already OFF")
    );
    runs.push(again);
    let on = host2.run("on").await.unwrap();
    assert_eq!(
        (on.exit_code, on.stdout.trim()),
        (Some(0), "Success: Powered ON")
    );
    assert!(powered("host2"));
    runs.push(on);
    let (power, run) = host2.status().await.unwrap();
    assert_eq!(power, Power::On);
    runs.push(run);

    // A host named by its uuid.
    let uuid = sim.with_model(|m, _| m.hosts[2].uuid.clone());
    let (power, run) = agent(&uuid, &control).status().await.unwrap();
    assert_eq!(power, Power::On);
    runs.push(run);

    // Errors: exit 1 and a reason on stderr.
    let unknown = agent("host9", &control).run("status").await.unwrap();
    assert_eq!(unknown.exit_code, Some(1), "{unknown:?}");
    assert!(unknown.stderr.contains("no host \"host9\""), "{unknown:?}");
    assert!(agent("host9", &control).status().await.is_err());
    runs.push(unknown);
    let closed = format!("http://127.0.0.1:{}", common::free_port());
    let unreachable = agent("host2", &closed).run("off").await.unwrap();
    assert_eq!(unreachable.exit_code, Some(1), "{unreachable:?}");
    assert!(
        unreachable.stderr.contains("control API"),
        "{unreachable:?}"
    );
    assert!(powered("host2"));
    runs.push(unreachable);
    let reboot = host2.run("reboot").await.unwrap();
    assert_eq!(reboot.exit_code, Some(1));
    assert!(reboot.stderr.contains("unsupported action"), "{reboot:?}");
    runs.push(reboot);

    for run in &runs {
        assert!(
            !run.stdout.contains(BMC_SECRET) && !run.stderr.contains(BMC_SECRET),
            "{run:?}"
        );
    }

    // The hidden subcommand itself, as documented.
    let mut child = tokio::process::Command::new(XENGUARD)
        .arg("fence-sim")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt as _;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(format!("control={control}\nhost=host1\naction=status\n").as_bytes())
            .await
            .unwrap();
    }
    let output = child.wait_with_output().await.unwrap();
    assert_eq!(
        (
            output.status.code(),
            String::from_utf8_lossy(&output.stdout).trim()
        ),
        (Some(0), "Status: ON"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    sim.shutdown();
}

/// Guest uuid -> host uuids it really runs on, from a `GET /truth` body.
fn running_on(truth: &str) -> BTreeMap<String, Vec<String>> {
    let truth: Value = serde_json::from_str(truth).unwrap();
    truth["vms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|vm| {
            let on = vm["running_on"]
                .as_array()
                .unwrap()
                .iter()
                .map(|h| h.as_str().unwrap().to_owned())
                .collect();
            (vm["uuid"].as_str().unwrap().to_owned(), on)
        })
        .collect()
}

/// A minimal HTTP/1.0 GET, so the test needs no client runtime.
fn http_get(address: &str, path: &str) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(address)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {address}\r\n\r\n")?;
    let mut body = String::new();
    stream.read_to_string(&mut body)?;
    Ok(body)
}

/// Log lines on a pipe carry no colour codes, and `--log-format` gives logfmt or JSON lines.
#[test]
fn log_lines_are_plain_on_a_pipe_and_logfmt_or_json_on_request() {
    use std::io::BufRead;
    // A scenario step at 0 s: the simulator logs it at once.
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("scenario.yml");
    std::fs::write(&scenario, "steps:\n  - {at: 0, ha: true}\n").unwrap();
    for format in ["text", "logfmt", "json"] {
        let mut child = Command::new(XENGUARD)
            .args(["--log-format", format, "sim", "--hosts", "1", "--port", "0"])
            .args([
                "--control",
                "127.0.0.1:0",
                "--timing",
                "instant",
                "--scenario",
            ])
            .arg(&scenario)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("xenguard sim starts");
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        stderr.read_line(&mut line).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert!(
            !line.contains('\u{1b}'),
            "{format}: colour codes in {line:?}"
        );
        match format {
            "text" => assert!(line.contains("INFO"), "{line}"),
            "logfmt" => assert!(line.contains("level=info"), "{line}"),
            _ => {
                let parsed: Value =
                    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                assert_eq!(parsed["level"], "INFO", "{line}");
            }
        }
    }
}
