//! Unit and property tests of the tick-stream pallet on the mock runtime.

use crate::{mock::*, voucher_message, Channels, Error, Event, HoldReason, PayeeTicks};
use ed25519_dalek::{Signer, SigningKey};
use polkadot_sdk::frame_support::traits::fungible::{Inspect, InspectHold};
use polkadot_sdk::frame_support::{assert_noop, assert_ok};
use polkadot_sdk::sp_core::H256;
use proptest::prelude::*;

const PRICE: Balance = 10;
const DEPOSIT: Balance = 2_000;
const EXPIRES: u64 = 100;

fn node_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn sign(key: &SigningKey, chain: H256, channel: u64, amount: Balance) -> [u8; 64] {
    key.sign(&voucher_message::<Test>(&chain, channel, &amount))
        .to_bytes()
}

fn voucher(channel: u64, amount: Balance) -> (Balance, H256, [u8; 64]) {
    let chain = TickStream::genesis_hash();
    (amount, chain, sign(&node_key(), chain, channel, amount))
}

fn open() -> u64 {
    let id = crate::NextChannelId::<Test>::get();
    assert_ok!(TickStream::open_channel(
        RuntimeOrigin::signed(PAYER),
        PAYEE,
        node_key().verifying_key().to_bytes(),
        PRICE,
        DEPOSIT,
        EXPIRES
    ));
    id
}

fn held(who: AccountId) -> Balance {
    Balances::balance_on_hold(&HoldReason::ChannelDeposit.into(), &who)
}

fn claim(channel: u64, amount: Balance) -> polkadot_sdk::sp_runtime::DispatchResult {
    let (amount, chain, sig) = voucher(channel, amount);
    TickStream::claim(RuntimeOrigin::signed(PAYEE), channel, amount, chain, sig)
}

#[test]
fn open_holds_the_deposit_in_the_payers_account() {
    new_test_ext().execute_with(|| {
        let id = open();
        assert_eq!(held(PAYER), DEPOSIT);
        assert_eq!(Balances::balance(&PAYER), INITIAL - DEPOSIT);
        assert_eq!(
            Balances::total_balance(&PAYER),
            INITIAL,
            "held, not transferred"
        );
        let c = Channels::<Test>::get(id).unwrap();
        assert_eq!(
            (c.payer, c.payee, c.deposit, c.claimed, c.ticks),
            (PAYER, PAYEE, DEPOSIT, 0, 0)
        );
        System::assert_last_event(
            Event::ChannelOpened {
                channel: id,
                payer: PAYER,
                payee: PAYEE,
                deposit: DEPOSIT,
                price_per_second: PRICE,
                expires_at: EXPIRES,
            }
            .into(),
        );
    });
}

#[test]
fn open_rejects_bad_parameters() {
    new_test_ext().execute_with(|| {
        let key = node_key().verifying_key().to_bytes();
        let o = || RuntimeOrigin::signed(PAYER);
        assert_noop!(
            TickStream::open_channel(o(), PAYER, key, PRICE, DEPOSIT, EXPIRES),
            Error::<Test>::SelfChannel
        );
        assert_noop!(
            TickStream::open_channel(o(), PAYEE, key, 0, DEPOSIT, EXPIRES),
            Error::<Test>::ZeroPrice
        );
        assert_noop!(
            TickStream::open_channel(o(), PAYEE, key, PRICE, PRICE - 1, EXPIRES),
            Error::<Test>::DepositBelowPrice
        );
        assert_noop!(
            TickStream::open_channel(o(), PAYEE, key, PRICE, DEPOSIT, 1),
            Error::<Test>::ExpiryInPast
        );
        assert_noop!(
            TickStream::open_channel(o(), PAYEE, key, PRICE, INITIAL * 2, EXPIRES),
            Error::<Test>::InsufficientFunds
        );
    });
}

