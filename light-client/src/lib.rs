//! Embedded smoldot light client for the settlement chain.
//!
//! A node that has a chain spec (with boot nodes) reaches the chain through
//! smoldot running in-process: it verifies headers and storage proofs itself
//! and needs no trusted RPC endpoint. This crate checks the chain spec
//! before smoldot sees it (so a bad spec gets a precise error, not a hang)
//! and hands back an RPC client that `vilokanam-chain` drives exactly like a
//! websocket one.
//!
//! What a light client needs from the chain (see `docs/CHAIN.md`): at least
//! one reachable full node serving light-client requests, and a finality
//! gadget (GRANDPA, which our runtime has) for anything to become final.
//! chopsticks, our CI dev chain, is no such node, so the light-client path
//! is tested up to "started and waiting for peers"; the full flow needs a
//! full node.
#![deny(missing_docs)]
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

use subxt::lightclient::{LightClient, LightClientRpc};

/// Why the light client could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LightClientError {
    /// The chain spec is not JSON.
    #[error("chain spec is not valid JSON: {0}")]
    NotJson(String),
    /// A required field is missing or has the wrong type.
    #[error("chain spec lacks {0}")]
    Missing(&'static str),
    /// No boot node: a light client would wait forever.
    #[error(
        "chain spec lists no bootNodes; a light client needs at least one reachable full node"
    )]
    NoBootNodes,
    /// The spec describes a parachain (relay_chain/para_id), which needs the relay chain's spec too.
    #[error(
        "chain spec is a parachain spec (relay_chain/para_id); start from the relay chain instead"
    )]
    Parachain,
    /// smoldot refused the spec or failed to start.
    #[error("smoldot: {0}")]
    Smoldot(String),
}

/// A summary of a checked chain spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SpecInfo {
    /// `id` of the chain.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    /// Boot node multiaddrs.
    pub boot_nodes: Vec<String>,
}

/// Checks that `chain_spec` is a raw solo-chain spec smoldot can sync from.
pub fn check_spec(chain_spec: &str) -> Result<SpecInfo, LightClientError> {
    let v: serde_json::Value =
        serde_json::from_str(chain_spec).map_err(|e| LightClientError::NotJson(e.to_string()))?;
    let text = |key: &'static str| {
        v.get(key)
            .and_then(|x| x.as_str())
            .map(str::to_owned)
            .ok_or(LightClientError::Missing(key))
    };
    let id = text("id")?;
    let name = text("name")?;
    if v.get("relay_chain").is_some() || v.get("para_id").is_some() {
        return Err(LightClientError::Parachain);
    }
    if v.pointer("/genesis/raw/top")
        .and_then(|t| t.as_object())
        .is_none()
        && v.pointer("/genesis/stateRootHash").is_none()
    {
        return Err(LightClientError::Missing(
            "genesis.raw.top (a raw chain spec; build it with scripts/chain-spec.sh)",
        ));
    }
    let boot_nodes: Vec<String> = v
        .get("bootNodes")
        .and_then(|b| b.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    if boot_nodes.is_empty() {
        return Err(LightClientError::NoBootNodes);
    }
    Ok(SpecInfo {
        id,
        name,
        boot_nodes,
    })
}

/// Starts smoldot on `chain_spec` (checked first). Must be called inside a
/// tokio runtime. Keep the returned [`LightClient`] alive as long as the
/// RPC client is used.
pub fn start(
    chain_spec: &str,
) -> Result<(LightClient, LightClientRpc, SpecInfo), LightClientError> {
    let info = check_spec(chain_spec)?;
    tracing::info!(chain = %info.id, boot_nodes = info.boot_nodes.len(), "starting smoldot light client");
    let (client, rpc) = LightClient::relay_chain(chain_spec)
        .map_err(|e| LightClientError::Smoldot(e.to_string()))?;
    Ok((client, rpc, info))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(extra: serde_json::Value) -> String {
        let mut v = serde_json::json!({
            "name": "Vilokanam Development",
            "id": "vilokanam_dev",
            "bootNodes": ["/ip4/127.0.0.1/tcp/30333/p2p/12D3KooWEyoppNCUx8Yx66oV9fJnriXwCcXwDDUA2kj6vnc6iDEp"],
            "properties": {},
            "genesis": { "raw": { "top": { "0x3a636f6465": "0x00" }, "childrenDefault": {} } }
        });
        if let (Some(o), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            for (k, x) in e {
                o.insert(k.clone(), x.clone());
            }
        }
        v.to_string()
    }

    #[test]
    fn accepts_a_raw_spec_with_boot_nodes() {
        let info = check_spec(&spec(serde_json::json!({}))).unwrap();
        assert_eq!(info.id, "vilokanam_dev");
        assert_eq!(info.boot_nodes.len(), 1);
    }

    #[test]
    fn rejects_bad_specs_with_a_precise_reason() {
        assert!(matches!(check_spec("{"), Err(LightClientError::NotJson(_))));
        assert!(matches!(
            check_spec(&spec(serde_json::json!({ "bootNodes": [] }))),
            Err(LightClientError::NoBootNodes)
        ));
        assert!(matches!(
            check_spec(&spec(
                serde_json::json!({ "genesis": { "runtimeGenesis": {} } })
            )),
            Err(LightClientError::Missing(_))
        ));
        assert!(matches!(
            check_spec(&spec(
                serde_json::json!({ "para_id": 2000, "relay_chain": "rococo" })
            )),
            Err(LightClientError::Parachain)
        ));
        assert!(matches!(
            check_spec(&spec(serde_json::json!({ "id": 7 }))),
            Err(LightClientError::Missing("id"))
        ));
    }

    proptest::proptest! {
        /// Untrusted spec files never panic the checker, whatever the bytes
        /// or the JSON shape.
        #[test]
        fn check_spec_never_panics(text in ".{0,300}", id in proptest::option::of("[a-z_]{0,12}"),
                                   boots in proptest::collection::vec(".{0,40}", 0..3)) {
            let _ = check_spec(&text);
            let mut v = serde_json::json!({ "name": "n", "bootNodes": boots,
                "genesis": { "raw": { "top": {} } } });
            if let Some(id) = id { v["id"] = serde_json::Value::String(id); }
            let _ = check_spec(&v.to_string());
        }
    }

    #[tokio::test]
    async fn smoldot_refuses_a_spec_it_cannot_use() {
        // Passes our checks but the genesis storage is not a runtime:
        // smoldot must refuse it with an error rather than hang.
        let r = start(&spec(serde_json::json!({})));
        assert!(
            matches!(r, Err(LightClientError::Smoldot(_))),
            "{:?}",
            r.err()
        );
    }
}
