//! Snapshots in Apache ZooKeeper 3.8's format (`FileSnap`, `SnapStream`,
//! `SerializeUtils.serializeSnapshot`, `DataTree.serialize`), so that
//! Apache reads ours and we read Apache's.
//!
//! A file `snapshot.<zxid in lowercase hex>[.gz|.snappy]` holds one jute
//! stream (compressed as a whole when suffixed):
//!
//! ```text
//! FileHeader   int magic "ZKSN", int version 2, long dbid -1
//! sessions     int count, then per session: long id, int timeout
//! ACL map      int count, then per entry: long id, vector<ACL>
//! nodes        per node: string path, buffer data (-1 = null), long acl,
//!              StatPersisted; pre-order from the root, which is written
//!              as "", every parent before its children
//! end marker   string "/"
//! seal         long Adler32 of every byte before it, string "/"
//! digest       long zxid, int digest version (2), long tree digest
//! seal         long Adler32 of every byte before it (the first seal
//!              included), string "/"
//! ```
//!
//! Snapshots older than 3.6 end after the first seal. Checksums cover the
//! uncompressed stream; `.gz` is one gzip stream (Java's `GZIPOutputStream`)
//! and `.snappy` is snappy-java's own stream format (`SnappyOutputStream`:
//! a 16-byte header then length-prefixed raw snappy blocks), which is not
//! the Snappy framing format.
//!
//! Offsets in `StorageError::Corrupt` count bytes of the uncompressed
//! stream (for an uncompressed file, the file offset).

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use jute::codec::{Record, Writer as _};
use jute::data::{Acl, Id, StatPersisted};
use jute::quorum::FileHeader;
use tree::digest::DIGEST_VERSION;
use tree::restore::SnapshotBuilder;
use tree::DataTree;

use crate::{Result, StorageError};

/// `FileSnap.SNAP_MAGIC`: "ZKSN" read as a big-endian int.
pub const SNAP_MAGIC: i32 = i32::from_be_bytes(*b"ZKSN");
/// `FileSnap.VERSION`.
pub const SNAP_VERSION: i32 = 2;
/// `FileSnap.dbId`.
pub const SNAP_DBID: i64 = -1;
/// `FileSnap.SNAPSHOT_FILE_PREFIX`.
pub const SNAPSHOT_PREFIX: &str = "snapshot";
/// The longest string or buffer a reader accepts by default: Apache's
/// `jute.maxbuffer` (0xfffff) plus its default extra size (the same again).
pub const DEFAULT_MAX_BUFFER: usize = 2 * 0xfffff;

/// snappy-java's stream header: magic, then version and compatible version.
const SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
const SNAPPY_HEADER_LEN: usize = 16;
/// snappy-java's default block size (uncompressed bytes per chunk).
const SNAPPY_BLOCK: usize = 32 * 1024;
/// The largest snappy chunk we accept, compressed or not.
const SNAPPY_MAX_CHUNK: usize = 64 << 20;

/// How a snapshot file is compressed; chosen by its name's last suffix,
/// as `SnapStream.getStreamMode` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gz,
    Snappy,
}

impl Compression {
    /// The file name suffix, with its dot ("" for none).
    pub fn extension(self) -> &'static str {
        match self {
            Compression::None => "",
            Compression::Gz => ".gz",
            Compression::Snappy => ".snappy",
        }
    }

    /// The compression a file name implies: its last dot-separated part,
    /// "gz" or "snappy" in any case; anything else is uncompressed.
    pub fn from_file_name(name: &str) -> Compression {
        match name.rsplit_once('.') {
            Some((_, ext)) if ext.eq_ignore_ascii_case("gz") => Compression::Gz,
            Some((_, ext)) if ext.eq_ignore_ascii_case("snappy") => Compression::Snappy,
            _ => Compression::None,
        }
    }
}

/// `Util.makeSnapshotName`: `snapshot.<zxid hex>` plus the suffix.
pub fn snapshot_file_name(zxid: i64, compression: Compression) -> String {
    format!("{SNAPSHOT_PREFIX}.{zxid:x}{}", compression.extension())
}

/// `Util.getZxidFromName` for snapshots: the zxid a file name carries.
pub fn parse_snapshot_name(name: &str) -> Option<i64> {
    let mut parts = name.split('.');
    if parts.next()? != SNAPSHOT_PREFIX {
        return None;
    }
    i64::from_str_radix(parts.next()?, 16).ok()
}

