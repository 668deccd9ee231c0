//! Codec tests: wire details, errors, a proptest round trip, and streams split at every position.

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use soar_stomp::{CodecError, Command, Frame, Item, Rejected, StompCodec};
use tokio_util::codec::{Decoder, Encoder};

fn decode_all(codec: &mut StompCodec, buf: &mut BytesMut) -> Result<Vec<Item>, CodecError> {
    let mut items = Vec::new();
    while let Some(item) = codec.decode(buf)? {
        items.push(item);
    }
    Ok(items)
}

fn decode_bytes(data: &[u8]) -> Result<Vec<Item>, CodecError> {
    let mut codec = StompCodec::default();
    let mut buf = BytesMut::from(data);
    let items = decode_all(&mut codec, &mut buf)?;
    assert!(codec.decode_eof(&mut buf)?.is_none());
    Ok(items)
}

fn one_frame(data: &[u8]) -> Frame {
    match decode_bytes(data).expect("decodes").as_slice() {
        [Item::Frame(frame)] => frame.clone(),
        other => panic!("expected one frame, got {other:?}"),
    }
}

fn encode(frame: &Frame) -> Vec<u8> {
    let mut buf = BytesMut::new();
    StompCodec::default()
        .encode(frame, &mut buf)
        .expect("encodes");
    buf.to_vec()
}

#[test]
fn decodes_activemq_message_with_escaped_headers() {
    let frame = one_frame(
        b"MESSAGE\nack:ID\\cvm-1\\c2\nmessage-id:ID\\cvm-1\ndestination:/queue/actions.201.fn\n\
          weird:a\\\\b\\nc\\rd\n\n{\"x\":1}\0",
    );
    assert_eq!(frame.command, Command::Message);
    assert_eq!(frame.get("ack"), Some("ID:vm-1:2"));
    assert_eq!(frame.get("message-id"), Some("ID:vm-1"));
    assert_eq!(frame.get("weird"), Some("a\\b\nc\rd"));
    assert_eq!(frame.body_str(), Ok("{\"x\":1}"));
}

#[test]
fn encoder_escapes_and_writes_content_length() {
    let frame = Frame::new(Command::Send)
        .header("destination", "/queue/a:b")
        .header("x\\y", "1\n2\r3")
        .header("content-length", "999")
        .with_body("hi");
    assert_eq!(
        encode(&frame),
        b"SEND\ndestination:/queue/a\\cb\nx\\\\y:1\\n2\\r3\ncontent-length:2\n\nhi\0"
    );
    // SEND/MESSAGE/ERROR always carry content-length; other empty frames do not.
    assert_eq!(
        encode(&Frame::new(Command::Send)),
        b"SEND\ncontent-length:0\n\n\0"
    );
    assert_eq!(
        encode(&Frame::new(Command::Ack).header("id", "1")),
        b"ACK\nid:1\n\n\0"
    );
}

#[test]
fn connect_and_connected_headers_are_not_escaped() {
    let frame = Frame::new(Command::Connect).header("passcode", "a:b\\c");
    assert_eq!(encode(&frame), b"CONNECT\npasscode:a:b\\c\n\n\0");
    let frame = one_frame(b"CONNECTED\nserver:ActiveMQ/5.17.2\nx:a\\cb\n\n\0");
    assert_eq!(frame.get("x"), Some("a\\cb"));
    assert_eq!(frame.get("server"), Some("ActiveMQ/5.17.2"));
    let mut buf = BytesMut::new();
    let bad = Frame::new(Command::Connect).header("passcode", "a\nb");
    let err = StompCodec::default().encode(&bad, &mut buf).unwrap_err();
    assert!(matches!(err, CodecError::Unencodable { .. }), "{err:?}");
    assert!(buf.is_empty(), "nothing half-written");
}

#[test]
fn content_length_body_may_contain_nul() {
    let frame = one_frame(b"MESSAGE\ncontent-length:5\n\na\0b\0c\0");
    assert_eq!(frame.body, Bytes::from_static(b"a\0b\0c"));
    let round = Frame::new(Command::Send).with_body(&b"\0\0x\0"[..]);
    let back = one_frame(&encode(&round));
    assert_eq!(back.body, round.body);
    assert_eq!(back.get("content-length"), Some("4"));
}

