//! The `influxdb` metric provider through the real controller: an AnalysisRun measures a real
//! InfluxDB that the test keeps writing each revision's requests to, and its verdict promotes a
//! good canary and aborts a bad one with the value.

use crate::harness::{Cluster, Controller, revision};
use crate::providers::{error_ratio_template, ship_bad, ship_good, steps};
use crate::rollouts::deploy_stable;
use bellwether::api::{AnalysisPhase, AnalysisRun};
use bellwether_testkit::influxdb::{InfluxDb, now_ms};
use kube::api::ListParams;
use serde_json::json;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The template measuring the share of the revision under test's requests that failed.
const TEMPLATE: &str = "influxdb-errors";

/// The longest the writer runs, should a test never stop it.
const WRITING_AT_MOST: Duration = Duration::from_secs(300);

/// Writes, every 200 ms until stopped, a point of 100 requests for each revision in `error_rates`,
/// that share of them failed.
fn write_requests(
    server: Arc<InfluxDb>,
    error_rates: Arc<Mutex<HashMap<String, f64>>>,
    stop: Arc<AtomicBool>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let started = Instant::now();
        while !stop.load(Ordering::Relaxed) && started.elapsed() < WRITING_AT_MOST {
            let now = now_ms();
            let lines: Vec<String> = error_rates
                .lock()
                .unwrap()
                .iter()
                .map(|(revision, rate)| {
                    format!("http,revision={revision} requests=100i,errors={}i {now}", (rate * 100.0).round())
                })
                .collect();
            if !lines.is_empty() {
                server.write("shop", &lines.join("\n")).expect("writing requests");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_influxdb_metric_promotes_a_good_canary_and_aborts_a_bad_one_with_its_value() {
    let cluster = Cluster::start("influxdb-provider").await;
    let server = Arc::new(InfluxDb::start().expect("an InfluxDB"));
    server.create_database("shop").expect("creating the database");
    // The share of the requests that failed in the last 10s: the query docs/analysis.md shows.
    let provider = json!({"influxdb": {
        "address": server.address(),
        "database": "shop",
        "query": r#"SELECT sum("errors") / sum("requests") FROM "http" WHERE "revision" = '{{revision}}' AND time > now() - 10s"#,
        "timeout": "2s",
    }});
    error_ratio_template(&cluster, TEMPLATE, "error-rate", provider).await;
    let error_rates = Arc::new(Mutex::new(HashMap::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = write_requests(server.clone(), error_rates.clone(), stop.clone());
    let controller = Controller::start(&cluster, &[]);
    let stable = deploy_stable(&cluster, steps(TEMPLATE)).await;

    let good_rollout = cluster.rollout("2", steps(TEMPLATE));
    error_rates.lock().unwrap().insert(revision(&good_rollout), 0.0);
    let good = ship_good(&cluster, &good_rollout).await;

    let bad_rollout = cluster.rollout("3", steps(TEMPLATE));
    error_rates.lock().unwrap().insert(revision(&bad_rollout), 0.25);
    ship_bad(&cluster, &bad_rollout, &good, "error-rate", "0.25").await;
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("the writer");
    let runs = cluster.api::<AnalysisRun>().list(&ListParams::default()).await.expect("listing runs").items;
    let phases: Vec<_> = runs.iter().filter_map(|r| r.status.as_ref()?.phase).collect();
    assert!(phases.contains(&AnalysisPhase::Successful), "the good canary's run passed: {phases:?}");
    assert!(phases.contains(&AnalysisPhase::Failed), "the bad canary's run failed: {phases:?}");
    assert_ne!(stable, good);
    controller.stop().await;
}
