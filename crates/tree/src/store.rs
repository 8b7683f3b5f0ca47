//! Where the znodes live, laid out for memory: each node is one allocation
//! (a compact encoding of its name, ACL id, Stat and data), found through
//! an id.
//!
//! - Nodes sit in 16-byte slots numbered by id (a thin pointer to the node,
//!   its parent's id, its place in the parent's child list), in chunks of
//!   `CHUNK` slots. A chunk is shared by reference: `snapshot_copy` copies
//!   a table of chunk pointers, and a chunk is copied only when written
//!   while a snapshot holds it. Nodes are reference-counted, so that copy
//!   shares the chunk's nodes rather than copying their bytes.
//! - A node is found by (parent id, name) in a hash table of ids; a path is
//!   walked from the root one component at a time. Nodes do not store their
//!   path, and no path is stored twice.
//! - A parent's children are a list of ids (4 bytes a child, unordered, as
//!   ZooKeeper's HashSet is); each slot knows its place in its parent's
//!   list, so removal is O(1).
//!
//! The encoding stores the Stat fields a fresh node has at their defaults
//! as flags: a node as created costs 16 bytes of Stat, not 60. Data of
//! `digest::CACHED_CRC_MIN` bytes or more is followed by the CRC of the
//! node's path and data, from which its digest is had without its data.
//! With 100 bytes of data and a name of up to 4 bytes a node is one 128-byte
//! allocation (its 4-byte count included), 16 bytes of slot and about 15
//! bytes of index and child list (RSS at 1M such znodes, as `bench
//! compare` loads them: 176 bytes each, against 401 with a map of
//! `Arc<str>` paths to `Arc<Node>` and a `BTreeSet` of child paths).

use std::collections::HashMap;
use std::sync::Arc;

use hashbrown::HashTable;
use jute::data::StatPersisted;

pub(crate) const ROOT: u32 = 0;
const NO_PARENT: u32 = u32::MAX;
/// Slots per chunk: 63 slots of 16 bytes and the shared pointer's two
/// counts fill a 1 KiB allocation exactly.
const CHUNK: usize = 63;

// Blob flags: which Stat fields are stored (the others are at the value a
// fresh node has), and null data.
const F_NULL: u8 = 1;
const F_MZXID: u8 = 1 << 1;
const F_PZXID: u8 = 1 << 2;
const F_MTIME: u8 = 1 << 3;
const F_VERSION: u8 = 1 << 4;
const F_CVERSION: u8 = 1 << 5;
const F_AVERSION: u8 = 1 << 6;
const F_OWNER: u8 = 1 << 7;

/// A znode as read from the tree: its data borrowed, the rest copied out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node<'a> {
    /// None for null data (Java clients tell it from empty).
    pub data: Option<&'a [u8]>,
    pub acl: i64,
    pub stat: StatPersisted,
    pub num_children: usize,
    /// The CRC of path and data the store keeps for nodes with
    /// `digest::CACHED_CRC_MIN` bytes of data or more.
    pub(crate) crc: Option<u32>,
}

/// One node's encoding in an allocation of its own, behind a thin pointer
/// (8 bytes in a slot, not a slice's 16). The allocation starts with a
/// reference count, then the varint length of the rest, so the pointer
/// alone finds its end. Counted, not copied: a chunk copied because a
/// snapshot holds it (`Arc::make_mut`) shares its 63 nodes instead of
/// copying them, which at 1 KiB of data each was a burst of 63 KiB of
/// copies per chunk, right after every snapshot began, on the pipeline.
pub(crate) struct Blob(std::ptr::NonNull<u8>);

// SAFETY: a Blob's bytes never change after `encode` made them, and its
// count is atomic, as an Arc<[u8]>'s is.
unsafe impl Send for Blob {}
// SAFETY: as above; shared access only reads.
unsafe impl Sync for Blob {}

/// Bytes ahead of the encoding: the reference count.
const COUNT: usize = std::mem::size_of::<std::sync::atomic::AtomicU32>();

