//! Decodes the wire fixtures in `tests/fixtures/xapi/` (see its README.md) through the XML-RPC
//! codec and into typed records, and checks the facts xenguard depends on.

use std::collections::BTreeMap;
use std::path::PathBuf;

use xenguard::xapi::records::{
    EventBatch, EventOperation, Host, HostMetrics, NULL_REF, PowerState, Ref, Vdi, Vm,
};
use xenguard::xapi::typed::from_value;
use xenguard::xapi::wire::{
    Response, Value, decode_call, decode_response, encode_failure, encode_success,
};
use xenguard::xapi::{ErrorCode, Failure};

const HOST_1: &str = "OpaqueRef:5d0a1c2b-3e4f-4a5b-8c6d-7e8f9a0b1c2d";
const HOST_3: &str = "OpaqueRef:7f2c3e4d-5061-4c7d-8e8f-9a0b1c2d3e4f";
const SESSION: &str = "OpaqueRef:0b7c2f4e-6d1a-4b8e-9a33-2f1d5c7e8a90";
const RUNNING_VM: &str = "OpaqueRef:11111111-2222-4333-8444-555555555555";
const HALTED_VM: &str = "OpaqueRef:22222222-3333-4444-8555-666666666666";
const TASK: &str = "OpaqueRef:99999999-aaaa-4bbb-8ccc-dddddddddddd";

/// Every response fixture (all but the request).
pub(crate) const RESPONSES: &[&str] = &[
    "login_success.xml",
    "host_is_slave.xml",
    "session_invalid.xml",
    "auth_failed.xml",
    "emergency_host_still_booting.xml",
    "host_get_all_records.xml",
    "host_metrics_get_all_records.xml",
    "vm_get_all_records.xml",
    "vdi_get_all_records.xml",
    "event_from.xml",
    "vm_bad_power_state.xml",
    "sr_backend_failure_46.xml",
    "double_exponent.xml",
    "pretty_printed_response.xml",
];

fn fixture_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/xapi")
        .join(name)
}

fn fixture(name: &str) -> Vec<u8> {
    let path = fixture_path(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn response(name: &str) -> Response {
    decode_response(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn success(name: &str) -> Value {
    match response(name) {
        Response::Success(value) => value,
        other => panic!("{name}: expected Success, got {other:?}"),
    }
}

fn failure(name: &str) -> Failure {
    match response(name) {
        Response::Failure(description) => Failure::from_description(description),
        other => panic!("{name}: expected Failure, got {other:?}"),
    }
}

/// A `get_all_records` answer: a struct from reference to record, decoded member by member.
fn records<T: serde::de::DeserializeOwned>(name: &str) -> Vec<(Ref<T>, T)> {
    let Value::Struct(members) = success(name) else {
        panic!("{name}: get_all_records result is not a struct");
    };
    members
        .into_iter()
        .map(|(reference, record)| {
            let decoded = from_value(record).unwrap_or_else(|e| panic!("{name} {reference}: {e}"));
            (Ref::new(reference), decoded)
        })
        .collect()
}

fn find<'a, T>(rows: &'a [(Ref<T>, T)], reference: &str) -> &'a T {
    &rows
        .iter()
        .find(|(r, _)| r.as_str() == reference)
        .unwrap_or_else(|| panic!("no row {reference}"))
        .1
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}

/// The raw record of `reference` in a `get_all_records` answer.
fn raw_record(name: &str, reference: &str) -> Value {
    success(name)
        .member(reference)
        .unwrap_or_else(|| panic!("{name}: no record {reference}"))
        .clone()
}

#[test]
fn every_fixture_is_listed_and_decodes() {
    let dir = fixture_path("");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".xml"))
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = strings(RESPONSES);
    listed.push("login_request.xml".into());
    listed.sort();
    assert_eq!(on_disk, listed, "fixture directory and test list differ");

    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for name in &listed {
        assert!(
            readme.contains(name.as_str()),
            "README.md does not describe {name}"
        );
        if name.as_str() != "login_request.xml" {
            response(name);
        }
    }
}

#[test]
fn xapi_shaped_fixtures_are_one_line_without_typed_strings() {
    for name in RESPONSES {
        if *name == "pretty_printed_response.xml" {
            continue;
        }
        let body = String::from_utf8(fixture(name)).unwrap();
        assert!(
            body.starts_with("<?xml version=\"1.0\"?><methodResponse><params><param><value><struct><member><name>Status</name>"),
            "{name}: not xapi's envelope"
        );
        assert!(
            body.ends_with("</methodResponse>"),
            "{name}: trailing bytes"
        );
        assert!(!body.contains('\n'), "{name}: not one line");
        assert!(
            !body.contains("<string>"),
            "{name}: xapi never writes <string>"
        );
        assert!(!body.contains("<i8>"), "{name}: xapi never writes <i8>");
        if *name != "event_from.xml" {
            assert!(
                !body.contains("<i4>"),
                "{name}: <i4> only in valid_ref_counts"
            );
        }
    }
}

