//! Persistent state of a Vilokanam node.
//!
//! Everything that must outlive a restart lives under the node's data
//! directory:
//!
//! - `identity.key`: the node's ed25519 secret key (file mode 0600). The
//!   libp2p `PeerId` is derived from it and it signs every chunk and
//!   announcement the node creates.
//! - `db/` (sled), with one tree per kind of record:
//!   - `peers`: addresses of peers seen, to reconnect after a restart;
//!   - `streams`: the stream index (announcements heard, the next sequence
//!     number of streams this node publishes);
//!   - `blocks`: payloads by CID. Live chunks are kept in memory by the
//!     relay; the VOD recorder writes every chunk here by CID, so a
//!     recording is just the list of a stream's CIDs plus these blocks.
//!
//! Writes of blocks are verified (the bytes must hash to the CID), so a bug
//! or a hostile peer can never make a CID name the wrong bytes on disk.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Name of the identity key file inside the data directory.
pub const IDENTITY_FILE: &str = "identity.key";
/// Name of the chain account file (an sr25519 secret URI: seed phrase or
/// dev URI such as `//Alice`) inside the data directory.
pub const ACCOUNT_FILE: &str = "account.key";

/// Errors of the node's persistent storage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// Filesystem error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The identity file is malformed.
    #[error("identity key {path} is corrupt: {reason}")]
    CorruptIdentity {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A secret file (identity or account key) is readable by others.
    #[error("secret file {path} has mode {mode:o}; it must not be readable by group or others (chmod 600)")]
    InsecurePermissions {
        /// The path.
        path: PathBuf,
        /// Its mode.
        mode: u32,
    },
    /// The account file exists and overwriting was not asked for.
    #[error("an account is already stored in {0}; pass --force to replace it")]
    AccountExists(PathBuf),
    /// The database failed.
    #[error("database: {0}")]
    Db(#[from] sled::Error),
    /// A stored record could not be decoded.
    #[error("record {key:?} in tree {tree} is corrupt: {reason}")]
    CorruptRecord {
        /// Tree name.
        tree: &'static str,
        /// Key.
        key: String,
        /// Decoder error.
        reason: String,
    },
    /// A block's bytes do not hash to its CID digest.
    #[error("block does not match its sha2-256 digest {0}")]
    DigestMismatch(String),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Loads the node key from `dir/identity.key`, creating it (mode 0600) on
/// first start. Refuses a key file others can read.
pub fn load_or_create_identity(dir: &Path) -> Result<SigningKey, StorageError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(IDENTITY_FILE);
    if let Some(text) = read_secret(&path)? {
        let mut secret = [0u8; 32];
        hex::decode_to_slice(text.trim(), &mut secret).map_err(|e| {
            StorageError::CorruptIdentity {
                path: path.clone(),
                reason: format!("expected 64 hex characters: {e}"),
            }
        })?;
        return Ok(SigningKey::from_bytes(&secret));
    }
    let secret: [u8; 32] = rand::random();
    write_secret(&path, &hex::encode(secret), false)?;
    tracing::info!(path = %path.display(), "created new node identity");
    Ok(SigningKey::from_bytes(&secret))
}

/// The chain account's secret URI stored in `dir/account.key`, if any.
/// Refuses a file others can read.
pub fn load_account(dir: &Path) -> Result<Option<String>, StorageError> {
    Ok(read_secret(&dir.join(ACCOUNT_FILE))?.map(|s| s.trim().to_owned()))
}

/// Stores the chain account's secret URI in `dir/account.key` (mode 0600).
/// Replaces an existing one only with `overwrite`.
pub fn store_account(
    dir: &Path,
    secret_uri: &str,
    overwrite: bool,
) -> Result<PathBuf, StorageError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let path = dir.join(ACCOUNT_FILE);
    match write_secret(&path, secret_uri, overwrite) {
        Err(StorageError::Io { source, .. })
            if source.kind() == std::io::ErrorKind::AlreadyExists =>
        {
            Err(StorageError::AccountExists(path))
        }
        r => r.map(|()| path),
    }
}

/// Reads a secret file; `None` if it does not exist.
fn read_secret(path: &Path) -> Result<Option<String>, StorageError> {
    match fs::read_to_string(path) {
        Ok(text) => {
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = fs::metadata(path).map_err(io(path))?.permissions().mode() & 0o777;
                if mode & 0o077 != 0 {
                    return Err(StorageError::InsecurePermissions {
                        path: path.to_owned(),
                        mode,
                    });
                }
            }
            Ok(Some(text))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(path)(e)),
    }
}

