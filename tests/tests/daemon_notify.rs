//! systemd readiness: sluiced started with `NOTIFY_SOCKET` (as systemd
//! starts a `Type=notify` unit) sends `READY=1` there once it is ready.

use std::os::unix::net::UnixDatagram;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn sluiced_tells_systemd_when_it_is_ready() {
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
    std::fs::write(&cfg, config).unwrap();
    let path = dir.join("notify.sock");
    let _ = std::fs::remove_file(&path);
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut child = Command::new(sluice_tests::sluiced_path())
        .arg("--config")
        .arg(&cfg)
        .env("NOTIFY_SOCKET", &path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = [0u8; 256];
    let got = sock.recv(&mut buf);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(format!("/var/run/dpdk/{prefix}"));
    let n = got.expect("no notification within 20 s");
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.lines().any(|l| l == "READY=1"), "{text:?}");
    assert!(status.success(), "{status}");
}
