//! `kubectl_complete-bellwether`, run as kubectl runs it, against the test API server: the words
//! after `kubectl bellwether` in, one candidate a line and a `:DIRECTIVE` line out.

use crate::cluster::{
    Cluster, DEFAULT_NAMESPACE, closed_port, kubeconfig_file, kubeconfig_for, run, silent_server,
};
use std::path::Path;
use std::time::{Duration, Instant};

const COMPLETER: &str = env!("CARGO_BIN_EXE_kubectl_complete-bellwether");

/// cobra's directives: no file names, or the shell's own file completion.
const NO_FILES: &str = ":4";
const FILES: &str = ":0";

/// The candidates (without descriptions) and the directive printed for `words`.
async fn complete(kubeconfig: &Path, words: &[&str]) -> (Vec<String>, String) {
    let ran = run(COMPLETER, kubeconfig, words).await;
    assert_eq!((ran.code, ran.stderr.as_str()), (Some(0), ""), "{words:?}: nothing on standard error");
    let mut lines: Vec<&str> = ran.stdout.lines().collect();
    let directive = lines.pop().unwrap_or_default().to_string();
    let candidates =
        lines.iter().map(|line| line.split('\t').next().unwrap_or_default().to_string()).collect();
    (candidates, directive)
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

async fn cluster_with_rollouts() -> Cluster {
    let cluster = Cluster::start().await;
    cluster.rollout(DEFAULT_NAMESPACE, "web", &[], "Paused").await;
    cluster.rollout(DEFAULT_NAMESPACE, "api", &[], "Healthy").await;
    cluster.rollout("payments", "ledger", &[], "Progressing").await;
    cluster
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subcommands_flags_and_their_values() {
    let cluster = Cluster::start().await;
    let kubeconfig = cluster.kubeconfig();
    let (subcommands, directive) = complete(kubeconfig, &[""]).await;
    assert_eq!(directive, NO_FILES);
    for expected in ["get", "list", "history", "promote", "abort", "status", "set", "undo", "lint", "version"]
    {
        assert!(subcommands.contains(&expected.to_string()), "{expected} in {subcommands:?}");
    }
    assert_eq!(complete(kubeconfig, &["pro"]).await.0, ["promote"]);
    assert_eq!(complete(kubeconfig, &["set", ""]).await.0, ["image", "help"]);

    let (flags, _) = complete(kubeconfig, &["list", "--"]).await;
    for expected in
        ["--all-namespaces", "--selector", "--watch", "--output", "--namespace", "--as", "--as-group"]
    {
        assert!(flags.contains(&expected.to_string()), "{expected} in {flags:?}");
    }
    assert!(flags.iter().all(|f| f.starts_with("--")), "only long flags after --: {flags:?}");
    assert!(complete(kubeconfig, &["list", "-"]).await.0.contains(&"-A".to_string()));
    assert_eq!(complete(kubeconfig, &["status", "web", "--succ"]).await.0, ["--success-on-pause"]);
    // A flag given is not offered again, unless it may be repeated.
    let (again, _) = complete(kubeconfig, &["list", "-A", "--as", "a", "--as-group", "b", "--"]).await;
    assert!(!again.contains(&"--all-namespaces".into()) && !again.contains(&"--as".into()), "{again:?}");
    assert!(again.contains(&"--as-group".into()), "{again:?}");

    let formats = strings(&["text", "wide", "name", "json", "yaml"]);
    assert_eq!(complete(kubeconfig, &["list", "-o", ""]).await, (formats.clone(), NO_FILES.into()));
    assert_eq!(complete(kubeconfig, &["get", "-o", "w"]).await.0, ["wide"]);
    assert_eq!(complete(kubeconfig, &["list", "--output=j"]).await.0, ["--output=json"]);
    assert_eq!(complete(kubeconfig, &["history", "x", "-o", ""]).await.0, ["text", "json", "yaml"]);
    assert_eq!(complete(kubeconfig, &["completion", "z"]).await.0, ["zsh"]);
    // Files are the shell's to complete.
    assert_eq!(complete(kubeconfig, &["lint", "-f", ""]).await, (vec![], FILES.into()));
    assert_eq!(complete(kubeconfig, &["--kubeconfig", ""]).await, (vec![], FILES.into()));
    assert_eq!(complete(kubeconfig, &["--context", ""]).await.0, ["test"]);
    // What cannot be listed is nothing, and no file names either.
    assert_eq!(complete(kubeconfig, &["status", "web", "--timeout", ""]).await, (vec![], NO_FILES.into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollout_names_in_the_namespace_the_words_name() {
    let cluster = cluster_with_rollouts().await;
    let kubeconfig = cluster.kubeconfig();
    let here = strings(&["api", "web"]);
    for command in ["promote", "abort", "retry", "pause", "resume", "status", "history", "undo"] {
        assert_eq!(complete(kubeconfig, &[command, ""]).await, (here.clone(), NO_FILES.into()), "{command}");
    }
    assert_eq!(complete(kubeconfig, &["set", "image", ""]).await.0, here);
    assert_eq!(complete(kubeconfig, &["promote", "w"]).await.0, ["web"]);
    // get names the type first, as kubectl get does; the other commands take it too.
    assert_eq!(complete(kubeconfig, &["get", "rollout", ""]).await.0, here);
    assert_eq!(complete(kubeconfig, &["get", "bwro", "a"]).await.0, ["api"]);
    assert_eq!(complete(kubeconfig, &["abort", "ro", ""]).await.0, here);
    assert_eq!(complete(kubeconfig, &["get", "rollout/"]).await.0, ["rollout/api", "rollout/web"]);
    assert_eq!(complete(kubeconfig, &["status", "ro/w"]).await.0, ["ro/web"]);
    // Another namespace, however -n is written and wherever it comes.
    let there = strings(&["ledger"]);
    assert_eq!(complete(kubeconfig, &["-n", "payments", "promote", ""]).await.0, there);
    assert_eq!(complete(kubeconfig, &["promote", "--namespace=payments", ""]).await.0, there);
    assert_eq!(complete(kubeconfig, &["get", "-npayments", "rollout", ""]).await.0, there);
    assert_eq!(complete(kubeconfig, &["-n", "nowhere", "promote", ""]).await.0, Vec::<String>::new());
    // The description is the phase.
    let described = run(COMPLETER, kubeconfig, &["pause", "w"]).await;
    assert_eq!(described.stdout, "web\tPaused\n:4\n");

    // Nothing follows a named rollout but what cannot be listed; Argo's type completes nothing.
    assert_eq!(complete(kubeconfig, &["set", "image", "web", ""]).await.0, Vec::<String>::new());
    assert_eq!(complete(kubeconfig, &["promote", "web", ""]).await.0, Vec::<String>::new());
    assert_eq!(complete(kubeconfig, &["promote", "rollouts.argoproj.io/"]).await.0, Vec::<String>::new());

    assert_eq!(complete(kubeconfig, &["-n", ""]).await.0, [DEFAULT_NAMESPACE, "payments"]);
    assert_eq!(complete(kubeconfig, &["list", "--namespace=p"]).await.0, ["--namespace=payments"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn impersonation_in_the_words_reaches_the_cluster() {
    let cluster = cluster_with_rollouts().await;
    let (names, _) =
        complete(cluster.kubeconfig(), &["--as", "carol", "--as-group", "sre", "promote", ""]).await;
    assert_eq!(names, ["api", "web"]);
    let log = cluster.server.call_log();
    assert!(log.calls_of("carol").contains(&("bellwether.dev".into(), "rollouts".into(), "list".into())));
    assert_eq!(log.groups_of("carol").into_iter().collect::<Vec<_>>(), ["sre"]);
}

/// A cluster that cannot be reached, does not answer, or has no CRDs completes no names, quietly
/// (kubectl shows the completer's standard error under the line being typed) and promptly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_names_and_no_noise_when_the_cluster_fails() {
    let closed = kubeconfig_file(&kubeconfig_for(&closed_port()));
    let silent = kubeconfig_file(&kubeconfig_for(&silent_server()));
    let missing = kubeconfig_file("this is not a kubeconfig: [");
    // A credential plugin that never answers, as a cloud's login can when its network is down.
    let stuck_login = kubeconfig_file(&kubeconfig_for(&closed_port()).replace(
        "user: {}",
        "user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: sh\n      \
         args: [\"-c\", \"sleep 30\"]\n      interactiveMode: Never",
    ));
    let without_crds = cluster_with_rollouts().await;
    without_crds.server.stop_serving_group("bellwether.dev");
    for kubeconfig in
        [closed.path(), silent.path(), missing.path(), stuck_login.path(), without_crds.kubeconfig()]
    {
        for words in [&["promote", ""][..], &["get", "rollout", "w"], &["-n", ""]] {
            let started = Instant::now();
            assert_eq!(complete(kubeconfig, words).await, (vec![], NO_FILES.into()), "{words:?}");
            assert!(started.elapsed() < Duration::from_secs(8), "{words:?} took {:?}", started.elapsed());
        }
        // What needs no cluster still completes.
        assert!(complete(kubeconfig, &["li"]).await.0.contains(&"list".to_string()));
    }
}

/// The completer runs the plugin installed beside it, with no PATH to find it on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_completer_finds_the_plugin_beside_it() {
    let mut command = std::process::Command::new(COMPLETER);
    command.args(["ver"]).env("PATH", "");
    let output = tokio::task::spawn_blocking(move || command.output().expect("running the completer"))
        .await
        .expect("it ran");
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "version\tPrint the plugin's version and the API version it speaks\n:4\n"
    );
}

/// Where kubectl is installed, it finds the completer on the PATH and offers what it prints.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_completes_the_plugin_through_it() {
    let Ok(kubectl) = crate::binary::which("kubectl") else {
        println!("skipped: kubectl is not installed");
        return;
    };
    let cluster = cluster_with_rollouts().await;
    let bin = Path::new(COMPLETER).parent().expect("a directory");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    let mut command = std::process::Command::new(kubectl);
    command.args(["__complete", "bellwether", "get", "rollout", ""]).env("PATH", path);
    command.env("KUBECONFIG", cluster.kubeconfig());
    let output = tokio::task::spawn_blocking(move || command.output().expect("running kubectl"))
        .await
        .expect("kubectl ran");
    assert_eq!(String::from_utf8_lossy(&output.stdout), "api\tHealthy\nweb\tPaused\n:4\n", "{output:?}");
}
