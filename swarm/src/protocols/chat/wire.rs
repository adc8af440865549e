//! Chat wire format: signed chat messages, signed moderation actions, and
//! the history request-response messages.
//!
//! Both kinds travel on the stream's chat topic ([`chat_topic`]) in one
//! enum ([`ChatGossip`]), encoded like every Vilokanam message (a version
//! byte, then postcard; the size limit checked before parsing, every field
//! after). Signatures are ed25519 over a domain tag plus the postcard bytes
//! of the signed struct, so a chat message can never be replayed as a
//! moderation action or as anything else.
//!
//! A sender's key carries a small proof of work ([`pow_ok`]): a nonce with
//! which `sha256(tag ‖ key ‖ nonce)` starts with [`POW_BITS`] zero bits.
//! It is found once per key (tens of milliseconds) and makes a swarm of
//! fresh keys cost something; the node's per-key budgets do the rest
//! ([`super::core`]).

use ed25519_dalek::{Signer, SigningKey};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::protocols::live::wire::{
    decode_versioned, encode_versioned, field, signing_bytes, verify, Sig, StreamId, WireError,
};

/// Prefix of a stream's chat topic (followed by the stream id's text).
pub const CHAT_TOPIC_PREFIX: &str = "/vilokanam/chat/1/";
/// Longest chat message, in characters (Twitch's limit).
pub const MAX_CHAT_CHARS: usize = 500;
/// Longest chat message in bytes (500 characters of up to 4 bytes).
pub const MAX_CHAT_BYTES: usize = MAX_CHAT_CHARS * 4;
/// Longest timeout a moderator can give: two weeks (Twitch's limit).
pub const MAX_TIMEOUT_SECS: u32 = 14 * 24 * 3600;
/// Longest slow mode: 2 minutes (Twitch's limit).
pub const MAX_SLOW_SECS: u32 = 120;
/// Longest follow age followers-only mode may ask for: three months
/// (Twitch's limit).
pub const MAX_FOLLOW_AGE_SECS: u32 = 90 * 24 * 3600;
/// Leading zero bits of a sender key's proof of work.
pub const POW_BITS: u32 = 16;
/// Cap of one chat gossip message.
pub const MAX_CHAT_GOSSIP: usize = 4 * 1024;
/// Most messages in one history answer.
pub const MAX_HISTORY: usize = 200;
/// Most moderation actions in one history answer (every action a chat
/// keeps: a late joiner learns all the bans in force).
pub const MAX_HISTORY_ACTIONS: usize = 1024;
/// Cap of a history request.
pub const MAX_HISTORY_REQUEST: usize = 256;
/// Cap of a history response.
pub const MAX_HISTORY_RESPONSE: usize =
    (MAX_HISTORY + MAX_HISTORY_ACTIONS) * MAX_CHAT_GOSSIP + 1024;

const DOMAIN_CHAT: &[u8] = b"vilokanam/chat-message/v1\0";
const DOMAIN_MOD: &[u8] = b"vilokanam/chat-moderation/v1\0";
const DOMAIN_POW: &[u8] = b"vilokanam/chat-pow/v1\0";
const DOMAIN_PASS: &[u8] = b"vilokanam/viewer-pass/v1\0";

/// A creator's statement that `holder` (a viewer's creator key) pays for
/// `stream` until `until_ms`: its key server signs one with every epoch key
/// it sells, and the viewer's messages carry the latest, so that a
/// paid-viewers-only chat is checked by every relay without a lookup.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ViewerPass {
    /// The paid stream.
    pub stream: StreamId,
    /// The paying viewer's key (the one that signs its chat messages).
    pub holder: [u8; 32],
    /// Until when (unix ms) it counts as paid.
    pub until_ms: u64,
}

impl ViewerPass {
    /// Signs with the stream's creator key.
    pub fn sign(self, key: &SigningKey) -> Result<SignedViewerPass, WireError> {
        if key.verifying_key().to_bytes() != self.stream.creator {
            return Err(field("pass.stream", "not signed by the stream's creator"));
        }
        let signature = Sig(key.sign(&signing_bytes(DOMAIN_PASS, &self)).to_bytes());
        Ok(SignedViewerPass {
            pass: self,
            signature,
        })
    }
}

/// A viewer pass with the creator's signature.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedViewerPass {
    /// The signed pass.
    pub pass: ViewerPass,
    /// ed25519 by `pass.stream.creator`.
    pub signature: Sig,
}

impl SignedViewerPass {
    /// Checks the creator's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        self.pass.stream.validate()?;
        verify(
            &self.pass.stream.creator,
            &signing_bytes(DOMAIN_PASS, &self.pass),
            &self.signature,
        )
    }
}

