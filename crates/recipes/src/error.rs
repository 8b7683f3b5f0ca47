use std::time::Duration;

/// Errors from the recipes: the client's own errors, plus the outcomes a
/// recipe adds (a bounded wait ran out, data that is not ours to parse).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The ZooKeeper client reported an error.
    #[error("zookeeper: {0}")]
    Zk(#[from] zookeeper_client::Error),
    /// The bounded wait (e.g. [`crate::Lock::acquire`]) expired first.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// A node's content or the recipe's directory is not what the recipe
    /// expects (e.g. our own contender node vanished while waiting).
    #[error("inconsistent recipe state: {0}")]
    Inconsistent(String),
}

/// Result alias for the recipes.
pub type Result<T> = std::result::Result<T, Error>;
