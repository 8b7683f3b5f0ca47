//! Malformed and hostile input on raw sockets: bad frame lengths, truncated
//! handshakes, garbage bodies, unknown opcodes, and four-letter words. One
//! bad connection never disturbs the others.

mod common;

use bytes::{BufMut, Bytes, BytesMut};
use common::{connect_request, frame, persistent, within, Raw, TestServer};
use jute::codec::{Reader, Record};
use jute::consts::{op, ErrorCode};
use jute::proto::{ConnectResponse, PathWatchRequest, ReplyHeader, RequestHeader};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use zookeeper_client as zk;

/// Reads until the server closes the connection; returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut out = Vec::new();
    within("the server to close the connection", async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => out.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    out
}

/// The server is still serving: a fresh client and an existing one work.
async fn still_serving(s: &TestServer, existing: &zk::Client, tag: &str) {
    let path = format!("/alive-{tag}");
    existing.create(&path, b"", &persistent()).await.unwrap();
    let fresh = s.client().await;
    assert!(fresh.check_stat(&path).await.unwrap().is_some());
}

fn request(xid: i32, opc: i32, body: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    RequestHeader { xid, op: opc }.write(&mut b);
    b.put_slice(body);
    frame(&b)
}

fn get_data(path: &str) -> Vec<u8> {
    PathWatchRequest {
        path: path.to_owned(),
        watch: false,
    }
    .to_bytes()
    .to_vec()
}

#[tokio::test]
async fn negative_frame_length_closes_the_connection() {
    let s = TestServer::start().await;
    let c = s.client().await;
    // As the first frame.
    let mut raw = TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(&(-1i32).to_be_bytes()).await.unwrap();
    assert_eq!(read_to_close(&mut raw).await, b"");
    // After a handshake.
    let mut raw = Raw::connect(s.addr).await;
    raw.stream.write_all(&i32::MIN.to_be_bytes()).await.unwrap();
    assert_eq!(raw.closed().await, Vec::<Bytes>::new());
    still_serving(&s, &c, "neg").await;
    s.stop().await;
}

#[tokio::test]
async fn frame_longer_than_jute_maxbuffer_closes_the_connection() {
    let s = TestServer::with(&[], &[("jute.maxbuffer", "4096")]).await;
    let c = s.client().await;
    let mut raw = TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(&4097i32.to_be_bytes()).await.unwrap();
    assert_eq!(
        read_to_close(&mut raw).await,
        b"",
        "no allocation, no reply"
    );

    let mut raw = Raw::connect(s.addr).await;
    // A request right at the limit is fine...
    let set = |len: usize| {
        jute::proto::SetDataRequest {
            path: "/big".into(),
            data: Bytes::from(vec![7u8; len]).into(),
            version: -1,
        }
        .to_bytes()
    };
    c.create("/big", b"", &persistent()).await.unwrap();
    let body = set(4096 - 8 - 4 - 4 - 4 - 4);
    let (h, _) = raw.request(op::SET_DATA, &body).await;
    assert_eq!(h.err, 0);
    // ...one byte more is not.
    let body = set(4096 - 8 - 4 - 4 - 4 - 4 + 1);
    let mut b = BytesMut::new();
    RequestHeader {
        xid: 99,
        op: op::SET_DATA,
    }
    .write(&mut b);
    b.put_slice(&body);
    assert_eq!(b.len(), 4097);
    raw.stream.write_all(&frame(&b)).await.unwrap();
    assert_eq!(raw.closed().await, Vec::<Bytes>::new());
    assert_eq!(c.get_data("/big").await.unwrap().1.data_length, 4072);
    still_serving(&s, &c, "big").await;
    s.stop().await;
}

#[tokio::test]
async fn truncated_connect_requests_are_dropped() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let full = connect_request(10_000).to_bytes();
    // A whole frame holding only part of a ConnectRequest.
    let mut raw = TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(&frame(&full[..10])).await.unwrap();
    assert_eq!(read_to_close(&mut raw).await, b"");
    // A frame cut short by the client going away.
    let mut raw = TcpStream::connect(s.addr).await.unwrap();
    let f = frame(&full);
    raw.write_all(&f[..f.len() - 5]).await.unwrap();
    raw.shutdown().await.unwrap();
    assert_eq!(read_to_close(&mut raw).await, b"");
    // A connect request carrying a password longer than its frame.
    let mut bad = BytesMut::new();
    bad.put_i32(0);
    bad.put_i64(0);
    bad.put_i32(10_000);
    bad.put_i64(0);
    bad.put_i32(1_000);
    bad.put_slice(&[0u8; 16]);
    let mut raw = TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(&frame(&bad)).await.unwrap();
    assert_eq!(read_to_close(&mut raw).await, b"");
    still_serving(&s, &c, "trunc").await;
    s.stop().await;
}

#[tokio::test]
async fn a_client_ahead_of_the_server_is_refused() {
    let s = TestServer::start().await;
    let mut req = connect_request(10_000);
    req.last_zxid_seen = 1 << 40;
    let mut raw = TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(&frame(&req.to_bytes())).await.unwrap();
    assert_eq!(
        read_to_close(&mut raw).await,
        b"",
        "closed without an answer"
    );
    s.stop().await;
}

