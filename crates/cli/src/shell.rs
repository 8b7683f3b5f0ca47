//! The shell: zkCli's commands (ZooKeeperMain and org.apache.zookeeper.cli),
//! with its output on stdout, its messages on stderr and its exit codes.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::runtime::Runtime;
use tokio::sync::oneshot;
use zookeeper_client::{
    AddWatchMode, Client, CreateMode, EnsembleUpdate, Error, OneshotWatcher, PersistentWatcher,
    SessionState, StateWatcher,
};

use crate::format::{self, cli_message, keeper_message, validate_path};
use crate::opts::{self, flag, valued, Flag};
use tree::quota::{limit_path, stat_path, StatsTrack, LIMIT_NODE, STAT_NODE};

const QUOTA_ROOT: &str = "/zookeeper/quota";
/// `EphemeralType.TTL`'s largest value.
const MAX_TTL: i64 = 0x00ff_ffff_ffff;

/// Every command with its option string, as zkCli's usage lists them.
pub const COMMANDS: &[(&str, &str)] = &[
    ("addWatch", "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE"),
    ("addauth", "scheme auth"),
    ("close", ""),
    ("config", "[-c] [-w] [-s]"),
    ("connect", "host:port"),
    ("create", "[-s] [-e] [-c] [-t ttl] path [data] [acl]"),
    ("delete", "[-v version] path"),
    ("deleteall", "path [-b batch size]"),
    ("delquota", "[-n|-b|-N|-B] path"),
    ("get", "[-s] [-w] path"),
    ("getAcl", "[-s] path"),
    ("getAllChildrenNumber", "path"),
    ("getEphemerals", "path"),
    ("history", ""),
    ("listquota", "path"),
    ("ls", "[-s] [-w] [-R] path"),
    ("printwatches", "on|off"),
    ("quit", ""),
    ("reconfig", "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]"),
    ("redo", "cmdno"),
    ("removewatches", "path [-c|-d|-a] [-l]"),
    ("set", "[-s] [-v version] path data"),
    ("setAcl", "[-s] [-v version] [-R] path acl"),
    ("setquota", "-n|-b|-N|-B val path"),
    ("stat", "[-w] path"),
    ("sync", "path"),
    ("version", ""),
    ("whoami", ""),
];

fn usage_of(cmd: &str) -> String {
    let opt = COMMANDS.iter().find(|(c, _)| *c == cmd).map_or("", |c| c.1);
    format!("{cmd} {opt}")
}

/// A failed command: its message goes to stderr, its code becomes the exit
/// code (`CliException.getExitCode`).
#[derive(Debug)]
pub struct CliError {
    pub msg: String,
    pub code: i32,
}

type R<T = ()> = Result<T, CliError>;

fn fail<T>(msg: impl Into<String>) -> R<T> {
    Err(CliError {
        msg: msg.into(),
        code: 1,
    })
}

/// A KeeperException about `path` wrapped as zkCli wraps it.
fn zk_fail<T>(e: Error, path: &str) -> R<T> {
    fail(cli_message(&e, path))
}

pub enum Flow {
    Continue,
    Quit,
}

/// Prints watch and session events as zkCli's default watcher does.
pub struct Sink {
    /// Held while an event prints, so that two never interleave.
    out: Mutex<()>,
    print_watches: AtomicBool,
    /// The last node event printed, by which watch, and when: a change
    /// that fires a persistent watch and another watch prints once, as the
    /// Java client's single default watcher does. (Oneshot watches of one
    /// path are deduplicated exactly, in `watch_oneshot`.)
    last: Mutex<Option<(String, u64, bool, Instant)>>,
}

impl Sink {
    fn new() -> Sink {
        Sink {
            out: Mutex::new(()),
            print_watches: AtomicBool::new(true),
            last: Mutex::new(None),
        }
    }

    fn print(&self, block: String) {
        if !self.print_watches.load(Ordering::SeqCst) {
            return;
        }
        let _held = self.out.lock().unwrap_or_else(|e| e.into_inner());
        let mut so = std::io::stdout().lock();
        let _ = so.write_all(block.as_bytes());
        let _ = so.flush();
    }

    fn session(&self, state: &str) {
        self.print(format::watcher_block(state, "None", None));
    }

    fn node(&self, watch: u64, persistent: bool, event_type: &str, path: &str) {
        let key = format!("{event_type} {path}");
        {
            let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
            if let Some((k, w, p, at)) = &*last {
                // One notification reaches all our watchers at once, but
                // their tasks may run far apart on a loaded machine (30 ms
                // was exceeded in CI); a second change of the same node
                // seen by another watch needs another command first.
                if *k == key
                    && *w != watch
                    && (persistent || *p)
                    && at.elapsed() < Duration::from_millis(500)
                {
                    return;
                }
            }
            *last = Some((key, watch, persistent, Instant::now()));
        }
        let state = "SyncConnected";
        self.print(format::watcher_block(state, event_type, Some(path)));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Exist,
    Child,
    Persistent,
    PersistentRecursive,
}

/// Which watches of a path an event consumes (`ZKWatchManager.materialize`).
fn triggered(kind: Kind, t: zookeeper_client::EventType) -> bool {
    use zookeeper_client::EventType as E;
    match t {
        E::NodeCreated | E::NodeDataChanged => matches!(kind, Kind::Data | Kind::Exist),
        E::NodeDeleted => matches!(kind, Kind::Data | Kind::Exist | Kind::Child),
        E::NodeChildrenChanged => kind == Kind::Child,
        E::Session => false,
    }
}

struct WatchEntry {
    id: u64,
    path: String,
    kind: Kind,
    cancel: Option<oneshot::Sender<()>>,
}

/// Options from the command line (`ZooKeeperMain.MyCommandOptions`).
#[derive(Debug, Clone)]
pub struct MainOpts {
    pub server: String,
    pub timeout_ms: u64,
    pub readonly: bool,
    pub command: Option<Vec<String>>,
}

pub struct Shell {
    rt: Runtime,
    opts: MainOpts,
    pub host: String,
    /// Shared with the completer, which lists children for paths.
    pub client: Arc<Mutex<Option<Client>>>,
    state: Option<StateWatcher>,
    state_task: Option<tokio::task::JoinHandle<()>>,
    pub sink: Arc<Sink>,
    watches: Arc<Mutex<Vec<WatchEntry>>>,
    next_watch: Arc<AtomicU64>,
    history: BTreeMap<i64, String>,
    pub count: i64,
    pub exit_code: i32,
    /// The last connect failed: commands fail with ConnectionLoss (as
    /// zkCli's do once its retries time out) rather than "Not connected",
    /// which is for a session closed on purpose.
    connect_failed: bool,
}

impl Shell {
    pub fn new(rt: Runtime, opts: MainOpts) -> Shell {
        Shell {
            rt,
            host: opts.server.clone(),
            opts,
            client: Arc::new(Mutex::new(None)),
            state: None,
            state_task: None,
            sink: Arc::new(Sink::new()),
            watches: Arc::new(Mutex::new(Vec::new())),
            next_watch: Arc::new(AtomicU64::new(1)),
            history: BTreeMap::new(),
            count: 0,
            exit_code: 0,
            connect_failed: false,
        }
    }

