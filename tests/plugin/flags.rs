//! kubectl's flags on the plugin, against the test API server: `--as` and `--as-group` on every
//! command's client, `--request-timeout`, and `list -l`.

use crate::cluster::{Cluster, DEFAULT_NAMESPACE, kubeconfig_file, kubeconfig_for, run, silent_server};
use std::time::{Duration, Instant};

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-bellwether");

fn call(resource: &str, verb: &str) -> (String, String, String) {
    ("bellwether.dev".into(), resource.into(), verb.into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_and_as_group_reach_the_server_on_every_command() {
    let cluster = Cluster::start().await;
    cluster.rollout(DEFAULT_NAMESPACE, "web", &[], "Healthy").await;
    let log = cluster.server.call_log();
    let setup = log.counts_of("");
    let acting = ["--as", "alice", "--as-group", "ops", "--as-group", "oncall"];
    for args in [&["list"][..], &["get", "rollout", "web"], &["history", "web"], &["status", "web"]] {
        let ran = cluster.plugin(&[args, &acting[..]].concat()).await;
        assert_eq!(ran.code, Some(0), "{args:?}: {}", ran.stderr);
    }
    let calls = log.calls_of("alice");
    assert!(
        calls.contains(&call("rollouts", "list")) && calls.contains(&call("rollouts", "get")),
        "{calls:?}"
    );
    assert_eq!(log.counts_of(""), setup, "every call of the plugin was alice's");
    assert_eq!(log.groups_of("alice").into_iter().collect::<Vec<_>>(), ["oncall", "ops"]);

    // The user a request is recorded for is the one the server names: alice, not the kubeconfig's.
    cluster.server.forbid_writes("rollouts");
    let refused = cluster.plugin(&["set", "image", "web", "checkout=shop:2", "--as", "alice"]).await;
    assert!(refused.stderr.contains("User \"alice\" cannot patch"), "{}", refused.stderr);
}

#[tokio::test]
async fn a_group_without_a_user_is_a_usage_error() {
    let kubeconfig = kubeconfig_file(&kubeconfig_for("http://127.0.0.1:9"));
    let ran = run(PLUGIN, kubeconfig.path(), &["list", "--as-group", "ops"]).await;
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("--as <USER>"), "{}", ran.stderr);
}

#[tokio::test]
async fn request_timeout_gives_up_on_a_server_that_does_not_answer() {
    let server = silent_server();
    let kubeconfig = kubeconfig_file(&kubeconfig_for(&server));
    for timeout in ["1", "1s", "500ms"] {
        let started = Instant::now();
        let ran = run(PLUGIN, kubeconfig.path(), &["list", "--request-timeout", timeout]).await;
        let took = started.elapsed();
        assert_eq!(ran.code, Some(1), "{timeout}: {}", ran.stderr);
        assert!(took < Duration::from_secs(10), "{timeout}: gave up after {took:?}");
        let expected = format!("error: cannot reach the Kubernetes API at {server}: ");
        assert!(ran.stderr.starts_with(&expected) && ran.stderr.contains("timed out"), "{}", ran.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_timeout_takes_kubectls_forms_and_refuses_others() {
    let cluster = Cluster::start().await;
    for timeout in ["0", "30", "30s", "1m", "1h30m"] {
        let ran = cluster.plugin(&["list", "--request-timeout", timeout]).await;
        assert_eq!(ran.code, Some(0), "{timeout}: {}", ran.stderr);
    }
    for (timeout, reason) in [
        ("1x", "unknown unit \"x\""),
        ("-1s", "is negative"),
        ("1.5s", "not a number followed by a unit"),
        ("", "is empty"),
        ("99999999999999999999", "is too long"),
        ("18446744073709551615", "is longer than a day"),
        ("90000", "is longer than a day"),
        ("25h", "is longer than a day"),
    ] {
        let ran = cluster.plugin(&["list", &format!("--request-timeout={timeout}")]).await;
        assert_eq!(ran.code, Some(2), "{timeout:?}: {}", ran.stderr);
        assert!(ran.stderr.contains("--request-timeout") && ran.stderr.contains(reason), "{}", ran.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_selects_by_label_as_kubectl_does() {
    let cluster = Cluster::start().await;
    cluster.rollout(DEFAULT_NAMESPACE, "web", &[("app", "web"), ("tier", "front")], "Healthy").await;
    cluster.rollout(DEFAULT_NAMESPACE, "api", &[("app", "api"), ("tier", "back")], "Paused").await;
    cluster.rollout(DEFAULT_NAMESPACE, "batch", &[("app", "batch")], "Healthy").await;
    cluster.rollout("other", "web", &[("app", "web")], "Healthy").await;
    let listed = |ran: &crate::cluster::Ran| -> Vec<String> {
        ran.stdout
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().take(2).collect::<Vec<_>>().join(" "))
            .collect()
    };
    for (selector, expected) in [
        ("app=web", &["web Healthy"][..]),
        ("tier", &["api Paused", "web Healthy"]),
        ("!tier", &["batch Healthy"]),
        ("tier in (front,back),app!=api", &["web Healthy"]),
        ("app=none", &[]),
    ] {
        for flag in ["-l", "--selector"] {
            let ran = cluster.plugin(&["list", flag, selector]).await;
            assert_eq!(ran.code, Some(0), "{selector}: {}", ran.stderr);
            assert_eq!(listed(&ran), expected, "{selector}:\n{}", ran.stdout);
        }
    }
    let everywhere = cluster.plugin(&["list", "-A", "-l", "app=web"]).await;
    let rows: Vec<&str> = everywhere.stdout.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{}", everywhere.stdout);
    assert!(rows.iter().all(|row| row.split_whitespace().nth(1) == Some("web")), "{}", everywhere.stdout);

    let malformed = cluster.plugin(&["list", "-l", "app in (web"]).await;
    assert_eq!(malformed.code, Some(1), "{}", malformed.stderr);
    assert!(
        malformed
            .stderr
            .starts_with("error: listing the Rollouts of namespace default labelled app in (web: ")
            && malformed.stderr.contains("(BadRequest, HTTP 400)"),
        "{}",
        malformed.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_name_and_wide_as_kubectl_prints_them() {
    let cluster = Cluster::start().await;
    cluster.rollout(DEFAULT_NAMESPACE, "web", &[("app", "web")], "Healthy").await;
    cluster.rollout(DEFAULT_NAMESPACE, "api", &[("app", "api")], "Paused").await;
    let names = cluster.plugin(&["list", "-o", "name"]).await;
    assert_eq!(names.stdout, "rollout.bellwether.dev/api\nrollout.bellwether.dev/web\n", "{}", names.stderr);
    let selected = cluster.plugin(&["list", "-l", "app=web", "-o", "name"]).await;
    assert_eq!(selected.stdout, "rollout.bellwether.dev/web\n", "{}", selected.stderr);
    let one = cluster.plugin(&["get", "rollout/web", "-o", "name"]).await;
    assert_eq!(one.stdout, "rollout.bellwether.dev/web\n", "{}", one.stderr);

    let wide = cluster.plugin(&["list", "-o", "wide"]).await;
    let header: Vec<&str> = wide.stdout.lines().next().unwrap_or_default().split("   ").collect();
    assert!(header.contains(&"ANALYSIS") && header.contains(&"IMAGES"), "{}", wide.stdout);
    assert!(wide.stdout.contains("checkout=ghcr.io/example/checkout:1.4.2"), "{}", wide.stdout);
    let tree = cluster.plugin(&["get", "rollout", "web", "-o", "wide"]).await;
    assert!(tree.stdout.starts_with("Rollout web (namespace default)\n"), "{}", tree.stderr);

    let refused = cluster.plugin(&["history", "web", "-o", "name"]).await;
    assert_eq!(refused.code, Some(2), "history has no names to print: {}", refused.stderr);
}
