//! The confirmation check (DESIGN.md §6), run at action time and never trusting the alert or
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

use super::fence::FenceAgent;
use super::guards::Reason;
use super::inventory::{Inventory, KnownHost, PoolClient};
use super::machine::Target;
use super::unix_now;
use crate::xapi::probe::{self, Role};

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
    /// Fresh probes of the suspect: (answered, made).
    pub suspect_answers: Option<(u32, u32)>,
    /// Other hosts that answered, and how many other hosts there are.
    pub others_reachable: Option<(usize, usize)>,
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

fn seen(address: &str, answer: &probe::Answer) -> ProbeSeen {
    ProbeSeen {
        at: unix_now(),
        address: address.to_owned(),
        role: answer.role.as_str(),
        detail: match &answer.role {
            Role::Slave(master) => format!("master {master}"),
            Role::Emergency(code) | Role::Other(code) => code.clone(),
            _ => answer.error.unwrap_or_default().to_owned(),
        },
    }
}

/// Runs the confirmation for `host_uuid` (empty: the pool's master) of `client`'s pool;
/// `bmc` gives the suspect's fence agent, whose status is read as evidence.
pub async fn confirm(
    client: &PoolClient,
    host_uuid: &str,
    window: Duration,
    probes: u32,
    bmc: impl Fn(&KnownHost) -> Result<Option<FenceAgent>, String>,
) -> Findings {
    let mut findings = Findings {
        suspect: None,
        target: Target::Slave,
        survivor: None,
        answering: Vec::new(),
        suspect_answers: None,
        others_reachable: None,
        ha_enabled: None,
        in_maintenance: None,
        problems: Vec::new(),
        evidence: json!({}),
    };
    // A fresh read of the pool when a master answers; bounded, since a dead master hangs.
    let (inventory, ha_source) = match client.refresh_bounded(unix_now()).await {
        Some(inventory) => (Some(inventory), "read from the master now".to_owned()),
        _ => match client.inventory() {
            Some(old) => {
                let age = unix_now() - old.read_at;
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
        findings.evidence = json!({"first_round": first.iter().map(|(h, a)| seen(&h.address, a)).collect::<Vec<_>>()});
        return findings;
    };
    let mut suspect_probes = Vec::new();
    let mut answered = 0;
    for (host, answer) in &first {
        if host.uuid == suspect.uuid {
            answered += u32::from(answer.role.answered());
            suspect_probes.push(seen(&host.address, answer));
        }
    }
    let pause = if probes > 1 {
        window / (probes - 1)
    } else {
        Duration::ZERO
    };
    for _ in 1..probes.max(1) {
        tokio::time::sleep(pause).await;
        let answer = client.prober.probe(&suspect.address).await;
        answered += u32::from(answer.role.answered());
        suspect_probes.push(seen(&suspect.address, &answer));
    }
    findings.suspect_answers = Some((answered, suspect_probes.len() as u32));
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
    if findings.target == Target::Master {
        findings.survivor = others
            .iter()
            .find(|(h, a)| {
                !h.in_maintenance && matches!(a.role, Role::Slave(_) | Role::Emergency(_))
            })
            .map(|(h, _)| h.clone());
        if findings.survivor.is_none() {
            findings
                .problems
                .push(Reason::Unknown("a surviving host to promote"));
        }
    }
    let ha_fresh = ha_source.starts_with("read");
    findings.ha_enabled = (ha_fresh || unix_now() - inventory.read_at <= HA_MAX_AGE.as_secs_f64())
        .then_some(inventory.ha_enabled);
    findings.in_maintenance = Some(suspect.in_maintenance);
    let bmc_status = match bmc(&suspect) {
        Err(e) => json!({"error": e}),
        Ok(None) => json!("no fence agent configured for this host"),
        Ok(Some(agent)) => match agent.status().await {
            Ok((power, run)) => json!({"power": power, "run": run}),
            Err(e) => json!({"error": e.to_string()}),
        },
    };
    findings.evidence = json!({
        "suspect": suspect,
        "target": match findings.target { Target::Master => "master", Target::Slave => "slave" },
        "suspect_probes": suspect_probes,
        "window_seconds": window.as_secs_f64(),
        "others": others.iter().map(|(h, a)| seen(&h.address, a)).collect::<Vec<_>>(),
        "survivor": findings.survivor,
        "ha_enabled": findings.ha_enabled,
        "ha_source": ha_source,
        "bmc": bmc_status,
    });
    findings.suspect = Some(suspect);
    findings
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
