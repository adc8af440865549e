use std::time::{Duration, Instant};

use libp2p::PeerId;
use proptest::prelude::*;

use super::*;
use crate::protocols::live::wire::StreamId;

fn stream() -> StreamId {
    StreamId::new([7; 32], "show").expect("stream id")
}

fn paid_terms(fee: u64, credit: u64) -> BandwidthTerms {
    BandwidthTerms {
        fee_per_mib: fee,
        payee: [1; 32],
        chain: [2; 32],
        credit_bytes: credit,
    }
}

fn ledger(fee: u64, credit: u64) -> CreditLedger {
    CreditLedger::new(LedgerConfig {
        terms: paid_terms(fee, credit),
        ..LedgerConfig::default()
    })
}

#[test]
fn fees_round_up_on_the_cumulative_count() {
    assert_eq!(fee_for(0, 1000), 0);
    assert_eq!(fee_for(MIB, 1000), 1000);
    assert_eq!(fee_for(1, 1000), 1);
    assert_eq!(fee_for(MIB / 2, 3), 2);
    // 1,000 chunks of 1 KiB at 1 planck/MiB: per-chunk rounding would owe
    // 1,000 planck, the cumulative figure owes 1.
    assert_eq!(fee_for(1000 * 1024, 1), 1);
}

#[test]
fn terms_are_validated() {
    assert!(BandwidthTerms::free().validate().is_ok());
    assert!(paid_terms(5, MIB).validate().is_ok());
    let no_payee = BandwidthTerms {
        payee: [0; 32],
        ..paid_terms(5, MIB)
    };
    assert!(no_payee.validate().unwrap_err().contains("payee"));
    assert!(paid_terms(MAX_FEE_PER_MIB + 1, MIB)
        .validate()
        .unwrap_err()
        .contains("fee"));
    assert!(paid_terms(1, MAX_CREDIT_BYTES + 1)
        .validate()
        .unwrap_err()
        .contains("credit"));
}

#[test]
fn a_free_node_serves_everyone() {
    let mut l = CreditLedger::new(LedgerConfig::default());
    let now = Instant::now();
    let p = PeerId::random();
    for _ in 0..100 {
        assert_eq!(l.check(now, p, MIB), ServeDecision::Serve);
        l.served(now, p, &stream(), MIB);
    }
    assert_eq!(l.totals().served_bytes, 100 * MIB);
    assert_eq!(l.outstanding(), 0);
}

#[test]
fn a_freeloader_gets_at_most_the_credit_then_nothing() {
    let mut l = ledger(1_000_000, 3 * MIB);
    let now = Instant::now();
    let p = PeerId::random();
    let mut got = 0;
    for _ in 0..20 {
        if l.check(now, p, 700_000) == ServeDecision::Serve {
            l.served(now, p, &stream(), 700_000);
            got += 700_000;
        }
    }
    assert!(got <= 3 * MIB, "served {got} bytes on a 3 MiB credit");
    assert!(got > 3 * MIB - 700_000, "served only {got}");
    let a = l.account(&p).expect("account");
    assert!(a.cut_off);
    assert_eq!(a.refused, 20 - got / 700_000);
    assert_eq!(l.totals().cut_offs, 1);
}

