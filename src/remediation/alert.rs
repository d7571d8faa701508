//! The Alertmanager webhook payload, version 4 (Alertmanager 0.25's `webhook_configs`).
//!
//! Parsing is strict about what xenguard relies on — the version, the status values, every
//! alert's labels, `startsAt` and `fingerprint` — and tolerant of fields a newer Alertmanager
//! may add, which are ignored.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// `firing` or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// The alert is active.
    Firing,
    /// The alert has ended.
    Resolved,
}

impl Status {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Firing => "firing",
            Status::Resolved => "resolved",
        }
    }
}

/// One notification: a group of alerts sharing the route's `group_by` labels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    /// Always `"4"`.
    pub version: String,
    /// Key identifying the group (kept for the audit trail).
    pub group_key: String,
    /// Alerts left out because of `max_alerts`.
    #[serde(default)]
    pub truncated_alerts: u64,
    /// Status of the group as a whole.
    pub status: Status,
    /// Receiver name in the Alertmanager configuration.
    pub receiver: String,
    /// The labels the group was formed on.
    #[serde(default)]
    pub group_labels: BTreeMap<String, String>,
    /// Labels common to every alert.
    #[serde(default)]
    pub common_labels: BTreeMap<String, String>,
    /// Annotations common to every alert.
    #[serde(default)]
    pub common_annotations: BTreeMap<String, String>,
    /// Alertmanager's URL.
    #[serde(rename = "externalURL", default)]
    pub external_url: String,
    /// The alerts.
    pub alerts: Vec<Alert>,
}

/// One alert of a notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    /// This alert's own status.
    pub status: Status,
    /// Identifying labels (alertname, pool, host_uuid, …).
    pub labels: BTreeMap<String, String>,
    /// Descriptive annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 start time; with the fingerprint, the identity of one firing.
    pub starts_at: String,
    /// RFC 3339 end time (`0001-01-01T00:00:00Z` while firing).
    #[serde(default)]
    pub ends_at: String,
    /// Link to the expression in Prometheus.
    #[serde(rename = "generatorURL", default)]
    pub generator_url: String,
    /// Hash of the labels.
    pub fingerprint: String,
}

impl Alert {
    /// The `alertname` label.
    pub fn name(&self) -> &str {
        self.labels.get("alertname").map_or("", String::as_str)
    }
}

/// Why a body is not an acceptable payload.
#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    /// Not JSON of the expected shape.
    #[error("malformed Alertmanager payload: {0}")]
    Malformed(#[from] serde_json::Error),
    /// A version other than 4.
    #[error("unsupported Alertmanager payload version {0:?} (expected \"4\")")]
    Version(String),
    /// An alert lacks what identifies it.
    #[error("alert {index} has no {what}")]
    Incomplete {
        /// Position in `alerts`.
        index: usize,
        /// The missing part.
        what: &'static str,
    },
    /// A time that is not RFC 3339.
    #[error("alert {index}: {what} {value:?} is not an RFC 3339 time")]
    Time {
        /// Position in `alerts`.
        index: usize,
        /// `startsAt` or `endsAt`.
        what: &'static str,
        /// What was sent.
        value: String,
    },
}

/// Parses and checks a webhook body.
pub fn parse(body: &[u8]) -> Result<Message, PayloadError> {
    let message: Message = serde_json::from_slice(body)?;
    if message.version != "4" {
        return Err(PayloadError::Version(message.version));
    }
    for (index, alert) in message.alerts.iter().enumerate() {
        if alert.fingerprint.is_empty() {
            return Err(PayloadError::Incomplete {
                index,
                what: "fingerprint",
            });
        }
        if alert.starts_at.is_empty() {
            return Err(PayloadError::Incomplete {
                index,
                what: "startsAt",
            });
        }
        let rfc3339 = |value: &str| {
            time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339)
                .is_ok()
        };
        for (what, value) in [("startsAt", &alert.starts_at), ("endsAt", &alert.ends_at)] {
            // `endsAt` may be absent; a present one must be a time like `startsAt`.
            let absent_end = value.is_empty() && what == "endsAt";
            if !absent_end && !rfc3339(value) {
                return Err(PayloadError::Time {
                    index,
                    what,
                    value: value.clone(),
                });
            }
        }
        if alert.name().is_empty() {
            return Err(PayloadError::Incomplete {
                index,
                what: "alertname label",
            });
        }
    }
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REAL: &str = r#"{"receiver":"hook","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"XenHostDown","host":"h2","instance":"127.0.0.1:19100","job":"fake-exporter","pool":"p1","severity":"critical"},"annotations":{"summary":"Host h2 down"},"startsAt":"2026-11-22T03:19:27.447Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://vm:19090/graph?g0.expr=x","fingerprint":"33dc400742011547"}],"groupLabels":{"alertname":"XenHostDown"},"commonLabels":{"alertname":"XenHostDown"},"commonAnnotations":{"summary":"Host h2 down"},"externalURL":"http://vm:19093","version":"4","groupKey":"{}:{alertname=\"XenHostDown\"}","truncatedAlerts":0}"#;

    #[test]
    fn parses_what_alertmanager_0_25_sends() {
        let m = parse(REAL.as_bytes()).unwrap();
        assert_eq!(m.status, Status::Firing);
        assert_eq!(m.alerts[0].fingerprint, "33dc400742011547");
        assert_eq!(m.alerts[0].name(), "XenHostDown");
        assert_eq!(m.external_url, "http://vm:19093");
    }

    #[test]
    fn times_must_be_rfc3339() {
        for bad in [
            "not-a-date",
            "2026-11-22T03:19:27",
            "2026-13-01T00:00:00Z",
            "1700000000",
        ] {
            for field in ["startsAt", "endsAt"] {
                let old = if field == "startsAt" {
                    "\"startsAt\":\"2026-11-22T03:19:27.447Z\""
                } else {
                    "\"endsAt\":\"0001-01-01T00:00:00Z\""
                };
                let body = REAL.replace(old, &format!("\"{field}\":\"{bad}\""));
                assert!(
                    matches!(parse(body.as_bytes()), Err(PayloadError::Time { what, .. }) if what == field),
                    "{field} {bad}"
                );
            }
        }
        let offset = REAL.replace("2026-11-22T03:19:27.447Z", "2026-11-22T04:19:27.447+01:00");
        assert!(parse(offset.as_bytes()).is_ok());
    }

    #[test]
    fn rejects_what_it_cannot_trust() {
        assert!(matches!(parse(b"{"), Err(PayloadError::Malformed(_))));
        assert!(matches!(
            parse(
                REAL.replace("\"version\":\"4\"", "\"version\":\"3\"")
                    .as_bytes()
            ),
            Err(PayloadError::Version(_))
        ));
        assert!(matches!(
            parse(
                REAL.replace(
                    "\"fingerprint\":\"33dc400742011547\"",
                    "\"fingerprint\":\"\""
                )
                .as_bytes()
            ),
            Err(PayloadError::Incomplete {
                what: "fingerprint",
                ..
            })
        ));
        assert!(
            parse(
                REAL.replace(
                    "\"status\":\"firing\",\"alerts\"",
                    "\"status\":\"burning\",\"alerts\""
                )
                .as_bytes()
            )
            .is_err()
        );
        let extra = REAL.replacen('{', "{\"futureField\":1,", 1);
        assert!(
            parse(extra.as_bytes()).is_ok(),
            "unknown fields from a newer Alertmanager are ignored"
        );
    }
}
