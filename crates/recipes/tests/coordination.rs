//! Barrier, DoubleBarrier, Queue and group membership.

mod common;

use std::time::Duration;

use common::*;
use recipes::{members, Barrier, DoubleBarrier, Error, GroupView, Membership, Queue};

#[tokio::test]
async fn barrier_blocks_until_removed() {
    let s = TestServer::start().await;
    let b = Barrier::new(s.client().await, "/barriers/b");
    b.set().await.unwrap();
    assert!(matches!(
        b.wait(Duration::from_millis(200)).await,
        Err(Error::Timeout(_))
    ));
    let other = Barrier::new(s.client().await, "/barriers/b");
    let w = tokio::spawn(async move { other.wait(WAIT).await });
    b.remove().await.unwrap();
    within("waiter released", w).await.unwrap().unwrap();
    s.stop().await;
}

#[tokio::test]
async fn double_barrier_enters_and_leaves_together() {
    let s = TestServer::start().await;
    let n = 3;
    let a = DoubleBarrier::new(s.client().await, "/barriers/d", n, "a");
    // Alone: cannot enter.
    assert!(matches!(
        a.enter(Duration::from_millis(200)).await,
        Err(Error::Timeout(_))
    ));
    let mut tasks = Vec::new();
    for name in ["b", "c"] {
        let d = DoubleBarrier::new(s.client().await, "/barriers/d", n, name);
        tasks.push(tokio::spawn(async move {
            d.enter(WAIT).await.unwrap();
            d.leave(WAIT).await.unwrap();
        }));
    }
    a.enter(WAIT).await.unwrap();
    a.leave(WAIT).await.unwrap();
    for t in tasks {
        within("participants", t).await.unwrap();
    }
    s.stop().await;
}

#[tokio::test]
async fn queue_is_fifo_and_each_item_taken_once() {
    let s = TestServer::start().await;
    let q = Queue::new(s.client().await, "/queues/q");
    for i in 0..3u8 {
        q.put(&[i]).await.unwrap();
    }
    assert_eq!(q.take(WAIT).await.unwrap(), vec![0]);
    assert_eq!(q.take(WAIT).await.unwrap(), vec![1]);
    assert_eq!(q.try_take().await.unwrap(), Some(vec![2]));
    assert_eq!(q.try_take().await.unwrap(), None);

    // Four consumers, twenty items: every item exactly once.
    let mut consumers = Vec::new();
    for _ in 0..4 {
        let q = Queue::new(s.client().await, "/queues/q");
        consumers.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Ok(d) = q.take(Duration::from_millis(500)).await {
                got.push(d[0]);
            }
            got
        }));
    }
    for i in 0..20u8 {
        q.put(&[i]).await.unwrap();
    }
    let mut all = Vec::new();
    for c in consumers {
        let got = within("consumer", c).await.unwrap();
        assert!(
            got.windows(2).all(|w| w[0] < w[1]),
            "per-consumer order: {got:?}"
        );
        all.extend(got);
    }
    all.sort();
    assert_eq!(all, (0..20).collect::<Vec<u8>>());
    s.stop().await;
}

#[tokio::test]
async fn group_lists_and_watches_members() {
    let s = TestServer::start().await;
    let watcher = s.client().await;
    let view = GroupView::watch(watcher.clone(), "/groups/g")
        .await
        .unwrap();
    assert!(view.members().is_empty());
    let mut rx = view.subscribe();
    let c1 = s.client().await;
    let m1 = Membership::join(c1.clone(), "/groups/g", b"10.0.0.1:2181")
        .await
        .unwrap();
    let _m2 = Membership::join(s.client().await, "/groups/g", b"10.0.0.2:2181")
        .await
        .unwrap();
    within("view sees two", rx.wait_for(|m| m.len() == 2))
        .await
        .unwrap();
    let listed = members(&watcher, "/groups/g").await.unwrap();
    assert_eq!(
        listed.iter().map(|m| m.data.clone()).collect::<Vec<_>>(),
        vec![b"10.0.0.1:2181".to_vec(), b"10.0.0.2:2181".to_vec()]
    );
    assert_eq!(listed[0].name, m1.name());
    // A member whose session ends drops out of the view.
    s.end_session_of(&c1).await;
    within(
        "view sees one",
        rx.wait_for(|m| m.len() == 1 && m[0].data == b"10.0.0.2:2181"),
    )
    .await
    .unwrap();
    drop(m1);
    s.stop().await;
}
