//! `vilokanam account`, `vilokanam chain` and `vilokanam channel`: the
//! node's chain account and its tick-stream payment channels.
//!
//! The chain is reached through the embedded light client when a chain
//! spec is configured (`--chain-spec`, or `chain_spec` in `config.toml`),
//! else through a node's RPC endpoint (`--chain-rpc`, `chain_rpc`, default
//! `ws://127.0.0.1:9944`, where `scripts/dev-chain.sh` listens).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand};
use vilokanam_chain::account;
use vilokanam_chain::{
    format_amount, Balance, ChannelId, ChannelInfo, Endpoint, OpenTerms, PayeeInfo, Settlement,
};

use crate::config::NodeConfig;

/// Blocks a channel stays open by default (24 h of 6 s blocks).
pub const DEFAULT_EXPIRY_BLOCKS: u32 = 14_400;

/// Where the node's data and the chain are.
#[derive(Args, Clone, Debug)]
pub struct ChainArgs {
    /// Data directory (identity key, account key, database).
    #[arg(long, env = "VILOKANAM_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// TOML configuration file (default: `config.toml` in the data dir, if present).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// A chain node's websocket RPC, e.g. `ws://127.0.0.1:9944`.
    #[arg(long, env = "VILOKANAM_CHAIN_RPC", global = true)]
    pub chain_rpc: Option<String>,
    /// Raw chain spec with boot nodes: reach the chain through the embedded
    /// light client (the default whenever a spec is configured).
    #[arg(
        long,
        env = "VILOKANAM_CHAIN_SPEC",
        global = true,
        conflicts_with = "chain_rpc"
    )]
    pub chain_spec: Option<PathBuf>,
}

impl ChainArgs {
    /// The data directory (default: the platform data dir + `vilokanam`).
    pub fn data_dir(&self) -> Result<PathBuf> {
        resolve_data_dir(self.data_dir.clone())
    }

    /// The configuration file's settings (defaults if there is none). A
    /// relative `chain_spec` is taken relative to the file's directory.
    fn config(&self) -> Result<NodeConfig> {
        let file = match &self.config {
            Some(f) => Some(f.clone()),
            None => {
                let p = self.data_dir()?.join("config.toml");
                p.exists().then_some(p)
            }
        };
        let Some(file) = file else {
            return Ok(NodeConfig::default());
        };
        let mut config = NodeConfig::from_file(&file)?;
        if let (Some(spec), Some(dir)) = (&config.chain_spec, file.parent()) {
            if spec.is_relative() {
                config.chain_spec = Some(dir.join(spec));
            }
        }
        Ok(config)
    }

    /// The endpoint: flags, then config file; a spec means the light client.
    pub fn endpoint(&self) -> Result<Endpoint> {
        let config = self.config()?;
        if let Some(url) = &self.chain_rpc {
            return Ok(Endpoint::Rpc(url.clone()));
        }
        if let Some(spec) = self.chain_spec.as_ref().or(config.chain_spec.as_ref()) {
            let text = std::fs::read_to_string(spec)
                .with_context(|| format!("reading chain spec {}", spec.display()))?;
            return Ok(Endpoint::LightClient(text));
        }
        Ok(Endpoint::Rpc(config.chain_rpc))
    }

    /// Connects to the chain.
    pub async fn connect(&self) -> Result<Settlement> {
        let endpoint = self.endpoint()?;
        Settlement::connect(&endpoint)
            .await
            .with_context(|| format!("connecting to the chain ({endpoint})"))
    }

    /// The stored account's key; a clear error if there is none.
    pub fn keypair(&self) -> Result<subxt_signer::sr25519::Keypair> {
        let dir = self.data_dir()?;
        let uri = vilokanam_storage::load_account(&dir)?.with_context(|| {
            format!(
                "no chain account in {}: run `vilokanam account new` or `vilokanam account import <seed phrase or //Alice>`",
                dir.display()
            )
        })?;
        account::keypair(&uri).context("the stored account key is not usable")
    }
}

