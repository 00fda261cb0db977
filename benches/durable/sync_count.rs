//! Counting syncs: this binary's own `fsync`, `fdatasync` and
//! `sync_file_range`, which take precedence over libc's for every caller
//! linked into it (std's `File::sync_all`/`sync_data`, the peers' libc calls).
//! Linux on x86-64 and aarch64 only; elsewhere [`now`] says `None`.

pub(crate) use counting::now;

#[cfg(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64")))]
mod counting {
    use std::ffi::{c_int, c_long, c_uint};
    use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

    /// `fsync` + `fdatasync` calls.
    pub static SYNCS: AtomicU64 = AtomicU64::new(0);
    /// `sync_file_range` calls.
    pub static RANGE_SYNCS: AtomicU64 = AtomicU64::new(0);

    #[cfg(target_arch = "x86_64")]
    mod nr {
        pub const FSYNC: std::ffi::c_long = 74;
        pub const FDATASYNC: std::ffi::c_long = 75;
        pub const SYNC_FILE_RANGE: std::ffi::c_long = 277;
    }
    #[cfg(target_arch = "aarch64")]
    mod nr {
        pub const FSYNC: std::ffi::c_long = 82;
        pub const FDATASYNC: std::ffi::c_long = 83;
        pub const SYNC_FILE_RANGE: std::ffi::c_long = 84;
    }

    extern "C" {
        /// libc's generic system call entry (sets `errno`, returns -1 on error).
        fn syscall(number: c_long, ...) -> c_long;
    }

    /// Counts, then `fsync(2)`.
    #[no_mangle]
    pub extern "C" fn fsync(fd: c_int) -> c_int {
        SYNCS.fetch_add(1, Relaxed);
        // SAFETY: the fsync system call with its one integer argument, as
        // libc's wrapper makes it.
        unsafe { syscall(nr::FSYNC, fd as c_long) as c_int }
    }

    /// Counts, then `fdatasync(2)`.
    #[no_mangle]
    pub extern "C" fn fdatasync(fd: c_int) -> c_int {
        SYNCS.fetch_add(1, Relaxed);
        // SAFETY: as for `fsync`.
        unsafe { syscall(nr::FDATASYNC, fd as c_long) as c_int }
    }

    /// Counts, then `sync_file_range(2)` (64-bit offsets: same argument
    /// order on x86-64 and aarch64).
    #[no_mangle]
    pub extern "C" fn sync_file_range(fd: c_int, offset: i64, nbytes: i64, flags: c_uint) -> c_int {
        RANGE_SYNCS.fetch_add(1, Relaxed);
        // SAFETY: the system call with libc's argument list for it.
        unsafe {
            syscall(
                nr::SYNC_FILE_RANGE,
                fd as c_long,
                offset as c_long,
                nbytes as c_long,
                flags as c_long,
            ) as c_int
        }
    }

    /// (fsync + fdatasync, sync_file_range) so far.
    pub fn now() -> Option<(u64, u64)> {
        Some((SYNCS.load(Relaxed), RANGE_SYNCS.load(Relaxed)))
    }
}

#[cfg(not(all(target_os = "linux", any(target_arch = "x86_64", target_arch = "aarch64"))))]
mod counting {
    pub fn now() -> Option<(u64, u64)> {
        None
    }
}
