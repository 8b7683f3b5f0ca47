//! ZooKeeper coordination recipes built on [`zookeeper_client`].
//!
//! Every recipe uses only the public ZooKeeper protocol, so it works against
//! any ZooKeeper-compatible server (Apache ZooKeeper, rookeeper, ...).
//!
//! * [`Lock`]: exclusive lock on ephemeral-sequential nodes, each waiter
//!   watching only its predecessor; grants carry a fencing token.
//! * [`RwLock`]: read/write lock, readers share and a writer excludes
//!   (Curator `InterProcessReadWriteLock` node names).
//! * [`Semaphore`]: counting semaphore, at most N lease holders.
//! * [`LeaderLatch`]: leader election, lowest sequence number leads.
//! * [`Counter`]: a shared integer updated by compare-and-set on the znode
//!   version.
//! * [`Barrier`], [`DoubleBarrier`]: wait for a signal / for N participants.
//! * [`Queue`]: FIFO on persistent-sequential nodes, delete-to-claim.
//! * [`TreeCache`], [`NodeCache`]: configuration caches kept current by
//!   persistent (recursive) watches, ZooKeeper 3.6+.
//! * [`Membership`], [`members`], [`GroupView`]: group membership with a
//!   live, watch-driven view.
//!
//! # Node naming
//! Lock and latch nodes follow Apache Curator: `_c_<uuid>-lock-<seq>` for
//! [`Lock`] (Curator's `InterProcessMutex`) and `_c_<uuid>-latch-<seq>` for
//! [`LeaderLatch`] (Curator's `LeaderLatch`). kazoo's `Lock` uses a different
//! name (`<uuid-hex>__lock__<seq>`); the two schemes do not agree, so we
//! create Curator names, but when ordering contenders we also count kazoo's
//! `__lock__` nodes: sequence numbers come from the same parent counter, so
//! mixed Rust/kazoo/Curator contenders in one directory still queue by
//! sequence.

#![warn(missing_docs)]

mod barrier;
mod cache;
mod contend;
mod counter;
mod election;
mod error;
mod group;
mod lock;
mod queue;
mod rwlock;
mod semaphore;

pub use barrier::{Barrier, DoubleBarrier};
pub use cache::{CacheEvent, CacheOptions, CachedNode, NodeCache, Snapshot, TreeCache, WatchMode};
pub use counter::Counter;
pub use election::{LeaderLatch, LeaderState};
pub use error::{Error, Result};
pub use group::{members, GroupView, Member, Membership};
pub use lock::{Lock, LockGuard, LostReason};
pub use queue::Queue;
pub use rwlock::RwLock;
pub use semaphore::Semaphore;
