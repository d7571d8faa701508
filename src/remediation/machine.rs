//! The remediation state machine (architecture.md §6): a pure function from (phase, event) to the
//! next phase and the effects to perform. It never performs anything: the executor does, and
//! journals each phase before issuing its effects.
//!
//! # Expected flow
//! `Planned` → (`AwaitingApproval`) → `Confirming` → `Fencing` → (`Promoting` →
//! `RecoveringSlaves` for a dead master) → `ResettingVms` → `ReleasingLocks` →
//! `ClearingAffinity` → `StartingVms` → `Verifying` → `Done`.
//!
//! # Guarantees
//! - Nothing after `Fencing` is reachable without `FenceConfirmedOff` or an operator's
//!   attestation: no reset, unlock or start of a host that is not known to be off.
//! - A resolved alert aborts a remediation only before it acts (up to `Confirming`); once the
//!   fence is issued the recovery is finished, not abandoned half-way.
//! - On resume after a crash, a remediation that was `Fencing` never issues the fence again: it
//!   reads the BMC back and continues only if the host is off; every later step is re-checked
//!   against live state by its effect (starts check the VM is halted first).
//! - Unexpected events leave the phase unchanged and say so; they never skip a step.

use serde::{Deserialize, Serialize};

use super::guards::Reason;
use super::words::spelled;

spelled! {
    /// A phase's name as journaled.
    pub enum PhaseName {
        /// [`Phase::Planned`].
        Planned = "planned",
        /// [`Phase::AwaitingApproval`].
        AwaitingApproval = "awaiting_approval",
        /// [`Phase::Confirming`].
        Confirming = "confirming",
        /// [`Phase::Fencing`].
        Fencing = "fencing",
        /// [`Phase::AwaitingAttestation`].
        AwaitingAttestation = "awaiting_attestation",
        /// [`Phase::Promoting`].
        Promoting = "promoting",
        /// [`Phase::RecoveringSlaves`].
        RecoveringSlaves = "recovering_slaves",
        /// [`Phase::ResettingVms`].
        ResettingVms = "resetting_vms",
        /// [`Phase::ReleasingLocks`].
        ReleasingLocks = "releasing_locks",
        /// [`Phase::ClearingAffinity`].
        ClearingAffinity = "clearing_affinity",
        /// [`Phase::StartingVms`].
        StartingVms = "starting_vms",
        /// [`Phase::Verifying`].
        Verifying = "verifying",
        /// [`Phase::Done`].
        Done = "done",
        /// [`Phase::Aborted`].
        Aborted = "aborted",
        /// [`Phase::Blocked`].
        Blocked = "blocked",
        /// [`Phase::Failed`].
        Failed = "failed",
        /// [`Phase::Held`].
        Held = "held",
    }
}

impl PhaseName {
    /// Whether a phase of this name is final.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            PhaseName::Done | PhaseName::Aborted | PhaseName::Blocked | PhaseName::Failed
        )
    }
}

/// Where a remediation stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "phase", content = "detail", rename_all = "snake_case")]
pub enum Phase {
    /// Journaled plan, nothing done.
    Planned,
    /// `approve` mode: waiting for an operator.
    AwaitingApproval,
    /// Fresh probes over the confirmation window, quorum, HA, BMC status, guards.
    Confirming,
    /// The fence agent's `off` was issued; the BMC is read back until off.
    Fencing,
    /// No fence agent is configured for the host: only an operator's attestation that it is
    /// off lets the recovery go on.
    AwaitingAttestation,
    /// `emergency_transition_to_master` on a survivor, waiting for its restart.
    Promoting,
    /// `pool.recover_slaves`, compared with the expected survivors.
    RecoveringSlaves,
    /// `host.declare_dead` / `VM.power_state_reset` of the dead host's VMs.
    ResettingVms,
    /// `VDI.remove_from_sm_config` of the dead host's tags.
    ReleasingLocks,
    /// Affinity pointing at the dead host cleared.
    ClearingAffinity,
    /// The VMs that were running started elsewhere.
    StartingVms,
    /// Each VM runs exactly once, or the reason it cannot.
    Verifying,
    /// Finished.
    Done,
    /// Stopped before acting (alert resolved, operator abort).
    Aborted(String),
    /// A guard or the confirmation said no; nothing was done.
    Blocked(Vec<String>),
    /// A step failed after the fence; an operator must look.
    Failed(String),
    /// Stopped after the fence, before the named recovery step (the kill switch, or a
    /// restart in `observe` mode): `xenguard journal resume ID` continues with that step.
    Held(String),
}

