//! The client's error type.

use std::time::Duration;

use crate::codec::CodecError;

/// Errors of the STOMP client (connection, session and calls on them).
#[derive(Debug, thiserror::Error)]
pub enum StompError {
    /// TCP connect, read or write failed (also TLS failures that are not about the certificate).
    #[error("STOMP connection to {addr} failed: {source}")]
    Io {
        /// `host:port`.
        addr: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The server certificate could not be verified (or the server name is unusable for TLS).
    #[error("TLS connection to {host} failed: {reason}")]
    Tls {
        /// The name the certificate was checked against.
        host: String,
        /// What is wrong and what to do about it.
        reason: String,
    },
    /// Something did not happen in time.
    #[error("timed out after {after:?} waiting for {what}")]
    Timeout {
        /// What we were waiting for.
        what: &'static str,
        /// How long we waited.
        after: Duration,
    },
    /// The server answered CONNECT with an ERROR frame (usually bad credentials).
    #[error("the STOMP server refused the connection: {message}")]
    Refused {
        /// The ERROR frame's `message` header (or its body).
        message: String,
    },
    /// The server sent an ERROR frame for a request, or one that ends the session.
    #[error("the STOMP server sent an ERROR: {message}")]
    ServerError {
        /// The ERROR frame's `message` header (or its body).
        message: String,
    },
    /// The byte stream is not valid STOMP.
    #[error("STOMP framing error: {0}")]
    Codec(#[from] CodecError),
    /// The server stopped sending heart-beats.
    #[error("no data from the STOMP server for {after:?} (heart-beat timeout)")]
    HeartBeatTimeout {
        /// Twice the server's heart-beat interval.
        after: Duration,
    },
    /// The server closed the connection.
    #[error("the STOMP server at {addr} closed the connection")]
    ServerClosed {
        /// `host:port`.
        addr: String,
    },
    /// There is no connection right now (or it dropped while waiting for a receipt).
    #[error("not connected to the STOMP server")]
    NotConnected,
    /// The delivery came on an earlier connection; the broker will redeliver it.
    #[error(
        "the message was delivered on an earlier connection; it cannot be acknowledged now and will be redelivered"
    )]
    StaleDelivery,
    /// The session was disconnected or stopped for good.
    #[error("the STOMP session is closed")]
    Closed,
    /// The server broke the protocol.
    #[error("STOMP protocol error: {0}")]
    Protocol(String),
}

impl StompError {
    /// Errors that retrying cannot fix: refused credentials, certificate problems, and
    /// "not authorized" ERROR frames.
    pub fn is_fatal(&self) -> bool {
        match self {
            StompError::Refused { .. } | StompError::Tls { .. } => true,
            StompError::ServerError { message } => message.contains("not authorized"),
            _ => false,
        }
    }
}