#[test]
fn nul_terminated_body_and_crlf_lines() {
    let frame = one_frame(b"MESSAGE\r\ndestination:/q\r\nk:v\r\n\r\nhello\r\n\0");
    assert_eq!(frame.get("destination"), Some("/q"));
    assert_eq!(frame.get("k"), Some("v"));
    assert_eq!(frame.body, Bytes::from_static(b"hello\r\n"));
}

#[test]
fn heart_beats_between_frames() {
    let items = decode_bytes(b"\n\r\nRECEIPT\nreceipt-id:1\n\n\0\n\nERROR\nmessage:x\n\n\0\r\n")
        .expect("ok");
    let kinds: Vec<_> = items
        .iter()
        .map(|i| match i {
            Item::HeartBeat => "hb".to_owned(),
            Item::Frame(f) => f.command.to_string(),
            Item::Rejected(r) => format!("rejected: {}", r.problem),
        })
        .collect();
    assert_eq!(kinds, ["hb", "hb", "RECEIPT", "hb", "hb", "ERROR", "hb"]);
}

#[test]
fn repeated_headers_keep_order_and_first_wins() {
    let frame = one_frame(b"MESSAGE\nfoo:1\nfoo:2\n\n\0");
    assert_eq!(frame.get("foo"), Some("1"));
    assert_eq!(frame.headers.len(), 2);
}

/// The problem of the one rejected frame in `items`, which must be followed by `after`.
fn rejected_then(items: &[Item], after: &str) -> Rejected {
    match items {
        [Item::Rejected(r), Item::Frame(f)] if f.get("k") == Some(after) => r.clone(),
        other => panic!("expected a rejected frame then frame {after}, got {other:?}"),
    }
}

const NEXT: &[u8] = b"MESSAGE\nk:next\ncontent-length:2\n\nok\0";

#[test]
fn frames_over_the_maximum_size_are_skipped() {
    // With content-length: skipped by count, the frame behind comes out.
    let big = encode(
        &Frame::new(Command::Message)
            .header("message-id", "m1")
            .with_body(vec![b'x'; 100]),
    );
    let data = [&big[..], NEXT].concat();
    let mut codec = StompCodec::new(64);
    let items = decode_all(&mut codec, &mut BytesMut::from(&data[..])).unwrap();
    let r = rejected_then(&items, "next");
    assert!(
        r.problem.contains("maximum frame size of 64 bytes"),
        "{r:?}"
    );
    assert_eq!(r.get("message-id"), Some("m1"));
    assert_eq!(r.command, Some(Command::Message));
    // Without content-length: discarded up to its NUL, and the buffer does not keep it.
    let mut codec = StompCodec::new(64);
    let mut buf =
        BytesMut::from(&[&b"MESSAGE\nmessage-id:m2\n\n"[..], &[b'y'; 80][..]].concat()[..]);
    assert!(decode_all(&mut codec, &mut buf).unwrap().is_empty());
    assert!(
        buf.is_empty(),
        "the oversized body is discarded as it comes"
    );
    buf.extend_from_slice(&[b'y'; 1000]);
    assert!(decode_all(&mut codec, &mut buf).unwrap().is_empty());
    buf.extend_from_slice(&[b"yy\0", NEXT].concat());
    let r = rejected_then(&decode_all(&mut codec, &mut buf).unwrap(), "next");
    assert_eq!(r.get("message-id"), Some("m2"));
    // Endless headers: the complete lines are kept.
    let mut codec = StompCodec::new(64);
    let data = [
        &b"MESSAGE\nmessage-id:m3\n"[..],
        &[b'h'; 80][..],
        b"\n\n\0",
        NEXT,
    ]
    .concat();
    let r = rejected_then(
        &decode_all(&mut codec, &mut BytesMut::from(&data[..])).unwrap(),
        "next",
    );
    assert!(r.problem.contains("maximum frame size"), "{r:?}");
    assert_eq!(r.get("message-id"), Some("m3"));
    // A frame of exactly the maximum size passes.
    let data = encode(&Frame::new(Command::Send).with_body("abc"));
    let mut codec = StompCodec::new(data.len());
    assert_eq!(
        decode_all(&mut codec, &mut BytesMut::from(&data[..]))
            .expect("fits")
            .len(),
        1
    );
}

