//! Reads: chain status, balances, channels and their payees.

use super::*;

impl Settlement {
    /// Chain name, finalized height, runtime version and channel count.
    pub async fn status(&self) -> Result<ChainStatus, SettlementError> {
        let chain: String = self
            .retry(|| async {
                self.rpc
                    .request::<String>("system_chain", subxt::rpcs::rpc_params![])
                    .await
                    .map_err(rpc_error)
            })
            .await?;
        let (finalized, spec_version) = self
            .retry(|| async {
                let at = self.api.at_current_block().await?;
                Ok::<_, subxt::Error>((at.block_number(), at.spec_version()))
            })
            .await?;
        let open_channels = self.channels().await?.len() as u64;
        Ok(ChainStatus {
            endpoint: self.endpoint.clone(),
            chain,
            genesis: self.genesis(),
            finalized,
            spec_version,
            open_channels,
        })
    }

    /// Number of the latest finalized block.
    pub async fn finalized_number(&self) -> Result<u64, SettlementError> {
        self.retry(|| async {
            Ok::<_, subxt::Error>(self.api.at_current_block().await?.block_number())
        })
        .await
    }

    /// Free and held balance of an account.
    pub async fn balance(&self, who: &AccountId) -> Result<AccountBalance, SettlementError> {
        let info = self
            .retry(|| async {
                let at = self.api.at_current_block().await?;
                let v = at
                    .storage()
                    .fetch(api::storage().system().account(), (*who,))
                    .await?;
                Ok::<_, subxt::Error>(v.decode()?)
            })
            .await?;
        Ok(AccountBalance {
            free: info.data.free,
            reserved: info.data.reserved,
            nonce: info.nonce,
        })
    }

    /// A channel, or `None` if it does not exist (never opened, or closed).
    pub async fn channel(&self, id: ChannelId) -> Result<Option<ChannelInfo>, SettlementError> {
        self.retry(|| async {
            let at = self.api.at_current_block().await?;
            read_channel(&at, id).await
        })
        .await
    }

    /// A channel with the payees bound to it, both read at one finalized
    /// block (whose number comes with them): consistent with each other,
    /// and one block lookup (hash and runtime version) instead of three
    /// separate queries' worth. What a payee reads to check a new
    /// viewer's channel. `None`: no such channel at that block.
    pub async fn channel_snapshot(
        &self,
        id: ChannelId,
    ) -> Result<Option<ChannelSnapshot>, SettlementError> {
        self.retry(|| async {
            let at = self.api.at_current_block().await?;
            let Some(info) = read_channel(&at, id).await? else {
                return Ok(None);
            };
            let payees = read_payees(&at, id).await?;
            Ok::<_, subxt::Error>(Some(ChannelSnapshot {
                info,
                payees,
                block: at.block_number(),
            }))
        })
        .await
    }

    /// Every open channel (ordered by id).
    pub async fn channels(&self) -> Result<Vec<ChannelInfo>, SettlementError> {
        let mut out = self
            .retry(|| async {
                let at = self.api.at_current_block().await?;
                let mut it = at
                    .storage()
                    .iter(api::storage().tick_stream().channels(), ())
                    .await?;
                let mut out = Vec::new();
                while let Some(kv) = it.next().await {
                    let kv = kv?;
                    let (id,) = kv.key()?.decode()?;
                    out.push(channel_info(id, kv.value().decode()?));
                }
                Ok::<_, subxt::Error>(out)
            })
            .await?;
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    /// The payees bound to a channel, with what each claimed (ordered by
    /// account).
    pub async fn payees(&self, channel: ChannelId) -> Result<Vec<PayeeInfo>, SettlementError> {
        self.retry(|| async {
            let at = self.api.at_current_block().await?;
            read_payees(&at, channel).await
        })
        .await
    }
}

type At = subxt::client::OnlineClientAtBlock<PolkadotConfig>;

async fn read_channel(at: &At, id: ChannelId) -> Result<Option<ChannelInfo>, subxt::Error> {
    let v = at
        .storage()
        .try_fetch(api::storage().tick_stream().channels(), (id,))
        .await?;
    Ok(match v {
        None => None,
        Some(v) => Some(channel_info(id, v.decode()?)),
    })
}

/// The payees of `channel`, ordered by account.
async fn read_payees(at: &At, channel: ChannelId) -> Result<Vec<PayeeInfo>, subxt::Error> {
    let mut it = at
        .storage()
        .iter(api::storage().tick_stream().payees(), (channel,))
        .await?;
    let mut out = Vec::new();
    while let Some(kv) = it.next().await {
        let kv = kv?;
        let (_, payee) = kv.key()?.decode()?;
        let v = kv.value().decode()?;
        out.push(PayeeInfo {
            payee,
            claimed: v.claimed,
            named: v.named,
        });
    }
    out.sort_by_key(|p| p.payee.0);
    Ok(out)
}

type RawChannel =
    api::runtime_types::pallet_tick_stream::pallet::Channel<AccountId, Balance, BlockNumber>;

fn channel_info(id: ChannelId, c: RawChannel) -> ChannelInfo {
    ChannelInfo {
        id,
        payer: c.payer,
        voucher_key: c.voucher_key,
        deposit: c.deposit,
        collateral: c.collateral,
        max_payees: c.max_payees,
        named_payees: c.named_payees,
        bound_payees: c.bound_payees,
        payee_cap: c.payee_cap,
        paid: c.paid,
        expires_at: c.expires_at,
        legacy: c.legacy,
    }
}
