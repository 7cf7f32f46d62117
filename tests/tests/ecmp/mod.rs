//! The cluster-behind-ECMP lab of lab_ecmp.rs: an edge router (FRR: bgpd,
//! bfdd, zebra; kernel ECMP hashing on L4) in front of a client and an
//! internet host, three sluiced instances each with BIRD 2 on its kernel
//! interfaces, and an internal router (FRR) that the backends use as their
//! gateway and that reaches the instances over the default route they
//! announce.
//!
//! ```text
//!  client 192.0.2.100 ─┐                     ┌─ inst0 ext .1 ─┐          ┌── b1 10.0.0.11
//!                      edge 203.0.113.254 ── xs ─ inst1 ext .2 ─┼─ is ─ ir 10.0.0.254
//!  inet 192.0.3.200 ───┘                     └─ inst2 ext .3 ─┘  (int 10.0.0.1-3) └── b2 10.0.0.12
//! ```
#![allow(dead_code)] // each test uses its own part

use sluice_tests::daemon::Daemon;
use sluice_tests::instances::InstanceConfig;
pub use sluice_tests::instances::{ctl_json, field, generator, read, sh, wait_all};
use sluice_tests::lab::Lab;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub const N: usize = 3;
pub const VIP: &str = "198.51.100.10";
pub use sluice_tests::instances::{CLIENT, INET};
pub const EDGE: &str = "203.0.113.254";
pub const IR: &str = "10.0.0.254";
pub const EXT: [&str; N] = ["203.0.113.1", "203.0.113.2", "203.0.113.3"];
pub const INT: [&str; N] = ["10.0.0.1", "10.0.0.2", "10.0.0.3"];

/// The lab; FRR's runtime directories go with it.
pub struct Ecmp {
    pub lab: Lab,
    pub ns: [String; N],
    pub edge: String,
    pub ir: String,
    pub client: String,
    pub inet: String,
    pub key: PathBuf,
}

impl Drop for Ecmp {
    fn drop(&mut self) {
        for ns in [&self.edge, &self.ir] {
            for pid in self.frr_pids(ns) {
                let _ = sluice_tests::run(std::process::Command::new("kill").args(["-9", &pid]));
            }
            let _ = std::fs::remove_dir_all(format!("/var/run/frr/{ns}"));
            let _ = std::fs::remove_dir_all(format!("/etc/frr/{ns}"));
        }
    }
}

/// The FRR config of a router in AS `asn` that takes the instances (AS
/// 65010) as dynamic neighbours from `range`, with BFD at 100 ms x 3 and
/// up to 8 equal paths.
fn frr_conf(name: &str, id: &str, asn: u32, range: &str, log: &Path) -> String {
    format!(
        "frr defaults datacenter
hostname {name}
log file {log}
!
router bgp {asn}
 bgp router-id {id}
 no bgp ebgp-requires-policy
 bgp bestpath as-path multipath-relax
 neighbor SLUICE peer-group
 neighbor SLUICE remote-as 65010
 neighbor SLUICE bfd
 neighbor SLUICE bfd profile fast
 bgp listen range {range} peer-group SLUICE
 address-family ipv4 unicast
  maximum-paths 8
 exit-address-family
!
bfd
 profile fast
  detect-multiplier 3
  receive-interval 100
  transmit-interval 100
 !
!
",
        log = log.display()
    )
}

impl Ecmp {
    pub fn new() -> Ecmp {
        sluice_tests::require_tools(&["/usr/lib/frr/bgpd", "/usr/sbin/bird"]);
        let mut lab = Lab::new(3);
        let mut ns = vec![lab.lb()];
        for i in 1..N {
            let s = lab.extra_ns(&format!("lb{}", i + 1));
            lab.wire_external(&s, "ext0");
            lab.wire_internal(&s, "int0");
            ns.push(s);
        }
        for s in &ns {
            sluice_tests::instances::kernel_off_data_ports(&lab, s, false);
        }
        let (edge, client, inet) = sluice_tests::instances::router_with_hosts(
            &mut lab,
            "edge",
            EDGE,
            "sysctl -qw net.ipv4.fib_multipath_hash_policy=1",
        );
        let ir = lab.extra_ns("ir");
        lab.wire_internal(&ir, "eth0");
        sh(
            &lab,
            &ir,
            &format!(
                "ip addr add {IR}/24 dev eth0 && ip link set eth0 up && ip link set lo up && \
                 sysctl -qw net.ipv4.ip_forward=1 net.ipv4.fib_multipath_hash_policy=1 \
                 net.ipv4.conf.all.send_redirects=0 net.ipv4.conf.eth0.send_redirects=0"
            ),
        );
        for b in 0..3 {
            sh(
                &lab,
                &lab.backend(b),
                &format!(
                    "sysctl -qw net.ipv4.conf.all.accept_redirects=0 && \
                     ip route replace default via {IR}"
                ),
            );
        }
        let key = sluice_tests::instances::cluster_key(&lab);
        let e = Ecmp {
            ns: ns.try_into().unwrap(),
            edge,
            ir,
            client,
            inet,
            key,
            lab,
        };
        e.start_frr(&e.edge, EDGE, 65000, "203.0.113.0/24");
        e.start_frr(&e.ir, IR, 65001, "10.0.0.0/24");
        e
    }

