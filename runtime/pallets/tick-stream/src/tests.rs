//! Unit and property tests of the tick-stream pallet on the mock runtime.

use crate::{
    legacy_voucher_message, mock::*, voucher_message, Channels, Error, Event, HoldReason, Payees,
};
use ed25519_dalek::{Signer, SigningKey};
use polkadot_sdk::frame_support::traits::fungible::{Inspect, InspectHold};
use polkadot_sdk::frame_support::{assert_noop, assert_ok, BoundedVec};
use polkadot_sdk::sp_core::H256;
use proptest::prelude::*;

const DEPOSIT: Balance = 2_000;
const EXPIRES: u64 = 100;

fn node_key() -> SigningKey {
    SigningKey::from_bytes(&[7; 32])
}

fn sign(
    key: &SigningKey,
    chain: H256,
    channel: u64,
    payee: &AccountId,
    amount: Balance,
) -> [u8; 64] {
    key.sign(&voucher_message::<Test>(&chain, channel, payee, &amount))
        .to_bytes()
}

fn payees(list: &[AccountId]) -> BoundedVec<AccountId, ConstU32<4>> {
    list.to_vec().try_into().expect("at most MaxPayees")
}

use polkadot_sdk::frame_support::traits::ConstU32;

/// Opens a channel from PAYER; returns its id.
fn open_with(
    named: &[AccountId],
    max_payees: u32,
    cap: Balance,
    deposit: Balance,
    collateral: Balance,
) -> u64 {
    let id = crate::NextChannelId::<Test>::get();
    assert_ok!(TickStream::open(
        RuntimeOrigin::signed(PAYER),
        node_key().verifying_key().to_bytes(),
        payees(named),
        max_payees,
        cap,
        deposit,
        collateral,
        EXPIRES
    ));
    id
}

/// A single-payee channel to PAYEE.
fn open() -> u64 {
    open_with(&[PAYEE], 1, 0, DEPOSIT, 0)
}

fn held(who: &AccountId) -> Balance {
    Balances::balance_on_hold(&HoldReason::ChannelDeposit.into(), who)
}

fn held_collateral(who: &AccountId) -> Balance {
    Balances::balance_on_hold(&HoldReason::ChannelCollateral.into(), who)
}

/// `payee` claims a voucher for `amount` signed by the payer's node key.
fn claim_as(
    payee: &AccountId,
    channel: u64,
    amount: Balance,
) -> polkadot_sdk::sp_runtime::DispatchResult {
    let chain = TickStream::genesis_hash();
    let sig = sign(&node_key(), chain, channel, payee, amount);
    TickStream::claim(
        RuntimeOrigin::signed(payee.clone()),
        channel,
        amount,
        chain,
        sig,
    )
}

fn claim(channel: u64, amount: Balance) -> polkadot_sdk::sp_runtime::DispatchResult {
    claim_as(&PAYEE, channel, amount)
}

#[test]
fn open_holds_deposit_and_collateral_in_the_payers_account() {
    new_test_ext().execute_with(|| {
        // Creator named, two relay slots capped at 100: collateral ≥ 2·100.
        let id = open_with(&[PAYEE], 3, 100, DEPOSIT, 200);
        assert_eq!(held(&PAYER), DEPOSIT);
        assert_eq!(held_collateral(&PAYER), 200);
        assert_eq!(Balances::balance(&PAYER), INITIAL - DEPOSIT - 200);
        assert_eq!(
            Balances::total_balance(&PAYER),
            INITIAL,
            "held, not transferred"
        );
        let c = Channels::<Test>::get(id).unwrap();
        assert_eq!(
            (
                c.payer,
                c.deposit,
                c.collateral,
                c.max_payees,
                c.named_payees,
                c.bound_payees,
                c.paid
            ),
            (PAYER, DEPOSIT, 200, 3, 1, 1, 0)
        );
        assert_eq!(
            Payees::<Test>::get(id, PAYEE).map(|p| (p.claimed, p.named)),
            Some((0, true))
        );
        System::assert_last_event(
            Event::ChannelOpened {
                channel: id,
                payer: PAYER,
                payees: vec![PAYEE],
                max_payees: 3,
                payee_cap: 100,
                deposit: DEPOSIT,
                collateral: 200,
                expires_at: EXPIRES,
            }
            .into(),
        );
    });
}

