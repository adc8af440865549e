//! Social records between nodes in process, on loopback:
//!
//! - on a fixed line A — B — C — D — E (no discovery, so no DHT walks) a
//!   profile set at A reaches E over the social topic, a late joiner F gets
//!   it pushed on subscription, and two nodes of one user following and
//!   unfollowing at once converge with nothing lost;
//! - on the DHT (discovery on), a record put by a bare Kademlia peer (no
//!   gossip at all) resolves from every node, and the nodes store only what
//!   passes the rules;
//! - bad records (forged, replayed older version, oversized, expired, a
//!   flood from one key) are refused with their reason at the first hop and
//!   change nothing there or beyond.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures::StreamExt;
use libp2p::gossipsub::{IdentTopic, MessageAcceptance};
use libp2p::kad::{self, Quorum};
use libp2p::swarm::SwarmEvent;
use libp2p::{identity, PeerId};
use prometheus_client::registry::Registry;
use tokio::sync::mpsc;
use vilokanam_swarm::behaviour::BehaviourEvent;
use vilokanam_swarm::protocols::live::actor::unix_ms;
use vilokanam_swarm::protocols::social::core::followed;
use vilokanam_swarm::protocols::social::{
    RecordError, RecordKey, RecordKind, SocialRecord, SOCIAL_TOPIC,
};
use vilokanam_swarm::test_utils::SocialUser as User;
use vilokanam_swarm::{Config, Event};

mod common;
use common::{honest, local_config, node, Events, Honest};

fn refusals(events: &Events) -> Vec<RecordError> {
    events
        .snapshot()
        .into_iter()
        .filter_map(|e| match e {
            Event::SocialRefused { reason, .. } => Some(reason),
            _ => None,
        })
        .collect()
}

fn rate_limited(events: &Events) -> usize {
    events
        .snapshot()
        .iter()
        .filter(|e| matches!(e, Event::SocialRateLimited { .. }))
        .count()
}

fn heard(events: &Events, pred: impl Fn(&SocialRecord) -> bool) -> bool {
    events.snapshot().iter().any(|e| match e {
        Event::SocialRecord { record, .. } => pred(record),
        _ => false,
    })
}

fn is_profile(name: &'static str) -> impl Fn(&SocialRecord) -> bool {
    move |r| matches!(r, SocialRecord::Profile(p) if p.profile.name == name)
}

fn profile_name(r: &Option<SocialRecord>) -> Option<String> {
    match r {
        Some(SocialRecord::Profile(p)) => Some(p.profile.name.clone()),
        _ => None,
    }
}

