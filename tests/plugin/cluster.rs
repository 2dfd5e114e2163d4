//! The plugin binary against the test API server: the cluster named by a kubeconfig file, Rollouts
//! to find there, and the plugin run as a person runs it.

use bellwether::api::Rollout;
use bellwether_testkit::apiserver::TestApiServer;
use kube::api::{Api, Patch, PatchParams, PostParams};
use serde_json::json;
use std::path::Path;
use std::process::Output;

/// The namespace the kubeconfig of the test API server makes the default.
pub const DEFAULT_NAMESPACE: &str = "default";

/// A test API server and a kubeconfig file that points at it.
pub struct Cluster {
    pub server: TestApiServer,
    kubeconfig: tempfile::NamedTempFile,
}

impl Cluster {
    pub async fn start() -> Self {
        let server = TestApiServer::start().await;
        let kubeconfig = kubeconfig_file(&server.kubeconfig());
        Self { server, kubeconfig }
    }

    /// A cluster whose kubeconfig says it is `user`, so that the calls of the programs run with it
    /// can be told from the test's own in the server's call log.
    pub async fn start_as(user: &str) -> Self {
        let server = TestApiServer::start().await;
        let kubeconfig = kubeconfig_file(&server.kubeconfig_as(user));
        Self { server, kubeconfig }
    }

    pub fn kubeconfig(&self) -> &Path {
        self.kubeconfig.path()
    }

    /// Runs `program` with `args` and this cluster's kubeconfig.
    pub async fn run(&self, program: &str, args: &[&str]) -> Ran {
        run(program, self.kubeconfig(), args).await
    }

    /// Runs the plugin with `args` against this cluster.
    pub async fn plugin(&self, args: &[&str]) -> Ran {
        self.run(env!("CARGO_BIN_EXE_kubectl-bellwether"), args).await
    }

    /// Creates the example Rollout as `name` in `namespace`, with `labels`, in `phase`.
    pub async fn rollout(&self, namespace: &str, name: &str, labels: &[(&str, &str)], phase: &str) {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/basic/rollout.yaml");
        let mut rollout: Rollout =
            serde_yaml::from_str(&std::fs::read_to_string(path).expect("the example")).expect("a Rollout");
        rollout.metadata.name = Some(name.into());
        rollout.metadata.namespace = Some(namespace.into());
        rollout.metadata.labels =
            Some(labels.iter().map(|(key, value)| (key.to_string(), value.to_string())).collect());
        let api: Api<Rollout> = Api::namespaced(self.server.client(), namespace);
        let created = api.create(&PostParams::default(), &rollout).await.expect("creating the Rollout");
        let status = json!({"status": {
            "phase": phase,
            "message": format!("{name} is {phase}"),
            "observedGeneration": created.metadata.generation,
        }});
        api.patch_status(name, &PatchParams::default(), &Patch::Merge(&status)).await.expect("its status");
    }
}

/// A kubeconfig file holding `text`.
pub fn kubeconfig_file(text: &str) -> tempfile::NamedTempFile {
    let file = tempfile::NamedTempFile::new().expect("a temporary file");
    std::fs::write(file.path(), text).expect("writing the kubeconfig");
    file
}

/// A kubeconfig for an API server at `server` (such as a port nothing listens on).
pub fn kubeconfig_for(server: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: {server}\n\
         contexts:\n- name: c\n  context:\n    cluster: c\n    user: u\n    namespace: {DEFAULT_NAMESPACE}\n\
         current-context: c\nusers:\n- name: u\n  user: {{}}\n"
    )
}

/// What a run of a program printed, and how it exited.
pub struct Ran {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Ran {
    fn from(output: Output) -> Self {
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        Self { code: output.status.code(), stdout: text(&output.stdout), stderr: text(&output.stderr) }
    }
}

/// Runs `program` with `args` and `$KUBECONFIG` set to `kubeconfig` (so that completion, whose
/// last word is the one being typed, sees the words as typed), off the runtime, which may be
/// serving the API server the program calls.
pub async fn run(program: &str, kubeconfig: &Path, args: &[&str]) -> Ran {
    let mut command = std::process::Command::new(program);
    command.args(args).env("KUBECONFIG", kubeconfig);
    tokio::task::spawn_blocking(move || command.output().expect("running the program"))
        .await
        .expect("the program ran")
        .into()
}

/// An address on 127.0.0.1 where nothing listens.
pub fn closed_port() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let address = listener.local_addr().expect("its address");
    drop(listener);
    format!("http://{address}")
}

/// A server that accepts connections and never answers.
pub fn silent_server() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("binding a port");
    let address = listener.local_addr().expect("its address");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    format!("http://{address}")
}
