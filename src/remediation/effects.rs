//! The effects the [executor](super::executor) issues: each one performs a step of a
//! remediation (confirmation, fence, recovery step) and reports the [`Event`] that ends it,
//! journaling its evidence as it goes. The executor alone decides what comes next.

use std::time::Duration;

use serde_json::json;

use super::confirm::{Findings, Probing, confirm};
use super::decision::{self, Confirmation, Decision, JournaledFences};
use super::executor::Context;
use super::fence;
use super::guards::{self, Facts, Reason};
use super::inventory::{KnownHost, PoolClient};
use super::journal::Remediation;
use super::lease::{self, Lease, LeaseError};
use super::machine::{Effect, Event, Target};
use super::policy::PlanKind;
use super::recovery::{self, RunState, StepError};
use super::split_brain;

/// Status reads after a fence's `off` before it counts as failed.
const FENCE_READS: u32 = 10;
/// Pause between those reads.
const FENCE_READ_PAUSE: Duration = Duration::from_secs(1);

/// Performs one effect and says what came of it. Evidence goes to the journal as it is found.
pub(super) async fn perform(ctx: &Context, id: i64, effect: Effect) -> Event {
    let step = effect_name(&effect);
    let result = perform_inner(ctx, id, &effect).await;
    // An error must end the phase it happened in, never leave it waiting.
    let (event, evidence, outcome) = match result {
        Ok((event, evidence)) => {
            let failed = matches!(
                event,
                Event::StepFailed(_) | Event::FenceFailed(_) | Event::Refused(_) | Event::Hold(_)
            );
            (event, evidence, if failed { "failed" } else { "ok" })
        }
        Err(e) => {
            let why = e.to_string();
            let event = match effect {
                Effect::Confirm => {
                    Event::Refused(vec![Reason::Unknown("the confirmation's inputs")])
                }
                Effect::Fence | Effect::ReadBmc | Effect::Reprobe => {
                    Event::FenceFailed(why.clone())
                }
                _ => Event::StepFailed(format!("{step}: {why}")),
            };
            (event, json!({"error": why, "kind": e.kind()}), e.kind())
        }
    };
    ctx.metrics.step(step, outcome);
    if let Err(e) = ctx.journal.add_step(id, step, &evidence, ctx.clock.unix()) {
        ctx.metrics.journal_error();
        tracing::error!(id, error = %e, "Cannot journal a step's evidence.");
    }
    event
}

