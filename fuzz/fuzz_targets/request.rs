//! A client request body: the first 4 bytes pick the opcode, the rest is the
//! body. Whatever decodes must re-encode to bytes that decode to the same
//! request, consuming all of them.
#![no_main]

use bytes::BytesMut;
use jute::request::{read_multi, write_multi, Request};
use jute::Reader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 4 {
        return;
    }
    let opc = i32::from_be_bytes([data[0], data[1], data[2], data[3]]);
    let body = &data[4..];

    if let Ok(req) = Request::read(opc, &mut Reader::from_slice(body)) {
        assert_eq!(req.op(), opc);
        let mut b = BytesMut::new();
        req.write(&mut b);
        let mut r = Reader::new(b.freeze());
        assert_eq!(Request::read(opc, &mut r).as_ref(), Ok(&req));
        assert_eq!(r.remaining(), 0);
    }

    // The multi framing on its own, which also accepts mixed read/write ops.
    if let Ok(ops) = read_multi(&mut Reader::from_slice(body)) {
        let mut b = BytesMut::new();
        write_multi(&ops, &mut b);
        let mut r = Reader::new(b.freeze());
        assert_eq!(read_multi(&mut r).as_ref(), Ok(&ops));
        assert_eq!(r.remaining(), 0);
    }
});
