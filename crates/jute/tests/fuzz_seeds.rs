//! The seed corpus of the cargo-fuzz targets in /fuzz.
//!
//! `cargo test -p jute --test fuzz_seeds -- --ignored` (re)writes
//! fuzz/corpus/<target>/<name>; the normal run checks the committed seeds
//! still decode as their target expects.

use bytes::{Bytes, BytesMut};
use jute::consts::{add_watch_mode, op, perms, watcher_type};
use jute::data::*;
use jute::proto::*;
use jute::request::{MultiOp, Request};
use jute::txn::*;
use jute::{Reader, Record};
use std::path::PathBuf;

fn corpus_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus")
}

fn acl() -> Vec<Acl> {
    vec![
        Acl::new(perms::ALL, "world", "anyone"),
        Acl::new(perms::READ, "digest", "u:hash"),
    ]
}

fn create(path: &str, flags: i32) -> CreateRequest {
    CreateRequest {
        path: path.into(),
        data: Some(Bytes::from_static(b"x")),
        acl: acl(),
        flags,
    }
}

fn pw(path: &str, watch: bool) -> PathWatchRequest {
    PathWatchRequest {
        path: path.into(),
        watch,
    }
}

fn p(path: &str) -> PathRequest {
    PathRequest { path: path.into() }
}

fn requests() -> Vec<(&'static str, Request)> {
    vec![
        ("create", Request::Create(op::CREATE, create("/a", 0))),
        ("create2", Request::Create(op::CREATE2, create("/a/b-", 3))),
        (
            "create_container",
            Request::Create(op::CREATE_CONTAINER, create("/c", 4)),
        ),
        (
            "create_ttl",
            Request::CreateTtl(CreateTtlRequest {
                path: "/t".into(),
                data: Some(Bytes::new()),
                acl: acl(),
                flags: 5,
                ttl: 1000,
            }),
        ),
        (
            "delete",
            Request::Delete(DeleteRequest {
                path: "/a".into(),
                version: -1,
            }),
        ),
        ("exists", Request::Exists(pw("/a", true))),
        ("get_data", Request::GetData(pw("/a", false))),
        (
            "set_data",
            Request::SetData(SetDataRequest {
                path: "/a".into(),
                data: Some(Bytes::from_static(b"hello")),
                version: 2,
            }),
        ),
        ("get_acl", Request::GetAcl(p("/a"))),
        (
            "set_acl",
            Request::SetAcl(SetAclRequest {
                path: "/a".into(),
                acl: acl(),
                version: 0,
            }),
        ),
        ("get_children", Request::GetChildren(pw("/", true))),
        ("get_children2", Request::GetChildren2(pw("/", false))),
        ("sync", Request::Sync(p("/"))),
        ("ping", Request::Ping),
        (
            "check",
            Request::Check(CheckVersionRequest {
                path: "/a".into(),
                version: 1,
            }),
        ),
        (
            "multi",
            Request::Multi(vec![
                MultiOp::Create(op::CREATE, create("/m", 0)),
                MultiOp::Check(CheckVersionRequest {
                    path: "/m".into(),
                    version: 0,
                }),
                MultiOp::SetData(SetDataRequest {
                    path: "/m".into(),
                    data: Some(Bytes::from_static(b"y")),
                    version: -1,
                }),
                MultiOp::Delete(DeleteRequest {
                    path: "/m".into(),
                    version: -1,
                }),
            ]),
        ),
        (
            "multi_read",
            Request::MultiRead(vec![
                MultiOp::GetChildren(pw("/", false)),
                MultiOp::GetData(pw("/a", false)),
            ]),
        ),
        (
            "reconfig",
            Request::Reconfig(ReconfigRequest {
                joining_servers: "server.4=h:2888:3888;2181".into(),
                leaving_servers: "3".into(),
                new_members: String::new(),
                cur_config_id: -1,
            }),
        ),
        (
            "check_watches",
            Request::CheckWatches(WatchTypeRequest {
                path: "/a".into(),
                watch_type: watcher_type::DATA,
            }),
        ),
        (
            "remove_watches",
            Request::RemoveWatches(WatchTypeRequest {
                path: "/a".into(),
                watch_type: watcher_type::ANY,
            }),
        ),
        (
            "auth",
            Request::Auth(AuthPacket {
                auth_type: 0,
                scheme: "digest".into(),
                auth: Bytes::from_static(b"u:p"),
            }),
        ),
        (
            "set_watches",
            Request::SetWatches(SetWatches {
                relative_zxid: 5,
                data_watches: vec!["/a".into()],
                exist_watches: vec!["/b".into()],
                child_watches: vec!["/".into()],
            }),
        ),
        (
            "set_watches2",
            Request::SetWatches2(SetWatches2 {
                relative_zxid: 5,
                data_watches: vec!["/a".into()],
                exist_watches: vec![],
                child_watches: vec!["/".into()],
                persistent_watches: vec!["/p".into()],
                persistent_recursive_watches: vec!["/r".into()],
            }),
        ),
        (
            "sasl",
            Request::Sasl(SaslToken {
                token: Bytes::from_static(b"\x01\x02token"),
            }),
        ),
        ("get_ephemerals", Request::GetEphemerals(p("/"))),
        (
            "get_all_children_number",
            Request::GetAllChildrenNumber(p("/a")),
        ),
        (
            "add_watch",
            Request::AddWatch(AddWatchRequest {
                path: "/a".into(),
                mode: add_watch_mode::PERSISTENT_RECURSIVE,
            }),
        ),
        ("who_am_i", Request::WhoAmI),
        ("close_session", Request::CloseSession),
    ]
}

