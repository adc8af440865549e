//! `/vilokanam/keys/2` between real event loops over TCP: one session per
//! viewer carries every request, the answer is sealed to the viewer's
//! voucher key, a session the server closed while idle is replaced, and
//! hostile input (oversized, truncated and malformed frames, too many
//! sessions, silent sessions) ends only the session that sent it, with its
//! reason counted.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use ed25519_dalek::SigningKey;
use futures::{AsyncReadExt, AsyncWriteExt};
use libp2p::{identity, Multiaddr, PeerId};
use prometheus_client::registry::Registry;
use vilokanam_swarm::protocols::keys::core::{Ask, KeyServer, KeyServerConfig, Pricing};
use vilokanam_swarm::protocols::keys::paywall::{open_key, StreamSecret};
use vilokanam_swarm::protocols::keys::session::{
    read_frame, write_frame, KeyAnswer, KeyService, KeySessionConfig,
};
use vilokanam_swarm::protocols::keys::wire::{
    decode_response, encode_request, KeyRefusal, KeyRequest, KeyResponse, MAX_KEY_RESPONSE,
};
use vilokanam_swarm::{Client, Config, Event, StreamId};

fn config(keys: KeySessionConfig) -> Config {
    Config {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().expect("addr")],
        discovery: false,
        keys,
        ..Config::default()
    }
}

/// The creator's side: the key-release core behind a lock, as the node
/// uses it (every request from the one payer this test knows).
struct Desk {
    keys: Mutex<KeyServer>,
    payer: ed25519_dalek::VerifyingKey,
}

impl KeyService for Desk {
    fn answer(&self, _peer: PeerId, request: KeyRequest) -> KeyAnswer {
        let ask = Ask {
            stream: &request.stream,
            channel: request.channel,
            viewer: &self.payer,
            epoch: request.epoch,
            paid: 0,
        };
        let response =
            match self
                .keys
                .lock()
                .expect("lock")
                .grant(std::time::Instant::now(), ask, [9; 32])
            {
                Ok(g) => KeyResponse::Granted {
                    epoch: g.epoch,
                    key: g.key.into(),
                    pass: None,
                },
                Err(r) => KeyResponse::Refused(r),
            };
        Box::pin(async move { response })
    }
}

struct Server {
    id: PeerId,
    addr: Multiaddr,
    /// Keeps the event loop running (it stops when every client is gone).
    _client: Client,
    registry: Registry,
    stream: StreamId,
    secret: StreamSecret,
}

