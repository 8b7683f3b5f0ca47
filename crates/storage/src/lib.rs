//! Durable state in Apache ZooKeeper's on-disk formats: the txn log
//! (`version-2/log.<zxid>`), snapshots (`version-2/snapshot.<zxid>`), and
//! recovery (newest valid snapshot + log replay).

pub mod purge;

use std::path::PathBuf;

pub mod snapshot;
pub mod txnlog;

/// Why stored state could not be read or written. Corruption always names
/// the file and the byte offset.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{} is corrupt at offset {offset}: {reason}", file.display())]
    Corrupt {
        file: PathBuf,
        offset: u64,
        reason: String,
    },
}

impl StorageError {
    pub fn io(file: impl Into<PathBuf>, source: std::io::Error) -> Self {
        StorageError::Io {
            file: file.into(),
            source,
        }
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;
