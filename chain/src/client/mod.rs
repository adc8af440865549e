//! Typed settlement client for the tick-stream pallet, built on subxt.
//!
//! One [`Settlement`] talks to the chain either through a websocket RPC
//! endpoint or through the embedded smoldot light client
//! ([`Endpoint::LightClient`]); every call below works the same over both.
//! Calls and storage use types generated from our runtime's metadata
//! ([`crate::runtime::api`]), so a runtime that changed under us fails
//! loudly ([`SettlementError::IncompatibleRuntime`]) instead of encoding
//! garbage.
//!
//! Transient failures of reads (the connection dropped and is being
//! re-established, the node's RPC limit was hit) are retried with
//! exponential backoff, a bounded number of times. A transaction is signed
//! once; only its submission is retried, with the same bytes, and a
//! transaction whose fate became unknown is reported, never re-signed.
//! Dispatch failures are mapped to precise errors: a bad voucher
//! signature, a replayed or outdated voucher, an amount over the payee's
//! limit, no payee slot left, too little money, a closed channel.

mod error;
mod events;
mod query;
mod tx;

use std::sync::Arc;
use std::time::Duration;

use subxt::backend::LegacyBackend;
use subxt::rpcs::client::reconnecting_rpc_client::{
    ExponentialBackoff, RpcClient as ReconnectingRpcClient,
};
use subxt::rpcs::RpcClient;
use subxt::utils::AccountId32;
use subxt::{OnlineClient, PolkadotConfig};
use subxt_signer::sr25519::Keypair;

use crate::runtime::api;

/// Account id on the chain (SS58 prefix 42).
pub type AccountId = AccountId32;
/// Balance on the chain (12 decimals; `1 TICK = 10^12`).
pub type Balance = u128;
/// Block number on the chain.
pub type BlockNumber = u32;
/// Channel id of the tick-stream pallet.
pub type ChannelId = u64;

/// How many times a transient failure is retried.
const RETRIES: u32 = 5;
/// First backoff delay; doubles each retry.
const BACKOFF_START: Duration = Duration::from_millis(200);
/// How long [`Settlement::connect`] may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(60);

/// How a connection to the chain is made and kept.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectOptions {
    /// Give up connecting after this long. Default [`CONNECT_TIMEOUT`]:
    /// a light client with no reachable peer would otherwise wait forever.
    pub timeout: Duration,
    /// Reconnection attempts of the RPC client (at connect and after a
    /// drop): exponential from 2 ms, capped at 5 s. Default 14, about 18 s
    /// in all; after that calls fail with `Unreachable` and a new
    /// [`Settlement`] must be connected.
    pub reconnect_attempts: usize,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            timeout: CONNECT_TIMEOUT,
            reconnect_attempts: 14,
        }
    }
}

impl ConnectOptions {
    /// Sets [`ConnectOptions::timeout`].
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`ConnectOptions::reconnect_attempts`].
    pub fn with_reconnect_attempts(mut self, n: usize) -> Self {
        self.reconnect_attempts = n;
        self
    }
}
/// How long a submitted transaction may take to be finalized.
pub const FINALITY_TIMEOUT: Duration = Duration::from_secs(120);

/// Where the chain is reached.
#[derive(Clone, Debug)]
pub enum Endpoint {
    /// A node's websocket RPC (`ws://` or `wss://`).
    Rpc(String),
    /// The embedded smoldot light client, started from this raw chain spec
    /// (JSON text with boot nodes).
    LightClient(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Rpc(url) => write!(f, "{url}"),
            Endpoint::LightClient(_) => write!(f, "light client"),
        }
    }
}

