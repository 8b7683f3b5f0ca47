//! Every client operation through an independent client library
//! (`zookeeper-client`), with ZooKeeper's error codes and exact Stat
//! bookkeeping.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{BufMut, BytesMut};
use common::{ephemeral, mode, persistent, Raw, TestServer};
use jute::codec::{Reader, Record};
use jute::consts::{op, ErrorCode};
use jute::data::Acl as JAcl;
use jute::proto::{CreateRequest, MultiHeader, PathRequest, SetDataRequest};
use zk::{Acl, CreateMode, Error, MultiReadResult, MultiWriteError, MultiWriteResult, Permission};
use zookeeper_client as zk;

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

fn server_bad_arguments(r: Result<impl std::fmt::Debug, Error>) {
    match r {
        // The client library reports the server's -8 with this message; its
        // own path checks use other messages.
        Err(Error::BadArguments(m)) => assert_eq!(*m, "server error"),
        other => panic!("expected BadArguments from the server, got {other:?}"),
    }
}

#[tokio::test]
async fn create_persistent_returns_full_stat() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let before = now_ms();
    let (stat, seq) = c.create("/p", b"data", &persistent()).await.unwrap();
    let after = now_ms();
    assert_eq!(seq.into_i64(), -1);
    assert!(stat.czxid > 0);
    assert_eq!(stat.mzxid, stat.czxid);
    assert_eq!(stat.pzxid, stat.czxid);
    assert_eq!(stat.ctime, stat.mtime);
    assert!(
        (before - 1000..=after + 1000).contains(&stat.ctime),
        "ctime {} is wall-clock ms",
        stat.ctime
    );
    assert_eq!(stat.version, 0);
    assert_eq!(stat.cversion, 0);
    assert_eq!(stat.aversion, 0);
    assert_eq!(stat.ephemeral_owner, 0);
    assert_eq!(stat.data_length, 4);
    assert_eq!(stat.num_children, 0);

    let (data, got) = c.get_data("/p").await.unwrap();
    assert_eq!(data, b"data");
    assert_eq!(got, stat);
    assert_eq!(c.check_stat("/p").await.unwrap(), Some(stat));

    // Parent bookkeeping: the root saw one more child.
    let (_, root) = c.get_children("/").await.unwrap();
    assert_eq!(root.pzxid, stat.czxid);
    assert_eq!(root.num_children, 2, "zookeeper and p");
    // Clients see creates + deletes as DataNode.copyStat computes it:
    // 2 * (stored creates) - numChildren. /zookeeper is built in, not
    // created, so the root's one create and two children show as 0.
    assert_eq!(root.cversion, 0, "2 * 1 create - 2 children");
    assert_eq!(
        (root.czxid, root.mzxid, root.version, root.aversion),
        (0, 0, 0, 0)
    );
    s.stop().await;
}

#[tokio::test]
async fn create_old_style_opcode_returns_path_only() {
    let s = TestServer::start().await;
    // A client that believes the server is 3.4 sends opcode create (1).
    let c = s
        .connect(common::connector().with_server_version(3, 4, 0))
        .await;
    let (stat, _) = c.create("/old", b"", &persistent()).await.unwrap();
    assert!(stat.is_invalid(), "create (not create2) carries no stat");
    assert!(c.check_stat("/old").await.unwrap().is_some());
    s.stop().await;
}

#[tokio::test]
async fn sequential_names_follow_parent_cversion() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create("/seq", b"", &persistent()).await.unwrap();

    let seq_p = mode(CreateMode::PersistentSequential);
    let seq_e = mode(CreateMode::EphemeralSequential);
    let (_, n0) = c.create("/seq/n-", b"", &seq_p).await.unwrap();
    assert_eq!(n0.into_i64(), 0);
    assert_eq!(n0.to_string(), "0000000000");

    c.create("/seq/x", b"", &persistent()).await.unwrap();
    let (st2, n2) = c.create("/seq/n-", b"", &seq_e).await.unwrap();
    assert_eq!(n2.into_i64(), 2, "cversion counts every child created");
    assert_eq!(st2.ephemeral_owner, c.session_id().0);

    // A delete does not change the stored cversion (the count of creates
    // the suffixes come from), but clients see creates + deletes
    // (DataNode.copyStat: 2 * creates - numChildren).
    let (_, parent) = c.get_data("/seq").await.unwrap();
    assert_eq!((parent.cversion, parent.num_children), (3, 3));
    c.delete("/seq/x", None).await.unwrap();
    let (_, parent) = c.get_data("/seq").await.unwrap();
    assert_eq!(
        (parent.cversion, parent.num_children),
        (4, 2),
        "3 creates + 1 delete"
    );
    let (_, n3) = c.create("/seq/n-", b"", &seq_p).await.unwrap();
    assert_eq!(n3.into_i64(), 3, "the suffix counts creates only");

    // A sequential node right under a name ending in '/' is just digits.
    let (_, d) = c.create("/seq/", b"", &seq_p).await.unwrap();
    assert_eq!(d.into_i64(), 4);

    let mut kids = c.list_children("/seq").await.unwrap();
    kids.sort();
    assert_eq!(
        kids,
        vec!["0000000004", "n-0000000000", "n-0000000002", "n-0000000003"]
    );
    let (_, parent) = c.get_data("/seq").await.unwrap();
    assert_eq!(parent.cversion, 6, "5 creates + 1 delete");
    assert_eq!(parent.num_children, 4);
    s.stop().await;
}

