//! The XAPI methods of a simulated host, answered from that host's point of view
//! (xapi-notes.md §1.2 dispatch order: emergency check, method lookup, parameter count, session
//! check, then the implementation).

use std::sync::Arc;

use crate::xapi::error::{ErrorCode, Failure};

use crate::xapi::typed::DateTime;
use crate::xapi::wire::{MethodCall, Value};

use super::db::{CLASSES, Db};
use super::model::{FAILED_LOGIN_DELAY, FUSE, Model, Role};

/// What the server does with a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Answer now.
    Reply(Result<Value, Failure>),
    /// Answer after this many simulated seconds (the failed-login delay).
    Delayed(f64, Result<Value, Failure>),
    /// Block: the call needs a master that cannot be reached (xapi-notes.md §3.4). The server
    /// evaluates the call again when the pool changes.
    Hang,
    /// `event.from` found nothing yet: wait for changes, then ask [`Model::poll_events`].
    WaitEvents(EventWait),
    /// The xapi process is gone: drop the connection.
    Drop,
}

/// A blocked `event.from`.
#[derive(Debug, Clone, PartialEq)]
pub struct EventWait {
    /// The host that received the call.
    pub host: usize,
    /// Its session.
    pub session: String,
    /// Subscribed classes.
    pub classes: Vec<String>,
    /// Generation of the token.
    pub since: u64,
    /// Seconds to wait at most.
    pub timeout: f64,
}

/// Calls accepted by an emergency-mode host (xapi-notes.md §3.2).
pub const EMERGENCY_CALLS: &[&str] = &[
    "pool.emergency_reset_master",
    "pool.emergency_transition_to_master",
    "pool.is_slave",
    "session.slave_local_login",
    "session.slave_local_login_with_password",
    "session.local_logout",
    "host.propose_new_master",
    "host.commit_new_master",
    "host.abort_new_master",
    "host.local_assert_healthy",
    "host.signal_networking_change",
    "host.local_management_reconfigure",
    "host.ha_xapi_healthcheck",
    "host.emergency_ha_disable",
    "host.management_disable",
    "host.get_system_status_capabilities",
    "host.is_in_emergency_mode",
    "host.shutdown_agent",
    "host.emergency_reset_server_certificate",
    "host.emergency_disable_tls_verification",
    "host.emergency_reenable_tls_verification",
    "host.emergency_clear_mandatory_guidance",
    "host.update_firewalld_service_status",
];

/// Where a method runs once dispatched.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Scope {
    /// Needs no database: runs on the receiving host (local state, pool.conf).
    Local,
    /// Reads or writes the pool database (the master's, possibly reached from a slave).
    Database,
}

/// Specific methods: (wire name, parameters after the session, scope). Generic getters are
/// resolved separately.
const METHODS: &[(&str, usize, Scope)] = &[
    ("session.logout", 0, Scope::Local),
    ("session.local_logout", 0, Scope::Local),
    ("pool.emergency_transition_to_master", 0, Scope::Local),
    ("pool.emergency_reset_master", 1, Scope::Local),
    ("pool.is_slave", 1, Scope::Local),
    ("host.is_in_emergency_mode", 0, Scope::Local),
    ("host.get_servertime", 1, Scope::Database),
    ("pool.recover_slaves", 0, Scope::Database),
    ("pool.designate_new_master", 1, Scope::Database),
    ("host.declare_dead", 1, Scope::Database),
    ("host.destroy", 1, Scope::Database),
    ("host.enable", 1, Scope::Database),
    ("host.disable", 1, Scope::Database),
    ("VM.power_state_reset", 1, Scope::Database),
    ("VM.start", 3, Scope::Database),
    ("VM.start_on", 4, Scope::Database),
    ("VM.hard_shutdown", 1, Scope::Database),
    ("VM.clean_shutdown", 1, Scope::Database),
    ("VM.hard_reboot", 1, Scope::Database),
    ("VM.clean_reboot", 1, Scope::Database),
    ("VM.set_affinity", 2, Scope::Database),
    ("VM.pool_migrate", 3, Scope::Database),
    ("VDI.remove_from_sm_config", 2, Scope::Database),
    ("VDI.add_to_sm_config", 3, Scope::Database),
    ("pool.add_to_other_config", 3, Scope::Database),
    ("pool.remove_from_other_config", 2, Scope::Database),
    ("event.from", 3, Scope::Database),
    ("event.get_current_id", 0, Scope::Database),
    ("event.inject", 2, Scope::Database),
    ("task.cancel", 1, Scope::Database),
    ("task.destroy", 1, Scope::Database),
];

