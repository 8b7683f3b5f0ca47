//! Sessions: ephemerals go when a session closes or expires (and watchers
//! of other sessions hear about it), timeouts are negotiated within
//! [minSessionTimeout, maxSessionTimeout], a session survives a reconnect,
//! and an expired session is reported expired.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{connect_request, ephemeral, persistent, poll_until, within, Raw, TestServer};
use jute::consts::op;
use zk::{Error, EventType, SessionState};
use zookeeper_client as zk;

/// tickTime=200: sessions may last 400ms..4s, so expiry tests are quick.
async fn fast_server() -> TestServer {
    TestServer::with(&["tickTime=200"], &[]).await
}

#[tokio::test]
async fn closing_a_session_deletes_its_ephemerals_and_notifies_watchers() {
    let s = TestServer::start().await;
    let owner = s.client().await;
    let watcher = s.client().await;
    owner.create("/dir", b"", &persistent()).await.unwrap();
    owner.create("/e1", b"", &ephemeral()).await.unwrap();
    owner.create("/dir/e2", b"", &ephemeral()).await.unwrap();
    let info = owner.session().clone();

    let (st, w_e1) = watcher.check_and_watch_stat("/e1").await.unwrap();
    assert_eq!(st.unwrap().ephemeral_owner, info.id().0);
    let (_, w_dir) = watcher.list_and_watch_children("/dir").await.unwrap();
    drop(owner); // the library closes the session when its last handle goes

    let e = within("NodeDeleted for /e1", w_e1.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDeleted, "/e1")
    );
    let e = within("NodeChildrenChanged for /dir", w_dir.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeChildrenChanged, "/dir")
    );
    assert_eq!(watcher.check_stat("/dir/e2").await.unwrap(), None);
    assert!(watcher.check_stat("/dir").await.unwrap().is_some());

    // A closed session cannot be resumed.
    let r = s.try_connect(common::connector().with_session(info)).await;
    assert_eq!(r.unwrap_err(), Error::SessionExpired);
    s.stop().await;
}

#[tokio::test]
async fn close_session_request_answers_then_closes() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    let create = jute::proto::CreateRequest {
        path: "/raw-eph".into(),
        data: Bytes::new().into(),
        acl: vec![jute::data::Acl::new(31, "world", "anyone")],
        flags: 1,
    };
    assert_eq!(raw.err_of(op::CREATE, &create).await, 0);
    let st = c.check_stat("/raw-eph").await.unwrap().unwrap();
    assert_eq!(st.ephemeral_owner, raw.session_id);
    let (h, body) = raw.request(op::CLOSE_SESSION, &[]).await;
    assert_eq!(h.err, 0);
    assert!(body.is_empty());
    assert_eq!(
        raw.closed().await,
        Vec::<Bytes>::new(),
        "closed after the reply"
    );
    assert_eq!(c.check_stat("/raw-eph").await.unwrap(), None);
    s.stop().await;
}

#[tokio::test]
async fn expiry_deletes_ephemerals_and_notifies_other_sessions() {
    let s = fast_server().await;
    let watcher = s.client().await;
    // Detached: dropping it closes the connection but not the session.
    let owner = s
        .connect(
            common::connector()
                .with_session_timeout(Duration::from_millis(2000))
                .with_detached(),
        )
        .await;
    assert_eq!(owner.session_timeout(), Duration::from_millis(2000));
    owner.create("/x", b"", &ephemeral()).await.unwrap();
    let info = owner.session().clone();
    let (_, w) = watcher.check_and_watch_stat("/x").await.unwrap();
    drop(owner);

    // Losing the connection is not the end of the session...
    let st = watcher.check_stat("/x").await.unwrap();
    assert_eq!(st.map(|s| s.ephemeral_owner), Some(info.id().0));
    // ...expiry is.
    let e = within("NodeDeleted on expiry", w.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDeleted, "/x")
    );
    assert_eq!(watcher.check_stat("/x").await.unwrap(), None);

    let r = s.try_connect(common::connector().with_session(info)).await;
    assert_eq!(r.unwrap_err(), Error::SessionExpired);
    s.stop().await;
}

