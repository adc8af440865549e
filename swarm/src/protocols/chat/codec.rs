//! The `/vilokanam/chat-history/1` request-response codec: one request and
//! one response per substream, each read up to its cap plus one byte (an
//! oversized message is refused without buffering more).

use std::io;

use futures::{AsyncRead, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use super::wire::{HistoryRequest, HistoryResponse, MAX_HISTORY_REQUEST, MAX_HISTORY_RESPONSE};
use crate::protocols::live::codec::read_limited;

/// Protocol name.
pub const HISTORY_PROTOCOL: StreamProtocol = StreamProtocol::new("/vilokanam/chat-history/1");

/// The codec.
#[derive(Clone, Copy, Debug, Default)]
pub struct HistoryCodec;

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl libp2p::request_response::Codec for HistoryCodec {
    type Protocol = StreamProtocol;
    type Request = HistoryRequest;
    type Response = HistoryResponse;

    async fn read_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<HistoryRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let buf = read_limited(io, MAX_HISTORY_REQUEST).await?;
        HistoryRequest::decode(&buf).map_err(invalid)
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<HistoryResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let buf = read_limited(io, MAX_HISTORY_RESPONSE).await?;
        HistoryResponse::decode(&buf).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: HistoryRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&req.encode()).await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: HistoryResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&res.encode()).await?;
        io.close().await
    }
}
