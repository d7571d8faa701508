//! [`PoolActuator`]: the few mutating calls the remediation needs (architecture.md §6), and nothing
//! else. Only the remediation executor constructs one.

use std::sync::Arc;
use std::time::Duration;

use super::error::{Error, ErrorCode, Failure};
use super::records::{Host, Pool, Ref, Task, TaskStatus, Vdi, Vm};
use super::session::{LocalSession, Session};
use super::typed::from_value;
use super::wire::Value;

/// How often a task is polled while waiting for it.
const TASK_POLL: Duration = Duration::from_millis(500);

/// Mutating access to a pool.
#[derive(Debug, Clone)]
pub struct PoolActuator {
    session: Arc<Session>,
}

impl PoolActuator {
    /// An actuator over a pool session.
    pub fn new(session: Arc<Session>) -> PoolActuator {
        PoolActuator { session }
    }

    /// Promotes the slave at `address` (xapi-notes.md §6.1): local login, then
    /// `pool.emergency_transition_to_master`, then local logout. Its xapi restarts about 10 s
    /// later as master; every session of the pool is then gone. `HA_IS_ENABLED` if HA is armed.
    pub async fn emergency_transition_to_master(&self, address: &str) -> Result<(), Error> {
        let transport = self.session.transport();
        let local =
            LocalSession::login(transport, address, self.session.credentials(), None).await?;
        let result = local
            .call("pool.emergency_transition_to_master", &[], None)
            .await;
        local.logout(None).await;
        self.session.reset().await;
        result.map(drop)
    }

    /// `pool.recover_slaves` on the master, waiting at most `limit` for its answer (it resets
    /// one host after another, each unreachable one costing its connect retries): the hosts
    /// that answered. Hosts it could not reach are silently absent: compare with the expected
    /// survivors.
    pub async fn recover_slaves(&self, limit: Duration) -> Result<Vec<Ref<Host>>, Error> {
        let value = self
            .session
            .call_with_timeout("pool.recover_slaves", &[], Some(limit))
            .await?;
        self.decode("pool.recover_slaves", value).await
    }

    /// `Async.host.declare_dead`, waited for at most `limit`: resets every resident VM,
    /// disables the host and runs the declare-dead hooks (slow: they walk every SR of the
    /// host). `HOST_IS_LIVE` if the host answers.
    pub async fn declare_dead(&self, host: &Ref<Host>, limit: Duration) -> Result<(), Error> {
        let task = self
            .task("Async.host.declare_dead", &[Value::string(host.as_str())])
            .await?;
        self.wait(&task, limit).await
    }

    /// `Async.VM.power_state_reset`, waited for at most `limit`: marks the VM halted in the
    /// database only (it contacts the VM's host while that host reads live).
    pub async fn power_state_reset(&self, vm: &Ref<Vm>, limit: Duration) -> Result<(), Error> {
        let task = self
            .task("Async.VM.power_state_reset", &[Value::string(vm.as_str())])
            .await?;
        self.wait(&task, limit).await
    }

    /// `VDI.remove_from_sm_config(vdi, key)`: releases a dead host's `host_<ref>` tag, as
    /// `resetvdis` does (xapi-notes.md §6.6).
    pub async fn remove_from_sm_config(&self, vdi: &Ref<Vdi>, key: &str) -> Result<(), Error> {
        self.void(
            "VDI.remove_from_sm_config",
            &[Value::string(vdi.as_str()), Value::string(key)],
        )
        .await
    }

    /// `pool.add_to_other_config(pool, key, value)`: `MAP_DUPLICATE_KEY` when the key is
    /// present. The master applies it under its database lock, so of two concurrent adds
    /// exactly one succeeds (docs/xapi-notes.md, "A map key as a lock").
    pub async fn add_to_pool_other_config(
        &self,
        pool: &Ref<Pool>,
        key: &str,
        value: &str,
    ) -> Result<(), Error> {
        self.void(
            "pool.add_to_other_config",
            &[
                Value::string(pool.as_str()),
                Value::string(key),
                Value::string(value),
            ],
        )
        .await
    }