#[test]
fn malformed_frames_are_skipped_with_what_could_be_read() {
    let cases: &[(&[u8], &str)] = &[
        (
            b"HELLO\nmessage-id:a\n\n\0",
            "unknown STOMP command \"HELLO\"",
        ),
        (
            b"MESSAGE\nmessage-id:b\nno colon here\n\n\0",
            "malformed STOMP header line",
        ),
        (
            b"MESSAGE\nmessage-id:c\nk:\\t\n\n\0",
            "invalid escape sequence",
        ),
        (
            b"MESSAGE\nmessage-id:d\ncontent-length:x\n\nbody\0",
            "invalid content-length",
        ),
        (
            b"MESSAGE\nmessage-id:e\ncontent-length:1\n\nab\0",
            "not followed by a NUL",
        ),
        (b"MESSAGE\nmessage-id:f\nk:\xff\n\n\0", "not valid UTF-8"),
        // A bad escape with a content-length whose body holds a NUL: skipped by count.
        (
            b"MESSAGE\nmessage-id:g\nk:\\t\ncontent-length:3\n\na\0b\0",
            "invalid escape",
        ),
    ];
    for (bad, problem) in cases {
        let data = [bad, NEXT].concat();
        let items = decode_bytes(&data).unwrap_or_else(|e| panic!("{e}: {bad:?}"));
        let r = rejected_then(&items, "next");
        assert!(r.problem.contains(problem), "{bad:?}: {r:?}");
        assert!(r.get("message-id").is_some(), "{bad:?}: {r:?}");
        // Split at every position: the same items.
        for split in 0..=data.len() {
            let mut codec = StompCodec::default();
            let mut buf = BytesMut::from(&data[..split]);
            let mut got = decode_all(&mut codec, &mut buf).unwrap();
            buf.extend_from_slice(&data[split..]);
            got.extend(decode_all(&mut codec, &mut buf).unwrap());
            assert_eq!(got, items, "{bad:?} split at {split}");
        }
    }
    // A bad escape with the largest content-length: no overflow; the frame is skipped by its
    // count, so a stream that ends first ends inside it.
    let err =
        decode_bytes(b"MESSAGE\nk:\\t\ncontent-length:18446744073709551615\n\n\0MESSAGE\n\n\0")
            .unwrap_err();
    assert!(matches!(err, CodecError::Truncated(_)), "{err:?}");
    let err = decode_bytes(b"SEND\n\nbody without nul").unwrap_err();
    assert!(matches!(err, CodecError::Truncated(_)), "{err:?}");
    let err = decode_bytes(b"SEND\ncontent-length:1\n\nab").unwrap_err();
    assert!(matches!(err, CodecError::Truncated(_)), "{err:?}");
}

#[test]
fn partial_frames_are_scanned_incrementally() {
    // Feed a large NUL-terminated frame one byte at a time; each call only looks at new bytes,
    // so this is linear (a quadratic rescan of 200 kB would take seconds in debug builds).
    let body = vec![b'z'; 200_000];
    let text = [b"MESSAGE\na:b\n\n".as_slice(), &body, b"\0"].concat();
    let mut codec = StompCodec::default();
    let mut buf = BytesMut::new();
    let start = std::time::Instant::now();
    let mut got = None;
    for b in text {
        buf.extend_from_slice(&[b]);
        if let Some(item) = codec.decode(&mut buf).expect("ok") {
            got = Some(item);
        }
    }
    let Some(Item::Frame(frame)) = got else {
        panic!("no frame")
    };
    assert_eq!(frame.body.len(), body.len());
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn an_unfinished_frame_is_known_once_its_head_is_read() {
    let mut codec = StompCodec::new(64);
    let mut buf = BytesMut::from(&b"MESSAGE\nmessage-id:m1\nack:a1\n"[..]);
    assert!(decode_all(&mut codec, &mut buf).expect("ok").is_empty());
    assert_eq!(
        codec.unfinished(),
        None,
        "inside the head: nothing to say yet"
    );
    buf.extend_from_slice(b"content-length:10\n\n01234");
    assert!(decode_all(&mut codec, &mut buf).expect("ok").is_empty());
    let unfinished = codec.unfinished().expect("inside the body");
    assert_eq!(unfinished.command, Some(Command::Message));
    assert_eq!(unfinished.get("message-id"), Some("m1"));
    assert_eq!(unfinished.get("ack"), Some("a1"));
    buf.extend_from_slice(b"56789\0");
    assert!(matches!(
        decode_all(&mut codec, &mut buf).expect("ok").as_slice(),
        [Item::Frame(_)]
    ));
    assert_eq!(codec.unfinished(), None, "between frames");
    // A frame being skipped (over the 64-byte maximum) is unfinished too, with its headers.
    buf.extend_from_slice(b"MESSAGE\nmessage-id:m2\n\n");
    buf.extend_from_slice(&[b'x'; 100]);
    assert!(decode_all(&mut codec, &mut buf).expect("ok").is_empty());
    assert_eq!(
        codec
            .unfinished()
            .and_then(|r| r.get("message-id").map(str::to_owned)),
        Some("m2".to_owned())
    );
}

#[test]
fn heart_beat_item_encodes_as_eol() {
    let mut buf = BytesMut::new();
    StompCodec::default()
        .encode(Item::HeartBeat, &mut buf)
        .expect("ok");
    assert_eq!(&buf[..], b"\n");
}

fn header_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[a-zA-Z0-9:\\\\\n\r \\-_.é€😀]{0,12}").expect("regex")
}