/// The chat topic of `stream`.
pub fn chat_topic(stream: &StreamId) -> String {
    format!("{CHAT_TOPIC_PREFIX}{stream}")
}

/// The stream whose chat topic is `topic`, if it is one.
pub fn stream_of_chat_topic(topic: &str) -> Option<StreamId> {
    topic.strip_prefix(CHAT_TOPIC_PREFIX)?.parse().ok()
}

fn pow_hash(key: &[u8; 32], nonce: u64) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(DOMAIN_POW);
    h.update(key);
    h.update(nonce.to_be_bytes());
    h.finalize().into()
}

fn leading_zero_bits(h: &[u8; 32]) -> u32 {
    let mut n = 0;
    for b in h {
        if *b == 0 {
            n += 8;
        } else {
            return n + b.leading_zeros();
        }
    }
    n
}

/// Whether `nonce` is a proof of work for `key`.
pub fn pow_ok(key: &[u8; 32], nonce: u64) -> bool {
    leading_zero_bits(&pow_hash(key, nonce)) >= POW_BITS
}

/// Finds a proof of work for `key` (about 2^[`POW_BITS`] hashes; done once
/// per key and kept).
pub fn find_pow(key: &[u8; 32]) -> u64 {
    (0..u64::MAX).find(|n| pow_ok(key, *n)).unwrap_or(0)
}

/// One chat message, as its sender signs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ChatMessage {
    /// The stream it is about (its chat topic).
    pub stream: StreamId,
    /// The sender's key (ed25519; a node's creator key).
    pub sender: [u8; 32],
    /// The sender's counter in this chat: each message one more than the
    /// last, so that every node shows a sender's messages in order and
    /// exactly once.
    pub seq: u64,
    /// When it was sent (unix ms).
    pub sent_ms: u64,
    /// The text (at most [`MAX_CHAT_CHARS`] characters, no control
    /// characters; emotes are text codes).
    pub text: String,
    /// The sender key's proof of work ([`pow_ok`]).
    pub pow: u64,
    /// The sender's signed follow of the stream's creator, when it follows
    /// it: what a followers-only chat asks for (every node checks it
    /// without looking anything up).
    pub follow: Option<Box<crate::protocols::social::SignedFollowOp>>,
    /// The creator's pass saying the sender pays for the stream, when it
    /// does: what a paid-viewers-only chat asks for.
    pub pass: Option<Box<SignedViewerPass>>,
}

impl ChatMessage {
    /// Checks every field's range (not the signature, not the proof of
    /// work).
    pub fn validate(&self) -> Result<(), WireError> {
        self.stream.validate()?;
        if self.text.len() > MAX_CHAT_BYTES || self.text.chars().count() > MAX_CHAT_CHARS {
            return Err(field(
                "chat.text",
                format!("longer than {MAX_CHAT_CHARS} characters"),
            ));
        }
        if self.text.trim().is_empty() {
            return Err(field("chat.text", "empty"));
        }
        if self.text.chars().any(char::is_control) {
            return Err(field("chat.text", "contains control characters"));
        }
        if let Some(p) = &self.pass {
            if p.pass.holder != self.sender || p.pass.stream != self.stream {
                return Err(field(
                    "chat.pass",
                    "not a pass of the sender for this stream",
                ));
            }
        }
        if let Some(f) = &self.follow {
            if f.op.follower != self.sender || f.op.creator != self.stream.creator || !f.op.follow {
                return Err(field(
                    "chat.follow",
                    "not the sender's follow of the stream's creator",
                ));
            }
        }
        Ok(())
    }

    /// Signs with the sender's key.
    pub fn sign(self, key: &SigningKey) -> Result<SignedChatMessage, WireError> {
        if key.verifying_key().to_bytes() != self.sender {
            return Err(field("chat.sender", "does not match the signing key"));
        }
        self.validate()?;
        let signature = Sig(key.sign(&signing_bytes(DOMAIN_CHAT, &self)).to_bytes());
        Ok(SignedChatMessage {
            message: self,
            signature,
        })
    }
}

/// A chat message with its sender's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedChatMessage {
    /// The signed message.
    pub message: ChatMessage,
    /// ed25519 by `message.sender`.
    pub signature: Sig,
}

