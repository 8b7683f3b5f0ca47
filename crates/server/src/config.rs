//! Server settings: zoo.cfg (Java properties syntax, ZooKeeper's keys) and
//! `-Dkey=value` system properties, with ZooKeeper's defaults.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Keys of zoo.cfg we understand; others become `zookeeper.<key>`
/// properties (as QuorumPeerConfig does) and are warned about unless a
/// property of that name means something to us.
const KNOWN_KEYS: &[&str] = &[
    "clientPort",
    "clientPortAddress",
    "tickTime",
    "dataDir",
    "dataLogDir",
    "maxClientCnxns",
    "minSessionTimeout",
    "maxSessionTimeout",
    "initLimit",
    "syncLimit",
    "connectToLearnerMasterLimit",
    "observerMasterPort",
    "electionAlg",
    "peerType",
    "standaloneEnabled",
    "reconfigEnabled",
    "dynamicConfigFile",
    // Quorum TLS and SASL (ensemble::Setup).
    "sslQuorum",
    "portUnification",
    "quorum.auth.enableSasl",
    "quorum.auth.learnerRequireSasl",
    "quorum.auth.serverRequireSasl",
    "quorum.auth.learner.saslLoginContext",
    "quorum.auth.server.saslLoginContext",
    "autopurge.snapRetainCount",
    "autopurge.purgeInterval",
    "snapCount",
    "preAllocSize",
    "forceSync",
    "4lw.commands.whitelist",
    "admin.enableServer",
    "admin.serverAddress",
    "admin.serverPort",
    "metricsProvider.className",
    "metricsProvider.httpPort",
    "metricsProvider.httpHost",
    "metricsProvider.exportJvmInfo",
    "clientPortListenBacklog",
    "secureClientPort",
    "secureClientPortAddress",
    "quorumListenOnAllIPs",
    "localSessionsEnabled",
    "localSessionsUpgradingEnabled",
    // The pause monitor (crate::pause).
    "jvm.pause.monitor",
    "jvm.pause.sleep.time.ms",
    "jvm.pause.info-threshold.ms",
    "jvm.pause.warn-threshold.ms",
];

