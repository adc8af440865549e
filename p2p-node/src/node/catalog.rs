//! The catalog of streams this node knows: what their creators last
//! announced and when it was heard.
//!
//! Streams this node publishes or watches are *local*: kept until the user
//! lets go of them, and persisted in the store. Every other stream is
//! *heard*: kept in an LRU of at most `max_known_streams`, least recently
//! announced first out, in memory only. So a flood of announcements from
//! fresh keys costs at most the cap, and never a byte of disk.

use std::collections::HashMap;
use std::num::NonZeroUsize;
use std::time::Duration;

use lru::LruCache;
use tokio::time::Instant;
use vilokanam_api::StreamState;
use vilokanam_swarm::{SignedAnnouncement, StreamId};

/// What an announcement changed for a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// First heard of.
    New,
    /// Its creator ended it.
    Ended,
    /// Its creator started it again after an end (or a restart).
    Restarted,
    /// A periodic repeat.
    Repeat,
    /// Older than what is known: ignored.
    Outdated,
}

/// A known stream.
#[derive(Clone, Debug, Default)]
pub struct Entry {
    /// The latest announcement.
    pub announcement: Option<SignedAnnouncement>,
    /// When it was heard (this process's clock).
    pub heard_at: Option<Instant>,
}

impl Entry {
    /// Live, quiet (not heard for a while) or ended.
    pub fn state(&self, now: Instant, stale_after: Duration) -> StreamState {
        match (&self.announcement, self.heard_at) {
            (Some(a), _) if a.announcement.ended => StreamState::Ended,
            (Some(_), Some(t)) if now.duration_since(t) < stale_after => StreamState::Live,
            _ => StreamState::Quiet,
        }
    }
}

/// The catalog.
pub struct Catalog {
    local: HashMap<StreamId, Entry>,
    heard: LruCache<StreamId, Entry>,
}

impl Catalog {
    /// An empty catalog keeping at most `max_heard` streams of others.
    pub fn new(max_heard: usize) -> Self {
        Catalog {
            local: HashMap::new(),
            heard: LruCache::new(NonZeroUsize::new(max_heard.max(1)).unwrap_or(NonZeroUsize::MIN)),
        }
    }

    /// Known streams.
    pub fn len(&self) -> usize {
        self.local.len() + self.heard.len()
    }

    /// Whether nothing is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes `id` local (published or watched): never evicted.
    pub fn pin(&mut self, id: &StreamId) {
        if self.local.contains_key(id) {
            return;
        }
        let entry = self.heard.pop(id).unwrap_or_default();
        self.local.insert(id.clone(), entry);
    }

    /// Lets go of a local stream: it becomes an ordinary heard stream.
    pub fn unpin(&mut self, id: &StreamId) {
        if let Some(entry) = self.local.remove(id) {
            if entry.announcement.is_some() {
                self.heard.put(id.clone(), entry);
            }
        }
    }

    /// Restores a local stream from the store (heard time unknown: quiet
    /// until announced again).
    pub fn restore(&mut self, id: StreamId, announcement: Option<SignedAnnouncement>) {
        self.local.insert(
            id,
            Entry {
                announcement,
                heard_at: None,
            },
        );
    }

    /// Records an announcement (already verified by the swarm).
    pub fn on_announcement(&mut self, now: Instant, a: SignedAnnouncement) -> Change {
        let id = a.announcement.stream.clone();
        let entry = match self.local.get_mut(&id) {
            Some(e) => e,
            None => {
                if !self.heard.contains(&id) {
                    self.heard.put(id.clone(), Entry::default());
                }
                match self.heard.get_mut(&id) {
                    Some(e) => e,
                    None => return Change::Outdated,
                }
            }
        };
        let change = match &entry.announcement {
            None => Change::New,
            Some(old) if old.announcement.updated_at_ms > a.announcement.updated_at_ms => {
                return Change::Outdated
            }
            Some(_) if a.announcement.ended => Change::Ended,
            Some(old)
                if old.announcement.ended
                    || old.announcement.started_at_ms < a.announcement.started_at_ms =>
            {
                Change::Restarted
            }
            Some(_) => Change::Repeat,
        };
        entry.announcement = Some(a);
        entry.heard_at = Some(now);
        change
    }

    /// One stream.
    pub fn get(&self, id: &StreamId) -> Option<&Entry> {
        self.local.get(id).or_else(|| self.heard.peek(id))
    }

    /// Every known stream.
    pub fn all(&self) -> impl Iterator<Item = (&StreamId, &Entry)> {
        self.local.iter().chain(self.heard.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ed25519_dalek::SigningKey;
    use vilokanam_swarm::Announcement;

    fn ann(key: u8, name: &str, started: u64, updated: u64, ended: bool) -> SignedAnnouncement {
        let key = SigningKey::from_bytes(&[key; 32]);
        Announcement {
            stream: StreamId::new(key.verifying_key().to_bytes(), name).unwrap(),
            title: "t".into(),
            tags: vec![],
            codec: "mpegts".into(),
            started_at_ms: started,
            updated_at_ms: updated,
            last_seq: None,
            ended,
            offer: None,
        }
        .sign(&key)
        .unwrap()
    }

    #[test]
    fn heard_streams_are_bounded_and_local_ones_are_kept() {
        let now = Instant::now();
        let mut c = Catalog::new(10);
        let mine = ann(1, "mine", 1, 1, false);
        c.pin(&mine.announcement.stream);
        c.on_announcement(now, mine.clone());
        for i in 0..1000u32 {
            c.on_announcement(now, ann((i % 250) as u8 + 2, &format!("s{i}"), 1, 1, false));
            assert!(c.len() <= 11);
        }
        assert!(
            c.get(&mine.announcement.stream).is_some(),
            "local stream kept"
        );
    }

    #[test]
    fn changes_are_classified() {
        let now = Instant::now();
        let mut c = Catalog::new(10);
        assert_eq!(
            c.on_announcement(now, ann(1, "s", 1, 10, false)),
            Change::New
        );
        assert_eq!(
            c.on_announcement(now, ann(1, "s", 1, 20, false)),
            Change::Repeat
        );
        assert_eq!(
            c.on_announcement(now, ann(1, "s", 1, 5, false)),
            Change::Outdated
        );
        assert_eq!(
            c.on_announcement(now, ann(1, "s", 1, 30, true)),
            Change::Ended
        );
        assert_eq!(
            c.on_announcement(now, ann(1, "s", 40, 40, false)),
            Change::Restarted
        );
        let e = c
            .get(&ann(1, "s", 1, 1, false).announcement.stream)
            .unwrap();
        assert_eq!(e.state(now, Duration::from_secs(20)), StreamState::Live);
        assert_eq!(
            e.state(now + Duration::from_secs(21), Duration::from_secs(20)),
            StreamState::Quiet
        );
    }
}
