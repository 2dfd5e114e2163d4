//! The `web` metric provider through the real controller: an AnalysisRun measures a JSON endpoint
//! the test serves, and its verdict promotes a good canary and aborts a bad one with the value.

use crate::harness::{Cluster, Controller, revision};
use crate::providers::{assert_the_failed_run_measured, error_ratio_template, ship_bad, ship_good, steps};
use crate::rollouts::deploy_stable;
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The template measuring the endpoint's error rate of the revision under test.
const TEMPLATE: &str = "web-errors";

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_web_metric_promotes_a_good_canary_and_aborts_a_bad_one_with_its_value() {
    let cluster = Cluster::start("web-provider").await;
    let endpoint = Arc::new(Mutex::new(Endpoint::default()));
    let address = serve(endpoint.clone()).await;
    let provider = json!({"web": {
        "url": format!("{address}/health?revision={{{{revision}}}}"),
        "jsonPath": "$.data.errorRate",
        "timeout": "2s",
    }});
    error_ratio_template(&cluster, TEMPLATE, "error-rate", provider).await;
    let controller = Controller::start(&cluster, &["--web-allowed-url-prefix", &format!("{address}/health")]);
    let stable = deploy_stable(&cluster, steps(TEMPLATE)).await;

    let good = ship_good(&cluster, &cluster.rollout("2", steps(TEMPLATE))).await;
    assert!(endpoint.lock().unwrap().asked.contains(&good), "the run asked for the canary's revision");

    let bad_rollout = cluster.rollout("3", steps(TEMPLATE));
    endpoint.lock().unwrap().error_rates.insert(revision(&bad_rollout), 0.25);
    ship_bad(&cluster, &bad_rollout, &good, "error-rate", "0.25").await;
    assert_the_failed_run_measured(&cluster, 0.25).await;
    assert_ne!(stable, good);
    controller.stop().await;
}
