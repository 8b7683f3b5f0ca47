//! ZooKeeper's AdminServer (`/commands/<name>`, JSON) and the Prometheus
//! `/metrics` endpoint, on one HTTP stack (axum).
//!
//! Commands run on the pipeline's task (`Msg::Inspect`), in order with
//! client requests, so they see the state a client would. Their JSON has
//! the keys of Apache ZooKeeper 3.8's `server/admin/Commands.java`, plus
//! 3.9's `snapshot` (GET) and `restore` (POST) with their guards (feature
//! flag, digest auth with ALL on `/`, rate limit).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::DefaultBodyLimit;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde_json::{json, Map, Value};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info, warn};

use crate::config::Config;
use crate::core::{Core, Inspect, Msg};
use crate::ensemble::Role;
use crate::fourlw;
use crate::metrics;

/// Where the HTTP services listen, from zoo.cfg keys and `-D` properties.
#[derive(Clone)]
pub struct HttpSettings {
    /// AdminServer address and command URL; None when disabled.
    pub admin: Option<(SocketAddr, String)>,
    /// HTTPS on the AdminServer, and whether plain HTTP is taken too.
    pub admin_tls: Option<(tokio_rustls::TlsAcceptor, AdminTls)>,
    /// Prometheus `/metrics`; None without PrometheusMetricsProvider.
    pub metrics: Option<SocketAddr>,
}

const PROMETHEUS_PROVIDER: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

fn setting<'a>(cfg: &'a Config, key: &str) -> Option<&'a str> {
    // zoo.cfg's admin.* keys are the zookeeper.admin.* system properties;
    // a -D given on the command line wins, as in ZooKeeper.
    cfg.prop(&format!("zookeeper.{key}"))
        .or_else(|| cfg.raw.get(key).map(String::as_str))
        .map(str::trim)
}

fn host_addr(host: &str, port: u16, what: &str) -> anyhow::Result<SocketAddr> {
    let ip: IpAddr = match host {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h
            .parse()
            .map_err(|_| anyhow::anyhow!("invalid {what} {h:?}: an IP address is expected"))?,
    };
    Ok(SocketAddr::new(ip, port))
}

impl HttpSettings {
    pub fn from_config(cfg: &Config) -> anyhow::Result<HttpSettings> {
        let enabled =
            setting(cfg, "admin.enableServer").is_none_or(|v| !v.eq_ignore_ascii_case("false"));
        let admin = if enabled {
            let port = match setting(cfg, "admin.serverPort") {
                None => 8080,
                Some(p) => p
                    .parse::<u16>()
                    .map_err(|_| anyhow::anyhow!("invalid admin.serverPort {p:?}"))?,
            };
            let host = setting(cfg, "admin.serverAddress").unwrap_or("0.0.0.0");
            let url = setting(cfg, "admin.commandURL").unwrap_or("/commands");
            let url = format!("/{}", url.trim_matches('/'));
            Some((host_addr(host, port, "admin.serverAddress")?, url))
        } else {
            None
        };
        let metrics = match cfg.raw.get("metricsProvider.className").map(|s| s.trim()) {
            Some(PROMETHEUS_PROVIDER) => {
                let port = match cfg.raw.get("metricsProvider.httpPort") {
                    None => 7000,
                    Some(p) => p
                        .trim()
                        .parse::<u16>()
                        .map_err(|_| anyhow::anyhow!("invalid metricsProvider.httpPort {p:?}"))?,
                };
                let host = cfg
                    .raw
                    .get("metricsProvider.httpHost")
                    .map_or("0.0.0.0", |s| s.trim());
                Some(host_addr(host, port, "metricsProvider.httpHost")?)
            }
            Some(other) if other != "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider" => {
                anyhow::bail!(
                    "metricsProvider.className {other:?} is not supported; \
                     use {PROMETHEUS_PROVIDER}"
                )
            }
            _ => None,
        };
        let flag = |k| setting(cfg, k).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        // As JettyAdminServer: forceHttps wins over portUnification.
        let mode = match (flag("admin.forceHttps"), flag("admin.portUnification")) {
            (true, _) => Some(AdminTls::Only),
            (false, true) => Some(AdminTls::Unified),
            (false, false) => None,
        };
        let admin_tls = match (mode, &admin) {
            (Some(mode), Some(_)) => Some((crate::tls::Tls::admin_acceptor(cfg)?, mode)),
            _ => None,
        };
        Ok(HttpSettings {
            admin,
            admin_tls,
            metrics,
        })
    }
}

/// HTTPS on the AdminServer: only (admin.forceHttps), or beside plain HTTP
/// on the same port, told apart by the first byte (admin.portUnification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminTls {
    Only,
    Unified,
}

/// What the AdminServer serves on: plain TCP or TLS.
trait AdminStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> AdminStream for T {}

/// What the AdminServer knows of a connection: whether it is TLS.
#[derive(Debug, Clone, Copy)]
struct AdminPeer {
    secure: bool,
}

impl axum::extract::connect_info::Connected<axum::serve::IncomingStream<'_, AdminListener>>
    for AdminPeer
{
    fn connect_info(stream: axum::serve::IncomingStream<'_, AdminListener>) -> Self {
        *stream.remote_addr()
    }
}

/// Jetty's SecureRequestCustomizer as JettyAdminServer sets it up: answers
/// over TLS carry Strict-Transport-Security (a day, subdomains included).
async fn hsts(
    axum::extract::ConnectInfo(peer): axum::extract::ConnectInfo<AdminPeer>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut r = next.run(req).await;
    if peer.secure {
        r.headers_mut().insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            axum::http::HeaderValue::from_static("max-age=86400; includeSubDomains"),
        );
    }
    r
}

