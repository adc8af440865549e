//! Paid VODs: the VOD of a paid stream keeps the stream's ciphertext, and
//! is watched with the same per-second vouchers and epoch keys as live.
//!
//! Its directory is the free layout plus one file, `paywall.json`:
//!
//! ```text
//! {"version":1,
//!  "announcement":"<hex: the creator's signed announcement, with its offer>",
//!  "segments":["<hex: the creator's signed header of the segment's chunk>", …]}
//! ```
//!
//! one signed header per playlist segment, as it travelled the mesh: its
//! stream, sequence number and epoch (the paywall's nonce and associated
//! data), its duration (what is paid), its sealed parts and the CID of its
//! ciphertext. Nothing in the file is trusted but what the creator signed:
//! the offer through the announcement's signature, each segment through
//! its header's. Before a viewer's node pays for a segment it checks the
//! header's signature and that the segment's bytes are the ciphertext the
//! header names; a forged or repackaged entry is refused and costs nothing.
//! The playlist and the segments' bytes are public (IPFS peers fetch and
//! pin ciphertext); a node serves them decrypted only to its own user, on
//! the creator's node, or after paying for their time.
//!
//! Keys: the creator's node (the key server its offer names) keeps
//! selling the keys of a stream it holds a paid VOD of, for any past
//! epoch ([`vilokanam_swarm::protocols::keys::core::KeyServer::set_archive`]),
//! under the live rule: at most one epoch unpaid.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vilokanam_storage::unixfs::{self, Cid};
use vilokanam_storage::RecordedChunk;
use vilokanam_swarm::protocols::keys::paywall::{self, StreamSecret};
use vilokanam_swarm::protocols::live::wire::{GossipMessage, SignedAnnouncement, SignedHeader};
use vilokanam_swarm::{Offer, StreamId};

use super::{parse_cid, NodeError, NodeHandle, MAX_VOD_SEGMENTS, SEGMENTS_PER_DIR};

/// The paywall manifest's name in a paid VOD's root directory.
pub const PAYWALL_FILE: &str = "paywall.json";
/// The manifest format's version.
const VERSION: u32 = 1;
/// Paid VODs whose manifest a node keeps parsed.
pub(crate) const MANIFESTS_KEPT: usize = 16;
/// How far ahead of what it has played a player may fetch a paid VOD
/// (media µs): hls.js buffers 30 s, and mpv would otherwise read (and
/// this node pay for) the whole VOD within seconds of starting.
pub const READ_AHEAD_US: u64 = 30_000_000;

/// Paces a player through a paid VOD, IO-less: it may hold at most
/// [`READ_AHEAD_US`] of media beyond what it can have played since it
/// started (or seeked), so the node pays for seconds watched, not for a
/// player's prefetch. What it "can have played" grows with wall time but
/// never past what it fetched (a paused player gains nothing). A request
/// that is not the next segment is a seek: the clock starts again there.
#[derive(Debug, Default)]
pub struct Pace {
    fetched_us: u64,
    played_us: u64,
    at: Option<std::time::Instant>,
    last: Option<usize>,
}

impl Pace {
    /// Whether segment `i` (lasting `us`) may be served at `now`: `None`,
    /// and it is counted; or how long to wait first.
    pub fn admit(
        &mut self,
        now: std::time::Instant,
        i: usize,
        us: u32,
    ) -> Option<std::time::Duration> {
        if self.last == Some(i) {
            return None; // fetched again: counted once
        }
        let sequential = self.last.is_some_and(|l| l + 1 == i);
        if !sequential {
            *self = Pace::default();
        }
        let elapsed = self
            .at
            .map_or(0, |at| now.saturating_duration_since(at).as_micros() as u64);
        self.played_us = (self.played_us + elapsed).min(self.fetched_us);
        self.at = Some(now);
        let after = self.fetched_us + u64::from(us);
        let wait = after.saturating_sub(self.played_us + READ_AHEAD_US);
        if wait > 0 {
            return Some(std::time::Duration::from_micros(wait));
        }
        self.fetched_us = after;
        self.last = Some(i);
        None
    }
}

/// One segment of a paid VOD: its chunk's header as the creator signed it
/// (checked before the segment is paid for).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaidSegment {
    /// The signed header (fields in range, epoch set, this stream's;
    /// signature not yet checked).
    pub header: SignedHeader,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    announcement: String,
    segments: Vec<String>,
}

