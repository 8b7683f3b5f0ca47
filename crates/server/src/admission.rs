//! What a loaded server admits, with ZooKeeper 3.8's knobs (all off by
//! default, as there):
//! - the request throttler (`zookeeper.request_throttle_max_requests`,
//!   `_stall_time`, `_drop_stale`, `zookeeper.request_stale_latency_check`,
//!   `zookeeper.throttled_op_wait_time`): at most that many requests in the
//!   pipeline, the rest wait on their connection;
//! - the large-request budget (`zookeeper.largeRequestThreshold`,
//!   `zookeeper.largeRequestMaxBytes`): bytes of requests above the
//!   threshold in flight at once;
//! - the connection throttler (`zookeeper.connection_throttle_*`, Apache's
//!   BlueThrottle): a token bucket for connects, with optional random
//!   dropping once it runs dry;
//! - the TLS handshakes under way on the secure port
//!   (`zookeeper.netty.server.outstandingHandshake.limit`).
//!
//! A request holds a [`Ticket`] while it is in the pipeline: from
//! admission until its reply leaves (after its fsync, for a write), or
//! until the pipeline drops it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jute::consts::op;
use tokio::sync::Notify;
use tracing::warn;

use crate::config::Config;
use crate::metrics::Metrics;

pub struct Admission {
    /// 0: no limit.
    max_requests: usize,
    stall: Duration,
    drop_stale: bool,
    stale_latency_check: bool,
    throttled_op_wait: Option<Duration>,
    in_process: AtomicUsize,
    room: Notify,
    /// Requests longer than this are large (None: no budget).
    large_threshold: Option<usize>,
    large_max: usize,
    large_bytes: AtomicUsize,
    connects: Option<Mutex<Bucket>>,
    handshake_limit: Option<u64>,
    metrics: Arc<Metrics>,
}

/// A request's place in the pipeline; dropping it gives the place back.
pub struct Ticket {
    adm: Arc<Admission>,
    counted: bool,
    large: usize,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Ticket({} large bytes)", self.large)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if self.large > 0 {
            self.adm.large_bytes.fetch_sub(self.large, Ordering::AcqRel);
        }
        if self.counted {
            self.adm.in_process.fetch_sub(1, Ordering::AcqRel);
            self.adm.room.notify_waiters();
        }
    }
}

/// What admission decided for a request.
#[derive(Debug)]
pub enum Admit {
    /// Into the pipeline; `throttled`: answered THROTTLEDOP there, in order
    /// with the session's other requests, without being carried out.
    Go {
        ticket: Option<Ticket>,
        throttled: bool,
    },
    /// Stale: waited longer than its session's timeout. The connection
    /// closes (as ZooKeeper's throttler drops it).
    Drop,
}

fn parse<T: std::str::FromStr>(cfg: &Config, k: &str) -> Option<T> {
    let v = cfg.prop(k)?;
    let r = v.trim().parse().ok();
    if r.is_none() {
        warn!("ignoring {k}={v:?}: not a number");
    }
    r
}

fn flag(cfg: &Config, k: &str, default: bool) -> bool {
    cfg.prop(k)
        .map_or(default, |v| v.trim().eq_ignore_ascii_case("true"))
}

impl Admission {
    pub fn new(cfg: &Config) -> Arc<Admission> {
        let max_requests = parse::<i64>(cfg, "zookeeper.request_throttle_max_requests")
            .unwrap_or(0)
            .max(0) as usize;
        let stall = parse::<u64>(cfg, "zookeeper.request_throttle_stall_time").unwrap_or(100);
        let wait = parse::<u64>(cfg, "zookeeper.throttled_op_wait_time").unwrap_or(0);
        // ZooKeeper: 0 or below -1 turn it off, as -1 does.
        let threshold = parse::<i64>(cfg, "zookeeper.largeRequestThreshold").unwrap_or(-1);
        let large_max = parse::<i64>(cfg, "zookeeper.largeRequestMaxBytes")
            .filter(|&n| n > 0)
            .unwrap_or(100 * 1024 * 1024);
        Arc::new(Admission {
            max_requests,
            stall: Duration::from_millis(stall),
            drop_stale: flag(cfg, "zookeeper.request_throttle_drop_stale", true),
            stale_latency_check: flag(cfg, "zookeeper.request_stale_latency_check", false),
            throttled_op_wait: (wait > 0).then(|| Duration::from_millis(wait)),
            in_process: AtomicUsize::new(0),
            room: Notify::new(),
            large_threshold: (threshold > 0).then_some(threshold as usize),
            large_max: large_max as usize,
            large_bytes: AtomicUsize::new(0),
            connects: Bucket::from_config(cfg).map(Mutex::new),
            handshake_limit: parse::<i64>(cfg, "zookeeper.netty.server.outstandingHandshake.limit")
                .filter(|&n| n > 0)
                .map(|n| n as u64),
            metrics: cfg.metrics.clone(),
        })
    }

