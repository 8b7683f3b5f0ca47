//! The replicated ensemble: this server as one of `server.N` peers.
//!
//! - `cnx`: the election port (QuorumCnxManager's connections and
//!   handshake) and the task running [`zab::Election`].
//! - `link`: quorum-port connections (leader <-> learner), QuorumPackets
//!   on blocking sockets in two threads each, so a SNAP's database can be
//!   read straight off the stream.
//! - `leader`, `follower`: the ZAB phases, as methods of the request
//!   pipeline ([`crate::core::Core`]), which owns the tree in every role.
//! - `observer_master`: a follower hosting observers (observerMasterPort).
//! - `serve`: client requests and sessions while in an ensemble: reads
//!   served locally in per-session order, writes proposed (leader) or
//!   forwarded (learners) and answered once committed.

pub mod cnx;
pub mod follower;
pub mod history;
pub mod leader;
pub mod link;
pub mod observer_master;
pub mod quorum_auth;
pub mod round;
pub mod secure;
pub mod serve;

use std::path::Path;

use anyhow::{bail, Context, Result};
use jute::quorum::QuorumPacket;
use tokio::sync::mpsc;
use zab::{LearnerType, QuorumConfig, ServerState, Vote};

use crate::config::{parse_properties, Config};

/// The ensemble settings of this server.
#[derive(Debug, Clone)]
pub struct Setup {
    pub my_id: u64,
    pub quorum: QuorumConfig,
    pub init_limit: u32,
    pub sync_limit: u32,
    /// connectToLearnerMasterLimit: ticks a learner may spend connecting to
    /// the leader (0: initLimit).
    pub connect_limit: u32,
    /// zookeeper.leaderConnectDelayDuringRetryMs: the pause between tries.
    pub connect_retry_ms: u64,
    /// zookeeper.leader.maxTimeToWaitForEpoch: a leader still choosing its
    /// epoch after this long quits when a server that voted for it is
    /// looking again (-1: never).
    pub max_epoch_wait_ms: i64,
    /// quorumListenOnAllIPs: bind the quorum and election ports on 0.0.0.0.
    pub listen_all: bool,
    /// observerMasterPort: followers host observers on this port (at their
    /// quorum address), and observers sync from a follower, not the leader.
    pub observer_master_port: Option<u16>,
    /// Quorum TLS (sslQuorum / portUnification).
    pub tls: Option<std::sync::Arc<crate::tls::QuorumTls>>,
    /// Quorum SASL (quorum.auth.enableSasl).
    pub auth: Option<std::sync::Arc<quorum_auth::QuorumAuth>>,
}

