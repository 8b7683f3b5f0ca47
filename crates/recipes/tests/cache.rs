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

/// Subtrees created and deleted in quick succession (requests pipelined,
/// so events arrive while the cache is still reading the nodes they are
/// about), the root deleted and recreated, names reused: afterwards the
/// cache equals the server's tree, and a probe change at and below every
/// node shows all its watches are still armed. Persistent, one-shot, and
/// the one-shot fallback `Auto` picks against a pre-3.6 server.
#[tokio::test]
async fn fast_subtree_churn_converges_in_every_watch_mode() {
    let s = TestServer::start().await;
    let w = s.client().await;
    w.create("/churn", b"", &persistent()).await.unwrap();
    let persistent_cache = TreeCache::start_with(
        s.client().await,
        "/churn",
        CacheOptions::new().mode(WatchMode::Persistent),
    )
    .await
    .unwrap();
    let one_shot = TreeCache::start_with(
        s.client().await,
        "/churn",
        CacheOptions::new().mode(WatchMode::OneShot),
    )
    .await
    .unwrap();
    assert_eq!(one_shot.mode(), WatchMode::OneShot);
    // And the fallback as chosen against a server older than 3.6.
    let old = TreeCache::start(s.pre_3_6_client(LONG_SESSION).await, "/churn")
        .await
        .unwrap();
    assert_eq!(old.mode(), WatchMode::OneShot);
    let opts = persistent();
    for i in 0..40u32 {
        let a = format!("/churn/a{}", i % 3);
        let b = format!("{a}/b");
        let c = format!("{b}/c");
        // Sent back to back before any reply is awaited.
        let (r1, r2, r3, r4, r5, r6, r7) = tokio::join!(
            w.create(&a, b"a", &opts),
            w.create(&b, b"b", &opts),
            w.create(&c, b"c", &opts),
            w.set_data(&b, format!("{i}").as_bytes(), None),
            w.delete(&c, None),
            w.delete(&b, None),
            w.delete(&a, None),
        );
        for r in [r1.map(|_| ()), r2.map(|_| ()), r3.map(|_| ())] {
            r.unwrap();
        }
        r4.unwrap();
        for r in [r5, r6, r7] {
            r.unwrap();
        }
        // Every few rounds leave a subtree standing, so the final tree is
        // not just the root.
        if i % 7 == 0 {
            let keep = format!("/churn/keep{i}");
            let x = format!("{keep}/x");
            let (k1, k2) = tokio::join!(w.create(&keep, b"k", &opts), w.create(&x, b"x", &opts));
            k1.unwrap();
            k2.unwrap();
        }
    }
    // The same one request at a time: each step lands while the cache
    // handles the event of the one before.
    for i in 0..20u32 {
        let a = format!("/churn/s{}", i % 2);
        let b = format!("{a}/b");
        w.mkdir(&b, &opts).await.unwrap();
        w.delete(&b, None).await.unwrap();
        w.delete(&a, None).await.unwrap();
    }
    // The root itself goes and comes back with a subtree, pipelined.
    for i in 0..5u32 {
        let (r1, r2, r3, r4, r5) = tokio::join!(
            w.create("/churn/t", b"", &opts),
            w.create("/churn/t/u", b"", &opts),
            w.delete("/churn/t/u", None),
            w.delete("/churn/t", None),
            w.set_data("/churn", format!("{i}").as_bytes(), None),
        );
        r1.unwrap();
        r2.unwrap();
        r3.unwrap();
        r4.unwrap();
        r5.unwrap();
    }
    let before = read_tree(&w, "/churn").await;
    let mut paths: Vec<&String> = before.keys().collect();
    paths.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in paths {
        w.delete(p, None).await.unwrap();
    }
    let (r1, r2, r3) = tokio::join!(
        w.create("/churn", b"again", &opts),
        w.create("/churn/z", b"z", &opts),
        w.create("/churn/z/y", b"y", &opts),
    );
    r1.unwrap();
    r2.unwrap();
    r3.unwrap();
    // Names used over and over in the churn, standing again at the end:
    // stale events about their earlier lives arrive after they are back.
    for i in 0..3u32 {
        let a = format!("/churn/a{i}");
        let b = format!("{a}/b");
        let (r1, r2) = tokio::join!(w.create(&a, b"a", &opts), w.create(&b, b"b", &opts));
        r1.unwrap();
        r2.unwrap();
    }
    // Probe: a change at and below every node, seen only if the cache's
    // watches on it are all still armed.
    for p in read_tree(&w, "/churn").await.keys() {
        w.set_data(p, b"probed", None).await.unwrap();
        w.create(&format!("{p}/probe"), b"", &opts).await.unwrap();
    }
    let truth = read_tree(&w, "/churn").await;
    assert_eq!(truth.len(), 18);
    for (name, cache) in [
        ("persistent", &persistent_cache),
        ("one-shot", &one_shot),
        ("pre-3.6 auto", &old),
    ] {
        let mut rx = cache.subscribe();
        let r = tokio::time::timeout(WAIT, rx.wait_for(|m| *m == truth)).await;
        assert!(
            r.is_ok(),
            "{name} cache differs from the server:\ncache: {:?}\nserver: {:?}",
            cache.snapshot().keys().collect::<Vec<_>>(),
            truth.keys().collect::<Vec<_>>()
        );
        assert!(!cache.is_closed());
    }
    s.stop().await;
}
