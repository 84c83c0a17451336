//! Tells glibc's allocator to keep the memory of freed tensors instead of handing it
//! back to the kernel.
//!
//! By default glibc serves every allocation above 128 KiB (then a moving threshold)
//! with a fresh `mmap` and returns it with `munmap` when freed, so every training step
//! page-faults its activations in again. Kept in the heap, the blocks are reused from
//! step to step (the gain is measured in BENCHMARKS.md, "Throughput").

/// glibc `mallopt` parameters (malloc.h).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
mod glibc {
    pub const M_TRIM_THRESHOLD: i32 = -1;
    pub const M_TOP_PAD: i32 = -2;
    pub const M_MMAP_THRESHOLD: i32 = -3;
    unsafe extern "C" {
        pub fn mallopt(param: i32, value: i32) -> i32;
    }
}

/// Keeps freed blocks up to 32 MiB (glibc's largest mmap threshold) in the heap, and
/// up to 1 GiB of free heap unreturned. Call once at start, before threads exist.
pub fn keep_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `mallopt` only changes allocator tunables; it is called before any other
    // thread exists, as glibc asks.
    unsafe {
        glibc::mallopt(glibc::M_MMAP_THRESHOLD, 32 << 20);
        glibc::mallopt(glibc::M_TRIM_THRESHOLD, 1 << 30);
        glibc::mallopt(glibc::M_TOP_PAD, 64 << 20);
    }
}
