//! The `chat` tree: this node's chat counters and the moderation actions
//! in force in the chats it took part in.
//!
//! - `seq/<stream>` → u64 (big-endian): the last counter this node signed a
//!   message of that chat with. Peers show a sender's messages in counter
//!   order and drop a counter they saw, so it must never go back: it is
//!   flushed before the message is sent.
//! - `act/<stream>/<subject>` → issued ms (u64 big-endian) then the signed
//!   action's wire bytes: the newest action per subject (a ban, a
//!   moderator, ...), so that bans survive a restart of every node. At most
//!   [`MAX_ACTIONS_PER_STREAM`] per chat (the oldest dropped) and
//!   [`MAX_ACTIONS`] in all (more are not kept, and logged).
//!
//! Messages themselves are not stored: a node that joins (or restarts)
//! asks its peers for the recent history.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use crate::StorageError;

/// Most actions kept per chat.
pub const MAX_ACTIONS_PER_STREAM: usize = 4096;
/// Most actions kept in all.
pub const MAX_ACTIONS: usize = 50_000;

/// The chat tree.
#[derive(Clone)]
pub struct ChatStore {
    pub(crate) tree: sled::Tree,
    pub(crate) actions: Arc<AtomicUsize>,
    /// One action write at a time: a ban and the unban right after it are
    /// compared and written in order, never interleaved.
    writing: Arc<std::sync::Mutex<()>>,
}

fn seq_key(stream: &str) -> Vec<u8> {
    [b"seq/".as_slice(), stream.as_bytes()].concat()
}

fn act_prefix(stream: &str) -> Vec<u8> {
    [b"act/".as_slice(), stream.as_bytes(), b"/"].concat()
}

impl ChatStore {
    pub(crate) fn open(tree: sled::Tree) -> Self {
        let n = tree.scan_prefix(b"act/").count();
        ChatStore {
            tree,
            actions: Arc::new(AtomicUsize::new(n)),
            writing: Arc::default(),
        }
    }

    /// The next counter for this node's message in `stream`'s chat, on disk
    /// before it is returned (blocking: call off the async workers).
    pub fn next_seq(&self, stream: &str) -> Result<u64, StorageError> {
        let key = seq_key(stream);
        let new = self.tree.update_and_fetch(&key, |old| {
            let last = old
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            Some(last.saturating_add(1).to_be_bytes().to_vec())
        })?;
        self.tree.flush()?;
        let bytes = new.as_deref().and_then(|b| <[u8; 8]>::try_from(b).ok());
        bytes
            .map(u64::from_be_bytes)
            .ok_or_else(|| StorageError::CorruptRecord {
                tree: "chat",
                key: String::from_utf8_lossy(&key).into_owned(),
                reason: "not an 8-byte counter".into(),
            })
    }

    /// Gives back `seq` when the message it was taken for was not sent
    /// (refused by the chat's rules): the counter goes back one if `seq` is
    /// still the last taken, so that peers see no gap (a gap makes them
    /// hold the sender's next message for a moment).
    pub fn release_seq(&self, stream: &str, seq: u64) -> Result<(), StorageError> {
        let key = seq_key(stream);
        let prev = if seq > 1 {
            Some((seq - 1).to_be_bytes().to_vec())
        } else {
            None
        };
        let _ = self
            .tree
            .compare_and_swap(&key, Some(seq.to_be_bytes().to_vec()), prev)?;
        self.tree.flush()?;
        Ok(())
    }

    /// Keeps the newest action on `subject` in `stream`'s chat (an older
    /// one than held is ignored; of two issued in the same millisecond the
    /// one whose last 64 bytes, its signature, are greater, as the chat's
    /// core decides). Returns whether it was kept.
    pub fn keep_action(
        &self,
        stream: &str,
        subject: &[u8],
        issued_ms: u64,
        bytes: &[u8],
    ) -> Result<bool, StorageError> {
        let _one = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        let prefix = act_prefix(stream);
        let key = [prefix.as_slice(), subject].concat();
        let held = self.tree.get(&key)?;
        if let Some(h) = &held {
            let at = h
                .get(..8)
                .and_then(|b| <[u8; 8]>::try_from(b).ok())
                .map_or(0, u64::from_be_bytes);
            let sig = |b: &[u8]| b[b.len().saturating_sub(64)..].to_vec();
            if at > issued_ms || (at == issued_ms && sig(&h[8..]) >= sig(bytes)) {
                return Ok(false);
            }
        } else if self.actions.load(Ordering::Relaxed) >= MAX_ACTIONS {
            tracing::warn!(
                stream,
                "the chat tree holds {MAX_ACTIONS} actions: not keeping more"
            );
            return Ok(false);
        }
        let value = [issued_ms.to_be_bytes().as_slice(), bytes].concat();
        if self.tree.insert(&key, value)?.is_none() {
            self.actions.fetch_add(1, Ordering::Relaxed);
            let held: Vec<(sled::IVec, u64)> = self
                .tree
                .scan_prefix(&prefix)
                .filter_map(Result::ok)
                .map(|(k, v)| {
                    let at = v
                        .get(..8)
                        .and_then(|b| <[u8; 8]>::try_from(b).ok())
                        .map_or(0, u64::from_be_bytes);
                    (k, at)
                })
                .collect();
            if held.len() > MAX_ACTIONS_PER_STREAM {
                let mut held = held;
                held.sort_by_key(|(_, at)| *at);
                for (k, _) in held.iter().take(held.len() - MAX_ACTIONS_PER_STREAM) {
                    if self.tree.remove(k)?.is_some() {
                        self.actions.fetch_sub(1, Ordering::Relaxed);
                    }
                }
            }
        }
        Ok(true)
    }

