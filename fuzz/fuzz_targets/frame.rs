//! Frame checking: the first byte is the size limit (0..=255), the rest the
//! receive buffer. `check` must agree exactly with the announced length.
#![no_main]

use jute::frame::{check, FrameError};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&max, buf)) = data.split_first() else {
        return;
    };
    let max = max as usize;
    let res = check(buf, max);
    if buf.len() < 4 {
        assert_eq!(res, Ok(None));
        return;
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    match res {
        Ok(Some(n)) => {
            assert!(n <= max, "payload {n} over the limit {max}");
            assert!(
                4 + n <= buf.len(),
                "payload {n} beyond a {}-byte buffer",
                buf.len()
            );
            assert_eq!(n as i64, len as i64);
        }
        Ok(None) => {
            assert!(len >= 0 && len as usize <= max);
            assert!(buf.len() < 4 + len as usize);
        }
        Err(FrameError::BadLength { len: l, max: m }) => {
            assert_eq!(l, len as i64);
            assert_eq!(m, max);
            assert!(len < 0 || len as usize > max);
        }
    }
});
