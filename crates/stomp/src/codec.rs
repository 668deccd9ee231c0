//! STOMP 1.2 framing as a tokio-util [`Decoder`]/[`Encoder`] pair.
//!
//! Decoding: `COMMAND EOL (name:value EOL)* EOL body NUL`, where EOL is `\n` or `\r\n`. The body
//! runs for `content-length` octets when that header is present (it may then contain NUL), else up
//! to the first NUL. EOLs between frames are heart-beats and come out as [`Item::HeartBeat`].
//! Header names and values are unescaped (`\\ \n \r \c`) except in CONNECT/STOMP/CONNECTED frames.
//! The decoder remembers how far it has scanned, so a frame arriving in many small reads costs
//! linear time. After an error the stream is not recoverable: close the connection.
//!
//! Encoding writes `\n` line endings, escapes headers, and writes its own `content-length` (any
//! given one is dropped) for every frame with a body and for every SEND, MESSAGE and ERROR.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::frame::{Command, Frame};

/// The default maximum frame size: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;

/// What the decoder yields: a frame, or an EOL between frames (a heart-beat).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete frame.
    Frame(Frame),
    /// One EOL between frames.
    HeartBeat,
}

/// Framing errors.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// Reading or writing the socket failed.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// The frame is bigger than the configured maximum.
    #[error("STOMP frame of at least {size} bytes exceeds the maximum frame size of {max} bytes")]
    FrameTooLarge {
        /// Bytes known to belong to the frame so far.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
    /// The first line is not a STOMP command.
    #[error("unknown STOMP command {0:?}")]
    UnknownCommand(String),
    /// A header line has no `:`.
    #[error("malformed STOMP header line {0:?} (expected name:value)")]
    BadHeader(String),
    /// A header uses an escape other than `\\ \n \r \c`.
    #[error("invalid escape sequence in STOMP header {0:?}")]
    BadEscape(String),
    /// `content-length` is not a decimal number.
    #[error("invalid content-length {0:?}")]
    BadContentLength(String),
    /// The `content-length` body is not followed by NUL.
    #[error("STOMP frame body of content-length {0} is not followed by a NUL octet")]
    MissingNul(usize),
    /// Command or headers are not UTF-8.
    #[error("STOMP frame headers are not valid UTF-8")]
    NotUtf8,
    /// The stream ended inside a frame.
    #[error("connection closed in the middle of a STOMP frame ({0} bytes buffered)")]
    Truncated(usize),
    /// A CONNECT/CONNECTED header that cannot be written without escaping.
    #[error(
        "header {name:?} of a {command} frame contains a character that cannot be sent unescaped"
    )]
    Unencodable {
        /// The header name.
        name: String,
        /// The frame's command.
        command: Command,
    },
}

/// STOMP 1.2 codec with a maximum frame size.
#[derive(Debug)]
pub struct StompCodec {
    max_frame_size: usize,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Between frames.
    Idle,
    /// Inside the command and header lines; `line` is where the current line starts, `scanned`
    /// how far we have looked for its end.
    Head { line: usize, scanned: usize },
    /// Headers parsed; waiting for the body and its NUL.
    Body {
        command: Command,
        headers: Vec<(String, String)>,
        head_len: usize,
        content_length: Option<usize>,
        scanned: usize,
    },
}

impl Default for StompCodec {
    fn default() -> Self {
        StompCodec::new(DEFAULT_MAX_FRAME_SIZE)
    }
}

impl StompCodec {
    /// A codec rejecting frames larger than `max_frame_size` bytes (headers, body and NUL).
    pub fn new(max_frame_size: usize) -> Self {
        StompCodec {
            max_frame_size,
            state: State::Idle,
        }
    }

    fn too_large(&self, size: usize) -> Result<(), CodecError> {
        if size > self.max_frame_size {
            return Err(CodecError::FrameTooLarge {
                size,
                max: self.max_frame_size,
            });
        }
        Ok(())
    }
}

