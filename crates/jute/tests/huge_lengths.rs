//! Huge announced lengths in short inputs are refused at once, before any
//! allocation sized by them. A tracking global allocator records the largest
//! single allocation this test binary ever makes.

use bytes::Bytes;
use jute::consts::op;
use jute::data::*;
use jute::proto::*;
use jute::quorum::*;
use jute::request::{read_multi, Request};
use jute::txn::*;
use jute::{DecodeError, Reader, Record};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

struct Tracking;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Tracking {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static GLOBAL: Tracking = Tracking;

/// Nothing in this binary legitimately allocates anywhere near this.
const ALLOC_LIMIT: usize = 1 << 20;

const HUGE: [i32; 6] = [
    i32::MAX,
    i32::MAX - 1,
    i32::MAX - 3,
    0x4000_0000,
    0x1000_0000,
    0x0100_0000,
];

fn be(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn i32b(v: i32) -> [u8; 4] {
    v.to_be_bytes()
}

fn s(v: &str) -> Vec<u8> {
    be(&[&i32b(v.len() as i32), v.as_bytes()])
}

/// Runs `f`, which must fail, and checks it failed fast without a big allocation.
fn refused<T: std::fmt::Debug>(what: &str, f: impl FnOnce() -> Result<T, DecodeError>) {
    let start = Instant::now();
    let res = f();
    let took = start.elapsed();
    assert!(res.is_err(), "{what}: decoded {res:?}");
    assert!(
        took < Duration::from_secs(1),
        "{what}: took {took:?} to fail"
    );
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest < ALLOC_LIMIT,
        "{what}: an allocation of {largest} bytes was made"
    );
}

/// Decodes `T` from `input` followed by `pad` filler bytes.
fn read_padded<T: Record>(input: &[u8], pad: usize) -> Result<T, DecodeError> {
    let mut b = input.to_vec();
    b.resize(input.len() + pad, 0x61);
    T::read(&mut Reader::from_slice(&b))
}

#[test]
fn huge_vector_counts() {
    for n in HUGE {
        for pad in [0, 7, 100] {
            let c = i32b(n);
            refused("Vec<String>", || read_padded::<Vec<String>>(&c, pad));
            refused("Vec<Acl>", || read_padded::<Vec<Acl>>(&c, pad));
            refused("Vec<i64>", || read_padded::<Vec<i64>>(&c, pad));
            refused("Vec<bool>", || read_padded::<Vec<bool>>(&c, pad));
            refused("Vec<Vec<Id>>", || read_padded::<Vec<Vec<Id>>>(&c, pad));
            refused("GetChildrenResponse", || {
                read_padded::<GetChildrenResponse>(&c, pad)
            });
            refused("WhoAmIResponse", || read_padded::<WhoAmIResponse>(&c, pad));
            refused("CloseSessionTxn", || {
                read_padded::<CloseSessionTxn>(&c, pad)
            });
            refused("Vec<SubTxn>", || read_padded::<Vec<SubTxn>>(&c, pad));

            let create = be(&[&s("/a"), &s("x"), &c]);
            refused("CreateRequest.acl", || {
                read_padded::<CreateRequest>(&create, pad)
            });
            refused("SetWatches.data", || {
                read_padded::<SetWatches>(&be(&[&0i64.to_be_bytes(), &c]), pad)
            });
            refused("SetWatches2.persistentRecursive", || {
                let zero = i32b(0);
                read_padded::<SetWatches2>(
                    &be(&[&0i64.to_be_bytes(), &zero, &zero, &zero, &zero, &c]),
                    pad,
                )
            });
            refused("QuorumPacket.authinfo", || {
                read_padded::<QuorumPacket>(
                    &be(&[&i32b(2), &0i64.to_be_bytes(), &i32b(0), &c]),
                    pad,
                )
            });
            refused("multi txn sub count", || {
                TxnBody::read(op::MULTI, &mut Reader::from_slice(&c))
            });
            refused("closeSession txn paths", || {
                TxnBody::read(op::CLOSE_SESSION, &mut Reader::from_slice(&c))
            });
            refused("Request multi create acl", || {
                let body = be(&[&i32b(op::CREATE), &[0], &i32b(-1), &create]);
                Request::read(op::MULTI, &mut Reader::from_slice(&body))
            });
        }
    }
}

#[test]
fn huge_buffer_and_string_lengths() {
    for n in HUGE {
        for pad in [0, 7, 100] {
            let c = i32b(n);
            refused("Bytes", || read_padded::<Bytes>(&c, pad));
            refused("String", || read_padded::<String>(&c, pad));
            refused("PathRequest", || read_padded::<PathRequest>(&c, pad));
            refused("CreateRequest.data", || {
                read_padded::<CreateRequest>(&be(&[&s("/a"), &c]), pad)
            });
            refused("SetDataRequest.data", || {
                read_padded::<SetDataRequest>(&be(&[&s("/a"), &c]), pad)
            });
            refused("ConnectRequest.passwd", || {
                let mut b = vec![0u8; 4 + 8 + 4 + 8];
                b.extend_from_slice(&c);
                read_padded::<ConnectRequest>(&b, pad)
            });
            refused("AuthPacket.auth", || {
                read_padded::<AuthPacket>(&be(&[&i32b(0), &s("digest"), &c]), pad)
            });
            refused("QuorumPacket.data", || {
                read_padded::<QuorumPacket>(&be(&[&i32b(2), &0i64.to_be_bytes(), &c]), pad)
            });
            refused("SubTxn.data", || {
                read_padded::<SubTxn>(&be(&[&i32b(op::CREATE), &c]), pad)
            });
            refused("multi txn sub data", || {
                let b = be(&[&i32b(1), &i32b(op::CREATE), &c]);
                TxnBody::read(op::MULTI, &mut Reader::from_slice(&b))
            });
            refused("Txn create path", || {
                let hdr = TxnHeader {
                    op: op::CREATE,
                    ..Default::default()
                };
                let b = be(&[&hdr.to_bytes(), &c]);
                Txn::read(&mut Reader::from_slice(&b))
            });
            refused("Request setData", || {
                let b = be(&[&s("/a"), &c]);
                Request::read(op::SET_DATA, &mut Reader::from_slice(&b))
            });
            refused("multi header then huge path", || {
                let b = be(&[&i32b(op::DELETE), &[0], &i32b(-1), &c]);
                read_multi(&mut Reader::from_slice(&b))
            });
        }
    }
}

#[test]
fn negative_lengths_other_than_null_are_refused() {
    for n in [-2, -100, i32::MIN] {
        let c = i32b(n);
        assert_eq!(
            read_padded::<Bytes>(&c, 10),
            Err(DecodeError::BadLength(n as i64))
        );
        assert_eq!(
            read_padded::<String>(&c, 10),
            Err(DecodeError::BadLength(n as i64))
        );
        assert_eq!(
            read_padded::<Vec<String>>(&c, 10),
            Err(DecodeError::BadLength(n as i64))
        );
    }
}

/// A vector as long as the input could possibly hold still decodes.
#[test]
fn counts_that_fit_are_accepted() {
    let n = 10_000;
    let mut b = i32b(n).to_vec();
    b.resize(4 + 4 * n as usize, 0);
    let v = Vec::<String>::from_bytes(Bytes::from(b)).unwrap();
    assert_eq!(v.len(), n as usize);
    assert!(v.iter().all(String::is_empty));
}
