//! `kubectl bellwether convert -f FILE|DIR|-`: writes Bellwether manifests from Argo Rollouts' and
//! Flagger's, for a migration.
//!
//! Every document of every file given is read first, as every command reads its `-f`
//! ([`crate::cli::manifests`]), because objects refer to one another: an Argo
//! Rollout's analysis steps to its templates, a Flagger Canary to its MetricTemplates and its
//! Deployment. Then each object is converted on its own:
//! - Argo Rollouts (`argoproj.io/v1alpha1`): `Rollout` with the canary strategy and the Gateway API
//!   plugin, `AnalysisTemplate` and `ClusterAnalysisTemplate` with the Prometheus provider;
//! - Flagger (`flagger.app/v1beta1`): `Canary` with the Gateway API provider, with the
//!   `MetricTemplate`s its metrics reference;
//! - objects of other API groups are not converted, and are counted as skipped.
//!
//! A field is either translated, or dropped with a note when it only ever was the source tool's own
//! bookkeeping, or refused: the object is then named with the field's `file:line` and the reason,
//! and nothing is written for it. What converts is checked with `lint`'s own checks before it is
//! written, so the output lints clean; an object whose output would not is refused with lint's
//! words. Each object's output starts with comments that say what it came from and how the source's
//! failure semantics carried over into Bellwether's hysteresis.

mod argo;
mod expressions;
mod flagger;
mod output;
mod source;

use crate::cli::lint::document::Document;
use crate::cli::lint::{self, Finding, Severity, same_namespace};
use crate::cli::manifests::{self, LoadError, filename_help};
use output::{Map, Object};
use source::Source;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};

/// The `apiVersion` of what convert writes.
const API_VERSION: &str = "bellwether.dev/v1alpha1";

/// Arguments of `convert`.
#[derive(clap::Args, Debug)]
pub struct ConvertArgs {
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-", required = true,
        help = concat!(filename_help!(), " Templates, MetricTemplates and Deployments are looked up \
        among everything named."))]
    pub paths: Vec<PathBuf>,
    /// Write what converts and exit 0 even when some objects are refused (they are still named on
    /// standard error).
    #[arg(long)]
    pub allow_partial: bool,
    /// The Prometheus address for metrics whose source names none: Flagger's built-in metrics
    /// without spec.metricsServer, and templates that relied on their controller's default.
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
}

/// What convert wrote and what it could not.
#[derive(Debug)]
pub struct Conversion {
    /// The Bellwether manifests, as multi-document YAML.
    pub output: String,
    /// Every refusal (an error) and every object left without output for another reason (a warning).
    pub findings: Vec<Finding>,
    /// Source objects converted, refused, and of other kinds.
    pub converted: usize,
    pub refused: usize,
    pub skipped: usize,
}

impl Conversion {
    /// Nothing was refused.
    pub fn is_complete(&self) -> bool {
        self.refused == 0
    }

    /// One line: how many objects converted, were refused and were skipped.
    pub fn summary(&self) -> String {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        format!(
            "{} object{} converted, {} refused, {} of other kinds skipped",
            self.converted,
            plural(self.converted),
            self.refused,
            self.skipped
        )
    }
}

/// What a converter can look up beside the object it converts.
pub(crate) struct Context<'a> {
    documents: &'a [Document],
    prometheus: Option<&'a str>,
    /// The documents looked up, so that a MetricTemplate no Canary used can be told of.
    used: RefCell<BTreeSet<usize>>,
}

impl<'a> Context<'a> {
    /// The object of `group`, `kind` and `name` among the files, in `namespace` (or any, when it
    /// or the object has none).
    pub(crate) fn find(
        &self,
        group: &str,
        kind: &str,
        name: &str,
        namespace: Option<&str>,
    ) -> Option<&'a Document> {
        let (index, found) = self.documents.iter().enumerate().find(|(_, d)| {
            d.group() == group
                && d.kind() == kind
                && d.name() == name
                && same_namespace(namespace, d.namespace())
        })?;
        self.used.borrow_mut().insert(index);
        Some(found)
    }
}

/// A Deployment a Rollout takes over, when it is among the files.
pub(crate) struct Deployment<'a>(&'a Document);

