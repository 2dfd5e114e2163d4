//! The `web` metric provider against a real HTTP server on 127.0.0.1: each answer shape becomes the
//! value or the measurement error it should, args arrive escaped for where they land, and headers
//! read from a Secret reach the server. Measured through the controller's pool, as the AnalysisRun
//! reconciler measures.

use bellwether::api::template::Vars;
use bellwether::api::{Measurement, Metric};
use bellwether::controller::secrets::{ReadableSecrets, resolve_auth};
use bellwether::metrics::prometheus::ResolvedAuth;
use bellwether::metrics::provider::Provider;
use bellwether::metrics::providers::{Providers, under};
use bellwether_testkit::apiserver::TestApiServer;
use chrono::{DateTime, Utc};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use reqwest::Url;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;

/// One request the server was sent.
#[derive(Clone, Debug)]
struct Received {
    method: String,
    /// The path and query as sent, undecoded.
    target: String,
    headers: Vec<(String, String)>,
    body: String,
}

/// A server answering each path as [`answer`] says, recording every request.
struct Server {
    address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
}

impl Server {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let received = Arc::new(Mutex::new(Vec::new()));
        let log = received.clone();
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |request| serve(request, log.clone()));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Self { address, received }
    }

    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{path_and_query}", self.address)
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

async fn serve(
    request: Request<hyper::body::Incoming>,
    log: Arc<Mutex<Vec<Received>>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let received = Received {
        method: parts.method.to_string(),
        target: parts.uri.path_and_query().map(ToString::to_string).unwrap_or_default(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap_or("").to_owned()))
            .collect(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    log.lock().unwrap().push(received);
    let (status, content_type, text) = match parts.uri.path() {
        "/value" => (200, "application/json", r#"{"data": {"rate": 0.25, "other": 7}}"#),
        "/string" => (200, "application/json", r#"{"v": "0.5"}"#),
        "/null" => (200, "application/json", r#"{"v": null}"#),
        "/many" => (200, "application/json", r#"{"items": [{"v": 1}, {"v": 2}, {"v": 3}]}"#),
        "/word" => (200, "application/json", r#"{"v": "fast"}"#),
        "/html" => (200, "text/html", "<html><body>Sign in</body></html>"),
        "/500" => (500, "text/plain", "boom"),
        "/slow" => {
            tokio::time::sleep(Duration::from_secs(3)).await;
            (200, "application/json", r#"{"v": 1}"#)
        }
        "/echo" => (200, "application/json", r#"{"v": 1}"#),
        _ => (404, "text/plain", "no such metric"),
    };
    let response = Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(Full::new(Bytes::from(text)))
        .unwrap();
    Ok(response)
}

fn at() -> DateTime<Utc> {
    "2026-06-01T12:00:00Z".parse().unwrap()
}

fn metric(web: serde_json::Value) -> Metric {
    serde_json::from_value(serde_json::json!({
        "name": "probe",
        "provider": {"web": web},
        "threshold": {"max": 1},
    }))
    .unwrap()
}

fn vars(arg: &str) -> Vars {
    Vars {
        args: [("q".to_owned(), arg.to_owned())].into(),
        revision: "abc123".into(),
        canary_revision: "abc123".into(),
        ..Vars::default()
    }
}

/// A pool that allows web metrics to read the server `web` names, and nothing else.
fn pool_for(web: &serde_json::Value) -> Providers {
    let mut origin = Url::parse(web["url"].as_str().expect("a url")).expect("a URL");
    origin.set_path("/");
    origin.set_query(None);
    Providers::with_web_allowed(4, vec![origin])
}

async fn measure(web: serde_json::Value) -> Measurement {
    pool_for(&web).measure(&metric(web), &vars("v"), &ResolvedAuth::default(), at()).await
}

async fn value(server: &Server, path: &str, json_path: &str) -> Result<Option<f64>, String> {
    let measurement = measure(serde_json::json!({"url": server.url(path), "jsonPath": json_path})).await;
    match measurement.error {
        Some(error) => Err(error),
        None => Ok(measurement.value),
    }
}

#[tokio::test]
async fn answers_become_values_or_no_data() {
    let server = Server::start().await;
    assert_eq!(value(&server, "/value", "$.data.rate").await, Ok(Some(0.25)));
    assert_eq!(value(&server, "/string", "$.v").await, Ok(Some(0.5)));
    assert_eq!(value(&server, "/null", "$.v").await, Ok(None));
}

#[tokio::test]
async fn answers_that_are_not_one_number_are_errors_naming_the_path() {
    let server = Server::start().await;
    assert_eq!(
        value(&server, "/value", "$.data.missing").await,
        Err(
            "unexpected answer from the web endpoint: jsonPath $.data.missing selected nothing in the answer"
                .into()
        )
    );
    assert_eq!(
        value(&server, "/many", "$.items[*].v").await,
        Err("jsonPath selected 3 nodes, expected 1: $['items'][0]['v'], $['items'][1]['v'], $['items'][2]['v']"
            .into())
    );
    assert_eq!(
        value(&server, "/word", "$.v").await,
        Err(
            "unexpected answer from the web endpoint: jsonPath $.v selected a string, not a number: \"fast\""
                .into()
        )
    );
    assert_eq!(
        value(&server, "/html", "$.v").await,
        Err("unexpected answer from the web endpoint: an answer that is not JSON: <html><body>Sign in</body></html>"
            .into())
    );
}

#[tokio::test]
async fn http_failures_are_classified() {
    let server = Server::start().await;
    assert_eq!(
        value(&server, "/nowhere", "$.v").await,
        Err("web endpoint rejected the request: HTTP 404 Not Found: no such metric".into())
    );
    assert_eq!(value(&server, "/500", "$.v").await, Err("web endpoint answered HTTP 500: boom".into()));
}

#[tokio::test]
async fn a_slow_endpoint_times_out_at_the_metric_timeout() {
    let server = Server::start().await;
    let started = std::time::Instant::now();
    let measurement =
        measure(serde_json::json!({"url": server.url("/slow"), "jsonPath": "$.v", "timeout": "300ms"})).await;
    assert_eq!(
        measurement.error.as_deref(),
        Some(
            format!("web endpoint request timed out: no answer from {} within 300ms", server.url("/slow"))
                .as_str()
        )
    );
    assert!(started.elapsed() < Duration::from_secs(2), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn a_down_endpoint_is_unreachable() {
    let address = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let measurement = measure(
        serde_json::json!({"url": format!("http://{address}/v?q={{{{args.q}}}}"), "jsonPath": "$.v"}),
    )
    .await;
    let error = measurement.error.unwrap();
    // The query string, which holds the args, stays out of the message.
    assert!(error.starts_with(&format!("web endpoint at http://{address}/v is unreachable: ")), "{error}");
}

const HOSTILE: &str = "a&b=c#d/e\"f\ng";

#[tokio::test]
async fn args_arrive_escaped_in_the_url_and_the_body() {
    let server = Server::start().await;
    let web = serde_json::json!({
        "url": server.url("/echo?rev={{revision}}&q={{args.q}}"),
        "method": "POST",
        "body": r#"{"query": "rate({{args.q}})", "revision": "{{canary.revision}}"}"#,
        "jsonPath": "$.v",
    });
    let measurement =
        pool_for(&web).measure(&metric(web.clone()), &vars(HOSTILE), &ResolvedAuth::default(), at()).await;
    assert_eq!((measurement.value, measurement.error), (Some(1.0), None));
    let [received] = server.received().try_into().unwrap();
    assert_eq!(received.method, "POST");
    assert_eq!(received.target, "/echo?rev=abc123&q=a%26b%3Dc%23d%2Fe%22f%0Ag");
    let body: serde_json::Value = serde_json::from_str(&received.body).unwrap();
    assert_eq!(body, serde_json::json!({"query": format!("rate({HOSTILE})"), "revision": "abc123"}));
    let content_type = received.headers.iter().find(|(name, _)| name == "content-type");
    assert_eq!(content_type.map(|(_, value)| value.as_str()), Some("application/json"));
}

#[tokio::test]
async fn headers_read_from_a_secret_reach_the_endpoint() {
    let server = Server::start().await;
    let apiserver = TestApiServer::start().await;
    let client = apiserver.client();
    let secret: k8s_openapi::api::core::v1::Secret = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "slo-api", "namespace": "shop"},
        "stringData": {"token": "Bearer s3cret\n"},
    }))
    .unwrap();
    kube::Api::<k8s_openapi::api::core::v1::Secret>::namespaced(client.clone(), "shop")
        .create(&Default::default(), &secret)
        .await
        .unwrap();
    let web = serde_json::json!({
        "url": server.url("/echo"),
        "jsonPath": "$.v",
        "headers": [
            {"name": "Authorization", "valueFrom": {"name": "slo-api", "key": "token"}},
            {"name": "X-Scope-OrgID", "value": "team-a"},
        ],
    });
    let pool = pool_for(&web);
    let metric = metric(web);
    let provider = Provider::of(&metric).unwrap();

    // A written value needs no Secret, so a template of written headers alone reads none.
    let literal = metric_with_headers(&metric, |header| header.value.is_some());
    let auth = resolve_auth(&client, "shop", &ReadableSecrets::default(), Provider::of(&literal).unwrap())
        .await
        .unwrap();
    assert_eq!(auth.headers, [("X-Scope-OrgID".to_owned(), "team-a".to_owned())]);

    let refused = resolve_auth(&client, "shop", &ReadableSecrets::default(), provider).await.unwrap_err();
    assert!(refused.to_string().contains("is not among the Secrets Bellwether was granted"), "{refused}");

    let readable = ReadableSecrets::new([("shop".to_owned(), "slo-api".to_owned())]);
    let auth = resolve_auth(&client, "shop", &readable, provider).await.unwrap();
    let measurement = pool.measure(&metric, &vars("v"), &auth, at()).await;
    assert_eq!((measurement.value, measurement.error), (Some(1.0), None));
    let [received] = server.received().try_into().unwrap();
    let header = |wanted: &str| {
        let found = received.headers.iter().find(|(name, _)| name == wanted);
        found.map(|(_, value)| value.clone())
    };
    assert_eq!(header("authorization").as_deref(), Some("Bearer s3cret"));
    assert_eq!(header("x-scope-orgid").as_deref(), Some("team-a"));
}

/// `metric` with only the web headers `keep` keeps.
fn metric_with_headers(
    metric: &bellwether::api::Metric,
    keep: impl Fn(&bellwether::api::HeaderFromSecret) -> bool,
) -> bellwether::api::Metric {
    let mut metric = metric.clone();
    let web = metric.provider.web.as_mut().expect("a web metric");
    web.headers.retain(keep);
    metric
}

#[tokio::test]
async fn a_web_metric_that_cannot_render_names_the_field() {
    let measurement =
        measure(serde_json::json!({"url": "http://127.0.0.1:1/{{args.q}}", "jsonPath": "$.v"})).await;
    let error = measurement.error.unwrap();
    assert!(
        error.starts_with("provider.web.url: {{args.q}} at byte 19 is not in the URL's query string"),
        "{error}"
    );
}

/// A web metric reads only what the controller's operator allows: anything else is refused before
/// a request is made, without the query string (its args) in the message.
#[tokio::test]
async fn a_url_the_controller_does_not_allow_is_never_requested() {
    let server = Server::start().await;
    let web = serde_json::json!({"url": server.url("/v?token={{args.q}}"), "jsonPath": "$.v"});
    for pool in
        [Providers::new(4), Providers::with_web_allowed(4, vec![Url::parse("http://127.0.0.1:1/").unwrap()])]
    {
        let measurement =
            pool.measure(&metric(web.clone()), &vars("s3cret"), &ResolvedAuth::default(), at()).await;
        let error = measurement.error.expect("refused");
        assert!(error.contains("is not under a URL prefix this controller allows"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }
    assert!(server.received().is_empty(), "no request was made");
    let with_credentials = serde_json::json!({"url": server.url("/v").replacen("http://", "http://u:pw@", 1), "jsonPath": "$.v"});
    let error = measure(with_credentials).await.error.expect("refused");
    assert!(error.contains("must not hold credentials"), "{error}");
}

#[test]
fn a_prefix_allows_its_own_paths_and_no_neighbours() {
    let prefix = Url::parse("https://slo.example.com/api").unwrap();
    for (url, allowed) in [
        ("https://slo.example.com/api", true),
        ("https://slo.example.com/api/errors?q=1", true),
        ("https://slo.example.com:443/api/x", true),
        ("https://slo.example.com/apiary", false),
        ("https://slo.example.com/", false),
        ("http://slo.example.com/api/x", false),
        ("https://slo.example.com:8443/api/x", false),
        ("https://slo.example.com.evil.test/api/x", false),
    ] {
        assert_eq!(under(&Url::parse(url).unwrap(), &prefix), allowed, "{url}");
    }
    let root = Url::parse("http://127.0.0.1:9000").unwrap();
    assert!(under(&Url::parse("http://127.0.0.1:9000/anything").unwrap(), &root));
}
