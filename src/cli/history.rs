//! `history NAME`: every action recorded in the Rollout's status (what, who, when, of which
//! revision, and why), kept after the Events that told of them have expired.

use crate::api::{ActionRecord, Rollout};
use crate::cli::show::{json, yaml};
use chrono::SecondsFormat;

/// The output format of `history`, as kubectl's `-o`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A table, newest first; reasons are never cut.
    #[default]
    Text,
    Json,
    Yaml,
}

/// The recorded actions in the chosen format: a table, newest first, or the records themselves.
pub fn render(rollout: &Rollout, output: Output) -> String {
    let actions: &[ActionRecord] = rollout.status.as_ref().map_or(&[], |s| &s.actions);
    match output {
        Output::Json => json(&actions),
        Output::Yaml => yaml(&actions),
        Output::Text if actions.is_empty() => "no actions recorded\n".into(),
        Output::Text => table(actions),
    }
}

fn table(actions: &[ActionRecord]) -> String {
    let rows: Vec<[String; 5]> = actions
        .iter()
        .map(|record| {
            [
                record.at.to_rfc3339_opts(SecondsFormat::Secs, true),
                record.action.clone(),
                record.by.clone(),
                record.revision.clone().unwrap_or_else(|| "-".into()),
                record.reason.clone(),
            ]
        })
        .collect();
    let header = ["TIME", "ACTION", "BY", "REVISION", "REASON"].map(String::from);
    let widths: Vec<usize> = (0..4)
        .map(|i| rows.iter().chain([&header]).map(|row| row[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in [&header].into_iter().chain(&rows) {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            match widths.get(i) {
                Some(width) => line.push_str(&format!("{cell:<width$}  ")),
                None => line.push_str(cell),
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rollout(actions: serde_json::Value) -> Rollout {
        serde_json::from_value(json!({
            "apiVersion": "bellwether.dev/v1alpha1",
            "kind": "Rollout",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}},
                "strategy": {"canary": {
                    "stableService": "web-stable",
                    "canaryService": "web-canary",
                    "trafficRouting": {"gatewayAPI": {"httpRoutes": [{"name": "web"}]}},
                    "steps": [{"setWeight": 10}],
                }},
            },
            "status": {"actions": actions},
        }))
        .expect("a Rollout")
    }

    #[test]
    fn a_table_newest_first_with_who_and_when() {
        let rollout = rollout(json!([
            {"action": "abort", "by": "bob", "at": "2026-01-01T12:10:00Z", "revision": "b2", "reason": "all traffic goes back to stable"},
            {"action": "Promoted", "by": "bellwether", "at": "2026-01-01T12:05:00Z", "revision": "a1", "reason": "revision a1 promoted to stable in 5m"},
        ]));
        assert_eq!(
            render(&rollout, Output::Text),
            "TIME                  ACTION    BY          REVISION  REASON\n\
             2026-01-01T12:10:00Z  abort     bob         b2        all traffic goes back to stable\n\
             2026-01-01T12:05:00Z  Promoted  bellwether  a1        revision a1 promoted to stable in 5m\n"
        );
        let parsed: serde_json::Value = serde_json::from_str(&render(&rollout, Output::Json)).expect("JSON");
        assert_eq!(parsed[0]["by"], "bob");
        assert_eq!(render(&self::rollout(json!([])), Output::Text), "no actions recorded\n");
    }
}
