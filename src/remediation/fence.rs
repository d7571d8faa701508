//! Fencing through a ClusterLabs fence agent (e.g. `fence_ipmilan`): arguments as `key=value`
//! lines on stdin, `action=off|on|status`, exit code 0 = on and 2 = off for `status`.
//!
//! # Guarantees
//! - A power-off counts only once a later `status` reads it back as off
//!   ([`FenceAgent::power_off_confirmed`]); anything else is an error.
//! - Every run is returned as evidence (action, exit code, output, duration) for the journal;
//!   the password is never part of it.
//! - An agent that outlives its timeout is killed and the run is an error.
//! - Fencing levels ([`fence_by_levels`]): levels are tried in order, the next only when one
//!   fails; a level counts only when every one of its agents powered off and read back off.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Stdio;
use std::time::Duration;

use serde::Serialize;
use tokio::io::AsyncWriteExt;

/// Output kept per stream in the evidence.
const MAX_OUTPUT: usize = 4096;
/// `PATH` of an agent when the receiver has none.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// A configured fence agent for one host.
#[derive(Clone)]
pub struct FenceAgent {
    /// Program name or path (`fence_ipmilan`).
    pub program: String,
    /// `key=value` arguments (without `action` and `password`).
    pub args: BTreeMap<String, String>,
    /// The password argument, if any.
    pub password: Option<String>,
    /// Longest a single run may take.
    pub timeout: Duration,
}

impl fmt::Debug for FenceAgent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FenceAgent")
            .field("program", &self.program)
            .field("args", &self.args)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// What the BMC reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Power {
    /// Exit code 0.
    On,
    /// Exit code 2.
    Off,
}

/// One run of the agent, as journaled.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AgentRun {
    /// `off`, `on` or `status`.
    pub action: String,
    /// Exit code (`None` if killed).
    pub exit_code: Option<i32>,
    /// Standard output, truncated.
    pub stdout: String,
    /// Standard error, truncated.
    pub stderr: String,
    /// Seconds the run took.
    pub seconds: f64,
}

/// Why fencing failed.
#[derive(Debug, thiserror::Error)]
pub enum FenceError {
    /// The agent could not be started.
    #[error("cannot run fence agent {program}: {source}")]
    Spawn {
        /// The program.
        program: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The agent ran past its timeout and was killed.
    #[error("fence agent {action} timed out after {seconds:.0} s")]
    Timeout {
        /// The action.
        action: String,
        /// The limit.
        seconds: f64,
    },
    /// The agent reported a failure.
    #[error("fence agent {action} failed with exit code {code:?}: {stderr}")]
    Failed {
        /// The action.
        action: String,
        /// Its exit code.
        code: Option<i32>,
        /// Its stderr (truncated).
        stderr: String,
    },
    /// After `off`, the BMC never read back off.
    #[error("power-off not confirmed: the BMC still reports on after {attempts} status reads")]
    NotConfirmed {
        /// Status reads made.
        attempts: u32,
    },
}

fn truncated(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out: String = text.chars().take(MAX_OUTPUT).collect();
    if text.chars().count() > MAX_OUTPUT {
        out.push_str(" [truncated]");
    }
    out
}

impl FenceAgent {
    /// The stdin of a run: one `key=value` per line, then the action.
    /// `text` with every occurrence of the password replaced, since an agent may echo its
    /// input (verbose or debug output) and its output goes to the journal.
    fn masked(&self, text: String) -> String {
        match &self.password {
            Some(password) if !password.is_empty() => text.replace(password.as_str(), "***"),
            _ => text,
        }
    }

    fn stdin(&self, action: &str) -> String {
        let mut input = String::new();
        for (key, value) in &self.args {
            input.push_str(&format!("{key}={value}\n"));
        }
        if let Some(password) = &self.password {
            input.push_str(&format!("password={password}\n"));
        }
        input.push_str(&format!("action={action}\n"));
        input
    }

