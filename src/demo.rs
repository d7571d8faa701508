//! `xenguard demo`: a simulated 3-host pool, the exporter watching it and the receiver (observe
//! mode), in one process, on the default ports, with a short script of faults to try.
//!
//! Prometheus and Alertmanager are not needed: a small stand-in evaluates the shipped
//! `XenVmsStuckOnDeadHost` rule (`xen_host_stuck_vms > 0` for 15 s) on the exporter's own
//! exposition and posts Alertmanager version-4 notifications, firing and resolved, to the
//! receiver's webhook — the same contract a real Alertmanager uses.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::exporter::Exporter;
use crate::remediation::Receiver;
use crate::sim::{PoolSpec, RunningSim, SimOptions};

/// How long a host must have stuck VMs before the stand-in alert fires (the rule's `for:`).
const ALERT_FOR: Duration = Duration::from_secs(15);

/// Simulated seconds per real second in the demo: the 600 s liveness timeout passes in 60 s.
pub const DEMO_TIME_SCALE: f64 = 10.0;

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The simulator could not start (ports in use?).
    #[error("simulator: {0}")]
    Sim(#[from] crate::sim::SimError),
    /// The exporter could not start.
    #[error("exporter: {0}")]
    Exporter(#[from] crate::exporter::ExporterError),
    /// The receiver could not start.
    #[error("receiver: {0}")]
    Receiver(#[from] crate::remediation::ReceiverError),
    /// The demo's own files or sockets.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Runs until `shutdown` resolves.
pub async fn run(
    auto: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), DemoError> {
    let sim = RunningSim::start(SimOptions {
        time_scale: DEMO_TIME_SCALE,
        ..SimOptions::default()
    })
    .await?;
    let spec = PoolSpec::default();
    let dir = std::env::temp_dir().join(format!("xenguard-demo-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let password = dir.join("pool.password");
    writeln!(std::fs::File::create(&password)?, "{}", spec.password)?;
    let hosts: Vec<String> = sim
        .host_addresses()
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect();
    let yaml = format!(
        "pools:\n  - name: demo\n    hosts: [{}]\n    scheme: http\n    port: {}\n    password_file: {}\nexporter:\n  listen: 127.0.0.1:9878\n  probe_interval_seconds: 2\n  probe_timeout_seconds: 1\n  event_timeout_seconds: 5\nreceiver:\n  listen: 127.0.0.1:9879\n  mode: observe\n  journal_path: {}\n",
        hosts.join(", "),
        sim.port(),
        password.display(),
        dir.join("journal.db").display()
    );
    let config =
        crate::config::parse(&yaml, "demo").map_err(|e| std::io::Error::other(e.to_string()))?;
    let exporter = Arc::new(Exporter::start(&config)?);
    let receiver = Receiver::start(&config)?;
    let (exporter_at, receiver_at) = (config.exporter.listen, config.receiver.listen);
    let bind = |address: SocketAddr| async move {
        tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {address}: {e}")))
    };
    let (exporter_listener, receiver_listener) =
        (bind(exporter_at).await?, bind(receiver_at).await?);
    let receiver_router = receiver.router();
    let receiver_task = tokio::spawn(async move {
        let _ = axum::serve(receiver_listener, receiver_router).await;
    });
    let alerts = tokio::spawn(alerter(
        exporter.clone(),
        format!("http://{receiver_at}/alertmanager"),
    ));
    print_banner(&sim, exporter_at, receiver_at, auto);
    let served = axum::serve(exporter_listener, exporter.router())
        .with_graceful_shutdown(shutdown)
        .await;
    alerts.abort();
    receiver_task.abort();
    receiver.shutdown();
    exporter.shutdown();
    sim.shutdown();
    let _ = std::fs::remove_dir_all(&dir);
    served?;
    Ok(())
}

/// The stand-in for Prometheus and Alertmanager (see the module documentation).
async fn alerter(exporter: Arc<Exporter>, webhook: String) {
    let http = reqwest::Client::new();
    let mut pending: BTreeMap<String, Instant> = BTreeMap::new();
    let mut firing: BTreeMap<String, String> = BTreeMap::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(2));
    loop {
        ticker.tick().await;
        let stuck = stuck_hosts(&exporter.render());
        for (host, count) in &stuck {
            let since = *pending.entry(host.clone()).or_insert_with(Instant::now);
            if *count > 0 && since.elapsed() >= ALERT_FOR && !firing.contains_key(host) {
                let starts_at = rfc3339_now();
                notify(&http, &webhook, "firing", host, &starts_at).await;
                firing.insert(host.clone(), starts_at);
            }
            if *count == 0 {
                pending.remove(host);
                if let Some(starts_at) = firing.remove(host) {
                    notify(&http, &webhook, "resolved", host, &starts_at).await;
                }
            }
        }
    }
}

/// `host_uuid` -> value of `xen_host_stuck_vms` for the demo pool.
fn stuck_hosts(exposition: &str) -> BTreeMap<String, u64> {
    let prefix = "xen_host_stuck_vms{pool=\"demo\",host_uuid=\"";
    exposition
        .lines()
        .filter_map(|line| line.strip_prefix(prefix))
        .filter_map(|rest| {
            let (host, value) = rest.split_once("\"} ")?;
            Some((host.to_owned(), value.trim().parse::<f64>().ok()? as u64))
        })
        .collect()
}

async fn notify(http: &reqwest::Client, webhook: &str, status: &str, host: &str, starts_at: &str) {
    let labels = serde_json::json!({
        "alertname": "XenVmsStuckOnDeadHost", "pool": "demo", "host_uuid": host, "severity": "critical"
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
    match http.post(webhook).json(&body).send().await {
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

fn print_banner(sim: &RunningSim, exporter: SocketAddr, receiver: SocketAddr, auto: bool) {
    let control = sim.control_addr();
    println!(
        "xenguard demo: a simulated 3-host pool watched by the exporter (clock at {DEMO_TIME_SCALE}x)."
    );
    for (i, address) in sim.host_addresses().iter().enumerate() {
        let role = if i == 0 { "master" } else { "slave" };
        println!(
            "  host{}   http://{address}:{}/   XAPI, {role}, user root / password xenguard",
            i + 1,
            sim.port()
        );
    }
    println!("  exporter  http://{exporter}/metrics   (landing page http://{exporter}/)");
    println!("  control   http://{control}/hosts   http://{control}/truth");
    println!(
        "  receiver  http://{receiver}/remediations   (observe mode: plans are journaled, nothing is done)"
    );
    println!();
    println!("Things to try (in another terminal):");
    println!(
        "  curl -s {exporter}/metrics | grep -E '^xen_(pool|host)_(up|reachable|live|stuck_vms|masters|orphaned)'"
    );
    println!(
        "  curl -s -XPOST {control}/hosts/host2/power -d '{{\"state\":\"off\"}}' -H 'content-type: application/json'"
    );
    println!(
        "      -> xen_host_reachable for host2 drops at once; xen_host_live after the simulated 600 s (1 min)"
    );
    println!(
        "  curl -s -XPOST {control}/hosts/host1/network -d '{{\"connected\":false}}' -H 'content-type: application/json'"
    );
    println!(
        "      -> the master's cable is pulled: xen_pool_up 0, xen_pool_master_reachable 0, slaves orphaned"
    );
    println!(
        "  curl -s -XPOST {control}/hosts/host3/xapi -d '{{\"running\":false}}' -H 'content-type: application/json'"
    );
    println!("      -> xapi dies but the VMs keep running: unreachable, not dead");
    println!(
        "  curl -s {control}/truth     # ground truth: where every VM really runs, double_running_vms"
    );
    println!();
    println!();
    println!(
        "A host whose VMs stay stuck for {} s raises XenVmsStuckOnDeadHost to the receiver, which",
        ALERT_FOR.as_secs()
    );
    println!("journals a recovery plan; the alert resolving aborts it. Power host2 off and watch");
    println!("  curl -s {receiver}/remediations");
    if auto {
        println!(
            "--auto: acting (confirmation, fencing, recovery) is not available yet (issue 5); the demo observes."
        );
    }
    println!("No Prometheus or Alertmanager is needed. Ctrl-C stops it.");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_stuck_vms_from_the_exposition() {
        let text = "xen_host_stuck_vms{pool=\"demo\",host_uuid=\"a\"} 2\nxen_host_stuck_vms{pool=\"demo\",host_uuid=\"b\"} 0\nxen_host_stuck_vms{pool=\"other\",host_uuid=\"c\"} 5\n";
        let stuck = stuck_hosts(text);
        assert_eq!(
            stuck.into_iter().collect::<Vec<_>>(),
            vec![("a".to_owned(), 2), ("b".to_owned(), 0)]
        );
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
