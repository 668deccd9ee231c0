//! A raw STOMP client for tests: the soar-stomp codec over tokio-rustls, nothing else, so tests
//! control every frame the "host" sends.

#![allow(dead_code)]

pub mod cts;

use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use soar_sim::{Sim, SimConfig};
use soar_stomp::{Command, Frame, Item, StompCodec};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;
use tokio_util::codec::Framed;

/// Bound for every wait in the tests.
pub const WAIT: Duration = Duration::from_secs(10);

pub async fn start_sim() -> Sim {
    start_sim_with(SimConfig::default()).await
}

pub async fn start_sim_with(config: SimConfig) -> Sim {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
    tokio::time::timeout(WAIT, Sim::start(config))
        .await
        .expect("sim start timed out")
        .expect("sim start")
}

pub struct RawClient {
    framed: Framed<TlsStream<TcpStream>, StompCodec>,
    pub heart_beats: usize,
}

impl RawClient {
    /// TLS connection to the embedded broker, no STOMP yet.
    pub async fn open(sim: &Sim) -> RawClient {
        let fut = async {
            let tcp = TcpStream::connect(("127.0.0.1", sim.stomp_port())).await?;
            tcp.set_nodelay(true)?;
            let connector = TlsConnector::from(sim.client_tls_config());
            let name = rustls_pki_types::ServerName::try_from("localhost").expect("name");
            connector.connect(name, tcp).await
        };
        let tls = tokio::time::timeout(WAIT, fut)
            .await
            .expect("connect timed out")
            .expect("connect");
        RawClient {
            framed: Framed::new(tls, StompCodec::default()),
            heart_beats: 0,
        }
    }

    /// Opens and logs in with the API key; returns the client and the CONNECTED frame.
    pub async fn connect(sim: &Sim) -> (RawClient, Frame) {
        let c = sim.config();
        Self::connect_as(
            sim,
            &c.api_key_id.clone(),
            &c.api_key_secret.clone(),
            "0,15000",
        )
        .await
    }

    pub async fn connect_as(
        sim: &Sim,
        login: &str,
        passcode: &str,
        heart_beat: &str,
    ) -> (RawClient, Frame) {
        let mut client = Self::open(sim).await;
        client
            .send(
                Frame::new(Command::Connect)
                    .header("accept-version", "1.2")
                    .header("host", "localhost")
                    .header("login", login)
                    .header("passcode", passcode)
                    .header("heart-beat", heart_beat),
            )
            .await;
        let frame = client.next_frame().await;
        (client, frame)
    }