    /// Runs the agent once with `action`.
    pub async fn run(&self, action: &str) -> Result<AgentRun, FenceError> {
        let started = std::time::Instant::now();
        // The agent gets no environment but what its contract needs: the receiver's secrets
        // (tokens, proxies, credentials in variables) are none of its business.
        let path = std::env::var_os("PATH").unwrap_or_else(|| DEFAULT_PATH.into());
        let mut child = tokio::process::Command::new(&self.program)
            .env_clear()
            .env("PATH", path)
            .env("LANG", "C.UTF-8")
            .env("PYTHONWARNINGS", "ignore")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| FenceError::Spawn {
                program: self.program.clone(),
                source,
            })?;
        if let Some(mut stdin) = child.stdin.take() {
            // An agent that exits before reading its input is judged by its exit code.
            let _ = stdin.write_all(self.stdin(action).as_bytes()).await;
        }
        let output = match tokio::time::timeout(self.timeout, child.wait_with_output()).await {
            Ok(Ok(output)) => output,
            Ok(Err(source)) => {
                return Err(FenceError::Spawn {
                    program: self.program.clone(),
                    source,
                });
            }
            Err(_) => {
                return Err(FenceError::Timeout {
                    action: action.to_owned(),
                    seconds: self.timeout.as_secs_f64(),
                });
            }
        };
        Ok(AgentRun {
            action: action.to_owned(),
            exit_code: output.status.code(),
            stdout: self.masked(truncated(&output.stdout)),
            stderr: self.masked(truncated(&output.stderr)),
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// `action=status`: 0 = on, 2 = off, anything else an error.
    pub async fn status(&self) -> Result<(Power, AgentRun), FenceError> {
        let run = self.run("status").await?;
        match run.exit_code {
            Some(0) => Ok((Power::On, run)),
            Some(2) => Ok((Power::Off, run)),
            code => Err(FenceError::Failed {
                action: "status".into(),
                code,
                stderr: run.stderr,
            }),
        }
    }

    /// `action=off`, then `status` until it reads off (at most `reads` times, `pause` apart).
    /// Returns every run as evidence; fails unless the power-off is read back.
    pub async fn power_off_confirmed(
        &self,
        reads: u32,
        pause: Duration,
    ) -> Result<Vec<AgentRun>, FenceError> {
        let off = self.run("off").await?;
        if off.exit_code != Some(0) {
            return Err(FenceError::Failed {
                action: "off".into(),
                code: off.exit_code,
                stderr: off.stderr,
            });
        }
        let mut evidence = vec![off];
        for attempt in 1..=reads {
            let (power, run) = self.status().await?;
            evidence.push(run);
            if power == Power::Off {
                return Ok(evidence);
            }
            if attempt < reads {
                tokio::time::sleep(pause).await;
            }
        }
        Err(FenceError::NotConfirmed { attempts: reads })
    }
}

/// One fencing level: agents that must all power their device off and read it back off.
#[derive(Debug, Clone)]
pub struct Level {
    /// Its agents, run in order.
    pub agents: Vec<FenceAgent>,
}

/// How one level went, for the journal.
#[derive(Debug, Clone, Serialize)]
pub struct LevelRun {
    /// The level's number, 1 first.
    pub level: usize,
    /// Every agent powered off and read back off.
    pub off: bool,
    /// Each agent run, in order; the level stops at the first failure.
    pub agents: Vec<AgentOutcome>,
}

/// One agent of a level: its runs, or why it failed.
#[derive(Debug, Clone, Serialize)]
pub struct AgentOutcome {
    /// The agent program.
    pub agent: String,
    /// Its runs (`off`, then the `status` reads).
    pub runs: Vec<AgentRun>,
    /// Why it failed, when it did.
    pub error: Option<String>,
}

/// Fences through `levels` in order until one level reads back off. Returns that level's
/// number (1 first), or `None` when every level failed, and how each level tried went.
pub async fn fence_by_levels(
    levels: &[Level],
    reads: u32,
    pause: Duration,
) -> (Option<usize>, Vec<LevelRun>) {
    let mut tried = Vec::new();
    for (i, level) in levels.iter().enumerate() {
        let mut run = LevelRun {
            level: i + 1,
            off: false,
            agents: Vec::new(),
        };
        let mut all_off = !level.agents.is_empty();
        for agent in &level.agents {
            let outcome = agent.power_off_confirmed(reads, pause).await;
            let failed = outcome.is_err();
            run.agents.push(AgentOutcome {
                agent: agent.program.clone(),
                error: outcome.as_ref().err().map(ToString::to_string),
                runs: outcome.unwrap_or_default(),
            });
            if failed {
                all_off = false;
                break;
            }
        }
        run.off = all_off;
        tried.push(run);
        if all_off {
            return (Some(i + 1), tried);
        }
    }
    (None, tried)
}

/// What the levels' devices read now (after a crash during a fence): `Ok(Some(n))` when every
/// agent of level `n` reads off (the first such level), `Ok(None)` when no level does, `Err`
/// when no device of any level could be read.
pub async fn levels_read_off(
    levels: &[Level],
) -> (Result<Option<usize>, String>, Vec<serde_json::Value>) {
    let mut seen = Vec::new();
    let mut errors = Vec::new();
    let mut any_read = false;
    for (i, level) in levels.iter().enumerate() {
        let mut all_off = !level.agents.is_empty();
        for agent in &level.agents {
            match agent.status().await {
                Ok((power, run)) => {
                    any_read = true;
                    all_off &= power == Power::Off;
                    seen.push(serde_json::json!({"level": i + 1, "agent": agent.program, "power": power, "run": run}));
                }
                Err(e) => {
                    all_off = false;
                    errors.push(format!("level {} {}: {e}", i + 1, agent.program));
                    seen.push(serde_json::json!({"level": i + 1, "agent": agent.program, "error": e.to_string()}));
                }
            }
        }
        if all_off {
            return (Ok(Some(i + 1)), seen);
        }
    }
    if any_read || levels.is_empty() {
        (Ok(None), seen)
    } else {
        (Err(errors.join("; ")), seen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdin_carries_arguments_then_action_and_debug_hides_the_password() {
        let agent = FenceAgent {
            program: "fence_ipmilan".into(),
            args: [
                ("ip".to_string(), "10.0.0.9".to_string()),
                ("lanplus".to_string(), "1".to_string()),
            ]
            .into(),
            password: Some("s3cret".into()),
            timeout: Duration::from_secs(5),
        };
        assert_eq!(
            agent.stdin("off"),
            "ip=10.0.0.9\nlanplus=1\npassword=s3cret\naction=off\n"
        );
        assert!(!format!("{agent:?}").contains("s3cret"));
    }

    /// An agent that prints its whole input and environment, then exits with `code`.
    fn echoing(dir: &tempfile::TempDir, code: i32) -> FenceAgent {
        use std::os::unix::fs::PermissionsExt as _;
        let path = dir.path().join("fence_echo");
        std::fs::write(&path, format!("#!/bin/sh\ncat\nenv >&2\nexit {code}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        FenceAgent {
            program: path.display().to_string(),
            args: [("ip".to_string(), "10.0.0.9".to_string())].into(),
            password: Some("hunter2-bmc".into()),
            timeout: Duration::from_secs(10),
        }
    }

    #[tokio::test]
    async fn agents_get_a_cleared_environment_and_their_output_never_shows_the_password() {
        let dir = tempfile::tempdir().unwrap();
        let (power, run) = echoing(&dir, 2).status().await.unwrap();
        assert_eq!(power, Power::Off);
        assert!(run.stdout.contains("ip=10.0.0.9"), "{run:?}");
        assert!(run.stdout.contains("password=***"), "{run:?}");
        assert!(!format!("{run:?}").contains("hunter2-bmc"), "{run:?}");
        // Only what the contract needs (and what the shell itself adds), nothing of ours.
        let names: std::collections::BTreeSet<&str> = run
            .stderr
            .lines()
            .filter_map(|l| l.split_once('=').map(|(name, _)| name))
            .filter(|name| !["PWD", "OLDPWD", "SHLVL", "_"].contains(name))
            .collect();
        assert_eq!(
            names,
            ["LANG", "PATH", "PYTHONWARNINGS"].into(),
            "{}",
            run.stderr
        );
        let failed = echoing(&dir, 1).run("off").await.unwrap();
        assert!(!format!("{failed:?}").contains("hunter2-bmc"));
    }
}
