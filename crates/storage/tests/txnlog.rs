//! The txn log: Apache's byte layout, round trips of every txn kind across
//! rolled files, preallocation, crash recovery at any byte (torn tails are
//! cut, everything before them survives), corruption named by file and
//! offset, TRUNC, and a log written by Apache ZooKeeper 3.8 itself.

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use bytes::Bytes;
use jute::consts::perms;
use jute::data::{Acl, Id};
use jute::txn::{
    CheckVersionTxn, CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn,
    CreateTxn, DeleteTxn, ErrorTxn, SetAclTxn, SetDataTxn, Txn, TxnBody, TxnDigest, TxnHeader,
};
use proptest::prelude::*;
use storage::txnlog::{
    log_file_name, log_files, replay, truncate_after, LogReader, TxnLogWriter, FILE_HEADER_LEN,
    MAX_ENTRY_LEN,
};
use storage::StorageError;

const SESSION: i64 = 0x0100_0000_0000_0001;

fn world() -> Vec<Acl> {
    vec![Acl {
        perms: perms::ALL,
        id: Id {
            scheme: "world".into(),
            id: "anyone".into(),
        },
    }]
}

fn txn(zxid: i64, body: TxnBody) -> Txn {
    Txn {
        header: TxnHeader {
            client_id: SESSION,
            cxid: zxid as i32,
            zxid,
            time: 1_700_000_000_000 + zxid,
            op: body.op(),
        },
        body,
        // 3.6+ servers log a digest after most txns; older ones none.
        digest: (zxid % 3 != 0).then_some(TxnDigest {
            version: 2,
            tree_digest: zxid.wrapping_mul(0x9e37_79b9),
        }),
    }
}

fn create(path: &str, data: &[u8]) -> TxnBody {
    TxnBody::Create(CreateTxn {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: world(),
        ephemeral: false,
        parent_cversion: 1,
    })
}

/// One body of every kind.
fn every_kind(i: i64) -> Vec<TxnBody> {
    let p = format!("/n{i}");
    vec![
        TxnBody::CreateSession(CreateSessionTxn { time_out: 30_000 }),
        create(&p, b"data"),
        TxnBody::Create2(CreateTxn {
            path: format!("{p}/e"),
            data: None,
            acl: world(),
            ephemeral: true,
            parent_cversion: 2,
        }),
        TxnBody::CreateContainer(CreateContainerTxn {
            path: format!("{p}/c"),
            data: Some(Bytes::new()),
            acl: world(),
            parent_cversion: 3,
        }),
        TxnBody::CreateTtl(CreateTtlTxn {
            path: format!("{p}/t"),
            data: Some(Bytes::from_static(b"ttl")),
            acl: world(),
            parent_cversion: 4,
            ttl: 60_000,
        }),
        TxnBody::SetData(SetDataTxn {
            path: p.clone(),
            data: Some(Bytes::from(vec![7u8; 300])),
            version: 1,
        }),
        TxnBody::SetAcl(SetAclTxn {
            path: p.clone(),
            acl: vec![Acl {
                perms: perms::READ,
                id: Id {
                    scheme: "digest".into(),
                    id: "u:hash".into(),
                },
            }],
            version: 0,
        }),
        TxnBody::Check(CheckVersionTxn {
            path: p.clone(),
            version: 3,
        }),
        TxnBody::Multi(vec![
            create(&format!("{p}/m"), b"x"),
            TxnBody::Check(CheckVersionTxn {
                path: p.clone(),
                version: 1,
            }),
            TxnBody::SetData(SetDataTxn {
                path: p.clone(),
                data: None,
                version: -1,
            }),
            TxnBody::Delete(DeleteTxn {
                path: format!("{p}/m"),
            }),
        ]),
        TxnBody::Multi(vec![
            TxnBody::Error(ErrorTxn { err: 0 }),
            TxnBody::Error(ErrorTxn { err: -101 }),
        ]),
        TxnBody::Error(ErrorTxn { err: -110 }),
        TxnBody::Reconfig(SetDataTxn {
            path: "/zookeeper/config".into(),
            data: Some(Bytes::from_static(
                b"server.1=127.0.0.1:2888:3888:participant\n",
            )),
            version: -1,
        }),
        TxnBody::DeleteContainer(DeleteTxn {
            path: format!("{p}/c"),
        }),
        TxnBody::Delete(DeleteTxn { path: p }),
        TxnBody::CloseSession(CloseSessionTxn {
            paths_to_delete: vec![format!("/n{i}/e")],
        }),
    ]
}

fn corrupt_at(e: StorageError) -> (PathBuf, u64, String) {
    match e {
        StorageError::Corrupt {
            file,
            offset,
            reason,
        } => (file, offset, reason),
        other => panic!("expected corruption, got {other}"),
    }
}

/// Where each txn went: file and byte range of its entry.
#[derive(Debug, Clone)]
struct Placed {
    txn: Txn,
    file: PathBuf,
    start: u64,
    end: u64,
}

fn append(w: &mut TxnLogWriter, t: &Txn, placed: &mut Vec<Placed>) {
    let start = if w.current_file().is_some() {
        w.current_file_len()
    } else {
        FILE_HEADER_LEN
    };
    w.append(t).unwrap();
    placed.push(Placed {
        txn: t.clone(),
        file: w.current_file().unwrap().to_path_buf(),
        start,
        end: w.current_file_len(),
    });
}

