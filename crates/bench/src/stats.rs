//! Latency histograms (hdrhistogram, microseconds), error counts, the final
//! table and the JSON form the comparison reads.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies up to an hour are recorded exactly to 3 significant digits;
/// longer ones are clamped (they are failures anyway).
const MAX_US: u64 = 3_600_000_000;

#[derive(Clone)]
pub struct OpStats {
    pub hist: Histogram<u64>,
    pub errors: u64,
    /// Wall time of the phase, where a row is a timed phase (zk-latencies).
    pub secs: Option<f64>,
}

impl Default for OpStats {
    fn default() -> Self {
        OpStats {
            hist: Histogram::new_with_bounds(1, MAX_US, 3).expect("valid histogram bounds"),
            errors: 0,
            secs: None,
        }
    }
}

impl OpStats {
    pub fn record(&mut self, d: Duration) {
        let us = (d.as_micros() as u64).clamp(1, MAX_US);
        // Cannot fail: the value is clamped into the bounds.
        let _ = self.hist.record(us);
    }
    pub fn merge(&mut self, o: &OpStats) {
        let _ = self.hist.add(&o.hist);
        self.errors += o.errors;
        self.secs = match (self.secs, o.secs) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
}

/// Per-operation statistics of one session (or of a whole run, merged).
/// Rows keep the order they were first recorded in.
#[derive(Default, Clone)]
pub struct Recorder {
    pub rows: Vec<(String, OpStats)>,
    pub error_codes: BTreeMap<String, u64>,
}

impl Recorder {
    pub fn row(&mut self, name: &str) -> &mut OpStats {
        let i = match self.rows.iter().position(|(n, _)| n == name) {
            Some(i) => i,
            None => {
                self.rows.push((name.to_owned(), OpStats::default()));
                self.rows.len() - 1
            }
        };
        &mut self.rows[i].1
    }
    pub fn error(&mut self, name: &str, code: i32) {
        self.row(name).errors += 1;
        let label = match jute::ErrorCode::from_code(code) {
            Some(c) => format!("{c:?}"),
            None => format!("code {code}"),
        };
        *self.error_codes.entry(label).or_default() += 1;
    }
    pub fn failure(&mut self, name: &str, what: &str) {
        self.row(name).errors += 1;
        *self.error_codes.entry(what.to_owned()).or_default() += 1;
    }
    pub fn merge(&mut self, o: &Recorder) {
        for (n, s) in &o.rows {
            self.row(n).merge(s);
        }
        for (k, v) in &o.error_codes {
            *self.error_codes.entry(k.clone()).or_default() += v;
        }
    }
}

/// Percentiles in microseconds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Latency {
    pub mean: f64,
    pub p50: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
}

