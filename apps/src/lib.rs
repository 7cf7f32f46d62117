//! Shared pieces of Sluice's programs.

#![forbid(unsafe_code)]

pub mod adopt;
pub mod cluster;
pub mod ctl;
pub mod flows;
pub mod kernel;
pub mod links;
pub mod members;
pub mod metrics;
pub mod pick;
pub mod report;
pub mod routing;
pub mod rules;
pub mod server;
pub mod traffic;
pub mod views;
pub mod watch;