    pub fn handle(&self) -> tokio::runtime::Handle {
        self.rt.handle().clone()
    }

    fn client(&self) -> Option<Client> {
        self.client
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn session_state(&self) -> Option<SessionState> {
        self.state.as_ref().map(StateWatcher::peek_state)
    }

    pub fn prompt(&self) -> String {
        format!(
            "[zk: {}({}) {}] ",
            self.host,
            format::prompt_state(self.session_state()),
            self.count
        )
    }

    fn alive(&self) -> bool {
        self.client().is_some()
            && !matches!(
                self.session_state(),
                Some(SessionState::Closed | SessionState::AuthFailed | SessionState::Expired)
                    | None
            )
    }

    /// Opens a session to `host` (`connectToZK`), closing the current one.
    pub fn connect(&mut self, host: &str) {
        if self.client().is_some() {
            self.close_session(true);
        }
        self.host = host.to_owned();
        let timeout = Duration::from_millis(self.opts.timeout_ms.max(1));
        let connector = Client::connector()
            .with_session_timeout(timeout)
            .with_connection_timeout(timeout)
            .with_readonly(self.opts.readonly);
        let host_s = host.to_owned();
        // Bounded: a server that never answers must not hang the shell.
        let res = self.rt.block_on(async move {
            match tokio::time::timeout(timeout + Duration::from_secs(1), connector.connect(&host_s))
                .await
            {
                Ok(r) => r,
                Err(_) => Err(Error::Timeout),
            }
        });
        match res {
            Ok(client) => {
                let mut sw = client.state_watcher();
                let first = sw.state();
                self.state = Some(sw.clone());
                self.sink.session(format::state_name(first));
                let sink = self.sink.clone();
                self.state_task = Some(self.rt.spawn(async move {
                    loop {
                        let st = sw.changed().await;
                        // Closed is printed by whoever closes.
                        if st != SessionState::Closed {
                            sink.session(format::state_name(st));
                        }
                        if st.is_terminated() {
                            break;
                        }
                    }
                }));
                *self.client.lock().unwrap_or_else(|e| e.into_inner()) = Some(client);
                self.connect_failed = false;
            }
            Err(e) => {
                let why = match &e {
                    // Says what is wrong with the connect string.
                    Error::BadArguments(_) => e.to_string(),
                    e => keeper_message(e, None),
                };
                eprintln!("Unable to connect to {host}: {why}");
                self.state = None;
                self.connect_failed = true;
            }
        }
    }

    /// Closes the session: the server deletes its ephemerals before we go
    /// on. `print` says whether to show the Closed event (zkCli's close and
    /// quit do; a one-shot command just exits).
    pub fn close_session(&mut self, print: bool) {
        let Some(client) = self.client.lock().unwrap_or_else(|e| e.into_inner()).take() else {
            return;
        };
        if let Some(t) = self.state_task.take() {
            t.abort();
        }
        for w in self
            .watches
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            if let Some(c) = w.cancel {
                let _ = c.send(());
            }
        }
        let was_alive = !matches!(
            self.session_state(),
            Some(SessionState::Closed | SessionState::AuthFailed | SessionState::Expired) | None
        );
        drop(client);
        if let Some(mut sw) = self.state.clone() {
            // The client sends closeSession once every handle is gone; wait
            // (bounded) for the server to confirm.
            self.rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(5), async {
                    while !sw.peek_state().is_terminated() {
                        sw.changed().await;
                    }
                })
                .await;
            });
        }
        if print && was_alive {
            self.sink.session("Closed");
        }
    }

    pub fn print_usage() {
        let mut e = std::io::stderr().lock();
        let _ = writeln!(
            e,
            "ZooKeeper -server host:port -client-configuration properties-file cmd args"
        );
        for (c, o) in COMMANDS {
            let _ = writeln!(e, "\t{c} {o}");
        }
    }

    /// One line typed or read (`executeLine`).
    pub fn execute_line(&mut self, line: &str) -> Flow {
        if line.is_empty() {
            return Flow::Continue;
        }
        let args = opts::split_line(line);
        self.history.insert(self.count, line.to_owned());
        let flow = if args.is_empty() {
            Flow::Continue
        } else {
            self.process(args)
        };
        self.count += 1;
        flow
    }

    /// `processCmd`: runs one command and records its exit code.
    pub fn process(&mut self, args: Vec<String>) -> Flow {
        match self.process_zk(args) {
            Ok(flow) => {
                self.exit_code = 0;
                flow
            }
            Err(e) => {
                self.exit_code = e.code;
                let _ = std::io::stdout().flush();
                eprintln!("{}", e.msg);
                Flow::Continue
            }
        }
    }

    fn process_zk(&mut self, args: Vec<String>) -> R<Flow> {
        let Some(cmd) = args.first().cloned() else {
            Self::print_usage();
            return fail("No command entered");
        };
        if !COMMANDS.iter().any(|(c, _)| *c == cmd) {
            Self::print_usage();
            // CommandNotFoundException prefixes the message it is given.
            return Err(CliError {
                msg: format!("Command not found: Command not found {cmd}"),
                code: 127,
            });
        }
        match cmd.as_str() {
            "quit" => {
                self.close_session(true);
                return Ok(Flow::Quit);
            }
            "redo" if args.len() >= 2 => {
                let i = parse_java_int(&args[1]).unwrap_or(-1);
                if self.count <= i || i < 0 {
                    return fail("Command index out of range");
                }
                let line = self.history.get(&i).cloned().unwrap_or_default();
                let again = opts::split_line(&line);
                if again.first().map(String::as_str) == Some("redo") {
                    return fail("No redoing redos");
                }
                self.history.insert(self.count, line);
                let flow = self.process(again);
                if let Flow::Quit = flow {
                    return Ok(Flow::Quit);
                }
            }
            "history" => {
                for i in (self.count - 10).max(0)..=self.count {
                    println!(
                        "{i} - {}",
                        self.history.get(&i).map_or("null", String::as_str)
                    );
                }
            }
            "printwatches" => {
                if args.len() == 1 {
                    let on = self.sink.print_watches.load(Ordering::SeqCst);
                    println!("printwatches is {}", if on { "on" } else { "off" });
                } else {
                    // Events of the commands before this one reached the
                    // client before their replies, but our watcher tasks
                    // run on other threads: let them print (or not) under
                    // the setting they were sent under.
                    std::thread::sleep(Duration::from_millis(50));
                    self.sink
                        .print_watches
                        .store(args[1] == "on", Ordering::SeqCst);
                }
            }
            "connect" => {
                let host = args.get(1).cloned().unwrap_or_else(|| self.host.clone());
                self.connect(&host);
            }
            _ => {}
        }
        if !self.alive() {
            if self.connect_failed
                && !matches!(
                    cmd.as_str(),
                    "connect" | "history" | "printwatches" | "redo"
                )
            {
                return fail(keeper_message(&Error::ConnectionLoss, None));
            }
            println!("Not connected");
            return Ok(Flow::Continue);
        }
        let Some(zk) = self.client() else {
            return Ok(Flow::Continue);
        };
        match cmd.as_str() {
            "addWatch" => self.add_watch(&zk, &args)?,
            "addauth" => self.add_auth(&zk, &args)?,
            "close" => self.close_session(true),
            "config" => self.config(&zk, &args)?,
            "create" => self.create(&zk, &args)?,
            "delete" => self.delete(&zk, &args)?,
            "deleteall" => self.delete_all(&zk, &args)?,
            "delquota" => self.del_quota(&zk, &args)?,
            "get" => self.get(&zk, &args)?,
            "getAcl" => self.get_acl(&zk, &args)?,
            "getAllChildrenNumber" => self.all_children_number(&zk, &args)?,
            "getEphemerals" => self.get_ephemerals(&zk, &args)?,
            "listquota" => self.list_quota(&zk, &args)?,
            "ls" => self.ls(&zk, &args)?,
            "reconfig" => self.reconfig(&zk, &args)?,
            "removewatches" => self.remove_watches(&args)?,
            "set" => self.set(&zk, &args)?,
            "setAcl" => self.set_acl(&zk, &args)?,
            "setquota" => self.set_quota(&zk, &args)?,
            "stat" => self.stat(&zk, &args)?,
            "sync" => self.sync(&zk, &args)?,
            "version" => self.version(&args)?,
            "whoami" => self.whoami(&zk)?,
            _ => {}
        }
        Ok(Flow::Continue)
    }

    // ---- watches ----

    fn register(&self, path: &str, kind: Kind) -> Option<(u64, oneshot::Receiver<()>)> {
        let mut ws = self.watches.lock().unwrap_or_else(|e| e.into_inner());
        // The Java client keeps one default watcher per path and kind.
        if ws.iter().any(|w| w.path == path && w.kind == kind) {
            return None;
        }
        let id = self.next_watch.fetch_add(1, Ordering::SeqCst);
        let (tx, rx) = oneshot::channel();
        ws.push(WatchEntry {
            id,
            path: path.to_owned(),
            kind,
            cancel: Some(tx),
        });
        Some((id, rx))
    }

    fn watch_oneshot(&self, path: &str, kind: Kind, w: OneshotWatcher) {
        let Some((id, cancel)) = self.register(path, kind) else {
            return;
        };
        let sink = self.sink.clone();
        let watches = self.watches.clone();
        self.rt.spawn(async move {
            tokio::select! {
                ev = w.changed() => {
                    if ev.event_type == zookeeper_client::EventType::Session {
                        return;
                    }
                    // The Java client consumes, for one notification, every
                    // watch of the path that it triggers and calls the
                    // default watcher once: the first of our watchers to
                    // see it does the same, the others find themselves gone.
                    let first = {
                        let mut ws = watches.lock().unwrap_or_else(|e| e.into_inner());
                        let present = ws.iter().any(|x| x.id == id);
                        if present {
                            ws.retain(|x| {
                                x.id != id && !(x.path == ev.path && triggered(x.kind, ev.event_type))
                            });
                        }
                        present
                    };
                    if first {
                        sink.node(id, false, format::event_type_name(ev.event_type), &ev.path);
                    }
                }
                _ = cancel => {}
            }
        });
    }

    fn watch_persistent(&self, path: &str, kind: Kind, mut w: PersistentWatcher) {
        let Some((id, mut cancel)) = self.register(path, kind) else {
            return;
        };
        let sink = self.sink.clone();
        self.rt.spawn(async move {
            loop {
                tokio::select! {
                    ev = w.changed() => {
                        if ev.event_type == zookeeper_client::EventType::Session {
                            if ev.session_state.is_terminated() {
                                break;
                            }
                            continue;
                        }
                        sink.node(id, true, format::event_type_name(ev.event_type), &ev.path);
                    }
                    _ = &mut cancel => break,
                }
            }
        });
    }

    fn add_watch(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[valued("m")], args)?;
        if p.args.len() != 2 {
            return fail(usage_of("addWatch"));
        }
        let (mode, kind) = match p.value("m").map(str::to_uppercase).as_deref() {
            None | Some("PERSISTENT_RECURSIVE") => {
                (AddWatchMode::PersistentRecursive, Kind::PersistentRecursive)
            }
            Some("PERSISTENT") => (AddWatchMode::Persistent, Kind::Persistent),
            Some(_) => return fail(usage_of("addWatch")),
        };
        let path = &p.args[1];
        check_path(path)?;
        match self.rt.block_on(zk.watch(path, mode)) {
            Ok(w) => self.watch_persistent(path, kind, w),
            Err(e) => return zk_fail(e, path),
        }
        Ok(())
    }

    fn remove_watches(&self, args: &[String]) -> R {
        let p = parse(&[flag("c"), flag("d"), flag("a"), flag("l")], args)?;
        if p.args.len() < 2 {
            return fail(usage_of("removewatches"));
        }
        let path = &p.args[1];
        check_path(path)?;
        let (child, data) = if p.has("c") {
            (true, false)
        } else if p.has("d") {
            (false, true)
        } else {
            (true, true)
        };
        let mut removed = Vec::new();
        {
            let mut ws = self.watches.lock().unwrap_or_else(|e| e.into_inner());
            let mut keep = Vec::new();
            for w in ws.drain(..) {
                let hit = w.path == *path
                    && match w.kind {
                        Kind::Child => child,
                        Kind::Data | Kind::Exist => data,
                        Kind::Persistent | Kind::PersistentRecursive => child && data,
                    };
                if hit {
                    removed.push(w);
                } else {
                    keep.push(w);
                }
            }
            *ws = keep;
        }
        if removed.is_empty() {
            return fail(keeper_message(&Error::NoWatcher, Some(path)));
        }
        let had_child = removed.iter().any(|w| {
            matches!(
                w.kind,
                Kind::Child | Kind::Persistent | Kind::PersistentRecursive
            )
        });
        let had_data = removed.iter().any(|w| w.kind != Kind::Child);
        for w in removed {
            if let Some(c) = w.cancel {
                let _ = c.send(());
            }
        }
        // Dropped watchers are removed from the server by the client's
        // session task; give it a moment so a following command sees it.
        std::thread::sleep(Duration::from_millis(50));
        if had_child {
            self.sink.print(format::watcher_block(
                "SyncConnected",
                "ChildWatchRemoved",
                Some(path),
            ));
        }
        if had_data {
            self.sink.print(format::watcher_block(
                "SyncConnected",
                "DataWatchRemoved",
                Some(path),
            ));
        }
        Ok(())
    }

    // ---- commands ----

    fn add_auth(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[], args)?;
        if p.args.len() < 2 {
            return fail(usage_of("addauth"));
        }
        let auth = p.args.get(2).map(String::as_bytes).unwrap_or_default();
        self.rt
            .block_on(zk.auth(&p.args[1], auth))
            .or_else(|e| fail(keeper_message(&e, None)))
    }

    fn config(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[flag("s"), flag("w"), flag("c")], args)?;
        let res = if p.has("w") {
            self.rt
                .block_on(zk.get_and_watch_config())
                .map(|(d, s, w)| {
                    self.watch_oneshot("/zookeeper/config", Kind::Data, w);
                    (d, s)
                })
        } else {
            self.rt.block_on(zk.get_config())
        };
        let (data, stat) = res.or_else(|e| fail(keeper_message(&e, Some("/zookeeper/config"))))?;
        let text = String::from_utf8_lossy(&data).into_owned();
        if p.has("c") {
            println!("{}", client_config_str(&text));
        } else {
            println!("{text}");
        }
        if p.has("s") {
            print!("{}", format::stat(&stat));
        }
        Ok(())
    }

    fn create(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[flag("e"), flag("s"), flag("c"), valued("t")], args)?;
        if p.args.len() < 2 {
            return fail(usage_of("create"));
        }
        let (e, s, c, t) = (p.has("e"), p.has("s"), p.has("c"), p.has("t"));
        if c && (e || s) {
            return fail("-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.");
        }
        let ttl = if t {
            match p.value("t").unwrap_or_default().trim().parse::<i64>() {
                Ok(v) => v,
                Err(_) => return fail("-t argument must be a long value"),
            }
        } else {
            0
        };
        if t && e {
            return fail("TTLs cannot be used with Ephemeral znodes");
        }
        if t && c {
            return fail("TTLs cannot be used with Container znodes");
        }
        let mode = match (e, s, c) {
            (true, true, _) => CreateMode::EphemeralSequential,
            (true, false, _) => CreateMode::Ephemeral,
            (false, true, _) => CreateMode::PersistentSequential,
            (false, false, true) => CreateMode::Container,
            _ => CreateMode::Persistent,
        };
        if t && (ttl <= 0 || ttl > MAX_TTL) {
            return fail(format!(
                "ttl must be positive and cannot be larger than: {MAX_TTL}"
            ));
        }
        let path = &p.args[1];
        validate_path(path, s).or_else(fail)?;
        let data = p.args.get(2).map(String::as_bytes).unwrap_or_default();
        let acl = match p.args.get(3) {
            Some(a) => format::parse_acl(a),
            None => vec![zookeeper_client::Acl::new(
                zookeeper_client::Permission::ALL,
                zookeeper_client::AuthId::anyone(),
            )],
        };
        if acl.is_empty() {
            // The Java client refuses an empty ACL itself, with no path.
            eprintln!("{}", keeper_message(&Error::InvalidAcl, None));
            return fail("Acl is not valid : null");
        }
        let acls = zookeeper_client::Acls::new(&acl);
        let mut options = mode.with_acls(acls);
        if t {
            options = options.with_ttl(Duration::from_millis(ttl as u64));
        }
        match self.rt.block_on(zk.create(path, data, &options)) {
            Ok((_, seq)) => {
                let created = if s {
                    format!("{path}{seq}")
                } else {
                    path.clone()
                };
                eprintln!("Created {created}");
                Ok(())
            }
            Err(Error::InvalidAcl) => {
                eprintln!("{}", keeper_message(&Error::InvalidAcl, Some(path)));
                zk_fail(Error::InvalidAcl, path)
            }
            Err(e) => zk_fail(e, path),
        }
    }

    fn delete(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[valued("v")], args)?;
        if p.args.len() < 2 {
            return fail(usage_of("delete"));
        }
        if p.args.len() > 2 {
            eprintln!("'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.");
        }
        let version = version_opt(&p)?;
        let path = &p.args[1];
        check_path(path)?;
        self.rt
            .block_on(zk.delete(path, version))
            .or_else(|e| zk_fail(e, path))
    }

    /// `ZKUtil.listSubTreeBFS`.
    fn subtree_bfs(&self, zk: &Client, root: &str) -> R<Vec<String>> {
        let mut out = vec![root.to_owned()];
        let mut i = 0;
        while i < out.len() {
            let node = out[i].clone();
            let children = self
                .rt
                .block_on(zk.list_children(&node))
                .or_else(|e| zk_fail(e, &node))?;
            for c in children {
                out.push(join(&node, &c));
            }
            i += 1;
        }
        Ok(out)
    }

    fn delete_all(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[valued("b")], args)?;
        if p.args.len() < 2 {
            return fail(usage_of("deleteall"));
        }
        let batch: i32 = match p.value("b") {
            None => 1000,
            Some(v) => match v.trim().parse() {
                Ok(b) => b,
                Err(_) => return fail("-b argument must be an int value"),
            },
        };
        let path = &p.args[1];
        check_path(path)?;
        let nodes = self.subtree_bfs(zk, path)?;
        if batch <= 0 {
            for n in nodes.iter().rev() {
                self.rt
                    .block_on(zk.delete(n, None))
                    .or_else(|e| zk_fail(e, n))?;
            }
            return Ok(());
        }
        let mut ok = true;
        for chunk in nodes
            .iter()
            .rev()
            .collect::<Vec<_>>()
            .chunks(batch as usize)
        {
            let mut w = zk.new_multi_writer();
            for n in chunk {
                if w.add_delete(n, None).is_err() {
                    ok = false;
                }
            }
            if self.rt.block_on(w.commit()).is_err() {
                ok = false;
                break;
            }
        }
        if !ok {
            eprintln!("Failed to delete some node(s) in the subtree!");
        }
        Ok(())
    }

    fn get(&self, zk: &Client, args: &[String]) -> R {
        let specs = [flag("s"), flag("w")];
        let mut p = parse(&specs, args)?;
        if p.args.len() < 2 {
            return fail(usage_of("get"));
        }
        if p.args.len() > 2 {
            p = deprecated(
                &specs,
                args,
                "'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead.",
            )?;
        }
        let path = &p.args[1];
        check_path(path)?;
        let res = if p.has("w") {
            self.rt
                .block_on(zk.get_and_watch_data(path))
                .map(|(d, s, w)| {
                    self.watch_oneshot(path, Kind::Data, w);
                    (d, s)
                })
        } else {
            self.rt.block_on(zk.get_data(path))
        };
        let (data, stat) = res.or_else(|e| zk_fail(e, path))?;
        println!("{}", String::from_utf8_lossy(&data));
        if p.has("s") {
            print!("{}", format::stat(&stat));
        }
        Ok(())
    }

    fn get_acl(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[flag("s")], args)?;
        if p.args.len() < 2 {
            return fail(usage_of("getAcl"));
        }
        let path = &p.args[1];
        check_path(path)?;
        let (acl, stat) = self
            .rt
            .block_on(zk.get_acl(path))
            .or_else(|e| zk_fail(e, path))?;
        for a in &acl {
            println!("{}", format::acl(a));
        }
        if p.has("s") {
            print!("{}", format::stat(&stat));
        }
        Ok(())
    }

    fn all_children_number(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[], args)?;
        if p.args.len() < 2 {
            return fail(usage_of("getAllChildrenNumber"));
        }
        let path = &p.args[1];
        check_path(path)?;
        let n = self
            .rt
            .block_on(zk.count_descendants_number(path))
            .or_else(|e| zk_fail(e, path))?;
        println!("{n}");
        Ok(())
    }

    fn get_ephemerals(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[], args)?;
        let path = p.args.get(1).map_or("/", String::as_str);
        check_path(path)?;
        let list = self
            .rt
            .block_on(zk.list_ephemerals(path))
            .or_else(|e| zk_fail(e, path))?;
        println!("[{}]", list.join(", "));
        Ok(())
    }

    fn ls(&self, zk: &Client, args: &[String]) -> R {
        let specs = [flag("?"), flag("s"), flag("w"), flag("R")];
        let mut p = parse(&specs, args)?;
        if p.has("?") {
            println!("usage: ls [options] path");
            println!(" -?   help");
            println!(" -R   recurse");
            println!(" -s   stat");
            println!(" -w   watch");
        }
        if p.args.len() > 2 {
            p = deprecated(
                &specs,
                args,
                "'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.",
            )?;
        }
        if p.args.len() < 2 {
            return fail(usage_of("ls"));
        }
        let path = &p.args[1];
        let watch = p.has("w");
        check_path(path)?;
        if p.has("R") {
            // ZKUtil.visitSubTreeDFS: the node, then each level sorted.
            if watch {
                let (_, _, w) = self
                    .rt
                    .block_on(zk.get_and_watch_data(path))
                    .or_else(|e| zk_fail(e, path))?;
                self.watch_oneshot(path, Kind::Data, w);
            } else {
                self.rt
                    .block_on(zk.get_data(path))
                    .or_else(|e| zk_fail(e, path))?;
            }
            println!("{path}");
            return self.ls_r(zk, path, watch);
        }
        let res = if watch {
            self.rt
                .block_on(zk.get_and_watch_children(path))
                .map(|(c, s, w)| {
                    self.watch_oneshot(path, Kind::Child, w);
                    (c, s)
                })
        } else {
            self.rt.block_on(zk.get_children(path))
        };
        let (mut children, stat) = res.or_else(|e| zk_fail(e, path))?;
        children.sort();
        println!("[{}]", children.join(", "));
        if p.has("s") {
            print!("{}", format::stat(&stat));
        }
        Ok(())
    }

    /// `visitSubTreeDFSHelper`: a node gone meanwhile is skipped, other
    /// errors end the walk.
    fn ls_r(&self, zk: &Client, path: &str, watch: bool) -> R {
        let res = if watch {
            self.rt
                .block_on(zk.list_and_watch_children(path))
                .map(|(c, w)| {
                    self.watch_oneshot(path, Kind::Child, w);
                    c
                })
        } else {
            self.rt.block_on(zk.list_children(path))
        };
        let mut children = match res {
            Ok(c) => c,
            Err(Error::NoNode) => return Ok(()),
            Err(e) => return zk_fail(e, path),
        };
        children.sort();
        for c in &children {
            println!("{}", join(path, c));
        }
        for c in &children {
            self.ls_r(zk, &join(path, c), watch)?;
        }
        Ok(())
    }

    fn reconfig(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(
            &[
                flag("s"),
                valued("v"),
                valued("file"),
                valued("members"),
                valued("add"),
                valued("remove"),
            ],
            args,
        )?;
        let (file, members, add, remove) = (
            p.has("file"),
            p.has("members"),
            p.has("add"),
            p.has("remove"),
        );
        if !(file || members || add || remove) {
            return fail(usage_of("reconfig"));
        }
        let version = match p.value("v") {
            Some(v) => match i64::from_str_radix(v.trim_start_matches("0x"), 16) {
                Ok(v) => Some(v),
                Err(_) => return fail("-v must be followed by a long (configuration version)"),
            },
            None => None,
        };
        if (file || members) && (add || remove) {
            return fail("Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)");
        }
        if file && members {
            return fail(
                "Can't use -file and -members together (conflicting non-incremental modes)",
            );
        }
        let lower = |k: &str| p.value(k).map(str::to_lowercase);
        let mut members_v = lower("members");
        if let Some(f) = p.value("file") {
            match std::fs::read_to_string(f) {
                Ok(text) => {
                    let servers: Vec<String> = text
                        .lines()
                        .map(str::trim)
                        .filter(|l| l.starts_with("server."))
                        .map(str::to_owned)
                        .collect();
                    members_v = Some(servers.join(","));
                }
                Err(e) => return fail(format!("Error processing {f}{e}")),
            }
        }
        let split = |s: &Option<String>| -> Vec<String> {
            s.as_deref()
                .map(|s| {
                    s.split(',')
                        .filter(|x| !x.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default()
        };
        let (joining, leaving, members_l) = (
            split(&lower("add")),
            split(&lower("remove")),
            split(&members_v),
        );
        let res = if members_v.is_some() {
            let it: Vec<&str> = members_l.iter().map(String::as_str).collect();
            self.rt.block_on(zk.update_ensemble(
                EnsembleUpdate::New {
                    ensemble: it.into_iter(),
                },
                version,
            ))
        } else {
            let j: Vec<&str> = joining.iter().map(String::as_str).collect();
            let l: Vec<&str> = leaving.iter().map(String::as_str).collect();
            self.rt.block_on(zk.update_ensemble(
                EnsembleUpdate::Incremental {
                    joinings: j.into_iter(),
                    leavings: l.into_iter(),
                },
                version,
            ))
        };
        let (data, stat) = res.or_else(|e| fail(keeper_message(&e, None)))?;
        println!(
            "Committed new configuration:\n{}",
            String::from_utf8_lossy(&data)
        );
        if p.has("s") {
            print!("{}", format::stat(&stat));
        }
        Ok(())
    }

    fn set(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[flag("s"), valued("v")], args)?;
        if p.args.len() < 3 {
            return fail(usage_of("set"));
        }
        let version = version_opt(&p)?;
        let path = &p.args[1];
        check_path(path)?;
        let stat = self
            .rt
            .block_on(zk.set_data(path, p.args[2].as_bytes(), version))
            .or_else(|e| zk_fail(e, path))?;
        if p.has("s") {
            print!("{}", format::stat(&stat));
        }
        Ok(())
    }

    fn set_acl(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[flag("s"), valued("v"), flag("R")], args)?;
        if p.args.len() < 3 {
            return fail(usage_of("setAcl"));
        }
        let path = &p.args[1];
        let acl = format::parse_acl(&p.args[2]);
        let version = version_opt(&p)?;
        check_path(path)?;
        if p.has("R") {
            self.rt
                .block_on(zk.get_data(path))
                .or_else(|e| zk_fail(e, path))?;
            let mut all = vec![path.clone()];
            self.collect_dfs(zk, path, &mut all);
            for n in all {
                if let Err(e) = self.rt.block_on(zk.set_acl(&n, &acl, version)) {
                    print!("{}", keeper_message(&e, Some(&n)));
                }
            }
            return Ok(());
        }
        let stat = self
            .rt
            .block_on(zk.set_acl(path, &acl, version))
            .or_else(|e| zk_fail(e, path))?;
        if p.has("s") {
            print!("{}", format::stat(&stat));
        }
        Ok(())
    }

    /// The visit order of `ZKUtil.visitSubTreeDFS` below `path`.
    fn collect_dfs(&self, zk: &Client, path: &str, out: &mut Vec<String>) {
        let Ok(mut children) = self.rt.block_on(zk.list_children(path)) else {
            return;
        };
        children.sort();
        for c in &children {
            out.push(join(path, c));
        }
        for c in &children {
            self.collect_dfs(zk, &join(path, c), out);
        }
    }

    fn stat(&self, zk: &Client, args: &[String]) -> R {
        let specs = [flag("w")];
        let mut p = parse(&specs, args)?;
        if p.args.len() < 2 {
            return fail(usage_of("stat"));
        }
        if p.args.len() > 2 {
            p = deprecated(
                &specs,
                args,
                "'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.",
            )?;
        }
        let path = &p.args[1];
        check_path(path)?;
        let res = if p.has("w") {
            self.rt
                .block_on(zk.check_and_watch_stat(path))
                .map(|(s, w)| {
                    let kind = if s.is_some() { Kind::Data } else { Kind::Exist };
                    self.watch_oneshot(path, kind, w);
                    s
                })
        } else {
            self.rt.block_on(zk.check_stat(path))
        };
        match res.or_else(|e| zk_fail(e, path))? {
            Some(s) => {
                print!("{}", format::stat(&s));
                Ok(())
            }
            None => zk_fail(Error::NoNode, path),
        }
    }

    fn sync(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[], args)?;
        if p.args.len() < 2 {
            return fail(usage_of("sync"));
        }
        let path = &p.args[1];
        check_path(path)?;
        let res = self
            .rt
            .block_on(async { tokio::time::timeout(Duration::from_secs(30), zk.sync(path)).await });
        match res {
            Ok(Ok(())) => println!("Sync is OK"),
            Ok(Err(e)) => println!("Sync has failed. rc={}", error_code(&e)),
            Err(_) => return fail("java.util.concurrent.TimeoutException"),
        }
        Ok(())
    }

    fn version(&self, args: &[String]) -> R {
        let p = parse(&[], args)?;
        if p.args.len() > 1 {
            return fail(usage_of("version"));
        }
        println!(
            "ZooKeeper CLI version: rookeeper {} (zkCli 3.8 compatible)",
            env!("CARGO_PKG_VERSION")
        );
        Ok(())
    }

    fn whoami(&self, zk: &Client) -> R {
        let users = self
            .rt
            .block_on(zk.list_auth_users())
            .or_else(|e| fail(keeper_message(&e, None)))?;
        println!("Auth scheme: User");
        for u in users {
            println!("{}: {}", u.scheme(), u.user());
        }
        Ok(())
    }

    // ---- quotas (SetQuotaCommand, ListQuotaCommand, DelQuotaCommand) ----

    fn exists(&self, zk: &Client, path: &str) -> Result<bool, Error> {
        self.rt.block_on(zk.check_stat(path)).map(|s| s.is_some())
    }

    fn create_ignoring_exists(&self, zk: &Client, path: &str, data: &[u8]) -> Result<(), Error> {
        let opts = CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
        match self.rt.block_on(zk.create(path, data, &opts)) {
            Ok(_) | Err(Error::NodeExists) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn read_stats(&self, zk: &Client, path: &str) -> Result<StatsTrack, Error> {
        self.rt
            .block_on(zk.get_data(path))
            .map(|(d, _)| StatsTrack::parse(&d))
    }

    fn set_quota(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[valued("n"), valued("b"), valued("N"), valued("B")], args)?;
        group_check(
            &p,
            &[
                ("n", "num soft quota"),
                ("b", "bytes soft quota"),
                ("N", "num hard quota"),
                ("B", "bytes hard quota"),
            ],
            true,
        )?;
        if p.args.len() < 2 {
            return fail(usage_of("setquota"));
        }
        let path = &p.args[1];
        if path.starts_with(QUOTA_ROOT) {
            eprintln!("cannot set a quota under the path: {QUOTA_ROOT}");
            return Ok(());
        }
        let mut quota = StatsTrack::default();
        for k in [
            StatsTrack::COUNT,
            StatsTrack::BYTES,
            StatsTrack::COUNT_HARD,
            StatsTrack::BYTES_HARD,
        ] {
            quota.set(k, -1);
        }
        for (f, key, is_count) in [
            ("n", StatsTrack::COUNT, true),
            ("b", StatsTrack::BYTES, false),
            ("N", StatsTrack::COUNT_HARD, true),
            ("B", StatsTrack::BYTES_HARD, false),
        ] {
            let Some(v) = p.value(f) else { continue };
            let parsed: Result<i64, _> = if is_count {
                v.parse::<i32>().map(i64::from)
            } else {
                v.parse::<i64>()
            };
            match parsed {
                Ok(n) if is_count && n <= 0 => {
                    eprintln!("the num quota must be greater than zero");
                    return Ok(());
                }
                Ok(n) if !is_count && n < 0 => {
                    eprintln!("the bytes quota must be greater than or equal to zero");
                    return Ok(());
                }
                Ok(n) => quota.set(key, n),
                Err(_) => {
                    eprintln!("NumberFormatException happens when parsing the option value");
                    return Ok(());
                }
            }
        }
        check_path(path)?;
        match self.create_quota(zk, path, &quota) {
            Ok(()) => Ok(()),
            Err(QuotaErr::Arg(m)) => fail(m),
            Err(QuotaErr::Zk(e, p)) => zk_fail(e, &p),
        }
    }

    fn create_quota(&self, zk: &Client, path: &str, quota: &StatsTrack) -> Result<(), QuotaErr> {
        let zke = |p: &str| {
            let p = p.to_owned();
            move |e| QuotaErr::Zk(e, p)
        };
        if !self.exists(zk, path).map_err(zke(path))? {
            return Err(QuotaErr::Arg(format!("{path} does not exist.")));
        }
        self.check_if_child_quota(zk, path)?;
        self.check_if_parent_quota(zk, path)?;
        if !self.exists(zk, QUOTA_ROOT).map_err(zke(QUOTA_ROOT))? {
            self.create_ignoring_exists(zk, "/zookeeper", b"")
                .map_err(zke("/zookeeper"))?;
            self.create_ignoring_exists(zk, QUOTA_ROOT, b"")
                .map_err(zke(QUOTA_ROOT))?;
        }
        let mut qp = QUOTA_ROOT.to_owned();
        for part in path.split('/').filter(|s| !s.is_empty()) {
            qp.push('/');
            qp.push_str(part);
            if !self.exists(zk, &qp).map_err(zke(&qp))? {
                self.create_ignoring_exists(zk, &qp, b"")
                    .map_err(zke(&qp))?;
            }
        }
        let sp = format!("{qp}/{STAT_NODE}");
        let lp = format!("{qp}/{LIMIT_NODE}");
        if !self.exists(zk, &lp).map_err(zke(&lp))? {
            let opts = CreateMode::Persistent.with_acls(zookeeper_client::Acls::anyone_all());
            self.rt
                .block_on(zk.create(&lp, quota.to_string().as_bytes(), &opts))
                .map_err(zke(&lp))?;
            let mut stats = StatsTrack::default();
            stats.set(StatsTrack::COUNT, 0);
            stats.set(StatsTrack::BYTES, 0);
            self.rt
                .block_on(zk.create(&sp, stats.to_string().as_bytes(), &opts))
                .map_err(zke(&sp))?;
            let limits = self.read_stats(zk, &lp).map_err(zke(&lp))?;
            let stats = self.read_stats(zk, &sp).map_err(zke(&sp))?;
            quota_warnings(&limits, &stats);
        } else {
            let mut limits = self.read_stats(zk, &lp).map_err(zke(&lp))?;
            for k in [
                StatsTrack::COUNT,
                StatsTrack::BYTES,
                StatsTrack::COUNT_HARD,
                StatsTrack::BYTES_HARD,
            ] {
                if quota.get(k) > -1 {
                    limits.set(k, quota.get(k));
                }
            }
            let stats = self.read_stats(zk, &sp).map_err(zke(&sp))?;
            quota_warnings(&limits, &stats);
            self.rt
                .block_on(zk.set_data(&lp, limits.to_string().as_bytes(), None))
                .map_err(zke(&lp))?;
        }
        Ok(())
    }

    fn check_if_child_quota(&self, zk: &Client, path: &str) -> Result<(), QuotaErr> {
        let real = format!("{QUOTA_ROOT}{path}");
        match self.rt.block_on(zk.get_data(&real)) {
            Ok(_) => {}
            Err(Error::NoNode) => return Ok(()),
            Err(e) => return Err(QuotaErr::Zk(e, real)),
        }
        let mut all = vec![real.clone()];
        self.collect_dfs(zk, &real, &mut all);
        for qp in all {
            let children = match self.rt.block_on(zk.list_children(&qp)) {
                Ok(c) => c,
                Err(_) => continue,
            };
            if qp != real && children.iter().any(|c| c == LIMIT_NODE) {
                return Err(QuotaErr::Arg(format!(
                    "{path} has a child {} which has a quota",
                    &qp[QUOTA_ROOT.len()..]
                )));
            }
        }
        Ok(())
    }

    fn check_if_parent_quota(&self, zk: &Client, path: &str) -> Result<(), QuotaErr> {
        let parts: Vec<&str> = path.split('/').collect();
        let mut qp = QUOTA_ROOT.to_owned();
        let own = format!("{QUOTA_ROOT}{path}");
        for part in parts.iter().take(parts.len().saturating_sub(1)).skip(1) {
            qp.push('/');
            qp.push_str(part);
            let children = match self.rt.block_on(zk.list_children(&qp)) {
                Ok(c) => c,
                Err(Error::NoNode) => return Ok(()),
                Err(e) => return Err(QuotaErr::Zk(e, qp)),
            };
            if children.is_empty() {
                return Ok(());
            }
            if qp != own && children.iter().any(|c| c == LIMIT_NODE) {
                return Err(QuotaErr::Arg(format!(
                    "{path} has a parent {} which has a quota",
                    &qp[QUOTA_ROOT.len()..]
                )));
            }
        }
        Ok(())
    }

    fn list_quota(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[], args)?;
        if p.args.len() < 2 {
            return fail(usage_of("listquota"));
        }
        let path = &p.args[1];
        eprintln!("absolute path is {}", limit_path(path));
        let limits = match self.read_stats(zk, &limit_path(path)) {
            Ok(l) => l,
            Err(Error::NoNode) => {
                eprintln!("quota for {path} does not exist.");
                return Ok(());
            }
            Err(e) => return zk_fail(e, &limit_path(path)),
        };
        let stats = match self.read_stats(zk, &stat_path(path)) {
            Ok(s) => s,
            Err(Error::NoNode) => {
                eprintln!("quota for {path} does not exist.");
                return Ok(());
            }
            Err(e) => return zk_fail(e, &stat_path(path)),
        };
        println!("Output quota for {path} {limits}");
        println!("Output stat for {path} {stats}");
        Ok(())
    }

    fn del_quota(&self, zk: &Client, args: &[String]) -> R {
        let p = parse(&[flag("n"), flag("b"), flag("N"), flag("B")], args)?;
        group_check(
            &p,
            &[
                ("n", "num soft quota"),
                ("b", "bytes soft quota"),
                ("N", "num hard quota"),
                ("B", "bytes hard quota"),
            ],
            false,
        )?;
        if p.args.len() < 2 {
            return fail(usage_of("delquota"));
        }
        let path = &p.args[1];
        let parent = format!("{QUOTA_ROOT}{path}");
        let lp = limit_path(path);
        match self.exists(zk, &lp) {
            Ok(false) => {
                println!("Quota does not exist for {path}");
                return Ok(());
            }
            Ok(true) => {}
            Err(e) => return zk_fail(e, &lp),
        }
        let mut limits = match self.read_stats(zk, &lp) {
            Ok(l) => l,
            Err(Error::NoNode) => {
                eprintln!("quota for {path} does not exist.");
                return Ok(());
            }
            Err(e) => return zk_fail(e, &lp),
        };
        let flags = ["n", "b", "N", "B"];
        if !flags.iter().any(|f| p.has(f)) {
            let children = self
                .rt
                .block_on(zk.list_children(&parent))
                .or_else(|e| zk_fail(e, &parent))?;
            for c in children {
                let cp = format!("{parent}/{c}");
                self.rt
                    .block_on(zk.delete(&cp, None))
                    .or_else(|e| zk_fail(e, &cp))?;
            }
            // trimProcQuotas: drop the now empty parents up to the root.
            let mut cur = parent;
            while cur != QUOTA_ROOT {
                let children = self
                    .rt
                    .block_on(zk.list_children(&cur))
                    .or_else(|e| zk_fail(e, &cur))?;
                if !children.is_empty() {
                    break;
                }
                self.rt
                    .block_on(zk.delete(&cur, None))
                    .or_else(|e| zk_fail(e, &cur))?;
                cur = cur[..cur.rfind('/').unwrap_or(0)].to_owned();
            }
        } else {
            for (f, k) in [
                ("n", StatsTrack::COUNT),
                ("b", StatsTrack::BYTES),
                ("N", StatsTrack::COUNT_HARD),
                ("B", StatsTrack::BYTES_HARD),
            ] {
                if p.has(f) {
                    limits.set(k, -1);
                }
            }
            self.rt
                .block_on(zk.set_data(&lp, limits.to_string().as_bytes(), None))
                .or_else(|e| zk_fail(e, &lp))?;
        }
        Ok(())
    }
}