#[test]
fn open_rejects_bad_parameters_each_with_its_own_error() {
    new_test_ext().execute_with(|| {
        let key = node_key().verifying_key().to_bytes();
        let o = || RuntimeOrigin::signed(PAYER);
        let one = || payees(&[PAYEE]);
        assert_noop!(
            TickStream::open(o(), key, one(), 0, 0, DEPOSIT, 0, EXPIRES),
            Error::<Test>::MaxPayeesOutOfRange
        );
        assert_noop!(
            TickStream::open(o(), key, one(), 5, 0, DEPOSIT, 0, EXPIRES),
            Error::<Test>::MaxPayeesOutOfRange
        );
        assert_noop!(
            TickStream::open(o(), key, payees(&[PAYEE, RELAY]), 1, 0, DEPOSIT, 0, EXPIRES),
            Error::<Test>::TooManyPayees
        );
        assert_noop!(
            TickStream::open(o(), key, payees(&[PAYER]), 1, 0, DEPOSIT, 0, EXPIRES),
            Error::<Test>::SelfPayee
        );
        assert_noop!(
            TickStream::open(
                o(),
                key,
                payees(&[PAYEE, PAYEE]),
                2,
                0,
                DEPOSIT,
                DEPOSIT,
                EXPIRES
            ),
            Error::<Test>::DuplicatePayee
        );
        assert_noop!(
            TickStream::open(o(), key, one(), 1, 0, 0, 0, EXPIRES),
            Error::<Test>::ZeroAmount
        );
        assert_noop!(
            TickStream::open(o(), key, one(), 1, 0, DEPOSIT, 0, 1),
            Error::<Test>::ExpiryInPast
        );
        // Two named payees could each be owed the deposit: C ≥ D.
        assert_noop!(
            TickStream::open(
                o(),
                key,
                payees(&[PAYEE, RELAY]),
                2,
                0,
                DEPOSIT,
                DEPOSIT - 1,
                EXPIRES
            ),
            Error::<Test>::CollateralTooLow
        );
        // One named and two late payees capped at 300: C ≥ 600.
        assert_noop!(
            TickStream::open(o(), key, one(), 3, 300, DEPOSIT, 599, EXPIRES),
            Error::<Test>::CollateralTooLow
        );
        assert_noop!(
            TickStream::open(o(), key, one(), 1, 0, INITIAL * 2, 0, EXPIRES),
            Error::<Test>::InsufficientFunds
        );
        assert_noop!(
            TickStream::open(o(), key, one(), 3, 300, DEPOSIT, INITIAL, EXPIRES),
            Error::<Test>::InsufficientFunds
        );
    });
}

