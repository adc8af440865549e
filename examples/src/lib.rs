//! Examples of using the Vilokanam crates; see `sign_chunk.rs`.
