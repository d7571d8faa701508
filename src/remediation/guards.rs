//! The interlocks that stand between a plan and any action (architecture.md §6). Each guard is a
//! small pure function of [`Facts`] gathered fresh at action time, returning allow or block
//! with a reason; a fact that could not be established blocks (fail closed).
//!
//! # Guarantees
//! - [`decide`] allows only when every guard allows; it reports every blocking reason, not just
//!   the first, so the journal says everything that stood in the way.
//! - An unknown fact (`None`) never allows.
//!

use std::fmt;
use std::time::Duration;

use super::words::spelled;
use crate::config::{MaxUnhealthy, Mode};

/// Facts about one pending action, gathered at action time. `None` means it could not be
/// established, which blocks.
#[derive(Debug, Clone, PartialEq)]
pub struct Facts {
    /// Unix time now.
    pub now: f64,
    /// The receiver's mode.
    pub mode: Mode,
    /// An operator approved this remediation (`xenguard journal approve ID`).
    pub approved: bool,
    /// The kill-switch file exists.
    pub kill_switch: Option<bool>,
    /// XAPI HA is enabled on the pool (xapi then fences and restarts by itself).
    pub ha_enabled: Option<bool>,
    /// Other hosts of the pool the receiver reached itself, and how many other hosts there are.
    pub others_reachable: Option<(usize, usize)>,
    /// Fences of this pool within the budget window.
    pub fences_in_window: Option<u32>,
    /// Unix time of the last remediation of this host that acted.
    pub last_action_on_host: Option<Option<f64>>,
    /// The alert behind the plan is still firing.
    pub alert_firing: Option<bool>,
    /// How long the receiver has run (monotonic: a wall-clock step changes nothing).
    pub running_for: Duration,
    /// The host is in maintenance mode (`other_config:maintenance_mode`).
    pub host_in_maintenance: Option<bool>,
    /// What the fresh probes of the suspect host showed.
    pub suspect_probes: Option<SuspectProbes>,
    /// The pool still reaches the suspect: the master's call forwarded to it answered (slave),
    /// or a slave's database call through it answered (master).
    pub pool_reaches_suspect: Option<bool>,
    /// Hosts of the pool unhealthy within the storm window (the suspect, others silent now,
    /// hosts named by the pool's recent remediations), and the pool's hosts.
    pub unhealthy: Option<(usize, usize)>,
    /// Unix time of the pool's last stand-down for a storm.
    pub last_storm: Option<Option<f64>>,
}

/// What the fresh probes of the suspect showed, by kind of answer.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SuspectProbes {
    /// Probes made.
    pub made: u32,
    /// Well-formed XAPI answers.
    pub answered: u32,
    /// Something answered that could not be verified (TLS or pin failure, HTTP error status,
    /// a body that is no XAPI answer).
    pub unverifiable: u32,
    /// Connections refused or closed unanswered: the host is up, its xapi is not.
    pub refused: u32,
    /// Seconds from the first refusal to the last probe.
    pub refused_for: f64,
}

/// Limits the guards apply (from `receiver.*` in the configuration).
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Fences allowed per pool per window.
    pub max_fences: u32,
    /// Length of that window.
    pub fence_window: Duration,
    /// No second action on the same host within this time.
    pub host_cooldown: Duration,
    /// No action this soon after the receiver starts.
    pub startup_quiet: Duration,
    /// A host whose xapi refuses connections must refuse this long before it is believed dead
    /// (a toolstack restart refuses for 30-90 s).
    pub refused_grace: Duration,
    /// More unhealthy hosts than this in a pool is a storm.
    pub max_unhealthy: MaxUnhealthy,
    /// No fence in a pool this soon after a storm.
    pub storm_cooldown: Duration,
}

