//! Quorum-port connections: QuorumPackets as jute records back to back
//! (no frame length, as BinaryOutputArchive writes them), on a blocking
//! socket with a reader and a writer thread. The reader turns a SNAP and
//! the database streamed after it into one message.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use jute::codec::{Record, Writer};
use jute::data::Id;
use jute::quorum::QuorumPacket;
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::{LinkId, QMsg};
use crate::core::Msg;

/// Packets queued towards one peer before it counts as stalled.
const LINK_QUEUE: usize = 1 << 16;

/// Most auth ids a packet may carry.
const MAX_AUTH_IDS: i32 = 1024;

/// A quorum link's socket: TCP, or the local end of a TLS connection's
/// bridge (`secure::bridge`).
#[derive(Debug)]
pub enum Sock {
    Tcp(TcpStream),
    Local(UnixStream),
}

impl Sock {
    pub fn try_clone(&self) -> std::io::Result<Sock> {
        Ok(match self {
            Sock::Tcp(s) => Sock::Tcp(s.try_clone()?),
            Sock::Local(s) => Sock::Local(s.try_clone()?),
        })
    }

    pub fn shutdown(&self, how: Shutdown) -> std::io::Result<()> {
        match self {
            Sock::Tcp(s) => s.shutdown(how),
            Sock::Local(s) => s.shutdown(how),
        }
    }

    fn set_read_timeout(&self, d: Option<Duration>) -> std::io::Result<()> {
        match self {
            Sock::Tcp(s) => s.set_read_timeout(d),
            Sock::Local(s) => s.set_read_timeout(d),
        }
    }
}

impl Read for Sock {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.read(buf),
            Sock::Local(s) => s.read(buf),
        }
    }
}

impl Write for Sock {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sock::Tcp(s) => s.write(buf),
            Sock::Local(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Sock::Tcp(s) => s.flush(),
            Sock::Local(s) => s.flush(),
        }
    }
}

/// A connection's sending side, and a handle to change its read timeout.
#[derive(Debug)]
pub struct Link {
    pub tx: mpsc::Sender<Batch>,
    pub sock: Sock,
    /// What the writer has yet to write (for the leader's queue figures).
    pub backlog: Arc<Backlog>,
    /// The peer's address, for an accepted learner (admin `observers`).
    pub remote: Option<std::net::SocketAddr>,
}

impl Link {
    /// The link as the pipeline keeps it: an outbox to its writer, the
    /// socket (timeouts, shutdown) and, if accepted, the peer's address.
    pub fn split(self) -> (Outbox, Sock, Option<std::net::SocketAddr>) {
        (Outbox::new(self.tx, self.backlog), self.sock, self.remote)
    }
}

/// What admin `observers` tells of an accepted learner's link, besides its
/// outbox's figures (LearnerHandler.getLearnerHandlerInfo).
#[derive(Debug)]
pub struct PeerStats {
    pub remote: Option<std::net::SocketAddr>,
    /// Wall-clock ms when it connected.
    pub established_ms: i64,
    pub received: u64,
    pub requests: u64,
}

impl PeerStats {
    /// LearnerHandler.getLearnerHandlerInfo's map for the learner `sid`
    /// sent to through `out`.
    pub fn info(&self, sid: u64, out: &Outbox) -> serde_json::Value {
        let (sent, queued, queued_bytes, last_zxid) = out.sent();
        serde_json::json!({
            // Java's InetSocketAddress.toString: "/127.0.0.1:1234".
            "remote_socket_address": self.remote.map_or("<null>".into(), |a| format!("/{a}")),
            "sid": sid,
            "established": self.established_ms,
            "queued_packets": queued,
            "queued_packets_size": queued_bytes,
            "packets_received": self.received,
            "packets_sent": sent,
            "requests": self.requests,
            "last_zxid": last_zxid,
        })
    }

    /// `orst` (resetObserverConnectionStats).
    pub fn reset(&mut self, out: &mut Outbox) {
        self.received = 0;
        self.requests = 0;
        out.reset_sent();
    }

