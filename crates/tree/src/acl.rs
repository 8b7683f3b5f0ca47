//! ACLs: the reference-counted cache nodes point into (as in ZooKeeper's
//! snapshots), permission checks, and the built-in auth schemes.

use std::collections::HashMap;
use std::sync::Arc;

use base64::Engine;
use jute::consts::perms;
use jute::data::{Acl, Id};
use sha1::{Digest, Sha1};

/// The ACL id ZooKeeper reserves for OPEN_ACL_UNSAFE (world:anyone, all perms).
pub const OPEN_UNSAFE_ACL_ID: i64 = -1;

pub fn open_acl_unsafe() -> Vec<Acl> {
    vec![Acl::new(perms::ALL, "world", "anyone")]
}

/// Interns ACL lists so that many nodes share one copy; ids are the longs
/// ZooKeeper's snapshots store per node.
#[derive(Debug, Clone)]
pub struct AclCache {
    // ahash, not std's SipHash: every write looks its node's ACL up here.
    by_id: HashMap<i64, (Arc<Vec<Acl>>, u64), ahash::RandomState>,
    by_value: HashMap<Arc<[Acl]>, i64, ahash::RandomState>,
    next_id: i64,
    open: Arc<Vec<Acl>>,
    /// What an id missing from the cache grants: nothing (a fuzzy snapshot
    /// can name an ACL that only replaying the log adds).
    closed: Arc<Vec<Acl>>,
}

impl Default for AclCache {
    fn default() -> Self {
        AclCache {
            by_id: HashMap::default(),
            by_value: HashMap::default(),
            next_id: 1,
            open: Arc::new(open_acl_unsafe()),
            closed: Arc::new(vec![Acl::new(0, "world", "anyone")]),
        }
    }
}

impl AclCache {
    /// Returns the id for `acl`, adding one reference.
    pub fn intern(&mut self, acl: &[Acl]) -> i64 {
        if let Some(&id) = self.by_value.get(acl) {
            self.by_id.get_mut(&id).expect("cache maps agree").1 += 1;
            return id;
        }
        let id = self.next_id;
        self.next_id += 1;
        let v = Arc::new(acl.to_vec());
        self.by_value.insert(Arc::from(acl), id);
        self.by_id.insert(id, (v, 1));
        id
    }

    /// Drops one reference to `id`.
    pub fn release(&mut self, id: i64) {
        if id == OPEN_UNSAFE_ACL_ID {
            return;
        }
        if let Some(e) = self.by_id.get_mut(&id) {
            e.1 -= 1;
            if e.1 == 0 {
                let (v, _) = self.by_id.remove(&id).expect("present");
                self.by_value.remove(v.as_slice());
            }
        }
    }

