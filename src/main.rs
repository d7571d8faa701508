//! The `xenguard` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use xenguard::cli::{Cli, Command, JournalAction, JournalArgs, SimArgs};
use xenguard::remediation::machine::PhaseName;
use xenguard::remediation::words::RequestKind;
use xenguard::sim::{PoolSpec, RunningSim, SimOptions};

fn main() -> ExitCode {
    // Fence agents are run without arguments: under the agent's name, this is `fence-sim`.
    if xenguard::fence_sim::invoked_as_agent(std::env::args_os().next().as_deref()) {
        return fence_sim();
    }
    let cli = Cli::parse();
    // A fence agent's output is its contract with the receiver: no log lines.
    if !matches!(cli.command, Command::FenceSim) {
        xenguard::telemetry::init(cli.log_format);
    }
    match cli.command {
        Command::CheckConfig(args) => xenguard::config::check_config_command(&args.file),
        Command::Demo(args) => report(run_async(async move {
            let mut options = xenguard::demo::DemoOptions {
                auto: args.auto,
                ..xenguard::demo::DemoOptions::default()
            };
            options.sim.spec.timing = args.timing;
            xenguard::demo::run(options, xenguard::shutdown::signal())
                .await
                .map_err(anyhow::Error::from)
        })),
        Command::FenceSim => fence_sim(),
        Command::Sim(args) => report(run_async(sim(args))),
        Command::Exporter(args) => report(run_async(exporter(args.config))),
        Command::Receiver(args) => report(run_async(receiver(args.config))),
        Command::Serve(args) => report(run_async(serve(args.config))),
        Command::Journal(args) => report(journal(args)),
    }
}

/// `xenguard fence-sim`: a fence agent against the simulator's control API. Its exit code is
/// the contract (0 on or done, 2 off, 1 error), so it bypasses [`report`].
fn fence_sim() -> ExitCode {
    use std::io::Read as _;
    let mut input = String::new();
    if let Err(e) = std::io::stdin().read_to_string(&mut input) {
        eprintln!(
            "{}: cannot read standard input: {e}",
            xenguard::fence_sim::AGENT_NAME
        );
        return ExitCode::from(1);
    }
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => ExitCode::from(runtime.block_on(xenguard::fence_sim::run(&input))),
        Err(e) => {
            eprintln!(
                "{}: cannot start the async runtime: {e}",
                xenguard::fence_sim::AGENT_NAME
            );
            ExitCode::from(1)
        }
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

async fn receiver(config: std::path::PathBuf) -> anyhow::Result<()> {
    let config = load_config(&config)?;
    xenguard::remediation::run(&config, xenguard::shutdown::signal()).await?;
    Ok(())
}

/// Exporter and receiver in one process: a signal stops both; either failing stops both.
async fn serve(config: std::path::PathBuf) -> anyhow::Result<()> {
    let config = load_config(&config)?;
    let (stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        xenguard::shutdown::signal().await;
        let _ = stop.send(true);
    });
    let until = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stop| *stop).await;
    };
    let exporter = async {
        xenguard::exporter::run(&config, until(stopped.clone()))
            .await
            .map_err(anyhow::Error::from)
    };
    let receiver = async {
        xenguard::remediation::run(&config, until(stopped.clone()))
            .await
            .map_err(anyhow::Error::from)
    };
    tokio::try_join!(exporter, receiver)?;
    Ok(())
}

/// `xenguard journal`: the operator's view of the remediation journal.
fn journal(args: JournalArgs) -> anyhow::Result<()> {
    let path = args
        .config
        .context("--config FILE is required: it names the journal database")?;
    let config = load_config(&path)?;
    let journal_path = &config.receiver.journal_path;
    if !journal_path.exists() {
        anyhow::bail!(
            "no journal at {} (has the receiver run with this configuration?)",
            journal_path.display()
        );
    }
    let journal = xenguard::remediation::journal::Journal::open(journal_path)?;
    match args.action.unwrap_or(JournalAction::List) {
        JournalAction::List => {
            let list = journal.list(100)?;
            if list.is_empty() {
                println!("no remediations in {}", journal_path.display());
            }
            for r in list {
                println!(
                    "{:>5}  {:<9}  {:<14}  pool {}  host {}  alert {}  ({})",
                    r.id,
                    r.phase,
                    r.kind,
                    r.pool,
                    if r.host_uuid.is_empty() {
                        "-"
                    } else {
                        &r.host_uuid
                    },
                    r.alertname,
                    r.reason
                );
            }
        }
        JournalAction::Show { id } => {
            let Some((r, steps)) = journal.show(id as i64)? else {
                anyhow::bail!("no remediation {id} in {}", journal_path.display());
            };
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"remediation": r, "steps": steps})
                )?
            );
        }
        JournalAction::Approve { id } => request(
            &journal,
            id,
            RequestKind::Approve,
            Some(PhaseName::AwaitingApproval),
        )?,
        JournalAction::Abort { id } => request(&journal, id, RequestKind::Abort, None)?,
        JournalAction::Resume { id } => {
            request(&journal, id, RequestKind::Resume, Some(PhaseName::Held))?
        }
        JournalAction::Attest {
            id,
            host_is_powered_off,
        } => {
            if !host_is_powered_off {
                anyhow::bail!(
                    "an attestation replaces the fence: check on the console, BMC or power strip that the host is powered off, then run again with --host-is-powered-off"
                );
            }
            request(
                &journal,
                id,
                RequestKind::Attest,
                Some(PhaseName::AwaitingAttestation),
            )?
        }
    }
    Ok(())
}

/// Writes an operator request for the receiver, then waits a little for its answer.
fn request(
    journal: &xenguard::remediation::journal::Journal,
    id: u64,
    kind: RequestKind,
    phase: Option<PhaseName>,
) -> anyhow::Result<()> {
    let Some(r) = journal.remediation(id as i64)? else {
        anyhow::bail!("no remediation {id}");
    };
    if let Some(phase) = phase
        && r.phase != phase.as_str()
    {
        anyhow::bail!(
            "remediation {id} is {} ({}), not {phase}: nothing to {kind}",
            r.phase,
            r.reason
        );
    }
    let operator = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".into());
    let now = xenguard::remediation::unix_now();
    let request = journal.add_request(id as i64, kind.as_str(), &operator, now)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some(result) = journal.request_result(request)? {
            println!("remediation {id}: {kind} by {operator}: {result}");
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    println!(
        "remediation {id}: {kind} by {operator} recorded; the receiver has not picked it up within 10 s (is it running?) and will when it does"
    );
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
            timing: args.timing,
            ..PoolSpec::default()
        },
        port: args.port,
        control,
        time_scale: args.time_scale,
        scenario: args.scenario.clone(),
        tls: args.tls,
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
    let tls = args.tls;
    for (i, address) in addresses.iter().enumerate() {
        let role = if i == 0 { "master" } else { "slave" };
        let scheme = if tls { "https" } else { "http" };
        println!(
            "  host{}  {scheme}://{address}:{}/  ({role}; user root{})",
            i + 1,
            sim.port(),
            if tls {
                "; certificate SHA-256 in GET /hosts"
            } else {
                ""
            }
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