/// Properties whose meaning we implement (-D or zoo.cfg as zookeeper.*).
const KNOWN_PROPS: &[&str] = &[
    "zookeeper.DigestAuthenticationProvider.superDigest",
    "zookeeper.extendedTypesEnabled",
    "zookeeper.skipACL",
    // Checked by ensemble::Setup (a -D property, or a zoo.cfg key as Apache
    // turns unknown keys into properties).
    "zookeeper.multiAddress.enabled",
    "zookeeper.leaderConnectDelayDuringRetryMs",
    "zookeeper.leader.maxTimeToWaitForEpoch",
    "zookeeper.enforceQuota",
    "zookeeper.4lw.commands.whitelist",
    "jute.maxbuffer",
    "readonlymode.enabled",
    "java.security.auth.login.config",
    "zookeeper.sasl.serverconfig",
    "zookeeper.superUser",
    "zookeeper.authProvider.1",
    "zookeeper.ensembleAuthName",
    "znode.container.checkIntervalMs",
    "znode.container.maxPerMinute",
    "znode.container.maxNeverUsedIntervalMs",
    // TLS on secureClientPort (crate::tls); zoo.cfg's ssl.* keys land here.
    "zookeeper.ssl.keyStore.location",
    "zookeeper.ssl.keyStore.password",
    "zookeeper.ssl.keyStore.passwordPath",
    "zookeeper.ssl.keyStore.type",
    "zookeeper.ssl.trustStore.location",
    "zookeeper.ssl.trustStore.password",
    "zookeeper.ssl.trustStore.passwordPath",
    "zookeeper.ssl.trustStore.type",
    "zookeeper.ssl.clientAuth",
    "zookeeper.ssl.protocol",
    "zookeeper.ssl.enabledProtocols",
    "zookeeper.ssl.ciphersuites",
    "zookeeper.ssl.crl",
    "zookeeper.ssl.ocsp",
    "zookeeper.ssl.authProvider",
    "zookeeper.ssl.context.supplier.class",
    // Quorum TLS (sslQuorum, crate::tls::QuorumTls).
    "zookeeper.ssl.quorum.keyStore.location",
    "zookeeper.ssl.quorum.keyStore.password",
    "zookeeper.ssl.quorum.keyStore.passwordPath",
    "zookeeper.ssl.quorum.keyStore.type",
    "zookeeper.ssl.quorum.trustStore.location",
    "zookeeper.ssl.quorum.trustStore.password",
    "zookeeper.ssl.quorum.trustStore.passwordPath",
    "zookeeper.ssl.quorum.trustStore.type",
    "zookeeper.ssl.quorum.clientAuth",
    "zookeeper.ssl.quorum.protocol",
    "zookeeper.ssl.quorum.enabledProtocols",
    "zookeeper.ssl.quorum.ciphersuites",
    "zookeeper.ssl.quorum.crl",
    "zookeeper.ssl.quorum.ocsp",
    "zookeeper.ssl.quorum.context.supplier.class",
    "zookeeper.ssl.quorum.hostnameVerification",
    // No effect on the client port in ZooKeeper either (no client hostname
    // checks there; detection is for port unification).
    "zookeeper.ssl.hostnameVerification",
    "zookeeper.ssl.handshakeDetectionTimeoutMillis",
    "zookeeper.X509AuthenticationProvider.superUser",
    // AdminServer (crate::admin).
    "zookeeper.admin.enableServer",
    "zookeeper.admin.serverAddress",
    "zookeeper.admin.serverPort",
    "zookeeper.admin.commandURL",
    "zookeeper.admin.idleTimeout",
    "zookeeper.admin.snapshot.enabled",
    "zookeeper.admin.restore.enabled",
    "zookeeper.admin.forceHttps",
    "zookeeper.admin.portUnification",
    // Connections without a session (crate::conn).
    "zookeeper.nio.sessionlessCnxnTimeout",
    "zookeeper.netty.server.outstandingHandshake.limit",
    // What a loaded server admits (crate::admission).
    "zookeeper.request_throttle_max_requests",
    "zookeeper.request_throttle_stall_time",
    "zookeeper.request_throttle_drop_stale",
    "zookeeper.request_stale_latency_check",
    "zookeeper.throttled_op_wait_time",
    "zookeeper.largeRequestThreshold",
    "zookeeper.largeRequestMaxBytes",
    "zookeeper.connection_throttle_tokens",
    "zookeeper.connection_throttle_fill_time",
    "zookeeper.connection_throttle_fill_count",
    "zookeeper.connection_throttle_freeze_time",
    "zookeeper.connection_throttle_drop_increase",
    "zookeeper.connection_throttle_drop_decrease",
    "zookeeper.connection_throttle_decrease_ratio",
    "zookeeper.connection_throttle_weight_enabled",
    "zookeeper.connection_throttle_global_session_weight",
    "zookeeper.connection_throttle_local_session_weight",
    "zookeeper.connection_throttle_renew_session_weight",
];

