//! Quota bookkeeping as ZooKeeper 3.8 keeps it: the StatsTrack format,
//! stats kept current through creates, deletes and setData under a quota
//! root, recounted after a snapshot restore, and prep refusing writes past
//! a hard limit only when quotas are enforced.

use bytes::Bytes;
use jute::consts::{op, ErrorCode};
use jute::proto::{CreateRequest, SetDataRequest};
use jute::request::Request;
use jute::txn::{CreateTxn, DeleteTxn, SetDataTxn, TxnBody, TxnHeader};
use tree::acl::open_acl_unsafe;
use tree::prep::{prepare, Ctx, Options, Pending};
use tree::quota::{limit_path, stat_path, StatsTrack};
use tree::DataTree;

fn hdr(zxid: i64) -> TxnHeader {
    TxnHeader {
        client_id: 1,
        cxid: 0,
        zxid,
        time: 1000,
        op: 0,
    }
}

fn create(path: &str, data: &[u8]) -> TxnBody {
    TxnBody::Create(CreateTxn {
        path: path.into(),
        data: Some(Bytes::copy_from_slice(data)),
        acl: open_acl_unsafe(),
        ephemeral: false,
        parent_cversion: -1,
    })
}

struct T {
    tree: DataTree,
    zxid: i64,
}

impl T {
    fn apply(&mut self, b: TxnBody) {
        self.zxid += 1;
        let r = self.tree.apply(&hdr(self.zxid), &b);
        assert_eq!(r.err, 0, "{b:?}");
    }

    fn data(&self, p: &str) -> String {
        let n = self.tree.node(p).expect(p);
        String::from_utf8_lossy(n.data.unwrap_or_default()).into_owned()
    }

    /// What setquota does: the quota parents, then limits, then stats.
    fn set_quota(&mut self, p: &str, limits: &str) {
        let mut qp = "/zookeeper/quota".to_owned();
        for part in p.split('/').filter(|s| !s.is_empty()) {
            qp = format!("{qp}/{part}");
            self.apply(create(&qp, b""));
        }
        self.apply(create(&limit_path(p), limits.as_bytes()));
        self.apply(create(&stat_path(p), b"count=0,bytes=0"));
    }

    fn prep(&self, enforce: bool, req: &Request) -> TxnBody {
        let opts = Options {
            enforce_quota: enforce,
            ..Default::default()
        };
        let ctx = Ctx {
            session_id: 1,
            auth: &[],
            zxid: self.zxid + 1,
            time: 2000,
            opts: &opts,
        };
        prepare(&self.tree, &mut Pending::default(), ctx, req)
    }
}

fn new_tree() -> T {
    T {
        tree: DataTree::new(false),
        zxid: 0,
    }
}

#[test]
fn stats_track_format() {
    let mut s = StatsTrack::default();
    s.set(StatsTrack::COUNT, 4);
    s.set(StatsTrack::BYTES, 5);
    assert_eq!(s.to_string(), "count=4,bytes=5");
    s.set(StatsTrack::COUNT_HARD, 10);
    s.set(StatsTrack::BYTES_HARD, -1);
    assert_eq!(
        s.to_string(),
        "count=4,bytes=5=;byteHardLimit=-1;countHardLimit=10"
    );
    let back = StatsTrack::parse(s.to_string().as_bytes());
    assert_eq!(back, s);
    assert_eq!(StatsTrack::parse(b"count=,bytes=7").count(), -1);
    assert_eq!(StatsTrack::parse(b"garbage").count(), -1);
}

#[test]
fn stats_follow_the_subtree() {
    let mut t = new_tree();
    t.apply(create("/a", b"xy"));
    t.apply(create("/a/b", b"123"));
    t.apply(create("/other", b"zzzz"));
    t.set_quota("/a", "count=10,bytes=-1");
    // The new stats node starts from a recount: /a and /a/b.
    assert_eq!(t.data(&stat_path("/a")), "count=2,bytes=5");
    t.apply(create("/a/b/c", b"four"));
    assert_eq!(t.data(&stat_path("/a")), "count=3,bytes=9");
    t.zxid += 1;
    t.tree.apply(
        &hdr(t.zxid),
        &TxnBody::SetData(SetDataTxn {
            path: "/a/b".into(),
            data: Some(Bytes::from_static(b"1")),
            version: 1,
        }),
    );
    assert_eq!(t.data(&stat_path("/a")), "count=3,bytes=7");
    t.apply(TxnBody::Delete(DeleteTxn {
        path: "/a/b/c".into(),
    }));
    assert_eq!(t.data(&stat_path("/a")), "count=2,bytes=3");
    // Outside the quota root nothing changes; the stats node's Stat is
    // not touched by the in-place updates.
    t.apply(create("/other/x", b"1"));
    assert_eq!(t.data(&stat_path("/a")), "count=2,bytes=3");
    assert_eq!(t.tree.node(&stat_path("/a")).unwrap().stat.version, 0);
    // Removing the limits node ends the tracking.
    t.apply(TxnBody::Delete(DeleteTxn {
        path: limit_path("/a"),
    }));
    t.apply(create("/a/late", b"1"));
    assert_eq!(t.data(&stat_path("/a")), "count=2,bytes=3");
}