/// Why an action is blocked.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    /// `observe` mode: plans are journaled, never acted on.
    ObserveMode,
    /// `approve` mode and no approval yet.
    AwaitingApproval,
    /// The kill-switch file exists.
    KillSwitch,
    /// XAPI HA is on: xapi owns recovery.
    HaEnabled,
    /// The receiver does not see a strict majority of the other hosts: it may be the one cut off.
    NoQuorum {
        /// Other hosts reached.
        reachable: usize,
        /// Other hosts in the pool.
        total: usize,
    },
    /// The pool's fence budget for the window is spent.
    FenceBudgetSpent {
        /// Fences in the window.
        used: u32,
        /// Allowed.
        max: u32,
    },
    /// The host was acted on too recently (it flaps).
    HostCooldown {
        /// Seconds left.
        remaining: f64,
    },
    /// The alert is no longer firing.
    AlertNotFiring,
    /// The receiver started too recently to trust its view.
    StartupQuiet {
        /// Seconds left.
        remaining: f64,
    },
    /// The host is in maintenance.
    HostInMaintenance,
    /// The suspect host answered at least one of the fresh probes: it is not down.
    HostAnswers {
        /// Probes it answered.
        answered: u32,
        /// Probes made.
        probes: u32,
    },
    /// Something at the suspect's address answered, but not as a verifiable xapi: it is
    /// powered and networked, so it is not dead (a rotated certificate, a missing pin, a proxy).
    HostUnverifiable {
        /// Probes answered that way.
        unverifiable: u32,
        /// Probes made.
        probes: u32,
    },
    /// The suspect refuses connections (host up, xapi down) for less than the grace: it may
    /// be a toolstack restart.
    XapiMayBeRestarting {
        /// Seconds it has refused so far.
        refused_for: f64,
        /// Seconds it must refuse.
        grace: f64,
    },
    /// The pool still reaches the suspect (the master reaches a slave, or the slaves reach
    /// their master): only the receiver lost it.
    HostAnswersPool,
    /// Another receiver holds the pool's lease (or its key holds something else).
    PoolLeaseHeld(String),
    /// The journal holds a phase or run state this version cannot read: nothing more is done.
    UnreadableJournal(String),
    /// Too many of the pool's hosts are unhealthy at once: the network, the storage or the
    /// receiver is the likelier cause, so the whole pool stands down.
    Storm {
        /// Unhealthy hosts within the window.
        unhealthy: usize,
        /// The pool's hosts.
        hosts: usize,
        /// How many are believed.
        allowed: usize,
    },
    /// The pool stood down for a storm too recently.
    StormCooldown {
        /// Seconds left.
        remaining: f64,
    },
    /// A fact could not be established.
    Unknown(&'static str),
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::ObserveMode => f.write_str("observe mode: plans are journaled, never acted on"),
            Reason::AwaitingApproval => {
                f.write_str("approve mode: waiting for `xenguard journal approve`")
            }
            Reason::KillSwitch => f.write_str("the kill-switch file exists"),
            Reason::HaEnabled => f.write_str("XAPI HA is enabled: xapi owns recovery"),
            Reason::NoQuorum { reachable, total } => write!(
                f,
                "no quorum: reached {reachable} of {total} other hosts; the receiver may be the one cut off"
            ),
            Reason::FenceBudgetSpent { used, max } => {
                write!(f, "fence budget spent: {used} of {max} in the window")
            }
            Reason::HostCooldown { remaining } => write!(f, "host cooldown: {remaining:.0} s left"),
            Reason::AlertNotFiring => f.write_str("the alert is no longer firing"),
            Reason::StartupQuiet { remaining } => write!(
                f,
                "receiver started recently: {remaining:.0} s of quiet left"
            ),
            Reason::HostInMaintenance => f.write_str("the host is in maintenance mode"),
            Reason::HostAnswers { answered, probes } => write!(
                f,
                "the host answered {answered} of {probes} fresh probes: it is not down"
            ),
            Reason::HostUnverifiable {
                unverifiable,
                probes,
            } => write!(
                f,
                "something answered {unverifiable} of {probes} fresh probes but not as a verifiable xapi (TLS, certificate pin, HTTP status or garbage): the host is powered and networked, not dead"
            ),
            Reason::XapiMayBeRestarting { refused_for, grace } => write!(
                f,
                "the host refuses connections (up, xapi down) for {refused_for:.0} s of the {grace:.0} s grace: it may be a toolstack restart"
            ),
            Reason::HostAnswersPool => f.write_str(
                "the pool still reaches the host (through its master or its slaves): only the receiver lost it",
            ),
            Reason::PoolLeaseHeld(why) => write!(f, "{why}: it acts on this pool"),
            Reason::UnreadableJournal(why) => write!(
                f,
                "the journal cannot be read ({why}): nothing more is done; check the pool by hand"
            ),
            Reason::Storm {
                unhealthy,
                hosts,
                allowed,
            } => write!(
                f,
                "storm: {unhealthy} of the pool's {hosts} hosts unhealthy (at most {allowed} believed): the network, the storage or the receiver is the likelier cause; the pool stands down"
            ),
            Reason::StormCooldown { remaining } => write!(
                f,
                "the pool stood down for a storm recently: {remaining:.0} s of cooldown left"
            ),
            Reason::Unknown(what) => write!(f, "cannot establish {what}: failing closed"),
        }
    }
}

