//! ZooKeeper's jute records and their binary codec: the client protocol,
//! transactions, and the quorum/persistence records. No I/O.

pub mod codec;
pub mod consts;
pub mod data;
pub mod frame;
pub mod proto;
pub mod quorum;
pub mod request;
pub mod txn;

pub use codec::{DecodeError, Reader, Record, Writer};
pub use consts::ErrorCode;
