//! Proptest strategies for every jute record, shared by the integration tests.
#![allow(dead_code)]

use bytes::Bytes;
use jute::consts::op;
use jute::data::*;
use jute::proto::*;
use jute::quorum::*;
use jute::request::{MultiOp, Request};
use jute::txn::*;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::select;

/// Paths most of the time, arbitrary Unicode (incl. NUL, non-BMP) otherwise.
pub fn s_str() -> impl Strategy<Value = String> {
    prop_oneof![3 => "(/[a-z0-9]{1,4}){0,3}", 1 => ".{0,8}"]
}

pub fn s_bytes() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..24).prop_map(Bytes::from)
}

/// Znode data: null or a buffer.
pub fn s_data() -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(s_bytes())
}

pub fn s_strings() -> impl Strategy<Value = Vec<String>> {
    vec(s_str(), 0..4)
}

/// Builds a strategy for a struct from one strategy per field, in order.
macro_rules! strategy {
    ($fn_name:ident -> $ty:ident { $($field:ident : $s:expr),+ $(,)? }) => {
        pub fn $fn_name() -> impl Strategy<Value = $ty> {
            ( $($s,)+ ).prop_map(|( $($field,)+ )| $ty { $($field),+ })
        }
    };
}

// data.rs
strategy!(s_id -> Id { scheme: s_str(), id: s_str() });
strategy!(s_acl -> Acl { perms: any::<i32>(), id: s_id() });
pub fn s_acls() -> impl Strategy<Value = Vec<Acl>> {
    vec(s_acl(), 0..4)
}
strategy!(s_stat -> Stat {
    czxid: any::<i64>(),
    mzxid: any::<i64>(),
    ctime: any::<i64>(),
    mtime: any::<i64>(),
    version: any::<i32>(),
    cversion: any::<i32>(),
    aversion: any::<i32>(),
    ephemeral_owner: any::<i64>(),
    data_length: any::<i32>(),
    num_children: any::<i32>(),
    pzxid: any::<i64>(),
});
strategy!(s_stat_persisted -> StatPersisted {
    czxid: any::<i64>(),
    mzxid: any::<i64>(),
    ctime: any::<i64>(),
    mtime: any::<i64>(),
    version: any::<i32>(),
    cversion: any::<i32>(),
    aversion: any::<i32>(),
    ephemeral_owner: any::<i64>(),
    pzxid: any::<i64>(),
});
strategy!(s_client_info -> ClientInfo { auth_scheme: s_str(), user: s_str() });

// proto.rs
strategy!(s_connect_request -> ConnectRequest {
    protocol_version: any::<i32>(),
    last_zxid_seen: any::<i64>(),
    time_out: any::<i32>(),
    session_id: any::<i64>(),
    passwd: s_bytes(),
    read_only: any::<bool>(),
});
strategy!(s_connect_response -> ConnectResponse {
    protocol_version: any::<i32>(),
    time_out: any::<i32>(),
    session_id: any::<i64>(),
    passwd: s_bytes(),
    read_only: any::<bool>(),
});
strategy!(s_set_watches -> SetWatches {
    relative_zxid: any::<i64>(),
    data_watches: s_strings(),
    exist_watches: s_strings(),
    child_watches: s_strings(),
});
strategy!(s_set_watches2 -> SetWatches2 {
    relative_zxid: any::<i64>(),
    data_watches: s_strings(),
    exist_watches: s_strings(),
    child_watches: s_strings(),
    persistent_watches: s_strings(),
    persistent_recursive_watches: s_strings(),
});
strategy!(s_request_header -> RequestHeader { xid: any::<i32>(), op: any::<i32>() });
strategy!(s_multi_header -> MultiHeader { op: any::<i32>(), done: any::<bool>(), err: any::<i32>() });
strategy!(s_auth_packet -> AuthPacket { auth_type: any::<i32>(), scheme: s_str(), auth: s_bytes() });
strategy!(s_reply_header -> ReplyHeader { xid: any::<i32>(), zxid: any::<i64>(), err: any::<i32>() });
strategy!(s_get_data_request -> GetDataRequest { path: s_str(), watch: any::<bool>() });
strategy!(s_set_data_request -> SetDataRequest { path: s_str(), data: s_data(), version: any::<i32>() });
strategy!(s_reconfig_request -> ReconfigRequest {
    joining_servers: s_str(),
    leaving_servers: s_str(),
    new_members: s_str(),
    cur_config_id: any::<i64>(),
});
strategy!(s_set_data_response -> SetDataResponse { stat: s_stat() });
strategy!(s_sasl_token -> SaslToken { token: s_bytes() });
strategy!(s_create_request -> CreateRequest {
    path: s_str(),
    data: s_data(),
    acl: s_acls(),
    flags: any::<i32>(),
});
strategy!(s_create_ttl_request -> CreateTtlRequest {
    path: s_str(),
    data: s_data(),
    acl: s_acls(),
    flags: any::<i32>(),
    ttl: any::<i64>(),
});
strategy!(s_delete_request -> DeleteRequest { path: s_str(), version: any::<i32>() });
strategy!(s_path_watch_request -> PathWatchRequest { path: s_str(), watch: any::<bool>() });
strategy!(s_path_request -> PathRequest { path: s_str() });
strategy!(s_check_version_request -> CheckVersionRequest { path: s_str(), version: any::<i32>() });
strategy!(s_set_acl_request -> SetAclRequest { path: s_str(), acl: s_acls(), version: any::<i32>() });
strategy!(s_stat_response -> StatResponse { stat: s_stat() });
strategy!(s_add_watch_request -> AddWatchRequest { path: s_str(), mode: any::<i32>() });
strategy!(s_watcher_event -> WatcherEvent { event_type: any::<i32>(), state: any::<i32>(), path: s_str() });
strategy!(s_error_response -> ErrorResponse { err: any::<i32>() });
strategy!(s_create_response -> CreateResponse { path: s_str() });
strategy!(s_create2_response -> Create2Response { path: s_str(), stat: s_stat() });
strategy!(s_get_data_response -> GetDataResponse { data: s_data(), stat: s_stat() });
strategy!(s_get_children_response -> GetChildrenResponse { children: s_strings() });
strategy!(s_get_all_children_number_response -> GetAllChildrenNumberResponse { total_number: any::<i32>() });
strategy!(s_get_children2_response -> GetChildren2Response { children: s_strings(), stat: s_stat() });
strategy!(s_get_acl_response -> GetAclResponse { acl: s_acls(), stat: s_stat() });
strategy!(s_watch_type_request -> WatchTypeRequest { path: s_str(), watch_type: any::<i32>() });
strategy!(s_get_ephemerals_response -> GetEphemeralsResponse { ephemerals: s_strings() });
strategy!(s_who_am_i_response -> WhoAmIResponse { client_info: vec(s_client_info(), 0..4) });

