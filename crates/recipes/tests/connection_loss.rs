//! Connection loss mid-wait: a waiter whose connection is cut (and refused)
//! for a while, shorter than its session timeout, still gets its lock,
//! barrier, queue item, leadership or membership exactly once once it
//! reconnects, and leaves no duplicate nodes behind.

mod common;

use std::time::Duration;

use common::*;
use recipes::{Barrier, DoubleBarrier, GroupView, LeaderLatch, Lock, Membership, Queue};
use zookeeper_client as zk;

/// How long a frozen client stays cut off: well under [`LONG_SESSION`].
const FREEZE: Duration = Duration::from_millis(1500);

/// Cuts `c` off and waits until it has noticed (state Disconnected), so the
/// test really covers a disconnected waiter.
async fn freeze_and_notice(s: &TestServer, c: &zk::Client) {
    s.freeze(c);
    let mut states = c.state_watcher();
    within("client notices the cut", async {
        while states.state() != zk::SessionState::Disconnected {
            states.changed().await;
        }
    })
    .await;
}

/// Lets `c` reconnect and checks its session survived (same id, connected).
async fn thaw_and_reconnect(s: &TestServer, c: &zk::Client, id: zk::SessionId) {
    s.thaw(c);
    let mut states = c.state_watcher();
    within("client reconnects", async {
        while states.state() != zk::SessionState::SyncConnected {
            states.changed().await;
        }
    })
    .await;
    assert_eq!(c.session().id(), id, "session changed across the cut");
}

async fn children(c: &zk::Client, dir: &str) -> Vec<String> {
    let mut v = c.list_children(dir).await.expect("list");
    v.sort();
    v
}

#[tokio::test]
async fn lock_waiter_cut_off_mid_wait_gets_the_lock_once() {
    let s = TestServer::start().await;
    let holder = s.client().await;
    let w = s.client_with_timeout(LONG_SESSION).await;
    let id = w.session().id();
    let guard = Lock::new(holder.clone(), "/cl/lock")
        .acquire(WAIT)
        .await
        .unwrap();
    let lock = Lock::new(w.clone(), "/cl/lock");
    let wait = tokio::spawn(async move { lock.acquire(Duration::from_secs(20)).await });
    eventually("waiter queued", || async {
        children(&holder, "/cl/lock").await.len() == 2
    })
    .await;

    freeze_and_notice(&s, &w).await;
    guard.release().await.unwrap();
    tokio::time::sleep(FREEZE).await;
    assert!(!wait.is_finished(), "waiter acquired while cut off");
    thaw_and_reconnect(&s, &w, id).await;

    let g = within("waiter acquires after reconnect", wait)
        .await
        .unwrap()
        .expect("acquire");
    assert!(!g.is_lost());
    // Exactly the waiter's one node: no second contender from a retry.
    assert_eq!(
        children(&holder, "/cl/lock").await,
        vec![g.path().rsplit('/').next().unwrap().to_string()]
    );
    s.stop().await;
}

#[tokio::test]
async fn lock_acquire_started_while_cut_off_creates_one_node() {
    let s = TestServer::start().await;
    let other = s.client().await;
    let w = s.client_with_timeout(LONG_SESSION).await;
    let id = w.session().id();
    freeze_and_notice(&s, &w).await;
    // The create meets a lost connection: acquire must find out, once
    // reconnected, whether it landed, and not queue a second node.
    let lock = Lock::new(w.clone(), "/cl/lock2");
    let wait = tokio::spawn(async move { lock.acquire(Duration::from_secs(20)).await });
    tokio::time::sleep(FREEZE).await;
    thaw_and_reconnect(&s, &w, id).await;
    let g = within("acquire", wait).await.unwrap().expect("acquire");
    let names = children(&other, "/cl/lock2").await;
    assert_eq!(names.len(), 1, "duplicate contenders: {names:?}");
    assert!(g.path().ends_with(&names[0]));
    // And it is really held: another client cannot take it.
    let contender = Lock::new(other.clone(), "/cl/lock2");
    assert!(matches!(
        contender.acquire(Duration::from_millis(300)).await,
        Err(recipes::Error::Timeout(_))
    ));
    drop(g);
    within("lock passes on", contender.acquire(WAIT))
        .await
        .expect("acquire after release");
    s.stop().await;
}

