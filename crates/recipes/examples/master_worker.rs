//! Master-worker (seed: a master assigns `/tasks` to `/workers`).
//!
//! Three workers, each a task with its own ZooKeeper session, register under
//! `/workers` ([`recipes::Membership`], data = worker name). A client submits
//! nine tasks as persistent nodes under `/tasks`. The master watches the
//! worker group ([`recipes::GroupView`]) and `/status`, and assigns every
//! unassigned, unfinished task round-robin by creating
//! `/assign/<worker>/<task>`. A worker runs its assignments one at a time,
//! records `/status/<task>` and deletes the assignment. Worker `w1` dies
//! (its session is closed) after its first task, holding more assignments;
//! the master notices it left `/workers` and reassigns them to the living.
//!
//! ```text
//! cargo run -p recipes --example master_worker -- --server 127.0.0.1:2181
//! ```
//!
//! Exits 0 when every task completed exactly once and w1's leftovers were
//! reassigned.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use recipes::{GroupView, Membership};
use tokio::sync::oneshot;
use zookeeper_client::{Client, Error as ZkError};

mod common;
use common::{connect, kill_session, namespace, persistent, server_arg};

const TASKS: usize = 9;
const WORKERS: [&str; 3] = ["w1", "w2", "w3"];
/// The worker that dies, and after how many completed tasks.
const DOOMED: (&str, usize) = ("w1", 1);

/// Children of `path`, or none if it does not exist.
async fn children(client: &Client, path: &str) -> Result<Vec<String>, String> {
    match client.list_children(path).await {
        Ok(mut c) => {
            c.sort();
            Ok(c)
        }
        Err(ZkError::NoNode) => Ok(Vec::new()),
        Err(e) => Err(format!("list {path}: {e}")),
    }
}

/// One worker: registers, then runs its assignments one at a time.
async fn worker(
    server: String,
    ns: String,
    name: &'static str,
    registered: oneshot::Sender<()>,
) -> Result<(), String> {
    let client = connect(&ns).await.map_err(|e| format!("{name}: {e}"))?;
    let me = Membership::join(client.clone(), "/workers", name.as_bytes())
        .await
        .map_err(|e| format!("{name}: register: {e}"))?;
    let mine = format!("/assign/{name}");
    client
        .mkdir(&mine, &persistent())
        .await
        .map_err(|e| format!("{name}: mkdir: {e}"))?;
    println!("[{name}] registered as /workers/{}", me.name());
    let _ = registered.send(());
    let mut completed = 0;
    loop {
        let (mut todo, watcher) = match client.list_and_watch_children(&mine).await {
            Ok(r) => r,
            Err(e) => return Err(format!("{name}: watch {mine}: {e}")),
        };
        todo.sort();
        let Some(task) = todo.first() else {
            if watcher.changed().await.session_state.is_terminated() {
                return Ok(());
            }
            continue;
        };
        if DOOMED == (name, completed) {
            println!("[{name}] dies holding {todo:?} (session closed)");
            let _ = kill_session(&server, client.session().clone()).await;
            std::mem::forget(me); // its node went with the session
            return Ok(());
        }
        let (payload, _) = client
            .get_data(&format!("{mine}/{task}"))
            .await
            .map_err(|e| format!("{name}: read {task}: {e}"))?;
        println!(
            "[{name}] working on {task} ({})",
            String::from_utf8_lossy(&payload)
        );
        tokio::time::sleep(Duration::from_millis(150)).await;
        match client
            .create(&format!("/status/{task}"), name.as_bytes(), &persistent())
            .await
        {
            Ok(_) => {}
            Err(ZkError::NodeExists) => return Err(format!("{task} completed twice")),
            Err(e) => return Err(format!("{name}: status {task}: {e}")),
        }
        client
            .delete(&format!("{mine}/{task}"), None)
            .await
            .map_err(|e| format!("{name}: unassign {task}: {e}"))?;
        completed += 1;
        println!("[{name}] finished {task}");
    }
}