impl Phase {
    /// Whether nothing more will happen.
    pub fn is_terminal(&self) -> bool {
        self.kind().is_terminal()
    }

    /// Names of the phases a restart picks up again (all but the terminal ones).
    pub fn open_names() -> Vec<&'static str> {
        PhaseName::ALL
            .iter()
            .filter(|name| !name.is_terminal())
            .map(|name| name.as_str())
            .collect()
    }

    /// The phase's name, without its detail.
    pub fn kind(&self) -> PhaseName {
        match self {
            Phase::Planned => PhaseName::Planned,
            Phase::AwaitingApproval => PhaseName::AwaitingApproval,
            Phase::Confirming => PhaseName::Confirming,
            Phase::Fencing => PhaseName::Fencing,
            Phase::AwaitingAttestation => PhaseName::AwaitingAttestation,
            Phase::Promoting => PhaseName::Promoting,
            Phase::RecoveringSlaves => PhaseName::RecoveringSlaves,
            Phase::ResettingVms => PhaseName::ResettingVms,
            Phase::ReleasingLocks => PhaseName::ReleasingLocks,
            Phase::ClearingAffinity => PhaseName::ClearingAffinity,
            Phase::StartingVms => PhaseName::StartingVms,
            Phase::Verifying => PhaseName::Verifying,
            Phase::Done => PhaseName::Done,
            Phase::Aborted(_) => PhaseName::Aborted,
            Phase::Blocked(_) => PhaseName::Blocked,
            Phase::Failed(_) => PhaseName::Failed,
            Phase::Held(_) => PhaseName::Held,
        }
    }

    /// The phase's name in the journal (`fencing`, `done`, …).
    pub fn name(&self) -> &'static str {
        self.kind().as_str()
    }

    /// The why of a terminal phase (empty for the others).
    pub fn detail(&self) -> String {
        match self {
            Phase::Aborted(why) | Phase::Failed(why) | Phase::Held(why) => why.clone(),
            Phase::Blocked(reasons) => reasons.join("; "),
            _ => String::new(),
        }
    }

    /// The phase a journal row names; `None` for a name this version does not know.
    pub fn from_journal(name: &str, detail: &str) -> Option<Phase> {
        Some(match PhaseName::parse(name)? {
            PhaseName::Planned => Phase::Planned,
            PhaseName::AwaitingApproval => Phase::AwaitingApproval,
            PhaseName::Confirming => Phase::Confirming,
            PhaseName::Fencing => Phase::Fencing,
            PhaseName::AwaitingAttestation => Phase::AwaitingAttestation,
            PhaseName::Promoting => Phase::Promoting,
            PhaseName::RecoveringSlaves => Phase::RecoveringSlaves,
            PhaseName::ResettingVms => Phase::ResettingVms,
            PhaseName::ReleasingLocks => Phase::ReleasingLocks,
            PhaseName::ClearingAffinity => Phase::ClearingAffinity,
            PhaseName::StartingVms => Phase::StartingVms,
            PhaseName::Verifying => Phase::Verifying,
            PhaseName::Done => Phase::Done,
            PhaseName::Aborted => Phase::Aborted(detail.to_owned()),
            PhaseName::Blocked => Phase::Blocked(detail.split("; ").map(str::to_owned).collect()),
            PhaseName::Failed => Phase::Failed(detail.to_owned()),
            // "<step>: why it is held".
            PhaseName::Held => Phase::Held(detail.split(':').next().unwrap_or_default().to_owned()),
        })
    }

    /// Whether the remediation holds its pool: it is acting on it or waits for an
    /// attestation after confirming the host down.
    pub fn holds_pool(&self) -> bool {
        !self.is_terminal() && !matches!(self, Phase::Planned | Phase::AwaitingApproval)
    }

    /// Whether the remediation may still be abandoned without leaving the pool half-recovered.
    pub fn before_acting(&self) -> bool {
        matches!(
            self,
            Phase::Planned
                | Phase::AwaitingApproval
                | Phase::Confirming
                | Phase::AwaitingAttestation
        )
    }
}

