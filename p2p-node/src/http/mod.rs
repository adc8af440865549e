//! The daemon's local HTTP API (JSON), HLS playback and `/metrics`: one
//! module per area, every handler a thin call of a [`NodeHandle`] method
//! whose typed error is mapped to a status code here. The endpoints are
//! listed in [`vilokanam_api::types`].
//!
//! Bounded like the rest of the node: at most `http_max_connections`
//! connections are accepted at once (more wait in the kernel's backlog),
//! at most `http_max_requests` requests are served at once (more get 503
//! at once, without queueing), and bodies are capped by the media layer's
//! segment limit. State-changing requests from a web page of another
//! origin are refused (a page must not make your node watch or publish).

mod bandwidth;
mod chat;
mod node;
mod playback;
mod publish;
mod social;
mod streams;
mod vod;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vilokanam_api::ErrorBody;

use crate::node::{NodeError, NodeHandle};

/// A node error as an HTTP answer.
#[derive(Debug)]
pub struct HttpError(pub StatusCode, pub String);

impl IntoResponse for HttpError {
    fn into_response(self) -> Response {
        (self.0, Json(ErrorBody { error: self.1 })).into_response()
    }
}

impl From<NodeError> for HttpError {
    fn from(e: NodeError) -> Self {
        let status = match &e {
            NodeError::InvalidStreamId { .. }
            | NodeError::InvalidStream { .. }
            | NodeError::InvalidOffer(_) => StatusCode::BAD_REQUEST,
            NodeError::NotStarted { .. }
            | NodeError::Ended { .. }
            | NodeError::PartOutOfOrder { .. } => StatusCode::CONFLICT,
            NodeError::NotPublished { .. }
            | NodeError::NotWatched { .. }
            | NodeError::UnknownStream { .. }
            | NodeError::NotHeld { .. }
            | NodeError::PartNotHeld { .. }
            | NodeError::NoVod { .. } => StatusCode::NOT_FOUND,
            NodeError::Unixfs(u) => match u {
                vilokanam_storage::unixfs::UnixfsError::NotFound(_)
                | vilokanam_storage::unixfs::UnixfsError::Missing(_) => StatusCode::NOT_FOUND,
                vilokanam_storage::unixfs::UnixfsError::WrongKind(_) => StatusCode::BAD_REQUEST,
                _ => StatusCode::BAD_GATEWAY,
            },
            NodeError::Vod(_) | NodeError::InvalidChat(_) => StatusCode::BAD_REQUEST,
            NodeError::ChatRefused { retry: true, .. } => StatusCode::TOO_MANY_REQUESTS,
            NodeError::ChatRefused { .. } => StatusCode::FORBIDDEN,
            NodeError::ChatCapacity(_) => StatusCode::SERVICE_UNAVAILABLE,
            NodeError::NotInChat(_) | NodeError::NoRecord(_) => StatusCode::NOT_FOUND,
            NodeError::InvalidSocial(_) => StatusCode::BAD_REQUEST,
            NodeError::SocialRefused(_) => StatusCode::CONFLICT,
            NodeError::SocialFull(_) => StatusCode::SERVICE_UNAVAILABLE,
            NodeError::ReloadTooFar { .. } => StatusCode::BAD_REQUEST,
            NodeError::ReloadTimeout { .. } => StatusCode::SERVICE_UNAVAILABLE,
            NodeError::BadSegment(_) => StatusCode::UNPROCESSABLE_ENTITY,
            NodeError::TooExpensive { .. }
            | NodeError::Unpaid { .. }
            | NodeError::BudgetExhausted { .. }
            | NodeError::KeyRefused { .. }
            | NodeError::Payment { .. } => StatusCode::PAYMENT_REQUIRED,
            NodeError::Undecryptable { .. } => StatusCode::BAD_GATEWAY,
            NodeError::Capacity(_) | NodeError::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        HttpError(status, e.to_string())
    }
}

pub(crate) type HttpResult<T> = Result<T, HttpError>;

/// State shared by the handlers.
#[derive(Clone)]
pub(crate) struct Api {
    pub(crate) node: NodeHandle,
    in_flight: Arc<AtomicUsize>,
    requests: Arc<Semaphore>,
    /// Turns true when the server starts its graceful shutdown: streaming
    /// answers (server-sent events) end then, or the shutdown would wait
    /// for their listeners.
    pub(crate) closing: Arc<tokio::sync::watch::Sender<bool>>,
}

/// Builds the router over `node`.
pub fn router(node: NodeHandle) -> Router {
    router_closing(node, Arc::new(tokio::sync::watch::channel(false).0))
}

fn router_closing(node: NodeHandle, closing: Arc<tokio::sync::watch::Sender<bool>>) -> Router {
    let max = node.config().http_max_requests.max(1);
    let api = Api {
        node,
        in_flight: Arc::new(AtomicUsize::new(0)),
        requests: Arc::new(Semaphore::new(max)),
        closing,
    };
    Router::new()
        .merge(node::routes())
        .merge(bandwidth::routes())
        .merge(streams::routes())
        .merge(publish::routes())
        .merge(playback::routes())
        .merge(vod::routes())
        .merge(chat::routes())
        .merge(social::routes())
        .fallback(|| async {
            HttpError(
                StatusCode::NOT_FOUND,
                "no such endpoint (see /api/v0)".into(),
            )
        })
        .layer(axum::middleware::from_fn_with_state(api.clone(), guard))
        .with_state(api)
}

/// Refuses foreign-origin writes and requests beyond the concurrency
/// limit; counts requests in flight.
async fn guard(State(api): State<Api>, req: Request, next: Next) -> Response {
    let writes = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if writes {
        if let Some(origin) = req.headers().get(header::ORIGIN) {
            if !local_origin(origin) {
                api.node.metrics().http_cross_origin.inc();
                return close_after(
                    HttpError(
                        StatusCode::FORBIDDEN,
                        format!(
                            "cross-origin {} from {:?} refused: only pages on this machine may change the node",
                            req.method(),
                            origin
                        ),
                    )
                    .into_response(),
                );
            }
        }
    }
    let Ok(_permit) = api.requests.clone().try_acquire_owned() else {
        api.node.metrics().http_busy.inc();
        return close_after(
            HttpError(
                StatusCode::SERVICE_UNAVAILABLE,
                format!(
                    "the API is serving its maximum of {} requests; try again (http_max_requests)",
                    api.node.config().http_max_requests
                ),
            )
            .into_response(),
        );
    };
    api.in_flight.fetch_add(1, Ordering::Relaxed);
    let mut resp = next.run(req).await;
    api.in_flight.fetch_sub(1, Ordering::Relaxed);
    resp.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    if resp.status() == StatusCode::PAYLOAD_TOO_LARGE {
        resp = close_after(resp);
    }
    resp
}

/// Marks a response sent before the request's body was read (refused
/// early, or over the body limit) as the connection's last: the unread
/// rest of the body makes the connection unusable, and without the header
/// a client reuses it for its next request, which then fails to send
/// (seen as "error sending request" right after a 413).
fn close_after(mut resp: Response) -> Response {
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// Refuses a page from another site reading a paid stream's or VOD's
/// media: the node would decrypt it for that page and pay for it from its
/// user's budget (every response allows any origin, for players on other
/// local pages). Players (mpv, VLC, ffmpeg) send no `Origin`.
pub(super) fn refuse_foreign_for_paid(headers: &HeaderMap, what: &str) -> Result<(), HttpError> {
    match headers.get(header::ORIGIN) {
        Some(origin) if !local_origin(origin) => Err(HttpError(
            StatusCode::FORBIDDEN,
            format!(
                "a page from {origin:?} may not read {what}: it is paid, and this node would decrypt it for that page and pay from its user's budget"
            ),
        )),
        _ => Ok(()),
    }
}

fn local_origin(origin: &HeaderValue) -> bool {
    let Ok(o) = origin.to_str() else {
        return false;
    };
    let host = o
        .strip_prefix("http://")
        .or_else(|| o.strip_prefix("https://"))
        .unwrap_or("");
    let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
    matches!(host, "127.0.0.1" | "localhost" | "[::1]")
}

impl Api {
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::Relaxed)
    }
}

