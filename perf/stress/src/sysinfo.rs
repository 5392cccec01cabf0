//! CPU time of this process and of the whole machine, from /proc, so a run
//! can tell when the load generator (or the machine) is the bottleneck.
//! /proc reports times in USER_HZ, which is 100 on every Linux ABI.

use std::time::Instant;

const USER_HZ: f64 = 100.0;

/// User + system CPU seconds of this process so far.
pub fn process_cpu_s() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name, which is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line: 12 and 13 here.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / USER_HZ)
}

/// (busy, total) ticks of all CPUs, from the first line of /proc/stat.
pub fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let line = stat.lines().next()?;
    let nums: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|t| t.parse().ok())
        .collect();
    if nums.len() < 5 {
        return None;
    }
    let total: u64 = nums.iter().take(8).sum();
    // idle + iowait
    let idle = nums[3] + nums[4];
    Some((total - idle, total))
}

pub fn cpu_count() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// CPU use over an interval: started by [`CpuWindow::start`], read by
/// [`CpuWindow::finish`].
pub struct CpuWindow {
    at: Instant,
    process_s: Option<f64>,
    machine: Option<(u64, u64)>,
}

#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    /// Cores this process used on average (1.0 = one core busy).
    pub generator_cores: f64,
    /// Fraction of all cores busy (0..1), everything on the machine.
    pub machine_busy: f64,
}

impl CpuWindow {
    pub fn start() -> CpuWindow {
        CpuWindow {
            at: Instant::now(),
            process_s: process_cpu_s(),
            machine: machine_ticks(),
        }
    }

    pub fn finish(&self) -> CpuUse {
        let wall_s = self.at.elapsed().as_secs_f64().max(1e-3);
        let generator_cores = match (self.process_s, process_cpu_s()) {
            (Some(a), Some(b)) => (b - a) / wall_s,
            _ => 0.0,
        };
        let machine_busy = match (self.machine, machine_ticks()) {
            (Some((b0, t0)), Some((b1, t1))) if t1 > t0 => (b1 - b0) as f64 / (t1 - t0) as f64,
            _ => 0.0,
        };
        CpuUse {
            generator_cores,
            machine_busy,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc() {
        assert!(process_cpu_s().is_some());
        let (busy, total) = machine_ticks().unwrap();
        assert!(busy <= total);
        let w = CpuWindow::start();
        let mut x = 0u64;
        let t = Instant::now();
        while t.elapsed().as_millis() < 50 {
            x = x.wrapping_add(std::hint::black_box(1));
        }
        let u = w.finish();
        // Tick-based accounting may not have ticked yet: only sanity.
        assert!(
            u.generator_cores >= 0.0 && u.machine_busy <= 1.0,
            "{u:?} {x}"
        );
    }
}
