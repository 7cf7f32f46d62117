//! sluice-nat: the NAT half of Sluice. Outbound SNAT (port budget, per-member
//! blocks, TCP per-destination reuse, UDP port-restricted cone) and the port
//! maps of inbound NAT pool rules live here, on top of `sluice-core` types.
//!
//! Empty until the outbound SNAT issue; the crate exists so the workspace has
//! its final shape and dependency direction (`nat` -> `core`, never back).

#![forbid(unsafe_code)]