#[test]
fn a_peer_that_pays_after_each_chunk_is_never_refused_and_one_that_stops_is_cut_off() {
    let fee = 50_000_000;
    let mut l = ledger(fee, 2 * MIB);
    let now = Instant::now();
    let (payer, quitter) = (PeerId::random(), PeerId::random());
    let chunk = 900_000;
    let mut paid = [0u128; 2];
    for round in 0..50u64 {
        for (i, p) in [payer, quitter].into_iter().enumerate() {
            let d = l.check(now, p, chunk);
            if i == 1 && round >= 10 {
                // Stopped paying at round 10: cut off within the credit.
                if round >= 13 {
                    assert!(matches!(d, ServeDecision::Refuse { .. }), "round {round}");
                }
            } else {
                assert_eq!(d, ServeDecision::Serve, "peer {i} round {round}");
            }
            if d == ServeDecision::Serve {
                l.served(now, p, &stream(), chunk);
                if i == 0 || round < 10 {
                    // Pays for what verified, cumulatively.
                    let owed = fee_for((round + 1) * chunk, fee);
                    let raised = owed - paid[i];
                    paid[i] = owed;
                    l.paid(now, p, raised);
                }
            }
        }
    }
    let q = l.account(&quitter).expect("account");
    assert!(q.served_bytes <= 10 * chunk + 2 * MIB);
    assert!(q.cut_off);
    // Paying the debt lets it back in at once.
    let debt = q.unpaid(fee);
    assert!(l.paid(now, quitter, debt));
    assert_eq!(l.check(now, quitter, chunk), ServeDecision::Serve);
}

#[test]
fn fresh_identities_share_one_bounded_credit() {
    let mut l = CreditLedger::new(LedgerConfig {
        terms: paid_terms(1000, 4 * MIB),
        max_unproven_bytes: 8 * MIB,
        ..LedgerConfig::default()
    });
    let now = Instant::now();
    let mut served = 0;
    for _ in 0..100 {
        let p = PeerId::random();
        while l.check(now, p, MIB) == ServeDecision::Serve {
            l.served(now, p, &stream(), MIB);
            served += MIB;
        }
    }
    assert_eq!(served, 8 * MIB);
    // A newcomer is held back while they count...
    let newcomer = PeerId::random();
    assert_ne!(l.check(now, newcomer, MIB), ServeDecision::Serve);
    // ...but not after they went quiet: the pool frees, each of them stays
    // refused on its own debt.
    let later = now + Duration::from_secs(301);
    assert_eq!(l.check(later, newcomer, MIB), ServeDecision::Serve);
    let old = l
        .accounts()
        .into_iter()
        .find(|(p, a)| *p != newcomer && a.served_bytes > 0)
        .map(|(p, _)| p)
        .expect("a sybil");
    assert_ne!(l.check(later, old, 3 * MIB + 1), ServeDecision::Serve);
    // A peer that paid is not held back by them either.
    let honest = PeerId::random();
    l.paid(now, honest, 1);
    assert_eq!(l.check(now, honest, MIB), ServeDecision::Serve);
}

#[test]
fn bytes_that_never_went_out_are_not_owed() {
    let mut l = CreditLedger::new(LedgerConfig {
        terms: paid_terms(1000, 2 * MIB),
        ..LedgerConfig::default()
    });
    let (now, p) = (Instant::now(), PeerId::random());
    for _ in 0..2 {
        assert_eq!(l.check(now, p, MIB), ServeDecision::Serve);
        l.served(now, p, &stream(), MIB);
    }
    assert_ne!(l.check(now, p, MIB), ServeDecision::Serve, "credit used");
    // The second response failed to go out: one MiB of credit is back.
    l.unserved(&p, &stream(), MIB);
    assert_eq!(l.account(&p).map(|a| a.served_bytes), Some(MIB));
    assert_eq!(l.check(now, p, MIB), ServeDecision::Serve);
}

#[test]
fn a_server_that_changes_its_fee_is_paid_each_fee_for_its_own_bytes() {
    let mut p = Purchases::new(10_000, Some([2; 32]), 8);
    let server = PeerId::random();
    let cheap = paid_terms(1000, MIB);
    p.set_terms(server, cheap);
    p.verified(server, 2 * MIB);
    // Unpaid when it comes back dearer (a restart with a new fee).
    let dear = paid_terms(5000, MIB);
    p.set_terms(server, dear);
    p.verified(server, MIB);
    let (_, due) = p.due(&server).expect("due");
    assert_eq!(
        due,
        2 * 1000 + 5000,
        "old bytes at the old fee, new at the new"
    );
    p.record_paid(server, due);
    assert!(p.due(&server).is_none());
    // The same terms again (a reconnect) change nothing.
    p.set_terms(server, dear);
    assert!(p.due(&server).is_none());
    p.verified(server, MIB);
    assert_eq!(p.due(&server).map(|d| d.1), Some(5000));
}