impl Setup {
    /// `None` for a standalone server: no `server.N` lines, or exactly one
    /// with standaloneEnabled (the default), as QuorumPeerConfig decides.
    pub fn from_config(c: &Config) -> Result<Option<Setup>> {
        let pairs: Vec<(&str, &str)> = c
            .raw
            .iter()
            .filter(|(k, _)| {
                k.starts_with("server.")
                    || k.starts_with("group.")
                    || k.starts_with("weight.")
                    || k.as_str() == "version"
            })
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        if pairs.iter().all(|(k, _)| !k.starts_with("server.")) {
            return Ok(None);
        }
        let on = |k: &str| {
            c.raw
                .get(k)
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        };
        // TLS between members: sslQuorum, or portUnification alone (then
        // the ports also take TLS, for switching TLS on server by server).
        let tls = if on("sslQuorum") || on("portUnification") {
            Some(std::sync::Arc::new(crate::tls::QuorumTls::from_config(
                c,
                on("sslQuorum"),
                on("portUnification"),
            )?))
        } else {
            None
        };
        let auth = quorum_auth::QuorumAuth::from_config(c)?.map(std::sync::Arc::new);
        // QuorumPeerConfig: several addresses for a server need
        // multiAddress.enabled; with it we still use only the first.
        for (k, v) in pairs.iter().filter(|(k, _)| k.starts_with("server.")) {
            if v.split(';').next().is_some_and(|a| a.contains('|')) {
                let enabled = c
                    .prop("zookeeper.multiAddress.enabled")
                    .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
                if !enabled {
                    bail!("Multiple address feature is disabled, but multiple addresses were specified for {k} (multiAddress.enabled=true turns it on)");
                }
                tracing::warn!(
                    "{k} lists several addresses: rookeeper uses only the first (no failover between them)"
                );
            }
        }
        let quorum = QuorumConfig::from_pairs(pairs).map_err(anyhow::Error::msg)?;
        let standalone_enabled = !c
            .raw
            .get("standaloneEnabled")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("false"));
        if quorum.members.len() == 1 && standalone_enabled {
            return Ok(None);
        }
        let myid_path = c.data_dir.join("myid");
        let text = std::fs::read_to_string(&myid_path).with_context(|| {
            format!(
                "{} file is missing (each server of an ensemble needs one)",
                myid_path.display()
            )
        })?;
        let my_id: u64 = text.trim().parse().with_context(|| {
            format!(
                "serverid {:?} in {} is not a number",
                text.trim(),
                myid_path.display()
            )
        })?;
        let Some(me) = quorum.members.get(&my_id) else {
            bail!("myid {my_id} has no server.{my_id} line in the configuration");
        };
        if let Some(pt) = c.raw.get("peerType") {
            let want = match pt.trim() {
                "observer" => LearnerType::Observer,
                "participant" => LearnerType::Participant,
                other => bail!("unrecognised peerType {other:?}"),
            };
            if want != me.kind {
                tracing::warn!(
                    "peerType={} differs from the server.{my_id} line; the line wins",
                    pt.trim()
                );
            }
        }
        let limit = |k: &str, d: u32| -> Result<u32> {
            match c.raw.get(k) {
                None => Ok(d),
                Some(v) => v
                    .trim()
                    .parse()
                    .with_context(|| format!("invalid {k}: {v:?}")),
            }
        };
        if quorum.voter_count() == 0 {
            bail!("the ensemble has no participants");
        }
        Ok(Some(Setup {
            my_id,
            init_limit: limit("initLimit", 10)?.max(1),
            sync_limit: limit("syncLimit", 5)?.max(1),
            connect_limit: limit("connectToLearnerMasterLimit", 0)?,
            max_epoch_wait_ms: c.prop_num("zookeeper.leader.maxTimeToWaitForEpoch", -1)?,
            connect_retry_ms: u64::try_from(
                c.prop_num("zookeeper.leaderConnectDelayDuringRetryMs", 100)?,
            )
            .context("zookeeper.leaderConnectDelayDuringRetryMs must not be negative")?,
            observer_master_port: match c.raw.get("observerMasterPort") {
                None => None,
                Some(v) => match v.trim().parse::<i32>() {
                    Ok(p) if p <= 0 => None,
                    Ok(p) => Some(
                        u16::try_from(p)
                            .map_err(|_| anyhow::anyhow!("invalid observerMasterPort: {v:?}"))?,
                    ),
                    Err(_) => bail!("invalid observerMasterPort: {v:?}"),
                },
            },
            tls,
            auth,
            listen_all: c
                .raw
                .get("quorumListenOnAllIPs")
                .is_some_and(|v| v.trim().eq_ignore_ascii_case("true")),
            quorum,
        }))
    }

    pub fn me(&self) -> &zab::Member {
        &self.quorum.members[&self.my_id]
    }

    pub fn is_observer(&self) -> bool {
        self.me().kind == LearnerType::Observer
    }
}

/// `acceptedEpoch` / `currentEpoch` in the snapshot directory, as decimal
/// text (QuorumPeer.writeLongToFile). A missing file means "the epoch of
/// the last logged zxid", as Apache assumes on first start.
pub fn read_epoch(dir: &Path, name: &str, last_zxid: i64) -> Result<i64> {
    let p = dir.join(name);
    match std::fs::read_to_string(&p) {
        Ok(t) => t
            .trim()
            .parse()
            .with_context(|| format!("{} does not hold a number: {:?}", p.display(), t.trim())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(zab::epoch_of(last_zxid)),
        Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", p.display())),
    }
}

/// Writes an epoch file atomically (temp file, fsync, rename), as
/// AtomicFileOutputStream does.
pub fn write_epoch(dir: &Path, name: &str, value: i64) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    atomic_write(&dir.join(name), &format!("{value}\n"))
}

/// After a reconfig, as QuorumPeer.setQuorumVerifier does: the members (and
/// any groups and weights) go to `<zoo.cfg>.dynamic.<version>` (no version
/// line: the name carries it)
/// and zoo.cfg keeps only the static settings plus `dynamicConfigFile`
/// (clientPort too goes when our server line has a client address). Both
/// written to a temp file and renamed.
pub fn write_dynamic_config(static_cfg: &Path, q: &QuorumConfig, my_id: u64) -> Result<()> {
    let dyn_path =
        std::path::PathBuf::from(format!("{}.dynamic.{:x}", static_cfg.display(), q.version));
    // As QuorumPeerConfig.writeDynamicConfig: the configuration's lines
    // (servers, and groups and weights) sorted, without the version.
    let full = q.to_string();
    let mut lines: Vec<&str> = full
        .lines()
        .filter(|l| !l.starts_with("version="))
        .collect();
    lines.sort_unstable();
    let text = lines.join("\n");
    atomic_write(&dyn_path, &text)?;
    let erase_client = q.members.get(&my_id).is_some_and(|m| m.client.is_some());
    let old = std::fs::read_to_string(static_cfg)
        .with_context(|| format!("cannot read {}", static_cfg.display()))?;
    let mut out = String::new();
    for (k, v) in parse_properties(&old) {
        let drop = k.starts_with("server.")
            || k.starts_with("group")
            || k.starts_with("weight")
            || k.starts_with("dynamicConfigFile")
            || k.starts_with("peerType")
            || (erase_client && k.starts_with("clientPort"));
        if !drop {
            out.push_str(&format!("{k}={v}\n"));
        }
    }
    let abs = std::path::absolute(&dyn_path).unwrap_or(dyn_path);
    out.push_str(&format!("dynamicConfigFile={}\n", abs.display()));
    atomic_write(static_cfg, &out)
}