impl Blob {
    fn layout(encoded: usize) -> std::alloc::Layout {
        std::alloc::Layout::from_size_align(COUNT + encoded, COUNT)
            .expect("a node encoding is far below isize::MAX")
    }

    /// A blob of `encoded` bytes (length prefix included), filled by `fill`,
    /// which must write all of them.
    fn new(encoded: usize, fill: impl FnOnce(&mut Fill<'_>)) -> Blob {
        let layout = Blob::layout(encoded);
        // SAFETY: the layout is never zero-sized (COUNT > 0).
        let p = unsafe { std::alloc::alloc(layout) };
        let Some(p) = std::ptr::NonNull::new(p) else {
            std::alloc::handle_alloc_error(layout)
        };
        // SAFETY: p is valid for the layout's size and aligned for the
        // count; the bytes after it are ours, zeroed before a slice of
        // them is made (a slice of uninitialised bytes is not allowed).
        unsafe {
            p.as_ptr()
                .cast::<std::sync::atomic::AtomicU32>()
                .write(std::sync::atomic::AtomicU32::new(1));
            let body = p.as_ptr().add(COUNT);
            std::ptr::write_bytes(body, 0, encoded);
            let buf = std::slice::from_raw_parts_mut(body, encoded);
            let mut f = Fill { buf, at: 0 };
            fill(&mut f);
            debug_assert_eq!(f.at, encoded);
        }
        Blob(p)
    }

    fn count(&self) -> &std::sync::atomic::AtomicU32 {
        // SAFETY: `new` put an initialised, aligned count at the start.
        unsafe { &*self.0.as_ptr().cast::<std::sync::atomic::AtomicU32>() }
    }

    /// The whole encoding, length prefix included.
    fn raw(&self) -> &[u8] {
        // SAFETY: the encoding follows the count (see `new`).
        let p = unsafe { self.0.as_ptr().add(COUNT) };
        let (mut len, mut shift, mut i) = (0usize, 0, 0);
        loop {
            // SAFETY: the encoding starts with a complete varint (made by
            // `encode`), so each byte read up to its last is inside it.
            let x = unsafe { *p.add(i) };
            i += 1;
            len |= usize::from(x & 0x7f) << shift;
            if x & 0x80 == 0 {
                break;
            }
            shift += 7;
        }
        // SAFETY: `encode` made an encoding of exactly the prefix plus the
        // length it records.
        unsafe { std::slice::from_raw_parts(p, i + len) }
    }

    /// The encoding after the length prefix.
    pub(crate) fn body(&self) -> &[u8] {
        let raw = self.raw();
        let mut at = 0;
        varint(raw, &mut at);
        &raw[at..]
    }
}

impl Drop for Blob {
    fn drop(&mut self) {
        use std::sync::atomic::{fence, Ordering};
        // As Arc: the last owner sees every other owner's reads finished.
        if self.count().fetch_sub(1, Ordering::Release) != 1 {
            return;
        }
        fence(Ordering::Acquire);
        let layout = Blob::layout(self.raw().len());
        // SAFETY: `new` allocated this pointer with this layout, and no
        // other Blob refers to it any more.
        unsafe { std::alloc::dealloc(self.0.as_ptr(), layout) }
    }
}

impl Clone for Blob {
    fn clone(&self) -> Blob {
        let old = self
            .count()
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        // Never near in practice (one count per tree copy holding the
        // node); wrapping would free a node still in use.
        if old > u32::MAX / 2 {
            std::process::abort();
        }
        Blob(self.0)
    }
}

/// Writes a blob's bytes in place.
struct Fill<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl Fill<'_> {
    fn bytes(&mut self, b: &[u8]) {
        self.buf[self.at..self.at + b.len()].copy_from_slice(b);
        self.at += b.len();
    }

    fn byte(&mut self, b: u8) {
        self.bytes(&[b]);
    }

    fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.byte(v as u8 | 0x80);
            v >>= 7;
        }
        self.byte(v as u8);
    }
}

