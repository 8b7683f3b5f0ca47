//! TreeCache / NodeCache: creates, changes and deletes made by another
//! client are seen through persistent watches and, as on servers older than
//! 3.6, through one-shot watches, with the same view and callbacks; the
//! cache stops when its session ends.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use recipes::{
    CacheEvent, CacheOptions, CachedNode, Error, NodeCache, Snapshot, TreeCache, WatchMode,
};
use zookeeper_client as zk;

fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

#[tokio::test]
async fn tree_cache_follows_creates_changes_and_deletes() {
    let s = TestServer::start().await;
    let w = s.client().await;
    w.create("/config", b"root", &persistent()).await.unwrap();
    w.create("/config/a", b"1", &persistent()).await.unwrap();
    let cache = TreeCache::start(s.client().await, "/config").await.unwrap();
    assert_eq!(cache.root(), "/config");
    let snap = cache.snapshot();
    assert_eq!(snap.keys().collect::<Vec<_>>(), ["/config", "/config/a"]);
    assert_eq!(cache.get("/config/a").unwrap().data, b"1");
    let mut rx = cache.subscribe();

    // Nested creates.
    w.create("/config/b", b"", &persistent()).await.unwrap();
    w.create("/config/b/c", b"deep", &persistent())
        .await
        .unwrap();
    within(
        "nested create seen",
        rx.wait_for(|m| m.get("/config/b/c").is_some_and(|n| n.data == b"deep")),
    )
    .await
    .unwrap();

    // Data change.
    w.set_data("/config/a", b"2", None).await.unwrap();
    within(
        "change seen",
        rx.wait_for(|m| {
            m.get("/config/a")
                .is_some_and(|n| n.data == b"2" && n.stat.version == 1)
        }),
    )
    .await
    .unwrap();

    // Deletes, leaf then parent.
    w.delete("/config/b/c", None).await.unwrap();
    w.delete("/config/b", None).await.unwrap();
    within(
        "deletes seen",
        rx.wait_for(|m| !m.contains_key("/config/b") && !m.contains_key("/config/b/c")),
    )
    .await
    .unwrap();
    assert_eq!(
        cache.snapshot().keys().collect::<Vec<_>>(),
        ["/config", "/config/a"]
    );
    assert!(!cache.is_closed());
    s.stop().await;
}

#[tokio::test]
async fn tree_cache_of_a_missing_root_fills_when_it_appears() {
    let s = TestServer::start().await;
    let cache = TreeCache::start(s.client().await, "/later").await.unwrap();
    assert!(cache.snapshot().is_empty());
    let mut rx = cache.subscribe();
    let w = s.client().await;
    w.create("/later", b"x", &persistent()).await.unwrap();
    w.create("/later/y", b"y", &persistent()).await.unwrap();
    within("root and child seen", rx.wait_for(|m| m.len() == 2))
        .await
        .unwrap();
    w.delete("/later/y", None).await.unwrap();
    w.delete("/later", None).await.unwrap();
    within("all gone", rx.wait_for(|m| m.is_empty()))
        .await
        .unwrap();
    s.stop().await;
}

#[tokio::test]
async fn node_cache_follows_one_node() {
    let s = TestServer::start().await;
    let cache = NodeCache::start(s.client().await, "/feature")
        .await
        .unwrap();
    assert_eq!(cache.path(), "/feature");
    assert!(cache.get().is_none());
    let mut rx = cache.subscribe();
    let w = s.client().await;
    w.create("/feature", b"on", &persistent()).await.unwrap();
    within(
        "create seen",
        rx.wait_for(|n| n.as_ref().is_some_and(|n| n.data == b"on")),
    )
    .await
    .unwrap();
    // A child does not count as the node changing.
    w.create("/feature/x", b"", &persistent()).await.unwrap();
    w.set_data("/feature", b"off", None).await.unwrap();
    within(
        "change seen",
        rx.wait_for(|n| n.as_ref().is_some_and(|n| n.data == b"off")),
    )
    .await
    .unwrap();
    w.delete("/feature/x", None).await.unwrap();
    w.delete("/feature", None).await.unwrap();
    within("delete seen", rx.wait_for(|n| n.is_none()))
        .await
        .unwrap();
    s.stop().await;
}

