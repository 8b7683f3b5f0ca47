//! A follower hosting observers (Apache's ObserverMaster, turned on by
//! `observerMasterPort`): it takes observers off the leader. The handshake
//! is LearnerHandler's with an ObserverMaster behind it:
//! - only OBSERVERINFO is accepted, from a learner whose configuration is
//!   not newer than ours;
//! - LEADERINFO carries the follower's current epoch, which is established
//!   already: there is no epoch to choose and nobody else to wait for;
//! - ACKEPOCH gives the observer's last zxid: the follower syncs it from
//!   what it has committed (DIFF, TRUNC or SNAP) and sends NEWLEADER;
//! - the observer's ACK of NEWLEADER earns UPTODATE.
//!
//! From the sync on, every commit the follower sees goes on as an INFORM
//! (an observer syncing gets them after NEWLEADER, as Apache's does). An
//! observer that says anything else during the handshake is turned away.
//! This holds the protocol's state; the server carries out its [`Do`]s.

use std::collections::BTreeMap;

use crate::make_zxid;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Connected: waiting for OBSERVERINFO.
    Info,
    /// LEADERINFO sent: waiting for ACKEPOCH.
    Epoch,
    /// Sync and NEWLEADER sent: waiting for NEWLEADER's ACK.
    Syncing,
    /// UPTODATE sent: serving its clients.
    Synced,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Do<L> {
    /// Send LEADERINFO with this zxid (our current epoch, counter 0).
    LeaderInfo { link: L, zxid: i64 },
    /// Send what an observer at `last_zxid` lacks, then NEWLEADER.
    Sync { link: L, last_zxid: i64 },
    /// Send UPTODATE.
    UpToDate { link: L },
    /// Close the connection.
    TurnAway { link: L, why: String },
}

#[derive(Debug, Clone, Copy)]
pub struct Observer {
    pub sid: Option<u64>,
    pub phase: Phase,
}

#[derive(Debug, Default)]
pub struct Relay<L: Ord + Copy> {
    observers: BTreeMap<L, Observer>,
}

impl<L: Ord + Copy> Relay<L> {
    pub fn new() -> Self {
        Relay {
            observers: BTreeMap::new(),
        }
    }

    pub fn connected(&mut self, link: L) {
        self.observers.insert(
            link,
            Observer {
                sid: None,
                phase: Phase::Info,
            },
        );
    }

    /// The connection closed: forget it (its id, if it said one).
    pub fn closed(&mut self, link: L) -> Option<Observer> {
        self.observers.remove(&link)
    }

    pub fn observer(&self, link: L) -> Option<&Observer> {
        self.observers.get(&link)
    }

    /// The first packet. `observer`: it was OBSERVERINFO (a follower may
    /// not sync from another follower).
    pub fn info(
        &mut self,
        link: L,
        observer: bool,
        sid: u64,
        config_version: i64,
        our_config_version: i64,
        current_epoch: i64,
    ) -> Vec<Do<L>> {
        let Some(o) = self.observers.get_mut(&link) else {
            return Vec::new();
        };
        if o.phase != Phase::Info {
            return self.turn_away(link, "a second LearnerInfo");
        }
        o.sid = Some(sid);
        if !observer {
            return self.turn_away(
                link,
                &format!("server {sid}: non observer attempting to connect to ObserverMaster"),
            );
        }
        if config_version > our_config_version {
            return self.turn_away(
                link,
                &format!(
                    "observer {sid} is ahead of us (has a later activated configuration, 0x{config_version:x})"
                ),
            );
        }
        o.phase = Phase::Epoch;
        vec![Do::LeaderInfo {
            link,
            zxid: make_zxid(current_epoch, 0),
        }]
    }

    /// ACKEPOCH: the observer's last logged zxid.
    pub fn ack_epoch(&mut self, link: L, last_zxid: i64) -> Vec<Do<L>> {
        match self.observers.get_mut(&link) {
            Some(o) if o.phase == Phase::Epoch => {
                o.phase = Phase::Syncing;
                vec![Do::Sync { link, last_zxid }]
            }
            Some(_) => self.turn_away(link, "ACKEPOCH out of turn"),
            None => Vec::new(),
        }
    }

    /// An ACK: NEWLEADER's while syncing; later ones mean nothing (an
    /// observer acks no proposals), as ObserverMaster ignores them.
    pub fn ack(&mut self, link: L) -> Vec<Do<L>> {
        match self.observers.get_mut(&link) {
            Some(o) if o.phase == Phase::Syncing => {
                o.phase = Phase::Synced;
                vec![Do::UpToDate { link }]
            }
            Some(o) if o.phase == Phase::Synced => Vec::new(),
            Some(_) => self.turn_away(link, "ACK out of turn"),
            None => Vec::new(),
        }
    }

