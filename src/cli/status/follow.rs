//! Following one object through the API server for as long as a pipeline waits on it: one read,
//! then a watch of that object alone, started again whenever it ends or fails.
//!
//! A pipeline that waits 45 minutes sees the API server restart, drop connections and answer 500
//! now and then; none of that may fail the deploy. What cannot pass by waiting (a refusal, a
//! resource the server does not serve, an answer that is not the object) ends the follow at once.
//!
//! - A failure that may pass (no connection, no answer, 429, 5xx, a broken stream) is handed to the
//!   caller, who decides whether to give up, and the next call reads the object again after a
//!   backoff (kube's watcher backoff: 0.8 s doubling to 30 s, with jitter). It reads rather than
//!   watches again because only a read says for certain that the server answers: a watch that
//!   fails says so in its stream, which a quiet watch that works may not send anything on.
//! - A watch that ends is started again from the last resourceVersion seen, so nothing is missed.
//! - A watch answered 410 Gone (its resourceVersion is too old to resume from) reads the object
//!   again, as a watcher re-lists.

use crate::cli::kube_error::describe;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use kube::api::{Api, WatchEvent, WatchParams};
use kube::runtime::utils::Backoff;
use kube::runtime::watcher::DefaultBackoff;
use serde::de::DeserializeOwned;
use std::fmt::Debug;
use std::time::Duration;

/// How long the server keeps one watch open before the follow starts another: under the
/// five-minute limit API servers put on watches.
const WATCH_SECONDS: u32 = 290;

/// The pause before a watch that ended normally is started again, so that a server that ends
/// watches at once is asked at most twice a second.
const REWATCH: Duration = Duration::from_millis(500);

/// What the follow saw.
#[derive(Debug)]
pub enum Update<K> {
    /// The object as it is now.
    Object(K),
    /// It does not exist (any more).
    Missing,
}

/// A failed request, and whether it may pass.
#[derive(Debug, thiserror::Error)]
#[error("{}", describe(source))]
pub struct FollowError {
    #[source]
    pub source: Box<kube::Error>,
    pub transient: bool,
}

impl From<kube::Error> for FollowError {
    fn from(source: kube::Error) -> Self {
        let transient = is_transient(&source);
        Self { source: Box::new(source), transient }
    }
}

/// Whether another attempt may succeed: the server did not answer, or answered that it could not
/// serve the request now. Any other answer (401, 403, 404, 422, ...) will be the same next time.
pub fn is_transient(error: &kube::Error) -> bool {
    match error {
        kube::Error::Api(status) => matches!(status.code, 408 | 429 | 500..=599),
        kube::Error::HyperError(_) | kube::Error::Service(_) | kube::Error::ReadEvents(_) => true,
        _ => false,
    }
}

/// Where the follow is.
enum State<K> {
    /// The object must be read before it can be watched.
    Read,
    /// Watch from this resourceVersion.
    Watch(String),
    Watching(String, BoxStream<'static, kube::Result<WatchEvent<K>>>),
}

pub struct Follow<K> {
    api: Api<K>,
    name: String,
    state: State<K>,
    backoff: DefaultBackoff,
    /// Wait this long before the next request.
    pause: Option<Duration>,
}

impl<K> Follow<K>
where
    K: kube::Resource + Clone + DeserializeOwned + Debug + Send + 'static,
{
    pub fn new(api: Api<K>, name: &str) -> Self {
        Self {
            api,
            name: name.to_string(),
            state: State::Read,
            backoff: DefaultBackoff::default(),
            pause: None,
        }
    }

    /// The next thing seen: the object after a read or a change, or its absence. A transient error
    /// leaves the follow ready to read again on the next call, after a backoff; after any other,
    /// calling again repeats the request that failed.
    pub async fn next(&mut self) -> Result<Update<K>, FollowError> {
        loop {
            if let Some(pause) = self.pause.take() {
                tokio::time::sleep(pause).await;
            }
            match std::mem::replace(&mut self.state, State::Read) {
                State::Read => match self.api.get_opt(&self.name).await {
                    Ok(Some(object)) => {
                        self.state = State::Watch(object.meta().resource_version.clone().unwrap_or_default());
                        return Ok(Update::Object(object));
                    }
                    Ok(None) => return Ok(Update::Missing),
                    Err(error) => return Err(self.failed(State::Read, error)),
                },
                State::Watch(version) => {
                    let params = WatchParams::default()
                        .fields(&format!("metadata.name={}", self.name))
                        .timeout(WATCH_SECONDS);
                    match self.api.watch(&params, &version).await {
                        Ok(stream) => self.state = State::Watching(version, stream.boxed()),
                        Err(error) => return Err(self.failed(State::Watch(version), error)),
                    }
                }
                State::Watching(version, mut stream) => match stream.try_next().await {
                    Ok(Some(WatchEvent::Added(object) | WatchEvent::Modified(object))) => {
                        self.backoff.reset();
                        let version = object.meta().resource_version.clone().unwrap_or(version);
                        self.state = State::Watching(version, stream);
                        return Ok(Update::Object(object));
                    }
                    Ok(Some(WatchEvent::Deleted(_))) => {
                        self.state = State::Read;
                        return Ok(Update::Missing);
                    }
                    Ok(Some(WatchEvent::Bookmark(bookmark))) => {
                        self.backoff.reset();
                        self.state = State::Watching(bookmark.metadata.resource_version, stream);
                    }
                    // Too old to resume from: read the object again.
                    Ok(Some(WatchEvent::Error(status))) if status.code == 410 => self.state = State::Read,
                    Ok(Some(WatchEvent::Error(status))) => {
                        return Err(self.failed(State::Watch(version), kube::Error::Api(status.boxed())));
                    }
                    Ok(None) => {
                        self.state = State::Watch(version);
                        self.pause = Some(REWATCH);
                    }
                    Err(error) => return Err(self.failed(State::Watch(version), error)),
                },
            }
        }
    }

    /// Notes a request that failed: one that may pass is followed by a read after a backoff; any
    /// other is made again from `retry`, should the caller call again.
    fn failed(&mut self, retry: State<K>, error: kube::Error) -> FollowError {
        let error = FollowError::from(error);
        if error.transient {
            self.state = State::Read;
            self.pause = self.backoff.next();
        } else {
            self.state = retry;
        }
        error
    }
}
