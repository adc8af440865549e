//! Chat: this node's side of `swarm::protocols::chat`. It signs the user's
//! messages and moderation actions with the creator key (the user's
//! identity), keeps its message counters and the actions in force in the
//! store, and turns the swarm's chat events into the API's
//! ([`ChatEvent`], server-sent to `GET /api/v0/streams/{id}/chat/events`).
//!
//! Watching or publishing a stream joins its chat; `chat/join` joins one
//! without the video.

use tokio::sync::{broadcast, OnceCell};
use tracing::{debug, warn};
use vilokanam_api::{ChatActionInfo, ChatEvent, ChatMessageInfo, ChatModerate, ChatView};
use vilokanam_swarm::protocols::chat::wire::{
    find_pow, ChatGossip, ChatMessage, MessageRef, ModAction, ModKind, SignedChatMessage,
    SignedModAction, Subject,
};
use vilokanam_swarm::StreamId;

use super::publisher::now_ms;
use super::{parse_stream, NodeError, NodeHandle};

/// Chat events buffered per API subscriber before the slowest misses some.
const EVENT_BUFFER: usize = 1024;

/// The node's chat desk (in `Inner`). Messages and actions are signed
/// with the creator key (the publisher's).
pub(crate) struct ChatDesk {
    /// The creator key's proof of work, found once (off the async workers).
    pow: OnceCell<u64>,
    events: broadcast::Sender<(StreamId, ChatEvent)>,
    /// One send at a time: a counter taken for a refused message is given
    /// back before the next is taken.
    sending: tokio::sync::Mutex<()>,
    /// Chats whose kept actions this node re-applied since it joined them
    /// (at most [`MAX_REPLAYED`]; cleared when full).
    pub(crate) replayed: std::sync::Mutex<std::collections::HashSet<StreamId>>,
}

/// Chats remembered as re-applied.
const MAX_REPLAYED: usize = 1024;

impl ChatDesk {
    pub(crate) fn new() -> Self {
        ChatDesk {
            pow: OnceCell::new(),
            events: broadcast::channel(EVENT_BUFFER).0,
            sending: tokio::sync::Mutex::new(()),
            replayed: Default::default(),
        }
    }
}

fn hex_key(s: &str, what: &str) -> Result<[u8; 32], NodeError> {
    super::parse_hex_key(s, what).map_err(NodeError::InvalidChat)
}

/// A swarm refusal as the API reports it: 429 when waiting helps, 403
/// otherwise, 400 for malformed input.
fn chat_error(e: vilokanam_swarm::SwarmError) -> NodeError {
    use vilokanam_swarm::protocols::chat::Drop;
    match e {
        vilokanam_swarm::SwarmError::ChatRefused(d) => NodeError::ChatRefused {
            retry: matches!(
                d,
                Drop::RateLimited { .. }
                    | Drop::SlowMode(_)
                    | Drop::TimedOut { .. }
                    | Drop::NewKeyBudget
            ),
            reason: d.to_string(),
        },
        vilokanam_swarm::SwarmError::Chat(why) => NodeError::InvalidChat(why),
        other => other.into(),
    }
}

/// The API's view of a signed message.
pub fn message_info(m: &SignedChatMessage, from_history: bool) -> ChatMessageInfo {
    let msg = &m.message;
    ChatMessageInfo {
        stream: msg.stream.to_string(),
        sender: hex::encode(msg.sender),
        seq: msg.seq,
        sent_ms: msg.sent_ms,
        text: msg.text.clone(),
        from_history,
    }
}

/// The API's view of a signed action.
pub fn action_info(a: &SignedModAction) -> ChatActionInfo {
    let act = &a.action;
    let action = match &act.kind {
        ModKind::Ban { target } => ChatModerate::Ban {
            target: hex::encode(target),
        },
        ModKind::Unban { target } => ChatModerate::Unban {
            target: hex::encode(target),
        },
        ModKind::Timeout { target, secs } => ChatModerate::Timeout {
            target: hex::encode(target),
            secs: *secs,
        },
        ModKind::Delete(r) => ChatModerate::Delete {
            sender: hex::encode(r.sender),
            seq: r.seq,
        },
        ModKind::SlowMode { secs } => ChatModerate::SlowMode { secs: *secs },
        ModKind::FollowersOnly { min_follow_secs } => ChatModerate::FollowersOnly {
            min_follow_secs: *min_follow_secs,
        },
        ModKind::PaidOnly { on } => ChatModerate::PaidOnly { on: *on },
        ModKind::AddModerator { key } => ChatModerate::AddModerator {
            key: hex::encode(key),
        },
        ModKind::RemoveModerator { key } => ChatModerate::RemoveModerator {
            key: hex::encode(key),
        },
    };
    ChatActionInfo {
        stream: act.stream.to_string(),
        issuer: hex::encode(act.issuer),
        issued_ms: act.issued_ms,
        action,
    }
}

