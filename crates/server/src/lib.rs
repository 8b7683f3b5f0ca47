//! rookeeper's server shell: the only crate that touches sockets, clocks and
//! threads. `config` reads zoo.cfg, `conn` runs client connections, `core`
//! is the ordered request pipeline over the `tree` state machine, `fourlw`
//! answers four-letter words.

pub mod admin;
pub mod admission;
pub mod config;
pub mod conn;
pub mod core;
pub mod ensemble;
pub mod fourlw;
pub mod metrics;
pub mod pause;
pub mod persist;
pub mod sasl;
pub mod tls;
pub mod trace;

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
    /// The client port; the secure one when only secureClientPort is set.
    pub addr: SocketAddr,
    /// The secure (TLS) client port, when secureClientPort is set.
    pub secure_addr: Option<SocketAddr>,
    /// The AdminServer and /metrics (boxed: a Server is often held by
    /// value in enums).
    http: Box<admin::Http>,
    accept: tokio::task::JoinHandle<()>,
    secure_accept: Option<tokio::task::JoinHandle<()>>,
    /// The txn-log thread: it drains what was queued, then ends, once the
    /// pipeline is gone.
    log_thread: Option<std::thread::JoinHandle<()>>,
    core: tokio::task::JoinHandle<anyhow::Result<()>>,
    /// The pause monitor's thread, stopped when the server is dropped.
    _pause: Option<pause::Monitor>,
}

impl Server {
    /// Binds the client port and starts serving in the current runtime.
    pub async fn start(cfg: Config) -> anyhow::Result<Server> {
        for k in &cfg.unknown {
            warn!("unknown configuration key {k:?}: accepted and ignored");
        }
        for p in &cfg.unknown_auth_providers {
            warn!("{p}: no such authentication provider in rookeeper; ignored");
        }
        std::fs::create_dir_all(&cfg.data_dir).map_err(|e| {
            anyhow::anyhow!("cannot create dataDir {}: {e}", cfg.data_dir.display())
        })?;
        let http_settings = admin::HttpSettings::from_config(&cfg)?;
        // TLS setup first: a bad key store stops startup before any bind.
        let secure = match cfg.secure_client_port {
            Some(port) => {
                let tls = Arc::new(tls::Tls::from_config(&cfg)?);
                Some((conn::bind_secure(&cfg, port).await?, tls))
            }
            None => None,
        };
        let secure_addr = match &secure {
            Some((l, _)) => Some(l.local_addr()?),
            None => None,
        };
        // As in ZooKeeper, no clientPort with a secureClientPort means TLS only.
        let plain = secure.is_none() || cfg.raw.contains_key("clientPort");
        let listener = match plain {
            true => Some(conn::bind(&cfg).await?),
            false => None,
        };
        let addr = match (&listener, secure_addr) {
            (Some(l), _) => l.local_addr()?,
            (None, Some(a)) => a,
            (None, None) => unreachable!("a plain or a secure listener"),
        };
        // Recovery before serving: the tree comes back from the dataDir.
        let layout = persist::Layout::new(&cfg);
        let (persist::Loaded { tree, tail }, snapshot_after) = {
            let cfg = cfg.clone();
            let layout = layout.clone();
            // Recovery reads whole files: keep it off the async workers.
            tokio::task::spawn_blocking(move || persist::recover(&cfg, &layout)).await??
        };
        let (ev_tx, ev_rx) = mpsc::unbounded_channel();
        let (mut persister, log_thread) =
            persist::start(&cfg, &layout, tree.last_zxid(), ev_tx.clone())?;
        if snapshot_after {
            // The startup snapshot, written while we already serve.
            persister.snapshot(tree.snapshot_copy(), tree.last_zxid());
            persister.flush();
        }
        // Once per process: log writers restarted later (a disk that came
        // back, a follower's TRUNC) do not start another purger.
        persist::start_autopurge(&cfg, &layout);
        let cfg = Arc::new(cfg);
        let (cfg_pause, metrics) = (cfg.pause_monitor, cfg.metrics.clone());
        let (tx, rx) = mpsc::channel(PIPELINE_QUEUE);
        let last_zxid = tree.last_zxid();
        let mut pipeline = core::Core::new(cfg.clone(), tree, persister, layout.clone(), ev_tx);
        if let Some(setup) = cfg.ensemble.clone() {
            // Every member starts by looking (election_time, looking_count).
            cfg.metrics.election_started();
            // /zookeeper/config shows the ensemble, as on Apache's servers.
            pipeline.tree.set_config_node(
                &setup.quorum.to_string(),
                setup.quorum.version,
                core::wall_ms(),
            );
            pipeline.ens = Some(
                ensemble::start(
                    Arc::new(setup),
                    &layout,
                    last_zxid,
                    tx.clone(),
                    cfg.tick_time,
                    cfg.read_only_mode,
                )
                .await?,
            );
            if let Some(e) = pipeline.ens.as_mut() {
                e.history.reset(tail);
            }
        }
        let core = tokio::spawn(pipeline.run(rx, ev_rx));
        let http = admin::start(&http_settings, cfg.clone(), tx.clone()).await?;
        // One admission for both client ports, as one pipeline serves them.
        let adm = admission::Admission::new(&cfg);
        let secure_accept = secure.map(|(l, tls)| {
            tokio::spawn(conn::accept_loop(
                l,
                tx.clone(),
                cfg.clone(),
                adm.clone(),
                Some(tls),
            ))
        });
        let accept = match listener {
            Some(l) => tokio::spawn(conn::accept_loop(l, tx, cfg, adm, None)),
            None => tokio::spawn(std::future::pending()),
        };
        let _pause = match &cfg_pause {
            Some(s) => Some(pause::Monitor::start(*s, metrics)?),
            None => None,
        };
        Ok(Server {
            addr,
            secure_addr,
            http: Box::new(http),
            accept,
            secure_accept,
            log_thread: Some(log_thread),
            core,
            _pause,
        })
    }

    /// The AdminServer's address, when enabled and bound.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.http.admin_addr
    }

    /// Prometheus /metrics' address, with PrometheusMetricsProvider.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.http.metrics_addr
    }

    /// Stops accepting and drops every connection and session.
    pub async fn stop(mut self) {
        self.http.stop();
        self.accept.abort();
        let _ = (&mut self.accept).await;
        if let Some(a) = self.secure_accept.take() {
            a.abort();
            let _ = a.await;
        }
        self.core.abort();
        let _ = (&mut self.core).await;
        // The pipeline is gone: the log thread writes what it was given and
        // ends, so a restart on the same dataDir never races it.
        if let Some(t) = self.log_thread.take() {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }
}

/// Runs a server until `shutdown` completes, or until it cannot go on (its
/// txn log failed: then an error, and a non-zero exit).
pub async fn run(cfg: Config, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
    let mut server = Server::start(cfg).await?;
    info!("rookeeper serving clients on {}", server.addr);
    if let Some(a) = server.secure_addr {
        info!("rookeeper serving TLS clients on {a}");
    }
    tokio::select! {
        _ = shutdown => {
            info!("shutting down");
            server.stop().await;
            Ok(())
        }
        r = &mut server.core => {
            server.accept.abort();
            if let Some(a) = &server.secure_accept {
                a.abort();
            }
            match r {
                Ok(Ok(())) => Ok(()),
                Ok(Err(e)) => Err(e),
                Err(e) => Err(anyhow::anyhow!("request pipeline crashed: {e}")),
            }
        }
    }
}
