//! An in-process node with its HTTP API, for the integration tests that
//! drive it as a user would (through `ApiClient`) and look inside it
//! (through its `NodeHandle`).

#![allow(dead_code)] // each test crate uses its own part

use vilokanam::config::NodeConfig;
use vilokanam::http;
use vilokanam::node::payments::ChainAccess;
use vilokanam::node::{Node, NodeHandle};
use vilokanam_api::ApiClient;
use vilokanam_storage::Store;

/// A node and its API server on loopback.
pub struct Running {
    pub node: NodeHandle,
    pub api: ApiClient,
    pub dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// A new node in a fresh directory, without a chain.
    pub async fn start(config: NodeConfig) -> Running {
        Self::start_in(tempfile::tempdir().unwrap(), config, None).await
    }

    /// A node on the data directory `dir` (new or left by [`Running::stop`]),
    /// with the chain if given.
    pub async fn start_in(
        dir: tempfile::TempDir,
        config: NodeConfig,
        chain: Option<ChainAccess>,
    ) -> Running {
        let keys = vilokanam_storage::load_or_create_keys(dir.path()).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let listener = http::bind("127.0.0.1:0".parse().unwrap(), config.http_max_connections)
            .await
            .unwrap();
        let addr = axum::serve::Listener::local_addr(&listener).unwrap();
        let node = Node::spawn_with_chain(config, keys, store, chain)
            .await
            .unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(http::serve(listener, node.clone(), async move {
            let _ = rx.await;
        }));
        Running {
            node,
            api: ApiClient::new(&addr.to_string()),
            dir,
            stop: Some(tx),
            server,
        }
    }

    /// Stops the server and the node; returns the data directory.
    pub async fn stop(mut self) -> tempfile::TempDir {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.server).await;
        self.node.shutdown().await.unwrap();
        self.dir
    }
}
