//! The executor: the one place that moves remediations through the [state machine](super::machine)
//! and performs their effects. It owns every phase change, so alerts, operator requests and
//! finished effects never race each other.
//!
//! # Expected flow
//! A new firing alert that the policy maps to a plan becomes a journaled remediation. In
//! `observe` mode that is all. In `approve` mode it waits for `xenguard journal approve`; in
//! `auto` mode it goes to `Confirming` at once. Each effect runs as its own task and reports an
//! [`Event`] back; the resulting phase is journaled before the next effect is issued.
//!
//! # Guarantees
//! - One remediation per pool holds the pool (from confirmation to its end, or while it waits
//!   for an attestation); others of that pool queue before confirming.
//! - On start, remediations left mid-way are resumed through [`Event::Resumed`]: a fence is
//!   never issued again (the BMC is read back), later steps re-check live state.
//! - Operator requests are read from the journal (written by `xenguard journal`), handled once,
//!   and answered in the journal.
//! - A journal write that fails stops that remediation where it stands (nothing further is
//!   issued) and counts in `xenguard_remediation_journal_errors_total`.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::mpsc;

use super::alert::Status;
use super::confirm::{Probing, confirm};
use super::fence::FenceAgent;
use super::guards::{self, Facts, Limits, Reason};
use super::inventory::{KnownHost, PoolClient};
use super::journal::{Journal, JournalError, NewAlert, Remediation};
use super::machine::{Effect, Event, Phase, Target, is_recovery_step, transition};
use super::metrics::ReceiverMetrics;
use super::policy::{PlanKind, intent_for};
use super::recovery::{self, RunState};
use super::split_brain;
use super::unix_now;
use crate::config::{Config, Mode};

/// How often operator requests are read from the journal.
const REQUEST_POLL: Duration = Duration::from_millis(500);
/// Status reads after a fence's `off` before it counts as failed.
const FENCE_READS: u32 = 10;
/// Pause between those reads.
const FENCE_READ_PAUSE: Duration = Duration::from_secs(1);

/// What the executor is told.
#[derive(Debug)]
pub enum Command {
    /// An alert journaled for the first time in its status.
    Alert(NewAlert),
    /// An effect finished.
    Finished {
        /// Remediation id.
        id: i64,
        /// What came of it.
        event: Event,
    },
}

/// What effects need: configuration, journal, metrics, pool clients.
#[derive(Debug)]
pub struct Context {
    /// The configuration.
    pub config: Config,
    /// The journal.
    pub journal: Arc<Journal>,
    /// The receiver's metrics.
    pub metrics: ReceiverMetrics,
    /// Clients per pool name.
    pub pools: BTreeMap<String, Arc<PoolClient>>,
    /// When the receiver started (monotonic).
    pub started: std::time::Instant,
    /// Fences issued by this run: pool, host uuid, when (monotonic).
    pub fences: std::sync::Mutex<Vec<(String, String, std::time::Instant)>>,
}

impl Context {
    /// Fences this run issued in `pool` within `window`: host uuid and age.
    fn fences_here(&self, pool: &str, window: Duration) -> Vec<(String, Duration)> {
        self.fences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|(p, _, at)| p == pool && at.elapsed() < window)
            .map(|(_, host, at)| (host.clone(), at.elapsed()))
            .collect()
    }

    fn limits(&self) -> Limits {
        let r = &self.config.receiver;
        Limits {
            max_fences: r.fence_budget.max_fences,
            fence_window: r.fence_budget.window,
            host_cooldown: r.host_cooldown,
            startup_quiet: r.startup_quiet,
            refused_grace: r.refused_grace,
        }
    }

    /// The fence agent configured for a host (see [`fence_entry`]).
    fn fence_agent(&self, pool: &str, host: &KnownHost) -> Result<Option<FenceAgent>, String> {
        let fencing = &self.config.fencing;
        let inventory = self.pools.get(pool).and_then(|c| c.inventory());
        let known = inventory.as_ref().map_or(&[][..], |i| i.hosts.as_slice());
        let Some(entry) = fence_entry(&fencing.hosts, pool, host, known)? else {
            return Ok(None);
        };
        let password = entry
            .password()
            .map_err(|e| format!("fence password: {e}"))?
            .map(|s| s.expose().to_owned());
        Ok(Some(FenceAgent {
            program: entry.agent.clone(),
            args: entry.args.clone(),
            password,
            timeout: fencing.agent_timeout,
        }))
    }
}

/// The fencing entry of `host`: keyed by its uuid (what check-config demands whenever the
/// receiver may act); a name or address key (observe mode) counts only when it names exactly
/// one host of `known` and that host is `host`. A key naming several hosts, or several entries
/// meaning `host`, is an error: a wrong BMC powers off a healthy machine.
pub fn fence_entry<'a>(
    entries: &'a [crate::config::FenceHost],
    pool: &str,
    host: &KnownHost,
    known: &[KnownHost],
) -> Result<Option<&'a crate::config::FenceHost>, String> {
    let mut found = None;
    for entry in entries.iter().filter(|e| e.pool == pool) {
        let means_host = if crate::xapi::records::is_uuid(&entry.host) {
            entry.host == host.uuid
        } else {
            let named: Vec<&KnownHost> = known
                .iter()
                .filter(|h| h.name_label == entry.host || h.address == entry.host)
                .collect();
            match named.as_slice() {
                [] => false,
                [one] => one.uuid == host.uuid,
                many => {
                    return Err(format!(
                        "fencing key `{}` of pool {pool} names {} hosts: refusing to pick a BMC",
                        entry.host,
                        many.len()
                    ));
                }
            }
        };
        if means_host && found.replace(entry).is_some() {
            return Err(format!(
                "several fencing entries of pool {pool} mean host {}: refusing to pick a BMC",
                host.uuid
            ));
        }
    }
    Ok(found)
}

