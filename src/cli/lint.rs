//! `kubectl bellwether lint -f FILE|DIR|-`: checks manifests offline, before they reach a cluster, so
//! that a GitOps repository can reject a broken Rollout in CI rather than midway through a release.
//!
//! Every document of every file given is read first and then checked together, because a Rollout is
//! only as good as the templates, Services and routes it names:
//! - Rollouts, AnalysisTemplates and ClusterAnalysisTemplates against their CRD's schema and CEL rules,
//!   as the API server would on create ([`validate_manifest`]); HTTPRoutes and GRPCRoutes
//!   (`gateway.networking.k8s.io/v1`) against the official Gateway API CRDs, embedded in the binary;
//! - each Rollout with the engine's own validation ([`crate::engine::Plan::from_spec`]): template references,
//!   required args, and queries that render. A template that is not in the files is a warning, since
//!   it may exist in the cluster; it stands in as a template that takes every arg it is given and has
//!   no metrics, so that everything else is still checked;
//! - each template on its own with the engine's [`validate_template`], the check the controller
//!   runs before it measures anything, so that a directory of templates without a Rollout is checked
//!   too (`bellwether analyze` checks its template with the same [`template_of`]);
//! - what reading YAML into JSON would hide: a key given twice in one mapping (the last would win
//!   silently) and `.nan` or `.inf` (JSON has neither, so kubectl refuses them);
//! - objects defined twice differently: the same group, kind, namespace and name, in one file or
//!   across files, as every command reads its `-f` ([`crate::cli::manifests`]);
//! - the Services and routes a Rollout names: a missing one is a warning, and a route in the files
//!   must have a rule that references both the stable and the canary Service, or Bellwether would
//!   have no weights to shift; and it must take every step's header routes within Gateway API's
//!   limits ([`check_capacity`]).
//!
//! Other kinds (Deployments, ConfigMaps, ...) are skipped. An object without a namespace matches any
//! namespace, since it is usually applied with `kubectl apply -n`.
//!
//! Findings are located as `file:line: severity: Kind/name: field: message`. The line of a document is
//! found by splitting the file at its `---` lines; the line of a field by searching the document for
//! each key of the field's path in turn, and for the N-th item of a list. This is a textual search, not
//! a YAML parse with positions: it can land on an earlier key of the same name at another depth, and
//! falls back to the nearest key it found (at worst the document's first line).
//!
//! Warnings alone leave the report clean. The plugin prints [`Report::text`] (or the report as JSON
//! with `-o json`) and exits 1 when the report is not clean.

use crate::api::{AnalysisTemplateSpec, ArgSpec, ClusterAnalysisTemplateSpec, Rollout, TemplateRef};
use crate::cli::manifests::{self, LoadError, Manifests, filename_help};
use crate::controller::routes::{Services, check_capacity, is_managed};
use crate::engine::{Origin, Plan, Templates, check_workload_template, validate_template};
use bellwether_openapi::{FieldError, SchemaValidator, validate_manifest};
use document::Document;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use serde::Serialize;
use serde::ser::SerializeStruct;
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use yaml::ProblemKind;

pub(crate) mod document;
mod yaml;

/// Arguments of `lint`.
#[derive(clap::Args, Debug)]
pub struct LintArgs {
    #[arg(short = 'f', long = "filename", value_name = "FILE|DIR|-", required = true,
        help = concat!(filename_help!(), " Everything named is checked together."))]
    pub paths: Vec<PathBuf>,
    /// How to print the findings.
    #[arg(short = 'o', long, value_enum, default_value = "text")]
    pub output: Output,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        })
    }
}

