//! Offline tools over a dataDir: `snapshot dump` (zkSnapShotToolkit),
//! `log dump` (zkTxnLogToolkit) and `purge` (zkCleanup.sh).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use jute::consts::op;
use jute::data::Acl;
use jute::txn::{Txn, TxnBody};
use storage::snapshot::{self, ReadOptions};
use tree::DataTree;

/// Java's `Date.toString()` in UTC: `Sun Nov 22 03:02:44 UTC 2026`.
pub fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    const DAY: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    format!(
        "{} {} {:02} {:02}:{:02}:{:02} UTC {}",
        DAY[days.rem_euclid(7) as usize],
        MON[(m - 1) as usize],
        d,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        y
    )
}

/// Java's `DateFormat.getDateTimeInstance(SHORT, LONG)` (en_US) in UTC, as
/// TxnLogToolkit prints: `11/22/26, 4:09:34 AM UTC`.
pub fn java_short_date(ms: i64) -> String {
    let full = java_date(ms);
    // Reuse the civil-date arithmetic: "Sun Nov 22 03:02:44 UTC 2026".
    let parts: Vec<&str> = full.split(' ').collect();
    const MON: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = MON.iter().position(|m| *m == parts[1]).unwrap_or(0) + 1;
    let day: u32 = parts[2].parse().unwrap_or(1);
    let year: i64 = parts[5].parse().unwrap_or(1970);
    let hms: Vec<u32> = parts[3]
        .split(':')
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    let (h, ampm) = match hms[0] {
        0 => (12, "AM"),
        h @ 1..=11 => (h, "AM"),
        12 => (12, "PM"),
        h => (h - 12, "PM"),
    };
    format!(
        "{month}/{day}/{:02}, {h}:{:02}:{:02} {ampm} UTC",
        year.rem_euclid(100),
        hms[1],
        hms[2]
    )
}

fn hex16(v: i64) -> String {
    // Java's %#016x: 0x, then at least 14 hex digits.
    format!("{:#016x}", v)
}

/// Children in name order, so that dumps of equal trees are equal.
fn sorted_children(t: &DataTree, path: &str) -> Vec<String> {
    let mut c: Vec<String> = t.child_paths(path).collect();
    c.sort_unstable();
    c
}

fn print_node(t: &DataTree, path: &str, dump_data: bool, out: &mut String) -> i64 {
    let Some(n) = t.node(path) else { return 0 };
    let s = &n.stat;
    out.push_str("----\n");
    let _ = writeln!(out, "{path}");
    let _ = writeln!(out, "  cZxid = {}", hex16(s.czxid));
    let _ = writeln!(out, "  ctime = {}", java_date(s.ctime));
    let _ = writeln!(out, "  mZxid = {}", hex16(s.mzxid));
    let _ = writeln!(out, "  mtime = {}", java_date(s.mtime));
    let _ = writeln!(out, "  pZxid = {}", hex16(s.pzxid));
    let _ = writeln!(out, "  cversion = {}", s.cversion);
    let _ = writeln!(out, "  dataVersion = {}", s.version);
    let _ = writeln!(out, "  aclVersion = {}", s.aversion);
    let _ = writeln!(out, "  ephemeralOwner = {}", hex16(s.ephemeral_owner));
    if dump_data {
        use base64::Engine;
        let d = n.data.unwrap_or(&[]);
        let _ = writeln!(
            out,
            "  data = {}",
            base64::engine::general_purpose::STANDARD.encode(d)
        );
    } else {
        let _ = writeln!(out, "  dataLength = {}", n.data_len());
    }
    let mut zxid = s.mzxid.max(s.pzxid);
    for child in sorted_children(t, path) {
        zxid = zxid.max(print_node(t, &child, dump_data, out));
    }
    zxid
}

fn json_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(o, "\\u{:04x}", c as u32);
            }
            c => o.push(c),
        }
    }
    o
}

