//! `get rollout NAME` and `list`: what a person reads to see where a rollout is, and why.
//!
//! Rendering is pure: it takes the objects and the current time, so that the output is the same
//! on every run and can be compared with expected text. The fetchers gather the objects from the
//! cluster. `-o json|yaml` prints the Rollout objects themselves, as kubectl does, so that scripts
//! read the same fields as `kubectl get`; `-o name` prints `rollout.bellwether.dev/NAME`; `-o wide`
//! cuts nothing short.
//!
//! The tree keeps within 100 columns: summaries (Events, actions, metric lines) are cut with `…`,
//! since their whole text is a command away, but the reasons a rollout stopped or failed (its
//! message, an analysis's verdict, the abort) are wrapped, never cut.

use crate::api::{
    AbortStatus, AnalysisPhase, AnalysisRun, AnalysisRunRef, CanaryStep, CanaryStrategy, HeaderMatchType,
    HysteresisStatus, Metric, MetricResult, REVISION_LABEL, ROLLOUT_LABEL, Rollout, RolloutPhase,
    RolloutStatus, format_duration,
};
use crate::cli::cluster::{CallError, failed, rollout_events};
use crate::engine::format_value;
use chrono::{DateTime, Utc};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::events::v1::Event;
use kube::api::{Api, ListParams};
use kube::{Client, Resource};
use std::fmt::Write;

/// How many of the Rollout's Events the tree shows, newest last.
const EVENTS_SHOWN: usize = 5;
/// How many of the Rollout's recorded actions the tree shows, newest first.
const ACTIONS_SHOWN: usize = 5;
/// The width the tree and the table keep their free text within, so that they read well in a
/// 100-column terminal.
const WIDTH: usize = 100;
/// The widest a MESSAGE cell of `list` gets; the columns before it rarely take more than half a
/// terminal.
const LIST_MESSAGE_WIDTH: usize = 60;

/// Everything `get rollout` draws: the Rollout and the objects that explain its state.
#[derive(Clone, Debug)]
pub struct RolloutView {
    pub rollout: Rollout,
    pub replica_sets: Vec<ReplicaSet>,
    pub analysis_runs: Vec<AnalysisRun>,
    pub events: Vec<Event>,
}

/// The output format of `get` and `list`, as kubectl's `-o`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// A tree for people (`get`) or one line per rollout (`list`).
    #[default]
    Text,
    /// The tree with no line cut short (`get`); more columns, messages whole (`list`).
    Wide,
    /// `rollout.bellwether.dev/NAME`, a line each, as kubectl prints names.
    Name,
    Json,
    Yaml,
}

/// How long the tree's lines may be: `Some` width for a terminal, `None` for `-o wide`.
type Width = Option<usize>;

