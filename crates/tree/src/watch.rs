//! Watch registry: one-shot, persistent and persistent-recursive watches,
//! kept as two tables (data and child) the way ZooKeeper's DataTree does.

use std::collections::{HashMap, HashSet};

use jute::consts::event;

/// Who receives notifications: a connection id chosen by the server.
pub type WatcherId = u64;

/// Bits of the modes one watcher holds on one path.
const STANDARD: u8 = 1;
const PERSISTENT: u8 = 2;
const RECURSIVE: u8 = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Standard,
    Persistent,
    PersistentRecursive,
}

impl Mode {
    fn bit(self) -> u8 {
        match self {
            Mode::Standard => STANDARD,
            Mode::Persistent => PERSISTENT,
            Mode::PersistentRecursive => RECURSIVE,
        }
    }
}

/// Hash state of the tables: a trigger looks them up once per watcher it
/// fires, a thousand times for a fan-out.
type Fast = ahash::RandomState;

/// One table of watches (ZooKeeper's `WatchManager`).
#[derive(Debug, Default, Clone)]
pub struct WatchTable {
    by_path: HashMap<String, HashMap<WatcherId, u8, Fast>, Fast>,
    by_watcher: HashMap<WatcherId, HashSet<String, Fast>, Fast>,
    /// Recursive watches present; when zero, parents need not be scanned.
    recursive: usize,
}

impl WatchTable {
    pub fn add(&mut self, path: &str, w: WatcherId, mode: Mode) {
        let modes = self
            .by_path
            .entry(path.to_owned())
            .or_default()
            .entry(w)
            .or_insert(0);
        if mode == Mode::PersistentRecursive && *modes & RECURSIVE == 0 {
            self.recursive += 1;
        }
        *modes |= mode.bit();
        self.by_watcher
            .entry(w)
            .or_default()
            .insert(path.to_owned());
    }

    /// Fires the watches an event at `path` triggers and returns their
    /// watchers in id order, each once; one-shot ones are consumed.
    /// Watchers in `suppress` (sorted) are consumed but not returned.
    pub fn trigger(
        &mut self,
        path: &str,
        event_type: i32,
        suppress: &[WatcherId],
    ) -> Vec<WatcherId> {
        let mut fired = Vec::new();
        if self.by_path.is_empty() {
            return fired;
        }
        let Self {
            by_path,
            by_watcher,
            recursive,
        } = self;
        let mut cur = Some(path);
        let mut at_leaf = true;
        while let Some(p) = cur {
            if let Some(ws) = by_path.get_mut(p) {
                // One pass: a fan-out consumes most of the entries.
                ws.retain(|&w, modes| {
                    let mut hit =
                        *modes & RECURSIVE != 0 && event_type != event::NODE_CHILDREN_CHANGED;
                    if at_leaf && *modes & (STANDARD | PERSISTENT) != 0 {
                        hit = true;
                        *modes &= !STANDARD;
                    }
                    if hit && suppress.binary_search(&w).is_err() {
                        fired.push(w);
                    }
                    if *modes != 0 {
                        return true;
                    }
                    if let Some(ps) = by_watcher.get_mut(&w) {
                        ps.remove(p);
                        if ps.is_empty() {
                            by_watcher.remove(&w);
                        }
                    }
                    false
                });
                if ws.is_empty() {
                    by_path.remove(p);
                }
            }
            if *recursive == 0 {
                break;
            }
            at_leaf = false;
            cur = crate::path::parent(p);
        }
        fired.sort_unstable();
        // A recursive watch on an ancestor and one on the node: one event.
        fired.dedup();
        fired
    }

    /// Does `w` hold any watch on exactly `path`?
    pub fn contains(&self, path: &str, w: WatcherId) -> bool {
        self.by_path.get(path).is_some_and(|ws| ws.contains_key(&w))
    }

    /// Does `w` hold a watch of `mode` on `path`?
    pub fn contains_mode(&self, path: &str, w: WatcherId, mode: Mode) -> bool {
        self.by_path
            .get(path)
            .and_then(|ws| ws.get(&w))
            .is_some_and(|m| m & mode.bit() != 0)
    }