    pub fn new(remote: Option<std::net::SocketAddr>) -> PeerStats {
        PeerStats {
            remote,
            established_ms: crate::core::wall_ms(),
            received: 0,
            requests: 0,
        }
    }
}

/// What a link's writer takes: whole packets, counted.
#[derive(Debug)]
pub struct Batch {
    bytes: Bytes,
    packets: u64,
    /// On the hand-over that follows each 1000th packet: when (the
    /// marker packets of Apache's LearnerHandler).
    marked: Option<Instant>,
}

/// Packets handed to a link's writer and not yet written, and how long
/// marked batches waited to be taken.
#[derive(Debug, Default)]
pub struct Backlog {
    packets: AtomicU64,
    bytes: AtomicU64,
    waits: Mutex<Vec<u64>>,
}

/// Marker waits kept until the pipeline reads them (links whose figures
/// nobody reads keep no more).
const MAX_WAITS: usize = 64;

/// A marker every this many packets, as LearnerHandler's.
const MARKER_INTERVAL: u64 = 1000;

/// Quorum packet types run from 1 (REQUEST) to 19 (INFORMANDACTIVATE);
/// a little room above.
const MAX_PACKET_TYPE: i32 = 32;

/// Packets towards one peer, gathered while the pipeline handles a batch of
/// messages and handed to the link's writer thread as one buffer by
/// [`Outbox::flush`]: one wake-up and one write per batch instead of per
/// packet (a leader sends each follower a PROPOSAL and a COMMIT per write).
#[derive(Debug)]
pub struct Outbox {
    tx: mpsc::Sender<Batch>,
    buf: BytesMut,
    /// Packets in `buf`.
    in_buf: u64,
    /// Buffers to hand over before `buf`, with their packet counts: a
    /// large packet (a SNAP's database) goes as it is rather than copied
    /// into `buf`.
    ready: Vec<(Bytes, u64)>,
    /// Packets pushed ever, and whether the next hand-over is marked.
    pushed: u64,
    mark: bool,
    backlog: Arc<Backlog>,
    /// The writer's backlog (packets) at the last hand-over, until read.
    queued_at_flush: Option<u64>,
    /// The zxid of the last packet pushed that had one.
    last_zxid: i64,
    /// Packets written before the last stat reset.
    sent_base: u64,
}

/// Packets at least this big are not copied into the batch buffer.
const BIG: usize = 64 * 1024;

/// The first allocation of a batch buffer: the pipeline's batch of 64
/// messages forwards up to about this much at 1 KiB per write.
const BATCH_START: usize = 64 * 1024;

/// The writer is [`LINK_QUEUE`] batches behind: the peer is not reading.
#[derive(Debug)]
pub struct Stalled;

impl Outbox {
    pub fn new(tx: mpsc::Sender<Batch>, backlog: Arc<Backlog>) -> Outbox {
        Outbox {
            tx,
            buf: BytesMut::new(),
            in_buf: 0,
            ready: Vec::new(),
            pushed: 0,
            mark: false,
            backlog,
            queued_at_flush: None,
            last_zxid: -1,
            sent_base: 0,
        }
    }

    /// `orst`: packets sent count from now, and no last zxid.
    pub fn reset_sent(&mut self) {
        self.sent_base += self.sent().0;
        self.last_zxid = -1;
    }

    /// (Packets written, packets and bytes still to write, the last zxid
    /// sent) once the outbox has been flushed: LearnerHandler's
    /// packets_sent, queued_packets, queued_packets_size, last_zxid.
    pub fn sent(&self) -> (u64, u64, u64, i64) {
        let queued = self.backlog.packets.load(Ordering::Relaxed);
        let unflushed = self.in_buf + self.ready.iter().map(|(_, n)| n).sum::<u64>();
        let sent = self
            .pushed
            .saturating_sub(queued + unflushed + self.sent_base);
        let bytes = self.backlog.bytes.load(Ordering::Relaxed);
        (sent, queued, bytes, self.last_zxid)
    }

