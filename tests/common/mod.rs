//! Shared helpers for the end-to-end tests: an in-process server on an
//! ephemeral loopback port, `zookeeper-client` connections to it, and a raw
//! jute connection for requests the client library will not send.

#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use jute::codec::{Reader, Record};
use jute::proto::{ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader, WatcherEvent};
use server::{Config, Server};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zookeeper_client as zk;

/// How long a test waits for something that should happen promptly.
pub const WAIT: Duration = Duration::from_secs(10);

/// Awaits `f`, failing the test if it takes longer than [`WAIT`].
pub async fn within<T>(what: &str, f: impl Future<Output = T>) -> T {
    match tokio::time::timeout(WAIT, f).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {WAIT:?} waiting for {what}"),
    }
}

/// Sends the servers' log (info, or `RUST_LOG`) to the test's captured
/// output, which cargo test prints only when the test fails. Threads a test
/// starts (its runtime's workers) inherit its capture.
pub fn log_to_test_output() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_test_writer()
        .with_ansi(false)
        .try_init();
}

/// Polls `check` every 20ms until it yields a value, for at most `limit`.
pub async fn poll_until<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        if tokio::time::Instant::now() >= deadline {
            panic!("gave up after {limit:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A server running in this test's runtime, with its own data directory.
pub struct TestServer {
    server: Server,
    pub addr: SocketAddr,
    /// While true, the server's txn-log thread waits before each fsync
    /// (`Config::hold_fsync`).
    pub hold_fsync: std::sync::Arc<std::sync::atomic::AtomicBool>,
    _dir: TempDir,
}

impl TestServer {
    /// A server with tickTime=2000 (sessions of 4s..40s).
    pub async fn start() -> TestServer {
        TestServer::with(&[], &[]).await
    }

    /// A server with extra zoo.cfg lines (later keys win) and `-D` properties.
    pub async fn with(cfg_lines: &[&str], defines: &[(&str, &str)]) -> TestServer {
        TestServer::member(None, cfg_lines, defines).await
    }

    /// As [`TestServer::with`]; with `Some(id)`, data/myid holds the id (an
    /// ensemble member: the lines then carry its `server.N` entries).
    pub async fn member(
        myid: Option<u64>,
        cfg_lines: &[&str],
        defines: &[(&str, &str)],
    ) -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        if let Some(id) = myid {
            let data = dir.path().join("data");
            std::fs::create_dir_all(&data).expect("data dir");
            std::fs::write(data.join("myid"), format!("{id}\n")).expect("write myid");
        }
        let mut text = format!(
            "tickTime=2000\nclientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\ndataDir={}\n",
            dir.path().join("data").display()
        );
        for l in cfg_lines {
            text.push_str(l);
            text.push('\n');
        }
        let path = dir.path().join("zoo.cfg");
        std::fs::write(&path, text).expect("write zoo.cfg");
        let defines: Vec<(String, String)> = defines
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cfg = Config::load(Some(&path), &defines).expect("config");
        let hold_fsync = cfg.hold_fsync.clone();
        let server = Server::start(cfg).await.expect("server starts");
        let addr = server.addr;
        assert!(addr.ip().is_loopback(), "server bound to {addr}");
        assert_ne!(addr.port(), 0);
        TestServer {
            server,
            addr,
            hold_fsync,
            _dir: dir,
        }
    }

    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// A session with a 6s timeout request (the server clamps it).
    pub async fn client(&self) -> zk::Client {
        self.connect(connector()).await
    }

    pub async fn connect(&self, c: zk::Connector) -> zk::Client {
        within("client connection", c.connect(&self.connect_string()))
            .await
            .expect("client connects")
    }

    /// A connection attempt whose failure the test inspects.
    pub async fn try_connect(&self, c: zk::Connector) -> Result<zk::Client, zk::Error> {
        within("a connection attempt", c.connect(&self.connect_string())).await
    }

    pub async fn stop(self) {
        self.server.stop().await;
    }
}

/// mntr's rows, keys without the zk_ prefix (the server needs mntr in its
/// 4lw.commands.whitelist).
pub async fn mntr(s: &TestServer) -> std::collections::HashMap<String, String> {
    let mut raw = TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(b"mntr").await.unwrap();
    let mut text = String::new();
    within("mntr", raw.read_to_string(&mut text)).await.unwrap();
    text.lines()
        .filter_map(|l| l.split_once('\t'))
        .map(|(k, v)| (k.trim_start_matches("zk_").to_owned(), v.to_owned()))
        .collect()
}

pub fn connector() -> zk::Connector {
    zk::Client::connector().with_session_timeout(Duration::from_secs(6))
}

pub fn persistent() -> zk::CreateOptions<'static> {
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all())
}

pub fn ephemeral() -> zk::CreateOptions<'static> {
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all())
}

pub fn mode(m: zk::CreateMode) -> zk::CreateOptions<'static> {
    m.with_acls(zk::Acls::anyone_all())
}

/// Prefixes a payload with its 4-byte big-endian length.
pub fn frame(payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(payload.len() + 4);
    b.extend_from_slice(&(payload.len() as i32).to_be_bytes());
    b.extend_from_slice(payload);
    b
}

pub fn connect_request(timeout_ms: i32) -> ConnectRequest {
    ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: timeout_ms,
        session_id: 0,
        passwd: Bytes::from_static(&[0u8; 16]),
        read_only: false,
    }
}

