//! Conformance of the XAPI simulator with real clients (architecture.md §4): the official
//! Python SDK (PyPI `XenAPI` 26.21.1 in `.venv`, script `tests/python/conformance.py`) and
//! Debian's `fence_xenapi` (architecture.md §10.4). Neither is optional: a missing interpreter,
//! SDK or agent fails the test with what to install (`scripts/setup.sh`).
//!
//! Bare § numbers cite xapi-notes.md (the XAPI behaviour each check reproduces).
//!
//! The Python script prints `ok <check>` per check and `FAIL <check>: …` on the first failure;
//! at `ready-for-restart` / `ready-for-poweroff` it waits while this side changes the pool
//! through the control API, then reads `continue`. Every test ends by asserting the ground
//! truth: no VM runs on two hosts at once.

use crate::common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::time::{Instant, timeout, timeout_at};
use xenguard::sim::RunningSim;

/// A hung client fails its test within this.
const SCRIPT_DEADLINE: Duration = Duration::from_secs(60);
/// One fence_xenapi run.
const FENCE_DEADLINE: Duration = Duration::from_secs(30);
/// Debian's fence agent and the interpreter its package runs it with.
const FENCE_XENAPI: &str = "/usr/sbin/fence_xenapi";
const DEBIAN_PYTHON: &str = "/usr/bin/python3";
const PASSWORD: &str = "xenguard";

/// Checks of `conformance.py protocol`, in order.
const PROTOCOL_CHECKS: &[&str] = &[
    "login_with_password",
    "api_version",
    "login_bad_password",
    "login_on_slave",
    "slave_rejects_pool_session",
    "slave_local_login_with_password",
    "is_in_emergency_mode",
    "local_logout",
    "slave_local_login_bad_password",
    "host_get_all_records",
    "host_metrics_get_all_records",
    "vm_get_all_records",
    "vm_get_all_records_where",
    "records_where_bad_expression",
    "pool_get_master",
    "handle_invalid",
    "uuid_invalid",
    "parameter_count_mismatch",
    "method_unknown",
    "session_invalid",
    "event_from_initial",
    "valid_ref_counts",
    "event_from_timeout",
    "event_from_class_case",
    "event_from_bad_token",
    "logout",
];

/// Checks of `conformance.py relogin`, in order.
const RELOGIN_CHECKS: &[&str] = &["relogin_login", "relogin_after_restart"];

/// Checks of `conformance.py recovery`, in order.
const RECOVERY_CHECKS: &[&str] = &[
    "recovery_setup",
    "vdi_attach_tag",
    "power_state_reset_control_domain",
    "power_state_reset_live_host",
    "start_running_vm",
    "slave_not_live",
    "power_state_reset",
    "power_state_reset_event",
    "start_sr_backend_failure_46",
    "remove_from_sm_config",
    "start_after_tag_removed",
];

// ---------------------------------------------------------------------------------------------
// Locating the real clients
// ---------------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The interpreter with the XenAPI SDK: `$XENGUARD_PYTHON`, else `<repo>/.venv/bin/python`.
/// Fails (never skips) when it is missing or cannot import XenAPI.
async fn sdk_python() -> PathBuf {
    let (python, origin) = match std::env::var_os("XENGUARD_PYTHON") {
        Some(p) if !p.is_empty() => (PathBuf::from(p), "XENGUARD_PYTHON"),
        _ => (
            repo().join(".venv/bin/python"),
            "the default <repo>/.venv/bin/python",
        ),
    };
    assert!(
        python.exists(),
        "XAPI conformance needs the Python XenAPI SDK, but the interpreter {} ({origin}) does \
         not exist. Run scripts/setup.sh (it builds .venv with XenAPI 26.21.1) or point \
         XENGUARD_PYTHON at a Python that has the XenAPI package.",
        python.display()
    );
    let probe = Command::new(&python)
        .args([
            "-c",
            "import XenAPI, importlib.metadata as m; print(m.version('XenAPI'))",
        ])
        .output();
    let output = timeout(Duration::from_secs(30), probe)
        .await
        .unwrap_or_else(|_| panic!("{} -c 'import XenAPI' hung for 30 s", python.display()))
        .unwrap_or_else(|e| panic!("cannot run the interpreter {}: {e}", python.display()));
    assert!(
        output.status.success(),
        "The interpreter {} ({origin}) cannot import the XenAPI SDK ({}): {}\nRun \
         scripts/setup.sh, which installs XenAPI 26.21.1 into .venv, or set XENGUARD_PYTHON.",
        python.display(),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    );
    eprintln!(
        "using {} with XenAPI {}",
        python.display(),
        String::from_utf8_lossy(&output.stdout).trim()
    );
    python
}

