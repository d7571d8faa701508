//! Two hosts answering as master (xapi-notes.md, "Masters": the no-other-masters check gives
//! up silently on hosts it cannot reach, so an old master that boots cut off and is reconnected
//! stays master). The plan fences nobody and touches no VM: it decides which master is
//! legitimate, checks that the other runs nothing the pool runs elsewhere, then has the
//! legitimate one run `pool.recover_slaves`, which turns the other into its slave.
//!
//! # Guarantees
//! - The legitimate master is the one the journal's last promotion made **and** the one the
//!   answering slaves follow; when either is unknown they must not contradict each other, and
//!   when both are unknown nothing is done.
//! - Nothing is done while the other master runs a guest that the legitimate database shows
//!   running on another host (the guest may already run twice: a person must look).

use std::collections::BTreeMap;

use serde_json::json;

use super::confirm::probe_all;
use super::guards::Reason;
use super::inventory::{KnownHost, PoolClient};
use super::recovery::StepError;
use crate::xapi::probe::Role;
use crate::xapi::records::{PowerState, Vm};
use crate::xapi::{PoolActuator, PoolReader};

/// What the split brain's confirmation established.
#[derive(Debug, Clone, Default)]
pub struct Findings {
    /// The master to keep.
    pub legitimate: Option<KnownHost>,
    /// The other hosts answering as master.
    pub others: Vec<KnownHost>,
    /// Every host that answered, but the legitimate master.
    pub answering: Vec<KnownHost>,
    /// Hosts that answered, and how many hosts there are (the legitimate master excluded).
    pub reachable: Option<(usize, usize)>,
    /// `Some(why)` when there is nothing left to do (fewer than two masters).
    pub moot: Option<String>,
    /// What blocks.
    pub problems: Vec<Reason>,
    /// The journal's evidence.
    pub evidence: serde_json::Value,
}

/// The master to keep among `masters`: the one the journal's last promotion made (`promoted`,
/// a uuid) and the one most answering slaves follow (`followers`, per master address). Where
/// one source is silent the other decides; where they disagree, or both are silent, `Err`.
pub fn legitimate<'a>(
    masters: &'a [KnownHost],
    followers: &BTreeMap<String, usize>,
    promoted: Option<&str>,
) -> Result<&'a KnownHost, &'static str> {
    let by_journal = promoted.and_then(|uuid| masters.iter().find(|m| m.uuid == uuid));
    let count = |m: &KnownHost| followers.get(&m.address).copied().unwrap_or(0);
    let most = masters.iter().map(count).max().unwrap_or(0);
    let leaders: Vec<&KnownHost> = masters.iter().filter(|m| count(m) == most).collect();
    let by_slaves = (most > 0 && leaders.len() == 1).then(|| leaders[0]);
    match (by_journal, by_slaves) {
        (Some(a), Some(b)) if a.uuid != b.uuid => {
            Err("which master is legitimate: the journal's last promotion and the slaves disagree")
        }
        (Some(a), _) | (None, Some(a)) => Ok(a),
        (None, None) => Err(
            "which master is legitimate: no promotion in the journal and no master most slaves follow",
        ),
    }
}

/// Probes every host, decides the legitimate master and checks the others' guests.
pub async fn confirm(client: &PoolClient, promoted: Option<&str>) -> Findings {
    let mut findings = Findings::default();
    let Some(inventory) = client.inventory() else {
        findings.problems.push(Reason::Unknown(
            "the pool's hosts (never read from its master)",
        ));
        return findings;
    };
    let answers = probe_all(client, &inventory.hosts).await;
    let masters: Vec<KnownHost> = answers
        .iter()
        .filter(|(_, a)| a.role == Role::Master)
        .map(|(h, _)| h.clone())
        .collect();
    let mut followers: BTreeMap<String, usize> = BTreeMap::new();
    for (_, answer) in &answers {
        if let Role::Slave(master) = &answer.role {
            *followers.entry(master.clone()).or_default() += 1;
        }
    }
    let seen: Vec<serde_json::Value> = answers
        .iter()
        .map(|(h, a)| json!({"host": h.name_label, "address": h.address, "role": a.role.as_str()}))
        .collect();
    findings.evidence =
        json!({"probes": seen, "followers": followers, "journal_promotion": promoted});
    if masters.len() < 2 {
        findings.moot = Some(format!(
            "{} host(s) answer as master now: no split brain to resolve",
            masters.len()
        ));
        return findings;
    }
    let legit = match legitimate(&masters, &followers, promoted) {
        Ok(legit) => legit.clone(),
        Err(why) => {
            findings.problems.push(Reason::Unknown(why));
            return findings;
        }
    };
    findings.others = masters
        .iter()
        .filter(|m| m.uuid != legit.uuid)
        .cloned()
        .collect();
    let rest: Vec<&(KnownHost, crate::xapi::probe::Answer)> = answers
        .iter()
        .filter(|(h, _)| h.uuid != legit.uuid)
        .collect();
    findings.answering = rest
        .iter()
        .filter(|(_, a)| a.role.answered())
        .map(|(h, _)| h.clone())
        .collect();
    findings.reachable = Some((findings.answering.len(), rest.len()));
    match conflicts(client, &legit, &findings.others).await {
        Ok(conflicts) if conflicts.is_empty() => {}
        Ok(conflicts) => {
            findings.evidence["conflicts"] = json!(conflicts);
            findings.problems.push(Reason::Unknown(
                "where guests run: the other master runs guests the legitimate database shows running elsewhere",
            ));
        }
        Err(e) => {
            findings.evidence["conflicts"] = json!({"error": e});
            findings
                .problems
                .push(Reason::Unknown("what the other master runs"));
        }
    }
    findings.evidence["legitimate"] = json!(legit);
    findings.evidence["others"] = json!(findings.others);
    findings.legitimate = Some(legit);
    findings
}

