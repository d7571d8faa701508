//! The `xenguard` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use xenguard::cli::{Cli, Command, SimArgs};
use xenguard::sim::{PoolSpec, RunningSim, SimOptions};

fn main() -> ExitCode {
    let cli = Cli::parse();
    xenguard::telemetry::init();
    match cli.command {
        Command::CheckConfig(args) => xenguard::config::check_config_command(&args.file),
        Command::Demo(args) => report(run_async(async move {
            xenguard::demo::run(args.auto, xenguard::shutdown::signal())
                .await
                .map_err(anyhow::Error::from)
        })),
        Command::Sim(args) => report(run_async(sim(args))),
        Command::Exporter(args) => report(run_async(exporter(args.config))),
        Command::Receiver(_) => not_available("receiver", 5),
        Command::Serve(_) => not_available("serve", 4),
        Command::Journal(_) => not_available("journal", 5),
    }
}

fn run_async(job: impl std::future::Future<Output = anyhow::Result<()>>) -> anyhow::Result<()> {
    tokio::runtime::Runtime::new()
        .context("cannot start the async runtime")?
        .block_on(job)
}

fn report(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("xenguard: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(path: &std::path::Path) -> anyhow::Result<xenguard::config::Config> {
    xenguard::config::load(path)
        .map_err(|errors| anyhow::anyhow!("invalid configuration:\n{errors}"))
}

async fn exporter(config: std::path::PathBuf) -> anyhow::Result<()> {
    let config = load_config(&config)?;
    xenguard::exporter::run(&config, xenguard::shutdown::signal()).await?;
    Ok(())
}

async fn sim(args: SimArgs) -> anyhow::Result<()> {
    let password = match &args.password_file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the password file {}", path.display()))?
            .trim_end_matches(['\n', '\r'])
            .to_owned(),
        None => "xenguard".to_owned(),
    };
    let control = args
        .control
        .parse()
        .with_context(|| format!("--control {:?} is not an address:port", args.control))?;
    let options = SimOptions {
        spec: PoolSpec {
            hosts: args.hosts.into(),
            vms_per_host: args.vms_per_host as usize,
            password,
            ..PoolSpec::default()
        },
        port: args.port,
        control,
        time_scale: args.time_scale,
        scenario: args.scenario.clone(),
    };
    let started = std::time::Instant::now();
    let sim = RunningSim::start(options).await?;
    let addresses = sim.host_addresses();
    println!(
        "xenguard sim: {} hosts, {} guests per host, started in {:.2} s",
        addresses.len(),
        args.vms_per_host,
        started.elapsed().as_secs_f64()
    );
    for (i, address) in addresses.iter().enumerate() {
        let role = if i == 0 { "master" } else { "slave" };
        println!(
            "  host{}  http://{address}:{}/  ({role}; user root)",
            i + 1,
            sim.port()
        );
    }
    println!(
        "  control API  http://{}/  (GET /hosts, GET /truth, POST /hosts/{{host}}/power ...)",
        sim.control_addr()
    );
    println!("Ctrl-C stops it.");
    xenguard::shutdown::signal().await;
    sim.shutdown();
    Ok(())
}

/// Subcommands whose issue has not landed say so plainly instead of half-working.
fn not_available(name: &str, issue: u32) -> ExitCode {
    eprintln!("xenguard {name}: not available yet (tracked in issue {issue}).");
    ExitCode::from(2)
}