#[tokio::test]
async fn ephemeral_and_container_owners() {
    let s = TestServer::with(&[], &[("znode.container.checkIntervalMs", "50")]).await;
    let c = s.client().await;
    let (st, _) = c.create("/e", b"", &ephemeral()).await.unwrap();
    assert_eq!(st.ephemeral_owner, c.session_id().0);
    assert_eq!(
        c.create("/e/child", b"", &persistent()).await.unwrap_err(),
        Error::NoChildrenForEphemerals
    );
    assert_eq!(
        c.create("/e/s-", b"", &mode(CreateMode::PersistentSequential))
            .await
            .unwrap_err(),
        Error::NoChildrenForEphemerals
    );

    let (st, _) = c
        .create("/cont", b"c", &mode(CreateMode::Container))
        .await
        .unwrap();
    // The container marker is stored in the owner field but, as in
    // DataNode.copyStat, clients see only normal ephemerals' owners.
    assert_eq!(st.ephemeral_owner, 0, "containers show no owner");
    assert_eq!(st.data_length, 1);
    assert_eq!(c.check_stat("/cont").await.unwrap(), Some(st));
    // Containers may have children.
    c.create("/cont/kid", b"", &persistent()).await.unwrap();
    assert_eq!(c.list_children("/cont").await.unwrap(), vec!["kid"]);
    // What tells a container apart for a client: once its last child goes
    // it is removed, unlike a persistent node emptied the same way.
    c.create("/plain", b"", &persistent()).await.unwrap();
    c.create("/plain/kid", b"", &persistent()).await.unwrap();
    c.delete("/plain/kid", None).await.unwrap();
    let (_, cont_gone) = c.check_and_watch_stat("/cont").await.unwrap();
    c.delete("/cont/kid", None).await.unwrap();
    let e = common::within("the emptied container to go", cont_gone.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (zk::EventType::NodeDeleted, "/cont")
    );
    assert!(
        c.check_stat("/plain").await.unwrap().is_some(),
        "an emptied persistent node stays"
    );
    s.stop().await;
}

#[tokio::test]
async fn ttl_nodes_need_extended_types() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let ttl = persistent().with_ttl(Duration::from_secs(10));
    assert_eq!(
        c.create("/ttl", b"", &ttl).await.unwrap_err(),
        Error::Unimplemented
    );
    assert_eq!(c.check_stat("/ttl").await.unwrap(), None);
    s.stop().await;

    let s = TestServer::with(
        &[],
        &[
            ("zookeeper.extendedTypesEnabled", "true"),
            ("znode.container.checkIntervalMs", "50"),
        ],
    )
    .await;
    let c = s.client().await;
    let (st, _) = c.create("/ttl", b"t", &ttl).await.unwrap();
    // The TTL is stored in the owner field but, as in DataNode.copyStat,
    // clients see only normal ephemerals' owners.
    assert_eq!(st.ephemeral_owner, 0, "TTL nodes show no owner");
    assert_eq!(st.data_length, 1);
    assert_eq!(c.check_stat("/ttl").await.unwrap(), Some(st));
    let seq_ttl = mode(CreateMode::PersistentSequential).with_ttl(Duration::from_millis(1500));
    let start = std::time::Instant::now();
    let (st, n) = c.create("/ttl/s-", b"", &seq_ttl).await.unwrap();
    assert_eq!(n.into_i64(), 0);
    assert_eq!(st.ephemeral_owner, 0);
    // What tells a client it made TTL nodes: the childless one goes once
    // its 1.5s have passed unmodified, while the 10s one stays.
    let (_, gone) = c.check_and_watch_stat("/ttl/s-0000000000").await.unwrap();
    let e = common::within("the 1.5s TTL node to expire", gone.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (zk::EventType::NodeDeleted, "/ttl/s-0000000000")
    );
    let waited = start.elapsed();
    assert!(
        waited >= Duration::from_millis(1400),
        "expired after {waited:?}, before its TTL"
    );
    assert!(
        c.check_stat("/ttl").await.unwrap().is_some(),
        "the 10s TTL node stays"
    );
    s.stop().await;
}

#[tokio::test]
async fn create_errors() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create("/x", b"", &persistent()).await.unwrap();
    assert_eq!(
        c.create("/x", b"", &persistent()).await.unwrap_err(),
        Error::NodeExists
    );
    assert_eq!(
        c.create("/missing/child", b"", &persistent())
            .await
            .unwrap_err(),
        Error::NoNode
    );
    // Relative components pass the client library's checks but not the
    // server's.
    server_bad_arguments(c.create("/.", b"", &persistent()).await);
    server_bad_arguments(c.create("/x/..", b"", &persistent()).await);
    // Failed creates changed nothing.
    let (_, st) = c.get_data("/x").await.unwrap();
    assert_eq!(st.cversion, 0);
    s.stop().await;
}