/// The executor's state: who holds each pool, who queues for it.
pub struct Executor {
    ctx: Arc<Context>,
    tx: mpsc::UnboundedSender<Command>,
    owners: BTreeMap<String, i64>,
    queues: BTreeMap<String, VecDeque<i64>>,
    busy: BTreeSet<i64>,
}

impl Executor {
    /// Runs until the command channel closes: resumes what the journal left mid-way, then
    /// handles alerts, finished effects and operator requests.
    pub async fn run(
        ctx: Arc<Context>,
        tx: mpsc::UnboundedSender<Command>,
        mut inbox: mpsc::UnboundedReceiver<Command>,
    ) {
        let mut executor = Executor {
            ctx,
            tx,
            owners: BTreeMap::new(),
            queues: BTreeMap::new(),
            busy: BTreeSet::new(),
        };
        executor.guarded(|e| e.resume());
        let mut poll = tokio::time::interval(REQUEST_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                command = inbox.recv() => match command {
                    None => return,
                    Some(Command::Alert(alert)) => executor.guarded(|e| e.alert(&alert)),
                    Some(Command::Finished { id, event }) => {
                        executor.busy.remove(&id);
                        executor.guarded(|e| e.apply(id, event));
                    }
                },
                _ = poll.tick() => executor.guarded(|e| e.requests()),
            }
        }
    }

    fn guarded(&mut self, f: impl FnOnce(&mut Self) -> Result<(), JournalError>) {
        if let Err(e) = f(self) {
            self.ctx.metrics.journal_error();
            tracing::error!(error = %e, "Journal write failed: the remediation stops where it stands.");
        }
    }

    fn journal(&self) -> &Journal {
        &self.ctx.journal
    }

    /// Resumes remediations a previous run left mid-way (not observe-mode plans).
    fn resume(&mut self) -> Result<(), JournalError> {
        let open = Phase::open_names();
        let mut pending = self.journal().in_phases(&open)?;
        // Those that hold their pool first, so queued ones wait behind them.
        pending.sort_by_key(|r| {
            let phase = Phase::from_journal(&r.phase, &r.reason).unwrap_or(Phase::Planned);
            (!phase.holds_pool() || phase == Phase::Confirming, r.id)
        });
        for r in pending {
            let state = self.state(r.id)?;
            if r.phase == "planned" && state.mode != Mode::Auto.as_str() {
                continue;
            }
            tracing::warn!(id = r.id, phase = %r.phase, "Resuming a remediation left mid-way.");
            self.journal()
                .add_step(r.id, "resumed", &json!({"phase": r.phase}), unix_now())?;
            let phase = Phase::from_journal(&r.phase, &r.reason).unwrap_or(Phase::Planned);
            if phase.holds_pool() && phase != Phase::Confirming {
                self.owners.insert(r.pool.clone(), r.id);
            }
            self.apply(r.id, Event::Resumed)?;
        }
        Ok(())
    }

    fn state(&self, id: i64) -> Result<RunState, JournalError> {
        Ok(serde_json::from_value(self.journal().state(id)?).unwrap_or_default())
    }

    fn alert(&mut self, new: &NewAlert) -> Result<(), JournalError> {
        let now = unix_now();
        match new.status {
            Status::Resolved => {
                if let Some(r) = self
                    .journal()
                    .remediation_for(&new.fingerprint, &new.starts_at)?
                {
                    self.apply(r.id, Event::Resolved)?;
                }
                Ok(())
            }
            Status::Firing => {
                let probe = super::alert::Alert {
                    status: new.status,
                    labels: new.labels.clone(),
                    annotations: Default::default(),
                    starts_at: new.starts_at.clone(),
                    ends_at: String::new(),
                    generator_url: String::new(),
                    fingerprint: new.fingerprint.clone(),
                };
                let Ok(Some(intent)) = intent_for(&probe) else {
                    return Ok(());
                };
                let mode = self.ctx.config.receiver.mode;
                let kind = intent.kind.as_str();
                let reason = match mode {
                    Mode::Observe => "observe mode: plan journaled, nothing done",
                    Mode::Approve => "waiting for `xenguard journal approve`",
                    Mode::Auto => "",
                };
                let Some(id) = self.journal().create_remediation(
                    &intent.pool,
                    &intent.host_uuid,
                    kind,
                    probe.name(),
                    &new.fingerprint,
                    &new.starts_at,
                    Phase::Planned.name(),
                    reason,
                    now,
                )?
                else {
                    return Ok(());
                };
                let state = RunState {
                    mode: mode.as_str().to_owned(),
                    ..RunState::default()
                };
                self.journal().set_state(id, &json!(state), now)?;
                self.journal().add_step(
                    id,
                    "planned",
                    &json!({"mode": mode.as_str(), "steps": intent.kind.steps(), "labels": new.labels}),
                    now,
                )?;
                self.ctx.metrics.plan(&intent.pool, kind, "planned");
                tracing::info!(id, pool = ?intent.pool, host = ?intent.host_uuid, kind, mode = %mode, "Remediation planned.");
                match mode {
                    Mode::Observe => Ok(()),
                    Mode::Approve => self.apply(id, Event::NeedsApproval),
                    Mode::Auto => self.apply(id, Event::Go),
                }
            }
        }
    }

    /// Handles operator requests written by `xenguard journal`.
    fn requests(&mut self) -> Result<(), JournalError> {
        for request in self.journal().pending_requests()? {
            let now = unix_now();
            let Some(r) = self.journal().remediation(request.remediation_id)? else {
                self.journal()
                    .handle_request(request.id, "no such remediation", now)?;
                continue;
            };
            let phase = Phase::from_journal(&r.phase, &r.reason).unwrap_or(Phase::Planned);
            let event = match (request.kind.as_str(), &phase) {
                ("approve", Phase::AwaitingApproval) => Some(Event::Go),
                ("attest", Phase::AwaitingAttestation) => Some(Event::Attested),
                ("abort", p) if p.before_acting() || matches!(p, Phase::Held(_)) => {
                    Some(Event::OperatorAbort)
                }
                ("resume", Phase::Held(_)) => Some(Event::OperatorResume),
                _ => None,
            };
            let Some(event) = event else {
                let why = format!(
                    "refused: {} does not apply in phase {}",
                    request.kind, r.phase
                );
                self.journal().handle_request(request.id, &why, now)?;
                continue;
            };
            if let Some(why) = self.stale_request(&request, now) {
                self.journal().handle_request(request.id, &why, now)?;
                continue;
            }
            let mut state = self.state(r.id)?;
            match request.kind.as_str() {
                "approve" => state.approved_by = Some(request.operator.clone()),
                "attest" => state.attested_by = Some(request.operator.clone()),
                _ => {}
            }
            self.journal().set_state(r.id, &json!(state), now)?;
            self.journal().add_step(
                r.id,
                &request.kind,
                &json!({"operator": request.operator, "requested_at": request.at}),
                now,
            )?;
            self.journal().handle_request(request.id, "done", now)?;
            tracing::info!(id = r.id, kind = %request.kind, operator = ?request.operator, "Operator request handled.");
            self.apply(r.id, event)?;
        }
        Ok(())
    }

    /// Applies an event to a remediation: journals the new phase, then issues its effects.
    fn apply(&mut self, id: i64, event: Event) -> Result<(), JournalError> {
        let Some(r) = self.journal().remediation(id)? else {
            return Ok(());
        };
        let phase = Phase::from_journal(&r.phase, &r.reason).unwrap_or(Phase::Planned);
        let state = self.state(id)?;
        let target = if r.kind == PlanKind::ResolveSplitBrain.as_str() {
            Target::SplitBrain
        } else {
            match state.target.as_deref() {
                Some("master") => Target::Master,
                _ => Target::Slave,
            }
        };
        let now = unix_now();
        let Some((mut next, mut effects)) = transition(&phase, &event, target) else {
            self.journal().add_step(
                id,
                "ignored",
                &json!({"phase": r.phase, "event": format!("{event:?}")}),
                now,
            )?;
            return Ok(());
        };
        let mut held_because = None;
        if is_recovery_step(&next)
            && let Some(why) = self.hold(&event)
        {
            held_because = Some(format!(
                "{}: {why}; `xenguard journal resume {id}` continues",
                next.name()
            ));
            next = Phase::Held(next.name().to_owned());
            effects.clear();
        }
        let reason = match &next {
            Phase::Held(_) => held_because.unwrap_or_default(),
            Phase::Done => state.summary.clone().unwrap_or_default(),
            Phase::AwaitingApproval => "waiting for `xenguard journal approve`".into(),
            Phase::AwaitingAttestation => {
                "no fence agent for this host: waiting for `xenguard journal attest` that it is powered off".into()
            }
            other => other.detail(),
        };
        self.journal().set_phase(id, next.name(), &reason, now)?;
        self.journal().add_step(
            id,
            "phase",
            &json!({"from": r.phase, "to": next.name(), "event": format!("{event:?}"), "reason": reason}),
            now,
        )?;
        if next != phase {
            tracing::info!(id, pool = %r.pool, from = %r.phase, to = next.name(), %reason, "Remediation phase.");
        }
        match &next {
            Phase::Done => self.ctx.metrics.plan(&r.pool, &r.kind, "done"),
            Phase::Aborted(_) => self.ctx.metrics.plan(&r.pool, &r.kind, "aborted"),
            Phase::Failed(_) => self.ctx.metrics.plan(&r.pool, &r.kind, "failed"),
            Phase::Blocked(_) => {
                self.ctx.metrics.plan(&r.pool, &r.kind, "blocked");
                if let Event::Refused(reasons) = &event {
                    self.ctx.metrics.blocked(&r.pool, reasons);
                }
            }
            _ => {}
        }
        if next.is_terminal() || matches!(next, Phase::AwaitingApproval) {
            self.release(&r.pool, id);
        }
        for effect in effects {
            self.issue(&r, effect);
        }
        self.gauges(&r.pool)
    }

    /// Why an operator request cannot be taken as it stands: made in the future (a clock step
    /// makes its age unknown), or an attestation older than the configured limit.
    fn stale_request(&self, request: &super::journal::Request, now: f64) -> Option<String> {
        const SKEW: f64 = 5.0;
        if request.at > now + SKEW {
            return Some(format!(
                "refused: made {:.0} s in the future by the receiver's clock; its age is unknown",
                request.at - now
            ));
        }
        let limit = self.ctx.config.receiver.attestation_max_age.as_secs_f64();
        (request.kind == "attest" && now - request.at > limit).then(|| {
            format!(
                "refused: the attestation expired (made {:.0} s ago, limit {limit:.0} s): check the host again and attest anew",
                now - request.at
            )
        })
    }

    /// Why the next recovery step must not be issued now, if it must not: the kill switch
    /// (an unreadable one counts), or `observe` mode, where a recovery can only be one an
    /// earlier run began (an operator's resume lets it go on).
    fn hold(&self, event: &Event) -> Option<&'static str> {
        let receiver = &self.ctx.config.receiver;
        let switch = receiver
            .kill_switch_file
            .as_ref()
            .is_some_and(|path| path.try_exists().unwrap_or(true));
        if switch {
            Some("held before this step: the kill-switch file exists")
        } else if receiver.mode == Mode::Observe && *event != Event::OperatorResume {
            Some("held before this step: the receiver runs in observe mode")
        } else {
            None
        }
    }

    /// Frees the pool if `id` holds it, and starts the next queued confirmation.
    fn release(&mut self, pool: &str, id: i64) {
        if let Some(queue) = self.queues.get_mut(pool) {
            queue.retain(|q| *q != id);
        }
        if self.owners.get(pool) == Some(&id) {
            self.owners.remove(pool);
            let next = self.queues.get_mut(pool).and_then(VecDeque::pop_front);
            if let Some(next) = next {
                self.owners.insert(pool.to_owned(), next);
                self.spawn(next, Effect::Confirm);
            }
        }
    }

    fn issue(&mut self, r: &Remediation, effect: Effect) {
        if effect == Effect::Confirm {
            match self.owners.get(&r.pool) {
                Some(owner) if *owner != r.id => {
                    tracing::info!(id = r.id, owner, pool = %r.pool, "Another remediation holds the pool: queued.");
                    self.queues
                        .entry(r.pool.clone())
                        .or_default()
                        .push_back(r.id);
                    return;
                }
                _ => {
                    self.owners.insert(r.pool.clone(), r.id);
                }
            }
        }
        self.spawn(r.id, effect);
    }

    fn spawn(&mut self, id: i64, effect: Effect) {
        if !self.busy.insert(id) {
            tracing::warn!(
                id,
                ?effect,
                "An effect of this remediation is still running: not issuing another."
            );
            return;
        }
        let (ctx, tx) = (self.ctx.clone(), self.tx.clone());
        tokio::spawn(async move {
            let failed = failure_event(&effect, "the step panicked".into());
            // A panicking step still ends its phase instead of leaving it waiting.
            let event = tokio::spawn(async move { perform(&ctx, id, effect).await })
                .await
                .unwrap_or(failed);
            let _ = tx.send(Command::Finished { id, event });
        });
    }

    fn gauges(&self, pool: &str) -> Result<(), JournalError> {
        let active: Vec<&str> = Phase::open_names()
            .into_iter()
            .filter(|name| *name != Phase::Planned.name())
            .collect();
        let open = self.journal().in_phases(&active)?;
        let count = |phase: &str| {
            open.iter()
                .filter(|r| r.pool == pool && r.phase == phase)
                .count() as i64
        };
        let approval = count("awaiting_approval");
        let attestation = count("awaiting_attestation");
        let in_flight =
            open.iter().filter(|r| r.pool == pool).count() as i64 - approval - attestation;
        self.ctx
            .metrics
            .set_pool_gauges(pool, in_flight, approval, attestation);
        Ok(())
    }
}

