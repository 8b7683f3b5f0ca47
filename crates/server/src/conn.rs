//! Client connections: accept, four-letter words, the handshake, then
//! frames in (decoded here, in parallel across connections) and frames out
//! (written by a per-connection writer draining its outbox, or for a watch
//! event on an idle plain socket by the pipeline itself: `Outbox`).

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, Bytes, BytesMut};
use jute::codec::{DecodeError, Reader, Record};
use jute::consts::{op, xid, CreateMode};
use jute::data::Id;
use jute::proto::{ConnectRequest, RequestHeader};
use jute::request::{MultiOp, Request};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::admission::{Admission, Admit};
use crate::config::Config;
use crate::core::{Body, ConnId, Msg, OUTBOX_FRAMES};
use crate::fourlw;
use crate::tls::Tls;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

/// Connections on a secure client port (ids are unique in the process),
/// for the AdminServer's `secure_connections`.
static SECURE: Mutex<Option<std::collections::HashSet<ConnId>>> = Mutex::new(None);

/// Is this connection on a secure client port?
pub fn is_secure(id: ConnId) -> bool {
    SECURE
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .as_ref()
        .is_some_and(|s| s.contains(&id))
}

/// Marks a connection secure while it lives.
struct SecureMark(ConnId);

impl SecureMark {
    fn new(id: ConnId) -> SecureMark {
        SECURE
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert_with(Default::default)
            .insert(id);
        SecureMark(id)
    }
}

impl Drop for SecureMark {
    fn drop(&mut self) {
        if let Some(s) = SECURE.lock().unwrap_or_else(|e| e.into_inner()).as_mut() {
            s.remove(&self.0);
        }
    }
}

/// Where the pipeline sends a connection's frames: the queue its writer task
/// drains and, for a plain socket, the socket itself.
///
/// Watch events (frames with the notification xid) are written at once when
/// nothing is queued before them. In a fan-out to a thousand watchers, queued events
/// waited behind the watchers' own re-registrations (read, answered and
/// written while the event tasks sat in tokio's queues), which doubled the
/// time until the last watcher heard. Replies stay queued, so that a
/// pipelining client's replies are coalesced into one write by its writer.
///
/// Cloned for every frame held until its txn is durable (a fan-out holds a
/// thousand), so a clone is one count rather than the four of its parts.
#[derive(Clone, Debug)]
pub struct Outbox(Arc<OutboxParts>);

#[derive(Debug)]
struct OutboxParts {
    tx: mpsc::Sender<Bytes>,
    direct: Option<Direct>,
}

#[derive(Debug)]
struct Direct {
    sock: Arc<OwnedWriteHalf>,
    /// Frames queued and not yet written. The pipeline is the queue's only
    /// producer, so at zero the writer has written everything and waits:
    /// a frame written straight to the socket then keeps its place.
    queued: Arc<AtomicUsize>,
}

impl Outbox {
    /// Queues a frame for the writer.
    pub fn try_send(&self, b: Bytes) -> Result<(), TrySendError<Bytes>> {
        let Some(d) = &self.0.direct else {
            return self.0.tx.try_send(b);
        };
        d.queued.fetch_add(1, Ordering::AcqRel);
        let r = self.0.tx.try_send(b);
        if r.is_err() {
            d.queued.fetch_sub(1, Ordering::AcqRel);
        }
        r
    }

    /// Sends a frame: a watch event straight to the socket if nothing is
    /// queued before it (and the socket takes it); otherwise, or for what
    /// the socket did not take, through the queue.
    pub fn send(&self, b: Bytes) -> Result<(), TrySendError<Bytes>> {
        // A reply frame: length, then the ReplyHeader's xid.
        let event = b.get(4..8) == Some(&xid::NOTIFICATION.to_be_bytes()[..]);
        if let Some(d) = self.0.direct.as_ref().filter(|_| event) {
            if d.queued.load(Ordering::Acquire) == 0 {
                match d.sock.try_write(&b) {
                    Ok(n) if n == b.len() => return Ok(()),
                    Ok(n) => return self.try_send(b.slice(n..)),
                    // Full, or failing: the writer waits or finds out.
                    Err(_) => {}
                }
            }
        }
        self.try_send(b)
    }
}