#[tokio::test]
async fn invalid_paths_are_bad_arguments() {
    let s = TestServer::start().await;
    let mut raw = Raw::connect(s.addr).await;
    let create = |path: &str| CreateRequest {
        path: path.to_owned(),
        data: bytes::Bytes::new().into(),
        acl: vec![JAcl::new(31, "world", "anyone")],
        flags: 0,
    };
    let bad = ErrorCode::BadArguments.code();
    assert_eq!(raw.err_of(op::CREATE, &create("/ok")).await, 0);
    for p in [
        "", "noslash", "/ok/", "/a\u{1}b", "/a\u{7f}", "/.", "/..", "/ok/.", "/nul\0x",
    ] {
        assert_eq!(
            raw.err_of(op::CREATE, &create(p)).await,
            bad,
            "create {p:?}"
        );
    }
    // The parent (everything before the last '/') is looked up before the
    // full path is validated: a missing parent is NoNode.
    let no_node = ErrorCode::NoNode.code();
    for p in ["/nope/.", "/ok//x", "/nope/"] {
        assert_eq!(
            raw.err_of(op::CREATE, &create(p)).await,
            no_node,
            "create {p:?}"
        );
    }
    assert_eq!(
        raw.err_of(op::CREATE, &create("/")).await,
        ErrorCode::NodeExists.code()
    );
    let set = |path: &str| SetDataRequest {
        path: path.to_owned(),
        data: bytes::Bytes::new().into(),
        version: -1,
    };
    assert_eq!(raw.err_of(op::SET_DATA, &set("/ok/")).await, bad);
    assert_eq!(raw.err_of(op::SET_DATA, &set("noslash")).await, bad);
    // Reads do not validate paths: a malformed one is just not there,
    // except that exists refuses a NUL.
    let read = |path: &str| jute::proto::PathWatchRequest {
        path: path.to_owned(),
        watch: false,
    };
    for p in ["noslash", "/ok/", "/ok//"] {
        assert_eq!(
            raw.err_of(op::GET_DATA, &read(p)).await,
            no_node,
            "getData {p:?}"
        );
        assert_eq!(
            raw.err_of(op::EXISTS, &read(p)).await,
            no_node,
            "exists {p:?}"
        );
    }
    assert_eq!(raw.err_of(op::EXISTS, &read("/ok\0")).await, bad);
    // Deleting the root or the system nodes is refused.
    for p in [
        "/",
        "/zookeeper",
        "/zookeeper/quota",
        "/zookeeper/config",
        "noslash",
    ] {
        let del = jute::proto::DeleteRequest {
            path: p.to_owned(),
            version: -1,
        };
        assert_eq!(raw.err_of(op::DELETE, &del).await, bad, "delete {p:?}");
    }
    s.stop().await;
}

#[tokio::test]
async fn delete_checks_version_then_children() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create("/d", b"", &persistent()).await.unwrap();
    c.create("/d/kid", b"", &persistent()).await.unwrap();
    assert_eq!(
        c.delete("/d", Some(7)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(c.delete("/d", None).await.unwrap_err(), Error::NotEmpty);
    assert_eq!(c.delete("/d", Some(0)).await.unwrap_err(), Error::NotEmpty);
    assert_eq!(c.delete("/d/none", None).await.unwrap_err(), Error::NoNode);
    c.set_data("/d/kid", b"v", None).await.unwrap();
    assert_eq!(
        c.delete("/d/kid", Some(0)).await.unwrap_err(),
        Error::BadVersion
    );
    c.delete("/d/kid", Some(1)).await.unwrap();
    c.delete("/d", Some(0)).await.unwrap();
    assert_eq!(c.check_stat("/d").await.unwrap(), None);
    server_bad_arguments(c.delete("/zookeeper", None).await);
    server_bad_arguments(c.delete("/zookeeper/quota", None).await);
    s.stop().await;
}

#[tokio::test]
async fn stat_bookkeeping_across_operations() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let (created, _) = c.create("/s", b"", &persistent()).await.unwrap();
    let z1 = created.czxid;

    // setData: version and mzxid move, czxid/pzxid/cversion stay.
    let st = c.set_data("/s", b"abc", None).await.unwrap();
    assert_eq!(st.mzxid, z1 + 1, "each write takes the next zxid");
    assert_eq!(
        (st.czxid, st.pzxid, st.version, st.cversion, st.aversion),
        (z1, z1, 1, 0, 0)
    );
    assert_eq!(st.data_length, 3);
    assert_eq!(st.ctime, created.ctime);
    assert!(st.mtime >= st.ctime);
    let (data, got) = c.get_data("/s").await.unwrap();
    assert_eq!((data.as_slice(), got), (&b"abc"[..], st));

    let st = c.set_data("/s", b"", Some(1)).await.unwrap();
    assert_eq!((st.version, st.mzxid, st.data_length), (2, z1 + 2, 0));
    assert_eq!(
        c.set_data("/s", b"x", Some(1)).await.unwrap_err(),
        Error::BadVersion
    );
    assert_eq!(
        c.set_data("/nope", b"x", None).await.unwrap_err(),
        Error::NoNode
    );
    // A failed write still consumed a zxid (its error txn): two of them.
    let (kid, _) = c.create("/s/a", b"", &persistent()).await.unwrap();
    assert_eq!(kid.czxid, z1 + 5);

    let (_, st) = c.get_data("/s").await.unwrap();
    assert_eq!(
        (st.mzxid, st.pzxid, st.cversion, st.num_children, st.version),
        (z1 + 2, z1 + 5, 1, 1, 2)
    );

    c.create("/s/b", b"", &ephemeral()).await.unwrap();
    c.delete("/s/a", None).await.unwrap();
    let (_, st) = c.get_data("/s").await.unwrap();
    assert_eq!(st.pzxid, z1 + 7, "delete moves pzxid");
    assert_eq!(st.cversion, 3, "clients count the delete: 2 creates + 1");
    assert_eq!(st.num_children, 1);

    // setACL moves aversion only.
    let st = c
        .set_acl(
            "/s",
            &[Acl::new(Permission::ALL, zk::AuthId::anyone())],
            Some(0),
        )
        .await
        .unwrap();
    assert_eq!(
        (st.aversion, st.version, st.mzxid, st.cversion),
        (1, 2, z1 + 2, 3)
    );
    assert_eq!(
        c.set_acl(
            "/s",
            &[Acl::new(Permission::ALL, zk::AuthId::anyone())],
            Some(0)
        )
        .await
        .unwrap_err(),
        Error::BadVersion
    );
    let (acl, st2) = c.get_acl("/s").await.unwrap();
    assert_eq!(acl, vec![Acl::new(Permission::ALL, zk::AuthId::anyone())]);
    assert_eq!(st2, st);
    assert_eq!(c.get_acl("/nope").await.unwrap_err(), Error::NoNode);
    s.stop().await;
}

