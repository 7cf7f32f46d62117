//! sluice-core: everything that touches a packet. The DPDK runtime
//! (`dpdk`), wire formats (`wire`), neighbours (`neigh`), the per-burst
//! pipeline (`pipeline`) and the configuration contract (`config`).
//!
//! All packet logic works on byte slices so it is unit-tested, fuzzed and
//! benchmarked without EAL; an `Mbuf` only lends its data to it.

#![deny(unsafe_code)]

pub mod config;
pub mod control_counters;
pub mod craft;
pub mod family;
pub mod flow;
pub mod fxmap;
pub mod lb;
#[path = "dpdk/memory.rs"]
pub mod memory;
pub mod named;
pub mod neigh;
pub mod pipeline;
#[path = "dpdk/prefetch.rs"]
pub mod prefetch;
#[path = "dpdk/shm.rs"]
pub mod shm;
#[path = "dpdk/simd.rs"]
pub mod simd;
pub mod sync;
pub mod wire;

/// Largest RX/TX burst a worker handles; per-burst arrays are this long.
pub const MAX_BURST: usize = 64;

#[cfg(feature = "dpdk")]
pub mod dpdk;
#[cfg(feature = "dpdk")]
pub mod runtime;
