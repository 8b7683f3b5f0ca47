//! A txn log entry / proposal: TxnHeader, body by opcode, optional digest.
#![no_main]

use bytes::BytesMut;
use jute::txn::Txn;
use jute::Reader;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(txn) = Txn::read(&mut Reader::from_slice(data)) {
        assert_eq!(txn.body.op(), txn.header.op);
        let mut b = BytesMut::new();
        txn.write(&mut b);
        let mut r = Reader::new(b.freeze());
        assert_eq!(Txn::read(&mut r).as_ref(), Ok(&txn));
        assert_eq!(r.remaining(), 0);
    }
});