/// The snapshots in `dir`, newest (highest zxid) first. Temp files (ours
/// start with '.', Apache's end in ".tmp") and other files are ignored.
pub fn list_snapshots(dir: &Path) -> Result<Vec<(i64, PathBuf)>> {
    let mut out = Vec::new();
    let entries = fs::read_dir(dir).map_err(|e| StorageError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| StorageError::io(dir, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.ends_with(".tmp") {
            continue;
        }
        let Some(zxid) = parse_snapshot_name(name) else {
            continue;
        };
        let ft = entry
            .file_type()
            .map_err(|e| StorageError::io(entry.path(), e))?;
        if ft.is_file() {
            out.push((zxid, entry.path()));
        }
    }
    out.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
    Ok(out)
}

/// The digest section (`DataTree.ZxidDigest`): the tree digest as of `zxid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZxidDigest {
    pub zxid: i64,
    pub version: i32,
    pub digest: i64,
}

/// A snapshot as read.
#[derive(Debug)]
pub struct Snapshot {
    pub tree: DataTree,
    /// The zxid its file name carries.
    pub zxid: i64,
    /// The digest section; None for a snapshot older than 3.6.
    pub digest: Option<ZxidDigest>,
    /// Nodes naming an ACL id the snapshot's ACL map lacks (a fuzzy
    /// snapshot's race, which replaying the log repairs; until then such
    /// nodes grant nothing).
    pub unknown_acl_refs: usize,
}

impl Snapshot {
    /// Whether the stored digest equals the rebuilt tree's, when the two are
    /// comparable: a digest of our version taken at the snapshot's own zxid
    /// (ZooKeeper's fuzzy snapshots may store a later one, to be checked
    /// after log replay reaches it, and zxid 0 means none).
    pub fn digest_matches(&self) -> Option<bool> {
        match self.digest {
            Some(d) if d.zxid > 0 && d.zxid == self.zxid && d.version == DIGEST_VERSION => {
                Some(d.digest == self.tree.digest())
            }
            _ => None,
        }
    }
}

/// Reading choices.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// Whether TTL owners are TTLs (`zookeeper.extendedTypesEnabled`).
    pub extended_types: bool,
    /// The longest string or buffer accepted.
    pub max_buffer: usize,
    /// Room to leave in the tree's node map for nodes the caller will add
    /// at once (the creates of the txn log it replays next).
    pub extra_nodes: usize,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions {
            extended_types: false,
            max_buffer: DEFAULT_MAX_BUFFER,
            extra_nodes: 0,
        }
    }
}

/// Reads a snapshot: the tree as of the zxid its name carries, and that zxid.
pub fn read_snapshot(path: &Path, extended_types: bool) -> Result<(DataTree, i64)> {
    let opts = ReadOptions {
        extended_types,
        ..ReadOptions::default()
    };
    let s = read_snapshot_with(path, &opts)?;
    Ok((s.tree, s.zxid))
}

/// Reads a snapshot, checking both seals and bounding every length.
pub fn read_snapshot_with(path: &Path, opts: &ReadOptions) -> Result<Snapshot> {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let Some(zxid) = parse_snapshot_name(name) else {
        return Err(StorageError::Corrupt {
            file: path.to_owned(),
            offset: 0,
            reason: "the file name carries no zxid (want snapshot.<hex>)".into(),
        });
    };
    let file = File::open(path).map_err(|e| StorageError::io(path, e))?;
    const BUF: usize = 256 * 1024;
    match Compression::from_file_name(name) {
        Compression::None => decode(BufReader::with_capacity(BUF, file), path, zxid, opts),
        Compression::Gz => {
            let gz = flate2::bufread::MultiGzDecoder::new(BufReader::with_capacity(BUF, file));
            decode(BufReader::with_capacity(BUF, gz), path, zxid, opts)
        }
        Compression::Snappy => {
            let sn = SnappyJavaReader::new(BufReader::with_capacity(BUF, file));
            decode(BufReader::with_capacity(BUF, sn), path, zxid, opts)
        }
    }
}

