//! The Vilokanam runtime's wasm, as built by this crate's build script:
//! [`WASM_BINARY`] is the compact, compressed blob a chain spec puts in
//! `:code`. `None` when the build ran with `SKIP_WASM_BUILD=1`.
#![deny(missing_docs)]

include!(concat!(env!("OUT_DIR"), "/wasm_binary.rs"));
