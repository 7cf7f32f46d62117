//! Startup failures an operator can act on: each names what is wrong, exits
//! non-zero, and does not panic. Runs sluiced for real on net_null (EAL
//! needs root for its runtime directory, as the daemon does).

use std::process::Command;

fn start(name: &str, eal_extra: &str, workers: &str, device: &str) -> (bool, String) {
    start_with(name, eal_extra, workers, device, "127.0.0.1:0")
}

/// sluiced on a one-port net_null config with `metrics` as its metrics
/// address, its stderr a pipe (and no `NO_COLOR`): (started, stderr).
fn start_with(
    name: &str,
    eal_extra: &str,
    workers: &str,
    device: &str,
    metrics: &str,
) -> (bool, String) {
    start_full(name, eal_extra, workers, device, metrics, "text")
}

fn start_full(
    name: &str,
    eal_extra: &str,
    workers: &str,
    device: &str,
    metrics: &str,
    log_format: &str,
) -> (bool, String) {
    let prefix = format!("slstart-{name}-{}", std::process::id());
    let dir = std::env::temp_dir().join(&prefix);
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = dir.join("sluiced.toml");
    std::fs::write(
        &cfg,
        format!(
            r#"
[dpdk]
eal_args = ["-l", "0-1", "--no-huge", "-m", "128", "--no-pci", "--file-prefix={prefix}", "{eal_extra}"]
workers = {workers}
mbufs = 1023
[[port]]
name = "ext"
device = "{device}"
role = "external"
addresses = ["203.0.113.1/24"]
[control]
state_dir = "{}"
socket = "{}"
metrics = "{metrics}"
log_format = "{log_format}"
"#,
            dir.join("state").display(),
            dir.join("ctl.sock").display()
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_sluiced"))
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    let _ = std::fs::remove_dir_all(&dir);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.contains("panicked"), "{err}");
    (out.status.success(), err)
}

#[test]
fn a_device_not_in_eal_args_is_named() {
    let (ok, err) = start("dev", "--vdev=net_null0", "[1]", "net_null7");
    assert!(!ok);
    // Found before EAL starts, with the line of the key.
    assert!(
        err.contains("port \"ext\": field `device`: \"net_null7\" is neither a --vdev"),
        "{err}"
    );
    assert!(err.contains("line 8, column 1"), "{err}");
    assert!(!err.contains("EAL up"), "{err}");
}

#[test]
fn a_worker_outside_the_core_list_is_named() {
    let (ok, err) = start("lcore", "--vdev=net_null0", "[5]", "net_null0");
    assert!(!ok);
    assert!(
        err.contains("[dpdk]: field `workers`: lcore 5 is not among eal_args' lcores (0,1)"),
        "{err}"
    );
    assert!(!err.contains("EAL up"), "{err}");
}

#[test]
fn an_eal_failure_says_so() {
    let (ok, err) = start("eal", "--vdev=net_bogus0", "[1]", "net_bogus0");
    assert!(!ok);
    assert!(
        err.contains("starting DPDK: EAL initialisation failed"),
        "{err}"
    );
}

#[test]
fn a_metrics_address_in_use_is_named_before_dpdk_starts() {
    // Another exporter (node_exporter on 9100, say) holds the address.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let (ok, err) = start_with("metrics", "--vdev=net_null0", "[1]", "net_null0", &addr);
    assert!(!ok);
    assert!(err.contains(&format!("[control] metrics {addr}")), "{err}");
    assert!(
        !err.contains("EAL up"),
        "refused before DPDK started: {err}"
    );
    assert!(
        !err.contains("\u{1b}["),
        "no colour codes in a pipe: {err:?}"
    );
    drop(held);
}

#[test]
fn json_logs_are_one_object_per_line() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap().to_string();
    let (ok, err) = start_full(
        "json",
        "--vdev=net_null0",
        "[1]",
        "net_null0",
        &addr,
        "json",
    );
    assert!(!ok);
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "nothing logged");
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
        assert!(
            v["level"].is_string() && v["fields"]["message"].is_string(),
            "{l}"
        );
    }
    assert!(err.contains(&format!("[control] metrics {addr}")), "{err}");
    drop(held);
}
