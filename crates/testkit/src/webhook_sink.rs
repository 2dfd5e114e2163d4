//! A webhook receiver on 127.0.0.1 for the notification tests: it records every request it is
//! sent, before answering each as scripted.

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::Value;
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// How the sink answers one request.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Status(u16),
    /// Never answers, as a webhook that hangs.
    Silence,
}

/// One request the sink was sent.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub body: Value,
}

pub struct Sink {
    address: SocketAddr,
    received: Arc<Mutex<Vec<Received>>>,
    task: JoinHandle<()>,
}

struct Script {
    first: VecDeque<Answer>,
    then: Answer,
}

impl Sink {
    /// A sink that answers its first requests with `first`, in order, and every later one with
    /// `then`.
    pub async fn start(first: Vec<Answer>, then: Answer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind 127.0.0.1:0");
        let address = listener.local_addr().expect("the sink's address");
        let received = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(Script { first: first.into(), then }));
        let log = received.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (log, script) = (log.clone(), script.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |request| answer(request, log.clone(), script.clone()));
                    let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
                });
            }
        });
        Self { address, received, task }
    }

    /// The URL of `path` on this sink.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    /// Every request so far, in the order they came.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn answer(
    request: Request<hyper::body::Incoming>,
    log: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<Script>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = request.uri().path().to_string();
    let bytes = request.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    log.lock().unwrap().push(Received { path, body });
    let next = {
        let mut script = script.lock().unwrap();
        let then = script.then;
        script.first.pop_front().unwrap_or(then)
    };
    match next {
        Answer::Status(code) => {
            let mut response = Response::new(Full::new(Bytes::new()));
            *response.status_mut() = StatusCode::from_u16(code).expect("a valid status code");
            Ok(response)
        }
        Answer::Silence => std::future::pending().await,
    }
}