    pub fn push(&mut self, packet: &Bytes) {
        // A packet is its type (a small number), then its zxid; what
        // follows a SNAP is the database's stream, not a packet.
        let head = packet
            .get(..12)
            .map(|h| (i32::from_be_bytes(h[..4].try_into().expect("4 bytes")), h));
        let count = match head {
            Some((t, h)) if (1..=MAX_PACKET_TYPE).contains(&t) => {
                let z = i64::from_be_bytes(h[4..12].try_into().expect("8 bytes"));
                if z > 0 {
                    self.last_zxid = z;
                }
                // The first packet and every 1000th after it, as
                // LearnerHandler.
                if self.pushed.is_multiple_of(MARKER_INTERVAL) {
                    self.mark = true;
                }
                self.pushed += 1;
                1
            }
            _ => 0,
        };
        if packet.len() >= BIG {
            self.buf_to_ready();
            self.ready.push((packet.clone(), count));
        } else {
            if self.buf.is_empty() {
                // A batch is often many packets: start it big rather than
                // grow it (each growth a realloc and a copy).
                self.buf.reserve(BATCH_START.max(packet.len()));
            }
            self.buf.extend_from_slice(packet);
            self.in_buf += count;
        }
    }

    fn buf_to_ready(&mut self) {
        if !self.buf.is_empty() {
            self.ready.push((self.buf.split().freeze(), self.in_buf));
            self.in_buf = 0;
        }
    }

    /// (The writer's backlog in packets at the last hand-over, the waits
    /// of marked batches) since the last call: LearnerHandler's qp_size
    /// and qp_time.
    pub fn queue_figures(&mut self) -> (Option<u64>, Vec<u64>) {
        let waits =
            std::mem::take(&mut *self.backlog.waits.lock().unwrap_or_else(|e| e.into_inner()));
        (self.queued_at_flush.take(), waits)
    }

    /// Hands what was pushed to the writer. A peer that stopped reading is
    /// to be disconnected, as dropping packets would break the stream.
    pub fn flush(&mut self) -> Result<(), Stalled> {
        self.buf_to_ready();
        if self.ready.is_empty() {
            return Ok(());
        }
        self.queued_at_flush = Some(self.backlog.packets.load(Ordering::Relaxed));
        let mut marked = std::mem::take(&mut self.mark).then(Instant::now);
        // Returning early drops the rest of the drain, and so the rest.
        for (bytes, packets) in self.ready.drain(..) {
            self.backlog.packets.fetch_add(packets, Ordering::Relaxed);
            self.backlog
                .bytes
                .fetch_add(bytes.len() as u64, Ordering::Relaxed);
            let b = Batch {
                bytes,
                packets,
                marked: marked.take(),
            };
            match self.tx.try_send(b) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => return Err(Stalled),
                // The writer ended: the link is closing and its reader
                // reports it.
                Err(mpsc::error::TrySendError::Closed(_)) => return Ok(()),
            }
        }
        Ok(())
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// Encodes a packet for [`Link::tx`].
pub fn encode(packet_type: i32, zxid: i64, data: Bytes, auth_info: Vec<Id>) -> Bytes {
    let mut b = BytesMut::with_capacity(24 + data.len());
    QuorumPacket {
        packet_type,
        zxid,
        data,
        auth_info,
    }
    .write(&mut b);
    b.freeze()
}

/// A quorum packet whose data `write_data` serialises in place: the
/// packet's layout (type, zxid, length-prefixed data, empty authinfo) with
/// the data's length patched in after it is written.
pub fn encode_with(
    packet_type: i32,
    zxid: i64,
    size_hint: usize,
    write_data: impl FnOnce(&mut BytesMut),
) -> Bytes {
    encode_with_auth(packet_type, zxid, size_hint, &[], write_data)
}

/// [`encode_with`] with an authinfo vector (a forwarded REQUEST's).
pub fn encode_with_auth(
    packet_type: i32,
    zxid: i64,
    size_hint: usize,
    auth: &[Id],
    write_data: impl FnOnce(&mut BytesMut),
) -> Bytes {
    let mut b = BytesMut::with_capacity(24 + size_hint);
    b.put_i32(packet_type);
    b.put_i64(zxid);
    let at = b.len();
    b.put_i32(0);
    write_data(&mut b);
    let n = (b.len() - at - 4) as i32;
    b[at..at + 4].copy_from_slice(&n.to_be_bytes());
    b.put_vec(auth);
    b.freeze()
}

fn read_exact_vec<R: Read>(r: &mut R, n: usize) -> std::io::Result<Vec<u8>> {
    let mut v = vec![0u8; n];
    r.read_exact(&mut v)?;
    Ok(v)
}

fn read_i32<R: Read>(r: &mut R) -> std::io::Result<i32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(i32::from_be_bytes(b))
}

