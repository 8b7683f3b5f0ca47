//! The election port, as QuorumCnxManager runs it, and the election task.
//!
//! One TCP connection per pair of servers, kept by the server with the
//! larger id: a server connecting to a larger one sends its handshake and
//! hangs up, and the larger one connects back. Messages are an int length
//! and the bytes of a notification. Only the newest message to a peer
//! matters, so one waits while the connection is being made.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tracing::{debug, info, warn};
use zab::election::Out;
use zab::wire::{self, Notification};
use zab::Election;

use super::secure::{self, Stream};
use super::{ElectionCmd, QMsg, Setup};
use crate::core::Msg;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(5);

enum Event {
    /// A handshake read off an accepted socket.
    Incoming {
        sid: u64,
        stream: Box<dyn Stream>,
    },
    /// A connection we made to a smaller id.
    Outgoing {
        sid: u64,
        stream: Box<dyn Stream>,
    },
    ConnectDone {
        sid: u64,
    },
    Closed {
        sid: u64,
        gen: u64,
    },
    Message {
        sid: u64,
        body: Bytes,
    },
}

struct Peer {
    tx: mpsc::Sender<Bytes>,
    gen: u64,
}

/// Binds the election port and starts the election task. The pipeline
/// gets [`QMsg::Decided`]; it sends [`ElectionCmd`]s back.
pub async fn start(
    setup: Arc<Setup>,
    core: mpsc::Sender<Msg>,
    last_zxid: i64,
    current_epoch: i64,
) -> anyhow::Result<mpsc::UnboundedSender<ElectionCmd>> {
    let me = setup.me();
    let host = if setup.listen_all {
        "0.0.0.0".to_owned()
    } else {
        me.host.clone()
    };
    let listener = TcpListener::bind((host.as_str(), me.election_port))
        .await
        .map_err(|e| {
            anyhow::anyhow!("cannot bind the election port {}: {e}", me.election_addr())
        })?;
    info!("election port listening on {}", me.election_addr());
    let (ev_tx, ev_rx) = mpsc::unbounded_channel();
    tokio::spawn(accept_loop(
        listener,
        ev_tx.clone(),
        setup.tls.clone(),
        setup.auth.clone(),
    ));
    let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
    let election = Election::new(setup.my_id, setup.quorum.clone(), last_zxid, current_epoch);
    tokio::spawn(
        Manager {
            setup,
            election,
            peers: HashMap::new(),
            pending: HashMap::new(),
            last_sent: HashMap::new(),
            connecting: HashSet::new(),
            ev_tx,
            gen: 0,
            start: Instant::now(),
            core,
        }
        .run(ev_rx, cmd_rx),
    );
    Ok(cmd_tx)
}

async fn accept_loop(
    listener: TcpListener,
    ev: mpsc::UnboundedSender<Event>,
    tls: Option<Arc<crate::tls::QuorumTls>>,
    auth: Option<Arc<super::quorum_auth::QuorumAuth>>,
) {
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                warn!("election port accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let ev = ev.clone();
        let tls = tls.clone();
        let auth = auth.clone();
        tokio::spawn(async move {
            let stream = match secure::accept(tls.as_deref(), stream).await {
                Ok(s) => s.boxed(),
                Err(e) => {
                    warn!("election connection from {remote}: {e}");
                    return;
                }
            };
            // The handshake, then (quorum SASL) the connecting member's
            // authentication, as QuorumCnxManager.handleConnection.
            let handshake = async {
                let (sid, stream) = read_handshake(stream).await?;
                let stream = match &auth {
                    Some(a) => a.admit(stream).await?,
                    None => stream,
                };
                anyhow::Ok((sid, stream))
            };
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake).await {
                Ok(Ok((sid, stream))) => {
                    let _ = ev.send(Event::Incoming { sid, stream });
                }
                Ok(Err(e)) => warn!("election connection from {remote}: {e}"),
                Err(_) => warn!("election connection from {remote}: no handshake in time"),
            }
        });
    }
}