/// A paid stream's terms for `publish --price`: the payee given (checked)
/// or this node's chain account, and the genesis hash given (checked) or
/// read from the configured chain.
pub async fn offer(
    args: &ChainArgs,
    price_per_sec: Balance,
    payee: Option<String>,
    genesis: Option<String>,
) -> Result<vilokanam_api::OfferInfo> {
    let payee =
        match payee {
            Some(p) => account::parse_address(&p).context("--payee")?,
            None => account::account_id(&args.keypair().context(
                "a paid stream needs a payout account: pass --payee <SS58> or create one",
            )?),
        };
    let genesis = match genesis {
        Some(g) => crate::node::offer::parse_genesis(&g)
            .map(|h| format!("0x{}", hex::encode(h)))
            .map_err(anyhow::Error::msg)
            .context("--genesis")?,
        None => {
            let chain = args
                .connect()
                .await
                .context("reading the settlement chain's genesis hash (or pass --genesis 0x…)")?;
            format!("0x{}", hex::encode(chain.genesis()))
        }
    };
    Ok(vilokanam_api::OfferInfo {
        price_per_sec: price_per_sec.to_string(),
        payee: payee.to_string(),
        genesis,
        epoch_secs: vilokanam_api::DEFAULT_EPOCH_SECS,
        key_servers: vec![],
    })
}

/// The data directory: `--data-dir`, else the platform's data dir.
pub fn resolve_data_dir(given: Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(d) => Ok(d),
        None => Ok(dirs::data_dir()
            .context("no XDG data directory; pass --data-dir")?
            .join("vilokanam")),
    }
}

/// `vilokanam account ...`
#[derive(Subcommand, Clone, Debug)]
pub enum AccountCmd {
    /// Show the account's address and balance (the default).
    Show {
        /// Do not contact the chain; print the address only.
        #[arg(long)]
        offline: bool,
    },
    /// Create a new account from a fresh 12-word seed phrase.
    New {
        /// Replace an existing account.
        #[arg(long)]
        force: bool,
    },
    /// Store an account from a seed phrase or dev URI (`//Alice`). Without
    /// the argument (or with `-`) it is read from stdin, which keeps a real
    /// seed phrase out of `ps` and shell history.
    Import {
        /// Seed phrase (optionally with `//derivation` and `///password`) or dev URI.
        secret_uri: Option<String>,
        /// Replace an existing account.
        #[arg(long)]
        force: bool,
    },
}

/// `vilokanam chain ...`
#[derive(Subcommand, Clone, Debug)]
pub enum ChainCmd {
    /// Chain name, genesis hash, finalized block, runtime version, open channels.
    Status,
}

/// `vilokanam channel ...`
#[derive(Subcommand, Clone, Debug)]
pub enum ChannelCmd {
    /// Open a channel: one deposit that pays the `--payee`s named now and
    /// up to `--max-payees` in all, with vouchers signed by this node's key.
    Open {
        /// A payee named now (SS58 address; repeat for several). Each may
        /// be owed up to the deposit.
        #[arg(long = "payee", required = true)]
        payees: Vec<String>,
        /// Deposit held for the channel (`1TICK`, or planck).
        #[arg(long, value_parser = amount)]
        deposit: Balance,
        /// Most payees in all (default: the named ones). Payees not named
        /// bind with their first claim.
        #[arg(long)]
        max_payees: Option<u32>,
        /// Most a payee not named may be owed (default 0).
        #[arg(long, value_parser = amount, default_value = "0")]
        payee_cap: Balance,
        /// Collateral held beside the deposit (default: the least the
        /// chain accepts, `named·deposit + late·cap - deposit`). Burned if
        /// claims ever exceed the deposit.
        #[arg(long, value_parser = amount)]
        collateral: Option<Balance>,
        /// Blocks until the payer may close (6 s each).
        #[arg(long, default_value_t = DEFAULT_EXPIRY_BLOCKS)]
        expires_in: u32,
    },
    /// Add to a channel's deposit (and collateral).
    TopUp {
        /// Channel id.
        channel: ChannelId,
        /// Deposit to add (`1TICK`, or planck).
        #[arg(value_parser = amount)]
        amount: Balance,
        /// Collateral to add.
        #[arg(long, value_parser = amount, default_value = "0")]
        collateral: Balance,
    },
    /// Move a channel's expiry to `--expires-in` blocks from now.
    Extend {
        /// Channel id.
        channel: ChannelId,
        /// Blocks from now.
        #[arg(long, default_value_t = DEFAULT_EXPIRY_BLOCKS)]
        expires_in: u32,
    },
    /// Close a channel (payer: after expiry; the only payee of a
    /// single-payee channel: any time).
    Close {
        /// Channel id.
        channel: ChannelId,
    },
    /// List channels this account pays or is paid by (`--all`: every channel).
    List {
        /// Every open channel on the chain.
        #[arg(long)]
        all: bool,
    },
}

