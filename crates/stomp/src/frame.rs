//! STOMP 1.2 frames: the command, ordered headers and a binary body.

use std::fmt;
use std::str::{FromStr, Utf8Error};

use bytes::Bytes;

/// A STOMP 1.2 command (client and server frames).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Command {
    Connect,
    Stomp,
    Connected,
    Send,
    Subscribe,
    Unsubscribe,
    Ack,
    Nack,
    Begin,
    Commit,
    Abort,
    Disconnect,
    Message,
    Receipt,
    Error,
}

impl Command {
    /// Every command, for tests and exhaustive matching.
    pub const ALL: [Command; 15] = [
        Command::Connect,
        Command::Stomp,
        Command::Connected,
        Command::Send,
        Command::Subscribe,
        Command::Unsubscribe,
        Command::Ack,
        Command::Nack,
        Command::Begin,
        Command::Commit,
        Command::Abort,
        Command::Disconnect,
        Command::Message,
        Command::Receipt,
        Command::Error,
    ];

    /// The command as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Command::Connect => "CONNECT",
            Command::Stomp => "STOMP",
            Command::Connected => "CONNECTED",
            Command::Send => "SEND",
            Command::Subscribe => "SUBSCRIBE",
            Command::Unsubscribe => "UNSUBSCRIBE",
            Command::Ack => "ACK",
            Command::Nack => "NACK",
            Command::Begin => "BEGIN",
            Command::Commit => "COMMIT",
            Command::Abort => "ABORT",
            Command::Disconnect => "DISCONNECT",
            Command::Message => "MESSAGE",
            Command::Receipt => "RECEIPT",
            Command::Error => "ERROR",
        }
    }

    /// CONNECT, STOMP and CONNECTED frames carry their headers without escaping (STOMP 1.2 §Value Encoding).
    pub fn escapes_headers(self) -> bool {
        !matches!(self, Command::Connect | Command::Stomp | Command::Connected)
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Command {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        Command::ALL.into_iter().find(|c| c.as_str() == s).ok_or(())
    }
}

/// One STOMP frame. Headers keep their order and repetitions; [`Frame::get`] returns the first.
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// The command.
    pub command: Command,
    /// Header names and values, unescaped, in wire order.
    pub headers: Vec<(String, String)>,
    /// The body (may hold NUL octets when it travels with `content-length`).
    pub body: Bytes,
}

impl Frame {
    /// A frame with no headers and an empty body.
    pub fn new(command: Command) -> Self {
        Frame {
            command,
            headers: Vec::new(),
            body: Bytes::new(),
        }
    }

    /// Appends a header (builder style).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body (builder style).
    pub fn with_body(mut self, body: impl Into<Bytes>) -> Self {
        self.body = body.into();
        self
    }

    /// The value of the first header called `name` (STOMP 1.2: the first occurrence wins).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as UTF-8 text.
    pub fn body_str(&self) -> Result<&str, Utf8Error> {
        std::str::from_utf8(&self.body)
    }
}

/// Debug output redacts the `passcode` header and shows at most 200 bytes of the body.
impl fmt::Debug for Frame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Headers<'a>(&'a [(String, String)]);
        impl<'a> fmt::Debug for Headers<'a> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let redact = |(n, v): &'a (String, String)| {
                    (
                        n,
                        if n == "passcode" {
                            "<redacted>"
                        } else {
                            v.as_str()
                        },
                    )
                };
                f.debug_list().entries(self.0.iter().map(redact)).finish()
            }
        }
        const PREVIEW: usize = 200;
        let preview = String::from_utf8_lossy(&self.body[..self.body.len().min(PREVIEW)]);
        let more = if self.body.len() > PREVIEW { "..." } else { "" };
        f.debug_struct("Frame")
            .field("command", &self.command)
            .field("headers", &Headers(&self.headers))
            .field(
                "body",
                &format_args!("{preview:?}{more} ({} bytes)", self.body.len()),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_round_trip_through_text() {
        for c in Command::ALL {
            assert_eq!(c.as_str().parse::<Command>(), Ok(c));
        }
        assert!("connect".parse::<Command>().is_err());
    }

    #[test]
    fn first_header_wins_and_debug_redacts_passcode() {
        let f = Frame::new(Command::Connect)
            .header("login", "key")
            .header("passcode", "s3cret")
            .header("login", "other")
            .with_body("hi");
        assert_eq!(f.get("login"), Some("key"));
        assert_eq!(f.get("missing"), None);
        assert_eq!(f.body_str(), Ok("hi"));
        let debug = format!("{f:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(
            debug.contains("<redacted>") && debug.contains("key"),
            "{debug}"
        );
    }
}