/// A paid VOD's terms and seals, checked.
#[derive(Debug)]
pub struct PaidVod {
    /// The stream it was recorded from.
    pub stream: StreamId,
    /// What watching costs, as the creator signed it.
    pub offer: Offer,
    /// Per playlist segment, in order.
    pub segments: Vec<PaidSegment>,
}

/// The manifest of a paid VOD over `chunks`, from the creator's signed
/// announcement of the stream. Fails if the announcement has no offer or a
/// chunk is not sealed.
pub(super) fn manifest(
    announcement: &SignedAnnouncement,
    chunks: &[RecordedChunk],
) -> Result<Vec<u8>, NodeError> {
    let stream = &announcement.announcement.stream;
    if announcement.announcement.offer.is_none() {
        return Err(NodeError::Vod(format!(
            "{stream} has encrypted (paid) chunks but its announcement carries no offer: no VOD is built of it"
        )));
    }
    let mut segments = Vec::with_capacity(chunks.len());
    for c in chunks {
        let p = c.paid.as_ref().ok_or_else(|| {
            NodeError::Vod(format!(
                "{stream} is paid but chunk {} was recorded unencrypted: no VOD is built of it",
                c.seq
            ))
        })?;
        segments.push(hex::encode(&p.header));
    }
    let m = Manifest {
        version: VERSION,
        announcement: hex::encode(GossipMessage::Announce(announcement.clone()).encode()),
        segments,
    };
    serde_json::to_vec(&m).map_err(|e| NodeError::Vod(format!("paywall manifest: {e}")))
}

/// Parses and checks a manifest: the creator's signature on the
/// announcement, an offer in it, and every entry's bounds.
pub fn parse_manifest(bytes: &[u8]) -> Result<PaidVod, NodeError> {
    let bad = |why: String| NodeError::Vod(format!("invalid {PAYWALL_FILE}: {why}"));
    let m: Manifest = serde_json::from_slice(bytes).map_err(|e| bad(e.to_string()))?;
    if m.version != VERSION {
        return Err(bad(format!(
            "version {} (this node reads {VERSION})",
            m.version
        )));
    }
    let raw = hex::decode(&m.announcement).map_err(|e| bad(format!("announcement: {e}")))?;
    let signed = match GossipMessage::decode(&raw).map_err(|e| bad(format!("announcement: {e}")))? {
        GossipMessage::Announce(a) => a,
        _ => return Err(bad("announcement: not an announcement".into())),
    };
    signed
        .verify()
        .map_err(|e| bad(format!("announcement: {e}")))?;
    let offer = signed
        .announcement
        .offer
        .clone()
        .ok_or_else(|| bad("the announcement carries no offer".into()))?;
    if m.segments.len() > MAX_VOD_SEGMENTS {
        return Err(bad(format!(
            "{} segments (at most {MAX_VOD_SEGMENTS})",
            m.segments.len()
        )));
    }
    let stream = signed.announcement.stream;
    let mut segments = Vec::with_capacity(m.segments.len());
    for (i, s) in m.segments.iter().enumerate() {
        let raw = hex::decode(s).map_err(|e| bad(format!("segment {i}: {e}")))?;
        // Decoding checks every field's range.
        let header =
            match GossipMessage::decode(&raw).map_err(|e| bad(format!("segment {i}: {e}")))? {
                GossipMessage::Chunk(h) => h,
                _ => return Err(bad(format!("segment {i}: not a chunk header"))),
            };
        if header.header.stream != stream || header.header.epoch.is_none() {
            return Err(bad(format!(
                "segment {i}: a header of another stream, or of a free chunk"
            )));
        }
        segments.push(PaidSegment { header });
    }
    Ok(PaidVod {
        stream,
        offer,
        segments,
    })
}

/// The playlist index of a segment path (`000/000001.ts` → 1).
fn segment_index(path: &str) -> Option<usize> {
    let (dir, file) = path.split_once('/')?;
    let i: usize = file.strip_suffix(".ts")?.parse().ok()?;
    (dir.len() == 3 && dir == format!("{:03}", i / SEGMENTS_PER_DIR) && file.len() == 9)
        .then_some(i)
}

