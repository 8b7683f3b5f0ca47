//! The jute binary encoding: big-endian ints and longs, one-byte booleans,
//! length-prefixed buffers, strings and vectors (a length of -1 means null).
//!
//! Decoding never allocates more than the input could hold: every length is
//! checked against the bytes that remain before anything is reserved.

use bytes::{Buf, BufMut, Bytes, BytesMut};

/// Why a record could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("truncated record: needed {need} more bytes, {have} left")]
    Truncated { need: usize, have: usize },
    #[error("invalid length {0}")]
    BadLength(i64),
    #[error("unknown type {0}")]
    UnknownType(i32),
    #[error("{0}")]
    Invalid(&'static str),
}

pub type Result<T> = std::result::Result<T, DecodeError>;

/// A cursor over one received frame. Buffers are sliced out without copying.
#[derive(Debug, Clone)]
pub struct Reader {
    buf: Bytes,
}

impl Reader {
    pub fn new(buf: Bytes) -> Self {
        Reader { buf }
    }

    pub fn from_slice(buf: &[u8]) -> Self {
        Reader {
            buf: Bytes::copy_from_slice(buf),
        }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The undecoded rest, e.g. an optional trailing field.
    pub fn rest(&self) -> &[u8] {
        &self.buf
    }

    fn need(&self, n: usize) -> Result<()> {
        if self.buf.len() < n {
            Err(DecodeError::Truncated {
                need: n,
                have: self.buf.len(),
            })
        } else {
            Ok(())
        }
    }

    pub fn i32(&mut self) -> Result<i32> {
        self.need(4)?;
        Ok(self.buf.get_i32())
    }

    pub fn i64(&mut self) -> Result<i64> {
        self.need(8)?;
        Ok(self.buf.get_i64())
    }

    pub fn bool(&mut self) -> Result<bool> {
        self.need(1)?;
        Ok(self.buf.get_u8() != 0)
    }

    /// A length prefix: -1 (null) reads as `None`; any other negative
    /// length, or one longer than what is left, is an error.
    fn len(&mut self, elem_min: usize) -> Result<Option<usize>> {
        let n = self.i32()?;
        if n == -1 {
            return Ok(None);
        }
        if n < 0 {
            return Err(DecodeError::BadLength(n as i64));
        }
        let n = n as usize;
        let bytes = n.saturating_mul(elem_min.max(1));
        if bytes > self.buf.len() {
            return Err(DecodeError::Truncated {
                need: bytes,
                have: self.buf.len(),
            });
        }
        Ok(Some(n))
    }

    /// A buffer; null reads as empty (ZooKeeper treats them alike).
    pub fn buffer(&mut self) -> Result<Bytes> {
        match self.len(1)? {
            None => Ok(Bytes::new()),
            Some(n) => Ok(self.buf.split_to(n)),
        }
    }

    /// A buffer that keeps null (-1) apart from empty.
    pub fn nullable_buffer(&mut self) -> Result<Option<Bytes>> {
        Ok(self.len(1)?.map(|n| self.buf.split_to(n)))
    }

    /// A string; null reads as empty. Invalid UTF-8 is replaced, as Java does.
    /// Copied straight out of the input: a shared slice of it (as
    /// `buffer` makes) took and dropped a reference on the input's
    /// allocation for every path read.
    pub fn string(&mut self) -> Result<String> {
        let Some(n) = self.len(1)? else {
            return Ok(String::new());
        };
        let b = &self.buf[..n];
        let s = match std::str::from_utf8(b) {
            Ok(s) => s.to_owned(),
            Err(_) => java_lossy_utf8(b),
        };
        self.buf.advance(n);
        Ok(s)
    }

    /// A vector whose elements take at least `elem_min` bytes each.
    pub fn vec<T: Record>(&mut self) -> Result<Vec<T>> {
        match self.len(T::MIN_SIZE)? {
            None => Ok(Vec::new()),
            Some(n) => {
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    v.push(T::read(self)?);
                }
                Ok(v)
            }
        }
    }
}

/// Decodes UTF-8 replacing malformed input with U+FFFD the way Java's
/// `new String(bytes, UTF_8)` does. That is Rust's lossy decoding except for
/// encoded UTF-16 surrogates (`ED A0..BF xx`): Java clients write non-BMP
/// characters as two such 3-byte units (CESU-8), and Java replaces each unit
/// (or its 2-byte truncation) with a single U+FFFD where Rust would emit one
/// per byte. Matching it keeps node names identical to Apache ZooKeeper's.
fn java_lossy_utf8(mut rest: &[u8]) -> String {
    let mut out = String::with_capacity(rest.len() + 2);
    loop {
        match std::str::from_utf8(rest) {
            Ok(s) => {
                out.push_str(s);
                return out;
            }
            Err(e) => {
                let (valid, bad) = rest.split_at(e.valid_up_to());
                // `valid` was just checked by from_utf8.
                out.push_str(std::str::from_utf8(valid).unwrap_or_default());
                out.push(char::REPLACEMENT_CHARACTER);
                let skip = match bad {
                    [0xED, 0xA0..=0xBF, c, ..] if c & 0xC0 == 0x80 => 3,
                    [0xED, 0xA0..=0xBF, ..] => 2,
                    _ => e.error_len().unwrap_or(bad.len()),
                };
                rest = &bad[skip..];
            }
        }
    }
}

