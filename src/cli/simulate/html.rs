//! `bellwether simulate --html FILE`: the simulated timelines drawn as one self-contained HTML page,
//! a panel per scenario: the new revision's share of the traffic as a staircase, each metric against its threshold and
//! its recovery bound, and the moment the canary was promoted, aborted or held.
//!
//! The SVG is written by hand: a page of lines and dots needs no plotting library, and the page
//! works offline with nothing to load. Every number it draws is finite, whatever the metrics did.

use crate::api::{Bounds, HysteresisState, Metric};
use crate::sim::{Outcome, Row, Run, Setup};
use chrono::Duration;
use std::fmt::Write;

/// The drawing's width, and the plot area's margins inside it.
const WIDTH: f64 = 960.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 24.0;
/// The height of one panel's plot area, and the space above each panel for its title.
const PANEL: f64 = 110.0;
const TITLE: f64 = 30.0;
/// The space below the last panel for the time axis.
const AXIS: f64 = 34.0;

pub const WEIGHT_COLOUR: &str = "#1f6feb";
pub const PROMOTED_COLOUR: &str = "#1a7f37";
pub const ABORTED_COLOUR: &str = "#cf222e";
const HELD_COLOUR: &str = "#6e7781";
const THRESHOLD_COLOUR: &str = "#cf222e";
const RECOVER_COLOUR: &str = "#bf8700";
const VALUE_COLOUR: &str = "#24292f";

/// The page for `runs`, each a scenario's name and its simulated run of the Rollout in `setup`.
pub fn page(setup: &Setup, runs: &[(String, Run)]) -> String {
    let title = format!("Bellwether simulation of Rollout {}/{}", setup.namespace, setup.name);
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n\
         <style>\nbody {{ font-family: system-ui, sans-serif; margin: 24px; color: {VALUE_COLOUR}; background: #fff; }}\n\
         h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin: 24px 0 4px; }}\n\
         svg text {{ font-size: 12px; fill: {VALUE_COLOUR}; }}\n.legend span {{ margin-right: 18px; }}\n</style>\n</head>\n<body>\n<h1>{}</h1>\n\
         <p class=\"legend\"><span style=\"color: {THRESHOLD_COLOUR}\">- - threshold</span>\
         <span style=\"color: {RECOVER_COLOUR}\">&middot;&middot;&middot; recovery bound</span>\
         <span style=\"color: {PROMOTED_COLOUR}\">&#9679; healthy</span>\
         <span style=\"color: {RECOVER_COLOUR}\">&#9679; breaching</span>\
         <span style=\"color: {ABORTED_COLOUR}\">&#9679; failed</span></p>\n",
        escape(&title),
        escape(&title)
    );
    for (name, run) in runs {
        let _ = writeln!(
            out,
            "<section class=\"scenario\" data-scenario=\"{}\">\n<h2>{}: {}</h2>",
            escape(name),
            escape(name),
            escape(&crate::cli::simulate::describe(&run.outcome))
        );
        out.push_str(&panels(setup, run));
        out.push_str("</section>\n");
    }
    out.push_str("</body>\n</html>\n");
    out
}

/// The metrics on `rows`, in the order they first appear.
fn metric_names(rows: &[Row]) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for cell in rows.iter().flat_map(|r| &r.cells) {
        if !names.contains(&cell.metric.as_str()) {
            names.push(&cell.metric);
        }
    }
    names
}

/// One SVG: the weight panel, a panel per metric, the outcome across them all, and the time axis.
fn panels(setup: &Setup, run: &Run) -> String {
    let metrics = metric_names(&run.timeline);
    let end = seconds(run.elapsed).max(run.timeline.last().map_or(0.0, |r| seconds(r.at))).max(60.0);
    let x = Scale { from: 0.0, to: end, start: LEFT, end: WIDTH - RIGHT };
    let height = (1 + metrics.len()) as f64 * (TITLE + PANEL) + AXIS;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{WIDTH}\" height=\"{height}\" viewBox=\"0 0 {WIDTH} {height}\" role=\"img\">"
    );
    let mut top = TITLE;
    svg.push_str(&weight_panel(&run.timeline, &run.outcome, &x, top));
    for metric in &metrics {
        top += TITLE + PANEL;
        let definition = setup.templates.values().flat_map(|t| &t.metrics).find(|m| m.name == *metric);
        svg.push_str(&metric_panel(metric, definition, &run.timeline, &x, top));
    }
    let bottom = top + PANEL;
    svg.push_str(&outcome_marker(&run.outcome, &x, TITLE, bottom));
    svg.push_str(&time_axis(&x, bottom));
    svg.push_str("</svg>\n");
    svg
}

