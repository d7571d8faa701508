//! One direct probe of one host: does it answer XAPI at all, does it accept a pool login
//! (master) or redirect (`HOST_IS_SLAVE`, naming its master), and is it in emergency mode
//! (local session + `host.is_in_emergency_mode`, xapi-notes.md §3.3; a host that accepted the
//! pool login is not, so a master costs two calls, a slave five). The exporter publishes these
//! answers; the receiver's confirmation check asks them again, fresh, before it acts.

use std::time::Duration;

use super::transport::Transport;
use super::wire::Value;
use super::{Credentials, Error, ErrorCode, LocalSession, NoAnswer};

/// What a host said when probed directly.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Role {
    /// Accepted a pool login: it believes it is master.
    Master,
    /// Answered `HOST_IS_SLAVE [address]`.
    Slave(String),
    /// Rejected the login with an emergency-mode error (xapi-notes.md §3.2).
    Emergency(String),
    /// Answered, but neither of the above (e.g. wrong credentials).
    Other(String),
    /// Gave no well-formed XAPI answer.
    Unreachable,
}

impl Role {
    /// Whether the host gave a well-formed XAPI answer.
    pub fn answered(&self) -> bool {
        *self != Role::Unreachable
    }

    /// Short name (`master`, `slave`, `emergency`, `other`, `unreachable`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Slave(_) => "slave",
            Role::Emergency(_) => "emergency",
            Role::Other(_) => "other",
            Role::Unreachable => "unreachable",
        }
    }
}

/// The answer of one probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// What the login attempt showed.
    pub role: Role,
    /// `host.is_in_emergency_mode` over a local session, if that worked.
    pub emergency: Option<bool>,
    /// Error kind when the host gave no answer (`timeout`, `connect`, …).
    pub error: Option<&'static str>,
    /// How the host failed to answer, when it did not.
    pub no_answer: Option<NoAnswer>,
}

/// Probes the host at `address` with `originator` (xapi groups sessions by it, xapi-notes.md §2.5).
/// Never fails: a host that does not answer is [`Role::Unreachable`].
pub async fn probe(
    transport: &Transport,
    address: &str,
    credentials: &Credentials,
    originator: &str,
    timeout: Duration,
) -> Answer {
    let login = [
        Value::string(&credentials.username),
        Value::string(credentials.password.expose()),
        Value::string("1.1"),
        Value::string(originator),
    ];
    let role = match transport
        .call(
            address,
            "session.login_with_password",
            &login,
            Some(timeout),
        )
        .await
    {
        Ok(Value::String(session)) => {
            let _ = transport
                .call(
                    address,
                    "session.logout",
                    &[Value::String(session)],
                    Some(timeout),
                )
                .await;
            Role::Master
        }
        Ok(other) => Role::Other(format!("login answered a {}", other.kind())),
        Err(Error::Api(f)) if f.code == ErrorCode::HostIsSlave => {
            Role::Slave(f.params.first().cloned().unwrap_or_default())
        }
        Err(Error::Api(f)) if f.code.is_emergency_mode_error() => {
            Role::Emergency(f.code.to_string())
        }
        Err(Error::Api(f)) => Role::Other(f.code.to_string()),
        Err(e) => {
            return Answer {
                role: Role::Unreachable,
                emergency: None,
                error: Some(e.kind()),
                no_answer: e.no_answer(),
            };
        }
    };
    // xapi refuses every call but a few emergency ones (a pool login is not one of them) while
    // `slave_emergency_mode` is set (xapi-notes.md §3.3), so a host that just accepted a pool
    // login was not in emergency mode: asking would cost the master three more calls a probe.
    // A slave can be in emergency mode behind a plain `HOST_IS_SLAVE`, so it is asked.
    let asked = match role {
        Role::Master => return answered(role, Some(false)),
        _ => LocalSession::login(transport, address, credentials, Some(timeout)).await,
    };
    let emergency = match asked {
        Ok(local) => {
            let answer = local.is_in_emergency_mode(Some(timeout)).await.ok();
            local.logout(Some(timeout)).await;
            answer
        }
        Err(_) => None,
    };
    answered(role, emergency)
}

fn answered(role: Role, emergency: Option<bool>) -> Answer {
    Answer {
        role,
        emergency,
        error: None,
        no_answer: None,
    }
}
