//! The offline tools on a dataDir our server wrote: `snapshot dump`,
//! `log dump`, and `purge` (after which the server still recovers it all).

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;
use server::{Config, Server};

const BIN: &str = env!("CARGO_BIN_EXE_rookeeper");

fn config(dir: &Path) -> Config {
    let text = format!(
        "tickTime=2000\nclientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\ndataDir={}\n",
        dir.join("data").display()
    );
    let path = dir.join("zoo.cfg");
    std::fs::write(&path, text).unwrap();
    Config::load(Some(&path), &[]).unwrap()
}

fn files(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let mut v: Vec<(i64, PathBuf)> = std::fs::read_dir(dir.join("data/version-2"))
        .unwrap()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let hex = name.strip_prefix(prefix)?.strip_prefix('.')?.to_owned();
            Some((i64::from_str_radix(&hex, 16).ok()?, e.path()))
        })
        .collect();
    v.sort();
    v.into_iter().map(|(_, p)| p).collect()
}

fn run(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .expect("run rookeeper");
    assert!(
        out.status.success(),
        "rookeeper {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn dump_and_purge_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    // Five runs: each writes a node and leaves a startup snapshot behind.
    for i in 0..5 {
        let s = Server::start(config(dir.path())).await.unwrap();
        let c = within("connect", connector().connect(&s.addr.to_string()))
            .await
            .unwrap();
        c.create(&format!("/run{i}"), b"hello", &persistent())
            .await
            .unwrap();
        drop(c);
        s.stop().await;
    }

    let snaps = files(dir.path(), "snapshot");
    assert!(snaps.len() >= 5, "{snaps:?}");
    let newest = snaps.last().unwrap().to_str().unwrap();
    let text = run(&["snapshot", "dump", newest]);
    assert!(text.starts_with("ZNode Details (count="), "{text}");
    for i in 0..4 {
        assert!(text.contains(&format!("\n/run{i}\n")), "{text}");
    }
    assert!(text.contains("Session Details (sid, timeout, ephemeralCount):"));
    assert!(text.contains("Last zxid: 0x"));
    let json = run(&["snapshot", "dump", "--json", newest]);
    assert!(json.starts_with("[1,0,{") && json.trim_end().ends_with(']'));
    assert!(json.contains("\"name\":\"run0\""));

    let logs = files(dir.path(), "log");
    let first = logs.first().unwrap().to_str().unwrap();
    let text = run(&["log", "dump", first]);
    assert!(text.contains(" createSession "), "{text}");
    // zookeeper-client creates with create2.
    assert!(
        text.contains(" create2 /run0,hello,[31,s{'world,'anyone}"),
        "{text}"
    );
    assert!(text.trim_end().ends_with("txns."), "{text}");

    let data = dir.path().join("data");
    let out = run(&["purge", data.to_str().unwrap(), "-n", "3"]);
    assert!(out.contains("Removing file:"), "{out}");
    assert_eq!(files(dir.path(), "snapshot").len(), 3);
    // Too few to keep is refused, as zkCleanup refuses it.
    let bad = Command::new(BIN)
        .args(["purge", data.to_str().unwrap(), "-n", "2"])
        .output()
        .unwrap();
    assert!(!bad.status.success());

    // Everything is still there after the purge.
    let s = Server::start(config(dir.path())).await.unwrap();
    let c = within("connect", connector().connect(&s.addr.to_string()))
        .await
        .unwrap();
    for i in 0..5 {
        assert_eq!(c.get_data(&format!("/run{i}")).await.unwrap().0, b"hello");
    }
    s.stop().await;
}
