//! Tick-stream events of finalized blocks.

use super::*;

impl Settlement {
    /// Tick-stream events of the blocks finalized after this call, one
    /// batch per block, in block order (blocks without such events are
    /// skipped).
    /// Finality may jump several blocks at once (a dev chain building
    /// blocks in a burst, a light client catching up): the blocks it
    /// skipped are fetched by number, so no event is lost.
    pub async fn watch_events(
        &self,
    ) -> Result<
        impl futures::Stream<Item = Result<(u64, Vec<TickEvent>), SettlementError>> + use<>,
        SettlementError,
    > {
        // "From now on" is from the block finalized now: the subscription
        // may report its first block only when first polled, later.
        let now = self.finalized_number().await?;
        let blocks = self
            .retry(|| async { Ok::<_, subxt::Error>(self.api.stream_blocks().await?) })
            .await?;
        let state = Follow {
            blocks,
            api: self.api.clone(),
            next: now + 1,
            todo: std::collections::VecDeque::new(),
        };
        let stream = futures::stream::unfold(state, |mut f| async move {
            loop {
                // Every block is read by number, so one skipped by
                // finality is read like any other.
                let Some(n) = f.todo.pop_front() else {
                    let block = match f.blocks.next().await? {
                        Ok(b) => b,
                        Err(e) => return Some((Err(other(e)), f)),
                    };
                    let n = block.number();
                    if n >= f.next {
                        f.todo.extend(f.next..=n);
                        f.next = n + 1;
                    }
                    continue;
                };
                let at = match f.api.at_block(n).await {
                    Ok(at) => at,
                    Err(e) => return Some((Err(other(e)), f)),
                };
                match block_events(&at).await {
                    Ok(evs) if evs.is_empty() => continue,
                    Ok(evs) => return Some((Ok((n, evs)), f)),
                    Err(e) => return Some((Err(e), f)),
                }
            }
        });
        Ok(stream)
    }
}

/// The state of [`Settlement::watch_events`].
struct Follow {
    blocks: subxt::client::Blocks<PolkadotConfig>,
    api: OnlineClient<PolkadotConfig>,
    /// The next block number to report.
    next: u64,
    /// Block numbers to fetch and report before reading the stream again.
    todo: std::collections::VecDeque<u64>,
}

async fn block_events(
    at: &subxt::client::ClientAtBlock<
        PolkadotConfig,
        subxt::client::OnlineClientAtBlockImpl<PolkadotConfig>,
    >,
) -> Result<Vec<TickEvent>, SettlementError> {
    use api::tick_stream::Event as E;
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