fn atomic_write(p: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let tmp = p.with_extension("tmp-rookeeper");
    let mut f =
        std::fs::File::create(&tmp).with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(text.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, p).with_context(|| format!("cannot write {}", p.display()))?;
    Ok(())
}

/// Identifies one quorum-port connection.
pub type LinkId = u64;

/// Messages into the pipeline from the ensemble's tasks.
#[derive(Debug)]
pub enum QMsg {
    /// The election ended.
    Decided { state: ServerState, vote: Vote },
    /// Every half tick: pings, deadlines.
    Tick,
    /// Leader side: a learner connected to the quorum port.
    LearnerConnected { link: LinkId, conn: link::Link },
    /// Learner side: connected to the leader.
    LeaderConnected { link: LinkId, conn: link::Link },
    /// A packet on a link; a commit's notes when it was read.
    Packet {
        link: LinkId,
        pkt: QuorumPacket,
        at: Option<std::time::Instant>,
    },
    /// Packets that arrived together on a link, in order: each is handled
    /// as its own `Packet`.
    Packets {
        link: LinkId,
        pkts: Vec<(QuorumPacket, Option<std::time::Instant>)>,
    },
    /// Learner side: the database a SNAP carried.
    Snap {
        link: LinkId,
        zxid: i64,
        tree: Box<tree::DataTree>,
    },
    /// A link closed or failed.
    LinkClosed { link: LinkId, why: String },
    /// Leading: a server whose vote elected us is looking again.
    VoterLooking { sid: u64 },
}

/// Commands to the election task.
#[derive(Debug)]
pub enum ElectionCmd {
    /// Look for a leader with this history.
    Look { last_zxid: i64, current_epoch: i64 },
    /// Synced with a leader of this epoch (updates the vote others see).
    Synced { epoch: i64 },
    /// A reconfiguration was activated.
    Config(std::sync::Arc<Setup>),
}

/// A client request in an ensemble, in its session's order.
#[derive(Debug)]
pub struct Queued {
    pub conn: crate::core::ConnId,
    pub xid: i32,
    pub opc: i32,
    pub req: jute::request::Request,
    pub received: std::time::Instant,
    /// A write (or sync) handed to the leader: wait for its outcome.
    pub submitted: bool,
    /// The outcome of a write once its txn is applied.
    pub result: Option<tree::ApplyResult>,
    /// A sync whose point has been reached.
    pub synced: bool,
    /// Answered THROTTLEDOP in its turn (crate::admission).
    pub throttled: bool,
    /// Its place in the pipeline, given back once it is answered.
    pub ticket: Option<crate::admission::Ticket>,
}

/// A connect waiting for the ensemble: a new session's txn to commit, or
/// the leader to revalidate a returning one.
#[derive(Debug)]
pub struct PendingConnect {
    pub conn: crate::core::ConnId,
    pub remote: std::net::SocketAddr,
    pub legacy: bool,
    pub tx: crate::conn::Outbox,
    pub timeout: i32,
    pub auth: Vec<jute::data::Id>,
}

/// The ensemble half of the pipeline's state.
pub struct State {
    pub setup: std::sync::Arc<Setup>,
    pub election: mpsc::UnboundedSender<ElectionCmd>,
    /// For links and listeners to reach the pipeline.
    pub core_tx: mpsc::Sender<Msg>,
    pub role: Role,
    pub accepted_epoch: i64,
    pub current_epoch: i64,
    /// Per session: requests in arrival order while a write is pending.
    pub queued:
        std::collections::HashMap<i64, std::collections::VecDeque<Queued>, ahash::RandomState>,
    /// Reads and writes (syncs too) in `queued`, for the commit figures.
    pub queued_reads: u64,
    pub queued_writes: u64,
    /// This pipeline turn's commit figures (`round`).
    pub round: round::Round,
    /// When the commit being applied arrived: a COMMIT read off the
    /// leader's link, or a leader's quorum (for *_write_committed_time_ms).
    pub commit_arrived: Option<std::time::Instant>,
    pub connecting: std::collections::HashMap<i64, PendingConnect>,
    /// Learners: sessions active since the last PING (with timeouts).
    pub touched: std::collections::HashMap<i64, i32, ahash::RandomState>,
    /// When the current role was taken, in pipeline milliseconds.
    pub since: i64,
    /// readonlymode.enabled: without a quorum, serve read-only clients.
    pub read_only_mode: bool,
    /// Looking for long enough (max(2 s, tickTime), as QuorumPeer waits)
    /// that the read-only server runs.
    pub read_only_active: bool,
    /// The newest committed txns (those the tree ends with), for DIFFs.
    pub history: history::History,
    /// Leader's txn digests that matched our tree, since start (the first
    /// is logged, so that an operator can see the check is running).
    pub digests_matched: u64,
    /// An observer with observerMasterPort: where its rotation through the
    /// followers stands (started at random on first use).
    pub next_master: Option<usize>,
}

