//! The node's service layer: it owns all node state, and everything else
//! (HTTP handlers, the CLI, tests) goes through a [`NodeHandle`].
//!
//! [`Node::spawn`] starts the swarm's event loop, the task that consumes
//! its events, and the announcer, and returns the handle. The services are
//! modules, each the one owner of its facts:
//!
//! - [`catalog`]: streams known, with their latest announcements (bounded);
//! - [`publisher`]: the streams this node publishes: sequence numbers,
//!   announcements, liveness;
//! - [`announcer`]: re-announces live streams, ends idle ones;
//! - [`playback`]: playlists of watched and published streams, and the
//!   [`PlaybackEvent`] seam (payments hook in there).
//!
//! Which streams the node follows, and which chunks it holds, is known
//! only to the swarm's relay core; the node asks it (`Client::joined`,
//! `Client::chunk`) instead of keeping a copy.

pub mod announcer;
pub mod bandwidth;
pub mod catalog;
pub mod chat;
pub mod error;
pub mod metrics;
pub mod offer;
pub mod payments;
pub mod playback;
pub mod publisher;
pub mod search;
pub mod social;
#[cfg(test)]
mod tests;
pub mod vod;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::registry::Registry;
use tokio::sync::{broadcast, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tracing::{info, warn};
use vilokanam_api::{ChunkInfo, NodeStats, OfferInfo, StreamInfo};
use vilokanam_storage::{NodeKeys, Store, StreamRole};
use vilokanam_swarm::libp2p::{identity, Multiaddr, PeerId};
use vilokanam_swarm::protocols::keys::paywall;
use vilokanam_swarm::wire::GossipMessage;
use vilokanam_swarm::{Client, Event, JoinReason, PeerInfo, SignedAnnouncement, StreamId};

pub use error::NodeError;
pub use playback::PlaybackEvent;
pub use publisher::PublishedSegment;

use crate::config::NodeConfig;
use catalog::{Catalog, Change};
use metrics::NodeMetrics;
use playback::{Local, Playback};
use publisher::{now_ms, Publisher};

/// What the node is, for `/api/v0/id`.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Transport identity.
    pub peer_id: PeerId,
    /// Creator key (hex).
    pub creator_key: String,
    /// Creator key (bytes): names this node's streams, signs its chat.
    pub creator: [u8; 32],
    /// Voucher key (hex).
    pub voucher_key: String,
}

pub(crate) struct Inner {
    config: NodeConfig,
    identity: Identity,
    swarm: Client,
    store: Store,
    registry: Registry,
    metrics: NodeMetrics,
    catalog: Mutex<Catalog>,
    publisher: Publisher,
    playback: Mutex<Playback>,
    /// The price cap of each watched stream that has one (at most one
    /// entry per watched stream: set by `watch`, dropped by `unwatch`).
    price_caps: Mutex<HashMap<StreamId, u128>>,
    payments: payments::Payments,
    /// The bandwidth market: paying servers, checking payers' vouchers.
    bandwidth: bandwidth::Bandwidth,
    /// What this node charges for serving payloads (told to every peer).
    bandwidth_terms: vilokanam_swarm::BandwidthTerms,
    playback_events: broadcast::Sender<PlaybackEvent>,
    listen: watch::Receiver<Vec<Multiaddr>>,
    /// The key-only listener, when configured (its addresses go in offers).
    key_listener: std::sync::OnceLock<vilokanam_swarm::protocols::keys::listener::KeyListener>,
    stop: watch::Sender<bool>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    /// Bumped after each recorded chunk (the end of a stream waits for its
    /// last chunk's recording before building the VOD).
    recorded: watch::Sender<u64>,
    /// The recorder task's queue ([`vod::spawn_recorder`]).
    recorder: mpsc::Sender<vod::RecordCmd>,
    /// VODs being pinned on the IPFS daemon (one task per root at most).
    ipfs_pinning: Mutex<std::collections::HashSet<String>>,
    /// At most two pins to the IPFS daemon at once.
    ipfs_pins: Arc<tokio::sync::Semaphore>,
    /// The paywalls of the last VODs played or asked about (`None`: free).
    paid_vods: Mutex<lru::LruCache<vilokanam_storage::unixfs::Cid, Option<Arc<vod::PaidVod>>>>,
    /// When this node last announced its VODs to a new subscriber (ms).
    vods_offered_ms: std::sync::atomic::AtomicU64,
    /// How far players may fetch ahead in the paid VODs they play.
    vod_paces: Mutex<
        lru::LruCache<vilokanam_storage::unixfs::Cid, Arc<tokio::sync::Mutex<vod::paid::Pace>>>,
    >,
    /// This node's paid VODs, by stream (their keys stay on sale): the
    /// root, and its offer once read.
    own_paid_vods: Mutex<HashMap<StreamId, (String, Option<vilokanam_swarm::Offer>)>>,
    /// Chat: the signing key, its proof of work, the API's event channel.
    chat: chat::ChatDesk,
    /// Profiles, follows and the feed.
    social: social::SocialDesk,
    /// The search index (streams and VODs heard of, creator names).
    search: Arc<vilokanam_storage::search::SearchIndex>,
}

/// The node; see the module docs.
pub struct Node;

/// A cloneable handle to a running node.
#[derive(Clone)]
pub struct NodeHandle {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding a short critical section leaves consistent
    // data (every section is a single update); keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// A 32-byte key from 64 hex digits; the error says what was given and
/// why it is not one (each service wraps it in its own error).
fn parse_hex_key(s: &str, what: &str) -> Result<[u8; 32], String> {
    let mut k = [0u8; 32];
    hex::decode_to_slice(s, &mut k)
        .map_err(|e| format!("{what} {s:?} is not a 64-digit hex key: {e}"))?;
    Ok(k)
}

fn parse_stream(s: &str) -> Result<StreamId, NodeError> {
    s.parse().map_err(|reason| NodeError::InvalidStreamId {
        input: s.to_owned(),
        reason,
    })
}

/// How long shutdown may spend claiming held vouchers.
const CLAIM_AT_SHUTDOWN: Duration = Duration::from_secs(60);

/// How long shutdown lets the event loop send the end announcements.
const SHUTDOWN_GRACE: Duration = Duration::from_millis(300);

/// The playlist path of a stream on this node.
pub fn playlist_path(stream: &StreamId) -> String {
    format!("/streams/{stream}/live.m3u8")
}

impl Node {
    /// Starts a node: swarm, event consumer, announcer. `config` must be
    /// valid ([`NodeConfig::validate`]). Returns once every listen address
    /// is bound.
    pub async fn spawn(
        config: NodeConfig,
        keys: NodeKeys,
        store: Store,
    ) -> Result<NodeHandle, NodeError> {
        Self::spawn_with_chain(config, keys, store, None).await
    }

