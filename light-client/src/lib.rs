//! Embedded smoldot light client.
//!
//! Not built yet (issue #3): this crate will start subxt's smoldot light
//! client from a chain spec so a node can settle payments without a full
//! node or a trusted RPC endpoint.
