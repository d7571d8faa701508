//! One host's copy of the pool database: typed tables with the generation counters `event.from`
//! needs (xapi-notes.md §7.1), generic field getters, and `get_all_records_where` filters
//! (xapi-notes.md §5.2).
//!
//! The master's copy is the live database; a slave's copy is its last backup, which is what it
//! restarts with after `emergency_transition_to_master` (possibly minutes stale,
//! xapi-notes.md §6.1).
//!
//! Rows are typed records (the ~20 fields xenguard reads), but `VM` and `host` records go on the
//! wire padded to the ~90 / ~70 fields real xapi writes (xapi-notes.md §4.2, §5.1, §7.3), so
//! answers have the size and shape clients meet in production: see [`WireRecord`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;

use serde::Serialize;

use crate::xapi::records::{
    Host, HostMetrics, NULL_REF, Pbd, Pool, PowerState, Sr, Task, Vbd, Vdi, Vm,
};
use crate::xapi::typed::{DateTime, to_value};
use crate::xapi::wire::Value;

/// A row with the generations at which it was created and last modified.
#[derive(Debug, Clone)]
pub struct Row<T> {
    /// The record.
    pub record: T,
    /// Generation of its creation.
    pub created: u64,
    /// Generation of its last change.
    pub modified: u64,
}

/// One class's rows plus the deletions `event.from` still has to report.
#[derive(Debug, Clone)]
pub struct Table<T> {
    /// Reference -> row.
    pub rows: BTreeMap<String, Row<T>>,
    /// (reference, created, deleted) of removed rows.
    pub deleted: Vec<(String, u64, u64)>,
}

impl<T> Default for Table<T> {
    fn default() -> Self {
        Table {
            rows: BTreeMap::new(),
            deleted: Vec::new(),
        }
    }
}

impl<T> Table<T> {
    /// The record behind a reference.
    pub fn get(&self, reference: &str) -> Option<&T> {
        self.rows.get(reference).map(|r| &r.record)
    }

    /// References and records, in reference order.
    pub fn iter(&self) -> impl Iterator<Item = (&String, &T)> {
        self.rows.iter().map(|(k, r)| (k, &r.record))
    }
}

/// The classes of the database, with their wire names.
macro_rules! database {
    ($($field:ident: $ty:ty => $class:literal, $event:literal;)+) => {
        /// A pool database.
        #[derive(Debug, Clone, Default)]
        pub struct Db {
            /// Generation of the latest change.
            pub generation: u64,
            $(
                #[doc = concat!("`", $class, "` objects.")]
                pub $field: Table<$ty>,
            )+
        }

        /// Classes as named in method names, with their event (lower-case) names.
        pub const CLASSES: &[(&str, &str)] = &[$(($class, $event)),+];

        impl Db {
            /// The wire records of a class (`VM`, `host`, …), or `None` for an unknown class.
            pub fn records(&self, class: &str) -> Option<Vec<(String, Value)>> {
                match class {
                    $($class => Some(encode_all(self, &self.$field)),)+
                    _ => None,
                }
            }

            /// The wire record of one object.
            pub fn record(&self, class: &str, reference: &str) -> Option<Value> {
                match class {
                    $($class => self.$field.get(reference).map(|r| encode(self, r)),)+
                    _ => None,
                }
            }

            /// Events newer than `since` for a lower-case event class: (ref, op, snapshot).
            fn changes(&self, event_class: &str, since: u64) -> Vec<(u64, String, &'static str, Option<Value>)> {
                match event_class {
                    $($event => changes_of(self, &self.$field, since),)+
                    _ => Vec::new(),
                }
            }

            /// Whether an object of `class` has this reference.
            pub fn record_exists(&self, class: &str, reference: &str) -> bool {
                match class {
                    $($class => self.$field.rows.contains_key(reference),)+
                    _ => false,
                }
            }

            /// Whether `class` is a class of the database.
            pub fn has_class(&self, class: &str) -> bool {
                CLASSES.iter().any(|(c, _)| *c == class)
            }

            /// References of the objects of `class` whose `uuid` or `name_label` equals `value`,
            /// without encoding any record.
            pub fn find_refs(&self, class: &str, field: Identity, value: &str) -> Vec<String> {
                match class {
                    $($class => self
                        .$field
                        .iter()
                        .filter(|(_, r)| match field {
                            Identity::Uuid => r.uuid() == value,
                            Identity::NameLabel => r.name_label() == Some(value),
                        })
                        .map(|(k, _)| k.clone())
                        .collect(),)+
                    _ => Vec::new(),
                }
            }

            /// Live object counts for every table, as `valid_ref_counts` reports them.
            pub fn ref_counts(&self) -> Vec<(String, Value)> {
                vec![$(($event.to_owned(), Value::Int(self.$field.rows.len() as i64))),+]
            }
        }
    };
}

