//! WebSocket frames around the NATS byte stream: the decoder for client frames and the
//! encoder for server frames. Header coding and masking are soketto's (`base::Codec`),
//! permessage-deflate is flate2's raw deflate (RFC 7692: sync flush, trailing
//! `00 00 ff ff` removed, no context takeover); this module decides what a NATS server
//! does with each frame. Synchronous and socket-free, so the fuzz target
//! and the proptest run exactly the code the connection runs.

use bytes::{Buf, BytesMut};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use soketto::base::{Codec, Header, OpCode};

/// Server frames whose payload is at least this long are compressed (nats-server:
/// small frames such as `PONG` go out as they are).
const COMPRESS_MIN: usize = 64;

/// Close status codes (RFC 6455 §7.4.1) nats-server uses.
pub mod status {
    pub const NORMAL: u16 = 1000;
    pub const PROTOCOL_ERROR: u16 = 1002;
    pub const TOO_BIG: u16 = 1009;
}

/// A control frame from the client the connection must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Control {
    /// Answer with a PONG carrying the same bytes.
    Ping(Vec<u8>),
    /// The client closed (status code, when it gave one).
    Close(Option<u16>),
}

/// Why the client's frames cannot be read any further; the connection closes with
/// `status`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrameError {
    pub status: u16,
    pub reason: String,
}

fn frame_err(status: u16, reason: impl Into<String>) -> FrameError {
    FrameError {
        status,
        reason: reason.into(),
    }
}

/// RFC 7692 §7.2.1: the empty stored block a sync flush ends with, stripped on the wire.
const DEFLATE_TAIL: [u8; 4] = [0, 0, 0xff, 0xff];

/// Inflates one message (no context takeover: a fresh state each time), refusing to
/// grow past `limit` bytes.
pub fn inflate(data: &[u8], limit: usize) -> Result<Vec<u8>, String> {
    let mut d = Decompress::new(false);
    let mut input = Vec::with_capacity(data.len() + 4);
    input.extend_from_slice(data);
    input.extend_from_slice(&DEFLATE_TAIL);
    let mut out = Vec::with_capacity((data.len() * 4).clamp(64, limit.max(64)));
    loop {
        let consumed = d.total_in() as usize;
        let produced = out.len();
        if out.len() == out.capacity() {
            out.reserve(out.capacity().max(1024));
        }
        let status = d
            .decompress_vec(&input[consumed..], &mut out, FlushDecompress::Sync)
            .map_err(|e| e.to_string())?;
        if out.len() > limit {
            return Err("inflated message too large".into());
        }
        let done = d.total_in() as usize == input.len() && out.len() < out.capacity();
        if done || status == flate2::Status::StreamEnd {
            return Ok(out);
        }
        if d.total_in() as usize == consumed && out.len() == produced && out.len() < out.capacity()
        {
            return Err("incomplete deflate data".into());
        }
    }
}

/// Deflates one message as permessage-deflate wants it (tail removed).
pub fn deflate(data: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
    let mut c = Compress::new(Compression::fast(), false);
    let start = out.len();
    out.reserve(data.len() / 2 + 64);
    loop {
        let consumed = c.total_in() as usize;
        if out.len() == out.capacity() {
            out.reserve(1024);
        }
        c.compress_vec(&data[consumed..], out, FlushCompress::Sync)
            .map_err(|e| e.to_string())?;
        if c.total_in() as usize == data.len() && out.len() < out.capacity() {
            break;
        }
    }
    if !out[start..].ends_with(&DEFLATE_TAIL) {
        return Err("missing sync flush tail".into());
    }
    out.truncate(out.len() - 4);
    Ok(())
}

/// Incremental decoder of client frames: fed any split of the byte stream, it yields
/// the same NATS bytes.
pub struct FrameDecoder {
    codec: Codec,
    compress: bool,
    buf: BytesMut,
    /// A fragmented data message is in progress.
    in_message: bool,
    /// Payload of a compressed message until its last fragment.
    compressed: Option<Vec<u8>>,
    max_frame: usize,
    /// A close frame was read: nothing after it counts.
    closed: bool,
}

impl FrameDecoder {
    /// `compress`: permessage-deflate was negotiated. `max_frame`: largest payload of
    /// one frame (and of one inflated message).
    pub fn new(compress: bool, max_frame: usize) -> Self {
        let mut codec = Codec::new();
        codec.set_max_data_size(max_frame);
        if compress {
            // RSV1 marks a compressed message.
            codec.add_reserved_bits((true, false, false));
        }
        FrameDecoder {
            codec,
            compress,
            buf: BytesMut::with_capacity(8 * 1024),
            in_message: false,
            compressed: None,
            max_frame,
            closed: false,
        }
    }