#[test]
fn restore_recounts() {
    let mut t = new_tree();
    t.apply(create("/q", b"abc"));
    t.set_quota("/q", "count=-1,bytes=100");
    t.apply(create("/q/1", b"de"));
    // Rebuild through the snapshot path with a stale stats node.
    let copy = t.tree.snapshot_copy();
    let acls: Vec<(i64, Vec<jute::data::Acl>)> = copy
        .acl_cache()
        .entries()
        .map(|(id, a)| (id, a.to_vec()))
        .collect();
    let mut b = DataTree::from_snapshot(false, acls);
    for (path, n) in copy.snapshot_nodes() {
        let data = if path == stat_path("/q") {
            Some(&b"count=0,bytes=0"[..])
        } else {
            n.data
        };
        b.node(&path, data, n.acl, n.stat).unwrap();
    }
    let restored = b.finish(t.zxid, 0).unwrap();
    let d = restored.node(&stat_path("/q")).unwrap().data.unwrap();
    assert_eq!(d, b"count=2,bytes=5");
    // The restored tree knows it holds a quota: later writes count.
    let mut r = T {
        tree: restored,
        zxid: t.zxid,
    };
    r.apply(create("/q/2", b"fgh"));
    assert_eq!(r.data(&stat_path("/q")), "count=3,bytes=8");
}

#[test]
fn quotas_tracked_until_their_last_limits_node_goes() {
    let mut t = new_tree();
    t.apply(create("/a", b""));
    t.apply(create("/b", b""));
    t.set_quota("/a", "count=10,bytes=-1");
    t.set_quota("/b", "count=10,bytes=-1");
    t.apply(TxnBody::Delete(DeleteTxn {
        path: limit_path("/a"),
    }));
    // /b's quota still counts.
    t.apply(create("/b/x", b"12"));
    assert_eq!(t.data(&stat_path("/b")), "count=2,bytes=2");
    t.apply(TxnBody::Delete(DeleteTxn {
        path: limit_path("/b"),
    }));
    t.apply(create("/b/y", b"1"));
    assert_eq!(t.data(&stat_path("/b")), "count=2,bytes=2");
    // A node named like a limits node outside /zookeeper/quota is no quota.
    t.apply(create("/zookeeper_limits", b""));
    t.apply(create("/b/zookeeper_limits", b""));
    assert_eq!(t.data(&stat_path("/b")), "count=2,bytes=2");
}

#[test]
fn hard_limits_refuse_only_when_enforced() {
    let mut t = new_tree();
    t.apply(create("/h", b""));
    t.set_quota("/h", "count=-1,bytes=-1=;byteHardLimit=10;countHardLimit=2");
    t.apply(create("/h/1", b"12345"));
    let req = |p: &str, d: &[u8]| {
        Request::Create(
            op::CREATE,
            CreateRequest {
                path: p.into(),
                data: Some(Bytes::copy_from_slice(d)),
                acl: open_acl_unsafe(),
                flags: 0,
            },
        )
    };
    let quota_err =
        |b: &TxnBody| matches!(b, TxnBody::Error(e) if e.err == ErrorCode::QuotaExceeded.code());
    // count: /h and /h/1 are 2 of 2.
    assert!(quota_err(&t.prep(true, &req("/h/2", b""))));
    assert!(!quota_err(&t.prep(false, &req("/h/2", b""))));
    // bytes: 5 + 6 > 10 via setData.
    let set = Request::SetData(SetDataRequest {
        path: "/h/1".into(),
        data: Some(Bytes::from_static(b"12345678901")),
        version: -1,
    });
    assert!(quota_err(&t.prep(true, &set)));
    let small = Request::SetData(SetDataRequest {
        path: "/h/1".into(),
        data: Some(Bytes::from_static(b"1234567890")),
        version: -1,
    });
    assert!(!quota_err(&t.prep(true, &small)));
    // Soft limits are only warned about.
    t.apply(create("/s", b""));
    t.set_quota("/s", "count=1,bytes=-1");
    assert!(!quota_err(&t.prep(true, &req("/s/1", b"x"))));
    // Outside any quota root: nothing to check.
    assert!(!quota_err(&t.prep(true, &req("/free", b"x"))));
}
