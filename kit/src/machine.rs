//! Facts about the machine printed beside benchmark results, so a run on a
//! busy machine or a slow disk can be told apart.

use std::path::Path;

/// The 1-minute load average (Linux), `?` where it cannot be read.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// The file system type and device `path` is on (Linux: the longest mount
/// point in `/proc/mounts` that is a prefix of it), `?` where unknown.
pub fn fs_of(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let Ok(mounts) = std::fs::read_to_string("/proc/mounts") else {
        return "?".into();
    };
    mounts
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() >= 3 && path.starts_with(f[1])).then(|| (f[1].len(), format!("{} on {} ({})", f[2], f[1], f[0])))
        })
        .max_by_key(|m| m.0)
        .map_or_else(|| "?".into(), |m| m.1)
}
