//! The record rules one by one, and the merge's algebra.

use std::time::{Duration, Instant};

use ed25519_dalek::SigningKey;
use libp2p::PeerId;
use proptest::prelude::*;

use super::core::{accept, merge_ops, RateLimited, RecordError, SocialConfig, SocialPolicy};
use super::wire::*;

const NOW: u64 = 1_800_000_000_000;

fn key(n: u8) -> SigningKey {
    SigningKey::from_bytes(&[n; 32])
}

fn pk(n: u8) -> [u8; 32] {
    key(n).verifying_key().to_bytes()
}

fn profile(n: u8, version: u64, name: &str) -> SignedProfile {
    Profile {
        creator: pk(n),
        version,
        expires_ms: version + 24 * 3600 * 1000,
        name: name.into(),
        bio: "hello\nworld".into(),
        avatar: Some("bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy".into()),
    }
    .sign(&key(n))
    .unwrap()
}

fn op(follower: u8, creator: u8, follow: bool, at_ms: u64) -> SignedFollowOp {
    FollowOp {
        follower: pk(follower),
        creator: pk(creator),
        follow,
        at_ms,
    }
    .sign(&key(follower))
    .unwrap()
}

fn follows(follower: u8, ops: Vec<SignedFollowOp>) -> SocialRecord {
    SocialRecord::Follows {
        subject: pk(follower),
        ops,
    }
}

fn put(r: &SocialRecord, held: Option<&SocialRecord>) -> Result<SocialRecord, RecordError> {
    let h = held.map(|h| h.encode());
    accept(&r.key().to_bytes(), &r.encode(), h.as_deref(), NOW).map(|a| a.record)
}

#[test]
fn keys_round_trip_and_foreign_keys_are_refused() {
    let k = RecordKey {
        kind: RecordKind::Followers,
        subject: pk(1),
    };
    assert_eq!(RecordKey::from_bytes(&k.to_bytes()), Some(k));
    for bad in [
        &b"/pk/abc"[..],
        b"/vilokanam/social/1/profile/zz",
        b"/vilokanam/social/1/other/0000000000000000000000000000000000000000000000000000000000000000",
    ] {
        assert_eq!(RecordKey::from_bytes(bad), None);
    }
    let r = SocialRecord::Profile(profile(1, NOW, "a"));
    assert_eq!(
        accept(b"/pk/abc", &r.encode(), None, NOW),
        Err(RecordError::ForeignKey)
    );
}

#[test]
fn a_profile_is_kept_and_only_a_newer_version_replaces_it() {
    let v1 = SocialRecord::Profile(profile(1, NOW - 10, "one"));
    let v2 = SocialRecord::Profile(profile(1, NOW - 5, "two"));
    assert_eq!(put(&v1, None).unwrap(), v1);
    assert_eq!(put(&v2, Some(&v1)).unwrap(), v2);
    // Replayed older version: refused, precisely.
    assert_eq!(
        put(&v1, Some(&v2)),
        Err(RecordError::NotNewer {
            held: NOW - 5,
            got: NOW - 10
        })
    );
    assert_eq!(put(&v2, Some(&v2)), Err(RecordError::Unchanged));
    let other = SocialRecord::Profile(profile(1, NOW - 5, "other"));
    assert_eq!(
        put(&other, Some(&v2)),
        Err(RecordError::Equivocation { version: NOW - 5 })
    );
}