fn kind_of(req: &ChatModerate) -> Result<ModKind, NodeError> {
    Ok(match req {
        ChatModerate::Ban { target } => ModKind::Ban {
            target: hex_key(target, "target")?,
        },
        ChatModerate::Unban { target } => ModKind::Unban {
            target: hex_key(target, "target")?,
        },
        ChatModerate::Timeout { target, secs } => ModKind::Timeout {
            target: hex_key(target, "target")?,
            secs: *secs,
        },
        ChatModerate::Delete { sender, seq } => ModKind::Delete(MessageRef {
            sender: hex_key(sender, "sender")?,
            seq: *seq,
        }),
        ChatModerate::SlowMode { secs } => ModKind::SlowMode { secs: *secs },
        ChatModerate::FollowersOnly { min_follow_secs } => ModKind::FollowersOnly {
            min_follow_secs: *min_follow_secs,
        },
        ChatModerate::PaidOnly { on } => ModKind::PaidOnly { on: *on },
        ChatModerate::AddModerator { key } => ModKind::AddModerator {
            key: hex_key(key, "key")?,
        },
        ChatModerate::RemoveModerator { key } => ModKind::RemoveModerator {
            key: hex_key(key, "key")?,
        },
    })
}

/// The store's key of an action's subject.
fn subject_key(s: &Subject) -> Vec<u8> {
    match s {
        Subject::Sender(k) => format!("sender/{}", hex::encode(k)).into_bytes(),
        Subject::Message(r) => format!("message/{}/{}", hex::encode(r.sender), r.seq).into_bytes(),
        Subject::SlowMode => b"slow".to_vec(),
        Subject::FollowersOnly => b"followers-only".to_vec(),
        Subject::PaidOnly => b"paid-only".to_vec(),
        Subject::Moderator(k) => format!("moderator/{}", hex::encode(k)).into_bytes(),
    }
}

impl NodeHandle {
    /// Takes part in `stream`'s chat: subscribes, asks a peer for the
    /// history, and re-applies the actions in force this node kept.
    pub async fn chat_join(&self, stream: &str) -> Result<StreamId, NodeError> {
        let id = parse_stream(stream)?;
        self.chat_join_id(&id).await?;
        Ok(id)
    }

    pub(crate) async fn chat_join_id(&self, id: &StreamId) -> Result<(), NodeError> {
        // The swarm joins the chat of every stream it follows on its own;
        // the actions this node kept are re-applied once per join.
        let new = self
            .inner
            .swarm
            .chat_join(id.clone())
            .await
            .map_err(|e| match e {
                vilokanam_swarm::SwarmError::Chat(why) => NodeError::ChatCapacity(why),
                other => other.into(),
            })?;
        {
            let mut done = super::lock(&self.inner.chat.replayed);
            if !new && done.contains(id) {
                return Ok(());
            }
            if done.len() >= MAX_REPLAYED {
                done.clear();
            }
            done.insert(id.clone());
        }
        let store = self.inner.store.chat.clone();
        let key = id.to_string();
        let kept = tokio::task::spawn_blocking(move || store.actions(&key))
            .await
            .map_err(|e| NodeError::InvalidChat(e.to_string()))??;
        for bytes in kept {
            // Re-published: peers that restarted learn them again; ones
            // that hold them drop the duplicate.
            match ChatGossip::decode(&bytes) {
                Ok(ChatGossip::Mod(a)) => {
                    if let Err(e) = self.inner.swarm.chat_moderate(a).await {
                        debug!(stream = %id, error = %e, "a kept chat action no longer applies");
                    }
                }
                _ => warn!(stream = %id, "a kept chat action is corrupt; skipped"),
            }
        }
        Ok(())
    }

    /// Leaves `stream`'s chat.
    pub async fn chat_leave(&self, stream: &str) -> Result<(), NodeError> {
        let id = parse_stream(stream)?;
        super::lock(&self.inner.chat.replayed).remove(&id);
        Ok(self.inner.swarm.chat_leave(id).await?)
    }

