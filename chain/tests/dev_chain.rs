//! Settlement against a real chain: our runtime's wasm executed by
//! chopsticks (see `testnet::chain`), reached through the same subxt client
//! the node uses. `scripts/test-all.sh` builds the wasm and the chain spec,
//! installs chopsticks and sets `VILOKANAM_REQUIRE_CHAIN=1`, so in CI a
//! missing part fails these tests instead of skipping them.

use ed25519_dalek::SigningKey;
use futures::StreamExt;
use subxt::ext::codec::Decode;
use vilokanam_chain::account::{account_id, generate_phrase, keypair};
use vilokanam_chain::test_utils::{parts_for_test, DevChain};
use vilokanam_chain::{
    AccountId, ChannelInfo, Closed, ConnectOptions, Endpoint, OpenTerms, PayeeInfo, Payer,
    Settlement, SettlementError, Terms, TickEvent, Voucher,
};

const PRICE: u128 = 1_000_000; // 1 µTICK per second
const SECONDS: u64 = 120;
const PAID: u128 = SECONDS as u128 * PRICE;

/// The dev chain, or `None` (skip) when its parts are missing and not required.
async fn dev_chain() -> Option<(DevChain, Settlement)> {
    let _ = tracing_subscriber::fmt()
        .with_env_filter("vilokanam_chain=debug,warn")
        .with_test_writer()
        .try_init();
    let parts = parts_for_test()?;
    let chain = DevChain::start(&parts).await.expect("dev chain starts");
    let client = Settlement::connect(&Endpoint::Rpc(chain.ws_url.clone()))
        .await
        .expect("client connects");
    Some((chain, client))
}

/// Builds `count` more blocks (chopsticks dev RPC).
async fn new_blocks(client: &Settlement, count: u32) {
    vilokanam_chain::test_utils::new_blocks(client, count)
        .await
        .expect("dev_newBlock");
}

