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
    ConnectOptions, Endpoint, Payer, Settlement, SettlementError, TickEvent, Voucher,
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
    let _: serde_json::Value = client
        .rpc()
        .request(
            "dev_newBlock",
            subxt::rpcs::rpc_params![serde_json::json!({ "count": count })],
        )
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
        "chain/metadata/vilokanam.scale is stale: run scripts/chain-spec.sh --update-metadata"
    );

    let alice = keypair("//Alice").unwrap();
    let bob = keypair("//Bob").unwrap();
    let (alice_id, bob_id) = (account_id(&alice), account_id(&bob));
    let genesis = client.genesis();
    let status = client.status().await.unwrap();
    assert_eq!(status.genesis, genesis);
    assert_eq!(status.open_channels, 0);

    // Open: the deposit is held in Alice's account, not transferred.
    let node_key = new_key();
    let deposit = 150 * PRICE;
    let expires_at = (client.finalized_number().await.unwrap() + 10) as u32;
    let alice_before = client.balance(&alice_id).await.unwrap();
    let opened = client
        .open_channel(
            &alice,
            &bob_id,
            node_key.verifying_key().to_bytes(),
            PRICE,
            deposit,
            expires_at,
        )
        .await
        .unwrap();
    let ch = opened.outcome.clone();
    assert_eq!((&ch.payer, &ch.payee), (&alice_id, &bob_id));
    assert_eq!((ch.deposit, ch.claimed, ch.ticks), (deposit, 0, 0));
    let alice_open = client.balance(&alice_id).await.unwrap();
    assert_eq!(alice_open.reserved, alice_before.reserved + deposit);
    assert_eq!(alice_open.free, alice_before.free - deposit - opened.fee);
    assert!(opened.fee > 0);
    assert_eq!(client.channels().await.unwrap(), vec![ch.clone()]);

    // 120 per-second vouchers signed off chain by the payer's node key.
    let mut payer = Payer::new(node_key.clone(), genesis, ch.id, PRICE, deposit);
    let vouchers: Vec<Voucher> = (0..SECONDS).map(|_| payer.pay_second().unwrap()).collect();
    let latest = vouchers.last().unwrap().clone();
    assert_eq!(latest.cumulative, PAID);

    // Watch finalized events while claiming the latest voucher.
    let mut events = Box::pin(client.watch_events().await.unwrap());
    let bob_before = client.balance(&bob_id).await.unwrap();
    let claimed = client.claim(&bob, &latest).await.unwrap();
    assert_eq!(claimed.outcome.amount, PAID);
    assert_eq!(claimed.outcome.ticks, SECONDS);
    let bob_after = client.balance(&bob_id).await.unwrap();
    assert_eq!(bob_after.free, bob_before.free + PAID - claimed.fee);
    let alice_claimed = client.balance(&alice_id).await.unwrap();
    assert_eq!(alice_claimed.reserved, alice_open.reserved - PAID);
    let on_chain = client.channel(ch.id).await.unwrap().unwrap();
    assert_eq!((on_chain.claimed, on_chain.ticks), (PAID, SECONDS));
    assert_eq!(client.payee_ticks(&bob_id).await.unwrap(), SECONDS);
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
    let over = Voucher::sign(&node_key, genesis, ch.id, deposit + PRICE);
    let err = client.claim(&bob, &over).await.unwrap_err();
    assert!(matches!(err, SettlementError::ExceedsDeposit(_)), "{err}");
    let forged = Voucher::sign(&new_key(), genesis, ch.id, 130 * PRICE);
    let err = client.claim(&bob, &forged).await.unwrap_err();
    assert!(matches!(err, SettlementError::BadSignature(_)), "{err}");
    let mut tampered = Voucher::sign(&node_key, genesis, ch.id, 130 * PRICE);
    tampered.cumulative = 140 * PRICE;
    let err = client.claim(&bob, &tampered).await.unwrap_err();
    assert!(matches!(err, SettlementError::BadSignature(_)), "{err}");
    let other_chain = Voucher::sign(&node_key, [7; 32], ch.id, 130 * PRICE);
    let err = client.claim(&bob, &other_chain).await.unwrap_err();
    assert!(matches!(err, SettlementError::WrongChain(_)), "{err}");
    let err = client.close(&alice, ch.id).await.unwrap_err();
    assert!(
        matches!(&err, SettlementError::Rejected { pallet, error }
            if pallet == "TickStream" && error == "ChannelNotExpired"),
        "{err}"
    );
    let still = client.channel(ch.id).await.unwrap().unwrap();
    assert_eq!(
        (still.deposit, still.claimed, still.ticks),
        (deposit, PAID, SECONDS)
    );

    // Funds: an empty account cannot pay the fee; Alice cannot hold more
    // than she has.
    let pauper = keypair(&generate_phrase()).unwrap();
    let err = client
        .open_channel(&pauper, &bob_id, [1; 32], PRICE, deposit, expires_at + 100)
        .await
        .unwrap_err();
    assert!(
        matches!(err, SettlementError::InsufficientFunds(_)),
        "{err}"
    );
    let too_much = client.balance(&alice_id).await.unwrap().free * 2;
    let err = client
        .open_channel(&alice, &bob_id, [1; 32], PRICE, too_much, expires_at + 100)
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
    assert_eq!(closed.outcome.refunded, rest);
    assert_eq!(closed.outcome.claimed, PAID);
    let after_close = client.balance(&alice_id).await.unwrap();
    assert_eq!(after_close.reserved, before_close.reserved - rest);
    assert_eq!(after_close.reserved, alice_before.reserved);
    assert_eq!(after_close.free, before_close.free + rest - closed.fee);
    assert!(client.channel(ch.id).await.unwrap().is_none());
    let err = client.close(&alice, ch.id).await.unwrap_err();
    assert!(
        matches!(err, SettlementError::ChannelClosed(id) if id == ch.id),
        "{err}"
    );
    // Ticks survive the channel (engagement statistics).
    assert_eq!(client.payee_ticks(&bob_id).await.unwrap(), SECONDS);

    chain.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn top_up_extend_and_payee_close() {
    let Some((chain, client)) = dev_chain().await else {
        return;
    };
    let charlie = keypair("//Charlie").unwrap();
    let dave = keypair("//Dave").unwrap();
    let node_key = new_key();
    let expires_at = (client.finalized_number().await.unwrap() + 50) as u32;
    let ch = client
        .open_channel(
            &charlie,
            &account_id(&dave),
            node_key.verifying_key().to_bytes(),
            PRICE,
            10 * PRICE,
            expires_at,
        )
        .await
        .unwrap()
        .outcome;
    // Beyond the deposit until topped up.
    let v = Voucher::sign(&node_key, client.genesis(), ch.id, 15 * PRICE);
    let err = client.claim(&dave, &v).await.unwrap_err();
    assert!(matches!(err, SettlementError::ExceedsDeposit(_)), "{err}");
    let topped = client.top_up(&charlie, ch.id, 10 * PRICE).await.unwrap();
    assert_eq!(topped.outcome, 20 * PRICE);
    client
        .extend(&charlie, ch.id, expires_at + 100)
        .await
        .unwrap();
    let now = client.channel(ch.id).await.unwrap().unwrap();
    assert_eq!(now.expires_at, expires_at + 100);
    assert_eq!(client.claim(&dave, &v).await.unwrap().outcome.ticks, 15);
    // Only the payer tops up; the payee may close at any time.
    let err = client.top_up(&dave, ch.id, PRICE).await.unwrap_err();
    assert!(
        matches!(&err, SettlementError::Rejected { error, .. } if error == "NotPayer"),
        "{err}"
    );
    let closed = client.close(&dave, ch.id).await.unwrap().outcome;
    assert_eq!((closed.claimed, closed.refunded), (15 * PRICE, 5 * PRICE));
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
