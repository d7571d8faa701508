//! The confirmation check (architecture.md §6), run at action time and never trusting the alert or
//! any cache: repeated fresh probes of the suspect host over the confirmation window, one probe
//! of every other host (quorum), the pool's HA state, and the BMC's power status.
//!
//! # Expected flow
//! Probe every host once, concurrently; name the suspect (the alert's `host_uuid`, or for a
//! master alert without one, the host the answering slaves name as their master); probe the
//! suspect again until `probes` probes span the window; read HA; read the BMC.
//!
//! # Guarantees
//! - Facts it cannot establish stay `None`, which the guards turn into a block.
//! - The inventory only names hosts; whether they answer comes from the probes made here.
//! - The HA state is read fresh from the master when one answers; when none does (the master
//!   is the suspect), the last inventory's value is used if it is at most [`HA_MAX_AGE`] old,
//!   and the evidence says so. xapi refuses the promotion itself when HA is armed.

use std::time::Duration;

use serde::Serialize;
use serde_json::json;
use tokio::task::JoinSet;

use super::clock::Clock;
use super::fence::Level;
use super::guards::{Reason, SuspectProbes};
use super::inventory::{Inventory, KnownHost, PoolClient};
use super::machine::Target;
use crate::xapi::NoAnswer;
use crate::xapi::probe::{self, Role};

/// Pause between probes of a host that refuses, while its grace runs.
const REFUSED_PROBE_INTERVAL: Duration = Duration::from_secs(2);

/// Oldest inventory whose HA state may stand in for a fresh read.
pub const HA_MAX_AGE: Duration = Duration::from_secs(900);

/// What the confirmation established.
#[derive(Debug, Clone)]
pub struct Findings {
    /// The suspect host, once named.
    pub suspect: Option<KnownHost>,
    /// Whether it is the master (promotion needed) or a slave.
    pub target: Target,
    /// For a master: the host to promote (first answering other host by address).
    pub survivor: Option<KnownHost>,
    /// Other hosts that answered (the slaves `recover_slaves` should return, plus the survivor).
    pub answering: Vec<KnownHost>,
    /// What the fresh probes of the suspect showed.
    pub suspect_probes: Option<SuspectProbes>,
    /// Whether the pool itself still reaches the suspect.
    pub pool_reaches_suspect: Option<bool>,
    /// Other hosts that answered, and how many other hosts there are.
    pub others_reachable: Option<(usize, usize)>,
    /// Other hosts (uuids) that did not answer the first round of probes.
    pub silent: Vec<String>,
    /// `pool.ha_enabled`.
    pub ha_enabled: Option<bool>,
    /// The suspect's maintenance mode.
    pub in_maintenance: Option<bool>,
    /// Blocks that are not guards' facts (no host to promote, suspect unknown).
    pub problems: Vec<Reason>,
    /// Everything above and the raw answers, for the journal.
    pub evidence: serde_json::Value,
}

#[derive(Debug, Serialize)]
struct ProbeSeen {
    at: f64,
    address: String,
    role: &'static str,
    detail: String,
}

/// Tallies the probes of the suspect, with when its refusals began.
#[derive(Debug, Default)]
struct Tally {
    probes: SuspectProbes,
    first_refusal: Option<tokio::time::Instant>,
}

impl Tally {
    fn add(&mut self, answer: &probe::Answer) {
        let p = &mut self.probes;
        p.made += 1;
        if answer.role.answered() {
            p.answered += 1;
            return;
        }
        match answer.no_answer {
            Some(NoAnswer::Silent) => {}
            Some(NoAnswer::Refused) => {
                p.refused += 1;
                let now = tokio::time::Instant::now();
                let since = *self.first_refusal.get_or_insert(now);
                p.refused_for = (now - since).as_secs_f64();
            }
            // A probe that failed without saying how is not silence.
            Some(NoAnswer::Unverifiable) | None => p.unverifiable += 1,
        }
    }

    /// Only refusals so far, not yet for `grace`: worth probing on.
    fn refusing_within(&self, grace: Duration) -> bool {
        let p = &self.probes;
        p.refused > 0
            && p.answered == 0
            && p.unverifiable == 0
            && p.refused_for < grace.as_secs_f64()
    }
}

fn seen(clock: &dyn Clock, address: &str, answer: &probe::Answer) -> ProbeSeen {
    ProbeSeen {
        at: clock.unix(),
        address: address.to_owned(),
        role: answer.role.as_str(),
        detail: match &answer.role {
            Role::Slave(master) => format!("master {master}"),
            Role::Emergency(code) | Role::Other(code) => code.clone(),
            _ => format!(
                "{} ({})",
                answer.no_answer.map_or("unknown", NoAnswer::as_str),
                answer.error.unwrap_or_default()
            ),
        },
    }
}

/// How the confirmation probes.
#[derive(Debug, Clone, Copy)]
pub struct Probing<'c> {
    /// The window the probes of the suspect span.
    pub window: Duration,
    /// Probes of the suspect in that window.
    pub probes: u32,
    /// How long refusals go on being probed before they count as dead.
    pub refused_grace: Duration,
    /// Where the evidence's times and the inventory's age are read.
    pub clock: &'c dyn Clock,
}

