//! In-process tests of the node service through its handle: no processes,
//! sockets on 127.0.0.1 only, milliseconds each.

use super::*;
use vilokanam_media::fixtures::SAMPLE_TS;
use vilokanam_media::ts::Segmenter;

pub(crate) fn local_config() -> NodeConfig {
    NodeConfig {
        api: "127.0.0.1:0".parse().unwrap(),
        listen: vec!["/ip4/127.0.0.1/tcp/0".into()],
        discovery: false,
        ..NodeConfig::default()
    }
}

pub(crate) fn segments() -> Vec<vilokanam_media::ts::Segment> {
    let mut s = Segmenter::new(Duration::from_secs(1));
    let mut out = s.push(SAMPLE_TS).unwrap();
    out.extend(s.finish().unwrap());
    out
}

async fn node_in(dir: &std::path::Path, config: NodeConfig) -> NodeHandle {
    let keys = vilokanam_storage::load_or_create_keys(dir).unwrap();
    let store = Store::open(dir).unwrap();
    Node::spawn(config, keys, store).await.unwrap()
}

async fn publish_all(node: &NodeHandle, name: &str) -> Vec<u64> {
    let mut seqs = vec![];
    for s in segments() {
        let r = node
            .publish_segment(name, s.duration.as_micros() as u32, false, s.data)
            .await
            .unwrap();
        seqs.push(r.seq);
    }
    seqs
}

#[tokio::test]
async fn a_published_stream_plays_locally_and_ends() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_in(dir.path(), local_config()).await;
    let (id, next) = node
        .start_publish(
            "show",
            "A show".into(),
            vec!["t".into()],
            String::new(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(next, 0);
    assert_eq!(
        id.creator,
        node.inner.publisher.stream_id("show").unwrap().creator
    );
    assert_eq!(publish_all(&node, "show").await, (0..6).collect::<Vec<_>>());
    let list = node.playlist(&id.to_string()).unwrap();
    assert!(list.contains(&format!("/streams/{id}/5.ts")), "{list}");
    let seg = node.segment(&id.to_string(), 5).await.unwrap();
    assert_eq!(seg, segments()[5].data);
    assert_eq!(node.chunks(&id.to_string()).await.unwrap().len(), 6);
    let info = node.stream(&id.to_string()).await.unwrap();
    assert!(info.publishing && info.live());
    assert_eq!(info.title.as_deref(), Some("A show"));
    node.end_publish("show").await.unwrap();
    assert!(node
        .playlist(&id.to_string())
        .unwrap()
        .contains("#EXT-X-ENDLIST"));
    // A segment for an ended stream is refused, with the way out.
    let s = &segments()[0];
    let e = node
        .publish_segment("show", 1_000_000, false, s.data.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, NodeError::Ended { .. }), "{e}");
    node.shutdown().await.unwrap();
}

/// Reading a playlist never makes the node follow a stream.
#[tokio::test]
async fn playlists_exist_only_for_watched_or_published_streams() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_in(dir.path(), local_config()).await;
    let other = StreamId::new([9; 32], "x").unwrap().to_string();
    let e = node.playlist(&other).unwrap_err();
    assert!(matches!(e, NodeError::NotWatched { .. }), "{e}");
    assert!(
        node.inner.swarm.joined().await.unwrap().is_empty(),
        "nothing joined"
    );
    node.watch(&other, None).await.unwrap();
    assert!(node.playlist(&other).is_ok());
    node.unwatch(&other).await.unwrap();
    assert!(node.inner.swarm.joined().await.unwrap().is_empty());
    assert!(matches!(
        node.playlist(&other).unwrap_err(),
        NodeError::NotWatched { .. }
    ));
    assert!(matches!(
        node.watch("not-a-stream", None).await.unwrap_err(),
        NodeError::InvalidStreamId { .. }
    ));
    node.shutdown().await.unwrap();
}

