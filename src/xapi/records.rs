//! Typed XAPI records: the fields of pool, host, host_metrics, VM, VBD, VDI, SR, PBD and task
//! that xenguard reads, under their wire names (xapi-notes.md §4.2, §5.1).
//!
//! Real records carry about a hundred fields and grow with every release: unknown fields are
//! ignored and missing ones take their defaults (`#[serde(default)]`), so one odd record never
//! fails a whole `get_all_records`. Enums match case-insensitively, as xapi's unmarshaller does,
//! and keep values they do not know instead of failing.

use std::collections::BTreeMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::marker::PhantomData;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::typed::DateTime;
use super::wire::Value;

/// The wire form of a null reference.
pub const NULL_REF: &str = "OpaqueRef:NULL";

/// A typed object reference (`OpaqueRef:<uuid>`): a `Ref<Host>` cannot be passed where a
/// `Ref<Vm>` is expected.
pub struct Ref<T> {
    id: String,
    class: PhantomData<fn() -> T>,
}

impl<T> Ref<T> {
    /// Wraps a reference string as received (refs are not validated on the wire).
    pub fn new(id: impl Into<String>) -> Self {
        Ref {
            id: id.into(),
            class: PhantomData,
        }
    }

    /// `OpaqueRef:NULL`.
    pub fn null() -> Self {
        Ref::new(NULL_REF)
    }

    /// Whether this is the null reference (or empty, which xapi also treats as unset).
    pub fn is_null(&self) -> bool {
        self.id == NULL_REF || self.id.is_empty()
    }

    /// The reference string.
    pub fn as_str(&self) -> &str {
        &self.id
    }

    /// The same reference, viewed as another class (for maps keyed by untyped refs).
    pub fn cast<U>(&self) -> Ref<U> {
        Ref::new(self.id.clone())
    }
}

impl<T> Default for Ref<T> {
    fn default() -> Self {
        Ref::null()
    }
}

impl<T> Clone for Ref<T> {
    fn clone(&self) -> Self {
        Ref::new(self.id.clone())
    }
}

impl<T> PartialEq for Ref<T> {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl<T> Eq for Ref<T> {}

impl<T> PartialOrd for Ref<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> Ord for Ref<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.id.cmp(&other.id)
    }
}

impl<T> Hash for Ref<T> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.id.hash(state);
    }
}

impl<T> fmt::Debug for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl<T> fmt::Display for Ref<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

impl<T> Serialize for Ref<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.id)
    }
}

impl<'de, T> Deserialize<'de> for Ref<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Ref::new)
    }
}

/// Declares an XAPI enum: wire names as declared, matched case-insensitively on input, unknown
/// values kept in `Unknown` rather than failing the record.
macro_rules! xapi_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? } default $default:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $(#[doc = concat!("`", $wire, "` on the wire.")] $variant,)+
            /// A value this version of xenguard does not know, as received.
            Unknown(String),
        }

        impl $name {
            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $wire,)+
                    $name::Unknown(s) => s,
                }
            }

            /// Parses a wire value, case-insensitively.
            pub fn parse(s: &str) -> Self {
                $(if s.eq_ignore_ascii_case($wire) { return $name::$variant; })+
                $name::Unknown(s.to_owned())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::$default
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(|s| $name::parse(&s))
            }
        }
    };
}

xapi_enum! {
    /// `vm_power_state`.
    PowerState { Halted = "Halted", Paused = "Paused", Running = "Running", Suspended = "Suspended" }
    default Halted
}

xapi_enum! {
    /// `vbd_mode`.
    VbdMode { Ro = "RO", Rw = "RW" }
    default Rw
}

xapi_enum! {
    /// `vbd_type`.
    VbdType { Cd = "CD", Disk = "Disk", Floppy = "Floppy" }
    default Disk
}

xapi_enum! {
    /// `task_status_type`.
    TaskStatus {
        Pending = "pending",
        Success = "success",
        Failure = "failure",
        Cancelling = "cancelling",
        Cancelled = "cancelled",
    }
    default Pending
}

xapi_enum! {
    /// `event_operation`.
    EventOperation { Add = "add", Mod = "mod", Del = "del" }
    default Mod
}

/// A string-to-string map field (`other_config`, `sm_config`, …).
pub type StringMap = BTreeMap<String, String>;