/// SnapshotFormatter's `-json`: the ncdu export format, one entry a znode.
fn print_json(t: &DataTree, path: &str, ino: &mut u64, out: &mut String) {
    let Some(n) = t.node(path) else { return };
    let name = if path == "/" {
        "/"
    } else {
        tree::path::name(path)
    };
    *ino += 1;
    let len = n.data_len();
    let entry = format!(
        "{{\"name\":\"{}\",\"asize\":{len},\"dsize\":{len},\"dev\":0,\"ino\":{ino}}}",
        json_escape(name)
    );
    out.push(',');
    if n.num_children == 0 {
        out.push_str(&entry);
    } else {
        out.push('[');
        out.push_str(&entry);
        for child in sorted_children(t, path) {
            print_json(t, &child, ino, out);
        }
        out.push(']');
    }
}

/// `rookeeper snapshot dump [-d|--json] FILE`.
pub fn snapshot_dump(args: &[String]) -> Result<()> {
    let mut dump_data = false;
    let mut json = false;
    let mut file = None;
    for a in args {
        match a.as_str() {
            "-d" | "--data" => dump_data = true,
            "-json" | "--json" => json = true,
            f if !f.starts_with('-') && file.is_none() => file = Some(PathBuf::from(f)),
            other => bail!("unexpected argument {other}\nusage: rookeeper snapshot dump [-d|--json] SNAPSHOT_FILE"),
        }
    }
    let Some(file) = file else {
        bail!("usage: rookeeper snapshot dump [-d|--json] SNAPSHOT_FILE");
    };
    if dump_data && json {
        bail!("cannot specify both data dump (-d) and json mode (--json)");
    }
    let opts = ReadOptions {
        extended_types: true,
        ..ReadOptions::default()
    };
    let snap = snapshot::read_snapshot_with(&file, &opts)?;
    let t = &snap.tree;
    let mut out = String::new();
    if json {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        let _ = write!(
            out,
            "[1,0,{{\"progname\":\"rookeeper\",\"progver\":\"{}\",\"timestamp\":{now}}}",
            env!("CARGO_PKG_VERSION")
        );
        let mut ino = 1000;
        print_json(t, "/", &mut ino, &mut out);
        out.push(']');
        println!("{out}");
        return Ok(());
    }
    // ZooKeeper counts the root twice ("" and "/").
    let _ = writeln!(out, "ZNode Details (count={}):", t.node_count() + 1);
    let zxid = print_node(t, "/", dump_data, &mut out);
    out.push_str("----\n");
    out.push_str("Session Details (sid, timeout, ephemeralCount):\n");
    let mut sessions: Vec<(&i64, &i32)> = t.sessions().iter().collect();
    sessions.sort();
    for (sid, to) in sessions {
        let _ = writeln!(out, "{}, {to}, {}", hex16(*sid), t.ephemerals(*sid).count());
    }
    let _ = writeln!(out, "----\nLast zxid: 0x{:x}", zxid.max(snap.zxid));
    print!("{out}");
    Ok(())
}

/// A Java `List<ACL>`'s toString, as TxnLogToolkit prints it.
fn acl_str(acl: &[Acl]) -> String {
    let parts: Vec<String> = acl
        .iter()
        .map(|a| format!("{},s{{'{},'{}}}\n", a.perms, a.id.scheme, a.id.id))
        .collect();
    format!("[{}]", parts.join(", "))
}

/// Data as TxnLogToolkit shows it: UTF-8 text, empty for null.
fn data_str(d: &Option<bytes::Bytes>) -> String {
    String::from_utf8_lossy(d.as_deref().unwrap_or(&[])).into_owned()
}

