//! Latency recording and percentiles.

use std::time::Duration;

use serde::Serialize;

/// Steps of one issuance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    /// POST new-order.
    NewOrder,
    /// POST-as-GET of every authorization.
    Authz,
    /// POST of every challenge.
    Challenge,
    /// Polling the order until `ready`.
    PollReady,
    /// Building the CSR (load-generator CPU only).
    Csr,
    /// POST finalize.
    Finalize,
    /// Polling the order until `valid`.
    PollValid,
    /// POST-as-GET of the certificate.
    Download,
    /// The whole flow, new-order to download.
    Total,
}

/// Every step, in report order.
pub const STEPS: [Step; 9] = [
    Step::Total,
    Step::NewOrder,
    Step::Authz,
    Step::Challenge,
    Step::PollReady,
    Step::Csr,
    Step::Finalize,
    Step::PollValid,
    Step::Download,
];

impl Step {
    /// Name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Step::NewOrder => "new_order",
            Step::Authz => "authz",
            Step::Challenge => "challenge",
            Step::PollReady => "poll_ready",
            Step::Csr => "csr",
            Step::Finalize => "finalize",
            Step::PollValid => "poll_valid",
            Step::Download => "download",
            Step::Total => "total",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Times of the steps of one issuance.
#[derive(Default, Clone, Copy)]
pub struct StepTimes([Duration; 9]);

impl StepTimes {
    /// Adds `d` to `step`.
    pub fn add(&mut self, step: Step, d: Duration) {
        self.0[step.index()] += d;
    }
}

/// Latencies of successful issuances, per step, in microseconds.
#[derive(Default)]
pub struct Recorder {
    samples: [Vec<u64>; 9],
}

impl Recorder {
    /// Records one successful issuance.
    pub fn record(&mut self, t: &StepTimes) {
        for (i, d) in t.0.iter().enumerate() {
            self.samples[i].push(d.as_micros() as u64);
        }
    }

    /// Merges another recorder.
    pub fn merge(&mut self, other: Recorder) {
        for (a, b) in self.samples.iter_mut().zip(other.samples) {
            a.extend(b);
        }
    }

    /// Summaries in report order.
    pub fn summaries(&mut self) -> Vec<Summary> {
        STEPS
            .iter()
            .map(|s| Summary::of(s.name(), &mut self.samples[s.index()]))
            .collect()
    }
}

/// Percentiles of one step, milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// Step name.
    pub step: &'static str,
    /// Samples.
    pub count: usize,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Maximum.
    pub max_ms: f64,
}

impl Summary {
    fn of(step: &'static str, v: &mut [u64]) -> Summary {
        v.sort_unstable();
        let ms = |us: u64| us as f64 / 1000.0;
        let pct = |p: f64| -> f64 {
            if v.is_empty() {
                return 0.0;
            }
            // nearest-rank
            let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
            ms(v[rank.clamp(1, v.len()) - 1])
        };
        let mean = if v.is_empty() {
            0.0
        } else {
            ms(v.iter().sum::<u64>()) / v.len() as f64
        };
        Summary {
            step,
            count: v.len(),
            mean_ms: mean,
            p50_ms: pct(50.0),
            p90_ms: pct(90.0),
            p99_ms: pct(99.0),
            max_ms: v.last().map(|x| ms(*x)).unwrap_or(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut v: Vec<u64> = (1..=100).map(|x| x * 1000).collect();
        let s = Summary::of("t", &mut v);
        assert_eq!(s.p50_ms, 50.0);
        assert_eq!(s.p90_ms, 90.0);
        assert_eq!(s.p99_ms, 99.0);
        assert_eq!(s.max_ms, 100.0);
        let e = Summary::of("e", &mut []);
        assert_eq!(e.count, 0);
    }
}
