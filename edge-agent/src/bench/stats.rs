//! Latency samples → percentiles, and what the kernel says about this process (CPU time, peak
//! memory).

use std::time::Duration;

use serde::Serialize;

/// Durations of one stage, one sample per frame.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    pub fn with_capacity(n: usize) -> Self {
        Samples(Vec::with_capacity(n))
    }

    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    pub fn extend(&mut self, other: Samples) {
        self.0.extend(other.0);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn summary(&self) -> LatencySummary {
        let mut ms: Vec<f64> = self.0.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        ms.sort_by(f64::total_cmp);
        let mean = if ms.is_empty() { 0.0 } else { ms.iter().sum::<f64>() / ms.len() as f64 };
        LatencySummary {
            count: ms.len(),
            p50_ms: percentile(&ms, 50.0),
            p99_ms: percentile(&ms, 99.0),
            mean_ms: mean,
            max_ms: ms.last().copied().unwrap_or(0.0),
        }
    }
}

/// Percentiles of one stage, in milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct LatencySummary {
    pub count: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub mean_ms: f64,
    pub max_ms: f64,
}

/// Nearest-rank percentile of sorted values (0 when empty): the smallest value with at least
/// `p` % of the samples at or below it. Nearest-rank never invents a value between samples,
/// so p99 ≥ p50 holds exactly and small sample counts stay honest.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// The kernel reports CPU times in USER_HZ ticks, which the Linux ABI fixes at 100 per second
/// on every architecture edge boxes use (x86-64, arm64).
const USER_HZ: f64 = 100.0;

/// User + system CPU time of this process so far (all threads), from `/proc/self/stat`.
pub fn process_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    parse_cpu_ticks(&stat).map(|ticks| Duration::from_secs_f64(ticks as f64 / USER_HZ))
}

/// utime + stime (fields 14 and 15) of a `/proc/<pid>/stat` line. The command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last `)`.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state): utime is field 14 → index 11.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Peak resident set size (VmHWM) of this process in bytes, from `/proc/self/status`.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// CPU use of this process between two points, as a percentage of one core (2 busy cores =
/// 200 %).
pub struct CpuMeter {
    cpu: Option<Duration>,
    wall: std::time::Instant,
}

impl CpuMeter {
    pub fn start() -> Self {
        CpuMeter { cpu: process_cpu_time(), wall: std::time::Instant::now() }
    }

    /// Percent of one core used since `start` (0 when /proc is unreadable).
    pub fn percent(&self) -> f64 {
        let wall = self.wall.elapsed().as_secs_f64();
        match (self.cpu, process_cpu_time()) {
            (Some(a), Some(b)) if wall > 0.0 => (b.saturating_sub(a)).as_secs_f64() / wall * 100.0,
            _ => 0.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 99.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
        // Two samples: the median is the lower one, p99 the upper one.
        assert_eq!(percentile(&[1.0, 3.0], 50.0), 1.0);
        assert_eq!(percentile(&[1.0, 3.0], 99.0), 3.0);
    }

    #[test]
    fn summary_of_durations() {
        let mut s = Samples::default();
        for ms in [4, 1, 3, 2] {
            s.push(Duration::from_millis(ms));
        }
        let sum = s.summary();
        assert_eq!(sum.count, 4);
        assert!((sum.p50_ms - 2.0).abs() < 1e-9);
        assert!((sum.p99_ms - 4.0).abs() < 1e-9);
        assert!((sum.mean_ms - 2.5).abs() < 1e-9);
    }

    #[test]
    fn parses_proc_files() {
        // A command name with a space and a parenthesis.
        let stat = "1234 (edge agent) x) S 1 1234 1234 0 -1 4194304 500 0 0 0 250 40 0 0 20 0 9 0 100 0 0";
        assert_eq!(parse_cpu_ticks(stat), Some(290));
        let status = "Name:\tedge-agent\nVmPeak:\t  200 kB\nVmHWM:\t   81234 kB\nVmRSS:\t 80000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(81234 * 1024));
        assert!(process_cpu_time().is_some());
        assert!(peak_rss_bytes().is_some_and(|b| b > 0));
    }
}
