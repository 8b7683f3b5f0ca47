//! Election corner cases against fake peers: server 1 is a real rookeeper;
//! servers 2 and 3 are fakes that speak only the election protocol, so a
//! test decides what they vote and when.
//!
//! - A learner whose elected leader is gone goes back to the election after
//!   a few refused connects, as Apache's Learner.connectToLeader does (five
//!   tries), instead of retrying for all of initLimit.
//! - A leader still choosing its epoch quits when a server that voted for
//!   it looks again (zookeeper.leader.maxTimeToWaitForEpoch).
//!
//! initLimit=30 and tickTime=2000: waiting out initLimit would take 60 s.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{poll_until, TestServer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use zab::wire::{self, Notification};
use zab::ServerState;
use zookeeper_client as zk;

/// A loopback port nothing listens on, below the ephemeral range so no
/// outgoing connection takes it before server 1 binds it.
fn free_port() -> u16 {
    bench::free_port().expect("free port")
}

async fn read_frame(s: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Vec<u8>> {
    let n = s.read_i32().await?;
    assert!((0..=1 << 20).contains(&n), "bad election frame length {n}");
    let mut b = vec![0u8; n as usize];
    s.read_exact(&mut b).await?;
    Ok(b)
}

/// A fake election peer with an id above server 1's.
struct Fake {
    /// The election rounds of every notification server 1 sent it.
    rounds: Arc<Mutex<Vec<i64>>>,
    /// Sends a notification to server 1 on the current connection.
    inject: Arc<Mutex<Option<mpsc::UnboundedSender<Notification>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Fake {
    /// It takes server 1's handshake, hangs up and calls back (the larger id
    /// keeps the connection), and answers server 1's looking notifications
    /// of the first round it hears, in `state`, voting for `leader`; later
    /// rounds get no answer (no quorum: server 1 turns read-only). Every
    /// notification of that round is answered, not just the first: an
    /// answer lost with its connection must not leave server 1 without one.
    fn start(
        my_id: u64,
        state: ServerState,
        leader: i64,
        listener: TcpListener,
        server1_election: SocketAddr,
    ) -> Fake {
        let rounds = Arc::new(Mutex::new(Vec::new()));
        let inject = Arc::new(Mutex::new(None));
        let (r, i) = (rounds.clone(), inject.clone());
        let task = tokio::spawn(async move {
            let my_addr = listener.local_addr().expect("addr").to_string();
            let mut first_round = None;
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
                let (mut rd, mut wr) = s.into_split();
                let (tx, mut rx) = mpsc::unbounded_channel::<Notification>();
                *i.lock().unwrap() = Some(tx.clone());
                tokio::spawn(async move {
                    while let Some(n) = rx.recv().await {
                        let body = n.encode();
                        let mut f = (body.len() as i32).to_be_bytes().to_vec();
                        f.extend_from_slice(&body);
                        if wr.write_all(&f).await.is_err() {
                            return;
                        }
                    }
                });
                while let Ok(body) = read_frame(&mut rd).await {
                    let n = Notification::decode(&body).expect("server 1's notification decodes");
                    r.lock().unwrap().push(n.election_epoch);
                    tracing::info!(
                        "fake {my_id} heard {:?}, leader {}, round {}",
                        n.state,
                        n.leader,
                        n.election_epoch
                    );
                    if n.state != ServerState::Looking
                        || *first_round.get_or_insert(n.election_epoch) != n.election_epoch
                    {
                        continue;
                    }
                    let _ = tx.send(Notification {
                        state,
                        leader,
                        zxid: n.zxid,
                        election_epoch: n.election_epoch,
                        peer_epoch: n.peer_epoch,
                        version: 2,
                        config: n.config.clone(),
                    });
                }
            }
        });
        Fake {
            rounds,
            inject,
            task,
        }
    }

    fn rounds(&self) -> Vec<i64> {
        self.rounds.lock().unwrap().clone()
    }
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Ports for server 1 and two fakes: server 1's quorum and election ports
/// (free now, bound by it later), the fakes' election listeners, and their
/// quorum ports, where nothing listens.
struct Ports {
    q1: u16,
    e1: u16,
    e2: TcpListener,
    e3: TcpListener,
    q2: u16,
    q3: u16,
}

impl Ports {
    async fn new() -> Ports {
        Ports {
            q1: free_port(),
            e1: free_port(),
            e2: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            e3: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            q2: free_port(),
            q3: free_port(),
        }
    }

    /// zoo.cfg lines of the three-server ensemble, and server 1's election
    /// address.
    fn config(&self) -> (Vec<String>, SocketAddr) {
        let p2 = self.e2.local_addr().unwrap().port();
        let p3 = self.e3.local_addr().unwrap().port();
        let lines = vec![
            "initLimit=30".to_owned(),
            "syncLimit=5".to_owned(),
            "4lw.commands.whitelist=*".to_owned(),
            format!("server.1=127.0.0.1:{}:{}", self.q1, self.e1),
            format!("server.2=127.0.0.1:{}:{p2}", self.q2),
            format!("server.3=127.0.0.1:{}:{p3}", self.q3),
        ];
        (lines, format!("127.0.0.1:{}", self.e1).parse().unwrap())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_elected_leader_sends_the_learner_back_to_the_election() {
    common::log_to_test_output();
    let ports = Ports::new().await;
    let (lines, election1) = ports.config();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let Ports { e2, e3, .. } = ports;
    let f2 = Fake::start(2, ServerState::Following, 3, e2, election1);
    let f3 = Fake::start(3, ServerState::Leading, 3, e3, election1);
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
    let seen = [f2.rounds(), f3.rounds()].concat();
    let first = *seen.iter().min().expect("server 1 sent notifications");
    assert!(
        seen.iter().any(|&r| r > first),
        "no second election round after following the dead leader: rounds {seen:?}"
    );
    drop(client);
    server.stop().await;
}

/// zookeeper.leader.maxTimeToWaitForEpoch: server 1 is elected by 2 and 3,
/// which never connect to it; when 2 looks again after the limit, server 1
/// stops waiting for a quorum to choose the epoch (initLimit: 60 s here)
/// and looks again too, counting quit_leading_due_to_disloyal_voter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_quits_when_a_voter_changes_its_mind() {
    common::log_to_test_output();
    let ports = Ports::new().await;
    let (lines, election1) = ports.config();
    let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
    let q1 = ports.q1;
    let Ports { e2, e3, .. } = ports;
    let f2 = Fake::start(2, ServerState::Looking, 1, e2, election1);
    let f3 = Fake::start(3, ServerState::Looking, 1, e3, election1);
    let server = TestServer::member(
        Some(1),
        &lines,
        &[
            ("zookeeper.leader.maxTimeToWaitForEpoch", "500"),
            ("readonlymode.enabled", "true"),
        ],
    )
    .await;
    // Leading: its quorum port accepts. (Connecting, not binding it
    // ourselves: a bind could take the port just as server 1 binds it.)
    poll_until("server 1 leading", Duration::from_secs(20), || async move {
        std::net::TcpStream::connect(("127.0.0.1", q1))
            .is_ok()
            .then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    // Both look again: whichever votes made server 1 leader (those it had
    // when a quorum first agreed; a vote arriving during the final wait is
    // not counted, as in Apache), one of them is a voter's.
    for f in [&f2, &f3] {
        let round = f
            .rounds()
            .into_iter()
            .max()
            .expect("server 1 notified the fake");
        let inject = f
            .inject
            .lock()
            .unwrap()
            .clone()
            .expect("the fake is connected");
        inject
            .send(Notification {
                state: ServerState::Looking,
                leader: 2,
                zxid: 0,
                election_epoch: round + 1,
                peer_epoch: 0,
                version: 2,
                config: None,
            })
            .unwrap();
    }
    // Looking again: its quorum port is closed.
    poll_until(
        "server 1 looking again",
        Duration::from_secs(20),
        || async move {
            std::net::TcpListener::bind(("127.0.0.1", q1))
                .is_ok()
                .then_some(())
        },
    )
    .await;
    // Read-only, without a quorum: mntr answers, and counted the quit.
    let m = poll_until(
        "mntr from the read-only server",
        Duration::from_secs(20),
        || {
            let s = &server;
            async move {
                let m = common::mntr(s).await;
                m.contains_key("quit_leading_due_to_disloyal_voter")
                    .then_some(m)
            }
        },
    )
    .await;
    assert_eq!(m["quit_leading_due_to_disloyal_voter"], "1");
    drop((f2, f3));
    server.stop().await;
}