impl Latency {
    pub fn of(h: &Histogram<u64>) -> Latency {
        if h.is_empty() {
            return Latency::default();
        }
        Latency {
            mean: h.mean(),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            p999: h.value_at_quantile(0.999),
            max: h.max(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub name: String,
    pub count: u64,
    pub errors: u64,
    /// Operations per second over the measured window (or the phase).
    pub throughput: f64,
    /// The phase's wall time, for timed phases.
    pub secs: Option<f64>,
    pub latency_us: Latency,
}

/// One run's result: what `--json` prints and `bench compare` collects.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunResult {
    pub workload: String,
    pub servers: Vec<String>,
    pub sessions: usize,
    pub depth: usize,
    pub payload: usize,
    pub nodes: usize,
    pub read_pct: Option<u32>,
    /// Length of the measured window in seconds.
    pub secs: f64,
    /// Operations completed in the window (all rows but timed phases).
    pub ops: u64,
    pub errors: u64,
    pub throughput: f64,
    pub latency_us: Latency,
    pub rows: Vec<Row>,
    pub error_codes: BTreeMap<String, u64>,
    pub notes: Vec<String>,
    /// CPU seconds (user+system) the server processes used in the measured
    /// window, when their pids were known.
    pub server_cpu_secs: Option<f64>,
    /// CPU seconds this load generator used in the same window.
    #[serde(default)]
    pub bench_cpu_secs: Option<f64>,
    /// The most any one CPU of the machine lost to steal (the hypervisor
    /// running something else) in the window, in percent of its time.
    #[serde(default)]
    pub steal_pct: Option<f64>,
    /// Whether the table's TOTAL line means anything for this workload.
    #[serde(skip)]
    pub show_total: bool,
}

impl RunResult {
    /// Builds the result from a merged recorder. `total` names the rows
    /// whose operations make up the headline throughput and latency (all
    /// rows if empty).
    pub fn build(base: RunResult, rec: &Recorder, total: &[&str]) -> RunResult {
        let mut all: Option<Histogram<u64>> = None;
        let mut r = base;
        r.errors = rec.rows.iter().map(|(_, s)| s.errors).sum();
        for (name, s) in &rec.rows {
            let count = s.hist.len();
            let secs = s.secs.unwrap_or(r.secs);
            r.rows.push(Row {
                name: name.clone(),
                count,
                errors: s.errors,
                throughput: if secs > 0.0 { count as f64 / secs } else { 0.0 },
                secs: s.secs,
                latency_us: Latency::of(&s.hist),
            });
            if total.is_empty() || total.contains(&name.as_str()) {
                match &mut all {
                    None => all = Some(s.hist.clone()),
                    Some(h) => {
                        let _ = h.add(&s.hist);
                    }
                }
            }
        }
        if let Some(h) = all {
            r.ops = h.len();
            r.latency_us = Latency::of(&h);
        }
        r.throughput = if r.secs > 0.0 {
            r.ops as f64 / r.secs
        } else {
            0.0
        };
        r.error_codes = rec.error_codes.clone();
        if total.len() == 1 || (!total.is_empty() && total.len() < rec.rows.len()) {
            r.show_total = false;
        }
        r
    }

    pub fn table(&self) -> String {
        let mut s = String::new();
        let rp = self
            .read_pct
            .map(|p| format!(" read-ratio {p}%"))
            .unwrap_or_default();
        s += &format!(
            "workload {}{} | servers {} | sessions {} x depth {} | payload {} B | nodes {}\n",
            self.workload,
            rp,
            self.servers.join(","),
            self.sessions,
            self.depth,
            self.payload,
            self.nodes
        );
        s += &format!(
            "{:<34} {:>10} {:>8} {:>12} {:>10} {:>10} {:>10} {:>10} {:>10}\n",
            "operation",
            "count",
            "errors",
            "ops/s",
            "p50 ms",
            "p99 ms",
            "p99.9 ms",
            "max ms",
            "secs"
        );
        let line = |name: &str, count, errors, tput: f64, l: &Latency, secs: f64| {
            format!(
                "{:<34} {:>10} {:>8} {:>12.1} {:>10.3} {:>10.3} {:>10.3} {:>10.3} {:>10.2}\n",
                name,
                count,
                errors,
                tput,
                l.p50 as f64 / 1000.0,
                l.p99 as f64 / 1000.0,
                l.p999 as f64 / 1000.0,
                l.max as f64 / 1000.0,
                secs
            )
        };
        for r in &self.rows {
            s += &line(
                &r.name,
                r.count,
                r.errors,
                r.throughput,
                &r.latency_us,
                r.secs.unwrap_or(self.secs),
            );
        }
        if self.rows.len() > 1 && self.show_total {
            s += &line(
                "TOTAL",
                self.ops,
                self.errors,
                self.throughput,
                &self.latency_us,
                self.secs,
            );
        }
        if !self.error_codes.is_empty() {
            let e: Vec<String> = self
                .error_codes
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            s += &format!("errors: {}\n", e.join(", "));
        }
        if let Some(c) = self.server_cpu_secs {
            s += &format!(
                "server CPU: {c:.2} s in the window, {:.2} s per 100k operations\n",
                if self.ops > 0 {
                    c * 1e5 / self.ops as f64
                } else {
                    0.0
                }
            );
        }
        if let Some(c) = self.bench_cpu_secs {
            s += &format!(
                "load generator CPU: {c:.2} s in the window ({:.0}% of one core)\n",
                if self.secs > 0.0 {
                    c * 100.0 / self.secs
                } else {
                    0.0
                }
            );
        }
        if let Some(p) = self.steal_pct {
            if p >= 0.5 {
                s += &format!("CPU steal: up to {p:.1}% of a CPU's time in the window\n");
            }
        }
        for n in &self.notes {
            s += &format!("note: {n}\n");
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> RunResult {
        RunResult {
            workload: "t".into(),
            servers: vec!["127.0.0.1:1".into()],
            sessions: 1,
            depth: 1,
            payload: 0,
            nodes: 0,
            read_pct: None,
            secs: 2.0,
            ops: 0,
            errors: 0,
            throughput: 0.0,
            latency_us: Latency::default(),
            rows: vec![],
            error_codes: BTreeMap::new(),
            notes: vec![],
            server_cpu_secs: None,
            bench_cpu_secs: None,
            steal_pct: None,
            show_total: true,
        }
    }

    #[test]
    fn build_merges_rows_percentiles_and_errors() {
        let mut a = Recorder::default();
        let mut b = Recorder::default();
        for ms in 1..=100u64 {
            a.row("get").record(Duration::from_millis(ms));
        }
        b.row("set").record(Duration::from_millis(500));
        b.error("set", jute::ErrorCode::NoNode.code());
        b.error("get", -999);
        a.merge(&b);
        let r = RunResult::build(base(), &a, &[]);
        assert_eq!(r.ops, 101);
        assert_eq!(r.errors, 2);
        assert!((r.throughput - 50.5).abs() < 1e-9);
        assert_eq!(r.rows[0].name, "get");
        assert_eq!(r.rows[0].count, 100);
        // hdrhistogram keeps 3 significant digits.
        let p50 = r.rows[0].latency_us.p50;
        assert!((49_900..=50_100).contains(&p50), "{p50}");
        assert!(r.latency_us.max >= 499_000);
        assert_eq!(r.error_codes.get("NoNode"), Some(&1));
        assert_eq!(r.error_codes.get("code -999"), Some(&1));
        let t = r.table();
        assert!(t.contains("TOTAL") && t.contains("errors: "), "{t}");
        // Only the named rows make up the headline.
        let r = RunResult::build(base(), &a, &["set"]);
        assert_eq!(r.ops, 1);
        assert!(!r.table().contains("TOTAL"));
    }

    #[test]
    fn json_round_trips() {
        let mut a = Recorder::default();
        a.row("get").record(Duration::from_micros(250));
        let r = RunResult::build(base(), &a, &[]);
        let j = serde_json::to_string(&r).unwrap();
        let back: RunResult = serde_json::from_str(&j).unwrap();
        assert_eq!(back.ops, 1);
        assert_eq!(back.rows[0].latency_us.p50, r.rows[0].latency_us.p50);
    }
}