/// Performs one effect and says what came of it. Evidence goes to the journal as it is found.
async fn perform(ctx: &Context, id: i64, effect: Effect) -> Event {
    let step = effect_name(&effect);
    let result = perform_inner(ctx, id, &effect).await;
    // An error must end the phase it happened in, never leave it waiting.
    let (event, evidence) = match result {
        Ok(outcome) => outcome,
        Err(e) => {
            let event = match effect {
                Effect::Confirm => {
                    Event::Refused(vec![Reason::Unknown("the confirmation's inputs")])
                }
                Effect::Fence | Effect::ReadBmc | Effect::Reprobe => Event::FenceFailed(e.clone()),
                _ => Event::StepFailed(format!("{step}: {e}")),
            };
            (event, json!({"error": e}))
        }
    };
    let ok = !matches!(
        event,
        Event::StepFailed(_) | Event::FenceFailed(_) | Event::Refused(_)
    );
    ctx.metrics.step(step, ok);
    if let Err(e) = ctx.journal.add_step(id, step, &evidence, unix_now()) {
        ctx.metrics.journal_error();
        tracing::error!(id, error = %e, "Cannot journal a step's evidence.");
    }
    event
}

/// The event that ends an effect's phase when the effect could not run: before the fence it
/// blocks, during the fence it is a failed fence, after it a failed step.
fn failure_event(effect: &Effect, why: String) -> Event {
    match effect {
        Effect::Confirm => Event::Refused(vec![Reason::Unknown("the confirmation's inputs")]),
        Effect::Fence | Effect::ReadBmc | Effect::Reprobe => Event::FenceFailed(why),
        _ => Event::StepFailed(why),
    }
}