/// One problem, located in a file.
#[derive(Serialize, Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based.
    pub line: usize,
    /// `Kind/name`, or `None` when the document could not be read as an object.
    pub object: Option<String>,
    /// The field's path, such as `spec.strategy.canary.steps[2].setWeight`; `None` for the whole
    /// object or document.
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}: ", self.file.display(), self.line, self.severity)?;
        if let Some(object) = &self.object {
            write!(f, "{object}: ")?;
        }
        if let Some(field) = &self.field {
            write!(f, "{field}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Everything `lint` found, in file order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub files: usize,
    pub findings: Vec<Finding>,
}

impl Report {
    fn count(&self, severity: Severity) -> usize {
        self.findings.iter().filter(|f| f.severity == severity).count()
    }

    /// No errors; warnings are allowed.
    pub fn is_clean(&self) -> bool {
        self.count(Severity::Error) == 0
    }

    /// One line per finding and a summary line.
    pub fn text(&self) -> String {
        let mut text: String = self.findings.iter().map(|f| format!("{f}\n")).collect();
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        text.push_str(&format!(
            "{}, {} in {}\n",
            plural(self.count(Severity::Error), "error"),
            plural(self.count(Severity::Warning), "warning"),
            plural(self.files, "file"),
        ));
        text
    }
}

/// `{"clean", "errors", "warnings", "files", "findings": [{severity, file, line, object, field, message}]}`.
impl Serialize for Report {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("Report", 5)?;
        s.serialize_field("clean", &self.is_clean())?;
        s.serialize_field("errors", &self.count(Severity::Error))?;
        s.serialize_field("warnings", &self.count(Severity::Warning))?;
        s.serialize_field("files", &self.files)?;
        s.serialize_field("findings", &self.findings)?;
        s.end()
    }
}

/// The name and spec of the (Cluster)AnalysisTemplate `doc`, or every error in it as `lint` finds
/// them, which is what the API server and the controller would refuse.
pub(crate) fn template_of(doc: &Document) -> Result<(String, AnalysisTemplateSpec), Vec<Finding>> {
    let mut errors = doc.check().0;
    match template_spec(doc) {
        Some(spec) if errors.is_empty() => Ok((doc.name().to_string(), spec)),
        Some(_) => Err(errors),
        // Only a Bellwether apiVersion has a schema to check, and a spec to read.
        None => {
            if errors.is_empty() {
                let message = match doc.str("/apiVersion") {
                    Some(found) => format!("{found:?} must be bellwether.dev/v1alpha1"),
                    None => "must be bellwether.dev/v1alpha1".to_string(),
                };
                errors.push(doc.finding(Severity::Error, "apiVersion", message));
            }
            Err(errors)
        }
    }
}

/// Checks every manifest in `args.paths` together, reading `-` from `stdin`.
pub fn lint(args: &LintArgs, stdin: &mut dyn Read) -> Result<Report, LoadError> {
    let manifests = manifests::load(&args.paths, stdin)?;
    let files = manifests.files;
    Ok(Report { files, findings: Linter::new(manifests).check() })
}

/// Everything `lint` finds in `text`, checked on its own as the file `file`.
pub(crate) fn check_text(file: &Path, text: &str) -> Vec<Finding> {
    Linter::new(manifests::from_texts(&[(file.to_path_buf(), text.to_string())])).check()
}

impl Document {
    /// What is wrong with this document on its own: its YAML, its schema and CEL rules, and for a
    /// template the engine's own validation, each said once. Returns the findings and the fields
    /// they fault, which later checks do not report again in other words.
    pub(crate) fn check(&self) -> (Vec<Finding>, Vec<String>) {
        let mut findings = Vec::new();
        let mut faulted = Vec::new();
        for problem in &self.problems {
            match &problem.kind {
                ProblemKind::DuplicateKey { key, first_line } => findings.push(self.finding_at(
                    Severity::Error,
                    problem.line,
                    None,
                    format!("duplicate key {key:?} (first at {}:{first_line})", self.file.display()),
                )),
                ProblemKind::NotFinite(number) => {
                    // The JSON value holds `null` there, which the schema would misreport.
                    faulted.push(problem.path.clone());
                    findings.push(self.finding_at(
                        Severity::Error,
                        problem.line,
                        Some(problem.path.clone()),
                        format!("{number} is not a finite number: JSON has none, so kubectl cannot send it"),
                    ));
                }
            }
        }
        if self.unlisted_problems > 0 {
            let message = format!(
                "{} more duplicate keys or non-finite numbers than the {} listed",
                self.unlisted_problems,
                yaml::MAX_LISTED
            );
            findings.push(self.finding(Severity::Error, "", message));
        }
        for error in schema_check(self).err().unwrap_or_default() {
            if !faulted.iter().any(|f| overlaps(f, &error.path)) {
                findings.push(self.finding(Severity::Error, &error.path, &error.message));
                faulted.push(error.path);
            }
        }
        if let Some(Err(errors)) = template_spec(self).map(|spec| validate_template(&spec)) {
            for error in errors {
                if !faulted.iter().any(|f| overlaps(f, &error.field)) {
                    findings.push(self.finding(Severity::Error, &error.field, &error.message));
                }
            }
        }
        (findings, faulted)
    }
}

