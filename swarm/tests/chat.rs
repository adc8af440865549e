//! Chat between five honest nodes in process (A — B — C — D — E on
//! loopback, plus a late joiner F on E): every message reaches every node
//! exactly once and in its sender's order; a ban by the creator holds at
//! every node, and a banned key's message injected at D stops there; a
//! ban signed by a stranger and a forged signature are dropped at the
//! first hop; a late joiner gets the history and the ban.

use std::collections::HashMap;

use anyhow::Result;
use libp2p::gossipsub::IdentTopic;
use vilokanam_swarm::protocols::chat::wire::{chat_topic, ChatGossip, ModKind, SignedModAction};
use vilokanam_swarm::protocols::chat::Drop;
use vilokanam_swarm::protocols::live::actor::unix_ms;
use vilokanam_swarm::test_utils::ChatUser as User;
use vilokanam_swarm::{Event, StreamId};

mod common;
use common::{forger, honest, Events, Honest};

/// (sender's first byte, seq, from history) of every message shown.
fn shown(events: &Events) -> Vec<([u8; 32], u64, bool)> {
    events
        .snapshot()
        .into_iter()
        .filter_map(|e| match e {
            Event::ChatMessage {
                message,
                from_history,
            } => Some((message.message.sender, message.message.seq, from_history)),
            _ => None,
        })
        .collect()
}

fn actions(events: &Events) -> Vec<SignedModAction> {
    events
        .snapshot()
        .into_iter()
        .filter_map(|e| match e {
            Event::ChatModeration { action } => Some(*action),
            _ => None,
        })
        .collect()
}