/// The writer task's side of a plain socket the pipeline may also write
/// (`Outbox::send`). The write side is shut when the last holder drops
/// the half, after the writer's last frame.
struct SharedWrite(Arc<OwnedWriteHalf>);

impl AsyncWrite for SharedWrite {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let sock: &TcpStream = (*self.0).as_ref();
        loop {
            ready!(sock.poll_write_ready(cx))?;
            match sock.try_write(buf) {
                // try_write cleared the readiness: wait for it again.
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                r => return Poll::Ready(r),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Open connections per client address (maxClientCnxns).
type PerIp = Arc<Mutex<HashMap<IpAddr, usize>>>;

struct IpSlot {
    map: PerIp,
    ip: IpAddr,
}

impl Drop for IpSlot {
    fn drop(&mut self) {
        let mut m = self.map.lock().expect("per-ip lock");
        if let Some(n) = m.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.ip);
            }
        }
    }
}

/// How long a client on the secure port has to finish its TLS handshake
/// (Netty's SslHandler default, as ZooKeeper uses it).
const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Accepts clients until the listener fails or the task is dropped; with
/// `tls`, each connection first completes a TLS handshake (secureClientPort).
pub async fn accept_loop(
    listener: TcpListener,
    core: mpsc::Sender<Msg>,
    cfg: Arc<Config>,
    adm: Arc<Admission>,
    tls: Option<Arc<Tls>>,
) {
    let per_ip: PerIp = Arc::default();
    loop {
        let (stream, remote) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // Out of descriptors and the like: back off, keep serving.
                warn!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let slot = {
            let mut m = per_ip.lock().expect("per-ip lock");
            let n = m.entry(remote.ip()).or_insert(0);
            if cfg.max_client_cnxns > 0 && *n >= cfg.max_client_cnxns {
                warn!(
                    "too many connections from {} - max is {}",
                    remote.ip(),
                    cfg.max_client_cnxns
                );
                cfg.metrics.connection_rejected.inc();
                continue;
            }
            *n += 1;
            IpSlot {
                map: per_ip.clone(),
                ip: remote.ip(),
            }
        };
        if tls.is_none() {
            // ZooKeeper counts every connection without TLS, by origin.
            match remote.ip().is_loopback() {
                true => cfg.metrics.non_mtls_local_conn_count.inc(),
                false => cfg.metrics.non_mtls_remote_conn_count.inc(),
            }
        } else if !adm.handshake_allowed() {
            warn!("closing connection from {remote}: too many TLS handshakes under way");
            continue;
        }
        let core = core.clone();
        let cfg = cfg.clone();
        let adm = adm.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let id = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
            let r = match tls {
                None => serve(id, stream, remote, core.clone(), cfg, adm).await,
                Some(tls) => serve_tls(id, stream, remote, core.clone(), cfg, adm, &tls).await,
            };
            if let Err(e) = r {
                debug!("connection {id} from {remote}: {e}");
            }
            let _ = core.send(Msg::Closed { conn: id }).await;
        });
    }
}

/// Reads until `buf` holds a whole frame; returns its payload. `Ok(None)` on
/// a clean EOF between frames.
fn is_reset(e: &anyhow::Error) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset)
}