/// A linear map from data values onto pixels.
struct Scale {
    from: f64,
    to: f64,
    start: f64,
    end: f64,
}

impl Scale {
    fn at(&self, value: f64) -> f64 {
        // Halved, so that a span from -f64::MAX to f64::MAX does not overflow to infinity.
        let span = self.to / 2.0 - self.from / 2.0;
        let share = (value / 2.0 - self.from / 2.0) / span;
        let share = if span > 0.0 && !share.is_nan() { share } else { 0.5 };
        self.start + share.clamp(0.0, 1.0) * (self.end - self.start)
    }
}

fn seconds(duration: Duration) -> f64 {
    duration.num_milliseconds() as f64 / 1000.0
}

/// A panel's frame and title.
fn frame(out: &mut String, title: &str, top: f64) {
    let _ = writeln!(
        out,
        "<text x=\"{LEFT}\" y=\"{:.1}\" font-weight=\"bold\">{}</text>",
        top - 8.0,
        escape(title)
    );
    let _ = writeln!(
        out,
        "<rect x=\"{LEFT}\" y=\"{top:.1}\" width=\"{:.1}\" height=\"{PANEL}\" fill=\"none\" stroke=\"#d0d7de\"/>",
        WIDTH - RIGHT - LEFT
    );
}

/// The new revision's share of the traffic over time, a step at each change: the canary's weight,
/// then all of it once promoted (the canary's weight is 0 then, as it is the stable revision).
fn weight_panel(rows: &[Row], outcome: &Outcome, x: &Scale, top: f64) -> String {
    let y = Scale { from: 0.0, to: 100.0, start: top + PANEL, end: top };
    let promoted_at = match outcome {
        Outcome::Promoted { after } => Some(*after),
        Outcome::Aborted { .. } | Outcome::Held { .. } => None,
    };
    let mut out = String::new();
    frame(&mut out, "traffic on the new revision (%)", top);
    for label in [0.0, 50.0, 100.0] {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{label}</text>",
            LEFT - 6.0,
            y.at(label) + 4.0
        );
    }
    let weights = step_line(rows, x, &y, |row| {
        let promoted = promoted_at.is_some_and(|at| row.at >= at);
        if promoted { 100.0 } else { f64::from(row.weight.clamp(0, 100)) }
    });
    // Where header routes send their testers to the canary: shaded, whatever the weight.
    let mut since = None;
    for (i, row) in rows.iter().enumerate() {
        let on = !row.exposure.header_routes.is_empty();
        match (on, since) {
            (true, None) => since = Some(x.at(seconds(row.at))),
            (false, Some(start)) => {
                header_band(&mut out, start, x.at(seconds(row.at)), &y);
                since = None;
            }
            _ => {}
        }
        if i + 1 == rows.len()
            && let Some(start) = since
        {
            header_band(&mut out, start, x.end, &y);
        }
    }
    if rows.iter().any(|r| r.exposure.mirror.is_some()) {
        let mirror = step_line(rows, x, &y, |row| f64::from(row.exposure.mirror.unwrap_or(0).clamp(0, 100)));
        let _ = writeln!(
            out,
            "<polyline class=\"mirror\" fill=\"none\" stroke=\"{WEIGHT_COLOUR}\" stroke-width=\"1.5\" \
             stroke-dasharray=\"6 4\" points=\"{}\"><title>mirrored to the new revision (%)</title></polyline>",
            polyline(&mirror)
        );
    }
    let _ = writeln!(
        out,
        "<polyline class=\"weight\" fill=\"none\" stroke=\"{WEIGHT_COLOUR}\" stroke-width=\"2.5\" points=\"{}\"/>",
        polyline(&weights)
    );
    out
}

/// A shaded band from `start` to `end` across the weight panel, titled for people.
fn header_band(out: &mut String, start: f64, end: f64, y: &Scale) {
    let _ = writeln!(
        out,
        "<rect class=\"header-route\" x=\"{start:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" \
         fill=\"{WEIGHT_COLOUR}\" fill-opacity=\"0.12\"><title>header route in force</title></rect>",
        y.end,
        (end - start).max(0.0),
        (y.start - y.end).max(0.0)
    );
}

