//! Exact bytes, worked out by hand from zookeeper.jute and Apache
//! ZooKeeper's BinaryOutputArchive / MultiOperationRecord / MultiResponse
//! layouts, of what the Java client and server put on the wire.

use bytes::{Bytes, BytesMut};
use jute::consts::{op, perms, xid};
use jute::data::*;
use jute::frame;
use jute::proto::*;
use jute::request::{read_multi, write_multi, MultiOp, Request};
use jute::txn::*;
use jute::{Reader, Record};

/// Parses whitespace-separated hex bytes; `|` may separate fields for readability.
fn hex(s: &str) -> Vec<u8> {
    s.split_whitespace()
        .filter(|t| *t != "|")
        .map(|t| u8::from_str_radix(t, 16).unwrap())
        .collect()
}

fn encode_with<F: FnOnce(&mut BytesMut)>(f: F) -> Vec<u8> {
    let mut b = BytesMut::new();
    f(&mut b);
    b.to_vec()
}

fn framed(body: &[u8]) -> Vec<u8> {
    let mut v = (body.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(body);
    v
}

fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

// Field encodings used below:
//   "/a"            00 00 00 02 2f 61
//   "x"             00 00 00 01 78
//   OPEN_ACL_UNSAFE 00 00 00 01 (count) | 00 00 00 1f (perms 31)
//                   | 00 00 00 05 77 6f 72 6c 64 ("world")
//                   | 00 00 00 06 61 6e 79 6f 6e 65 ("anyone")
const CREATE_A_X: &str = "00 00 00 02 2f 61 | 00 00 00 01 78 \
    | 00 00 00 01 | 00 00 00 1f | 00 00 00 05 77 6f 72 6c 64 | 00 00 00 06 61 6e 79 6f 6e 65 \
    | 00 00 00 00";

/// ClientCnxn's first packet from a 3.8 client: no RequestHeader, a
/// ConnectRequest with a fresh session's 16-byte zero password, readOnly
/// false; the whole thing length-prefixed.
#[test]
fn connect_request_from_java_client() {
    let req = ConnectRequest {
        protocol_version: 0,
        last_zxid_seen: 0,
        time_out: 30000,
        session_id: 0,
        passwd: Bytes::from(vec![0u8; 16]),
        read_only: false,
    };
    let want = hex("00 00 00 2d \
        | 00 00 00 00 \
        | 00 00 00 00 00 00 00 00 \
        | 00 00 75 30 \
        | 00 00 00 00 00 00 00 00 \
        | 00 00 00 10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 \
        | 00");
    assert_eq!(want.len(), 4 + 45);
    assert_eq!(framed(&req.to_bytes()), want);
    assert_eq!(frame::check(&want, 1 << 20), Ok(Some(45)));
    let mut r = Reader::from_slice(&want[4..]);
    assert_eq!(ConnectRequest::read(&mut r), Ok(req.clone()));
    assert_eq!(r.remaining(), 0);

    // A reconnect to an existing read-only-capable session.
    let req = ConnectRequest {
        last_zxid_seen: 0x1_0000_0005,
        session_id: 0x0100_0a3b_4c5d_0001,
        passwd: Bytes::from_static(&[0xab; 16]),
        read_only: true,
        ..req
    };
    let want = hex("00 00 00 00 | 00 00 00 01 00 00 00 05 | 00 00 75 30 \
        | 01 00 0a 3b 4c 5d 00 01 \
        | 00 00 00 10 ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab | 01");
    assert_eq!(req.to_bytes().to_vec(), want);
}

/// A 3.3-era client stops after passwd; readOnly then reads as false.
#[test]
fn connect_request_without_read_only() {
    let b = hex("00 00 00 00 | 00 00 00 00 00 00 00 00 | 00 00 75 30 \
        | 00 00 00 00 00 00 00 00 | 00 00 00 00");
    let mut r = Reader::from_slice(&b);
    let req = ConnectRequest::read(&mut r).unwrap();
    assert_eq!(r.remaining(), 0);
    assert_eq!(
        req,
        ConnectRequest {
            time_out: 30000,
            ..Default::default()
        }
    );
}

/// The server's handshake answer, with and without the readOnly byte.
#[test]
fn connect_response() {
    let resp = ConnectResponse {
        protocol_version: 0,
        time_out: 30000,
        session_id: 0x0100_0a3b_4c5d_0001,
        passwd: Bytes::from_static(&[0xab; 16]),
        read_only: false,
    };
    let legacy = "00 00 00 00 | 00 00 75 30 | 01 00 0a 3b 4c 5d 00 01 \
        | 00 00 00 10 ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab ab";
    assert_eq!(resp.to_bytes().to_vec(), hex(&format!("{legacy} | 00")));
    assert_eq!(encode_with(|w| resp.write_legacy(w)), hex(legacy));
    assert_eq!(ConnectResponse::from_bytes(hex(legacy).into()), Ok(resp));
}

/// zk.create("/a", "x".getBytes(), OPEN_ACL_UNSAFE, PERSISTENT) as the first
/// request of a session: RequestHeader{xid 1, type 1} + CreateRequest.
#[test]
fn create_request_packet() {
    let want = framed(&hex(&format!("00 00 00 01 | 00 00 00 01 | {CREATE_A_X}")));
    assert_eq!(
        &want[..4],
        &[0, 0, 0, 0x32],
        "8 header + 42 body bytes (path 6, data 5, acl 27, flags 4)"
    );

    let req = Request::Create(
        op::CREATE,
        CreateRequest {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"x")),
            acl: open_acl_unsafe(),
            flags: 0,
        },
    );
    let got = framed(&encode_with(|w| {
        RequestHeader { xid: 1, op: 1 }.write(w);
        req.write(w);
    }));
    assert_eq!(got, want);

    let mut r = Reader::from_slice(&want[4..]);
    let h = RequestHeader::read(&mut r).unwrap();
    assert_eq!(h, RequestHeader { xid: 1, op: 1 });
    assert_eq!(Request::read(h.op, &mut r), Ok(req));
    assert_eq!(r.remaining(), 0);
}

