//! The HTTP side: accept loop, connections, routes and the event handler.
//!
//! Connections are served by our own accept loop with hyper's HTTP/1.1 `serve_connection`
//! rather than `axum::serve`, for one reason: "drop connection" has to close the TCP connection
//! without writing a response. Each connection task owns its hyper connection future and a
//! [`ConnectionAbort`] that the handler finds in the request's extensions. To drop, the handler
//! signals the abort and never completes; the connection task sees the signal and drops the
//! connection future, which closes the socket with nothing written. The body has been read by
//! then, so the close is an orderly FIN: the client reads EOF before any response byte (reqwest
//! reports hyper's `IncompleteMessage`), exactly what a crashed or cut-off endpoint looks like.
//!
//! An event request goes through, in order: body read (≤ [`MAX_BODY_BYTES`], else 413) →
//! outage (503) → throttle (429, `Retry-After: 1`) → drop connection → key (401) → body parse
//! (400) → fail rate (`fail_status`) → record → 200. Every answer past the drop pays the injected
//! latency; a 200 pays it after the events are taken, as a slow consumer does, so a client that
//! times out first retries and the receiver sees a duplicate (at-least-once delivery). Injected
//! failures hit only requests that would otherwise have been accepted. See `chaos` for the order
//! of the knobs.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;
use tower_service::Service;

use super::chaos::{Chaos, Verdict};
use super::ingest::parse_request;
use super::record::Recorder;
use super::settings::ReceiveSettings;
use super::stats::{Stats, Tracker};
use super::{ReceiveError, wall_clock_now};

/// Largest request body read; Event Grid's own limit is 1 MB per event and per batch.
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Header carrying the key when `--key` is set (Event Grid's SAS key header).
pub const KEY_HEADER: &str = "aeg-sas-key";
/// How long shutdown waits for in-flight requests before closing their connections.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);
/// Pause after a failed `accept` (e.g. out of file descriptors) before trying again.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_millis(50);

/// Starts receivers. See [`Receiver::start`].
#[derive(Debug, Clone, Copy)]
pub struct Receiver;

impl Receiver {
    /// Validates `settings`, opens the record file, binds `settings.listen` (port 0 picks a
    /// free port) and serves in the background until [`RunningReceiver::shutdown`].
    pub async fn start(settings: ReceiveSettings) -> Result<RunningReceiver, ReceiveError> {
        settings.validate()?;
        let (recorder, record_writer) = match &settings.record {
            Some(path) => {
                let (recorder, writer) = Recorder::open(path).await?;
                (Some(recorder), Some(writer))
            }
            None => (None, None),
        };
        let listener =
            TcpListener::bind(settings.listen)
                .await
                .map_err(|source| ReceiveError::Bind {
                    addr: settings.listen,
                    source,
                })?;
        let addr = listener.local_addr().map_err(|source| ReceiveError::Bind {
            addr: settings.listen,
            source,
        })?;
        let shared = Arc::new(Shared {
            started: Instant::now(),
            key: settings.key.clone(),
            fail_status: StatusCode::from_u16(settings.fail_status)
                .unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            chaos: Chaos::new(&settings),
            tracker: Mutex::new(Tracker::new()),
            recorder,
        });
        // `/stats` answers GET (and HEAD); any other method there is handled as on any other
        // path, so a 405 is counted wherever it is answered.
        let router = Router::new()
            .route("/stats", get(stats).fallback(receive))
            .fallback(receive)
            .with_state(Arc::clone(&shared));
        let (shutdown, shutdown_signal) = watch::channel(());
        let server = tokio::spawn(accept_loop(listener, router, shutdown_signal));
        tracing::info!(%addr, settings = ?settings, "receiver listening");
        Ok(RunningReceiver {
            addr,
            shared,
            shutdown,
            server,
            record_writer,
        })
    }
}

/// Binds, serves until `shutdown` completes, and returns the final stats.
pub async fn serve(
    settings: ReceiveSettings,
    shutdown: impl Future<Output = ()>,
) -> Result<Stats, ReceiveError> {
    let running = Receiver::start(settings).await?;
    shutdown.await;
    Ok(running.shutdown().await)
}

/// A receiver serving in the background. Dropping it also stops the server (without waiting
/// for it or flushing the record file); call [`RunningReceiver::shutdown`] to do both.
pub struct RunningReceiver {
    addr: SocketAddr,
    shared: Arc<Shared>,
    shutdown: watch::Sender<()>,
    server: JoinHandle<()>,
    record_writer: Option<JoinHandle<()>>,
}

impl RunningReceiver {
    /// The address actually bound (the real port when `listen` had port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The stats so far.
    pub fn stats(&self) -> Stats {
        self.shared.tracker().snapshot()
    }

    /// Stops accepting, lets in-flight requests finish (up to 5 s, then closes their
    /// connections), flushes the record file, and returns the final stats.
    pub async fn shutdown(self) -> Stats {
        // The accept loop and every connection watch this channel.
        let _ = self.shutdown.send(());
        if let Err(error) = self.server.await {
            tracing::error!(%error, "receiver task failed");
        }
        if let Some(recorder) = &self.shared.recorder {
            recorder.stop().await;
        }
        if let Some(writer) = self.record_writer
            && let Err(error) = writer.await
        {
            tracing::error!(%error, "record writer task failed");
        }
        self.shared.tracker().snapshot()
    }
}

/// State shared by all handlers.
struct Shared {
    /// When the receiver started: outage and throttle windows are offsets from it.
    started: Instant,
    key: Option<String>,
    fail_status: StatusCode,
    chaos: Chaos,
    tracker: Mutex<Tracker>,
    recorder: Option<Recorder>,
}

impl Shared {
    /// The counters, locked. Held only to update or snapshot, never across an `.await`.
    fn tracker(&self) -> MutexGuard<'_, Tracker> {
        self.tracker.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        match &self.key {
            None => true,
            Some(key) => headers
                .get(KEY_HEADER)
                .is_some_and(|given| given.as_bytes() == key.as_bytes()),
        }
    }

    /// Counts and builds a non-2xx answer with a short text body.
    fn reject(&self, status: StatusCode, reason: impl Into<String>) -> Response {
        let reason = reason.into();
        tracing::debug!(status = status.as_u16(), reason = %reason, "request rejected");
        self.tracker().rejected(status.as_u16());
        (status, reason).into_response()
    }
}

