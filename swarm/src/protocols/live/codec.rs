//! The `/vilokanam/chunk/5` request-response codec (version 4 added the
//! bandwidth market's `Terms` and `Pay` requests, version 5 parts).
//!
//! One request and one response per substream, each the whole remaining
//! stream (the writer closes after writing). Reads are capped at the
//! message kind's limit plus one byte, so an oversized message is detected
//! without buffering more than the limit.

use std::io;
use std::marker::PhantomData;

use bytes::Bytes;
use futures::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use super::wire::{ChunkRequest, ChunkResponse, WireError, MAX_REQUEST, MAX_RESPONSE};

/// Protocol name of chunk exchange.
pub const CHUNK_PROTOCOL: StreamProtocol = StreamProtocol::new("/vilokanam/chunk/5");

/// A message of a request-response protocol: its size cap and its bytes.
pub trait WireMessage: Sized + Send + 'static {
    /// The most bytes one message may take on the wire.
    const LIMIT: usize;
    /// Encodes for sending.
    fn to_wire(&self) -> Vec<u8>;
    /// Decodes (and checks) what was read, at most [`Self::LIMIT`] bytes.
    fn from_wire(buf: Vec<u8>) -> Result<Self, WireError>;
}

/// A request-response codec of one request and one response per
/// substream, each read up to its cap (plus one byte, to detect more).
/// The chunk exchange and the chat history use it.
pub struct LimitedCodec<Req, Resp>(PhantomData<fn() -> (Req, Resp)>);

impl<Req, Resp> Default for LimitedCodec<Req, Resp> {
    fn default() -> Self {
        LimitedCodec(PhantomData)
    }
}

impl<Req, Resp> Clone for LimitedCodec<Req, Resp> {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// Codec for [`ChunkRequest`] / [`ChunkResponse`].
pub type ChunkCodec = LimitedCodec<ChunkRequest, ChunkResponse>;

impl WireMessage for ChunkRequest {
    const LIMIT: usize = MAX_REQUEST;
    fn to_wire(&self) -> Vec<u8> {
        self.encode()
    }
    fn from_wire(buf: Vec<u8>) -> Result<Self, WireError> {
        Self::decode(&buf)
    }
}

impl WireMessage for ChunkResponse {
    const LIMIT: usize = MAX_RESPONSE;
    fn to_wire(&self) -> Vec<u8> {
        self.encode()
    }
    fn from_wire(buf: Vec<u8>) -> Result<Self, WireError> {
        Self::decode(Bytes::from(buf))
    }
}

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

async fn read<M: WireMessage, T: AsyncRead + Unpin + Send>(io: &mut T) -> io::Result<M> {
    M::from_wire(read_limited(io, M::LIMIT).await?).map_err(invalid)
}

async fn write<M: WireMessage, T: AsyncWrite + Unpin + Send>(io: &mut T, m: M) -> io::Result<()> {
    io.write_all(&m.to_wire()).await?;
    io.close().await
}

impl<Req: WireMessage, Resp: WireMessage> libp2p::request_response::Codec
    for LimitedCodec<Req, Resp>
{
    type Protocol = StreamProtocol;
    type Request = Req;
    type Response = Resp;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Req>
    where
        T: AsyncRead + Unpin + Send,
    {
        read(io).await
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<Resp>
    where
        T: AsyncRead + Unpin + Send,
    {
        read(io).await
    }

    async fn write_request<T>(&mut self, _: &StreamProtocol, io: &mut T, req: Req) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write(io, req).await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: Resp,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        write(io, res).await
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
        let err = ChunkCodec::default()
            .read_response(&CHUNK_PROTOCOL, &mut io)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
        assert!(err.to_string().contains("limit"), "{err}");
    }

    #[tokio::test]
    async fn oversized_request_is_refused() {
        let mut io = futures::io::Cursor::new(vec![1u8; MAX_REQUEST + 1]);
        assert!(ChunkCodec::default()
            .read_request(&CHUNK_PROTOCOL, &mut io)
            .await
            .is_err());
    }

    #[tokio::test]
    async fn request_round_trips_through_codec() {
        let req = ChunkRequest::ByCid(crate::wire::ChunkCid::of(b"x"));
        let mut out = futures::io::Cursor::new(Vec::new());
        ChunkCodec::default()
            .write_request(&CHUNK_PROTOCOL, &mut out, req.clone())
            .await
            .unwrap();
        let mut input = futures::io::Cursor::new(out.into_inner());
        assert_eq!(
            ChunkCodec::default()
                .read_request(&CHUNK_PROTOCOL, &mut input)
                .await
                .unwrap(),
            req
        );
    }
}
