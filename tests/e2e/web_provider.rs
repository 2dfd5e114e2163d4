//! The `web` metric provider through the real controller: an AnalysisRun measures a JSON endpoint
//! the test serves, and its verdict promotes a good canary and aborts a bad one with the value.

use crate::harness::{Cluster, Controller, create};
use crate::rollouts::deploy_stable;
use bellwether::api::{AnalysisPhase, AnalysisRun, AnalysisTemplate, RolloutPhase};
use kube::api::ListParams;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Error rates by revision, and the revisions asked for, as the endpoint saw them.
#[derive(Default)]
struct Endpoint {
    error_rates: HashMap<String, f64>,
    asked: Vec<String>,
}

/// Serves `GET /health?revision=R` as `{"data": {"errorRate": X}}`, X the revision's error rate (0
/// unless set); returns its base URL.
async fn serve(endpoint: Arc<Mutex<Endpoint>>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding a port");
    let address = format!("http://{}", listener.local_addr().expect("an address"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let endpoint = endpoint.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request);
                let target = text.split_whitespace().nth(1).unwrap_or_default();
                let revision = target.split_once("revision=").map_or("", |(_, r)| r).to_string();
                let rate = {
                    let mut endpoint = endpoint.lock().unwrap();
                    endpoint.asked.push(revision.clone());
                    endpoint.error_rates.get(&revision).copied().unwrap_or(0.0)
                };
                let body = json!({"data": {"errorRate": rate}}).to_string();
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = stream.write_all(answer.as_bytes()).await;
            });
        }
    });
    address
}

/// A template measuring the endpoint's error rate of the revision under test, at most 1%.
async fn web_template(cluster: &Cluster, address: &str) {
    create::<AnalysisTemplate>(
        &cluster.client,
        &cluster.namespace,
        json!({
            "apiVersion": "bellwether.dev/v1alpha1",
            "kind": "AnalysisTemplate",
            "metadata": {"name": "web-errors"},
            "spec": {"metrics": [{
                "name": "error-rate",
                "interval": "1s",
                "count": 3,
                "provider": {"web": {
                    "url": format!("{address}/health?revision={{{{revision}}}}"),
                    "jsonPath": "$.data.errorRate",
                    "timeout": "2s",
                }},
                "threshold": {"max": 0.01},
            }]},
        }),
    )
    .await;
}

fn steps() -> serde_json::Value {
    json!([{"setWeight": 10}, {"analysis": {"templates": [{"templateName": "web-errors"}]}}])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_metric_promotes_a_good_canary_and_aborts_a_bad_one_with_its_value() {
    let cluster = Cluster::start("web-provider").await;
    let endpoint = Arc::new(Mutex::new(Endpoint::default()));
    let address = serve(endpoint.clone()).await;
    web_template(&cluster, &address).await;
    let controller = Controller::start(&cluster, &["--web-allowed-url-prefix", &format!("{address}/health")]);
    let stable = deploy_stable(&cluster, steps()).await;

    let good = cluster.ship(&cluster.rollout("2", steps())).await;
    cluster
        .rollout_until("the good canary promoted", |r| {
            r.status.as_ref().is_some_and(|s| s.stable_revision.as_deref() == Some(good.as_str()))
        })
        .await;
    assert!(endpoint.lock().unwrap().asked.contains(&good), "the run asked for the canary's revision");

    let bad_rollout = cluster.rollout("3", steps());
    let bad = bellwether::engine::revision_of(&bad_rollout.spec.embedded_template().unwrap_or_default());
    endpoint.lock().unwrap().error_rates.insert(bad.clone(), 0.25);
    cluster.ship(&bad_rollout).await;
    let aborted = cluster
        .rollout_until("the bad canary aborted", |r| {
            r.status.as_ref().is_some_and(|s| s.phase == Some(RolloutPhase::Degraded))
        })
        .await;
    let status = aborted.status.expect("a status");
    assert_eq!(status.stable_revision.as_deref(), Some(good.as_str()), "the bad canary was not promoted");
    let abort = status.abort.expect("an abort");
    assert_eq!((abort.metric.as_deref(), abort.value.as_deref()), (Some("error-rate"), Some("0.25")));
    let runs = cluster.api::<AnalysisRun>().list(&ListParams::default()).await.expect("listing runs").items;
    let failed = runs
        .iter()
        .filter_map(|r| r.status.as_ref())
        .find(|s| s.phase == Some(AnalysisPhase::Failed))
        .expect("the failed run");
    assert!(
        failed.metric_results[0].measurements.iter().any(|m| m.value == Some(0.25)),
        "{:?}",
        failed.metric_results
    );
    assert_ne!(stable, good);
    controller.stop().await;
}