/// Writes `tree` as `snapshot.<zxid>` (plus the compression's suffix) in
/// `dir`: to a temp file first, fsynced, renamed into place, and the
/// directory fsynced, so no partial snapshot ever carries the final name.
pub fn write_snapshot(
    dir: &Path,
    tree: &DataTree,
    zxid: i64,
    compression: Compression,
) -> Result<PathBuf> {
    let name = snapshot_file_name(zxid, compression);
    let target = dir.join(&name);
    let tmp = dir.join(format!(".{name}.tmp"));
    if let Err(e) = write_file(&tmp, tree, zxid, compression) {
        let _ = fs::remove_file(&tmp);
        return Err(StorageError::io(tmp, e));
    }
    if let Err(e) = fs::rename(&tmp, &target) {
        let _ = fs::remove_file(&tmp);
        return Err(StorageError::io(target, e));
    }
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StorageError::io(dir, e))?;
    Ok(target)
}

fn write_file(tmp: &Path, tree: &DataTree, zxid: i64, compression: Compression) -> io::Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)?;
    let w = BufWriter::with_capacity(256 * 1024, WriteBehind::new(f));
    let w = match compression {
        Compression::None => serialize_snapshot(w, tree, zxid)?,
        Compression::Gz => {
            let gz = flate2::write::GzEncoder::new(w, flate2::Compression::default());
            serialize_snapshot(gz, tree, zxid)?.finish()?
        }
        Compression::Snappy => {
            serialize_snapshot(SnappyJavaWriter::new(w), tree, zxid)?.finish()?
        }
    };
    let f = w.into_inner().map_err(io::IntoInnerError::into_error)?;
    f.file.sync_all()
}

/// Bytes a snapshot writes between pushes to the disk (see [`WriteBehind`]).
const WRITE_BEHIND_CHUNK: u64 = 1 << 20;

/// A file written sequentially whose pages go to the disk as it is
/// written, a chunk at a time, rather than all at the final fsync. That
/// fsync used to queue the whole snapshot (10 MiB for 10k znodes of 1 KiB)
/// at the disk at once, and every txn log fsync behind it waited: under
/// setData on one core its 13-24 ms saw 1.5-2.5% of the requests complete
/// and 21-44% of those over the p99. Now at most two chunks are in flight;
/// each chunk, once on disk, also leaves the page cache (as a synced log's
/// pages do).
struct WriteBehind {
    file: File,
    /// Bytes written to the file.
    written: u64,
    /// Bytes before this offset were handed to writeback.
    started: u64,
    /// Bytes before this offset are on disk (not yet fsynced metadata).
    settled: u64,
    /// Off where the file system refuses `sync_file_range`: the final
    /// fsync then writes everything, as before.
    enabled: bool,
}

impl WriteBehind {
    fn new(file: File) -> Self {
        WriteBehind {
            file,
            written: 0,
            started: 0,
            settled: 0,
            enabled: cfg!(target_os = "linux"),
        }
    }

    /// Starts writeback of what was written since the last push and waits
    /// for the chunk before it.
    #[cfg(target_os = "linux")]
    fn push(&mut self) -> io::Result<()> {
        use std::os::fd::AsRawFd;
        let fd = self.file.as_raw_fd();
        let range = |from: u64, to: u64| -> (i64, i64) { (from as i64, (to - from) as i64) };
        let (off, len) = range(self.started, self.written);
        // SAFETY: plain syscalls on an open descriptor; no memory passed.
        let r = unsafe { libc::sync_file_range(fd, off, len, libc::SYNC_FILE_RANGE_WRITE) };
        if r != 0 {
            let e = io::Error::last_os_error();
            return match e.raw_os_error() {
                Some(libc::ENOSYS | libc::EINVAL | libc::EOPNOTSUPP | libc::ESPIPE) => {
                    self.enabled = false;
                    Ok(())
                }
                _ => Err(e),
            };
        }
        if self.started > self.settled {
            let (off, len) = range(self.settled, self.started);
            let wait = libc::SYNC_FILE_RANGE_WAIT_BEFORE
                | libc::SYNC_FILE_RANGE_WRITE
                | libc::SYNC_FILE_RANGE_WAIT_AFTER;
            // SAFETY: as above.
            if unsafe { libc::sync_file_range(fd, off, len, wait) } != 0 {
                return Err(io::Error::last_os_error());
            }
            // From the page the last push left partly written: its rest is
            // on disk now too.
            let from = self.settled & !(crate::txnlog::page_size() - 1);
            crate::txnlog::uncache(&self.file, from, self.started - from);
            self.settled = self.started;
        }
        self.started = self.written;
        Ok(())
    }

