//! The simulator's VM and disk calls (docs/simulator.md, "VMs and disks"): start and
//! placement, migration, shutdown, power-state reset, affinity and the blktap disk attach.

use std::sync::Arc;

use crate::xapi::error::{ErrorCode, Failure};
use crate::xapi::records::{PowerState, Ref};
use crate::xapi::wire::Value;

use super::db::Db;
use super::methods::{bool_param, fail, string_param, vdi_unavailable, void};
use super::model::Model;

impl Model {
    // -----------------------------------------------------------------------------------------
    // VMs
    // -----------------------------------------------------------------------------------------

    pub(super) fn require_vm(&self, m: usize, params: &[Value]) -> Result<String, Failure> {
        self.require(m, params, "VM")
    }

    /// xapi-notes.md §5.3.
    pub(super) fn power_state_reset(
        &mut self,
        m: usize,
        params: &[Value],
    ) -> Result<Value, Failure> {
        let vm = self.require_vm(m, params)?;
        let record = self.hosts[m].db.vm.get(&vm).cloned().unwrap_or_default();
        if record.is_control_domain {
            return fail(ErrorCode::CannotResetControlDomain, vec![vm]);
        }
        if matches!(record.power_state, PowerState::Running | PowerState::Paused) {
            let resident = record.resident_on.as_str();
            if resident == self.hosts[m].reference {
                let me = self.hosts[m].uuid.clone();
                if self
                    .running
                    .get(&record.uuid)
                    .is_some_and(|hs| hs.contains(&me))
                {
                    return fail(ErrorCode::DomainExists, vec![vm]);
                }
            } else if self.is_host_alive(m, resident) {
                return fail(ErrorCode::HostIsLive, vec![resident.to_owned()]);
            }
        }
        self.reset_vm_record(m, &vm);
        void()
    }

    /// `VM.start` / `VM.start_on` (xapi-notes.md §5.4): state checks, placement, forwarding to
    /// the chosen host, then the storage attach that enforces single attachment
    /// (xapi-notes.md §6.6).
    pub(super) fn start(
        &mut self,
        m: usize,
        params: &[Value],
        on: Option<String>,
    ) -> Option<Result<Value, Failure>> {
        let vm = match self.require_vm(m, params) {
            Ok(vm) => vm,
            Err(e) => return Some(Err(e)),
        };
        if let Err(e) = bool_param(params, 1).and_then(|_| bool_param(params, 2)) {
            return Some(Err(e));
        }
        let record = self.hosts[m].db.vm.get(&vm).cloned().unwrap_or_default();
        let op = if on.is_some() { "start_on" } else { "start" };
        if record.is_a_template {
            return Some(fail(ErrorCode::VmIsTemplate, vec![vm, op.into()]));
        }
        if record.is_a_snapshot {
            return Some(fail(ErrorCode::VmIsSnapshot, vec![vm, op.into()]));
        }
        if !record.current_operations.is_empty() {
            // Retried server-side for up to two hours (xapi-notes.md §5.4): the call blocks.
            return None;
        }
        if record.power_state != PowerState::Halted {
            let actual = record.power_state.as_str().to_ascii_lowercase();
            return Some(fail(
                ErrorCode::VmBadPowerState,
                vec![vm, "halted".into(), actual],
            ));
        }
        let target = match on {
            Some(host) => {
                if self.hosts[m].db.host.get(&host).is_none() {
                    return Some(fail(ErrorCode::HandleInvalid, vec!["host".into(), host]));
                }
                if let Err(e) = self.can_boot_here(m, &record, &vm, &host) {
                    return Some(Err(e));
                }
                host
            }
            None => match self.choose_host(m, &record, &vm) {
                Ok(host) => host,
                Err(e) => return Some(Err(e)),
            },
        };
        let Some(t) = self.host_by_ref(&target) else {
            return Some(fail(ErrorCode::CannotContactHost, vec![target]));
        };
        if t != m && !self.reaches(m, t) {
            return Some(fail(ErrorCode::CannotContactHost, vec![target]));
        }
        if let Err(e) = self.attach_disks(m, &record, &target) {
            return Some(Err(e));
        }
        let uuid = self.hosts[t].uuid.clone();
        self.running
            .entry(record.uuid.clone())
            .or_default()
            .insert(uuid);
        let domid = self.next_domid();
        self.set_residence(m, &vm, Some((&target, domid)));
        Some(void())
    }

    pub(super) fn next_domid(&mut self) -> i64 {
        (self.next_number() % 30_000) as i64
    }

