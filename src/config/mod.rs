//! The configuration file: one YAML document, validated as a whole.
//!
//! [`load`] and [`parse`] return a validated [`Config`], or a [`ConfigErrors`] holding *every*
//! problem found, each with `file:line:column`. `xenguard check-config FILE`
//! ([`check_config_command`]) prints them, one per line, and exits 1; on success it prints a
//! one-line summary and exits 0. `tests/fixtures/config/example.yml` documents every key.
//!
//! # How every error is reported at once
//!
//! A serde deserializer stops at the first error, so the file is not handed to one directly.
//! Three steps, with the schema stated once (the `Raw*` structs of `raw.rs`):
//!
//! 1. **A located tree.** serde-saphyr's own YAML parser (`granit-parser`, re-exported as
//!    [`serde_saphyr::granit_parser`], so no extra dependency) turns the text into a small tree
//!    whose every node knows its line and column. Anchors and aliases are expanded, `<<` merge
//!    keys applied, duplicate keys and unsupported tags reported. Only a YAML *syntax* error
//!    stops the check here (nothing after it can be trusted).
//! 2. **The schema, by serde.** The `Raw*` structs derive `Deserialize` with
//!    `deny_unknown_fields`; they are the only statement of which keys exist and what type each
//!    has. A small serde `Deserializer` over the tree feeds them and
//!    - reports *every* key a struct does not declare (serde hands it the struct's field list)
//!      and skips it, so unknown keys never stop the run;
//!    - attaches the node's position to each error serde raises (wrong type, bad value, missing
//!      key);
//!    - when serde does stop (a wrong type, say), records the error, hides the offending node and
//!      deserializes again, until it succeeds. A mistake in one pool therefore does not mask a
//!      mistake in the next, and a "missing key" caused by a hidden node is not reported twice.
//! 3. **Semantic checks** run on the raw values, which carry their positions (`Located`).
//!    A check about the *absence* or *combination* of keys (say, `mode: auto` without `auth`) is
//!    skipped for a mapping in which step 2 hid a node, so one mistake does not produce spurious
//!    follow-up errors.
//!
//! Scalars resolve as in YAML 1.2's core schema, driven by the type the schema expects (as
//! serde-saphyr does): `port: 443` is a number; `lanplus: 1` is the string `"1"` where a string
//! is expected; `null`, `~` or nothing means "absent" only where a key is optional, and an empty
//! section (`exporter:`) means "all defaults". A unit test checks that serde-saphyr's own
//! deserializer reads a valid file into the same [`Config`].
//!
//! # Secrets
//!
//! Passwords are never written in the file: a pool names a `password_file` or a `password_env`,
//! and an inline `password` key is rejected with a pointer to those. [`PoolConfig::password`]
//! reads the secret when it is needed; [`Secret`] never prints its content.
//!
//! # Files
//!
//! ```text
//! mod.rs           load, parse, check-config; the three steps put together
//! model.rs         the validated model (Config, PoolConfig, ...), defaults, secrets
//! diagnostics.rs   ConfigError(s), and the positioned errors and warnings the steps collect
//! tree/mod.rs      step 1: the located YAML tree
//! tree/de.rs       step 2: the serde Deserializer over the tree, its retry rounds
//! raw.rs           the schema: Raw* structs with Located fields
//! check/mod.rs     step 3: the Checker (raw -> Config), shared helpers, cross-section checks
//! check/*.rs       one file per section: pools.rs (with TLS pins), exporter.rs, receiver.rs,
//!                  fencing.rs
//! tests/           the tests that go through parse: mod.rs the whole file, one file per section
//! ```

mod check;
mod diagnostics;
mod model;
mod raw;
#[cfg(test)]
mod tests;
mod tree;

use std::path::Path;
use std::process::ExitCode;

pub use diagnostics::{ConfigError, ConfigErrors};
pub use model::{
    Config, Credentials, ExporterConfig, FenceBudget, FenceDevice, FenceHost, FenceLevel,
    FencingConfig, MaxUnhealthy, Mode, PoolConfig, PoolTimeouts, ReceiverAuth, ReceiverConfig,
    ReceiverTls, ResourceMetrics, Scheme, Secret, StormLimit, TlsConfig, UnknownSources, defaults,
    read_secret_env, read_secret_file,
};

use check::Checker;
use diagnostics::{Problem, Severity};
use raw::RawConfig;
use tree::{build_tree, deserialize_all};

/// Reads and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| {
        ConfigErrors(vec![ConfigError::Read {
            file: file.clone(),
            source,
        }])
    })?;
    parse(&text, &file)
}

/// Validates the text of a configuration file; `file_name` only prefixes the messages.
pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigErrors> {
    let report = analyse(text);
    let errors: Vec<ConfigError> = report
        .problems
        .iter()
        .filter(|problem| problem.severity == Severity::Error)
        .map(|problem| problem.to_error(file_name))
        .collect();
    match report.config {
        Some(config) if errors.is_empty() => Ok(config),
        _ => Err(ConfigErrors(errors)),
    }
}

/// `xenguard check-config FILE`: prints every error (and warning) as `FILE:LINE:COLUMN: ...` on
/// stderr and exits 1, or prints `FILE: ok (summary)` on stdout and exits 0.
pub fn check_config_command(file: &Path) -> ExitCode {
    let name = file.display().to_string();
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(source) => {
            eprintln!("{}", ConfigError::Read { file: name, source });
            return ExitCode::FAILURE;
        }
    };
    let report = analyse(&text);
    for problem in &report.problems {
        eprintln!("{}", problem.render(&name));
    }
    match report.config {
        Some(config) if !report.has_errors() => {
            println!("{name}: ok ({})", config.summary());
            ExitCode::SUCCESS
        }
        _ => ExitCode::FAILURE,
    }
}

/// Everything the three steps found.
struct Report {
    config: Option<Config>,
    /// Sorted by position.
    problems: Vec<Problem>,
}

impl Report {
    fn has_errors(&self) -> bool {
        self.problems
            .iter()
            .any(|problem| problem.severity == Severity::Error)
    }
}

fn analyse(text: &str) -> Report {
    let (root, tree_problems, poisoned) = match build_tree(text) {
        Ok(built) => built,
        Err(fatal) => {
            return Report {
                config: None,
                problems: vec![fatal],
            };
        }
    };
    let (raw, mut problems, hidden) = deserialize_all::<RawConfig>(&root, poisoned);
    problems.extend(tree_problems);
    let config = raw.map(|raw| {
        let mut checker = Checker {
            problems: Vec::new(),
            hidden,
        };
        let config = checker.config(&raw);
        problems.extend(checker.problems);
        config
    });
    Report {
        config,
        problems: problems.into_iter().collect(),
    }
}