/// A bad record, and the refusal it must get.
type Case = (&'static str, Vec<u8>, fn(&RecordError) -> bool);

/// What an injector is told to do.
enum Do {
    /// Publish raw bytes on the social topic.
    Gossip(Vec<u8>),
    /// Put a raw record at one peer (a Kademlia `PUT_VALUE`).
    PutTo(PeerId, Vec<u8>, Vec<u8>),
    /// Put a raw record on the DHT (closest peers), answer when stored.
    PutDht(Vec<u8>, Vec<u8>, tokio::sync::oneshot::Sender<bool>),
}

/// A bare libp2p peer with our behaviour and none of our rules: it sends
/// whatever bytes it is told, on the topic or as DHT puts. Returns once
/// every `target` is subscribed to the social topic.
async fn injector(targets: &[&Honest], discovery: bool) -> Result<mpsc::Sender<Do>> {
    let key = identity::Keypair::generate_ed25519();
    let config = Config {
        discovery,
        ..local_config()
    };
    let mut swarm = vilokanam_swarm::build_swarm(key, &config, &mut Registry::default())?;
    for t in targets {
        let peer = t.client.peer_id();
        if discovery {
            swarm.behaviour_mut().kad.add_address(&peer, t.addr.clone());
        }
        swarm.dial(t.addr.clone())?;
    }
    let mut waiting: Vec<PeerId> = targets.iter().map(|t| t.client.peer_id()).collect();
    let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
    let mut ready_tx = Some(ready_tx);
    let (tx, mut rx) = mpsc::channel::<Do>(64);
    let topic = IdentTopic::new(SOCIAL_TOPIC);
    tokio::spawn(async move {
        let mut puts = std::collections::HashMap::new();
        loop {
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => return,
                    Some(Do::Gossip(b)) => {
                        let _ = swarm.behaviour_mut().gossipsub.publish(topic.clone(), b);
                    }
                    Some(Do::PutTo(peer, k, v)) => {
                        swarm.behaviour_mut().kad.put_record_to(
                            kad::Record::new(k, v), std::iter::once(peer), Quorum::One);
                    }
                    Some(Do::PutDht(k, v, reply)) => {
                        let r = kad::Record::new(k, v);
                        if let Ok(id) = swarm.behaviour_mut().kad.put_record(r, Quorum::One) {
                            puts.insert(id, reply);
                        }
                    }
                },
                ev = swarm.select_next_some() => match ev {
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(
                        libp2p::gossipsub::Event::Subscribed { peer_id, topic: t },
                    )) if t == topic.hash() => {
                        waiting.retain(|p| *p != peer_id);
                        if waiting.is_empty() {
                            if let Some(r) = ready_tx.take() {
                                let _ = r.send(());
                            }
                        }
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Gossipsub(
                        libp2p::gossipsub::Event::Message { propagation_source, message_id, .. },
                    )) => {
                        swarm.behaviour_mut().gossipsub.report_message_validation_result(
                            &message_id, &propagation_source, MessageAcceptance::Ignore);
                    }
                    SwarmEvent::Behaviour(BehaviourEvent::Kad(
                        kad::Event::OutboundQueryProgressed { id, result: kad::QueryResult::PutRecord(r), .. },
                    )) => {
                        if let Some(reply) = puts.remove(&id) {
                            let _ = reply.send(r.is_ok());
                        }
                    }
                    _ => {}
                },
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(30), ready_rx)
        .await
        .context("injector: targets never subscribed")??;
    Ok(tx)
}

async fn line(n: usize) -> Result<Vec<Honest>> {
    let mut nodes: Vec<Honest> = Vec::new();
    for _ in 0..n {
        nodes.push(honest().await?);
    }
    for i in 1..n {
        nodes[i].client.dial(nodes[i - 1].addr.clone()).await?;
    }
    for i in 1..n {
        let (a, b) = (&nodes[i - 1], &nodes[i]);
        let bp = b.client.peer_id();
        a.events
            .wait("neighbour on the social topic", |_| {
                a.events.subscribed(bp, SOCIAL_TOPIC)
            })
            .await?;
        let ap = a.client.peer_id();
        b.events
            .wait("neighbour on the social topic", |_| {
                b.events.subscribed(ap, SOCIAL_TOPIC)
            })
            .await?;
    }
    Ok(nodes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn profiles_and_follows_cross_a_fixed_line_and_two_devices_converge() -> Result<()> {
    let nodes = line(5).await?;
    let (a, e) = (&nodes[0], &nodes[4]);
    let alice = User::new(1);
    let (bob, carol, dave) = (User::new(2), User::new(3), User::new(4));
    let now = unix_ms();

    // A profile set at A resolves at E (pushed along the line).
    a.client
        .social_put(alice.profile(now - 2000, "alice"), true)
        .await?;
    e.events
        .wait("alice's profile at E", |_| {
            heard(&e.events, is_profile("alice"))
        })
        .await?;
    let key = RecordKey {
        kind: RecordKind::Profile,
        subject: alice.id(),
    };
    assert_eq!(
        profile_name(&e.client.social_get(key).await?).as_deref(),
        Some("alice")
    );
    // A newer version replaces it everywhere.
    a.client
        .social_put(alice.profile(now - 1000, "alice v2"), true)
        .await?;
    e.events
        .wait("version 2 at E", |_| {
            heard(&e.events, is_profile("alice v2"))
        })
        .await?;
    assert_eq!(
        profile_name(&e.client.social_get(key).await?).as_deref(),
        Some("alice v2")
    );

    // Alice's two nodes (A and E hold her key's records as their own):
    // A follows bob and carol while E, which knew nothing, unfollows bob
    // later and follows dave. Both end with {carol, dave}.
    let at_a = alice.follows(vec![
        alice.op(bob.id(), true, now - 500),
        alice.op(carol.id(), true, now - 400),
    ]);
    let at_e = alice.follows(vec![
        alice.op(bob.id(), false, now - 300),
        alice.op(dave.id(), true, now - 200),
    ]);
    let (ra, re) = tokio::join!(
        a.client.social_put(at_a, true),
        e.client.social_put(at_e, true)
    );
    ra?;
    re?;
    let follows_key = RecordKey {
        kind: RecordKind::Follows,
        subject: alice.id(),
    };
    let mut want = vec![carol.id(), dave.id()];
    want.sort();
    let followed_now = |events: &Events| {
        let last = events.snapshot().into_iter().rev().find_map(|e| match e {
            Event::SocialRecord { record, .. } if record.key() == follows_key => Some(record),
            _ => None,
        });
        let mut f: Vec<_> = last
            .map(|r| followed(r.ops()).map(|o| o.op.creator).collect())
            .unwrap_or_default();
        f.sort();
        f
    };
    for n in &nodes {
        n.events
            .wait("the two devices' follows merged", |_| {
                followed_now(&n.events) == want
            })
            .await?;
        let got = n.client.social_get(follows_key).await?.context("follows")?;
        let mut f: Vec<_> = followed(got.ops()).map(|o| o.op.creator).collect();
        f.sort();
        assert_eq!(f, want);
    }

    // A late joiner F on E gets alice's records pushed on subscription.
    let f = honest().await?;
    f.client.dial(e.addr.clone()).await?;
    f.events
        .wait("alice's profile pushed to F", |_| {
            heard(&f.events, is_profile("alice v2"))
        })
        .await?;
    f.events
        .wait("alice's follows pushed to F", |_| {
            followed_now(&f.events) == want
        })
        .await?;
    let got = f
        .client
        .social_get(follows_key)
        .await?
        .context("follows at F")?;
    let mut fl: Vec<_> = followed(got.ops()).map(|o| o.op.creator).collect();
    fl.sort();
    assert_eq!(fl, want);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_stop_at_the_first_hop_with_their_reason() -> Result<()> {
    let nodes = line(3).await?;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let alice = User::new(1);
    let now = unix_ms();
    let v2 = alice.profile(now - 1000, "alice v2");
    a.client.social_put(v2.clone(), true).await?;
    c.events
        .wait("v2 at C", |_| heard(&c.events, is_profile("alice v2")))
        .await?;
    let key = v2.key();

    // Forged: the name changed after signing.
    let mut forged = v2.clone();
    if let SocialRecord::Profile(p) = &mut forged {
        p.profile.name = "mallory".into();
        p.profile.version += 1;
    }
    // Replayed older version; expired; oversized; a follow set with an
    // operation by someone else.
    let old = alice.profile(now - 5000, "alice v1");
    let expired = alice.profile(now - 48 * 3600 * 1000, "alice expired");
    let mut oversized = alice.profile(now, "big").encode();
    oversized.resize(11 * 1024, 7);
    let mallory = User::new(9);
    let mixed = alice.follows(vec![mallory.op(User::new(5).id(), true, now)]);
    let cases: Vec<Case> = vec![
        ("forged", forged.encode(), |e| {
            matches!(e, RecordError::Forged { .. })
        }),
        ("replayed", old.encode(), |e| {
            matches!(e, RecordError::NotNewer { .. })
        }),
        ("expired", expired.encode(), |e| {
            matches!(e, RecordError::Expired { .. })
        }),
        ("oversized", oversized.clone(), |e| {
            matches!(e, RecordError::Malformed(_))
        }),
        ("foreign op", mixed.encode(), |e| {
            matches!(e, RecordError::WrongSubject)
        }),
    ];
    // On the topic, then as a DHT put straight to B: each refused at B with
    // its reason.
    // One injector per case: gossipsub graylists a peer after a few
    // rejected messages, and each must be judged on its own.
    for (i, (what, bytes, is)) in cases.iter().enumerate() {
        let inject = injector(&[b], false).await?;
        inject.send(Do::Gossip(bytes.clone())).await?;
        b.events
            .wait(what, |_| {
                refusals(&b.events).iter().filter(|e| is(e)).count() >= 1
            })
            .await?;
        let under = SocialRecord::decode(bytes).map(|r| r.key()).unwrap_or(key);
        inject
            .send(Do::PutTo(
                b.client.peer_id(),
                under.to_bytes(),
                bytes.clone(),
            ))
            .await?;
        b.events
            .wait(what, |_| {
                refusals(&b.events).iter().filter(|e| is(e)).count() >= 2
            })
            .await?;
        assert_eq!(refusals(&b.events).len(), 2 * (i + 1), "{what}");
    }
    // A record under a key that is not ours is refused too.
    let inject = injector(&[b], false).await?;
    inject
        .send(Do::PutTo(
            b.client.peer_id(),
            b"/pk/whatever".to_vec(),
            v2.encode(),
        ))
        .await?;
    b.events
        .wait("foreign key", |_| {
            refusals(&b.events)
                .iter()
                .any(|e| matches!(e, RecordError::ForeignKey))
        })
        .await?;
    // Nothing changed at B, and nothing crossed to C.
    for n in [b, c] {
        assert_eq!(
            profile_name(&n.client.social_get(key).await?).as_deref(),
            Some("alice v2")
        );
    }
    assert!(refusals(&c.events).is_empty(), "{:?}", refusals(&c.events));

    // A flood of valid records about one key: B takes the subject's burst,
    // holds back the rest, and another key's record passes meanwhile.
    let inject = injector(&[b], false).await?;
    let spam = User::new(7);
    let target = User::new(8).id();
    for i in 0..30u64 {
        let r = spam.follows(vec![spam.op(target, i % 2 == 0, now - 10_000 + i)]);
        inject.send(Do::Gossip(r.encode())).await?;
    }
    b.events
        .wait("the flood held back", |_| rate_limited(&b.events) >= 15)
        .await?;
    let bob = User::new(2);
    inject
        .send(Do::Gossip(bob.profile(now, "bob").encode()))
        .await?;
    c.events
        .wait("bob's profile past the flood", |_| {
            heard(&c.events, is_profile("bob"))
        })
        .await?;
    let spam_at_c = c
        .events
        .snapshot()
        .iter()
        .filter(|e| matches!(e, Event::SocialRecord { record, .. } if record.key().subject == spam.id()))
        .count();
    assert!(spam_at_c <= 10, "{spam_at_c} spam records crossed B");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_put_on_the_dht_resolves_from_every_node() -> Result<()> {
    let config = || Config {
        discovery: true,
        ..local_config()
    };
    let mut nodes = Vec::new();
    for _ in 0..5 {
        nodes.push(node(config(), None).await?);
    }
    // A star on the first node; Kademlia finds the rest.
    for n in &nodes[1..] {
        n.client.dial(nodes[0].addr.clone()).await?;
    }
    let alice = User::new(1);
    let now = unix_ms();
    // A bare Kademlia peer puts the record on the DHT: no gossip at all.
    let dht = injector(&[&nodes[0]], true).await?;
    let record = alice.profile(now - 1000, "alice on the dht");
    let key = record.key();
    let (tx, rx) = tokio::sync::oneshot::channel();
    dht.send(Do::PutDht(key.to_bytes(), record.encode(), tx))
        .await?;
    anyhow::ensure!(rx.await?, "the put reached no node");
    let mut times = Vec::new();
    for n in &nodes {
        let t0 = Instant::now();
        let got = n.client.social_get(key).await?;
        times.push(t0.elapsed());
        assert_eq!(profile_name(&got).as_deref(), Some("alice on the dht"));
    }
    eprintln!("resolve times at the nodes that stored the put: {times:?}");
    // A node that joins afterwards holds nothing: it finds the record by a
    // lookup over the DHT (the record was put, never gossiped, and DHT puts
    // are not pushed to new neighbours).
    let late = node(config(), None).await?;
    late.client.dial(nodes[0].addr.clone()).await?;
    let first = nodes[0].client.peer_id();
    late.events
        .wait("the first node in the routing table", |ev| {
            ev.iter()
                .any(|e| matches!(e, Event::DhtPeer(p) if *p == first))
        })
        .await?;
    assert!(
        !heard(&late.events, |_| true),
        "the late node was sent the record"
    );
    let t0 = Instant::now();
    let got = late.client.social_get(key).await?;
    eprintln!(
        "DHT lookup from a node that held nothing: {:?}",
        t0.elapsed()
    );
    assert_eq!(profile_name(&got).as_deref(), Some("alice on the dht"));
    // A forged newer version put the same way is stored nowhere.
    let mut forged = alice.profile(now, "forged");
    if let SocialRecord::Profile(p) = &mut forged {
        p.profile.name = "mallory".into();
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    dht.send(Do::PutDht(key.to_bytes(), forged.encode(), tx))
        .await?;
    let _ = rx.await;
    for n in &nodes {
        assert_eq!(
            profile_name(&n.client.social_get(key).await?).as_deref(),
            Some("alice on the dht")
        );
    }
    let refused: usize = nodes
        .iter()
        .map(|n| {
            refusals(&n.events)
                .iter()
                .filter(|e| matches!(e, RecordError::Forged { .. }))
                .count()
        })
        .sum();
    assert!(refused >= 1, "no node saw the forged put");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_record_store_stays_bounded_and_still_takes_the_users_own_records() -> Result<()> {
    let mut config = local_config();
    config.behaviour.max_records = 2;
    let a = node(config, None).await?;
    let b = honest().await?;
    b.client.dial(a.addr.clone()).await?;
    let bp = b.client.peer_id();
    a.events
        .wait("B on the social topic", |_| {
            a.events.subscribed(bp, SOCIAL_TOPIC)
        })
        .await?;
    let now = unix_ms();
    // Three strangers' profiles reach A: two fit.
    for i in 0..3u8 {
        let u = User::new(20 + i);
        b.client
            .social_put(u.profile(now - 1000, &format!("stranger {i}")), false)
            .await?;
    }
    a.events
        .wait("two strangers stored", |ev| {
            ev.iter()
                .filter(|e| matches!(e, Event::SocialRecord { .. }))
                .count()
                >= 2
        })
        .await?;
    // The third is refused for room (B's own view: all three held).
    let held_b = b.client.social_held(RecordKind::Profile, 10).await?;
    assert_eq!(held_b.len(), 3);
    // A's user publishes its profile: a heard record makes room.
    let me = User::new(1);
    a.client.social_put(me.profile(now, "me"), true).await?;
    let held = a.client.social_held(RecordKind::Profile, 10).await?;
    assert!(held.len() <= 2, "{} records held", held.len());
    assert!(held.iter().any(|r| r.key().subject == me.id()));
    Ok(())
}
