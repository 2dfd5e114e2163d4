//! `kubectl_complete-bellwether`: what kubectl (1.26 and later) runs, from the PATH, to complete
//! `kubectl bellwether ...`. It hands the words to `kubectl-bellwether __complete`, which answers in
//! kubectl's protocol (see `bellwether::cli::complete`).

use bellwether::cli::complete::COMPLETE_COMMAND;
use std::path::PathBuf;
use std::process::{Command, ExitCode};

const PLUGIN: &str = "kubectl-bellwether";

fn main() -> ExitCode {
    let status = Command::new(plugin()).arg(COMPLETE_COMMAND).args(std::env::args_os().skip(1)).status();
    // A plugin that cannot be run completes nothing; kubectl shows this program's errors under the
    // line being typed, so there are none.
    match status.ok().and_then(|s| s.code()) {
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    }
}

/// The plugin installed beside this program (krew and `cargo install` put them together), else the
/// one on the PATH.
fn plugin() -> PathBuf {
    let beside = std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(format!("{PLUGIN}{}", std::env::consts::EXE_SUFFIX)))
        .filter(|path| path.is_file());
    beside.unwrap_or_else(|| PLUGIN.into())
}
