//! Helpers shared by the storage integration tests.
#![cfg(target_os = "linux")]

use std::fs;
use std::path::Path;

/// Pages of `path` in the page cache, from `mincore` over a mapping of it
/// (mapping reads nothing in).
pub fn cached_pages(path: &Path) -> Vec<bool> {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(path).unwrap();
    let len = f.metadata().unwrap().len() as usize;
    let page = 4096usize;
    let mut vec = vec![0u8; len.div_ceil(page)];
    // SAFETY: a private read-only mapping of a file we hold open, unmapped
    // before return; `vec` has one byte per page of it.
    unsafe {
        let p = libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ,
            libc::MAP_PRIVATE,
            f.as_raw_fd(),
            0,
        );
        assert_ne!(p, libc::MAP_FAILED);
        assert_eq!(libc::mincore(p, len, vec.as_mut_ptr()), 0);
        libc::munmap(p, len);
    }
    vec.iter().map(|b| b & 1 == 1).collect()
}
