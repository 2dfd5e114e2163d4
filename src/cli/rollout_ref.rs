//! How the plugin's commands name the Rollout they act on, the ways kubectl names a resource:
//! `NAME`, `TYPE NAME` or `TYPE/NAME`.
//!
//! Argo Rollouts' CRD is called `rollouts` too, with the short name `ro`, so in a cluster that runs
//! both, plain `kubectl get rollout` means whichever kubectl finds first. The plugin only ever acts
//! on Bellwether's, and takes every name people use for them: `rollout`, `rollouts`, `ro`, the short
//! name `bwro` that belongs to Bellwether alone, and the fully qualified `rollouts.bellwether.dev`.
//! A type that names Argo's Rollouts is refused rather than taken for Bellwether's.

/// The resource types that name Bellwether's Rollouts, compared without case, as kubectl does.
pub const ROLLOUT_TYPES: [&str; 8] = [
    "rollout",
    "rollouts",
    "ro",
    "bwro",
    "rollout.bellwether.dev",
    "rollouts.bellwether.dev",
    "rollout.v1alpha1.bellwether.dev",
    "rollouts.v1alpha1.bellwether.dev",
];

/// The placeholder of the command-line argument that names a rollout, by which completion knows it.
pub const ROLLOUT_VALUE_NAME: &str = "ROLLOUT";

/// Why the words given do not name one Bellwether Rollout.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RolloutRefError {
    #[error("{0:?} names Argo Rollouts' Rollouts; this plugin acts on Bellwether's: rollouts.bellwether.dev")]
    Argo(String),
    #[error("unknown resource type {0:?}: name a rollout as NAME, TYPE NAME or TYPE/NAME, with TYPE one of {types}",
        types = ROLLOUT_TYPES.join(", "))]
    UnknownType(String),
    #[error("{0:?} has no rollout name: give it as TYPE NAME or TYPE/NAME")]
    MissingName(String),
    #[error("{0:?} is not a rollout name: names cannot contain '/'")]
    Slash(String),
    #[error("the resource type is missing: write rollout {0} (or rollout/{0})")]
    MissingType(String),
}

/// Whether the words must start with a type, as after `get`, or may be a bare name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeRule {
    Required,
    Optional,
}

/// The name of the Rollout that `words` (one or two command-line arguments) name.
pub fn rollout_name(words: &[String], rule: TypeRule) -> Result<String, RolloutRefError> {
    let (kind, name) = match words {
        [one] => match one.split_once('/') {
            Some((kind, name)) => (Some(kind), name),
            None if rule == TypeRule::Required && is_type(one)? => {
                return Err(RolloutRefError::MissingName(one.clone()));
            }
            None if rule == TypeRule::Required => return Err(RolloutRefError::MissingType(one.clone())),
            None => (None, one.as_str()),
        },
        [kind, name] => (Some(kind.as_str()), name.as_str()),
        _ => unreachable!("the command line takes one or two words for a rollout"),
    };
    if let Some(kind) = kind
        && !is_type(kind)?
    {
        return Err(RolloutRefError::UnknownType(kind.to_string()));
    }
    if name.is_empty() {
        return Err(RolloutRefError::MissingName(kind.unwrap_or_default().to_string()));
    }
    if name.contains('/') {
        return Err(RolloutRefError::Slash(name.to_string()));
    }
    Ok(name.to_string())
}

/// Whether `word` is a type naming Bellwether's Rollouts; an error when it names Argo's.
pub fn is_type(word: &str) -> Result<bool, RolloutRefError> {
    let lower = word.to_ascii_lowercase();
    if lower.ends_with(".argoproj.io") && lower.starts_with("rollout") {
        return Err(RolloutRefError::Argo(word.to_string()));
    }
    Ok(ROLLOUT_TYPES.contains(&lower.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(words: &[&str], rule: TypeRule) -> Result<String, RolloutRefError> {
        rollout_name(&words.iter().map(|w| w.to_string()).collect::<Vec<_>>(), rule)
    }

    #[test]
    fn every_way_of_naming_a_bellwether_rollout() {
        for kind in ROLLOUT_TYPES.iter().copied().chain(["Rollout", "ROLLOUTS.bellwether.dev"]) {
            assert_eq!(name(&[kind, "web"], TypeRule::Required), Ok("web".into()), "{kind} web");
            assert_eq!(name(&[&format!("{kind}/web")], TypeRule::Required), Ok("web".into()), "{kind}/web");
        }
        assert_eq!(name(&["web"], TypeRule::Optional), Ok("web".into()));
        // A lone word is a name, even one that reads as a type.
        assert_eq!(name(&["ro"], TypeRule::Optional), Ok("ro".into()));
    }

    /// Argo's Rollouts, other kinds, a type without a name and a name without its type.
    #[test]
    fn what_names_no_bellwether_rollout_is_refused() {
        use RolloutRefError::*;
        let cases: [(&[&str], TypeRule, RolloutRefError); 10] = [
            (&["rollouts.argoproj.io", "web"], TypeRule::Optional, Argo("rollouts.argoproj.io".into())),
            (&["rollout.argoproj.io/web"], TypeRule::Optional, Argo("rollout.argoproj.io".into())),
            (&["deployment", "web"], TypeRule::Optional, UnknownType("deployment".into())),
            (&["deploy/web"], TypeRule::Optional, UnknownType("deploy".into())),
            (&["rollout/"], TypeRule::Optional, MissingName("rollout".into())),
            (&["rollout"], TypeRule::Required, MissingName("rollout".into())),
            (&["web"], TypeRule::Required, MissingType("web".into())),
            (&["ro", "a/b"], TypeRule::Optional, Slash("a/b".into())),
            (&["ro/a/b"], TypeRule::Optional, Slash("a/b".into())),
            (&["bwro", ""], TypeRule::Optional, MissingName("bwro".into())),
        ];
        for (words, rule, error) in cases {
            assert_eq!(name(words, rule), Err(error), "{words:?}");
        }
    }
}
