//! Snapshots: round trips (plain, gz, snappy) keep every node, stat, ACL id
//! and reference count, session and index; damage is reported as
//! corruption naming the file; writes are atomic.

mod common;

use std::path::Path;

use bytes::Bytes;
use jute::consts::perms;
use jute::data::Acl;
use jute::txn::{
    CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn, CreateTxn, DeleteTxn,
    SetAclTxn, SetDataTxn, TxnBody, TxnHeader,
};
use storage::snapshot::{
    list_snapshots, read_snapshot, read_snapshot_stream, read_snapshot_with, serialize_snapshot,
    serialize_snapshot_stream, snapshot_file_name, write_snapshot, Compression, ReadOptions,
    ZxidDigest,
};
use storage::StorageError;
use tree::acl::{digest_id, open_acl_unsafe};
use tree::DataTree;

const S1: i64 = 0x0100_0000_0000_0001;
const S2: i64 = 0x0100_0000_0000_0002;
const S3: i64 = 0x0200_0000_0000_0003;

struct Builder {
    t: DataTree,
    zxid: i64,
}

impl Builder {
    fn apply(&mut self, session: i64, body: TxnBody) {
        self.zxid += 1;
        let h = TxnHeader {
            client_id: session,
            cxid: 0,
            zxid: self.zxid,
            time: 1_700_000_000_000 + self.zxid * 1000,
            op: body.op(),
        };
        let r = self.t.apply(&h, &body);
        assert_eq!(r.err, 0, "{body:?}");
    }

    fn create(&mut self, session: i64, path: &str, data: Option<&[u8]>, acl: Vec<Acl>, eph: bool) {
        self.apply(
            session,
            TxnBody::Create(CreateTxn {
                path: path.into(),
                data: data.map(Bytes::copy_from_slice),
                acl,
                ephemeral: eph,
                parent_cversion: -1,
            }),
        );
    }
}

