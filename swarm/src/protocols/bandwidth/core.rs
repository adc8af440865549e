//! IO-less accounting of paid bandwidth, for both ends of a pull.
//!
//! Amounts are planck; fees are planck per MiB (2^20 bytes). What a peer
//! owes for `b` bytes is `ceil(b · fee / 2^20)` computed on the cumulative
//! byte count (never per chunk), so rounding costs at most one planck per
//! peer, not one per chunk, and both ends compute the same figure.

use std::collections::HashMap;
use std::time::Instant;

use libp2p::PeerId;
use serde::{Deserialize, Serialize};

use crate::protocols::live::wire::{Sig, StreamId};

/// Bytes in a MiB, the unit fees are quoted in.
pub const MIB: u64 = 1 << 20;

/// The highest fee a node may ask: 1 TICK per MiB (planck).
pub const MAX_FEE_PER_MIB: u64 = 1_000_000_000_000;

/// The most credit a node may extend one peer: 1 GiB.
pub const MAX_CREDIT_BYTES: u64 = 1 << 30;

/// What `bytes` cost at `fee_per_mib`, rounded up to whole planck.
pub fn fee_for(bytes: u64, fee_per_mib: u64) -> u128 {
    (u128::from(bytes) * u128::from(fee_per_mib)).div_ceil(u128::from(MIB))
}

/// A node's bandwidth terms, told to every peer that asks (once per
/// connection, before it pulls).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthTerms {
    /// Planck per MiB of payload served; 0 = free.
    pub fee_per_mib: u64,
    /// The account vouchers must name (zero when free).
    pub payee: [u8; 32],
    /// Genesis hash of the chain it is paid on (zero when free).
    pub chain: [u8; 32],
    /// Unpaid payload bytes it serves a peer before refusing it.
    pub credit_bytes: u64,
}

impl BandwidthTerms {
    /// Terms of a node that charges nothing.
    pub fn free() -> Self {
        BandwidthTerms::default()
    }

    /// Whether serving costs nothing.
    pub fn is_free(&self) -> bool {
        self.fee_per_mib == 0
    }

    /// What `bytes` cost under these terms.
    pub fn price(&self, bytes: u64) -> u128 {
        fee_for(bytes, self.fee_per_mib)
    }

    /// Checks the ranges a peer's terms must be in.
    pub fn validate(&self) -> Result<(), String> {
        if self.fee_per_mib > MAX_FEE_PER_MIB {
            return Err(format!(
                "fee {} planck/MiB is over the {MAX_FEE_PER_MIB} limit",
                self.fee_per_mib
            ));
        }
        if self.credit_bytes > MAX_CREDIT_BYTES {
            return Err(format!(
                "credit of {} bytes is over the {MAX_CREDIT_BYTES}-byte limit",
                self.credit_bytes
            ));
        }
        if !self.is_free() && (self.payee == [0; 32] || self.chain == [0; 32]) {
            return Err("a fee needs a payee account and a chain".into());
        }
        Ok(())
    }
}

/// A voucher paying for bandwidth, as it travels to the server: payee and
/// chain are the server's own terms, so only the channel, the cumulative
/// amount and the signature are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BandwidthPayment {
    /// The payer's channel.
    pub channel: u64,
    /// Cumulative amount owed to the server's payee on that channel.
    pub cumulative: u128,
    /// ed25519 signature of the channel's voucher key.
    pub signature: Sig,
}

// ---- the serving end ----

/// Bounds and terms of a [`CreditLedger`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerConfig {
    /// What this node charges (default: free, 4 MiB of credit).
    pub terms: BandwidthTerms,
    /// Peers with an account at once (default 4,096); past it the least
    /// recently served account with nothing unpaid goes first, else the
    /// least recently served (its debt, at most one credit, is forgiven).
    pub max_peers: usize,
    /// Credit, in bytes, extended at once to all peers that never paid
    /// (default 64 MiB): fresh identities cost nothing, so the credit
    /// they can take together is bounded, not only each one's.
    pub max_unproven_bytes: u64,
    /// Streams with a served-bytes figure (default 256, least recently
    /// served first out).
    pub max_streams: usize,
    /// How long a peer that never paid counts against
    /// `max_unproven_bytes` after it was last served (default 5 min): a
    /// swarm of identities that took their credit and left must not lock
    /// newcomers out for good. Each keeps its own debt (and stays refused).
    pub unproven_ttl: std::time::Duration,
}

