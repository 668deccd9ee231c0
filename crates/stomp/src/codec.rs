//! STOMP 1.2 framing as a tokio-util [`Decoder`]/[`Encoder`] pair.
//!
//! Decoding: `COMMAND EOL (name:value EOL)* EOL body NUL`, where EOL is `\n` or `\r\n`. The body
//! runs for `content-length` octets when that header is present (it may then contain NUL), else up
//! to the first NUL. EOLs between frames are heart-beats and come out as [`Item::HeartBeat`].
//! Header names and values are unescaped (`\\ \n \r \c`) except in CONNECT/STOMP/CONNECTED frames.
//! The decoder remembers how far it has scanned, so a frame arriving in many small reads costs
//! linear time; it scans for line ends and NULs with `memchr` (SIMD).
//!
//! A frame the decoder cannot use (unknown command, bad header line or escape, headers that are
//! not UTF-8, a bad `content-length`, a body not followed by NUL, a frame over the maximum size)
//! is skipped up to its end (its `content-length`, else its NUL, discarding bytes as they come
//! so that memory stays bounded) and comes out as [`Item::Rejected`] with the headers that
//! could be read, so that the client can answer and acknowledge it and go on with the frames
//! behind it. Only I/O errors and a stream ending inside a frame are errors.
//!
//! Encoding writes `\n` line endings, escapes headers, and writes its own `content-length` (any
//! given one is dropped) for every frame with a body and for every SEND, MESSAGE and ERROR.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::frame::{Command, Frame};

/// The default maximum frame size: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;

/// What the decoder yields: a frame, an EOL between frames (a heart-beat), or a frame it
/// skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Item {
    /// A complete frame.
    Frame(Frame),
    /// One EOL between frames.
    HeartBeat,
    /// A frame that could not be used, skipped to its end.
    Rejected(Rejected),
}

/// A frame the decoder skipped: what could be read of it, and why it was not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejected {
    /// The command, when the first line is one.
    pub command: Option<Command>,
    /// The header lines that could be read (unescaped where the escapes are valid).
    pub headers: Vec<(String, String)>,
    /// What was wrong, for a person.
    pub problem: String,
}

impl Rejected {
    /// The first value of a header.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
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
    /// Discarding an unusable frame up to its end.
    Skip { rejected: Rejected, until: Until },
}

/// Where a skipped frame ends.
#[derive(Debug)]
enum Until {
    /// After this many more bytes (its `content-length` and the NUL).
    Bytes(usize),
    /// At the next NUL.
    Nul,
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

    /// Drops the first `consumed` bytes and skips the rest of the frame.
    fn skip(&mut self, buf: &mut BytesMut, consumed: usize, rejected: Rejected, until: Until) {
        buf.advance(consumed);
        self.state = State::Skip { rejected, until };
    }

