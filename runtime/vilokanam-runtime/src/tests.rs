//! Runtime-level tests: the dev preset builds, and a tick-stream channel
//! works through the real runtime configuration (holds in pallet-balances).

use crate::*;
use polkadot_sdk::sp_io::TestExternalities;

fn dev_ext() -> TestExternalities {
    let storage = genesis::build_storage(&DEV_RUNTIME_PRESET.into()).expect("genesis builds");
    let mut ext = TestExternalities::new(storage);
    ext.execute_with(|| System::set_block_number(1));
    ext
}

#[test]
fn dev_preset_funds_accounts_and_sets_authority() {
    dev_ext().execute_with(|| {
        let alice = Sr25519Keyring::Alice.to_account_id();
        assert_eq!(Balances::free_balance(&alice), genesis::DEV_ENDOWMENT);
        assert_eq!(pallet_aura::Authorities::<Runtime>::get().len(), 1);
        // GRANDPA: Alice's ed25519 key votes, so blocks can be finalized.
        let voters = Grandpa::grandpa_authorities();
        assert_eq!(voters.len(), 1);
        assert_eq!(
            voters[0].0,
            polkadot_sdk::polkadot_sdk_frame::deps::sp_keyring::Ed25519Keyring::Alice
                .public()
                .into()
        );
        assert_eq!(pallet_sudo::Key::<Runtime>::get(), Some(alice));
    });
    assert!(genesis::get_preset(&"nope".into()).is_none());
    assert_eq!(genesis::preset_names().len(), 2);
}

#[test]
fn tick_stream_channel_runs_in_the_runtime() {
    dev_ext().execute_with(|| {
        let alice = Sr25519Keyring::Alice.to_account_id();
        let bob = Sr25519Keyring::Bob.to_account_id();
        let deposit = 100 * UNIT;
        assert!(TickStream::open(
            RuntimeOrigin::signed(alice.clone()),
            [1; 32],
            vec![bob.clone()].try_into().expect("one payee"),
            1,
            0,
            deposit,
            0,
            100
        )
        .is_ok());
        assert_eq!(
            Balances::reserved_balance(&alice) + Balances::free_balance(&alice),
            genesis::DEV_ENDOWMENT,
            "deposit is held, not moved"
        );
        assert!(TickStream::close(RuntimeOrigin::signed(bob), 0).is_ok());
        assert_eq!(Balances::free_balance(&alice), genesis::DEV_ENDOWMENT);
    });
}

#[test]
fn metadata_lists_tick_stream_calls() {
    let meta = Runtime::metadata();
    let text = format!("{meta:?}");
    assert!(text.contains("TickStream"));
    assert!(text.contains("open") && text.contains("claim") && text.contains("Overdrawn"));
}

#[test]
fn session_keys_name_aura_and_grandpa() {
    use polkadot_sdk::polkadot_sdk_frame::deps::sp_keyring::Ed25519Keyring;
    let keys = SessionKeys {
        aura: Sr25519Keyring::Alice.public().into(),
        grandpa: Ed25519Keyring::Alice.public().into(),
    };
    let raw =
        SessionKeys::decode_into_raw_public_keys(&codec::Encode::encode(&keys)).expect("decodes");
    let types: Vec<_> = raw.iter().map(|(_, t)| *t).collect();
    assert_eq!(
        types,
        vec![*b"aura", *b"gran"]
            .into_iter()
            .map(apis::KeyTypeId)
            .collect::<Vec<_>>()
    );
    assert_eq!(raw[1].0, Ed25519Keyring::Alice.public().0.to_vec());
}
