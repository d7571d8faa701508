//! `xenguard check-config` and `config::load` on the fixture files in `tests/fixtures/config/`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use xenguard::config::{self, ConfigError, Credentials, Mode, ReceiverAuth, Scheme};

const DIR: &str = "tests/fixtures/config";

/// Runs `xenguard check-config tests/fixtures/config/NAME` from the package root, so the file
/// name in the messages is stable.
fn check_config(name: &str) -> Output {
    let output = Command::new(env!("CARGO_BIN_EXE_xenguard"))
        .arg("check-config")
        .arg(format!("{DIR}/{name}"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("RUST_LOG")
        .output();
    match output {
        Ok(output) => output,
        Err(error) => panic!("cannot run xenguard: {error}"),
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR).join(name)
}

#[test]
fn three_mistakes_in_three_places_are_all_reported_with_their_lines() {
    let output = check_config("three-mistakes.yml");
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    assert_eq!(text(&output.stdout), "");
    let file = "tests/fixtures/config/three-mistakes.yml";
    let expected = [
        format!("{file}:9:5: unknown key `usernme` in a pool (did you mean `username`?)"),
        format!(
            "{file}:11:11: `listen` must be an IP address and port such as `0.0.0.0:9878` or \
             `[::]:9878`, got `0.0.0.0:98780`"
        ),
        format!(
            "{file}:13:9: `mode: auto` needs `receiver.auth`: the receiver refuses to act on \
             unauthenticated webhooks"
        ),
    ];
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines, expected, "stderr:\n{stderr}");
}

#[test]
fn the_full_example_is_valid() {
    let output = check_config("example.yml");
    assert_eq!(text(&output.stderr), "");
    assert_eq!(
        text(&output.stdout),
        "tests/fixtures/config/example.yml: ok (2 pools, 5 hosts; receiver mode approve)\n"
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn the_minimal_file_is_valid() {
    let output = check_config("minimal.yml");
    assert_eq!(text(&output.stderr), "");
    assert_eq!(
        text(&output.stdout),
        "tests/fixtures/config/minimal.yml: ok (1 pool, 1 host; receiver mode observe)\n"
    );
    assert_eq!(output.status.code(), Some(0));
}

#[test]
fn a_missing_file_is_an_error() {
    let output = check_config("no-such-file.yml");
    assert_eq!(output.status.code(), Some(1));
    let stderr = text(&output.stderr);
    assert!(
        stderr.starts_with("tests/fixtures/config/no-such-file.yml: cannot read: "),
        "{stderr}"
    );
}

#[test]
fn load_returns_the_validated_example() {
    let config = match config::load(&fixture("example.yml")) {
        Ok(config) => config,
        Err(errors) => panic!("{errors}"),
    };
    assert_eq!(config.pools.len(), 2);
    let prod_a = &config.pools[0];
    assert_eq!(prod_a.name, "prod-a");
    assert_eq!(
        prod_a.hosts,
        [
            "xen1.prod.example.com",
            "xen2.prod.example.com",
            "10.20.0.13"
        ]
    );
    assert_eq!((prod_a.scheme, prod_a.port), (Scheme::Https, 443));
    assert_eq!(
        prod_a.tls.pins["10.20.0.13"],
        "3A:5F:0C:99:12:AB:CD:EF:01:23:45:67:89:AB:CD:EF:3A:5F:0C:99:12:AB:CD:EF:01:23:45:67:89:AB:CD:EF"
    );
    assert_eq!(prod_a.timeouts.start_vm, Duration::from_secs(600));
    let prod_b = config
        .pool("prod-b")
        .unwrap_or_else(|| panic!("no pool prod-b"));
    assert_eq!(
        prod_b.credentials,
        Credentials::Env("XENGUARD_PROD_B_PASSWORD".into())
    );
    assert_eq!(prod_b.username, "root");
    assert_eq!(config.exporter.listen.to_string(), "0.0.0.0:9878");
    assert_eq!(config.receiver.mode, Mode::Approve);
    assert_eq!(
        config.receiver.auth,
        Some(ReceiverAuth::Bearer {
            token_file: "/etc/xenguard/webhook.token".into()
        })
    );
    assert_eq!(config.fencing.hosts.len(), 5);
    let xen1 = config
        .fencing
        .for_host("prod-a", "6a1f0c8e-3b2d-4c51-9e7a-0d4b8f2a1c11")
        .unwrap_or_else(|| panic!("no fence entry for xen1"));
    let xen1 = &xen1.levels[0].agents[0];
    assert_eq!(xen1.agent, "fence_ipmilan");
    assert_eq!(xen1.args["lanplus"], "1");
    assert_eq!(xen1.args["ip"], "10.99.0.11");
    let xen3 = config
        .fencing
        .for_host("prod-a", "6a1f0c8e-3b2d-4c51-9e7a-0d4b8f2a1c13")
        .unwrap_or_else(|| panic!("no fence entry for xen3"));
    let outlets: Vec<&str> = xen3.levels[1]
        .agents
        .iter()
        .map(|a| a.args["ip"].as_str())
        .collect();
    assert_eq!(outlets, ["10.99.0.250", "10.99.0.251"]);
}

#[test]
fn load_returns_every_error_with_its_position() {
    let errors = match config::load(&fixture("three-mistakes.yml")) {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(errors) => errors,
    };
    let positions: Vec<(usize, usize)> = errors
        .errors()
        .iter()
        .map(|error| match error {
            ConfigError::Invalid { line, column, .. } => (*line, *column),
            other => panic!("unexpected error {other}"),
        })
        .collect();
    assert_eq!(positions, [(9, 5), (11, 11), (13, 9)]);
    assert_eq!(errors.to_string().lines().count(), 3);
}
