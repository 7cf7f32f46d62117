//! The two-instance lab of lab_cluster.rs: the topology, each instance's
//! config, and what the tests read back.
#![allow(dead_code)] // each test uses its own part

use sluice_tests::daemon::Daemon;
use sluice_tests::instances::InstanceConfig;
pub use sluice_tests::instances::{ctl_json, field, generator, read, sh, wait_all};
use sluice_tests::lab::Lab;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub const VIP: &str = "198.51.100.10";
pub use sluice_tests::instances::INET;
pub const ROUTER: &str = "203.0.113.254";
pub const EXT: [&str; 2] = ["203.0.113.1", "203.0.113.2"];
pub const INT: [&str; 2] = ["10.0.0.1", "10.0.0.2"];

/// The two instances' lab: the standard one (b1, b2 on the internal
/// switch), a second Sluice namespace, the router and the two hosts
/// behind it.
pub struct Pair {
    pub lab: Lab,
    /// Sluice namespaces of A and B.
    pub ns: [String; 2],
    pub router: String,
    pub client: String,
    pub inet: String,
    pub key: PathBuf,
}

pub fn sluiced() -> PathBuf {
    sluice_tests::release_bin("sluiced")
}

impl Pair {
    pub fn new() -> Pair {
        let mut lab = Lab::new(2);
        let b = lab.extra_ns("lb2");
        for k in ["all", "default"] {
            let _ = lab.exec(
                &b,
                &[
                    "sysctl",
                    "-qw",
                    &format!("net.ipv6.conf.{k}.disable_ipv6=1"),
                ],
            );
        }
        lab.wire_external(&b, "ext0");
        lab.wire_internal(&b, "int0");
        sh(&lab, &b, "ip link set ext0 up && ip link set int0 up");
        let (router, client, inet) = sluice_tests::instances::router_with_hosts(
            &mut lab,
            "r",
            ROUTER,
            &format!("ip route add {VIP}/32 via {}", EXT[0]),
        );
        let key = sluice_tests::instances::cluster_key(&lab);
        Pair {
            ns: [lab.lb(), b],
            router,
            client,
            inet,
            key,
            lab,
        }
    }

    pub fn dir(&self, i: usize) -> PathBuf {
        self.lab.dir.join(format!("instance-{i}"))
    }

    pub fn socket(&self, i: usize) -> PathBuf {
        self.lab.dir.join(format!("sluiced-{i}.sock"))
    }

    /// Instance `i`'s config: A's main lcore is 0 and its worker 1, B's
    /// the other way round, so each core has one busy worker.
    pub fn config(&self, i: usize) -> (String, String) {
        self.config_with(i, "capacity = 65536")
    }

    /// [`Pair::config`] with `flow_table` as its `[flow_table]` section.
    pub fn config_with(&self, i: usize, flow_table: &str) -> (String, String) {
        let prefix = format!("{}-{i}", self.ns[0]);
        let rest = format!(
            r#"[flow_table]
{flow_table}

[cluster]
instance = {i}
instances = 2
peers = ["{peer}"]
sync_port = 7400
secret_file = "{key}"

[control]
socket = "{socket}"
state_dir = "{state}"
log = "info"
"#,
            peer = INT[1 - i],
            key = self.key.display(),
            socket = self.socket(i).display(),
            state = self.dir(i).join("state").display(),
        );
        let text = InstanceConfig {
            index: i,
            prefix: &prefix,
            ext: EXT[i],
            int: INT[i],
            gateway: ROUTER,
            kernel: false,
            vip: VIP,
            members: r#"{ address = "10.0.0.11", name = "s1" }, { address = "10.0.0.12", name = "s2" }"#,
            tcp_rule: "",
            udp: true,
            snat_ports: 1024,
            rest: &rest,
        }
        .text();
        (text, prefix)
    }

    /// Starts instance `i` on its config, with `extra` arguments.
    pub fn start(&self, i: usize) -> Daemon {
        self.start_with(i, self.config(i), &[])
    }

