//! A stand-in for Datadog's metrics query API, version 1 (`GET /api/v1/query`), on 127.0.0.1, for
//! the tests of the `datadog` metric provider.
//!
//! It is not Datadog, and runs no Datadog query: no Datadog can be reached from the tests, so this
//! server implements the request and answer shapes Datadog documents for that endpoint, and answers
//! each query string with the series a test registered for it. What it checks and answers:
//!
//! - the `DD-API-KEY` and `DD-APPLICATION-KEY` headers, which must hold the keys it was started
//!   with: otherwise 403 with `{"errors": ["Forbidden"]}`;
//! - the `from`, `to` (Unix seconds, `from` before `to`) and `query` parameters: a missing or
//!   invalid one is a 400 with `{"errors": [...]}`;
//! - a registered query: `{"status": "ok", "series": [...]}`, each series with its `pointlist` of
//!   `[milliseconds, value or null]` in the range asked for, its `interval`, `start`, `end`,
//!   `scope` and `tag_set`; an unregistered one has no series. A query can instead be rejected (a
//!   400 with its `errors`) or fail in a successful answer (`{"status": "error", "error": ...}`);
//! - and, when told to, every request: a 429 with `X-RateLimit-*` headers, a 5xx, an HTML page, or
//!   no answer at all.

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// The points of a series.
#[derive(Clone, Debug)]
pub enum Points {
    /// These points, `(Unix seconds, value or null)`; those in the range asked for are answered.
    At(Vec<(i64, Option<f64>)>),
    /// One point of `value` for every bucket of `interval` seconds in the range asked for, aligned
    /// to Unix time as Datadog aligns its rollups.
    Constant(f64),
}

/// One series of an answer.
#[derive(Clone, Debug)]
pub struct Series {
    /// The tags that set this series apart, as `key:value`: what a `by {…}` groups by.
    pub tag_set: Vec<String>,
    /// The seconds each point's bucket spans.
    pub interval: i64,
    pub points: Points,
}

impl Series {
    /// A series without tags, a point every `interval` seconds.
    pub fn new(interval: i64, points: Points) -> Self {
        Self { tag_set: Vec::new(), interval, points }
    }

    /// The series' points from `from` to `to`, in milliseconds, oldest first.
    fn pointlist(&self, from: i64, to: i64) -> Vec<Value> {
        let in_range = |at: &i64| (from..=to).contains(at);
        match &self.points {
            Points::At(points) => points
                .iter()
                .filter(|(at, _)| in_range(at))
                .map(|(at, value)| json!([at * 1000, value]))
                .collect(),
            Points::Constant(value) => {
                let first = from.div_euclid(self.interval) * self.interval;
                (0..)
                    .map(|i| first + i * self.interval)
                    .take_while(|at| *at <= to)
                    .map(|at| json!([at * 1000, value]))
                    .collect()
            }
        }
    }
}

/// What the stand-in answers a registered query.
#[derive(Clone, Debug)]
enum Answer {
    Series(Vec<Series>),
    /// A 400 with these `errors`, as to a query Datadog cannot parse.
    Rejected(Vec<String>),
    /// A successful status whose body says `"status": "error"`.
    Failed(String),
}

/// How the stand-in answers every request, whatever it asks, until told otherwise.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// 429, with `X-RateLimit-Limit: 100`, `X-RateLimit-Period: 3600`, `X-RateLimit-Remaining: 0`
    /// and `X-RateLimit-Reset` of these seconds.
    RateLimited { reset: u64 },
    /// This 5xx status, with `{"errors": ["Internal Server Error"]}`.
    ServerError(u16),
    /// 200 with an HTML page, as a proxy's sign-in page.
    Html,
    /// No answer at all.
    Hang,
}

/// One request the stand-in was sent, its parameters decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    pub path: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub query: Option<String>,
    pub api_key: Option<String>,
    pub application_key: Option<String>,
}

#[derive(Default)]
struct State {
    answers: HashMap<String, Answer>,
    fault: Option<Fault>,
    received: Vec<Received>,
}

pub struct Datadog {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl Datadog {
    /// A stand-in that accepts only these keys.
    pub async fn start(api_key: &str, application_key: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("the stand-in's address");
        let state = Arc::new(Mutex::new(State::default()));
        let keys = Arc::new((api_key.to_owned(), application_key.to_owned()));
        let shared = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, keys) = (shared.clone(), keys.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(request, state.clone(), keys.clone()));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Self { address, state, task }
    }

    /// The stand-in's address, as a `datadog` metric's `address`.
    pub fn address(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Answers `query`, exactly as sent, with `series`.
    pub fn serve(&self, query: &str, series: Vec<Series>) {
        self.state.lock().unwrap().answers.insert(query.to_owned(), Answer::Series(series));
    }

    /// Answers `query` with a 400 and these `errors`.
    pub fn reject(&self, query: &str, errors: &[&str]) {
        let errors = errors.iter().map(ToString::to_string).collect();
        self.state.lock().unwrap().answers.insert(query.to_owned(), Answer::Rejected(errors));
    }

    /// Answers `query` with a successful status and `{"status": "error", "error": error}`.
    pub fn fail(&self, query: &str, error: &str) {
        self.state.lock().unwrap().answers.insert(query.to_owned(), Answer::Failed(error.to_owned()));
    }

    /// Answers every request with `fault` from now on, or as registered again with `None`.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.state.lock().unwrap().fault = fault;
    }