impl Deployment<'_> {
    /// Its `spec.selector`, which the Rollout's must be.
    pub(crate) fn selector(&self) -> Option<serde_yaml::Value> {
        let selector = self.0.value.pointer("/spec/selector")?;
        Some(serde_yaml::to_value(selector).expect("JSON converts to YAML"))
    }

    pub(crate) fn replicas(&self) -> Option<i64> {
        self.0.value.pointer("/spec/replicas").and_then(serde_json::Value::as_i64)
    }

    /// Where it is, for comments: `file:line`.
    pub(crate) fn location(&self) -> String {
        format!("{}:{}", self.0.file.display(), self.0.line_of(""))
    }
}

impl<'a> Context<'a> {
    /// The Deployment `name` among the files, in `namespace`.
    pub(crate) fn deployment(&self, name: &str, namespace: Option<&str>) -> Option<Deployment<'a>> {
        self.find("apps", "Deployment", name, namespace).map(Deployment)
    }
}

/// What a document is to convert.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    ArgoRollout,
    ArgoTemplate,
    FlaggerCanary,
    FlaggerMetricTemplate,
    Other,
}

/// Converts every manifest in `args.paths`, reading `-` from `stdin`. An object defined twice
/// differently is refused, both its definitions left out of what the others look up.
pub fn convert(args: &ConvertArgs, stdin: &mut dyn Read) -> Result<Conversion, LoadError> {
    let manifests = manifests::load(&args.paths, stdin)?;
    let conflicting: BTreeSet<usize> =
        (0..manifests.documents.len()).filter(|i| manifests.is_conflicting(*i)).collect();
    let findings = manifests.unreadable;
    let documents: Vec<Document> = manifests
        .documents
        .into_iter()
        .enumerate()
        .filter_map(|(i, doc)| (!conflicting.contains(&i)).then_some(doc))
        .collect();
    let mut conversion =
        Conversion { output: String::new(), refused: findings.len(), findings, converted: 0, skipped: 0 };
    for conflict in manifests.conflicts {
        conversion.refuse(vec![conflict.finding]);
    }
    let ctx =
        Context { documents: &documents, prometheus: args.prometheus.as_deref(), used: RefCell::default() };
    let mut groups: Vec<(&Document, Vec<Object>)> = Vec::new();
    for doc in &documents {
        let kind = match kind(doc) {
            Ok(kind) => kind,
            Err(message) => {
                let finding = doc.finding(Severity::Error, "", message);
                let object = (!doc.kind().is_empty()).then_some(finding.object.clone()).flatten();
                conversion.refuse(vec![Finding { object, ..finding }]);
                continue;
            }
        };
        let converter: fn(&mut Source, &Context) -> Vec<Object> = match kind {
            Kind::ArgoRollout => argo::rollout,
            Kind::ArgoTemplate => argo::template,
            Kind::FlaggerCanary => flagger::canary,
            // Converted as part of each Canary that uses it.
            Kind::FlaggerMetricTemplate => continue,
            Kind::Other => {
                conversion.skipped += 1;
                continue;
            }
        };
        let yaml_problems = doc.check().0;
        if !yaml_problems.is_empty() {
            conversion.refuse(yaml_problems);
            continue;
        }
        let mut src = Source::new(doc);
        src.required_string("metadata.name");
        let mut objects = converter(&mut src, &ctx);
        let tool = if doc.group() == "flagger.app" { "Flagger" } else { "Argo Rollouts" };
        let header = format!("Converted from {tool} {}.", src.describe());
        match src.finish() {
            Ok(notes) => {
                let first = objects.first_mut().expect("a converter writes an object unless it refuses");
                first.comments = std::iter::once(header).chain(notes).collect();
                groups.push((doc, objects));
            }
            Err(refusals) => conversion.refuse(refusals),
        }
    }
    for (index, doc) in documents.iter().enumerate() {
        if kind(doc) == Ok(Kind::FlaggerMetricTemplate) && !ctx.used.borrow().contains(&index) {
            conversion.findings.push(doc.finding(
                Severity::Warning,
                "",
                "no Canary among the files uses it: a MetricTemplate converts as part of each Canary that does",
            ));
        }
    }
    let checked = self_check(groups, &mut conversion);
    conversion.converted = checked.len();
    let objects: Vec<Object> = checked.into_iter().flatten().collect();
    conversion.output = output::render(&objects);
    Ok(conversion)
}