impl NodeHandle {
    /// The paywall of VOD `root`, if it is paid (parsed once, kept for the
    /// last [`MANIFESTS_KEPT`] VODs asked about).
    pub async fn paid_vod(&self, root: &Cid) -> Result<Option<Arc<PaidVod>>, NodeError> {
        if let Some(p) = super::super::lock(&self.inner.paid_vods).get(root) {
            return Ok(p.clone());
        }
        let r = *root;
        let bytes = self
            .with_blocks(move |get| match unixfs::resolve(&r, PAYWALL_FILE, get) {
                Ok(f) => unixfs::read_file(&f, get).map(Some),
                Err(unixfs::UnixfsError::NotFound(_)) => Ok(None),
                Err(e) => Err(e),
            })
            .await?;
        // Up to a few MB of JSON: parsed off the async workers.
        let paid = match bytes {
            None => None,
            Some(b) => Some(Arc::new(
                tokio::task::spawn_blocking(move || parse_manifest(&b))
                    .await
                    .map_err(|e| NodeError::Vod(format!("paywall task failed: {e}")))??,
            )),
        };
        super::super::lock(&self.inner.paid_vods).put(*root, paid.clone());
        Ok(paid)
    }

    /// Whether VOD `root` is paid.
    pub async fn is_paid_vod(&self, root: &str) -> Result<bool, NodeError> {
        Ok(self.paid_vod(&parse_cid(root)?).await?.is_some())
    }

    /// Whether this node's user may see `vod` in clear: its creator, or a
    /// viewer paying for its stream.
    fn may_open(&self, vod: &PaidVod) -> bool {
        self.is_own(&vod.stream) || self.inner.payments.paying(&vod.stream)
    }

    fn is_own(&self, stream: &StreamId) -> bool {
        stream.creator == self.inner.identity.creator
    }

    /// Starts paying for paid VOD `root` from a budget (one channel on the
    /// chain, as for a live stream: `(budget, ceiling)`), after checking
    /// its price against `max_price`. Nothing to do for a free VOD or one
    /// of this node's own streams. Returns the VOD's paywall, if any.
    pub async fn watch_vod(
        &self,
        root: &str,
        max_price: Option<u128>,
        budget: Option<(u128, u128)>,
    ) -> Result<Option<Arc<PaidVod>>, NodeError> {
        let cid = parse_cid(root)?;
        let Some(vod) = self.paid_vod(&cid).await? else {
            return Ok(None);
        };
        if self.is_own(&vod.stream) {
            return Ok(Some(vod));
        }
        let cap = max_price.or(self.inner.config.max_price_per_sec().ok().flatten());
        if let Some(cap) = cap {
            if vod.offer.price_per_sec > cap {
                return Err(NodeError::TooExpensive {
                    stream: vod.stream.to_string(),
                    price: vod.offer.price_per_sec,
                    cap,
                });
            }
        }
        let Some((budget, ceiling)) = budget else {
            return Err(NodeError::Unpaid {
                stream: vod.stream.to_string(),
                price: vod.offer.price_per_sec,
                what: "this VOD (give a budget)".into(),
            });
        };
        self.inner
            .payments
            .open_session(&vod.stream, &vod.offer, budget, ceiling)
            .await?;
        Ok(Some(vod))
    }

    /// Stops paying for paid VOD `root`: the last voucher stays with the
    /// creator, the rest of the deposit comes back when the channel closes.
    pub async fn unwatch_vod(&self, root: &str) -> Result<(), NodeError> {
        let cid = parse_cid(root)?;
        if let Some(vod) = self.paid_vod(&cid).await? {
            self.inner
                .payments
                .end_session(&self.inner.swarm, &vod.stream)
                .await;
        }
        Ok(())
    }