/// `pool`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pool {
    /// Stable identifier.
    pub uuid: String,
    /// Human name.
    pub name_label: String,
    /// The master according to this host's database.
    pub master: Ref<Host>,
    /// XAPI HA on: xapi fences and restarts by itself, and xenguard stands down.
    pub ha_enabled: bool,
    /// Free-form configuration.
    pub other_config: StringMap,
}

/// `host`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Host {
    /// Stable identifier.
    pub uuid: String,
    /// Human name.
    pub name_label: String,
    /// DNS host name.
    pub hostname: String,
    /// Management IP address (updated by `Pool.hello`).
    pub address: String,
    /// Scheduler flag, not liveness: stays true on a dead host until disabled.
    pub enabled: bool,
    /// Its `host_metrics` row, which carries `live`.
    pub metrics: Ref<HostMetrics>,
    /// VMs whose `resident_on` is this host.
    #[serde(rename = "resident_VMs")]
    pub resident_vms: Vec<Ref<Vm>>,
    /// Its control domain (dom0).
    pub control_domain: Ref<Vm>,
    /// Storage attachments.
    #[serde(rename = "PBDs")]
    pub pbds: Vec<Ref<Pbd>>,
    /// API major version.
    #[serde(rename = "API_version_major")]
    pub api_version_major: i64,
    /// API minor version.
    #[serde(rename = "API_version_minor")]
    pub api_version_minor: i64,
    /// Versions of the installed software (`xapi_build`, `product_version`, …).
    pub software_version: StringMap,
    /// Operations allowed now (`power_on` appears only while not live).
    pub allowed_operations: Vec<String>,
    /// Operations in progress, task ref to operation.
    pub current_operations: StringMap,
    /// Free-form configuration (`maintenance_mode` lives here).
    pub other_config: StringMap,
}

/// `host_metrics`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HostMetrics {
    /// Stable identifier.
    pub uuid: String,
    /// Bytes of RAM.
    pub memory_total: i64,
    /// Bytes free (legacy but still written).
    pub memory_free: i64,
    /// "Pool master thinks this host is live": false 600 s after the last heartbeat.
    pub live: bool,
    /// Written only at host creation: not a heartbeat (xapi-notes.md §4.2).
    pub last_updated: DateTime,
    /// Free-form configuration.
    pub other_config: StringMap,
}

/// `VM` (also templates, snapshots and control domains).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Vm {
    /// Stable identifier.
    pub uuid: String,
    /// Human name.
    pub name_label: String,
    /// Power state in the database (stays `Running` on a dead host until reset).
    pub power_state: PowerState,
    /// Host it runs on, or null.
    pub resident_on: Ref<Host>,
    /// Host a start is placing it on, or null.
    pub scheduled_to_be_resident_on: Ref<Host>,
    /// Preferred ("home") host, or null.
    pub affinity: Ref<Host>,
    /// Domain id, -1 when halted.
    pub domid: i64,
    /// dom0 or a driver domain.
    pub is_control_domain: bool,
    /// A template, not a VM.
    pub is_a_template: bool,
    /// A snapshot, not a VM.
    pub is_a_snapshot: bool,
    /// `"restart"`, `"best-effort"` or `""` (a string, not an enum).
    pub ha_restart_priority: String,
    /// Start order (lower first).
    pub order: i64,
    /// Seconds to wait after starting this VM before the next.
    pub start_delay: i64,
    /// Static maximum memory in bytes (what a start must find free).
    pub memory_static_max: i64,
    /// Dynamic maximum memory in bytes.
    pub memory_dynamic_max: i64,
    /// Virtual CPUs at start.
    #[serde(rename = "VCPUs_at_startup")]
    pub vcpus_at_startup: i64,
    /// Its disks and CD drives.
    #[serde(rename = "VBDs")]
    pub vbds: Vec<Ref<Vbd>>,
    /// Operations in progress, task ref to operation.
    pub current_operations: StringMap,
    /// Operations allowed now.
    pub allowed_operations: Vec<String>,
    /// Free-form configuration.
    pub other_config: StringMap,
}

impl Vm {
    /// A real guest: not a template, snapshot or control domain.
    pub fn is_guest(&self) -> bool {
        !self.is_a_template && !self.is_a_snapshot && !self.is_control_domain
    }
}