/// Methods that have an `Async.` variant returning a task.
const ASYNC: &[&str] = &[
    "VM.start",
    "VM.start_on",
    "VM.hard_shutdown",
    "VM.clean_shutdown",
    "VM.hard_reboot",
    "VM.clean_reboot",
    "VM.power_state_reset",
    "VM.pool_migrate",
    "host.declare_dead",
    "pool.recover_slaves",
];

/// Generic messages every class has: (message, parameters after the session).
const GENERIC: &[(&str, usize)] = &[
    ("get_all", 0),
    ("get_all_records", 0),
    ("get_all_records_where", 1),
    ("get_all_where", 1),
    ("get_record", 1),
    ("get_by_uuid", 1),
    ("get_by_name_label", 1),
];

pub(super) fn fail(code: ErrorCode, params: Vec<String>) -> Result<Value, Failure> {
    Err(Failure::new(code, params))
}

pub(super) fn void() -> Result<Value, Failure> {
    Ok(Value::String(String::new()))
}

/// The string of parameter `k`, or the INTERNAL_ERROR xapi's unmarshaller gives for a wrong
/// type (exact text UNCONFIRMED, xapi-notes.md §12).
pub(super) fn string_param(params: &[Value], k: usize) -> Result<String, Failure> {
    match params.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(type_error("string", other)),
        None => Err(Failure::new(
            ErrorCode::InternalError,
            vec!["missing parameter".into()],
        )),
    }
}

pub(super) fn bool_param(params: &[Value], k: usize) -> Result<bool, Failure> {
    match params.get(k) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(type_error("bool", other)),
        None => Err(Failure::new(
            ErrorCode::InternalError,
            vec!["missing parameter".into()],
        )),
    }
}

pub(super) fn type_error(expected: &str, got: &Value) -> Failure {
    Failure::new(
        ErrorCode::InternalError,
        vec![format!("Rpc.Runtime_error(\"{expected}\", {})", got.kind())],
    )
}

impl Model {
    /// Handles one call received by host `me` at simulated time `now`.
    pub fn handle(&mut self, me: usize, call: &MethodCall, now: f64) -> Outcome {
        if !(self.hosts[me].power_on && self.hosts[me].xapi_running) {
            return Outcome::Drop;
        }
        if !self.hosts[me].network_up {
            // The request is stuck in the cable: it arrives if the cable comes back in time.
            return Outcome::Hang;
        }
        let method = wire_name(&call.method);
        let method = method.as_str();
        let (is_async, base) = match method.strip_prefix("Async.") {
            Some(rest) if ASYNC.contains(&rest) => (true, rest),
            _ => (false, method),
        };
        if self.hosts[me].emergency && !EMERGENCY_CALLS.contains(&method) {
            return Outcome::Reply(Err(self.hosts[me].emergency_error.clone()));
        }
        match base {
            "session.login_with_password" => return self.login(me, &call.params),
            "session.slave_local_login_with_password" => return self.local_login(me, &call.params),
            "system.listMethods" => return Outcome::Reply(Ok(list_methods())),
            _ => {}
        }
        let expected = METHODS
            .iter()
            .find(|(name, ..)| *name == base)
            .map(|(_, n, scope)| (*n, *scope))
            .or_else(|| generic_arity(base).map(|n| (n, Scope::Database)));
        let session = call
            .params
            .first()
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let Some((arity, scope)) = expected else {
            // The first parameter is checked as a session before the method is found unknown.
            if !call.params.is_empty()
                && let Some(outcome) = self.check_session(me, &session)
            {
                return outcome;
            }
            return Outcome::Reply(fail(
                ErrorCode::MessageMethodUnknown,
                vec![method.to_owned()],
            ));
        };
        let received = call.params.len().saturating_sub(1);
        if call.params.is_empty() || received != arity {
            return Outcome::Reply(fail(
                ErrorCode::MessageParameterCountMismatch,
                vec![method.to_owned(), arity.to_string(), received.to_string()],
            ));
        }
        if let Some(outcome) = self.check_session(me, &session) {
            return outcome;
        }
        let params = &call.params[1..];
        if scope == Scope::Local {
            return Outcome::Reply(self.local_call(me, base, params, &session, now));
        }
        let Some(m) = self.database_host(me) else {
            return Outcome::Hang;
        };
        if base == "event.from" {
            return self.event_from(m, &session, params);
        }
        if base == "host.get_servertime" {
            return self.servertime(m, params, now);
        }
        let takes = self.duration(m, base, params);
        if is_async {
            return Outcome::Reply(self.run_async(m, base, params, now, takes));
        }
        match self.database_call(m, base, params, now) {
            // The effect shows at once; the answer comes when the real call would end.
            Some(result) if takes > 0.0 => Outcome::Delayed(takes, result),
            Some(result) => Outcome::Reply(result),
            None => Outcome::Hang,
        }
    }