impl Server {
    /// The value of metric `name` (with its labels, e.g.
    /// `vilokanam_swarm_key_sessions_ended_total{reason="idle"}`), 0 if absent.
    fn metric(&self, name: &str) -> f64 {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry).expect("encode");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
            .unwrap_or(0.0)
    }

    /// Waits (bounded) until metric `name` reaches `at_least`.
    async fn wait_metric(&self, name: &str, at_least: f64) -> Result<()> {
        for _ in 0..200 {
            if self.metric(name) >= at_least {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("{name} stayed at {} (wanted {at_least})", self.metric(name))
    }
}

async fn server(keys: KeySessionConfig, payer: &SigningKey) -> Result<Server> {
    let key = identity::Keypair::generate_ed25519();
    let id = key.public().to_peer_id();
    let mut registry = Registry::default();
    let (client, mut events, event_loop) = vilokanam_swarm::new(key, config(keys), &mut registry)?;
    tokio::spawn(event_loop.run());
    let addr = loop {
        match tokio::time::timeout(Duration::from_secs(10), events.recv()).await? {
            Some(Event::Listening(a)) => break a,
            Some(_) => continue,
            None => bail!("server stopped"),
        }
    };
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let creator = SigningKey::from_bytes(&[21; 32]);
    let stream = StreamId::new(creator.verifying_key().to_bytes(), "paid")?;
    let secret = StreamSecret::derive(&creator, &stream);
    let mut core = KeyServer::new(KeyServerConfig::default());
    core.add_stream(
        stream.clone(),
        secret.clone(),
        Pricing {
            price_per_sec: 1,
            epoch_secs: 6,
        },
    );
    core.advance(&stream, 5);
    client.serve_keys(Arc::new(Desk {
        keys: Mutex::new(core),
        payer: payer.verifying_key(),
    }))?;
    Ok(Server {
        id,
        addr,
        _client: client,
        registry,
        stream,
        secret,
    })
}

async fn viewer(keys: KeySessionConfig) -> Result<Client> {
    let (client, mut events, event_loop) = vilokanam_swarm::new(
        identity::Keypair::generate_ed25519(),
        config(keys),
        &mut Registry::default(),
    )?;
    tokio::spawn(event_loop.run());
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    Ok(client)
}

fn ask(stream: &StreamId, epoch: u64) -> KeyRequest {
    KeyRequest {
        stream: stream.clone(),
        epoch,
        channel: 3,
        payment: None,
        holder: None,
    }
}

const SESSIONS: &str = "vilokanam_swarm_key_sessions";

fn ended(reason: &str) -> String {
    format!("vilokanam_swarm_key_sessions_ended_total{{reason=\"{reason}\"}}")
}

/// The viewer dials the key server itself, every request rides on one
/// session, the key is sealed to the payer, and the core's refusal comes
/// back with its amounts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_session_carries_every_request_and_only_the_payer_opens_the_key() -> Result<()> {
    let payer = SigningKey::from_bytes(&[22; 32]);
    let s = server(KeySessionConfig::default(), &payer).await?;
    let v = viewer(KeySessionConfig::default()).await?;
    let r = v
        .request_key(s.id, vec![s.addr.clone()], ask(&s.stream, 5))
        .await?;
    let KeyResponse::Granted { epoch, key, .. } = r else {
        bail!("refused: {r:?}")
    };
    assert_eq!(epoch, 5);
    let sealed = key.into();
    assert_eq!(
        open_key(&sealed, &payer, &s.stream, 5)?,
        s.secret.epoch_key(&s.stream, 5)
    );
    assert!(open_key(&sealed, &SigningKey::from_bytes(&[23; 32]), &s.stream, 5).is_err());
    for _ in 0..5 {
        let r = v.request_key(s.id, vec![], ask(&s.stream, 6)).await?;
        assert_eq!(
            r,
            KeyResponse::Refused(KeyRefusal::Unpaid {
                required: 6,
                paid: 0
            })
        );
    }
    assert_eq!(v.key_sessions(), 1);
    assert_eq!(s.metric(SESSIONS), 1.0, "six requests, one session");
    Ok(())
}

/// A session the server closed for idleness is replaced on the next
/// request, which succeeds; the viewer never sees the closed one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_closed_while_idle_is_replaced_on_the_next_request() -> Result<()> {
    let payer = SigningKey::from_bytes(&[22; 32]);
    let s = server(
        KeySessionConfig {
            idle_timeout: Duration::from_millis(500),
            ..KeySessionConfig::default()
        },
        &payer,
    )
    .await?;
    let v = viewer(KeySessionConfig::default()).await?;
    let first = v
        .request_key(s.id, vec![s.addr.clone()], ask(&s.stream, 5))
        .await?;
    assert!(matches!(first, KeyResponse::Granted { .. }), "{first:?}");
    s.wait_metric(&ended("idle"), 1.0).await?;
    assert_eq!(s.metric(SESSIONS), 0.0);
    let again = v.request_key(s.id, vec![], ask(&s.stream, 5)).await?;
    assert!(matches!(again, KeyResponse::Granted { .. }), "{again:?}");
    assert_eq!(s.metric(SESSIONS), 1.0);
    Ok(())
}

