//! `/vilokanam/keys/2`: one long-lived stream per (viewer, key server)
//! carrying the viewer's key requests and the server's answers in turn.
//!
//! A watching viewer asks for a key every epoch for as long as it watches.
//! Opening a substream per request (as request-response does) costs the
//! server a stream negotiation, a timeout timer and a trip through the
//! swarm task and the node's event loop per key; here the stream is opened
//! once, and each request is one frame in and one frame out, read and
//! answered by the session's own task, which calls the node's
//! [`KeyService`] directly.
//!
//! Frames are a big-endian `u16` length and that many bytes of a postcard
//! message ([`super::wire`]), capped before anything is allocated
//! ([`MAX_KEY_REQUEST`], [`MAX_KEY_RESPONSE`]). The viewer sends one
//! request and waits for its answer before sending the next, so a session
//! never holds more than one request. Every resource is bounded: sessions
//! in total and per peer ([`KeySessionConfig`]); a session idle past
//! `idle_timeout` is closed (on both sides); a malformed or oversized frame
//! closes the session with its reason logged and counted.

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::Semaphore;
use tokio::time::Instant;
use tracing::debug;

use super::wire::{
    decode_request, decode_response, encode_request, encode_response, KeyRefusal, KeyRequest,
    KeyResponse, MAX_KEY_REQUEST, MAX_KEY_RESPONSE,
};
use crate::metrics::Metrics;
use crate::protocols::live::wire::WireError;

/// Protocol name of key exchange (a long-lived, framed stream).
pub const KEYS_PROTOCOL: StreamProtocol = StreamProtocol::new("/vilokanam/keys/2");

/// Sessions refused for being over the total limit that may still be
/// answered `Busy` at once (the rest are closed unanswered).
const BUSY_ANSWERS: usize = 32;

/// Bounds and timeouts of key sessions.
#[derive(Clone, Debug, PartialEq)]
pub struct KeySessionConfig {
    /// Sessions served at once. Default 4096; past it a new session's
    /// first request is answered [`KeyRefusal::Busy`].
    pub max_sessions: usize,
    /// Sessions served at once to one peer. Default 4 (a viewer needs one
    /// per key server; the slack covers a session replaced after an
    /// error while the old one winds down).
    pub max_per_peer: usize,
    /// Close a session with no request for this long (both sides).
    /// Default 120 s: longer than any epoch.
    pub idle_timeout: Duration,
    /// A viewer's wait for opening a session plus one answer. Default 10 s.
    pub request_timeout: Duration,
}

impl Default for KeySessionConfig {
    fn default() -> Self {
        KeySessionConfig {
            max_sessions: 4096,
            max_per_peer: 4,
            idle_timeout: Duration::from_secs(120),
            request_timeout: Duration::from_secs(10),
        }
    }
}

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// The stream ended inside a frame.
    #[error("the stream ended inside a frame")]
    Truncated,
    /// The length prefix announces more than the limit.
    #[error("a frame of {len} bytes exceeds the {limit}-byte limit")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        limit: usize,
    },
    /// The stream failed.
    #[error("stream error: {0}")]
    Io(#[from] io::Error),
}

impl FrameError {
    /// A short label for metrics.
    pub fn label(&self) -> &'static str {
        match self {
            FrameError::Truncated => "truncated",
            FrameError::TooLarge { .. } => "oversized",
            FrameError::Io(_) => "io",
        }
    }
}

/// Reads one frame of at most `limit` bytes; `None` when the stream ended
/// cleanly between frames.
pub async fn read_frame<R: AsyncRead + Unpin>(
    io: &mut R,
    limit: usize,
) -> Result<Option<Vec<u8>>, FrameError> {
    let mut len = [0u8; 2];
    if io.read(&mut len[..1]).await? == 0 {
        return Ok(None);
    }
    io.read_exact(&mut len[1..]).await.map_err(truncated)?;
    let len = usize::from(u16::from_be_bytes(len));
    if len > limit {
        return Err(FrameError::TooLarge { len, limit });
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf).await.map_err(truncated)?;
    Ok(Some(buf))
}

fn truncated(e: io::Error) -> FrameError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        FrameError::Truncated
    } else {
        FrameError::Io(e)
    }
}

/// Writes `bytes` as one frame (at most `u16::MAX` bytes) and flushes.
pub async fn write_frame<W: AsyncWrite + Unpin>(io: &mut W, bytes: &[u8]) -> io::Result<()> {
    let len = u16::try_from(bytes.len()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("a frame of {} bytes is over {}", bytes.len(), u16::MAX),
        )
    })?;
    let mut buf = Vec::with_capacity(2 + bytes.len());
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
    io.write_all(&buf).await?;
    io.flush().await
}

/// What answers key requests: the node's paywall (it checks the channel
/// and the voucher, and seals the key). Called from the session's task,
/// one request of a session at a time.
pub trait KeyService: Send + Sync + 'static {
    /// The answer to `request` from `peer`.
    fn answer(&self, peer: PeerId, request: KeyRequest) -> KeyAnswer;
}

