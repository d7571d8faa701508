//! Probes every host of a pool directly, on an interval, with short timeouts: does it answer
//! XAPI at all, does it accept a pool login (master) or redirect (`HOST_IS_SLAVE`, naming its
//! master), and is it in emergency mode (local session + `host.is_in_emergency_mode`,
//! xapi-notes.md §3.3). This is how the exporter tells the truth when the master is gone.

use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;

use crate::xapi::Credentials;
use crate::xapi::transport::Transport;

use super::self_metrics::SelfMetrics;
use super::state::{PoolState, Probe};
use super::unix_now;

/// `originator` of probe sessions (xapi groups sessions by it, xapi-notes.md §2.5).
const ORIGINATOR: &str = "xenguard-probe";

/// Probes every known host of the pool each `interval`, until aborted.
pub async fn probe_loop(
    state: Arc<PoolState>,
    transport: Transport,
    credentials: Credentials,
    metrics: SelfMetrics,
    interval: Duration,
    timeout: Duration,
) {
    let mut ticker = super::rounds(interval);
    loop {
        ticker.tick().await;
        probe_all(&state, &transport, &credentials, &metrics, timeout).await;
    }
}

/// Probes every host once, concurrently, and stores the results.
pub async fn probe_all(
    state: &PoolState,
    transport: &Transport,
    credentials: &Credentials,
    metrics: &SelfMetrics,
    timeout: Duration,
) {
    let mut set = JoinSet::new();
    for address in state.probe_targets() {
        let (transport, credentials) = (transport.clone(), credentials.clone());
        set.spawn(async move {
            let started = tokio::time::Instant::now();
            let probe = probe(&transport, &address, &credentials, timeout).await;
            (address, probe, started.elapsed())
        });
    }
    while let Some(joined) = set.join_next().await {
        let Ok((address, mut probe, took)) = joined else {
            continue;
        };
        metrics.probed(&state.name, probe.role.as_str(), took);
        let mut probes = state.probes.write().unwrap_or_else(|p| p.into_inner());
        if probe.last_seen.is_none() {
            probe.last_seen = probes.get(&address).and_then(|p| p.last_seen);
        }
        probes.insert(address, probe);
    }
}

/// Probes one host. Never fails: a host that does not answer is `Unreachable`.
pub async fn probe(
    transport: &Transport,
    address: &str,
    credentials: &Credentials,
    timeout: Duration,
) -> Probe {
    let answer =
        crate::xapi::probe::probe(transport, address, credentials, ORIGINATOR, timeout).await;
    let last_seen = answer.role.answered().then(unix_now);
    Probe {
        role: answer.role,
        emergency: answer.emergency,
        last_seen,
        error: answer.error,
    }
}