/// Connections to the AdminServer once their TLS (if any) is set up; the
/// handshakes run in their own tasks so a slow one holds up no one.
struct AdminListener {
    ready: mpsc::Receiver<(Box<dyn AdminStream>, AdminPeer)>,
    accept: tokio::task::JoinHandle<()>,
}

impl Drop for AdminListener {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl axum::serve::Listener for AdminListener {
    type Io = Box<dyn AdminStream>;
    type Addr = AdminPeer;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(c) => c,
            // The accept task is gone only when we are.
            None => std::future::pending().await,
        }
    }

    /// axum asks only to report it; the bound address is known before.
    fn local_addr(&self) -> std::io::Result<AdminPeer> {
        Ok(AdminPeer { secure: false })
    }
}

/// A TLS ClientHello starts with a handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

fn admin_listener(
    l: TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
    mode: AdminTls,
    metrics: Arc<crate::metrics::Metrics>,
) -> std::io::Result<AdminListener> {
    let (tx, ready) = mpsc::channel(64);
    let accept = tokio::spawn(async move {
        loop {
            let Ok((s, remote)) = l.accept().await else {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            };
            let (tx, acceptor, metrics) = (tx.clone(), acceptor.clone(), metrics.clone());
            tokio::spawn(async move {
                let setup = async {
                    let mut first = [0u8; 1];
                    let tls = match mode {
                        AdminTls::Only => true,
                        AdminTls::Unified => {
                            s.peek(&mut first).await? == 1 && first[0] == TLS_HANDSHAKE
                        }
                    };
                    let io: Box<dyn AdminStream> = if tls {
                        Box::new(acceptor.accept(s).await?)
                    } else {
                        metrics.insecure_admin_count.inc();
                        Box::new(s)
                    };
                    std::io::Result::Ok((io, tls))
                };
                match tokio::time::timeout(Duration::from_secs(10), setup).await {
                    Ok(Ok((io, secure))) => {
                        let _ = tx.send((io, AdminPeer { secure })).await;
                    }
                    Ok(Err(e)) => info!("AdminServer connection from {remote}: {e}"),
                    Err(_) => info!("AdminServer connection from {remote}: TLS setup timed out"),
                }
            });
        }
    });
    Ok(AdminListener { ready, accept })
}

/// The running HTTP services.
pub struct Http {
    pub admin_addr: Option<SocketAddr>,
    pub metrics_addr: Option<SocketAddr>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Http {
    pub fn stop(&self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Drop for Http {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Starts the AdminServer and `/metrics`. As in ZooKeeper, an AdminServer
/// that cannot bind is logged and the server goes on without it; a metrics
/// port that cannot bind stops startup (ZooKeeper's provider fails to boot).
pub async fn start(
    settings: &HttpSettings,
    cfg: Arc<Config>,
    core: mpsc::Sender<Msg>,
) -> anyhow::Result<Http> {
    let mut http = Http {
        admin_addr: None,
        metrics_addr: None,
        tasks: Vec::new(),
    };
    if let Some(addr) = settings.metrics {
        let l = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("cannot start the /metrics endpoint on {addr}: {e}"))?;
        http.metrics_addr = Some(l.local_addr()?);
        info!("serving Prometheus /metrics on {}", l.local_addr()?);
        let app = Router::new()
            .route("/metrics", get(prometheus))
            .with_state(core.clone());
        http.tasks.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(l, app).await {
                error!("/metrics endpoint stopped: {e}");
            }
        }));
    }
    if let Some((addr, url)) = &settings.admin {
        match TcpListener::bind(*addr).await {
            Ok(l) => {
                http.admin_addr = Some(l.local_addr()?);
                info!(
                    "started AdminServer on address {}, port {} and command URL {url}",
                    addr.ip(),
                    l.local_addr()?.port()
                );
                let metrics = cfg.metrics.clone();
                let state = Arc::new(AdminState {
                    core,
                    cfg,
                    url: url.clone(),
                    last_snapshot: Mutex::new(None),
                    last_restore: Mutex::new(None),
                });
                let app = Router::new()
                    .route(url, get(index))
                    .route(&format!("{url}/"), get(index))
                    .route(&format!("{url}/{{name}}"), get(command).post(post_command))
                    .layer(DefaultBodyLimit::max(RESTORE_MAX_BYTES))
                    .with_state(state);
                let served = match settings.admin_tls.clone() {
                    None => tokio::spawn(async move {
                        if let Err(e) = axum::serve(l, app).await {
                            error!("AdminServer stopped: {e}");
                        }
                    }),
                    Some((acceptor, mode)) => {
                        info!("AdminServer takes HTTPS ({mode:?})");
                        let l = admin_listener(l, acceptor, mode, metrics.clone())?;
                        let app = app
                            .layer(axum::middleware::from_fn(hsts))
                            .into_make_service_with_connect_info::<AdminPeer>();
                        tokio::spawn(async move {
                            if let Err(e) = axum::serve(l, app).await {
                                error!("AdminServer stopped: {e}");
                            }
                        })
                    }
                };
                http.tasks.push(served);
            }
            Err(e) => warn!(
                "problem starting AdminServer on address {}, port {} and command URL {url}: {e}; \
                 serving clients without it",
                addr.ip(),
                addr.port()
            ),
        }
    }
    Ok(http)
}

