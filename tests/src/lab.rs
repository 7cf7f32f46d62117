//! A network-namespace lab around Sluice:
//!
//! ```text
//!  client 203.0.113.100 ─┐                     ┌─ b1 10.0.0.11
//!  internet 203.0.113.200┼─ ext switch ─ ext0 [sluiced] int0 ─ int switch ─┼─ b2 10.0.0.12
//!                        ┘   (bridge)   203.0.113.1   10.0.0.1  (bridge)   └─ ...
//! ```
//!
//! Sluice runs in its own namespace on the veth ends `ext0`/`int0` with
//! net_af_packet, exactly as `conf/lab.toml` says. Each side is a Linux
//! bridge in a "switch" namespace. Hosts are namespaces with real stacks.
//! Dropping a [`Lab`] deletes every namespace it made (and with them every
//! veth); labs left behind by a killed test run are swept on the next start.

use crate::daemon::Daemon;
use crate::{must, run};
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};

/// Sluice's external address.
pub const SLUICE_EXT: &str = "203.0.113.1";
/// Sluice's external IPv6 address.
pub const SLUICE_EXT6: &str = "2001:db8:1::1";
/// Sluice's internal address (the backends' gateway).
pub const SLUICE_INT: &str = "10.0.0.1";
/// Sluice's internal IPv6 address.
pub const SLUICE_INT6: &str = "2001:db8:2::1";
/// The public frontend of conf/lab.toml.
pub const FRONTEND: &str = "203.0.113.10";
/// The client.
pub const CLIENT: &str = "203.0.113.100";
/// The client's IPv6 address.
pub const CLIENT6: &str = "2001:db8:1::100";
/// The internet server.
pub const INTERNET: &str = "203.0.113.200";

pub use crate::lab_rules::{EGRESS_AND_SSH_POOL, UDP_9000};

/// conf/lab.toml's HTTP rule with `disable_outbound_snat = true`, as an
/// outbound rule on the same frontend requires.
pub fn with_outbound(config: &str) -> String {
    let out = config.replace(
        "probe = \"http-health\"",
        "probe = \"http-health\"\ndisable_outbound_snat = true",
    );
    assert_ne!(out, config, "conf/lab.toml's HTTP rule changed shape");
    out
}

/// Backend `i`'s address (0-based): 10.0.0.11, 10.0.0.12, ...
pub fn backend_addr(i: usize) -> String {
    format!("10.0.0.{}", 11 + i)
}

/// Backend `i`'s IPv6 address.
pub fn backend_addr6(i: usize) -> String {
    format!("2001:db8:2::{}", 11 + i)
}

static LAB_LOCK: Mutex<()> = Mutex::new(());
static SEQ: AtomicUsize = AtomicUsize::new(0);
const PREFIX: &str = "slt";

/// A lab; torn down on drop.
pub struct Lab {
    id: String,
    namespaces: Vec<String>,
    backends: usize,
    /// Scratch directory for configs and captures.
    pub dir: PathBuf,
    children: std::sync::Mutex<Vec<std::process::Child>>,
    _lock: MutexGuard<'static, ()>,
}