/// A tick-stream channel as stored on chain: one payer's deposit and
/// collateral, paying up to `max_payees` payees.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Channel id.
    pub id: ChannelId,
    /// Who pays.
    pub payer: AccountId,
    /// ed25519 key that signs vouchers.
    pub voucher_key: [u8; 32],
    /// Deposit held: what vouchers are paid from.
    pub deposit: Balance,
    /// Collateral held: pays claims beyond the deposit, burned if the
    /// channel closes overdrawn.
    pub collateral: Balance,
    /// Most payees.
    pub max_payees: u32,
    /// Payees named at open.
    pub named_payees: u32,
    /// Payees bound so far.
    pub bound_payees: u32,
    /// Most a payee not named at open may be owed.
    pub payee_cap: Balance,
    /// Total paid out to all payees.
    pub paid: Balance,
    /// Block after which the payer may close.
    pub expires_at: BlockNumber,
    /// Migrated from a single-payee channel (old, payee-less vouchers).
    pub legacy: bool,
}

/// A channel and its payees as one finalized block holds them
/// ([`Settlement::channel_snapshot`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelSnapshot {
    /// The channel.
    pub info: ChannelInfo,
    /// The payees bound to it, ordered by account.
    pub payees: Vec<PayeeInfo>,
    /// The number of the block both were read at.
    pub block: u64,
}

impl ChannelInfo {
    /// Whether claims have reached the collateral (the payer signed more
    /// than its deposit).
    pub fn overdrawn(&self) -> bool {
        self.paid > self.deposit
    }
}

/// One payee of a channel, as stored on chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PayeeInfo {
    /// The payee.
    pub payee: AccountId,
    /// Cumulative amount claimed so far.
    pub claimed: Balance,
    /// Named at open (limited by the deposit rather than the cap).
    pub named: bool,
}

/// What to open a channel with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpenTerms {
    /// Payees bound now (the creator of the stream watched).
    pub payees: Vec<AccountId>,
    /// Most payees, named ones included.
    pub max_payees: u32,
    /// Most a payee not named may be owed.
    pub payee_cap: Balance,
    /// Deposit to hold.
    pub deposit: Balance,
    /// Collateral to hold (at least [`OpenTerms::required_collateral`]).
    pub collateral: Balance,
    /// Block after which the payer may close.
    pub expires_at: BlockNumber,
}

impl OpenTerms {
    /// Terms of a channel that pays exactly one payee (no collateral).
    pub fn single(payee: AccountId, deposit: Balance, expires_at: BlockNumber) -> Self {
        OpenTerms {
            payees: vec![payee],
            max_payees: 1,
            payee_cap: 0,
            deposit,
            collateral: 0,
            expires_at,
        }
    }

    /// The least collateral the pallet accepts for these terms:
    /// `named·D + late·min(cap, D) - D` (saturating), as the pallet's
    /// `required_collateral`.
    pub fn required_collateral(&self) -> Option<Balance> {
        let named = u128::try_from(self.payees.len()).ok()?;
        let late = u128::from(self.max_payees).checked_sub(named)?;
        let worst = named
            .checked_mul(self.deposit)?
            .checked_add(late.checked_mul(self.payee_cap.min(self.deposit))?)?;
        Some(worst.saturating_sub(self.deposit))
    }
}

/// Balances of an account.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AccountBalance {
    /// Free balance (includes what is frozen, excludes what is held).
    pub free: Balance,
    /// Held balance (channel deposits, among others).
    pub reserved: Balance,
    /// Account nonce.
    pub nonce: u32,
}

/// Chain facts for `vilokanam chain status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainStatus {
    /// The endpoint used.
    pub endpoint: String,
    /// Chain name (`system_chain`).
    pub chain: String,
    /// Genesis hash (what vouchers are bound to).
    pub genesis: [u8; 32],
    /// Latest finalized block.
    pub finalized: u64,
    /// Runtime spec version.
    pub spec_version: u32,
    /// Number of channels open.
    pub open_channels: u64,
}

/// What a finalized transaction did, and what it cost its signer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt<T> {
    /// The call's outcome.
    pub outcome: T,
    /// Transaction fee paid by the signer (fee + tip).
    pub fee: Balance,
}