    /// Removes `w`'s watches on `path`: all modes, or only `mode`.
    pub fn remove(&mut self, path: &str, w: WatcherId, mode: Option<Mode>) -> bool {
        let Some(ws) = self.by_path.get_mut(path) else {
            return false;
        };
        let Some(modes) = ws.get_mut(&w) else {
            return false;
        };
        let bits = mode.map_or(STANDARD | PERSISTENT | RECURSIVE, Mode::bit);
        if *modes & bits == 0 {
            return false;
        }
        if *modes & bits & RECURSIVE != 0 {
            self.recursive -= 1;
        }
        *modes &= !bits;
        if *modes == 0 {
            ws.remove(&w);
            if ws.is_empty() {
                self.by_path.remove(path);
            }
            if let Some(ps) = self.by_watcher.get_mut(&w) {
                ps.remove(path);
                if ps.is_empty() {
                    self.by_watcher.remove(&w);
                }
            }
        }
        true
    }

    /// Drops every watch of a closed connection; returns how many paths it
    /// watched.
    pub fn remove_watcher(&mut self, w: WatcherId) -> usize {
        let Some(paths) = self.by_watcher.remove(&w) else {
            return 0;
        };
        let n = paths.len();
        for p in paths {
            if let Some(ws) = self.by_path.get_mut(&p) {
                if let Some(m) = ws.remove(&w) {
                    if m & RECURSIVE != 0 {
                        self.recursive -= 1;
                    }
                }
                if ws.is_empty() {
                    self.by_path.remove(&p);
                }
            }
        }
        n
    }

    /// Number of (watcher, path) pairs.
    pub fn count(&self) -> usize {
        self.by_watcher.values().map(HashSet::len).sum()
    }

    pub fn paths(&self) -> impl Iterator<Item = (&String, &HashMap<WatcherId, u8, Fast>)> {
        self.by_path.iter()
    }

    pub fn watchers(&self) -> impl Iterator<Item = (&WatcherId, &HashSet<String, Fast>)> {
        self.by_watcher.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn none() -> &'static [WatcherId] {
        &[]
    }

    #[test]
    fn one_shot_fires_once() {
        let mut t = WatchTable::default();
        t.add("/a", 1, Mode::Standard);
        assert_eq!(t.trigger("/a", event::NODE_DATA_CHANGED, none()).len(), 1);
        assert!(t.trigger("/a", event::NODE_DATA_CHANGED, none()).is_empty());
        assert_eq!(t.count(), 0);
    }

    #[test]
    fn persistent_and_recursive() {
        let mut t = WatchTable::default();
        t.add("/a", 1, Mode::Persistent);
        t.add("/", 2, Mode::PersistentRecursive);
        for _ in 0..2 {
            let f = t.trigger("/a", event::NODE_DATA_CHANGED, none());
            assert_eq!(f, [1, 2]);
        }
        // Recursive watches ignore child events; persistent ones at the node do not.
        let f = t.trigger("/a", event::NODE_CHILDREN_CHANGED, none());
        assert_eq!(f, [1]);
        // A parent's plain watch does not see a child's change.
        t.add("/b", 3, Mode::Standard);
        assert!(t.trigger("/b/c", event::NODE_CREATED, none()).contains(&2));
        assert!(!t.trigger("/b/c", event::NODE_CREATED, none()).contains(&3));
    }

    #[test]
    fn one_event_per_watcher_and_suppressed_ones_consumed() {
        let mut t = WatchTable::default();
        t.add("/", 1, Mode::PersistentRecursive);
        t.add("/a", 1, Mode::PersistentRecursive);
        t.add("/a", 3, Mode::Standard);
        t.add("/a", 2, Mode::Standard);
        t.add("/b", 2, Mode::Standard);
        // Watcher 1 holds two matching watches and hears once; 2 is
        // suppressed but its one-shot watch is spent all the same.
        assert_eq!(t.trigger("/a", event::NODE_DELETED, &[2]), [1, 3]);
        assert!(!t.contains("/a", 2) && !t.contains("/a", 3));
        let left: Vec<_> = t.watchers().map(|(w, ps)| (*w, ps.len())).collect();
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left.contains(&(1, 2)) && left.contains(&(2, 1)));
        assert_eq!(t.count(), 3);
    }

    #[test]
    fn standard_beside_persistent() {
        let mut t = WatchTable::default();
        t.add("/a", 1, Mode::Persistent);
        t.add("/a", 1, Mode::Standard);
        t.trigger("/a", event::NODE_DATA_CHANGED, none());
        assert!(t.contains_mode("/a", 1, Mode::Persistent));
        assert!(!t.contains_mode("/a", 1, Mode::Standard));
        assert!(t.remove("/a", 1, None));
        assert!(!t.remove("/a", 1, None));
        t.add("/x", 9, Mode::PersistentRecursive);
        t.remove_watcher(9);
        assert_eq!(t.recursive, 0);
    }
}
