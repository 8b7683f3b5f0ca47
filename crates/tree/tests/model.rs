//! The tree against a simple model: random sequences of creates, deletes,
//! setData and multis, prepared and applied as the server does, must give
//! the same error codes and the same nodes, versions and child counts.

use std::collections::BTreeMap;

use bytes::Bytes;
use jute::consts::{op, ErrorCode};
use jute::proto::{CreateRequest, DeleteRequest, SetDataRequest};
use jute::request::{MultiOp, Request};
use jute::txn::TxnHeader;
use proptest::prelude::*;
use tree::acl::open_acl_unsafe;
use tree::ops::{write_reply, OpResult, Response};
use tree::prep::{prepare, Ctx, Options, Pending};
use tree::DataTree;

const SESSION: i64 = 0x1234;

#[derive(Debug, Clone)]
enum Op {
    Create {
        path: String,
        data: Vec<u8>,
        ephemeral: bool,
        sequential: bool,
    },
    Delete {
        path: String,
        version: i32,
    },
    SetData {
        path: String,
        data: Vec<u8>,
        version: i32,
    },
}

#[derive(Debug, Clone, PartialEq)]
struct MNode {
    data: Vec<u8>,
    version: i32,
    cversion: i32,
    ephemeral: bool,
}

type Model = BTreeMap<String, MNode>;

fn parent(p: &str) -> String {
    match p.rfind('/') {
        Some(0) => "/".into(),
        Some(i) => p[..i].into(),
        None => "/".into(),
    }
}

fn children(m: &Model, p: &str) -> usize {
    m.keys().filter(|k| *k != "/" && parent(k) == p).count()
}

/// Applies `o` to the model; the error ZooKeeper would return, if any.
fn model_apply(m: &mut Model, o: &Op) -> Result<String, ErrorCode> {
    match o {
        Op::Create {
            path,
            data,
            ephemeral,
            sequential,
        } => {
            let pp = parent(path);
            let par = m.get(&pp).cloned().ok_or(ErrorCode::NoNode)?;
            let mut p = path.clone();
            if *sequential {
                p.push_str(&format!("{:010}", par.cversion));
            }
            if m.contains_key(&p) {
                return Err(ErrorCode::NodeExists);
            }
            if par.ephemeral {
                return Err(ErrorCode::NoChildrenForEphemerals);
            }
            m.get_mut(&pp).unwrap().cversion += 1;
            m.insert(
                p.clone(),
                MNode {
                    data: data.clone(),
                    version: 0,
                    cversion: 0,
                    ephemeral: *ephemeral,
                },
            );
            Ok(p)
        }
        Op::Delete { path, version } => {
            if !m.contains_key(&parent(path)) {
                return Err(ErrorCode::NoNode);
            }
            let n = m.get(path).ok_or(ErrorCode::NoNode)?;
            if *version != -1 && *version != n.version {
                return Err(ErrorCode::BadVersion);
            }
            if children(m, path) > 0 {
                return Err(ErrorCode::NotEmpty);
            }
            m.remove(path);
            Ok(path.clone())
        }
        Op::SetData {
            path,
            data,
            version,
        } => {
            let n = m.get_mut(path).ok_or(ErrorCode::NoNode)?;
            if *version != -1 && *version != n.version {
                return Err(ErrorCode::BadVersion);
            }
            n.version += 1;
            n.data = data.clone();
            Ok(path.clone())
        }
    }
}

fn to_multi(o: &Op) -> MultiOp {
    match o {
        Op::Create {
            path,
            data,
            ephemeral,
            sequential,
        } => MultiOp::Create(
            op::CREATE,
            CreateRequest {
                path: path.clone(),
                data: Some(Bytes::from(data.clone())),
                acl: open_acl_unsafe(),
                flags: (*ephemeral as i32) | ((*sequential as i32) << 1),
            },
        ),
        Op::Delete { path, version } => MultiOp::Delete(DeleteRequest {
            path: path.clone(),
            version: *version,
        }),
        Op::SetData {
            path,
            data,
            version,
        } => MultiOp::SetData(SetDataRequest {
            path: path.clone(),
            data: Some(Bytes::from(data.clone())),
            version: *version,
        }),
    }
}

