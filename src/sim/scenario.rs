//! Scenario files: timed faults for `xenguard sim --scenario FILE`, in simulated seconds.
//!
//! ```yaml
//! timing:               # optional: the realistic model's durations (as POST /timing)
//!   forward_connect_timeout: 40
//!   declare_dead_hook_per_sr: 10
//! steps:
//!   - at: 30            # simulated seconds after start
//!     host: host2       # name label, uuid or address
//!     power: off        # on | off | shutdown (graceful)
//!   - at: 60
//!     host: host1
//!     network: down     # up | down
//!   - at: 90
//!     host: host3
//!     xapi: stopped     # running | stopped
//!   - at: 120
//!     ha: true
//! ```

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::model::{Model, TimingParams};
use super::server::Shared;

/// A timeline of faults.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// The realistic model's durations from the start (a key left out keeps its default).
    #[serde(default)]
    pub timing: Option<TimingParams>,
    /// Steps, applied in time order.
    pub steps: Vec<Step>,
}

/// One timed change. Exactly one of `power`, `network`, `xapi`, `ha` is set; the first three
/// need `host`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Simulated seconds after the simulator started.
    pub at: f64,
    /// The host it applies to.
    #[serde(default)]
    pub host: Option<String>,
    /// `on`, `off` (pull the plug) or `shutdown` (graceful).
    #[serde(default)]
    pub power: Option<PowerAction>,
    /// `up` or `down`.
    #[serde(default)]
    pub network: Option<LinkState>,
    /// `running` or `stopped`.
    #[serde(default)]
    pub xapi: Option<ProcessState>,
    /// Turns XAPI HA on or off.
    #[serde(default)]
    pub ha: Option<bool>,
}

/// Power actions.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum PowerAction {
    /// Power on (boot).
    On,
    /// Pull the plug.
    Off,
    /// Orderly shutdown.
    Shutdown,
}

/// Management network states.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LinkState {
    /// Cable in.
    Up,
    /// Cable pulled.
    Down,
}

/// xapi process states.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ProcessState {
    /// Running.
    Running,
    /// Killed (VMs keep running).
    Stopped,
}

/// Why a scenario file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The YAML is malformed or has unknown keys.
    #[error("scenario {path}: {message}")]
    Parse {
        /// The file.
        path: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// A step makes no sense.
    #[error("scenario {path}, step {index}: {message}")]
    Step {
        /// The file.
        path: String,
        /// 1-based step number.
        index: usize,
        /// What is wrong.
        message: String,
    },
}

impl Scenario {
    /// Reads and checks a scenario file against the hosts of `model`.
    pub fn load(path: &std::path::Path, model: &Model) -> Result<Scenario, ScenarioError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: name.clone(),
            source,
        })?;
        Scenario::parse(&text, &name, model)
    }

    /// Parses and checks scenario text.
    pub fn parse(text: &str, name: &str, model: &Model) -> Result<Scenario, ScenarioError> {
        let mut scenario: Scenario =
            serde_saphyr::from_str(text).map_err(|e| ScenarioError::Parse {
                path: name.to_owned(),
                message: e.to_string(),
            })?;
        for (k, step) in scenario.steps.iter().enumerate() {
            let fail = |message: String| ScenarioError::Step {
                path: name.to_owned(),
                index: k + 1,
                message,
            };
            let actions = [
                step.power.is_some(),
                step.network.is_some(),
                step.xapi.is_some(),
                step.ha.is_some(),
            ];
            if actions.iter().filter(|set| **set).count() != 1 {
                return Err(fail("set exactly one of power, network, xapi, ha".into()));
            }
            if !(step.at.is_finite() && step.at >= 0.0) {
                return Err(fail(format!(
                    "at must be a non-negative number of seconds, not {}",
                    step.at
                )));
            }
            match (&step.host, step.ha.is_some()) {
                (Some(host), false) if model.find_host(host).is_none() => {
                    return Err(fail(format!("no simulated host {host:?}")));
                }
                (None, false) => return Err(fail("host is required".into())),
                (Some(_), true) => return Err(fail("ha applies to the pool: remove host".into())),
                _ => {}
            }
        }
        if let Some(timing) = &scenario.timing {
            let durations = [
                timing.forward_connect_timeout,
                timing.declare_dead_hook_per_sr,
            ];
            if !durations.iter().all(|d| d.is_finite() && *d >= 0.0) {
                return Err(ScenarioError::Parse {
                    path: name.to_owned(),
                    message: format!(
                        "timing durations must be non-negative numbers of seconds: {timing:?}"
                    ),
                });
            }
        }
        scenario.steps.sort_by(|a, b| a.at.total_cmp(&b.at));
        Ok(scenario)
    }
}

