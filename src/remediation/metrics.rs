//! The receiver's own metrics (`xenguard_remediation_*`). Every label value is created at
//! start (each configured pool × each kind, outcome, reason, step), so a rate or an alert on
//! any of them works before the first event.

use prometheus::{GaugeVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry};

use super::guards::{Reason, ReasonCode};
use super::recovery::StepError;

/// Plan outcomes counted by `xenguard_remediation_plans_total`.
pub const PLAN_OUTCOMES: [&str; 5] = ["planned", "done", "aborted", "blocked", "failed"];
/// Plan kinds.
pub const KINDS: [&str; 3] = ["recover_host", "recover_master", "resolve_split_brain"];
/// Recovery steps counted by `xenguard_remediation_steps_total`.
pub const STEPS: [&str; 9] = [
    "confirm",
    "fence",
    "promote",
    "recover_slaves",
    "reset_vms",
    "release_locks",
    "clear_affinity",
    "start_vms",
    "verify",
];
/// Fence outcomes.
pub const FENCE_OUTCOMES: [&str; 2] = ["confirmed_off", "failed"];
/// VM outcomes of finished recoveries.
pub const VM_OUTCOMES: [&str; 3] = ["restarted", "not_restarted", "unaccounted"];
/// What a remediation can wait for.
pub const WAITING_FOR: [&str; 2] = ["approval", "attestation"];

/// Handles to every `xenguard_remediation_*` family.
#[derive(Debug, Clone)]
pub struct ReceiverMetrics {
    registry: Registry,
    webhooks: IntCounterVec,
    alerts: IntCounterVec,
    plans: IntCounterVec,
    blocks: IntCounterVec,
    steps: IntCounterVec,
    fences: IntCounterVec,
    fence_levels: IntCounterVec,
    vms: IntCounterVec,
    in_flight: IntGaugeVec,
    held: IntGaugeVec,
    inventory: GaugeVec,
    waiting: IntGaugeVec,
    journal_errors: IntCounter,
}

fn counter(name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric")
}

fn gauge(name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric")
}

impl ReceiverMetrics {
    /// Registers every family, with every label value of `pools`.
    pub fn new(pools: &[String]) -> ReceiverMetrics {
        let metrics = ReceiverMetrics {
            registry: Registry::new(),
            webhooks: counter(
                "xenguard_remediation_webhooks_total",
                "Webhook requests by HTTP status answered.",
                &["code"],
            ),
            alerts: counter(
                "xenguard_remediation_alerts_total",
                "Alerts received, new or duplicate (fingerprint, startsAt, status).",
                &["result"],
            ),
            plans: counter(
                "xenguard_remediation_plans_total",
                "Remediations by pool, kind and outcome: planned (created), done, aborted (resolved or operator), blocked (a guard or the confirmation said no; nothing done), failed (a fence or a step after it failed).",
                &["pool", "kind", "outcome"],
            ),
            blocks: counter(
                "xenguard_remediation_blocks_total",
                "Reasons remediations were blocked, by pool (one remediation can count several reasons).",
                &["pool", "reason"],
            ),
            steps: counter(
                "xenguard_remediation_steps_total",
                "Remediation steps performed, by step and outcome (ok, failed).",
                &["step", "outcome"],
            ),
            fences: counter(
                "xenguard_remediation_fences_total",
                "Fences by pool and outcome: confirmed_off (the BMC read back off) or failed (no recovery followed).",
                &["pool", "outcome"],
            ),
            fence_levels: counter(
                "xenguard_remediation_fence_levels_total",
                "Fencing levels tried, by pool, level (1 first) and outcome: off (every agent of the level powered off and read back off) or failed (the next level, if any, was tried).",
                &["pool", "level", "outcome"],
            ),
            vms: counter(
                "xenguard_remediation_vms_total",
                "VMs of dead hosts by what recovery did: restarted (running once on a survivor), not_restarted (the journal says why: local storage, no room, start failed), unaccounted (ran on a dead master when last seen, absent from the promoted host's restored database: not started, check by hand).",
                &["pool", "outcome"],
            ),
            inventory: GaugeVec::new(
                Opts::new(
                    "xenguard_remediation_inventory_timestamp_seconds",
                    "Unix time the pool's inventory was last read from its master (0: never), by this run or an earlier one (kept in the journal). The receiver names hosts, and a dead master's VMs, from the last read; a stale one means it cannot recover a master that dies now.",
                ),
                &["pool"],
            )
            .expect("valid metric"),
            held: gauge(
                "xenguard_remediation_host_held",
                "1 while a host this receiver fenced before has been up for less than receiver.rejoin_healthy_seconds (or its boot time or the master's clock cannot be read): it is no start target for a recovery. Refreshed with the host inventory (every 15 s, while a master answers).",
                &["pool", "host", "uuid"],
            ),
            in_flight: gauge(
                "xenguard_remediation_in_flight",
                "Remediations of the pool that are confirming, fencing or recovering now.",
                &["pool"],
            ),
            waiting: gauge(
                "xenguard_remediation_waiting",
                "Remediations waiting for an operator: approval (`xenguard journal approve`) or attestation (`xenguard journal attest`).",
                &["pool", "for"],
            ),
            journal_errors: IntCounter::new(
                "xenguard_remediation_journal_errors_total",
                "Journal writes that failed (each one answered 503 or stopped a remediation).",
            )
            .expect("valid metric"),
        };
        let collectors: [Box<dyn prometheus::core::Collector>; 13] = [
            Box::new(metrics.inventory.clone()),
            Box::new(metrics.vms.clone()),
            Box::new(metrics.webhooks.clone()),
            Box::new(metrics.alerts.clone()),
            Box::new(metrics.plans.clone()),
            Box::new(metrics.blocks.clone()),
            Box::new(metrics.steps.clone()),
            Box::new(metrics.fences.clone()),
            Box::new(metrics.fence_levels.clone()),
            Box::new(metrics.in_flight.clone()),
            Box::new(metrics.held.clone()),
            Box::new(metrics.waiting.clone()),
            Box::new(metrics.journal_errors.clone()),
        ];
        for c in collectors {
            metrics.registry.register(c).expect("unique metric");
        }
        // Every status the webhook answers (see `webhook`).
        for code in ["200", "400", "401", "403", "413", "415", "422", "503"] {
            metrics.webhooks.with_label_values(&[code]);
        }
        for result in ["new", "duplicate"] {
            metrics.alerts.with_label_values(&[result]);
        }
        for step in STEPS {
            for outcome in ["ok", "failed"].into_iter().chain(StepError::KINDS) {
                metrics.steps.with_label_values(&[step, outcome]);
            }
        }
        for pool in pools {
            for kind in KINDS {
                for outcome in PLAN_OUTCOMES {
                    metrics.plans.with_label_values(&[pool, kind, outcome]);
                }
            }
            for reason in ReasonCode::ALL.iter().map(|c| c.as_str()) {
                metrics.blocks.with_label_values(&[pool, reason]);
            }
            for outcome in FENCE_OUTCOMES {
                metrics.fences.with_label_values(&[pool, outcome]);
            }
            for outcome in ["off", "failed"] {
                metrics
                    .fence_levels
                    .with_label_values(&[pool, "1", outcome]);
            }
            metrics.in_flight.with_label_values(&[pool]);
            metrics.inventory.with_label_values(&[pool]);
            for outcome in VM_OUTCOMES {
                metrics.vms.with_label_values(&[pool, outcome]);
            }
            for what in WAITING_FOR {
                metrics.waiting.with_label_values(&[pool, what]);
            }
        }
        metrics
    }