fn write_log(dir: &Path, prealloc: u64, txns: &[Txn], roll_every: usize) -> Vec<Placed> {
    let mut w = TxnLogWriter::open(dir.to_path_buf(), prealloc).unwrap();
    let mut placed = Vec::new();
    for (i, t) in txns.iter().enumerate() {
        if roll_every > 0 && i > 0 && i % roll_every == 0 {
            w.roll().unwrap();
        }
        append(&mut w, t, &mut placed);
    }
    w.sync(false).unwrap();
    placed
}

fn txns_of(placed: &[Placed]) -> Vec<Txn> {
    placed.iter().map(|p| p.txn.clone()).collect()
}

#[test]
fn entry_layout_is_apaches() {
    let dir = tempfile::tempdir().unwrap();
    let t = txn(0x1_0000_0001, create("/a", b"hello"));
    let mut w = TxnLogWriter::open(dir.path().into(), 4096).unwrap();
    w.append(&t).unwrap();
    w.sync(true).unwrap();
    let path = dir.path().join("log.100000001");
    assert_eq!(w.current_file(), Some(path.as_path()));
    assert_eq!(w.txns_in_current_file(), 1);
    drop(w);

    let bytes = fs::read(&path).unwrap();
    // FileHeader: "ZKLG", version 2, dbid 0.
    assert_eq!(&bytes[..4], b"ZKLG");
    assert_eq!(&bytes[4..8], &2i32.to_be_bytes());
    assert_eq!(&bytes[8..16], &0i64.to_be_bytes());
    // Entry: Adler32 as a long, the txn as a jute buffer, 'B'.
    let body = t.to_bytes_for_test();
    let sum = adler2::adler32_slice(&body) as i64;
    assert_eq!(&bytes[16..24], &sum.to_be_bytes());
    assert_eq!(&bytes[24..28], &(body.len() as i32).to_be_bytes());
    assert_eq!(&bytes[28..28 + body.len()], &body[..]);
    assert_eq!(bytes[28 + body.len()], b'B');
    // Preallocated: the header, then one 4 KiB step of zeros.
    assert_eq!(bytes.len() as u64, FILE_HEADER_LEN + 4096);
    assert!(bytes[29 + body.len()..].iter().all(|&b| b == 0));
    // No temporary file left behind.
    let names: Vec<String> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["log.100000001"]);
}

trait ToBytesForTest {
    fn to_bytes_for_test(&self) -> Vec<u8>;
}

impl ToBytesForTest for Txn {
    fn to_bytes_for_test(&self) -> Vec<u8> {
        let mut b = bytes::BytesMut::new();
        self.write(&mut b);
        b.to_vec()
    }
}

#[test]
fn every_kind_round_trips_across_rolled_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut all = Vec::new();
    let mut zxid = 0x2_0000_0000i64;
    for round in 0..4 {
        for b in every_kind(round) {
            zxid += 1;
            all.push(txn(zxid, b));
        }
    }
    let per_file = every_kind(0).len();
    let placed = write_log(dir.path(), 1024, &all, per_file);

    let files = log_files(dir.path()).unwrap();
    assert_eq!(files.len(), 4);
    for (i, (z, p)) in files.iter().enumerate() {
        let first = &all[i * per_file];
        assert_eq!(*z, first.header.zxid);
        assert_eq!(p.file_name().unwrap().to_str().unwrap(), log_file_name(*z));
    }

    let r = replay(dir.path(), 0, false).unwrap();
    assert_eq!(r.txns, all);
    assert_eq!(r.last_zxid, zxid);
    assert!(r.torn.is_none() && r.skipped_tails.is_empty());

    // From the middle: starts at the file holding the next zxid.
    for k in [0, 1, per_file - 1, per_file, per_file + 3, all.len() - 1] {
        let after = all[k].header.zxid;
        let r = replay(dir.path(), after, false).unwrap();
        assert_eq!(r.txns, all[k + 1..], "after {after:#x}");
        assert_eq!(r.last_zxid, zxid);
    }

    // The streaming reader names file and offset of each entry.
    let entries: Vec<_> = LogReader::from_dir(dir.path(), 0)
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(entries.len(), placed.len());
    for (e, p) in entries.iter().zip(&placed) {
        assert_eq!(e.txn, p.txn);
        assert_eq!(&*e.file, p.file.as_path());
        assert_eq!(e.offset, p.start);
    }
    // One file alone, as `log dump` reads it.
    let one: Vec<_> = LogReader::open(&files[1].1)
        .unwrap()
        .map(|e| e.unwrap().txn)
        .collect();
    assert_eq!(one, all[per_file..2 * per_file]);
}

