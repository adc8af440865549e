//! Search: the streams and VODs this node has heard of, by title, tag and
//! creator name (`storage::search`, a tantivy index in memory), ranked
//! live first, then followed creators, then by relevance.
//!
//! The index is fed from what the node already holds: every announcement
//! (streams), every VOD heard or built here, every profile in the record
//! store (names). A task commits it every [`COMMIT_EVERY`] when something
//! changed, so a stream is findable within that of its announcement.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;
use vilokanam_api::{SearchHitInfo, SearchResults};
use vilokanam_storage::search::{Doc, DocKind, SearchQuery};
use vilokanam_storage::VodRecord;
use vilokanam_swarm::{SignedAnnouncement, StreamId};

use super::{lock, Inner, NodeError, NodeHandle};

/// How often the index is committed (when something changed).
pub const COMMIT_EVERY: Duration = Duration::from_millis(300);

pub(crate) fn stream_doc(a: &SignedAnnouncement) -> Doc {
    let an = &a.announcement;
    Doc {
        kind: DocKind::Stream,
        id: an.stream.to_string(),
        creator: hex::encode(an.stream.creator),
        title: an.title.clone(),
        tags: an.tags.clone(),
        at_ms: an.started_at_ms,
    }
}

pub(crate) fn vod_doc(r: &VodRecord) -> Doc {
    Doc {
        kind: DocKind::Vod,
        id: r.root.clone(),
        creator: r.creator.clone(),
        title: r.title.clone(),
        tags: vec![],
        at_ms: r.created_ms,
    }
}

pub(crate) fn index(inner: &Inner, doc: Doc) {
    if let Err(e) = inner.search.upsert(doc) {
        warn!(error = %e, "indexing failed");
    }
}

/// Indexes what the node holds at start and commits every
/// [`COMMIT_EVERY`] until the node stops.
pub(crate) fn spawn_committer(inner: &Arc<Inner>) -> tokio::task::JoinHandle<()> {
    let weak = Arc::downgrade(inner);
    let mut stop = inner.stop.subscribe();
    tokio::spawn(async move {
        if let Some(inner) = weak.upgrade() {
            let store = inner.store.clone();
            let vods = tokio::task::spawn_blocking(move || {
                let mut v = store.vods.all().unwrap_or_default();
                v.extend(store.heard_vods.all().unwrap_or_default());
                v
            })
            .await
            .unwrap_or_default();
            for r in &vods {
                index(&inner, vod_doc(r));
            }
            let streams: Vec<SignedAnnouncement> = lock(&inner.catalog)
                .all()
                .filter_map(|(_, e)| e.announcement.clone())
                .collect();
            for a in &streams {
                index(&inner, stream_doc(a));
            }
        }
        let mut tick = tokio::time::interval(COMMIT_EVERY);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = stop.changed() => return,
            }
            let Some(inner) = weak.upgrade() else { return };
            let search = inner.search.clone();
            drop(inner);
            match tokio::task::spawn_blocking(move || search.commit()).await {
                Ok(Err(e)) => warn!(error = %e, "committing the search index failed"),
                Err(e) => warn!(error = %e, "the search commit task failed"),
                Ok(Ok(_)) => {}
            }
        }
    })
}

impl NodeHandle {
    /// Searches the streams and VODs heard of: `text` in titles, tags and
    /// creator names, `tag` exactly; live streams first, then followed
    /// creators, then relevance. A 64-digit hex key as the text also
    /// resolves that creator's profile (DHT).
    pub async fn search(
        &self,
        text: Option<String>,
        tag: Option<String>,
        limit: usize,
    ) -> Result<SearchResults, NodeError> {
        let t0 = Instant::now();
        let creator = match text.as_deref().map(str::trim) {
            Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => {
                self.profile_of(&t.to_ascii_lowercase()).await.ok()
            }
            _ => None,
        };
        let q = SearchQuery {
            text,
            tag,
            limit: limit.clamp(1, vilokanam_storage::search::MAX_HITS),
        };
        let search = self.inner.search.clone();
        // Tantivy's search is CPU work: off the async workers.
        let hits = tokio::task::spawn_blocking(move || search.search(&q))
            .await
            .map_err(|e| NodeError::InvalidSocial(format!("search task failed: {e}")))?
            .map_err(|e| NodeError::InvalidSocial(e.to_string()))?;
        let followed = self.followed_creators();
        let now = tokio::time::Instant::now();
        let stale = self.inner.config.announce_interval() * 4;
        let catalog = lock(&self.inner.catalog);
        let mut out: Vec<SearchHitInfo> = hits
            .into_iter()
            .map(|h| {
                let live = h.doc.kind == DocKind::Stream
                    && h.doc
                        .id
                        .parse::<StreamId>()
                        .ok()
                        .and_then(|id| catalog.get(&id).map(|e| e.state(now, stale)))
                        == Some(vilokanam_api::StreamState::Live);
                let followed = hex::decode(&h.doc.creator)
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .is_some_and(|k| followed.contains(&k));
                SearchHitInfo {
                    kind: match h.doc.kind {
                        DocKind::Stream => "stream".into(),
                        DocKind::Vod => "vod".into(),
                    },
                    id: h.doc.id,
                    creator: h.doc.creator,
                    name: h.name,
                    title: h.doc.title,
                    tags: h.doc.tags,
                    live,
                    followed,
                    score: h.score,
                }
            })
            .collect();
        drop(catalog);
        out.sort_by(|a, b| {
            (b.live, b.followed)
                .cmp(&(a.live, a.followed))
                .then(b.score.total_cmp(&a.score))
        });
        Ok(SearchResults {
            hits: out,
            indexed: self.inner.search.len(),
            took_us: t0.elapsed().as_micros() as u64,
            creator,
        })
    }
}
