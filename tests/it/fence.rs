//! Fencing through the real `fence_ipmilan` (Debian fence-agents) against a real `ipmi_sim`
//! BMC (Debian openipmi): status, a power-off read back as off, failures and timeouts.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use xenguard::remediation::fence::{FenceAgent, FenceError, Power};

/// One simulated BMC on a free UDP port, its power in a file with an audit log.
struct Bmc {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Bmc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn write_executable(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
    Command::new("chmod").arg("+x").arg(path).status().unwrap();
}

fn start_bmc() -> Bmc {
    let dir = tempfile::tempdir().unwrap();
    let port = free_udp_port();
    let hook = dir.path().join("chassis.sh");
    // ipmi_sim runs `hook get power` / `hook set power 0|1`; the file holds the power state.
    write_executable(
        &hook,
        "#!/bin/sh\nf=\"$1\"; op=\"$2\"; shift 2\n[ -f \"$f\" ] || echo 1 > \"$f\"\necho \"$op $*\" >> \"$f.log\"\ncase \"$op\" in\n  get) for n in \"$@\"; do case \"$n\" in power) echo \"power:$(cat \"$f\")\";; *) echo \"$n:0\";; esac; done ;;\n  set) while [ $# -gt 0 ]; do case \"$1\" in power) echo \"$2\" > \"$f\";; esac; shift 2; done ;;\nesac\nexit 0\n",
    );
    let power = dir.path().join("power.state");
    let lan = dir.path().join("lan.conf");
    std::fs::write(
        &lan,
        format!(
            "name \"xenbmc\"\nset_working_mc 0x20\n  startlan 1\n    addr 127.0.0.1 {port}\n    priv_limit admin\n    allowed_auths_callback none md2 md5 straight\n    allowed_auths_user none md2 md5 straight\n    allowed_auths_operator none md2 md5 straight\n    allowed_auths_admin none md2 md5 straight\n    guid a123456789abcdefa123456789abcdef\n  endlan\n  chassis_control \"{} {}\"\n  user 1 true  \"\"      \"test\" user  10 none md2 md5 straight\n  user 2 true  \"admin\" \"pw\"   admin 10 none md2 md5 straight\n",
            hook.display(),
            power.display()
        ),
    )
    .unwrap();
    let emu = dir.path().join("bmc.emu");
    std::fs::write(
        &emu,
        "mc_setbmc 0x20\nmc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02 persist_sdr\nsel_enable 0x20 1000 0x0a\nmc_enable 0x20\n",
    )
    .unwrap();
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    let child = Command::new("ipmi_sim")
        .arg("-c")
        .arg(&lan)
        .arg("-f")
        .arg(&emu)
        .arg("-s")
        .arg(&state)
        .arg("-n")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ipmi_sim is installed by scripts/setup.sh (Debian package openipmi)");
    std::thread::sleep(Duration::from_millis(500));
    Bmc { child, port, dir }
}

fn agent(bmc: &Bmc, password: &str) -> FenceAgent {
    let program = if Path::new("/usr/sbin/fence_ipmilan").exists() {
        "/usr/sbin/fence_ipmilan"
    } else {
        "fence_ipmilan"
    };
    FenceAgent {
        program: program.into(),
        args: BTreeMap::from([
            ("ip".to_string(), "127.0.0.1".to_string()),
            ("ipport".to_string(), bmc.port.to_string()),
            ("username".to_string(), "admin".to_string()),
            ("lanplus".to_string(), "1".to_string()),
            ("cipher".to_string(), "3".to_string()),
        ]),
        password: Some(password.into()),
        timeout: Duration::from_secs(30),
    }
}

#[tokio::test]
async fn fence_ipmilan_powers_off_and_reads_it_back() {
    let bmc = start_bmc();
    let fence = agent(&bmc, "pw");
    let (power, run) = fence.status().await.unwrap();
    assert_eq!((power, run.exit_code), (Power::On, Some(0)), "{run:?}");
    let evidence = fence
        .power_off_confirmed(5, Duration::from_millis(500))
        .await
        .unwrap();
    assert_eq!(evidence[0].action, "off");
    assert_eq!(
        evidence.last().unwrap().exit_code,
        Some(2),
        "read back off: {evidence:?}"
    );
    assert_eq!(
        std::fs::read_to_string(bmc.dir.path().join("power.state"))
            .unwrap()
            .trim(),
        "0"
    );
    let log = std::fs::read_to_string(bmc.dir.path().join("power.state.log")).unwrap();
    assert_eq!(
        log.lines().filter(|l| l.starts_with("set power 0")).count(),
        1,
        "fenced exactly once:\n{log}"
    );
}

#[tokio::test]
async fn wrong_credentials_are_an_error_not_a_power_state() {
    let bmc = start_bmc();
    let err = agent(&bmc, "wrong").status().await.unwrap_err();
    assert!(
        matches!(err, FenceError::Failed { code: Some(1), .. }),
        "{err}"
    );
    let off = agent(&bmc, "wrong")
        .power_off_confirmed(2, Duration::from_millis(100))
        .await
        .unwrap_err();
    assert!(matches!(off, FenceError::Failed { .. }), "{off}");
    assert_eq!(
        std::fs::read_to_string(bmc.dir.path().join("power.state"))
            .unwrap_or_else(|_| "1".into())
            .trim(),
        "1"
    );
}

#[tokio::test]
async fn a_hung_agent_is_killed_at_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("fence_hang");
    write_executable(&script, "#!/bin/sh\nsleep 30\n");
    let fence = FenceAgent {
        program: script.display().to_string(),
        args: BTreeMap::new(),
        password: None,
        timeout: Duration::from_millis(300),
    };
    let started = Instant::now();
    let err = fence.status().await.unwrap_err();
    assert!(matches!(err, FenceError::Timeout { .. }), "{err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let missing = FenceAgent {
        program: "/nonexistent/fence_nothing".into(),
        ..fence
    };
    assert!(matches!(
        missing.status().await.unwrap_err(),
        FenceError::Spawn { .. }
    ));
}
