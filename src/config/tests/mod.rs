//! The module's tests, end to end through [`parse`](super::parse) and `analyse`: here the
//! whole file (defaults, unknown keys, YAML, the example, secrets, robustness); one file per
//! section beside it.

mod exporter;
mod fencing;
mod pools;
mod receiver;

use std::collections::HashSet;
use std::time::Duration;

use super::tree::MAX_ROUNDS;
use super::*;

const MINIMAL: &str = "\
pools:
  - name: lab
    hosts: [10.0.0.1]
    password_file: /etc/xenguard/lab.password
";

fn errors(text: &str) -> Vec<String> {
    match parse(text, "f.yml") {
        Ok(config) => panic!("expected errors, got {config:?}"),
        Err(errors) => errors.errors().iter().map(ToString::to_string).collect(),
    }
}

/// Each error starts with the expected text, in order, and there are no others.
fn assert_prefixes(errors: &[String], expected: &[&str]) {
    assert_eq!(errors.len(), expected.len(), "{errors:#?}");
    for (error, expected) in errors.iter().zip(expected) {
        assert!(
            error.starts_with(expected),
            "{error:?} should start with {expected:?}"
        );
    }
}

fn ok(text: &str) -> Config {
    match parse(text, "f.yml") {
        Ok(config) => config,
        Err(errors) => panic!("expected a valid config, got:\n{errors}"),
    }
}

fn warnings(text: &str) -> Vec<String> {
    analyse(text)
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Warning)
        .map(|p| p.render("f.yml"))
        .collect()
}

#[test]
fn minimal_file_gets_every_default() {
    let config = ok(MINIMAL);
    let pool = &config.pools[0];
    assert_eq!(pool.name, "lab");
    assert_eq!(pool.hosts, ["10.0.0.1"]);
    assert_eq!(pool.port, 443);
    assert_eq!(pool.scheme, Scheme::Https);
    assert_eq!(pool.username, "root");
    assert_eq!(pool.tls, TlsConfig::default());
    assert_eq!(
        pool.credentials,
        Credentials::File("/etc/xenguard/lab.password".into())
    );
    assert_eq!(pool.timeouts, PoolTimeouts::default());
    assert_eq!(pool.resource_metrics, ResourceMetrics::default());
    assert_eq!(config.exporter, ExporterConfig::default());
    assert_eq!(config.exporter.listen.to_string(), "0.0.0.0:9878");
    assert_eq!(config.receiver, ReceiverConfig::default());
    assert_eq!(config.receiver.listen.to_string(), "0.0.0.0:9879");
    assert_eq!(config.fencing, FencingConfig::default());
    assert_eq!(config.summary(), "1 pool, 1 host; receiver mode observe");
}

