//! Shared pieces of Sluice's programs.

#![forbid(unsafe_code)]

pub mod report;