    /// Any other packet during the handshake ends it.
    pub fn unexpected(&mut self, link: L, what: &str) -> Vec<Do<L>> {
        match self.observers.get(&link) {
            Some(o) if o.phase != Phase::Synced => {
                let why = format!("{what} during the handshake");
                self.turn_away(link, &why)
            }
            _ => Vec::new(),
        }
    }

    fn turn_away(&mut self, link: L, why: &str) -> Vec<Do<L>> {
        let sid = self.observers.remove(&link).and_then(|o| o.sid);
        vec![Do::TurnAway {
            link,
            why: match sid {
                Some(s) if !why.contains(&format!("{s}")) => format!("observer {s}: {why}"),
                _ => why.to_owned(),
            },
        }]
    }

    /// Who gets a commit as INFORM: every observer whose sync (and
    /// NEWLEADER) went out; the commits follow it in order.
    pub fn informed(&self) -> impl Iterator<Item = L> + '_ {
        self.observers
            .iter()
            .filter(|(_, o)| matches!(o.phase, Phase::Syncing | Phase::Synced))
            .map(|(l, _)| *l)
    }

    /// Observers past UPTODATE (a follower's synced_observers).
    pub fn synced(&self) -> usize {
        self.observers
            .values()
            .filter(|o| o.phase == Phase::Synced)
            .count()
    }

    pub fn synced_links(&self) -> impl Iterator<Item = L> + '_ {
        self.observers
            .iter()
            .filter(|(_, o)| o.phase == Phase::Synced)
            .map(|(l, _)| *l)
    }

    pub fn len(&self) -> usize {
        self.observers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.observers.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_observer_is_synced_then_informed() {
        let mut r = Relay::new();
        r.connected(1u64);
        assert_eq!(r.informed().count(), 0);
        assert_eq!(
            r.info(1, true, 4, 0, 0, 7),
            vec![Do::LeaderInfo {
                link: 1,
                zxid: make_zxid(7, 0)
            }]
        );
        assert_eq!(r.informed().count(), 0);
        assert_eq!(
            r.ack_epoch(1, 0x7_0000_0003),
            vec![Do::Sync {
                link: 1,
                last_zxid: 0x7_0000_0003
            }]
        );
        // Commits after its sync follow NEWLEADER, before UPTODATE.
        assert_eq!(r.informed().collect::<Vec<_>>(), vec![1]);
        assert_eq!(r.synced(), 0);
        assert_eq!(r.ack(1), vec![Do::UpToDate { link: 1 }]);
        assert_eq!(r.synced(), 1);
        // Later ACKs mean nothing.
        assert!(r.ack(1).is_empty());
        assert!(r.unexpected(1, "PROPOSAL").is_empty());
        assert_eq!(r.closed(1).and_then(|o| o.sid), Some(4));
        assert_eq!(r.informed().count(), 0);
    }

    #[test]
    fn followers_newer_configs_and_handshake_errors_are_turned_away() {
        let mut r = Relay::new();
        r.connected(1u64);
        let d = r.info(1, false, 2, 0, 0, 1);
        assert!(
            matches!(&d[..], [Do::TurnAway { link: 1, why }] if why.contains("non observer")),
            "{d:?}"
        );
        assert!(r.observer(1).is_none());

        r.connected(2);
        let d = r.info(2, true, 5, 0x2_0000_0001, 0x1_0000_0000, 1);
        assert!(
            matches!(&d[..], [Do::TurnAway { link: 2, why }] if why.contains("later activated configuration")),
            "{d:?}"
        );

        r.connected(3);
        let d = r.ack_epoch(3, 0);
        assert!(matches!(&d[..], [Do::TurnAway { link: 3, .. }]), "{d:?}");

        r.connected(4);
        r.info(4, true, 6, 0, 0, 1);
        let d = r.ack(4);
        assert!(matches!(&d[..], [Do::TurnAway { link: 4, .. }]), "{d:?}");

        r.connected(5);
        r.info(5, true, 7, 0, 0, 1);
        let d = r.unexpected(5, "REQUEST");
        assert!(
            matches!(&d[..], [Do::TurnAway { link: 5, why }] if why.starts_with("observer 7: REQUEST")),
            "{d:?}"
        );
        assert!(r.is_empty());
    }
}
