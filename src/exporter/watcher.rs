//! Keeps one pool's cache current with `event.from` (xapi-notes.md §7.2): a full sync from the
//! empty token, then incremental batches; a full resync on SESSION_INVALID, a token error, a count
//! mismatch or a change of master; exponential backoff while the master cannot be reached.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::xapi::{Error, ErrorCode, PoolReader};

use super::cache::{CLASSES, Cache, SYNC_FIRST, SYNC_SECOND};
use super::self_metrics::SelfMetrics;
use super::state::PoolState;
use super::unix_now;

/// Added to the server-side `event.from` timeout for the HTTP limit.
const EVENT_MARGIN: Duration = Duration::from_secs(10);
/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Runs until the task is aborted.
pub async fn watch(
    state: Arc<PoolState>,
    reader: PoolReader,
    metrics: SelfMetrics,
    event_timeout: Duration,
    min_interval: Duration,
) {
    let mut backoff = Duration::from_secs(1);
    let mut reason = "start";
    loop {
        metrics.resynced(&state.name, reason);
        match sync(&state, &reader, &metrics, event_timeout, min_interval).await {
            Ok(resync) => {
                backoff = Duration::from_secs(1);
                reason = resync;
            }
            Err(e) => {
                tracing::warn!(pool = %state.name, error = %e, "Pool master unavailable; retrying in {:?}.", backoff);
                {
                    let mut status = state.status.write().unwrap_or_else(|p| p.into_inner());
                    status.connected = false;
                    status.last_error = Some(e.to_string());
                }
                reader.session().reset().await;
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
                reason = "error";
            }
        }
    }
}

/// One full sync followed by incremental updates until a resync is needed (returns its
/// reason) or the master fails (returns the error).
async fn sync(
    state: &PoolState,
    reader: &PoolReader,
    metrics: &SelfMetrics,
    timeout: Duration,
    min_interval: Duration,
) -> Result<&'static str, Error> {
    // Two answers instead of one: the largest answer bounds the peak memory. Incremental
    // updates continue from the first (earlier) token, so changes made between the two calls
    // arrive again and are applied again, which upserts make harmless.
    let mut first = reader
        .event_from_typed(SYNC_FIRST, "", timeout, EVENT_MARGIN)
        .await?;
    let master = reader.session().master_address().await;
    let mut cache = Cache::default();
    let checked = cache
        .apply_events(&mut first)
        .and_then(|()| cache.check_counts(&first.valid_ref_counts, SYNC_FIRST));
    if let Err(drift) = checked {
        tracing::warn!(pool = %state.name, %drift, "Full sync inconsistent; resyncing.");
        return Ok(drift.reason());
    }
    let mut token = std::mem::take(&mut first.token);
    drop(first);
    let mut second = reader
        .event_from_typed(SYNC_SECOND, "", timeout, EVENT_MARGIN)
        .await?;
    let checked = cache
        .apply_events(&mut second)
        .and_then(|()| cache.check_counts(&second.valid_ref_counts, SYNC_SECOND));
    if let Err(drift) = checked {
        tracing::warn!(pool = %state.name, %drift, "Full sync inconsistent; resyncing.");
        return Ok(drift.reason());
    }
    drop(second);
    if reader.session().master_address().await != master {
        return Ok("master_change");
    }
    *state.cache.write().unwrap_or_else(|p| p.into_inner()) = cache;
    mark_ok(state, master.clone());
    tracing::info!(pool = %state.name, master = master.as_deref().unwrap_or("?"), "Pool state synced.");
    loop {
        let asked = Instant::now();
        let mut batch = match reader
            .event_from_typed(CLASSES, &token, timeout, EVENT_MARGIN)
            .await
        {
            Ok(batch) => batch,
            Err(e) if e.is(&ErrorCode::SessionInvalid) => return Ok("session"),
            Err(e) if e.is(&ErrorCode::EventFromTokenParseFailure) => return Ok("token"),
            Err(e) => return Err(e),
        };
        if reader.session().master_address().await != master {
            return Ok("master_change");
        }
        let applied = state
            .cache
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .apply(&mut batch);
        if let Err(drift) = applied {
            tracing::warn!(pool = %state.name, %drift, "Cache drifted; resyncing.");
            return Ok(drift.reason());
        }
        metrics.batch(&state.name);
        token = batch.token;
        mark_ok(state, master.clone());
        if batch.events.is_empty() {
            // xapi answers empty only at the timeout; a peer that answers empty at once must
            // not turn this loop into a busy one.
            tokio::time::sleep(Duration::from_millis(100)).await;
        } else {
            // A busy pool changes every second; the changes of the next few seconds come
            // together in one answer instead of one call each (the master's load).
            tokio::time::sleep_until((asked + min_interval).into()).await;
        }
    }
}

fn mark_ok(state: &PoolState, master: Option<String>) {
    let mut status = state.status.write().unwrap_or_else(|p| p.into_inner());
    status.connected = true;
    status.last_update = Some(unix_now());
    status.master = master;
    status.last_error = None;
}
