//! Deterministic simulation of ZAB (`zab::peer::Peer`, elections included)
//! on 3 and 5 servers, plus an observer in a third of the runs: message
//! delay and reordering across connections,
//! connection loss, partitions, crashes and restarts with and without the
//! loss of unsynced log entries. After every step: at most one leader per
//! epoch, committed txns never lost or reordered (every server's applied
//! state is a prefix of the one committed history). After the faults
//! stop, the ensemble must settle and everyone catch up.
//!
//! A failing seed prints itself; `ZAB_SEED=n` replays it exactly,
//! `ZAB_SEEDS=n` runs that many.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};

use zab::peer::{Disk, Entry, Out, Packet, Peer};
mod common;

use common::{config_with_observers, Rng};
use zab::wire::Notification;
use zab::{QuorumConfig, ServerState};

const TICK: i64 = 100;

#[derive(Debug)]
enum Ev {
    Notify {
        from: u64,
        n: Notification,
    },
    Packet {
        link: u64,
        p: Packet,
    },
    Connected {
        link: u64,
        follower: u64,
        leader: u64,
    },
    LinkDown {
        link: u64,
    },
    /// A follower (re)trying to reach its leader's quorum port.
    Connect {
        follower: u64,
        leader: u64,
        until: i64,
    },
    Durable {
        len: usize,
    },
    Tick,
}

struct Link {
    a: u64,
    b: u64,
    alive: bool,
    /// Last delivery time per direction (FIFO within a connection).
    last: [i64; 2],
}

struct Sim {
    rng: Rng,
    now: i64,
    seq: u64,
    cfg: QuorumConfig,
    peers: BTreeMap<u64, Option<Peer>>,
    disks: BTreeMap<u64, Disk>,
    /// Events are for one incarnation of a server.
    incarnation: BTreeMap<u64, u64>,
    queue: BinaryHeap<Reverse<(i64, u64)>>,
    events: BTreeMap<u64, (u64, u64, Ev)>,
    links: BTreeMap<u64, Link>,
    next_link: u64,
    cut: BTreeSet<(u64, u64)>,
    link_break_per_mille: u64,
    notify_loss_per_mille: u64,
    max_delay: i64,
    history: Vec<Entry>,
    leaders: BTreeMap<i64, u64>,
    next_value: u64,
    log: Vec<String>,
}

impl Sim {
    fn new(seed: u64, n: u64, obs: u64) -> Sim {
        let cfg = config_with_observers(n, obs);
        Sim {
            rng: Rng(seed),
            now: 0,
            seq: 0,
            cfg,
            peers: BTreeMap::new(),
            disks: BTreeMap::new(),
            incarnation: BTreeMap::new(),
            queue: BinaryHeap::new(),
            events: BTreeMap::new(),
            links: BTreeMap::new(),
            next_link: 1,
            cut: BTreeSet::new(),
            link_break_per_mille: 0,
            notify_loss_per_mille: 0,
            max_delay: 10,
            history: Vec::new(),
            leaders: BTreeMap::new(),
            next_value: 1,
            log: Vec::new(),
        }
    }

    fn note(&mut self, s: String) {
        self.log.push(format!("t={} {s}", self.now));
        if self.log.len() > 400 {
            self.log.drain(..200);
        }
    }

    fn at(&mut self, t: i64, node: u64, ev: Ev) {
        self.seq += 1;
        let inc = self.incarnation.get(&node).copied().unwrap_or(0);
        self.queue.push(Reverse((t, self.seq)));
        self.events.insert(self.seq, (node, inc, ev));
    }

    fn connected(&self, a: u64, b: u64) -> bool {
        !self.cut.contains(&(a.min(b), a.max(b)))
    }

    fn delay(&mut self) -> i64 {
        1 + self.rng.below(self.max_delay as u64) as i64
    }

    fn start(&mut self, id: u64) {
        let disk = self.disks.get(&id).cloned().unwrap_or_default();
        *self.incarnation.entry(id).or_insert(0) += 1;
        let (p, outs) = Peer::start(id, self.cfg.clone(), disk, self.now, TICK);
        self.peers.insert(id, Some(p));
        self.note(format!("{id} starts"));
        self.act(id, outs);
    }