/// The event that ends an effect's phase when the effect could not run: before the fence it
/// blocks, during the fence it is a failed fence, after it a failed step.
pub(super) fn failure_event(effect: &Effect, why: String) -> Event {
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

type Outcome = Result<(Event, serde_json::Value), StepError>;

/// A record the step needs is missing from the run state or the journal.
fn missing(what: &str) -> StepError {
    StepError::Receiver(what.to_owned())
}

async fn perform_inner(ctx: &Context, id: i64, effect: &Effect) -> Outcome {
    let r = ctx
        .journal
        .remediation(id)?
        .ok_or_else(|| missing("remediation vanished from the journal"))?;
    let mut state: RunState = serde_json::from_value(ctx.journal.state(id)?)
        .map_err(|e| StepError::Receiver(format!("the journal's run state cannot be read: {e}")))?;
    let client = ctx
        .pools
        .get(&r.pool)
        .ok_or_else(|| StepError::Receiver(format!("pool {} is no longer configured", r.pool)))?
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
        .ok_or_else(|| missing("no confirmed host in the run state"))?;
    let save = |state: &RunState| {
        ctx.journal
            .set_state(id, &json!(state), ctx.clock.unix())
            .map_err(StepError::from)
    };
    // After the fence, every step but a promotion (a dead master arbitrates nothing) first
    // makes sure this receiver still holds the pool's lease.
    let leased = !split_brain
        && !matches!(
            effect,
            Effect::Fence | Effect::Reprobe | Effect::ReadBmc | Effect::Promote
        );
    if leased {
        match take_lease(ctx, &r, &client, &dead).await {
            Ok(()) => {}
            Err(e) if e.is_contested() => {
                return Ok((Event::Hold(e.to_string()), json!({"lease": e.to_string()})));
            }
            Err(LeaseError::Xapi(source)) => {
                return Err(StepError::Xapi {
                    what: "the pool's lease",
                    source,
                });
            }
            Err(e) => return Err(StepError::Receiver(e.to_string())),
        }
    }
    match effect {
        Effect::Confirm => unreachable!("handled above"),
        Effect::Fence => fence_step(ctx, &r, &dead).await,
        Effect::Reprobe => Ok(reprobe(&client, &dead).await),
        Effect::ReadBmc => {
            let levels = ctx
                .fence_levels(&r.pool, &dead)
                .map_err(StepError::Receiver)?;
            if levels.is_empty() {
                if state.attested_by.is_some() {
                    // Resumed after a crash while an attestation was being checked.
                    return Ok(reprobe(&client, &dead).await);
                }
                return Ok((
                    Event::FenceFailed("no fence agent configured to read the BMC".into()),
                    json!({}),
                ));
            }
            // An agent killed with the receiver may still be finishing its `off`: read a few
            // times before concluding the host is on.
            let mut reads = Vec::new();
            for attempt in 1..=FENCE_READS {
                let (read, seen) = fence::levels_read_off(&levels).await;
                reads.push(seen);
                match read {
                    Ok(Some(level)) => {
                        return Ok((
                            Event::BmcReads(true),
                            json!({"resumed_reads": reads, "off_at_level": level}),
                        ));
                    }
                    Ok(None) if attempt == FENCE_READS => {
                        return Ok((Event::BmcReads(false), json!({"resumed_reads": reads})));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return Ok((
                            Event::FenceFailed(e.clone()),
                            json!({"resumed_reads": reads, "error": e}),
                        ));
                    }
                }
                tokio::time::sleep(FENCE_READ_PAUSE).await;
            }
            unreachable!("the last read returns")
        }
        Effect::Promote => {
            let survivor = state
                .survivor
                .clone()
                .ok_or_else(|| missing("no survivor chosen"))?;
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
            let survivor = state
                .survivor
                .clone()
                .ok_or_else(|| missing("no survivor chosen"))?;
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
            let master = state.target == Some(Target::Master);
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
            let fenced = ctx.journal.fenced_hosts(&r.pool)?;
            let hold =
                recovery::Hold::read(&client, fenced, ctx.config.receiver.rejoin_healthy).await;
            let evidence =
                recovery::start_vms(&client, &dead, &survivors, &hold, &mut state.vms).await?;
            save(&state)?;
            Ok((Event::StepDone, evidence))
        }
        Effect::Verify if split_brain => {
            let legit = state
                .survivor
                .clone()
                .ok_or_else(|| missing("no legitimate master chosen"))?;
            let (summary, evidence) = split_brain::verify(&client, &legit).await?;
            state.summary = Some(summary);
            save(&state)?;
            client.refresh_bounded(ctx.clock.unix()).await;
            Ok((Event::StepDone, evidence))
        }
        Effect::Verify => {
            let check_by_hand = [state.unaccounted.clone(), state.doubtful.clone()].concat();
            let (summary, mut evidence) =
                recovery::verify(&client, &dead, &state.vms, &check_by_hand).await?;
            evidence["lease"] =
                json!(
                    match lease::give_back(&client.reader(), &client.actuator(), &ctx.owner).await {
                        Ok(true) => "released".to_owned(),
                        Ok(false) => "not held".to_owned(),
                        Err(e) => format!("left to expire: {e}"),
                    }
                );
            state.summary = Some(summary);
            save(&state)?;
            let running = evidence["running"].as_u64().unwrap_or(0);
            let not_running = (state.vms.len() as u64).saturating_sub(running);
            ctx.metrics
                .vms(&r.pool, running, not_running, check_by_hand.len() as u64);
            // The recovery moved VMs: the next plan must start from where they run now.
            client.refresh_bounded(ctx.clock.unix()).await;
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

/// The confirmation of a dead host: probe it, gather every fact, decide (pure), and only then
/// take the pool's lease and record what the recovery needs.
async fn confirm_step(
    ctx: &Context,
    r: &Remediation,
    client: &PoolClient,
    mut state: RunState,
) -> Outcome {
    let receiver = &ctx.config.receiver;
    let probing = Probing {
        window: receiver.confirm_window,
        probes: receiver.confirm_probes,
        refused_grace: receiver.refused_grace,
        clock: ctx.clock.as_ref(),
    };
    let findings = confirm(client, &r.host_uuid, probing, |host| {
        ctx.fence_levels(&r.pool, host)
    })
    .await;
    let mut evidence = findings.evidence.clone();
    let mut confirmation = gather(ctx, r, &findings, &state)?;
    let mut verdict = decision::decide(&confirmation, &ctx.limits());
    // The VM count is read last, only when everything else allows: it is a call to the master,
    // which a dead or cut-off master makes wait for the whole limit.
    if verdict == Decision::Proceed
        && findings.target == Target::Slave
        && let Some(suspect) = &findings.suspect
    {
        confirmation.resident_vms = Some(resident_vm_count(client, suspect, &mut evidence).await);
        verdict = decision::decide(&confirmation, &ctx.limits());
    }
    match verdict {
        Decision::Superseded(why) => return Ok((Event::Superseded(why), evidence)),
        Decision::Refused(reasons) => {
            evidence["guards"] = guards_evidence(&reasons);
            for reason in &reasons {
                if let Reason::Storm {
                    unhealthy, hosts, ..
                } = reason
                {
                    // Starts the pool's cooldown, by both clocks.
                    ctx.journal
                        .record_storm(&r.pool, *unhealthy, *hosts, ctx.clock.unix())?;
                    let mut record = ctx.storm_record.lock().unwrap_or_else(|e| e.into_inner());
                    // Only the latest stand-down of a pool matters.
                    record.stand_downs.retain(|(pool, _)| *pool != r.pool);
                    record
                        .stand_downs
                        .push((r.pool.clone(), ctx.clock.monotonic()));
                }
            }
            return Ok((Event::Refused(reasons), evidence));
        }
        Decision::Proceed => evidence["guards"] = guards_evidence(&[]),
    }
    let suspect = findings
        .suspect
        .clone()
        .ok_or_else(|| missing("confirmed without a suspect"))?;
    if findings.target == Target::Slave {
        // The master is alive: it arbitrates between receivers before anyone is fenced.
        match take_lease(ctx, r, client, &suspect).await {
            Ok(()) => evidence["lease"] = json!("taken"),
            Err(e) => {
                evidence["lease"] = json!(e.to_string());
                let reason = if e.is_contested() {
                    Reason::PoolLeaseHeld(e.to_string())
                } else {
                    Reason::Unknown("the pool's lease")
                };
                return Ok((Event::Refused(vec![reason]), evidence));
            }
        }
    }
    ctx.journal.set_host(r.id, &suspect.uuid)?;
    state.target = Some(findings.target);
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
        .set_state(r.id, &json!(state), ctx.clock.unix())?;
    Ok((Event::Confirmed, evidence))
}

/// Reads what the confirmation's decision needs from the journal and the findings (the VM
/// count comes later); what could not be read is `None`, on which the guards fail closed.
fn gather(
    ctx: &Context,
    r: &Remediation,
    findings: &Findings,
    state: &RunState,
) -> Result<Confirmation, StepError> {
    let receiver = &ctx.config.receiver;
    let now = ctx.clock.unix();
    let suspect = findings.suspect.as_ref();
    // Several alerts about one death: the first recovery finishing after this one was planned
    // makes it moot. A later death of the same host meets the cooldown instead.
    let recovered_by = match suspect {
        Some(host) => ctx
            .journal
            .done_for_host(&r.pool, &host.uuid, r.created_at, r.id)?,
        None => None,
    };
    let window = receiver.fence_budget.window;
    let journaled = JournaledFences {
        in_window: ctx
            .journal
            .fences_since(&r.pool, now - window.as_secs_f64())?,
        last_of_suspect: match suspect {
            Some(host) => Some(ctx.journal.last_fence_of(&r.pool, &host.uuid)?),
            None => None,
        },
    };
    let here = ctx.fences_here(&r.pool, window);
    let (fences_in_window, last_action_on_host) =
        decision::fence_facts(now, suspect.map(|h| h.uuid.as_str()), journaled, &here);
    let storm = &receiver.storm;
    let (suspects_here, storm_here) = ctx.storms_here(&r.pool, storm.window);
    let mut recent = ctx
        .journal
        .recent_suspects(&r.pool, now - storm.window.as_secs_f64())?;
    recent.extend(suspects_here);
    if let Some(host) = suspect {
        let mut record = ctx.storm_record.lock().unwrap_or_else(|e| e.into_inner());
        record
            .suspects
            .push((r.pool.clone(), host.uuid.clone(), ctx.clock.monotonic()));
    }
    let unhealthy = match (suspect, findings.others_reachable) {
        (Some(host), Some((_, others))) => Some((
            decision::unhealthy_hosts(&host.uuid, &findings.silent, &recent),
            others + 1,
        )),
        _ => None,
    };
    Ok(Confirmation {
        facts: Facts {
            now,
            mode: receiver.mode,
            approved: state.approved_by.is_some(),
            kill_switch: kill_switch(ctx),
            ha_enabled: findings.ha_enabled,
            others_reachable: findings.others_reachable,
            fences_in_window,
            last_action_on_host,
            alert_firing: Some(!ctx.journal.alert_resolved(&r.fingerprint, &r.starts_at)?),
            running_for: ctx.running_for(),
            host_in_maintenance: findings.in_maintenance,
            suspect_probes: findings.suspect_probes,
            pool_reaches_suspect: findings.pool_reaches_suspect,
            unhealthy,
            last_storm: Some(decision::last_storm(
                now,
                ctx.journal.last_storm(&r.pool)?,
                storm_here,
            )),
        },
        problems: findings.problems.clone(),
        recovered_by,
        resident_vms: None,
    })
}

/// How many VMs XAPI records running on a dead slave, or why that could not be read. A dead
/// slave with nothing on it needs no fence and no recovery (e.g. a host already recovered and
/// still off, which keeps its alerts firing).
async fn resident_vm_count(
    client: &PoolClient,
    host: &KnownHost,
    evidence: &mut serde_json::Value,
) -> Result<usize, String> {
    let limit = client.master_read_limit();
    let read = match tokio::time::timeout(limit, recovery::resident_vms(client, host)).await {
        Ok(Ok(vms)) => Ok(vms.len()),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {} s", limit.as_secs_f64())),
    };
    if let Err(why) = &read {
        evidence["resident_vms"] = json!(why);
    }
    read
}

/// Whether the kill-switch file exists (`Some(false)` when none is configured).
fn kill_switch(ctx: &Context) -> Option<bool> {
    match &ctx.config.receiver.kill_switch_file {
        None => Some(false),
        Some(path) => path.try_exists().ok(),
    }
}

/// Takes or renews this remediation's lease on the pool (through the pool session: the
/// master, or the promoted one).
async fn take_lease(
    ctx: &Context,
    r: &Remediation,
    client: &PoolClient,
    host: &KnownHost,
) -> Result<(), LeaseError> {
    let now = ctx.clock.unix();
    let mine = Lease {
        owner: ctx.owner.clone(),
        remediation: r.id,
        host: host.uuid.clone(),
        expires: now + ctx.config.receiver.pool_lease.as_secs_f64(),
    };
    let limit = client.master_read_limit();
    let (reader, actuator) = (client.reader(), client.actuator());
    match tokio::time::timeout(limit, lease::take(&reader, &actuator, &mine, now)).await {
        Ok(result) => result,
        Err(_) => Err(LeaseError::Xapi(crate::xapi::Error::Timeout {
            address: "the pool master".into(),
            method: "pool.add_to_other_config".into(),
            seconds: limit.as_secs_f64(),
        })),
    }
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

/// What stood in the way, as the journal's evidence says it.
fn guards_evidence(reasons: &[Reason]) -> serde_json::Value {
    if reasons.is_empty() {
        json!(["all allow"])
    } else {
        json!(reasons.iter().map(ToString::to_string).collect::<Vec<_>>())
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
    evidence["guards"] = guards_evidence(&reasons);
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
    let promoted = ctx.journal.last_promotion(&r.pool)?;
    let findings = split_brain::confirm(client, promoted.as_deref()).await;
    let mut evidence = findings.evidence.clone();
    if let Some(why) = findings.moot {
        return Ok((Event::Superseded(why), evidence));
    }
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
        now: ctx.clock.unix(),
        mode: receiver.mode,
        approved: state.approved_by.is_some(),
        kill_switch: kill_switch(ctx),
        ha_enabled,
        others_reachable: findings.reachable,
        fences_in_window: Some(0),
        last_action_on_host: Some(None),
        alert_firing: Some(!ctx.journal.alert_resolved(&r.fingerprint, &r.starts_at)?),
        running_for: ctx.running_for(),
        host_in_maintenance: Some(false),
        suspect_probes: None,
        pool_reaches_suspect: None,
        // Not weighed: a split brain's plan fences nobody.
        unhealthy: None,
        last_storm: None,
    };
    let verdict = guards::decide_without_fence(&facts, &ctx.limits());
    if let Some(refused) = refusal(verdict, &findings.problems, &mut evidence) {
        return Ok(refused);
    }
    let legit = findings
        .legitimate
        .ok_or_else(|| missing("confirmed without a legitimate master"))?;
    let other = findings
        .others
        .first()
        .cloned()
        .ok_or_else(|| missing("confirmed without another master"))?;
    ctx.journal.set_host(r.id, &other.uuid)?;
    state.target = Some(Target::SplitBrain);
    state.suspect = Some(other);
    state.survivor = Some(legit);
    state.answering = findings.answering;
    ctx.journal
        .set_state(r.id, &json!(state), ctx.clock.unix())?;
    Ok((Event::Confirmed, evidence))
}

async fn fence_step(ctx: &Context, r: &Remediation, dead: &KnownHost) -> Outcome {
    let levels = ctx
        .fence_levels(&r.pool, dead)
        .map_err(StepError::Receiver)?;
    if levels.is_empty() {
        return Ok((
            Event::NoFenceAgent,
            json!({"fence": "no fence agent configured for this host"}),
        ));
    }
    ctx.journal
        .record_fence(r.id, &r.pool, &dead.uuid, "issued", ctx.clock.unix())?;
    ctx.fences.lock().unwrap_or_else(|e| e.into_inner()).push((
        r.pool.clone(),
        dead.uuid.clone(),
        ctx.clock.monotonic(),
    ));
    tracing::warn!(id = r.id, pool = %r.pool, host = %dead.name_label, levels = levels.len(), "Fencing: power off through the fencing levels.");
    let (fenced_at, tried) = fence::fence_by_levels(&levels, FENCE_READS, FENCE_READ_PAUSE).await;
    for level in &tried {
        ctx.metrics.fence_level(&r.pool, level.level, level.off);
        if !level.off {
            tracing::warn!(id = r.id, pool = %r.pool, host = %dead.name_label, level = level.level, "Fencing level failed; the next level, if any, is tried.");
        }
    }
    let confirmed = fenced_at.is_some();
    ctx.metrics.fence(&r.pool, confirmed);
    let outcome = if confirmed { "confirmed_off" } else { "failed" };
    ctx.journal
        .record_fence(r.id, &r.pool, &dead.uuid, outcome, ctx.clock.unix())?;
    match fenced_at {
        Some(level) => Ok((
            Event::FenceConfirmedOff,
            json!({"fenced_at_level": level, "levels": tried}),
        )),
        None => {
            let why = tried
                .iter()
                .map(|l| {
                    let errors: Vec<&str> =
                        l.agents.iter().filter_map(|a| a.error.as_deref()).collect();
                    format!("level {}: {}", l.level, errors.join(", "))
                })
                .collect::<Vec<_>>()
                .join("; ");
            Ok((
                Event::FenceFailed(format!("every fencing level failed ({why})")),
                json!({"levels": tried}),
            ))
        }
    }
}