#[test]
fn login_success_is_a_session_ref() {
    let value = success("login_success.xml");
    assert_eq!(value, Value::string(SESSION));
    let session: Ref<()> = from_value(value).unwrap();
    assert!(!session.is_null());
    assert_eq!(session.as_str(), SESSION);
}

#[test]
fn login_request_as_the_python_sdk_sends_it() {
    let body = fixture("login_request.xml");
    assert!(body.starts_with(b"<?xml version='1.0'?>\n<methodCall>\n"));
    let call = decode_call(&body).unwrap();
    assert_eq!(call.method, "session.login_with_password");
    assert_eq!(
        call.params,
        vec![
            Value::string("root"),
            Value::string("s3cret"),
            Value::string("2.21"),
            Value::string("xenguard/0.1"),
        ]
    );
    // A request is not a response, and vice versa.
    assert!(decode_response(&body).is_err());
    assert!(decode_call(&fixture("login_success.xml")).is_err());
}

#[test]
fn host_is_slave_carries_the_master_address() {
    let f = failure("host_is_slave.xml");
    assert_eq!(f.code, ErrorCode::HostIsSlave);
    assert_eq!(f.params, strings(&["192.0.2.10"]));
    assert!(!f.code.is_emergency_mode_error());
}

#[test]
fn pretty_printed_failure_equals_the_compact_one() {
    assert_eq!(
        response("pretty_printed_response.xml"),
        response("host_is_slave.xml")
    );
    assert_eq!(
        response("pretty_printed_response.xml"),
        Response::Failure(strings(&["HOST_IS_SLAVE", "192.0.2.10"]))
    );
}

#[test]
fn session_invalid_names_the_session() {
    let f = failure("session_invalid.xml");
    assert_eq!(f.code, ErrorCode::SessionInvalid);
    assert_eq!(f.params, strings(&[SESSION]));
}

#[test]
fn authentication_failure_has_user_and_pam_message() {
    let f = failure("auth_failed.xml");
    assert_eq!(f.code, ErrorCode::SessionAuthenticationFailed);
    assert_eq!(f.params, strings(&["root", "Authentication failure"]));
    assert_eq!(
        f.to_string(),
        "SESSION_AUTHENTICATION_FAILED [root; Authentication failure]"
    );
}

#[test]
fn emergency_mode_error_has_no_params() {
    let f = failure("emergency_host_still_booting.xml");
    assert_eq!(f.code, ErrorCode::HostStillBooting);
    assert!(f.params.is_empty());
    assert!(f.code.is_emergency_mode_error());
}

#[test]
fn vm_bad_power_state_has_lower_case_states() {
    let f = failure("vm_bad_power_state.xml");
    assert_eq!(f.code, ErrorCode::VmBadPowerState);
    assert_eq!(f.params, strings(&[RUNNING_VM, "halted", "running"]));
}

#[test]
fn sr_backend_failure_46_keeps_empty_params() {
    let f = failure("sr_backend_failure_46.xml");
    assert_eq!(f.code, ErrorCode::SrBackendFailure46);
    assert_eq!(f.params.len(), 3);
    assert_eq!(f.params[0], "");
    assert_eq!(
        f.params[1],
        "The VDI is not available [opterr=VDI 7b6a5f4e-3d2c-4b1a-9f8e-7d6c5b4a3f2e not detached cleanly]"
    );
    assert_eq!(f.params[2], "");
}

