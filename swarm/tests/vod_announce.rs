//! VOD announcements between honest nodes in process (C — H — V on
//! loopback): a creator's signed VOD record reaches every node through the
//! announce topic; forged, malformed and oversized ones are refused by the
//! first hop with their reasons and never reach V; one key announcing VOD
//! after VOD has all but its burst dropped, whoever forwards them.

use anyhow::Result;
use ed25519_dalek::SigningKey;
use libp2p::gossipsub::IdentTopic;
use vilokanam_swarm::protocols::live::wire::{
    SignedVodAnnouncement, VodAnnouncement, ANNOUNCE_TOPIC,
};
use vilokanam_swarm::wire::{GossipMessage, Sig};
use vilokanam_swarm::{Event, StreamId};

mod common;
use common::{forger, honest, Events};

fn vod(key: &SigningKey, n: u64) -> SignedVodAnnouncement {
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &[(n % 251) as u8; 32]).unwrap();
    let root = cid::Cid::new_v1(0x70, mh).to_string();
    VodAnnouncement {
        stream: StreamId::new(key.verifying_key().to_bytes(), format!("s{n}")).unwrap(),
        root,
        title: format!("show {n}"),
        duration_ms: 60_000,
        segments: 60,
        bytes: 10_000_000,
        created_ms: 1_700_000_000_000 + n,
        price_per_sec: 0,
    }
    .sign(key)
    .unwrap()
}

fn heard(events: &Events) -> Vec<SignedVodAnnouncement> {
    events
        .snapshot()
        .into_iter()
        .filter_map(|e| match e {
            Event::VodAnnounced { vod, .. } => Some(*vod),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vod_announcements_travel_signed_and_forgeries_stop_at_the_first_hop() -> Result<()> {
    let c = honest().await?;
    let h = honest().await?;
    let v = honest().await?;
    h.client.dial(c.addr.clone()).await?;
    v.client.dial(h.addr.clone()).await?;
    let (hp, vp) = (h.client.peer_id(), v.client.peer_id());
    c.events
        .wait("H on the announce topic", |_| {
            c.events.subscribed(hp, ANNOUNCE_TOPIC)
        })
        .await?;
    h.events
        .wait("V on the announce topic", |_| {
            h.events.subscribed(vp, ANNOUNCE_TOPIC)
        })
        .await?;

    // A real one reaches V through H, as signed.
    let creator = SigningKey::from_bytes(&[1; 32]);
    let real = vod(&creator, 0);
    c.client.announce_vod(real.clone()).await?;
    v.events
        .wait("V heard the VOD", |_| heard(&v.events).contains(&real))
        .await?;
    assert!(heard(&h.events).contains(&real));

    // Forgeries, each from its own forger, connected to H only.
    let mut tampered = vod(&creator, 1);
    tampered.vod.title = "tampered".into();
    let not_canonical = SignedVodAnnouncement {
        vod: VodAnnouncement {
            root: "QmdfTbBqBPQ7VNxZEYEj14VmRuZBkqFbiwReogJgS1zR1n".into(),
            ..vod(&creator, 2).vod
        },
        signature: Sig([0; 64]),
        sent_ms: 0,
    };
    let topic = IdentTopic::new(ANNOUNCE_TOPIC);
    let target = vec![(hp, h.addr.clone())];
    let forgers = [
        forger(
            topic.clone(),
            target.clone(),
            GossipMessage::Vod(tampered).encode(),
        )
        .await?,
        forger(
            topic.clone(),
            target.clone(),
            GossipMessage::Vod(not_canonical).encode(),
        )
        .await?,
        forger(topic, target, vec![1u8; 10 * 1024]).await?,
    ];
    h.events
        .wait("H refused all three", |_| {
            let r = h.events.rejections();
            forgers.iter().all(|f| r.iter().any(|(p, _)| p == f))
        })
        .await?;
    let reasons: Vec<String> = h
        .events
        .rejections()
        .into_iter()
        .filter(|(p, _)| forgers.contains(p))
        .map(|(_, r)| r.to_string())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("bad signature")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("vod.root")),
        "{reasons:?}"
    );
    assert!(reasons.iter().any(|r| r.contains("exceeds")), "{reasons:?}");

    // One key announcing 30 new VODs: H forwards its burst (20), V keeps
    // what came. A barrier from another creator, sent last, proves the
    // rest would have arrived by now.
    let spammer = SigningKey::from_bytes(&[2; 32]);
    for i in 0..30 {
        c.client.announce_vod(vod(&spammer, 100 + i)).await?;
    }
    let barrier = vod(&SigningKey::from_bytes(&[3; 32]), 999);
    c.client.announce_vod(barrier.clone()).await?;
    v.events
        .wait("the barrier at V", |_| heard(&v.events).contains(&barrier))
        .await?;
    let spam = spammer.verifying_key().to_bytes();
    let reached = heard(&v.events)
        .iter()
        .filter(|x| x.vod.stream.creator == spam)
        .count();
    // 20 in the burst, plus one a minute.
    assert!((20..=21).contains(&reached), "{reached} of 30 reached V");
    // Nothing forged reached V.
    assert!(heard(&v.events).iter().all(|x| x.verify().is_ok()));
    assert!(heard(&v.events).iter().all(|x| x.vod.title != "tampered"));
    Ok(())
}
