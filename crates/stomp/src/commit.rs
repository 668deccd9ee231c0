//! Group commits: the replies and ACKs that callers of
//! [`Session::commit_with_ack`](crate::Session::commit_with_ack) ask for at about the same time go
//! to the broker in one transaction (BEGIN, each caller's frames and ACK, COMMIT), two
//! transactions in flight per connection. Each caller's frames and ACK stay one step (the broker
//! applies the whole transaction or none of it); the broker handles one COMMIT for many
//! messages, which is what a broker such as ActiveMQ spends its time on under load.
//!
//! A caller may ask that nothing take effect before something of its own is done (its reply
//! journaled): the transaction's frames go out at once, its COMMIT only once every caller of
//! it is ready, so that the broker works on the frames while the journal writes; the commits
//! that arrive meanwhile go into the next transaction.
//!
//! If the broker refuses a transaction of several callers (an ERROR), each caller's part is
//! committed alone, so that one refused reply does not fail the others.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::future::BoxFuture;
use tokio::sync::{Semaphore, mpsc, oneshot};

use crate::connection::Link;
use crate::error::StompError;
use crate::frame::{Command, Frame};

/// Most callers in one transaction.
const MAX_BATCH: usize = 256;
/// Transactions under way at once: the next one gets ready (its replies journaled) while the
/// broker works on the last.
const MAX_IN_FLIGHT: usize = 2;

/// What one caller asks to commit.
pub(crate) struct Commit {
    pub frames: Vec<Frame>,
    /// The `id` of the ACK.
    pub ack: String,
    pub done: oneshot::Sender<Result<(), StompError>>,
}

/// A commit, and what must be done before it is sent.
pub(crate) type Queued = (Commit, BoxFuture<'static, ()>);

/// The committer of one connection: takes commits until every sender is gone.
pub(crate) fn start(link: Link) -> mpsc::UnboundedSender<Queued> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(run(link, rx));
    tx
}

async fn run(link: Link, mut queue: mpsc::UnboundedReceiver<Queued>) {
    let next_tx = Arc::new(AtomicU64::new(0));
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    while let Some(first) = queue.recv().await {
        let Ok(permit) = in_flight.clone().acquire_owned().await else {
            return;
        };
        let mut queued = vec![first];
        while queued.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(commit) => queued.push(commit),
                Err(_) => break,
            }
        }
        let (link, next_tx) = (link.clone(), next_tx.clone());
        tokio::spawn(async move {
            commit_and_tell(&link, &next_tx, queued).await;
            drop(permit);
        });
    }
}

/// Commits `queued` in one transaction (its COMMIT sent once every caller is ready) and tells
/// each caller how it went; if the broker refuses it (an ERROR), commits each caller's part
/// alone.
async fn commit_and_tell(link: &Link, next_tx: &AtomicU64, queued: Vec<Queued>) {
    let (batch, ready): (Vec<Commit>, Vec<_>) = queued.into_iter().unzip();
    let ready = async {
        for each in ready {
            each.await;
        }
    };
    match transact(link, next_tx, &batch, ready).await {
        Err(StompError::ServerError { .. }) if batch.len() > 1 => {
            for commit in batch {
                let one = std::slice::from_ref(&commit);
                let result = transact(link, next_tx, one, std::future::ready(())).await;
                let _ = commit.done.send(result);
            }
        }
        Ok(()) => batch.into_iter().for_each(|c| drop(c.done.send(Ok(())))),
        Err(e) => {
            for commit in batch {
                let _ = commit.done.send(Err(copy(&e)));
            }
        }
    }
}

/// One transaction holding every commit of `batch`: BEGIN and the frames at once, the COMMIT
/// once `ready` has completed (until then the broker applies nothing, and drops it all if the
/// connection is lost); waits for the RECEIPT of its COMMIT as long as the connection lives.
async fn transact(
    link: &Link,
    next_tx: &AtomicU64,
    batch: &[Commit],
    ready: impl Future<Output = ()>,
) -> Result<(), StompError> {
    let n = next_tx.fetch_add(1, Ordering::Relaxed) + 1;
    let tx = format!("tx-{}-{n}", link.generation());
    let mut frames =
        Vec::with_capacity(batch.iter().map(|c| c.frames.len() + 1).sum::<usize>() + 1);
    frames.push(Frame::new(Command::Begin).header("transaction", tx.as_str()));
    for commit in batch {
        frames.extend((commit.frames.iter()).map(|f| f.clone().header("transaction", tx.as_str())));
        frames.push(
            Frame::new(Command::Ack)
                .header("id", commit.ack.as_str())
                .header("transaction", tx.as_str()),
        );
    }
    let commit = Frame::new(Command::Commit).header("transaction", tx.as_str());
    link.call_frames(frames, ready, commit, None).await
}

/// The error of a shared transaction, for each of its callers.
fn copy(error: &StompError) -> StompError {
    match error {
        StompError::ServerError { message } => StompError::ServerError {
            message: message.clone(),
        },
        StompError::Closed => StompError::Closed,
        _ => StompError::NotConnected,
    }
}
