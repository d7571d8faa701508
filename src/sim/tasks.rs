//! `Async.` tasks and the realistic timing model (docs/simulator.md, "Timing"): how long a
//! call that contacts other hosts takes, tasks that stay pending and progress meanwhile, and
//! `task.cancel`, best effort as in xapi.

use std::sync::Arc;

use serde::Serialize;

use crate::xapi::error::{ErrorCode, Failure};
use crate::xapi::records::{Task, TaskStatus};
use crate::xapi::typed::DateTime;
use crate::xapi::wire::Value;

use super::db::Db;
use super::methods::{fail, string_param, void};
use super::model::Model;

/// How long a master's call forwarded to a host that gives no answer waits before it fails
/// with `CANNOT_CONTACT_HOST` (the TCP connect to a powered-off host or a cut cable times out).
pub const FORWARD_CONNECT_TIMEOUT: f64 = 20.0;
/// Time the `10resetvdis` declare-dead hook spends per PBD of the dead host: `pbd-list`, then
/// `resetvdis` for the SR under its SR and GC locks (the hook warns it "may take a long time").
pub const DECLARE_DEAD_HOOK_PER_SR: f64 = 5.0;
/// How long the simulated xapi takes over the calls that contact other hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timing {
    /// As the source shows (docs/simulator.md, "Timing"): a call that contacts a host which
    /// reads live but gives no answer waits [`FORWARD_CONNECT_TIMEOUT`], declare-dead hooks take
    /// [`DECLARE_DEAD_HOOK_PER_SR`] per SR, `Async.` tasks of such calls stay pending meanwhile.
    #[default]
    Realistic,
    /// Every call answers at once (tasks finish before their reference is returned).
    Instant,
}

impl std::str::FromStr for Timing {
    type Err = String;

    fn from_str(s: &str) -> Result<Timing, String> {
        match s {
            "realistic" => Ok(Timing::Realistic),
            "instant" => Ok(Timing::Instant),
            other => Err(format!("{other:?}: expected realistic or instant")),
        }
    }
}

/// The durations of the realistic timing model, in simulated seconds (defaults from the
/// source, docs/simulator.md "Timing"); settable through the control API (`POST /timing`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimingParams {
    /// A call to a host that reads live and gives no answer, before `CANNOT_CONTACT_HOST`.
    pub forward_connect_timeout: f64,
    /// The declare-dead hook's time per PBD of the dead host.
    pub declare_dead_hook_per_sr: f64,
}

impl Default for TimingParams {
    fn default() -> Self {
        TimingParams {
            forward_connect_timeout: FORWARD_CONNECT_TIMEOUT,
            declare_dead_hook_per_sr: DECLARE_DEAD_HOOK_PER_SR,
        }
    }
}

/// An `Async.` call whose work ends later (realistic timing).
#[derive(Debug, Clone)]
pub struct PendingTask {
    /// Simulated time it was started and time its work is done.
    pub started: f64,
    /// When its work is done.
    pub due: f64,
    /// The host whose database it runs on.
    pub m: usize,
    /// The task reference.
    pub task: String,
    /// The call, without `Async.`.
    pub method: String,
    /// Its parameters after the session.
    pub params: Vec<crate::xapi::wire::Value>,
}

impl Model {
    /// Simulated seconds a call spends contacting other hosts before it ends (realistic
    /// timing): a host the database reads live but that gives no answer costs the master its
    /// connect retries; each of a dead host's SRs costs the declare-dead hook its time.
    pub(super) fn duration(&self, m: usize, method: &str, params: &[Value]) -> f64 {
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
    pub(super) fn run_async(
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

    pub(super) fn cancel_task(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
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

    pub(super) fn destroy_task(&mut self, m: usize, params: &[Value]) -> Result<Value, Failure> {
        let task = string_param(params, 0)?;
        match Db::remove(|d| &mut d.task, Arc::make_mut(&mut self.hosts[m].db), &task) {
            Some(_) => void(),
            None => fail(ErrorCode::HandleInvalid, vec!["task".into(), task]),
        }
    }
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
