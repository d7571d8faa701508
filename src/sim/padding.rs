//! Wire padding: the fields real xapi records carry that the simulator's typed records do not
//! (xapi-notes.md §4.2, §5.1, §7.3), so that answers have the size and shape clients meet in
//! production. The database encodes every record through [`WireRecord`].

use std::collections::BTreeSet;
use std::sync::OnceLock;

use serde::Serialize;

use super::db::Db;
use crate::xapi::records::{
    Host, HostMetrics, NULL_REF, Pbd, Pool, PowerState, Sr, Task, Vbd, Vdi, Vm,
};
use crate::xapi::typed::{DateTime, to_value};
use crate::xapi::wire::Value;

/// A record as the database stores it. [`WireRecord::pad`] appends, after the typed fields, the
/// wire fields real xapi writes that the typed struct does not carry, with values as xapi writes
/// them: ints as digit strings, maps as structs, unset refs `OpaqueRef:NULL`, datetimes,
/// enums in their declared case. A typed field always wins over padding of the same name.
pub trait WireRecord: Serialize {
    /// Appends the untyped wire fields of this record to its typed members.
    fn pad(&self, _db: &Db, _members: &mut Vec<(String, Value)>) {}
}

impl WireRecord for Pool {}
impl WireRecord for HostMetrics {}
impl WireRecord for Vbd {}
impl WireRecord for Vdi {}
impl WireRecord for Sr {}
impl WireRecord for Pbd {}
impl WireRecord for Task {}

impl WireRecord for Vm {
    fn pad(&self, _db: &Db, members: &mut Vec<(String, Value)>) {
        let kind = VmKind::of(self);
        let padding = VM_PADDING[kind as usize].get_or_init(|| Padding::new::<Vm>(vm_fixed(kind)));
        padding.apply(members, vm_varying(self, kind));
    }
}

impl WireRecord for Host {
    fn pad(&self, db: &Db, members: &mut Vec<(String, Value)>) {
        let padding = HOST_PADDING.get_or_init(|| Padding::new::<Host>(host_fixed()));
        padding.apply(members, host_varying(self, db));
    }
}

/// The padding of one kind of record: built once, cloned into every record.
struct Padding {
    /// Wire names of the typed fields, which padding never repeats.
    typed: BTreeSet<String>,
    /// Fields whose values are the same for every record of the kind.
    fixed: Vec<(String, Value)>,
}

impl Padding {
    fn new<T: Serialize + Default>(candidates: Vec<(&'static str, Value)>) -> Padding {
        let typed: BTreeSet<String> = match to_value(&T::default()) {
            Ok(Value::Struct(members)) => members.into_iter().map(|(k, _)| k).collect(),
            _ => BTreeSet::new(),
        };
        let mut seen = BTreeSet::new();
        let fixed = candidates
            .into_iter()
            .filter(|(name, _)| !typed.contains(*name) && seen.insert(*name))
            .map(|(name, value)| (name.to_owned(), value))
            .collect();
        Padding { typed, fixed }
    }

    fn apply<const N: usize>(
        &self,
        members: &mut Vec<(String, Value)>,
        varying: [(&'static str, Value); N],
    ) {
        members.reserve(self.fixed.len() + N);
        members.extend(self.fixed.iter().cloned());
        for (name, value) in varying {
            if !self.typed.contains(name) {
                members.push((name.to_owned(), value));
            }
        }
    }
}

/// VM records differ by kind (xapi's dom0 record is PV and bare, templates carry no boot state).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VmKind {
    /// A guest (or a snapshot of one).
    Guest = 0,
    /// A template.
    Template = 1,
    /// A control domain.
    ControlDomain = 2,
}

impl VmKind {
    fn of(vm: &Vm) -> VmKind {
        if vm.is_control_domain {
            VmKind::ControlDomain
        } else if vm.is_a_template {
            VmKind::Template
        } else {
            VmKind::Guest
        }
    }
}

static VM_PADDING: [OnceLock<Padding>; 3] = [const { OnceLock::new() }; 3];
static HOST_PADDING: OnceLock<Padding> = OnceLock::new();

fn text(s: &str) -> Value {
    Value::String(s.to_owned())
}

fn map(pairs: &[(&str, &str)]) -> Value {
    Value::Struct(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), text(v)))
            .collect(),
    )
}