struct AdminState {
    core: mpsc::Sender<Msg>,
    cfg: Arc<Config>,
    url: String,
    /// When `snapshot` and `restore` last ran (their rate limits).
    last_snapshot: Mutex<Option<Instant>>,
    last_restore: Mutex<Option<Instant>>,
}

/// The largest snapshot `restore` accepts in one request (it is held in
/// memory while it is read).
const RESTORE_MAX_BYTES: usize = 1 << 30;

/// ZooKeeper 3.9's zookeeper.admin.rateLimiterIntervalInMS: at most one
/// snapshot and one restore per interval. (3.9 reads it as microseconds
/// for snapshot, a slip; milliseconds here for both.)
fn rate_interval(cfg: &Config) -> Duration {
    let ms = cfg
        .prop("zookeeper.admin.rateLimiterIntervalInMS")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(300_000);
    Duration::from_millis(ms)
}

/// Takes the rate limiter's slot, or says the caller must wait.
fn rate_limited(last: &Mutex<Option<Instant>>, interval: Duration) -> bool {
    let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_some_and(|t| t.elapsed() < interval) {
        return true;
    }
    *last = Some(Instant::now());
    false
}

/// Identities from an `Authorization: digest user:password` header (the
/// scheme 3.9's admin commands authenticate), or the error response.
#[allow(clippy::result_large_err)]
fn admin_ids(
    cfg: &Config,
    cmd: &str,
    headers: &HeaderMap,
) -> Result<Vec<jute::data::Id>, Response> {
    let fail = |status: StatusCode, error: &str| {
        json_response(status, &response(cmd, Some(error.into()), Map::new()))
    };
    let Some(auth) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return Err(fail(
            StatusCode::UNAUTHORIZED,
            "Auth info is missing for the command",
        ));
    };
    match auth.split_once(' ') {
        Some(("digest", cred)) => {
            let digest = tree::acl::digest_id(cred);
            let mut ids = Vec::new();
            if cfg.super_digest.as_deref() == Some(digest.as_str()) {
                ids.push(jute::data::Id::new("super", ""));
            }
            ids.push(jute::data::Id::new("digest", &digest));
            Ok(ids)
        }
        _ => Err(fail(StatusCode::UNAUTHORIZED, "Not authenticated")),
    }
}

/// Do these identities have ALL on `/` (3.9's AuthRequest for snapshot
/// and restore)?
fn may_admin(c: &Core, ids: &[jute::data::Id]) -> bool {
    let root_acl = c
        .tree
        .node("/")
        .map(|n| c.tree.acl_of(n))
        .unwrap_or_default();
    c.cfg.skip_acl || tree::acl::check(&root_acl, jute::consts::perms::ALL, ids)
}

/// Runs `f` on the pipeline; None if the server is shutting down.
async fn inspect<T: Send + 'static>(
    core: &mpsc::Sender<Msg>,
    f: impl FnOnce(&mut Core) -> T + Send + Sync + 'static,
) -> Option<T> {
    let (tx, rx) = oneshot::channel();
    let msg = Msg::Inspect(Inspect(Box::new(move |c| {
        let _ = tx.send(f(c));
    })));
    core.send(msg).await.ok()?;
    rx.await.ok()
}

async fn prometheus(State(core): State<mpsc::Sender<Msg>>) -> Response {
    let text = inspect(&core, |c| {
        metrics::prometheus_text(&fourlw::gauges(c), &c.cfg.metrics)
    })
    .await;
    match text {
        Some(t) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
            )],
            t,
        )
            .into_response(),
        None => StatusCode::SERVICE_UNAVAILABLE.into_response(),
    }
}

/// Primary names and their aliases, as Commands.java registers them.
const COMMANDS: &[&[&str]] = &[
    &["connection_stat_reset", "crst"],
    &["configuration", "conf", "config"],
    &["connections", "cons"],
    &["hash"],
    &["dirs"],
    &["dump"],
    &["environment", "env", "envi"],
    &["initial_configuration", "icfg"],
    &["is_read_only", "isro"],
    &["last_snapshot", "lsnp"],
    &["leader", "lead"],
    &["monitor", "mntr"],
    &["observer_connection_stat_reset", "orst"],
    &["ruok"],
    &["server_stats", "srvr"],
    &["stats", "stat"],
    &["stat_reset", "srst"],
    &["observers", "obsr"],
    &["system_properties", "sysp"],
    &["voting_view"],
    &["watches", "wchc"],
    &["watches_by_path", "wchp"],
    &["watch_summary", "wchs"],
    &["zabstate"],
    &["snapshot", "snap"],
    &["restore", "rest"],
    &["get_trace_mask", "gtmk"],
    &["set_trace_mask", "stmk"],
];

/// The primary name of a command given by any of its names.
pub fn primary_name(name: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|names| names.contains(&name))
        .map(|names| names[0])
}

/// Every primary name, sorted (the index page's order).
pub fn primary_names() -> Vec<&'static str> {
    let mut v: Vec<&'static str> = COMMANDS.iter().map(|n| n[0]).collect();
    v.sort_unstable();
    v
}

async fn index(State(st): State<Arc<AdminState>>) -> Response {
    let mut out = String::new();
    for n in primary_names() {
        out.push_str(&format!("<a href=\"{}/{n}\">{n}</a>\n<br/>\n", st.url));
    }
    ([(header::CONTENT_TYPE, "text/html;charset=utf-8")], out).into_response()
}

