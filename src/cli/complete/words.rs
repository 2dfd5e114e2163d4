//! Reading the words typed so far against the plugin's command line (its clap definition, so that
//! completion never drifts from it): which command they are in, which flags were given, and what
//! the word being typed can be.

use crate::cli::cluster::KubeArgs;
use crate::cli::rollout_ref::{ROLLOUT_TYPES, ROLLOUT_VALUE_NAME, TypeRule, is_type};
use clap::{Arg, ArgAction, Args, Command, FromArgMatches, ValueHint};

/// What the word being typed can be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// One of these words.
    Words(Vec<Candidate>),
    /// The name of a Rollout in the namespace.
    Rollout,
    /// A namespace.
    Namespace,
    /// A context of the kubeconfig.
    Context,
    /// A file or directory, which the shell completes itself.
    Path,
    /// Nothing that can be listed, such as a container image.
    Nothing,
}

/// A word that can be typed, and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub word: String,
    pub help: String,
}

/// The word being typed, read in the context of the words before it.
#[derive(Debug)]
pub struct Typed {
    pub want: Want,
    /// What each candidate is written after, in the same word: `rollout/`, `--output=`.
    pub prefix: String,
    /// The word as typed so far, prefix included; candidates that do not start with it are dropped.
    pub partial: String,
    /// The cluster flags given so far, so that names are listed where the command would act.
    pub kube: KubeArgs,
}

/// Reads `words`, whose last is the one being typed (empty for a new word), against `cli`.
/// `type_rule` says, by the path of subcommand names (`get`, `set image`), whether a rollout must be
/// named with its type.
pub fn read(cli: &Command, words: &[String], type_rule: impl Fn(&str) -> TypeRule) -> Typed {
    let mut cli = cli.clone();
    cli.build();
    let (partial, before) = match words.split_last() {
        Some((last, before)) => (last.as_str(), before),
        None => ("", &[][..]),
    };
    let mut command = &cli;
    let mut path: Vec<&str> = Vec::new();
    let mut positionals: Vec<&str> = Vec::new();
    let mut given: Vec<(&Arg, Option<&str>)> = Vec::new();
    let mut pending: Option<&Arg> = None;
    let mut escaped = false;
    for word in before {
        if let Some(arg) = pending.take() {
            given.push((arg, Some(word)));
        } else if escaped || word == "-" || !word.starts_with('-') {
            match command.find_subcommand(word).filter(|_| !escaped && positionals.is_empty()) {
                Some(subcommand) => {
                    command = subcommand;
                    path.push(subcommand.get_name());
                }
                None => positionals.push(word),
            }
        } else if word == "--" {
            escaped = true;
        } else if let Some(long) = word.strip_prefix("--") {
            let (name, value) = long.split_once('=').map_or((long, None), |(n, v)| (n, Some(v)));
            if let Some(arg) = command.get_arguments().find(|a| a.get_long() == Some(name)) {
                match value {
                    None if takes_value(arg) => pending = Some(arg),
                    value => given.push((arg, value)),
                }
            }
        } else {
            pending = shorts(command, &word[1..], &mut given);
        }
    }
    let kube = kube_args(&given);
    let typed = |want, prefix: &str| Typed {
        want,
        prefix: prefix.into(),
        partial: partial.into(),
        kube: kube.clone(),
    };
    if let Some(arg) = pending {
        return typed(value_of(arg), "");
    }
    if !escaped && partial.starts_with('-') {
        if let Some((name, _)) = partial.strip_prefix("--").and_then(|long| long.split_once('=')) {
            return match command.get_arguments().find(|a| a.get_long() == Some(name)) {
                Some(arg) if takes_value(arg) => typed(value_of(arg), &format!("--{name}=")),
                _ => typed(Want::Nothing, ""),
            };
        }
        return typed(Want::Words(flags(command, partial, &given)), "");
    }
    if command.has_subcommands() && positionals.is_empty() {
        let subcommands = command
            .get_subcommands()
            .filter(|s| !s.is_hide_set())
            .map(|s| Candidate { word: s.get_name().into(), help: short_help(s.get_about()) })
            .collect();
        return typed(Want::Words(subcommands), "");
    }
    let rule = type_rule(&path.join(" "));
    let (want, prefix) = positional(command, &positionals, partial, rule);
    typed(want, &prefix)
}

/// Reads a cluster of short flags (`-Aw`, `-nshop`, `-n`); returns the flag still waiting for its
/// value in the next word.
fn shorts<'c, 'w>(
    command: &'c Command,
    letters: &'w str,
    given: &mut Vec<(&'c Arg, Option<&'w str>)>,
) -> Option<&'c Arg> {
    for (at, letter) in letters.char_indices() {
        let arg = command.get_arguments().find(|a| a.get_short() == Some(letter))?;
        if takes_value(arg) {
            let rest = &letters[at + letter.len_utf8()..];
            let rest = rest.strip_prefix('=').unwrap_or(rest);
            if rest.is_empty() {
                return Some(arg);
            }
            given.push((arg, Some(rest)));
            return None;
        }
        given.push((arg, None));
    }
    None
}

