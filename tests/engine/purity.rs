//! The engine stays pure: no Kubernetes client, no async runtime, no clock, no I/O.

use std::path::Path;

const FORBIDDEN: &[&str] = &[
    "kube::Client",
    "kube::Api",
    "tokio",
    "async fn",
    ".await",
    "Utc::now",
    "SystemTime",
    "Instant::now",
    "std::fs",
    "std::net",
    "reqwest",
    "prometheus_http_query",
];

#[test]
fn the_engine_does_no_io_and_reads_no_clock() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/engine");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).expect("src/engine exists") {
        let path = entry.expect("readable entry").path();
        let source = std::fs::read_to_string(&path).expect("readable source");
        for word in FORBIDDEN {
            assert!(!source.contains(word), "{} uses {word}: the engine must stay pure", path.display());
        }
        checked += 1;
    }
    assert!(checked >= 10, "expected the engine's modules, found {checked} files");
}
