//! Durability through a real client: state and sessions survive a restart
//! on the same dataDir; a damaged log stops startup with the file and offset
//! unless the operator asks to truncate there.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use server::{Config, Server};
use zookeeper_client as zk;

fn config(dir: &Path, defines: &[(&str, &str)]) -> Config {
    let text = format!(
        "tickTime=2000\nclientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\ndataDir={}\nsnapCount=50\n",
        dir.join("data").display()
    );
    let path = dir.join("zoo.cfg");
    std::fs::write(&path, text).expect("write zoo.cfg");
    let defines: Vec<(String, String)> = defines
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Config::load(Some(&path), &defines).expect("config")
}

async fn start(dir: &Path, defines: &[(&str, &str)]) -> Server {
    Server::start(config(dir, defines))
        .await
        .expect("server starts")
}

async fn client(s: &Server) -> zk::Client {
    within("connect", connector().connect(&s.addr.to_string()))
        .await
        .expect("client connects")
}

fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.join("data/version-2"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("log."))
        })
        .collect();
    v.sort();
    v
}

#[tokio::test]
async fn data_and_sessions_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]).await;
    let c = client(&s).await;
    // More than snapCount writes: a snapshot and a rolled log on disk.
    for i in 0..120 {
        c.create(&format!("/n{i}"), format!("v{i}").as_bytes(), &persistent())
            .await
            .unwrap();
    }
    c.set_data("/n7", b"changed", None).await.unwrap();
    c.delete("/n8", None).await.unwrap();
    c.create("/eph", b"e", &ephemeral()).await.unwrap();
    let (_, stat_before) = c.get_data("/n7").await.unwrap();
    let session = c.session().clone();
    s.stop().await;
    drop(c);

    let s = start(dir.path(), &[]).await;
    // The same session comes back, with its ephemeral node.
    let c = within(
        "resume session",
        connector()
            .with_session(session)
            .connect(&s.addr.to_string()),
    )
    .await
    .expect("session resumes after restart");
    assert_eq!(c.get_data("/eph").await.unwrap().0, b"e");
    let (data, stat) = c.get_data("/n7").await.unwrap();
    assert_eq!(data, b"changed");
    assert_eq!(stat, stat_before, "Stat survives exactly");
    assert!(c.check_stat("/n8").await.unwrap().is_none());
    assert_eq!(c.get_data("/n119").await.unwrap().0, b"v119");
    // zxids continue after the recovered ones.
    let (created, _) = c.create("/after", b"", &persistent()).await.unwrap();
    assert!(created.czxid > stat.mzxid);
    s.stop().await;
}

#[tokio::test]
async fn a_damaged_log_stops_startup_unless_truncation_is_asked() {
    let dir = tempfile::tempdir().unwrap();
    let s = start(dir.path(), &[]).await;
    let c = client(&s).await;
    for i in 0..20 {
        c.create(&format!("/d{i}"), b"0123456789", &persistent())
            .await
            .unwrap();
    }
    s.stop().await;
    drop(c);

    // Flip a byte inside an early entry of the newest log (not its tail).
    let log = log_files(dir.path()).pop().expect("a log file");
    let mut bytes = std::fs::read(&log).unwrap();
    let at = 16 + 40;
    bytes[at] ^= 0xff;
    std::fs::write(&log, &bytes).unwrap();

    let err = match Server::start(config(dir.path(), &[])).await {
        Ok(_) => panic!("started on a damaged log"),
        Err(e) => format!("{e:#}"),
    };
    let name = log.file_name().unwrap().to_str().unwrap();
    assert!(err.contains(name), "names the file: {err}");
    assert!(err.contains("offset"), "names the offset: {err}");
    assert!(
        err.contains("truncateCorruptLog"),
        "says how to proceed: {err}"
    );

    // The operator gives up the damaged part: the server starts.
    let s = start(dir.path(), &[("rookeeper.truncateCorruptLog", "true")]).await;
    let c = client(&s).await;
    // The log held 21+ txns after the startup snapshot (zxid 0); damage at
    // its first entries leaves the znodes written before that snapshot, and
    // the server takes writes again.
    c.create("/again", b"", &persistent()).await.unwrap();
    s.stop().await;
}