    /// The error of a frame over the maximum size.
    fn over(&self) -> CodecError {
        CodecError::FrameTooLarge {
            size: self.max_frame_size + 1,
            max: self.max_frame_size,
        }
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
                    let found = memchr::memchr(b'\n', &buf[*scanned..]).map(|i| *scanned + i);
                    // The head, its blank line included, must end within the maximum size.
                    if found.map_or(buf.len(), |nl| nl + 1) > self.max_frame_size {
                        // Endless headers: keep what the complete lines say, skip to the NUL.
                        let complete_lines = *line;
                        let rejected = lenient(&buf[..complete_lines], self.over());
                        self.skip(buf, 0, rejected, Until::Nul);
                        continue;
                    }
                    let Some(nl) = found else {
                        *scanned = buf.len();
                        return Ok(None);
                    };
                    if !matches!(&buf[*line..nl], b"" | b"\r") {
                        *line = nl + 1;
                        *scanned = nl + 1;
                        continue;
                    }
                    let head_len = nl + 1;
                    match head(&buf[..head_len], self.max_frame_size) {
                        Ok((command, headers, content_length)) => {
                            self.state = State::Body {
                                command,
                                headers,
                                head_len,
                                content_length,
                                scanned: head_len,
                            }
                        }
                        Err((e, until)) => {
                            let rejected = lenient(&buf[..head_len], e);
                            self.skip(buf, head_len, rejected, until);
                        }
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
                                // Its end is not where it says: skip to the next NUL.
                                let rejected = self.take_body(CodecError::MissingNul(len));
                                self.skip(buf, end, rejected, Until::Nul);
                                continue;
                            }
                            end
                        }
                        None => match memchr::memchr(0, &buf[*scanned..]) {
                            Some(i) if *scanned + i < self.max_frame_size => *scanned + i,
                            Some(i) => {
                                let end = *scanned + i;
                                let rejected = self.take_body(self.over());
                                buf.advance(end + 1);
                                return Ok(Some(Item::Rejected(rejected)));
                            }
                            None if buf.len() > self.max_frame_size => {
                                let size = buf.len();
                                let rejected = self.take_body(self.over());
                                self.skip(buf, size, rejected, Until::Nul);
                                continue;
                            }
                            None => {
                                *scanned = buf.len();
                                return Ok(None);
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
                State::Skip { until, .. } => {
                    let done = match until {
                        Until::Bytes(n) => {
                            let k = (*n).min(buf.len());
                            buf.advance(k);
                            *n -= k;
                            *n == 0
                        }
                        Until::Nul => match memchr::memchr(0, buf) {
                            Some(i) => {
                                buf.advance(i + 1);
                                true
                            }
                            None => {
                                buf.clear();
                                false
                            }
                        },
                    };
                    if !done {
                        return Ok(None);
                    }
                    let State::Skip { rejected, .. } =
                        std::mem::replace(&mut self.state, State::Idle)
                    else {
                        unreachable!("state checked above")
                    };
                    return Ok(Some(Item::Rejected(rejected)));
                }
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Item>, CodecError> {
        match self.decode(buf)? {
            Some(item) => Ok(Some(item)),
            None if buf.is_empty() && matches!(self.state, State::Idle) => Ok(None),
            None => Err(CodecError::Truncated(buf.len())),
        }
    }
}

impl StompCodec {
    /// The frame the decoder is in the middle of, once its head has been read (whether it was
    /// being read or skipped): what a client can say of a frame whose end never comes, e.g.
    /// when the connection stalls or closes inside it. `None` between frames and inside a head.
    pub fn unfinished(&self) -> Option<Rejected> {
        match &self.state {
            State::Body {
                command, headers, ..
            } => Some(Rejected {
                command: Some(*command),
                headers: headers.clone(),
                problem: "the frame never ended".into(),
            }),
            State::Skip { rejected, .. } => Some(rejected.clone()),
            State::Idle | State::Head { .. } => None,
        }
    }

    /// The frame being read (in [`State::Body`]) as rejected for `problem`.
    fn take_body(&mut self, problem: CodecError) -> Rejected {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Body {
                command, headers, ..
            } => Rejected {
                command: Some(command),
                headers,
                problem: problem.to_string(),
            },
            _ => unreachable!("only called while reading a body"),
        }
    }
}

/// Command, headers and `content-length` of a complete head; or why the frame cannot be used
/// and where it ends.
#[allow(clippy::type_complexity)]
fn head(
    head: &[u8],
    max: usize,
) -> Result<(Command, Vec<(String, String)>, Option<usize>), (CodecError, Until)> {
    let until = || match (lenient_headers(head).1.iter())
        .find(|(n, _)| n == "content-length")
        .map(|(_, v)| v)
    {
        Some(v) => v
            .trim()
            .parse::<usize>()
            .map_or(Until::Nul, |n| Until::Bytes(n.saturating_add(1))),
        None => Until::Nul,
    };
    if head.len() >= max {
        let size = max + 1;
        return Err((CodecError::FrameTooLarge { size, max }, until()));
    }
    let (command, headers) = parse_head(head).map_err(|e| (e, until()))?;
    let content_length = match headers.iter().find(|(n, _)| n == "content-length") {
        Some((_, v)) => Some(
            v.trim()
                .parse::<usize>()
                .map_err(|_| (CodecError::BadContentLength(v.clone()), Until::Nul))?,
        ),
        None => None,
    };
    let size = head
        .len()
        .saturating_add(content_length.unwrap_or(0))
        .saturating_add(1);
    if size > max {
        let until = match content_length {
            Some(len) => Until::Bytes(len.saturating_add(1)),
            None => Until::Nul,
        };
        let size = max + 1;
        return Err((CodecError::FrameTooLarge { size, max }, until));
    }
    Ok((command, headers, content_length))
}

/// A head that did not parse, rejected for `problem` with what can be read of it.
fn lenient(head: &[u8], problem: CodecError) -> Rejected {
    let (command, headers) = lenient_headers(head);
    Rejected {
        command,
        headers,
        problem: problem.to_string(),
    }
}

/// What can be read of a head that did not parse: the command if the first line is one, and
/// every `name:value` line (unescaped where the escapes are valid, UTF-8 lossily).
#[allow(clippy::type_complexity)]
fn lenient_headers(head: &[u8]) -> (Option<Command>, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    let command = lines.next().and_then(|l| l.parse().ok());
    let headers = lines
        .take_while(|l| !l.is_empty())
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| {
            (
                unescape(n).unwrap_or_else(|_| n.to_owned()),
                unescape(v).unwrap_or_else(|_| v.to_owned()),
            )
        })
        .collect();
    (command, headers)
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
            // Nothing to send: it was never a usable frame.
            Item::Rejected(_) => Ok(()),
        }
    }
}