/// One txn's body as TxnLogToolkit prints it (the jute `toString` shape).
fn body_str(b: &TxnBody) -> String {
    match b {
        TxnBody::Create(t) | TxnBody::Create2(t) => format!(
            "{},{},{},{},{}",
            t.path,
            data_str(&t.data),
            acl_str(&t.acl),
            t.ephemeral,
            t.parent_cversion
        ),
        TxnBody::CreateContainer(t) => format!(
            "{},{},{},{}",
            t.path,
            data_str(&t.data),
            acl_str(&t.acl),
            t.parent_cversion
        ),
        TxnBody::CreateTtl(t) => format!(
            "{},{},{},{},{}",
            t.path,
            data_str(&t.data),
            acl_str(&t.acl),
            t.parent_cversion,
            t.ttl
        ),
        TxnBody::Delete(t) | TxnBody::DeleteContainer(t) => t.path.clone(),
        TxnBody::SetData(t) | TxnBody::Reconfig(t) => {
            format!("{},{},{}", t.path, data_str(&t.data), t.version)
        }
        TxnBody::SetAcl(t) => format!("{},{},{}", t.path, acl_str(&t.acl), t.version),
        TxnBody::Check(t) => format!("{},{}", t.path, t.version),
        TxnBody::CreateSession(t) => t.time_out.to_string(),
        TxnBody::CloseSession(t) => format!("v{{{}}}", t.paths_to_delete.join(",")),
        TxnBody::Error(t) => t.err.to_string(),
        TxnBody::Multi(subs) => {
            let parts: Vec<String> = subs
                .iter()
                .map(|s| format!("{}:{}", op::name(s.op()), body_str(s)))
                .collect();
            parts.join("; ")
        }
    }
}

pub fn txn_line(t: &Txn) -> String {
    let h = &t.header;
    format!(
        "{} session 0x{:x} cxid 0x{:x} zxid 0x{:x} {} {}",
        java_short_date(h.time),
        h.client_id,
        h.cxid,
        h.zxid,
        op::name(h.op),
        body_str(&t.body)
    )
}

/// `rookeeper log dump FILE`.
pub fn log_dump(args: &[String]) -> Result<()> {
    let [file] = args else {
        bail!("usage: rookeeper log dump TXN_LOG_FILE");
    };
    let path = Path::new(file);
    let mut n = 0u64;
    println!("ZooKeeper Transactional Log File with dbid 0 txnlog format version 2");
    for entry in storage::txnlog::LogReader::open(path)? {
        let entry = entry?;
        println!("{}", txn_line(&entry.txn));
        n += 1;
    }
    println!("EOF reached after {n} txns.");
    Ok(())
}

/// `rookeeper purge DATALOGDIR [SNAPDIR] -n COUNT` (zkCleanup.sh).
pub fn purge(args: &[String]) -> Result<()> {
    let mut dirs = Vec::new();
    let mut count = None;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        if a == "-n" {
            let v = it.next().context("-n needs a number")?;
            count = Some(v.parse::<usize>().context("-n needs a number")?);
        } else {
            dirs.push(PathBuf::from(a));
        }
    }
    let usage = "usage: rookeeper purge DATALOGDIR [SNAPDIR] -n COUNT   (COUNT >= 3)";
    let (Some(count), 1..=2) = (count, dirs.len()) else {
        bail!("{usage}");
    };
    if count < storage::purge::MIN_RETAIN {
        bail!("COUNT must be at least 3\n{usage}");
    }
    let log_dir = dirs[0].join("version-2");
    let snap_dir = dirs.get(1).unwrap_or(&dirs[0]).join("version-2");
    let purged = storage::purge::purge(&snap_dir, &log_dir, count, |p| {
        snapshot::read_snapshot_with(p, &ReadOptions::default()).is_ok()
    })?;
    for p in &purged.removed {
        println!("Removing file: {}", p.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::java_date;

    #[test]
    fn dates_like_java() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        assert_eq!(java_date(1_795_316_564_000), "Sun Nov 22 03:02:44 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
        assert_eq!(
            super::java_short_date(1_795_316_564_000),
            "11/22/26, 3:02:44 AM UTC"
        );
        assert_eq!(
            super::java_short_date(1_795_351_964_000),
            "11/22/26, 12:52:44 PM UTC"
        );
    }
}