/// Whether two objects can be in the same namespace; a missing namespace is the one applied with.
pub(crate) fn same_namespace(a: Option<&str>, b: Option<&str>) -> bool {
    a.is_none() || b.is_none() || a == b
}

struct Linter {
    documents: Vec<Document>,
    conflicts: Vec<Finding>,
    findings: Vec<Finding>,
}

impl Linter {
    fn new(manifests: Manifests) -> Self {
        let conflicts = manifests.conflicts.into_iter().map(|c| c.finding).collect();
        let mut linter = Self { documents: manifests.documents, conflicts, findings: Vec::new() };
        for finding in manifests.unreadable {
            linter.push(finding);
        }
        linter
    }

    fn push(&mut self, finding: Finding) {
        if !self.findings.contains(&finding) {
            self.findings.push(finding);
        }
    }

    fn check(mut self) -> Vec<Finding> {
        let documents = std::mem::take(&mut self.documents);
        let mut faulted: Vec<Vec<String>> = Vec::with_capacity(documents.len());
        for doc in &documents {
            let (findings, fields) = doc.check();
            for finding in findings {
                self.push(finding);
            }
            faulted.push(fields);
        }
        for conflict in std::mem::take(&mut self.conflicts) {
            self.push(conflict);
        }
        for (index, doc) in documents.iter().enumerate() {
            if doc.is("bellwether.dev/v1alpha1", "Rollout") {
                self.check_rollout(&documents, index, &faulted);
            }
        }
        self.findings
    }

