//! Rebuilding a tree from snapshot records: order, ACL ids and counts,
//! the digest, and the fuzzy-snapshot case Apache ZooKeeper produces (a
//! node naming an ACL that the ACL map, written first, lacks).

use bytes::Bytes;
use jute::consts::perms;
use jute::data::{Acl, StatPersisted};
use jute::txn::{CreateTxn, DeleteTxn, TxnBody, TxnHeader};
use tree::acl::open_acl_unsafe;
use tree::DataTree;

fn hdr(zxid: i64) -> TxnHeader {
    TxnHeader {
        client_id: 1,
        cxid: 0,
        zxid,
        time: zxid * 10,
        op: 1,
    }
}

fn create(path: &str, acl: Vec<Acl>) -> TxnBody {
    TxnBody::Create(CreateTxn {
        path: path.into(),
        data: Some(Bytes::from_static(b"d")),
        acl,
        ephemeral: false,
        parent_cversion: -1,
    })
}

fn rebuild(t: &DataTree) -> DataTree {
    let acls = t
        .acl_cache()
        .entries()
        .map(|(i, l)| (i, l.to_vec()))
        .collect();
    let mut b = DataTree::from_snapshot(t.extended_types, acls);
    for (id, to) in t.sessions() {
        b.session(*id, *to);
    }
    for (path, n) in t.snapshot_nodes() {
        b.node(&path, n.data, n.acl, n.stat).unwrap();
    }
    assert_eq!(b.unknown_acl_refs(), 0);
    b.finish(t.last_zxid(), 0).unwrap()
}

#[test]
fn snapshot_order_is_preorder_root_first() {
    let mut t = DataTree::new(false);
    for (i, p) in ["/b", "/a", "/a/z", "/a/y", "/a/y/x", "/c"]
        .iter()
        .enumerate()
    {
        assert_eq!(
            t.apply(&hdr(i as i64 + 1), &create(p, open_acl_unsafe()))
                .err,
            0
        );
    }
    let order: Vec<String> = t.snapshot_nodes().map(|(p, _)| p).collect();
    // Every parent before its children.
    for (i, p) in order.iter().enumerate().skip(1) {
        let parent = &p[..p.rfind('/').unwrap()];
        assert!(
            order[..i].iter().any(|q| q == parent),
            "{p} before {parent}"
        );
    }
    let mut sorted = order.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            "",
            "/a",
            "/a/y",
            "/a/y/x",
            "/a/z",
            "/b",
            "/c",
            "/zookeeper",
            "/zookeeper/config",
            "/zookeeper/quota"
        ]
    );
    let r = rebuild(&t);
    assert_eq!(r.digest(), t.digest());
    assert_eq!(r.compute_digest(), t.digest());
    assert_eq!(r.approximate_data_size(), t.approximate_data_size());
    assert_eq!(r.last_zxid(), t.last_zxid());
    for (p, n) in t.nodes() {
        let m = r.node(&p).unwrap();
        assert_eq!(
            (n.acl, n.stat, n.num_children),
            (m.acl, m.stat, m.num_children)
        );
    }
    assert_eq!(children_of(&r), children_of(&t));
}

#[test]
fn acl_ids_counts_and_next_id_survive() {
    let mut t = DataTree::new(false);
    let a = vec![Acl::new(perms::READ, "ip", "10.0.0.1")];
    let b = vec![Acl::new(perms::ALL, "ip", "10.0.0.2")];
    t.apply(&hdr(1), &create("/x", a.clone()));
    t.apply(&hdr(2), &create("/y", b.clone()));
    t.apply(&hdr(3), &create("/z", b.clone()));
    t.apply(&hdr(4), &TxnBody::Delete(DeleteTxn { path: "/x".into() }));
    // ids: 1 config READ, 2 = a (freed), 3 = b (two refs).
    let r = rebuild(&t);
    let id_b = r.node("/y").unwrap().acl;
    assert_eq!(id_b, t.node("/y").unwrap().acl);
    assert_eq!(r.acl_cache().ref_count(id_b), 2);
    assert_eq!(r.acl_cache().len(), t.acl_cache().len());
    // New ACLs continue after the largest id, as ZooKeeper's aclIndex.
    let mut r = r;
    r.apply(&hdr(5), &create("/w", a));
    assert_eq!(r.node("/w").unwrap().acl, id_b + 1);
}

