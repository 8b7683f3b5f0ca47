//! Counter: compare-and-set on the znode version.

mod common;

use common::*;
use recipes::Counter;

#[tokio::test]
async fn concurrent_adds_are_not_lost_and_stale_cas_fails() {
    let s = TestServer::start().await;
    let mut tasks = Vec::new();
    for _ in 0..5 {
        let c = Counter::new(s.client().await, "/counters/hits");
        tasks.push(tokio::spawn(async move {
            for _ in 0..10 {
                c.add(1).await.unwrap();
            }
        }));
    }
    for t in tasks {
        within("adders", t).await.unwrap();
    }
    let c = Counter::new(s.client().await, "/counters/hits");
    let (v, version) = c.get().await.unwrap();
    assert_eq!(v, 50);
    assert!(c.compare_and_set(version, 100).await.unwrap());
    assert!(
        !c.compare_and_set(version, 7).await.unwrap(),
        "stale version must fail"
    );
    assert_eq!(c.get().await.unwrap().0, 100);
    s.stop().await;
}
