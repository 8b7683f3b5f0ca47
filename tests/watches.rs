//! Watches: one-shot data/exist/child watches, persistent and
//! persistent-recursive watches, removal, re-registration on reconnect, and
//! the ordering guarantee (an event reaches the client before any reply
//! that reflects its change).
//!
//! Exact event sets are checked on a raw connection: a request's reply comes
//! after every notification queued before it, so "the events before this
//! reply" is a precise, timing-free observation.

mod common;

use std::time::Duration;

use common::{ephemeral, persistent, within, Raw, TestServer};
use jute::codec::Record;
use jute::consts::{add_watch_mode, event, op, watcher_type, ErrorCode};
use jute::proto::{AddWatchRequest, PathWatchRequest, SetWatches, WatchTypeRequest, WatcherEvent};
use zk::{AddWatchMode, EventType};
use zookeeper_client as zk;

fn ev(event_type: i32, path: &str) -> WatcherEvent {
    WatcherEvent {
        event_type,
        state: jute::consts::state::SYNC_CONNECTED,
        path: path.to_owned(),
    }
}

fn pw(path: &str, watch: bool) -> Vec<u8> {
    PathWatchRequest {
        path: path.to_owned(),
        watch,
    }
    .to_bytes()
    .to_vec()
}

/// Sends a read with a watch; returns its error code.
async fn watch_with(raw: &mut Raw, opc: i32, path: &str) -> i32 {
    let (events, h, _) = raw.request_with_events(opc, &pw(path, true)).await;
    assert!(events.is_empty(), "unexpected events {events:?}");
    h.err
}

async fn add_watch(raw: &mut Raw, path: &str, mode: i32) {
    let body = AddWatchRequest {
        path: path.to_owned(),
        mode,
    }
    .to_bytes();
    let (h, body) = raw.request(op::ADD_WATCH, &body).await;
    assert_eq!(h.err, 0);
    assert_eq!(
        &body[..],
        &0i32.to_be_bytes(),
        "addWatch answers ErrorResponse(0)"
    );
}

async fn watch_type_op(raw: &mut Raw, opc: i32, path: &str, watch_type: i32) -> i32 {
    let body = WatchTypeRequest {
        path: path.to_owned(),
        watch_type,
    }
    .to_bytes();
    raw.request(opc, &body).await.0.err
}

#[tokio::test]
async fn data_watch_fires_once() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    c.create("/w", b"", &persistent()).await.unwrap();
    assert_eq!(watch_with(&mut raw, op::GET_DATA, "/w").await, 0);
    c.set_data("/w", b"1", None).await.unwrap();
    c.set_data("/w", b"2", None).await.unwrap();
    assert_eq!(raw.events().await, vec![ev(event::NODE_DATA_CHANGED, "/w")]);
    c.set_data("/w", b"3", None).await.unwrap();
    c.delete("/w", None).await.unwrap();
    assert_eq!(raw.events().await, vec![], "the watch was consumed");
    // A getData watch is not set when the node is missing.
    assert_eq!(
        watch_with(&mut raw, op::GET_DATA, "/w").await,
        ErrorCode::NoNode.code()
    );
    c.create("/w", b"", &persistent()).await.unwrap();
    assert_eq!(raw.events().await, vec![]);
    s.stop().await;
}

#[tokio::test]
async fn exists_watch_on_missing_node_sees_creation_only() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    assert_eq!(
        watch_with(&mut raw, op::EXISTS, "/n").await,
        ErrorCode::NoNode.code()
    );
    c.create("/n", b"", &persistent()).await.unwrap();
    c.set_data("/n", b"x", None).await.unwrap();
    c.delete("/n", None).await.unwrap();
    assert_eq!(raw.events().await, vec![ev(event::NODE_CREATED, "/n")]);

    // On an existing node it is a data watch: deletion fires it.
    c.create("/n", b"", &persistent()).await.unwrap();
    assert_eq!(watch_with(&mut raw, op::EXISTS, "/n").await, 0);
    c.delete("/n", None).await.unwrap();
    assert_eq!(raw.events().await, vec![ev(event::NODE_DELETED, "/n")]);
    s.stop().await;
}

