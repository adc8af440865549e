//! The light-client path. smoldot needs a full node that serves
//! light-client requests and a finality gadget; our CI dev chain
//! (chopsticks) offers neither, and no full node fits the CI budget (see
//! docs/CHAIN.md). So CI checks that smoldot accepts our real chain spec and
//! runtime, and the whole flow runs only when `VILOKANAM_LIGHT_CLIENT_SPEC`
//! names a spec whose boot nodes point at a running full node.

use vilokanam_chain::account::{account_id, keypair};
use vilokanam_chain::test_utils::parts_for_test;
use vilokanam_chain::{Endpoint, Settlement};

#[tokio::test]
async fn smoldot_accepts_our_chain_spec_and_runtime() {
    let Some(parts) = parts_for_test() else {
        return;
    };
    let text = std::fs::read_to_string(&parts.spec).unwrap();
    // Without boot nodes our check refuses the spec before smoldot would hang.
    let err = vilokanam_light_client::start(&text).err().expect("refused");
    assert!(
        matches!(err, vilokanam_light_client::LightClientError::NoBootNodes),
        "{err}"
    );

    // With a (closed) loopback boot node smoldot starts: it has decoded the
    // genesis storage and our runtime's wasm. It answers chain-spec queries
    // locally, without any peer.
    let mut spec: serde_json::Value = serde_json::from_str(&text).unwrap();
    spec["bootNodes"] = serde_json::json!([
        "/ip4/127.0.0.1/tcp/9/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"
    ]);
    let (_light, rpc, info) =
        vilokanam_light_client::start(&spec.to_string()).expect("smoldot starts");
    assert_eq!(info.id, "vilokanam_dev");
    let rpc = subxt::rpcs::RpcClient::new(rpc);
    let name: String = rpc
        .request("chainSpec_v1_chainName", subxt::rpcs::rpc_params![])
        .await
        .expect("chain name");
    assert_eq!(name, "Vilokanam Development");
    let genesis: String = rpc
        .request("chainSpec_v1_genesisHash", subxt::rpcs::rpc_params![])
        .await
        .expect("genesis hash");
    // smoldot computed the genesis block from our storage exactly as our
    // chain-spec tool did (trie root of the genesis state): the same hash a
    // full node would announce.
    let expected = std::fs::read_to_string(parts.spec.with_file_name("genesis-hash"))
        .expect("genesis-hash next to the spec (scripts/chain-spec.sh writes it)");
    assert_eq!(genesis, expected.trim());

    // The settlement client over that light client gives up with a clear
    // error instead of waiting forever for a peer.
    let err = Settlement::connect_within(
        &Endpoint::LightClient(spec.to_string()),
        std::time::Duration::from_secs(3),
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, vilokanam_chain::SettlementError::Unreachable { endpoint, reason }
            if endpoint == "light client" && reason.contains("boot node")),
        "{err}"
    );
}

/// The settlement flow through the light client. Needs a full node of our
/// chain (with GRANDPA finality) and its spec: see docs/CHAIN.md.
#[tokio::test]
#[ignore = "needs VILOKANAM_LIGHT_CLIENT_SPEC: a chain spec whose bootNodes run a full node (docs/CHAIN.md)"]
async fn settlement_through_the_light_client() {
    let path = std::env::var("VILOKANAM_LIGHT_CLIENT_SPEC").expect("VILOKANAM_LIGHT_CLIENT_SPEC");
    let spec = std::fs::read_to_string(path).unwrap();
    let client = Settlement::connect(&Endpoint::LightClient(spec))
        .await
        .unwrap();
    let alice = keypair("//Alice").unwrap();
    let bob = keypair("//Bob").unwrap();
    let key = ed25519_dalek::SigningKey::from_bytes(&rand::random());
    let expires_at = client.finalized_number().await.unwrap() as u32 + 5;
    let terms = vilokanam_chain::OpenTerms::single(account_id(&bob), 200_000, expires_at);
    let ch = client
        .open(&alice, key.verifying_key().to_bytes(), &terms)
        .await
        .unwrap()
        .outcome;
    let v =
        vilokanam_chain::Voucher::sign(&key, client.genesis(), ch.id, account_id(&bob).0, 120_000);
    assert_eq!(
        client.claim(&bob, &v).await.unwrap().outcome.amount,
        120_000
    );
    assert_eq!(
        client.close(&bob, ch.id).await.unwrap().outcome.refunded,
        80_000
    );
}
