//! What the receiver knows about each configured pool: its XAPI clients and the host
//! inventory (reference, uuid, name, address, maintenance) read from the master now and then.
//!
//! # Guarantees
//! - The inventory is used to name hosts (which address a uuid has, which reference), never as
//!   evidence that a host is up or down: that comes from fresh probes at action time.
//! - A failed refresh keeps the last inventory and its read time, so callers can judge its age.
//! - One restored from the journal at start keeps its original read time too.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::PoolConfig;
use crate::pools::{PoolSetupError, credentials, transport_options};
use crate::xapi::probe;
use crate::xapi::records::{Host, Pool, PowerState, Ref, Vm};
use crate::xapi::transport::Transport;
use crate::xapi::wire::Value;
use crate::xapi::{Credentials, Error, ErrorCode, LocalSession, PoolActuator, PoolReader, Session};

/// `originator` of the receiver's sessions (xapi groups sessions by it).
pub const ORIGINATOR: &str = "xenguard-receiver";

/// One host of a pool, as last read from the master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownHost {
    /// Host reference.
    pub reference: Ref<Host>,
    /// Host uuid.
    pub uuid: String,
    /// Name label.
    pub name_label: String,
    /// Management address.
    pub address: String,
    /// `other_config:maintenance_mode` is `true`.
    pub in_maintenance: bool,
}

/// A VM XAPI recorded running on the master when the inventory was read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SeenVm {
    /// VM reference.
    pub reference: Ref<Vm>,
    /// VM uuid.
    pub uuid: String,
    /// Name label.
    pub name_label: String,
}

/// A pool's hosts and settings at one moment (kept in the journal too).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Inventory {
    /// Hosts, in address order.
    pub hosts: Vec<KnownHost>,
    /// The master according to the pool record.
    pub master: Ref<Host>,
    /// `pool.ha_enabled`.
    pub ha_enabled: bool,
    /// Guests running on the master: a promoted host's database may be restored from an older
    /// backup (xapi-notes.md §4.3) and miss some of them.
    pub master_vms: Vec<SeenVm>,
    /// Unix time it was read.
    pub read_at: f64,
    /// Each host's `other_config:boot_time` by uuid, in the hosts' clock.
    #[serde(default)]
    pub boot_times: BTreeMap<String, f64>,
}

/// `other_config:boot_time`, which xapi writes at start-up (Unix seconds, a float).
pub fn boot_time(host: &Host) -> Option<f64> {
    host.other_config.get("boot_time")?.trim().parse().ok()
}

impl Inventory {
    /// Builds the inventory from the pool and host records.
    pub fn from_records(pool: &Pool, hosts: Vec<(Ref<Host>, Host)>, read_at: f64) -> Inventory {
        let boot_times = hosts
            .iter()
            .filter_map(|(_, h)| Some((h.uuid.clone(), boot_time(h)?)))
            .collect();
        let mut hosts: Vec<KnownHost> = hosts
            .into_iter()
            .map(|(reference, h)| KnownHost {
                in_maintenance: h
                    .other_config
                    .get("maintenance_mode")
                    .is_some_and(|v| v == "true"),
                reference,
                uuid: h.uuid,
                name_label: h.name_label,
                address: h.address,
            })
            .collect();
        hosts.sort_by(|a, b| a.address.cmp(&b.address).then(a.uuid.cmp(&b.uuid)));
        Inventory {
            hosts,
            master: pool.master.clone(),
            ha_enabled: pool.ha_enabled,
            master_vms: Vec::new(),
            read_at,
            boot_times,
        }
    }

    /// The host with this uuid, reference, address or name label.
    pub fn find(&self, key: &str) -> Option<&KnownHost> {
        self.hosts.iter().find(|h| {
            h.uuid == key || h.reference.as_str() == key || h.address == key || h.name_label == key
        })
    }
}