/// What the runtime says a transaction would cost, before it is sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DispatchCost {
    /// Weight, computation part (picoseconds of reference hardware).
    pub ref_time: u64,
    /// Weight, proof-size part (bytes).
    pub proof_size: u64,
    /// Fee without tip, in planck.
    pub partial_fee: Balance,
    /// Encoded length of the signed transaction.
    pub length: u32,
}

/// Result of a successful claim.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// The payee paid.
    pub payee: AccountId,
    /// Paid out by this claim.
    pub amount: Balance,
    /// Cumulative amount of the voucher.
    pub cumulative: Balance,
    /// Of `amount`, what came from the collateral (the channel is
    /// overdrawn if this is not zero).
    pub from_collateral: Balance,
}

/// Result of closing a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed {
    /// Returned to the payer (unused deposit, and the collateral unless
    /// the channel was overdrawn).
    pub refunded: Balance,
    /// Total paid to all payees.
    pub paid: Balance,
    /// Collateral burned because the channel was overdrawn.
    pub slashed: Balance,
}

/// A tick-stream event seen in a finalized block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TickEvent {
    /// A channel was opened.
    Opened {
        /// Channel.
        channel: ChannelId,
        /// Payer.
        payer: AccountId,
        /// Payees named at open.
        payees: Vec<AccountId>,
        /// Deposit held.
        deposit: Balance,
        /// Collateral held.
        collateral: Balance,
    },
    /// Deposit and/or collateral was added.
    ToppedUp {
        /// Channel.
        channel: ChannelId,
        /// New total deposit.
        deposit: Balance,
        /// New total collateral.
        collateral: Balance,
    },
    /// Expiry moved later.
    Extended {
        /// Channel.
        channel: ChannelId,
        /// New expiry.
        expires_at: BlockNumber,
    },
    /// A voucher was claimed.
    Claimed {
        /// Channel.
        channel: ChannelId,
        /// What the claim paid (`from_collateral` is reported separately,
        /// by [`TickEvent::Overdrawn`]).
        claimed: Claimed,
    },
    /// A claim reached the collateral.
    Overdrawn {
        /// Channel.
        channel: ChannelId,
        /// Paid from the collateral.
        from_collateral: Balance,
    },
    /// A channel was closed.
    Closed {
        /// Channel.
        channel: ChannelId,
        /// What was paid, refunded and burned.
        closed: Closed,
    },
}

/// A connection to the settlement chain.
#[derive(Clone)]
pub struct Settlement {
    api: OnlineClient<PolkadotConfig>,
    rpc: RpcClient,
    endpoint: String,
    // Keeps smoldot running while this client (or a clone) lives.
    _light: Option<Arc<subxt::lightclient::LightClient>>,
    /// Held from signing a transaction until it is in a block: see
    /// `Settlement::submit`.
    tx_lock: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for Settlement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settlement")
            .field("endpoint", &self.endpoint)
            .finish_non_exhaustive()
    }
}

impl Settlement {
    /// Connects to the chain (retrying a refused connection with backoff)
    /// and checks that its runtime matches our generated types.
    pub async fn connect(endpoint: &Endpoint) -> Result<Self, SettlementError> {
        Self::connect_with(endpoint, &ConnectOptions::default()).await
    }

    /// [`Settlement::connect`], giving up with
    /// [`SettlementError::Unreachable`] after `timeout` (a light client
    /// with no reachable peer would otherwise wait forever).
    pub async fn connect_within(
        endpoint: &Endpoint,
        timeout: Duration,
    ) -> Result<Self, SettlementError> {
        Self::connect_with(endpoint, &ConnectOptions::default().with_timeout(timeout)).await
    }

    /// [`Settlement::connect`] with explicit [`ConnectOptions`].
    pub async fn connect_with(
        endpoint: &Endpoint,
        options: &ConnectOptions,
    ) -> Result<Self, SettlementError> {
        let timeout = options.timeout;
        match tokio::time::timeout(timeout, Self::connect_inner(endpoint, options)).await {
            Ok(r) => r,
            Err(_) => Err(SettlementError::Unreachable {
                endpoint: endpoint.to_string(),
                reason: match endpoint {
                    Endpoint::Rpc(_) => format!("no answer within {timeout:?}"),
                    Endpoint::LightClient(_) => format!(
                        "the light client got no block from any boot node within {timeout:?}"
                    ),
                },
            }),
        }
    }

