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
use vilokanam_swarm::wire::MAX_CHUNK_PAYLOAD;
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
#[derive(Clone, Debug)]
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
    /// When the last part was published (unix ms): a segment completed
    /// later from its parts keeps the program date its parts had.
    pub last_published_at_ms: u64,
}

impl OpenSegment {
    fn bytes(&self) -> usize {
        self.parts.iter().map(|(_, b, _)| b.len()).sum()
    }

    /// Bytes of the parts on the wire (the segment's payload size).
    fn wire_bytes(&self) -> usize {
        self.parts.iter().map(|(_, _, w)| w.len()).sum()
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

/// A started stream: what [`Publisher::start`] asks the caller to send.
pub struct Started {
    /// Its id.
    pub stream: StreamId,
    /// The signed announcement.
    pub announcement: SignedAnnouncement,
    /// The number its next chunk gets.
    pub next_seq: u64,
    /// A segment left open by the run before, completed from its parts:
    /// publish it before the announcement.
    pub closed: Option<Chunk>,
}

/// What [`Publisher::part`] asks the caller to do around the swarm.
pub struct PreparedPart {
    /// A segment left open (its end never came) completed with its parts:
    /// publish it before the part.
    pub closed: Option<Chunk>,
    /// The signed part to hand to the swarm.
    pub part: Part,
    /// The stream resumed after an idle end: announce it live again.
    pub resumed: Option<SignedAnnouncement>,
}

/// The end of a stream: a segment in progress completed with its parts
/// (publish it first), then the signed end.
pub struct Ending {
    /// The completed segment, if one was open.
    pub closed: Option<Chunk>,
    /// The signed end.
    pub announcement: SignedAnnouncement,
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

    /// Whether this node publishes `stream` (started since it runs).
    pub fn publishes(&self, stream: &StreamId) -> bool {
        stream.creator == self.key.verifying_key().to_bytes() && self.entry(&stream.name).is_some()
    }

    /// The creator key (signs VOD records).
    pub fn signing_key(&self) -> &SigningKey {
        &self.key
    }

    /// Whether stream `name` is published and live.
    pub async fn is_live(&self, name: &str) -> bool {
        match self.entry(name) {
            Some(p) => p.lock().await.ended.is_none(),
            None => false,
        }
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
    ) -> Result<Started, NodeError> {
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
        // A stream started again while a segment was open (its encoder
        // bridge restarted mid-segment): the segment is completed from
        // its parts first, so its number is no hole.
        let mut closed = None;
        let next_seq = match &existing {
            Some(p) => {
                let mut p = p.lock().await;
                closed = self.close_open(&mut p);
                p.next_seq.max(stored)
            }
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
        Ok(Started {
            stream,
            announcement: signed,
            next_seq,
            closed,
        })
    }

    fn sign(&self, p: &Published) -> Result<SignedAnnouncement, NodeError> {
        let mut a = p.announcement.clone();
        a.updated_at_ms = now_ms();
        // The last complete segment: a segment in progress (parts sent,
        // the segment not yet) is not announced.
        a.last_seq = p.open.as_ref().map_or(p.next_seq, |o| o.seq).checked_sub(1);
        a.ended = p.ended.is_some();
        a.sign(&self.key)
            .map_err(|reason| NodeError::InvalidStream {
                name: p.stream.name.clone(),
                reason,
            })
    }

    /// Checks a segment, reserves its sequence number (persisted first)
    /// and signs its chunk. The caller publishes the chunk; whatever
    /// happens then, the number is used up. A segment whose parts were
    /// published has its number already (reserved at part 0).
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
        // The open segment (if any) stays open if this one is refused.
        let open = p.open.clone();
        let chunk = self.seal_segment(&mut p, open, duration_us, discontinuity, body, None)?;
        p.open = None;
        Ok(Prepared { chunk, resumed })
    }

    /// Persists that `seq` is used (first: a crash after signing must
    /// never make the restarted stream sign a second chunk for `seq`).
    fn reserve(&self, p: &mut Published, seq: u64) -> Result<(), NodeError> {
        let id = p.stream.to_string();
        self.store.update(&id, StreamRole::Published, |r| {
            r.next_seq = r.next_seq.max(seq + 1);
            r.updated_ms = now_ms();
        })?;
        p.next_seq = p.next_seq.max(seq + 1);
        Ok(())
    }

    /// Signs the chunk of a segment: the open segment's number if its
    /// parts were published (listing them if `body` is exactly their
    /// bytes, so that peers holding them assemble it), else a new one.
    fn seal_segment(
        &self,
        p: &mut Published,
        open: Option<OpenSegment>,
        duration_us: u32,
        discontinuity: bool,
        body: Bytes,
        published_at_ms: Option<u64>,
    ) -> Result<Chunk, NodeError> {
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
        let published_at_ms = published_at_ms.unwrap_or_else(now_ms);
        // A paid stream's payload is encrypted with its epoch's key; the
        // CID and size are the ciphertext's, so relays verify it unread.
        // A segment made of parts is their ciphertexts in order (each part
        // sealed on its own), so peers assemble it from them.
        let (epoch, body) = match (&p.announcement.offer, made_of_parts) {
            (Some(_), Some(open)) => {
                let wire: Vec<u8> = open
                    .parts
                    .iter()
                    .flat_map(|(_, _, w)| w.iter().copied())
                    .collect();
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
            name: p.stream.name.clone(),
            reason,
        })?;
        self.reserve(p, seq)?;
        p.last_activity = Instant::now();
        p.discontinuity = false;
        Ok(Chunk {
            header,
            payload: body,
        })
    }

    /// Completes a segment whose end never came (the encoder stopped, or
    /// a new part 0 came) with the parts already published: they start at
    /// a keyframe, so they make a valid, shorter segment, and its number
    /// is not left as a hole viewers wait on.
    fn close_open(&self, p: &mut Published) -> Option<Chunk> {
        let open = p.open.take()?;
        let body: Vec<u8> = open
            .parts
            .iter()
            .flat_map(|(_, b, _)| b.iter().copied())
            .collect();
        let duration_us: u32 = open.parts.iter().map(|(i, _, _)| i.duration_us).sum();
        let seq = open.seq;
        let at = Some(open.last_published_at_ms);
        match self.seal_segment(p, Some(open), duration_us, false, Bytes::from(body), at) {
            Ok(chunk) => {
                info!(stream = %p.stream, seq, "closed a segment with the parts it had");
                Some(chunk)
            }
            Err(e) => {
                warn!(stream = %p.stream, seq, error = %e, "could not close a segment from its parts");
                None
            }
        }
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
    /// Part 0 starts a segment and takes the next number (persisted once
    /// the part is signed); later parts must follow in order. The segment
    /// itself comes last, through [`Publisher::segment`]. A part 0 that
    /// comes while a segment is still open completes that one first with
    /// the parts it had (returned to be published before the part).
    pub async fn part(
        &self,
        name: &str,
        q: &vilokanam_api::PartQuery,
        body: Bytes,
    ) -> Result<PreparedPart, NodeError> {
        let (index, duration_us, independent) = (q.index, q.duration_us, q.independent);
        ts::validate_part(&body, independent || index == 0)?;
        let entry = self.entry(name).ok_or_else(|| NodeError::NotStarted {
            name: name.to_owned(),
        })?;
        let mut p = entry.lock().await;
        let expected = p.open.as_ref().map_or(0, |o| o.parts.len() as u16);
        if index != 0 && index != expected {
            return Err(NodeError::PartOutOfOrder {
                name: name.to_owned(),
                expected,
                got: index,
            });
        }
        let resumed = self.resume(name, &mut p)?;
        // What the part belongs to: a new segment at part 0, else the
        // open one.
        let (seq, epoch, segment_discontinuity, before) = match (&p.open, index) {
            (Some(o), i) if i != 0 => (o.seq, o.epoch, o.discontinuity, o.wire_bytes()),
            _ => {
                // The open segment (if any) is closed first and keeps its
                // number; this one takes the next.
                let seq = p
                    .open
                    .as_ref()
                    .map_or(p.next_seq, |o| o.seq + 1)
                    .max(p.next_seq);
                let epoch = p
                    .announcement
                    .offer
                    .as_ref()
                    .map(|o| paywall::epoch_at(now_ms(), o.epoch_secs));
                (seq, epoch, p.discontinuity || q.discontinuity, 0)
            }
        };
        let stream = p.stream.clone();
        // A paid stream's part is sealed on its own with the segment's
        // epoch key (its CID is the ciphertext's).
        let wire = match epoch {
            Some(epoch) => Bytes::from(paywall::seal_part(
                &StreamSecret::derive(&self.key, &stream).epoch_key(&stream, epoch),
                &stream,
                seq,
                index,
                epoch,
                &body,
            )),
            None => body.clone(),
        };
        let parts_so_far = if index == 0 { 0 } else { usize::from(index) };
        // The segment the parts make must be one the wire and the media
        // layer take: bytes (plaintext and sealed) and duration.
        let (plain_before, us_before) = match (&p.open, index) {
            (Some(o), i) if i != 0 => (
                o.bytes(),
                o.parts
                    .iter()
                    .map(|(i, _, _)| u64::from(i.duration_us))
                    .sum::<u64>(),
            ),
            _ => (0, 0),
        };
        if parts_so_far >= ts::MAX_PARTS
            || before + wire.len() > MAX_CHUNK_PAYLOAD as usize
            || plain_before + body.len() > vilokanam_media::limits::MAX_SEGMENT_BYTES
        {
            return Err(NodeError::BadSegment(ts::TsError::InputTooLarge {
                len: plain_before + body.len(),
                limit: vilokanam_media::limits::MAX_SEGMENT_BYTES,
            }));
        }
        let max_us = vilokanam_media::limits::MAX_SEGMENT_DURATION.as_micros() as u64;
        if us_before + u64::from(duration_us) > max_us {
            return Err(NodeError::InvalidStream {
                name: name.to_owned(),
                reason: vilokanam_swarm::wire::WireError::Field {
                    field: "duration_us",
                    reason: format!("the segment's parts would last over {max_us} µs"),
                },
            });
        }
        let header = PartHeader {
            stream,
            seq,
            index,
            independent: independent || index == 0,
            duration_us,
            target_us: q.target_us.unwrap_or(duration_us).max(duration_us),
            cid: ChunkCid::of(&wire),
            size: wire.len() as u32,
            published_at_ms: now_ms(),
            discontinuity: segment_discontinuity,
            epoch,
        }
        .sign(&self.key)
        .map_err(|reason| NodeError::InvalidStream {
            name: name.to_owned(),
            reason,
        })?;
        // Signed: only now does anything change.
        let closed = if index == 0 {
            self.reserve(&mut p, seq)?;
            let closed = self.close_open(&mut p);
            p.discontinuity = false;
            p.open = Some(OpenSegment {
                seq,
                parts: vec![],
                discontinuity: segment_discontinuity,
                epoch,
                last_published_at_ms: 0,
            });
            closed
        } else {
            None
        };
        if let Some(open) = p.open.as_mut() {
            open.last_published_at_ms = header.header.published_at_ms;
            open.parts.push((
                PartInfo {
                    size: header.header.size,
                    duration_us,
                    independent: header.header.independent,
                },
                body,
                wire.clone(),
            ));
        }
        p.last_activity = Instant::now();
        Ok(PreparedPart {
            closed,
            part: Part {
                header,
                payload: wire,
            },
            resumed,
        })
    }

    /// Ends stream `name` (its creator says so): a segment in progress is
    /// completed with the parts it had.
    pub async fn end(&self, name: &str) -> Result<Ending, NodeError> {
        let entry = self.entry(name).ok_or_else(|| NodeError::NotPublished {
            name: name.to_owned(),
        })?;
        let mut p = entry.lock().await;
        p.ended = Some(EndCause::Creator);
        let closed = self.close_open(&mut p);
        Ok(Ending {
            closed,
            announcement: self.sign(&p)?,
        })
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

    /// Ends the live streams that had no media for `idle`; returns their
    /// ends.
    pub async fn end_idle(&self, now: Instant, idle: Duration) -> Vec<Ending> {
        let mut out = vec![];
        for e in self.all() {
            let mut p = e.lock().await;
            if p.ended.is_none() && now.duration_since(p.last_activity) >= idle {
                warn!(stream = %p.stream, idle_s = idle.as_secs(), "no media for the idle timeout: ending the stream");
                p.ended = Some(EndCause::Idle);
                let closed = self.close_open(&mut p);
                if let Ok(announcement) = self.sign(&p) {
                    out.push(Ending {
                        closed,
                        announcement,
                    });
                }
            }
        }
        out
    }

    /// Ends every live stream (shutdown); returns their ends.
    pub async fn end_all(&self) -> Vec<Ending> {
        let mut out = vec![];
        for e in self.all() {
            let mut p = e.lock().await;
            if p.ended.is_none() {
                p.ended = Some(EndCause::Creator);
                let closed = self.close_open(&mut p);
                if let Ok(announcement) = self.sign(&p) {
                    out.push(Ending {
                        closed,
                        announcement,
                    });
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
