//! The one call into the C library Baton makes, kept apart so the rest of the
//! workspace can forbid unsafe code.
//!
//! glibc's allocator keeps memory freed in the middle of its heap for reuse: the
//! initial lists of a thousand Applications, or a burst of reconciles, leave megabytes
//! of it resident long after the objects are gone. [`trim_heap`] gives those pages back.

/// Returns the allocator's free pages to the operating system; does nothing outside
/// glibc.
pub fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: malloc_trim takes the allocator's own locks and releases only pages that
    // hold no allocation; it reads and writes no memory of the caller's.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn trimming_keeps_live_allocations_intact() {
        let kept: Vec<Vec<u8>> = (0..1000).map(|i| vec![(i % 251) as u8; 4096]).collect();
        let freed: Vec<Vec<u8>> = (0..1000).map(|_| vec![7u8; 4096]).collect();
        drop(freed);
        super::trim_heap();
        for (i, v) in kept.iter().enumerate() {
            assert!(v.iter().all(|b| *b == (i % 251) as u8));
        }
    }
}
