//! Test server with short sessions, and client helpers.
//!
//! By default an in-process rookeeper server; with `RECIPES_SERVER=apache`,
//! Debian's Apache ZooKeeper 3.8 (standalone, in a child JVM) instead, so the
//! same tests show the recipes are server-agnostic.

#![allow(dead_code)]

use std::future::Future;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use server::{Config, Server};
use tempfile::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
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

/// Tick of both servers: 100 ms, so a 1 s session is allowed.
const TICK_TIME_MS: u32 = 100;

/// Above the default bound (20 ticks), so that a session can outlive a
/// connection cut in the tests that need it to.
const MAX_SESSION_MS: u32 = 20_000;

/// Session timeout of clients whose session must survive a cut.
pub const LONG_SESSION: Duration = Duration::from_secs(8);

/// Classpath of Debian's Apache ZooKeeper 3.8 packaging.
const APACHE_CLASSPATH: &str = "/usr/share/java/zookeeper.jar:/usr/share/java/netty-codec.jar:\
/usr/share/java/netty-resolver.jar:/usr/share/java/servlet-api.jar:\
/usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar";

/// Bound on the JVM starting up and listening.
const APACHE_START: Duration = Duration::from_secs(30);

enum Backend {
    Rookeeper(Option<Server>),
    /// The `java` child; killed on drop.
    Apache(Child),
}

/// A test server with tickTime=100, so a 1 s session is allowed.
pub struct TestServer {
    backend: Backend,
    /// The server's own address (clients from [`TestServer::client`] go
    /// through a proxy instead).
    pub connect: String,
    /// Per-client proxies by session id: `true` cuts and refuses traffic;
    /// and the client's armed traps (see [`TestServer::lose_replies_to`]).
    proxies: Mutex<Vec<(i64, watch::Sender<bool>, Traps)>>,
    _dir: TempDir,
}

/// Whether `RECIPES_SERVER=apache` selects Apache ZooKeeper.
pub fn apache() -> bool {
    std::env::var("RECIPES_SERVER").is_ok_and(|v| v == "apache")
}

impl TestServer {
    pub async fn start() -> TestServer {
        if apache() {
            Self::start_apache().await
        } else {
            Self::start_rookeeper().await
        }
    }