#[test]
fn top_up_adds_deposit_and_collateral_keeping_the_cover() {
    new_test_ext().execute_with(|| {
        let id = open();
        assert_ok!(TickStream::top_up(RuntimeOrigin::signed(PAYER), id, 500, 0));
        assert_eq!(held(&PAYER), DEPOSIT + 500);
        assert_eq!(Channels::<Test>::get(id).unwrap().deposit, DEPOSIT + 500);
        System::assert_last_event(
            Event::ToppedUp {
                channel: id,
                deposit: DEPOSIT + 500,
                collateral: 0,
            }
            .into(),
        );
        assert_noop!(
            TickStream::top_up(RuntimeOrigin::signed(PAYEE), id, 5, 0),
            Error::<Test>::NotPayer
        );
        assert_noop!(
            TickStream::top_up(RuntimeOrigin::signed(PAYER), 99, 5, 0),
            Error::<Test>::ChannelNotFound
        );
        assert_noop!(
            TickStream::top_up(RuntimeOrigin::signed(PAYER), id, 0, 0),
            Error::<Test>::ZeroAmount
        );
        assert_noop!(
            TickStream::top_up(RuntimeOrigin::signed(PAYER), id, INITIAL, 0),
            Error::<Test>::InsufficientFunds
        );
        // Two named payees: a larger deposit needs as much more collateral.
        let two = open_with(&[PAYEE, RELAY], 2, 0, DEPOSIT, DEPOSIT);
        assert_noop!(
            TickStream::top_up(RuntimeOrigin::signed(PAYER), two, 100, 99),
            Error::<Test>::CollateralTooLow
        );
        assert_ok!(TickStream::top_up(
            RuntimeOrigin::signed(PAYER),
            two,
            100,
            100
        ));
        assert_eq!(held_collateral(&PAYER), DEPOSIT + 100);
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
        let price = 10;
        assert_ok!(claim(id, 60 * price));
        assert_eq!(Balances::balance(&PAYEE), INITIAL + 60 * price);
        assert_ok!(claim(id, 120 * price));
        System::assert_last_event(
            Event::Claimed {
                channel: id,
                payee: PAYEE,
                amount: 60 * price,
                cumulative: 120 * price,
            }
            .into(),
        );
        assert_eq!(Balances::balance(&PAYEE), INITIAL + 120 * price);
        assert_eq!(held(&PAYER), DEPOSIT - 120 * price);
        assert_eq!(Balances::total_balance(&PAYER), INITIAL - 120 * price);
        assert_eq!(Channels::<Test>::get(id).unwrap().paid, 120 * price);
        // An older voucher, and the same one again, are refused distinctly.
        assert_noop!(claim(id, 11 * price), Error::<Test>::VoucherOutdated);
        assert_noop!(claim(id, 120 * price), Error::<Test>::VoucherReplayed);
    });
}

#[test]
fn claim_refuses_bad_vouchers_with_distinct_errors() {
    new_test_ext().execute_with(|| {
        let id = open_with(&[PAYEE], 2, 300, DEPOSIT, 300);
        let chain = TickStream::genesis_hash();
        let payee = || RuntimeOrigin::signed(PAYEE);
        // Over the deposit (validly signed), for the named payee.
        assert_noop!(claim(id, DEPOSIT + 1), Error::<Test>::ExceedsDeposit);
        // Over the cap, for a late payee.
        assert_noop!(claim_as(&RELAY, id, 301), Error::<Test>::ExceedsPayeeCap);
        // Signed by another key.
        let rogue = SigningKey::from_bytes(&[8; 32]);
        assert_noop!(
            TickStream::claim(
                payee(),
                id,
                100,
                chain,
                sign(&rogue, chain, id, &PAYEE, 100)
            ),
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
                sign(&node_key(), other_chain, id, &PAYEE, 100)
            ),
            Error::<Test>::WrongChain
        );
        // Signed for another channel, another amount, or another payee.
        assert_noop!(
            TickStream::claim(
                payee(),
                id,
                100,
                chain,
                sign(&node_key(), chain, id + 1, &PAYEE, 100)
            ),
            Error::<Test>::BadSignature
        );
        assert_noop!(
            TickStream::claim(
                payee(),
                id,
                110,
                chain,
                sign(&node_key(), chain, id, &PAYEE, 100)
            ),
            Error::<Test>::BadSignature
        );
        let for_payee = sign(&node_key(), chain, id, &PAYEE, 100);
        assert_noop!(
            TickStream::claim(RuntimeOrigin::signed(OTHER), id, 100, chain, for_payee),
            Error::<Test>::BadSignature
        );
        // The payer cannot claim from its own channel.
        assert_noop!(claim_as(&PAYER, id, 100), Error::<Test>::SelfPayee);
        // The channel must exist.
        assert_noop!(claim(42, 100), Error::<Test>::ChannelNotFound);
        assert_eq!(held(&PAYER), DEPOSIT, "nothing moved");
        // Slots: one named plus one late. The first late payee binds; the
        // next finds no slot.
        assert_ok!(claim_as(&RELAY, id, 50));
        assert_eq!(Channels::<Test>::get(id).unwrap().bound_payees, 2);
        assert_noop!(claim_as(&RELAY2, id, 50), Error::<Test>::TooManyPayees);
        assert_ok!(claim_as(&RELAY, id, 80));
        assert_eq!(Balances::balance(&RELAY), INITIAL + 80);
    });
}