#[test]
fn host_records() {
    let hosts: Vec<(Ref<Host>, Host)> = records("host_get_all_records.xml");
    assert_eq!(hosts.len(), 3);
    let names: Vec<&str> = hosts.iter().map(|(_, h)| h.name_label.as_str()).collect();
    assert_eq!(names, ["xcp-host-1", "xcp-host-2", "xcp-host-3"]);
    for (_, host) in &hosts {
        assert_eq!(host.api_version_major, 2);
        assert_eq!(host.api_version_minor, 21);
        assert!(host.enabled);
        assert_eq!(host.software_version["xapi_build"], "24.19.2");
        assert_eq!(host.software_version["product_brand"], "XCP-ng");
        assert!(!host.metrics.is_null());
        assert!(!host.control_domain.is_null());
        assert_eq!(host.hostname, host.name_label);
        assert!(host.current_operations.is_empty());
        assert_eq!(host.other_config["multipathing"], "false");
    }
    let master = find(&hosts, HOST_1);
    assert_eq!(master.address, "192.0.2.10");
    assert_eq!(
        master.metrics.as_str(),
        "OpaqueRef:9f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a"
    );
    assert_eq!(master.resident_vms.len(), 2);
    assert!(master.resident_vms.contains(&Ref::new(RUNNING_VM)));
    assert_eq!(master.pbds.len(), 2);
    // `power_on` is offered only for a host that is not live.
    let dead = find(&hosts, HOST_3);
    assert!(dead.allowed_operations.iter().any(|op| op == "power_on"));
    assert!(
        hosts
            .iter()
            .filter(|(r, _)| r.as_str() != HOST_3)
            .all(|(_, h)| !h.allowed_operations.iter().any(|op| op == "power_on"))
    );

    // On the wire, the int arrives as an untyped string; the future field is there but ignored.
    let raw = raw_record("host_get_all_records.xml", HOST_1);
    assert_eq!(raw.member("API_version_major"), Some(&Value::string("2")));
    assert_eq!(
        raw.member("memory_overhead"),
        Some(&Value::string("1179652096"))
    );
    assert_eq!(
        raw.member("last_software_update"),
        Some(&Value::DateTime("20250101T00:00:00Z".into()))
    );
    assert!(matches!(
        raw.member("field_from_xapi_2031"),
        Some(Value::Struct(_))
    ));
    let Value::Struct(fields) = &raw else {
        unreachable!()
    };
    assert!(fields.len() >= 40, "only {} fields", fields.len());

    // The same answer also decodes directly as a map keyed by typed refs.
    let by_ref: BTreeMap<Ref<Host>, Host> =
        from_value(success("host_get_all_records.xml")).unwrap();
    assert_eq!(by_ref.len(), 3);
    assert_eq!(by_ref[&Ref::new(HOST_3)].address, "192.0.2.12");
}

#[test]
fn host_metrics_records_and_the_dead_host() {
    let metrics: Vec<(Ref<HostMetrics>, HostMetrics)> = records("host_metrics_get_all_records.xml");
    assert_eq!(metrics.len(), 3);
    let dead: Vec<_> = metrics.iter().filter(|(_, m)| !m.live).collect();
    assert_eq!(dead.len(), 1);
    for (_, m) in &metrics {
        assert!(m.memory_total >= m.memory_free && m.memory_free > 0);
        assert!(m.other_config.is_empty());
    }
    let (_, first) = &metrics[0];
    assert_eq!(first.memory_total, 137_438_953_472);
    assert_eq!(first.last_updated.0, "20240611T08:15:02Z");

    // Join with host_get_all_records: the non-live row is xcp-host-3's.
    let hosts: Vec<(Ref<Host>, Host)> = records("host_get_all_records.xml");
    let host_of_dead_row = hosts
        .iter()
        .find(|(_, h)| h.metrics == dead[0].0)
        .expect("the dead metrics row belongs to a host");
    assert_eq!(host_of_dead_row.0.as_str(), HOST_3);
    assert_eq!(host_of_dead_row.1.name_label, "xcp-host-3");
    assert_eq!(dead[0].1.last_updated.0, "19700101T00:00:00Z");
    for (_, host) in &hosts {
        assert!(metrics.iter().any(|(r, _)| *r == host.metrics));
    }
}

