//! `sluiced --check-config` and a start with a bad config, as an operator
//! meets them: wrong types are refused with their line and column, compound
//! durations are read, and what EAL would only find at start (a worker lcore
//! outside `-l`, a device EAL will not have, no hugepages) is found before.

use std::process::{Command, Output};

fn sluiced_path() -> &'static str {
    env!("CARGO_BIN_EXE_sluiced")
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("runs sluiced")
}

const GOOD: &str = r#"
[dpdk]
eal_args = ["-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--vdev=net_null0"]
workers = [1]
[[port]]
name = "ext"
device = "net_null0"
role = "both"
addresses = ["203.0.113.1/24"]
[[frontend]]
name = "web"
address = "203.0.113.10"
kind = "public"
[[pool]]
name = "p"
members = [{ address = "203.0.113.20" }]
[[probe]]
name = "pr"
protocol = "tcp"
port = 80
interval = "5s"
[[lb_rule]]
name = "http"
frontend = "web"
protocol = "tcp"
frontend_port = 80
backend_port = 80
pool = "p"
probe = "pr"
"#;

/// `--check-config` on `text`: (exit code, stderr).
fn check(text: &str) -> (i32, String) {
    let dir = tempdir();
    let path = dir.join("sluiced.toml");
    std::fs::write(&path, text).unwrap();
    let out = run(Command::new(sluiced_path())
        .arg("--check-config")
        .arg(&path));
    let _ = std::fs::remove_dir_all(&dir);
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn tempdir() -> std::path::PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("sluice-check-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The 1-based line of `GOOD` (as changed) that starts with `prefix`.
fn line_of(text: &str, prefix: &str) -> usize {
    text.lines()
        .position(|l| l.starts_with(prefix))
        .expect(prefix)
        + 1
}

#[test]
fn the_base_config_passes() {
    let (code, err) = check(GOOD);
    assert_eq!(code, 0, "{err}");
}

#[test]
fn wrong_types_are_refused_with_line_and_column() {
    let cases = [
        (
            "backend_port = 80",
            "backend_port = 80\ntcp_reset = \"yes\"",
            "tcp_reset",
            "lb_rule \"http\"",
        ),
        (
            "port = 80",
            "port = 80\nthreshold = 2.7",
            "threshold",
            "probe \"pr\"",
        ),
        (
            "role = \"both\"",
            "role = \"both\"\nmtu = \"1500\"",
            "mtu",
            "port \"ext\"",
        ),
        (
            "frontend_port = 80",
            "frontend_port = \"80\"",
            "frontend_port",
            "lb_rule \"http\"",
        ),
    ];
    for (from, to, key, object) in cases {
        let text = GOOD.replacen(from, to, 1);
        let (code, err) = check(&text);
        assert_eq!(code, 1, "{key}: {err}");
        let line = line_of(&text, key);
        let want = format!("error: line {line}, column 1: {object}: field `{key}`: invalid type");
        assert!(err.contains(&want), "{key}: want {want:?} in\n{err}");
    }
}

#[test]
fn compound_durations_are_read() {
    let (code, err) = check(&GOOD.replace("interval = \"5s\"", "interval = \"1m30s\""));
    assert_eq!(code, 0, "{err}");
    let (code, err) = check(&GOOD.replace("interval = \"5s\"", "interval = \"1h30m\""));
    assert_eq!(code, 1, "1h30m is above the probe interval's 1h: {err}");
    assert!(err.contains("out of range"), "{err}");
}

#[test]
fn eal_arguments_are_checked_against_the_config() {
    let text = GOOD.replace("workers = [1]", "workers = [2]");
    let (code, err) = check(&text);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "line {}, column 1: [dpdk]: field `workers`: lcore 2 is not among",
            line_of(&text, "workers")
        )),
        "{err}"
    );
    let (code, err) = check(&GOOD.replace("--vdev=net_null0", "--vdev=net_null1"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("port \"ext\": field `device`: \"net_null0\" is neither a --vdev"),
        "{err}"
    );
}

#[test]
fn missing_hugepages_are_named_before_eal_starts() {
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap();
    let free = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("HugePages_Free:"))
        .and_then(|v| v.trim().parse::<u64>().ok())
        .unwrap_or(0);
    if free > 0 {
        eprintln!("SKIP: this host has {free} free hugepages; the check needs none");
        return;
    }
    let text = GOOD.replace("\"--no-huge\", \"-m\", \"256\", ", "");
    let dir = tempdir();
    let path = dir.join("sluiced.toml");
    std::fs::write(&path, &text).unwrap();
    // A start, not only a check: it must stop before EAL with the cause.
    let out = run(Command::new(sluiced_path()).arg("--config").arg(&path));
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("HugePages_Free is 0"), "{err}");
    assert!(!err.contains("Permission denied"), "{err}");
}