    fn crash(&mut self, id: u64, lose_unsynced: bool) {
        let Some(Some(p)) = self.peers.get(&id) else {
            return;
        };
        let mut disk = p.disk.clone();
        if lose_unsynced {
            disk.log.truncate(disk.synced);
        }
        disk.synced = disk.log.len();
        self.disks.insert(id, disk);
        self.peers.insert(id, None);
        *self.incarnation.entry(id).or_insert(0) += 1;
        self.break_links_of(id);
        self.note(format!("{id} crashes (lose unsynced: {lose_unsynced})"));
    }

    fn break_link(&mut self, link: u64) {
        let Some(l) = self.links.get_mut(&link) else {
            return;
        };
        if !l.alive {
            return;
        }
        l.alive = false;
        let (a, b) = (l.a, l.b);
        let t = self.now + self.delay();
        self.at(t, a, Ev::LinkDown { link });
        let t = self.now + self.delay();
        self.at(t, b, Ev::LinkDown { link });
    }

    fn break_links_of(&mut self, id: u64) {
        let ids: Vec<u64> = self
            .links
            .iter()
            .filter(|(_, l)| l.alive && (l.a == id || l.b == id))
            .map(|(k, _)| *k)
            .collect();
        for l in ids {
            self.break_link(l);
        }
    }

    fn act(&mut self, id: u64, outs: Vec<Out>) {
        for o in outs {
            match o {
                Out::Notify { to, n } => {
                    if self.connected(id, to) && !self.rng.chance(self.notify_loss_per_mille) {
                        let t = self.now + self.delay();
                        self.at(t, to, Ev::Notify { from: id, n });
                    }
                }
                Out::Connect { leader } => {
                    self.note(format!("{id} follows {leader}"));
                    let until = self.now + 10 * TICK;
                    let t = self.now + self.delay();
                    self.at(
                        t,
                        id,
                        Ev::Connect {
                            follower: id,
                            leader,
                            until,
                        },
                    );
                }
                Out::Send { link, p } => {
                    if self.rng.chance(self.link_break_per_mille) {
                        self.break_link(link);
                        continue;
                    }
                    let d = self.delay();
                    let Some(l) = self.links.get_mut(&link) else {
                        continue;
                    };
                    if !l.alive {
                        continue;
                    }
                    let (to, dir) = if l.a == id { (l.b, 0) } else { (l.a, 1) };
                    if self.cut.contains(&(id.min(to), id.max(to))) {
                        self.break_link(link);
                        continue;
                    }
                    let t = (self.now + d).max(l.last[dir]);
                    l.last[dir] = t;
                    self.at(t, to, Ev::Packet { link, p });
                }
                Out::CloseLinks => self.break_links_of(id),
                Out::CloseLink { link } => self.break_link(link),
                Out::Sync => {
                    let len = match self.peers.get(&id) {
                        Some(Some(p)) => p.disk.log.len(),
                        _ => continue,
                    };
                    let t = self.now + 1 + self.rng.below(5) as i64;
                    self.at(t, id, Ev::Durable { len });
                }
                Out::Applied(entries) => {
                    let applied = match self.peers.get(&id) {
                        Some(Some(p)) => p.applied,
                        _ => continue,
                    };
                    let first = applied - entries.len();
                    for (i, e) in entries.iter().enumerate() {
                        let pos = first + i;
                        if pos < self.history.len() {
                            assert_eq!(
                                self.history[pos], *e,
                                "server {id} applied {e:?} at {pos}, but {:?} was committed there",
                                self.history[pos]
                            );
                        } else {
                            assert_eq!(pos, self.history.len(), "server {id} applied past a gap");
                            if let Some(last) = self.history.last() {
                                assert!(last.zxid < e.zxid, "committed history out of zxid order");
                            }
                            self.history.push(*e);
                        }
                    }
                }
                Out::Leading { epoch } => {
                    self.note(format!("{id} leads epoch {epoch}"));
                    if let Some(&other) = self.leaders.get(&epoch) {
                        assert_eq!(other, id, "two leaders established in epoch {epoch}");
                    }
                    self.leaders.insert(epoch, id);
                }
            }
        }
    }

    fn check(&self) {
        for (id, p) in &self.peers {
            let Some(p) = p else { continue };
            assert!(
                p.applied <= p.disk.log.len(),
                "server {id} applied past its log"
            );
            assert_eq!(
                &p.disk.log[..p.applied],
                &self.history[..p.applied],
                "server {id}'s applied state is not a prefix of the committed history"
            );
        }
    }

