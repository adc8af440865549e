//! Publishing: the streams this node creates. One place owns a published
//! stream's sequence numbers, its announcement and whether it is live.
//!
//! Sequence numbers are *reserved* before a chunk is signed: the next
//! number is persisted first, then bumped in memory, then the chunk is
//! signed and published. If publishing fails the number is burned (a gap
//! peers skip), never reused: a second chunk signed for one number would
//! be dropped by every peer as equivocation.
//!
//! A stream whose encoder stops sending (OBS "Stop Streaming", a killed
//! `vilokanam publish`) is ended after `publish_idle_secs` without a
//! segment, and resumes with a discontinuity when segments come again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use ed25519_dalek::SigningKey;
use tokio::time::Instant;
use tracing::{info, warn};
use vilokanam_media::ts;
use vilokanam_storage::{StreamRole, Streams};
use vilokanam_swarm::protocols::keys::paywall::{self, EpochKey, StreamSecret};
use vilokanam_swarm::{
    Announcement, Chunk, ChunkCid, ChunkHeader, Offer, Part, PartHeader, PartInfo,
    SignedAnnouncement, StreamId,
};

use super::error::NodeError;

/// Why a published stream is not live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndCause {
    /// The creator ended it (`POST …/end`, `vilokanam publish` finishing).
    Creator,
    /// No segment arrived for the idle timeout (the encoder stopped).
    Idle,
}

/// A stream this node publishes.
#[derive(Debug)]
pub struct Published {
    /// Its id.
    pub stream: StreamId,
    /// Its current (unsigned) announcement.
    pub announcement: Announcement,
    /// The number the next chunk gets.
    pub next_seq: u64,
    /// Mark the next chunk as a timestamp discontinuity.
    pub discontinuity: bool,
    /// When the last segment (or the start) came.
    pub last_activity: Instant,
    /// `None` while live.
    pub ended: Option<EndCause>,
    /// The parts published of the segment in progress (LL-HLS).
    pub open: Option<OpenSegment>,
}

/// The segment in progress of a stream published as parts: its number is
/// reserved at its first part.
#[derive(Debug)]
pub struct OpenSegment {
    /// Its sequence number.
    pub seq: u64,
    /// The parts so far: what the segment header will say of each, its
    /// plaintext (to check that the segment posted at the end is made of
    /// them) and its payload on the wire (the ciphertext of a paid
    /// stream).
    pub parts: Vec<(PartInfo, Bytes, Bytes)>,
    /// Part 0 carried a discontinuity mark.
    pub discontinuity: bool,
    /// A paid stream's epoch, fixed at part 0 for the whole segment.
    pub epoch: Option<u64>,
}

impl OpenSegment {
    fn bytes(&self) -> usize {
        self.parts.iter().map(|(_, b, _)| b.len()).sum()
    }

    /// Whether `body` is exactly the parts in order.
    fn is_made_of(&self, body: &[u8]) -> bool {
        body.len() == self.bytes()
            && self
                .parts
                .iter()
                .scan(0usize, |at, (_, b, _)| {
                    let start = *at;
                    *at += b.len();
                    Some(body.get(start..*at) == Some(b.as_ref()))
                })
                .all(|same| same)
    }
}

/// The result of publishing one part.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedPart {
    /// Sequence number of its segment.
    pub seq: u64,
    /// Its index.
    pub index: u16,
    /// CID of the payload.
    pub cid: ChunkCid,
}

/// The result of publishing one segment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedSegment {
    /// Sequence number.
    pub seq: u64,
    /// CID of the payload.
    pub cid: ChunkCid,
    /// Payload size.
    pub size: usize,
}

/// What [`Publisher::segment`] asks the caller to do around the swarm.
pub struct Prepared {
    /// The signed chunk to hand to the swarm.
    pub chunk: Chunk,
    /// The stream resumed after an idle end: announce it live again.
    pub resumed: Option<SignedAnnouncement>,
}

/// The streams this node publishes, by name.
pub struct Publisher {
    key: SigningKey,
    store: Streams,
    streams: Mutex<HashMap<String, Arc<tokio::sync::Mutex<Published>>>>,
}

