//! Fast leader election and the ZAB protocol as state machines: events in
//! (messages, ticks with the current time), actions out (messages to send,
//! decisions). No I/O, no clock, no randomness: the server shell and the
//! simulator in tests drive the same code.
//!
//! - [`config`] holds the ensemble's membership (`server.N=` lines), quorums, and
//!   the text form Apache ZooKeeper sends in notifications and NEWLEADER.
//! - [`wire`] holds the election port's framing (initial message, notification)
//!   and the quorum packet types.
//! - [`election`] holds FastLeaderElection.
//! - [`sync`] holds how a leader brings a learner up to date (DIFF, TRUNC, SNAP).
//! - [`ack`] holds the leader's quorum bookkeeping for proposals.
//! - [`leading`] holds a leader's side of discovery, sync and broadcast, which
//!   the server runs and [`peer`] models.
//! - [`learner`] holds a follower's or observer's side of discovery, sync and
//!   broadcast, which the server runs and [`peer`] models.
//! - [`relay`] holds a follower's side of hosting observers (ObserverMaster).

pub mod ack;
pub mod config;
pub mod election;
pub mod leading;
pub mod learner;
pub mod peer;
pub mod relay;
pub mod sync;
pub mod wire;

pub use config::{LearnerType, Member, QuorumConfig};
pub use election::{Election, ServerState, Vote};

/// A zxid from an epoch and a counter: epoch in the high 32 bits.
pub fn make_zxid(epoch: i64, counter: i64) -> i64 {
    (epoch << 32) | (counter & 0xffff_ffff)
}

/// The epoch part of a zxid.
pub fn epoch_of(zxid: i64) -> i64 {
    zxid >> 32
}

/// The counter part of a zxid.
pub fn counter_of(zxid: i64) -> i64 {
    zxid & 0xffff_ffff
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zxid_parts() {
        let z = make_zxid(5, 7);
        assert_eq!(z, 0x5_0000_0007);
        assert_eq!(epoch_of(z), 5);
        assert_eq!(counter_of(z), 7);
        assert_eq!(make_zxid(1, 0), 1 << 32);
    }
}