#[tokio::test]
async fn children_counts_and_ephemerals() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let other = s.client().await;
    for p in ["/g", "/g/a", "/g/a/b", "/g/a/b/c", "/g/d"] {
        c.create(p, b"", &persistent()).await.unwrap();
    }
    let mut kids = c.list_children("/g").await.unwrap();
    kids.sort();
    assert_eq!(kids, vec!["a", "d"]);
    let (mut kids2, st) = c.get_children("/g").await.unwrap();
    kids2.sort();
    assert_eq!(kids2, kids);
    assert_eq!(st, c.get_data("/g").await.unwrap().1);
    assert_eq!(c.list_children("/nope").await.unwrap_err(), Error::NoNode);
    assert_eq!(c.get_children("/nope").await.unwrap_err(), Error::NoNode);

    assert_eq!(c.count_descendants_number("/g").await.unwrap(), 4);
    assert_eq!(c.count_descendants_number("/g/a/b/c").await.unwrap(), 0);
    // Root: everything but itself (zookeeper, quota, config and /g's five).
    assert_eq!(c.count_descendants_number("/").await.unwrap(), 8);
    assert_eq!(
        c.count_descendants_number("/nope").await.unwrap_err(),
        Error::NoNode
    );

    c.create("/g/e1", b"", &ephemeral()).await.unwrap();
    c.create("/g/a/e2", b"", &ephemeral()).await.unwrap();
    c.create("/e3", b"", &ephemeral()).await.unwrap();
    other.create("/g/theirs", b"", &ephemeral()).await.unwrap();
    let mut mine = c.list_ephemerals("/").await.unwrap();
    mine.sort();
    assert_eq!(mine, vec!["/e3", "/g/a/e2", "/g/e1"]);
    let mut under = c.list_ephemerals("/g").await.unwrap();
    under.sort();
    assert_eq!(under, vec!["/g/a/e2", "/g/e1"]);
    // A plain string prefix, not a path prefix.
    assert_eq!(c.list_ephemerals("/g/a/e").await.unwrap(), vec!["/g/a/e2"]);
    assert_eq!(
        c.list_ephemerals("/none").await.unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(other.list_ephemerals("/").await.unwrap(), vec!["/g/theirs"]);
    s.stop().await;
}

#[tokio::test]
async fn multi_commits_all_with_per_op_results() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create("/m", b"", &persistent()).await.unwrap();
    let mut w = c.new_multi_writer();
    w.add_create("/m/a", b"1", &persistent()).unwrap();
    w.add_set_data("/m/a", b"22", Some(0)).unwrap();
    w.add_check_version("/m/a", 1).unwrap();
    w.add_create("/m/s-", b"", &mode(CreateMode::PersistentSequential))
        .unwrap();
    w.add_delete("/m/s-0000000001", Some(0)).unwrap();
    let results = w.commit().await.unwrap();
    assert_eq!(results.len(), 5);
    let MultiWriteResult::Create {
        path,
        stat: created,
    } = &results[0]
    else {
        panic!("create result, got {:?}", results[0]);
    };
    assert_eq!(path, "/m/a");
    let zxid = created.czxid;
    let MultiWriteResult::SetData { stat } = &results[1] else {
        panic!("setData result, got {:?}", results[1]);
    };
    // All ops of a multi share one zxid.
    assert_eq!((stat.version, stat.mzxid, stat.czxid), (1, zxid, zxid));
    assert_eq!(results[2], MultiWriteResult::Check);
    assert!(
        matches!(&results[3], MultiWriteResult::Create { path, .. } if path == "/m/s-0000000001")
    );
    assert_eq!(results[4], MultiWriteResult::Delete);

    let (data, st) = c.get_data("/m/a").await.unwrap();
    assert_eq!(data, b"22");
    assert_eq!(st.mzxid, zxid);
    assert_eq!(c.list_children("/m").await.unwrap(), vec!["a"]);
    let (_, parent) = c.get_data("/m").await.unwrap();
    // Two creates (the second one's suffix was 1) and one delete.
    assert_eq!((parent.cversion, parent.pzxid), (3, zxid));
    s.stop().await;
}

#[tokio::test]
async fn multi_is_all_or_nothing_and_reports_the_failing_op() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create("/m", b"", &persistent()).await.unwrap();
    let before = c.get_data("/m").await.unwrap().1;

    let mut w = c.new_multi_writer();
    w.add_create("/m/a", b"", &persistent()).unwrap();
    w.add_set_data("/m", b"changed", None).unwrap();
    w.add_check_version("/m/a", 3).unwrap();
    w.add_delete("/m", None).unwrap();
    match w.commit().await {
        Err(MultiWriteError::OperationFailed { index, source }) => {
            assert_eq!(index, 2);
            assert_eq!(source, Error::BadVersion);
        }
        other => panic!("expected the check to fail, got {other:?}"),
    }
    assert_eq!(c.check_stat("/m/a").await.unwrap(), None);
    let (data, after) = c.get_data("/m").await.unwrap();
    assert!(data.is_empty());
    assert_eq!(
        (after.version, after.cversion, after.mzxid, after.pzxid),
        (before.version, before.cversion, before.mzxid, before.pzxid)
    );

    // Ops see the effects of earlier ops in the same multi.
    let mut w = c.new_multi_writer();
    w.add_create("/m/b", b"", &persistent()).unwrap();
    w.add_create("/m/b", b"", &persistent()).unwrap();
    match w.commit().await {
        Err(MultiWriteError::OperationFailed { index: 1, source }) => {
            assert_eq!(source, Error::NodeExists)
        }
        other => panic!("expected NodeExists at 1, got {other:?}"),
    }
    let mut w = c.new_multi_writer();
    w.add_create("/m/c", b"", &ephemeral()).unwrap();
    w.add_create("/m/c/d", b"", &persistent()).unwrap();
    match w.commit().await {
        Err(MultiWriteError::OperationFailed { index: 1, source }) => {
            assert_eq!(source, Error::NoChildrenForEphemerals)
        }
        other => panic!("expected NoChildrenForEphemerals at 1, got {other:?}"),
    }
    assert_eq!(c.list_children("/m").await.unwrap(), Vec::<String>::new());
    s.stop().await;
}