fn json_response(status: StatusCode, v: &Value) -> Response {
    let body = serde_json::to_string_pretty(v).unwrap_or_else(|_| "{}".into());
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body + "\n",
    )
        .into_response()
}

fn response(name: &str, error: Option<String>, mut data: Map<String, Value>) -> Value {
    data.insert("command".into(), Value::from(name));
    data.insert("error".into(), error.map_or(Value::Null, Value::from));
    Value::Object(data)
}

async fn command(
    State(st): State<Arc<AdminState>>,
    Path(name): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    let Some(primary) = primary_name(&name) else {
        let v = response(&name, Some(format!("Unknown command: {name}")), Map::new());
        return json_response(StatusCode::OK, &v);
    };
    if primary == "snapshot" {
        return snapshot(&st, &params, &headers).await;
    }
    if let Some(v) = trace_mask(&st.cfg, primary, &params) {
        return json_response(StatusCode::OK, &v);
    }
    if primary == "restore" {
        let v = response(
            primary,
            Some("restore is a POST command".into()),
            Map::new(),
        );
        return json_response(StatusCode::METHOD_NOT_ALLOWED, &v);
    }
    // As Commands.runCommand: most commands need a serving server (an
    // ensemble member between roles is not); these few do not.
    let needs_server = !matches!(
        primary,
        "environment" | "monitor" | "system_properties" | "zabstate"
    );
    let out = inspect(&st.core, move |c| {
        (c.serving() || !needs_server).then(|| run(c, primary))
    })
    .await;
    match out.flatten() {
        Some(data) => json_response(StatusCode::OK, &response(primary, None, data)),
        None => json_response(
            StatusCode::OK,
            &response(
                primary,
                Some("This ZooKeeper instance is not currently serving requests".into()),
                Map::new(),
            ),
        ),
    }
}

/// get_trace_mask / set_trace_mask (`traceMask=<long>`): the trace mask
/// is the server's own, so these need no serving pipeline (as Apache's).
fn trace_mask(cfg: &Config, primary: &str, params: &HashMap<String, String>) -> Option<Value> {
    let answer = |mask: i64| Some(response(primary, None, obj(json!({ "tracemask": mask }))));
    match primary {
        "get_trace_mask" => answer(cfg.trace.get() as i64),
        "set_trace_mask" => match params.get("traceMask") {
            None => Some(response(
                primary,
                Some("setTraceMask requires long traceMask argument".into()),
                Map::new(),
            )),
            Some(v) => match v.parse::<i64>() {
                Ok(mask) => {
                    cfg.trace.set(mask as u64);
                    answer(mask)
                }
                Err(_) => Some(response(
                    primary,
                    Some(format!(
                        "setTraceMask requires long traceMask argument, got {v}"
                    )),
                    Map::new(),
                )),
            },
        },
        _ => None,
    }
}

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn conn_info(core: &Core, id: u64, full: bool) -> Value {
    let c = &core.conns[&id];
    let st = &c.stats;
    let mut m = obj(json!({
        "remote_socket_address": c.remote.to_string(),
        "interest_ops": 1,
        "outstanding_requests": 0,
        "packets_received": st.received,
        "packets_sent": st.sent,
    }));
    if full {
        m.extend(obj(json!({
            "session_id": c.session,
            "last_operation": st.last_op,
            "session_timeout": c.timeout,
            "last_cxid": st.last_cxid,
            "last_zxid": st.last_zxid,
            "last_response_time": st.last_response_ms,
            "last_latency": st.last_latency_ms,
            "min_latency": st.latency.min_ms,
            "avg_latency": st.latency.avg() as u64,
            "max_latency": st.latency.max_ms,
            "established": st.established_ms,
        })));
    }
    Value::Object(m)
}

/// Client connections as (plain port, secure port) lists.
fn connections(core: &Core, full: bool) -> (Vec<Value>, Vec<Value>) {
    let (mut plain, mut secure) = (Vec::new(), Vec::new());
    for id in fourlw::conn_ids(core) {
        let v = conn_info(core, id, full);
        match crate::conn::is_secure(id) {
            true => secure.push(v),
            false => plain.push(v),
        }
    }
    (plain, secure)
}

fn server_stats(core: &Core, with_conns: bool) -> Map<String, Value> {
    let s = core.stats;
    let cfg = &core.cfg;
    let log_dir = cfg.data_log_dir.as_ref().unwrap_or(&cfg.data_dir);
    let (last, min, max) = cfg.metrics.client_response();
    let buffers = json!({
        "last_buffer_size": last,
        "min_buffer_size": min,
        "max_buffer_size": max,
    });
    let mut m = obj(json!({
        "version": fourlw::full_version(),
        "read_only": core.disk_failed.is_some() || core.ens.as_ref().is_some_and(|e| e.read_only()),
        "server_stats": {
            "packets_sent": s.sent,
            "packets_received": s.received,
            "fsync_threshold_exceed_count": cfg.metrics.fsync_threshold_exceed_count.get(),
            "client_response_stats": buffers,
            "provider_null": false,
            "server_state": fourlw::mode(core),
            "outstanding_requests": core.outstanding(),
            "min_latency": s.latency.min_ms,
            "avg_latency": (s.latency.avg() * 10_000.0).round() / 10_000.0,
            "max_latency": s.latency.max_ms,
            "data_dir_size": fourlw::dir_size(&cfg.data_dir),
            "log_dir_size": fourlw::dir_size(log_dir),
            "last_processed_zxid": core.last_zxid(),
            "num_alive_client_connections": core.connection_count(),
            "auth_failed_count": cfg.metrics.auth_failed_count.get(),
            "non_mtlsremote_conn_count": cfg.metrics.non_mtls_remote_conn_count.get(),
            "non_mtlslocal_conn_count": cfg.metrics.non_mtls_local_conn_count.get(),
            "uptime": crate::core::wall_ms() - fourlw::start_ms(core),
        },
        "client_response": buffers,
        "node_count": fourlw::node_count(core),
    }));
    if let Some((last, min, max)) = fourlw::leader_proposals(core) {
        let p = json!({ "last_buffer_size": last, "min_buffer_size": min, "max_buffer_size": max });
        m.insert("proposal_stats".into(), p);
    }
    if with_conns {
        let (plain, secure) = connections(core, false);
        m.insert("connections".into(), Value::from(plain));
        m.insert("secure_connections".into(), Value::from(secure));
    }
    m
}

