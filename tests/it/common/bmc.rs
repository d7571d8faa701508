//! A real BMC for every simulated host: one `ipmi_sim` (Debian openipmi) per host, whose
//! `chassis_control` hook reads and changes the host's power through the simulator's control
//! API. `fence_ipmilan` (Debian fence-agents) against such a BMC powers the simulated host off,
//! and its `status` reads the simulator's ground truth.
//!
//! Every hook run appends one line to the host's power log (`get power`, `set power 0`, …,
//! with ` FAILED: reason` added when the control API did not answer as expected), so tests can
//! assert on what the BMCs were asked to do.
//!
//! The hook talks to the control API over HTTP, so a power read or change only completes while
//! the simulator's runtime is free to answer: run agents with `tokio::process` (as
//! [`FenceAgent`] does), never with a blocking `std::process` call from the runtime's thread.

use std::collections::{BTreeMap, HashSet};
use std::fs::File;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use xenguard::remediation::fence::FenceAgent;
use xenguard::sim::RunningSim;

/// User name every simulated BMC accepts (with administrator rights).
pub const BMC_USER: &str = "admin";
/// That user's password, also the content of [`Bmcs::password_file`].
pub const BMC_PASSWORD: &str = "Bmc-s3cret-7f3a";
/// `fencing.agent_timeout_seconds` of [`Bmcs::fencing_yaml`] and the timeout of [`Bmcs::agent`].
pub const AGENT_TIMEOUT_SECONDS: u64 = 30;

/// Longest wait for one `ipmi_sim` to answer after it is started.
const READY_WITHIN: Duration = Duration::from_secs(10);
/// Ports tried per BMC when the chosen one turns out to be taken.
const PORT_ATTEMPTS: usize = 3;

/// The `chassis_control` hook. ipmi_sim runs it through `sh -c` as
/// `HOOK get NAME...` (answer one `NAME:VALUE` line per name) and `HOOK set NAME VALUE...`
/// (answer with exit 0); the first three arguments are baked into the command line.
const HOOK: &str = r#"# chassis_control hook of one simulated BMC, written by tests/common/bmc.rs.
# Usage: hook.py CONTROL_URL HOST_NAME DEVICE LOG_FILE (get NAME... | set NAME VALUE... | check)
# DEVICE `chassis`: the host's power, read from GET /hosts, changed with POST /hosts/HOST/power.
# DEVICE `feed1` / `feed2`: a PDU outlet feeding one of the host's two power supplies, read
# from GET /hosts (`feeds`), switched with POST /hosts/HOST/feeds/N.
# Any failure exits 1, so the BMC reports an error instead of inventing a power state.
import json
import sys
import urllib.request

CONTROL, HOST, DEVICE, LOG = sys.argv[1:5]
OP, ARGS = sys.argv[5], sys.argv[6:]
# Loopback only: never through a proxy named in the environment.
HTTP = urllib.request.build_opener(urllib.request.ProxyHandler({}))
TIMEOUT = 5


def powered_on():
    with HTTP.open(CONTROL + "/hosts", timeout=TIMEOUT) as answer:
        hosts = json.load(answer)
    for host in hosts:
        if host["name"] == HOST:
            if DEVICE == "chassis":
                return {"on": True, "off": False}[host["power"]]
            return bool(host["feeds"][int(DEVICE[len("feed"):]) - 1])
    raise LookupError("the simulator has no host " + HOST)