#[derive(Debug, thiserror::Error)]
pub enum ShowError {
    #[error("rollout {name} not found in namespace {namespace}")]
    NotFound { name: String, namespace: String },
    #[error(transparent)]
    Call(#[from] CallError),
}

/// Reads the Rollout `name` and the ReplicaSets, AnalysisRuns and Events about it.
pub async fn fetch_view(client: &Client, namespace: &str, name: &str) -> Result<RolloutView, ShowError> {
    let rollout = fetch_rollout(client, namespace, name).await?;
    let owned = ListParams::default().labels(&format!("{ROLLOUT_LABEL}={name}"));
    let replica_sets = Api::<ReplicaSet>::namespaced(client.clone(), namespace)
        .list(&owned)
        .await
        .map_err(failed(format!("listing the ReplicaSets of Rollout {namespace}/{name}")))?
        .items;
    let analysis_runs = Api::<AnalysisRun>::namespaced(client.clone(), namespace)
        .list(&owned)
        .await
        .map_err(failed(format!("listing the AnalysisRuns of Rollout {namespace}/{name}")))?
        .items;
    // Filtered here rather than by a field selector on `regarding.name`, which not every API
    // server implementation supports for Events.
    let events = rollout_events(client, namespace, name).await?;
    Ok(RolloutView { rollout, replica_sets, analysis_runs, events })
}

/// Reads the Rollout `name` of `namespace`.
pub async fn fetch_rollout(client: &Client, namespace: &str, name: &str) -> Result<Rollout, ShowError> {
    Api::<Rollout>::namespaced(client.clone(), namespace)
        .get_opt(name)
        .await
        .map_err(failed(format!("reading Rollout {namespace}/{name}")))?
        .ok_or_else(|| ShowError::NotFound { name: name.into(), namespace: namespace.into() })
}

/// Reads the Rollouts of `namespace`, or of every namespace when it is `None`; with a label
/// `selector` (`app=web,tier!=batch`), only those it selects.
pub async fn fetch_list(
    client: &Client,
    namespace: Option<&str>,
    selector: Option<&str>,
) -> Result<Vec<Rollout>, ShowError> {
    let api = match namespace {
        Some(namespace) => Api::<Rollout>::namespaced(client.clone(), namespace),
        None => Api::<Rollout>::all(client.clone()),
    };
    let mut which = namespace.map_or("every namespace".to_string(), |ns| format!("namespace {ns}"));
    let mut params = ListParams::default();
    if let Some(selector) = selector {
        params = params.labels(selector);
        let _ = write!(which, " labelled {selector}");
    }
    let mut rollouts =
        api.list(&params).await.map_err(failed(format!("listing the Rollouts of {which}")))?.items;
    rollouts.sort_by(|a, b| {
        (a.metadata.namespace.as_deref(), a.metadata.name.as_deref())
            .cmp(&(b.metadata.namespace.as_deref(), b.metadata.name.as_deref()))
    });
    Ok(rollouts)
}

/// `get rollout` in the chosen format: the tree, its name, or the Rollout object itself.
pub fn render_view(view: &RolloutView, output: Output, now: DateTime<Utc>) -> String {
    match output {
        Output::Text => tree(view, now),
        Output::Wide => tree_within(view, now, None),
        Output::Name => names(std::slice::from_ref(&view.rollout)),
        Output::Json => json(&view.rollout),
        Output::Yaml => yaml(&view.rollout),
    }
}

/// `list` in the chosen format: the table, the names, or a `List` of the Rollouts as kubectl
/// prints it.
pub fn render_list(rollouts: &[Rollout], all_namespaces: bool, output: Output) -> String {
    let list = || {
        serde_json::json!({
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": ""},
            "items": rollouts,
        })
    };
    match output {
        Output::Text => list_table(rollouts, all_namespaces),
        Output::Wide => table(rollouts, all_namespaces, true),
        Output::Name => names(rollouts),
        Output::Json => json(&list()),
        Output::Yaml => yaml(&list()),
    }
}

/// `rollout.bellwether.dev/NAME`, a line each, as `kubectl get -o name` writes a custom resource
/// (without the namespace, even across namespaces).
fn names(rollouts: &[Rollout]) -> String {
    let kind = format!("{}.{}", Rollout::kind(&()).to_ascii_lowercase(), Rollout::group(&()));
    rollouts.iter().map(|r| format!("{kind}/{}\n", r.metadata.name.as_deref().unwrap_or_default())).collect()
}

pub fn json(value: &impl serde::Serialize) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("Kubernetes objects serialize to JSON");
    text.push('\n');
    text
}

pub fn yaml(value: &impl serde::Serialize) -> String {
    serde_yaml::to_string(value).expect("Kubernetes objects serialize to YAML")
}

/// One line per rollout, in the order given, with a header; columns are as wide as their widest cell.
pub fn list_table(rollouts: &[Rollout], all_namespaces: bool) -> String {
    table(rollouts, all_namespaces, false)
}