#[test]
fn top_up_adds_to_the_hold() {
    new_test_ext().execute_with(|| {
        let id = open();
        assert_ok!(TickStream::top_up(RuntimeOrigin::signed(PAYER), id, 500));
        assert_eq!(held(PAYER), DEPOSIT + 500);
        assert_eq!(Channels::<Test>::get(id).unwrap().deposit, DEPOSIT + 500);
        System::assert_last_event(
            Event::ToppedUp {
                channel: id,
                amount: 500,
                deposit: DEPOSIT + 500,
            }
            .into(),
        );
        assert_noop!(
            TickStream::top_up(RuntimeOrigin::signed(PAYEE), id, 5),
            Error::<Test>::NotPayer
        );
        assert_noop!(
            TickStream::top_up(RuntimeOrigin::signed(PAYER), 99, 5),
            Error::<Test>::ChannelNotFound
        );
        assert_noop!(
            TickStream::top_up(RuntimeOrigin::signed(PAYER), id, 0),
            Error::<Test>::ZeroAmount
        );
        assert_noop!(
            TickStream::top_up(RuntimeOrigin::signed(PAYER), id, INITIAL),
            Error::<Test>::InsufficientFunds
        );
    });
}

#[test]
fn extend_moves_expiry_later_only() {
    new_test_ext().execute_with(|| {
        let id = open();
        assert_ok!(TickStream::extend(
            RuntimeOrigin::signed(PAYER),
            id,
            EXPIRES + 10
        ));
        assert_eq!(Channels::<Test>::get(id).unwrap().expires_at, EXPIRES + 10);
        System::assert_last_event(
            Event::Extended {
                channel: id,
                expires_at: EXPIRES + 10,
            }
            .into(),
        );
        assert_noop!(
            TickStream::extend(RuntimeOrigin::signed(PAYER), id, EXPIRES),
            Error::<Test>::ExpiryNotLater
        );
        assert_noop!(
            TickStream::extend(RuntimeOrigin::signed(PAYEE), id, EXPIRES + 20),
            Error::<Test>::NotPayer
        );
        assert_noop!(
            TickStream::extend(RuntimeOrigin::signed(PAYER), 9, EXPIRES + 20),
            Error::<Test>::ChannelNotFound
        );
    });
}

#[test]
fn claim_of_the_latest_of_120_per_second_vouchers_pays_the_difference() {
    new_test_ext().execute_with(|| {
        let id = open();
        // The payer's node signs one voucher per second watched.
        let vouchers: Vec<_> = (1..=120).map(|s| voucher(id, s * PRICE)).collect();
        let (amount, chain, sig) = vouchers[59];
        assert_ok!(TickStream::claim(
            RuntimeOrigin::signed(PAYEE),
            id,
            amount,
            chain,
            sig
        ));
        assert_eq!(Balances::balance(&PAYEE), INITIAL + 60 * PRICE);
        let (amount, chain, sig) = vouchers[119];
        assert_ok!(TickStream::claim(
            RuntimeOrigin::signed(PAYEE),
            id,
            amount,
            chain,
            sig
        ));
        System::assert_last_event(
            Event::Claimed {
                channel: id,
                amount: 60 * PRICE,
                cumulative: 120 * PRICE,
                ticks: 120,
            }
            .into(),
        );
        assert_eq!(Balances::balance(&PAYEE), INITIAL + 120 * PRICE);
        assert_eq!(held(PAYER), DEPOSIT - 120 * PRICE);
        assert_eq!(Balances::total_balance(&PAYER), INITIAL - 120 * PRICE);
        assert_eq!(Channels::<Test>::get(id).unwrap().ticks, 120);
        assert_eq!(PayeeTicks::<Test>::get(PAYEE), 120);
        // An older voucher, and the same one again, are refused distinctly.
        let (amount, chain, sig) = vouchers[10];
        assert_noop!(
            TickStream::claim(RuntimeOrigin::signed(PAYEE), id, amount, chain, sig),
            Error::<Test>::VoucherOutdated
        );
        let (amount, chain, sig) = vouchers[119];
        assert_noop!(
            TickStream::claim(RuntimeOrigin::signed(PAYEE), id, amount, chain, sig),
            Error::<Test>::VoucherReplayed
        );
    });
}

