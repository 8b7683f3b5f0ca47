//! A learner whose elected leader is gone goes back to the election after
//! a few refused connects, as Apache's Learner.connectToLeader does (five
//! tries), instead of retrying for all of initLimit.
//!
//! Server 1 is a real rookeeper; servers 2 and 3 are fakes that speak only
//! the election protocol. They answer server 1's first notification as a
//! follower of 3 and as leader 3, so server 1 follows 3, whose quorum port
//! refuses. Then they fall silent: with no quorum, server 1 must come back
//! looking and, with readonlymode.enabled, serve read-only clients. With
//! initLimit=30 and tickTime=2000, waiting out initLimit would take 60 s.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{poll_until, TestServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use zab::wire::{self, Notification};
use zab::ServerState;
use zookeeper_client as zk;

/// A loopback port nothing listens on, below the ephemeral range so no
/// outgoing connection takes it before server 1 binds it.
fn free_port() -> u16 {
    bench::free_port().expect("free port")
}

async fn read_frame(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let n = s.read_i32().await?;
    assert!((0..=1 << 20).contains(&n), "bad election frame length {n}");
    let mut b = vec![0u8; n as usize];
    s.read_exact(&mut b).await?;
    Ok(b)
}

async fn write_frame(s: &mut TcpStream, body: &[u8]) -> std::io::Result<()> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    s.write_all(&f).await
}

/// A fake election peer with an id above server 1's: it takes server 1's
/// handshake, hangs up and calls back (the larger id keeps the connection),
/// answers the first notification once with `state` for leader 3, and
/// records the election rounds of every notification it hears.
async fn fake_peer(
    my_id: u64,
    state: ServerState,
    listener: TcpListener,
    server1_election: SocketAddr,
    rounds: Arc<Mutex<Vec<i64>>>,
) {
    let my_addr = listener.local_addr().expect("addr").to_string();
    // Server 1 calls us when it has a notification for us; whatever it
    // sends, we then call back and keep that connection.
    let mut answered = false;
    loop {
        let Ok((mut s, _)) = listener.accept().await else {
            return;
        };
        let _ = s.read_i64().await;
        drop(s);
        let Ok(mut s) = TcpStream::connect(server1_election).await else {
            continue;
        };
        if s.write_all(&wire::initial_message(my_id, &my_addr))
            .await
            .is_err()
        {
            continue;
        }
        while let Ok(body) = read_frame(&mut s).await {
            let n = Notification::decode(&body).expect("server 1's notification decodes");
            rounds.lock().unwrap().push(n.election_epoch);
            if answered || n.state != ServerState::Looking {
                continue;
            }
            answered = true;
            let reply = Notification {
                state,
                leader: 3,
                zxid: n.zxid,
                election_epoch: n.election_epoch,
                peer_epoch: n.peer_epoch,
                version: 2,
                config: n.config.clone(),
            };
            if write_frame(&mut s, &reply.encode()).await.is_err() {
                break;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_elected_leader_sends_the_learner_back_to_the_election() {
    let e2 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e3 = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (q1, e1) = (free_port(), free_port());
    // Server 3's quorum port: nothing listens, so connects are refused.
    let (q2, q3) = (free_port(), free_port());
    let p2 = e2.local_addr().unwrap().port();
    let p3 = e3.local_addr().unwrap().port();
    let lines = [
        "initLimit=30".to_owned(),
        "syncLimit=5".to_owned(),
        "4lw.commands.whitelist=*".to_owned(),
        format!("server.1=127.0.0.1:{q1}:{e1}"),
        format!("server.2=127.0.0.1:{q2}:{p2}"),
        format!("server.3=127.0.0.1:{q3}:{p3}"),
    ];
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let election1: SocketAddr = format!("127.0.0.1:{e1}").parse().unwrap();
    let rounds = Arc::new(Mutex::new(Vec::new()));
    let f2 = tokio::spawn(fake_peer(
        2,
        ServerState::Following,
        e2,
        election1,
        rounds.clone(),
    ));
    let f3 = tokio::spawn(fake_peer(
        3,
        ServerState::Leading,
        e3,
        election1,
        rounds.clone(),
    ));
    let server = TestServer::member(Some(1), &lines, &[("readonlymode.enabled", "true")]).await;

    // A read-only session, through a real client: it is only possible once
    // server 1 has given up on leader 3 and looked again without a quorum.
    let hosts = server.connect_string();
    let client = poll_until(
        "a read-only session on server 1",
        Duration::from_secs(20),
        || {
            let hosts = hosts.clone();
            async move {
                zk::Client::connector()
                    .with_readonly(true)
                    .with_session_timeout(Duration::from_secs(6))
                    .with_connection_timeout(Duration::from_secs(1))
                    .connect(&hosts)
                    .await
                    .ok()
            }
        },
    )
    .await;
    assert_eq!(client.state(), zk::SessionState::ConnectedReadOnly);
    assert_eq!(client.get_children("/").await.unwrap().0, vec!["zookeeper"]);
    assert!(matches!(
        client.create("/x", b"", &common::persistent()).await,
        Err(zk::Error::NotReadOnly)
    ));

    // It did follow 3 first: after the first round's decision it looked
    // again, in a later round.
    let seen = rounds.lock().unwrap().clone();
    let first = *seen.first().expect("server 1 sent notifications");
    assert!(
        seen.iter().any(|&r| r > first),
        "no second election round after following the dead leader: rounds {seen:?}"
    );

    drop(client);
    server.stop().await;
    f2.abort();
    f3.abort();
}
