//! Distributed lock (seed: ten processes printing "gain lock" / "finished").
//!
//! Ten tasks, each with its own ZooKeeper session, contend for the lock under
//! `/lock` (a [`recipes::Lock`]: ephemeral-sequential nodes, each waiter
//! watching only its predecessor). Each holder prints "gain lock", works a
//! little, prints "finished" and releases. An atomic counts holders inside
//! the critical section: any overlap fails the run, and so does a fencing
//! token that does not increase from one grant to the next.
//!
//! ```text
//! cargo run -p recipes --example distributed_lock -- --server 127.0.0.1:2181
//! ```

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use recipes::Lock;

mod common;
use common::{connect, namespace, server_arg};

const PROCESSES: usize = 10;

async fn run(server: &str) -> Result<(), String> {
    let ns = namespace(server, "distributed_lock")
        .await
        .map_err(|e| format!("namespace: {e}"))?;
    let inside = Arc::new(AtomicUsize::new(0));
    let overlaps = Arc::new(AtomicUsize::new(0));
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..PROCESSES {
        let (ns, inside, overlaps, tokens) =
            (ns.clone(), inside.clone(), overlaps.clone(), tokens.clone());
        tasks.push(tokio::spawn(async move {
            let client = connect(&ns).await.map_err(|e| format!("connect: {e}"))?;
            let lock = Lock::new(client, "/lock");
            let guard = lock
                .acquire(Duration::from_secs(30))
                .await
                .map_err(|e| format!("process {i}: acquire: {e}"))?;
            if inside.fetch_add(1, Ordering::SeqCst) != 0 {
                overlaps.fetch_add(1, Ordering::SeqCst);
                eprintln!("process {i}: OVERLAP: someone else holds the lock too");
            }
            println!(
                "process {i}: gain lock (fencing token {})",
                guard.fencing_token()
            );
            tokens.lock().unwrap().push(guard.fencing_token());
            tokio::time::sleep(Duration::from_millis(100)).await;
            println!("process {i}: finished");
            inside.fetch_sub(1, Ordering::SeqCst);
            guard
                .release()
                .await
                .map_err(|e| format!("process {i}: release: {e}"))
        }));
    }
    for t in tasks {
        t.await.map_err(|e| format!("task: {e}"))??;
    }
    let overlaps = overlaps.load(Ordering::SeqCst);
    if overlaps != 0 {
        return Err(format!("{overlaps} overlapping holders"));
    }
    let tokens = tokens.lock().unwrap().clone();
    if tokens.len() != PROCESSES {
        return Err(format!("{} grants, expected {PROCESSES}", tokens.len()));
    }
    if !tokens.windows(2).all(|w| w[0] < w[1]) {
        return Err(format!("fencing tokens not increasing: {tokens:?}"));
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let server = server_arg();
    match tokio::time::timeout(Duration::from_secs(45), run(&server)).await {
        Ok(Ok(())) => println!(
            "distributed_lock: OK ({PROCESSES} processes held the lock one at a time, tokens increasing)"
        ),
        Ok(Err(e)) => {
            eprintln!("distributed_lock: FAILED: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("distributed_lock: FAILED: timed out");
            std::process::exit(1);
        }
    }
}
