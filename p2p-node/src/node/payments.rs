//! Payments: the creator's key service (channels checked on the chain,
//! vouchers kept in sled before a key leaves) and the viewer's paying
//! session (one channel, a voucher per second played, keys bought per
//! epoch). Protocol: docs/PAYMENTS.md.
//!
//! Decisions live in IO-less cores — `chain::{Payer, Payee}` for vouchers,
//! `swarm::protocols::keys::core::KeyServer` for keys; this module does
//! the IO around them (chain queries and transactions, sled, the swarm).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use ed25519_dalek::{SigningKey, VerifyingKey};
use lru::LruCache;
use tokio::sync::OnceCell;
use tracing::{info, warn};
use vilokanam_chain::{
    AccountId, Endpoint, OpenTerms, Payee, Payer, Settlement, Terms, Voucher, VoucherError,
};
use vilokanam_storage::sessions::Settlement as Settled;
use vilokanam_storage::{SessionRecord, Sessions, VoucherRecord, Vouchers};
use vilokanam_swarm::protocols::keys::core::{Ask, KeyServer, KeyServerConfig, Pricing};
use vilokanam_swarm::protocols::keys::paywall::{epoch_at, open_key, EpochKey, StreamSecret};
use vilokanam_swarm::protocols::keys::wire::{KeyRefusal, KeyRequest, KeyResponse, Payment};
use vilokanam_swarm::wire::Sig;
use vilokanam_swarm::{Client, Offer, StreamId};

use super::error::NodeError;
use super::publisher::now_ms;

/// How the node reaches the chain, and with which account.
#[derive(Clone, Debug)]
pub struct ChainAccess {
    /// RPC endpoint or light client.
    pub endpoint: Endpoint,
    /// The node's account (secret URI), if it has one.
    pub account: Option<String>,
}

/// Blocks a channel must still run for its payee to trust it (a minute of
/// 6 s blocks: time to claim).
pub(crate) const MIN_BLOCKS_LEFT: u32 = 10;
/// Claim a held voucher when its channel expires within this many blocks
/// (10 minutes of 6 s blocks), if it pays more than the claim's fee.
pub const CLAIM_BEFORE_EXPIRY: u32 = 100;
/// Channels the key service remembers.
const MAX_CHANNELS: usize = 10_000;
/// Epoch keys a viewer keeps per stream.
const KEYS_KEPT: usize = 8;
/// Sequence numbers a viewer remembers as paid per stream.
const SEQS_KEPT: usize = 256;
/// The longest media time one segment may be paid for (µs).
const MAX_SEGMENT_US: u64 = vilokanam_media::limits::MAX_SEGMENT_DURATION.as_micros() as u64;

/// A channel the key service checked on the chain.
struct Checked {
    payee: Payee,
    voucher_key: VerifyingKey,
    stream: StreamId,
    /// The peer that first paid on it: the only one served on it after.
    /// (Vouchers travel only over the encrypted link to the key server, so
    /// no one else can present one; without this, anyone who read the
    /// channel id on chain could use up its payer's credit.)
    peer: Option<vilokanam_swarm::libp2p::PeerId>,
    /// When its payer's node last asked for a key (ms since the epoch): a
    /// watching viewer asks every epoch, so a long silence means it is done.
    last_request_ms: u64,
    /// The channel's expiry as checked (an `extend` only moves it later,
    /// so a claim timed by it is never late).
    expires_at: u32,
    /// Its payee slots (1: this node may close it).
    max_payees: u32,
}

/// A viewer's paying session for one stream.
/// What of one segment a viewer paid for: its parts (LL-HLS) as a player
/// fetched them, or all of it. A segment is never paid twice: fetched
/// whole after some of its parts, only the rest of its time is paid.
#[derive(Debug, Default)]
struct PaidMedia {
    whole: bool,
    parts: BTreeSet<u16>,
    /// Media microseconds paid for this segment.
    us: u64,
}

pub(crate) struct Session {
    channel: u64,
    offer: Offer,
    payer: Payer,
    last: Option<Voucher>,
    keys: BTreeMap<u64, EpochKey>,
    /// What of each recent segment was paid for (bounded: the newest
    /// [`SEQS_KEPT`] segments).
    paid: BTreeMap<u64, PaidMedia>,
    /// Media microseconds paid for.
    paid_us: u64,
    /// The deposit so far (budget plus top-ups).
    budget: u128,
    /// One top-up's size (the first budget).
    step: u128,
    /// Top-ups stop at this total.
    ceiling: u128,
    /// The budget could not pay a segment: nothing more is paid, so the
    /// picture ends there (a shorter later segment that would still fit
    /// must not play after a gap).
    exhausted: bool,
}

/// Where a viewer's channel is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpendingState {
    /// The session is on: the node pays as it plays.
    Watching,
    /// The session ended; the rest of the deposit is on hold until the
    /// payee closes the channel or it expires (then this node closes it).
    Ended,
    /// The payee closed the channel: the rest came back.
    Closed,
    /// This node closed it after expiry and got `refunded` back.
    Reclaimed {
        /// Planck returned.
        refunded: u128,
    },
}

/// What a viewer has paid, for the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spending {
    /// The stream.
    pub stream: StreamId,
    /// The channel.
    pub channel: u64,
    /// Seconds of playback paid.
    pub seconds_paid: u64,
    /// Amount signed over to the creator (planck).
    pub spent: u128,
    /// The budget (deposit).
    pub budget: u128,
    /// Seconds the rest of the budget pays for.
    pub seconds_left: u64,
    /// Where the channel is.
    pub state: SpendingState,
    /// Block from which this node may close the channel itself.
    pub expires_at: u32,
}

