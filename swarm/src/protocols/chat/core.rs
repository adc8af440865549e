//! The chat's IO-less core: which messages and moderation actions a node
//! accepts, relays and shows, given `now`.
//!
//! Every node runs the same rules before it relays anything, so a message
//! the rules refuse stops at the first honest hop:
//!
//! - a sender that is banned, timed out, or whose message was deleted is
//!   dropped; moderation actions are signed by the stream's creator or a
//!   moderator the creator named, and the newer action on the same subject
//!   wins ([`ModKind::subject`]), so nodes converge whatever the order;
//! - per-key rate limits (Twitch's 20 messages per 30 s for viewers, 100
//!   for moderators and the creator), 10 for a key this node first saw
//!   less than 5 minutes ago, a budget of keys never seen before per peer
//!   and per chat (a swarm of fresh keys is held off), and the chat's slow
//!   mode;
//! - each sender's messages are shown in its counter's order, exactly
//!   once: a message that overtook an earlier one waits for it (at most
//!   [`ChatConfig::reorder_wait`]).
//!
//! Signatures are checked by the caller (the actor) before anything here.
//! Every map is bounded ([`ChatConfig`]).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::num::NonZeroUsize;
use std::time::{Duration, Instant};

use lru::LruCache;

use super::wire::{
    HistoryResponse, ModKind, SignedChatMessage, SignedModAction, Subject, MAX_HISTORY,
    MAX_HISTORY_ACTIONS,
};
use crate::protocols::bucket::Bucket;
use crate::protocols::live::wire::StreamId;
use libp2p::PeerId;

/// Bounds and rates of the chat core.
#[derive(Clone, Debug, PartialEq)]
pub struct ChatConfig {
    /// Chats this node takes part in at once. Default 64.
    pub max_chats: usize,
    /// Messages kept per chat for late joiners. Default 200.
    pub history: usize,
    /// A viewer's messages per [`ChatConfig::rate_window`]. Default 20.
    pub viewer_rate: u32,
    /// A moderator's or the creator's. Default 100.
    pub moderator_rate: u32,
    /// A key this node first saw less than [`ChatConfig::new_key_age`] ago.
    /// Default 10.
    pub new_key_rate: u32,
    /// The window of the rates. Default 30 s.
    pub rate_window: Duration,
    /// How long a key counts as new. Default 5 min.
    pub new_key_age: Duration,
    /// Keys never seen before accepted per minute from one peer (burst and
    /// refill), so that one peer spraying fresh keys cannot use up what
    /// honest newcomers arriving through others need. Default 30.
    pub new_keys_per_minute: u32,
    /// The same over the whole chat, from all peers together. Default 300.
    pub new_keys_per_minute_total: u32,
    /// Moderation actions one issuer may take per minute (creator and
    /// moderators). Default 60.
    pub actions_per_minute: u32,
    /// Senders tracked per chat (least recently heard forgotten). Default
    /// 10,000.
    pub max_senders: usize,
    /// Moderation actions kept per chat. Default 1,024 (what one history
    /// answer carries: a late joiner learns every one).
    pub max_actions: usize,
    /// Messages held for an earlier one per chat. Default 256.
    pub max_pending: usize,
    /// How long a message waits for an earlier one of its sender. Default 2 s.
    pub reorder_wait: Duration,
    /// How far in the future a timestamp may be. Default 30 s.
    pub clock_skew: Duration,
    /// The oldest message or action relayed live (older ones come only
    /// from history answers, so a lifted ban cannot be replayed). Default
    /// 2 min.
    pub max_age: Duration,
    /// The oldest message taken from a history answer. Default 24 h.
    pub max_history_age: Duration,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_chats: 64,
            history: MAX_HISTORY,
            viewer_rate: 20,
            moderator_rate: 100,
            new_key_rate: 10,
            rate_window: Duration::from_secs(30),
            new_key_age: Duration::from_secs(300),
            new_keys_per_minute: 30,
            new_keys_per_minute_total: 300,
            actions_per_minute: 60,
            max_senders: 10_000,
            max_actions: MAX_HISTORY_ACTIONS,
            max_pending: 256,
            reorder_wait: Duration::from_secs(2),
            clock_skew: Duration::from_secs(30),
            max_age: Duration::from_secs(120),
            max_history_age: Duration::from_secs(24 * 3600),
        }
    }
}

