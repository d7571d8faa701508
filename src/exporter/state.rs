//! What the exporter knows about one pool at a moment: the watcher's cache and status and the
//! prober's latest result per host. Written by the background tasks, read by scrapes, which
//! never wait on the network.

use std::collections::BTreeMap;
use std::sync::RwLock;

use super::cache::Cache;
use super::rrd::Resources;
use crate::config::ResourceMetrics;

/// The watcher's view of its connection to the master.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WatchStatus {
    /// The last `event.from` (or full sync) succeeded.
    pub connected: bool,
    /// Unix time of the last successful call; `None` before the first sync.
    pub last_update: Option<f64>,
    /// Address of the master the session is logged in to.
    pub master: Option<String>,
    /// The last error, as text.
    pub last_error: Option<String>,
}

pub use crate::xapi::probe::Role;

/// The latest probe of one host address.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// What the login attempt showed.
    pub role: Role,
    /// `host.is_in_emergency_mode` over a local session, if that worked.
    pub emergency: Option<bool>,
    /// Unix time of the last probe that got a well-formed XAPI answer.
    pub last_seen: Option<f64>,
    /// Error kind of the last failed probe (`timeout`, `connect`, …).
    pub error: Option<&'static str>,
}

impl Probe {
    /// The host gave a well-formed XAPI answer.
    pub fn reachable(&self) -> bool {
        self.role != Role::Unreachable
    }
}

/// Shared state of one pool.
#[derive(Debug)]
pub struct PoolState {
    /// Configured pool name (the `pool` label).
    pub name: String,
    /// Host addresses from the configuration.
    pub configured: Vec<String>,
    /// The objects.
    pub cache: RwLock<Cache>,
    /// The watcher.
    pub status: RwLock<WatchStatus>,
    /// Probe results by address.
    pub probes: RwLock<BTreeMap<String, Probe>>,
    /// Resource metrics from the hosts' RRDs.
    pub resources: RwLock<Resources>,
}

impl PoolState {
    /// Empty state for a configured pool, keeping the resource families `selection` allows.
    pub fn new(
        name: impl Into<String>,
        configured: Vec<String>,
        selection: ResourceMetrics,
    ) -> PoolState {
        PoolState {
            name: name.into(),
            configured,
            cache: RwLock::default(),
            status: RwLock::default(),
            probes: RwLock::default(),
            resources: RwLock::new(Resources::new(selection)),
        }
    }

    /// Every address to probe: configured ones and those the pool's host records name.
    pub fn probe_targets(&self) -> Vec<String> {
        let mut targets = self.configured.clone();
        let cache = self.cache.read().unwrap_or_else(|e| e.into_inner());
        for host in cache.hosts.values() {
            if !host.address.is_empty() && !targets.contains(&host.address) {
                targets.push(host.address.clone());
            }
        }
        targets
    }
}
