//! The pool's lease: at most one receiver acts on a pool, even when several receivers, each
//! with its own journal, watch it (a StatefulSet scaled to two, a pod force-deleted on a
//! partitioned node while its replacement starts).
//!
//! The lease is the key [`KEY`] in `pool.other_config`, written through the master. xapi adds
//! a map key under its database lock and refuses a key that already holds another value
//! (`MAP_DUPLICATE_KEY`), so of two receivers adding at once exactly one wins: the pool
//! arbitrates while it has a master. A receiver takes the lease before it fences a slave and,
//! since a dead master arbitrates nothing, again after promoting a new one; it renews the lease
//! before every later step and holds the recovery when it finds another's there; it removes the
//! lease when the recovery is done. A lease left by a receiver that died expires. What stays
//! unprotected is written down in docs/architecture.md ("Two receivers, one pool").

use serde::{Deserialize, Serialize};

use super::guards::CLOCK_SKEW;
use crate::xapi::{Error, ErrorCode, PoolActuator, PoolReader};

/// The key in `pool.other_config` (`xe pool-param-get param-name=other-config
/// param-key=xenguard_lease` shows it).
pub const KEY: &str = "xenguard_lease";

/// What a lease says. Times are the writer's wall clock; readers allow [`CLOCK_SKEW`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lease {
    /// The receiver: its host name and its journal's instance id.
    pub owner: String,
    /// The remediation that holds it.
    pub remediation: i64,
    /// The host it recovers.
    pub host: String,
    /// Unix time after which another receiver may take it.
    pub expires: f64,
}

/// Where a receiver stands with the lease found in the pool.
#[derive(Debug, Clone, PartialEq)]
pub enum Standing {
    /// No lease.
    Free,
    /// Written by this receiver (this or an earlier remediation of its journal).
    Ours(Lease),
    /// Another receiver's, expired.
    Expired(Lease),
    /// Another receiver's, in force.
    Theirs(Lease),
    /// The key holds something that is not a lease.
    Unreadable(String),
}

/// Reads the key's value against `owner` at `now`.
pub fn standing(value: Option<&str>, owner: &str, now: f64) -> Standing {
    let Some(text) = value else {
        return Standing::Free;
    };
    match serde_json::from_str::<Lease>(text) {
        Err(_) => Standing::Unreadable(text.to_owned()),
        Ok(lease) if lease.owner == owner => Standing::Ours(lease),
        Ok(lease) if now > lease.expires + CLOCK_SKEW => Standing::Expired(lease),
        Ok(lease) => Standing::Theirs(lease),
    }
}

/// Why the lease could not be had.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// Another receiver holds it.
    #[error(
        "receiver {} holds the pool's lease (its remediation {} of host {}, {:.0} s left)",
        .lease.owner, .lease.remediation, .lease.host, .left
    )]
    Held {
        /// Its lease.
        lease: Lease,
        /// Seconds until it expires.
        left: f64,
    },
    /// The key holds something else: only a person can tell whose it is.
    #[error(
        "the pool's other_config key {KEY} holds {0:?}, not a lease: remove it by hand once no receiver acts"
    )]
    Unreadable(String),
    /// Gone right after it was written: another receiver removed it.
    #[error("the pool's lease vanished right after it was written: another receiver removed it")]
    Vanished,
    /// The master could not be read or written.
    #[error("cannot read or write the pool's lease: {0}")]
    Xapi(#[from] Error),
}

impl LeaseError {
    /// Whether another receiver (or an unknown writer) stands in the way, as opposed to the
    /// master not answering.
    pub fn is_contested(&self) -> bool {
        !matches!(self, LeaseError::Xapi(_))
    }
}

fn contested(found: Standing, now: f64) -> LeaseError {
    match found {
        Standing::Unreadable(text) => LeaseError::Unreadable(text),
        Standing::Free => LeaseError::Vanished,
        Standing::Ours(lease) | Standing::Expired(lease) | Standing::Theirs(lease) => {
            LeaseError::Held {
                left: lease.expires - now,
                lease,
            }
        }
    }
}

