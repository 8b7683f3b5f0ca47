//! Shared counter updated by compare-and-set on the znode version.

use zookeeper_client::{Acls, Client, CreateMode, Error as ZkError};

use crate::{Error, Result};

/// A 64-bit counter stored in one znode as 8 big-endian bytes (the
/// encoding of Curator's `DistributedAtomicLong`).
///
/// Updates are optimistic: read value and version, write with the version
/// as a precondition, retry on `BadVersion`. No lock, no ephemeral state.
#[derive(Debug, Clone)]
pub struct Counter {
    client: Client,
    path: String,
}

impl Counter {
    /// A counter at `path`; the node (and parents) are created as 0 on first
    /// use.
    pub fn new(client: Client, path: impl Into<String>) -> Counter {
        Counter {
            client,
            path: path.into(),
        }
    }

    async fn ensure(&self) -> Result<()> {
        if let Some((parent, _)) = self.path.rsplit_once('/') {
            if !parent.is_empty() {
                crate::contend::ensure_dir(&self.client, parent).await?;
            }
        }
        let opts = CreateMode::Persistent.with_acls(Acls::anyone_all());
        match self
            .client
            .create(&self.path, &0i64.to_be_bytes(), &opts)
            .await
        {
            Ok(_) | Err(ZkError::NodeExists) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The value and the znode version to pass to
    /// [`Counter::compare_and_set`].
    pub async fn get(&self) -> Result<(i64, i32)> {
        let (data, stat) = match self.client.get_data(&self.path).await {
            Err(ZkError::NoNode) => {
                self.ensure().await?;
                self.client.get_data(&self.path).await?
            }
            r => r?,
        };
        Ok((decode(&data)?, stat.version))
    }

    /// Sets the value to `value` only if the node is still at `version`;
    /// `Ok(false)` means someone else updated it first.
    pub async fn compare_and_set(&self, version: i32, value: i64) -> Result<bool> {
        match self
            .client
            .set_data(&self.path, &value.to_be_bytes(), Some(version))
            .await
        {
            Ok(_) => Ok(true),
            Err(ZkError::BadVersion) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Adds `delta` atomically (retrying compare-and-set) and returns the
    /// new value.
    pub async fn add(&self, delta: i64) -> Result<i64> {
        loop {
            let (v, version) = self.get().await?;
            let new = v.wrapping_add(delta);
            if self.compare_and_set(version, new).await? {
                return Ok(new);
            }
        }
    }
}

fn decode(data: &[u8]) -> Result<i64> {
    match data.len() {
        0 => Ok(0),
        8 => Ok(i64::from_be_bytes(data.try_into().expect("8 bytes"))),
        n => Err(Error::Inconsistent(format!(
            "counter node holds {n} bytes, expected 8"
        ))),
    }
}
