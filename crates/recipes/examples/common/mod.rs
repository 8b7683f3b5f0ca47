//! Helpers the examples share. Each example uses a subset of them.
#![allow(dead_code)]

use std::time::Duration;

use zookeeper_client::{Acls, Client, CreateMode, SessionInfo};

/// `--server HOST:PORT` from the command line (default 127.0.0.1:2181).
pub fn server_arg() -> String {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--server")
        .and_then(|i| args.get(i + 1).cloned())
        .unwrap_or_else(|| "127.0.0.1:2181".to_string())
}

/// Creates a fresh namespace for this run and returns `server/namespace`, a
/// chrooted connect string: inside it the paths are exactly the seed's.
pub async fn namespace(server: &str, name: &str) -> Result<String, Box<dyn std::error::Error>> {
    let root = connect(server).await?;
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis();
    let ns = format!("/examples/{name}/run-{millis}-{}", std::process::id());
    root.mkdir(&ns, &CreateMode::Persistent.with_acls(Acls::anyone_all()))
        .await?;
    Ok(format!("{server}{ns}"))
}

pub async fn connect(connect: &str) -> Result<Client, zookeeper_client::Error> {
    Client::connector()
        .with_session_timeout(Duration::from_secs(6))
        .connect(connect)
        .await
}

/// Ends a session on the server as a crash would: a second connection takes
/// the session over and closes it, so its ephemeral nodes vanish at once.
pub async fn kill_session(
    server: &str,
    session: SessionInfo,
) -> Result<(), zookeeper_client::Error> {
    let hijacker = Client::connector()
        .with_session(session)
        .connect(server)
        .await?;
    drop(hijacker);
    Ok(())
}

pub fn persistent() -> zookeeper_client::CreateOptions<'static> {
    CreateMode::Persistent.with_acls(Acls::anyone_all())
}
