//! Paid bandwidth on real swarms over loopback: a server that charges per
//! MiB and extends a bounded credit, a peer that pays after every verified
//! payload, a freeloader that never pays, and a peer that stops paying
//! mid-stream.
//!
//! The node checks each voucher against the chain before it credits the
//! payer (tested end to end with the dev chain in
//! `p2p-node/tests/relay_fees.rs`); here the server's event handler stands
//! in for that check and credits what a voucher raised, so that what is
//! tested is the swarm's part: terms, metering, refusals and resumption.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Result};
use bytes::Bytes;
use ed25519_dalek::SigningKey;
use libp2p::PeerId;
use tokio::sync::{mpsc, Notify};
use vilokanam_swarm::protocols::bandwidth::fee_for;
use vilokanam_swarm::test_utils::signed_chunk;
use vilokanam_swarm::wire::Sig;
use vilokanam_swarm::{
    BandwidthPayment, BandwidthTerms, Client, Event, JoinReason, LedgerConfig, PeerPrice, StreamId,
};

mod common;
use common::{local_config, node, Honest};

/// 1 mTICK per MiB.
const FEE: u64 = 1_000_000_000;
const CHUNK: usize = 64 * 1024;
/// Three chunks of credit.
const CREDIT: u64 = 3 * CHUNK as u64;
const CHUNKS: u64 = 16;
/// The quitter pays for this many chunks, then stops.
const QUITTER_PAYS: u64 = 4;

/// How a puller treats what it owes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Payer {
    /// Pays after every verified payload.
    Always,
    /// Never pays.
    Never,
    /// Pays for the first `n` payloads, then never again.
    Until(u64),
}

/// The puller's side of a node: takes every server's terms, and pays what
/// verified as its policy says (a voucher per payload, cumulative).
fn puller(client: Client, policy: Payer) -> mpsc::Sender<Event> {
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    tokio::spawn(async move {
        let mut fees: HashMap<PeerId, u64> = HashMap::new();
        let mut verified: HashMap<PeerId, (u64, u64)> = HashMap::new();
        while let Some(ev) = rx.recv().await {
            match ev {
                Event::Terms { peer, terms } => {
                    fees.insert(peer, terms.fee_per_mib);
                    let _ = client
                        .set_peer_price(peer, PeerPrice::Usable(terms.fee_per_mib))
                        .await;
                }
                Event::Verified { peer, bytes, .. } => {
                    let v = verified.entry(peer).or_default();
                    v.0 += bytes;
                    v.1 += 1;
                    let pays = match policy {
                        Payer::Always => true,
                        Payer::Never => false,
                        Payer::Until(n) => v.1 <= n,
                    };
                    let fee = fees.get(&peer).copied().unwrap_or(0);
                    if pays && fee > 0 {
                        let payment = BandwidthPayment {
                            channel: 1,
                            cumulative: fee_for(v.0, fee),
                            signature: Sig([0; 64]),
                        };
                        let _ = client.pay(peer, payment).await;
                    }
                }
                _ => {}
            }
        }
    });
    tx
}

/// The server's side: credits each payer with what its voucher raised
/// (standing in for the node's check against the chain), and wakes
/// `credited` after each credit.
fn server_desk(client: Client, credited: Arc<Notify>) -> mpsc::Sender<Event> {
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    tokio::spawn(async move {
        let mut best: HashMap<PeerId, u128> = HashMap::new();
        while let Some(ev) = rx.recv().await {
            if let Event::PaymentReceived { peer, payment } = ev {
                let held = best.entry(peer).or_default();
                if payment.cumulative > *held {
                    let raised = payment.cumulative - *held;
                    *held = payment.cumulative;
                    let _ = client.credit(peer, raised).await;
                    credited.notify_waiters();
                }
            }
        }
    });
    tx
}

