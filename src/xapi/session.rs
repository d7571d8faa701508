//! Sessions (xapi-notes.md §2): one long-lived pool session per client, reused for every call,
//! with a distinct `originator` (xapi caps sessions per originator, xapi-notes.md §2.5); one
//! re-login when the session is lost (`SESSION_INVALID`, e.g. after a master restart);
//! `HOST_IS_SLAVE [address]` followed to the master; and per-host local sessions
//! (`slave_local_login_with_password`) for probes that must work while the master is gone.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

use super::error::{Error, ErrorCode};
use super::transport::Transport;
use super::wire::Value;

/// How many `HOST_IS_SLAVE` redirects one login follows before giving up.
const MAX_REDIRECTS: usize = 3;

/// The API version xenguard speaks (ignored by xapi, sent for the record).
const API_VERSION: &str = "1.1";

/// A password that never shows in `Debug` output or logs.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(secret: impl Into<String>) -> Password {
        Password(secret.into())
    }

    /// The secret itself, for the wire only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// User name and password of a pool.
#[derive(Debug, Clone)]
pub struct Credentials {
    /// Usually `root`.
    pub username: String,
    /// The password.
    pub password: Password,
}

#[derive(Debug, Default)]
struct State {
    /// Address of the host that accepted the login (the master).
    master: Option<String>,
    /// The session reference.
    session: Option<String>,
}

/// A pool session that survives master restarts and failovers.
#[derive(Debug)]
pub struct Session {
    transport: Transport,
    credentials: Credentials,
    originator: String,
    /// Addresses tried, in order, when no master is known: the configured hosts.
    seeds: Vec<String>,
    state: Mutex<State>,
}

impl Session {
    /// A session for the pool reachable through any of `seeds`. Nothing is sent until the
    /// first call (or [`Session::login`]).
    pub fn new(
        transport: Transport,
        credentials: Credentials,
        originator: impl Into<String>,
        seeds: Vec<String>,
    ) -> Session {
        Session {
            transport,
            credentials,
            originator: originator.into(),
            seeds,
            state: Mutex::default(),
        }
    }

    /// The transport, for local sessions to single hosts of the same pool.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// The pool credentials.
    pub fn credentials(&self) -> &Credentials {
        &self.credentials
    }

    /// The address of the master that accepted the current session, if any.
    pub async fn master_address(&self) -> Option<String> {
        self.state.lock().await.master.clone()
    }

    /// Logs in (again), trying the last known master first, then every seed, following
    /// `HOST_IS_SLAVE` redirects. Returns the master's address.
    pub async fn login(&self) -> Result<String, Error> {
        let mut state = self.state.lock().await;
        self.login_locked(&mut state).await
    }

    async fn login_locked(&self, state: &mut State) -> Result<String, Error> {
        let mut candidates: Vec<String> = state.master.iter().cloned().collect();
        candidates.extend(
            self.seeds
                .iter()
                .filter(|s| Some(*s) != state.master.as_ref())
                .cloned(),
        );
        let mut last_error = Error::Config("no host addresses configured".into());
        // Addresses that gave no XAPI answer in this attempt are not tried again: when the
        // master is dead, every slave redirects to it, and each retry would cost a timeout.
        let mut silent = Vec::new();
        for candidate in candidates {
            if silent.contains(&candidate) {
                continue;
            }
            match self.login_following(&candidate, &mut silent).await {
                Ok((master, session)) => {
                    tracing::info!(master = %master, "Logged in to the pool master.");
                    state.master = Some(master.clone());
                    state.session = Some(session);
                    return Ok(master);
                }
                // Wrong credentials will not get better on another host.
                Err(e) if e.is(&ErrorCode::SessionAuthenticationFailed) => return Err(e),
                Err(e) => {
                    tracing::debug!(host = %candidate, error = %e, "Login attempt failed.");
                    last_error = e;
                }
            }
        }
        state.session = None;
        Err(last_error)
    }

