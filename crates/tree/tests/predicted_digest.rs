//! A leader's proposals carry the tree digest their txn leaves, predicted
//! from the changes in flight (`Pending::predicted_digest`) before any of
//! them is applied. Random writes are prepared in pipelined batches, then
//! applied one by one: after each, the tree's digest must be the one
//! predicted for that txn.

use bytes::Bytes;
use jute::consts::perms;
use jute::data::{Acl, Id};
use jute::proto::{
    CheckVersionRequest, CreateRequest, DeleteRequest, SetAclRequest, SetDataRequest,
};
use jute::request::{MultiOp, Request};
use jute::txn::TxnHeader;
use proptest::prelude::*;
use tree::acl::open_acl_unsafe;
use tree::prep::{prepare, Ctx, Options, Pending};
use tree::DataTree;

const PATHS: [&str; 6] = ["/a", "/b", "/a/x", "/a/y", "/b/z", "/a/x/q"];
const SESSIONS: [i64; 2] = [0x11, 0x22];

#[derive(Debug, Clone)]
enum W {
    Create(usize, u8, bool, bool),
    Set(usize, u8, i32),
    Delete(usize, i32),
    SetAcl(usize, i32),
    Multi(usize, usize, u8, bool),
    Close(usize),
}

fn w() -> impl Strategy<Value = W> {
    let p = 0..PATHS.len();
    prop_oneof![
        (p.clone(), any::<u8>(), any::<bool>(), any::<bool>())
            .prop_map(|(p, d, e, s)| W::Create(p, d, e, s)),
        (p.clone(), any::<u8>(), -1..3i32).prop_map(|(p, d, v)| W::Set(p, d, v)),
        (p.clone(), -1..2i32).prop_map(|(p, v)| W::Delete(p, v)),
        (p.clone(), -1..2i32).prop_map(|(p, v)| W::SetAcl(p, v)),
        (p.clone(), p, any::<u8>(), any::<bool>()).prop_map(|(a, b, d, ok)| W::Multi(a, b, d, ok)),
        (0..SESSIONS.len()).prop_map(W::Close),
    ]
}

fn data(d: u8) -> Option<Bytes> {
    // Null data now and then: it hashes as empty.
    // Some long enough for the store to keep their CRC (256 bytes on).
    let len = if d.is_multiple_of(3) {
        250 + (d % 11) as usize
    } else {
        (d % 7) as usize
    };
    (!d.is_multiple_of(5)).then(|| Bytes::from(vec![d; len]))
}

/// (session, request) for a generated write.
fn request(w: &W, n: usize) -> (i64, Request) {
    let s = SESSIONS[n % SESSIONS.len()];
    let r = match w {
        W::Create(p, d, eph, seq) => Request::Create(
            jute::consts::op::CREATE,
            CreateRequest {
                path: PATHS[*p].into(),
                data: data(*d),
                acl: open_acl_unsafe(),
                flags: (*eph as i32) | ((*seq as i32) << 1),
            },
        ),
        W::Set(p, d, v) => Request::SetData(SetDataRequest {
            path: PATHS[*p].into(),
            data: data(*d),
            version: *v,
        }),
        W::Delete(p, v) => Request::Delete(DeleteRequest {
            path: PATHS[*p].into(),
            version: *v,
        }),
        W::SetAcl(p, v) => Request::SetAcl(SetAclRequest {
            path: PATHS[*p].into(),
            acl: vec![
                Acl::new(perms::ALL, "world", "anyone"),
                Acl {
                    perms: perms::READ,
                    id: Id::new("ip", "127.0.0.1"),
                },
            ],
            version: *v,
        }),
        W::Multi(a, b, d, ok) => Request::Multi(vec![
            MultiOp::Create(
                jute::consts::op::CREATE,
                CreateRequest {
                    path: PATHS[*a].into(),
                    data: data(*d),
                    acl: open_acl_unsafe(),
                    flags: 0,
                },
            ),
            MultiOp::SetData(SetDataRequest {
                path: PATHS[*b].into(),
                data: data(d.wrapping_add(1)),
                version: -1,
            }),
            // A failing check rolls back the changes the multi recorded.
            MultiOp::Check(CheckVersionRequest {
                path: "/".into(),
                version: if *ok { -1 } else { 12345 },
            }),
        ]),
        W::Close(i) => return (SESSIONS[*i], Request::CloseSession),
    };
    (s, r)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn predicted_digests_are_the_applied_ones(
        writes in prop::collection::vec(w(), 1..60),
        batch in 1usize..12,
    ) {
        let opts = Options::default();
        let mut tree = DataTree::new(false);
        let mut pending = Pending::default();
        pending.track_digests();
        let mut zxid = 0i64;
        for chunk in writes.chunks(batch) {
            // A batch in flight: prepared against the tree plus what is
            // pending, each with the digest it will leave.
            let mut flight = Vec::new();
            for (i, w) in chunk.iter().enumerate() {
                let (session, req) = request(w, i);
                zxid += 1;
                let time = 1_000 + zxid * 7;
                let ctx = Ctx { session_id: session, auth: &[], zxid, time, opts: &opts };
                let body = prepare(&tree, &mut pending, ctx, &req);
                flight.push((TxnHeader { client_id: session, cxid: 0, zxid, time, op: body.op() }, body, pending.predicted_digest(&tree)));
            }
            for (hdr, body, predicted) in flight {
                tree.apply(&hdr, &body);
                pending.applied(hdr.zxid);
                prop_assert_eq!(tree.digest(), predicted, "after {:?}", body);
            }
            prop_assert_eq!(tree.digest(), tree.compute_digest());
        }
    }
}