fn txn(op: i32, body: TxnBody, digest: bool) -> Txn {
    Txn {
        header: TxnHeader {
            client_id: 0x0100_0000_0000_0001,
            cxid: 7,
            zxid: 0x1_0000_0009,
            time: 1_700_000_000_000,
            op,
        },
        body,
        digest: digest.then_some(TxnDigest {
            version: 2,
            tree_digest: 0x0123_4567_89ab_cdef,
        }),
    }
}

fn txns() -> Vec<(&'static str, Txn)> {
    let create = CreateTxn {
        path: "/a".into(),
        data: Some(Bytes::from_static(b"x")),
        acl: acl(),
        ephemeral: true,
        parent_cversion: 3,
    };
    let bodies = vec![
        ("create", TxnBody::Create(create.clone())),
        ("create2", TxnBody::Create2(create)),
        (
            "create_container",
            TxnBody::CreateContainer(CreateContainerTxn {
                path: "/c".into(),
                data: Some(Bytes::new()),
                acl: acl(),
                parent_cversion: 1,
            }),
        ),
        (
            "create_ttl",
            TxnBody::CreateTtl(CreateTtlTxn {
                path: "/t".into(),
                data: Some(Bytes::new()),
                acl: acl(),
                parent_cversion: 1,
                ttl: 500,
            }),
        ),
        ("delete", TxnBody::Delete(DeleteTxn { path: "/a".into() })),
        (
            "delete_container",
            TxnBody::DeleteContainer(DeleteTxn { path: "/c".into() }),
        ),
        (
            "set_data",
            TxnBody::SetData(SetDataTxn {
                path: "/a".into(),
                data: Some(Bytes::from_static(b"v2")),
                version: 1,
            }),
        ),
        (
            "set_acl",
            TxnBody::SetAcl(SetAclTxn {
                path: "/a".into(),
                acl: acl(),
                version: 1,
            }),
        ),
        (
            "check",
            TxnBody::Check(CheckVersionTxn {
                path: "/a".into(),
                version: 1,
            }),
        ),
        (
            "create_session",
            TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 }),
        ),
        (
            "close_session",
            TxnBody::CloseSession(CloseSessionTxn {
                paths_to_delete: vec!["/e1".into(), "/e2".into()],
            }),
        ),
        ("error", TxnBody::Error(ErrorTxn { err: -110 })),
        (
            "reconfig",
            TxnBody::Reconfig(SetDataTxn {
                path: "/zookeeper/config".into(),
                data: Some(Bytes::from_static(
                    b"server.1=h:2888:3888;2181\nversion=100000000",
                )),
                version: -1,
            }),
        ),
        (
            "multi",
            TxnBody::Multi(vec![
                TxnBody::Create(CreateTxn {
                    path: "/m".into(),
                    ..Default::default()
                }),
                TxnBody::Check(CheckVersionTxn {
                    path: "/m".into(),
                    version: 0,
                }),
                TxnBody::Error(ErrorTxn { err: 0 }),
                TxnBody::Delete(DeleteTxn { path: "/m".into() }),
            ]),
        ),
    ];
    let mut out = Vec::new();
    for (i, (name, body)) in bodies.into_iter().enumerate() {
        out.push((name, txn(body.op(), body, i % 2 == 0)));
    }
    // A pre-3.6 closeSession: header only.
    out.push((
        "close_session_legacy",
        txn(
            op::CLOSE_SESSION,
            TxnBody::CloseSession(CloseSessionTxn::default()),
            false,
        ),
    ));
    out
}