    /// One login attempt starting at `address`, following redirects; addresses that do not
    /// answer are added to `silent`.
    async fn login_following(
        &self,
        address: &str,
        silent: &mut Vec<String>,
    ) -> Result<(String, String), Error> {
        let mut address = address.to_owned();
        let mut visited = vec![address.clone()];
        loop {
            if silent.contains(&address) {
                return Err(Error::Connect {
                    address,
                    message: "gave no answer earlier in this login attempt".into(),
                    refused: false,
                });
            }
            let params = [
                Value::string(&self.credentials.username),
                Value::string(self.credentials.password.expose()),
                Value::string(API_VERSION),
                Value::string(&self.originator),
            ];
            match self
                .transport
                .call(&address, "session.login_with_password", &params, None)
                .await
            {
                Ok(Value::String(session)) => return Ok((address, session)),
                Ok(other) => {
                    return Err(Error::Decode {
                        address,
                        method: "session.login_with_password".into(),
                        source: super::wire::WireError::Type(format!(
                            "session ref is a {}",
                            other.kind()
                        )),
                    });
                }
                Err(Error::Api(f)) if f.code == ErrorCode::HostIsSlave => {
                    let Some(master) = f.params.first().filter(|m| !m.is_empty()) else {
                        return Err(Error::Api(f));
                    };
                    if visited.contains(master) || visited.len() > MAX_REDIRECTS {
                        visited.push(master.clone());
                        return Err(Error::RedirectLoop(visited.join(" -> ")));
                    }
                    tracing::debug!(slave = %address, master = %master, "Following HOST_IS_SLAVE.");
                    address = master.clone();
                    visited.push(address.clone());
                }
                Err(e) => {
                    if !e.host_answered() {
                        silent.push(address);
                    }
                    return Err(e);
                }
            }
        }
    }

    /// Calls `method` with the session prepended. Logs in when needed; logs in again once on
    /// `SESSION_INVALID` or `HOST_IS_SLAVE` (the master moved) and retries.
    pub async fn call(&self, method: &str, params: &[Value]) -> Result<Value, Error> {
        self.call_with_timeout(method, params, None).await
    }

    /// [`Session::call`] with a call limit other than the transport's default.
    pub async fn call_with_timeout(
        &self,
        method: &str,
        params: &[Value],
        timeout: Option<Duration>,
    ) -> Result<Value, Error> {
        self.call_as(method, params, timeout).await
    }

    /// [`Session::call_with_timeout`], decoding the result straight into `T`.
    pub async fn call_as<T: DeserializeOwned + Send + 'static>(
        &self,
        method: &str,
        params: &[Value],
        timeout: Option<Duration>,
    ) -> Result<T, Error> {
        let (master, session) = self.current().await?;
        match self
            .call_on(&master, &session, method, params, timeout)
            .await
        {
            Err(e) if e.is(&ErrorCode::SessionInvalid) || e.is(&ErrorCode::HostIsSlave) => {
                let (master, session) = self.relogin(&session).await?;
                self.call_on(&master, &session, method, params, timeout)
                    .await
            }
            other => other,
        }
    }

    /// `GET <path>?<query>&session_id=…` on the host at `address` (an HTTP handler such as
    /// `/rrd_updates`, xapi-notes.md §13), with this pool's session; logs in again once if the
    /// host refuses the session (401). The body is read up to `limit` bytes.
    pub async fn http_get(
        &self,
        address: &str,
        path: &str,
        query: &str,
        timeout: Duration,
        limit: usize,
    ) -> Result<Vec<u8>, Error> {
        let (_, session) = self.current().await?;
        let get = |session: String| {
            let url = format!("{path}?{query}&session_id={session}");
            async move { self.transport.get(address, &url, timeout, limit).await }
        };
        match get(session.clone()).await {
            Err(Error::HttpStatus { status: 401, .. }) => {
                let (_, session) = self.relogin(&session).await?;
                get(session).await
            }
            other => other,
        }
    }

    async fn call_on<T: DeserializeOwned + Send + 'static>(
        &self,
        master: &str,
        session: &str,
        method: &str,
        params: &[Value],
        timeout: Option<Duration>,
    ) -> Result<T, Error> {
        let mut full = Vec::with_capacity(params.len() + 1);
        full.push(Value::string(session));
        full.extend_from_slice(params);
        self.transport.call_as(master, method, &full, timeout).await
    }

    async fn current(&self) -> Result<(String, String), Error> {
        let mut state = self.state.lock().await;
        if let (Some(master), Some(session)) = (&state.master, &state.session) {
            return Ok((master.clone(), session.clone()));
        }
        let master = self.login_locked(&mut state).await?;
        Ok((master, state.session.clone().unwrap_or_default()))
    }

    /// Logs in again unless another task already replaced the `stale` session.
    async fn relogin(&self, stale: &str) -> Result<(String, String), Error> {
        let mut state = self.state.lock().await;
        if let (Some(master), Some(session)) = (&state.master, &state.session)
            && session != stale
        {
            return Ok((master.clone(), session.clone()));
        }
        state.session = None;
        let master = self.login_locked(&mut state).await?;
        Ok((master, state.session.clone().unwrap_or_default()))
    }

    /// Forgets the session without telling the server (after a failover the old one is gone).
    pub async fn reset(&self) {
        let mut state = self.state.lock().await;
        state.session = None;
    }

    /// Logs out (best effort: a dead master cannot be told).
    pub async fn logout(&self) {
        let mut state = self.state.lock().await;
        if let (Some(master), Some(session)) = (state.master.clone(), state.session.take()) {
            let params = [Value::string(session)];
            if let Err(e) = self
                .transport
                .call(&master, "session.logout", &params, None)
                .await
            {
                tracing::debug!(master = %master, error = %e, "Logout failed.");
            }
        }
    }
}