    /// On a request's length prefix, before its bytes are read
    /// (checkRequestSizeWhenReceivingMessage): false if a large request
    /// would not fit the budget now; the connection is then closed.
    pub fn large_fits(&self, len: usize) -> bool {
        let Some(t) = self.large_threshold else {
            return true;
        };
        if len <= t || self.large_bytes.load(Ordering::Acquire) + len <= self.large_max {
            return true;
        }
        self.metrics.large_requests_rejected.inc();
        false
    }

    /// Takes a large request's bytes from the budget once it is read
    /// (checkRequestSizeWhenMessageReceived); None if they do not fit.
    fn reserve_large(&self, len: usize) -> Option<usize> {
        match self.large_threshold {
            Some(t) if len > t => {
                let now = self.large_bytes.fetch_add(len, Ordering::AcqRel) + len;
                if now > self.large_max {
                    self.large_bytes.fetch_sub(len, Ordering::AcqRel);
                    self.metrics.large_requests_rejected.inc();
                    return None;
                }
                Some(len)
            }
            _ => Some(0),
        }
    }

    /// Admits a request of `len` bytes read at `received`, waiting while
    /// the pipeline holds `max_requests` (in stalls of `stall_time`, each
    /// counted in request_throttle_wait_count). None: it does not fit the
    /// large-request budget (the connection is closed).
    pub async fn admit(
        self: &Arc<Self>,
        opc: i32,
        len: usize,
        received: Instant,
        session_timeout: Duration,
    ) -> Option<Admit> {
        let large = self.reserve_large(len)?;
        let mut ticket = (large > 0).then(|| Ticket {
            adm: self.clone(),
            counted: false,
            large,
        });
        // Auth packets bypass ZooKeeper's throttler (processPacket answers
        // them itself).
        if self.max_requests == 0 || matches!(opc, op::AUTH | op::SASL) {
            return Some(Admit::Go {
                ticket,
                throttled: false,
            });
        }
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            // Registered before the check, so no release is missed.
            room.as_mut().enable();
            if self.drop_stale
                && self.stale_latency_check
                && opc != op::CLOSE_SESSION
                && received.elapsed() > session_timeout
            {
                self.metrics.stale_requests_dropped.inc();
                return Some(Admit::Drop);
            }
            if self.take_place() {
                break;
            }
            self.metrics.request_throttle_wait_count.inc();
            let _ = tokio::time::timeout(self.stall, room).await;
        }
        let t = ticket.get_or_insert_with(|| Ticket {
            adm: self.clone(),
            counted: false,
            large: 0,
        });
        t.counted = true;
        let waited = received.elapsed();
        self.metrics
            .request_throttle_queue_time_ms
            .observe(waited.as_millis() as u64);
        // Pings and session changes are never throttled (isThrottlable).
        let throttlable = !matches!(opc, op::PING | op::CREATE_SESSION | op::CLOSE_SESSION);
        let throttled = throttlable && self.throttled_op_wait.is_some_and(|w| waited > w);
        if throttled {
            self.metrics.throttled_ops.inc();
        }
        Some(Admit::Go { ticket, throttled })
    }

    fn take_place(&self) -> bool {
        self.in_process
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.max_requests).then_some(n + 1)
            })
            .is_ok()
    }

    /// Whether a secure-port connection may start its TLS handshake now;
    /// false (counted in tls_handshake_exceeded): close it.
    pub fn handshake_allowed(&self) -> bool {
        let Some(limit) = self.handshake_limit else {
            return true;
        };
        if self.metrics.outstanding_tls_handshakes() < limit {
            return true;
        }
        self.metrics.tls_handshake_exceeded.inc();
        false
    }

    /// A connect asks for `need` tokens (ZooKeeper's weights: 1, or with
    /// weights on, the global weight for a new session and the renew
    /// weight for a returning one). False: refuse it.
    pub fn connect_allowed(&self, returning: bool) -> bool {
        let Some(b) = &self.connects else {
            // Off: BlueThrottle's deficit is then always 0.
            self.metrics.connection_token_deficit.observe(0);
            return true;
        };
        let mut b = b.lock().unwrap_or_else(|e| e.into_inner());
        let need = b.need(returning);
        let now = Instant::now();
        if !b.take(need, now, rand::random::<f64>()) {
            return false;
        }
        self.metrics.connection_token_deficit.observe(b.deficit());
        true
    }
}

