//! decode(encode(x)) == x, with every byte consumed, for every record of the
//! crate, every TxnBody / Request variant and multi-op lists.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use jute::data::*;
use jute::frame;
use jute::proto::*;
use jute::quorum::*;
use jute::request::{read_multi, write_multi, MultiOp, Request};
use jute::txn::*;
use jute::{Reader, Record};
use proptest::collection::vec;
use proptest::prelude::*;
use std::fmt::Debug;

/// The round-trip property for one record value, alone and inside a vector
/// (the vector case checks that `MIN_SIZE` never refuses a valid encoding).
fn check_rt<T: Record + Clone + PartialEq + Debug>(x: &T) -> Result<(), TestCaseError> {
    let b = x.to_bytes();
    prop_assert!(
        b.len() >= T::MIN_SIZE,
        "{} < MIN_SIZE {}",
        b.len(),
        T::MIN_SIZE
    );
    let mut r = Reader::new(b.clone());
    let y = T::read(&mut r);
    prop_assert_eq!(y.as_ref(), Ok(x));
    prop_assert_eq!(r.remaining(), 0);

    let v = vec![x.clone(), x.clone(), x.clone()];
    let mut r = Reader::new(v.to_bytes());
    prop_assert_eq!(Vec::<T>::read(&mut r), Ok(v));
    prop_assert_eq!(r.remaining(), 0);
    Ok(())
}

fn encode_with<F: FnOnce(&mut BytesMut)>(f: F) -> Bytes {
    let mut b = BytesMut::new();
    f(&mut b);
    b.freeze()
}

macro_rules! roundtrip_tests {
    ($($name:ident: $strat:expr;)*) => {
        proptest! {
            $(
                #[test]
                fn $name(x in $strat) {
                    check_rt(&x)?;
                }
            )*
        }
    };
}

roundtrip_tests! {
    // data.rs
    rt_id: s_id();
    rt_acl: s_acl();
    rt_stat: s_stat();
    rt_stat_persisted: s_stat_persisted();
    rt_client_info: s_client_info();
    // proto.rs
    rt_connect_request: s_connect_request();
    rt_connect_response: s_connect_response();
    rt_set_watches: s_set_watches();
    rt_set_watches2: s_set_watches2();
    rt_request_header: s_request_header();
    rt_multi_header: s_multi_header();
    rt_auth_packet: s_auth_packet();
    rt_reply_header: s_reply_header();
    rt_get_data_request: s_get_data_request();
    rt_set_data_request: s_set_data_request();
    rt_reconfig_request: s_reconfig_request();
    rt_set_data_response: s_set_data_response();
    rt_sasl_token: s_sasl_token();
    rt_create_request: s_create_request();
    rt_create_ttl_request: s_create_ttl_request();
    rt_delete_request: s_delete_request();
    rt_path_watch_request: s_path_watch_request();
    rt_path_request: s_path_request();
    rt_check_version_request: s_check_version_request();
    rt_set_acl_request: s_set_acl_request();
    rt_stat_response: s_stat_response();
    rt_add_watch_request: s_add_watch_request();
    rt_watcher_event: s_watcher_event();
    rt_error_response: s_error_response();
    rt_create_response: s_create_response();
    rt_create2_response: s_create2_response();
    rt_get_data_response: s_get_data_response();
    rt_get_children_response: s_get_children_response();
    rt_get_all_children_number_response: s_get_all_children_number_response();
    rt_get_children2_response: s_get_children2_response();
    rt_get_acl_response: s_get_acl_response();
    rt_watch_type_request: s_watch_type_request();
    rt_get_ephemerals_response: s_get_ephemerals_response();
    rt_who_am_i_response: s_who_am_i_response();
    // quorum.rs
    rt_learner_info: s_learner_info();
    rt_quorum_packet: s_quorum_packet();
    rt_quorum_auth_packet: s_quorum_auth_packet();
    rt_file_header: s_file_header();
    // txn.rs
    rt_txn_digest: s_txn_digest();
    rt_txn_header: s_txn_header();
    rt_create_txn: s_create_txn();
    rt_create_ttl_txn: s_create_ttl_txn();
    rt_create_container_txn: s_create_container_txn();
    rt_delete_txn: s_delete_txn();
    rt_set_data_txn: s_set_data_txn();
    rt_check_version_txn: s_check_version_txn();
    rt_set_acl_txn: s_set_acl_txn();
    rt_create_session_txn: s_create_session_txn();
    rt_close_session_txn: s_close_session_txn();
    rt_error_txn: s_error_txn();
    rt_sub_txn: s_sub_txn();
    // primitives and vectors
    rt_i32: any::<i32>();
    rt_i64: any::<i64>();
    rt_bool: any::<bool>();
    rt_string: s_str();
    rt_bytes: s_bytes();
    rt_vec_acl: s_acls();
    rt_vec_vec_string: vec(s_strings(), 0..3);
}

