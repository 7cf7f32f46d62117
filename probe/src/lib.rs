//! sluice-probe: health probing. A smoltcp interface on the control thread
//! ([`prober`]), TCP/HTTP/HTTPS probes over it (HTTPS through rustls,
//! [`tls`]), and the up/down state machine and schedule ([`state`]) whose
//! verdicts the daemon turns into the Maglev tables workers read.

#![forbid(unsafe_code)]

pub mod device;
pub mod prober;
pub mod spec;
pub mod state;
pub mod tls;

pub use prober::{Change, MemberStatus, Prober, ProberCounters, Spec};