/// Runs a command (by primary name) on the pipeline's state.
pub fn run(core: &mut Core, name: &str) -> Map<String, Value> {
    let cfg = core.cfg.clone();
    let log_dir = cfg.data_log_dir.as_ref().unwrap_or(&cfg.data_dir);
    match name {
        "ruok" => Map::new(),
        "observer_connection_stat_reset" => {
            match core.ens.as_mut().map(|e| &mut e.role) {
                Some(Role::Leading(l)) => l.reset_observer_stats(),
                Some(Role::Following(f)) => {
                    if let Some(om) = f.om.as_mut() {
                        om.reset_observer_stats();
                    }
                }
                _ => {}
            }
            Map::new()
        }
        "connection_stat_reset" => {
            core.reset_conn_stats();
            Map::new()
        }
        "stat_reset" => {
            core.reset_stats();
            Map::new()
        }
        "configuration" => obj(json!({
            "client_port": cfg.client_port,
            "data_dir": fourlw::abs(&cfg.data_dir),
            "data_log_dir": fourlw::abs(log_dir),
            "tick_time": cfg.tick_time,
            "max_client_cnxns": cfg.max_client_cnxns,
            "min_session_timeout": cfg.min_session_timeout,
            "max_session_timeout": cfg.max_session_timeout,
            "server_id": server_id(&cfg),
            "client_port_listen_backlog": -1,
        })),
        "connections" => {
            let (plain, secure) = connections(core, true);
            obj(json!({ "connections": plain, "secure_connections": secure }))
        }
        // DataTree.getDigestLog, as Jackson writes a ZxidDigest.
        "hash" => obj(json!({
            "digests": core.tree.digest_log().map(|(zxid, digest)| json!({
                "zxid": zxid,
                "digestVersion": tree::digest::DIGEST_VERSION,
                "digest": digest,
            })).collect::<Vec<_>>(),
        })),
        "dirs" => obj(json!({
            "datadir_size": fourlw::dir_size(&cfg.data_dir),
            "logdir_size": fourlw::dir_size(log_dir),
        })),
        "dump" => {
            // Bucket times are on the pipeline's monotonic clock, which
            // started with the server: wall time is start + t.
            let start = fourlw::start_ms(core);
            let mut expiry: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            for (t, ids) in core.sessions.expiry_buckets() {
                let mut ids: Vec<i64> = ids.iter().copied().collect();
                ids.sort_unstable();
                expiry.insert((start + t).to_string(), ids);
            }
            let mut eph: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (sid, paths) in core.tree.ephemerals_by_session() {
                let mut p: Vec<String> = paths.iter().cloned().collect();
                p.sort();
                eph.insert(sid.to_string(), p);
            }
            obj(json!({
                "expiry_time_to_session_ids": expiry,
                "session_id_to_ephemeral_paths": eph,
            }))
        }
        "environment" => fourlw::env_rows()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::from(v)))
            .collect(),
        "initial_configuration" => {
            let text = cfg
                .source
                .as_ref()
                .and_then(|p| std::fs::read_to_string(p).ok())
                .unwrap_or_default();
            obj(json!({ "initial_configuration": text }))
        }
        "is_read_only" => obj(json!({
            "read_only": core.disk_failed.is_some() || core.ens.as_ref().is_some_and(|e| e.read_only())
        })),
        "last_snapshot" => {
            let (zxid, ts) = cfg.metrics.last_snapshot().unwrap_or((-1, -1));
            obj(json!({ "zxid": format!("{zxid:x}"), "timestamp": ts }))
        }
        "leader" => match core.ens.as_ref() {
            Some(e) => {
                let leader_id = match &e.role {
                    Role::Leading(_) => Some(e.setup.my_id),
                    Role::Following(f) => Some(f.leader_id),
                    Role::Looking => None,
                };
                let leader_ip = leader_id
                    .and_then(|id| e.setup.quorum.members.get(&id))
                    .map_or(String::new(), |m| m.host.clone());
                obj(json!({
                    "is_leader": matches!(e.role, Role::Leading(_)),
                    "leader_id": leader_id.map_or(-1, |id| id as i64),
                    "leader_ip": leader_ip,
                }))
            }
            None => {
                // A standalone server is no quorum peer.
                let mut m = Map::new();
                m.insert("error".into(), Value::from("server is not initialized"));
                m
            }
        },
        "monitor" => {
            let rows = metrics::monitor_rows(&fourlw::gauges(core), &cfg.metrics);
            rows.into_iter().collect()
        }
        "server_stats" => server_stats(core, false),
        "stats" => server_stats(core, true),
        "observers" => {
            let (synced, observers) = match core.ens.as_ref().map(|e| &e.role) {
                Some(Role::Leading(l)) => (l.synced_observers(), l.observers_info()),
                Some(Role::Following(f)) => {
                    f.om.as_ref()
                        .map_or((0, Vec::new()), |om| (om.synced(), om.observers_info()))
                }
                _ => (0, Vec::new()),
            };
            obj(json!({ "synced_observers": synced, "observers": observers }))
        }
        "system_properties" => system_properties(&cfg),
        "voting_view" => {
            let view: Map<String, Value> = match core.ens.as_ref() {
                None => Map::new(),
                Some(e) => e
                    .setup
                    .quorum
                    .members
                    .values()
                    .filter(|m| m.kind == zab::LearnerType::Participant)
                    .map(|m| {
                        let client = if m.id == e.setup.my_id {
                            client_address(&cfg)
                        } else {
                            m.client
                                .as_ref()
                                .map_or(String::new(), |(h, p)| format!("{h}:{p}"))
                        };
                        let v = json!({
                            "server_addresses": [format!("{}:{}", m.host, m.quorum_port)],
                            "election_addresses": [format!("{}:{}", m.host, m.election_port)],
                            "client_address": client,
                            "learner_type": "participant",
                        });
                        (m.id.to_string(), v)
                    })
                    .collect(),
            };
            obj(json!({ "current_config": view }))
        }
        "watch_summary" => {
            let w = fourlw::watches(core);
            let conns: std::collections::BTreeSet<i64> = w.iter().map(|(s, _)| *s).collect();
            let paths: std::collections::BTreeSet<&String> = w.iter().map(|(_, p)| p).collect();
            obj(json!({
                "num_connections": conns.len(),
                "num_paths": paths.len(),
                "num_total_watches": w.len(),
            }))
        }
        "watches" => {
            let mut by: BTreeMap<String, Vec<String>> = BTreeMap::new();
            for (s, p) in fourlw::watches(core) {
                by.entry(s.to_string()).or_default().push(p);
            }
            obj(json!({ "session_id_to_watched_paths": by }))
        }
        "watches_by_path" => {
            let mut by: BTreeMap<String, Vec<i64>> = BTreeMap::new();
            for (s, p) in fourlw::watches(core) {
                by.entry(p).or_default().push(s);
            }
            obj(json!({ "path_to_session_ids": by }))
        }
        "zabstate" => match core.ens.as_ref() {
            None => obj(json!({ "voting": false, "zabstate": "" })),
            Some(e) => {
                let me = e.setup.me();
                let zxid = core.last_zxid();
                obj(json!({
                    "myid": e.setup.my_id,
                    "is_leader": matches!(e.role, Role::Leading(_)),
                    "quorum_address": multiple_addresses(&me.host, me.quorum_port),
                    "election_address": multiple_addresses(&me.host, me.election_port),
                    "client_address": client_address(&cfg),
                    "voting": e.setup.quorum.is_voter(e.setup.my_id),
                    "last_zxid": format!("0x{zxid:x}"),
                    "zab_epoch": zxid >> 32,
                    "zab_counter": zxid & 0xffff_ffff,
                    "zabstate": fourlw::zab_state(core),
                }))
            }
        },
        _ => Map::new(),
    }
}

