//! The long-running node: keys, store, node services and HTTP API, wired
//! together and shut down cleanly on SIGINT/SIGTERM. It only composes;
//! the behaviour lives in [`crate::node`] and [`crate::http`].

use std::path::PathBuf;

use anyhow::{Context, Result};
use tracing::info;
use vilokanam_api::OutputEvent;
use vilokanam_storage::Store;

use crate::config::NodeConfig;
use crate::node::Node;

/// Runs the daemon with `config` (already validated) until SIGINT/SIGTERM,
/// or until the parent process exits if `exit_with_parent` (see
/// `vilokanam daemon --exit-with-parent`).
pub async fn run(data_dir: PathBuf, config: NodeConfig, exit_with_parent: bool) -> Result<()> {
    let keys = vilokanam_storage::load_or_create_keys(&data_dir)
        .with_context(|| format!("loading keys from {}", data_dir.display()))?;
    let store = Store::open(&data_dir)
        .with_context(|| format!("opening the database in {}", data_dir.display()))?;
    let listener = crate::http::bind(config.api, config.http_max_connections)
        .await
        .with_context(|| format!("binding the HTTP API on {}", config.api))?;
    let api_addr = axum::serve::Listener::local_addr(&listener)?;
    // The chain for paid streams: the configured endpoint and the node's
    // account, if it has one. Nothing connects until a paid stream needs it.
    let endpoint = match &config.chain_spec {
        Some(spec) => vilokanam_chain::Endpoint::LightClient(
            std::fs::read_to_string(spec)
                .with_context(|| format!("reading chain_spec {}", spec.display()))?,
        ),
        None => vilokanam_chain::Endpoint::Rpc(config.chain_rpc.clone()),
    };
    let account = vilokanam_storage::load_account(&data_dir)
        .with_context(|| format!("loading the chain account in {}", data_dir.display()))?;
    let chain = crate::node::payments::ChainAccess { endpoint, account };
    let node = Node::spawn_with_chain(config, keys, store, Some(chain))
        .await
        .context("starting the node")?;
    let id = node.identity().clone();
    info!(api = %api_addr, peer = %id.peer_id, creator = %id.creator_key, "daemon ready");
    // One JSON line on stdout: how scripts and the testnet find the node.
    OutputEvent::Ready {
        api: api_addr.to_string(),
        peer_id: id.peer_id.to_string(),
        creator_key: id.creator_key.clone(),
        listen: node.listen_addrs(),
    }
    .print();
    crate::http::serve(listener, node.clone(), shutdown_signal(exit_with_parent))
        .await
        .context("HTTP API server")?;
    info!("shutting down");
    node.shutdown().await.context("stopping the node")?;
    info!("stopped");
    Ok(())
}

async fn shutdown_signal(exit_with_parent: bool) {
    tokio::select! {
        _ = signal() => {}
        _ = parent_exit(), if exit_with_parent => info!("the parent process exited"),
    }
}

/// Returns once this process's parent is gone (it was re-parented).
async fn parent_exit() {
    #[cfg(unix)]
    {
        let parent = std::os::unix::process::parent_id();
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
        while std::os::unix::process::parent_id() == parent {
            tick.tick().await;
        }
    }
    #[cfg(not(unix))]
    std::future::pending::<()>().await
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