impl Lab {
    /// A lab with `backends` backend hosts, named uniquely for this process.
    pub fn new(backends: usize) -> Lab {
        let id = format!(
            "{PREFIX}{}x{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        Self::named(&id, backends)
    }

    /// A lab whose namespaces start with `id` (the demo uses a fixed one).
    pub fn named(id: &str, backends: usize) -> Lab {
        crate::require_lab_tools();
        let lock = LAB_LOCK.lock().unwrap_or_else(|e| e.into_inner());
        sweep_stale();
        let dir = std::env::temp_dir().join(format!("sluice-{id}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut lab = Lab {
            id: id.into(),
            namespaces: Vec::new(),
            backends,
            dir,
            children: Default::default(),
            _lock: lock,
        };
        lab.build();
        lab
    }

    /// Namespace name of a lab member: "lb", "c", "net", "b1".., "xs", "is".
    pub fn ns(&self, role: &str) -> String {
        format!("{}-{role}", self.id)
    }
    /// Sluice's namespace.
    pub fn lb(&self) -> String {
        self.ns("lb")
    }
    /// The client's namespace.
    pub fn client(&self) -> String {
        self.ns("c")
    }
    /// The internet server's namespace.
    pub fn internet(&self) -> String {
        self.ns("net")
    }
    /// Backend `i`'s namespace (0-based).
    pub fn backend(&self, i: usize) -> String {
        self.ns(&format!("b{}", i + 1))
    }

    fn add_ns(&mut self, role: &str) -> String {
        let ns = self.ns(role);
        let _ = run(Command::new("ip").args(["netns", "del", &ns]));
        must(Command::new("ip").args(["netns", "add", &ns]));
        self.namespaces.push(ns.clone());
        self.ip(&ns, "link set lo up");
        ns
    }

    fn ip(&self, ns: &str, args: &str) {
        must(
            Command::new("ip")
                .args(["-n", ns])
                .args(args.split_whitespace()),
        );
    }

    /// Runs a command in a namespace.
    pub fn exec(&self, ns: &str, args: &[&str]) -> Output {
        run(Command::new("ip").args(["netns", "exec", ns]).args(args))
    }

    /// Starts a background program in a namespace; it is killed with the lab.
    pub fn spawn(&self, ns: &str, args: &[&str]) {
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn in namespace");
        self.children.lock().unwrap().push(child);
    }

    /// Starts `tests/data/lab_server.py ARGS` in a namespace (see its usage).
    pub fn server(&self, ns: &str, args: &[&str]) {
        let script = crate::workspace().join("tests/data/lab_server.py");
        let mut v = vec!["python3", script.to_str().unwrap()];
        v.extend_from_slice(args);
        self.spawn(ns, &v);
    }

    /// Runs `tests/data/lab_server.py ARGS` in a namespace to completion.
    pub fn run_script(&self, ns: &str, args: &[&str]) -> Output {
        let script = crate::workspace().join("tests/data/lab_server.py");
        let mut v = vec!["python3", script.to_str().unwrap()];
        v.extend_from_slice(args);
        self.exec(ns, &v)
    }

    /// Waits until `cmd` (a shell script) succeeds in `ns`, up to `secs`.
    pub fn wait_until(&self, ns: &str, cmd: &str, secs: u64) -> bool {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(secs);
        while std::time::Instant::now() < end {
            if self.sh(ns, cmd).status.success() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        false
    }

    /// Runs a shell script in a namespace.
    pub fn sh(&self, ns: &str, script: &str) -> Output {
        run(Command::new("ip").args(["netns", "exec", ns, "sh", "-c", script]))
    }

    /// Connects `ns`'s interface `ifname` to switch `sw` as bridge port `port`.
    fn wire(&self, ns: &str, ifname: &str, sw: &str, port: &str) {
        must(Command::new("ip").args([
            "link", "add", ifname, "netns", ns, "type", "veth", "peer", "name", port, "netns", sw,
        ]));
        self.ip(sw, &format!("link set {port} master br0"));
        self.ip(sw, &format!("link set {port} up"));
        // Full checksums on frames the kernel hands to net_af_packet.
        let _ = self.exec(
            ns,
            &[
                "ethtool", "-K", ifname, "tx", "off", "tso", "off", "gso", "off", "gro", "off",
            ],
        );
    }

    fn host(&self, ns: &str, v4: &str, v6: &str, gw4: Option<&str>, gw6: Option<&str>) {
        self.ip(ns, &format!("addr add {v4} dev eth0"));
        self.ip(ns, &format!("addr add {v6} dev eth0 nodad"));
        self.ip(ns, "link set eth0 up");
        if let Some(g) = gw4 {
            self.ip(ns, &format!("route add default via {g}"));
        }
        if let Some(g) = gw6 {
            self.ip(ns, &format!("-6 route add default via {g}"));
        }
    }

    fn build(&mut self) {
        let xs = self.add_ns("xs");
        let is = self.add_ns("is");
        for sw in [&xs, &is] {
            self.ip(sw, "link add br0 type bridge mcast_snooping 0");
            self.ip(sw, "link set br0 up");
            let _ = self.exec(sw, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
            // A switch, not a firewall: with br_netfilter loaded, bridged
            // IPv4 would go through conntrack, which reassembles fragments.
            for t in ["iptables", "ip6tables", "arptables"] {
                let _ = self.exec(
                    sw,
                    &["sysctl", "-qw", &format!("net.bridge.bridge-nf-call-{t}=0")],
                );
            }
        }
        let lb = self.add_ns("lb");
        let _ = self.exec(&lb, &["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
        let _ = self.exec(
            &lb,
            &["sysctl", "-qw", "net.ipv6.conf.default.disable_ipv6=1"],
        );
        self.wire(&lb, "ext0", &xs, "p-lb");
        self.wire(&lb, "int0", &is, "p-lb");
        self.ip(&lb, "link set ext0 up");
        self.ip(&lb, "link set int0 up");

        let c = self.add_ns("c");
        self.wire(&c, "eth0", &xs, "p-c");
        self.host(
            &c,
            &format!("{CLIENT}/24"),
            &format!("{CLIENT6}/64"),
            None,
            None,
        );
        let net = self.add_ns("net");
        self.wire(&net, "eth0", &xs, "p-net");
        self.host(
            &net,
            &format!("{INTERNET}/24"),
            "2001:db8:1::200/64",
            None,
            None,
        );
        for i in 0..self.backends {
            let b = self.add_ns(&format!("b{}", i + 1));
            self.wire(&b, "eth0", &is, &format!("p-b{}", i + 1));
            self.host(
                &b,
                &format!("{}/24", backend_addr(i)),
                &format!("{}/64", backend_addr6(i)),
                Some(SLUICE_INT),
                Some(SLUICE_INT6),
            );
        }
    }

    /// Adds a namespace `role` of the lab's (torn down with it), for a
    /// test's own topology: a router, a host behind it.
    pub fn extra_ns(&mut self, role: &str) -> String {
        self.add_ns(role)
    }

    /// Connects `ns`'s new interface `ifname` to the internal switch.
    pub fn wire_internal(&self, ns: &str, ifname: &str) {
        self.wire(
            ns,
            ifname,
            &self.ns("is"),
            &format!("p-{ifname}-{}", self.namespaces.len()),
        );
    }

    /// Connects `ns`'s new interface `ifname` to the external switch.
    pub fn wire_external(&self, ns: &str, ifname: &str) {
        self.wire(
            ns,
            ifname,
            &self.ns("xs"),
            &format!("x-{ifname}-{}", self.namespaces.len()),
        );
    }

    /// A veth pair between `a`'s `if_a` and `b`'s `if_b`, both up.
    pub fn veth(&self, a: &str, if_a: &str, b: &str, if_b: &str) {
        must(Command::new("ip").args([
            "link", "add", if_a, "netns", a, "type", "veth", "peer", "name", if_b, "netns", b,
        ]));
        self.ip(a, &format!("link set {if_a} up"));
        self.ip(b, &format!("link set {if_b} up"));
    }

    /// Starts the HTTP server of `tests/data/lab_server.py` on `port` in
    /// backends `0..n` (it answers "bN CLIENT" on IPv4 and IPv6) and waits
    /// until each listens on both.
    pub fn http_backends(&self, n: usize, port: u16) {
        for i in 0..n {
            self.server(
                &self.backend(i),
                &["http", &port.to_string(), &format!("b{}", i + 1)],
            );
        }
        for i in 0..n {
            assert!(
                self.wait_until(
                    &self.backend(i),
                    &format!("ss -ltn | grep -q '0.0.0.0:{port} ' && ss -ltn | grep -q '\\[::\\]:{port} '"),
                    10
                ),
                "backend {i} HTTP server did not start"
            );
        }
    }

    /// `count` curls from each client address in `addrs` to `url`, one
    /// after another: (client address, answering backend, client address
    /// the backend saw) per answer; "FAIL" as backend for a failure.
    pub fn curls(
        &self,
        addrs: &[String],
        count: usize,
        url: &str,
    ) -> Vec<(String, String, String)> {
        let mut script = String::new();
        for a in addrs {
            for _ in 0..count {
                script.push_str(&format!(
                    "printf '{a} '; curl -g -s --max-time 3 --interface {a} '{url}' || echo FAIL; "
                ));
            }
        }
        let out = self.sh(&self.client(), &script);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(|l| {
                let v: Vec<&str> = l.split_whitespace().collect();
                let f = |i: usize| v.get(i).copied().unwrap_or("").to_string();
                (f(0), f(1), f(2))
            })
            .collect()
    }

    /// `config` with its external port on `net_tap` instead of
    /// `net_af_packet` (whose socket reassembles fragments behind the
    /// PMD's back); [`Lab::bridge_tap`] then joins the tap to `ext0`.
    pub fn ext_on_tap(config: &str) -> String {
        let text = config
            .replace(
                "--vdev=net_af_packet0,iface=ext0",
                "--vdev=net_tap0,iface=stap0",
            )
            .replace("device = \"net_af_packet0\"", "device = \"net_tap0\"");
        assert!(
            text.contains("net_tap0,iface=stap0") && text.contains("\"net_tap0\""),
            "conf/lab.toml's external port changed"
        );
        text
    }

    /// Bridges sluiced's tap (see [`Lab::ext_on_tap`]) to the external
    /// veth in Sluice's namespace, checksums in full.
    pub fn bridge_tap(&self) {
        assert!(self
            .sh(
                &self.lb(),
                "sysctl -qw net.bridge.bridge-nf-call-iptables=0; \
                 ip link set stap0 address 02:00:00:00:aa:01 && \
                 ip link add brx type bridge && ip link set ext0 master brx && \
                 ip link set stap0 master brx && ip link set stap0 up && ip link set brx up && \
                 ethtool -K stap0 tx off tso off gso off gro off >/dev/null 2>&1; true",
            )
            .status
            .success());
    }

    /// Kills every process in namespace `ns` (a host's servers going away).
    pub fn kill_all(&self, ns: &str) {
        kill_all_in(ns);
    }

    /// Runs `ip ARGS` in `ns` (must succeed).
    pub fn ip_in(&self, ns: &str, args: &str) {
        self.ip(ns, args);
    }

    /// The MAC of `ifname` in `ns`.
    pub fn mac(&self, ns: &str, ifname: &str) -> String {
        let out = must(
            Command::new("ip")
                .args(["netns", "exec", ns, "cat"])
                .arg(format!("/sys/class/net/{ifname}/address")),
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// conf/lab.toml with this lab's file prefix and paths, plus `extra`.
    /// Returns (config text, file prefix).
    pub fn config(&self, extra: &str) -> (String, String) {
        let text = std::fs::read_to_string(crate::workspace().join("conf/lab.toml"))
            .expect("conf/lab.toml");
        let prefix = format!("{}-dpdk", self.id);
        let text = text
            .replace(
                "--file-prefix=sluice-lab",
                &format!("--file-prefix={prefix}"),
            )
            .replace(
                "/run/sluice/lab.sock",
                &self.dir.join("sluiced.sock").display().to_string(),
            )
            .replace(
                "/var/lib/sluice-lab",
                &self.dir.join("state").display().to_string(),
            );
        assert!(
            text.contains(&prefix),
            "conf/lab.toml no longer sets --file-prefix=sluice-lab"
        );
        (format!("{text}\n{extra}\n"), prefix)
    }

    /// The control socket of the lab's sluiced (see [`Lab::config`]).
    pub fn socket(&self) -> PathBuf {
        self.dir.join("sluiced.sock")
    }

    /// Runs `sluicectl ARGS` against the lab's sluiced.
    pub fn ctl(&self, args: &[&str]) -> Output {
        crate::sluicectl(&self.socket(), args)
    }

    /// `sluicectl --json ARGS`, which must succeed, parsed.
    pub fn ctl_json(&self, args: &[&str]) -> serde_json::Value {
        let mut v = vec!["--json"];
        v.extend_from_slice(args);
        let out = self.ctl(&v);
        assert!(
            out.status.success(),
            "sluicectl {args:?} failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("sluicectl {args:?}: not JSON ({e})"))
    }

    /// What the lab's sluiced serves at /metrics (its default
    /// 127.0.0.1:9631, inside the Sluice namespace).
    pub fn metrics(&self) -> String {
        let out = self.exec(
            &self.lb(),
            &[
                "curl",
                "-sS",
                "--max-time",
                "5",
                "http://127.0.0.1:9631/metrics",
            ],
        );
        assert!(
            out.status.success(),
            "scraping /metrics: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts sluiced in the lab's Sluice namespace on conf/lab.toml + `extra`.
    pub fn start_sluiced(&self, extra: &str) -> Daemon {
        let (text, prefix) = self.config(extra);
        self.start_sluiced_with(&text, &prefix)
    }

    /// Starts sluiced on a config made from [`Lab::config`] and then edited.
    pub fn start_sluiced_with(&self, config: &str, prefix: &str) -> Daemon {
        self.start_sluiced_args(config, prefix, &[])
    }

    /// [`Lab::start_sluiced_with`] with extra command-line arguments (for
    /// example `--timer-scale 100`).
    pub fn start_sluiced_args(&self, config: &str, prefix: &str, extra: &[&str]) -> Daemon {
        Daemon::start(
            &self.dir.join("daemon"),
            config,
            Some(&self.lb()),
            prefix,
            extra,
        )
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for mut c in self
            .children
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .drain(..)
        {
            let _ = c.kill();
            let _ = c.wait();
        }
        for ns in self.namespaces.iter().rev() {
            kill_all_in(ns);
            let _ = run(Command::new("ip").args(["netns", "del", ns]));
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Kills every process left in namespace `ns`: servers fork (nginx workers,
/// socat children) and a killed parent leaves them behind, holding the
/// test's stdout open.
fn kill_all_in(ns: &str) {
    let out = run(Command::new("ip").args(["netns", "pids", ns]));
    for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
        let _ = run(Command::new("kill").args(["-9", pid]));
    }
}

/// Deletes namespaces of labs whose test process is gone (a run that was
/// killed cannot clean up after itself).
fn sweep_stale() {
    let out = run(Command::new("ip").args(["netns", "list"]));
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or("");
        let Some(rest) = name.strip_prefix(PREFIX) else {
            continue;
        };
        let pid: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Ok(pid) = pid.parse::<u32>() else {
            continue;
        };
        if !PathBuf::from(format!("/proc/{pid}")).exists() {
            kill_all_in(name);
            let _ = run(Command::new("ip").args(["netns", "del", name]));
        }
    }
}