// quorum.rs
strategy!(s_learner_info -> LearnerInfo {
    server_id: any::<i64>(),
    protocol_version: any::<i32>(),
    config_version: any::<i64>(),
});
strategy!(s_quorum_packet -> QuorumPacket {
    packet_type: any::<i32>(),
    zxid: any::<i64>(),
    data: s_bytes(),
    auth_info: vec(s_id(), 0..4),
});
strategy!(s_quorum_auth_packet -> QuorumAuthPacket { magic: any::<i64>(), status: any::<i32>(), token: s_bytes() });
strategy!(s_file_header -> FileHeader { magic: any::<i32>(), version: any::<i32>(), dbid: any::<i64>() });

// txn.rs
strategy!(s_txn_digest -> TxnDigest { version: any::<i32>(), tree_digest: any::<i64>() });
strategy!(s_txn_header -> TxnHeader {
    client_id: any::<i64>(),
    cxid: any::<i32>(),
    zxid: any::<i64>(),
    time: any::<i64>(),
    op: any::<i32>(),
});
strategy!(s_create_txn -> CreateTxn {
    path: s_str(),
    data: s_data(),
    acl: s_acls(),
    ephemeral: any::<bool>(),
    parent_cversion: any::<i32>(),
});
strategy!(s_create_ttl_txn -> CreateTtlTxn {
    path: s_str(),
    data: s_data(),
    acl: s_acls(),
    parent_cversion: any::<i32>(),
    ttl: any::<i64>(),
});
strategy!(s_create_container_txn -> CreateContainerTxn {
    path: s_str(),
    data: s_data(),
    acl: s_acls(),
    parent_cversion: any::<i32>(),
});
strategy!(s_delete_txn -> DeleteTxn { path: s_str() });
strategy!(s_set_data_txn -> SetDataTxn { path: s_str(), data: s_data(), version: any::<i32>() });
strategy!(s_check_version_txn -> CheckVersionTxn { path: s_str(), version: any::<i32>() });
strategy!(s_set_acl_txn -> SetAclTxn { path: s_str(), acl: s_acls(), version: any::<i32>() });
strategy!(s_create_session_txn -> CreateSessionTxn { time_out: any::<i32>() });
strategy!(s_close_session_txn -> CloseSessionTxn { paths_to_delete: s_strings() });
strategy!(s_error_txn -> ErrorTxn { err: any::<i32>() });
strategy!(s_sub_txn -> SubTxn { op: any::<i32>(), data: s_bytes() });

/// Every TxnBody variant except Multi.
pub fn s_txn_body_leaf() -> impl Strategy<Value = TxnBody> {
    prop_oneof![
        s_create_txn().prop_map(TxnBody::Create),
        s_create_txn().prop_map(TxnBody::Create2),
        s_create_container_txn().prop_map(TxnBody::CreateContainer),
        s_create_ttl_txn().prop_map(TxnBody::CreateTtl),
        s_delete_txn().prop_map(TxnBody::Delete),
        s_delete_txn().prop_map(TxnBody::DeleteContainer),
        s_set_data_txn().prop_map(TxnBody::SetData),
        s_set_acl_txn().prop_map(TxnBody::SetAcl),
        s_check_version_txn().prop_map(TxnBody::Check),
        s_create_session_txn().prop_map(TxnBody::CreateSession),
        s_close_session_txn().prop_map(TxnBody::CloseSession),
        s_error_txn().prop_map(TxnBody::Error),
        s_set_data_txn().prop_map(TxnBody::Reconfig),
    ]
}

