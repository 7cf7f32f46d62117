//! What the multi-instance labs (lab_cluster, lab_ecmp) share: running a
//! namespace's script, the lab generators' result files
//! (`tests/data/lab_server.py`: `key=value` words), and an instance's
//! sluicectl answers.

use crate::lab::Lab;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Runs `script` in `ns` and fails the test when it fails.
pub fn sh(lab: &Lab, ns: &str, script: &str) {
    let out = lab.sh(ns, script);
    assert!(
        out.status.success(),
        "in {ns}: {script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A generator of `tests/data/lab_server.py` in `ns`, its result in
/// `name`.out in the lab's directory (empty until it finishes).
pub fn generator(lab: &Lab, ns: &str, args: &[&str], name: &str) -> PathBuf {
    let out = lab.dir.join(format!("{name}.out"));
    let mut v = args.to_vec();
    v.push(out.to_str().unwrap());
    lab.server(ns, &v);
    out
}

/// Echo servers (`lab_server.py echo`) on `port` in each of `hosts`,
/// listening before this returns.
pub fn echo_servers(lab: &Lab, hosts: &[String], port: u16) {
    for ns in hosts {
        let out = lab.dir.join(format!("echo-{ns}.out"));
        lab.server(ns, &["echo", &port.to_string(), out.to_str().unwrap()]);
        assert!(lab.wait_until(ns, &format!("ss -ltn | grep -q ':{port} '"), 10));
    }
}

/// A result file's text (empty until written).
pub fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}

/// The number after `key=` in a result.
pub fn field(text: &str, key: &str) -> u64 {
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {key}= in {text:?}"))
}

/// Waits until every generator has written its result.
pub fn wait_all(outs: &[&Path], secs: u64) {
    let end = Instant::now() + Duration::from_secs(secs);
    while outs.iter().any(|p| read(p).is_empty()) {
        assert!(Instant::now() < end, "the generators did not finish");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `sluicectl --json ARGS` (release build) on the instance at `socket`.
pub fn ctl_json(socket: &Path, args: &[&str]) -> serde_json::Value {
    let mut v = vec!["--json"];
    v.extend_from_slice(args);
    let out = crate::run(
        std::process::Command::new(crate::release_bin("sluicectl"))
            .arg("--socket")
            .arg(socket)
            .args(&v),
    );
    assert!(
        out.status.success(),
        "sluicectl {args:?} at {}: {out:?}",
        socket.display()
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Makes `ns`'s kernel leave its data ports (`ext0`, `int0`: veth ends
/// that net_af_packet drives) alone, as it would NICs bound to DPDK: it
/// holds the port addresses on the kernel interfaces sluiced makes, and
/// must not answer a second time what arrives on the veths (rp_filter
/// drops it, arp_ignore keeps it quiet to ARP; no IPv6 on them). Kernel
/// interfaces made later get IPv6 when `ipv6`.
pub fn kernel_off_data_ports(lab: &Lab, ns: &str, ipv6: bool) {
    sh(
        lab,
        ns,
        &format!(
            "sysctl -qw net.ipv4.conf.all.rp_filter=1 && \
             for i in ext0 int0; do sysctl -qw net.ipv4.conf.$i.rp_filter=1 \
             net.ipv4.conf.$i.arp_ignore=8 net.ipv6.conf.$i.disable_ipv6=1; \
             ip link set $i up; done && ip link set lo up && \
             sysctl -qw net.ipv6.conf.default.disable_ipv6={}",
            u8::from(!ipv6)
        ),
    );
}
