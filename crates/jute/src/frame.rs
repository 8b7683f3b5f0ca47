//! Length-prefixed framing: a 4-byte big-endian length, then that many bytes.

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {len} is negative or exceeds the limit of {max} bytes")]
    BadLength { len: i64, max: usize },
}

/// Checks the start of `buf` for a whole frame. Returns the payload length if
/// one is complete, `None` if more bytes are needed, an error if the announced
/// length is negative or larger than `max` (nothing is allocated for it).
pub fn check(buf: &[u8], max: usize) -> Result<Option<usize>, FrameError> {
    if buf.len() < 4 {
        return Ok(None);
    }
    let len = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
    if len < 0 || len as usize > max {
        return Err(FrameError::BadLength {
            len: len as i64,
            max,
        });
    }
    let len = len as usize;
    if buf.len() < 4 + len {
        Ok(None)
    } else {
        Ok(Some(len))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames() {
        assert_eq!(check(&[0, 0], 10), Ok(None));
        assert_eq!(check(&[0, 0, 0, 2, 1], 10), Ok(None));
        assert_eq!(check(&[0, 0, 0, 2, 1, 2, 3], 10), Ok(Some(2)));
        assert!(check(&[0, 0, 0, 11], 10).is_err());
        assert!(check(&[0xff, 0xff, 0xff, 0xff], 10).is_err());
    }
}
