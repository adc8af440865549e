//! The chat core's rules, one by one, on virtual time.

use std::time::{Duration, Instant};

use libp2p::PeerId;

use super::*;
use crate::protocols::chat::wire::{
    find_pow, ChatGossip, ChatMessage, HistoryRequest, HistoryResponse, MessageRef, ModAction,
    ModKind, SignedChatMessage, MAX_CHAT_CHARS, MAX_TIMEOUT_SECS,
};
use crate::protocols::live::wire::{Sig, WireError};
use crate::test_utils::ChatUser as User;

const T0: u64 = 1_700_000_000_000;

fn setup() -> (ChatCore, Instant, StreamId, User) {
    let creator = User::new(1);
    let stream = StreamId::new(creator.id(), "show").unwrap();
    let mut core = ChatCore::new(ChatConfig::default());
    let now = Instant::now();
    assert!(core.join(now, stream.clone()).unwrap());
    (core, now, stream, creator)
}

fn shown(out: &[ChatOutput]) -> Vec<([u8; 32], u64)> {
    out.iter()
        .filter_map(|o| match o {
            ChatOutput::Deliver { message, .. } => {
                Some((message.message.sender, message.message.seq))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn a_message_round_trips_and_forgeries_and_bad_fields_are_refused() {
    let (_, _, stream, _) = setup();
    let mut u = User::new(7);
    let m = u.say(&stream, T0, "hello Kappa");
    m.verify().unwrap();
    let g = ChatGossip::Message(m.clone());
    assert_eq!(ChatGossip::decode(&g.encode()).unwrap(), g);

    let mut forged = m.clone();
    forged.message.text = "hello LUL".into();
    assert_eq!(forged.verify(), Err(WireError::BadSignature));
    // Another key's proof of work does not carry over.
    let mut no_pow = m.clone();
    no_pow.message.pow = no_pow.message.pow.wrapping_add(1);
    let e = no_pow.verify().unwrap_err().to_string();
    assert!(e.contains("chat.pow") || e.contains("signature"), "{e}");
    let cheat = ChatMessage {
        pow: u.pow + 1,
        ..m.message.clone()
    };
    if !crate::protocols::chat::wire::pow_ok(&cheat.sender, cheat.pow) {
        let e = cheat
            .sign(&u.key)
            .unwrap()
            .verify()
            .unwrap_err()
            .to_string();
        assert!(e.contains("chat.pow"), "{e}");
    }

    let bad = |text: String, what: &str| {
        let msg = ChatMessage {
            text,
            ..m.message.clone()
        };
        let e = msg.clone().sign(&u.key).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
        let g = ChatGossip::Message(SignedChatMessage {
            message: msg,
            signature: Sig([0; 64]),
        });
        let e = ChatGossip::decode(&g.encode()).unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    };
    bad("x".repeat(MAX_CHAT_CHARS + 1), "chat.text");
    bad("é".repeat(MAX_CHAT_CHARS + 1), "chat.text");
    bad("   ".into(), "chat.text");
    bad("a\u{7}b".into(), "chat.text");
    // 500 characters of 2 bytes each are fine.
    u.say(&stream, T0, &"é".repeat(MAX_CHAT_CHARS));

    // Oversized and garbage bytes are refused by the decoder.
    assert!(ChatGossip::decode(&[4; 5000]).is_err());
    assert!(ChatGossip::decode(&[]).is_err());
    assert!(HistoryRequest::decode(&[4, 0xff, 0xff]).is_err());
    assert!(HistoryResponse::decode(&[4, 1]).is_err());

    let creator = User::new(1);
    let e = ModAction {
        stream: stream.clone(),
        issuer: creator.id(),
        issued_ms: T0,
        kind: ModKind::Timeout {
            target: [3; 32],
            secs: MAX_TIMEOUT_SECS + 1,
        },
    }
    .sign(&creator.key)
    .unwrap_err();
    assert!(e.to_string().contains("mod.timeout"), "{e}");
    let mut forged_ban = creator.act(&stream, T0, ModKind::Ban { target: [3; 32] });
    forged_ban.action.kind = ModKind::Ban { target: [4; 32] };
    assert_eq!(forged_ban.verify(), Err(WireError::BadSignature));
}

#[test]
fn messages_are_shown_once_and_in_each_senders_order() {
    let (mut core, now, stream, _) = setup();
    let mut a = User::new(10);
    let m1 = a.say(&stream, T0, "one");
    let m2 = a.say(&stream, T0 + 1, "two");
    let m3 = a.say(&stream, T0 + 2, "three");
    // The third overtakes the second: held until the second arrives.
    assert_eq!(
        shown(&core.on_message(now, T0, m1.clone()).unwrap()),
        [(a.id(), 1)]
    );
    assert_eq!(shown(&core.on_message(now, T0, m3.clone()).unwrap()), []);
    assert_eq!(
        shown(&core.on_message(now, T0, m2.clone()).unwrap()),
        [(a.id(), 2), (a.id(), 3)]
    );
    // Each again: a duplicate, not shown, not relayed.
    for m in [m1, m2, m3] {
        assert_eq!(core.on_message(now, T0, m), Err(Drop::Duplicate));
    }
    // A lost message: the next ones wait `reorder_wait`, then show.
    let _lost = a.say(&stream, T0 + 3, "four");
    let m5 = a.say(&stream, T0 + 4, "five");
    assert_eq!(shown(&core.on_message(now, T0, m5).unwrap()), []);
    assert_eq!(shown(&core.tick(now + Duration::from_millis(500), T0)), []);
    assert_eq!(
        shown(&core.tick(now + Duration::from_secs(2), T0)),
        [(a.id(), 5)]
    );
    // The lost one arriving after that is too late for the order.
    assert!(matches!(
        core.on_message(now + Duration::from_secs(3), T0, _lost),
        Err(Drop::Stale(_))
    ));
}

#[test]
fn timestamps_out_of_range_are_dropped() {
    let (mut core, now, stream, _) = setup();
    let mut a = User::new(11);
    let future = a.say(&stream, T0 + 31_000, "from the future");
    assert_eq!(core.on_message(now, T0, future), Err(Drop::Future(31_000)));
    let old = a.say(&stream, T0 - 121_000, "old");
    assert!(matches!(core.on_message(now, T0, old), Err(Drop::Stale(_))));
    let other = StreamId::new([9; 32], "other").unwrap();
    let m = a.say(&other, T0, "elsewhere");
    assert_eq!(core.on_message(now, T0, m), Err(Drop::NotJoined));
}

#[test]
fn a_flooding_key_is_limited_and_the_others_are_not() {
    let (mut core, now, stream, creator) = setup();
    let mut flooder = User::new(20);
    let mut calm = User::new(21);
    // A new key: 10 messages per 30 s.
    let mut ok = 0;
    for i in 0..50 {
        if core
            .on_message(now, T0, flooder.say(&stream, T0 + i, "spam"))
            .is_ok()
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 10);
    assert!(matches!(
        core.on_message(now, T0, flooder.say(&stream, T0 + 60, "spam")),
        Err(Drop::RateLimited { limit: 10, .. })
    ));
    // The calm user is unaffected.
    assert!(core
        .on_message(now, T0, calm.say(&stream, T0 + 61, "hi"))
        .is_ok());
    // Past the new-key age: 20 per 30 s, refilled over time.
    let later = now + Duration::from_secs(360);
    let t = T0 + 360_000;
    let mut ok = 0;
    for i in 0..60 {
        if core
            .on_message(later, t, flooder.say(&stream, t + i, "spam"))
            .is_ok()
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 20);
    // The creator: 100.
    let mut c = creator;
    c.pow = find_pow(&c.id());
    let mut ok = 0;
    for i in 0..150 {
        if core
            .on_message(later, t, c.say(&stream, t + i, "hype"))
            .is_ok()
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 100);
}

#[test]
fn a_swarm_of_fresh_keys_is_held_off() {
    let (mut core, now, stream, _) = setup();
    let spammer = PeerId::random();
    let honest = PeerId::random();
    let mut accepted = 0;
    for seed in 100..160u8 {
        let mut u = User::new(seed);
        if core
            .on_gossip_message(now, T0, spammer, u.say(&stream, T0, "buy followers"))
            .is_ok()
        {
            accepted += 1;
        }
    }
    // 30 new keys a minute from one peer, then its budget refills.
    assert_eq!(accepted, 30);
    let mut late = User::new(200);
    assert_eq!(
        core.on_gossip_message(now, T0, spammer, late.say(&stream, T0, "hello")),
        Err(Drop::NewKeyBudget)
    );
    // A newcomer arriving through another peer is not held off.
    let mut newcomer = User::new(201);
    assert!(core
        .on_gossip_message(
            now,
            T0,
            honest,
            newcomer.say(&stream, T0, "first time here")
        )
        .is_ok());
    // Nor is this node's own user.
    let mut own = User::new(202);
    assert!(core.on_message(now, T0, own.say(&stream, T0, "hi")).is_ok());
    let next = now + Duration::from_secs(4);
    assert!(core
        .on_gossip_message(
            next,
            T0 + 4000,
            spammer,
            late.say(&stream, T0 + 4000, "hello")
        )
        .is_ok());
    let (_, senders, _, _) = core.sizes();
    assert_eq!(senders, 33);
    // Over the whole chat (300 a minute by default; 40 here), from any
    // number of peers.
    let mut core = ChatCore::new(ChatConfig {
        new_keys_per_minute_total: 40,
        ..ChatConfig::default()
    });
    core.join(now, stream.clone()).unwrap();
    let mut total = 0;
    for seed in 0..50u8 {
        let mut u = User::new(seed.wrapping_add(60));
        if core
            .on_gossip_message(now, T0, PeerId::random(), u.say(&stream, T0, "x"))
            .is_ok()
        {
            total += 1;
        }
    }
    assert_eq!(total, 40);
}

#[test]
fn the_rate_is_a_sliding_window_and_slow_mode_cannot_be_backdated() {
    let (mut core, now, stream, creator) = setup();
    let mut u = User::new(40);
    let s = Duration::from_secs;
    // 10 at once (a new key), none more until 30 s after the first.
    for i in 0..10 {
        core.on_message(now, T0, u.say(&stream, T0 + i, "a"))
            .unwrap();
    }
    for at in [1, 15, 29] {
        let t = T0 + at * 1000;
        assert!(matches!(
            core.on_message(now + s(at), t, u.say(&stream, t, "b")),
            Err(Drop::RateLimited { .. })
        ));
    }
    let t = T0 + 30_000;
    assert!(core
        .on_message(now + s(30), t, u.say(&stream, t, "c"))
        .is_ok());
    // Slow mode at 10 s: messages dated in the past count as sent no
    // earlier than the clock skew (30 s) allows.
    let slow = creator.act(&stream, t, ModKind::SlowMode { secs: 10 });
    core.on_action(t, slow).unwrap();
    let mut v = User::new(41);
    let t = T0 + 100_000;
    let later = now + s(100);
    assert!(core
        .on_message(later, t, v.say(&stream, t - 29_000, "1"))
        .is_ok());
    for dated in [t - 25_000, t - 40_000, t - 120_000] {
        assert_eq!(
            core.on_message(later, t, v.say(&stream, dated, "too soon")),
            Err(Drop::SlowMode(10)),
            "dated {dated}"
        );
    }
    assert!(core
        .on_message(later, t, v.say(&stream, t - 19_000, "2"))
        .is_ok());
    assert!(core
        .on_message(later, t, v.say(&stream, t - 9_000, "3"))
        .is_ok());
    // Three within 30 s of real time: the skew window bounds the burst.
    assert_eq!(
        core.on_message(later, t, v.say(&stream, t - 1_000, "4")),
        Err(Drop::SlowMode(10))
    );
}

#[test]
fn held_messages_of_a_banned_sender_are_not_shown_and_history_sets_the_next_counter() {
    let (mut core, now, stream, creator) = setup();
    let mut troll = User::new(45);
    core.on_message(now, T0, troll.say(&stream, T0, "1"))
        .unwrap();
    troll.seq += 1; // 2 is lost
    for _ in 0..3 {
        core.on_message(now, T0, troll.say(&stream, T0, "held"))
            .unwrap();
    }
    assert_eq!(core.sizes().3, 3);
    let ban = creator.act(&stream, T0 + 1, ModKind::Ban { target: troll.id() });
    core.on_action(T0 + 1, ban).unwrap();
    assert_eq!(core.sizes().3, 0, "held messages dropped with the ban");
    assert!(shown(&core.tick(now + Duration::from_secs(3), T0 + 3000)).is_empty());

    // A late joiner whose history holds 5..=9 of a sender shows 10 at once.
    let mut s = User::new(46);
    s.seq = 4;
    let history = HistoryResponse {
        messages: (0..5).map(|_| s.say(&stream, T0, "old")).collect(),
        actions: vec![],
    };
    let mut late = ChatCore::new(ChatConfig::default());
    late.join(now, stream.clone()).unwrap();
    assert_eq!(shown(&late.on_history(now, T0, &stream, history)).len(), 5);
    let next = s.say(&stream, T0, "new");
    assert_eq!(
        shown(&late.on_message(now, T0, next).unwrap()),
        [(s.id(), 10)]
    );
}

#[test]
fn a_lifted_ban_cannot_be_replayed_and_actions_are_rate_limited() {
    let (mut core, _, stream, creator) = setup();
    let x = User::new(47);
    let ban = creator.act(&stream, T0, ModKind::Ban { target: x.id() });
    core.on_action(T0, ban.clone()).unwrap();
    core.on_action(
        T0 + 1,
        creator.act(&stream, T0 + 1, ModKind::Unban { target: x.id() }),
    )
    .unwrap();
    // Someone kept the signed ban and gossips it ten minutes later.
    let later = T0 + 600_000;
    assert!(matches!(core.on_action(later, ban), Err(Drop::Stale(_))));
    assert_eq!(core.may_send(&stream, &x.id(), later), Ok(()));
    // 60 actions a minute per issuer from gossip.
    let mut ok = 0;
    for i in 0..100u64 {
        let d = creator.act(
            &stream,
            later,
            ModKind::Delete(MessageRef {
                sender: [9; 32],
                seq: i,
            }),
        );
        if core.on_action(later, d).is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 60);
}

#[test]
fn bans_timeouts_deletions_and_slow_mode_hold_and_newer_actions_win() {
    let (mut core, now, stream, creator) = setup();
    let mut troll = User::new(30);
    let mut viewer = User::new(31);
    let m1 = troll.say(&stream, T0, "first");
    core.on_message(now, T0, m1.clone()).unwrap();
    assert_eq!(core.history(&stream, 200).messages.len(), 1);

    // Ban: the troll's messages stop and leave the history.
    let ban = creator.act(&stream, T0 + 1, ModKind::Ban { target: troll.id() });
    core.on_action(T0 + 1, ban.clone()).unwrap();
    assert!(core.history(&stream, 200).messages.is_empty());
    assert_eq!(
        core.on_message(now, T0 + 2, troll.say(&stream, T0 + 2, "again")),
        Err(Drop::Banned)
    );
    assert_eq!(core.on_action(T0 + 1, ban.clone()), Err(Drop::Duplicate));
    // An older unban does not undo a newer ban; a newer one does.
    let old_unban = creator.act(&stream, T0, ModKind::Unban { target: troll.id() });
    assert_eq!(core.on_action(T0 + 3, old_unban), Err(Drop::Superseded));
    let unban = creator.act(&stream, T0 + 3, ModKind::Unban { target: troll.id() });
    core.on_action(T0 + 3, unban).unwrap();
    assert!(core
        .on_message(now, T0 + 4, troll.say(&stream, T0 + 4, "sorry"))
        .is_ok());

    // Timeout: until it ends.
    let to = creator.act(
        &stream,
        T0 + 5,
        ModKind::Timeout {
            target: troll.id(),
            secs: 10,
        },
    );
    core.on_action(T0 + 5, to).unwrap();
    assert_eq!(
        core.on_message(now, T0 + 6, troll.say(&stream, T0 + 6, "x")),
        Err(Drop::TimedOut {
            until_ms: T0 + 10_005
        })
    );
    let after = now + Duration::from_secs(11);
    assert!(core
        .on_message(after, T0 + 11_000, troll.say(&stream, T0 + 11_000, "back"))
        .is_ok());

    // Delete: a message is removed, and dropped if it arrives later.
    let m = viewer.say(&stream, T0 + 11_001, "oops");
    let del = creator.act(&stream, T0 + 11_002, ModKind::Delete(m.id()));
    core.on_action(T0 + 11_002, del).unwrap();
    assert_eq!(core.on_message(after, T0 + 11_003, m), Err(Drop::Deleted));

    // Slow mode: one message per 5 s per viewer (by the signed send time).
    let slow = creator.act(&stream, T0 + 11_004, ModKind::SlowMode { secs: 5 });
    core.on_action(T0 + 11_004, slow).unwrap();
    let mut v2 = User::new(32);
    let t = T0 + 12_000;
    assert!(core.on_message(after, t, v2.say(&stream, t, "a")).is_ok());
    assert_eq!(
        core.on_message(after, t, v2.say(&stream, t + 1000, "b")),
        Err(Drop::SlowMode(5))
    );
}

#[test]
fn only_the_creator_and_its_moderators_moderate() {
    let (mut core, now, stream, creator) = setup();
    let moderator = User::new(40);
    let stranger = User::new(41);
    let mut viewer = User::new(42);
    // A ban signed by a stranger (a valid signature, no authority).
    let forged = stranger.act(
        &stream,
        T0,
        ModKind::Ban {
            target: viewer.id(),
        },
    );
    assert!(matches!(
        core.on_action(T0, forged),
        Err(Drop::NotAllowed(_))
    ));
    assert!(core
        .on_message(now, T0, viewer.say(&stream, T0, "still here"))
        .is_ok());
    // The moderator before and after being named.
    let ban = moderator.act(
        &stream,
        T0 + 1,
        ModKind::Ban {
            target: viewer.id(),
        },
    );
    assert!(matches!(
        core.on_action(T0 + 1, ban.clone()),
        Err(Drop::NotAllowed(_))
    ));
    // Gossip does not order the creator's naming before the moderator's
    // first action: the ban waited, and takes effect with the naming.
    let out = core
        .on_action(
            T0,
            creator.act(
                &stream,
                T0,
                ModKind::AddModerator {
                    key: moderator.id(),
                },
            ),
        )
        .unwrap();
    assert!(out.contains(&ChatOutput::Applied(ban.clone())), "{out:?}");
    assert_eq!(core.moderators(&stream), vec![moderator.id()]);
    assert_eq!(core.on_action(T0 + 1, ban), Err(Drop::Duplicate));
    assert_eq!(
        core.may_send(&stream, &viewer.id(), T0 + 2),
        Err(Drop::Banned)
    );
    // A moderator names no moderators and cannot ban the creator or a
    // moderator.
    let e = core
        .on_action(
            T0 + 2,
            moderator.act(
                &stream,
                T0 + 2,
                ModKind::AddModerator { key: stranger.id() },
            ),
        )
        .unwrap_err();
    assert!(matches!(e, Drop::NotAllowed(_)));
    let e = core
        .on_action(
            T0 + 2,
            moderator.act(
                &stream,
                T0 + 2,
                ModKind::Ban {
                    target: creator.id(),
                },
            ),
        )
        .unwrap_err();
    assert!(matches!(e, Drop::NotAllowed(_)));
    // Removed: its next actions are refused.
    core.on_action(
        T0 + 3,
        creator.act(
            &stream,
            T0 + 3,
            ModKind::RemoveModerator {
                key: moderator.id(),
            },
        ),
    )
    .unwrap();
    let e = core
        .on_action(
            T0 + 4,
            moderator.act(
                &stream,
                T0 + 4,
                ModKind::Unban {
                    target: viewer.id(),
                },
            ),
        )
        .unwrap_err();
    assert!(matches!(e, Drop::NotAllowed(_)));
}

#[test]
fn a_late_joiner_takes_the_history_with_its_actions_and_skips_forged_rules() {
    let (mut core, now, stream, creator) = setup();
    let moderator = User::new(50);
    let mut a = User::new(51);
    let mut b = User::new(52);
    core.on_action(
        T0,
        creator.act(
            &stream,
            T0,
            ModKind::AddModerator {
                key: moderator.id(),
            },
        ),
    )
    .unwrap();
    for i in 0..3 {
        core.on_message(now, T0, a.say(&stream, T0 + i, "a"))
            .unwrap();
    }
    core.on_message(now, T0, b.say(&stream, T0 + 5, "b"))
        .unwrap();
    core.on_action(
        T0 + 6,
        moderator.act(&stream, T0 + 6, ModKind::Ban { target: b.id() }),
    )
    .unwrap();
    let h = core.history(&stream, 200);
    assert_eq!(h.messages.len(), 3);
    // The moderator list comes first: the ban rests on it.
    assert!(matches!(
        h.actions[0].action.kind,
        ModKind::AddModerator { .. }
    ));

    // A late joiner an hour later (live messages would be too old).
    let mut late = ChatCore::new(ChatConfig::default());
    late.join(now, stream.clone()).unwrap();
    let mut h2 = h.clone();
    // Reversed: the late joiner still applies the moderator list first.
    h2.actions.reverse();
    // A message of the banned key slipped into the answer: dropped.
    h2.messages.push(b.say(&stream, T0 + 7, "evading"));
    let out = late.on_history(now, T0 + 3_600_000, &stream, h2);
    assert_eq!(shown(&out), [(a.id(), 1), (a.id(), 2), (a.id(), 3)]);
    assert!(out.iter().all(|o| !matches!(
        o,
        ChatOutput::Deliver {
            from_history: false,
            ..
        }
    )));
    assert_eq!(late.moderators(&stream), vec![moderator.id()]);
    assert_eq!(
        late.may_send(&stream, &b.id(), T0 + 3_600_000),
        Err(Drop::Banned)
    );
    // The same answer again adds nothing.
    assert!(shown(&late.on_history(now, T0 + 3_600_000, &stream, h)).is_empty());
}

#[test]
fn two_history_answers_show_each_message_once() {
    let (_, now, stream, _) = setup();
    // More messages of one sender than the live duplicate window holds.
    let mut u = User::new(55);
    let answer = HistoryResponse {
        messages: (0..150).map(|_| u.say(&stream, T0, "m")).collect(),
        actions: vec![],
    };
    let mut late = ChatCore::new(ChatConfig::default());
    late.join(now, stream.clone()).unwrap();
    assert_eq!(
        shown(&late.on_history(now, T0, &stream, answer.clone())).len(),
        150
    );
    assert!(shown(&late.on_history(now, T0, &stream, answer)).is_empty());
    // The next live message follows at once.
    let next = u.say(&stream, T0, "live");
    assert_eq!(
        shown(&late.on_message(now, T0, next).unwrap()),
        [(u.id(), 151)]
    );
}

#[test]
fn state_stays_bounded() {
    let creator = User::new(1);
    let stream = StreamId::new(creator.id(), "show").unwrap();
    let config = ChatConfig {
        max_chats: 2,
        max_senders: 10,
        max_actions: 5,
        max_pending: 3,
        history: 4,
        new_keys_per_minute: 1000,
        ..ChatConfig::default()
    };
    let mut core = ChatCore::new(config);
    let now = Instant::now();
    core.join(now, stream.clone()).unwrap();
    core.join(now, StreamId::new([2; 32], "b").unwrap())
        .unwrap();
    assert_eq!(core.join(now, StreamId::new([3; 32], "c").unwrap()), Err(2));
    let mut users: Vec<User> = (60..80).map(User::new).collect();
    for u in &mut users {
        core.on_message(now, T0, u.say(&stream, T0, "x")).unwrap();
    }
    let (_, senders, _, _) = core.sizes();
    assert_eq!(senders, 10);
    assert_eq!(core.history(&stream, 200).messages.len(), 4);
    // Held messages: at most 3.
    let mut u = User::new(90);
    core.on_message(now, T0, u.say(&stream, T0, "1")).unwrap();
    u.seq += 1;
    let mut held = 0;
    for _ in 0..5 {
        if core.on_message(now, T0, u.say(&stream, T0, "gap")).is_ok() {
            held += 1;
        }
    }
    assert_eq!(held, 3);
    assert_eq!(core.sizes().3, 3);
    // Actions: bans are kept, deletions make room.
    for i in 0..5u8 {
        core.on_action(
            T0,
            creator.act(
                &stream,
                T0,
                ModKind::Delete(MessageRef {
                    sender: [i; 32],
                    seq: 1,
                }),
            ),
        )
        .unwrap();
    }
    core.on_action(
        T0 + 1,
        creator.act(&stream, T0 + 1, ModKind::Ban { target: [7; 32] }),
    )
    .unwrap();
    assert_eq!(core.sizes().2, 5);
    for i in 0..4u8 {
        core.on_action(
            T0 + 2,
            creator.act(
                &stream,
                T0 + 2,
                ModKind::Ban {
                    target: [100 + i; 32],
                },
            ),
        )
        .unwrap();
    }
    assert_eq!(
        core.on_action(
            T0 + 3,
            creator.act(&stream, T0 + 3, ModKind::Ban { target: [120; 32] })
        ),
        Err(Drop::Full)
    );
    assert_eq!(core.sizes().2, 5);
}

proptest::proptest! {
    /// Any bytes: decoded or refused, never a panic.
    #[test]
    fn any_bytes_decode_or_are_refused(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..4096)) {
        let _ = ChatGossip::decode(&bytes);
        let _ = HistoryRequest::decode(&bytes);
        let _ = HistoryResponse::decode(&bytes);
    }
}

#[test]
fn followers_only_asks_for_a_follow_old_enough_carried_with_the_message() {
    let (mut core, now, stream, creator) = setup();
    let t = T0 + 1_000_000;
    let on = creator.act(
        &stream,
        t,
        ModKind::FollowersOnly {
            min_follow_secs: Some(600),
        },
    );
    core.on_action(t, on).unwrap();
    let mut u = User::new(60);
    // No follow.
    assert_eq!(
        core.on_message(now, t, u.say(&stream, t, "hi")),
        Err(Drop::FollowersOnly(600))
    );
    // A follow of five minutes: too recent.
    let recent = u.follow_op(stream.creator, t - 300_000);
    assert_eq!(
        core.on_message(now, t, u.say_with(&stream, t, "hi", Some(recent))),
        Err(Drop::FollowersOnly(600))
    );
    // A follow of an hour: in.
    let old = u.follow_op(stream.creator, t - 3_600_000);
    assert!(core
        .on_message(now, t, u.say_with(&stream, t, "hi", Some(old)))
        .is_ok());
    // Someone else's follow, or a follow of another creator, does not
    // sign: refused at the wire.
    let other = User::new(61);
    let theirs = other.follow_op(stream.creator, t - 3_600_000);
    let msg = ChatMessage {
        follow: Some(Box::new(theirs)),
        ..u.say(&stream, t, "borrowed").message
    };
    assert!(msg
        .sign(&u.key)
        .unwrap_err()
        .to_string()
        .contains("chat.follow"));
    let mut forged = u.say_with(
        &stream,
        t,
        "x",
        Some(u.follow_op(stream.creator, t - 3_600_000)),
    );
    if let Some(f) = &mut forged.message.follow {
        f.op.at_ms -= 1_000_000;
    }
    assert!(forged.verify().is_err());
    // The creator and moderators are not held to it; off lifts it.
    let mut c = User::new(1);
    assert!(core
        .on_message(now, t, c.say(&stream, t, "creator"))
        .is_ok());
    let off = creator.act(
        &stream,
        t + 1,
        ModKind::FollowersOnly {
            min_follow_secs: None,
        },
    );
    core.on_action(t + 1, off).unwrap();
    let mut w = User::new(62);
    assert!(core
        .on_message(now, t + 2, w.say(&stream, t + 2, "free"))
        .is_ok());
    // Out of range: more than 90 days.
    let too_long = ModAction {
        stream: stream.clone(),
        issuer: creator.id(),
        issued_ms: t,
        kind: ModKind::FollowersOnly {
            min_follow_secs: Some(crate::protocols::chat::wire::MAX_FOLLOW_AGE_SECS + 1),
        },
    };
    assert!(too_long.sign(&creator.key).is_err());
}

#[test]
fn paid_only_asks_for_the_creators_pass_carried_with_the_message() {
    use crate::protocols::chat::wire::ViewerPass;
    let (mut core, now, stream, creator) = setup();
    let t = T0 + 2_000_000;
    let on = creator.act(&stream, t, ModKind::PaidOnly { on: true });
    core.on_action(t, on).unwrap();
    let mut u = User::new(70);
    // No pass.
    assert_eq!(
        core.on_message(now, t, u.say(&stream, t, "hi")),
        Err(Drop::PaidOnly)
    );
    let pass = |holder: [u8; 32], until_ms: u64, by: &User| {
        ViewerPass {
            stream: stream.clone(),
            holder,
            until_ms,
        }
        .sign(&by.key)
    };
    let with = |u: &mut User, p| {
        u.seq += 1;
        ChatMessage {
            stream: stream.clone(),
            sender: u.id(),
            seq: u.seq,
            sent_ms: t,
            text: "paid".into(),
            pow: u.pow,
            follow: None,
            pass: Some(Box::new(p)),
        }
        .sign(&u.key)
    };
    // An expired pass: dropped; a current one: in.
    let old = pass(u.id(), t - 1, &creator).unwrap();
    assert_eq!(
        core.on_message(now, t, with(&mut u, old).unwrap()),
        Err(Drop::PaidOnly)
    );
    let good = pass(u.id(), t + 60_000, &creator).unwrap();
    assert!(core
        .on_message(now, t, with(&mut u, good.clone()).unwrap())
        .is_ok());
    // Someone else's pass does not sign; a pass signed by another key
    // than the creator's cannot be made, and a forged one fails the check.
    let mut v = User::new(71);
    assert!(with(&mut v, good.clone())
        .unwrap_err()
        .to_string()
        .contains("chat.pass"));
    assert!(pass(v.id(), t + 60_000, &v).is_err());
    let mut forged = pass(v.id(), t + 60_000, &creator).unwrap();
    forged.pass.until_ms += 1;
    assert!(with(&mut v, forged).unwrap().verify().is_err());
    // Moderators are exempt; off lifts it.
    let mut c = User::new(1);
    assert!(core
        .on_message(now, t, c.say(&stream, t, "creator"))
        .is_ok());
    let off = creator.act(&stream, t + 1, ModKind::PaidOnly { on: false });
    core.on_action(t + 1, off).unwrap();
    let mut w = User::new(72);
    assert!(core
        .on_message(now, t + 2, w.say(&stream, t + 2, "free"))
        .is_ok());
}