/// The table of `list`; `wide` adds each rollout's analyses and images and keeps messages whole.
fn table(rollouts: &[Rollout], all_namespaces: bool, wide: bool) -> String {
    let mut header = vec!["NAME", "PHASE", "STEP", "CANARY WEIGHT", "STABLE", "CANARY"];
    if wide {
        header.extend(["ANALYSIS", "IMAGES"]);
    }
    header.push("MESSAGE");
    if all_namespaces {
        header.insert(0, "NAMESPACE");
    }
    let mut rows: Vec<Vec<String>> = vec![header.into_iter().map(String::from).collect()];
    for rollout in rollouts {
        let status = rollout.status.clone().unwrap_or_default();
        let message = status.message.as_deref().unwrap_or("");
        let mut row = vec![
            rollout.metadata.name.clone().unwrap_or_default(),
            status.phase.map_or("-".to_string(), phase_name),
            status.step.clone().unwrap_or_else(|| "-".into()),
            format!("{}%", status.weights.canary),
            status.stable_revision.clone().unwrap_or_else(|| "-".into()),
            status.canary_revision.clone().unwrap_or_else(|| "-".into()),
        ];
        if wide {
            row.push(analyses(&status));
            row.push(template_images(rollout));
            row.push(one_line(message));
        } else {
            row.push(truncate(message, LIST_MESSAGE_WIDTH));
        }
        if all_namespaces {
            row.insert(0, rollout.metadata.namespace.clone().unwrap_or_default());
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|column| rows.iter().map(|row| row[column].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in &rows {
        let last = row.len() - 1;
        let mut line = String::new();
        for (column, cell) in row.iter().enumerate() {
            if column == last {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}   ", width = widths[column]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The phases of the analyses running for a rollout now: `step Running, background Running`.
fn analyses(status: &RolloutStatus) -> String {
    let runs = [("step", &status.step_analysis_run), ("background", &status.background_analysis_run)];
    let shown: Vec<String> = runs
        .into_iter()
        .filter_map(|(role, run)| {
            let run = run.as_ref()?;
            Some(format!("{role} {}", run.phase.map_or("Pending".to_string(), |p| format!("{p:?}"))))
        })
        .collect();
    if shown.is_empty() { "-".into() } else { shown.join(", ") }
}

/// The images of the rollout's own pod template, `app=shop:2,sidecar=envoy:1.30`; `-` for a
/// template taken from a Deployment.
fn template_images(rollout: &Rollout) -> String {
    let Some(spec) = rollout.spec.embedded_template().and_then(|t| t.spec) else {
        return "-".into();
    };
    spec.containers
        .iter()
        .map(|c| format!("{}={}", c.name, c.image.as_deref().unwrap_or("?")))
        .collect::<Vec<_>>()
        .join(",")
}

/// The tree of one rollout at `now`: phase, steps, weights, revisions, analysis, abort and Events,
/// within 100 columns.
pub fn tree(view: &RolloutView, now: DateTime<Utc>) -> String {
    tree_within(view, now, Some(WIDTH))
}

/// The tree with its lines kept within `width`, or whole.
fn tree_within(view: &RolloutView, now: DateTime<Utc>, width: Width) -> String {
    let rollout = &view.rollout;
    let status = rollout.status.clone().unwrap_or_default();
    let mut out = String::new();
    let name = rollout.metadata.name.as_deref().unwrap_or("");
    let namespace = rollout.metadata.namespace.as_deref().unwrap_or("default");
    let _ = writeln!(out, "Rollout {name} (namespace {namespace})");
    let _ = writeln!(out, "Phase:     {}", status.phase.map_or("Unknown".to_string(), phase_name));
    if let Some(message) = status.message.as_deref().filter(|m| !m.is_empty()) {
        let _ = writeln!(out, "Message:   {}", wrap(message, 11, width));
    }

    let steps = &rollout.spec.strategy.canary.steps;
    let current = status.current_step_index.map(|i| i.max(0) as usize);
    let shown_step =
        current.map_or("-".to_string(), |i| format!("{}/{}", (i + 1).min(steps.len()), steps.len()));
    let _ = writeln!(out, "Step:      {shown_step}");
    for (index, step) in steps.iter().enumerate() {
        let mark = match current {
            Some(c) if index < c => "✔",
            Some(c) if index == c && status.phase == Some(RolloutPhase::Degraded) => "✘",
            Some(c) if index == c => "▶",
            _ => "·",
        };
        let _ = writeln!(out, "  {mark} {:>2}  {}", index + 1, step_kind(step));
    }

    let weights = status.weights;
    let desired = desired_canary_weight(&rollout.spec.strategy.canary, current, status.phase, weights.canary);
    let verified = if weights.verified { "✔ verified on every route" } else { "… not verified yet" };
    let _ = writeln!(
        out,
        "Weights:   desired canary {desired}%   actual canary {}% / stable {}%   {verified}",
        weights.canary, weights.stable
    );
    let exposure = &status.exposure;
    if !exposure.is_empty() {
        let mut parts: Vec<String> =
            exposure.header_routes.iter().map(|name| format!("header route {name}")).collect();
        parts.extend(exposure.mirror.iter().map(|m| format!("mirror {} {}%", m.name, m.percent)));
        let _ = writeln!(out, "Exposure:  {}", parts.join("; "));
    }
    // Each route's own state, where there are several or one lags: which carries what, and why not.
    if status.routes.len() > 1 || status.routes.iter().any(|r| !r.ready) {
        let _ = writeln!(out, "Routes:");
        for route in &status.routes {
            let mut carries =
                vec![route.canary_weight.map_or("canary ?".to_string(), |w| format!("canary {w}%"))];
            carries.extend(route.header_routes.iter().map(|name| format!("header route {name}")));
            carries.extend(route.mirror_percent.map(|p| format!("mirror {p}%")));
            let state = if route.ready { "✔ ready" } else { "✘ not ready" };
            let _ = writeln!(out, "  {}  {}  {state}", route.name, carries.join(", "));
            if let (false, Some(why)) = (route.ready, &route.message) {
                let _ = writeln!(out, "    {}", wrap(why, 4, width));
            }
        }
    }

    let _ = writeln!(out, "Revisions:");
    for (role, revision) in [("stable", &status.stable_revision), ("canary", &status.canary_revision)] {
        let Some(revision) = revision else {
            let _ = writeln!(out, "  {role}  -");
            continue;
        };
        let replica_set = view
            .replica_sets
            .iter()
            .find(|rs| rs.metadata.labels.as_ref().and_then(|l| l.get(REVISION_LABEL)) == Some(revision));
        match replica_set {
            Some(rs) => {
                let desired = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
                let ready = rs.status.as_ref().and_then(|s| s.ready_replicas).unwrap_or(0);
                let _ = writeln!(out, "  {role}  {revision}  pods {ready}/{desired} ready  {}", images(rs));
            }
            None => {
                let _ = writeln!(out, "  {role}  {revision}  (no ReplicaSet)");
            }
        }
    }

    let runs = [("step", &status.step_analysis_run), ("background", &status.background_analysis_run)];
    if runs.iter().any(|(_, run)| run.is_some()) {
        let _ = writeln!(out, "Analysis:");
        for (role, reference) in runs {
            if let Some(reference) = reference {
                analysis(&mut out, role, reference, &view.analysis_runs, now, width);
            }
        }
    }

    if let Some(abort) = &status.abort {
        abort_lines(&mut out, abort, now, width);
    }

    if !status.actions.is_empty() {
        let _ = writeln!(out, "Actions (newest first; all of them: kubectl bellwether history {name}):");
        for record in status.actions.iter().take(ACTIONS_SHOWN) {
            let age = format_duration(now - record.at);
            let head = format!("  {age:<8} {:<20} {:<16} ", record.action, record.by);
            let reason = clip(&record.reason, head.chars().count(), width);
            let _ = writeln!(out, "{}", format!("{head}{reason}").trim_end());
        }
    }

    let mut events: Vec<(Option<DateTime<Utc>>, &Event)> =
        view.events.iter().map(|e| (event_time(e), e)).collect();
    events.sort_by_key(|(at, _)| *at);
    let recent = &events[events.len().saturating_sub(EVENTS_SHOWN)..];
    if !recent.is_empty() {
        let _ = writeln!(out, "Events:");
        for (at, event) in recent {
            let age = at.map_or("-".to_string(), |at| format_duration(now - at));
            let head = format!(
                "  {age:<8} {:<8} {:<20} ",
                event.type_.as_deref().unwrap_or(""),
                event.reason.as_deref().unwrap_or("")
            );
            let note = clip(event.note.as_deref().unwrap_or(""), head.chars().count(), width);
            let _ = writeln!(out, "{}", format!("{head}{note}").trim_end());
        }
    }
    out
}

fn phase_name(phase: RolloutPhase) -> String {
    phase.as_str().to_string()
}

/// `setWeight 10`, `pause 2m`, `pause (until promoted)`, `analysis error-rate, latency`,
/// `setHeaderRoute testers (X-Canary: always)` or `setMirrorRoute shadow 20%`.
fn step_kind(step: &CanaryStep) -> String {
    if let Some(weight) = step.set_weight {
        format!("setWeight {weight}")
    } else if let Some(pause) = &step.pause {
        pause.duration.as_ref().map_or("pause (until promoted)".to_string(), |d| format!("pause {d}"))
    } else if let Some(analysis) = &step.analysis {
        let names: Vec<&str> = analysis.templates.iter().map(|t| t.template_name.as_str()).collect();
        format!("analysis {}", names.join(", "))
    } else if let Some(route) = &step.set_header_route {
        let headers: Vec<String> = route
            .headers
            .iter()
            .map(|h| match h.type_ {
                HeaderMatchType::Exact => format!("{}: {}", h.name, h.value),
                HeaderMatchType::RegularExpression => format!("{} ~ {}", h.name, h.value),
            })
            .collect();
        match headers.is_empty() {
            true => format!("setHeaderRoute {} (removed)", route.name),
            false => format!("setHeaderRoute {} ({})", route.name, headers.join(", ")),
        }
    } else if let Some(mirror) = &step.set_mirror_route {
        match mirror.percent {
            Some(percent) => format!("setMirrorRoute {} {percent}%", mirror.name),
            None => format!("setMirrorRoute {} (removed)", mirror.name),
        }
    } else {
        "(empty step)".to_string()
    }
}

/// The canary weight the steps call for now: that of the last `setWeight` reached. Outside a
/// canary (no current step, or Healthy) it is what the status shows.
fn desired_canary_weight(
    canary: &CanaryStrategy,
    current: Option<usize>,
    phase: Option<RolloutPhase>,
    shown: i32,
) -> i32 {
    match (current, phase) {
        (Some(current), Some(RolloutPhase::Progressing | RolloutPhase::Paused)) => canary.weight_at(current),
        (_, Some(RolloutPhase::Degraded)) => 0,
        _ => shown,
    }
}

/// `app=ghcr.io/acme/shop:1.5, sidecar=envoy:1.30`, from the ReplicaSet's pod template.
fn images(rs: &ReplicaSet) -> String {
    let containers = rs.spec.as_ref().and_then(|s| s.template.as_ref()).and_then(|t| t.spec.as_ref());
    containers
        .map(|spec| {
            spec.containers
                .iter()
                .map(|c| format!("{}={}", c.name, c.image.as_deref().unwrap_or("?")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

fn analysis(
    out: &mut String,
    role: &str,
    reference: &AnalysisRunRef,
    runs: &[AnalysisRun],
    now: DateTime<Utc>,
    width: Width,
) {
    let run = runs.iter().find(|r| r.metadata.name.as_deref() == Some(reference.name.as_str()));
    let run_status = run.and_then(|r| r.status.clone()).unwrap_or_default();
    let phase = run_status.phase.or(reference.phase);
    let _ = writeln!(
        out,
        "  {role:<10}  {}  {}",
        reference.name,
        phase.map_or("Pending".to_string(), |p| format!("{p:?}"))
    );
    let message = run_status.message.as_deref().or(reference.message.as_deref());
    if let Some(message) = message.filter(|m| !m.is_empty() && phase.is_some_and(AnalysisPhase::is_terminal))
    {
        let _ = writeln!(out, "      {}", wrap(message, 6, width));
    }
    let Some(run) = run else { return };
    for metric in &run.spec.metrics {
        let result = run_status.metric_results.iter().find(|r| r.name == metric.name);
        let _ = writeln!(out, "    {}", clip(&metric_line(metric, result, now), 4, width));
    }
}

/// `error-rate  Running  0.0042 ≤ max 0.01  Breaching for 45s  (12 measurements)`.
fn metric_line(metric: &Metric, result: Option<&MetricResult>, now: DateTime<Utc>) -> String {
    let Some(result) = result else {
        return format!("{:<16} Pending  no measurement yet", metric.name);
    };
    let last = result.measurements.last();
    let value = match last {
        None => "no measurement yet".to_string(),
        Some(m) => match (m.value, &m.error) {
            (Some(value), _) => judged(metric, value, m.baseline),
            (None, Some(error)) => format!("error: {error}"),
            (None, None) => "no data".to_string(),
        },
    };
    let mut line = format!("{:<16} {:<12} {value}", metric.name, format!("{:?}", result.phase));
    if let Some(HysteresisStatus { state, since }) = &result.hysteresis {
        let _ = write!(line, "  {state:?} for {}", format_duration(now - *since));
    }
    if metric.dry_run {
        line.push_str("  (dry run)");
    }
    let count = result.measurements.len();
    let _ = write!(line, "  ({count} measurement{})", if count == 1 { "" } else { "s" });
    line
}

/// The value against what judges it: the threshold's bounds, stable's baseline, or the sequential
/// test's meaning.
fn judged(metric: &Metric, value: f64, baseline: Option<f64>) -> String {
    let shown = format_value(value);
    if let Some(threshold) = &metric.threshold {
        return match (threshold.min, threshold.max) {
            (Some(min), _) if value < min => format!("{shown} < min {}", format_value(min)),
            (_, Some(max)) if value > max => format!("{shown} > max {}", format_value(max)),
            (Some(min), Some(max)) => format!("{} ≤ {shown} ≤ {}", format_value(min), format_value(max)),
            (Some(min), None) => format!("{shown} ≥ min {}", format_value(min)),
            (None, Some(max)) => format!("{shown} ≤ max {}", format_value(max)),
            (None, None) => shown,
        };
    }
    if metric.sequential.is_some() {
        return format!("{shown} of canary requests failed");
    }
    match baseline {
        Some(baseline) => format!("{shown} vs stable {}", format_value(baseline)),
        None => shown,
    }
}

fn abort_lines(out: &mut String, abort: &AbortStatus, now: DateTime<Utc>, width: Width) {
    let _ =
        writeln!(out, "Abort:     {} by {}, {} ago", abort.reason, abort.by, format_duration(now - abort.at));
    match (&abort.metric, &abort.value) {
        (Some(metric), Some(value)) => {
            let _ = writeln!(out, "           metric {metric} = {value}");
        }
        (Some(metric), None) => {
            let _ = writeln!(out, "           metric {metric}");
        }
        _ => {}
    }
    if !abort.message.is_empty() {
        let _ = writeln!(out, "           {}", wrap(&abort.message, 11, width));
    }
}

/// When the Event last happened: its series' last occurrence, else its own time, else its creation.
fn event_time(event: &Event) -> Option<DateTime<Utc>> {
    let at = event
        .series
        .as_ref()
        .map(|s| s.last_observed_time.0)
        .or_else(|| event.event_time.as_ref().map(|t| t.0))
        .or_else(|| event.deprecated_last_timestamp.as_ref().map(|t| t.0))
        .or_else(|| event.metadata.creation_timestamp.as_ref().map(|t| t.0))?;
    DateTime::from_timestamp(at.as_second(), at.subsec_nanosecond().unsigned_abs())
}

/// A summary that starts `used` columns in: cut to what is left of `width`, or whole on one line.
fn clip(text: &str, used: usize, width: Width) -> String {
    match width {
        Some(width) => truncate(text, width.saturating_sub(used)),
        None => one_line(text),
    }
}

/// The text on one line: its lines joined with spaces.
fn one_line(text: &str) -> String {
    text.lines().map(str::trim_end).filter(|l| !l.is_empty()).collect::<Vec<_>>().join(" ")
}

/// A reason that starts `indent` columns in, wrapped at word boundaries to what is left of `width`
/// (a word too long for a line is split), each further line indented as the first; with no width,
/// its lines as they are, indented alike.
fn wrap(text: &str, indent: usize, width: Width) -> String {
    let room = width.map(|w| w.saturating_sub(indent).max(1));
    let mut lines: Vec<String> = Vec::new();
    for paragraph in text.lines().filter(|l| !l.trim().is_empty()) {
        let Some(room) = room else {
            lines.push(paragraph.trim_end().to_string());
            continue;
        };
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let mut word: Vec<char> = word.chars().collect();
            loop {
                let used = line.chars().count();
                let gap = usize::from(used > 0);
                if used + gap + word.len() <= room {
                    if gap == 1 {
                        line.push(' ');
                    }
                    line.extend(word.iter());
                    break;
                }
                if used > 0 {
                    lines.push(std::mem::take(&mut line));
                    continue;
                }
                // A word longer than a whole line: as much as fits, the rest on the next.
                let rest = word.split_off(room);
                lines.push(word.iter().collect());
                word = rest;
            }
        }
        lines.push(line);
    }
    lines.join(&format!("\n{}", " ".repeat(indent)))
}

/// The text cut to `width` characters, ending in `…` when cut.
fn truncate(text: &str, width: usize) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() <= width && line.len() == text.len() {
        return line.to_string();
    }
    let kept: String = line.chars().take(width.saturating_sub(1)).collect();
    format!("{}…", kept.trim_end())
}
