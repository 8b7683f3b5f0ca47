//! The tree digest: known values computed independently (Python's
//! zlib.crc32 over the same bytes, see the comments), and the incremental
//! digest against a full recomputation after random txns.

use bytes::Bytes;
use jute::consts::perms;
use jute::data::Acl;
use jute::txn::{
    CloseSessionTxn, CreateContainerTxn, CreateSessionTxn, CreateTtlTxn, CreateTxn, DeleteTxn,
    SetAclTxn, SetDataTxn, TxnBody, TxnHeader,
};
use proptest::prelude::*;
use tree::acl::open_acl_unsafe;
use tree::digest::{node_digest, DIGEST_VERSION};
use tree::DataTree;

fn hdr(zxid: i64, time: i64, client_id: i64) -> TxnHeader {
    TxnHeader {
        client_id,
        cxid: 0,
        zxid,
        time,
        op: 0,
    }
}

fn create(path: &str, data: Option<&[u8]>, ephemeral: bool) -> TxnBody {
    TxnBody::Create(CreateTxn {
        path: path.into(),
        data: data.map(Bytes::copy_from_slice),
        acl: open_acl_unsafe(),
        ephemeral,
        parent_cversion: -1,
    })
}

fn apply_ok(t: &mut DataTree, h: TxnHeader, b: TxnBody) {
    let r = t.apply(&h, &b);
    assert_eq!(r.err, 0, "{b:?}");
}

#[test]
fn version_is_two() {
    assert_eq!(DIGEST_VERSION, 2);
}

#[test]
fn known_values() {
    // Python:
    //   d(path, data, *stat) = crc32(path.encode() + (data or b"")
    //       + struct.pack(">qqqqqiiiq", czxid, mzxid, pzxid, ctime, mtime,
    //                     version, cversion, aversion, ephemeralOwner))
    //   with "/" hashed as "" and "/zookeeper/..." giving 0.
    // fresh tree: d("", b"", 0...) + d("/zookeeper", b"", 0...)
    let mut t = DataTree::new(false);
    assert_eq!(t.digest(), 1371985504);
    assert_eq!(t.compute_digest(), 1371985504);

    apply_ok(&mut t, hdr(1, 1000, 7), create("/a", Some(b"hello"), false));
    apply_ok(&mut t, hdr(2, 2000, 0x1234), create("/a/e", None, true));
    // root pzxid 1 cversion 1; /a hello 1,1,pzxid 2,1000,1000,0,1,0,0;
    // /a/e null 2,2,2,2000,2000,0,0,0,0x1234
    assert_eq!(t.digest(), 6523309893);

    apply_ok(
        &mut t,
        hdr(3, 3000, 7),
        TxnBody::SetData(SetDataTxn {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"world")),
            version: 1,
        }),
    );
    apply_ok(
        &mut t,
        hdr(3, 3000, 7),
        TxnBody::SetAcl(SetAclTxn {
            path: "/a".into(),
            acl: vec![Acl::new(perms::READ, "world", "anyone")],
            version: 1,
        }),
    );
    // A child of /zookeeper: its own digest is left out, but /zookeeper's
    // changed stat (cversion 1, pzxid 4) counts.
    apply_ok(
        &mut t,
        hdr(4, 4000, 7),
        create("/zookeeper/x", Some(b"q"), false),
    );
    apply_ok(
        &mut t,
        hdr(5, 5000, 7),
        TxnBody::Delete(DeleteTxn {
            path: "/a/e".into(),
        }),
    );
    // root: 0,0,1,0,0,0,1,0,0; /zookeeper: 0,0,4,0,0,0,1,0,0;
    // /a "world": 1,3,5,1000,3000,1,1,1,0
    assert_eq!(t.digest(), 5824771170);
    assert_eq!(t.compute_digest(), 5824771170);
}

