//! STOMP codec targets: the decoder on arbitrary bytes fed whole, split in two and in small
//! chunks (all three must agree), and the decode → encode → decode round trip.

use bytes::BytesMut;
use soar_stomp::{CodecError, Command, DEFAULT_MAX_FRAME_SIZE, Frame, Item, StompCodec};
use tokio_util::codec::{Decoder, Encoder};

/// At most this many items are decoded from one input (a heart-beat costs one input byte).
const MAX_ITEMS: usize = 100_000;

/// What decoding a stream gave: its items, then how it ended (`None`: cleanly, at EOF).
#[derive(Debug, PartialEq)]
struct Decoded {
    items: Vec<Item>,
    /// The error's variant (its numbers depend on how much was buffered), if decoding failed.
    error: Option<String>,
}

fn variant(e: &CodecError) -> String {
    let debug = format!("{e:?}");
    let end = debug.find(['(', ' ', '{']).unwrap_or(debug.len());
    debug[..end].to_string()
}

/// Decodes `chunks` as they would arrive from a socket: `decode` after each read until it
/// wants more, `decode_eof` at the end.
fn decode_chunks<'a>(max: usize, chunks: impl IntoIterator<Item = &'a [u8]>) -> Decoded {
    let mut codec = StompCodec::new(max);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let fail = |items, e: CodecError| Decoded {
        items,
        error: Some(variant(&e)),
    };
    for chunk in chunks {
        buf.extend_from_slice(chunk);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(item)) => items.push(item),
                Ok(None) => break,
                Err(e) => return fail(items, e),
            }
            assert!(items.len() <= MAX_ITEMS, "more items than input bytes");
        }
    }
    loop {
        match codec.decode_eof(&mut buf) {
            Ok(Some(item)) => items.push(item),
            Ok(None) => break,
            Err(e) => return fail(items, e),
        }
        assert!(items.len() <= MAX_ITEMS, "more items than input bytes");
    }
    assert!(
        buf.is_empty(),
        "decode_eof returned Ok(None) with bytes left"
    );
    Decoded { items, error: None }
}

/// `stomp_decode`: `data` is `[split_lo, split_hi, chunk, max]` followed by the stream.
///
/// The stream is decoded whole, split in two at `u16(split_lo, split_hi) % (len + 1)`, and in
/// chunks of `chunk + 1` bytes; the three must give the same items and fail (if at all) with the
/// same error after them. `max` with its top bit set selects a small maximum frame size
/// (`(max & 0x7f) * 32 + 16` bytes), else the default 16 MiB. Never panics on any input.
pub fn stomp_decode(data: &[u8]) {
    let (params, stream) = data.split_at(data.len().min(4));
    let param = |i: usize| params.get(i).copied().unwrap_or(0);
    let max = match param(3) {
        m if m & 0x80 != 0 => usize::from(m & 0x7f) * 32 + 16,
        _ => DEFAULT_MAX_FRAME_SIZE,
    };
    let split = usize::from(u16::from_le_bytes([param(0), param(1)])) % (stream.len() + 1);
    let chunk = usize::from(param(2)) + 1;

    let whole = decode_chunks(max, [stream]);
    let (a, b) = stream.split_at(split);
    let two = decode_chunks(max, [a, b]);
    assert_eq!(
        whole, two,
        "decoding the stream whole and split at byte {split} differ"
    );
    let chunked = decode_chunks(max, stream.chunks(chunk));
    assert_eq!(
        whole, chunked,
        "decoding the stream whole and in chunks of {chunk} bytes differ"
    );
    for item in &whole.items {
        if let Item::Frame(frame) = item {
            let size = frame.body.len()
                + frame
                    .headers
                    .iter()
                    .map(|(n, v)| n.len() + v.len())
                    .sum::<usize>();
            assert!(
                size <= max,
                "a decoded frame exceeds the maximum frame size"
            );
            let _ = format!("{frame:?}");
        }
    }
}

/// Headers without `content-length` (the encoder writes its own).
fn headers_but_length(frame: &Frame) -> Vec<&(String, String)> {
    frame
        .headers
        .iter()
        .filter(|(n, _)| n != "content-length")
        .collect()
}

/// Encodes `frame`; `None` when the codec rightly refuses it (a CONNECT/STOMP/CONNECTED header
/// with a CR, which those frames cannot escape).
fn encode(frame: &Frame) -> Option<BytesMut> {
    let mut out = BytesMut::new();
    match StompCodec::default().encode(frame, &mut out) {
        Ok(()) => Some(out),
        Err(CodecError::Unencodable { name, command }) => {
            assert!(
                !command.escapes_headers(),
                "{command} frames escape headers, yet header {name:?} was refused"
            );
            let has_cr = frame
                .headers
                .iter()
                .any(|(n, v)| n.contains(['\r', '\n', ':']) || v.contains(['\r', '\n']));
            assert!(
                has_cr,
                "a {command} frame without CR/LF in its headers was refused"
            );
            assert!(out.is_empty(), "a refused frame left bytes in the buffer");
            None
        }
        Err(e) => panic!("encoding a decoded frame failed: {e}"),
    }
}

/// `stomp_roundtrip`: every frame that decodes from `data` (default codec) is encoded, and the
/// encoding decodes to the same frame (command, headers apart from `content-length`, body),
/// consumes exactly the encoded bytes, and encodes to the same bytes again.
pub fn stomp_roundtrip(data: &[u8]) {
    let decoded = decode_chunks(DEFAULT_MAX_FRAME_SIZE, [data]);
    for item in decoded.items {
        let Item::Frame(frame) = item else {
            let mut out = BytesMut::new();
            StompCodec::default()
                .encode(Item::HeartBeat, &mut out)
                .expect("a heart-beat encodes");
            assert_eq!(&out[..], b"\n");
            continue;
        };
        let Some(encoded) = encode(&frame) else {
            continue;
        };
        let mut buf = encoded.clone();
        let mut codec = StompCodec::new(usize::MAX);
        let again = match codec.decode(&mut buf) {
            Ok(Some(Item::Frame(f))) => f,
            other => panic!(
                "the encoding of a decoded {} frame does not decode to a frame: {other:?}\nencoded: {:?}",
                frame.command,
                String::from_utf8_lossy(&encoded)
            ),
        };
        assert!(
            buf.is_empty(),
            "{} bytes left after decoding an encoded frame",
            buf.len()
        );
        assert_eq!(again.command, frame.command, "command changed");
        assert_eq!(again.body, frame.body, "body changed");
        assert_eq!(
            headers_but_length(&again),
            headers_but_length(&frame),
            "headers changed in the round trip of a {} frame",
            frame.command
        );
        let always = matches!(
            frame.command,
            Command::Send | Command::Message | Command::Error
        );
        if always || !frame.body.is_empty() {
            assert_eq!(
                again.get("content-length"),
                Some(frame.body.len().to_string().as_str()),
                "the encoder's content-length is wrong"
            );
        }
        let twice = encode(&again).expect("a re-decoded frame encodes");
        assert_eq!(encoded, twice, "encoding is not stable across a round trip");
    }
}
