//! The load generator: requests at the set rate, each answer counted by what it was.

use crate::{sample, started};
use bellwether::demo::{Faults, Load, Tally};
use std::time::Duration;

/// Polls `load` until `done` holds of its tally; bounded, so that a broken generator fails the test
/// rather than hanging it.
async fn until(load: &Load, what: &str, done: impl Fn(Tally) -> bool) -> Tally {
    for _ in 0..600 {
        let tally = load.tally();
        if done(tally) {
            return tally;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("gave up waiting for {what}; the tally was {:?}", load.tally());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_counted_by_what_they_were() {
    let (app, running) = started(Faults::default()).await;
    let load = Load::start(&format!("http://{}/", running.traffic), 200.0).expect("a valid load");
    until(&load, "40 answers of 200", |t| t.ok >= 40).await;
    app.patch_faults(br#"{"errorRate": 1}"#).expect("a valid patch");
    let before = load.tally();
    let after = until(&load, "40 answers of 500", |t| t.failed >= before.failed + 40).await;
    assert_eq!((after.unanswered, after.dropped), (0, 0), "{after:?}");
    drop(load);
    // Every request the load counted, the app counted too (the app may have answered a few more
    // that the load was still reading when it stopped).
    let text =
        reqwest::get(format!("http://{}/metrics", running.traffic)).await.unwrap().text().await.unwrap();
    let served_ok =
        sample(&text, r#"http_requests_total{method="GET",code="200",mirrored="false"}"#).unwrap();
    let served_failed =
        sample(&text, r#"http_requests_total{method="GET",code="500",mirrored="false"}"#).unwrap();
    assert!(served_ok >= after.ok as f64 && served_failed >= after.failed as f64, "{after:?}\n{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_is_down_leaves_requests_unanswered() {
    // A port that was free a moment ago, with nothing listening on it now.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let load = Load::start(&format!("http://127.0.0.1:{port}/"), 100.0).expect("a valid load");
    let tally = until(&load, "20 unanswered requests", |t| t.unanswered >= 20).await;
    assert_eq!((tally.ok, tally.failed), (0, 0));
}

#[test]
fn rates_and_urls_that_cannot_be_sent_are_refused() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _inside = runtime.enter();
    for rate in [0.0, -1.0, f64::NAN, f64::INFINITY, 10_000.5] {
        let error = Load::start("http://127.0.0.1:1/", rate).err().expect("refused");
        assert!(error.to_string().contains("requests per second above 0"), "{rate}: {error}");
    }
    for url in ["", "127.0.0.1:8080", "ftp://example.com/", "http://", "https://example.com/", "/path"] {
        let error = Load::start(url, 1.0).err().expect("refused");
        assert!(error.to_string().contains("is not an http:// URL with a host"), "{url:?}: {error}");
    }
}

#[test]
fn a_tally_since_an_earlier_one_is_what_happened_in_between() {
    let earlier = Tally { ok: 10, failed: 2, unanswered: 1, dropped: 0 };
    let now = Tally { ok: 25, failed: 3, unanswered: 1, dropped: 4 };
    assert_eq!(now.since(earlier), Tally { ok: 15, failed: 1, unanswered: 0, dropped: 4 });
    assert_eq!(now.since(earlier).to_string(), "15 ok, 1 failed, 0 unanswered, 4 dropped");
}

/// What a server sees: the path alone on the request line (origin form) and the URL's host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_name_the_path_and_host_of_the_url() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && std::io::Read::read(&mut stream, &mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        std::io::Write::write_all(
            &mut stream,
            b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n",
        )
        .unwrap();
        String::from_utf8(head).unwrap()
    });
    let load = Load::start(&format!("http://127.0.0.1:{port}/shop/cart?item=7"), 20.0).expect("a valid load");
    let head = server.join().unwrap();
    assert!(head.starts_with("GET /shop/cart?item=7 HTTP/1.1\r\n"), "{head}");
    assert!(head.to_lowercase().contains(&format!("\r\nhost: 127.0.0.1:{port}\r\n")), "{head}");
    until(&load, "the 503 counted as failed", |t| t.failed == 1).await;
}
