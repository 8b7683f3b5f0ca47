//! Failover figures of `bench compare --ensemble`: SIGKILL the leader of a
//! 3-server ensemble, then time how long a client of the two survivors
//! waits for its first successful write. The killed member is restarted and
//! rejoins before the next kill, so every repetition starts from a full,
//! settled ensemble.

use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use serde::Serialize;
use tokio::task::JoinSet;

use crate::compare::{check_quorum, mode, Kind, Servers};
use crate::conn::Conn;

/// The node the probes write.
const NODE: &str = "/rkfailover";
/// A new write attempt starts this often, so a hung attempt (a connection
/// to a member that has not noticed the leader's death yet) does not delay
/// the measurement: the resolution is this interval.
const PROBE_EVERY: Duration = Duration::from_millis(20);
/// One attempt (connect, session, setData) gives up after this.
const ATTEMPT_LIMIT: Duration = Duration::from_secs(3);
/// No write within this: the sample fails.
const GIVE_UP: Duration = Duration::from_secs(60);
/// Probe sessions' timeout: the minimum (2 ticks at tickTime 2000), so
/// abandoned probes expire soon.
const PROBE_SESSION_MS: i32 = 4000;
/// Time given to a re-formed ensemble before the next kill.
const SETTLE: Duration = Duration::from_secs(2);

/// One leader kill.
#[derive(Debug, Clone, Serialize)]
pub struct Sample {
    pub kind: Kind,
    pub rep: usize,
    /// Wall-clock time of the SIGKILL (UTC, HH:MM:SS.mmm), to find it in
    /// the members' logs.
    pub killed_at: String,
    /// myid of the killed leader.
    pub killed: usize,
    /// myid of the member that became leader.
    pub new_leader: Option<usize>,
    /// Milliseconds from the SIGKILL to the first successful write.
    pub write_ms: Option<f64>,
    /// Milliseconds from the SIGKILL to a survivor's `srvr` first saying
    /// `Mode: leader` (polled every 20 ms).
    pub leader_ms: Option<f64>,
    /// Write attempts started until one succeeded.
    pub attempts: usize,
    /// Seconds from restarting the killed member to all three serving with
    /// one leader again.
    pub rejoin_secs: Option<f64>,
    pub error: Option<String>,
}

impl Sample {
    /// A repetition that could not even start (no formed ensemble).
    pub(crate) fn failed(kind: Kind, rep: usize, error: String) -> Sample {
        Sample {
            kind,
            rep,
            killed_at: String::new(),
            killed: 0,
            new_leader: None,
            write_ms: None,
            leader_ms: None,
            attempts: 0,
            rejoin_secs: None,
            error: Some(error),
        }
    }
}

fn clock() -> String {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    let s = ms / 1000;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        (s / 3600) % 24,
        (s / 60) % 60,
        s % 60,
        ms % 1000
    )
}

/// Connect, create a session, setData; the time the reply arrived.
async fn attempt(addr: String, data: Bytes) -> Result<Instant> {
    let mut c = Conn::connect(&addr, PROBE_SESSION_MS).await?;
    let x = c.push_set(NODE, &data);
    c.flush().await?;
    let r = c.reply_to(x).await?;
    if r.err != 0 {
        bail!("setData on {addr}: error {}", r.err);
    }
    let at = Instant::now();
    let _ = tokio::time::timeout(Duration::from_secs(1), c.close()).await;
    Ok(at)
}

/// Polls the survivors' `srvr` until one says leader: (ms, member index).
async fn first_leader(survivors: Vec<(usize, String)>, t0: Instant) -> Option<(f64, usize)> {
    while t0.elapsed() < GIVE_UP {
        for (i, a) in &survivors {
            if mode(a).await.as_deref() == Some("leader") {
                return Some((t0.elapsed().as_secs_f64() * 1000.0, *i));
            }
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
    None
}

/// Makes sure the probes' node exists (through the leader).
async fn prepare_node(addr: &str) -> Result<()> {
    let mut c = Conn::connect(addr, 30000).await?;
    let x = c.push_create(NODE, &Bytes::new(), false);
    c.flush().await?;
    let r = c.reply_to(x).await?;
    // -110: NodeExists, left by an earlier repetition.
    if r.err != 0 && r.err != -110 {
        bail!("create {NODE}: error {}", r.err);
    }
    c.close().await
}

/// Kills the leader of `s`, measures, restarts the killed member and waits
/// for the ensemble to re-form.
pub(crate) async fn sample(s: &mut Servers, rep: usize) -> Result<Sample> {
    let leader = check_quorum(s)
        .await
        .context("ensemble not formed before the kill")?;
    let addrs = s.addrs();
    prepare_node(&addrs[leader]).await?;
    tokio::time::sleep(SETTLE).await;
    let survivors: Vec<(usize, String)> = addrs
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(i, a)| (i, a.clone()))
        .collect();
    let mut child = s.members[leader]
        .child
        .take()
        .context("the leader has no process")?;
    let killed_at = clock();
    let t0 = Instant::now();
    child.kill().context("SIGKILL of the leader")?;
    let mut out = Sample {
        kind: s.kind,
        rep,
        killed_at,
        killed: leader + 1,
        new_leader: None,
        write_ms: None,
        leader_ms: None,
        attempts: 0,
        rejoin_secs: None,
        error: None,
    };
    let poll = tokio::spawn(first_leader(survivors.clone(), t0));
    let data = Bytes::from(format!("failover {rep}"));
    let mut probes = JoinSet::new();
    let mut tick = tokio::time::interval(PROBE_EVERY);
    let result = loop {
        tokio::select! {
            _ = tick.tick() => {
                if t0.elapsed() > GIVE_UP {
                    break Err(anyhow::anyhow!("no successful write within {GIVE_UP:?}"));
                }
                let addr = survivors[out.attempts % survivors.len()].1.clone();
                out.attempts += 1;
                probes.spawn(tokio::time::timeout(ATTEMPT_LIMIT, attempt(addr, data.clone())));
            }
            Some(done) = probes.join_next() => {
                if let Ok(Ok(Ok(at))) = done {
                    break Ok(at.duration_since(t0).as_secs_f64() * 1000.0);
                }
            }
        }
    };
    // Sessions of abandoned probes expire on their own (4 s).
    probes.abort_all();
    let _ = child.wait();
    match result {
        Ok(ms) => out.write_ms = Some(ms),
        Err(e) => out.error = Some(format!("{e:#}")),
    }
    if let Ok(Some((ms, i))) = poll.await {
        out.leader_ms = Some(ms);
        out.new_leader = Some(i + 1);
    }
    // Back to three members for the next kill.
    let t = Instant::now();
    s.start_member(leader)?;
    let rejoin = async {
        s.wait_serving(Duration::from_secs(90)).await?;
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match check_quorum(s).await {
                Ok(_) => return anyhow::Ok(()),
                Err(e) if Instant::now() > deadline => return Err(e),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    };
    match rejoin.await {
        Ok(()) => out.rejoin_secs = Some(t.elapsed().as_secs_f64()),
        Err(e) => {
            let e = format!("killed member did not rejoin: {e:#}");
            out.error = Some(match out.error.take() {
                Some(prev) => format!("{prev}; {e}"),
                None => e,
            });
        }
    }
    Ok(out)
}

/// The median of the values (mean of the middle two for an even count).
pub(crate) fn median(v: &[f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    Some(if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn clock_has_millis() {
        let c = clock();
        assert_eq!(c.len(), 12, "{c}");
        assert_eq!(&c[2..3], ":");
        assert_eq!(&c[8..9], ".");
    }
}
