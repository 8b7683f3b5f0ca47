//! The txn log, byte for byte as Apache ZooKeeper 3.8 writes and reads it
//! (`FileTxnLog`, `FilePadding`, `Util`).
//!
//! # Format
//!
//! A log is a directory (`<dataLogDir>/version-2`) of files named
//! `log.<zxid>`, the zxid of the file's first txn in lowercase hex without
//! padding ([`log_file_name`]). Each file is:
//!
//! ```text
//! FileHeader   magic "ZKLG" (big-endian int), version 2 (int), dbid 0 (long)   16 bytes
//! entry*       checksum (long: Adler32 of the txn bytes, 0..2^32)
//!              length   (int)  \ a jute buffer: TxnHeader, body, and the
//!              txn bytes       / optional TxnDigest (`jute::txn::Txn::write`)
//!              EOR      (byte 0x42, 'B')
//! zeros        preallocated space
//! ```
//!
//! Files are preallocated: before an entry is written, if it would start
//! within 4 KiB of the file's current size, the file is extended with zeros
//! to the next `prealloc` step (Apache's `FilePadding`; 64 MiB by default,
//! `zookeeper.preAllocSize`). A zero length therefore marks the end of a log
//! file, and a crash leaves zeros, not garbage, after the last entry.
//!
//! # Ends, torn tails and corruption
//!
//! Reading a file stops cleanly at its end, at fewer than 12 bytes that are
//! all zero, or at an entry whose checksum and length are both zero.
//!
//! An entry that cannot be read whole — the file ends inside it, its length
//! is zero after a non-zero checksum, or its end-of-record byte is not `'B'`
//! (a zero-filled region where the rest of the entry should be) — is a *torn
//! tail* when no valid entry follows it anywhere in the file: a write cut
//! short by a crash, never acknowledged. If a valid entry does follow, the
//! damage is in the middle of the log and is reported as
//! [`StorageError::Corrupt`]. A checksum mismatch (with the end-of-record
//! byte intact), a negative length or one over [`MAX_ENTRY_LEN`], a bad
//! magic or version, or a txn that does not decode is always `Corrupt`.
//! Every `Corrupt` names the file and the offset of the entry.
//!
//! A torn tail in the newest file is reported ([`Replay::torn`],
//! [`LogReader::torn`]) and [`replay`] can truncate it. A torn tail in an
//! older file is tolerated and reported ([`Replay::skipped_tails`]):
//! Apache's server never appends to a log file after a restart — it starts a
//! new one — so every crash it survived leaves its torn tail in what later
//! becomes an older file, and its `FileTxnIterator` treats that as the end of
//! the file and goes on with the next one. Reading Apache's dataDirs needs
//! the same.
//!
//! Apache is laxer in two places: it takes any bad end-of-record byte as the
//! end of the file, even with valid entries after it, and it does not check
//! the version field. It rejects lengths over `jute.maxbuffer` plus the same
//! again (about 2 MiB by default); we allow up to [`MAX_ENTRY_LEN`].

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use jute::codec::{Reader, Record};
use jute::quorum::FileHeader;
use jute::txn::Txn;

use crate::{Result, StorageError};

/// `"ZKLG"` read as a big-endian int (`FileTxnLog.TXNLOG_MAGIC`).
pub const TXNLOG_MAGIC: i32 = i32::from_be_bytes(*b"ZKLG");
/// `FileTxnLog.VERSION`.
pub const TXNLOG_VERSION: i32 = 2;
/// Bytes of the file header.
pub const FILE_HEADER_LEN: u64 = 16;
/// Apache's default preallocation step (`zookeeper.preAllocSize`, 64 MiB).
pub const DEFAULT_PREALLOC: u64 = 64 * 1024 * 1024;
/// The longest txn (serialized header + body + digest) read or written.
/// Longer lengths are corruption; nothing is allocated for them.
pub const MAX_ENTRY_LEN: usize = 64 * 1024 * 1024;

/// The end-of-record byte after every entry.
const EOR: u8 = b'B';
/// Checksum (8) and length (4) before the txn bytes.
const ENTRY_HEAD: u64 = 12;
/// Extend the file when an entry would start this close to its end.
const PAD_SLACK: u64 = 4096;
/// Appends are buffered up to this many bytes before being written.
const WRITE_BUF: usize = 64 * 1024;
/// The same with direct I/O, where every write waits for the device: a
/// batch is written once, at its sync, unless it is larger than this.
const DIRECT_WRITE_BUF: usize = 4 << 20;
/// Offset, length and memory alignment of direct writes: a page, which is
/// a multiple of every logical block size Linux has (512 B to 4 KiB).
const DIRECT_ALIGN: usize = 4096;
/// `zero_ahead` keeps up to this much of the preallocation written ahead of
/// the log's end, topping it up once less than half is left ...
const ZERO_AHEAD: u64 = 4 << 20;
/// ... one write of this size per call.
const ZERO_CHUNK: usize = 1 << 20;
/// Chunk size of the scan for valid entries after a damaged one.
const SCAN_CHUNK: usize = 1 << 20;

/// `log.<zxid in lowercase hex>` (`Util.makeLogName`; a negative zxid is
/// printed as Java's `Long.toHexString` does, in two's complement).
pub fn log_file_name(zxid: i64) -> String {
    format!("log.{:x}", zxid as u64)
}

