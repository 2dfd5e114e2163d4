//! A counting proxy in front of a real Prometheus: it forwards every request as it came and
//! remembers when each query arrived and what it asked, so that the bench can say how many queries
//! each measurement cost and how they spread over time.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio::net::TcpListener;

/// One query as it reached the proxy: when, and its request target and body, where the rendered
/// query (and so the revision it names) can be found.
#[derive(Clone)]
pub struct Query {
    pub at: Instant,
    pub asked: String,
}

/// The proxy's address and what it has seen.
pub struct Proxy {
    pub address: String,
    seen: Arc<Mutex<Vec<Query>>>,
}

impl Proxy {
    /// Starts forwarding to `upstream` (such as `http://127.0.0.1:9090`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binding the proxy");
        let address = format!("http://{}", listener.local_addr().expect("a bound address"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, upstream) = (seen.clone(), upstream.trim_end_matches('/').to_string());
        let client = reqwest::Client::new();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else { continue };
                let (log, upstream, client) = (log.clone(), upstream.clone(), client.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| {
                        forward(request, log.clone(), upstream.clone(), client.clone())
                    });
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Self { address, seen }
    }

    /// Every query seen so far.
    pub fn queries(&self) -> Vec<Query> {
        self.seen.lock().unwrap().clone()
    }
}

async fn forward(
    request: Request<Incoming>,
    log: Arc<Mutex<Vec<Query>>>,
    upstream: String,
    client: reqwest::Client,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_string();
    if parts.uri.path().starts_with("/api/v1/query") {
        let asked = format!("{target} {}", String::from_utf8_lossy(&body));
        log.lock().unwrap().push(Query { at, asked });
    }
    let mut forwarded = client.request(parts.method, format!("{upstream}{target}")).body(body);
    if let Some(content_type) = parts.headers.get(hyper::header::CONTENT_TYPE) {
        forwarded = forwarded.header(hyper::header::CONTENT_TYPE, content_type);
    }
    let answer = match forwarded.send().await {
        Ok(answer) => {
            let mut response = Response::builder().status(answer.status());
            if let Some(content_type) = answer.headers().get(hyper::header::CONTENT_TYPE) {
                response = response.header(hyper::header::CONTENT_TYPE, content_type);
            }
            response.body(Full::new(answer.bytes().await.unwrap_or_default()))
        }
        Err(error) => Response::builder().status(502).body(Full::new(Bytes::from(error.to_string()))),
    };
    Ok(answer.expect("a valid response"))
}
