//! The ground truth of a simulated pool and the per-host state xapi keeps, with the timed
//! behaviour of xapi-notes.md §3–§4: pool.conf roles, emergency mode entered only at a slave's xapi
//! (re)start without a master, heartbeats every 30 s and `live=false` 600 s after the last,
//! the 600 s all-live grace after a master (re)start, the 10 s fuse after a role change,
//! database backups to slaves, and the master's `check_no_other_masters` at start.
//!
//! Ground truth is what really happens, which no XAPI answer may contradict: a host's
//! power, its xapi process, its management network, and which domains run where. The count
//! of VMs running on more than one host at once is the data-corruption figure every drill
//! asserts is zero.

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use crate::xapi::error::{ErrorCode, Failure};
use crate::xapi::records::{
    Host, HostMetrics, Pbd, Pool, PowerState, Ref, Sr, Vbd, VbdMode, VbdType, Vdi, Vm,
};
use crate::xapi::typed::DateTime;

use super::db::Db;

/// Heartbeat period of a slave (xapi-notes.md §4.3).
pub const HEARTBEAT_INTERVAL: f64 = 30.0;
/// A host is assumed dead this long after its last heartbeat; also the grace after a master
/// (re)start during which every host counts as live (xapi-notes.md §4.1).
pub const HOST_ASSUMED_DEAD: f64 = 600.0;
/// Delay between a role change and xapi's restart (xapi-notes.md §6.1).
pub const FUSE: f64 = 10.0;
/// A slave receives a database backup every this many seconds, one slave at a time
/// (xapi-notes.md §4.3).
pub const DB_BACKUP_INTERVAL: f64 = 300.0;
/// Retry interval of an emergency-mode slave's start-up loop after a temporary failure
/// (xapi-notes.md §3.2).
pub const STARTUP_RETRY: f64 = 5.0;
/// Retry interval after a permanent failure (`permanent_master_failure_retry_interval`).
pub const PERMANENT_FAILURE_RETRY: f64 = 60.0;
/// Delay before a failed `login_with_password` answers (xapi-notes.md §2.1).
pub const FAILED_LOGIN_DELAY: f64 = 5.0;

pub use super::tasks::{
    DECLARE_DEAD_HOOK_PER_SR, FORWARD_CONNECT_TIMEOUT, PendingTask, Timing, TimingParams,
};

/// What `/etc/xensource/pool.conf` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// `master`.
    Master,
    /// `slave:<master address>`.
    Slave(String),
}

pub use super::faults::{Fault, Faults};

/// One simulated host: its physical state, its xapi process and what that process believes.
#[derive(Debug, Clone)]
pub struct SimHost {
    /// Name label.
    pub name: String,
    /// Host uuid.
    pub uuid: String,
    /// Host reference (the same in every database copy).
    pub reference: String,
    /// Management address (127.0.0.x).
    pub address: String,
    /// Physical power.
    pub power_on: bool,
    /// The chassis' two power feeds (a dual-PSU host behind two PDU outlets): it has power
    /// while either is on; with both off it loses power, and its BMC with it.
    pub feeds: [bool; 2],
    /// Management network cable.
    pub network_up: bool,
    /// Only the path between this host and the outside (the receiver, the exporter) is cut:
    /// the other hosts still reach it (a firewall rule, a routing change).
    pub outside_cut: bool,
    /// The xapi process runs (only meaningful while powered on).
    pub xapi_running: bool,
    /// pool.conf.
    pub role: Role,
    /// `slave_emergency_mode`.
    pub emergency: bool,
    /// The error an emergency-mode host gives to non-whitelisted calls.
    pub emergency_error: Failure,
    /// Local `ha.armed` flag.
    pub ha_armed: bool,
    /// This host's database copy: live on a master, the last backup on a slave. Copies are
    /// shared until written (a 5,000-VM pool keeps one database, not one per host).
    pub db: Arc<Db>,
    /// Pool sessions (masters only; lost when xapi restarts).
    pub sessions: BTreeSet<String>,
    /// Local sessions (lost when xapi restarts).
    pub local_sessions: BTreeSet<String>,
    /// Simulated time at which xapi restarts after a role change.
    pub fuse_at: Option<f64>,
    /// Emergency mode only: when the start-up loop next tries to reach the master.
    pub retry_at: f64,
    /// Master only: last heartbeat time per slave reference (in memory, reset at start).
    pub heartbeats: BTreeMap<String, f64>,
    /// Injected misbehaviour.
    pub faults: Faults,
    /// Simulated time of its last boot (0: before the simulation began). Its RRDs hold no
    /// data from before it ([`super::rrd`]).
    pub booted_at: f64,
}