/// `VBD`: a VM's attachment of a VDI.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Vbd {
    /// Stable identifier.
    pub uuid: String,
    /// The VM.
    #[serde(rename = "VM")]
    pub vm: Ref<Vm>,
    /// The disk, or null for an empty CD drive.
    #[serde(rename = "VDI")]
    pub vdi: Ref<Vdi>,
    /// Device name in the guest.
    pub device: String,
    /// Position in the guest.
    pub userdevice: String,
    /// Boot disk.
    pub bootable: bool,
    /// Read-only or read-write.
    pub mode: VbdMode,
    /// Disk, CD or floppy.
    #[serde(rename = "type")]
    pub kind: VbdType,
    /// Empty drive.
    pub empty: bool,
    /// Plugged into the running domain.
    pub currently_attached: bool,
}

/// `VDI`: a virtual disk.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Vdi {
    /// Stable identifier.
    pub uuid: String,
    /// Human name.
    pub name_label: String,
    /// The storage repository holding it.
    #[serde(rename = "SR")]
    pub sr: Ref<Sr>,
    /// Attachments to VMs.
    #[serde(rename = "VBDs")]
    pub vbds: Vec<Ref<Vbd>>,
    /// Storage-manager state; `host_<host ref>` = `RW`/`RO` marks an attachment
    /// (xapi-notes.md §6.6).
    pub sm_config: StringMap,
    /// Size in bytes seen by the guest.
    pub virtual_size: i64,
    /// Read-only disk.
    pub read_only: bool,
    /// May be attached to several VMs at once.
    pub sharable: bool,
    /// Free-form configuration.
    pub other_config: StringMap,
}

/// `8-4-4-4-12` hexadecimal digits, as xapi writes every uuid.
pub fn is_uuid(text: &str) -> bool {
    let groups: Vec<&str> = text.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Prefix of the `sm_config` keys that record which host has a VDI attached.
pub const SM_CONFIG_HOST_PREFIX: &str = "host_";
/// `sm_config` key blktap sets while a VDI is paused (snapshot, migration); a paused VDI will
/// not attach anywhere until it is removed.
pub const SM_CONFIG_PAUSED: &str = "paused";

impl Vdi {
    /// The hosts holding an attachment tag on this disk, with the tag's mode (`RW` / `RO`).
    pub fn attached_hosts(&self) -> impl Iterator<Item = (Ref<Host>, &str)> {
        self.sm_config.iter().filter_map(|(key, mode)| {
            key.strip_prefix(SM_CONFIG_HOST_PREFIX)
                .map(|host| (Ref::new(host), mode.as_str()))
        })
    }
}

/// `SR`: a storage repository.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Sr {
    /// Stable identifier.
    pub uuid: String,
    /// Human name.
    pub name_label: String,
    /// Backend type (`lvmoiscsi`, `nfs`, `ext`, …).
    #[serde(rename = "type")]
    pub kind: String,
    /// Visible from every host (VMs on it can restart elsewhere).
    pub shared: bool,
    /// Content type (`user`, `iso`, …).
    pub content_type: String,
    /// Its attachments to hosts.
    #[serde(rename = "PBDs")]
    pub pbds: Vec<Ref<Pbd>>,
}

/// `PBD`: an SR plugged into a host.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Pbd {
    /// Stable identifier.
    pub uuid: String,
    /// The host.
    pub host: Ref<Host>,
    /// The SR.
    #[serde(rename = "SR")]
    pub sr: Ref<Sr>,
    /// Plugged now.
    pub currently_attached: bool,
}

/// `task`: the handle of an `Async.` call.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Task {
    /// Stable identifier.
    pub uuid: String,
    /// Human name (the method).
    pub name_label: String,
    /// Progress state.
    pub status: TaskStatus,
    /// 0.0 to 1.0.
    pub progress: f64,
    /// The call's result, encoded as XML (empty for void calls).
    pub result: String,
    /// On failure: error code and parameters.
    pub error_info: Vec<String>,
    /// Creation time.
    pub created: DateTime,
    /// Completion time.
    pub finished: DateTime,
}

/// One change reported by `event.from` (xapi-notes.md §7.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Event {
    /// Database generation of the change, as a string.
    pub id: String,
    /// Always `"0.0"` from event.from.
    pub timestamp: String,
    /// Lower-case class name (`vm`, `host_metrics`, …).
    pub class: String,
    /// add, mod or del.
    pub operation: EventOperation,
    /// The object.
    #[serde(rename = "ref")]
    pub reference: String,
    /// The full record after the change; absent for `del`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot: Option<Value>,
}

