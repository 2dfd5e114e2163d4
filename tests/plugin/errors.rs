//! What the plugin says when the cluster fails it: a server that cannot be reached, one without
//! Bellwether's CRDs, a refusal; each in words, naming the server where the connection is at fault,
//! and never a dump of the client's error structures.

use crate::cluster::{Cluster, DEFAULT_NAMESPACE, closed_port, kubeconfig_file, kubeconfig_for, run};

const PLUGIN: &str = env!("CARGO_BIN_EXE_kubectl-bellwether");

/// The marks of a Rust `Debug` dump of kube's errors.
fn assert_no_debug_dump(said: &str) {
    for mark in ["Status {", "ErrorResponse", "Some(", "ApiError:", "ServiceError", "HyperError"] {
        assert!(!said.contains(mark), "{mark:?} in {said:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_named_for_every_kind_of_command() {
    let server = closed_port();
    let kubeconfig = kubeconfig_file(&kubeconfig_for(&server));
    for args in [
        &["list"][..],
        &["get", "rollout", "web"],
        &["history", "web"],
        &["status", "web", "--timeout", "2s"],
        &["promote", "web"],
        &["undo", "web"],
    ] {
        let ran = run(PLUGIN, kubeconfig.path(), args).await;
        // status retries until --timeout, and then says it could not read the Rollout: 5.
        let code = if args[0] == "status" { 5 } else { 1 };
        assert_eq!((ran.code, ran.stdout.as_str()), (Some(code), ""), "{args:?}: {}", ran.stderr);
        // status says each outage as it starts, and then why it gave up.
        let expected = format!("error: cannot reach the Kubernetes API at {server}: ");
        let last = ran.stderr.lines().last().unwrap_or_default();
        assert!(last.starts_with(&expected), "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.to_lowercase().contains("connection refused"), "{args:?}: {}", ran.stderr);
        assert_no_debug_dump(&ran.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_without_the_crds_says_so_and_how_to_install_them() {
    let cluster = Cluster::start().await;
    cluster.server.stop_serving_group("bellwether.dev");
    for args in [&["get", "rollout", "web"][..], &["list"], &["status", "web"], &["abort", "web"]] {
        let ran = cluster.plugin(args).await;
        let code = if args[0] == "status" { 5 } else { 1 };
        assert_eq!(ran.code, Some(code), "{args:?}: {}", ran.stderr);
        let said = &ran.stderr;
        assert!(said.contains("does not serve bellwether.dev/v1alpha1"), "{args:?}: {said}");
        assert!(said.contains("CRDs are not installed"), "{args:?}: {said}");
        assert!(
            said.contains("helm install bellwether") && said.contains("kubectl apply -f crds/"),
            "{said}"
        );
        assert!(!said.contains("not found in namespace"), "a missing CRD is no missing rollout: {said}");
        assert_no_debug_dump(said);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_is_the_servers_own_words_and_a_missing_rollout_is_named() {
    let cluster = Cluster::start().await;
    cluster.rollout(DEFAULT_NAMESPACE, "web", &[], "Paused").await;
    cluster.server.forbid_writes("rollouts");
    let ran = cluster.plugin(&["set", "image", "web", "checkout=shop:2"]).await;
    assert_eq!((ran.code, ran.stdout.as_str()), (Some(1), ""), "{}", ran.stderr);
    assert!(ran.stderr.starts_with("error: writing the pod template of Rollout web: "), "{}", ran.stderr);
    assert!(
        ran.stderr.contains("rollouts.bellwether.dev \"web\" is forbidden: User \"test-admin\" cannot patch")
            && ran.stderr.trim_end().ends_with("(Forbidden, HTTP 403)"),
        "{}",
        ran.stderr
    );
    assert!(!ran.stderr.contains("cannot reach"), "the server was reached: {}", ran.stderr);
    assert_no_debug_dump(&ran.stderr);

    let missing = cluster.plugin(&["get", "rollout", "nope"]).await;
    assert_eq!(missing.code, Some(1));
    assert_eq!(missing.stderr, "error: rollout nope not found in namespace default\n");
}