    /// `assert_can_boot_here`: live, enabled, sees the VM's SRs, has the memory.
    pub(super) fn can_boot_here(
        &self,
        m: usize,
        vm: &crate::xapi::records::Vm,
        vm_ref: &str,
        host: &str,
    ) -> Result<(), Failure> {
        let db = &self.hosts[m].db;
        let h = db.host.get(host).ok_or_else(|| {
            Failure::new(ErrorCode::HandleInvalid, vec!["host".into(), host.into()])
        })?;
        let metrics = db.host_metrics.get(h.metrics.as_str());
        if !metrics.is_some_and(|hm| hm.live) {
            return Err(Failure::new(ErrorCode::HostNotLive, vec![]));
        }
        if !h.enabled {
            return Err(Failure::new(ErrorCode::HostDisabled, vec![host.into()]));
        }
        for vdi in self.vdis_of(m, vm) {
            let Some(sr) = db.vdi.get(&vdi).map(|v| v.sr.as_str().to_owned()) else {
                continue;
            };
            let attached = db.pbd.iter().any(|(_, p)| {
                p.host.as_str() == host && p.sr.as_str() == sr && p.currently_attached
            });
            if !attached {
                return Err(Failure::new(
                    ErrorCode::VmRequiresSr,
                    vec![vm_ref.into(), sr],
                ));
            }
        }
        let free = metrics.map_or(0, |hm| hm.memory_free);
        if free < vm.memory_static_max {
            return Err(Failure::new(
                ErrorCode::HostNotEnoughFreeMemory,
                vec![vm.memory_static_max.to_string(), free.to_string()],
            ));
        }
        Ok(())
    }

    /// Placement: the affinity host if it can boot the VM, else the host with most free memory.
    pub(super) fn choose_host(
        &self,
        m: usize,
        vm: &crate::xapi::records::Vm,
        vm_ref: &str,
    ) -> Result<String, Failure> {
        if !vm.affinity.is_null()
            && self
                .can_boot_here(m, vm, vm_ref, vm.affinity.as_str())
                .is_ok()
        {
            return Ok(vm.affinity.as_str().to_owned());
        }
        let db = &self.hosts[m].db;
        db.host
            .iter()
            .filter(|(r, _)| self.can_boot_here(m, vm, vm_ref, r).is_ok())
            .max_by_key(|(_, h)| {
                db.host_metrics
                    .get(h.metrics.as_str())
                    .map_or(0, |hm| hm.memory_free)
            })
            .map(|(r, _)| r.clone())
            .ok_or_else(|| Failure::new(ErrorCode::NoHostsAvailable, vec![]))
    }

    /// blktap's `_add_tag` on the target (xapi-notes.md §6.6): another host's RW tag is cleared
    /// only if that host answers and no longer has the disk open; otherwise SR_BACKEND_FAILURE_46.
    pub(super) fn attach_disks(
        &mut self,
        m: usize,
        vm: &crate::xapi::records::Vm,
        target: &str,
    ) -> Result<(), Failure> {
        let vdis = self.vdis_of(m, vm);
        let mut clear = Vec::new();
        for vdi in &vdis {
            let record = self.hosts[m].db.vdi.get(vdi).cloned().unwrap_or_default();
            // blktap will not activate a VDI left paused (a snapshot or migration in flight
            // on a host that died): `resetvdis` as SR master clears the key.
            if record.sm_config.contains_key("paused") {
                return Err(vdi_unavailable(&format!("VDI {} is paused", record.uuid)));
            }
            for (other, mode) in record.attached_hosts() {
                if other.as_str() == target || mode != "RW" {
                    continue;
                }
                let Some(j) = self
                    .host_by_ref(other.as_str())
                    .filter(|_| self.hosts[m].db.host.get(other.as_str()).is_some())
                else {
                    clear.push((vdi.clone(), format!("host_{other}")));
                    continue;
                };
                if !self.reaches(m, j) {
                    let code = if self.is_live(m, other.as_str()) {
                        "CANNOT_CONTACT_HOST"
                    } else {
                        "HOST_OFFLINE"
                    };
                    return Err(vdi_unavailable(&format!("['{code}', '{other}']")));
                }
                let other_uuid = self.hosts[j].uuid.clone();
                let open = self.hosts[m].db.vdi.get(vdi).is_some_and(|v| {
                    v.vbds.iter().any(|b| {
                        self.hosts[m]
                            .db
                            .vbd
                            .get(b.as_str())
                            .and_then(|b| self.hosts[m].db.vm.get(b.vm.as_str()))
                            .is_some_and(|owner| {
                                self.running
                                    .get(&owner.uuid)
                                    .is_some_and(|hs| hs.contains(&other_uuid))
                            })
                    })
                });
                if open {
                    return Err(vdi_unavailable(&format!(
                        "VDI {} not detached cleanly",
                        record.uuid
                    )));
                }
                clear.push((vdi.clone(), format!("host_{other}")));
            }
        }
        let db = Arc::make_mut(&mut self.hosts[m].db);
        for (vdi, key) in clear {
            Db::update(
                |d| &mut d.vdi,
                db,
                &vdi,
                |v| {
                    v.sm_config.remove(&key);
                },
            );
        }
        for vdi in vdis {
            Db::update(
                |d| &mut d.vdi,
                db,
                &vdi,
                |v| {
                    v.sm_config.insert(format!("host_{target}"), "RW".into());
                },
            );
        }
        Ok(())
    }