proptest! {
    #[test]
    fn rt_txn_body(body in s_txn_body()) {
        let b = encode_with(|w| body.write(w));
        let mut r = Reader::new(b);
        prop_assert_eq!(TxnBody::read(body.op(), &mut r), Ok(body.clone()));
        prop_assert_eq!(r.remaining(), 0);
    }

    /// Each sub-txn of a multi travels as SubTxn { op, data: its own encoding }.
    #[test]
    fn rt_txn_body_multi_layout(subs in vec(s_txn_body_leaf(), 0..5)) {
        let body = TxnBody::Multi(subs.clone());
        let got = Vec::<SubTxn>::from_bytes(encode_with(|w| body.write(w))).unwrap();
        let want: Vec<SubTxn> = subs
            .iter()
            .map(|s| SubTxn { op: s.op(), data: encode_with(|w| s.write(w)) })
            .collect();
        prop_assert_eq!(got, want);
    }

    #[test]
    fn rt_txn(txn in s_txn()) {
        let b = encode_with(|w| txn.write(w));
        let mut r = Reader::new(b.clone());
        prop_assert_eq!(Txn::read(&mut r), Ok(txn.clone()));
        prop_assert_eq!(r.remaining(), 0);

        // The digest is exactly a 12-byte TxnDigest tail.
        let without = Txn { digest: None, ..txn.clone() };
        let b0 = encode_with(|w| without.write(w));
        let extra = if txn.digest.is_some() { 12 } else { 0 };
        prop_assert_eq!(b.len(), b0.len() + extra);
        prop_assert_eq!(Txn::read(&mut Reader::new(b0)), Ok(without));
    }

    #[test]
    fn rt_txn_with_and_without_digest(
        header in s_txn_header(),
        body in s_txn_body(),
        digest in s_txn_digest(),
    ) {
        let header = TxnHeader { op: body.op(), ..header };
        for digest in [None, Some(digest)] {
            let txn = Txn { header, body: body.clone(), digest };
            let mut r = Reader::new(encode_with(|w| txn.write(w)));
            prop_assert_eq!(Txn::read(&mut r), Ok(txn));
            prop_assert_eq!(r.remaining(), 0);
        }
    }

    #[test]
    fn rt_request(req in s_request()) {
        let b = encode_with(|w| req.write(w));
        let mut r = Reader::new(b.clone());
        prop_assert_eq!(Request::read(req.op(), &mut r), Ok(req.clone()));
        prop_assert_eq!(r.remaining(), 0);

        // No strict prefix of a request body decodes (every field is mandatory).
        for cut in 0..b.len() {
            let res = Request::read(req.op(), &mut Reader::new(b.slice(..cut)));
            prop_assert!(res.is_err(), "prefix {} of {} decoded: {:?}", cut, b.len(), res);
        }
    }

    /// A whole client packet: length prefix, RequestHeader, body.
    #[test]
    fn rt_request_packet(xid in any::<i32>(), req in s_request()) {
        let body = encode_with(|w| {
            RequestHeader { xid, op: req.op() }.write(w);
            req.write(w);
        });
        let mut packet = BytesMut::new();
        packet.extend_from_slice(&(body.len() as i32).to_be_bytes());
        packet.extend_from_slice(&body);
        let packet = packet.freeze();

        prop_assert_eq!(frame::check(&packet, 1 << 20), Ok(Some(body.len())));
        prop_assert_eq!(frame::check(&packet[..packet.len() - 1], 1 << 20), Ok(None));
        let mut r = Reader::new(packet.slice(4..));
        let h = RequestHeader::read(&mut r).unwrap();
        prop_assert_eq!(h, RequestHeader { xid, op: req.op() });
        prop_assert_eq!(Request::read(h.op, &mut r), Ok(req));
        prop_assert_eq!(r.remaining(), 0);
    }

    /// Multi-op lists with reads and writes mixed (the framing itself allows it).
    #[test]
    fn rt_multi_ops(ops in vec(s_multi_op(), 0..6)) {
        let b = encode_with(|w| write_multi(&ops, w));
        let mut r = Reader::new(b);
        prop_assert_eq!(read_multi(&mut r), Ok(ops));
        prop_assert_eq!(r.remaining(), 0);
    }

    /// Multi ops are each MultiHeader{op, false, -1} + the op's request
    /// record; the list ends with MultiHeader{-1, true, -1}.
    #[test]
    fn multi_ops_framing(ops in vec(s_multi_op(), 0..6)) {
        let mut want = BytesMut::new();
        for o in &ops {
            MultiHeader { op: o.op(), done: false, err: -1 }.write(&mut want);
            match o {
                MultiOp::Create(_, r) => r.write(&mut want),
                MultiOp::CreateTtl(r) => r.write(&mut want),
                MultiOp::Delete(r) => r.write(&mut want),
                MultiOp::SetData(r) => r.write(&mut want),
                MultiOp::Check(r) => r.write(&mut want),
                MultiOp::GetChildren(r) | MultiOp::GetData(r) => r.write(&mut want),
            }
        }
        MultiHeader { op: -1, done: true, err: -1 }.write(&mut want);
        prop_assert_eq!(encode_with(|w| write_multi(&ops, w)), want.freeze());
    }

    /// Clients older than 3.4 send ConnectRequest without readOnly.
    #[test]
    fn connect_request_legacy(mut req in s_connect_request()) {
        let b = req.to_bytes();
        let mut r = Reader::new(b.slice(..b.len() - 1));
        req.read_only = false;
        prop_assert_eq!(ConnectRequest::read(&mut r), Ok(req));
        prop_assert_eq!(r.remaining(), 0);
    }

    /// ...and are answered with a ConnectResponse without it.
    #[test]
    fn connect_response_legacy(resp in s_connect_response()) {
        let full = resp.to_bytes();
        let legacy = encode_with(|w| resp.write_legacy(w));
        prop_assert_eq!(&full[..full.len() - 1], &legacy[..]);
        prop_assert_eq!(full[full.len() - 1], resp.read_only as u8);
        let mut r = Reader::new(legacy);
        prop_assert_eq!(
            ConnectResponse::read(&mut r),
            Ok(ConnectResponse { read_only: false, ..resp })
        );
        prop_assert_eq!(r.remaining(), 0);
    }
}

/// `MIN_SIZE` is exactly the encoding of the all-default value (empty
/// strings, buffers, vectors), except the handshake records whose trailing
/// readOnly byte is optional.
#[test]
fn min_size_is_exact() {
    macro_rules! check {
        ($($t:ident),* $(,)?) => {
            $(
                let len = <$t>::default().to_bytes().len();
                let min = <$t as Record>::MIN_SIZE;
                let optional_tail = matches!(stringify!($t), "ConnectRequest" | "ConnectResponse");
                assert_eq!(len, min + optional_tail as usize, "{}", stringify!($t));
            )*
        };
    }
    for_each_record!(check);
}
