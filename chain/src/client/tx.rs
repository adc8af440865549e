//! Transactions: open, top up, extend, claim, close; signed once and never
//! re-signed.

use super::*;
use crate::voucher::Voucher;

impl Settlement {
    /// Opens a channel from `payer` to `payee`, holding `deposit`; vouchers
    /// will be signed by `voucher_key` (the payer node's ed25519 key).
    pub async fn open_channel(
        &self,
        payer: &Keypair,
        payee: &AccountId,
        voucher_key: [u8; 32],
        price_per_second: Balance,
        deposit: Balance,
        expires_at: BlockNumber,
    ) -> Result<Receipt<ChannelInfo>, SettlementError> {
        let call = api::tx().tick_stream().open_channel(
            *payee,
            voucher_key,
            price_per_second,
            deposit,
            expires_at,
        );
        let events = self.submit(&call, payer, None).await?;
        // The event has everything a fresh channel holds; no second query.
        let ev = find::<api::tick_stream::events::ChannelOpened>(&events)?;
        let outcome = ChannelInfo {
            id: ev.channel,
            payer: ev.payer,
            payee: ev.payee,
            voucher_key,
            price_per_second: ev.price_per_second,
            deposit: ev.deposit,
            claimed: 0,
            expires_at: ev.expires_at,
            ticks: 0,
        };
        receipt(&events, outcome)
    }

    /// Adds `amount` to a channel's deposit; returns the new deposit.
    pub async fn top_up(
        &self,
        payer: &Keypair,
        channel: ChannelId,
        amount: Balance,
    ) -> Result<Receipt<Balance>, SettlementError> {
        let call = api::tx().tick_stream().top_up(channel, amount);
        let events = self.submit(&call, payer, Some(channel)).await?;
        let deposit = find::<api::tick_stream::events::ToppedUp>(&events)?.deposit;
        receipt(&events, deposit)
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
        let outcome = Claimed {
            amount: ev.amount,
            cumulative: ev.cumulative,
            ticks: ev.ticks,
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

    /// Closes a channel (the payee at any time, the payer after expiry).
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
            claimed: ev.claimed,
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
        match tokio::time::timeout(FINALITY_TIMEOUT, progress.wait_for_finalized_success()).await {
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