    pub(super) fn running_vm(
        &self,
        m: usize,
        params: &[Value],
    ) -> Result<(String, usize), Failure> {
        let vm = self.require_vm(m, params)?;
        let record = self.hosts[m].db.vm.get(&vm).cloned().unwrap_or_default();
        if record.power_state != PowerState::Running {
            let actual = record.power_state.as_str().to_ascii_lowercase();
            return Err(Failure::new(
                ErrorCode::VmBadPowerState,
                vec![vm, "running".into(), actual],
            ));
        }
        let resident = record.resident_on.as_str();
        let Some(j) = self.host_by_ref(resident) else {
            return Err(Failure::new(
                ErrorCode::HandleInvalid,
                vec!["host".into(), resident.into()],
            ));
        };
        if j != m && !self.reaches(m, j) {
            let code = if self.is_live(m, resident) || self.hosts[m].db.host.get(resident).is_none()
            {
                ErrorCode::CannotContactHost
            } else {
                ErrorCode::HostOffline
            };
            return Err(Failure::new(code, vec![resident.into()]));
        }
        Ok((vm, j))
    }

    pub(super) fn shutdown_vm(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        let (vm, j) = self.running_vm(m, params)?;
        self.halt_vm(m, &vm, j);
        void()
    }

    pub(super) fn reboot_vm(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        self.running_vm(m, params)?;
        void()
    }

    /// `VM.pool_migrate(vm, host, options)`: a running guest moves to another live host of
    /// the pool that can run it; its domain, disk tags and database record follow.
    pub(super) fn pool_migrate(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        let (vm, j) = self.running_vm(m, params)?;
        let (target, t) = self.host_param(m, params, 1)?;
        if t == j {
            return void();
        }
        let record = self.hosts[m].db.vm.get(&vm).cloned().unwrap_or_default();
        self.can_boot_here(m, &record, &vm, &target)?;
        if !self.reaches(m, t) {
            return fail(ErrorCode::CannotContactHost, vec![target]);
        }
        let (from_uuid, to_uuid) = (self.hosts[j].uuid.clone(), self.hosts[t].uuid.clone());
        let running = self.running.entry(record.uuid.clone()).or_default();
        running.remove(&from_uuid);
        running.insert(to_uuid);
        let (old_key, new_key) = (
            format!("host_{}", self.hosts[j].reference),
            format!("host_{target}"),
        );
        let vdis = self.vdis_of(m, &record);
        let db = Arc::make_mut(&mut self.hosts[m].db);
        for vdi in vdis {
            Db::update(
                |d| &mut d.vdi,
                db,
                &vdi,
                |v| {
                    v.sm_config.remove(&old_key);
                    v.sm_config.insert(new_key.clone(), "RW".into());
                },
            );
        }
        self.reset_vm_record(m, &vm);
        let domid = self.next_domid();
        self.set_residence(m, &vm, Some((&target, domid)));
        void()
    }

    pub(super) fn set_affinity(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        let vm = self.require_vm(m, params)?;
        let host = string_param(params, 1)?;
        Db::update(
            |d| &mut d.vm,
            Arc::make_mut(&mut self.hosts[m].db),
            &vm,
            |v| v.affinity = Ref::new(&host),
        );
        void()
    }

    pub(super) fn require_vdi(&self, m: usize, params: &[Value]) -> Result<String, Failure> {
        self.require(m, params, "VDI")
    }

    pub(super) fn remove_from_sm_config(
        &mut self,
        m: usize,
        params: &[Value],
    ) -> Result<Value, Failure> {
        let vdi = self.require_vdi(m, params)?;
        let key = string_param(params, 1)?;
        Db::update(
            |d| &mut d.vdi,
            Arc::make_mut(&mut self.hosts[m].db),
            &vdi,
            |v| {
                v.sm_config.remove(&key);
            },
        );
        void()
    }

    pub(super) fn add_to_sm_config(
        &mut self,
        m: usize,
        params: &[Value],
    ) -> Result<Value, Failure> {
        let vdi = self.require_vdi(m, params)?;
        let (key, value) = (string_param(params, 1)?, string_param(params, 2)?);
        if self.hosts[m]
            .db
            .vdi
            .get(&vdi)
            .is_some_and(|v| v.sm_config.contains_key(&key))
        {
            return fail(
                ErrorCode::MapDuplicateKey,
                vec!["VDI".into(), "sm_config".into(), vdi, key],
            );
        }
        Db::update(
            |d| &mut d.vdi,
            Arc::make_mut(&mut self.hosts[m].db),
            &vdi,
            |v| {
                v.sm_config.insert(key, value);
            },
        );
        void()
    }
}