/// Runs `vilokanam account`.
pub async fn account(args: &ChainArgs, cmd: AccountCmd) -> Result<()> {
    let dir = args.data_dir()?;
    match cmd {
        AccountCmd::New { force } => {
            let phrase = account::generate_phrase();
            let key = account::keypair(&phrase)?;
            let path = vilokanam_storage::store_account(&dir, &phrase, force)?;
            println!("address: {}", account::account_id(&key));
            println!("stored in {} (mode 0600)", path.display());
            eprintln!("seed phrase (write it down; it is the only backup):\n{phrase}");
            Ok(())
        }
        AccountCmd::Import { secret_uri, force } => {
            let secret_uri = match secret_uri.filter(|s| s != "-") {
                Some(s) => s,
                None => {
                    eprintln!("seed phrase or secret URI (one line):");
                    let mut line = String::new();
                    std::io::stdin()
                        .read_line(&mut line)
                        .context("reading the secret URI from stdin")?;
                    line.trim().to_owned()
                }
            };
            if secret_uri.is_empty() {
                bail!("no secret URI given");
            }
            let key = account::keypair(&secret_uri)?;
            let path = vilokanam_storage::store_account(&dir, &secret_uri, force)?;
            println!("address: {}", account::account_id(&key));
            println!("stored in {} (mode 0600)", path.display());
            Ok(())
        }
        AccountCmd::Show { offline } => {
            let key = args.keypair()?;
            let id = account::account_id(&key);
            println!("address: {id}");
            if offline {
                return Ok(());
            }
            let chain = args.connect().await?;
            let b = chain.balance(&id).await?;
            println!("free:    {}", format_amount(b.free));
            println!("held:    {}", format_amount(b.reserved));
            println!("nonce:   {}", b.nonce);
            Ok(())
        }
    }
}

/// Runs `vilokanam chain`.
pub async fn chain(args: &ChainArgs, cmd: ChainCmd) -> Result<()> {
    match cmd {
        ChainCmd::Status => {
            let chain = args.connect().await?;
            let s = chain.status().await?;
            println!("endpoint:       {}", s.endpoint);
            println!("chain:          {}", s.chain);
            println!("genesis:        0x{}", hex::encode(s.genesis));
            println!("finalized:      #{}", s.finalized);
            println!("spec version:   {}", s.spec_version);
            println!("open channels:  {}", s.open_channels);
            Ok(())
        }
    }
}

