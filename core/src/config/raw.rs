//! The file as written: serde structs that mirror CONFIG.md key for key,
//! with `deny_unknown_fields`. Values that can be wrong in ways worth naming
//! (addresses, durations, enum words) stay strings here so validation can say
//! which object and field is wrong, and report every mistake at once.

// Fields are the file's keys; docs/config.md documents each one.
#![allow(missing_docs)]

use serde::Deserialize;

/// `[dpdk]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dpdk {
    pub eal_args: Vec<String>,
    #[serde(default = "default_workers")]
    pub workers: Vec<i64>,
    #[serde(default = "default_mbufs")]
    pub mbufs: i64,
    #[serde(default = "default_burst")]
    pub burst: i64,
    pub idle_sleep_us: Option<i64>,
}
fn default_workers() -> Vec<i64> {
    vec![1]
}
fn default_mbufs() -> i64 {
    16383
}
fn default_burst() -> i64 {
    32
}

/// `[[port]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Port {
    pub name: String,
    pub device: DeviceRef,
    pub role: String,
    #[serde(default)]
    pub addresses: Vec<String>,
    pub gateway: Option<OneOrMany>,
    #[serde(default = "default_mtu")]
    pub mtu: i64,
    #[serde(default = "one")]
    pub rx_queues: i64,
    pub kernel: Option<String>,
}
fn default_mtu() -> i64 {
    1500
}
fn one() -> i64 {
    1
}

/// One string, or a list of them (`gateway`: one per family).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

/// A DPDK device name or a port id.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DeviceRef {
    Id(i64),
    Name(String),
}

/// `[[frontend]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Frontend {
    pub name: String,
    pub address: String,
    pub kind: String,
}

/// `[[pool]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pool {
    pub name: String,
    #[serde(default)]
    pub members: Vec<Member>,
}

/// One entry of `members`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    pub address: Option<String>,
    /// Dual stack: at most one address per family.
    pub addresses: Option<Vec<String>>,
    pub name: Option<String>,
    pub admin_state: Option<String>,
}

/// `[[probe]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Probe {
    pub name: String,
    pub protocol: String,
    pub port: i64,
    pub path: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub threshold: Option<i64>,
    pub expected_status: Option<String>,
    pub host: Option<String>,
    pub sni: Option<String>,
}

/// `[[lb_rule]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LbRule {
    pub name: String,
    pub frontend: String,
    pub protocol: String,
    pub frontend_port: i64,
    pub backend_port: i64,
    pub pool: String,
    pub probe: Option<String>,
    pub distribution: Option<String>,
    pub idle_timeout: Option<String>,
    #[serde(default)]
    pub tcp_reset: bool,
    #[serde(default)]
    pub floating_ip: bool,
    #[serde(default)]
    pub disable_outbound_snat: bool,
    pub all_down: Option<String>,
    pub fragments: Option<bool>,
    pub pickup: Option<bool>,
}

/// `[[nat_rule]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatRule {
    pub name: String,
    pub frontend: String,
    pub protocol: String,
    pub frontend_port: i64,
    pub member: String,
    pub backend_port: i64,
}

/// `[[nat_pool_rule]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NatPoolRule {
    pub name: String,
    pub frontend: String,
    pub protocol: String,
    pub frontend_port_start: i64,
    pub max_members: i64,
    pub backend_port: i64,
    pub pool: String,
}

/// `[[outbound_rule]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutboundRule {
    pub name: String,
    pub frontends: Vec<String>,
    pub pool: String,
    pub protocol: String,
    pub ports_per_member: Option<PortsPerMember>,
    pub idle_timeout: Option<String>,
    #[serde(default)]
    pub tcp_reset: bool,
    pub timers: Option<String>,
}

/// A number of ports, or the word "auto".
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PortsPerMember {
    Count(i64),
    Word(String),
}

/// `[[security_rule]]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityRule {
    pub name: String,
    pub priority: i64,
    pub direction: String,
    pub action: String,
    pub source: String,
    pub destination: String,
    pub protocol: String,
    pub destination_ports: Option<String>,
}

/// `[flow_table]`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FlowTable {
    pub capacity: Option<i64>,
    pub capacity_v6: Option<i64>,
    pub file: Option<String>,
}

/// `[cluster]`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Cluster {
    pub instance: Option<i64>,
    pub instances: Option<i64>,
    pub peers: Option<Vec<String>>,
    pub sync_port: Option<i64>,
    pub secret_file: Option<String>,
}

/// `[routing]`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Routing {
    pub daemon: Option<String>,
    pub socket: Option<String>,
    pub routes_file: Option<String>,
    pub internal_routes: Option<Vec<String>>,
    pub drain_time: Option<String>,
}

/// `[control]`
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Control {
    pub socket: Option<String>,
    pub metrics: Option<String>,
    pub state_dir: Option<String>,
    pub log: Option<String>,
    pub log_format: Option<String>,
}
