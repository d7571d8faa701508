//! Step 2's input: the schema, the only place that says which keys exist and their types.
//! Every value is [`Located`], so step 3 can point at it.

use std::fmt;
use std::marker::PhantomData;
use std::path::PathBuf;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::diagnostics::Pos;
use super::model::{Mode, Scheme, UnknownSources};

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "the top level",
    expecting = "a mapping with `pools` and optionally `exporter`, `receiver`, `fencing`"
)]
pub(super) struct RawConfig {
    pub(super) pools: Located<Vec<Located<RawPool>>>,
    pub(super) exporter: Option<Located<RawExporter>>,
    pub(super) receiver: Option<Located<RawReceiver>>,
    pub(super) fencing: Option<Located<RawFencing>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "a pool",
    expecting = "a pool (a mapping)"
)]
pub(super) struct RawPool {
    pub(super) name: Located<String>,
    pub(super) hosts: Located<Vec<Located<String>>>,
    pub(super) port: Option<Located<u16>>,
    pub(super) scheme: Option<Located<Scheme>>,
    pub(super) tls: Option<Located<RawTls>>,
    pub(super) username: Option<Located<String>>,
    pub(super) password_file: Option<Located<PathBuf>>,
    pub(super) password_env: Option<Located<String>>,
    pub(super) timeouts: Option<Located<RawTimeouts>>,
    pub(super) resource_metrics: Option<Located<RawResourceMetrics>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "`resource_metrics`",
    expecting = "a mapping"
)]
pub(super) struct RawResourceMetrics {
    pub(super) allow: Option<Located<Vec<Located<String>>>>,
    pub(super) deny: Option<Located<Vec<Located<String>>>>,
    pub(super) unknown_sources: Option<Located<UnknownSources>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "`tls`", expecting = "a mapping")]
pub(super) struct RawTls {
    pub(super) ca_file: Option<Located<PathBuf>>,
    pub(super) pins: Option<Located<LocatedMap<Located<String>>>>,
    pub(super) insecure_skip_verify: Option<Located<bool>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "`timeouts`", expecting = "a mapping")]
pub(super) struct RawTimeouts {
    pub(super) connect_seconds: Option<Located<u64>>,
    pub(super) call_seconds: Option<Located<u64>>,
    pub(super) start_vm_seconds: Option<Located<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "`exporter`", expecting = "a mapping")]
pub(super) struct RawExporter {
    pub(super) listen: Option<Located<String>>,
    pub(super) probe_interval_seconds: Option<Located<u64>>,
    pub(super) probe_timeout_seconds: Option<Located<u64>>,
    pub(super) event_timeout_seconds: Option<Located<u64>>,
    pub(super) event_min_interval_seconds: Option<Located<u64>>,
    pub(super) rrd_interval_seconds: Option<Located<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "`receiver`", expecting = "a mapping")]
pub(super) struct RawReceiver {
    pub(super) listen: Option<Located<String>>,
    pub(super) mode: Option<Located<Mode>>,
    pub(super) auth: Option<Located<RawAuth>>,
    pub(super) tls: Option<Located<RawReceiverTls>>,
    pub(super) journal_path: Option<Located<PathBuf>>,
    pub(super) kill_switch_file: Option<Located<PathBuf>>,
    pub(super) auth_reads: Option<Located<bool>>,
    pub(super) max_body_bytes: Option<Located<u64>>,
    pub(super) confirm_window_seconds: Option<Located<u64>>,
    pub(super) confirm_probes: Option<Located<u32>>,
    pub(super) refused_grace_seconds: Option<Located<u64>>,
    pub(super) rejoin_wait_seconds: Option<Located<u64>>,
    pub(super) rejoin_healthy_seconds: Option<Located<u64>>,
    pub(super) pool_lease_seconds: Option<Located<u64>>,
    pub(super) attestation_max_age_seconds: Option<Located<u64>>,
    pub(super) step_timeout_seconds: Option<Located<u64>>,
    pub(super) startup_quiet_seconds: Option<Located<u64>>,
    pub(super) host_cooldown_seconds: Option<Located<u64>>,
    pub(super) fence_budget: Option<Located<RawFenceBudget>>,
    pub(super) storm: Option<Located<RawStorm>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "`receiver.storm`",
    expecting = "a mapping"
)]
pub(super) struct RawStorm {
    pub(super) max_unhealthy: Option<Located<String>>,
    pub(super) window_seconds: Option<Located<u64>>,
    pub(super) cooldown_seconds: Option<Located<u64>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "`receiver.auth`",
    expecting = "a mapping"
)]
pub(super) struct RawAuth {
    pub(super) bearer_token_file: Option<Located<PathBuf>>,
    pub(super) basic: Option<Located<RawBasicAuth>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "`receiver.auth.basic`",
    expecting = "a mapping with `username` and `password_file`"
)]
pub(super) struct RawBasicAuth {
    pub(super) username: Located<String>,
    pub(super) password_file: Located<PathBuf>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "`receiver.tls`",
    expecting = "a mapping with `cert_file` and `key_file`"
)]
pub(super) struct RawReceiverTls {
    pub(super) cert_file: Located<PathBuf>,
    pub(super) key_file: Located<PathBuf>,
    pub(super) client_ca_file: Option<Located<PathBuf>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "`receiver.fence_budget`",
    expecting = "a mapping"
)]
pub(super) struct RawFenceBudget {
    pub(super) max_fences: Option<Located<u32>>,
    pub(super) window_seconds: Option<Located<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename = "`fencing`", expecting = "a mapping")]