/// Default credit per peer: 4 MiB, a few chunks of a few Mbit/s stream.
pub const DEFAULT_CREDIT_BYTES: u64 = 4 * MIB;

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            terms: BandwidthTerms {
                credit_bytes: DEFAULT_CREDIT_BYTES,
                ..BandwidthTerms::free()
            },
            max_peers: 4096,
            max_unproven_bytes: 64 * MIB,
            max_streams: 256,
            unproven_ttl: std::time::Duration::from_secs(300),
        }
    }
}

/// One peer's account at a server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerAccount {
    /// Payload bytes served to it.
    pub served_bytes: u64,
    /// What its vouchers raised (planck).
    pub paid: u128,
    /// Requests refused for payment.
    pub refused: u64,
    /// Whether it is refused now (unpaid past the credit).
    pub cut_off: bool,
    last: Option<Instant>,
}

impl PeerAccount {
    /// What it owes in all at `fee_per_mib`.
    pub fn owed(&self, fee_per_mib: u64) -> u128 {
        fee_for(self.served_bytes, fee_per_mib)
    }

    /// What it owes and has not paid.
    pub fn unpaid(&self, fee_per_mib: u64) -> u128 {
        self.owed(fee_per_mib).saturating_sub(self.paid)
    }
}

/// Whether to serve a payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServeDecision {
    /// Serve it.
    Serve,
    /// Refuse it until the peer pays.
    Refuse {
        /// What the peer owes in all (planck).
        owed: u128,
        /// What it paid.
        paid: u128,
        /// The credit it is extended (bytes).
        credit_bytes: u64,
    },
}

/// Totals of a ledger, for metrics and the API.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LedgerTotals {
    /// Payload bytes served.
    pub served_bytes: u64,
    /// What vouchers raised (planck).
    pub paid: u128,
    /// Times a peer went from served to refused.
    pub cut_offs: u64,
    /// Requests refused for payment.
    pub refusals: u64,
    /// Unpaid amounts dropped with evicted accounts (planck).
    pub forgiven: u128,
}

/// The serving end: what each peer was served and paid, and whom to
/// refuse. Bytes are counted when a payload is handed to the peer, before
/// it verified it, so a payload lost on the way is owed but not paid: the
/// credit absorbs it (one chunk each time).
pub struct CreditLedger {
    config: LedgerConfig,
    peers: HashMap<PeerId, PeerAccount>,
    streams: HashMap<StreamId, (u64, Instant)>,
    totals: LedgerTotals,
}

impl CreditLedger {
    /// An empty ledger.
    pub fn new(config: LedgerConfig) -> Self {
        CreditLedger {
            config,
            peers: HashMap::new(),
            streams: HashMap::new(),
            totals: LedgerTotals::default(),
        }
    }

    /// The terms this node serves on.
    pub fn terms(&self) -> &BandwidthTerms {
        &self.config.terms
    }

    fn fee(&self) -> u64 {
        self.config.terms.fee_per_mib
    }

    /// Whether to serve `peer` a payload of `len` bytes now: yes while what
    /// it would then owe stays within what it paid plus its credit (so a
    /// peer that never pays receives at most the credit), and, for a peer
    /// that never paid, while the credit all such peers hold stays within
    /// [`LedgerConfig::max_unproven_bytes`].
    pub fn check(&mut self, now: Instant, peer: PeerId, len: u64) -> ServeDecision {
        let fee = self.fee();
        if fee == 0 {
            return ServeDecision::Serve;
        }
        let credit_bytes = self.config.terms.credit_bytes;
        let credit = fee_for(credit_bytes, fee);
        let acct = self.peers.get(&peer).copied().unwrap_or_default();
        let after = fee_for(acct.served_bytes.saturating_add(len), fee);
        let mut ok = after <= acct.paid.saturating_add(credit);
        if ok && acct.paid == 0 {
            let unproven: u64 = self
                .peers
                .values()
                .filter(|a| {
                    a.paid == 0
                        && a.last.is_some_and(|t| {
                            now.saturating_duration_since(t) < self.config.unproven_ttl
                        })
                })
                .map(|a| a.served_bytes)
                .sum();
            ok = unproven.saturating_add(len) <= self.config.max_unproven_bytes;
        }
        if ok {
            if let Some(a) = self.peers.get_mut(&peer) {
                a.cut_off = false;
            }
            return ServeDecision::Serve;
        }
        let a = self.entry(now, peer);
        let newly = !a.cut_off;
        a.cut_off = true;
        a.refused += 1;
        if newly {
            self.totals.cut_offs += 1;
        }
        self.totals.refusals += 1;
        ServeDecision::Refuse {
            owed: fee_for(acct.served_bytes, fee),
            paid: acct.paid,
            credit_bytes,
        }
    }