    /// [`Pair::start`] on config `cfg` (from [`Pair::config_with`]).
    pub fn start_with(&self, i: usize, (text, prefix): (String, String), extra: &[&str]) -> Daemon {
        Daemon::start_bin(
            &sluiced(),
            &self.dir(i),
            &text,
            Some(&self.ns[i]),
            &prefix,
            extra,
        )
    }

    pub fn status(&self, i: usize) -> serde_json::Value {
        self.json(i, &["status"])
    }

    pub fn json(&self, i: usize, args: &[&str]) -> serde_json::Value {
        ctl_json(&self.socket(i), args)
    }

    /// Echo servers on 7000 on b1, b2 and the internet host.
    pub fn servers(&self) {
        let hosts = [self.lab.backend(0), self.lab.backend(1), self.inet.clone()];
        sluice_tests::instances::echo_servers(&self.lab, &hosts, 7000);
    }

    /// Sends the clients' traffic for the frontend (and SNAT address) to
    /// instance `i`.
    pub fn route_inbound_to(&self, i: usize) {
        sh(
            &self.lab,
            &self.router,
            &format!("ip route replace {VIP}/32 via {}", EXT[i]),
        );
    }

    /// Points the backends' default route at instance `i`.
    pub fn route_backends_to(&self, i: usize) {
        for b in 0..2 {
            sh(
                &self.lab,
                &self.lab.backend(b),
                &format!("ip route replace default via {}", INT[i]),
            );
        }
    }

    /// A generator of `tests/data/lab_server.py` in `ns`, writing `name`.out.
    pub fn run(&self, ns: &str, args: &[&str], name: &str) -> PathBuf {
        generator(&self.lab, ns, args, name)
    }
}

/// The non-zero drop and sync counters of an exit report, for failures.
pub fn counts(r: &sluice_tests::daemon::Report) -> String {
    r.counters
        .iter()
        .filter(|(k, v)| {
            **v != 0 && (k.starts_with("drop.") || k.starts_with("sync.") || k.starts_with("port."))
        })
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Instance `i`'s TCP flows: (direction, public address:port for
/// outbound ones, packets it forwarded itself).
pub fn tcp_flows(p: &Pair, i: usize) -> Vec<(String, String, u64)> {
    let f = p.json(i, &["flows", "--limit", "10000", "--protocol", "tcp"]);
    f["flows"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|f| {
            (
                f["direction"].as_str().unwrap_or("").to_string(),
                f["public"].as_str().unwrap_or("").to_string(),
                f["packets"].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

/// The public address:port of every outbound TCP flow instance `i` lists.
pub fn snat_publics(p: &Pair, i: usize) -> Vec<String> {
    let mut v: Vec<String> = tcp_flows(p, i)
        .into_iter()
        .filter(|f| f.0 == "outbound")
        .map(|f| f.1)
        .collect();
    v.sort();
    v
}

/// One sync datagram from A to B, captured on B's switch port.
pub fn capture_one(p: &Pair, pcap: &Path) {
    let is = p.lab.ns("is");
    let out = p.lab.sh(&is, "ls /sys/class/net | grep '^p-int0'");
    let port = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(!port.is_empty(), "no switch port of B's int0");
    p.lab.spawn(
        &is,
        &[
            "timeout",
            "20",
            "tcpdump",
            "-i",
            &port,
            "-c",
            "1",
            "-U",
            "-w",
            pcap.to_str().unwrap(),
            "udp and dst port 7400 and dst host 10.0.0.2",
        ],
    );
    std::thread::sleep(Duration::from_millis(700));
}

/// The number after `key=` in a log line's fields.
pub fn log_field(log: &str, line: &str, key: &str) -> u64 {
    let l = log
        .lines()
        .find(|l| l.contains(line))
        .unwrap_or_else(|| panic!("no \"{line}\" in the log:\n{log}"));
    field(l, key)
}
