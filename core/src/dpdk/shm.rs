//! Memory for tables that outlive the process. A [`Slab`] owns one
//! table's slice, on the heap (advised onto huge pages) or inside a
//! [`Mapping`]: a file-backed shared mapping (a file on hugetlbfs, or on
//! tmpfs such as /dev/shm) whose contents stay in the kernel's page cache
//! when the process dies, so a restarted sluiced finds the flow table its
//! predecessor left and adopts it (`flow::table::persist`).
//!
//! Only [`Plain`] types live in a mapping: values that any bit pattern
//! makes valid and that hold no pointers, since another process wrote
//! them. Builds with or without the DPDK runtime, like `memory`; it lives
//! under `dpdk/` because it is `unsafe` code.

#![allow(unsafe_code)]

use std::fs::OpenOptions;
use std::io;
use std::ops::Deref;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;

/// A type whose every bit pattern is a valid value, with no pointers and no
/// drop glue: what may be read from memory another process wrote.
///
/// # Safety
///
/// Implement only for integers, atomics of integers, and `repr(C)`
/// structs, arrays and zero-length alignment markers made of them.
pub unsafe trait Plain: Sized + Sync {}

// SAFETY: integers and atomic integers: every bit pattern is a value.
unsafe impl Plain for AtomicU64 {}
// SAFETY: as above.
unsafe impl Plain for AtomicU32 {}
// SAFETY: an array of plain values is plain.
unsafe impl<T: Plain, const N: usize> Plain for [T; N] {}
// SAFETY: a flow-table bucket is `[AtomicU64; SLOTS]` with an alignment.
unsafe impl Plain for crate::flow::table::Bucket {}
// SAFETY: an entry is atomics (keys, hops, state, ticks, counters,
// sequence numbers), `()` for the IPv4 far hop and a zero-length
// alignment array; `repr(C)`.
unsafe impl Plain for crate::flow::table::Entry<crate::family::V4> {}
// SAFETY: as above, with the IPv6 far hop `[AtomicU64; 2]`.
unsafe impl Plain for crate::flow::table::Entry<crate::family::V6> {}
// SAFETY: the table file's header is `repr(C)` atomics.
unsafe impl Plain for crate::flow::table::Header {}

enum Owner {
    Heap,
    Mapped(#[allow(dead_code)] Arc<Mapping>),
}

/// The slice a table lives in: an owned boxed slice, or a view of a
/// [`Mapping`] that the slab keeps alive. Derefs to `[T]` without a branch.
pub struct Slab<T> {
    ptr: NonNull<T>,
    len: usize,
    owner: Owner,
}

// SAFETY: a slab is a `Box<[T]>` or a view of a mapping it keeps alive;
// sending or sharing it sends or shares `T`s.
unsafe impl<T: Send> Send for Slab<T> {}
// SAFETY: as above.
unsafe impl<T: Sync> Sync for Slab<T> {}

impl<T> Slab<T> {
    /// A slab owning `v`.
    pub fn from_vec(v: Vec<T>) -> Slab<T> {
        let b = v.into_boxed_slice();
        let len = b.len();
        let ptr = NonNull::from(Box::leak(b)).cast::<T>();
        Slab {
            ptr,
            len,
            owner: Owner::Heap,
        }
    }