    #[cfg(not(target_os = "linux"))]
    fn push(&mut self) -> io::Result<()> {
        self.enabled = false;
        Ok(())
    }
}

impl Write for WriteBehind {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        self.written += n as u64;
        if self.enabled && self.written - self.started >= WRITE_BEHIND_CHUNK {
            self.push()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Writes the uncompressed snapshot stream of `tree` as of `zxid` to `w`
/// and returns `w` (flushed).
pub fn serialize_snapshot<W: Write>(w: W, tree: &DataTree, zxid: i64) -> io::Result<W> {
    let mut out = Checked {
        inner: w,
        adler: Sum::default(),
    };
    let mut b: Vec<u8> = Vec::with_capacity(64 * 1024);
    FileHeader {
        magic: SNAP_MAGIC,
        version: SNAP_VERSION,
        dbid: SNAP_DBID,
    }
    .write(&mut b);
    write_body(&mut out, &mut b, tree)?;
    out.seal()?;
    b.put_i64_be(zxid);
    b.put_i32_be(DIGEST_VERSION);
    b.put_i64_be(tree.digest());
    out.write_all(&b)?;
    out.seal()?;
    out.inner.flush()?;
    Ok(out.inner)
}

/// The database as a leader sends it after SNAP (ZKDatabase.serializeSnapshot):
/// sessions, ACL map and nodes, with no file header, checksum or digest.
pub fn serialize_snapshot_stream<W: Write>(mut w: W, tree: &DataTree) -> io::Result<W> {
    let mut b: Vec<u8> = Vec::with_capacity(64 * 1024);
    write_body(&mut w, &mut b, tree)?;
    w.flush()?;
    Ok(w)
}

/// Sessions, ACL map, nodes and the "/" terminator, through `b` (which may
/// hold bytes to go first).
fn write_body<W: Write>(out: &mut W, b: &mut Vec<u8>, tree: &DataTree) -> io::Result<()> {
    let mut sessions: Vec<(i64, i32)> = tree.sessions().iter().map(|(k, v)| (*k, *v)).collect();
    sessions.sort_unstable();
    b.put_i32_be(len_i32(sessions.len())?);
    for (id, timeout) in sessions {
        b.put_i64_be(id);
        b.put_i32_be(timeout);
    }
    let mut acls: Vec<(i64, &[Acl])> = tree.acl_cache().entries().collect();
    acls.sort_unstable_by_key(|e| e.0);
    b.put_i32_be(len_i32(acls.len())?);
    for (id, list) in acls {
        b.put_i64_be(id);
        b.put_i32_be(len_i32(list.len())?);
        for a in list {
            a.write(b);
        }
    }
    for (path, node) in tree.snapshot_nodes() {
        b.put_string(&path);
        match node.data {
            Some(d) => b.put_buffer(d),
            None => b.put_i32_be(-1),
        }
        b.put_i64_be(node.acl);
        node.stat.write(b);
        if b.len() >= 60 * 1024 {
            out.write_all(b)?;
            b.clear();
        }
    }
    b.put_string("/");
    out.write_all(b)?;
    b.clear();
    Ok(())
}

fn len_i32(n: usize) -> io::Result<i32> {
    i32::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "count over 2^31"))
}

/// A writer keeping the Adler32 of everything written (`CheckedOutputStream`).
struct Checked<W> {
    inner: W,
    adler: Sum,
}

/// Adler32 of a stream, fed in large blocks: updating it per field (a
/// snapshot has millions of 4- and 8-byte fields) cost more than the sum.
#[derive(Default)]
struct Sum {
    sum: simd_adler32::Adler32,
    pending: Vec<u8>,
}

impl Sum {
    const BLOCK: usize = 256 * 1024;

    fn update(&mut self, b: &[u8]) {
        if self.pending.is_empty() && b.len() >= Self::BLOCK {
            self.sum.write(b);
            return;
        }
        self.pending.extend_from_slice(b);
        if self.pending.len() >= Self::BLOCK {
            self.sum.write(&self.pending);
            self.pending.clear();
        }
    }

