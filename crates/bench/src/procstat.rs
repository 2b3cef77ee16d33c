//! CPU time and peak RSS of a process, from `/proc`.

use anyhow::{anyhow, Context, Result};

/// Clock ticks per second of `/proc/PID/stat` times (USER_HZ). It is 100 on
/// every mainstream Linux build; `getconf CLK_TCK` overrides when available.
fn clk_tck() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse::<f64>().ok())
        .filter(|v| *v > 0.0)
        .unwrap_or(100.0)
}

/// Reads utime+stime (seconds) of `pid` (`None` = this process).
pub struct CpuClock {
    tck: f64,
}

impl CpuClock {
    /// Determines the tick rate once.
    pub fn new() -> CpuClock {
        CpuClock { tck: clk_tck() }
    }

    /// utime + stime in seconds.
    pub fn cpu_seconds(&self, pid: Option<u32>) -> Result<f64> {
        let path = match pid {
            Some(p) => format!("/proc/{p}/stat"),
            None => "/proc/self/stat".to_string(),
        };
        let s = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
        // The command name (field 2) may contain spaces: fields after it
        // start after the last ')'.
        let rest = s
            .rfind(')')
            .map(|i| &s[i + 1..])
            .ok_or_else(|| anyhow!("{path}: unexpected format"))?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // rest[0] is field 3 (state); utime is field 14, stime field 15.
        let get = |n: usize| -> Result<f64> {
            fields
                .get(n - 3)
                .and_then(|v| v.parse::<f64>().ok())
                .ok_or_else(|| anyhow!("{path}: field {n} missing"))
        };
        Ok((get(14)? + get(15)?) / self.tck)
    }
}

/// A `kB` field of `/proc/PID/status` (e.g. `VmHWM`, `VmRSS`), in bytes.
pub fn status_kb(pid: u32, field: &str) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let s = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    s.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map(|kb| kb * 1024)
        .ok_or_else(|| anyhow!("{path}: no {field}"))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_own_process() {
        let c = CpuClock::new();
        assert!(c.cpu_seconds(None).unwrap() >= 0.0);
        assert!(status_kb(std::process::id(), "VmHWM").unwrap() > 0);
    }
}
