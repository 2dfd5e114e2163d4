//! The HTTP plumbing shared by Bellwether's servers: a tiny router and an accept loop with
//! graceful shutdown, over hyper's HTTP/1 server, in plain text or over TLS.

use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use futures::future::BoxFuture;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{ALLOW, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

/// A response with its whole body in memory: every endpoint here answers with a small text.
pub(crate) type Response = hyper::Response<Full<Bytes>>;

/// The content type of plain-text answers.
pub(crate) const TEXT: &str = "text/plain; charset=utf-8";

/// How long a client may take to send a request's headers. Bounds how long a stalled client can
/// keep a connection (and so a graceful shutdown) waiting.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a client may take to complete the TLS handshake, for the same reason.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long to wait before accepting again after an error that is not about one connection (such
/// as running out of file descriptors), so that the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(500);

/// What answers a route: a read-only endpoint computes its answer from nothing, while an endpoint
/// that takes data gets the whole request and the address of the client that sent it.
#[derive(Clone)]
enum Handler {
    Read(Arc<dyn Fn() -> Response + Send + Sync>),
    Take(TakeHandler),
}

/// Maps request paths to handlers. Unknown paths get the fallback, or 404 without one; known paths
/// with a method they do not take get 405 with an `Allow` header.
#[derive(Default)]
pub(crate) struct Router {
    routes: Vec<Route>,
    fallback: Option<TakeHandler>,
}

type TakeHandler = Arc<dyn Fn(Request<Incoming>, SocketAddr) -> BoxFuture<'static, Response> + Send + Sync>;

struct Route {
    path: &'static str,
    methods: &'static [Method],
    handler: Handler,
}

impl Router {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds a read-only endpoint. It answers GET and HEAD; hyper leaves out the body for HEAD.
    pub(crate) fn get(
        mut self,
        path: &'static str,
        handler: impl Fn() -> Response + Send + Sync + 'static,
    ) -> Self {
        const READ: &[Method] = &[Method::GET, Method::HEAD];
        self.routes.push(Route { path, methods: READ, handler: Handler::Read(Arc::new(handler)) });
        self
    }

    /// Adds an endpoint that takes data by POST. The handler reads the body itself, so that it
    /// decides how much of it to read, and after which checks.
    pub(crate) fn post<F>(
        self,
        path: &'static str,
        handler: impl Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    ) -> Self
    where
        F: Future<Output = Response> + Send + 'static,
    {
        self.take(path, &[Method::POST], handler)
    }

    /// Adds an endpoint that changes part of a resource by PATCH, reading the body itself as a
    /// [`Self::post`] endpoint does.
    pub(crate) fn patch<F>(
        self,
        path: &'static str,
        handler: impl Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    ) -> Self
    where
        F: Future<Output = Response> + Send + 'static,
    {
        self.take(path, &[Method::PATCH], handler)
    }

    /// Answers every path no route names, whatever its method.
    pub(crate) fn fallback<F>(
        mut self,
        handler: impl Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    ) -> Self
    where
        F: Future<Output = Response> + Send + 'static,
    {
        self.fallback = Some(Arc::new(move |request, peer| handler(request, peer).boxed()));
        self
    }

    fn take<F>(
        mut self,
        path: &'static str,
        methods: &'static [Method],
        handler: impl Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    ) -> Self
    where
        F: Future<Output = Response> + Send + 'static,
    {
        let handler = Handler::Take(Arc::new(move |request, peer| handler(request, peer).boxed()));
        self.routes.push(Route { path, methods, handler });
        self
    }

    fn respond(&self, request: Request<Incoming>, peer: SocketAddr) -> BoxFuture<'static, Response> {
        // A path may have a route per method, as a resource read by GET and changed by PATCH.
        let on_path: Vec<&Route> =
            self.routes.iter().filter(|route| route.path == request.uri().path()).collect();
        if on_path.is_empty() {
            return match &self.fallback {
                Some(fallback) => fallback(request, peer),
                None => {
                    futures::future::ready(plain_text(StatusCode::NOT_FOUND, TEXT, "not found\n".to_owned()))
                        .boxed()
                }
            };
        }
        if let Some(route) = on_path.iter().find(|route| route.methods.contains(request.method())) {
            return match &route.handler {
                Handler::Read(handler) => futures::future::ready(handler()).boxed(),
                Handler::Take(handler) => handler(request, peer),
            };
        }
        let allow =
            on_path.iter().flat_map(|route| route.methods).map(Method::as_str).collect::<Vec<_>>().join(", ");
        let mut response =
            plain_text(StatusCode::METHOD_NOT_ALLOWED, TEXT, "method not allowed\n".to_owned());
        if let Ok(allow) = HeaderValue::from_str(&allow) {
            response.headers_mut().insert(ALLOW, allow);
        }
        futures::future::ready(response).boxed()
    }
}