enum QuotaErr {
    Arg(String),
    Zk(Error, String),
}

/// `SetQuotaCommand.checkQuota`: a limit below what the subtree already
/// holds is allowed, with a warning.
fn quota_warnings(limits: &StatsTrack, stats: &StatsTrack) {
    if (limits.count() > -1 && limits.count() < stats.count())
        || (limits.count_hard() > -1 && limits.count_hard() < stats.count())
    {
        println!(
            "[Warning]: the count quota you create is less than the existing count:{}",
            stats.count()
        );
    }
    if (limits.bytes() > -1 && limits.bytes() < stats.bytes())
        || (limits.bytes_hard() > -1 && limits.bytes_hard() < stats.bytes())
    {
        println!(
            "[Warning]: the bytes quota you create is less than the existing bytes:{}",
            stats.bytes()
        );
    }
}

/// commons-cli's option groups: at most one of them, and (setquota) one
/// required.
fn group_check(p: &opts::Parsed, group: &[(&str, &str)], required: bool) -> R {
    let mut seen: Option<&str> = None;
    for (f, _) in group {
        if p.has(f) {
            if let Some(prev) = seen {
                return fail(format!("org.apache.commons.cli.AlreadySelectedException: The option '{f}' was specified but an option from this group has already been selected: '{prev}'"));
            }
            seen = Some(f);
        }
    }
    if required && seen.is_none() {
        let names: Vec<String> = group.iter().map(|(f, d)| format!("-{f} {d}")).collect();
        return fail(format!(
            "org.apache.commons.cli.MissingOptionException: Missing required option: [{}]",
            names.join(", ")
        ));
    }
    Ok(())
}