    fn check_rollout(&mut self, documents: &[Document], index: usize, faulted: &[Vec<String>]) {
        let doc = &documents[index];
        let Ok(rollout) = serde_json::from_value::<Rollout>(doc.value.clone()) else {
            // The schema check has already said what is wrong with its shape.
            return;
        };
        let namespace = doc.namespace();
        let canary = &rollout.spec.strategy.canary;
        const CANARY: &str = "spec.strategy.canary";

        // The templates this Rollout can see, and the document each came from.
        let mut found: BTreeMap<TemplateRef, (AnalysisTemplateSpec, usize)> = BTreeMap::new();
        for (i, other) in documents.iter().enumerate() {
            let cluster_scope = other.kind() == "ClusterAnalysisTemplate";
            if !cluster_scope && !same_namespace(namespace, other.namespace()) {
                continue;
            }
            if let Some(spec) = template_spec(other) {
                let reference = TemplateRef { template_name: other.name().to_string(), cluster_scope };
                found.entry(reference).or_insert((spec, i));
            }
        }
        let mut templates: Templates = found.iter().map(|(r, (spec, _))| (r.clone(), spec.clone())).collect();
        let analyses = canary
            .steps
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                s.analysis.as_ref().map(|a| (format!("{CANARY}.steps[{i}].analysis"), &a.templates, &a.args))
            })
            .chain(canary.analysis.as_ref().map(|a| (format!("{CANARY}.analysis"), &a.templates, &a.args)));
        for (field, refs, args) in analyses {
            for (j, reference) in refs.iter().enumerate() {
                if found.contains_key(reference) {
                    continue;
                }
                let kind = reference.kind();
                self.push(doc.finding(
                    Severity::Warning,
                    &format!("{field}.templates[{j}].templateName"),
                    format!(
                        "{kind} {:?} is not in the files given; checked in the cluster at run time",
                        reference.template_name
                    ),
                ));
                let stand_in = templates
                    .entry(reference.clone())
                    .or_insert_with(|| AnalysisTemplateSpec { args: Vec::new(), metrics: Vec::new() });
                for arg in args {
                    if !stand_in.args.iter().any(|a| a.name == arg.name) {
                        stand_in.args.push(ArgSpec { name: arg.name.clone(), value: Some(String::new()) });
                    }
                }
            }
        }

        let plan = Plan::from_spec(&rollout.spec, &templates);
        if let Err(errors) = &plan {
            for error in errors {
                // Stand-ins have no metrics, so every template an error is in was among the files.
                let target = match &error.origin {
                    Origin::Template(reference) => found.get(reference).map_or(index, |(_, i)| *i),
                    Origin::Object => index,
                };
                // What was already reported at this field, in its own words, is not repeated.
                if !faulted[target].iter().any(|f| overlaps(f, &error.field)) {
                    self.push(documents[target].finding(Severity::Error, &error.field, &error.message));
                }
            }
        }

        if let (None, Some(workload)) = (&rollout.spec.template, &rollout.spec.workload_ref) {
            let deployment = documents.iter().find(|d| {
                d.is("apps/v1", "Deployment")
                    && d.name() == workload.name
                    && same_namespace(namespace, d.namespace())
            });
            match deployment.and_then(|d| serde_json::from_value::<Deployment>(d.value.clone()).ok()) {
                Some(deployment) => {
                    let template = deployment.spec.map(|s| s.template);
                    for error in check_workload_template(&rollout.spec, template.as_ref()) {
                        let message = format!("Deployment {:?}: {}", workload.name, error.message);
                        self.push(doc.finding(Severity::Error, "spec.workloadRef.name", message));
                    }
                }
                None => self.push(doc.finding(
                    Severity::Warning,
                    "spec.workloadRef.name",
                    format!(
                        "Deployment {:?} is not in the files given; checked in the cluster at run time",
                        workload.name
                    ),
                )),
            }
        }

        for (field, service) in
            [("stableService", &canary.stable_service), ("canaryService", &canary.canary_service)]
        {
            let present = documents.iter().any(|d| {
                d.is("v1", "Service") && d.name() == service && same_namespace(namespace, d.namespace())
            });
            if !present && !service.is_empty() {
                self.push(doc.finding(
                    Severity::Warning,
                    &format!("{CANARY}.{field}"),
                    format!(
                        "Service {service:?} is not in the files given; checked in the cluster at run time"
                    ),
                ));
            }
        }

        let rollout_name = rollout.metadata.name.clone().unwrap_or_default();
        // Applied with `kubectl apply -n`, a Rollout without one is in the namespace given then.
        let services = Services::of(&rollout, &rollout_name, namespace.unwrap_or("default"));
        let routing = &canary.traffic_routing.gateway_api;
        let routes = routing
            .http_routes
            .iter()
            .enumerate()
            .map(|(i, r)| ("HTTPRoute", format!("httpRoutes[{i}]"), r))
            .chain(
                routing
                    .grpc_routes
                    .iter()
                    .enumerate()
                    .map(|(i, r)| ("GRPCRoute", format!("grpcRoutes[{i}]"), r)),
            );
        for (kind, field, reference) in routes {
            let route_namespace = reference.namespace.as_deref().or(namespace);
            let route = documents.iter().find(|d| {
                d.is("gateway.networking.k8s.io/v1", kind)
                    && d.name() == reference.name
                    && same_namespace(route_namespace, d.namespace())
            });
            match route {
                None => self.push(doc.finding(
                    Severity::Warning,
                    &format!("{CANARY}.trafficRouting.gatewayAPI.{field}"),
                    format!(
                        "{kind} {:?} is not in the files given; checked in the cluster at run time",
                        reference.name
                    ),
                )),
                Some(route) if is_managed(&route.value, services) => {
                    // Each step's header routes must fit the route: Gateway API's limits on rules,
                    // matches and header matches, and no header the managed rule already matches.
                    let exposures = plan.iter().flat_map(|p| &p.exposures).map(|e| &e.exposure);
                    let mut seen = Vec::new();
                    for (step, exposure) in exposures.enumerate() {
                        if seen.contains(&exposure) {
                            continue;
                        }
                        seen.push(exposure);
                        if let Err(error) = check_capacity(&route.value, services, exposure) {
                            let message = format!("at {CANARY}.steps[{step}]: {error}");
                            self.push(route.finding(Severity::Error, "spec.rules", message));
                        }
                    }
                }
                Some(route) => self.push(route.finding(
                    Severity::Error,
                    "spec.rules",
                    format!(
                        "no rule references both Services of Rollout {:?} ({} and {}), so Bellwether has no \
                         weights to shift",
                        rollout.metadata.name.as_deref().unwrap_or_default(),
                        services.stable,
                        services.canary
                    ),
                )),
            }
        }
    }
}

