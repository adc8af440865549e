//! Errors of the node's persistent storage.

use std::path::{Path, PathBuf};

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
    /// A key file is malformed.
    #[error("key file {path} is corrupt: {reason}")]
    CorruptKey {
        /// The path.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A secret file (a key or the account) is readable by others.
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
    /// Another process (or a handle this process has not dropped) holds
    /// the database's lock: two nodes cannot share a data directory.
    #[error(
        "database {0} is in use by another vilokanam process (each node needs its own --data-dir)"
    )]
    InUse(PathBuf),
    /// A write's group flush was dropped before it ran (the runtime is
    /// shutting down): the write is not known to be on disk.
    #[error("the flush of tree {0} was dropped before it ran: not known to be on disk")]
    NotFlushed(&'static str),
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
    /// Recording a chunk would take the recorded bytes past the quota.
    #[error("recording quota exceeded: {used} of {quota} bytes used, {needed} more needed (raise record_quota_mib or remove VODs)")]
    QuotaExceeded {
        /// The quota.
        quota: u64,
        /// Bytes used.
        used: u64,
        /// Bytes the write needed.
        needed: u64,
    },
    /// A UnixFS block or DAG is invalid.
    #[error(transparent)]
    Unixfs(#[from] crate::unixfs::UnixfsError),
    /// A bounded tree is full.
    #[error("store full: {0}")]
    Full(String),
    /// A block's bytes do not hash to its CID digest.
    #[error("block does not match its sha2-256 digest {0}")]
    DigestMismatch(String),
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io {
        path: path.to_owned(),
        source,
    }
}
