//! `sluiced --check-config` as an operator runs it: every error on its own
//! line with object and field, a non-zero exit; the shipped configs pass.

use std::path::Path;
use std::process::Command;

fn check(path: &Path) -> (bool, String, String) {
    check_args(path, &[])
}

fn check_args(path: &Path, extra: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_sluiced"))
        .arg("--check-config")
        .arg(path)
        .args(extra)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

#[test]
fn three_mistakes_print_three_errors_and_fail() {
    let (ok, _, err) = check(&workspace().join("tests/data/three-mistakes.toml"));
    assert!(!ok, "a bad config must exit non-zero");
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error: ")).collect();
    assert_eq!(errors.len(), 3, "{err}");
    assert!(
        errors[0].contains("port \"ext\"") && errors[0].contains("field `speed`"),
        "{err}"
    );
    assert!(
        errors[1].contains("frontend \"web\"") && errors[1].contains("field `address`"),
        "{err}"
    );
    assert!(
        errors[2].contains("lb_rule \"http\"") && errors[2].contains("field `pool`"),
        "{err}"
    );
    assert!(err.contains("3 error(s)"), "{err}");
}

#[test]
fn shipped_configs_pass() {
    // --no-host: this machine need not have conf/production.toml's
    // hugepages; every check of the file itself still runs.
    for entry in std::fs::read_dir(workspace().join("conf")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let (ok, out, err) = check_args(&path, &["--no-host"]);
            assert!(ok, "{}: {err}", path.display());
            assert!(out.contains(": OK ("), "{out}");
        }
    }
}

#[test]
fn a_missing_file_is_an_error_not_a_panic() {
    let (ok, _, err) = check(Path::new("/nonexistent/sluice.toml"));
    assert!(!ok);
    assert!(err.contains("cannot read"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}