    /// Every request so far, in the order they came.
    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

impl Drop for Datadog {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(StatusCode::from_u16(status).expect("a valid status"))
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

fn errors(status: u16, errors: &[String]) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "errors": errors }))
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    state: Arc<Mutex<State>>,
    keys: Arc<(String, String)>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let url = reqwest::Url::parse(&format!("http://stand-in{}", request.uri())).expect("a request target");
    let parameter = |name: &str| url.query_pairs().find(|(key, _)| key == name).map(|(_, v)| v.into_owned());
    let header = |name: &str| request.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let received = Received {
        path: url.path().to_owned(),
        from: parameter("from"),
        to: parameter("to"),
        query: parameter("query"),
        api_key: header("dd-api-key"),
        application_key: header("dd-application-key"),
    };
    let (fault, registered) = {
        let mut state = state.lock().unwrap();
        state.received.push(received.clone());
        let registered = received.query.as_ref().and_then(|query| state.answers.get(query).cloned());
        (state.fault, registered)
    };
    match fault {
        Some(Fault::Hang) => return Ok(std::future::pending().await),
        Some(Fault::RateLimited { reset }) => {
            let mut response = errors(429, &["Too many requests".into()]);
            let headers = response.headers_mut();
            for (name, value) in [
                ("x-ratelimit-limit", "100".to_owned()),
                ("x-ratelimit-period", "3600".to_owned()),
                ("x-ratelimit-remaining", "0".to_owned()),
                ("x-ratelimit-reset", reset.to_string()),
                ("x-ratelimit-name", "metrics_query".to_owned()),
            ] {
                headers.insert(name, value.parse().expect("a header value"));
            }
            return Ok(response);
        }
        Some(Fault::ServerError(status)) => return Ok(errors(status, &["Internal Server Error".into()])),
        Some(Fault::Html) => {
            let page = "<html><head><title>Sign in</title></head><body>Sign in</body></html>";
            let response = Response::builder()
                .status(200)
                .header("content-type", "text/html")
                .body(Full::new(Bytes::from(page)))
                .expect("a valid response");
            return Ok(response);
        }
        None => {}
    }
    if received.path != "/api/v1/query" {
        return Ok(errors(404, &["Not found".into()]));
    }
    if received.api_key.as_deref() != Some(keys.0.as_str())
        || received.application_key.as_deref() != Some(keys.1.as_str())
    {
        return Ok(errors(403, &["Forbidden".into()]));
    }
    let seconds = |name: &str, value: &Option<String>| match value.as_deref().map(str::parse::<i64>) {
        Some(Ok(seconds)) => Ok(seconds),
        Some(Err(_)) => {
            Err(format!("Invalid value for parameter '{name}': an integer of Unix seconds is expected"))
        }
        None => Err(format!("Missing required parameter '{name}'")),
    };
    let (from, to, query) =
        match (seconds("from", &received.from), seconds("to", &received.to), &received.query) {
            (Err(error), _, _) | (_, Err(error), _) => return Ok(errors(400, &[error])),
            (_, _, None) => return Ok(errors(400, &["Missing required parameter 'query'".into()])),
            (Ok(from), Ok(to), _) if from >= to => {
                return Ok(errors(400, &["The 'from' parameter must be before 'to'".into()]));
            }
            (Ok(from), Ok(to), Some(query)) => (from, to, query.clone()),
        };
    let series = match registered {
        Some(Answer::Rejected(messages)) => return Ok(errors(400, &messages)),
        Some(Answer::Failed(error)) => {
            return Ok(json_response(200, &json!({"status": "error", "error": error, "query": query})));
        }
        Some(Answer::Series(series)) => series,
        None => Vec::new(),
    };
    let series: Vec<Value> = series
        .iter()
        .map(|series| {
            let pointlist = series.pointlist(from, to);
            let first = pointlist.first().and_then(|p| p[0].as_i64());
            let last = pointlist.last().and_then(|p| p[0].as_i64());
            json!({
                "metric": query,
                "display_name": query,
                "expression": query,
                "scope": if series.tag_set.is_empty() { "*".to_owned() } else { series.tag_set.join(",") },
                "tag_set": series.tag_set,
                "aggr": null,
                "unit": null,
                "query_index": 0,
                "interval": series.interval,
                "length": pointlist.len(),
                "start": first,
                "end": last.map(|last| last + series.interval * 1000 - 1000),
                "pointlist": pointlist,
                "attributes": {},
            })
        })
        .collect();
    Ok(json_response(
        200,
        &json!({
            "status": "ok",
            "res_type": "time_series",
            "resp_version": 1,
            "query": query,
            "from_date": from * 1000,
            "to_date": to * 1000,
            "group_by": [],
            "message": "",
            "series": series,
        }),
    ))
}