/// Takes or renews the lease as `mine` (its `expires` already set). A lease of this receiver
/// with more than half of `mine`'s term left is kept as it is. After writing, the lease is
/// read back: between removing an old lease and adding this one, another receiver may have
/// added its own, and then xapi refused this add.
pub async fn take(
    reader: &PoolReader,
    actuator: &PoolActuator,
    mine: &Lease,
    now: f64,
) -> Result<(), LeaseError> {
    let (pool, record) = reader.pool().await?;
    let found = standing(
        record.other_config.get(KEY).map(String::as_str),
        &mine.owner,
        now,
    );
    match found {
        Standing::Theirs(_) | Standing::Unreadable(_) => return Err(contested(found, now)),
        Standing::Ours(lease)
            if lease.remediation == mine.remediation
                && lease.host == mine.host
                && lease.expires - now > (mine.expires - now) / 2.0 =>
        {
            return Ok(());
        }
        Standing::Ours(_) | Standing::Expired(_) => {
            actuator.remove_from_pool_other_config(&pool, KEY).await?;
        }
        Standing::Free => {}
    }
    let value = serde_json::to_string(mine).expect("a lease serialises");
    match actuator.add_to_pool_other_config(&pool, KEY, &value).await {
        Err(e) if !e.is(&ErrorCode::MapDuplicateKey) => return Err(e.into()),
        _ => {}
    }
    let (_, record) = reader.pool().await?;
    match record.other_config.get(KEY) {
        Some(now_there) if *now_there == value => Ok(()),
        other => Err(contested(standing(other.map(String::as_str), "", now), now)),
    }
}

/// Removes this receiver's lease, if the pool holds one; another's is left alone.
pub async fn give_back(
    reader: &PoolReader,
    actuator: &PoolActuator,
    owner: &str,
) -> Result<bool, Error> {
    let (pool, record) = reader.pool().await?;
    let value = record.other_config.get(KEY).map(String::as_str);
    if !matches!(standing(value, owner, 0.0), Standing::Ours(_)) {
        return Ok(false);
    }
    actuator.remove_from_pool_other_config(&pool, KEY).await?;
    Ok(true)
}

/// This receiver's name in leases: the machine's host name (what an operator recognises in
/// `xe pool-param-get`) and the journal's instance id (what makes it unique and stable across
/// restarts).
pub fn owner_name(instance: &str) -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "receiver".to_owned());
    format!("{host}/{instance}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease(owner: &str, expires: f64) -> String {
        serde_json::to_string(&Lease {
            owner: owner.into(),
            remediation: 7,
            host: "h".into(),
            expires,
        })
        .unwrap()
    }

    #[test]
    fn a_lease_is_ours_theirs_expired_or_unreadable() {
        let now = 1000.0;
        assert_eq!(standing(None, "me", now), Standing::Free);
        assert!(matches!(
            standing(Some(&lease("me", 0.0)), "me", now),
            Standing::Ours(_)
        ));
        assert!(matches!(
            standing(Some(&lease("you", now + 60.0)), "me", now),
            Standing::Theirs(_)
        ));
        // Within the clock skew a lease past its time still counts: the writer's clock may lag.
        assert!(matches!(
            standing(Some(&lease("you", now - CLOCK_SKEW / 2.0)), "me", now),
            Standing::Theirs(_)
        ));
        assert!(matches!(
            standing(Some(&lease("you", now - CLOCK_SKEW - 1.0)), "me", now),
            Standing::Expired(_)
        ));
        assert_eq!(
            standing(Some("locked by bob"), "me", now),
            Standing::Unreadable("locked by bob".into())
        );
    }

    #[test]
    fn what_stands_in_the_way_is_named() {
        let theirs: Lease = serde_json::from_str(&lease("other/1", 1060.0)).unwrap();
        let e = contested(Standing::Theirs(theirs), 1000.0);
        assert!(e.is_contested());
        assert_eq!(
            e.to_string(),
            "receiver other/1 holds the pool's lease (its remediation 7 of host h, 60 s left)"
        );
    }
}