/// This server's client address as QuorumPeer reports it.
fn client_address(cfg: &Config) -> String {
    let ip = cfg
        .client_port_address
        .map_or("0.0.0.0".to_owned(), |a| a.to_string());
    format!("{ip}:{}", cfg.client_port)
}

/// How Jackson renders ZooKeeper's MultipleAddresses (a bean, so every
/// getter becomes a key) for one address.
fn multiple_addresses(host: &str, port: u16) -> Value {
    let a = format!("{host}:{port}");
    json!({
        "empty": false,
        "all_addresses": [a],
        "all_reachable_addresses": [a],
        "one": a,
        "reachable_address": a,
        "wildcard_addresses": [format!("0.0.0.0:{port}")],
        "all_ports": [port],
        "all_host_strings": [host],
        "all_reachable_addresses_or_all": [a],
        "reachable_or_one": a,
    })
}

/// myid, when the config names one (0 standalone, as ZooKeeper reports).
fn server_id(cfg: &Config) -> i64 {
    std::fs::read_to_string(cfg.data_dir.join("myid"))
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

/// The JVM's system properties, answered for this process: every `-D` and
/// zookeeper.* setting, plus the platform facts Java would give.
fn system_properties(cfg: &Config) -> Map<String, Value> {
    let mut m: Map<String, Value> = Map::new();
    for (k, v) in fourlw::env_rows() {
        if k.starts_with("os.") && !k.starts_with("os.memory") || k.starts_with("user.") {
            m.insert(k.into(), Value::from(v));
        }
    }
    for (k, v) in [
        ("file.separator", "/"),
        ("path.separator", ":"),
        ("line.separator", "\n"),
        ("file.encoding", "UTF-8"),
    ] {
        m.insert(k.into(), Value::from(v));
    }
    for (k, v) in &cfg.props {
        m.insert(k.clone(), Value::from(v.clone()));
    }
    for key in [
        "admin.serverAddress",
        "admin.serverPort",
        "admin.enableServer",
    ] {
        if let Some(v) = cfg.raw.get(key) {
            m.insert(format!("zookeeper.{key}"), Value::from(v.clone()));
        }
    }
    // QuorumPeerConfig turns the server.N lines into properties too.
    for (k, v) in cfg.raw.iter().filter(|(k, _)| k.starts_with("server.")) {
        m.insert(format!("zookeeper.{k}"), Value::from(v.clone()));
    }
    m
}

/// 3.9's `snapshot`: takes a snapshot now and streams it (unless
/// `streaming=false`), with the snapshot's zxid and size in headers. Needs
/// `zookeeper.admin.snapshot.enabled` (default true), an `Authorization:
/// digest user:password` header whose identity has ALL on `/`, and at most
/// one call per `zookeeper.admin.rateLimiterIntervalInMS` (default 5 min).
async fn snapshot(
    st: &AdminState,
    params: &HashMap<String, String>,
    headers: &HeaderMap,
) -> Response {
    let fail = |status: StatusCode, error: Option<&str>| {
        json_response(
            status,
            &response("snapshot", error.map(str::to_owned), Map::new()),
        )
    };
    let enabled = st
        .cfg
        .prop("zookeeper.admin.snapshot.enabled")
        .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
    if !enabled {
        warn!("snapshot command is disabled");
        return fail(StatusCode::SERVICE_UNAVAILABLE, None);
    }
    let ids = match admin_ids(&st.cfg, "snapshot", headers) {
        Ok(ids) => ids,
        Err(r) => return r,
    };
    // Authorization and a copy of the tree, in one step on the pipeline.
    let taken = inspect(&st.core, move |c| {
        may_admin(c, &ids).then(|| (c.tree.snapshot_copy(), c.last_zxid()))
    })
    .await;
    let Some(taken) = taken else {
        return fail(
            StatusCode::OK,
            Some("This ZooKeeper instance is not currently serving requests"),
        );
    };
    let Some((tree, zxid)) = taken else {
        return fail(StatusCode::FORBIDDEN, Some("Not authorized"));
    };
    if rate_limited(&st.last_snapshot, rate_interval(&st.cfg)) {
        warn!("snapshot request was rate limited");
        return fail(StatusCode::TOO_MANY_REQUESTS, None);
    }
    let cfg = st.cfg.clone();
    let written = tokio::task::spawn_blocking(move || {
        let layout = crate::persist::Layout::new(&cfg);
        let started = Instant::now();
        let comp = crate::persist::compression(&cfg);
        let path = storage::snapshot::write_snapshot(&layout.snap_dir, &tree, zxid, comp)?;
        cfg.metrics
            .snapshottime
            .observe(started.elapsed().as_millis() as u64);
        cfg.metrics.snapshot_written(zxid);
        anyhow::Ok(path)
    })
    .await;
    let path = match written {
        Ok(Ok(p)) => p,
        Ok(Err(e)) => {
            warn!("snapshot command failed: {e}");
            return fail(StatusCode::INTERNAL_SERVER_ERROR, None);
        }
        Err(e) => {
            warn!("snapshot command failed: {e}");
            return fail(StatusCode::INTERNAL_SERVER_ERROR, None);
        }
    };
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    let streaming = params
        .get("streaming")
        .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
    let mut resp = if streaming {
        match tokio::fs::read(&path).await {
            Ok(bytes) => (
                [(header::CONTENT_TYPE, "application/octet-stream")],
                Body::from(bytes),
            )
                .into_response(),
            Err(e) => {
                warn!("cannot read back snapshot {}: {e}", path.display());
                return fail(StatusCode::INTERNAL_SERVER_ERROR, None);
            }
        }
    } else {
        json_response(StatusCode::OK, &response("snapshot", None, Map::new()))
    };
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&format!("0x{zxid:x}")) {
        h.insert("last_zxid", v);
    }
    if let Ok(v) = HeaderValue::from_str(&size.to_string()) {
        h.insert("snapshot_size", v);
    }
    resp
}