impl Reason {
    /// A short stable name for metric labels.
    pub fn code(&self) -> ReasonCode {
        match self {
            Reason::ObserveMode => ReasonCode::ObserveMode,
            Reason::AwaitingApproval => ReasonCode::AwaitingApproval,
            Reason::KillSwitch => ReasonCode::KillSwitch,
            Reason::HaEnabled => ReasonCode::HaEnabled,
            Reason::NoQuorum { .. } => ReasonCode::NoQuorum,
            Reason::FenceBudgetSpent { .. } => ReasonCode::FenceBudgetSpent,
            Reason::HostCooldown { .. } => ReasonCode::HostCooldown,
            Reason::AlertNotFiring => ReasonCode::AlertNotFiring,
            Reason::StartupQuiet { .. } => ReasonCode::StartupQuiet,
            Reason::HostInMaintenance => ReasonCode::HostInMaintenance,
            Reason::HostAnswers { .. } => ReasonCode::HostAnswers,
            Reason::Unknown(_) => ReasonCode::UnknownFact,
            Reason::HostUnverifiable { .. } => ReasonCode::HostUnverifiable,
            Reason::XapiMayBeRestarting { .. } => ReasonCode::XapiMayBeRestarting,
            Reason::HostAnswersPool => ReasonCode::HostAnswersPool,
            Reason::PoolLeaseHeld(_) => ReasonCode::PoolLeaseHeld,
            Reason::UnreadableJournal(_) => ReasonCode::UnreadableJournal,
            Reason::Storm { .. } => ReasonCode::Storm,
            Reason::StormCooldown { .. } => ReasonCode::StormCooldown,
        }
    }
}

spelled! {
    /// A [`Reason`]'s metric label (`xenguard_remediation_blocks_total{reason}`).
    pub enum ReasonCode {
        /// [`Reason::ObserveMode`].
        ObserveMode = "observe_mode",
        /// [`Reason::AwaitingApproval`].
        AwaitingApproval = "awaiting_approval",
        /// [`Reason::KillSwitch`].
        KillSwitch = "kill_switch",
        /// [`Reason::HaEnabled`].
        HaEnabled = "ha_enabled",
        /// [`Reason::NoQuorum`].
        NoQuorum = "no_quorum",
        /// [`Reason::FenceBudgetSpent`].
        FenceBudgetSpent = "fence_budget_spent",
        /// [`Reason::HostCooldown`].
        HostCooldown = "host_cooldown",
        /// [`Reason::AlertNotFiring`].
        AlertNotFiring = "alert_not_firing",
        /// [`Reason::StartupQuiet`].
        StartupQuiet = "startup_quiet",
        /// [`Reason::HostInMaintenance`].
        HostInMaintenance = "host_in_maintenance",
        /// [`Reason::HostAnswers`].
        HostAnswers = "host_answers",
        /// [`Reason::Unknown`].
        UnknownFact = "unknown_fact",
        /// [`Reason::HostUnverifiable`].
        HostUnverifiable = "host_unverifiable",
        /// [`Reason::XapiMayBeRestarting`].
        XapiMayBeRestarting = "xapi_may_be_restarting",
        /// [`Reason::HostAnswersPool`].
        HostAnswersPool = "host_answers_pool",
        /// [`Reason::PoolLeaseHeld`].
        PoolLeaseHeld = "pool_lease_held",
        /// [`Reason::UnreadableJournal`].
        UnreadableJournal = "unreadable_journal",
        /// [`Reason::Storm`].
        Storm = "storm",
        /// [`Reason::StormCooldown`].
        StormCooldown = "storm_cooldown",
    }
}