    /// `Session_check.check` (xapi-notes.md §2.4). `None` = valid.
    fn check_session(&self, me: usize, session: &str) -> Option<Outcome> {
        let host = &self.hosts[me];
        if host.local_sessions.contains(session) {
            return None;
        }
        match &host.role {
            Role::Master if host.sessions.contains(session) => None,
            Role::Master => Some(Outcome::Reply(fail(
                ErrorCode::SessionInvalid,
                vec![session.into()],
            ))),
            // A pool session on a slave needs the master's database to be checked.
            Role::Slave(_) => match self.database_host(me) {
                Some(m) if self.hosts[m].sessions.contains(session) => {
                    let address = self.hosts[m].address.clone();
                    Some(Outcome::Reply(fail(ErrorCode::HostIsSlave, vec![address])))
                }
                Some(_) => Some(Outcome::Reply(fail(
                    ErrorCode::SessionInvalid,
                    vec![session.into()],
                ))),
                None => Some(Outcome::Hang),
            },
        }
    }

    fn login(&mut self, me: usize, params: &[Value]) -> Outcome {
        // Required user and password, then defaulted version and originator; further
        // trailing parameters are ignored (xapi-notes.md §1.2).
        if params.len() < 2 {
            return Outcome::Reply(fail(
                ErrorCode::MessageParameterCountMismatch,
                vec![
                    "session.login_with_password".into(),
                    "2".into(),
                    params.len().to_string(),
                ],
            ));
        }
        if let Role::Slave(address) = &self.hosts[me].role {
            return Outcome::Reply(fail(ErrorCode::HostIsSlave, vec![address.clone()]));
        }
        let (user, password) = match (string_param(params, 0), string_param(params, 1)) {
            (Ok(u), Ok(p)) => (u, p),
            (Err(e), _) | (_, Err(e)) => return Outcome::Reply(Err(e)),
        };
        if user != "root" || password != self.password {
            return Outcome::Delayed(
                FAILED_LOGIN_DELAY,
                fail(
                    ErrorCode::SessionAuthenticationFailed,
                    vec![user, "Authentication failure".into()],
                ),
            );
        }
        let session = self.new_ref();
        self.hosts[me].sessions.insert(session.clone());
        Outcome::Reply(Ok(Value::String(session)))
    }