#[tokio::test]
async fn barrier_waiter_cut_off_is_released_after_reconnect() {
    let s = TestServer::start().await;
    let admin = s.client().await;
    let w = s.client_with_timeout(LONG_SESSION).await;
    let id = w.session().id();
    let b = Barrier::new(admin.clone(), "/cl/barrier");
    b.set().await.unwrap();
    let bw = Barrier::new(w.clone(), "/cl/barrier");
    let wait = tokio::spawn(async move { bw.wait(Duration::from_secs(20)).await });
    // Let the waiter set its watch before the cut.
    tokio::time::sleep(Duration::from_millis(200)).await;
    freeze_and_notice(&s, &w).await;
    b.remove().await.unwrap();
    tokio::time::sleep(FREEZE).await;
    assert!(!wait.is_finished(), "released while cut off");
    thaw_and_reconnect(&s, &w, id).await;
    within("barrier wait returns", wait)
        .await
        .unwrap()
        .expect("released");
    s.stop().await;
}

#[tokio::test]
async fn double_barrier_participant_cut_off_enters_and_leaves() {
    let s = TestServer::start().await;
    let a = s.client_with_timeout(LONG_SESSION).await;
    let id = a.session().id();
    let b = s.client().await;
    let da = DoubleBarrier::new(a.clone(), "/cl/db", 2, "a");
    let db = DoubleBarrier::new(b.clone(), "/cl/db", 2, "b");
    let enter = tokio::spawn(async move {
        da.enter(Duration::from_secs(20)).await?;
        Ok::<_, recipes::Error>(da)
    });
    eventually("a joined", || async {
        b.check_stat("/cl/db/a").await.ok().flatten().is_some()
    })
    .await;
    freeze_and_notice(&s, &a).await;
    db.enter(WAIT)
        .await
        .expect("b enters: a's node survives the cut");
    tokio::time::sleep(FREEZE).await;
    assert!(!enter.is_finished(), "a entered while cut off");
    thaw_and_reconnect(&s, &a, id).await;
    let da = within("a enters", enter).await.unwrap().expect("a enters");
    assert_eq!(children(&b, "/cl/db").await, vec!["a", "b", "ready"]);

    // Leave: a leaves first and waits for b while cut off.
    let leave = tokio::spawn(async move { da.leave(Duration::from_secs(20)).await });
    eventually("a left", || async {
        b.check_stat("/cl/db/a").await.ok().flatten().is_none()
    })
    .await;
    freeze_and_notice(&s, &a).await;
    db.leave(WAIT).await.expect("b leaves");
    tokio::time::sleep(FREEZE).await;
    thaw_and_reconnect(&s, &a, id).await;
    within("a leaves", leave).await.unwrap().expect("a leaves");
    assert!(children(&b, "/cl/db").await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn queue_consumer_cut_off_mid_take_gets_the_item_once() {
    let s = TestServer::start().await;
    let producer = s.client().await;
    let w = s.client_with_timeout(LONG_SESSION).await;
    let id = w.session().id();
    let q = Queue::new(producer.clone(), "/cl/q");
    let qw = Queue::new(w.clone(), "/cl/q");
    let take = tokio::spawn(async move { qw.take(Duration::from_secs(20)).await });
    eventually("queue dir exists", || async {
        producer.check_stat("/cl/q").await.ok().flatten().is_some()
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    freeze_and_notice(&s, &w).await;
    q.put(b"one").await.unwrap();
    tokio::time::sleep(FREEZE).await;
    assert!(!take.is_finished(), "took while cut off");
    thaw_and_reconnect(&s, &w, id).await;
    let got = within("take after reconnect", take)
        .await
        .unwrap()
        .expect("take");
    assert_eq!(got, b"one");
    assert_eq!(q.try_take().await.unwrap(), None);
    // The consumer's claim marker goes too (deleted in the background).
    eventually("queue empty", || async {
        children(&producer, "/cl/q").await.is_empty()
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn election_follower_cut_off_takes_over_once() {
    let s = TestServer::start().await;
    let c1 = s.client().await;
    let c2 = s.client_with_timeout(LONG_SESSION).await;
    let id = c2.session().id();
    let l1 = LeaderLatch::start(c1.clone(), "/cl/elect", b"one")
        .await
        .unwrap();
    let first = l1.await_leadership(WAIT).await.unwrap();
    let l2 = LeaderLatch::start(c2.clone(), "/cl/elect", b"two")
        .await
        .unwrap();
    let mut rx = l2.subscribe();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!l2.is_leader());

    freeze_and_notice(&s, &c2).await;
    l1.close().await.unwrap();
    tokio::time::sleep(FREEZE).await;
    assert!(!l2.is_leader(), "leader while cut off");
    thaw_and_reconnect(&s, &c2, id).await;

    let token = within("follower takes over", l2.await_leadership(WAIT))
        .await
        .expect("leads");
    assert!(token > first);
    let names = children(&c1, "/cl/elect").await;
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(l2.path().ends_with(&names[0]));
    // Gained once, not lost afterwards.
    rx.borrow_and_update();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(l2.is_leader());
    s.stop().await;
}

#[tokio::test]
async fn group_view_cut_off_catches_up_and_joins_are_not_doubled() {
    let s = TestServer::start().await;
    let v = s.client_with_timeout(LONG_SESSION).await;
    let vid = v.session().id();
    let view = GroupView::watch(v.clone(), "/cl/g").await.unwrap();
    let mut rx = view.subscribe();
    let c1 = s.client().await;
    let m1 = Membership::join(c1.clone(), "/cl/g", b"one").await.unwrap();
    within("view sees one", rx.wait_for(|m| m.len() == 1))
        .await
        .unwrap();

    // While the view is cut off, one member crashes and another joins.
    freeze_and_notice(&s, &v).await;
    s.end_session_of(&c1).await;
    let c2 = s.client_with_timeout(LONG_SESSION).await;
    let id2 = c2.session().id();
    // The joiner is cut off too, so its create meets a lost connection.
    freeze_and_notice(&s, &c2).await;
    let join = tokio::spawn({
        let c2 = c2.clone();
        async move { Membership::join(c2, "/cl/g", b"two").await }
    });
    tokio::time::sleep(FREEZE).await;
    thaw_and_reconnect(&s, &c2, id2).await;
    let m2 = within("join", join).await.unwrap().expect("join");
    thaw_and_reconnect(&s, &v, vid).await;

    within(
        "view catches up",
        rx.wait_for(|m| m.len() == 1 && m[0].data == b"two"),
    )
    .await
    .unwrap();
    assert_eq!(view.members()[0].name, m2.name());
    // One node for the joiner: the retry found its create instead of
    // making a second.
    assert_eq!(children(&v, "/cl/g").await, vec![m2.name().to_string()]);
    drop(m1);
    s.stop().await;
}

/// Hold of a trapped client's cut: short, the point is the lost reply.
const HOLD: Duration = Duration::from_millis(500);

#[tokio::test]
async fn lock_create_and_lookup_replies_lost_leave_one_contender() {
    let s = TestServer::start().await;
    let other = s.client().await;
    let w = s.trap_client(LONG_SESSION).await;
    // The create lands but its reply is lost; so is the reply of the
    // listing that looks for it: retrying the create would queue a second
    // contender of ours, behind which we would wait for ever.
    s.lose_replies_to(
        &w,
        &[(op::CREATE, "-lock-"), (op::GET_CHILDREN, "/cl/lk")],
        HOLD,
    );
    let g = within("acquire", Lock::new(w.clone(), "/cl/lk").acquire(WAIT))
        .await
        .expect("acquire");
    assert!(s.traps_sprung(&w));
    let names = children(&other, "/cl/lk").await;
    assert_eq!(names.len(), 1, "duplicate contenders: {names:?}");
    assert!(g.path().ends_with(&names[0]));
    s.stop().await;
}

#[tokio::test]
async fn lock_waiter_survives_lost_replies_while_waiting() {
    let s = TestServer::start().await;
    let holder = s.client().await;
    let w = s.trap_client(LONG_SESSION).await;
    let guard = Lock::new(holder.clone(), "/cl/lw")
        .acquire(WAIT)
        .await
        .unwrap();
    // The waiter's first listing of contenders and its watch on the
    // predecessor both lose their replies.
    s.lose_replies_to(
        &w,
        &[(op::GET_CHILDREN, "/cl/lw"), (op::EXISTS, "/cl/lw/")],
        HOLD,
    );
    let lock = Lock::new(w.clone(), "/cl/lw");
    let wait = tokio::spawn(async move { lock.acquire(Duration::from_secs(20)).await });
    eventually("traps sprung", || async { s.traps_sprung(&w) }).await;
    // Still queued behind the holder, not failed.
    tokio::time::sleep(HOLD * 2).await;
    assert!(!wait.is_finished(), "{:?}", wait.await);
    guard.release().await.unwrap();
    let g = within("waiter acquires", wait)
        .await
        .unwrap()
        .expect("acquire");
    let names = children(&holder, "/cl/lw").await;
    assert_eq!(names.len(), 1, "{names:?}");
    assert!(g.path().ends_with(&names[0]));
    s.stop().await;
}

#[tokio::test]
async fn queue_claim_reply_lost_item_taken_exactly_once() {
    let s = TestServer::start().await;
    let producer = s.client().await;
    let w = s.trap_client(LONG_SESSION).await;
    let q = Queue::new(producer.clone(), "/cl/qt");
    q.put(b"one").await.unwrap();
    q.put(b"two").await.unwrap();
    // The claim of the first item lands, its reply is lost: the consumer
    // must still get "one" (not lose it, not skip to "two").
    s.lose_replies_to(&w, &[(op::MULTI, "qn-")], HOLD);
    let qw = Queue::new(w.clone(), "/cl/qt");
    let first = within("take", qw.take(WAIT)).await.expect("take");
    assert!(s.traps_sprung(&w));
    assert_eq!(first, b"one");
    assert_eq!(within("take", qw.take(WAIT)).await.expect("take"), b"two");
    assert_eq!(q.try_take().await.unwrap(), None);
    eventually("claim markers gone", || async {
        children(&producer, "/cl/qt").await.is_empty()
    })
    .await;
    s.stop().await;
}

#[tokio::test]
async fn double_barrier_survives_lost_replies() {
    let s = TestServer::start().await;
    let a = s.trap_client(LONG_SESSION).await;
    let b = s.client().await;
    // a's join lands but its reply is lost (NodeExists on retry is ours);
    // then its listing of participants loses its reply too.
    s.lose_replies_to(
        &a,
        &[(op::CREATE, "/cl/dbt/a"), (op::GET_CHILDREN, "/cl/dbt")],
        HOLD,
    );
    let da = DoubleBarrier::new(a.clone(), "/cl/dbt", 2, "a");
    let db = DoubleBarrier::new(b.clone(), "/cl/dbt", 2, "b");
    let enter = tokio::spawn(async move {
        da.enter(Duration::from_secs(20)).await?;
        Ok::<_, recipes::Error>(da)
    });
    eventually("traps sprung", || async { s.traps_sprung(&a) }).await;
    db.enter(WAIT).await.expect("b enters");
    let da = within("a enters", enter).await.unwrap().expect("a enters");
    s.lose_replies_to(&a, &[(op::DELETE, "/cl/dbt/a")], HOLD);
    let (ra, rb) = tokio::join!(da.leave(WAIT), db.leave(WAIT));
    ra.expect("a leaves");
    rb.expect("b leaves");
    assert!(s.traps_sprung(&a));
    assert!(children(&b, "/cl/dbt").await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn semaphore_and_rwlock_waiters_survive_lost_replies() {
    let s = TestServer::start().await;
    let holder = s.client().await;
    let w = s.trap_client(LONG_SESSION).await;

    // Semaphore of one lease: the waiter's listing loses its reply.
    let lease = recipes::Semaphore::new(holder.clone(), "/cl/sem", 1)
        .acquire(WAIT)
        .await
        .unwrap();
    s.lose_replies_to(&w, &[(op::GET_CHILDREN, "/cl/sem")], HOLD);
    let sem = recipes::Semaphore::new(w.clone(), "/cl/sem", 1);
    let wait = tokio::spawn(async move { sem.acquire(Duration::from_secs(20)).await });
    eventually("sem trap sprung", || async { s.traps_sprung(&w) }).await;
    tokio::time::sleep(HOLD * 2).await;
    assert!(!wait.is_finished(), "{:?}", wait.await);
    lease.release().await.unwrap();
    let g = within("lease", wait).await.unwrap().expect("lease");
    assert_eq!(children(&holder, "/cl/sem").await.len(), 1);
    drop(g);

    // Read/write lock: a writer holds; the reader's listing and its watch
    // on the writer both lose their replies.
    let rw = recipes::RwLock::new(holder.clone(), "/cl/rw");
    let wg = rw.write(WAIT).await.unwrap();
    s.lose_replies_to(
        &w,
        &[(op::GET_CHILDREN, "/cl/rw"), (op::EXISTS, "/cl/rw/")],
        HOLD,
    );
    let rr = recipes::RwLock::new(w.clone(), "/cl/rw");
    let wait = tokio::spawn(async move { rr.read(Duration::from_secs(20)).await });
    eventually("rw traps sprung", || async { s.traps_sprung(&w) }).await;
    tokio::time::sleep(HOLD * 2).await;
    assert!(!wait.is_finished(), "{:?}", wait.await);
    wg.release().await.unwrap();
    let g = within("read lock", wait).await.unwrap().expect("read");
    assert_eq!(children(&holder, "/cl/rw").await.len(), 1);
    drop(g);
    s.stop().await;
}