#[test]
fn accounts_are_bounded_and_debt_free_ones_go_first() {
    let mut l = CreditLedger::new(LedgerConfig {
        terms: paid_terms(1000, 4 * MIB),
        max_peers: 3,
        ..LedgerConfig::default()
    });
    let t0 = Instant::now();
    let debtor = PeerId::random();
    l.served(t0, debtor, &stream(), MIB);
    for i in 1..10 {
        let p = PeerId::random();
        l.paid(t0 + Duration::from_secs(i), p, 5);
    }
    assert_eq!(l.len(), 3);
    assert!(l.account(&debtor).is_some(), "the debtor was evicted first");
    assert_eq!(l.totals().forgiven, 0);
}

#[test]
fn a_puller_pays_only_acceptable_terms_for_verified_bytes() {
    let me = [2; 32];
    let mut p = Purchases::new(1000, Some(me), 16);
    let (cheap, dear, foreign, free) = (
        PeerId::random(),
        PeerId::random(),
        PeerId::random(),
        PeerId::random(),
    );
    assert_eq!(
        p.set_terms(cheap, paid_terms(500, MIB)),
        Acceptance::Pays(500)
    );
    assert_eq!(
        p.set_terms(dear, paid_terms(5000, MIB)),
        Acceptance::TooDear(5000)
    );
    let other_chain = BandwidthTerms {
        chain: [9; 32],
        ..paid_terms(1, MIB)
    };
    assert_eq!(p.set_terms(foreign, other_chain), Acceptance::WrongChain);
    assert_eq!(p.set_terms(free, BandwidthTerms::free()), Acceptance::Free);
    for peer in [cheap, dear, foreign, free] {
        p.verified(peer, 3 * MIB);
    }
    let (_, due) = p.due(&cheap).expect("due");
    assert_eq!(due, 1500);
    assert_eq!(p.due(&dear), None);
    assert_eq!(p.due(&foreign), None);
    assert_eq!(p.due(&free), None);
    p.record_paid(cheap, due);
    assert_eq!(p.due(&cheap), None);
    // No chain: nobody is paid.
    let mut none = Purchases::new(1000, None, 16);
    assert_eq!(
        none.set_terms(cheap, paid_terms(1, MIB)),
        Acceptance::TooDear(1)
    );
}

proptest! {
    /// Whatever the order of serves and payments, a peer is never handed
    /// more than what it paid for plus its credit, and a puller never pays
    /// more than what it verified costs.
    #[test]
    fn never_more_than_paid_plus_credit(
        fee in 1u64..10_000_000,
        credit in 0u64..(8 * MIB),
        ops in proptest::collection::vec((any::<bool>(), 1u64..(2 * MIB)), 1..200),
    ) {
        let mut l = ledger(fee, credit);
        let mut buyer = Purchases::new(fee, Some([2; 32]), 4);
        let now = Instant::now();
        let peer = PeerId::random();
        buyer.set_terms(peer, paid_terms(fee, credit));
        for (pay, len) in ops {
            if pay {
                if let Some((_, due)) = buyer.due(&peer) {
                    buyer.record_paid(peer, due);
                    l.paid(now, peer, due);
                }
            } else if l.check(now, peer, len) == ServeDecision::Serve {
                l.served(now, peer, &stream(), len);
                buyer.verified(peer, len);
            }
            let a = l.account(&peer).unwrap_or_default();
            prop_assert!(a.owed(fee) <= a.paid + fee_for(credit, fee));
            let b = buyer.get(&peer).unwrap_or_default();
            prop_assert!(b.paid <= fee_for(b.verified_bytes, fee));
            prop_assert_eq!(b.paid, a.paid);
        }
    }
}
