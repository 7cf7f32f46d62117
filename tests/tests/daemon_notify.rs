//! sluiced as systemd runs it: started with `NOTIFY_SOCKET` and
//! `WATCHDOG_USEC` (a `Type=notify` unit with `WatchdogSec`), it sends
//! `READY=1` once ready and then `WATCHDOG=1` while its workers loop; and
//! `ExecReload=sluicectl reload` fails when the new config is rejected,
//! where `kill -HUP` reported success.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn sluiced_tells_systemd_it_is_ready_and_alive_and_a_bad_reload_fails() {
    let dir = std::env::temp_dir().join(format!("sluice-notify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let prefix = format!("slnotify{}", std::process::id());
    let config = format!(
        r#"
[dpdk]
eal_args = ["-l", "0-1", "--no-huge", "-m", "256", "--no-pci", "--file-prefix={prefix}", "--vdev=net_null0"]
workers = [1]
mbufs = 1023
idle_sleep_us = 50
[[port]]
name = "null"
device = "net_null0"
role = "external"
addresses = ["203.0.113.1/24"]
{}
"#,
        sluice_tests::control_section(&dir).0
    );
    let cfg = dir.join("sluiced.toml");
    std::fs::write(&cfg, &config).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = Command::new(sluice_tests::sluiced_path())
        .arg("--config")
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &path)
        .env("WATCHDOG_USEC", "3000000")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // READY=1, then at least two WATCHDOG=1 within 5 s.
    let mut seen = Vec::new();
    let end = Instant::now() + Duration::from_secs(25);
    let mut buf = [0u8; 256];
    while Instant::now() < end {
        let Ok(n) = sock.recv(&mut buf) else { break };
        seen.push(String::from_utf8_lossy(&buf[..n]).to_string());
        let ready = seen.iter().position(|m| m.lines().any(|l| l == "READY=1"));
        let pings = ready.map_or(0, |r| {
            seen[r..]
                .iter()
                .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
                .count()
        });
        if pings >= 2 {
            break;
        }
    }
    // The unit's ExecReload on a config the daemon rejects.
    std::fs::write(&cfg, config.replace("mbufs = 1023", "mbufs = \"many\"")).unwrap();
    let socket = dir.join("sluiced.sock");
    let reload = Command::new(sluice_tests::sluicectl_path())
        .arg("--socket")
        .arg(&socket)
        .arg("reload")
        .output()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    let ready = seen.iter().position(|m| m.lines().any(|l| l == "READY=1"));
    let ready = ready.unwrap_or_else(|| panic!("no READY=1 within 20 s: {seen:?}"));
    let pings = seen[ready..]
        .iter()
        .filter(|m| m.lines().any(|l| l == "WATCHDOG=1"))
        .count();
    assert!(pings >= 2, "the watchdog was not fed: {seen:?}");
    let err = String::from_utf8_lossy(&reload.stderr);
    assert_eq!(
        reload.status.code(),
        Some(1),
        "a rejected reload fails: {err}"
    );
    assert!(err.contains("mbufs"), "{err}");
    assert!(status.success(), "{status}");
}
