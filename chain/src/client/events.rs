//! Tick-stream events of finalized blocks.

use super::*;

impl Settlement {
    /// Tick-stream events of finalized blocks from now on, one batch per
    /// block (blocks without such events are skipped).
    pub async fn watch_events(
        &self,
    ) -> Result<
        impl futures::Stream<Item = Result<(u64, Vec<TickEvent>), SettlementError>> + use<>,
        SettlementError,
    > {
        let blocks = self
            .retry(|| async { Ok::<_, subxt::Error>(self.api.stream_blocks().await?) })
            .await?;
        let stream = futures::stream::unfold(blocks, |mut blocks| async move {
            loop {
                let block = match blocks.next().await? {
                    Ok(b) => b,
                    Err(e) => return Some((Err(other(e)), blocks)),
                };
                match block_events(&block).await {
                    Ok(evs) if evs.is_empty() => continue,
                    Ok(evs) => return Some((Ok((block.number(), evs)), blocks)),
                    Err(e) => return Some((Err(e), blocks)),
                }
            }
        });
        Ok(stream)
    }
}

async fn block_events(
    block: &subxt::client::Block<PolkadotConfig>,
) -> Result<Vec<TickEvent>, SettlementError> {
    use api::tick_stream::Event as E;
    let at = block.at().await.map_err(other)?;
    let events = at.events().fetch().await.map_err(other)?;
    let mut out = Vec::new();
    // One pass, in block order; only TickStream events are decoded.
    for ev in events.iter() {
        let ev = ev.map_err(other)?;
        if ev.pallet_name() != "TickStream" {
            continue;
        }
        let api::Event::TickStream(e) = ev.decode_as::<api::Event>().map_err(other)? else {
            continue;
        };
        out.push(match e {
            E::ChannelOpened {
                channel,
                payer,
                payees,
                deposit,
                collateral,
                ..
            } => TickEvent::Opened {
                channel,
                payer,
                payees,
                deposit,
                collateral,
            },
            E::ToppedUp {
                channel,
                deposit,
                collateral,
            } => TickEvent::ToppedUp {
                channel,
                deposit,
                collateral,
            },
            E::Extended {
                channel,
                expires_at,
            } => TickEvent::Extended {
                channel,
                expires_at,
            },
            E::Claimed {
                channel,
                payee,
                amount,
                cumulative,
            } => TickEvent::Claimed {
                channel,
                claimed: Claimed {
                    payee,
                    amount,
                    cumulative,
                    from_collateral: 0,
                },
            },
            E::Overdrawn {
                channel,
                from_collateral,
            } => TickEvent::Overdrawn {
                channel,
                from_collateral,
            },
            E::ChannelClosed {
                channel,
                refunded,
                paid,
                slashed,
            } => TickEvent::Closed {
                channel,
                closed: Closed {
                    refunded,
                    paid,
                    slashed,
                },
            },
        });
    }
    Ok(out)
}
