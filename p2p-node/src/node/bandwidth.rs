//! The bandwidth market on this node (issue #9): paying the peers it
//! pulls payloads from, and being paid by the peers it serves.
//!
//! - **Serving.** The swarm's credit ledger decides whom to serve
//!   (`vilokanam_swarm::protocols::bandwidth`); this service checks the
//!   vouchers peers send (against the chain: the channel, its voucher key,
//!   a payee slot, the cap), keeps the best one per (channel, payee) in
//!   sled before crediting the peer, and the payments service claims them
//!   like any other voucher.
//! - **Pulling.** Each peer tells its terms once per connection; a fee
//!   within `max_fee` on this node's chain makes the peer usable (the
//!   scheduler prefers the cheapest holder), any other fee makes it
//!   unusable. After a payload pulled from a charging peer verified, this
//!   node signs a voucher for the bytes (cumulative) on its *bandwidth
//!   channel*: one channel per node run, opened on first need, whose
//!   payees are all late (bound at their first claim), each capped at
//!   `deposit / slots` so that no collateral is needed. However many
//!   peers it pays, that is one transaction.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex};

use ed25519_dalek::VerifyingKey;
use lru::LruCache;
use tracing::{debug, info, warn};
use vilokanam_chain::channel::{Payee, Payer, Terms};
use vilokanam_chain::voucher::{Voucher, VoucherError};
use vilokanam_chain::{AccountId, OpenTerms};
use vilokanam_storage::{SessionRecord, VoucherRecord};
use vilokanam_swarm::libp2p::PeerId;
use vilokanam_swarm::protocols::bandwidth::{Acceptance, Purchases};
use vilokanam_swarm::wire::Sig;
use vilokanam_swarm::{BandwidthPayment, BandwidthTerms, PeerPrice};

use super::payments::MIN_BLOCKS_LEFT;
use super::publisher::now_ms;
use super::Inner;

/// The `stream` of a held bandwidth voucher, and of the payer's channel
/// record: bandwidth pays for bytes of any stream.
pub const BANDWIDTH: &str = "bandwidth";

/// Channels checked as a payee, kept at most.
const MAX_CHECKED: usize = 4096;

/// Servers a puller keeps accounts of.
const MAX_SERVERS: usize = 1024;

/// Vouchers from peers checked at once; past it one is dropped (counted
/// `busy`): each is cumulative, so the payer's next one, or the one it
/// sends again when asked to pay, covers it.
const MAX_CHECKS: usize = 64;

/// Refused vouchers after which a peer's vouchers are ignored without a
/// chain lookup for the rest of the run (peers remembered at most: the
/// channel cache's bound).
const MAX_STRIKES: u32 = 8;

/// What this node charges and pays for bandwidth.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BandwidthSettings {
    /// Planck per MiB it charges (0: free).
    pub fee_per_mib: u64,
    /// Unpaid bytes it serves a peer.
    pub credit_bytes: u64,
    /// The most it pays per MiB (0: only free peers).
    pub max_fee_per_mib: u64,
    /// Deposit of its bandwidth channel (planck).
    pub deposit: u128,
    /// Payees one bandwidth channel can pay (each capped at
    /// `deposit / slots`).
    pub slots: u32,
}

/// A channel this node pays bandwidth from.
struct PayingChannel {
    payer: Payer,
    expires_at: u32,
    /// When to stop paying on it and open the next one: before its payees
    /// start refusing it as too close to expiry (at 6 s blocks, with a
    /// tenth of its life left for their claims).
    retire_at: std::time::Instant,
}

/// Seconds per block the channel's lifetime is estimated with (the
/// runtime's slot duration).
const BLOCK_SECS: u64 = 6;

/// A payer's channel, checked as its payee.
struct Checked {
    payee: Payee,
    /// When it was last checked on the chain, at which block, and when it
    /// expires: it is checked again every [`RECHECK`], and as its expiry
    /// nears (a payer may close it once expired, or fill its late payee
    /// slots with other claims after this node's check).
    at: std::time::Instant,
    block: u64,
    expires_at: u32,
}