#[test]
fn claim_refuses_bad_vouchers_with_distinct_errors() {
    new_test_ext().execute_with(|| {
        let id = open();
        let chain = TickStream::genesis_hash();
        let payee = || RuntimeOrigin::signed(PAYEE);
        // Over the deposit (validly signed).
        let (a, c, s) = voucher(id, DEPOSIT + PRICE);
        assert_noop!(
            TickStream::claim(payee(), id, a, c, s),
            Error::<Test>::ExceedsDeposit
        );
        // Signed by another key.
        let rogue = SigningKey::from_bytes(&[8; 32]);
        assert_noop!(
            TickStream::claim(payee(), id, 100, chain, sign(&rogue, chain, id, 100)),
            Error::<Test>::BadSignature
        );
        // Signed for another chain.
        let other_chain = H256::repeat_byte(0xee);
        assert_noop!(
            TickStream::claim(
                payee(),
                id,
                100,
                other_chain,
                sign(&node_key(), other_chain, id, 100)
            ),
            Error::<Test>::WrongChain
        );
        // Signed for another channel, or another amount.
        assert_noop!(
            TickStream::claim(
                payee(),
                id,
                100,
                chain,
                sign(&node_key(), chain, id + 1, 100)
            ),
            Error::<Test>::BadSignature
        );
        assert_noop!(
            TickStream::claim(payee(), id, 110, chain, sign(&node_key(), chain, id, 100)),
            Error::<Test>::BadSignature
        );
        // Only the payee claims; the channel must exist.
        let (a, c, s) = voucher(id, 100);
        assert_noop!(
            TickStream::claim(RuntimeOrigin::signed(OTHER), id, a, c, s),
            Error::<Test>::NotPayee
        );
        assert_noop!(
            TickStream::claim(payee(), 42, a, c, s),
            Error::<Test>::ChannelNotFound
        );
        assert_eq!(held(PAYER), DEPOSIT, "nothing moved");
    });
}

#[test]
fn payee_may_close_at_any_time_refunding_the_rest() {
    new_test_ext().execute_with(|| {
        let id = open();
        assert_ok!(claim(id, 300));
        assert_noop!(
            TickStream::close(RuntimeOrigin::signed(OTHER), id),
            Error::<Test>::NotPayee
        );
        assert_ok!(TickStream::close(RuntimeOrigin::signed(PAYEE), id));
        System::assert_last_event(
            Event::ChannelClosed {
                channel: id,
                refunded: DEPOSIT - 300,
                claimed: 300,
            }
            .into(),
        );
        assert_eq!(held(PAYER), 0);
        assert_eq!(Balances::balance(&PAYER), INITIAL - 300);
        assert!(Channels::<Test>::get(id).is_none());
        assert_noop!(
            TickStream::close(RuntimeOrigin::signed(PAYEE), id),
            Error::<Test>::ChannelNotFound
        );
        assert_noop!(claim(id, 400), Error::<Test>::ChannelNotFound);
    });
}

#[test]
fn payer_may_close_only_after_expiry_and_gets_the_exact_rest() {
    new_test_ext().execute_with(|| {
        let id = open();
        assert_ok!(claim(id, 1_230));
        assert_noop!(
            TickStream::close(RuntimeOrigin::signed(PAYER), id),
            Error::<Test>::ChannelNotExpired
        );
        System::set_block_number(EXPIRES);
        assert_ok!(TickStream::close(RuntimeOrigin::signed(PAYER), id));
        assert_eq!(Balances::balance(&PAYER), INITIAL - 1_230);
        assert_eq!(Balances::balance(&PAYEE), INITIAL + 1_230);
        assert_eq!(held(PAYER), 0);
    });
}