fn effect_name(effect: &Effect) -> &'static str {
    match effect {
        Effect::Confirm => "confirm",
        Effect::Fence | Effect::ReadBmc | Effect::Reprobe => "fence",
        Effect::Promote => "promote",
        Effect::RecoverSlaves => "recover_slaves",
        Effect::ResetVms => "reset_vms",
        Effect::ReleaseLocks => "release_locks",
        Effect::ClearAffinity => "clear_affinity",
        Effect::StartVms => "start_vms",
        Effect::Verify => "verify",
    }
}

type Outcome = Result<(Event, serde_json::Value), String>;

async fn perform_inner(ctx: &Context, id: i64, effect: &Effect) -> Outcome {
    let journal_err = |e: JournalError| e.to_string();
    let r = ctx
        .journal
        .remediation(id)
        .map_err(journal_err)?
        .ok_or("remediation vanished from the journal")?;
    let mut state: RunState =
        serde_json::from_value(ctx.journal.state(id).map_err(journal_err)?).unwrap_or_default();
    let client = ctx
        .pools
        .get(&r.pool)
        .ok_or_else(|| format!("pool {} is no longer configured", r.pool))?
        .clone();
    let split_brain = r.kind == PlanKind::ResolveSplitBrain.as_str();
    if *effect == Effect::Confirm {
        if split_brain {
            return split_brain_confirm(ctx, &r, &client, state).await;
        }
        return confirm_step(ctx, &r, &client, state).await;
    }
    let dead = state
        .suspect
        .clone()
        .ok_or("no confirmed host in the run state")?;
    let save = |state: &RunState| {
        ctx.journal
            .set_state(id, &json!(state), unix_now())
            .map_err(journal_err)
    };
    match effect {
        Effect::Confirm => unreachable!("handled above"),
        Effect::Fence => fence_step(ctx, &r, &dead).await,
        Effect::Reprobe => Ok(reprobe(&client, &dead).await),
        Effect::ReadBmc => {
            let Some(agent) = ctx.fence_agent(&r.pool, &dead)? else {
                if state.attested_by.is_some() {
                    // Resumed after a crash while an attestation was being checked.
                    return Ok(reprobe(&client, &dead).await);
                }
                return Ok((
                    Event::FenceFailed("no fence agent configured to read the BMC".into()),
                    json!({}),
                ));
            };
            // An agent killed with the receiver may still be finishing its `off`: read a few
            // times before concluding the host is on.
            let mut runs = Vec::new();
            for attempt in 1..=FENCE_READS {
                match agent.status().await {
                    Ok((power, run)) => {
                        runs.push(run);
                        if power == super::fence::Power::Off || attempt == FENCE_READS {
                            let off = power == super::fence::Power::Off;
                            return Ok((Event::BmcReads(off), json!({"resumed_reads": runs})));
                        }
                    }
                    Err(e) => {
                        return Ok((
                            Event::FenceFailed(e.to_string()),
                            json!({"resumed_reads": runs, "error": e.to_string()}),
                        ));
                    }
                }
                tokio::time::sleep(FENCE_READ_PAUSE).await;
            }
            unreachable!("the last read returns")
        }
        Effect::Promote => {
            let survivor = state.survivor.clone().ok_or("no survivor chosen")?;
            let evidence = recovery::promote(&client, &survivor, &dead).await?;
            Ok((Event::StepDone, evidence))
        }
        Effect::RecoverSlaves => {
            let survivor = state.survivor.as_ref().map(|h| h.uuid.clone());
            let expected: Vec<KnownHost> = state
                .answering
                .iter()
                .filter(|h| Some(&h.uuid) != survivor.as_ref())
                .cloned()
                .collect();
            let survivor = state.survivor.clone().ok_or("no survivor chosen")?;
            let (wait, limit) = (
                ctx.config.receiver.rejoin_wait,
                ctx.config.receiver.step_timeout,
            );
            // A split brain's slaves are recovered from the legitimate master itself: the pool
            // session may follow either master.
            let actuator = if split_brain {
                split_brain::actuator_on(&client, &survivor)
            } else {
                client.actuator()
            };
            let evidence =
                recovery::recover_slaves(&client, &actuator, &survivor, &expected, wait, limit)
                    .await?;
            Ok((Event::StepDone, evidence))
        }
        Effect::ResetVms => {
            let master = state.target.as_deref() == Some("master");
            let now_resident = recovery::resident_vms(&client, &dead).await?;
            for vm in now_resident {
                let known = state.vms.iter().any(|v| v.uuid == vm.uuid)
                    || state.doubtful.contains(&vm.name_label);
                // A promoted database can be older than a migration: only guests both it and
                // the receiver's last view place on the dead master are its to restart.
                if known {
                    continue;
                }
                if master && !state.seen_on_master.iter().any(|s| s.uuid == vm.uuid) {
                    state.doubtful.push(vm.name_label);
                } else {
                    state.vms.push(vm);
                }
            }
            if master {
                state.unaccounted = unaccounted(&state);
            }
            // Where they ran is gone after the reset: the list is journaled first.
            save(&state)?;
            let whole_host = state.doubtful.is_empty();
            let limit = ctx.config.receiver.step_timeout;
            let mut evidence =
                recovery::reset_vms(&client, &dead, &state.vms, whole_host, limit).await?;
            evidence["doubtful"] = json!(state.doubtful);
            evidence["vms"] = json!(state.vms.iter().map(|v| &v.name_label).collect::<Vec<_>>());
            Ok((Event::StepDone, evidence))
        }
        Effect::ReleaseLocks => Ok((
            Event::StepDone,
            recovery::release_locks(&client, &dead, &state.vms).await?,
        )),
        Effect::ClearAffinity => Ok((
            Event::StepDone,
            recovery::clear_affinity(&client, &dead).await?,
        )),
        Effect::StartVms => {
            // Only hosts that answered at confirmation (a second dead host is no target).
            let survivors: Vec<_> = state
                .answering
                .iter()
                .map(|h| h.reference.clone())
                .collect();
            let evidence = recovery::start_vms(&client, &dead, &survivors, &mut state.vms).await?;
            save(&state)?;
            Ok((Event::StepDone, evidence))
        }
        Effect::Verify if split_brain => {
            let legit = state
                .survivor
                .clone()
                .ok_or("no legitimate master chosen")?;
            let (summary, evidence) = split_brain::verify(&client, &legit).await?;
            state.summary = Some(summary);
            save(&state)?;
            client.refresh_bounded(unix_now()).await;
            Ok((Event::StepDone, evidence))
        }
        Effect::Verify => {
            let check_by_hand = [state.unaccounted.clone(), state.doubtful.clone()].concat();
            let (summary, evidence) =
                recovery::verify(&client, &dead, &state.vms, &check_by_hand).await?;
            state.summary = Some(summary);
            save(&state)?;
            let running = evidence["running"].as_u64().unwrap_or(0);
            let not_running = (state.vms.len() as u64).saturating_sub(running);
            ctx.metrics
                .vms(&r.pool, running, not_running, check_by_hand.len() as u64);
            // The recovery moved VMs: the next plan must start from where they run now.
            client.refresh_bounded(unix_now()).await;
            Ok((Event::StepDone, evidence))
        }
    }
}