#[derive(Debug, Clone)]
pub struct Config {
    pub client_port: u16,
    pub client_port_address: Option<IpAddr>,
    /// `secureClientPort`: TLS clients (crate::tls); 0 picks a free port,
    /// as clientPort=0 does.
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress` (ZooKeeper: the wildcard address if unset,
    /// whatever clientPortAddress says).
    pub secure_client_port_address: Option<IpAddr>,
    pub tick_time: u32,
    pub data_dir: PathBuf,
    pub data_log_dir: Option<PathBuf>,
    pub max_client_cnxns: usize,
    pub min_session_timeout: i32,
    pub max_session_timeout: i32,
    pub four_letter_words: HashSet<String>,
    pub super_digest: Option<String>,
    /// With EnsembleAuthenticationProvider among the zookeeper.authProvider.*
    /// classes: the names of zookeeper.ensembleAuthName (None: any name).
    pub ensemble_auth: Option<Option<HashSet<String>>>,
    /// zookeeper.authProvider.* settings naming classes we lack.
    pub unknown_auth_providers: Vec<String>,
    pub extended_types: bool,
    pub skip_acl: bool,
    pub reconfig_enabled: bool,
    /// `zookeeper.enforceQuota` (zoo.cfg `enforceQuota`): hard quota limits refuse writes.
    pub enforce_quota: bool,
    pub read_only_mode: bool,
    pub max_buffer: usize,
    /// DIGEST-MD5 users from the JAAS file (java.security.auth.login.config).
    pub sasl_users: Option<std::collections::HashMap<String, String>>,
    /// `zookeeper.superUser`: a SASL identity that acts as super.
    pub super_user: Option<String>,
    pub container_check_interval_ms: u64,
    pub container_max_per_minute: u64,
    pub container_max_never_used_ms: i64,
    /// `jvm.pause.monitor=true`: watch for process pauses (crate::pause).
    pub pause_monitor: Option<crate::pause::Settings>,
    /// Every setting as given, for `conf` and `envi`.
    pub raw: BTreeMap<String, String>,
    /// System properties (-D and zoo.cfg extras).
    pub props: BTreeMap<String, String>,
    /// Where the config came from, if a file.
    pub source: Option<PathBuf>,
    /// Keys given that we do not know (warned about at startup).
    pub unknown: Vec<String>,
    /// `server.N` lines and myid: this server is one of an ensemble.
    pub ensemble: Option<crate::ensemble::Setup>,
    /// This server's metrics (crate::metrics), shared by everything that
    /// records or reports them.
    pub metrics: std::sync::Arc<crate::metrics::Metrics>,
    /// ZooKeeper's trace mask (`gtmk`/`stmk`), changed while running.
    pub trace: std::sync::Arc<crate::trace::TraceMask>,
    /// For tests, not read from zoo.cfg: while true, the txn-log thread
    /// waits before each fsync, as a stalled disk would, so that a test can
    /// see what is answered before a write is durable.
    pub hold_fsync: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Default for Config {
    fn default() -> Self {
        Config::build(BTreeMap::new(), BTreeMap::new(), None).expect("defaults are valid")
    }
}

/// Parses Java properties text: `key=value`, `key: value` or `key value`;
/// `#`/`!` comments; surrounding blanks trimmed. Continuation lines are
/// joined.
pub fn parse_properties(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim_start();
        if pending.is_empty() && (line.starts_with('#') || line.starts_with('!')) {
            continue;
        }
        if let Some(stripped) = line.strip_suffix('\\') {
            pending.push_str(stripped);
            continue;
        }
        pending.push_str(line);
        let l = std::mem::take(&mut pending);
        let l = l.trim();
        if l.is_empty() {
            continue;
        }
        let idx = l.find(['=', ':']).or_else(|| l.find(char::is_whitespace));
        let (k, v) = match idx {
            Some(i) => (&l[..i], &l[i + 1..]),
            None => (l, ""),
        };
        out.insert(k.trim().to_owned(), v.trim().to_owned());
    }
    out
}

fn parse_bool(v: &str) -> bool {
    v.trim().eq_ignore_ascii_case("true") || v.trim().eq_ignore_ascii_case("yes")
}