/// How long a channel's check on the chain holds before it is repeated.
const RECHECK: std::time::Duration = std::time::Duration::from_secs(60);

impl Checked {
    /// Whether to look the channel up again before crediting more on it.
    fn stale(&self) -> bool {
        let blocks = self.at.elapsed().as_secs() / BLOCK_SECS;
        let now = self.block.saturating_add(blocks);
        self.at.elapsed() >= RECHECK
            || now.saturating_add(u64::from(MIN_BLOCKS_LEFT)) > u64::from(self.expires_at)
    }
}

/// What this node paid one server, for the API.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Paid {
    /// The server.
    pub peer: PeerId,
    /// Its fee (planck/MiB), once known.
    pub fee_per_mib: Option<u64>,
    /// Payload bytes pulled from it that verified.
    pub verified_bytes: u64,
    /// What was signed over to it.
    pub paid: u128,
}

/// The bandwidth service.
pub(crate) struct Bandwidth {
    settings: BandwidthSettings,
    purchases: Mutex<Purchases>,
    /// The bandwidth channel, once opened (a tokio lock: paying waits for
    /// the open, and payments are signed one at a time).
    paying: tokio::sync::Mutex<Vec<PayingChannel>>,
    checked: tokio::sync::Mutex<LruCache<u64, Checked>>,
    /// Channels that failed their check, and why (bounded like `checked`):
    /// a payer that keeps sending a bad one is not looked up again.
    refused: Mutex<LruCache<u64, (String, std::time::Instant)>>,
    /// Voucher checks under way (a flood of vouchers for made-up channels
    /// must not become a flood of chain lookups).
    checks: tokio::sync::Semaphore,
    /// Refused vouchers per peer.
    strikes: Mutex<LruCache<PeerId, u32>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Bandwidth {
    /// The service; `chain` is the genesis of this node's chain, if any.
    pub(crate) fn new(settings: BandwidthSettings, chain: Option<[u8; 32]>) -> Self {
        let cap = NonZeroUsize::new(MAX_CHECKED).unwrap_or(NonZeroUsize::MIN);
        Bandwidth {
            settings,
            purchases: Mutex::new(Purchases::new(settings.max_fee_per_mib, chain, MAX_SERVERS)),
            paying: tokio::sync::Mutex::new(Vec::new()),
            checked: tokio::sync::Mutex::new(LruCache::new(cap)),
            refused: Mutex::new(LruCache::new(cap)),
            checks: tokio::sync::Semaphore::new(MAX_CHECKS),
            strikes: Mutex::new(LruCache::new(cap)),
        }
    }

    /// The settings.
    pub(crate) fn settings(&self) -> BandwidthSettings {
        self.settings
    }

    /// What this node paid each server it pulled from.
    pub(crate) fn paid(&self) -> Vec<Paid> {
        lock(&self.purchases)
            .all()
            .into_iter()
            .map(|(peer, p)| Paid {
                peer,
                fee_per_mib: p.terms.map(|t| t.fee_per_mib),
                verified_bytes: p.verified_bytes,
                paid: p.paid,
            })
            .collect()
    }

    /// The newest bandwidth channel this node pays from, if any.
    pub(crate) async fn channel(&self) -> Option<u64> {
        self.paying
            .lock()
            .await
            .last()
            .map(|c| c.payer.terms().channel)
    }
}

/// A peer told its terms: decide whether this node pays them.
pub(crate) async fn on_terms(inner: &Inner, peer: PeerId, terms: BandwidthTerms) {
    let acceptance = lock(&inner.bandwidth.purchases).set_terms(peer, terms);
    let price = match acceptance {
        Acceptance::Free => PeerPrice::Usable(0),
        Acceptance::Pays(fee) => PeerPrice::Usable(fee),
        Acceptance::TooDear(fee) => {
            info!(%peer, fee_per_mib = fee, max_fee_per_mib = inner.bandwidth.settings.max_fee_per_mib, "peer charges more than this node pays: not pulling from it");
            PeerPrice::Unusable
        }
        Acceptance::WrongChain => {
            info!(%peer, "peer is paid on another chain: not pulling from it");
            PeerPrice::Unusable
        }
    };
    let _ = inner.swarm.set_peer_price(peer, price).await;
}

/// A payload pulled from `peer` verified: pay for it if `peer` charges.
pub(crate) async fn on_verified(inner: &Arc<Inner>, peer: PeerId, bytes: u64) {
    let due = {
        let mut p = lock(&inner.bandwidth.purchases);
        p.verified(peer, bytes);
        p.due(&peer).is_some()
    };
    if due {
        let inner = inner.clone();
        tokio::spawn(async move { pay_due(&inner, peer).await });
    }
}

/// Bandwidth channels a node pays from at once. A channel pays up to
/// `bandwidth_slots` payees; a node that pulls from more servers pays the
/// new ones from a further channel, and keeps paying the earlier ones
/// from theirs. Past this many the oldest is ended (its payees move to a
/// newer one).
const MAX_PAYING: usize = 4;

/// Pays `peer` what its verified bytes cost and is not paid yet.
pub(crate) async fn pay_due(inner: &Inner, peer: PeerId) {
    let bw = &inner.bandwidth;
    let mut paying = bw.paying.lock().await;
    // Channels near their expiry pay nobody more.
    let now = std::time::Instant::now();
    while let Some(i) = paying.iter().position(|c| now >= c.retire_at) {
        let old = paying.remove(i);
        info!(
            channel = old.payer.terms().channel,
            "bandwidth channel nears expiry: retired"
        );
        end_channel(inner, &old).await;
    }
    // Under the lock: a due computed before it may have been paid since.
    let Some((terms, due)) = lock(&bw.purchases).due(&peer) else {
        return;
    };
    // The newest channel that pays this payee already, then the others
    // from the newest: the first that can pay `due` signs.
    let mut order: Vec<usize> = (0..paying.len()).rev().collect();
    order.sort_by_key(|i| paying[*i].payer.owed(&terms.payee) == 0);
    let mut signed = None;
    for i in order {
        match paying[i].payer.pay(terms.payee, due) {
            Ok(v) => {
                signed = Some((i, v));
                break;
            }
            Err(
                VoucherError::DepositExhausted { .. }
                | VoucherError::ExceedsPayeeCap { .. }
                | VoucherError::TooManyPayees { .. },
            ) => continue,
            Err(e) => {
                pay_failed(inner, "error");
                warn!(%peer, error = %e, "cannot sign a bandwidth voucher");
                return;
            }
        }
    }
    if signed.is_none() {
        // None can: open the next one, so that a long watch never stalls.
        // The sessions of those ended are closed by the payments service
        // after expiry, returning what their payees did not claim.
        match open_channel(inner).await {
            Ok(mut next) => match next.payer.pay(terms.payee, due) {
                Ok(v) => {
                    paying.push(next);
                    if paying.len() > MAX_PAYING {
                        let old = paying.remove(0);
                        end_channel(inner, &old).await;
                    }
                    signed = Some((paying.len() - 1, v));
                }
                Err(e) => {
                    paying.push(next);
                    pay_failed(inner, "error");
                    warn!(%peer, error = %e, "a new bandwidth channel cannot pay this amount");
                    return;
                }
            },
            Err(err) => {
                pay_failed(inner, "exhausted");
                warn!(%peer, error = %err, "cannot open a bandwidth channel: the peer will stop serving this node");
                return;
            }
        }
    }
    let Some((i, voucher)) = signed else {
        return;
    };
    let channel = &paying[i];
    let spent = channel.payer.total_owed();
    let ch = voucher.channel;
    // Recorded before the lock goes: another payment to this peer must
    // not sign the same due again.
    lock(&bw.purchases).record_paid(peer, due);
    drop(paying);
    let _ = inner.store.sessions.update(ch, |r| r.spent = spent);
    inner.metrics.bandwidth_vouchers_out.inc();
    inner
        .metrics
        .bandwidth_spent_planck
        .set(i64::try_from(spent).unwrap_or(i64::MAX));
    debug!(%peer, channel = ch, amount = due, cumulative = voucher.cumulative, "paid for bandwidth");
    send(inner, peer, &voucher).await;
}

/// Sends `peer` a voucher. One not received is only counted: the next
/// payment carries a higher cumulative amount, which covers it, and a
/// peer that asks to be paid gets the newest one again ([`on_demand`]).
async fn send(inner: &Inner, peer: PeerId, voucher: &Voucher) {
    let payment = BandwidthPayment {
        channel: voucher.channel,
        cumulative: voucher.cumulative,
        signature: Sig(voucher.signature),
    };
    if !matches!(inner.swarm.pay(peer, payment).await, Ok(true)) {
        pay_failed(inner, "undelivered");
        debug!(%peer, channel = voucher.channel, "bandwidth voucher not delivered");
    }
}

/// Pays every server what is due now (shutdown: what verified last).
pub(crate) async fn settle(inner: &Inner) {
    let due: Vec<PeerId> = {
        let p = lock(&inner.bandwidth.purchases);
        p.all()
            .into_iter()
            .filter(|(peer, _)| p.due(peer).is_some())
            .map(|(peer, _)| peer)
            .collect()
    };
    for peer in due {
        pay_due(inner, peer).await;
    }
}

fn pay_failed(inner: &Inner, reason: &'static str) {
    super::metrics::NodeMetrics::inc(&inner.metrics.bandwidth_pay_failed, "reason", reason);
}

/// Opens this node's bandwidth channel: no payee named, `slots` late
/// payees each capped at `deposit / slots` (so no collateral), expiring
/// after the grace period (the payees' time to claim).
async fn open_channel(inner: &Inner) -> Result<PayingChannel, String> {
    let s = inner.bandwidth.settings;
    if s.deposit == 0 || s.slots == 0 {
        return Err("bandwidth_deposit and bandwidth_slots must be set to pay fees".into());
    }
    let chain = inner.payments.chain().await?;
    let account = inner.payments.account()?;
    let now = u32::try_from(chain.finalized_number().await.map_err(|e| e.to_string())?)
        .unwrap_or(u32::MAX);
    let expires_at = now.saturating_add(inner.config.channel_grace_blocks);
    let cap = s.deposit / u128::from(s.slots);
    let mut terms = OpenTerms {
        payees: vec![],
        max_payees: s.slots,
        payee_cap: cap,
        deposit: s.deposit,
        collateral: 0,
        expires_at,
    };
    // Zero with every payee capped at deposit / slots; computed so that
    // the terms stay acceptable if that rule changes.
    terms.collateral = terms.required_collateral().unwrap_or(0);
    let voucher_key = inner.payments.voucher_key().verifying_key().to_bytes();
    let opened = chain
        .open(&account, voucher_key, &terms)
        .await
        .map_err(|e| e.to_string())?;
    let channel = opened.outcome.id;
    info!(
        channel,
        deposit = s.deposit,
        slots = s.slots,
        cap,
        fee = opened.fee,
        expires_at,
        "opened the bandwidth channel"
    );
    // On disk before anything is signed, as a viewer's channel: the
    // payments service closes it after expiry and takes the rest back.
    let record = SessionRecord {
        stream: BANDWIDTH.into(),
        chain: chain.genesis(),
        channel,
        payee: [0; 32],
        deposit: s.deposit,
        expires_at,
        opened_ms: now_ms(),
        ..Default::default()
    };
    if let Err(e) = inner.store.sessions.insert(&record) {
        warn!(channel, error = %e, "could not record the bandwidth channel");
    }
    inner.metrics.bandwidth_channels_opened.inc();
    Ok(PayingChannel {
        payer: Payer::new(
            inner.payments.voucher_key().clone(),
            Terms {
                chain: chain.genesis(),
                channel,
                deposit: s.deposit,
                max_payees: s.slots,
                named: vec![],
                payee_cap: cap,
            },
        ),
        expires_at,
        retire_at: std::time::Instant::now()
            + std::time::Duration::from_secs(
                u64::from(inner.config.channel_grace_blocks) * BLOCK_SECS * 9 / 10,
            ),
    })
}

/// At shutdown: the bandwidth channel's session ends (the payments
/// service closes it after expiry, returning what payees did not claim).
pub(crate) async fn end(inner: &Inner) {
    for c in inner.bandwidth.paying.lock().await.iter() {
        end_channel(inner, c).await;
    }
}

/// Marks `c`'s session ended: nothing more is signed on it.
async fn end_channel(inner: &Inner, c: &PayingChannel) {
    let ch = c.payer.terms().channel;
    let _ = inner
        .store
        .sessions
        .update(ch, |r| r.ended_ms = Some(now_ms()));
    info!(
        channel = ch,
        spent = c.payer.total_owed(),
        expires_at = c.expires_at,
        "bandwidth channel ended"
    );
}

/// A peer sent a voucher for bandwidth: check it, keep it, credit the peer.
pub(crate) async fn on_payment(inner: &Inner, peer: PeerId, payment: BandwidthPayment) {
    let bw = &inner.bandwidth;
    let count = |label: &'static str| {
        super::metrics::NodeMetrics::inc(&inner.metrics.bandwidth_vouchers_refused, "reason", label)
    };
    let refuse = |label: &'static str, why: &str| {
        count(label);
        debug!(%peer, channel = payment.channel, reason = why, "bandwidth voucher dropped");
    };
    if lock(&bw.strikes)
        .peek(&peer)
        .is_some_and(|n| *n >= MAX_STRIKES)
    {
        return refuse("ignored", "this peer sent too many bad vouchers");
    }
    // Only a voucher that needs a chain lookup takes one of the bounded
    // check slots: a flood of lookups must not hold up vouchers on
    // channels already checked.
    let lookup = bw
        .checked
        .lock()
        .await
        .peek(&payment.channel)
        .is_none_or(Checked::stale);
    let _permit = if lookup {
        match bw.checks.try_acquire() {
            Ok(p) => Some(p),
            Err(_) => return refuse("busy", "too many vouchers being checked"),
        }
    } else {
        None
    };
    match accept(inner, payment).await {
        Ok(raised) => {
            if raised > 0 {
                let _ = inner.swarm.credit(peer, raised).await;
            }
        }
        Err(reason) => {
            count(reason.0);
            if matches!(reason.0, "bad_channel" | "bad_voucher" | "free") {
                let mut strikes = lock(&bw.strikes);
                let n = strikes.get_or_insert_mut(peer, || 0);
                *n += 1;
            }
            warn!(%peer, channel = payment.channel, reason = %reason.1, "bandwidth voucher refused");
        }
    }
}