fn to_request(o: &Op) -> Request {
    match to_multi(o) {
        MultiOp::Create(c, r) => Request::Create(c, r),
        MultiOp::Delete(r) => Request::Delete(r),
        MultiOp::SetData(r) => Request::SetData(r),
        _ => unreachable!(),
    }
}

struct Server {
    tree: DataTree,
    pending: Pending,
    zxid: i64,
}

impl Server {
    fn write(&mut self, req: &Request) -> (i32, Response) {
        self.zxid += 1;
        let opts = Options::default();
        let ctx = Ctx {
            session_id: SESSION,
            auth: &[],
            zxid: self.zxid,
            time: 1000 + self.zxid,
            opts: &opts,
        };
        let body = prepare(&self.tree, &mut self.pending, ctx, req);
        let hdr = TxnHeader {
            client_id: SESSION,
            cxid: 0,
            zxid: self.zxid,
            time: ctx.time,
            op: body.op(),
        };
        let rc = self.tree.apply(&hdr, &body);
        self.pending.applied(self.zxid);
        write_reply(&rc)
    }
}

fn arb_path() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["/a", "/b", "/a/b", "/a/c", "/b/a", "/a/b/c", "/a/"])
        .prop_map(str::to_owned)
}

fn arb_op() -> impl Strategy<Value = Op> {
    let data = prop::collection::vec(any::<u8>(), 0..4);
    prop_oneof![
        (arb_path(), data.clone(), any::<bool>(), any::<bool>()).prop_map(
            |(path, data, ephemeral, sequential)| Op::Create {
                // "/a/" is only a valid create with a sequential suffix.
                sequential: sequential || path.ends_with('/'),
                path,
                data,
                ephemeral,
            }
        ),
        (arb_path(), -1..3i32).prop_map(|(path, version)| Op::Delete {
            path: path.trim_end_matches('/').to_owned(),
            version
        }),
        (arb_path(), data, -1..3i32).prop_map(|(path, data, version)| Op::SetData {
            path: path.trim_end_matches('/').to_owned(),
            data,
            version
        }),
    ]
}

#[derive(Debug, Clone)]
enum Step {
    One(Op),
    Multi(Vec<Op>),
}

fn arb_step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => arb_op().prop_map(Step::One),
        1 => prop::collection::vec(arb_op(), 0..4).prop_map(Step::Multi),
    ]
}

fn check_same(tree: &DataTree, m: &Model) {
    for (p, n) in m {
        let node = tree
            .node(p)
            .unwrap_or_else(|| panic!("{p} missing from tree"));
        let st = node.stat(false);
        assert_eq!(node.data, Some(n.data.as_slice()), "{p} data");
        assert_eq!(st.version, n.version, "{p} version");
        // The stored cversion counts creates; clients see creates + deletes.
        assert_eq!(node.stat.cversion, n.cversion, "{p} cversion");
        assert_eq!(
            st.cversion,
            2 * n.cversion - st.num_children,
            "{p} client cversion"
        );
        assert_eq!(
            st.num_children as usize,
            children(m, p) + usize::from(p == "/"),
            "{p} numChildren"
        );
        assert_eq!(st.data_length as usize, n.data.len());
        assert_eq!(st.ephemeral_owner != 0, n.ephemeral, "{p} owner");
        assert_eq!(
            node.stat.ephemeral_owner != 0,
            n.ephemeral,
            "{p} stored owner"
        );
        assert!(st.czxid <= st.mzxid && st.czxid <= st.pzxid, "{p} zxids");
    }
    let user_nodes = tree
        .nodes()
        .filter(|(p, _)| !p.starts_with("/zookeeper"))
        .count();
    assert_eq!(user_nodes, m.len(), "node count");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn tree_matches_model(steps in prop::collection::vec(arb_step(), 1..40)) {
        let mut s = Server { tree: DataTree::new(false), pending: Pending::default(), zxid: 0 };
        let mut m = Model::new();
        m.insert("/".into(), MNode { data: vec![], version: 0, cversion: 0, ephemeral: false });
        for step in &steps {
            match step {
                Step::One(o) => {
                    let want = model_apply(&mut m, o);
                    let (err, resp) = s.write(&to_request(o));
                    match want {
                        Ok(p) => {
                            prop_assert_eq!(err, 0, "{:?}", o);
                            if let Response::Create(got) = resp {
                                prop_assert_eq!(got, p);
                            }
                        }
                        Err(e) => prop_assert_eq!(err, e.code(), "{:?}", o),
                    }
                }
                Step::Multi(ops) => {
                    let mut trial = m.clone();
                    let mut want = Vec::new();
                    let mut failed = None;
                    for (i, o) in ops.iter().enumerate() {
                        match model_apply(&mut trial, o) {
                            Ok(p) => want.push(Ok(p)),
                            Err(e) => { failed = Some(i); want.push(Err(e)); break; }
                        }
                    }
                    let (err, resp) = s.write(&Request::Multi(ops.iter().map(to_multi).collect()));
                    prop_assert_eq!(err, 0);
                    let Response::Multi(results) = resp else { panic!("multi reply") };
                    prop_assert_eq!(results.len(), ops.len());
                    match failed {
                        None => {
                            m = trial;
                            for r in &results {
                                prop_assert!(!matches!(r, OpResult::Error(_)), "{:?}", r);
                            }
                        }
                        Some(i) => {
                            // Nothing applied; results say which op failed.
                            for (j, r) in results.iter().enumerate() {
                                let code = match r { OpResult::Error(c) => *c, other => panic!("{other:?}") };
                                let expect = if j < i { 0 } else if j == i {
                                    want[i].clone().unwrap_err().code()
                                } else { ErrorCode::RuntimeInconsistency.code() };
                                prop_assert_eq!(code, expect);
                            }
                        }
                    }
                }
            }
            check_same(&s.tree, &m);
            prop_assert!(s.pending.is_empty());
        }
    }
}