fn read_i64<R: Read>(r: &mut R) -> std::io::Result<i64> {
    let mut b = [0u8; 8];
    r.read_exact(&mut b)?;
    Ok(i64::from_be_bytes(b))
}

fn bad(msg: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, msg)
}

fn read_string<R: Read>(r: &mut R, max: usize) -> std::io::Result<String> {
    let n = read_i32(r)?;
    if n < 0 {
        return Ok(String::new());
    }
    if n as usize > max {
        return Err(bad(format!("string of {n} bytes exceeds {max}")));
    }
    String::from_utf8(read_exact_vec(r, n as usize)?).map_err(|_| bad("string is not UTF-8".into()))
}

/// Bytes a reader's arena takes at a time for packet data.
const ARENA: usize = 64 * 1024;

/// Reads `n` bytes into the front of `arena` and splits them off: packets'
/// data share one allocation a burst at a time instead of each taking a
/// zeroed one of its own (a follower reads one per proposal).
fn read_data<R: Read>(r: &mut R, n: usize, arena: &mut BytesMut) -> std::io::Result<Bytes> {
    // Empty data (a COMMIT's, an ACK's) would still hold the arena.
    if n == 0 {
        return Ok(Bytes::new());
    }
    if arena.capacity() < n {
        arena.reserve(n.max(ARENA));
    }
    arena.resize(n, 0);
    if let Err(e) = r.read_exact(&mut arena[..]) {
        arena.clear();
        return Err(e);
    }
    Ok(arena.split().freeze())
}

/// Reads one packet, every length bounded by `max` before allocating;
/// its data is taken from `arena`.
pub fn read_packet<R: Read>(
    r: &mut R,
    max: usize,
    arena: &mut BytesMut,
) -> std::io::Result<QuorumPacket> {
    let packet_type = read_i32(r)?;
    let zxid = read_i64(r)?;
    let n = read_i32(r)?;
    let data = if n < 0 {
        Bytes::new()
    } else if n as usize > max {
        return Err(bad(format!(
            "{} packet of {n} bytes exceeds the limit of {max}",
            zab::wire::packet::name(packet_type)
        )));
    } else {
        read_data(r, n as usize, arena)?
    };
    let count = read_i32(r)?;
    if count > MAX_AUTH_IDS {
        return Err(bad(format!("{count} auth ids in one packet")));
    }
    let mut auth_info = Vec::new();
    for _ in 0..count.max(0) {
        let scheme = read_string(r, 4096)?;
        let id = read_string(r, 4096)?;
        auth_info.push(Id { scheme, id });
    }
    Ok(QuorumPacket {
        packet_type,
        zxid,
        data,
        auth_info,
    })
}

/// Starts the threads of a connected quorum socket. Packets go to the
/// pipeline as [`QMsg::Packet`]; the end of the connection as
/// [`QMsg::LinkClosed`]. On a learner's side a SNAP is followed by the
/// leader's database, read here into a tree ([`QMsg::Snap`]).
pub fn spawn(
    stream: Sock,
    link: LinkId,
    core: mpsc::Sender<Msg>,
    learner_side: bool,
    opts: Opts,
) -> std::io::Result<Link> {
    start(stream, link, core, learner_side, opts, None).map(|l| l.expect("not announced"))
}

/// What every link's threads need besides their socket.
#[derive(Clone)]
pub struct Opts {
    /// The largest packet read (jute.maxbuffer and room for the header).
    pub max_packet: usize,
    pub extended_types: bool,
    /// For socket_closing_time.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
}

