//! Step 3: semantic checks, raw -> [`Config`]. One [`Checker`] collects the problems; each
//! section has its file (`pools`, `exporter`, `receiver`, `fencing`), and this one holds the
//! helpers they share and the checks that span sections.

mod exporter;
mod fencing;
mod pools;
mod receiver;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::diagnostics::{Pos, Problem};
use super::model::{Config, Mode, defaults};
use super::raw::{Located, RawConfig};

pub(super) struct Checker {
    pub(super) problems: Vec<Problem>,
    /// Nodes hidden by step 2 (their values were replaced by defaults).
    pub(super) hidden: HashSet<usize>,
}

impl Checker {
    fn error(&mut self, pos: Pos, message: impl Into<String>) {
        self.problems.push(Problem::error(pos, message));
    }

    fn warning(&mut self, pos: Pos, message: impl Into<String>) {
        self.problems.push(Problem::warning(pos, message));
    }

    /// True when step 2 hid a node inside this value: checks about absent or combined keys
    /// are skipped there.
    fn tainted<T>(&self, value: &Located<T>) -> bool {
        self.hidden
            .iter()
            .any(|id| (value.first..=value.last).contains(id))
    }

    fn seconds(&mut self, value: Option<&Located<u64>>, key: &str, default: u64) -> Duration {
        match value {
            None => Duration::from_secs(default),
            Some(value) => {
                if value.value == 0 {
                    self.error(value.pos, format!("`{key}` must be at least 1"));
                }
                self.seconds_or_zero(Some(value), key, default)
            }
        }
    }

    fn seconds_or_zero(
        &mut self,
        value: Option<&Located<u64>>,
        key: &str,
        default: u64,
    ) -> Duration {
        match value {
            None => Duration::from_secs(default),
            Some(value) => {
                if value.value > defaults::MAX_SECONDS {
                    self.error(
                        value.pos,
                        format!(
                            "`{key}` must be at most {} (one year), got {}",
                            defaults::MAX_SECONDS,
                            value.value
                        ),
                    );
                }
                Duration::from_secs(value.value)
            }
        }
    }

    fn positive<T: Copy + PartialEq + Default>(
        &mut self,
        value: Option<&Located<T>>,
        key: &str,
        default: T,
    ) -> T {
        match value {
            None => default,
            Some(value) => {
                if value.value == T::default() {
                    self.error(value.pos, format!("`{key}` must be at least 1"));
                }
                value.value
            }
        }
    }

    fn listen(&mut self, value: Option<&Located<String>>, default: SocketAddr) -> SocketAddr {
        let Some(value) = value else { return default };
        match value.value.parse::<SocketAddr>() {
            Ok(address) => address,
            Err(_) => {
                self.error(
                    value.pos,
                    format!(
                        "`listen` must be an IP address and port such as `0.0.0.0:{}` or \
                         `[::]:{}`, got `{}`",
                        default.port(),
                        default.port(),
                        value.value
                    ),
                );
                default
            }
        }
    }

    fn path(&mut self, value: &Located<PathBuf>, key: &str) -> PathBuf {
        if value.value.as_os_str().is_empty() {
            self.error(value.pos, format!("`{key}` must not be empty"));
        }
        value.value.clone()
    }

    fn non_empty(&mut self, value: &Located<String>, key: &str) -> String {
        if value.value.trim().is_empty() {
            self.error(value.pos, format!("`{key}` must not be empty"));
        }
        value.value.clone()
    }

    pub(super) fn config(&mut self, raw: &RawConfig) -> Config {
        let pools = self.pools(&raw.pools);
        let exporter = raw
            .exporter
            .as_ref()
            .map(|exporter| self.exporter(exporter))
            .unwrap_or_default();
        let receiver = raw
            .receiver
            .as_ref()
            .map(|receiver| self.receiver(receiver))
            .unwrap_or_default();
        if exporter.listen == receiver.listen {
            let pos = raw
                .receiver
                .as_ref()
                .and_then(|receiver| receiver.value.listen.as_ref())
                .or_else(|| raw.exporter.as_ref().and_then(|e| e.value.listen.as_ref()))
                .map_or(Pos::default(), |listen| listen.pos);
            self.warning(
                pos,
                format!(
                    "exporter and receiver both listen on {}; `xenguard serve` cannot run both",
                    receiver.listen
                ),
            );
        }
        let pool_names = (!self.tainted(&raw.pools)).then(|| {
            pools
                .iter()
                .map(|pool| pool.name.clone())
                .collect::<Vec<_>>()
        });
        let fencing = raw
            .fencing
            .as_ref()
            .map(|fencing| {
                let acting = receiver.mode != Mode::Observe;
                self.fencing(fencing, pool_names.as_deref(), acting)
            })
            .unwrap_or_default();
        if receiver.mode != Mode::Observe
            && let Some(mode) = raw.receiver.as_ref().and_then(|r| r.value.mode.as_ref())
        {
            for pool in &pools {
                if !fencing.hosts.iter().any(|entry| entry.pool == pool.name) {
                    self.warning(
                        mode.pos,
                        format!(
                            "mode `{}` but no fence agent is configured for pool `{}`: its hosts \
                             are recovered only after an operator attestation",
                            receiver.mode, pool.name
                        ),
                    );
                }
            }
        }
        Config {
            pools,
            exporter,
            receiver,
            fencing,
        }
    }
}
