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
use super::clock::Clock;
use super::effects::{failure_event, perform};
use super::fence::{FenceAgent, Level};
use super::guards::{Limits, Reason};
use super::inventory::{KnownHost, PoolClient};
use super::journal::{Journal, JournalError, NewAlert, Remediation};
use super::machine::{Effect, Event, Phase, PhaseName, Target, is_recovery_step, transition};
use super::metrics::ReceiverMetrics;
use super::policy::{PlanKind, intent_for};
use super::recovery::RunState;
use super::words::RequestKind;
use crate::config::{Config, Mode};

/// How often operator requests are read from the journal.
const REQUEST_POLL: Duration = Duration::from_millis(500);

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
    /// Where the receiver reads the time.
    pub clock: Arc<dyn Clock>,
    /// When the receiver started (monotonic, by `clock`).
    pub started: std::time::Instant,
    /// Fences issued by this run: pool, host uuid, when (monotonic, by `clock`).
    pub fences: std::sync::Mutex<Vec<(String, String, std::time::Instant)>>,
    /// Remediations this run confirmed (pool, suspect host uuid) and storm stand-downs (pool,
    /// empty host), when (monotonic): the storm limit's window and cooldown, kept by a clock
    /// the wall clock cannot step.
    pub storm_record: std::sync::Mutex<StormRecord>,
    /// This receiver's name in the pools' leases ([`super::lease`]).
    pub owner: String,
}

/// What this run saw of storms, by the monotonic clock (see [`Context::storm_record`]).
#[derive(Debug, Default)]
pub struct StormRecord {
    /// Pool, suspect host uuid, when confirmed.
    pub suspects: Vec<(String, String, std::time::Instant)>,
    /// Pool, when it stood down.
    pub stand_downs: Vec<(String, std::time::Instant)>,
}