/// The schema and CEL check of the kinds Bellwether knows a schema for.
fn schema_check(doc: &Document) -> Result<(), Vec<FieldError>> {
    if doc.str("/apiVersion").is_some_and(|v| v.starts_with("bellwether.dev/")) {
        return validate_manifest(&doc.value);
    }
    let validator = if doc.is("gateway.networking.k8s.io/v1", "HTTPRoute") {
        gateway_validator(&HTTP_ROUTES)
    } else if doc.is("gateway.networking.k8s.io/v1", "GRPCRoute") {
        gateway_validator(&GRPC_ROUTES)
    } else {
        return Ok(());
    };
    validator.validate(&doc.value)
}

/// The spec of an (Cluster)AnalysisTemplate document whose shape is readable.
fn template_spec(doc: &Document) -> Option<AnalysisTemplateSpec> {
    let spec = doc.value.get("spec")?.clone();
    if doc.is("bellwether.dev/v1alpha1", "AnalysisTemplate") {
        serde_json::from_value(spec).ok()
    } else if doc.is("bellwether.dev/v1alpha1", "ClusterAnalysisTemplate") {
        serde_json::from_value::<ClusterAnalysisTemplateSpec>(spec).ok().map(Into::into)
    } else {
        None
    }
}

/// A Gateway API route CRD embedded in the binary, and its validator once built.
struct GatewayCrd {
    yaml: &'static str,
    validator: OnceLock<SchemaValidator>,
}

static HTTP_ROUTES: GatewayCrd =
    GatewayCrd { yaml: include_str!("lint/gateway/httproutes.yaml"), validator: OnceLock::new() };
static GRPC_ROUTES: GatewayCrd =
    GatewayCrd { yaml: include_str!("lint/gateway/grpcroutes.yaml"), validator: OnceLock::new() };

fn gateway_validator(crd: &'static GatewayCrd) -> &'static SchemaValidator {
    crd.validator.get_or_init(|| {
        let definition: CustomResourceDefinition =
            serde_yaml::from_str(crd.yaml).expect("the embedded Gateway API CRD parses");
        SchemaValidator::for_crd(&definition)
            .expect("the embedded Gateway API CRD has a served storage schema")
    })
}

/// Whether one field path is the other or contains it.
fn overlaps(a: &str, b: &str) -> bool {
    let within = |inner: &str, outer: &str| {
        inner.strip_prefix(outer).is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
    };
    within(a, b) || within(b, a)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_paths() {
        assert!(overlaps("spec.steps[0]", "spec.steps[0].setWeight"));
        assert!(overlaps("spec.steps[0].setWeight", "spec.steps[0].setWeight"));
        assert!(!overlaps("spec.steps[0]", "spec.steps[01]"));
        assert!(!overlaps("spec.steps[1]", "spec.steps[0].setWeight"));
    }
}
