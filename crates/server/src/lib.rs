//! rookeeper's server shell: the only crate that touches sockets, clocks and
//! threads. `config` reads zoo.cfg, `conn` runs client connections, `core`
//! is the ordered request pipeline over the `tree` state machine, `fourlw`
//! answers four-letter words.

pub mod config;
pub mod conn;
pub mod core;
pub mod fourlw;
pub mod sasl;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::sync::mpsc;
use tracing::{info, warn};

pub use config::Config;

/// Requests queued towards the pipeline before readers wait (backpressure
/// onto the sockets).
const PIPELINE_QUEUE: usize = 8192;

/// A running server.
pub struct Server {
    pub addr: SocketAddr,
    accept: tokio::task::JoinHandle<()>,
    core: tokio::task::JoinHandle<()>,
}

impl Server {
    /// Binds the client port and starts serving in the current runtime.
    pub async fn start(cfg: Config) -> anyhow::Result<Server> {
        for k in &cfg.unknown {
            warn!("unknown configuration key {k:?}: accepted and ignored");
        }
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
            anyhow::anyhow!("cannot create dataDir {}: {e}", cfg.data_dir.display())
        })?;
        let listener = conn::bind(&cfg).await?;
        let addr = listener.local_addr()?;
        let cfg = Arc::new(cfg);
        let (tx, rx) = mpsc::channel(PIPELINE_QUEUE);
        let core = tokio::spawn(core::Core::new(cfg.clone()).run(rx));
        let accept = tokio::spawn(conn::accept_loop(listener, tx, cfg));
        Ok(Server { addr, accept, core })
    }

    /// Stops accepting and drops every connection and session.
    pub async fn stop(self) {
        self.accept.abort();
        let _ = self.accept.await;
        self.core.abort();
        let _ = self.core.await;
    }
}

/// Runs a server until `shutdown` completes.
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let server = Server::start(cfg).await?;
    info!("rookeeper serving clients on {}", server.addr);
    shutdown.await;
    info!("shutting down");
    server.stop().await;
    Ok(())
}
