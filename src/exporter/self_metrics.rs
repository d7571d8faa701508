//! The exporter's own long-lived metrics (`xenguard_*`): XAPI calls by method and outcome,
//! probe durations and outcomes, resyncs, scrape cost.

use std::sync::Arc;
use std::time::Duration;

use prometheus::{
    Gauge, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts, Registry,
};

use crate::xapi::transport::CallObserver;

/// The `xenguard_*` families of the exporter.
#[derive(Debug, Clone)]
pub struct SelfMetrics {
    registry: Registry,
    xapi_calls: IntCounterVec,
    probe_duration: HistogramVec,
    probes: IntCounterVec,
    resyncs: IntCounterVec,
    event_batches: IntCounterVec,
    scrape_duration: Gauge,
    renders: IntCounter,
    rrd_rounds: HistogramVec,
}

fn must<T>(result: prometheus::Result<T>) -> T {
    // Names, labels and buckets are constants of this file; an error is a programming bug
    // that every test run would hit at once.
    result.expect("self-metric definitions are valid")
}

impl SelfMetrics {
    /// Registers every family (outcome labels appear as they happen).
    pub fn new() -> SelfMetrics {
        let registry = Registry::new();
        let build = must(IntGaugeVec::new(
            Opts::new(
                "xenguard_build_info",
                "Version of the running xenguard; always 1.",
            ),
            &["version"],
        ));
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let xapi_calls = must(IntCounterVec::new(
            Opts::new(
                "xenguard_xapi_calls_total",
                "XAPI calls made, by pool, method and outcome (ok, api, timeout, connect, tls, transport, http_status, too_large, decode, fault).",
            ),
            &["pool", "method", "outcome"],
        ));
        let probe_duration = must(HistogramVec::new(
            HistogramOpts::new(
                "xenguard_probe_duration_seconds",
                "Time to probe one host directly (login attempt plus emergency-mode check).",
            )
            .buckets(vec![
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
            &["pool"],
        ));
        let probes = must(IntCounterVec::new(
            Opts::new(
                "xenguard_probes_total",
                "Host probes by pool and outcome (master, slave, emergency, other, unreachable).",
            ),
            &["pool", "outcome"],
        ));
        let resyncs = must(IntCounterVec::new(
            Opts::new(
                "xenguard_resyncs_total",
                "Full resynchronisations of a pool's cache, by reason (start, error, session, token, count_mismatch, bad_snapshot, master_change).",
            ),
            &["pool", "reason"],
        ));
        let event_batches = must(IntCounterVec::new(
            Opts::new(
                "xenguard_event_batches_total",
                "event.from answers applied to a pool's cache.",
            ),
            &["pool"],
        ));
        let rrd_rounds = must(HistogramVec::new(
            HistogramOpts::new(
                "xenguard_rrd_collection_duration_seconds",
                "Time to read every host's /rrd_updates once (a round); near exporter.rrd_interval_seconds means the hosts cannot be read that often.",
            )
            .buckets(vec![0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
            &["pool"],
        ));
        let scrape_duration = must(Gauge::new(
            "xenguard_last_scrape_duration_seconds",
            "Time the previous /metrics request took to render.",
        ));
        let renders = must(IntCounter::new(
            "xenguard_renders_total",
            "Expositions rendered; scrapes that arrive while one renders share it.",
        ));
        for collector in [
            Box::new(build) as Box<dyn prometheus::core::Collector>,
            Box::new(xapi_calls.clone()),
            Box::new(probe_duration.clone()),
            Box::new(probes.clone()),
            Box::new(resyncs.clone()),
            Box::new(event_batches.clone()),
            Box::new(scrape_duration.clone()),
            Box::new(renders.clone()),
            Box::new(rrd_rounds.clone()),
        ] {
            must(registry.register(collector));
        }
        SelfMetrics {
            registry,
            xapi_calls,
            probe_duration,
            probes,
            resyncs,
            event_batches,
            renders,
            scrape_duration,
            rrd_rounds,
        }
    }

    /// A transport observer counting the calls of `pool`.
    pub fn observer(&self, pool: &str) -> CallObserver {
        let calls = self.xapi_calls.clone();
        let pool = pool.to_owned();
        Arc::new(move |method, outcome, _| {
            calls
                .with_label_values(&[pool.as_str(), method, outcome])
                .inc()
        })
    }

    /// Records one probe.
    pub fn probed(&self, pool: &str, outcome: &str, took: Duration) {
        self.probes.with_label_values(&[pool, outcome]).inc();
        self.probe_duration
            .with_label_values(&[pool])
            .observe(took.as_secs_f64());
    }

    /// Records a full resync.
    pub fn resynced(&self, pool: &str, reason: &str) {
        self.resyncs.with_label_values(&[pool, reason]).inc();
    }

    /// Records an applied event batch.
    pub fn batch(&self, pool: &str) {
        self.event_batches.with_label_values(&[pool]).inc();
    }

    /// Records one round of resource collection.
    pub fn rrd_collected(&self, pool: &str, took: Duration) {
        self.rrd_rounds
            .with_label_values(&[pool])
            .observe(took.as_secs_f64());
    }

    /// Records the render time of a scrape.
    pub fn scraped(&self, took: Duration) {
        self.scrape_duration.set(took.as_secs_f64());
        self.renders.inc();
    }

    /// The current values.
    pub fn gather(&self) -> Vec<prometheus::proto::MetricFamily> {
        self.registry.gather()
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        SelfMetrics::new()
    }
}