/// Encodes a multi request: (opcode, body) pairs then the end marker.
fn multi_body(ops: &[(i32, Vec<u8>)]) -> Vec<u8> {
    let mut b = BytesMut::new();
    for (opc, body) in ops {
        MultiHeader {
            op: *opc,
            done: false,
            err: -1,
        }
        .write(&mut b);
        b.put_slice(body);
    }
    MultiHeader {
        op: -1,
        done: true,
        err: -1,
    }
    .write(&mut b);
    b.to_vec()
}

/// Reads (op, err) of each result of a multi reply, skipping bodies of
/// errors only (the test only sends ops whose successful bodies it knows).
fn multi_errors(body: bytes::Bytes) -> Vec<(i32, i32)> {
    let mut r = Reader::new(body);
    let mut out = Vec::new();
    loop {
        let h = MultiHeader::read(&mut r).unwrap();
        if h.done {
            assert_eq!((h.op, h.err), (-1, -1));
            break;
        }
        match h.op {
            op::ERROR => {
                let e = r.i32().unwrap();
                assert_eq!(e, h.err, "ErrorResult body repeats the code");
                out.push((h.op, e));
            }
            op::CREATE => {
                r.string().unwrap();
                out.push((h.op, h.err));
            }
            other => panic!("unexpected op {other} in multi reply"),
        }
    }
    out
}

#[tokio::test]
async fn failed_multi_per_op_results_on_the_wire() {
    let s = TestServer::start().await;
    let mut raw = Raw::connect(s.addr).await;
    let create = |p: &str| {
        CreateRequest {
            path: p.to_owned(),
            data: bytes::Bytes::new().into(),
            acl: vec![JAcl::new(31, "world", "anyone")],
            flags: 0,
        }
        .to_bytes()
        .to_vec()
    };
    let body = multi_body(&[
        (op::CREATE, create("/a")),
        (op::CREATE, create("/missing/b")),
        (op::CREATE, create("/c")),
    ]);
    let (h, reply) = raw.request(op::MULTI, &body).await;
    assert_eq!(h.err, 0, "a multi's header is OK; results carry errors");
    assert_eq!(
        multi_errors(reply),
        vec![
            (op::ERROR, 0),
            (op::ERROR, ErrorCode::NoNode.code()),
            (op::ERROR, ErrorCode::RuntimeInconsistency.code()),
        ]
    );
    let body = multi_body(&[(op::CREATE, create("/a")), (op::CREATE, create("/c"))]);
    let (h, reply) = raw.request(op::MULTI, &body).await;
    assert_eq!(h.err, 0);
    assert_eq!(multi_errors(reply), vec![(op::CREATE, 0), (op::CREATE, 0)]);
    // An empty multi succeeds with no results.
    let (h, reply) = raw.request(op::MULTI, &multi_body(&[])).await;
    assert_eq!(h.err, 0);
    assert_eq!(multi_errors(reply), vec![]);
    s.stop().await;
}

#[tokio::test]
async fn multi_read_reports_errors_per_op() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create("/r", b"rd", &persistent()).await.unwrap();
    c.create("/r/k", b"", &persistent()).await.unwrap();
    c.create(
        "/secret",
        b"",
        &CreateMode::Persistent.with_acls(zk::Acls::new(&[Acl::new(
            Permission::READ,
            zk::AuthId::new("digest", "u:bm90LWEtcmVhbC1oYXNo"),
        )])),
    )
    .await
    .unwrap();
    let mut r = c.new_multi_reader();
    r.add_get_data("/r").unwrap();
    r.add_get_children("/r").unwrap();
    r.add_get_data("/missing").unwrap();
    r.add_get_children("/missing").unwrap();
    r.add_get_data("/secret").unwrap();
    let res = r.commit().await.unwrap();
    assert_eq!(res.len(), 5);
    match &res[0] {
        MultiReadResult::Data { data, stat } => {
            assert_eq!(data, b"rd");
            assert_eq!(*stat, c.get_data("/r").await.unwrap().1);
        }
        other => panic!("data, got {other:?}"),
    }
    assert!(matches!(&res[1], MultiReadResult::Children { children } if children == &["k"]));
    assert!(matches!(
        &res[2],
        MultiReadResult::Error { err: Error::NoNode }
    ));
    assert!(matches!(
        &res[3],
        MultiReadResult::Error { err: Error::NoNode }
    ));
    assert!(matches!(
        &res[4],
        MultiReadResult::Error { err: Error::NoAuth }
    ));
    s.stop().await;
}

#[tokio::test]
async fn sync_who_am_i_and_system_nodes() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.sync("/").await.unwrap();
    // sync does not require the path to exist.
    c.sync("/not/there").await.unwrap();

    let who = c.list_auth_users().await.unwrap();
    assert_eq!(who, vec![zk::AuthUser::new("ip", "127.0.0.1")]);

    assert!(c.check_stat("/zookeeper").await.unwrap().is_some());
    assert!(c.check_stat("/zookeeper/quota").await.unwrap().is_some());
    let mut kids = c.list_children("/zookeeper").await.unwrap();
    kids.sort();
    assert_eq!(kids, vec!["config", "quota"]);
    let mut root = c.list_children("/").await.unwrap();
    root.sort();
    assert_eq!(root, vec!["zookeeper"]);

    let (acl, st) = c.get_acl("/zookeeper/config").await.unwrap();
    assert_eq!(acl, vec![Acl::new(Permission::READ, zk::AuthId::anyone())]);
    assert_eq!(st.aversion, -1, "config ACL was set with version -1");
    let (cfg_data, cfg_stat) = c.get_config().await.unwrap();
    assert_eq!(cfg_stat, st);
    assert!(cfg_data.is_empty(), "standalone: no ensemble configuration");
    // Read-only for ordinary clients.
    assert_eq!(
        c.set_data("/zookeeper/config", b"x", None)
            .await
            .unwrap_err(),
        Error::NoAuth
    );
    assert_eq!(
        c.create("/zookeeper/config/x", b"", &persistent())
            .await
            .unwrap_err(),
        Error::NoAuth
    );
    s.stop().await;
}

