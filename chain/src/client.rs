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
//! transaction whose fate became unknown is reported, never re-signed. Dispatch failures are mapped to precise
//! errors: a bad voucher signature, a replayed or outdated voucher, too
//! little money, a closed channel.

use std::sync::Arc;
use std::time::Duration;

use subxt::backend::LegacyBackend;
use subxt::error::{
    DispatchError, TokenError, TransactionEventsError, TransactionFinalizedSuccessError,
};
use subxt::rpcs::client::reconnecting_rpc_client::{
    ExponentialBackoff, RpcClient as ReconnectingRpcClient,
};
use subxt::rpcs::RpcClient;
use subxt::utils::AccountId32;
use subxt::{OnlineClient, PolkadotConfig};
use subxt_signer::sr25519::Keypair;

use crate::runtime::api;
use crate::voucher::Voucher;

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

/// Everything that can go wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettlementError {
    /// No connection could be made (after retries).
    #[error("chain node unreachable at {endpoint}: {reason}")]
    Unreachable {
        /// The endpoint tried.
        endpoint: String,
        /// The last error.
        reason: String,
    },
    /// The light client could not start.
    #[error("light client: {0}")]
    LightClient(#[from] vilokanam_light_client::LightClientError),
    /// The account cannot pay the deposit, top-up or the transaction fee.
    #[error("insufficient funds: {0}")]
    InsufficientFunds(String),
    /// No such channel: never opened, or already closed.
    #[error("channel {0} does not exist (never opened, or closed)")]
    ChannelClosed(ChannelId),
    /// The voucher's signature does not verify against the channel's key.
    #[error("voucher for channel {0} has a bad signature (wrong key or tampered)")]
    BadSignature(ChannelId),
    /// This exact voucher was already claimed.
    #[error("voucher for channel {0} was already claimed (replay)")]
    VoucherReplayed(ChannelId),
    /// A later voucher was already claimed.
    #[error("voucher for channel {0} is older than one already claimed")]
    VoucherOutdated(ChannelId),
    /// The voucher asks for more than the channel's deposit.
    #[error("voucher for channel {0} exceeds the channel's deposit")]
    ExceedsDeposit(ChannelId),
    /// The voucher names another chain.
    #[error("voucher was signed for another chain ({0})")]
    WrongChain(String),
    /// Any other dispatch error of a pallet.
    #[error("rejected by the chain: {pallet}::{error}")]
    Rejected {
        /// Pallet name.
        pallet: String,
        /// Error variant name.
        error: String,
    },
    /// The transaction pool refused the transaction.
    #[error("transaction invalid: {0}")]
    Invalid(String),
    /// This client's generated types do not match the chain's runtime.
    #[error(
        "the chain's runtime does not match this client's generated types (chain/metadata): {0}"
    )]
    IncompatibleRuntime(String),
    /// The transaction was submitted but its fate is unknown (connection
    /// lost after submission, or no finality in time). It was not re-sent:
    /// check the chain for it before submitting again.
    #[error("transaction {tx_hash} was submitted but its outcome is unknown: {reason}")]
    OutcomeUnknown {
        /// Hash of the submitted transaction.
        tx_hash: String,
        /// Why.
        reason: String,
    },
    /// Anything else from subxt or the node.
    #[error("chain: {0}")]
    Other(String),
}

/// A tick-stream channel as stored on chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChannelInfo {
    /// Channel id.
    pub id: ChannelId,
    /// Who pays.
    pub payer: AccountId,
    /// Who is paid.
    pub payee: AccountId,
    /// ed25519 key that signs vouchers.
    pub voucher_key: [u8; 32],
    /// Price of one second.
    pub price_per_second: Balance,
    /// Total deposit held.
    pub deposit: Balance,
    /// Total paid out.
    pub claimed: Balance,
    /// Block after which the payer may close.
    pub expires_at: BlockNumber,
    /// Seconds paid for.
    pub ticks: u64,
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
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Claimed {
    /// Paid out by this claim.
    pub amount: Balance,
    /// Cumulative amount of the voucher.
    pub cumulative: Balance,
    /// Seconds paid on the channel so far.
    pub ticks: u64,
}