#[test]
fn http_port_defaults_to_80_and_numbers_in_string_places_stay_text() {
    let config = ok("\
pools:
  - name: sim
    scheme: http
    hosts: [127.0.0.11, 127.0.0.12]
    password_env: SIM_PASSWORD
fencing:
  hosts:
    - {pool: sim, host: 127.0.0.11, agent: fence_ipmilan, args: {ipport: 9001, lanplus: 1, ip: 127.0.0.1}}
");
    assert_eq!(config.pools[0].port, 80);
    assert_eq!(
        config.pools[0].credentials,
        Credentials::Env("SIM_PASSWORD".into())
    );
    let args = &config.fencing.hosts[0].levels[0].agents[0].args;
    assert_eq!(args["ipport"], "9001");
    assert_eq!(args["lanplus"], "1");
}

#[test]
fn every_unknown_key_is_reported_with_its_position() {
    let errors = errors(
        "\
pools:
  - name: a
    hosts: [h1]
    password_file: /p
    prot: 443
    colour: blue
exporter:
  listne: 0.0.0.0:1
bogus: 1
",
    );
    assert_eq!(
        errors,
        [
            "f.yml:5:5: unknown key `prot` in a pool (did you mean `port`?)",
            "f.yml:6:5: unknown key `colour` in a pool; expected one of `name`, `hosts`, \
                 `port`, `scheme`, `tls`, `username`, `password_file`, `password_env`, `timeouts`, `resource_metrics`",
            "f.yml:8:3: unknown key `listne` in `exporter` (did you mean `listen`?)",
            "f.yml:9:1: unknown key `bogus` at the top level; expected one of `pools`, \
                 `exporter`, `receiver`, `fencing`",
        ]
    );
}

#[test]
fn inline_password_is_refused_with_the_alternatives() {
    let errors = errors(
        "\
pools:
  - name: a
    hosts: [h1]
    password: hunter2
",
    );
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert!(errors[0].starts_with("f.yml:2:5: pool `a` needs `password_file` or `password_env`"));
    assert!(errors[1].starts_with("f.yml:4:5: inline passwords are not allowed"));
    assert!(errors[1].contains("`password_file` or `password_env`"));
    assert!(!errors.join("\n").contains("hunter2"));
}

#[test]
fn type_errors_do_not_hide_later_mistakes() {
    let errors = errors(
        "\
pools:
  - name: a
    hosts: [h1, {x: 1}]
    port: https
    password_file: /p
    timeouts: {connect_seconds: soon, call_seconds: 0}
  - name: [b]
    hosts: [h2]
    password_file: /p
receiver:
  mode: sometimes
  confirm_probes: -1
",
    );
    assert_eq!(
        errors,
        [
            "f.yml:3:17: invalid type: a mapping, expected a string",
            "f.yml:4:11: invalid type: string \"https\", expected a whole number from 0 to 65535",
            "f.yml:6:33: invalid type: string \"soon\", expected a whole number, 0 or more",
            "f.yml:6:53: `call_seconds` must be at least 1",
            "f.yml:7:11: invalid type: a list, expected a string",
            "f.yml:11:9: unknown variant `sometimes`, expected one of `observe`, `approve`, `auto`",
            "f.yml:12:19: invalid value: integer `-1`, expected a whole number from 0 to 4294967295",
        ]
    );
}

#[test]
fn missing_required_keys_are_reported_per_pool() {
    let errors = errors(
        "\
pools:
  - hosts: [h1]
    password_file: /p
  - name: b
    password_file: /p
fencing:
  hosts:
    - {pool: b, host: h1}
",
    );
    assert_eq!(
        errors,
        [
            "f.yml:2:5: missing required key `name` in a pool",
            "f.yml:4:5: missing required key `hosts` in a pool",
            "f.yml:8:7: a fencing host needs `agent` (one agent) or `levels` (agents tried in order)",
        ]
    );
}

#[test]
fn semantic_checks() {
    let errors = errors(
        "\
pools:
  - name: Lab 1
    hosts: [10.0.0.1, 'https://x', 'h:443', -bad-, 10.0.0.1]
    port: 0
    password_file: /p
    password_env: 1BAD
  - name: b
    hosts: []
    password_env: B
  - name: b
    hosts: [10.0.0.1]
    password_file: ''
exporter:
  listen: localhost:9878
  probe_interval_seconds: 2
  probe_timeout_seconds: 5
receiver:
  mode: auto
  max_body_bytes: 0
  startup_quiet_seconds: 0
  step_timeout_seconds: 1000
  fence_budget: {max_fences: 0, window_seconds: 99999999999}
",
    );
    let expected = [
        "f.yml:2:11: pool name `Lab 1` must be 1 to 63 characters",
        "f.yml:3:23: host `https://x` is a URL",
        "f.yml:3:36: host `h:443` must be an address without a port",
        "f.yml:3:45: host `-bad-` is neither an IP address nor a valid DNS name",
        "f.yml:3:52: host `10.0.0.1` is listed twice (first on line 3)",
        "f.yml:4:11: `port` must be between 1 and 65535",
        "f.yml:6:19: pool `Lab 1` sets both `password_file` and `password_env`; keep one",
        "f.yml:8:12: pool `b` needs at least one host",
        "f.yml:10:11: duplicate pool name `b` (first used on line 7)",
        "f.yml:11:13: host `10.0.0.1` is already listed in pool `Lab 1`",
        "f.yml:12:20: `password_file` must not be empty",
        "f.yml:14:11: `listen` must be an IP address and port",
        "f.yml:16:26: `probe_timeout_seconds` (5) must not exceed `probe_interval_seconds` (2)",
        "f.yml:18:9: `mode: auto` needs `receiver.auth`",
        "f.yml:19:19: `max_body_bytes` must be at least 1",
        "f.yml:21:25: `pool_lease_seconds` (1800) must exceed twice `step_timeout_seconds` (1000)",
        "f.yml:22:30: `max_fences` must be at least 1",
        "f.yml:22:49: `window_seconds` must be at most 31536000",
    ];
    assert_prefixes(&errors, &expected);
}

#[test]
fn yaml_problems() {
    let syntax = errors("pools:\n  - name: a\n   bad: [\n");
    assert_eq!(syntax.len(), 1, "{syntax:?}");
    assert!(syntax[0].contains("YAML syntax error"), "{syntax:?}");

    assert_eq!(
        errors(""),
        ["f.yml:1:1: missing required key `pools` in the top level"]
    );
    assert_eq!(
        errors("pools: []\n"),
        ["f.yml:1:8: `pools` must list at least one pool"]
    );
    let duplicate = errors(&format!("{MINIMAL}exporter: {{}}\nexporter: {{}}\n"));
    assert_eq!(
        duplicate,
        ["f.yml:6:1: duplicate key `exporter` (first on line 5)"]
    );
    let second = errors(&format!("{MINIMAL}---\npools: []\n"));
    assert_eq!(
        second,
        ["f.yml:5:1: only one YAML document is allowed (found a second `---`)"]
    );
    let tag = errors(&format!("{MINIMAL}exporter: !include other.yml\n"));
    assert_eq!(tag.len(), 1, "{tag:?}");
    assert!(
        tag[0].starts_with("f.yml:5:11: unsupported YAML tag `!include`"),
        "{tag:?}"
    );
    assert_eq!(
        errors("[1, 2]\n"),
        [
            "f.yml:1:1: invalid type: a list, expected a mapping with `pools` and optionally \
                 `exporter`, `receiver`, `fencing`"
        ]
    );
}

#[test]
fn anchors_and_merge_keys() {
    let config = ok("\
pools:
  - &first
    name: a
    hosts: [h1]
    password_file: /p
    timeouts: {call_seconds: 20}
  - <<: *first
    name: b
    hosts: [h2]
  - <<: *first
    name: c
    hosts: [h3]
    timeouts: {call_seconds: 30}
");
    assert_eq!(config.pools.len(), 3);
    assert_eq!(config.pools[1].name, "b");
    assert_eq!(config.pools[1].timeouts.call, Duration::from_secs(20));
    assert_eq!(config.pools[1].credentials, Credentials::File("/p".into()));
    assert_eq!(config.pools[2].timeouts.call, Duration::from_secs(30));
}

#[test]
fn empty_sections_mean_defaults_and_nulls_mean_absent() {
    let config = ok(&format!(
        "{MINIMAL}exporter:\nreceiver:\n  auth: ~\nfencing:\n"
    ));
    assert_eq!(config.exporter, ExporterConfig::default());
    assert_eq!(config.receiver, ReceiverConfig::default());
    assert_eq!(config.fencing, FencingConfig::default());
}

#[test]
fn serde_saphyr_reads_a_valid_file_into_the_same_config() {
    let text = include_str!("../../../tests/fixtures/config/example.yml");
    let ours = ok(text);
    let raw: RawConfig = match serde_saphyr::from_str(text) {
        Ok(raw) => raw,
        Err(error) => panic!("serde-saphyr: {error}"),
    };
    let mut checker = Checker {
        problems: Vec::new(),
        hidden: HashSet::new(),
    };
    let theirs = checker.config(&raw);
    assert!(
        checker
            .problems
            .iter()
            .all(|p| p.severity == Severity::Warning),
        "{:?}",
        checker.problems
    );
    assert_eq!(ours, theirs);
}

/// Every key of the schema appears in `example.yml` (the configuration reference). The
/// schema's key lists are read from the "unknown key" messages of a probe document.
#[test]
fn the_example_documents_every_key() {
    let probe = "\
zzz: 1
pools:
  - zzz: 1
    tls: {zzz: 1}
    timeouts: {zzz: 1}
    resource_metrics: {zzz: 1}
exporter: {zzz: 1}
receiver: {zzz: 1, auth: {zzz: 1, basic: {zzz: 1}}, tls: {zzz: 1}, fence_budget: {zzz: 1}, storm: {zzz: 1}}
fencing: {zzz: 1, hosts: [{zzz: 1, levels: [{zzz: 1, agents: [{zzz: 1}]}]}]}
";
    let messages = analyse(probe)
        .problems
        .into_iter()
        .filter_map(|p| {
            let (_, keys) = p.message.split_once("expected one of ")?;
            Some(keys.to_owned())
        })
        .collect::<Vec<_>>();
    assert_eq!(messages.len(), 16, "{messages:#?}");
    let example = include_str!("../../../tests/fixtures/config/example.yml");
    for keys in messages {
        for key in keys.split(", ") {
            let key = key.trim_matches('`');
            assert!(
                example.contains(&format!("{key}:")),
                "example.yml lacks `{key}`"
            );
        }
    }
}

#[test]
fn a_hopeless_file_stops_after_max_rounds() {
    let hosts = vec!["{a: 1}"; MAX_ROUNDS + 100].join(", ");
    let errors = errors(&format!(
        "pools:\n  - name: a\n    password_file: /p\n    hosts: [{hosts}]\n"
    ));
    assert_eq!(errors.len(), MAX_ROUNDS + 1);
    assert_eq!(
        errors[0],
        format!("f.yml:1:1: more than {MAX_ROUNDS} errors; stopped checking")
    );
}

#[test]
fn secrets_are_read_trimmed_and_never_printed() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("pw");
    std::fs::write(&path, "s3cret\n\n").unwrap_or_else(|e| panic!("{e}"));
    let mut config = ok(MINIMAL);
    config.pools[0].credentials = Credentials::File(path.clone());
    let secret = config.pools[0].password().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(secret.expose(), "s3cret\n");
    assert_eq!(format!("{secret:?}"), "***");
    std::fs::write(&path, "s3cret\r\n").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        read_secret_file(&path)
            .map(|s| s.expose().to_owned())
            .ok()
            .as_deref(),
        Some("s3cret")
    );
    std::fs::write(&path, "\n").unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        read_secret_file(&path),
        Err(ConfigError::EmptySecret { .. })
    ));
    assert!(matches!(
        read_secret_file(&dir.path().join("missing")),
        Err(ConfigError::SecretFile { .. })
    ));
    config.pools[0].credentials = Credentials::Env("XENGUARD_TEST_SURELY_UNSET_VARIABLE".into());
    assert!(matches!(
        config.pools[0].password(),
        Err(ConfigError::SecretEnv { .. })
    ));
}

proptest::proptest! {
    #[test]
    fn never_panics_and_always_locates(text in "\\PC{0,200}") {
        if let Err(errors) = parse(&text, "p.yml") {
            proptest::prop_assert!(!errors.is_empty());
            for error in errors.errors() {
                let is_located = matches!(error, ConfigError::Invalid { line, .. } if *line >= 1);
                proptest::prop_assert!(is_located, "{}", error);
            }
        }
    }

    #[test]
    fn yamlish_input_never_panics(
        lines in proptest::collection::vec(
            "( {0,4})(- )?(pools|name|hosts|port|tls|pins|receiver|mode|auth|x)?(: )?(\\[|\\{|a|1|-1|true|~|&a|\\*a|<<)?",
            0..12,
        )
    ) {
        let text = lines.join("\n");
        let _ = parse(&text, "p.yml");
    }
}