    /// [`Node::spawn`], with the settlement chain (and the node's account)
    /// for paid streams: selling keys as a creator, paying as a viewer.
    pub async fn spawn_with_chain(
        config: NodeConfig,
        keys: NodeKeys,
        store: Store,
        chain: Option<payments::ChainAccess>,
    ) -> Result<NodeHandle, NodeError> {
        let keypair = identity::Keypair::ed25519_from_bytes(keys.transport.to_bytes())
            .map_err(|e| NodeError::Swarm(vilokanam_swarm::SwarmError::Build(e.to_string())))?;
        let peer_id = keypair.public().to_peer_id();
        let mut net = config
            .network()
            .map_err(|e| NodeError::Swarm(vilokanam_swarm::SwarmError::Build(e.to_string())))?;
        if config.discovery {
            for (peer, rec) in store.peers.recent(16)? {
                if let Some(addr) = rec.addrs.first().and_then(|a| a.parse::<Multiaddr>().ok()) {
                    if peer != peer_id.to_string() && !net.bootstrap.contains(&addr) {
                        net.bootstrap.push(addr);
                    }
                }
            }
        }
        let payments = payments::Payments::new(
            chain,
            keys.voucher.clone(),
            store.vouchers.clone(),
            store.sessions.clone(),
            config.channel_grace_blocks,
            keys.creator.verifying_key().to_bytes(),
        );
        let settings = config
            .bandwidth_settings()
            .map_err(|e| NodeError::Bandwidth(format!("{e:#}")))?;
        // A fee or a willingness to pay one needs the chain now: the terms
        // name its genesis, and peers' terms are checked against it.
        let (genesis, account) = if settings.fee_per_mib > 0 || settings.max_fee_per_mib > 0 {
            let genesis = payments
                .chain()
                .await
                .map_err(|e| NodeError::Bandwidth(format!("cannot reach the chain: {e}")))?
                .genesis();
            let account = payments
                .account()
                .ok()
                .map(|k| vilokanam_chain::account::account_id(&k));
            (Some(genesis), account)
        } else {
            (None, None)
        };
        if settings.max_fee_per_mib > 0 && account.is_none() {
            return Err(NodeError::Bandwidth(
                "max_fee needs a chain account to pay from (`vilokanam account new` or `account import`)"
                    .into(),
            ));
        }
        let bandwidth_terms =
            bandwidth::terms_of(&settings, genesis, account).map_err(NodeError::Bandwidth)?;
        net.bandwidth.terms = bandwidth_terms;
        let mut registry = Registry::default();
        let key_listen = config
            .key_listen_addrs()
            .map_err(|e| NodeError::Swarm(vilokanam_swarm::SwarmError::Build(e.to_string())))?;
        let key_keypair = keypair.clone();
        let (swarm, events, event_loop) = vilokanam_swarm::new(keypair, net, &mut registry)?;
        let metrics = NodeMetrics::new(&mut registry);
        let (playback_events, _) = broadcast::channel(1024);
        let (listen_tx, listen_rx) = watch::channel(vec![]);
        let (stop, _) = watch::channel(false);
        let identity = Identity {
            peer_id,
            creator_key: hex::encode(keys.creator.verifying_key().to_bytes()),
            creator: keys.creator.verifying_key().to_bytes(),
            voucher_key: hex::encode(keys.voucher.verifying_key().to_bytes()),
        };
        let recorded = watch::channel(0).0;
        let (recorder, recorder_task) =
            vod::spawn_recorder(store.clone(), metrics.clone(), recorded.clone());
        let inner = Arc::new(Inner {
            catalog: Mutex::new(Catalog::new(config.max_known_streams)),
            publisher: Publisher::new(keys.creator.clone(), store.streams.clone()),
            playback: Mutex::new(Playback::new(config.playlist_len, playback_events.clone())),
            price_caps: Mutex::new(HashMap::new()),
            payments,
            bandwidth: bandwidth::Bandwidth::new(settings, genesis),
            bandwidth_terms,
            playback_events,
            listen: listen_rx.clone(),
            key_listener: std::sync::OnceLock::new(),
            identity,
            swarm,
            store,
            registry,
            metrics,
            stop,
            tasks: Mutex::new(vec![recorder_task]),
            recorded,
            recorder,
            ipfs_pinning: Mutex::new(Default::default()),
            ipfs_pins: Arc::new(tokio::sync::Semaphore::new(2)),
            paid_vods: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(vod::paid::MANIFESTS_KEPT)
                    .unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            own_paid_vods: Mutex::new(HashMap::new()),
            chat: chat::ChatDesk::new(),
            social: social::SocialDesk::new(),
            search: Arc::new(
                vilokanam_storage::search::SearchIndex::new()
                    .map_err(|e| NodeError::InvalidSocial(e.to_string()))?,
            ),
            vods_offered_ms: Default::default(),
            vod_paces: Mutex::new(lru::LruCache::new(
                std::num::NonZeroUsize::new(vod::paid::MANIFESTS_KEPT)
                    .unwrap_or(std::num::NonZeroUsize::MIN),
            )),
            config,
        });
        let node = NodeHandle { inner };
        node.restore()?;
        node.load_own_paid_vods();
        {
            let task = search::spawn_committer(&node.inner);
            lock(&node.inner.tasks).push(task);
        }
        node.inner
            .store
            .recordings
            .set_quota(node.inner.config.record_quota_mib.saturating_mul(1 << 20));
        {
            let n = node.clone();
            let task = tokio::spawn(async move {
                n.restore_social().await;
                let resigner = n.spawn_resigner();
                lock(&n.inner.tasks).push(resigner);
                n.build_left_vods().await;
                n.collect_garbage().await;
                n.resume_ipfs_pins();
            });
            lock(&node.inner.tasks).push(task);
        }
        node.inner
            .swarm
            .serve_keys(Arc::new(KeyDesk(Arc::downgrade(&node.inner))))?;
        node.inner.swarm.bitswap().serve(Arc::new(vod::StoreBlocks(
            node.inner.store.recordings.clone(),
        )))?;
        if !key_listen.is_empty() {
            let listener = node
                .inner
                .swarm
                .start_key_listener(
                    key_keypair,
                    &key_listen,
                    Arc::new(KeyDesk(Arc::downgrade(&node.inner))),
                    node.inner.config.max_connections,
                )
                .await?;
            let _ = node.inner.key_listener.set(listener);
        }
        let swarm_task = tokio::spawn(event_loop.run());
        let events_task = tokio::spawn(consume(node.inner.clone(), events, listen_tx));
        let announcer = tokio::spawn(announcer::run(node.clone(), node.inner.stop.subscribe()));
        lock(&node.inner.tasks).extend([swarm_task, events_task, announcer]);
        let wanted = node.inner.config.listen.len();
        let mut rx = listen_rx;
        tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|l| l.len() >= wanted))
            .await
            .map_err(|_| {
                NodeError::Swarm(vilokanam_swarm::SwarmError::Build(
                    "timed out waiting for the listen addresses".into(),
                ))
            })?
            .map_err(|_| NodeError::ShuttingDown)?;
        Ok(node)
    }
}

