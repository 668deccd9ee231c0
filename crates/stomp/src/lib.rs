//! STOMP 1.2 for the SOAR integration host: a codec (shared with the simulated platform's
//! broker) and a client that keeps a session with the platform's ActiveMQ alive.
//!
//! - [`frame`] and [`codec`]: frames and the tokio-util `Decoder`/`Encoder` (escaping,
//!   `content-length` and NUL-terminated bodies, heart-beat EOLs, a maximum frame size).
//! - [`connection`]: one TCP or TLS connection with the CONNECT handshake, heart-beats, receipts
//!   and a single writer task that batches queued frames into one write.
//! - [`session`]: the reconnecting [`Session`] most users want: backoff with jitter,
//!   resubscription, connection generations for safe ACKs, and an ordered [`Event`] stream.
//! - [`commit`]: group commits of final replies and their ACKs, one transaction in flight per
//!   connection.
//!
//! ```no_run
//! # async fn example() -> Result<(), soar_stomp::StompError> {
//! use soar_stomp::{AckMode, ClientConfig, Event, Session, Subscription};
//! let mut config = ClientConfig::new("soar.example.com", 65001);
//! config.tls = Some(soar_tls::client_config(&soar_tls::CaSource::System).expect("TLS"));
//! let subscription = Subscription::new("actions.201.fn_hello", AckMode::ClientIndividual)
//!     .header("activemq.prefetchSize", "20");
//! let (session, mut events) = Session::start(config, vec![subscription]);
//! while let Some(event) = events.recv().await {
//!     if let Event::Message { frame, tag } = event {
//!         println!("{}", frame.body_str().unwrap_or("<binary>"));
//!         session.ack(&tag).await?;
//!     }
//! }
//! # Ok(()) }
//! ```

pub mod codec;
pub mod commit;
pub mod connection;
pub mod error;
pub mod frame;
pub mod session;

pub use codec::{CodecError, DEFAULT_MAX_FRAME_SIZE, Item, Rejected, StompCodec};
pub use connection::{ClientConfig, Connection, Link};
pub use error::StompError;
pub use frame::{Command, Frame};
pub use session::{AckMode, Backoff, DeliveryTag, EVENT_QUEUE, Event, Session, Subscription};
