//! The admin endpoint: faults changed at run time take effect at once, and a bad change is refused
//! whole, with the reason, whoever else is changing them at the same time.

use crate::started;
use bellwether::demo::{ErrorPattern, Faults};
use serde_json::{Value, json};
use std::time::Duration;

async fn patch(admin: std::net::SocketAddr, body: &str) -> (u16, String) {
    let response = reqwest::Client::new()
        .patch(format!("http://{admin}/admin/faults"))
        .body(body.to_owned())
        .send()
        .await;
    let response = response.expect("the admin endpoint answers");
    (response.status().as_u16(), response.text().await.unwrap_or_default())
}

async fn shown(admin: std::net::SocketAddr) -> Value {
    let response = reqwest::get(format!("http://{admin}/admin/faults")).await.expect("GET answers");
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.expect("JSON")
}

async fn statuses(traffic: std::net::SocketAddr, count: usize) -> Vec<u16> {
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..count {
        statuses.push(client.get(format!("http://{traffic}/")).send().await.unwrap().status().as_u16());
    }
    statuses
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_takes_effect_for_the_next_request() {
    let (app, running) = started(Faults::default()).await;
    assert_eq!(statuses(running.traffic, 20).await, [200; 20]);
    let (status, body) = patch(running.admin, r#"{"errorRate": 1, "latency": "20ms"}"#).await;
    assert_eq!(status, 200, "{body}");
    let expected =
        json!({"errorRate": 1.0, "errorPattern": "random", "latency": "20ms", "latencyJitter": "0ms"});
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap(), expected);
    assert_eq!(shown(running.admin).await, expected);
    assert_eq!(app.faults().latency, Duration::from_millis(20));
    assert_eq!(statuses(running.traffic, 20).await, [500; 20]);
    let (status, _) = patch(running.admin, r#"{"errorRate": 0}"#).await;
    assert_eq!(status, 200);
    assert_eq!(statuses(running.traffic, 20).await, [200; 20]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_change_is_refused_with_400_and_changes_nothing() {
    let faults = Faults { error_rate: 0.1, latency: Duration::from_millis(5), ..Faults::default() };
    let (app, running) = started(faults).await;
    let before = shown(running.admin).await;
    for (body, reason) in [
        (r#"{"errorRate": NaN}"#, "not a faults object"),
        (r#"{"errorRate": Infinity}"#, "not a faults object"),
        (r#"{"errorRate": 1e999}"#, "number out of range"),
        (r#"{"errorRate": -0.1}"#, "error rate -0.1 is not a share of requests"),
        (r#"{"errorRate": 1.5, "latency": "1ms"}"#, "error rate 1.5 is not a share of requests"),
        (r#"{"errorRate": 0.5, "latency": "2h"}"#, "more than the 1m allowed"),
        (r#"{"latency": "59s", "latencyJitter": "2s"}"#, "latency 59s plus jitter 2s"),
        (r#"{"latency": "99999h99999h"}"#, "more than the 1m allowed"),
        (r#"{"latency": "fast"}"#, "latency: duration \"fast\""),
        (r#"{"latency": 5}"#, "invalid type: integer"),
        (r#"{"errorPattern": "sometimes"}"#, "unknown variant `sometimes`"),
        (r#"{"errorRate": 0.5, "error_rate": 0.5}"#, "unknown field `error_rate`"),
        ("errorRate=0.5", "not a faults object"),
        ("", "not a faults object"),
    ] {
        let (status, message) = patch(running.admin, body).await;
        assert_eq!(status, 400, "{body}: {message}");
        assert!(message.contains(reason), "{body}: {message}");
        assert_eq!(shown(running.admin).await, before, "{body} changed the faults");
    }
    assert_eq!(app.faults(), faults);

    let (status, message) =
        patch(running.admin, &format!(r#"{{"errorRate": 0.5, "x": "{}"}}"#, "a".repeat(5000))).await;
    assert_eq!((status, message.contains("exceeds 4096 bytes")), (413, true), "{message}");
    let put =
        reqwest::Client::new().put(format!("http://{}/admin/faults", running.admin)).send().await.unwrap();
    assert_eq!(put.status(), 405);
    assert_eq!(put.headers()["allow"], "GET, HEAD, PATCH");
    let elsewhere = reqwest::get(format!("http://{}/admin", running.admin)).await.unwrap();
    assert_eq!(elsewhere.status(), 404);
    assert_eq!(app.faults(), faults);
}

/// Two people change different faults at once while a third sends bad changes: every good change
/// lands on the faults the one before it left, none is lost, and no reader sees a bad value.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_apply_one_after_another() {
    let (app, running) = started(Faults::default()).await;
    let admin = running.admin;
    let rates = tokio::spawn(async move {
        for i in 0..=50 {
            let (status, body) = patch(admin, &format!(r#"{{"errorRate": {}}}"#, f64::from(i) / 100.0)).await;
            assert_eq!(status, 200, "{body}");
        }
    });
    let latencies = tokio::spawn(async move {
        for i in 0..=50 {
            let (status, body) =
                patch(admin, &format!(r#"{{"latency": "{i}ms", "errorPattern": "even"}}"#)).await;
            assert_eq!(status, 200, "{body}");
        }
    });
    let vandal = tokio::spawn(async move {
        for i in 0..50 {
            let (status, _) =
                patch(admin, &format!(r#"{{"errorRate": {}, "latency": "{i}ms"}}"#, 2 + i)).await;
            assert_eq!(status, 400);
        }
    });
    let reader = tokio::spawn(async move {
        for _ in 0..100 {
            let faults = shown(admin).await;
            let rate = faults["errorRate"].as_f64().expect("a rate");
            assert!((0.0..=0.5).contains(&rate), "a refused rate was seen: {faults}");
        }
    });
    for task in [rates, latencies, vandal, reader] {
        task.await.expect("the task succeeds");
    }
    assert_eq!(
        app.faults(),
        Faults {
            error_rate: 0.5,
            error_pattern: ErrorPattern::Even,
            latency: Duration::from_millis(50),
            latency_jitter: Duration::ZERO
        }
    );
}