    fn checksum(&mut self) -> u32 {
        self.sum.write(&self.pending);
        self.pending.clear();
        self.sum.finish()
    }
}

impl<W: Write> Checked<W> {
    /// `SnapStream.sealStream`: the checksum so far, then "/".
    fn seal(&mut self) -> io::Result<()> {
        let mut b = Vec::with_capacity(13);
        b.put_i64_be(i64::from(self.adler.checksum()));
        b.put_string("/");
        self.write_all(&b)
    }
}

impl<W: Write> Write for Checked<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.adler.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// The reading side: decodes jute primitives from the uncompressed stream,
/// keeping the Adler32 and the offset of what has been read.
struct Input<'p, R> {
    r: R,
    adler: Sum,
    pos: u64,
    file: &'p Path,
    max_buffer: usize,
}

impl<R: BufRead> Input<'_, R> {
    fn corrupt(&self, offset: u64, reason: impl Into<String>) -> StorageError {
        StorageError::Corrupt {
            file: self.file.to_owned(),
            offset,
            reason: reason.into(),
        }
    }

    /// Errors of the decompressors (bad or cut-off data) are corruption;
    /// anything else is an I/O error.
    fn err(&self, at: u64, what: &str, e: io::Error) -> StorageError {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => {
                self.corrupt(at, format!("truncated while reading {what}"))
            }
            io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
                self.corrupt(at, format!("bad compressed data while reading {what}: {e}"))
            }
            _ => StorageError::io(self.file, e),
        }
    }

    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        let at = self.pos;
        self.r.read_exact(buf).map_err(|e| self.err(at, what, e))?;
        self.adler.update(buf);
        self.pos += buf.len() as u64;
        Ok(())
    }

    fn i32(&mut self, what: &str) -> Result<i32> {
        let mut b = [0u8; 4];
        self.exact(&mut b, what)?;
        Ok(i32::from_be_bytes(b))
    }

    fn i64(&mut self, what: &str) -> Result<i64> {
        let mut b = [0u8; 8];
        self.exact(&mut b, what)?;
        Ok(i64::from_be_bytes(b))
    }

    /// A count: never negative. Nothing is allocated from it.
    fn count(&mut self, what: &str) -> Result<usize> {
        let at = self.pos;
        let n = self.i32(what)?;
        usize::try_from(n).map_err(|_| self.corrupt(at, format!("negative {what} {n}")))
    }

    /// A length-prefixed buffer; None for null (-1).
    fn buffer(&mut self, what: &str) -> Result<Option<Vec<u8>>> {
        let at = self.pos;
        let n = self.i32(what)?;
        if n == -1 {
            return Ok(None);
        }
        let n = match usize::try_from(n) {
            Ok(n) if n <= self.max_buffer => n,
            _ => {
                return Err(self.corrupt(
                    at,
                    format!(
                        "unreasonable length {n} of {what} (limit {})",
                        self.max_buffer
                    ),
                ))
            }
        };
        // Not `vec![0; n]` + read_exact: zeroing a million node buffers
        // showed in restart profiles (calloc); read_to_end fills uninit.
        let body_at = self.pos;
        let mut v = Vec::with_capacity(n);
        match (&mut self.r).take(n as u64).read_to_end(&mut v) {
            Ok(got) if got == n => {}
            Ok(_) => {
                let e = io::Error::from(io::ErrorKind::UnexpectedEof);
                return Err(self.err(body_at, what, e));
            }
            Err(e) => return Err(self.err(body_at, what, e)),
        }
        self.adler.update(&v);
        self.pos += n as u64;
        Ok(Some(v))
    }

    /// A non-null string, decoded as Java decodes UTF-8.
    fn string(&mut self, what: &str) -> Result<String> {
        let at = self.pos;
        let Some(b) = self.buffer(what)? else {
            return Err(self.corrupt(at, format!("null {what}")));
        };
        Ok(match String::from_utf8(b) {
            Ok(s) => s,
            Err(e) => java_string(e.as_bytes()),
        })
    }

    fn at_eof(&mut self) -> Result<bool> {
        let at = self.pos;
        match self.r.fill_buf() {
            Ok(b) => Ok(b.is_empty()),
            Err(e) => Err(self.err(at, "the end of the stream", e)),
        }
    }

    /// `SnapStream.checkSealIntegrity`.
    fn seal(&mut self, which: &str) -> Result<()> {
        let at = self.pos;
        let expect = i64::from(self.adler.checksum());
        let stored = self.i64(which)?;
        let slash_at = self.pos;
        let slash = self.string(which)?;
        if stored != expect {
            return Err(self.corrupt(
                at,
                format!("{which} mismatch: stored {stored:#x}, computed {expect:#x}"),
            ));
        }
        if slash != "/" {
            return Err(self.corrupt(slash_at, format!("{which} not followed by \"/\"")));
        }
        Ok(())
    }
}