/// The zxid in a log file name: exactly `log.<hex>` (as many digits as
/// `Long.parseLong(_, 16)` accepts for a non-negative long).
pub fn parse_log_file_name(name: &str) -> Option<i64> {
    let hex = name.strip_prefix("log.")?;
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    i64::from_str_radix(hex, 16).ok()
}

/// The log files of `dir` (`log.<hex>`; anything else is ignored), sorted by
/// start zxid. A missing directory has none.
pub fn log_files(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(StorageError::io(dir, e)),
    };
    for e in rd {
        let e = e.map_err(|e| StorageError::io(dir, e))?;
        let Some(zxid) = e.file_name().to_str().and_then(parse_log_file_name) else {
            continue;
        };
        let is_file = e
            .file_type()
            .map_err(|err| StorageError::io(e.path(), err))?
            .is_file();
        if is_file {
            out.push((zxid, e.path()));
        }
    }
    out.sort();
    Ok(out)
}

/// Apache's `FilePadding.calculateFileSizeWithPadding`: the size the file
/// should have before an entry is written at `position`.
fn padded_size(position: u64, file_size: u64, prealloc: u64) -> u64 {
    if prealloc == 0 || position + PAD_SLACK < file_size {
        return file_size;
    }
    if position > file_size {
        let s = position + prealloc;
        s - s % prealloc
    } else {
        file_size + prealloc
    }
}

fn adler32(bytes: &[u8]) -> i64 {
    i64::from(simd_adler32::adler32(&bytes))
}

fn corrupt(file: &Path, offset: u64, reason: impl Into<String>) -> StorageError {
    StorageError::Corrupt {
        file: file.to_path_buf(),
        offset,
        reason: reason.into(),
    }
}

fn fsync_dir(dir: &Path) -> Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))
}

// ---------------------------------------------------------------------------
// Writing

/// Appends txns to the log in `dir`, one file at a time.
///
/// Appends are buffered; [`sync`](Self::sync) makes them durable. The first
/// append after [`open`](Self::open) or [`roll`](Self::roll) starts a new
/// file named by that txn's zxid (as Apache does: a restarted server never
/// appends to an existing file). The header is written to a hidden
/// temporary file, flushed to disk and renamed into place, so a log file
/// never exists with a partial header.
///
/// Any I/O error is returned and leaves the writer failed: every later call
/// returns an error, since what reached the file is unknown. Recover by
/// replaying the log (which truncates a torn tail) and opening a new writer.
/// Nothing here panics on I/O.
#[derive(Debug)]
pub struct TxnLogWriter {
    dir: PathBuf,
    prealloc: u64,
    cur: Option<OpenLog>,
    /// Rolled files whose last appends have not been fsynced yet.
    unsynced: Vec<(PathBuf, File)>,
    /// A file was created since the directory was last fsynced.
    dir_dirty: bool,
    failed: bool,
    last_zxid: i64,
    /// Reused to serialise each txn (a fresh buffer grew several times
    /// for every 1 KiB txn).
    scratch: Vec<u8>,
    /// Open new files with O_DIRECT where the filesystem allows it.
    direct_io: bool,
}

#[derive(Debug)]
struct OpenLog {
    path: PathBuf,
    file: File,
    buf: Vec<u8>,
    /// Bytes written to the file (header and entries; not padding).
    written: u64,
    /// The file's size as last padded.
    size: u64,
    txns: u64,
    /// Bytes from the start already dropped from the page cache (whole
    /// pages).
    uncached: u64,
    /// Set when `file` was opened with O_DIRECT.
    direct: Option<Direct>,
}

/// A log file written with direct I/O: appends bypass the page cache, so a
/// write is one copy into `stage` and one request to the device instead of
/// a copy per page, page allocation, writeback at fsync and dropping the
/// pages again (13% of an ensemble's CPU samples under setData load, all
/// three members on one core, went to that path; perf). Direct writes must
/// start and end on `DIRECT_ALIGN`, so each write starts again at the
/// block holding the end of the last one: `tail` keeps those bytes, and the
/// rest of the last block is written as zeros, which is what the
/// preallocated file holds there anyway. The page cache rewrites that same
/// block at each fsync, so a torn write puts no more at risk than before.
#[derive(Debug)]
struct Direct {
    /// The bytes of the file from the last `DIRECT_ALIGN` boundary at or
    /// below `written` up to `written`.
    tail: Vec<u8>,
    /// Staging buffer; the aligned region inside it is found at each write.
    stage: Vec<u8>,
    /// The file's blocks below this offset have been written (by an append
    /// or by [`TxnLogWriter::zero_ahead`]); always a multiple of
    /// `DIRECT_ALIGN`.
    zeroed: u64,
    /// Source of `zero_ahead`'s writes (allocated at its first write).
    zeros: Vec<u8>,
    /// `zero_ahead` failed once (ENOSPC, say); appends go on into the
    /// sparse preallocation, as they would without it.
    no_zeroing: bool,
}

