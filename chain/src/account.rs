//! The node's chain account: an sr25519 key from a secret URI (a BIP-39
//! seed phrase, optionally with `//hard/soft` derivation and `///password`,
//! or a dev URI such as `//Alice`). The URI itself is what the data dir
//! stores (`account.key`, mode 0600, see `vilokanam-storage`).

use std::str::FromStr;

use subxt_signer::sr25519::Keypair;
use subxt_signer::{bip39, SecretUri};

use crate::client::AccountId;

/// A secret URI that does not give a key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AccountError {
    /// Not a phrase or derivation path subxt-signer understands.
    #[error("not a secret URI (seed phrase or //Dev path): {0}")]
    BadUri(String),
    /// The phrase is not a valid BIP-39 mnemonic.
    #[error("bad seed phrase: {0}")]
    BadPhrase(String),
}

/// The sr25519 key of a secret URI.
pub fn keypair(secret_uri: &str) -> Result<Keypair, AccountError> {
    let uri =
        SecretUri::from_str(secret_uri.trim()).map_err(|e| AccountError::BadUri(e.to_string()))?;
    Keypair::from_uri(&uri).map_err(|e| AccountError::BadPhrase(e.to_string()))
}

/// The account id (SS58 `Display`) of a key.
pub fn account_id(key: &Keypair) -> AccountId {
    key.public_key().to_account_id()
}

/// A fresh 12-word BIP-39 seed phrase (128 bits of OS randomness).
pub fn generate_phrase() -> String {
    let entropy: [u8; 16] = rand::random();
    // 16 bytes is a valid BIP-39 entropy length, so this cannot fail.
    match bip39::Mnemonic::from_entropy(&entropy) {
        Ok(m) => m.to_string(),
        Err(e) => unreachable!("16-byte entropy is valid BIP-39: {e}"),
    }
}

/// Parses an SS58 address.
pub fn parse_address(s: &str) -> Result<AccountId, AccountError> {
    AccountId::from_str(s.trim()).map_err(|e| AccountError::BadUri(format!("{s}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dev_uri_gives_alice() {
        // Alice's well-known SS58 address (prefix 42).
        let alice = keypair("//Alice").unwrap();
        assert_eq!(
            account_id(&alice).to_string(),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
    }

    #[test]
    fn generated_phrases_round_trip_and_differ() {
        let a = generate_phrase();
        let b = generate_phrase();
        assert_ne!(a, b);
        assert_eq!(a.split_whitespace().count(), 12);
        let ka = keypair(&a).unwrap();
        assert_eq!(account_id(&ka), account_id(&keypair(&a).unwrap()));
        assert_ne!(account_id(&ka), account_id(&keypair(&b).unwrap()));
        // A derived path gives another account.
        assert_ne!(
            account_id(&ka),
            account_id(&keypair(&format!("{a}//1")).unwrap())
        );
    }

    #[test]
    fn bad_uris_and_addresses_are_refused() {
        assert!(keypair("not a valid phrase at all").is_err());
        assert!(parse_address("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQZ").is_err());
        assert!(parse_address("5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY").is_ok());
    }
}