    /// `slave_local_login_with_password`: PAM only, no delay, no database (xapi-notes.md §2.3).
    fn local_login(&mut self, me: usize, params: &[Value]) -> Outcome {
        if params.len() != 2 {
            return Outcome::Reply(fail(
                ErrorCode::MessageParameterCountMismatch,
                vec![
                    "session.slave_local_login_with_password".into(),
                    "2".into(),
                    params.len().to_string(),
                ],
            ));
        }
        let (user, password) = match (string_param(params, 0), string_param(params, 1)) {
            (Ok(u), Ok(p)) => (u, p),
            (Err(e), _) | (_, Err(e)) => return Outcome::Reply(Err(e)),
        };
        if user != "root" || password != self.password {
            return Outcome::Reply(fail(
                ErrorCode::SessionAuthenticationFailed,
                vec![user, "Authentication failure".into()],
            ));
        }
        let session = self.new_ref();
        self.hosts[me].local_sessions.insert(session.clone());
        Outcome::Reply(Ok(Value::String(session)))
    }

    fn local_call(
        &mut self,
        me: usize,
        method: &str,
        params: &[Value],
        session: &str,
        now: f64,
    ) -> Result<Value, Failure> {
        match method {
            "session.logout" => {
                self.hosts[me].sessions.remove(session);
                void()
            }
            "session.local_logout" => {
                self.hosts[me].local_sessions.remove(session);
                void()
            }
            "host.is_in_emergency_mode" => Ok(Value::Bool(self.hosts[me].emergency)),
            "pool.is_slave" => Ok(Value::Bool(self.hosts[me].role != Role::Master)),
            "pool.emergency_transition_to_master" => {
                if self.hosts[me].ha_armed {
                    return fail(ErrorCode::HaIsEnabled, vec![]);
                }
                self.hosts[me].role = Role::Master;
                self.hosts[me].fuse_at = Some(now + FUSE);
                void()
            }
            "pool.emergency_reset_master" => {
                let address = string_param(params, 0)?;
                self.emergency_reset_master(me, &address, now)
            }
            other => fail(ErrorCode::MessageMethodUnknown, vec![other.into()]),
        }
    }

    /// xapi-notes.md §6.2: becomes `address`'s slave (no-op if already), restarting after the fuse.
    fn emergency_reset_master(
        &mut self,
        me: usize,
        address: &str,
        now: f64,
    ) -> Result<Value, Failure> {
        if self.hosts[me].ha_armed {
            return fail(ErrorCode::HaIsEnabled, vec![]);
        }
        if self.hosts[me].role == Role::Slave(address.to_owned()) {
            return void();
        }
        if self.host_by_address(address).is_none() {
            return fail(
                ErrorCode::InternalError,
                vec![format!("Failure(\"Couldn't resolve hostname: {address}\")")],
            );
        }
        self.hosts[me].role = Role::Slave(address.to_owned());
        self.hosts[me].fuse_at = Some(now + FUSE);
        void()
    }

    /// A database-backed call on the database of host `m`. `None` = the call blocks.
    pub(super) fn database_call(
        &mut self,
        m: usize,
        method: &str,
        params: &[Value],
        now: f64,
    ) -> Option<Result<Value, Failure>> {
        let result = match method {
            "pool.recover_slaves" => self.recover_slaves(m, now),
            "pool.designate_new_master" => self.designate_new_master(m, params, now),
            "host.declare_dead" => self.declare_dead(m, params),
            "host.destroy" => self.destroy_host(m, params),
            "host.enable" | "host.disable" => self.set_enabled(m, params, method == "host.enable"),
            "VM.power_state_reset" => self.power_state_reset(m, params),
            "VM.start" => return self.start(m, params, None),
            "VM.start_on" => {
                let host = match string_param(params, 1) {
                    Ok(h) => h,
                    Err(e) => return Some(Err(e)),
                };
                let rest = [params[0].clone(), params[2].clone(), params[3].clone()];
                return self.start(m, &rest, Some(host));
            }
            "VM.hard_shutdown" | "VM.clean_shutdown" => self.shutdown_vm(m, params),
            "VM.hard_reboot" | "VM.clean_reboot" => self.reboot_vm(m, params),
            "VM.set_affinity" => self.set_affinity(m, params),
            "VM.pool_migrate" => self.pool_migrate(m, params),
            "VDI.remove_from_sm_config" => self.remove_from_sm_config(m, params),
            "VDI.add_to_sm_config" => self.add_to_sm_config(m, params),
            "pool.add_to_other_config" => self.pool_other_config(m, params, true),
            "pool.remove_from_other_config" => self.pool_other_config(m, params, false),
            "event.get_current_id" => Ok(Value::String(self.hosts[m].db.generation.to_string())),
            "event.inject" => self.inject(m, params),
            "task.cancel" => self.cancel_task(m, params),
            "task.destroy" => self.destroy_task(m, params),
            other => self.generic(m, other, params),
        };
        Some(result)
    }