#[test]
fn preallocates_in_steps_and_reading_stops_at_the_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let step = 16 * 1024;
    // Through the page cache: a direct writer's file may end up to a block
    // past these sizes (`direct_writes_leave_the_same_bytes`).
    let mut w = TxnLogWriter::open(dir.path().into(), step)
        .unwrap()
        .buffered();
    let mut placed = Vec::new();
    append(&mut w, &txn(1, create("/a", b"x")), &mut placed);
    w.sync(true).unwrap();
    let path = w.current_file().unwrap().to_path_buf();
    assert_eq!(fs::metadata(&path).unwrap().len(), FILE_HEADER_LEN + step);

    // Fill to within 4 KiB of the end: the next append extends by a step.
    let mut z = 1;
    while w.current_file_len() + 4096 < FILE_HEADER_LEN + step {
        z += 1;
        append(
            &mut w,
            &txn(z, create(&format!("/p{z}"), &[1; 200])),
            &mut placed,
        );
        w.sync(false).unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), FILE_HEADER_LEN + step);
    }
    z += 1;
    append(&mut w, &txn(z, create("/next", b"y")), &mut placed);
    w.sync(false).unwrap();
    assert_eq!(
        fs::metadata(&path).unwrap().len(),
        FILE_HEADER_LEN + 2 * step
    );

    // An entry bigger than the step: the file grows past the padding, and
    // the next pad rounds up to a multiple of the step (FilePadding).
    z += 1;
    append(
        &mut w,
        &txn(z, create("/big", &vec![9; 40 * 1024])),
        &mut placed,
    );
    w.sync(false).unwrap();
    let len = fs::metadata(&path).unwrap().len();
    assert!(len > FILE_HEADER_LEN + 2 * step);
    z += 1;
    append(&mut w, &txn(z, create("/after", b"z")), &mut placed);
    w.sync(true).unwrap();
    let len = fs::metadata(&path).unwrap().len();
    assert_eq!(len % step, 0, "{len}");
    assert!(len >= w.current_file_len() + 4096);
    drop(w);

    let r = replay(dir.path(), 0, true).unwrap();
    assert_eq!(r.txns, txns_of(&placed));
    assert!(r.torn.is_none(), "the zeros are the end, not a torn entry");
    // Nothing was truncated.
    assert_eq!(fs::metadata(&path).unwrap().len(), len);
}

#[test]
fn no_preallocation_with_zero_step() {
    let dir = tempfile::tempdir().unwrap();
    let txns: Vec<Txn> = (1..=5).map(|z| txn(z, create("/a", b"b"))).collect();
    let placed = write_log(dir.path(), 0, &txns, 0);
    let len = fs::metadata(&placed[0].file).unwrap().len();
    assert_eq!(len, placed.last().unwrap().end);
    assert_eq!(replay(dir.path(), 0, false).unwrap().txns, txns);
}

#[test]
fn writer_never_reuses_a_file_holding_txns() {
    let dir = tempfile::tempdir().unwrap();
    let txns: Vec<Txn> = (1..=3).map(|z| txn(z, create("/a", b"b"))).collect();
    write_log(dir.path(), 4096, &txns, 0);
    let mut w = TxnLogWriter::open(dir.path().into(), 4096).unwrap();
    let e = w.append(&txns[0]).unwrap_err();
    assert!(
        matches!(&e, StorageError::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists),
        "{e}"
    );
    // A failed writer stays failed.
    assert!(w.append(&txn(10, create("/x", b""))).is_err());
    assert!(w.sync(true).is_err());
    drop(w);
    assert_eq!(replay(dir.path(), 0, false).unwrap().txns, txns);

    // A file with no complete txn (a torn first entry) is replaced.
    let dir = tempfile::tempdir().unwrap();
    let placed = write_log(dir.path(), 4096, &txns, 0);
    let f = OpenOptions::new()
        .write(true)
        .open(&placed[0].file)
        .unwrap();
    f.set_len(placed[0].start + 5).unwrap();
    drop(f);
    let mut w = TxnLogWriter::open(dir.path().into(), 4096).unwrap();
    w.append(&txns[0]).unwrap();
    w.sync(true).unwrap();
    drop(w);
    assert_eq!(replay(dir.path(), 0, false).unwrap().txns, txns[..1]);
}

#[test]
fn oversized_txn_is_refused_without_touching_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut w = TxnLogWriter::open(dir.path().into(), 0).unwrap();
    w.append(&txn(1, create("/a", b"b"))).unwrap();
    let big = txn(2, create("/big", &vec![0; MAX_ENTRY_LEN]));
    assert!(w.append(&big).is_err());
    // Not a failure of the log: appends go on.
    w.append(&txn(2, create("/c", b"d"))).unwrap();
    w.sync(true).unwrap();
    drop(w);
    assert_eq!(replay(dir.path(), 0, false).unwrap().txns.len(), 2);
}

/// Overwrites bytes of a file in place.
fn patch(path: &Path, offset: u64, bytes: &[u8]) {
    let mut data = fs::read(path).unwrap();
    data[offset as usize..offset as usize + bytes.len()].copy_from_slice(bytes);
    fs::write(path, data).unwrap();
}

#[test]
fn absurd_and_negative_lengths_are_corruption_not_allocations() {
    for len in [-1i32, i32::MIN, i32::MAX, MAX_ENTRY_LEN as i32 + 1] {
        let dir = tempfile::tempdir().unwrap();
        let txns: Vec<Txn> = (1..=4).map(|z| txn(z, create("/a", b"b"))).collect();
        let placed = write_log(dir.path(), 4096, &txns, 0);
        // The length field of the last entry, even: not a torn tail.
        let last = placed.last().unwrap();
        patch(&last.file, last.start + 8, &len.to_be_bytes());
        let (file, offset, reason) = corrupt_at(replay(dir.path(), 0, true).unwrap_err());
        assert_eq!((file, offset), (last.file.clone(), last.start), "{reason}");
    }
}

#[test]
fn bad_magic_is_corruption_at_offset_zero() {
    let dir = tempfile::tempdir().unwrap();
    let txns: Vec<Txn> = (1..=2).map(|z| txn(z, create("/a", b"b"))).collect();
    let placed = write_log(dir.path(), 4096, &txns, 0);
    patch(&placed[0].file, 1, b"X");
    let (file, offset, reason) = corrupt_at(replay(dir.path(), 0, false).unwrap_err());
    assert_eq!((file, offset), (placed[0].file.clone(), 0));
    assert!(reason.contains("magic"), "{reason}");
}

