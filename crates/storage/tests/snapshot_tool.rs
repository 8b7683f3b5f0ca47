//! Hand tools for checking snapshots against Apache ZooKeeper (ignored by
//! default; driven by environment variables):
//!
//! ```text
//! SNAPSHOT_IN=/path/snapshot.1f [EXTENDED_TYPES=1] \
//!     cargo test -p storage --test snapshot_tool dump -- --ignored --nocapture
//! SNAPSHOT_OUT_DIR=/dir [COMPRESSION=gz|snappy] \
//!     cargo test -p storage --test snapshot_tool write -- --ignored --nocapture
//! ```
//!
//! `dump` prints every node (snapshot order), its ACL, the sessions and the
//! digest check; `write` writes a small tree of every node kind.

use bytes::Bytes;
use jute::consts::perms;
use jute::data::Acl;
use jute::txn::{
    CreateContainerTxn, CreateSessionTxn, CreateTtlTxn, CreateTxn, SetAclTxn, SetDataTxn, TxnBody,
    TxnHeader,
};
use storage::snapshot::{read_snapshot_with, write_snapshot, Compression, ReadOptions};
use tree::acl::{digest_id, open_acl_unsafe};
use tree::DataTree;

fn print_tree(t: &DataTree) {
    for (path, n) in t.snapshot_nodes() {
        let data = match &n.data {
            None => "null".to_owned(),
            Some(d) => format!("{:?}", String::from_utf8_lossy(d)),
        };
        let acl: Vec<String> = t
            .acl_of(n)
            .iter()
            .map(|a| format!("{}:{}:{}", a.id.scheme, a.id.id, a.perms))
            .collect();
        println!(
            "{:?} data={} acl#{}={:?} stat={:?} children={}",
            if path.is_empty() { "/" } else { &path },
            data,
            n.acl,
            acl,
            n.stat,
            n.num_children
        );
    }
    let mut sessions: Vec<_> = t.sessions().iter().collect();
    sessions.sort();
    for (id, to) in sessions {
        let eph: Vec<_> = t.ephemerals(*id).collect();
        println!("session {id:#018x} timeout {to} ephemerals {eph:?}");
    }
    let mut c: Vec<_> = t.container_paths().iter().collect();
    c.sort();
    let mut ttl: Vec<_> = t.ttl_paths().iter().collect();
    ttl.sort();
    println!("containers {c:?} ttls {ttl:?}");
    println!(
        "nodes {} digest {} (recomputed {})",
        t.node_count(),
        t.digest(),
        t.compute_digest()
    );
}

#[test]
#[ignore]
fn dump() {
    let path = std::env::var("SNAPSHOT_IN").expect("SNAPSHOT_IN");
    let opts = ReadOptions {
        extended_types: std::env::var("EXTENDED_TYPES").is_ok_and(|v| v == "1"),
        ..Default::default()
    };
    let s = read_snapshot_with(path.as_ref(), &opts).unwrap();
    print_tree(&s.tree);
    println!(
        "file zxid {:#x}, digest section {:?}, matches {:?}",
        s.zxid,
        s.digest,
        s.digest_matches()
    );
}

#[test]
#[ignore]
fn write() {
    let dir = std::env::var("SNAPSHOT_OUT_DIR").expect("SNAPSHOT_OUT_DIR");
    let compression = match std::env::var("COMPRESSION").as_deref() {
        Ok("gz") => Compression::Gz,
        Ok("snappy") => Compression::Snappy,
        _ => Compression::None,
    };
    let mut t = DataTree::new(true);
    let mut zxid = 0x1_0000_0000i64;
    let sess = 0x0100_0000_0000_0001i64;
    let mut apply = |t: &mut DataTree, body: TxnBody| {
        zxid += 1;
        let h = TxnHeader {
            client_id: sess,
            cxid: 0,
            zxid,
            time: 1_700_000_000_000 + zxid,
            op: body.op(),
        };
        assert_eq!(t.apply(&h, &body).err, 0, "{body:?}");
    };
    let create = |path: &str, data: Option<&[u8]>, acl: Vec<Acl>, ephemeral: bool| {
        TxnBody::Create(CreateTxn {
            path: path.into(),
            data: data.map(Bytes::copy_from_slice),
            acl,
            ephemeral,
            parent_cversion: -1,
        })
    };
    apply(
        &mut t,
        TxnBody::CreateSession(CreateSessionTxn { time_out: 30000 }),
    );
    apply(
        &mut t,
        create("/app", Some(b"config"), open_acl_unsafe(), false),
    );
    apply(&mut t, create("/app/null", None, open_acl_unsafe(), false));
    apply(
        &mut t,
        create("/app/empty", Some(b""), open_acl_unsafe(), false),
    );
    let dig = vec![Acl::new(perms::ALL, "digest", &digest_id("alice:secret"))];
    apply(&mut t, create("/app/secret", Some(b"s3"), dig, false));
    let ip = vec![
        Acl::new(perms::ALL, "ip", "127.0.0.1/8"),
        Acl::new(perms::READ, "world", "anyone"),
    ];
    apply(
        &mut t,
        create("/app/iponly", Some(b"ip"), ip.clone(), false),
    );
    apply(
        &mut t,
        create("/app/eph", Some(b"e1"), open_acl_unsafe(), true),
    );
    apply(
        &mut t,
        TxnBody::CreateContainer(CreateContainerTxn {
            path: "/box".into(),
            data: None,
            acl: open_acl_unsafe(),
            parent_cversion: -1,
        }),
    );
    apply(
        &mut t,
        create("/box/item", Some(b"i"), open_acl_unsafe(), false),
    );
    apply(
        &mut t,
        TxnBody::CreateTtl(CreateTtlTxn {
            path: "/ttl".into(),
            data: Some(Bytes::from_static(b"t")),
            acl: open_acl_unsafe(),
            parent_cversion: -1,
            ttl: 600_000,
        }),
    );
    apply(
        &mut t,
        TxnBody::SetData(SetDataTxn {
            path: "/app".into(),
            data: Some(Bytes::from_static(b"config-2")),
            version: 1,
        }),
    );
    apply(
        &mut t,
        TxnBody::SetAcl(SetAclTxn {
            path: "/app/null".into(),
            acl: ip,
            version: 1,
        }),
    );
    apply(
        &mut t,
        create(
            "/unicod\u{e9}-\u{4e2d}",
            Some("d\u{e9}".as_bytes()),
            open_acl_unsafe(),
            false,
        ),
    );
    let p = write_snapshot(dir.as_ref(), &t, t.last_zxid(), compression).unwrap();
    println!("wrote {}", p.display());
    print_tree(&t);
}