impl TxnLogWriter {
    /// A writer for the log directory `dir` (created if missing), padding
    /// files in steps of `prealloc` bytes (0: no preallocation). Leftover
    /// temporary files of an interrupted file creation are removed. No log
    /// file is opened until the first append.
    pub fn open(dir: PathBuf, prealloc: u64) -> Result<Self> {
        fs::create_dir_all(&dir).map_err(|e| StorageError::io(&dir, e))?;
        let rd = fs::read_dir(&dir).map_err(|e| StorageError::io(&dir, e))?;
        for e in rd {
            let e = e.map_err(|e| StorageError::io(&dir, e))?;
            let name = e.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with(".log.") && name.ends_with(".tmp") {
                fs::remove_file(e.path()).map_err(|err| StorageError::io(e.path(), err))?;
            }
        }
        Ok(TxnLogWriter {
            dir,
            prealloc,
            cur: None,
            unsynced: Vec::new(),
            dir_dirty: false,
            failed: false,
            last_zxid: -1,
            scratch: Vec::new(),
            direct_io: cfg!(target_os = "linux"),
        })
    }

    /// Writes through the page cache even where direct I/O is possible:
    /// with forceSync=no, where not waiting for the device is the point,
    /// and in tests that compare the two. (Direct I/O also needs a
    /// preallocating writer.)
    pub fn buffered(mut self) -> Self {
        self.direct_io = false;
        self
    }

    /// Whether the file being appended to is written with direct I/O.
    pub fn is_direct(&self) -> bool {
        self.cur.as_ref().is_some_and(|c| c.direct.is_some())
    }

    /// With direct I/O, writes zeros into the current file's preallocation
    /// ahead of its end, one `ZERO_CHUNK` per call while less than
    /// `ZERO_AHEAD` is ready: an append that lands on blocks already written
    /// is a plain overwrite, so its `fdatasync` has no block allocation to
    /// record and is one device write and a cache flush. Into a hole (what
    /// `set_len` leaves), the same sync also wrote the file's block
    /// mapping: pwrite+fdatasync of 64 KiB batches took 0.25 ms on a sparse
    /// file and 0.13 ms on a written one (mean of 1500 on /dev/vda, ext4);
    /// zeroing costs ~0.45 ms per MiB. The file's bytes and size do not
    /// change. Meant for when the log thread would otherwise wait. An error
    /// (a full disk) is returned once and stops it for this file; it is not
    /// the log's failure, and appends go on into the sparse preallocation.
    pub fn zero_ahead(&mut self) -> Result<()> {
        match self.cur.as_mut() {
            Some(log) if !self.failed => log.zero_ahead(),
            _ => Ok(()),
        }
    }

    fn check_ok(&self) -> Result<()> {
        if self.failed {
            let file = self.cur.as_ref().map_or(&self.dir, |c| &c.path);
            return Err(StorageError::io(
                file,
                io::Error::other("the txn log writer failed earlier; recover and reopen"),
            ));
        }
        Ok(())
    }

    /// Marks the writer failed when `r` is an error.
    fn guard<T>(&mut self, r: Result<T>) -> Result<T> {
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Appends one txn (buffered). Opens `log.<zxid of txn>` if no file is
    /// open; that fails if such a file already holds txns. A txn longer
    /// than [`MAX_ENTRY_LEN`] is refused without touching the log.
    pub fn append(&mut self, txn: &Txn) -> Result<()> {
        self.check_ok()?;
        let mut body = std::mem::take(&mut self.scratch);
        body.clear();
        txn.write(&mut body);
        let r = self.append_raw(txn.header.zxid, &body);
        self.scratch = body;
        r
    }

    /// Appends one txn given serialised (header, body, digest: a proposal's
    /// data), as [`TxnLogWriter::append`] does: a learner logs what its
    /// leader sent without decoding and encoding it again.
    pub fn append_raw(&mut self, zxid: i64, body: &[u8]) -> Result<()> {
        self.check_ok()?;
        if body.is_empty() || body.len() > MAX_ENTRY_LEN {
            let file = self.cur.as_ref().map_or(&self.dir, |c| &c.path);
            return Err(StorageError::io(
                file,
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("txn of {} bytes cannot be logged", body.len()),
                ),
            ));
        }
        if self.cur.is_none() {
            let r = self.create_file(zxid);
            let log = self.guard(r)?;
            self.cur = Some(log);
            self.dir_dirty = true;
        }
        let r = self.append_entry(body);
        self.guard(r)?;
        self.last_zxid = zxid;
        Ok(())
    }

    fn append_entry(&mut self, body: &[u8]) -> Result<()> {
        let prealloc = self.prealloc;
        let Some(log) = self.cur.as_mut() else {
            return Ok(());
        };
        let position = log.written + log.buf.len() as u64;
        let size = padded_size(position, log.size, prealloc);
        if size != log.size {
            log.file
                .set_len(size)
                .map_err(|e| StorageError::io(&log.path, e))?;
            log.size = size;
        }
        log.buf.extend_from_slice(&adler32(body).to_be_bytes());
        log.buf
            .extend_from_slice(&(body.len() as i32).to_be_bytes());
        log.buf.extend_from_slice(body);
        log.buf.push(EOR);
        log.txns += 1;
        let limit = if log.direct.is_some() {
            DIRECT_WRITE_BUF
        } else {
            WRITE_BUF
        };
        if log.buf.len() >= limit {
            log.flush()?;
        }
        Ok(())
    }