#[tokio::test]
async fn cache_closes_when_its_session_ends() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let cache = TreeCache::start(c.clone(), "/closing").await.unwrap();
    s.end_session_of(&c).await;
    within("cache closed", async {
        while !cache.is_closed() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    s.stop().await;
}

/// An event reduced to what both watch modes must agree on: a node's stat
/// as read with its data may already count children created just after it
/// (the view itself is compared in full once quiet).
type Seen = (&'static str, String, Vec<u8>, i64);

fn seen(e: &CacheEvent) -> Seen {
    match e {
        CacheEvent::Added { path, node } => {
            ("added", path.clone(), node.data.clone(), node.stat.mzxid)
        }
        CacheEvent::Updated { path, node, .. } => {
            ("updated", path.clone(), node.data.clone(), node.stat.mzxid)
        }
        CacheEvent::Removed { path, node } => {
            ("removed", path.clone(), node.data.clone(), node.stat.mzxid)
        }
    }
}

type Log = Arc<Mutex<Vec<CacheEvent>>>;

fn recording(mode: WatchMode) -> (CacheOptions, Log) {
    let log: Log = Arc::default();
    let sink = log.clone();
    let opts = CacheOptions::new()
        .mode(mode)
        .on_change(move |e| sink.lock().unwrap().push(e.clone()));
    (opts, log)
}

/// The subtree at `root` as the server has it now, read by the test.
async fn read_tree(c: &zk::Client, root: &str) -> Snapshot {
    let mut out = Snapshot::new();
    let mut todo = vec![root.to_string()];
    while let Some(p) = todo.pop() {
        let Ok((data, stat)) = c.get_data(&p).await else {
            continue;
        };
        out.insert(p.clone(), CachedNode { data, stat });
        if let Ok(children) = c.list_children(&p).await {
            todo.extend(children.into_iter().map(|k| format!("{p}/{k}")));
        }
    }
    out
}

/// Waits until `log` holds `n` events past `from`, and returns them.
async fn next_events(log: &Log, from: &mut usize, n: usize, what: &str) -> Vec<Seen> {
    eventually(what, || async { log.lock().unwrap().len() >= *from + n }).await;
    let all = log.lock().unwrap();
    let got: Vec<Seen> = all[*from..].iter().map(seen).collect();
    *from = all.len();
    got
}

fn ev(kind: &'static str, path: &str, data: &[u8], mzxid: i64) -> Seen {
    (kind, path.to_string(), data.to_vec(), mzxid)
}

/// Against a server older than 3.6 (addWatch answered UNIMPLEMENTED and
/// the connection closed), `Auto` falls back to one-shot watches and the
/// cache works; an explicit `Persistent` reports the server's refusal.
#[tokio::test]
async fn auto_mode_falls_back_to_one_shot_watches_before_3_6() {
    let s = TestServer::start().await;
    let w = s.client().await;
    w.create("/old", b"v1", &persistent()).await.unwrap();

    // A current server: persistent watches.
    let modern = TreeCache::start(s.client().await, "/old").await.unwrap();
    assert_eq!(modern.mode(), WatchMode::Persistent);

    let old = s.pre_3_6_client(LONG_SESSION).await;
    match TreeCache::start_with(
        old.clone(),
        "/old",
        CacheOptions::new().mode(WatchMode::Persistent),
    )
    .await
    {
        Err(Error::Zk(zk::Error::Unimplemented)) => {}
        r => panic!("expected UNIMPLEMENTED, got {r:?}"),
    }
    let (opts, log) = recording(WatchMode::Auto);
    let tree = TreeCache::start_with(old.clone(), "/old", opts)
        .await
        .unwrap();
    assert_eq!(tree.mode(), WatchMode::OneShot);
    let node = NodeCache::start(old.clone(), "/old").await.unwrap();
    assert_eq!(node.mode(), WatchMode::OneShot);
    assert_eq!(node.get().unwrap().data, b"v1");

    let mut from = 0;
    let got = next_events(&log, &mut from, 1, "initial load").await;
    assert_eq!(got[0].1, "/old");
    let k = w.create("/old/k", b"kid", &persistent()).await.unwrap().0;
    let v2 = w.set_data("/old", b"v2", None).await.unwrap();
    let mut got = next_events(&log, &mut from, 2, "create and change").await;
    got.sort();
    assert_eq!(
        got,
        vec![
            ev("added", "/old/k", b"kid", k.mzxid),
            ev("updated", "/old", b"v2", v2.mzxid)
        ]
    );
    let mut rx = node.subscribe();
    within(
        "node cache change",
        rx.wait_for(|n| n.as_ref().is_some_and(|n| n.data == b"v2")),
    )
    .await
    .unwrap();
    w.delete("/old/k", None).await.unwrap();
    let got = next_events(&log, &mut from, 1, "delete").await;
    assert_eq!(got, vec![ev("removed", "/old/k", b"kid", k.mzxid)]);
    let truth = read_tree(&w, "/old").await;
    let mut rx = tree.subscribe();
    within("view matches", rx.wait_for(|m| *m == truth))
        .await
        .unwrap();
    s.stop().await;
}