    async fn start_rookeeper() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = format!(
            "tickTime={TICK_TIME_MS}\nmaxSessionTimeout={MAX_SESSION_MS}\nclientPort=0\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\ndataDir={}\n",
            dir.path().join("data").display()
        );
        let path = dir.path().join("zoo.cfg");
        std::fs::write(&path, text).expect("write zoo.cfg");
        let cfg = Config::load(Some(&path), &[]).expect("config");
        let server = Server::start(cfg).await.expect("server starts");
        let connect = server.addr.to_string();
        TestServer {
            backend: Backend::Rookeeper(Some(server)),
            connect,
            proxies: Mutex::default(),
            _dir: dir,
        }
    }

    async fn start_apache() -> TestServer {
        let dir = tempfile::tempdir().expect("temp dir");
        // Free now and below the ephemeral range, so that the other tests'
        // client connections cannot take it while the JVM starts.
        let port = bench::free_port().expect("free port");
        let data = dir.path().join("data");
        std::fs::create_dir_all(&data).expect("data dir");
        let text = format!(
            "tickTime={TICK_TIME_MS}\nmaxSessionTimeout={MAX_SESSION_MS}\ndataDir={}\nclientPort={port}\n\
             clientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
             maxClientCnxns=0\n4lw.commands.whitelist=ruok\n",
            data.display()
        );
        let log4j = dir.path().join("log4j.properties");
        std::fs::write(
            &log4j,
            "log4j.rootLogger=INFO, C\nlog4j.appender.C=org.apache.log4j.ConsoleAppender\n\
             log4j.appender.C.layout=org.apache.log4j.PatternLayout\n\
             log4j.appender.C.layout.ConversionPattern=%d{ISO8601} %-5p %c{1} - %m%n\n",
        )
        .expect("write log4j.properties");
        let cfg = dir.path().join("zoo.cfg");
        std::fs::write(&cfg, text).expect("write zoo.cfg");
        let log = dir.path().join("zookeeper.out");
        let out = std::fs::File::create(&log).expect("log file");
        let err = out.try_clone().expect("log file");
        let mut child = Command::new("java")
            .args(["-Xmx256m", "-cp", APACHE_CLASSPATH])
            .arg(format!("-Dlog4j.configuration=file:{}", log4j.display()))
            .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
            .arg(&cfg)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .expect("spawn java (Apache ZooKeeper)");
        let connect = format!("127.0.0.1:{port}");
        let deadline = Instant::now() + APACHE_START;
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("Apache ZooKeeper exited ({status}):\n{text}");
            }
            // Listening is not enough (the port opens before the database
            // loads): wait for a session to be established.
            let attempt = tokio::time::timeout(
                Duration::from_secs(2),
                zk::Client::connector()
                    .with_session_timeout(Duration::from_secs(1))
                    .connect(&connect),
            );
            if let Ok(Ok(client)) = attempt.await {
                drop(client);
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("Apache ZooKeeper not listening after {APACHE_START:?}:\n{text}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        TestServer {
            backend: Backend::Apache(child),
            connect,
            proxies: Mutex::default(),
            _dir: dir,
        }
    }

    /// A client with a 1 s session, connected through its own proxy so that
    /// [`TestServer::end_session_of`] and [`TestServer::freeze`] can cut it
    /// off.
    pub async fn client(&self) -> zk::Client {
        self.client_with(Duration::from_secs(1), Upstream::Plain)
            .await
    }

    /// A client with the given session timeout (see [`LONG_SESSION`]).
    pub async fn client_with_timeout(&self, timeout: Duration) -> zk::Client {
        self.client_with(timeout, Upstream::Plain).await
    }

    /// A client whose proxy makes the server look older than 3.6: `addWatch`
    /// is answered with UNIMPLEMENTED and the connection closed, as Apache
    /// ZooKeeper 3.5 does for an opcode it does not know (its
    /// UnimplementedRequestProcessor); everything else passes through.
    pub async fn pre_3_6_client(&self, timeout: Duration) -> zk::Client {
        self.client_with(timeout, Upstream::Pre36).await
    }

    /// A client whose proxy relays frame by frame so that
    /// [`TestServer::lose_replies_to`] can drop a reply in flight.
    pub async fn trap_client(&self, timeout: Duration) -> zk::Client {
        self.client_with(timeout, Upstream::Trap).await
    }

    /// Arms `client`'s proxy (from [`TestServer::trap_client`]): for each
    /// entry in turn, the next request with one of its opcodes and the
    /// entry's text in its bytes (a path, say) reaches the server, but its reply is dropped and the connection cut, and
    /// reconnecting is refused for `hold`. The client sees ConnectionLoss
    /// for a request the server did apply: the case where retrying a
    /// non-idempotent request would do it twice.
    pub fn lose_replies_to(&self, client: &zk::Client, traps: &[(&[i32], &str)], hold: Duration) {
        let id = client.session().id().0;
        let proxies = self.proxies.lock().unwrap();
        let (_, _, armed) = proxies
            .iter()
            .find(|(i, _, _)| *i == id)
            .expect("client was made by TestServer::trap_client");
        let mut t = armed.lock().unwrap();
        t.hold = hold;
        t.armed.extend(
            traps
                .iter()
                .map(|(ops, text)| (ops.to_vec(), text.as_bytes().to_vec())),
        );
    }

    /// Whether every trap armed on `client` has gone off.
    pub fn traps_sprung(&self, client: &zk::Client) -> bool {
        let id = client.session().id().0;
        let proxies = self.proxies.lock().unwrap();
        let (_, _, traps) = proxies.iter().find(|(i, _, _)| *i == id).expect("client");
        let t = traps.lock().unwrap();
        t.armed.is_empty()
    }

    async fn client_with(&self, timeout: Duration, kind: Upstream) -> zk::Client {
        let (frozen, _) = watch::channel(false);
        let traps = Traps::default();
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("proxy binds");
        let addr = listener.local_addr().expect("proxy addr");
        tokio::spawn(proxy(
            listener,
            self.connect.clone(),
            frozen.clone(),
            kind,
            traps.clone(),
        ));
        let client = within(
            "connect",
            zk::Client::connector()
                .with_session_timeout(timeout)
                .connect(&addr.to_string()),
        )
        .await
        .expect("client connects");
        self.proxies
            .lock()
            .unwrap()
            .push((client.session().id().0, frozen, traps));
        client
    }

    fn proxy_of(&self, client: &zk::Client) -> watch::Sender<bool> {
        let id = client.session().id().0;
        self.proxies
            .lock()
            .unwrap()
            .iter()
            .find(|(i, _, _)| *i == id)
            .map(|(_, f, _)| f.clone())
            .expect("client was made by TestServer::client")
    }

    /// Cuts `client`'s connection and refuses new ones until
    /// [`TestServer::thaw`]: a network partition of that one client.
    pub fn freeze(&self, client: &zk::Client) {
        self.proxy_of(client).send_replace(true);
    }

    /// Lets `client` reconnect again.
    pub fn thaw(&self, client: &zk::Client) {
        self.proxy_of(client).send_replace(false);
    }

    /// Ends `victim`'s session on the server while `victim` itself stays
    /// alive: its proxy is frozen (connections cut, new ones refused), a
    /// second connection takes the session over and closes it, then the
    /// proxy thaws. The server drops the session's ephemeral nodes, and
    /// `victim` learns of the end when it reconnects (session expired).
    ///
    /// Freezing matters on Apache ZooKeeper: it cuts the old connection when
    /// a session moves, and a victim free to reconnect would take the
    /// session back before our close lands. We repeat until reconnecting to
    /// the session is refused as expired: the server's own word it ended.
    pub async fn end_session_of(&self, victim: &zk::Client) {
        let session = victim.session().clone();
        let frozen = self.proxy_of(victim);
        frozen.send_replace(true);
        let mut last = None;
        let ended = tokio::time::timeout(WAIT, async {
            loop {
                let attempt = zk::Client::connector()
                    .with_session(session.clone())
                    .with_connection_timeout(Duration::from_millis(500))
                    .connect(&self.connect)
                    .await;
                match attempt {
                    // Dropping the only handle closes the session (not
                    // detached); the next round confirms it.
                    Ok(hijacker) => drop(hijacker),
                    Err(zk::Error::SessionExpired) => return,
                    Err(e) => last = Some(e),
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        frozen.send_replace(false);
        if ended.is_err() {
            panic!(
                "session of victim not ended within {WAIT:?} (last error {last:?})\n{}",
                self.log()
            );
        }
    }

    /// The Apache server's log so far (empty for rookeeper), for failures.
    pub fn log(&self) -> String {
        match self.backend {
            Backend::Apache(_) => {
                std::fs::read_to_string(self._dir.path().join("zookeeper.out")).unwrap_or_default()
            }
            Backend::Rookeeper(_) => String::new(),
        }
    }

    pub async fn stop(mut self) {
        match &mut self.backend {
            Backend::Rookeeper(server) => {
                if let Some(s) = server.take() {
                    s.stop().await;
                }
            }
            // Killed on drop.
            Backend::Apache(_) => {}
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Backend::Apache(child) = &mut self.backend {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// What a proxy does with the traffic it forwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upstream {
    /// Bytes pass through untouched.
    Plain,
    /// A server older than 3.6 (see [`TestServer::pre_3_6_client`]).
    Pre36,
    /// Replies can be lost (see [`TestServer::lose_replies_to`]).
    Trap,
}

/// Requests whose replies are to be lost, one entry per trap: opcodes and
/// a text the request contains.
#[derive(Default)]
pub struct TrapState {
    armed: std::collections::VecDeque<(Vec<i32>, Vec<u8>)>,
    hold: Duration,
}

type Traps = std::sync::Arc<Mutex<TrapState>>;

/// ZooKeeper opcodes, for [`TestServer::lose_replies_to`].
pub mod op {
    pub const CREATE: &[i32] = &[1, 15];
    pub const DELETE: &[i32] = &[2];
    pub const EXISTS: &[i32] = &[3];
    pub const GET_DATA: &[i32] = &[4];
    pub const GET_CHILDREN: &[i32] = &[8, 12];
    pub const MULTI: &[i32] = &[14];
}

/// Forwards connections from `listener` to `upstream` while not `frozen`;
/// freezing cuts open connections and refuses new ones.
async fn proxy(
    listener: TcpListener,
    upstream: String,
    frozen: watch::Sender<bool>,
    kind: Upstream,
    traps: Traps,
) {
    loop {
        let Ok((mut down, _)) = listener.accept().await else {
            return;
        };
        if *frozen.borrow() {
            continue; // dropped: refused
        }
        let mut cut = frozen.subscribe();
        let upstream = upstream.clone();
        let frozen = frozen.clone();
        let traps = traps.clone();
        tokio::spawn(async move {
            let Ok(mut up) = TcpStream::connect(&upstream).await else {
                return;
            };
            // Relayed frames go out at once (see `write_frame`).
            let _ = down.set_nodelay(true);
            let _ = up.set_nodelay(true);
            match kind {
                Upstream::Plain => {
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut down, &mut up) => {}
                        _ = cut.wait_for(|f| *f) => {}
                    }
                }
                Upstream::Pre36 => pre_3_6(down, up, cut).await,
                Upstream::Trap => trap(down, up, cut, frozen, traps).await,
            }
        });
    }
}

/// ZooKeeper's opcode of addWatch (3.6+).
const OP_ADD_WATCH: i32 = 106;
/// ZooKeeper's error code UNIMPLEMENTED.
const ERR_UNIMPLEMENTED: i32 = -6;

/// Relays one connection frame by frame, answering `addWatch` as a 3.5
/// server does: once every earlier request is answered (replies go in
/// order), an UNIMPLEMENTED reply, then the connection is closed.
async fn pre_3_6(down: TcpStream, up: TcpStream, mut cut: watch::Receiver<bool>) {
    let (down_r, mut down_w) = down.into_split();
    let (up_r, mut up_w) = up.into_split();
    let (to_server, mut from_client) = mpsc::channel(64);
    let (to_client, mut from_server) = mpsc::channel(64);
    let readers = [
        tokio::spawn(read_frames(down_r, to_server)),
        tokio::spawn(read_frames(up_r, to_client)),
    ];
    // The first frame each way is the connect request / response.
    let (mut client_started, mut server_started) = (false, false);
    let mut outstanding = 0usize;
    let mut last_zxid = 0i64;
    let mut refused: Option<i32> = None;
    loop {
        if let (Some(xid), 0) = (refused, outstanding) {
            let mut reply = Vec::with_capacity(20);
            reply.extend_from_slice(&16i32.to_be_bytes());
            reply.extend_from_slice(&xid.to_be_bytes());
            reply.extend_from_slice(&last_zxid.to_be_bytes());
            reply.extend_from_slice(&ERR_UNIMPLEMENTED.to_be_bytes());
            let _ = down_w.write_all(&reply).await;
            let _ = down_w.shutdown().await;
            break;
        }
        tokio::select! {
            frame = from_client.recv(), if refused.is_none() => {
                let Some(frame) = frame else { break };
                if client_started && frame.len() >= 8 {
                    let xid = i32::from_be_bytes(frame[0..4].try_into().unwrap());
                    let op = i32::from_be_bytes(frame[4..8].try_into().unwrap());
                    if op == OP_ADD_WATCH {
                        refused = Some(xid);
                        continue;
                    }
                    outstanding += 1;
                }
                client_started = true;
                if write_frame(&mut up_w, &frame).await.is_err() {
                    break;
                }
            }
            frame = from_server.recv() => {
                let Some(frame) = frame else { break };
                if server_started && frame.len() >= 16 {
                    let xid = i32::from_be_bytes(frame[0..4].try_into().unwrap());
                    let zxid = i64::from_be_bytes(frame[4..12].try_into().unwrap());
                    // xid -1: a watch notification, not a reply.
                    if xid != -1 {
                        outstanding = outstanding.saturating_sub(1);
                    }
                    last_zxid = last_zxid.max(zxid);
                }
                server_started = true;
                if write_frame(&mut down_w, &frame).await.is_err() {
                    break;
                }
            }
            // The guard `wait_for` returns is not Send: drop it at once.
            _ = async { cut.wait_for(|f| *f).await.is_ok() } => break,
        }
    }
    for r in readers {
        r.abort();
    }
}

/// Relays one connection frame by frame; when a request matches the first
/// armed trap, its reply is swallowed, the connection cut and reconnecting
/// refused for the trap's hold time.
async fn trap(
    down: TcpStream,
    up: TcpStream,
    mut cut: watch::Receiver<bool>,
    frozen: watch::Sender<bool>,
    traps: Traps,
) {
    let (down_r, mut down_w) = down.into_split();
    let (up_r, mut up_w) = up.into_split();
    let (to_server, mut from_client) = mpsc::channel(64);
    let (to_client, mut from_server) = mpsc::channel(64);
    let readers = [
        tokio::spawn(read_frames(down_r, to_server)),
        tokio::spawn(read_frames(up_r, to_client)),
    ];
    let (mut client_started, mut server_started) = (false, false);
    let mut trapped: Option<i32> = None;
    loop {
        tokio::select! {
            frame = from_client.recv() => {
                let Some(frame) = frame else { break };
                if client_started && trapped.is_none() && frame.len() >= 8 {
                    let xid = i32::from_be_bytes(frame[0..4].try_into().unwrap());
                    let op = i32::from_be_bytes(frame[4..8].try_into().unwrap());
                    let mut t = traps.lock().unwrap();
                    let hit = t.armed.front().is_some_and(|(ops, text)| {
                        ops.contains(&op) && frame.windows(text.len()).any(|w| w == &text[..])
                    });
                    if hit {
                        t.armed.pop_front();
                        trapped = Some(xid);
                    }
                }
                client_started = true;
                if write_frame(&mut up_w, &frame).await.is_err() {
                    break;
                }
            }
            frame = from_server.recv() => {
                let Some(frame) = frame else { break };
                if server_started && frame.len() >= 16 {
                    let xid = i32::from_be_bytes(frame[0..4].try_into().unwrap());
                    if Some(xid) == trapped {
                        // Applied by the server; the client never hears.
                        let hold = traps.lock().unwrap().hold;
                        frozen.send_replace(true);
                        let frozen = frozen.clone();
                        tokio::spawn(async move {
                            tokio::time::sleep(hold).await;
                            frozen.send_replace(false);
                        });
                        break;
                    }
                }
                server_started = true;
                if write_frame(&mut down_w, &frame).await.is_err() {
                    break;
                }
            }
            _ = async { cut.wait_for(|f| *f).await.is_ok() } => break,
        }
    }
    for r in readers {
        r.abort();
    }
}

/// Reads length-prefixed frames into `out` until EOF or an error.
async fn read_frames(mut r: OwnedReadHalf, out: mpsc::Sender<Vec<u8>>) {
    loop {
        let Ok(len) = r.read_u32().await else { return };
        if len > 16 << 20 {
            return;
        }
        let mut buf = vec![0; len as usize];
        if r.read_exact(&mut buf).await.is_err() || out.send(buf).await.is_err() {
            return;
        }
    }
}

/// Writes one length-prefixed frame in a single write: a separate write of
/// the length would meet Nagle's algorithm and the peer's delayed ACK, a
/// stall of tens to hundreds of milliseconds per frame.
async fn write_frame(w: &mut OwnedWriteHalf, frame: &[u8]) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(4 + frame.len());
    buf.extend_from_slice(&(frame.len() as u32).to_be_bytes());
    buf.extend_from_slice(frame);
    w.write_all(&buf).await
}

/// Polls `check` until it holds, failing the test after [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    within(what, async {
        while !check().await {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}
