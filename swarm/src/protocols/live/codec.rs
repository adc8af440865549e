//! The `/vilokanam/chunk/5` request-response codec (version 4 added the
//! bandwidth market's `Terms` and `Pay` requests, version 5 parts).
//!
//! One request and one response per substream, each the whole remaining
//! stream (the writer closes after writing). Reads are capped at the
//! message kind's limit plus one byte, so an oversized message is detected
//! without buffering more than the limit.

use std::io;

use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use super::wire::{ChunkRequest, ChunkResponse, MAX_REQUEST, MAX_RESPONSE};

/// Protocol name of chunk exchange.
pub const CHUNK_PROTOCOL: StreamProtocol = StreamProtocol::new("/vilokanam/chunk/5");

/// Codec for [`ChunkRequest`] / [`ChunkResponse`].
#[derive(Clone, Copy, Debug, Default)]
pub struct ChunkCodec;

/// Reads the whole stream, failing if it exceeds `limit` bytes.
pub async fn read_limited<T: AsyncRead + Unpin + Send>(
    io: &mut T,
    limit: usize,
) -> io::Result<Vec<u8>> {
    let mut buf = Vec::new();
    io.take(limit as u64 + 1).read_to_end(&mut buf).await?;
    if buf.len() > limit {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("message exceeds the {limit}-byte limit"),
        ));
    }
    Ok(buf)
}

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl libp2p::request_response::Codec for ChunkCodec {
    type Protocol = StreamProtocol;
    type Request = ChunkRequest;
    type Response = ChunkResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<ChunkRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let buf = read_limited(io, MAX_REQUEST).await?;
        ChunkRequest::decode(&buf).map_err(invalid)
    }

    async fn read_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
    ) -> io::Result<ChunkResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let buf = read_limited(io, MAX_RESPONSE).await?;
        ChunkResponse::decode(Bytes::from(buf)).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: ChunkRequest,
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
        res: ChunkResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&res.encode()).await?;
        io.close().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use libp2p::request_response::Codec;

    #[tokio::test]
    async fn oversized_response_is_refused() {
        let big = vec![1u8; MAX_RESPONSE + 10];
        let mut io = futures::io::Cursor::new(big);
        let err = ChunkCodec
            .read_response(&CHUNK_PROTOCOL, &mut io)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("limit"), "{err}");
    }

    #[tokio::test]
    async fn oversized_request_is_refused() {
        let mut io = futures::io::Cursor::new(vec![1u8; MAX_REQUEST + 1]);
        assert!(ChunkCodec
            .read_request(&CHUNK_PROTOCOL, &mut io)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn request_round_trips_through_codec() {
        let req = ChunkRequest::ByCid(crate::wire::ChunkCid::of(b"x"));
        let mut out = futures::io::Cursor::new(Vec::new());
        ChunkCodec
            .write_request(&CHUNK_PROTOCOL, &mut out, req.clone())
            .await
            .unwrap();
        let mut input = futures::io::Cursor::new(out.into_inner());
        assert_eq!(
            ChunkCodec
                .read_request(&CHUNK_PROTOCOL, &mut input)
                .await
                .unwrap(),
            req
        );
    }
}