#[test]
fn forged_expired_future_and_misfiled_profiles_are_refused() {
    // Signed by another key.
    let mut forged = profile(1, NOW, "me");
    forged.profile.name = "someone else".into();
    let r = SocialRecord::Profile(forged);
    assert!(matches!(put(&r, None), Err(RecordError::Forged { .. })));
    // A key's record filed under another key.
    let p = SocialRecord::Profile(profile(1, NOW, "me"));
    let other = RecordKey {
        kind: RecordKind::Profile,
        subject: pk(2),
    };
    assert!(matches!(
        accept(&other.to_bytes(), &p.encode(), None, NOW),
        Err(RecordError::KeyMismatch { .. })
    ));
    // Expired.
    let old = SocialRecord::Profile(profile(1, NOW - 48 * 3600 * 1000, "me"));
    assert!(matches!(put(&old, None), Err(RecordError::Expired { .. })));
    // From the future.
    let future = SocialRecord::Profile(profile(1, NOW + 3_600_000, "me"));
    assert!(matches!(
        put(&future, None),
        Err(RecordError::FromFuture { .. })
    ));
    // Fields: too long a name, control characters, a bad avatar, a too
    // long life: refused at signing (the node's own) and at decoding.
    let base = profile(1, NOW, "me").profile;
    for bad in [
        Profile {
            name: "x".repeat(MAX_NAME_CHARS + 1),
            ..base.clone()
        },
        Profile {
            name: "a\u{7}b".into(),
            ..base.clone()
        },
        Profile {
            avatar: Some("not a cid".into()),
            ..base.clone()
        },
        Profile {
            expires_ms: base.version + MAX_PROFILE_TTL_MS + 1,
            ..base.clone()
        },
    ] {
        assert!(bad.clone().sign(&key(1)).is_err());
        // Signed anyway (bypassing `sign`), it is malformed to every node.
        let sig = crate::protocols::live::wire::Sig([0; 64]);
        let r = SocialRecord::Profile(SignedProfile {
            profile: bad,
            signature: sig,
        });
        assert!(
            matches!(put(&r, None), Err(RecordError::Malformed(_))),
            "{r:?}"
        );
    }
}

#[test]
fn an_oversized_record_is_refused_before_it_is_parsed() {
    let p = SocialRecord::Profile(profile(1, NOW, "me"));
    let mut bytes = p.encode();
    bytes.resize(MAX_PROFILE_RECORD + 1, 0);
    let e = accept(&p.key().to_bytes(), &bytes, None, NOW).unwrap_err();
    assert!(matches!(e, RecordError::Malformed(_)), "{e}");
    let huge = vec![4u8; MAX_RECORD + 1];
    assert!(matches!(
        accept(&p.key().to_bytes(), &huge, None, NOW),
        Err(RecordError::Malformed(
            crate::protocols::live::wire::WireError::TooLarge { .. }
        ))
    ));
    // A follows record with more operations than a record holds.
    let ops: Vec<_> = (0..=MAX_FOLLOW_OPS as u64)
        .map(|i| {
            FollowOp {
                follower: pk(1),
                creator: {
                    let mut c = [9u8; 32];
                    c[..8].copy_from_slice(&i.to_be_bytes());
                    c
                },
                follow: true,
                at_ms: NOW,
            }
            .sign(&key(1))
            .unwrap()
        })
        .collect();
    let r = follows(1, ops);
    assert!(put(&r, None).is_err());
}

#[test]
fn follow_sets_merge_and_a_stale_copy_loses_nothing() {
    // Device 1 follows 2 and 3; device 2 (a stale copy) knows only the
    // follow of 2, then unfollows 2 and follows 4.
    let d1 = follows(1, vec![op(1, 2, true, NOW - 100), op(1, 3, true, NOW - 90)]);
    let d2 = follows(1, vec![op(1, 2, false, NOW - 50), op(1, 4, true, NOW - 40)]);
    let a = put(&d2, Some(&put(&d1, None).unwrap())).unwrap();
    let b = put(&d1, Some(&put(&d2, None).unwrap())).unwrap();
    assert_eq!(a, b, "the order of arrival does not matter");
    let followed: Vec<_> = super::core::followed(a.ops())
        .map(|o| o.op.creator)
        .collect();
    let mut want = vec![pk(3), pk(4)];
    want.sort();
    let mut got = followed.clone();
    got.sort();
    assert_eq!(got, want);
    // The stale copy again: nothing new.
    assert_eq!(put(&d1, Some(&a)), Err(RecordError::Unchanged));
}

#[test]
fn follow_records_with_foreign_or_forged_operations_are_refused() {
    // An operation by another follower in my follows record.
    let r = follows(1, vec![op(1, 2, true, NOW), op(5, 2, true, NOW)]);
    assert_eq!(put(&r, None), Err(RecordError::WrongSubject));
    // Two operations for one pair.
    let r = follows(1, vec![op(1, 2, true, NOW), op(1, 2, false, NOW - 1)]);
    assert_eq!(put(&r, None), Err(RecordError::Duplicate));
    // A forged operation (the time changed after signing).
    let mut o = op(1, 2, true, NOW);
    o.op.at_ms -= 1;
    assert!(matches!(
        put(&follows(1, vec![o]), None),
        Err(RecordError::Forged { .. })
    ));
    // Followers index: every operation must name the subject.
    let r = SocialRecord::Followers {
        subject: pk(2),
        ops: vec![op(1, 2, true, NOW), op(1, 3, true, NOW)],
    };
    assert_eq!(put(&r, None), Err(RecordError::WrongSubject));
    // A key cannot follow itself.
    assert!(FollowOp {
        follower: pk(1),
        creator: pk(1),
        follow: true,
        at_ms: NOW
    }
    .sign(&key(1))
    .is_err());
}