impl Opts {
    pub fn of(cfg: &crate::Config) -> Opts {
        Opts {
            max_packet: cfg.max_buffer + 64 * 1024,
            extended_types: cfg.extended_types,
            metrics: cfg.metrics.clone(),
        }
    }
}

/// As [`spawn`] for a learner's connection to the leader: the reader thread
/// itself hands the link to the pipeline ([`QMsg::LearnerConnected`]) before
/// its first read, so no packet can arrive ahead of the link.
pub fn spawn_announced(
    stream: Sock,
    link: LinkId,
    core: mpsc::Sender<Msg>,
    opts: Opts,
    remote: std::net::SocketAddr,
) -> std::io::Result<()> {
    start(stream, link, core, false, opts, Some(remote)).map(|_| ())
}

/// Binds a port learners connect to (the quorum port, or a follower's
/// observerMasterPort) at `host`, or on every address with
/// quorumListenOnAllIPs.
pub fn listen(host: &str, port: u16, all: bool) -> std::io::Result<tokio::net::TcpListener> {
    let host = if all { "0.0.0.0" } else { host };
    let l = std::net::TcpListener::bind((host, port))?;
    l.set_nonblocking(true)?;
    tokio::net::TcpListener::from_std(l)
}

/// Accepts learners on `listener` until aborted: each connection (TLS and
/// SASL as the quorum's settings say) becomes a link announced to the pipeline
/// ([`QMsg::LearnerConnected`]).
pub fn accept_learners(
    listener: tokio::net::TcpListener,
    core: mpsc::Sender<Msg>,
    opts: Opts,
    setup: std::sync::Arc<super::Setup>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let Ok((s, remote)) = listener.accept().await else {
                continue;
            };
            let core = core.clone();
            let setup = setup.clone();
            let opts = opts.clone();
            // Its own task: a slow handshake holds up no one else.
            tokio::spawn(async move {
                let sock = super::secure::accept_learner(&setup, s).await;
                let r = sock.and_then(|sock| {
                    let id = super::leader::next_link();
                    spawn_announced(sock, id, core, opts, remote)
                });
                if let Err(e) = r {
                    warn!("learner connection from {remote}: {e}");
                }
            });
        }
    })
}

fn start(
    stream: Sock,
    link: LinkId,
    core: mpsc::Sender<Msg>,
    learner_side: bool,
    opts: Opts,
    accepted_from: Option<std::net::SocketAddr>,
) -> std::io::Result<Option<Link>> {
    let Opts {
        max_packet,
        extended_types,
        metrics,
    } = opts;
    if let Sock::Tcp(s) = &stream {
        s.set_nodelay(true)?;
    }
    let reader = stream.try_clone()?;
    let mut writer = stream.try_clone()?;
    let (tx, mut rx) = mpsc::channel::<Batch>(LINK_QUEUE);
    let to_core = core.clone();
    let backlog = Arc::new(Backlog::default());
    let written = backlog.clone();
    let mut handle = Some(Link {
        tx,
        sock: stream,
        backlog,
        remote: accepted_from,
    });
    // An accepted learner's link (with its address) is announced by the
    // reader thread.
    let announced = if accepted_from.is_some() {
        handle.take()
    } else {
        None
    };
    std::thread::Builder::new()
        .name(format!("quorum-read-{link}"))
        .spawn(move || {
            if let Some(conn) = announced {
                let m = Msg::Quorum(QMsg::LearnerConnected { link, conn });
                if to_core.blocking_send(m).is_err() {
                    return;
                }
            }
            let why = read_loop(
                reader,
                link,
                &to_core,
                learner_side,
                max_packet,
                extended_types,
            );
            let _ = to_core.blocking_send(Msg::Quorum(QMsg::LinkClosed { link, why }));
        })?;
    std::thread::Builder::new()
        .name(format!("quorum-write-{link}"))
        .spawn(move || {
            crate::persist::no_wakeup_preemption("quorum writer");
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, &mut writer);
            while let Some(b) = rx.blocking_recv() {
                if let Some(t) = b.marked {
                    let mut w = written.waits.lock().unwrap_or_else(|e| e.into_inner());
                    if w.len() < MAX_WAITS {
                        w.push(t.elapsed().as_millis() as u64);
                    }
                }
                if out.write_all(&b.bytes).is_err() {
                    break;
                }
                written.packets.fetch_sub(b.packets, Ordering::Relaxed);
                written
                    .bytes
                    .fetch_sub(b.bytes.len() as u64, Ordering::Relaxed);
                // Flush when nothing else is queued: batches under load.
                if rx.is_empty() && out.flush().is_err() {
                    break;
                }
            }
            let _ = out.flush();
            drop(out);
            let closing = std::time::Instant::now();
            let _ = writer.shutdown(Shutdown::Both);
            metrics.socket_closing_time.since(closing);
            debug!("quorum link {link} writer done");
        })?;
    Ok(handle)
}