    fn frr_pids(&self, ns: &str) -> Vec<String> {
        ["zebra", "bfdd", "bgpd"]
            .iter()
            .filter_map(|d| std::fs::read_to_string(format!("/var/run/frr/{ns}/{d}.pid")).ok())
            .map(|p| p.trim().to_string())
            .collect()
    }

    /// zebra, bfdd and bgpd in `ns`, in FRR's path space named after it.
    fn start_frr(&self, ns: &str, id: &str, asn: u32, range: &str) {
        let run = format!("/var/run/frr/{ns}");
        std::fs::create_dir_all(&run).unwrap();
        sluice_tests::must(std::process::Command::new("chown").args(["frr:frr", &run]));
        let conf = self.lab.dir.join(format!("frr-{ns}.conf"));
        let log = self.lab.dir.join(format!("frr-{ns}.log"));
        std::fs::write(&conf, frr_conf(ns, id, asn, range, &log)).unwrap();
        // FRR runs as user frr: it must read its config and write its log.
        sluice_tests::must(
            std::process::Command::new("chmod").args(["a+rwx", self.lab.dir.to_str().unwrap()]),
        );
        for d in ["zebra", "bfdd", "bgpd"] {
            sh(
                &self.lab,
                ns,
                &format!(
                    "/usr/lib/frr/{d} -d -N {ns} -f {} -i {run}/{d}.pid",
                    conf.display()
                ),
            );
        }
    }

