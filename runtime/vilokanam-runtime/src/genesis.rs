//! Genesis presets: `development` (Alice authors and is sudo; the dev
//! accounts are funded) and `local_testnet` (the same, for a multi-node
//! local chain).

use alloc::{string::String, vec, vec::Vec};
use polkadot_sdk::polkadot_sdk_frame::deps::frame_support::build_struct_json_patch;
use polkadot_sdk::polkadot_sdk_frame::runtime::prelude::*;
use polkadot_sdk::sp_consensus_aura::sr25519::AuthorityId as AuraId;

use crate::{AccountId, AuraConfig, BalancesConfig, RuntimeGenesisConfig, SudoConfig, UNIT};

/// Balance of each funded dev account.
pub const DEV_ENDOWMENT: u128 = 1_000_000 * UNIT;

fn genesis(
    authorities: Vec<AuraId>,
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
