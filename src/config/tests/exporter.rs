//! `exporter`: timings that depend on each other.

use super::*;

#[test]
fn event_min_interval_must_not_exceed_event_timeout() {
    let config = ok(&format!(
        "{MINIMAL}exporter:\n  event_timeout_seconds: 10\n  event_min_interval_seconds: 10\n"
    ));
    assert_eq!(config.exporter.event_min_interval, Duration::from_secs(10));
    assert_eq!(
        ok(MINIMAL).exporter.event_min_interval,
        Duration::from_secs(5)
    );
    // The default gives way to a shorter timeout.
    assert_eq!(
        ok(&format!(
            "{MINIMAL}exporter: {{event_timeout_seconds: 2}}\n"
        ))
        .exporter
        .event_min_interval,
        Duration::from_secs(2)
    );
    assert_eq!(
        ok(&format!(
            "{MINIMAL}exporter: {{event_min_interval_seconds: 0}}\n"
        ))
        .exporter
        .event_min_interval,
        Duration::ZERO
    );
    assert_prefixes(
        &errors(&format!(
            "{MINIMAL}exporter:\n  event_timeout_seconds: 10\n  event_min_interval_seconds: 11\n"
        )),
        &[
            "f.yml:7:31: `event_min_interval_seconds` (11) must not exceed `event_timeout_seconds` (10)",
        ],
    );
}