#[tokio::test]
async fn get_all_children_number_on_the_wire() {
    // getAllChildrenNumber and getEphemerals via raw frames too, to pin the
    // encodings the library hides.
    let s = TestServer::start().await;
    let mut raw = Raw::connect(s.addr).await;
    let (h, body) = raw
        .request(
            op::GET_ALL_CHILDREN_NUMBER,
            &PathRequest { path: "/".into() }.to_bytes(),
        )
        .await;
    assert_eq!(h.err, 0);
    assert_eq!(Reader::new(body).i32().unwrap(), 3);
    let (h, body) = raw
        .request(
            op::GET_EPHEMERALS,
            &PathRequest { path: "/".into() }.to_bytes(),
        )
        .await;
    assert_eq!(h.err, 0);
    assert_eq!(
        Reader::new(body).vec::<String>().unwrap(),
        Vec::<String>::new()
    );
    s.stop().await;
}

#[tokio::test]
async fn create_flags_and_opcodes_on_the_wire() {
    let s = TestServer::with(&[], &[("znode.container.checkIntervalMs", "50")]).await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    let create = |path: &str, flags: i32| CreateRequest {
        path: path.to_owned(),
        data: bytes::Bytes::new().into(),
        acl: vec![JAcl::new(31, "world", "anyone")],
        flags,
    };
    let bad = ErrorCode::BadArguments.code();
    assert_eq!(raw.err_of(op::CREATE, &create("/f", 99)).await, bad);
    assert_eq!(raw.err_of(op::CREATE, &create("/f", -1)).await, bad);
    // TTL modes without extended types are unimplemented, whatever the op.
    assert_eq!(
        raw.err_of(op::CREATE, &create("/f", 5)).await,
        ErrorCode::Unimplemented.code()
    );
    // The container flag through plain create makes a persistent node;
    // the createContainer opcode makes a container whatever the flags say
    // (checked below). Neither shows an owner (DataNode.copyStat).
    assert_eq!(raw.err_of(op::CREATE2, &create("/f", 4)).await, 0);
    assert_eq!(
        c.check_stat("/f").await.unwrap().unwrap().ephemeral_owner,
        0
    );
    assert_eq!(raw.err_of(op::CREATE_CONTAINER, &create("/g", 0)).await, 0);
    assert_eq!(
        c.check_stat("/g").await.unwrap().unwrap().ephemeral_owner,
        0
    );
    // create answers with the path only, create2 adds the stat.
    let (h, body) = raw.request(op::CREATE, &create("/h", 0).to_bytes()).await;
    assert_eq!(h.err, 0);
    let mut r = Reader::new(body);
    assert_eq!(r.string().unwrap(), "/h");
    assert_eq!(r.remaining(), 0);
    let (h, body) = raw.request(op::CREATE2, &create("/i", 2).to_bytes()).await;
    assert_eq!(h.err, 0);
    let mut r = Reader::new(body);
    assert_eq!(
        r.string().unwrap(),
        "/i0000000003",
        "three successful creates"
    );
    let st = jute::data::Stat::read(&mut r).unwrap();
    assert_eq!(st.czxid, h.zxid, "the reply header carries the txn's zxid");
    assert_eq!(r.remaining(), 0);

    // Which of /f and /g is the container: emptied of a child, the
    // container is removed and the persistent node stays.
    for p in ["/f/kid", "/g/kid"] {
        assert_eq!(raw.err_of(op::CREATE, &create(p, 0)).await, 0);
    }
    let (_, g_gone) = c.check_and_watch_stat("/g").await.unwrap();
    c.delete("/f/kid", None).await.unwrap();
    c.delete("/g/kid", None).await.unwrap();
    let e = common::within("the emptied container to go", g_gone.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (zk::EventType::NodeDeleted, "/g")
    );
    assert!(c.check_stat("/f").await.unwrap().is_some(), "/f stays");
    s.stop().await;
}

#[tokio::test]
async fn ttl_opcode_checks_its_arguments() {
    let s = TestServer::with(&[], &[("zookeeper.extendedTypesEnabled", "true")]).await;
    let mut raw = Raw::connect(s.addr).await;
    let ttl = |flags: i32, ttl: i64| jute::proto::CreateTtlRequest {
        path: "/t".into(),
        data: bytes::Bytes::new().into(),
        acl: vec![JAcl::new(31, "world", "anyone")],
        flags,
        ttl,
    };
    let bad = ErrorCode::BadArguments.code();
    assert_eq!(
        raw.err_of(op::CREATE_TTL, &ttl(5, 0)).await,
        bad,
        "zero TTL"
    );
    assert_eq!(raw.err_of(op::CREATE_TTL, &ttl(5, -5)).await, bad);
    assert_eq!(
        raw.err_of(op::CREATE_TTL, &ttl(5, 0x00ff_ffff_ffff + 1))
            .await,
        bad,
        "TTL beyond the 40 bits available"
    );
    assert_eq!(
        raw.err_of(op::CREATE_TTL, &ttl(0, 1000)).await,
        bad,
        "not a TTL mode"
    );
    assert_eq!(
        raw.err_of(op::CREATE_TTL, &ttl(1, 1000)).await,
        bad,
        "ephemeral"
    );
    assert_eq!(
        raw.err_of(op::CREATE_TTL, &ttl(5, 0x00ff_ffff_ffff)).await,
        0
    );
    s.stop().await;
}