    /// The actions kept for `stream`'s chat (wire bytes), oldest first.
    pub fn actions(&self, stream: &str) -> Result<Vec<Vec<u8>>, StorageError> {
        let mut out = Vec::new();
        for r in self.tree.scan_prefix(act_prefix(stream)) {
            let (_, v) = r?;
            if v.len() > 8 {
                let at = v
                    .get(..8)
                    .and_then(|b| <[u8; 8]>::try_from(b).ok())
                    .map_or(0, u64::from_be_bytes);
                out.push((at, v[8..].to_vec()));
            }
        }
        out.sort_by_key(|(at, _)| *at);
        Ok(out.into_iter().map(|(_, v)| v).collect())
    }

    /// Actions kept in all.
    pub fn action_count(&self) -> usize {
        self.actions.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, crate::Store) {
        let dir = tempfile::tempdir().unwrap();
        let s = crate::Store::open(dir.path()).unwrap();
        (dir, s)
    }

    #[test]
    fn counters_never_go_back_and_survive_a_restart() {
        let (dir, s) = store();
        assert_eq!(s.chat.next_seq("a").unwrap(), 1);
        assert_eq!(s.chat.next_seq("a").unwrap(), 2);
        assert_eq!(s.chat.next_seq("b").unwrap(), 1);
        drop(s);
        let s = crate::Store::open(dir.path()).unwrap();
        assert_eq!(s.chat.next_seq("a").unwrap(), 3);
        // A counter given back is taken again; an older one is not.
        s.chat.release_seq("a", 3).unwrap();
        assert_eq!(s.chat.next_seq("a").unwrap(), 3);
        s.chat.release_seq("a", 2).unwrap();
        assert_eq!(s.chat.next_seq("a").unwrap(), 4);
        s.chat.release_seq("b", 1).unwrap();
        assert_eq!(s.chat.next_seq("b").unwrap(), 1);
    }

    #[test]
    fn the_newest_action_per_subject_is_kept_and_the_count_is_bounded() {
        let (dir, s) = store();
        assert!(s.chat.keep_action("a", b"ban/1", 10, b"ten").unwrap());
        assert!(!s.chat.keep_action("a", b"ban/1", 5, b"five").unwrap());
        assert!(s.chat.keep_action("a", b"ban/1", 12, b"twelve").unwrap());
        // The same millisecond: the greater signature (last bytes) wins,
        // whatever the order they come in.
        assert!(s.chat.keep_action("a", b"ban/1", 12, b"twelvf").unwrap());
        assert!(!s.chat.keep_action("a", b"ban/1", 12, b"twelve").unwrap());
        assert!(!s.chat.keep_action("a", b"ban/1", 12, b"twelvf").unwrap());
        assert!(s.chat.keep_action("a", b"slow", 11, b"slow").unwrap());
        assert_eq!(
            s.chat.actions("a").unwrap(),
            vec![b"slow".to_vec(), b"twelvf".to_vec()]
        );
        assert!(s.chat.actions("ab").unwrap().is_empty());
        assert_eq!(s.chat.action_count(), 2);
        for i in 0..(MAX_ACTIONS_PER_STREAM as u64 + 5) {
            s.chat
                .keep_action("b", format!("del/{i}").as_bytes(), 100 + i, b"d")
                .unwrap();
        }
        assert_eq!(s.chat.actions("b").unwrap().len(), MAX_ACTIONS_PER_STREAM);
        assert_eq!(s.chat.action_count(), 2 + MAX_ACTIONS_PER_STREAM);
        drop(s);
        let s = crate::Store::open(dir.path()).unwrap();
        assert_eq!(s.chat.action_count(), 2 + MAX_ACTIONS_PER_STREAM);
    }
}