    pub fn get(&self, id: i64) -> Arc<Vec<Acl>> {
        if id == OPEN_UNSAFE_ACL_ID {
            return self.open.clone();
        }
        self.by_id
            .get(&id)
            .map(|e| e.0.clone())
            .unwrap_or_else(|| self.closed.clone())
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// Every (id, acl list) for snapshots.
    pub fn entries(&self) -> impl Iterator<Item = (i64, &[Acl])> {
        self.by_id.iter().map(|(k, v)| (*k, v.0.as_slice()))
    }

    /// How many nodes refer to `id` (0 for an unknown id).
    pub fn ref_count(&self, id: i64) -> u64 {
        self.by_id.get(&id).map_or(0, |e| e.1)
    }

    /// The cache as a snapshot's ACL map leaves it, before any node is read
    /// (`ReferenceCountedACLCache.deserialize`): the stored ids, no
    /// references yet, and new ids continuing after the largest one.
    pub(crate) fn from_snapshot(entries: Vec<(i64, Vec<Acl>)>) -> AclCache {
        let mut c = AclCache::default();
        let mut max = 0;
        for (id, acl) in entries {
            max = max.max(id);
            if let Some((old, _)) = c.by_id.remove(&id) {
                if c.by_value.get(old.as_slice()) == Some(&id) {
                    c.by_value.remove(old.as_slice());
                }
            }
            c.by_value.insert(Arc::from(acl.as_slice()), id);
            c.by_id.insert(id, (Arc::new(acl), 0));
        }
        c.next_id = max + 1;
        c
    }

    /// One more node refers to `id`; false when the cache lacks it.
    pub(crate) fn add_usage(&mut self, id: i64) -> bool {
        if id == OPEN_UNSAFE_ACL_ID {
            return true;
        }
        match self.by_id.get_mut(&id) {
            Some(e) => {
                e.1 += 1;
                true
            }
            None => false,
        }
    }

    /// Drops the entries no node refers to (`purgeUnused`).
    pub(crate) fn purge_unused(&mut self) {
        let unused: Vec<i64> = self
            .by_id
            .iter()
            .filter(|(_, e)| e.1 == 0)
            .map(|(id, _)| *id)
            .collect();
        for id in unused {
            if let Some((v, _)) = self.by_id.remove(&id) {
                if self.by_value.get(v.as_slice()) == Some(&id) {
                    self.by_value.remove(v.as_slice());
                }
            }
        }
    }
}

/// `user:base64(sha1("user:password"))`, the digest scheme's id.
pub fn digest_id(user_password: &str) -> String {
    let user = user_password.split(':').next().unwrap_or("");
    let hash = Sha1::digest(user_password.as_bytes());
    format!(
        "{user}:{}",
        base64::engine::general_purpose::STANDARD.encode(hash)
    )
}

/// Java's `String.split(sep)` count (trailing empty parts dropped).
fn java_split_count(s: &str, sep: char) -> usize {
    let mut parts: Vec<&str> = s.split(sep).collect();
    while parts.len() > 1 && parts.last() == Some(&"") {
        parts.pop();
    }
    if parts.len() == 1 && parts[0].is_empty() {
        // "".split(":") is [""] in Java: one element.
        return 1;
    }
    parts.len()
}

fn ipv4_bytes(s: &str) -> Option<[u8; 4]> {
    let parts: Vec<&str> = s.split('.').collect();
    if parts.len() != 4 {
        return None;
    }
    let mut b = [0u8; 4];
    for (i, p) in parts.iter().enumerate() {
        let v: i32 = p.parse().ok()?;
        if !(0..=255).contains(&v) {
            return None;
        }
        b[i] = v as u8;
    }
    Some(b)
}

fn mask(b: &mut [u8], bits: usize) {
    let mut start = bits / 8;
    let mut m: u8 = !(((1u16 << (8 - (bits % 8))) - 1) as u8);
    while start < b.len() {
        b[start] &= m;
        m = 0;
        start += 1;
    }
}

fn ip_valid(expr: &str) -> bool {
    let mut it = expr.splitn(2, '/');
    let addr = it.next().unwrap_or("");
    if ipv4_bytes(addr).is_none() {
        return false;
    }
    match it.next() {
        None => true,
        Some(bits) => matches!(bits.parse::<i32>(), Ok(b) if (0..=32).contains(&b)),
    }
}

fn ip_matches(id: &str, expr: &str) -> bool {
    let mut it = expr.splitn(2, '/');
    let Some(mut acl_addr) = ipv4_bytes(it.next().unwrap_or("")) else {
        return false;
    };
    let bits = match it.next() {
        None => 32,
        Some(b) => match b.parse::<i32>() {
            Ok(b) if (0..=32).contains(&b) => b as usize,
            _ => return false,
        },
    };
    let Some(mut remote) = ipv4_bytes(id) else {
        return false;
    };
    mask(&mut acl_addr, bits);
    mask(&mut remote, bits);
    acl_addr == remote
}

/// Is `id` a well-formed id for `scheme` in an ACL being set?
pub fn scheme_valid(scheme: &str, id: &str) -> bool {
    match scheme {
        "digest" => java_split_count(id, ':') == 2,
        "ip" => ip_valid(id),
        // SASLAuthenticationProvider accepts any id; x509 ids are subject DNs.
        "sasl" | "x509" => true,
        _ => false,
    }
}

/// Does the authenticated identity `auth` satisfy the ACL entry id `acl`?
fn id_matches(auth: &Id, acl: &Id) -> bool {
    if auth.scheme != acl.scheme {
        return false;
    }
    match acl.scheme.as_str() {
        "digest" | "sasl" | "x509" => auth.id == acl.id,
        "ip" => ip_matches(&auth.id, &acl.id),
        _ => false,
    }
}

/// ZooKeeper's `checkACL`: does a client with identities `auth` hold `perm`
/// on a node with `acl`? Empty ACLs and the super identity allow everything.
pub fn check(acl: &[Acl], perm: i32, auth: &[Id]) -> bool {
    if acl.is_empty() || auth.iter().any(|a| a.scheme == "super") {
        return true;
    }
    acl.iter().any(|a| {
        a.perms & perm != 0
            && ((a.id.scheme == "world" && a.id.id == "anyone")
                || auth.iter().any(|i| id_matches(i, &a.id)))
    })
}

/// Schemes whose identities can stand in for the "auth" ACL scheme.
pub fn scheme_is_authenticated(scheme: &str) -> bool {
    // ip identities are not "authenticated" (IPAuthenticationProvider).
    matches!(scheme, "digest" | "sasl" | "x509")
}

/// ZooKeeper's `fixupACL`: de-duplicates, validates schemes and expands the
/// "auth" scheme to the caller's authenticated ids. None means InvalidACL.
pub fn fixup(acl: &[Acl], auth: &[Id]) -> Option<Vec<Acl>> {
    let mut uniq: Vec<&Acl> = Vec::with_capacity(acl.len());
    for a in acl {
        if !uniq.contains(&a) {
            uniq.push(a);
        }
    }
    if uniq.is_empty() {
        return None;
    }
    let mut out = Vec::with_capacity(uniq.len());
    for a in uniq {
        if a.id.scheme == "world" && a.id.id == "anyone" {
            out.push(a.clone());
        } else if a.id.scheme == "auth" {
            let mut any = false;
            for id in auth {
                // ip identities are not "authenticated"; "super" has no
                // provider in ZooKeeper's registry: both are skipped.
                if scheme_is_authenticated(&id.scheme) {
                    any = true;
                    out.push(Acl {
                        perms: a.perms,
                        id: id.clone(),
                    });
                }
            }
            if !any {
                return None;
            }
        } else if scheme_valid(&a.id.scheme, &a.id.id) {
            out.push(a.clone());
        } else {
            return None;
        }
    }
    Some(out)
}

/// The user name `whoAmI` reports for an identity.
pub fn user_name(id: &Id) -> String {
    match id.scheme.as_str() {
        "digest" => id.id.split(':').next().unwrap_or("").to_owned(),
        _ => id.id.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_matches_zookeeper() {
        // DigestAuthenticationProvider.generateDigest("super:test").
        assert_eq!(
            digest_id("super:test"),
            "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
        );
    }

    #[test]
    fn ip_masks() {
        assert!(ip_matches("10.1.2.3", "10.1.0.0/16"));
        assert!(!ip_matches("10.2.2.3", "10.1.0.0/16"));
        assert!(ip_matches("127.0.0.1", "127.0.0.1"));
        assert!(ip_valid("127.0.0.1/8"));
        assert!(!ip_valid("127.0.0.1/33"));
        assert!(!ip_valid("localhost"));
    }

    #[test]
    fn checks() {
        let acl = vec![Acl::new(perms::READ, "digest", "u:x")];
        assert!(!check(&acl, perms::READ, &[]));
        assert!(check(&acl, perms::READ, &[Id::new("digest", "u:x")]));
        assert!(!check(&acl, perms::WRITE, &[Id::new("digest", "u:x")]));
        assert!(check(&acl, perms::WRITE, &[Id::new("super", "")]));
        assert!(check(&open_acl_unsafe(), perms::ADMIN, &[]));
    }

    #[test]
    fn fixups() {
        let auth = vec![Id::new("ip", "127.0.0.1"), Id::new("digest", "u:x")];
        let out = fixup(&[Acl::new(31, "auth", "")], &auth).unwrap();
        assert_eq!(out, vec![Acl::new(31, "digest", "u:x")]);
        assert!(fixup(&[Acl::new(31, "auth", "")], &auth[..1]).is_none());
        assert!(fixup(&[], &auth).is_none());
        assert!(fixup(&[Acl::new(31, "digest", "nocolon")], &auth).is_none());
        assert!(fixup(&[Acl::new(31, "world", "someone")], &auth).is_none());
    }
}
