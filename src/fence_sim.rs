//! `xenguard fence-sim`: a fence agent for simulated hosts. It speaks the ClusterLabs
//! fence-agents contract (the one `fence_ipmilan` speaks and
//! [`crate::remediation::fence::FenceAgent`] drives) and powers hosts off and on through the
//! simulator's control API, so the demo fences through exactly the path a real BMC takes.
//!
//! # Contract
//! Standard input holds `key=value` lines up to end of file; blank lines and lines starting
//! with `#` are skipped, and unknown keys (`password`, `ip`, …) are ignored, as a real agent
//! ignores options it does not know. Their values are never printed.
//!
//! | key | meaning |
//! |---|---|
//! | `action` | `off`, `on`, `status` or `monitor` (required) |
//! | `host` | the simulated host: name label or uuid (required except for `monitor`) |
//! | `control` | base URL of the control API (default [`DEFAULT_CONTROL`]) |
//!
//! Exit codes: 0 = success (for `status`: powered on), 2 = `status` read powered off, 1 = any
//! error, with a message on standard error. `off` and `on` succeed only when the control API's
//! answer shows the host in the requested state; asking for the state the host is already in
//! succeeds without changing anything (`Success: Already OFF`), as real agents do.
//!
//! The subcommand is hidden from `--help`. Fence agents are run without arguments, so the
//! executable also behaves as this agent when it is invoked under the name [`AGENT_NAME`]
//! (a symbolic link to it, which the demo writes into its temporary directory).

use std::time::Duration;

use serde::Deserialize;

/// The program name under which the `xenguard` executable acts as this fence agent.
pub const AGENT_NAME: &str = "fence_xenguard_sim";

/// The simulator's control API when `control` is not given.
pub const DEFAULT_CONTROL: &str = "http://127.0.0.1:9880";

/// Limit of each HTTP exchange with the control API.
const HTTP_TIMEOUT: Duration = Duration::from_secs(5);

/// What the agent is asked to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Power the host off, then read it back off.
    Off,
    /// Power the host on, then read it back on.
    On,
    /// Read the host's power: exit 0 when on, 2 when off.
    Status,
    /// Check that the control API answers.
    Monitor,
}

impl Action {
    fn parse(text: &str) -> Option<Action> {
        match text {
            "off" => Some(Action::Off),
            "on" => Some(Action::On),
            "status" => Some(Action::Status),
            "monitor" => Some(Action::Monitor),
            _ => None,
        }
    }
}

/// A parsed request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The action.
    pub action: Action,
    /// Base URL of the control API.
    pub control: url::Url,
    /// Name label or uuid of the host (empty only for `monitor`).
    pub host: String,
}

/// Why the agent failed (exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum FenceSimError {
    /// The standard input is not a usable request.
    #[error("{0}")]
    Input(String),
    /// The control API could not be reached or answered badly.
    #[error("control API {url}: {message}")]
    Control {
        /// The URL asked.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// The simulator has no such host.
    #[error("the simulator has no host {0:?}")]
    NoSuchHost(String),
    /// The power was changed but does not read back as asked.
    #[error("host {host:?} still reads {power} after the power-{asked} request")]
    NotApplied {
        /// The host.
        host: String,
        /// What was asked (`on`, `off`).
        asked: &'static str,
        /// What it reads.
        power: String,
    },
}

/// Parses the agent's standard input.
pub fn parse(input: &str) -> Result<Request, FenceSimError> {
    let (mut action, mut control, mut host) = (None, None, None);
    for line in input.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            // A real agent rejects such a line; name it without its content, which may be a
            // secret.
            return Err(FenceSimError::Input(
                "a line of standard input is not key=value".into(),
            ));
        };
        match key.trim() {
            "action" => action = Some(value.trim().to_owned()),
            "control" => control = Some(value.trim().to_owned()),
            "host" => host = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    let action = match action.as_deref() {
        None | Some("") => return Err(FenceSimError::Input("no action= given".into())),
        Some(text) => Action::parse(text).ok_or_else(|| {
            FenceSimError::Input(format!(
                "unsupported action {text:?} (off, on, status or monitor)"
            ))
        })?,
    };
    let control_text = control.unwrap_or_else(|| DEFAULT_CONTROL.to_owned());
    let control = url::Url::parse(&control_text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && !u.cannot_be_a_base())
        .ok_or_else(|| {
            FenceSimError::Input(format!(
                "control={control_text:?} is not an http:// URL of the simulator's control API"
            ))
        })?;
    let host = host.unwrap_or_default();
    if host.is_empty() && action != Action::Monitor {
        return Err(FenceSimError::Input(
            "no host= given (name label or uuid of the simulated host)".into(),
        ));
    }
    Ok(Request {
        action,
        control,
        host,
    })
}

/// What a successful run prints and exits with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// 0, or 2 for `status` of a powered-off host.
    pub exit_code: u8,
    /// The line for standard output (`Status: ON`, `Success: Powered OFF`, …).
    pub message: String,
}

/// The fields of `GET /hosts` this agent needs.
#[derive(Debug, Deserialize)]
struct HostPower {
    name: String,
    uuid: String,
    power: String,
}

/// The control API's URL for `segments` under the base URL.
fn endpoint(base: &url::Url, segments: &[&str]) -> url::Url {
    let mut url = base.clone();
    if let Ok(mut path) = url.path_segments_mut() {
        path.pop_if_empty().extend(segments);
    }
    url
}

fn client() -> Result<reqwest::Client, FenceSimError> {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(HTTP_TIMEOUT)
        .build()
        .map_err(|e| FenceSimError::Control {
            url: String::new(),
            message: e.to_string(),
        })
}

