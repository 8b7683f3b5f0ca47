//! ZooKeeper's state machine without I/O: the data tree with exact Stat
//! bookkeeping, ACLs, the session table and expiry, watches, the checks that
//! turn a write request into a txn (`prep`), the application of txns
//! (`DataTree::apply`), and reads (`ops`). Time comes in as arguments.

pub mod acl;
pub mod digest;
pub mod ops;
pub mod path;
pub mod prep;
pub mod quota;
pub mod restore;
pub mod session;
mod store;
pub mod tree;
pub mod watch;

pub use tree::{ApplyResult, DataTree, Fired, Node};
pub use watch::WatcherId;
