//! EAL initialisation: once per process, from the config's `eal_args`.

use super::{errno, strerror, sys, DpdkError};
use std::ffi::{c_char, CString};
use std::sync::atomic::{AtomicBool, Ordering};

static INITIALISED: AtomicBool = AtomicBool::new(false);

/// Proof that EAL is up. Dropping it does not clean up: call
/// [`Eal::cleanup`] after every port is closed.
#[derive(Debug)]
pub struct Eal {
    _private: (),
}

/// The argv given to rte_eal_init: a program name, then `args` as they are.
pub fn eal_argv(program: &str, args: &[String]) -> Result<Vec<CString>, DpdkError> {
    std::iter::once(program)
        .chain(args.iter().map(String::as_str))
        .map(|a| CString::new(a).map_err(|_| DpdkError::BadArgument(a.to_string())))
        .collect()
}

impl Eal {
    /// Initialises EAL. Pins the calling thread to the main lcore; threads
    /// spawned afterwards inherit that pinning.
    pub fn init(args: &[String]) -> Result<Eal, DpdkError> {
        if INITIALISED.swap(true, Ordering::SeqCst) {
            return Err(DpdkError::EalAlreadyInitialised);
        }
        let argv = eal_argv("sluiced", args)?;
        let mut ptrs: Vec<*mut c_char> = argv.iter().map(|a| a.as_ptr() as *mut c_char).collect();
        ptrs.push(std::ptr::null_mut());
        // SAFETY: argv points to NUL-terminated strings that outlive the call
        // (`argv` is alive until the end of this function, and EAL copies what
        // it keeps); argc matches the non-null entries.
        let rc = unsafe { sys::rte_eal_init((ptrs.len() - 1) as i32, ptrs.as_mut_ptr()) };
        if rc < 0 {
            return Err(DpdkError::EalInit(strerror(errno())));
        }
        Ok(Eal { _private: () })
    }

    /// Lets `dpdk-dumpcap` and `dpdk-pdump` (DPDK secondary processes of
    /// the same `--file-prefix`) capture on this process's ports: they ask
    /// over EAL's multi-process channel, and each captured frame is copied
    /// into their mempool. Costs nothing while nobody captures. Fails when
    /// EAL runs without a multi-process channel (`--in-memory`,
    /// `--no-shconf`), or without shared memory for a secondary to map
    /// (`--no-huge`: capture then needs hugepages).
    pub fn enable_capture(&self) -> Result<(), DpdkError> {
        // SAFETY: EAL is up (this `Eal` proves it); rte_pdump_init takes no
        // pointers and registers a multi-process handler.
        let rc = unsafe { sys::rte_pdump_init() };
        if rc < 0 {
            return Err(DpdkError::Capture(strerror(errno())));
        }
        Ok(())
    }

    /// DPDK's version string.
    pub fn version(&self) -> String {
        // SAFETY: rte_version returns a static NUL-terminated string.
        unsafe { std::ffi::CStr::from_ptr(sys::shim_rte_version()) }
            .to_string_lossy()
            .into_owned()
    }

    /// Releases EAL resources (hugepage files, runtime directory). Ports and
    /// mempools must be gone before.
    pub fn cleanup(self) {
        // SAFETY: called once, by value, after the caller closed every port.
        unsafe { sys::rte_eal_cleanup() };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_is_program_then_args() {
        let v = eal_argv("sluiced", &["-l".into(), "0-1".into(), "--no-huge".into()]).unwrap();
        let s: Vec<&str> = v.iter().map(|c| c.to_str().unwrap()).collect();
        assert_eq!(s, ["sluiced", "-l", "0-1", "--no-huge"]);
        assert!(matches!(
            eal_argv("x", &["a\0b".into()]),
            Err(DpdkError::BadArgument(_))
        ));
    }
}
