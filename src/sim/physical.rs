//! Physical events the control API injects (power, cables, the xapi process) and what xapi
//! does about them: start-up in a role, emergency mode, `Pool.hello`, the resync of a host's
//! own domains, the no-other-masters check.

use std::sync::Arc;

use crate::xapi::error::{ErrorCode, Failure};
use crate::xapi::records::{PowerState, Ref};

use super::db::Db;
use super::model::{FUSE, Model, PERMANENT_FAILURE_RETRY, Role, STARTUP_RETRY, role_address};

impl Model {
    // -----------------------------------------------------------------------------------------
    // Physical events (control API)
    // -----------------------------------------------------------------------------------------

    /// Cuts the power: the xapi process and every domain on the host are gone.
    pub fn power_off(&mut self, i: usize) {
        let uuid = self.hosts[i].uuid.clone();
        for hosts in self.running.values_mut() {
            hosts.remove(&uuid);
        }
        let h = &mut self.hosts[i];
        h.power_on = false;
        h.xapi_running = false;
        h.fuse_at = None;
        h.sessions.clear();
        h.local_sessions.clear();
    }

    /// Switches one of the chassis' power feeds (`feed` 0 or 1). The last live feed cut, the
    /// host loses power; a feed restored leaves it off until it is powered on (a BMC's `on`).
    pub fn set_feed(&mut self, i: usize, feed: usize, on: bool) {
        self.hosts[i].feeds[feed] = on;
        if !self.hosts[i].feeds.contains(&true) && self.hosts[i].power_on {
            self.power_off(i);
        }
    }

    /// An orderly shutdown: guests shut down cleanly (disks released), the master told with a
    /// shutting-down heartbeat (marked dead at once), then power off.
    pub fn shutdown(&mut self, i: usize, now: f64) {
        if self.hosts[i].answers()
            && let Some(m) = self.database_host(i)
        {
            let guests: Vec<String> = self.hosts[m]
                .db
                .vm
                .iter()
                .filter(|(_, v)| v.is_guest() && v.resident_on.as_str() == self.hosts[i].reference)
                .map(|(r, _)| r.clone())
                .collect();
            for vm in guests {
                self.halt_vm(m, &vm, i);
            }
            if m != i {
                self.mark_dead(m, i);
            }
        }
        self.power_off(i);
        self.tick(now);
    }

    /// Power restored: the host boots and its xapi starts in the role pool.conf gives it.
    /// Without a live power feed nothing happens.
    pub fn power_on(&mut self, i: usize, now: f64) {
        if self.hosts[i].power_on || !self.hosts[i].feeds.contains(&true) {
            return;
        }
        self.hosts[i].power_on = true;
        self.hosts[i].booted_at = now;
        self.set_host_other_config(i, "boot_time", now);
        self.start_xapi(i, now);
        self.tick(now);
    }

    /// Writes one of the keys xapi's start-up (`dbsync_slave`) refreshes in the host's own
    /// `other_config` (`boot_time`, `agent_start_time`: Unix seconds as a float string), in
    /// every database copy holding the host.
    fn set_host_other_config(&mut self, i: usize, key: &str, seconds: f64) {
        let reference = self.hosts[i].reference.clone();
        let value = format!("{seconds:.1}");
        for h in &mut self.hosts {
            Db::update(
                |d| &mut d.host,
                Arc::make_mut(&mut h.db),
                &reference,
                |host| {
                    host.other_config.insert(key.to_owned(), value.clone());
                },
            );
        }
    }

    /// Turns XAPI HA on or off: `pool.ha_enabled` in every database copy and `ha.armed` on
    /// every host (the HA daemon itself is not simulated).
    pub fn set_ha(&mut self, enabled: bool) {
        for h in &mut self.hosts {
            h.ha_armed = enabled;
            if let Some(pool) = h.db.pool_ref().cloned() {
                Db::update(
                    |d| &mut d.pool,
                    Arc::make_mut(&mut h.db),
                    &pool,
                    |p| p.ha_enabled = enabled,
                );
            }
        }
    }

    /// Kills xapi (its domains keep running).
    pub fn stop_xapi(&mut self, i: usize) {
        let h = &mut self.hosts[i];
        h.xapi_running = false;
        h.fuse_at = None;
        h.sessions.clear();
        h.local_sessions.clear();
    }