impl SimHost {
    /// The xapi process answers connections on the management network.
    pub fn answers(&self) -> bool {
        self.power_on && self.network_up && self.xapi_running
    }
}

/// The simulated pool.
#[derive(Debug, Clone)]
pub struct Model {
    /// The hosts, in address order (host i on 127.0.0.(11+i) for the first 200).
    pub hosts: Vec<SimHost>,
    /// Ground truth: VM uuid -> uuids of the hosts where its domain really runs.
    pub running: BTreeMap<String, BTreeSet<String>>,
    /// Guest uuid -> name label, for the ground-truth report.
    pub guests: BTreeMap<String, String>,
    /// Root password of every host.
    pub password: String,
    /// Next id for references, uuids and sessions (deterministic).
    next_id: u64,
    /// Next slave to receive a database backup.
    backup_cursor: usize,
    /// Time of the last backup.
    last_backup: f64,
    /// Realistic or instant answers.
    pub timing: Timing,
    /// The realistic model's durations.
    pub params: TimingParams,
    /// `Async.` tasks still working.
    pub pending: Vec<PendingTask>,
}

/// How to build a pool.
#[derive(Debug, Clone)]
pub struct PoolSpec {
    /// Number of hosts.
    pub hosts: usize,
    /// Guests started on each host.
    pub vms_per_host: usize,
    /// Address of host 0; host i gets the last octet + i.
    pub first_address: [u8; 4],
    /// Root password.
    pub password: String,
    /// Realistic (default) or instant answers.
    pub timing: Timing,
}

impl Default for PoolSpec {
    fn default() -> Self {
        PoolSpec {
            hosts: 3,
            vms_per_host: 2,
            first_address: [127, 0, 0, 11],
            password: "xenguard".into(),
            timing: Timing::default(),
        }
    }
}

/// Bytes of RAM of each simulated host.
pub(super) const HOST_MEMORY: i64 = 256 << 30;
/// Bytes of RAM of each guest.
const VM_MEMORY: i64 = 2 << 30;
/// Bytes of RAM of a control domain.
pub(super) const DOM0_MEMORY: i64 = 4 << 30;

