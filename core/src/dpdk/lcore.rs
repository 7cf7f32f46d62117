//! Lcores: launching workers, and the TSC for cycle counts.

use super::{strerror, sys, DpdkError};
use std::ffi::c_void;

/// The lcore of the calling thread (u32::MAX on a non-EAL thread).
pub fn current_lcore() -> u32 {
    // SAFETY: reads the calling thread's lcore id variable.
    unsafe { sys::shim_rte_lcore_id() }
}

/// The main lcore (where control runs).
pub fn main_lcore() -> u32 {
    // SAFETY: plain getter, valid after EAL init (callers hold an `Eal`).
    unsafe { sys::rte_get_main_lcore() }
}

/// Time stamp counter: the CPU instruction inline (rte_rdtsc is a static
/// inline function, which only a call into the C shim could reach).
#[inline]
pub fn rdtsc() -> u64 {
    #[cfg(target_arch = "x86_64")]
    #[allow(unused_unsafe)]
    // SAFETY: RDTSC reads the time stamp counter; no memory is touched, and
    // every x86-64 CPU has it.
    let t = unsafe { std::arch::x86_64::_rdtsc() };
    #[cfg(not(target_arch = "x86_64"))]
    // SAFETY: reads the TSC; no memory is touched.
    let t = unsafe { sys::shim_rte_rdtsc() };
    t
}

/// TSC ticks per second.
pub fn tsc_hz() -> u64 {
    // SAFETY: plain getter, valid after EAL init.
    unsafe { sys::shim_rte_get_tsc_hz() }
}

type Job = Box<dyn FnOnce() -> i32 + Send + 'static>;

extern "C" fn trampoline(arg: *mut c_void) -> i32 {
    // SAFETY: `arg` is the Box<Job> leaked by `launch` for this call only.
    let job: Box<Job> = unsafe { Box::from_raw(arg as *mut Job) };
    // A panic must not unwind into C; the daemon builds with panic=abort, and
    // elsewhere a panicking worker reports failure instead.
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).unwrap_or(-1)
}

/// Runs `f` on worker lcore `lcore`; [`wait`] returns its result.
pub fn launch(lcore: u32, f: impl FnOnce() -> i32 + Send + 'static) -> Result<(), DpdkError> {
    let job: Box<Job> = Box::new(Box::new(f));
    let arg = Box::into_raw(job) as *mut c_void;
    // SAFETY: the trampoline takes back ownership of `arg` exactly once when
    // the launch succeeds; on failure we reclaim it below.
    let rc = unsafe { sys::rte_eal_remote_launch(Some(trampoline), arg, lcore) };
    if rc != 0 {
        // SAFETY: the launch failed, so the trampoline never ran: reclaim.
        drop(unsafe { Box::from_raw(arg as *mut Job) });
        return Err(DpdkError::Launch {
            lcore,
            reason: strerror(rc),
        });
    }
    Ok(())
}

/// Waits for the job on `lcore` to return, and gives its result.
pub fn wait(lcore: u32) -> i32 {
    // SAFETY: blocks until the lcore is idle; no memory is shared.
    unsafe { sys::rte_eal_wait_lcore(lcore) }
}

/// True when `lcore` is in EAL's core list.
pub fn lcore_enabled(lcore: u32) -> bool {
    // SAFETY: a bounds-checked lookup in EAL's lcore table.
    unsafe { sys::rte_lcore_is_enabled(lcore) != 0 }
}