def set_power(body):
    if DEVICE == "chassis":
        path = "/hosts/" + HOST + "/power"
    else:
        path = "/hosts/" + HOST + "/feeds/" + DEVICE[len("feed"):]
        body = {"on": body["state"] == "on"}
    request = urllib.request.Request(
        CONTROL + path,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with HTTP.open(request, timeout=TIMEOUT) as answer:
        answer.read()


def run():
    if OP == "get":
        for name in ARGS:
            value = int(powered_on()) if name == "power" else 0
            sys.stdout.write("%s:%d\n" % (name, value))
    elif OP == "set":
        for name, value in zip(ARGS[0::2], ARGS[1::2]):
            if name == "power":
                set_power({"state": "on" if value == "1" else "off"})
            elif name == "reset" and value == "1" and powered_on():
                # A hard reset: whatever ran on the host is gone, and it boots again.
                set_power({"state": "off"})
                set_power({"state": "on"})
            elif name == "shutdown" and value == "1" and DEVICE == "chassis":
                set_power({"state": "off", "graceful": True})
    # `check` and anything else: nothing to do.


line = " ".join([OP] + ARGS)
try:
    run()
except Exception as error:
    line += " FAILED: " + str(error).replace("\n", " ")
    sys.exit(1)
finally:
    with open(LOG, "a") as log:
        log.write(line + "\n")
"#;

/// The BMC firmware description: one management controller, no sensors.
const EMU: &str = "mc_setbmc 0x20\n\
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\n\
sel_enable 0x20 1000 0x0a\n\
mc_enable 0x20\n";

/// Ports handed to a BMC by this process, never handed out twice.
static TAKEN_PORTS: Mutex<Option<HashSet<u16>>> = Mutex::new(None);

/// One host's BMC, or one of the PDU outlets feeding it.
struct Bmc {
    host: String,
    /// `chassis` (the host's BMC) or `feed1` / `feed2` (an outlet feeding a power supply).
    device: String,
    /// The host's uuid: the key of its fencing entry.
    uuid: String,
    port: u16,
    log: PathBuf,
    /// `None` once stopped.
    child: Option<Child>,
}

impl Bmc {
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Bmc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One `ipmi_sim` per simulated host, on its own UDP port on 127.0.0.1, user
/// [`BMC_USER`] / [`BMC_PASSWORD`]; lanplus needs cipher suite 3. Kills them all on drop.
pub struct Bmcs {
    /// Host order of the simulator, outlets after; each killed when dropped (also if `start`
    /// panics midway).
    bmcs: Vec<Bmc>,
    password_file: PathBuf,
    /// How a device's hook is run: the interpreter, the hook, the control API.
    hook: (String, PathBuf, String),
    emu: PathBuf,
    // Last: removed after the BMCs are killed.
    dir: tempfile::TempDir,
}

impl Bmcs {
    /// Starts a BMC for every host of `sim` (keyed by name label: `host1`, `host2`, …) and
    /// returns once each one answers on its port. Panics if one does not within 10 s.
    ///
    /// Readiness is an RMCP presence ping, which does not run the hook: the power logs start
    /// empty.
    pub fn start(sim: &RunningSim) -> Bmcs {
        let dir = tempfile::tempdir().unwrap();
        let control = format!("http://{}", sim.control_addr());
        let hook = dir.path().join("chassis_hook.py");
        std::fs::write(&hook, HOOK).unwrap();
        let password_file = dir.path().join("bmc.password");
        std::fs::write(&password_file, format!("{BMC_PASSWORD}\n")).unwrap();
        let emu = dir.path().join("bmc.emu");
        std::fs::write(&emu, EMU).unwrap();
        let python = if Path::new("/usr/bin/python3").exists() {
            "/usr/bin/python3"
        } else {
            "python3"
        };
        let names: Vec<(String, String)> = sim.with_model(|m, _| {
            m.hosts
                .iter()
                .map(|h| (h.name.clone(), h.uuid.clone()))
                .collect()
        });
        let mut bmcs = Bmcs {
            bmcs: Vec::new(),
            password_file,
            hook: (python.to_owned(), hook, control),
            emu,
            dir,
        };
        for (host, uuid) in names {
            bmcs.spawn(&host, &uuid, "chassis");
        }
        bmcs
    }

    /// Starts one device's `ipmi_sim` and keeps it.
    fn spawn(&mut self, host: &str, uuid: &str, device: &str) {
        let name = if device == "chassis" {
            host.to_owned()
        } else {
            format!("{host}-{device}")
        };
        let log = self.dir.path().join(format!("{name}.power.log"));
        let (python, hook, control) = &self.hook;
        let hook_command = [
            python.as_str(),
            "-I",
            &shell_word(hook),
            control,
            host,
            device,
            &shell_word(&log),
        ]
        .join(" ");
        let (port, child) = spawn_answering(self.dir.path(), &name, &hook_command, &self.emu);
        self.bmcs.push(Bmc {
            host: host.to_owned(),
            device: device.to_owned(),
            uuid: uuid.to_owned(),
            port,
            log,
            child: Some(child),
        });
    }

    /// Starts the two PDU outlets feeding a host's power supplies, each a BMC of its own (an
    /// `ipmi_sim` whose power is that feed). [`Bmcs::fencing_yaml`] then gives the host two
    /// levels: its BMC, then both outlets.
    pub fn add_outlets(&mut self, host_name: &str) {
        let uuid = self.device(host_name, "chassis").uuid.clone();
        for feed in ["feed1", "feed2"] {
            self.spawn(host_name, &uuid, feed);
        }
    }

    fn device(&self, host_name: &str, device: &str) -> &Bmc {
        self.bmcs
            .iter()
            .find(|bmc| bmc.host == host_name && bmc.device == device)
            .unwrap_or_else(|| panic!("no {device} BMC for host {host_name:?}"))
    }

    fn bmc(&self, host_name: &str) -> &Bmc {
        self.device(host_name, "chassis")
    }

    fn has_outlets(&self, host_name: &str) -> bool {
        self.bmcs
            .iter()
            .any(|bmc| bmc.host == host_name && bmc.device != "chassis")
    }

    /// UDP port of a host's BMC on 127.0.0.1.
    pub fn port(&self, host_name: &str) -> u16 {
        self.bmc(host_name).port
    }

    /// File holding [`BMC_PASSWORD`].
    pub fn password_file(&self) -> &Path {
        &self.password_file
    }

    /// The `key=value` arguments of `fence_ipmilan` for a host's BMC (no password, no action).
    pub fn args(&self, host_name: &str) -> BTreeMap<String, String> {
        device_args(self.port(host_name))
    }

    /// [`Bmcs::args`] for one of a host's outlets (`feed` 1 or 2).
    pub fn outlet_args(&self, host_name: &str, feed: u8) -> BTreeMap<String, String> {
        device_args(self.device(host_name, &format!("feed{feed}")).port)
    }

    /// The hook runs of one of a host's outlets so far (see [`Bmcs::power_log`]).
    pub fn outlet_log(&self, host_name: &str, feed: u8) -> Vec<String> {
        read_log(&self.device(host_name, &format!("feed{feed}")).log)
    }

    /// Kills one of a host's outlets: from now on it does not answer.
    pub fn stop_outlet(&mut self, host_name: &str, feed: u8) {
        let device = format!("feed{feed}");
        self.bmcs
            .iter_mut()
            .find(|bmc| bmc.host == host_name && bmc.device == device)
            .unwrap_or_else(|| panic!("no {device} outlet for host {host_name:?}"))
            .kill();
    }

    /// A `fence_ipmilan` agent for a host's BMC, as xenguard would build it from
    /// [`Bmcs::fencing_yaml`].
    pub fn agent(&self, host_name: &str) -> FenceAgent {
        FenceAgent {
            program: fence_ipmilan(),
            args: self.args(host_name),
            password: Some(BMC_PASSWORD.into()),
            timeout: Duration::from_secs(AGENT_TIMEOUT_SECONDS),
        }
    }

    /// The `fencing:` section of a xenguard configuration with every host's BMC, for the pool
    /// named `pool` (append it to a configuration that has that pool).
    pub fn fencing_yaml(&self, pool: &str) -> String {
        let mut yaml =
            format!("fencing:\n  agent_timeout_seconds: {AGENT_TIMEOUT_SECONDS}\n  hosts:\n");
        let device = |args: BTreeMap<String, String>| {
            let args: Vec<String> = args
                .iter()
                .map(|(key, value)| format!("{key}: {}", quoted(value)))
                .collect();
            format!(
                "{{agent: {}, args: {{{}}}, password_file: {}}}",
                quoted(&fence_ipmilan()),
                args.join(", "),
                quoted(&self.password_file.display().to_string()),
            )
        };
        for bmc in self.bmcs.iter().filter(|bmc| bmc.device == "chassis") {
            let host = &bmc.host;
            yaml.push_str(&format!(
                "    - pool: {}\n      host: {}\n",
                quoted(pool),
                quoted(&bmc.uuid)
            ));
            if self.has_outlets(host) {
                yaml.push_str(&format!(
                    "      levels:\n        - agents: [{}]\n        - agents: [{}, {}]\n",
                    device(self.args(host)),
                    device(self.outlet_args(host, 1)),
                    device(self.outlet_args(host, 2)),
                ));
            } else {
                let args: Vec<String> = self
                    .args(host)
                    .iter()
                    .map(|(key, value)| format!("{key}: {}", quoted(value)))
                    .collect();
                yaml.push_str(&format!(
                    "      agent: {}\n      args: {{{}}}\n      password_file: {}\n",
                    quoted(&fence_ipmilan()),
                    args.join(", "),
                    quoted(&self.password_file.display().to_string()),
                ));
            }
        }
        yaml
    }

    /// The hook runs of a host's BMC so far, one line each: `get power`, `set power 0`, …
    /// (a failed run ends with ` FAILED: reason`).
    pub fn power_log(&self, host_name: &str) -> Vec<String> {
        read_log(&self.bmc(host_name).log)
    }

    /// Successful power-offs through a host's BMC (`set power 0` lines of its log).
    pub fn power_offs(&self, host_name: &str) -> usize {
        self.power_log(host_name)
            .iter()
            .filter(|line| line.as_str() == "set power 0")
            .count()
    }

    /// Power-offs of a host through both its outlets (the fewer `set power 0` of the two logs;
    /// 0 without outlets).
    pub fn outlet_power_offs(&self, host_name: &str) -> usize {
        if !self.has_outlets(host_name) {
            return 0;
        }
        let offs = |feed| {
            self.outlet_log(host_name, feed)
                .iter()
                .filter(|line| line.as_str() == "set power 0")
                .count()
        };
        offs(1).min(offs(2))
    }

    /// Kills a host's BMC: from now on it does not answer (its port stays reserved).
    pub fn stop(&mut self, host_name: &str) {
        self.bmcs
            .iter_mut()
            .find(|bmc| bmc.host == host_name && bmc.device == "chassis")
            .unwrap_or_else(|| panic!("no BMC for host {host_name:?}"))
            .kill();
    }

    /// The directory holding the hook, the logs and each BMC's configuration and state.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// The `key=value` arguments of `fence_ipmilan` for the BMC on UDP `port` of 127.0.0.1.
fn device_args(port: u16) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("ip".to_string(), "127.0.0.1".to_string()),
        ("ipport".to_string(), port.to_string()),
        ("username".to_string(), BMC_USER.to_string()),
        ("lanplus".to_string(), "1".to_string()),
        // Without it every lanplus call first waits about 10 s for the cipher suites.
        ("cipher".to_string(), "3".to_string()),
        // A BMC that does not answer fails after this many seconds instead of 20.
        ("power_timeout".to_string(), "4".to_string()),
    ])
}

