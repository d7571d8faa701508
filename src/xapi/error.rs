//! Errors of the XAPI client: API failures (typed by code, xapi-notes.md §9) kept apart from
//! transport and decoding errors, because they mean different things to a caller deciding
//! whether a host is alive. A host that answers `HOST_IS_SLAVE` is alive; one that resets
//! the connection may not be.

use std::fmt;

use super::wire::WireError;

/// Declares the known failure codes with their wire spelling.
macro_rules! error_codes {
    ($($(#[$meta:meta])* $variant:ident = $wire:literal,)+) => {
        /// A failure code from `ErrorDescription[0]`.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum ErrorCode {
            $($(#[$meta])* #[doc = concat!("`", $wire, "`")] $variant,)+
            /// A code not listed in xapi-notes.md §9, as received.
            Other(String),
        }

        impl ErrorCode {
            /// Every known code, for documentation and exhaustive tests.
            pub const KNOWN: &'static [ErrorCode] = &[$(ErrorCode::$variant,)+];

            /// The wire spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorCode::$variant => $wire,)+
                    ErrorCode::Other(s) => s,
                }
            }

            /// Parses a wire code (exact, as xapi writes them).
            pub fn parse(s: &str) -> ErrorCode {
                match s {
                    $($wire => ErrorCode::$variant,)+
                    other => ErrorCode::Other(other.to_owned()),
                }
            }
        }
    };
}

error_codes! {
    SessionAuthenticationFailed = "SESSION_AUTHENTICATION_FAILED",
    SessionAuthorizationFailed = "SESSION_AUTHORIZATION_FAILED",
    SessionInvalid = "SESSION_INVALID",
    HostIsSlave = "HOST_IS_SLAVE",
    HostStillBooting = "HOST_STILL_BOOTING",
    HostHasNoManagementIp = "HOST_HAS_NO_MANAGEMENT_IP",
    HostItsOwnSlave = "HOST_ITS_OWN_SLAVE",
    HostMasterCannotTalkBack = "HOST_MASTER_CANNOT_TALK_BACK",
    HostUnknownToMaster = "HOST_UNKNOWN_TO_MASTER",
    HostXapiVersionHigherThanCoordinator = "HOST_XAPI_VERSION_HIGHER_THAN_COORDINATOR",
    HostBroken = "HOST_BROKEN",
    HaPoolIsEnabledButHostIsDisabled = "HA_POOL_IS_ENABLED_BUT_HOST_IS_DISABLED",
    HaHostCannotAccessStatefile = "HA_HOST_CANNOT_ACCESS_STATEFILE",
    HaHeartbeatDaemonStartupFailed = "HA_HEARTBEAT_DAEMON_STARTUP_FAILED",
    NotInEmergencyMode = "NOT_IN_EMERGENCY_MODE",
    MessageMethodUnknown = "MESSAGE_METHOD_UNKNOWN",
    MessageParameterCountMismatch = "MESSAGE_PARAMETER_COUNT_MISMATCH",
    HandleInvalid = "HANDLE_INVALID",
    UuidInvalid = "UUID_INVALID",
    InternalError = "INTERNAL_ERROR",
    InvalidValue = "INVALID_VALUE",
    MapDuplicateKey = "MAP_DUPLICATE_KEY",
    HaIsEnabled = "HA_IS_ENABLED",
    HostIsLive = "HOST_IS_LIVE",
    HostHasResidentVms = "HOST_HAS_RESIDENT_VMS",
    HostOffline = "HOST_OFFLINE",
    CannotContactHost = "CANNOT_CONTACT_HOST",
    HostNotLive = "HOST_NOT_LIVE",
    HostDisabled = "HOST_DISABLED",
    HostNotDisabled = "HOST_NOT_DISABLED",
    HostEvacuateInProgress = "HOST_EVACUATE_IN_PROGRESS",
    CannotResetControlDomain = "CANNOT_RESET_CONTROL_DOMAIN",
    DomainExists = "DOMAIN_EXISTS",
    VmBadPowerState = "VM_BAD_POWER_STATE",
    VmIsTemplate = "VM_IS_TEMPLATE",
    VmIsSnapshot = "VM_IS_SNAPSHOT",
    OtherOperationInProgress = "OTHER_OPERATION_IN_PROGRESS",
    OperationNotAllowed = "OPERATION_NOT_ALLOWED",
    NoHostsAvailable = "NO_HOSTS_AVAILABLE",
    HostNotEnoughFreeMemory = "HOST_NOT_ENOUGH_FREE_MEMORY",
    VmRequiresSr = "VM_REQUIRES_SR",
    VmRequiresNetwork = "VM_REQUIRES_NETWORK",
    LicenceRestriction = "LICENCE_RESTRICTION",
    DesignateNewMasterInProgress = "DESIGNATE_NEW_MASTER_IN_PROGRESS",
    EventFromTokenParseFailure = "EVENT_FROM_TOKEN_PARSE_FAILURE",
    EventSubscriptionParseFailure = "EVENT_SUBSCRIPTION_PARSE_FAILURE",
    EventsLost = "EVENTS_LOST",
    SessionNotRegistered = "SESSION_NOT_REGISTERED",
    XapiHookFailed = "XAPI_HOOK_FAILED",
    /// The VDI is still attached elsewhere (a stale `host_<ref>` tag, xapi-notes.md §6.6).
    SrBackendFailure46 = "SR_BACKEND_FAILURE_46",
    RbacPermissionDenied = "RBAC_PERMISSION_DENIED",
    TaskCancelled = "TASK_CANCELLED",
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ErrorCode {
    /// Errors an emergency-mode slave gives for every call outside the whitelist
    /// (xapi-notes.md §3.2).
    pub fn is_emergency_mode_error(&self) -> bool {
        matches!(
            self,
            ErrorCode::HostStillBooting
                | ErrorCode::HostHasNoManagementIp
                | ErrorCode::HostItsOwnSlave
                | ErrorCode::HostMasterCannotTalkBack
                | ErrorCode::HostUnknownToMaster
                | ErrorCode::HostXapiVersionHigherThanCoordinator
                | ErrorCode::HostBroken
                | ErrorCode::HaPoolIsEnabledButHostIsDisabled
                | ErrorCode::HaHostCannotAccessStatefile
                | ErrorCode::HaHeartbeatDaemonStartupFailed
        )
    }
}

/// An API-level failure: `{Status: "Failure", ErrorDescription: [code, params…]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// `ErrorDescription[0]`.
    pub code: ErrorCode,
    /// The rest of `ErrorDescription`, all strings.
    pub params: Vec<String>,
}

impl Failure {
    /// Builds a failure from a code and its parameters.
    pub fn new(code: ErrorCode, params: Vec<String>) -> Failure {
        Failure { code, params }
    }

    /// Builds a failure from a whole `ErrorDescription` (an empty one becomes `INTERNAL_ERROR`).
    pub fn from_description(mut description: Vec<String>) -> Failure {
        if description.is_empty() {
            return Failure::new(
                ErrorCode::InternalError,
                vec!["empty ErrorDescription".into()],
            );
        }
        let code = ErrorCode::parse(&description.remove(0));
        Failure {
            code,
            params: description,
        }
    }

    /// The `[code, params…]` list as sent on the wire.
    pub fn description(&self) -> Vec<String> {
        std::iter::once(self.code.as_str().to_owned())
            .chain(self.params.iter().cloned())
            .collect()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.code)?;
        if !self.params.is_empty() {
            write!(f, " [{}]", self.params.join("; "))?;
        }
        Ok(())
    }
}

