//! Everything that can go wrong talking to the chain, and how subxt's
//! errors are mapped to it: dispatch errors decoded from the runtime's
//! module error (by pallet and variant name from the metadata), token
//! errors by variant, and transaction-pool refusals from the node's
//! JSON-RPC error object.

use subxt::error::{
    DispatchError, TokenError, TransactionEventsError, TransactionFinalizedSuccessError,
};

use super::{is_transient, ChannelId, Settlement};

/// Everything that can go wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettlementError {
    /// No connection could be made (after retries).
    #[error("chain node unreachable at {endpoint}: {reason}")]
    Unreachable {
        /// The endpoint tried.
        endpoint: String,
        /// The last error.
        reason: String,
    },
    /// The light client could not start.
    #[error("light client: {0}")]
    LightClient(#[from] vilokanam_light_client::LightClientError),
    /// The account cannot pay the deposit, top-up or the transaction fee.
    #[error("insufficient funds: {0}")]
    InsufficientFunds(String),
    /// No such channel: never opened, or already closed.
    #[error("channel {0} does not exist (never opened, or closed)")]
    ChannelClosed(ChannelId),
    /// The voucher's signature does not verify against the channel's key.
    #[error("voucher for channel {0} has a bad signature (wrong key or tampered)")]
    BadSignature(ChannelId),
    /// This exact voucher was already claimed.
    #[error("voucher for channel {0} was already claimed (replay)")]
    VoucherReplayed(ChannelId),
    /// A later voucher was already claimed.
    #[error("voucher for channel {0} is older than one already claimed")]
    VoucherOutdated(ChannelId),
    /// The voucher asks for more than the channel's deposit.
    #[error("voucher for channel {0} exceeds the channel's deposit")]
    ExceedsDeposit(ChannelId),
    /// A late payee's voucher asks for more than the channel's cap.
    #[error("voucher for channel {0} exceeds the channel's cap for payees not named at open")]
    ExceedsPayeeCap(ChannelId),
    /// Every payee slot of the channel is bound to other payees.
    #[error("channel {0} already pays as many payees as it allows")]
    TooManyPayees(ChannelId),
    /// The collateral does not cover what the payees could be owed beyond
    /// the deposit.
    #[error("the collateral is below what the channel's payees could be owed beyond its deposit")]
    CollateralTooLow,
    /// The voucher names another chain.
    #[error("voucher was signed for another chain ({0})")]
    WrongChain(String),
    /// Any other dispatch error of a pallet.
    #[error("rejected by the chain: {pallet}::{error}")]
    Rejected {
        /// Pallet name.
        pallet: String,
        /// Error variant name.
        error: String,
    },
    /// The transaction pool refused the transaction.
    #[error("transaction invalid: {0}")]
    Invalid(String),
    /// This client's generated types do not match the chain's runtime.
    #[error(
        "the chain's runtime does not match this client's generated types (chain/metadata): {0}"
    )]
    IncompatibleRuntime(String),
    /// The transaction was submitted but its fate is unknown (connection
    /// lost after submission, or no finality in time). It was not re-sent:
    /// check the chain for it before submitting again.
    #[error("transaction {tx_hash} was submitted but its outcome is unknown: {reason}")]
    OutcomeUnknown {
        /// Hash of the submitted transaction.
        tx_hash: String,
        /// Why.
        reason: String,
    },
    /// Anything else from subxt or the node.
    #[error("chain: {0}")]
    Other(String),
}