/// The future a [`KeyService`] returns.
pub type KeyAnswer = BoxFuture<'static, KeyResponse>;

/// Open sessions, in total and per peer.
#[derive(Default)]
struct Open {
    total: usize,
    per_peer: HashMap<PeerId, usize>,
}

/// Counts one open session until dropped.
struct Permit {
    open: Arc<Mutex<Open>>,
    peer: PeerId,
    metrics: Metrics,
}

impl Drop for Permit {
    fn drop(&mut self) {
        let mut open = lock(&self.open);
        open.total -= 1;
        if let Some(n) = open.per_peer.get_mut(&self.peer) {
            *n -= 1;
            if *n == 0 {
                open.per_peer.remove(&self.peer);
            }
        }
        self.metrics.key_sessions.dec();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

enum Full {
    Total,
    Peer,
}

fn admit(
    open: &Arc<Mutex<Open>>,
    cfg: &KeySessionConfig,
    peer: PeerId,
    metrics: &Metrics,
) -> Result<Permit, Full> {
    let mut o = lock(open);
    if o.total >= cfg.max_sessions {
        return Err(Full::Total);
    }
    let n = o.per_peer.entry(peer).or_default();
    if *n >= cfg.max_per_peer {
        return Err(Full::Peer);
    }
    *n += 1;
    o.total += 1;
    metrics.key_sessions.inc();
    Ok(Permit {
        open: open.clone(),
        peer,
        metrics: metrics.clone(),
    })
}

/// Serves the key sessions that arrive on `incoming` with `service`, until
/// the swarm stops. Spawned by [`crate::Client::serve_keys`].
pub(crate) async fn serve(
    mut incoming: libp2p_stream::IncomingStreams,
    service: Arc<dyn KeyService>,
    cfg: KeySessionConfig,
    metrics: Metrics,
) {
    let open = Arc::new(Mutex::new(Open::default()));
    let busy = Arc::new(Semaphore::new(BUSY_ANSWERS));
    while let Some((peer, stream)) = incoming.next().await {
        match admit(&open, &cfg, peer, &metrics) {
            Ok(permit) => {
                tokio::spawn(session(
                    peer,
                    stream,
                    service.clone(),
                    permit,
                    cfg.idle_timeout,
                    metrics.clone(),
                ));
            }
            Err(Full::Peer) => {
                debug!(%peer, "key session refused: too many sessions from this peer");
                Metrics::inc(&metrics.key_sessions_ended, "reason", "per_peer");
            }
            Err(Full::Total) => {
                Metrics::inc(&metrics.key_sessions_ended, "reason", "busy");
                if let Ok(p) = busy.clone().try_acquire_owned() {
                    tokio::spawn(async move {
                        answer_busy(stream).await;
                        drop(p);
                    });
                }
            }
        }
    }
}

/// Reads a refused session's first request and answers `Busy`, so that
/// the viewer knows to come back (within a few seconds, or not at all).
async fn answer_busy(mut stream: Stream) {
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        if let Ok(Some(_)) = read_frame(&mut stream, MAX_KEY_REQUEST).await {
            if let Ok(b) = encode_response(&KeyResponse::Refused(KeyRefusal::Busy)) {
                let _ = write_frame(&mut stream, &b).await;
            }
        }
        let _ = stream.close().await;
    })
    .await;
}

async fn session(
    peer: PeerId,
    mut stream: Stream,
    service: Arc<dyn KeyService>,
    _permit: Permit,
    idle: Duration,
    metrics: Metrics,
) {
    let reason = loop {
        let frame = match tokio::time::timeout(idle, read_frame(&mut stream, MAX_KEY_REQUEST)).await
        {
            Err(_) => break "idle",
            Ok(Ok(None)) => break "closed",
            Ok(Ok(Some(f))) => f,
            Ok(Err(e)) => {
                debug!(%peer, error = %e, "key session ended: bad frame");
                break e.label();
            }
        };
        let request = match decode_request(&frame) {
            Ok(r) => r,
            Err(e) => {
                debug!(%peer, error = %e, "key session ended: malformed request");
                break "malformed";
            }
        };
        let response = service.answer(peer, request).await;
        let bytes = match encode_response(&response) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(%peer, error = %e, "cannot encode a key response");
                break "encode";
            }
        };
        // A peer that never reads would block the write once its window
        // is full: bounded like a silent one.
        match tokio::time::timeout(idle, write_frame(&mut stream, &bytes)).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break "io",
            Err(_) => break "idle",
        }
    };
    Metrics::inc(&metrics.key_sessions_ended, "reason", reason);
    let _ = stream.close().await;
}

/// A viewer's session with one key server.
struct Slot {
    stream: Option<Stream>,
    used: Instant,
}

type Sessions = Mutex<HashMap<PeerId, Arc<tokio::sync::Mutex<Slot>>>>;

/// The viewer's side: one session per key server, opened on first use,
/// reused for every later request, dropped after an error or when idle.
pub(crate) struct KeyClient {
    control: libp2p_stream::Control,
    sessions: Arc<Sessions>,
    cfg: KeySessionConfig,
    sweeping: std::sync::Once,
}