#[test]
fn over_issuing_to_two_payees_pays_both_from_the_collateral_and_burns_the_rest() {
    new_test_ext().execute_with(|| {
        // Creator named; one relay slot capped at 500: C ≥ 500. The payer
        // stakes 800.
        let id = open_with(&[PAYEE], 2, 500, DEPOSIT, 800);
        let issuance = Balances::total_issuance();
        // The payer signs DEPOSIT to the creator and 500 to a relay: 2,500
        // in total against a deposit of 2,000.
        assert_ok!(claim(id, DEPOSIT));
        assert_ok!(claim_as(&RELAY, id, 500));
        System::assert_has_event(
            Event::Overdrawn {
                channel: id,
                from_collateral: 500,
            }
            .into(),
        );
        assert_eq!(
            Balances::balance(&PAYEE),
            INITIAL + DEPOSIT,
            "every voucher paid in full"
        );
        assert_eq!(Balances::balance(&RELAY), INITIAL + 500);
        // Overdrawn: no more deposit.
        assert_noop!(
            TickStream::top_up(RuntimeOrigin::signed(PAYER), id, 100, 100),
            Error::<Test>::Overdrawn
        );
        System::set_block_number(EXPIRES);
        assert_ok!(TickStream::close(RuntimeOrigin::signed(PAYER), id));
        System::assert_last_event(
            Event::ChannelClosed {
                channel: id,
                refunded: 0,
                paid: DEPOSIT + 500,
                slashed: 300,
            }
            .into(),
        );
        // The payer lost deposit and collateral: 2,800 for 2,500 of service.
        assert_eq!(Balances::total_balance(&PAYER), INITIAL - DEPOSIT - 800);
        assert_eq!(
            Balances::total_issuance(),
            issuance - 300,
            "the rest is burned"
        );
        assert!(Payees::<Test>::iter_prefix(id).next().is_none());
    });
}

#[test]
fn an_honest_multi_payee_channel_returns_all_collateral() {
    new_test_ext().execute_with(|| {
        let id = open_with(&[PAYEE], 3, 200, DEPOSIT, 400);
        assert_ok!(claim(id, 1_000));
        assert_ok!(claim_as(&RELAY, id, 150));
        assert_ok!(claim_as(&RELAY2, id, 200));
        System::set_block_number(EXPIRES);
        assert_ok!(TickStream::close(RuntimeOrigin::signed(PAYER), id));
        System::assert_last_event(
            Event::ChannelClosed {
                channel: id,
                refunded: DEPOSIT - 1_350 + 400,
                paid: 1_350,
                slashed: 0,
            }
            .into(),
        );
        assert_eq!(Balances::total_balance(&PAYER), INITIAL - 1_350);
        assert_eq!(held(&PAYER) + held_collateral(&PAYER), 0);
    });
}

#[test]
fn the_only_payee_may_close_at_any_time_refunding_the_rest() {
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
                paid: 300,
                slashed: 0,
            }
            .into(),
        );
        assert_eq!(held(&PAYER), 0);
        assert_eq!(Balances::balance(&PAYER), INITIAL - 300);
        assert!(Channels::<Test>::get(id).is_none());
        assert_noop!(
            TickStream::close(RuntimeOrigin::signed(PAYEE), id),
            Error::<Test>::ChannelNotFound
        );
        assert_noop!(claim(id, 400), Error::<Test>::ChannelNotFound);
        // With several payees, one payee cannot cut the others off.
        let multi = open_with(&[PAYEE], 2, 100, DEPOSIT, 100);
        assert_noop!(
            TickStream::close(RuntimeOrigin::signed(PAYEE), multi),
            Error::<Test>::PayeeCannotClose
        );
    });
}