impl Settlement {
    /// Turns a subxt error into the precise settlement error.
    pub(super) fn classify(&self, e: subxt::Error, channel: Option<ChannelId>) -> SettlementError {
        use subxt::Error as E;
        let dispatch = match &e {
            E::TransactionFinalizedSuccessError(
                TransactionFinalizedSuccessError::SuccessError(
                    TransactionEventsError::ExtrinsicFailed(d),
                ),
            )
            | E::TransactionEventsError(TransactionEventsError::ExtrinsicFailed(d)) => Some(d),
            _ => None,
        };
        if let Some(d) = dispatch {
            return classify_dispatch(d, channel, self.genesis());
        }
        if is_incompatible(&e) {
            return SettlementError::IncompatibleRuntime(e.to_string());
        }
        if let Some(pool) = find_user_error(&e) {
            if let Some(err) = classify_pool(pool) {
                return err;
            }
        }
        if is_transient(&e) {
            return SettlementError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            };
        }
        SettlementError::Other(e.to_string())
    }
}

/// Whether the error says our generated types do not match the runtime.
fn is_incompatible(e: &subxt::Error) -> bool {
    use subxt::error::{ExtrinsicError, RuntimeApiError, StorageError};
    use subxt::Error as E;
    matches!(
        e,
        E::ExtrinsicError(ExtrinsicError::IncompatibleCodegen)
            | E::RuntimeApiError(RuntimeApiError::IncompatibleCodegen)
            | E::StorageError(StorageError::IncompatibleCodegen)
    )
}

/// The JSON-RPC error object the node answered with, if the error chain
/// carries one (how a node refuses a transaction before it is included).
fn find_user_error(e: &subxt::Error) -> Option<&subxt::rpcs::UserError> {
    use subxt::error::{BackendError, ExtrinsicError, RpcError};
    use subxt::Error as E;
    // Submission errors hold the backend error without exposing it as a
    // source, so look where subxt puts it.
    let backend = match e {
        E::BackendError(b) | E::ExtrinsicError(ExtrinsicError::ErrorSubmittingTransaction(b)) => {
            Some(b)
        }
        _ => None,
    };
    if let Some(BackendError::Rpc(RpcError::ClientError(subxt::rpcs::Error::User(u)))) = backend {
        return Some(u);
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(u) = err.downcast_ref::<subxt::rpcs::UserError>() {
            return Some(u);
        }
        if let Some(subxt::rpcs::Error::User(u)) = err.downcast_ref::<subxt::rpcs::Error>() {
            return Some(u);
        }
        cur = err.source();
    }
    None
}

/// JSON-RPC code of "invalid transaction" (author_submitExtrinsic).
const POOL_INVALID: i32 = 1010;
/// JSON-RPC code of "unknown transaction validity".
const POOL_UNKNOWN: i32 = 1011;

/// Classifies a transaction pool refusal from its JSON-RPC error object.
/// A Substrate node puts the `InvalidTransaction` variant's description in
/// `data` (`"Inability to pay some fees (e.g. account balance too low)"`
/// for `Payment`); chopsticks puts the variant itself, as JSON, in the
/// message (`{"invalid":{"payment":null}}`).
fn classify_pool(u: &subxt::rpcs::UserError) -> Option<SettlementError> {
    if u.code != POOL_INVALID && u.code != POOL_UNKNOWN {
        return None;
    }
    let data: Option<serde_json::Value> = u
        .data
        .as_ref()
        .and_then(|d| serde_json::from_str(d.get()).ok());
    let from_message: Option<serde_json::Value> = serde_json::from_str(&u.message).ok();
    let variant = [data.as_ref(), from_message.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|v| v.get("invalid").or_else(|| v.get("Invalid")).cloned());
    let payment = variant
        .as_ref()
        .is_some_and(|v| v.get("payment").is_some() || v.get("Payment").is_some())
        || data
            .as_ref()
            .and_then(|d| d.as_str())
            .is_some_and(|s| s.starts_with(PAYMENT_DESCRIPTION));
    if payment {
        return Some(SettlementError::InsufficientFunds(
            "the account cannot pay the transaction fee".into(),
        ));
    }
    let detail = match (&data, &variant) {
        (Some(serde_json::Value::String(s)), _) => s.clone(),
        (_, Some(v)) => v.to_string(),
        _ => u.message.clone(),
    };
    Some(SettlementError::Invalid(format!(
        "{} ({}): {detail}",
        u.message, u.code
    )))
}

