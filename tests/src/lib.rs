//! Test harness for Sluice's integration tests and the `make run` demo:
//! network-namespace labs with real Linux hosts ([`lab`]), the daemon as a
//! child process with its counter report ([`daemon`]), and pcap files built
//! and checked by tests ([`pcap`]), nginx backends ([`nginx`]), the sluice-gen generator ([`gen`]).
//!
//! Everything a lab creates is removed when its value drops, also when a
//! test fails or panics. Labs run one at a time (a process-wide lock): each
//! daemon busy-polls a core, and this machine has two.

#![forbid(unsafe_code)]

pub mod daemon;
pub mod gen;
pub mod lab;
pub mod nginx;
pub mod pcap;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The sluiced binary next to the running test (target/<profile>/sluiced),
/// or `$SLUICED`.
pub fn sluiced_path() -> PathBuf {
    if let Ok(p) = std::env::var("SLUICED") {
        return p.into();
    }
    let exe = std::env::current_exe().expect("current exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    let p = dir.join("sluiced");
    assert!(
        p.exists(),
        "{} is missing: build it first (`cargo build --bins`, or `make test`)",
        p.display()
    );
    p
}

/// The workspace root.
pub fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace")
        .to_path_buf()
}

/// Runs a command, returning its output; panics if it cannot start.
pub fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Runs a command that must succeed.
pub fn must(cmd: &mut Command) -> Output {
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Fails with one clear line when the machine lacks what labs need.
pub fn require_lab_tools() {
    let root = run(Command::new("id").arg("-u"));
    assert_eq!(
        String::from_utf8_lossy(&root.stdout).trim(),
        "0",
        "lab tests need root (network namespaces)"
    );
    for tool in ["ip", "ethtool", "ping", "arping", "tcpdump"] {
        let found = run(Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}")))
        .status
        .success();
        assert!(found, "`{tool}` is missing: run `make test` (it installs the lab packages) or scripts/deps.sh");
    }
}