impl std::error::Error for Failure {}

/// How a host failed to give a well-formed XAPI answer. Only silence is evidence of a dead
/// host; a refusal shows a powered host whose xapi is down (a toolstack restart looks the
/// same for a minute or two); anything else shows something answering that cannot be trusted
/// (a rotated certificate, a proxy, a broken xapi) and never counts as dead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoAnswer {
    /// No route, connect timeout or read timeout.
    Silent,
    /// Connection refused, or closed with no HTTP answer.
    Refused,
    /// TLS failure or pin mismatch, an HTTP error status, an undecodable or oversized body.
    Unverifiable,
}

impl NoAnswer {
    /// `silent`, `refused` or `unverifiable`.
    pub fn as_str(self) -> &'static str {
        match self {
            NoAnswer::Silent => "silent",
            NoAnswer::Refused => "refused",
            NoAnswer::Unverifiable => "unverifiable",
        }
    }
}

/// Everything a call to a host can end in besides a result.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The host answered with an API failure: it is up and speaking XAPI.
    #[error("XAPI failure: {0}")]
    Api(#[from] Failure),
    /// No TCP connection could be made (refused, unreachable, DNS).
    #[error("cannot connect to {address}: {message}")]
    Connect {
        /// The host address.
        address: String,
        /// The underlying error, as text.
        message: String,
        /// The host itself refused the connection (it is up, nothing listens on the port).
        refused: bool,
    },
    /// The call did not complete in time (connect or read).
    #[error("{method} to {address} timed out after {seconds:.1} s")]
    Timeout {
        /// The host address.
        address: String,
        /// The XAPI method.
        method: String,
        /// The limit that was hit.
        seconds: f64,
    },
    /// The TLS handshake failed or the certificate did not match its pin or CA.
    #[error("TLS with {address} failed: {message}")]
    Tls {
        /// The host address.
        address: String,
        /// The underlying error, as text.
        message: String,
    },
    /// The connection broke mid-call, or another transport problem.
    #[error("transport error with {address}: {message}")]
    Transport {
        /// The host address.
        address: String,
        /// The underlying error, as text.
        message: String,
    },
    /// The server answered with an HTTP status other than 200 (xapi uses 500 for malformed
    /// requests, xapi-notes.md §1.1).
    #[error("{address} answered HTTP {status}")]
    HttpStatus {
        /// The host address.
        address: String,
        /// The status code.
        status: u16,
    },
    /// The answer exceeded the configured size limit; it was not read to the end.
    #[error("answer from {address} exceeds {limit} bytes")]
    TooLarge {
        /// The host address.
        address: String,
        /// The limit in bytes.
        limit: usize,
    },
    /// The answer was not a well-formed XML-RPC response, or not of the expected type.
    #[error("bad answer from {address} to {method}: {source}")]
    Decode {
        /// The host address.
        address: String,
        /// The XAPI method.
        method: String,
        /// What was wrong.
        #[source]
        source: WireError,
    },
    /// A standard XML-RPC `<fault>` (xapi never sends one: something else answered).
    #[error("XML-RPC fault {code} from {address}: {message}")]
    Fault {
        /// The host address.
        address: String,
        /// `faultCode`.
        code: i64,
        /// `faultString`.
        message: String,
    },
    /// An `HOST_IS_SLAVE` redirect led to another slave, or back, too many times.
    #[error("HOST_IS_SLAVE redirects did not reach a master: {0}")]
    RedirectLoop(String),
    /// An `Async.` task failed, was cancelled or did not finish in time.
    #[error("task {task}: {message}")]
    Task {
        /// The task reference.
        task: String,
        /// What happened.
        message: String,
    },
    /// The client was configured wrongly (bad URL, unreadable CA bundle, bad pin).
    #[error("client configuration: {0}")]
    Config(String),
}

