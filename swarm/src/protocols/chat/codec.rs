//! The `/vilokanam/chat-history/1` request-response codec: the shared
//! [`LimitedCodec`] (one request and one response per substream, each read
//! up to its cap plus one byte) over the history messages.

use libp2p::StreamProtocol;

use super::wire::{HistoryRequest, HistoryResponse, MAX_HISTORY_REQUEST, MAX_HISTORY_RESPONSE};
use crate::protocols::live::codec::{LimitedCodec, WireMessage};
use crate::protocols::live::wire::WireError;

/// Protocol name.
pub const HISTORY_PROTOCOL: StreamProtocol = StreamProtocol::new("/vilokanam/chat-history/1");

/// The codec.
pub type HistoryCodec = LimitedCodec<HistoryRequest, HistoryResponse>;

impl WireMessage for HistoryRequest {
    const LIMIT: usize = MAX_HISTORY_REQUEST;
    fn to_wire(&self) -> Vec<u8> {
        self.encode()
    }
    fn from_wire(buf: Vec<u8>) -> Result<Self, WireError> {
        Self::decode(&buf)
    }
}

impl WireMessage for HistoryResponse {
    const LIMIT: usize = MAX_HISTORY_RESPONSE;
    fn to_wire(&self) -> Vec<u8> {
        self.encode()
    }
    fn from_wire(buf: Vec<u8>) -> Result<Self, WireError> {
        Self::decode(&buf)
    }
}