/// Why a valid (well-signed) message or action is not relayed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Drop {
    /// This node is not in that chat.
    #[error("not in this chat")]
    NotJoined,
    /// Seen already.
    #[error("already seen")]
    Duplicate,
    /// Older than the sender's messages already shown, or too old.
    #[error("too old ({0})")]
    Stale(&'static str),
    /// From the future.
    #[error("timestamp {0} ms ahead of this node's clock")]
    Future(u64),
    /// The sender is banned.
    #[error("the sender is banned")]
    Banned,
    /// The sender is timed out.
    #[error("the sender is timed out until {until_ms}")]
    TimedOut {
        /// Unix ms.
        until_ms: u64,
    },
    /// The message was deleted by a moderator.
    #[error("deleted by a moderator")]
    Deleted,
    /// The sender sent more than its rate.
    #[error("rate limit: more than {limit} messages per {window_secs} s")]
    RateLimited {
        /// Messages per window.
        limit: u32,
        /// Window.
        window_secs: u64,
    },
    /// Slow mode: too soon after the sender's previous message.
    #[error("slow mode: one message per {0} s")]
    SlowMode(u32),
    /// Paid-viewers-only mode: no valid pass from the creator.
    #[error("paid-viewers-only chat: watch the stream (paying) to chat")]
    PaidOnly,
    /// Followers-only mode: no follow of the creator, or a too recent one.
    #[error("followers-only chat: follow the creator (for at least {0} s) to chat")]
    FollowersOnly(u32),
    /// Too many keys never seen before in the last minute.
    #[error("too many new keys in this chat: try again later")]
    NewKeyBudget,
    /// The issuer may not take this action.
    #[error("not allowed: {0}")]
    NotAllowed(&'static str),
    /// A newer action on the same subject holds.
    #[error("superseded by a newer action")]
    Superseded,
    /// The chat holds its maximum of actions.
    #[error("too many moderation actions held")]
    Full,
}

/// What the core asks the node to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChatOutput {
    /// Show a message (in its sender's order).
    Deliver {
        /// The message.
        message: SignedChatMessage,
        /// From a history answer (older than what is live).
        from_history: bool,
    },
    /// A moderation action took effect.
    Applied(SignedModAction),
}

struct Sender {
    first_seen: Instant,
    /// When its last accepted messages arrived (at most the highest rate):
    /// a sliding window, so no 30 s ever holds more than the rate.
    recent: VecDeque<Instant>,
    /// The next counter to show (None before the first message).
    next: Option<u64>,
    /// Counters seen recently (duplicates), bounded.
    seen: VecDeque<u64>,
    /// Messages that arrived before an earlier one, by counter.
    pending: BTreeMap<u64, (Instant, SignedChatMessage)>,
    last_sent_ms: u64,
    /// The counters taken from history answers (lowest, highest): a second
    /// answer repeats them.
    hist: Option<(u64, u64)>,
}

const SEEN_PER_SENDER: usize = 64;

impl Sender {
    fn saw(&self, seq: u64) -> bool {
        self.seen.contains(&seq) || self.pending.contains_key(&seq)
    }

    fn remember(&mut self, seq: u64) {
        if self.seen.len() == SEEN_PER_SENDER {
            self.seen.pop_front();
        }
        self.seen.push_back(seq);
    }
}

struct Chat {
    stream: StreamId,
    senders: LruCache<[u8; 32], Sender>,
    /// Actions in force, by subject.
    actions: HashMap<Subject, SignedModAction>,
    history: VecDeque<SignedChatMessage>,
    /// New-key budgets: per peer they came from, and for the chat.
    new_keys: LruCache<PeerId, Bucket>,
    new_keys_total: Bucket,
    /// Recent actions per issuer (ms), for the action rate.
    issuers: LruCache<[u8; 32], VecDeque<u64>>,
    /// Actions refused because their issuer was not (yet) a moderator
    /// here: retried when the creator names it (gossip does not order the
    /// creator's naming before the moderator's first action).
    unauthorized: VecDeque<SignedModAction>,
    pending: usize,
}