fn read_loop(
    sock: Sock,
    link: LinkId,
    core: &mpsc::Sender<Msg>,
    learner_side: bool,
    max_packet: usize,
    extended_types: bool,
) -> String {
    let mut r = BufReader::with_capacity(256 * 1024, sock);
    let mut arena = BytesMut::new();
    loop {
        let pkt = match read_packet(&mut r, max_packet, &mut arena) {
            Ok(p) => p,
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                return "closed by peer".into()
            }
            Err(e) => return e.to_string(),
        };
        if learner_side && pkt.packet_type == zab::wire::packet::SNAP {
            let zxid = pkt.zxid;
            match read_snap(&mut r, zxid, max_packet, extended_types) {
                Ok(tree) => {
                    if core
                        .blocking_send(Msg::Quorum(QMsg::Snap {
                            link,
                            zxid,
                            tree: Box::new(tree),
                        }))
                        .is_err()
                    {
                        return "pipeline gone".into();
                    }
                }
                Err(e) => return format!("bad SNAP from the leader: {e}"),
            }
            continue;
        }
        // Whatever else has already arrived whole goes to the pipeline in
        // the same message: one channel send and one wake-up for a burst
        // of proposals, commits or acks, not one each. A SNAP ends the
        // burst, since what follows it is read here.
        let at = arrival(pkt.packet_type);
        let mut burst = vec![(pkt, at)];
        while burst.len() < READ_BURST {
            // A packet the buffer holds only in part, or that is bad, is
            // left to the blocking read above (which reports a bad one).
            let Some((p, used)) = buffered_packet(r.buffer(), max_packet, &mut arena) else {
                break;
            };
            if learner_side && p.packet_type == zab::wire::packet::SNAP {
                break;
            }
            r.consume(used);
            let at = arrival(p.packet_type);
            burst.push((p, at));
        }
        let m = if burst.len() == 1 {
            let (pkt, at) = burst.pop().expect("one packet");
            QMsg::Packet { link, pkt, at }
        } else {
            QMsg::Packets { link, pkts: burst }
        };
        if core.blocking_send(Msg::Quorum(m)).is_err() {
            return "pipeline gone".into();
        }
    }
}

/// Packets `read_loop` passes on in one message at most.
const READ_BURST: usize = 256;

/// Commits note their arrival (*_write_committed_time_ms); the other
/// packets need no clock.
fn arrival(packet_type: i32) -> Option<std::time::Instant> {
    use zab::wire::packet;
    matches!(
        packet_type,
        packet::COMMIT | packet::INFORM | packet::COMMITANDACTIVATE | packet::INFORMANDACTIVATE
    )
    .then(std::time::Instant::now)
}

/// The packet at the start of `buf` and the bytes it takes, if all of it is
/// there and `read_packet` accepts it.
fn buffered_packet(
    mut buf: &[u8],
    max: usize,
    arena: &mut BytesMut,
) -> Option<(QuorumPacket, usize)> {
    // Not before its data is all there: a large packet arriving in pieces
    // would otherwise allocate its size at every try.
    let n = i32::from_be_bytes(buf.get(12..16)?.try_into().ok()?);
    if n > 0 && buf.len() < 16 + n as usize {
        return None;
    }
    let whole = buf.len();
    let p = read_packet(&mut buf, max, arena).ok()?;
    Some((p, whole - buf.len()))
}