    // -----------------------------------------------------------------------------------------
    // Pool recovery
    // -----------------------------------------------------------------------------------------

    /// xapi-notes.md §6.3: `emergency_reset_master(my address)` on every other host in the
    /// database; returns those that answered, silently drops the rest.
    fn recover_slaves(&mut self, m: usize, now: f64) -> Result<Value, Failure> {
        let my_address = self.hosts[m].address.clone();
        let refs: Vec<String> = self.hosts[m]
            .db
            .host
            .iter()
            .map(|(r, _)| r.clone())
            .collect();
        let mut answered = Vec::new();
        for r in refs {
            let Some(j) = self.host_by_ref(&r).filter(|&j| j != m) else {
                continue;
            };
            if self.reaches(m, j) && self.emergency_reset_master(j, &my_address, now).is_ok() {
                answered.push(Value::String(r));
            }
        }
        Ok(Value::Array(answered))
    }

    /// xapi-notes.md §6.4: orderly handover; every host must answer.
    fn designate_new_master(
        &mut self,
        m: usize,
        params: &[Value],
        now: f64,
    ) -> Result<Value, Failure> {
        let (_, t) = self.host_param(m, params, 0)?;
        if t == m {
            return void();
        }
        if self.hosts[m].db.pool_record().is_some_and(|p| p.ha_enabled) {
            return fail(ErrorCode::HaIsEnabled, vec![]);
        }
        let refs: Vec<String> = self.hosts[m]
            .db
            .host
            .iter()
            .map(|(r, _)| r.clone())
            .collect();
        for r in &refs {
            if let Some(j) = self.host_by_ref(r)
                && j != m
                && !self.reaches(m, j)
            {
                return fail(ErrorCode::CannotContactHost, vec![r.clone()]);
            }
        }
        let address = self.hosts[t].address.clone();
        self.hosts[t].db = self.hosts[m].db.clone();
        for r in refs {
            if let Some(j) = self.host_by_ref(&r) {
                self.hosts[j].role = if j == t {
                    Role::Master
                } else {
                    Role::Slave(address.clone())
                };
                self.hosts[j].fuse_at = Some(now + FUSE);
            }
        }
        void()
    }

    /// `host_metrics.live` of a host in `m`'s database.
    pub(super) fn is_live(&self, m: usize, host_ref: &str) -> bool {
        let db = &self.hosts[m].db;
        db.host
            .get(host_ref)
            .and_then(|h| db.host_metrics.get(h.metrics.as_str()))
            .is_some_and(|hm| hm.live)
    }

    /// `Xapi_host.is_host_alive` (xapi-notes.md §5.3): `live=false` means dead without contact;
    /// otherwise the master probes the host and any failure counts as dead.
    pub(super) fn is_host_alive(&self, m: usize, host_ref: &str) -> bool {
        let db = &self.hosts[m].db;
        let live = db
            .host
            .get(host_ref)
            .and_then(|h| db.host_metrics.get(h.metrics.as_str()))
            .is_some_and(|hm| hm.live);
        live && self
            .host_by_ref(host_ref)
            .is_some_and(|j| self.reaches(m, j))
    }

    fn require_host(&self, m: usize, params: &[Value]) -> Result<String, Failure> {
        self.require(m, params, "host")
    }

    /// The first parameter, which must name an object of `class` in `m`'s database
    /// (`HANDLE_INVALID [class; ref]` otherwise, as xapi answers).
    pub(super) fn require(
        &self,
        m: usize,
        params: &[Value],
        class: &str,
    ) -> Result<String, Failure> {
        let reference = string_param(params, 0)?;
        if self.hosts[m].db.record_exists(class, &reference) {
            Ok(reference)
        } else {
            Err(Failure::new(
                ErrorCode::HandleInvalid,
                vec![class.into(), reference],
            ))
        }
    }