pub(super) struct RawFencing {
    pub(super) agent_timeout_seconds: Option<Located<u64>>,
    pub(super) hosts: Option<Located<Vec<Located<RawFenceHost>>>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "a fencing host",
    expecting = "a mapping with `pool`, `host`, and `agent` or `levels`"
)]
pub(super) struct RawFenceHost {
    pub(super) pool: Located<String>,
    pub(super) host: Located<String>,
    /// The single-agent form (one level of one agent): `agent`, `args`, `password_file`.
    pub(super) agent: Option<Located<String>>,
    pub(super) args: Option<Located<LocatedMap<Located<String>>>>,
    pub(super) password_file: Option<Located<PathBuf>>,
    pub(super) levels: Option<Located<Vec<Located<RawFenceLevel>>>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "a fencing level",
    expecting = "a mapping with `agents`"
)]
pub(super) struct RawFenceLevel {
    pub(super) agents: Located<Vec<Located<RawFenceDevice>>>,
}

#[derive(Deserialize)]
#[serde(
    deny_unknown_fields,
    rename = "a fence agent",
    expecting = "a mapping with `agent`"
)]
pub(super) struct RawFenceDevice {
    pub(super) agent: Located<String>,
    pub(super) args: Option<Located<LocatedMap<Located<String>>>>,
    pub(super) password_file: Option<Located<PathBuf>>,
}

/// A value with the position and node ids of the YAML node it came from.
#[derive(Debug, Clone)]
pub(super) struct Located<T> {
    pub(super) value: T,
    pub(super) pos: Pos,
    /// Preorder ids of the node and its descendants: `first..=last` (empty when unknown).
    pub(super) first: usize,
    pub(super) last: usize,
}

impl<T> Located<T> {
    fn unlocated(value: T) -> Self {
        Located {
            value,
            pos: Pos::default(),
            first: 1,
            last: 0,
        }
    }
}

/// The newtype name by which [`Located`] asks the tree deserializer for its position.
pub(super) const LOCATED: &str = "$xenguard::config::Located";

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Located<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LocatedVisitor<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for LocatedVisitor<T> {
            type Value = Located<T>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a located value")
            }

            // The tree deserializer: line, column, first id, last id, value.
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut numbers = [0usize; 4];
                for (index, number) in numbers.iter_mut().enumerate() {
                    let value: u64 = seq
                        .next_element()?
                        .ok_or_else(|| de::Error::invalid_length(index, &self))?;
                    *number = usize::try_from(value).map_err(de::Error::custom)?;
                }
                let value = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(4, &self))?;
                let [line, column, first, last] = numbers;
                Ok(Located {
                    value,
                    pos: Pos { line, column },
                    first,
                    last,
                })
            }

            // Any other deserializer: the value without a position.
            fn visit_newtype_struct<D: Deserializer<'de>>(
                self,
                deserializer: D,
            ) -> Result<Self::Value, D::Error> {
                T::deserialize(deserializer).map(Located::unlocated)
            }
        }

        deserializer.deserialize_newtype_struct(LOCATED, LocatedVisitor(PhantomData))
    }
}

/// A mapping with located string keys, in file order (duplicates are rejected by the tree).
#[derive(Debug, Clone)]
pub(super) struct LocatedMap<V>(pub(super) Vec<(Located<String>, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for LocatedMap<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MapVisitor<V>(PhantomData<V>);

        impl<'de, V: Deserialize<'de>> Visitor<'de> for MapVisitor<V> {
            type Value = LocatedMap<V>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping of strings")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key()? {
                    entries.push((key, map.next_value()?));
                }
                Ok(LocatedMap(entries))
            }
        }

        deserializer.deserialize_map(MapVisitor(PhantomData))
    }
}