/// The master: assigns tasks to live workers, reassigns the tasks of workers
/// that left, until every task has a status. Returns how many it reassigned.
async fn master(ns: String) -> Result<usize, String> {
    let client = connect(&ns).await.map_err(|e| format!("master: {e}"))?;
    client
        .mkdir("/status", &persistent())
        .await
        .map_err(|e| format!("master: mkdir /status: {e}"))?;
    let view = GroupView::watch(client.clone(), "/workers")
        .await
        .map_err(|e| format!("master: watch /workers: {e}"))?;
    let mut workers_rx = view.subscribe();
    let (mut reassigned, mut next) = (0, 0usize);
    // Workers seen alive: only those can be declared dead (the view may lag
    // behind a worker that has just joined and created its /assign dir).
    let mut seen: BTreeSet<String> = BTreeSet::new();
    loop {
        let live: BTreeSet<String> = view
            .members()
            .iter()
            .map(|m| String::from_utf8_lossy(&m.data).into_owned())
            .collect();
        seen.extend(live.iter().cloned());
        // Read assignments before statuses: a worker writes the status
        // before it deletes the assignment, so a task missing from both
        // snapshots cannot be one that is just completing.
        let mut holdings = BTreeMap::new();
        for w in children(&client, "/assign").await? {
            let held = children(&client, &format!("/assign/{w}")).await?;
            holdings.insert(w, held);
        }
        let (done, status_watch) = client
            .list_and_watch_children("/status")
            .await
            .map_err(|e| format!("master: watch /status: {e}"))?;
        let done: BTreeSet<String> = done.into_iter().collect();
        let (tasks, tasks_watch) = client
            .list_and_watch_children("/tasks")
            .await
            .map_err(|e| format!("master: watch /tasks: {e}"))?;
        if tasks.len() == TASKS && tasks.iter().all(|t| done.contains(t)) {
            return Ok(reassigned);
        }
        let mut assigned = BTreeSet::new();
        for (w, held) in holdings {
            if live.contains(&w) || !seen.contains(&w) {
                assigned.extend(held);
                continue;
            }
            let lost: Vec<&String> = held.iter().filter(|t| !done.contains(*t)).collect();
            println!("[master] worker {w} left /workers; reassigning {lost:?}");
            reassigned += lost.len();
            for t in &held {
                let _ = client.delete(&format!("/assign/{w}/{t}"), None).await;
            }
            let _ = client.delete(&format!("/assign/{w}"), None).await;
        }
        let live: Vec<&String> = live.iter().collect();
        let mut todo: Vec<&String> = tasks
            .iter()
            .filter(|t| !done.contains(*t) && !assigned.contains(*t))
            .collect();
        todo.sort();
        for t in todo {
            if live.is_empty() {
                break;
            }
            let w = live[next % live.len()];
            next += 1;
            let (payload, _) = client
                .get_data(&format!("/tasks/{t}"))
                .await
                .map_err(|e| format!("master: read {t}: {e}"))?;
            client
                .mkdir(&format!("/assign/{w}"), &persistent())
                .await
                .map_err(|e| format!("master: mkdir: {e}"))?;
            client
                .create(&format!("/assign/{w}/{t}"), &payload, &persistent())
                .await
                .map_err(|e| format!("master: assign {t}: {e}"))?;
            println!("[master] assigned {t} to {w}");
        }
        tokio::select! {
            _ = workers_rx.changed() => {}
            _ = status_watch.changed() => {}
            _ = tasks_watch.changed() => {}
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
        }
    }
}

async fn run(server: &str) -> Result<(), String> {
    let ns = namespace(server, "master_worker")
        .await
        .map_err(|e| format!("namespace: {e}"))?;
    let mut workers = Vec::new();
    for name in WORKERS {
        let (tx, rx) = oneshot::channel();
        let w = tokio::spawn(worker(server.to_string(), ns.clone(), name, tx));
        if rx.await.is_err() {
            return Err(format!("{name} failed to start: {:?}", w.await));
        }
        workers.push(w);
    }
    let m = tokio::spawn(master(ns.clone()));

    // A client submits the tasks.
    let submitter = connect(&ns).await.map_err(|e| format!("connect: {e}"))?;
    submitter
        .mkdir("/tasks", &persistent())
        .await
        .map_err(|e| format!("mkdir /tasks: {e}"))?;
    for i in 0..TASKS {
        let data = format!("job #{i}");
        submitter
            .create(
                &format!("/tasks/task-{i:02}"),
                data.as_bytes(),
                &persistent(),
            )
            .await
            .map_err(|e| format!("submit: {e}"))?;
    }
    println!("[client] submitted {TASKS} tasks under /tasks");

    let reassigned = m.await.map_err(|e| format!("master: {e}"))??;
    for w in &workers {
        if w.is_finished() {
            continue;
        }
        w.abort();
    }
    for w in workers {
        if let Ok(Err(e)) = w.await {
            return Err(e);
        }
    }
    let mut by_worker: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for t in children(&submitter, "/status").await? {
        let (who, _) = submitter
            .get_data(&format!("/status/{t}"))
            .await
            .map_err(|e| format!("read status: {e}"))?;
        by_worker
            .entry(String::from_utf8_lossy(&who).into_owned())
            .or_default()
            .push(t);
    }
    println!("[client] completed: {by_worker:?}; master reassigned {reassigned}");
    let total: usize = by_worker.values().map(Vec::len).sum();
    if total != TASKS {
        return Err(format!("{total} of {TASKS} tasks completed"));
    }
    if by_worker.get(DOOMED.0).map_or(0, Vec::len) != DOOMED.1 {
        return Err(format!(
            "{} should have completed {} task(s)",
            DOOMED.0, DOOMED.1
        ));
    }
    if reassigned == 0 {
        return Err("no task was reassigned".into());
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    let server = server_arg();
    match tokio::time::timeout(Duration::from_secs(45), run(&server)).await {
        Ok(Ok(())) => println!(
            "master_worker: OK (all {TASKS} tasks done once; {}'s tasks reassigned after it died)",
            DOOMED.0
        ),
        Ok(Err(e)) => {
            eprintln!("master_worker: FAILED: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            eprintln!("master_worker: FAILED: timed out");
            std::process::exit(1);
        }
    }
}
