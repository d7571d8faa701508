//! `xenguard demo`: a simulated 3-host pool and the exporter watching it, in one process, on
//! the default ports, with a short script of faults to try.

use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use crate::exporter::Exporter;
use crate::sim::{PoolSpec, RunningSim, SimOptions};

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
    let mut password = tempfile_in_temp_dir()?;
    writeln!(password.1, "{}", spec.password)?;
    let hosts: Vec<String> = sim
        .host_addresses()
        .iter()
        .map(|a| format!("\"{a}\""))
        .collect();
    let yaml = format!(
        "pools:\n  - name: demo\n    hosts: [{}]\n    scheme: http\n    port: {}\n    password_file: {}\nexporter:\n  listen: 127.0.0.1:9878\n  probe_interval_seconds: 2\n  probe_timeout_seconds: 1\n  event_timeout_seconds: 5\n",
        hosts.join(", "),
        sim.port(),
        password.0.display()
    );
    let config =
        crate::config::parse(&yaml, "demo").map_err(|e| std::io::Error::other(e.to_string()))?;
    let exporter = Arc::new(Exporter::start(&config)?);
    let listen: SocketAddr = config.exporter.listen;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot listen on {listen}: {e}")))?;
    print_banner(&sim, listen, auto);
    let served = axum::serve(listener, exporter.router())
        .with_graceful_shutdown(shutdown)
        .await;
    exporter.shutdown();
    sim.shutdown();
    let _ = std::fs::remove_file(&password.0);
    served?;
    Ok(())
}

fn tempfile_in_temp_dir() -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    let path = std::env::temp_dir().join(format!("xenguard-demo-{}.password", std::process::id()));
    let file = std::fs::File::create(&path)?;
    Ok((path, file))
}

fn print_banner(sim: &RunningSim, exporter: SocketAddr, auto: bool) {
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
    if auto {
        println!(
            "--auto: the remediation receiver is not available yet (tracked in issue 5); the demo only observes."
        );
    } else {
        println!("The remediation receiver is not part of the demo yet (tracked in issue 5).");
    }
    println!("No Prometheus or Alertmanager is needed. Ctrl-C stops it.");
}
