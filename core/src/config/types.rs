//! The checked configuration: references are indices, values are typed.

use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[dpdk]`
    pub dpdk: Dpdk,
    /// `[[port]]`, in file order; index = Sluice's port index.
    pub ports: Vec<Port>,
    /// `[[frontend]]`
    pub frontends: Vec<Frontend>,
    /// `[[pool]]`
    pub pools: Vec<Pool>,
    /// `[[probe]]`
    pub probes: Vec<Probe>,
    /// `[[lb_rule]]`
    pub lb_rules: Vec<LbRule>,
    /// `[[nat_rule]]`
    pub nat_rules: Vec<NatRule>,
    /// `[[nat_pool_rule]]`
    pub nat_pool_rules: Vec<NatPoolRule>,
    /// `[[outbound_rule]]`
    pub outbound_rules: Vec<OutboundRule>,
    /// `[[security_rule]]`, sorted by priority.
    pub security_rules: Vec<SecurityRule>,
    /// `[flow_table]`
    pub flow_table: FlowTable,
    /// `[cluster]`: absent for a lone instance.
    pub cluster: Option<Cluster>,
    /// `[routing]`: absent when no routing daemon announces Sluice's
    /// addresses.
    pub routing: Option<Routing>,
    /// `[control]`
    pub control: Control,
}

/// EAL and worker settings.
#[derive(Debug, Clone)]
pub struct Dpdk {
    /// Passed to rte_eal_init as they are (program name prepended).
    pub eal_args: Vec<String>,
    /// Lcores that run poll-mode workers.
    pub workers: Vec<u32>,
    /// Mempool size.
    pub mbufs: u32,
    /// RX/TX burst size.
    pub burst: u16,
    /// A worker that found nothing to do for a while sleeps this long
    /// (microseconds) between polls; 0: it busy-polls.
    pub idle_sleep_us: u32,
}

/// A port's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Internet side.
    External,
    /// Backends' side.
    Internal,
    /// Both, on one port.
    Both,
}

impl Role {
    /// Carries external (public) traffic.
    pub fn is_external(self) -> bool {
        matches!(self, Role::External | Role::Both)
    }
    /// Carries internal traffic.
    pub fn is_internal(self) -> bool {
        matches!(self, Role::Internal | Role::Both)
    }
}

/// How a port names its DPDK device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Device {
    /// vdev name or PCI address.
    Name(String),
    /// DPDK port id.
    Id(u16),
}

/// A data port.
#[derive(Debug, Clone)]
pub struct Port {
    /// Name.
    pub name: String,
    /// DPDK device.
    pub device: Device,
    /// Role.
    pub role: Role,
    /// Own addresses with their prefixes.
    pub addresses: Vec<IpNet>,
    /// Next hops for destinations off every port's subnets: at most one
    /// per family.
    pub gateways: Vec<IpAddr>,
    /// MTU.
    pub mtu: u16,
    /// RX queues (RSS).
    pub rx_queues: u16,
    /// The kernel interface sluiced creates for this port (the exception
    /// path), by name; `None`: none.
    pub kernel: Option<String>,
}

/// Frontend kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrontendKind {
    /// On an external port.
    Public,
    /// On an internal port.
    Internal,
}

/// A frontend address.
#[derive(Debug, Clone)]
pub struct Frontend {
    /// Name.
    pub name: String,
    /// Address.
    pub address: IpAddr,
    /// Kind.
    pub kind: FrontendKind,
    /// Index of the port it lives on (answers ARP/ND there).
    pub port: usize,
}

/// Member admin state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdminState {
    /// Takes flows when healthy.
    Up,
    /// Takes no new flows, as if its probe said down.
    Down,
}

/// A backend pool.
#[derive(Debug, Clone)]
pub struct Pool {
    /// Name.
    pub name: String,
    /// Members.
    pub members: Vec<Member>,
}

/// A pool member.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its first address (what probes, SNAT, NAT pool maps and listings
    /// know it by).
    pub address: IpAddr,
    /// Every address: one, or one per family (dual stack).
    pub addresses: Vec<IpAddr>,
    /// Optional name (used by nat_rule, sluicectl drain).
    pub name: Option<String>,
    /// Admin state.
    pub admin_state: AdminState,
}

impl Member {
    /// Its address of one family (IPv6 when `v6`), if it has one.
    pub fn address_of(&self, v6: bool) -> Option<IpAddr> {
        self.addresses.iter().copied().find(|a| a.is_ipv6() == v6)
    }
}

/// Probe protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeProtocol {
    /// Handshake then close.
    Tcp,
    /// GET, 200 only.
    Http,
    /// TLS then GET, 200 only.
    Https,
}

/// A health probe.
#[derive(Debug, Clone)]
pub struct Probe {
    /// Name.
    pub name: String,
    /// Protocol.
    pub protocol: ProbeProtocol,
    /// Port probed on each member.
    pub port: u16,
    /// Path (http/https).
    pub path: Option<String>,
    /// Interval.
    pub interval: Duration,
    /// Timeout.
    pub timeout: Duration,
    /// Consecutive results that flip the state.
    pub threshold: u32,
    /// HTTP statuses that pass (http/https): inclusive ranges.
    pub expected_status: Vec<(u16, u16)>,
    /// The Host header (http/https); `None`: the member's `address:port`.
    pub host: Option<String>,
    /// The TLS server name sent (https); `None`: no SNI (the member is
    /// addressed by IP), unless `host` names a host.
    pub sni: Option<String>,
}

/// Parses `expected_status`: codes and ranges, comma-separated
/// ("200", "200-399", "200,204,301-302"), each within 100..=599.
pub fn parse_status_list(s: &str) -> Result<Vec<(u16, u16)>, String> {
    let bad = || {
        format!("\"{s}\" is not a list of HTTP statuses and ranges (\"200\", \"200-399\", \"200,204,301-302\")")
    };
    let mut out = Vec::new();
    for part in s.split(',') {
        let part = part.trim();
        let (a, b) = part.split_once('-').unwrap_or((part, part));
        let (a, b): (u16, u16) = (
            a.trim().parse().map_err(|_| bad())?,
            b.trim().parse().map_err(|_| bad())?,
        );
        if !(100..=599).contains(&a) || !(100..=599).contains(&b) || a > b {
            return Err(format!("\"{part}\": statuses are 100..599, low first"));
        }
        out.push((a, b));
    }
    Ok(out)
}

/// Rule protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// TCP and UDP (and, for HA ports, every IP protocol).
    All,
}

impl Protocol {
    /// True when two protocols share traffic.
    pub fn overlaps(self, other: Protocol) -> bool {
        self == other || self == Protocol::All || other == Protocol::All
    }
}

/// Which tuple the distribution hashes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Distribution {
    /// 5-tuple.
    Default,
    /// Source and destination address.
    SourceIp,
    /// Source, destination address and protocol.
    SourceIpProtocol,
}

/// What to do when every member is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AllDown {
    /// Admit no new flows.
    NoNewFlows,
    /// Use every member.
    AllUp,
}

/// A load-balancing rule.
#[derive(Debug, Clone)]
pub struct LbRule {
    /// Name.
    pub name: String,
    /// Frontend index.
    pub frontend: usize,
    /// Protocol.
    pub protocol: Protocol,
    /// Frontend port (0 = HA ports).
    pub frontend_port: u16,
    /// Backend port (0 = HA ports: unchanged).
    pub backend_port: u16,
    /// Pool index.
    pub pool: usize,
    /// Probe index.
    pub probe: Option<usize>,
    /// Distribution.
    pub distribution: Distribution,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// RST both ends on idle.
    pub tcp_reset: bool,
    /// Keep the frontend address as destination.
    pub floating_ip: bool,
    /// The frontend address is not used for SNAT by this rule.
    pub disable_outbound_snat: bool,
    /// Every-member-down behaviour.
    pub all_down: AllDown,
    /// IP fragments are forwarded (later ones follow the first one's
    /// member); default: HA ports only.
    pub fragments: bool,
    /// A TCP segment that is not a SYN and has no flow may start one
    /// (mid-stream pickup, unconfirmed until the other direction is seen);
    /// default: on in a cluster, off otherwise.
    pub pickup: bool,
}

impl LbRule {
    /// Protocol all on port 0: every port and protocol of an internal frontend.
    pub fn is_ha_ports(&self) -> bool {
        self.protocol == Protocol::All && self.frontend_port == 0
    }
}

/// Reference to a pool member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberRef {
    /// Pool index.
    pub pool: usize,
    /// Member index in the pool.
    pub member: usize,
}

/// Single-member port forwarding.
#[derive(Debug, Clone)]
pub struct NatRule {
    /// Name.
    pub name: String,
    /// Frontend index.
    pub frontend: usize,
    /// Protocol.
    pub protocol: Protocol,
    /// Frontend port.
    pub frontend_port: u16,
    /// Member.
    pub member: MemberRef,
    /// Backend port.
    pub backend_port: u16,
}

/// One frontend port per pool member.
#[derive(Debug, Clone)]
pub struct NatPoolRule {
    /// Name.
    pub name: String,
    /// Frontend index.
    pub frontend: usize,
    /// Protocol.
    pub protocol: Protocol,
    /// First frontend port of the range.
    pub frontend_port_start: u16,
    /// Size of the range.
    pub max_members: u16,
    /// Backend port.
    pub backend_port: u16,
    /// Pool index.
    pub pool: usize,
}

/// SNAT ports per member.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortsPerMember {
    /// By pool size (SPEC table).
    Auto,
    /// Fixed, multiple of 8.
    Fixed(u32),
}

/// Outbound SNAT for a pool.
#[derive(Debug, Clone)]
pub struct OutboundRule {
    /// Name.
    pub name: String,
    /// Public frontend indices, in order of use.
    pub frontends: Vec<usize>,
    /// Pool index.
    pub pool: usize,
    /// Protocol.
    pub protocol: Protocol,
    /// Ports per member.
    pub ports_per_member: PortsPerMember,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// RST both ends on idle.
    pub tcp_reset: bool,
    /// Whose TCP timers its flows keep.
    pub timers: Timers,
}

/// The TCP timers of outbound SNAT flows (docs/conformance.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Timers {
    /// The cloud's: idle 4..120 min (default 4); a handshake may take 5 s;
    /// the port is free 15 s after a RST and 240 s after both FINs.
    #[default]
    Azure,
    /// RFC 5382 REQ-5 and RFC 7857: idle at least 2 h 4 min (up to 18 h);
    /// every transitory state (handshake, half-closed, closing, reset)
    /// 4 min.
    Rfc,
}

/// Security rule direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Towards the backends.
    Inbound,
    /// From the backends.
    Outbound,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Let the flow through.
    Allow,
    /// Drop it.
    Deny,
}

/// Security rule protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// TCP.
    Tcp,
    /// UDP.
    Udp,
    /// ICMP and ICMPv6.
    Icmp,
    /// Anything.
    Any,
}

/// A network security group rule.
#[derive(Debug, Clone)]
pub struct SecurityRule {
    /// Name.
    pub name: String,
    /// Lower runs first.
    pub priority: u16,
    /// Direction.
    pub direction: Direction,
    /// Action.
    pub action: Action,
    /// Source prefix (`None` = any).
    pub source: Option<IpNet>,
    /// Destination prefix (`None` = any).
    pub destination: Option<IpNet>,
    /// Protocol.
    pub protocol: SecurityProtocol,
    /// Destination port range, inclusive.
    pub destination_ports: (u16, u16),
}

/// `[flow_table]`
#[derive(Debug, Clone)]
pub struct FlowTable {
    /// IPv4 flows.
    pub capacity: u32,
    /// IPv6 flows (default: a quarter of `capacity`, at least 1024).
    pub capacity_v6: u32,
    /// Where the tables live so that a restart adopts them: `FILE.v4`,
    /// `FILE.v6` and the rule identities `FILE.ids` (none: on the heap,
    /// gone with the process).
    pub file: Option<PathBuf>,
}

/// `[cluster]`
#[derive(Debug, Clone)]
pub struct Cluster {
    /// This instance's index, `0..instances`.
    pub instance: u8,
    /// Instances in the cluster.
    pub instances: u8,
    /// The other instances' internal addresses.
    pub peers: Vec<IpAddr>,
    /// UDP port sync datagrams go to (and leave from, per sender stream).
    pub sync_port: u16,
    /// Where the shared secret was read from.
    pub secret_file: PathBuf,
    /// The key derived from it.
    pub key: SyncKey,
}

/// The routing daemons sluiced can drive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoutingDaemon {
    /// BIRD 2: sluiced writes `routes_file` (static protocols the daemon's
    /// config includes) and asks for `configure` on its control socket.
    Bird,
}

/// `[routing]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routing {
    /// Which daemon.
    pub daemon: RoutingDaemon,
    /// Its control socket.
    pub socket: PathBuf,
    /// The file sluiced writes the announced routes to.
    pub routes_file: PathBuf,
    /// Prefixes announced to the internal side while ready (the pool's way
    /// out: a default route, for one).
    pub internal_routes: Vec<ipnet::IpNet>,
    /// At SIGTERM: withdraw, then wait this long at most for flows to end.
    pub drain_time: std::time::Duration,
}