/// Append-only encoder.
pub trait Writer {
    fn put_i32_be(&mut self, v: i32);
    fn put_i64_be(&mut self, v: i64);
    fn put_bool(&mut self, v: bool);
    fn put_buffer(&mut self, v: &[u8]);
    fn put_string(&mut self, v: &str) {
        self.put_buffer(v.as_bytes());
    }
    fn put_vec<T: Record>(&mut self, v: &[T])
    where
        Self: Sized,
    {
        self.put_i32_be(v.len() as i32);
        for x in v {
            x.write(self);
        }
    }
}

impl<B: BufMut> Writer for B {
    fn put_i32_be(&mut self, v: i32) {
        self.put_i32(v);
    }
    fn put_i64_be(&mut self, v: i64) {
        self.put_i64(v);
    }
    fn put_bool(&mut self, v: bool) {
        self.put_u8(v as u8);
    }
    fn put_buffer(&mut self, v: &[u8]) {
        self.put_i32(v.len() as i32);
        self.put_slice(v);
    }
}

/// A jute record (or a primitive field of one).
pub trait Record: Sized {
    /// The fewest bytes one encoded value takes; bounds vector allocations.
    const MIN_SIZE: usize;
    fn write<W: Writer>(&self, w: &mut W);
    fn read(r: &mut Reader) -> Result<Self>;

    fn to_bytes(&self) -> Bytes {
        let mut b = BytesMut::with_capacity(64);
        self.write(&mut b);
        b.freeze()
    }

    /// Decodes a whole buffer; trailing bytes are tolerated (old/new fields).
    fn from_bytes(b: Bytes) -> Result<Self> {
        Self::read(&mut Reader::new(b))
    }
}

impl Record for i32 {
    const MIN_SIZE: usize = 4;
    fn write<W: Writer>(&self, w: &mut W) {
        w.put_i32_be(*self)
    }
    fn read(r: &mut Reader) -> Result<Self> {
        r.i32()
    }
}

impl Record for i64 {
    const MIN_SIZE: usize = 8;
    fn write<W: Writer>(&self, w: &mut W) {
        w.put_i64_be(*self)
    }
    fn read(r: &mut Reader) -> Result<Self> {
        r.i64()
    }
}

impl Record for bool {
    const MIN_SIZE: usize = 1;
    fn write<W: Writer>(&self, w: &mut W) {
        w.put_bool(*self)
    }
    fn read(r: &mut Reader) -> Result<Self> {
        r.bool()
    }
}

impl Record for String {
    const MIN_SIZE: usize = 4;
    fn write<W: Writer>(&self, w: &mut W) {
        w.put_string(self)
    }
    fn read(r: &mut Reader) -> Result<Self> {
        r.string()
    }
}

impl Record for Bytes {
    const MIN_SIZE: usize = 4;
    fn write<W: Writer>(&self, w: &mut W) {
        w.put_buffer(self)
    }
    fn read(r: &mut Reader) -> Result<Self> {
        r.buffer()
    }
}

/// A nullable buffer: znode data, where Java clients distinguish null from
/// empty (a length of -1 on the wire).
impl Record for Option<Bytes> {
    const MIN_SIZE: usize = 4;
    fn write<W: Writer>(&self, w: &mut W) {
        match self {
            Some(b) => w.put_buffer(b),
            None => w.put_i32_be(-1),
        }
    }
    fn read(r: &mut Reader) -> Result<Self> {
        r.nullable_buffer()
    }
}

impl<T: Record> Record for Vec<T> {
    const MIN_SIZE: usize = 4;
    fn write<W: Writer>(&self, w: &mut W) {
        w.put_vec(self)
    }
    fn read(r: &mut Reader) -> Result<Self> {
        r.vec()
    }
}

/// Declares a jute record: the struct and its codec, fields in wire order.
#[macro_export]
macro_rules! record {
    ($(#[$m:meta])* pub struct $name:ident { $( $(#[$fm:meta])* pub $f:ident : $t:ty ),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, PartialEq, Eq, Default)]
        pub struct $name { $( $(#[$fm])* pub $f: $t ),* }

        impl $crate::codec::Record for $name {
            const MIN_SIZE: usize = 0 $( + <$t as $crate::codec::Record>::MIN_SIZE )*;
            fn write<W: $crate::codec::Writer>(&self, _w: &mut W) {
                $( $crate::codec::Record::write(&self.$f, _w); )*
            }
            fn read(_r: &mut $crate::codec::Reader) -> $crate::codec::Result<Self> {
                Ok(Self { $( $f: <$t as $crate::codec::Record>::read(_r)? ),* })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_and_negative_lengths() {
        let mut r = Reader::from_slice(&(-1i32).to_be_bytes());
        assert_eq!(r.buffer().unwrap(), Bytes::new());
        let mut r = Reader::from_slice(&(-2i32).to_be_bytes());
        assert_eq!(r.buffer(), Err(DecodeError::BadLength(-2)));
    }

    #[test]
    fn huge_vector_count_is_refused_before_allocation() {
        let mut r = Reader::from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(
            r.vec::<String>(),
            Err(DecodeError::Truncated { .. })
        ));
    }
}
