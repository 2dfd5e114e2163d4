//! `bellwether demo-app` and `bellwether demo-load` as processes: the flags, the signals, and the
//! two talking to each other.

use bellwether_testkit::prometheus::{free_port, get};
use std::net::SocketAddr;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bellwether(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bellwether"));
    command.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    command
}

/// Stops `child` as Kubernetes does, with SIGTERM, and returns how it ended.
fn terminate(child: Child) -> Output {
    let pid = child.id().to_string();
    Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
    child.wait_with_output().expect("the process ends")
}

/// Polls `check` for at most a minute.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(value) = check() {
            return value;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("gave up waiting for {what}");
}

#[test]
fn bad_flags_are_usage_errors_that_say_what_is_wrong() {
    for (flags, message) in [
        (&["--error-rate", "NaN"][..], "error rate NaN is not a share of requests"),
        (&["--error-rate", "1.01"], "error rate 1.01 is not a share of requests"),
        (&["--error-rate", "lots"], "\"lots\" is not a number"),
        (&["--latency=-5ms"], "duration \"-5ms\" is negative"),
        (&["--latency-jitter", "5"], "has no unit after 5"),
        (&["--error-pattern", "bursty"], "invalid value 'bursty'"),
        (&["--mirror-header", "bad header"], "invalid HTTP header name"),
    ] {
        let output = bellwether(&[&["demo-app"], flags].concat()).output().expect("runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{flags:?}: {stderr}");
        assert!(stderr.contains(message), "{flags:?}: {stderr}");
    }
    let output = bellwether(&["demo-app", "--latency", "45s", "--latency-jitter", "30s"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("latency 45s plus jitter 30s may hold a request 1m15s"), "{stderr}");
    let output = bellwether(&["demo-load", "--rate", "0", "http://127.0.0.1:1/"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("rate 0 is not a number of requests per second above 0"), "{stderr}");
}

#[test]
fn a_taken_port_is_named_in_the_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let output = bellwether(&["demo-app", "--listen", &address]).output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains(&format!("cannot listen on {address} (--listen)")), "{stderr}");
}

/// The app and the load generator as the quickstart runs them: the load reaches the app, the app
/// counts it, a fault set through the admin port shows in the load's report, and both stop cleanly
/// on SIGTERM.
#[test]
fn the_load_generator_drives_the_app_and_both_stop_on_sigterm() {
    let (traffic, admin) = (free_port().unwrap(), free_port().unwrap());
    let app = bellwether(&[
        "demo-app",
        "--listen",
        &format!("127.0.0.1:{traffic}"),
        "--admin-listen",
        &format!("127.0.0.1:{admin}"),
        "--app-version",
        "v7",
        "--error-rate",
        "1",
        "--mirror-header",
        "x-mirrored",
    ])
    .spawn()
    .expect("the app starts");
    let traffic_addr = SocketAddr::from(([127, 0, 0, 1], traffic));
    eventually("the app to be ready", || get(traffic_addr, "/healthz"));
    let faults =
        get(SocketAddr::from(([127, 0, 0, 1], admin)), "/admin/faults").expect("the admin port answers");
    assert!(faults.contains(r#""errorRate":1.0"#), "{faults}");

    let load = bellwether(&[
        "demo-load",
        "--rate",
        "50",
        "--report-every",
        "200ms",
        &format!("http://127.0.0.1:{traffic}/"),
    ])
    .spawn()
    .expect("the load starts");
    eventually("the app to count 500s", || {
        let metrics = get(traffic_addr, "/metrics")?;
        let failed =
            crate::sample(&metrics, r#"http_requests_total{method="GET",code="500",mirrored="false"}"#)?;
        (failed >= 10.0).then_some(())
    });
    // A request carrying the --mirror-header is counted apart, as a mirrored copy.
    let mut stream = std::net::TcpStream::connect(traffic_addr).expect("the app accepts");
    std::io::Write::write_all(
        &mut stream,
        b"GET / HTTP/1.1\r\nHost: app\r\nx-mirrored: 1\r\nConnection: close\r\n\r\n",
    )
    .expect("a request is sent");
    std::io::Read::read_to_end(&mut stream, &mut Vec::new()).expect("an answer");
    let metrics = get(traffic_addr, "/metrics").expect("metrics");
    let mirrored = crate::sample(&metrics, r#"http_requests_total{method="GET",code="500",mirrored="true"}"#);
    assert_eq!(mirrored, Some(1.0), "{metrics}");
    let load = terminate(load);
    let report = String::from_utf8_lossy(&load.stderr);
    assert!(load.status.success(), "{report}");
    assert!(report.contains("sending load") && report.contains("sent in all: 0 ok, "), "{report}");
    assert!(report.contains(" failed, 0 unanswered, 0 dropped"), "{report}");

    let app = terminate(app);
    let log = String::from_utf8_lossy(&app.stderr);
    assert!(app.status.success(), "{log}");
    assert!(log.contains("demo app starting") && log.contains("HTTP server stopped"), "{log}");
}
