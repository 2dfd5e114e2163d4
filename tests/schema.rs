//! The manifests in examples/ are valid against the schemas the API server would apply, and each
//! invalid manifest in tests/fixtures/invalid/ is rejected with a message that names the field.
//!
//! A fixture's first line is `# expect: <text>`, where the text appears in one of the errors
//! (`path: message`). A fixture with one YAML document is validated as a create; one with two is an
//! update, the first document being the stored object and the second the new one. Adding a case is
//! adding a file.

use bellwether_testkit::gateway_crds;

use bellwether::api::{AnalysisTemplate, ClusterAnalysisTemplate, Rollout, TemplateRef};
use bellwether_openapi::{FieldError, validate_manifest, validate_manifest_update};
use gateway_api::grpcroutes::GrpcRoute;
use gateway_api::httproutes::HttpRoute;
use gateway_crds::{grpc_routes, http_routes};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn is_bellwether(doc: &Value) -> bool {
    doc["apiVersion"].as_str().is_some_and(|v| v.starts_with("bellwether.dev/"))
}

/// Validates one object with the schema of its kind; `None` for kinds no schema here covers, such as
/// core Services.
fn validate(doc: &Value, old: Option<&Value>) -> Option<Result<(), Vec<FieldError>>> {
    if is_bellwether(doc) {
        return Some(match old {
            Some(old) => validate_manifest_update(doc, old),
            None => validate_manifest(doc),
        });
    }
    let validator = match (doc["apiVersion"].as_str()?, doc["kind"].as_str()?) {
        ("gateway.networking.k8s.io/v1", "HTTPRoute") => http_routes(),
        ("gateway.networking.k8s.io/v1", "GRPCRoute") => grpc_routes(),
        _ => return None,
    };
    Some(match old {
        Some(old) => validator.validate_update(doc, old),
        None => validator.validate(doc),
    })
}

/// The YAML documents of a file, without empty ones.
fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display())))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