/// What happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// The receiver is in `auto` mode, or an approval arrived.
    Go,
    /// The receiver is in `approve` mode and the plan waits.
    NeedsApproval,
    /// The alert resolved.
    Resolved,
    /// An operator aborted it.
    OperatorAbort,
    /// An operator asked a held remediation to go on.
    OperatorResume,
    /// An earlier remediation already recovered the host.
    Superseded(String),
    /// Guards and confirmation passed: the host is down as far as the receiver can tell.
    Confirmed,
    /// Guards or confirmation said no.
    Refused(Vec<Reason>),
    /// The BMC read back off after the fence.
    FenceConfirmedOff,
    /// No fence agent is configured for the host.
    NoFenceAgent,
    /// An operator attested the host is off (instead of a fence).
    Attested,
    /// The fence agent failed or the BMC did not read back off.
    FenceFailed(String),
    /// The current step succeeded.
    StepDone,
    /// The current step failed.
    StepFailed(String),
    /// The current step must not run now and only a person can say when it may (another
    /// receiver took the pool's lease).
    Hold(String),
    /// The receiver restarted and found the remediation in this phase.
    Resumed,
    /// On resume in `Fencing`: what the BMC reports now.
    BmcReads(bool),
}

/// What to do next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Effect {
    /// Gather facts, run the guards and the confirmation check.
    Confirm,
    /// Run the fence agent's `off`, then read back `status` until off.
    Fence,
    /// Read the BMC's power status only (never power anything).
    ReadBmc,
    /// After an attestation: probe the host once more; it must still give no answer.
    Reprobe,
    /// Promote the deterministic survivor and wait for its restart.
    Promote,
    /// `pool.recover_slaves` and compare with the expected survivors.
    RecoverSlaves,
    /// Reset the dead host's VMs.
    ResetVms,
    /// Release their VDI tags.
    ReleaseLocks,
    /// Clear affinity pointing at the dead host.
    ClearAffinity,
    /// Start, by priority and order, the VMs that were running and are halted now.
    StartVms,
    /// Check each VM runs exactly once.
    Verify,
}

/// Whether the plan is for a dead master (promotion and slave recovery come first). Journaled
/// in the run state as `slave`, `master` or `split_brain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// A slave.
    Slave,
    /// The master.
    Master,
    /// Two masters: no fence, no VM touched; slave recovery from the legitimate one.
    SplitBrain,
}