fn set(items: &[&str]) -> Value {
    Value::Array(items.iter().map(|v| text(v)).collect())
}

fn null_ref() -> Value {
    text(NULL_REF)
}

fn int(i: i64) -> Value {
    Value::String(i.to_string())
}

/// A reference derived from an object's uuid, for the objects of classes the simulator does not
/// keep (VM_metrics, console, VIF, PIF, host_cpu, Certificate): stable, unique, well-formed, and
/// distinct from the simulator's own refs (whose second uuid group is `5a1e`).
fn derived_ref(uuid: &str, tag: &str) -> String {
    match (uuid.len(), uuid.get(..9), uuid.get(13..)) {
        (36, Some(head), Some(tail)) => format!("OpaqueRef:{head}{tag}{tail}"),
        _ => format!("OpaqueRef:{tag}-{uuid}"),
    }
}

/// The platform map of an HVM guest or template.
const PLATFORM: &[(&str, &str)] = &[
    ("timeoffset", "0"),
    ("device-model", "qemu-upstream-uefi"),
    ("viridian", "false"),
    ("acpi", "1"),
    ("apic", "true"),
    ("pae", "true"),
    ("nx", "true"),
    ("hpet", "true"),
    ("vga", "std"),
    ("videoram", "8"),
    ("secureboot", "false"),
    ("device_id", "0001"),
    ("cores-per-socket", "1"),
];

/// `recommendations` of the simulator's templates and guests.
const RECOMMENDATIONS: &str = "<restrictions><restriction field=\"memory-static-max\" max=\"1649267441664\" /><restriction field=\"vcpus-max\" max=\"64\" /><restriction field=\"has-vendor-device\" value=\"false\" /><restriction field=\"allow-gpu-passthrough\" value=\"1\" /><restriction field=\"allow-vgpu\" value=\"1\" /><restriction property=\"number-of-vbds\" max=\"255\" /><restriction property=\"number-of-vifs\" max=\"7\" /></restrictions>";

/// The boot-time CPU flags xapi records for a booted VM.
const CPU_FLAGS: &[(&str, &str)] = &[
    ("vendor", "GenuineIntel"),
    (
        "features",
        "1fcbfbff-f7fa3223-2d93fbff-00000523-00000001-000f6fb9-00000000-00000000-00001000-ac000400-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000",
    ),
];