    /// Decodes what `input` completes: data payloads are appended to `out` (the NATS
    /// stream), control frames to `ctrl`. Stops at the first close frame.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        ctrl: &mut Vec<Control>,
    ) -> Result<(), FrameError> {
        if self.closed {
            return Ok(());
        }
        self.buf.extend_from_slice(input);
        loop {
            let (header, offset) = match self.codec.decode_header(&self.buf) {
                Ok(soketto::Parsing::Done { value, offset }) => (value, offset),
                Ok(soketto::Parsing::NeedMore(_)) => return Ok(()),
                Err(soketto::base::Error::PayloadTooLarge { .. }) => {
                    return Err(frame_err(status::TOO_BIG, "frame too large"))
                }
                Err(e) => return Err(frame_err(status::PROTOCOL_ERROR, e.to_string())),
            };
            let len = header.payload_len();
            if self.buf.len() < offset + len {
                return Ok(());
            }
            if !header.is_masked() {
                return Err(frame_err(status::PROTOCOL_ERROR, "mask bit missing"));
            }
            self.buf.advance(offset);
            let mut payload = self.buf.split_to(len);
            Codec::apply_mask(&header, &mut payload);
            if let Some(c) = self.frame(&header, &payload, out)? {
                let close = matches!(c, Control::Close(_));
                ctrl.push(c);
                if close {
                    self.closed = true;
                    self.buf.clear();
                    return Ok(());
                }
            }
        }
    }

    fn frame(
        &mut self,
        header: &Header,
        payload: &[u8],
        out: &mut Vec<u8>,
    ) -> Result<Option<Control>, FrameError> {
        match header.opcode() {
            OpCode::Ping => return Ok(Some(Control::Ping(payload.to_vec()))),
            OpCode::Pong => return Ok(None),
            OpCode::Close => {
                let code =
                    (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                return Ok(Some(Control::Close(code)));
            }
            OpCode::Text | OpCode::Binary => {
                if self.in_message {
                    return Err(frame_err(
                        status::PROTOCOL_ERROR,
                        "new message started before final frame for previous message was received",
                    ));
                }
                self.in_message = !header.is_fin();
                if header.is_rsv1() {
                    self.compressed = Some(Vec::new());
                }
            }
            OpCode::Continue => {
                if !self.in_message {
                    return Err(frame_err(
                        status::PROTOCOL_ERROR,
                        "invalid continuation frame",
                    ));
                }
                if header.is_rsv1() {
                    return Err(frame_err(
                        status::PROTOCOL_ERROR,
                        "compressed bit set on continuation frame",
                    ));
                }
                self.in_message = !header.is_fin();
            }
            _ => return Err(frame_err(status::PROTOCOL_ERROR, "unknown opcode")),
        }
        let Some(acc) = &mut self.compressed else {
            // Plain data: the NATS stream does not care where frames end.
            out.extend_from_slice(payload);
            return Ok(None);
        };
        if acc.len() + payload.len() > self.max_frame {
            return Err(frame_err(status::TOO_BIG, "compressed message too large"));
        }
        acc.extend_from_slice(payload);
        if self.in_message {
            return Ok(None);
        }
        let data = self.compressed.take().unwrap_or_default();
        if !self.compress {
            return Err(frame_err(
                status::PROTOCOL_ERROR,
                "compression not negotiated",
            ));
        }
        let plain = inflate(&data, self.max_frame)
            .map_err(|e| frame_err(status::PROTOCOL_ERROR, format!("decompression: {e}")))?;
        out.extend_from_slice(&plain);
        Ok(None)
    }
}

/// Encoder of server frames: binary, FIN set, unmasked; compressed when negotiated and
/// the payload is large enough.
pub struct FrameEncoder {
    codec: Codec,
    compress: bool,
    scratch: Vec<u8>,
}

impl FrameEncoder {
    pub fn new(compress: bool) -> Self {
        let mut codec = Codec::new();
        if compress {
            codec.add_reserved_bits((true, false, false));
        }
        FrameEncoder {
            codec,
            compress,
            scratch: Vec::new(),
        }
    }