database! {
    pool: Pool => "pool", "pool";
    host: Host => "host", "host";
    host_metrics: HostMetrics => "host_metrics", "host_metrics";
    vm: Vm => "VM", "vm";
    vbd: Vbd => "VBD", "vbd";
    vdi: Vdi => "VDI", "vdi";
    sr: Sr => "SR", "sr";
    pbd: Pbd => "PBD", "pbd";
    task: Task => "task", "task";
}

/// The identifying fields generic lookups search on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// `get_by_uuid`.
    Uuid,
    /// `get_by_name_label`.
    NameLabel,
}

/// Access to the identifying fields of a record type.
trait Identified {
    fn uuid(&self) -> &str;
    fn name_label(&self) -> Option<&str> {
        None
    }
}

macro_rules! identified {
    (named: $($named:ty),+; unnamed: $($unnamed:ty),+) => {
        $(impl Identified for $named {
            fn uuid(&self) -> &str {
                &self.uuid
            }
            fn name_label(&self) -> Option<&str> {
                Some(&self.name_label)
            }
        })+
        $(impl Identified for $unnamed {
            fn uuid(&self) -> &str {
                &self.uuid
            }
        })+
    };
}

identified!(named: Pool, Host, Vm, Vdi, Sr, Task; unnamed: HostMetrics, Vbd, Pbd);

/// Every wire encoding of a record (`get_record`, `get_all_records*`, field getters, `event.from`
/// snapshots) goes through here: the typed fields, then [`WireRecord::pad`].
fn encode<T: WireRecord>(db: &Db, record: &T) -> Value {
    // Records are plain data: encoding cannot fail.
    match to_value(record) {
        Ok(Value::Struct(mut members)) => {
            record.pad(db, &mut members);
            Value::Struct(members)
        }
        Ok(other) => other,
        Err(_) => Value::Nil,
    }
}

fn encode_all<T: WireRecord>(db: &Db, table: &Table<T>) -> Vec<(String, Value)> {
    table
        .rows
        .iter()
        .map(|(k, r)| (k.clone(), encode(db, &r.record)))
        .collect()
}

