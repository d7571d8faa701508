//! Reads every host's `/rrd_updates` on an interval (xapi-notes.md §13): each host answers for
//! itself and its resident guests, so the pool's hosts are asked directly, a few at a time,
//! each within its own timeout. A dead or slow host delays no scrape and no other host: its
//! `xen_host_rrd_up` drops to 0 and its series expire.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::xapi::Session;

use super::rrd;
use super::self_metrics::SelfMetrics;
use super::state::PoolState;
use super::unix_now;

/// Hosts asked at once.
const CONCURRENCY: usize = 8;

/// Largest answer read: a host with 200 guests, every default source, ten minutes of rows is
/// a few MB.
const MAX_ANSWER_BYTES: usize = 16 * 1024 * 1024;

/// Series of objects no host reported for this many intervals vanish.
const EXPIRE_AFTER_INTERVALS: f64 = 3.0;

/// Collects every `interval`, until aborted; a round that outlasts the interval delays the
/// next one rather than overlapping it.
pub async fn collect_loop(
    state: Arc<PoolState>,
    session: Arc<Session>,
    metrics: SelfMetrics,
    interval: Duration,
    timeout: Duration,
) {
    let mut ticker = super::rounds(interval);
    loop {
        ticker.tick().await;
        let started = Instant::now();
        collect_all(&state, &session, interval, timeout).await;
        metrics.rrd_collected(&state.name, started.elapsed());
    }
}

/// Asks every host the pool's records name once and applies the answers.
pub async fn collect_all(
    state: &PoolState,
    session: &Arc<Session>,
    interval: Duration,
    timeout: Duration,
) {
    let hosts: Vec<(String, String)> = {
        let cache = state.cache.read().unwrap_or_else(|e| e.into_inner());
        cache
            .hosts
            .values()
            .filter(|h| !h.address.is_empty())
            .map(|h| (h.uuid.clone(), h.address.clone()))
            .collect()
    };
    let last_rows: Vec<Option<i64>> = {
        let resources = state.resources.read().unwrap_or_else(|e| e.into_inner());
        hosts
            .iter()
            .map(|(uuid, _)| resources.hosts.get(uuid).and_then(|h| h.last_row))
            .collect()
    };
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let mut set = JoinSet::new();
    for ((uuid, address), last_row) in hosts.into_iter().zip(last_rows) {
        // After the last row added, in the host's own clock; the first time, the last minute
        // relative to its last update (a negative start), so clock skew cannot empty it.
        let start = last_row.map_or_else(|| "-60".to_owned(), |t| (t + 1).to_string());
        let (session, permits) = (session.clone(), permits.clone());
        set.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let query = format!("start={start}&host=true&cf=AVERAGE&interval=5&json=true");
            let answer = session
                .http_get(&address, "/rrd_updates", &query, timeout, MAX_ANSWER_BYTES)
                .await
                .map_err(|e| e.to_string())
                .and_then(|body| rrd::parse(&body));
            (uuid, address, answer)
        });
    }
    while let Some(joined) = set.join_next().await {
        let Ok((uuid, address, answer)) = joined else {
            continue;
        };
        let mut resources = state.resources.write().unwrap_or_else(|e| e.into_inner());
        match answer {
            Ok(updates) => resources.apply(&uuid, &updates, unix_now()),
            Err(e) => {
                // Once per failure at warning level; while it lasts, at debug level.
                if resources.failed(&uuid) {
                    tracing::warn!(pool = %state.name, host = %address, error = %e, "No resource metrics from this host.");
                } else {
                    tracing::debug!(pool = %state.name, host = %address, error = %e, "Still no resource metrics from this host.");
                }
            }
        }
    }
    let mut resources = state.resources.write().unwrap_or_else(|e| e.into_inner());
    resources.expire(unix_now() - EXPIRE_AFTER_INTERVALS * interval.as_secs_f64());
}
