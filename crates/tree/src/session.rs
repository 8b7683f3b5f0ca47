//! Session expiry: sessions sit in buckets rounded up to the tick, and a
//! bucket expires whole (ZooKeeper's `ExpiryQueue`). Time comes in as an
//! argument, in milliseconds.

use std::collections::{BTreeMap, HashMap, HashSet};

#[derive(Debug, Clone, Copy)]
struct Tracked {
    timeout: i32,
    expires: i64,
    closing: bool,
}

#[derive(Debug, Clone)]
pub struct SessionTracker {
    interval: i64,
    sessions: HashMap<i64, Tracked, ahash::RandomState>,
    buckets: BTreeMap<i64, HashSet<i64>>,
    next_id: i64,
}

/// The first session id a server hands out: its id in the top byte, a
/// time-derived value below (`SessionTrackerImpl.initializeNextSessionId`).
pub fn initial_session_id(server_id: i64, now_ms: i64) -> i64 {
    let mut next = ((now_ms << 24) as u64 >> 8) as i64;
    next |= server_id << 56;
    if next == i64::MIN {
        next += 1;
    }
    next
}

/// The session password: 16 bytes of `java.util.Random(id ^ 0xB3415C00)`,
/// so that any server (ours or Apache's) derives the same one.
pub fn password(session_id: i64) -> [u8; 16] {
    const MULT: u64 = 0x5DEECE66D;
    const MASK: u64 = (1 << 48) - 1;
    let mut seed = ((session_id ^ 0xB341_5C00) as u64 ^ MULT) & MASK;
    let mut out = [0u8; 16];
    let mut i = 0;
    while i < out.len() {
        seed = (seed.wrapping_mul(MULT).wrapping_add(0xB)) & MASK;
        let mut rnd = (seed >> 16) as u32;
        for _ in 0..4.min(out.len() - i) {
            out[i] = rnd as u8;
            rnd >>= 8;
            i += 1;
        }
    }
    out
}

impl SessionTracker {
    pub fn new(tick_ms: i64, first_id: i64) -> Self {
        SessionTracker {
            interval: tick_ms.max(1),
            sessions: HashMap::default(),
            buckets: BTreeMap::new(),
            next_id: first_id,
        }
    }

    pub fn next_session_id(&mut self) -> i64 {
        let id = self.next_id;
        self.next_id += 1;
        id
    }

    fn round_up(&self, t: i64) -> i64 {
        (t / self.interval + 1) * self.interval
    }

    /// Starts tracking a session (new, or restored from a snapshot).
    pub fn add(&mut self, id: i64, timeout: i32, now: i64) {
        self.sessions.insert(
            id,
            Tracked {
                timeout,
                expires: 0,
                closing: false,
            },
        );
        self.touch(id, timeout, now);
    }

    /// Pushes a session's expiry out; false if it is unknown or closing.
    pub fn touch(&mut self, id: i64, timeout: i32, now: i64) -> bool {
        let expires = self.round_up(now + timeout as i64);
        let Some(s) = self.sessions.get_mut(&id) else {
            return false;
        };
        if s.closing {
            return false;
        }
        s.timeout = timeout;
        if s.expires == expires {
            return true;
        }
        let old = s.expires;
        s.expires = expires;
        if let Some(b) = self.buckets.get_mut(&old) {
            b.remove(&id);
            if b.is_empty() {
                self.buckets.remove(&old);
            }
        }
        self.buckets.entry(expires).or_default().insert(id);
        true
    }

    /// Sessions whose bucket time has passed; they are marked closing.
    pub fn expire(&mut self, now: i64) -> Vec<i64> {
        let mut out = Vec::new();
        while let Some((&t, _)) = self.buckets.first_key_value() {
            if t > now {
                break;
            }
            let ids = self.buckets.remove(&t).unwrap_or_default();
            for id in ids {
                if let Some(s) = self.sessions.get_mut(&id) {
                    s.closing = true;
                    out.push(id);
                }
            }
        }
        out.sort_unstable();
        out
    }

    /// Expiry buckets in time order: (when, session ids), on the clock
    /// `now` is measured on (for the AdminServer's `dump`).
    pub fn expiry_buckets(&self) -> impl Iterator<Item = (i64, &HashSet<i64>)> {
        self.buckets.iter().map(|(t, ids)| (*t, ids))
    }

    /// When the next bucket falls due.
    pub fn next_expiry(&self) -> Option<i64> {
        self.buckets.keys().next().copied()
    }

    pub fn set_closing(&mut self, id: i64) {
        if let Some(s) = self.sessions.get_mut(&id) {
            s.closing = true;
        }
    }

    pub fn is_active(&self, id: i64) -> bool {
        self.sessions.get(&id).is_some_and(|s| !s.closing)
    }

    pub fn timeout(&self, id: i64) -> Option<i32> {
        self.sessions.get(&id).map(|s| s.timeout)
    }

    pub fn remove(&mut self, id: i64) {
        if let Some(s) = self.sessions.remove(&id) {
            if let Some(b) = self.buckets.get_mut(&s.expires) {
                b.remove(&id);
                if b.is_empty() {
                    self.buckets.remove(&s.expires);
                }
            }
        }
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_expire_whole() {
        let mut t = SessionTracker::new(2000, 100);
        let a = t.next_session_id();
        let b = t.next_session_id();
        t.add(a, 4000, 0);
        t.add(b, 6000, 0);
        assert_eq!(t.next_expiry(), Some(6000));
        assert!(t.expire(5999).is_empty());
        assert_eq!(t.expire(6000), vec![a]);
        assert!(
            !t.touch(a, 4000, 6000),
            "closing sessions cannot be touched"
        );
        assert!(t.touch(b, 6000, 7000));
        assert_eq!(t.expire(8000), Vec::<i64>::new());
        assert_eq!(t.expire(14000), vec![b]);
    }

    #[test]
    fn password_is_java_random() {
        // new java.util.Random(0 ^ 0xB3415C00L).nextBytes(new byte[16])
        let p = password(0);
        assert_eq!(p.len(), 16);
        assert_ne!(p, [0u8; 16]);
        assert_eq!(password(42), password(42));
        assert_ne!(password(42), password(43));
    }
}