fn changes_of<T: WireRecord>(
    db: &Db,
    table: &Table<T>,
    since: u64,
) -> Vec<(u64, String, &'static str, Option<Value>)> {
    let mut out: Vec<_> = table
        .rows
        .iter()
        .filter(|(_, r)| r.modified > since)
        .map(|(k, r)| {
            let op = if r.created > since { "add" } else { "mod" };
            (r.modified, k.clone(), op, Some(encode(db, &r.record)))
        })
        .collect();
    out.extend(
        table
            .deleted
            .iter()
            .filter(|(_, created, deleted)| *deleted > since && *created <= since)
            .map(|(k, _, deleted)| (*deleted, k.clone(), "del", None)),
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Wire padding: the fields real records carry that the typed structs do not
// ---------------------------------------------------------------------------------------------

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
const HOST_CPUS: usize = 16;

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

impl Db {
    /// Inserts or replaces a row, bumping the generation.
    pub fn put<T>(
        table: impl FnOnce(&mut Db) -> &mut Table<T>,
        db: &mut Db,
        reference: &str,
        record: T,
    ) {
        db.generation += 1;
        let generation = db.generation;
        let t = table(db);
        match t.rows.get_mut(reference) {
            Some(row) => {
                row.record = record;
                row.modified = generation;
            }
            None => {
                t.rows.insert(
                    reference.to_owned(),
                    Row {
                        record,
                        created: generation,
                        modified: generation,
                    },
                );
            }
        }
    }

    /// Changes a row in place, bumping the generation; false if it does not exist.
    pub fn update<T>(
        table: impl FnOnce(&mut Db) -> &mut Table<T>,
        db: &mut Db,
        reference: &str,
        change: impl FnOnce(&mut T),
    ) -> bool {
        let generation = db.generation + 1;
        let t = table(db);
        let Some(row) = t.rows.get_mut(reference) else {
            return false;
        };
        change(&mut row.record);
        row.modified = generation;
        db.generation = generation;
        true
    }

    /// Removes a row, remembering the deletion for `event.from`.
    pub fn remove<T>(
        table: impl FnOnce(&mut Db) -> &mut Table<T>,
        db: &mut Db,
        reference: &str,
    ) -> Option<T> {
        let generation = db.generation + 1;
        let t = table(db);
        let row = t.rows.remove(reference)?;
        t.deleted
            .push((reference.to_owned(), row.created, generation));
        db.generation = generation;
        Some(row.record)
    }

    /// The reference of the one pool object.
    pub fn pool_ref(&self) -> Option<&String> {
        self.pool.rows.keys().next()
    }

    /// The pool record.
    pub fn pool_record(&self) -> Option<&Pool> {
        self.pool.rows.values().next().map(|r| &r.record)
    }

    /// Collects `event.from` results for subscriptions (`"*"`, `"vm"`, `"vm/OpaqueRef:…"`,
    /// case-insensitive) since generation `since`, ordered by generation.
    pub fn events_since(&self, subscriptions: &[String], since: u64) -> Vec<Value> {
        let subs: Vec<(String, Option<&str>)> = subscriptions
            .iter()
            .map(|s| match s.split_once('/') {
                Some((class, reference)) => (class.to_ascii_lowercase(), Some(reference)),
                None => (s.to_ascii_lowercase(), None),
            })
            .collect();
        let mut all = Vec::new();
        for (_, event_class) in CLASSES {
            let wanted: Vec<Option<&str>> = subs
                .iter()
                .filter(|(c, _)| c == "*" || c == event_class)
                .map(|(_, r)| *r)
                .collect();
            if wanted.is_empty() {
                continue;
            }
            for (generation, reference, op, snapshot) in self.changes(event_class, since) {
                if wanted.iter().any(|r| r.is_none_or(|r| r == reference)) {
                    all.push((generation, event_class, reference, op, snapshot));
                }
            }
        }
        all.sort_by_key(|(generation, ..)| *generation);
        all.into_iter()
            .map(|(generation, class, reference, op, snapshot)| {
                let mut members = vec![
                    ("id".to_owned(), Value::String(generation.to_string())),
                    ("timestamp".to_owned(), Value::string("0.0")),
                    ("class".to_owned(), Value::string(*class)),
                    ("operation".to_owned(), Value::string(op)),
                    ("ref".to_owned(), Value::String(reference)),
                ];
                if let Some(snapshot) = snapshot {
                    members.push(("snapshot".to_owned(), snapshot));
                }
                Value::Struct(members)
            })
            .collect()
    }
}

/// The event token of a generation: `"%020d,%020d"` (database, message generation).
pub fn token_of(generation: u64) -> String {
    format!("{generation:020},{:020}", 0)
}

/// Parses an event token; `""` is the beginning.
pub fn parse_token(token: &str) -> Option<u64> {
    if token.is_empty() {
        return Some(0);
    }
    let (db, messages) = token.split_once(',')?;
    messages.trim().parse::<u64>().ok()?;
    db.trim().parse().ok()
}

/// The value of a record field in the database's string form (xapi-notes.md §5.2): bools
/// `"true"`/`"false"`, ints in decimal, enums and refs as written.
pub fn field_string(record: &Value, field: &str) -> Option<String> {
    match record.member(field)? {
        Value::String(s) | Value::DateTime(s) | Value::Base64(s) => Some(s.clone()),
        Value::Int(i) => Some(i.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Double(d) => Some(d.to_string()),
        _ => None,
    }
}

/// A parsed `get_all_records_where` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// `true` / `false`.
    Const(bool),
    /// `a = b` on fields or literals.
    Eq(Operand, Operand),
    /// `a and b`.
    And(Box<Filter>, Box<Filter>),
    /// `a or b`.
    Or(Box<Filter>, Box<Filter>),
    /// `not a`.
    Not(Box<Filter>),
}

/// One side of a comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand {
    /// `"literal"`.
    Literal(String),
    /// `field "name"`; `__` in the name is the `_` of the wire name.
    Field(String),
}

impl Filter {
    /// Parses the grammar of xapi-notes.md §5.2.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let tokens = lex(text)?;
        let mut pos = 0;
        let filter = parse_or(&tokens, &mut pos)?;
        if pos != tokens.len() {
            return Err(format!("unexpected {:?}", tokens[pos]));
        }
        Ok(filter)
    }

    /// Evaluates the filter on a wire record.
    pub fn matches(&self, record: &Value) -> bool {
        match self {
            Filter::Const(b) => *b,
            Filter::Eq(a, b) => operand(a, record) == operand(b, record),
            Filter::And(a, b) => a.matches(record) && b.matches(record),
            Filter::Or(a, b) => a.matches(record) || b.matches(record),
            Filter::Not(a) => !a.matches(record),
        }
    }
}