/// Hostile frames end their own session with a precise reason and
/// nothing else: an honest viewer is served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_end_only_their_session_with_their_reason() -> Result<()> {
    let payer = SigningKey::from_bytes(&[22; 32]);
    let s = server(KeySessionConfig::default(), &payer).await?;
    let honest = viewer(KeySessionConfig::default()).await?;
    let rogue = viewer(KeySessionConfig::default()).await?;
    let addrs = vec![s.addr.clone()];
    let served = |v: &Client| {
        let v = v.clone();
        let (id, stream) = (s.id, s.stream.clone());
        async move {
            let r = v.request_key(id, vec![], ask(&stream, 5)).await?;
            anyhow::ensure!(matches!(r, KeyResponse::Granted { .. }), "{r:?}");
            Ok(())
        }
    };
    honest
        .request_key(s.id, addrs.clone(), ask(&s.stream, 5))
        .await?;

    // A length prefix over the limit: closed before anything is read.
    let mut raw = rogue.open_raw_key_session(s.id, addrs.clone()).await?;
    raw.write_all(&[0xff, 0xff, 1, 2, 3]).await?;
    raw.flush().await?;
    let mut rest = Vec::new();
    raw.read_to_end(&mut rest).await.ok();
    assert!(rest.is_empty(), "no answer to an oversized frame");
    s.wait_metric(&ended("oversized"), 1.0).await?;
    served(&honest).await?;

    // Bytes that are not a request.
    let mut raw = rogue.open_raw_key_session(s.id, vec![]).await?;
    write_frame(&mut raw, &[0xff; 40]).await?;
    assert!(read_frame(&mut raw, MAX_KEY_RESPONSE).await?.is_none());
    s.wait_metric(&ended("malformed"), 1.0).await?;

    // A frame cut short by the end of the stream.
    let mut raw = rogue.open_raw_key_session(s.id, vec![]).await?;
    raw.write_all(&[0, 10, 1, 2, 3]).await?;
    raw.close().await?;
    s.wait_metric(&ended("truncated"), 1.0).await?;

    // A good request on a raw session is answered like any other, and
    // the session stays open for the next.
    let mut raw = rogue.open_raw_key_session(s.id, vec![]).await?;
    for _ in 0..2 {
        write_frame(&mut raw, &encode_request(&ask(&s.stream, 5))?).await?;
        let f = read_frame(&mut raw, MAX_KEY_RESPONSE)
            .await?
            .context("answer")?;
        assert!(matches!(decode_response(&f)?, KeyResponse::Granted { .. }));
    }
    served(&honest).await?;
    assert_eq!(s.metric(SESSIONS), 2.0, "the honest and the raw session");
    Ok(())
}

/// Sessions are bounded per peer (the extra one is closed unanswered) and
/// in total (the extra one's request is answered `Busy`); a silent session
/// is closed after the idle timeout, freeing its place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_are_bounded_per_peer_and_in_total_and_silent_ones_end() -> Result<()> {
    let payer = SigningKey::from_bytes(&[22; 32]);
    let s = server(
        KeySessionConfig {
            max_sessions: 3,
            max_per_peer: 2,
            idle_timeout: Duration::from_secs(2),
            ..KeySessionConfig::default()
        },
        &payer,
    )
    .await?;
    let a = viewer(KeySessionConfig::default()).await?;
    let b = viewer(KeySessionConfig::default()).await?;
    let addrs = vec![s.addr.clone()];
    let mut held = vec![
        a.open_raw_key_session(s.id, addrs.clone()).await?,
        a.open_raw_key_session(s.id, vec![]).await?,
    ];
    s.wait_metric(SESSIONS, 2.0).await?;
    // A third from the same peer: over its share, closed unanswered.
    let mut extra = a.open_raw_key_session(s.id, vec![]).await?;
    s.wait_metric(&ended("per_peer"), 1.0).await?;
    write_frame(&mut extra, &encode_request(&ask(&s.stream, 5))?)
        .await
        .ok();
    assert!(matches!(
        read_frame(&mut extra, MAX_KEY_RESPONSE).await,
        Ok(None) | Err(_)
    ));
    // Another peer takes the last place; one more is told `Busy`.
    held.push(b.open_raw_key_session(s.id, addrs.clone()).await?);
    s.wait_metric(SESSIONS, 3.0).await?;
    let r = b.request_key(s.id, vec![], ask(&s.stream, 5)).await?;
    assert_eq!(r, KeyResponse::Refused(KeyRefusal::Busy));
    assert!(s.metric(&ended("busy")) >= 1.0);
    // The held sessions say nothing: each is closed when idle, and then
    // there is room again.
    s.wait_metric(&ended("idle"), 3.0).await?;
    assert_eq!(s.metric(SESSIONS), 0.0);
    for raw in &mut held {
        assert!(read_frame(raw, MAX_KEY_RESPONSE).await?.is_none());
    }
    let r = b.request_key(s.id, vec![], ask(&s.stream, 5)).await?;
    assert!(matches!(r, KeyResponse::Granted { .. }), "{r:?}");
    Ok(())
}

