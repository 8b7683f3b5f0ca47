//! What a loaded server admits (server::admission), through real clients:
//! the large-request budget, the request throttler and THROTTLEDOP, the
//! connection throttler; and the mntr figures each keeps.

mod common;

use bytes::BytesMut;
use common::{connect_request, frame, mntr, persistent, within, Raw, TestServer};
use jute::codec::Record;
use jute::consts::op;
use jute::proto::RequestHeader;
use jute::proto::SetDataRequest;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zookeeper_client as zk;

fn num(m: &std::collections::HashMap<String, String>, k: &str) -> u64 {
    m.get(k)
        .unwrap_or_else(|| panic!("mntr has no {k}"))
        .parse()
        .unwrap()
}

/// Three sessions, each with a node of its own (`{prefix}0`...).
async fn clients_with_nodes(s: &TestServer, prefix: &str) -> [zk::Client; 3] {
    let clients = [s.client().await, s.client().await, s.client().await];
    for (i, c) in clients.iter().enumerate() {
        c.create(&format!("{prefix}{i}"), b"", &persistent())
            .await
            .unwrap();
    }
    clients
}

fn set_data(xid: i32, path: &str, len: usize) -> Vec<u8> {
    let mut b = BytesMut::new();
    RequestHeader {
        xid,
        op: op::SET_DATA,
    }
    .write(&mut b);
    SetDataRequest {
        path: path.into(),
        data: Some(vec![7u8; len].into()),
        version: -1,
    }
    .write(&mut b);
    frame(&b)
}

#[tokio::test]
async fn a_request_beyond_the_large_request_budget_closes_its_connection() {
    let s = TestServer::with(
        &["4lw.commands.whitelist=*"],
        &[
            ("zookeeper.largeRequestThreshold", "1000"),
            ("zookeeper.largeRequestMaxBytes", "5000"),
        ],
    )
    .await;
    let c = s.client().await;
    c.create("/big", b"", &persistent()).await.unwrap();
    // Large, within the budget: served.
    c.set_data("/big", &[1u8; 3000], None).await.unwrap();
    // Larger than the whole budget: refused on its length, connection closed.
    let mut raw = Raw::connect(s.addr).await;
    raw.stream
        .write_all(&set_data(1, "/big", 6000))
        .await
        .unwrap();
    assert!(raw.closed().await.is_empty(), "no reply, just a close");
    let m = mntr(&s).await;
    assert_eq!(num(&m, "large_requests_rejected"), 1);
    // Nothing of it applied, and everyone else is still served.
    let (data, _) = c.get_data("/big").await.unwrap();
    assert_eq!(data, vec![1u8; 3000]);
    let fresh = s.client().await;
    fresh.set_data("/big", &[2u8; 3000], None).await.unwrap();
    // Every client connection so far came over loopback without TLS.
    assert!(num(&mntr(&s).await, "non_mtls_local_conn_count") >= 3);
    assert_eq!(num(&m, "non_mtls_remote_conn_count"), 0);
    s.stop().await;
}

#[tokio::test]
async fn throttled_requests_wait_their_turn_and_all_complete() {
    let s = TestServer::with(
        &["4lw.commands.whitelist=*"],
        &[
            ("zookeeper.request_throttle_max_requests", "1"),
            ("zookeeper.request_throttle_stall_time", "5"),
        ],
    )
    .await;
    let clients = clients_with_nodes(&s, "/t").await;
    let runs = clients.iter().enumerate().map(|(i, c)| async move {
        let path = format!("/t{i}");
        // Pipelined: each call sends at once.
        let sets: Vec<_> = (0..50u8).map(|n| c.set_data(&path, &[n], None)).collect();
        for r in futures::future::join_all(sets).await {
            r.unwrap();
        }
    });
    within("throttled writes", futures::future::join_all(runs)).await;
    for (i, c) in clients.iter().enumerate() {
        let (data, stat) = c.get_data(&format!("/t{i}")).await.unwrap();
        assert_eq!(
            (data, stat.version),
            (vec![49u8], 50),
            "in order, all applied"
        );
    }
    let m = mntr(&s).await;
    // Every request after the handshakes went through the throttler.
    assert!(num(&m, "cnt_request_throttle_queue_time_ms") >= 150 + 3 + 3);
    assert_eq!(num(&m, "throttled_ops"), 0);
    s.stop().await;
}

#[tokio::test]
async fn throttled_ops_are_answered_throttledop_and_not_carried_out() {
    let s = TestServer::with(
        &["4lw.commands.whitelist=*"],
        &[
            ("zookeeper.request_throttle_max_requests", "1"),
            ("zookeeper.request_throttle_stall_time", "1"),
            ("zookeeper.throttled_op_wait_time", "1"),
        ],
    )
    .await;
    let clients = clients_with_nodes(&s, "/o").await;
    let runs = clients.iter().enumerate().map(|(i, c)| async move {
        let path = format!("/o{i}");
        let sets: Vec<_> = (0..100u8).map(|n| c.set_data(&path, &[n], None)).collect();
        let mut done = 0;
        let mut throttled = 0;
        for r in futures::future::join_all(sets).await {
            match r {
                Ok(_) => done += 1,
                Err(zk::Error::Throttled) => throttled += 1,
                Err(e) => panic!("unexpected error {e:?}"),
            }
        }
        (done, throttled)
    });
    let outcomes = within("writes", futures::future::join_all(runs)).await;
    let mut throttled_total = 0;
    for (i, (done, throttled)) in outcomes.into_iter().enumerate() {
        let (_, stat) = clients[i].get_data(&format!("/o{i}")).await.unwrap();
        // A throttled write changed nothing: the version counts the rest.
        assert_eq!(stat.version, done, "client {i}: {throttled} throttled");
        throttled_total += throttled as u64;
    }
    let m = mntr(&s).await;
    assert_eq!(num(&m, "throttled_ops"), throttled_total);
    eprintln!("{throttled_total} of 300 writes throttled");
    s.stop().await;
}

#[tokio::test]
async fn the_connection_throttler_refuses_connects_once_its_tokens_run_out() {
    let s = TestServer::with(
        &["4lw.commands.whitelist=*"],
        &[
            ("zookeeper.connection_throttle_tokens", "2"),
            // No refill within the test.
            ("zookeeper.connection_throttle_fill_time", "3600000"),
        ],
    )
    .await;
    let (_a, _) = Raw::handshake(s.addr, connect_request(10_000)).await;
    let (_b, _) = Raw::handshake(s.addr, connect_request(10_000)).await;
    let mut third = TcpStream::connect(s.addr).await.unwrap();
    third
        .write_all(&frame(&connect_request(10_000).to_bytes()))
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = within(
        "the third connect to be closed",
        third.read_to_end(&mut buf),
    )
    .await;
    assert!(buf.is_empty(), "refused without a ConnectResponse");
    let m = mntr(&s).await;
    assert_eq!(num(&m, "connection_rejected"), 1);
    assert_eq!(num(&m, "cnt_connection_token_deficit"), 2);
    assert_eq!(num(&m, "max_connection_token_deficit"), 2);
    s.stop().await;
}