#[test]
fn vm_records() {
    let vms: Vec<(Ref<Vm>, Vm)> = records("vm_get_all_records.xml");
    assert_eq!(vms.len(), 5);
    assert_eq!(vms.iter().filter(|(_, v)| v.is_guest()).count(), 2);
    assert_eq!(vms.iter().filter(|(_, v)| v.is_control_domain).count(), 1);
    assert_eq!(vms.iter().filter(|(_, v)| v.is_a_template).count(), 1);
    assert_eq!(vms.iter().filter(|(_, v)| v.is_a_snapshot).count(), 1);
    assert_eq!(
        vms.iter()
            .filter(|(_, v)| v.power_state == PowerState::Running)
            .count(),
        2
    );

    let running = find(&vms, RUNNING_VM);
    assert_eq!(running.name_label, "web-01");
    assert_eq!(running.power_state, PowerState::Running);
    assert_eq!(running.resident_on.as_str(), HOST_1);
    assert_eq!(running.affinity.as_str(), HOST_1);
    assert!(running.scheduled_to_be_resident_on.is_null());
    assert_eq!(running.domid, 7);
    assert_eq!(running.memory_static_max, 8_589_934_592);
    assert_eq!(running.memory_dynamic_max, 8_589_934_592);
    assert_eq!(running.vcpus_at_startup, 4);
    assert_eq!(running.ha_restart_priority, "restart");
    assert_eq!(running.order, 1);
    assert_eq!(running.start_delay, 30);
    assert_eq!(running.vbds.len(), 2);
    assert_eq!(running.current_operations[TASK], "clean_shutdown");
    assert!(
        running
            .allowed_operations
            .iter()
            .any(|o| o == "clean_shutdown")
    );
    // Escaped on the wire, plain after decoding.
    assert_eq!(running.other_config["folder"], "/prod/web & cache");
    assert_eq!(running.other_config["auto_poweron"], "true");

    let halted = find(&vms, HALTED_VM);
    assert_eq!(halted.power_state, PowerState::Halted);
    assert!(halted.resident_on.is_null());
    assert_eq!(halted.resident_on.as_str(), NULL_REF);
    assert_eq!(halted.domid, -1);
    assert_eq!(halted.ha_restart_priority, "best-effort");
    assert_eq!(halted.affinity.as_str(), HOST_3);

    let (_, dom0) = vms.iter().find(|(_, v)| v.is_control_domain).unwrap();
    assert_eq!(dom0.domid, 0);
    assert_eq!(dom0.power_state, PowerState::Running);
    assert_eq!(dom0.ha_restart_priority, "");

    let (_, template) = vms.iter().find(|(_, v)| v.is_a_template).unwrap();
    assert_eq!(template.power_state, PowerState::Halted);
    assert_eq!(template.other_config["default_template"], "true");

    // Fields the typed record does not keep, checked on the raw value.
    let raw = raw_record("vm_get_all_records.xml", RUNNING_VM);
    let map = |name: &str| -> BTreeMap<String, String> {
        from_value(raw.member(name).unwrap().clone()).unwrap()
    };
    assert_eq!(map("platform")["device-model"], "qemu-upstream-compat");
    assert!(map("platform").len() >= 10);
    assert_eq!(map("HVM_boot_params")["firmware"], "uefi");
    assert_eq!(
        map("blocked_operations")["destroy"],
        "Protected by xenguard <do not delete>"
    );
    assert_eq!(map("xenstore_data")["vm-data/mmio-hole-size"], "268435456");
    let recommendations = raw.member("recommendations").unwrap().as_str().unwrap();
    assert!(recommendations.starts_with("<restrictions><restriction field=\"memory-static-max\""));
    let last_booted = raw.member("last_booted_record").unwrap().as_str().unwrap();
    assert!(last_booted.contains("('name_label' 'web-01')"));
    assert_eq!(
        raw.member("HVM_shadow_multiplier"),
        Some(&Value::Double(1.0))
    );
    let snapshot = raw_record(
        "vm_get_all_records.xml",
        "OpaqueRef:44444444-5555-4666-8777-888888888888",
    );
    assert_eq!(
        snapshot.member("snapshot_of"),
        Some(&Value::string(RUNNING_VM))
    );
    assert_eq!(
        snapshot.member("snapshot_time"),
        Some(&Value::DateTime("20250310T22:00:05Z".into()))
    );
}

#[test]
fn vdi_attachment_tag_names_the_dead_host() {
    let vdis: Vec<(Ref<Vdi>, Vdi)> = records("vdi_get_all_records.xml");
    assert_eq!(vdis.len(), 1);
    let (_, vdi) = &vdis[0];
    let attached: Vec<(Ref<Host>, &str)> = vdi.attached_hosts().collect();
    assert_eq!(attached, vec![(Ref::new(HOST_3), "RW")]);
    assert_eq!(
        vdi.sm_config["vhd-parent"],
        "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"
    );
    assert_eq!(vdi.sm_config["vdi_type"], "vhd");
    assert_eq!(vdi.virtual_size, 34_359_738_368);
    assert!(!vdi.read_only && !vdi.sharable);
    assert_eq!(vdi.vbds.len(), 1);
    assert_eq!(
        vdi.sr.as_str(),
        "OpaqueRef:e0e0e0e0-0000-4000-8000-000000000001"
    );
}

