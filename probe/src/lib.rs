//! sluice-probe: health probing. A smoltcp interface on the control thread,
//! TCP/HTTP/HTTPS probes and the up/down state machine feeding distribution.
//!
//! Empty until the health-probe issue; the crate exists so the workspace has
//! its final shape and dependency direction (`probe` -> `core`, never back).

#![forbid(unsafe_code)]