impl std::fmt::Debug for Blob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Blob({:?})", name_of(self.body()))
    }
}

/// Encodes a node. Layout: varint length of the rest, flags, varint name
/// length, name, zigzag varint ACL id, czxid, ctime, then the flagged Stat
/// fields, then the data, then `crc` if there is one: what
/// `digest::cached_crc` gives for the node, which `decode` tells from the
/// length of what follows the Stat.
pub(crate) fn encode(
    name: &str,
    data: Option<&[u8]>,
    acl: i64,
    s: &StatPersisted,
    crc: Option<u32>,
) -> Blob {
    debug_assert_eq!(
        crc.is_some(),
        data.is_some_and(|d| d.len() >= crate::digest::CACHED_CRC_MIN)
    );
    let zacl = ((acl << 1) ^ (acl >> 63)) as u64;
    let mut flags = 0u8;
    let mut len = 1 + varint_len(name.len() as u64) + name.len() + varint_len(zacl) + 16;
    len += data.map_or(0, <[u8]>::len);
    len += if crc.is_some() { 4 } else { 0 };
    let mut flag = |set: bool, f: u8, n: usize| {
        if set {
            flags |= f;
            len += n;
        }
    };
    flag(data.is_none(), F_NULL, 0);
    flag(s.mzxid != s.czxid, F_MZXID, 8);
    flag(s.pzxid != s.czxid, F_PZXID, 8);
    flag(s.mtime != s.ctime, F_MTIME, 8);
    flag(s.version != 0, F_VERSION, 4);
    flag(s.cversion != 0, F_CVERSION, 4);
    flag(s.aversion != 0, F_AVERSION, 4);
    flag(s.ephemeral_owner != 0, F_OWNER, 8);
    Blob::new(varint_len(len as u64) + len, |b| {
        b.varint(len as u64);
        b.byte(flags);
        b.varint(name.len() as u64);
        b.bytes(name.as_bytes());
        b.varint(zacl);
        b.bytes(&s.czxid.to_le_bytes());
        b.bytes(&s.ctime.to_le_bytes());
        // The Stat fields not at a fresh node's value, in flag order.
        let fields: [(u8, &[u8]); 7] = [
            (F_MZXID, &s.mzxid.to_le_bytes()),
            (F_PZXID, &s.pzxid.to_le_bytes()),
            (F_MTIME, &s.mtime.to_le_bytes()),
            (F_VERSION, &s.version.to_le_bytes()),
            (F_CVERSION, &s.cversion.to_le_bytes()),
            (F_AVERSION, &s.aversion.to_le_bytes()),
            (F_OWNER, &s.ephemeral_owner.to_le_bytes()),
        ];
        for (f, v) in fields {
            if flags & f != 0 {
                b.bytes(v);
            }
        }
        if let Some(d) = data {
            b.bytes(d);
        }
        if let Some(c) = crc {
            b.bytes(&c.to_le_bytes());
        }
    })
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Blobs are only made by `encode`, so reads within them cannot fail.
fn varint(b: &[u8], at: &mut usize) -> u64 {
    let mut v = 0u64;
    let mut shift = 0;
    loop {
        let x = b[*at];
        *at += 1;
        v |= u64::from(x & 0x7f) << shift;
        if x & 0x80 == 0 {
            return v;
        }
        shift += 7;
    }
}

fn name_of(b: &[u8]) -> &str {
    let mut at = 1;
    let n = varint(b, &mut at) as usize;
    // Names come from &str in `encode`.
    std::str::from_utf8(&b[at..at + n]).unwrap_or_default()
}

fn decode(b: &[u8], num_children: usize) -> Node<'_> {
    let flags = b[0];
    let mut at = 1;
    let n = varint(b, &mut at) as usize;
    at += n;
    let z = varint(b, &mut at);
    let acl = ((z >> 1) as i64) ^ -((z & 1) as i64);
    let i64_at = |at: &mut usize| {
        let v = i64::from_le_bytes(b[*at..*at + 8].try_into().expect("8 bytes"));
        *at += 8;
        v
    };
    let czxid = i64_at(&mut at);
    let ctime = i64_at(&mut at);
    let opt64 = |f: u8, default: i64, at: &mut usize| {
        if flags & f != 0 {
            i64_at(at)
        } else {
            default
        }
    };
    let mzxid = opt64(F_MZXID, czxid, &mut at);
    let pzxid = opt64(F_PZXID, czxid, &mut at);
    let mtime = opt64(F_MTIME, ctime, &mut at);
    let opt32 = |f: u8, at: &mut usize| {
        if flags & f != 0 {
            let v = i32::from_le_bytes(b[*at..*at + 4].try_into().expect("4 bytes"));
            *at += 4;
            v
        } else {
            0
        }
    };
    let version = opt32(F_VERSION, &mut at);
    let cversion = opt32(F_CVERSION, &mut at);
    let aversion = opt32(F_AVERSION, &mut at);
    let ephemeral_owner = if flags & F_OWNER != 0 {
        i64_at(&mut at)
    } else {
        0
    };
    // Data of CACHED_CRC_MIN bytes or more is followed by its CRC; less
    // data is all that is left, so the length tells which.
    let (data, crc) = match b.len() - at {
        _ if flags & F_NULL != 0 => (None, None),
        n if n >= crate::digest::CACHED_CRC_MIN + 4 => {
            let end = b.len() - 4;
            let c = u32::from_le_bytes(b[end..].try_into().expect("4 bytes"));
            (Some(&b[at..end]), Some(c))
        }
        _ => (Some(&b[at..]), None),
    };
    Node {
        data,
        crc,
        acl,
        stat: StatPersisted {
            czxid,
            mzxid,
            ctime,
            mtime,
            version,
            cversion,
            aversion,
            ephemeral_owner,
            pzxid,
        },
        num_children,
    }
}