/// zk.multi([Op.create("/a", "x", OPEN_ACL_UNSAFE, PERSISTENT), Op.delete("/a", -1)]):
/// each op is MultiHeader{type, done=false, err=-1} + its request record, and
/// the list ends with MultiHeader{-1, true, -1}.
#[test]
fn multi_create_delete_packet() {
    let done = "ff ff ff ff | 01 | ff ff ff ff";
    let body = hex(&format!(
        "00 00 00 01 | 00 | ff ff ff ff | {CREATE_A_X} \
         | 00 00 00 02 | 00 | ff ff ff ff | 00 00 00 02 2f 61 | ff ff ff ff \
         | {done}"
    ));
    let ops = vec![
        MultiOp::Create(
            op::CREATE,
            CreateRequest {
                path: "/a".into(),
                data: Some(Bytes::from_static(b"x")),
                acl: open_acl_unsafe(),
                flags: 0,
            },
        ),
        MultiOp::Delete(DeleteRequest {
            path: "/a".into(),
            version: -1,
        }),
    ];
    assert_eq!(encode_with(|w| write_multi(&ops, w)), body);

    let packet = framed(&[hex("00 00 00 02 | 00 00 00 0e"), body.clone()].concat());
    let req = Request::Multi(ops.clone());
    let got = framed(&encode_with(|w| {
        RequestHeader {
            xid: 2,
            op: req.op(),
        }
        .write(w);
        req.write(w);
    }));
    assert_eq!(got, packet);
    let mut r = Reader::from_slice(&packet[4 + 8..]);
    assert_eq!(Request::read(op::MULTI, &mut r), Ok(req));
    assert_eq!(r.remaining(), 0);

    // The done header alone, as MultiResponse also ends with it.
    let h = MultiHeader {
        op: -1,
        done: true,
        err: -1,
    };
    assert_eq!(h.to_bytes().to_vec(), hex(done));
    // An empty multi is just the done header.
    assert_eq!(encode_with(|w| write_multi(&[], w)), hex(done));
    assert_eq!(read_multi(&mut Reader::from_slice(&hex(done))), Ok(vec![]));
}

/// The server's answer to that multi when it succeeds: MultiResponse writes
/// MultiHeader{type, false, 0} per result (err is 0 unless type is error), a
/// CreateResponse for create, nothing at all for delete, then the done header.
#[test]
fn multi_response_layout() {
    let want = hex("00 00 00 02 | 00 00 00 00 00 00 00 07 | 00 00 00 00 \
        | 00 00 00 01 | 00 | 00 00 00 00 | 00 00 00 02 2f 61 \
        | 00 00 00 02 | 00 | 00 00 00 00 \
        | ff ff ff ff | 01 | ff ff ff ff");
    let got = encode_with(|w| {
        ReplyHeader {
            xid: 2,
            zxid: 7,
            err: 0,
        }
        .write(w);
        MultiHeader {
            op: op::CREATE,
            done: false,
            err: 0,
        }
        .write(w);
        CreateResponse { path: "/a".into() }.write(w);
        MultiHeader {
            op: op::DELETE,
            done: false,
            err: 0,
        }
        .write(w);
        MultiHeader {
            op: -1,
            done: true,
            err: -1,
        }
        .write(w);
    });
    assert_eq!(got, want);

    // A failed multi: every result is type -1 (error) with an ErrorResponse
    // body; the header's err and the body's err are the same code.
    let failed = hex("ff ff ff ff | 00 | ff ff ff 92 | ff ff ff 92");
    let got = encode_with(|w| {
        MultiHeader {
            op: op::ERROR,
            done: false,
            err: -110,
        }
        .write(w);
        ErrorResponse { err: -110 }.write(w);
    });
    assert_eq!(got, failed);
}

