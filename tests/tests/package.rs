//! The Debian package as an operator installs it: `cargo deb` builds it
//! from the release binaries, `dpkg -i` installs it, the unit it puts in
//! place passes `systemd-analyze verify`, `man sluiced` and `man sluicectl`
//! work, the example config passes `--check-config`; `dpkg -r` removes it.

use sluice_tests::{must, release_bin, require_tools, workspace};
use std::process::Command;

#[test]
fn the_debian_package_installs_a_verified_unit_and_man_pages() {
    require_tools(&["cargo-deb", "dpkg", "systemd-analyze", "man"]);
    let root = workspace();
    // What `make man` does, from the release binaries.
    let gen = root.join("target/gen");
    std::fs::create_dir_all(gen.join("man")).unwrap();
    std::fs::create_dir_all(gen.join("completions")).unwrap();
    for p in ["sluiced", "sluicectl"] {
        let bin = release_bin(p);
        for (kind, file) in [
            ("man", format!("man/{p}.8")),
            ("bash", format!("completions/{p}.bash")),
            ("zsh", format!("completions/_{p}")),
            ("fish", format!("completions/{p}.fish")),
        ] {
            let out = must(Command::new(&bin).args(["--generate", kind]));
            assert!(!out.stdout.is_empty(), "{p} --generate {kind}");
            std::fs::write(gen.join(file), &out.stdout).unwrap();
        }
    }
    let out_dir = std::env::temp_dir().join(format!("sluice-deb-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).unwrap();
    let out = must(
        Command::new("cargo")
            .args(["deb", "-p", "sluice", "--no-build", "--output"])
            .arg(&out_dir)
            .current_dir(&root),
    );
    let deb = String::from_utf8_lossy(&out.stdout)
        .trim()
        .lines()
        .last()
        .unwrap_or_default()
        .to_string();
    assert!(deb.ends_with(".deb"), "{deb}");
    let installed = Command::new("dpkg").args(["-i", &deb]).output().unwrap();
    let removed = || {
        let _ = Command::new("dpkg").args(["-r", "sluice"]).output();
        let _ = std::fs::remove_dir_all(&out_dir);
    };
    let result = std::panic::catch_unwind(|| {
        assert!(
            installed.status.success(),
            "dpkg -i: {}",
            String::from_utf8_lossy(&installed.stderr)
        );
        let unit = [
            "/lib/systemd/system/sluiced.service",
            "/usr/lib/systemd/system/sluiced.service",
        ]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists())
        .expect("the package installs the unit");
        let v = Command::new("systemd-analyze")
            .args(["verify", unit])
            .output()
            .unwrap();
        let text =
            String::from_utf8_lossy(&v.stderr).to_string() + &String::from_utf8_lossy(&v.stdout);
        assert!(
            v.status.success() && text.trim().is_empty(),
            "systemd-analyze verify: {text}"
        );
        for page in ["sluiced", "sluicectl"] {
            let m = Command::new("man")
                .args(["-P", "cat", page])
                .env("MANWIDTH", "80")
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&m.stdout);
            assert!(
                m.status.success() && text.contains("SYNOPSIS") && text.contains(page),
                "man {page}: {text}"
            );
        }
        let v = must(Command::new("/usr/bin/sluiced").arg("--version"));
        assert!(
            String::from_utf8_lossy(&v.stdout).contains("commit"),
            "{v:?}"
        );
        let c = Command::new("/usr/bin/sluiced")
            .args([
                "--check-config",
                "/etc/sluice/sluiced.toml.example",
                "--no-host",
            ])
            .output()
            .unwrap();
        assert!(c.status.success(), "{}", String::from_utf8_lossy(&c.stderr));
    });
    removed();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    assert!(
        !std::path::Path::new("/usr/bin/sluiced").exists(),
        "dpkg -r left sluiced behind"
    );
}