/// Writes a secret file with mode 0600, durably: the text goes to a fresh
/// temp file in the same directory (created exclusively with mode 0600, so
/// no leftover or planted file or symlink is reused), which is then renamed
/// into place (over an old file only with `replace`, else failing with
/// `AlreadyExists`), and the directory is synced.
fn write_secret(path: &Path, text: &str, replace: bool) -> Result<(), StorageError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    writeln!(tmp, "{text}").map_err(io(tmp.path()))?;
    tmp.as_file().sync_all().map_err(io(path))?;
    let placed = if replace {
        tmp.persist(path)
    } else {
        tmp.persist_noclobber(path)
    };
    placed.map_err(|e| io(path)(e.error))?;
    #[cfg(unix)]
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(())
}

/// A peer this node has been connected to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnownPeer {
    /// Multiaddrs it was reached at, most recent first (at most 4).
    pub addrs: Vec<String>,
    /// Last connection time (unix ms).
    pub last_seen_ms: u64,
}

/// A stream in the index.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamRecord {
    /// The latest signed announcement, as encoded on the wire.
    pub announcement: Vec<u8>,
    /// Next sequence number to publish (streams this node creates).
    pub next_seq: u64,
    /// Last time the record changed (unix ms).
    pub updated_ms: u64,
}

/// The node's sled database.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    peers: sled::Tree,
    streams: sled::Tree,
    blocks: sled::Tree,
}

impl Store {
    /// Opens (or creates) the database at `dir/db`.
    pub fn open(dir: &Path) -> Result<Self, StorageError> {
        let db = sled::open(dir.join("db"))?;
        Ok(Store {
            peers: db.open_tree("peers")?,
            streams: db.open_tree("streams")?,
            blocks: db.open_tree("blocks")?,
            db,
        })
    }

    fn get<T: DeserializeOwned>(
        tree: &sled::Tree,
        name: &'static str,
        key: &str,
    ) -> Result<Option<T>, StorageError> {
        match tree.get(key.as_bytes())? {
            None => Ok(None),
            Some(v) => {
                postcard::from_bytes(&v)
                    .map(Some)
                    .map_err(|e| StorageError::CorruptRecord {
                        tree: name,
                        key: key.to_owned(),
                        reason: e.to_string(),
                    })
            }
        }
    }

    fn put<T: Serialize>(tree: &sled::Tree, key: &str, value: &T) -> Result<(), StorageError> {
        let bytes = postcard::to_stdvec(value).map_err(|e| StorageError::CorruptRecord {
            tree: "encode",
            key: key.to_owned(),
            reason: e.to_string(),
        })?;
        tree.insert(key.as_bytes(), bytes)?;
        Ok(())
    }

    /// Records that `peer` was reached at `addr`.
    pub fn remember_peer(&self, peer: &str, addr: &str, now_ms: u64) -> Result<(), StorageError> {
        let mut rec = Self::get::<KnownPeer>(&self.peers, "peers", peer)?.unwrap_or(KnownPeer {
            addrs: vec![],
            last_seen_ms: 0,
        });
        rec.addrs.retain(|a| a != addr);
        rec.addrs.insert(0, addr.to_owned());
        rec.addrs.truncate(4);
        rec.last_seen_ms = now_ms;
        Self::put(&self.peers, peer, &rec)
    }

    /// Known peers, most recently seen first (at most `limit`). Corrupt
    /// records are skipped with a warning rather than failing start-up.
    pub fn known_peers(&self, limit: usize) -> Result<Vec<(String, KnownPeer)>, StorageError> {
        let mut out = vec![];
        for item in self.peers.iter() {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            match postcard::from_bytes::<KnownPeer>(&v) {
                Ok(p) => out.push((key, p)),
                Err(e) => tracing::warn!(peer = %key, error = %e, "skipping corrupt peer record"),
            }
        }
        out.sort_by_key(|p| std::cmp::Reverse(p.1.last_seen_ms));
        out.truncate(limit);
        Ok(out)
    }

    /// The index record of a stream (by its textual id).
    pub fn stream(&self, id: &str) -> Result<Option<StreamRecord>, StorageError> {
        Self::get(&self.streams, "streams", id)
    }

    /// Stores the index record of a stream.
    pub fn put_stream(&self, id: &str, rec: &StreamRecord) -> Result<(), StorageError> {
        Self::put(&self.streams, id, rec)
    }

    /// Changes one stream's record in place (creating it if absent), so
    /// writers of different fields never overwrite each other.
    pub fn update_stream(
        &self,
        id: &str,
        f: impl FnOnce(&mut StreamRecord),
    ) -> Result<(), StorageError> {
        let mut rec = self.stream(id)?.unwrap_or_default();
        f(&mut rec);
        self.put_stream(id, &rec)
    }