#[derive(Debug, Clone, Default)]
struct Slot {
    blob: Option<Blob>,
    parent: u32,
    /// Index in the parent's child list.
    pos: u32,
}

#[derive(Debug, Clone)]
struct Chunk([Slot; CHUNK]);

impl Default for Chunk {
    fn default() -> Self {
        Chunk(std::array::from_fn(|_| Slot::default()))
    }
}

fn slot(chunks: &[Arc<Chunk>], id: u32) -> &Slot {
    &chunks[id as usize / CHUNK].0[id as usize % CHUNK]
}

fn slot_mut(chunks: &mut [Arc<Chunk>], id: u32) -> &mut Slot {
    &mut Arc::make_mut(&mut chunks[id as usize / CHUNK]).0[id as usize % CHUNK]
}

fn blob(chunks: &[Arc<Chunk>], id: u32) -> &[u8] {
    slot(chunks, id).blob.as_ref().map_or(&[], Blob::body)
}

fn key_hash(h: &ahash::RandomState, parent: u32, name: &str) -> u64 {
    h.hash_one((parent, name))
}

#[derive(Debug, Clone)]
pub(crate) struct Store {
    chunks: Vec<Arc<Chunk>>,
    free: Vec<u32>,
    /// Ids by (parent id, name); the root is not in it.
    index: HashTable<u32>,
    hasher: ahash::RandomState,
    /// Child lists of nodes that have children. Shared, like chunks.
    kids: HashMap<u32, Arc<Vec<u32>>, ahash::RandomState>,
    len: usize,
}

