//! The XAPI methods of a simulated host, answered from that host's point of view (xapi.md
//! §1.2 dispatch order: emergency check, method lookup, parameter count, session check, then
//! the implementation).

use std::sync::Arc;

use crate::xapi::error::{ErrorCode, Failure};
use crate::xapi::records::{PowerState, Ref, Task, TaskStatus};
use crate::xapi::typed::DateTime;
use crate::xapi::wire::{MethodCall, Value};

use super::db::{self, CLASSES, Db, Filter, Identity};
use super::model::{FAILED_LOGIN_DELAY, FUSE, Model, PendingTask, Role, Timing};

/// What the server does with a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Answer now.
    Reply(Result<Value, Failure>),
    /// Answer after this many simulated seconds (the failed-login delay).
    Delayed(f64, Result<Value, Failure>),
    /// Block: the call needs a master that cannot be reached (xapi.md §3.4). The server
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

/// Calls accepted by an emergency-mode host (xapi.md §3.2).
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

fn fail(code: ErrorCode, params: Vec<String>) -> Result<Value, Failure> {
    Err(Failure::new(code, params))
}

fn void() -> Result<Value, Failure> {
    Ok(Value::String(String::new()))
}

/// The string of parameter `k`, or the INTERNAL_ERROR xapi's unmarshaller gives for a wrong
/// type (exact text UNCONFIRMED, xapi.md §12).
fn string_param(params: &[Value], k: usize) -> Result<String, Failure> {
    match params.get(k) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(type_error("string", other)),
        None => Err(Failure::new(
            ErrorCode::InternalError,
            vec!["missing parameter".into()],
        )),
    }
}

fn bool_param(params: &[Value], k: usize) -> Result<bool, Failure> {
    match params.get(k) {
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(type_error("bool", other)),
        None => Err(Failure::new(
            ErrorCode::InternalError,
            vec!["missing parameter".into()],
        )),
    }
}

