//! zkCli's output formats: `StatPrinter`, ACL lines (jute's CSV form of an
//! Id), Java's `Date.toString`, `WatchedEvent.toString` and the messages
//! of `CliWrapperException`/`KeeperException`.

use std::fmt::Write as _;

use zookeeper_client::{Acl, Error, EventType, Permission, SessionState, Stat};

/// Java's `new Date(ms).toString()`: `EEE MMM dd HH:mm:ss zzz yyyy` in the
/// local time zone (TZ), as the JVM prints it.
pub fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000) as libc::time_t;
    // SAFETY: localtime_r and strftime only write into the buffers given.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&secs, &mut tm).is_null() {
            return ms.to_string();
        }
        let mut buf = [0u8; 128];
        let fmt = b"%a %b %d %H:%M:%S %Z %Y\0";
        let n = libc::strftime(buf.as_mut_ptr().cast(), buf.len(), fmt.as_ptr().cast(), &tm);
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

/// `StatPrinter.print`.
pub fn stat(s: &Stat) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "cZxid = 0x{:x}", s.czxid as u64);
    let _ = writeln!(o, "ctime = {}", java_date(s.ctime));
    let _ = writeln!(o, "mZxid = 0x{:x}", s.mzxid as u64);
    let _ = writeln!(o, "mtime = {}", java_date(s.mtime));
    let _ = writeln!(o, "pZxid = 0x{:x}", s.pzxid as u64);
    let _ = writeln!(o, "cversion = {}", s.cversion);
    let _ = writeln!(o, "dataVersion = {}", s.version);
    let _ = writeln!(o, "aclVersion = {}", s.aversion);
    let _ = writeln!(o, "ephemeralOwner = 0x{:x}", s.ephemeral_owner as u64);
    let _ = writeln!(o, "dataLength = {}", s.data_length);
    let _ = writeln!(o, "numChildren = {}", s.num_children);
    o
}

/// `ZKUtil.getPermString`.
pub fn perm_string(p: Permission) -> String {
    let mut s = String::new();
    for (perm, c) in [
        (Permission::CREATE, 'c'),
        (Permission::DELETE, 'd'),
        (Permission::READ, 'r'),
        (Permission::WRITE, 'w'),
        (Permission::ADMIN, 'a'),
    ] {
        if p.has(perm) {
            s.push(c);
        }
    }
    s
}

/// jute's `CsvOutputArchive` escaping of a string.
fn csv(s: &str) -> String {
    let mut o = String::with_capacity(s.len() + 1);
    o.push('\'');
    for c in s.chars() {
        match c {
            '\0' => o.push_str("%00"),
            '\n' => o.push_str("%0A"),
            '\r' => o.push_str("%0D"),
            ',' => o.push_str("%2C"),
            '}' => o.push_str("%7D"),
            '%' => o.push_str("%25"),
            c => o.push(c),
        }
    }
    o
}

/// One line of getAcl: the Id as jute prints a record (ending in a
/// newline), then `: perms`.
pub fn acl(a: &Acl) -> String {
    format!(
        "{},{}\n: {}",
        csv(a.scheme()),
        csv(a.id()),
        perm_string(a.permission())
    )
}

/// `AclParser.parse`: `scheme:id:perms[,...]`; bad entries are reported
/// on stderr and skipped, as zkCli does.
pub fn parse_acl(s: &str) -> Vec<Acl> {
    let mut out = Vec::new();
    for a in s.split(',') {
        let (Some(first), Some(last)) = (a.find(':'), a.rfind(':')) else {
            eprintln!("{a} does not have the form scheme:id:perm");
            continue;
        };
        if first == last {
            eprintln!("{a} does not have the form scheme:id:perm");
            continue;
        }
        let mut perm = Permission::NONE;
        for c in a[last + 1..].chars() {
            perm = perm
                | match c {
                    'r' => Permission::READ,
                    'w' => Permission::WRITE,
                    'c' => Permission::CREATE,
                    'd' => Permission::DELETE,
                    'a' => Permission::ADMIN,
                    other => {
                        eprintln!("Unknown perm type: {other}");
                        Permission::NONE
                    }
                };
        }
        out.push(Acl::new(
            perm,
            zookeeper_client::AuthId::new(&a[..first], &a[first + 1..last]),
        ));
    }
    out
}

/// Java's `Watcher.Event.KeeperState` names.
pub fn state_name(s: SessionState) -> &'static str {
    match s {
        SessionState::Disconnected => "Disconnected",
        SessionState::SyncConnected => "SyncConnected",
        SessionState::AuthFailed => "AuthFailed",
        SessionState::ConnectedReadOnly => "ConnectedReadOnly",
        SessionState::Expired => "Expired",
        SessionState::Closed => "Closed",
    }
}