/// The result of `event.from`. `events` and `token` are required: an answer without them is
/// not an event batch, whatever else it holds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EventBatch {
    /// Changes since the token, one per object.
    pub events: Vec<Event>,
    /// Number of live objects per lower-case class, for every table: compare to the cache.
    #[serde(default)]
    pub valid_ref_counts: BTreeMap<String, i32>,
    /// Token for the next call.
    pub token: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xapi::typed::{from_value, to_value};

    #[test]
    fn enums_are_case_insensitive_and_keep_unknown_values() {
        assert_eq!(PowerState::parse("running"), PowerState::Running);
        assert_eq!(PowerState::parse("Running"), PowerState::Running);
        assert_eq!(
            PowerState::parse("Crashed"),
            PowerState::Unknown("Crashed".into())
        );
        assert_eq!(PowerState::Running.to_string(), "Running");
    }

    #[test]
    fn vm_record_round_trips_through_the_wire_value() {
        let vm = Vm {
            uuid: "u".into(),
            power_state: PowerState::Running,
            resident_on: Ref::new("OpaqueRef:h1"),
            memory_static_max: 1 << 32,
            ..Vm::default()
        };
        let value = to_value(&vm).unwrap();
        assert_eq!(value.member("power_state"), Some(&Value::string("Running")));
        assert_eq!(
            value.member("memory_static_max"),
            Some(&Value::string("4294967296"))
        );
        assert_eq!(value.member("resident_VMs"), None);
        assert_eq!(from_value::<Vm>(value).unwrap(), vm);
    }

    #[test]
    fn typed_events_decode_snapshots_by_class_in_either_order() {
        use crate::xapi::wire::{Response, decode_response, encode_success};
        let vm = Vm {
            uuid: "u1".into(),
            power_state: PowerState::Running,
            ..Vm::default()
        };
        let snapshot = to_value(&vm).unwrap();
        let event = |class_first: bool| {
            let mut members = vec![
                ("id".to_owned(), Value::string("7")),
                ("operation".to_owned(), Value::string("mod")),
            ];
            let class = ("class".to_owned(), Value::string("vm"));
            let snap = ("snapshot".to_owned(), snapshot.clone());
            if class_first {
                members.push(class);
                members.push(snap);
            } else {
                members.push(snap);
                members.push(class);
            }
            members.push(("ref".to_owned(), Value::string("OpaqueRef:v")));
            Value::Struct(members)
        };
        let batch = Value::Struct(vec![
            (
                "events".into(),
                Value::Array(vec![event(true), event(false)]),
            ),
            (
                "valid_ref_counts".into(),
                Value::Struct(vec![("vm".into(), Value::Int(1))]),
            ),
            ("token".into(), Value::string("t")),
        ]);
        let body = encode_success(&batch);
        let streamed: TypedEventBatch = crate::xapi::stream::decode_response_into(body.as_bytes())
            .unwrap()
            .unwrap();
        let Ok(Response::Success(tree)) = decode_response(body.as_bytes()) else {
            panic!()
        };
        let via_tree: TypedEventBatch = from_value(tree).unwrap();
        for batch in [streamed, via_tree] {
            assert_eq!(batch.events.len(), 2);
            for e in &batch.events {
                assert_eq!(e.snapshot, Some(Snapshot::Vm(vm.clone())));
                assert_eq!(
                    (e.class.as_str(), e.reference.as_str(), e.operation.clone()),
                    ("vm", "OpaqueRef:v", EventOperation::Mod)
                );
            }
        }
    }

    #[test]
    fn vdi_attachment_tags() {
        let mut vdi = Vdi::default();
        vdi.sm_config
            .insert("host_OpaqueRef:h1".into(), "RW".into());
        vdi.sm_config.insert("vhd-parent".into(), "x".into());
        let tags: Vec<_> = vdi.attached_hosts().collect();
        assert_eq!(tags, vec![(Ref::new("OpaqueRef:h1"), "RW")]);
    }
}

/// An `event.from` snapshot decoded as the record of its event's class.
#[derive(Debug, Clone, PartialEq)]
pub enum Snapshot {
    /// `pool`.
    Pool(Pool),
    /// `host`.
    Host(Host),
    /// `host_metrics`.
    HostMetrics(HostMetrics),
    /// `vm`.
    Vm(Vm),
    /// `vbd`.
    Vbd(Vbd),
    /// `vdi`.
    Vdi(Vdi),
    /// `sr`.
    Sr(Sr),
    /// `pbd`.
    Pbd(Pbd),
    /// `task`.
    Task(Task),
    /// A class without a typed record here.
    Other(Value),
}

