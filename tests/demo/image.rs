//! The images the Dockerfile builds: the demo app's, by `docker build --target demo-app`, and the
//! controller's, still the default. Docker does not run in the tests; the stages are read here, and
//! the subcommands they run are run.

use std::process::Command;

fn read(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path))
        .unwrap_or_else(|e| panic!("reading {path}: {e}"))
}

#[test]
fn the_dockerfile_builds_the_demo_app_and_still_defaults_to_the_controller() {
    let dockerfile = read("Dockerfile");
    let stages: Vec<(String, Vec<&str>)> = dockerfile
        .split("\nFROM ")
        .skip(1)
        .map(|stage| {
            let name = stage.lines().next().unwrap().rsplit(" AS ").next().unwrap().trim().to_owned();
            (name, stage.lines().collect())
        })
        .collect();
    let stage =
        |name: &str| &stages.iter().find(|(n, _)| n == name).unwrap_or_else(|| panic!("no stage {name}")).1;
    let entrypoint = |name: &str| -> Vec<String> {
        let line = stage(name).iter().find_map(|l| l.strip_prefix("ENTRYPOINT ")).expect("an ENTRYPOINT");
        serde_json::from_str(line).expect("an exec-form ENTRYPOINT")
    };
    assert!(stage("build").iter().any(|l| l.contains("cargo build --release --locked --bin bellwether")));
    for name in ["demo-app", "controller"] {
        assert!(
            stage(name).contains(&"COPY --from=build /src/target/release/bellwether /bellwether"),
            "{name}"
        );
        assert!(stage(name).contains(&"USER nonroot"), "{name}");
    }
    assert_eq!(entrypoint("demo-app"), ["/bellwether", "demo-app"]);
    // `docker build` without --target builds the last stage: the controller, as before.
    assert_eq!(stages.last().unwrap().0, "controller");
    assert_eq!(entrypoint("controller"), ["/bellwether", "controller"]);
    // The subcommands exist in the binary the images run.
    for subcommand in ["demo-app", "demo-load", "controller"] {
        let help =
            Command::new(env!("CARGO_BIN_EXE_bellwether")).args([subcommand, "--help"]).output().unwrap();
        assert!(help.status.success(), "bellwether {subcommand} --help");
    }
}
