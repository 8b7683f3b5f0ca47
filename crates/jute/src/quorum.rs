//! `org.apache.zookeeper.server.quorum` and persistence records.

use crate::data::Id;
use crate::record;
use bytes::Bytes;

record! {
    pub struct LearnerInfo {
        pub server_id: i64,
        pub protocol_version: i32,
        pub config_version: i64,
    }
}

record! {
    pub struct QuorumPacket {
        pub packet_type: i32,
        pub zxid: i64,
        pub data: Bytes,
        pub auth_info: Vec<Id>,
    }
}

record! {
    pub struct QuorumAuthPacket {
        pub magic: i64,
        pub status: i32,
        pub token: Bytes,
    }
}

record! {
    /// The header of txn log and snapshot files.
    pub struct FileHeader {
        pub magic: i32,
        pub version: i32,
        pub dbid: i64,
    }
}