#[tokio::test]
async fn a_silent_raw_session_expires_and_its_connection_is_closed() {
    let s = fast_server().await;
    let c = s.client().await;
    let (mut raw, resp) = Raw::handshake(s.addr, connect_request(400)).await;
    assert_eq!(resp.time_out, 400);
    let create = jute::proto::CreateRequest {
        path: "/silent".into(),
        data: Bytes::new().into(),
        acl: vec![jute::data::Acl::new(31, "world", "anyone")],
        flags: 1,
    };
    assert_eq!(raw.err_of(op::CREATE, &create).await, 0);
    let (sid, passwd) = (raw.session_id, raw.passwd.clone());
    // No pings: the server expires the session and drops the connection.
    assert_eq!(raw.closed().await, Vec::<Bytes>::new());
    poll_until("the ephemeral to go", Duration::from_secs(10), || async {
        c.check_stat("/silent")
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    let (mut again, resp) = Raw::resume(s.addr, sid, passwd).await;
    assert_eq!((resp.session_id, resp.time_out), (0, 0), "expired");
    assert_eq!(&resp.passwd[..], &[0u8; 16]);
    assert_eq!(again.closed().await, Vec::<Bytes>::new());
    s.stop().await;
}

#[tokio::test]
async fn pings_keep_a_session_alive() {
    let s = fast_server().await;
    let c = s.client().await;
    let (mut raw, resp) = Raw::handshake(s.addr, connect_request(1500)).await;
    assert_eq!(resp.time_out, 1500);
    let create = jute::proto::CreateRequest {
        path: "/alive".into(),
        data: Bytes::new().into(),
        acl: vec![jute::data::Acl::new(31, "world", "anyone")],
        flags: 1,
    };
    assert_eq!(raw.err_of(op::CREATE, &create).await, 0);
    // Twice the timeout, pinging every 100ms.
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(raw.events().await, vec![]);
    }
    assert!(c.check_stat("/alive").await.unwrap().is_some());
    s.stop().await;
}

#[tokio::test]
async fn session_timeout_is_negotiated_within_bounds() {
    let s = fast_server().await;
    for (asked, got) in [
        (1, 400),
        (100, 400),
        (400, 400),
        (1500, 1500),
        (4000, 4000),
        (60_000, 4000),
    ] {
        let (_, resp) = Raw::handshake(s.addr, connect_request(asked)).await;
        assert_ne!(resp.session_id, 0);
        assert_eq!(resp.time_out, got, "asked for {asked}ms");
    }
    let c = s
        .connect(common::connector().with_session_timeout(Duration::from_secs(60)))
        .await;
    assert_eq!(c.session_timeout(), Duration::from_secs(4));
    s.stop().await;

    let s = TestServer::with(
        &[
            "tickTime=200",
            "minSessionTimeout=1000",
            "maxSessionTimeout=3000",
        ],
        &[],
    )
    .await;
    for (asked, got) in [(100, 1000), (2000, 2000), (10_000, 3000)] {
        let (_, resp) = Raw::handshake(s.addr, connect_request(asked)).await;
        assert_eq!(resp.time_out, got, "asked for {asked}ms");
    }
    s.stop().await;
}

#[tokio::test]
async fn reconnecting_with_the_same_session_keeps_ephemerals() {
    let s = TestServer::start().await;
    let other = s.client().await;
    let first = s.connect(common::connector().with_detached()).await;
    let (st, _) = first.create("/keep", b"", &ephemeral()).await.unwrap();
    let info = first.session().clone();
    let sid = info.id();
    assert_eq!(st.ephemeral_owner, sid.0);
    drop(first);

    let second = s.connect(common::connector().with_session(info)).await;
    assert_eq!(second.session_id(), sid);
    assert_eq!(second.list_ephemerals("/").await.unwrap(), vec!["/keep"]);
    let (_, w) = other.check_and_watch_stat("/keep").await.unwrap();
    // The resumed session still owns it: closing it now removes it.
    drop(second);
    let e = within("NodeDeleted after close", w.changed()).await;
    assert_eq!(e.event_type, EventType::NodeDeleted);
    s.stop().await;
}

#[tokio::test]
async fn resuming_a_session_moves_it_and_needs_its_password() {
    let s = TestServer::start().await;
    let mut first = Raw::connect(s.addr).await;
    let (sid, passwd) = (first.session_id, first.passwd.clone());
    assert_eq!(passwd.len(), 16);

    // A wrong password is refused like an unknown session.
    let mut bad = passwd.to_vec();
    bad[0] ^= 0xff;
    let (mut refused, resp) = Raw::resume(s.addr, sid, Bytes::from(bad)).await;
    assert_eq!((resp.session_id, resp.time_out), (0, 0));
    assert_eq!(refused.closed().await, Vec::<Bytes>::new());
    let (mut unknown, resp) = Raw::resume(s.addr, sid ^ 0x5555, passwd.clone()).await;
    assert_eq!(resp.session_id, 0);
    assert_eq!(unknown.closed().await, Vec::<Bytes>::new());

    // The right one moves the session; the old connection is closed.
    let (mut second, resp) = Raw::resume(s.addr, sid, passwd.clone()).await;
    assert_eq!(resp.session_id, sid);
    assert_eq!(resp.passwd, passwd, "same password");
    assert_eq!(first.closed().await, Vec::<Bytes>::new());
    assert_eq!(second.events().await, vec![], "the new connection works");
    s.stop().await;
}

/// A client whose runtime can be frozen, to silence it without closing its
/// connection (as a paused process would).
struct Freezable {
    handle: tokio::runtime::Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Freezable {
    fn new() -> Freezable {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let handle = rt.handle().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        std::thread::spawn(move || {
            let _ = rt.block_on(stopped);
        });
        Freezable {
            handle,
            stop: Some(stop),
        }
    }

    /// Blocks the client's thread until the returned sender is used.
    fn freeze(&self) -> std::sync::mpsc::Sender<()> {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<()>();
        self.handle.spawn(async move {
            ready_tx.send(()).unwrap();
            let _ = rx.recv();
        });
        ready_rx
            .recv_timeout(Duration::from_secs(10))
            .expect("client runtime froze");
        tx
    }
}

impl Drop for Freezable {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

#[tokio::test]
async fn a_client_that_goes_silent_learns_its_session_expired() {
    // tickTime=150: a 3s session. The frozen client's own deadline (7/5 of
    // the timeout after its last reply) is later than the server's expiry,
    // so on thawing it reconnects and is told by the server.
    let s = TestServer::with(&["tickTime=150"], &[]).await;
    let watcher = s.client().await;
    let thread = Freezable::new();
    let addr = s.connect_string();
    let owner = thread
        .handle
        .spawn(async move {
            common::connector()
                .with_session_timeout(Duration::from_millis(3000))
                .connect(&addr)
                .await
        })
        .await
        .unwrap()
        .expect("connects");
    assert_eq!(owner.session_timeout(), Duration::from_millis(3000));
    owner.create("/lost", b"", &ephemeral()).await.unwrap();
    let (_, w) = watcher.check_and_watch_stat("/lost").await.unwrap();
    let mut states = owner.state_watcher();
    owner.sync("/").await.unwrap();

    let thaw = thread.freeze();
    let e = within("NodeDeleted on expiry", w.changed()).await;
    assert_eq!(
        (e.event_type, e.path.as_str()),
        (EventType::NodeDeleted, "/lost")
    );
    thaw.send(()).unwrap();

    let end = within("the owner to see expiry", async {
        loop {
            let st = states.changed().await;
            if st.is_terminated() {
                return st;
            }
        }
    })
    .await;
    assert_eq!(end, SessionState::Expired);
    assert_eq!(owner.sync("/").await.unwrap_err(), Error::SessionExpired);
    drop(owner);
    drop(thread);
    s.stop().await;
}