    /// Creates `log.<zxid>` holding just the header.
    fn create_file(&mut self, zxid: i64) -> Result<OpenLog> {
        let name = log_file_name(zxid);
        let path = self.dir.join(&name);
        if path.exists() && file_has_txns(&path)? {
            return Err(StorageError::io(
                &path,
                io::Error::new(
                    io::ErrorKind::AlreadyExists,
                    "a log file with this start zxid already holds txns",
                ),
            ));
        }
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .map_err(|e| StorageError::io(&tmp, e))?;
        let header = FileHeader {
            magic: TXNLOG_MAGIC,
            version: TXNLOG_VERSION,
            dbid: 0,
        }
        .to_bytes();
        file.write_all(&header)
            .and_then(|_| file.sync_data())
            .and_then(|_| fs::rename(&tmp, &path))
            .map_err(|e| {
                let _ = fs::remove_file(&tmp);
                StorageError::io(&path, e)
            })?;
        // Direct writes pad the last block with zeros, so they need the
        // zeros of preallocation after the end (a file without it ends
        // exactly at its last entry, as Apache's does).
        let direct = if self.direct_io && self.prealloc > 0 {
            open_direct(&path)
        } else {
            None
        };
        let (file, direct) = match direct {
            Some(f) => (
                f,
                Some(Direct {
                    tail: header.to_vec(),
                    stage: Vec::new(),
                    zeroed: 0,
                    zeros: Vec::new(),
                    no_zeroing: false,
                }),
            ),
            None => (file, None),
        };
        Ok(OpenLog {
            path,
            file,
            buf: Vec::with_capacity(WRITE_BUF + 1024),
            written: FILE_HEADER_LEN,
            size: FILE_HEADER_LEN,
            txns: 0,
            uncached: 0,
            direct,
        })
    }

    /// Writes buffered appends to the file and, when `fsync` (ZooKeeper's
    /// `forceSync`, default yes), makes them durable with `fdatasync`:
    /// first files rolled since the last sync, then the current one, then
    /// the directory if a file was created.
    pub fn sync(&mut self, fsync: bool) -> Result<()> {
        self.check_ok()?;
        let r = self.sync_inner(fsync);
        self.guard(r)
    }

    fn sync_inner(&mut self, fsync: bool) -> Result<()> {
        if let Some(log) = self.cur.as_mut() {
            log.flush()?;
        }
        if fsync {
            for (path, f) in &self.unsynced {
                f.sync_data().map_err(|e| StorageError::io(path, e))?;
                uncache(f, 0, 0);
            }
            if let Some(log) = self.cur.as_mut() {
                log.file
                    .sync_data()
                    .map_err(|e| StorageError::io(&log.path, e))?;
                if log.direct.is_none() {
                    log.uncache_synced();
                }
            }
            if self.dir_dirty {
                fsync_dir(&self.dir)?;
                self.dir_dirty = false;
            }
        }
        self.unsynced.clear();
        Ok(())
    }

    /// Writes buffered appends and closes the current file (without
    /// fsyncing it: the next `sync` does); the next append starts a new file.
    pub fn roll(&mut self) -> Result<()> {
        self.check_ok()?;
        if let Some(mut log) = self.cur.take() {
            let r = log.flush();
            self.unsynced.push((log.path, log.file));
            self.guard(r)?;
        }
        Ok(())
    }

    /// Txns appended to the current file (0 when none is open).
    pub fn txns_in_current_file(&self) -> u64 {
        self.cur.as_ref().map_or(0, |c| c.txns)
    }

    /// The file being appended to, if one is open.
    pub fn current_file(&self) -> Option<&Path> {
        self.cur.as_ref().map(|c| c.path.as_path())
    }

    /// The zxid of the last txn appended by this writer, or -1.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Bytes written to the current file so far, buffered ones included
    /// (not counting preallocated zeros).
    pub fn current_file_len(&self) -> u64 {
        self.cur
            .as_ref()
            .map_or(0, |c| c.written + c.buf.len() as u64)
    }

    /// Syncs (per `fsync`) and closes the writer.
    pub fn close(mut self, fsync: bool) -> Result<()> {
        self.sync(fsync)
    }
}

impl OpenLog {
    /// Drops the fsynced whole pages written since the last call from the
    /// page cache (the page still being filled stays).
    fn uncache_synced(&mut self) {
        let end = self.written & !(page_size() - 1);
        if end > self.uncached {
            uncache(&self.file, self.uncached, end - self.uncached);
            self.uncached = end;
        }
    }