    /// A VOD's file as a player gets it: a free VOD's bytes; for a paid
    /// one, the playlist and segments only to the creator or a paying
    /// viewer, each segment decrypted (its time paid first, once).
    pub async fn vod_media(&self, root: &str, path: &str) -> Result<Vec<u8>, NodeError> {
        let cid = parse_cid(root)?;
        let Some(vod) = self.paid_vod(&cid).await? else {
            return self.vod_file(root, path).await;
        };
        let index = segment_index(path);
        if path == PAYWALL_FILE || (index.is_none() && path != "index.m3u8") {
            return self.vod_file(root, path).await;
        }
        if !self.may_open(&vod) {
            return Err(NodeError::Unpaid {
                stream: vod.stream.to_string(),
                price: vod.offer.price_per_sec,
                what: "this VOD".into(),
            });
        }
        let Some(i) = index else {
            return self.vod_file(root, path).await;
        };
        let seg = vod.segments.get(i).ok_or_else(|| {
            NodeError::Vod(format!(
                "{path}: the VOD's paywall lists {} segments",
                vod.segments.len()
            ))
        })?;
        let sealed = self.vod_file(root, path).await?;
        let id = &vod.stream;
        if !self.is_own(id) {
            self.pace(&cid, i, seg.header.header.duration_us).await;
        }
        // Nothing is paid for what the creator did not sign: the header's
        // signature, then that these bytes are the ciphertext it names.
        let signed = &seg.header;
        signed
            .verify()
            .and_then(|()| signed.check_payload(&sealed))
            .map_err(|e| {
                NodeError::Vod(format!(
                    "{path}: segment not as its creator signed it ({e}): not paid for"
                ))
            })?;
        let h = &signed.header;
        let epoch = h.epoch.unwrap_or_default();
        let key = if self.is_own(id) {
            StreamSecret::derive(self.inner.publisher.signing_key(), id).epoch_key(id, epoch)
        } else {
            self.inner
                .payments
                .pay_and_key(
                    &self.inner.swarm,
                    id,
                    h.seq,
                    None,
                    epoch,
                    u64::from(h.duration_us),
                )
                .await?
        };
        let opened = if h.parts.is_empty() {
            paywall::open_payload(&key, id, h.seq, epoch, &sealed)
        } else {
            let sizes = h.parts.iter().map(|p| p.size as usize);
            paywall::open_parts(&key, id, h.seq, epoch, sizes, &sealed)
        };
        let plain = opened.map_err(|reason| NodeError::Undecryptable {
            stream: id.to_string(),
            seq: h.seq,
            reason,
        })?;
        self.inner
            .payments
            .update_metrics(&self.inner.metrics)
            .await;
        Ok(plain)
    }

    /// Waits until segment `i` of paid VOD `root` is due for the player
    /// ([`Pace`]): one pace per VOD (the last [`MANIFESTS_KEPT`] played).
    async fn pace(&self, root: &Cid, i: usize, us: u32) {
        let pace = super::super::lock(&self.inner.vod_paces)
            .get_or_insert(*root, Default::default)
            .clone();
        let mut pace = pace.lock().await;
        while let Some(wait) = pace.admit(std::time::Instant::now(), i, us) {
            tokio::time::sleep(wait).await;
        }
    }

    /// The offer of a paid stream this node created and holds a VOD of:
    /// its key server keeps selling that stream's keys.
    /// (A map lookup for any other stream; the paywall is read once per
    /// stream, then its offer is kept.)
    pub(crate) async fn own_paid_vod_offer(&self, stream: &StreamId) -> Option<Offer> {
        let (root, offer) = super::super::lock(&self.inner.own_paid_vods)
            .get(stream)
            .cloned()?;
        if offer.is_some() {
            return offer;
        }
        let cid = parse_cid(&root).ok()?;
        let offer = match self.paid_vod(&cid).await {
            Ok(Some(v)) if &v.stream == stream => v.offer.clone(),
            _ => return None,
        };
        if let Some(e) = super::super::lock(&self.inner.own_paid_vods).get_mut(stream) {
            if e.0 == root {
                e.1 = Some(offer.clone());
            }
        }
        Some(offer)
    }

    /// Notes (or forgets, `root` = `None`) this node's paid VOD of
    /// `stream`.
    pub(super) fn note_own_paid_vod(&self, stream: &str, root: Option<&str>) {
        let Ok(id) = stream.parse::<StreamId>() else {
            return;
        };
        if !self.is_own(&id) {
            return;
        }
        let mut own = super::super::lock(&self.inner.own_paid_vods);
        match root {
            Some(r) => {
                own.insert(id, (r.to_owned(), None));
            }
            None => {
                own.remove(&id);
            }
        }
    }