#[test]
fn unreferenced_acls_are_purged() {
    let s = StatPersisted::default();
    let mut b = DataTree::from_snapshot(
        false,
        vec![
            (1, vec![Acl::new(perms::READ, "world", "anyone")]),
            (7, vec![Acl::new(perms::READ, "ip", "1.2.3.4")]),
        ],
    );
    b.node("", Some(&b""[..]), -1, s).unwrap();
    b.node("/a", None, 1, s).unwrap();
    let t = b.finish(3, 0).unwrap();
    assert_eq!(t.acl_cache().len(), 1);
    assert_eq!(t.acl_cache().ref_count(1), 1);
    assert_eq!(t.acl_cache().ref_count(7), 0);
}

#[test]
fn fuzzy_snapshot_acl_is_repaired_by_replay() {
    // As in an Apache snapshot seen in practice: the map has only the
    // config node's ACL (1) but /app, created while the snapshot was being
    // written, names ACL 2 (OPEN_ACL_UNSAFE).
    let s = StatPersisted {
        czxid: 2,
        mzxid: 2,
        pzxid: 2,
        ctime: 20,
        mtime: 20,
        ..Default::default()
    };
    let mut b = DataTree::from_snapshot(
        false,
        vec![(1, vec![Acl::new(perms::READ, "world", "anyone")])],
    );
    let root = StatPersisted {
        cversion: 2,
        pzxid: 2,
        ..Default::default()
    };
    b.node("", Some(&b""[..]), -1, root).unwrap();
    b.node("/app", Some(&b"d"[..]), 2, s).unwrap();
    b.node("/zookeeper", Some(&b""[..]), -1, StatPersisted::default())
        .unwrap();
    assert_eq!(b.unknown_acl_refs(), 1);
    let mut t = b.finish(1, 0).unwrap();
    // Until replay, the dangling id grants nothing.
    let app = t.node("/app").unwrap();
    assert!(!tree::acl::check(&t.acl_of(app), perms::READ, &[]));
    // Replaying /app's create fails (NodeExists) but adds the ACL as id 2.
    let r = t.apply(&hdr(2), &create("/app", open_acl_unsafe()));
    assert_eq!(r.err, jute::ErrorCode::NodeExists.code());
    let app = t.node("/app").unwrap();
    assert_eq!(*t.acl_of(app), open_acl_unsafe());
    assert_eq!(t.acl_cache().ref_count(2), 1);
}

#[test]
fn malformed_records_are_refused() {
    let s = StatPersisted::default();
    let fresh = || DataTree::from_snapshot(false, vec![]);
    let mut b = fresh();
    assert!(b.node("/a", None, -1, s).is_err(), "before the root");
    let mut b = fresh();
    b.node("", None, -1, s).unwrap();
    assert!(b.node("", None, -1, s).is_err(), "root twice");
    assert!(b.node("/a/b", None, -1, s).is_err(), "missing parent");
    assert!(b.node("noslash", None, -1, s).is_err());
    assert!(b.node("/a/", None, -1, s).is_err());
    b.node("/a", None, -1, s).unwrap();
    // A node that appears twice is refused: when read if the index is
    // built (it is, after the missing parent above), else at the end.
    let e = b.node("/a", None, -1, s).unwrap_err();
    assert_eq!(e.0, "node \"/a\" appears twice");
    let mut b = fresh();
    b.node("", None, -1, s).unwrap();
    b.node("/x", None, -1, s).unwrap();
    b.node("/x/y", None, -1, s).unwrap();
    b.node("/x/y", None, -1, s).unwrap();
    b.node("/z", None, -1, s).unwrap();
    let e = b.finish(0, 0).unwrap_err();
    assert_eq!(e.0, "node \"/x/y\" appears twice");
    assert!(fresh().finish(0, 0).is_err(), "no root");
}

