//! The exporter's copy of a pool's objects, kept current with `event.from` (xapi.md §7.2):
//! a full sync from the empty token, then incremental batches; add and mod are upserts, del
//! removes; a mismatch with `valid_ref_counts` means the copy drifted and must be rebuilt.

use std::collections::BTreeMap;

use crate::xapi::reader::{XapiClass, snapshot};
use crate::xapi::records::{
    EventBatch, EventOperation, Host, HostMetrics, Pbd, Pool, Sr, Vbd, Vdi, Vm,
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

fn upsert<T: XapiClass>(
    map: &mut BTreeMap<String, T>,
    event: &crate::xapi::records::Event,
) -> Result<(), Drift> {
    match event.operation {
        EventOperation::Del => {
            map.remove(&event.reference);
            Ok(())
        }
        _ => match snapshot::<T>(event) {
            Some(Ok(record)) => {
                map.insert(event.reference.clone(), record);
                Ok(())
            }
            Some(Err(e)) => Err(Drift::BadSnapshot {
                class: event.class.clone(),
                reference: event.reference.clone(),
                message: e.to_string(),
            }),
            // An add/mod without a snapshot carries nothing to store.
            None => Ok(()),
        },
    }
}

impl Cache {
    /// Applies one `event.from` answer, then checks the object counts.
    pub fn apply(&mut self, batch: &EventBatch) -> Result<(), Drift> {
        for event in &batch.events {
            match event.class.as_str() {
                "pool" => upsert(&mut self.pools, event)?,
                "host" => upsert(&mut self.hosts, event)?,
                "host_metrics" => upsert(&mut self.host_metrics, event)?,
                "vm" => upsert(&mut self.vms, event)?,
                "vbd" => upsert(&mut self.vbds, event)?,
                "vdi" => upsert(&mut self.vdis, event)?,
                "sr" => upsert(&mut self.srs, event)?,
                "pbd" => upsert(&mut self.pbds, event)?,
                _ => {}
            }
        }
        self.check_counts(&batch.valid_ref_counts)
    }

    fn check_counts(&self, counts: &BTreeMap<String, i32>) -> Result<(), Drift> {
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
        for (class, cached) in cached {
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
    use crate::xapi::records::Event;
    use crate::xapi::typed::to_value;

    fn event<T: serde::Serialize>(
        class: &str,
        op: EventOperation,
        r: &str,
        record: Option<&T>,
    ) -> Event {
        Event {
            class: class.into(),
            operation: op,
            reference: r.into(),
            snapshot: record.map(|x| to_value(x).unwrap()),
            ..Event::default()
        }
    }

    #[test]
    fn add_mod_del_and_counts() {
        let mut cache = Cache::default();
        let vm = Vm {
            name_label: "a".into(),
            ..Vm::default()
        };
        let mut batch = EventBatch {
            events: vec![
                event("vm", EventOperation::Add, "r1", Some(&vm)),
                event("vm", EventOperation::Add, "r2", Some(&vm)),
            ],
            valid_ref_counts: [("vm".to_string(), 2)].into(),
            token: "t".into(),
        };
        cache.apply(&batch).unwrap();
        assert_eq!(cache.vms.len(), 2);
        batch.events = vec![event::<Vm>("vm", EventOperation::Del, "r1", None)];
        batch.valid_ref_counts = [("vm".to_string(), 1)].into();
        cache.apply(&batch).unwrap();
        assert_eq!(cache.vms.keys().collect::<Vec<_>>(), vec!["r2"]);
        batch.events.clear();
        batch.valid_ref_counts = [("vm".to_string(), 5)].into();
        assert_eq!(cache.apply(&batch).unwrap_err().reason(), "count_mismatch");
    }
}