/// The wall clock in unix ms.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Publisher {
    /// A publisher signing with the creator `key`, persisting in `store`.
    pub fn new(key: SigningKey, store: Streams) -> Self {
        Publisher {
            key,
            store,
            streams: Mutex::new(HashMap::new()),
        }
    }

    /// The id of stream `name` of this node.
    pub fn stream_id(&self, name: &str) -> Result<StreamId, NodeError> {
        StreamId::new(self.key.verifying_key().to_bytes(), name).map_err(|reason| {
            NodeError::InvalidStream {
                name: name.to_owned(),
                reason,
            }
        })
    }

    fn entry(&self, name: &str) -> Option<Arc<tokio::sync::Mutex<Published>>> {
        self.streams.lock().ok().and_then(|m| m.get(name).cloned())
    }

    /// Names of the published streams.
    pub fn names(&self) -> Vec<String> {
        self.streams
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Starts (or restarts) stream `name`; returns its id, the signed
    /// announcement to send, and the next sequence number. A restarted
    /// stream continues its sequence (peers and players keep their place)
    /// after a discontinuity.
    pub async fn start(
        &self,
        name: &str,
        title: String,
        tags: Vec<String>,
        codec: String,
        offer: Option<Offer>,
    ) -> Result<(StreamId, SignedAnnouncement, u64), NodeError> {
        let stream = self.stream_id(name)?;
        let now = now_ms();
        let announcement = Announcement {
            stream: stream.clone(),
            title,
            tags,
            codec: if codec.is_empty() {
                "mpegts".into()
            } else {
                codec
            },
            started_at_ms: now,
            updated_at_ms: now,
            last_seq: None,
            ended: false,
            offer,
        };
        announcement
            .validate()
            .map_err(|reason| NodeError::InvalidStream {
                name: name.to_owned(),
                reason,
            })?;
        let id = stream.to_string();
        let stored = self.store.get(&id)?.map(|r| r.next_seq).unwrap_or(0);
        let existing = self.entry(name);
        let next_seq = match &existing {
            Some(p) => p.lock().await.next_seq.max(stored),
            None => stored,
        };
        let published = Published {
            stream: stream.clone(),
            announcement,
            next_seq,
            discontinuity: next_seq > 0,
            last_activity: Instant::now(),
            ended: None,
            open: None,
        };
        let signed = self.sign(&published)?;
        self.store.update(&id, StreamRole::Published, |r| {
            r.role = StreamRole::Published;
            r.announcement =
                vilokanam_swarm::wire::GossipMessage::Announce(signed.clone()).encode();
            r.updated_ms = now;
        })?;
        match existing {
            Some(p) => *p.lock().await = published,
            None => {
                if let Ok(mut m) = self.streams.lock() {
                    m.insert(
                        name.to_owned(),
                        Arc::new(tokio::sync::Mutex::new(published)),
                    );
                }
            }
        }
        info!(stream = %stream, next_seq, "stream started");
        Ok((stream, signed, next_seq))
    }

    fn sign(&self, p: &Published) -> Result<SignedAnnouncement, NodeError> {
        let mut a = p.announcement.clone();
        a.updated_at_ms = now_ms();
        a.last_seq = p.next_seq.checked_sub(1);
        a.ended = p.ended.is_some();
        a.sign(&self.key)
            .map_err(|reason| NodeError::InvalidStream {
                name: p.stream.name.clone(),
                reason,
            })
    }

    /// Checks a segment, reserves its sequence number (persisted first)
    /// and signs its chunk. The caller publishes the chunk; whatever
    /// happens then, the number is used up.
    pub async fn segment(
        &self,
        name: &str,
        duration_us: u32,
        discontinuity: bool,
        body: Bytes,
    ) -> Result<Prepared, NodeError> {
        ts::validate_segment(&body)?;
        let entry = self.entry(name).ok_or_else(|| NodeError::NotStarted {
            name: name.to_owned(),
        })?;
        // One segment of a stream at a time: numbers stay in order.
        let mut p = entry.lock().await;
        let resumed = self.resume(name, &mut p)?;
        let id = p.stream.to_string();
        let published_at_ms = now_ms();
        // A segment published as parts has its number already (reserved
        // at part 0); it lists them if it is exactly their bytes, so that
        // peers holding the parts assemble it instead of pulling it.
        let open = p.open.take();
        let seq = open.as_ref().map_or(p.next_seq, |o| o.seq);
        let parts_discontinuity = open.as_ref().is_some_and(|o| o.discontinuity);
        let made_of_parts = open.filter(|o| {
            let made = o.is_made_of(&body);
            if !made {
                warn!(stream = %p.stream, seq = o.seq, "segment differs from its parts: published whole");
            }
            made
        });
        let parts: Vec<PartInfo> = made_of_parts
            .as_ref()
            .map(|o| o.parts.iter().map(|(info, _, _)| *info).collect())
            .unwrap_or_default();
        // A paid stream's payload is encrypted with its epoch's key; the
        // CID and size are the ciphertext's, so relays verify it unread.
        // A segment made of parts is their ciphertexts in order (each part
        // sealed on its own), so peers assemble it from them.
        let (epoch, body) = match (&p.announcement.offer, made_of_parts) {
            (Some(_), Some(open)) => {
                let mut wire =
                    Vec::with_capacity(open.bytes() + open.parts.len() * paywall::TAG_LEN);
                for (_, _, w) in &open.parts {
                    wire.extend_from_slice(w);
                }
                (open.epoch, Bytes::from(wire))
            }
            (Some(offer), None) => {
                let epoch = paywall::epoch_at(published_at_ms, offer.epoch_secs);
                let key = StreamSecret::derive(&self.key, &p.stream).epoch_key(&p.stream, epoch);
                let sealed = paywall::seal_payload(&key, &p.stream, seq, epoch, &body);
                (Some(epoch), Bytes::from(sealed))
            }
            (None, _) => (None, body),
        };
        // Persist the next number first: a crash after signing must never
        // make the restarted stream sign a second chunk for `seq`.
        self.store.update(&id, StreamRole::Published, |r| {
            r.next_seq = r.next_seq.max(seq + 1);
            r.updated_ms = now_ms();
        })?;
        p.next_seq = p.next_seq.max(seq + 1);
        p.last_activity = Instant::now();
        let header = ChunkHeader {
            stream: p.stream.clone(),
            seq,
            duration_us,
            cid: ChunkCid::of(&body),
            size: body.len() as u32,
            published_at_ms,
            discontinuity: p.discontinuity || discontinuity || parts_discontinuity,
            epoch,
            parts,
        }
        .sign(&self.key)
        .map_err(|reason| NodeError::InvalidStream {
            name: name.to_owned(),
            reason,
        })?;
        p.discontinuity = false;
        Ok(Prepared {
            chunk: Chunk {
                header,
                payload: body,
            },
            resumed,
        })
    }

    /// A stream that went idle is live again when media comes (after a
    /// discontinuity): returns its signed announcement. A stream its
    /// creator ended takes no media.
    fn resume(
        &self,
        name: &str,
        p: &mut Published,
    ) -> Result<Option<SignedAnnouncement>, NodeError> {
        match p.ended {
            Some(EndCause::Creator) => Err(NodeError::Ended {
                name: name.to_owned(),
            }),
            Some(EndCause::Idle) => {
                p.ended = None;
                p.discontinuity = true;
                p.announcement.started_at_ms = now_ms();
                info!(stream = %p.stream, "stream resumed");
                Ok(Some(self.sign(p)?))
            }
            None => Ok(None),
        }
    }

    /// Checks a part (LL-HLS) of the segment in progress and signs it.
    /// Part 0 reserves the segment's number (persisted first, as for a
    /// segment); later parts must follow in order. The segment itself
    /// comes last, through [`Publisher::segment`].
    pub async fn part(
        &self,
        name: &str,
        index: u16,
        duration_us: u32,
        independent: bool,
        discontinuity: bool,
        body: Bytes,
    ) -> Result<(Part, Option<SignedAnnouncement>), NodeError> {
        ts::validate_part(&body, independent || index == 0)?;
        let entry = self.entry(name).ok_or_else(|| NodeError::NotStarted {
            name: name.to_owned(),
        })?;
        let mut p = entry.lock().await;
        let expected = p.open.as_ref().map_or(0, |o| o.parts.len() as u16);
        // A new part 0 abandons a segment whose end never came (its
        // number is burned: peers drop its parts as newer ones come).
        if index != 0 && index != expected {
            return Err(NodeError::PartOutOfOrder {
                name: name.to_owned(),
                expected,
                got: index,
            });
        }
        let resumed = self.resume(name, &mut p)?;
        let invalid = |reason| NodeError::InvalidStream {
            name: name.to_owned(),
            reason,
        };
        if index == 0 {
            let seq = p.next_seq;
            let id = p.stream.to_string();
            self.store.update(&id, StreamRole::Published, |r| {
                r.next_seq = r.next_seq.max(seq + 1);
                r.updated_ms = now_ms();
            })?;
            p.next_seq = seq + 1;
            let discontinuity = std::mem::take(&mut p.discontinuity) || discontinuity;
            let epoch = p
                .announcement
                .offer
                .as_ref()
                .map(|o| paywall::epoch_at(now_ms(), o.epoch_secs));
            p.open = Some(OpenSegment {
                seq,
                parts: vec![],
                discontinuity,
                epoch,
            });
        }
        let secret = StreamSecret::derive(&self.key, &p.stream);
        let stream = p.stream.clone();
        let Some(open) = p.open.as_mut() else {
            return Err(NodeError::PartOutOfOrder {
                name: name.to_owned(),
                expected: 0,
                got: index,
            });
        };
        if open.parts.len() >= ts::MAX_PARTS
            || open.bytes() + body.len() > vilokanam_media::limits::MAX_SEGMENT_BYTES
        {
            return Err(NodeError::BadSegment(ts::TsError::InputTooLarge {
                len: open.bytes() + body.len(),
                limit: vilokanam_media::limits::MAX_SEGMENT_BYTES,
            }));
        }
        // A paid stream's part is sealed on its own with the segment's
        // epoch key (its CID is the ciphertext's).
        let wire = match open.epoch {
            Some(epoch) => Bytes::from(paywall::seal_part(
                &secret.epoch_key(&stream, epoch),
                &stream,
                open.seq,
                index,
                epoch,
                &body,
            )),
            None => body.clone(),
        };
        let header = PartHeader {
            stream,
            seq: open.seq,
            index,
            independent: independent || index == 0,
            duration_us,
            cid: ChunkCid::of(&wire),
            size: wire.len() as u32,
            published_at_ms: now_ms(),
            discontinuity: open.discontinuity,
            epoch: open.epoch,
        }
        .sign(&self.key)
        .map_err(invalid)?;
        open.parts.push((
            PartInfo {
                size: header.header.size,
                duration_us,
                independent: header.header.independent,
            },
            body,
            wire.clone(),
        ));
        p.last_activity = Instant::now();
        Ok((
            Part {
                header,
                payload: wire,
            },
            resumed,
        ))
    }

    /// Ends stream `name` (its creator says so); returns the signed end.
    pub async fn end(&self, name: &str) -> Result<SignedAnnouncement, NodeError> {
        let entry = self.entry(name).ok_or_else(|| NodeError::NotPublished {
            name: name.to_owned(),
        })?;
        let mut p = entry.lock().await;
        p.ended = Some(EndCause::Creator);
        self.sign(&p)
    }

    fn all(&self) -> Vec<Arc<tokio::sync::Mutex<Published>>> {
        self.streams
            .lock()
            .map(|m| m.values().cloned().collect())
            .unwrap_or_default()
    }

    /// The periodic re-announcements of the live streams.
    pub async fn live_announcements(&self) -> Vec<SignedAnnouncement> {
        let mut out = vec![];
        for e in self.all() {
            let p = e.lock().await;
            if p.ended.is_none() {
                if let Ok(a) = self.sign(&p) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// Ends the live streams that had no segment for `idle`; returns their
    /// signed ends.
    pub async fn end_idle(&self, now: Instant, idle: Duration) -> Vec<SignedAnnouncement> {
        let mut out = vec![];
        for e in self.all() {
            let mut p = e.lock().await;
            if p.ended.is_none() && now.duration_since(p.last_activity) >= idle {
                warn!(stream = %p.stream, idle_s = idle.as_secs(), "no segment for the idle timeout: ending the stream");
                p.ended = Some(EndCause::Idle);
                if let Ok(a) = self.sign(&p) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// Ends every live stream (shutdown); returns the signed ends.
    pub async fn end_all(&self) -> Vec<SignedAnnouncement> {
        let mut out = vec![];
        for e in self.all() {
            let mut p = e.lock().await;
            if p.ended.is_none() {
                p.ended = Some(EndCause::Creator);
                if let Ok(a) = self.sign(&p) {
                    out.push(a);
                }
            }
        }
        out
    }

    /// The key of `epoch` of `stream` if this node publishes it (its own
    /// playback, and the key server).
    pub fn epoch_key(&self, stream: &StreamId, epoch: u64) -> Option<EpochKey> {
        if stream.creator != self.key.verifying_key().to_bytes() {
            return None;
        }
        self.entry(&stream.name)?;
        Some(StreamSecret::derive(&self.key, stream).epoch_key(stream, epoch))
    }

    /// The offer and secret of a paid stream this node publishes.
    pub async fn paid_stream(&self, stream: &StreamId) -> Option<(Offer, StreamSecret)> {
        if stream.creator != self.key.verifying_key().to_bytes() {
            return None;
        }
        let e = self.entry(&stream.name)?;
        let offer = e.lock().await.announcement.offer.clone()?;
        Some((offer, StreamSecret::derive(&self.key, stream)))
    }

    /// The state of stream `name`, if published here.
    pub async fn state(&self, name: &str) -> Option<(u64, Option<EndCause>)> {
        let e = self.entry(name)?;
        let p = e.lock().await;
        Some((p.next_seq, p.ended))
    }
}