/// The payments service of a node.
pub(crate) struct Payments {
    access: Option<ChainAccess>,
    chain: OnceCell<Settlement>,
    voucher_key: SigningKey,
    vouchers: Vouchers,
    keys: Mutex<KeyServer>,
    channels: tokio::sync::Mutex<LruCache<u64, Checked>>,
    sessions: Mutex<HashMap<StreamId, Arc<tokio::sync::Mutex<Session>>>>,
    /// The viewer's channels on disk (history, and reclaims after expiry).
    history: Sessions,
    /// Blocks a viewer's channel runs past its budget's playing time.
    grace_blocks: u32,
    /// When this service started (ms since the epoch): the idle clock of
    /// channels it has not heard from since.
    started_ms: u64,
    /// This node's user's key (its chat key): named in key requests, for a
    /// viewer pass.
    holder: [u8; 32],
    /// The latest viewer pass per paid stream watched (from the key
    /// servers; one per session at most).
    passes: Mutex<HashMap<StreamId, vilokanam_swarm::protocols::chat::wire::SignedViewerPass>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Payments {
    pub(crate) fn new(
        access: Option<ChainAccess>,
        voucher_key: SigningKey,
        vouchers: Vouchers,
        history: Sessions,
        grace_blocks: u32,
        holder: [u8; 32],
    ) -> Self {
        Payments {
            access,
            chain: OnceCell::new(),
            voucher_key,
            vouchers,
            keys: Mutex::new(KeyServer::new(KeyServerConfig::default())),
            channels: tokio::sync::Mutex::new(LruCache::new(
                NonZeroUsize::new(MAX_CHANNELS).unwrap_or(NonZeroUsize::MIN),
            )),
            sessions: Mutex::new(HashMap::new()),
            history,
            grace_blocks,
            holder,
            passes: Mutex::new(HashMap::new()),
            started_ms: now_ms(),
        }
    }

    pub(crate) async fn chain(&self) -> Result<&Settlement, String> {
        let access = self
            .access
            .as_ref()
            .ok_or_else(|| "this node has no settlement chain configured".to_owned())?;
        self.chain
            .get_or_try_init(|| async {
                Settlement::connect(&access.endpoint)
                    .await
                    .map_err(|e| e.to_string())
            })
            .await
    }

    /// This node's voucher key (signs what it pays).
    pub(crate) fn voucher_key(&self) -> &SigningKey {
        &self.voucher_key
    }

    pub(crate) fn account(&self) -> Result<subxt_signer::sr25519::Keypair, String> {
        let uri = self
            .access
            .as_ref()
            .and_then(|a| a.account.clone())
            .ok_or_else(|| {
                "this node has no chain account: run `vilokanam account new` or `vilokanam account import`"
                    .to_owned()
            })?;
        vilokanam_chain::account::keypair(&uri).map_err(|e| e.to_string())
    }

    // ---- the creator's side: selling keys ----

    /// Answers a key request for a stream this node publishes with `offer`
    /// and `secret` (`None`: not published here, or free).
    /// The latest pass for `stream` from its creator's key server, while
    /// it holds (a paid-viewers-only chat asks for one).
    pub(crate) fn pass_for(
        &self,
        stream: &StreamId,
    ) -> Option<vilokanam_swarm::protocols::chat::wire::SignedViewerPass> {
        lock(&self.passes)
            .get(stream)
            .filter(|p| p.pass.until_ms > now_ms())
            .cloned()
    }

    pub(crate) async fn answer(
        &self,
        peer: vilokanam_swarm::libp2p::PeerId,
        request: &KeyRequest,
        paid_stream: Option<(Offer, StreamSecret)>,
        archived: bool,
    ) -> KeyResponse {
        match self.try_answer(peer, request, paid_stream, archived).await {
            Ok(r) => r,
            Err(refusal) => KeyResponse::Refused(refusal),
        }
    }

    async fn try_answer(
        &self,
        peer: vilokanam_swarm::libp2p::PeerId,
        req: &KeyRequest,
        paid_stream: Option<(Offer, StreamSecret)>,
        archived: bool,
    ) -> Result<KeyResponse, KeyRefusal> {
        let (offer, secret) = paid_stream.ok_or(KeyRefusal::NotServed)?;
        // A new channel is checked on the chain without holding the
        // table: a thousand viewers starting at once must not queue behind
        // each other's chain queries. Two first requests on one channel
        // may both check it; the first to finish is kept.
        let known = self.channels.lock().await.contains(&req.channel);
        if !known {
            let checked = self.check_channel(req, &offer).await?;
            let mut channels = self.channels.lock().await;
            if !channels.contains(&req.channel) {
                channels.put(req.channel, checked);
            }
        }
        let mut channels = self.channels.lock().await;
        let c = channels.get_mut(&req.channel).ok_or(KeyRefusal::Busy)?;
        if c.stream != req.stream {
            return Err(KeyRefusal::bad_channel(format!(
                "channel {} pays for stream {}, not this one",
                req.channel, c.stream
            )));
        }
        match c.peer {
            Some(p) if p != peer => {
                return Err(KeyRefusal::bad_channel(format!(
                    "channel {} is in use by another peer",
                    req.channel
                )))
            }
            None if req.payment.is_none() => {
                return Err(KeyRefusal::bad_voucher(
                    "the first request on a channel must carry a voucher (it binds the channel to its payer's node)",
                ))
            }
            _ => {}
        }
        let not_stored = |e| KeyRefusal::bad_voucher(format!("cannot store it: {e}"));
        let mut kept = None;
        if let Some(p) = &req.payment {
            let v = Voucher {
                chain: offer.genesis,
                channel: req.channel,
                payee: offer.payee,
                cumulative: p.cumulative,
                signature: p.signature.0,
            };
            let mut accepted = c.payee.accept(v.clone());
            if let Err(VoucherError::ExceedsDeposit { deposit, .. }) = accepted {
                // The payer may have topped up: look again.
                if let Ok(Ok(Some(now))) =
                    tokio::time::timeout(std::time::Duration::from_secs(10), async {
                        self.chain()
                            .await
                            .map_err(|e| e.to_string())?
                            .channel(req.channel)
                            .await
                            .map_err(|e| e.to_string())
                    })
                    .await
                {
                    if now.deposit > deposit {
                        let _ = c.payee.top_up(now.deposit - deposit);
                        accepted = c.payee.accept(v.clone());
                    }
                }
            }
            match accepted {
                Ok(_) => {
                    // Written now, on disk before the key leaves (below).
                    let rec = VoucherRecord {
                        stream: req.stream.to_string(),
                        chain: v.chain,
                        channel: v.channel,
                        payee: v.payee,
                        cumulative: v.cumulative,
                        signature: v.signature.to_vec(),
                        claimed: 0,
                        seconds: u64::try_from(v.cumulative / offer.price_per_sec)
                            .unwrap_or(u64::MAX),
                    };
                    kept = Some(self.vouchers.keep_best(rec).map_err(not_stored)?);
                }
                Err(VoucherError::Replayed(_)) => {}
                Err(e) => return Err(KeyRefusal::bad_voucher(e)),
            }
            // A valid voucher from this peer: the channel is its.
            c.peer.get_or_insert(peer);
        }
        c.last_request_ms = now_ms();
        let paid = c.payee.owed();
        let viewer = c.voucher_key;
        drop(channels);
        // On disk before the key leaves, waited for outside the table's
        // lock: concurrent requests share one flush.
        if let Some(kept) = kept {
            kept.durable().await.map_err(not_stored)?;
        }
        let mut keys = lock(&self.keys);
        if keys.epoch_key(&req.stream, 0).is_none() {
            keys.add_stream(
                req.stream.clone(),
                secret,
                Pricing {
                    price_per_sec: offer.price_per_sec,
                    epoch_secs: offer.epoch_secs,
                },
            );
        }
        keys.advance(&req.stream, epoch_at(now_ms(), offer.epoch_secs));
        // A VOD of the stream is held: its past epochs are on sale too.
        keys.set_archive(&req.stream, archived);
        let g = keys.grant(
            std::time::Instant::now(),
            Ask {
                stream: &req.stream,
                channel: req.channel,
                viewer: &viewer,
                epoch: req.epoch,
                paid,
            },
            rand::random(),
        )?;
        Ok(KeyResponse::Granted {
            epoch: g.epoch,
            key: g.key.into(),
            // Signed by the node (the creator's key), which knows it.
            pass: None,
        })
    }

    async fn check_channel(&self, req: &KeyRequest, offer: &Offer) -> Result<Checked, KeyRefusal> {
        let chain = self.chain().await.map_err(KeyRefusal::bad_channel)?;
        if chain.genesis() != offer.genesis {
            return Err(KeyRefusal::bad_channel(
                "this node's chain is not the one the stream's offer names",
            ));
        }
        // A chain query that fails says nothing about the channel: `Busy`
        // (the viewer asks again), not `BadChannel`.
        // The channel, its payees and the block number from one block.
        let snapshot = chain
            .channel_snapshot(req.channel)
            .await
            .map_err(|e| {
                warn!(channel = req.channel, error = %e, "channel check failed: answered busy");
                KeyRefusal::Busy
            })?
            .ok_or_else(|| {
                KeyRefusal::bad_channel(format!(
                    "channel {} does not exist on the chain",
                    req.channel
                ))
            })?;
        let (info, payees) = (snapshot.info, snapshot.payees);
        let named: Vec<[u8; 32]> = payees
            .iter()
            .filter(|p| p.named)
            .map(|p| p.payee.0)
            .collect();
        if !named.contains(&offer.payee) {
            return Err(KeyRefusal::bad_channel(format!(
                "channel {} does not name this stream's payee {}",
                req.channel,
                AccountId::from(offer.payee)
            )));
        }
        let now = u32::try_from(snapshot.block).unwrap_or(u32::MAX);
        if info.expires_at < now.saturating_add(MIN_BLOCKS_LEFT) {
            return Err(KeyRefusal::bad_channel(format!(
                "channel {} expires at block #{}, too soon to claim (now #{now})",
                req.channel, info.expires_at
            )));
        }
        let voucher_key = VerifyingKey::from_bytes(&info.voucher_key)
            .map_err(|_| KeyRefusal::bad_channel("the channel's voucher key is not a valid key"))?;
        let terms = Terms {
            chain: offer.genesis,
            channel: req.channel,
            deposit: info.deposit,
            max_payees: info.max_payees,
            named,
            payee_cap: info.payee_cap,
        };
        let mut payee = Payee::new(voucher_key, terms, offer.payee);
        // What this node already holds for the channel (a restart).
        if let Some(held) = self
            .vouchers
            .get(req.channel, &offer.payee)
            .ok()
            .flatten()
            .as_ref()
            .and_then(held_voucher)
        {
            let _ = payee.accept(held);
        }
        info!(channel = req.channel, stream = %req.stream, deposit = info.deposit, "paying channel checked on the chain");
        Ok(Checked {
            payee,
            voucher_key,
            stream: req.stream.clone(),
            peer: None,
            last_request_ms: now_ms(),
            expires_at: info.expires_at,
            max_payees: info.max_payees,
        })
    }

    /// Claims the held vouchers not yet claimed, as this node's account
    /// (the payee). At `shutdown`, only those worth at least one claim fee
    /// (a claim that costs more than it brings is a loss), and then closes
    /// its single-payee channels, which returns the rest of each deposit to
    /// its payer at once: also those whose last voucher was not worth a
    /// claim (what it pays, less than a claim's fee, is given up, rather
    /// than keep the payer's deposit locked until expiry for it).
    /// Otherwise (the user asked) every one. Returns what was claimed.
    pub(crate) async fn claim_all(&self, shutdown: bool) -> Result<u128, String> {
        let close = shutdown;
        let held = self.vouchers.all().map_err(|e| e.to_string())?;
        if held.is_empty() {
            return Ok(0);
        }
        let todo: Vec<_> = held
            .into_iter()
            .filter(|r| r.cumulative > r.claimed)
            .collect();
        let chain = self.chain().await?;
        let key = self.account()?;
        let me = vilokanam_chain::account::account_id(&key);
        let mut total = 0;
        let mut forfeit = Vec::new();
        for r in todo {
            if r.payee != me.0 {
                warn!(
                    channel = r.channel,
                    "held voucher names another payee account: not claimed here"
                );
                continue;
            }
            let Some(v) = held_voucher(&r) else {
                continue;
            };
            if shutdown {
                match chain.claim_cost(&key, &v).await {
                    Ok(cost) if r.cumulative - r.claimed >= cost.partial_fee => {}
                    Ok(cost) => {
                        info!(
                            channel = r.channel,
                            pending = r.cumulative - r.claimed,
                            fee = cost.partial_fee,
                            "not worth a claim: given up to close the channel"
                        );
                        forfeit.push(r.channel);
                        continue;
                    }
                    Err(e) => {
                        warn!(channel = r.channel, error = %e, "claim cost unknown: kept");
                        continue;
                    }
                }
            }
            match chain.claim(&key, &v).await {
                Ok(receipt) => {
                    total += receipt.outcome.amount;
                    info!(
                        channel = r.channel,
                        amount = receipt.outcome.amount,
                        fee = receipt.fee,
                        "claimed"
                    );
                    self.vouchers
                        .set_claimed(r.channel, &r.payee, r.cumulative)
                        .map_err(|e| e.to_string())?;
                }
                Err(vilokanam_chain::SettlementError::VoucherReplayed(_)) => {
                    let _ = self.vouchers.set_claimed(r.channel, &r.payee, r.cumulative);
                }
                Err(e) => {
                    warn!(channel = r.channel, error = %e, "claim failed");
                    continue;
                }
            }
        }
        if close {
            self.close_settled(chain, &key, &forfeit).await?;
        }
        Ok(total)
    }

    /// Closes a single-payee channel this node (its only payee) has claimed
    /// in full, which returns the rest of the deposit to its payer, and
    /// forgets it (also when it was closed already).
    async fn close(
        &self,
        chain: &Settlement,
        key: &subxt_signer::sr25519::Keypair,
        r: &VoucherRecord,
    ) {
        match chain.close(key, r.channel).await {
            Ok(closed) => {
                info!(
                    channel = r.channel,
                    refunded = closed.outcome.refunded,
                    fee = closed.fee,
                    "closed the channel; the rest went back to its payer"
                );
                self.forget(r).await;
            }
            Err(vilokanam_chain::SettlementError::ChannelClosed(_)) => self.forget(r).await,
            Err(e) => warn!(channel = r.channel, error = %e, "close failed (retried later)"),
        }
    }

    /// Drops a channel closed on chain from the store and the key service.
    async fn forget(&self, r: &VoucherRecord) {
        let _ = self.vouchers.remove(r.channel, &r.payee);
        self.channels.lock().await.pop(&r.channel);
    }

    /// Closes the single-payee channels whose held voucher is claimed in
    /// full or given up (`forfeit`: not worth a claim, at shutdown), which
    /// returns the rest of each deposit to its payer, and forgets those
    /// already closed on chain. Any other voucher still pending keeps its
    /// channel open.
    async fn close_settled(
        &self,
        chain: &Settlement,
        key: &subxt_signer::sr25519::Keypair,
        forfeit: &[u64],
    ) -> Result<(), String> {
        let me = vilokanam_chain::account::account_id(key);
        let held = self.vouchers.all().map_err(|e| e.to_string())?;
        for r in held.into_iter().filter(|r| {
            (r.cumulative == r.claimed || forfeit.contains(&r.channel)) && r.payee == me.0
        }) {
            match chain.channel(r.channel).await {
                Ok(Some(c)) if c.max_payees == 1 => self.close(chain, key, &r).await,
                Ok(None) => self.forget(&r).await,
                Ok(Some(_)) => {}
                Err(e) => warn!(channel = r.channel, error = %e, "channel unknown: not closed"),
            }
        }
        Ok(())
    }

    /// Claims the held vouchers that are due: their unclaimed amount is
    /// worth `fee_multiple` claim fees (the runtime's estimate), or their
    /// channel expires within [`CLAIM_BEFORE_EXPIRY`] blocks (after that
    /// the payer may take the rest back), or their payer's node has not
    /// asked for a key for `idle_close` (the viewer is done) and it pays
    /// more than its fee. A single-payee channel idle that long and claimed
    /// in full is then closed, which returns the rest of the deposit to the
    /// viewer at once instead of after expiry. Returns what was claimed.
    pub(crate) async fn claim_due(
        &self,
        fee_multiple: u32,
        idle_close: std::time::Duration,
    ) -> Result<u128, String> {
        let held = self.vouchers.all().map_err(|e| e.to_string())?;
        if held.is_empty() || self.access.as_ref().is_none_or(|a| a.account.is_none()) {
            return Ok(0);
        }
        let chain = self.chain().await?;
        let key = self.account()?;
        let me = vilokanam_chain::account::account_id(&key);
        let now = chain.finalized_number().await.map_err(|e| e.to_string())?;
        let now_ms = now_ms();
        let idle_ms = u64::try_from(idle_close.as_millis()).unwrap_or(u64::MAX);
        // One fee estimate per round: a claim's weight does not depend on
        // the channel, and thousands of viewers must not mean thousands of
        // estimates every `claim_check_secs`.
        let mut fee = None;
        let mut total = 0;
        for r in held {
            if r.payee != me.0 {
                continue;
            }
            let Some(v) = held_voucher(&r) else {
                continue;
            };
            // What the key service checked, else (a restart) the chain.
            let known = self
                .channels
                .lock()
                .await
                .peek(&r.channel)
                .map(|k| (k.expires_at, k.max_payees, k.last_request_ms));
            let (expires_at, max_payees, last) = match known {
                Some(k) => k,
                None => match chain.channel(r.channel).await {
                    Ok(Some(c)) => (c.expires_at, c.max_payees, self.started_ms),
                    Ok(None) => {
                        // Closed on chain: nothing more can be claimed.
                        self.forget(&r).await;
                        continue;
                    }
                    Err(e) => return Err(e.to_string()),
                },
            };
            let expiring = u64::from(expires_at) <= now + u64::from(CLAIM_BEFORE_EXPIRY);
            let idle =
                max_payees == 1 && now_ms.saturating_sub(last.max(self.started_ms)) >= idle_ms;
            let pending = r.cumulative - r.claimed;
            let mut claimed_all = pending == 0;
            if pending > 0 {
                let cost = match fee {
                    Some(f) => f,
                    None => {
                        let f = chain
                            .claim_cost(&key, &v)
                            .await
                            .map_err(|e| e.to_string())?
                            .partial_fee;
                        fee = Some(f);
                        f
                    }
                };
                let worth = pending >= cost.saturating_mul(u128::from(fee_multiple));
                // Near expiry or idle, anything that pays more than its
                // fee; never at a loss.
                if worth || ((expiring || idle) && pending >= cost) {
                    match chain.claim(&key, &v).await {
                        Ok(receipt) => {
                            total += receipt.outcome.amount;
                            info!(
                                channel = r.channel,
                                amount = receipt.outcome.amount,
                                fee = receipt.fee,
                                expiring,
                                idle,
                                "claimed (due)"
                            );
                            self.vouchers
                                .set_claimed(r.channel, &r.payee, r.cumulative)
                                .map_err(|e| e.to_string())?;
                            claimed_all = true;
                        }
                        Err(vilokanam_chain::SettlementError::ChannelClosed(_)) => {
                            self.forget(&r).await;
                            continue;
                        }
                        Err(e) => warn!(channel = r.channel, error = %e, "claim failed"),
                    }
                }
            }
            if idle && claimed_all {
                self.close(chain, &key, &r).await;
            }
        }
        Ok(total)
    }

    /// The held vouchers (what this node earned), for the API.
    pub(crate) fn earnings(&self) -> Result<Vec<VoucherRecord>, NodeError> {
        Ok(self.vouchers.all()?)
    }

    // ---- the viewer's side: paying while watching ----

    /// Opens a channel paying `offer`'s payee with `budget`, for `stream`.
    pub(crate) async fn open_session(
        &self,
        stream: &StreamId,
        offer: &Offer,
        budget: u128,
        ceiling: u128,
    ) -> Result<u64, NodeError> {
        let existing = lock(&self.sessions).get(stream).cloned();
        if let Some(s) = existing {
            return Ok(s.lock().await.channel);
        }
        let fail = |reason: String| NodeError::Payment {
            stream: stream.to_string(),
            reason,
        };
        if budget < offer.price_per_sec {
            return Err(fail(format!(
                "a budget of {} does not pay one second at {}",
                vilokanam_chain::format_amount(budget),
                vilokanam_chain::format_rate(offer.price_per_sec)
            )));
        }
        let chain = self.chain().await.map_err(fail)?;
        if chain.genesis() != offer.genesis {
            return Err(fail(format!(
                "the stream is paid on chain 0x{}, but this node's chain is 0x{}",
                hex::encode(offer.genesis),
                hex::encode(chain.genesis())
            )));
        }
        let account = self.account().map_err(fail)?;
        let now = u32::try_from(
            chain
                .finalized_number()
                .await
                .map_err(|e| fail(e.to_string()))?,
        )
        .unwrap_or(u32::MAX);
        // Long enough to watch the whole budget (6 s blocks), plus the
        // grace (a day by default): the payee's time to claim.
        let seconds = u32::try_from(budget / offer.price_per_sec).unwrap_or(u32::MAX);
        let expires_at = now
            .saturating_add(seconds / 6)
            .saturating_add(self.grace_blocks);
        let terms = OpenTerms::single(AccountId::from(offer.payee), budget, expires_at);
        let opened = chain
            .open(
                &account,
                self.voucher_key.verifying_key().to_bytes(),
                &terms,
            )
            .await
            .map_err(|e| fail(e.to_string()))?;
        let channel = opened.outcome.id;
        info!(stream = %stream, channel, budget, fee = opened.fee, expires_at, "opened a channel to pay for the stream");
        // On disk before anything is signed: the deposit is on chain, and
        // this record is how the node gets the rest back if no one closes
        // the channel (also after a restart).
        let record = SessionRecord {
            stream: stream.to_string(),
            chain: offer.genesis,
            channel,
            payee: offer.payee,
            deposit: budget,
            expires_at,
            opened_ms: now_ms(),
            ..Default::default()
        };
        if let Err(e) = self.history.insert(&record) {
            warn!(channel, error = %e, "could not record the channel (it is reclaimed only while this node runs)");
        }
        let payer = Payer::new(
            self.voucher_key.clone(),
            Terms {
                chain: offer.genesis,
                channel,
                deposit: budget,
                max_payees: 1,
                named: vec![offer.payee],
                payee_cap: 0,
            },
        );
        let session = Session {
            channel,
            offer: offer.clone(),
            payer,
            last: None,
            keys: BTreeMap::new(),
            paid: BTreeMap::new(),
            paid_us: 0,
            budget,
            step: budget,
            ceiling: ceiling.max(budget),
            exhausted: false,
        };
        lock(&self.sessions).insert(stream.clone(), Arc::new(tokio::sync::Mutex::new(session)));
        Ok(channel)
    }

    /// Whether this node pays for `stream`.
    pub(crate) fn paying(&self, stream: &StreamId) -> bool {
        lock(&self.sessions).contains_key(stream)
    }

    /// Ends the session for `stream` (unwatch, shutdown): hands the
    /// latest voucher to the key server, so the creator holds everything
    /// this node signed (the answer does not matter).
    pub(crate) async fn end_session(&self, swarm: &Client, stream: &StreamId) {
        lock(&self.passes).remove(stream);
        let Some(session) = lock(&self.sessions).remove(stream) else {
            return;
        };
        let s = session.lock().await;
        let _ = self
            .history
            .update(s.channel, |r| r.ended_ms = Some(now_ms()));
        let (Some(last), Some(server)) = (&s.last, s.offer.key_servers.first()) else {
            return;
        };
        let Ok(peer) = vilokanam_swarm::libp2p::PeerId::from_bytes(&server.peer_id) else {
            return;
        };
        let request = KeyRequest {
            stream: stream.clone(),
            epoch: epoch_at(now_ms(), s.offer.epoch_secs),
            channel: s.channel,
            payment: Some(Payment {
                cumulative: last.cumulative,
                signature: Sig(last.signature),
            }),
            holder: None,
        };
        let addrs = server.addrs.iter().filter_map(|a| a.parse().ok()).collect();
        let _ = tokio::time::timeout(
            std::time::Duration::from_secs(10),
            swarm.request_key(peer, addrs, request),
        )
        .await;
        info!(stream = %stream, channel = s.channel, spent = last.cumulative, "stopped paying; last voucher handed over");
    }

    /// Streams this node pays for.
    pub(crate) fn paid_streams(&self) -> Vec<StreamId> {
        lock(&self.sessions).keys().cloned().collect()
    }

    /// Pays for chunk `seq` (`duration_us` of media) and returns the key of
    /// `epoch`, buying it from the offer's key server if needed.
    pub(crate) async fn pay_and_key(
        &self,
        swarm: &Client,
        stream: &StreamId,
        seq: u64,
        part: Option<u16>,
        epoch: u64,
        duration_us: u64,
    ) -> Result<EpochKey, NodeError> {
        let session =
            lock(&self.sessions)
                .get(stream)
                .cloned()
                .ok_or_else(|| NodeError::Unpaid {
                    stream: stream.to_string(),
                    price: 0,
                    what: format!("epoch {epoch}"),
                })?;
        let mut s = session.lock().await;
        let fail = |reason: String| NodeError::Payment {
            stream: stream.to_string(),
            reason,
        };
        let paid = s.paid.get(&seq);
        let covered = paid.is_some_and(|p| p.whole || part.is_some_and(|k| p.parts.contains(&k)));
        // A segment fetched whole pays what its parts did not; its parts
        // together never cost more than the longest segment (the bound a
        // creator's signed duration has for a whole segment too).
        let paid_us_seg = paid.map_or(0, |p| p.us);
        let due_us = match part {
            Some(_) => duration_us.min(MAX_SEGMENT_US.saturating_sub(paid_us_seg)),
            None => duration_us.saturating_sub(paid_us_seg),
        };
        if !covered && due_us > 0 {
            if s.exhausted {
                return Err(NodeError::BudgetExhausted {
                    stream: stream.to_string(),
                    seconds: paid_us_to_secs(s.paid_us),
                    spent: s.payer.total_owed(),
                    budget: s.budget,
                });
            }
            // Pay for the media time, rounded up to whole planck.
            let paid_us = s.paid_us.saturating_add(due_us);
            let due =
                (s.offer.price_per_sec.saturating_mul(u128::from(paid_us))).div_ceil(1_000_000);
            let amount = due.saturating_sub(s.payer.total_owed());
            let payee = s.offer.payee;
            match self.pay(stream, &mut s, payee, amount).await? {
                Ok(v) => s.last = Some(v),
                Err(VoucherError::DepositExhausted { deposit, owed, .. }) => {
                    s.exhausted = true;
                    return Err(NodeError::BudgetExhausted {
                        stream: stream.to_string(),
                        seconds: paid_us_to_secs(s.paid_us),
                        spent: owed,
                        budget: deposit,
                    });
                }
                Err(e) => return Err(fail(e.to_string())),
            }
            s.paid_us = paid_us;
            let (spent, seconds_paid) = (s.payer.total_owed(), paid_us_to_secs(paid_us));
            let _ = self.history.update(s.channel, |r| {
                r.spent = spent;
                r.seconds_paid = seconds_paid;
            });
        }
        if !covered {
            let e = s.paid.entry(seq).or_default();
            e.us = e.us.saturating_add(due_us);
            match part {
                Some(k) => {
                    e.parts.insert(k);
                }
                None => e.whole = true,
            }
            while s.paid.len() > SEQS_KEPT {
                s.paid.pop_first();
            }
        }
        if let Some(k) = s.keys.get(&epoch) {
            return Ok(k.clone());
        }
        let key = self.buy_key(swarm, &mut s, stream, epoch).await?;
        s.keys.insert(epoch, key.clone());
        while s.keys.len() > KEYS_KEPT {
            s.keys.pop_first();
        }
        Ok(key)
    }

    /// Signs `amount` more to `payee`, topping the channel up first (by one
    /// budget, within the ceiling) if the deposit cannot take it.
    async fn pay(
        &self,
        stream: &StreamId,
        s: &mut Session,
        payee: [u8; 32],
        amount: u128,
    ) -> Result<Result<Voucher, VoucherError>, NodeError> {
        let mut paid = s.payer.pay(payee, amount);
        while let Err(VoucherError::DepositExhausted { .. }) = paid {
            let more = s.step.min(s.ceiling.saturating_sub(s.budget));
            if more == 0 {
                break;
            }
            self.top_up(stream, s, more).await?;
            paid = s.payer.pay(payee, amount);
        }
        Ok(paid)
    }

    /// Adds `amount` to the session's channel on chain (one transaction).
    async fn top_up(
        &self,
        stream: &StreamId,
        s: &mut Session,
        amount: u128,
    ) -> Result<(), NodeError> {
        let fail = |reason: String| NodeError::Payment {
            stream: stream.to_string(),
            reason: format!("topping up: {reason}"),
        };
        let chain = self.chain().await.map_err(fail)?;
        let account = self.account().map_err(fail)?;
        let r = chain
            .top_up(&account, s.channel, amount, 0)
            .await
            .map_err(|e| fail(e.to_string()))?;
        s.payer.top_up(amount).map_err(|e| fail(e.to_string()))?;
        s.budget = s.budget.saturating_add(amount);
        let deposit = s.budget;
        let _ = self.history.update(s.channel, |r| r.deposit = deposit);
        info!(stream = %stream, channel = s.channel, amount, deposit = r.outcome.0, fee = r.fee, "topped up the channel");
        Ok(())
    }

    async fn buy_key(
        &self,
        swarm: &Client,
        s: &mut Session,
        stream: &StreamId,
        epoch: u64,
    ) -> Result<EpochKey, NodeError> {
        let server = s
            .offer
            .key_servers
            .first()
            .cloned()
            .ok_or_else(|| NodeError::Payment {
                stream: stream.to_string(),
                reason: "the offer names no key server".into(),
            })?;
        let peer = vilokanam_swarm::libp2p::PeerId::from_bytes(&server.peer_id).map_err(|_| {
            NodeError::Payment {
                stream: stream.to_string(),
                reason: "the offer's key server id is not a peer id".into(),
            }
        })?;
        let addrs = server
            .addrs
            .iter()
            .filter_map(|a| a.parse().ok())
            .collect::<Vec<_>>();
        // Once: a partial first epoch is paid in full when the next key is
        // bought (the key server counts whole epochs).
        for attempt in 0..2 {
            let request = KeyRequest {
                stream: stream.clone(),
                epoch,
                channel: s.channel,
                payment: s.last.as_ref().map(|v| Payment {
                    cumulative: v.cumulative,
                    signature: Sig(v.signature),
                }),
                holder: Some(self.holder),
            };
            let response = swarm
                .request_key(peer, addrs.clone(), request)
                .await
                .map_err(|e| NodeError::Payment {
                    stream: stream.to_string(),
                    reason: e.to_string(),
                })?;
            match response {
                KeyResponse::Granted {
                    epoch: e,
                    key,
                    pass,
                } if e == epoch => {
                    // The creator's pass for this node's user, when it
                    // checks (signed by the stream's creator, for us).
                    if let Some(p) = pass.filter(|p| {
                        p.verify().is_ok()
                            && p.pass.holder == self.holder
                            && p.pass.stream == *stream
                    }) {
                        let mut passes = lock(&self.passes);
                        // Expired passes go (paid VODs add streams that
                        // no unwatch removes).
                        passes.retain(|_, p| p.pass.until_ms > now_ms());
                        passes.insert(stream.clone(), p);
                    }
                    return open_key(&key.into(), &self.voucher_key, stream, epoch).map_err(|e| {
                        NodeError::Payment {
                            stream: stream.to_string(),
                            reason: e.to_string(),
                        }
                    });
                }
                KeyResponse::Refused(KeyRefusal::Unpaid { required, paid })
                    if attempt == 0
                        && required.saturating_sub(paid)
                            <= s.offer.price_per_sec * u128::from(s.offer.epoch_secs) =>
                {
                    let more = required.saturating_sub(s.payer.total_owed());
                    let payee = s.offer.payee;
                    match self.pay(stream, s, payee, more).await? {
                        Ok(v) => s.last = Some(v),
                        Err(e) => {
                            return Err(NodeError::Payment {
                                stream: stream.to_string(),
                                reason: e.to_string(),
                            })
                        }
                    }
                }
                KeyResponse::Refused(reason) => {
                    return Err(NodeError::KeyRefused {
                        stream: stream.to_string(),
                        epoch,
                        reason,
                    })
                }
                KeyResponse::Granted { .. } => break,
            }
        }
        Err(NodeError::Payment {
            stream: stream.to_string(),
            reason: format!("no key for epoch {epoch}"),
        })
    }

    /// Sets the payment gauges from the held vouchers and the sessions.
    pub(crate) async fn update_metrics(&self, m: &super::metrics::NodeMetrics) {
        if let Ok(held) = self.vouchers.all() {
            let earned: u128 = held.iter().map(|r| r.cumulative).sum();
            let claimed: u128 = held.iter().map(|r| r.claimed).sum();
            m.earned_planck
                .set(i64::try_from(earned).unwrap_or(i64::MAX));
            m.claimed_planck
                .set(i64::try_from(claimed).unwrap_or(i64::MAX));
        }
        let spent: u128 = self.spending().await.iter().map(|s| s.spent).sum();
        m.spent_planck.set(i64::try_from(spent).unwrap_or(i64::MAX));
        m.voucher_flushes
            .set(i64::try_from(self.vouchers.group_flushes()).unwrap_or(i64::MAX));
    }

    /// What this node pays and paid: the sessions on, then the ended
    /// ones on disk (oldest channel first).
    pub(crate) async fn spending(&self) -> Vec<Spending> {
        let all: Vec<_> = lock(&self.sessions)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = Vec::new();
        for (stream, s) in all {
            let s = s.lock().await;
            let spent = s.payer.total_owed();
            let expires_at = self
                .history
                .get(s.channel)
                .ok()
                .flatten()
                .map_or(0, |r| r.expires_at);
            out.push(Spending {
                stream,
                channel: s.channel,
                seconds_paid: paid_us_to_secs(s.paid_us),
                spent,
                budget: s.budget,
                seconds_left: u64::try_from(s.payer.remaining() / s.offer.price_per_sec.max(1))
                    .unwrap_or(u64::MAX),
                state: SpendingState::Watching,
                expires_at,
            });
        }
        let live: BTreeSet<u64> = out.iter().map(|s| s.channel).collect();
        for r in self.history.all().unwrap_or_default() {
            if live.contains(&r.channel) {
                continue;
            }
            let Ok(stream) = r.stream.parse::<StreamId>() else {
                continue;
            };
            out.push(Spending {
                stream,
                channel: r.channel,
                seconds_paid: r.seconds_paid,
                spent: r.spent,
                budget: r.deposit,
                seconds_left: 0,
                state: match r.settled {
                    None => SpendingState::Ended,
                    Some(Settled::ClosedByPayee) => SpendingState::Closed,
                    Some(Settled::Reclaimed { refunded }) => SpendingState::Reclaimed { refunded },
                },
                expires_at: r.expires_at,
            });
        }
        out
    }

    /// The viewer's reclaim: every ended session whose channel is still
    /// open is closed by this node (its payer) once it has expired, which
    /// returns the rest of the deposit; one the payee closed is marked so.
    /// Sessions of a previous run (a crash) count as ended. Returns what
    /// came back.
    pub(crate) async fn reclaim_expired(&self) -> Result<u128, String> {
        let live: BTreeSet<u64> = {
            let sessions: Vec<_> = lock(&self.sessions).values().cloned().collect();
            let mut live = BTreeSet::new();
            for s in sessions {
                live.insert(s.lock().await.channel);
            }
            live
        };
        let pending: Vec<_> = self
            .history
            .all()
            .map_err(|e| e.to_string())?
            .into_iter()
            .filter(|r| r.settled.is_none() && !live.contains(&r.channel))
            .collect();
        if pending.is_empty() || self.access.as_ref().is_none_or(|a| a.account.is_none()) {
            return Ok(0);
        }
        let chain = self.chain().await?;
        let now = chain.finalized_number().await.map_err(|e| e.to_string())?;
        let key = self.account()?;
        let me = vilokanam_chain::account::account_id(&key);
        let mut back = 0;
        for r in pending {
            if r.chain != chain.genesis() {
                continue;
            }
            match chain.channel(r.channel).await.map_err(|e| e.to_string())? {
                None => {
                    info!(
                        channel = r.channel,
                        "the payee closed the channel: the rest of the deposit came back"
                    );
                    self.history
                        .settle(r.channel, Settled::ClosedByPayee)
                        .map_err(|e| e.to_string())?;
                }
                Some(c) if c.payer != me => {
                    warn!(
                        channel = r.channel,
                        "the channel's payer is not this node's account: left alone"
                    );
                }
                Some(c) if u64::from(c.expires_at) <= now => {
                    match chain.close(&key, r.channel).await {
                        Ok(closed) => {
                            let refunded = closed.outcome.refunded;
                            info!(
                                channel = r.channel,
                                refunded,
                                paid = closed.outcome.paid,
                                fee = closed.fee,
                                "reclaimed the rest of an expired channel's deposit"
                            );
                            self.history
                                .settle(r.channel, Settled::Reclaimed { refunded })
                                .map_err(|e| e.to_string())?;
                            back += refunded;
                        }
                        Err(e) => {
                            warn!(channel = r.channel, error = %e, "reclaim failed (retried next time)")
                        }
                    }
                }
                Some(_) => {}
            }
        }
        Ok(back)
    }
}

/// A held record as the voucher it stores (`None`: a malformed signature).
pub(crate) fn held_voucher(r: &VoucherRecord) -> Option<Voucher> {
    Some(Voucher {
        chain: r.chain,
        channel: r.channel,
        payee: r.payee,
        cumulative: r.cumulative,
        signature: <[u8; 64]>::try_from(r.signature.as_slice()).ok()?,
    })
}

fn paid_us_to_secs(us: u64) -> u64 {
    us / 1_000_000
}