/// The next phase and its effects; `None` when the event does not apply in this phase (the
/// phase stays, and the caller journals the ignored event).
pub fn transition(phase: &Phase, event: &Event, target: Target) -> Option<(Phase, Vec<Effect>)> {
    use Event as E;
    use Phase as P;
    let next = |p: Phase, effects: &[Effect]| Some((p, effects.to_vec()));
    match (phase, event) {
        (p, E::Resolved) if p.before_acting() => {
            next(P::Aborted("alert resolved before acting".into()), &[])
        }
        (p, E::OperatorAbort) if p.before_acting() => {
            next(P::Aborted("aborted by an operator".into()), &[])
        }
        (p, E::Superseded(why)) if p.before_acting() => next(P::Aborted(why.clone()), &[]),
        (P::Planned, E::NeedsApproval) => next(P::AwaitingApproval, &[]),
        (P::Planned | P::AwaitingApproval, E::Go) => next(P::Confirming, &[Effect::Confirm]),
        // A split brain fences nobody and touches no VM: recover the slaves, then verify.
        (P::Confirming, E::Confirmed) if target == Target::SplitBrain => {
            next(P::RecoveringSlaves, &[Effect::RecoverSlaves])
        }
        (P::RecoveringSlaves, E::StepDone) if target == Target::SplitBrain => {
            next(P::Verifying, &[Effect::Verify])
        }
        (P::Confirming, E::Confirmed) => next(P::Fencing, &[Effect::Fence]),
        (P::Fencing, E::NoFenceAgent) => next(P::AwaitingAttestation, &[]),
        // An attestation is checked against the host once more before anything is reset.
        (P::AwaitingAttestation, E::Attested) => next(P::Fencing, &[Effect::Reprobe]),
        (P::Confirming, E::Refused(reasons)) => next(
            P::Blocked(reasons.iter().map(ToString::to_string).collect()),
            &[],
        ),
        (P::Fencing, E::FenceConfirmedOff) | (P::Fencing, E::Attested) => after_fence(target),
        (P::Fencing, E::FenceFailed(why)) => next(
            P::Failed(format!("fence failed: {why}; nothing was reset or started")),
            &[],
        ),
        (P::Fencing, E::Resumed) => next(P::Fencing, &[Effect::ReadBmc]),
        (P::Fencing, E::BmcReads(off)) => {
            if *off {
                after_fence(target)
            } else {
                next(P::Failed("resumed after a crash during the fence and the BMC reads on: not fencing again".into()), &[])
            }
        }
        (P::Promoting, E::StepDone) => next(P::RecoveringSlaves, &[Effect::RecoverSlaves]),
        (P::RecoveringSlaves, E::StepDone) => next(P::ResettingVms, &[Effect::ResetVms]),
        (P::ResettingVms, E::StepDone) => next(P::ReleasingLocks, &[Effect::ReleaseLocks]),
        (P::ReleasingLocks, E::StepDone) => next(P::ClearingAffinity, &[Effect::ClearAffinity]),
        (P::ClearingAffinity, E::StepDone) => next(P::StartingVms, &[Effect::StartVms]),
        (P::StartingVms, E::StepDone) => next(P::Verifying, &[Effect::Verify]),
        (P::Verifying, E::StepDone) => next(P::Done, &[]),
        // Held stays held across restarts; only an operator moves it on, into its step.
        (P::Held(_), E::Resumed) => next(phase.clone(), &[]),
        (P::Held(_), E::OperatorAbort) => next(
            P::Aborted("aborted by an operator while held: the recovery stays half-done".into()),
            &[],
        ),
        (P::Held(step), E::OperatorResume) => {
            let p = Phase::from_journal(step, "")?;
            next(p.clone(), &[step_effect(&p)?])
        }
        (p, E::StepFailed(why)) if step_effect(p).is_some() => next(P::Failed(why.clone()), &[]),
        (p, E::Hold(_)) if step_effect(p).is_some() => next(P::Held(p.name().to_owned()), &[]),
        // Every step re-checks live state, so it is repeated on resume, never skipped.
        (p, E::Resumed) if step_effect(p).is_some() => next(p.clone(), &[step_effect(p)?]),
        (
            p @ (P::Confirming | P::Planned | P::AwaitingApproval | P::AwaitingAttestation),
            E::Resumed,
        ) => {
            // Before acting, a restart re-confirms from scratch (or keeps waiting).
            match p {
                P::AwaitingApproval | P::AwaitingAttestation => next(p.clone(), &[]),
                _ => next(P::Confirming, &[Effect::Confirm]),
            }
        }
        _ => None,
    }
}

fn after_fence(target: Target) -> Option<(Phase, Vec<Effect>)> {
    Some(match target {
        Target::Master => (Phase::Promoting, vec![Effect::Promote]),
        Target::Slave => (Phase::ResettingVms, vec![Effect::ResetVms]),
        Target::SplitBrain => return None,
    })
}

/// Whether `phase` is a recovery step after the fence (where a hold can stop it).
pub fn is_recovery_step(phase: &Phase) -> bool {
    step_effect(phase).is_some()
}