/// A failed publish used to leave the in-memory counter behind the stored
/// one, so the next segment was signed with the same number (and dropped
/// by every peer as equivocation). The number is now used up either way.
#[tokio::test]
async fn a_failed_publish_never_reuses_its_sequence_number() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_in(dir.path(), local_config()).await;
    let (id, _) = node
        .start_publish("s", String::new(), vec![], String::new(), None)
        .await
        .unwrap();
    let segs = segments();
    let ok = node
        .publish_segment("s", 1_000_000, false, segs[0].data.clone())
        .await
        .unwrap();
    assert_eq!(ok.seq, 0);
    // The network layer goes away: publishing fails after the number was
    // reserved.
    node.inner.swarm.shutdown().await.unwrap();
    let e = node
        .publish_segment("s", 1_000_000, false, segs[1].data.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, NodeError::ShuttingDown), "{e}");
    let (next, _) = node.inner.publisher.state("s").await.unwrap();
    assert_eq!(next, 2, "#1 is used up in memory");
    let stored = node
        .inner
        .store
        .streams
        .get(&id.to_string())
        .unwrap()
        .unwrap();
    assert_eq!(stored.next_seq, 2, "and on disk");
}

/// Announcements used to be written to the store and never read back:
/// after a restart, `streams` was empty. Published and watched streams
/// now survive a restart, and a restarted stream continues its numbers.
#[tokio::test]
async fn published_and_watched_streams_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let watched = StreamId::new([3; 32], "w").unwrap();
    let id = {
        let node = node_in(dir.path(), local_config()).await;
        let (id, _) = node
            .start_publish("mine", "Mine".into(), vec![], String::new(), None)
            .await
            .unwrap();
        publish_all(&node, "mine").await;
        node.watch(&watched.to_string(), None).await.unwrap();
        node.shutdown().await.unwrap();
        id
    };
    let node = node_in(dir.path(), local_config()).await;
    let list = node.streams().await.unwrap();
    let ids: Vec<&str> = list.iter().map(|s| s.id.as_str()).collect();
    assert!(ids.contains(&id.to_string().as_str()), "{ids:?}");
    assert!(ids.contains(&watched.to_string().as_str()), "{ids:?}");
    // A restored watched stream can be let go of.
    node.unwatch(&watched.to_string()).await.unwrap();
    assert!(node
        .inner
        .store
        .streams
        .get(&watched.to_string())
        .unwrap()
        .is_none());
    let mine = list.iter().find(|s| s.id == id.to_string()).unwrap();
    assert_eq!(mine.title.as_deref(), Some("Mine"));
    assert_eq!(
        mine.last_seq, None,
        "the start's announcement (before any chunk)"
    );
    let (_, next) = node
        .start_publish("mine", "Mine".into(), vec![], String::new(), None)
        .await
        .unwrap();
    assert_eq!(next, 6, "the restarted stream continues its sequence");
    let r = node
        .publish_segment("mine", 1_000_000, false, segments()[0].data.clone())
        .await
        .unwrap();
    assert_eq!(r.seq, 6);
    node.shutdown().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_refused_with_its_reason_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_in(dir.path(), local_config()).await;
    let e = node
        .publish_segment("nope", 1_000_000, false, segments()[0].data.clone())
        .await
        .unwrap_err();
    assert!(matches!(e, NodeError::NotStarted { .. }), "{e}");
    node.start_publish("s", String::new(), vec![], String::new(), None)
        .await
        .unwrap();
    let e = node
        .publish_segment("s", 1_000_000, false, Bytes::from_static(b"garbage"))
        .await
        .unwrap_err();
    assert!(matches!(e, NodeError::BadSegment(_)), "{e}");
    assert!(e.to_string().starts_with("segment refused: "), "{e}");
    let e = node
        .start_publish("bad name", String::new(), vec![], String::new(), None)
        .await
        .unwrap_err();
    assert!(matches!(e, NodeError::InvalidStream { .. }), "{e}");
    let e = node
        .start_publish("s", "t".repeat(201), vec![], String::new(), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("title"), "{e}");
    let (next, _) = node.inner.publisher.state("s").await.unwrap();
    assert_eq!(next, 0, "no number was used up by refused input");
    node.shutdown().await.unwrap();
}

