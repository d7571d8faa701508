//! The exporter's copy of a pool's objects, kept current with `event.from` (xapi-notes.md §7.2):
//! a full sync from the empty token, then incremental batches; add and mod are upserts, del
//! removes; a mismatch with `valid_ref_counts` means the copy drifted and must be rebuilt.

use std::collections::BTreeMap;

use crate::xapi::records::{
    EventOperation, Host, HostMetrics, Pbd, Pool, Snapshot, Sr, TypedEvent, TypedEventBatch, Vbd,
    Vdi, Vm,
};

/// Event classes the exporter subscribes to.
pub const CLASSES: &[&str] = &[
    "pool",
    "host",
    "host_metrics",
    "vm",
    "vbd",
    "vdi",
    "sr",
    "pbd",
];

/// The full sync fetches VMs on their own: they are most of a large pool's bytes, and the
/// largest answer is what bounds the exporter's peak memory.
pub const SYNC_FIRST: &[&str] = &["pool", "host", "host_metrics", "vbd", "vdi", "sr", "pbd"];
/// The second part of the full sync.
pub const SYNC_SECOND: &[&str] = &["vm"];

/// Objects by reference.
#[derive(Debug, Clone, Default)]
pub struct Cache {
    /// `pool` (one).
    pub pools: BTreeMap<String, Pool>,
    /// `host`.
    pub hosts: BTreeMap<String, Host>,
    /// `host_metrics`.
    pub host_metrics: BTreeMap<String, HostMetrics>,
    /// `VM`, including templates, snapshots and control domains.
    pub vms: BTreeMap<String, Vm>,
    /// `VBD`.
    pub vbds: BTreeMap<String, Vbd>,
    /// `VDI`.
    pub vdis: BTreeMap<String, Vdi>,
    /// `SR`.
    pub srs: BTreeMap<String, Sr>,
    /// `PBD`.
    pub pbds: BTreeMap<String, Pbd>,
}

/// Why a batch could not be applied: the cache must be rebuilt from scratch.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Drift {
    /// An event's snapshot did not decode as its class.
    #[error("event for {class} {reference} has an undecodable snapshot: {message}")]
    BadSnapshot {
        /// Lower-case class.
        class: String,
        /// The object.
        reference: String,
        /// Decoder message.
        message: String,
    },
    /// The cache's object count differs from the server's.
    #[error("{class}: {cached} cached objects, server counts {server}")]
    CountMismatch {
        /// Lower-case class.
        class: String,
        /// Objects in the cache.
        cached: usize,
        /// `valid_ref_counts[class]`.
        server: i32,
    },
}

impl Drift {
    /// A bounded label for the resync counter.
    pub fn reason(&self) -> &'static str {
        match self {
            Drift::BadSnapshot { .. } => "bad_snapshot",
            Drift::CountMismatch { .. } => "count_mismatch",
        }
    }
}

/// Inserts a snapshot into the map of its class, or removes a deleted object.
fn apply_one<T>(
    map: &mut BTreeMap<String, T>,
    event: &mut TypedEvent,
    take: impl FnOnce(Snapshot) -> Option<T>,
) -> Result<(), Drift> {
    if event.operation == EventOperation::Del {
        map.remove(&event.reference);
        return Ok(());
    }
    // An add/mod without a snapshot carries nothing to store.
    let Some(snapshot) = event.snapshot.take() else {
        return Ok(());
    };
    match take(snapshot) {
        Some(record) => {
            map.insert(std::mem::take(&mut event.reference), record);
            Ok(())
        }
        None => Err(Drift::BadSnapshot {
            class: event.class.clone(),
            reference: event.reference.clone(),
            message: "snapshot of another class".into(),
        }),
    }
}

impl Cache {
    /// Applies one `event.from` answer (consuming its snapshots), then checks the counts.
    pub fn apply(&mut self, batch: &mut TypedEventBatch) -> Result<(), Drift> {
        self.apply_events(batch)?;
        self.check_counts(&batch.valid_ref_counts, CLASSES)
    }

