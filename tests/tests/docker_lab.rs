//! docker/lab.sh, the lab the container image runs (docker/compose.yaml),
//! run on this host with the binaries under test: sluiced on two net_tap
//! ports bridged to a client and two web servers; it exits 0 only when
//! every check passed (probes up, HTTP balanced over both servers,
//! sluicectl, /metrics) and tears down what it built.

use std::process::Command;

#[test]
fn the_container_lab_script_passes_its_checks() {
    sluice_tests::require_lab_tools();
    let out = Command::new("bash")
        .arg(sluice_tests::workspace().join("docker/lab.sh"))
        .env("SLUICED", sluice_tests::sluiced_path())
        .env("SLUICECTL", sluice_tests::sluicectl_path())
        .env("KEEP", "0")
        .output()
        .expect("bash");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert_eq!(text.matches("  ok   ").count(), 4, "{text}");
    assert!(
        !Command::new("ip")
            .args(["netns", "list"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("dl-client"))
            .unwrap_or(false),
        "the lab was not torn down"
    );
}

/// The lines of `Dockerfile`'s stage `name` (from its FROM to the next).
fn stage<'a>(dockerfile: &'a str, name: &str) -> Vec<&'a str> {
    let mut lines = dockerfile
        .lines()
        .skip_while(|l| !(l.starts_with("FROM ") && l.ends_with(&format!(" AS {name}"))));
    let first = lines.next().unwrap_or_else(|| panic!("no stage {name}"));
    std::iter::once(first)
        .chain(lines.take_while(|l| !l.starts_with("FROM ")))
        .collect()
}

#[test]
fn the_runtime_image_installs_no_build_tools_and_the_context_leaves_out_target() {
    // No Docker daemon here: the Dockerfile is read, not built (see
    // docker/README.md). What the runtime stage installs and copies:
    let root = sluice_tests::workspace();
    let text = std::fs::read_to_string(root.join("docker/Dockerfile")).unwrap();
    let runtime = stage(&text, "runtime").join("\n");
    assert!(runtime.contains("FROM debian:12 AS runtime"), "{runtime}");
    for tool in [
        "-dev",
        "clang",
        "build-essential",
        "gcc",
        "rustup",
        "cargo ",
        "python3",
        "curl ",
    ] {
        assert!(
            !runtime.contains(tool),
            "the runtime image installs {tool}:\n{runtime}"
        );
    }
    assert!(
        runtime.contains(" dpdk ") && runtime.contains("/usr/bin/"),
        "{runtime}"
    );
    let lab = stage(&text, "lab").join("\n");
    assert!(lab.starts_with("FROM runtime AS lab"), "{lab}");
    let ignore = std::fs::read_to_string(root.join(".dockerignore")).unwrap();
    for p in [".git", "target", "fuzz/target", "**/__pycache__"] {
        assert!(
            ignore.lines().any(|l| l.trim() == p),
            ".dockerignore lacks {p}"
        );
    }
}