impl Store {
    /// A store holding only the root, with `root` as its encoded node.
    pub(crate) fn new(root: Blob) -> Store {
        let mut s = Store {
            chunks: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            hasher: ahash::RandomState::new(),
            kids: HashMap::default(),
            len: 0,
        };
        let id = s.alloc();
        debug_assert_eq!(id, ROOT);
        let sl = slot_mut(&mut s.chunks, id);
        sl.blob = Some(root);
        sl.parent = NO_PARENT;
        s.len = 1;
        s
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    fn alloc(&mut self) -> u32 {
        if let Some(id) = self.free.pop() {
            return id;
        }
        let id = self.chunks.len() * CHUNK;
        self.chunks.push(Arc::default());
        let first = id as u32;
        // Hand out the chunk's slots in order: the rest go on the free
        // list, last first.
        self.free.extend((first + 1..first + CHUNK as u32).rev());
        first
    }

    pub(crate) fn child(&self, parent: u32, name: &str) -> Option<u32> {
        let h = key_hash(&self.hasher, parent, name);
        let chunks = &self.chunks;
        self.index
            .find(h, |&id| {
                slot(chunks, id).parent == parent && name_of(blob(chunks, id)) == name
            })
            .copied()
    }

    /// The id of the node at `path`, walking from the root.
    pub(crate) fn lookup(&self, path: &str) -> Option<u32> {
        if path == "/" {
            return Some(ROOT);
        }
        let rest = path.strip_prefix('/')?;
        let mut id = ROOT;
        for name in rest.split('/') {
            if name.is_empty() {
                return None;
            }
            id = self.child(id, name)?;
        }
        Some(id)
    }

    pub(crate) fn get(&self, id: u32) -> Option<Node<'_>> {
        let b = self.chunks.get(id as usize / CHUNK)?.0[id as usize % CHUNK]
            .blob
            .as_ref()?
            .body();
        Some(decode(b, self.num_children(id)))
    }

    pub(crate) fn num_children(&self, id: u32) -> usize {
        self.kids.get(&id).map_or(0, |k| k.len())
    }

    pub(crate) fn children(&self, id: u32) -> &[u32] {
        self.kids.get(&id).map_or(&[], |k| k.as_slice())
    }

    pub(crate) fn name(&self, id: u32) -> &str {
        name_of(blob(&self.chunks, id))
    }

    /// The full path of a live node.
    pub(crate) fn path_of(&self, mut id: u32) -> String {
        let mut names = Vec::new();
        while id != ROOT {
            let s = slot(&self.chunks, id);
            names.push(name_of(s.blob.as_ref().map_or(&[], Blob::body)));
            id = s.parent;
            if id == NO_PARENT {
                break;
            }
        }
        if names.is_empty() {
            return "/".into();
        }
        let mut p = String::new();
        for n in names.iter().rev() {
            p.push('/');
            p.push_str(n);
        }
        p
    }

    /// Adds a node under `parent`, named as its blob says; None if the
    /// parent has a child of that name already.
    pub(crate) fn insert(&mut self, parent: u32, node: Blob) -> Option<u32> {
        if self.child(parent, name_of(node.body())).is_some() {
            return None;
        }
        let id = self.insert_unindexed(parent, node);
        let h = key_hash(&self.hasher, parent, self.name(id));
        let (chunks, hasher) = (&self.chunks, &self.hasher);
        self.index.insert_unique(h, id, |&i| {
            key_hash(hasher, slot(chunks, i).parent, name_of(blob(chunks, i)))
        });
        Some(id)
    }

    /// `insert` without the index: for a bulk load, which calls
    /// `build_index` at the end.
    pub(crate) fn insert_unindexed(&mut self, parent: u32, blob: Blob) -> u32 {
        let id = self.alloc();
        let kids = Arc::make_mut(self.kids.entry(parent).or_default());
        let pos = kids.len() as u32;
        kids.push(id);
        let s = slot_mut(&mut self.chunks, id);
        s.blob = Some(blob);
        s.parent = parent;
        s.pos = pos;
        self.len += 1;
        id
    }