/// The connecting side's first bytes: a protocol version and its id, or
/// (servers before 3.5) just its id.
async fn read_handshake(mut s: Box<dyn Stream>) -> anyhow::Result<(u64, Box<dyn Stream>)> {
    let first = s.read_i64().await?;
    if first >= 0 {
        return Ok((first as u64, s));
    }
    if first != wire::PROTOCOL_V1 && first != wire::PROTOCOL_V2 {
        anyhow::bail!("{}", wire::WireError::Protocol(first));
    }
    let sid = s.read_i64().await?;
    let n = s.read_i32().await?;
    if n <= 0 || n as usize > wire::MAX_ELECTION_MESSAGE {
        anyhow::bail!("{}", wire::WireError::Length(n));
    }
    let mut addr = vec![0u8; n as usize];
    s.read_exact(&mut addr).await?;
    wire::parse_addresses(&addr)?;
    if sid < 0 {
        // An observer with no id (OBSERVER_ID): nothing we can answer.
        anyhow::bail!("connection from a server without an id");
    }
    Ok((sid as u64, s))
}

struct Manager {
    setup: Arc<Setup>,
    election: Election,
    peers: HashMap<u64, Peer>,
    /// The newest message for a peer we are not connected to.
    pending: HashMap<u64, Bytes>,
    /// The newest message for each peer, sent again on a new connection
    /// when nothing is pending (QuorumCnxManager's SendWorker does): a
    /// member that authenticates what connects to it (quorum SASL) waits
    /// for the first bytes before taking the connection.
    last_sent: HashMap<u64, Bytes>,
    connecting: HashSet<u64>,
    ev_tx: mpsc::UnboundedSender<Event>,
    gen: u64,
    start: Instant,
    core: mpsc::Sender<Msg>,
}

impl Manager {
    fn now(&self) -> i64 {
        self.start.elapsed().as_millis() as i64
    }

    async fn run(
        mut self,
        mut ev: mpsc::UnboundedReceiver<Event>,
        mut cmds: mpsc::UnboundedReceiver<ElectionCmd>,
    ) {
        loop {
            let wake = match self.election.next_deadline() {
                Some(at) => self.start + Duration::from_millis(at.max(0) as u64),
                None => Instant::now() + Duration::from_secs(3600),
            };
            tokio::select! {
                c = cmds.recv() => match c {
                    Some(ElectionCmd::Look { last_zxid, current_epoch }) => {
                        info!("LOOKING: last zxid 0x{last_zxid:x}, current epoch {current_epoch}");
                        let now = self.now();
                        let outs = self.election.start(now, last_zxid, current_epoch);
                        self.act(outs).await;
                    }
                    Some(ElectionCmd::Synced { epoch }) => self.election.set_vote_epoch(epoch),
                    Some(ElectionCmd::Config(setup)) => {
                        self.election.set_config(setup.quorum.clone());
                        self.setup = setup;
                    }
                    // The pipeline is gone: so are we.
                    None => return,
                },
                e = ev.recv() => {
                    let Some(e) = e else { return };
                    self.on_event(e).await;
                }
                _ = tokio::time::sleep_until(wake.into()) => {
                    let now = self.now();
                    let outs = self.election.on_tick(now);
                    self.act(outs).await;
                }
            }
        }
    }

    async fn on_event(&mut self, e: Event) {
        match e {
            Event::Incoming { sid, stream } => {
                if sid == self.setup.my_id {
                    warn!("election connection from a server with our own id {sid}: configuration error?");
                } else if sid < self.setup.my_id {
                    // The larger id keeps the connection: we call back.
                    drop(stream);
                    self.peers.remove(&sid);
                    self.connect(sid);
                } else {
                    self.register(sid, stream);
                }
            }
            Event::Outgoing { sid, stream } => self.register(sid, stream),
            Event::ConnectDone { sid } => {
                self.connecting.remove(&sid);
            }
            Event::Closed { sid, gen } => {
                if self.peers.get(&sid).is_some_and(|p| p.gen == gen) {
                    debug!("election connection to {sid} closed");
                    self.peers.remove(&sid);
                }
            }
            Event::Message { sid, body } => match Notification::decode(&body) {
                Ok(n) => {
                    let now = self.now();
                    let outs = self.election.on_message(sid, n, now);
                    self.act(outs).await;
                }
                Err(e) => warn!("skipping a malformed notification from server {sid}: {e}"),
            },
        }
    }

    async fn act(&mut self, outs: Vec<Out>) {
        for o in outs {
            match o {
                Out::Send { to, n } => self.send(to, n.encode()),
                Out::VoterLooking { sid } => {
                    let _ = self
                        .core
                        .send(Msg::Quorum(QMsg::VoterLooking { sid }))
                        .await;
                }
                Out::Decided { state, vote } => {
                    info!(
                        "election decided: {} (leader {}, zxid 0x{:x}, peer epoch {}, round {})",
                        state.name().to_uppercase(),
                        vote.leader,
                        vote.zxid,
                        vote.peer_epoch,
                        vote.election_epoch
                    );
                    let _ = self
                        .core
                        .send(Msg::Quorum(QMsg::Decided { state, vote }))
                        .await;
                }
            }
        }
    }