/// The node's answer to key requests (the swarm's key sessions call it
/// directly, one request of a session at a time). Holds the node weakly:
/// the swarm's session tasks must not keep a stopped node alive.
struct KeyDesk(std::sync::Weak<Inner>);

impl vilokanam_swarm::protocols::keys::session::KeyService for KeyDesk {
    fn answer(
        &self,
        peer: PeerId,
        request: vilokanam_swarm::protocols::keys::wire::KeyRequest,
    ) -> vilokanam_swarm::protocols::keys::session::KeyAnswer {
        use vilokanam_swarm::protocols::keys::wire::{KeyRefusal, KeyResponse};
        let inner = self.0.clone();
        Box::pin(async move {
            let Some(inner) = inner.upgrade() else {
                return KeyResponse::Refused(KeyRefusal::NotServed);
            };
            let mut paid = inner.publisher.paid_stream(&request.stream).await;
            // A stream this node holds a paid VOD of: its keys stay on
            // sale, for any past epoch.
            let node = NodeHandle {
                inner: inner.clone(),
            };
            let vod_offer = node.own_paid_vod_offer(&request.stream).await;
            if paid.is_none() {
                paid = vod_offer.clone().map(|o| {
                    let secret = vilokanam_swarm::protocols::keys::paywall::StreamSecret::derive(
                        inner.publisher.signing_key(),
                        &request.stream,
                    );
                    (o, secret)
                });
            }
            let epoch_secs = paid.as_ref().map(|(o, _)| o.epoch_secs);
            let mut response = inner
                .payments
                .answer(peer, &request, paid, vod_offer.is_some())
                .await;
            // With the key, a pass for the viewer's chat key: it pays until
            // two epochs from now (a viewer buys a key every epoch), and a
            // paid-viewers-only chat lets it in.
            if let (KeyResponse::Granted { pass, .. }, Some(holder), Some(epoch_secs)) =
                (&mut response, request.holder, epoch_secs)
            {
                let until_ms =
                    publisher::now_ms() + u64::from(epoch_secs).saturating_mul(2).max(60) * 1000;
                *pass = vilokanam_swarm::protocols::chat::wire::ViewerPass {
                    stream: request.stream.clone(),
                    holder,
                    until_ms,
                }
                .sign(inner.publisher.signing_key())
                .ok();
            }
            match &response {
                KeyResponse::Refused(r) => {
                    tracing::debug!(%peer, stream = %request.stream, epoch = request.epoch, refusal = %r, "key refused");
                    let reason = match r {
                        KeyRefusal::NotServed => "not_served",
                        KeyRefusal::EpochOutOfRange { .. } => "epoch",
                        KeyRefusal::Unpaid { .. } => "unpaid",
                        KeyRefusal::BadVoucher(_) => "bad_voucher",
                        KeyRefusal::BadChannel(_) => "bad_channel",
                        KeyRefusal::Busy => "busy",
                        _ => "other",
                    };
                    NodeMetrics::inc(&inner.metrics.keys_refused, "reason", reason);
                }
                KeyResponse::Granted { .. } => {
                    inner.metrics.keys_granted.inc();
                }
            }
            response
        })
    }
}

/// Consumes the swarm's events: chunks into playlists, announcements into
/// the catalog, peers into the store.
async fn consume(
    inner: Arc<Inner>,
    mut events: mpsc::Receiver<Event>,
    listen: watch::Sender<Vec<Multiaddr>>,
) {
    while let Some(ev) = events.recv().await {
        match ev {
            Event::ChunkReady(chunk) => {
                NodeHandle {
                    inner: inner.clone(),
                }
                .on_chunk_for_recording(&chunk);
                let h = &chunk.header.header;
                let meta = vilokanam_media::hls::SegmentMeta {
                    duration: h.duration(),
                    discontinuity: h.discontinuity,
                    pdt_ms: Some(chunk.header.program_date_ms()),
                    parts: h.parts.len() as u16,
                };
                lock(&inner.playback).on_segment(&h.stream, h.seq, meta);
            }
            Event::PartReady(part) => {
                lock(&inner.playback).on_part(&part.header.header);
            }
            Event::ChunkMissing { stream, seq } => {
                lock(&inner.playback).on_missing(&stream, seq);
            }
            Event::ChatMessage {
                message,
                from_history,
            } => NodeHandle {
                inner: inner.clone(),
            }
            .on_chat_message(&message, from_history),
            Event::SocialRecord { record, .. } => NodeHandle {
                inner: inner.clone(),
            }
            .on_social_record(&record),
            Event::ChatModeration { action } => NodeHandle {
                inner: inner.clone(),
            }
            .on_chat_action(*action),
            Event::VodAnnounced { vod, .. } => {
                let node = NodeHandle {
                    inner: inner.clone(),
                };
                tokio::spawn(async move { node.on_vod_announced(*vod).await });
            }
            Event::Announcement { announcement, .. } => {
                let a = &announcement.announcement;
                if inner.config.record && a.ended && !inner.publisher.publishes(&a.stream) {
                    let node = NodeHandle {
                        inner: inner.clone(),
                    };
                    let signed = (*announcement).clone();
                    tokio::spawn(async move {
                        // Every chunk that came before the end is queued
                        // before this: wait until it is written.
                        node.recording_barrier().await;
                        if let Err(e) = node.build_vod(&signed).await {
                            warn!(stream = %signed.announcement.stream, error = %e, "building a recorded VOD failed");
                        }
                    });
                }
                let change = NodeHandle::on_announcement(&inner, (*announcement).clone());
                social::on_announcement(&inner, &announcement, change);
            }
            Event::PeerConnected { peer, addr } => {
                let full = addr.with_p2p(peer).unwrap_or_else(|a| a);
                if let Err(e) =
                    inner
                        .store
                        .peers
                        .remember(&peer.to_string(), &full.to_string(), now_ms())
                {
                    warn!(error = %e, "cannot remember peer");
                }
            }
            Event::Listening(addr) => listen.send_modify(|l| l.push(addr)),
            Event::Terms { peer, terms } => bandwidth::on_terms(&inner, peer, terms).await,
            Event::Verified { peer, bytes, .. } => {
                bandwidth::on_verified(&inner, peer, bytes).await
            }
            Event::PaymentDemanded { peer, owed, paid } => {
                tracing::debug!(%peer, owed, paid, "a peer asks to be paid");
                let inner = inner.clone();
                tokio::spawn(async move { bandwidth::on_demand(&inner, peer, paid).await });
            }
            Event::PaymentReceived { peer, payment } => {
                // Checked off the event loop: a chain lookup must not hold
                // up playback.
                let inner = inner.clone();
                tokio::spawn(async move { bandwidth::on_payment(&inner, peer, payment).await });
            }
            Event::Rejected { reason, .. } => {
                let label = match &reason {
                    vilokanam_swarm::RejectReason::Gossip(_) => "gossip",
                    vilokanam_swarm::RejectReason::Misbehaviour(m) => m.label(),
                    _ => "other",
                };
                NodeMetrics::inc(&inner.metrics.rejected_from_peers, "reason", label);
            }
            Event::Subscribed { topic, .. }
                if topic == vilokanam_swarm::protocols::live::wire::ANNOUNCE_TOPIC =>
            {
                NodeHandle {
                    inner: inner.clone(),
                }
                .on_announce_subscriber();
            }
            _ => {}
        }
    }
}