/// Java's lenient UTF-8 decoding, via the jute codec's.
fn java_string(b: &[u8]) -> String {
    let mut framed = Vec::with_capacity(b.len() + 4);
    framed.put_buffer(b);
    jute::Reader::new(Bytes::from(framed))
        .string()
        .unwrap_or_else(|_| String::from_utf8_lossy(b).into_owned())
}

/// Sessions, ACL map and nodes up to the "/" terminator.
fn decode_body<R: BufRead>(i: &mut Input<'_, R>, opts: &ReadOptions) -> Result<SnapshotBuilder> {
    let n = i.count("session count")?;
    let mut sessions = Vec::new();
    for _ in 0..n {
        let id = i.i64("a session")?;
        let timeout = i.i32("a session")?;
        sessions.push((id, timeout));
    }

    let n = i.count("ACL map size")?;
    let mut acls = Vec::new();
    for _ in 0..n {
        let id = i.i64("an ACL map entry")?;
        let len = i.count("ACL list length")?;
        let mut list = Vec::new();
        for _ in 0..len {
            let perms = i.i32("an ACL")?;
            let scheme = i.string("an ACL scheme")?;
            let id = i.string("an ACL id")?;
            list.push(Acl {
                perms,
                id: Id { scheme, id },
            });
        }
        acls.push((id, list));
    }

    let mut b = DataTree::from_snapshot(opts.extended_types, acls);
    for (id, timeout) in sessions {
        b.session(id, timeout);
    }
    loop {
        let at = i.pos;
        let path = i.string("a node path")?;
        if path == "/" {
            break;
        }
        let data = i.buffer("node data")?;
        let acl = i.i64("a node")?;
        let stat = StatPersisted {
            czxid: i.i64("a node stat")?,
            mzxid: i.i64("a node stat")?,
            ctime: i.i64("a node stat")?,
            mtime: i.i64("a node stat")?,
            version: i.i32("a node stat")?,
            cversion: i.i32("a node stat")?,
            aversion: i.i32("a node stat")?,
            ephemeral_owner: i.i64("a node stat")?,
            pzxid: i.i64("a node stat")?,
        };
        b.node(&path, data.as_deref(), acl, stat)
            .map_err(|e| i.corrupt(at, e.to_string()))?;
    }
    Ok(b)
}

/// Reads the database a leader streams after SNAP (see
/// [`serialize_snapshot_stream`]) from `r`, as of `zxid`. `what` names the
/// source in errors.
pub fn read_snapshot_stream<R: BufRead>(
    r: R,
    what: &Path,
    zxid: i64,
    opts: &ReadOptions,
) -> Result<(DataTree, R)> {
    let mut i = Input {
        r,
        adler: Sum::default(),
        pos: 0,
        file: what,
        max_buffer: opts.max_buffer,
    };
    let b = decode_body(&mut i, opts)?;
    let tree = b
        .finish(zxid, opts.extra_nodes)
        .map_err(|e| i.corrupt(i.pos, e.to_string()))?;
    Ok((tree, i.r))
}

