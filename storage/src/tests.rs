//! Tests of the sled trees.

use super::*;
use sha2::{Digest, Sha256};

#[test]
fn peers_and_streams_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Store::open(dir.path()).unwrap();
        s.peers.remember("p1", "/ip4/127.0.0.1/tcp/1", 10).unwrap();
        s.peers.remember("p2", "/ip4/127.0.0.1/tcp/2", 20).unwrap();
        s.peers.remember("p1", "/ip4/127.0.0.1/tcp/3", 30).unwrap();
        s.streams
            .update("abc-live", StreamRole::Published, |r| {
                r.announcement = vec![1, 2, 3];
                r.next_seq = 42;
                r.updated_ms = 5;
            })
            .unwrap();
        s.flush().unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    let peers = s.peers.recent(10).unwrap();
    assert_eq!(peers[0].0, "p1");
    assert_eq!(
        peers[0].1.addrs,
        vec!["/ip4/127.0.0.1/tcp/3", "/ip4/127.0.0.1/tcp/1"]
    );
    assert_eq!(s.streams.get("abc-live").unwrap().unwrap().next_seq, 42);
    let r = s
        .streams
        .update("abc-live", StreamRole::Watched, |r| r.updated_ms = 9)
        .unwrap();
    assert_eq!(
        (r.next_seq, r.announcement, r.updated_ms, r.role),
        (42, vec![1, 2, 3], 9, StreamRole::Published),
        "other fields kept, role set only on creation"
    );
    assert_eq!(s.streams.all().unwrap().len(), 1);
}

/// The read-modify-write is atomic: concurrent writers of different
/// fields never lose each other's updates.
#[test]
fn concurrent_updates_are_not_lost() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let s = s.clone();
            scope.spawn(move || {
                for _ in 0..250 {
                    s.streams
                        .update("x-y", StreamRole::Published, |r| {
                            if t % 2 == 0 {
                                r.next_seq += 1;
                            } else {
                                r.updated_ms += 1;
                            }
                        })
                        .unwrap();
                }
            });
        }
    });
    let r = s.streams.get("x-y").unwrap().unwrap();
    assert_eq!((r.next_seq, r.updated_ms), (500, 500));
}

#[test]
fn peer_records_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    for i in 0..(peers::MAX_PEERS + 50) {
        s.peers
            .remember(&format!("p{i}"), "/ip4/127.0.0.1/tcp/1", i as u64)
            .unwrap();
    }
    assert!(s.peers.len() <= peers::MAX_PEERS);
    let recent = s.peers.recent(1).unwrap();
    assert_eq!(
        recent[0].0,
        format!("p{}", peers::MAX_PEERS + 49),
        "newest kept"
    );
    for i in 0..10 {
        s.peers
            .remember("same", &format!("/ip4/127.0.0.1/tcp/{i}"), 1 << 40)
            .unwrap();
    }
    let same = s.peers.recent(2000).unwrap();
    let same = same.iter().find(|(k, _)| k == "same").unwrap();
    assert_eq!(same.1.addrs.len(), peers::MAX_ADDRS);
}

#[test]
fn old_layout_keeps_published_streams_and_drops_heard_ones() {
    #[derive(serde::Serialize)]
    struct V1 {
        announcement: Vec<u8>,
        next_seq: u64,
        updated_ms: u64,
    }
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path().join("db")).unwrap();
        let t = db.open_tree("streams").unwrap();
        let mine = V1 {
            announcement: vec![9],
            next_seq: 7,
            updated_ms: 1,
        };
        let heard = V1 {
            announcement: vec![8],
            next_seq: 0,
            updated_ms: 1,
        };
        t.insert("mine", postcard::to_stdvec(&mine).unwrap())
            .unwrap();
        t.insert("heard", postcard::to_stdvec(&heard).unwrap())
            .unwrap();
        db.flush().unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    let all = s.streams.all().unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, "mine");
    assert_eq!(
        (all[0].1.next_seq, all[0].1.role),
        (7, StreamRole::Published)
    );
}