    fn flush(&mut self) -> Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        if self.direct.is_some() {
            match self.flush_direct() {
                Ok(()) => return Ok(()),
                // Alignment this filesystem or device does not take: go
                // on through the page cache, from the same offset.
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    self.file = OpenOptions::new()
                        .write(true)
                        .open(&self.path)
                        .map_err(|e| StorageError::io(&self.path, e))?;
                    self.direct = None;
                }
                Err(e) => return Err(StorageError::io(&self.path, e)),
            }
        }
        write_all_at(&self.file, &self.buf, self.written)
            .map_err(|e| StorageError::io(&self.path, e))?;
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }

    fn zero_ahead(&mut self) -> Result<()> {
        let Some(d) = self.direct.as_mut() else {
            return Ok(());
        };
        if d.no_zeroing {
            return Ok(());
        }
        let align = DIRECT_ALIGN as u64;
        // Never below a block that holds log bytes, written or buffered.
        let end = (self.written + self.buf.len() as u64).next_multiple_of(align);
        let from = d.zeroed.max(end);
        // Within the padded size (rounded down): the file does not grow.
        let to = (end + ZERO_AHEAD).min(self.size / align * align);
        if from >= to || from - end >= ZERO_AHEAD / 2 {
            return Ok(());
        }
        let n = (to - from).min(ZERO_CHUNK as u64) as usize;
        if d.zeros.is_empty() {
            d.zeros = vec![0; ZERO_CHUNK + DIRECT_ALIGN];
        }
        let at = d.zeros.as_ptr().align_offset(DIRECT_ALIGN);
        match write_all_at(&self.file, &d.zeros[at..at + n], from) {
            Ok(()) => {
                d.zeroed = from + n as u64;
                Ok(())
            }
            Err(e) => {
                d.no_zeroing = true;
                Err(StorageError::io(&self.path, e))
            }
        }
    }

    /// Writes `buf` with direct I/O: the last block written so far again,
    /// then the new bytes, zero-padded to a whole block.
    fn flush_direct(&mut self) -> io::Result<()> {
        let d = self.direct.as_mut().expect("direct");
        let base = self.written - d.tail.len() as u64;
        let len = d.tail.len() + self.buf.len();
        let padded = len.next_multiple_of(DIRECT_ALIGN);
        if d.stage.len() < padded + DIRECT_ALIGN {
            d.stage.resize(padded + DIRECT_ALIGN, 0);
        }
        let at = d.stage.as_ptr().align_offset(DIRECT_ALIGN);
        let region = &mut d.stage[at..at + padded];
        region[..d.tail.len()].copy_from_slice(&d.tail);
        region[d.tail.len()..len].copy_from_slice(&self.buf);
        region[len..].fill(0);
        write_all_at(&self.file, region, base)?;
        d.zeroed = d.zeroed.max(base + padded as u64);
        let keep = len % DIRECT_ALIGN;
        d.tail.clear();
        d.tail.extend_from_slice(&region[len - keep..len]);
        // `size` stays as last padded, so padding follows FilePadding's
        // steps; the file may end up to a block past it, in zeros.
        self.written += self.buf.len() as u64;
        self.buf.clear();
        Ok(())
    }
}

/// Opens an existing log file for direct writes, if the filesystem allows
/// (tmpfs and some others refuse O_DIRECT).
fn open_direct(path: &Path) -> Option<File> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = path;
        None
    }
}

fn write_all_at(file: &File, buf: &[u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileExt;
        file.write_all_at(buf, offset)
    }
    #[cfg(not(unix))]
    {
        let mut f = file;
        f.seek(SeekFrom::Start(offset))?;
        f.write_all(buf)
    }
}

/// Asks the kernel to drop `len` bytes (0: to the end) of `file` from
/// offset `off` out of the page cache; only whole, clean pages go. Called
/// once they are fsynced: nothing reads a log back while serving except a
/// leader's DIFF from disk, which is rare, and keeping the pages made every
/// append land on a newly allocated page. On a VM the first touch of such a
/// page is the expensive part of a write: under 1 KiB setData on one core,
/// copying into the page cache was 29% of the server's CPU samples, and 3%
/// once dropped pages came back warm for the next appends (perf; the log
/// thread's share fell from 42% to 22%). Snapshots drop their pages the
/// same way as each MiB reaches the disk (`snapshot::WriteBehind`). Advice
/// only: an error changes nothing.
pub(crate) fn uncache(file: &File, off: u64, len: u64) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let (Ok(off), Ok(len)) = (i64::try_from(off), i64::try_from(len)) else {
            return;
        };
        // SAFETY: advice on an open descriptor; no memory is passed.
        unsafe {
            libc::posix_fadvise(file.as_raw_fd(), off, len, libc::POSIX_FADV_DONTNEED);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = (file, off, len);
}

pub(crate) fn page_size() -> u64 {
    static PAGE: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *PAGE.get_or_init(|| {
        #[cfg(unix)]
        // SAFETY: sysconf reads a constant of the system.
        let n = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        #[cfg(not(unix))]
        let n = 4096;
        u64::try_from(n)
            .ok()
            .filter(|n| n.is_power_of_two())
            .unwrap_or(4096)
    })
}

impl Drop for TxnLogWriter {
    /// Writes what is buffered (best effort, no fsync), as closing Apache's
    /// stream does. Nothing is written after a failure.
    fn drop(&mut self) {
        if !self.failed {
            if let Some(log) = self.cur.as_mut() {
                let _ = log.flush();
            }
        }
    }
}

