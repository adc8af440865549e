//! Bitswap 1.2 (`/ipfs/bitswap/1.2.0`, read also as 1.1.0): how IPFS
//! nodes trade blocks, so a Kubo or Helia node connected to ours can fetch
//! and pin a VOD that exists nowhere else, and Vilokanam nodes fetch VOD
//! blocks from each other.
//!
//! Bitswap sends one-way messages: each side opens its own stream to the
//! other and writes length-prefixed protobuf frames ([`wire`]); answers
//! come back on the answerer's stream, matched by CID. No Rust Bitswap crate
//! targets rust-libp2p 0.57, so this is a small, bounded implementation on
//! `libp2p-stream`:
//!
//! - **Serving** ([`answer`], IO-less): `want-block` gets the block,
//!   `want-have` gets `HAVE`; a block this node lacks gets `DONT_HAVE` when
//!   asked for. Stateless: no wantlist is kept per peer (this node never
//!   receives blocks later that it could then send), so a peer cannot grow
//!   its state. Inbound streams are capped ([`BitswapConfig::max_inbound`]),
//!   frames by [`wire::MAX_MESSAGE`], entries per message by
//!   [`wire::MAX_ENTRIES`]; blocks over [`MAX_BLOCK`] are never sent.
//! - **Fetching** ([`Bitswap::fetch`]): `want-block` with `send-dont-have`
//!   to one peer at a time; the block is accepted only if its bytes hash to
//!   the CID asked for (a corrupt block is dropped, counted, and the next
//!   peer is asked); `DONT_HAVE` or silence past the timeout moves on.

pub mod wire;

use std::collections::HashMap;
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use cid::Cid;
use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::{PeerId, Stream, StreamProtocol};
use tokio::sync::{mpsc, oneshot, Semaphore};
use tracing::debug;

use crate::metrics::Metrics;
pub use wire::{Message, Presence, WantEntry, WantType};

/// Bitswap 1.2.0 (with HAVE/DONT_HAVE).
pub const BITSWAP_1_2: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.2.0");
/// Bitswap 1.1.0 (blocks with CID prefixes; no presences).
pub const BITSWAP_1_1: StreamProtocol = StreamProtocol::new("/ipfs/bitswap/1.1.0");
/// The largest block sent or accepted (Bitswap's de-facto limit, 2 MiB).
pub const MAX_BLOCK: usize = 2 * 1024 * 1024;
/// Payload bytes per answer message (several blocks per frame up to this).
const ANSWER_BYTES: usize = 1024 * 1024;
/// Block bytes answered to one incoming message: a message of many wants
/// (or the same want repeated) costs at most this much memory; wants past
/// it are answered DONT_HAVE when asked for, and the peer asks again.
pub const MAX_ANSWER_BYTES: usize = 8 * 1024 * 1024;
/// Inbound streams one peer may hold open at once.
const MAX_INBOUND_PER_PEER: usize = 8;
/// How long writing one frame to a peer may take before its stream is
/// dropped (a peer that does not read).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Where served blocks come from: bytes already verified against their CID.
pub trait BlockSource: Send + Sync + 'static {
    /// The block, if held.
    fn get(&self, cid: &Cid) -> Option<Vec<u8>>;
    /// Whether the block is held.
    fn has(&self, cid: &Cid) -> bool;
}

/// Bounds and timeouts.
#[derive(Clone, Debug, PartialEq)]
pub struct BitswapConfig {
    /// Inbound streams read at once (all peers). Default 128.
    pub max_inbound: usize,
    /// Peers with an outbound stream open at once. Default 256.
    pub max_outbound_peers: usize,
    /// How long one peer is given to answer a want. Default 5 s.
    pub fetch_timeout: Duration,
    /// An inbound stream with no frame for this long is closed. Default 60 s.
    pub idle_timeout: Duration,
}

impl Default for BitswapConfig {
    fn default() -> Self {
        BitswapConfig {
            max_inbound: 128,
            max_outbound_peers: 256,
            fetch_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
        }
    }
}

/// Errors of fetching a block.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BitswapError {
    /// No peer sent it.
    #[error("no peer sent block {cid} ({tried} asked: {reasons})")]
    NotFound {
        /// The CID.
        cid: Cid,
        /// Peers asked.
        tried: usize,
        /// Why each failed.
        reasons: String,
    },
}

