//! `make run`'s demo (tests/src/bin/sluice-lab.rs) runs to the end with
//! every scenario passing: it exits 0 only then, and prints its summary.

use std::process::Command;

#[test]
fn make_run_shows_every_scenario_passing() {
    sluice_tests::require_lab_tools();
    let bin = sluice_tests::sluiced_path().with_file_name("sluice-lab");
    let out = Command::new(&bin)
        .env("SLUICED", sluice_tests::sluiced_path())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", bin.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for scenario in [
        "inbound",
        "port forwarding",
        "egress",
        "probe failure",
        "reload",
    ] {
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(scenario) && l.ends_with(" ok")),
            "no passing {scenario} row in the summary:\n{text}"
        );
    }
    assert!(!text.contains("FAIL"), "{text}");
    assert!(
        text.contains("torn down. 10 of 10 checks passed."),
        "{text}"
    );
}