async fn answer<T: serde::de::DeserializeOwned>(
    url: &url::Url,
    request: reqwest::RequestBuilder,
) -> Result<T, FenceSimError> {
    let fail = |message: String| FenceSimError::Control {
        url: url.to_string(),
        message,
    };
    let response = request.send().await.map_err(|e| fail(e.to_string()))?;
    let status = response.status();
    let body = response.text().await.map_err(|e| fail(e.to_string()))?;
    if !status.is_success() {
        return Err(fail(format!("HTTP {status}: {}", body.trim())));
    }
    serde_json::from_str(&body).map_err(|e| fail(format!("unexpected answer: {e}")))
}

/// The host's power (`on`/`off`) from a `GET /hosts` list.
fn power_of(hosts: &[HostPower], host: &str) -> Result<String, FenceSimError> {
    hosts
        .iter()
        .find(|h| h.name == host || h.uuid == host)
        .map(|h| h.power.clone())
        .ok_or_else(|| FenceSimError::NoSuchHost(host.to_owned()))
}

/// Carries out a request against the control API.
pub async fn execute(request: &Request) -> Result<Outcome, FenceSimError> {
    let http = client()?;
    let hosts_url = endpoint(&request.control, &["hosts"]);
    let hosts: Vec<HostPower> = answer(&hosts_url, http.get(hosts_url.clone())).await?;
    let success = |message: &str| Outcome {
        exit_code: 0,
        message: message.to_owned(),
    };
    let (wanted, label) = match request.action {
        Action::Monitor => {
            return Ok(success(&format!(
                "Success: the control API answers ({} hosts)",
                hosts.len()
            )));
        }
        Action::Status => {
            return Ok(match power_of(&hosts, &request.host)?.as_str() {
                "off" => Outcome {
                    exit_code: 2,
                    message: "Status: OFF".into(),
                },
                _ => success("Status: ON"),
            });
        }
        Action::Off => ("off", "OFF"),
        Action::On => ("on", "ON"),
    };
    if power_of(&hosts, &request.host)? == wanted {
        return Ok(success(&format!("Success: Already {label}")));
    }
    let power_url = endpoint(&request.control, &["hosts", &request.host, "power"]);
    let after: Vec<HostPower> = answer(
        &power_url,
        http.post(power_url.clone())
            .json(&serde_json::json!({ "state": wanted })),
    )
    .await?;
    // The answer is every host's state once the simulated sockets follow the change.
    let power = power_of(&after, &request.host)?;
    if power != wanted {
        return Err(FenceSimError::NotApplied {
            host: request.host.clone(),
            asked: wanted,
            power,
        });
    }
    Ok(success(&format!("Success: Powered {label}")))
}

/// The whole agent: parses `input`, carries it out, prints the outcome on standard output or
/// the error on standard error, and returns the exit code.
pub async fn run(input: &str) -> u8 {
    let outcome = match parse(input) {
        Ok(request) => execute(&request).await,
        Err(e) => Err(e),
    };
    match outcome {
        Ok(outcome) => {
            println!("{}", outcome.message);
            outcome.exit_code
        }
        Err(e) => {
            eprintln!("{AGENT_NAME}: {e}");
            1
        }
    }
}

/// Whether the process was started under the agent's name ([`AGENT_NAME`]), from its
/// `argv[0]`.
pub fn invoked_as_agent(argv0: Option<&std::ffi::OsStr>) -> bool {
    argv0
        .map(std::path::Path::new)
        .and_then(std::path::Path::file_name)
        .is_some_and(|name| name == AGENT_NAME)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_key_value_lines_and_ignores_unknown_keys() {
        let request = parse(
            "# comment\n\ncontrol=http://127.0.0.1:1234\nhost=host2\nip=10.0.0.9\npassword=s3cret\naction=off\n",
        )
        .unwrap();
        assert_eq!(request.action, Action::Off);
        assert_eq!(request.host, "host2");
        assert_eq!(request.control.as_str(), "http://127.0.0.1:1234/");
    }

    #[test]
    fn defaults_the_control_api_and_needs_a_host_except_for_monitor() {
        let request = parse("action=monitor\n").unwrap();
        assert_eq!(request.control.as_str(), "http://127.0.0.1:9880/");
        let error = parse("action=status\n").unwrap_err().to_string();
        assert!(error.contains("no host="), "{error}");
    }

    #[test]
    fn rejects_bad_input_without_repeating_it() {
        for (input, expected) in [
            ("host=h\n", "no action="),
            ("host=h\naction=reboot\n", "unsupported action \"reboot\""),
            (
                "host=h\naction=off\ncontrol=ftp://x\n",
                "not an http:// URL",
            ),
            ("host=h\nhunter2\naction=off\n", "not key=value"),
        ] {
            let error = parse(input).unwrap_err().to_string();
            assert!(error.contains(expected), "{input:?}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
    }

    #[test]
    fn builds_endpoints_under_the_base_url() {
        let base = url::Url::parse("http://127.0.0.1:9880").unwrap();
        assert_eq!(
            endpoint(&base, &["hosts", "my host", "power"]).as_str(),
            "http://127.0.0.1:9880/hosts/my%20host/power"
        );
        let nested = url::Url::parse("http://sim:1/api/").unwrap();
        assert_eq!(
            endpoint(&nested, &["hosts"]).as_str(),
            "http://sim:1/api/hosts"
        );
    }

    #[test]
    fn recognises_its_agent_name() {
        let name = |s: &str| invoked_as_agent(Some(std::ffi::OsStr::new(s)));
        assert!(name("/srv/xenguard-demo-1/fence_xenguard_sim"));
        assert!(name("fence_xenguard_sim"));
        assert!(!name("/usr/bin/xenguard"));
        assert!(!invoked_as_agent(None));
    }
}