/// Actions waiting for their issuer to be named, per chat.
const MAX_UNAUTHORIZED: usize = 32;

/// Why `sender` may not chat now, given the actions in force.
fn standing_in(
    actions: &HashMap<Subject, SignedModAction>,
    sender: &[u8; 32],
    now_ms: u64,
) -> Result<(), Drop> {
    match actions.get(&Subject::Sender(*sender)).map(|a| &a.action) {
        Some(a) => match a.kind {
            ModKind::Ban { .. } => Err(Drop::Banned),
            ModKind::Timeout { secs, .. } => {
                let until_ms = a.issued_ms.saturating_add(u64::from(secs) * 1000);
                if now_ms < until_ms {
                    Err(Drop::TimedOut { until_ms })
                } else {
                    Ok(())
                }
            }
            _ => Ok(()),
        },
        None => Ok(()),
    }
}

/// Whether a held message may still be shown: its sender in good
/// standing, the message not deleted.
fn showable(
    actions: &HashMap<Subject, SignedModAction>,
    m: &SignedChatMessage,
    now_ms: u64,
) -> bool {
    !actions.contains_key(&Subject::Message(m.id()))
        && standing_in(actions, &m.message.sender, now_ms).is_ok()
}

impl Chat {
    fn moderators(&self) -> HashSet<[u8; 32]> {
        self.actions
            .values()
            .filter_map(|a| match a.action.kind {
                ModKind::AddModerator { key } => Some(key),
                _ => None,
            })
            .collect()
    }

    fn is_moderator(&self, key: &[u8; 32]) -> bool {
        *key == self.stream.creator
            || matches!(
                self.actions.get(&Subject::Moderator(*key)),
                Some(a) if matches!(a.action.kind, ModKind::AddModerator { .. })
            )
    }

    /// Why `sender` may not chat now, if it may not.
    fn standing(&self, sender: &[u8; 32], now_ms: u64) -> Result<(), Drop> {
        standing_in(&self.actions, sender, now_ms)
    }

    /// Drops what `sender` has held (banned or timed out), or one held
    /// message (deleted).
    fn purge_pending(&mut self, sender: &[u8; 32], seq: Option<u64>) {
        if let Some(s) = self.senders.peek_mut(sender) {
            let before = s.pending.len();
            match seq {
                Some(q) => {
                    s.pending.remove(&q);
                }
                None => s.pending.clear(),
            }
            self.pending -= (before - s.pending.len()).min(self.pending);
        }
    }

    fn paid_only(&self) -> bool {
        matches!(
            self.actions.get(&Subject::PaidOnly).map(|a| &a.action.kind),
            Some(ModKind::PaidOnly { on: true })
        )
    }

    fn followers_only(&self) -> Option<u32> {
        match self
            .actions
            .get(&Subject::FollowersOnly)
            .map(|a| &a.action.kind)
        {
            Some(ModKind::FollowersOnly { min_follow_secs }) => *min_follow_secs,
            _ => None,
        }
    }

    fn slow_secs(&self) -> u32 {
        match self.actions.get(&Subject::SlowMode).map(|a| &a.action.kind) {
            Some(ModKind::SlowMode { secs }) => *secs,
            _ => 0,
        }
    }

    fn push_history(&mut self, m: SignedChatMessage, cap: usize) {
        if self.history.len() >= cap {
            self.history.pop_front();
        }
        self.history.push_back(m);
    }
}

/// The chat core; see the module docs.
pub struct ChatCore {
    config: ChatConfig,
    chats: HashMap<StreamId, Chat>,
}

fn newer(a: &SignedModAction, b: &SignedModAction) -> bool {
    (a.action.issued_ms, a.signature.0) > (b.action.issued_ms, b.signature.0)
}

