//! VODs: recording streams, building a finished one into an HLS VOD that
//! is a UnixFS directory (exactly what `ipfs add -r --cid-version=1` would
//! make of the same files), and serving it.
//!
//! A creator's node records every chunk it publishes; `--record` makes a
//! node record every chunk it relays too. Chunks are stored as UnixFS files
//! as they arrive ([`vilokanam_storage::recordings`]). When the stream ends
//! (the creator ends it, or it is idle past `publish_idle_secs`; for a
//! recording relay, when the creator's end announcement arrives) the node
//! adds the playlist and directories:
//!
//! ```text
//! <root>/index.m3u8      #EXT-X-PLAYLIST-TYPE:VOD … #EXT-X-ENDLIST
//! <root>/000/000000.ts   segments, 1000 per sub-directory
//! <root>/001/001000.ts
//! ```
//!
//! Sub-directories keep every directory far under Kubo's sharding threshold,
//! so no directory is a HAMT and the root CID is Kubo's. The VOD of a paid
//! stream keeps its ciphertext and adds `paywall.json` ([`paid`]).

use std::fmt::Write as _;

use tracing::{info, warn};
use vilokanam_storage::recordings::{ChunkToRecord, Recorded};
use vilokanam_storage::unixfs::{self, Cid, CidVersion, Entry};
use vilokanam_storage::{RecordedChunk, VodRecord};
use vilokanam_swarm::protocols::live::wire::{Announcement, GossipMessage, SignedAnnouncement};
use vilokanam_swarm::Chunk;

use super::{publisher::now_ms, NodeError, NodeHandle};

pub mod announce;
pub mod paid;
pub use paid::{parse_manifest, PaidSegment, PaidVod, PAYWALL_FILE};

/// Segments per sub-directory of a VOD.
pub const SEGMENTS_PER_DIR: usize = 1000;
/// The most segments a VOD holds (1000 sub-directories): 11.5 days of 1 s
/// segments; a longer recording is built from its last this many.
pub const MAX_VOD_SEGMENTS: usize = 1000 * SEGMENTS_PER_DIR;

/// Block fetches one file read may need before it gives up (a file's DAG
/// is fetched a node and its links at a time; a 64 MiB file is 257 blocks).
const MAX_FETCH_ROUNDS: usize = 1_000;

/// The most blocks of one VOD this node fetches (1,000,000 segments of at
/// most 8 MiB: 33 blocks each).
const MAX_DAG_BLOCKS: usize = 40_000_000;

/// The links of a dag-pb block (none for raw blocks or garbage).
fn links_of(cid: &Cid, block: &[u8]) -> Vec<Cid> {
    if cid.codec() != unixfs::DAG_PB {
        return vec![];
    }
    unixfs::PbNode::decode(block)
        .map(|n| n.links.into_iter().map(|l| l.hash).collect())
        .unwrap_or_default()
}

pub(crate) fn parse_cid(s: &str) -> Result<Cid, NodeError> {
    let cid: Cid = s
        .parse()
        .map_err(|e| NodeError::Vod(format!("invalid CID {s:?}: {e}")))?;
    unixfs::digest_of(&cid)?;
    Ok(cid)
}

/// The node's block store as Bitswap's source.
pub(super) struct StoreBlocks(pub(super) std::sync::Arc<vilokanam_storage::Recordings>);

impl vilokanam_swarm::protocols::bitswap::BlockSource for StoreBlocks {
    fn get(&self, cid: &Cid) -> Option<Vec<u8>> {
        self.0.block(cid).ok().flatten()
    }
    fn has(&self, cid: &Cid) -> bool {
        self.0.has_block(cid).unwrap_or(false)
    }
}

/// What the recorder task is asked.
pub(super) enum RecordCmd {
    /// Record this chunk.
    Chunk(std::sync::Arc<Chunk>),
    /// Answer once everything before is written.
    Barrier(tokio::sync::oneshot::Sender<()>),
}

/// Chunks waiting to be recorded (about a minute of a 1 s stream per
/// recorded stream at the default cap of streams).
const RECORD_QUEUE: usize = 256;

