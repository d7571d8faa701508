//! `pools`: TLS verification and pins, and the choice of resource metric families.

use super::*;

#[test]
fn tls_pins_are_normalised_and_checked() {
    let lower = "ab".repeat(32);
    let config = ok(&format!(
        "\
pools:
  - name: a
    hosts: [xen1.example.com, 10.0.0.2]
    password_file: /p
    tls:
      ca_file: /etc/ca.pem
      pins:
        XEN1.example.com.: \"{lower}\"
        10.0.0.2: \"{}\"
",
        vec!["0f"; 32].join(":")
    ));
    let pins = &config.pools[0].tls.pins;
    assert_eq!(pins["xen1.example.com"], vec!["AB"; 32].join(":"));
    assert_eq!(pins["10.0.0.2"], vec!["0F"; 32].join(":"));

    let errors = errors(&format!(
        "\
pools:
  - name: a
    hosts: [h1]
    password_file: /p
    tls:
      insecure_skip_verify: true
      pins:
        h2: {lower}
        h1: abc
"
    ));
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(errors[0].starts_with("f.yml:6:29: `insecure_skip_verify: true` contradicts"));
    assert!(errors[1].starts_with("f.yml:8:9: pin for `h2`, which is not in pool `a`'s `hosts`"));
    assert!(errors[2].starts_with("f.yml:9:13: pin for `h1` is not a SHA-256 fingerprint"));
}

#[test]
fn tls_with_plain_http_and_insecure_warning() {
    let errors = errors(
        "\
pools:
  - name: a
    scheme: http
    hosts: [h1]
    password_file: /p
    tls: {ca_file: /ca.pem}
",
    );
    assert_eq!(errors.len(), 1);
    assert!(errors[0].starts_with("f.yml:6:10: pool `a` uses `scheme: http`"));

    let text = "\
pools:
  - name: a
    hosts: [h1]
    password_file: /p
    tls: {insecure_skip_verify: true}
";
    assert!(ok(text).pools[0].tls.insecure_skip_verify);
    assert_eq!(
        warnings(text),
        ["f.yml:5:33: warning: pool `a` skips TLS certificate verification"]
    );
}

#[test]
fn resource_metric_lists_are_read_and_misspelt_patterns_pointed_at() {
    let config = ok(&format!(
        "{MINIMAL}    resource_metrics:\n      allow: [xen_host_*, xen_vm_memory_bytes]\n      deny: [xen_host_sr_*]\n      unknown_sources: generic\n"
    ));
    let r = &config.pools[0].resource_metrics;
    assert_eq!(
        r.allow.as_deref(),
        Some(&["xen_host_*".to_owned(), "xen_vm_memory_bytes".to_owned()][..])
    );
    assert_eq!(r.deny, ["xen_host_sr_*"]);
    assert_eq!(r.unknown_sources, UnknownSources::Generic);
    assert!(r.publishes("xen_host_cpu_utilization_ratio"));
    assert!(!r.publishes("xen_host_sr_read_bytes_total"));
    assert!(!r.publishes("xen_vm_cpu_busy_seconds_total"));
    assert_prefixes(
        &errors(&format!(
            "{MINIMAL}    resource_metrics:\n      deny: [\"xen_vm_*_total\", \"*\"]\n      unknown_sources: all\n"
        )),
        &[
            "f.yml:6:14: `deny`: `xen_vm_*_total` is not a metric family name",
            "f.yml:6:32: `deny`: `*` is not a metric family name",
            "f.yml:7:24: unknown variant `all`, expected `drop` or `generic`",
        ],
    );
    assert!(
        warnings(&format!(
            "{MINIMAL}    resource_metrics:\n      allow: []\n"
        ))
        .iter()
        .any(|w| w.contains("no resource metrics are published")),
    );
}