/// A tree with every node kind, several ACLs (digest, ip, world), freed
/// ACLs (so ids have gaps), ephemerals of two sessions, a session without
/// any, a container, a TTL node, null, empty and binary data.
fn sample_tree(extended_types: bool) -> DataTree {
    let mut b = Builder {
        t: DataTree::new(extended_types),
        zxid: 0x5_0000_0000,
    };
    for s in [S1, S2, S3] {
        b.apply(
            s,
            TxnBody::CreateSession(CreateSessionTxn {
                time_out: 30_000 + (s & 0xff) as i32,
            }),
        );
    }
    let digest_acl = vec![Acl::new(perms::ALL, "digest", &digest_id("alice:secret"))];
    let ip_acl = vec![
        Acl::new(perms::READ | perms::WRITE, "ip", "127.0.0.1/8"),
        Acl::new(perms::READ, "world", "anyone"),
    ];
    let temp_acl = vec![Acl::new(perms::READ, "ip", "10.0.0.1")];
    b.create(S1, "/app", Some(b"config"), open_acl_unsafe(), false);
    b.create(S1, "/app/null", None, open_acl_unsafe(), false);
    b.create(S1, "/app/empty", Some(b""), digest_acl.clone(), false);
    b.create(
        S1,
        "/app/bin",
        Some(&[0, 1, 2, 255, 254]),
        ip_acl.clone(),
        false,
    );
    b.create(S1, "/app/tmp", None, temp_acl.clone(), false);
    b.create(
        S1,
        "/app/seq-0000000005",
        Some(b"s"),
        open_acl_unsafe(),
        false,
    );
    b.create(S1, "/app/deep", None, open_acl_unsafe(), false);
    b.create(S1, "/app/deep/a", None, open_acl_unsafe(), false);
    b.create(S1, "/app/deep/a/b", Some(b"x"), digest_acl.clone(), false);
    b.create(
        S1,
        "/app/unicod\u{e9}-\u{4e2d}",
        Some("d\u{e9}j\u{e0}".as_bytes()),
        open_acl_unsafe(),
        false,
    );
    // Ephemerals of two sessions, and one of a session that then closes.
    b.create(S1, "/app/e1", Some(b"1"), open_acl_unsafe(), true);
    b.create(S1, "/app/deep/e1b", None, ip_acl.clone(), true);
    b.create(S2, "/app/e2", Some(b"2"), digest_acl.clone(), true);
    b.create(S3, "/app/e3", None, open_acl_unsafe(), true);
    b.apply(
        S3,
        TxnBody::CloseSession(CloseSessionTxn {
            paths_to_delete: vec![],
        }),
    );
    b.apply(
        S3 + 1,
        TxnBody::CreateSession(CreateSessionTxn { time_out: 4_000 }),
    );
    b.apply(
        S1,
        TxnBody::CreateContainer(CreateContainerTxn {
            path: "/box".into(),
            data: None,
            acl: open_acl_unsafe(),
            parent_cversion: -1,
        }),
    );
    b.create(S1, "/box/item", Some(b"i"), open_acl_unsafe(), false);
    b.apply(
        S1,
        TxnBody::CreateTtl(CreateTtlTxn {
            path: "/ttl".into(),
            data: Some(Bytes::from_static(b"t")),
            acl: open_acl_unsafe(),
            parent_cversion: -1,
            ttl: 60_000,
        }),
    );
    // Churn: versions, a freed ACL (a gap in the ids), pzxid from a delete.
    b.apply(
        S1,
        TxnBody::SetData(SetDataTxn {
            path: "/app".into(),
            data: Some(Bytes::from_static(b"config-2")),
            version: 1,
        }),
    );
    b.apply(
        S1,
        TxnBody::SetAcl(SetAclTxn {
            path: "/app/seq-0000000005".into(),
            acl: ip_acl,
            version: 1,
        }),
    );
    b.apply(
        S1,
        TxnBody::Delete(DeleteTxn {
            path: "/app/tmp".into(),
        }),
    );
    b.apply(
        S1,
        TxnBody::SetData(SetDataTxn {
            path: "/zookeeper/config".into(),
            data: Some(Bytes::from_static(b"server.1=127.0.0.1:2888:3888")),
            version: 1,
        }),
    );
    assert!(b
        .t
        .acl_cache()
        .entries()
        .all(|(_, l)| l != temp_acl.as_slice()));
    assert_eq!(b.t.last_zxid(), b.zxid);
    b.t
}

fn assert_same(a: &DataTree, b: &DataTree) {
    assert_eq!(a.node_count(), b.node_count());
    for (path, n) in a.nodes() {
        let m = b.node(&path).unwrap_or_else(|| panic!("{path} missing"));
        assert_eq!(n.data, m.data, "{path} data");
        assert_eq!(n.acl, m.acl, "{path} acl id");
        assert_eq!(n.stat, m.stat, "{path} stat");
        let mut ca: Vec<&str> = a.child_names(&path).collect();
        let mut cb: Vec<&str> = b.child_names(&path).collect();
        ca.sort_unstable();
        cb.sort_unstable();
        assert_eq!(ca, cb, "{path} children");
        assert_eq!(a.acl_of(n), b.acl_of(m), "{path} acl");
    }
    let mut ea: Vec<_> = a
        .acl_cache()
        .entries()
        .map(|(i, l)| (i, l.to_vec()))
        .collect();
    let mut eb: Vec<_> = b
        .acl_cache()
        .entries()
        .map(|(i, l)| (i, l.to_vec()))
        .collect();
    ea.sort();
    eb.sort();
    assert_eq!(ea, eb, "ACL cache");
    for (id, _) in &ea {
        assert_eq!(
            a.acl_cache().ref_count(*id),
            b.acl_cache().ref_count(*id),
            "refs of {id}"
        );
    }
    assert_eq!(a.sessions(), b.sessions());
    assert_eq!(a.ephemerals_by_session(), b.ephemerals_by_session());
    assert_eq!(a.container_paths(), b.container_paths());
    assert_eq!(a.ttl_paths(), b.ttl_paths());
    assert_eq!(a.approximate_data_size(), b.approximate_data_size());
    assert_eq!(a.digest(), b.digest());
    assert_eq!(b.digest(), b.compute_digest());
    assert_eq!(a.extended_types, b.extended_types);
}