#[test]
fn open_and_close_refund_the_weight_of_payee_slots_not_used() {
    use crate::{close_weight, open_weight, WeightInfo};
    use polkadot_sdk::frame_support::dispatch::{GetDispatchInfo, PostDispatchInfo};
    use polkadot_sdk::frame_support::weights::constants::RocksDbWeight;
    new_test_ext().execute_with(|| {
        let max = 4; // the mock's MaxPayees
        let declared_open = <() as WeightInfo>::open();
        let declared_close = <() as WeightInfo>::close();
        // The call's declared weight is the benchmark's, for every slot.
        let call = crate::Call::<Test>::close { channel: 0 };
        assert_eq!(call.get_dispatch_info().call_weight, declared_close);
        // Every slot used: nothing refunded; fewer: one write (open) or
        // one read and one write (close) less per slot not used.
        assert_eq!(open_weight::<Test>(max), declared_open);
        assert_eq!(close_weight::<Test>(max), declared_close);
        assert_eq!(
            declared_open - open_weight::<Test>(1),
            RocksDbWeight::get().writes(3)
        );
        assert_eq!(
            declared_close - close_weight::<Test>(1),
            RocksDbWeight::get().reads_writes(3, 3)
        );
        // What the calls report after dispatch.
        let id = crate::NextChannelId::<Test>::get();
        let opened = TickStream::open(
            RuntimeOrigin::signed(PAYER),
            node_key().verifying_key().to_bytes(),
            payees(&[PAYEE]),
            1,
            0,
            DEPOSIT,
            0,
            EXPIRES,
        )
        .unwrap();
        assert_eq!(opened.actual_weight, Some(open_weight::<Test>(1)));
        assert_ok!(claim(id, 10));
        let closed: PostDispatchInfo = TickStream::close(RuntimeOrigin::signed(PAYEE), id).unwrap();
        assert_eq!(closed.actual_weight, Some(close_weight::<Test>(1)));
        assert!(close_weight::<Test>(1).ref_time() < declared_close.ref_time());
        // A channel whose late payees all bound is charged them all.
        let many = open_with(&[PAYEE], max, 100, DEPOSIT, 300);
        for who in [OTHER, RELAY, RELAY2] {
            assert_ok!(claim_as(&who, many, 50));
        }
        System::set_block_number(EXPIRES);
        let closed = TickStream::close(RuntimeOrigin::signed(PAYER), many).unwrap();
        assert_eq!(closed.actual_weight, Some(declared_close));
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
        assert_eq!(held(&PAYER), 0);
    });
}

#[test]
fn several_channels_of_one_payer_share_the_hold_correctly() {
    new_test_ext().execute_with(|| {
        let a = open();
        let b = open();
        assert_eq!(held(&PAYER), 2 * DEPOSIT);
        assert_ok!(claim(a, DEPOSIT));
        assert_ok!(TickStream::close(RuntimeOrigin::signed(PAYEE), b));
        assert_eq!(held(&PAYER), 0);
        assert_eq!(Balances::balance(&PAYER), INITIAL - DEPOSIT);
    });
}