/// A guard's answer.
pub type Verdict = Result<(), Reason>;

fn known<T: Copy>(fact: Option<T>, what: &'static str) -> Result<T, Reason> {
    fact.ok_or(Reason::Unknown(what))
}

/// observe never acts; approve acts once approved; auto acts.
pub fn mode(f: &Facts) -> Verdict {
    match (f.mode, f.approved) {
        (Mode::Observe, _) => Err(Reason::ObserveMode),
        (Mode::Approve, false) => Err(Reason::AwaitingApproval),
        _ => Ok(()),
    }
}

/// The kill switch.
pub fn kill_switch(f: &Facts) -> Verdict {
    if known(f.kill_switch, "the kill switch")? {
        Err(Reason::KillSwitch)
    } else {
        Ok(())
    }
}

/// XAPI HA armed.
pub fn ha(f: &Facts) -> Verdict {
    if known(f.ha_enabled, "the pool's HA state")? {
        Err(Reason::HaEnabled)
    } else {
        Ok(())
    }
}

/// A strict majority of the other hosts must be reachable from the receiver. A two-host pool
/// has one other host, which must be reachable.
pub fn quorum(f: &Facts) -> Verdict {
    let (reachable, total) = known(f.others_reachable, "which hosts the receiver reaches")?;
    if total > 0 && reachable * 2 > total {
        Ok(())
    } else {
        Err(Reason::NoQuorum { reachable, total })
    }
}

/// Fences per pool per window.
pub fn fence_budget(f: &Facts, limits: &Limits) -> Verdict {
    let used = known(f.fences_in_window, "the pool's recent fences")?;
    if used < limits.max_fences {
        Ok(())
    } else {
        Err(Reason::FenceBudgetSpent {
            used,
            max: limits.max_fences,
        })
    }
}

/// How far in the future a journaled time may lie before it counts as unknown (the journal is
/// written by this host's clock; more than this means the clock was stepped back).
pub const CLOCK_SKEW: f64 = 5.0;

/// Per-host cooldown after an action. A last action dated in the future has no known age.
pub fn cooldown(f: &Facts, limits: &Limits) -> Verdict {
    match known(f.last_action_on_host, "the host's last remediation")? {
        Some(at) if at > f.now + CLOCK_SKEW => Err(Reason::Unknown(
            "how long ago the host was last acted on (journaled in the future: the clock went back)",
        )),
        Some(at) if f.now - at < limits.host_cooldown.as_secs_f64() => Err(Reason::HostCooldown {
            remaining: limits.host_cooldown.as_secs_f64() - (f.now - at),
        }),
        _ => Ok(()),
    }
}

/// The alert must still be firing at action time.
pub fn still_firing(f: &Facts) -> Verdict {
    if known(f.alert_firing, "whether the alert still fires")? {
        Ok(())
    } else {
        Err(Reason::AlertNotFiring)
    }
}

/// No action right after the receiver starts.
pub fn startup_quiet(f: &Facts, limits: &Limits) -> Verdict {
    let elapsed = f.running_for.as_secs_f64();
    let quiet = limits.startup_quiet.as_secs_f64();
    if elapsed >= quiet {
        Ok(())
    } else {
        Err(Reason::StartupQuiet {
            remaining: quiet - elapsed,
        })
    }
}

/// Hosts in maintenance are left alone.
pub fn maintenance(f: &Facts) -> Verdict {
    if known(f.host_in_maintenance, "the host's maintenance state")? {
        Err(Reason::HostInMaintenance)
    } else {
        Ok(())
    }
}