/// Every child set, by path.
fn children_of(t: &DataTree) -> std::collections::BTreeMap<String, Vec<String>> {
    t.nodes()
        .map(|(p, _)| {
            let mut c: Vec<String> = t.child_names(&p).map(str::to_owned).collect();
            c.sort();
            (p, c)
        })
        .collect()
}

/// Apache writes depth first with children in hash order; any writer may
/// put parents before children in another order. Each gives the same tree.
#[test]
fn any_parent_first_order_rebuilds_the_same_tree() {
    let mut t = DataTree::new(false);
    let mut paths = vec![];
    for a in ["q", "b", "m"] {
        paths.push(format!("/{a}"));
        for b in ["z", "c", "k", "a"] {
            paths.push(format!("/{a}/{b}"));
            for c in ["2", "1"] {
                paths.push(format!("/{a}/{b}/{c}"));
            }
        }
    }
    for (i, p) in paths.iter().enumerate() {
        assert_eq!(
            t.apply(&hdr(i as i64 + 1), &create(p, open_acl_unsafe()))
                .err,
            0
        );
    }
    let records: Vec<(String, tree::Node)> = t.snapshot_nodes().collect();
    let build = |order: Vec<&(String, tree::Node)>| {
        let acls = t
            .acl_cache()
            .entries()
            .map(|(i, l)| (i, l.to_vec()))
            .collect();
        let mut b = DataTree::from_snapshot(false, acls);
        for (p, n) in order {
            b.node(p, n.data, n.acl, n.stat).unwrap();
        }
        b.finish(t.last_zxid(), 0).unwrap()
    };
    // Depth first, children in reverse name order (as a hash order may be).
    fn dfs<'a>(
        t: &DataTree,
        recs: &'a [(String, tree::Node<'a>)],
        at: &str,
        out: &mut Vec<&'a (String, tree::Node<'a>)>,
    ) {
        let r = recs.iter().find(|(p, _)| p == at).unwrap();
        out.push(r);
        let prefix = if at.is_empty() { "" } else { at };
        let mut kids: Vec<_> = t
            .child_names(if at.is_empty() { "/" } else { at })
            .collect();
        kids.sort();
        kids.reverse();
        for k in kids {
            dfs(t, recs, &format!("{prefix}/{k}"), out);
        }
    }
    let mut reversed = vec![];
    dfs(&t, &records, "", &mut reversed);
    // Breadth first: parents long left behind when their children come.
    let mut bfs: Vec<_> = records.iter().collect();
    bfs.sort_by_key(|(p, _)| p.matches('/').count());
    for order in [records.iter().collect(), reversed, bfs] {
        let r = build(order);
        assert_eq!(r.node_count(), t.node_count());
        assert_eq!(children_of(&r), children_of(&t));
        assert_eq!(r.digest(), t.digest());
    }
}

/// A snapshot's copy shares nodes with the live tree; writes after the
/// copy (to a node, to a parent's children, deletes) never show in it.
#[test]
fn snapshot_copy_is_unchanged_by_later_writes() {
    let mut t = DataTree::new(false);
    for (i, p) in ["/a", "/a/b", "/c"].iter().enumerate() {
        assert_eq!(
            t.apply(&hdr(i as i64 + 1), &create(p, open_acl_unsafe()))
                .err,
            0
        );
    }
    let copy = t.snapshot_copy();
    let before = (children_of(&copy), copy.digest(), copy.node_count());
    let set = TxnBody::SetData(jute::txn::SetDataTxn {
        path: "/a/b".into(),
        data: Some(Bytes::from_static(b"new")),
        version: 1,
    });
    assert_eq!(t.apply(&hdr(4), &set).err, 0);
    assert_eq!(
        t.apply(&hdr(5), &create("/a/new", open_acl_unsafe())).err,
        0
    );
    let del = TxnBody::Delete(DeleteTxn { path: "/c".into() });
    assert_eq!(t.apply(&hdr(6), &del).err, 0);
    assert_eq!(
        (children_of(&copy), copy.digest(), copy.node_count()),
        before
    );
    assert_eq!(copy.node("/a/b").unwrap().data, Some(&b"d"[..]));
    assert_eq!(t.node("/a/b").unwrap().data, Some(&b"new"[..]));
    assert_eq!(copy.digest(), copy.compute_digest());
    assert_eq!(t.digest(), t.compute_digest());
}

