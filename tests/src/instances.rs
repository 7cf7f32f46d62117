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

/// What one instance of a multi-instance lab runs: its place, addresses,
/// and the sections that differ between the labs.
pub struct InstanceConfig<'a> {
    /// Its index: even ones take lcore 0 for control and 1 for the worker,
    /// odd ones the other way round, so each core has one busy worker.
    pub index: usize,
    /// `--file-prefix`.
    pub prefix: &'a str,
    /// External and internal port addresses (a /24 each).
    pub ext: &'a str,
    /// Internal address.
    pub int: &'a str,
    /// The external port's gateway.
    pub gateway: &'a str,
    /// Kernel interfaces on both ports (`kext`, `kint`).
    pub kernel: bool,
    /// The frontend every rule uses.
    pub vip: &'a str,
    /// The pool's members, as TOML inline tables.
    pub members: &'a str,
    /// Lines added to the TCP rule (a probe, for one).
    pub tcp_rule: &'a str,
    /// A UDP rule on 7000 too.
    pub udp: bool,
    /// SNAT ports per member of the outbound rule through the frontend.
    pub snat_ports: u32,
    /// Everything after the rules: `[flow_table]`, `[cluster]`,
    /// `[routing]`, `[control]`, and any `[[probe]]`.
    pub rest: &'a str,
}

impl InstanceConfig<'_> {
    /// The config file: net_af_packet on `ext0` and `int0`, workers on
    /// `idle_sleep_us = 50` (busy-polling workers of two or three
    /// instances would hold both cores of this machine and starve the
    /// kernel's veth and bridge work the labs run on), TCP (and UDP) port
    /// 7000 to the pool, outbound SNAT through the frontend.
    pub fn text(&self) -> String {
        let (main, worker) = if self.index.is_multiple_of(2) {
            (0, 1)
        } else {
            (1, 0)
        };
        let kernel = |name: &str| {
            if self.kernel {
                format!("kernel = \"{name}\"\n")
            } else {
                String::new()
            }
        };
        let udp = if self.udp {
            "[[lb_rule]]\nname = \"udp-stream\"\nfrontend = \"vip\"\nprotocol = \"udp\"\n\
                 frontend_port = 7000\nbackend_port = 7000\npool = \"stream-pool\"\n\
                 disable_outbound_snat = true\n"
                .to_string()
        } else {
            String::new()
        };
        format!(
            r#"
[dpdk]
eal_args = ["-l", "0-1", "--main-lcore", "{main}", "--no-huge", "-m", "512", "--no-pci",
            "--file-prefix={prefix}", "--vdev=net_af_packet0,iface=ext0", "--vdev=net_af_packet1,iface=int0,framecnt=8192"]
workers = [{worker}]
mbufs = 8191
burst = 32
idle_sleep_us = 50

[[port]]
name = "ext"
device = "net_af_packet0"
role = "external"
addresses = ["{ext}/24"]
gateway = ["{gateway}"]
{kext}
[[port]]
name = "int"
device = "net_af_packet1"
role = "internal"
addresses = ["{int}/24"]
{kint}
[[frontend]]
name = "vip"
address = "{vip}"
kind = "public"

[[pool]]
name = "stream-pool"
members = [{members}]

[[lb_rule]]
name = "tcp-stream"
frontend = "vip"
protocol = "tcp"
frontend_port = 7000
backend_port = 7000
pool = "stream-pool"
disable_outbound_snat = true
{tcp_rule}
{udp}
[[outbound_rule]]
name = "egress"
frontends = ["vip"]
pool = "stream-pool"
protocol = "all"
ports_per_member = {snat_ports}

[[security_rule]]
name = "allow-streams"
priority = 100
direction = "inbound"
action = "allow"
source = "*"
destination = "{vip}/32"
protocol = "any"
destination_ports = "7000"

{rest}
"#,
            prefix = self.prefix,
            ext = self.ext,
            int = self.int,
            gateway = self.gateway,
            kext = kernel("kext"),
            kint = kernel("kint"),
            vip = self.vip,
            members = self.members,
            tcp_rule = self.tcp_rule,
            snat_ports = self.snat_ports,
            rest = self.rest,
        )
    }
}

/// The external side both multi-instance labs share: a router namespace
/// `role` on the external switch at `addr`/24, forwarding, with a client
/// (192.0.2.100, behind 192.0.2.1) and an internet host (192.0.3.200,
/// behind 192.0.3.1) each on a veth of its own; `extra` runs in the router
/// after that (routes, sysctls). Returns (router, client, internet host).
pub fn router_with_hosts(
    lab: &mut Lab,
    role: &str,
    addr: &str,
    extra: &str,
) -> (String, String, String) {
    let router = lab.extra_ns(role);
    lab.wire_external(&router, "eth0");
    let client = lab.extra_ns("cl");
    let inet = lab.extra_ns("inet");
    lab.veth(&router, "eth1", &client, "eth0");
    lab.veth(&router, "eth2", &inet, "eth0");
    sh(
        lab,
        &router,
        &format!(
            "ip addr add {addr}/24 dev eth0 && ip link set eth0 up && ip link set lo up && \
             ip addr add 192.0.2.1/24 dev eth1 && ip addr add 192.0.3.1/24 dev eth2 && \
             sysctl -qw net.ipv4.ip_forward=1 && {extra}"
        ),
    );
    for (ns, host, gw) in [(&client, CLIENT, "192.0.2.1"), (&inet, INET, "192.0.3.1")] {
        sh(
            lab,
            ns,
            &format!("ip addr add {host}/24 dev eth0 && ip route add default via {gw}"),
        );
    }
    (router, client, inet)
}

/// The client behind [`router_with_hosts`]'s router.
pub const CLIENT: &str = "192.0.2.100";
/// The internet host behind it.
pub const INET: &str = "192.0.3.200";

/// A cluster key file in the lab's directory (the same for every
/// instance).
pub fn cluster_key(lab: &Lab) -> PathBuf {
    let key = lab.dir.join("cluster.key");
    std::fs::write(&key, "lab cluster secret: not for production\n").unwrap();
    key
}
