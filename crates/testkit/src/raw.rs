//! Calls with bytes the client chose: what a broken or hostile client sends.

use bytes::{Buf, BufMut};
use tonic::Status;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::transport::Channel;

/// Sends `body` as the message of the unary RPC `path`
/// (`/cx.journey.v1.JourneyService/IngestTouchpoints`) and returns the
/// answer's bytes.
pub async fn call(channel: Channel, path: &'static str, body: Vec<u8>, token: &str) -> Result<Vec<u8>, Status> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(usize::MAX);
    grpc.ready().await.map_err(|e| Status::unavailable(e.to_string()))?;
    let request = crate::authed(body, token);
    let path = http::uri::PathAndQuery::from_static(path);
    grpc.unary(request, path, RawCodec).await.map(tonic::Response::into_inner)
}

/// Passes message bytes through untouched, both ways.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawCodec;

impl Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, buf: &mut EncodeBuf<'_>) -> Result<(), Status> {
        buf.put_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let n = buf.remaining();
        Ok(Some(buf.copy_to_bytes(n).to_vec()))
    }
}

/// A delivery as a forger writes it: a new message id, and a `source` that
/// claims to be the profile service (receivers must ignore it).
pub fn forged_delivery(destination: &str, kind: &str, payload: Vec<u8>) -> cx_proto::outbox::v1::DeliverRequest {
    cx_proto::outbox::v1::DeliverRequest {
        message_id: uuid::Uuid::now_v7().to_string(),
        kind: kind.into(),
        payload,
        source: "profile".into(),
        create_time: None,
        destination: destination.into(),
    }
}
