//! Frames as clients send them: ARP requests, echo requests, neighbour
//! solicitations, UDP and TCP segments. Used by tests, benchmarks, the pcap
//! harness and traffic generators, so each of them builds packets one way.

use crate::config::Config;
use crate::flow::FlowTable;
use crate::lb::Services;
use crate::neigh::NeighView;
use crate::pipeline::{Context, Dataplane, Slowpath};
use crate::wire::{
    arp, checksum, ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp, EtherType, IpProtocol, MacAddr,
};
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
        use crate::lb::snat::{Run, Snat, SnatRule};
        let ex = &mut self;
        let run = |start, len| Run {
            address: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
            start,
            len,
        };
        ex.services.snat = std::sync::Arc::new(Snat::new(
            vec![SnatRule {
                name: "egress".into(),
                tcp: true,
                udp: true,
                idle_timeout: std::time::Duration::from_secs(240),
                tcp_reset: false,
            }],
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
        }
    }
}

/// A [`Slowpath`] that accepts and forgets what the pipeline learns: for
/// benchmarks and profiles.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoLearn;

impl Slowpath for NoLearn {
    fn learn(&mut self, _: crate::neigh::PortIndex, _: IpAddr, _: MacAddr) -> bool {
        true
    }
}

/// The example's gateway MAC (203.0.113.254 on the external port).
pub const EXAMPLE_GW_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);

/// A neighbour view with the example's gateway and three backends resolved.
pub fn example_neigh() -> NeighView {
    let mut v = vec![(
        0,
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 254)),
        EXAMPLE_GW_MAC,
    )];
    for m in 11..=13 {
        v.push((
            1,
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, m)),
            MacAddr([2, 0, 0, 0, 1, m]),
        ));
    }
    // The IPv6 gateway and the IPv6 members of LB6_CONFIG.
    v.push((0, "2001:db8:1::fe".parse().expect("v6"), EXAMPLE_GW_MAC));
    for m in [0x21u8, 0x22] {
        let a = Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, u16::from(m));
        v.push((1, IpAddr::V6(a), MacAddr([2, 0, 0, 0, 6, m])));
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
    use crate::lb::snat::{Run, Snat, SnatRule};
    let text = EXAMPLE_CONFIG.replace("10.0.0.1/24", "10.0.0.1/16");
    let cfg = Config::from_toml_str(&text).expect("valid");
    let mut ex = Example::from_config(&cfg, capacity);
    let rule = SnatRule {
        name: "egress".into(),
        tcp: true,
        udp: true,
        idle_timeout: std::time::Duration::from_secs(240),
        tcp_reset: false,
    };
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

fn eth(buf: &mut Vec<u8>, src: MacAddr, dst: MacAddr, ethertype: EtherType) {
    buf.resize(ethernet::HEADER_LEN, 0);
    ethernet::Repr {
        src,
        dst,
        ethertype,
    }
    .emit(&mut ethernet::Frame::new_unchecked(&mut buf[..]));
}

/// Pads to the 60-byte Ethernet minimum, as a NIC would.
fn pad(mut v: Vec<u8>) -> Vec<u8> {
    if v.len() < 60 {
        v.resize(60, 0);
    }
    v
}

/// Broadcast ARP who-has `target` from (`mac`, `ip`).
pub fn arp_request(mac: MacAddr, ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut v = vec![0u8; 60];
    crate::neigh::build_arp_request(&mut v, mac, ip, target);
    v
}

/// ARP reply from (`mac`, `ip`) to (`to_mac`, `to_ip`).
pub fn arp_reply(mac: MacAddr, ip: Ipv4Addr, to_mac: MacAddr, to_ip: Ipv4Addr) -> Vec<u8> {
    let mut v = Vec::new();
    eth(&mut v, mac, to_mac, EtherType::Arp);
    v.resize(ethernet::HEADER_LEN + arp::PACKET_LEN, 0);
    arp::Repr {
        operation: arp::Operation::Reply,
        sender_hw: mac,
        sender_ip: ip,
        target_hw: to_mac,
        target_ip: to_ip,
    }
    .emit(&mut arp::Packet::new_unchecked(
        &mut v[ethernet::HEADER_LEN..],
    ));
    pad(v)
}

