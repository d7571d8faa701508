//! Decoding throughput of a large `VM.get_all_records` answer (xapi-notes.md §4.2, §5.1, §7.3).
//!
//! Builds a deterministic answer for 5,000 VMs of about 100 fields each, encodes it with
//! `wire::encode_success` (one line, as xapi writes it), writes the body to
//! `$CARGO_TARGET_DIR/xenguard-bench/vm_get_all_records_5000.xml` (default `target/`) so other
//! decoders can be measured on the same bytes, then measures:
//!
//! * `decode_value`: `wire::decode_response` alone (body → `Value` tree; freeing the tree is
//!   outside the timed section);
//! * `decode_value_and_drop`: the same, including freeing the tree (what a client pays);
//! * `decode_typed`: decode plus conversion of every record into `Vec<(Ref<Vm>, Vm)>` (the
//!   conversion consumes and frees the tree as it goes; the final `Vec` is freed untimed).
//!
//! Run with `cargo bench --bench decode`; criterion reports throughput in MiB/s.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::Duration;

use criterion::{BatchSize, Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use xenguard::xapi::records::{Ref, Vm};
use xenguard::xapi::typed::from_value;
use xenguard::xapi::wire::{Response, Value, decode_response, encode_success, encode_value};

const VMS: usize = 5_000;

/// SplitMix64: a deterministic stream of pseudo-random numbers derived from the index.
fn mix(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A UUID-shaped string derived from `(kind, index)`.
fn uuid(kind: u64, index: usize) -> String {
    let a = mix(kind.wrapping_mul(1_000_003) ^ index as u64);
    let b = mix(a);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

fn opaque(kind: u64, index: usize) -> Value {
    Value::String(format!("OpaqueRef:{}", uuid(kind, index)))
}

fn s(text: &str) -> Value {
    Value::string(text)
}

/// XAPI `int`: an untyped digit string on the wire.
fn int(n: i64) -> Value {
    Value::String(n.to_string())
}

fn boolean(b: bool) -> Value {
    Value::Bool(b)
}

fn array(items: impl IntoIterator<Item = Value>) -> Value {
    Value::Array(items.into_iter().collect())
}

fn map<'a>(pairs: impl IntoIterator<Item = (&'a str, String)>) -> Value {
    Value::Struct(
        pairs
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect(),
    )
}

const NULL: &str = "OpaqueRef:NULL";

// Reference kinds (salts for `opaque`).
const K_VM: u64 = 1;
const K_HOST: u64 = 2;
const K_VBD: u64 = 3;
const K_VIF: u64 = 4;
const K_CONSOLE: u64 = 5;
const K_METRICS: u64 = 6;
const K_GUEST_METRICS: u64 = 7;
const K_TASK: u64 = 8;
const K_SR: u64 = 9;
const K_VM_UUID: u64 = 10;

const TEMPLATES: &[&str] = &[
    "Debian Bookworm 12",
    "Rocky Linux 9",
    "Ubuntu Noble Numbat 24.04",
    "Windows Server 2022 (64-bit)",
    "CentOS Stream 9",
    "Windows 11",
];

/// `last_booted_record` as modern xapi stores it: the VM record serialised as XML-RPC, so on the
/// wire it is one long string full of escaped markup.
fn last_booted_record(i: usize, name: &str, memory: i64, vcpus: i64) -> String {
    let record = Value::Struct(vec![
        ("uuid".into(), Value::String(uuid(K_VM_UUID, i))),
        ("name_label".into(), s(name)),
        ("name_description".into(), s("")),
        ("power_state".into(), s("Halted")),
        ("user_version".into(), int(1)),
        ("is_a_template".into(), boolean(false)),
        ("memory_static_max".into(), int(memory)),
        ("memory_dynamic_max".into(), int(memory)),
        ("memory_dynamic_min".into(), int(memory)),
        ("memory_static_min".into(), int(memory / 4)),
        ("VCPUs_max".into(), int(vcpus)),
        ("VCPUs_at_startup".into(), int(vcpus)),
        ("actions_after_shutdown".into(), s("destroy")),
        ("actions_after_reboot".into(), s("restart")),
        ("actions_after_crash".into(), s("restart")),
        ("HVM_boot_policy".into(), s("BIOS order")),
        (
            "HVM_boot_params".into(),
            map([("order", "cdn".into()), ("firmware", "uefi".into())]),
        ),
        ("platform".into(), platform(i)),
        (
            "other_config".into(),
            map([
                ("base_template_name", TEMPLATES[i % TEMPLATES.len()].into()),
                ("install-methods", "cdrom,nfs,http,ftp".into()),
            ]),
        ),
        ("domid".into(), int(-1)),
        ("is_control_domain".into(), boolean(false)),
        ("ha_restart_priority".into(), s("")),
        (
            "VBDs".into(),
            array((0..2).map(|d| opaque(K_VBD, i * 8 + d))),
        ),
        ("VIFs".into(), array([opaque(K_VIF, i * 8)])),
    ]);
    let mut out = String::with_capacity(4096);
    encode_value(&mut out, &record);
    out
}

fn platform(i: usize) -> Value {
    map([
        ("timeoffset", "0".into()),
        ("device-model", "qemu-upstream-compat".into()),
        ("viridian", (i % 6 == 3).to_string()),
        ("acpi", "1".into()),
        ("apic", "true".into()),
        ("pae", "true".into()),
        ("nx", "true".into()),
        ("hpet", "true".into()),
        ("vga", "std".into()),
        ("videoram", "8".into()),
        ("secureboot", "false".into()),
        ("device_id", "0001".into()),
        ("cores-per-socket", "2".into()),
    ])
}

const RECOMMENDATIONS: &str = "<restrictions><restriction field=\"memory-static-max\" max=\"137438953472\" /><restriction field=\"vcpus-max\" max=\"32\" /><restriction property=\"number-of-vbds\" max=\"255\" /><restriction property=\"number-of-vifs\" max=\"7\" /><restriction field=\"has-vendor-device\" value=\"false\" /><restriction field=\"allow-gpu-passthrough\" value=\"1\" /><restriction field=\"allow-vgpu\" value=\"1\" /></restrictions>";

/// One VM record; the mix of running guests, halted guests, templates, snapshots and control
/// domains is derived from the index.
fn vm_record(i: usize) -> Value {
    let r = mix(i as u64);
    let kind = i % 20;
    let control = kind == 0;
    let template = kind == 1 || kind == 2;
    let snapshot = kind == 3;
    let running = control || (!template && !snapshot && r % 10 < 7);
    let power = if running {
        "Running"
    } else if r.is_multiple_of(97) {
        "Suspended"
    } else {
        "Halted"
    };
    let name = if control {
        format!("Control domain on host: xcp-host-{}", i % 16)
    } else if template {
        TEMPLATES[i % TEMPLATES.len()].to_owned()
    } else {
        format!(
            "vm-{i:05}-{}",
            ["web", "db", "cache", "build", "mail"][(r % 5) as usize]
        )
    };
    let memory: i64 = [1, 2, 4, 8, 16, 32][(r >> 8) as usize % 6] << 30;
    let vcpus = [1, 2, 4, 8][(r >> 16) as usize % 4];
    let host = opaque(K_HOST, (r >> 24) as usize % 16);
    let resident = if running { host.clone() } else { s(NULL) };
    let vbds = (r >> 32) as usize % 4 + 1;
    let vifs = (r >> 36) as usize % 3;
    let mut other = vec![
        (
            "base_template_name",
            TEMPLATES[i % TEMPLATES.len()].to_owned(),
        ),
        ("mac_seed", uuid(K_TASK + 100, i)),
        ("install-methods", "cdrom,nfs,http,ftp".to_owned()),
        ("linux_template", (!i.is_multiple_of(3)).to_string()),
        ("auto_poweron", r.is_multiple_of(2).to_string()),
        ("import_task", format!("OpaqueRef:{}", uuid(K_TASK, i))),
        ("xo:resource:namespace", format!("tenant-{} & co", r % 7)),
        ("folder", format!("/prod/{}", r % 13)),
    ];
    if template {
        other.push((
            "disks",
            "<provision><disk device=\"0\" size=\"10737418240\" sr=\"\" bootable=\"true\" type=\"system\"/></provision>".to_owned(),
        ));
    }
    let current_operations = if r % 50 == 1 {
        Value::Struct(vec![(
            format!("OpaqueRef:{}", uuid(K_TASK + 1, i)),
            s("clean_shutdown"),
        )])
    } else {
        map([])
    };
    let allowed: &[&str] = if running {
        &[
            "pool_migrate",
            "migrate_send",
            "changing_dynamic_range",
            "clean_shutdown",
            "clean_reboot",
            "hard_shutdown",
            "hard_reboot",
            "suspend",
            "pause",
            "snapshot",
            "checkpoint",
        ]
    } else {
        &[
            "start",
            "start_on",
            "export",
            "copy",
            "clone",
            "snapshot",
            "destroy",
            "changing_memory_limits",
            "changing_static_range",
            "make_into_template",
        ]
    };
    let fields: Vec<(&str, Value)> = vec![
        ("uuid", Value::String(uuid(K_VM_UUID, i))),
        ("allowed_operations", array(allowed.iter().map(|o| s(o)))),
        ("current_operations", current_operations),
        ("name_label", Value::String(name.clone())),
        (
            "name_description",
            s(if template {
                "To use this template from the CLI, install your VM using vm-install"
            } else {
                ""
            }),
        ),
        ("power_state", s(power)),
        ("user_version", int(1)),
        ("is_a_template", boolean(template)),
        ("is_default_template", boolean(template)),
        ("suspend_VDI", s(NULL)),
        ("resident_on", resident),
        ("scheduled_to_be_resident_on", s(NULL)),
        ("affinity", if r.is_multiple_of(4) { host } else { s(NULL) }),
        ("memory_overhead", int(if running { 37_748_736 } else { 0 })),
        ("memory_target", int(if running { memory } else { 0 })),
        ("memory_static_max", int(memory)),
        ("memory_dynamic_max", int(memory)),
        ("memory_dynamic_min", int(memory)),
        ("memory_static_min", int(memory / 4)),
        (
            "VCPUs_params",
            map([("weight", "256".to_owned()), ("cap", "0".to_owned())]),
        ),
        ("VCPUs_max", int(vcpus)),
        ("VCPUs_at_startup", int(vcpus)),
        ("actions_after_softreboot", s("soft_reboot")),
        ("actions_after_shutdown", s("destroy")),
        ("actions_after_reboot", s("restart")),
        ("actions_after_crash", s("restart")),
        ("consoles", array(running.then(|| opaque(K_CONSOLE, i)))),
        ("VIFs", array((0..vifs).map(|n| opaque(K_VIF, i * 8 + n)))),
        ("VBDs", array((0..vbds).map(|n| opaque(K_VBD, i * 8 + n)))),
        ("VUSBs", array([])),
        ("crash_dumps", array([])),
        ("VTPMs", array([])),
        ("PV_bootloader", s("")),
        ("PV_kernel", s("")),
        ("PV_ramdisk", s("")),
        ("PV_args", s("")),
        ("PV_bootloader_args", s("")),
        ("PV_legacy_args", s("")),
        (
            "HVM_boot_policy",
            s(if control { "" } else { "BIOS order" }),
        ),
        (
            "HVM_boot_params",
            map([
                ("order", "cdn".to_owned()),
                (
                    "firmware",
                    if r.is_multiple_of(3) { "bios" } else { "uefi" }.to_owned(),
                ),
            ]),
        ),
        ("HVM_shadow_multiplier", Value::Double(1.0)),
        ("platform", platform(i)),
        ("PCI_bus", s("")),
        ("other_config", map(other)),
        (
            "domid",
            int(if running { (i % 4000) as i64 + 1 } else { -1 }),
        ),
        ("domarch", s("")),
        (
            "last_boot_CPU_flags",
            if running {
                map([("vendor", "GenuineIntel".to_owned()), ("features", "1fcbfbff-f7fa3223-2d93fbff-00000523-0000000f-01dc0fbb-00000000-00000000-00101000-bc000400".to_owned())])
            } else {
                map([])
            },
        ),
        ("is_control_domain", boolean(control)),
        ("metrics", opaque(K_METRICS, i)),
        (
            "guest_metrics",
            if running {
                opaque(K_GUEST_METRICS, i)
            } else {
                s(NULL)
            },
        ),
        (
            "last_booted_record",
            if template {
                s("")
            } else {
                Value::String(last_booted_record(i, &name, memory, vcpus))
            },
        ),
        (
            "recommendations",
            s(if control { "" } else { RECOMMENDATIONS }),
        ),
        (
            "xenstore_data",
            map([
                ("vm-data", String::new()),
                ("vm-data/mmio-hole-size", "268435456".to_owned()),
            ]),
        ),
        ("ha_always_run", boolean(false)),
        (
            "ha_restart_priority",
            s(["", "restart", "best-effort"][(r >> 40) as usize % 3]),
        ),
        ("is_a_snapshot", boolean(snapshot)),
        (
            "snapshot_of",
            if snapshot {
                opaque(K_VM, i - 1)
            } else {
                s(NULL)
            },
        ),
        ("snapshots", array([])),
        (
            "snapshot_time",
            Value::DateTime(
                if snapshot {
                    "20250310T22:00:05Z"
                } else {
                    "19700101T00:00:00Z"
                }
                .to_owned(),
            ),
        ),
        ("transportable_snapshot_id", s("")),
        ("blobs", map([])),
        (
            "tags",
            array(
                ["prod", "backup-daily"]
                    .iter()
                    .take((r >> 44) as usize % 3)
                    .map(|t| s(t)),
            ),
        ),
        (
            "blocked_operations",
            if r.is_multiple_of(9) {
                map([("destroy", "Protected <do not delete>".to_owned())])
            } else {
                map([])
            },
        ),
        ("snapshot_info", map([])),
        ("snapshot_metadata", s("")),
        ("parent", s(NULL)),
        ("children", array([])),
        (
            "bios_strings",
            map([
                ("bios-vendor", "Xen".to_owned()),
                ("bios-version", String::new()),
                ("system-manufacturer", "Xen".to_owned()),
                ("system-product-name", "HVM domU".to_owned()),
                ("system-version", String::new()),
                ("system-serial-number", String::new()),
                ("enclosure-asset-tag", String::new()),
                ("hp-rombios", String::new()),
                ("oem-1", "Xen".to_owned()),
                (
                    "oem-2",
                    "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d".to_owned(),
                ),
            ]),
        ),
        ("protection_policy", s(NULL)),
        ("is_snapshot_from_vmpp", boolean(false)),
        ("snapshot_schedule", s(NULL)),
        ("is_vmss_snapshot", boolean(false)),
        ("appliance", s(NULL)),
        ("start_delay", int((r >> 48) as i64 % 4 * 10)),
        ("shutdown_delay", int(0)),
        ("order", int((r >> 52) as i64 % 5)),
        ("VGPUs", array([])),
        ("attached_PCIs", array([])),
        (
            "suspend_SR",
            if power == "Suspended" {
                opaque(K_SR, 0)
            } else {
                s(NULL)
            },
        ),
        ("version", int(0)),
        ("generation_id", s(if template { "" } else { "0:0" })),
        ("hardware_platform_version", int(2)),
        ("has_vendor_device", boolean(false)),
        ("requires_reboot", boolean(false)),
        (
            "reference_label",
            s(if template { "debian-12" } else { "" }),
        ),
        ("domain_type", s(if control { "pv" } else { "hvm" })),
        ("NVRAM", map([])),
        ("pending_guidances", array([])),
        ("pending_guidances_recommended", array([])),
        ("pending_guidances_full", array([])),
        ("groups", array([])),
    ];
    Value::Struct(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

/// The answer for `vms` VMs, encoded one record at a time: the same bytes as encoding the whole
/// struct at once (checked in `bench`), without building and freeing a 5,000-record tree first.
/// That tree would leave the allocator's free lists fragmented for the measurements that follow,
/// a cost the harness would add and no client pays.
fn build_answer(vms: usize) -> (String, usize) {
    let empty = encode_success(&Value::Struct(Vec::new()));
    let (head, tail) = empty.split_at(empty.find("</struct></value></member>").expect("envelope"));
    let mut out = String::from(head);
    let mut fields = 0;
    for i in 0..vms {
        let Value::String(reference) = opaque(K_VM, i) else {
            unreachable!()
        };
        let record = vm_record(i);
        if let Value::Struct(members) = &record {
            fields = fields.max(members.len());
        }
        out.push_str("<member><name>");
        out.push_str(&reference);
        out.push_str("</name>");
        encode_value(&mut out, &record);
        out.push_str("</member>");
    }
    out.push_str(tail);
    (out, fields)
}

/// The same answer built as one tree and encoded at once (only for a few records).
fn build_answer_as_tree(vms: usize) -> String {
    let records: Vec<(String, Value)> = (0..vms)
        .map(|i| {
            let Value::String(reference) = opaque(K_VM, i) else {
                unreachable!()
            };
            (reference, vm_record(i))
        })
        .collect();
    encode_success(&Value::Struct(records))
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"))
}

fn decode_typed(body: &[u8]) -> Vec<(Ref<Vm>, Vm)> {
    let Ok(Response::Success(Value::Struct(members))) = decode_response(body) else {
        panic!("not a successful struct answer");
    };
    members
        .into_iter()
        .map(|(reference, record)| (Ref::new(reference), from_value(record).expect("VM record")))
        .collect()
}

fn decode_streaming(body: &[u8]) -> BTreeMap<String, Vm> {
    xenguard::xapi::stream::decode_response_into(body)
        .expect("decodes")
        .expect("success")
}

fn bench(c: &mut Criterion) {
    assert_eq!(build_answer(7).0, build_answer_as_tree(7));
    let (body, fields) = build_answer(VMS);
    let dir = target_dir().join("xenguard-bench");
    std::fs::create_dir_all(&dir).expect("create the bench output directory");
    let path = dir.join(format!("vm_get_all_records_{VMS}.xml"));
    std::fs::write(&path, &body).expect("write the bench body");
    println!(
        "body: {} bytes, {VMS} VMs, {fields} fields per record ({})",
        body.len(),
        path.display()
    );

    // Sanity: the body decodes and every record converts (the tree path is checked on a few
    // records only, for the same reason the body is built record by record).
    let vms = decode_streaming(body.as_bytes());
    assert_eq!(vms.len(), VMS);
    assert_eq!(
        vms.values().filter(|vm| vm.is_guest()).count(),
        VMS * 16 / 20
    );
    drop(vms);
    let few = build_answer(20).0;
    let typed: BTreeMap<String, Vm> = decode_typed(few.as_bytes())
        .into_iter()
        .map(|(reference, vm)| (reference.as_str().to_owned(), vm))
        .collect();
    assert_eq!(typed, decode_streaming(few.as_bytes()));

    let bytes = body.into_bytes();
    let mut group = c.benchmark_group("vm_get_all_records_5000");
    group
        .throughput(Throughput::BytesDecimal(bytes.len() as u64))
        .sample_size(20)
        .measurement_time(Duration::from_secs(15))
        .sampling_mode(SamplingMode::Flat);
    // The result is dropped outside the timed section (one at a time, so memory stays bounded);
    // `decode_value_and_drop` shows what freeing the tree adds.
    group.bench_function("decode_value", |b| {
        b.iter_batched(
            || (),
            |()| decode_response(black_box(&bytes)).expect("decodes"),
            BatchSize::PerIteration,
        );
    });
    group.bench_function("decode_value_and_drop", |b| {
        b.iter(|| {
            decode_response(black_box(&bytes)).expect("decodes");
        });
    });
    group.bench_function("decode_typed", |b| {
        b.iter_batched(
            || (),
            |()| decode_typed(black_box(&bytes)),
            BatchSize::PerIteration,
        );
    });
    // What the client does: decode straight into typed records, no Value tree.
    group.bench_function("decode_streaming_typed", |b| {
        b.iter_batched(
            || (),
            |()| decode_streaming(black_box(&bytes)),
            BatchSize::PerIteration,
        );
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