#[test]
fn several_channels_of_one_payer_share_the_hold_correctly() {
    new_test_ext().execute_with(|| {
        let a = open();
        let b = open();
        assert_eq!(held(PAYER), 2 * DEPOSIT);
        assert_ok!(claim(a, DEPOSIT));
        assert_ok!(TickStream::close(RuntimeOrigin::signed(PAYEE), b));
        assert_eq!(held(PAYER), 0);
        assert_eq!(Balances::balance(&PAYER), INITIAL - DEPOSIT);
        assert_eq!(
            PayeeTicks::<Test>::get(PAYEE),
            DEPOSIT as u64 / PRICE as u64
        );
    });
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Whatever sequence of vouchers the payee submits, nobody is paid more
    /// than the deposit, and closing refunds the payer exactly the rest.
    #[test]
    fn claims_never_exceed_deposit_and_refund_is_exact(
        deposit in 10u128..50_000,
        top_up in 0u128..10_000,
        amounts in proptest::collection::vec(0u128..70_000, 1..20),
        payee_closes in any::<bool>(),
    ) {
        new_test_ext().execute_with(|| {
            let key = node_key().verifying_key().to_bytes();
            assert_ok!(TickStream::open_channel(RuntimeOrigin::signed(PAYER), PAYEE, key, 1, deposit, EXPIRES));
            let mut total = deposit;
            if top_up > 0 {
                assert_ok!(TickStream::top_up(RuntimeOrigin::signed(PAYER), 0, top_up));
                total += top_up;
            }
            let mut best: Balance = 0;
            for a in amounts {
                let r = claim(0, a);
                let expected_ok = a > best && a <= total;
                prop_assert_eq!(r.is_ok(), expected_ok, "amount {} best {} total {}", a, best, total);
                if expected_ok { best = a; }
                prop_assert!(Balances::balance(&PAYEE) - INITIAL <= total);
                prop_assert_eq!(Balances::balance(&PAYEE), INITIAL + best);
                prop_assert_eq!(held(PAYER), total - best);
            }
            if payee_closes {
                assert_ok!(TickStream::close(RuntimeOrigin::signed(PAYEE), 0));
            } else {
                System::set_block_number(EXPIRES);
                assert_ok!(TickStream::close(RuntimeOrigin::signed(PAYER), 0));
            }
            prop_assert_eq!(held(PAYER), 0);
            prop_assert_eq!(Balances::balance(&PAYER), INITIAL - best);
            prop_assert_eq!(Balances::balance(&PAYEE), INITIAL + best);
            prop_assert_eq!(Balances::total_issuance(), 3 * INITIAL);
            Ok(())
        })?;
    }
}

/// The node's `vilokanam-chain` crate signs exactly these bytes (it has
/// the same test vector): tag, genesis hash, channel (u64 LE), amount
/// (u128 LE, SCALE).
#[test]
fn voucher_message_matches_the_node_encoding() {
    let msg = voucher_message::<Test>(&H256::repeat_byte(1), 7, &1000);
    let expected = "7469636b2d73747265616d2f7631000001010101010101010101010101010101010101010101010101010101010101010700000000000000e8030000000000000000000000000000";
    let hex: String = msg.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, expected);
}

/// The pre-signed voucher the `claim` benchmark uses verifies for the
/// benchmark's pinned chain, channel and amount.
#[cfg(feature = "runtime-benchmarks")]
#[test]
fn bench_voucher_is_valid() {
    use crate::benchmarking::*;
    let key = SigningKey::from_bytes(&[7; 32]);
    assert_eq!(key.verifying_key().to_bytes(), BENCH_VOUCHER_KEY);
    assert_eq!(
        sign(&key, H256(BENCH_GENESIS), BENCH_CHANNEL, BENCH_CUMULATIVE),
        BENCH_SIGNATURE
    );
}
