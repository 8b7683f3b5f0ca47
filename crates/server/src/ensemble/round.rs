//! ZooKeeper's CommitProcessor figures for an ensemble member. Apache's
//! CommitProcessor loops: each iteration notes what waits (reads, writes,
//! commits), hands out reads, applies the commits that arrived and drains
//! the session queues they free. Here one pipeline turn does that work
//! (commits applied by `Core::apply_committed`, reads answered on the
//! pipeline, session queues drained by `Core::drain_session`), so a turn
//! that applied a commit or answered a read is one iteration.

use std::time::Instant;

use crate::metrics::Metrics;

/// What one pipeline turn did, gathered as it goes and recorded at its end.
#[derive(Debug, Default)]
pub struct Round {
    /// The turn's first commit or read: when, and the reads and writes
    /// then waiting in session queues.
    began: Option<(Instant, u64, u64)>,
    commits: u64,
    reads: u64,
    /// From the first commit's start to the last one's end.
    applying: Option<(Instant, Instant)>,
    /// Sessions whose queue a commit drained (a session may repeat).
    drained: Vec<i64>,
}

impl Round {
    /// Something happens at `at`; `waiting` is (reads, writes) in the
    /// session queues.
    pub fn begin(&mut self, at: Instant, waiting: (u64, u64)) {
        if self.began.is_none() {
            self.began = Some((at, waiting.0, waiting.1));
        }
    }

    /// A commit applied from `start` to `end`.
    pub fn committed(&mut self, start: Instant, end: Instant) {
        self.commits += 1;
        self.applying = Some(match self.applying {
            Some((first, _)) => (first, end),
            None => (start, end),
        });
    }

    pub fn read(&mut self) {
        self.reads += 1;
    }

    pub fn drained(&mut self, session: i64) {
        self.drained.push(session);
    }

    /// Records the turn (if it was one) as one CommitProcessor iteration
    /// ending `now`, and starts afresh.
    pub fn end(&mut self, m: &Metrics, now: impl FnOnce() -> Instant) {
        let Some((began, reads_waiting, writes_waiting)) = self.began.take() else {
            return;
        };
        m.read_commit_proc_req_queued.observe(reads_waiting);
        m.write_commit_proc_req_queued.observe(writes_waiting);
        m.commit_commit_proc_req_queued.observe(self.commits);
        m.read_commit_proc_issued.observe(self.reads);
        if let Some((first, last)) = self.applying.take() {
            // Reads run on the pipeline itself: none is in flight while
            // commits apply, so there is never a pool to wait for.
            m.time_waiting_empty_pool_in_commit_processor_read_ms
                .observe(0);
            m.write_batch_time_in_commit_processor
                .observe(ms(last.saturating_duration_since(first)));
            m.write_commit_proc_issued.observe(self.commits);
            self.drained.sort_unstable();
            self.drained.dedup();
            m.session_queues_drained.observe(self.drained.len() as u64);
        }
        m.commit_process_time
            .observe(ms(now().saturating_duration_since(began)));
        self.commits = 0;
        self.reads = 0;
        self.drained.clear();
    }
}

fn ms(d: std::time::Duration) -> u64 {
    d.as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn get(m: &Metrics, k: &str) -> f64 {
        let rows = crate::metrics::monitor_rows(&[], m);
        rows.iter()
            .find(|(n, _)| n == k)
            .unwrap()
            .1
            .as_f64()
            .unwrap()
    }

    #[test]
    fn a_turn_is_recorded_once_with_what_it_did() {
        let m = Metrics::default();
        let mut r = Round::default();
        let t0 = Instant::now();
        // Nothing happened: no iteration.
        r.end(&m, || t0);
        assert_eq!(get(&m, "cnt_commit_process_time"), 0.0);
        r.begin(t0, (3, 2));
        r.read();
        r.begin(t0 + Duration::from_millis(1), (9, 9));
        r.committed(t0 + Duration::from_millis(1), t0 + Duration::from_millis(2));
        r.drained(7);
        r.committed(t0 + Duration::from_millis(2), t0 + Duration::from_millis(5));
        r.drained(7);
        r.drained(8);
        r.read();
        r.end(&m, || t0 + Duration::from_millis(6));
        assert_eq!(get(&m, "max_read_commit_proc_req_queued"), 3.0);
        assert_eq!(get(&m, "max_write_commit_proc_req_queued"), 2.0);
        assert_eq!(get(&m, "max_commit_commit_proc_req_queued"), 2.0);
        assert_eq!(get(&m, "max_write_commit_proc_issued"), 2.0);
        assert_eq!(get(&m, "max_read_commit_proc_issued"), 2.0);
        assert_eq!(get(&m, "max_session_queues_drained"), 2.0);
        assert_eq!(get(&m, "max_write_batch_time_in_commit_processor"), 4.0);
        assert_eq!(get(&m, "max_commit_process_time"), 6.0);
        assert_eq!(
            get(
                &m,
                "cnt_time_waiting_empty_pool_in_commit_processor_read_ms"
            ),
            1.0
        );
        // The next turn starts afresh: reads only, no commit figures.
        r.begin(t0, (0, 0));
        r.read();
        r.end(&m, || t0);
        assert_eq!(get(&m, "cnt_commit_process_time"), 2.0);
        assert_eq!(get(&m, "cnt_write_commit_proc_issued"), 1.0);
        assert_eq!(get(&m, "min_read_commit_proc_issued"), 1.0);
    }
}
