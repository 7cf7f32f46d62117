//! What ships beside the programs: the systemd unit is hardened (`systemd-
//! analyze security` rated the first one 9.6 UNSAFE), and the documentation
//! describes the product rather than its history (no issue numbers, no
//! paths outside the repository) with no build leftovers committed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn the_unit_is_verified_and_hardened() {
    let unit = root().join("conf/sluiced.service");
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .expect("systemd-analyze is missing: scripts/deps.sh installs systemd");
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    let level: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for sluiced.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in\n{text}"));
    assert!(level <= 6.0, "exposure {level}:\n{text}");
    let unit_text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=/usr/bin/sluicectl reload",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit_text.contains(line), "the unit lacks {line}");
    }
    assert!(
        !unit_text.contains("kill -HUP"),
        "a HUP reload reports success for a rejected config"
    );
}

fn markdown(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            markdown(&p, out);
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
}

#[test]
fn user_docs_are_no_history() {
    let mut files = vec![root().join("README.md"), root().join("docker/README.md")];
    markdown(&root().join("docs"), &mut files);
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        for (i, line) in text.lines().enumerate() {
            let at = format!("{}:{}", f.display(), i + 1);
            let issue = line.match_indices('#').any(|(j, _)| {
                let after = &line[j + 1..];
                after.starts_with(|c: char| c.is_ascii_digit()) && !line[..j].ends_with('&')
            });
            assert!(!issue, "{at}: an issue number: {line}");
            assert!(!line.to_lowercase().contains("issue #"), "{at}: {line}");
            assert!(
                !line.contains("shared/")
                    && !line.contains("CONFIG.md")
                    && !line.contains("SPEC.md"),
                "{at}: a path outside the repository: {line}"
            );
        }
    }
    let tracked = Command::new("git")
        .args(["ls-files"])
        .current_dir(root())
        .output()
        .unwrap();
    let tracked = String::from_utf8_lossy(&tracked.stdout);
    assert!(
        !tracked
            .lines()
            .any(|l| l.contains("__pycache__") || l.ends_with(".pyc")),
        "compiled Python is committed"
    );
}
