//! Deterministic simulation of FastLeaderElection: servers as
//! `zab::Election` state machines, a network with delay, loss and
//! partitions, driven by a seeded RNG. A failing seed prints itself;
//! `ELECTION_SEED=n` replays one.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};

use zab::election::Out;
mod common;

use common::{config, Rng};
use zab::wire::Notification;
use zab::{Election, ServerState};

/// (delivery time, sequence, from, to, encoded notification).
type InFlight = Reverse<(i64, u64, u64, u64, Vec<u8>)>;

struct Sim {
    rng: Rng,
    now: i64,
    nodes: BTreeMap<u64, Election>,
    /// When each server started (None: not running).
    up: BTreeMap<u64, bool>,
    /// When a decided server gives up on a leader that does not lead it.
    give_up_at: BTreeMap<u64, i64>,
    queue: BinaryHeap<InFlight>,
    seq: u64,
    loss_pct: u64,
    max_delay: i64,
    /// Pairs that cannot talk (both directions).
    cut: Vec<(u64, u64)>,
    history: Vec<String>,
}

impl Sim {
    fn new(seed: u64, n: u64, loss_pct: u64, max_delay: i64) -> Sim {
        let cfg = config(n);
        let mut rng = Rng(seed);
        let mut nodes = BTreeMap::new();
        for id in 1..=n {
            // Differing histories: some servers are ahead.
            let epoch = rng.below(3) as i64;
            let zxid = zab::make_zxid(epoch, rng.below(4) as i64);
            nodes.insert(id, Election::new(id, cfg.clone(), zxid, epoch));
        }
        Sim {
            rng,
            now: 0,
            nodes,
            up: BTreeMap::new(),
            give_up_at: BTreeMap::new(),
            queue: BinaryHeap::new(),
            seq: 0,
            loss_pct,
            max_delay,
            cut: Vec::new(),
            history: Vec::new(),
        }
    }

    fn connected(&self, a: u64, b: u64) -> bool {
        !self
            .cut
            .iter()
            .any(|&(x, y)| (x, y) == (a, b) || (x, y) == (b, a))
    }

    fn emit(&mut self, from: u64, outs: Vec<Out>) {
        for o in outs {
            match o {
                Out::Send { to, n } => {
                    if self.rng.chance(self.loss_pct * 10) || !self.connected(from, to) {
                        continue;
                    }
                    let at = self.now + 1 + self.rng.below(self.max_delay as u64) as i64;
                    self.seq += 1;
                    self.queue
                        .push(Reverse((at, self.seq, from, to, n.encode().to_vec())));
                }
                Out::Decided { state, vote } => {
                    self.history.push(format!(
                        "t={} {from} decided {} leader={} epoch={}",
                        self.now,
                        state.name(),
                        vote.leader,
                        vote.election_epoch
                    ));
                    self.give_up_at.insert(from, self.now + 2_000);
                }
                Out::VoterLooking { .. } => {}
            }
        }
    }

    fn start(&mut self, id: u64) {
        self.up.insert(id, true);
        let e = self.nodes.get_mut(&id).unwrap();
        let (z, ep) = (e.current_vote().zxid, e.current_vote().peer_epoch);
        let outs = e.start(self.now, z.max(0), ep.max(0));
        self.history.push(format!("t={} {id} starts", self.now));
        self.emit(id, outs);
    }

    fn running(&self, id: u64) -> bool {
        self.up.get(&id).copied().unwrap_or(false)
    }

    /// Who leads `id` right now, if it is following a leading server of
    /// the same vote (what ZAB would establish).
    fn follows(&self, id: u64) -> Option<u64> {
        let e = &self.nodes[&id];
        if !self.running(id) {
            return None;
        }
        match e.state() {
            ServerState::Leading => Some(id),
            ServerState::Following => {
                let l = e.current_vote().leader as u64;
                let le = self.nodes.get(&l)?;
                (self.running(l) && le.state() == ServerState::Leading && self.connected(id, l))
                    .then_some(l)
            }
            _ => None,
        }
    }