/// The announcer under paused time: a live stream is re-announced every
/// interval, and a stream whose encoder went silent is ended after the
/// idle timeout (it used to stay "live" until the daemon restarted), and
/// resumes with a discontinuity when segments come again.
#[tokio::test(start_paused = true)]
async fn announcer_repeats_live_streams_and_ends_silent_ones() {
    let dir = tempfile::tempdir().unwrap();
    let config = NodeConfig {
        announce_interval_secs: 5,
        publish_idle_secs: 15,
        ..local_config()
    };
    let node = node_in(dir.path(), config).await;
    let sent = || node.inner.metrics.announcements_sent.get();
    let (id, _) = node
        .start_publish("s", String::new(), vec![], String::new(), None)
        .await
        .unwrap();
    publish_all(&node, "s").await;
    let after_start = sent();
    // The interval ticks at 0, 5, 10, … s: two repeats by 14 s.
    tokio::time::sleep(Duration::from_secs(14)).await;
    assert_eq!(sent() - after_start, 2, "repeats at 5 and 10 s");
    assert_eq!(
        node.inner.publisher.state("s").await.unwrap().1,
        None,
        "live at 14 s"
    );
    // The idle timeout (15 s) passes with no segment: ended.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        node.inner.publisher.state("s").await.unwrap().1,
        Some(publisher::EndCause::Idle)
    );
    assert!(node
        .playlist(&id.to_string())
        .unwrap()
        .contains("#EXT-X-ENDLIST"));
    let info = node.stream(&id.to_string()).await.unwrap();
    assert_eq!(info.state, vilokanam_api::StreamState::Ended);
    // No more repeats for an ended stream.
    let ended_at = sent();
    tokio::time::sleep(Duration::from_secs(20)).await;
    assert_eq!(sent(), ended_at);
    // The encoder comes back: live again, the next chunk after a
    // discontinuity, and the playlist open again.
    let r = node
        .publish_segment("s", 1_000_000, false, segments()[0].data.clone())
        .await
        .unwrap();
    assert_eq!(r.seq, 6);
    assert_eq!(node.inner.publisher.state("s").await.unwrap().1, None);
    let chunk = node
        .inner
        .swarm
        .chunk(id.clone(), 6)
        .await
        .unwrap()
        .unwrap();
    assert!(chunk.header.header.discontinuity);
    let list = node.playlist(&id.to_string()).unwrap();
    assert!(!list.contains("#EXT-X-ENDLIST"), "{list}");
    assert!(
        list.contains("#EXT-X-DISCONTINUITY\n#EXT-X-PROGRAM-DATE-TIME:")
            && list.contains("#EXTINF:1.000,\n/streams/"),
        "{list}"
    );
}

#[tokio::test]
async fn playback_reports_segments_served_to_players() {
    let dir = tempfile::tempdir().unwrap();
    let node = node_in(dir.path(), local_config()).await;
    let mut events = node.playback_events();
    let (id, _) = node
        .start_publish("s", String::new(), vec![], String::new(), None)
        .await
        .unwrap();
    publish_all(&node, "s").await;
    node.watch(&id.to_string(), None).await.unwrap();
    node.segment(&id.to_string(), 2).await.unwrap();
    assert_eq!(
        events.recv().await.unwrap(),
        PlaybackEvent::Watching { stream: id.clone() }
    );
    match events.recv().await.unwrap() {
        PlaybackEvent::SegmentServed {
            stream, seq, bytes, ..
        } => {
            assert_eq!((stream, seq), (id.clone(), 2));
            assert_eq!(bytes, segments()[2].data.len());
        }
        other => panic!("{other:?}"),
    }
    node.shutdown().await.unwrap();
}