/// The suspect must have given no answer to any fresh probe (and some were made): silence,
/// or refusals that outlasted the grace. Anything that answered, verifiably or not, is alive.
pub fn suspect_down(f: &Facts, limits: &Limits) -> Verdict {
    let p = known(f.suspect_probes, "whether the host answers")?;
    if p.answered > 0 || p.made == 0 {
        return Err(Reason::HostAnswers {
            answered: p.answered,
            probes: p.made,
        });
    }
    if p.unverifiable > 0 {
        return Err(Reason::HostUnverifiable {
            unverifiable: p.unverifiable,
            probes: p.made,
        });
    }
    let grace = limits.refused_grace.as_secs_f64();
    if p.refused > 0 && p.refused_for < grace {
        return Err(Reason::XapiMayBeRestarting {
            refused_for: p.refused_for,
            grace,
        });
    }
    Ok(())
}

/// The pool's own view: a host its master (or its slaves) still reach is not dead.
pub fn pool_view(f: &Facts) -> Verdict {
    if known(
        f.pool_reaches_suspect,
        "whether the pool still reaches the host",
    )? {
        Err(Reason::HostAnswersPool)
    } else {
        Ok(())
    }
}

/// Too many unhealthy hosts at once stand the pool down; after a stand-down, no fence for the
/// cooldown. A stand-down dated in the future (the clock went back) has no known age.
pub fn storm(f: &Facts, limits: &Limits) -> Verdict {
    let (unhealthy, hosts) = known(f.unhealthy, "how many of the pool's hosts are unhealthy")?;
    let allowed = limits.max_unhealthy.allowed(hosts);
    if unhealthy > allowed {
        return Err(Reason::Storm {
            unhealthy,
            hosts,
            allowed,
        });
    }
    let cooldown = limits.storm_cooldown.as_secs_f64();
    match known(f.last_storm, "the pool's last storm")? {
        Some(at) if at > f.now + CLOCK_SKEW => Err(Reason::Unknown(
            "how long ago the pool stood down for a storm (journaled in the future: the clock went back)",
        )),
        Some(at) if f.now - at < cooldown => Err(Reason::StormCooldown {
            remaining: cooldown - (f.now - at),
        }),
        _ => Ok(()),
    }
}