fn read_log(path: &Path) -> Vec<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => text.lines().map(str::to_owned).collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => panic!("cannot read the power log {}: {e}", path.display()),
    }
}

/// `/usr/sbin/fence_ipmilan` when present (not always in `PATH`), else the bare name.
pub fn fence_ipmilan() -> String {
    if Path::new("/usr/sbin/fence_ipmilan").exists() {
        "/usr/sbin/fence_ipmilan".into()
    } else {
        "fence_ipmilan".into()
    }
}

/// A YAML double-quoted scalar (JSON string syntax is valid YAML).
fn quoted(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// A path as one word of the hook's `sh -c` command line (ipmi_sim runs it through popen).
fn shell_word(path: &Path) -> String {
    let text = path.display().to_string();
    assert!(
        text.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+".contains(&b)),
        "the BMC hook needs a temporary directory path without special characters, got {text:?}"
    );
    text
}

/// A UDP port on 127.0.0.1 that was free a moment ago and that no other BMC of this process got.
fn free_udp_port() -> u16 {
    let mut taken = TAKEN_PORTS.lock().unwrap_or_else(|e| e.into_inner());
    let taken = taken.get_or_insert_with(HashSet::new);
    loop {
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if taken.insert(port) {
            return port;
        }
    }
}

/// Starts `ipmi_sim` for one host and waits until it answers; tries another port if the one
/// chosen was taken meanwhile (ipmi_sim then exits at once).
fn spawn_answering(dir: &Path, host: &str, hook_command: &str, emu: &Path) -> (u16, Child) {
    let state = dir.join(format!("{host}.state"));
    std::fs::create_dir_all(&state).unwrap();
    let lan = dir.join(format!("{host}.lan.conf"));
    let output = dir.join(format!("{host}.ipmi_sim.log"));
    let mut failures = Vec::new();
    for _ in 0..PORT_ATTEMPTS {
        let port = free_udp_port();
        std::fs::write(&lan, lan_conf(host, port, hook_command)).unwrap();
        let out = File::create(&output).unwrap();
        let mut child = Command::new("ipmi_sim")
            .arg("-c")
            .arg(&lan)
            .arg("-f")
            .arg(emu)
            .arg("-s")
            .arg(&state)
            // No console on stdin (it would stop a backgrounded ipmi_sim).
            .arg("-n")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("ipmi_sim is installed by scripts/setup.sh (Debian package openipmi)");
        match wait_answering(&mut child, port) {
            Ok(()) => return (port, child),
            Err(why) => {
                let _ = child.kill();
                let _ = child.wait();
                let said = std::fs::read_to_string(&output).unwrap_or_default();
                failures.push(format!("port {port}: {why}: {}", said.trim()));
            }
        }
    }
    panic!("the BMC of {host} did not start:\n{}", failures.join("\n"));
}

fn lan_conf(host: &str, port: u16, hook_command: &str) -> String {
    let auths = "none md2 md5 straight";
    format!(
        "name \"xenbmc-{host}\"\n\
set_working_mc 0x20\n\
  startlan 1\n\
    addr 127.0.0.1 {port}\n\
    priv_limit admin\n\
    allowed_auths_callback {auths}\n\
    allowed_auths_user {auths}\n\
    allowed_auths_operator {auths}\n\
    allowed_auths_admin {auths}\n\
    guid a123456789abcdefa123456789abcdef\n\
  endlan\n\
  chassis_control \"{hook_command}\"\n\
  user 1 true  \"\"      \"test\" user  10 {auths}\n\
  user 2 true  \"{BMC_USER}\" \"{BMC_PASSWORD}\" admin 10 {auths}\n"
    )
}

/// Polls `port` with RMCP/ASF presence pings until it answers with a pong, the child exits or
/// [`READY_WITHIN`] passes.
fn wait_answering(child: &mut Child, port: u16) -> Result<(), String> {
    let deadline = Instant::now() + READY_WITHIN;
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.connect(("127.0.0.1", port)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut tag: u8 = 0;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Err(exited(status));
        }
        tag = tag.wrapping_add(1);
        // RMCP v1.0, no ACK, class ASF; ASF IANA 4542, Presence Ping, message tag, no data.
        let ping = [
            0x06, 0x00, 0xff, 0x06, 0x00, 0x00, 0x11, 0xbe, 0x80, tag, 0x00, 0x00,
        ];
        let mut answer = [0u8; 64];
        // Nothing listening yet shows as a refused send or receive: wait a little, retry.
        let ponged = socket.send(&ping).is_ok()
            && matches!(socket.recv(&mut answer), Ok(n) if n >= 10 && answer[8] == 0x40 && answer[9] == tag);
        if ponged {
            // A pong from someone else's BMC on this port while ours failed to bind?
            return match child.try_wait().unwrap() {
                Some(status) => Err(exited(status)),
                None => Ok(()),
            };
        }
        if Instant::now() >= deadline {
            return Err(format!("no answer within {READY_WITHIN:?}"));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn exited(status: ExitStatus) -> String {
    format!("ipmi_sim exited ({status})")
}
