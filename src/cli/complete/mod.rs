//! Shell completion for `kubectl bellwether`, by kubectl's protocol for plugins (kubectl 1.26 and
//! later): to complete `kubectl bellwether get rollout w<TAB>`, kubectl runs the executable
//! `kubectl_complete-bellwether` from the PATH with the words after the plugin's name (`get`,
//! `rollout`, `w`; an empty last word when a new word is begun), and offers what it prints: one
//! candidate a line, each optionally followed by a tab and a description, then a last line
//! `:DIRECTIVE`, cobra's shell-completion directive (4: no file names; 0: the shell's own file
//! completion). kubectl passes the executable's standard error to the terminal, under the line
//! being typed, so nothing is ever written there.
//!
//! `kubectl_complete-bellwether` runs `kubectl-bellwether __complete WORDS...`, which reads the
//! words against the plugin's own command line, so subcommands, flags and their values are those
//! the plugin takes. Rollout names (and namespaces, for `-n`) come from the cluster the words name
//! (`--kubeconfig`, `--context`, `-n`, `--as`), read briefly; a cluster that cannot be reached, or
//! refuses, completes nothing.

mod lookup;
mod words;

use crate::cli::rollout_ref::TypeRule;
pub use words::{Candidate, Want};

/// The hidden first argument of the plugin that answers a completion request.
pub const COMPLETE_COMMAND: &str = "__complete";

/// cobra's directive for candidates that are all there is: the shell adds no file names.
const NO_FILE_COMPLETION: u8 = 4;
/// cobra's directive for the shell's default completion, file names, when nothing is printed.
const DEFAULT_COMPLETION: u8 = 0;

/// How long a completion may take in all before it answers that there is nothing to offer, as a
/// person waits on a key press. A credential plugin (a cloud's login) can block the thread that
/// builds the client, where no timeout of the runtime reaches, so another thread gives that answer.
pub const DEADLINE: std::time::Duration = std::time::Duration::from_secs(4);

/// The answer at the [`DEADLINE`]: no candidates, and no file names either.
pub fn nothing() -> String {
    format!(":{NO_FILE_COMPLETION}\n")
}

/// What to print for `words`, the last being the one typed: the candidates, then the directive.
/// `type_rule` says, by the path of subcommand names, whether a rollout must be named with its type.
pub async fn complete(cli: &clap::Command, words: &[String], type_rule: impl Fn(&str) -> TypeRule) -> String {
    let typed = words::read(cli, words, type_rule);
    let directive = if typed.want == Want::Path { DEFAULT_COMPLETION } else { NO_FILE_COMPLETION };
    let candidates = match typed.want {
        Want::Words(candidates) => candidates,
        Want::Rollout => lookup::rollouts(&typed.kube).await,
        Want::Namespace => lookup::namespaces(&typed.kube).await,
        Want::Context => lookup::contexts(&typed.kube),
        Want::Path | Want::Nothing => Vec::new(),
    };
    let mut out = String::new();
    for candidate in candidates {
        let word = format!("{}{}", typed.prefix, candidate.word);
        if !word.starts_with(&typed.partial) {
            continue;
        }
        out.push_str(&word);
        if !candidate.help.is_empty() {
            out.push('\t');
            out.push_str(&candidate.help);
        }
        out.push('\n');
    }
    out.push_str(&format!(":{directive}\n"));
    out
}
