//! Which alerts lead to which plan (pure). The alert rules in `alerts/` carry the labels this
//! needs: `pool` and, for host plans, `host_uuid`.
//!
//! | alertname | plan |
//! |---|---|
//! | `XenVmsStuckOnDeadHost`, `XenHostNotLive`, `XenHostUnreachable` | recover the host (`host_uuid`) |
//! | `XenPoolMasterUnreachable` | recover the master |
//! | `XenPoolSplitBrain` | resolve the split brain (`pool.recover_slaves` from the legitimate master) |
//! | anything else | journaled, no plan |

use super::alert::Alert;

/// What a plan is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanKind {
    /// A dead slave: fence it, reset, unlock and restart its VMs elsewhere.
    RecoverHost,
    /// A dead master: fence it, promote a survivor, recover the slaves, then as above.
    RecoverMaster,
    /// Two hosts answer as master: recover the slaves from the legitimate one.
    ResolveSplitBrain,
}

impl PlanKind {
    /// Journal spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            PlanKind::RecoverHost => "recover_host",
            PlanKind::RecoverMaster => "recover_master",
            PlanKind::ResolveSplitBrain => "resolve_split_brain",
        }
    }

    /// The steps of the plan, in order (architecture.md §6), as journaled when it is planned.
    pub fn steps(self) -> &'static [&'static str] {
        const HOST: &[&str] = &[
            "confirm: repeated fresh probes of the host, quorum of the other hosts, HA off, BMC power status",
            "fence: power off through the BMC, read back off",
            "reset the host's VMs (host.declare_dead or VM.power_state_reset)",
            "release their VDI locks (VDI.remove_from_sm_config host_<ref>)",
            "clear affinity pointing at the dead host",
            "start the VMs that were running, by restart priority and order (Async.VM.start)",
            "verify each VM runs exactly once",
        ];
        const MASTER: &[&str] = &[
            "confirm: repeated fresh probes of the master, quorum of the other hosts, HA off, BMC power status",
            "fence: power off through the BMC, read back off",
            "promote a survivor (slave_local_login + pool.emergency_transition_to_master), wait for its restart",
            "pool.recover_slaves, compared with the expected survivors",
            "reset the dead master's VMs (host.declare_dead or VM.power_state_reset)",
            "release their VDI locks (VDI.remove_from_sm_config host_<ref>)",
            "clear affinity pointing at the dead host",
            "start the VMs that were running, by restart priority and order (Async.VM.start)",
            "verify each VM runs exactly once",
        ];
        const SPLIT: &[&str] = &[
            "confirm: fresh probes of every host; two answer as master; the legitimate one is the journal's last promotion and the master the answering slaves follow (both must agree); the other runs no guest the legitimate database runs elsewhere; quorum, HA off",
            "pool.recover_slaves from the legitimate master (it turns the other into its slave), then wait for the hosts to rejoin",
            "verify exactly one host answers as master",
        ];
        match self {
            PlanKind::RecoverHost => HOST,
            PlanKind::RecoverMaster => MASTER,
            PlanKind::ResolveSplitBrain => SPLIT,
        }
    }
}

/// A plan to make for one alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    /// Plan kind.
    pub kind: PlanKind,
    /// Pool name (`pool` label).
    pub pool: String,
    /// Host uuid (`host_uuid` label); may be empty for a master plan.
    pub host_uuid: String,
}

/// Why an alert meant for remediation cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// A label the plan needs is missing or empty.
    #[error("alert {alertname} lacks the {label:?} label")]
    MissingLabel {
        /// The alert.
        alertname: String,
        /// The label.
        label: &'static str,
    },
}

/// The plan an alert calls for, if any.
pub fn intent_for(alert: &Alert) -> Result<Option<Intent>, PolicyError> {
    let kind = match alert.name() {
        "XenVmsStuckOnDeadHost" | "XenHostNotLive" | "XenHostUnreachable" => PlanKind::RecoverHost,
        "XenPoolMasterUnreachable" => PlanKind::RecoverMaster,
        "XenPoolSplitBrain" => PlanKind::ResolveSplitBrain,
        _ => return Ok(None),
    };
    let label = |name: &'static str| -> Result<String, PolicyError> {
        match alert.labels.get(name).filter(|v| !v.is_empty()) {
            Some(v) => Ok(v.clone()),
            None => Err(PolicyError::MissingLabel {
                alertname: alert.name().to_owned(),
                label: name,
            }),
        }
    };
    let pool = label("pool")?;
    let host_uuid = match kind {
        PlanKind::RecoverHost => label("host_uuid")?,
        PlanKind::RecoverMaster | PlanKind::ResolveSplitBrain => {
            alert.labels.get("host_uuid").cloned().unwrap_or_default()
        }
    };
    Ok(Some(Intent {
        kind,
        pool,
        host_uuid,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::remediation::alert::Status;

    fn alert(labels: &[(&str, &str)]) -> Alert {
        Alert {
            status: Status::Firing,
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: Default::default(),
            starts_at: "t".into(),
            ends_at: String::new(),
            generator_url: String::new(),
            fingerprint: "f".into(),
        }
    }

    #[test]
    fn maps_alerts_to_plans() {
        let a = alert(&[
            ("alertname", "XenVmsStuckOnDeadHost"),
            ("pool", "p"),
            ("host_uuid", "h"),
        ]);
        assert_eq!(
            intent_for(&a).unwrap().unwrap(),
            Intent {
                kind: PlanKind::RecoverHost,
                pool: "p".into(),
                host_uuid: "h".into()
            }
        );
        let m = alert(&[("alertname", "XenPoolMasterUnreachable"), ("pool", "p")]);
        assert_eq!(
            intent_for(&m).unwrap().unwrap().kind,
            PlanKind::RecoverMaster
        );
        let split = alert(&[("alertname", "XenPoolSplitBrain"), ("pool", "p")]);
        assert_eq!(
            intent_for(&split).unwrap().unwrap().kind,
            PlanKind::ResolveSplitBrain
        );
        assert_eq!(
            intent_for(&alert(&[("alertname", "XenPoolHaDisabled"), ("pool", "p")])).unwrap(),
            None
        );
        let missing = alert(&[("alertname", "XenHostNotLive"), ("pool", "p")]);
        assert!(matches!(
            intent_for(&missing),
            Err(PolicyError::MissingLabel {
                label: "host_uuid",
                ..
            })
        ));
    }
}