    fn step(&mut self) -> bool {
        let Some(Reverse((t, seq))) = self.queue.pop() else {
            return false;
        };
        self.now = t;
        let (node, inc, ev) = self.events.remove(&seq).expect("queued");
        if matches!(ev, Ev::Tick) {
            let ids: Vec<u64> = self.peers.keys().copied().collect();
            for id in ids {
                let outs = match self.peers.get_mut(&id) {
                    Some(Some(p)) => p.on_tick(t),
                    _ => continue,
                };
                self.act(id, outs);
            }
            self.at(t + TICK / 2, 0, Ev::Tick);
            self.check();
            return true;
        }
        if self.incarnation.get(&node).copied().unwrap_or(0) != inc {
            return true;
        }
        let now = self.now;
        let Some(Some(p)) = self.peers.get_mut(&node) else {
            return true;
        };
        let outs = match ev {
            Ev::Notify { from, n } => p.on_notification(from, n, now),
            Ev::Packet { link, p: pk } => {
                if !self.links.get(&link).is_some_and(|l| l.alive) {
                    return true;
                }
                p.on_packet(link, pk, now)
            }
            Ev::Connected {
                link,
                follower,
                leader,
            } => {
                if !self.links.get(&link).is_some_and(|l| l.alive) {
                    return true;
                }
                p.on_learner(link, follower, now);
                let _ = leader;
                let Some(Some(f)) = self.peers.get_mut(&follower) else {
                    return true;
                };
                let outs = f.on_connected(link, now);
                self.act(follower, outs);
                self.check();
                return true;
            }
            Ev::LinkDown { link } => p.on_link_down(link, now),
            Ev::Connect {
                follower,
                leader,
                until,
            } => {
                // As Learner.connectToLeader: retry until initLimit ticks.
                let up = self.connected(follower, leader)
                    && matches!(self.peers.get(&leader), Some(Some(l)) if l.state() == ServerState::Leading);
                let link = self.next_link;
                self.next_link += 1;
                if up {
                    let t = now + 1;
                    self.links.insert(
                        link,
                        Link {
                            a: follower,
                            b: leader,
                            alive: true,
                            last: [t, t],
                        },
                    );
                    self.at(
                        t,
                        leader,
                        Ev::Connected {
                            link,
                            follower,
                            leader,
                        },
                    );
                } else if now + 200 < until {
                    self.at(
                        now + 200,
                        follower,
                        Ev::Connect {
                            follower,
                            leader,
                            until,
                        },
                    );
                } else {
                    self.at(now + 1, follower, Ev::LinkDown { link });
                }
                return true;
            }
            Ev::Durable { len } => p.on_durable(len),
            Ev::Tick => unreachable!(),
        };
        self.act(node, outs);
        self.check();
        true
    }

    fn run_until(&mut self, t: i64) {
        // Bounded: events are finite per unit of time.
        let mut budget = 2_000_000u64;
        while self.queue.peek().is_some_and(|Reverse((at, _))| *at <= t) {
            budget -= 1;
            assert!(budget > 0, "event storm");
            self.step();
        }
        self.now = t;
    }

    fn write(&mut self) {
        let leaders: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| p.as_ref().is_some_and(|p| p.serving_leader().is_some()))
            .map(|(k, _)| *k)
            .collect();
        for id in leaders {
            let v = self.next_value;
            self.next_value += 1;
            let outs = self
                .peers
                .get_mut(&id)
                .unwrap()
                .as_mut()
                .unwrap()
                .propose(v);
            self.act(id, outs);
        }
    }

    fn settled(&self) -> Option<u64> {
        let leaders: Vec<u64> = self
            .peers
            .iter()
            .filter(|(_, p)| p.as_ref().is_some_and(|p| p.serving_leader().is_some()))
            .map(|(k, _)| *k)
            .collect();
        if leaders.len() != 1 {
            return None;
        }
        let l = leaders[0];
        self.peers
            .iter()
            .all(|(id, p)| *id == l || p.as_ref().is_some_and(|p| p.following() == Some(l)))
            .then_some(l)
    }
}