/// Guests the receiver last saw running on the dead master (recorded at confirmation) that the
/// promoted host's database does not show there: named, never started blindly.
fn unaccounted(state: &RunState) -> Vec<String> {
    state
        .seen_on_master
        .iter()
        .filter(|seen| !state.vms.iter().any(|p| p.uuid == seen.uuid))
        .map(|seen| seen.name_label.clone())
        .collect()
}

async fn confirm_step(
    ctx: &Context,
    r: &Remediation,
    client: &PoolClient,
    mut state: RunState,
) -> Outcome {
    let receiver = &ctx.config.receiver;
    let journal_err = |e: JournalError| e.to_string();
    let probing = Probing {
        window: receiver.confirm_window,
        probes: receiver.confirm_probes,
        refused_grace: receiver.refused_grace,
    };
    let findings = confirm(client, &r.host_uuid, probing, |host| {
        ctx.fence_agent(&r.pool, host)
    })
    .await;
    let now = unix_now();
    let mut evidence = findings.evidence.clone();
    if let Some(suspect) = &findings.suspect {
        // Several alerts about one death: the first recovery finishing after this one was
        // planned makes it moot. A later death of the same host meets the cooldown instead.
        if let Some(earlier) = ctx
            .journal
            .done_for_host(&r.pool, &suspect.uuid, r.created_at, r.id)
            .map_err(journal_err)?
        {
            let why = format!("host already recovered by remediation {earlier}");
            return Ok((Event::Superseded(why), evidence));
        }
    }
    let kill_switch = match &receiver.kill_switch_file {
        None => Some(false),
        Some(path) => path.try_exists().ok(),
    };
    let suspect_uuid = findings.suspect.as_ref().map(|h| h.uuid.clone());
    // The journal's times are wall-clock; fences of this run are also timed monotonically,
    // so a clock stepped forward cannot shorten a window (the more recent reading counts).
    let window = receiver.fence_budget.window;
    let recent = ctx.fences_here(&r.pool, window);
    let last_action = match &suspect_uuid {
        Some(uuid) => {
            let journaled = ctx
                .journal
                .last_fence_of(&r.pool, uuid)
                .map_err(journal_err)?;
            let here = recent
                .iter()
                .filter(|(host, _)| host == uuid)
                .map(|(_, age)| now - age.as_secs_f64())
                .reduce(f64::max);
            Some(match (journaled, here) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            })
        }
        None => None,
    };
    let facts = Facts {
        now,
        mode: receiver.mode,
        approved: state.approved_by.is_some(),
        kill_switch,
        ha_enabled: findings.ha_enabled,
        others_reachable: findings.others_reachable,
        other_active: Some(None),
        fences_in_window: Some(
            ctx.journal
                .fences_since(&r.pool, now - window.as_secs_f64())
                .map_err(journal_err)?
                .max(recent.len() as u32),
        ),
        last_action_on_host: last_action,
        alert_firing: Some(
            !ctx.journal
                .alert_resolved(&r.fingerprint, &r.starts_at)
                .map_err(journal_err)?,
        ),
        running_for: ctx.started.elapsed(),
        host_in_maintenance: findings.in_maintenance,
        suspect_probes: findings.suspect_probes,
        pool_reaches_suspect: findings.pool_reaches_suspect,
    };
    let verdict = guards::decide(&facts, &ctx.limits());
    if let Some(refused) = refusal(verdict, &findings.problems, &mut evidence) {
        return Ok(refused);
    }
    let suspect = findings
        .suspect
        .clone()
        .ok_or("confirmed without a suspect")?;
    if findings.target == Target::Slave {
        // A dead slave with nothing on it needs no fence and no recovery (e.g. a host already
        // recovered and still off, which keeps its alerts firing).
        let limit = client.master_read_limit();
        match tokio::time::timeout(limit, recovery::resident_vms(client, &suspect)).await {
            Ok(Ok(vms)) if vms.is_empty() => {
                let why = "nothing to recover: XAPI records no VM running on the host".to_owned();
                return Ok((Event::Superseded(why), evidence));
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                evidence["resident_vms"] = json!(e);
                return Ok((
                    Event::Refused(vec![Reason::Unknown("the host's VMs")]),
                    evidence,
                ));
            }
            Err(_) => {
                return Ok((
                    Event::Refused(vec![Reason::Unknown("the host's VMs")]),
                    evidence,
                ));
            }
        }
    }
    ctx.journal
        .set_host(r.id, &suspect.uuid)
        .map_err(journal_err)?;
    state.target = Some(match findings.target {
        Target::Master => "master".into(),
        _ => "slave".into(),
    });
    state.suspect = Some(suspect.clone());
    state.survivor = findings.survivor.clone();
    if findings.target == Target::Master {
        // What the master ran when the receiver last read it, before its death: the promoted
        // host's database may come from an older backup.
        state.seen_on_master = client
            .inventory()
            .filter(|i| i.master == suspect.reference)
            .map(|i| i.master_vms)
            .unwrap_or_default();
    }
    state.answering = findings.answering.clone();
    ctx.journal
        .set_state(r.id, &json!(state), now)
        .map_err(journal_err)?;
    Ok((Event::Confirmed, evidence))
}

