//! CPU time (user + system) of processes, read from `/proc`, so that a benchmark can say where
//! the time of a request goes: in the client, the proxy or the server.
//!
//! Linux reports these times in `USER_HZ` ticks, which is 100 per second on every architecture
//! (a fixed part of the kernel's ABI), so figures are 10 ms grained: measure over seconds.

#![allow(dead_code)] // each bench uses part of it

use std::time::Duration;

/// Fields of `/proc/<pid>/stat` after the command name (which may hold spaces and parentheses):
/// index 0 is the stat file's field 3.
fn stat_fields(pid: &str) -> Vec<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    rest.split_whitespace().map(|v| v.parse().unwrap_or(0)).collect()
}

fn ticks(fields: &[u64], at: &[usize]) -> Duration {
    Duration::from_millis(at.iter().map(|&i| fields.get(i).copied().unwrap_or(0)).sum::<u64>() * 10)
}

/// CPU time process `pid` has used so far (zero if it is gone).
pub fn of(pid: u32) -> Duration {
    // utime and stime: fields 14 and 15.
    ticks(&stat_fields(&pid.to_string()), &[11, 12])
}

/// CPU time this process has used so far.
pub fn of_self() -> Duration {
    ticks(&stat_fields("self"), &[11, 12])
}

/// CPU time of this process's children that have ended and been waited for.
pub fn of_waited_children() -> Duration {
    // cutime and cstime: fields 16 and 17.
    ticks(&stat_fields("self"), &[13, 14])
}