    /// A payload of `len` bytes of `stream` was handed to `peer`.
    pub fn served(&mut self, now: Instant, peer: PeerId, stream: &StreamId, len: u64) {
        let a = self.entry(now, peer);
        a.served_bytes = a.served_bytes.saturating_add(len);
        a.last = Some(now);
        self.totals.served_bytes = self.totals.served_bytes.saturating_add(len);
        if !self.streams.contains_key(stream) && self.streams.len() >= self.config.max_streams {
            if let Some(oldest) = self
                .streams
                .iter()
                .min_by_key(|(_, (_, t))| *t)
                .map(|(s, _)| s.clone())
            {
                self.streams.remove(&oldest);
            }
        }
        let s = self.streams.entry(stream.clone()).or_insert((0, now));
        s.0 = s.0.saturating_add(len);
        s.1 = now;
    }

    /// A payload of `len` bytes counted for `peer` never reached it (its
    /// response failed to go out): it is taken off the account, so that
    /// lost bytes do not become a debt an honest payer can never pay.
    pub fn unserved(&mut self, peer: &PeerId, stream: &StreamId, len: u64) {
        if let Some(a) = self.peers.get_mut(peer) {
            a.served_bytes = a.served_bytes.saturating_sub(len);
            self.totals.served_bytes = self.totals.served_bytes.saturating_sub(len);
        }
        if let Some(s) = self.streams.get_mut(stream) {
            s.0 = s.0.saturating_sub(len);
        }
    }

    /// `peer` presented a voucher that raised what it paid by `raised`.
    /// Returns whether it had been cut off and is now served again.
    pub fn paid(&mut self, now: Instant, peer: PeerId, raised: u128) -> bool {
        let fee = self.fee();
        let credit = fee_for(self.config.terms.credit_bytes, fee);
        let a = self.entry(now, peer);
        a.paid = a.paid.saturating_add(raised);
        a.last = Some(now);
        let resumed = a.cut_off && a.unpaid(fee) <= credit;
        if resumed {
            a.cut_off = false;
        }
        self.totals.paid = self.totals.paid.saturating_add(raised);
        resumed
    }

    fn entry(&mut self, now: Instant, peer: PeerId) -> &mut PeerAccount {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.config.max_peers.max(1) {
            let fee = self.fee();
            let victim = self
                .peers
                .iter()
                .min_by_key(|(_, a)| (a.unpaid(fee) > 0, a.last))
                .map(|(p, _)| *p);
            if let Some(v) = victim {
                if let Some(a) = self.peers.remove(&v) {
                    self.totals.forgiven = self.totals.forgiven.saturating_add(a.unpaid(fee));
                }
            }
        }
        self.peers.entry(peer).or_insert(PeerAccount {
            last: Some(now),
            ..PeerAccount::default()
        })
    }

    /// One peer's account.
    pub fn account(&self, peer: &PeerId) -> Option<PeerAccount> {
        self.peers.get(peer).copied()
    }

    /// Every account.
    pub fn accounts(&self) -> Vec<(PeerId, PeerAccount)> {
        self.peers.iter().map(|(p, a)| (*p, *a)).collect()
    }

    /// Payload bytes served per stream.
    pub fn streams(&self) -> Vec<(StreamId, u64)> {
        self.streams
            .iter()
            .map(|(s, (b, _))| (s.clone(), *b))
            .collect()
    }

    /// The totals.
    pub fn totals(&self) -> LedgerTotals {
        self.totals
    }

    /// Owed at this node's fee for everything served, over all accounts
    /// (planck).
    pub fn earned(&self) -> u128 {
        let fee = self.fee();
        self.peers.values().map(|a| a.owed(fee)).sum()
    }

    /// Owed and not paid, over all accounts (planck).
    pub fn outstanding(&self) -> u128 {
        let fee = self.fee();
        self.peers.values().map(|a| a.unpaid(fee)).sum()
    }

    /// Accounts held.
    pub fn len(&self) -> usize {
        self.peers.len()
    }

    /// Whether no account is held.
    pub fn is_empty(&self) -> bool {
        self.peers.is_empty()
    }
}

// ---- the pulling end ----

/// What a puller knows of one server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Purchase {
    /// Its terms, once it told them.
    pub terms: Option<BandwidthTerms>,
    /// Payload bytes pulled from it that verified.
    pub verified_bytes: u64,
    /// What this node signed over to it for them (planck).
    pub paid: u128,
    /// Owed under terms it told before its current ones and not paid yet
    /// (planck): a peer that changes its fee (a restart) is paid the new
    /// fee for new bytes only, and the old fee for the old ones.
    pub carried: u128,
}