    /// xapi-notes.md §6.5: resets every resident guest, disables the host, runs `10resetvdis`.
    fn declare_dead(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        let host = self.require_host(m, params)?;
        if host == self.hosts[m].reference || self.is_host_alive(m, &host) {
            return fail(ErrorCode::HostIsLive, vec![host]);
        }
        let guests: Vec<String> = self.hosts[m]
            .db
            .vm
            .iter()
            .filter(|(_, v)| !v.is_control_domain && v.resident_on.as_str() == host)
            .map(|(r, _)| r.clone())
            .collect();
        for vm in guests {
            self.reset_vm_record(m, &vm);
        }
        Db::update(
            |d| &mut d.host,
            Arc::make_mut(&mut self.hosts[m].db),
            &host,
            |h| h.enabled = false,
        );
        self.reset_vdis(m, &host);
        void()
    }

    /// `host.destroy` (xe host-forget), xapi-notes.md §6.5.
    fn destroy_host(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        let host = self.require_host(m, params)?;
        if host == self.hosts[m].reference || self.is_host_alive(m, &host) {
            return fail(ErrorCode::HostIsLive, vec![host]);
        }
        if self.hosts[m].db.pool_record().is_some_and(|p| p.ha_enabled) {
            return fail(ErrorCode::HaIsEnabled, vec![]);
        }
        let db = &self.hosts[m].db;
        if db
            .vm
            .iter()
            .any(|(_, v)| !v.is_control_domain && v.resident_on.as_str() == host)
        {
            return fail(ErrorCode::HostHasResidentVms, vec![host]);
        }
        self.reset_vdis(m, &host);
        let db = Arc::make_mut(&mut self.hosts[m].db);
        let record = db.host.get(&host).cloned().unwrap_or_default();
        Db::remove(|d| &mut d.vm, db, record.control_domain.as_str());
        Db::remove(|d| &mut d.host_metrics, db, record.metrics.as_str());
        for pbd in &record.pbds {
            Db::remove(|d| &mut d.pbd, db, pbd.as_str());
        }
        Db::remove(|d| &mut d.host, db, &host);
        void()
    }

    /// `10resetvdis` for every SR with a PBD on `host` (xapi-notes.md §6.6): removes its attachment
    /// tags from their VDIs.
    fn reset_vdis(&mut self, m: usize, host: &str) {
        let db = Arc::make_mut(&mut self.hosts[m].db);
        let srs: Vec<String> = db
            .pbd
            .iter()
            .filter(|(_, p)| p.host.as_str() == host)
            .map(|(_, p)| p.sr.as_str().to_owned())
            .collect();
        let key = format!("host_{host}");
        let tagged: Vec<String> = db
            .vdi
            .iter()
            .filter(|(_, v)| {
                srs.iter().any(|s| s == v.sr.as_str()) && v.sm_config.contains_key(&key)
            })
            .map(|(r, _)| r.clone())
            .collect();
        for vdi in tagged {
            Db::update(
                |d| &mut d.vdi,
                db,
                &vdi,
                |v| {
                    v.sm_config.remove(&key);
                },
            );
        }
    }

    fn set_enabled(&mut self, m: usize, params: &[Value], enabled: bool) -> Result<Value, Failure> {
        let host = self.require_host(m, params)?;
        Db::update(
            |d| &mut d.host,
            Arc::make_mut(&mut self.hosts[m].db),
            &host,
            |h| h.enabled = enabled,
        );
        void()
    }

    /// Parameter `k`, a host of `m`'s database that is a simulated host: its reference and
    /// index, or `HANDLE_INVALID`.
    pub(super) fn host_param(
        &self,
        m: usize,
        params: &[Value],
        k: usize,
    ) -> Result<(String, usize), Failure> {
        let host = string_param(params, k)?;
        match self
            .host_by_ref(&host)
            .filter(|_| self.hosts[m].db.host.get(&host).is_some())
        {
            Some(t) => Ok((host, t)),
            None => Err(Failure::new(
                ErrorCode::HandleInvalid,
                vec!["host".into(), host],
            )),
        }
    }