    /// Sends a message to `stream`'s chat (joining it first), signed with
    /// this node's creator key. Refused, with the rule, when the chat's
    /// rules refuse it here (every peer would).
    pub async fn chat_send(&self, stream: &str, text: &str) -> Result<ChatMessageInfo, NodeError> {
        let id = parse_stream(stream)?;
        self.chat_join_id(&id).await?;
        let desk = &self.inner.chat;
        let me = self.inner.identity.creator;
        let pow = *desk
            .pow
            .get_or_try_init(
                || async move { tokio::task::spawn_blocking(move || find_pow(&me)).await },
            )
            .await
            .map_err(|e| NodeError::InvalidChat(e.to_string()))?;
        // The user's follow of the creator goes with every message (a
        // followers-only chat asks for it).
        let follow = self.follow_of(id.creator).await;
        // And, for a paid stream it pays for, the creator's pass (a
        // paid-viewers-only chat asks for it).
        let pass = self.inner.payments.pass_for(&id);
        let draft = ChatMessage {
            stream: id.clone(),
            sender: me,
            seq: 0,
            sent_ms: now_ms(),
            text: text.to_owned(),
            pow,
            follow: follow.map(Box::new),
            pass: pass.map(Box::new),
        };
        // Checked before a counter is spent on it.
        draft
            .validate()
            .map_err(|e| NodeError::InvalidChat(e.to_string()))?;
        let _one = desk.sending.lock().await;
        let store = self.inner.store.chat.clone();
        let key = id.to_string();
        let seq = tokio::task::spawn_blocking(move || store.next_seq(&key))
            .await
            .map_err(|e| NodeError::InvalidChat(e.to_string()))??;
        let signed = ChatMessage { seq, ..draft }
            .sign(self.inner.publisher.signing_key())
            .map_err(|e| NodeError::InvalidChat(e.to_string()))?;
        let info = message_info(&signed, false);
        if let Err(e) = self.inner.swarm.chat_send(signed).await {
            let store = self.inner.store.chat.clone();
            let key = id.to_string();
            let _ = tokio::task::spawn_blocking(move || store.release_seq(&key, seq)).await;
            return Err(chat_error(e));
        }
        Ok(info)
    }

    /// Signs and publishes a moderation action in `stream`'s chat (this
    /// node's creator key must be the stream's creator or a moderator).
    pub async fn chat_moderate(
        &self,
        stream: &str,
        req: &ChatModerate,
    ) -> Result<ChatActionInfo, NodeError> {
        let id = parse_stream(stream)?;
        self.chat_join_id(&id).await?;
        let kind = kind_of(req)?;
        let signed = ModAction {
            stream: id,
            issuer: self.inner.identity.creator,
            issued_ms: now_ms(),
            kind,
        }
        .sign(self.inner.publisher.signing_key())
        .map_err(|e| NodeError::InvalidChat(e.to_string()))?;
        let info = action_info(&signed);
        self.inner
            .swarm
            .chat_moderate(signed)
            .await
            .map_err(chat_error)?;
        Ok(info)
    }

    /// Fails unless this node is in `stream`'s chat.
    pub async fn chat_joined(&self, stream: &str) -> Result<StreamId, NodeError> {
        let id = parse_stream(stream)?;
        match self.inner.swarm.chat_state(id.clone()).await? {
            Some(_) => Ok(id),
            None => Err(NodeError::NotInChat(id.to_string())),
        }
    }

    /// The chat as this node holds it: recent messages, moderators, actions.
    pub async fn chat_view(&self, stream: &str) -> Result<ChatView, NodeError> {
        let id = parse_stream(stream)?;
        let Some((history, moderators)) = self.inner.swarm.chat_state(id.clone()).await? else {
            return Err(NodeError::NotInChat(id.to_string()));
        };
        Ok(ChatView {
            messages: history
                .messages
                .iter()
                .map(|m| message_info(m, false))
                .collect(),
            moderators: moderators.iter().map(hex::encode).collect(),
            actions: history.actions.iter().map(action_info).collect(),
        })
    }

    /// The chat events of every chat, as they happen, and a receiver that
    /// turns true when the node stops (event streams end then, so that the
    /// API's graceful shutdown is not held open by a listener).
    pub fn chat_events(
        &self,
    ) -> (
        broadcast::Receiver<(StreamId, ChatEvent)>,
        tokio::sync::watch::Receiver<bool>,
    ) {
        (
            self.inner.chat.events.subscribe(),
            self.inner.stop.subscribe(),
        )
    }

    pub(crate) fn on_chat_message(&self, m: &SignedChatMessage, from_history: bool) {
        self.inner.metrics.chat_messages.inc();
        let _ = self.inner.chat.events.send((
            m.message.stream.clone(),
            ChatEvent::Message(message_info(m, from_history)),
        ));
    }

    pub(crate) fn on_chat_action(&self, a: SignedModAction) {
        let _ = self.inner.chat.events.send((
            a.action.stream.clone(),
            ChatEvent::Moderation(action_info(&a)),
        ));
        let store = self.inner.store.chat.clone();
        tokio::task::spawn_blocking(move || {
            let stream = a.action.stream.to_string();
            let subject = subject_key(&a.action.kind.subject());
            let bytes = ChatGossip::Mod(a.clone()).encode();
            if let Err(e) = store.keep_action(&stream, &subject, a.action.issued_ms, &bytes) {
                warn!(%stream, error = %e, "cannot keep a chat action");
            }
        });
    }
}