    async fn connect_inner(
        endpoint: &Endpoint,
        options: &ConnectOptions,
    ) -> Result<Self, SettlementError> {
        let name = endpoint.to_string();
        let unreachable = |reason: String| SettlementError::Unreachable {
            endpoint: name.clone(),
            reason,
        };
        let (rpc, light) = match endpoint {
            Endpoint::Rpc(url) => {
                let policy = ExponentialBackoff::from_millis(2)
                    .max_delay(Duration::from_secs(5))
                    .take(options.reconnect_attempts);
                let client = ReconnectingRpcClient::builder()
                    .retry_policy(policy)
                    .connection_timeout(Duration::from_secs(10))
                    .build(url)
                    .await
                    .map_err(|e| unreachable(e.to_string()))?;
                (RpcClient::new(client), None)
            }
            Endpoint::LightClient(spec) => {
                let (light, rpc, _) = vilokanam_light_client::start(spec)?;
                (RpcClient::new(rpc), Some(Arc::new(light)))
            }
        };
        // The legacy JSON-RPC methods are served by every node, smoldot and
        // chopsticks alike (chopsticks' chainHead_v1 output is non-standard).
        let backend = LegacyBackend::<PolkadotConfig>::builder().build(rpc.clone());
        let api = OnlineClient::<PolkadotConfig>::from_backend(Arc::new(backend))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let this = Settlement {
            api,
            rpc,
            endpoint: name,
            _light: light,
            tx_lock: Arc::new(tokio::sync::Mutex::new(())),
        };
        let at = this
            .retry(|| async { Ok::<_, subxt::Error>(this.api.at_current_block().await?) })
            .await?;
        if !api::is_codegen_valid_for(at.metadata_ref()) {
            return Err(SettlementError::IncompatibleRuntime(format!(
                "spec version {} at block {}",
                at.spec_version(),
                at.block_number()
            )));
        }
        Ok(this)
    }

    /// The endpoint's description.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Genesis hash of the chain: what vouchers must be signed for.
    pub fn genesis(&self) -> [u8; 32] {
        self.api.genesis_hash().0
    }

    /// The raw JSON-RPC client (for node-specific calls such as a dev
    /// chain's `dev_newBlock`).
    pub fn rpc(&self) -> &RpcClient {
        &self.rpc
    }

    /// The subxt client, for anything not wrapped here.
    pub fn api(&self) -> &OnlineClient<PolkadotConfig> {
        &self.api
    }
    /// Runs `op`, retrying transient failures with exponential backoff.
    async fn retry<T, F, Fut>(&self, mut op: F) -> Result<T, SettlementError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Result<T, subxt::Error>>,
    {
        let mut attempt = 0;
        loop {
            match op().await {
                Ok(v) => return Ok(v),
                Err(e) if is_transient(&e) && attempt < RETRIES => {
                    attempt += 1;
                    backoff(attempt, &e).await;
                }
                Err(e) => return Err(self.classify(e, None)),
            }
        }
    }
}

async fn backoff(attempt: u32, e: &subxt::Error) {
    let delay = BACKOFF_START * 2u32.saturating_pow(attempt - 1);
    tracing::warn!(attempt, ?delay, error = %e, "transient chain error; retrying");
    tokio::time::sleep(delay).await;
}

/// A raw RPC error as a backend error, so a reconnect counts as transient.
fn rpc_error(e: subxt::rpcs::Error) -> subxt::Error {
    subxt::Error::from(subxt::error::BackendError::from(e))
}

fn is_transient(e: &subxt::Error) -> bool {
    e.is_disconnected_will_reconnect() || e.is_rpc_limit_reached()
}

fn other(e: impl std::fmt::Display) -> SettlementError {
    SettlementError::Other(e.to_string())
}

pub use error::SettlementError;
