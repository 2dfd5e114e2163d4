//! The CRDs in crds/ are exactly what the API types generate: a change to src/api that is not
//! followed by a regeneration fails here, before it reaches a cluster.

use std::collections::BTreeSet;
use std::path::Path;

const REGENERATE: &str = "run `cargo run --bin bellwether -- crds --out crds/` and commit the result";

#[test]
fn crds_directory_matches_the_api_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
    let rendered = bellwether::cli::crds::render().expect("the CRDs render");
    let mut problems = Vec::new();
    for crd in &rendered {
        match std::fs::read_to_string(dir.join(&crd.file_name)) {
            Ok(on_disk) if on_disk == crd.yaml => {}
            Ok(_) => problems.push(format!("crds/{} differs from the generated CRD", crd.file_name)),
            Err(e) => problems.push(format!("crds/{} cannot be read: {e}", crd.file_name)),
        }
    }
    let expected: BTreeSet<&str> = rendered.iter().map(|crd| crd.file_name.as_str()).collect();
    for entry in std::fs::read_dir(&dir).expect("crds/ exists") {
        let name = entry.expect("directory entry").file_name().to_string_lossy().into_owned();
        if !expected.contains(name.as_str()) {
            problems.push(format!("crds/{name} is not generated from src/api; delete it"));
        }
    }
    assert!(problems.is_empty(), "crds/ is out of date:\n  {}\n{REGENERATE}", problems.join("\n  "));
}
