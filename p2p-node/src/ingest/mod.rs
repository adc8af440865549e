//! Ingest: turning a creator's MPEG-TS into keyframe-aligned chunks.
pub mod publish;
pub mod ts;
