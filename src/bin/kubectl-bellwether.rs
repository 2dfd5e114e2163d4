//! `kubectl bellwether`: the plugin people and CI pipelines use to watch and steer Rollouts.

use clap::{Parser, Subcommand};

/// Watch and steer Bellwether Rollouts. Installed on the PATH as `kubectl-bellwether`, kubectl runs
/// it as `kubectl bellwether ...`; it also works when called directly.
#[derive(Parser)]
#[command(name = "kubectl-bellwether", bin_name = "kubectl bellwether", version, about, long_about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the plugin's version and the API version it speaks.
    Version,
}

fn main() {
    match Cli::parse().command {
        Command::Version => {
            println!("kubectl-bellwether {} (bellwether.dev/v1alpha1)", env!("CARGO_PKG_VERSION"));
        }
    }
}
