//! The `bwtx` tool's global allocator: jemalloc (feature `jemalloc`, part of
//! `cli`), unless `system-allocator` keeps the system's malloc.
//!
//! Only the tool sets one. The library never does: a process has one global
//! allocator, and choosing it is the application's business. An application
//! that embeds bwtx with a memory budget (`Options::cache_size`) and cares
//! about its RSS should make the same choice, for the reason below.
//!
//! Why: bwtx's paged tree frees and allocates pages of many sizes from every
//! thread (fault-ins, evictions, consolidations, retired memory freed by the
//! epoch collector on whichever thread advances it). glibc's malloc keeps
//! such memory in per-thread arenas and returns little of it, so its RSS was
//! 1.5-1.8x the live heap (design/storage.md §5.1). jemalloc with one arena
//! and a background thread that returns freed pages to the OS after 250 ms
//! keeps it closer.
//!
//! Measured (2026-12-05, 05:00-05:08 UTC, load average 1.5-2.6, two
//! alternating pairs per workload of `bwtx bench --dir D --cache-size 64MiB
//! --keys 5000000 --value-size 100 --duration 20 --durability buffered
//! --workload W`, the same commit built with `--features cli` and with
//! `--features cli,system-allocator`):
//!
//! | workload | glibc txns/s | jemalloc txns/s | glibc peak RSS | jemalloc peak RSS |
//! |---|---|---|---|---|
//! | A | 96,708-102,867 | 104,220-114,808 | 390.9-412.8 MiB | 294.1-296.1 MiB |
//! | B | 140,562-144,049 | 159,242-175,676 | 288.1-289.4 MiB | 233.3-233.6 MiB |
//! | C | 180,528-180,619 | 192,598-194,819 | 272.3-280.3 MiB | 226.0-230.5 MiB |
//! | E | 42,666-45,838 | 47,129-50,000 | 264.9-279.2 MiB | 220.8-221.7 MiB |
//!
//! and the 5M-key load took 7.2-8.2 s against 8.6-10.1 s. In memory (three
//! alternating pairs of `bwtx bench --workload a,c --duration 8`, 1M keys, no
//! cache size): A 298,524-421,172 txns/s against 269,545-369,885, C
//! 1.01-1.23M against 1.04-1.24M (the same within this machine's noise),
//! peak RSS 251-253 MiB against 322-363. The options, from
//! single runs of workload A (04:40-04:55 UTC): jemalloc's defaults gave
//! 128-130k txns/s at 408-413 MiB (no better than glibc's RSS: freed pages
//! linger for 10 s); `dirty_decay_ms:1000,muzzy_decay_ms:0` with the
//! background thread 127k at 364 MiB; with two arenas and 500 ms 138k at
//! 322-334 MiB; with no decay at all 126.5k at 296 MiB but a slower load;
//! the chosen ones 131k at 297 MiB. glibc with `MALLOC_ARENA_MAX=1` reached
//! 300-304 MiB but only 77-110k txns/s. Tried after (06:41-06:45 UTC, the
//! same A command, two rounds, options through `_RJEM_MALLOC_CONF` over
//! these): 100 ms decay, thread caches off, and 100 ms with `tcache_max:1024`
//! peaked at 299.6-305.2 MiB against 303.1-307.9 with these options alone,
//! with the same or fewer txns/s (thread caches off: 99-110k against
//! 119-125k). The allocator is at its floor there: what is left is live heap
//! (design/storage.md §5.1).

/// The jemalloc items, built only when the tool uses it (one `cfg` for all).
#[cfg(all(feature = "jemalloc", not(feature = "system-allocator"), not(target_env = "msvc")))]
mod jemalloc {
    /// The allocator itself.
    #[global_allocator]
    static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

    /// jemalloc's options, which it reads from this symbol at its first
    /// allocation (before `main`; `_RJEM_MALLOC_CONF` in the environment is
    /// applied after them, so a user can still override each): one arena,
    /// dirty pages returned to the OS 250 ms after they are freed by a
    /// background thread, none kept as "muzzy" (lazily purged). Checked to
    /// take effect by running the tool with `_RJEM_MALLOC_CONF=stats_print:true`.
    #[export_name = "_rjem_malloc_conf"]
    static MALLOC_CONF: Option<&'static u8> = Some(&CONF[0]);

    /// The string [`MALLOC_CONF`] points to: a C string, so NUL-terminated.
    const CONF: &[u8] = b"background_thread:true,narenas:1,dirty_decay_ms:250,muzzy_decay_ms:0\0";
}

/// Which allocator this build of the tool uses, for the bench's peak-RSS
/// line and JSON.
pub fn name() -> &'static str {
    if cfg!(all(
        feature = "jemalloc",
        not(feature = "system-allocator"),
        not(target_env = "msvc")
    )) {
        "jemalloc"
    } else {
        "system malloc"
    }
}
