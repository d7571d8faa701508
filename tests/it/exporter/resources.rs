//! Resource metrics from every host's `/rrd_updates`: the series follow the ground truth, and a
//! pool chooses its families.

use super::*;

/// A pool's `resource_metrics` deny list removes families (a prefix pattern takes every guest
/// family) and `unknown_sources: generic` publishes what the mapping does not know.
#[tokio::test]
async fn a_pool_chooses_its_resource_families() {
    let sim = start_sim(2, 2).await;
    let h = harness_with(
        sim,
        "    resource_metrics: {deny: [\"xen_vm_*\", xen_host_cpu_busy_seconds_total], unknown_sources: generic}\n",
        "  rrd_interval_seconds: 1\n",
    );
    // The simulator's hosts report `xapi_open_fds`, which the mapping does not know.
    let fds = format!(
        "xen_host_rrd_value{{pool=\"sim\",host_uuid=\"{}\",source=\"xapi_open_fds\"}}",
        h.host_uuid(0)
    );
    let deadline = Instant::now() + Duration::from_secs(90);
    while h.value(&fds).is_none() {
        assert!(Instant::now() < deadline, "{}", h.exporter.render());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = h.exporter.render();
    let samples = |prefix: &str| text.lines().filter(|l| l.starts_with(prefix)).count();
    assert_eq!(samples("xen_host_memory_free_bytes{"), 2, "{text}");
    assert_eq!(samples("xen_host_cpu_utilization_ratio{"), 2, "{text}");
    assert_eq!(samples("xen_host_cpu_busy_seconds_total{"), 0, "denied");
    for family in [
        "xen_vm_cpu_busy_seconds_total{",
        "xen_vm_memory_bytes{",
        "xen_vm_rrd_value{",
    ] {
        assert_eq!(samples(family), 0, "{family} is denied by xen_vm_*");
    }
    // The pool's other series are not resource families: untouched.
    assert!(samples("xen_vm_info{") > 0);
    promtool_check(&text);
}

/// A `resource_metrics` pattern that matches no family is a typo: the exporter refuses to start.
#[test]
fn a_resource_pattern_that_names_no_family_stops_the_exporter() {
    let yaml = "pools:\n  - name: sim\n    hosts: [127.0.0.1]\n    password_env: XENGUARD_TEST_UNUSED\n    resource_metrics: {deny: [xen_vm_cpu_seconds_total]}\n";
    let config = xenguard::config::parse(yaml, "test.yml").unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let error = runtime
        .block_on(async { Exporter::start(&config).map(|_| ()) })
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("xen_vm_cpu_seconds_total")
            && error.contains("matches no resource metric family"),
        "{error}"
    );
}

/// Resource metrics from every host's `/rrd_updates`: the host's and its guests' series,
/// counters that only grow and follow a migrated guest, gauges in bytes, and a dead host's
/// `xen_host_rrd_up` at 0 while its series expire; the exposition passes promtool.
#[tokio::test]
async fn resource_metrics_follow_the_hosts_and_guests() {
    let sim = start_sim(3, 2).await;
    let h = harness_with(sim, "", "  rrd_interval_seconds: 1\n");
    let host = |i: usize| h.host_uuid(i);
    h.expect(
        &format!("xen_host_rrd_up{{pool=\"sim\",host_uuid=\"{}\"}}", host(0)),
        1.0,
    )
    .await;
    h.expect(
        &format!(
            "xen_host_memory_total_bytes{{pool=\"sim\",host_uuid=\"{}\"}}",
            host(1)
        ),
        (256u64 << 30) as f64,
    )
    .await;
    let guest = common::guests_on(&h.sim, "host1")[0].clone();
    let memory = format!("xen_vm_memory_bytes{{pool=\"sim\",vm_uuid=\"{guest}\"}}");
    h.expect(&memory, (2u64 << 30) as f64).await;
    let busy =
        format!("xen_vm_cpu_busy_seconds_total{{pool=\"sim\",vm_uuid=\"{guest}\",vcpu=\"0\"}}");
    let first = h.value(&busy).expect("the guest's CPU counter");
    // Storage: each host's SR sources name the SR by 8 characters; they come out under the
    // SR's full uuid. Sources the mapping does not know are dropped by default.
    let reader = xenguard::xapi::PoolReader::new(std::sync::Arc::new(common::session(&h.sim)));
    let srs = reader.all::<xenguard::xapi::records::Sr>().await.unwrap();
    let shared = srs.iter().find(|(_, sr)| sr.shared).unwrap().1.uuid.clone();
    let sr_read = format!(
        "xen_host_sr_read_bytes_total{{pool=\"sim\",host_uuid=\"{}\",sr_uuid=\"{shared}\"}}",
        host(0)
    );
    assert!(h.value(&sr_read).is_some_and(|v| v > 0.0), "{sr_read}");
    let text = h.exporter.render();
    assert!(!text.contains("xen_host_rrd_value{"), "{text}");
    promtool_check(&text);
    // Each host closes the connection after every answer (as xcp-rrdd does): round after round
    // must still read every host.
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        for i in 0..3 {
            let up = h.host("xen_host_rrd_up", i);
            assert_eq!(h.value(&up), Some(1.0), "{up}");
        }
    }

    // The guest moves to host2: its series go on, from host2, and its counter keeps growing.
    let session = std::sync::Arc::new(common::session(&h.sim));
    let reader = xenguard::xapi::PoolReader::new(session.clone());
    let hosts = reader.all::<xenguard::xapi::records::Host>().await.unwrap();
    let reference = |name: &str| {
        hosts
            .iter()
            .find(|(_, r)| r.name_label == name)
            .unwrap()
            .0
            .clone()
    };
    let moved = common::migrate_a_guest(&session, &reference("host1"), &reference("host2")).await;
    let moved_busy = format!(
        "xen_vm_cpu_busy_seconds_total{{pool=\"sim\",vm_uuid=\"{}\",vcpu=\"0\"}}",
        moved.uuid
    );
    let before = h.value(&moved_busy).expect("the moved guest's counter");
    // The simulated clock stands still in tests: ten seconds are two new rows.
    h.control("/clock/advance", json!({"seconds": 10})).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.value(&moved_busy).is_none_or(|v| v <= before) {
        assert!(
            Instant::now() < deadline,
            "the moved guest's counter stopped at {before}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(h.value(&busy).unwrap() >= first);

    // host3 loses power: no answers, `xen_host_rrd_up` 0, its series expire.
    h.control("/hosts/host3/power", json!({"state": "off"}))
        .await;
    h.expect(
        &format!("xen_host_rrd_up{{pool=\"sim\",host_uuid=\"{}\"}}", host(2)),
        0.0,
    )
    .await;
    let total = format!(
        "xen_host_memory_total_bytes{{pool=\"sim\",host_uuid=\"{}\"}}",
        host(2)
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while h.value(&total).is_some() {
        assert!(Instant::now() < deadline, "host3's series never expired");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
