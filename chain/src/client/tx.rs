//! Transactions: open, top up, extend, claim, close; signed once and never
//! re-signed.

use super::*;
use crate::voucher::Voucher;
use subxt::error::{TransactionFinalizedSuccessError, TransactionProgressError};

impl Settlement {
    /// Opens a channel from `payer` on `terms`, holding its deposit and
    /// collateral; vouchers will be signed by `voucher_key` (the payer
    /// node's ed25519 key).
    pub async fn open(
        &self,
        payer: &Keypair,
        voucher_key: [u8; 32],
        terms: &OpenTerms,
    ) -> Result<Receipt<ChannelInfo>, SettlementError> {
        use api::runtime_types::bounded_collections::bounded_vec::BoundedVec;
        let call = api::tx().tick_stream().open(
            voucher_key,
            BoundedVec(terms.payees.clone()),
            terms.max_payees,
            terms.payee_cap,
            terms.deposit,
            terms.collateral,
            terms.expires_at,
        );
        let events = self.submit(&call, payer, None).await?;
        // The event has everything a fresh channel holds; no second query.
        let ev = find::<api::tick_stream::events::ChannelOpened>(&events)?;
        let named = u32::try_from(ev.payees.len()).map_err(other)?;
        let outcome = ChannelInfo {
            id: ev.channel,
            payer: ev.payer,
            voucher_key,
            deposit: ev.deposit,
            collateral: ev.collateral,
            max_payees: ev.max_payees,
            named_payees: named,
            bound_payees: named,
            payee_cap: ev.payee_cap,
            paid: 0,
            expires_at: ev.expires_at,
            legacy: false,
        };
        receipt(&events, outcome)
    }

    /// Adds `deposit` to a channel's deposit and `collateral` to its
    /// collateral; returns the new (deposit, collateral).
    pub async fn top_up(
        &self,
        payer: &Keypair,
        channel: ChannelId,
        deposit: Balance,
        collateral: Balance,
    ) -> Result<Receipt<(Balance, Balance)>, SettlementError> {
        let call = api::tx().tick_stream().top_up(channel, deposit, collateral);
        let events = self.submit(&call, payer, Some(channel)).await?;
        let ev = find::<api::tick_stream::events::ToppedUp>(&events)?;
        receipt(&events, (ev.deposit, ev.collateral))
    }

    /// Moves a channel's expiry later.
    pub async fn extend(
        &self,
        payer: &Keypair,
        channel: ChannelId,
        expires_at: BlockNumber,
    ) -> Result<Receipt<()>, SettlementError> {
        let call = api::tx().tick_stream().extend(channel, expires_at);
        let events = self.submit(&call, payer, Some(channel)).await?;
        receipt(&events, ())
    }

    /// Claims the latest voucher of a channel as its payee.
    pub async fn claim(
        &self,
        payee: &Keypair,
        voucher: &Voucher,
    ) -> Result<Receipt<Claimed>, SettlementError> {
        let call = api::tx().tick_stream().claim(
            voucher.channel,
            voucher.cumulative,
            subxt::utils::H256(voucher.chain),
            voucher.signature,
        );
        let events = self.submit(&call, payee, Some(voucher.channel)).await?;
        let ev = find::<api::tick_stream::events::Claimed>(&events)?;
        let from_collateral = match events.find_first::<api::tick_stream::events::Overdrawn>() {
            Some(Ok(o)) => o.from_collateral,
            Some(Err(e)) => return Err(other(e)),
            None => 0,
        };
        let outcome = Claimed {
            payee: ev.payee,
            amount: ev.amount,
            cumulative: ev.cumulative,
            from_collateral,
        };
        receipt(&events, outcome)
    }

    /// Weight and fee of claiming `voucher`, from the runtime's
    /// `TransactionPaymentApi` (nothing is submitted). A payee uses it to
    /// decide when a claim is worth its fee.
    pub async fn claim_cost(
        &self,
        payee: &Keypair,
        voucher: &Voucher,
    ) -> Result<DispatchCost, SettlementError> {
        use subxt::ext::codec::{Compact, Decode, Encode};
        let call = api::tx().tick_stream().claim(
            voucher.channel,
            voucher.cumulative,
            subxt::utils::H256(voucher.chain),
            voucher.signature,
        );
        let tx = self
            .retry(|| async {
                let mut client = self.api.tx().await?;
                Ok::<_, subxt::Error>(
                    client
                        .create_signed(&call, payee, Default::default())
                        .await?
                        .into_encoded(),
                )
            })
            .await?;
        let length = u32::try_from(tx.len()).map_err(other)?;
        let mut args = tx;
        length.encode_to(&mut args);
        let arg = format!("0x{}", hex::encode(&args));
        let raw: String = self
            .retry(|| async {
                self.rpc
                    .request::<String>(
                        "state_call",
                        subxt::rpcs::rpc_params!["TransactionPaymentApi_query_info", &arg],
                    )
                    .await
                    .map_err(rpc_error)
            })
            .await?;
        let bytes = hex::decode(raw.trim_start_matches("0x")).map_err(other)?;
        // RuntimeDispatchInfo { weight: { ref_time, proof_size } (compact), class, partial_fee }
        let (ref_time, proof_size, _class, partial_fee) =
            <(Compact<u64>, Compact<u64>, u8, u128)>::decode(&mut &bytes[..]).map_err(other)?;
        Ok(DispatchCost {
            ref_time: ref_time.0,
            proof_size: proof_size.0,
            partial_fee,
            length,
        })
    }

