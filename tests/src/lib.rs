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
pub mod instances;
pub mod kernel;
pub mod lab;
pub mod lab_rules;
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

/// A release build of `name` (`cargo build --release --bins`, which
/// `make test` runs): for the labs whose load a debug build on this
/// 2-core machine cannot carry (two instances at once).
pub fn release_bin(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target"));
    let p = target.join("release").join(name);
    assert!(
        p.exists(),
        "{} is missing: build it first (`cargo build --release --bins`, or `make test`)",
        p.display()
    );
    p
}

/// The sluicectl binary next to sluiced (or `$SLUICECTL`).
pub fn sluicectl_path() -> PathBuf {
    if let Ok(p) = std::env::var("SLUICECTL") {
        return p.into();
    }
    sluiced_path().with_file_name("sluicectl")
}

/// Runs `sluicectl --socket SOCKET ARGS`.
pub fn sluicectl(socket: &std::path::Path, args: &[&str]) -> Output {
    run(Command::new(sluicectl_path())
        .arg("--socket")
        .arg(socket)
        .args(args))
}

/// A `[control]` section for a daemon run outside a namespace: its own
/// socket and state under `dir`, and metrics on a free local port (so
/// tests running side by side do not collide). Returns (section, port).
pub fn control_section(dir: &std::path::Path) -> (String, u16) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port");
    let text = format!(
        "[control]\nsocket = \"{}\"\nstate_dir = \"{}\"\nmetrics = \"127.0.0.1:{port}\"\n",
        dir.join("sluiced.sock").display(),
        dir.join("state").display()
    );
    (text, port)
}

/// The sum of the samples of metric `name` (Prometheus text format) whose
/// labels include every `labels` pair; `None` when no sample matches.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let mut sum = None;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else {
            continue;
        };
        let (set, value) = match rest.strip_prefix('{') {
            Some(r) => match r.split_once("} ") {
                Some((set, v)) => (set, v),
                None => continue,
            },
            None => match rest.strip_prefix(' ') {
                Some(v) => ("", v),
                None => continue,
            },
        };
        let all = labels
            .iter()
            .all(|(k, v)| set.split(',').any(|kv| kv == format!("{k}=\"{v}\"")));
        if all {
            if let Ok(v) = value.trim().parse::<f64>() {
                *sum.get_or_insert(0.0) += v;
            }
        }
    }
    sum
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
    require_tools(&["ip", "ethtool", "ping", "arping", "tcpdump"]);
}

/// Fails with one clear line when one of `tools` (a command or a path) is
/// missing.
pub fn require_tools(tools: &[&str]) {
    for tool in tools {
        let found = run(Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {tool}")))
        .status
        .success();
        assert!(found, "`{tool}` is missing: run `make test` (it installs the lab packages) or scripts/deps.sh");
    }
}