/// Ping: RequestHeader{xid -2, type 11} and nothing else; the answer is a
/// bare ReplyHeader.
#[test]
fn ping() {
    let packet = hex("00 00 00 08 | ff ff ff fe | 00 00 00 0b");
    let got = framed(
        &RequestHeader {
            xid: xid::PING,
            op: op::PING,
        }
        .to_bytes(),
    );
    assert_eq!(got, packet);
    assert_eq!(
        Request::read(op::PING, &mut Reader::from_slice(&[])),
        Ok(Request::Ping)
    );
    let reply = ReplyHeader {
        xid: -2,
        zxid: 0x1_0000_0003,
        err: 0,
    };
    assert_eq!(
        reply.to_bytes().to_vec(),
        hex("ff ff ff fe | 00 00 00 01 00 00 00 03 | 00 00 00 00")
    );
}

/// A watch notification: ReplyHeader{xid -1, zxid -1, err 0} + WatcherEvent.
#[test]
fn notification() {
    let got = encode_with(|w| {
        ReplyHeader {
            xid: xid::NOTIFICATION,
            zxid: -1,
            err: 0,
        }
        .write(w);
        WatcherEvent {
            event_type: 3,
            state: 3,
            path: "/a".into(),
        }
        .write(w);
    });
    assert_eq!(
        got,
        hex("ff ff ff ff | ff ff ff ff ff ff ff ff | 00 00 00 00 \
             | 00 00 00 03 | 00 00 00 03 | 00 00 00 02 2f 61")
    );
}

/// Java writes a null string, buffer or vector as length -1. We decode them
/// as empty (and would re-encode them as length 0).
#[test]
fn java_nulls_decode() {
    // zk.create("/a", null, OPEN_ACL_UNSAFE, EPHEMERAL): data is null, and
    // stays null (getData must answer null to Java clients); other nulls
    // read as empty.
    let b = hex("00 00 00 02 2f 61 | ff ff ff ff \
        | 00 00 00 01 | 00 00 00 1f | 00 00 00 05 77 6f 72 6c 64 | 00 00 00 06 61 6e 79 6f 6e 65 \
        | 00 00 00 01");
    let mut r = Reader::from_slice(&b);
    let c = CreateRequest::read(&mut r).unwrap();
    assert_eq!(r.remaining(), 0);
    assert_eq!(
        c,
        CreateRequest {
            path: "/a".into(),
            data: None,
            acl: open_acl_unsafe(),
            flags: 1,
        }
    );

    // SetWatches with null lists, and an AuthPacket with a null scheme/auth.
    let b = hex("00 00 00 00 00 00 00 09 | ff ff ff ff | ff ff ff ff | ff ff ff ff");
    assert_eq!(
        SetWatches::from_bytes(b.into()),
        Ok(SetWatches {
            relative_zxid: 9,
            ..Default::default()
        })
    );
    let b = hex("00 00 00 00 | ff ff ff ff | ff ff ff ff");
    assert_eq!(AuthPacket::from_bytes(b.into()), Ok(AuthPacket::default()));
}

/// A txn log entry as Util.marshallTxnEntry writes it: TxnHeader, the txn,
/// then (3.6+) the TxnDigest.
#[test]
fn create_txn_with_digest() {
    let txn = Txn {
        header: TxnHeader {
            client_id: 0x0100_0000_0000_0001,
            cxid: 1,
            zxid: 0x1_0000_0002,
            time: 0x0000_0190_0000_0000,
            op: op::CREATE,
        },
        body: TxnBody::Create(CreateTxn {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"x")),
            acl: open_acl_unsafe(),
            ephemeral: false,
            parent_cversion: 1,
        }),
        digest: Some(TxnDigest {
            version: 2,
            tree_digest: 0x0123_4567_89ab_cdef,
        }),
    };
    let want = hex(
        "01 00 00 00 00 00 00 01 | 00 00 00 01 | 00 00 00 01 00 00 00 02 \
        | 00 00 01 90 00 00 00 00 | 00 00 00 01 \
        | 00 00 00 02 2f 61 | 00 00 00 01 78 \
        | 00 00 00 01 | 00 00 00 1f | 00 00 00 05 77 6f 72 6c 64 | 00 00 00 06 61 6e 79 6f 6e 65 \
        | 00 | 00 00 00 01 \
        | 00 00 00 02 | 01 23 45 67 89 ab cd ef",
    );
    assert_eq!(encode_with(|w| txn.write(w)), want);
    let mut r = Reader::from_slice(&want);
    assert_eq!(Txn::read(&mut r), Ok(txn.clone()));
    assert_eq!(r.remaining(), 0);

    // Pre-3.6 logs have no digest.
    let old = &want[..want.len() - 12];
    assert_eq!(
        Txn::read(&mut Reader::from_slice(old)),
        Ok(Txn {
            digest: None,
            ..txn
        })
    );
}