/// A peer refuses to serve more until paid (it says it was paid
/// `their_paid`): pay what is due, or, when everything verified is paid
/// already but the peer counts less (a voucher lost on the way, or
/// dropped while it was busy), send the newest voucher again.
pub(crate) async fn on_demand(inner: &Inner, peer: PeerId, their_paid: u128) {
    let (due, ours, terms) = {
        let p = lock(&inner.bandwidth.purchases);
        let mine = p.get(&peer);
        (
            p.due(&peer).is_some(),
            mine.map_or(0, |m| m.paid),
            mine.and_then(|m| m.terms),
        )
    };
    if due {
        return pay_due(inner, peer).await;
    }
    let Some(terms) = terms.filter(|_| their_paid < ours) else {
        return;
    };
    let voucher = {
        let mut paying = inner.bandwidth.paying.lock().await;
        let Some(channel) = paying
            .iter_mut()
            .rev()
            .find(|c| c.payer.owed(&terms.payee) > 0)
        else {
            return;
        };
        // Nothing added: the same cumulative amount, signed again.
        match channel.payer.pay(terms.payee, 0) {
            Ok(v) => v,
            Err(_) => return,
        }
    };
    debug!(%peer, channel = voucher.channel, cumulative = voucher.cumulative, their_paid, "sending the newest bandwidth voucher again");
    send(inner, peer, &voucher).await;
}

