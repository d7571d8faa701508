//! The `xenguard` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use xenguard::cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    xenguard::telemetry::init();
    match cli.command {
        Command::CheckConfig(args) => xenguard::config::check_config_command(&args.file),
        Command::Demo(_) => not_available("demo", 7),
        Command::Sim(_) => not_available("sim", 3),
        Command::Exporter(_) => not_available("exporter", 4),
        Command::Receiver(_) => not_available("receiver", 5),
        Command::Serve(_) => not_available("serve", 4),
        Command::Journal(_) => not_available("journal", 5),
    }
}

/// Subcommands whose issue has not landed say so plainly instead of half-working.
fn not_available(name: &str, issue: u32) -> ExitCode {
    eprintln!("xenguard {name}: not available yet (tracked in issue {issue}).");
    ExitCode::from(2)
}
