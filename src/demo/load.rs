//! A load generator: GET requests to one URL at a steady rate, open loop, so that a slow or failing
//! target gets the same requests per second as a healthy one, as real users keep arriving. Rates
//! computed by Prometheus over the target's counters then reflect the configured rate, whatever
//! the target's latency.
//!
//! Requests go out on hyper's connection-level client over a small pool of kept-alive connections,
//! in plain HTTP (a Gateway's listener, or the app itself). The end-to-end suite runs several
//! generators at 200 requests a second at once in a debug build, where reqwest's layers cost 60%
//! more CPU per request than this.

use http_body_util::{BodyExt, Empty};
use hyper::Request;
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};

/// The highest rate taken, in requests per second; more is a load test, not a demo.
pub const MAX_RATE: f64 = 10_000.0;
/// How often requests are sent: the ones due since the last tick go out together.
const TICK: Duration = Duration::from_millis(10);
/// Requests waiting for an answer at most; past that, due requests are dropped and counted, so that
/// a target that stopped answering does not pile up connections without bound.
const MAX_IN_FLIGHT: usize = 1024;
/// Longer than the demo app holds any request (one minute at most), so that its latency is never
/// counted as a failure.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(70);

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("rate {0} is not a number of requests per second above 0 and at most {MAX_RATE}")]
    Rate(f64),
    #[error("{0} is not an http:// URL with a host (HTTPS is not sent: aim at a plain HTTP listener)")]
    Url(String),
}

/// What the requests sent so far got.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Answered with 2xx.
    pub ok: u64,
    /// Answered with any other status.
    pub failed: u64,
    /// No answer: refused, reset or timed out.
    pub unanswered: u64,
    /// Not sent, because too many requests were waiting for an answer.
    pub dropped: u64,
}

impl Tally {
    /// The difference from an earlier tally: what happened in between.
    pub fn since(self, earlier: Tally) -> Tally {
        Tally {
            ok: self.ok - earlier.ok,
            failed: self.failed - earlier.failed,
            unanswered: self.unanswered - earlier.unanswered,
            dropped: self.dropped - earlier.dropped,
        }
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} ok, {} failed, {} unanswered, {} dropped",
            self.ok, self.failed, self.unanswered, self.dropped
        )
    }
}

#[derive(Default)]
struct Counts {
    ok: AtomicU64,
    failed: AtomicU64,
    unanswered: AtomicU64,
    dropped: AtomicU64,
}

/// Load running on the runtime that started it, until dropped; requests in flight are abandoned
/// then.
pub struct Load {
    counts: Arc<Counts>,
    task: JoinHandle<()>,
}

impl Load {
    /// Starts sending GET `url` `rate` times a second.
    pub fn start(url: &str, rate: f64) -> Result<Self, LoadError> {
        Self::start_with_limit(url, rate, MAX_IN_FLIGHT)
    }

    /// [`Self::start`], with at most `max_in_flight` requests waiting for an answer.
    fn start_with_limit(url: &str, rate: f64, max_in_flight: usize) -> Result<Self, LoadError> {
        if !(rate > 0.0 && rate <= MAX_RATE) {
            return Err(LoadError::Rate(rate));
        }
        let target = Target::parse(url).ok_or_else(|| LoadError::Url(url.to_owned()))?;
        let counts = Arc::new(Counts::default());
        let task = tokio::spawn(send(Arc::new(target), rate, max_in_flight, Arc::clone(&counts)));
        Ok(Self { counts, task })
    }

    /// What the requests sent so far got.
    pub fn tally(&self) -> Tally {
        let read = |count: &AtomicU64| count.load(Ordering::Relaxed);
        Tally {
            ok: read(&self.counts.ok),
            failed: read(&self.counts.failed),
            unanswered: read(&self.counts.unanswered),
            dropped: read(&self.counts.dropped),
        }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Where the requests go: the address to connect to, the `Host` header, and the path.
struct Target {
    address: String,
    host: hyper::header::HeaderValue,
    path: hyper::Uri,
    /// Connections with no request on them, kept open for the next ones.
    idle: Mutex<Vec<SendRequest<Empty<Bytes>>>>,
}

impl Target {
    fn parse(url: &str) -> Option<Self> {
        let uri: hyper::Uri = url.parse().ok()?;
        if uri.scheme_str() != Some("http") {
            return None;
        }
        let authority = uri.authority()?;
        let address = format!("{}:{}", authority.host(), authority.port_u16().unwrap_or(80));
        let host = authority.as_str().parse().ok()?;
        // The request line names the path alone (origin form), as browsers and proxies send it.
        let path = uri.path_and_query().map_or("/", |p| p.as_str()).parse().ok()?;
        Some(Self { address, host, path, idle: Mutex::new(Vec::new()) })
    }

    /// One GET, on an idle connection or a new one; the connection is kept if it can serve more.
    async fn get(&self) -> Result<bool, Box<dyn std::error::Error + Send + Sync>> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        let mut sender = match idle {
            Some(sender) if !sender.is_closed() => sender,
            _ => self.connect().await?,
        };
        sender.ready().await?;
        let request = Request::get(self.path.clone())
            .header(hyper::header::HOST, self.host.clone())
            .body(Empty::new())?;
        let response = sender.send_request(request).await?;
        let ok = response.status().is_success();
        // Reads the body, so that the connection can take the next request.
        response.into_body().collect().await?;
        self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(sender);
        Ok(ok)
    }

    async fn connect(&self) -> Result<SendRequest<Empty<Bytes>>, Box<dyn std::error::Error + Send + Sync>> {
        let stream = TcpStream::connect(&self.address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream)).await?;
        // Ends when the connection closes, or once its sender is dropped.
        tokio::spawn(connection);
        Ok(sender)
    }
}

/// Sends the requests due by the elapsed time at each tick, so that the rate holds on average even
/// when a tick comes late.
async fn send(target: Arc<Target>, rate: f64, max_in_flight: usize, counts: Arc<Counts>) {
    let mut in_flight = JoinSet::new();
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut sent: u64 = 0;
    loop {
        ticks.tick().await;
        while in_flight.try_join_next().is_some() {}
        let due = (started.elapsed().as_secs_f64() * rate) as u64;
        while sent < due {
            sent += 1;
            if in_flight.len() >= max_in_flight {
                counts.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let target = Arc::clone(&target);
            let counts = Arc::clone(&counts);
            in_flight.spawn(async move {
                let count = match tokio::time::timeout(REQUEST_TIMEOUT, target.get()).await {
                    Ok(Ok(true)) => &counts.ok,
                    Ok(Ok(false)) => &counts.failed,
                    Ok(Err(_)) | Err(_) => &counts.unanswered,
                };
                count.fetch_add(1, Ordering::Relaxed);
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Load;
    use std::time::Duration;

    /// A target that takes connections and never answers: once the limit of requests wait for it,
    /// the ones due are dropped and counted, not piled up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn requests_past_the_in_flight_limit_are_dropped() {
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/", silent.local_addr().unwrap());
        let held = tokio::spawn(async move {
            let mut connections = Vec::new();
            while let Ok((stream, _)) = silent.accept().await {
                connections.push(stream);
            }
        });
        let load = Load::start_with_limit(&url, 200.0, 4).expect("a valid load");
        for _ in 0..600 {
            if load.tally().dropped >= 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let tally = load.tally();
        assert!(tally.dropped >= 20, "{tally:?}");
        assert_eq!((tally.ok, tally.failed, tally.unanswered), (0, 0, 0), "{tally:?}");
        held.abort();
    }
}