    /// True when it lives in a shared mapping.
    pub fn is_mapped(&self) -> bool {
        matches!(self.owner, Owner::Mapped(_))
    }
}

impl<T> Deref for Slab<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` and `len` describe a live allocation (the leaked
        // box, or a range of the mapping `owner` keeps mapped) of `len`
        // initialised `T`s (plain in a mapping: any bits are a value).
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }
}

impl<T> Drop for Slab<T> {
    fn drop(&mut self) {
        if let Owner::Heap = self.owner {
            let raw = std::ptr::slice_from_raw_parts_mut(self.ptr.as_ptr(), self.len);
            // SAFETY: `raw` is the box `from_vec` leaked, rebuilt once, here.
            drop(unsafe { Box::from_raw(raw) });
        }
    }
}

impl<T> std::fmt::Debug for Slab<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slab")
            .field("len", &self.len)
            .field("mapped", &self.is_mapped())
            .finish()
    }
}

/// A file mapped shared, read-write, for the life of the last [`Slab`]
/// made of it.
#[derive(Debug)]
pub struct Mapping {
    base: NonNull<u8>,
    len: usize,
    /// Open and locked for the mapping's life: one process at a time.
    _file: std::fs::File,
}

// SAFETY: the mapping is plain shared memory; what lives in it is reached
// only through `Slab`s of `Plain` (atomic) types.
unsafe impl Send for Mapping {}
// SAFETY: as above.
unsafe impl Sync for Mapping {}

/// What [`Mapping::open`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// The file existed with this length: its contents are as left.
    Kept,
    /// New, or of another length: now all zero.
    Zeroed,
}

impl Mapping {
    /// Maps the file at `path` (created if absent), `len` bytes. A file of
    /// another length, or one `keep` refuses after reading its first
    /// `header` bytes, is emptied to zeros first. The file is locked
    /// (`flock`) until the mapping goes: a file another process holds is an
    /// error (`WouldBlock`).
    pub fn open(
        path: &Path,
        len: usize,
        header: usize,
        keep: impl FnOnce(&[u8]) -> bool,
    ) -> io::Result<(Arc<Mapping>, Found)> {
        use std::io::Read;
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        f.try_lock().map_err(|_| {
            io::Error::new(
                io::ErrorKind::WouldBlock,
                format!("{} is in use by another process", path.display()),
            )
        })?;
        let mut found = Found::Zeroed;
        if f.metadata()?.len() == len as u64 {
            let mut head = vec![0u8; header];
            f.read_exact(&mut head)?;
            if keep(&head) {
                found = Found::Kept;
            }
        }
        if found == Found::Zeroed {
            f.set_len(0)?;
            f.set_len(len as u64)?;
        }
        // SAFETY: a new shared mapping of `len` bytes (the file's size) of a
        // file open read-write; the kernel picks an unused address, so no
        // existing memory is affected.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                // Populated at once: a table is touched everywhere at
                // adoption, and one bulk fault is cheaper than 4 KB at a time.
                libc::MAP_SHARED | libc::MAP_POPULATE,
                f.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let base =
            NonNull::new(p.cast::<u8>()).ok_or_else(|| io::Error::other("mmap gave null"))?;
        Ok((
            Arc::new(Mapping {
                base,
                len,
                _file: f,
            }),
            found,
        ))
    }

    /// `n` values of `T` from byte `offset`, which must be aligned for `T`
    /// and, with them, lie inside the mapping.
    pub fn slab<T: Plain>(self: &Arc<Self>, offset: usize, n: usize) -> Slab<T> {
        let size = n.checked_mul(std::mem::size_of::<T>()).expect("table size");
        assert!(
            offset.is_multiple_of(std::mem::align_of::<T>()) && offset + size <= self.len,
            "a table outside its mapping"
        );
        // SAFETY: `offset` lies inside the mapping (checked above), so the
        // pointer is in bounds and, as the mapping is page aligned, aligned
        // for `T`.
        let p = unsafe { self.base.as_ptr().add(offset) };
        Slab {
            ptr: NonNull::new(p.cast::<T>()).expect("inside a mapping"),
            len: n,
            owner: Owner::Mapped(Arc::clone(self)),
        }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the range is the mapping `open` made, unmapped once, when
        // no slab of it is left.
        unsafe {
            libc::munmap(self.base.as_ptr().cast(), self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering::Relaxed;

    #[test]
    fn a_mapping_keeps_what_was_written_for_the_next_one() {
        let dir = std::env::temp_dir().join(format!("sluice-shm-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t");
        let (m, found) = Mapping::open(&path, 1 << 16, 8, |_| true).unwrap();
        assert_eq!(found, Found::Zeroed, "a new file");
        let words = m.slab::<AtomicU64>(0, 1 << 13);
        assert!(words.iter().all(|w| w.load(Relaxed) == 0));
        words[0].store(7, Relaxed);
        words[8191].store(9, Relaxed);
        drop((words, m));
        let (m, found) = Mapping::open(&path, 1 << 16, 8, |h| h[0] == 7).unwrap();
        assert_eq!(found, Found::Kept);
        let words = m.slab::<AtomicU64>(0, 1 << 13);
        assert_eq!((words[0].load(Relaxed), words[8191].load(Relaxed)), (7, 9));
        drop((words, m));
        // Refused by its header, or another size: zeroed.
        let (m, found) = Mapping::open(&path, 1 << 16, 8, |_| false).unwrap();
        assert_eq!(found, Found::Zeroed);
        assert_eq!(m.slab::<AtomicU64>(0, 1)[0].load(Relaxed), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_heap_slab_derefs_and_frees() {
        let s = Slab::from_vec((0..1000u64).map(AtomicU64::new).collect());
        assert_eq!(s.len(), 1000);
        assert_eq!(s[999].load(Relaxed), 999);
        assert!(!s.is_mapped());
    }
}