fn decode<R: BufRead>(r: R, file: &Path, zxid: i64, opts: &ReadOptions) -> Result<Snapshot> {
    let mut i = Input {
        r,
        adler: Sum::default(),
        pos: 0,
        file,
        max_buffer: opts.max_buffer,
    };
    let magic = i.i32("the file header")?;
    if magic != SNAP_MAGIC {
        return Err(i.corrupt(0, format!("bad magic {magic:#010x}: not a snapshot")));
    }
    // Apache reads but does not check the version and dbid.
    i.i32("the file header")?;
    i.i64("the file header")?;

    let b = decode_body(&mut i, opts)?;
    i.seal("checksum")?;

    let digest = if i.at_eof()? {
        None
    } else {
        let at = i.pos;
        let dzxid = i.i64("the digest")?;
        let version = i.i32("the digest")?;
        let digest = if version < 2 {
            // Digest versions before 2 stored a hex string.
            let s = i.string("the digest")?;
            i64::from_str_radix(&s, 16).map_err(|_| i.corrupt(at, format!("bad digest {s:?}")))?
        } else {
            i.i64("the digest")?
        };
        i.seal("digest checksum")?;
        Some(ZxidDigest {
            zxid: dzxid,
            version,
            digest,
        })
    };
    if !i.at_eof()? {
        return Err(i.corrupt(i.pos, "bytes after the final checksum"));
    }
    let unknown_acl_refs = b.unknown_acl_refs();
    let tree = b
        .finish(zxid, opts.extra_nodes)
        .map_err(|e| i.corrupt(i.pos, e.to_string()))?;
    Ok(Snapshot {
        tree,
        zxid,
        digest,
        unknown_acl_refs,
    })
}

/// snappy-java's `SnappyOutputStream` format: the 16-byte header, then
/// per block of up to 32 KiB: int compressed length, raw snappy bytes.
struct SnappyJavaWriter<W: Write> {
    inner: W,
    buf: Vec<u8>,
    out: Vec<u8>,
    enc: snap::raw::Encoder,
    header_written: bool,
}

impl<W: Write> SnappyJavaWriter<W> {
    fn new(inner: W) -> Self {
        SnappyJavaWriter {
            inner,
            buf: Vec::with_capacity(SNAPPY_BLOCK),
            out: Vec::new(),
            enc: snap::raw::Encoder::new(),
            header_written: false,
        }
    }

    fn header(&mut self) -> io::Result<()> {
        if !self.header_written {
            let mut h = [0u8; SNAPPY_HEADER_LEN];
            h[..8].copy_from_slice(&SNAPPY_MAGIC);
            h[8..12].copy_from_slice(&1i32.to_be_bytes());
            h[12..16].copy_from_slice(&1i32.to_be_bytes());
            self.inner.write_all(&h)?;
            self.header_written = true;
        }
        Ok(())
    }

    fn block(&mut self) -> io::Result<()> {
        self.header()?;
        if self.buf.is_empty() {
            return Ok(());
        }
        self.out
            .resize(snap::raw::max_compress_len(self.buf.len()), 0);
        let n = self
            .enc
            .compress(&self.buf, &mut self.out)
            .map_err(io::Error::other)?;
        self.inner.write_all(&(n as i32).to_be_bytes())?;
        self.inner.write_all(&self.out[..n])?;
        self.buf.clear();
        Ok(())
    }

    fn finish(mut self) -> io::Result<W> {
        self.block()?;
        self.inner.flush()?;
        Ok(self.inner)
    }
}

impl<W: Write> Write for SnappyJavaWriter<W> {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(SNAPPY_BLOCK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        if self.buf.len() == SNAPPY_BLOCK {
            self.block()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        // Blocks are cut at SNAPPY_BLOCK only, as snappy-java does; the
        // rest goes out in finish().
        self.inner.flush()
    }
}

/// Reads snappy-java's stream format (`SnappyInputStream`), including
/// concatenated streams (a header where a chunk length is expected).
struct SnappyJavaReader<R: Read> {
    inner: R,
    buf: Vec<u8>,
    pos: usize,
    compressed: Vec<u8>,
    dec: snap::raw::Decoder,
    started: bool,
    done: bool,
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

impl<R: Read> SnappyJavaReader<R> {
    fn new(inner: R) -> Self {
        SnappyJavaReader {
            inner,
            buf: Vec::new(),
            pos: 0,
            compressed: Vec::new(),
            dec: snap::raw::Decoder::new(),
            started: false,
            done: false,
        }
    }