/// A node whose client is needed by its own event hook: the hook is
/// started on a channel first and fed once the node runs.
async fn node_with(
    config: vilokanam_swarm::Config,
    hook: impl FnOnce(Client) -> mpsc::Sender<Event>,
) -> Result<Honest> {
    let (tx, mut rx) = mpsc::channel::<Event>(1024);
    let n = node(config, Some(tx)).await?;
    let inner = hook(n.client.clone());
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if inner.send(ev).await.is_err() {
                break;
            }
        }
    });
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn freeloaders_get_the_credit_then_nothing_while_payers_play_on() -> Result<()> {
    let creator = SigningKey::from_bytes(&[21; 32]);
    let stream = StreamId::new(creator.verifying_key().to_bytes(), "paid-bytes")?;
    let terms = BandwidthTerms {
        fee_per_mib: FEE,
        payee: [1; 32],
        chain: [2; 32],
        credit_bytes: CREDIT,
    };
    let server_config = vilokanam_swarm::Config {
        bandwidth: LedgerConfig {
            terms,
            ..LedgerConfig::default()
        },
        ..local_config()
    };
    let credited = Arc::new(Notify::new());
    let desk = credited.clone();
    let s = node_with(server_config, move |c| server_desk(c, desk)).await?;
    let p = node_with(local_config(), |c| puller(c, Payer::Always)).await?;
    let f = node_with(local_config(), |c| puller(c, Payer::Never)).await?;
    let q = node_with(local_config(), |c| puller(c, Payer::Until(QUITTER_PAYS))).await?;
    // A star: each puller knows only the server.
    for n in [&p, &f, &q] {
        n.client.dial(s.addr.clone()).await?;
    }
    s.client
        .join(stream.clone(), JoinReason::Publish, Some(0))
        .await?;
    for n in [&p, &f, &q] {
        n.client
            .join(stream.clone(), JoinReason::Watch, Some(0))
            .await?;
    }
    let topic = stream.topic();
    let server = s.client.peer_id();
    for (name, n) in [("P", &p), ("F", &f), ("Q", &q)] {
        n.events
            .wait(&format!("{name} has the server's terms and topic"), |e| {
                e.iter().any(|e| matches!(e, Event::Terms { peer, terms: t } if *peer == server && *t == terms))
                    && n.events.subscribed(server, &topic)
            })
            .await?;
        let me = n.client.peer_id();
        s.events
            .wait(&format!("{name} subscribed at the server"), |_| {
                s.events.subscribed(me, &topic)
            })
            .await?;
    }

    let payload = |seq: u64| Bytes::from(vec![seq as u8; CHUNK]);
    for seq in 0..CHUNKS {
        s.client
            .publish(signed_chunk(&creator, &stream, seq, payload(seq)))
            .await?;
        // The paying peer gets every chunk, one after the other: no gap.
        p.events
            .wait(&format!("chunk {seq} at the paying peer"), |_| {
                p.events.ready().contains_key(&seq)
            })
            .await?;
    }
    // Every puller has settled every chunk: got it, or gave it up.
    for (name, n) in [("F", &f), ("Q", &q)] {
        n.events
            .wait(&format!("{name} got or gave up every chunk"), |_| {
                let (got, missing) = (n.events.ready(), n.events.missing());
                (0..CHUNKS).all(|s| got.contains_key(&s) || missing.contains(&s))
            })
            .await?;
    }
    let ledger = s.client.ledger().await?;
    let account = |peer: PeerId| {
        ledger
            .accounts
            .iter()
            .find(|(p, _)| *p == peer)
            .map(|(_, a)| *a)
            .unwrap_or_default()
    };
    let (pa, fa, qa) = (
        account(p.client.peer_id()),
        account(f.client.peer_id()),
        account(q.client.peer_id()),
    );
    // The payer: every byte served, paid in full, never refused.
    assert_eq!(p.events.ready().len() as u64, CHUNKS);
    assert_eq!(pa.served_bytes, CHUNKS * CHUNK as u64);
    assert_eq!(pa.paid, fee_for(pa.served_bytes, FEE), "{pa:?}");
    assert!(!pa.cut_off && pa.refused == 0, "{pa:?}");
    // The freeloader: at most its credit, then nothing; cut off.
    let f_got = f.events.ready().len() as u64;
    assert!(
        fa.served_bytes <= CREDIT,
        "the freeloader was served {} bytes, over the {CREDIT}-byte credit",
        fa.served_bytes
    );
    assert_eq!(fa.served_bytes, f_got * CHUNK as u64);
    assert_eq!(f_got, CREDIT / CHUNK as u64, "it did get the credit");
    assert!(fa.cut_off && fa.refused > 0 && fa.paid == 0, "{fa:?}");
    // The quitter: paid for its first chunks, then got at most the credit
    // more, and is cut off.
    let paid_bytes = QUITTER_PAYS * CHUNK as u64;
    assert_eq!(qa.paid, fee_for(paid_bytes, FEE), "{qa:?}");
    assert!(
        qa.served_bytes > paid_bytes && qa.served_bytes - paid_bytes <= CREDIT,
        "the quitter was served {} bytes after paying for {paid_bytes}",
        qa.served_bytes
    );
    assert!(qa.cut_off, "{qa:?}");
    let totals = ledger.totals;
    assert_eq!(totals.cut_offs, 2, "{totals:?}");
    assert_eq!(
        ledger.outstanding,
        fa.unpaid(FEE) + qa.unpaid(FEE),
        "what is owed is the two non-payers' debt"
    );

    // The quitter pays what it owes: served again at once.
    let owed = fee_for(qa.served_bytes, FEE);
    if !q
        .client
        .pay(
            server,
            BandwidthPayment {
                channel: 1,
                cumulative: owed,
                signature: Sig([0; 64]),
            },
        )
        .await?
    {
        bail!("the server did not take the quitter's payment");
    }
    // The credit lands through the server's event handler, which wakes
    // `credited` after each one.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let woken = credited.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let a = s.client.ledger().await?;
        if a.accounts
            .iter()
            .any(|(peer, a)| *peer == q.client.peer_id() && a.paid == owed && !a.cut_off)
        {
            break;
        }
        if tokio::time::timeout_at(deadline, woken).await.is_err() {
            bail!("the quitter's payment was never credited");
        }
    }
    s.client
        .publish(signed_chunk(&creator, &stream, CHUNKS, payload(CHUNKS)))
        .await?;
    q.events
        .wait("the next chunk at the quitter once it paid", |_| {
            q.events.ready().contains_key(&CHUNKS)
        })
        .await?;
    // ...while the freeloader still gets nothing.
    f.events
        .wait("the freeloader gives the next chunk up", |_| {
            f.events.missing().contains(&CHUNKS)
        })
        .await?;
    assert!(!f.events.ready().contains_key(&CHUNKS));
    for n in [&s, &p, &f, &q] {
        n.client.shutdown().await?;
    }
    Ok(())
}