    fn step_until(&mut self, until: i64) {
        while self.now < until {
            // Next event: a delivery, or a tick every 10 ms.
            let next_msg = self.queue.peek().map(|Reverse(m)| m.0).unwrap_or(i64::MAX);
            let next_tick = (self.now / 10 + 1) * 10;
            if next_msg <= next_tick {
                let Reverse((at, _, from, to, bytes)) = self.queue.pop().unwrap();
                self.now = at;
                if !self.running(to) {
                    continue;
                }
                let n = Notification::decode(&bytes).expect("our own encoding decodes");
                let outs = self
                    .nodes
                    .get_mut(&to)
                    .unwrap()
                    .on_message(from, n, self.now);
                self.emit(to, outs);
            } else {
                self.now = next_tick;
                let ids: Vec<u64> = self.nodes.keys().copied().collect();
                for id in ids {
                    if !self.running(id) {
                        continue;
                    }
                    let outs = self.nodes.get_mut(&id).unwrap().on_tick(self.now);
                    self.emit(id, outs);
                    // The ZAB layer's part: a follower whose leader does
                    // not lead it, or a leader without a following quorum,
                    // goes back to looking after a while.
                    let st = self.nodes[&id].state();
                    if st != ServerState::Looking {
                        let ok = match st {
                            ServerState::Leading => {
                                let fs: std::collections::BTreeSet<u64> = self
                                    .nodes
                                    .keys()
                                    .copied()
                                    .filter(|&f| self.follows(f) == Some(id))
                                    .collect();
                                self.nodes[&id].config().is_quorum(&fs)
                            }
                            _ => self.follows(id).is_some(),
                        };
                        let at = self.give_up_at.get(&id).copied().unwrap_or(0);
                        if ok {
                            self.give_up_at.insert(id, self.now + 2_000);
                        } else if self.now >= at {
                            self.history.push(format!("t={} {id} gives up", self.now));
                            self.start(id);
                        }
                    }
                }
                self.check();
            }
        }
    }

    /// Safety: never two servers each followed by a quorum.
    fn check(&self) {
        let mut backing: BTreeMap<u64, std::collections::BTreeSet<u64>> = BTreeMap::new();
        for &id in self.nodes.keys() {
            if let Some(l) = self.follows(id) {
                backing.entry(l).or_default().insert(id);
            }
        }
        let cfg = self.nodes[&1].config();
        let led: Vec<u64> = backing
            .iter()
            .filter(|(_, s)| cfg.is_quorum(s))
            .map(|(l, _)| *l)
            .collect();
        assert!(
            led.len() <= 1,
            "two leaders with quorums at t={}: {led:?}",
            self.now
        );
    }

    /// Liveness: one leader, everyone running follows it.
    fn settled(&self) -> Option<u64> {
        let leaders: Vec<u64> = self
            .nodes
            .keys()
            .copied()
            .filter(|&i| self.running(i) && self.nodes[&i].state() == ServerState::Leading)
            .collect();
        if leaders.len() != 1 {
            return None;
        }
        let l = leaders[0];
        self.nodes
            .keys()
            .all(|&i| !self.running(i) || self.follows(i) == Some(l))
            .then_some(l)
    }
}

fn run_seed(seed: u64) {
    let mut rng = Rng(seed ^ 0xdead_beef);
    let n = if rng.chance(500) { 3 } else { 5 };
    let loss = rng.below(20);
    let delay = 1 + rng.below(50) as i64;
    let mut sim = Sim::new(seed, n, loss, delay);
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        for id in 1..=n {
            sim.now += rng.below(300) as i64;
            sim.start(id);
        }
        // A partition for a while, then healed.
        if rng.chance(400) {
            let a = 1 + rng.below(n);
            for b in 1..=n {
                if b != a {
                    sim.cut.push((a, b));
                }
            }
            let t = sim.now + rng.below(3_000) as i64;
            sim.step_until(t);
            sim.cut.clear();
        }
        // Faults stop; the ensemble must settle within bounded time.
        sim.loss_pct = 0;
        let deadline = sim.now + 120_000;
        while sim.settled().is_none() {
            assert!(
                sim.now < deadline,
                "no single leader within 120 s of healing"
            );
            let t = sim.now + 100;
            sim.step_until(t);
        }
    }));
    if let Err(e) = result {
        let tail: Vec<&String> = sim.history.iter().rev().take(30).collect();
        panic!(
            "election simulation failed with ELECTION_SEED={seed} (n={n}, loss={loss}%, delay<{delay}ms): {:?}\nlast events (newest first): {tail:#?}",
            e.downcast_ref::<String>().map(String::as_str).or(e.downcast_ref::<&str>().copied())
        );
    }
}

