//! Serving a router to the internet: an accept loop that caps open connections (overall and per
//! client address, within the file-descriptor limit), closes connections whose headers do not
//! arrive in time or that stay idle, counts what hyper itself rejects, and drains gracefully.
//!
//! `axum::serve` runs hyper without a timer, so a connection that sends nothing is kept
//! forever, and it sleeps a second after each failed accept: 140 idle connections under a
//! 128-descriptor limit left a signed webhook unanswered (RELIABILITY.md, "Hostile clients").

pub mod args;
pub mod events;
pub mod guard;
pub mod io;
pub mod limits;
pub mod waiting;

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

pub use args::ListenerArgs;
pub use events::ListenerMetrics;
pub use limits::ConnectionLimits;

use events::{AcceptFailed, ConnectionClosed, ConnectionOpen, ConnectionRefused, LOG_EVERY};
use io::{Activity, TrackedIo};
use limits::Refusal;
use waiting::Waiting;

/// How long a new connection waits for the slot of the connection it displaced.
const DISPLACE_WAIT: std::time::Duration = std::time::Duration::from_millis(200);

/// Everything the accept loop needs besides the listener and the router.
pub struct Listening {
    pub args: ListenerArgs,
    pub limits: ConnectionLimits,
    pub metrics: ListenerMetrics,
}

impl Listening {
    /// The caps of `args`, the global one fitted to the file-descriptor limit with `reserved`
    /// descriptors left for the rest of the service.
    pub fn new(args: &ListenerArgs, metrics: ListenerMetrics, reserved_fds: u64) -> Listening {
        let max = limits::fit_to_fd_limit(args.max_connections, reserved_fds);
        Listening {
            args: args.clone(),
            limits: ConnectionLimits::new(max, args.max_connections_per_address),
            metrics,
        }
    }
}

/// Serves `router` on `listener` until `shutdown`, then lets open connections finish their
/// requests and returns once they are closed. Each accepted stream goes through `wrap`, which
/// gives the I/O hyper drives and the `ConnectInfo` handlers can extract.
pub async fn serve<IO, C, W>(
    listener: TcpListener,
    router: Router,
    listening: Listening,
    shutdown: CancellationToken,
    wrap: W,
) where
    W: Fn(TcpStream, SocketAddr) -> (IO, C),
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    C: Clone + Send + Sync + 'static,
{
    let Listening {
        args,
        limits,
        metrics,
    } = listening;
    // HTTP/1.1 only: Zoom and EventSource speak it (HTTP/2 is a TLS proxy's business), and
    // hyper's HTTP/1 header timer starts as soon as a connection opens, whereas the auto
    // builder first waits, without a timer, for bytes telling the version.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(args.header_read_timeout());
    let idle_timeout = args.idle_timeout();
    let tracker = TaskTracker::new();
    let waiting = Waiting::default();
    let mut last_logged: Option<Instant> = None;
    loop {
        let (stream, remote) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    let log = last_logged.is_none_or(|at| at.elapsed() >= LOG_EVERY);
                    if log {
                        last_logged = Some(Instant::now());
                    }
                    AcceptFailed { error: &error, log }.emit(&metrics);
                    // Out of descriptors: give closing connections a moment, without stalling
                    // accepts for long (axum::serve waits a whole second).
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
        };
        let admitted = match limits.admit(remote.ip()) {
            Err(Refusal::GlobalLimit) if waiting.displace_oldest() => {
                limits.admit_within(remote.ip(), DISPLACE_WAIT).await
            }
            admitted => admitted,
        };
        let slot = match admitted {
            Ok(slot) => slot,
            Err(reason) => {
                ConnectionRefused { reason }.emit(&metrics);
                drop(stream);
                continue;
            }
        };
        let entry = std::sync::Arc::new(waiting.enter());
        let (io, info) = wrap(stream, remote);
        let activity = Activity::new();
        let io = TokioIo::new(TrackedIo::new(io, activity.clone()));
        let router = router.clone();
        let first_request = entry.clone();
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            first_request.leave();
            request.extensions_mut().insert(ConnectInfo(info.clone()));
            let router = router.clone();
            router.oneshot(request)
        });
        let builder = builder.clone();
        let metrics = metrics.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let _slot = slot;
            let _open = ConnectionOpen::enter(&metrics);
            let connection = builder.serve_connection(io, service);
            tokio::pin!(connection);
            let mut draining = false;
            let closed = loop {
                tokio::select! {
                    served = connection.as_mut() => break served.err().and_then(|e| rejection(&e)),
                    _ = activity.idle_for(idle_timeout) => break Some("idle_timeout"),
                    _ = entry.displaced.cancelled() => break Some("displaced"),
                    _ = shutdown.cancelled(), if !draining => {
                        connection.as_mut().graceful_shutdown();
                        draining = true;
                    }
                }
            };
            if let Some(reason) = closed {
                ConnectionClosed { reason }.emit(&metrics);
            }
        });
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
}

/// What a connection's error says hyper rejected, as a bounded reason; `None` for the client
/// going away, which is no rejection.
fn rejection(hyper_error: &hyper::Error) -> Option<&'static str> {
    if hyper_error.is_timeout() {
        Some("header_timeout")
    } else if hyper_error.is_parse_too_large() {
        Some("headers_too_large")
    } else if hyper_error.is_parse() {
        Some("bad_request")
    } else if hyper_error.is_user() {
        Some("protocol_error")
    } else {
        None
    }
}

/// The plain TCP stream and its peer's address: the `wrap` of a service that needs nothing
/// more.
pub fn plain(stream: TcpStream, remote: SocketAddr) -> (TcpStream, SocketAddr) {
    (stream, remote)
}