/// A response with `status`, a text `body` and its content type.
pub(crate) fn plain_text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

/// Serves `router` on `listener` until `shutdown` completes. Then it stops accepting, asks every
/// open connection to close once its request in flight (if any) is answered, and returns when all
/// have closed.
pub(crate) async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    accept(listener, router, None, shutdown).await
}

/// Serves `router` over TLS, as [`serve`] does in plain text. Each connection is accepted with the
/// configuration `tls` holds when it comes in, so that a new certificate takes effect without a
/// restart. A client that does not complete the handshake reaches no handler.
pub(crate) async fn serve_tls(
    listener: TcpListener,
    router: Router,
    tls: watch::Receiver<Arc<ServerConfig>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    accept(listener, router, Some(tls), shutdown).await
}

async fn accept(
    listener: TcpListener,
    router: Router,
    tls: Option<watch::Receiver<Arc<ServerConfig>>>,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let address = listener.local_addr()?;
    tracing::info!(%address, tls = tls.is_some(), "serving HTTP");
    let router = Arc::new(router);
    let (stop, stopping) = watch::channel(false);
    let mut connections = JoinSet::new();
    let mut shutdown = pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let router = Arc::clone(&router);
                    let stopping = stopping.clone();
                    match &tls {
                        None => connections.spawn(connection(stream, peer, router, stopping)),
                        Some(tls) => {
                            let config = Arc::clone(&tls.borrow());
                            connections.spawn(tls_connection(stream, config, peer, router, stopping))
                        }
                    };
                }
                Err(error) if is_connection_error(&error) => {
                    tracing::debug!(%address, %error, "a connection failed before it was accepted");
                }
                Err(error) => {
                    tracing::warn!(%address, %error, "cannot accept connections; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                }
            },
            // Reaps finished connections, so that a long-running server does not accumulate them.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    stop.send_replace(true);
    while connections.join_next().await.is_some() {}
    tracing::info!(%address, "HTTP server stopped");
    Ok(())
}

/// Errors that concern one incoming connection, not the listener: accepting again right away is
/// the right answer.
fn is_connection_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionRefused
            | io::ErrorKind::Interrupted
    )
}

/// Completes the TLS handshake, then serves the connection; gives up on a client that takes too
/// long, or when the server is stopping.
async fn tls_connection(
    stream: TcpStream,
    config: Arc<ServerConfig>,
    peer: SocketAddr,
    router: Arc<Router>,
    stopping: watch::Receiver<bool>,
) {
    let handshake = tokio::time::timeout(HANDSHAKE_TIMEOUT, TlsAcceptor::from(config).accept(stream));
    let stream = tokio::select! {
        done = handshake => match done {
            Ok(Ok(stream)) => stream,
            Ok(Err(error)) => {
                tracing::debug!(%peer, %error, "TLS handshake failed");
                return;
            }
            Err(_) => {
                tracing::debug!(%peer, "TLS handshake timed out");
                return;
            }
        },
        () = stopped(stopping.clone()) => return,
    };
    connection(stream, peer, router, stopping).await;
}

async fn connection(
    stream: impl AsyncRead + AsyncWrite + Unpin + Send + 'static,
    peer: SocketAddr,
    router: Arc<Router>,
    stopping: watch::Receiver<bool>,
) {
    let service = service_fn(move |request: Request<Incoming>| {
        let response = router.respond(request, peer);
        async move { Ok::<_, Infallible>(response.await) }
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
    let mut conn = pin!(builder.serve_connection(TokioIo::new(stream), service));
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stopped(stopping) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(error) = result {
        tracing::debug!(%error, "HTTP connection ended with an error");
    }
}

/// Completes once the server is stopping (or gone).
async fn stopped(mut stopping: watch::Receiver<bool>) {
    let _ = stopping.wait_for(|stopped| *stopped).await;
}