/// IPv4 packet with `payload` after a 20-byte header, valid checksum.
pub fn ipv4(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: IpProtocol,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    eth(&mut v, src_mac, dst_mac, EtherType::Ipv4);
    let start = v.len();
    v.resize(start + ipv4::HEADER_LEN, 0);
    v.extend_from_slice(payload);
    let repr = ipv4::Repr {
        src,
        dst,
        protocol: proto,
        payload_len: payload.len(),
        ttl: 64,
    };
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut v[start..]));
    pad(v)
}

/// ICMP echo request with `data`.
pub fn echo_request_v4(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    seq: u16,
    data: &[u8],
) -> Vec<u8> {
    let mut icmp = vec![0u8; icmpv4::HEADER_LEN];
    icmp.extend_from_slice(data);
    let mut p = icmpv4::Packet::new_unchecked(&mut icmp[..]);
    p.set_msg_type(icmpv4::Message::EchoRequest);
    p.set_echo_ident(ident);
    p.set_echo_seq(seq);
    p.fill_checksum();
    ipv4(src_mac, dst_mac, src, dst, IpProtocol::Icmp, &icmp)
}

/// IP packet of either family with `payload` after a plain header (IPv4
/// with a valid checksum; IPv6 with no extension header), in a frame.
pub fn ip_frame(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: IpAddr,
    dst: IpAddr,
    proto: IpProtocol,
    payload: &[u8],
) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut v = Vec::new();
            eth(&mut v, src_mac, dst_mac, EtherType::Ipv6);
            let start = v.len();
            v.resize(start + ipv6::HEADER_LEN, 0);
            v.extend_from_slice(payload);
            ipv6::Repr {
                src: s,
                dst: d,
                next_header: proto,
                payload_len: payload.len(),
                hop_limit: 64,
            }
            .emit(&mut ipv6::Packet::new_unchecked(&mut v[start..]));
            pad(v)
        }
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(src_mac, dst_mac, s, d, proto, payload),
        _ => panic!("craft: {src} and {dst} are of two families"),
    }
}

/// The pseudo-header sum of either family.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> u32 {
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_header_v6(s, d, proto, len),
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_header_v4(s, d, proto, len),
        _ => panic!("craft: {src} and {dst} are of two families"),
    }
}

/// A UDP header and `data` with a valid checksum for `src` -> `dst`.
pub fn udp_segment(src: (IpAddr, u16), dst: (IpAddr, u16), data: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; udp::HEADER_LEN];
    u.extend_from_slice(data);
    let ulen = u.len() as u16;
    let mut p = udp::Packet::new_unchecked(&mut u[..]);
    p.set_src_port(src.1);
    p.set_dst_port(dst.1);
    p.set_len(ulen);
    let pseudo = pseudo_header(src.0, dst.0, 17, u.len() as u32);
    udp::Packet::new_unchecked(&mut u[..]).fill_checksum(pseudo);
    u
}

/// A TCP header without options and `data`, valid checksum.
pub fn tcp_segment(
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    flags: tcp::Flags,
    (seq, ack): (u32, u32),
    data: &[u8],
) -> Vec<u8> {
    let mut t = vec![0u8; tcp::HEADER_LEN];
    t.extend_from_slice(data);
    let mut p = tcp::Packet::new_unchecked(&mut t[..]);
    p.set_src_port(src.1);
    p.set_dst_port(dst.1);
    p.set_seq(seq);
    p.set_ack(ack);
    p.set_header_len_and_flags(tcp::HEADER_LEN, flags);
    p.set_window(64240);
    let len = t.len() as u32;
    tcp::Packet::new_unchecked(&mut t[..]).fill_checksum(pseudo_header(src.0, dst.0, 6, len));
    t
}

/// UDP datagram of either family with a valid checksum.
pub fn udp_ip(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    data: &[u8],
) -> Vec<u8> {
    let u = udp_segment(src, dst, data);
    ip_frame(src_mac, dst_mac, src.0, dst.0, IpProtocol::Udp, &u)
}