#[tokio::test]
async fn child_watch_sees_membership_changes_only() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    c.create("/c", b"", &persistent()).await.unwrap();
    assert_eq!(watch_with(&mut raw, op::GET_CHILDREN, "/c").await, 0);
    c.set_data("/c", b"d", None).await.unwrap();
    c.create("/c/x", b"", &persistent()).await.unwrap();
    c.create("/c/y", b"", &persistent()).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![ev(event::NODE_CHILDREN_CHANGED, "/c")]
    );

    assert_eq!(watch_with(&mut raw, op::GET_CHILDREN2, "/c").await, 0);
    c.create("/c/x/grandchild", b"", &persistent())
        .await
        .unwrap();
    c.set_data("/c/x", b"d", None).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![],
        "grandchildren and data are not membership"
    );
    c.delete("/c/y", None).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![ev(event::NODE_CHILDREN_CHANGED, "/c")]
    );

    // A child watch on a node that goes away reports NodeDeleted.
    assert_eq!(watch_with(&mut raw, op::GET_CHILDREN, "/c/x").await, 0);
    c.delete("/c/x/grandchild", None).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![ev(event::NODE_CHILDREN_CHANGED, "/c/x")]
    );
    assert_eq!(watch_with(&mut raw, op::GET_CHILDREN, "/c/x").await, 0);
    c.delete("/c/x", None).await.unwrap();
    assert_eq!(raw.events().await, vec![ev(event::NODE_DELETED, "/c/x")]);
    s.stop().await;
}