async fn read_frame(
    rd: &mut (impl AsyncReadExt + Unpin),
    buf: &mut BytesMut,
    max: usize,
    adm: Option<&Admission>,
) -> anyhow::Result<Option<Bytes>> {
    let mut sized = false;
    loop {
        if let Some(len) = jute::frame::check(buf, max)? {
            buf.advance(4);
            return Ok(Some(buf.split_to(len).freeze()));
        }
        if let (Some(adm), false, Some(head)) = (adm, sized, buf.get(..4)) {
            // Its length is known: refuse it before buffering its bytes.
            let len = u32::from_be_bytes(head.try_into().expect("4 bytes")) as usize;
            if !adm.large_fits(len) {
                anyhow::bail!("rejecting large request of {len} bytes (largeRequestMaxBytes)");
            }
            sized = true;
        }
        let n = match rd.read_buf(buf).await {
            // A TLS peer that closes without close_notify, between frames.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && buf.is_empty() => 0,
            r => r?,
        };
        if n == 0 {
            if buf.is_empty() {
                return Ok(None);
            }
            anyhow::bail!("connection closed inside a frame");
        }
    }
}

async fn serve(
    id: ConnId,
    stream: TcpStream,
    remote: SocketAddr,
    core: mpsc::Sender<Msg>,
    cfg: Arc<Config>,
    adm: Arc<Admission>,
) -> anyhow::Result<()> {
    let _ = stream.set_nodelay(true);
    let (rd, wr) = stream.into_split();
    let sock = Arc::new(wr);
    let direct = Direct {
        sock: sock.clone(),
        queued: Arc::default(),
    };
    let wr = SharedWrite(sock);
    serve_conn(id, rd, wr, Some(direct), remote, core, cfg, adm, Vec::new()).await
}

/// A secure-port connection: the TLS handshake (the client certificate
/// checked per ssl.clientAuth), then the same protocol as a plain one, with
/// the certificate's x509 identity.
async fn serve_tls(
    id: ConnId,
    stream: TcpStream,
    remote: SocketAddr,
    core: mpsc::Sender<Msg>,
    cfg: Arc<Config>,
    adm: Arc<Admission>,
    tls: &Tls,
) -> anyhow::Result<()> {
    let _ = stream.set_nodelay(true);
    let handshaking = cfg.metrics.tls_handshake_started();
    let stream =
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await {
            Ok(Ok(s)) => s,
            Ok(Err(e)) => {
                warn!("unsuccessful TLS handshake with {remote}: {e}");
                cfg.metrics.unsuccessful_handshake.inc();
                return Ok(());
            }
            Err(_) => {
                warn!("TLS handshake with {remote} timed out");
                cfg.metrics.unsuccessful_handshake.inc();
                return Ok(());
            }
        };
    drop(handshaking);
    let auth = tls.peer_ids(stream.get_ref().1);
    for a in &auth {
        info!(
            "authenticated id '{}' for scheme '{}' ({remote})",
            a.id, a.scheme
        );
    }
    let (rd, wr) = tokio::io::split(stream);
    let _secure = SecureMark::new(id);
    serve_conn(id, rd, wr, None, remote, core, cfg, adm, auth).await
}

/// `zookeeper.nio.sessionlessCnxnTimeout` (ms, default 10 s, as ZooKeeper's).
fn sessionless_timeout(cfg: &Config) -> Duration {
    let ms = cfg
        .prop("zookeeper.nio.sessionlessCnxnTimeout")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .filter(|&ms| ms > 0)
        .unwrap_or(10_000);
    Duration::from_millis(ms)
}