    /// Appends one frame carrying `data` to `out`.
    pub fn encode(&mut self, opcode: OpCode, data: &[u8], out: &mut Vec<u8>) {
        let mut header = Header::new(opcode);
        header.set_fin(true);
        let mut payload = data;
        if self.compress && opcode == OpCode::Binary && data.len() >= COMPRESS_MIN {
            self.scratch.clear();
            // On a (not expected) deflate error the frame goes out uncompressed.
            if deflate(data, &mut self.scratch).is_ok() {
                header.set_rsv1(true);
                payload = &self.scratch;
            }
        }
        header.set_payload_len(payload.len());
        out.extend_from_slice(self.codec.encode_header(&header));
        out.extend_from_slice(payload);
    }

    /// A close frame with `code` and a reason text (cut to fit a control frame).
    pub fn close(&mut self, code: u16, reason: &str, out: &mut Vec<u8>) {
        let mut body = code.to_be_bytes().to_vec();
        let mut r = reason;
        while r.len() > 123 {
            let mut cut = 123.min(r.len());
            while !r.is_char_boundary(cut) {
                cut -= 1;
            }
            r = &r[..cut];
        }
        body.extend_from_slice(r.as_bytes());
        self.encode(OpCode::Close, &body, out);
    }
}

/// Masks `payload` as a client would (tests and the bench's client side).
pub fn client_frame(opcode: OpCode, payload: &[u8], mask: u32, out: &mut Vec<u8>) {
    let mut codec = Codec::new();
    codec.set_max_data_size(usize::MAX >> 1);
    let mut header = Header::new(opcode);
    header
        .set_fin(true)
        .set_masked(true)
        .set_mask(mask)
        .set_payload_len(payload.len());
    out.extend_from_slice(codec.encode_header(&header));
    let start = out.len();
    out.extend_from_slice(payload);
    Codec::apply_mask(&header, &mut out[start..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_frames_any_split() {
        let mut wire = Vec::new();
        client_frame(OpCode::Binary, b"PUB a 2\r\nhi\r\n", 0x1234_5678, &mut wire);
        client_frame(OpCode::Ping, b"x", 7, &mut wire);
        client_frame(OpCode::Text, b"PING\r\n", 9, &mut wire);
        for split in 0..wire.len() {
            let mut d = FrameDecoder::new(false, 1 << 20);
            let (mut out, mut ctrl) = (Vec::new(), Vec::new());
            d.feed(&wire[..split], &mut out, &mut ctrl).unwrap();
            d.feed(&wire[split..], &mut out, &mut ctrl).unwrap();
            assert_eq!(out, b"PUB a 2\r\nhi\r\nPING\r\n");
            assert_eq!(ctrl, vec![Control::Ping(b"x".to_vec())]);
        }
    }

    #[test]
    fn compressed_roundtrip_and_limits() {
        // The server encoder's deflate output decodes with the same extension.
        let mut enc = FrameEncoder::new(true);
        let msg = b"PUB foo 100\r\n".repeat(10);
        let mut frame = Vec::new();
        enc.encode(OpCode::Binary, &msg, &mut frame);
        assert_eq!(frame[0], 0xc2, "FIN + RSV1 + binary");
        // Re-mask it as a client frame with RSV1 kept.
        let mut codec = Codec::new();
        codec.add_reserved_bits((true, false, false));
        let (h, off) = match codec.decode_header(&frame).unwrap() {
            soketto::Parsing::Done { value, offset } => (value, offset),
            _ => panic!("incomplete"),
        };
        let mut h2 = h.clone();
        h2.set_masked(true).set_mask(42);
        let mut wire = codec.encode_header(&h2).to_vec();
        let start = wire.len();
        wire.extend_from_slice(&frame[off..]);
        Codec::apply_mask(&h2, &mut wire[start..]);
        let mut d = FrameDecoder::new(true, 1 << 20);
        let (mut out, mut ctrl) = (Vec::new(), Vec::new());
        d.feed(&wire, &mut out, &mut ctrl).unwrap();
        assert_eq!(out, msg);

        let mut big = vec![0x82, 0xff];
        big.extend_from_slice(&(1u64 << 40).to_be_bytes());
        let mut d = FrameDecoder::new(false, 1 << 20);
        assert_eq!(
            d.feed(&big, &mut out, &mut ctrl).unwrap_err().status,
            status::TOO_BIG
        );
        let mut d = FrameDecoder::new(false, 1 << 20);
        assert_eq!(
            d.feed(&[0x82, 0x01, b'x'], &mut out, &mut ctrl)
                .unwrap_err()
                .reason,
            "mask bit missing"
        );
    }
}
