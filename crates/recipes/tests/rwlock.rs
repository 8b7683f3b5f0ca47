//! RwLock: readers share, a writer excludes, later readers queue behind a
//! waiting writer, and a holder whose session ends hands over.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use recipes::{Error, LostReason, RwLock};

#[tokio::test]
async fn readers_share_and_writers_exclude_under_contention() {
    let s = TestServer::start().await;
    let readers = Arc::new(AtomicUsize::new(0));
    let writers = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..8 {
        let client = s.client().await;
        let (readers, writers) = (readers.clone(), writers.clone());
        tasks.push(tokio::spawn(async move {
            let lock = RwLock::new(client, "/rw/mix");
            for _ in 0..2 {
                if i % 3 == 0 {
                    let g = lock.write(Duration::from_secs(20)).await.expect("write");
                    assert!(g.path().contains("-__WRIT__"), "{}", g.path());
                    assert_eq!(writers.fetch_add(1, Ordering::SeqCst), 0, "two writers");
                    assert_eq!(readers.load(Ordering::SeqCst), 0, "reader beside writer");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    writers.fetch_sub(1, Ordering::SeqCst);
                    g.release().await.expect("release");
                } else {
                    let g = lock.read(Duration::from_secs(20)).await.expect("read");
                    assert!(g.path().contains("-__READ__"), "{}", g.path());
                    readers.fetch_add(1, Ordering::SeqCst);
                    assert_eq!(writers.load(Ordering::SeqCst), 0, "writer beside reader");
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    readers.fetch_sub(1, Ordering::SeqCst);
                    drop(g);
                }
            }
        }));
    }
    for t in tasks {
        within("rwlock task", t).await.unwrap();
    }
    s.stop().await;
}

#[tokio::test]
async fn writer_waits_for_readers_and_later_readers_wait_for_writer() {
    let s = TestServer::start().await;
    let lock_a = RwLock::new(s.client().await, "/rw/order");
    let lock_b = RwLock::new(s.client().await, "/rw/order");
    let lock_w = RwLock::new(s.client().await, "/rw/order");
    let lock_c = RwLock::new(s.client().await, "/rw/order");
    let a = lock_a.read(WAIT).await.expect("reader a");
    // Readers share: b gets in while a holds.
    let b = within("second reader", lock_b.read(WAIT))
        .await
        .expect("reader b");
    // A writer cannot get in beside readers.
    assert!(matches!(
        lock_w.write(Duration::from_millis(300)).await,
        Err(Error::Timeout(_))
    ));
    let w = tokio::spawn(async move { lock_w.write(WAIT).await });
    // Wait until the writer has queued (its node is listed).
    let probe = s.client().await;
    within("writer queued", async {
        while !probe
            .list_children("/rw/order")
            .await
            .unwrap()
            .iter()
            .any(|c| c.contains("__WRIT__"))
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    // A reader arriving after the queued writer waits behind it.
    assert!(matches!(
        lock_c.read(Duration::from_millis(300)).await,
        Err(Error::Timeout(_))
    ));
    drop(a);
    b.release().await.unwrap();
    let wg = within("writer after readers", w)
        .await
        .unwrap()
        .expect("writer acquires");
    let c = tokio::spawn(async move { lock_c.read(WAIT).await });
    wg.release().await.unwrap();
    within("reader after writer", c)
        .await
        .unwrap()
        .expect("reader acquires");
    s.stop().await;
}

#[tokio::test]
async fn writer_session_end_passes_the_lock_to_a_reader() {
    let s = TestServer::start().await;
    let holder = s.client().await;
    let guard = RwLock::new(holder.clone(), "/rw/exp")
        .write(WAIT)
        .await
        .unwrap();
    let reader = RwLock::new(s.client().await, "/rw/exp");
    let wait = tokio::spawn(async move { reader.read(WAIT).await });
    s.end_session_of(&holder).await;
    within("reader gets lock", wait)
        .await
        .unwrap()
        .expect("reader acquires");
    let why = within("holder notices loss", guard.lost()).await;
    assert!(matches!(why, LostReason::SessionEnded(_)), "{why:?}");
    s.stop().await;
}
