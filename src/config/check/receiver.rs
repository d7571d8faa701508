//! `receiver`: mode and webhook authentication, TLS, journal, confirmation and timing, lease,
//! fence budget.

use super::Checker;
use crate::config::model::{
    FenceBudget, MaxUnhealthy, Mode, ReceiverAuth, ReceiverConfig, ReceiverTls, StormLimit,
    defaults,
};
use crate::config::raw::{Located, RawAuth, RawReceiver};

impl Checker {
    pub(super) fn receiver(&mut self, located: &Located<RawReceiver>) -> ReceiverConfig {
        let raw = &located.value;
        let default = ReceiverConfig::default();
        let mode = raw.mode.as_ref().map_or(Mode::Observe, |mode| mode.value);
        let auth = raw.auth.as_ref().and_then(|auth| self.auth(auth));
        let tls = raw.tls.as_ref().map(|tls| ReceiverTls {
            cert_file: self.path(&tls.value.cert_file, "cert_file"),
            key_file: self.path(&tls.value.key_file, "key_file"),
            client_ca_file: tls
                .value
                .client_ca_file
                .as_ref()
                .map(|path| self.path(path, "client_ca_file")),
        });
        if let Some(mode) = raw.mode.as_ref().filter(|m| m.value != Mode::Observe)
            && raw.auth.is_none()
            && !self.tainted(located)
        {
            self.error(
                mode.pos,
                format!(
                    "`mode: {}` needs `receiver.auth`: the receiver refuses to act on \
                     unauthenticated webhooks",
                    mode.value
                ),
            );
        }
        let fence_budget = match &raw.fence_budget {
            None => FenceBudget::default(),
            Some(budget) => FenceBudget {
                max_fences: self.positive(
                    budget.value.max_fences.as_ref(),
                    "max_fences",
                    defaults::MAX_FENCES,
                ),
                window: self.seconds(
                    budget.value.window_seconds.as_ref(),
                    "window_seconds",
                    defaults::FENCE_WINDOW_SECONDS,
                ),
            },
        };
        let storm = match &raw.storm {
            None => StormLimit::default(),
            Some(storm) => StormLimit {
                max_unhealthy: match &storm.value.max_unhealthy {
                    None => StormLimit::default().max_unhealthy,
                    Some(text) => match parse_max_unhealthy(&text.value) {
                        Ok(limit) => limit,
                        Err(why) => {
                            self.error(text.pos, format!("`max_unhealthy` {why}"));
                            StormLimit::default().max_unhealthy
                        }
                    },
                },
                window: self.seconds(
                    storm.value.window_seconds.as_ref(),
                    "window_seconds",
                    defaults::STORM_WINDOW_SECONDS,
                ),
                cooldown: self.seconds_or_zero(
                    storm.value.cooldown_seconds.as_ref(),
                    "cooldown_seconds",
                    defaults::STORM_COOLDOWN_SECONDS,
                ),
            },
        };
        let step_timeout = self.seconds(
            raw.step_timeout_seconds.as_ref(),
            "step_timeout_seconds",
            defaults::STEP_TIMEOUT_SECONDS,
        );
        let pool_lease = self.seconds(
            raw.pool_lease_seconds.as_ref(),
            "pool_lease_seconds",
            defaults::POOL_LEASE_SECONDS,
        );
        let lease_or_step = raw
            .pool_lease_seconds
            .as_ref()
            .or(raw.step_timeout_seconds.as_ref());
        if let Some(lease) = lease_or_step
            && pool_lease <= step_timeout * 2
        {
            // A lease must outlive the step that runs between two renewals, with room to spare.
            self.error(
                lease.pos,
                format!(
                    "`pool_lease_seconds` ({}) must exceed twice `step_timeout_seconds` ({}): a lease that expires while a step runs lets another receiver act",
                    pool_lease.as_secs(),
                    step_timeout.as_secs()
                ),
            );
        }
        ReceiverConfig {
            listen: self.listen(raw.listen.as_ref(), default.listen),
            mode,
            auth,
            tls,
            journal_path: raw
                .journal_path
                .as_ref()
                .map_or(default.journal_path, |path| self.path(path, "journal_path")),
            kill_switch_file: raw
                .kill_switch_file
                .as_ref()
                .map(|path| self.path(path, "kill_switch_file")),
            auth_reads: raw.auth_reads.as_ref().is_some_and(|v| v.value),
            max_body_bytes: self.positive(
                raw.max_body_bytes.as_ref(),
                "max_body_bytes",
                defaults::MAX_BODY_BYTES,
            ),
            confirm_window: self.seconds(
                raw.confirm_window_seconds.as_ref(),
                "confirm_window_seconds",
                defaults::CONFIRM_WINDOW_SECONDS,
            ),
            confirm_probes: self.positive(
                raw.confirm_probes.as_ref(),
                "confirm_probes",
                defaults::CONFIRM_PROBES,
            ),
            refused_grace: self.seconds_or_zero(
                raw.refused_grace_seconds.as_ref(),
                "refused_grace_seconds",
                defaults::REFUSED_GRACE_SECONDS,
            ),
            rejoin_wait: self.seconds_or_zero(
                raw.rejoin_wait_seconds.as_ref(),
                "rejoin_wait_seconds",
                defaults::REJOIN_WAIT_SECONDS,
            ),
            rejoin_healthy: self.seconds_or_zero(
                raw.rejoin_healthy_seconds.as_ref(),
                "rejoin_healthy_seconds",
                defaults::REJOIN_HEALTHY_SECONDS,
            ),
            attestation_max_age: self.seconds(
                raw.attestation_max_age_seconds.as_ref(),
                "attestation_max_age_seconds",
                defaults::ATTESTATION_MAX_AGE_SECONDS,
            ),
            step_timeout,
            pool_lease,
            startup_quiet: self.seconds_or_zero(
                raw.startup_quiet_seconds.as_ref(),
                "startup_quiet_seconds",
                defaults::STARTUP_QUIET_SECONDS,
            ),
            host_cooldown: self.seconds(
                raw.host_cooldown_seconds.as_ref(),
                "host_cooldown_seconds",
                defaults::HOST_COOLDOWN_SECONDS,
            ),
            fence_budget,
            storm,
        }
    }

