//! `exporter`: listen address, probe timing and resource-metric collection.

use std::time::Duration;

use super::Checker;
use crate::config::model::{ExporterConfig, defaults};
use crate::config::raw::{Located, RawExporter};

impl Checker {
    pub(super) fn exporter(&mut self, located: &Located<RawExporter>) -> ExporterConfig {
        let raw = &located.value;
        let default = ExporterConfig::default();
        let probe_interval = self.seconds(
            raw.probe_interval_seconds.as_ref(),
            "probe_interval_seconds",
            defaults::PROBE_INTERVAL_SECONDS,
        );
        let probe_timeout = self.seconds(
            raw.probe_timeout_seconds.as_ref(),
            "probe_timeout_seconds",
            defaults::PROBE_TIMEOUT_SECONDS,
        );
        if probe_timeout > probe_interval
            && !probe_interval.is_zero()
            && let Some(pos) = raw
                .probe_timeout_seconds
                .as_ref()
                .or(raw.probe_interval_seconds.as_ref())
                .map(|v| v.pos)
        {
            self.error(
                pos,
                format!(
                    "`probe_timeout_seconds` ({}) must not exceed `probe_interval_seconds` ({})",
                    probe_timeout.as_secs(),
                    probe_interval.as_secs()
                ),
            );
        }
        let event_timeout = self.seconds(
            raw.event_timeout_seconds.as_ref(),
            "event_timeout_seconds",
            defaults::EVENT_TIMEOUT_SECONDS,
        );
        // A busy pool's state is confirmed once per interval, and `xen_pool_up` allows it to be
        // `event_timeout_seconds` + 15 s old: a longer interval would make a busy pool flap.
        // The default gives way to a shorter timeout; a value set longer is an error.
        let event_min_interval = match &raw.event_min_interval_seconds {
            None => Duration::from_secs(defaults::EVENT_MIN_INTERVAL_SECONDS).min(event_timeout),
            Some(min) => {
                let interval = self.seconds_or_zero(Some(min), "event_min_interval_seconds", 0);
                if interval > event_timeout {
                    self.error(
                        min.pos,
                        format!(
                            "`event_min_interval_seconds` ({}) must not exceed `event_timeout_seconds` ({})",
                            interval.as_secs(),
                            event_timeout.as_secs()
                        ),
                    );
                }
                interval
            }
        };
        ExporterConfig {
            listen: self.listen(raw.listen.as_ref(), default.listen),
            probe_interval,
            probe_timeout,
            event_timeout,
            event_min_interval,
            rrd_interval: self.seconds_or_zero(
                raw.rrd_interval_seconds.as_ref(),
                "rrd_interval_seconds",
                defaults::RRD_INTERVAL_SECONDS,
            ),
        }
    }
}