fn is_corrupt_naming(r: Result<impl std::fmt::Debug, StorageError>, file: &Path) -> String {
    match r {
        Err(StorageError::Corrupt {
            file: f,
            offset,
            reason,
        }) => {
            assert_eq!(f, file);
            let e = StorageError::Corrupt {
                file: f,
                offset,
                reason,
            };
            let msg = e.to_string();
            assert!(msg.contains(&file.display().to_string()), "{msg}");
            msg
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
}

#[test]
fn round_trip_plain_gz_snappy() {
    let dir = tempfile::tempdir().unwrap();
    let t = sample_tree(true);
    let zxid = t.last_zxid();
    assert!(!t.container_paths().is_empty() && !t.ttl_paths().is_empty());
    assert_eq!(t.ephemerals_by_session().len(), 2);
    for c in [Compression::None, Compression::Gz, Compression::Snappy] {
        let p = write_snapshot(dir.path(), &t, zxid, c).unwrap();
        assert_eq!(
            p.file_name().unwrap().to_str().unwrap(),
            snapshot_file_name(zxid, c)
        );
        let s = read_snapshot_with(
            &p,
            &ReadOptions {
                extended_types: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(s.zxid, zxid);
        assert_eq!(s.tree.last_zxid(), zxid);
        assert_eq!(
            s.digest,
            Some(ZxidDigest {
                zxid,
                version: 2,
                digest: t.digest()
            })
        );
        assert_eq!(s.digest_matches(), Some(true));
        assert_same(&t, &s.tree);
    }
    // Only the three snapshots, no temp files left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
}

#[test]
fn ttl_owner_without_extended_types_is_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let t = sample_tree(true);
    let p = write_snapshot(dir.path(), &t, t.last_zxid(), Compression::None).unwrap();
    let (r, _) = read_snapshot(&p, false).unwrap();
    assert!(r.ttl_paths().is_empty());
    let ttl_owner = t.node("/ttl").unwrap().stat.ephemeral_owner;
    assert!(r.ephemerals(ttl_owner).any(|p| p == "/ttl"));
    assert_eq!(r.container_paths(), t.container_paths());
}

#[test]
fn fresh_tree_round_trip_and_layout() {
    let t = DataTree::new(false);
    let bytes = serialize_snapshot(Vec::new(), &t, 0).unwrap();
    // Header.
    assert_eq!(&bytes[..4], b"ZKSN");
    assert_eq!(&bytes[4..8], &2i32.to_be_bytes());
    assert_eq!(&bytes[8..16], &(-1i64).to_be_bytes());
    // No sessions, one ACL (the config node's READ), then the root as "".
    assert_eq!(&bytes[16..20], &0i32.to_be_bytes());
    assert_eq!(&bytes[20..24], &1i32.to_be_bytes());
    let root_at = 24 + 8 + 4 + 4 + (4 + 5) + (4 + 6);
    assert_eq!(&bytes[root_at..root_at + 4], &0i32.to_be_bytes());
    // Ends: "/" marker, seal, digest (zxid, version 2, digest), seal.
    let n = bytes.len();
    assert_eq!(&bytes[n - 5..], &[0, 0, 0, 1, b'/']);
    assert_eq!(&bytes[n - 33 - 5..n - 33], &[0, 0, 0, 1, b'/']);
    assert_eq!(&bytes[n - 33 + 8..n - 33 + 12], &2i32.to_be_bytes());
    let a1 = adler(&bytes[..n - 46]);
    assert_eq!(&bytes[n - 46..n - 38], &a1.to_be_bytes());
    let a2 = adler(&bytes[..n - 13]);
    assert_eq!(&bytes[n - 13..n - 5], &a2.to_be_bytes());
}

/// Adler-32 written out, independent of the crate the code uses.
fn adler(b: &[u8]) -> i64 {
    let (mut a, mut s) = (1u32, 0u32);
    for &x in b {
        a = (a + x as u32) % 65521;
        s = (s + a) % 65521;
    }
    ((s as i64) << 16) | a as i64
}

#[test]
fn every_flipped_byte_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let t = sample_tree(false);
    let good = write_snapshot(dir.path(), &t, t.last_zxid(), Compression::None).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let bad = dir.path().join(snapshot_file_name(1, Compression::None));
    for i in 0..bytes.len() {
        let mut b = bytes.clone();
        b[i] ^= 0x5a;
        std::fs::write(&bad, &b).unwrap();
        is_corrupt_naming(read_snapshot(&bad, false), &bad);
    }
}

#[test]
fn truncation_is_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let t = sample_tree(false);
    let good = write_snapshot(dir.path(), &t, t.last_zxid(), Compression::None).unwrap();
    let bytes = std::fs::read(&good).unwrap();
    let bad = dir.path().join(snapshot_file_name(1, Compression::None));
    // Cut right after the first seal, a file reads as a snapshot from
    // before 3.6 (no digest section): that one length is valid.
    let old_len = bytes.len() - 33;
    for len in 0..bytes.len() {
        std::fs::write(&bad, &bytes[..len]).unwrap();
        let r = read_snapshot_with(&bad, &ReadOptions::default());
        if len == old_len {
            let s = r.unwrap();
            assert_eq!(s.digest, None);
            assert_eq!(s.tree.digest(), t.digest());
        } else {
            is_corrupt_naming(r, &bad);
        }
    }
    // Trailing bytes after the last seal.
    let mut b = bytes.clone();
    b.push(0);
    std::fs::write(&bad, &b).unwrap();
    is_corrupt_naming(read_snapshot(&bad, false), &bad);
}

#[test]
fn damaged_compressed_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let t = sample_tree(false);
    for c in [Compression::Gz, Compression::Snappy] {
        let good = write_snapshot(dir.path(), &t, t.last_zxid(), c).unwrap();
        let bytes = std::fs::read(&good).unwrap();
        let bad = dir.path().join(snapshot_file_name(1, c));
        for len in [0, 10, bytes.len() / 2, bytes.len() - 1] {
            std::fs::write(&bad, &bytes[..len]).unwrap();
            is_corrupt_naming(read_snapshot(&bad, false), &bad);
        }
        // Past gzip's header (whose mtime/OS bytes no checksum covers).
        for i in (20..bytes.len()).step_by(7) {
            let mut b = bytes.clone();
            b[i] ^= 0x21;
            std::fs::write(&bad, &b).unwrap();
            match read_snapshot(&bad, false) {
                // A changed copy offset in a snappy block can still yield
                // the same bytes (a run of zeros copied from elsewhere):
                // then the content is intact.
                Ok((r, _)) => assert_same(&t, &r),
                e => {
                    is_corrupt_naming(e, &bad);
                }
            }
        }
        std::fs::remove_file(&bad).unwrap();
    }
}