    /// A webhook answered with `code`.
    pub fn webhook(&self, code: u16) {
        self.webhooks.with_label_values(&[&code.to_string()]).inc();
    }

    /// Alerts journaled from one notification.
    pub fn alerts(&self, new: usize, duplicates: usize) {
        self.alerts.with_label_values(&["new"]).inc_by(new as u64);
        self.alerts
            .with_label_values(&["duplicate"])
            .inc_by(duplicates as u64);
    }

    /// A remediation was created or reached an outcome.
    pub fn plan(&self, pool: &str, kind: &str, outcome: &str) {
        self.plans.with_label_values(&[pool, kind, outcome]).inc();
    }

    /// A remediation was blocked for these reasons.
    pub fn blocked(&self, pool: &str, reasons: &[Reason]) {
        for reason in reasons {
            self.blocks
                .with_label_values(&[pool, reason.code().as_str()])
                .inc();
        }
    }

    /// A step finished.
    pub fn step(&self, step: &str, outcome: &str) {
        self.steps.with_label_values(&[step, outcome]).inc();
    }

    /// A fencing level was tried: `off` when every one of its agents read back off.
    pub fn fence_level(&self, pool: &str, level: usize, off: bool) {
        let outcome = if off { "off" } else { "failed" };
        self.fence_levels
            .with_label_values(&[pool, &level.to_string(), outcome])
            .inc();
    }

    /// A fence finished.
    pub fn fence(&self, pool: &str, confirmed_off: bool) {
        let outcome = FENCE_OUTCOMES[usize::from(!confirmed_off)];
        self.fences.with_label_values(&[pool, outcome]).inc();
    }

    /// A recovery finished with these VM counts.
    pub fn vms(&self, pool: &str, restarted: u64, not_restarted: u64, unaccounted: u64) {
        for (outcome, n) in VM_OUTCOMES
            .iter()
            .zip([restarted, not_restarted, unaccounted])
        {
            self.vms.with_label_values(&[pool, outcome]).inc_by(n);
        }
    }

    /// Whether a host is held from recoveries (see [`super::recovery::Hold`]).
    pub fn host_held(&self, pool: &str, host: &str, uuid: &str, held: bool) {
        self.held
            .with_label_values(&[pool, host, uuid])
            .set(i64::from(held));
    }

    /// Sets the in-flight and waiting gauges of a pool.
    pub fn set_pool_gauges(&self, pool: &str, in_flight: i64, approval: i64, attestation: i64) {
        self.in_flight.with_label_values(&[pool]).set(in_flight);
        self.waiting
            .with_label_values(&[pool, "approval"])
            .set(approval);
        self.waiting
            .with_label_values(&[pool, "attestation"])
            .set(attestation);
    }

    /// When a pool's inventory was last read.
    pub fn inventory_read(&self, pool: &str, at: f64) {
        self.inventory.with_label_values(&[pool]).set(at);
    }

    /// A journal write failed.
    pub fn journal_error(&self) {
        self.journal_errors.inc();
    }

    /// The current values.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }
}