fn takes_value(arg: &Arg) -> bool {
    arg.get_action().takes_values()
}

/// The flags of `command` that start with `partial`: long ones, and short ones too for a lone `-`.
/// A flag already given is left out unless it can be given again.
fn flags(command: &Command, partial: &str, given: &[(&Arg, Option<&str>)]) -> Vec<Candidate> {
    let repeatable = |arg: &Arg| matches!(arg.get_action(), ArgAction::Append | ArgAction::Count);
    let mut candidates = Vec::new();
    for arg in command.get_arguments().filter(|a| !a.is_positional() && !a.is_hide_set()) {
        if given.iter().any(|(g, _)| g.get_id() == arg.get_id()) && !repeatable(arg) {
            continue;
        }
        let help = short_help(arg.get_help());
        if let Some(long) = arg.get_long() {
            candidates.push(Candidate { word: format!("--{long}"), help: help.clone() });
        }
        if let (Some(short), "-") = (arg.get_short(), partial) {
            candidates.push(Candidate { word: format!("-{short}"), help });
        }
    }
    candidates
}

/// What a flag's value can be.
fn value_of(arg: &Arg) -> Want {
    let values: Vec<Candidate> = arg
        .get_possible_values()
        .into_iter()
        .filter(|v| !v.is_hide_set())
        .map(|v| Candidate { word: v.get_name().into(), help: short_help(v.get_help()) })
        .collect();
    if !values.is_empty() {
        return Want::Words(values);
    }
    match arg.get_id().as_str() {
        "namespace" => Want::Namespace,
        "context" => Want::Context,
        _ if matches!(
            arg.get_value_hint(),
            ValueHint::AnyPath | ValueHint::FilePath | ValueHint::DirPath
        ) =>
        {
            Want::Path
        }
        _ => Want::Nothing,
    }
}

/// What the next positional word of `command` can be, and the prefix of its candidates: a rollout
/// as kubectl names a resource (`NAME`, `TYPE NAME`, `TYPE/NAME`), or another argument's values.
fn positional(command: &Command, before: &[&str], partial: &str, rule: TypeRule) -> (Want, String) {
    let mut args = command.get_positionals();
    let Some(first) = args.next() else { return (Want::Nothing, String::new()) };
    let names_a_rollout = first.get_value_names().is_some_and(|names| names == [ROLLOUT_VALUE_NAME]);
    if !names_a_rollout {
        // Every other positional argument takes one value, or (the last) any number.
        let arg =
            std::iter::once(first).chain(args).nth(before.len()).or_else(|| command.get_positionals().last());
        return (arg.map_or(Want::Nothing, value_of), String::new());
    }
    match before {
        [] => match partial.split_once('/') {
            Some((kind, _)) if is_type(kind) == Ok(true) => (Want::Rollout, format!("{kind}/")),
            Some(_) => (Want::Nothing, String::new()),
            None if rule == TypeRule::Required => (Want::Words(types(partial)), String::new()),
            None => (Want::Rollout, String::new()),
        },
        [kind] if !kind.contains('/') && is_type(kind) == Ok(true) => (Want::Rollout, String::new()),
        // The rollout is named; what follows it (such as set image's CONTAINER=IMAGE) is not listed.
        _ => (Want::Nothing, String::new()),
    }
}

/// The types that name Bellwether's Rollouts; the qualified ones only once a `.` is typed.
fn types(partial: &str) -> Vec<Candidate> {
    ROLLOUT_TYPES
        .iter()
        .filter(|t| partial.contains('.') || !t.contains('.'))
        .map(|t| Candidate { word: t.to_string(), help: "Bellwether's Rollouts".into() })
        .collect()
}

/// The cluster flags among those given, as the commands read them.
fn kube_args(given: &[(&Arg, Option<&str>)]) -> KubeArgs {
    let parser = KubeArgs::augment_args(Command::new("kube").no_binary_name(true).ignore_errors(true));
    let known: Vec<&str> = parser.get_arguments().map(|a| a.get_id().as_str()).collect();
    let mut argv = Vec::new();
    for (arg, value) in given.iter().filter(|(a, _)| known.contains(&a.get_id().as_str())) {
        if let Some(long) = arg.get_long() {
            argv.push(match value {
                Some(value) => format!("--{long}={value}"),
                None => format!("--{long}"),
            });
        }
    }
    parser
        .try_get_matches_from(argv)
        .ok()
        .and_then(|matches| KubeArgs::from_arg_matches(&matches).ok())
        .unwrap_or_default()
}

/// A help text's first phrase, to describe a candidate in a line: up to the first `.`, `:` or `;`.
fn short_help(help: Option<&clap::builder::StyledStr>) -> String {
    let help = help.map(|h| h.to_string()).unwrap_or_default();
    let line = help.lines().next().unwrap_or_default();
    let end = [". ", ": ", "; "].iter().filter_map(|stop| line.find(stop)).min().unwrap_or(line.len());
    line[..end].trim_end_matches('.').to_string()
}
