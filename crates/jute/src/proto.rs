//! `org.apache.zookeeper.proto`: the client protocol records.

use crate::codec::{Reader, Record, Result, Writer};
use crate::data::{Acl, ClientInfo, Stat};
use crate::record;
use bytes::Bytes;

/// The session handshake. `read_only` is absent on the wire from clients
/// older than 3.4; it decodes as false then.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: bool,
}

impl Record for ConnectRequest {
    const MIN_SIZE: usize = 4 + 8 + 4 + 8 + 4;
    fn write<W: Writer>(&self, w: &mut W) {
        w.put_i32_be(self.protocol_version);
        w.put_i64_be(self.last_zxid_seen);
        w.put_i32_be(self.time_out);
        w.put_i64_be(self.session_id);
        w.put_buffer(&self.passwd);
        w.put_bool(self.read_only);
    }
    fn read(r: &mut Reader) -> Result<Self> {
        Ok(ConnectRequest {
            protocol_version: r.i32()?,
            last_zxid_seen: r.i64()?,
            time_out: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?,
            read_only: if r.remaining() > 0 { r.bool()? } else { false },
        })
    }
}

/// The handshake answer. Old clients are sent it without the trailing byte.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub time_out: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: bool,
}

impl ConnectResponse {
    /// Encodes without the read-only byte, for clients that did not send one.
    pub fn write_legacy<W: Writer>(&self, w: &mut W) {
        w.put_i32_be(self.protocol_version);
        w.put_i32_be(self.time_out);
        w.put_i64_be(self.session_id);
        w.put_buffer(&self.passwd);
    }
}

impl Record for ConnectResponse {
    const MIN_SIZE: usize = 4 + 4 + 8 + 4;
    fn write<W: Writer>(&self, w: &mut W) {
        self.write_legacy(w);
        w.put_bool(self.read_only);
    }
    fn read(r: &mut Reader) -> Result<Self> {
        Ok(ConnectResponse {
            protocol_version: r.i32()?,
            time_out: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?,
            read_only: if r.remaining() > 0 { r.bool()? } else { false },
        })
    }
}

record! {
    pub struct SetWatches {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
    }
}

record! {
    pub struct SetWatches2 {
        pub relative_zxid: i64,
        pub data_watches: Vec<String>,
        pub exist_watches: Vec<String>,
        pub child_watches: Vec<String>,
        pub persistent_watches: Vec<String>,
        pub persistent_recursive_watches: Vec<String>,
    }
}

record! {
    #[derive(Copy)]
    pub struct RequestHeader {
        pub xid: i32,
        pub op: i32,
    }
}

record! {
    #[derive(Copy)]
    pub struct MultiHeader {
        pub op: i32,
        pub done: bool,
        pub err: i32,
    }
}

record! {
    pub struct AuthPacket {
        pub auth_type: i32,
        pub scheme: String,
        pub auth: Bytes,
    }
}

record! {
    #[derive(Copy)]
    pub struct ReplyHeader {
        pub xid: i32,
        pub zxid: i64,
        pub err: i32,
    }
}

record! {
    pub struct GetDataRequest {
        pub path: String,
        pub watch: bool,
    }
}

record! {
    pub struct SetDataRequest {
        pub path: String,
        pub data: Option<Bytes>,
        pub version: i32,
    }
}

record! {
    pub struct ReconfigRequest {
        pub joining_servers: String,
        pub leaving_servers: String,
        pub new_members: String,
        pub cur_config_id: i64,
    }
}

record! {
    pub struct SetDataResponse {
        pub stat: Stat,
    }
}

record! {
    pub struct SaslToken {
        pub token: Bytes,
    }
}

record! {
    pub struct CreateRequest {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Vec<Acl>,
        pub flags: i32,
    }
}

record! {
    pub struct CreateTtlRequest {
        pub path: String,
        pub data: Option<Bytes>,
        pub acl: Vec<Acl>,
        pub flags: i32,
        pub ttl: i64,
    }
}

record! {
    pub struct DeleteRequest {
        pub path: String,
        pub version: i32,
    }
}

record! {
    /// getChildren, getChildren2, exists and getData share this shape.
    pub struct PathWatchRequest {
        pub path: String,
        pub watch: bool,
    }
}

record! {
    /// sync, getACL, getAllChildrenNumber, getEphemerals and SyncResponse share this shape.
    pub struct PathRequest {
        pub path: String,
    }
}

record! {
    pub struct CheckVersionRequest {
        pub path: String,
        pub version: i32,
    }
}

record! {
    pub struct SetAclRequest {
        pub path: String,
        pub acl: Vec<Acl>,
        pub version: i32,
    }
}

record! {
    pub struct StatResponse {
        pub stat: Stat,
    }
}

record! {
    pub struct AddWatchRequest {
        pub path: String,
        pub mode: i32,
    }
}

record! {
    pub struct WatcherEvent {
        pub event_type: i32,
        pub state: i32,
        pub path: String,
    }
}

record! {
    pub struct ErrorResponse {
        pub err: i32,
    }
}

record! {
    pub struct CreateResponse {
        pub path: String,
    }
}

record! {
    pub struct Create2Response {
        pub path: String,
        pub stat: Stat,
    }
}

record! {
    pub struct GetDataResponse {
        pub data: Option<Bytes>,
        pub stat: Stat,
    }
}

record! {
    pub struct GetChildrenResponse {
        pub children: Vec<String>,
    }
}

record! {
    pub struct GetAllChildrenNumberResponse {
        pub total_number: i32,
    }
}

record! {
    pub struct GetChildren2Response {
        pub children: Vec<String>,
        pub stat: Stat,
    }
}

record! {
    pub struct GetAclResponse {
        pub acl: Vec<Acl>,
        pub stat: Stat,
    }
}

record! {
    /// checkWatches and removeWatches share this shape.
    pub struct WatchTypeRequest {
        pub path: String,
        pub watch_type: i32,
    }
}

record! {
    pub struct GetEphemeralsResponse {
        pub ephemerals: Vec<String>,
    }
}

record! {
    pub struct WhoAmIResponse {
        pub client_info: Vec<ClientInfo>,
    }
}