/// Guests each of `others` records running on itself that `legit`'s database shows running on
/// another host.
async fn conflicts(
    client: &PoolClient,
    legit: &KnownHost,
    others: &[KnownHost],
) -> Result<Vec<String>, String> {
    let read = |address: &str| PoolReader::new(client.session_on(address));
    let limit = client.master_read_limit();
    let all = |address: String| async move {
        tokio::time::timeout(limit, read(&address).all::<Vm>())
            .await
            .map_err(|_| format!("{address}: no answer within {} s", limit.as_secs()))?
            .map_err(|e| format!("{address}: {e}"))
    };
    let kept: BTreeMap<String, Vm> = all(legit.address.clone())
        .await?
        .into_iter()
        .map(|(_, vm)| (vm.uuid.clone(), vm))
        .collect();
    let mut out = Vec::new();
    for other in others {
        for (_, vm) in all(other.address.clone()).await? {
            let runs_here = vm.is_guest()
                && vm.resident_on == other.reference
                && vm.power_state == PowerState::Running;
            let elsewhere = kept.get(&vm.uuid).is_some_and(|k| {
                k.power_state == PowerState::Running && k.resident_on != other.reference
            });
            if runs_here && elsewhere {
                out.push(format!("{} ({})", vm.name_label, other.name_label));
            }
        }
    }
    Ok(out)
}

/// Whether exactly one host answers as master, and it is `legit`.
pub async fn verify(
    client: &PoolClient,
    legit: &KnownHost,
) -> Result<(String, serde_json::Value), StepError> {
    let inventory = client
        .inventory()
        .ok_or_else(|| StepError::Receiver("the pool's hosts are unknown".into()))?;
    let masters: Vec<String> = probe_all(client, &inventory.hosts)
        .await
        .into_iter()
        .filter(|(_, a)| a.role == Role::Master)
        .map(|(h, _)| h.name_label)
        .collect();
    let evidence = json!({"masters": masters});
    if masters == [legit.name_label.clone()] {
        Ok((format!("one master again: {}", legit.name_label), evidence))
    } else {
        Err(StepError::Pool(format!(
            "hosts answering as master after the recovery: {}",
            masters.join(", ")
        )))
    }
}

/// An actuator over a session on `legit` itself (the pool session may follow either master).
pub fn actuator_on(client: &PoolClient, legit: &KnownHost) -> PoolActuator {
    PoolActuator::new(client.session_on(&legit.address))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xapi::records::Ref;

    fn host(uuid: &str, address: &str) -> KnownHost {
        KnownHost {
            reference: Ref::new(format!("OpaqueRef:{uuid}")),
            uuid: uuid.into(),
            name_label: uuid.into(),
            address: address.into(),
            in_maintenance: false,
        }
    }

    #[test]
    fn the_journal_and_the_slaves_must_agree_on_the_master_to_keep() {
        let masters = [host("old", "10.0.0.1"), host("new", "10.0.0.2")];
        let follow = |pairs: &[(&str, usize)]| -> BTreeMap<String, usize> {
            pairs.iter().map(|(a, n)| ((*a).to_owned(), *n)).collect()
        };
        let pick = |f: &BTreeMap<String, usize>, p: Option<&str>| {
            legitimate(&masters, f, p).map(|h| h.uuid.clone())
        };
        let slaves_new = follow(&[("10.0.0.2", 2)]);
        assert_eq!(pick(&slaves_new, Some("new")), Ok("new".into()));
        assert_eq!(pick(&slaves_new, None), Ok("new".into()));
        assert_eq!(pick(&follow(&[]), Some("new")), Ok("new".into()));
        assert!(pick(&slaves_new, Some("old")).is_err(), "they disagree");
        assert!(pick(&follow(&[]), None).is_err(), "nothing decides");
        let tied = follow(&[("10.0.0.1", 1), ("10.0.0.2", 1)]);
        assert!(pick(&tied, None).is_err(), "a tie decides nothing");
        assert_eq!(pick(&tied, Some("old")), Ok("old".into()));
        assert!(
            pick(&follow(&[]), Some("gone")).is_err(),
            "the promoted host is not among the masters"
        );
    }
}