/// MultiTxn is vector<Txn{int type; buffer data}>, each data the sub-txn's
/// own encoding.
#[test]
fn multi_txn() {
    let body = TxnBody::Multi(vec![
        TxnBody::Delete(DeleteTxn { path: "/a".into() }),
        TxnBody::Check(CheckVersionTxn {
            path: "/b".into(),
            version: 3,
        }),
        TxnBody::Error(ErrorTxn { err: -101 }),
    ]);
    let want = hex("00 00 00 03 \
        | 00 00 00 02 | 00 00 00 06 | 00 00 00 02 2f 61 \
        | 00 00 00 0d | 00 00 00 0a | 00 00 00 02 2f 62 00 00 00 03 \
        | ff ff ff ff | 00 00 00 04 | ff ff ff 9b");
    assert_eq!(encode_with(|w| body.write(w)), want);
    assert_eq!(
        TxnBody::read(op::MULTI, &mut Reader::from_slice(&want)),
        Ok(body)
    );
}

/// closeSession before 3.6 was logged with no body at all.
#[test]
fn legacy_close_session_txn() {
    let hdr = TxnHeader {
        client_id: 5,
        cxid: 0,
        zxid: 9,
        time: 1,
        op: op::CLOSE_SESSION,
    };
    let txn = Txn::read(&mut Reader::from_slice(&hdr.to_bytes())).unwrap();
    assert_eq!(txn.body, TxnBody::CloseSession(CloseSessionTxn::default()));
    assert_eq!(txn.digest, None);
}

/// Java's jute writer encodes each UTF-16 unit on its own, so a non-BMP
/// character leaves a Java client as two 3-byte surrogate encodings
/// (CESU-8), and the Java server's `new String(bytes, UTF_8)` turns each into
/// one U+FFFD. We decode the same way (checked against JDK 17 and 25).
#[test]
fn strings_decode_like_java() {
    fn read(b: &[u8]) -> String {
        let mut v = (b.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(b);
        Reader::from_slice(&v).string().unwrap()
    }
    const R: char = char::REPLACEMENT_CHARACTER;
    // "/😀" from a Java client.
    assert_eq!(read(&hex("2f ed a0 bd ed b8 80")), format!("/{R}{R}"));
    // The same from a client writing real UTF-8 (kazoo, Go, C).
    assert_eq!(read(&hex("2f f0 9f 98 80")), "/😀");
    // Other malformed input, with Java's answers.
    let cases: &[(&str, &str)] = &[
        ("80", "\u{fffd}"),
        ("e2 82", "\u{fffd}"),
        ("e2 82 41", "\u{fffd}A"),
        ("c0 80", "\u{fffd}\u{fffd}"),
        ("f4 90 80 80", "\u{fffd}\u{fffd}\u{fffd}\u{fffd}"),
        ("f0 9f 98", "\u{fffd}"),
        ("ed a0", "\u{fffd}"),
        ("ed a0 41", "\u{fffd}A"),
        ("41 ed a0", "A\u{fffd}"),
        ("ed bf bf", "\u{fffd}"),
        ("ed 9f bf", "\u{d7ff}"),
        ("ed 41", "\u{fffd}A"),
        ("ed a0 ed b0 80", "\u{fffd}\u{fffd}"),
        ("ed a0 c0", "\u{fffd}\u{fffd}"),
        ("e0 80 80", "\u{fffd}\u{fffd}\u{fffd}"),
        ("ff 41", "\u{fffd}A"),
    ];
    for (input, want) in cases {
        assert_eq!(read(&hex(input)), *want, "{input}");
    }
    // Our writer emits standard UTF-8; NUL is a plain 0 byte as in Java's writer.
    assert_eq!(
        "/😀\0".to_string().to_bytes().to_vec(),
        hex("00 00 00 06 2f f0 9f 98 80 00")
    );
}