/// The description `sp_runtime` gives `InvalidTransaction::Payment`.
const PAYMENT_DESCRIPTION: &str = "Inability to pay some fees";

fn classify_dispatch(
    d: &DispatchError,
    channel: Option<ChannelId>,
    genesis: [u8; 32],
) -> SettlementError {
    let ch = channel.unwrap_or_default();
    match d {
        DispatchError::Module(m) => {
            let Ok(details) = m.details() else {
                return SettlementError::Other(format!("undecodable module error: {m}"));
            };
            let pallet = details.pallet.name().to_owned();
            let error = details.variant.name.clone();
            match (pallet.as_str(), error.as_str()) {
                ("TickStream", "ChannelNotFound") => SettlementError::ChannelClosed(ch),
                ("TickStream", "BadSignature") => SettlementError::BadSignature(ch),
                ("TickStream", "VoucherReplayed") => SettlementError::VoucherReplayed(ch),
                ("TickStream", "VoucherOutdated") => SettlementError::VoucherOutdated(ch),
                ("TickStream", "ExceedsDeposit") => SettlementError::ExceedsDeposit(ch),
                ("TickStream", "ExceedsPayeeCap") => SettlementError::ExceedsPayeeCap(ch),
                ("TickStream", "TooManyPayees") => SettlementError::TooManyPayees(ch),
                ("TickStream", "CollateralTooLow") => SettlementError::CollateralTooLow,
                ("TickStream", "WrongChain") => {
                    SettlementError::WrongChain(format!("this chain is 0x{}", hex::encode(genesis)))
                }
                ("TickStream", "InsufficientFunds") => SettlementError::InsufficientFunds(
                    "the payer cannot put that much on hold".into(),
                ),
                ("Balances", "InsufficientBalance" | "FundsUnavailable") => {
                    SettlementError::InsufficientFunds(format!("Balances::{error}"))
                }
                _ => SettlementError::Rejected { pallet, error },
            }
        }
        DispatchError::Token(
            t
            @ (TokenError::FundsUnavailable | TokenError::BelowMinimum | TokenError::CannotCreate),
        ) => SettlementError::InsufficientFunds(format!("token error: {t}")),
        DispatchError::Token(t) => SettlementError::Other(format!("token error: {t}")),
        other => SettlementError::Other(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(code: i32, message: &str, data: Option<&str>) -> subxt::rpcs::UserError {
        subxt::rpcs::UserError {
            code,
            message: message.into(),
            data: data.map(|d| serde_json::value::RawValue::from_string(d.into()).unwrap()),
        }
    }

    #[test]
    fn pool_refusals_are_classified_from_the_rpc_error_object() {
        // A Substrate node: the variant's description in `data`.
        let node = user(
            1010,
            "Invalid Transaction",
            Some(r#""Inability to pay some fees (e.g. account balance too low)""#),
        );
        assert!(matches!(
            classify_pool(&node),
            Some(SettlementError::InsufficientFunds(_))
        ));
        // chopsticks: the variant as JSON in the message.
        let chopsticks = user(1010, r#"{"invalid":{"payment":null}}"#, None);
        assert!(matches!(
            classify_pool(&chopsticks),
            Some(SettlementError::InsufficientFunds(_))
        ));
        let bad_proof = user(1010, r#"{"invalid":{"badProof":null}}"#, None);
        match classify_pool(&bad_proof) {
            Some(SettlementError::Invalid(m)) => assert!(m.contains("badProof"), "{m}"),
            other => panic!("{other:?}"),
        }
        let stale = user(
            1010,
            "Invalid Transaction",
            Some(r#""Transaction is outdated""#),
        );
        match classify_pool(&stale) {
            Some(SettlementError::Invalid(m)) => assert!(m.contains("outdated"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Not a pool refusal.
        assert!(classify_pool(&user(-32601, "Method not found", None)).is_none());
    }
}