/// Debian's fence_xenapi and /usr/bin/python3; fails when either is missing.
fn fence_agent() -> (PathBuf, PathBuf) {
    let (python, agent) = (PathBuf::from(DEBIAN_PYTHON), PathBuf::from(FENCE_XENAPI));
    assert!(
        agent.exists(),
        "{FENCE_XENAPI} is missing: install Debian's fence-agents package (scripts/setup.sh does)"
    );
    assert!(
        python.exists(),
        "{DEBIAN_PYTHON} is missing: fence_xenapi runs on Debian's python3 (scripts/setup.sh)"
    );
    (python, agent)
}

/// Child processes must reach loopback directly.
fn no_proxy(cmd: &mut Command) -> &mut Command {
    for var in [
        "http_proxy",
        "HTTP_PROXY",
        "https_proxy",
        "HTTPS_PROXY",
        "all_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("PYTHONWARNINGS", "ignore")
}

// ---------------------------------------------------------------------------------------------
// Control API
// ---------------------------------------------------------------------------------------------

struct Control {
    client: reqwest::Client,
    base: String,
}

impl Control {
    fn new(sim: &RunningSim) -> Control {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("HTTP client");
        Control {
            client,
            base: common::control_url(sim),
        }
    }

    async fn get(&self, path: &str) -> Value {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status();
        let body = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "GET {path}: HTTP {status}: {body}");
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("GET {path}: {e}: {body}"))
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .json(&body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path} {body}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(
            status.is_success(),
            "POST {path} {body}: HTTP {status}: {text}"
        );
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("POST {path}: {e}: {text}"))
    }

    /// `GET /hosts` entry of one host (by name label).
    async fn host(&self, name: &str) -> Value {
        let hosts = self.get("/hosts").await;
        hosts
            .as_array()
            .and_then(|hs| hs.iter().find(|h| h["name"] == name))
            .cloned()
            .unwrap_or_else(|| panic!("no host {name} in GET /hosts: {hosts}"))
    }

    async fn truth(&self) -> Value {
        self.get("/truth").await
    }

    /// The data-corruption count every test asserts is zero.
    async fn assert_no_double_running(&self) {
        let truth = self.truth().await;
        assert_eq!(
            truth["double_running_vms"],
            json!(0),
            "ground truth: VMs running on more than one host: {truth}"
        );
    }
}

fn urls(sim: &RunningSim) -> (String, String) {
    let addresses = sim.host_addresses();
    assert!(addresses.len() >= 2, "need a master and a slave");
    let url = |a: &str| format!("http://{a}:{}/", sim.port());
    (url(&addresses[0]), url(&addresses[1]))
}