/// Nodes are shared by count between the copy and the live tree: a copy
/// read and dropped on another thread (as the snapshot thread does) while
/// the live tree rewrites and deletes the same nodes keeps its contents,
/// and the live tree keeps its own after the copy is gone.
#[test]
fn snapshot_copy_dropped_on_another_thread_during_writes() {
    let mut t = DataTree::new(false);
    let n = 500;
    for i in 0..n {
        let p = format!("/n{i}");
        assert_eq!(t.apply(&hdr(i + 1), &create(&p, open_acl_unsafe())).err, 0);
    }
    let copy = t.snapshot_copy();
    let want = copy.compute_digest();
    let reader = std::thread::spawn(move || {
        for _ in 0..20 {
            for i in 0..n {
                let node = copy.node(&format!("/n{i}")).expect("in the copy");
                assert_eq!(node.data, Some(&b"d"[..]));
            }
        }
        assert_eq!(copy.compute_digest(), want);
    });
    for i in 0..n {
        let path = format!("/n{i}");
        let body = if i % 2 == 0 {
            TxnBody::SetData(jute::txn::SetDataTxn {
                path,
                data: Some(Bytes::from(vec![b'x'; 1024])),
                version: 1,
            })
        } else {
            TxnBody::Delete(DeleteTxn { path })
        };
        assert_eq!(t.apply(&hdr(n + 1 + i), &body).err, 0);
    }
    reader.join().expect("the reader saw the copy unchanged");
    for i in (0..n).step_by(2) {
        assert_eq!(
            t.node(&format!("/n{i}")).unwrap().data,
            Some(&[b'x'; 1024][..])
        );
    }
    assert_eq!(t.digest(), t.compute_digest());
}

/// Only replaying an inconsistent history deletes a node that has
/// children (prep refuses): the subtree goes with it, and the digest, the
/// size count and the ACL counts follow.
#[test]
fn deleting_a_parent_in_replay_takes_its_subtree() {
    let mut t = DataTree::new(false);
    let empty = DataTree::new(false);
    let ip = vec![Acl::new(perms::READ, "ip", "10.0.0.9")];
    for (i, p) in ["/a", "/a/b", "/a/b/c", "/a/d"].iter().enumerate() {
        assert_eq!(t.apply(&hdr(i as i64 + 1), &create(p, ip.clone())).err, 0);
    }
    let rc = t.apply(&hdr(9), &TxnBody::Delete(DeleteTxn { path: "/a".into() }));
    assert_eq!(rc.err, 0);
    assert_eq!(t.node_count(), empty.node_count());
    assert!(t.node("/a/b/c").is_none() && t.node("/a").is_none());
    assert_eq!(t.digest(), t.compute_digest());
    assert_eq!(t.approximate_data_size(), empty.approximate_data_size());
    assert!(t.acl_cache().entries().all(|(_, l)| l != ip.as_slice()));
    // The names are free again.
    assert_eq!(t.apply(&hdr(10), &create("/a", ip.clone())).err, 0);
    assert_eq!(t.apply(&hdr(11), &create("/a/b", ip)).err, 0);
    assert_eq!(t.child_names("/a").collect::<Vec<_>>(), ["b"]);
}