/// A hand-driven client connection speaking jute frames.
pub struct Raw {
    pub stream: TcpStream,
    pub session_id: i64,
    pub timeout: i32,
    pub passwd: Bytes,
    buf: BytesMut,
    xid: i32,
}

impl Raw {
    /// Connects and completes the handshake.
    pub async fn connect(addr: SocketAddr) -> Raw {
        let (raw, resp) = Raw::handshake(addr, connect_request(30_000)).await;
        assert_ne!(resp.session_id, 0, "session established");
        raw
    }

    /// Connects and sends `req`; returns the connection and the answer.
    pub async fn handshake(addr: SocketAddr, req: ConnectRequest) -> (Raw, ConnectResponse) {
        let mut raw = Raw::open(addr).await;
        raw.send(&req.to_bytes()).await;
        let f = raw.read_frame().await.expect("connect response");
        let resp = ConnectResponse::read(&mut Reader::new(f)).expect("decodes");
        raw.session_id = resp.session_id;
        raw.timeout = resp.time_out;
        raw.passwd = resp.passwd.clone();
        (raw, resp)
    }

    /// Resumes an existing session on a new connection.
    pub async fn resume(
        addr: SocketAddr,
        session_id: i64,
        passwd: Bytes,
    ) -> (Raw, ConnectResponse) {
        let mut req = connect_request(30_000);
        req.session_id = session_id;
        req.passwd = passwd;
        Raw::handshake(addr, req).await
    }

    /// A TCP connection with no handshake yet.
    pub async fn open(addr: SocketAddr) -> Raw {
        let stream = within("tcp connect", TcpStream::connect(addr))
            .await
            .expect("tcp connect");
        Raw::from_stream(stream)
    }

    /// Wraps a stream the test drives by hand.
    pub fn from_stream(stream: TcpStream) -> Raw {
        Raw {
            stream,
            session_id: 0,
            timeout: 0,
            passwd: Bytes::new(),
            buf: BytesMut::new(),
            xid: 0,
        }
    }

    /// Sends one frame with `payload`.
    pub async fn send(&mut self, payload: &[u8]) {
        self.stream
            .write_all(&frame(payload))
            .await
            .expect("write frame");
    }

    /// Reads one frame; `None` once the server has closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        within("a frame from the server", async {
            loop {
                if self.buf.len() >= 4 {
                    let len = i32::from_be_bytes(self.buf[..4].try_into().unwrap());
                    assert!(len >= 0, "negative frame length from server");
                    let len = len as usize;
                    if self.buf.len() >= 4 + len {
                        self.buf.advance(4);
                        return Some(self.buf.split_to(len).freeze());
                    }
                }
                match self.stream.read_buf(&mut self.buf).await {
                    Ok(0) | Err(_) => return None,
                    Ok(_) => {}
                }
            }
        })
        .await
    }

    /// True once the server closes the connection (reading only EOF,
    /// after any frames still queued, which are returned).
    pub async fn closed(&mut self) -> Vec<Bytes> {
        let mut frames = Vec::new();
        while let Some(f) = self.read_frame().await {
            frames.push(f);
        }
        frames
    }

    pub fn next_xid(&mut self) -> i32 {
        self.xid += 1;
        self.xid
    }

    /// Sends a request and returns the reply header and body, skipping
    /// watch notifications.
    pub async fn request(&mut self, op: i32, body: &[u8]) -> (ReplyHeader, Bytes) {
        let (_, h, b) = self.request_with_events(op, body).await;
        (h, b)
    }

    /// Sends a request; returns the watch notifications that arrived before
    /// its reply, then the reply header and body.
    pub async fn request_with_events(
        &mut self,
        op: i32,
        body: &[u8],
    ) -> (Vec<WatcherEvent>, ReplyHeader, Bytes) {
        let xid = self.next_xid();
        let mut b = BytesMut::new();
        RequestHeader { xid, op }.write(&mut b);
        b.put_slice(body);
        self.send(&b).await;
        let mut events = Vec::new();
        loop {
            let f = self.read_frame().await.expect("reply before close");
            let mut r = Reader::new(f);
            let h = ReplyHeader::read(&mut r).expect("reply header");
            if h.xid == -1 {
                assert_eq!(h.zxid, -1, "notifications carry zxid -1");
                events.push(WatcherEvent::read(&mut r).expect("watcher event"));
                continue;
            }
            assert_eq!(h.xid, xid, "reply for our request");
            return (events, h, Bytes::copy_from_slice(r.rest()));
        }
    }

    /// The notifications the server sent since the last request: a ping
    /// (FIFO order puts every earlier notification before its reply).
    pub async fn events(&mut self) -> Vec<WatcherEvent> {
        let xid = -2;
        let mut b = BytesMut::new();
        RequestHeader {
            xid,
            op: jute::consts::op::PING,
        }
        .write(&mut b);
        self.send(&b).await;
        let mut events = Vec::new();
        loop {
            let f = self.read_frame().await.expect("ping reply before close");
            let mut r = Reader::new(f);
            let h = ReplyHeader::read(&mut r).expect("reply header");
            if h.xid == -1 {
                events.push(WatcherEvent::read(&mut r).expect("watcher event"));
                continue;
            }
            assert_eq!(h.xid, xid, "ping reply");
            return events;
        }
    }

    /// The error code of a request.
    pub async fn err_of(&mut self, op: i32, body: &impl Record) -> i32 {
        self.request(op, &body.to_bytes()).await.0.err
    }
}