/// A free server and a puller with no chain: terms say free, nothing is
/// owed, nobody is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn free_servers_serve_everyone_with_no_chain() -> Result<()> {
    let creator = SigningKey::from_bytes(&[22; 32]);
    let stream = StreamId::new(creator.verifying_key().to_bytes(), "free-bytes")?;
    let s = node(local_config(), None).await?;
    let f = node_with(local_config(), |c| puller(c, Payer::Never)).await?;
    f.client.dial(s.addr.clone()).await?;
    s.client
        .join(stream.clone(), JoinReason::Publish, Some(0))
        .await?;
    f.client
        .join(stream.clone(), JoinReason::Watch, Some(0))
        .await?;
    let (server, topic) = (s.client.peer_id(), stream.topic());
    f.events
        .wait("free terms and the topic", |e| {
            e.iter().any(
                |e| matches!(e, Event::Terms { peer, terms } if *peer == server && terms.is_free()),
            ) && f.events.subscribed(server, &topic)
        })
        .await?;
    let me = f.client.peer_id();
    s.events
        .wait("subscribed at the server", |_| {
            s.events.subscribed(me, &topic)
        })
        .await?;
    for seq in 0..CHUNKS {
        s.client
            .publish(signed_chunk(
                &creator,
                &stream,
                seq,
                Bytes::from(vec![7u8; CHUNK]),
            ))
            .await?;
    }
    f.events
        .wait("every chunk, unpaid", |_| {
            f.events.ready().len() as u64 == CHUNKS
        })
        .await?;
    let l = s.client.ledger().await?;
    assert!(l.terms.is_free());
    assert_eq!(l.totals.refusals, 0);
    assert_eq!(l.outstanding, 0);
    for n in [&s, &f] {
        n.client.shutdown().await?;
    }
    Ok(())
}
