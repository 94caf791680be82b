//! The server's connections: accepted up to a limit, served by hyper's
//! HTTP/1, and cut off when the client is too slow to make a request.
//!
//! Every open connection costs a file descriptor, and the process shares its
//! descriptors with the store (SQLite files, PostgreSQL sockets). A client
//! that opens sockets and sends nothing, or half a request, must not be able
//! to hold them for long, nor to use up the descriptors the store needs. So:
//! - a connection must send a complete request head within
//!   [`HEADER_READ_TIMEOUT`] of being accepted, or of the first byte of a
//!   later request;
//! - a kept-alive connection may wait [`IDLE_TIMEOUT`] for its next request;
//! - a request body that delivers no bytes for [`BODY_READ_TIMEOUT`] fails;
//! - at most `connections_max` connections are open. When a connection
//!   arrives beyond that, the connection idle the longest (one with no
//!   request being answered) is closed to make room; when none is idle, new
//!   connections wait in the listen backlog until one ends.
//!
//! No TLS, no HTTP/2: the API speaks HTTP/1.1, as before a reverse proxy.

use axum::body::Bytes;
use axum::Router;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::{Instant, Sleep};

/// Open connections allowed by default: well below the usual limit of 1024
/// file descriptors per process, leaving the rest to the store.
pub const CONNECTIONS_MAX_DEFAULT: usize = 512;
/// How long a client has to send a whole request head: from the accept for
/// a connection's first request, from its first byte for a later one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a kept-alive connection may wait, silent, for its next request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a request body may go without delivering a byte. A bound on
/// each wait rather than on the whole body, since an audio upload may
/// rightly take minutes.
pub const BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the accept loop waits before retrying after an accept error
/// that is not the peer's (for instance, no file descriptor left).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// Serves `router` on `listener` until `shutdown` resolves, then stops
/// accepting, lets every connection finish its request in flight (idle ones
/// close at once) and returns when all have closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    connections_max: usize,
    shutdown: impl Future<Output = ()>,
) {
    assert!(connections_max > 0, "at least one connection is allowed");
    let slots = Arc::new(Semaphore::new(connections_max));
    let open = Arc::new(OpenConnections::default());
    let (stopping, stop) = watch::channel(false);
    let mut shutdown = pin!(shutdown);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(error) if is_peer_error(&error) => continue,
                Err(error) => {
                    tracing::error!(%error, "cannot accept a connection");
                    tokio::select! {
                        () = tokio::time::sleep(ACCEPT_ERROR_PAUSE) => continue,
                        () = &mut shutdown => break,
                    }
                }
            },
            () = &mut shutdown => break,
        };
        let slot = loop {
            if let Ok(slot) = slots.clone().try_acquire_owned() {
                break Some(slot);
            }
            open.close_longest_idle();
            tokio::select! {
                slot = slots.clone().acquire_owned() => break slot.ok(),
                // A busy connection went idle: it may be closed now.
                () = open.became_idle.notified() => {}
                () = &mut shutdown => break None,
            }
        };
        let Some(slot) = slot else { break };
        let connection = open.add();
        let router = router.clone();
        let stop = stop.clone();
        let open = open.clone();
        tokio::spawn(async move {
            serve_connection(stream, router, connection.clone(), stop).await;
            open.remove(&connection);
            drop(slot);
        });
    }
    drop(listener);
    let _ = stopping.send(true);
    // Every connection holds a slot until it closes.
    let all = u32::try_from(connections_max).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

/// Errors about one peer's connection attempt, not about the listener.
fn is_peer_error(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

/// Serves one connection until it ends, times out or is closed for room.
async fn serve_connection(
    stream: TcpStream,
    router: Router,
    activity: Arc<Activity>,
    mut stop: watch::Receiver<bool>,
) {
    let io = TokioIo::new(Watched {
        stream,
        activity: activity.clone(),
    });
    let service = Observed {
        router: TowerToHyperService::new(router),
        activity: activity.clone(),
    };
    let mut builder = http1::Builder::new();
    // The timeouts are this module's own: hyper's header timer also runs
    // while a kept-alive connection waits, which would make the idle limit
    // the header limit.
    builder.header_read_timeout(None);
    let mut connection = pin!(builder.serve_connection(io, service));
    let mut stopping = false;
    loop {
        let deadline = activity.deadline();
        let timer = async {
            match deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended");
                }
                return;
            }
            changed = stop.changed(), if !stopping => {
                stopping = true;
                if changed.is_ok() {
                    connection.as_mut().graceful_shutdown();
                }
            }
            () = timer => {
                if activity.deadline().is_some_and(|d| d <= Instant::now()) {
                    tracing::debug!("connection closed: no complete request in time");
                    return;
                }
            }
            () = activity.changed.notified() => {
                if activity.evicted.load(Ordering::Relaxed) {
                    if activity.deadline().is_some() {
                        tracing::debug!("idle connection closed to make room for a new one");
                        return;
                    }
                    // A request arrived meanwhile: the connection is busy, not idle.
                    activity.evicted.store(false, Ordering::Relaxed);
                }
            }
        }
    }
}

/// The open connections, so that the longest idle one can be closed.
#[derive(Default)]
struct OpenConnections {
    next_id: AtomicU64,
    connections: Mutex<HashMap<u64, Arc<Activity>>>,
    /// Notified when a connection's last request in flight finishes.
    became_idle: Arc<Notify>,
}