/// The guards of a plan that fences no host and touches no VM (a split brain): mode, kill
/// switch, HA, quorum, the alert still firing, the start-up quiet.
pub fn decide_without_fence(f: &Facts, limits: &Limits) -> Result<(), Vec<Reason>> {
    let verdicts = [
        mode(f),
        kill_switch(f),
        ha(f),
        quorum(f),
        still_firing(f),
        startup_quiet(f, limits),
    ];
    let reasons: Vec<Reason> = verdicts.into_iter().filter_map(Result::err).collect();
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Runs every guard; `Ok` only if all allow, else every reason.
pub fn decide(f: &Facts, limits: &Limits) -> Result<(), Vec<Reason>> {
    let verdicts = [
        mode(f),
        kill_switch(f),
        ha(f),
        quorum(f),
        fence_budget(f, limits),
        cooldown(f, limits),
        still_firing(f),
        startup_quiet(f, limits),
        maintenance(f),
        suspect_down(f, limits),
        pool_view(f),
        storm(f, limits),
    ];
    let reasons: Vec<Reason> = verdicts.into_iter().filter_map(Result::err).collect();
    if reasons.is_empty() {
        Ok(())
    } else {
        Err(reasons)
    }
}

/// Facts that allow and limits, for the tests here and in `decision`.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::*;

    pub(crate) fn limits() -> Limits {
        Limits {
            max_fences: 1,
            fence_window: Duration::from_secs(3600),
            host_cooldown: Duration::from_secs(3600),
            startup_quiet: Duration::from_secs(120),
            refused_grace: Duration::from_secs(120),
            max_unhealthy: MaxUnhealthy::Percent(50),
            storm_cooldown: Duration::from_secs(1800),
        }
    }

    /// Everything allows at `now`.
    pub(crate) fn clear(now: f64) -> Facts {
        Facts {
            now,
            mode: Mode::Auto,
            approved: false,
            kill_switch: Some(false),
            ha_enabled: Some(false),
            others_reachable: Some((2, 2)),
            fences_in_window: Some(0),
            last_action_on_host: Some(None),
            alert_firing: Some(true),
            running_for: Duration::from_secs(10_000),
            host_in_maintenance: Some(false),
            suspect_probes: Some(SuspectProbes {
                made: 3,
                ..SuspectProbes::default()
            }),
            pool_reaches_suspect: Some(false),
            unhealthy: Some((1, 3)),
            last_storm: Some(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        fixtures::limits()
    }

    fn silent(made: u32) -> SuspectProbes {
        SuspectProbes {
            made,
            ..SuspectProbes::default()
        }
    }

    fn clear() -> Facts {
        fixtures::clear(10_000.0)
    }

    #[test]
    fn all_clear_allows() {
        assert_eq!(decide(&clear(), &limits()), Ok(()));
    }

    #[test]
    fn each_guard_blocks_on_its_own() {
        let cases: Vec<(Facts, Reason)> = vec![
            (
                Facts {
                    mode: Mode::Observe,
                    ..clear()
                },
                Reason::ObserveMode,
            ),
            (
                Facts {
                    mode: Mode::Approve,
                    ..clear()
                },
                Reason::AwaitingApproval,
            ),
            (
                Facts {
                    kill_switch: Some(true),
                    ..clear()
                },
                Reason::KillSwitch,
            ),
            (
                Facts {
                    ha_enabled: Some(true),
                    ..clear()
                },
                Reason::HaEnabled,
            ),
            (
                Facts {
                    others_reachable: Some((1, 2)),
                    ..clear()
                },
                Reason::NoQuorum {
                    reachable: 1,
                    total: 2,
                },
            ),
            (
                Facts {
                    fences_in_window: Some(1),
                    ..clear()
                },
                Reason::FenceBudgetSpent { used: 1, max: 1 },
            ),
            (
                Facts {
                    last_action_on_host: Some(Some(9_000.0)),
                    ..clear()
                },
                Reason::HostCooldown { remaining: 2_600.0 },
            ),
            (
                Facts {
                    alert_firing: Some(false),
                    ..clear()
                },
                Reason::AlertNotFiring,
            ),
            (
                Facts {
                    running_for: Duration::from_secs(50),
                    ..clear()
                },
                Reason::StartupQuiet { remaining: 70.0 },
            ),
            (
                Facts {
                    host_in_maintenance: Some(true),
                    ..clear()
                },
                Reason::HostInMaintenance,
            ),
            (
                Facts {
                    suspect_probes: Some(SuspectProbes {
                        answered: 1,
                        ..silent(3)
                    }),
                    ..clear()
                },
                Reason::HostAnswers {
                    answered: 1,
                    probes: 3,
                },
            ),
            (
                Facts {
                    suspect_probes: Some(SuspectProbes {
                        unverifiable: 3,
                        ..silent(3)
                    }),
                    ..clear()
                },
                Reason::HostUnverifiable {
                    unverifiable: 3,
                    probes: 3,
                },
            ),
            (
                Facts {
                    suspect_probes: Some(SuspectProbes {
                        refused: 3,
                        refused_for: 60.0,
                        ..silent(3)
                    }),
                    ..clear()
                },
                Reason::XapiMayBeRestarting {
                    refused_for: 60.0,
                    grace: 120.0,
                },
            ),
            (
                Facts {
                    pool_reaches_suspect: Some(true),
                    ..clear()
                },
                Reason::HostAnswersPool,
            ),
        ];
        for (facts, reason) in cases {
            assert_eq!(decide(&facts, &limits()), Err(vec![reason]));
        }
        assert_eq!(
            decide(
                &Facts {
                    mode: Mode::Approve,
                    approved: true,
                    ..clear()
                },
                &limits()
            ),
            Ok(())
        );
    }

    #[test]
    fn unknown_facts_fail_closed_and_every_reason_is_reported() {
        let unknown = Facts {
            kill_switch: None,
            ha_enabled: None,
            others_reachable: None,
            fences_in_window: None,
            last_action_on_host: None,
            alert_firing: None,
            host_in_maintenance: None,
            suspect_probes: None,
            pool_reaches_suspect: None,
            ..clear()
        };
        let reasons = decide(&unknown, &limits()).unwrap_err();
        assert_eq!(reasons.len(), 9);
        assert!(
            reasons.iter().all(|r| matches!(r, Reason::Unknown(_))),
            "{reasons:?}"
        );
    }

    #[test]
    fn only_silence_or_refusal_past_the_grace_counts_as_dead() {
        let with = |probes: SuspectProbes| {
            suspect_down(
                &Facts {
                    suspect_probes: Some(probes),
                    ..clear()
                },
                &limits(),
            )
        };
        assert!(with(silent(3)).is_ok());
        assert!(with(silent(0)).is_err(), "no probe made proves nothing");
        let refused = |refused_for| SuspectProbes {
            refused: 2,
            refused_for,
            ..silent(3)
        };
        assert!(with(refused(119.9)).is_err());
        assert!(with(refused(120.0)).is_ok(), "refused through the grace");
        // One unverifiable answer among silent ones still means something is there.
        assert!(matches!(
            with(SuspectProbes {
                unverifiable: 1,
                ..refused(500.0)
            }),
            Err(Reason::HostUnverifiable { .. })
        ));
    }

    /// The storm limit by pool size (default: more than half the hosts), a count, and the
    /// cooldown after a stand-down.
    #[test]
    fn a_storm_stands_the_pool_down_and_then_cools_it_down() {
        let with = |unhealthy: usize, hosts: usize, max: MaxUnhealthy| {
            let limits = Limits {
                max_unhealthy: max,
                ..limits()
            };
            let facts = Facts {
                unhealthy: Some((unhealthy, hosts)),
                ..clear()
            };
            storm(&facts, &limits)
        };
        let half = MaxUnhealthy::Percent(50);
        assert_eq!(with(1, 2, half), Ok(()), "a two-host pool loses one");
        assert_eq!(with(1, 3, half), Ok(()));
        assert_eq!(with(2, 5, half), Ok(()));
        assert_eq!(
            with(3, 5, half),
            Err(Reason::Storm {
                unhealthy: 3,
                hosts: 5,
                allowed: 2
            })
        );
        assert!(with(2, 3, half).is_err());
        assert_eq!(with(3, 5, MaxUnhealthy::Count(3)), Ok(()));
        assert!(with(4, 5, MaxUnhealthy::Count(3)).is_err());
        assert!(with(1, 5, MaxUnhealthy::Count(0)).is_err());
        let after = |ago: f64| {
            let facts = Facts {
                last_storm: Some(Some(clear().now - ago)),
                ..clear()
            };
            storm(&facts, &limits())
        };
        assert!(
            matches!(after(600.0), Err(Reason::StormCooldown { remaining }) if remaining == 1200.0)
        );
        assert_eq!(after(1800.0), Ok(()));
        assert!(
            matches!(after(-60.0), Err(Reason::Unknown(_))),
            "dated in the future"
        );
        let unknown = Facts {
            unhealthy: None,
            ..clear()
        };
        assert!(matches!(
            storm(&unknown, &limits()),
            Err(Reason::Unknown(_))
        ));
    }

    #[test]
    fn a_last_action_dated_in_the_future_blocks_the_cooldown() {
        let at = |t: f64| {
            cooldown(
                &Facts {
                    last_action_on_host: Some(Some(t)),
                    ..clear()
                },
                &Limits {
                    host_cooldown: Duration::from_secs(60),
                    ..limits()
                },
            )
        };
        assert!(at(10_000.0 - 61.0).is_ok());
        assert!(matches!(
            at(10_000.0 - 10.0),
            Err(Reason::HostCooldown { .. })
        ));
        assert!(
            at(10_000.0 + 3.0).is_err(),
            "within the skew: a fresh action"
        );
        assert!(matches!(at(10_000.0 + 3600.0), Err(Reason::Unknown(_))));
    }

    #[test]
    fn quorum_needs_a_strict_majority_of_the_others() {
        let with = |reachable, total| {
            quorum(&Facts {
                others_reachable: Some((reachable, total)),
                ..clear()
            })
        };
        assert!(
            with(1, 1).is_ok(),
            "two-host pool: the survivor must be reachable"
        );
        assert!(with(0, 1).is_err());
        assert!(with(2, 3).is_ok());
        assert!(with(1, 3).is_err());
        assert!(with(2, 4).is_err(), "half is not a majority");
        assert!(
            with(0, 0).is_err(),
            "a single-host pool has no one to confirm with"
        );
    }
}