    /// Builds the index at its final size (room for `extra` more) after a
    /// bulk load; the error is the path of a node that appears twice.
    pub(crate) fn build_index(&mut self, extra: usize) -> Result<(), String> {
        let (chunks, hasher) = (&self.chunks, &self.hasher);
        let rehash = |&i: &u32| key_hash(hasher, slot(chunks, i).parent, name_of(blob(chunks, i)));
        let mut index = HashTable::with_capacity(self.len + extra);
        for (c, chunk) in chunks.iter().enumerate() {
            for (k, s) in chunk.0.iter().enumerate() {
                let id = (c * CHUNK + k) as u32;
                if id == ROOT || s.blob.is_none() {
                    continue;
                }
                let name = name_of(blob(chunks, id));
                let h = key_hash(hasher, s.parent, name);
                let dup = index.find(h, |&o: &u32| {
                    slot(chunks, o).parent == s.parent && name_of(blob(chunks, o)) == name
                });
                if let Some(&o) = dup {
                    return Err(self.path_of(o));
                }
                index.insert_unique(h, id, rehash);
            }
        }
        self.index = index;
        Ok(())
    }

    /// Replaces a node's encoding (its name must not change).
    pub(crate) fn replace(&mut self, id: u32, blob: Blob) {
        debug_assert_eq!(name_of(blob.body()), self.name(id));
        slot_mut(&mut self.chunks, id).blob = Some(blob);
    }

    /// Removes a node that has no children; returns its encoding.
    pub(crate) fn remove(&mut self, id: u32) -> Blob {
        debug_assert!(id != ROOT && self.num_children(id) == 0);
        let (parent, pos, h) = {
            let s = slot(&self.chunks, id);
            let h = key_hash(&self.hasher, s.parent, name_of(blob(&self.chunks, id)));
            (s.parent, s.pos, h)
        };
        if let Ok(e) = self.index.find_entry(h, |&i| i == id) {
            e.remove();
        }
        if let Some(k) = self.kids.get_mut(&parent) {
            let k = Arc::make_mut(k);
            k.swap_remove(pos as usize);
            if let Some(&moved) = k.get(pos as usize) {
                slot_mut(&mut self.chunks, moved).pos = pos;
            }
            if k.is_empty() {
                self.kids.remove(&parent);
            }
        }
        let s = slot_mut(&mut self.chunks, id);
        let b = s.blob.take().expect("a live node");
        *s = Slot::default();
        self.free.push(id);
        self.len -= 1;
        b
    }

    pub(crate) fn blob(&self, id: u32) -> &[u8] {
        blob(&self.chunks, id)
    }
}

/// A node decoded from its blob, for the tree to change and re-encode.
pub(crate) fn decode_blob(b: &[u8]) -> Node<'_> {
    decode(b, 0)
}