fn encode_with<F: FnOnce(&mut BytesMut)>(f: F) -> Vec<u8> {
    let mut b = BytesMut::new();
    f(&mut b);
    b.to_vec()
}

/// (target, file name, contents) for every seed.
fn seeds() -> Vec<(&'static str, String, Vec<u8>)> {
    let mut out = Vec::new();
    for (name, req) in requests() {
        let mut b = req.op().to_be_bytes().to_vec();
        req.write(&mut b);
        out.push(("request", name.to_string(), b));
    }
    for (name, t) in txns() {
        out.push(("txn", name.to_string(), encode_with(|w| t.write(w))));
    }
    let conn = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 30000,
        session_id: 0,
        passwd: Bytes::from(vec![0u8; 16]),
        read_only: false,
    };
    let full = conn.to_bytes().to_vec();
    out.push(("connect", "new_session".into(), full.clone()));
    out.push((
        "connect",
        "legacy_no_read_only".into(),
        full[..full.len() - 1].to_vec(),
    ));
    let reconnect = ConnectRequest {
        last_zxid_seen: 0x1_0000_0005,
        session_id: 0x0100_0000_0000_0001,
        passwd: Bytes::from_static(&[0xab; 16]),
        read_only: true,
        ..conn
    };
    out.push((
        "connect",
        "reconnect_read_only".into(),
        reconnect.to_bytes().to_vec(),
    ));
    let resp = ConnectResponse {
        protocol_version: 0,
        time_out: 30000,
        session_id: 0x0100_0000_0000_0001,
        passwd: Bytes::from_static(&[0xab; 16]),
        read_only: false,
    };
    out.push(("connect", "response".into(), resp.to_bytes().to_vec()));

    // frame: first byte is the limit, then the buffer.
    let ping = encode_with(|w| {
        RequestHeader {
            xid: -2,
            op: op::PING,
        }
        .write(w)
    });
    let mut whole = vec![64u8];
    whole.extend_from_slice(&(ping.len() as i32).to_be_bytes());
    whole.extend_from_slice(&ping);
    out.push(("frame", "whole".into(), whole.clone()));
    out.push(("frame", "partial".into(), whole[..whole.len() - 3].to_vec()));
    let mut two = whole.clone();
    two.extend_from_slice(&whole[1..]);
    out.push(("frame", "two_frames".into(), two));
    out.push((
        "frame",
        "too_long".into(),
        vec![4, 0, 0, 0, 5, 1, 2, 3, 4, 5],
    ));
    out.push((
        "frame",
        "negative".into(),
        vec![255, 0xff, 0xff, 0xff, 0xfe],
    ));
    out.push(("frame", "empty_payload".into(), vec![0, 0, 0, 0, 0]));
    out
}

#[test]
#[ignore = "writes fuzz/corpus; run with --ignored to regenerate"]
fn write_fuzz_seeds() {
    for (target, name, bytes) in seeds() {
        let dir = corpus_dir().join(target);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// The seeds decode as their fuzz target expects, and match what this file
/// would generate.
#[test]
fn committed_seeds_are_valid() {
    let root = corpus_dir();
    if !root.exists() {
        return;
    }
    for (target, name, bytes) in seeds() {
        let path = root.join(target).join(&name);
        let on_disk = std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
        assert_eq!(
            on_disk, bytes,
            "{path:?} is stale: regenerate with --ignored"
        );
        match target {
            "request" => {
                let opc = i32::from_be_bytes(bytes[..4].try_into().unwrap());
                let mut r = Reader::from_slice(&bytes[4..]);
                Request::read(opc, &mut r).unwrap();
                assert_eq!(r.remaining(), 0, "{name}");
            }
            "txn" => {
                let mut r = Reader::from_slice(&bytes);
                Txn::read(&mut r).unwrap();
                assert_eq!(r.remaining(), 0, "{name}");
            }
            "connect" if name == "response" => {
                ConnectResponse::read(&mut Reader::from_slice(&bytes)).unwrap();
            }
            "connect" => {
                ConnectRequest::read(&mut Reader::from_slice(&bytes)).unwrap();
            }
            _ => {}
        }
    }
}
