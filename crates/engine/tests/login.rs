//! `run`'s login as `max_connection_retries` says: a platform that cannot be reached is tried
//! again that many times in all, and for ever by default (an appliance reboot must not stop the
//! host). The "platform" here accepts TCP connections and closes them at once.

use std::path::Path;
use std::time::Duration;

use soar_engine::app::login;
use soar_engine::config::{AppConfig, ResilientOptions, SecretResolver};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// A listener that closes every connection; counts them.
async fn closing_platform() -> (u16, watch::Receiver<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen, count) = watch::channel(0);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            seen.send_modify(|n| *n += 1);
            drop(socket);
        }
    });
    (port, count)
}

fn options(port: u16, extra: &str) -> ResilientOptions {
    let text = format!(
        "[resilient]\nhost = 127.0.0.1\nport = {port}\napi_key_id = id\napi_key_secret = s\n\
         org = Test\ncafile = false\nrequest_max_retries = 1\nrequest_retry_delay = 0\n{extra}"
    );
    let cfg = AppConfig::parse_with(
        &text,
        Path::new("/x/app.config"),
        &SecretResolver::isolated(),
    )
    .unwrap();
    ResilientOptions::from_config(&cfg).unwrap()
}

#[tokio::test]
async fn login_stops_after_max_connection_retries() {
    let (port, count) = closing_platform().await;
    let error = login(&options(port, "max_connection_retries = 3\n"))
        .await
        .unwrap_err();
    assert_eq!(*count.borrow(), 3, "{error}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}

#[tokio::test]
async fn login_retries_for_ever_by_default() {
    let (port, mut count) = closing_platform().await;
    let options = options(port, "");
    assert_eq!(options.max_connection_retries, -1);
    let login = login(&options);
    tokio::pin!(login);
    let ten = tokio::time::timeout(Duration::from_secs(30), count.wait_for(|n| *n >= 10));
    tokio::select! {
        r = &mut login => panic!("login gave up: {:?}", r.err()),
        seen = ten => assert!(seen.is_ok(), "fewer than 10 logins in 30 s"),
    }
    // Still trying: it ends only when the host is stopped.
    assert!(
        tokio::time::timeout(Duration::from_millis(50), &mut login)
            .await
            .is_err()
    );
}