fn operand(op: &Operand, record: &Value) -> Option<String> {
    match op {
        Operand::Literal(s) => Some(s.clone()),
        Operand::Field(name) => field_string(record, &name.replace("__", "_")),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
    Eq,
    Open,
    Close,
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '=' => {
                chars.next();
                tokens.push(Token::Eq);
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some(c) => s.push(c),
                        None => return Err("unterminated string".into()),
                    }
                }
                tokens.push(Token::Quoted(s));
            }
            c if c.is_ascii_alphabetic() => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if !c.is_ascii_alphanumeric() && c != '_' {
                        break;
                    }
                    s.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(s));
            }
            other => return Err(format!("unexpected character {other:?}")),
        }
    }
    Ok(tokens)
}

fn parse_or(tokens: &[Token], pos: &mut usize) -> Result<Filter, String> {
    let mut left = parse_and(tokens, pos)?;
    while tokens.get(*pos) == Some(&Token::Word("or".into())) {
        *pos += 1;
        left = Filter::Or(Box::new(left), Box::new(parse_and(tokens, pos)?));
    }
    Ok(left)
}

fn parse_and(tokens: &[Token], pos: &mut usize) -> Result<Filter, String> {
    let mut left = parse_unary(tokens, pos)?;
    while tokens.get(*pos) == Some(&Token::Word("and".into())) {
        *pos += 1;
        left = Filter::And(Box::new(left), Box::new(parse_unary(tokens, pos)?));
    }
    Ok(left)
}

fn parse_unary(tokens: &[Token], pos: &mut usize) -> Result<Filter, String> {
    match tokens.get(*pos) {
        Some(Token::Word(w)) if w == "not" => {
            *pos += 1;
            Ok(Filter::Not(Box::new(parse_unary(tokens, pos)?)))
        }
        Some(Token::Word(w)) if w == "true" || w == "false" => {
            *pos += 1;
            Ok(Filter::Const(w == "true"))
        }
        Some(Token::Open) => {
            *pos += 1;
            let inner = parse_or(tokens, pos)?;
            if tokens.get(*pos) != Some(&Token::Close) {
                return Err("missing )".into());
            }
            *pos += 1;
            Ok(inner)
        }
        _ => {
            let a = parse_operand(tokens, pos)?;
            if tokens.get(*pos) != Some(&Token::Eq) {
                return Err("expected =".into());
            }
            *pos += 1;
            let b = parse_operand(tokens, pos)?;
            Ok(Filter::Eq(a, b))
        }
    }
}

