//! The node's keys, one file per role, each mode 0600 in the data dir:
//!
//! | file | role | what it signs or proves |
//! |---|---|---|
//! | `identity.key` | transport identity | the libp2p `PeerId`, noise handshakes, gossipsub message signatures |
//! | `creator.key` | creator key | stream ids (`<creator key>-<name>`), chunk headers, announcements, later profiles |
//! | `voucher.key` | voucher key | off-chain payment vouchers (the key a payment channel names) |
//! | `account.key` | chain account (sr25519 secret URI) | on-chain transactions (see `vilokanam account`) |
//!
//! Separate roles mean that a stream's and a profile's identity survive a
//! transport key change, and that one leaked file does not give away
//! everything: a leaked transport key lets an attacker impersonate the node
//! on the network but not sign chunks or spend vouchers.
//!
//! **Migration.** Data dirs made before the split have only `identity.key`,
//! which named the node's streams. On first start, [`load_or_create`]
//! copies it to `creator.key` (so stream ids do not change) and creates a
//! fresh `voucher.key`; channels opened earlier named the old key and can
//! only be closed (after expiry) for a refund. To separate the transport
//! key from the creator key afterwards, stop the node and delete
//! `identity.key`: a new one (a new `PeerId`) is made at the next start and
//! streams keep their ids.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::SigningKey;

use crate::error::{io, StorageError};

/// The transport identity's file.
pub const IDENTITY_FILE: &str = "identity.key";
/// The creator key's file.
pub const CREATOR_FILE: &str = "creator.key";
/// The voucher key's file.
pub const VOUCHER_FILE: &str = "voucher.key";
/// The chain account's file (an sr25519 secret URI: seed phrase or dev URI
/// such as `//Alice`).
pub const ACCOUNT_FILE: &str = "account.key";

/// The node's ed25519 keys by role.
#[derive(Clone)]
pub struct NodeKeys {
    /// Transport identity (libp2p).
    pub transport: SigningKey,
    /// Creator key (streams, chunks, announcements).
    pub creator: SigningKey,
    /// Voucher key (payments).
    pub voucher: SigningKey,
    /// This start migrated an old single-key data dir.
    pub migrated: bool,
}

impl std::fmt::Debug for NodeKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKeys")
            .field(
                "creator",
                &hex::encode(self.creator.verifying_key().to_bytes()),
            )
            .field(
                "voucher",
                &hex::encode(self.voucher.verifying_key().to_bytes()),
            )
            .finish_non_exhaustive()
    }
}

/// Loads the node's keys from `dir`, creating missing ones (mode 0600) and
/// migrating a data dir that has only the old single `identity.key`.
/// Refuses key files others can read.
pub fn load_or_create(dir: &Path) -> Result<NodeKeys, StorageError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let old = load_key(&dir.join(IDENTITY_FILE))?;
    let mut migrated = false;
    let creator = match (load_key(&dir.join(CREATOR_FILE))?, &old) {
        (Some(k), _) => k,
        (None, Some(identity)) => {
            // Streams were named by the old identity key: keep their ids.
            store_key(&dir.join(CREATOR_FILE), identity)?;
            migrated = true;
            tracing::info!(dir = %dir.display(), "migrated identity.key: copied to creator.key (stream ids unchanged)");
            identity.clone()
        }
        (None, None) => create_key(&dir.join(CREATOR_FILE))?,
    };
    let transport = match old {
        Some(k) => k,
        None => create_key(&dir.join(IDENTITY_FILE))?,
    };
    let voucher = match load_key(&dir.join(VOUCHER_FILE))? {
        Some(k) => k,
        None => create_key(&dir.join(VOUCHER_FILE))?,
    };
    Ok(NodeKeys {
        transport,
        creator,
        voucher,
        migrated,
    })
}

fn load_key(path: &Path) -> Result<Option<SigningKey>, StorageError> {
    let Some(text) = read_secret(path)? else {
        return Ok(None);
    };
    let mut secret = [0u8; 32];
    hex::decode_to_slice(text.trim(), &mut secret).map_err(|e| StorageError::CorruptKey {
        path: path.to_owned(),
        reason: format!("expected 64 hex characters: {e}"),
    })?;
    Ok(Some(SigningKey::from_bytes(&secret)))
}

fn store_key(path: &Path, key: &SigningKey) -> Result<(), StorageError> {
    write_secret(path, &hex::encode(key.to_bytes()), false)
}

fn create_key(path: &Path) -> Result<SigningKey, StorageError> {
    let key = SigningKey::from_bytes(&rand::random());
    store_key(path, &key)?;
    tracing::info!(path = %path.display(), "created key");
    Ok(key)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn fresh_dir_gets_three_distinct_keys_once() {
        let dir = tempfile::tempdir().unwrap();
        let a = load_or_create(dir.path()).unwrap();
        let b = load_or_create(dir.path()).unwrap();
        assert!(!a.migrated);
        for (x, y) in [
            (&a.transport, &b.transport),
            (&a.creator, &b.creator),
            (&a.voucher, &b.voucher),
        ] {
            assert_eq!(x.to_bytes(), y.to_bytes(), "reloaded, not recreated");
        }
        assert_ne!(a.transport.to_bytes(), a.creator.to_bytes());
        assert_ne!(a.creator.to_bytes(), a.voucher.to_bytes());
        for f in [IDENTITY_FILE, CREATOR_FILE, VOUCHER_FILE] {
            assert_eq!(mode(&dir.path().join(f)), 0o600, "{f}");
        }
    }

    #[test]
    fn old_single_key_dir_keeps_its_stream_identity() {
        let dir = tempfile::tempdir().unwrap();
        let old = SigningKey::from_bytes(&[7; 32]);
        store_key(&dir.path().join(IDENTITY_FILE), &old).unwrap();
        let k = load_or_create(dir.path()).unwrap();
        assert!(k.migrated);
        assert_eq!(k.creator.to_bytes(), old.to_bytes(), "stream ids unchanged");
        assert_eq!(k.transport.to_bytes(), old.to_bytes(), "PeerId unchanged");
        assert_ne!(k.voucher.to_bytes(), old.to_bytes(), "a fresh voucher key");
        assert!(!load_or_create(dir.path()).unwrap().migrated, "only once");
        // Rotating the transport key afterwards keeps the creator key.
        fs::remove_file(dir.path().join(IDENTITY_FILE)).unwrap();
        let r = load_or_create(dir.path()).unwrap();
        assert_eq!(r.creator.to_bytes(), old.to_bytes());
        assert_ne!(r.transport.to_bytes(), old.to_bytes());
    }

    #[test]
    fn corrupt_or_exposed_key_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        load_or_create(dir.path()).unwrap();
        let path = dir.path().join(CREATOR_FILE);
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(
                load_or_create(dir.path()),
                Err(StorageError::InsecurePermissions { .. })
            ));
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        }
        fs::write(&path, "not hex").unwrap();
        assert!(matches!(
            load_or_create(dir.path()),
            Err(StorageError::CorruptKey { .. })
        ));
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
        assert_eq!(mode(&path), 0o600);
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
        {
            use std::os::unix::fs::PermissionsExt;
            fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
            assert!(matches!(
                load_account(dir.path()),
                Err(StorageError::InsecurePermissions { .. })
            ));
        }
    }
}