/// Runs `vilokanam channel`.
pub async fn channel(args: &ChainArgs, cmd: ChannelCmd) -> Result<()> {
    let key = args.keypair()?;
    let me = account::account_id(&key);
    let chain = args.connect().await?;
    match cmd {
        ChannelCmd::Open {
            payees,
            deposit,
            max_payees,
            payee_cap,
            collateral,
            expires_in,
        } => {
            let payees = payees
                .iter()
                .map(|p| account::parse_address(p))
                .collect::<Result<Vec<_>, _>>()?;
            let named = u32::try_from(payees.len()).context("too many payees")?;
            let node_key = node_voucher_key(&args.data_dir()?)?;
            let expires_at = expiry(&chain, expires_in).await?;
            let mut terms = OpenTerms {
                payees,
                max_payees: max_payees.unwrap_or(named),
                payee_cap,
                deposit,
                collateral: 0,
                expires_at,
            };
            if terms.max_payees < named {
                bail!(
                    "--max-payees {} is fewer than the {named} payees named",
                    terms.max_payees
                );
            }
            let required = terms
                .required_collateral()
                .context("deposit and cap too large")?;
            terms.collateral = collateral.unwrap_or(required);
            if terms.collateral < required {
                bail!(
                    "--collateral {} is below the {} these terms need ({named} named payee(s) \
                     may each be owed the deposit, {} more up to --payee-cap)",
                    format_amount(terms.collateral),
                    format_amount(required),
                    terms.max_payees - named
                );
            }
            let r = chain.open(&key, node_key, &terms).await?;
            println!("opened channel {}", r.outcome.id);
            let payees = chain.payees(r.outcome.id).await?;
            print_channel(&r.outcome, &payees, &me);
            println!("fee:            {}", format_amount(r.fee));
        }
        ChannelCmd::TopUp {
            channel,
            amount,
            collateral,
        } => {
            let r = chain.top_up(&key, channel, amount, collateral).await?;
            println!(
                "channel {channel}: deposit now {}, collateral {} (fee {})",
                format_amount(r.outcome.0),
                format_amount(r.outcome.1),
                format_amount(r.fee)
            );
        }
        ChannelCmd::Extend {
            channel,
            expires_in,
        } => {
            let expires_at = expiry(&chain, expires_in).await?;
            let r = chain.extend(&key, channel, expires_at).await?;
            println!(
                "channel {channel}: expires at block #{expires_at} (fee {})",
                format_amount(r.fee)
            );
        }
        ChannelCmd::Close { channel } => {
            let r = chain.close(&key, channel).await?;
            println!(
                "closed channel {channel}: paid {} to its payees, refunded {}, burned {} (fee {})",
                format_amount(r.outcome.paid),
                format_amount(r.outcome.refunded),
                format_amount(r.outcome.slashed),
                format_amount(r.fee)
            );
        }
        ChannelCmd::List { all } => {
            let mut shown = 0;
            for c in chain.channels().await? {
                let payees = chain.payees(c.id).await?;
                if all || c.payer == me || payees.iter().any(|p| p.payee == me) {
                    println!("channel {}", c.id);
                    print_channel(&c, &payees, &me);
                    shown += 1;
                }
            }
            if shown == 0 {
                println!("no open channels");
            }
        }
    }
    Ok(())
}

/// Parses an amount for clap (`1.5TICK`, or planck).
fn amount(s: &str) -> Result<Balance, String> {
    vilokanam_chain::parse_amount(s).map_err(|e| e.to_string())
}

/// The node's voucher key (what signs its payments).
fn node_voucher_key(data_dir: &Path) -> Result<[u8; 32]> {
    let keys = vilokanam_storage::load_or_create_keys(data_dir)
        .with_context(|| format!("loading the node's keys from {}", data_dir.display()))?;
    Ok(keys.voucher.verifying_key().to_bytes())
}

async fn expiry(chain: &Settlement, blocks: u32) -> Result<u32> {
    if blocks == 0 {
        bail!("--expires-in must be at least 1 block");
    }
    let now = u32::try_from(chain.finalized_number().await?).context("block number")?;
    now.checked_add(blocks).context("--expires-in too large")
}

fn print_channel(c: &ChannelInfo, payees: &[PayeeInfo], me: &vilokanam_chain::AccountId) {
    let role = |who: &vilokanam_chain::AccountId| if who == me { " (you)" } else { "" };
    println!("  payer:          {}{}", c.payer, role(&c.payer));
    for p in payees {
        println!(
            "  payee:          {}{} claimed {}{}",
            p.payee,
            role(&p.payee),
            format_amount(p.claimed),
            if p.named { "" } else { " (late, capped)" }
        );
    }
    println!(
        "  payees:         {} of {} bound; late payees capped at {}",
        c.bound_payees,
        c.max_payees,
        format_amount(c.payee_cap)
    );
    println!("  voucher key:    {}", hex::encode(c.voucher_key));
    println!("  deposit:        {}", format_amount(c.deposit));
    println!("  collateral:     {}", format_amount(c.collateral));
    println!(
        "  paid:           {}{}",
        format_amount(c.paid),
        if c.overdrawn() {
            " (OVERDRAWN: the payer signed more than its deposit)"
        } else {
            ""
        }
    );
    println!("  expires at:     #{}", c.expires_at);
}
