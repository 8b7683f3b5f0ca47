//! The pause monitor (ZooKeeper's JvmPauseMonitor, `jvm.pause.monitor`):
//! a thread sleeps a fixed time over and over; when a sleep takes longer,
//! the process or its host stalled (no GC here, but a stopped process, a
//! starved VM or swapping stall us just the same). Each overshoot goes to
//! `jvm_pause_time_ms`; long ones are logged.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::{info, warn};

use crate::metrics::Metrics;

/// zoo.cfg's `jvm.pause.sleep.time.ms`, `jvm.pause.info-threshold.ms`,
/// `jvm.pause.warn-threshold.ms` (defaults 500, 1000, 10000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    pub sleep_ms: u64,
    pub info_ms: u64,
    pub warn_ms: u64,
}

/// The running monitor; dropping it ends the thread after its current
/// sleep.
pub struct Monitor {
    stop: Arc<AtomicBool>,
}

impl Monitor {
    pub fn start(s: Settings, metrics: Arc<Metrics>) -> std::io::Result<Monitor> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        info!(
            "starting the pause monitor with infoThresholdMs:{} warnThresholdMs:{} and sleepTimeMs:{}",
            s.info_ms, s.warn_ms, s.sleep_ms
        );
        std::thread::Builder::new()
            .name("pause-monitor".into())
            .spawn(move || {
                let sleep = Duration::from_millis(s.sleep_ms);
                while !flag.load(Ordering::Relaxed) {
                    let start = Instant::now();
                    std::thread::sleep(sleep);
                    let extra = overshoot(start.elapsed(), sleep);
                    metrics.jvm_pause_time_ms.observe(extra);
                    if extra > s.warn_ms {
                        warn!("detected pause in the process or host machine: approximately {extra}ms");
                    } else if extra > s.info_ms {
                        info!("detected pause in the process or host machine: approximately {extra}ms");
                    }
                }
            })?;
        Ok(Monitor { stop })
    }
}

impl Drop for Monitor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// How much longer than `asked` a sleep took, in whole milliseconds.
fn overshoot(took: Duration, asked: Duration) -> u64 {
    took.saturating_sub(asked).as_millis() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overshoot_is_what_a_sleep_took_beyond_its_time() {
        let asked = Duration::from_millis(500);
        assert_eq!(overshoot(Duration::from_millis(500), asked), 0);
        assert_eq!(overshoot(Duration::from_millis(499), asked), 0);
        assert_eq!(overshoot(Duration::from_millis(1750), asked), 1250);
    }
}
