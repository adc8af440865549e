use std::collections::HashMap;

use super::wire::{block_cid, CidPrefix};
use super::*;

fn raw(data: &[u8]) -> Cid {
    use sha2::Digest;
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &sha2::Sha256::digest(data)).unwrap();
    Cid::new_v1(0x55, mh)
}

struct Map(HashMap<Cid, Vec<u8>>);
impl BlockSource for Map {
    fn get(&self, cid: &Cid) -> Option<Vec<u8>> {
        self.0.get(cid).cloned()
    }
    fn has(&self, cid: &Cid) -> bool {
        self.0.contains_key(cid)
    }
}

fn want(cid: Cid, t: WantType, dont: bool) -> WantEntry {
    WantEntry {
        cid,
        priority: 1,
        cancel: false,
        want_type: t,
        send_dont_have: dont,
    }
}

#[test]
fn messages_round_trip() {
    let a = raw(b"a");
    let m = Message {
        wants: vec![
            want(a, WantType::Have, true),
            WantEntry {
                cancel: true,
                ..want(a, WantType::Block, false)
            },
        ],
        full: true,
        blocks: vec![(CidPrefix::of(&a), b"a".to_vec())],
        presences: vec![(a, Presence::DontHave), (a, Presence::Have)],
    };
    assert_eq!(Message::decode(&m.encode()).unwrap(), m);
    assert_eq!(block_cid(&CidPrefix::of(&a), b"a").unwrap(), a);
    assert_ne!(
        block_cid(&CidPrefix::of(&a), b"b").unwrap(),
        a,
        "other bytes, other CID"
    );
}

#[test]
fn answers_follow_the_protocol() {
    let a = raw(b"a");
    let missing = raw(b"missing");
    let src = Map([(a, b"a".to_vec())].into());
    let msg = Message {
        wants: vec![
            want(a, WantType::Block, true),
            want(a, WantType::Have, true),
            want(missing, WantType::Block, true),
            want(missing, WantType::Have, false),
            WantEntry {
                cancel: true,
                ..want(a, WantType::Block, true)
            },
        ],
        ..Message::default()
    };
    let out = answer(&msg, &src);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].blocks, vec![(CidPrefix::of(&a), b"a".to_vec())]);
    assert_eq!(
        out[0].presences,
        vec![(a, Presence::Have), (missing, Presence::DontHave)]
    );
    // Nothing to say: no message.
    let none = Message {
        wants: vec![want(missing, WantType::Have, false)],
        ..Message::default()
    };
    assert!(answer(&none, &src).is_empty());
}

#[test]
fn big_answers_are_split_and_oversized_blocks_never_sent() {
    let blocks: Vec<Vec<u8>> = (0..5u8).map(|i| vec![i; 400_000]).collect();
    let huge = vec![9u8; MAX_BLOCK + 1];
    let mut map: HashMap<Cid, Vec<u8>> = blocks.iter().map(|b| (raw(b), b.clone())).collect();
    map.insert(raw(&huge), huge.clone());
    let src = Map(map);
    let mut wants: Vec<WantEntry> = blocks
        .iter()
        .map(|b| want(raw(b), WantType::Block, true))
        .collect();
    wants.push(want(raw(&huge), WantType::Block, true));
    let out = answer(
        &Message {
            wants,
            ..Message::default()
        },
        &src,
    );
    assert!(out.len() >= 2);
    let sent: usize = out.iter().map(|m| m.blocks.len()).sum();
    assert_eq!(sent, 5, "the oversized block is not sent");
    for m in &out {
        assert!(m.encode().len() <= wire::MAX_MESSAGE);
    }
    assert!(out
        .iter()
        .any(|m| m.presences.contains(&(raw(&huge), Presence::DontHave))));
}

#[test]
fn garbage_and_floods_are_refused() {
    for bad in [
        &[0x0a, 0xff][..],
        &[0x0a, 0x02, 0x0a, 0x05][..],
        &[0x22, 0x02, 0x10, 0x01][..],
        &[0x0f][..],
    ] {
        assert!(Message::decode(bad).is_err(), "{bad:02x?}");
    }
    // Unknown fields are skipped.
    assert_eq!(Message::decode(&[0x28, 0x05]).unwrap(), Message::default());
    // More entries than allowed in one message.
    let a = raw(b"a");
    let m = Message {
        wants: vec![want(a, WantType::Have, false); wire::MAX_ENTRIES * 3 + 1],
        ..Message::default()
    };
    assert!(matches!(
        Message::decode(&m.encode()),
        Err(wire::BitswapWireError::TooLarge(_))
    ));
    // Non-sha2 multihashes are refused for blocks.
    let p = CidPrefix {
        version: 1,
        codec: 0x55,
        mh_code: 0x13,
        mh_len: 64,
    };
    assert!(block_cid(&p, b"x").is_err());
}
