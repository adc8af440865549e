//! The `blocks` tree: payloads by the sha2-256 digest of their CID. Writes
//! are verified (the bytes must hash to the digest), so a bug or a hostile
//! peer can never make a CID name the wrong bytes on disk. The VOD recorder
//! writes every chunk here, so a recording is a stream's list of CIDs plus
//! these blocks.

use sha2::{Digest, Sha256};

use crate::StorageError;

/// The blocks tree.
#[derive(Clone)]
pub struct Blocks {
    pub(crate) tree: sled::Tree,
}

impl Blocks {
    /// Stores a block under its sha2-256 digest, checking the bytes match.
    pub fn put(&self, sha256: &[u8; 32], bytes: &[u8]) -> Result<(), StorageError> {
        let digest: [u8; 32] = Sha256::digest(bytes).into();
        if &digest != sha256 {
            return Err(StorageError::DigestMismatch(hex::encode(sha256)));
        }
        self.tree.insert(sha256, bytes)?;
        Ok(())
    }

    /// A block by its sha2-256 digest.
    pub fn get(&self, sha256: &[u8; 32]) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self.tree.get(sha256)?.map(|v| v.to_vec()))
    }
}