#[tokio::test]
async fn deletion_notifies_a_connection_once_per_path() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    c.create("/d", b"", &persistent()).await.unwrap();
    assert_eq!(watch_with(&mut raw, op::GET_DATA, "/d").await, 0);
    assert_eq!(watch_with(&mut raw, op::EXISTS, "/d").await, 0);
    assert_eq!(watch_with(&mut raw, op::GET_CHILDREN, "/d").await, 0);
    assert_eq!(watch_with(&mut raw, op::GET_CHILDREN, "/").await, 0);
    c.delete("/d", None).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![
            ev(event::NODE_DELETED, "/d"),
            ev(event::NODE_CHILDREN_CHANGED, "/"),
        ]
    );
    // Creation: the node's exists watch, then the parent's child watch.
    assert_eq!(
        watch_with(&mut raw, op::EXISTS, "/d").await,
        ErrorCode::NoNode.code()
    );
    assert_eq!(watch_with(&mut raw, op::GET_CHILDREN, "/").await, 0);
    c.create("/d", b"", &persistent()).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![
            ev(event::NODE_CREATED, "/d"),
            ev(event::NODE_CHILDREN_CHANGED, "/"),
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn every_watching_session_is_notified() {
    let s = TestServer::start().await;
    let writer = s.client().await;
    let a = s.client().await;
    let b = s.client().await;
    writer.create("/shared", b"", &persistent()).await.unwrap();
    let (_, _, wa) = a.get_and_watch_data("/shared").await.unwrap();
    let (_, _, wb) = b.get_and_watch_data("/shared").await.unwrap();
    let (_, wc) = b.check_and_watch_stat("/shared/kid").await.unwrap();
    let (_, wd) = a.list_and_watch_children("/shared").await.unwrap();
    writer.set_data("/shared", b"v", None).await.unwrap();
    writer
        .create("/shared/kid", b"", &persistent())
        .await
        .unwrap();
    for (name, w, t, p) in [
        ("a data", wa, EventType::NodeDataChanged, "/shared"),
        ("b data", wb, EventType::NodeDataChanged, "/shared"),
        ("b exists", wc, EventType::NodeCreated, "/shared/kid"),
        ("a children", wd, EventType::NodeChildrenChanged, "/shared"),
    ] {
        let e = within(name, w.changed()).await;
        assert_eq!((e.event_type, e.path.as_str()), (t, p), "{name}");
        assert_eq!(e.session_state, zk::SessionState::SyncConnected);
    }
    s.stop().await;
}

#[tokio::test]
async fn event_arrives_before_a_read_that_sees_the_change() {
    let s = TestServer::start().await;
    let writer = s.client().await;
    let reader = s.client().await;
    writer.create("/o", b"old", &persistent()).await.unwrap();
    let mut raw = Raw::connect(s.addr).await;
    for round in 0..20u32 {
        let (_, _, w) = reader.get_and_watch_data("/o").await.unwrap();
        assert_eq!(watch_with(&mut raw, op::GET_DATA, "/o").await, 0);
        let value = format!("v{round}");
        writer.set_data("/o", value.as_bytes(), None).await.unwrap();

        let (data, _) = reader.get_data("/o").await.unwrap();
        assert_eq!(data, value.as_bytes());
        // The notification was processed before that reply: it is ready now.
        let e = tokio::time::timeout(Duration::ZERO, w.changed())
            .await
            .expect("event delivered before the read's reply");
        assert_eq!(e.event_type, EventType::NodeDataChanged);

        let (events, h, _) = raw
            .request_with_events(op::GET_DATA, &pw("/o", false))
            .await;
        assert_eq!(h.err, 0);
        assert_eq!(events, vec![ev(event::NODE_DATA_CHANGED, "/o")]);
    }
    s.stop().await;
}

#[tokio::test]
async fn persistent_watch_keeps_firing_for_its_node() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    add_watch(&mut raw, "/p", add_watch_mode::PERSISTENT).await;
    c.create("/p", b"", &persistent()).await.unwrap();
    c.set_data("/p", b"1", None).await.unwrap();
    c.set_data("/p", b"2", None).await.unwrap();
    c.create("/p/k", b"", &persistent()).await.unwrap();
    c.set_data("/p/k", b"x", None).await.unwrap();
    c.create("/p/k/g", b"", &persistent()).await.unwrap();
    c.delete("/p/k/g", None).await.unwrap();
    c.delete("/p/k", None).await.unwrap();
    c.delete("/p", None).await.unwrap();
    c.create("/p", b"", &persistent()).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![
            ev(event::NODE_CREATED, "/p"),
            ev(event::NODE_DATA_CHANGED, "/p"),
            ev(event::NODE_DATA_CHANGED, "/p"),
            ev(event::NODE_CHILDREN_CHANGED, "/p"),
            ev(event::NODE_CHILDREN_CHANGED, "/p"),
            ev(event::NODE_DELETED, "/p"),
            ev(event::NODE_CREATED, "/p"),
        ]
    );

    // The same through the client library.
    let mut w = c.watch("/p", AddWatchMode::Persistent).await.unwrap();
    c.set_data("/p", b"3", None).await.unwrap();
    c.create("/p/k", b"", &persistent()).await.unwrap();
    let e = within("data change", w.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDataChanged, "/p")
    );
    let e = within("child change", w.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeChildrenChanged, "/p")
    );
    s.stop().await;
}

#[tokio::test]
async fn persistent_recursive_watch_covers_the_subtree() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    add_watch(&mut raw, "/r", add_watch_mode::PERSISTENT_RECURSIVE).await;
    c.create("/r", b"", &persistent()).await.unwrap();
    c.create("/r/a", b"", &persistent()).await.unwrap();
    c.set_data("/r/a", b"1", None).await.unwrap();
    c.create("/r/a/b", b"", &ephemeral()).await.unwrap();
    c.delete("/r/a/b", None).await.unwrap();
    c.set_data("/r", b"1", None).await.unwrap();
    c.create("/rx", b"", &persistent()).await.unwrap();
    c.create("/other", b"", &persistent()).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![
            ev(event::NODE_CREATED, "/r"),
            ev(event::NODE_CREATED, "/r/a"),
            ev(event::NODE_DATA_CHANGED, "/r/a"),
            ev(event::NODE_CREATED, "/r/a/b"),
            ev(event::NODE_DELETED, "/r/a/b"),
            ev(event::NODE_DATA_CHANGED, "/r"),
        ],
        "no NodeChildrenChanged, nothing outside /r"
    );

    let mut w = c
        .watch("/r", AddWatchMode::PersistentRecursive)
        .await
        .unwrap();
    c.create("/r/a/c", b"", &persistent()).await.unwrap();
    c.delete("/r/a/c", None).await.unwrap();
    let e = within("created", w.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeCreated, "/r/a/c")
    );
    let e = within("deleted", w.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDeleted, "/r/a/c")
    );
    s.stop().await;
}

