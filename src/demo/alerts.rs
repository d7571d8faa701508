//! The demo's stand-in for Prometheus and Alertmanager: every 2 s it reads the exporter's own
//! exposition, applies the shipped `XenVmsStuckOnDeadHost` rule (`xen_host_stuck_vms > 0` for
//! 15 s) and posts Alertmanager version-4 notifications, firing and resolved, to the receiver's
//! webhook with the bearer token: the contract a real Alertmanager keeps.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::POOL;
use crate::exporter::Exporter;

/// How long a host must have stuck VMs before the stand-in alert fires (the rule's `for:`).
pub(super) const ALERT_FOR: Duration = Duration::from_secs(15);

/// Runs the stand-in until the demo stops.
pub(super) async fn alerter(
    exporter: Arc<Exporter>,
    http: reqwest::Client,
    webhook: String,
    token: String,
) {
    let mut pending: BTreeMap<String, Instant> = BTreeMap::new();
    let mut firing: BTreeMap<String, String> = BTreeMap::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    loop {
        ticker.tick().await;
        let stuck = host_series(&exporter.render(), "xen_host_stuck_vms");
        for (host, count) in &stuck {
            let since = *pending.entry(host.clone()).or_insert_with(Instant::now);
            if *count > 0.0 && since.elapsed() >= ALERT_FOR && !firing.contains_key(host) {
                let starts_at = rfc3339_now();
                notify(&http, &webhook, &token, "firing", host, &starts_at).await;
                firing.insert(host.clone(), starts_at);
            }
            if *count == 0.0 {
                pending.remove(host);
                if let Some(starts_at) = firing.remove(host) {
                    notify(&http, &webhook, &token, "resolved", host, &starts_at).await;
                }
            }
        }
    }
}

/// `host_uuid` -> value of the per-host series `metric` of the demo pool.
pub(super) fn host_series(exposition: &str, metric: &str) -> BTreeMap<String, f64> {
    let prefix = format!("{metric}{{pool=\"{POOL}\",host_uuid=\"");
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (host, value) = rest.split_once("\"} ")?;
            Some((host.to_owned(), value.trim().parse::<f64>().ok()?))
        })
        .collect()
}

/// Value of the pool-level series `metric` of the demo pool.
pub(super) fn pool_series(exposition: &str, metric: &str) -> Option<f64> {
    let prefix = format!("{metric}{{pool=\"{POOL}\"}} ");
    exposition
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|value| value.trim().parse().ok())
}

async fn notify(
    http: &reqwest::Client,
    webhook: &str,
    token: &str,
    status: &str,
    host: &str,
    starts_at: &str,
) {
    let labels = serde_json::json!({
        "alertname": "XenVmsStuckOnDeadHost", "pool": POOL, "host_uuid": host, "severity": "critical"
    });
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    labels.to_string().hash(&mut hasher);
    let body = serde_json::json!({
        "version": "4", "groupKey": format!("{{}}:{{host_uuid=\"{host}\"}}"), "truncatedAlerts": 0,
        "status": status, "receiver": "xenguard", "groupLabels": {"host_uuid": host},
        "commonLabels": labels, "commonAnnotations": {}, "externalURL": "http://demo",
        "alerts": [{
            "status": status, "labels": labels, "annotations": {"summary": "VMs stuck on a dead host"},
            "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
            "fingerprint": format!("{:016x}", hasher.finish())
        }]
    });
    match http
        .post(webhook)
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
    {
        Ok(r) => {
            tracing::info!(%host, status, http = r.status().as_u16(), "Demo alert sent to the receiver.")
        }
        Err(e) => tracing::warn!(%host, error = %e, "Demo alert could not be sent."),
    }
}

/// Now as RFC 3339 (UTC, seconds), the form Alertmanager writes `startsAt` in.
fn rfc3339_now() -> String {
    let secs = crate::remediation::unix_now() as i64;
    let compact = crate::xapi::typed::DateTime::from_unix(secs).0; // YYYYMMDDTHH:MM:SSZ
    format!("{}-{}-{}", &compact[0..4], &compact[4..6], &compact[6..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_host_and_pool_series_from_the_exposition() {
        let text = "xen_pool_up{pool=\"demo\"} 1\nxen_host_stuck_vms{pool=\"demo\",host_uuid=\"a\"} 2\nxen_host_stuck_vms{pool=\"demo\",host_uuid=\"b\"} 0\nxen_host_stuck_vms{pool=\"other\",host_uuid=\"c\"} 5\n";
        let stuck = host_series(text, "xen_host_stuck_vms");
        assert_eq!(
            stuck.into_iter().collect::<Vec<_>>(),
            vec![("a".to_owned(), 2.0), ("b".to_owned(), 0.0)]
        );
        assert_eq!(pool_series(text, "xen_pool_up"), Some(1.0));
        assert_eq!(pool_series(text, "xen_pool_masters"), None);
    }

    #[test]
    fn starts_at_is_rfc3339() {
        let t = rfc3339_now();
        assert_eq!(
            (t.len(), &t[4..5], &t[7..8], &t[10..11], &t[19..]),
            (20, "-", "-", "T", "Z"),
            "{t}"
        );
    }
}