#[allow(clippy::too_many_arguments)]
async fn serve_conn<R, W>(
    id: ConnId,
    mut rd: R,
    mut wr: W,
    direct: Option<Direct>,
    remote: SocketAddr,
    core: mpsc::Sender<Msg>,
    cfg: Arc<Config>,
    adm: Arc<Admission>,
    auth: Vec<Id>,
) -> anyhow::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let mut buf = BytesMut::with_capacity(8192);
    // Until it asks for a session (or sends a four-letter word) a
    // connection has no session timeout to end it: ZooKeeper closes such
    // connections after zookeeper.nio.sessionlessCnxnTimeout.
    let limit = sessionless_timeout(&cfg);
    let deadline = tokio::time::Instant::now() + limit;
    let sessionless = || -> anyhow::Result<()> {
        cfg.metrics.sessionless_connections_expired.inc();
        info!(
            "closing connection from {remote}: no request within {} ms",
            limit.as_millis()
        );
        Ok(())
    };
    while buf.len() < 4 {
        match tokio::time::timeout_at(deadline, rd.read_buf(&mut buf)).await {
            Err(_) => return sessionless(),
            Ok(r) => {
                if r? == 0 {
                    return Ok(());
                }
            }
        }
    }
    if fourlw::is_command(&buf[..4]) {
        let cmd = String::from_utf8_lossy(&buf[..4]).into_owned();
        let text = if cmd == "stmk" && cfg.four_letter_words.contains(&cmd) {
            // The new mask follows the word: a Java long, big-endian.
            while buf.len() < 12 {
                match tokio::time::timeout_at(deadline, rd.read_buf(&mut buf)).await {
                    Err(_) => return sessionless(),
                    Ok(r) => {
                        if r? == 0 {
                            warn!("closing connection from {remote}: stmk without a mask");
                            return Ok(());
                        }
                    }
                }
            }
            let mask = i64::from_be_bytes(buf[4..12].try_into().expect("8 bytes"));
            cfg.trace.set(mask as u64);
            mask.to_string()
        } else if cfg.four_letter_words.contains(&cmd) {
            let (tx, rx) = oneshot::channel();
            core.send(Msg::Command {
                cmd: cmd.clone(),
                reply: tx,
            })
            .await?;
            rx.await?
        } else {
            format!("{cmd} is not executed because it is not in the whitelist.\n")
        };
        wr.write_all(text.as_bytes()).await?;
        wr.shutdown().await?;
        return Ok(());
    }

    let max = cfg.max_buffer;
    let opening = tokio::time::timeout_at(deadline, read_frame(&mut rd, &mut buf, max, None)).await;
    let frame = match opening {
        Err(_) => return sessionless(),
        Ok(Ok(Some(f))) => f,
        Ok(Ok(None)) => return Ok(()),
        Ok(Err(e)) => {
            warn!("closing connection from {remote}: {e}");
            return Ok(());
        }
    };
    let req = match ConnectRequest::read(&mut Reader::new(frame.clone())) {
        Ok(r) => r,
        Err(e) => {
            warn!("closing connection from {remote}: bad connect request: {e}");
            return Ok(());
        }
    };
    // Clients before 3.4 send no readOnly byte and expect none back.
    let legacy = frame.len() < 28 + req.passwd.len() + 1;
    if !adm.connect_allowed(req.session_id != 0) {
        warn!(
            "closing connection from {remote}: connection throttled (connection_throttle_tokens)"
        );
        cfg.metrics.connection_rejected.inc();
        return Ok(());
    }
    // What the pipeline will grant (for the throttler's staleness check).
    let session_timeout = Duration::from_millis(
        req.time_out
            .max(cfg.min_session_timeout)
            .min(cfg.max_session_timeout)
            .max(0) as u64,
    );
    let (tx, rx) = mpsc::channel::<Bytes>(OUTBOX_FRAMES);
    let queued = direct.as_ref().map(|d| d.queued.clone());
    core.send(Msg::Connect {
        conn: id,
        remote,
        req,
        legacy,
        tx: Outbox(Arc::new(OutboxParts { tx, direct })),
        auth,
    })
    .await?;
    let mut writer = tokio::spawn(write_loop(wr, rx, queued));

    loop {
        let f = tokio::select! {
            f = read_frame(&mut rd, &mut buf, max, Some(&adm)) => f,
            _ = &mut writer => return Ok(()),
        };
        let frame = match f {
            Ok(Some(f)) => f,
            Ok(None) => {
                // The client closed its end (ZooKeeper's handleFailedRead).
                cfg.metrics.connection_drop_count.inc();
                return Ok(());
            }
            Err(e) if is_reset(&e) => {
                // Closed with our replies unread: dropped all the same.
                cfg.metrics.connection_drop_count.inc();
                debug!("connection from {remote} reset by the client");
                return Ok(());
            }
            Err(e) => {
                warn!("closing connection from {remote}: {e}");
                return Ok(());
            }
        };
        let received = Instant::now();
        let len = frame.len();
        cfg.metrics.bytes_received_count.add(len as u64 + 4);
        let mut r = Reader::new(frame);
        let hdr = match RequestHeader::read(&mut r) {
            Ok(h) => h,
            Err(e) => {
                warn!("closing connection from {remote}: bad request header: {e}");
                return Ok(());
            }
        };
        let body = match Request::read(hdr.op, &mut r) {
            // MultiOperationRecord refuses create flags naming no CreateMode.
            Ok(Request::Multi(ops))
                if ops.iter().any(|o| {
                    matches!(o, MultiOp::Create(_, c) if CreateMode::from_flag(c.flags).is_none())
                }) =>
            {
                Body::Malformed("invalid create flags in a multi".into())
            }
            Ok(req) => Body::Ok(req),
            // An unknown op inside a multi (even the multi's own code) makes
            // a malformed multi, not an unknown request.
            Err(DecodeError::UnknownType(t))
                if t == hdr.op && hdr.op != op::MULTI && hdr.op != op::MULTI_READ =>
            {
                Body::UnknownOp
            }
            Err(e) => Body::Malformed(e.to_string()),
        };
        let (ticket, throttled) = match adm.admit(hdr.op, len, received, session_timeout).await {
            Some(Admit::Go { ticket, throttled }) => (ticket, throttled),
            Some(Admit::Drop) => {
                warn!("closing connection from {remote}: request waited past its session timeout");
                return Ok(());
            }
            None => {
                warn!("closing connection from {remote}: rejecting large request of {len} bytes (largeRequestMaxBytes)");
                return Ok(());
            }
        };
        core.send(Msg::Request {
            conn: id,
            xid: hdr.xid,
            op: hdr.op,
            body,
            received,
            ticket,
            throttled,
        })
        .await?;
    }
}

