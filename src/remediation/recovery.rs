//! The recovery steps after the fence (architecture.md §6), each re-reading live state first so
//! that a step repeated after a crash does only what is still left: promote, recover the slaves,
//! reset the dead host's VMs, release their disk locks, clear affinity, start them elsewhere,
//! verify. Every mutating call goes through the [`PoolActuator`](crate::xapi::PoolActuator).
//!
//! # Guarantees
//! - The list of VMs to restart is journaled ([`RunState::vms`]) before anything resets them,
//!   since a reset erases where they ran.
//! - A VM is started only while XAPI says it is halted; one already running is left alone.
//! - A VM that cannot be started (its disks on storage no survivor sees, no host with room, the
//!   start failing) is recorded with the reason; the others still start.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::inventory::{KnownHost, PoolClient, SeenVm, boot_time};
use super::journal::JournalError;
use super::machine::Target;
use crate::config::Mode;
use crate::xapi::probe::Role;
use crate::xapi::records::{
    Host, HostMetrics, Pbd, PowerState, Ref, SM_CONFIG_HOST_PREFIX, SM_CONFIG_PAUSED, Sr, Vbd, Vdi,
    Vm,
};
use crate::xapi::{Error, ErrorCode};

/// Longest wait for a promoted host to restart as master (xapi's fuse is 10 s, plus start-up).
pub const PROMOTION_WAIT: Duration = Duration::from_secs(180);
/// `recover_slaves` attempts while expected slaves are missing from its answer.
const RECOVER_ATTEMPTS: u32 = 3;
/// Pause between those attempts and between checks of a restarting master.
const RETRY_PAUSE: Duration = Duration::from_secs(2);

/// What the executor keeps about a remediation between steps (journaled as JSON).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// The receiver's mode when the plan was made.
    pub mode: Mode,
    /// Which host the recovery is for, once confirmed.
    pub target: Option<Target>,
    /// The host being recovered.
    pub suspect: Option<KnownHost>,
    /// The host to promote (dead master).
    pub survivor: Option<KnownHost>,
    /// Other hosts that answered at confirmation.
    pub answering: Vec<KnownHost>,
    /// The VMs that ran on the dead host, recorded before they are reset.
    pub vms: Vec<PlannedVm>,
    /// Who approved it (`approve` mode).
    pub approved_by: Option<String>,
    /// Who attested the host off instead of a fence.
    pub attested_by: Option<String>,
    /// The verification's summary, once done.
    pub summary: Option<String>,
    /// Dead master: guests the receiver last saw running on it that the promoted host's
    /// database does not show running there (restored from an older backup). Not started:
    /// where they run cannot be decided; the summary names them for an operator.
    #[serde(default)]
    pub unaccounted: Vec<String>,
    /// Dead master: the guests it ran when the receiver last read the pool from it.
    #[serde(default)]
    pub seen_on_master: Vec<SeenVm>,
    /// Dead master: guests the promoted host's database places on it that the receiver last
    /// saw elsewhere (moved after the database backup the promoted host restored). Neither
    /// reset nor started: they may be running on a live host.
    #[serde(default)]
    pub doubtful: Vec<String>,
}

/// One VM to bring back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedVm {
    /// VM reference.
    pub reference: Ref<Vm>,
    /// VM uuid.
    pub uuid: String,
    /// Name label.
    pub name_label: String,
    /// `ha_restart_priority` (`restart`, `best-effort`, empty).
    pub priority: String,
    /// `order` (lower starts first).
    pub order: i64,
    /// `memory_static_max`, bytes.
    pub memory: i64,
    /// Where it was started, or why not (filled by the start step).
    pub outcome: Option<String>,
}

/// Evidence of one step, for the journal.
pub type StepResult = Result<serde_json::Value, StepError>;

/// Why a recovery step failed. [`StepError::kind`] labels
/// `xenguard_remediation_steps_total{outcome}`; the message goes to the journal.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// An XAPI call or read failed.
    #[error("{what}: {source}")]
    Xapi {
        /// The call, or what was being read.
        what: &'static str,
        /// The client's error.
        #[source]
        source: Error,
    },
    /// The pool is not as the step needs it: a host still live, guests still recorded on the
    /// dead host, locks left, a survivor that did not become master.
    #[error("{0}")]
    Pool(String),
    /// The receiver's own records (journal, run state, configuration) do not allow the step.
    #[error("{0}")]
    Receiver(String),
}