    /// Starts (or restarts) xapi on a powered host.
    pub fn start_xapi(&mut self, i: usize, now: f64) {
        if !self.hosts[i].power_on {
            return;
        }
        self.set_host_other_config(i, "agent_start_time", now);
        let h = &mut self.hosts[i];
        h.xapi_running = true;
        h.fuse_at = None;
        h.sessions.clear();
        h.local_sessions.clear();
        h.heartbeats.clear();
        match h.role.clone() {
            Role::Master => {
                h.emergency = false;
                self.become_live_master(i);
                self.consider_enabling_host(i, i);
                self.check_no_other_masters(i, now);
            }
            Role::Slave(address) => {
                h.emergency = true;
                h.emergency_error = if address == h.address {
                    Failure::new(ErrorCode::HostItsOwnSlave, vec![])
                } else {
                    Failure::new(ErrorCode::HostStillBooting, vec![])
                };
                self.hosts[i].retry_at = now;
                self.try_slave_startup(i, now, true);
            }
        }
    }

    /// A master start: `pool.master` is itself, its own `live` is true, every other host gets a
    /// fresh 600 s timer (the grace of xapi-notes.md §4.1).
    pub(super) fn become_live_master(&mut self, i: usize) {
        let me = self.hosts[i].reference.clone();
        let db = Arc::make_mut(&mut self.hosts[i].db);
        if let Some(pool) = db.pool_ref().cloned() {
            Db::update(|d| &mut d.pool, db, &pool, |p| p.master = Ref::new(&me));
        }
        if let Some(metrics) = db.host.get(&me).map(|h| h.metrics.as_str().to_owned()) {
            Db::update(|d| &mut d.host_metrics, db, &metrics, |m| m.live = true);
        }
        self.resync_domains(i, i);
    }

    /// What a starting xapi does with the domains its host really runs
    /// (`Xapi_xenops.resync_resident_on`): in `m`'s database, guests recorded on host `i` whose
    /// domains are gone are halted, and each guest running on host `i` is recorded running
    /// there, whatever the database said (a restored backup can place a guest that migrated
    /// since on another host).
    pub(super) fn resync_domains(&mut self, m: usize, i: usize) {
        let here = self.hosts[i].uuid.clone();
        let host_ref = self.hosts[i].reference.clone();
        // Guests recorded on this host whose domains do not run here any more: halted.
        let stale: Vec<String> = self.hosts[m]
            .db
            .vm
            .iter()
            .filter(|(_, v)| {
                v.is_guest()
                    && v.resident_on.as_str() == host_ref
                    && !self
                        .running
                        .get(&v.uuid)
                        .is_some_and(|hs| hs.contains(&here))
            })
            .map(|(r, _)| r.clone())
            .collect();
        for vm in stale {
            self.reset_vm_record(m, &vm);
        }
        let misplaced: Vec<String> = self.hosts[m]
            .db
            .vm
            .iter()
            .filter(|(_, v)| {
                v.is_guest()
                    && self
                        .running
                        .get(&v.uuid)
                        .is_some_and(|hs| hs.contains(&here))
                    && (v.resident_on.as_str() != host_ref || v.power_state != PowerState::Running)
            })
            .map(|(r, _)| r.clone())
            .collect();
        for vm in misplaced {
            self.reset_vm_record(m, &vm);
            let domid = (self.next_number() % 30_000) as i64;
            self.set_residence(m, &vm, Some((&host_ref, domid)));
        }
    }

    /// xapi-notes.md §6.1: a starting master asks every other host whether it is a slave; if one
    /// claims to be master, this host demotes itself to that host's slave and restarts.
    pub(super) fn check_no_other_masters(&mut self, i: usize, now: f64) {
        let others: Vec<usize> = self.hosts[i]
            .db
            .host
            .iter()
            .filter_map(|(r, _)| self.host_by_ref(r))
            .filter(|&j| j != i)
            .collect();
        for j in others {
            if self.reaches(i, j) && self.hosts[j].role == Role::Master {
                let address = self.hosts[j].address.clone();
                self.hosts[i].role = Role::Slave(address);
                self.hosts[i].fuse_at = Some(now + FUSE);
                return;
            }
        }
    }