/// The 32-byte MAC key of sync datagrams, derived from the shared secret
/// (BLAKE3 `derive_key`). Its `Debug` shows nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct SyncKey(pub [u8; 32]);

impl SyncKey {
    /// The key of a secret.
    pub fn derive(secret: &[u8]) -> SyncKey {
        SyncKey(blake3::derive_key("sluice cluster sync 2026-12 v1", secret))
    }
}

impl std::fmt::Debug for SyncKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SyncKey(..)")
    }
}

/// `[control]`
#[derive(Debug, Clone)]
pub struct Control {
    /// Control socket path.
    pub socket: PathBuf,
    /// Prometheus listen address.
    pub metrics: SocketAddr,
    /// Where persistent state lives.
    pub state_dir: PathBuf,
    /// Log filter.
    pub log: String,
    /// Log lines as text or as JSON objects.
    pub log_format: LogFormat,
}

/// `[control] log_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// One human-readable line per event (colour only on a terminal).
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields).
    Json,
}

impl Config {
    /// Addresses Sluice answers ARP/ND and echo for on port `port`: the port's
    /// own addresses and the frontends that live on it.
    pub fn owned_addresses(&self, port: usize) -> Vec<IpAddr> {
        let mut v: Vec<IpAddr> = self.ports[port]
            .addresses
            .iter()
            .map(|n| n.addr())
            .collect();
        v.extend(
            self.frontends
                .iter()
                .filter(|f| f.port == port)
                .map(|f| f.address),
        );
        v
    }
}