    /// Loads the list of this node's own paid VODs (at start).
    pub(crate) fn load_own_paid_vods(&self) {
        // Oldest first, so the newest VOD of a stream is the one kept.
        let mut all = self.inner.store.vods.all().unwrap_or_default();
        all.reverse();
        for r in all.iter().filter(|r| r.is_paid()) {
            self.note_own_paid_vod(&r.stream, Some(&r.root));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_player_is_paced_to_what_it_can_have_played_plus_the_read_ahead() {
        let t0 = std::time::Instant::now();
        let s = std::time::Duration::from_secs;
        let mut p = Pace::default();
        // 1 s segments: the first 30 at once (the read-ahead) ...
        for i in 0..30 {
            assert_eq!(p.admit(t0, i, 1_000_000), None, "segment {i}");
        }
        // ... the 31st when a second has been played.
        assert_eq!(p.admit(t0, 30, 1_000_000), Some(s(1)));
        assert_eq!(p.admit(t0 + s(1), 30, 1_000_000), None);
        // Fetched again: free, and not counted twice.
        assert_eq!(p.admit(t0 + s(1), 30, 1_000_000), None);
        // Paused for a minute (no request): it cannot have played more
        // than it fetched, so it gains no more than the read-ahead.
        let later = t0 + s(61);
        for i in 31..61 {
            assert_eq!(p.admit(later, i, 1_000_000), None, "segment {i}");
        }
        assert!(p.admit(later, 61, 1_000_000).is_some());
        // A seek starts again: the read-ahead from there.
        assert_eq!(p.admit(later, 500, 1_000_000), None);
        for i in 501..530 {
            assert_eq!(p.admit(later, i, 1_000_000), None, "segment {i}");
        }
        assert_eq!(p.admit(later, 530, 1_000_000), Some(s(1)));
    }

    proptest::proptest! {
        /// The paywall parser takes any bytes a peer serves: never a
        /// panic, garbage refused.
        #[test]
        fn any_bytes_parse_or_are_refused_without_a_panic(
            bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048),
            flips in proptest::collection::vec((0usize..4096, proptest::num::u8::ANY), 0..8),
        ) {
            let _ = parse_manifest(&bytes);
            let key = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
            let stream = StreamId::new(key.verifying_key().to_bytes(), "p").unwrap();
            let offer = Offer {
                price_per_sec: 5,
                payee: [1; 32],
                genesis: [2; 32],
                epoch_secs: 6,
                key_servers: vec![vilokanam_swarm::protocols::live::wire::KeyServerAddr {
                    peer_id: vec![1; 38],
                    addrs: vec![],
                }],
            };
            let signed = vilokanam_swarm::protocols::live::wire::Announcement {
                stream,
                title: String::new(),
                tags: vec![],
                codec: String::new(),
                started_at_ms: 1,
                updated_at_ms: 1,
                last_seq: None,
                ended: true,
                offer: Some(offer),
            }
            .sign(&key)
            .unwrap();
            let mut good = manifest(&signed, &[]).unwrap();
            proptest::prop_assert!(parse_manifest(&good).is_ok());
            for (at, b) in flips {
                let n = good.len();
                good[at % n] = b;
            }
            let _ = parse_manifest(&good);
        }
    }

    #[test]
    fn segment_paths_map_to_playlist_indices() {
        assert_eq!(segment_index("000/000000.ts"), Some(0));
        assert_eq!(segment_index("001/001234.ts"), Some(1234));
        assert_eq!(segment_index("000/001234.ts"), None, "wrong directory");
        assert_eq!(segment_index("0/000001.ts"), None);
        assert_eq!(segment_index("000/1.ts"), None);
        assert_eq!(segment_index("index.m3u8"), None);
        assert_eq!(segment_index("000/000001.ts/x"), None);
    }

    #[test]
    fn a_manifest_without_a_valid_signature_or_in_bounds_is_refused() {
        use ed25519_dalek::SigningKey;
        use vilokanam_swarm::protocols::live::wire::Announcement;
        let key = SigningKey::from_bytes(&[9; 32]);
        let stream = StreamId::new(key.verifying_key().to_bytes(), "paid").unwrap();
        let offer = Offer {
            price_per_sec: 1_000,
            payee: [1; 32],
            genesis: [2; 32],
            epoch_secs: 6,
            key_servers: vec![vilokanam_swarm::protocols::live::wire::KeyServerAddr {
                peer_id: vec![1; 38],
                addrs: vec!["/ip4/127.0.0.1/tcp/1".into()],
            }],
        };
        let a = |offer: Option<Offer>| Announcement {
            stream: stream.clone(),
            title: "t".into(),
            tags: vec![],
            codec: String::new(),
            started_at_ms: 1,
            updated_at_ms: 2,
            last_seq: Some(0),
            ended: true,
            offer,
        };
        let signed = a(Some(offer.clone())).sign(&key).unwrap();
        let header = |key: &SigningKey, stream: &StreamId, epoch: Option<u64>| {
            vilokanam_swarm::ChunkHeader {
                stream: stream.clone(),
                seq: 7,
                duration_us: 1_000_000,
                cid: vilokanam_swarm::ChunkCid::of(b"sealed"),
                size: 6,
                published_at_ms: 1,
                discontinuity: false,
                epoch,
                parts: vec![],
            }
            .sign(key)
            .unwrap()
        };
        let encoded = |h: SignedHeader| GossipMessage::Chunk(h).encode();
        let chunk = |paid: bool| RecordedChunk {
            seq: 7,
            file_cid: vec![],
            tsize: 0,
            live_digest: [0; 32],
            size: 6,
            duration_us: 1_000_000,
            discontinuity: false,
            published_ms: 1,
            paid: paid.then(|| vilokanam_storage::PaidChunk {
                epoch: 3,
                parts: vec![],
                header: encoded(header(&key, &stream, Some(3))),
            }),
        };
        let good = manifest(&signed, &[chunk(true)]).unwrap();
        let v = parse_manifest(&good).unwrap();
        assert_eq!(
            (v.stream.clone(), v.offer.clone()),
            (stream.clone(), offer.clone())
        );
        assert_eq!(v.segments[0].header, header(&key, &stream, Some(3)));

        // An unsealed chunk, or no offer: nothing is built.
        assert!(manifest(&signed, &[chunk(false)]).is_err());
        let free = a(None).sign(&key).unwrap();
        assert!(manifest(&free, &[chunk(true)]).is_err());

        let mut m: serde_json::Value = serde_json::from_slice(&good).unwrap();
        let refuse = |m: &serde_json::Value, why: &str| {
            let e = parse_manifest(&serde_json::to_vec(m).unwrap()).unwrap_err();
            assert!(e.to_string().contains(why), "{e} (wanted {why})");
        };
        // A forged price: the signature no longer holds.
        let mut forged = signed.clone();
        forged.announcement.offer.as_mut().unwrap().price_per_sec = 1;
        let mut f = m.clone();
        f["announcement"] = hex::encode(GossipMessage::Announce(forged).encode()).into();
        refuse(&f, "announcement");
        // Signed by another key.
        let other = SigningKey::from_bytes(&[8; 32]);
        let mut stolen = signed.clone();
        stolen.signature = a(Some(offer)).sign(&key).unwrap().signature;
        stolen.announcement.stream =
            StreamId::new(other.verifying_key().to_bytes(), "paid").unwrap();
        let mut f = m.clone();
        f["announcement"] = hex::encode(GossipMessage::Announce(stolen).encode()).into();
        refuse(&f, "announcement");
        let mut f = m.clone();
        f["announcement"] = "zz".into();
        refuse(&f, "announcement");
        let mut f = m.clone();
        f["version"] = 2.into();
        refuse(&f, "version 2");
        // Segments: garbage, a free chunk's header, another stream's.
        let mut f = m.clone();
        f["segments"][0] = "zz".into();
        refuse(&f, "segment 0");
        f["segments"][0] = hex::encode(encoded(header(&key, &stream, None))).into();
        refuse(&f, "of a free chunk");
        let theirs = StreamId::new(other.verifying_key().to_bytes(), "x").unwrap();
        f["segments"][0] = hex::encode(encoded(header(&other, &theirs, Some(3)))).into();
        refuse(&f, "another stream");
        f["segments"][0] = hex::encode(GossipMessage::Announce(signed.clone()).encode()).into();
        refuse(&f, "not a chunk header");
        // A header tampered with (a longer duration: a dearer segment)
        // parses, but its signature fails where the node checks it,
        // before paying.
        let mut dearer = header(&key, &stream, Some(3));
        dearer.header.duration_us = 30_000_000;
        f["segments"][0] = hex::encode(encoded(dearer)).into();
        let v = parse_manifest(&serde_json::to_vec(&f).unwrap()).unwrap();
        assert!(v.segments[0].header.verify().is_err());
        assert!(header(&key, &stream, Some(3)).verify().is_ok());
        m["extra"] = 1.into();
        refuse(&m, "unknown field");
        refuse(&serde_json::json!("garbage"), "invalid");
    }
}
