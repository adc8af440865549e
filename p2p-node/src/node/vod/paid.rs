//! Paid VODs: the VOD of a paid stream keeps the stream's ciphertext, and
//! is watched with the same per-second vouchers and epoch keys as live.
//!
//! Its directory is the free layout plus one file, `paywall.json`:
//!
//! ```text
//! {"version":1,
//!  "announcement":"<hex: the creator's signed announcement, with its offer>",
//!  "segments":[{"seq":0,"epoch":294117,"us":1000000,"parts":[]}, …]}
//! ```
//!
//! one entry per playlist segment: the sequence number and epoch that seal
//! it (the paywall's nonce and associated data), its duration (what is
//! paid) and its sealed parts' sizes. The offer is trusted only through the
//! creator's signature on the announcement; a forged entry can only make
//! the segment fail to open (the AEAD binds stream, sequence and epoch),
//! and a segment is never paid for more than the longest segment lasts.
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
use vilokanam_swarm::protocols::live::wire::{GossipMessage, SignedAnnouncement};
use vilokanam_swarm::{Offer, StreamId};

use super::{parse_cid, NodeError, NodeHandle, MAX_VOD_SEGMENTS, SEGMENTS_PER_DIR};

/// The paywall manifest's name in a paid VOD's root directory.
pub const PAYWALL_FILE: &str = "paywall.json";
/// The manifest format's version.
const VERSION: u32 = 1;
/// Most sealed parts one segment has (LL-HLS parts of ≥ 100 ms in a
/// segment of at most [`vilokanam_media::limits::MAX_SEGMENT_DURATION`]).
const MAX_PARTS: usize = 256;
/// The longest segment (µs): no entry is paid for more.
const MAX_SEGMENT_US: u32 = vilokanam_media::limits::MAX_SEGMENT_DURATION.as_micros() as u32;
/// Paid VODs whose manifest a node keeps parsed.
pub(crate) const MANIFESTS_KEPT: usize = 16;

/// One segment of a paid VOD, as sealed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidSegment {
    /// The chunk's sequence number in the stream.
    pub seq: u64,
    /// The epoch whose key sealed it.
    pub epoch: u64,
    /// Its duration (µs): what watching it pays for.
    pub us: u32,
    /// Sizes of its sealed parts (empty: sealed whole).
    pub parts: Vec<u32>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    version: u32,
    announcement: String,
    segments: Vec<PaidSegment>,
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
        segments.push(PaidSegment {
            seq: c.seq,
            epoch: p.epoch,
            us: c.duration_us,
            parts: p.parts.clone(),
        });
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
    for (i, s) in m.segments.iter().enumerate() {
        if s.us == 0 || s.us > MAX_SEGMENT_US {
            return Err(bad(format!(
                "segment {i} lasts {} µs (1..={MAX_SEGMENT_US})",
                s.us
            )));
        }
        if s.parts.len() > MAX_PARTS || s.parts.contains(&0) {
            return Err(bad(format!(
                "segment {i} has {} parts or an empty one (at most {MAX_PARTS})",
                s.parts.len()
            )));
        }
    }
    Ok(PaidVod {
        stream: signed.announcement.stream,
        offer,
        segments: m.segments,
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
        let paid = bytes.map(|b| parse_manifest(&b)).transpose()?.map(Arc::new);
        super::super::lock(&self.inner.paid_vods).put(*root, paid.clone());
        Ok(paid)
    }

    /// Whether this node's user may see `vod` in clear: its creator, or a
    /// viewer paying for its stream.
    fn may_open(&self, vod: &PaidVod) -> bool {
        self.is_own(&vod.stream) || self.inner.payments.paying(&vod.stream)
    }

    fn is_own(&self, stream: &StreamId) -> bool {
        stream.creator
            == self
                .inner
                .publisher
                .signing_key()
                .verifying_key()
                .to_bytes()
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
        let key = if self.is_own(id) {
            StreamSecret::derive(self.inner.publisher.signing_key(), id).epoch_key(id, seg.epoch)
        } else {
            self.inner
                .payments
                .pay_and_key(
                    &self.inner.swarm,
                    id,
                    seg.seq,
                    None,
                    seg.epoch,
                    u64::from(seg.us),
                )
                .await?
        };
        let opened = if seg.parts.is_empty() {
            paywall::open_payload(&key, id, seg.seq, seg.epoch, &sealed)
        } else {
            let sizes = seg.parts.iter().map(|p| *p as usize);
            paywall::open_parts(&key, id, seg.seq, seg.epoch, sizes, &sealed)
        };
        let plain = opened.map_err(|reason| NodeError::Undecryptable {
            stream: id.to_string(),
            seq: seg.seq,
            reason,
        })?;
        self.inner
            .payments
            .update_metrics(&self.inner.metrics)
            .await;
        Ok(plain)
    }

    /// The offer of a paid stream this node created and holds a VOD of:
    /// its key server keeps selling that stream's keys.
    pub(crate) async fn own_paid_vod_offer(&self, stream: &StreamId) -> Option<Offer> {
        let root = super::super::lock(&self.inner.own_paid_vods)
            .get(stream)
            .cloned()?;
        let cid = parse_cid(&root).ok()?;
        match self.paid_vod(&cid).await {
            Ok(Some(v)) if &v.stream == stream => Some(v.offer.clone()),
            _ => None,
        }
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
                own.insert(id, r.to_owned());
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
        let chunk = |paid: bool| RecordedChunk {
            seq: 7,
            file_cid: vec![],
            tsize: 0,
            live_digest: [0; 32],
            size: 10,
            duration_us: 1_000_000,
            discontinuity: false,
            published_ms: 1,
            paid: paid.then(|| vilokanam_storage::PaidChunk {
                epoch: 3,
                parts: vec![],
            }),
        };
        let good = manifest(&signed, &[chunk(true)]).unwrap();
        let v = parse_manifest(&good).unwrap();
        assert_eq!(
            (v.stream.clone(), v.offer.clone()),
            (stream.clone(), offer.clone())
        );
        assert_eq!(
            v.segments[0],
            PaidSegment {
                seq: 7,
                epoch: 3,
                us: 1_000_000,
                parts: vec![]
            }
        );

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
        let mut f = m.clone();
        f["segments"][0]["us"] = 0.into();
        refuse(&f, "lasts 0");
        f["segments"][0]["us"] = (MAX_SEGMENT_US + 1).into();
        refuse(&f, "lasts");
        let mut f = m.clone();
        f["segments"][0]["parts"] = serde_json::json!([0]);
        refuse(&f, "parts");
        f["segments"][0]["parts"] = serde_json::json!(vec![1; MAX_PARTS + 1]);
        refuse(&f, "parts");
        m["extra"] = 1.into();
        refuse(&m, "unknown field");
        refuse(&serde_json::json!("garbage"), "invalid");
    }
}
