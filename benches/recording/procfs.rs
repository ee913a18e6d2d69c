//! Process accounting from `/proc`: CPU time (utime + stime, in clock
//! ticks), resident and proportional memory, and thread counts, summed over
//! a set of processes (custosd is one process; ffmpeg is one per camera).

use std::collections::HashMap;
use std::fs;

/// Clock ticks per second of `/proc/<pid>/stat` times.
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 { t as f64 } else { 100.0 }
}

/// utime + stime of `pid`, all its threads, in clock ticks; `None` once the
/// process is gone.
pub fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its ')'.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3 (state); utime is field 14, stime field 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Memory and threads of a set of processes at one moment.
#[derive(Debug, Default, Clone, Copy)]
pub struct MemSample {
    /// Sum of VmRSS: counts shared library pages once per process.
    pub rss_kib: u64,
    /// Sum of Pss: shared pages divided among the processes that map them.
    pub pss_kib: u64,
    pub threads: u64,
}

impl MemSample {
    pub fn max(self, o: MemSample) -> MemSample {
        MemSample {
            rss_kib: self.rss_kib.max(o.rss_kib),
            pss_kib: self.pss_kib.max(o.pss_kib),
            threads: self.threads.max(o.threads),
        }
    }
}

pub fn mem_sample(pids: &[u32]) -> MemSample {
    let mut m = MemSample::default();
    for &pid in pids {
        if let Ok(status) = fs::read_to_string(format!("/proc/{pid}/status")) {
            m.rss_kib += field_kib(&status, "VmRSS:");
            m.threads += field_kib(&status, "Threads:");
        }
        if let Ok(rollup) = fs::read_to_string(format!("/proc/{pid}/smaps_rollup")) {
            m.pss_kib += field_kib(&rollup, "Pss:");
        }
    }
    m
}

/// The number after `key` on its line ("VmRSS:   1234 kB" gives 1234).
fn field_kib(text: &str, key: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Context switches (voluntary and not) of every thread of `pids` now,
/// by thread id: a thread's count grows at each time it sleeps and wakes.
pub fn context_switches(pids: &[u32]) -> HashMap<u32, u64> {
    let mut by_thread = HashMap::new();
    for &pid in pids {
        let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            if let Ok(status) = fs::read_to_string(task.path().join("status")) {
                let n = field_kib(&status, "voluntary_ctxt_switches:")
                    + field_kib(&status, "nonvoluntary_ctxt_switches:");
                by_thread.insert(tid, n);
            }
        }
    }
    by_thread
}

/// Context switches between two `context_switches` readings, by the
/// threads alive at the second (a thread started in between counts from
/// zero; one that ended in between is not counted).
pub fn context_switches_between(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> u64 {
    after
        .iter()
        .map(|(tid, n)| n.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum()
}

pub fn sum_cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter().filter_map(|&p| cpu_ticks(p)).sum()
}

/// The 1-minute load average, to say under what load figures were taken.
pub fn loadavg() -> String {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// CPU model and count, kernel, memory: the machine the figures are for.
pub fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|v| v.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "?".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = field_kib(&meminfo, "MemTotal:") as f64 / 1024.0 / 1024.0;
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpus} x {model}, {mem_gib:.1} GiB RAM, Linux {}",
        kernel.trim()
    )
}