/// A TCP listener that holds at most `max` connections open at once.
pub struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
}

impl LimitedListener {
    /// Wraps `inner`, allowing `max` connections at once.
    pub fn new(inner: TcpListener, max: usize) -> Self {
        LimitedListener {
            inner,
            permits: Arc::new(Semaphore::new(max.max(1))),
        }
    }
}

/// An accepted connection holding one of the listener's permits.
pub struct LimitedStream {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl axum::serve::Listener for LimitedListener {
    type Io = LimitedStream;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        {
            loop {
                // Wait for a free slot before accepting: extra connections
                // stay in the kernel's backlog.
                let Ok(permit) = self.permits.clone().acquire_owned().await else {
                    continue;
                };
                match self.inner.accept().await {
                    Ok((io, addr)) => {
                        let _ = io.set_nodelay(true);
                        return (
                            LimitedStream {
                                io,
                                _permit: permit,
                            },
                            addr,
                        );
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "accepting an API connection failed");
                        // Out of file descriptors and the like: back off.
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.inner.local_addr()
    }
}

/// Binds the API on `addr` (`127.0.0.1:0` picks a port).
pub async fn bind(
    addr: std::net::SocketAddr,
    max_connections: usize,
) -> std::io::Result<LimitedListener> {
    Ok(LimitedListener::new(
        TcpListener::bind(addr).await?,
        max_connections,
    ))
}

/// Serves the API until `shutdown` completes.
pub async fn serve(
    listener: LimitedListener,
    node: NodeHandle,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let closing = Arc::new(tokio::sync::watch::channel(false).0);
    let signal = closing.clone();
    axum::serve(listener, router_closing(node, closing))
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = signal.send(true);
        })
        .await
}

/// Server-sent events from a node broadcast: each item `to_event` maps to
/// an event is sent (others are skipped); a listener that falls more than
/// the buffer behind gets a `lagged` event (with how many it missed) and
/// goes on; the stream ends when the node (`stop`) or the API (`closing`)
/// stops. Keep-alives every 15 s.
pub(crate) fn sse_from<T, F>(
    rx: tokio::sync::broadcast::Receiver<T>,
    stop: tokio::sync::watch::Receiver<bool>,
    closing: tokio::sync::watch::Receiver<bool>,
    to_event: F,
) -> axum::response::sse::Sse<
    impl futures::Stream<Item = Result<axum::response::sse::Event, std::convert::Infallible>>,
>
where
    T: Clone + Send + 'static,
    F: Fn(T) -> Option<axum::response::sse::Event> + Send + Sync + 'static,
{
    use axum::response::sse::{Event, KeepAlive, Sse};
    use tokio::sync::broadcast::error::RecvError;
    let to_event = Arc::new(to_event);
    let s = futures::stream::unfold(
        (rx, stop, closing, to_event),
        |(mut rx, mut stop, mut closing, to_event)| async move {
            loop {
                if *stop.borrow() || *closing.borrow() {
                    return None;
                }
                let ev = tokio::select! {
                    r = rx.recv() => r,
                    _ = stop.changed() => return None,
                    _ = closing.changed() => return None,
                };
                let out = match ev {
                    Ok(item) => match to_event(item) {
                        Some(e) => e,
                        None => continue,
                    },
                    Err(RecvError::Lagged(n)) => {
                        Event::default().event("lagged").data(n.to_string())
                    }
                    Err(RecvError::Closed) => return None,
                };
                return Some((Ok(out), (rx, stop, closing, to_event)));
            }
        },
    );
    Sse::new(s).keep_alive(KeepAlive::new().interval(std::time::Duration::from_secs(15)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_local_origins_may_write() {
        for ok in [
            "http://127.0.0.1:7788",
            "http://localhost:3000",
            "http://[::1]:1",
        ] {
            assert!(local_origin(&HeaderValue::from_static(ok)), "{ok}");
        }
        for bad in [
            "https://evil.example",
            "null",
            "http://127.0.0.1.evil.example:80",
            "http://10.0.0.1",
        ] {
            assert!(!local_origin(&HeaderValue::from_static(bad)), "{bad}");
        }
    }
}