    /// Applies one `event.from` answer (consuming its snapshots) without checking counts.
    pub fn apply_events(&mut self, batch: &mut TypedEventBatch) -> Result<(), Drift> {
        macro_rules! by_class {
            ($event:expr, $($class:literal => $map:ident, $variant:ident;)+) => {
                match $event.class.as_str() {
                    $($class => apply_one(&mut self.$map, $event, |s| match s {
                        Snapshot::$variant(r) => Some(r),
                        _ => None,
                    })?,)+
                    _ => {}
                }
            };
        }
        for event in &mut batch.events {
            by_class!(event,
                "pool" => pools, Pool;
                "host" => hosts, Host;
                "host_metrics" => host_metrics, HostMetrics;
                "vm" => vms, Vm;
                "vbd" => vbds, Vbd;
                "vdi" => vdis, Vdi;
                "sr" => srs, Sr;
                "pbd" => pbds, Pbd;
            );
        }
        Ok(())
    }

    /// Compares the cached object counts of `classes` with the server's `valid_ref_counts`.
    pub fn check_counts(
        &self,
        counts: &BTreeMap<String, i32>,
        classes: &[&str],
    ) -> Result<(), Drift> {
        let cached = [
            ("pool", self.pools.len()),
            ("host", self.hosts.len()),
            ("host_metrics", self.host_metrics.len()),
            ("vm", self.vms.len()),
            ("vbd", self.vbds.len()),
            ("vdi", self.vdis.len()),
            ("sr", self.srs.len()),
            ("pbd", self.pbds.len()),
        ];
        for (class, cached) in cached.into_iter().filter(|(c, _)| classes.contains(c)) {
            if let Some(&server) = counts.get(class)
                && server as usize != cached
            {
                return Err(Drift::CountMismatch {
                    class: class.into(),
                    cached,
                    server,
                });
            }
        }
        Ok(())
    }

    /// The pool record, if synced.
    pub fn pool(&self) -> Option<&Pool> {
        self.pools.values().next()
    }

    /// Whether the host's metrics say it is live.
    pub fn live(&self, host: &Host) -> Option<bool> {
        self.host_metrics.get(host.metrics.as_str()).map(|m| m.live)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(op: EventOperation, r: &str, vm: Option<Vm>) -> TypedEvent {
        TypedEvent {
            class: "vm".into(),
            operation: op,
            reference: r.into(),
            snapshot: vm.map(Snapshot::Vm),
            ..TypedEvent::default()
        }
    }

    #[test]
    fn add_mod_del_and_counts() {
        let mut cache = Cache::default();
        let vm = Vm {
            name_label: "a".into(),
            ..Vm::default()
        };
        let mut batch = TypedEventBatch {
            events: vec![
                event(EventOperation::Add, "r1", Some(vm.clone())),
                event(EventOperation::Add, "r2", Some(vm)),
            ],
            valid_ref_counts: [("vm".to_string(), 2)].into(),
            token: "t".into(),
        };
        cache.apply(&mut batch).unwrap();
        assert_eq!(cache.vms.len(), 2);
        batch.events = vec![event(EventOperation::Del, "r1", None)];
        batch.valid_ref_counts = [("vm".to_string(), 1)].into();
        cache.apply(&mut batch).unwrap();
        assert_eq!(cache.vms.keys().collect::<Vec<_>>(), vec!["r2"]);
        batch.events.clear();
        batch.valid_ref_counts = [("vm".to_string(), 5)].into();
        assert_eq!(
            cache.apply(&mut batch).unwrap_err().reason(),
            "count_mismatch"
        );
        let mut wrong = TypedEventBatch {
            events: vec![TypedEvent {
                class: "vm".into(),
                operation: EventOperation::Mod,
                reference: "r2".into(),
                snapshot: Some(Snapshot::Pool(Pool::default())),
                ..TypedEvent::default()
            }],
            ..TypedEventBatch::default()
        };
        assert_eq!(
            cache.apply(&mut wrong).unwrap_err().reason(),
            "bad_snapshot"
        );
    }
}
