//! Live chat with moderation that every node enforces.
//!
//! Each stream has a chat topic on gossipsub. A message is signed by its
//! sender's key (with a small proof of work on the key); a moderation
//! action (ban, unban, timeout, delete, slow mode, naming moderators) is
//! signed by the stream's creator or a moderator the creator named. Every
//! node checks both with the same rules ([`core`]) *before* it relays, so a
//! banned key's messages stop at the first honest hop and a flood stops at
//! its rate limit there (gossipsub `Ignore`: not forwarded; forged and
//! malformed messages are `Reject`ed, which costs their forwarder its
//! score).
//!
//! A node joining a chat asks a peer in it for the recent messages and the
//! actions in force over `/vilokanam/chat-history/1` ([`codec`]), checks
//! every entry's signature and applies the same rules.

pub mod actor;
pub mod codec;
pub mod core;
pub mod wire;

pub use self::core::{ChatConfig, ChatCore, ChatOutput, Drop};
pub use wire::{
    chat_topic, ChatGossip, ChatMessage, MessageRef, ModAction, ModKind, SignedChatMessage,
    SignedModAction,
};