#[tokio::test]
async fn watches_can_be_checked_and_removed() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    c.create("/x", b"", &persistent()).await.unwrap();
    let no_watcher = ErrorCode::NoWatcher.code();

    assert_eq!(
        watch_type_op(&mut raw, op::CHECK_WATCHES, "/x", watcher_type::DATA).await,
        no_watcher
    );
    assert_eq!(watch_with(&mut raw, op::GET_DATA, "/x").await, 0);
    assert_eq!(watch_with(&mut raw, op::GET_CHILDREN, "/x").await, 0);
    assert_eq!(
        watch_type_op(&mut raw, op::CHECK_WATCHES, "/x", watcher_type::DATA).await,
        0
    );
    assert_eq!(
        watch_type_op(&mut raw, op::REMOVE_WATCHES, "/x", watcher_type::DATA).await,
        0
    );
    assert_eq!(
        watch_type_op(&mut raw, op::REMOVE_WATCHES, "/x", watcher_type::DATA).await,
        no_watcher
    );
    assert_eq!(
        watch_type_op(&mut raw, op::CHECK_WATCHES, "/x", watcher_type::CHILDREN).await,
        0,
        "the child watch is still there"
    );
    c.set_data("/x", b"1", None).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![],
        "removed data watch does not fire"
    );
    assert_eq!(
        watch_type_op(&mut raw, op::REMOVE_WATCHES, "/x", watcher_type::ANY).await,
        0
    );
    c.create("/x/k", b"", &persistent()).await.unwrap();
    assert_eq!(raw.events().await, vec![]);
    assert_eq!(
        watch_type_op(&mut raw, op::REMOVE_WATCHES, "/x", watcher_type::ANY).await,
        no_watcher
    );

    // Persistent watches are removed by type Any as well.
    add_watch(&mut raw, "/x", add_watch_mode::PERSISTENT).await;
    assert_eq!(
        watch_type_op(&mut raw, op::REMOVE_WATCHES, "/x", watcher_type::ANY).await,
        0
    );
    c.set_data("/x", b"2", None).await.unwrap();
    assert_eq!(raw.events().await, vec![]);

    // Watches belong to a connection: another one cannot remove them.
    assert_eq!(watch_with(&mut raw, op::GET_DATA, "/x").await, 0);
    let mut other = Raw::connect(s.addr).await;
    assert_eq!(
        watch_type_op(&mut other, op::REMOVE_WATCHES, "/x", watcher_type::DATA).await,
        no_watcher
    );
    c.set_data("/x", b"3", None).await.unwrap();
    assert_eq!(raw.events().await, vec![ev(event::NODE_DATA_CHANGED, "/x")]);
    s.stop().await;
}