fn new_key() -> SigningKey {
    SigningKey::from_bytes(&rand::random())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_per_second_flow_on_the_real_runtime() {
    let Some((chain, client)) = dev_chain().await else {
        return;
    };

    // The checked-in metadata (what chain/ generated its types from) is
    // byte-identical to the metadata of the wasm the chain executes.
    let raw: String = client
        .rpc()
        .request(
            "state_call",
            subxt::rpcs::rpc_params!["Metadata_metadata_at_version", "0x10000000"],
        )
        .await
        .expect("metadata call");
    let bytes = hex::decode(raw.trim_start_matches("0x")).expect("hex");
    let on_chain = Option::<Vec<u8>>::decode(&mut &bytes[..])
        .expect("scale")
        .expect("V16 metadata");
    assert!(
        on_chain == include_bytes!("../metadata/vilokanam.scale"),
        "chain/metadata/vilokanam.scale is stale: run scripts/chain-spec.sh --update"
    );

    let alice = keypair("//Alice").unwrap();
    let bob = keypair("//Bob").unwrap();
    let charlie = keypair("//Charlie").unwrap();
    let (alice_id, bob_id) = (account_id(&alice), account_id(&bob));
    let genesis = client.genesis();
    let status = client.status().await.unwrap();
    assert_eq!(status.genesis, genesis);
    assert_eq!(status.open_channels, 0);

    // Open a single-payee channel to Bob: the deposit is held in Alice's
    // account, not transferred.
    let node_key = new_key();
    let deposit = 150 * PRICE;
    // Each transaction builds a block: leave room for the test's own.
    let expires_at = (client.finalized_number().await.unwrap() + 40) as u32;
    let alice_before = client.balance(&alice_id).await.unwrap();
    let terms = OpenTerms::single(bob_id, deposit, expires_at);
    let opened = client
        .open(&alice, node_key.verifying_key().to_bytes(), &terms)
        .await
        .unwrap();
    let ch = opened.outcome.clone();
    assert_eq!(ch.payer, alice_id);
    assert_eq!(
        (
            ch.deposit,
            ch.collateral,
            ch.paid,
            ch.max_payees,
            ch.named_payees
        ),
        (deposit, 0, 0, 1, 1)
    );
    let alice_open = client.balance(&alice_id).await.unwrap();
    assert_eq!(alice_open.reserved, alice_before.reserved + deposit);
    assert_eq!(alice_open.free, alice_before.free - deposit - opened.fee);
    assert!(opened.fee > 0);
    assert_eq!(client.channels().await.unwrap(), vec![ch.clone()]);
    assert_eq!(
        client.payees(ch.id).await.unwrap(),
        vec![PayeeInfo {
            payee: bob_id,
            claimed: 0,
            named: true
        }]
    );

    // 120 per-second vouchers signed off chain by the payer's node key.
    let mut payer = Payer::new(
        node_key.clone(),
        terms_of(&ch, genesis, std::slice::from_ref(&bob_id)),
    );
    let vouchers: Vec<Voucher> = (0..SECONDS)
        .map(|_| payer.pay(bob_id.0, PRICE).unwrap())
        .collect();
    let latest = vouchers.last().unwrap().clone();
    assert_eq!(latest.cumulative, PAID);

    // Watch finalized events while claiming the latest voucher.
    let mut events = Box::pin(client.watch_events().await.unwrap());
    let bob_before = client.balance(&bob_id).await.unwrap();
    let claimed = client.claim(&bob, &latest).await.unwrap();
    assert_eq!(claimed.outcome.amount, PAID);
    assert_eq!(claimed.outcome.from_collateral, 0);
    let bob_after = client.balance(&bob_id).await.unwrap();
    assert_eq!(bob_after.free, bob_before.free + PAID - claimed.fee);
    let alice_claimed = client.balance(&alice_id).await.unwrap();
    assert_eq!(alice_claimed.reserved, alice_open.reserved - PAID);
    let on_chain = client.channel(ch.id).await.unwrap().unwrap();
    assert_eq!(on_chain.paid, PAID);
    assert_eq!(client.payees(ch.id).await.unwrap()[0].claimed, PAID);
    // The payee's check of a channel reads the same from one block.
    let snap = client.channel_snapshot(ch.id).await.unwrap().unwrap();
    assert_eq!(snap.info, on_chain);
    assert_eq!(snap.payees, client.payees(ch.id).await.unwrap());
    assert!(snap.block >= 1, "{snap:?}");
    assert!(snap.block <= client.finalized_number().await.unwrap());
    assert!(client
        .channel_snapshot(ch.id + 1000)
        .await
        .unwrap()
        .is_none());
    let seen = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        while let Some(batch) = events.next().await {
            for ev in batch.unwrap().1 {
                if let TickEvent::Claimed { channel, claimed } = ev {
                    return (channel, claimed);
                }
            }
        }
        panic!("event stream ended")
    })
    .await
    .expect("Claimed event within 30 s");
    assert_eq!(seen, (ch.id, claimed.outcome));

    // Rejections, each with its own error; none moves the channel's money.
    let err = client.claim(&bob, &latest).await.unwrap_err();
    assert!(
        matches!(err, SettlementError::VoucherReplayed(id) if id == ch.id),
        "{err}"
    );
    let err = client.claim(&bob, &vouchers[59]).await.unwrap_err();
    assert!(matches!(err, SettlementError::VoucherOutdated(_)), "{err}");
    let over = Voucher::sign(&node_key, genesis, ch.id, bob_id.0, deposit + PRICE);
    let err = client.claim(&bob, &over).await.unwrap_err();
    assert!(matches!(err, SettlementError::ExceedsDeposit(_)), "{err}");
    let forged = Voucher::sign(&new_key(), genesis, ch.id, bob_id.0, 130 * PRICE);
    let err = client.claim(&bob, &forged).await.unwrap_err();
    assert!(matches!(err, SettlementError::BadSignature(_)), "{err}");
    let mut tampered = Voucher::sign(&node_key, genesis, ch.id, bob_id.0, 130 * PRICE);
    tampered.cumulative = 140 * PRICE;
    let err = client.claim(&bob, &tampered).await.unwrap_err();
    assert!(matches!(err, SettlementError::BadSignature(_)), "{err}");
    let other_chain = Voucher::sign(&node_key, [7; 32], ch.id, bob_id.0, 130 * PRICE);
    let err = client.claim(&bob, &other_chain).await.unwrap_err();
    assert!(matches!(err, SettlementError::WrongChain(_)), "{err}");
    // Bob's voucher is Bob's: Charlie submitting it is a bad signature.
    let err = client.claim(&charlie, &vouchers[119]).await.unwrap_err();
    assert!(matches!(err, SettlementError::BadSignature(_)), "{err}");
    let err = client.close(&alice, ch.id).await.unwrap_err();
    assert!(
        matches!(&err, SettlementError::Rejected { pallet, error }
            if pallet == "TickStream" && error == "ChannelNotExpired"),
        "{err}"
    );
    let still = client.channel(ch.id).await.unwrap().unwrap();
    assert_eq!((still.deposit, still.paid), (deposit, PAID));

    // Funds: an empty account cannot pay the fee; Alice cannot hold more
    // than she has.
    let pauper = keypair(&generate_phrase()).unwrap();
    let later = OpenTerms::single(bob_id, deposit, expires_at + 100);
    let err = client.open(&pauper, [1; 32], &later).await.unwrap_err();
    assert!(
        matches!(err, SettlementError::InsufficientFunds(_)),
        "{err}"
    );
    let too_much = client.balance(&alice_id).await.unwrap().free * 2;
    let err = client
        .open(
            &alice,
            [1; 32],
            &OpenTerms::single(bob_id, too_much, expires_at + 100),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, SettlementError::InsufficientFunds(_)),
        "{err}"
    );

    // After expiry the payer closes and gets exactly the unclaimed rest.
    let now = client.finalized_number().await.unwrap() as u32;
    if now < expires_at {
        new_blocks(&client, expires_at - now).await;
    }
    let before_close = client.balance(&alice_id).await.unwrap();
    let closed = client.close(&alice, ch.id).await.unwrap();
    let rest = deposit - PAID;
    assert_eq!(
        closed.outcome,
        Closed {
            refunded: rest,
            paid: PAID,
            slashed: 0
        }
    );
    let after_close = client.balance(&alice_id).await.unwrap();
    assert_eq!(after_close.reserved, before_close.reserved - rest);
    assert_eq!(after_close.reserved, alice_before.reserved);
    assert_eq!(after_close.free, before_close.free + rest - closed.fee);
    assert!(client.channel(ch.id).await.unwrap().is_none());
    assert!(client.payees(ch.id).await.unwrap().is_empty());
    let err = client.close(&alice, ch.id).await.unwrap_err();
    assert!(
        matches!(err, SettlementError::ChannelClosed(id) if id == ch.id),
        "{err}"
    );

    chain.stop().await.unwrap();
}