    /// `host.get_servertime(host)`: the master forwards it to the host itself (`do_op_on` in
    /// message_forwarding.ml), so it answers only while the master reaches that host's xapi.
    /// A host the database holds not live fails at once with `HOST_OFFLINE`; a refused
    /// connection fails at once with `CANNOT_CONTACT_HOST`; a host that gives no answer costs
    /// the master its connect retries first.
    fn servertime(&mut self, m: usize, params: &[Value], now: f64) -> Outcome {
        let (host, t) = match self.host_param(m, params, 0) {
            Ok(found) => found,
            Err(e) => return Outcome::Reply(Err(e)),
        };
        let db = &self.hosts[m].db;
        let live = db
            .host
            .get(host.as_str())
            .and_then(|h| db.host_metrics.get(h.metrics.as_str()))
            .is_some_and(|hm| hm.live);
        if t != m && !live {
            return Outcome::Reply(fail(ErrorCode::HostOffline, vec![host]));
        }
        if self.reaches(m, t) {
            return Outcome::Reply(Ok(Value::DateTime(DateTime::from_unix(now as i64).0)));
        }
        let cannot = fail(ErrorCode::CannotContactHost, vec![host]);
        let target = &self.hosts[t];
        if target.power_on && target.network_up && !target.xapi_running {
            Outcome::Reply(cannot)
        } else {
            Outcome::Delayed(self.params.forward_connect_timeout, cannot)
        }
    }
}

/// Parameter count of a generic message (`VM.get_all_records`, `host.get_address`, …), if
/// `method` names one on a known class.
fn generic_arity(method: &str) -> Option<usize> {
    let (class, message) = method.split_once('.')?;
    if !CLASSES.iter().any(|(c, _)| *c == class) {
        return None;
    }
    GENERIC
        .iter()
        .find(|(name, _)| *name == message)
        .map(|(_, n)| *n)
        .or_else(|| message.starts_with("get_").then_some(1))
}

/// Classes that may prefix a method name.
const METHOD_CLASSES: &[&str] = &[
    "session",
    "event",
    "task",
    "pool",
    "host_metrics",
    "host",
    "VM",
    "VBD",
    "VDI",
    "SR",
    "PBD",
    "system",
];

/// xapi also accepts `<class>_<message>` for `<class>.<message>` (xapi-notes.md §1.2); Python
/// callers need it for `event.from`, since `from` is a keyword.
fn wire_name(method: &str) -> String {
    let (prefix, rest) = match method.strip_prefix("Async.") {
        Some(rest) => ("Async.", rest),
        None => ("", method),
    };
    if rest.contains('.') {
        return method.to_owned();
    }
    for class in METHOD_CLASSES {
        if let Some(message) = rest.strip_prefix(class).and_then(|m| m.strip_prefix('_')) {
            return format!("{prefix}{class}.{message}");
        }
    }
    method.to_owned()
}

fn list_methods() -> Value {
    let mut names: Vec<String> = METHODS.iter().map(|(n, ..)| (*n).to_owned()).collect();
    names.push("session.login_with_password".into());
    names.push("session.slave_local_login_with_password".into());
    names.extend(ASYNC.iter().map(|n| format!("Async.{n}")));
    for (class, _) in CLASSES {
        names.extend(GENERIC.iter().map(|(m, _)| format!("{class}.{m}")));
    }
    names.sort();
    Value::Array(names.into_iter().map(Value::String).collect())
}

/// `SR_BACKEND_FAILURE_46`, the VDIUnavailable error blktap raises (xapi-notes.md §6.6).
pub(super) fn vdi_unavailable(reason: &str) -> Failure {
    Failure::new(
        ErrorCode::SrBackendFailure46,
        vec![
            String::new(),
            format!("The VDI is not available [opterr={reason}]"),
            String::new(),
        ],
    )
}
