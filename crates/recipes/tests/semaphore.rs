//! Semaphore: at most N holders, leases handed on release and when a
//! holder's session ends.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use recipes::{Error, LostReason, Semaphore};

#[tokio::test]
async fn never_more_than_max_holders_under_contention() {
    let s = TestServer::start().await;
    let inside = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let client = s.client().await;
        let inside = inside.clone();
        tasks.push(tokio::spawn(async move {
            let sem = Semaphore::new(client, "/sem/three", 3);
            for _ in 0..2 {
                let lease = sem.acquire(Duration::from_secs(20)).await.expect("lease");
                let n = inside.fetch_add(1, Ordering::SeqCst) + 1;
                assert!(n <= 3, "{n} holders of 3 leases");
                tokio::time::sleep(Duration::from_millis(5)).await;
                inside.fetch_sub(1, Ordering::SeqCst);
                drop(lease);
            }
        }));
    }
    for t in tasks {
        within("semaphore task", t).await.unwrap();
    }
    s.stop().await;
}

#[tokio::test]
async fn n_holders_at_once_then_blocks_until_a_session_ends() {
    let s = TestServer::start().await;
    let holder = s.client().await;
    let first = Semaphore::new(holder.clone(), "/sem/two", 2)
        .acquire(WAIT)
        .await
        .unwrap();
    // Two leases: a second holder gets in beside the first.
    let second = within(
        "second lease",
        Semaphore::new(s.client().await, "/sem/two", 2).acquire(WAIT),
    )
    .await
    .expect("second lease");
    let third = Semaphore::new(s.client().await, "/sem/two", 2);
    assert_eq!(third.max_leases(), 2);
    assert!(matches!(
        third.acquire(Duration::from_millis(300)).await,
        Err(Error::Timeout(_))
    ));
    let wait = tokio::spawn(async move { third.acquire(WAIT).await });
    s.end_session_of(&holder).await;
    let lease = within("third gets the freed lease", wait)
        .await
        .unwrap()
        .expect("third lease");
    assert!(lease.path().contains("-lease-"));
    let why = within("holder notices loss", first.lost()).await;
    assert!(matches!(why, LostReason::SessionEnded(_)), "{why:?}");
    second.release().await.unwrap();
    s.stop().await;
}
