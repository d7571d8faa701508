//! Logging set-up: `tracing` events to stderr, filtered by `RUST_LOG` (default `info`), in the
//! format `--log-format` names: `text` (human; coloured only when stderr is a terminal),
//! `logfmt` or `json` (one object per line), as node_exporter and Alertmanager offer.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log lines look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    /// `2026-12-06T10:00:00Z  INFO target: message key=value`.
    #[default]
    Text,
    /// `ts=… level=info target=… message="…" key=value`.
    Logfmt,
    /// `{"timestamp":…,"level":"INFO","fields":{"message":…},"target":…}`.
    Json,
}

/// Installs the global subscriber. Call once, at the start of `main`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let registry = tracing_subscriber::registry().with(filter);
    match format {
        LogFormat::Text => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .with_writer(std::io::stderr)
                    .with_ansi(std::io::stderr().is_terminal()),
            )
            .init(),
        LogFormat::Logfmt => registry
            .with(
                tracing_logfmt::builder()
                    .layer()
                    .with_writer(std::io::stderr),
            )
            .init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_writer(std::io::stderr),
            )
            .init(),
    }
}