/// The points of a line that holds each row's `value` until the next row changes it.
fn step_line(rows: &[Row], x: &Scale, y: &Scale, value: impl Fn(&Row) -> f64) -> Vec<(f64, f64)> {
    let mut points = Vec::new();
    let mut current = 0.0;
    for row in rows {
        let next = value(row);
        if points.is_empty() || next != current {
            let at = x.at(seconds(row.at));
            points.push((at, y.at(current)));
            points.push((at, y.at(next)));
            current = next;
        }
    }
    points.push((x.end, y.at(current)));
    points
}

/// A metric's measurements against its threshold (dashed) and its recovery bound (dotted), each
/// dot coloured by the metric's hysteresis state then. Compare and sequential judgments have no
/// fixed line to draw.
fn metric_panel(name: &str, definition: Option<&Metric>, rows: &[Row], x: &Scale, top: f64) -> String {
    let threshold = definition.and_then(|m| m.threshold.as_ref());
    let bounds: Vec<(&str, f64, &str)> = threshold
        .map(|t| {
            let recover = t
                .hysteresis
                .as_ref()
                .and_then(|h| h.recover.clone())
                .unwrap_or(Bounds { min: None, max: None });
            [
                ("threshold", t.max, THRESHOLD_COLOUR),
                ("threshold", t.min, THRESHOLD_COLOUR),
                ("recover", recover.max, RECOVER_COLOUR),
                ("recover", recover.min, RECOVER_COLOUR),
            ]
            .into_iter()
            .filter_map(|(kind, value, colour)| value.filter(|v| v.is_finite()).map(|v| (kind, v, colour)))
            .collect()
        })
        .unwrap_or_default();
    let samples: Vec<(f64, Option<f64>, HysteresisState)> = rows
        .iter()
        .filter_map(|row| {
            let cell = row.cells.iter().find(|c| c.metric == name)?;
            let value = cell.value.filter(|_| cell.error.is_none()).filter(|v| !v.is_nan());
            Some((seconds(row.at), value, cell.state))
        })
        .collect();
    let finite = samples.iter().filter_map(|(_, v, _)| *v).filter(|v| v.is_finite());
    let (low, high) = finite
        .chain(bounds.iter().map(|(_, v, _)| *v))
        .fold((0.0_f64, 0.0_f64), |(low, high), v| (low.min(v), high.max(v)));
    // A tenth of headroom above the highest value, short of overflowing.
    let high = if high > low { (high + (high / 2.0 - low / 2.0) * 0.2).min(f64::MAX) } else { low + 1.0 };
    let y = Scale { from: low, to: high, start: top + PANEL, end: top };

    let mut out = String::new();
    frame(&mut out, name, top);
    for label in [low, high] {
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 6.0,
            y.at(label) + 4.0,
            crate::engine::format_value(label)
        );
    }
    for (kind, value, colour) in &bounds {
        let dash = if *kind == "threshold" { "6 4" } else { "2 3" };
        let _ = writeln!(
            out,
            "<line class=\"{kind}\" data-value=\"{value}\" x1=\"{LEFT}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-dasharray=\"{dash}\"/>",
            x.end,
            y = y.at(*value)
        );
    }
    // A line through consecutive measurements, broken where there was none.
    let mut run: Vec<(f64, f64)> = Vec::new();
    let mut lines = Vec::new();
    for (at, value, _) in &samples {
        match value {
            Some(v) => run.push((x.at(*at), y.at(*v))),
            None => lines.push(std::mem::take(&mut run)),
        }
    }
    lines.push(run);
    for line in lines.iter().filter(|l| l.len() > 1) {
        let _ = writeln!(
            out,
            "<polyline class=\"value\" fill=\"none\" stroke=\"{VALUE_COLOUR}\" stroke-width=\"1.5\" points=\"{}\"/>",
            polyline(line)
        );
    }
    for (at, value, state) in &samples {
        let Some(value) = value else { continue };
        let colour = match state {
            HysteresisState::Healthy => PROMOTED_COLOUR,
            HysteresisState::Breaching => RECOVER_COLOUR,
            HysteresisState::Failed => ABORTED_COLOUR,
        };
        let _ = writeln!(
            out,
            "<circle class=\"sample {}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"{colour}\"/>",
            format!("{state:?}").to_lowercase(),
            x.at(*at),
            y.at(*value)
        );
    }
    out
}

