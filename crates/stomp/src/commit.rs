//! Group commits: the replies and ACKs that callers of
//! [`Session::commit_with_ack`](crate::Session::commit_with_ack) ask for at about the same time go
//! to the broker in one transaction (BEGIN, each caller's frames and ACK, COMMIT), one
//! transaction in flight per connection. Each caller's frames and ACK stay one step (the broker
//! applies the whole transaction or none of it); the broker handles one COMMIT for many
//! messages, which is what a broker such as ActiveMQ spends its time on under load.
//!
//! A caller may ask that nothing be sent before something of its own is done (its reply on
//! disk): the committer waits for every caller of a transaction before it sends it, and the
//! commits that arrive meanwhile go into the next one.
//!
//! If the broker refuses a transaction of several callers (an ERROR), each caller's part is
//! committed alone, so that one refused reply does not fail the others.

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::connection::Link;
use crate::error::StompError;
use crate::frame::{Command, Frame};

/// Most callers in one transaction.
const MAX_BATCH: usize = 256;

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
    let mut next_tx = 0u64;
    while let Some(first) = queue.recv().await {
        let mut queued = vec![first];
        while queued.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(commit) => queued.push(commit),
                Err(_) => break,
            }
        }
        let mut batch = Vec::with_capacity(queued.len());
        for (commit, ready) in queued {
            ready.await;
            batch.push(commit);
        }
        match transact(&link, &mut next_tx, &batch).await {
            Err(StompError::ServerError { .. }) if batch.len() > 1 => {
                for commit in batch {
                    let result = transact(&link, &mut next_tx, std::slice::from_ref(&commit)).await;
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
}

/// One transaction holding every commit of `batch`; waits for the RECEIPT of its COMMIT as long
/// as the connection lives.
async fn transact(link: &Link, next_tx: &mut u64, batch: &[Commit]) -> Result<(), StompError> {
    *next_tx += 1;
    let tx = format!("tx-{}-{next_tx}", link.generation());
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
    link.call_frames(frames, commit, None).await
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