#[test]
fn blocks_are_verified_before_storing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let d: [u8; 32] = Sha256::digest(b"chunk").into();
    s.blocks.put(&d, b"chunk").unwrap();
    assert_eq!(s.blocks.get(&d).unwrap().unwrap(), b"chunk");
    assert!(matches!(
        s.blocks.put(&d, b"other"),
        Err(StorageError::DigestMismatch(_))
    ));
    assert_eq!(
        s.blocks.get(&d).unwrap().unwrap(),
        b"chunk",
        "a bad write does not corrupt the stored block"
    );
}

#[test]
fn a_data_dir_in_use_is_refused_with_its_reason_and_freed_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path()).unwrap();
    first
        .peers
        .remember("p1", "/ip4/127.0.0.1/tcp/1", 10)
        .unwrap();
    let err = Store::open(dir.path()).err().expect("the lock is held");
    assert!(matches!(err, StorageError::InUse(_)), "{err}");
    assert!(err
        .to_string()
        .contains("in use by another vilokanam process"));
    drop(first);
    // Reopening at once after the drop works (sled's threads may still
    // hold the lock for a moment; open waits for them).
    let again = Store::open(dir.path()).unwrap();
    assert_eq!(again.peers.recent(10).unwrap()[0].0, "p1");
}

fn chunk<'a>(stream: &'a str, seq: u64, payload: &'a [u8]) -> crate::ChunkToRecord<'a> {
    crate::ChunkToRecord {
        stream,
        seq,
        payload,
        duration_us: 1_000_000,
        discontinuity: false,
        published_ms: 1,
        paid: None,
    }
}

#[test]
fn recordings_keep_order_survive_reopen_and_refuse_past_the_quota() {
    use crate::recordings::Recorded;
    let dir = tempfile::tempdir().unwrap();
    let big = vec![7u8; 600_000];
    {
        let s = Store::open(dir.path()).unwrap();
        s.recordings.set_quota(1_000_000);
        assert_eq!(
            s.recordings.record(&chunk("a", 1, b"one")).unwrap(),
            Recorded::Stored
        );
        assert_eq!(
            s.recordings.record(&chunk("a", 0, &big)).unwrap(),
            Recorded::Stored
        );
        assert_eq!(
            s.recordings.record(&chunk("a", 1, b"one")).unwrap(),
            Recorded::Duplicate
        );
        let used = s.recordings.used().unwrap();
        // 600,000 bytes in 3 raw leaves, the same 262,144-byte leaf twice
        // (stored once), plus the file node, plus "one".
        assert!(used < 600_000, "identical leaves stored once: {used}");
        // Past the quota: refused, and nothing of it written.
        let other: Vec<u8> = (0..700_000u32).map(|i| (i % 251) as u8).collect();
        let err = s.recordings.record(&chunk("b", 0, &other)).unwrap_err();
        assert!(matches!(err, StorageError::QuotaExceeded { .. }), "{err}");
        assert!(err.to_string().contains("record_quota_mib"));
        assert_eq!(s.recordings.used().unwrap(), used);
        assert!(s.recordings.chunks("b").unwrap().is_empty());
        s.flush().unwrap();
    }
    let s = Store::open(dir.path()).unwrap();
    let chunks = s.recordings.chunks("a").unwrap();
    assert_eq!(
        chunks.iter().map(|c| c.seq).collect::<Vec<_>>(),
        [0, 1],
        "in order"
    );
    assert_eq!(s.recordings.streams().unwrap(), ["a"]);
    // Every block the index names is there: the file reads back whole.
    let cid = chunks[0].cid().unwrap();
    let mut get = |c: &crate::unixfs::Cid| {
        s.recordings
            .block(c)
            .unwrap()
            .ok_or(crate::unixfs::UnixfsError::Missing(c.to_string()))
    };
    assert_eq!(crate::unixfs::read_file(&cid, &mut get).unwrap(), big);
    s.recordings.clear_chunks("a", &[0, 1]).unwrap();
    assert!(s.recordings.streams().unwrap().is_empty());
}