impl Model {
    /// Builds a healthy pool: host 0 is master, every guest runs where the database says, its
    /// disks tagged by that host, every slave holding a fresh database backup. The last guest
    /// of host 0 sits on host 0's local storage (it cannot restart elsewhere).
    pub fn build(spec: &PoolSpec) -> Model {
        let mut m = Model {
            hosts: Vec::new(),
            running: BTreeMap::new(),
            guests: BTreeMap::new(),
            password: spec.password.clone(),
            next_id: 1,
            backup_cursor: 0,
            last_backup: 0.0,
            timing: spec.timing,
            params: TimingParams::default(),
            pending: Vec::new(),
        };
        let mut db = Db::default();
        let pool_ref = m.new_ref();
        let shared_sr = m.new_ref();
        let master_address = address_of(spec.first_address, 0);
        let mut host_refs = Vec::new();
        for i in 0..spec.hosts {
            let (reference, metrics, dom0) = (m.new_ref(), m.new_ref(), m.new_ref());
            let uuid = m.new_uuid();
            let address = address_of(spec.first_address, i);
            let name = format!("host{}", i + 1);
            let local_sr = m.new_ref();
            let (local_pbd, shared_pbd) = (m.new_ref(), m.new_ref());
            let metrics_uuid = m.new_uuid();
            Db::put(
                |d| &mut d.host_metrics,
                &mut db,
                &metrics,
                HostMetrics {
                    uuid: metrics_uuid,
                    memory_total: HOST_MEMORY,
                    memory_free: HOST_MEMORY - DOM0_MEMORY,
                    live: true,
                    last_updated: DateTime::epoch(),
                    ..HostMetrics::default()
                },
            );
            let dom0_uuid = m.new_uuid();
            Db::put(
                |d| &mut d.vm,
                &mut db,
                &dom0,
                Vm {
                    uuid: dom0_uuid,
                    name_label: format!("Control domain on host: {name}"),
                    power_state: PowerState::Running,
                    resident_on: Ref::new(&reference),
                    domid: 0,
                    is_control_domain: true,
                    memory_static_max: DOM0_MEMORY,
                    ..Vm::default()
                },
            );
            let sr_uuid = m.new_uuid();
            Db::put(
                |d| &mut d.sr,
                &mut db,
                &local_sr,
                Sr {
                    uuid: sr_uuid,
                    name_label: format!("Local storage on {name}"),
                    kind: "ext".into(),
                    shared: false,
                    content_type: "user".into(),
                    pbds: vec![Ref::new(&local_pbd)],
                },
            );
            for (pbd, sr) in [(&local_pbd, &local_sr), (&shared_pbd, &shared_sr)] {
                let pbd_uuid = m.new_uuid();
                Db::put(
                    |d| &mut d.pbd,
                    &mut db,
                    pbd,
                    Pbd {
                        uuid: pbd_uuid,
                        host: Ref::new(&reference),
                        sr: Ref::new(sr.as_str()),
                        currently_attached: true,
                    },
                );
            }
            let software_version: BTreeMap<String, String> = [
                ("product_brand", "XCP-ng"),
                ("product_version", "8.3.0"),
                ("xapi", "25.6"),
                ("xapi_build", "25.6.0"),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
            Db::put(
                |d| &mut d.host,
                &mut db,
                &reference,
                Host {
                    uuid: uuid.clone(),
                    name_label: name.clone(),
                    hostname: name.clone(),
                    address: address.clone(),
                    enabled: true,
                    metrics: Ref::new(&metrics),
                    control_domain: Ref::new(&dom0),
                    resident_vms: vec![Ref::new(&dom0)],
                    pbds: vec![Ref::new(&local_pbd), Ref::new(&shared_pbd)],
                    api_version_major: 2,
                    api_version_minor: 21,
                    software_version,
                    // Booted, and xapi started, when the simulated clock began.
                    other_config: [("boot_time", "0.0"), ("agent_start_time", "0.0")]
                        .into_iter()
                        .map(|(k, v)| (k.to_owned(), v.to_owned()))
                        .collect(),
                    ..Host::default()
                },
            );
            host_refs.push((reference.clone(), local_sr.clone()));
            m.hosts.push(SimHost {
                name,
                uuid,
                reference,
                address,
                power_on: true,
                feeds: [true, true],
                network_up: true,
                outside_cut: false,
                xapi_running: true,
                role: if i == 0 {
                    Role::Master
                } else {
                    Role::Slave(master_address.clone())
                },
                emergency: false,
                emergency_error: Failure::new(ErrorCode::HostStillBooting, vec![]),
                ha_armed: false,
                booted_at: 0.0,
                db: Arc::default(),
                sessions: BTreeSet::new(),
                local_sessions: BTreeSet::new(),
                fuse_at: None,
                retry_at: 0.0,
                heartbeats: BTreeMap::new(),
                faults: Faults::default(),
            });
        }
        let all_pbds: Vec<Ref<Pbd>> = db
            .pbd
            .iter()
            .filter(|(_, p)| p.sr.as_str() == shared_sr)
            .map(|(r, _)| Ref::new(r.as_str()))
            .collect();
        let shared_uuid = m.new_uuid();
        Db::put(
            |d| &mut d.sr,
            &mut db,
            &shared_sr,
            Sr {
                uuid: shared_uuid,
                name_label: "Shared NFS storage".into(),
                kind: "nfs".into(),
                shared: true,
                content_type: "user".into(),
                pbds: all_pbds,
            },
        );
        let pool_uuid = m.new_uuid();
        Db::put(
            |d| &mut d.pool,
            &mut db,
            &pool_ref,
            Pool {
                uuid: pool_uuid,
                name_label: "simpool".into(),
                master: Ref::new(&host_refs[0].0),
                ..Pool::default()
            },
        );
        for template in [
            "Debian Bookworm 12",
            "Windows Server 2022 (64-bit)",
            "Other install media",
        ] {
            let (reference, uuid) = (m.new_ref(), m.new_uuid());
            Db::put(
                |d| &mut d.vm,
                &mut db,
                &reference,
                Vm {
                    uuid,
                    name_label: template.into(),
                    is_a_template: true,
                    memory_static_max: VM_MEMORY,
                    domid: -1,
                    ..Vm::default()
                },
            );
        }
        let mut guest = 0;
        for (h, (host_ref, local_sr)) in host_refs.iter().enumerate() {
            for k in 0..spec.vms_per_host {
                guest += 1;
                let on_local = h == 0 && k + 1 == spec.vms_per_host;
                let sr = if on_local {
                    local_sr.as_str()
                } else {
                    shared_sr.as_str()
                };
                let name = format!("vm{guest:04}");
                m.add_guest(&mut db, &name, host_ref, sr, (k % 3) as i64);
            }
        }
        let db = Arc::new(db);
        for host in &mut m.hosts {
            host.db = db.clone();
        }
        m.refresh_memory_free_all(0);
        m
    }

    /// Adds a running guest with one disk on `sr`, tagged by its host as blktap would.
    fn add_guest(&mut self, db: &mut Db, name: &str, host_ref: &str, sr: &str, order: i64) {
        let (vm_ref, vbd_ref, vdi_ref) = (self.new_ref(), self.new_ref(), self.new_ref());
        let (vm_uuid, vbd_uuid, vdi_uuid) = (self.new_uuid(), self.new_uuid(), self.new_uuid());
        let mut sm_config = BTreeMap::new();
        sm_config.insert(format!("host_{host_ref}"), "RW".to_owned());
        sm_config.insert("vdi_type".to_owned(), "vhd".to_owned());
        Db::put(
            |d| &mut d.vdi,
            db,
            &vdi_ref,
            Vdi {
                uuid: vdi_uuid,
                name_label: format!("{name} disk 0"),
                sr: Ref::new(sr),
                vbds: vec![Ref::new(&vbd_ref)],
                sm_config,
                virtual_size: 20 << 30,
                ..Vdi::default()
            },
        );
        Db::put(
            |d| &mut d.vbd,
            db,
            &vbd_ref,
            Vbd {
                uuid: vbd_uuid,
                vm: Ref::new(&vm_ref),
                vdi: Ref::new(&vdi_ref),
                device: "xvda".into(),
                userdevice: "0".into(),
                bootable: true,
                mode: VbdMode::Rw,
                kind: VbdType::Disk,
                empty: false,
                currently_attached: true,
            },
        );
        Db::put(
            |d| &mut d.vm,
            db,
            &vm_ref,
            Vm {
                uuid: vm_uuid.clone(),
                name_label: name.into(),
                power_state: PowerState::Running,
                resident_on: Ref::new(host_ref),
                affinity: Ref::new(host_ref),
                domid: (self.next_number() % 30_000) as i64,
                ha_restart_priority: "restart".into(),
                order,
                memory_static_max: VM_MEMORY,
                memory_dynamic_max: VM_MEMORY,
                vcpus_at_startup: 2,
                vbds: vec![Ref::new(&vbd_ref)],
                ..Vm::default()
            },
        );
        Db::update(
            |d| &mut d.host,
            db,
            host_ref,
            |h| h.resident_vms.push(Ref::new(&vm_ref)),
        );
        let host_uuid = db
            .host
            .get(host_ref)
            .map(|h| h.uuid.clone())
            .unwrap_or_default();
        self.guests.insert(vm_uuid.clone(), name.to_owned());
        self.running.entry(vm_uuid).or_default().insert(host_uuid);
    }

    /// A fresh small number (domain ids).
    pub fn next_number(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    /// A fresh `OpaqueRef:<uuid>`.
    pub fn new_ref(&mut self) -> String {
        format!("OpaqueRef:{}", self.new_uuid())
    }

    /// A fresh, deterministic, well-formed v4 uuid.
    pub fn new_uuid(&mut self) -> String {
        let n = self.next_id;
        self.next_id += 1;
        format!(
            "{:08x}-5a1e-4{:03x}-8{:03x}-{:012x}",
            n.wrapping_mul(2_654_435_761) & 0xffff_ffff,
            n % 4096,
            (n / 4096) % 4096,
            n
        )
    }

    /// Index of the host with this name label, uuid, address or reference.
    pub fn find_host(&self, key: &str) -> Option<usize> {
        self.hosts
            .iter()
            .position(|h| h.name == key || h.uuid == key || h.address == key || h.reference == key)
    }

    /// Index of the host with this reference.
    pub fn host_by_ref(&self, reference: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.reference == reference)
    }

    /// Index of the host at this address.
    pub fn host_by_address(&self, address: &str) -> Option<usize> {
        self.hosts.iter().position(|h| h.address == address)
    }

    /// Whether `from` can open a connection to `to`'s xapi and get an answer.
    pub fn reaches(&self, from: usize, to: usize) -> bool {
        let (a, b) = (&self.hosts[from], &self.hosts[to]);
        a.power_on && a.network_up && b.answers()
    }

    /// The host `i`'s pool.conf names as master, if that address is a simulated host.
    pub fn configured_master(&self, i: usize) -> Option<usize> {
        match &self.hosts[i].role {
            Role::Master => Some(i),
            Role::Slave(address) => self.host_by_address(address),
        }
    }

    /// The host whose database serves `i`'s DB-backed calls, if reachable now: itself when
    /// master, else its master when that answers as master. `None` means such calls block.
    pub fn database_host(&self, i: usize) -> Option<usize> {
        let m = self.configured_master(i)?;
        if m == i {
            return Some(i);
        }
        (self.reaches(i, m) && self.hosts[m].role == Role::Master && !self.hosts[m].emergency)
            .then_some(m)
    }

    // -----------------------------------------------------------------------------------------
    // Time
    // -----------------------------------------------------------------------------------------

    /// Brings every timer up to `now`: fuses, emergency start-up loops, heartbeats, the
    /// master's liveness check, database backups.
    pub fn tick(&mut self, now: f64) {
        self.finish_due_tasks(now);
        for i in 0..self.hosts.len() {
            if self.hosts[i].fuse_at.is_some_and(|t| t <= now) {
                self.start_xapi(i, now);
            }
        }
        for i in 0..self.hosts.len() {
            let h = &self.hosts[i];
            if !(h.power_on && h.xapi_running) {
                continue;
            }
            if h.emergency && h.retry_at <= now {
                self.try_slave_startup(i, now, false);
            } else if let Role::Slave(_) = h.role
                && let Some(m) = self.database_host(i)
                && m != i
            {
                let slave_ref = self.hosts[i].reference.clone();
                if self.hosts[m].db.host.get(&slave_ref).is_some() {
                    self.hosts[m].heartbeats.insert(slave_ref, now);
                }
            }
        }
        for m in 0..self.hosts.len() {
            let h = &self.hosts[m];
            if !(h.power_on && h.xapi_running && h.role == Role::Master) {
                continue;
            }
            let me = h.reference.clone();
            let refs: Vec<String> =
                h.db.host
                    .iter()
                    .map(|(r, _)| r.clone())
                    .filter(|r| *r != me)
                    .collect();
            for r in refs {
                let last = *self.hosts[m].heartbeats.entry(r.clone()).or_insert(now);
                self.set_live(m, &r, now - last <= HOST_ASSUMED_DEAD);
            }
        }
        if now - self.last_backup >= DB_BACKUP_INTERVAL {
            self.last_backup = now;
            self.backup_one_slave();
        }
    }

    /// Pushes the master's database to the next reachable slave (round robin,
    /// xapi-notes.md §4.3).
    fn backup_one_slave(&mut self) {
        let Some(m) = (0..self.hosts.len()).find(|&m| {
            let h = &self.hosts[m];
            h.answers() && h.role == Role::Master
        }) else {
            return;
        };
        let n = self.hosts.len();
        for step in 1..=n {
            let i = (self.backup_cursor + step) % n;
            if i != m && self.reaches(m, i) && self.configured_master(i) == Some(m) {
                self.backup_cursor = i;
                self.hosts[i].db = self.hosts[m].db.clone();
                return;
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // VM state helpers shared by the API methods
    // -----------------------------------------------------------------------------------------

    /// `force_state_reset ~value:Halted` in `m`'s database (xapi-notes.md §5.3 step 4). VDI tags
    /// stay.
    pub fn reset_vm_record(&mut self, m: usize, vm: &str) {
        self.set_residence(m, vm, None);
    }

    /// Records in `m`'s database that `vm` runs on `host` (with domain `domid`), or, with
    /// `None`, that it is halted: power state, residence, VBD attachment, the host's
    /// `resident_VMs` and free memory change together.
    pub fn set_residence(&mut self, m: usize, vm: &str, on: Option<(&str, i64)>) {
        let db = Arc::make_mut(&mut self.hosts[m].db);
        let Some(record) = db.vm.get(vm).cloned() else {
            return;
        };
        let host = match on {
            Some((host, _)) => host.to_owned(),
            None => record.resident_on.as_str().to_owned(),
        };
        Db::update(
            |d| &mut d.vm,
            db,
            vm,
            |v| match on {
                Some((host, domid)) => {
                    v.power_state = PowerState::Running;
                    v.resident_on = Ref::new(host);
                    v.domid = domid;
                }
                None => {
                    v.power_state = PowerState::Halted;
                    v.resident_on = Ref::null();
                    v.scheduled_to_be_resident_on = Ref::null();
                    v.domid = -1;
                    v.current_operations.clear();
                }
            },
        );
        for vbd in &record.vbds {
            Db::update(
                |d| &mut d.vbd,
                db,
                vbd.as_str(),
                |b| b.currently_attached = on.is_some(),
            );
        }
        Db::update(
            |d| &mut d.host,
            db,
            &host,
            |h| match on {
                Some(_) => h.resident_vms.push(Ref::new(vm)),
                None => h.resident_vms.retain(|r| r.as_str() != vm),
            },
        );
        self.refresh_memory_free(m, &host);
    }

    /// A clean shutdown on host `on`: the domain stops, its disks are detached (tags removed),
    /// the record halts.
    pub fn halt_vm(&mut self, m: usize, vm: &str, on: usize) {
        let Some(record) = self.hosts[m].db.vm.get(vm).cloned() else {
            return;
        };
        let on_uuid = self.hosts[on].uuid.clone();
        if let Some(hosts) = self.running.get_mut(&record.uuid) {
            hosts.remove(&on_uuid);
        }
        let key = format!("host_{}", self.hosts[on].reference);
        for vdi in self.vdis_of(m, &record) {
            let db = Arc::make_mut(&mut self.hosts[m].db);
            Db::update(
                |d| &mut d.vdi,
                db,
                &vdi,
                |v| {
                    v.sm_config.remove(&key);
                },
            );
        }
        self.reset_vm_record(m, vm);
    }

    /// The VDIs behind a VM's non-empty VBDs.
    pub fn vdis_of(&self, m: usize, vm: &Vm) -> Vec<String> {
        let db = &self.hosts[m].db;
        vm.vbds
            .iter()
            .filter_map(|b| db.vbd.get(b.as_str()))
            .filter(|b| !b.empty && !b.vdi.is_null())
            .map(|b| b.vdi.as_str().to_owned())
            .collect()
    }

    /// Recomputes `host_metrics.memory_free` of one host in `m`'s database.
    pub fn refresh_memory_free(&mut self, m: usize, host_ref: &str) {
        let db = Arc::make_mut(&mut self.hosts[m].db);
        let Some(host) = db.host.get(host_ref) else {
            return;
        };
        let metrics = host.metrics.as_str().to_owned();
        let used: i64 = db
            .vm
            .iter()
            .filter(|(_, v)| v.resident_on.as_str() == host_ref)
            .map(|(_, v)| v.memory_static_max)
            .sum();
        let total = db
            .host_metrics
            .get(&metrics)
            .map_or(0, |hm| hm.memory_total);
        let free = (total - used).max(0);
        if db
            .host_metrics
            .get(&metrics)
            .is_some_and(|hm| hm.memory_free != free)
        {
            Db::update(
                |d| &mut d.host_metrics,
                db,
                &metrics,
                |hm| hm.memory_free = free,
            );
        }
    }

    fn refresh_memory_free_all(&mut self, m: usize) {
        let refs: Vec<String> = self.hosts[m]
            .db
            .host
            .iter()
            .map(|(r, _)| r.clone())
            .collect();
        for r in refs {
            self.refresh_memory_free(m, &r);
        }
        for i in 0..self.hosts.len() {
            if i != m {
                self.hosts[i].db = self.hosts[m].db.clone();
            }
        }
    }

    // -----------------------------------------------------------------------------------------
    // Ground truth
    // -----------------------------------------------------------------------------------------

    /// VMs whose domain runs on more than one host at once.
    pub fn double_running(&self) -> usize {
        self.running
            .values()
            .filter(|hosts| hosts.len() > 1)
            .count()
    }
}

/// Host `i`'s address: 200 hosts per third octet from `first` on (127.0.0.11 to .210, then
/// 127.0.1.11 …), so large pools stay on loopback addresses that never end in 0 or 255.
fn address_of(first: [u8; 4], i: usize) -> String {
    let third = first[2] as usize + i / HOSTS_PER_OCTET;
    let last = first[3] as usize + i % HOSTS_PER_OCTET;
    format!(
        "{}.{}.{}.{}",
        first[0],
        first[1],
        third.min(255),
        last.min(254)
    )
}

/// Hosts numbered within one third octet (see [`address_of`]).
const HOSTS_PER_OCTET: usize = 200;

pub(super) fn role_address(role: &Role) -> String {
    match role {
        Role::Master => String::new(),
        Role::Slave(a) => a.clone(),
    }
}