/// The key-only listener: a viewer that dials its address buys keys on a
/// connection that the node's main swarm never sees (no gossip, no DHT,
/// no pings: nothing flows between requests), under the same identity.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_key_only_listener_sells_keys_outside_the_main_swarm() -> Result<()> {
    let payer = SigningKey::from_bytes(&[22; 32]);
    let key = identity::Keypair::generate_ed25519();
    let id = key.public().to_peer_id();
    let mut registry = Registry::default();
    let (client, mut events, event_loop) = vilokanam_swarm::new(
        key.clone(),
        config(KeySessionConfig::default()),
        &mut registry,
    )?;
    tokio::spawn(event_loop.run());
    tokio::spawn(async move { while events.recv().await.is_some() {} });
    let creator = SigningKey::from_bytes(&[21; 32]);
    let stream = StreamId::new(creator.verifying_key().to_bytes(), "paid")?;
    let mut core = KeyServer::new(KeyServerConfig::default());
    core.add_stream(
        stream.clone(),
        StreamSecret::derive(&creator, &stream),
        Pricing {
            price_per_sec: 1,
            epoch_secs: 6,
        },
    );
    core.advance(&stream, 5);
    let listener = client
        .start_key_listener(
            key,
            &["/ip4/127.0.0.1/tcp/0".parse()?],
            Arc::new(Desk {
                keys: Mutex::new(core),
                payer: payer.verifying_key(),
            }),
            16,
        )
        .await?;
    let addrs = listener.addrs().to_vec();
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    let v = viewer(KeySessionConfig::default()).await?;
    for _ in 0..3 {
        let r = v.request_key(id, addrs.clone(), ask(&stream, 5)).await?;
        assert!(matches!(r, KeyResponse::Granted { .. }), "{r:?}");
    }
    let metric = |name: &str| {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).expect("encode");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert_eq!(metric(SESSIONS), 1.0, "one session on the listener");
    assert_eq!(client.stats().await?.peers, 0, "the main swarm saw no one");
    assert_eq!(v.stats().await?.peers, 1, "the viewer is connected once");
    // Stopping the listener ends its sessions; the main swarm was never
    // involved, so a viewer that only knows the listener's address fails.
    drop(listener);
    // The listener stops in its own task: wait until the viewer saw its
    // connection close (a request racing the shutdown could still be
    // answered on it).
    tokio::time::timeout(Duration::from_secs(10), async {
        while v.stats().await.map(|s| s.peers).unwrap_or(0) > 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .context("the viewer's connection to the stopped listener never closed")?;
    let r = v.request_key(id, addrs, ask(&stream, 5)).await;
    assert!(r.is_err(), "{r:?}");
    Ok(())
}