fn parse(specs: &[Flag], args: &[String]) -> R<opts::Parsed> {
    opts::parse(specs, args).or_else(fail)
}

/// `retainCompatibility`: the old `cmd path watch` form; the third word
/// becomes `-w`, as zkCli does, after the hint.
fn deprecated(specs: &[Flag], args: &[String], hint: &str) -> R<opts::Parsed> {
    eprintln!("{hint}");
    let mut a = args.to_vec();
    if a.len() > 2 {
        a[2] = "-w".into();
    }
    parse(specs, &a)
}

fn version_opt(p: &opts::Parsed) -> R<Option<i32>> {
    match p.value("v") {
        None => Ok(None),
        Some(v) => match v.trim().parse::<i32>() {
            Ok(-1) => Ok(None),
            Ok(n) => Ok(Some(n)),
            Err(_) => fail(format!("For input string: \"{v}\"")),
        },
    }
}

fn check_path(path: &str) -> R {
    validate_path(path, false).or_else(fail)
}

fn join(parent: &str, child: &str) -> String {
    if parent == "/" {
        format!("/{child}")
    } else {
        format!("{parent}/{child}")
    }
}

/// `Integer.decode`: decimal, 0x/# hex, leading-0 octal.
fn parse_java_int(s: &str) -> Option<i64> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let v = if let Some(h) = s
        .strip_prefix("0x")
        .or_else(|| s.strip_prefix("0X"))
        .or_else(|| s.strip_prefix('#'))
    {
        i64::from_str_radix(h, 16).ok()?
    } else if s.len() > 1 && s.starts_with('0') {
        i64::from_str_radix(&s[1..], 8).ok()?
    } else {
        s.parse().ok()?
    };
    Some(if neg { -v } else { v })
}