/// Waits until a TCP connect to `addr` succeeds (`open`) or is refused (`!open`).
async fn wait_for_port(addr: &str, open: bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let connected = matches!(
            timeout(
                Duration::from_millis(500),
                tokio::net::TcpStream::connect(addr)
            )
            .await,
            Ok(Ok(_))
        );
        if connected == open {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{addr} still {} after 5 s",
            if open {
                "refuses connections"
            } else {
                "accepts connections"
            }
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Running the SDK script
// ---------------------------------------------------------------------------------------------

/// What the script printed.
#[derive(Debug, Default)]
struct Transcript {
    /// Names of the passed checks, in order.
    oks: Vec<String>,
    /// `info <key> <value>` lines.
    infos: HashMap<String, String>,
    /// Every stdout line.
    lines: Vec<String>,
}

impl Transcript {
    fn info(&self, key: &str) -> &str {
        self.infos
            .get(key)
            .unwrap_or_else(|| panic!("the script printed no `info {key}`:\n{self:#?}"))
    }
}

/// The pool changes the script asks for between its phases.
async fn on_marker(marker: &str, sim: &RunningSim, control: &Control) {
    let addresses = sim.host_addresses();
    match marker {
        // xapi-notes.md §2.4: a master xapi restart loses every session.
        "ready-for-restart" => {
            let host1 = control.host("host1").await;
            assert_eq!(host1["role"], "master", "{host1}");
            control
                .post("/hosts/host1/xapi", json!({"running": false}))
                .await;
            let master = format!("{}:{}", addresses[0], sim.port());
            wait_for_port(&master, false).await;
            control
                .post("/hosts/host1/xapi", json!({"running": true}))
                .await;
            wait_for_port(&master, true).await;
            let host1 = control.host("host1").await;
            assert_eq!(
                (&host1["xapi"], &host1["role"]),
                (&json!("running"), &json!("master")),
                "{host1}"
            );
        }
        // xapi-notes.md §4.1: the slave's power is cut; 601 s later the master has marked it dead.
        "ready-for-poweroff" => {
            let host2 = control.host("host2").await;
            assert_eq!(host2["address"], addresses[1].as_str(), "{host2}");
            control
                .post("/hosts/host2/power", json!({"state": "off"}))
                .await;
            control
                .post("/clock/advance", json!({"seconds": 601}))
                .await;
            let host2 = control.host("host2").await;
            assert_eq!(host2["power"], "off", "{host2}");
        }
        other => panic!("unknown marker {other:?}"),
    }
}

fn kill(child: &mut Child) {
    let _ = child.start_kill();
}

/// Runs `conformance.py <master> <slave> <scenario>` against `sim`, answering its markers;
/// fails on a FAIL line, a non-zero exit, or a hang past [`SCRIPT_DEADLINE`].
async fn run_script(sim: &RunningSim, control: &Control, scenario: &str) -> Transcript {
    let python = sdk_python().await;
    let script = repo().join("tests/python/conformance.py");
    assert!(script.exists(), "{} is missing", script.display());
    let (master_url, slave_url) = urls(sim);
    let mut cmd = Command::new(&python);
    no_proxy(&mut cmd)
        .arg("-u")
        .arg(&script)
        .args([&master_url, &slave_url, scenario])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    let mut stdin = child.stdin.take().expect("stdin");
    let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut stderr = child.stderr.take().expect("stderr");
    let stderr_task = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let deadline = Instant::now() + SCRIPT_DEADLINE;
    let mut transcript = Transcript::default();
    let mut failure = None;
    loop {
        let line = match timeout_at(deadline, stdout.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => break,
            Ok(Err(e)) => {
                failure = Some(format!("reading the script's output: {e}"));
                break;
            }
            Err(_) => {
                failure = Some(format!(
                    "the script printed nothing for the rest of its {} s deadline (hung)",
                    SCRIPT_DEADLINE.as_secs()
                ));
                break;
            }
        };
        transcript.lines.push(line.clone());
        if let Some(name) = line.strip_prefix("ok ") {
            transcript.oks.push(name.to_owned());
        } else if let Some(rest) = line.strip_prefix("info ") {
            let (key, value) = rest.split_once(' ').unwrap_or((rest, ""));
            transcript.infos.insert(key.to_owned(), value.to_owned());
        } else if line.starts_with("FAIL ") {
            failure = Some(line.clone());
        } else if line.starts_with("ready-for-") {
            on_marker(&line, sim, control).await;
            let answered = async {
                stdin.write_all(b"continue\n").await?;
                stdin.flush().await
            }
            .await;
            if let Err(e) = answered {
                failure.get_or_insert(format!("answering {line:?} on the script's stdin: {e}"));
            }
        }
    }
    let status = match timeout_at(deadline, child.wait()).await {
        Ok(Ok(status)) => Some(status),
        Ok(Err(e)) => {
            failure.get_or_insert(format!("waiting for the script: {e}"));
            None
        }
        Err(_) => {
            failure.get_or_insert("the script did not exit before its deadline".into());
            None
        }
    };
    if status.is_none() {
        kill(&mut child);
    }
    drop(stdin);
    let stderr = timeout(Duration::from_secs(5), stderr_task)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    if failure.is_none() && !status.is_some_and(|s| s.success()) {
        failure = Some(format!("the script exited with {status:?}"));
    }
    if let Some(failure) = failure {
        panic!(
            "conformance.py {scenario} against {master_url} / {slave_url}: {failure}\n\
             --- stdout ---\n{}\n--- stderr ---\n{stderr}",
            transcript.lines.join("\n")
        );
    }
    assert_eq!(
        transcript.lines.last().map(String::as_str),
        Some(format!("done {scenario}").as_str()),
        "the script did not finish: {transcript:#?}"
    );
    transcript
}

fn assert_checks(transcript: &Transcript, expected: &[&[&str]]) {
    let expected: Vec<&str> = expected.iter().flat_map(|c| c.iter().copied()).collect();
    assert_eq!(
        transcript.oks,
        expected,
        "checks reported by the script:\n{}",
        transcript.lines.join("\n")
    );
}

/// The recovered guest really runs on exactly the host XAPI says, and nothing runs on the
/// powered-off slave.
async fn assert_recovery_truth(control: &Control, transcript: &Transcript) {
    let (vm, host, slave) = (
        transcript.info("recovery-vm"),
        transcript.info("recovery-host"),
        transcript.info("slave-uuid"),
    );
    let truth = control.truth().await;
    let vms = truth["vms"].as_array().expect("truth.vms");
    let entry = vms
        .iter()
        .find(|v| v["uuid"] == vm)
        .unwrap_or_else(|| panic!("VM {vm} not in the truth: {truth}"));
    assert_eq!(
        entry["running_on"],
        json!([host]),
        "where the recovered VM runs"
    );
    for v in vms {
        let on = v["running_on"].as_array().expect("running_on");
        assert!(
            !on.iter().any(|h| h == slave),
            "{v} runs on the powered-off slave"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Python SDK
// ---------------------------------------------------------------------------------------------

/// Sessions (§2), slave redirection, local login and emergency flag (§2.3, §3.3), records
/// (§4.2, §5.1, §5.2, §6.5b), failures as xapi sends them (§1.2, §9), and event.from (§7).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_speaks_the_xapi_protocol() {
    let sim = common::start_sim(3, 2).await;
    let control = Control::new(&sim);
    let transcript = run_script(&sim, &control, "protocol").await;
    assert_checks(&transcript, &[PROTOCOL_CHECKS]);
    let events: usize = transcript.info("event-count").parse().expect("event-count");
    // 1 pool + 3 hosts + 3 host_metrics + (3 templates + 3 control domains + 6 guests).
    assert_eq!(
        events,
        1 + 3 + 3 + 12,
        "objects in the first event.from batch"
    );
    control.assert_no_double_running().await;
    sim.shutdown();
}

/// §1.5 / §2.4: the master's xapi restarts between two calls on one Session; the SDK gets
/// SESSION_INVALID, logs in again by itself and the call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_logs_in_again_after_the_master_xapi_restarts() {
    let sim = common::start_sim(3, 2).await;
    let control = Control::new(&sim);
    let transcript = run_script(&sim, &control, "relogin").await;
    assert_checks(&transcript, &[RELOGIN_CHECKS]);
    control.assert_no_double_running().await;
    sim.shutdown();
}

/// §4.1, §5.3, §6.6, §10: a powered-off slave is marked dead after 600 s; its guest is reset,
/// cannot start while the dead host's VDI tag remains (SR_BACKEND_FAILURE_46), and starts
/// elsewhere once the tag is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_recovers_a_dead_slaves_guest() {
    let sim = common::start_sim(3, 2).await;
    let control = Control::new(&sim);
    let transcript = run_script(&sim, &control, "recovery").await;
    assert_checks(&transcript, &[RECOVERY_CHECKS]);
    assert_recovery_truth(&control, &transcript).await;
    control.assert_no_double_running().await;
    sim.shutdown();
}

/// The default scenario: all three parts on one pool, in one process.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_sdk_all_scenarios_in_sequence() {
    let sim = common::start_sim(3, 2).await;
    let control = Control::new(&sim);
    let transcript = run_script(&sim, &control, "all").await;
    assert_checks(
        &transcript,
        &[PROTOCOL_CHECKS, RELOGIN_CHECKS, RECOVERY_CHECKS],
    );
    assert_recovery_truth(&control, &transcript).await;
    control.assert_no_double_running().await;
    sim.shutdown();
}

// ---------------------------------------------------------------------------------------------
// fence_xenapi
// ---------------------------------------------------------------------------------------------

/// Exit code and stdout + stderr of one fence_xenapi run.
async fn fence(url: &str, password: &str, args: &[&str]) -> (i32, String) {
    let (python, agent) = fence_agent();
    let mut cmd = Command::new(&python);
    no_proxy(&mut cmd)
        .arg(&agent)
        .args(["-s", url, "-l", "root", "-p", password])
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let output = timeout(FENCE_DEADLINE, cmd.output())
        .await
        .unwrap_or_else(|_| {
            panic!(
                "fence_xenapi -s {url} {} hung for {} s",
                args.join(" "),
                FENCE_DEADLINE.as_secs()
            )
        })
        .unwrap_or_else(|e| panic!("cannot run {} {}: {e}", python.display(), agent.display()));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let code = output
        .status
        .code()
        .unwrap_or_else(|| panic!("fence_xenapi killed by a signal: {text}"));
    (code, text)
}

/// Hosts (uuids) where the ground truth says guest `name` runs.
async fn running_on(control: &Control, name: &str) -> Vec<Value> {
    let truth = control.truth().await;
    truth["vms"]
        .as_array()
        .and_then(|vms| vms.iter().find(|v| v["name"] == name))
        .and_then(|v| v["running_on"].as_array().cloned())
        .unwrap_or_else(|| panic!("guest {name} not in the truth: {truth}"))
}

/// architecture.md §10.4: list, status (0 = on, 2 = off), off, on; a bad password, an
/// unknown VM and a slave's URL all exit 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fence_xenapi_fences_guests() {
    fence_agent();
    let sim = common::start_sim(3, 2).await;
    let control = Control::new(&sim);
    let addresses = sim.host_addresses();
    let url = format!("http://{}:{}", addresses[0], sim.port());
    let slave_url = format!("http://{}:{}", addresses[1], sim.port());

    // The guests and where they run, from the ground truth.
    let truth = control.truth().await;
    let guests: Vec<(String, String)> = truth["vms"]
        .as_array()
        .expect("truth.vms")
        .iter()
        .map(|v| {
            (
                v["uuid"].as_str().unwrap().to_owned(),
                v["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(guests.len(), 6, "3 hosts x 2 guests: {truth}");
    let host2 = control.host("host2").await;
    let name = truth["vms"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["running_on"] == json!([host2["uuid"]]))
        .and_then(|v| v["name"].as_str())
        .unwrap_or_else(|| panic!("no guest on host2: {truth}"))
        .to_owned();

    // -o list: `uuid,name` of every guest; no templates, no control domains.
    let (code, out) = fence(&url, PASSWORD, &["-o", "list"]).await;
    assert_eq!(code, 0, "list: {out}");
    let mut listed: Vec<(String, String)> = out
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (uuid, name) = l
                .split_once(',')
                .unwrap_or_else(|| panic!("list line {l:?} in {out}"));
            (uuid.to_owned(), name.to_owned())
        })
        .collect();
    listed.sort();
    let mut expected = guests.clone();
    expected.sort();
    assert_eq!(listed, expected, "fence_xenapi -o list");

    // status of a running guest: ON, exit 0.
    let (code, out) = fence(&url, PASSWORD, &["-n", &name, "-o", "status"]).await;
    assert_eq!(
        (code, out.contains("Status: ON")),
        (0, true),
        "status: {out}"
    );

    // off (VM.hard_shutdown): the domain really stops; status OFF, exit 2.
    let (code, out) = fence(&url, PASSWORD, &["-n", &name, "-o", "off"]).await;
    assert_eq!(
        (code, out.contains("Success: Powered OFF")),
        (0, true),
        "off: {out}"
    );
    assert_eq!(
        running_on(&control, &name).await,
        Vec::<Value>::new(),
        "truth after off"
    );
    let (code, out) = fence(&url, PASSWORD, &["-n", &name, "-o", "status"]).await;
    assert_eq!(
        (code, out.contains("Status: OFF")),
        (2, true),
        "status after off: {out}"
    );

    // on (VM.start(vm, false, true)): runs on exactly one host; status ON, exit 0.
    let (code, out) = fence(&url, PASSWORD, &["-n", &name, "-o", "on"]).await;
    assert_eq!(
        (code, out.contains("Success: Powered ON")),
        (0, true),
        "on: {out}"
    );
    assert_eq!(running_on(&control, &name).await.len(), 1, "truth after on");
    let (code, out) = fence(&url, PASSWORD, &["-n", &name, "-o", "status"]).await;
    assert_eq!(
        (code, out.contains("Status: ON")),
        (0, true),
        "status after on: {out}"
    );

    // Bad password: SESSION_AUTHENTICATION_FAILED (xapi-notes.md §2.1), exit 1.
    let (code, out) = fence(&url, "wrong-password", &["-n", &name, "-o", "status"]).await;
    assert_eq!(code, 1, "bad password: {out}");
    assert!(out.contains("SESSION_AUTHENTICATION_FAILED"), "{out}");

    // Unknown VM: VM.get_by_name_label returns nothing -> NAME_INVALID, exit 1.
    let (code, out) = fence(&url, PASSWORD, &["-n", "no-such-vm", "-o", "status"]).await;
    assert_eq!(code, 1, "unknown VM: {out}");
    assert!(out.contains("NAME_INVALID"), "{out}");

    // Pointed at a slave: login answers HOST_IS_SLAVE [master] (xapi-notes.md §2.1), exit 1.
    let (code, out) = fence(&slave_url, PASSWORD, &["-n", &name, "-o", "status"]).await;
    assert_eq!(code, 1, "slave URL: {out}");
    assert!(
        out.contains("HOST_IS_SLAVE") && out.contains(addresses[0].as_str()),
        "{out}"
    );

    control.assert_no_double_running().await;
    sim.shutdown();
}
