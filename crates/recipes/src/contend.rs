//! The shared core of the locks, the semaphore and the latch: create an
//! ephemeral-sequential contender node, then wait until it is the lowest,
//! watching only the immediate predecessor (no herd effect).

use std::future::Future;
use std::time::Duration;

use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError, SessionState};

use crate::{Error, Result};

/// Width of the sequence suffix ZooKeeper appends (for 32-bit sequences).
const SEQ_LEN: usize = 10;

/// Names that mark a contender node: ours/Curator's (`lock-`, `latch-`) and
/// kazoo's (`__lock__`).
fn is_contender(name: &str, marker: &str) -> bool {
    sequence_of(name).is_some()
        && (name.contains(marker) || (marker == "lock-" && name.contains("__lock__")))
}

/// The sequence suffix of a contender name, if it has one.
pub(crate) fn sequence_of(name: &str) -> Option<i64> {
    if name.len() < SEQ_LEN {
        return None;
    }
    let tail = &name[name.len() - SEQ_LEN..];
    if tail.bytes().all(|b| b.is_ascii_digit()) {
        tail.parse().ok()
    } else {
        None
    }
}

/// A created contender node.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    /// Full path of the node.
    pub path: String,
    /// Last path component.
    pub name: String,
    /// czxid of the node: the fencing token.
    pub czxid: i64,
}

/// Waits until `client` is connected again; an ended session is an error.
pub(crate) async fn reconnected(client: &Client) -> std::result::Result<(), ZkError> {
    let mut states = client.state_watcher();
    let mut state = states.state();
    loop {
        match state {
            SessionState::SyncConnected | SessionState::ConnectedReadOnly => return Ok(()),
            SessionState::Expired => return Err(ZkError::SessionExpired),
            SessionState::Closed => return Err(ZkError::ClientClosed),
            SessionState::AuthFailed => return Err(ZkError::AuthFailed),
            _ => state = states.changed().await,
        }
    }
}

/// Whether `e` says the connection failed under a request, so its outcome
/// is unknown: ConnectionLoss, or the transport error itself, which the
/// client hands requests in flight when a socket is reset (its only use of
/// `Custom`).
pub(crate) fn lost_connection(e: &ZkError) -> bool {
    matches!(e, ZkError::ConnectionLoss | ZkError::Custom(_))
}

/// Runs `op` until it gets an answer other than a lost connection, waiting for
/// the client to reconnect in between. Only for operations that are safe to
/// repeat (reads, deletes of our own nodes, creates of fixed names where
/// NodeExists is handled): the first attempt may have been applied.
pub(crate) async fn retry<T, F, Fut>(client: &Client, mut op: F) -> std::result::Result<T, ZkError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = std::result::Result<T, ZkError>>,
{
    loop {
        match op().await {
            Err(e) if lost_connection(&e) => {
                // The error can arrive just before the state turns
                // Disconnected: a short pause keeps this from spinning.
                tokio::time::sleep(Duration::from_millis(10)).await;
                reconnected(client).await?;
            }
            r => return r,
        }
    }
}