impl ChatCore {
    /// A core with no chats.
    pub fn new(config: ChatConfig) -> Self {
        ChatCore {
            config,
            chats: HashMap::new(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    /// Takes part in `stream`'s chat. Fails when at [`ChatConfig::max_chats`].
    pub fn join(&mut self, now: Instant, stream: StreamId) -> Result<bool, usize> {
        if self.chats.contains_key(&stream) {
            return Ok(false);
        }
        if self.chats.len() >= self.config.max_chats {
            return Err(self.config.max_chats);
        }
        let senders = LruCache::new(
            NonZeroUsize::new(self.config.max_senders.max(1)).unwrap_or(NonZeroUsize::MIN),
        );
        let peers = NonZeroUsize::new(1024).unwrap_or(NonZeroUsize::MIN);
        let issuers = NonZeroUsize::new(256).unwrap_or(NonZeroUsize::MIN);
        self.chats.insert(
            stream.clone(),
            Chat {
                stream,
                senders,
                actions: HashMap::new(),
                history: VecDeque::new(),
                new_keys: LruCache::new(peers),
                new_keys_total: Bucket::full(self.config.new_keys_per_minute_total, now),
                issuers: LruCache::new(issuers),
                unauthorized: VecDeque::new(),
                pending: 0,
            },
        );
        Ok(true)
    }

    /// Leaves a chat and forgets it.
    pub fn leave(&mut self, stream: &StreamId) -> bool {
        self.chats.remove(stream).is_some()
    }

    /// Whether this node is in `stream`'s chat.
    pub fn joined(&self, stream: &StreamId) -> bool {
        self.chats.contains_key(stream)
    }

    /// The chats this node is in.
    pub fn chats(&self) -> Vec<StreamId> {
        self.chats.keys().cloned().collect()
    }

    /// Whether `key` may moderate `stream`'s chat (its creator or a
    /// moderator it named).
    pub fn is_moderator(&self, stream: &StreamId, key: &[u8; 32]) -> bool {
        self.chats.get(stream).is_some_and(|c| c.is_moderator(key))
    }

    /// Why `sender` may not send to `stream` now (checked before this node
    /// publishes its own message, with the same rules its peers apply).
    pub fn may_send(&self, stream: &StreamId, sender: &[u8; 32], now_ms: u64) -> Result<(), Drop> {
        let chat = self.chats.get(stream).ok_or(Drop::NotJoined)?;
        chat.standing(sender, now_ms)
    }

    /// This node's own message (its user's): the same rules as a peer's,
    /// but not the new-key budget (that guards against other peers).
    pub fn on_message(
        &mut self,
        now: Instant,
        now_ms: u64,
        m: SignedChatMessage,
    ) -> Result<Vec<ChatOutput>, Drop> {
        self.admit(now, now_ms, None, m, false)
    }

    /// A chat message from peer `source` whose signature and proof of work
    /// the caller checked. `Ok` means relay it; the outputs are what to
    /// show now.
    pub fn on_gossip_message(
        &mut self,
        now: Instant,
        now_ms: u64,
        source: PeerId,
        m: SignedChatMessage,
    ) -> Result<Vec<ChatOutput>, Drop> {
        self.admit(now, now_ms, Some(source), m, false)
    }

    fn admit(
        &mut self,
        now: Instant,
        now_ms: u64,
        source: Option<PeerId>,
        m: SignedChatMessage,
        from_history: bool,
    ) -> Result<Vec<ChatOutput>, Drop> {
        let cfg = &self.config;
        let chat = self
            .chats
            .get_mut(&m.message.stream)
            .ok_or(Drop::NotJoined)?;
        let msg = &m.message;
        let skew = cfg.clock_skew.as_millis() as u64;
        if msg.sent_ms > now_ms.saturating_add(skew) {
            return Err(Drop::Future(msg.sent_ms - now_ms));
        }
        let max_age = if from_history {
            cfg.max_history_age
        } else {
            cfg.max_age
        };
        if msg.sent_ms.saturating_add(max_age.as_millis() as u64) < now_ms {
            return Err(Drop::Stale("sent too long ago"));
        }
        if chat.actions.contains_key(&Subject::Message(m.id())) {
            return Err(Drop::Deleted);
        }
        chat.standing(&msg.sender, now_ms)?;
        let is_mod = chat.is_moderator(&msg.sender);
        let known = chat.senders.contains(&msg.sender);
        if let Some(s) = chat.senders.peek(&msg.sender) {
            if s.saw(msg.seq)
                || (from_history
                    && s.hist
                        .is_some_and(|(lo, hi)| lo <= msg.seq && msg.seq <= hi))
            {
                return Err(Drop::Duplicate);
            }
            if !from_history && s.next.is_some_and(|n| msg.seq < n) {
                return Err(Drop::Stale(
                    "older than the sender's messages already shown",
                ));
            }
        }
        if let (false, false, false, Some(peer)) = (known, is_mod, from_history, source) {
            let (one, all) = (cfg.new_keys_per_minute, cfg.new_keys_per_minute_total);
            let per_peer = chat
                .new_keys
                .get_or_insert_mut(peer, || Bucket::full(one, now));
            if !per_peer.take(now, one, f64::from(one) / 60.0)
                || !chat.new_keys_total.take(now, all, f64::from(all) / 60.0)
            {
                return Err(Drop::NewKeyBudget);
            }
        }
        if !known {
            // The least recently heard sender goes; its held messages too.
            let evicted = chat.senders.push(
                msg.sender,
                Sender {
                    first_seen: now,
                    recent: VecDeque::new(),
                    next: None,
                    seen: VecDeque::new(),
                    pending: BTreeMap::new(),
                    last_sent_ms: 0,
                    hist: None,
                },
            );
            if let Some((_, gone)) = evicted {
                chat.pending -= gone.pending.len().min(chat.pending);
            }
        }
        let slow = chat.slow_secs();
        if let (false, false, Some(min)) = (is_mod, from_history, chat.followers_only()) {
            // The follow travels with the message (signed by the sender,
            // checked with it); it must be old enough when the message was
            // sent, and not from the future.
            let old_enough = msg.follow.as_ref().is_some_and(|f| {
                f.op.at_ms <= now_ms.saturating_add(skew)
                    && f.op.at_ms.saturating_add(u64::from(min) * 1000) <= msg.sent_ms
            });
            if !old_enough {
                return Err(Drop::FollowersOnly(min));
            }
        }
        if !is_mod && !from_history && chat.paid_only() {
            // The pass travels with the message (signed by the creator,
            // checked with it); it must cover the time the message was
            // sent, which must itself be near this node's clock.
            let paid = msg.pass.as_ref().is_some_and(|p| {
                p.pass.until_ms >= msg.sent_ms && msg.sent_ms <= now_ms.saturating_add(skew)
            });
            if !paid {
                return Err(Drop::PaidOnly);
            }
        }
        let Some(s) = chat.senders.get_mut(&msg.sender) else {
            return Err(Drop::Full);
        };
        if !from_history {
            let limit = if is_mod {
                cfg.moderator_rate
            } else if now.saturating_duration_since(s.first_seen) < cfg.new_key_age {
                cfg.new_key_rate
            } else {
                cfg.viewer_rate
            };
            // A backdated message counts as sent no earlier than the
            // clock skew allows: slow mode cannot be dodged by more than
            // the skew window.
            let sent = msg.sent_ms.max(now_ms.saturating_sub(skew));
            if !is_mod
                && slow > 0
                && s.last_sent_ms > 0
                && sent < s.last_sent_ms.saturating_add(u64::from(slow) * 1000)
            {
                return Err(Drop::SlowMode(slow));
            }
            while s
                .recent
                .front()
                .is_some_and(|t| now.saturating_duration_since(*t) >= cfg.rate_window)
            {
                s.recent.pop_front();
            }
            if s.recent.len() >= limit as usize {
                return Err(Drop::RateLimited {
                    limit,
                    window_secs: cfg.rate_window.as_secs(),
                });
            }
            s.recent.push_back(now);
            s.last_sent_ms = s.last_sent_ms.max(sent);
        }
        let mut out = Vec::new();
        if from_history {
            s.remember(msg.seq);
            let q = msg.seq;
            s.hist = Some(s.hist.map_or((q, q), |(lo, hi)| (lo.min(q), hi.max(q))));
            let after = msg.seq.saturating_add(1);
            s.next = Some(s.next.map_or(after, |n| n.max(after)));
            chat.push_history(m.clone(), cfg.history);
            out.push(ChatOutput::Deliver {
                message: m,
                from_history: true,
            });
            return Ok(out);
        }
        match s.next {
            Some(n) if msg.seq > n => {
                if chat.pending >= cfg.max_pending {
                    return Err(Drop::Full);
                }
                s.pending.insert(msg.seq, (now, m));
                chat.pending += 1;
                return Ok(out);
            }
            _ => {}
        }
        s.remember(msg.seq);
        s.next = Some(msg.seq.saturating_add(1));
        let mut shown = vec![m];
        while let Some(e) = s.pending.first_entry() {
            if Some(*e.key()) != s.next {
                break;
            }
            let (seq, (_, m)) = e.remove_entry();
            chat.pending -= 1;
            s.remember(seq);
            s.next = Some(seq.saturating_add(1));
            if showable(&chat.actions, &m, now_ms) {
                shown.push(m);
            }
        }
        for m in shown {
            chat.push_history(m.clone(), cfg.history);
            out.push(ChatOutput::Deliver {
                message: m,
                from_history: false,
            });
        }
        Ok(out)
    }

    /// A moderation action from a peer's gossip whose signature the caller
    /// checked (it must be recent: older ones come with the history). `Ok`
    /// means relay it (it took effect).
    pub fn on_action(&mut self, now_ms: u64, a: SignedModAction) -> Result<Vec<ChatOutput>, Drop> {
        self.take_action(now_ms, a, true)
    }

    /// An action of this node's own user, or re-applied from this node's
    /// store: the same rules but the age (it is not replayed by a peer).
    pub fn on_own_action(
        &mut self,
        now_ms: u64,
        a: SignedModAction,
    ) -> Result<Vec<ChatOutput>, Drop> {
        self.take_action(now_ms, a, false)
    }

    fn take_action(
        &mut self,
        now_ms: u64,
        a: SignedModAction,
        live: bool,
    ) -> Result<Vec<ChatOutput>, Drop> {
        let stream = a.action.stream.clone();
        let named = match &a.action.kind {
            ModKind::AddModerator { key } if a.action.issuer == stream.creator => Some(*key),
            _ => None,
        };
        let mut out = self.apply_action(now_ms, a, live)?;
        // The creator named a moderator: its actions that came first are
        // taken now.
        if let Some(key) = named {
            let waiting: Vec<SignedModAction> = match self.chats.get_mut(&stream) {
                Some(chat) => {
                    let (mine, rest) = std::mem::take(&mut chat.unauthorized)
                        .into_iter()
                        .partition(|w| w.action.issuer == key);
                    chat.unauthorized = rest;
                    mine.into()
                }
                None => vec![],
            };
            for w in waiting {
                if let Ok(o) = self.apply_action(now_ms, w, false) {
                    out.extend(o);
                }
            }
        }
        Ok(out)
    }

    fn apply_action(
        &mut self,
        now_ms: u64,
        a: SignedModAction,
        live: bool,
    ) -> Result<Vec<ChatOutput>, Drop> {
        let cfg = &self.config;
        let chat = self
            .chats
            .get_mut(&a.action.stream)
            .ok_or(Drop::NotJoined)?;
        let act = &a.action;
        let skew = cfg.clock_skew.as_millis() as u64;
        if act.issued_ms > now_ms.saturating_add(skew) {
            return Err(Drop::Future(act.issued_ms - now_ms));
        }
        if live && act.issued_ms.saturating_add(cfg.max_age.as_millis() as u64) < now_ms {
            return Err(Drop::Stale(
                "an action issued too long ago (old ones come with the history)",
            ));
        }
        let creator = chat.stream.creator;
        let by_creator = act.issuer == creator;
        if !by_creator {
            if !chat.is_moderator(&act.issuer) {
                if live && !chat.unauthorized.contains(&a) {
                    if chat.unauthorized.len() >= MAX_UNAUTHORIZED {
                        chat.unauthorized.pop_front();
                    }
                    chat.unauthorized.push_back(a.clone());
                }
                return Err(Drop::NotAllowed(
                    "the issuer is neither the creator nor a moderator",
                ));
            }
            if chat.standing(&act.issuer, now_ms).is_err() {
                return Err(Drop::NotAllowed("the issuer is banned or timed out"));
            }
            match &act.kind {
                ModKind::AddModerator { .. } | ModKind::RemoveModerator { .. } => {
                    return Err(Drop::NotAllowed("only the creator names moderators"))
                }
                ModKind::Ban { target }
                | ModKind::Timeout { target, .. }
                | ModKind::Unban { target }
                    if chat.is_moderator(target) =>
                {
                    return Err(Drop::NotAllowed(
                        "a moderator cannot act on the creator or a moderator",
                    ))
                }
                _ => {}
            }
        } else if matches!(&act.kind, ModKind::Ban { target } | ModKind::Timeout { target, .. } if *target == creator)
        {
            return Err(Drop::NotAllowed("the creator cannot ban itself"));
        }
        let subject = act.kind.subject();
        if let Some(held) = chat.actions.get(&subject) {
            if !newer(&a, held) {
                return Err(if held == &a {
                    Drop::Duplicate
                } else {
                    Drop::Superseded
                });
            }
        }
        if live {
            // An issuer's actions per minute (a flood of deletions would
            // cost every node in the chat).
            let limit = cfg.actions_per_minute as usize;
            let recent = chat.issuers.get_or_insert_mut(act.issuer, VecDeque::new);
            while recent
                .front()
                .is_some_and(|t| t.saturating_add(60_000) <= now_ms)
            {
                recent.pop_front();
            }
            if recent.len() >= limit {
                return Err(Drop::RateLimited {
                    limit: cfg.actions_per_minute,
                    window_secs: 60,
                });
            }
            recent.push_back(now_ms);
        }
        if !chat.actions.contains_key(&subject) && chat.actions.len() >= cfg.max_actions {
            // Make room: an expired timeout, a lifted ban, or the oldest
            // deletion goes first; bans, slow mode and the creator's
            // moderator list never.
            let victim = chat
                .actions
                .iter()
                .filter(|(_, h)| match h.action.kind {
                    ModKind::Timeout { secs, .. } => {
                        h.action.issued_ms.saturating_add(u64::from(secs) * 1000) <= now_ms
                    }
                    ModKind::Unban { .. } | ModKind::Delete(_) => true,
                    _ => false,
                })
                .min_by_key(|(_, h)| h.action.issued_ms)
                .map(|(s, _)| *s);
            match victim {
                Some(v) => {
                    chat.actions.remove(&v);
                }
                None => return Err(Drop::Full),
            }
        }
        // Whatever the action removes from view goes from the history
        // and from the messages held for order too.
        match &act.kind {
            ModKind::Delete(r) => {
                chat.history.retain(|m| m.id() != *r);
                chat.purge_pending(&r.sender, Some(r.seq));
            }
            ModKind::Ban { target } => {
                chat.history.retain(|m| m.message.sender != *target);
                chat.purge_pending(target, None);
            }
            ModKind::Timeout { target, secs }
                if act.issued_ms.saturating_add(u64::from(*secs) * 1000) > now_ms =>
            {
                chat.history.retain(|m| m.message.sender != *target);
                chat.purge_pending(target, None);
            }
            _ => {}
        }
        chat.actions.insert(subject, a.clone());
        Ok(vec![ChatOutput::Applied(a)])
    }

    /// Releases messages that waited too long for an earlier one of their
    /// sender (the earlier one is taken as lost).
    pub fn tick(&mut self, now: Instant, now_ms: u64) -> Vec<ChatOutput> {
        let wait = self.config.reorder_wait;
        let cap = self.config.history;
        let mut out = Vec::new();
        for chat in self.chats.values_mut() {
            if chat.pending == 0 {
                continue;
            }
            let mut shown = Vec::new();
            for (_, s) in chat.senders.iter_mut() {
                let overdue = s
                    .pending
                    .values()
                    .any(|(at, _)| now.saturating_duration_since(*at) >= wait);
                if !overdue {
                    continue;
                }
                // Skip the gap: show everything held, in order.
                for (seq, (_, m)) in std::mem::take(&mut s.pending) {
                    s.remember(seq);
                    s.next = Some(seq.saturating_add(1));
                    shown.push(m);
                }
            }
            chat.pending -= shown.len().min(chat.pending);
            shown.retain(|m| showable(&chat.actions, m, now_ms));
            for m in shown {
                chat.push_history(m.clone(), cap);
                out.push(ChatOutput::Deliver {
                    message: m,
                    from_history: false,
                });
            }
        }
        out
    }

    /// What this node answers a late joiner: the newest `limit` messages
    /// (oldest first) and the actions in force.
    pub fn history(&self, stream: &StreamId, limit: usize) -> HistoryResponse {
        let Some(chat) = self.chats.get(stream) else {
            return HistoryResponse::default();
        };
        let n = limit.min(MAX_HISTORY);
        let skip = chat.history.len().saturating_sub(n);
        let messages = chat.history.iter().skip(skip).cloned().collect();
        let mut actions: Vec<_> = chat.actions.values().cloned().collect();
        // What restricts first (the creator's moderator list, on which the
        // others' authority rests; then bans, timeouts, unbans and slow
        // mode), deletions last; the newest first within each.
        actions.sort_by_key(|a| {
            let rank = match a.action.kind {
                ModKind::AddModerator { .. } | ModKind::RemoveModerator { .. } => 0,
                ModKind::Delete(_) => 2,
                _ => 1,
            };
            (rank, std::cmp::Reverse(a.action.issued_ms))
        });
        actions.truncate(MAX_HISTORY_ACTIONS);
        HistoryResponse { messages, actions }
    }

    /// Takes a history answer (every signature already checked): actions
    /// first (the moderator list before the rest), then the messages that
    /// pass the same rules as live ones (no rate limit: they are past).
    pub fn on_history(
        &mut self,
        now: Instant,
        now_ms: u64,
        stream: &StreamId,
        mut resp: HistoryResponse,
    ) -> Vec<ChatOutput> {
        let mut out = Vec::new();
        if !self.joined(stream) {
            return out;
        }
        resp.actions.retain(|a| a.action.stream == *stream);
        resp.actions.sort_by_key(|a| {
            (
                !matches!(
                    a.action.kind,
                    ModKind::AddModerator { .. } | ModKind::RemoveModerator { .. }
                ),
                a.action.issued_ms,
            )
        });
        for a in resp.actions {
            if let Ok(o) = self.take_action(now_ms, a, false) {
                out.extend(o);
            }
        }
        for m in resp.messages {
            if m.message.stream != *stream {
                continue;
            }
            if let Ok(o) = self.admit(now, now_ms, None, m, true) {
                out.extend(o);
            }
        }
        out
    }

    /// The moderators of `stream`'s chat (not the creator).
    pub fn moderators(&self, stream: &StreamId) -> Vec<[u8; 32]> {
        self.chats
            .get(stream)
            .map(|c| c.moderators().into_iter().collect())
            .unwrap_or_default()
    }

    /// Counts for metrics and bound tests: chats, senders, actions, pending.
    pub fn sizes(&self) -> (usize, usize, usize, usize) {
        self.chats
            .values()
            .fold((self.chats.len(), 0, 0, 0), |acc, c| {
                (
                    acc.0,
                    acc.1 + c.senders.len(),
                    acc.2 + c.actions.len(),
                    acc.3 + c.pending,
                )
            })
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