#[test]
fn version_0_channels_migrate_and_their_old_vouchers_still_claim() {
    use crate::migrations::v1::{MigrateV0ToV1, OldChannel, PayeeTicks};
    use polkadot_sdk::frame_support::traits::{
        GetStorageVersion, OnRuntimeUpgrade, StorageVersion,
    };
    new_test_ext().execute_with(|| {
        StorageVersion::new(0).put::<TickStream>();
        // A version-0 channel with 300 claimed, its hold, and a tick counter.
        assert_ok!(
            <Balances as polkadot_sdk::frame_support::traits::fungible::MutateHold<_>>::hold(
                &HoldReason::ChannelDeposit.into(),
                &PAYER,
                DEPOSIT - 300,
            )
        );
        let old = OldChannel {
            payer: PAYER,
            payee: PAYEE,
            voucher_key: node_key().verifying_key().to_bytes(),
            price_per_second: 10u128,
            deposit: DEPOSIT,
            claimed: 300u128,
            expires_at: EXPIRES,
            ticks: 30,
        };
        polkadot_sdk::frame_support::storage::unhashed::put(
            &Channels::<Test>::hashed_key_for(7),
            &old,
        );
        PayeeTicks::<Test>::insert(PAYEE, 30);
        crate::NextChannelId::<Test>::put(8);

        MigrateV0ToV1::<Test>::on_runtime_upgrade();

        assert_eq!(
            TickStream::on_chain_storage_version(),
            StorageVersion::new(1)
        );
        let c = Channels::<Test>::get(7).expect("migrated");
        assert_eq!(
            (
                c.payer.clone(),
                c.deposit,
                c.paid,
                c.max_payees,
                c.collateral,
                c.legacy
            ),
            (PAYER, DEPOSIT, 300, 1, 0, true)
        );
        assert_eq!(
            Payees::<Test>::get(7, PAYEE).map(|p| (p.claimed, p.named)),
            Some((300, true))
        );
        assert!(!PayeeTicks::<Test>::contains_key(PAYEE));
        // The payer's node signed payee-less v1 vouchers: they still claim.
        let chain = TickStream::genesis_hash();
        let v1 = node_key()
            .sign(&legacy_voucher_message::<Test>(&chain, 7, &500))
            .to_bytes();
        assert_ok!(TickStream::claim(
            RuntimeOrigin::signed(PAYEE),
            7,
            500,
            chain,
            v1
        ));
        assert_eq!(Balances::balance(&PAYEE), INITIAL + 200);
        // A v2 voucher is not what this channel's payer signs.
        assert_noop!(claim(7, 600), Error::<Test>::BadSignature);
        // Running the migration again changes nothing.
        MigrateV0ToV1::<Test>::on_runtime_upgrade();
        assert_eq!(Channels::<Test>::get(7).map(|c| c.paid), Some(500));
    });
}

/// One payee in the property test: who, named or late, and the vouchers
/// the payer signs it (cumulative amounts, any order, may over-issue).
#[derive(Debug, Clone)]
struct Plan {
    named: bool,
    vouchers: Vec<Balance>,
}