/// BlueThrottle: a token bucket refilled `fill_count` tokens every
/// `fill_time`, up to `max`; with `freeze_time` set, once per freeze_time
/// the chance of dropping a connect at random rises by `drop_increase`
/// while the bucket is empty and falls by `drop_decrease` while it is
/// fuller than `decrease_ratio` of `max`.
#[derive(Debug)]
struct Bucket {
    max: u64,
    tokens: u64,
    fill_time: Duration,
    fill_count: u64,
    last_fill: Instant,
    freeze: Option<Duration>,
    drop_increase: f64,
    drop_decrease: f64,
    decrease_ratio: f64,
    drop: f64,
    last_freeze: Instant,
    /// (new session, returning session) weights, when weighting is on.
    weights: Option<(u64, u64)>,
}

impl Bucket {
    fn from_config(cfg: &Config) -> Option<Bucket> {
        let tokens = parse::<i64>(cfg, "zookeeper.connection_throttle_tokens").unwrap_or(0);
        if tokens <= 0 {
            return None;
        }
        let num = |k: &str, d: i64| parse::<i64>(cfg, k).unwrap_or(d);
        let real = |k: &str, d: f64| parse::<f64>(cfg, k).unwrap_or(d);
        let weighted = flag(cfg, "zookeeper.connection_throttle_weight_enabled", false);
        let local = num("zookeeper.connection_throttle_local_session_weight", 1).max(1) as u64;
        let global =
            (num("zookeeper.connection_throttle_global_session_weight", 3) as u64).max(local);
        let renew =
            (num("zookeeper.connection_throttle_renew_session_weight", 2) as u64).max(local);
        // With weights, the bucket and its refill are in units of a
        // global session's weight.
        let scale = if weighted { global } else { 1 };
        let freeze = num("zookeeper.connection_throttle_freeze_time", -1);
        let now = Instant::now();
        Some(Bucket {
            max: tokens as u64 * scale,
            tokens: tokens as u64 * scale,
            fill_time: Duration::from_millis(
                num("zookeeper.connection_throttle_fill_time", 1).max(1) as u64,
            ),
            fill_count: num("zookeeper.connection_throttle_fill_count", 1).max(0) as u64 * scale,
            last_fill: now,
            freeze: (freeze >= 0).then(|| Duration::from_millis(freeze as u64)),
            drop_increase: real("zookeeper.connection_throttle_drop_increase", 0.02),
            drop_decrease: real("zookeeper.connection_throttle_drop_decrease", 0.002),
            decrease_ratio: real("zookeeper.connection_throttle_decrease_ratio", 0.0),
            drop: 0.0,
            last_freeze: now,
            weights: weighted.then_some((global, renew)),
        })
    }

    fn need(&self, returning: bool) -> u64 {
        match self.weights {
            None => 1,
            Some((_, renew)) if returning => renew,
            Some((global, _)) => global,
        }
    }

    fn deficit(&self) -> u64 {
        self.max - self.tokens
    }