#[test]
fn oversized_length_is_refused_before_allocating() {
    let dir = tempfile::tempdir().unwrap();
    let t = DataTree::new(false);
    let mut bytes = serialize_snapshot(Vec::new(), &t, 0).unwrap();
    // The ACL scheme's length (after header, sessions, map count, id,
    // list length, perms) set to 2^31-1.
    let at = 16 + 4 + 4 + 8 + 4 + 4;
    bytes[at..at + 4].copy_from_slice(&i32::MAX.to_be_bytes());
    let bad = dir.path().join("snapshot.0");
    std::fs::write(&bad, &bytes).unwrap();
    let msg = is_corrupt_naming(read_snapshot(&bad, false), &bad);
    assert!(msg.contains("unreasonable length"), "{msg}");
    // A huge session count with nothing behind it.
    let mut bytes = serialize_snapshot(Vec::new(), &t, 0).unwrap();
    bytes[16..20].copy_from_slice(&i32::MAX.to_be_bytes());
    std::fs::write(&bad, &bytes).unwrap();
    is_corrupt_naming(read_snapshot(&bad, false), &bad);
}

#[test]
fn bad_names_and_listing() {
    let dir = tempfile::tempdir().unwrap();
    let t = DataTree::new(false);
    let p = write_snapshot(dir.path(), &t, 0x1_0000_0000, Compression::None).unwrap();
    write_snapshot(dir.path(), &t, 0x2a, Compression::Gz).unwrap();
    write_snapshot(dir.path(), &t, 0x1_0000_0005, Compression::Snappy).unwrap();
    std::fs::write(dir.path().join(".snapshot.2_0000_0000.tmp"), b"partial").unwrap();
    std::fs::write(dir.path().join("snapshot.300000000.tmp"), b"partial").unwrap();
    std::fs::write(dir.path().join("log.100000001"), b"x").unwrap();
    let l = list_snapshots(dir.path()).unwrap();
    let zxids: Vec<i64> = l.iter().map(|e| e.0).collect();
    assert_eq!(zxids, vec![0x1_0000_0005, 0x1_0000_0000, 0x2a]);
    // A snapshot must be named for its zxid.
    let renamed = dir.path().join("copy-of-snapshot");
    std::fs::copy(&p, &renamed).unwrap();
    is_corrupt_naming(read_snapshot(&renamed, false), &renamed);
    // Not a snapshot at all.
    let junk = dir.path().join("snapshot.7");
    std::fs::write(&junk, b"this is not a snapshot at all").unwrap();
    let msg = is_corrupt_naming(read_snapshot(&junk, false), &junk);
    assert!(msg.contains("magic"), "{msg}");
}