fn plans() -> impl Strategy<Value = Vec<Plan>> {
    proptest::collection::vec(
        (any::<bool>(), proptest::collection::vec(1u128..3_000, 1..6))
            .prop_map(|(named, vouchers)| Plan { named, vouchers }),
        1..=4,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Whatever the payer signs to up to four payees (over-issuing
    /// included) and in whatever order the payees claim:
    /// - no payee receives more than the best voucher it holds;
    /// - the payer never loses more than deposit plus collateral;
    /// - the payer never profits: it loses at least the value of every
    ///   voucher a payee accepted (a payee serves only against vouchers
    ///   within its limit), exactly that when it stayed within the deposit;
    /// - total issuance falls by exactly what was burned.
    #[test]
    fn payees_get_at_most_their_vouchers_and_over_issuing_never_profits(
        deposit in 100u128..3_000,
        cap in 0u128..1_500,
        extra_collateral in 0u128..500,
        plan in plans(),
        order in proptest::collection::vec(any::<prop::sample::Index>(), 0..24),
    ) {
        new_test_ext().execute_with(|| {
            let accounts = [PAYEE, OTHER, RELAY, RELAY2];
            let who: Vec<AccountId> = accounts[..plan.len()].to_vec();
            let named: Vec<AccountId> = who.iter().zip(&plan).filter(|(_, p)| p.named).map(|(a, _)| a.clone()).collect();
            let max_payees = plan.len() as u32;
            let needed = crate::required_collateral::<Test>(deposit, named.len() as u32, max_payees, cap).unwrap();
            let collateral = needed + extra_collateral;
            let id = open_with(&named, max_payees, cap, deposit, collateral);
            let issuance = Balances::total_issuance();
            let limit = |p: &Plan| if p.named { deposit } else { cap.min(deposit) };
            // Every (payee, voucher) pair, claimed in a random order, then
            // each payee's best one last.
            let pairs: Vec<(usize, Balance)> = plan.iter().enumerate()
                .flat_map(|(i, p)| p.vouchers.iter().map(move |v| (i, *v))).collect();
            let mut sequence: Vec<(usize, Balance)> = order.iter().map(|ix| pairs[ix.index(pairs.len())]).collect();
            for (i, p) in plan.iter().enumerate() {
                if let Some(best) = p.vouchers.iter().copied().filter(|v| *v <= limit(p)).max() {
                    sequence.push((i, best));
                }
            }
            for (i, v) in sequence {
                let _ = claim_as(&who[i], id, v);
            }
            let mut service = 0;
            for (i, p) in plan.iter().enumerate() {
                let received = Balances::balance(&who[i]) - INITIAL;
                let best_valid = p.vouchers.iter().copied().filter(|v| *v <= limit(p)).max().unwrap_or(0);
                prop_assert!(received <= p.vouchers.iter().copied().max().unwrap_or(0));
                prop_assert_eq!(received, best_valid, "every valid voucher is paid in full");
                service += best_valid;
            }
            System::set_block_number(EXPIRES);
            assert_ok!(TickStream::close(RuntimeOrigin::signed(PAYER), id));
            let lost = INITIAL - Balances::total_balance(&PAYER);
            prop_assert!(lost <= deposit + collateral);
            prop_assert!(lost >= service, "lost {} for {} of service", lost, service);
            if service <= deposit {
                prop_assert_eq!(lost, service);
                prop_assert_eq!(Balances::total_issuance(), issuance);
            } else {
                prop_assert_eq!(lost, deposit + collateral, "over-issuing forfeits the stake");
                prop_assert_eq!(Balances::total_issuance(), issuance - (deposit + collateral - service));
            }
            prop_assert_eq!(held(&PAYER) + held_collateral(&PAYER), 0);
            Ok(())
        })?;
    }
}

/// The node's `vilokanam-chain` crate signs exactly these bytes (it has
/// the same test vector): tag, genesis hash, channel (u64 LE), payee (32
/// bytes), amount (u128 LE, SCALE).
#[test]
fn voucher_message_matches_the_node_encoding() {
    let payee = AccountId::new([2; 32]);
    let msg = voucher_message::<Test>(&H256::repeat_byte(1), 7, &payee, &1000);
    let expected = "7469636b2d73747265616d2f7632000001010101010101010101010101010101010101010101010101010101010101010700000000000000\
0202020202020202020202020202020202020202020202020202020202020202e8030000000000000000000000000000";
    let hex: String = msg.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, expected);
}

/// The pre-signed voucher the `claim` benchmark uses verifies for the
/// benchmark's pinned chain, channel, payee and amount.
#[cfg(feature = "runtime-benchmarks")]
#[test]
fn bench_voucher_is_valid() {
    use crate::benchmarking::*;
    let key = SigningKey::from_bytes(&[7; 32]);
    assert_eq!(key.verifying_key().to_bytes(), BENCH_VOUCHER_KEY);
    assert_eq!(
        sign(
            &key,
            H256(BENCH_GENESIS),
            BENCH_CHANNEL,
            &AccountId::new(BENCH_PAYEE),
            BENCH_CUMULATIVE
        ),
        BENCH_SIGNATURE
    );
}