/// Starts the recorder: one task writes chunks in arrival order (the UnixFS
/// import, one transaction and a flush each, off the async workers), so a
/// stream's end can wait for its last chunk and a VOD misses none.
pub(super) fn spawn_recorder(
    store: vilokanam_storage::Store,
    metrics: super::metrics::NodeMetrics,
    recorded: tokio::sync::watch::Sender<u64>,
) -> (
    tokio::sync::mpsc::Sender<RecordCmd>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordCmd>(RECORD_QUEUE);
    let task = tokio::spawn(async move {
        while let Some(cmd) = rx.recv().await {
            let chunk = match cmd {
                RecordCmd::Barrier(done) => {
                    let _ = done.send(());
                    continue;
                }
                RecordCmd::Chunk(c) => c,
            };
            let store = store.clone();
            let metrics = metrics.clone();
            let _ = tokio::task::spawn_blocking(move || record_one(&store, &metrics, &chunk)).await;
            recorded.send_modify(|n| *n += 1);
        }
    });
    (tx, task)
}

fn record_one(
    store: &vilokanam_storage::Store,
    metrics: &super::metrics::NodeMetrics,
    chunk: &Chunk,
) {
    let h = &chunk.header.header;
    let stream = h.stream.to_string();
    let rec = ChunkToRecord {
        stream: &stream,
        seq: h.seq,
        payload: &chunk.payload,
        duration_us: h.duration_us,
        discontinuity: h.discontinuity,
        published_ms: h.published_at_ms,
        paid: h.epoch.map(|epoch| vilokanam_storage::PaidChunk {
            epoch,
            parts: h.parts.iter().map(|p| p.size).collect(),
            header: GossipMessage::Chunk(chunk.header.clone()).encode(),
        }),
    };
    let mut r = store.recordings.record(&rec);
    if let Err(vilokanam_storage::StorageError::QuotaExceeded { .. }) = r {
        // Blocks of VODs since removed, or fetched only to be watched,
        // may be what fills it: collect them, then try once more.
        let mut keep = store.vods.roots().unwrap_or_default();
        keep.extend(store.social.avatar().ok().flatten());
        if let Ok(freed) = store.recordings.collect_garbage(&keep) {
            info!(
                freed,
                "recording quota reached: unreferenced blocks collected"
            );
            r = store.recordings.record(&rec);
        }
    }
    match r {
        Ok(Recorded::Stored) => {
            // The durability point: at most the chunk in flight is lost to
            // a crash. Counted once on disk.
            if let Err(e) = store.flush() {
                warn!(%stream, error = %e, "flushing a recorded chunk failed");
            }
            metrics.chunks_recorded.inc();
            if let Ok(used) = store.recordings.used() {
                metrics.recorded_bytes.set(used as i64);
            }
        }
        Ok(Recorded::Duplicate) => {}
        Err(e) => {
            metrics.record_failures.inc();
            warn!(%stream, seq = h.seq, error = %e, "chunk not recorded");
        }
    }
}

/// The URL path of a VOD's playlist on a node.
pub fn vod_playlist_path(root: &str) -> String {
    format!("/vods/{root}/index.m3u8")
}

/// The name of segment `i` inside a VOD.
fn segment_path(i: usize) -> (String, String) {
    (format!("{:03}", i / SEGMENTS_PER_DIR), format!("{i:06}.ts"))
}

/// The HLS VOD playlist over recorded chunks: a discontinuity where the
/// creator marked one or where sequence numbers skip (a gap).
pub fn vod_playlist(chunks: &[RecordedChunk]) -> String {
    let max_us = chunks
        .iter()
        .map(|c| c.duration_us)
        .max()
        .unwrap_or(1_000_000);
    let target = u64::from(max_us).div_ceil(1_000_000).max(1);
    let mut p = String::new();
    let _ = write!(
        p,
        "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:{target}\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-PLAYLIST-TYPE:VOD\n#EXT-X-INDEPENDENT-SEGMENTS\n"
    );
    let mut prev: Option<u64> = None;
    for (i, c) in chunks.iter().enumerate() {
        if i > 0 && (c.discontinuity || prev.is_some_and(|s| c.seq != s + 1)) {
            p.push_str("#EXT-X-DISCONTINUITY\n");
        }
        let (dir, file) = segment_path(i);
        let _ = write!(
            p,
            "#EXTINF:{:.6},\n{dir}/{file}\n",
            f64::from(c.duration_us) / 1e6
        );
        prev = Some(c.seq);
    }
    p.push_str("#EXT-X-ENDLIST\n");
    p
}