pub(crate) fn blob_name(b: &[u8]) -> &str {
    name_of(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn stat(z: i64) -> StatPersisted {
        StatPersisted {
            czxid: z,
            mzxid: z,
            ctime: 7,
            mtime: 7,
            pzxid: z,
            ..Default::default()
        }
    }

    #[test]
    fn encoding_round_trips_and_fresh_nodes_are_small() {
        let s = stat(0x1_0000_0005);
        let b = encode("n123", Some(&[b'x'; 100]), -1, &s, None);
        // Count, length, flags, name length, name, acl, czxid, ctime, data:
        // one 128-byte allocation.
        assert_eq!(COUNT + b.raw().len(), 4 + 1 + 1 + 1 + 4 + 1 + 16 + 100);
        let n = decode(b.body(), 0);
        assert_eq!((n.data, n.acl, n.stat), (Some(&[b'x'; 100][..]), -1, s));
        assert_eq!(name_of(b.body()), "n123");
        // A copy shares the bytes, and outlives the original.
        let c = b.clone();
        assert_eq!((c.0, c.body()), (b.0, b.body()));
        drop(b);
        assert_eq!(
            (c.count().load(Ordering::Relaxed), name_of(c.body())),
            (1, "n123")
        );
        for v in [0u64, 1, 127, 128, 16383, 16384, u64::MAX] {
            let mut x = [0u8; 10];
            let mut f = Fill { buf: &mut x, at: 0 };
            f.varint(v);
            let n = f.at;
            assert_eq!((n, varint(&x, &mut 0)), (varint_len(v), v));
        }
        // Lengths that take a longer prefix, and each side of the length
        // from which the data's CRC follows it.
        let min = crate::digest::CACHED_CRC_MIN;
        for n in [
            100,
            120,
            min - 4,
            min - 1,
            min,
            min + 3,
            min + 4,
            16380,
            20000,
        ] {
            let d = vec![7u8; n];
            let crc = crate::digest::cached_crc("/x", Some(&d));
            assert_eq!(crc.is_some(), n >= min);
            let b = encode("x", Some(&d), 5, &s, crc);
            let got = decode(b.body(), 0);
            assert_eq!((got.data, got.crc, got.stat), (Some(&d[..]), crc, s));
        }
        let full = StatPersisted {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: -5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: i64::MIN,
            pzxid: 9,
        };
        for (data, acl) in [
            (None, i64::MAX),
            (Some(&b""[..]), i64::MIN),
            (Some(&b"d"[..]), 3),
        ] {
            let b = encode("", data, acl, &full, None);
            let n = decode(b.body(), 4);
            assert_eq!(
                (n.data, n.acl, n.stat, n.num_children),
                (data, acl, full, 4)
            );
        }
    }

    #[test]
    fn slots_and_chunks_pack() {
        // A thin pointer and two ids; 63 of them and an Arc's two counts
        // make exactly 1 KiB (an allocator size class).
        assert_eq!(std::mem::size_of::<Slot>(), 16);
        assert_eq!(std::mem::size_of::<Chunk>() + 16, 1024);
    }

    #[test]
    fn insert_lookup_remove_and_copies() {
        let mut st = Store::new(encode("", Some(b""), -1, &stat(0), None));
        let a = st
            .insert(ROOT, encode("a", None, 1, &stat(1), None))
            .unwrap();
        let b = st
            .insert(a, encode("b", Some(b"x"), 1, &stat(2), None))
            .unwrap();
        let c = st
            .insert(a, encode("c", Some(b"y"), 1, &stat(3), None))
            .unwrap();
        assert!(st.insert(a, encode("b", None, 1, &stat(4), None)).is_none());
        assert_eq!(st.lookup("/a/b"), Some(b));
        assert_eq!(st.lookup("/a/c"), Some(c));
        assert_eq!(st.lookup("/a/"), None);
        assert_eq!(st.lookup("a"), None);
        assert_eq!(st.path_of(c), "/a/c");
        assert_eq!(st.path_of(ROOT), "/");
        let copy = st.clone();
        st.remove(b);
        assert_eq!(st.lookup("/a/b"), None);
        assert_eq!(st.children(a), &[c]);
        assert_eq!(st.lookup("/a/c"), Some(c));
        // The copy is untouched, and ids are reused.
        assert_eq!(copy.lookup("/a/b"), Some(b));
        assert_eq!(copy.get(b).unwrap().data, Some(&b"x"[..]));
        let d = st.insert(a, encode("d", None, 1, &stat(5), None)).unwrap();
        assert_eq!(d, b);
        assert_eq!(copy.get(b).unwrap().stat.czxid, 2);
        assert_eq!(st.len(), 4);
        // Many nodes: chunks and index growth.
        for i in 0..1000 {
            st.insert(c, encode(&format!("k{i}"), None, 1, &stat(i), None))
                .unwrap();
        }
        for i in (0..1000).step_by(3) {
            let id = st.lookup(&format!("/a/c/k{i}")).unwrap();
            st.remove(id);
        }
        for i in 0..1000 {
            let id = st.lookup(&format!("/a/c/k{i}"));
            assert_eq!(id.is_some(), i % 3 != 0, "{i}");
            if let Some(id) = id {
                assert_eq!(st.get(id).unwrap().stat.czxid, i);
                assert_eq!(st.children(c)[slot(&st.chunks, id).pos as usize], id);
            }
        }
        assert_eq!(st.num_children(c), 666);
    }
}