fn run_seed(seed: u64) {
    let mut rng = Rng(seed ^ 0x5eed);
    let voters = if rng.below(2) == 0 { 3 } else { 5 };
    // An observer in a third of the runs: it syncs and takes INFORMs under
    // the same faults, and its applied state is checked like the others'.
    let obs = u64::from(rng.below(3) == 0);
    let n = voters + obs;
    let mut sim = Sim::new(seed, voters, obs);
    sim.link_break_per_mille = rng.below(8);
    sim.notify_loss_per_mille = rng.below(200);
    sim.max_delay = 1 + rng.below(30) as i64;
    let faults = 4 + rng.below(8);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        sim.at(0, 0, Ev::Tick);
        for id in 1..=n {
            sim.start(id);
        }
        for _ in 0..faults {
            // Run with writes for a while, then inject a fault.
            let span = 200 + rng.below(2_000) as i64;
            let end = sim.now + span;
            while sim.now < end {
                let t = sim.now + 20;
                sim.run_until(t);
                sim.write();
            }
            match rng.below(4) {
                0 | 1 => {
                    let id = 1 + rng.below(n);
                    if matches!(sim.peers.get(&id), Some(Some(_))) {
                        let lose = rng.below(2) == 0;
                        sim.crash(id, lose);
                    } else {
                        sim.start(id);
                    }
                }
                2 => {
                    let a = 1 + rng.below(n);
                    sim.cut.clear();
                    for b in 1..=n {
                        if b != a {
                            sim.cut.insert((a.min(b), a.max(b)));
                        }
                    }
                    sim.note(format!("partition: {a} alone"));
                }
                _ => {
                    sim.cut.clear();
                    sim.note("partition healed".into());
                }
            }
        }
        // Heal: everything up, no loss; the ensemble must settle and every
        // server must hold the whole committed history.
        sim.cut.clear();
        sim.link_break_per_mille = 0;
        sim.notify_loss_per_mille = 0;
        for id in 1..=n {
            if !matches!(sim.peers.get(&id), Some(Some(_))) {
                sim.start(id);
            }
        }
        let deadline = sim.now + 300_000;
        while sim.settled().is_none() {
            assert!(
                sim.now < deadline,
                "no stable leader within 300 s of healing"
            );
            let t = sim.now + 50;
            sim.run_until(t);
        }
        sim.write();
        let t = sim.now + 2_000;
        sim.run_until(t);
        let want = sim.history.len();
        for (id, p) in &sim.peers {
            let p = p.as_ref().unwrap();
            assert_eq!(
                p.applied, want,
                "server {id} did not catch up ({} of {want})",
                p.applied
            );
        }
        assert!(want > 0, "nothing was ever committed");
    }));
    if let Err(e) = result {
        let tail: Vec<&String> = sim.log.iter().rev().take(25).collect();
        let states: Vec<String> = sim
            .peers
            .iter()
            .map(|(id, p)| match p {
                None => format!("{id}: down"),
                Some(p) => format!(
                    "{id}: {:?} following {:?} serving {:?} log {} applied {} synced {} epochs {}/{}",
                    p.state(),
                    p.following(),
                    p.serving_leader(),
                    p.disk.log.len(),
                    p.applied,
                    p.disk.synced,
                    p.disk.accepted_epoch,
                    p.disk.current_epoch
                ),
            })
            .collect();
        panic!(
            "ZAB simulation failed with ZAB_SEED={seed} (n={voters}, observers {obs}): {:?}\nservers: {states:#?}\nlast events, newest first: {tail:#?}",
            e.downcast_ref::<String>().map(String::as_str).or(e.downcast_ref::<&str>().copied())
        );
    }
}

#[test]
fn zab_survives_faults_on_thousands_of_seeds() {
    if let Ok(s) = std::env::var("ZAB_SEED") {
        run_seed(s.parse().expect("ZAB_SEED is a number"));
        return;
    }
    let count: u64 = std::env::var("ZAB_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3_000);
    for seed in 0..count {
        run_seed(seed);
    }
    // Seeds past the default count that once failed: each replays its fault
    // schedule on every run.
    for seed in REGRESSION_SEEDS {
        run_seed(*seed);
    }
}

/// 19394: a follower wrote currentEpoch at NEWLEADER before the txns of its
/// DIFF were durable, crashed losing them, then won an election on that
/// epoch with a stale log, and the committed txns it lacked were lost.
/// 30680: a server that accepted an epoch from a leader that failed before
/// establishing it could never join the leader elected next, whose epoch
/// was lower (it now steps down for it).
const REGRESSION_SEEDS: &[u64] = &[19394, 30680];
