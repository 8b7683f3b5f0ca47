//! Master election with failover (seed: "master election").
//!
//! Two masters, each a task with its own ZooKeeper session, join the
//! election under `/master` (a [`recipes::LeaderLatch`]: ephemeral-sequential
//! nodes, lowest number leads). The leader's session is then closed on the
//! server ("killed"), the backup takes over, and the old master rejoins with
//! a new session and stays backup.
//!
//! ```text
//! cargo run -p recipes --example master_election -- --server 127.0.0.1:2181
//! ```
//!
//! Exits 0 if leadership moved exactly so.

use std::time::{Duration, Instant};

use recipes::{LeaderLatch, LeaderState};
use tokio::sync::mpsc;
use zookeeper_client::SessionInfo;

mod common;
use common::{connect, kill_session, namespace, server_arg};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug)]
enum Event {
    Joined(&'static str, SessionInfo),
    Leader(&'static str, i64),
    Lost(&'static str, #[allow(dead_code)] LeaderState),
}

/// One master process: joins, reports when it leads and when it loses.
fn spawn_master(
    connect_to: String,
    name: &'static str,
    tx: mpsc::UnboundedSender<Event>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let client = connect(&connect_to).await.expect("master connects");
        let latch = LeaderLatch::start(client.clone(), "/master", name.as_bytes())
            .await
            .expect("join election");
        println!("[{name}] joined election as {}", latch.path());
        let _ = tx.send(Event::Joined(name, client.session().clone()));
        let mut rx = latch.subscribe();
        loop {
            let state = *rx.borrow_and_update();
            match state {
                LeaderState::Follower => {}
                LeaderState::Leader { token } => {
                    println!("[{name}] I am the master now (fencing token {token})");
                    let _ = tx.send(Event::Leader(name, token));
                }
                other => {
                    println!("[{name}] candidacy ended: {other:?}");
                    let _ = tx.send(Event::Lost(name, other));
                    return;
                }
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Event>) -> Result<Event, String> {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(e)) => Ok(e),
        Ok(None) => Err("all masters stopped".into()),
        Err(_) => Err("timed out waiting for an election event".into()),
    }
}

async fn run(server: &str) -> Result<(), String> {
    let ns = namespace(server, "master_election")
        .await
        .map_err(|e| format!("namespace: {e}"))?;
    let (tx, mut rx) = mpsc::unbounded_channel();

    // Master A joins first, so it has the lowest number.
    let a = spawn_master(ns.clone(), "A", tx.clone());
    let Event::Joined("A", a_session) = next(&mut rx).await? else {
        return Err("expected A to join first".into());
    };
    let b = spawn_master(ns.clone(), "B", tx.clone());
    let mut a_led = None;
    let mut b_joined = false;
    while a_led.is_none() || !b_joined {
        match next(&mut rx).await? {
            Event::Leader("A", t) => a_led = Some(t),
            Event::Joined("B", _) => b_joined = true,
            e => return Err(format!("unexpected before failover: {e:?}")),
        }
    }
    // Give B a moment to settle as a follower, then check nobody else leads.
    tokio::time::sleep(Duration::from_millis(300)).await;
    if let Ok(e) = rx.try_recv() {
        return Err(format!("unexpected event while A leads: {e:?}"));
    }
    println!("[main] A leads, B is backup; killing A's session");

    let killed_at = Instant::now();
    kill_session(server, a_session)
        .await
        .map_err(|e| format!("kill A: {e}"))?;
    let mut a_lost = false;
    let mut b_token = None;
    while !a_lost || b_token.is_none() {
        match next(&mut rx).await? {
            Event::Lost("A", _) => a_lost = true,
            Event::Leader("B", t) => b_token = Some(t),
            e => return Err(format!("unexpected during failover: {e:?}")),
        }
    }
    let (a_token, b_token) = (a_led.unwrap_or(0), b_token.unwrap_or(0));
    println!(
        "[main] failover took {:?}; tokens A={a_token} < B={b_token}",
        killed_at.elapsed()
    );
    if b_token <= a_token {
        return Err("fencing token did not increase across leaders".into());
    }
    let _ = a.await;

    // The old master restarts with a new session: it must stay backup.
    println!("[main] A restarts with a new session");
    let a2 = spawn_master(ns.clone(), "A", tx.clone());
    match next(&mut rx).await? {
        Event::Joined("A", _) => {}
        e => return Err(format!("unexpected on rejoin: {e:?}")),
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    if let Ok(e) = rx.try_recv() {
        return Err(format!("leadership moved after A rejoined: {e:?}"));
    }
    println!("[main] A rejoined and stays backup; B is still the master");
    a2.abort();
    b.abort();
    Ok(())
}

#[tokio::main]
async fn main() {
    let server = server_arg();
    match run(&server).await {
        Ok(()) => {
            println!("master_election: OK (A led, A killed, B took over, A rejoined as backup)")
        }
        Err(e) => {
            eprintln!("master_election: FAILED: {e}");
            std::process::exit(1);
        }
    }
}