/// After an operator attested the host off: one more probe, which must get no answer (an
/// attestation made from a wrong console, or a host powered on again since, is caught here).
async fn reprobe(client: &PoolClient, dead: &KnownHost) -> (Event, serde_json::Value) {
    let answer = client.prober.probe(&dead.address).await;
    let silent = !answer.role.answered()
        && matches!(
            answer.no_answer,
            Some(crate::xapi::NoAnswer::Silent | crate::xapi::NoAnswer::Refused)
        );
    let seen = json!({"reprobe": {"role": answer.role.as_str(), "no_answer": answer.no_answer.map(crate::xapi::NoAnswer::as_str), "error": answer.error}});
    if silent {
        (Event::Attested, seen)
    } else {
        let why = format!(
            "the host attested powered off answers again ({})",
            answer
                .no_answer
                .map_or(answer.role.as_str(), crate::xapi::NoAnswer::as_str)
        );
        (Event::FenceFailed(why), seen)
    }
}

/// The guards' verdict and the confirmation's own problems, written into the evidence; the
/// refusal to return when any stands in the way.
fn refusal(
    verdict: Result<(), Vec<Reason>>,
    problems: &[Reason],
    evidence: &mut serde_json::Value,
) -> Option<(Event, serde_json::Value)> {
    let mut reasons = verdict.err().unwrap_or_default();
    reasons.extend(problems.iter().cloned());
    evidence["guards"] = json!(if reasons.is_empty() {
        vec!["all allow".to_owned()]
    } else {
        reasons.iter().map(ToString::to_string).collect()
    });
    (!reasons.is_empty()).then(|| (Event::Refused(reasons), evidence.clone()))
}