#[tokio::test]
async fn garbage_body_for_a_known_opcode_is_a_marshalling_error() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create("/g", b"", &persistent()).await.unwrap();
    let mut raw = Raw::connect(s.addr).await;
    let marshalling = ErrorCode::MarshallingError.code();
    // A string length far past the end of the frame.
    let (h, body) = raw
        .request(op::GET_DATA, &[0x7f, 0xff, 0xff, 0xff, 0])
        .await;
    assert_eq!((h.err, body.len()), (marshalling, 0));
    // A write: a create with its ACL vector cut off.
    let mut b = BytesMut::new();
    b.put_i32(3);
    b.put_slice(b"/gx");
    b.put_i32(0);
    b.put_i32(5); // five ACLs follow... but none do
    let (h, _) = raw.request(op::CREATE, &b).await;
    assert_eq!(h.err, marshalling);
    // An empty body.
    let (h, _) = raw.request(op::SET_DATA, &[]).await;
    assert_eq!(h.err, marshalling);
    // The connection and the server are fine.
    let (h, body) = raw.request(op::GET_DATA, &get_data("/g")).await;
    assert_eq!(h.err, 0);
    assert!(!body.is_empty());
    assert_eq!(c.check_stat("/gx").await.unwrap(), None);
    still_serving(&s, &c, "garbage").await;
    s.stop().await;
}

#[tokio::test]
async fn a_frame_too_short_for_a_request_header_closes_the_connection() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    raw.stream.write_all(&frame(&[0, 0, 1])).await.unwrap();
    assert_eq!(raw.closed().await, Vec::<Bytes>::new());
    still_serving(&s, &c, "short").await;
    s.stop().await;
}

#[tokio::test]
async fn unknown_opcode_is_unimplemented_then_closed() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    let (sid, passwd) = (raw.session_id, raw.passwd.clone());
    raw.stream
        .write_all(&request(41, 999, &[1, 2, 3]))
        .await
        .unwrap();
    let frames = raw.closed().await;
    assert_eq!(frames.len(), 1, "one reply, then close");
    let h = ReplyHeader::read(&mut Reader::new(frames[0].clone())).unwrap();
    assert_eq!((h.xid, h.err), (41, ErrorCode::Unimplemented.code()));
    // Only the connection is closed; the session can be resumed.
    let (mut again, resp) = Raw::resume(s.addr, sid, passwd).await;
    assert_eq!(resp.session_id, sid);
    assert_eq!(again.events().await, vec![]);
    still_serving(&s, &c, "unknown-op").await;
    s.stop().await;
}

#[tokio::test]
async fn pipelined_and_fragmented_frames() {
    let s = TestServer::start().await;
    let c = s.client().await;
    c.create("/f", b"fragment", &persistent()).await.unwrap();
    let mut raw = TcpStream::connect(s.addr).await.unwrap();
    // Handshake and three requests in one write.
    let mut all = frame(&connect_request(10_000).to_bytes());
    for xid in 1..=3 {
        all.extend(request(xid, op::GET_DATA, &get_data("/f")));
    }
    raw.write_all(&all).await.unwrap();
    // The fourth request one byte at a time.
    let last = request(4, op::EXISTS, &get_data("/f"));
    for b in &last {
        raw.write_all(&[*b]).await.unwrap();
        raw.flush().await.unwrap();
    }
    let mut conn = Raw::from_stream(raw);
    let f = conn.read_frame().await.unwrap();
    let resp = ConnectResponse::read(&mut Reader::new(f)).unwrap();
    assert_ne!(resp.session_id, 0);
    for xid in 1..=4 {
        let f = conn.read_frame().await.unwrap();
        let h = ReplyHeader::read(&mut Reader::new(f)).unwrap();
        assert_eq!((h.xid, h.err), (xid, 0), "replies in request order");
    }
    s.stop().await;
}

/// Sends a four-letter word and returns the whole answer.
async fn four_letter(s: &TestServer, word: &str) -> String {
    let mut raw = TcpStream::connect(s.addr).await.unwrap();
    raw.write_all(word.as_bytes()).await.unwrap();
    String::from_utf8(read_to_close(&mut raw).await).unwrap()
}

