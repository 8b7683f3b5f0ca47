//! Removing old snapshots and the logs only they needed (ZooKeeper's
//! PurgeTxnLog: `autopurge.*` and zkCleanup.sh).

use std::path::{Path, PathBuf};

use crate::{Result, StorageError};

/// ZooKeeper refuses to keep fewer than three snapshots.
pub const MIN_RETAIN: usize = 3;

/// `<prefix>.<hex zxid>` files of a directory (compressed snapshot names
/// such as `snapshot.1a.gz` count too), sorted by zxid, oldest first.
pub fn files_with_prefix(dir: &Path, prefix: &str) -> Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StorageError::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| StorageError::io(dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        let Some(rest) = name.strip_prefix(prefix).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let hex = rest.split('.').next().unwrap_or("");
        if let Ok(z) = u64::from_str_radix(hex, 16) {
            out.push((z as i64, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// What a purge removed.
#[derive(Debug, Default)]
pub struct Purged {
    pub removed: Vec<PathBuf>,
}

/// Keeps the `retain` newest snapshots that `is_valid` accepts, the log
/// files needed to replay from the oldest of them (the newest log starting
/// at or before it, and every later one), and removes older snapshots and
/// logs. Nothing is removed if there are no valid snapshots.
pub fn purge(
    snap_dir: &Path,
    log_dir: &Path,
    retain: usize,
    is_valid: impl Fn(&Path) -> bool,
) -> Result<Purged> {
    let retain = retain.max(MIN_RETAIN);
    let snaps = files_with_prefix(snap_dir, "snapshot")?;
    let kept: Vec<&(i64, PathBuf)> = snaps
        .iter()
        .rev()
        .filter(|(_, p)| is_valid(p))
        .take(retain)
        .collect();
    let Some(&&(least, _)) = kept.last() else {
        return Ok(Purged::default());
    };
    let logs = files_with_prefix(log_dir, "log")?;
    // The log that holds txns right after the oldest kept snapshot starts
    // at or before it.
    let first_needed = logs
        .iter()
        .filter(|(z, _)| *z <= least)
        .map(|(z, _)| *z)
        .max()
        .unwrap_or(i64::MIN);
    let mut purged = Purged::default();
    let doomed = snaps
        .iter()
        .filter(|(z, _)| *z < least)
        .chain(logs.iter().filter(|(z, _)| *z < first_needed));
    for (_, p) in doomed {
        std::fs::remove_file(p).map_err(|e| StorageError::io(p, e))?;
        purged.removed.push(p.clone());
    }
    Ok(purged)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(dir: &Path, name: &str) {
        std::fs::write(dir.join(name), b"x").unwrap();
    }

    #[test]
    fn keeps_newest_snapshots_and_their_logs() {
        let d = std::env::temp_dir().join(format!("rk-purge-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        for n in [
            "snapshot.0",
            "snapshot.10",
            "snapshot.20",
            "snapshot.30",
            "snapshot.40.gz",
        ] {
            touch(&d, n);
        }
        for n in ["log.1", "log.f", "log.19", "log.25", "log.41", "other.txt"] {
            touch(&d, n);
        }
        let p = purge(&d, &d, 3, |_| true).unwrap();
        let mut removed: Vec<String> = p
            .removed
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        removed.sort();
        // Oldest kept snapshot is 0x20; log.19 holds the txns after it.
        assert_eq!(removed, ["log.1", "log.f", "snapshot.0", "snapshot.10"]);
        assert!(d.join("log.19").exists() && d.join("other.txt").exists());
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn nothing_without_a_valid_snapshot() {
        let d = std::env::temp_dir().join(format!("rk-purge2-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        touch(&d, "log.1");
        touch(&d, "snapshot.5");
        assert!(purge(&d, &d, 3, |_| false).unwrap().removed.is_empty());
        std::fs::remove_dir_all(&d).unwrap();
    }
}
