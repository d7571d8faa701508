//! `receiver`: authentication, TLS and the storm limit.

use super::*;

#[test]
fn receiver_auth() {
    let config = ok(&format!(
        "{MINIMAL}receiver:\n  mode: approve\n  auth:\n    basic: {{username: am, password_file: /p}}\n"
    ));
    assert_eq!(config.receiver.mode, Mode::Approve);
    assert_eq!(
        config.receiver.auth,
        Some(ReceiverAuth::Basic {
            username: "am".into(),
            password_file: "/p".into()
        })
    );
    let errors = errors(&format!(
        "{MINIMAL}receiver:\n  auth:\n    bearer_token_file: /t\n    basic: {{username: am, password_file: /p}}\n"
    ));
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("f.yml:8:12: `receiver.auth` sets both"));
    let empty = self::errors(&format!("{MINIMAL}receiver:\n  auth: {{}}\n"));
    assert_eq!(
        empty,
        ["f.yml:6:9: `receiver.auth` needs `bearer_token_file` or `basic`"]
    );
}

#[test]
fn receiver_tls() {
    let config = ok(&format!(
        "{MINIMAL}receiver:\n  tls:\n    cert_file: /etc/xenguard/tls.crt\n    \
             key_file: /etc/xenguard/tls.key\n    client_ca_file: /etc/xenguard/clients.pem\n"
    ));
    assert_eq!(
        config.receiver.tls,
        Some(ReceiverTls {
            cert_file: "/etc/xenguard/tls.crt".into(),
            key_file: "/etc/xenguard/tls.key".into(),
            client_ca_file: Some("/etc/xenguard/clients.pem".into()),
        })
    );
    let server_only = ok(&format!(
        "{MINIMAL}receiver:\n  tls: {{cert_file: /c.pem, key_file: /k.pem}}\n"
    ));
    assert_eq!(
        server_only.receiver.tls,
        Some(ReceiverTls {
            cert_file: "/c.pem".into(),
            key_file: "/k.pem".into(),
            client_ca_file: None,
        })
    );
    assert_eq!(
        ok(&format!("{MINIMAL}receiver:\n  tls: ~\n")).receiver.tls,
        None
    );

    let errors = errors(&format!(
        "{MINIMAL}receiver:\n  tls:\n    cert_file: /c.pem\n    keyfile: /k.pem\n    \
             ca_file: /ca.pem\n"
    ));
    assert_eq!(
        errors,
        [
            "f.yml:7:5: missing required key `key_file` in `receiver.tls`",
            "f.yml:8:5: unknown key `keyfile` in `receiver.tls` (did you mean `key_file`?)",
            "f.yml:9:5: unknown key `ca_file` in `receiver.tls`; expected one of \
                 `cert_file`, `key_file`, `client_ca_file`",
        ]
    );
    let empty = self::errors(&format!("{MINIMAL}receiver:\n  tls: {{}}\n"));
    assert_eq!(
        empty,
        ["f.yml:6:8: missing required key `cert_file` in `receiver.tls`"]
    );
    let blank = self::errors(&format!(
        "{MINIMAL}receiver:\n  tls: {{cert_file: '', key_file: /k.pem, client_ca_file: [x]}}\n"
    ));
    assert_eq!(
        blank,
        [
            "f.yml:6:20: `cert_file` must not be empty",
            "f.yml:6:58: invalid type: a list, expected a path",
        ]
    );
}

#[test]
fn a_broken_auth_does_not_add_a_spurious_mode_error() {
    let errors = errors(&format!(
        "{MINIMAL}receiver:\n  mode: auto\n  auth:\n    bearer_token_file: [x]\n"
    ));
    assert_eq!(
        errors,
        ["f.yml:8:24: invalid type: a list, expected a path"]
    );
}

#[test]
fn storm_limit() {
    let config = ok(&format!(
        "{MINIMAL}receiver:\n  storm: {{max_unhealthy: 3, window_seconds: 60, cooldown_seconds: 0}}\n"
    ));
    assert_eq!(
        config.receiver.storm.max_unhealthy,
        crate::config::MaxUnhealthy::Count(3)
    );
    assert_eq!(config.receiver.storm.cooldown, std::time::Duration::ZERO);
    let config = ok(&format!(
        "{MINIMAL}receiver:\n  storm: {{max_unhealthy: ' 40 %'}}\n"
    ));
    assert_eq!(
        config.receiver.storm.max_unhealthy,
        crate::config::MaxUnhealthy::Percent(40)
    );
    assert_eq!(
        ok(MINIMAL).receiver.storm,
        crate::config::StormLimit::default()
    );
    let errors = errors(&format!(
        "{MINIMAL}receiver:\n  storm:\n    max_unhealthy: 120%\n    window_seconds: 0\n"
    ));
    assert_eq!(
        errors,
        [
            "f.yml:7:20: `max_unhealthy` must be a number of hosts (`2`) or a percentage of the pool's hosts (`50%`), got `120%`",
            "f.yml:8:21: `window_seconds` must be at least 1",
        ]
    );
}