/// A local session on one host (`session.slave_local_login_with_password`, xapi-notes.md §2.3):
/// needs no database, so it works on a slave whose master is gone and on an emergency-mode slave.
#[derive(Debug)]
pub struct LocalSession {
    transport: Transport,
    address: String,
    session: String,
}

impl LocalSession {
    /// Logs in locally to the host at `address`.
    pub async fn login(
        transport: &Transport,
        address: &str,
        credentials: &Credentials,
        timeout: Option<Duration>,
    ) -> Result<LocalSession, Error> {
        let params = [
            Value::string(&credentials.username),
            Value::string(credentials.password.expose()),
        ];
        let method = "session.slave_local_login_with_password";
        match transport.call(address, method, &params, timeout).await? {
            Value::String(session) => Ok(LocalSession {
                transport: transport.clone(),
                address: address.to_owned(),
                session,
            }),
            other => Err(Error::Decode {
                address: address.to_owned(),
                method: method.into(),
                source: super::wire::WireError::Type(format!("session ref is a {}", other.kind())),
            }),
        }
    }

    /// The host this session belongs to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Calls `method` on this host with the local session prepended.
    pub async fn call(
        &self,
        method: &str,
        params: &[Value],
        timeout: Option<Duration>,
    ) -> Result<Value, Error> {
        let mut full = Vec::with_capacity(params.len() + 1);
        full.push(Value::string(&self.session));
        full.extend_from_slice(params);
        self.transport
            .call(&self.address, method, &full, timeout)
            .await
    }

    /// `host.is_in_emergency_mode` (xapi-notes.md §3.3): true only after a slave's xapi restarted
    /// without reaching its master.
    pub async fn is_in_emergency_mode(&self, timeout: Option<Duration>) -> Result<bool, Error> {
        match self.call("host.is_in_emergency_mode", &[], timeout).await? {
            Value::Bool(b) => Ok(b),
            other => Err(Error::Decode {
                address: self.address.clone(),
                method: "host.is_in_emergency_mode".into(),
                source: super::wire::WireError::Type(format!(
                    "expected a boolean, found {}",
                    other.kind()
                )),
            }),
        }
    }

    /// `session.local_logout` (best effort).
    pub async fn logout(self, timeout: Option<Duration>) {
        if let Err(e) = self
            .transport
            .call(
                &self.address,
                "session.local_logout",
                &[Value::string(&self.session)],
                timeout,
            )
            .await
        {
            tracing::debug!(host = %self.address, error = %e, "Local logout failed.");
        }
    }
}

/// A shareable pool session.
pub type SharedSession = Arc<Session>;