pub enum Role {
    Looking,
    Leading(Box<leader::Leader>),
    Following(Box<follower::Follower>),
}

impl Role {
    pub fn name(&self) -> &'static str {
        match self {
            Role::Looking => "looking",
            Role::Leading(_) => "leader",
            Role::Following(f) if f.observer => "observer",
            Role::Following(_) => "follower",
        }
    }
}

/// How long a server looks for a leader before serving read-only clients.
pub fn read_only_grace_ms(tick_time: u32) -> i64 {
    (tick_time as i64).max(2000)
}

impl State {
    /// Without a quorum, with readonlymode.enabled: reads for clients
    /// that asked for a read-only session (ReadOnlyZooKeeperServer).
    pub fn read_only(&self) -> bool {
        self.read_only_active && matches!(self.role, Role::Looking)
    }

    /// Without a quorum the read-only server starts max(2 s, tickTime) after
    /// looking began, as QuorumPeer's does: a timer wakes the pipeline then,
    /// rather than the next half-tick (up to a second later).
    pub fn arm_read_only(&self, tick_time: u32) {
        if !self.read_only_mode {
            return;
        }
        let tx = self.core_tx.clone();
        // A few ms past the grace: the check compares pipeline clocks.
        let after = std::time::Duration::from_millis(read_only_grace_ms(tick_time) as u64 + 5);
        tokio::spawn(async move {
            tokio::time::sleep(after).await;
            let _ = tx.send(Msg::Quorum(QMsg::Tick)).await;
        });
    }

    /// A request left its session's queue.
    pub fn unqueued(&mut self, x: &Queued) {
        match x.submitted {
            true => self.queued_writes = self.queued_writes.saturating_sub(1),
            false => self.queued_reads = self.queued_reads.saturating_sub(1),
        }
    }

    /// Serving clients: a leader or learner past UPTODATE.
    pub fn serving(&self) -> bool {
        match &self.role {
            Role::Looking => false,
            Role::Leading(l) => l.serving(),
            Role::Following(f) => f.serving(),
        }
    }
}

use crate::core::Msg;

/// Starts the election port and the pipeline's tick for an ensemble
/// member recovered to `last_zxid`; it begins looking at once.
pub async fn start(
    setup: std::sync::Arc<Setup>,
    layout: &crate::persist::Layout,
    last_zxid: i64,
    core_tx: mpsc::Sender<Msg>,
    tick_time: u32,
    read_only_mode: bool,
) -> Result<Box<State>> {
    let current_epoch = read_epoch(&layout.snap_dir, "currentEpoch", last_zxid)?;
    let accepted_epoch =
        read_epoch(&layout.snap_dir, "acceptedEpoch", last_zxid)?.max(current_epoch);
    let election = cnx::start(setup.clone(), core_tx.clone(), last_zxid, current_epoch).await?;
    let _ = election.send(ElectionCmd::Look {
        last_zxid,
        current_epoch,
    });
    let ticks = core_tx.clone();
    tokio::spawn(async move {
        let mut t = tokio::time::interval(std::time::Duration::from_millis(
            (tick_time as u64 / 2).max(1),
        ));
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            t.tick().await;
            if ticks.send(Msg::Quorum(QMsg::Tick)).await.is_err() {
                return;
            }
        }
    });
    tracing::info!(
        "server {} of an ensemble of {} ({} voters); current epoch {current_epoch}, accepted epoch {accepted_epoch}",
        setup.my_id,
        setup.quorum.members.len(),
        setup.quorum.voter_count()
    );
    let state = Box::new(State {
        setup,
        election,
        core_tx,
        role: Role::Looking,
        accepted_epoch,
        current_epoch,
        queued: Default::default(),
        queued_reads: 0,
        queued_writes: 0,
        round: Default::default(),
        commit_arrived: None,
        connecting: Default::default(),
        touched: Default::default(),
        since: 0,
        read_only_mode,
        read_only_active: false,
        history: Default::default(),
        digests_matched: 0,
        next_master: None,
    });
    state.arm_read_only(tick_time);
    Ok(state)
}