#[test]
fn torn_tail_of_an_older_file_is_read_past_as_apache_does() {
    // Apache never appends to a log after a restart: a crash's torn entry
    // stays at the end of what becomes an older file.
    let dir = tempfile::tempdir().unwrap();
    let first: Vec<Txn> = (1..=5).map(|z| txn(z, create("/a", b"b"))).collect();
    let placed = write_log(dir.path(), 4096, &first, 0);
    let torn = &placed[4];
    // The crash: the last entry half written, zeros after it.
    let mut data = fs::read(&torn.file).unwrap();
    for b in &mut data[(torn.start + 20) as usize..] {
        *b = 0;
    }
    fs::write(&torn.file, data).unwrap();
    // The restarted server logs zxid 5 again, into a new file.
    let second: Vec<Txn> = (5..=8).map(|z| txn(z, create("/c", b"d"))).collect();
    let mut w = TxnLogWriter::open(dir.path().into(), 4096).unwrap();
    for t in &second {
        w.append(t).unwrap();
    }
    w.sync(true).unwrap();
    drop(w);
    assert_eq!(log_files(dir.path()).unwrap().len(), 2);

    let r = replay(dir.path(), 0, true).unwrap();
    let mut want = first[..4].to_vec();
    want.extend(second.iter().cloned());
    assert_eq!(r.txns, want);
    assert!(r.torn.is_none());
    assert_eq!(r.skipped_tails, [(dir.path().join("log.1"), torn.start)]);
}

#[test]
fn truncate_after_drops_later_txns_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let txns: Vec<Txn> = (1..=30).map(|z| txn(z, create("/a", b"b"))).collect();
    write_log(dir.path(), 4096, &txns, 10);
    assert_eq!(log_files(dir.path()).unwrap().len(), 3);

    // Past the end: nothing changes.
    truncate_after(dir.path(), 100).unwrap();
    assert_eq!(replay(dir.path(), 0, false).unwrap().txns, txns);

    truncate_after(dir.path(), 15).unwrap();
    let files: Vec<i64> = log_files(dir.path()).unwrap().iter().map(|f| f.0).collect();
    assert_eq!(files, [1, 11]);
    let r = replay(dir.path(), 0, false).unwrap();
    assert_eq!(r.txns, txns[..15]);
    assert_eq!(r.last_zxid, 15);

    // The log goes on from there (a new file, as after any restart).
    let mut w = TxnLogWriter::open(dir.path().into(), 4096).unwrap();
    let more: Vec<Txn> = (16..=18).map(|z| txn(z, create("/new", b"n"))).collect();
    for t in &more {
        w.append(t).unwrap();
    }
    w.sync(true).unwrap();
    drop(w);
    let mut want = txns[..15].to_vec();
    want.extend(more);
    assert_eq!(replay(dir.path(), 0, false).unwrap().txns, want);

    // At a file boundary, and before everything.
    truncate_after(dir.path(), 10).unwrap();
    assert_eq!(replay(dir.path(), 0, false).unwrap().txns, txns[..10]);
    truncate_after(dir.path(), 0).unwrap();
    assert!(log_files(dir.path()).unwrap().is_empty());
}

#[test]
fn empty_or_missing_directory_has_no_txns() {
    let dir = tempfile::tempdir().unwrap();
    let r = replay(&dir.path().join("missing"), 0, true).unwrap();
    assert!(r.txns.is_empty() && r.torn.is_none());
    assert_eq!(r.last_zxid, -1);
    fs::write(dir.path().join("log.zz"), b"not a log").unwrap();
    fs::write(dir.path().join("snapshot.1"), b"not a log").unwrap();
    fs::write(dir.path().join(".log.5.tmp"), b"ZK").unwrap();
    assert!(log_files(dir.path()).unwrap().is_empty());
    // A writer clears the leftover temporary file.
    TxnLogWriter::open(dir.path().into(), 0).unwrap();
    assert!(!dir.path().join(".log.5.tmp").exists());
}

// ---------------------------------------------------------------------------
// Crashes at every byte and flipped bytes (property tests)

fn arb_path() -> impl Strategy<Value = String> {
    prop::collection::vec("[a-z0-9]{1,6}", 1..4).prop_map(|parts| format!("/{}", parts.join("/")))
}

fn arb_body() -> impl Strategy<Value = TxnBody> {
    let data = prop::collection::vec(any::<u8>(), 0..300);
    prop_oneof![
        (arb_path(), data.clone()).prop_map(|(p, d)| create(&p, &d)),
        (arb_path(), data, any::<i32>()).prop_map(|(p, d, v)| TxnBody::SetData(SetDataTxn {
            path: p,
            data: Some(Bytes::from(d)),
            version: v,
        })),
        arb_path().prop_map(|p| TxnBody::Delete(DeleteTxn { path: p })),
    ]
}

