//! What the app serves: failures in the set share, the set latency, and metrics named, labelled and
//! bucketed as the `http-app` templates read them.

use crate::{sample, started};
use bellwether::demo::{BUCKETS, DemoApp, ErrorPattern, Faults};
use futures::StreamExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Sends `count` GET requests to `url`, `parallel` at a time, and returns each status and how long
/// it took.
async fn send(url: &str, count: usize, parallel: usize) -> Vec<(u16, Duration)> {
    let client = reqwest::Client::new();
    futures::stream::iter(0..count)
        .map(|_| {
            let request = client.get(url);
            async move {
                let started = Instant::now();
                let response = request.send().await.expect("the app answers");
                (response.status().as_u16(), started.elapsed())
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await
}

async fn metrics(address: std::net::SocketAddr) -> String {
    reqwest::get(format!("http://{address}/metrics")).await.expect("/metrics answers").text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_failures_are_the_set_share_within_statistical_bounds() {
    let faults = Faults { error_rate: 0.2, ..Faults::default() };
    let (_, running) = started(faults).await;
    let answers = send(&format!("http://{}/checkout", running.traffic), 2000, 16).await;
    let failed = answers.iter().filter(|(status, _)| *status == 500).count();
    let ok = answers.iter().filter(|(status, _)| *status == 200).count();
    assert_eq!(failed + ok, 2000, "only 200 and 500 are answered");
    // Binomial(2000, 0.2): mean 400, standard deviation 17.9; five of them either side is missed
    // by a correct app about once in two million runs.
    assert!((310..=490).contains(&failed), "{failed} of 2000 failed at rate 0.2");
    let text = metrics(running.traffic).await;
    assert_eq!(
        sample(&text, r#"http_requests_total{method="GET",code="500",mirrored="false"}"#),
        Some(failed as f64)
    );
    assert_eq!(
        sample(&text, r#"http_requests_total{method="GET",code="200",mirrored="false"}"#),
        Some(ok as f64)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn even_failures_are_exactly_the_set_share() {
    let faults = Faults { error_rate: 0.25, error_pattern: ErrorPattern::Even, ..Faults::default() };
    let (_, running) = started(faults).await;
    let answers = send(&format!("http://{}/", running.traffic), 400, 1).await;
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    for (window, chunk) in statuses.chunks(4).enumerate() {
        assert_eq!(chunk.iter().filter(|s| **s == 500).count(), 1, "window {window}: {chunk:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_is_held_for_the_latency_and_the_histogram_shows_it() {
    let faults = Faults { latency: Duration::from_millis(150), ..Faults::default() };
    let (_, running) = started(faults).await;
    let answers = send(&format!("http://{}/", running.traffic), 10, 10).await;
    for (status, took) in &answers {
        assert_eq!(*status, 200);
        assert!(*took >= Duration::from_millis(150), "answered after {took:?}");
    }
    let text = metrics(running.traffic).await;
    let bucket = |le: &str| {
        sample(
            &text,
            &format!(r#"http_request_duration_seconds_bucket{{method="GET",mirrored="false",le="{le}"}}"#),
        )
    };
    assert_eq!(bucket("0.1"), Some(0.0), "no request was answered within 100 ms:\n{text}");
    assert_eq!(bucket("+Inf"), Some(10.0));
    let sum =
        sample(&text, r#"http_request_duration_seconds_sum{method="GET",mirrored="false"}"#).expect("a sum");
    assert!(sum >= 1.5, "ten requests of at least 150 ms took {sum} s in all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jitter_spreads_latency_over_its_range() {
    let faults = Faults { latency_jitter: Duration::from_millis(200), ..Faults::default() };
    let (_, running) = started(faults).await;
    let took: Vec<Duration> = send(&format!("http://{}/", running.traffic), 30, 30)
        .await
        .into_iter()
        .map(|(_, took)| took)
        .collect();
    let (shortest, longest) = (took.iter().min().unwrap(), took.iter().max().unwrap());
    // Thirty uniform draws from 0-200 ms all fall below 100 ms, or within 50 ms of each other,
    // about once in a billion runs; a slow machine only lengthens requests.
    assert!(*longest >= Duration::from_millis(100), "the longest took {longest:?}");
    assert!(*longest - *shortest >= Duration::from_millis(50), "from {shortest:?} to {longest:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_have_the_templates_names_labels_and_buckets_before_any_traffic() {
    let (_, running) = started(Faults::default()).await;
    let text = metrics(running.traffic).await;
    let types: Vec<&str> = text.lines().filter_map(|line| line.strip_prefix("# TYPE ")).collect();
    assert_eq!(types, ["http_requests_total counter", "http_request_duration_seconds histogram"], "{text}");
    // A revision that has failed nothing yet has an error ratio of 0, not no data, counting mirrored
    // copies or not.
    for mirrored in ["false", "true"] {
        for code in ["200", "500"] {
            let series =
                format!(r#"http_requests_total{{method="GET",code="{code}",mirrored="{mirrored}"}}"#);
            assert_eq!(sample(&text, &series), Some(0.0), "{series} in:\n{text}");
        }
    }
    let bounds: Vec<String> = text
        .lines()
        .filter_map(|line| {
            line.strip_prefix(r#"http_request_duration_seconds_bucket{method="GET",mirrored="false",le=""#)
        })
        .filter_map(|rest| rest.split('"').next().map(String::from))
        .collect();
    let mut expected: Vec<String> = BUCKETS.iter().map(|b| b.to_string()).collect();
    expected.push("+Inf".into());
    assert_eq!(bounds, expected);
    // The template's p99 limits are bucket bounds.
    assert!(BUCKETS.contains(&0.4) && BUCKETS.contains(&0.5));
}

/// Prometheus's own linter reads the exposition and finds nothing to say.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promtool_reads_the_metrics_without_a_complaint() {
    let (_, running) = started(Faults { error_rate: 0.5, ..Faults::default() }).await;
    send(&format!("http://{}/", running.traffic), 20, 4).await;
    let text = metrics(running.traffic).await;
    let promtool = bellwether_testkit::prometheus::find_binary("promtool").unwrap_or_else(|e| panic!("{e}"));
    let mut check = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool runs");
    std::io::Write::write_all(&mut check.stdin.take().unwrap(), text.as_bytes()).unwrap();
    let output = check.wait_with_output().expect("promtool finishes");
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scrapes_and_probes_are_not_traffic_and_made_up_methods_share_one_label() {
    let (app, running) = started(Faults::default()).await;
    let client = reqwest::Client::new();
    for path in ["/metrics", "/healthz", "/metrics", "/healthz"] {
        let response = client.get(format!("http://{}{path}", running.traffic)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
    let text = metrics(running.traffic).await;
    assert_eq!(
        sample(&text, r#"http_requests_total{method="GET",code="200",mirrored="false"}"#),
        Some(0.0),
        "{text}"
    );

    for method in ["BREW", "WHEN", "POST"] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        client.request(method, format!("http://{}/x", running.traffic)).send().await.unwrap();
    }
    // The admin endpoint is not served on the traffic port: a PATCH there is one more request.
    let patch = client
        .patch(format!("http://{}/admin/faults", running.traffic))
        .body(r#"{"errorRate": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    assert_eq!(app.faults(), Faults::default());
    let text = metrics(running.traffic).await;
    assert_eq!(
        sample(&text, r#"http_requests_total{method="other",code="200",mirrored="false"}"#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"http_requests_total{method="POST",code="200",mirrored="false"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, r#"http_requests_total{method="PATCH",code="200",mirrored="false"}"#),
        Some(1.0),
        "{text}"
    );
}

/// Copies a Gateway mirrored to the app are counted apart: Envoy's `-shadow` host, or a header the
/// app is told to look for.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mirrored_requests_are_counted_apart() {
    let app = DemoApp::new("test", Faults { error_rate: 1.0, ..Faults::default() })
        .with_mirror_header(reqwest::header::HeaderName::from_static("x-mirrored"));
    let local = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let running = app.start(local, local).await.expect("the demo app listens");
    let client = reqwest::Client::new();
    let url = format!("http://{}/", running.traffic);
    for host in ["shop.example.com-shadow", "shop-shadow:8080", "shop.example.com", "shop:8080"] {
        client.get(&url).header("host", host).send().await.unwrap();
    }
    client.get(&url).header("x-mirrored", "yes").send().await.unwrap();
    let text = metrics(running.traffic).await;
    let count = |mirrored: &str| {
        sample(&text, &format!(r#"http_requests_total{{method="GET",code="500",mirrored="{mirrored}"}}"#))
    };
    assert_eq!(count("true"), Some(3.0), "{text}");
    assert_eq!(count("false"), Some(2.0), "{text}");
    let durations = |mirrored: &str| {
        sample(
            &text,
            &format!(r#"http_request_duration_seconds_count{{method="GET",mirrored="{mirrored}"}}"#),
        )
    };
    assert_eq!((durations("true"), durations("false")), (Some(3.0), Some(2.0)), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_names_the_version() {
    let (_, running) = started(Faults::default()).await;
    let response = reqwest::get(format!("http://{}/anything", running.traffic)).await.unwrap();
    assert_eq!(response.headers()["x-demo-app-version"], "test");
    assert_eq!(response.text().await.unwrap(), "demo-app test: ok\n");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_lets_the_request_in_flight_finish() {
    let (_, running) = started(Faults { latency: Duration::from_millis(300), ..Faults::default() }).await;
    let url = format!("http://{}/", running.traffic);
    let in_flight = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status().as_u16()) });
    // Long enough for the request to be accepted; the answer takes longer.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let traffic = running.traffic;
    running.stop().await.expect("a clean stop");
    assert_eq!(in_flight.await.unwrap().expect("an answer"), 200);
    assert!(reqwest::get(format!("http://{traffic}/")).await.is_err(), "still accepting after the stop");
}