/// A vertical line across every panel where the canary was promoted, aborted or held.
fn outcome_marker(outcome: &Outcome, x: &Scale, top: f64, bottom: f64) -> String {
    let (kind, colour) = match outcome {
        Outcome::Promoted { .. } => ("promoted", PROMOTED_COLOUR),
        Outcome::Aborted { .. } => ("aborted", ABORTED_COLOUR),
        Outcome::Held { .. } => ("held", HELD_COLOUR),
    };
    let after = seconds(outcome.after());
    let at = x.at(after);
    let anchor = if at > WIDTH / 2.0 { "end" } else { "start" };
    let nudge = if anchor == "end" { -4.0 } else { 4.0 };
    format!(
        "<line class=\"outcome {kind}\" data-seconds=\"{after}\" x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{top:.1}\" y2=\"{bottom:.1}\" stroke=\"{colour}\" stroke-width=\"3\"/>\n\
         <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" font-weight=\"bold\" style=\"fill: {colour}\">{kind}</text>\n",
        at + nudge,
        top + 14.0
    )
}

/// Minutes along the bottom, at a round interval that gives at most a dozen ticks.
fn time_axis(x: &Scale, bottom: f64) -> String {
    let minutes = x.to / 60.0;
    let step = [1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0]
        .into_iter()
        .find(|step| minutes / step <= 12.0)
        .unwrap_or((minutes / 12.0).ceil());
    let mut out = String::new();
    let mut minute = 0.0;
    while minute * 60.0 <= x.to {
        let at = x.at(minute * 60.0);
        let _ = writeln!(
            out,
            "<line x1=\"{at:.1}\" x2=\"{at:.1}\" y1=\"{bottom:.1}\" y2=\"{:.1}\" stroke=\"#57606a\"/>\n<text x=\"{at:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{minute}m</text>",
            bottom + 5.0,
            bottom + 18.0
        );
        minute += step;
    }
    out
}

fn polyline(points: &[(f64, f64)]) -> String {
    points.iter().map(|(x, y)| format!("{x:.1},{y:.1}")).collect::<Vec<_>>().join(" ")
}

/// `text` safe inside HTML text and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::Cell;

    fn row(at: i64, weight: i32, value: Option<f64>) -> Row {
        Row {
            at: Duration::seconds(at),
            step: Some("1/2".into()),
            weight,
            exposure: Default::default(),
            cells: vec![Cell {
                metric: "error-rate".into(),
                value,
                error: None,
                state: HysteresisState::Healthy,
            }],
            decisions: Vec::new(),
        }
    }

    /// Every number in the page's SVG attributes.
    fn numbers(page: &str) -> Vec<String> {
        let attribute = regex::Regex::new(r#" (?:x1|x2|y1|y2|cx|cy|x|y|points)="([^"]*)""#).unwrap();
        attribute
            .captures_iter(page)
            .flat_map(|c| c[1].split([' ', ',']).map(str::to_string).collect::<Vec<_>>())
            .collect()
    }

    #[test]
    fn values_that_are_not_finite_or_absurd_still_draw_finite_coordinates() {
        let timeline = vec![
            row(0, 5, Some(f64::INFINITY)),
            row(60, 5, Some(f64::NAN)),
            row(120, -40, Some(f64::NEG_INFINITY)),
            row(180, 900, Some(1e300)),
            row(200, 900, Some(f64::MAX)),
            row(220, 900, Some(-f64::MAX)),
            row(240, 25, Some(-1e300)),
            row(300, 25, None),
        ];
        let run = Run {
            outcome: Outcome::Aborted { after: Duration::seconds(300), reason: "x".into() },
            timeline,
            decisions: 6,
            violations: Vec::new(),
            pod_seconds: f64::NAN,
            elapsed: Duration::seconds(300),
        };
        let page = page(&Setup::example(), &[("absurd".into(), run)]);
        let numbers = numbers(&page);
        assert!(numbers.len() > 20, "{numbers:?}");
        for number in &numbers {
            let parsed: f64 = number.parse().unwrap_or_else(|_| panic!("{number:?} is not a number"));
            assert!(parsed.is_finite() && (0.0..=WIDTH).contains(&parsed), "{number} is off the drawing");
        }
    }

    #[test]
    fn an_empty_timeline_is_a_page_with_no_samples() {
        let run = Run {
            outcome: Outcome::Held { after: Duration::zero(), reason: "nothing".into() },
            timeline: Vec::new(),
            decisions: 0,
            violations: Vec::new(),
            pod_seconds: 0.0,
            elapsed: Duration::zero(),
        };
        let page = page(&Setup::example(), &[("empty".into(), run)]);
        assert!(page.contains("class=\"outcome held\"") && !page.contains("class=\"sample"), "{page}");
        assert!(numbers(&page).iter().all(|n| n.parse::<f64>().is_ok_and(f64::is_finite)));
    }
}