    pub async fn send(&mut self, frame: Frame) {
        tokio::time::timeout(WAIT, self.framed.send(Item::Frame(frame)))
            .await
            .expect("send timed out")
            .expect("send");
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) {
        use tokio::io::AsyncWriteExt as _;
        let io = self.framed.get_mut();
        tokio::time::timeout(WAIT, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        .expect("write timed out")
        .expect("write");
    }

    /// The next item (frame or heart-beat), `None` at end of stream; panics on timeout.
    pub async fn next_item(&mut self) -> Option<Result<Item, soar_stomp::CodecError>> {
        tokio::time::timeout(WAIT, self.framed.next())
            .await
            .expect("timed out waiting for a frame")
    }

    /// The next frame, skipping heart-beats; panics on timeout, error or end of stream.
    pub async fn next_frame(&mut self) -> Frame {
        loop {
            match self.next_item().await {
                Some(Ok(Item::Frame(f))) => return f,
                Some(Ok(Item::HeartBeat)) => self.heart_beats += 1,
                Some(Ok(Item::Rejected(r))) => panic!("a frame that cannot be read: {r:?}"),
                Some(Err(e)) => panic!("decode error: {e}"),
                None => panic!("connection closed while waiting for a frame"),
            }
        }
    }

    /// Waits for the end of the stream (skipping frames and heart-beats); returns the frames seen.
    pub async fn expect_closed(&mut self) -> Vec<Frame> {
        let mut frames = Vec::new();
        loop {
            match self.next_item().await {
                Some(Ok(Item::Frame(f))) => frames.push(f),
                Some(Ok(Item::HeartBeat | Item::Rejected(_))) => {}
                Some(Err(_)) | None => return frames,
            }
        }
    }

    /// SUBSCRIBE with client-individual and a prefetch, waiting for the RECEIPT.
    pub async fn subscribe(&mut self, destination: &str, prefetch: u32) {
        self.send(
            Frame::new(Command::Subscribe)
                .header("destination", destination)
                .header("id", destination)
                .header("ack", "client-individual")
                .header("activemq.prefetchSize", prefetch.to_string())
                .header("receipt", format!("sub-{destination}")),
        )
        .await;
        let r = self.next_frame().await;
        assert_eq!(r.command, Command::Receipt, "{r:?}");
        assert_eq!(
            r.get("receipt-id"),
            Some(format!("sub-{destination}").as_str())
        );
    }

    /// Sends a frame with a receipt and returns every frame that arrives before the RECEIPT.
    pub async fn call(&mut self, frame: Frame, receipt: &str) -> Vec<Frame> {
        self.send(frame.header("receipt", receipt)).await;
        let mut before = Vec::new();
        loop {
            let f = self.next_frame().await;
            if f.command == Command::Receipt && f.get("receipt-id") == Some(receipt) {
                return before;
            }
            before.push(f);
        }
    }

    pub async fn ack(&mut self, message: &Frame) {
        let id = message.get("ack").expect("ack header").to_string();
        let before = self
            .call(
                Frame::new(Command::Ack).header("id", id.clone()),
                &format!("ack-{id}"),
            )
            .await;
        assert!(
            before.is_empty(),
            "unexpected frames before ACK receipt: {before:?}"
        );
    }

    /// SENDs a reply to the message's reply-to with its correlation-id, waiting for the RECEIPT.
    pub async fn reply(&mut self, message: &Frame, body: serde_json::Value) {
        let frame = Frame::new(Command::Send)
            .header("destination", message.get("reply-to").expect("reply-to"))
            .header(
                "correlation-id",
                message.get("correlation-id").expect("correlation-id"),
            )
            .with_body(serde_json::to_vec(&body).expect("json"));
        let before = self.call(frame, "reply").await;
        assert!(
            before.is_empty(),
            "unexpected frames before SEND receipt: {before:?}"
        );
    }
}

pub fn json_body(frame: &Frame) -> serde_json::Value {
    serde_json::from_slice(&frame.body).expect("JSON body")
}

/// A REST client authenticating with the simulator's API key.
pub struct Api {
    http: reqwest::Client,
    base: String,
    id: String,
    secret: String,
}

impl Api {
    pub fn new(sim: &Sim) -> Api {
        Api {
            http: reqwest::Client::builder()
                .use_preconfigured_tls((*sim.client_tls_config()).clone())
                .timeout(WAIT)
                .build()
                .expect("reqwest client"),
            base: sim.base_url(),
            id: sim.config().api_key_id.clone(),
            secret: sim.config().api_key_secret.clone(),
        }
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .basic_auth(&self.id, Some(&self.secret));
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.expect("request");
        let status = r.status();
        (status, r.json().await.unwrap_or(serde_json::Value::Null))
    }

    pub async fn get(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn post(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        self.call(reqwest::Method::PUT, path, Some(body)).await
    }

    /// Posts an import and accepts it; returns the final DTO (panics unless ACCEPTED).
    pub async fn import(&self, export: &serde_json::Value) -> serde_json::Value {
        let (s, dto) = self
            .post("/rest/orgs/201/configurations/imports", export)
            .await;
        assert_eq!(s, reqwest::StatusCode::OK, "{dto}");
        assert_eq!(dto["status"], "PENDING", "{dto}");
        let mut accepted = dto.clone();
        accepted["status"] = serde_json::json!("ACCEPTED");
        let (s, dto) = self
            .put(
                &format!("/rest/orgs/201/configurations/imports/{}", dto["id"]),
                &accepted,
            )
            .await;
        assert_eq!(s, reqwest::StatusCode::OK, "{dto}");
        assert_eq!(dto["status"], "ACCEPTED", "{dto}");
        dto
    }
}

/// The hand-written export of `tests/fixtures/hello_export.res`.
pub fn fixture() -> serde_json::Value {
    serde_json::from_str(include_str!("../fixtures/hello_export.res")).expect("fixture JSON")
}

/// Texts of an import DTO's messages of one type.
pub fn messages(dto: &serde_json::Value, kind: &str) -> Vec<String> {
    dto["messages"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter(|m| m["type"] == kind)
                .map(|m| m["text"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}