/// The effect a recovery step performs.
fn step_effect(phase: &Phase) -> Option<Effect> {
    Some(match phase {
        Phase::Promoting => Effect::Promote,
        Phase::RecoveringSlaves => Effect::RecoverSlaves,
        Phase::ResettingVms => Effect::ResetVms,
        Phase::ReleasingLocks => Effect::ReleaseLocks,
        Phase::ClearingAffinity => Effect::ClearAffinity,
        Phase::StartingVms => Effect::StartVms,
        Phase::Verifying => Effect::Verify,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(target: Target, events: &[Event]) -> (Phase, Vec<Effect>) {
        let mut phase = Phase::Planned;
        let mut effects = Vec::new();
        for event in events {
            if let Some((next, mut issued)) = transition(&phase, event, target) {
                phase = next;
                effects.append(&mut issued);
            }
        }
        (phase, effects)
    }

    #[test]
    fn a_dead_slave_is_fenced_before_anything_is_reset_or_started() {
        let steps = [Event::Go, Event::Confirmed, Event::FenceConfirmedOff];
        let mut events = steps.to_vec();
        events.extend(std::iter::repeat_n(Event::StepDone, 5));
        let (phase, effects) = run(Target::Slave, &events);
        assert_eq!(phase, Phase::Done);
        assert_eq!(
            effects,
            vec![
                Effect::Confirm,
                Effect::Fence,
                Effect::ResetVms,
                Effect::ReleaseLocks,
                Effect::ClearAffinity,
                Effect::StartVms,
                Effect::Verify
            ]
        );
    }

    #[test]
    fn a_hold_stops_a_recovery_step_and_nothing_before_the_fence() {
        let why = Event::Hold("receiver b/2 holds the pool's lease".into());
        assert_eq!(
            transition(&Phase::ResettingVms, &why, Target::Slave),
            Some((Phase::Held("resetting_vms".into()), vec![]))
        );
        for phase in [Phase::Confirming, Phase::Fencing, Phase::Planned] {
            assert_eq!(transition(&phase, &why, Target::Slave), None, "{phase:?}");
        }
    }

    #[test]
    fn a_held_remediation_moves_only_on_an_operators_resume_into_its_step() {
        let held = Phase::Held("starting_vms".into());
        assert_eq!(
            Phase::from_journal("held", "starting_vms: the kill-switch file exists"),
            Some(held.clone())
        );
        for event in [
            Event::Resumed,
            Event::Go,
            Event::StepDone,
            Event::Attested,
            Event::FenceConfirmedOff,
        ] {
            let next = transition(&held, &event, Target::Slave);
            assert!(
                next.is_none() || next == Some((held.clone(), vec![])),
                "{event:?}: {next:?}"
            );
        }
        assert_eq!(
            transition(&held, &Event::OperatorResume, Target::Slave),
            Some((Phase::StartingVms, vec![Effect::StartVms]))
        );
        // A held phase naming no step (a corrupted row) goes nowhere.
        let bad = Phase::Held("fencing".into());
        assert_eq!(
            transition(&bad, &Event::OperatorResume, Target::Slave),
            None
        );
        assert!(!held.is_terminal() && !held.before_acting() && held.holds_pool());
    }

    #[test]
    fn a_split_brain_is_resolved_without_any_fence_or_vm_step() {
        let mut events = vec![Event::Go, Event::Confirmed];
        events.extend(std::iter::repeat_n(Event::StepDone, 2));
        let (phase, effects) = run(Target::SplitBrain, &events);
        assert_eq!(phase, Phase::Done);
        assert_eq!(
            effects,
            vec![Effect::Confirm, Effect::RecoverSlaves, Effect::Verify]
        );
        // Whatever else happens, no fence and no VM step comes out of a split brain plan.
        let all = [
            Event::Go,
            Event::Confirmed,
            Event::StepDone,
            Event::Resumed,
            Event::FenceConfirmedOff,
            Event::Attested,
            Event::BmcReads(true),
        ];
        for a in &all {
            for b in &all {
                for c in &all {
                    let (_, effects) = run(Target::SplitBrain, &[a.clone(), b.clone(), c.clone()]);
                    assert!(
                        effects.iter().all(|e| matches!(
                            e,
                            Effect::Confirm | Effect::RecoverSlaves | Effect::Verify
                        )),
                        "{a:?} {b:?} {c:?}: {effects:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_dead_master_is_replaced_before_its_vms_are_touched() {
        let mut events = vec![Event::Go, Event::Confirmed, Event::FenceConfirmedOff];
        events.extend(std::iter::repeat_n(Event::StepDone, 7));
        let (phase, effects) = run(Target::Master, &events);
        assert_eq!(phase, Phase::Done);
        assert_eq!(&effects[2..4], &[Effect::Promote, Effect::RecoverSlaves]);
    }

    #[test]
    fn no_reset_or_start_without_a_confirmed_power_off() {
        // Every event but the fence confirmation or an attestation, from every phase up to
        // Fencing: no recovery effect may ever come out.
        let others = [
            Event::Go,
            Event::Confirmed,
            Event::StepDone,
            Event::Resumed,
            Event::BmcReads(false),
            Event::FenceFailed("x".into()),
            Event::Resolved,
        ];
        for first in &others {
            for second in &others {
                for third in &others {
                    let (_, effects) = run(
                        Target::Slave,
                        &[first.clone(), second.clone(), third.clone()],
                    );
                    assert!(
                        effects.iter().all(|e| matches!(
                            e,
                            Effect::Confirm | Effect::Fence | Effect::ReadBmc
                        )),
                        "{first:?} {second:?} {third:?} -> {effects:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn an_operator_attestation_replaces_the_fence() {
        let early = run(Target::Slave, &[Event::Go, Event::Attested]).0;
        assert_eq!(early, Phase::Confirming, "not before confirmation");
        let events = [Event::Go, Event::Confirmed, Event::NoFenceAgent];
        assert_eq!(run(Target::Slave, &events).0, Phase::AwaitingAttestation);
        // The attestation is checked by one more probe; the host's silence lets it go on.
        let attested = [events.as_slice(), &[Event::Attested]].concat();
        let (phase, effects) = run(Target::Slave, &attested);
        assert_eq!(phase, Phase::Fencing);
        assert_eq!(
            effects,
            vec![Effect::Confirm, Effect::Fence, Effect::Reprobe]
        );
        let silent = [attested.as_slice(), &[Event::Attested]].concat();
        let (phase, effects) = run(Target::Slave, &silent);
        assert_eq!(phase, Phase::ResettingVms);
        assert_eq!(effects.last(), Some(&Effect::ResetVms));
        let answers = [attested.as_slice(), &[Event::FenceFailed("answers".into())]].concat();
        assert!(matches!(run(Target::Slave, &answers).0, Phase::Failed(_)));
        let resolved = [events.as_slice(), &[Event::Resolved]].concat();
        let aborted = run(Target::Slave, &resolved).0;
        assert!(
            matches!(aborted, Phase::Aborted(_)),
            "nothing was done yet: {aborted:?}"
        );
    }

    #[test]
    fn resolved_aborts_only_before_acting() {
        assert_eq!(
            run(Target::Slave, &[Event::Go, Event::Resolved]).0,
            Phase::Aborted("alert resolved before acting".into())
        );
        let (phase, _) = run(
            Target::Slave,
            &[Event::Go, Event::Confirmed, Event::Resolved],
        );
        assert_eq!(
            phase,
            Phase::Fencing,
            "the fence is under way: resolved does not abandon it"
        );
    }

    #[test]
    fn resuming_during_the_fence_never_fences_again() {
        let (phase, effects) = run(
            Target::Slave,
            &[Event::Go, Event::Confirmed, Event::Resumed],
        );
        assert_eq!(
            (phase, effects.last()),
            (Phase::Fencing, Some(&Effect::ReadBmc))
        );
        let on = transition(&Phase::Fencing, &Event::BmcReads(false), Target::Slave).unwrap();
        assert!(matches!(on.0, Phase::Failed(_)) && on.1.is_empty());
        let off = transition(&Phase::Fencing, &Event::BmcReads(true), Target::Slave).unwrap();
        assert_eq!(off, (Phase::ResettingVms, vec![Effect::ResetVms]));
        assert_eq!(
            transition(&Phase::StartingVms, &Event::Resumed, Target::Slave).unwrap(),
            (Phase::StartingVms, vec![Effect::StartVms]),
            "a step is re-checked on resume, never skipped"
        );
    }

    #[test]
    fn every_phase_survives_the_journal() {
        let phases = [
            Phase::Planned,
            Phase::Verifying,
            Phase::Aborted("why".into()),
            Phase::Blocked(vec!["a".into(), "b".into()]),
            Phase::Failed("f".into()),
        ];
        for phase in phases {
            assert_eq!(
                Phase::from_journal(phase.name(), &phase.detail()),
                Some(phase)
            );
        }
        for name in PhaseName::ALL.iter().map(|n| n.as_str()) {
            assert_eq!(Phase::from_journal(name, "x").unwrap().name(), name);
        }
        assert_eq!(Phase::from_journal("exploded", ""), None);
    }

    #[test]
    fn refusals_and_failures_end_without_effects() {
        let (phase, effects) = run(
            Target::Slave,
            &[Event::Go, Event::Refused(vec![Reason::HaEnabled])],
        );
        assert!(
            matches!(phase, Phase::Blocked(ref r) if r[0].contains("HA")),
            "{phase:?}"
        );
        assert_eq!(effects, vec![Effect::Confirm]);
        let (phase, _) = run(
            Target::Slave,
            &[
                Event::Go,
                Event::Confirmed,
                Event::FenceFailed("timeout".into()),
            ],
        );
        assert!(matches!(phase, Phase::Failed(ref why) if why.contains("nothing was reset")));
        assert_eq!(
            run(Target::Slave, &[Event::NeedsApproval]).0,
            Phase::AwaitingApproval
        );
        assert!(transition(&Phase::Done, &Event::Go, Target::Slave).is_none());
    }
}
