//! Frames as clients send them: ARP requests, echo requests, neighbour
//! solicitations, UDP and TCP segments. Used by tests, benchmarks, the pcap
//! harness and traffic generators, so each of them builds packets one way.

use crate::config::Config;
use crate::flow::FlowTable;
use crate::lb::Services;
use crate::neigh::{NeighView, PortIndex};
use crate::pipeline::{Context, Dataplane, Slowpath};
use crate::wire::{tcp, MacAddr};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// MAC of the example data plane's external port (index 0).
pub const EXAMPLE_EXT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);
/// MAC of the example data plane's internal port (index 1).
pub const EXAMPLE_INT_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 2]);

/// The two-port setup unit tests, benchmarks, fuzz targets and profiles
/// share: external 203.0.113.1/24 + 2001:db8:1::1/64 with gateways
/// 203.0.113.254 and 2001:db8:1::fe and public frontend 203.0.113.10;
/// internal 10.0.0.1/24 + 2001:db8:2::1/64.
pub const EXAMPLE_CONFIG: &str = r#"
[dpdk]
eal_args = ["-l", "0-1"]
[[port]]
name = "ext"
device = 0
role = "external"
addresses = ["203.0.113.1/24", "2001:db8:1::1/64"]
gateway = ["203.0.113.254", "2001:db8:1::fe"]
[[port]]
name = "int"
device = 1
role = "internal"
addresses = ["10.0.0.1/24", "2001:db8:2::1/64"]
[[frontend]]
name = "web"
address = "203.0.113.10"
kind = "public"
"#;

/// [`EXAMPLE_CONFIG`] plus a pool of three backends (10.0.0.11..13, the
/// third admin-down), a load-balancing rule for TCP port 80 to 8080, a UDP
/// rule on 53, a NAT rule (port 50001 to the second member's 22), an
/// internal HA-ports frontend 10.0.0.100, and a security rule allowing
/// TCP 80 and UDP 53 to the public frontend.
pub const LB_CONFIG: &str = r#"
[[frontend]]
name = "ilb"
address = "10.0.0.100"
kind = "internal"
[[pool]]
name = "web-pool"
members = [
  { address = "10.0.0.11", name = "b1" },
  { address = "10.0.0.12", name = "b2" },
  { address = "10.0.0.13", name = "b3", admin_state = "down" },
]
[[lb_rule]]
name = "http"
frontend = "web"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
pool = "web-pool"
tcp_reset = true
[[lb_rule]]
name = "dns"
frontend = "web"
protocol = "udp"
frontend_port = 53
backend_port = 53
pool = "web-pool"
[[lb_rule]]
name = "ha"
frontend = "ilb"
protocol = "all"
frontend_port = 0
backend_port = 0
pool = "web-pool"
[[nat_rule]]
name = "ssh-b2"
frontend = "web"
protocol = "tcp"
frontend_port = 50001
member = "b2"
backend_port = 22
[[security_rule]]
name = "allow-web"
priority = 100
direction = "inbound"
action = "allow"
source = "0.0.0.0/0"
destination = "203.0.113.10/32"
protocol = "tcp"
destination_ports = "80"
[[security_rule]]
name = "allow-dns"
priority = 110
direction = "inbound"
action = "allow"
source = "0.0.0.0/0"
destination = "203.0.113.10/32"
protocol = "udp"
destination_ports = "53"
"#;

