//! Genesis presets: `development` (Alice authors blocks (Aura, sr25519),
//! is the GRANDPA voter (ed25519) and sudo; the dev accounts are funded) and `local_testnet` (the same, for a multi-node
//! local chain).

use alloc::{string::String, vec, vec::Vec};
use polkadot_sdk::polkadot_sdk_frame::deps::frame_support::build_struct_json_patch;
use polkadot_sdk::polkadot_sdk_frame::runtime::prelude::*;
use polkadot_sdk::sp_consensus_aura::sr25519::AuthorityId as AuraId;

use crate::{
    AccountId, AuraConfig, BalancesConfig, GrandpaConfig, RuntimeGenesisConfig, SudoConfig, UNIT,
};
use polkadot_sdk::polkadot_sdk_frame::deps::sp_keyring::Ed25519Keyring;
use polkadot_sdk::sp_consensus_grandpa::AuthorityId as GrandpaId;

/// Balance of each funded dev account.
pub const DEV_ENDOWMENT: u128 = 1_000_000 * UNIT;

fn genesis(
    authorities: Vec<AuraId>,
    finality: Vec<GrandpaId>,
    root: AccountId,
    endowed: Vec<AccountId>,
) -> serde_json::Value {
    build_struct_json_patch!(RuntimeGenesisConfig {
        balances: BalancesConfig {
            balances: endowed
                .into_iter()
                .map(|a| (a, DEV_ENDOWMENT))
                .collect::<Vec<_>>(),
        },
        aura: AuraConfig { authorities },
        grandpa: GrandpaConfig {
            authorities: finality.into_iter().map(|id| (id, 1)).collect::<Vec<_>>(),
        },
        sudo: SudoConfig { key: Some(root) },
    })
}

fn dev_accounts() -> Vec<AccountId> {
    Sr25519Keyring::iter().map(|k| k.to_account_id()).collect()
}

/// The JSON patch of a preset.
pub fn get_preset(id: &PresetId) -> Option<Vec<u8>> {
    let patch = match id.as_ref() {
        DEV_RUNTIME_PRESET | LOCAL_TESTNET_RUNTIME_PRESET => genesis(
            vec![Sr25519Keyring::Alice.public().into()],
            vec![Ed25519Keyring::Alice.public().into()],
            Sr25519Keyring::Alice.to_account_id(),
            dev_accounts(),
        ),
        _ => return None,
    };
    serde_json::to_string(&patch).ok().map(String::into_bytes)
}

/// Names of the presets.
pub fn preset_names() -> Vec<PresetId> {
    vec![
        PresetId::from(DEV_RUNTIME_PRESET),
        PresetId::from(LOCAL_TESTNET_RUNTIME_PRESET),
    ]
}

/// Genesis storage of a preset, built natively. This is what a chain-spec
/// builder gets from the wasm's `GenesisBuilder` API: the preset's patch
/// merged onto the default config, then each pallet's genesis build.
#[cfg(feature = "std")]
pub fn build_storage(
    id: &PresetId,
) -> Result<polkadot_sdk::polkadot_sdk_frame::deps::sp_core::storage::Storage, String> {
    use polkadot_sdk::polkadot_sdk_frame::deps::sp_runtime::BuildStorage;
    let patch = get_preset(id).ok_or_else(|| {
        alloc::format!(
            "unknown preset {:?}",
            core::str::from_utf8(id.as_ref()).unwrap_or("?")
        )
    })?;
    let patch: serde_json::Value =
        serde_json::from_slice(&patch).map_err(|e| alloc::format!("preset json: {e}"))?;
    let mut config = serde_json::to_value(RuntimeGenesisConfig::default())
        .map_err(|e| alloc::format!("default config json: {e}"))?;
    json_merge(&mut config, patch);
    let config: RuntimeGenesisConfig =
        serde_json::from_value(config).map_err(|e| alloc::format!("genesis config: {e}"))?;
    config.build_storage()
}

/// Merges a JSON patch into a value, as the node's chain-spec builder does.
#[cfg(feature = "std")]
fn json_merge(a: &mut serde_json::Value, b: serde_json::Value) {
    match (a, b) {
        (serde_json::Value::Object(a), serde_json::Value::Object(b)) => {
            for (k, v) in b {
                json_merge(a.entry(k).or_insert(serde_json::Value::Null), v);
            }
        }
        (a, b) => *a = b,
    }
}