impl Error {
    /// The API failure, if the host answered with one.
    pub fn failure(&self) -> Option<&Failure> {
        match self {
            Error::Api(f) => Some(f),
            _ => None,
        }
    }

    /// Whether the API failure code is `code`.
    pub fn is(&self, code: &ErrorCode) -> bool {
        self.failure().is_some_and(|f| &f.code == code)
    }

    /// Whether the host answered at all with a well-formed XAPI response: API failures prove
    /// a live xapi; transport errors and garbage do not.
    pub fn host_answered(&self) -> bool {
        matches!(self, Error::Api(_))
    }

    /// For an error that is no well-formed XAPI answer, how the host failed to give one
    /// (`None` for an API failure: the host answered).
    pub fn no_answer(&self) -> Option<NoAnswer> {
        Some(match self {
            Error::Api(_) => return None,
            Error::Timeout { .. } | Error::Connect { refused: false, .. } => NoAnswer::Silent,
            // A peer that closes the connection without an HTTP answer is a host that is up
            // with no xapi behind its port (on 443, stunnel completes the handshake even then).
            Error::Connect { refused: true, .. } | Error::Transport { .. } => NoAnswer::Refused,
            Error::Tls { .. }
            | Error::HttpStatus { .. }
            | Error::TooLarge { .. }
            | Error::Decode { .. }
            | Error::Fault { .. }
            | Error::RedirectLoop(_)
            | Error::Task { .. }
            | Error::Config(_) => NoAnswer::Unverifiable,
        })
    }

    /// A short, bounded label for metrics: `api`, `connect`, `timeout`, `tls`, `transport`,
    /// `http_status`, `too_large`, `decode`, `fault`, `redirect_loop`, `task`, `config`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Api(_) => "api",
            Error::Connect { .. } => "connect",
            Error::Timeout { .. } => "timeout",
            Error::Tls { .. } => "tls",
            Error::Transport { .. } => "transport",
            Error::HttpStatus { .. } => "http_status",
            Error::TooLarge { .. } => "too_large",
            Error::Decode { .. } => "decode",
            Error::Fault { .. } => "fault",
            Error::RedirectLoop(_) => "redirect_loop",
            Error::Task { .. } => "task",
            Error::Config(_) => "config",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_code_round_trips() {
        for code in ErrorCode::KNOWN {
            assert_eq!(&ErrorCode::parse(code.as_str()), code);
        }
        assert_eq!(
            ErrorCode::parse("NEW_IN_2030"),
            ErrorCode::Other("NEW_IN_2030".into())
        );
    }

    #[test]
    fn failure_from_description() {
        let f = Failure::from_description(vec!["HOST_IS_SLAVE".into(), "192.0.2.10".into()]);
        assert_eq!(f.code, ErrorCode::HostIsSlave);
        assert_eq!(f.params, vec!["192.0.2.10"]);
        assert_eq!(f.to_string(), "HOST_IS_SLAVE [192.0.2.10]");
        assert_eq!(f.description(), vec!["HOST_IS_SLAVE", "192.0.2.10"]);
    }
}