    /// `vtysh -c CMD` on the router in `ns`.
    pub fn vtysh(&self, ns: &str, cmd: &str) -> String {
        let out = self.lab.exec(ns, &["vtysh", "-N", ns, "-c", cmd]);
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    pub fn dir(&self, i: usize) -> PathBuf {
        self.lab.dir.join(format!("instance-{i}"))
    }

    pub fn socket(&self, i: usize) -> PathBuf {
        self.lab.dir.join(format!("sluiced-{i}.sock"))
    }

    pub fn bird_socket(&self, i: usize) -> PathBuf {
        self.dir(i).join("bird.ctl")
    }

    pub fn config(&self, i: usize) -> (String, String) {
        self.config_with(i, &["s1", "s2"])
    }

    /// Instance `i`'s config with the pool's members `members` (of s1, s2,
    /// s3: b1, b2, b3), in that order.
    pub fn config_with(&self, i: usize, members: &[&str]) -> (String, String) {
        let members: Vec<String> = members
            .iter()
            .map(|m| format!("{{ address = \"10.0.0.1{}\", name = \"{m}\" }}", &m[1..]))
            .collect();
        let members = members.join(", ");
        let prefix = format!("{}-{i}", self.ns[0]);
        let peers: Vec<String> = (0..N)
            .filter(|&j| j != i)
            .map(|j| format!("\"{}\"", INT[j]))
            .collect();
        let rest = format!(
            r#"[[probe]]
name = "echo"
protocol = "tcp"
port = 7000
interval = "1s"
threshold = 2

[flow_table]
capacity = 65536

[cluster]
instance = {i}
instances = {N}
peers = [{peers}]
secret_file = "{key}"

[routing]
daemon = "bird"
socket = "{bird}"
routes_file = "{routes}"
internal_routes = ["0.0.0.0/0"]
drain_time = "5s"

[control]
socket = "{socket}"
metrics = "127.0.0.1:{metrics}"
state_dir = "{state}"
log = "info"
"#,
            peers = peers.join(", "),
            key = self.key.display(),
            bird = self.bird_socket(i).display(),
            routes = self.dir(i).join("bird-routes.conf").display(),
            socket = self.socket(i).display(),
            metrics = 9480 + i,
            state = self.dir(i).join("state").display(),
        );
        let text = InstanceConfig {
            index: i,
            prefix: &prefix,
            ext: EXT[i],
            int: INT[i],
            gateway: EDGE,
            kernel: true,
            vip: VIP,
            members: &members,
            tcp_rule: "probe = \"echo\"",
            udp: false,
            snat_ports: 1536,
            rest: &rest,
        }
        .text();
        (text, prefix)
    }

    /// Instance `i`: sluiced, then BIRD on its kernel interfaces.
    pub fn start(&self, i: usize) -> Daemon {
        let (text, prefix) = self.config(i);
        let d = Daemon::start_bin(
            &sluice_tests::release_bin("sluiced"),
            &self.dir(i),
            &text,
            Some(&self.ns[i]),
            &prefix,
            &[],
        );
        self.start_bird(i);
        d
    }

    /// BIRD for instance `i` (once: it outlives sluiced, as a routing
    /// daemon on a box does, and its sessions come back with the kernel
    /// interfaces).
    pub fn start_bird(&self, i: usize) {
        if self.bird_socket(i).exists() {
            return;
        }
        let conf = self.dir(i).join("bird.conf");
        std::fs::write(
            &conf,
            format!(
                r#"log "{log}" all;
router id {ext};
protocol device {{ scan time 1; }}
include "{routes}";
protocol bfd {{
  interface "k*" {{ min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }};
}}
protocol bgp edge {{
  local {ext} as 65010;
  neighbor {EDGE} as 65000;
  bfd on;
  ipv4 {{ import none; export where proto = "sluice_ext4"; }};
}}
protocol bgp inside {{
  local {int} as 65010;
  neighbor {IR} as 65001;
  bfd on;
  ipv4 {{ import none; export where proto = "sluice_int4"; }};
}}
"#,
                log = self.dir(i).join("bird.log").display(),
                ext = EXT[i],
                int = INT[i],
                routes = self.dir(i).join("bird-routes.conf").display(),
            ),
        )
        .unwrap();
        sh(
            &self.lab,
            &self.ns[i],
            &format!(
                "bird -c {} -s {} -P {}",
                conf.display(),
                self.bird_socket(i).display(),
                self.dir(i).join("bird.pid").display()
            ),
        );
    }

    /// The next hops `ns`'s kernel has for `prefix` (ECMP: one per
    /// instance announcing it).
    pub fn next_hops(&self, ns: &str, prefix: &str) -> Vec<String> {
        let out = self.lab.exec(ns, &["ip", "route", "show", prefix]);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut v: Vec<String> = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .windows(2)
            .filter(|w| w[0] == "via")
            .map(|w| w[1].to_string())
            .collect();
        v.sort();
        v
    }

    /// Waits until the edge has `ext` as next hops for the VIP and the
    /// internal router `int` for the default route; the time it took.
    pub fn wait_routes(&self, want: &[usize], secs: u64) -> Duration {
        let t = Instant::now();
        let mut ext: Vec<String> = want.iter().map(|&i| EXT[i].to_string()).collect();
        let mut int: Vec<String> = want.iter().map(|&i| INT[i].to_string()).collect();
        ext.sort();
        int.sort();
        loop {
            let (e, n) = (
                self.next_hops(&self.edge, &format!("{VIP}/32")),
                self.next_hops(&self.ir, "default"),
            );
            if e == ext && n == int {
                return t.elapsed();
            }
            assert!(
                t.elapsed() < Duration::from_secs(secs),
                "routes after {secs} s: edge {e:?} (want {ext:?}), internal {n:?} (want {int:?})\n{}\n{}",
                self.vtysh(&self.edge, "show bgp summary"),
                self.vtysh(&self.ir, "show bgp summary"),
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn json(&self, i: usize, args: &[&str]) -> serde_json::Value {
        ctl_json(&self.socket(i), args)
    }

    /// What instance `i` serves at /metrics (scraped inside its
    /// namespace; the metrics copy counters once a second).
    pub fn metrics(&self, i: usize) -> String {
        std::thread::sleep(Duration::from_millis(1100));
        let url = format!("http://127.0.0.1:{}/metrics", 9480 + i);
        let out = self
            .lab
            .exec(&self.ns[i], &["curl", "-sS", "--max-time", "5", &url]);
        assert!(out.status.success(), "scraping {url}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// A counter of instance `i` (`sluicectl counters`).
    pub fn counter(&self, i: usize, name: &str) -> u64 {
        self.json(i, &["counters"])[name].as_u64().unwrap_or(0)
    }

    /// Instance `i` reads its config again, now with `members` in the
    /// pool.
    pub fn reload(&self, i: usize, members: &[&str]) {
        let (text, _) = self.config_with(i, members);
        std::fs::write(self.dir(i).join("sluiced.toml"), text).unwrap();
        let r = self.json(i, &["reload"]);
        assert_eq!(r["applied"], true, "reload on {i}: {r}");
    }

    /// Echo servers on 7000 on b1, b2, b3 and the internet host.
    pub fn servers(&self) {
        let hosts = [
            self.lab.backend(0),
            self.lab.backend(1),
            self.lab.backend(2),
            self.inet.clone(),
        ];
        sluice_tests::instances::echo_servers(&self.lab, &hosts, 7000);
    }

    /// A generator of `tests/data/lab_server.py` in `ns`, writing `name`.out.
    pub fn run(&self, ns: &str, args: &[&str], name: &str) -> PathBuf {
        generator(&self.lab, ns, args, name)
    }
}