#[tokio::test]
async fn set_watches_reports_what_a_reconnecting_client_missed() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create("/sw", b"", &persistent()).await.unwrap();
    c.create("/sw/keep", b"", &persistent()).await.unwrap();
    c.create("/sw/gone", b"", &persistent()).await.unwrap();
    let mut raw = Raw::connect(s.addr).await;
    // What the client had seen when it lost its connection.
    let (h, _) = raw
        .request(
            op::SYNC,
            &jute::proto::PathRequest { path: "/".into() }.to_bytes(),
        )
        .await;
    let seen = h.zxid;
    let (sid, pw_) = (raw.session_id, raw.passwd.clone());
    drop(raw);

    c.set_data("/sw/keep", b"changed", None).await.unwrap();
    c.delete("/sw/gone", None).await.unwrap();
    c.create("/sw/new", b"", &persistent()).await.unwrap();

    let (mut raw, resp) = Raw::resume(s.addr, sid, pw_).await;
    assert_eq!(resp.session_id, sid);
    let body = SetWatches {
        relative_zxid: seen,
        data_watches: vec!["/sw/keep".into(), "/sw/gone".into(), "/sw".into()],
        exist_watches: vec!["/sw/new".into(), "/sw/never".into()],
        child_watches: vec!["/sw".into()],
    }
    .to_bytes();
    // As in ZooKeeper, the missed events are queued before the reply.
    let (mut events, h, _) = raw.request_with_events(op::SET_WATCHES, &body).await;
    assert_eq!(h.err, 0);
    events.sort_by(|a, b| (a.path.as_str(), a.event_type).cmp(&(b.path.as_str(), b.event_type)));
    assert_eq!(
        events,
        vec![
            ev(event::NODE_CHILDREN_CHANGED, "/sw"),
            ev(event::NODE_DELETED, "/sw/gone"),
            ev(event::NODE_DATA_CHANGED, "/sw/keep"),
            ev(event::NODE_CREATED, "/sw/new"),
        ]
    );
    // The unchanged ones were armed: /sw data and /sw/never existence.
    c.set_data("/sw", b"x", None).await.unwrap();
    c.create("/sw/never", b"", &persistent()).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![
            ev(event::NODE_DATA_CHANGED, "/sw"),
            ev(event::NODE_CREATED, "/sw/never"),
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn events_need_read_permission_on_the_node() {
    let s = TestServer::start().await;
    let alice = s.client().await;
    alice.auth("digest", b"alice:secret").await.unwrap();
    let only_alice = [zk::Acl::new(
        zk::Permission::ALL,
        zk::AuthId::new("digest", "alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E="),
    )];
    let restricted = zk::CreateMode::Persistent.with_acls(zk::Acls::new(&only_alice));
    let mut raw = Raw::connect(s.addr).await; // no identity but its address
    assert_eq!(
        watch_with(&mut raw, op::EXISTS, "/sec").await,
        ErrorCode::NoNode.code()
    );
    assert_eq!(watch_with(&mut raw, op::GET_CHILDREN, "/").await, 0);
    alice.create("/sec", b"", &restricted).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![ev(event::NODE_CHILDREN_CHANGED, "/")],
        "the NodeCreated for /sec is filtered out"
    );

    // The ACL at the time of the change decides.
    alice.create("/open", b"", &persistent()).await.unwrap();
    assert_eq!(watch_with(&mut raw, op::GET_DATA, "/open").await, 0);
    alice.set_acl("/open", &only_alice, None).await.unwrap();
    alice.set_data("/open", b"x", None).await.unwrap();
    assert_eq!(raw.events().await, vec![]);

    // Persistent recursive watches are filtered the same way.
    add_watch(&mut raw, "/", add_watch_mode::PERSISTENT_RECURSIVE).await;
    alice.create("/sec/kid", b"", &restricted).await.unwrap();
    alice.create("/visible", b"", &persistent()).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![ev(event::NODE_CREATED, "/visible")]
    );
    s.stop().await;
}

#[tokio::test]
async fn multi_fires_watches_only_when_it_commits() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    c.create("/mw", b"", &persistent()).await.unwrap();
    assert_eq!(watch_with(&mut raw, op::GET_DATA, "/mw").await, 0);
    assert_eq!(watch_with(&mut raw, op::GET_CHILDREN, "/mw").await, 0);
    assert_eq!(
        watch_with(&mut raw, op::EXISTS, "/mw/a").await,
        ErrorCode::NoNode.code()
    );

    let mut w = c.new_multi_writer();
    w.add_set_data("/mw", b"x", None).unwrap();
    w.add_create("/mw/a", b"", &persistent()).unwrap();
    w.add_check_version("/mw", 99).unwrap();
    assert!(w.commit().await.is_err());
    assert_eq!(
        raw.events().await,
        vec![],
        "an aborted multi changes nothing"
    );

    let mut w = c.new_multi_writer();
    w.add_set_data("/mw", b"x", None).unwrap();
    w.add_create("/mw/a", b"", &persistent()).unwrap();
    w.add_delete("/mw/a", None).unwrap();
    w.commit().await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![
            ev(event::NODE_DATA_CHANGED, "/mw"),
            ev(event::NODE_CREATED, "/mw/a"),
            ev(event::NODE_CHILDREN_CHANGED, "/mw"),
        ],
        "in op order; the one-shot child watch fired once"
    );
    s.stop().await;
}