    /// The start-up loop of a slave in emergency mode: leaves it as soon as its master answers
    /// and knows it (Pool.hello), with the error callers see meanwhile (xapi-notes.md §3.2).
    pub(super) fn try_slave_startup(&mut self, i: usize, now: f64, first: bool) {
        let Role::Slave(address) = self.hosts[i].role.clone() else {
            return;
        };
        // Temporary failures retry after 5 s, permanent ones after 60 s (xapi-notes.md §3.2).
        self.hosts[i].retry_at = now + STARTUP_RETRY;
        let Some(m) = self.host_by_address(&address).filter(|&m| m != i) else {
            if address == self.hosts[i].address {
                self.hosts[i].emergency_error = Failure::new(ErrorCode::HostItsOwnSlave, vec![]);
            }
            self.hosts[i].retry_at = now + PERMANENT_FAILURE_RETRY;
            return;
        };
        if !self.hosts[i].network_up || !self.hosts[m].power_on || !self.hosts[m].network_up {
            // Each attempt resets the error to HOST_STILL_BOOTING and its connect hangs; the
            // failed attempt leaves INTERNAL_ERROR with the exception text until the next one
            // (xapi.ml start-up loop, `attempt_host_status_check_with_coordinator`): callers
            // see the two in turns, one per retry period.
            let attempting =
                first || self.hosts[i].emergency_error.code != ErrorCode::HostStillBooting;
            self.hosts[i].emergency_error = if attempting {
                Failure::new(ErrorCode::HostStillBooting, vec![])
            } else {
                Failure::new(
                    ErrorCode::InternalError,
                    vec!["Xmlrpc_client.Stunnel_connection_failed".into()],
                )
            };
            return;
        }
        if !self.hosts[m].xapi_running {
            self.hosts[i].emergency_error = Failure::new(
                ErrorCode::InternalError,
                vec!["Unix.Unix_error(Unix.ECONNREFUSED, \"connect\", \"\")".into()],
            );
            return;
        }
        if self.hosts[m].role != Role::Master || self.hosts[m].emergency {
            self.hosts[i].emergency_error = Failure::new(
                ErrorCode::HostIsSlave,
                vec![role_address(&self.hosts[m].role)],
            );
            return;
        }
        let me = self.hosts[i].reference.clone();
        if self.hosts[m].db.host.get(&me).is_none() {
            let uuid = self.hosts[i].uuid.clone();
            self.hosts[i].emergency_error =
                Failure::new(ErrorCode::HostUnknownToMaster, vec![uuid]);
            self.hosts[i].retry_at = now + PERMANENT_FAILURE_RETRY;
            return;
        }
        self.hosts[i].emergency = false;
        self.pool_hello(m, i, now);
        self.consider_enabling_host(m, i);
    }

    /// `Xapi_host_helpers.consider_enabling_host`, run at the end of xapi's start-up: the host
    /// is enabled again (after `host.declare_dead` or `host.disable`, whose flag lives in the
    /// memory of the xapi that has just restarted). The HA condition (every PBD plugged) and
    /// pending update guidances are not simulated.
    pub(super) fn consider_enabling_host(&mut self, m: usize, i: usize) {
        let reference = self.hosts[i].reference.clone();
        Db::update(
            |d| &mut d.host,
            Arc::make_mut(&mut self.hosts[m].db),
            &reference,
            |h| h.enabled = true,
        );
    }

    /// Master side of a slave (re)connecting: live again, heartbeat timer reset, its VMs resynced
    /// with what really runs there, and the slave's database copy refreshed.
    pub(super) fn pool_hello(&mut self, m: usize, i: usize, now: f64) {
        let slave_ref = self.hosts[i].reference.clone();
        self.resync_domains(m, i);
        self.set_live(m, &slave_ref, true);
        self.hosts[m].heartbeats.insert(slave_ref, now);
        self.hosts[i].db = self.hosts[m].db.clone();
    }

    /// Sets `host_metrics.live` of `host_ref` in `m`'s database.
    pub fn set_live(&mut self, m: usize, host_ref: &str, live: bool) {
        let db = Arc::make_mut(&mut self.hosts[m].db);
        let Some(metrics) = db.host.get(host_ref).map(|h| h.metrics.as_str().to_owned()) else {
            return;
        };
        if db
            .host_metrics
            .get(&metrics)
            .is_some_and(|hm| hm.live != live)
        {
            Db::update(|d| &mut d.host_metrics, db, &metrics, |hm| hm.live = live);
        }
    }

    /// `Xapi_host_helpers.mark_host_as_dead`: live=false at once.
    pub(super) fn mark_dead(&mut self, m: usize, i: usize) {
        let host_ref = self.hosts[i].reference.clone();
        self.set_live(m, &host_ref, false);
        self.hosts[m].heartbeats.remove(&host_ref);
    }
}