/// Ensures `dir` exists (persistent), ignoring races with other creators.
pub(crate) async fn ensure_dir(client: &Client, dir: &str) -> Result<()> {
    let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
    match retry(client, || client.mkdir(dir, &opts)).await {
        Ok(()) | Err(ZkError::NodeExists) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Creates `{dir}/_c_{uuid}-{marker}<seq>`; on connection loss, finds the
/// node by its unique uuid prefix instead of creating a second one (an
/// ephemeral-sequential create is not idempotent). Only if the lookup, made
/// once reconnected, does not find it is the create repeated.
pub(crate) async fn create(client: &Client, dir: &str, marker: &str, data: &[u8]) -> Result<Node> {
    ensure_dir(client, dir).await?;
    let prefix_name = format!("_c_{}-{}", uuid::Uuid::new_v4(), marker);
    let prefix = format!("{dir}/{prefix_name}");
    let opts = CreateMode::EphemeralSequential.with_acls(Acls::anyone_all());
    loop {
        match client.create(&prefix, data, &opts).await {
            Ok((stat, seq)) => {
                let name = format!("{prefix_name}{seq}");
                let path = format!("{dir}/{name}");
                let czxid = if stat.czxid > 0 {
                    stat.czxid
                } else {
                    // Old servers answer plain Create without a stat.
                    retry(client, || client.get_data(&path)).await?.1.czxid
                };
                return Ok(Node { path, name, czxid });
            }
            Err(e) if lost_connection(&e) => {
                if let Some(node) = find_own(client, dir, &prefix_name).await? {
                    return Ok(node);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Our node in `dir` by its unique name prefix, if the create landed. The
/// listing waits for reconnection and retries, never the create itself.
async fn find_own(client: &Client, dir: &str, prefix_name: &str) -> Result<Option<Node>> {
    let children = retry(client, || client.list_children(dir)).await?;
    let Some(name) = children.into_iter().find(|c| c.starts_with(prefix_name)) else {
        return Ok(None);
    };
    let path = format!("{dir}/{name}");
    match retry(client, || client.get_data(&path)).await {
        Ok((_, s)) => Ok(Some(Node {
            path,
            name,
            czxid: s.czxid,
        })),
        Err(e) => Err(e.into()),
    }
}

/// Sorted contenders in `dir` for `marker`.
pub(crate) async fn contenders(client: &Client, dir: &str, marker: &str) -> Result<Vec<String>> {
    let mut children = retry(client, || client.list_children(dir)).await?;
    children.retain(|c| is_contender(c, marker));
    children.sort_by_key(|c| sequence_of(c));
    Ok(children)
}

/// Waits until `node` is the lowest contender, watching only its predecessor.
pub(crate) async fn wait_first(
    client: &Client,
    dir: &str,
    marker: &str,
    node: &Node,
) -> Result<()> {
    loop {
        let children = contenders(client, dir, marker).await?;
        let Some(i) = children.iter().position(|c| *c == node.name) else {
            return Err(Error::Inconsistent(format!(
                "contender {} vanished",
                node.path
            )));
        };
        if i == 0 {
            return Ok(());
        }
        wait_gone(client, &format!("{dir}/{}", children[i - 1])).await?;
    }
}

/// Waits until the node at `path` changes or goes; returns at once if it is
/// already gone. Callers re-check afterwards. A session that ends while
/// waiting is an error; a watch set before a disconnection is re-armed by
/// the client when it reconnects.
pub(crate) async fn wait_gone(client: &Client, path: &str) -> Result<()> {
    match retry(client, || client.check_and_watch_stat(path)).await {
        Ok((None, _)) => Ok(()),
        Ok((Some(_), watcher)) => {
            let ev = watcher.changed().await;
            if ev.session_state.is_terminated() {
                return Err(Error::Zk(ZkError::SessionExpired));
            }
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}

/// Creates a contender node in `dir` and waits for `wait` to say it holds,
/// all within `timeout`. On timeout or error the node is removed so that it
/// does not block later waiters; on success the caller holds `node`.
pub(crate) async fn acquire<F, Fut>(
    client: &Client,
    dir: &str,
    marker: &str,
    timeout: Duration,
    wait: F,
) -> Result<Node>
where
    F: FnOnce(Node) -> Fut,
    Fut: Future<Output = (Node, Result<()>)>,
{
    let node = match tokio::time::timeout(timeout, create(client, dir, marker, b"")).await {
        Ok(r) => r?,
        // The create may still land: nothing we can name to clean up, but
        // the node is ephemeral, bound to the session.
        Err(_) => return Err(Error::Timeout(timeout)),
    };
    let path = node.path.clone();
    match tokio::time::timeout(timeout, wait(node)).await {
        Ok((node, Ok(()))) => Ok(node),
        Ok((_, Err(e))) => {
            delete_in_background(client, &path);
            Err(e)
        }
        Err(_) => {
            delete_in_background(client, &path);
            Err(Error::Timeout(timeout))
        }
    }
}

/// Deletes `path` without waiting: the request is queued synchronously by
/// the client, and awaited in the background when a runtime is available.
pub(crate) fn delete_in_background(client: &Client, path: &str) {
    let fut = client.delete(path, None);
    if let Ok(rt) = tokio::runtime::Handle::try_current() {
        rt.spawn(async move {
            let _ = fut.await;
        });
    }
}
