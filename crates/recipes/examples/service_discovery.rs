//! Service discovery (seed: AppServer / AppClient under `/sgroup`).
//!
//! AppServers, each a task with its own ZooKeeper session, register under
//! `/sgroup` with an ephemeral-sequential node whose data is their address
//! ([`recipes::Membership`]). An AppClient keeps a live, watch-driven list of
//! servers ([`recipes::GroupView`]) and prints it on every change. Three
//! servers come up one after another, then two go away by having their
//! sessions closed; the server removes their nodes and the client's list
//! follows.
//!
//! ```text
//! cargo run -p recipes --example service_discovery -- --server 127.0.0.1:2181
//! ```
//!
//! Exits 0 when the client saw every change, in order.

use std::time::Duration;

use recipes::{GroupView, Member, Membership};
use tokio::sync::{oneshot, watch};

mod common;
use common::{connect, kill_session, namespace, server_arg};

const WAIT: Duration = Duration::from_secs(10);

/// One AppServer: registers its address, serves until told to go down, then
/// its session is closed (as when the process dies).
async fn spawn_app_server(
    server: String,
    ns: String,
    address: String,
) -> Result<oneshot::Sender<()>, String> {
    let (registered_tx, registered_rx) = oneshot::channel();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    tokio::spawn(async move {
        let client = connect(&ns).await.expect("AppServer connects");
        let me = Membership::join(client.clone(), "/sgroup", address.as_bytes())
            .await
            .expect("AppServer registers");
        println!("[AppServer {address}] registered as /sgroup/{}", me.name());
        let _ = registered_tx.send(());
        let _ = stop_rx.await;
        println!("[AppServer {address}] going down (session closed)");
        let _ = kill_session(&server, client.session().clone()).await;
        // The node is already gone with the session; nothing to delete.
        std::mem::forget(me);
    });
    tokio::time::timeout(WAIT, registered_rx)
        .await
        .map_err(|_| "AppServer did not register in time".to_string())?
        .map_err(|_| "AppServer failed to register".to_string())?;
    Ok(stop_tx)
}

fn addresses(members: &[Member]) -> Vec<String> {
    members
        .iter()
        .map(|m| String::from_utf8_lossy(&m.data).into_owned())
        .collect()
}

/// Waits until the AppClient's list equals `want`, printing each list seen
/// on the way (the examples change one thing at a time, so every change is
/// seen).
async fn expect_list(
    rx: &mut watch::Receiver<Vec<Member>>,
    last: &mut Option<Vec<String>>,
    want: &[&str],
) -> Result<(), String> {
    let wait = async {
        loop {
            let now = addresses(&rx.borrow_and_update());
            if last.as_ref() != Some(&now) {
                println!("[AppClient] server list: {now:?}");
                *last = Some(now.clone());
            }
            if now == want {
                return Ok(());
            }
            if rx.changed().await.is_err() {
                return Err("AppClient view stopped".to_string());
            }
        }
    };
    tokio::time::timeout(WAIT, wait).await.map_err(|_| {
        format!(
            "AppClient never saw {want:?}; has {:?}",
            addresses(&rx.borrow())
        )
    })?
}

async fn run(server: &str) -> Result<(), String> {
    let ns = namespace(server, "service_discovery")
        .await
        .map_err(|e| format!("namespace: {e}"))?;

    // The AppClient: a live view of /sgroup; it prints every list it sees.
    let client = connect(&ns).await.map_err(|e| format!("connect: {e}"))?;
    let view = GroupView::watch(client, "/sgroup")
        .await
        .map_err(|e| format!("watch /sgroup: {e}"))?;
    let mut rx = view.subscribe();
    let mut last = None;
    expect_list(&mut rx, &mut last, &[]).await?;

    let addrs = ["127.0.0.1:8001", "127.0.0.1:8002", "127.0.0.1:8003"];
    let mut stops = Vec::new();
    let mut expected: Vec<Vec<&str>> = vec![vec![]];
    for (i, a) in addrs.iter().enumerate() {
        stops.push(Some(
            spawn_app_server(server.to_string(), ns.clone(), a.to_string()).await?,
        ));
        expect_list(&mut rx, &mut last, &addrs[..=i]).await?;
        expected.push(addrs[..=i].to_vec());
    }
    // Servers 2 and then 1 go down.
    for (i, left) in [(1, vec![addrs[0], addrs[2]]), (0, vec![addrs[2]])] {
        if let Some(stop) = stops[i].take() {
            let _ = stop.send(());
        }
        expect_list(&mut rx, &mut last, &left).await?;
        expected.push(left);
    }
    println!("[AppClient] saw all {} lists in order", expected.len());
    drop(stops);
    Ok(())
}

#[tokio::main]
async fn main() {
    let server = server_arg();
    match tokio::time::timeout(Duration::from_secs(45), run(&server)).await {
        Ok(Ok(())) => println!("service_discovery: OK (AppClient saw 3 servers join and 2 leave)"),
        Ok(Err(e)) => {
            eprintln!("service_discovery: FAILED: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("service_discovery: FAILED: timed out");
            std::process::exit(1);
        }
    }
}