#[test]
fn blocks_from_peers_are_verified_before_they_are_stored() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let cid = crate::unixfs::cid_of(crate::unixfs::CidVersion::V1, crate::unixfs::RAW, b"good");
    assert!(s
        .recordings
        .put_verified(&[(cid, b"evil".to_vec())])
        .is_err());
    assert!(!s.recordings.has_block(&cid).unwrap());
    s.recordings
        .put_verified(&[(cid, b"good".to_vec())])
        .unwrap();
    assert_eq!(s.recordings.block(&cid).unwrap().unwrap(), b"good");
}

#[test]
fn garbage_collection_frees_what_nothing_reaches() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let a: Vec<u8> = (0..600_000u32).map(|i| (i % 253) as u8).collect();
    let b: Vec<u8> = (0..300_000u32).map(|i| (i % 247) as u8).collect();
    s.recordings.record(&chunk("x", 0, &a)).unwrap();
    let kept = s.recordings.chunks("x").unwrap()[0].cid().unwrap();
    // Blocks of a file only fetched (no VOD, no recording names them).
    let mut fetched = vec![];
    let orphan = crate::unixfs::import_file(&b, crate::unixfs::CidVersion::V1, &mut |c, d| {
        fetched.push((*c, d.to_vec()));
        Ok(())
    })
    .unwrap();
    s.recordings.put_verified(&fetched).unwrap();
    let before = s.recordings.used().unwrap();
    let freed = s.recordings.collect_garbage(&[]).unwrap();
    assert!(freed >= 300_000, "{freed}");
    assert_eq!(s.recordings.used().unwrap(), before - freed);
    assert!(!s.recordings.has_block(&orphan.cid).unwrap());
    assert!(
        s.recordings.has_block(&kept).unwrap(),
        "a recorded chunk stays"
    );
    // Once its recording is gone, only a kept root holds it.
    s.recordings.clear_chunks("x", &[0]).unwrap();
    s.recordings.collect_garbage(&[kept]).unwrap();
    assert!(s.recordings.has_block(&kept).unwrap());
    s.recordings.collect_garbage(&[]).unwrap();
    assert!(!s.recordings.has_block(&kept).unwrap());
    assert_eq!(s.recordings.used().unwrap(), 0);
}

#[test]
fn a_dag_of_empty_leaves_is_refused_quickly() {
    use crate::unixfs::{self, CidVersion, DataType, PbLink, PbNode, UnixfsData};
    // A file node whose links all name the empty leaf: a reader must not
    // walk them (a thread held for ever), and says why.
    let empty = unixfs::cid_of(CidVersion::V1, unixfs::RAW, b"");
    let mut d = UnixfsData::new(DataType::File);
    d.blocksizes = vec![0; 20_000];
    d.filesize = Some(0);
    let node = PbNode {
        links: (0..20_000)
            .map(|_| PbLink {
                hash: empty,
                name: Some(String::new()),
                tsize: Some(0),
            })
            .collect(),
        data: Some(d.encode()),
    };
    let bytes = node.encode();
    let root = unixfs::cid_of(CidVersion::V1, unixfs::DAG_PB, &bytes);
    let mut get = |c: &unixfs::Cid| {
        if *c == root {
            Ok(bytes.clone())
        } else {
            Ok(vec![])
        }
    };
    let e = unixfs::read_file(&root, &mut get).unwrap_err();
    assert!(e.to_string().contains("empty chunk"), "{e}");
}