impl std::fmt::Debug for KeyClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyClient")
            .field("sessions", &lock(&self.sessions).len())
            .field("cfg", &self.cfg)
            .finish()
    }
}

/// Why a key request failed, before it becomes a [`crate::SwarmError`].
#[derive(Debug, thiserror::Error)]
pub(crate) enum RequestError {
    #[error("cannot open a key session: {0}")]
    Open(#[from] libp2p_stream::OpenStreamError),
    #[error(transparent)]
    Frame(#[from] FrameError),
    #[error("writing the request: {0}")]
    Write(io::Error),
    #[error("the key server closed the session")]
    Closed,
    #[error("malformed answer: {0}")]
    Malformed(#[from] WireError),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl KeyClient {
    pub(crate) fn new(control: libp2p_stream::Control, cfg: KeySessionConfig) -> Self {
        KeyClient {
            control,
            sessions: Arc::default(),
            cfg,
            sweeping: std::sync::Once::new(),
        }
    }

    /// Sends `request` to `peer` on its session (opening one first if
    /// there is none; `prepare` runs before opening, to give the swarm the
    /// peer's addresses). A session that fails (the server closed it while
    /// idle, or its connection was closing) is replaced once, within the
    /// same `request_timeout`.
    pub(crate) async fn request<F, Fut>(
        &self,
        peer: PeerId,
        request: &KeyRequest,
        prepare: F,
    ) -> Result<KeyResponse, RequestError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        self.sweeping.call_once(|| {
            tokio::spawn(sweep(Arc::downgrade(&self.sessions), self.cfg.idle_timeout));
        });
        let bytes = encode_request(request)?;
        let slot = lock(&self.sessions)
            .entry(peer)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Slot {
                    stream: None,
                    used: Instant::now(),
                }))
            })
            .clone();
        let mut slot = slot.lock().await;
        let timeout = self.cfg.request_timeout;
        let deadline = Instant::now() + timeout;
        let mut retried = false;
        loop {
            let reused = slot.stream.is_some();
            let attempt = tokio::time::timeout_at(deadline, async {
                if slot.stream.is_none() {
                    prepare().await;
                    let mut control = self.control.clone();
                    let mut s = control.open_stream(peer, KEYS_PROTOCOL).await?;
                    write_frame(&mut s, &bytes)
                        .await
                        .map_err(RequestError::Write)?;
                    slot.stream = Some(s);
                } else if let Some(s) = slot.stream.as_mut() {
                    write_frame(s, &bytes).await.map_err(RequestError::Write)?;
                }
                let s = slot.stream.as_mut().ok_or(RequestError::Closed)?;
                match read_frame(s, MAX_KEY_RESPONSE).await? {
                    Some(f) => Ok(decode_response(&f)?),
                    None => Err(RequestError::Closed),
                }
            })
            .await;
            match attempt {
                Ok(Ok(response)) => {
                    slot.used = Instant::now();
                    return Ok(response);
                }
                Ok(Err(e)) => {
                    slot.stream = None;
                    // A reused session the server closed while idle, or a
                    // new one on a connection that was closing: one more
                    // try on a new session, within the same deadline.
                    if !retried && !matches!(e, RequestError::Malformed(_)) {
                        debug!(%peer, reused, error = %e, "key session failed, opening a new one");
                        retried = true;
                        continue;
                    }
                    return Err(e);
                }
                Err(_) => {
                    // The answer may still come: this session is out of step.
                    slot.stream = None;
                    return Err(RequestError::Timeout(timeout));
                }
            }
        }
    }

    /// Registers this node as a key server (once).
    pub(crate) fn accept(
        &self,
    ) -> Result<libp2p_stream::IncomingStreams, libp2p_stream::AlreadyRegistered> {
        self.control.clone().accept(KEYS_PROTOCOL)
    }

    /// Opens a session outside any slot (tests that write raw frames).
    #[cfg(any(test, feature = "test-utils"))]
    pub(crate) async fn open_raw(
        &self,
        peer: PeerId,
    ) -> Result<Stream, libp2p_stream::OpenStreamError> {
        self.control.clone().open_stream(peer, KEYS_PROTOCOL).await
    }

    /// The bounds and timeouts.
    pub(crate) fn config(&self) -> &KeySessionConfig {
        &self.cfg
    }

    /// Sessions open or opening (for tests and stats).
    pub(crate) fn sessions(&self) -> usize {
        lock(&self.sessions).len()
    }
}

/// Drops sessions not used for `idle` (a viewer that stopped watching
/// must not keep its connection to the key server alive), until the
/// client is gone.
async fn sweep(sessions: Weak<Sessions>, idle: Duration) {
    let mut every = tokio::time::interval(idle / 4);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(sessions) = sessions.upgrade() else {
            return;
        };
        lock(&sessions).retain(|_, slot| match slot.try_lock() {
            Ok(s) => s.used.elapsed() < idle,
            Err(_) => true, // in use
        });
    }
}