impl StepError {
    /// Every [`StepError::kind`], for metric labels present from the start.
    pub const KINDS: [&'static str; 3] = ["xapi_error", "pool_state", "receiver_state"];

    /// The metric label of this failure.
    pub fn kind(&self) -> &'static str {
        match self {
            StepError::Xapi { .. } => StepError::KINDS[0],
            StepError::Pool(_) => StepError::KINDS[1],
            StepError::Receiver(_) => StepError::KINDS[2],
        }
    }
}

impl From<JournalError> for StepError {
    fn from(e: JournalError) -> Self {
        StepError::Receiver(e.to_string())
    }
}

fn xapi(what: &'static str, source: Error) -> StepError {
    StepError::Xapi { what, source }
}

/// Restart order: `restart` before `best-effort` before unprotected, then by `order`, then by
/// name so that the order is deterministic.
pub fn restart_order(vms: &mut [PlannedVm]) {
    let class = |p: &str| match p {
        "restart" => 0,
        "best-effort" => 1,
        _ => 2,
    };
    vms.sort_by(|a, b| {
        (class(&a.priority), a.order, &a.name_label, &a.uuid).cmp(&(
            class(&b.priority),
            b.order,
            &b.name_label,
            &b.uuid,
        ))
    });
}

/// A host a VM may start on: its free memory and the SRs it has plugged.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// Host reference.
    pub host: Ref<Host>,
    /// Free memory, bytes (lowered as VMs are placed).
    pub free: i64,
    /// SRs with a plugged PBD on the host.
    pub srs: BTreeSet<Ref<Sr>>,
}

/// The candidate with the most free memory that sees every SR in `needs` and has `memory`
/// free; `Err` says why none fits.
pub fn place<'a>(
    candidates: &'a mut [Candidate],
    needs: &BTreeSet<Ref<Sr>>,
    memory: i64,
) -> Result<&'a mut Candidate, String> {
    let seeing: Vec<usize> = (0..candidates.len())
        .filter(|&i| needs.is_subset(&candidates[i].srs))
        .collect();
    if seeing.is_empty() {
        return Err("its disks are on storage no surviving host has plugged (e.g. the dead host's local SR)".into());
    }
    let best = seeing
        .into_iter()
        .filter(|&i| candidates[i].free >= memory)
        .max_by_key(|&i| candidates[i].free);
    match best {
        Some(i) => Ok(&mut candidates[i]),
        None => Err(format!(
            "no surviving host has {} MiB free",
            memory / (1024 * 1024)
        )),
    }
}