#[tokio::test]
async fn set_watches2_restores_persistent_watches() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let raw = Raw::connect(s.addr).await;
    let (sid, passwd) = (raw.session_id, raw.passwd.clone());
    drop(raw);
    c.create("/pw", b"", &persistent()).await.unwrap();
    let (mut raw, resp) = Raw::resume(s.addr, sid, passwd).await;
    assert_eq!(resp.session_id, sid);
    let body = jute::proto::SetWatches2 {
        relative_zxid: 0,
        data_watches: vec![],
        exist_watches: vec![],
        child_watches: vec![],
        persistent_watches: vec!["/pw".into()],
        persistent_recursive_watches: vec!["/rw".into()],
    }
    .to_bytes();
    let (events, h, _) = raw.request_with_events(op::SET_WATCHES2, &body).await;
    assert_eq!(h.err, 0);
    assert_eq!(events, vec![], "persistent watches report no missed events");
    c.set_data("/pw", b"1", None).await.unwrap();
    c.create("/rw", b"", &persistent()).await.unwrap();
    c.create("/rw/deep", b"", &persistent()).await.unwrap();
    c.set_data("/pw", b"2", None).await.unwrap();
    assert_eq!(
        raw.events().await,
        vec![
            ev(event::NODE_DATA_CHANGED, "/pw"),
            ev(event::NODE_CREATED, "/rw"),
            ev(event::NODE_CREATED, "/rw/deep"),
            ev(event::NODE_DATA_CHANGED, "/pw"),
        ]
    );
    s.stop().await;
}

#[tokio::test]
async fn watches_belong_to_the_connection_not_the_session() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create("/cw", b"", &persistent()).await.unwrap();
    let mut first = Raw::connect(s.addr).await;
    assert_eq!(watch_with(&mut first, op::GET_DATA, "/cw").await, 0);
    // The session moves to a new connection; the old one is closed and
    // its watches go with it (a real client re-sends them with setWatches).
    let (mut second, resp) = Raw::resume(s.addr, first.session_id, first.passwd.clone()).await;
    assert_eq!(resp.session_id, first.session_id);
    assert_eq!(first.closed().await, Vec::<bytes::Bytes>::new());
    c.set_data("/cw", b"x", None).await.unwrap();
    assert_eq!(second.events().await, vec![]);
    s.stop().await;
}

#[tokio::test]
async fn unknown_watch_modes_are_marshalling_errors() {
    // ZooKeeper fails to convert the mode (an IllegalArgumentException /
    // RuntimeException in FinalRequestProcessor): MarshallingError.
    let s = TestServer::start().await;
    let mut raw = Raw::connect(s.addr).await;
    let marshalling = ErrorCode::MarshallingError.code();
    for mode in [2, -1, 99] {
        let body = AddWatchRequest {
            path: "/".into(),
            mode,
        }
        .to_bytes();
        assert_eq!(
            raw.request(op::ADD_WATCH, &body).await.0.err,
            marshalling,
            "mode {mode}"
        );
    }
    for t in [0, 6, -3] {
        assert_eq!(
            watch_type_op(&mut raw, op::CHECK_WATCHES, "/", t).await,
            marshalling
        );
        assert_eq!(
            watch_type_op(&mut raw, op::REMOVE_WATCHES, "/", t).await,
            marshalling
        );
    }
    // The connection is still in business.
    assert_eq!(watch_with(&mut raw, op::GET_DATA, "/").await, 0);
    s.stop().await;
}