#[test]
fn event_from_batch() {
    let value = success("event_from.xml");

    // valid_ref_counts: every table, every count an <i4>.
    let Some(Value::Struct(counts)) = value.member("valid_ref_counts") else {
        panic!("no valid_ref_counts struct");
    };
    assert!(counts.len() >= 60, "only {} tables", counts.len());
    assert!(counts.iter().all(|(_, v)| matches!(v, Value::Int(_))));
    let tables = counts.len();

    let batch: EventBatch = from_value(value).unwrap();
    assert_eq!(batch.token, "00000000000000004713,00000000000000000003");
    assert_eq!(batch.valid_ref_counts.len(), tables);
    assert_eq!(batch.valid_ref_counts["vm"], 143);
    assert_eq!(batch.valid_ref_counts["host"], 3);
    assert_eq!(batch.valid_ref_counts["host_metrics"], 3);
    assert_eq!(batch.valid_ref_counts["pool"], 1);
    assert_eq!(batch.valid_ref_counts["pgpu"], 0);

    let ops: Vec<&EventOperation> = batch.events.iter().map(|e| &e.operation).collect();
    assert_eq!(
        ops,
        [
            &EventOperation::Add,
            &EventOperation::Mod,
            &EventOperation::Del
        ]
    );
    let classes: Vec<&str> = batch.events.iter().map(|e| e.class.as_str()).collect();
    assert_eq!(classes, ["vm", "host_metrics", "vm"]);
    let ids: Vec<&str> = batch.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["4711", "4712", "4713"]);
    assert!(batch.events.iter().all(|e| e.timestamp == "0.0"));

    let added: Vm = from_value(
        batch.events[0]
            .snapshot
            .clone()
            .expect("add has a snapshot"),
    )
    .unwrap();
    assert_eq!(added.name_label, "web-02");
    assert_eq!(added.power_state, PowerState::Running);
    assert!(added.is_guest());

    let modified = &batch.events[1];
    let metrics: HostMetrics =
        from_value(modified.snapshot.clone().expect("mod has a snapshot")).unwrap();
    assert!(!metrics.live);
    assert_eq!(metrics.memory_total, 68_719_476_736);

    let deleted = &batch.events[2];
    assert_eq!(deleted.reference, HALTED_VM);
    assert_eq!(deleted.snapshot, None);
}

#[test]
fn doubles_with_c_style_exponents() {
    let value = success("double_exponent.xml");
    assert_eq!(
        value,
        Value::Struct(vec![
            ("huge".into(), Value::Double(1e20)),
            ("zero".into(), Value::Double(0.0)),
            ("tiny".into(), Value::Double(-2.5e-7)),
        ])
    );
    let typed: BTreeMap<String, f64> = from_value(value).unwrap();
    assert_eq!(typed["tiny"], -2.5e-7);
}

/// decode → encode → decode gives the same value, for every response fixture.
#[test]
fn re_encoding_round_trips() {
    for name in RESPONSES {
        let first = response(name);
        let body = match &first {
            Response::Success(value) => encode_success(value),
            Response::Failure(description) => encode_failure(&description[0], &description[1..]),
            Response::Fault { .. } => panic!("{name}: unexpected fault"),
        };
        let second =
            decode_response(body.as_bytes()).unwrap_or_else(|e| panic!("{name} re-encoded: {e}"));
        assert_eq!(second, first, "{name}: value changed through the encoder");
    }
}

/// The encoder is shared with the simulator and must write what xapi writes: for fixtures
/// without non-integral doubles the re-encoded body is byte-identical.
#[test]
fn re_encoding_is_byte_identical_to_xapi() {
    for name in RESPONSES {
        if matches!(
            *name,
            "pretty_printed_response.xml" | "double_exponent.xml" | "host_get_all_records.xml"
        ) {
            continue; // formatting differs (pretty-printed), or doubles: see the ignored test.
        }
        let original = String::from_utf8(fixture(name)).unwrap();
        let body = match response(name) {
            Response::Success(value) => encode_success(&value),
            Response::Failure(description) => encode_failure(&description[0], &description[1..]),
            Response::Fault { .. } => unreachable!(),
        };
        assert_eq!(body, original, "{name}: encoder output differs from xapi's");
    }
}

/// xapi prints doubles with `%.16g` (xapi-notes.md §1.2): `1e+20`, `0`, `-2.5e-07`, `0.5`.
#[test]
fn doubles_are_encoded_like_printf_16g() {
    let original = String::from_utf8(fixture("double_exponent.xml")).unwrap();
    assert_eq!(encode_success(&success("double_exponent.xml")), original);
    let half = encode_success(&Value::Double(0.5));
    assert!(half.contains("<double>0.5</double>"), "{half}");
}