    /// All stream records.
    pub fn streams(&self) -> Result<Vec<(String, StreamRecord)>, StorageError> {
        let mut out = vec![];
        for item in self.streams.iter() {
            let (k, v) = item?;
            let key = String::from_utf8_lossy(&k).into_owned();
            match postcard::from_bytes(&v) {
                Ok(r) => out.push((key, r)),
                Err(e) => {
                    tracing::warn!(stream = %key, error = %e, "skipping corrupt stream record")
                }
            }
        }
        Ok(out)
    }

    /// Stores a block under its sha2-256 digest, checking the bytes match.
    pub fn put_block(&self, sha256: &[u8; 32], bytes: &[u8]) -> Result<(), StorageError> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        if &digest != sha256 {
            return Err(StorageError::DigestMismatch(hex::encode(sha256)));
        }
        self.blocks.insert(sha256, bytes)?;
        Ok(())
    }

    /// A block by its sha2-256 digest.
    pub fn block(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.blocks.get(sha256)?.map(|v| v.to_vec()))
    }

    /// Flushes to disk (called on shutdown).
    pub fn flush(&self) -> Result<(), StorageError> {
        self.db.flush()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_is_created_once_with_mode_0600_and_reloaded() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create_identity(dir.path()).unwrap();
        let b = load_or_create_identity(dir.path()).unwrap();
        assert_eq!(a.to_bytes(), b.to_bytes());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.path().join(IDENTITY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn account_is_stored_0600_and_replaced_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_account(dir.path()).unwrap(), None);
        let path = store_account(dir.path(), "//Alice", false).unwrap();
        assert_eq!(
            load_account(dir.path()).unwrap().as_deref(),
            Some("//Alice")
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        assert!(matches!(
            store_account(dir.path(), "//Bob", false),
            Err(StorageError::AccountExists(_))
        ));
        assert_eq!(
            load_account(dir.path()).unwrap().as_deref(),
            Some("//Alice")
        );
        store_account(dir.path(), "//Bob", true).unwrap();
        assert_eq!(load_account(dir.path()).unwrap().as_deref(), Some("//Bob"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
            assert!(matches!(
                load_account(dir.path()),
                Err(StorageError::InsecurePermissions { .. })
            ));
        }
    }

    #[test]
    fn corrupt_or_exposed_identity_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create_identity(dir.path()).unwrap();
        let path = dir.path().join(IDENTITY_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                load_or_create_identity(dir.path()),
                Err(StorageError::InsecurePermissions { .. })
            ));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            load_or_create_identity(dir.path()),
            Err(StorageError::CorruptIdentity { .. })
        ));
    }

    #[test]
    fn peers_and_streams_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let s = Store::open(dir.path()).unwrap();
            s.remember_peer("p1", "/ip4/127.0.0.1/tcp/1", 10).unwrap();
            s.remember_peer("p2", "/ip4/127.0.0.1/tcp/2", 20).unwrap();
            s.remember_peer("p1", "/ip4/127.0.0.1/tcp/3", 30).unwrap();
            s.put_stream(
                "abc-live",
                &StreamRecord {
                    announcement: vec![1, 2, 3],
                    next_seq: 42,
                    updated_ms: 5,
                },
            )
            .unwrap();
            s.flush().unwrap();
        }
        let s = Store::open(dir.path()).unwrap();
        let peers = s.known_peers(10).unwrap();
        assert_eq!(peers[0].0, "p1");
        assert_eq!(
            peers[0].1.addrs,
            vec!["/ip4/127.0.0.1/tcp/3", "/ip4/127.0.0.1/tcp/1"]
        );
        assert_eq!(s.stream("abc-live").unwrap().unwrap().next_seq, 42);
        s.update_stream("abc-live", |r| r.updated_ms = 9).unwrap();
        let r = s.stream("abc-live").unwrap().unwrap();
        assert_eq!(
            (r.next_seq, r.announcement, r.updated_ms),
            (42, vec![1, 2, 3], 9),
            "other fields kept"
        );
        assert_eq!(s.streams().unwrap().len(), 1);
    }

    #[test]
    fn blocks_are_verified_before_storing() {
        let dir = tempfile::tempdir().unwrap();
        let s = Store::open(dir.path()).unwrap();
        let d: [u8; 32] = Sha256::digest(b"chunk").into();
        s.put_block(&d, b"chunk").unwrap();
        assert_eq!(s.block(&d).unwrap().unwrap(), b"chunk");
        assert!(matches!(
            s.put_block(&d, b"other"),
            Err(StorageError::DigestMismatch(_))
        ));
        assert_eq!(
            s.block(&d).unwrap().unwrap(),
            b"chunk",
            "a bad write does not corrupt the stored block"
        );
    }
}
