//! Decoding arbitrary bytes never panics, and whatever decodes re-encodes to
//! something that decodes to the same value, consuming all of it.

mod common;

use bytes::{Bytes, BytesMut};
use common::*;
use jute::data::*;
use jute::proto::*;
use jute::quorum::*;
use jute::request::{read_multi, write_multi, Request};
use jute::txn::*;
use jute::{Reader, Record};
use proptest::collection::vec;
use proptest::prelude::*;
use std::fmt::Debug;

/// Every opcode value that means something, its neighbours, and extremes.
fn opcodes() -> impl Iterator<Item = i32> {
    (-12..=110).chain([i32::MIN, i32::MIN + 1, -100, 200, 1000, i32::MAX])
}

fn encode_with<F: FnOnce(&mut BytesMut)>(f: F) -> Bytes {
    let mut b = BytesMut::new();
    f(&mut b);
    b.freeze()
}

fn decode_any<T: Record + PartialEq + Debug>(input: &[u8]) -> Result<(), TestCaseError> {
    let mut r = Reader::from_slice(input);
    if let Ok(x) = T::read(&mut r) {
        prop_assert!(r.remaining() <= input.len());
        let mut r2 = Reader::new(x.to_bytes());
        prop_assert_eq!(T::read(&mut r2), Ok(x));
        prop_assert_eq!(r2.remaining(), 0);
    }
    Ok(())
}

fn decode_request(opc: i32, input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(req) = Request::read(opc, &mut Reader::from_slice(input)) {
        prop_assert_eq!(req.op(), opc);
        let mut r2 = Reader::new(encode_with(|w| req.write(w)));
        prop_assert_eq!(Request::read(opc, &mut r2), Ok(req));
        prop_assert_eq!(r2.remaining(), 0);
    }
    Ok(())
}

fn decode_txn_body(opc: i32, input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(body) = TxnBody::read(opc, &mut Reader::from_slice(input)) {
        prop_assert_eq!(body.op(), opc);
        let mut r2 = Reader::new(encode_with(|w| body.write(w)));
        prop_assert_eq!(TxnBody::read(opc, &mut r2), Ok(body));
        prop_assert_eq!(r2.remaining(), 0);
    }
    Ok(())
}

fn decode_txn(input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(txn) = Txn::read(&mut Reader::from_slice(input)) {
        prop_assert_eq!(txn.body.op(), txn.header.op);
        let mut r2 = Reader::new(encode_with(|w| txn.write(w)));
        prop_assert_eq!(Txn::read(&mut r2), Ok(txn));
        prop_assert_eq!(r2.remaining(), 0);
    }
    Ok(())
}

fn decode_multi(input: &[u8]) -> Result<(), TestCaseError> {
    if let Ok(ops) = read_multi(&mut Reader::from_slice(input)) {
        let mut r2 = Reader::new(encode_with(|w| write_multi(&ops, w)));
        prop_assert_eq!(read_multi(&mut r2), Ok(ops));
        prop_assert_eq!(r2.remaining(), 0);
    }
    Ok(())
}

/// Runs every decoder of the crate over `input`.
fn decode_everything(input: &[u8], extra_op: i32) -> Result<(), TestCaseError> {
    for opc in opcodes().chain([extra_op]) {
        decode_request(opc, input)?;
        decode_txn_body(opc, input)?;
    }
    decode_txn(input)?;
    decode_multi(input)?;
    macro_rules! each {
        ($($t:ident),* $(,)?) => { $( decode_any::<$t>(input)?; )* };
    }
    for_each_record!(each);
    decode_any::<Vec<String>>(input)?;
    decode_any::<Vec<Acl>>(input)?;
    decode_any::<Vec<SubTxn>>(input)?;
    decode_any::<Vec<Vec<Id>>>(input)?;
    decode_any::<String>(input)?;
    decode_any::<Bytes>(input)?;
    Ok(())
}

/// Overwrites a few bytes of a valid encoding and maybe truncates it, so the
/// decoders get past their first field far more often than on pure noise.
fn mutate(mut b: Vec<u8>, edits: &[(usize, u8)], cut: Option<usize>) -> Vec<u8> {
    if !b.is_empty() {
        let n = b.len();
        for &(i, v) in edits {
            b[i % n] = v;
        }
    }
    if let Some(c) = cut {
        b.truncate(c % (b.len() + 1));
    }
    b
}

fn s_edits() -> impl Strategy<Value = (Vec<(usize, u8)>, Option<usize>)> {
    (
        vec(
            (
                any::<usize>(),
                prop_oneof![Just(0u8), Just(0xff), Just(0x80), any::<u8>()],
            ),
            0..4,
        ),
        proptest::option::of(any::<usize>()),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_bytes_never_panic(input in vec(any::<u8>(), 0..300), extra_op in any::<i32>()) {
        decode_everything(&input, extra_op)?;
    }

    /// Small counts and lengths, so vectors and strings actually decode.
    #[test]
    fn small_valued_bytes_never_panic(
        input in vec(prop_oneof![Just(0u8), Just(1), Just(2), Just(0xff), any::<u8>()], 0..300),
        extra_op in any::<i32>(),
    ) {
        decode_everything(&input, extra_op)?;
    }

    #[test]
    fn mutated_requests(req in s_request(), (edits, cut) in s_edits()) {
        let b = mutate(encode_with(|w| req.write(w)).to_vec(), &edits, cut);
        for opc in opcodes() {
            decode_request(opc, &b)?;
        }
        decode_multi(&b)?;
    }

    #[test]
    fn mutated_txns(txn in s_txn(), (edits, cut) in s_edits()) {
        let b = mutate(encode_with(|w| txn.write(w)).to_vec(), &edits, cut);
        decode_txn(&b)?;
        for opc in opcodes() {
            decode_txn_body(opc, &b)?;
        }
    }

    #[test]
    fn mutated_connects(
        req in s_connect_request(),
        resp in s_connect_response(),
        (edits, cut) in s_edits(),
    ) {
        let b = mutate(req.to_bytes().to_vec(), &edits, cut);
        decode_any::<ConnectRequest>(&b)?;
        let b = mutate(resp.to_bytes().to_vec(), &edits, cut);
        decode_any::<ConnectResponse>(&b)?;
    }

    #[test]
    fn mutated_records(
        a in s_get_acl_response(),
        q in s_quorum_packet(),
        w in s_set_watches2(),
        who in s_who_am_i_response(),
        (edits, cut) in s_edits(),
    ) {
        decode_any::<GetAclResponse>(&mutate(a.to_bytes().to_vec(), &edits, cut))?;
        decode_any::<QuorumPacket>(&mutate(q.to_bytes().to_vec(), &edits, cut))?;
        decode_any::<SetWatches2>(&mutate(w.to_bytes().to_vec(), &edits, cut))?;
        decode_any::<WhoAmIResponse>(&mutate(who.to_bytes().to_vec(), &edits, cut))?;
    }

    /// Any byte string read as a jute string re-encodes to valid UTF-8 that
    /// reads back unchanged (malformed input is replaced, never an error).
    #[test]
    fn strings_are_lossy_but_stable(raw in vec(any::<u8>(), 0..40)) {
        let mut b = (raw.len() as i32).to_be_bytes().to_vec();
        b.extend_from_slice(&raw);
        let s = Reader::from_slice(&b).string().unwrap();
        if let Ok(valid) = std::str::from_utf8(&raw) {
            prop_assert_eq!(&s, valid);
        }
        prop_assert_eq!(String::from_bytes(s.to_bytes()), Ok(s));
    }
}