/// Whether a server's terms are ones this node pays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Acceptance {
    /// It charges nothing.
    Free,
    /// It charges this fee, within what this node pays.
    Pays(u64),
    /// It charges more than this node's `max_fee` (or this node cannot pay).
    TooDear(u64),
    /// It is paid on another chain than this node's.
    WrongChain,
}

impl Acceptance {
    /// Whether payloads may be pulled from the server.
    pub fn usable(&self) -> bool {
        matches!(self, Acceptance::Free | Acceptance::Pays(_))
    }
}

/// The pulling end: the terms of each server, the bytes verified from it,
/// and what is due. Bounded by `max_peers` (least paid-up first out).
pub struct Purchases {
    max_fee: u64,
    chain: Option<[u8; 32]>,
    max_peers: usize,
    peers: HashMap<PeerId, Purchase>,
}

impl Purchases {
    /// A puller paying at most `max_fee` planck/MiB on `chain` (`None`: it
    /// has no chain and pays nobody).
    pub fn new(max_fee: u64, chain: Option<[u8; 32]>, max_peers: usize) -> Self {
        Purchases {
            max_fee,
            chain,
            max_peers: max_peers.max(1),
            peers: HashMap::new(),
        }
    }

    /// The most this node pays per MiB.
    pub fn max_fee(&self) -> u64 {
        self.max_fee
    }

    /// Whether `terms` are ones this node pays.
    pub fn accepts(&self, terms: &BandwidthTerms) -> Acceptance {
        if terms.is_free() {
            return Acceptance::Free;
        }
        match self.chain {
            Some(c) if c != terms.chain => Acceptance::WrongChain,
            Some(_) if terms.fee_per_mib <= self.max_fee => Acceptance::Pays(terms.fee_per_mib),
            _ => Acceptance::TooDear(terms.fee_per_mib),
        }
    }

    fn entry(&mut self, peer: PeerId) -> &mut Purchase {
        if !self.peers.contains_key(&peer) && self.peers.len() >= self.max_peers {
            let victim = self
                .peers
                .iter()
                .min_by_key(|(_, p)| {
                    let owed = p.terms.map_or(0, |t| t.price(p.verified_bytes));
                    (owed > p.paid, p.verified_bytes)
                })
                .map(|(p, _)| *p);
            if let Some(v) = victim {
                self.peers.remove(&v);
            }
        }
        self.peers.entry(peer).or_default()
    }

    /// `peer` told its terms; returns whether this node pays them. Terms
    /// that differ from the ones it told before start a new count: what
    /// the old bytes cost at the old fee and is unpaid is carried over.
    pub fn set_terms(&mut self, peer: PeerId, terms: BandwidthTerms) -> Acceptance {
        let a = self.accepts(&terms);
        let p = self.entry(peer);
        if let Some(old) = p.terms.filter(|old| *old != terms) {
            p.carried = old
                .price(p.verified_bytes)
                .saturating_add(p.carried)
                .saturating_sub(p.paid);
            p.verified_bytes = 0;
            p.paid = 0;
        }
        p.terms = Some(terms);
        a
    }

    /// A payload of `bytes` pulled from `peer` verified.
    pub fn verified(&mut self, peer: PeerId, bytes: u64) {
        let p = self.entry(peer);
        p.verified_bytes = p.verified_bytes.saturating_add(bytes);
    }

    /// What to pay `peer` now, with its terms: what its verified bytes
    /// cost less what was paid, if its terms are known and acceptable.
    pub fn due(&self, peer: &PeerId) -> Option<(BandwidthTerms, u128)> {
        let p = self.peers.get(peer)?;
        let terms = p.terms?;
        if !matches!(self.accepts(&terms), Acceptance::Pays(_)) {
            return None;
        }
        let due = terms
            .price(p.verified_bytes)
            .saturating_add(p.carried)
            .saturating_sub(p.paid);
        (due > 0).then_some((terms, due))
    }

    /// `amount` was signed over to `peer`.
    pub fn record_paid(&mut self, peer: PeerId, amount: u128) {
        let p = self.entry(peer);
        p.paid = p.paid.saturating_add(amount);
    }

    /// What is known of `peer`.
    pub fn get(&self, peer: &PeerId) -> Option<Purchase> {
        self.peers.get(peer).copied()
    }

    /// Everything known, per server.
    pub fn all(&self) -> Vec<(PeerId, Purchase)> {
        self.peers.iter().map(|(p, v)| (*p, *v)).collect()
    }
}