/// Direct probes of a pool's hosts (cheap to clone into concurrent tasks).
#[derive(Debug, Clone)]
pub struct Prober {
    transport: Transport,
    credentials: Credentials,
    timeout: Duration,
}

impl Prober {
    /// Whether the slave at `address` still reaches its master: a database read over a local
    /// session answers only through the slave's master connection. `None` when the slave
    /// could not be asked (no local session).
    pub async fn reaches_master(&self, address: &str) -> Option<bool> {
        let local = LocalSession::login(
            &self.transport,
            address,
            &self.credentials,
            Some(self.timeout),
        )
        .await
        .ok()?;
        let read = local.call("pool.get_all", &[], Some(self.timeout)).await;
        local.logout(Some(self.timeout)).await;
        Some(read.is_ok())
    }

    /// Probes the host at `address` once (see [`crate::xapi::probe`]).
    pub async fn probe(&self, address: &str) -> probe::Answer {
        probe::probe(
            &self.transport,
            address,
            &self.credentials,
            ORIGINATOR,
            self.timeout,
        )
        .await
    }
}

/// One configured pool's clients and inventory.
#[derive(Debug)]
pub struct PoolClient {
    /// Pool name from the configuration.
    pub name: String,
    /// Pool session (follows the master).
    pub session: Arc<Session>,
    /// Direct per-host probes.
    pub prober: Prober,
    /// Timeout of one probe or ordinary call.
    pub call_timeout: Duration,
    /// Timeout of one `Async.VM.start`.
    pub start_timeout: Duration,
    inventory: RwLock<Option<Inventory>>,
}

impl PoolClient {
    /// Clients for a configured pool (no network yet).
    pub fn new(pool: &PoolConfig) -> Result<PoolClient, PoolSetupError> {
        let transport = Transport::new(transport_options(pool)?).map_err(|e| PoolSetupError {
            pool: pool.name.clone(),
            message: e.to_string(),
        })?;
        let credentials = credentials(pool)?;
        let session = Session::new(
            transport.clone(),
            credentials.clone(),
            ORIGINATOR,
            pool.hosts.clone(),
        );
        Ok(PoolClient {
            name: pool.name.clone(),
            session: Arc::new(session),
            prober: Prober {
                transport,
                credentials,
                timeout: pool.timeouts.call,
            },
            call_timeout: pool.timeouts.call,
            start_timeout: pool.timeouts.start_vm,
            inventory: RwLock::new(None),
        })
    }

    /// A session on the host at `address` alone (with two masters, the pool session may follow
    /// either).
    pub fn session_on(&self, address: &str) -> Arc<Session> {
        Arc::new(Session::new(
            self.prober.transport.clone(),
            self.prober.credentials.clone(),
            ORIGINATOR,
            vec![address.to_owned()],
        ))
    }

    /// Read-only access through the pool session.
    pub fn reader(&self) -> PoolReader {
        PoolReader::new(self.session.clone())
    }

    /// Mutating access; only the executor's recovery steps call this.
    pub(crate) fn actuator(&self) -> PoolActuator {
        PoolActuator::new(self.session.clone())
    }

    /// Reads the pool and host records from the master and keeps them.
    pub async fn refresh(&self, now: f64) -> Result<Inventory, Error> {
        let reader = self.reader();
        let (_, pool) = reader.pool().await?;
        let hosts = reader.all::<Host>().await?;
        let mut inventory = Inventory::from_records(&pool, hosts, now);
        // Only the master's VMs: small, unlike the whole pool's records.
        let on_master = format!("field \"resident_on\"=\"{}\"", pool.master);
        inventory.master_vms = reader
            .all_where::<Vm>(&on_master)
            .await?
            .into_iter()
            .filter(|(_, vm)| {
                vm.is_guest() && matches!(vm.power_state, PowerState::Running | PowerState::Paused)
            })
            .map(|(reference, vm)| SeenVm {
                reference,
                uuid: vm.uuid,
                name_label: vm.name_label,
            })
            .collect();
        *self.inventory.write().unwrap_or_else(|e| e.into_inner()) = Some(inventory.clone());
        Ok(inventory)
    }