/// Runs the confirmation for `host_uuid` (empty: the pool's master) of `client`'s pool;
/// `bmc` gives the suspect's fencing levels; the first level's devices are read as evidence.
pub async fn confirm(
    client: &PoolClient,
    host_uuid: &str,
    probing: Probing<'_>,
    bmc: impl Fn(&KnownHost) -> Result<Vec<Level>, String>,
) -> Findings {
    let mut findings = Findings {
        suspect: None,
        target: Target::Slave,
        survivor: None,
        answering: Vec::new(),
        suspect_probes: None,
        pool_reaches_suspect: None,
        others_reachable: None,
        silent: Vec::new(),
        ha_enabled: None,
        in_maintenance: None,
        problems: Vec::new(),
        evidence: json!({}),
    };
    // A fresh read of the pool when a master answers; bounded, since a dead master hangs.
    let (inventory, ha_source) = match client.refresh_bounded(probing.clock.unix()).await {
        Some(inventory) => (Some(inventory), "read from the master now".to_owned()),
        _ => match client.inventory() {
            Some(old) => {
                let age = probing.clock.unix() - old.read_at;
                (
                    Some(old),
                    format!("inventory read {age:.0} s ago (no master answers)"),
                )
            }
            None => (None, "never read".to_owned()),
        },
    };
    let Some(inventory) = inventory else {
        findings.problems.push(Reason::Unknown(
            "the pool's hosts (never read from its master)",
        ));
        findings.evidence = json!({"inventory": "never read: no master has answered since the receiver started, and the journal keeps none from an earlier run"});
        return findings;
    };
    let first = probe_all(client, &inventory.hosts).await;
    let suspect = if host_uuid.is_empty() {
        master_named(&inventory, &first)
    } else {
        inventory.find(host_uuid).cloned()
    };
    let Some(suspect) = suspect else {
        findings
            .problems
            .push(Reason::Unknown("which host is the suspect"));
        findings.evidence = json!({"first_round": first.iter().map(|(h, a)| seen(probing.clock, &h.address, a)).collect::<Vec<_>>()});
        return findings;
    };
    let others: Vec<&(KnownHost, probe::Answer)> = first
        .iter()
        .filter(|(h, _)| h.uuid != suspect.uuid)
        .collect();
    findings.answering = others
        .iter()
        .filter(|(_, a)| a.role.answered())
        .map(|(h, _)| h.clone())
        .collect();
    findings.others_reachable = Some((findings.answering.len(), others.len()));
    findings.silent = others
        .iter()
        .filter(|(_, a)| !a.role.answered())
        .map(|(h, _)| h.uuid.clone())
        .collect();
    let someone_is_master = others.iter().any(|(_, a)| a.role == Role::Master);
    let named_as_master = others
        .iter()
        .any(|(_, a)| matches!(&a.role, Role::Slave(m) if *m == suspect.address));
    findings.target = if someone_is_master {
        Target::Slave
    } else if named_as_master || inventory.master == suspect.reference {
        Target::Master
    } else {
        Target::Slave
    };
    let ha_fresh = ha_source.starts_with("read");
    // The pool's own view is asked while the suspect is probed (each can take a call limit).
    let pool_view = async {
        match findings.target {
            // Only a master that answered just now can say whether it reaches the suspect.
            Target::Slave if ha_fresh => client.master_reaches(&suspect).await,
            Target::Slave | Target::SplitBrain => None,
            Target::Master => {
                let slaves: Vec<&KnownHost> = others
                    .iter()
                    .filter(|(_, a)| matches!(&a.role, Role::Slave(m) if *m == suspect.address))
                    .map(|(h, _)| h)
                    .collect();
                slaves_reach_master(client, &slaves).await
            }
        }
    };
    let first_of_suspect = first.iter().filter(|(h, _)| h.uuid == suspect.uuid);
    let probe_round = probe_suspect(client, &suspect, first_of_suspect, probing);
    let (pool_reaches, (tally, suspect_probes)) = tokio::join!(pool_view, probe_round);
    findings.pool_reaches_suspect = pool_reaches;
    findings.suspect_probes = Some(tally.probes);
    if findings.target == Target::Master {
        // A slave in emergency mode answers logins with whatever error it last hit
        // (HOST_STILL_BOOTING, INTERNAL_ERROR, ...): its local session says what it is.
        findings.survivor = others
            .iter()
            .find(|(h, a)| {
                !h.in_maintenance
                    && (matches!(a.role, Role::Slave(_) | Role::Emergency(_))
                        || (a.role.answered() && a.emergency == Some(true)))
            })
            .map(|(h, _)| h.clone());
        if findings.survivor.is_none() {
            findings
                .problems
                .push(Reason::Unknown("a surviving host to promote"));
        }
    }
    // An inventory dated in the future (the clock went back) has no known age.
    let age = probing.clock.unix() - inventory.read_at;
    let recent = (-super::guards::CLOCK_SKEW..=HA_MAX_AGE.as_secs_f64()).contains(&age);
    findings.ha_enabled = (ha_fresh || recent).then_some(inventory.ha_enabled);
    findings.in_maintenance = Some(suspect.in_maintenance);
    // The first level's devices, as evidence (the fence itself reads every level it tries).
    let bmc_status = match bmc(&suspect) {
        Err(e) => json!({"error": e}),
        Ok(levels) => match levels.first() {
            None => json!("no fence agent configured for this host"),
            Some(level) => {
                let mut seen = Vec::new();
                for agent in &level.agents {
                    seen.push(match agent.status().await {
                        Ok((power, run)) => {
                            json!({"agent": agent.program, "power": power, "run": run})
                        }
                        Err(e) => json!({"agent": agent.program, "error": e.to_string()}),
                    });
                }
                json!(seen)
            }
        },
    };
    findings.evidence = json!({
        "suspect": suspect,
        "target": match findings.target { Target::Master => "master", _ => "slave" },
        "suspect_probes": suspect_probes,
        "window_seconds": probing.window.as_secs_f64(),
        "others": others.iter().map(|(h, a)| seen(probing.clock, &h.address, a)).collect::<Vec<_>>(),
        "survivor": findings.survivor,
        "pool_reaches_suspect": findings.pool_reaches_suspect,
        "ha_enabled": findings.ha_enabled,
        "ha_source": ha_source,
        "bmc": bmc_status,
    });
    findings.suspect = Some(suspect);
    findings
}