fn type_error(expected: &str, got: &Value) -> Failure {
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

    /// `Session_check.check` (xapi.md §2.4). `None` = valid.
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
        // trailing parameters are ignored (xapi.md §1.2).
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

    /// `slave_local_login_with_password`: PAM only, no delay, no database (xapi.md §2.3).
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

    /// xapi.md §6.2: becomes `address`'s slave (no-op if already), restarting after the fuse.
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
    fn database_call(
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
            "event.get_current_id" => Ok(Value::String(self.hosts[m].db.generation.to_string())),
            "event.inject" => self.inject(m, params),
            "task.cancel" => self.cancel_task(m, params),
            "task.destroy" => self.destroy_task(m, params),
            other => self.generic(m, other, params),
        };
        Some(result)
    }

    /// Simulated seconds a call spends contacting other hosts before it ends (realistic
    /// timing): a host the database reads live but that gives no answer costs the master its
    /// connect retries; each of a dead host's SRs costs the declare-dead hook its time.
    fn duration(&self, m: usize, method: &str, params: &[Value]) -> f64 {
        if self.timing == Timing::Instant {
            return 0.0;
        }
        let db = &self.hosts[m].db;
        let silent = |host: &str| {
            let live = db
                .host
                .get(host)
                .and_then(|h| db.host_metrics.get(h.metrics.as_str()))
                .is_some_and(|hm| hm.live);
            // A refused connection fails at once; only silence costs the connect retries.
            let silent = self.host_by_ref(host).is_some_and(|t| {
                let h = &self.hosts[t];
                t != m && !self.reaches(m, t) && !(h.power_on && h.network_up)
            });
            if live && silent {
                self.params.forward_connect_timeout
            } else {
                0.0
            }
        };
        let param = |k: usize| params.get(k).and_then(Value::as_str).unwrap_or_default();
        match method {
            "host.declare_dead" => {
                let host = param(0);
                // A host that answers fails the precheck (HOST_IS_LIVE) before any hook runs.
                if self
                    .host_by_ref(host)
                    .is_some_and(|t| t == m || self.reaches(m, t))
                {
                    return 0.0;
                }
                let pbds = db.host.get(host).map_or(0, |h| h.pbds.len());
                silent(host) + self.params.declare_dead_hook_per_sr * pbds as f64
            }
            "VM.power_state_reset" => db
                .vm
                .get(param(0))
                .map_or(0.0, |v| silent(v.resident_on.as_str())),
            "pool.recover_slaves" => db
                .host
                .iter()
                .filter(|(r, _)| r.as_str() != self.hosts[m].reference)
                .map(|(r, _)| {
                    let answers = self.host_by_ref(r).is_some_and(|t| self.reaches(m, t));
                    if answers {
                        0.0
                    } else {
                        self.params.forward_connect_timeout
                    }
                })
                .sum(),
            _ => 0.0,
        }
    }

    /// Finishes the `Async.` tasks whose work is due: the call runs then, and its task records
    /// the outcome (one that would block stays pending until it can run).
    pub fn finish_due_tasks(&mut self, now: f64) {
        let due: Vec<PendingTask> = self
            .pending
            .iter()
            .filter(|p| p.due <= now)
            .cloned()
            .collect();
        for p in due {
            if p.m >= self.hosts.len() || !self.hosts[p.m].answers() {
                // The master died with the call: the task is gone with its database.
                self.pending.retain(|q| q.task != p.task);
                continue;
            }
            if let Some(outcome) = self.database_call(p.m, &p.method, &p.params, now) {
                self.pending.retain(|q| q.task != p.task);
                let db = Arc::make_mut(&mut self.hosts[p.m].db);
                Db::update(
                    |d| &mut d.task,
                    db,
                    &p.task,
                    |t| record_outcome(t, outcome, now),
                );
            }
        }
        for p in &self.pending {
            let done = ((now - p.started) / (p.due - p.started).max(1e-9)).clamp(0.0, 0.99);
            let db = Arc::make_mut(&mut self.hosts[p.m].db);
            if db
                .task
                .get(&p.task)
                .is_some_and(|t| done - t.progress >= 0.1)
            {
                Db::update(|d| &mut d.task, db, &p.task, |t| t.progress = done);
            }
        }
    }

    /// Starts an `Async.` call and records it in a task: with no time to take, it runs at once;
    /// otherwise the task stays `pending`, progressing, until its work is due. A call that
    /// would block leaves the task pending until cancelled.
    fn run_async(
        &mut self,
        m: usize,
        method: &str,
        params: &[Value],
        now: f64,
        takes: f64,
    ) -> Result<Value, Failure> {
        let task_ref = self.new_ref();
        let uuid = self.new_uuid();
        let mut task = Task {
            uuid,
            name_label: format!("Async.{method}"),
            status: TaskStatus::Pending,
            created: DateTime::from_unix(now as i64),
            finished: DateTime::epoch(),
            ..Task::default()
        };
        if takes > 0.0 {
            self.pending.push(PendingTask {
                started: now,
                due: now + takes,
                m,
                task: task_ref.clone(),
                method: method.to_owned(),
                params: params.to_vec(),
            });
            Db::put(
                |d| &mut d.task,
                Arc::make_mut(&mut self.hosts[m].db),
                &task_ref,
                task,
            );
            return Ok(Value::String(task_ref));
        }
        if let Some(outcome) = self.database_call(m, method, params, now) {
            record_outcome(&mut task, outcome, now);
        }
        Db::put(
            |d| &mut d.task,
            Arc::make_mut(&mut self.hosts[m].db),
            &task_ref,
            task,
        );
        Ok(Value::String(task_ref))
    }

    fn cancel_task(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        let task = string_param(params, 0)?;
        let db = Arc::make_mut(&mut self.hosts[m].db);
        let Some(record) = db.task.get(&task) else {
            return fail(ErrorCode::HandleInvalid, vec!["task".into(), task]);
        };
        // Best effort, as in xapi: a task whose work is under way (a declare-dead's hooks, a
        // recover_slaves walking the hosts) is not cancellable and finishes all the same.
        let working = self.pending.iter().any(|p| p.task == task);
        if record.status == TaskStatus::Pending && !working {
            Db::update(
                |d| &mut d.task,
                db,
                &task,
                |t| t.status = TaskStatus::Cancelled,
            );
        }
        void()
    }

    fn destroy_task(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        let task = string_param(params, 0)?;
        match Db::remove(|d| &mut d.task, Arc::make_mut(&mut self.hosts[m].db), &task) {
            Some(_) => void(),
            None => fail(ErrorCode::HandleInvalid, vec!["task".into(), task]),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Pool recovery
    // -----------------------------------------------------------------------------------------

    /// xapi.md §6.3: `emergency_reset_master(my address)` on every other host in the database;
    /// returns those that answered, silently drops the rest.
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

    /// xapi.md §6.4: orderly handover; every host must answer.
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
    fn is_live(&self, m: usize, host_ref: &str) -> bool {
        let db = &self.hosts[m].db;
        db.host
            .get(host_ref)
            .and_then(|h| db.host_metrics.get(h.metrics.as_str()))
            .is_some_and(|hm| hm.live)
    }

    /// `Xapi_host.is_host_alive` (xapi.md §5.3): `live=false` means dead without contact;
    /// otherwise the master probes the host and any failure counts as dead.
    fn is_host_alive(&self, m: usize, host_ref: &str) -> bool {
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
    fn require(&self, m: usize, params: &[Value], class: &str) -> Result<String, Failure> {
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

    /// xapi.md §6.5: resets every resident guest, disables the host, runs `10resetvdis`.
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

    /// `host.destroy` (xe host-forget), xapi.md §6.5.
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

    /// `10resetvdis` for every SR with a PBD on `host` (xapi.md §6.6): removes its attachment
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

    // -----------------------------------------------------------------------------------------
    // VMs
    // -----------------------------------------------------------------------------------------

    fn require_vm(&self, m: usize, params: &[Value]) -> Result<String, Failure> {
        self.require(m, params, "VM")
    }

    /// xapi.md §5.3.
    fn power_state_reset(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
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

    /// `VM.start` / `VM.start_on` (xapi.md §5.4): state checks, placement, forwarding to the
    /// chosen host, then the storage attach that enforces single attachment (§6.6).
    fn start(
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
            // Retried server-side for up to two hours (xapi.md §5.4): the call blocks.
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

    fn next_domid(&mut self) -> i64 {
        (self.next_number() % 30_000) as i64
    }

    /// `assert_can_boot_here`: live, enabled, sees the VM's SRs, has the memory.
    fn can_boot_here(
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
    fn choose_host(
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

    /// blktap's `_add_tag` on the target (xapi.md §6.6): another host's RW tag is cleared only
    /// if that host answers and no longer has the disk open; otherwise SR_BACKEND_FAILURE_46.
    fn attach_disks(
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

    fn running_vm(&self, m: usize, params: &[Value]) -> Result<(String, usize), Failure> {
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

    fn shutdown_vm(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        let (vm, j) = self.running_vm(m, params)?;
        self.halt_vm(m, &vm, j);
        void()
    }

    fn reboot_vm(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        self.running_vm(m, params)?;
        void()
    }

    /// `VM.pool_migrate(vm, host, options)`: a running guest moves to another live host of
    /// the pool that can run it; its domain, disk tags and database record follow.
    fn pool_migrate(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
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

    fn set_affinity(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
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

    fn require_vdi(&self, m: usize, params: &[Value]) -> Result<String, Failure> {
        self.require(m, params, "VDI")
    }

    fn remove_from_sm_config(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
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

    fn add_to_sm_config(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
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

    /// Parameter `k`, a host of `m`'s database that is a simulated host: its reference and
    /// index, or `HANDLE_INVALID`.
    fn host_param(&self, m: usize, params: &[Value], k: usize) -> Result<(String, usize), Failure> {
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

    // -----------------------------------------------------------------------------------------
    // Events
    // -----------------------------------------------------------------------------------------

    fn event_from(&mut self, m: usize, session: &str, params: &[Value]) -> Outcome {
        let classes: Vec<String> = match &params[0] {
            Value::Array(items) => items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
            other => return Outcome::Reply(Err(type_error("string set", other))),
        };
        let token = match string_param(params, 1) {
            Ok(t) => t,
            Err(e) => return Outcome::Reply(Err(e)),
        };
        let Some(since) = db::parse_token(&token) else {
            return Outcome::Reply(fail(ErrorCode::EventFromTokenParseFailure, vec![token]));
        };
        let timeout = match &params[2] {
            Value::Double(d) if d.is_finite() && *d >= 0.0 => *d,
            Value::Int(i) if *i >= 0 => *i as f64,
            Value::Double(_) | Value::Int(_) => 86_400.0,
            other => return Outcome::Reply(Err(type_error("float", other))),
        };
        let wait = EventWait {
            host: m,
            session: session.to_owned(),
            classes,
            since,
            timeout,
        };
        match self.poll_events(&wait) {
            Some(result) => Outcome::Reply(result),
            None if timeout <= 0.0 => Outcome::Reply(Ok(self.event_batch(m, &wait, Vec::new()))),
            None => Outcome::WaitEvents(wait),
        }
    }

    /// The answer to a waiting `event.from`, or `None` while there is nothing new. The session
    /// vanishing (xapi restart) ends the wait with SESSION_INVALID.
    pub fn poll_events(&self, wait: &EventWait) -> Option<Result<Value, Failure>> {
        let host = &self.hosts[wait.host];
        if !host.xapi_running
            || !(host.sessions.contains(&wait.session)
                || self
                    .hosts
                    .iter()
                    .any(|h| h.local_sessions.contains(&wait.session)))
        {
            return Some(fail(ErrorCode::SessionInvalid, vec![wait.session.clone()]));
        }
        let events = host.db.events_since(&wait.classes, wait.since);
        (!events.is_empty()).then(|| Ok(self.event_batch(wait.host, wait, events)))
    }

    /// The `event.from` answer after its timeout: no events, the current token.
    pub fn event_timeout(&self, wait: &EventWait) -> Value {
        self.event_batch(wait.host, wait, Vec::new())
    }

    fn event_batch(&self, m: usize, _wait: &EventWait, events: Vec<Value>) -> Value {
        let db = &self.hosts[m].db;
        Value::Struct(vec![
            ("events".into(), Value::Array(events)),
            ("valid_ref_counts".into(), Value::Struct(db.ref_counts())),
            ("token".into(), Value::String(db::token_of(db.generation))),
        ])
    }

    fn inject(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        let class = string_param(params, 0)?;
        let reference = string_param(params, 1)?;
        let db = Arc::make_mut(&mut self.hosts[m].db);
        let touched = match class.to_ascii_lowercase().as_str() {
            "vm" => Db::update(|d| &mut d.vm, db, &reference, |_| {}),
            "host" => Db::update(|d| &mut d.host, db, &reference, |_| {}),
            "pool" => Db::update(|d| &mut d.pool, db, &reference, |_| {}),
            _ => false,
        };
        if !touched {
            return fail(ErrorCode::HandleInvalid, vec![class, reference]);
        }
        Ok(Value::String(db::token_of(db.generation)))
    }

    // -----------------------------------------------------------------------------------------
    // Generic messages: get_all*, get_record, get_by_*, get_<field>
    // -----------------------------------------------------------------------------------------

    fn generic(&self, m: usize, method: &str, params: &[Value]) -> Result<Value, Failure> {
        let unknown = || Failure::new(ErrorCode::MessageMethodUnknown, vec![method.to_owned()]);
        let (class, message) = method.split_once('.').ok_or_else(unknown)?;
        let db = &self.hosts[m].db;
        // Encoding a whole class is costly (5,000 realistic VMs): only the messages that list
        // the class do it; single-object messages encode one record.
        let records = || db.records(class).ok_or_else(unknown);
        if !db.has_class(class) {
            return Err(unknown());
        }
        match message {
            "get_all" => Ok(Value::Array(
                records()?
                    .into_iter()
                    .map(|(r, _)| Value::String(r))
                    .collect(),
            )),
            "get_all_records" => Ok(Value::Struct(records()?)),
            "get_all_records_where" | "get_all_where" => {
                let expr = string_param(params, 0)?;
                let filter = Filter::parse(&expr)
                    .map_err(|e| Failure::new(ErrorCode::InvalidValue, vec![expr.clone(), e]))?;
                let all = records()?;
                let matching = all.into_iter().filter(|(_, v)| filter.matches(v));
                Ok(if message == "get_all_where" {
                    Value::Array(matching.map(|(r, _)| Value::String(r)).collect())
                } else {
                    Value::Struct(matching.collect())
                })
            }
            "get_record" => {
                let reference = string_param(params, 0)?;
                db.record(class, &reference).ok_or_else(|| {
                    Failure::new(ErrorCode::HandleInvalid, vec![class.into(), reference])
                })
            }
            "get_by_uuid" => {
                let uuid = string_param(params, 0)?;
                db.find_refs(class, Identity::Uuid, &uuid)
                    .into_iter()
                    .next()
                    .map(Value::String)
                    .ok_or_else(|| Failure::new(ErrorCode::UuidInvalid, vec![class.into(), uuid]))
            }
            "get_by_name_label" => {
                let label = string_param(params, 0)?;
                Ok(Value::Array(
                    db.find_refs(class, Identity::NameLabel, &label)
                        .into_iter()
                        .map(Value::String)
                        .collect(),
                ))
            }
            field_getter => {
                let field = field_getter.strip_prefix("get_").ok_or_else(unknown)?;
                let reference = string_param(params, 0)?;
                let record = db.record(class, &reference).ok_or_else(|| {
                    Failure::new(ErrorCode::HandleInvalid, vec![class.into(), reference])
                })?;
                record.member(field).cloned().ok_or_else(unknown)
            }
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

/// xapi also accepts `<class>_<message>` for `<class>.<message>` (xapi.md §1.2); Python
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

/// A finished task: success with its result encoded as XAPI does, or failure with its error.
fn record_outcome(task: &mut Task, outcome: Result<Value, Failure>, now: f64) {
    task.progress = 1.0;
    task.finished = DateTime::from_unix(now as i64);
    match outcome {
        Ok(value) => {
            task.status = TaskStatus::Success;
            task.result = match value {
                Value::String(s) if s.is_empty() => String::new(),
                other => {
                    let mut out = String::new();
                    crate::xapi::wire::encode_value(&mut out, &other);
                    out
                }
            };
        }
        Err(failure) => {
            task.status = TaskStatus::Failure;
            task.error_info = failure.description();
        }
    }
}

/// `SR_BACKEND_FAILURE_46`, the VDIUnavailable error blktap raises (xapi.md §6.6).
fn vdi_unavailable(reason: &str) -> Failure {
    Failure::new(
        ErrorCode::SrBackendFailure46,
        vec![
            String::new(),
            format!("The VDI is not available [opterr={reason}]"),
            String::new(),
        ],
    )
}