#[tokio::test]
async fn containers_and_ttl_nodes_are_cleaned_up() {
    let s = TestServer::with(
        &[],
        &[
            ("zookeeper.extendedTypesEnabled", "true"),
            ("znode.container.checkIntervalMs", "50"),
        ],
    )
    .await;
    let c = s.client().await;
    let container = mode(CreateMode::Container);
    c.create("/never-used", b"", &container).await.unwrap();
    c.create("/used", b"", &container).await.unwrap();
    c.create("/used/kid", b"", &persistent()).await.unwrap();
    c.create("/busy", b"", &container).await.unwrap();
    c.create("/busy/kid", b"", &persistent()).await.unwrap();
    let short_ttl = persistent().with_ttl(Duration::from_millis(300));
    c.create("/ttl-short", b"", &short_ttl).await.unwrap();
    c.create("/ttl-parent", b"", &short_ttl).await.unwrap();
    c.create("/ttl-parent/kid", b"", &persistent())
        .await
        .unwrap();
    c.create(
        "/ttl-long",
        b"",
        &persistent().with_ttl(Duration::from_secs(3600)),
    )
    .await
    .unwrap();

    let (_, used_gone) = c.check_and_watch_stat("/used").await.unwrap();
    let (_, ttl_gone) = c.check_and_watch_stat("/ttl-short").await.unwrap();
    c.delete("/used/kid", None).await.unwrap();
    let e = common::within("the emptied container to go", used_gone.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (zk::EventType::NodeDeleted, "/used")
    );
    let e = common::within("the TTL node to expire", ttl_gone.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (zk::EventType::NodeDeleted, "/ttl-short")
    );
    // Checks have run since; these stay.
    for p in ["/never-used", "/busy", "/ttl-parent", "/ttl-long"] {
        assert!(c.check_stat(p).await.unwrap().is_some(), "{p} stays");
    }
    s.stop().await;
}

#[tokio::test]
async fn reconfig_is_refused_in_standalone() {
    let update = || zk::EnsembleUpdate::New {
        ensemble: ["server.1=127.0.0.1:2888:3888;2181"].into_iter(),
    };
    let s = TestServer::start().await;
    let c = s.client().await;
    assert_eq!(
        c.update_ensemble(update(), None).await.unwrap_err(),
        Error::ReconfigDisabled
    );
    s.stop().await;
    let s = TestServer::with(&["reconfigEnabled=true"], &[]).await;
    let c = s.client().await;
    assert_eq!(
        c.update_ensemble(update(), None).await.unwrap_err(),
        Error::Unimplemented
    );
    s.stop().await;
}

#[tokio::test]
async fn another_session_may_delete_an_ephemeral() {
    let s = TestServer::start().await;
    let owner = s.client().await;
    let other = s.client().await;
    owner.create("/eph", b"", &ephemeral()).await.unwrap();
    other.delete("/eph", None).await.unwrap();
    assert_eq!(
        owner.list_ephemerals("/").await.unwrap(),
        Vec::<String>::new()
    );
    // A new node of the same name by someone else survives the owner.
    other.create("/eph", b"", &ephemeral()).await.unwrap();
    drop(owner);
    other.sync("/").await.unwrap();
    let st = other.check_stat("/eph").await.unwrap().unwrap();
    assert_eq!(st.ephemeral_owner, other.session_id().0);
    s.stop().await;
}

#[tokio::test]
async fn reply_headers_carry_the_last_zxid() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    let create = CreateRequest {
        path: "/z".into(),
        data: bytes::Bytes::new().into(),
        acl: vec![JAcl::new(31, "world", "anyone")],
        flags: 0,
    };
    let (h, _) = raw.request(op::CREATE, &create.to_bytes()).await;
    assert_eq!(h.err, 0);
    let z = h.zxid;
    assert!(z > 0);
    let get = jute::proto::PathWatchRequest {
        path: "/z".into(),
        watch: false,
    };
    let (h, _) = raw.request(op::GET_DATA, &get.to_bytes()).await;
    assert_eq!(h.zxid, z, "a read reports the last committed zxid");
    c.set_data("/z", b"x", None).await.unwrap();
    let (h, _) = raw.request(op::GET_DATA, &get.to_bytes()).await;
    assert_eq!(h.zxid, z + 1, "including other sessions' writes");
    // A failed write still takes a zxid, and its reply says so.
    let (h, _) = raw.request(op::CREATE, &create.to_bytes()).await;
    assert_eq!((h.err, h.zxid), (ErrorCode::NodeExists.code(), z + 2));
    // sync answers with the path it was given.
    let (h, body) = raw
        .request(op::SYNC, &PathRequest { path: "/z".into() }.to_bytes())
        .await;
    assert_eq!((h.err, h.zxid), (0, z + 2));
    assert_eq!(Reader::new(body).string().unwrap(), "/z");
    s.stop().await;
}

