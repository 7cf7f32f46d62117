//! Safe wrappers over DPDK: EAL, mempools, mbufs, ports and queues, lcores.
//! With `core/dpdk-sys`, this is the only place `unsafe` is allowed; every
//! block says why it is sound. Nothing here knows about packets' contents:
//! an [`Mbuf`] lends its bytes to the pipeline and gets them back.

#![allow(unsafe_code)]

mod eal;
mod lcore;
mod mbuf;
mod mempool;
pub(crate) mod port;

pub use eal::{eal_argv, Eal};
pub use lcore::{current_lcore, launch, lcore_enabled, main_lcore, rdtsc, tsc_hz, wait};
pub use mbuf::{Burst, Mbuf};
pub use mempool::Mempool;
pub use port::{create_tap, LinkStatus, Port, PortStats, RxQueue, TxQueue};

use sluice_dpdk_sys as sys;
use std::ffi::CStr;

/// What went wrong in DPDK, with its own words (rte_strerror).
#[derive(Debug, thiserror::Error)]
pub enum DpdkError {
    /// rte_eal_init failed.
    #[error("EAL initialisation failed: {0}")]
    EalInit(String),
    /// rte_pdump_init failed.
    #[error("packet capture (pdump) unavailable: {0}")]
    Capture(String),
    /// EAL was already initialised in this process (it can be only once).
    #[error("EAL is already initialised in this process")]
    EalAlreadyInitialised,
    /// An EAL argument holds a NUL byte.
    #[error("EAL argument {0:?} contains a NUL byte")]
    BadArgument(String),
    /// Creating a mempool failed.
    #[error("mempool {name}: {reason}")]
    Mempool {
        /// Pool name.
        name: String,
        /// rte_strerror text.
        reason: String,
    },
    /// No DPDK port has this device name or id.
    #[error("no DPDK port for device {0} (is the --vdev or PCI allow-list in eal_args?)")]
    PortNotFound(String),
    /// A port setup step failed.
    #[error("port {port}: {step} failed: {reason}")]
    PortSetup {
        /// Device name.
        port: String,
        /// The call that failed.
        step: &'static str,
        /// rte_strerror text.
        reason: String,
    },
    /// The device has fewer queues than asked for.
    #[error("port {port}: needs {asked} {kind} queues, the device has {max}")]
    TooFewQueues {
        /// Device name.
        port: String,
        /// rx or tx.
        kind: &'static str,
        /// Asked for.
        asked: u16,
        /// Device maximum.
        max: u16,
    },
    /// rte_eal_remote_launch failed.
    #[error("cannot launch on lcore {lcore}: {reason}")]
    Launch {
        /// Lcore id.
        lcore: u32,
        /// rte_strerror text.
        reason: String,
    },
}

/// Text for a negative return code or rte_errno.
pub(crate) fn strerror(code: i32) -> String {
    let code = code.abs();
    // SAFETY: rte_strerror returns a pointer to a static or thread-local
    // NUL-terminated string for any errno value; we copy it at once.
    let s = unsafe { CStr::from_ptr(sys::rte_strerror(code)) };
    format!("{} (errno {code})", s.to_string_lossy())
}

/// rte_errno of the calling thread.
pub(crate) fn errno() -> i32 {
    // SAFETY: reads the calling thread's per-lcore errno variable.
    unsafe { sys::shim_rte_errno() }
}