/// Prepares a write like `Server::write` but leaves it unapplied: returns
/// the header and body, as a leader proposes before it commits.
fn prepare_only(
    tree: &DataTree,
    pending: &mut Pending,
    zxid: i64,
    req: &Request,
) -> (TxnHeader, jute::txn::TxnBody) {
    let opts = Options::default();
    let ctx = Ctx {
        session_id: SESSION,
        auth: &[],
        zxid,
        time: 1000 + zxid,
        opts: &opts,
    };
    let body = prepare(tree, pending, ctx, req);
    let hdr = TxnHeader {
        client_id: SESSION,
        cxid: 0,
        zxid,
        time: ctx.time,
        op: body.op(),
    };
    (hdr, body)
}

fn step_request(step: &Step) -> Request {
    match step {
        Step::One(o) => to_request(o),
        Step::Multi(ops) => Request::Multi(ops.iter().map(to_multi).collect()),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// A leader prepares many writes before the first commits: prepared
    /// against the tree plus what is in flight, applied `lag` txns later
    /// (in bursts, as commits arrive), every txn and the final tree are the
    /// same as when each write is applied at once.
    #[test]
    fn pipelined_prep_matches_one_at_a_time(
        steps in prop::collection::vec(arb_step(), 1..60),
        lag in 0usize..12,
    ) {
        let mut serial = (DataTree::new(false), Pending::default());
        let mut piped = (DataTree::new(false), Pending::default());
        let mut in_flight = std::collections::VecDeque::new();
        for (i, step) in steps.iter().enumerate() {
            let zxid = i as i64 + 1;
            let req = step_request(step);
            let (h1, b1) = prepare_only(&serial.0, &mut serial.1, zxid, &req);
            serial.0.apply(&h1, &b1);
            serial.1.applied(zxid);
            let (h2, b2) = prepare_only(&piped.0, &mut piped.1, zxid, &req);
            prop_assert_eq!(&b1, &b2, "txn {} of {:?}", zxid, step);
            in_flight.push_back((h2, b2));
            if in_flight.len() > lag {
                // A COMMIT covers everything up to its zxid.
                let upto = in_flight.len() - lag.min(in_flight.len() / 2);
                let mut last = 0;
                for (h, b) in in_flight.drain(..upto) {
                    piped.0.apply(&h, &b);
                    last = h.zxid;
                }
                piped.1.applied(last);
            }
        }
        let mut last = 0;
        for (h, b) in in_flight.drain(..) {
            piped.0.apply(&h, &b);
            last = h.zxid;
        }
        piped.1.applied(last);
        prop_assert!(piped.1.is_empty());
        prop_assert_eq!(serial.0.digest(), piped.0.digest());
        prop_assert_eq!(serial.0.node_count(), piped.0.node_count());
    }
}