/// Whether the log file holds at least one complete txn.
fn file_has_txns(path: &Path) -> Result<bool> {
    let mut scan = FileScan::open(path)?;
    match scan.next_step() {
        Ok(Step::Entry(..)) => Ok(true),
        Ok(Step::End | Step::Torn { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

// ---------------------------------------------------------------------------
// Reading

/// What the next read in a file found.
enum Step {
    Entry(Txn, u64),
    /// The clean end of the file's entries.
    End,
    /// A damaged entry at `offset` with no valid entry after it.
    Torn {
        offset: u64,
    },
}

/// A cursor over one log file.
struct FileScan {
    path: Arc<Path>,
    rd: BufReader<File>,
    len: u64,
    pos: u64,
    header_done: bool,
}

impl FileScan {
    fn open(path: &Path) -> Result<FileScan> {
        let f = File::open(path).map_err(|e| StorageError::io(path, e))?;
        let len = f.metadata().map_err(|e| StorageError::io(path, e))?.len();
        Ok(FileScan {
            path: Arc::from(path),
            rd: BufReader::with_capacity(64 * 1024, f),
            len,
            pos: 0,
            header_done: false,
        })
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<()> {
        self.rd
            .read_exact(buf)
            .map_err(|e| StorageError::io(&*self.path, e))?;
        self.pos += buf.len() as u64;
        Ok(())
    }

    /// A damaged entry at `offset`: a torn tail if nothing valid follows.
    fn damaged(&self, offset: u64, reason: String) -> Result<Step> {
        match find_valid_entry(&self.path, offset + 1, self.len)
            .map_err(|e| StorageError::io(&*self.path, e))?
        {
            Some(next) => Err(corrupt(
                &self.path,
                offset,
                format!("{reason}, but a valid entry follows at offset {next}"),
            )),
            None => Ok(Step::Torn { offset }),
        }
    }

    fn next_step(&mut self) -> Result<Step> {
        if !self.header_done {
            return self.read_header();
        }
        let off = self.pos;
        let rest = self.len.saturating_sub(off);
        if rest == 0 {
            return Ok(Step::End);
        }
        if rest < ENTRY_HEAD {
            let mut b = [0u8; ENTRY_HEAD as usize];
            self.read_exact(&mut b[..rest as usize])?;
            if b.iter().all(|&x| x == 0) {
                return Ok(Step::End);
            }
            return self.damaged(off, format!("the file ends {rest} bytes into an entry"));
        }
        let mut head = [0u8; ENTRY_HEAD as usize];
        self.read_exact(&mut head)?;
        let crc = i64::from_be_bytes(head[..8].try_into().unwrap_or_default());
        let len = i32::from_be_bytes(head[8..].try_into().unwrap_or_default());
        if len == 0 {
            if crc == 0 {
                return Ok(Step::End);
            }
            return self.damaged(off, format!("zero length after checksum {crc:#x}"));
        }
        if len < 0 {
            return Err(corrupt(&self.path, off, format!("negative length {len}")));
        }
        let n = len as usize;
        if n > MAX_ENTRY_LEN {
            return Err(corrupt(
                &self.path,
                off,
                format!("length {n} exceeds the maximum {MAX_ENTRY_LEN}"),
            ));
        }
        if ENTRY_HEAD + n as u64 + 1 > rest {
            return self.damaged(
                off,
                format!("an entry of {n} bytes runs past the end of the file"),
            );
        }
        // Bounded by MAX_ENTRY_LEN and by what the file holds.
        let mut bytes = vec![0u8; n + 1];
        self.read_exact(&mut bytes)?;
        let eor = bytes[n];
        bytes.truncate(n);
        if eor != EOR {
            return self.damaged(
                off,
                format!("end-of-record byte is {eor:#04x}, not 0x42 ('B')"),
            );
        }
        let sum = adler32(&bytes);
        if sum != crc {
            return Err(corrupt(
                &self.path,
                off,
                format!("checksum mismatch: stored {crc:#x}, computed {sum:#x}"),
            ));
        }
        match Txn::read(&mut Reader::new(Bytes::from(bytes))) {
            Ok(txn) => Ok(Step::Entry(txn, off)),
            Err(e) => Err(corrupt(&self.path, off, format!("undecodable txn: {e}"))),
        }
    }

    fn read_header(&mut self) -> Result<Step> {
        if self.len < FILE_HEADER_LEN {
            return self.damaged(0, format!("a file header of {} bytes", self.len));
        }
        let mut h = [0u8; FILE_HEADER_LEN as usize];
        self.read_exact(&mut h)?;
        if h.iter().all(|&b| b == 0) {
            return self.damaged(0, "a zero-filled file header".into());
        }
        let fh = FileHeader::read(&mut Reader::from_slice(&h))
            .map_err(|e| corrupt(&self.path, 0, format!("file header: {e}")))?;
        if fh.magic != TXNLOG_MAGIC {
            return Err(corrupt(
                &self.path,
                0,
                format!(
                    "bad magic {:#010x}, expected {TXNLOG_MAGIC:#010x} (\"ZKLG\")",
                    fh.magic
                ),
            ));
        }
        if fh.version != TXNLOG_VERSION {
            return Err(corrupt(
                &self.path,
                4,
                format!("unsupported txn log version {}", fh.version),
            ));
        }
        self.header_done = true;
        self.next_step()
    }
}

/// The offset of the first complete, valid entry (length in range, 'B'
/// after it, matching checksum, decodable txn) starting at or after `from`,
/// if any. Reads the file in chunks; memory stays bounded by `SCAN_CHUNK`
/// plus one candidate entry.
fn find_valid_entry(path: &Path, from: u64, len: u64) -> io::Result<Option<u64>> {
    const MIN: u64 = ENTRY_HEAD + 1 + 1;
    if len < from + MIN {
        return Ok(None);
    }
    let mut f = File::open(path)?;
    let mut probe = File::open(path)?;
    let window = SCAN_CHUNK + ENTRY_HEAD as usize;
    let mut buf = vec![0u8; window];
    let mut start = from;
    while start + MIN <= len {
        let got = (len - start).min(window as u64) as usize;
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut buf[..got])?;
        let last = got.saturating_sub(ENTRY_HEAD as usize).min(SCAN_CHUNK - 1);
        for i in 0..=last {
            if i + ENTRY_HEAD as usize > got {
                break;
            }
            let b = &buf[i..i + ENTRY_HEAD as usize];
            // An Adler32 fits in 32 bits: the stored long's top half is 0.
            if b[..4] != [0; 4] {
                continue;
            }
            let n = i32::from_be_bytes([b[8], b[9], b[10], b[11]]);
            if n <= 0 || n as usize > MAX_ENTRY_LEN {
                continue;
            }
            let p = start + i as u64;
            let end = p + ENTRY_HEAD + n as u64; // offset of the EOR byte
            if end >= len {
                continue;
            }
            let eor = if end < start + got as u64 {
                buf[(end - start) as usize]
            } else {
                let mut e = [0u8; 1];
                probe.seek(SeekFrom::Start(end))?;
                probe.read_exact(&mut e)?;
                e[0]
            };
            if eor != EOR {
                continue;
            }
            let crc = i64::from_be_bytes(b[..8].try_into().unwrap_or_default());
            let mut body = vec![0u8; n as usize];
            probe.seek(SeekFrom::Start(p + ENTRY_HEAD))?;
            probe.read_exact(&mut body)?;
            if adler32(&body) == crc && Txn::read(&mut Reader::new(Bytes::from(body))).is_ok() {
                return Ok(Some(p));
            }
        }
        start += SCAN_CHUNK as u64;
    }
    Ok(None)
}

/// One txn read from the log, with where it was found.
#[derive(Debug, Clone)]
pub struct LogEntry {
    pub txn: Txn,
    pub file: Arc<Path>,
    /// Offset of the entry (its checksum) in `file`.
    pub offset: u64,
}

/// Streams txns out of log files in order, yielding `Err` once and then
/// stopping at corruption. See the module docs for what ends a file, what
/// is a torn tail, and what is corruption.
pub struct LogReader {
    /// Files still to read, in order.
    files: std::vec::IntoIter<PathBuf>,
    /// The newest file of the log: a torn tail there is `torn`.
    newest: Option<PathBuf>,
    cur: Option<FileScan>,
    after_zxid: i64,
    last_zxid: i64,
    torn: Option<(PathBuf, u64)>,
    skipped: Vec<(PathBuf, u64)>,
    done: bool,
}

impl LogReader {
    /// Reads the one log file `file` (as `rookeeper log dump` does),
    /// treating it as the newest: a torn tail ends it and is reported by
    /// [`torn`](Self::torn).
    pub fn open(file: &Path) -> Result<LogReader> {
        let scan = FileScan::open(file)?;
        Ok(LogReader {
            files: Vec::new().into_iter(),
            newest: Some(file.to_path_buf()),
            cur: Some(scan),
            after_zxid: i64::MIN,
            last_zxid: -1,
            torn: None,
            skipped: Vec::new(),
            done: false,
        })
    }

    /// Reads the log in `dir`, yielding every txn with a zxid greater than
    /// `after_zxid`, starting at the newest file whose start zxid is at most
    /// `after_zxid + 1` (or the oldest file if none is), as
    /// `FileTxnLog.getLogFiles` chooses them.
    pub fn from_dir(dir: &Path, after_zxid: i64) -> Result<LogReader> {
        let files = log_files(dir)?;
        let first = files
            .iter()
            .rposition(|(z, _)| *z <= after_zxid.saturating_add(1))
            .unwrap_or(0);
        let newest = files.last().map(|(_, p)| p.clone());
        let paths: Vec<PathBuf> = files.into_iter().skip(first).map(|(_, p)| p).collect();
        Ok(LogReader {
            files: paths.into_iter(),
            newest,
            cur: None,
            after_zxid,
            last_zxid: -1,
            torn: None,
            skipped: Vec::new(),
            done: false,
        })
    }

    /// The torn tail of the newest file (file, offset of the torn entry),
    /// once reading has reached it.
    pub fn torn(&self) -> Option<&(PathBuf, u64)> {
        self.torn.as_ref()
    }

    /// Torn tails of older files that were read past, as Apache does.
    pub fn skipped_tails(&self) -> &[(PathBuf, u64)] {
        &self.skipped
    }

    /// The zxid of the last complete txn read so far (including those at or
    /// before `after_zxid`), or -1.
    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    fn advance(&mut self) -> Result<Option<LogEntry>> {
        loop {
            if self.cur.is_none() {
                match self.files.next() {
                    Some(p) => self.cur = Some(FileScan::open(&p)?),
                    None => return Ok(None),
                }
            }
            let Some(scan) = self.cur.as_mut() else {
                return Ok(None);
            };
            match scan.next_step()? {
                Step::Entry(txn, offset) => {
                    self.last_zxid = txn.header.zxid;
                    if txn.header.zxid > self.after_zxid {
                        return Ok(Some(LogEntry {
                            txn,
                            file: scan.path.clone(),
                            offset,
                        }));
                    }
                }
                Step::End => self.cur = None,
                Step::Torn { offset } => {
                    let path = scan.path.to_path_buf();
                    if self.newest.as_deref() == Some(path.as_path()) {
                        self.torn = Some((path, offset));
                    } else {
                        self.skipped.push((path, offset));
                    }
                    self.cur = None;
                }
            }
        }
    }
}

impl Iterator for LogReader {
    type Item = Result<LogEntry>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        match self.advance() {
            Ok(Some(e)) => Some(Ok(e)),
            Ok(None) => {
                self.done = true;
                None
            }
            Err(e) => {
                self.done = true;
                self.cur = None;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for LogReader {}

/// The outcome of [`replay`].
#[derive(Debug, Clone, Default)]
pub struct Replay {
    /// Every txn with zxid > `after_zxid`, in log order.
    pub txns: Vec<Txn>,
    /// The torn tail of the newest file: the file and the offset of the
    /// entry that was cut short (truncated there if asked).
    pub torn: Option<(PathBuf, u64)>,
    /// Torn tails of older files, read past as Apache does (left in place).
    pub skipped_tails: Vec<(PathBuf, u64)>,
    /// The zxid of the last complete txn in the files read (also when it is
    /// not after `after_zxid`), or -1 if they hold none.
    pub last_zxid: i64,
}

/// Reads every txn after `after_zxid` from the log in `dir` (see
/// [`LogReader::from_dir`] for which files). With `truncate_torn_tail`, a
/// torn tail of the newest file is cut off (the file is removed if not even
/// its header is whole), so that the log ends on a complete entry.
/// Corruption anywhere is an error naming the file and offset.
pub fn replay(dir: &Path, after_zxid: i64, truncate_torn_tail: bool) -> Result<Replay> {
    let mut reader = LogReader::from_dir(dir, after_zxid)?;
    let mut txns = Vec::new();
    for e in &mut reader {
        txns.push(e?.txn);
    }
    let torn = reader.torn.take();
    if truncate_torn_tail {
        if let Some((file, offset)) = &torn {
            truncate_file(file, *offset)?;
        }
    }
    Ok(Replay {
        txns,
        torn,
        skipped_tails: std::mem::take(&mut reader.skipped),
        last_zxid: reader.last_zxid,
    })
}

/// Cuts `file` at `offset` and makes that durable; below the header's end
/// the file is removed.
fn truncate_file(file: &Path, offset: u64) -> Result<()> {
    if offset < FILE_HEADER_LEN {
        fs::remove_file(file).map_err(|e| StorageError::io(file, e))?;
        if let Some(dir) = file.parent() {
            fsync_dir(dir)?;
        }
        return Ok(());
    }
    let f = OpenOptions::new()
        .write(true)
        .open(file)
        .map_err(|e| StorageError::io(file, e))?;
    f.set_len(offset)
        .and_then(|_| f.sync_all())
        .map_err(|e| StorageError::io(file, e))
}

/// Removes every txn with a zxid greater than `zxid` from the log in `dir`
/// (ZAB's TRUNC): files that start after it are deleted (newest first), and
/// the file holding it is cut after it (also dropping a torn tail there).
/// The file to cut is read first, so corruption in it changes nothing.
/// A truncated file is not preallocated again; the next writer starts a new
/// file anyway.
pub fn truncate_after(dir: &Path, zxid: i64) -> Result<()> {
    let files = log_files(dir)?;
    let keep = files.iter().rposition(|(z, _)| *z <= zxid);
    // Where to cut the last kept file, if anywhere.
    let mut cut = None;
    if let Some(i) = keep {
        let path = &files[i].1;
        let mut scan = FileScan::open(path)?;
        loop {
            match scan.next_step()? {
                Step::Entry(txn, offset) => {
                    if txn.header.zxid > zxid {
                        cut = Some((path.clone(), offset));
                        break;
                    }
                }
                Step::End => break,
                Step::Torn { offset } => {
                    cut = Some((path.clone(), offset));
                    break;
                }
            }
        }
    }
    let first_doomed = keep.map_or(0, |i| i + 1);
    let doomed = &files[first_doomed..];
    for (_, p) in doomed.iter().rev() {
        fs::remove_file(p).map_err(|e| StorageError::io(p, e))?;
    }
    if !doomed.is_empty() {
        fsync_dir(dir)?;
    }
    if let Some((file, offset)) = cut {
        truncate_file(&file, offset)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(log_file_name(0x1_0000_0001), "log.100000001");
        assert_eq!(log_file_name(0), "log.0");
        assert_eq!(parse_log_file_name("log.100000001"), Some(0x1_0000_0001));
        assert_eq!(parse_log_file_name("log.1A"), Some(0x1a));
        for bad in [
            "log.",
            "log.x1",
            "log.1.tmp",
            ".log.1.tmp",
            "snapshot.1",
            "log.-1",
        ] {
            assert_eq!(parse_log_file_name(bad), None, "{bad}");
        }
        assert_eq!(TXNLOG_MAGIC, 0x5a4b_4c47);
    }

    #[test]
    fn padding_like_file_padding() {
        // The cases of Apache's FileTxnLogTest.
        const KB: u64 = 1024;
        assert_eq!(padded_size(7 * KB, 10 * KB, 0), 10 * KB);
        assert_eq!(padded_size(5 * KB, 10 * KB, 10 * KB), 10 * KB);
        assert_eq!(padded_size(7 * KB, 10 * KB, 10 * KB), 20 * KB);
        assert_eq!(padded_size(31 * KB, 10 * KB, 10 * KB), 40 * KB);
        // A new file: header written, then padded by one step past it.
        assert_eq!(padded_size(16, 16, 65536), 65552);
        assert_eq!(padded_size(100, 16, 0), 16);
    }
}