/// Every TxnBody variant, Multi holding any leaf variant (one level deep).
pub fn s_txn_body() -> impl Strategy<Value = TxnBody> {
    prop_oneof![
        3 => s_txn_body_leaf(),
        1 => vec(s_txn_body_leaf(), 0..5).prop_map(TxnBody::Multi),
    ]
}

pub fn s_txn() -> impl Strategy<Value = Txn> {
    (s_txn_header(), s_txn_body(), option::of(s_txn_digest())).prop_map(
        |(mut header, body, digest)| {
            header.op = body.op();
            Txn {
                header,
                body,
                digest,
            }
        },
    )
}

// request.rs
pub fn s_create_op() -> impl Strategy<Value = i32> {
    select(vec![op::CREATE, op::CREATE2, op::CREATE_CONTAINER])
}

pub fn s_multi_write_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        (s_create_op(), s_create_request()).prop_map(|(o, r)| MultiOp::Create(o, r)),
        s_create_ttl_request().prop_map(MultiOp::CreateTtl),
        s_delete_request().prop_map(MultiOp::Delete),
        s_set_data_request().prop_map(MultiOp::SetData),
        s_check_version_request().prop_map(MultiOp::Check),
    ]
}

pub fn s_multi_read_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![
        s_path_watch_request().prop_map(MultiOp::GetChildren),
        s_path_watch_request().prop_map(MultiOp::GetData),
    ]
}

pub fn s_multi_op() -> impl Strategy<Value = MultiOp> {
    prop_oneof![s_multi_write_op(), s_multi_read_op()]
}

/// Every Request variant.
pub fn s_request() -> impl Strategy<Value = Request> {
    prop_oneof![
        (s_create_op(), s_create_request()).prop_map(|(o, r)| Request::Create(o, r)),
        s_create_ttl_request().prop_map(Request::CreateTtl),
        s_delete_request().prop_map(Request::Delete),
        s_path_watch_request().prop_map(Request::Exists),
        s_path_watch_request().prop_map(Request::GetData),
        s_set_data_request().prop_map(Request::SetData),
        s_path_request().prop_map(Request::GetAcl),
        s_set_acl_request().prop_map(Request::SetAcl),
        s_path_watch_request().prop_map(Request::GetChildren),
        s_path_watch_request().prop_map(Request::GetChildren2),
        s_path_request().prop_map(Request::Sync),
        Just(Request::Ping),
        s_check_version_request().prop_map(Request::Check),
        vec(s_multi_write_op(), 0..5).prop_map(Request::Multi),
        vec(s_multi_read_op(), 0..5).prop_map(Request::MultiRead),
        s_reconfig_request().prop_map(Request::Reconfig),
        s_watch_type_request().prop_map(Request::CheckWatches),
        s_watch_type_request().prop_map(Request::RemoveWatches),
        s_auth_packet().prop_map(Request::Auth),
        s_set_watches().prop_map(Request::SetWatches),
        s_set_watches2().prop_map(Request::SetWatches2),
        s_sasl_token().prop_map(Request::Sasl),
        s_path_request().prop_map(Request::GetEphemerals),
        s_path_request().prop_map(Request::GetAllChildrenNumber),
        s_add_watch_request().prop_map(Request::AddWatch),
        Just(Request::WhoAmI),
        Just(Request::CloseSession),
    ]
}

/// Calls `$m!(Type)` style callbacks: `$m` receives every fixed-shape record
/// type of the crate (everything implementing `Record`).
#[macro_export]
macro_rules! for_each_record {
    ($m:ident) => {
        $m!(
            Id,
            Acl,
            Stat,
            StatPersisted,
            ClientInfo,
            ConnectRequest,
            ConnectResponse,
            SetWatches,
            SetWatches2,
            RequestHeader,
            MultiHeader,
            AuthPacket,
            ReplyHeader,
            GetDataRequest,
            SetDataRequest,
            ReconfigRequest,
            SetDataResponse,
            SaslToken,
            CreateRequest,
            CreateTtlRequest,
            DeleteRequest,
            PathWatchRequest,
            PathRequest,
            CheckVersionRequest,
            SetAclRequest,
            StatResponse,
            AddWatchRequest,
            WatcherEvent,
            ErrorResponse,
            CreateResponse,
            Create2Response,
            GetDataResponse,
            GetChildrenResponse,
            GetAllChildrenNumberResponse,
            GetChildren2Response,
            GetAclResponse,
            WatchTypeRequest,
            GetEphemeralsResponse,
            WhoAmIResponse,
            LearnerInfo,
            QuorumPacket,
            QuorumAuthPacket,
            FileHeader,
            TxnDigest,
            TxnHeader,
            CreateTxn,
            CreateTtlTxn,
            CreateContainerTxn,
            DeleteTxn,
            SetDataTxn,
            CheckVersionTxn,
            SetAclTxn,
            CreateSessionTxn,
            CloseSessionTxn,
            ErrorTxn,
            SubTxn
        )
    };
}