#[test]
fn snap_stream_round_trip_leaves_what_follows() {
    // A leader's SNAP: the database with no header or checksum, followed on
    // the same stream by the "BenWasHere" signature.
    let t = sample_tree(true);
    let mut wire = serialize_snapshot_stream(Vec::new(), &t).unwrap();
    wire.extend_from_slice(b"rest");
    let opts = ReadOptions {
        extended_types: true,
        ..ReadOptions::default()
    };
    let (got, mut rest) =
        read_snapshot_stream(&wire[..], Path::new("leader"), t.last_zxid(), &opts).unwrap();
    assert_same(&t, &got);
    let mut tail = Vec::new();
    std::io::Read::read_to_end(&mut rest, &mut tail).unwrap();
    assert_eq!(tail, b"rest");
    // Cut short: an error naming the source, never a panic.
    let err = read_snapshot_stream(&wire[..wire.len() / 2], Path::new("leader"), 1, &opts);
    assert!(err.is_err());
}

/// A snapshot goes to disk as it is written, a MiB at a time, and what is
/// on disk leaves the page cache: once written, all but its last few MiB
/// are out of the cache (only clean pages can leave it), and it reads back
/// whole.
#[cfg(target_os = "linux")]
#[test]
fn snapshot_pages_go_to_disk_as_written() {
    // Under target/: /tmp may be a tmpfs, whose pages cannot be dropped.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
    let mut b = Builder {
        t: DataTree::new(false),
        zxid: 0,
    };
    let data = vec![b'x'; 1024];
    for i in 0..6000 {
        b.create(0, &format!("/n{i}"), Some(&data), open_acl_unsafe(), false);
    }
    let path = write_snapshot(dir.path(), &b.t, b.zxid, Compression::None).unwrap();
    let cached = common::cached_pages(&path);
    let mib = 1 << 20;
    let len = std::fs::metadata(&path).unwrap().len() as usize;
    assert!(len > 6 * mib, "{len}");
    // Up to three MiB at the end may still be cached: the chunk being
    // filled, and the two in flight.
    let settled = (len - 3 * mib) / 4096;
    let left = cached[..settled].iter().filter(|&&c| c).count();
    assert_eq!(left, 0, "{left} of the first {settled} pages still cached");
    let (back, zxid) = read_snapshot(&path, false).unwrap();
    assert_eq!(zxid, b.zxid);
    assert_same(&b.t, &back);
}