/// Probes the suspect `probes` times over the window (its answers in the first round count),
/// then on while it only refuses, until the refusals outlast the grace.
async fn probe_suspect<'a>(
    client: &PoolClient,
    suspect: &KnownHost,
    first: impl Iterator<Item = &'a (KnownHost, probe::Answer)>,
    probing: Probing<'_>,
) -> (Tally, Vec<ProbeSeen>) {
    let mut seen_probes = Vec::new();
    let mut tally = Tally::default();
    for (host, answer) in first {
        tally.add(answer);
        seen_probes.push(seen(probing.clock, &host.address, answer));
    }
    let pause = if probing.probes > 1 {
        probing.window / (probing.probes - 1)
    } else {
        Duration::ZERO
    };
    for _ in 1..probing.probes.max(1) {
        tokio::time::sleep(pause).await;
        let answer = client.prober.probe(&suspect.address).await;
        tally.add(&answer);
        seen_probes.push(seen(probing.clock, &suspect.address, &answer));
    }
    let every = pause.max(REFUSED_PROBE_INTERVAL);
    while tally.refusing_within(probing.refused_grace) {
        tokio::time::sleep(every).await;
        let answer = client.prober.probe(&suspect.address).await;
        tally.add(&answer);
        seen_probes.push(seen(probing.clock, &suspect.address, &answer));
    }
    (tally, seen_probes)
}

/// Whether any of `slaves` still reaches its master: a database call on a slave goes to its
/// master, and blocks while the master is gone (xapi retries the master connection forever).
/// No such slave: `Some(false)`; none could be asked: `None`.
async fn slaves_reach_master(client: &PoolClient, slaves: &[&KnownHost]) -> Option<bool> {
    let mut set = JoinSet::new();
    for slave in slaves {
        let (prober, address) = (client.prober.clone(), slave.address.clone());
        set.spawn(async move { prober.reaches_master(&address).await });
    }
    let mut asked = false;
    while let Some(joined) = set.join_next().await {
        match joined.ok().flatten() {
            Some(true) => return Some(true),
            Some(false) => asked = true,
            None => {}
        }
    }
    (asked || slaves.is_empty()).then_some(false)
}

/// The host the answering slaves name as their master (the most named), else the pool
/// record's master.
fn master_named(
    inventory: &Inventory,
    answers: &[(KnownHost, probe::Answer)],
) -> Option<KnownHost> {
    let mut counts: std::collections::BTreeMap<&str, usize> = Default::default();
    for (_, answer) in answers {
        if let Role::Slave(master) = &answer.role {
            *counts.entry(master.as_str()).or_default() += 1;
        }
    }
    let named = counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .and_then(|(address, _)| inventory.find(address));
    named
        .or_else(|| inventory.find(inventory.master.as_str()))
        .cloned()
}

/// Probes every host once, concurrently; answers in inventory order.
pub async fn probe_all(
    client: &PoolClient,
    hosts: &[KnownHost],
) -> Vec<(KnownHost, probe::Answer)> {
    let mut set = JoinSet::new();
    for (i, host) in hosts.iter().enumerate() {
        let (prober, host) = (client.prober.clone(), host.clone());
        set.spawn(async move {
            let answer = prober.probe(&host.address).await;
            (i, host, answer)
        });
    }
    let mut out = Vec::new();
    while let Some(joined) = set.join_next().await {
        if let Ok(result) = joined {
            out.push(result);
        }
    }
    out.sort_by_key(|(i, _, _)| *i);
    out.into_iter().map(|(_, h, a)| (h, a)).collect()
}
