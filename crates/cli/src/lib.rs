//! `rookeeper cli`: the counterpart of Apache ZooKeeper's zkCli.sh, on the
//! `zookeeper-client` crate. The same options (`-server host:port[,...][/chroot]
//! -timeout ms -r`), commands, output formats, messages and exit codes; with
//! a command it runs it and exits, without one it reads commands (with line
//! editing, history and completion of commands and znode paths on a
//! terminal; plainly, without a prompt, from a pipe, as zkCli does when
//! JLine is off).

mod format;
mod opts;
mod shell;

use std::io::{BufRead, IsTerminal};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{Context, Editor, Helper, Highlighter, Hinter, Validator};
use zookeeper_client::Client;

use shell::{Flow, MainOpts, Shell, COMMANDS};

/// `MyCommandOptions.parseOptions`: unknown `-x` flags are skipped; the
/// first word that is not a flag starts the command.
fn parse_main(args: &[String]) -> Result<MainOpts, String> {
    let mut o = MainOpts {
        server: "localhost:2181".into(),
        timeout_ms: 30000,
        readonly: false,
        command: None,
    };
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| format!("Error: no argument found for option {name}"))
        };
        match a.as_str() {
            "-server" => o.server = value(a)?,
            "-timeout" => {
                let v = value(a)?;
                o.timeout_ms = v
                    .trim()
                    .parse()
                    .map_err(|_| format!("invalid -timeout {v:?}: expected milliseconds"))?;
            }
            "-r" => o.readonly = true,
            "-client-configuration" => {
                let _ = value(a)?;
                eprintln!("-client-configuration is not supported; ignored");
            }
            "-waitforconnection" => {}
            "-h" | "--help" | "-help" => {
                Shell::print_usage();
                std::process::exit(0);
            }
            s if s.starts_with('-') => {}
            _ => {
                let mut cmd = vec![a.clone()];
                cmd.extend(it.by_ref().cloned());
                o.command = Some(cmd);
                break;
            }
        }
    }
    Ok(o)
}

/// Runs the shell with the arguments after `cli`; returns the exit code.
pub fn main(args: &[String]) -> i32 {
    let opts = match parse_main(args) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return 1;
        }
    };
    println!("Connecting to {}", opts.server);
    let command = opts.command.clone();
    let server = opts.server.clone();
    let mut sh = Shell::new(rt, opts);
    match command {
        Some(cmd) => {
            // An unknown command fails before zkCli's session is up, so
            // no connection event shows.
            if COMMANDS.iter().any(|(c, _)| *c == cmd[0]) {
                sh.connect(&server);
            }
            sh.process(cmd);
            // zkCli just exits; closing lets the server drop our ephemerals
            // now rather than at session expiry.
            sh.close_session(false);
            sh.exit_code
        }
        None => {
            println!("Welcome to ZooKeeper!");
            let tty = std::io::stdin().is_terminal() && std::io::stdout().is_terminal();
            if tty {
                println!("JLine support is enabled");
                sh.connect(&server);
                interactive(&mut sh);
            } else {
                println!("JLine support is disabled");
                sh.connect(&server);
                for line in std::io::stdin().lock().lines() {
                    let Ok(line) = line else { break };
                    if let Flow::Quit = sh.execute_line(&line) {
                        return sh.exit_code;
                    }
                }
                sh.close_session(false);
            }
            sh.exit_code
        }
    }
}

/// Completes command names, and znode paths from the server
/// (`JLineZNodeCompleter`).
#[derive(Helper, Highlighter, Hinter, Validator)]
struct ZkHelper {
    client: Arc<Mutex<Option<Client>>>,
    rt: tokio::runtime::Handle,
}

impl Completer for ZkHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        _ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let buffer = &line[..pos];
        let token = if buffer.ends_with(' ') {
            ""
        } else {
            buffer.rsplit(' ').next().unwrap_or("")
        };
        let pair = |s: &str| Pair {
            display: s.to_owned(),
            replacement: s.to_owned(),
        };
        if token.starts_with('/') {
            let idx = token.rfind('/').map_or(0, |i| i + 1);
            let prefix = &token[idx..];
            let dir = if idx == 1 { "/" } else { &token[..idx - 1] };
            let client = self
                .client
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            let Some(client) = client else {
                return Ok((pos, Vec::new()));
            };
            let dir = dir.to_owned();
            let children = self.rt.block_on(async move {
                tokio::time::timeout(Duration::from_secs(3), client.list_children(&dir)).await
            });
            let Ok(Ok(mut children)) = children else {
                return Ok((pos, Vec::new()));
            };
            children.retain(|c| c.starts_with(prefix));
            children.sort();
            let start = buffer.rfind('/').map_or(pos, |i| i + 1);
            return Ok((start, children.iter().map(|c| pair(c)).collect()));
        }
        let start = buffer.rfind(' ').map_or(0, |i| i + 1);
        let cands = COMMANDS
            .iter()
            .filter(|(c, _)| c.starts_with(token))
            .map(|(c, _)| pair(c))
            .collect();
        Ok((start, cands))
    }
}

fn history_file() -> Option<std::path::PathBuf> {
    if let Some(p) = std::env::var_os("ROOKEEPER_CLI_HISTORY") {
        return Some(p.into());
    }
    std::env::var_os("HOME").map(|h| std::path::Path::new(&h).join(".rookeeper_cli_history"))
}

fn interactive(sh: &mut Shell) {
    // Tab completes the common prefix, a second Tab lists the candidates.
    let config = rustyline::Config::builder()
        .completion_type(rustyline::CompletionType::List)
        .max_history_size(1000)
        .map(|b| b.build())
        .unwrap_or_default();
    let mut rl: Editor<ZkHelper, DefaultHistory> = match Editor::with_config(config) {
        Ok(rl) => rl,
        Err(e) => {
            eprintln!("cannot start the line editor: {e}");
            return;
        }
    };
    rl.set_helper(Some(ZkHelper {
        client: sh.client.clone(),
        rt: sh.handle(),
    }));
    let hist = history_file();
    if let Some(h) = &hist {
        let _ = rl.load_history(h);
    }
    // Events print straight to the terminal, as zkCli's do (after the
    // prompt; the line being typed stays in the editor). rustyline's
    // external printer is not used: with it, keys that arrive together
    // (a paste) wait in its buffer for the next keypress.
    loop {
        match rl.readline(&sh.prompt()) {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = rl.add_history_entry(line.as_str());
                    if let Some(h) = &hist {
                        let _ = rl.save_history(h);
                    }
                }
                if let Flow::Quit = sh.execute_line(&line) {
                    break;
                }
            }
            // Ctrl-C drops the line being typed, as a shell does.
            Err(ReadlineError::Interrupted) => continue,
            // Ctrl-D on an empty line leaves, closing the session.
            Err(ReadlineError::Eof) => {
                sh.close_session(true);
                break;
            }
            Err(e) => {
                eprintln!("{e}");
                sh.close_session(true);
                break;
            }
        }
    }
}