/// IPv6 rules over the same ports: a public frontend 2001:db8:1::10 with
/// TCP 80 -> 8080 and UDP 53, an internal HA-ports frontend
/// 2001:db8:2::100, over a pool of a dual-stack member (d1: 10.0.0.21 and
/// 2001:db8:2::21), an IPv6-only one (d2) and an IPv4-only one (d3), and
/// security rules allowing TCP 80 and UDP 53 to the frontend.
pub const LB6_CONFIG: &str = r#"
[[frontend]]
name = "web6"
address = "2001:db8:1::10"
kind = "public"
[[frontend]]
name = "ilb6"
address = "2001:db8:2::100"
kind = "internal"
[[pool]]
name = "pool6"
members = [
  { addresses = ["10.0.0.21", "2001:db8:2::21"], name = "d1" },
  { address = "2001:db8:2::22", name = "d2" },
  { address = "10.0.0.23", name = "d3" },
]
[[lb_rule]]
name = "http6"
frontend = "web6"
protocol = "tcp"
frontend_port = 80
backend_port = 8080
pool = "pool6"
tcp_reset = true
[[lb_rule]]
name = "dns6"
frontend = "web6"
protocol = "udp"
frontend_port = 53
backend_port = 53
pool = "pool6"
[[nat_rule]]
name = "ssh6"
frontend = "web6"
protocol = "tcp"
frontend_port = 50006
member = "d2"
backend_port = 22
[[security_rule]]
name = "allow-ssh6"
priority = 220
direction = "inbound"
action = "allow"
source = "2001:db8::/32"
destination = "2001:db8:1::10/128"
protocol = "tcp"
destination_ports = "50006"
[[lb_rule]]
name = "ha6"
frontend = "ilb6"
protocol = "all"
frontend_port = 0
backend_port = 0
pool = "pool6"
[[security_rule]]
name = "allow-web6"
priority = 200
direction = "inbound"
action = "allow"
source = "::/0"
destination = "2001:db8:1::10/128"
protocol = "tcp"
destination_ports = "80"
[[security_rule]]
name = "allow-dns6"
priority = 210
direction = "inbound"
action = "allow"
source = "::/0"
destination = "2001:db8:1::10/128"
protocol = "udp"
destination_ports = "53"
"#;

/// [`EXAMPLE_CONFIG`], [`LB_CONFIG`] and [`LB6_CONFIG`], checked.
pub fn lb6_config() -> Config {
    Config::from_toml_str(&format!("{EXAMPLE_CONFIG}{LB_CONFIG}{LB6_CONFIG}"))
        .expect("LB6_CONFIG is valid")
}

/// [`EXAMPLE_CONFIG`] followed by [`LB_CONFIG`], checked.
pub fn lb_config() -> Config {
    Config::from_toml_str(&format!("{EXAMPLE_CONFIG}{LB_CONFIG}")).expect("LB_CONFIG is valid")
}

/// A data plane, services and flow table built from an example config, to
/// hand the pipeline a [`Context`].
#[derive(Debug)]
pub struct Example {
    /// Ports and routes.
    pub dataplane: Dataplane,
    /// Services and security rules.
    pub services: Services,
    /// An empty IPv4 flow table.
    pub flows: FlowTable,
    /// An empty IPv6 flow table.
    pub flows6: FlowTable<crate::family::V6>,
    /// An empty fragment table.
    pub frags: crate::flow::frag::Fragments,
    /// Per-rule traffic counters.
    pub traffic: crate::pipeline::Traffic,
}