/// TCP segment of either family without options, carrying `data`.
pub fn tcp_ip(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    flags: tcp::Flags,
    seq_ack: (u32, u32),
    data: &[u8],
) -> Vec<u8> {
    let t = tcp_segment(src, dst, flags, seq_ack, data);
    ip_frame(src_mac, dst_mac, src.0, dst.0, IpProtocol::Tcp, &t)
}

/// `frame` (an IPv6 frame without extension headers) with the extension
/// headers `ext` inserted after its fixed header: each `(next header
/// number of this header, its bytes)`, the first byte of each rewritten to
/// chain them; payload length fixed. L4 checksums do not cover extension
/// headers, so they stay valid.
pub fn with_ext_headers(frame: &[u8], ext: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let at = ethernet::HEADER_LEN + ipv6::HEADER_LEN;
    let plen = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
    let upper = frame[ethernet::HEADER_LEN + 6];
    let mut v = frame[..at].to_vec();
    let mut added = 0;
    for (i, (_, h)) in ext.iter().enumerate() {
        let mut h = h.clone();
        h[0] = ext.get(i + 1).map_or(upper, |n| n.0);
        added += h.len();
        v.extend_from_slice(&h);
    }
    v.extend_from_slice(&frame[at..at + plen]);
    if let Some((first, _)) = ext.first() {
        v[ethernet::HEADER_LEN + 6] = *first;
    }
    v[18..20].copy_from_slice(&((plen + added) as u16).to_be_bytes());
    pad(v)
}

/// UDP datagram with a valid checksum.
pub fn udp_v4(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    data: &[u8],
) -> Vec<u8> {
    udp_ip(
        src_mac,
        dst_mac,
        (src.0.into(), src.1),
        (dst.0.into(), dst.1),
        data,
    )
}

/// TCP segment without options or data, valid checksum.
pub fn tcp_v4(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: tcp::Flags,
    seq: u32,
    ack: u32,
) -> Vec<u8> {
    tcp_v4_data(src_mac, dst_mac, src, dst, flags, (seq, ack), &[])
}

/// TCP segment without options, carrying `data`, valid checksum.
pub fn tcp_v4_data(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: tcp::Flags,
    seq_ack: (u32, u32),
    data: &[u8],
) -> Vec<u8> {
    tcp_ip(
        src_mac,
        dst_mac,
        (src.0.into(), src.1),
        (dst.0.into(), dst.1),
        flags,
        seq_ack,
        data,
    )
}

fn ipv6_frame(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    icmp: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    eth(&mut v, src_mac, dst_mac, EtherType::Ipv6);
    let start = v.len();
    v.resize(start + ipv6::HEADER_LEN, 0);
    v.extend_from_slice(icmp);
    ipv6::Repr {
        src,
        dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.len(),
        hop_limit,
    }
    .emit(&mut ipv6::Packet::new_unchecked(&mut v[start..]));
    pad(v)
}

/// ICMPv6 echo request.
pub fn echo_request_v6(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ident: u16,
    seq: u16,
    data: &[u8],
) -> Vec<u8> {
    let mut icmp = vec![0u8; icmpv6::HEADER_LEN];
    icmp.extend_from_slice(data);
    icmp[0] = 128;
    icmp[4..6].copy_from_slice(&ident.to_be_bytes());
    icmp[6..8].copy_from_slice(&seq.to_be_bytes());
    let pseudo = checksum::pseudo_header_v6(src, dst, 58, icmp.len() as u32);
    icmpv6::Packet::new_unchecked(&mut icmp[..]).fill_checksum(pseudo);
    ipv6_frame(src_mac, dst_mac, src, dst, 64, &icmp)
}

/// Neighbour solicitation for `target` to its solicited-node group.
pub fn neighbor_solicit(src_mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let mut v = vec![0u8; 128];
    let n = crate::neigh::build_neighbor_solicit(&mut v, src_mac, src, target);
    v.truncate(n);
    v
}
