//! The calls into the C library Baton makes (its allocator's settings), kept apart so
//! the rest of the workspace can forbid unsafe code.
//!
//! glibc's allocator keeps memory freed in the middle of its heap for reuse: the
//! initial lists of a thousand Applications, or a burst of reconciles, leave megabytes
//! of it resident long after the objects are gone. [`trim_heap`] gives those pages back.
//! It also gives each thread that allocates its own heap ("arena"), each with its own
//! free memory: [`one_heap_arena`] keeps one for the whole process.

/// Makes every thread allocate from one heap. Call before any thread starts. The
/// operator's threads spend their time waiting on the network, so they seldom contend
/// for the heap's lock; separate heaps cost about 1.5 MiB of idle RSS at a thousand
/// Applications. Does nothing outside glibc.
pub fn one_heap_arena() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: mallopt only changes a setting of the allocator, under its own lock; it
    // reads and writes no memory of the caller's.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

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
    fn one_arena_still_serves_every_thread() {
        super::one_heap_arena();
        let threads: Vec<_> = (0..4u8)
            .map(|t| {
                std::thread::spawn(move || {
                    let kept: Vec<Vec<u8>> = (0..1000).map(|i| vec![t; i % 64 + 1]).collect();
                    kept.iter().filter(|v| v.iter().all(|b| *b == t)).count()
                })
            })
            .collect();
        for t in threads {
            assert_eq!(t.join().ok(), Some(1000));
        }
    }

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