impl Conversion {
    /// Counts one object refused, and says why, in the order of its lines.
    fn refuse(&mut self, mut refusals: Vec<Finding>) {
        self.refused += 1;
        refusals.sort_by(|a, b| (&a.file, a.line).cmp(&(&b.file, b.line)));
        for refusal in refusals {
            if !self.findings.contains(&refusal) {
                self.findings.push(refusal);
            }
        }
    }
}

/// What convert makes of a document, or why it refuses it outright.
fn kind(doc: &Document) -> Result<Kind, String> {
    let api_version = doc.str("/apiVersion").unwrap_or_default();
    if api_version.is_empty() || doc.kind().is_empty() {
        return Err("is not a Kubernetes object: it has no apiVersion or no kind".into());
    }
    let (tool, version, kinds): (&str, &str, &[(&str, Kind)]) = match doc.group() {
        "argoproj.io" => (
            "Argo Rollouts",
            "argoproj.io/v1alpha1",
            &[
                ("Rollout", Kind::ArgoRollout),
                ("AnalysisTemplate", Kind::ArgoTemplate),
                ("ClusterAnalysisTemplate", Kind::ArgoTemplate),
            ],
        ),
        "flagger.app" => (
            "Flagger",
            "flagger.app/v1beta1",
            &[("Canary", Kind::FlaggerCanary), ("MetricTemplate", Kind::FlaggerMetricTemplate)],
        ),
        _ => return Ok(Kind::Other),
    };
    let Some((_, kind)) = kinds.iter().find(|(name, _)| *name == doc.kind()) else {
        let known: Vec<&str> = kinds.iter().map(|(name, _)| *name).collect();
        return Err(format!("{} of {tool} is not converted: convert takes {}", doc.kind(), known.join(", ")));
    };
    if api_version != version {
        return Err(format!("{api_version} is not converted: convert reads {version}"));
    }
    Ok(*kind)
}

/// Each group of objects that passes `lint`'s checks, checked together as they will be applied;
/// a group that does not is refused with what lint found, at its source's name.
fn self_check(groups: Vec<(&Document, Vec<Object>)>, conversion: &mut Conversion) -> Vec<Vec<Object>> {
    let mut text = String::new();
    let mut ends = Vec::new();
    for (_, objects) in &groups {
        if !text.is_empty() {
            text.push_str("---\n");
        }
        text.push_str(&output::render(objects));
        ends.push(text.lines().count());
    }
    let findings = lint::check_text(Path::new("converted"), &text);
    let mut passed = Vec::new();
    for (i, (doc, objects)) in groups.into_iter().enumerate() {
        let start = if i == 0 { 0 } else { ends[i - 1] };
        let errors: Vec<&Finding> = findings
            .iter()
            .filter(|f| f.severity == Severity::Error && (start + 1..=ends[i]).contains(&f.line))
            .collect();
        if errors.is_empty() {
            passed.push(objects);
            continue;
        }
        let refusals = errors
            .into_iter()
            .map(|error| {
                let object = error.object.as_deref().unwrap_or("object");
                let mut said = format!("the Bellwether {object} it converts to would be refused: ");
                if let Some(field) = &error.field {
                    said.push_str(&format!("{field}: "));
                }
                said.push_str(&error.message);
                doc.finding(Severity::Error, "", said)
            })
            .collect();
        conversion.refuse(refusals);
    }
    passed
}

/// The Bellwether `kind` converted from `src`, with `src`'s metadata and `spec`.
fn converted(src: &Source, kind: &str, spec: Map) -> Object {
    Object {
        comments: Vec::new(),
        value: Map::new()
            .set("apiVersion", API_VERSION)
            .set("kind", kind)
            .set("metadata", metadata(src))
            .set("spec", spec)
            .into(),
    }
}

/// The metadata a converted object keeps: its name, namespace, labels and annotations (without
/// kubectl's record of what was last applied, which describes the source object).
fn metadata(src: &Source) -> Map {
    let mut metadata =
        Map::new().set("name", src.doc.name()).set_some("namespace", src.doc.namespace().map(str::to_string));
    if src.has("metadata.labels") {
        metadata.insert("labels", src.verbatim("metadata.labels"));
    }
    if let serde_yaml::Value::Mapping(mut annotations) = src.verbatim("metadata.annotations") {
        annotations.remove("kubectl.kubernetes.io/last-applied-configuration");
        if !annotations.is_empty() {
            metadata.insert("annotations", annotations);
        }
    }
    metadata
}