fn read_snap<R: BufRead>(
    r: &mut R,
    zxid: i64,
    max: usize,
    extended_types: bool,
) -> anyhow::Result<tree::DataTree> {
    let opts = storage::snapshot::ReadOptions {
        extended_types,
        max_buffer: max,
        extra_nodes: 0,
    };
    let (tree, r) =
        storage::snapshot::read_snapshot_stream(r, Path::new("<leader's SNAP>"), zxid, &opts)?;
    let sig = read_string(r, 64)?;
    if sig != zab::wire::SNAP_SIGNATURE {
        anyhow::bail!("missing signature after the database (got {sig:?})");
    }
    Ok(tree)
}

/// Sets how long a read may wait before the link counts as dead.
pub fn set_timeout(sock: &Sock, d: Duration) {
    let _ = sock.set_read_timeout(Some(d.max(Duration::from_millis(1))));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_with_writes_what_encode_writes() {
        let data = Bytes::from_static(b"some txn bytes");
        let want = encode(2, 0x1_0000_0005, data.clone(), vec![]);
        let got = encode_with(2, 0x1_0000_0005, 1, |w| w.put_slice(&data));
        assert_eq!(got, want);
        let empty = encode_with(4, 7, 0, |_| {});
        assert_eq!(empty, encode(4, 7, Bytes::new(), vec![]));
        let auth = vec![Id {
            scheme: "digest".into(),
            id: "u:x".into(),
        }];
        let with_auth = encode_with_auth(1, -1, 0, &auth, |w| w.put_slice(&data));
        assert_eq!(with_auth, encode(1, -1, data, auth));
    }

    #[test]
    fn a_burst_of_packets_reaches_the_pipeline_whole_and_in_order() {
        let auth = vec![Id {
            scheme: "digest".into(),
            id: "u:x".into(),
        }];
        let pkts = [
            encode(2, 0x105, Bytes::from_static(b"txn"), vec![]),
            encode(4, 0x105, Bytes::new(), auth.clone()),
            encode(3, 0x106, Bytes::from(vec![9u8; 1000]), vec![]),
        ];
        let mut arena = BytesMut::new();
        // Each packet is recognised only once all of it is there.
        for p in &pkts {
            for cut in 0..p.len() {
                assert!(
                    buffered_packet(&p[..cut], 4096, &mut arena).is_none(),
                    "cut at {cut}"
                );
            }
            assert_eq!(
                buffered_packet(p, 4096, &mut arena).map(|(q, n)| (q.packet_type, n)),
                Some((i32::from_be_bytes(p[..4].try_into().unwrap()), p.len()))
            );
        }
        // One the blocking read will refuse is left to it.
        assert!(buffered_packet(&pkts[2], 100, &mut arena).is_none());

        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let all: Vec<u8> = pkts.iter().flat_map(|p| p.iter().copied()).collect();
        ours.write_all(&all).unwrap();
        drop(ours);
        let (tx, mut rx) = mpsc::channel(8);
        let why = read_loop(Sock::Local(theirs), 1, &tx, false, 4096, false);
        assert_eq!(why, "closed by peer");
        let (mut got, mut messages) = (Vec::new(), 0);
        while let Ok(Msg::Quorum(m)) = rx.try_recv() {
            messages += 1;
            match m {
                QMsg::Packet { pkt, .. } => got.push(pkt),
                QMsg::Packets { pkts, .. } => got.extend(pkts.into_iter().map(|(p, _)| p)),
                _ => panic!("not a packet"),
            }
        }
        let types: Vec<(i32, i64)> = got.iter().map(|p| (p.packet_type, p.zxid)).collect();
        assert_eq!(types, [(2, 0x105), (4, 0x105), (3, 0x106)]);
        // Written at once, so read at once: one message for all three.
        assert_eq!(messages, 1);
        assert_eq!(got[1].auth_info, auth);
        // Data read through one arena stays each packet's own.
        assert_eq!(&got[0].data[..], b"txn");
        assert!(got[1].data.is_empty());
        assert_eq!(&got[2].data[..], &[9u8; 1000][..]);
    }

    /// A link's writer runs as SCHED_BATCH, its reader as a normal thread
    /// (see `persist::no_wakeup_preemption`).
    #[cfg(target_os = "linux")]
    #[test]
    fn a_links_writer_does_not_preempt_on_wakeup_and_its_reader_does() {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let (tx, _rx) = mpsc::channel(8);
        let opts = Opts {
            max_packet: 4096,
            extended_types: false,
            metrics: Arc::new(crate::metrics::Metrics::default()),
        };
        let (mut out, _sock, _) = spawn(Sock::Local(ours), 7, tx, false, opts)
            .unwrap()
            .split();
        // A packet through the writer: its thread is past its setup.
        out.push(&encode(5, 9, Bytes::new(), vec![]));
        out.flush().unwrap();
        let mut theirs = theirs;
        let mut arena = BytesMut::new();
        assert_eq!(read_packet(&mut theirs, 4096, &mut arena).unwrap().zxid, 9);
        let policies = |prefix: &str| crate::persist::thread_policies(|c| c.starts_with(prefix));
        let writers = policies("quorum-write-");
        assert!(!writers.is_empty());
        assert!(
            writers.iter().all(|&p| p == libc::SCHED_BATCH),
            "{writers:?}"
        );
        let readers = policies("quorum-read-");
        assert!(
            readers.iter().all(|&p| p == libc::SCHED_OTHER),
            "{readers:?}"
        );
    }

    #[test]
    fn outbox_counts_packets_not_a_snapshot_stream() {
        let (tx, mut rx) = mpsc::channel(8);
        let backlog = Arc::new(Backlog::default());
        let mut o = Outbox::new(tx, backlog.clone());
        o.push(&encode(2, 0x105, Bytes::new(), vec![]));
        o.push(&encode(15, 0x100, Bytes::new(), vec![]));
        // A database stream (its magic is no packet type) after a SNAP.
        o.push(&Bytes::from(
            b"ZKSN\0\0\0\x02\xff\xff\xff\xff rest".to_vec(),
        ));
        o.flush().unwrap();
        assert_eq!(o.queue_figures().0, Some(0));
        let (sent, queued, bytes, last) = o.sent();
        assert_eq!((sent, queued, last), (0, 2, 0x100));
        assert!(bytes > 0);
        // The first hand-over carries a marker, as LearnerHandler's first
        // packet does.
        let b = rx.try_recv().unwrap();
        assert_eq!(b.packets, 2);
        assert!(b.marked.is_some());
        // The writer took it: what it wrote counts as sent.
        backlog.packets.fetch_sub(b.packets, Ordering::Relaxed);
        assert_eq!(o.sent().0, 2);
        o.reset_sent();
        assert_eq!((o.sent().0, o.sent().3), (0, -1));
    }

    #[test]
    fn outbox_batches_small_packets_and_passes_big_ones_in_order() {
        let (tx, mut rx) = mpsc::channel(2);
        let mut o = Outbox::new(tx, Default::default());
        let big = Bytes::from(vec![7u8; BIG]);
        o.push(&Bytes::from_static(b"ab"));
        o.push(&Bytes::from_static(b"cd"));
        o.push(&big);
        o.push(&Bytes::from_static(b"ef"));
        // Three buffers, two slots: the writer is behind.
        assert!(o.flush().is_err());
        let got: Vec<Bytes> = std::iter::from_fn(|| rx.try_recv().ok().map(|b| b.bytes)).collect();
        assert_eq!(got, [Bytes::from_static(b"abcd"), big.clone()]);
        // What did not fit was dropped with the stalled link, not resent.
        o.push(&Bytes::from_static(b"gh"));
        o.flush().unwrap();
        assert_eq!(rx.try_recv().unwrap().bytes, Bytes::from_static(b"gh"));
        assert!(rx.try_recv().is_err());
        // Nothing pushed: nothing sent.
        o.flush().unwrap();
        assert!(rx.try_recv().is_err());
    }
}
