//! A real kazoo (Python) Lock and our Lock on one lock directory exclude
//! each other, in both directions. Needs the venv of tests/kazoo/setup.sh
//! (kazoo 2.11); without it the test says so and skips, unless
//! `KAZOO_REQUIRED` is set (as by run-against-apache.sh in CI).
//!
//! kazoo names its contenders `<uuid4 hex>__lock__<seq>` and by default
//! only counts names matching `__lock__<seq>`; ours are Curator's
//! `_c_<uuid>-lock-<seq>`. No name satisfies both Curator's and kazoo's
//! defaults, so we keep Curator's, count kazoo's contenders as ours, and a
//! kazoo client sharing the lock passes `extra_lock_patterns=["-lock-"]`.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use recipes::{Error, Lock};

/// The venv's python, if tests/kazoo/setup.sh made one.
fn kazoo_python() -> Option<PathBuf> {
    let venv = std::env::var_os("KAZOO_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/kazoo-venv")
        });
    let python = venv.join("bin/python");
    python.exists().then_some(python)
}

/// Connects kazoo to `hosts`, makes a Lock on /kz/lock that also counts
/// our contenders, then runs `body`.
fn script(hosts: &str, body: &str) -> String {
    format!(
        "import sys\n\
         from kazoo.client import KazooClient\n\
         zk = KazooClient(hosts='{hosts}', timeout=10)\n\
         zk.start(timeout=10)\n\
         lock = zk.Lock('/kz/lock', 'py', extra_lock_patterns=['-lock-'])\n\
         {body}\n\
         zk.stop()\n"
    )
}

#[tokio::test]
async fn kazoo_lock_and_ours_exclude_each_other() {
    let Some(python) = kazoo_python() else {
        let msg = "no kazoo venv (run tests/kazoo/setup.sh, or set KAZOO_VENV)";
        // CI (run-against-apache.sh, after setup.sh) must not skip.
        assert!(std::env::var_os("KAZOO_REQUIRED").is_none(), "{msg}");
        // Straight to stderr: libtest hides a passing test's eprintln!.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED kazoo_lock_and_ours_exclude_each_other: {msg}"
        );
        return;
    };
    let s = TestServer::start().await;
    let ours = Lock::new(s.client().await, "/kz/lock");

    // We hold: kazoo must not get it.
    let guard = ours.acquire(WAIT).await.expect("we acquire");
    let py = python.clone();
    // kazoo 2.11 raises LockTimeout when the timeout passes.
    let code = script(
        &s.connect,
        "from kazoo.exceptions import LockTimeout\n\
         try:\n    print(lock.acquire(timeout=1))\n\
         except LockTimeout:\n    print('timeout')",
    );
    let out = within(
        "kazoo tries while we hold",
        tokio::task::spawn_blocking(move || Command::new(py).arg("-c").arg(code).output()),
    )
    .await
    .unwrap()
    .expect("run python");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.trim() == "timeout",
        "kazoo acquired a lock we hold: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    guard.release().await.unwrap();

    // kazoo holds: we wait, and get it once kazoo releases.
    let code = script(
        &s.connect,
        "assert lock.acquire(timeout=10)\n\
         print('held', flush=True)\n\
         sys.stdin.readline()\n\
         lock.release()\n\
         print('released', flush=True)",
    );
    let mut child = Command::new(&python)
        .arg("-c")
        .arg(code)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run python");
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let (mut stdout, line) = within(
        "kazoo acquires",
        tokio::task::spawn_blocking(move || {
            let mut line = String::new();
            stdout.read_line(&mut line).map(|_| (stdout, line))
        }),
    )
    .await
    .unwrap()
    .expect("read python");
    assert_eq!(line.trim(), "held");
    assert!(matches!(
        ours.acquire(Duration::from_millis(500)).await,
        Err(Error::Timeout(_))
    ));
    let waiter = tokio::spawn({
        let ours = ours.clone();
        async move { ours.acquire(WAIT).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiter.is_finished(), "acquired while kazoo holds");
    stdin.write_all(b"go\n").unwrap();
    drop(stdin);
    let g = within("we acquire after kazoo releases", waiter)
        .await
        .unwrap()
        .expect("acquire");
    assert!(!g.is_lost());
    let status = within(
        "kazoo exits",
        tokio::task::spawn_blocking(move || {
            let mut rest = String::new();
            let _ = std::io::Read::read_to_string(stdout.get_mut(), &mut rest);
            child.wait().map(|st| (st, rest))
        }),
    )
    .await
    .unwrap()
    .expect("wait python");
    assert!(status.0.success(), "kazoo script failed: {}", status.1);
    assert_eq!(status.1.trim(), "released");
    s.stop().await;
}