impl Config {
    /// Reads `path` (a zoo.cfg) with `-D` properties applied over it.
    pub fn load(path: Option<&Path>, defines: &[(String, String)]) -> Result<Config> {
        let raw = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                parse_properties(&text)
            }
            None => BTreeMap::new(),
        };
        let props = defines.iter().cloned().collect();
        let mut c = Config::build(raw, props, path.map(Path::to_path_buf))?;
        if let (Some(p), Some(dyn_file)) = (path, c.raw.get("dynamicConfigFile").cloned()) {
            // Ensemble membership lives there; standalone only records it.
            let dp = PathBuf::from(&dyn_file);
            let dp = if dp.is_relative() {
                p.parent().unwrap_or(Path::new(".")).join(dp)
            } else {
                dp
            };
            if let Ok(text) = std::fs::read_to_string(&dp) {
                let props = parse_properties(&text);
                // Written after a reconfig, the version is the name's suffix.
                if !props.contains_key("version") {
                    if let Some(v) = dp
                        .file_name()
                        .and_then(|n| n.to_str())
                        .and_then(|n| n.rsplit_once(".dynamic."))
                        .map(|(_, v)| v.to_owned())
                    {
                        c.raw.entry("version".into()).or_insert(v);
                    }
                }
                for (k, v) in props {
                    c.raw.entry(k).or_insert(v);
                }
            }
        }
        c.ensemble = crate::ensemble::Setup::from_config(&c)?;
        // After a reconfig the client address may live only on the server
        // line (Apache erases clientPort from zoo.cfg then).
        if let Some(e) = &c.ensemble {
            if !c.raw.contains_key("clientPort") {
                if let Some((h, p)) = &e.me().client {
                    c.client_port = *p;
                    if c.client_port_address.is_none() && h != "0.0.0.0" {
                        c.client_port_address = h.parse().ok();
                    }
                }
            }
        }
        Ok(c)
    }

    pub(crate) fn build(
        raw: BTreeMap<String, String>,
        mut props: BTreeMap<String, String>,
        source: Option<PathBuf>,
    ) -> Result<Config> {
        let mut unknown = Vec::new();
        for (k, v) in &raw {
            let known = KNOWN_KEYS.contains(&k.as_str())
                || k.starts_with("server.")
                || k.starts_with("group.")
                || k.starts_with("weight.");
            // QuorumPeerConfig turns unknown keys into zookeeper.* properties.
            let prop = format!("zookeeper.{k}");
            if !known
                && !KNOWN_PROPS.contains(&prop.as_str())
                && !prop.starts_with("zookeeper.authProvider.")
            {
                unknown.push(k.clone());
            }
            if !known || k == "4lw.commands.whitelist" {
                props.entry(prop).or_insert_with(|| v.clone());
            }
        }
        let get = |k: &str| raw.get(k).map(|s| s.trim().to_owned());
        let num = |k: &str, d: i64| -> Result<i64> {
            match get(k) {
                None => Ok(d),
                Some(v) => v
                    .parse::<i64>()
                    .with_context(|| format!("invalid value for {k}: {v:?}")),
            }
        };
        let prop_num = |k: &str, d: i64| num_prop(&props, k, d);
        let tick_time = num("tickTime", 2000)?;
        if tick_time <= 0 {
            bail!("tickTime must be positive, got {tick_time}");
        }
        let client_port = num("clientPort", 2181)?;
        if !(0..=65535).contains(&client_port) {
            bail!("clientPort out of range: {client_port}");
        }
        let client_port_address = match get("clientPortAddress") {
            None => None,
            Some(a) => Some(
                a.parse::<IpAddr>()
                    .with_context(|| format!("invalid clientPortAddress {a:?}"))?,
            ),
        };
        let secure_client_port = match get("secureClientPort") {
            None => None,
            Some(_) => {
                let p = num("secureClientPort", 0)?;
                if !(0..=65535).contains(&p) {
                    bail!("secureClientPort out of range: {p}");
                }
                Some(p as u16)
            }
        };
        let secure_client_port_address = match get("secureClientPortAddress") {
            None => None,
            Some(a) => Some(
                a.parse::<IpAddr>()
                    .with_context(|| format!("invalid secureClientPortAddress {a:?}"))?,
            ),
        };
        if secure_client_port_address.is_some() && secure_client_port.is_none() {
            bail!("secureClientPortAddress is set but secureClientPort is not set");
        }
        let mut min = num("minSessionTimeout", -1)? as i32;
        let mut max = num("maxSessionTimeout", -1)? as i32;
        if min < 0 {
            min = (tick_time * 2) as i32;
        }
        if max < 0 {
            max = (tick_time * 20) as i32;
        }
        if min > max {
            bail!("minSessionTimeout {min} must not be larger than maxSessionTimeout {max}");
        }
        let wl = props
            .get("zookeeper.4lw.commands.whitelist")
            .cloned()
            .unwrap_or_else(|| "srvr".to_owned());
        let mut four = HashSet::new();
        for w in wl.split(',') {
            let w = w.trim();
            if w == "*" {
                four.extend(crate::fourlw::ALL.iter().map(|s| s.to_string()));
            } else if !w.is_empty() {
                four.insert(w.to_owned());
            }
        }
        let max_buffer = prop_num("jute.maxbuffer", jute::consts::DEFAULT_MAX_BUFFER as i64)?;
        if max_buffer <= 0 {
            bail!("jute.maxbuffer must be positive, got {max_buffer}");
        }
        let pbool = |k: &str| props.get(k).is_some_and(|v| parse_bool(v));
        let data_dir = PathBuf::from(get("dataDir").unwrap_or_else(|| "data".to_owned()));
        let sasl_users = match props.get("java.security.auth.login.config") {
            Some(p) => {
                let section = props
                    .get("zookeeper.sasl.serverconfig")
                    .map_or("Server", String::as_str);
                let users = crate::sasl::load_jaas_users(Path::new(p), section)?;
                (!users.is_empty()).then_some(users)
            }
            None => None,
        };
        Ok(Config {
            client_port: client_port as u16,
            client_port_address,
            secure_client_port,
            secure_client_port_address,
            tick_time: tick_time as u32,
            data_log_dir: get("dataLogDir").map(PathBuf::from),
            data_dir,
            max_client_cnxns: num("maxClientCnxns", 60)?.max(0) as usize,
            min_session_timeout: min,
            max_session_timeout: max,
            four_letter_words: four,
            super_digest: props
                .get("zookeeper.DigestAuthenticationProvider.superDigest")
                .cloned(),
            ensemble_auth: ensemble_auth(&props),
            unknown_auth_providers: unknown_auth_providers(&props),
            extended_types: pbool("zookeeper.extendedTypesEnabled"),
            skip_acl: props
                .get("zookeeper.skipACL")
                .is_some_and(|v| v.trim() == "yes" || parse_bool(v)),
            reconfig_enabled: get("reconfigEnabled").is_some_and(|v| parse_bool(&v)),
            enforce_quota: pbool("zookeeper.enforceQuota"),
            read_only_mode: pbool("readonlymode.enabled"),
            max_buffer: max_buffer as usize,
            sasl_users,
            super_user: props.get("zookeeper.superUser").cloned(),
            container_check_interval_ms: prop_num("znode.container.checkIntervalMs", 60_000)?.max(1)
                as u64,
            container_max_per_minute: prop_num("znode.container.maxPerMinute", 10_000)?.max(1)
                as u64,
            container_max_never_used_ms: prop_num("znode.container.maxNeverUsedIntervalMs", 0)?,
            pause_monitor: match get("jvm.pause.monitor").is_some_and(|v| parse_bool(&v)) {
                true => Some(crate::pause::Settings {
                    sleep_ms: num("jvm.pause.sleep.time.ms", 500)?.max(1) as u64,
                    info_ms: num("jvm.pause.info-threshold.ms", 1000)?.max(0) as u64,
                    warn_ms: num("jvm.pause.warn-threshold.ms", 10_000)?.max(0) as u64,
                }),
                false => None,
            },
            raw,
            props,
            source,
            unknown,
            ensemble: None,
            metrics: Default::default(),
            trace: Default::default(),
            hold_fsync: Default::default(),
        })
    }

    /// A system property (-D, or zookeeper.* from zoo.cfg).
    pub fn prop(&self, k: &str) -> Option<&str> {
        self.props.get(k).map(String::as_str)
    }

    /// A numeric system property, `d` when unset; an error names a bad one.
    pub fn prop_num(&self, k: &str, d: i64) -> Result<i64> {
        num_prop(&self.props, k, d)
    }
}