/// The answer messages to a peer's message (IO-less): blocks for
/// `want-block`s held, `HAVE` for `want-have`s held, `DONT_HAVE` where
/// asked for; blocks split over messages of about [`ANSWER_BYTES`].
pub fn answer(msg: &Message, source: &dyn BlockSource) -> Vec<Message> {
    let mut out = vec![];
    let mut cur = Message::default();
    let mut bytes = 0;
    let mut total = 0;
    let mut seen = std::collections::HashSet::new();
    for w in msg.wants.iter().filter(|w| !w.cancel) {
        if !seen.insert((w.cid, w.want_type == WantType::Block)) {
            continue;
        }
        match w.want_type {
            WantType::Block => match source
                .get(&w.cid)
                .filter(|b| b.len() <= MAX_BLOCK && total + b.len() <= MAX_ANSWER_BYTES)
            {
                Some(b) => {
                    total += b.len();
                    if bytes > 0 && bytes + b.len() > ANSWER_BYTES {
                        out.push(std::mem::take(&mut cur));
                        bytes = 0;
                    }
                    bytes += b.len();
                    cur.blocks.push((wire::CidPrefix::of(&w.cid), b));
                }
                None if w.send_dont_have => cur.presences.push((w.cid, Presence::DontHave)),
                None => {}
            },
            WantType::Have => {
                if source.has(&w.cid) {
                    cur.presences.push((w.cid, Presence::Have));
                } else if w.send_dont_have {
                    cur.presences.push((w.cid, Presence::DontHave));
                }
            }
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// What a waiting fetch hears from its peer.
enum Reply {
    Block(Vec<u8>),
    DontHave,
}

type Waiters = HashMap<Cid, Vec<(u64, PeerId, oneshot::Sender<Reply>)>>;

struct Inner {
    control: libp2p_stream::Control,
    /// What is served (set by [`Bitswap::serve`]); held here, not by the
    /// accept loops, so it goes with the node.
    source: Mutex<Option<Arc<dyn BlockSource>>>,
    /// Inbound streams open per peer.
    inbound: Mutex<HashMap<PeerId, usize>>,
    /// Ids of fetch waiters (to remove exactly one).
    next_waiter: std::sync::atomic::AtomicU64,
    config: BitswapConfig,
    metrics: Metrics,
    waiters: Mutex<Waiters>,
    outbound: Mutex<HashMap<PeerId, mpsc::Sender<Vec<u8>>>>,
}

/// Bitswap on this node's swarm (cloneable).
#[derive(Clone)]
pub struct Bitswap(Arc<Inner>);

impl std::fmt::Debug for Bitswap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bitswap")
            .field("waiting", &self.waiting())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Bitswap {
    pub(crate) fn new(
        control: libp2p_stream::Control,
        config: BitswapConfig,
        metrics: Metrics,
    ) -> Self {
        Bitswap(Arc::new(Inner {
            control,
            source: Mutex::new(None),
            inbound: Mutex::new(HashMap::new()),
            next_waiter: std::sync::atomic::AtomicU64::new(0),
            config,
            metrics,
            waiters: Mutex::new(HashMap::new()),
            outbound: Mutex::new(HashMap::new()),
        }))
    }

    /// Accepts Bitswap streams and answers from `source`. At most once.
    pub fn serve(&self, source: Arc<dyn BlockSource>) -> Result<(), crate::SwarmError> {
        *lock(&self.0.source) = Some(source);
        let permits = Arc::new(Semaphore::new(self.0.config.max_inbound));
        for proto in [BITSWAP_1_2, BITSWAP_1_1] {
            let mut incoming = self
                .0
                .control
                .clone()
                .accept(proto)
                .map_err(|_| crate::SwarmError::Build("Bitswap is already served".into()))?;
            // Weak: the accept loop must not keep the stream behaviour's
            // shared state (and so its own input) alive once the node is
            // gone.
            let weak = Arc::downgrade(&self.0);
            let permits = permits.clone();
            tokio::spawn(async move {
                while let Some((peer, stream)) = incoming.next().await {
                    let Some(me) = weak.upgrade().map(Bitswap) else {
                        break;
                    };
                    let Ok(permit) = permits.clone().try_acquire_owned() else {
                        Metrics::inc(&me.0.metrics.bitswap_refused, "reason", "busy");
                        continue;
                    };
                    {
                        let mut per_peer = lock(&me.0.inbound);
                        let n = per_peer.entry(peer).or_default();
                        if *n >= MAX_INBOUND_PER_PEER {
                            Metrics::inc(&me.0.metrics.bitswap_refused, "reason", "per_peer");
                            continue;
                        }
                        *n += 1;
                    }
                    let Some(source) = lock(&me.0.source).clone() else {
                        break;
                    };
                    tokio::spawn(async move {
                        let r = me.read_stream(peer, stream, source).await;
                        if let Err(e) = r {
                            debug!(%peer, error = %e, "bitswap stream closed");
                        }
                        {
                            let mut per_peer = lock(&me.0.inbound);
                            if let Some(n) = per_peer.get_mut(&peer) {
                                *n -= 1;
                                if *n == 0 {
                                    per_peer.remove(&peer);
                                }
                            }
                        }
                        drop(permit);
                    });
                }
            });
        }
        Ok(())
    }

    async fn read_stream(
        &self,
        peer: PeerId,
        mut stream: Stream,
        source: Arc<dyn BlockSource>,
    ) -> io::Result<()> {
        loop {
            let frame =
                match tokio::time::timeout(self.0.config.idle_timeout, read_frame(&mut stream))
                    .await
                {
                    Err(_) => return Ok(()),
                    Ok(Ok(None)) => return Ok(()),
                    Ok(Ok(Some(f))) => f,
                    Ok(Err(e)) => {
                        Metrics::inc(&self.0.metrics.bitswap_refused, "reason", "frame");
                        return Err(e);
                    }
                };
            let msg = match Message::decode(&frame) {
                Ok(m) => m,
                Err(e) => {
                    Metrics::inc(&self.0.metrics.bitswap_refused, "reason", "malformed");
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            };
            self.on_message(peer, msg, source.as_ref());
        }
    }

    fn on_message(&self, peer: PeerId, msg: Message, source: &dyn BlockSource) {
        if !msg.wants.is_empty() {
            for m in answer(&msg, source) {
                self.0
                    .metrics
                    .bitswap_blocks_sent
                    .inc_by(m.blocks.len() as u64);
                self.send(peer, &m);
            }
        }
        for (prefix, data) in msg.blocks {
            let cid = match wire::block_cid(&prefix, &data) {
                Ok(c) if data.len() <= MAX_BLOCK => c,
                _ => {
                    Metrics::inc(&self.0.metrics.bitswap_refused, "reason", "bad_block");
                    continue;
                }
            };
            let taken = lock(&self.0.waiters).remove(&cid);
            match taken {
                Some(ws) => {
                    self.0.metrics.bitswap_blocks_received.inc();
                    for (_, _, tx) in ws {
                        let _ = tx.send(Reply::Block(data.clone()));
                    }
                }
                // Not wanted: a block we did not ask for, or one whose
                // bytes do not hash to the CID asked for (corrupt).
                None => Metrics::inc(&self.0.metrics.bitswap_refused, "reason", "unwanted_block"),
            }
        }
        for (cid, p) in msg.presences {
            if p == Presence::DontHave {
                let mut w = lock(&self.0.waiters);
                if let Some(list) = w.get_mut(&cid) {
                    if let Some(i) = list.iter().position(|(_, p, _)| *p == peer) {
                        let (_, _, tx) = list.swap_remove(i);
                        let _ = tx.send(Reply::DontHave);
                    }
                    if list.is_empty() {
                        w.remove(&cid);
                    }
                }
            }
        }
    }

    /// Queues `m` to `peer` on this node's stream to it (opened on demand).
    fn send(&self, peer: PeerId, m: &Message) {
        let frame = wire::frame(m);
        let mut out = lock(&self.0.outbound);
        if let Some(tx) = out.get(&peer) {
            match tx.try_send(frame) {
                Ok(()) => return,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    Metrics::inc(&self.0.metrics.bitswap_refused, "reason", "send_queue_full");
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(f)) => {
                    out.remove(&peer);
                    return self.spawn_writer(&mut out, peer, f);
                }
            }
        }
        self.spawn_writer(&mut out, peer, frame);
    }

    fn spawn_writer(
        &self,
        out: &mut HashMap<PeerId, mpsc::Sender<Vec<u8>>>,
        peer: PeerId,
        first: Vec<u8>,
    ) {
        if out.len() >= self.0.config.max_outbound_peers {
            Metrics::inc(&self.0.metrics.bitswap_refused, "reason", "too_many_peers");
            return;
        }
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
        let _ = tx.try_send(first);
        out.insert(peer, tx);
        // Weak, as above: the sender sits in `outbound`, so the writer ends
        // when the node (and the map) goes.
        let weak = Arc::downgrade(&self.0);
        let idle = self.0.config.idle_timeout;
        tokio::spawn(async move {
            let mut stream: Option<Stream> = None;
            while let Ok(Some(frame)) = tokio::time::timeout(idle, rx.recv()).await {
                if stream.is_none() {
                    let Some(me) = weak.upgrade().map(Bitswap) else {
                        return;
                    };
                    stream = me.open(peer).await;
                }
                let Some(s) = stream.as_mut() else { continue };
                let ok = tokio::time::timeout(WRITE_TIMEOUT, async {
                    s.write_all(&frame).await?;
                    s.flush().await
                })
                .await;
                match ok {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => {
                        debug!(%peer, error = %e, "bitswap write failed");
                        stream = None;
                    }
                    // A peer that does not read: give up on it (the queue
                    // and its frames go with this task).
                    Err(_) => {
                        debug!(%peer, "bitswap write timed out");
                        break;
                    }
                }
            }
            if let Some(mut s) = stream {
                let _ = s.close().await;
            }
            // Closed now: a later send sees it and starts a new writer.
            drop(rx);
            if let Some(me) = weak.upgrade() {
                lock(&me.outbound).retain(|_, t| !t.is_closed());
            }
        });
    }

    async fn open(&self, peer: PeerId) -> Option<Stream> {
        for proto in [BITSWAP_1_2, BITSWAP_1_1] {
            match self
                .0
                .control
                .clone()
                .open_stream(peer, proto.clone())
                .await
            {
                Ok(s) => return Some(s),
                Err(e) => debug!(%peer, %proto, error = %e, "cannot open bitswap stream"),
            }
        }
        None
    }

    /// Fetches block `cid` from `peers`, one at a time: the first that
    /// sends bytes hashing to `cid` wins.
    pub async fn fetch(&self, cid: Cid, peers: &[PeerId]) -> Result<Vec<u8>, BitswapError> {
        self.fetch_from(cid, peers).await.map(|(_, b)| b)
    }

    /// [`Bitswap::fetch`], saying which peer sent the block.
    pub async fn fetch_from(
        &self,
        cid: Cid,
        peers: &[PeerId],
    ) -> Result<(PeerId, Vec<u8>), BitswapError> {
        let mut reasons = vec![];
        for &peer in peers {
            let (tx, rx) = oneshot::channel();
            let id = self
                .0
                .next_waiter
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            lock(&self.0.waiters)
                .entry(cid)
                .or_default()
                .push((id, peer, tx));
            // Removes this waiter however the wait ends (also when the
            // fetch is dropped: an HTTP client that went away).
            let _guard = WaiterGuard {
                inner: &self.0,
                cid,
                id,
            };
            let want = |cancel| Message {
                wants: vec![WantEntry {
                    cid,
                    priority: 1,
                    cancel,
                    want_type: WantType::Block,
                    send_dont_have: true,
                }],
                ..Message::default()
            };
            self.send(peer, &want(false));
            match tokio::time::timeout(self.0.config.fetch_timeout, rx).await {
                Ok(Ok(Reply::Block(b))) => return Ok((peer, b)),
                Ok(Ok(Reply::DontHave)) => reasons.push(format!("{peer}: don't have")),
                Ok(Err(_)) => reasons.push(format!("{peer}: dropped")),
                Err(_) => {
                    reasons.push(format!(
                        "{peer}: no valid block within {:?}",
                        self.0.config.fetch_timeout
                    ));
                    self.send(peer, &want(true));
                }
            }
        }
        Err(BitswapError::NotFound {
            cid,
            tried: peers.len(),
            reasons: reasons.join("; "),
        })
    }

    /// Fetches may be waiting (for tests and stats).
    pub fn waiting(&self) -> usize {
        lock(&self.0.waiters).values().map(Vec::len).sum()
    }
}

/// Reads one length-prefixed frame (`None` at a clean end of stream).
async fn read_frame(s: &mut Stream) -> io::Result<Option<Vec<u8>>> {
    let mut len: u64 = 0;
    for i in 0..10 {
        let mut b = [0u8; 1];
        match s.read(&mut b).await? {
            0 if i == 0 => return Ok(None),
            0 => return Err(io::ErrorKind::UnexpectedEof.into()),
            _ => {}
        }
        len |= u64::from(b[0] & 0x7f) << (7 * i);
        if b[0] & 0x80 == 0 {
            let len = usize::try_from(len).unwrap_or(usize::MAX);
            if len > wire::MAX_MESSAGE {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("frame of {len} bytes over {}", wire::MAX_MESSAGE),
                ));
            }
            let mut buf = vec![0u8; len];
            s.read_exact(&mut buf).await?;
            return Ok(Some(buf));
        }
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidData,
        "frame length varint too long",
    ))
}

/// Removes one fetch's waiter when the fetch ends or is dropped.
struct WaiterGuard<'a> {
    inner: &'a Inner,
    cid: Cid,
    id: u64,
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        let mut w = lock(&self.inner.waiters);
        if let Some(list) = w.get_mut(&self.cid) {
            list.retain(|(id, _, _)| *id != self.id);
            if list.is_empty() {
                w.remove(&self.cid);
            }
        }
    }
}

#[cfg(test)]
mod tests;