#[test]
fn five_servers_started_in_order_elect_the_third() {
    // The seed documents' scenario: empty data, started one by one with
    // time to exchange votes in between.
    let mut sim = Sim::new(7, 5, 0, 5);
    for e in sim.nodes.values_mut() {
        *e = Election::new(e.current_vote().leader as u64, config(5), 0, 0);
    }
    for id in 1..=5 {
        sim.start(id);
        let t = sim.now + 1_000;
        sim.step_until(t);
        if id == 3 {
            assert_eq!(sim.nodes[&3].state(), ServerState::Leading);
            assert_eq!(sim.follows(1), Some(3));
            assert_eq!(sim.follows(2), Some(3));
        }
    }
    assert_eq!(sim.settled(), Some(3));
}

#[test]
fn thousands_of_seeds_elect_exactly_one_leader() {
    if let Ok(s) = std::env::var("ELECTION_SEED") {
        run_seed(s.parse().expect("ELECTION_SEED is a number"));
        return;
    }
    let count: u64 = std::env::var("ELECTION_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000);
    for seed in 0..count {
        run_seed(seed);
    }
}

/// Delivers `outs` of server `from` and every reply at once (no delay),
/// skipping servers that are down; returns the decisions made.
fn deliver_now(
    nodes: &mut BTreeMap<u64, Election>,
    from: u64,
    outs: Vec<Out>,
    now: i64,
) -> Vec<(u64, ServerState)> {
    let mut queue: std::collections::VecDeque<(u64, Out)> =
        outs.into_iter().map(|o| (from, o)).collect();
    let mut decided = Vec::new();
    while let Some((src, o)) = queue.pop_front() {
        match o {
            Out::Send { to, n } => {
                if let Some(e) = nodes.get_mut(&to) {
                    let n = Notification::decode(&n.encode()).unwrap();
                    for r in e.on_message(src, n, now) {
                        queue.push_back((to, r));
                    }
                }
            }
            Out::Decided { state, .. } => decided.push((src, state)),
            Out::VoterLooking { .. } => {}
        }
    }
    decided
}

/// Three servers, all started before any vote is delivered (one round
/// each), elect 3 after one finalize wait.
fn three_elect_the_third() -> BTreeMap<u64, Election> {
    let nodes = three_look_at_once(config(3));
    assert_eq!(nodes[&3].state(), ServerState::Leading);
    nodes
}

/// Servers 1-3 of `cfg` start looking at once; every vote is delivered,
/// then the finalize wait passes.
fn three_look_at_once(cfg: zab::QuorumConfig) -> BTreeMap<u64, Election> {
    let mut nodes: BTreeMap<u64, Election> = (1..=3)
        .map(|i| (i, Election::new(i, cfg.clone(), 0, 0)))
        .collect();
    let starts: Vec<(u64, Vec<Out>)> = (1..=3)
        .map(|i| (i, nodes.get_mut(&i).unwrap().start(0, 0, 0)))
        .collect();
    for (i, outs) in starts {
        deliver_now(&mut nodes, i, outs, 0);
    }
    for i in 1..=3 {
        let outs = nodes.get_mut(&i).unwrap().on_tick(200);
        deliver_now(&mut nodes, i, outs, 200);
    }
    nodes
}

#[test]
fn a_vote_that_arrived_before_looking_costs_no_extra_round() {
    // Servers 1 and 2 follow 3; 3 dies. Server 2 starts looking first, and
    // its notification reaches 1 while 1 still follows (1 answers with its
    // old vote). When 1 starts looking it proposes itself; 2 must answer
    // that worse proposal at once, so both decide after one finalize wait,
    // not after 2's re-send and a second wait.
    let mut nodes = three_elect_the_third();
    assert_eq!(nodes[&1].logical_clock(), nodes[&2].logical_clock());
    nodes.remove(&3);
    let outs = nodes.get_mut(&2).unwrap().start(1000, 0, 1);
    deliver_now(&mut nodes, 2, outs, 1000);
    assert_eq!(nodes[&1].state(), ServerState::Following);
    let outs = nodes.get_mut(&1).unwrap().start(1001, 0, 1);
    deliver_now(&mut nodes, 1, outs, 1001);
    let mut decided = Vec::new();
    for i in [1, 2] {
        let outs = nodes.get_mut(&i).unwrap().on_tick(1001 + 200);
        decided.extend(deliver_now(&mut nodes, i, outs, 1201));
    }
    decided.sort_by_key(|(id, _)| *id);
    assert_eq!(
        decided,
        [(1, ServerState::Following), (2, ServerState::Leading)]
    );
}

#[test]
fn nothing_is_sent_before_the_election_starts() {
    // A member's election manager runs before the server tells it to look:
    // its ticks must not send a notification of round 0 (peers saw one
    // before round 1, and a fake peer that answers only its first round
    // left server 1 without votes).
    let mut e = Election::new(1, config(3), 0, 0);
    assert_eq!(e.next_deadline(), None);
    assert!(e.on_tick(0).is_empty());
    assert!(e.on_tick(10_000).is_empty());
    let outs = e.start(10_000, 0, 0);
    let rounds: Vec<i64> = outs
        .iter()
        .filter_map(|o| match o {
            Out::Send { n, .. } => Some(n.election_epoch),
            _ => None,
        })
        .collect();
    assert_eq!(rounds, [1, 1]);
    assert!(e.next_deadline().is_some());
}

#[test]
fn a_leader_hears_when_one_of_its_voters_looks_again() {
    // Three servers elect 3. Then 1 looks again (it changed its mind, or
    // could not reach 3): 3, still leading, is told that a voter of its
    // election is looking; a looking notification from a server that did
    // not vote for it (none here) or to a follower says nothing of the kind.
    let mut nodes = three_elect_the_third();
    let looking = nodes.get_mut(&1).unwrap().start(1000, 0, 0);
    let to = |who: u64| {
        looking.iter().find_map(|o| match o {
            Out::Send { to, n } if *to == who => Some(n.clone()),
            _ => None,
        })
    };
    let (to3, to2) = (to(3).expect("1 notifies 3"), to(2).expect("1 notifies 2"));
    let from_leader = nodes.get_mut(&3).unwrap().on_message(1, to3, 1000);
    assert!(
        from_leader
            .iter()
            .any(|o| matches!(o, Out::VoterLooking { sid: 1 })),
        "{from_leader:?}"
    );
    let from_follower = nodes.get_mut(&2).unwrap().on_message(1, to2, 1000);
    assert!(!from_follower
        .iter()
        .any(|o| matches!(o, Out::VoterLooking { .. })));
}

#[test]
fn a_voter_of_weight_zero_is_never_elected() {
    // Hierarchical quorums where server 3 weighs nothing: 3 would win on id,
    // but FastLeaderElection never proposes a server of weight 0, so the
    // three elect 2.
    let cfg =
        zab::QuorumConfig::parse(&format!("{}\ngroup.1=1:2:3\nweight.3=0", config(3))).unwrap();
    assert_eq!(cfg.weight(3), 0);
    let nodes = three_look_at_once(cfg);
    assert_eq!(nodes[&2].state(), ServerState::Leading);
    assert_eq!(nodes[&1].state(), ServerState::Following);
    assert_eq!(nodes[&3].state(), ServerState::Following);
}