fn command() -> impl Strategy<Value = Command> {
    // CONNECT/STOMP/CONNECTED cannot carry arbitrary (unescaped) headers.
    proptest::sample::select(
        Command::ALL
            .into_iter()
            .filter(|c| c.escapes_headers())
            .collect::<Vec<_>>(),
    )
}

prop_compose! {
    fn frame()(command in command(),
               headers in proptest::collection::vec((header_text(), header_text()), 0..6),
               body in proptest::collection::vec(any::<u8>(), 0..64)) -> Frame {
        let headers = headers.into_iter().filter(|(n, _)| n != "content-length").collect();
        Frame { command, headers, body: Bytes::from(body) }
    }
}

/// What decoding an encoded frame gives: the encoder adds its own `content-length`.
fn expected(frame: &Frame) -> Frame {
    let mut frame = frame.clone();
    let always = matches!(
        frame.command,
        Command::Send | Command::Message | Command::Error
    );
    if always || !frame.body.is_empty() {
        frame
            .headers
            .push(("content-length".into(), frame.body.len().to_string()));
    }
    frame
}

fn stream_of(frames: &[Frame], beats: &[u8]) -> (Vec<u8>, Vec<Item>) {
    let mut data = Vec::new();
    let mut items = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        for _ in 0..beats.get(i).copied().unwrap_or(0) {
            data.extend_from_slice(if i % 2 == 0 { b"\n" } else { b"\r\n" });
            items.push(Item::HeartBeat);
        }
        data.extend_from_slice(&encode(frame));
        items.push(Item::Frame(expected(frame)));
    }
    (data, items)
}

proptest! {
    #[test]
    fn encode_then_decode_round_trips(frame in frame()) {
        let decoded = decode_bytes(&encode(&frame)).expect("decodes");
        prop_assert_eq!(decoded, vec![Item::Frame(expected(&frame))]);
    }

    #[test]
    fn split_at_every_position_gives_the_same_items(
        frames in proptest::collection::vec(frame(), 1..4),
        beats in proptest::collection::vec(0u8..3, 4),
    ) {
        let (data, items) = stream_of(&frames, &beats);
        for split in 0..=data.len() {
            let mut codec = StompCodec::default();
            let mut buf = BytesMut::from(&data[..split]);
            let mut got = decode_all(&mut codec, &mut buf).expect("first chunk");
            buf.extend_from_slice(&data[split..]);
            got.extend(decode_all(&mut codec, &mut buf).expect("second chunk"));
            prop_assert!(buf.is_empty());
            prop_assert_eq!(&got, &items, "split at {}", split);
        }
    }

    #[test]
    fn arbitrary_bytes_never_fail_and_split_anywhere_decode_the_same(
        data in proptest::collection::vec(
            prop_oneof![any::<u8>(), Just(b'\n'), Just(0u8), Just(b':'), Just(b'\\')],
            0..300,
        ),
        split in 0usize..300,
        max in 16usize..128,
    ) {
        let split = split.min(data.len());
        let mut codec = StompCodec::new(max);
        let mut buf = BytesMut::from(&data[..]);
        let whole = decode_all(&mut codec, &mut buf).expect("only I/O fails");
        let mut codec = StompCodec::new(max);
        let mut buf = BytesMut::from(&data[..split]);
        let mut got = decode_all(&mut codec, &mut buf).expect("first chunk");
        buf.extend_from_slice(&data[split..]);
        got.extend(decode_all(&mut codec, &mut buf).expect("second chunk"));
        prop_assert_eq!(got, whole);
    }
}