/// POST commands: 3.9's `restore`, whose body is a snapshot (as `snapshot`
/// streams it). Same guards as `snapshot`, with
/// `zookeeper.admin.restore.enabled`.
async fn post_command(
    State(st): State<Arc<AdminState>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let Some(primary) = primary_name(&name) else {
        let v = response(&name, Some(format!("Unknown command: {name}")), Map::new());
        return json_response(StatusCode::OK, &v);
    };
    if primary != "restore" {
        let v = response(primary, Some("Method not allowed".into()), Map::new());
        return json_response(StatusCode::METHOD_NOT_ALLOWED, &v);
    }
    let fail = |status: StatusCode, error: Option<String>| {
        json_response(status, &response("restore", error, Map::new()))
    };
    let enabled = st
        .cfg
        .prop("zookeeper.admin.restore.enabled")
        .is_none_or(|v| !v.trim().eq_ignore_ascii_case("false"));
    if !enabled {
        warn!("restore command is disabled");
        return fail(StatusCode::SERVICE_UNAVAILABLE, None);
    }
    if fourlw::quorum_size(&st.cfg) > 0 {
        // One member restored alone would leave the ensemble diverged.
        return fail(
            StatusCode::INTERNAL_SERVER_ERROR,
            Some("restore is only supported on a standalone server".into()),
        );
    }
    let ids = match admin_ids(&st.cfg, "restore", &headers) {
        Ok(ids) => ids,
        Err(r) => return r,
    };
    if body.is_empty() {
        return fail(
            StatusCode::BAD_REQUEST,
            Some("no snapshot in the request".into()),
        );
    }
    let allowed = {
        let ids = ids.clone();
        inspect(&st.core, move |c| may_admin(c, &ids)).await
    };
    match allowed {
        None => {
            return fail(
                StatusCode::OK,
                Some("This ZooKeeper instance is not currently serving requests".into()),
            )
        }
        Some(false) => return fail(StatusCode::FORBIDDEN, Some("Not authorized".into())),
        Some(true) => {}
    }
    if rate_limited(&st.last_restore, rate_interval(&st.cfg)) {
        warn!("restore request was rate limited");
        return fail(StatusCode::TOO_MANY_REQUESTS, None);
    }
    // Read the snapshot off the pipeline: a file in snapDir named for its
    // compression (told by its magic), read as recovery reads snapshots.
    let cfg = st.cfg.clone();
    let read = tokio::task::spawn_blocking(move || {
        let layout = crate::persist::Layout::new(&cfg);
        let ext = if body.starts_with(&[0x1f, 0x8b]) {
            ".gz"
        } else if body.starts_with(b"\x82SNAPPY\x00") {
            ".snappy"
        } else {
            ""
        };
        // In a directory of its own under snapDir (recovery only looks at
        // snapDir itself), under a snapshot's name, as the reader wants.
        let tmp_dir = layout
            .snap_dir
            .join(format!("restore.{}.tmp", std::process::id()));
        std::fs::create_dir_all(&tmp_dir)?;
        let tmp = tmp_dir.join(format!("snapshot.0{ext}"));
        let r = std::fs::write(&tmp, &body)
            .map_err(anyhow::Error::from)
            .and_then(|_| Ok(storage::snapshot::read_snapshot(&tmp, cfg.extended_types)?));
        let _ = std::fs::remove_dir_all(&tmp_dir);
        anyhow::Ok(r?.0)
    })
    .await;
    let tree = match read {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => {
            warn!("restore: the request holds no valid snapshot: {e}");
            return fail(StatusCode::INTERNAL_SERVER_ERROR, Some(e.to_string()));
        }
        Err(e) => return fail(StatusCode::INTERNAL_SERVER_ERROR, Some(e.to_string())),
    };
    // Authorized again with the restore itself: the root's ACL may have
    // changed meanwhile.
    let done = inspect(&st.core, move |c| {
        if !may_admin(c, &ids) {
            return Err(None);
        }
        c.restore(tree).map_err(|e| Some(e.to_string()))
    })
    .await;
    match done {
        Some(Ok(zxid)) => {
            let mut m = Map::new();
            m.insert("last_zxid".into(), Value::from(zxid));
            json_response(StatusCode::OK, &response("restore", None, m))
        }
        Some(Err(None)) => fail(StatusCode::FORBIDDEN, Some("Not authorized".into())),
        Some(Err(Some(e))) => {
            warn!("restore failed: {e}");
            fail(StatusCode::INTERNAL_SERVER_ERROR, Some(e))
        }
        None => fail(
            StatusCode::OK,
            Some("This ZooKeeper instance is not currently serving requests".into()),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str, defines: &[(&str, &str)]) -> Config {
        let dir = std::env::temp_dir().join(format!("rk-admin-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let p = dir.join(format!("zoo-{}.cfg", text.len()));
        std::fs::write(&p, text).unwrap();
        let d: Vec<(String, String)> = defines
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::load(Some(&p), &d).unwrap()
    }

    #[test]
    fn defaults_are_apaches() {
        let s = HttpSettings::from_config(&Config::default()).unwrap();
        assert_eq!(
            s.admin,
            Some(("0.0.0.0:8080".parse().unwrap(), "/commands".to_owned()))
        );
        assert_eq!(s.metrics, None);
        let s = HttpSettings::from_config(&cfg(
            &format!("metricsProvider.className={PROMETHEUS_PROVIDER}\n"),
            &[],
        ))
        .unwrap();
        assert_eq!(s.metrics, Some("0.0.0.0:7000".parse().unwrap()));
    }

    #[test]
    fn settings_from_zoo_cfg_and_properties() {
        let c = cfg(
            "admin.serverPort=9090\nadmin.serverAddress=127.0.0.1\nadmin.commandURL=/cmds/\n\
             metricsProvider.className=org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider\n\
             metricsProvider.httpPort=7070\nmetricsProvider.httpHost=127.0.0.2\n",
            &[("zookeeper.admin.serverPort", "9191")],
        );
        let s = HttpSettings::from_config(&c).unwrap();
        // -D wins over zoo.cfg, as a system property does in ZooKeeper.
        assert_eq!(
            s.admin,
            Some(("127.0.0.1:9191".parse().unwrap(), "/cmds".to_owned()))
        );
        assert_eq!(s.metrics, Some("127.0.0.2:7070".parse().unwrap()));
        let off = cfg("admin.enableServer=false\n", &[]);
        assert_eq!(HttpSettings::from_config(&off).unwrap().admin, None);
        let bad = cfg("admin.serverPort=http\n", &[]);
        assert!(HttpSettings::from_config(&bad).is_err());
        let other = cfg("metricsProvider.className=com.example.Nope\n", &[]);
        assert!(HttpSettings::from_config(&other).is_err());
    }

    #[test]
    fn names_and_aliases() {
        assert_eq!(primary_name("mntr"), Some("monitor"));
        assert_eq!(primary_name("config"), Some("configuration"));
        assert_eq!(primary_name("rest"), Some("restore"));
        assert_eq!(primary_name("nosuch"), None);
        let names = primary_names();
        assert!(names.windows(2).all(|w| w[0] < w[1]));
    }
}
