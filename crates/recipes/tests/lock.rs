//! Lock: mutual exclusion, fencing tokens, timeouts, release on drop, and
//! hand-over when the holder's session ends.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use recipes::{Error, Lock, LostReason};
use zookeeper_client as zk;

#[tokio::test]
async fn ten_tasks_take_the_lock_one_at_a_time_with_increasing_tokens() {
    let s = TestServer::start().await;
    let inside = Arc::new(AtomicUsize::new(0));
    let grants = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..10 {
        let client = s.client().await;
        let inside = inside.clone();
        let grants = grants.clone();
        tasks.push(tokio::spawn(async move {
            let lock = Lock::new(client, "/locks/ten");
            for _ in 0..2 {
                let guard = lock
                    .acquire(Duration::from_secs(20))
                    .await
                    .expect("acquire");
                assert_eq!(
                    inside.fetch_add(1, Ordering::SeqCst),
                    0,
                    "task {i}: two holders at once"
                );
                grants.lock().unwrap().push(guard.fencing_token());
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                if i % 2 == 0 {
                    guard.release().await.expect("release");
                } else {
                    drop(guard);
                }
            }
        }));
    }
    for t in tasks {
        within("lock task", t).await.unwrap();
    }
    let grants = grants.lock().unwrap().clone();
    assert_eq!(grants.len(), 20);
    assert!(
        grants.windows(2).all(|w| w[0] < w[1]),
        "fencing tokens not strictly increasing: {grants:?}"
    );
    s.stop().await;
}

#[tokio::test]
async fn acquire_times_out_and_cleans_up_its_node() {
    let s = TestServer::start().await;
    let a = s.client().await;
    let b = s.client().await;
    let held = Lock::new(a, "/locks/to")
        .acquire(Duration::from_secs(5))
        .await
        .unwrap();
    let other = Lock::new(b.clone(), "/locks/to");
    match other.acquire(Duration::from_millis(300)).await {
        Err(Error::Timeout(_)) => {}
        r => panic!("expected timeout, got {r:?}"),
    }
    // The timed-out contender's node is removed: only the holder remains.
    within("cleanup", async {
        while b.list_children("/locks/to").await.unwrap().len() != 1 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    drop(held);
    // Released on drop: the other side now gets it.
    let g = other.acquire(WAIT).await.expect("acquire after drop");
    assert!(g.path().contains("-lock-"));
    s.stop().await;
}

#[tokio::test]
async fn holder_session_end_passes_the_lock_and_reports_loss() {
    let s = TestServer::start().await;
    let holder = s.client().await;
    let waiter = s.client().await;
    let guard = Lock::new(holder.clone(), "/locks/exp")
        .acquire(WAIT)
        .await
        .unwrap();
    let first = guard.fencing_token();
    let wait = tokio::spawn(async move { Lock::new(waiter, "/locks/exp").acquire(WAIT).await });
    // Let the waiter queue behind the holder.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(!wait.is_finished());

    s.end_session_of(&holder).await;

    let g2 = within("waiter gets lock", wait)
        .await
        .unwrap()
        .expect("waiter acquires");
    assert!(g2.fencing_token() > first);
    let why = within("holder notices loss", guard.lost()).await;
    assert!(matches!(why, LostReason::SessionEnded(_)), "{why:?}");
    assert!(guard.is_lost());
    drop(guard);
    s.stop().await;
}

#[tokio::test]
async fn kazoo_contenders_are_respected() {
    let s = TestServer::start().await;
    let k = s.client().await;
    k.mkdir(
        "/locks/kz",
        &zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all()),
    )
    .await
    .unwrap();
    // A kazoo-style holder: "<uuid-hex>__lock__<seq>".
    k.create(
        "/locks/kz/0123456789abcdef0123456789abcdef__lock__",
        b"",
        &zk::CreateMode::EphemeralSequential.with_acls(zk::Acls::anyone_all()),
    )
    .await
    .unwrap();
    let c = s.client().await;
    let lock = Lock::new(c, "/locks/kz");
    assert!(matches!(
        lock.acquire(Duration::from_millis(300)).await,
        Err(Error::Timeout(_))
    ));
    drop(k); // closes the kazoo-style holder's session
    within("acquire after kazoo holder leaves", lock.acquire(WAIT))
        .await
        .expect("acquire");
    s.stop().await;
}
