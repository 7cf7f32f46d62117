//! Shared pieces of Sluice's programs.

#![forbid(unsafe_code)]

/// The commit the programs were built from (`git rev-parse --short=12`).
pub const COMMIT: &str = env!("SLUICE_COMMIT");
/// The DPDK version they were built against (`pkg-config libdpdk`).
pub const DPDK_VERSION: &str = env!("SLUICE_DPDK");
/// What `--version` prints after the program's name.
pub const LONG_VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SLUICE_COMMIT"),
    ", DPDK ",
    env!("SLUICE_DPDK"),
    ")"
);

pub mod adopt;
pub mod cluster;
pub mod ctl;
pub mod flows;
pub mod generate;
pub mod kernel;
pub mod links;
pub mod members;
pub mod metrics;
pub mod pick;
pub mod render;
pub mod report;
pub mod routing;
pub mod rules;
pub mod server;
pub mod traffic;
pub mod views;
pub mod watch;