impl NodeHandle {
    fn restore(&self) -> Result<(), NodeError> {
        let mut catalog = lock(&self.inner.catalog);
        for (id, rec) in self.inner.store.streams.all()? {
            let Ok(stream) = id.parse::<StreamId>() else {
                continue;
            };
            let announcement = match GossipMessage::decode(&rec.announcement) {
                Ok(GossipMessage::Announce(a)) if a.verify().is_ok() => Some(a),
                _ => None,
            };
            catalog.restore(stream, announcement);
        }
        self.inner.metrics.known_streams.set(catalog.len() as i64);
        Ok(())
    }

    fn on_announcement(inner: &Inner, a: SignedAnnouncement) -> Change {
        search::index(inner, search::stream_doc(&a));
        let id = a.announcement.stream.clone();
        let (ended, last) = (a.announcement.ended, a.announcement.last_seq);
        let change = {
            let mut c = lock(&inner.catalog);
            let change = c.on_announcement(Instant::now(), a.clone());
            inner.metrics.known_streams.set(c.len() as i64);
            change
        };
        let watched = {
            let mut p = lock(&inner.playback);
            match change {
                Change::Ended => p.on_end(&id, last),
                Change::Restarted => p.on_restart(&id),
                Change::New if ended => p.on_end(&id, last),
                _ => {}
            }
            p.watching(&id)
        };
        // Watched streams are kept across restarts, with what was heard.
        if watched && change != Change::Outdated {
            let encoded = GossipMessage::Announce(a).encode();
            let r = inner
                .store
                .streams
                .update(&id.to_string(), StreamRole::Watched, |r| {
                    r.announcement = encoded.clone();
                    r.updated_ms = now_ms();
                });
            if let Err(e) = r {
                warn!(stream = %id, error = %e, "cannot store the announcement");
            }
        }
        change
    }

    /// Sends an announcement this node signed, and records it locally.
    async fn send_announcement(&self, a: SignedAnnouncement) -> Result<(), NodeError> {
        self.inner.swarm.announce(a.clone()).await?;
        self.inner.metrics.announcements_sent.inc();
        let _ = Self::on_announcement(&self.inner, a);
        Ok(())
    }

    /// This node's identity.
    pub fn identity(&self) -> &Identity {
        &self.inner.identity
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &NodeConfig {
        &self.inner.config
    }

    /// The addresses this node's offers name for buying keys: the
    /// key-only listener's, or the listen addresses without one.
    pub fn key_server_addrs(&self) -> Vec<String> {
        self.key_server_addr().addrs
    }

    /// Listen addresses, with `/p2p/<peer id>`.
    pub fn listen_addrs(&self) -> Vec<String> {
        let peer = self.inner.identity.peer_id;
        self.inner
            .listen
            .borrow()
            .iter()
            .map(|a| a.clone().with_p2p(peer).unwrap_or_else(|a| a).to_string())
            .collect()
    }

    /// This node as a seller of epoch keys: its peer id and (at most four,
    /// loopback last) listen addresses, for a paid stream's offer.
    fn key_server_addr(&self) -> vilokanam_swarm::wire::KeyServerAddr {
        use vilokanam_swarm::wire::{MAX_ADDR, MAX_KEY_SERVER_ADDRS};
        let to_text = |l: &[Multiaddr]| -> Vec<String> {
            l.iter()
                .map(|a| a.to_string())
                .filter(|a| a.len() <= MAX_ADDR)
                .collect()
        };
        let mut addrs = match self.inner.key_listener.get() {
            Some(l) => to_text(l.addrs()),
            None => to_text(&self.inner.listen.borrow()),
        };
        addrs.sort_by_key(|a| a.contains("/127.0.0.1/") || a.contains("/::1/"));
        addrs.truncate(MAX_KEY_SERVER_ADDRS);
        vilokanam_swarm::wire::KeyServerAddr {
            peer_id: self.inner.identity.peer_id.to_bytes(),
            addrs,
        }
    }

    /// Whether `stream` is paid (its last announcement carries an offer).
    pub fn is_paid_stream(&self, stream: &str) -> bool {
        parse_stream(stream)
            .map(|id| self.offer_of(&id).is_some())
            .unwrap_or(false)
    }

    /// The signed offer of a stream, if it is paid (as last announced).
    fn offer_of(&self, id: &StreamId) -> Option<vilokanam_swarm::Offer> {
        lock(&self.inner.catalog)
            .get(id)
            .and_then(|e| e.announcement.as_ref())
            .and_then(|a| a.announcement.offer.clone())
    }

    /// Connected peers with scores.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NodeError> {
        Ok(self.inner.swarm.peers().await?)
    }

    /// Sets the payment gauges (earned, claimed, spent) from the store:
    /// read on every scrape, not after every key answer (a creator with
    /// thousands of viewers would read every held voucher per request).
    pub async fn refresh_metrics(&self) {
        if let Ok(l) = self.inner.swarm.ledger().await {
            let m = &self.inner.metrics;
            let i = |v: u128| i64::try_from(v).unwrap_or(i64::MAX);
            m.bandwidth_served_bytes
                .set(i64::try_from(l.totals.served_bytes).unwrap_or(i64::MAX));
            m.bandwidth_earned_planck.set(i(l.earned));
            m.bandwidth_paid_planck.set(i(l.totals.paid));
            m.bandwidth_outstanding_planck.set(i(l.outstanding));
            m.bandwidth_cut_offs
                .set(i64::try_from(l.totals.cut_offs).unwrap_or(i64::MAX));
        }
        self.inner
            .payments
            .update_metrics(&self.inner.metrics)
            .await;
    }

