//! The session handshake, with or without the trailing readOnly byte.
#![no_main]

use jute::proto::{ConnectRequest, ConnectResponse};
use jute::{Reader, Record};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut r = Reader::from_slice(data);
    if let Ok(req) = ConnectRequest::read(&mut r) {
        assert!(r.remaining() <= data.len());
        let mut r = Reader::new(req.to_bytes());
        assert_eq!(ConnectRequest::read(&mut r).as_ref(), Ok(&req));
        assert_eq!(r.remaining(), 0);
    }
    if let Ok(resp) = ConnectResponse::read(&mut Reader::from_slice(data)) {
        let mut r = Reader::new(resp.to_bytes());
        assert_eq!(ConnectResponse::read(&mut r).as_ref(), Ok(&resp));
        assert_eq!(r.remaining(), 0);
    }
});