/// The untyped VM fields whose values depend only on the kind of VM.
fn vm_fixed(kind: VmKind) -> Vec<(&'static str, Value)> {
    let dom0 = kind == VmKind::ControlDomain;
    let template = kind == VmKind::Template;
    let empty_set = || Value::Array(Vec::new());
    let empty_map = || Value::Struct(Vec::new());
    let description = match kind {
        VmKind::Guest => "",
        VmKind::Template => {
            "To use this template from the CLI, install your VM using vm-install, then set other-config-install-repository to the path to your network repository, e.g. http://<server>/<path> or nfs:server:/<path>"
        }
        VmKind::ControlDomain => {
            "The domain which manages physical devices and manages other domains"
        }
    };
    vec![
        ("name_description", text(description)),
        ("user_version", int(1)),
        ("is_default_template", Value::Bool(template)),
        ("suspend_VDI", null_ref()),
        ("VCPUs_params", empty_map()),
        ("actions_after_softreboot", text("soft_reboot")),
        ("actions_after_shutdown", text("destroy")),
        ("actions_after_reboot", text("restart")),
        ("actions_after_crash", text("restart")),
        ("VUSBs", empty_set()),
        ("crash_dumps", empty_set()),
        ("VTPMs", empty_set()),
        ("PV_bootloader", text("")),
        ("PV_kernel", text("")),
        ("PV_ramdisk", text("")),
        ("PV_args", text("")),
        ("PV_bootloader_args", text("")),
        ("PV_legacy_args", text("")),
        (
            "HVM_boot_policy",
            text(if dom0 { "" } else { "BIOS order" }),
        ),
        (
            "HVM_boot_params",
            if dom0 {
                empty_map()
            } else {
                map(&[("order", "cdn"), ("firmware", "bios")])
            },
        ),
        ("HVM_shadow_multiplier", Value::Double(1.0)),
        ("platform", if dom0 { empty_map() } else { map(PLATFORM) }),
        ("PCI_bus", text("")),
        ("domarch", text("")),
        (
            "last_boot_CPU_flags",
            if template {
                empty_map()
            } else {
                map(CPU_FLAGS)
            },
        ),
        (
            "recommendations",
            text(if dom0 { "" } else { RECOMMENDATIONS }),
        ),
        (
            "xenstore_data",
            if dom0 {
                empty_map()
            } else {
                map(&[("vm-data", ""), ("vm-data/mmio-hole-size", "268435456")])
            },
        ),
        ("snapshot_of", null_ref()),
        ("snapshots", empty_set()),
        ("snapshot_time", Value::DateTime(DateTime::epoch().0)),
        ("transportable_snapshot_id", text("")),
        ("blobs", empty_map()),
        ("tags", empty_set()),
        ("blocked_operations", empty_map()),
        ("snapshot_info", empty_map()),
        ("snapshot_metadata", text("")),
        ("parent", null_ref()),
        ("children", empty_set()),
        (
            "bios_strings",
            if template {
                empty_map()
            } else {
                map(&[
                    ("bios-vendor", "Xen"),
                    ("bios-version", ""),
                    ("system-manufacturer", "Xen"),
                    ("system-product-name", "HVM domU"),
                    ("system-version", ""),
                    ("system-serial-number", ""),
                    ("baseboard-manufacturer", ""),
                    ("baseboard-product-name", ""),
                    ("enclosure-asset-tag", ""),
                    ("hp-rombios", ""),
                    ("oem-1", "Xen"),
                    (
                        "oem-2",
                        "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d",
                    ),
                ])
            },
        ),
        ("protection_policy", null_ref()),
        ("is_snapshot_from_vmpp", Value::Bool(false)),
        ("snapshot_schedule", null_ref()),
        ("is_vmss_snapshot", Value::Bool(false)),
        ("appliance", null_ref()),
        ("shutdown_delay", int(0)),
        ("VGPUs", empty_set()),
        ("attached_PCIs", empty_set()),
        ("suspend_SR", null_ref()),
        ("version", int(0)),
        ("generation_id", text(if template { "" } else { "0:0" })),
        ("hardware_platform_version", int(0)),
        ("has_vendor_device", Value::Bool(false)),
        ("requires_reboot", Value::Bool(false)),
        ("reference_label", text("")),
        ("domain_type", text(if dom0 { "pv" } else { "hvm" })),
        ("NVRAM", empty_map()),
        ("pending_guidances", empty_set()),
        ("pending_guidances_recommended", empty_set()),
        ("pending_guidances_full", empty_set()),
        ("groups", empty_set()),
    ]
}