    /// Reads up to `buf.len()` bytes, stopping early only at the end.
    fn read_full(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let mut n = 0;
        while n < buf.len() {
            match self.inner.read(&mut buf[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(n)
    }

    fn check_header(h: &[u8]) -> io::Result<()> {
        if h[..8] != SNAPPY_MAGIC {
            return Err(invalid("not a snappy-java stream (bad magic)"));
        }
        Ok(())
    }

    /// Loads the next non-empty chunk; false at the end of the stream.
    fn next_chunk(&mut self) -> io::Result<bool> {
        if !self.started {
            let mut h = [0u8; SNAPPY_HEADER_LEN];
            if self.read_full(&mut h)? < SNAPPY_HEADER_LEN {
                return Err(invalid("not a snappy-java stream (short header)"));
            }
            Self::check_header(&h)?;
            self.started = true;
        }
        loop {
            let mut lb = [0u8; 4];
            match self.read_full(&mut lb)? {
                0 => return Ok(false),
                4 => {}
                _ => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "cut-off snappy chunk length",
                    ))
                }
            }
            if lb == SNAPPY_MAGIC[..4] {
                // Another stream's header follows the previous stream.
                let mut h = [0u8; SNAPPY_HEADER_LEN];
                h[..4].copy_from_slice(&lb);
                if self.read_full(&mut h[4..])? < SNAPPY_HEADER_LEN - 4 {
                    return Err(invalid("short header in a concatenated snappy stream"));
                }
                Self::check_header(&h)?;
                continue;
            }
            let len = i32::from_be_bytes(lb);
            let len = match usize::try_from(len) {
                Ok(n) if n <= SNAPPY_MAX_CHUNK => n,
                _ => return Err(invalid(format!("bad snappy chunk length {len}"))),
            };
            self.compressed.resize(len, 0);
            let mut c = std::mem::take(&mut self.compressed);
            let got = self.read_full(&mut c);
            self.compressed = c;
            if got? < len {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "cut-off snappy chunk",
                ));
            }
            let n = snap::raw::decompress_len(&self.compressed)
                .map_err(|e| invalid(format!("bad snappy chunk: {e}")))?;
            if n > SNAPPY_MAX_CHUNK {
                return Err(invalid(format!("snappy chunk of {n} bytes")));
            }
            self.buf.resize(n, 0);
            self.dec
                .decompress(&self.compressed, &mut self.buf)
                .map_err(|e| invalid(format!("bad snappy chunk: {e}")))?;
            self.pos = 0;
            if n > 0 {
                return Ok(true);
            }
        }
    }
}

impl<R: Read> Read for SnappyJavaReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos >= self.buf.len() {
            if self.done || !self.next_chunk()? {
                self.done = true;
                return Ok(0);
            }
        }
        let n = out.len().min(self.buf.len() - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(
            snapshot_file_name(0x1_0000_002a, Compression::None),
            "snapshot.10000002a"
        );
        assert_eq!(snapshot_file_name(5, Compression::Gz), "snapshot.5.gz");
        assert_eq!(
            snapshot_file_name(5, Compression::Snappy),
            "snapshot.5.snappy"
        );
        assert_eq!(
            parse_snapshot_name("snapshot.10000002a"),
            Some(0x1_0000_002a)
        );
        assert_eq!(parse_snapshot_name("snapshot.5.gz"), Some(5));
        assert_eq!(parse_snapshot_name(".snapshot.5.tmp"), None);
        assert_eq!(parse_snapshot_name("log.5"), None);
        assert_eq!(parse_snapshot_name("snapshot.xyz"), None);
        assert_eq!(
            Compression::from_file_name("snapshot.5.GZ"),
            Compression::Gz
        );
        assert_eq!(Compression::from_file_name("snapshot.5"), Compression::None);
        assert_eq!(
            Compression::from_file_name("snapshot.5.snappy"),
            Compression::Snappy
        );
        assert_eq!(SNAP_MAGIC, 0x5A4B534E);
    }

    #[test]
    fn snappy_stream_round_trip() {
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 251).to_be_bytes())
            .collect();
        let mut w = SnappyJavaWriter::new(Vec::new());
        w.write_all(&data).unwrap();
        let enc = w.finish().unwrap();
        assert_eq!(&enc[..8], &SNAPPY_MAGIC);
        // Two streams back to back read as one.
        let mut two = enc.clone();
        two.extend_from_slice(&enc);
        let mut out = Vec::new();
        SnappyJavaReader::new(&two[..])
            .read_to_end(&mut out)
            .unwrap();
        assert_eq!(out.len(), 2 * data.len());
        assert_eq!(&out[..data.len()], &data[..]);
        assert_eq!(&out[data.len()..], &data[..]);
    }
}