fn has(events: &Events, sender: [u8; 32], seq: u64) -> bool {
    shown(events)
        .iter()
        .any(|(s, q, _)| *s == sender && *q == seq)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_reaches_everyone_once_in_order_and_moderation_holds_at_every_hop() -> Result<()> {
    let creator = User::new(1);
    let stream = StreamId::new(creator.id(), "show")?;
    let topic = chat_topic(&stream);
    let mut nodes: Vec<Honest> = Vec::new();
    for _ in 0..5 {
        nodes.push(honest().await?);
    }
    for i in 1..5 {
        nodes[i].client.dial(nodes[i - 1].addr.clone()).await?;
    }
    for n in &nodes {
        n.client.chat_join(stream.clone()).await?;
    }
    // Each link's two ends see each other in the chat.
    for i in 1..5 {
        let (a, b) = (&nodes[i - 1], &nodes[i]);
        let (ap, bp) = (a.client.peer_id(), b.client.peer_id());
        a.events
            .wait("neighbour in the chat", |_| a.events.subscribed(bp, &topic))
            .await?;
        b.events
            .wait("neighbour in the chat", |_| b.events.subscribed(ap, &topic))
            .await?;
    }

    // Three senders at A, C and E, ten messages each (a new key's burst).
    let mut users: Vec<User> = (10..13).map(User::new).collect();
    for round in 0..10 {
        for (u, at) in users.iter_mut().zip([0usize, 2, 4]) {
            let m = u.say(&stream, unix_ms(), &format!("message {round}"));
            nodes[at].client.chat_send(m).await?;
        }
    }
    for (i, n) in nodes.iter().enumerate() {
        n.events
            .wait(&format!("node {i} shows all 30"), |_| {
                shown(&n.events).len() >= 30
            })
            .await?;
    }
    for (i, n) in nodes.iter().enumerate() {
        let s = shown(&n.events);
        let mut per: HashMap<[u8; 32], Vec<u64>> = HashMap::new();
        for (sender, seq, hist) in &s {
            assert!(!hist, "node {i}: a live message marked as history");
            per.entry(*sender).or_default().push(*seq);
        }
        assert_eq!(s.len(), 30, "node {i}: each message exactly once");
        for u in &users {
            assert_eq!(
                per[&u.id()],
                (1..=10).collect::<Vec<u64>>(),
                "node {i}: in order"
            );
        }
    }
    // The eleventh within 30 s is over a new key's rate: refused at once.
    let m = users[0].say(&stream, unix_ms(), "one more");
    let e = nodes[0].client.chat_send(m).await.unwrap_err();
    assert!(e.to_string().contains("rate limit"), "{e}");

    // The creator bans a troll, from A: every node applies it.
    let mut troll = User::new(20);
    let ban = creator.act(&stream, unix_ms(), ModKind::Ban { target: troll.id() });
    nodes[0].client.chat_moderate(ban.clone()).await?;
    for (i, n) in nodes.iter().enumerate() {
        n.events
            .wait(&format!("node {i} applies the ban"), |_| {
                actions(&n.events).contains(&ban)
            })
            .await?;
    }
    // Its own node refuses to send for it...
    let e = nodes[4]
        .client
        .chat_send(troll.say(&stream, unix_ms(), "let me in"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("banned"), "{e}");
    // ... and a banned message injected at D stops there. So do a ban by
    // a stranger and a message whose signature was tampered with.
    let d = (nodes[3].client.peer_id(), nodes[3].addr.clone());
    let chat = IdentTopic::new(topic.clone());
    let banned = troll.say(&stream, unix_ms(), "evading the ban");
    forger(
        chat.clone(),
        vec![d.clone()],
        ChatGossip::Message(banned.clone()).encode(),
    )
    .await?;
    let victim = User::new(21);
    let stranger = User::new(22);
    let fake_ban = stranger.act(
        &stream,
        unix_ms(),
        ModKind::Ban {
            target: victim.id(),
        },
    );
    forger(
        chat.clone(),
        vec![d.clone()],
        ChatGossip::Mod(fake_ban.clone()).encode(),
    )
    .await?;
    let mut victim = victim;
    let mut tampered = victim.say(&stream, unix_ms(), "original");
    tampered.message.text = "tampered".into();
    forger(
        chat.clone(),
        vec![d.clone()],
        ChatGossip::Message(tampered).encode(),
    )
    .await?;
    let dropped = |why: fn(&Drop) -> bool| {
        nodes[3]
            .events
            .snapshot()
            .iter()
            .any(|e| matches!(e, Event::ChatDropped { reason, .. } if why(reason)))
    };
    nodes[3]
        .events
        .wait(
            "D drops the banned key's message and the stranger's ban, rejects the tampered one",
            |_| {
                dropped(|r| *r == Drop::Banned)
                    && dropped(|r| matches!(r, Drop::NotAllowed(_)))
                    && !nodes[3].events.rejections().is_empty()
            },
        )
        .await?;
    // The victim (not banned, whatever the stranger signed) then speaks
    // through another forger at D: its message reaches A, after the others.
    victim.seq = 5;
    let control = victim.say(&stream, unix_ms(), "still here");
    forger(
        chat.clone(),
        vec![d],
        ChatGossip::Message(control.clone()).encode(),
    )
    .await?;
    for (i, n) in nodes.iter().enumerate() {
        n.events
            .wait(&format!("node {i} shows the control message"), |_| {
                has(&n.events, victim.id(), control.message.seq)
            })
            .await?;
        assert!(
            !has(&n.events, troll.id(), banned.message.seq),
            "node {i} showed a banned message"
        );
        // It stopped at D: the other nodes never had it to drop (they know
        // the ban too, so showing nothing alone would not tell).
        if i != 3 {
            let got_it = n.events.snapshot().iter().any(|e| {
                matches!(
                    e,
                    Event::ChatDropped {
                        reason: Drop::Banned,
                        ..
                    }
                )
            });
            assert!(
                !got_it,
                "node {i} received the banned message: D relayed it"
            );
        }
        assert!(
            !actions(&n.events).contains(&fake_ban),
            "node {i} applied a stranger's ban"
        );
        assert!(
            !has(&n.events, victim.id(), 1),
            "node {i} showed a tampered message"
        );
    }

    // A late joiner on E gets the recent history and the ban.
    let f = honest().await?;
    f.client.dial(nodes[4].addr.clone()).await?;
    f.client.chat_join(stream.clone()).await?;
    f.events
        .wait("F gets the history", |_| shown(&f.events).len() >= 31)
        .await?;
    f.events
        .wait("F knows the ban", |_| actions(&f.events).contains(&ban))
        .await?;
    let s = shown(&f.events);
    assert!(s.iter().all(|(_, _, hist)| *hist), "history marked as such");
    assert_eq!(
        s.len(),
        31,
        "the 30 messages and the control message, once each"
    );
    let e = f
        .client
        .chat_send(troll.say(&stream, unix_ms(), "new node, same troll"))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("banned"), "{e}");
    Ok(())
}