/// The untyped VM fields that follow the record: memory and vCPU limits consistent with the
/// typed ones, boot-time objects of running domains, the last boot record of booted guests.
fn vm_varying(vm: &Vm, kind: VmKind) -> [(&'static str, Value); 11] {
    let live = matches!(vm.power_state, PowerState::Running | PowerState::Paused);
    let guest = kind == VmKind::Guest;
    let dynamic_max = if vm.memory_dynamic_max > 0 {
        vm.memory_dynamic_max
    } else {
        vm.memory_static_max
    };
    let vcpus_max = vm.vcpus_at_startup.max(1);
    // xapi's HVM overhead is about 1/256 of the memory plus 1 MiB per vCPU.
    let overhead = (vm.memory_static_max / 256 + vcpus_max * (1 << 20)) & !((1 << 20) - 1);
    let refs = |tag: &str| Value::Array(vec![Value::String(derived_ref(&vm.uuid, tag))]);
    [
        ("memory_overhead", int(overhead)),
        (
            "memory_target",
            int(if live { vm.memory_static_max } else { 0 }),
        ),
        ("memory_dynamic_min", int(dynamic_max)),
        ("memory_static_min", int(vm.memory_static_max / 4)),
        ("VCPUs_max", int(vcpus_max)),
        (
            "consoles",
            if live {
                refs("c0de")
            } else {
                Value::Array(Vec::new())
            },
        ),
        (
            "VIFs",
            if guest {
                refs("71f0")
            } else {
                Value::Array(Vec::new())
            },
        ),
        ("metrics", Value::String(derived_ref(&vm.uuid, "3e7c"))),
        (
            "guest_metrics",
            if guest {
                Value::String(derived_ref(&vm.uuid, "9e57"))
            } else {
                null_ref()
            },
        ),
        (
            "last_booted_record",
            Value::String(if guest {
                last_booted_record(vm, dynamic_max, overhead, vcpus_max)
            } else {
                String::new()
            }),
        ),
        (
            "ha_always_run",
            Value::Bool(vm.ha_restart_priority == "restart"),
        ),
    ]
}

/// The record xapi saves when a guest boots, as the s-expression it stores (the start of the
/// record as it was; its static tail is shared by every simulated guest).
fn last_booted_record(vm: &Vm, dynamic_max: i64, overhead: i64, vcpus_max: i64) -> String {
    const TAIL: &str = "('actions_after_softreboot' 'soft_reboot') ('actions_after_shutdown' 'destroy') ('actions_after_reboot' 'restart') ('actions_after_crash' 'restart') ('consoles' ('array')) ('VIFs' ('array')) ('crash_dumps' ('array')) ('VTPMs' ('array')) ('PV_bootloader' '') ('PV_kernel' '') ('PV_ramdisk' '') ('PV_args' '') ('PV_bootloader_args' '') ('PV_legacy_args' '') ('HVM_boot_policy' 'BIOS order') ('HVM_boot_params' ('struct' ('order' 'cdn') ('firmware' 'bios'))) ('HVM_shadow_multiplier' '1.') ('platform' ('struct' ('timeoffset' '0') ('device-model' 'qemu-upstream-uefi') ('viridian' 'false') ('acpi' '1') ('apic' 'true') ('pae' 'true') ('nx' 'true') ('hpet' 'true') ('vga' 'std') ('videoram' '8') ('secureboot' 'false') ('device_id' '0001') ('cores-per-socket' '1'))) ('PCI_bus' '') ('other_config' ('struct')) ('domid' '-1') ('domarch' '') ('last_boot_CPU_flags' ('struct')) ('is_control_domain' 'false') ('metrics' 'OpaqueRef:NULL') ('guest_metrics' 'OpaqueRef:NULL') ('last_booted_record' '') ('recommendations' '') ('xenstore_data' ('struct' ('vm-data' '') ('vm-data/mmio-hole-size' '268435456'))) ('ha_always_run' 'false') ('is_a_snapshot' 'false') ('snapshot_of' 'OpaqueRef:NULL') ('snapshots' ('array')) ('snapshot_time' '19700101T00:00:00Z') ('transportable_snapshot_id' '') ('blobs' ('struct')) ('tags' ('array')) ('blocked_operations' ('struct')) ('domain_type' 'hvm') ('NVRAM' ('struct')))";
    let name = vm.name_label.replace('\\', "\\\\").replace('\'', "\\'");
    format!(
        "('struct' ('uuid' '{uuid}') ('allowed_operations' ('array')) ('current_operations' ('struct')) ('name_label' '{name}') ('name_description' '') ('power_state' 'Halted') ('user_version' '1') ('is_a_template' 'false') ('is_default_template' 'false') ('suspend_VDI' 'OpaqueRef:NULL') ('resident_on' 'OpaqueRef:NULL') ('affinity' '{affinity}') ('memory_overhead' '{overhead}') ('memory_target' '0') ('memory_static_max' '{smax}') ('memory_dynamic_max' '{dmax}') ('memory_dynamic_min' '{dmax}') ('memory_static_min' '{smin}') ('VCPUs_params' ('struct')) ('VCPUs_max' '{vcpus_max}') ('VCPUs_at_startup' '{vcpus}') ('ha_restart_priority' '{priority}') ('order' '{order}') ('start_delay' '{start_delay}') {TAIL}",
        uuid = vm.uuid,
        affinity = vm.affinity,
        smax = vm.memory_static_max,
        dmax = dynamic_max,
        smin = vm.memory_static_max / 4,
        vcpus = vm.vcpus_at_startup,
        priority = vm.ha_restart_priority,
        order = vm.order,
        start_delay = vm.start_delay,
    )
}

/// The untyped host fields that are the same on every simulated host (an XCP-ng 8.3 host with
/// xapi 25.6: fields added after that release, such as `ssh_enabled`, are left out).
fn host_fixed() -> Vec<(&'static str, Value)> {
    let empty_set = || Value::Array(Vec::new());
    let empty_map = || Value::Struct(Vec::new());
    vec![
        ("name_description", text("Default install")),
        ("memory_overhead", int(1_179_652_096)),
        ("API_version_vendor", text("XenSource")),
        ("API_version_vendor_implementation", empty_map()),
        (
            "capabilities",
            set(&[
                "xen-3.0-x86_64",
                "hvm-3.0-x86_32",
                "hvm-3.0-x86_32p",
                "hvm-3.0-x86_64",
            ]),
        ),
        ("cpu_configuration", empty_map()),
        ("sched_policy", text("credit")),
        ("supported_bootloaders", set(&["pygrub", "eliloader"])),
        ("logging", empty_map()),
        ("crashdumps", empty_set()),
        ("patches", empty_set()),
        ("updates", empty_set()),
        (
            "cpu_info",
            map(&[
                ("cpu_count", "16"),
                ("socket_count", "1"),
                ("threads_per_core", "2"),
                ("vendor", "GenuineIntel"),
                ("speed", "2099.998"),
                ("modelname", "Intel(R) Xeon(R) Silver 4216 CPU @ 2.10GHz"),
                ("family", "6"),
                ("model", "85"),
                ("stepping", "7"),
                (
                    "flags",
                    "fpu de tsc msr pae mce cx8 apic sep mca cmov pat clflush acpi mmx fxsr sse sse2 ht syscall nx lm constant_tsc rep_good nopl nonstop_tsc cpuid pni pclmulqdq monitor est ssse3 fma cx16 sse4_1 sse4_2 movbe popcnt aes xsave avx f16c rdrand hypervisor lahf_lm abm 3dnowprefetch cpuid_fault ssbd ibrs ibpb stibp fsgsbase bmi1 avx2 bmi2 erms avx512f avx512dq rdseed adx avx512cd avx512bw avx512vl xsaveopt xsavec xgetbv1 arch_capabilities",
                ),
                (
                    "features_pv",
                    "1fc9cbf5-f6f83203-2991cbf5-00000123-00000007-d19b0fbb-00000008-00000000-00001000-ac000400-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000",
                ),
                (
                    "features_hvm",
                    "1fcbfbff-f7fa3223-2d93fbff-00000523-00000001-000f6fb9-00000000-00000000-00001000-ac000400-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000",
                ),
                (
                    "features_pv_host",
                    "1fc9cbf5-f6f83203-2991cbf5-00000123-00000007-d19b0fbb-00000008-00000000-00001000-ac000400-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000",
                ),
                (
                    "features_hvm_host",
                    "1fcbfbff-f7fa3223-2d93fbff-00000523-00000001-000f6fb9-00000000-00000000-00001000-ac000400-00000000-00000000-00000000-00000000-00000000-00000000-00000000-00000000",
                ),
            ]),
        ),
        (
            "license_params",
            map(&[
                ("restrict_vswitch_controller", "false"),
                ("restrict_lab", "false"),
                ("restrict_stage", "false"),
                ("restrict_storagelink", "false"),
                ("restrict_storagelink_site_recovery", "false"),
                ("restrict_web_selfservice", "false"),
                ("restrict_web_selfservice_manager", "false"),
                ("restrict_pooling", "false"),
                ("restrict_xen_motion", "false"),
                ("restrict_checkpoint", "false"),
                ("restrict_cpu_masking", "false"),
                ("restrict_pool_attached_storage", "false"),
                ("restrict_vlan", "false"),
                ("restrict_qos", "false"),
                ("restrict_marathon", "false"),
                ("restrict_email_alerting", "false"),
                ("restrict_historical_performance", "false"),
                ("restrict_wlb", "false"),
                ("restrict_rbac", "false"),
                ("restrict_dmc", "false"),
                ("restrict_read_caching", "false"),
                ("restrict_vgpu", "false"),
                ("restrict_integrated_gpu_passthrough", "false"),
                ("restrict_vss", "false"),
                ("restrict_guest_agent_auto_update", "false"),
                ("restrict_pci_device_for_auto_update", "false"),
                ("restrict_xcm", "false"),
                ("restrict_usb_passthrough", "false"),
                ("restrict_network_sriov", "false"),
                ("restrict_corosync", "false"),
                ("restrict_zstd_export", "false"),
                ("restrict_pool_secret_rotation", "false"),
                ("restrict_certificate_verification", "false"),
                ("restrict_updates", "false"),
                ("restrict_internal_repo_access", "false"),
                ("restrict_vtpm", "false"),
                ("restrict_vm_group", "false"),
                ("sku_type", "free"),
                ("sku_marketing_name", "XCP-ng"),
                ("expiry", "20380119T03:14:07Z"),
            ]),
        ),
        ("ha_statefiles", empty_set()),
        ("ha_network_peers", empty_set()),
        ("blobs", empty_map()),
        ("tags", empty_set()),
        ("external_auth_type", text("")),
        ("external_auth_service_name", text("")),
        ("external_auth_configuration", empty_map()),
        ("edition", text("xcp-ng")),
        (
            "license_server",
            map(&[("address", "localhost"), ("port", "27000")]),
        ),
        (
            "bios_strings",
            map(&[
                ("bios-vendor", "Dell Inc."),
                ("bios-version", "2.19.1"),
                ("system-manufacturer", "Dell Inc."),
                ("system-product-name", "PowerEdge R640"),
                ("system-version", ""),
                ("system-serial-number", "SIMULATED"),
                ("baseboard-manufacturer", "Dell Inc."),
                ("baseboard-product-name", "0H28RR"),
                ("enclosure-asset-tag", ""),
                ("hp-rombios", ""),
                ("oem-1", "Xen"),
                (
                    "oem-2",
                    "MS_VM_CERT/SHA1/bdbeb6e0a816d43fa6d3fe8aaef04c2bad9d3e3d",
                ),
            ]),
        ),
        ("power_on_mode", text("")),
        ("power_on_config", empty_map()),
        ("local_cache_sr", null_ref()),
        ("chipset_info", map(&[("iommu", "true")])),
        ("PCIs", empty_set()),
        ("PGPUs", empty_set()),
        ("PUSBs", empty_set()),
        ("ssl_legacy", Value::Bool(false)),
        ("guest_VCPUs_params", empty_map()),
        ("display", text("enabled")),
        (
            "virtual_hardware_platform_versions",
            Value::Array(vec![int(0), int(1), int(2)]),
        ),
        ("updates_requiring_reboot", empty_set()),
        ("features", empty_set()),
        ("multipathing", Value::Bool(false)),
        ("uefi_certificates", text("")),
        ("editions", set(&["xcp-ng"])),
        ("pending_guidances", empty_set()),
        ("tls_verification_enabled", Value::Bool(true)),
        (
            "last_software_update",
            Value::DateTime("20250301T00:00:00Z".into()),
        ),
        ("https_only", Value::Bool(false)),
        ("latest_synced_updates_applied", text("unknown")),
        ("numa_affinity_policy", text("default_policy")),
        ("pending_guidances_recommended", empty_set()),
        ("pending_guidances_full", empty_set()),
        ("last_update_hash", text("")),
    ]
}

/// Logical CPUs of a simulated host (`cpu_info.cpu_count`, one `host_CPUs` ref each).
pub(super) const HOST_CPUS: usize = 16;

/// The untyped host fields that follow the host: its PIFs, CPUs and certificate, its local SR
/// as suspend image and crash dump SR, its iSCSI IQN.
fn host_varying(host: &Host, db: &Db) -> [(&'static str, Value); 6] {
    let local_sr = host
        .pbds
        .iter()
        .filter_map(|pbd| db.pbd.get(pbd.as_str()))
        .map(|pbd| pbd.sr.as_str())
        .find(|sr| db.sr.get(sr).is_some_and(|sr| !sr.shared))
        .unwrap_or(NULL_REF);
    let iqn = format!(
        "iqn.2025-03.org.xcp-ng:{}",
        host.uuid.get(..8).unwrap_or(&host.uuid)
    );
    [
        (
            "PIFs",
            Value::Array(vec![
                Value::String(derived_ref(&host.uuid, "f100")),
                Value::String(derived_ref(&host.uuid, "f101")),
            ]),
        ),
        (
            "host_CPUs",
            Value::Array(
                (0..HOST_CPUS)
                    .map(|i| Value::String(derived_ref(&host.uuid, &format!("c0{i:02x}"))))
                    .collect(),
            ),
        ),
        ("suspend_image_sr", text(local_sr)),
        ("crash_dump_sr", text(local_sr)),
        ("iscsi_iqn", Value::String(iqn)),
        (
            "certificates",
            Value::Array(vec![Value::String(derived_ref(&host.uuid, "ce57"))]),
        ),
    ]
}