/// Promotes the chosen survivor unless a host already answers as master, then waits until it
/// accepts a pool login as master.
pub async fn promote(client: &PoolClient, survivor: &KnownHost, dead: &KnownHost) -> StepResult {
    let already = client.prober.probe(&survivor.address).await.role == Role::Master;
    let mut evidence = json!({"survivor": survivor, "already_master": already});
    if !already {
        client
            .actuator()
            .emergency_transition_to_master(&survivor.address)
            .await
            .map_err(|e| xapi("pool.emergency_transition_to_master", e))?;
    }
    let deadline = tokio::time::Instant::now() + PROMOTION_WAIT;
    loop {
        let role = client.prober.probe(&survivor.address).await.role;
        if role == Role::Master {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(StepError::Pool(format!(
                "{} did not restart as master within {} s (last answer: {})",
                survivor.address,
                PROMOTION_WAIT.as_secs(),
                role.as_str()
            )));
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    client.session.reset().await;
    evidence["dead_master"] = json!(dead.uuid);
    Ok(evidence)
}

/// `pool.recover_slaves` until it returns every expected survivor (a few attempts), then waits
/// until each has restarted its xapi and answers as the new master's slave: only then does the
/// promoted database show where their guests run (a restarting xapi records its own domains).
/// Hosts still missing are reported, not fatal: their VMs keep running.
pub async fn recover_slaves(
    client: &PoolClient,
    actuator: &crate::xapi::PoolActuator,
    master: &KnownHost,
    expected: &[KnownHost],
    rejoin_wait: Duration,
    limit: Duration,
) -> StepResult {
    let want: BTreeSet<Ref<Host>> = expected.iter().map(|h| h.reference.clone()).collect();
    let mut missing = want.clone();
    let mut answers = Vec::new();
    for attempt in 1..=RECOVER_ATTEMPTS {
        let got = match actuator.recover_slaves(limit).await {
            Ok(got) => got,
            // It may finish on the master all the same (it resets one host after another and
            // swallows their errors): who came back is what the rejoin check below finds.
            Err(e) if !ended(&e) => {
                answers.push(vec![format!("no answer: {e}")]);
                break;
            }
            Err(e) => return Err(xapi("pool.recover_slaves", e)),
        };
        answers.push(got.iter().map(ToString::to_string).collect::<Vec<_>>());
        for host in &got {
            missing.remove(host);
        }
        if missing.is_empty() || attempt == RECOVER_ATTEMPTS {
            break;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
    let rejoined = rejoin(client, master, expected, rejoin_wait).await;
    Ok(json!({
        "expected": want.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "answers": answers,
        "missing": missing.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "rejoined": rejoined.iter().map(|h| &h.name_label).collect::<Vec<_>>(),
        "not_rejoined": expected.iter().filter(|h| !rejoined.contains(h)).map(|h| &h.name_label).collect::<Vec<_>>(),
    }))
}

/// Waits up to `wait` until each of `slaves` answers as a slave of `master`, out of emergency
/// mode; returns those that did.
async fn rejoin(
    client: &PoolClient,
    master: &KnownHost,
    slaves: &[KnownHost],
    wait: Duration,
) -> Vec<KnownHost> {
    let deadline = tokio::time::Instant::now() + wait;
    let mut back = Vec::new();
    loop {
        for slave in slaves {
            if back.contains(slave) {
                continue;
            }
            let answer = client.prober.probe(&slave.address).await;
            if answer.role == Role::Slave(master.address.clone()) && answer.emergency == Some(false)
            {
                back.push(slave.clone());
            }
        }
        if back.len() == slaves.len() || tokio::time::Instant::now() >= deadline {
            return back;
        }
        tokio::time::sleep(RETRY_PAUSE).await;
    }
}

/// The VMs XAPI records as running on `dead` (guests only).
pub async fn resident_vms(
    client: &PoolClient,
    dead: &KnownHost,
) -> Result<Vec<PlannedVm>, StepError> {
    let vms = client
        .reader()
        .all::<Vm>()
        .await
        .map_err(|e| xapi("VM.get_all_records", e))?;
    Ok(vms
        .into_iter()
        .filter(|(_, vm)| {
            vm.is_guest()
                && vm.resident_on == dead.reference
                && matches!(vm.power_state, PowerState::Running | PowerState::Paused)
        })
        .map(|(reference, vm)| PlannedVm {
            reference,
            uuid: vm.uuid,
            name_label: vm.name_label,
            priority: vm.ha_restart_priority,
            order: vm.order,
            memory: vm.memory_static_max,
            outcome: None,
        })
        .collect())
}

/// Whether a failed call surely ended on the master: an API failure did; a timeout, a task
/// still pending at the limit or a lost answer may still be running there.
fn ended(e: &Error) -> bool {
    matches!(e, Error::Api(f) if f.code != ErrorCode::TaskCancelled)
}

/// Resets the planned VMs: `Async.host.declare_dead` (it resets every guest the database places
/// on the host) when `whole_host`, else, or when it surely failed for another reason than the
/// host being live, `Async.VM.power_state_reset` per planned VM; each waited for at most
/// `limit`. A call that may still run on the master (limit reached, answer lost) is never
/// followed by another: the pool is re-read, and the step fails unless every planned VM
/// already reads halted.
pub async fn reset_vms(
    client: &PoolClient,
    dead: &KnownHost,
    vms: &[PlannedVm],
    whole_host: bool,
    limit: Duration,
) -> StepResult {
    let actuator = client.actuator();
    let mut evidence = json!({});
    let mut per_vm = !whole_host;
    if whole_host {
        let declared = actuator.declare_dead(&dead.reference, limit).await;
        evidence["declare_dead"] =
            json!(declared.as_ref().map(|_| "ok").map_err(ToString::to_string));
        match declared {
            Ok(()) => {}
            Err(Error::Api(f)) if f.code == ErrorCode::HostIsLive => {
                return Err(StepError::Pool(format!(
                    "xapi says host {} is live (it answered the master): nothing reset",
                    dead.address
                )));
            }
            Err(e) if ended(&e) => per_vm = true,
            Err(e) => {
                return settled(
                    client,
                    dead,
                    vms,
                    evidence,
                    &format!("host.declare_dead: {e}"),
                )
                .await;
            }
        }
    } else {
        evidence["declare_dead"] =
            json!("not used: guests the receiver doubts are placed on the host");
    }
    if per_vm {
        let mut resets = BTreeMap::new();
        for vm in vms {
            let result = actuator.power_state_reset(&vm.reference, limit).await;
            resets.insert(
                vm.uuid.clone(),
                result.as_ref().err().map(ToString::to_string),
            );
            match result {
                Ok(()) => {}
                Err(Error::Api(f)) if f.code == ErrorCode::HostIsLive => {
                    return Err(StepError::Pool(format!(
                        "VM.power_state_reset {}: host is live",
                        vm.name_label
                    )));
                }
                Err(e) if ended(&e) => {}
                Err(e) => {
                    evidence["power_state_reset"] = json!(resets);
                    let what = format!("VM.power_state_reset {}: {e}", vm.name_label);
                    return settled(client, dead, vms, evidence, &what).await;
                }
            }
        }
        evidence["power_state_reset"] = json!(resets);
    }
    settled(client, dead, vms, evidence, "").await
}

/// Re-reads the pool: every planned VM must read halted (no longer resident on `dead`).
/// `unfinished` names a call that may still be running on the master, if any.
async fn settled(
    client: &PoolClient,
    dead: &KnownHost,
    vms: &[PlannedVm],
    mut evidence: serde_json::Value,
    unfinished: &str,
) -> StepResult {
    let still: Vec<String> = resident_vms(client, dead)
        .await?
        .into_iter()
        .filter(|r| vms.iter().any(|v| v.uuid == r.uuid))
        .map(|r| r.name_label)
        .collect();
    if !unfinished.is_empty() {
        evidence["unfinished"] = json!(unfinished);
    }
    match (still.is_empty(), unfinished.is_empty()) {
        (true, _) => Ok(evidence),
        (false, true) => Err(StepError::Pool(format!(
            "{} VMs still recorded running on the dead host after the reset: {}",
            still.len(),
            still.join(", ")
        ))),
        (false, false) => Err(StepError::Pool(format!(
            "{unfinished}; it may still be running on the master, so nothing else was tried; {} planned VMs still read running there: {}",
            still.len(),
            still.join(", ")
        ))),
    }
}

/// Removes the dead host's `host_<ref>` tag from every VDI that carries it (what `resetvdis`
/// does for the host), and the `paused` key from the disks of the planned VMs (what
/// `resetvdis` does as SR master, and the declare-dead hook does not: blktap refuses to attach
/// a paused VDI), then checks no tag is left.
pub async fn release_locks(client: &PoolClient, dead: &KnownHost, vms: &[PlannedVm]) -> StepResult {
    let key = format!("{SM_CONFIG_HOST_PREFIX}{}", dead.reference);
    let reader = client.reader();
    let read = |e: Error| xapi("reading the planned VMs' disks", e);
    let mut disks = BTreeSet::new();
    for vm in vms {
        for vbd in reader.record(&vm.reference).await.map_err(read)?.vbds {
            let vbd = reader.record(&vbd).await.map_err(read)?;
            if !vbd.empty {
                disks.insert(vbd.vdi);
            }
        }
    }
    let vdis = reader
        .all::<Vdi>()
        .await
        .map_err(|e| xapi("VDI.get_all_records", e))?;
    let mut unpaused = Vec::new();
    for (vdi, record) in &vdis {
        if disks.contains(vdi) && record.sm_config.contains_key(SM_CONFIG_PAUSED) {
            client
                .actuator()
                .remove_from_sm_config(vdi, SM_CONFIG_PAUSED)
                .await
                .map_err(|e| xapi("VDI.remove_from_sm_config", e))?;
            unpaused.push(vdi.to_string());
        }
    }
    let tagged = |vdis: &[(Ref<Vdi>, Vdi)]| -> Vec<Ref<Vdi>> {
        vdis.iter()
            .filter(|(_, v)| v.sm_config.contains_key(&key))
            .map(|(r, _)| r.clone())
            .collect()
    };
    let released = tagged(&vdis);
    for vdi in &released {
        client
            .actuator()
            .remove_from_sm_config(vdi, &key)
            .await
            .map_err(|e| xapi("VDI.remove_from_sm_config", e))?;
    }
    let vdis = reader
        .all::<Vdi>()
        .await
        .map_err(|e| xapi("VDI.get_all_records", e))?;
    let left = tagged(&vdis);
    if !left.is_empty() {
        return Err(StepError::Pool(format!(
            "{} VDIs still carry {key}",
            left.len()
        )));
    }
    Ok(
        json!({"key": key, "released": released.iter().map(ToString::to_string).collect::<Vec<_>>(), "unpaused": unpaused}),
    )
}

/// Clears `affinity` of every VM whose home server is the dead host.
pub async fn clear_affinity(client: &PoolClient, dead: &KnownHost) -> StepResult {
    let vms = client
        .reader()
        .all::<Vm>()
        .await
        .map_err(|e| xapi("VM.get_all_records", e))?;
    let mut cleared = Vec::new();
    for (reference, vm) in vms.iter().filter(|(_, vm)| vm.affinity == dead.reference) {
        client
            .actuator()
            .set_affinity(reference, &Ref::null())
            .await
            .map_err(|e| xapi("VM.set_affinity", e))?;
        cleared.push(vm.uuid.clone());
    }
    Ok(json!({"cleared": cleared}))
}

/// Hosts fenced before that are up again are held: no start target until they have been up
/// for `healthy` (a host that flaps must not take the guests of the next failure).
#[derive(Debug, Clone, PartialEq)]
pub struct Hold {
    /// Uuids of the pool's hosts this receiver ever fenced (read back off).
    pub fenced: Vec<String>,
    /// How long such a host must have been up.
    pub healthy: Duration,
    /// The pool master's clock now (Unix seconds), if it could be read.
    pub now: Option<f64>,
}

impl Hold {
    /// The hold of `client`'s pool: the master's clock is read only when some host can be
    /// held (one was fenced before, and `healthy` is not 0).
    pub async fn read(client: &PoolClient, fenced: Vec<String>, healthy: Duration) -> Hold {
        let now = if fenced.is_empty() || healthy.is_zero() {
            None
        } else {
            client.master_time().await
        };
        Hold {
            fenced,
            healthy,
            now,
        }
    }

    /// Whether a host is held: fenced before, and booted less than `healthy` ago by the
    /// master's clock. An unknown boot time or clock holds it (failing closed); `healthy` 0
    /// holds nobody.
    pub fn holds(&self, uuid: &str, boot_time: Option<f64>) -> bool {
        let healthy = self.healthy.as_secs_f64();
        if healthy == 0.0 || !self.fenced.iter().any(|f| f == uuid) {
            return false;
        }
        match (boot_time, self.now) {
            (Some(booted), Some(now)) => now - booted < healthy,
            _ => true,
        }
    }
}

/// Starts, in restart order, each planned VM that is halted, on one of `survivors` (enabled,
/// not held by `hold`) that sees its storage and has room; records each outcome in `vms`.
pub async fn start_vms(
    client: &PoolClient,
    dead: &KnownHost,
    survivors: &[Ref<Host>],
    hold: &Hold,
    vms: &mut [PlannedVm],
) -> StepResult {
    let reader = client.reader();
    let read = |e: Error| xapi("reading the pool", e);
    let hosts = reader.all::<Host>().await.map_err(read)?;
    let metrics: BTreeMap<Ref<HostMetrics>, HostMetrics> = reader
        .all::<HostMetrics>()
        .await
        .map_err(read)?
        .into_iter()
        .collect();
    let pbds = reader.all::<Pbd>().await.map_err(read)?;
    let vbds: BTreeMap<Ref<Vbd>, Vbd> = reader
        .all::<Vbd>()
        .await
        .map_err(read)?
        .into_iter()
        .collect();
    let vdis: BTreeMap<Ref<Vdi>, Vdi> = reader
        .all::<Vdi>()
        .await
        .map_err(read)?
        .into_iter()
        .collect();
    let held: Vec<&str> = hosts
        .iter()
        .filter(|(r, h)| survivors.contains(r) && hold.holds(&h.uuid, boot_time(h)))
        .map(|(_, h)| h.name_label.as_str())
        .collect();
    let mut candidates: Vec<Candidate> = hosts
        .iter()
        .filter(|(r, h)| *r != dead.reference && h.enabled && survivors.contains(r))
        .filter(|(_, h)| !hold.holds(&h.uuid, boot_time(h)))
        .map(|(r, h)| Candidate {
            host: r.clone(),
            free: metrics.get(&h.metrics).map_or(0, |m| m.memory_free),
            srs: pbds
                .iter()
                .filter(|(_, p)| p.host == *r && p.currently_attached)
                .map(|(_, p)| p.sr.clone())
                .collect(),
        })
        .collect();
    let names: BTreeMap<Ref<Host>, String> = hosts
        .iter()
        .map(|(r, h)| (r.clone(), h.name_label.clone()))
        .collect();
    restart_order(vms);
    for vm in vms.iter_mut() {
        let record = match reader.record::<Vm>(&vm.reference).await {
            Ok(record) => record,
            Err(e) => {
                vm.outcome = Some(format!("not started: cannot read it ({e})"));
                continue;
            }
        };
        if record.power_state != PowerState::Halted {
            let on = names.get(&record.resident_on).cloned().unwrap_or_default();
            vm.outcome = Some(format!(
                "already {} on {on}",
                record.power_state.as_str().to_lowercase()
            ));
            continue;
        }
        let needs: BTreeSet<Ref<Sr>> = record
            .vbds
            .iter()
            .filter_map(|b| vbds.get(b))
            .filter(|b| !b.empty)
            .filter_map(|b| vdis.get(&b.vdi))
            .map(|d| d.sr.clone())
            .collect();
        let host = match place(&mut candidates, &needs, vm.memory) {
            Ok(c) => {
                c.free -= vm.memory;
                c.host.clone()
            }
            Err(why) => {
                vm.outcome = Some(format!("not started: {why}"));
                continue;
            }
        };
        let name = names.get(&host).cloned().unwrap_or_default();
        vm.outcome = Some(
            match client
                .actuator()
                .start_on(&vm.reference, &host, client.start_timeout)
                .await
            {
                Ok(()) => format!("started on {name}"),
                Err(e) => format!("not started: Async.VM.start_on {name}: {e}"),
            },
        );
    }
    Ok(json!({"vms": vms, "held": held}))
}

/// Checks each planned VM runs on a host other than the dead one; the summary names those
/// that do not and why.
pub async fn verify(
    client: &PoolClient,
    dead: &KnownHost,
    vms: &[PlannedVm],
    unaccounted: &[String],
) -> Result<(String, serde_json::Value), StepError> {
    let all: BTreeMap<Ref<Vm>, Vm> = client
        .reader()
        .all::<Vm>()
        .await
        .map_err(|e| xapi("VM.get_all_records", e))?
        .into_iter()
        .collect();
    let mut running = 0;
    let mut not = Vec::new();
    for vm in vms {
        match all.get(&vm.reference) {
            Some(r)
                if r.power_state == PowerState::Running
                    && r.resident_on != dead.reference
                    && !r.resident_on.is_null() =>
            {
                running += 1
            }
            other => not.push(format!(
                "{}: {} ({})",
                vm.name_label,
                other.map_or("gone", |r| r.power_state.as_str()),
                vm.outcome.as_deref().unwrap_or("no start attempted")
            )),
        }
    }
    let mut summary = if !not.is_empty() {
        format!(
            "{running} of {} VMs running again; not running: {}",
            vms.len(),
            not.join("; ")
        )
    } else {
        format!("all {} VMs running again", vms.len())
    };
    if !unaccounted.is_empty() {
        summary.push_str(&format!(
            "; NOT STARTED, check by hand: {} (the receiver's last view of the dead master and the promoted host's database, restored from a backup, disagree on where they ran)",
            unaccounted.join(", ")
        ));
    }
    Ok((
        summary.clone(),
        json!({"running": running, "planned": vms.len(), "not_running": not, "unaccounted": unaccounted}),
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_fenced_host_up_for_less_than_the_hold_is_held() {
        let hold = super::Hold {
            fenced: vec!["a".into()],
            healthy: Duration::from_secs(600),
            now: Some(10_000.0),
        };
        assert!(hold.holds("a", Some(9_500.0)), "up 500 s");
        assert!(!hold.holds("a", Some(9_400.0)), "up 600 s");
        assert!(!hold.holds("b", Some(9_999.0)), "never fenced");
        assert!(hold.holds("a", None), "boot time unknown: held");
        let no_clock = super::Hold {
            now: None,
            ..hold.clone()
        };
        assert!(no_clock.holds("a", Some(0.0)), "master clock unknown: held");
        let off = super::Hold {
            healthy: Duration::ZERO,
            ..hold
        };
        assert!(!off.holds("a", Some(9_999.0)), "0 holds nobody");
    }

    use super::*;

    #[test]
    fn a_step_error_says_what_failed_and_its_kind_labels_the_metric() {
        let timeout = Error::Timeout {
            address: "10.0.0.1".into(),
            method: "VM.get_all_records".into(),
            seconds: 2.0,
        };
        let errors = [
            (xapi("VM.get_all_records", timeout), "xapi_error"),
            (
                StepError::Pool("2 VDIs still carry host_x".into()),
                "pool_state",
            ),
            (
                StepError::from(JournalError::Held("j.db".into())),
                "receiver_state",
            ),
        ];
        for (error, kind) in &errors {
            assert_eq!(error.kind(), *kind);
            assert!(StepError::KINDS.contains(kind));
        }
        assert!(errors[0].0.to_string().starts_with("VM.get_all_records: "));
        assert_eq!(errors[1].0.to_string(), "2 VDIs still carry host_x");
    }

    fn vm(name: &str, priority: &str, order: i64) -> PlannedVm {
        PlannedVm {
            reference: Ref::new(format!("OpaqueRef:{name}")),
            uuid: name.into(),
            name_label: name.into(),
            priority: priority.into(),
            order,
            memory: 2 << 30,
            outcome: None,
        }
    }

    #[test]
    fn restart_priority_then_order_then_name() {
        let mut vms = vec![
            vm("c", "", 0),
            vm("b", "best-effort", 0),
            vm("a2", "restart", 2),
            vm("a1", "restart", 2),
            vm("a0", "restart", 1),
        ];
        restart_order(&mut vms);
        let names: Vec<&str> = vms.iter().map(|v| v.name_label.as_str()).collect();
        assert_eq!(names, ["a0", "a1", "a2", "b", "c"]);
    }

    #[test]
    fn placement_needs_storage_then_room_and_prefers_the_freest() {
        let shared = Ref::<Sr>::new("OpaqueRef:shared");
        let local = Ref::<Sr>::new("OpaqueRef:local-dead");
        let candidate = |name: &str, free: i64| Candidate {
            host: Ref::new(format!("OpaqueRef:{name}")),
            free,
            srs: [shared.clone()].into(),
        };
        let mut hosts = vec![candidate("h2", 3 << 30), candidate("h3", 5 << 30)];
        let needs: BTreeSet<_> = [shared.clone()].into();
        assert_eq!(
            place(&mut hosts, &needs, 2 << 30).unwrap().host.as_str(),
            "OpaqueRef:h3"
        );
        let too_big = place(&mut hosts, &needs, 6 << 30).unwrap_err();
        assert!(too_big.contains("6144 MiB"), "{too_big}");
        let on_local: BTreeSet<_> = [local].into();
        let unseen = place(&mut hosts, &on_local, 1).unwrap_err();
        assert!(unseen.contains("storage"), "{unseen}");
    }
}