    /// `pool.remove_from_other_config(pool, key)`; an absent key is no error.
    pub async fn remove_from_pool_other_config(
        &self,
        pool: &Ref<Pool>,
        key: &str,
    ) -> Result<(), Error> {
        self.void(
            "pool.remove_from_other_config",
            &[Value::string(pool.as_str()), Value::string(key)],
        )
        .await
    }

    /// `VM.set_affinity(vm, host)`; a null host clears the home server.
    pub async fn set_affinity(&self, vm: &Ref<Vm>, host: &Ref<Host>) -> Result<(), Error> {
        self.void(
            "VM.set_affinity",
            &[Value::string(vm.as_str()), Value::string(host.as_str())],
        )
        .await
    }

    /// `Async.VM.start(vm, false, false)` and wait at most `limit` for the task; a task still
    /// pending at the limit is cancelled (a sync start can block for two hours,
    /// xapi-notes.md §5.4).
    pub async fn start(&self, vm: &Ref<Vm>, limit: Duration) -> Result<(), Error> {
        let params = [
            Value::string(vm.as_str()),
            Value::Bool(false),
            Value::Bool(false),
        ];
        let task = self.task("Async.VM.start", &params).await?;
        self.wait(&task, limit).await
    }

    /// `Async.VM.start_on(vm, host, false, false)`, waited for as [`PoolActuator::start`].
    pub async fn start_on(
        &self,
        vm: &Ref<Vm>,
        host: &Ref<Host>,
        limit: Duration,
    ) -> Result<(), Error> {
        let params = [
            Value::string(vm.as_str()),
            Value::string(host.as_str()),
            Value::Bool(false),
            Value::Bool(false),
        ];
        let task = self.task("Async.VM.start_on", &params).await?;
        self.wait(&task, limit).await
    }

    async fn task(&self, method: &str, params: &[Value]) -> Result<Ref<Task>, Error> {
        let value = self.session.call(method, params).await?;
        self.decode(method, value).await
    }

    /// Polls a task until it leaves `pending`; cancels it at the limit.
    async fn wait(&self, task: &Ref<Task>, limit: Duration) -> Result<(), Error> {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let value = self
                .session
                .call("task.get_record", &[Value::string(task.as_str())])
                .await?;
            let record: Task = self.decode("task.get_record", value).await?;
            match record.status {
                TaskStatus::Success => {
                    let _ = self
                        .session
                        .call("task.destroy", &[Value::string(task.as_str())])
                        .await;
                    return Ok(());
                }
                TaskStatus::Failure => {
                    let _ = self
                        .session
                        .call("task.destroy", &[Value::string(task.as_str())])
                        .await;
                    return Err(Failure::from_description(record.error_info).into());
                }
                TaskStatus::Cancelled => {
                    return Err(
                        Failure::new(ErrorCode::TaskCancelled, vec![task.to_string()]).into(),
                    );
                }
                TaskStatus::Pending | TaskStatus::Cancelling | TaskStatus::Unknown(_) => {}
            }
            if tokio::time::Instant::now() >= deadline {
                let _ = self
                    .session
                    .call("task.cancel", &[Value::string(task.as_str())])
                    .await;
                return Err(Error::Task {
                    task: task.to_string(),
                    message: format!(
                        "still {} after {:.0} s; cancel requested",
                        record.status,
                        limit.as_secs_f64()
                    ),
                });
            }
            tokio::time::sleep(TASK_POLL).await;
        }
    }

    async fn void(&self, method: &str, params: &[Value]) -> Result<(), Error> {
        self.session.call(method, params).await.map(drop)
    }

    async fn decode<T: serde::de::DeserializeOwned + Send + 'static>(
        &self,
        method: &str,
        value: Value,
    ) -> Result<T, Error> {
        from_value(value).map_err(|source| Error::Decode {
            address: String::new(),
            method: method.to_owned(),
            source,
        })
    }
}