#[test]
fn a_followers_index_keeps_the_newest_follows_within_its_bound() {
    let mut ops = Vec::new();
    for i in 0..(MAX_FOLLOW_OPS + 10) {
        let k = SigningKey::from_bytes(&{
            let mut b = [7u8; 32];
            b[..8].copy_from_slice(&(i as u64).to_be_bytes());
            b
        });
        let o = FollowOp {
            follower: k.verifying_key().to_bytes(),
            creator: pk(2),
            follow: i % 50 != 0,
            at_ms: NOW - 1_000_000 + i as u64,
        }
        .sign(&k)
        .unwrap();
        ops.push(o);
    }
    let first = SocialRecord::Followers {
        subject: pk(2),
        ops: ops[..MAX_FOLLOW_OPS].to_vec(),
    };
    let held = put(&first, None).unwrap();
    let more = SocialRecord::Followers {
        subject: pk(2),
        ops: ops[MAX_FOLLOW_OPS..].to_vec(),
    };
    let merged = put(&more, Some(&held)).unwrap();
    assert_eq!(merged.ops().len(), MAX_FOLLOW_OPS);
    // Unfollows went first.
    let unfollows = merged.ops().iter().filter(|o| !o.op.follow).count();
    assert!(unfollows < ops.iter().filter(|o| !o.op.follow).count());
}

#[test]
fn the_policy_holds_back_a_flood_from_one_key_and_one_peer_only() {
    let t0 = Instant::now();
    let mut p = SocialPolicy::new(SocialConfig::default());
    let (peer, other_peer) = (PeerId::random(), PeerId::random());
    let burst = SocialConfig::default().subject_burst;
    for _ in 0..burst {
        p.admit(t0, peer, pk(1)).unwrap();
    }
    assert_eq!(p.admit(t0, peer, pk(1)), Err(RateLimited::Subject));
    // Another key through the same peer, and the same key later.
    p.admit(t0, peer, pk(2)).unwrap();
    p.admit(t0 + Duration::from_secs(10), other_peer, pk(1))
        .unwrap();
    // A peer that floods with fresh keys runs out of its own budget.
    let mut held = 0;
    for i in 0..200u8 {
        if p.admit(t0, other_peer, [i; 32]).is_err() {
            held += 1;
        }
    }
    assert!(held > 100, "{held}");
    // Budgets stay bounded.
    let mut p = SocialPolicy::new(SocialConfig {
        max_budgets: 100,
        ..SocialConfig::default()
    });
    for i in 0..1000u32 {
        let mut s = [0u8; 32];
        s[..4].copy_from_slice(&i.to_be_bytes());
        let _ = p.admit(t0 + Duration::from_secs(u64::from(i)), PeerId::random(), s);
    }
    assert!(p.budgets() <= 100, "{}", p.budgets());
}

fn arb_ops() -> impl Strategy<Value = Vec<SignedFollowOp>> {
    proptest::collection::vec((2u8..6, any::<bool>(), 0u64..5), 0..8).prop_map(|v| {
        v.into_iter()
            .map(|(c, f, t)| op(1, c, f, NOW - 100 + t))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn merge_is_commutative_associative_and_idempotent(a in arb_ops(), b in arb_ops(), c in arb_ops()) {
        let ab = merge_ops(&a, &b);
        prop_assert_eq!(&ab, &merge_ops(&b, &a));
        prop_assert_eq!(merge_ops(&ab, &c), merge_ops(&a, &merge_ops(&b, &c)));
        prop_assert_eq!(merge_ops(&ab, &ab), ab.clone());
        prop_assert_eq!(merge_ops(&ab, &a), ab);
    }

    #[test]
    fn any_bytes_under_any_key_are_refused_or_checked(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let k = RecordKey { kind: RecordKind::Profile, subject: pk(1) };
        // Never a panic; an accepted record re-encodes to a valid record.
        if let Ok(a) = accept(&k.to_bytes(), &bytes, None, NOW) {
            prop_assert!(SocialRecord::decode(&a.bytes).is_ok());
        }
    }
}