#[tokio::test]
async fn four_letter_words_honour_the_whitelist() {
    let s = TestServer::start().await;
    // ZooKeeper's default whitelist is just srvr.
    assert!(four_letter(&s, "srvr")
        .await
        .starts_with("Zookeeper version:"));
    assert_eq!(
        four_letter(&s, "ruok").await,
        "ruok is not executed because it is not in the whitelist.\n"
    );
    assert_eq!(
        four_letter(&s, "stat").await,
        "stat is not executed because it is not in the whitelist.\n"
    );
    s.stop().await;

    let s = TestServer::with(&["4lw.commands.whitelist=ruok, srvr"], &[]).await;
    let c = s.client().await;
    assert_eq!(four_letter(&s, "ruok").await, "imok");
    assert_eq!(
        four_letter(&s, "mntr").await,
        "mntr is not executed because it is not in the whitelist.\n"
    );
    // Not a command: read as a (huge) frame length and dropped.
    assert_eq!(four_letter(&s, "abcd").await, "");
    // Only a new connection's first bytes can be a command.
    let mut raw = Raw::connect(s.addr).await;
    raw.stream.write_all(b"ruok").await.unwrap();
    assert_eq!(raw.closed().await, Vec::<Bytes>::new());
    still_serving(&s, &c, "4lw").await;
    s.stop().await;

    let s = TestServer::with(&[], &[("zookeeper.4lw.commands.whitelist", "*")]).await;
    assert_eq!(four_letter(&s, "ruok").await, "imok");
    assert!(four_letter(&s, "stat")
        .await
        .starts_with("Zookeeper version:"));
    s.stop().await;
}

#[tokio::test]
async fn silent_and_half_open_connections_do_not_block_others() {
    let s = TestServer::start().await;
    let c = s.client().await;
    // Connected but never speaking, and one that stops mid-length.
    let _silent = TcpStream::connect(s.addr).await.unwrap();
    let mut half = TcpStream::connect(s.addr).await.unwrap();
    half.write_all(&[0, 0]).await.unwrap();
    let mut stuck = Raw::connect(s.addr).await;
    stuck.stream.write_all(&[0, 0, 0, 40, 0, 0]).await.unwrap();
    still_serving(&s, &c, "silent").await;
    s.stop().await;
}

#[tokio::test]
async fn connections_per_address_are_limited() {
    let s = TestServer::with(&["maxClientCnxns=2"], &[]).await;
    let first = Raw::connect(s.addr).await;
    let _second = Raw::connect(s.addr).await;
    // The third is accepted and closed at once, before any handshake.
    let mut third = TcpStream::connect(s.addr).await.unwrap();
    let _ = third
        .write_all(&frame(&connect_request(10_000).to_bytes()))
        .await;
    assert_eq!(read_to_close(&mut third).await, b"");
    // A slot frees up when a connection goes.
    drop(first);
    common::poll_until(
        "a free connection slot",
        std::time::Duration::from_secs(10),
        || async {
            let mut raw = TcpStream::connect(s.addr).await.ok()?;
            raw.write_all(&frame(&connect_request(10_000).to_bytes()))
                .await
                .ok()?;
            let mut len = [0u8; 4];
            raw.read_exact(&mut len).await.ok().map(|_| ())
        },
    )
    .await;
    s.stop().await;
}

/// A multi body from raw (op, body) pairs.
fn multi(ops: &[(i32, Vec<u8>)]) -> Vec<u8> {
    let mut b = BytesMut::new();
    for (o, body) in ops {
        jute::proto::MultiHeader {
            op: *o,
            done: false,
            err: -1,
        }
        .write(&mut b);
        b.put_slice(body);
    }
    jute::proto::MultiHeader {
        op: -1,
        done: true,
        err: -1,
    }
    .write(&mut b);
    b.to_vec()
}

#[tokio::test]
async fn malformed_multis_are_marshalling_errors() {
    let s = TestServer::start().await;
    let c = s.client().await;
    let mut raw = Raw::connect(s.addr).await;
    let create = |flags: i32| {
        jute::proto::CreateRequest {
            path: "/mx".into(),
            data: Bytes::new().into(),
            acl: vec![jute::data::Acl::new(31, "world", "anyone")],
            flags,
        }
        .to_bytes()
        .to_vec()
    };
    let marshalling = ErrorCode::MarshallingError.code();
    let cases: Vec<(&str, i32, Vec<u8>)> = vec![
        // MultiOperationRecord refuses op types it does not know...
        (
            "a multi inside a multi",
            op::MULTI,
            multi(&[(op::MULTI, vec![])]),
        ),
        (
            "a multiRead inside a multiRead",
            op::MULTI_READ,
            multi(&[(op::MULTI_READ, vec![])]),
        ),
        (
            "sync inside a multi",
            op::MULTI,
            multi(&[(op::SYNC, get_data("/"))]),
        ),
        // ...mixing reads and writes...
        (
            "getData inside a multi",
            op::MULTI,
            multi(&[(op::CREATE, create(0)), (op::GET_DATA, get_data("/"))]),
        ),
        (
            "create inside a multiRead",
            op::MULTI_READ,
            multi(&[(op::CREATE, create(0))]),
        ),
        // ...and create flags that name no CreateMode.
        (
            "bad create flags",
            op::MULTI,
            multi(&[(op::CREATE, create(99))]),
        ),
    ];
    for (what, opc, body) in cases {
        let (h, reply) = raw.request(opc, &body).await;
        assert_eq!((h.err, reply.len()), (marshalling, 0), "{what}");
    }
    // Nothing was created and the connection still works.
    let (h, _) = raw.request(op::EXISTS, &get_data("/mx")).await;
    assert_eq!(h.err, ErrorCode::NoNode.code());
    still_serving(&s, &c, "multi").await;
    s.stop().await;
}