/// Lets a handler close its request's connection without answering.
#[derive(Clone)]
struct ConnectionAbort(Arc<Notify>);

/// `GET /stats`.
async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    let stats = shared.tracker().snapshot();
    match serde_json::to_vec(&stats) {
        Ok(json) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response(),
        Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
    }
}

/// Every request except `GET /stats`: events arrive as `POST` to any path; any other method is
/// answered 405 and counted in `rejected`, as every non-2xx answer is.
async fn receive(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    if request.method() != Method::POST {
        let mut response = shared.reject(StatusCode::METHOD_NOT_ALLOWED, "events are POSTed");
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    let (parts, body) = request.into_parts();
    let declared_length = parts
        .headers
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > MAX_BODY_BYTES as u64) {
        return shared.reject(StatusCode::PAYLOAD_TOO_LARGE, "body too large");
    }
    let body = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
        Ok(body) => body,
        Err(error) => {
            return shared.reject(
                StatusCode::BAD_REQUEST,
                format!("cannot read body: {error}"),
            );
        }
    };
    let received_at = wall_clock_now();

    let (latency, fail) = match shared.chaos.decide(shared.started.elapsed()) {
        Verdict::Outage => {
            return shared.reject(StatusCode::SERVICE_UNAVAILABLE, "outage (injected)");
        }
        Verdict::Throttled => {
            let mut response = shared.reject(StatusCode::TOO_MANY_REQUESTS, "throttled (injected)");
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        Verdict::DropConnection => {
            let Some(abort) = parts.extensions.get::<ConnectionAbort>() else {
                // Only reachable if the router is served by something other than our accept
                // loop; answer rather than hang.
                return shared.reject(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "cannot drop this connection",
                );
            };
            shared.tracker().dropped();
            tracing::debug!("dropping connection (injected)");
            abort.0.notify_one();
            // The connection task drops this future together with the connection.
            return std::future::pending().await;
        }
        Verdict::Serve { latency, fail } => (latency, fail),
    };
    let wait = || async move {
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
    };
    if !shared.authorized(&parts.headers) {
        wait().await;
        return shared.reject(StatusCode::UNAUTHORIZED, "missing or wrong aeg-sas-key");
    }
    let parsed = match parse_request(&parts.headers, &body, shared.recorder.is_some()) {
        Ok(parsed) => parsed,
        Err(error) => {
            wait().await;
            return shared.reject(StatusCode::BAD_REQUEST, error.to_string());
        }
    };
    if fail {
        wait().await;
        return shared.reject(shared.fail_status, "failure (injected)");
    }
    if let Some(recorder) = &shared.recorder
        && recorder.append(parsed.record).await.is_err()
    {
        return shared.reject(
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot record the events",
        );
    }
    shared.tracker().accepted(parsed.arrivals, received_at);
    // A slow consumer takes the events first and answers late: a client that gives up before
    // the answer retries, and the events arrive twice (at-least-once delivery).
    wait().await;
    StatusCode::OK.into_response()
}

/// Accepts connections until shutdown, then drains them.
async fn accept_loop(listener: TcpListener, router: Router, mut shutdown: watch::Receiver<()>) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            // A send or a dropped `RunningReceiver` both end the loop.
            _ = shutdown.changed() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => {
                    connections.spawn(serve_connection(stream, router.clone(), shutdown.clone()));
                }
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(ACCEPT_ERROR_BACKOFF).await;
                }
            },
            // Reap finished connections so the set does not grow with every client.
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(SHUTDOWN_GRACE, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            "closing connections still busy after the shutdown grace period"
        );
        connections.shutdown().await;
    }
}

/// Serves one HTTP/1.1 connection until the client closes it, a handler drops it, or shutdown.
async fn serve_connection(stream: TcpStream, router: Router, mut shutdown: watch::Receiver<()>) {
    // Answers are small; do not let Nagle hold them back.
    let _ = stream.set_nodelay(true);
    let abort = ConnectionAbort(Arc::new(Notify::new()));
    let service = {
        let abort = abort.clone();
        service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(abort.clone());
            let mut router = router.clone();
            async move {
                let response: Result<Response, Infallible> =
                    router.call(request.map(Body::new)).await;
                response
            }
        })
    };
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let mut shutting_down = false;
    loop {
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended with an error");
                }
                return;
            }
            // Returning drops `connection`: the socket closes with no response written.
            () = abort.0.notified() => return,
            _ = shutdown.changed(), if !shutting_down => {
                shutting_down = true;
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}