/// `ZooKeeper.States` names, as the prompt shows them.
pub fn prompt_state(s: Option<SessionState>) -> &'static str {
    match s {
        None => "CLOSED",
        Some(SessionState::Disconnected) => "CONNECTING",
        Some(SessionState::SyncConnected) => "CONNECTED",
        Some(SessionState::ConnectedReadOnly) => "CONNECTEDREADONLY",
        Some(SessionState::AuthFailed) => "AUTH_FAILED",
        Some(SessionState::Expired) | Some(SessionState::Closed) => "CLOSED",
    }
}

pub fn event_type_name(t: EventType) -> &'static str {
    match t {
        EventType::Session => "None",
        EventType::NodeCreated => "NodeCreated",
        EventType::NodeDeleted => "NodeDeleted",
        EventType::NodeDataChanged => "NodeDataChanged",
        EventType::NodeChildrenChanged => "NodeChildrenChanged",
    }
}

/// What zkCli prints for a watch event (`printMessage` puts a blank line
/// before each of its two lines).
pub fn watcher_block(state: &str, event_type: &str, path: Option<&str>) -> String {
    format!(
        "\nWATCHER::\n\nWatchedEvent state:{state} type:{event_type} path:{}\n",
        path.unwrap_or("null")
    )
}

/// `KeeperException.getCodeMessage` names.
fn code_message(e: &Error) -> String {
    match e {
        Error::NoNode => "NoNode".into(),
        Error::NoAuth => "NoAuth".into(),
        Error::BadVersion => "BadVersion".into(),
        Error::NoChildrenForEphemerals => "NoChildrenForEphemerals".into(),
        Error::NodeExists => "NodeExists".into(),
        Error::NotEmpty => "Directory not empty".into(),
        Error::SessionExpired => "Session expired".into(),
        Error::InvalidAcl => "InvalidACL".into(),
        Error::AuthFailed => "AuthFailed".into(),
        Error::SessionMoved => "Session moved".into(),
        Error::NotReadOnly => "Not a read-only call".into(),
        Error::NoWatcher => "No such watcher".into(),
        Error::QuotaExceeded => "Quota has exceeded".into(),
        Error::Throttled => "Op throttled due to high load".into(),
        Error::MarshallingError => "MarshallingError".into(),
        Error::Unimplemented => "Unimplemented".into(),
        Error::ConnectionLoss | Error::Timeout | Error::NoHosts => "ConnectionLoss".into(),
        Error::ReconfigDisabled => "Reconfig is disabled".into(),
        Error::RuntimeInconsistent => "RuntimeInconsistency".into(),
        Error::BadArguments(_) => "BadArguments".into(),
        Error::ClientClosed => "Session expired".into(),
        Error::UnexpectedErrorCode(c) => format!("Unknown error {c}"),
        other => other.to_string(),
    }
}

/// `KeeperException.getMessage()`.
pub fn keeper_message(e: &Error, path: Option<&str>) -> String {
    match path {
        Some(p) => format!("KeeperErrorCode = {} for {p}", code_message(e)),
        None => format!("KeeperErrorCode = {}", code_message(e)),
    }
}

/// `CliWrapperException.getMessage` for a KeeperException about `path`.
pub fn cli_message(e: &Error, path: &str) -> String {
    match e {
        Error::NoNode => format!("Node does not exist: {path}"),
        Error::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {path}"),
        Error::NodeExists => format!("Node already exists: {path}"),
        Error::NotEmpty => format!("Node not empty: {path}"),
        Error::NotReadOnly => format!("Not a read-only call: {path}"),
        Error::InvalidAcl => format!("Acl is not valid : {path}"),
        Error::NoAuth => format!("Insufficient permission : {path}"),
        Error::BadArguments(_) => format!("Arguments are not valid : {path}"),
        Error::BadVersion => format!("version No is not valid : {path}"),
        Error::QuotaExceeded => format!("Quota has exceeded : {path}"),
        e => keeper_message(e, Some(path)),
    }
}

/// `PathUtils.validatePath`, with Java's messages.
pub fn validate_path(path: &str, sequential: bool) -> Result<(), String> {
    let checked = if sequential {
        format!("{path}1")
    } else {
        path.to_owned()
    };
    tree::path::validate(&checked).map_err(|reason| {
        if reason.starts_with("Path ") {
            reason
        } else {
            format!("Invalid path string \"{checked}\" caused by {reason}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acl_lines() {
        let a = Acl::new(Permission::ALL, zookeeper_client::AuthId::anyone());
        assert_eq!(acl(&a), "'world,'anyone\n: cdrwa");
        let parsed = parse_acl("digest:u:abc=:rw,ip:10.0.0.1:a");
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[0].id(), "u:abc=");
        assert_eq!(perm_string(parsed[0].permission()), "rw");
    }

    #[test]
    fn paths() {
        assert!(validate_path("/a", false).is_ok());
        assert_eq!(
            validate_path("a", false).unwrap_err(),
            "Path must start with / character"
        );
        assert_eq!(
            validate_path("/a//b", false).unwrap_err(),
            "Invalid path string \"/a//b\" caused by empty node name specified @3"
        );
        assert!(validate_path("/a/", true).is_ok());
    }
}