impl Context {
    /// Fences this run issued in `pool` within `window`: host uuid and age.
    pub(super) fn fences_here(&self, pool: &str, window: Duration) -> Vec<(String, Duration)> {
        let now = self.clock.monotonic();
        self.fences
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(p, host, at)| (p, host, now.saturating_duration_since(*at)))
            .filter(|(p, _, age)| *p == pool && *age < window)
            .map(|(_, host, age)| (host.clone(), age))
            .collect()
    }

    /// The suspects this run confirmed in `pool` within `window`, and the age of its most
    /// recent storm stand-down there (monotonic).
    pub(super) fn storms_here(
        &self,
        pool: &str,
        window: Duration,
    ) -> (Vec<String>, Option<Duration>) {
        let now = self.clock.monotonic();
        let mut record = self.storm_record.lock().unwrap_or_else(|e| e.into_inner());
        // Older suspects cannot count again; the record stays as small as the window.
        record
            .suspects
            .retain(|(_, _, at)| now.saturating_duration_since(*at) < window);
        let suspects = record
            .suspects
            .iter()
            .filter(|(p, _, at)| p == pool && now.saturating_duration_since(*at) < window)
            .map(|(_, host, _)| host.clone())
            .collect();
        let last = record
            .stand_downs
            .iter()
            .filter(|(p, _)| p == pool)
            .map(|(_, at)| now.saturating_duration_since(*at))
            .min();
        (suspects, last)
    }

    /// How long the receiver has run (monotonic).
    pub(super) fn running_for(&self) -> Duration {
        self.clock
            .monotonic()
            .saturating_duration_since(self.started)
    }

    pub(super) fn limits(&self) -> Limits {
        let r = &self.config.receiver;
        Limits {
            max_fences: r.fence_budget.max_fences,
            fence_window: r.fence_budget.window,
            host_cooldown: r.host_cooldown,
            startup_quiet: r.startup_quiet,
            refused_grace: r.refused_grace,
            max_unhealthy: r.storm.max_unhealthy,
            storm_cooldown: r.storm.cooldown,
        }
    }

    /// The fence agent configured for a host (see [`fence_entry`]).
    /// The fencing levels of `host` (empty: none configured), each with its agents.
    pub(super) fn fence_levels(&self, pool: &str, host: &KnownHost) -> Result<Vec<Level>, String> {
        let fencing = &self.config.fencing;
        let inventory = self.pools.get(pool).and_then(|c| c.inventory());
        let known = inventory.as_ref().map_or(&[][..], |i| i.hosts.as_slice());
        let Some(entry) = fence_entry(&fencing.hosts, pool, host, known)? else {
            return Ok(Vec::new());
        };
        let agent = |device: &crate::config::FenceDevice| -> Result<FenceAgent, String> {
            let password = device
                .password()
                .map_err(|e| format!("fence password: {e}"))?
                .map(|s| s.expose().to_owned());
            Ok(FenceAgent {
                program: device.agent.clone(),
                args: device.args.clone(),
                password,
                timeout: fencing.agent_timeout,
            })
        };
        entry
            .levels
            .iter()
            .map(|level| {
                Ok(Level {
                    agents: level.agents.iter().map(agent).collect::<Result<_, _>>()?,
                })
            })
            .collect()
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
        let mut pending = Vec::new();
        for r in self.journal().in_phases(&open)? {
            match self.read(&r)? {
                Ok((phase, state)) => pending.push((r, phase, state)),
                Err(why) => self.unreadable(&r, why)?,
            }
        }
        // Those that hold their pool first, so queued ones wait behind them.
        pending.sort_by_key(|(r, phase, _)| {
            (!phase.holds_pool() || *phase == Phase::Confirming, r.id)
        });
        for (r, phase, state) in pending {
            if phase == Phase::Planned && state.mode != Mode::Auto {
                continue;
            }
            tracing::warn!(id = r.id, phase = %r.phase, "Resuming a remediation left mid-way.");
            self.journal().add_step(
                r.id,
                "resumed",
                &json!({"phase": r.phase}),
                self.ctx.clock.unix(),
            )?;
            if phase.holds_pool() && phase != Phase::Confirming {
                self.owners.insert(r.pool.clone(), r.id);
            }
            self.apply(r.id, Event::Resumed)?;
        }
        Ok(())
    }

    /// A remediation's phase and run state as journaled, or why this version cannot read them
    /// (a phase it does not know, an undecodable run state, a confirmed recovery without its
    /// target): never a default, which could skip a step.
    fn read(&self, r: &Remediation) -> Result<Result<(Phase, RunState), String>, JournalError> {
        let Some(phase) = Phase::from_journal(&r.phase, &r.reason) else {
            return Ok(Err(format!(
                "phase {:?} is unknown to this version",
                r.phase
            )));
        };
        let state: RunState = match serde_json::from_value(self.journal().state(r.id)?) {
            Ok(state) => state,
            Err(e) => return Ok(Err(format!("its run state cannot be decoded: {e}"))),
        };
        let confirmed = phase.holds_pool() && phase != Phase::Confirming;
        if confirmed && state.target.is_none() && r.kind != PlanKind::ResolveSplitBrain.as_str() {
            return Ok(Err(
                "its run state names no target after confirmation".into()
            ));
        }
        Ok(Ok((phase, state)))
    }

    /// Stops a remediation the journal cannot describe: blocked, with the reason, and the pool
    /// freed. Nothing more is done for it.
    fn unreadable(&mut self, r: &Remediation, why: String) -> Result<(), JournalError> {
        let reason = Reason::UnreadableJournal(why);
        tracing::error!(id = r.id, pool = %r.pool, phase = %r.phase, %reason, "Remediation blocked: the journal cannot be read.");
        self.journal().set_phase_with_step(
            r.id,
            PhaseName::Blocked.as_str(),
            &reason.to_string(),
            "phase",
            &json!({"from": r.phase, "to": "blocked", "reason": reason.to_string()}),
            self.ctx.clock.unix(),
        )?;
        self.ctx.metrics.plan(&r.pool, &r.kind, "blocked");
        self.ctx
            .metrics
            .blocked(&r.pool, std::slice::from_ref(&reason));
        self.release(&r.pool, r.id);
        Ok(())
    }

    fn alert(&mut self, new: &NewAlert) -> Result<(), JournalError> {
        let now = self.ctx.clock.unix();
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
                    mode,
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
            let now = self.ctx.clock.unix();
            let Some(r) = self.journal().remediation(request.remediation_id)? else {
                self.journal()
                    .handle_request(request.id, "no such remediation", now)?;
                continue;
            };
            let (phase, mut state) = match self.read(&r)? {
                Ok(read) => read,
                Err(why) => {
                    let answer = format!("refused: the remediation is unreadable: {why}");
                    self.journal().handle_request(request.id, &answer, now)?;
                    if !Phase::from_journal(&r.phase, "").is_some_and(|p| p.is_terminal()) {
                        self.unreadable(&r, why)?;
                    }
                    continue;
                }
            };
            let Some(kind) = RequestKind::parse(&request.kind) else {
                let why = format!("refused: unknown request {:?}", request.kind);
                self.journal().handle_request(request.id, &why, now)?;
                continue;
            };
            let event = match (kind, &phase) {
                (RequestKind::Approve, Phase::AwaitingApproval) => Some(Event::Go),
                (RequestKind::Attest, Phase::AwaitingAttestation) => Some(Event::Attested),
                (RequestKind::Abort, p) if p.before_acting() || matches!(p, Phase::Held(_)) => {
                    Some(Event::OperatorAbort)
                }
                (RequestKind::Resume, Phase::Held(_)) => Some(Event::OperatorResume),
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
            if let Some(why) = self.stale_request(&request, kind, now) {
                self.journal().handle_request(request.id, &why, now)?;
                continue;
            }
            match kind {
                RequestKind::Approve => state.approved_by = Some(request.operator.clone()),
                RequestKind::Attest => state.attested_by = Some(request.operator.clone()),
                RequestKind::Abort | RequestKind::Resume => {}
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
        let (phase, state) = match self.read(&r)? {
            Ok(read) => read,
            Err(why) if Phase::from_journal(&r.phase, "").is_some_and(|p| p.is_terminal()) => {
                // Finished already: nothing to stop, only the event to note.
                tracing::warn!(id, %why, "An event for a finished remediation that cannot be read.");
                return Ok(());
            }
            Err(why) => return self.unreadable(&r, why),
        };
        let target = if r.kind == PlanKind::ResolveSplitBrain.as_str() {
            Target::SplitBrain
        } else {
            // Before the confirmation the target is not known yet and no transition needs it.
            state.target.unwrap_or(Target::Slave)
        };
        let now = self.ctx.clock.unix();
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
        if let Event::Hold(why) = &event {
            held_because = Some(format!(
                "{}: {why}; `xenguard journal resume {id}` retries the step",
                phase.name()
            ));
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
        self.journal().set_phase_with_step(
            id,
            next.name(),
            &reason,
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
    fn stale_request(
        &self,
        request: &super::journal::Request,
        kind: RequestKind,
        now: f64,
    ) -> Option<String> {
        const SKEW: f64 = 5.0;
        if request.at > now + SKEW {
            return Some(format!(
                "refused: made {:.0} s in the future by the receiver's clock; its age is unknown",
                request.at - now
            ));
        }
        let limit = self.ctx.config.receiver.attestation_max_age.as_secs_f64();
        (kind == RequestKind::Attest && now - request.at > limit).then(|| {
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
            levels: vec![crate::config::FenceLevel {
                agents: vec![crate::config::FenceDevice {
                    agent: "fence_ipmilan".into(),
                    args: Default::default(),
                    password_file: None,
                }],
            }],
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
