//! Configuration file (placeholder until the config module lands).

use std::path::Path;
use std::process::ExitCode;

/// `xenguard check-config FILE`.
pub fn check_config_command(_file: &Path) -> ExitCode {
    ExitCode::SUCCESS
}