impl Example {
    /// [`EXAMPLE_CONFIG`]: no rules, Sluice as a host only.
    pub fn host() -> Example {
        Example::from_config(&Config::from_toml_str(EXAMPLE_CONFIG).expect("valid"), 1024)
    }
    /// [`EXAMPLE_CONFIG`] + [`LB_CONFIG`] with a table of `capacity` flows.
    pub fn lb(capacity: u32) -> Example {
        Example::from_config(&lb_config(), capacity)
    }
    /// [`EXAMPLE_CONFIG`] + [`LB_CONFIG`] + [`LB6_CONFIG`].
    pub fn lb6(capacity: u32) -> Example {
        Example::from_config(&lb6_config(), capacity)
    }
    /// [`Example::lb`] plus an outbound rule (TCP and UDP, 4-minute idle
    /// timeout, no reset) over `workers` workers: b1 (10.0.0.11) has 8
    /// ports on 203.0.113.10 from 1024, b2 (10.0.0.12) 16 from 1032; b3 has
    /// none.
    pub fn lb_snat(capacity: u32, workers: usize) -> Example {
        Example::lb(capacity).with_snat(workers)
    }
    /// [`Example::lb_snat`] with the IPv6 rules of [`LB6_CONFIG`] too.
    /// Its SNAT members: b1 and b2 as in [`Example::lb_snat`], then d1
    /// (2001:db8:2::21) with 8 ports on 2001:db8:1::10 from 1024 and d2
    /// (2001:db8:2::22) with 16 from 1032.
    pub fn lb6_snat(capacity: u32, workers: usize) -> Example {
        Example::lb6(capacity).with_snat_members(workers, true)
    }
    fn with_snat(self, workers: usize) -> Example {
        self.with_snat_members(workers, false)
    }
    fn with_snat_members(mut self, workers: usize, v6: bool) -> Example {
        use crate::lb::snat::{Run, Snat};
        let ex = &mut self;
        let run = |start, len| Run {
            address: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
            start,
            len,
        };
        ex.services.snat = std::sync::Arc::new(Snat::new(
            vec![egress_rule()],
            {
                let mut m = vec![
                    (
                        0,
                        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 11)),
                        vec![run(1024, 8)],
                    ),
                    (
                        0,
                        IpAddr::V4(Ipv4Addr::new(10, 0, 0, 12)),
                        vec![run(1032, 16)],
                    ),
                ];
                if v6 {
                    let public: IpAddr = "2001:db8:1::10".parse().expect("v6");
                    let run6 = |start, len| Run {
                        address: public,
                        start,
                        len,
                    };
                    m.push((
                        0,
                        "2001:db8:2::21".parse().expect("v6"),
                        vec![run6(1024, 8)],
                    ));
                    m.push((
                        0,
                        "2001:db8:2::22".parse().expect("v6"),
                        vec![run6(1032, 16)],
                    ));
                }
                m
            },
            workers,
        ));
        self
    }
    /// A data plane, services (no SNAT) and a table of `capacity` flows for
    /// `cfg`.
    pub fn from_config(cfg: &Config, capacity: u32) -> Example {
        Example {
            dataplane: Dataplane::new(cfg, &[EXAMPLE_EXT_MAC, EXAMPLE_INT_MAC]),
            services: Services::compile(cfg, &|_, _| true, &Default::default())
                .expect("example services compile"),
            flows: FlowTable::new(capacity, 1),
            flows6: FlowTable::new(capacity, 1),
            frags: Default::default(),
            traffic: Default::default(),
        }
    }
    /// The pipeline's view of it at tick `now`.
    pub fn cx<'a>(&'a self, neigh: &'a NeighView, now: u32) -> Context<'a> {
        Context {
            dataplane: &self.dataplane,
            neigh,
            services: &self.services,
            flows: &self.flows,
            flows6: &self.flows6,
            frags: &self.frags,
            now,
            worker: 0,
            traffic: &self.traffic,
            sync: None,
        }
    }
}

/// A [`Slowpath`] that accepts and forgets what the pipeline learns: for
/// benchmarks and profiles.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLearn;

impl Slowpath for NoLearn {
    fn learn(&mut self, _: PortIndex, _: IpAddr, _: MacAddr) -> bool {
        true
    }
}

/// The example's gateway MAC (203.0.113.254 on the external port).
pub const EXAMPLE_GW_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);

/// A neighbour view with the example's gateway and three backends resolved.
pub fn example_neigh() -> NeighView {
    let (ext, int) = (PortIndex::new(0), PortIndex::new(1));
    let mut v = vec![(
        ext,
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 254)),
        EXAMPLE_GW_MAC,
    )];
    for m in 11..=13 {
        v.push((
            int,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, m)),
            MacAddr([2, 0, 0, 0, 1, m]),
        ));
    }
    // The IPv6 gateway and the IPv6 members of LB6_CONFIG.
    v.push((ext, "2001:db8:1::fe".parse().expect("v6"), EXAMPLE_GW_MAC));
    for m in [0x21u8, 0x22] {
        let a = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, u16::from(m));
        v.push((int, IpAddr::V6(a), MacAddr([2, 0, 0, 0, 6, m])));
    }
    NeighView::with_entries(v)
}

/// IPv6 client `i` of the benchmarks: an address in 2001:db8:99::/64 (32
/// ports per address).
pub fn bench_client6(i: u32) -> (Ipv6Addr, u16) {
    (
        Ipv6Addr::new(
            0x2001,
            0xdb8,
            0x99,
            0,
            0,
            0,
            (i >> 21) as u16,
            (i >> 5) as u16,
        ),
        1024 + (i & 31) as u16,
    )
}