    /// The metrics registry, as Prometheus text.
    pub fn metrics_text(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.inner.registry);
        out
    }

    /// Node metrics (for the HTTP layer's own counters).
    pub fn metrics(&self) -> &NodeMetrics {
        &self.inner.metrics
    }

    /// Playback events (segments served to local players, watch changes).
    pub fn playback_events(&self) -> broadcast::Receiver<PlaybackEvent> {
        self.inner.playback_events.subscribe()
    }

    /// What the node holds now.
    pub async fn stats(&self) -> Result<NodeStats, NodeError> {
        let s = self.inner.swarm.stats().await?;
        Ok(NodeStats {
            known_streams: lock(&self.inner.catalog).len(),
            joined_streams: s.core.streams,
            relayed_streams: s.core.relayed,
            chunks_held: s.core.chunks,
            chunk_bytes_held: s.core.bytes,
            pending_fetches: s.core.pending,
            tracked_announcements: s.tracked_announcements,
            announce_sources: s.announce_sources,
            remote_subscriptions: s.remote_subscriptions,
            app_scores: s.app_scores,
            peers: s.peers,
            stored_streams: self.inner.store.streams.len(),
            store_bytes: self.inner.store.size_on_disk()?,
            http_in_flight: 0,
        })
    }

    fn info(
        &self,
        id: &StreamId,
        entry: Option<&catalog::Entry>,
        reasons: &[JoinReason],
        now: Instant,
    ) -> StreamInfo {
        let stale = self.inner.config.announce_interval() * 4;
        let a = entry
            .and_then(|e| e.announcement.as_ref())
            .map(|a| &a.announcement);
        let (watching, publishing, (latency_ms, part_target)) = {
            let p = lock(&self.inner.playback);
            (
                p.watching(id),
                p.publishing(id),
                p.latency(id, publisher::now_ms()),
            )
        };
        StreamInfo {
            id: id.to_string(),
            title: a.map(|a| a.title.clone()),
            tags: a.map(|a| a.tags.clone()).unwrap_or_default(),
            codec: a.map(|a| a.codec.clone()),
            started_at_ms: a.map(|a| a.started_at_ms),
            last_seq: a.and_then(|a| a.last_seq),
            state: entry.map_or(vilokanam_api::StreamState::Quiet, |e| e.state(now, stale)),
            watching,
            publishing,
            relaying: reasons.contains(&JoinReason::Relay),
            playlist: playlist_path(id),
            offer: a.and_then(|a| a.offer.as_ref()).map(offer::to_api),
            latency_ms,
            part_target_ms: part_target.map(|d| d.as_millis() as u64),
        }
    }

    /// Every known stream, sorted by id.
    pub async fn streams(&self) -> Result<Vec<StreamInfo>, NodeError> {
        let joined = self.inner.swarm.joined().await?;
        let now = Instant::now();
        let reasons = |id: &StreamId| {
            joined
                .iter()
                .find(|(s, _)| s == id)
                .map(|(_, r)| r.clone())
                .unwrap_or_default()
        };
        let entries: Vec<(StreamId, catalog::Entry)> = lock(&self.inner.catalog)
            .all()
            .map(|(id, e)| (id.clone(), e.clone()))
            .collect();
        let mut out: Vec<StreamInfo> = entries
            .iter()
            .map(|(id, e)| self.info(id, Some(e), &reasons(id), now))
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }

    /// One stream.
    pub async fn stream(&self, stream: &str) -> Result<StreamInfo, NodeError> {
        let id = parse_stream(stream)?;
        let entry = lock(&self.inner.catalog).get(&id).cloned();
        let reasons = self
            .inner
            .swarm
            .joined()
            .await?
            .into_iter()
            .find(|(s, _)| *s == id)
            .map(|(_, r)| r)
            .unwrap_or_default();
        if entry.is_none() && reasons.is_empty() {
            return Err(NodeError::UnknownStream {
                stream: id.to_string(),
            });
        }
        Ok(self.info(&id, entry.as_ref(), &reasons, Instant::now()))
    }

    /// Follows `stream` for the user (idempotent); returns its id.
    pub async fn watch(
        &self,
        stream: &str,
        max_price: Option<u128>,
    ) -> Result<StreamId, NodeError> {
        self.watch_paying(stream, max_price, None).await
    }

    /// [`NodeHandle::watch`], paying for a paid stream from a budget (one
    /// on-chain channel for the session): `(budget, ceiling)`, where the
    /// node tops the channel up by the budget while the total stays
    /// within the ceiling.
    pub async fn watch_paying(
        &self,
        stream: &str,
        max_price: Option<u128>,
        budget: Option<(u128, u128)>,
    ) -> Result<StreamId, NodeError> {
        let id = parse_stream(stream)?;
        // The user's cap, else the configured one (validated at start).
        let cap = max_price.or(self.inner.config.max_price_per_sec().ok().flatten());
        if let Some(cap) = cap {
            self.check_price(&id, cap)?;
        }
        if let Some((budget, ceiling)) = budget {
            let offer = self.offer_of(&id).ok_or_else(|| NodeError::Payment {
                stream: id.to_string(),
                reason: "its terms are not known yet (no announcement heard, or a free stream): try again once it is listed as paid".into(),
            })?;
            self.inner
                .payments
                .open_session(&id, &offer, budget, ceiling)
                .await?;
        }
        self.inner
            .swarm
            .join(id.clone(), JoinReason::Watch, None)
            .await?;
        lock(&self.inner.catalog).pin(&id);
        lock(&self.inner.playback).open(&id, Local::Watch);
        // Known already? Bring the playlist up to what was announced.
        let known = lock(&self.inner.catalog)
            .get(&id)
            .and_then(|e| e.announcement.clone());
        let encoded = known
            .as_ref()
            .map(|a| GossipMessage::Announce(a.clone()).encode())
            .unwrap_or_default();
        if let Some(a) = known.filter(|a| a.announcement.ended) {
            lock(&self.inner.playback).on_end(&id, a.announcement.last_seq);
        }
        self.inner
            .store
            .streams
            .update(&id.to_string(), StreamRole::Watched, |r| {
                if r.announcement.is_empty() {
                    r.announcement = encoded.clone();
                }
                r.updated_ms = now_ms();
            })?;
        {
            let mut caps = lock(&self.inner.price_caps);
            match cap {
                Some(cap) => caps.insert(id.clone(), cap),
                None => caps.remove(&id),
            };
        }
        if let Err(e) = self.chat_join_id(&id).await {
            warn!(stream = %id, error = %e, "cannot join the stream's chat");
        }
        info!(stream = %id, "watching");
        Ok(id)
    }

    /// Refuses a stream whose announced price is above `cap`. A stream not
    /// announced yet passes; its playlist is refused once its price is
    /// heard (see [`NodeHandle::playlist`]).
    fn check_price(&self, id: &StreamId, cap: u128) -> Result<(), NodeError> {
        let price = lock(&self.inner.catalog)
            .get(id)
            .and_then(|e| e.announcement.as_ref())
            .and_then(|a| a.announcement.offer.as_ref())
            .map(|o| o.price_per_sec);
        match price {
            Some(price) if price > cap => Err(NodeError::TooExpensive {
                stream: id.to_string(),
                price,
                cap,
            }),
            _ => Ok(()),
        }
    }

    /// Stops following `stream` for the user, and forgets it (also a
    /// watched stream restored from the store after a restart).
    pub async fn unwatch(&self, stream: &str) -> Result<(), NodeError> {
        let id = parse_stream(stream)?;
        self.inner
            .payments
            .end_session(&self.inner.swarm, &id)
            .await;
        let key = id.to_string();
        let watching = lock(&self.inner.playback).watching(&id);
        let stored = self
            .inner
            .store
            .streams
            .get(&key)?
            .is_some_and(|r| r.role == StreamRole::Watched);
        if !watching && !stored {
            return Err(NodeError::NotWatched { stream: key });
        }
        if watching {
            self.inner
                .swarm
                .leave(id.clone(), JoinReason::Watch)
                .await?;
            lock(&self.inner.playback).close(&id, Local::Watch);
            lock(&self.inner.price_caps).remove(&id);
            // The chat goes with the stream (it stays while this node
            // still relays or publishes the stream).
            if !lock(&self.inner.playback).publishing(&id) {
                let _ = self.inner.swarm.chat_leave(id.clone()).await;
                lock(&self.inner.chat.replayed).remove(&id);
            }
        }
        if !lock(&self.inner.playback).publishing(&id) {
            lock(&self.inner.catalog).unpin(&id);
            if stored {
                self.inner.store.streams.remove(&key)?;
            }
        }
        Ok(())
    }

    /// Starts (or restarts) publishing stream `name`; with an offer, the
    /// stream is paid and its announcement carries the signed terms.
    pub async fn start_publish(
        &self,
        name: &str,
        title: String,
        tags: Vec<String>,
        codec: String,
        offer: Option<&OfferInfo>,
    ) -> Result<(StreamId, u64), NodeError> {
        let server = self.key_server_addr();
        let offer = offer
            .map(|o| offer::from_api(o, server.clone()))
            .transpose()?;
        let started = self
            .inner
            .publisher
            .start(name, title, tags, codec, offer)
            .await?;
        let id = started.stream;
        self.inner
            .swarm
            .join(id.clone(), JoinReason::Publish, None)
            .await?;
        lock(&self.inner.catalog).pin(&id);
        lock(&self.inner.playback).open(&id, Local::Publish);
        if let Some(closed) = started.closed {
            self.publish_closed(closed).await;
        }
        self.send_announcement(started.announcement).await?;
        if let Err(e) = self.chat_join_id(&id).await {
            warn!(stream = %id, error = %e, "cannot join the stream's chat");
        }
        Ok((id, started.next_seq))
    }

    /// Publishes one MPEG-TS segment of stream `name`.
    pub async fn publish_segment(
        &self,
        name: &str,
        duration_us: u32,
        discontinuity: bool,
        body: Bytes,
    ) -> Result<PublishedSegment, NodeError> {
        let prepared = match self
            .inner
            .publisher
            .segment(name, duration_us, discontinuity, body)
            .await
        {
            Ok(p) => p,
            Err(e) => {
                let reason = match &e {
                    NodeError::BadSegment(_) => "invalid_media",
                    NodeError::NotStarted { .. } => "not_started",
                    NodeError::Ended { .. } => "ended",
                    _ => "other",
                };
                NodeMetrics::inc(&self.inner.metrics.segments_refused, "reason", reason);
                return Err(e);
            }
        };
        if let Some(a) = prepared.resumed {
            lock(&self.inner.playback).on_restart(&a.announcement.stream);
            self.send_announcement(a).await?;
        }
        let h = &prepared.chunk.header.header;
        let out = PublishedSegment {
            seq: h.seq,
            cid: h.cid,
            size: prepared.chunk.payload.len(),
        };
        self.inner.swarm.publish(prepared.chunk).await?;
        self.inner.metrics.segments_published.inc();
        Ok(out)
    }

    /// Publishes one part (LL-HLS) of the segment in progress of stream
    /// `name` (a segment left open before it is completed first).
    pub async fn publish_part(
        &self,
        name: &str,
        q: &vilokanam_api::PartQuery,
        body: Bytes,
    ) -> Result<publisher::PublishedPart, NodeError> {
        let prepared = self
            .inner
            .publisher
            .part(name, q, body)
            .await
            .inspect_err(|e| {
                let reason = match e {
                    NodeError::BadSegment(_) => "invalid_media",
                    NodeError::NotStarted { .. } => "not_started",
                    NodeError::Ended { .. } => "ended",
                    NodeError::PartOutOfOrder { .. } => "part_out_of_order",
                    _ => "other",
                };
                NodeMetrics::inc(&self.inner.metrics.segments_refused, "reason", reason);
            })?;
        if let Some(a) = prepared.resumed {
            lock(&self.inner.playback).on_restart(&a.announcement.stream);
            self.send_announcement(a).await?;
        }
        if let Some(closed) = prepared.closed {
            self.publish_closed(closed).await;
        }
        let h = &prepared.part.header.header;
        let out = publisher::PublishedPart {
            seq: h.seq,
            index: h.index,
            cid: h.cid,
        };
        self.inner.swarm.publish_part(prepared.part).await?;
        Ok(out)
    }

    /// Publishes the end of a stream: the segment it left open (completed
    /// with its parts), then the signed end.
    async fn send_ending(&self, e: publisher::Ending) -> Result<(), NodeError> {
        if let Some(closed) = e.closed {
            self.publish_closed(closed).await;
        }
        let signed = e.announcement.clone();
        let a = &signed.announcement;
        self.send_announcement(e.announcement).await?;
        // The last chunk's recording runs off the event task: wait for it
        // (bounded) so the VOD has every chunk.
        self.recorded_through(a).await;
        self.recording_barrier().await;
        if let Err(e) = self.build_vod(&signed).await {
            warn!(stream = %a.stream, error = %e, "building the VOD failed (the recording is kept)");
        }
        Ok(())
    }

    /// Publishes a segment completed from its parts; a failure is logged
    /// (what follows, an end or a new segment, goes out regardless).
    async fn publish_closed(&self, closed: vilokanam_swarm::Chunk) {
        match self.inner.swarm.publish(closed).await {
            Ok(()) => {
                self.inner.metrics.segments_published.inc();
            }
            Err(e) => warn!(error = %e, "could not publish a segment completed from its parts"),
        }
    }

    /// Ends stream `name`.
    pub async fn end_publish(&self, name: &str) -> Result<(), NodeError> {
        let e = self.inner.publisher.end(name).await?;
        self.send_ending(e).await
    }

    /// Waits for a playback change until `until` (at most `poll` at a
    /// time: a lost notification costs a poll, never the whole wait).
    /// Returns false once `until` passed. `notified` must have been
    /// enabled before the state was looked at.
    async fn wait_change(
        notified: std::pin::Pin<&mut tokio::sync::futures::Notified<'_>>,
        until: Instant,
        poll: Duration,
    ) -> bool {
        let now = Instant::now();
        if now >= until {
            return false;
        }
        let _ = tokio::time::timeout_at(until.min(now + poll), notified).await;
        true
    }

    /// The live playlist, answered as an LL-HLS blocking reload: once it
    /// holds media sequence `msn` (and part `part` of it), or with an
    /// error after three target durations (RFC 8216bis §6.2.5.2).
    pub async fn playlist_blocking(
        &self,
        stream: &str,
        msn: u64,
        part: Option<u64>,
    ) -> Result<String, NodeError> {
        use vilokanam_media::hls::Reload;
        let id = parse_stream(stream)?;
        let changed = lock(&self.inner.playback).changed();
        let mut deadline = None;
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let Some((answer, wait)) = lock(&self.inner.playback).wait_for(&id, msn, part) else {
                return Err(NodeError::NotWatched {
                    stream: id.to_string(),
                });
            };
            match answer {
                // Rendered after the check: the playlist only grows, so it
                // holds what was asked for. Access is checked here too: a
                // stream unwatched or unpaid meanwhile is not served.
                Reload::Ready => return self.playlist(stream),
                Reload::TooFar => return Err(NodeError::ReloadTooFar { msn, part }),
                Reload::Wait => {}
            }
            let until = *deadline.get_or_insert_with(|| Instant::now() + wait);
            if !Self::wait_change(notified, until, wait).await {
                return Err(NodeError::ReloadTimeout { msn, part });
            }
        }
    }

    /// Part `index` of segment `seq` (decrypted for a paid stream); a part
    /// that is not here yet but may still come (the preload hint) is
    /// waited for.
    pub async fn part(&self, stream: &str, seq: u64, index: u16) -> Result<Bytes, NodeError> {
        let id = parse_stream(stream)?;
        let changed = lock(&self.inner.playback).changed();
        let mut deadline = None;
        loop {
            let notified = changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if let Some(p) = self.inner.swarm.part(id.clone(), seq, index).await? {
                let r = self.open_part(&id, &p).await;
                if r.is_ok() && p.header.header.epoch.is_some() {
                    self.inner
                        .payments
                        .update_metrics(&self.inner.metrics)
                        .await;
                }
                return r;
            }
            let not_held = || NodeError::PartNotHeld {
                stream: id.to_string(),
                seq,
                index,
            };
            let Some(wait) = lock(&self.inner.playback).part_expected(&id, seq, index) else {
                return Err(not_held());
            };
            let until = *deadline.get_or_insert_with(|| Instant::now() + wait);
            // The part event may be dropped under load: look at the swarm
            // again every quarter second whatever the notifications say.
            if !Self::wait_change(notified, until, Duration::from_millis(250)).await {
                return Err(not_held());
            }
        }
    }

    /// The key of `epoch` for media of `id`: the creator's own, or bought
    /// after paying for the media's time (`part` of segment `seq`, or the
    /// whole segment; each second is paid once).
    async fn media_key(
        &self,
        id: &StreamId,
        seq: u64,
        part: Option<u16>,
        epoch: u64,
        duration_us: u32,
    ) -> Result<paywall::EpochKey, NodeError> {
        if let Some(k) = self.inner.publisher.epoch_key(id, epoch) {
            return Ok(k);
        }
        if !self.inner.payments.paying(id) {
            return Err(NodeError::Unpaid {
                stream: id.to_string(),
                price: self.offer_of(id).map_or(0, |o| o.price_per_sec),
                what: format!("epoch {epoch}"),
            });
        }
        self.inner
            .payments
            .pay_and_key(
                &self.inner.swarm,
                id,
                seq,
                part,
                epoch,
                u64::from(duration_us),
            )
            .await
    }

    /// A part's plaintext: as is for a free stream; for a paid one
    /// decrypted with its epoch's key (paying for its time first, once).
    async fn open_part(
        &self,
        id: &StreamId,
        part: &vilokanam_swarm::Part,
    ) -> Result<Bytes, NodeError> {
        let h = &part.header.header;
        let Some(epoch) = h.epoch else {
            return Ok(part.payload.clone());
        };
        let key = self
            .media_key(id, h.seq, Some(h.index), epoch, h.duration_us)
            .await?;
        paywall::open_part(&key, id, h.seq, h.index, epoch, &part.payload)
            .map(Bytes::from)
            .map_err(|reason| NodeError::Undecryptable {
                stream: id.to_string(),
                seq: h.seq,
                reason,
            })
    }

    /// The live playlist of a watched or published stream.
    pub fn playlist(&self, stream: &str) -> Result<String, NodeError> {
        let id = parse_stream(stream)?;
        let cap = lock(&self.inner.price_caps).get(&id).copied();
        if let Some(cap) = cap {
            self.check_price(&id, cap)?;
        }
        // A paid stream's HLS plays only where its keys are: on the
        // creator's node, and on viewers that pay for it.
        if let Some(offer) = self.offer_of(&id) {
            if !lock(&self.inner.playback).publishing(&id) && !self.inner.payments.paying(&id) {
                return Err(NodeError::Unpaid {
                    stream: id.to_string(),
                    price: offer.price_per_sec,
                    what: "any epoch".into(),
                });
            }
        }
        let prefix = format!("/streams/{id}/");
        lock(&self.inner.playback)
            .render(&id, &prefix)
            .ok_or_else(|| NodeError::NotWatched {
                stream: id.to_string(),
            })
    }

    /// One segment's payload, if held (any stream this node follows);
    /// for a paid stream, decrypted (paying for it if this node pays).
    pub async fn segment(&self, stream: &str, seq: u64) -> Result<Bytes, NodeError> {
        let r = self.segment_inner(stream, seq).await;
        if r.is_ok() {
            self.inner
                .payments
                .update_metrics(&self.inner.metrics)
                .await;
        }
        r
    }

    async fn segment_inner(&self, stream: &str, seq: u64) -> Result<Bytes, NodeError> {
        let id = parse_stream(stream)?;
        let chunk = self
            .inner
            .swarm
            .chunk(id.clone(), seq)
            .await?
            .ok_or_else(|| NodeError::NotHeld {
                stream: id.to_string(),
                seq,
            })?;
        let h = &chunk.header.header;
        let payload = match h.epoch {
            None => chunk.payload.clone(),
            Some(epoch) => {
                let key = self.media_key(&id, seq, None, epoch, h.duration_us).await?;
                let opened = if h.parts.is_empty() {
                    paywall::open_payload(&key, &id, seq, epoch, &chunk.payload)
                } else {
                    // Published as parts: each part sealed on its own.
                    let sizes = h.parts.iter().map(|p| p.size as usize);
                    paywall::open_parts(&key, &id, seq, epoch, sizes, &chunk.payload)
                };
                opened
                    .map(Bytes::from)
                    .map_err(|reason| NodeError::Undecryptable {
                        stream: id.to_string(),
                        seq,
                        reason,
                    })?
            }
        };
        lock(&self.inner.playback).served(&id, seq, h.duration(), payload.len());
        Ok(payload)
    }

    /// A chunk's payload exactly as the mesh carries it (ciphertext for a
    /// paid stream), for tests and pinning; no playback accounting.
    pub async fn raw_payload(&self, stream: &str, seq: u64) -> Result<Bytes, NodeError> {
        let id = parse_stream(stream)?;
        let chunk = self
            .inner
            .swarm
            .chunk(id.clone(), seq)
            .await?
            .ok_or_else(|| NodeError::NotHeld {
                stream: id.to_string(),
                seq,
            })?;
        Ok(chunk.payload.clone())
    }

    /// A part's payload exactly as the mesh carries it (ciphertext for a
    /// paid stream), for tests.
    pub async fn raw_part(&self, stream: &str, seq: u64, index: u16) -> Result<Bytes, NodeError> {
        let id = parse_stream(stream)?;
        let part = self
            .inner
            .swarm
            .part(id.clone(), seq, index)
            .await?
            .ok_or_else(|| NodeError::PartNotHeld {
                stream: id.to_string(),
                seq,
                index,
            })?;
        Ok(part.payload.clone())
    }

    /// The chunks held for `stream`.
    pub async fn chunks(&self, stream: &str) -> Result<Vec<ChunkInfo>, NodeError> {
        let id = parse_stream(stream)?;
        Ok(self
            .inner
            .swarm
            .chunks(id)
            .await?
            .into_iter()
            .map(|c| ChunkInfo {
                seq: c.seq,
                cid: c.cid,
                size: c.size,
                duration_us: c.duration_us,
                published_at_ms: c.published_at_ms,
                ready_at_ms: c.ready_at_ms,
            })
            .collect())
    }

    /// What this node paid, per watched paid stream.
    pub async fn spending(&self) -> Vec<payments::Spending> {
        self.inner
            .payments
            .update_metrics(&self.inner.metrics)
            .await;
        self.inner.payments.spending().await
    }

    /// The vouchers this node holds as a payee (earned), claimed or not.
    pub fn earnings(&self) -> Result<Vec<vilokanam_storage::VoucherRecord>, NodeError> {
        self.inner.payments.earnings()
    }

    /// The bandwidth market as this node sees it: what it charges, what
    /// each peer it served owes and paid, per stream, and what it paid
    /// the servers it pulled from.
    pub async fn bandwidth(&self) -> Result<vilokanam_api::BandwidthInfo, NodeError> {
        let ledger = self.inner.swarm.ledger().await?;
        let fee = ledger.terms.fee_per_mib;
        let bw = &self.inner.bandwidth;
        let mut peers: Vec<_> = ledger
            .accounts
            .iter()
            .map(|(p, a)| vilokanam_api::BandwidthPeer {
                peer: p.to_string(),
                served_bytes: a.served_bytes,
                owed: a.owed(fee).to_string(),
                paid: a.paid.to_string(),
                cut_off: a.cut_off,
            })
            .collect();
        peers.sort_by(|a, b| a.peer.cmp(&b.peer));
        let mut streams: Vec<_> = ledger
            .streams
            .iter()
            .map(|(s, b)| vilokanam_api::BandwidthStream {
                stream: s.to_string(),
                served_bytes: *b,
                earned: vilokanam_swarm::protocols::bandwidth::fee_for(*b, fee).to_string(),
            })
            .collect();
        streams.sort_by(|a, b| a.stream.cmp(&b.stream));
        let mut servers: Vec<_> = bw
            .paid()
            .into_iter()
            .map(|p| vilokanam_api::BandwidthServer {
                peer: p.peer.to_string(),
                fee_per_mib: p.fee_per_mib,
                verified_bytes: p.verified_bytes,
                paid: p.paid.to_string(),
            })
            .collect();
        servers.sort_by(|a, b| a.peer.cmp(&b.peer));
        Ok(vilokanam_api::BandwidthInfo {
            fee_per_mib: fee,
            credit_bytes: ledger.terms.credit_bytes,
            max_fee_per_mib: bw.settings().max_fee_per_mib,
            served_bytes: ledger.totals.served_bytes,
            earned: ledger.earned.to_string(),
            paid: ledger.totals.paid.to_string(),
            outstanding: ledger.outstanding.to_string(),
            cut_offs: ledger.totals.cut_offs,
            refusals: ledger.totals.refusals,
            peers,
            streams,
            servers,
            channel: bw.channel().await,
        })
    }

    /// Claims every held voucher on chain now.
    pub async fn claim(&self) -> Result<u128, NodeError> {
        self.inner
            .payments
            .claim_all(false)
            .await
            .map_err(|reason| NodeError::Payment {
                stream: "(all)".into(),
                reason,
            })
    }

    /// Ends this node's streams (telling viewers), claims what it earned,
    /// stops every task and flushes the store.
    pub async fn shutdown(&self) -> Result<(), NodeError> {
        let _ = self.inner.stop.send(true);
        for s in self.inner.payments.paid_streams() {
            self.inner.payments.end_session(&self.inner.swarm, &s).await;
        }
        // What verified last is paid before the node goes.
        bandwidth::settle(&self.inner).await;
        bandwidth::end(&self.inner).await;
        match tokio::time::timeout(CLAIM_AT_SHUTDOWN, self.inner.payments.claim_all(true)).await {
            Ok(Ok(0)) => {}
            Ok(Ok(n)) => info!(claimed = n, "claimed held vouchers at shutdown"),
            Ok(Err(e)) => {
                warn!(error = %e, "could not claim held vouchers at shutdown (they stay stored)")
            }
            Err(_) => warn!("claiming at shutdown timed out (the vouchers stay stored)"),
        }
        let ends = self.inner.publisher.end_all().await;
        let told = !ends.is_empty();
        for e in ends {
            let _ = self.send_ending(e).await;
        }
        if told {
            // Gossipsub sends from the event loop: give it a moment to put
            // the ends on the wire before it stops (bounded, shutdown only).
            tokio::time::sleep(SHUTDOWN_GRACE).await;
        }
        let _ = self.inner.swarm.shutdown().await;
        let tasks: Vec<JoinHandle<()>> = lock(&self.inner.tasks).drain(..).collect();
        for t in tasks {
            t.abort();
            let _ = t.await;
        }
        self.inner.store.flush()?;
        info!("node stopped");
        Ok(())
    }
}