    /// The pool master's clock (`host.get_servertime` of the master the pool record names),
    /// in Unix seconds; `None` when it cannot be read. Compared with hosts' own times
    /// (`other_config:boot_time`), it spares xenguard's clock the hosts' skew.
    pub async fn master_time(&self) -> Option<f64> {
        let master = self.inventory()?.master;
        let params = [Value::string(master.as_str())];
        let call =
            self.session
                .call_with_timeout("host.get_servertime", &params, Some(self.call_timeout));
        match call.await.ok()? {
            Value::DateTime(text) | Value::String(text) => crate::xapi::typed::DateTime(text)
                .to_unix()
                .map(|t| t as f64),
            _ => None,
        }
    }

    /// Whether the master reaches `host` itself: `host.get_servertime` is forwarded to the
    /// host (xapi-notes.md, "Calls the master forwards"). `Some(false)` when the master says
    /// it cannot contact it or gives up within the call limit; `None` when the answer proves
    /// neither.
    pub async fn master_reaches(&self, host: &KnownHost) -> Option<bool> {
        let params = [Value::string(host.reference.as_str())];
        let call =
            self.session
                .call_with_timeout("host.get_servertime", &params, Some(self.call_timeout));
        match call.await {
            Ok(_) => Some(true),
            Err(e)
                if e.is(&ErrorCode::CannotContactHost)
                    || e.is(&ErrorCode::HostOffline)
                    || matches!(e, Error::Timeout { .. }) =>
            {
                Some(false)
            }
            Err(e) => {
                tracing::warn!(host = %host.address, error = %e, "Cannot tell whether the master reaches the host.");
                None
            }
        }
    }

    /// The longest a read through the master may take before the master counts as gone (a
    /// dead master's socket hangs rather than refusing).
    pub fn master_read_limit(&self) -> Duration {
        self.call_timeout * 3
    }

    /// [`PoolClient::refresh`] within [`PoolClient::master_read_limit`]; `None` when no master
    /// answered in time.
    pub async fn refresh_bounded(&self, now: f64) -> Option<Inventory> {
        tokio::time::timeout(self.master_read_limit(), self.refresh(now))
            .await
            .ok()?
            .ok()
    }

    /// Starts from an inventory read before (by an earlier run, kept in the journal), unless
    /// one has been read already. Its read time is kept, so its age still counts.
    pub fn restore(&self, inventory: Inventory) {
        let mut current = self.inventory.write().unwrap_or_else(|e| e.into_inner());
        if current.is_none() {
            *current = Some(inventory);
        }
    }

    /// The last inventory read, if any.
    pub fn inventory(&self) -> Option<Inventory> {
        self.inventory
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_found_by_any_name_and_sorted_by_address() {
        let host = |uuid: &str, address: &str, maintenance: bool| {
            let mut h = Host {
                uuid: uuid.into(),
                name_label: format!("name-{uuid}"),
                address: address.into(),
                ..Host::default()
            };
            if maintenance {
                h.other_config
                    .insert("maintenance_mode".into(), "true".into());
            }
            (Ref::new(format!("OpaqueRef:{uuid}")), h)
        };
        let pool = Pool {
            master: Ref::new("OpaqueRef:b"),
            ..Pool::default()
        };
        let inventory = Inventory::from_records(
            &pool,
            vec![host("b", "10.0.0.2", true), host("a", "10.0.0.1", false)],
            5.0,
        );
        assert_eq!(inventory.hosts[0].uuid, "a");
        assert!(inventory.hosts[1].in_maintenance);
        for key in ["b", "OpaqueRef:b", "10.0.0.2", "name-b"] {
            assert_eq!(inventory.find(key).unwrap().uuid, "b");
        }
        assert!(inventory.find("c").is_none());
    }
}