/// The confirmation of a split brain: which master to keep, guards without a fence, then the
/// run state the slave recovery needs (the legitimate master as survivor).
async fn split_brain_confirm(
    ctx: &Context,
    r: &Remediation,
    client: &PoolClient,
    mut state: RunState,
) -> Outcome {
    let receiver = &ctx.config.receiver;
    let journal_err = |e: JournalError| e.to_string();
    let promoted = ctx.journal.last_promotion(&r.pool).map_err(journal_err)?;
    let findings = split_brain::confirm(client, promoted.as_deref()).await;
    let mut evidence = findings.evidence.clone();
    if let Some(why) = findings.moot {
        return Ok((Event::Superseded(why), evidence));
    }
    let kill_switch = match &receiver.kill_switch_file {
        None => Some(false),
        Some(path) => path.try_exists().ok(),
    };
    // HA as the legitimate master's database says (read through a session on it).
    let ha_enabled = match &findings.legitimate {
        Some(legit) => {
            let reader = crate::xapi::PoolReader::new(client.session_on(&legit.address));
            tokio::time::timeout(client.master_read_limit(), reader.pool())
                .await
                .ok()
                .and_then(Result::ok)
                .map(|(_, pool)| pool.ha_enabled)
        }
        None => None,
    };
    let facts = Facts {
        now: unix_now(),
        mode: receiver.mode,
        approved: state.approved_by.is_some(),
        kill_switch,
        ha_enabled,
        others_reachable: findings.reachable,
        other_active: Some(None),
        fences_in_window: Some(0),
        last_action_on_host: Some(None),
        alert_firing: Some(
            !ctx.journal
                .alert_resolved(&r.fingerprint, &r.starts_at)
                .map_err(journal_err)?,
        ),
        running_for: ctx.started.elapsed(),
        host_in_maintenance: Some(false),
        suspect_probes: None,
        pool_reaches_suspect: None,
    };
    let verdict = guards::decide_without_fence(&facts, &ctx.limits());
    if let Some(refused) = refusal(verdict, &findings.problems, &mut evidence) {
        return Ok(refused);
    }
    let legit = findings
        .legitimate
        .ok_or("confirmed without a legitimate master")?;
    let other = findings
        .others
        .first()
        .cloned()
        .ok_or("confirmed without another master")?;
    ctx.journal
        .set_host(r.id, &other.uuid)
        .map_err(journal_err)?;
    state.target = Some("split_brain".into());
    state.suspect = Some(other);
    state.survivor = Some(legit);
    state.answering = findings.answering;
    ctx.journal
        .set_state(r.id, &json!(state), unix_now())
        .map_err(journal_err)?;
    Ok((Event::Confirmed, evidence))
}

