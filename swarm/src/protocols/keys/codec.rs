//! The `/vilokanam/keys/1` request-response codec: one request and one
//! response per substream, each capped ([`MAX_KEY_REQUEST`],
//! [`MAX_KEY_RESPONSE`]) before decoding.

use std::io;

use futures::{AsyncRead, AsyncWrite, AsyncWriteExt};
use libp2p::StreamProtocol;

use super::wire::{
    decode_request, decode_response, encode_request, encode_response, KeyRequest, KeyResponse,
    MAX_KEY_REQUEST, MAX_KEY_RESPONSE,
};
use crate::protocols::live::codec::read_limited;

/// Protocol name of key exchange.
pub const KEYS_PROTOCOL: StreamProtocol = StreamProtocol::new("/vilokanam/keys/1");

/// Codec for [`KeyRequest`] / [`KeyResponse`].
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyCodec;

fn invalid(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e.to_string())
}

impl libp2p::request_response::Codec for KeyCodec {
    type Protocol = StreamProtocol;
    type Request = KeyRequest;
    type Response = KeyResponse;

    async fn read_request<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<KeyRequest>
    where
        T: AsyncRead + Unpin + Send,
    {
        let buf = read_limited(io, MAX_KEY_REQUEST).await?;
        decode_request(&buf).map_err(invalid)
    }

    async fn read_response<T>(&mut self, _: &StreamProtocol, io: &mut T) -> io::Result<KeyResponse>
    where
        T: AsyncRead + Unpin + Send,
    {
        let buf = read_limited(io, MAX_KEY_RESPONSE).await?;
        decode_response(&buf).map_err(invalid)
    }

    async fn write_request<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        req: KeyRequest,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&encode_request(&req).map_err(invalid)?)
            .await?;
        io.close().await
    }

    async fn write_response<T>(
        &mut self,
        _: &StreamProtocol,
        io: &mut T,
        res: KeyResponse,
    ) -> io::Result<()>
    where
        T: AsyncWrite + Unpin + Send,
    {
        io.write_all(&encode_response(&res).map_err(invalid)?)
            .await?;
        io.close().await
    }
}
