//! Leader election: lowest sequence leads, takeover on session end, fencing.

mod common;

use std::time::Duration;

use common::*;
use recipes::{LeaderLatch, LeaderState};

#[tokio::test]
async fn leadership_passes_in_order_with_increasing_tokens() {
    let s = TestServer::start().await;
    let c1 = s.client().await;
    let c2 = s.client().await;
    let c3 = s.client().await;
    let l1 = LeaderLatch::start(c1.clone(), "/election/a", b"one")
        .await
        .unwrap();
    let t1 = l1.await_leadership(WAIT).await.expect("first leads");
    let l2 = LeaderLatch::start(c2, "/election/a", b"two").await.unwrap();
    let l3 = LeaderLatch::start(c3, "/election/a", b"three")
        .await
        .unwrap();
    assert!(l1.is_leader());
    assert!(l2
        .await_leadership(Duration::from_millis(200))
        .await
        .is_err());
    assert!(!l2.is_leader() && !l3.is_leader());

    // The leader's session ends: the next in line takes over, the old
    // leader learns it lost.
    let mut old = l1.subscribe();
    s.end_session_of(&c1).await;
    let t2 = l2.await_leadership(WAIT).await.expect("second takes over");
    assert!(t2 > t1);
    within(
        "old leader sees loss",
        old.wait_for(|s| matches!(s, LeaderState::Lost(_))),
    )
    .await
    .unwrap();
    assert!(!l1.is_leader());
    assert!(!l3.is_leader());

    // A leader that steps down hands over at once.
    l2.close().await.unwrap();
    let t3 = l3.await_leadership(WAIT).await.expect("third takes over");
    assert!(t3 > t2);
    s.stop().await;
}
