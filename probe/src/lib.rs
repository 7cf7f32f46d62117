//! sluice-probe: health probing. A smoltcp interface on the control thread,
//! TCP/HTTP/HTTPS probes and the up/down state machine feeding distribution.
//!
//! So far: the state machine and the schedule ([`state`]), pure logic over an
//! injected clock. The smoltcp interface, the probes themselves and their
//! effect on distribution are still to come (issue #5).

#![forbid(unsafe_code)]

pub mod state;
