//! sluice-nat: the NAT half of Sluice. Outbound SNAT (port budget, per-member
//! blocks, TCP per-destination reuse, UDP port-restricted cone) lives here,
//! on top of `sluice-core` types (`nat` -> `core`, never back). The data
//! path reads what this crate compiles through `sluice-core`'s snapshot.

#![forbid(unsafe_code)]

pub mod blocks;