#[test]
fn records_of_the_first_version_read_back_after_paid_vods() {
    // The first version stored a recorded chunk with an `encrypted: bool`
    // that was always false (paid chunks were not recorded) and VOD records
    // without a price: both still read, as free.
    #[derive(serde::Serialize)]
    struct ChunkV1 {
        seq: u64,
        file_cid: Vec<u8>,
        tsize: u64,
        live_digest: [u8; 32],
        size: u64,
        duration_us: u32,
        discontinuity: bool,
        published_ms: u64,
        encrypted: bool,
    }
    #[derive(serde::Serialize)]
    struct VodV1 {
        root: String,
        stream: String,
        creator: String,
        title: String,
        duration_ms: u64,
        segments: u64,
        bytes: u64,
        created_ms: u64,
        signature: String,
        ipfs_pinned: Option<String>,
    }
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let old = ChunkV1 {
        seq: 3,
        file_cid: vec![1, 2],
        tsize: 4,
        live_digest: [5; 32],
        size: 6,
        duration_us: 7,
        discontinuity: true,
        published_ms: 8,
        encrypted: false,
    };
    let bytes = postcard::to_stdvec(&old).unwrap();
    let now: crate::RecordedChunk = postcard::from_bytes(&bytes).unwrap();
    assert_eq!((now.seq, now.published_ms, now.paid), (3, 8, None));
    let v1 = VodV1 {
        root: "bafyroot".into(),
        stream: "s".into(),
        creator: "c".into(),
        title: "t".into(),
        duration_ms: 1,
        segments: 2,
        bytes: 3,
        created_ms: 4,
        signature: "ab".into(),
        ipfs_pinned: None,
    };
    s.vods
        .tree
        .insert(b"bafyroot", postcard::to_stdvec(&v1).unwrap())
        .unwrap();
    let r = s.vods.get("bafyroot").unwrap().unwrap();
    assert_eq!((r.segments, r.price_per_sec, r.is_paid()), (2, 0, false));
    assert_eq!(s.vods.all().unwrap().len(), 1);
    // A paid chunk round-trips.
    let p = crate::ChunkToRecord {
        paid: Some(crate::PaidChunk {
            epoch: 11,
            parts: vec![100, 200],
            header: vec![1, 2, 3],
        }),
        ..chunk("p", 0, b"sealed")
    };
    s.recordings.record(&p).unwrap();
    assert_eq!(s.recordings.chunks("p").unwrap()[0].paid, p.paid);
}

#[test]
fn heard_vods_are_bounded_per_creator_and_in_all() {
    use crate::vods::{VodRecord, MAX_HEARD_PER_CREATOR};
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let rec = |creator: &str, n: u64| VodRecord {
        root: format!("bafy{creator}{n}"),
        stream: format!("{creator}-s"),
        creator: creator.into(),
        title: String::new(),
        duration_ms: 1,
        segments: 1,
        bytes: 1,
        created_ms: n,
        signature: "00".into(),
        ipfs_pinned: None,
        price_per_sec: 0,
    };
    assert!(s.heard_vods.put(&rec("aa", 1), 1).unwrap());
    assert!(!s.heard_vods.put(&rec("aa", 1), 2).unwrap(), "a repeat");
    // One creator announcing VOD after VOD keeps only its newest.
    for n in 2..=(MAX_HEARD_PER_CREATOR as u64 + 10) {
        s.heard_vods.put(&rec("aa", n), n).unwrap();
    }
    s.heard_vods.put(&rec("bb", 5), 100).unwrap();
    assert_eq!(s.heard_vods.len(), MAX_HEARD_PER_CREATOR + 1);
    assert_eq!(s.heard_vods.of_root("bafybb5").unwrap().len(), 1);
    let all = s.heard_vods.all().unwrap();
    assert_eq!(all.len(), MAX_HEARD_PER_CREATOR + 1);
    assert_eq!(
        all.iter().filter(|r| r.creator == "aa").count(),
        MAX_HEARD_PER_CREATOR
    );
    assert!(
        all.iter().any(|r| r.creator == "bb"),
        "another creator kept"
    );
    assert!(
        all.iter()
            .filter(|r| r.creator == "aa")
            .all(|r| r.created_ms > 10),
        "the oldest went"
    );
}