#[test]
fn single_node_digest() {
    let mut s = jute::data::StatPersisted {
        czxid: 1,
        mzxid: 3,
        pzxid: 5,
        ctime: 1000,
        mtime: 3000,
        version: 1,
        cversion: 1,
        aversion: 1,
        ephemeral_owner: 0,
    };
    // zlib.crc32(b"/a" + b"world"
    //     + struct.pack(">qqqqqiiiq", 1, 3, 5, 1000, 3000, 1, 1, 1, 0))
    assert_eq!(node_digest("/a", Some(b"world"), &s), 55110254);
    // zlib.crc32(b"/a/e" + struct.pack(">qqqqqiiiq", 2, 2, 2, 2000, 2000, 0, 0, 0, 0x1234))
    s = jute::data::StatPersisted {
        czxid: 2,
        mzxid: 2,
        pzxid: 2,
        ctime: 2000,
        mtime: 2000,
        version: 0,
        cversion: 0,
        aversion: 0,
        ephemeral_owner: 0x1234,
    };
    assert_eq!(node_digest("/a/e", None, &s), 147582030);
}

#[derive(Debug, Clone)]
enum Op {
    Create(usize, u8, Option<Vec<u8>>),
    Delete(usize),
    SetData(usize, Option<Vec<u8>>),
    SetAcl(usize, bool),
    Close(u8),
}

const PATHS: &[&str] = &[
    "/a",
    "/a/b",
    "/a/b/c",
    "/d",
    "/d/e",
    "/zookeeper/q",
    "/zookeeper/q/r",
];

fn op() -> impl Strategy<Value = Op> {
    // Small data, and data long enough that the store keeps its CRC (from
    // 256 bytes): changes to either must keep the digest exact.
    let data = prop::option::of(prop_oneof![
        prop::collection::vec(any::<u8>(), 0..8),
        prop::collection::vec(any::<u8>(), 250..262),
    ]);
    prop_oneof![
        (0..PATHS.len(), 0u8..5, data.clone()).prop_map(|(p, k, d)| Op::Create(p, k, d)),
        (0..PATHS.len()).prop_map(Op::Delete),
        (0..PATHS.len(), data).prop_map(|(p, d)| Op::SetData(p, d)),
        (0..PATHS.len(), any::<bool>()).prop_map(|(p, b)| Op::SetAcl(p, b)),
        (1u8..3).prop_map(Op::Close),
    ]
}

proptest! {
    #[test]
    fn incremental_equals_recomputed(ops in prop::collection::vec(op(), 1..60)) {
        let mut t = DataTree::new(true);
        for (i, o) in ops.iter().enumerate() {
            let zxid = i as i64 + 1;
            let time = 1000 * zxid;
            let (session, body) = match o {
                Op::Create(p, kind, d) => {
                    let path = PATHS[*p].to_owned();
                    let data = d.clone().map(Bytes::from);
                    let acl = open_acl_unsafe();
                    let body = match kind {
                        0 => TxnBody::Create(CreateTxn { path, data, acl, ephemeral: false, parent_cversion: -1 }),
                        1 => TxnBody::Create(CreateTxn { path, data, acl, ephemeral: true, parent_cversion: -1 }),
                        2 => TxnBody::CreateContainer(CreateContainerTxn { path, data, acl, parent_cversion: -1 }),
                        3 => TxnBody::CreateTtl(CreateTtlTxn { path, data, acl, parent_cversion: -1, ttl: 500 }),
                        _ => TxnBody::Create(CreateTxn { path, data, acl, ephemeral: false, parent_cversion: 100 + zxid as i32 }),
                    };
                    (1 + (zxid % 2), body)
                }
                Op::Delete(p) => (1, TxnBody::Delete(DeleteTxn { path: PATHS[*p].into() })),
                Op::SetData(p, d) => (1, TxnBody::SetData(SetDataTxn {
                    path: PATHS[*p].into(),
                    data: d.clone().map(Bytes::from),
                    version: zxid as i32,
                })),
                Op::SetAcl(p, open) => (1, TxnBody::SetAcl(SetAclTxn {
                    path: PATHS[*p].into(),
                    acl: if *open { open_acl_unsafe() } else { vec![Acl::new(perms::READ, "ip", "127.0.0.1")] },
                    version: zxid as i32,
                })),
                Op::Close(s) => (i64::from(*s), TxnBody::CloseSession(CloseSessionTxn { paths_to_delete: vec![] })),
            };
            if i == 0 {
                t.apply(&hdr(0, 0, 1), &TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 }));
            }
            t.apply(&hdr(zxid, time, session), &body);
            prop_assert_eq!(t.digest(), t.compute_digest(), "after {:?}", o);
        }
    }
}
