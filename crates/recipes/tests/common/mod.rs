//! In-process rookeeper server with short sessions, and client helpers.

#![allow(dead_code)]

use std::future::Future;
use std::time::Duration;

use server::{Config, Server};
use tempfile::TempDir;
use zookeeper_client as zk;

/// Upper bound for anything that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `f`, failing the test if it takes longer than [`WAIT`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// A server with tickTime=100, so a 1 s session is allowed.
pub struct TestServer {
    server: Option<Server>,
    pub connect: String,
    _dir: TempDir,
}

impl TestServer {
    pub async fn start() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = format!(
            "tickTime=100\nclientPort=0\nclientPortAddress=127.0.0.1\ndataDir={}\n",
            dir.path().join("data").display()
        );
        let path = dir.path().join("zoo.cfg");
        std::fs::write(&path, text).expect("write zoo.cfg");
        let cfg = Config::load(Some(&path), &[]).expect("config");
        let server = Server::start(cfg).await.expect("server starts");
        let connect = server.addr.to_string();
        TestServer {
            server: Some(server),
            connect,
            _dir: dir,
        }
    }

    /// A client with a 1 s session.
    pub async fn client(&self) -> zk::Client {
        within(
            "connect",
            zk::Client::connector()
                .with_session_timeout(Duration::from_secs(1))
                .connect(&self.connect),
        )
        .await
        .expect("client connects")
    }

    /// Ends `victim`'s session on the server while `victim` itself stays
    /// alive: a second connection takes the session over and closes it.
    /// The server drops the session's ephemeral nodes, and `victim` learns
    /// of the end when it next talks to the server.
    pub async fn end_session_of(&self, victim: &zk::Client) {
        let hijacker = within(
            "hijack session",
            zk::Client::connector()
                .with_session(victim.session().clone())
                .connect(&self.connect),
        )
        .await
        .expect("hijacker connects");
        // Dropping the only handle closes the session (not detached).
        drop(hijacker);
    }

    pub async fn stop(mut self) {
        if let Some(s) = self.server.take() {
            s.stop().await;
        }
    }
}