    fn auth(&mut self, located: &Located<RawAuth>) -> Option<ReceiverAuth> {
        let raw = &located.value;
        match (&raw.bearer_token_file, &raw.basic) {
            (Some(file), None) => Some(ReceiverAuth::Bearer {
                token_file: self.path(file, "bearer_token_file"),
            }),
            (None, Some(basic)) => Some(ReceiverAuth::Basic {
                username: self.non_empty(&basic.value.username, "username"),
                password_file: self.path(&basic.value.password_file, "password_file"),
            }),
            (Some(_), Some(basic)) => {
                self.error(
                    basic.pos,
                    "`receiver.auth` sets both `bearer_token_file` and `basic`; keep one",
                );
                None
            }
            (None, None) => {
                if !self.tainted(located) {
                    self.error(
                        located.pos,
                        "`receiver.auth` needs `bearer_token_file` or `basic`",
                    );
                }
                None
            }
        }
    }
}

/// `3` (hosts) or `50%` (of the pool's hosts, 0 to 100).
fn parse_max_unhealthy(text: &str) -> Result<MaxUnhealthy, String> {
    let text = text.trim();
    let wrong = || {
        format!(
            "must be a number of hosts (`2`) or a percentage of the pool's hosts (`50%`), got `{text}`"
        )
    };
    match text.strip_suffix('%') {
        Some(percent) => match percent.trim().parse::<u32>() {
            Ok(p) if p <= 100 => Ok(MaxUnhealthy::Percent(p)),
            _ => Err(wrong()),
        },
        None => text.parse().map(MaxUnhealthy::Count).map_err(|_| wrong()),
    }
}