    /// Closes a channel (the payer after expiry; the only payee of a
    /// single-payee channel at any time).
    pub async fn close(
        &self,
        who: &Keypair,
        channel: ChannelId,
    ) -> Result<Receipt<Closed>, SettlementError> {
        let call = api::tx().tick_stream().close(channel);
        let events = self.submit(&call, who, Some(channel)).await?;
        let ev = find::<api::tick_stream::events::ChannelClosed>(&events)?;
        let outcome = Closed {
            refunded: ev.refunded,
            paid: ev.paid,
            slashed: ev.slashed,
        };
        receipt(&events, outcome)
    }

    /// Signs once, submits and waits until finalized; maps failures
    /// precisely. Only the submission of the *same signed bytes* is
    /// retried (same nonce, so at most one copy can ever be included).
    /// If the connection drops after the node accepted the transaction, or
    /// finality does not come within [`FINALITY_TIMEOUT`], the outcome is
    /// unknown and the transaction is not re-signed:
    /// [`SettlementError::OutcomeUnknown`] carries its hash.
    async fn submit<Call: subxt::transactions::Payload>(
        &self,
        call: &Call,
        signer: &Keypair,
        channel: Option<ChannelId>,
    ) -> Result<subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>, SettlementError> {
        let fail = |e: subxt::Error| self.classify(e, channel);
        // One transaction of this client's at a time, from signing until it
        // is in a block: two signed at once by one account (a node opening
        // its content and its bandwidth channel together) would take the
        // same nonce where the node answers it from state (chopsticks
        // does), and the second would be invalid. Seen once in the
        // testnet: the viewer's channel failed to open.
        let mut nonce_guard = Some(self.tx_lock.clone().lock_owned().await);
        let tx = self
            .retry(|| async {
                let mut client = self.api.tx().await?;
                Ok::<_, subxt::Error>(
                    client
                        .create_signed(call, signer, Default::default())
                        .await?,
                )
            })
            .await?;
        let hash = format!("0x{}", hex::encode(tx.hash().0));
        let mut attempt = 0;
        let progress = loop {
            match tx.submit_and_watch().await.map_err(subxt::Error::from) {
                Ok(p) => break p,
                Err(e) if is_transient(&e) && attempt < RETRIES => {
                    attempt += 1;
                    backoff(attempt, &e).await;
                }
                Err(e) => return Err(fail(e)),
            }
        };
        let finalized = async move {
            let mut progress = progress;
            while let Some(status) = progress.next().await {
                use subxt::error::TransactionStatusError as E;
                use subxt::transactions::TransactionStatus as S;
                match status.map_err(TransactionFinalizedSuccessError::from)? {
                    // In a block: its nonce is spent, the next may sign.
                    S::InBestBlock(_) => drop(nonce_guard.take()),
                    S::InFinalizedBlock(b) => return Ok(b.wait_for_success().await?),
                    S::Error { message } => {
                        return Err(TransactionProgressError::from(E::Error(message)).into())
                    }
                    S::Invalid { message } => {
                        return Err(TransactionProgressError::from(E::Invalid(message)).into())
                    }
                    S::Dropped { message } => {
                        return Err(TransactionProgressError::from(E::Dropped(message)).into())
                    }
                    _ => {}
                }
            }
            Err(TransactionFinalizedSuccessError::from(
                TransactionProgressError::UnexpectedEndOfTransactionStatusStream,
            ))
        };
        match tokio::time::timeout(FINALITY_TIMEOUT, finalized).await {
            Ok(Ok(events)) => Ok(events),
            Ok(Err(e)) => {
                let e = subxt::Error::from(e);
                if is_transient(&e) {
                    Err(SettlementError::OutcomeUnknown {
                        tx_hash: hash,
                        reason: e.to_string(),
                    })
                } else {
                    Err(fail(e))
                }
            }
            Err(_) => Err(SettlementError::OutcomeUnknown {
                tx_hash: hash,
                reason: format!("not finalized within {FINALITY_TIMEOUT:?}"),
            }),
        }
    }
}

fn find<E: subxt::events::DecodeAsEvent>(
    events: &subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>,
) -> Result<E, SettlementError> {
    match events.find_first::<E>() {
        Some(Ok(e)) => Ok(e),
        Some(Err(e)) => Err(other(e)),
        None => Err(SettlementError::Other(
            "the transaction succeeded but its event is missing".into(),
        )),
    }
}

/// Attaches the fee the signer paid (from `TransactionFeePaid`).
fn receipt<T>(
    events: &subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>,
    outcome: T,
) -> Result<Receipt<T>, SettlementError> {
    let paid = find::<api::transaction_payment::events::TransactionFeePaid>(events)?;
    Ok(Receipt {
        outcome,
        fee: paid.actual_fee + paid.tip,
    })
}