fn crate_dir(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

fn render(errors: &[FieldError]) -> String {
    errors.iter().map(|e| format!("\n  {e}")).collect()
}

#[test]
fn every_example_passes_its_schema() {
    let mut validated: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = String::new();
    for file in yaml_files(&crate_dir("examples")) {
        for doc in documents(&file) {
            let kind = doc["kind"].as_str().unwrap_or("?").to_string();
            let name = doc["metadata"]["name"].as_str().unwrap_or("?").to_string();
            match validate(&doc, None) {
                None => continue,
                Some(Ok(())) => {}
                Some(Err(errors)) => {
                    failures += &format!("\n{} {kind}/{name}:{}", file.display(), render(&errors));
                }
            }
            *validated.entry(kind.clone()).or_default() += 1;
            // The schema and the Rust types must agree on what is valid.
            let parsed = match doc["kind"].as_str() {
                Some("Rollout") => serde_json::from_value::<Rollout>(doc).map(drop),
                Some("AnalysisTemplate") => serde_json::from_value::<AnalysisTemplate>(doc).map(drop),
                Some("ClusterAnalysisTemplate") => {
                    serde_json::from_value::<ClusterAnalysisTemplate>(doc).map(drop)
                }
                Some("HTTPRoute") => serde_json::from_value::<HttpRoute>(doc).map(drop),
                Some("GRPCRoute") => serde_json::from_value::<GrpcRoute>(doc).map(drop),
                _ => Ok(()),
            };
            if let Err(e) = parsed {
                failures += &format!("\n{} {kind}/{name}: does not deserialize: {e}", file.display());
            }
        }
    }
    assert!(failures.is_empty(), "invalid examples:{failures}");
    for kind in ["Rollout", "AnalysisTemplate", "ClusterAnalysisTemplate", "HTTPRoute"] {
        assert!(validated.contains_key(kind), "examples/ has no {kind}; validated {validated:?}");
    }
}

/// Each example directory is a complete setup: everything a Rollout names is in the same directory,
/// and the engine accepts the Rollout with those templates (args, metric names, durations).
#[test]
fn every_example_rollout_finds_what_it_names() {
    for dir in std::fs::read_dir(crate_dir("examples")).expect("examples/ exists") {
        let dir = dir.expect("directory entry").path();
        if !dir.is_dir() {
            continue;
        }
        let docs: Vec<Value> = yaml_files(&dir).iter().flat_map(|f| documents(f)).collect();
        let find =
            |kind: &str, name: &str| docs.iter().find(|d| d["kind"] == kind && d["metadata"]["name"] == name);
        for rollout in docs.iter().filter(|d| d["kind"] == "Rollout") {
            let rollout: Rollout = serde_json::from_value(rollout.clone()).expect("a valid Rollout");
            let canary = &rollout.spec.strategy.canary;
            let services = [&canary.stable_service, &canary.canary_service];
            for service in services {
                assert!(find("Service", service).is_some(), "{}: no Service {service}", dir.display());
            }
            let routing = &canary.traffic_routing.gateway_api;
            let routes = routing.http_routes.iter().map(|r| ("HTTPRoute", r));
            for (kind, route) in routes.chain(routing.grpc_routes.iter().map(|r| ("GRPCRoute", r))) {
                let route = find(kind, &route.name)
                    .unwrap_or_else(|| panic!("{}: no {kind} {}", dir.display(), route.name));
                let backends: Vec<&Value> = route["spec"]["rules"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .flat_map(|rule| rule["backendRefs"].as_array().into_iter().flatten())
                    .map(|backend| &backend["name"])
                    .collect();
                for service in services {
                    assert!(
                        backends.iter().any(|b| *b == service.as_str()),
                        "{}: {kind} {} has no backendRef to {service}",
                        dir.display(),
                        route["metadata"]["name"]
                    );
                }
            }
            let templates: bellwether::engine::Templates = docs
                .iter()
                .filter(|d| d["kind"] == "AnalysisTemplate" || d["kind"] == "ClusterAnalysisTemplate")
                .map(|d| {
                    let reference = TemplateRef {
                        template_name: d["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                        cluster_scope: d["kind"] == "ClusterAnalysisTemplate",
                    };
                    let spec = serde_json::from_value(d["spec"].clone()).expect("a valid template spec");
                    (reference, spec)
                })
                .collect();
            if let Err(errors) = bellwether::engine::Plan::from_spec(&rollout.spec, &templates) {
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                panic!("{}: the engine rejects the Rollout: {}", dir.display(), errors.join("; "));
            }
        }
    }
}

#[test]
fn every_invalid_fixture_is_rejected_naming_the_field() {
    let files = yaml_files(&crate_dir("tests/fixtures/invalid"));
    assert!(!files.is_empty(), "no fixtures in tests/fixtures/invalid");
    let mut failures = String::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("readable fixture");
        let Some(expect) = text.lines().next().and_then(|line| line.strip_prefix("# expect: ")) else {
            failures +=
                &format!("\n{}: the first line must be `# expect: <text of the error>`", file.display());
            continue;
        };
        let (old, new) = match documents(file).as_slice() {
            [new] => (None, new.clone()),
            [old, new] => (Some(old.clone()), new.clone()),
            docs => panic!("{}: expected one or two documents, found {}", file.display(), docs.len()),
        };
        match validate(&new, old.as_ref()) {
            None => failures += &format!("\n{}: no schema for this kind", file.display()),
            Some(Ok(())) => failures += &format!("\n{}: accepted, expected {expect:?}", file.display()),
            Some(Err(errors)) if !errors.iter().any(|e| e.to_string().contains(expect)) => {
                failures += &format!("\n{}: expected {expect:?}, got:{}", file.display(), render(&errors));
            }
            Some(Err(_)) => {}
        }
    }
    assert!(failures.is_empty(), "fixtures not rejected as expected:{failures}");
}

/// The ready-made templates are ClusterAnalysisTemplates that pass the schema, CEL rules included (one
/// judgment per metric among them), deserialize into the Rust types, and pass the engine's
/// validation: only known variables in their queries and Job strings, a Job spec that reads as one.
#[test]
fn every_ready_made_template_passes_its_schema() {
    let files = yaml_files(&crate_dir("analysis-templates"));
    assert!(!files.is_empty(), "analysis-templates/ is empty");
    for file in files {
        for doc in documents(&file) {
            assert_eq!(
                doc["kind"],
                "ClusterAnalysisTemplate",
                "{}: ready-made templates are cluster-wide",
                file.display()
            );
            if let Some(Err(errors)) = validate(&doc, None) {
                panic!("{}:{}", file.display(), render(&errors));
            }
            let template: ClusterAnalysisTemplate =
                serde_json::from_value(doc).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            if let Err(errors) = bellwether::engine::validate_template(&template.spec.into()) {
                let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
                panic!("{}: {}", file.display(), errors.join("; "));
            }
        }
    }
}