impl Decoder for StompCodec {
    type Item = Item;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, CodecError> {
        loop {
            match &mut self.state {
                State::Idle => match buf.first() {
                    None => return Ok(None),
                    Some(b'\n') => {
                        buf.advance(1);
                        return Ok(Some(Item::HeartBeat));
                    }
                    Some(b'\r') if buf.len() < 2 => return Ok(None),
                    Some(b'\r') if buf[1] == b'\n' => {
                        buf.advance(2);
                        return Ok(Some(Item::HeartBeat));
                    }
                    Some(_) => {
                        self.state = State::Head {
                            line: 0,
                            scanned: 0,
                        }
                    }
                },
                State::Head { line, scanned } => {
                    let Some(nl) = buf[*scanned..].iter().position(|&b| b == b'\n') else {
                        *scanned = buf.len();
                        let size = buf.len();
                        return self.too_large(size).map(|()| None);
                    };
                    let nl = *scanned + nl;
                    if matches!(&buf[*line..nl], b"" | b"\r") {
                        let head_len = nl + 1;
                        self.too_large(head_len)?;
                        let (command, headers) = parse_head(&buf[..head_len])?;
                        let content_length =
                            match headers.iter().find(|(n, _)| n == "content-length") {
                                Some((_, v)) => Some(
                                    v.trim()
                                        .parse::<usize>()
                                        .map_err(|_| CodecError::BadContentLength(v.clone()))?,
                                ),
                                None => None,
                            };
                        if let Some(len) = content_length {
                            self.too_large(head_len.saturating_add(len).saturating_add(1))?;
                        }
                        self.state = State::Body {
                            command,
                            headers,
                            head_len,
                            content_length,
                            scanned: head_len,
                        };
                    } else {
                        *line = nl + 1;
                        *scanned = nl + 1;
                    }
                }
                State::Body {
                    head_len,
                    content_length,
                    scanned,
                    ..
                } => {
                    let end = match *content_length {
                        Some(len) => {
                            let end = *head_len + len;
                            if buf.len() <= end {
                                buf.reserve(end + 1 - buf.len());
                                return Ok(None);
                            }
                            if buf[end] != 0 {
                                return Err(CodecError::MissingNul(len));
                            }
                            end
                        }
                        None => match buf[*scanned..].iter().position(|&b| b == 0) {
                            Some(i) => *scanned + i,
                            None => {
                                *scanned = buf.len();
                                let size = buf.len();
                                return self.too_large(size).map(|()| None);
                            }
                        },
                    };
                    let State::Body {
                        command,
                        headers,
                        head_len,
                        ..
                    } = std::mem::replace(&mut self.state, State::Idle)
                    else {
                        unreachable!("state checked above")
                    };
                    let data = buf.split_to(end + 1).freeze();
                    let body = data.slice(head_len..end);
                    return Ok(Some(Item::Frame(Frame {
                        command,
                        headers,
                        body,
                    })));
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, CodecError> {
        match self.decode(buf)? {
            Some(item) => Ok(Some(item)),
            None if buf.is_empty() => Ok(None),
            None => Err(CodecError::Truncated(buf.len())),
        }
    }
}

/// Parses the command line and header lines (`head` ends with the blank line).
fn parse_head(head: &[u8]) -> Result<(Command, Vec<(String, String)>), CodecError> {
    let text = std::str::from_utf8(head).map_err(|_| CodecError::NotUtf8)?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    let command: Command = first
        .parse()
        .map_err(|()| CodecError::UnknownCommand(first.to_owned()))?;
    let escaped = command.escapes_headers();
    let mut headers = Vec::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| CodecError::BadHeader(line.to_owned()))?;
        if escaped {
            headers.push((unescape(name)?, unescape(value)?));
        } else {
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    Ok((command, headers))
}

fn unescape(s: &str) -> Result<String, CodecError> {
    if !s.contains('\\') {
        return Ok(s.to_owned());
    }
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next() {
            Some('\\') => '\\',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('c') => ':',
            _ => return Err(CodecError::BadEscape(s.to_owned())),
        });
    }
    Ok(out)
}

fn put_escaped(dst: &mut BytesMut, s: &str) {
    for b in s.bytes() {
        match b {
            b'\\' => dst.put_slice(b"\\\\"),
            b'\n' => dst.put_slice(b"\\n"),
            b'\r' => dst.put_slice(b"\\r"),
            b':' => dst.put_slice(b"\\c"),
            _ => dst.put_u8(b),
        }
    }
}

fn encode_frame(frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
    let escaped = frame.command.escapes_headers();
    let size: usize = frame
        .headers
        .iter()
        .map(|(n, v)| n.len() + v.len() + 2)
        .sum();
    dst.reserve(frame.command.as_str().len() + size + frame.body.len() + 40);
    dst.put_slice(frame.command.as_str().as_bytes());
    dst.put_u8(b'\n');
    for (name, value) in frame.headers.iter().filter(|(n, _)| n != "content-length") {
        if escaped {
            put_escaped(dst, name);
            dst.put_u8(b':');
            put_escaped(dst, value);
        } else {
            let bad = |s: &str| s.contains(['\n', '\r']);
            if bad(name) || bad(value) || name.contains(':') {
                return Err(CodecError::Unencodable {
                    name: name.clone(),
                    command: frame.command,
                });
            }
            dst.put_slice(name.as_bytes());
            dst.put_u8(b':');
            dst.put_slice(value.as_bytes());
        }
        dst.put_u8(b'\n');
    }
    let always = matches!(
        frame.command,
        Command::Send | Command::Message | Command::Error
    );
    if always || !frame.body.is_empty() {
        dst.put_slice(format!("content-length:{}\n", frame.body.len()).as_bytes());
    }
    dst.put_u8(b'\n');
    dst.put_slice(&frame.body);
    dst.put_u8(0);
    Ok(())
}

impl Encoder<&Frame> for StompCodec {
    type Error = CodecError;
    fn encode(&mut self, frame: &Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        let start = dst.len();
        encode_frame(frame, dst).inspect_err(|_| dst.truncate(start))
    }
}

impl Encoder<Frame> for StompCodec {
    type Error = CodecError;
    fn encode(&mut self, frame: Frame, dst: &mut BytesMut) -> Result<(), CodecError> {
        self.encode(&frame, dst)
    }
}

impl Encoder<Item> for StompCodec {
    type Error = CodecError;
    fn encode(&mut self, item: Item, dst: &mut BytesMut) -> Result<(), CodecError> {
        match item {
            Item::Frame(frame) => self.encode(&frame, dst),
            Item::HeartBeat => {
                dst.put_u8(b'\n');
                Ok(())
            }
        }
    }
}
