//! `fencing`: per host of a configured pool, its fencing levels (or one agent), each agent's
//! arguments and password file.

use std::collections::{BTreeMap, HashMap};

use super::Checker;
use crate::config::diagnostics::Pos;
use crate::config::model::{FenceDevice, FenceHost, FenceLevel, FencingConfig, defaults};
use crate::config::raw::{Located, RawFenceDevice, RawFenceHost, RawFencing};

impl Checker {
    pub(super) fn fencing(
        &mut self,
        located: &Located<RawFencing>,
        pools: Option<&[String]>,
        acting: bool,
    ) -> FencingConfig {
        let raw = &located.value;
        let agent_timeout = self.seconds(
            raw.agent_timeout_seconds.as_ref(),
            "agent_timeout_seconds",
            defaults::AGENT_TIMEOUT_SECONDS,
        );
        let mut seen: HashMap<(String, String), Pos> = HashMap::new();
        let mut hosts = Vec::new();
        for located_entry in raw.hosts.iter().flat_map(|hosts| &hosts.value) {
            let entry = &located_entry.value;
            if let Some(pools) = pools
                && !pools.contains(&entry.pool.value)
            {
                self.error(
                    entry.pool.pos,
                    format!(
                        "unknown pool `{}` (configured pools: {})",
                        entry.pool.value,
                        pools.join(", ")
                    ),
                );
            }
            let host = self.non_empty(&entry.host, "host");
            if acting && !host.is_empty() && !crate::xapi::records::is_uuid(&host) {
                self.error(
                    entry.host.pos,
                    format!(
                        "`host` must be the host's uuid when the receiver may act (mode approve or auto): a name or address (`{host}`) can come to mean another host after a rename or a reinstall, and its BMC would power off the wrong machine (`xe host-list params=uuid,name-label,address`)"
                    ),
                );
            }
            let key = (entry.pool.value.clone(), host.clone());
            if let Some(first) = seen.get(&key) {
                self.error(
                    entry.host.pos,
                    format!(
                        "host `{host}` of pool `{}` already has a fence agent (line {})",
                        entry.pool.value, first.line
                    ),
                );
            } else {
                seen.insert(key, entry.host.pos);
            }
            let levels = self.fence_levels(entry, located_entry.pos);
            hosts.push(FenceHost {
                pool: entry.pool.value.clone(),
                host,
                levels,
            });
        }
        FencingConfig {
            agent_timeout,
            hosts,
        }
    }
}

impl Checker {
    /// The entry's levels: `levels`, or the single-agent form as one level of one agent.
    fn fence_levels(&mut self, entry: &RawFenceHost, at: Pos) -> Vec<FenceLevel> {
        let single = entry.agent.as_ref().map(|agent| RawFenceDevice {
            agent: agent.clone(),
            args: entry.args.clone(),
            password_file: entry.password_file.clone(),
        });
        match (&entry.levels, single) {
            (Some(levels), None) => {
                if entry.args.is_some() || entry.password_file.is_some() {
                    let pos = entry
                        .args
                        .as_ref()
                        .map(|a| a.pos)
                        .or(entry.password_file.as_ref().map(|p| p.pos))
                        .unwrap_or(levels.pos);
                    self.error(
                        pos,
                        "with `levels`, `args` and `password_file` belong to each level's agents",
                    );
                }
                if levels.value.is_empty() {
                    self.error(levels.pos, "`levels` must list at least one level");
                }
                levels
                    .value
                    .iter()
                    .map(|level| {
                        let agents = &level.value.agents;
                        if agents.value.is_empty() {
                            self.error(
                                agents.pos,
                                "a fencing level's `agents` must list at least one agent",
                            );
                        }
                        FenceLevel {
                            agents: agents
                                .value
                                .iter()
                                .map(|d| self.fence_device(&d.value))
                                .collect(),
                        }
                    })
                    .collect()
            }
            (None, Some(device)) => vec![FenceLevel {
                agents: vec![self.fence_device(&device)],
            }],
            (Some(levels), Some(_)) => {
                self.error(
                    levels.pos,
                    "a fencing host has either `agent` (one agent) or `levels`, not both",
                );
                Vec::new()
            }
            (None, None) => {
                self.error(
                    at,
                    "a fencing host needs `agent` (one agent) or `levels` (agents tried in order)",
                );
                Vec::new()
            }
        }
    }

    fn fence_device(&mut self, raw: &RawFenceDevice) -> FenceDevice {
        if let Err(why) = check_agent(&raw.agent.value) {
            self.error(raw.agent.pos, format!("`agent` {why}"));
        }
        let mut args = BTreeMap::new();
        for (key, value) in raw.args.iter().flat_map(|args| &args.value.0) {
            if let Err(why) = check_fence_arg(&key.value, raw.password_file.is_some()) {
                self.error(key.pos, why);
            } else if value.value.contains(['\n', '\r', '\0']) {
                self.error(
                    value.pos,
                    format!(
                        "fence argument `{}` must be a single line (no newline)",
                        key.value
                    ),
                );
            }
            args.insert(key.value.clone(), value.value.clone());
        }
        FenceDevice {
            agent: raw.agent.value.clone(),
            args,
            password_file: raw
                .password_file
                .as_ref()
                .map(|path| self.path(path, "password_file")),
        }
    }
}

fn check_agent(agent: &str) -> Result<(), String> {
    if agent.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if agent.contains('/') {
        return Ok(());
    }
    if agent
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'))
    {
        Ok(())
    } else {
        Err(format!(
            "must be a program name such as `fence_ipmilan` or a path, got `{agent}`"
        ))
    }
}

fn check_fence_arg(key: &str, has_password_file: bool) -> Result<(), String> {
    if key.is_empty()
        || !key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return Err(format!(
            "fence argument name `{key}` must be letters, digits, `_` or `-`"
        ));
    }
    match key {
        "action" => Err("fence argument `action` is set by xenguard (off, on, status)".into()),
        "password" | "passwd" => Err(if has_password_file {
            format!("fence argument `{key}` comes from `password_file`; remove it")
        } else {
            format!(
                "inline passwords are not allowed: put it in a file and set `password_file` instead of `{key}`"
            )
        }),
        _ => Ok(()),
    }
}