/// Applies one step to the model.
pub fn apply(model: &mut Model, step: &Step, now: f64) {
    let host = step.host.as_deref().and_then(|h| model.find_host(h));
    match (host, step) {
        (
            Some(i),
            Step {
                power: Some(action),
                ..
            },
        ) => match action {
            PowerAction::On => model.power_on(i, now),
            PowerAction::Off => model.power_off(i),
            PowerAction::Shutdown => model.shutdown(i, now),
        },
        (
            Some(i),
            Step {
                network: Some(link),
                ..
            },
        ) => {
            model.hosts[i].network_up = *link == LinkState::Up;
        }
        (
            Some(i),
            Step {
                xapi: Some(state), ..
            },
        ) => match state {
            ProcessState::Running => model.start_xapi(i, now),
            ProcessState::Stopped => model.stop_xapi(i),
        },
        (
            _,
            Step {
                ha: Some(enabled), ..
            },
        ) => model.set_ha(*enabled),
        _ => {}
    }
}

/// Plays the scenario against the running pool, logging each step.
pub async fn play(shared: Arc<Shared>, scenario: Scenario) {
    for step in scenario.steps {
        while shared.now() < step.at {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tracing::info!(
            at = step.at,
            host = step.host.as_deref().unwrap_or("pool"),
            "Scenario step: {step:?}."
        );
        shared.with_model(|m, now| apply(m, &step, now));
    }
    tracing::info!("Scenario finished.");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::PoolSpec;

    #[test]
    fn parses_sorts_and_checks_steps() {
        let model = Model::build(&PoolSpec::default());
        let text = "timing: {declare_dead_hook_per_sr: 12}\nsteps:\n  - {at: 60, host: host1, network: down}\n  - {at: 30, host: host2, power: off}\n  - {at: 90, ha: true}\n";
        let s = Scenario::parse(text, "t.yml", &model).unwrap();
        let timing = s.timing.unwrap();
        assert_eq!(timing.declare_dead_hook_per_sr, 12.0);
        assert_eq!(
            timing.forward_connect_timeout,
            TimingParams::default().forward_connect_timeout
        );
        assert_eq!(s.steps[0].at, 30.0);
        assert_eq!(s.steps[0].power, Some(PowerAction::Off));
        for bad in [
            "steps:\n  - {at: 1, host: host9, power: off}\n",
            "steps:\n  - {at: 1, host: host1}\n",
            "steps:\n  - {at: 1, host: host1, power: off, xapi: stopped}\n",
            "steps:\n  - {at: 1, power: off}\n",
            "steps:\n  - {at: 1, host: host1, power: sideways}\n",
            "steps:\n  - {at: 1, host: host1, power: off, colour: red}\n",
            "timing: {forward_connect_timeout: -1}\nsteps: []\n",
            "timing: {connect: 1}\nsteps: []\n",
        ] {
            assert!(
                Scenario::parse(bad, "t.yml", &model).is_err(),
                "accepted {bad}"
            );
        }
    }

    #[test]
    fn applying_a_step_changes_the_model() {
        let mut model = Model::build(&PoolSpec::default());
        let step = Step {
            at: 0.0,
            host: Some("host2".into()),
            power: Some(PowerAction::Off),
            network: None,
            xapi: None,
            ha: None,
        };
        apply(&mut model, &step, 0.0);
        assert!(!model.hosts[1].power_on);
    }
}
