//! `fencing`: hosts, levels and agents, and what an acting receiver needs of them.

use super::*;

#[test]
fn fencing_checks() {
    let errors = errors(&format!(
        "{MINIMAL}fencing:
  agent_timeout_seconds: 0
  hosts:
    - pool: nope
      host: 10.0.0.1
      agent: fence ipmilan
      args:
        action: reboot
        password: secret
        ip: \"10.0.0.9\\nreboot\"
    - pool: lab
      host: 10.0.0.1
      agent: /usr/sbin/fence_ipmilan
      password_file: /bmc
      args: {{passwd: x}}
    - pool: lab
      host: 10.0.0.1
      agent: fence_ipmilan
"
    ));
    let expected = [
        "f.yml:6:26: `agent_timeout_seconds` must be at least 1",
        "f.yml:8:13: unknown pool `nope` (configured pools: lab)",
        "f.yml:10:14: `agent` must be a program name",
        "f.yml:12:9: fence argument `action` is set by xenguard",
        "f.yml:13:9: inline passwords are not allowed",
        "f.yml:14:13: fence argument `ip` must be a single line",
        "f.yml:19:14: fence argument `passwd` comes from `password_file`",
        "f.yml:21:13: host `10.0.0.1` of pool `lab` already has a fence agent (line 16)",
    ];
    assert_prefixes(&errors, &expected);
}

#[test]
fn an_acting_receiver_fences_hosts_by_uuid_only() {
    let config = |mode: &str, key: &str| {
        format!(
            "{MINIMAL}receiver:\n  mode: {mode}\n  auth: {{bearer_token_file: /t}}\nfencing:\n  hosts:\n    - pool: lab\n      host: {key}\n      agent: fence_ipmilan\n"
        )
    };
    for mode in ["auto", "approve"] {
        for key in ["10.0.0.1", "xen1", "6a1f0c8e-3b2d-4c51-9e7a-0d4b8f2a1c1"] {
            let errors = errors(&config(mode, key));
            assert_eq!(errors.len(), 1, "{mode} {key}: {errors:?}");
            assert!(
                errors[0].starts_with("f.yml:11:13: `host` must be the host's uuid"),
                "{errors:?}"
            );
        }
        ok(&config(mode, "6a1f0c8e-3b2d-4c51-9e7a-0d4b8f2a1c11"));
    }
    ok(&config("observe", "xen1"));
}

#[test]
fn mode_auto_without_fencing_warns() {
    let text = format!("{MINIMAL}receiver:\n  mode: auto\n  auth: {{bearer_token_file: /t}}\n");
    ok(&text);
    assert_eq!(warnings(&text).len(), 1);
    assert!(warnings(&text)[0].contains("no fence agent is configured for pool `lab`"));
}

#[test]
fn fencing_levels_and_their_mistakes() {
    let config = ok(&format!(
        "{MINIMAL}fencing:
  hosts:
    - pool: lab
      host: 10.0.0.1
      levels:
        - agents: [{{agent: fence_ipmilan, args: {{ip: 10.0.0.101}}, password_file: /bmc}}]
        - agents:
            - {{agent: fence_apc_snmp, args: {{ip: 10.0.0.250, plug: 1}}}}
            - {{agent: fence_apc_snmp, args: {{ip: 10.0.0.251, plug: 1}}}}
    - {{pool: lab, host: 10.0.0.2, agent: fence_ipmilan}}
"
    ));
    let levels = &config.fencing.hosts[0].levels;
    assert_eq!(levels.len(), 2);
    assert_eq!(levels[0].agents[0].args["ip"], "10.0.0.101");
    assert_eq!(levels[1].agents.len(), 2);
    assert_eq!(levels[1].agents[1].args["ip"], "10.0.0.251");
    // The single-agent form is one level of one agent.
    let single = &config.fencing.hosts[1].levels;
    assert_eq!((single.len(), single[0].agents.len()), (1, 1));

    let errors = errors(&format!(
        "{MINIMAL}fencing:
  hosts:
    - pool: lab
      host: 10.0.0.1
      agent: fence_ipmilan
      levels: [{{agents: [{{agent: fence_ipmilan}}]}}]
    - pool: lab
      host: 10.0.0.2
      levels: []
    - pool: lab
      host: 10.0.0.3
      args: {{ip: 1}}
      levels:
        - agents: []
        - agents: [{{agent: 'fence ipmilan', args: {{password: x}}}}]
        - {{agnets: [{{agent: fence_ipmilan}}]}}
"
    ));
    assert_eq!(
        errors,
        [
            "f.yml:10:15: a fencing host has either `agent` (one agent) or `levels`, not both",
            "f.yml:13:15: `levels` must list at least one level",
            "f.yml:16:13: with `levels`, `args` and `password_file` belong to each level's agents",
            "f.yml:18:19: a fencing level's `agents` must list at least one agent",
            "f.yml:19:28: `agent` must be a program name such as `fence_ipmilan` or a path, got `fence ipmilan`",
            "f.yml:19:52: inline passwords are not allowed: put it in a file and set `password_file` instead of `password`",
            "f.yml:20:11: missing required key `agents` in a fencing level",
            "f.yml:20:12: unknown key `agnets` in a fencing level (did you mean `agents`?)",
        ]
    );
}