impl NodeHandle {
    /// Whether this node records `stream`'s chunks: its own streams always,
    /// others with `--record`.
    fn records(&self, chunk: &Chunk) -> bool {
        self.inner.config.record || self.inner.publisher.publishes(chunk.stream())
    }

    /// Records a chunk that became ready (called for every chunk; does
    /// nothing for streams not recorded). Chunks go to the recorder task in
    /// order; a full queue drops the chunk (counted, logged) rather than
    /// stall the event task. A paid stream's chunks are recorded as the
    /// mesh carries them: ciphertext, with how they were sealed.
    pub(super) fn on_chunk_for_recording(&self, chunk: &std::sync::Arc<Chunk>) {
        if !self.records(chunk) {
            return;
        }
        if let Err(e) = self
            .inner
            .recorder
            .try_send(RecordCmd::Chunk(chunk.clone()))
        {
            self.inner.metrics.record_failures.inc();
            warn!(stream = %chunk.stream(), error = %e, "recording queue full: chunk not recorded");
        }
    }

    /// Waits until every chunk queued for recording so far is written (at
    /// most 10 s).
    pub(super) async fn recording_barrier(&self) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let wait = async {
            self.inner
                .recorder
                .send(RecordCmd::Barrier(tx))
                .await
                .ok()?;
            rx.await.ok()
        };
        if tokio::time::timeout(std::time::Duration::from_secs(10), wait)
            .await
            .ok()
            .flatten()
            .is_none()
        {
            warn!("the recorder did not catch up within 10 s");
        }
    }

    /// Waits (at most 2 s) until the last chunk announced by `a` is
    /// recorded, when this node records the stream.
    pub(super) async fn recorded_through(&self, a: &Announcement) {
        let Some(last) = a.last_seq else { return };
        if !self.inner.publisher.publishes(&a.stream) && !self.inner.config.record {
            return;
        }
        let stream = a.stream.to_string();
        let mut rx = self.inner.recorded.subscribe();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
        loop {
            rx.borrow_and_update();
            let held = self
                .inner
                .store
                .recordings
                .chunks(&stream)
                .map(|c| c.last().is_some_and(|c| c.seq >= last))
                .unwrap_or(true);
            if held {
                return;
            }
            if tokio::time::timeout_at(deadline, rx.changed())
                .await
                .is_err()
            {
                warn!(%stream, last, "the last chunk was not recorded within 2 s; building the VOD without it");
                return;
            }
        }
    }

    /// Builds the VOD of a finished stream from its recording (nothing if
    /// none), stores its record and forgets the recording's index. `signed`
    /// is the creator's announcement of the stream: a paid stream's offer
    /// goes into its VOD's paywall from it.
    pub async fn build_vod(
        &self,
        signed: &SignedAnnouncement,
    ) -> Result<Option<VodRecord>, NodeError> {
        let a = &signed.announcement;
        let store = self.inner.store.clone();
        // Signed when this node is the stream's creator (also for a
        // recording left by a crash, built before the stream restarts).
        let own = self.inner.publisher.signing_key();
        let key = (a.stream.creator == own.verifying_key().to_bytes()).then(|| own.clone());
        let signed = signed.clone();
        let rec = tokio::task::spawn_blocking(move || -> Result<Option<VodRecord>, NodeError> {
            let a = &signed.announcement;
            let stream = a.stream.to_string();
            let mut chunks = store.recordings.chunks(&stream)?;
            if chunks.is_empty() {
                return Ok(None);
            }
            let paid = a.offer.is_some() || chunks.iter().any(|c| c.paid.is_some());
            let built: Vec<u64> = chunks.iter().map(|c| c.seq).collect();
            if chunks.len() > MAX_VOD_SEGMENTS {
                chunks.drain(..chunks.len() - MAX_VOD_SEGMENTS);
            }
            let mut blocks: Vec<(Cid, Vec<u8>)> = vec![];
            let mut sink = |c: &Cid, b: &[u8]| {
                blocks.push((*c, b.to_vec()));
                Ok(())
            };
            let playlist = vod_playlist(&chunks);
            let pl = unixfs::import_file(playlist.as_bytes(), CidVersion::V1, &mut sink)?;
            let mut root: Vec<(String, Entry)> = vec![("index.m3u8".into(), pl)];
            if paid {
                // Refuses a paid recording without the creator's offer,
                // or one with a chunk in clear: never a public VOD.
                let manifest = paid::manifest(&signed, &chunks)?;
                let pw = unixfs::import_file(&manifest, CidVersion::V1, &mut sink)?;
                root.push((PAYWALL_FILE.into(), pw));
            }
            for (d, group) in chunks.chunks(SEGMENTS_PER_DIR).enumerate() {
                let mut entries = Vec::with_capacity(group.len());
                for (k, c) in group.iter().enumerate() {
                    entries.push((segment_path(d * SEGMENTS_PER_DIR + k).1, c.entry()?));
                }
                let dir = unixfs::import_directory(&entries, CidVersion::V1, &mut sink)?;
                root.push((segment_path(d * SEGMENTS_PER_DIR).0, dir));
            }
            let root = unixfs::import_directory(&root, CidVersion::V1, &mut sink)?;
            store.recordings.write_blocks(&blocks, None)?;
            let mut rec = VodRecord {
                root: root.cid.to_string(),
                stream: stream.clone(),
                creator: hex::encode(a.stream.creator),
                title: a.title.clone(),
                duration_ms: chunks.iter().map(|c| u64::from(c.duration_us)).sum::<u64>() / 1000,
                segments: chunks.len() as u64,
                bytes: root.tsize,
                created_ms: now_ms(),
                signature: String::new(),
                ipfs_pinned: None,
                price_per_sec: a.offer.as_ref().map_or(0, |o| o.price_per_sec),
            };
            if let Some(key) = key {
                announce::sign_record(&mut rec, &key)?;
            }
            store.vods.put(&rec)?;
            // Exactly the chunks built from: one recorded meanwhile stays
            // for the next build. (A crash between the two builds the same
            // VOD again at the next start: same root, same record.)
            store.recordings.clear_chunks(&stream, &built)?;
            store.flush()?;
            Ok(Some(rec))
        })
        .await
        .map_err(|e| NodeError::Vod(format!("VOD build task failed: {e}")))??;
        if let Some(r) = &rec {
            if r.is_paid() {
                self.note_own_paid_vod(&r.stream, Some(&r.root));
            }
            self.inner.metrics.vods_built.inc();
            super::search::index(&self.inner, super::search::vod_doc(r));
            info!(stream = %r.stream, root = %r.root, segments = r.segments, "VOD built");
            self.pin_to_ipfs_later(r.root.clone());
            self.announce_vod(r).await;
        }
        Ok(rec)
    }

    /// Builds the VODs of every stream with a recording (at start: a
    /// recording left by a crash or a stop before its end).
    pub(super) async fn build_left_vods(&self) {
        let Ok(streams) = self.inner.store.recordings.streams() else {
            return;
        };
        let me = self.inner.identity.creator;
        for s in streams {
            let Ok(id) = s.parse::<vilokanam_swarm::StreamId>() else {
                continue;
            };
            // Another creator's stream may still be live: its recording
            // waits for that creator's end announcement.
            if id.creator != me {
                continue;
            }
            let name = id.name.clone();
            if self.inner.publisher.is_live(&name).await {
                continue;
            }
            // The stream's last announcement, as stored (its title and, for
            // a paid stream, the offer its VOD's paywall needs); else a
            // bare one, signed now.
            let stored = self
                .inner
                .store
                .streams
                .get(&s)
                .ok()
                .flatten()
                .and_then(|r| match GossipMessage::decode(&r.announcement) {
                    Ok(GossipMessage::Announce(a)) if a.announcement.stream == id => Some(a),
                    _ => None,
                });
            let signed = match stored {
                Some(a) => a,
                None => {
                    let a = Announcement {
                        stream: id,
                        title: String::new(),
                        tags: vec![],
                        codec: String::new(),
                        started_at_ms: 0,
                        updated_at_ms: 0,
                        last_seq: None,
                        ended: true,
                        offer: None,
                    };
                    match a.sign(self.inner.publisher.signing_key()) {
                        Ok(a) => a,
                        Err(e) => {
                            warn!(stream = %s, error = %e, "cannot sign an announcement for a left-over recording");
                            continue;
                        }
                    }
                }
            };
            if let Err(e) = self.build_vod(&signed).await {
                warn!(stream = %s, error = %e, "building a left-over recording failed");
            }
        }
    }

    /// With `ipfs_api` configured: adds and pins VOD `root` on that IPFS
    /// daemon in the background (only the blocks it lacks), and notes it
    /// in the VOD's record. A failure is logged; the next start retries.
    pub(super) fn pin_to_ipfs_later(&self, root: String) {
        let Some(url) = self.inner.config.ipfs_api.clone() else {
            return;
        };
        if !super::lock(&self.inner.ipfs_pinning).insert(root.clone()) {
            return;
        }
        let node = self.clone();
        let task = tokio::spawn(async move {
            let permit = node.inner.ipfs_pins.clone().acquire_owned().await;
            let r = node.pin_to_ipfs(&root, &url).await;
            drop(permit);
            super::lock(&node.inner.ipfs_pinning).remove(&root);
            match r {
                Ok(()) => info!(%root, %url, "VOD pinned on the IPFS daemon"),
                Err(e) => {
                    warn!(%root, %url, error = %format!("{e:#}"), "pinning the VOD on the IPFS daemon failed (retried at the next start)")
                }
            }
        });
        // Aborted at shutdown with the node's other tasks.
        let mut tasks = super::lock(&self.inner.tasks);
        tasks.retain(|t| !t.is_finished());
        tasks.push(task);
    }

    async fn pin_to_ipfs(&self, root: &str, url: &str) -> anyhow::Result<()> {
        let cid = parse_cid(root)?;
        self.fetch_dag(cid, usize::MAX).await?;
        // The DAG's CIDs, then each block read as it is needed.
        let cids = self
            .with_blocks(move |get| {
                let mut cids = vec![];
                unixfs::walk(&cid, get, &mut |c, _| {
                    cids.push(*c);
                    Ok(())
                })?;
                Ok(cids)
            })
            .await?;
        let recordings = self.inner.store.recordings.clone();
        let blocks = futures::stream::iter(cids.into_iter().map(move |c| {
            recordings
                .block(&c)
                .map_err(anyhow::Error::from)
                .and_then(|b| b.ok_or_else(|| anyhow::anyhow!("block {c} vanished")))
                .map(|b| (c, b))
        }));
        crate::kubo::pin_vod(&crate::kubo::Kubo::new(url), cid, blocks, |_| {}).await?;
        self.inner.store.vods.set_ipfs_pinned(root, url)?;
        Ok(())
    }

    /// VODs not yet pinned on the configured IPFS daemon (at start).
    pub(super) fn resume_ipfs_pins(&self) {
        let Some(url) = self.inner.config.ipfs_api.clone() else {
            return;
        };
        for r in self.inner.store.vods.all().unwrap_or_default() {
            if r.ipfs_pinned.as_deref() != Some(url.as_str()) {
                self.pin_to_ipfs_later(r.root);
            }
        }
    }

    /// The VODs this node holds, newest first.
    pub fn vods(&self) -> Result<Vec<VodRecord>, NodeError> {
        Ok(self.inner.store.vods.all()?)
    }

    /// A file of a VOD by path (`index.m3u8`, `000/000001.ts`): from the
    /// local block store, blocks it lacks fetched from peers over Bitswap
    /// (verified by their CID) and kept.
    pub async fn vod_file(&self, root: &str, path: &str) -> Result<Vec<u8>, NodeError> {
        let root = parse_cid(root)?;
        let path = path.to_owned();
        self.with_blocks(move |get| {
            let file = unixfs::resolve(&root, &path, get)?;
            unixfs::read_file(&file, get)
        })
        .await
    }

    /// Runs `op` over the local blocks; each block it misses is fetched
    /// from peers (with its links, when it is a node), then `op` runs
    /// again. Bounded by [`MAX_FETCH_ROUNDS`].
    pub(crate) async fn with_blocks<T: Send + 'static>(
        &self,
        op: impl Fn(&mut unixfs::Source) -> Result<T, unixfs::UnixfsError> + Send + Sync + 'static,
    ) -> Result<T, NodeError> {
        let op = std::sync::Arc::new(op);
        for _ in 0..MAX_FETCH_ROUNDS {
            let store = self.inner.store.clone();
            let op2 = op.clone();
            let r = tokio::task::spawn_blocking(move || {
                let mut get = |c: &Cid| store.recordings.get_block(c);
                op2(&mut get)
            })
            .await
            .map_err(|e| NodeError::Vod(format!("read task failed: {e}")))?;
            match r {
                Err(unixfs::UnixfsError::Missing(c)) => {
                    let cid = parse_cid(&c)?;
                    // The block and the blocks it links (a file's chunks).
                    self.fetch_dag(cid, 2).await?;
                }
                r => return Ok(r?),
            }
        }
        Err(NodeError::Vod(format!(
            "gave up after fetching blocks {MAX_FETCH_ROUNDS} times"
        )))
    }

    /// Makes every block of the DAG under `root` local (fetching what is
    /// missing from peers) and keeps a record of it: `vilokanam vod pin`
    /// without an IPFS daemon.
    pub async fn pin_vod(&self, root: &str) -> Result<VodRecord, NodeError> {
        let cid = parse_cid(root)?;
        self.fetch_dag(cid, usize::MAX).await?;
        let (blocks, bytes) = self
            .with_blocks(move |get| {
                let (mut n, mut bytes) = (0u64, 0u64);
                unixfs::walk(&cid, get, &mut |_, b| {
                    n += 1;
                    bytes += b.len() as u64;
                    Ok(())
                })?;
                Ok((n, bytes))
            })
            .await?;
        if let Some(r) = self.inner.store.vods.get(&cid.to_string())? {
            return Ok(r);
        }
        let playlist = self.vod_file(root, "index.m3u8").await.ok();
        let (segments, duration_ms) = playlist
            .as_deref()
            .map(|p| {
                let text = String::from_utf8_lossy(p);
                let durs: Vec<f64> = text
                    .lines()
                    .filter_map(|l| l.strip_prefix("#EXTINF:"))
                    .filter_map(|l| l.split(',').next()?.parse().ok())
                    .collect();
                (
                    durs.len() as u64,
                    (durs.iter().sum::<f64>() * 1000.0) as u64,
                )
            })
            .unwrap_or((0, 0));
        let paid = self.paid_vod(&cid).await?;
        // Heard announced: kept as its creator signed it.
        if let Some(heard) = self.heard_vod(&cid.to_string(), paid.as_deref()).await {
            self.inner.store.vods.put(&heard)?;
            info!(root = %heard.root, blocks, bytes, "VOD pinned locally");
            return Ok(heard);
        }
        let rec = VodRecord {
            root: cid.to_string(),
            stream: paid
                .as_ref()
                .map(|p| p.stream.to_string())
                .unwrap_or_default(),
            creator: paid
                .as_ref()
                .map(|p| hex::encode(p.stream.creator))
                .unwrap_or_default(),
            title: String::new(),
            duration_ms,
            segments,
            bytes,
            created_ms: now_ms(),
            signature: String::new(),
            ipfs_pinned: None,
            price_per_sec: paid.as_ref().map_or(0, |p| p.offer.price_per_sec),
        };
        self.inner.store.vods.put(&rec)?;
        info!(root = %rec.root, blocks, bytes, "VOD pinned locally");
        Ok(rec)
    }

    /// Forgets a VOD and frees its blocks (those no other VOD or
    /// recording uses).
    pub async fn unpin_vod(&self, root: &str) -> Result<(), NodeError> {
        let cid = parse_cid(root)?;
        let rec = self.inner.store.vods.get(&cid.to_string())?;
        if !self.inner.store.vods.remove(&cid.to_string())? {
            return Err(NodeError::NoVod {
                root: cid.to_string(),
            });
        }
        if let Some(r) = rec.filter(|r| r.is_paid()) {
            self.note_own_paid_vod(&r.stream, None);
            // Another VOD of the same stream keeps its keys on sale.
            self.load_own_paid_vods();
        }
        self.collect_garbage().await;
        Ok(())
    }

    /// Deletes blocks no VOD record or recording reaches (VODs removed,
    /// blocks fetched only to be watched) and recounts the quota.
    pub(super) async fn collect_garbage(&self) {
        let store = self.inner.store.clone();
        let r = tokio::task::spawn_blocking(move || {
            let mut keep = store.vods.roots()?;
            keep.extend(store.social.avatar()?);
            let freed = store.recordings.collect_garbage(&keep)?;
            store.flush()?;
            Ok::<_, vilokanam_storage::StorageError>((freed, store.recordings.used()?))
        })
        .await;
        match r {
            Ok(Ok((freed, used))) => {
                self.inner.metrics.recorded_bytes.set(used as i64);
                if freed > 0 {
                    info!(freed, used, "unreferenced blocks collected");
                }
            }
            Ok(Err(e)) => warn!(error = %e, "collecting unreferenced blocks failed"),
            Err(e) => warn!(error = %e, "the block collector task failed"),
        }
    }

    /// Fetches the blocks of the first `levels` levels of the DAG under
    /// `root` this node lacks, level by level (each level's missing blocks
    /// 16 at once, the peer that last had a block asked first); each block
    /// is read once. Bounded by [`MAX_DAG_BLOCKS`].
    async fn fetch_dag(&self, root: Cid, levels: usize) -> Result<(), NodeError> {
        use futures::StreamExt;
        let recordings = self.inner.store.recordings.clone();
        let mut frontier = vec![root];
        let mut seen = std::collections::HashSet::new();
        let mut preferred: Option<vilokanam_swarm::libp2p::PeerId> = None;
        for _ in 0..levels {
            if frontier.is_empty() {
                break;
            }
            let mut next = vec![];
            let mut missing = vec![];
            for c in frontier.drain(..) {
                if !seen.insert(c) {
                    continue;
                }
                if seen.len() > MAX_DAG_BLOCKS {
                    return Err(NodeError::Vod(format!(
                        "{root} has more than {MAX_DAG_BLOCKS} blocks"
                    )));
                }
                match recordings.block(&c)? {
                    Some(b) => next.extend(links_of(&c, &b)),
                    None => missing.push(c),
                }
            }
            if !missing.is_empty() {
                let mut peers: Vec<_> = self
                    .inner
                    .swarm
                    .peers()
                    .await?
                    .into_iter()
                    .map(|p| p.peer_id)
                    .collect();
                if let Some(p) = preferred {
                    if let Some(i) = peers.iter().position(|x| *x == p) {
                        peers.swap(0, i);
                    }
                }
                let bitswap = self.inner.swarm.bitswap();
                let fetched: Vec<_> = futures::stream::iter(missing)
                    .map(|c| {
                        let peers = &peers;
                        async move { (c, bitswap.fetch_from(c, peers).await) }
                    })
                    .buffer_unordered(16)
                    .collect()
                    .await;
                for (c, r) in fetched {
                    let (peer, b) = r.map_err(|e| NodeError::Vod(e.to_string()))?;
                    preferred = Some(peer);
                    next.extend(links_of(&c, &b));
                    recordings.put_verified(&[(c, b)])?;
                }
            }
            frontier = next;
        }
        Ok(())
    }

    /// A CARv1 of a VOD (root first, depth-first), sent in pieces to `tx`.
    /// Blocks not held are fetched from peers first.
    pub async fn vod_car(
        &self,
        root: &str,
        tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, String>>,
    ) -> Result<(), NodeError> {
        let root = parse_cid(root)?;
        self.fetch_dag(root, usize::MAX).await?;
        let store = self.inner.store.clone();
        tokio::task::spawn_blocking(move || {
            if tx.blocking_send(Ok(unixfs::car::header(&root))).is_err() {
                return;
            }
            let mut get = |c: &Cid| store.recordings.get_block(c);
            let r = unixfs::walk(&root, &mut get, &mut |c, b| {
                tx.blocking_send(Ok(unixfs::car::section(c, b)))
                    .map_err(|_| unixfs::UnixfsError::Sink("client went away".into()))
            });
            if let Err(e) = r {
                let _ = tx.blocking_send(Err(e.to_string()));
            }
        });
        Ok(())
    }
}