async fn fence_step(ctx: &Context, r: &Remediation, dead: &KnownHost) -> Outcome {
    let journal_err = |e: JournalError| e.to_string();
    let Some(agent) = ctx.fence_agent(&r.pool, dead)? else {
        return Ok((
            Event::NoFenceAgent,
            json!({"fence": "no fence agent configured for this host"}),
        ));
    };
    ctx.journal
        .record_fence(r.id, &r.pool, &dead.uuid, "issued", unix_now())
        .map_err(journal_err)?;
    ctx.fences.lock().unwrap_or_else(|e| e.into_inner()).push((
        r.pool.clone(),
        dead.uuid.clone(),
        std::time::Instant::now(),
    ));
    tracing::warn!(id = r.id, pool = %r.pool, host = %dead.name_label, agent = %agent.program, "Fencing: power off through the BMC.");
    let result = agent
        .power_off_confirmed(FENCE_READS, FENCE_READ_PAUSE)
        .await;
    let confirmed = result.is_ok();
    ctx.metrics.fence(&r.pool, confirmed);
    let outcome = if confirmed { "confirmed_off" } else { "failed" };
    ctx.journal
        .record_fence(r.id, &r.pool, &dead.uuid, outcome, unix_now())
        .map_err(journal_err)?;
    match result {
        Ok(runs) => Ok((
            Event::FenceConfirmedOff,
            json!({"agent": agent.program, "runs": runs}),
        )),
        Err(e) => Ok((
            Event::FenceFailed(e.to_string()),
            json!({"agent": agent.program, "error": e.to_string()}),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FenceHost;
    use crate::xapi::records::Ref;

    fn host(uuid: &str, name: &str, address: &str) -> KnownHost {
        KnownHost {
            reference: Ref::new(format!("OpaqueRef:{uuid}")),
            uuid: uuid.into(),
            name_label: name.into(),
            address: address.into(),
            in_maintenance: false,
        }
    }

    fn entry(key: &str) -> FenceHost {
        FenceHost {
            pool: "p".into(),
            host: key.into(),
            agent: "fence_ipmilan".into(),
            args: Default::default(),
            password_file: None,
        }
    }

    const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

    #[test]
    fn a_fencing_key_means_one_host_or_nothing() {
        let (a, b) = (host(A, "xen1", "10.0.0.1"), host(B, "xen2", "10.0.0.2"));
        let known = [a.clone(), b.clone()];
        let pick = |entries: &[FenceHost], h: &KnownHost| {
            fence_entry(entries, "p", h, &known).map(|e| e.map(|e| e.host.clone()))
        };
        assert_eq!(pick(&[entry(A), entry(B)], &b), Ok(Some(B.into())));
        assert_eq!(
            pick(&[entry(A)], &b),
            Ok(None),
            "a reinstalled host has no entry"
        );
        // b renamed to a's old name: the name key follows the name, the uuid key does not.
        let renamed = [host(A, "old-xen1", "10.0.0.1"), host(B, "xen1", "10.0.0.2")];
        assert_eq!(
            fence_entry(&[entry("xen1")], "p", &renamed[0], &renamed).unwrap(),
            None
        );
        assert_eq!(pick(&[entry("xen2")], &b), Ok(Some("xen2".into())));
        // A label equal to another host's address names two hosts.
        let clash = [host(A, "10.0.0.2", "10.0.0.1"), b.clone()];
        assert!(fence_entry(&[entry("10.0.0.2")], "p", &b, &clash).is_err());
        // Two entries meaning the same host.
        assert!(pick(&[entry(B), entry("xen2")], &b).is_err());
    }
}