impl SignedChatMessage {
    /// Checks field ranges, the proof of work and the sender's signature.
    pub fn verify(&self) -> Result<(), WireError> {
        self.message.validate()?;
        if !pow_ok(&self.message.sender, self.message.pow) {
            return Err(field(
                "chat.pow",
                format!("not a {POW_BITS}-bit proof of work for the sender key"),
            ));
        }
        if let Some(f) = &self.message.follow {
            f.verify()?;
        }
        if let Some(p) = &self.message.pass {
            p.verify()?;
        }
        verify(
            &self.message.sender,
            &signing_bytes(DOMAIN_CHAT, &self.message),
            &self.signature,
        )
    }

    /// The message's id: sender and counter.
    pub fn id(&self) -> MessageRef {
        MessageRef {
            sender: self.message.sender,
            seq: self.message.seq,
        }
    }
}

/// Names one chat message: its sender and the sender's counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MessageRef {
    /// Sender key.
    pub sender: [u8; 32],
    /// Sender's counter.
    pub seq: u64,
}

/// What a moderation action does.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ModKind {
    /// `target` may not chat until unbanned.
    Ban {
        /// The banned key.
        target: [u8; 32],
    },
    /// Lifts a ban or a timeout.
    Unban {
        /// The key.
        target: [u8; 32],
    },
    /// `target` may not chat for `secs` (1 s to two weeks) from the
    /// action's time.
    Timeout {
        /// The key.
        target: [u8; 32],
        /// Length (1..=[`MAX_TIMEOUT_SECS`]).
        secs: u32,
    },
    /// Removes one message everywhere.
    Delete(MessageRef),
    /// Each sender may send one message per `secs` (0: off).
    SlowMode {
        /// Seconds between one sender's messages (0..=[`MAX_SLOW_SECS`]).
        secs: u32,
    },
    /// Followers-only mode: a viewer may chat only with a follow of the
    /// creator at least `min_follow_secs` old (`None`: off).
    FollowersOnly {
        /// Follow age asked for (0..=[`MAX_FOLLOW_AGE_SECS`]).
        min_follow_secs: Option<u32>,
    },
    /// Paid-viewers-only mode: a viewer may chat only with a pass from the
    /// creator's key server valid when the message was sent.
    PaidOnly {
        /// On or off.
        on: bool,
    },
    /// Names a moderator (the creator only).
    AddModerator {
        /// The moderator's key.
        key: [u8; 32],
    },
    /// Removes a moderator (the creator only).
    RemoveModerator {
        /// The moderator's key.
        key: [u8; 32],
    },
}

impl ModKind {
    /// What the action is about: two actions with the same subject replace
    /// one another (the newer wins), so every node converges on the same
    /// state whatever order they arrive in.
    pub fn subject(&self) -> Subject {
        match self {
            ModKind::Ban { target }
            | ModKind::Unban { target }
            | ModKind::Timeout { target, .. } => Subject::Sender(*target),
            ModKind::Delete(r) => Subject::Message(*r),
            ModKind::SlowMode { .. } => Subject::SlowMode,
            ModKind::FollowersOnly { .. } => Subject::FollowersOnly,
            ModKind::PaidOnly { .. } => Subject::PaidOnly,
            ModKind::AddModerator { key } | ModKind::RemoveModerator { key } => {
                Subject::Moderator(*key)
            }
        }
    }

    /// A short name for logs and the API.
    pub fn label(&self) -> &'static str {
        match self {
            ModKind::Ban { .. } => "ban",
            ModKind::Unban { .. } => "unban",
            ModKind::Timeout { .. } => "timeout",
            ModKind::Delete(_) => "delete",
            ModKind::SlowMode { .. } => "slow_mode",
            ModKind::FollowersOnly { .. } => "followers_only",
            ModKind::PaidOnly { .. } => "paid_only",
            ModKind::AddModerator { .. } => "add_moderator",
            ModKind::RemoveModerator { .. } => "remove_moderator",
        }
    }
}

/// What a moderation action is about ([`ModKind::subject`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A sender's standing (ban, unban, timeout).
    Sender([u8; 32]),
    /// A message (delete).
    Message(MessageRef),
    /// The chat's slow mode.
    SlowMode,
    /// The chat's followers-only mode.
    FollowersOnly,
    /// The chat's paid-viewers-only mode.
    PaidOnly,
    /// A key's moderator role.
    Moderator([u8; 32]),
}

/// A moderation action, as its issuer signs it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ModAction {
    /// The stream whose chat it applies to.
    pub stream: StreamId,
    /// Who issues it: the stream's creator or a moderator it named.
    pub issuer: [u8; 32],
    /// When it was issued (unix ms): the newer of two actions on the same
    /// subject wins.
    pub issued_ms: u64,
    /// What it does.
    pub kind: ModKind,
}

