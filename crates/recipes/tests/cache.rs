//! TreeCache / NodeCache: creates, changes and deletes made by another
//! client are seen through persistent watches; the cache stops when its
//! session ends.

mod common;

use std::time::Duration;

use common::*;
use recipes::{NodeCache, TreeCache};
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