/// Why a voucher was refused: a metric label and the precise reason.
struct Refusal(&'static str, String);

async fn accept(inner: &Inner, payment: BandwidthPayment) -> Result<u128, Refusal> {
    let bw = &inner.bandwidth;
    let terms = inner.bandwidth_terms;
    if terms.is_free() {
        return Err(Refusal(
            "free",
            "this node charges nothing: no voucher is due".into(),
        ));
    }
    // A channel refused within the last [`RECHECK`] is not looked up
    // again (and costs its sender no strike: it costs nothing).
    if let Some((why, at)) = lock(&bw.refused).get(&payment.channel).cloned() {
        if at.elapsed() < RECHECK {
            return Err(Refusal("refused_before", why));
        }
    }
    let known = bw.checked.lock().await.contains(&payment.channel);
    if !known {
        match check_channel(inner, &terms, payment.channel).await {
            Ok(c) => {
                // Two first vouchers of a channel checked at once: the
                // first check's payee (which may have accepted a voucher
                // since) stays.
                let mut checked = bw.checked.lock().await;
                if !checked.contains(&payment.channel) {
                    checked.put(payment.channel, c);
                }
            }
            Err(Refusal(label, why)) => {
                if label == "bad_channel" {
                    lock(&bw.refused)
                        .put(payment.channel, (why.clone(), std::time::Instant::now()));
                }
                return Err(Refusal(label, why));
            }
        }
    }
    let stale = bw
        .checked
        .lock()
        .await
        .peek(&payment.channel)
        .is_some_and(Checked::stale);
    if stale {
        match usable(inner, &terms, payment.channel).await {
            Ok(u) => {
                if let Some(c) = bw.checked.lock().await.get_mut(&payment.channel) {
                    c.at = std::time::Instant::now();
                    c.block = u.block;
                    c.expires_at = u.info.expires_at;
                }
            }
            Err(Refusal(label, why)) => {
                if label == "bad_channel" {
                    bw.checked.lock().await.pop(&payment.channel);
                    lock(&bw.refused)
                        .put(payment.channel, (why.clone(), std::time::Instant::now()));
                }
                return Err(Refusal(label, why));
            }
        }
    }
    let v = Voucher {
        chain: terms.chain,
        channel: payment.channel,
        payee: terms.payee,
        cumulative: payment.cumulative,
        signature: payment.signature.0,
    };
    let kept = {
        let mut checked = bw.checked.lock().await;
        let c = checked
            .get_mut(&payment.channel)
            .ok_or_else(|| Refusal("busy", "channel table full".into()))?;
        let raised = match c.payee.accept(v.clone()) {
            Ok(r) => r,
            // An older voucher of the same payer (two payments that
            // crossed on the way) raises nothing and costs nothing.
            Err(VoucherError::Replayed(_) | VoucherError::Outdated { .. }) => return Ok(0),
            Err(e) => return Err(Refusal("bad_voucher", e.to_string())),
        };
        let rec = VoucherRecord {
            stream: BANDWIDTH.into(),
            chain: v.chain,
            channel: v.channel,
            payee: v.payee,
            cumulative: v.cumulative,
            signature: v.signature.to_vec(),
            claimed: 0,
            seconds: 0,
        };
        let kept = inner
            .store
            .vouchers
            .keep_best(rec)
            .map_err(|e| Refusal("storage", e.to_string()))?;
        (kept, raised)
    };
    // On disk before the peer is served more on it.
    kept.0
        .durable()
        .await
        .map_err(|e| Refusal("storage", e.to_string()))?;
    inner.metrics.bandwidth_vouchers_accepted.inc();
    Ok(kept.1)
}

/// What a channel check on the chain found usable: its state, its payees,
/// the block it was read at.
struct Usable {
    info: vilokanam_chain::ChannelInfo,
    payees: Vec<vilokanam_chain::PayeeInfo>,
    block: u64,
}

/// Whether `channel` can pay this node now: it exists, runs long enough to
/// claim, and has bound this payee or has a slot left for it.
async fn usable(inner: &Inner, terms: &BandwidthTerms, channel: u64) -> Result<Usable, Refusal> {
    let bad = |why: String| Refusal("bad_channel", why);
    let chain = inner
        .payments
        .chain()
        .await
        .map_err(|e| Refusal("chain", e))?;
    let snapshot = chain
        .channel_snapshot(channel)
        .await
        .map_err(|e| Refusal("chain", e.to_string()))?
        .ok_or_else(|| bad(format!("channel {channel} does not exist on the chain")))?;
    let (info, payees) = (snapshot.info, snapshot.payees);
    let now = u32::try_from(snapshot.block).unwrap_or(u32::MAX);
    if info.expires_at < now.saturating_add(MIN_BLOCKS_LEFT) {
        return Err(bad(format!(
            "channel {channel} expires at block #{}, too soon to claim (now #{now})",
            info.expires_at
        )));
    }
    let bound = payees.iter().any(|p| p.payee.0 == terms.payee);
    if !bound && info.bound_payees >= info.max_payees {
        return Err(bad(format!(
            "channel {channel} has no payee slot left ({} of {} bound)",
            info.bound_payees, info.max_payees
        )));
    }
    Ok(Usable {
        info,
        payees,
        block: snapshot.block,
    })
}

async fn check_channel(
    inner: &Inner,
    terms: &BandwidthTerms,
    channel: u64,
) -> Result<Checked, Refusal> {
    let bad = |why: String| Refusal("bad_channel", why);
    let Usable {
        info,
        payees,
        block,
    } = usable(inner, terms, channel).await?;
    let named: Vec<[u8; 32]> = payees
        .iter()
        .filter(|p| p.named)
        .map(|p| p.payee.0)
        .collect();
    let voucher_key = VerifyingKey::from_bytes(&info.voucher_key)
        .map_err(|_| bad("the channel's voucher key is not a valid key".into()))?;
    let mut payee = Payee::new(
        voucher_key,
        Terms {
            chain: terms.chain,
            channel,
            deposit: info.deposit,
            max_payees: info.max_payees,
            named,
            payee_cap: info.payee_cap,
        },
        terms.payee,
    );
    if let Some(held) = inner
        .store
        .vouchers
        .get(channel, &terms.payee)
        .ok()
        .flatten()
        .as_ref()
        .and_then(super::payments::held_voucher)
    {
        let _ = payee.accept(held);
    }
    info!(
        channel,
        deposit = info.deposit,
        cap = info.payee_cap,
        "bandwidth channel checked on the chain"
    );
    Ok(Checked {
        payee,
        at: std::time::Instant::now(),
        block,
        expires_at: info.expires_at,
    })
}

/// This node's terms, from its settings and its chain (a fee needs both
/// the chain's genesis and the node's account).
pub(crate) fn terms_of(
    s: &BandwidthSettings,
    chain: Option<[u8; 32]>,
    account: Option<AccountId>,
) -> Result<BandwidthTerms, String> {
    if s.fee_per_mib == 0 {
        return Ok(BandwidthTerms {
            credit_bytes: s.credit_bytes,
            ..BandwidthTerms::free()
        });
    }
    let (Some(chain), Some(account)) = (chain, account) else {
        return Err(
            "a bandwidth fee needs a settlement chain and a chain account (`vilokanam account new`)"
                .into(),
        );
    };
    let t = BandwidthTerms {
        fee_per_mib: s.fee_per_mib,
        payee: account.0,
        chain,
        credit_bytes: s.credit_bytes,
    };
    t.validate()?;
    Ok(t)
}