fn num_prop(props: &BTreeMap<String, String>, k: &str, d: i64) -> Result<i64> {
    match props.get(k) {
        None => Ok(d),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .with_context(|| format!("invalid value for -D{k}: {v:?}")),
    }
}

const ENSEMBLE_PROVIDER: &str = "org.apache.zookeeper.server.auth.EnsembleAuthenticationProvider";
/// ZooKeeper's provider classes that rookeeper implements (ip and digest
/// are always on; naming them as well is harmless).
const PROVIDERS: &[&str] = &[
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider",
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider",
    "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
    "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
    ENSEMBLE_PROVIDER,
];

/// EnsembleAuthenticationProvider's settings when it is configured: the
/// comma-separated zookeeper.ensembleAuthName, trimmed (None when unset).
fn ensemble_auth(props: &BTreeMap<String, String>) -> Option<Option<HashSet<String>>> {
    let on = auth_providers(props).any(|(_, v)| v == ENSEMBLE_PROVIDER);
    on.then(|| {
        props
            .get("zookeeper.ensembleAuthName")
            .map(|csv| csv.split(',').map(|n| n.trim().to_owned()).collect())
    })
}

fn auth_providers(props: &BTreeMap<String, String>) -> impl Iterator<Item = (&str, &str)> {
    props
        .iter()
        .filter(|(k, _)| k.starts_with("zookeeper.authProvider."))
        .map(|(k, v)| (k.as_str(), v.trim()))
}

