//! How a leader brings a learner up to date (LearnerHandler.syncFollower):
//! nothing to send, the txns it lacks (DIFF), first cut back what it has
//! that the leader does not (TRUNC, then the txns), or the whole database
//! (SNAP) when the leader no longer holds the txns in between.

/// What to send a learner whose last logged zxid is `peer_last`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncPlan {
    /// DIFF, then the leader's txns with index `from..` of its log.
    Diff { from: usize },
    /// TRUNC to `to`, then the txns with index `from..`.
    Trunc { to: i64, from: usize },
    /// SNAP: the whole database.
    Snap,
}

/// `log` is the zxids the leader can send, ascending and contiguous in
/// its history, ending at its last zxid `leader_last` (it may be empty).
pub fn plan(peer_last: i64, log: &[i64], leader_last: i64) -> SyncPlan {
    if peer_last == leader_last {
        return SyncPlan::Diff { from: log.len() };
    }
    let (Some(&min), Some(&max)) = (log.first(), log.last()) else {
        return SyncPlan::Snap;
    };
    if peer_last > max {
        // The learner has txns past the leader's history: cut them.
        return SyncPlan::Trunc {
            to: max,
            from: log.len(),
        };
    }
    if peer_last < min {
        // The txns between are gone from the leader's log: SNAP, unless the
        // learner holds exactly what precedes the log (an empty peer of a
        // fresh ensemble whose log starts at the first txn).
        return if peer_last == 0 && crate::counter_of(min) == 1 && crate::epoch_of(min) == 1 {
            SyncPlan::Diff { from: 0 }
        } else {
            SyncPlan::Snap
        };
    }
    match log.binary_search(&peer_last) {
        Ok(i) => SyncPlan::Diff { from: i + 1 },
        // A txn the leader never had (an abandoned epoch): cut back to the
        // last common point, then send what follows.
        Err(i) => SyncPlan::Trunc {
            to: log[i - 1],
            from: i,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::make_zxid as z;

    #[test]
    fn chooses_as_the_leader_does() {
        let log = [z(1, 1), z(1, 2), z(3, 1), z(3, 2)];
        let last = z(3, 2);
        assert_eq!(plan(last, &log, last), SyncPlan::Diff { from: 4 });
        assert_eq!(plan(z(1, 2), &log, last), SyncPlan::Diff { from: 2 });
        assert_eq!(
            plan(z(2, 1), &log, last),
            SyncPlan::Trunc {
                to: z(1, 2),
                from: 2
            }
        );
        assert_eq!(
            plan(z(1, 3), &log, last),
            SyncPlan::Trunc {
                to: z(1, 2),
                from: 2
            }
        );
        assert_eq!(
            plan(z(4, 1), &log, last),
            SyncPlan::Trunc {
                to: z(3, 2),
                from: 4
            }
        );
        assert_eq!(plan(z(0, 5), &log, last), SyncPlan::Snap);
        assert_eq!(plan(0, &log, last), SyncPlan::Diff { from: 0 });
        assert_eq!(plan(0, &log[2..], last), SyncPlan::Snap);
        assert_eq!(
            plan(0, &[z(1, 1), z(1, 2)], z(1, 2)),
            SyncPlan::Diff { from: 0 }
        );
        assert_eq!(plan(z(1, 1), &[], z(1, 2)), SyncPlan::Snap);
        assert_eq!(plan(0, &[], 0), SyncPlan::Diff { from: 0 });
    }
}