/// The numeric code of an error, as `Sync has failed. rc=` shows it.
fn error_code(e: &Error) -> i32 {
    match e {
        Error::NoNode => -101,
        Error::NoAuth => -102,
        Error::BadVersion => -103,
        Error::NoChildrenForEphemerals => -108,
        Error::NodeExists => -110,
        Error::NotEmpty => -111,
        Error::SessionExpired => -112,
        Error::InvalidAcl => -114,
        Error::AuthFailed => -115,
        Error::SessionMoved => -118,
        Error::NotReadOnly => -119,
        Error::NoWatcher => -121,
        Error::ReconfigDisabled => -123,
        Error::QuotaExceeded => -125,
        Error::Throttled => -127,
        Error::ConnectionLoss | Error::Timeout | Error::NoHosts => -4,
        Error::MarshallingError => -5,
        Error::Unimplemented => -6,
        Error::BadArguments(_) => -8,
        Error::RuntimeInconsistent => -2,
        Error::UnexpectedErrorCode(c) => *c,
        _ => -1,
    }
}

/// `ConfigUtils.getClientConfigStr`: "version host:port,host:port".
fn client_config_str(config: &str) -> String {
    let mut version = String::new();
    let mut clients = Vec::new();
    for line in config.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k == "version" {
            version = v.to_owned();
        }
        if !k.starts_with("server.") {
            continue;
        }
        if let Some((_, client)) = v.split_once(';') {
            let addr = match client.rsplit_once(':') {
                Some((h, p)) => format!("{h}:{p}"),
                None => format!("0.0.0.0:{client}"),
            };
            clients.push(addr);
        }
    }
    format!("{version} {}", clients.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_ints() {
        assert_eq!(parse_java_int("12"), Some(12));
        assert_eq!(parse_java_int("0x10"), Some(16));
        assert_eq!(parse_java_int("010"), Some(8));
        assert_eq!(parse_java_int("x"), None);
    }

    #[test]
    fn client_config() {
        assert_eq!(client_config_str(""), " ");
        assert_eq!(
            client_config_str("server.1=h:1:2:participant;0.0.0.0:2181\nversion=100000000"),
            "100000000 0.0.0.0:2181"
        );
    }
}