/// One `event.from` change with a typed snapshot (see [`TypedEventBatch`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TypedEvent {
    /// Database generation of the change.
    pub id: String,
    /// Lower-case class name.
    pub class: String,
    /// add, mod or del.
    pub operation: EventOperation,
    /// The object.
    pub reference: String,
    /// The record after the change; absent for `del`.
    pub snapshot: Option<Snapshot>,
}

/// The result of `event.from` with every snapshot decoded straight into its typed record, so
/// a full dump of a large pool is never held as generic values.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct TypedEventBatch {
    /// Changes since the token, one per object.
    pub events: Vec<TypedEvent>,
    /// Number of live objects per lower-case class, for every table.
    #[serde(default)]
    pub valid_ref_counts: BTreeMap<String, i32>,
    /// Token for the next call.
    pub token: String,
}

impl Snapshot {
    /// Decodes `value` as the record of `class`.
    fn from_value(class: &str, value: Value) -> Result<Snapshot, super::wire::WireError> {
        use super::typed::from_value;
        Ok(match class {
            "pool" => Snapshot::Pool(from_value(value)?),
            "host" => Snapshot::Host(from_value(value)?),
            "host_metrics" => Snapshot::HostMetrics(from_value(value)?),
            "vm" => Snapshot::Vm(from_value(value)?),
            "vbd" => Snapshot::Vbd(from_value(value)?),
            "vdi" => Snapshot::Vdi(from_value(value)?),
            "sr" => Snapshot::Sr(from_value(value)?),
            "pbd" => Snapshot::Pbd(from_value(value)?),
            "task" => Snapshot::Task(from_value(value)?),
            _ => Snapshot::Other(value),
        })
    }
}

impl<'de> Deserialize<'de> for TypedEvent {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(TypedEventVisitor)
    }
}

struct TypedEventVisitor;

impl<'de> serde::de::Visitor<'de> for TypedEventVisitor {
    type Value = TypedEvent;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an event.from event struct")
    }

    /// xapi writes `class` before `snapshot` (xapi-notes.md §7.1), so the snapshot is decoded
    /// straight into its record; a snapshot that comes first is decoded generically, then
    /// converted.
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<TypedEvent, A::Error> {
        use serde::de::{Error as _, IgnoredAny};
        let mut event = TypedEvent::default();
        let mut early: Option<Value> = None;
        let mut class_seen = false;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "id" => event.id = map.next_value()?,
                "class" => {
                    event.class = map.next_value::<String>()?.to_ascii_lowercase();
                    class_seen = true;
                }
                "operation" => event.operation = map.next_value()?,
                "ref" => event.reference = map.next_value()?,
                "snapshot" if class_seen => {
                    event.snapshot = Some(match event.class.as_str() {
                        "pool" => Snapshot::Pool(map.next_value()?),
                        "host" => Snapshot::Host(map.next_value()?),
                        "host_metrics" => Snapshot::HostMetrics(map.next_value()?),
                        "vm" => Snapshot::Vm(map.next_value()?),
                        "vbd" => Snapshot::Vbd(map.next_value()?),
                        "vdi" => Snapshot::Vdi(map.next_value()?),
                        "sr" => Snapshot::Sr(map.next_value()?),
                        "pbd" => Snapshot::Pbd(map.next_value()?),
                        "task" => Snapshot::Task(map.next_value()?),
                        _ => Snapshot::Other(map.next_value()?),
                    });
                }
                "snapshot" => early = Some(map.next_value()?),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if let Some(value) = early {
            event.snapshot =
                Some(Snapshot::from_value(&event.class, value).map_err(A::Error::custom)?);
        }
        Ok(event)
    }
}

#[cfg(test)]
mod uuid_tests {
    use super::is_uuid;

    #[test]
    fn uuids_are_recognised_exactly() {
        assert!(is_uuid("0f6a2b3c-1d2e-4f50-8a9b-0c1d2e3f4a5b"));
        for bad in [
            "",
            "host1",
            "0f6a2b3c-1d2e-4f50-8a9b-0c1d2e3f4a5",
            "0f6a2b3c-1d2e-4f50-8a9b-0c1d2e3f4a5bb",
            "0f6a2b3c-1d2e-4f50-8a9b-0c1d2e3f4a5g",
            "0f6a2b3c1d2e-4f50-8a9b-0c1d2e3f4a5b-",
            "0f6a2b3c-1d2e-4f50-8a9b-0c1d2e3f4a5b\nforged log line",
        ] {
            assert!(!is_uuid(bad), "{bad:?}");
        }
    }
}
