//! A full disk (a 2 MiB tmpfs under the dataDir): the server stops taking
//! writes (NotReadOnly, `isro` says ro), keeps serving reads, loses no
//! acknowledged write, and takes writes again once space returns. Needs
//! root to mount the tmpfs; elsewhere the test says so and does nothing.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use server::{Config, Server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use zookeeper_client as zk;

/// Unmounts the tmpfs however the test ends.
struct Mount(PathBuf);

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn mount_tmpfs(at: &Path, size: &str) -> Option<Mount> {
    std::fs::create_dir_all(at).ok()?;
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .status()
        .ok()?
        .success();
    ok.then(|| Mount(at.to_owned()))
}

fn config(dir: &Path, data: &Path) -> Config {
    let text = format!(
        "tickTime=2000\nclientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\ndataDir={}\n\
         preAllocSize=8\nsnapCount=1000000\n4lw.commands.whitelist=*\n",
        data.display()
    );
    let path = dir.join("zoo.cfg");
    std::fs::write(&path, text).unwrap();
    Config::load(Some(&path), &[]).unwrap()
}

async fn four_letter(s: &Server, cmd: &str) -> String {
    let mut c = tokio::net::TcpStream::connect(s.addr).await.unwrap();
    c.write_all(cmd.as_bytes()).await.unwrap();
    let mut out = String::new();
    c.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn full_disk_refuses_writes_serves_reads_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let Some(_mount) = mount_tmpfs(&data, "2m") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    // Room to give back later: enough for the logs written until then and
    // the snapshot the server writes when it restarts.
    std::fs::write(data.join("filler"), vec![1u8; 1200 * 1024]).unwrap();

    let s = Server::start(config(dir.path(), &data)).await.unwrap();
    let c = within("connect", connector().connect(&s.addr.to_string()))
        .await
        .unwrap();
    let blob = vec![7u8; 4 * 1024];
    let mut acked = Vec::new();
    let mut full = false;
    for i in 0..400 {
        let p = format!("/n{i:04}");
        match c.create(&p, &blob, &persistent()).await {
            Ok(_) => acked.push(p),
            Err(_) => {
                full = true;
                break;
            }
        }
    }
    assert!(full, "the disk never filled");
    assert!(!acked.is_empty());

    // Writes are refused as a read-only server refuses them; reads go on.
    poll_until("writes refused", Duration::from_secs(20), || async {
        match c.create("/refused", b"", &persistent()).await {
            Err(zk::Error::NotReadOnly) => Some(()),
            _ => None,
        }
    })
    .await;
    for p in &acked {
        let (d, _) = c.get_data(p).await.expect("acknowledged write readable");
        assert_eq!(d, blob);
    }
    assert_eq!(four_letter(&s, "isro").await, "ro");
    assert!(four_letter(&s, "srvr").await.contains("Mode: read-only"));

    // Space returns: writes are taken again.
    std::fs::remove_file(data.join("filler")).unwrap();
    poll_until("writes accepted again", Duration::from_secs(20), || async {
        c.create("/after", b"back", &persistent()).await.ok()
    })
    .await;
    assert_eq!(four_letter(&s, "isro").await, "rw");
    s.stop().await;
    drop(c);

    // Nothing acknowledged was lost.
    let s = Server::start(config(dir.path(), &data)).await.unwrap();
    let c = within("reconnect", connector().connect(&s.addr.to_string()))
        .await
        .unwrap();
    for p in &acked {
        assert!(c.check_stat(p).await.unwrap().is_some(), "{p} lost");
    }
    assert_eq!(c.get_data("/after").await.unwrap().0, b"back");
    s.stop().await;
}
