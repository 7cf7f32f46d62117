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