impl ModAction {
    /// Checks every field's range (not the signature or the authority).
    pub fn validate(&self) -> Result<(), WireError> {
        self.stream.validate()?;
        match &self.kind {
            ModKind::Timeout { secs, .. } if *secs == 0 || *secs > MAX_TIMEOUT_SECS => Err(field(
                "mod.timeout",
                format!("{secs} s not in 1..={MAX_TIMEOUT_SECS}"),
            )),
            ModKind::SlowMode { secs } if *secs > MAX_SLOW_SECS => Err(field(
                "mod.slow_mode",
                format!("{secs} s above {MAX_SLOW_SECS}"),
            )),
            ModKind::FollowersOnly {
                min_follow_secs: Some(s),
            } if *s > MAX_FOLLOW_AGE_SECS => Err(field(
                "mod.followers_only",
                format!("{s} s above {MAX_FOLLOW_AGE_SECS}"),
            )),
            _ => Ok(()),
        }
    }

    /// Signs with the issuer's key.
    pub fn sign(self, key: &SigningKey) -> Result<SignedModAction, WireError> {
        if key.verifying_key().to_bytes() != self.issuer {
            return Err(field("mod.issuer", "does not match the signing key"));
        }
        self.validate()?;
        let signature = Sig(key.sign(&signing_bytes(DOMAIN_MOD, &self)).to_bytes());
        Ok(SignedModAction {
            action: self,
            signature,
        })
    }
}

/// A moderation action with its issuer's signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignedModAction {
    /// The signed action.
    pub action: ModAction,
    /// ed25519 by `action.issuer`.
    pub signature: Sig,
}

impl SignedModAction {
    /// Checks field ranges and the issuer's signature (whether the issuer
    /// may moderate is the core's question).
    pub fn verify(&self) -> Result<(), WireError> {
        self.action.validate()?;
        verify(
            &self.action.issuer,
            &signing_bytes(DOMAIN_MOD, &self.action),
            &self.signature,
        )
    }
}

/// What travels on a chat topic.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ChatGossip {
    /// A chat message.
    Message(SignedChatMessage),
    /// A moderation action.
    Mod(SignedModAction),
}

impl ChatGossip {
    /// Encodes for publishing.
    pub fn encode(&self) -> Vec<u8> {
        encode_versioned(self)
    }

    /// Decodes and checks field ranges (signatures are the caller's).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let m: ChatGossip = decode_versioned(bytes, MAX_CHAT_GOSSIP)?;
        match &m {
            ChatGossip::Message(s) => s.message.validate()?,
            ChatGossip::Mod(a) => a.action.validate()?,
        }
        Ok(m)
    }

    /// The stream it is about.
    pub fn stream(&self) -> &StreamId {
        match self {
            ChatGossip::Message(m) => &m.message.stream,
            ChatGossip::Mod(a) => &a.action.stream,
        }
    }
}

/// A late joiner's request: the recent history of one stream's chat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryRequest {
    /// Which chat.
    pub stream: StreamId,
    /// At most this many messages (capped at [`MAX_HISTORY`]).
    pub limit: u16,
}

impl HistoryRequest {
    /// Encodes for sending.
    pub fn encode(&self) -> Vec<u8> {
        encode_versioned(self)
    }

    /// Decodes and checks.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let r: HistoryRequest = decode_versioned(bytes, MAX_HISTORY_REQUEST)?;
        r.stream.validate()?;
        Ok(r)
    }
}

/// The answer: the newest messages (oldest first) and the moderation
/// actions in force, each as signed; the asker checks every one.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryResponse {
    /// Messages, oldest first.
    pub messages: Vec<SignedChatMessage>,
    /// Moderation actions in force.
    pub actions: Vec<SignedModAction>,
}

impl HistoryResponse {
    /// Encodes for sending.
    pub fn encode(&self) -> Vec<u8> {
        encode_versioned(self)
    }

    /// Decodes and checks counts and field ranges (signatures are the
    /// caller's, one by one: a bad entry is dropped, not the answer).
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let r: HistoryResponse = decode_versioned(bytes, MAX_HISTORY_RESPONSE)?;
        if r.messages.len() > MAX_HISTORY {
            return Err(field(
                "history.messages",
                format!("{} above {MAX_HISTORY}", r.messages.len()),
            ));
        }
        if r.actions.len() > MAX_HISTORY_ACTIONS {
            return Err(field(
                "history.actions",
                format!("{} above {MAX_HISTORY_ACTIONS}", r.actions.len()),
            ));
        }
        for m in &r.messages {
            m.message.validate()?;
        }
        for a in &r.actions {
            a.action.validate()?;
        }
        Ok(r)
    }
}