fn parse_operand(tokens: &[Token], pos: &mut usize) -> Result<Operand, String> {
    match (tokens.get(*pos), tokens.get(*pos + 1)) {
        (Some(Token::Word(w)), Some(Token::Quoted(name))) if w == "field" => {
            *pos += 2;
            Ok(Operand::Field(name.clone()))
        }
        (Some(Token::Quoted(s)), _) => {
            *pos += 1;
            Ok(Operand::Literal(s.clone()))
        }
        (other, _) => Err(format!("expected a value, found {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vm(power: &str, control: bool) -> Value {
        Value::Struct(vec![
            ("power_state".into(), Value::string(power)),
            ("is_control_domain".into(), Value::Bool(control)),
            ("name_label".into(), Value::string("web")),
        ])
    }

    #[test]
    fn filters_follow_the_xapi_grammar() {
        let f = Filter::parse(
            r#"field "is_control_domain"="false" and (field "power_state"="Running" or not true) and field "name__label"="web""#,
        )
        .unwrap();
        assert!(f.matches(&vm("Running", false)));
        assert!(!f.matches(&vm("Halted", false)));
        assert!(!f.matches(&vm("Running", true)));
        assert!(Filter::parse(r#"field "x" = "#).is_err());
        assert!(Filter::parse(r#"field "x" = "y" junk"#).is_err());
    }

    #[test]
    fn events_report_add_mod_del_once_per_object() {
        let mut db = Db::default();
        Db::put(|d| &mut d.vm, &mut db, "OpaqueRef:a", Vm::default());
        Db::put(|d| &mut d.vm, &mut db, "OpaqueRef:b", Vm::default());
        let token = db.generation;
        Db::update(
            |d| &mut d.vm,
            &mut db,
            "OpaqueRef:a",
            |v| v.name_label = "x".into(),
        );
        Db::update(
            |d| &mut d.vm,
            &mut db,
            "OpaqueRef:a",
            |v| v.name_label = "y".into(),
        );
        Db::remove(|d| &mut d.vm, &mut db, "OpaqueRef:b");
        Db::put(|d| &mut d.vm, &mut db, "OpaqueRef:c", Vm::default());
        let ops: Vec<(String, String)> = db
            .events_since(&["VM".into()], token)
            .iter()
            .map(|e| {
                (
                    e.member("ref").and_then(Value::as_str).unwrap().to_owned(),
                    e.member("operation")
                        .and_then(Value::as_str)
                        .unwrap()
                        .to_owned(),
                )
            })
            .collect();
        assert_eq!(
            ops,
            vec![
                ("OpaqueRef:a".into(), "mod".into()),
                ("OpaqueRef:b".into(), "del".into()),
                ("OpaqueRef:c".into(), "add".into())
            ]
        );
        assert_eq!(
            db.events_since(&["vm".into()], 0).len(),
            2,
            "from the start: live objects only"
        );
        assert!(db.events_since(&["host".into()], 0).is_empty());
    }

    /// A running guest, a control domain and a host as the simulator builds them.
    fn sample() -> (Db, Vm, Host) {
        let mut db = Db::default();
        let vm = Vm {
            uuid: "0000002a-5a1e-4002-8000-00000000002a".into(),
            name_label: "vm0001 'quoted'".into(),
            power_state: PowerState::Running,
            resident_on: crate::xapi::records::Ref::new("OpaqueRef:h1"),
            affinity: crate::xapi::records::Ref::new("OpaqueRef:h1"),
            domid: 7,
            ha_restart_priority: "restart".into(),
            order: 2,
            memory_static_max: 2 << 30,
            memory_dynamic_max: 2 << 30,
            vcpus_at_startup: 2,
            vbds: vec![crate::xapi::records::Ref::new("OpaqueRef:b1")],
            allowed_operations: vec!["clean_shutdown".into()],
            other_config: [("platform".to_owned(), "typed".to_owned())].into(),
            ..Vm::default()
        };
        let host = Host {
            uuid: "00000003-5a1e-4003-8000-000000000003".into(),
            name_label: "host1".into(),
            address: "127.0.0.11".into(),
            enabled: true,
            pbds: vec![crate::xapi::records::Ref::new("OpaqueRef:pbd")],
            api_version_major: 2,
            api_version_minor: 21,
            ..Host::default()
        };
        Db::put(|d| &mut d.vm, &mut db, "OpaqueRef:vm", vm.clone());
        Db::put(|d| &mut d.host, &mut db, "OpaqueRef:h1", host.clone());
        Db::put(
            |d| &mut d.pbd,
            &mut db,
            "OpaqueRef:pbd",
            Pbd {
                sr: crate::xapi::records::Ref::new("OpaqueRef:local"),
                ..Pbd::default()
            },
        );
        Db::put(|d| &mut d.sr, &mut db, "OpaqueRef:local", Sr::default());
        (db, vm, host)
    }

    fn names(record: &Value) -> Vec<&str> {
        match record {
            Value::Struct(members) => members.iter().map(|(k, _)| k.as_str()).collect(),
            _ => Vec::new(),
        }
    }

    /// xapi-notes.md §5.1 / §7.3: a VM record on the wire carries about a hundred fields, and still
    /// decodes into the typed record it came from.
    #[test]
    fn vm_records_on_the_wire_look_real_and_decode_to_the_typed_record() {
        use crate::xapi::typed::from_value;
        use crate::xapi::wire::{self, Response};

        let (db, vm, _) = sample();
        let record = db.record("VM", "OpaqueRef:vm").unwrap();
        let fields = names(&record);
        assert!(fields.len() >= 90, "{} fields: {fields:?}", fields.len());
        let unique: BTreeSet<&str> = fields.iter().copied().collect();
        assert_eq!(unique.len(), fields.len(), "a field appears twice");
        // Through real XML, as a client receives it.
        let body = wire::encode_success(&Value::Struct(vec![("OpaqueRef:vm".into(), record)]));
        let Ok(Response::Success(Value::Struct(mut all))) = wire::decode_response(body.as_bytes())
        else {
            panic!("undecodable answer");
        };
        let (_, received) = all.remove(0);
        assert_eq!(from_value::<Vm>(received.clone()).unwrap(), vm);
        // Values as xapi writes them, consistent with the typed fields.
        assert_eq!(
            received.member("memory_target"),
            Some(&Value::string("2147483648"))
        );
        assert_eq!(received.member("VCPUs_max"), Some(&Value::string("2")));
        assert_eq!(
            received.member("suspend_VDI"),
            Some(&Value::string(NULL_REF))
        );
        assert_eq!(received.member("ha_always_run"), Some(&Value::Bool(true)));
        assert_eq!(
            received.member("HVM_shadow_multiplier"),
            Some(&Value::Double(1.0))
        );
        assert_eq!(
            received.member("snapshot_time"),
            Some(&Value::DateTime("19700101T00:00:00Z".into()))
        );
        assert!(matches!(received.member("platform"), Some(Value::Struct(m)) if m.len() >= 10));
        assert!(
            field_string(&received, "recommendations")
                .is_some_and(|r| r.starts_with("<restrictions>"))
        );
        assert!(
            field_string(&received, "last_booted_record")
                .is_some_and(|r| r.len() > 1000 && r.contains(&vm.uuid))
        );
        // Padding never shadows a typed field, and follows power state changes.
        assert_eq!(
            received.member("other_config"),
            Some(&Value::Struct(vec![(
                "platform".into(),
                Value::string("typed")
            )]))
        );
        let mut db = db;
        Db::update(
            |d| &mut d.vm,
            &mut db,
            "OpaqueRef:vm",
            |v| v.power_state = PowerState::Halted,
        );
        let halted = db.record("VM", "OpaqueRef:vm").unwrap();
        assert_eq!(halted.member("memory_target"), Some(&Value::string("0")));
        assert_eq!(halted.member("consoles"), Some(&Value::Array(Vec::new())));
        // Every path pads the same way.
        let listed = db.records("VM").unwrap().remove(0).1;
        assert_eq!(listed, halted);
        let event = db.events_since(&["vm".into()], 0).remove(0);
        assert_eq!(event.member("snapshot"), Some(&halted));
    }

    #[test]
    fn control_domains_and_hosts_are_padded_too() {
        use crate::xapi::typed::from_value;

        let (mut db, _, host) = sample();
        Db::put(
            |d| &mut d.vm,
            &mut db,
            "OpaqueRef:dom0",
            Vm {
                uuid: "dom0".into(),
                is_control_domain: true,
                power_state: PowerState::Running,
                ..Vm::default()
            },
        );
        let dom0 = db.record("VM", "OpaqueRef:dom0").unwrap();
        assert_eq!(field_string(&dom0, "domain_type").as_deref(), Some("pv"));
        assert_eq!(
            field_string(&dom0, "last_booted_record").as_deref(),
            Some("")
        );
        assert!(names(&dom0).len() >= 90);

        let record = db.record("host", "OpaqueRef:h1").unwrap();
        let fields = names(&record);
        assert!(fields.len() >= 60, "{} fields: {fields:?}", fields.len());
        let unique: BTreeSet<&str> = fields.iter().copied().collect();
        assert_eq!(unique.len(), fields.len(), "a field appears twice");
        assert_eq!(
            field_string(&record, "suspend_image_sr").as_deref(),
            Some("OpaqueRef:local")
        );
        assert!(
            matches!(record.member("host_CPUs"), Some(Value::Array(cpus)) if cpus.len() == HOST_CPUS)
        );
        assert!(matches!(record.member("cpu_info"), Some(Value::Struct(_))));
        assert_eq!(from_value::<Host>(record).unwrap(), host);
    }

    #[test]
    fn tokens_round_trip() {
        assert_eq!(parse_token(&token_of(4711)), Some(4711));
        assert_eq!(parse_token(""), Some(0));
        assert_eq!(parse_token("garbage"), None);
    }
}