impl OpenConnections {
    fn add(&self) -> Arc<Activity> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let activity = Arc::new(Activity::new(id, self.became_idle.clone()));
        self.lock().insert(id, activity.clone());
        activity
    }

    fn remove(&self, activity: &Activity) {
        self.lock().remove(&activity.id);
    }

    /// Asks the connection idle the longest, if any is idle, to close.
    fn close_longest_idle(&self) {
        let connections = self.lock();
        let longest = connections
            .values()
            .filter(|c| !c.evicted.load(Ordering::Relaxed))
            .filter_map(|c| c.idle_since().map(|since| (since, c)))
            .min_by_key(|(since, _)| *since);
        if let Some((_, connection)) = longest {
            connection.evicted.store(true, Ordering::Relaxed);
            connection.changed.notify_one();
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Activity>>> {
        self.connections.lock().expect("open connections lock")
    }
}

/// What one connection is doing, as its timeouts need to know.
struct Activity {
    id: u64,
    state: Mutex<ActivityState>,
    /// Notified when a request finishes or the connection is asked to close.
    changed: Notify,
    /// Set when the connection is to close to make room for another.
    evicted: AtomicBool,
    became_idle: Arc<Notify>,
}

struct ActivityState {
    /// Requests handed to the router whose response has not finished.
    requests_in_flight: usize,
    /// When the connection was accepted or its last response finished.
    idle_since: Instant,
    /// When the first byte of the next request head arrived.
    head_started: Option<Instant>,
    /// True until the first request arrives.
    fresh: bool,
}

impl Activity {
    fn new(id: u64, became_idle: Arc<Notify>) -> Activity {
        Activity {
            id,
            state: Mutex::new(ActivityState {
                requests_in_flight: 0,
                idle_since: Instant::now(),
                head_started: None,
                fresh: true,
            }),
            changed: Notify::new(),
            evicted: AtomicBool::new(false),
            became_idle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ActivityState> {
        self.state.lock().expect("connection activity lock")
    }

    /// When the connection is to be closed unless a request arrives; `None`
    /// while a request is being answered.
    fn deadline(&self) -> Option<Instant> {
        let state = self.lock();
        if state.requests_in_flight > 0 {
            return None;
        }
        Some(match state.head_started {
            _ if state.fresh => state.idle_since + HEADER_READ_TIMEOUT,
            Some(started) => started + HEADER_READ_TIMEOUT,
            None => state.idle_since + IDLE_TIMEOUT,
        })
    }

    /// Since when the connection has had no request to answer, if so.
    fn idle_since(&self) -> Option<Instant> {
        let state = self.lock();
        (state.requests_in_flight == 0).then_some(state.idle_since)
    }

    fn bytes_read(&self) {
        let mut state = self.lock();
        if state.requests_in_flight == 0 && state.head_started.is_none() {
            state.head_started = Some(Instant::now());
        }
    }

    fn request_started(self: &Arc<Self>) -> RequestInFlight {
        let mut state = self.lock();
        state.requests_in_flight += 1;
        state.head_started = None;
        state.fresh = false;
        RequestInFlight(self.clone())
    }
}

/// Held until a request's response has been sent (or abandoned).
struct RequestInFlight(Arc<Activity>);

impl Drop for RequestInFlight {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.requests_in_flight -= 1;
        if state.requests_in_flight == 0 {
            state.idle_since = Instant::now();
            drop(state);
            self.0.changed.notify_one();
            self.0.became_idle.notify_one();
        }
    }
}

/// The socket, noting when bytes arrive.
struct Watched {
    stream: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Watched {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.stream).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.bytes_read();
        }
        polled
    }
}

impl AsyncWrite for Watched {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}

/// The router, with each request's body under [`BODY_READ_TIMEOUT`] and
/// each request counted as in flight until its response is sent.
struct Observed {
    router: TowerToHyperService<Router>,
    activity: Arc<Activity>,
}

type ObservedFuture =
    Pin<Box<dyn Future<Output = Result<hyper::Response<ObservedBody>, Infallible>> + Send>>;

impl hyper::service::Service<hyper::Request<Incoming>> for Observed {
    type Response = hyper::Response<ObservedBody>;
    type Error = Infallible;
    type Future = ObservedFuture;

    fn call(&self, request: hyper::Request<Incoming>) -> Self::Future {
        let in_flight = self.activity.request_started();
        let request = request.map(|body| BodyWithReadTimeout {
            body,
            timeout: BODY_READ_TIMEOUT,
            waiting: None,
        });
        let response = self.router.call(request);
        Box::pin(async move {
            let response = response.await?;
            Ok(response.map(|body| ObservedBody {
                body,
                _in_flight: in_flight,
            }))
        })
    }
}

/// A response body that marks its request finished when dropped.
struct ObservedBody {
    body: axum::body::Body,
    _in_flight: RequestInFlight,
}

impl Body for ObservedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A request body that fails when no bytes come for `timeout`.
struct BodyWithReadTimeout {
    body: Incoming,
    timeout: Duration,
    waiting: Option<Pin<Box<Sleep>>>,
}

/// The error of a request body that stopped sending.
#[derive(Debug, thiserror::Error)]
#[error("the request body sent nothing for {} s", .0.as_secs())]
struct BodyReadTimedOut(Duration);

impl Body for BodyWithReadTimeout {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        if let Poll::Ready(frame) = Pin::new(&mut this.body).poll_frame(cx) {
            this.waiting = None;
            return Poll::Ready(frame.map(|frame| frame.map_err(Into::into)));
        }
        let timeout = this.timeout;
        let waiting = this
            .waiting
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        match waiting.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyReadTimedOut(timeout))))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