/// The off-chain terms of an on-chain channel.
fn terms_of(ch: &ChannelInfo, genesis: [u8; 32], named: &[AccountId]) -> Terms {
    Terms {
        chain: genesis,
        channel: ch.id,
        deposit: ch.deposit,
        max_payees: ch.max_payees,
        named: named.iter().map(|a| a.0).collect(),
        payee_cap: ch.payee_cap,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_deposit_pays_a_creator_and_a_relay_each_claiming_on_its_own() {
    let Some((chain, client)) = dev_chain().await else {
        return;
    };
    let charlie = keypair("//Charlie").unwrap();
    let (dave, eve, ferdie) = (
        keypair("//Dave").unwrap(),
        keypair("//Eve").unwrap(),
        keypair("//Ferdie").unwrap(),
    );
    let (charlie_id, dave_id, eve_id) = (account_id(&charlie), account_id(&dave), account_id(&eve));
    let node_key = new_key();
    let expires_at = (client.finalized_number().await.unwrap() + 50) as u32;
    // The creator (Dave) named; one relay slot capped at 20 µTICK, covered
    // by as much collateral.
    let mut terms = OpenTerms {
        payees: vec![dave_id],
        max_payees: 2,
        payee_cap: 20 * PRICE,
        deposit: 100 * PRICE,
        collateral: 20 * PRICE - 1,
        expires_at,
    };
    assert_eq!(terms.required_collateral(), Some(20 * PRICE));
    let err = client
        .open(&charlie, node_key.verifying_key().to_bytes(), &terms)
        .await
        .unwrap_err();
    assert!(matches!(err, SettlementError::CollateralTooLow), "{err}");
    terms.collateral = 20 * PRICE;
    let charlie_before = client.balance(&charlie_id).await.unwrap();
    let opened = client
        .open(&charlie, node_key.verifying_key().to_bytes(), &terms)
        .await
        .unwrap();
    let ch = opened.outcome;
    assert_eq!(
        client.balance(&charlie_id).await.unwrap().reserved,
        charlie_before.reserved + 120 * PRICE
    );

    // The viewer's node owes the creator 60 s and the relay 15 µTICK.
    let mut payer = Payer::new(
        node_key.clone(),
        terms_of(&ch, client.genesis(), std::slice::from_ref(&dave_id)),
    );
    let mut to_creator = None;
    for _ in 0..60 {
        to_creator = Some(payer.pay(dave_id.0, PRICE).unwrap());
    }
    let to_relay = payer.pay(eve_id.0, 15 * PRICE).unwrap();
    // Each claims on its own; the relay binds the free slot.
    let relay_claim = client.claim(&eve, &to_relay).await.unwrap().outcome;
    assert_eq!(
        (relay_claim.payee, relay_claim.amount),
        (eve_id, 15 * PRICE)
    );
    let creator_claim = client
        .claim(&dave, &to_creator.unwrap())
        .await
        .unwrap()
        .outcome;
    assert_eq!(creator_claim.amount, 60 * PRICE);
    let on_chain = client.channel(ch.id).await.unwrap().unwrap();
    assert_eq!((on_chain.paid, on_chain.bound_payees), (75 * PRICE, 2));
    assert!(!on_chain.overdrawn());

    // No third payee; no relay beyond its cap.
    let third = Voucher::sign(
        &node_key,
        client.genesis(),
        ch.id,
        account_id(&ferdie).0,
        PRICE,
    );
    let err = client.claim(&ferdie, &third).await.unwrap_err();
    assert!(
        matches!(err, SettlementError::TooManyPayees(id) if id == ch.id),
        "{err}"
    );
    let greedy = Voucher::sign(&node_key, client.genesis(), ch.id, eve_id.0, 21 * PRICE);
    let err = client.claim(&eve, &greedy).await.unwrap_err();
    assert!(matches!(err, SettlementError::ExceedsPayeeCap(_)), "{err}");

    // Top-up (more deposit; the cover is unchanged since the cap is) and
    // extension; only the payer may.
    let topped = client.top_up(&charlie, ch.id, 10 * PRICE, 0).await.unwrap();
    assert_eq!(topped.outcome, (110 * PRICE, 20 * PRICE));
    let err = client.top_up(&dave, ch.id, PRICE, 0).await.unwrap_err();
    assert!(
        matches!(&err, SettlementError::Rejected { error, .. } if error == "NotPayer"),
        "{err}"
    );
    client
        .extend(&charlie, ch.id, expires_at + 100)
        .await
        .unwrap();
    assert_eq!(
        client.channel(ch.id).await.unwrap().unwrap().expires_at,
        expires_at + 100
    );
    // A payee of a multi-payee channel cannot close it on the others.
    let err = client.close(&dave, ch.id).await.unwrap_err();
    assert!(
        matches!(&err, SettlementError::Rejected { error, .. } if error == "PayeeCannotClose"),
        "{err}"
    );
    let payees = client.payees(ch.id).await.unwrap();
    assert_eq!(payees.len(), 2);
    assert!(payees
        .iter()
        .any(|p| p.payee == dave_id && p.named && p.claimed == 60 * PRICE));
    assert!(payees
        .iter()
        .any(|p| p.payee == eve_id && !p.named && p.claimed == 15 * PRICE));
    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_issuing_on_the_real_chain_pays_every_payee_and_forfeits_the_stake() {
    let Some((chain, client)) = dev_chain().await else {
        return;
    };
    let (charlie, dave, eve) = (
        keypair("//Charlie").unwrap(),
        keypair("//Dave").unwrap(),
        keypair("//Eve").unwrap(),
    );
    let (charlie_id, dave_id, eve_id) = (account_id(&charlie), account_id(&dave), account_id(&eve));
    let node_key = new_key();
    let expires_at = (client.finalized_number().await.unwrap() + 5) as u32;
    let terms = OpenTerms {
        payees: vec![dave_id],
        max_payees: 2,
        payee_cap: 5 * PRICE,
        deposit: 10 * PRICE,
        collateral: 8 * PRICE,
        expires_at,
    };
    let before = client.balance(&charlie_id).await.unwrap();
    let opened = client
        .open(&charlie, node_key.verifying_key().to_bytes(), &terms)
        .await
        .unwrap();
    let ch = opened.outcome;
    // A cheating payer signs the whole deposit to the creator and 5 µTICK
    // to a relay: 15 against a deposit of 10. (Its own node's Payer
    // refuses to; a cheater signs by hand.)
    let genesis = client.genesis();
    let all = Voucher::sign(&node_key, genesis, ch.id, dave_id.0, 10 * PRICE);
    let more = Voucher::sign(&node_key, genesis, ch.id, eve_id.0, 5 * PRICE);
    assert_eq!(
        client.claim(&dave, &all).await.unwrap().outcome.amount,
        10 * PRICE
    );
    let relay = client.claim(&eve, &more).await.unwrap().outcome;
    assert_eq!(
        (relay.amount, relay.from_collateral),
        (5 * PRICE, 5 * PRICE)
    );
    assert!(client.channel(ch.id).await.unwrap().unwrap().overdrawn());
    // Overdrawn: it takes no more deposit (the refused call still costs
    // its fee, measured from the balance).
    let before_top_up = client.balance(&charlie_id).await.unwrap().free;
    let err = client
        .top_up(&charlie, ch.id, PRICE, PRICE)
        .await
        .unwrap_err();
    let top_up_fee = before_top_up - client.balance(&charlie_id).await.unwrap().free;
    assert!(
        matches!(&err, SettlementError::Rejected { error, .. } if error == "Overdrawn"),
        "{err}"
    );
    let now = client.finalized_number().await.unwrap() as u32;
    if now < expires_at {
        new_blocks(&client, expires_at - now).await;
    }
    let closed = client.close(&charlie, ch.id).await.unwrap();
    assert_eq!(
        closed.outcome,
        Closed {
            refunded: 0,
            paid: 15 * PRICE,
            slashed: 3 * PRICE
        }
    );
    // Charlie lost deposit and collateral (18) for 15 of service, plus fees.
    let after = client.balance(&charlie_id).await.unwrap();
    let fees = opened.fee + top_up_fee + closed.fee;
    assert_eq!(after.reserved, before.reserved);
    assert_eq!(after.free, before.free - 18 * PRICE - fees);
    chain.stop().await.unwrap();
}

#[tokio::test]
async fn unreachable_node_is_a_clear_error() {
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // Two reconnect attempts instead of the default 18 s budget: the
    // error, not the waiting, is what this test checks.
    let options = ConnectOptions::default().with_reconnect_attempts(2);
    let started = std::time::Instant::now();
    let err = Settlement::connect_with(&Endpoint::Rpc(format!("ws://127.0.0.1:{port}")), &options)
        .await
        .unwrap_err();
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert!(
        matches!(&err, SettlementError::Unreachable { endpoint, .. }
            if endpoint.contains(&port.to_string())),
        "{err}"
    );
}