/// Result of closing a channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Closed {
    /// Returned to the payer.
    pub refunded: Balance,
    /// Total paid to the payee.
    pub claimed: Balance,
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
        /// Payee.
        payee: AccountId,
        /// Deposit held.
        deposit: Balance,
    },
    /// Deposit was added.
    ToppedUp {
        /// Channel.
        channel: ChannelId,
        /// New total deposit.
        deposit: Balance,
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
        /// What the claim paid.
        claimed: Claimed,
    },
    /// A channel was closed.
    Closed {
        /// Channel.
        channel: ChannelId,
        /// What was paid and refunded.
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

    /// Chain name, finalized height, runtime version and channel count.
    pub async fn status(&self) -> Result<ChainStatus, SettlementError> {
        let chain: String = self
            .retry(|| async {
                self.rpc
                    .request::<String>("system_chain", subxt::rpcs::rpc_params![])
                    .await
                    .map_err(rpc_error)
            })
            .await?;
        let (finalized, spec_version) = self
            .retry(|| async {
                let at = self.api.at_current_block().await?;
                Ok::<_, subxt::Error>((at.block_number(), at.spec_version()))
            })
            .await?;
        let open_channels = self.channels().await?.len() as u64;
        Ok(ChainStatus {
            endpoint: self.endpoint.clone(),
            chain,
            genesis: self.genesis(),
            finalized,
            spec_version,
            open_channels,
        })
    }

    /// Number of the latest finalized block.
    pub async fn finalized_number(&self) -> Result<u64, SettlementError> {
        self.retry(|| async {
            Ok::<_, subxt::Error>(self.api.at_current_block().await?.block_number())
        })
        .await
    }

    /// Free and held balance of an account.
    pub async fn balance(&self, who: &AccountId) -> Result<AccountBalance, SettlementError> {
        let info = self
            .retry(|| async {
                let at = self.api.at_current_block().await?;
                let v = at
                    .storage()
                    .fetch(api::storage().system().account(), (*who,))
                    .await?;
                Ok::<_, subxt::Error>(v.decode()?)
            })
            .await?;
        Ok(AccountBalance {
            free: info.data.free,
            reserved: info.data.reserved,
            nonce: info.nonce,
        })
    }

    /// A channel, or `None` if it does not exist (never opened, or closed).
    pub async fn channel(&self, id: ChannelId) -> Result<Option<ChannelInfo>, SettlementError> {
        self.retry(|| async {
            let at = self.api.at_current_block().await?;
            let v = at
                .storage()
                .try_fetch(api::storage().tick_stream().channels(), (id,))
                .await?;
            Ok::<_, subxt::Error>(match v {
                None => None,
                Some(v) => Some(channel_info(id, v.decode()?)),
            })
        })
        .await
    }

    /// Every open channel (ordered by id).
    pub async fn channels(&self) -> Result<Vec<ChannelInfo>, SettlementError> {
        let mut out = self
            .retry(|| async {
                let at = self.api.at_current_block().await?;
                let mut it = at
                    .storage()
                    .iter(api::storage().tick_stream().channels(), ())
                    .await?;
                let mut out = Vec::new();
                while let Some(kv) = it.next().await {
                    let kv = kv?;
                    let (id,) = kv.key()?.decode()?;
                    out.push(channel_info(id, kv.value().decode()?));
                }
                Ok::<_, subxt::Error>(out)
            })
            .await?;
        out.sort_by_key(|c| c.id);
        Ok(out)
    }

    /// Seconds paid to `payee` over all its channels.
    pub async fn payee_ticks(&self, payee: &AccountId) -> Result<u64, SettlementError> {
        self.retry(|| async {
            let at = self.api.at_current_block().await?;
            let v = at
                .storage()
                .fetch(api::storage().tick_stream().payee_ticks(), (*payee,))
                .await?;
            Ok::<_, subxt::Error>(v.decode()?)
        })
        .await
    }

    /// Opens a channel from `payer` to `payee`, holding `deposit`; vouchers
    /// will be signed by `voucher_key` (the payer node's ed25519 key).
    pub async fn open_channel(
        &self,
        payer: &Keypair,
        payee: &AccountId,
        voucher_key: [u8; 32],
        price_per_second: Balance,
        deposit: Balance,
        expires_at: BlockNumber,
    ) -> Result<Receipt<ChannelInfo>, SettlementError> {
        let call = api::tx().tick_stream().open_channel(
            *payee,
            voucher_key,
            price_per_second,
            deposit,
            expires_at,
        );
        let events = self.submit(&call, payer, None).await?;
        // The event has everything a fresh channel holds; no second query.
        let ev = find::<api::tick_stream::events::ChannelOpened>(&events)?;
        let outcome = ChannelInfo {
            id: ev.channel,
            payer: ev.payer,
            payee: ev.payee,
            voucher_key,
            price_per_second: ev.price_per_second,
            deposit: ev.deposit,
            claimed: 0,
            expires_at: ev.expires_at,
            ticks: 0,
        };
        receipt(&events, outcome)
    }

    /// Adds `amount` to a channel's deposit; returns the new deposit.
    pub async fn top_up(
        &self,
        payer: &Keypair,
        channel: ChannelId,
        amount: Balance,
    ) -> Result<Receipt<Balance>, SettlementError> {
        let call = api::tx().tick_stream().top_up(channel, amount);
        let events = self.submit(&call, payer, Some(channel)).await?;
        let deposit = find::<api::tick_stream::events::ToppedUp>(&events)?.deposit;
        receipt(&events, deposit)
    }

    /// Moves a channel's expiry later.
    pub async fn extend(
        &self,
        payer: &Keypair,
        channel: ChannelId,
        expires_at: BlockNumber,
    ) -> Result<Receipt<()>, SettlementError> {
        let call = api::tx().tick_stream().extend(channel, expires_at);
        let events = self.submit(&call, payer, Some(channel)).await?;
        receipt(&events, ())
    }

    /// Claims the latest voucher of a channel as its payee.
    pub async fn claim(
        &self,
        payee: &Keypair,
        voucher: &Voucher,
    ) -> Result<Receipt<Claimed>, SettlementError> {
        let call = api::tx().tick_stream().claim(
            voucher.channel,
            voucher.cumulative,
            subxt::utils::H256(voucher.chain),
            voucher.signature,
        );
        let events = self.submit(&call, payee, Some(voucher.channel)).await?;
        let ev = find::<api::tick_stream::events::Claimed>(&events)?;
        let outcome = Claimed {
            amount: ev.amount,
            cumulative: ev.cumulative,
            ticks: ev.ticks,
        };
        receipt(&events, outcome)
    }

    /// Weight and fee of claiming `voucher`, from the runtime's
    /// `TransactionPaymentApi` (nothing is submitted). A payee uses it to
    /// decide when a claim is worth its fee.
    pub async fn claim_cost(
        &self,
        payee: &Keypair,
        voucher: &Voucher,
    ) -> Result<DispatchCost, SettlementError> {
        use subxt::ext::codec::{Compact, Decode, Encode};
        let call = api::tx().tick_stream().claim(
            voucher.channel,
            voucher.cumulative,
            subxt::utils::H256(voucher.chain),
            voucher.signature,
        );
        let tx = self
            .retry(|| async {
                let mut client = self.api.tx().await?;
                Ok::<_, subxt::Error>(
                    client
                        .create_signed(&call, payee, Default::default())
                        .await?
                        .into_encoded(),
                )
            })
            .await?;
        let length = u32::try_from(tx.len()).map_err(other)?;
        let mut args = tx;
        length.encode_to(&mut args);
        let arg = format!("0x{}", hex::encode(&args));
        let raw: String = self
            .retry(|| async {
                self.rpc
                    .request::<String>(
                        "state_call",
                        subxt::rpcs::rpc_params!["TransactionPaymentApi_query_info", &arg],
                    )
                    .await
                    .map_err(rpc_error)
            })
            .await?;
        let bytes = hex::decode(raw.trim_start_matches("0x")).map_err(other)?;
        // RuntimeDispatchInfo { weight: { ref_time, proof_size } (compact), class, partial_fee }
        let (ref_time, proof_size, _class, partial_fee) =
            <(Compact<u64>, Compact<u64>, u8, u128)>::decode(&mut &bytes[..]).map_err(other)?;
        Ok(DispatchCost {
            ref_time: ref_time.0,
            proof_size: proof_size.0,
            partial_fee,
            length,
        })
    }

    /// Closes a channel (the payee at any time, the payer after expiry).
    pub async fn close(
        &self,
        who: &Keypair,
        channel: ChannelId,
    ) -> Result<Receipt<Closed>, SettlementError> {
        let call = api::tx().tick_stream().close(channel);
        let events = self.submit(&call, who, Some(channel)).await?;
        let ev = find::<api::tick_stream::events::ChannelClosed>(&events)?;
        let outcome = Closed {
            refunded: ev.refunded,
            claimed: ev.claimed,
        };
        receipt(&events, outcome)
    }

    /// Tick-stream events of finalized blocks from now on, one batch per
    /// block (blocks without such events are skipped).
    pub async fn watch_events(
        &self,
    ) -> Result<
        impl futures::Stream<Item = Result<(u64, Vec<TickEvent>), SettlementError>> + use<>,
        SettlementError,
    > {
        let blocks = self
            .retry(|| async { Ok::<_, subxt::Error>(self.api.stream_blocks().await?) })
            .await?;
        let stream = futures::stream::unfold(blocks, |mut blocks| async move {
            loop {
                let block = match blocks.next().await? {
                    Ok(b) => b,
                    Err(e) => return Some((Err(other(e)), blocks)),
                };
                match block_events(&block).await {
                    Ok(evs) if evs.is_empty() => continue,
                    Ok(evs) => return Some((Ok((block.number(), evs)), blocks)),
                    Err(e) => return Some((Err(e), blocks)),
                }
            }
        });
        Ok(stream)
    }

    /// Signs once, submits and waits until finalized; maps failures
    /// precisely. Only the submission of the *same signed bytes* is
    /// retried (same nonce, so at most one copy can ever be included).
    /// If the connection drops after the node accepted the transaction, or
    /// finality does not come within [`FINALITY_TIMEOUT`], the outcome is
    /// unknown and the transaction is not re-signed:
    /// [`SettlementError::OutcomeUnknown`] carries its hash.
    async fn submit<Call: subxt::transactions::Payload>(
        &self,
        call: &Call,
        signer: &Keypair,
        channel: Option<ChannelId>,
    ) -> Result<subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>, SettlementError> {
        let fail = |e: subxt::Error| self.classify(e, channel);
        let tx = self
            .retry(|| async {
                let mut client = self.api.tx().await?;
                Ok::<_, subxt::Error>(
                    client
                        .create_signed(call, signer, Default::default())
                        .await?,
                )
            })
            .await?;
        let hash = format!("0x{}", hex::encode(tx.hash().0));
        let mut attempt = 0;
        let progress = loop {
            match tx.submit_and_watch().await.map_err(subxt::Error::from) {
                Ok(p) => break p,
                Err(e) if is_transient(&e) && attempt < RETRIES => {
                    attempt += 1;
                    backoff(attempt, &e).await;
                }
                Err(e) => return Err(fail(e)),
            }
        };
        match tokio::time::timeout(FINALITY_TIMEOUT, progress.wait_for_finalized_success()).await {
            Ok(Ok(events)) => Ok(events),
            Ok(Err(e)) => {
                let e = subxt::Error::from(e);
                if is_transient(&e) {
                    Err(SettlementError::OutcomeUnknown {
                        tx_hash: hash,
                        reason: e.to_string(),
                    })
                } else {
                    Err(fail(e))
                }
            }
            Err(_) => Err(SettlementError::OutcomeUnknown {
                tx_hash: hash,
                reason: format!("not finalized within {FINALITY_TIMEOUT:?}"),
            }),
        }
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

impl Settlement {
    /// Turns a subxt error into the precise settlement error.
    fn classify(&self, e: subxt::Error, channel: Option<ChannelId>) -> SettlementError {
        use subxt::Error as E;
        let dispatch = match &e {
            E::TransactionFinalizedSuccessError(
                TransactionFinalizedSuccessError::SuccessError(
                    TransactionEventsError::ExtrinsicFailed(d),
                ),
            )
            | E::TransactionEventsError(TransactionEventsError::ExtrinsicFailed(d)) => Some(d),
            _ => None,
        };
        if let Some(d) = dispatch {
            return classify_dispatch(d, channel, self.genesis());
        }
        if is_incompatible(&e) {
            return SettlementError::IncompatibleRuntime(e.to_string());
        }
        if let Some(pool) = find_user_error(&e) {
            if let Some(err) = classify_pool(pool) {
                return err;
            }
        }
        if is_transient(&e) {
            return SettlementError::Unreachable {
                endpoint: self.endpoint.clone(),
                reason: e.to_string(),
            };
        }
        SettlementError::Other(e.to_string())
    }
}

/// Whether the error says our generated types do not match the runtime.
fn is_incompatible(e: &subxt::Error) -> bool {
    use subxt::error::{ExtrinsicError, RuntimeApiError, StorageError};
    use subxt::Error as E;
    matches!(
        e,
        E::ExtrinsicError(ExtrinsicError::IncompatibleCodegen)
            | E::RuntimeApiError(RuntimeApiError::IncompatibleCodegen)
            | E::StorageError(StorageError::IncompatibleCodegen)
    )
}

/// The JSON-RPC error object the node answered with, if the error chain
/// carries one (how a node refuses a transaction before it is included).
fn find_user_error(e: &subxt::Error) -> Option<&subxt::rpcs::UserError> {
    use subxt::error::{BackendError, ExtrinsicError, RpcError};
    use subxt::Error as E;
    // Submission errors hold the backend error without exposing it as a
    // source, so look where subxt puts it.
    let backend = match e {
        E::BackendError(b) | E::ExtrinsicError(ExtrinsicError::ErrorSubmittingTransaction(b)) => {
            Some(b)
        }
        _ => None,
    };
    if let Some(BackendError::Rpc(RpcError::ClientError(subxt::rpcs::Error::User(u)))) = backend {
        return Some(u);
    }
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(u) = err.downcast_ref::<subxt::rpcs::UserError>() {
            return Some(u);
        }
        if let Some(subxt::rpcs::Error::User(u)) = err.downcast_ref::<subxt::rpcs::Error>() {
            return Some(u);
        }
        cur = err.source();
    }
    None
}

/// JSON-RPC code of "invalid transaction" (author_submitExtrinsic).
const POOL_INVALID: i32 = 1010;
/// JSON-RPC code of "unknown transaction validity".
const POOL_UNKNOWN: i32 = 1011;

/// Classifies a transaction pool refusal from its JSON-RPC error object.
/// A Substrate node puts the `InvalidTransaction` variant's description in
/// `data` (`"Inability to pay some fees (e.g. account balance too low)"`
/// for `Payment`); chopsticks puts the variant itself, as JSON, in the
/// message (`{"invalid":{"payment":null}}`).
fn classify_pool(u: &subxt::rpcs::UserError) -> Option<SettlementError> {
    if u.code != POOL_INVALID && u.code != POOL_UNKNOWN {
        return None;
    }
    let data: Option<serde_json::Value> = u
        .data
        .as_ref()
        .and_then(|d| serde_json::from_str(d.get()).ok());
    let from_message: Option<serde_json::Value> = serde_json::from_str(&u.message).ok();
    let variant = [data.as_ref(), from_message.as_ref()]
        .into_iter()
        .flatten()
        .find_map(|v| v.get("invalid").or_else(|| v.get("Invalid")).cloned());
    let payment = variant
        .as_ref()
        .is_some_and(|v| v.get("payment").is_some() || v.get("Payment").is_some())
        || data
            .as_ref()
            .and_then(|d| d.as_str())
            .is_some_and(|s| s.starts_with(PAYMENT_DESCRIPTION));
    if payment {
        return Some(SettlementError::InsufficientFunds(
            "the account cannot pay the transaction fee".into(),
        ));
    }
    let detail = match (&data, &variant) {
        (Some(serde_json::Value::String(s)), _) => s.clone(),
        (_, Some(v)) => v.to_string(),
        _ => u.message.clone(),
    };
    Some(SettlementError::Invalid(format!(
        "{} ({}): {detail}",
        u.message, u.code
    )))
}

/// The description `sp_runtime` gives `InvalidTransaction::Payment`.
const PAYMENT_DESCRIPTION: &str = "Inability to pay some fees";

fn classify_dispatch(
    d: &DispatchError,
    channel: Option<ChannelId>,
    genesis: [u8; 32],
) -> SettlementError {
    let ch = channel.unwrap_or_default();
    match d {
        DispatchError::Module(m) => {
            let Ok(details) = m.details() else {
                return SettlementError::Other(format!("undecodable module error: {m}"));
            };
            let pallet = details.pallet.name().to_owned();
            let error = details.variant.name.clone();
            match (pallet.as_str(), error.as_str()) {
                ("TickStream", "ChannelNotFound") => SettlementError::ChannelClosed(ch),
                ("TickStream", "BadSignature") => SettlementError::BadSignature(ch),
                ("TickStream", "VoucherReplayed") => SettlementError::VoucherReplayed(ch),
                ("TickStream", "VoucherOutdated") => SettlementError::VoucherOutdated(ch),
                ("TickStream", "ExceedsDeposit") => SettlementError::ExceedsDeposit(ch),
                ("TickStream", "WrongChain") => {
                    SettlementError::WrongChain(format!("this chain is 0x{}", hex::encode(genesis)))
                }
                ("TickStream", "InsufficientFunds") => SettlementError::InsufficientFunds(
                    "the payer cannot put that much on hold".into(),
                ),
                ("Balances", "InsufficientBalance" | "FundsUnavailable") => {
                    SettlementError::InsufficientFunds(format!("Balances::{error}"))
                }
                _ => SettlementError::Rejected { pallet, error },
            }
        }
        DispatchError::Token(
            t
            @ (TokenError::FundsUnavailable | TokenError::BelowMinimum | TokenError::CannotCreate),
        ) => SettlementError::InsufficientFunds(format!("token error: {t}")),
        DispatchError::Token(t) => SettlementError::Other(format!("token error: {t}")),
        other => SettlementError::Other(other.to_string()),
    }
}

fn find<E: subxt::events::DecodeAsEvent>(
    events: &subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>,
) -> Result<E, SettlementError> {
    match events.find_first::<E>() {
        Some(Ok(e)) => Ok(e),
        Some(Err(e)) => Err(other(e)),
        None => Err(SettlementError::Other(
            "the transaction succeeded but its event is missing".into(),
        )),
    }
}

/// Attaches the fee the signer paid (from `TransactionFeePaid`).
fn receipt<T>(
    events: &subxt::extrinsics::ExtrinsicEvents<PolkadotConfig>,
    outcome: T,
) -> Result<Receipt<T>, SettlementError> {
    let paid = find::<api::transaction_payment::events::TransactionFeePaid>(events)?;
    Ok(Receipt {
        outcome,
        fee: paid.actual_fee + paid.tip,
    })
}

type RawChannel =
    api::runtime_types::pallet_tick_stream::pallet::Channel<AccountId, Balance, BlockNumber>;

fn channel_info(id: ChannelId, c: RawChannel) -> ChannelInfo {
    ChannelInfo {
        id,
        payer: c.payer,
        payee: c.payee,
        voucher_key: c.voucher_key,
        price_per_second: c.price_per_second,
        deposit: c.deposit,
        claimed: c.claimed,
        expires_at: c.expires_at,
        ticks: c.ticks,
    }
}

async fn block_events(
    block: &subxt::client::Block<PolkadotConfig>,
) -> Result<Vec<TickEvent>, SettlementError> {
    use api::tick_stream::Event as E;
    let at = block.at().await.map_err(other)?;
    let events = at.events().fetch().await.map_err(other)?;
    let mut out = Vec::new();
    // One pass, in block order; only TickStream events are decoded.
    for ev in events.iter() {
        let ev = ev.map_err(other)?;
        if ev.pallet_name() != "TickStream" {
            continue;
        }
        let api::Event::TickStream(e) = ev.decode_as::<api::Event>().map_err(other)? else {
            continue;
        };
        out.push(match e {
            E::ChannelOpened {
                channel,
                payer,
                payee,
                deposit,
                ..
            } => TickEvent::Opened {
                channel,
                payer,
                payee,
                deposit,
            },
            E::ToppedUp {
                channel, deposit, ..
            } => TickEvent::ToppedUp { channel, deposit },
            E::Extended {
                channel,
                expires_at,
            } => TickEvent::Extended {
                channel,
                expires_at,
            },
            E::Claimed {
                channel,
                amount,
                cumulative,
                ticks,
            } => TickEvent::Claimed {
                channel,
                claimed: Claimed {
                    amount,
                    cumulative,
                    ticks,
                },
            },
            E::ChannelClosed {
                channel,
                refunded,
                claimed,
            } => TickEvent::Closed {
                channel,
                closed: Closed { refunded, claimed },
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(code: i32, message: &str, data: Option<&str>) -> subxt::rpcs::UserError {
        subxt::rpcs::UserError {
            code,
            message: message.into(),
            data: data.map(|d| serde_json::value::RawValue::from_string(d.into()).unwrap()),
        }
    }

    #[test]
    fn pool_refusals_are_classified_from_the_rpc_error_object() {
        // A Substrate node: the variant's description in `data`.
        let node = user(
            1010,
            "Invalid Transaction",
            Some(r#""Inability to pay some fees (e.g. account balance too low)""#),
        );
        assert!(matches!(
            classify_pool(&node),
            Some(SettlementError::InsufficientFunds(_))
        ));
        // chopsticks: the variant as JSON in the message.
        let chopsticks = user(1010, r#"{"invalid":{"payment":null}}"#, None);
        assert!(matches!(
            classify_pool(&chopsticks),
            Some(SettlementError::InsufficientFunds(_))
        ));
        let bad_proof = user(1010, r#"{"invalid":{"badProof":null}}"#, None);
        match classify_pool(&bad_proof) {
            Some(SettlementError::Invalid(m)) => assert!(m.contains("badProof"), "{m}"),
            other => panic!("{other:?}"),
        }
        let stale = user(
            1010,
            "Invalid Transaction",
            Some(r#""Transaction is outdated""#),
        );
        match classify_pool(&stale) {
            Some(SettlementError::Invalid(m)) => assert!(m.contains("outdated"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Not a pool refusal.
        assert!(classify_pool(&user(-32601, "Method not found", None)).is_none());
    }
}