    /// `coin`: uniform in [0, 1), for the random drop.
    fn take(&mut self, need: u64, now: Instant, coin: f64) -> bool {
        let elapsed = now.saturating_duration_since(self.last_fill);
        let fills = (elapsed.as_nanos() / self.fill_time.as_nanos().max(1)) as u64;
        if fills > 0 {
            self.tokens = self.max.min(
                self.tokens
                    .saturating_add(fills.saturating_mul(self.fill_count)),
            );
            self.last_fill += self.fill_time * fills.min(u32::MAX as u64) as u32;
        }
        if let Some(freeze) = self.freeze {
            if now.saturating_duration_since(self.last_freeze) > freeze {
                if self.tokens == 0 {
                    self.drop = (self.drop + self.drop_increase).min(1.0);
                } else if (self.tokens as f64) > self.max as f64 * self.decrease_ratio {
                    self.drop = (self.drop - self.drop_decrease).max(0.0);
                }
                self.last_freeze = now;
            }
            if self.drop > 0.0 && coin < self.drop {
                return false;
            }
        }
        if self.tokens < need {
            return false;
        }
        self.tokens -= need;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(props: &[(&str, &str)]) -> Config {
        let mut c = Config::default();
        for (k, v) in props {
            c.props.insert((*k).into(), (*v).into());
        }
        c
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    #[test]
    fn bucket_refills_at_its_rate_up_to_its_size() {
        let c = cfg(&[
            ("zookeeper.connection_throttle_tokens", "3"),
            ("zookeeper.connection_throttle_fill_time", "100"),
            ("zookeeper.connection_throttle_fill_count", "2"),
        ]);
        let mut b = Bucket::from_config(&c).expect("on");
        let t0 = b.last_fill;
        assert!(b.take(1, t0, 0.5));
        assert!(b.take(1, t0, 0.5));
        assert!(b.take(1, t0, 0.5));
        assert!(!b.take(1, t0, 0.5));
        assert_eq!(b.deficit(), 3);
        // One fill: two tokens.
        let t1 = t0 + Duration::from_millis(150);
        assert!(b.take(1, t1, 0.5));
        assert!(b.take(1, t1, 0.5));
        assert!(!b.take(1, t1, 0.5));
        // Ten fills later: full, not beyond.
        let t2 = t1 + Duration::from_secs(1);
        assert!(b.take(1, t2, 0.5));
        assert_eq!(b.deficit(), 1);
    }

    #[test]
    fn weights_scale_the_bucket_and_the_need() {
        let c = cfg(&[
            ("zookeeper.connection_throttle_tokens", "2"),
            ("zookeeper.connection_throttle_weight_enabled", "true"),
        ]);
        let mut b = Bucket::from_config(&c).expect("on");
        assert_eq!(b.max, 6);
        assert_eq!(b.need(false), 3);
        assert_eq!(b.need(true), 2);
        let t0 = b.last_fill;
        assert!(b.take(3, t0, 0.5));
        assert!(b.take(2, t0, 0.5));
        assert!(!b.take(2, t0, 0.5));
    }

    #[test]
    fn blue_drops_at_random_once_the_bucket_ran_dry() {
        let c = cfg(&[
            ("zookeeper.connection_throttle_tokens", "1"),
            ("zookeeper.connection_throttle_fill_time", "1000000"),
            ("zookeeper.connection_throttle_freeze_time", "10"),
            ("zookeeper.connection_throttle_drop_increase", "0.5"),
        ]);
        let mut b = Bucket::from_config(&c).expect("on");
        let t0 = b.last_fill;
        assert!(b.take(1, t0, 0.9));
        // Empty when the freeze time passes: the drop chance rises to 0.5.
        let t1 = t0 + Duration::from_millis(20);
        assert!(!b.take(1, t1, 0.4), "dropped at random");
        assert_eq!(b.drop, 0.5);
    }

    #[test]
    fn off_by_default() {
        let a = Admission::new(&Config::default());
        assert_eq!(a.max_requests, 0);
        assert!(a.large_threshold.is_none());
        assert!(a.connects.is_none());
        assert!(a.large_fits(usize::MAX / 2));
    }

    #[test]
    fn large_requests_share_a_budget() {
        let c = cfg(&[
            ("zookeeper.largeRequestThreshold", "100"),
            ("zookeeper.largeRequestMaxBytes", "1000"),
        ]);
        let a = Admission::new(&c);
        runtime().block_on(async {
            let t = Instant::now();
            let d = Duration::from_secs(10);
            let Some(Admit::Go { ticket: first, .. }) = a.admit(op::SET_DATA, 600, t, d).await
            else {
                panic!("first fits");
            };
            assert!(a.large_fits(100), "small ones always fit");
            assert!(!a.large_fits(500));
            assert!(a.admit(op::SET_DATA, 500, t, d).await.is_none());
            assert_eq!(a.metrics.large_requests_rejected.get(), 2);
            drop(first);
            assert!(a.large_fits(1000));
        });
    }

    #[test]
    fn requests_wait_for_room() {
        let c = cfg(&[
            ("zookeeper.request_throttle_max_requests", "1"),
            ("zookeeper.request_throttle_stall_time", "5"),
        ]);
        let a = Admission::new(&c);
        runtime().block_on(async {
            let d = Duration::from_secs(10);
            let Some(Admit::Go { ticket, .. }) = a.admit(op::GET_DATA, 10, Instant::now(), d).await
            else {
                panic!("admitted");
            };
            let a2 = a.clone();
            let second =
                tokio::spawn(async move { a2.admit(op::GET_DATA, 10, Instant::now(), d).await });
            tokio::time::sleep(Duration::from_millis(30)).await;
            assert!(!second.is_finished(), "waits while the first is in");
            assert!(a.metrics.request_throttle_wait_count.get() >= 1);
            drop(ticket);
            let r = second.await.expect("task");
            assert!(matches!(
                r,
                Some(Admit::Go {
                    ticket: Some(_),
                    throttled: false
                })
            ));
        });
    }
}