/// Client `i`'s TCP segment to [`LB6_CONFIG`]'s HTTP rule
/// ([2001:db8:1::10]:80) in a 2048-byte room: (room, frame length).
pub fn bench_frame6(i: u32, flags: tcp::Flags) -> (Vec<u8>, usize) {
    let (a, p) = bench_client6(i);
    let mut f = tcp_ip(
        EXAMPLE_GW_MAC,
        EXAMPLE_EXT_MAC,
        (a.into(), p),
        ("2001:db8:1::10".parse().expect("v6"), 80),
        flags,
        (1, 0),
        &[],
    );
    let len = f.len();
    f.resize(2048, 0);
    (f, len)
}

/// Client `i` of the benchmarks and profiles: an address in 198.18.0.0/15
/// and one of 32 ports, so `i` up to 2^21 names distinct flows.
pub fn bench_client(i: u32) -> (Ipv4Addr, u16) {
    (
        Ipv4Addr::from(0xc612_0000 + (i >> 5)),
        1024 + (i & 31) as u16,
    )
}

/// Client `i`'s 64-byte TCP segment to the example's HTTP rule
/// (203.0.113.10:80) in a 2048-byte room: (room, frame length).
pub fn bench_frame(i: u32, flags: tcp::Flags) -> (Vec<u8>, usize) {
    let mut f = tcp_v4(
        EXAMPLE_GW_MAC,
        EXAMPLE_EXT_MAC,
        bench_client(i),
        (Ipv4Addr::new(203, 0, 113, 10), 80),
        flags,
        1,
        0,
    );
    let len = f.len();
    f.resize(2048, 0);
    (f, len)
}

/// Members of [`snat_example`]: 10.0.0.0/16 from 10.0.1.0.
pub fn snat_member(m: u32) -> Ipv4Addr {
    Ipv4Addr::from(0x0a00_0100 + m)
}

/// [`EXAMPLE_CONFIG`] with a /16 internal subnet, a table of `capacity`
/// flows, and an outbound rule (TCP and UDP, one worker) giving each of
/// `members` members (from [`snat_member`]) `ports` ports on 203.0.113.10.
pub fn snat_example(members: u32, ports: u16, capacity: u32) -> Example {
    use crate::lb::snat::{Run, Snat};
    let text = EXAMPLE_CONFIG.replace("10.0.0.1/24", "10.0.0.1/16");
    let cfg = Config::from_toml_str(&text).expect("valid");
    let mut ex = Example::from_config(&cfg, capacity);
    let rule = egress_rule();
    let list = (0..members)
        .map(|m| {
            let run = Run {
                address: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
                start: 1024 + (m * u32::from(ports)) as u16,
                len: ports,
            };
            (0, IpAddr::V4(snat_member(m)), vec![run])
        })
        .collect();
    ex.services.snat = std::sync::Arc::new(Snat::new(vec![rule], list, 1));
    ex
}

/// The examples' outbound rule "egress": TCP and UDP, 4-minute idle
/// timeout, no reset.
pub fn egress_rule() -> crate::lb::snat::SnatRule {
    crate::lb::snat::SnatRule {
        name: "egress".into(),
        tcp: true,
        udp: true,
        idle_timeout: std::time::Duration::from_secs(240),
        tcp_reset: false,
        timers: crate::config::Timers::Azure,
    }
}

/// Outbound flow `i` of the SNAT benchmarks: member `i % members` to
/// remote 198.18.0.0 + `i / members`, port 443, as a 64-byte TCP segment
/// arriving on the internal port, in a 2048-byte room.
pub fn snat_bench_frame(i: u32, members: u32, flags: tcp::Flags) -> (Vec<u8>, usize) {
    let m = snat_member(i % members);
    let mut f = tcp_v4(
        MacAddr([2, 0, 0, 0, 1, 1]),
        EXAMPLE_INT_MAC,
        (m, 40000),
        (Ipv4Addr::from(0xc612_0000 + i / members), 443),
        flags,
        1,
        0,
    );
    let len = f.len();
    f.resize(2048, 0);
    (f, len)
}

/// [`EXAMPLE_CONFIG`] as a data plane with [`EXAMPLE_EXT_MAC`] and
/// [`EXAMPLE_INT_MAC`].
pub fn example_dataplane() -> Dataplane {
    let cfg = Config::from_toml_str(EXAMPLE_CONFIG).expect("EXAMPLE_CONFIG is valid");
    Dataplane::new(&cfg, &[EXAMPLE_EXT_MAC, EXAMPLE_INT_MAC])
}

mod frames;
pub use frames::*;