    fn send(&mut self, to: u64, body: Bytes) {
        self.last_sent.insert(to, body.clone());
        if let Some(p) = self.peers.get(&to) {
            match p.tx.try_send(body.clone()) {
                Ok(()) => return,
                // A slow peer: only the newest message matters anyway.
                Err(mpsc::error::TrySendError::Full(_)) => return,
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.peers.remove(&to);
                }
            }
        }
        self.pending.insert(to, body);
        self.connect(to);
    }

    fn connect(&mut self, sid: u64) {
        if self.peers.contains_key(&sid) || !self.connecting.insert(sid) {
            return;
        }
        let Some(m) = self.setup.quorum.members.get(&sid) else {
            self.connecting.remove(&sid);
            return;
        };
        let addr = m.election_addr();
        let host = m.host.clone();
        let tls = self.setup.tls.clone();
        let auth = self.setup.auth.clone();
        let my_id = self.setup.my_id;
        let hello = wire::initial_message(my_id, &self.setup.me().election_addr());
        let ev = self.ev_tx.clone();
        tokio::spawn(async move {
            let r = tokio::time::timeout(CONNECT_TIMEOUT, async {
                let s = TcpStream::connect(&addr).await?;
                let _ = s.set_nodelay(true);
                secure::connect(tls.as_deref(), &host, s).await
            })
            .await;
            match r {
                Ok(Ok(mut s)) => {
                    let sent = s.write_all(&hello).await.is_ok() && s.flush().await.is_ok();
                    // Quorum SASL after the handshake (initiateConnection).
                    let authed = match (&auth, sent) {
                        (Some(a), true) => match a.authenticate(&mut s).await {
                            Ok(()) => true,
                            Err(e) => {
                                warn!("election connection to {sid}: {e}");
                                false
                            }
                        },
                        (_, sent) => sent,
                    };
                    if authed {
                        if sid > my_id {
                            // They keep connections from larger ids only:
                            // this one tells them to call us.
                            let _ = s.shutdown().await;
                        } else {
                            let _ = ev.send(Event::Outgoing { sid, stream: s });
                        }
                    }
                }
                Ok(Err(e)) => debug!("cannot open election connection to {sid} at {addr}: {e}"),
                Err(_) => debug!("election connection to {sid} at {addr} timed out"),
            }
            let _ = ev.send(Event::ConnectDone { sid });
        });
    }

    fn register(&mut self, sid: u64, stream: Box<dyn Stream>) {
        self.gen += 1;
        let gen = self.gen;
        let (tx, mut rx) = mpsc::channel::<Bytes>(16);
        let (mut rd, mut wr) = tokio::io::split(stream);
        let ev = self.ev_tx.clone();
        tokio::spawn(async move {
            while let Ok(n) = rd.read_i32().await {
                if n <= 0 || n as usize > wire::MAX_ELECTION_MESSAGE {
                    warn!("election connection to {sid}: bad message length {n}, closing");
                    break;
                }
                let mut b = vec![0u8; n as usize];
                if rd.read_exact(&mut b).await.is_err() {
                    break;
                }
                if ev
                    .send(Event::Message {
                        sid,
                        body: Bytes::from(b),
                    })
                    .is_err()
                {
                    break;
                }
            }
            let _ = ev.send(Event::Closed { sid, gen });
        });
        tokio::spawn(async move {
            while let Some(b) = rx.recv().await {
                let mut frame = Vec::with_capacity(4 + b.len());
                frame.extend_from_slice(&(b.len() as i32).to_be_bytes());
                frame.extend_from_slice(b.chunk());
                // A TLS stream holds records until flushed.
                if wr.write_all(&frame).await.is_err() || wr.flush().await.is_err() {
                    break;
                }
            }
        });
        if let Some(b) = self
            .pending
            .remove(&sid)
            .or_else(|| self.last_sent.get(&sid).cloned())
        {
            let _ = tx.try_send(b);
        }
        self.peers.insert(sid, Peer { tx, gen });
        debug!("election connection to {sid} up");
    }
}