#[tokio::test]
async fn multi_ops_see_earlier_ops_of_the_same_multi() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create("/mm", b"", &persistent()).await.unwrap();
    c.create("/mm/a", b"", &persistent()).await.unwrap();
    let seq = mode(CreateMode::PersistentSequential);
    let mut w = c.new_multi_writer();
    w.add_set_data("/mm", b"1", Some(0)).unwrap();
    w.add_set_data("/mm", b"2", Some(1)).unwrap();
    w.add_check_version("/mm", 2).unwrap();
    w.add_delete("/mm/a", None).unwrap();
    w.add_create("/mm/a", b"again", &persistent()).unwrap();
    w.add_create("/mm/s-", b"", &seq).unwrap();
    w.add_create("/mm/s-", b"", &seq).unwrap();
    let res = w.commit().await.unwrap();
    let paths: Vec<_> = res
        .iter()
        .filter_map(|r| match r {
            MultiWriteResult::Create { path, .. } => Some(path.as_str()),
            _ => None,
        })
        .collect();
    // Suffixes count creates only (the delete of /mm/a does not move them).
    assert_eq!(paths, vec!["/mm/a", "/mm/s-0000000002", "/mm/s-0000000003"]);
    let (data, st) = c.get_data("/mm").await.unwrap();
    // Clients see 4 creates + 1 delete.
    assert_eq!(
        (data.as_slice(), st.version, st.cversion, st.num_children),
        (&b"2"[..], 2, 5, 3)
    );
    assert_eq!(c.get_data("/mm/a").await.unwrap().0, b"again");

    let mut w = c.new_multi_writer();
    w.add_create("/mm/x", b"", &persistent()).unwrap();
    w.add_create("/mm/x/y", b"", &persistent()).unwrap();
    w.add_delete("/mm/x", None).unwrap();
    match w.commit().await {
        Err(MultiWriteError::OperationFailed { index: 2, source }) => {
            assert_eq!(source, Error::NotEmpty)
        }
        other => panic!("expected NotEmpty at 2, got {other:?}"),
    }
    let mut w = c.new_multi_writer();
    w.add_delete("/mm/a", None).unwrap();
    w.add_set_data("/mm/a", b"", None).unwrap();
    match w.commit().await {
        Err(MultiWriteError::OperationFailed { index: 1, source }) => {
            assert_eq!(source, Error::NoNode)
        }
        other => panic!("expected NoNode at 1, got {other:?}"),
    }
    assert_eq!(c.count_descendants_number("/mm").await.unwrap(), 3);
    s.stop().await;
}

/// A raw pipelining session (the bench's), for replies read later.
async fn raw_session(addr: &str) -> bench::conn::Conn {
    common::within("session", bench::conn::Conn::connect(addr, 6000))
        .await
        .unwrap()
}

/// Waits until the server has applied the txn `zxid` (srvr shows the last
/// applied zxid, durable or not).
async fn applied(addr: &str, zxid: i64) {
    common::poll_until("the write applied", common::WAIT, || async move {
        let srvr = bench::conn::four_letter(addr, "srvr").await.ok()?;
        srvr.contains(&format!("Zxid: 0x{zxid:x}\n")).then_some(())
    })
    .await
}

/// Checks that nothing arrives on `c` yet (a correct server sends nothing,
/// so the short wait cannot fail it).
async fn nothing_yet(c: &mut bench::conn::Conn, what: &str) {
    let r = tokio::time::timeout(Duration::from_millis(300), c.read()).await;
    assert!(r.is_err(), "{what} came before the write was durable");
}

/// Standalone, a write waits for its fsync, and so does everything that
/// could show it: its reply, its watch event, and any read queued after
/// it, from any session (ZooKeeper's SyncRequestProcessor holds reads
/// behind pending flushes). Once durable, the event comes before the
/// replies and the reads show the write.
#[tokio::test]
async fn nothing_that_shows_a_write_goes_out_before_its_fsync() {
    use bytes::Bytes;
    use jute::consts::{event, xid};
    use std::sync::atomic::Ordering::SeqCst;

    let s = TestServer::start().await;
    let addr = &s.addr.to_string();
    let mut a = raw_session(addr).await;
    let v0 = Bytes::from_static(b"v0");
    for p in ["/d", "/e"] {
        let x = a.push_create(p, &v0, false);
        a.flush().await.unwrap();
        assert_eq!(a.reply_to(x).await.unwrap().err, 0, "create {p}");
    }
    // Sessions are txns too: opened before the fsyncs stall.
    let (mut watcher, mut reader) = (raw_session(addr).await, raw_session(addr).await);
    let x = watcher.push_get("/d", true);
    watcher.flush().await.unwrap();
    let z0 = common::within("getData /d", watcher.reply_to(x))
        .await
        .unwrap()
        .zxid;

    s.hold_fsync.store(true, SeqCst);
    let set = a.push_set("/d", &Bytes::from_static(b"v1"));
    a.flush().await.unwrap();
    applied(addr, z0 + 1).await;
    nothing_yet(&mut a, "the write's reply").await;
    nothing_yet(&mut watcher, "the watch event").await;
    let changed = watcher.push_get("/d", false);
    watcher.flush().await.unwrap();
    let other = reader.push_get("/e", false);
    reader.flush().await.unwrap();
    nothing_yet(&mut reader, "a read of another node").await;

    s.hold_fsync.store(false, SeqCst);
    let ev = common::within("the watch event", watcher.read())
        .await
        .unwrap();
    assert_eq!(ev.xid, xid::NOTIFICATION, "the event comes first");
    assert_eq!(ev.event().unwrap().event_type, event::NODE_DATA_CHANGED);
    let r = common::within("getData /d", watcher.read()).await.unwrap();
    assert_eq!((r.xid, r.err), (changed, 0));
    assert_eq!(
        &r.body[..6],
        &[0, 0, 0, 2, b'v', b'1'],
        "the read shows the write"
    );
    assert!(r.zxid > z0);
    let r = common::within("setData", a.read()).await.unwrap();
    assert_eq!((r.xid, r.err), (set, 0));
    let r = common::within("getData /e", reader.read()).await.unwrap();
    assert_eq!((r.xid, r.err), (other, 0));
    assert!(r.zxid > z0);
}