/// Random txns with increasing zxids (some jumping to a new epoch).
fn arb_txns(max: usize) -> impl Strategy<Value = Vec<Txn>> {
    prop::collection::vec((arb_body(), 1i64..3, any::<bool>()), 1..max).prop_map(|v| {
        let mut zxid = 0x1_0000_0000i64;
        v.into_iter()
            .map(|(b, step, epoch)| {
                zxid = if epoch && step == 2 {
                    ((zxid >> 32) + 1) << 32 | 1
                } else {
                    zxid + step
                };
                txn(zxid, b)
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// A crash cuts the newest file at any byte, either ending the file
    /// there or leaving zeros after it (preallocated space). Recovery keeps
    /// exactly the txns whose entries ended before the cut, and the log
    /// takes appends again.
    #[test]
    fn crash_at_any_byte_recovers_a_prefix(
        txns in arb_txns(40),
        more in arb_txns(6),
        prealloc in prop_oneof![Just(0u64), Just(512), Just(4096)],
        roll_every in 0usize..15,
        cut_frac in 0.0f64..=1.0,
        zero_fill in any::<bool>(),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let placed = write_log(dir.path(), prealloc, &txns, roll_every);
        let newest = placed.last().unwrap().file.clone();
        let len = fs::metadata(&newest).unwrap().len();
        let lo = if zero_fill { FILE_HEADER_LEN } else { 0 };
        let cut = lo + ((len - lo) as f64 * cut_frac) as u64;
        let cut = cut.min(len);
        let before = fs::read(&newest).unwrap();
        if zero_fill {
            let mut data = before.clone();
            for b in &mut data[cut as usize..] { *b = 0; }
            fs::write(&newest, data).unwrap();
        } else {
            OpenOptions::new().write(true).open(&newest).unwrap().set_len(cut).unwrap();
        }

        let survives = |p: &Placed| p.file != newest || p.end <= cut;
        let kept: Vec<Txn> = placed.iter().filter(|p| survives(p)).map(|p| p.txn.clone()).collect();
        prop_assert!(placed.iter().take(kept.len()).all(survives), "survivors are a prefix");
        let inside = placed.iter().find(|p| p.file == newest && p.start < cut && cut < p.end);
        // A cut inside the header (or an empty file) tears the header.
        let header_torn = !zero_fill && cut < FILE_HEADER_LEN;

        let r = replay(dir.path(), 0, true).unwrap();
        prop_assert_eq!(&r.txns, &kept);
        prop_assert!(r.skipped_tails.is_empty());
        match (&r.torn, inside) {
            (Some((f, off)), None) if header_torn => {
                prop_assert_eq!(f, &newest);
                prop_assert_eq!(*off, 0);
                prop_assert!(!newest.exists(), "a file without a whole header is removed");
            }
            (Some((f, off)), Some(p)) => {
                prop_assert_eq!(f, &newest);
                prop_assert_eq!(*off, p.start);
            }
            (Some(t), None) => prop_assert!(false, "torn {:?} but the cut {} is between entries", t, cut),
            // A cut that kept only zero bytes of an entry (the checksum's
            // high half is always zero) leaves a clean end.
            (None, Some(p)) => prop_assert!(
                before[p.start as usize..cut as usize].iter().all(|&b| b == 0),
                "cut {} inside the entry at {} not reported", cut, p.start),
            (None, None) => {}
        }
        // A second replay finds a clean log.
        let again = replay(dir.path(), 0, true).unwrap();
        prop_assert_eq!(&again.txns, &kept);
        prop_assert!(again.torn.is_none());

        // Appends after recovery (zxids go on from the last kept txn).
        let last = kept.last().map_or(0x1_0000_0000, |t| t.header.zxid);
        let more: Vec<Txn> = more.into_iter().enumerate()
            .map(|(i, t)| txn(last + 1 + i as i64, t.body))
            .collect();
        write_log(dir.path(), prealloc, &more, 0);
        let r = replay(dir.path(), 0, true).unwrap();
        let mut want = kept.clone();
        want.extend(more.iter().cloned());
        prop_assert_eq!(&r.txns, &want);
        prop_assert!(r.torn.is_none() && r.skipped_tails.is_empty());
    }

    /// Any one byte changed in any entry that is not the last of the log is
    /// corruption naming the file and that entry's offset.
    #[test]
    fn flipped_byte_is_corruption_at_its_entry(
        txns in arb_txns(30),
        prealloc in prop_oneof![Just(0u64), Just(4096)],
        roll_every in 0usize..12,
        pick in any::<prop::sample::Index>(),
        at in any::<prop::sample::Index>(),
        xor in 1u8..=255,
    ) {
        prop_assume!(txns.len() >= 2);
        let dir = tempfile::tempdir().unwrap();
        let placed = write_log(dir.path(), prealloc, &txns, roll_every);
        let victim = &placed[pick.index(placed.len() - 1)];
        let pos = victim.start + at.index((victim.end - victim.start) as usize) as u64;
        let mut data = fs::read(&victim.file).unwrap();
        data[pos as usize] ^= xor;
        fs::write(&victim.file, data).unwrap();

        let is_last_in_file = placed.iter().all(|p| p.file != victim.file || p.start <= victim.start);
        match replay(dir.path(), 0, true) {
            Err(e) => {
                let (file, offset, _) = corrupt_at(e);
                prop_assert_eq!(file, victim.file.clone());
                prop_assert_eq!(offset, victim.start);
            }
            // The last entry of an older file damaged into what a crash
            // leaves is read past, as Apache does; nothing else may pass.
            Ok(r) => {
                prop_assert!(is_last_in_file, "damage at {} went unnoticed", pos);
                prop_assert_eq!(r.skipped_tails, vec![(victim.file.clone(), victim.start)]);
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Logs written by Apache ZooKeeper 3.8.0 (Debian's package), standalone,
// `-Dzookeeper.preAllocSize=4` (KiB) and extendedTypesEnabled: zkCli.sh
// creates (plain, child, ephemeral, sequential, container, TTL), set,
// delete, setAcl, quit; kazoo: a multi that succeeded, one that failed, a
// create; then a restart (Apache starts `log.11`), a create and a delete.

#[test]
fn reads_logs_written_by_apache() {
    use jute::consts::op;
    let dir = tempfile::tempdir().unwrap();
    for (name, len, hex) in [APACHE_LOG_1, APACHE_LOG_11] {
        let mut bytes = hex_decode(hex);
        bytes.resize(len as usize, 0);
        fs::write(dir.path().join(name), bytes).unwrap();
    }
    let r = replay(dir.path(), 0, true).unwrap();
    assert!(r.torn.is_none() && r.skipped_tails.is_empty());
    let ops: Vec<i32> = r.txns.iter().map(|t| t.header.op).collect();
    #[rustfmt::skip]
    assert_eq!(ops, [
        op::CREATE_SESSION, op::CREATE, op::CREATE, op::CREATE, op::CREATE, op::SET_DATA,
        op::CREATE_CONTAINER, op::CREATE_TTL, op::DELETE, op::SET_ACL, op::CLOSE_SESSION,
        op::CREATE_SESSION, op::MULTI, op::MULTI, op::CREATE, op::CLOSE_SESSION,
        op::CREATE_SESSION, op::CREATE, op::DELETE, op::CLOSE_SESSION,
    ]);
    let zxids: Vec<i64> = r.txns.iter().map(|t| t.header.zxid).collect();
    assert_eq!(zxids, (1..=20).collect::<Vec<i64>>());
    assert_eq!(r.last_zxid, 20);
    // Apache 3.8 logs a digest after every txn.
    assert!(r.txns.iter().all(|t| t.digest.is_some()));
    match &r.txns[7].body {
        TxnBody::CreateTtl(t) => assert_eq!((t.path.as_str(), t.ttl), ("/ttl", 5000)),
        other => panic!("{other:?}"),
    }
    match &r.txns[10].body {
        TxnBody::CloseSession(t) => assert_eq!(t.paths_to_delete, ["/eph"]),
        other => panic!("{other:?}"),
    }
    match &r.txns[12].body {
        TxnBody::Multi(subs) => {
            let sub_ops: Vec<i32> = subs.iter().map(TxnBody::op).collect();
            assert_eq!(sub_ops, [op::CREATE, op::CHECK, op::SET_DATA, op::DELETE]);
        }
        other => panic!("{other:?}"),
    }
    match &r.txns[13].body {
        // A failed multi: the ops before the failure as they were
        // prepared, then the error.
        TxnBody::Multi(subs) => {
            let sub_ops: Vec<i32> = subs.iter().map(TxnBody::op).collect();
            assert_eq!(sub_ops, [op::CREATE, op::ERROR], "{subs:?}");
        }
        other => panic!("{other:?}"),
    }

    // Re-encoding every txn gives Apache's bytes back.
    for (name, len, hex) in [APACHE_LOG_1, APACHE_LOG_11] {
        let want = hex_decode(hex);
        let path = dir.path().join(name);
        let mut out = want[..16].to_vec();
        for e in LogReader::open(&path).unwrap() {
            let b = e.unwrap().txn.to_bytes_for_test();
            out.extend((adler2::adler32_slice(&b) as i64).to_be_bytes());
            out.extend((b.len() as i32).to_be_bytes());
            out.extend(&b);
            out.push(b'B');
        }
        assert_eq!(out, want, "{name}");
        assert_eq!(fs::metadata(&path).unwrap().len(), len, "nothing truncated");
    }

    // From a snapshot at 0x10 only the restarted server's file is needed.
    let r = replay(dir.path(), 0x10, false).unwrap();
    assert_eq!(r.txns.first().map(|t| t.header.zxid), Some(0x11));
    assert_eq!(r.txns.len(), 4);
}

fn hex_decode(s: &str) -> Vec<u8> {
    let s: Vec<u8> = s.bytes().filter(|b| b.is_ascii_hexdigit()).collect();
    s.chunks(2)
        .map(|c| u8::from_str_radix(std::str::from_utf8(c).unwrap(), 16).unwrap())
        .collect()
}

/// `log.1` as Apache wrote it (8208 bytes: these, then zeros).
const APACHE_LOG_1: (&str, u64, &str) = (
    "log.1",
    8208,
    "\
     5a4b4c4700000002000000000000000000000000c8cb0a4e0000003001000039adc30000000000000000000000000001\
     000001a2015f8038fffffff600007530000000020000000051c6d6604200000000b5e90be80000005701000039adc300\
     00000000010000000000000002000001a2015f805500000001000000022f780000000179000000010000001f00000005\
     776f726c6400000006616e796f6e6500000000010000000200000000b7d8bd124200000000a3f90fb800000061010000\
     39adc30000000000020000000000000003000001a2015f806b00000001000000082f782f6368696c6400000005646174\
     6131000000010000001f00000005776f726c6400000006616e796f6e6500000000010000000200000000eeb9518f4200\
     000000e8130c5b0000005901000039adc30000000000030000000000000004000001a2015f807000000001000000042f\
     6570680000000165000000010000001f00000005776f726c6400000006616e796f6e6501000000020000000200000001\
     e1362eb742000000009b500ed10000006401000039adc30000000000040000000000000005000001a2015f8074000000\
     010000000f2f7365712d303030303030303030320000000173000000010000001f00000005776f726c6400000006616e\
     796f6e65000000000300000002000000025ca3c771420000000007ce08c70000004101000039adc30000000000050000\
     000000000006000001a2015f807c00000005000000022f78000000076e65776461746100000001000000020000000229\
     1a7cb54200000000057c0da50000005901000039adc30000000000060000000000000007000001a2015f808500000013\
     000000052f636f6e740000000163000000010000001f00000005776f726c6400000006616e796f6e6500000004000000\
     020000000389b29bca420000000050a10d5c0000006001000039adc30000000000070000000000000008000001a2015f\
     808d00000015000000042f74746c0000000174000000010000001f00000005776f726c6400000006616e796f6e650000\
     0005000000000000138800000002000000039abf0a9c4200000000cb5a080e0000003801000039adc300000000000800\
     00000000000009000001a2015f809700000002000000082f782f6368696c640000000200000003314232aa4200000000\
     ac9913510000007101000039adc3000000000009000000000000000a000001a2015f80a100000007000000022f780000\
     00020000001f000000066469676573740000000e753a6347467a63336476636d513d0000000100000005776f726c6400\
     000006616e796f6e6500000001000000020000000347eb46e742000000001e1e0b310000003801000039adc300000000\
     000a000000000000000b000001a2015f80a7fffffff500000001000000042f657068000000020000000236d56c694200\
     000000ca7309d80000003001000039adc3000100000000000000000000000c000001a2015f818efffffff60000271000\
     0000020000000236d56c694200000000916214e7000000b001000039adc3000100000001000000000000000d000001a2\
     015f81a30000000e00000004000000010000002c000000032f6d310000000161000000010000001f00000005776f726c\
     6400000006616e796f6e6500000000060000000d0000000d000000052f636f6e74000000010000000500000014000000\
     032f6d31000000056d756c74690000000100000002000000130000000f2f7365712d3030303030303030303200000002\
     000000029896249442000000001b8e13c00000007001000039adc3000100000002000000000000000e000001a2015f81\
     ab0000000e00000002000000010000002c000000032f6d320000000162000000010000001f00000005776f726c640000\
     0006616e796f6e650000000007ffffffff00000004ffffff99000000020000000298962494420000000013789b710000\
     018401000039adc3000100000003000000000000000f000001a2015f81b100000001000000042f6d69640000012c7a7a\
     7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a\
     7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a\
     7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a\
     7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a\
     7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a\
     7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a\
     7a7a7a7a7a7a7a7a7a7a000000010000001f00000005776f726c6400000006616e796f6e650000000007000000020000\
     00036e0ffc894200000000cb9309f30000003001000039adc30001000000040000000000000010000001a2015f81b6ff\
     fffff50000000000000002000000036e0ffc8942\
",
);

/// `log.11` as Apache wrote it (8208 bytes: these, then zeros).
const APACHE_LOG_11: (&str, u64, &str) = (
    "log.11",
    8208,
    "\
     5a4b4c4700000002000000000000000000000000ba8809d80000003001000039c80f0000000000000000000000000011\
     000001a2015f99e8fffffff60000271000000002000000036e0ffc894200000000b8640ffa0000006301000039c80f00\
     00000000010000000000000012000001a2015f9a22000000010000000e2f61667465722d726573746172740000000172\
     000000010000001f00000005776f726c6400000006616e796f6e6500000000080000000200000003fe148e9742000000\
     008c7a06a00000003401000039c80f0000000000020000000000000013000001a2015f9aad00000002000000042f6d69\
     640000000200000002a32d53994200000000b45809300000003001000039c80f00000000000300000000000000140000\
     01a2015f9ab8fffffff5000000000000000200000002a32d539942\
",
);

#[cfg(target_os = "linux")]
#[test]
fn fsynced_log_pages_leave_the_page_cache() {
    // Under target/: /tmp may be a tmpfs, whose pages cannot be dropped.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    // SAFETY: statfs fills the struct it is given.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    let c = std::ffi::CString::new(dir.path().as_os_str().as_encoded_bytes()).unwrap();
    assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut st) }, 0);
    if st.f_type == libc::TMPFS_MAGIC {
        eprintln!("skipped: {} is on tmpfs", dir.path().display());
        return;
    }
    let data = vec![7u8; 1000];
    let mut w = TxnLogWriter::open(dir.path().into(), 1 << 20)
        .unwrap()
        .buffered();
    for z in 1..=100 {
        w.append(&txn(z, create(&format!("/a{z}"), &data))).unwrap();
    }
    let first = w.current_file().unwrap().to_path_buf();
    w.roll().unwrap();
    for z in 101..=150 {
        w.append(&txn(z, create(&format!("/a{z}"), &data))).unwrap();
    }
    let second = w.current_file().unwrap().to_path_buf();
    let written = w.current_file_len() as usize;
    w.sync(true).unwrap();
    // The rolled file entirely, the current one but for the page it is
    // filling.
    assert_eq!(
        common::cached_pages(&first).iter().filter(|&&c| c).count(),
        0
    );
    let cur = common::cached_pages(&second);
    assert_eq!(cur[..written / 4096].iter().filter(|&&c| c).count(), 0);
    // Without fsync (forceSync=no) the pages are dirty and stay.
    for z in 151..=200 {
        w.append(&txn(z, create(&format!("/a{z}"), &data))).unwrap();
    }
    let now = w.current_file_len() as usize;
    w.sync(false).unwrap();
    let cur = common::cached_pages(&second);
    assert!(cur[written / 4096 + 1..now / 4096].iter().all(|&c| c));
    // And the log reads back whole.
    drop(w);
    let r = replay(dir.path(), 0, false).unwrap();
    assert_eq!(r.txns.len(), 200);
}

#[cfg(target_os = "linux")]
#[test]
fn direct_writes_leave_the_same_bytes() {
    // Under target/: /tmp may be a tmpfs, which may refuse O_DIRECT.
    let base = env!("CARGO_TARGET_TMPDIR");
    let (d1, d2) = (
        tempfile::tempdir_in(base).unwrap(),
        tempfile::tempdir_in(base).unwrap(),
    );
    let step = 64 * 1024;
    let mut direct = TxnLogWriter::open(d1.path().into(), step).unwrap();
    let mut paged = TxnLogWriter::open(d2.path().into(), step)
        .unwrap()
        .buffered();
    // Sizes below, across and many times a block, a batch bigger than the
    // direct writer's buffer, syncs with and without fsync at uneven
    // points, and a roll: every way the last block is rewritten.
    let sizes = [1usize, 700, 4000, 4096, 5000, 13, 9000, 300, 4_500_000, 2];
    let mut seen_direct = false;
    for z in 1..=120i64 {
        let n = sizes[z as usize % sizes.len()] + z as usize;
        let t = txn(z, create(&format!("/d{z}"), &vec![z as u8; n]));
        direct.append(&t).unwrap();
        paged.append(&t).unwrap();
        seen_direct |= direct.is_direct();
        if z % 7 == 0 || z % 11 == 0 {
            direct.sync(z % 2 == 0).unwrap();
            paged.sync(z % 2 == 0).unwrap();
        }
        // Zeros written ahead, after a sync and with appends still
        // buffered, must never reach a byte of the log.
        if z % 3 == 0 {
            direct.zero_ahead().unwrap();
        }
        if z == 60 {
            direct.roll().unwrap();
            paged.roll().unwrap();
        }
    }
    direct.sync(true).unwrap();
    paged.sync(true).unwrap();
    if !seen_direct {
        eprintln!("skipped: {base} does not take O_DIRECT");
        return;
    }
    assert!(!paged.is_direct());
    let (files_d, files_p) = (log_files(d1.path()).unwrap(), log_files(d2.path()).unwrap());
    assert_eq!(files_d.len(), 2);
    for ((zd, fd), (zp, fp)) in files_d.iter().zip(&files_p) {
        assert_eq!(zd, zp);
        let (bd, bp) = (fs::read(fd).unwrap(), fs::read(fp).unwrap());
        // Padding to a whole block may end the file up to a block later.
        assert!(bd.len() >= bp.len() && bd.len() < bp.len() + 4096);
        assert!(bd[..bp.len()] == bp[..], "{} differs", fd.display());
        assert!(bd[bp.len()..].iter().all(|&b| b == 0));
    }
    drop(direct);
    drop(paged);
    let (rd, rp) = (
        replay(d1.path(), 0, false).unwrap(),
        replay(d2.path(), 0, false).unwrap(),
    );
    assert_eq!(rd.txns.len(), 120);
    assert_eq!(rd.txns, rp.txns);

    // Appends bypass the page cache (the reads above went through it, so
    // this looks at a fresh file).
    let d3 = tempfile::tempdir_in(base).unwrap();
    let mut w = TxnLogWriter::open(d3.path().into(), 1 << 20).unwrap();
    for z in 1..=50 {
        w.append(&txn(z, create(&format!("/c{z}"), &[5; 1000])))
            .unwrap();
        w.sync(z % 10 == 0).unwrap();
    }
    assert!(w.is_direct());
    let path = w.current_file().unwrap().to_path_buf();
    assert_eq!(
        common::cached_pages(&path).iter().filter(|&&c| c).count(),
        0
    );
}

/// `zero_ahead` allocates the preallocation's next blocks (so appends
/// overwrite instead of filling holes) without growing the file or
/// changing a byte.
#[cfg(target_os = "linux")]
#[test]
fn zeros_ahead_allocate_without_growing() {
    use std::os::unix::fs::MetadataExt;
    let base = env!("CARGO_TARGET_TMPDIR");
    let d = tempfile::tempdir_in(base).unwrap();
    let mut w = TxnLogWriter::open(d.path().into(), 64 << 20).unwrap();
    w.append(&txn(1, create("/a", &[7; 3000]))).unwrap();
    w.sync(true).unwrap();
    if !w.is_direct() {
        eprintln!("skipped: {base} does not take O_DIRECT");
        return;
    }
    let path = w.current_file().unwrap().to_path_buf();
    let allocated = || fs::metadata(&path).unwrap().blocks() * 512;
    assert!(allocated() < 1 << 20, "{}", allocated());
    // FilePadding's: the header's 16 bytes and one 64 MiB step.
    let size = fs::metadata(&path).unwrap().len();
    assert_eq!(size, (64 << 20) + 16);
    // One chunk per call, until half of the 4 MiB reach is ready.
    for _ in 0..10 {
        w.zero_ahead().unwrap();
    }
    let ahead = allocated();
    assert!((2 << 20..=5 << 20).contains(&ahead), "{ahead}");
    assert_eq!(fs::metadata(&path).unwrap().len(), size);
    // Appends into the written zeros, and more zeros after them.
    for z in 2..=40 {
        w.append(&txn(z, create(&format!("/b{z}"), &[z as u8; 100_000])))
            .unwrap();
        w.sync(true).unwrap();
        w.zero_ahead().unwrap();
    }
    assert!(allocated() > ahead);
    assert_eq!(fs::metadata(&path).unwrap().len(), size);
    drop(w);
    let r = replay(d.path(), 0, false).unwrap();
    assert_eq!(r.txns.len(), 40);
    assert_eq!(r.txns[39].header.zxid, 40);
}