/// `zookeeper.authProvider.*` settings naming a class rookeeper lacks:
/// warned about at start, as ZooKeeper logs a class it cannot load and goes
/// on without it.
fn unknown_auth_providers(props: &BTreeMap<String, String>) -> Vec<String> {
    auth_providers(props)
        .filter(|(_, v)| !PROVIDERS.contains(v))
        .map(|(k, v)| format!("{k}={v}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_syntax() {
        let p =
            parse_properties("# c\n! c\ntickTime=3000\n clientPort : 2182\nfoo bar\nx=a\\\n b\n\n");
        assert_eq!(p["tickTime"], "3000");
        assert_eq!(p["clientPort"], "2182");
        assert_eq!(p["foo"], "bar");
        assert_eq!(p["x"], "ab");
    }

    #[test]
    fn defaults_and_derived() {
        let c = Config::default();
        assert_eq!(c.client_port, 2181);
        assert_eq!(c.min_session_timeout, 4000);
        assert_eq!(c.max_session_timeout, 40000);
        assert!(c.four_letter_words.contains("srvr"));
        assert!(!c.four_letter_words.contains("stat"));
        assert_eq!(c.max_buffer, 0xfffff);
    }

    #[test]
    fn auth_providers_from_zoo_cfg_and_properties() {
        let raw = parse_properties(
            "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n\
             authProvider.2=com.example.Custom\n\
             authProvider.3=org.apache.zookeeper.server.auth.DigestAuthenticationProvider\n",
        );
        let c = Config::build(raw.clone(), BTreeMap::new(), None).unwrap();
        assert!(c.unknown.is_empty(), "authProvider.N is a known key");
        assert_eq!(c.ensemble_auth, None);
        assert_eq!(
            c.unknown_auth_providers,
            vec!["zookeeper.authProvider.2=com.example.Custom".to_string()]
        );
        let props = BTreeMap::from([
            (
                "zookeeper.authProvider.ens".to_string(),
                " org.apache.zookeeper.server.auth.EnsembleAuthenticationProvider".to_string(),
            ),
            ("zookeeper.ensembleAuthName".to_string(), "a, b".to_string()),
        ]);
        let c = Config::build(BTreeMap::new(), props, None).unwrap();
        let names: HashSet<String> = ["a".to_string(), "b".to_string()].into();
        assert_eq!(c.ensemble_auth, Some(Some(names)));
    }

    #[test]
    fn unknown_keys_become_properties() {
        let raw = parse_properties(
            "tickTime=100\nextendedTypesEnabled=true\nwhatever=1\n4lw.commands.whitelist=*",
        );
        let c = Config::build(raw, BTreeMap::new(), None).unwrap();
        assert!(c.extended_types);
        assert_eq!(c.unknown, vec!["whatever".to_string()]);
        assert_eq!(c.prop("zookeeper.whatever"), Some("1"));
        assert!(c.four_letter_words.contains("mntr"));
        assert_eq!(c.min_session_timeout, 200);
    }

    #[test]
    fn quorum_security_and_multi_address_we_lack_stop_startup() {
        let dir = std::env::temp_dir().join(format!("rk-cfg-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("myid"), "1\n").unwrap();
        let build = |extra: &str, one: &str| {
            let text = format!(
                "dataDir={}\nserver.1={one}\nserver.2=127.0.0.1:2:3\nserver.3=127.0.0.1:4:5\n{extra}",
                dir.display()
            );
            let c = Config::build(parse_properties(&text), BTreeMap::new(), None).unwrap();
            crate::ensemble::Setup::from_config(&c).map_err(|e| e.to_string())
        };
        let plain = "127.0.0.1:6:7";
        assert!(build("", plain).is_ok());
        assert!(build("sslQuorum=false\nquorum.auth.enableSasl=false", plain).is_ok());
        // Quorum SASL needs its JAAS file.
        let e = build("quorum.auth.enableSasl=true", plain).unwrap_err();
        assert!(e.contains("java.security.auth.login.config"), "{e}");
        // Quorum TLS needs its key store.
        let e = build("sslQuorum=true", plain).unwrap_err();
        assert!(e.contains("zookeeper.ssl.quorum.keyStore.location"), "{e}");
        let e = build("quorum.auth.learnerRequireSasl=true", plain).unwrap_err();
        assert!(e.contains("learnerRequireSasl"), "{e}");
        let multi = "127.0.0.1:6:7|127.0.0.2:6:7";
        let e = build("", multi).unwrap_err();
        assert!(e.contains("Multiple address feature is disabled"), "{e}");
        let setup = build("multiAddress.enabled=true", multi).unwrap().unwrap();
        assert_eq!(setup.quorum.members[&1].host, "127.0.0.1");
        let c = Config::build(
            parse_properties(&format!(
                "dataDir={}\nserver.1={multi}\nserver.2=127.0.0.1:2:3\nserver.3=127.0.0.1:4:5\n",
                dir.display()
            )),
            BTreeMap::from([("zookeeper.multiAddress.enabled".into(), "true".into())]),
            None,
        )
        .unwrap();
        let setup = crate::ensemble::Setup::from_config(&c).unwrap().unwrap();
        assert_eq!(setup.quorum.members[&1].host, "127.0.0.1");
        // observerMasterPort: off unless positive (QuorumPeerConfig's rule).
        assert_eq!(
            build("", plain).unwrap().unwrap().observer_master_port,
            None
        );
        assert_eq!(
            build("observerMasterPort=0", plain)
                .unwrap()
                .unwrap()
                .observer_master_port,
            None
        );
        assert_eq!(
            build("observerMasterPort=2191", plain)
                .unwrap()
                .unwrap()
                .observer_master_port,
            Some(2191)
        );
        for bad in ["observerMasterPort=x", "observerMasterPort=70000"] {
            let e = build(bad, plain).unwrap_err();
            assert!(e.contains("observerMasterPort"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_values_are_errors() {
        let raw = parse_properties("tickTime=abc");
        assert!(Config::build(raw, BTreeMap::new(), None).is_err());
    }
}
