//! Test helpers (feature `test-utils`; never a dependency of production
//! code): the dev chain launcher and the skip-or-require switch.
//!
//! Tests that need an optional part of the machine (the dev chain's
//! chopsticks and chain spec, ffmpeg) call [`skip_or_require`]. Without
//! `VILOKANAM_REQUIRE=1` a missing part skips the test with a `SKIPPED`
//! line on stderr that names it; with it (as `scripts/test-all.sh` and CI
//! run), a missing part fails the test. So no test is ever silently
//! skipped in CI.

pub use crate::dev_chain::{DevChain, DevChainParts};

/// The dev chain's parts for a test, through [`skip_or_require`]: `None`
/// (the test returns, saying why) when they are missing and not required;
/// a panic naming the missing part under `VILOKANAM_REQUIRE=1`.
pub fn parts_for_test() -> Option<DevChainParts> {
    skip_or_require("the dev chain", DevChainParts::locate())
}

/// The environment variable that turns a missing optional part from a skip
/// into a failure.
pub const REQUIRE_ENV: &str = "VILOKANAM_REQUIRE";

/// Whether missing optional parts fail tests (`VILOKANAM_REQUIRE=1`).
pub fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1")
}

/// The part if it is there; else `None` after a `SKIPPED` line naming
/// `what`, or a panic when [`required`].
pub fn skip_or_require<T, E: std::fmt::Display>(what: &str, found: Result<T, E>) -> Option<T> {
    match found {
        Ok(v) => Some(v),
        Err(e) if !required() => {
            eprintln!("SKIPPED: {what} is missing (set {REQUIRE_ENV}=1 to fail instead): {e:#}");
            None
        }
        Err(e) => panic!("{what} is missing and {REQUIRE_ENV}=1: {e:#}"),
    }
}

/// Builds `count` more blocks on a dev chain (chopsticks' `dev_newBlock`),
/// e.g. to reach a channel's expiry.
pub async fn new_blocks(client: &crate::Settlement, count: u32) -> Result<(), String> {
    let _: serde_json::Value = client
        .rpc()
        .request(
            "dev_newBlock",
            subxt::rpcs::rpc_params![serde_json::json!({ "count": count })],
        )
        .await
        .map_err(|e| format!("dev_newBlock: {e}"))?;
    Ok(())
}