/// Writes queued frames, coalescing what is ready into one write; counts
/// them off `queued` once written (see `Outbox`). Ends when the pipeline
/// drops the connection (after its last frame) or on error.
async fn write_loop(
    mut wr: impl AsyncWrite + Unpin,
    mut rx: mpsc::Receiver<Bytes>,
    queued: Option<Arc<AtomicUsize>>,
) {
    let mut out = BytesMut::with_capacity(64 * 1024);
    while let Some(b) = rx.recv().await {
        out.extend_from_slice(&b);
        let mut frames = 1;
        while out.len() < 256 * 1024 {
            match rx.try_recv() {
                Ok(b) => {
                    out.extend_from_slice(&b);
                    frames += 1;
                }
                Err(_) => break,
            }
        }
        if let Err(e) = wr.write_all(&out).await {
            debug!("write failed: {e}");
            return;
        }
        out.clear();
        if let Some(q) = &queued {
            q.fetch_sub(frames, Ordering::AcqRel);
        }
    }
    let _ = wr.shutdown().await;
}

/// Binds the client port.
pub async fn bind(cfg: &Config) -> anyhow::Result<TcpListener> {
    let ip = cfg
        .client_port_address
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let addr = SocketAddr::new(ip, cfg.client_port);
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind client port {addr}: {e}"))?;
    info!("binding to port {}", l.local_addr()?);
    Ok(l)
}

/// Binds the secure client port: secureClientPortAddress, else (as in
/// ZooKeeper, whatever clientPortAddress says) every address.
pub async fn bind_secure(cfg: &Config, port: u16) -> anyhow::Result<TcpListener> {
    let ip = cfg
        .secure_client_port_address
        .unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let addr = SocketAddr::new(ip, port);
    let l = TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot bind secure client port {addr}: {e}"))?;
    info!("binding to secure port {}", l.local_addr()?);
    Ok(l)
}
