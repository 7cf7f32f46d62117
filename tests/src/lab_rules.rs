//! Rule sets several lab tests add to the lab config.

/// A UDP rule on the frontend's port 9000 over the web pool, and the
/// security rule that lets it in.
pub const UDP_9000: &str = r#"
[[lb_rule]]
name = "dns"
frontend = "web"
protocol = "udp"
frontend_port = 9000
backend_port = 9000
pool = "web-pool"
disable_outbound_snat = true

[[security_rule]]
name = "allow-dns"
priority = 120
direction = "inbound"
action = "allow"
source = "*"
destination = "203.0.113.10/32"
protocol = "udp"
destination_ports = "9000"
"#;

/// Rules added to conf/lab.toml by the demo and the operations tests:
/// outbound SNAT for web-pool from the frontend address (1024 ports per
/// member), one forwarded port per member from 50100 to its port 22, and a
/// security rule for those ports. conf/lab.toml's HTTP rule then needs
/// `disable_outbound_snat = true` (see [`crate::lab::with_outbound`]).
pub const EGRESS_AND_SSH_POOL: &str = r#"
[[outbound_rule]]
name = "egress"
frontends = ["web"]
pool = "web-pool"
protocol = "all"
ports_per_member = 1024

[[nat_pool_rule]]
name = "ssh-pool"
frontend = "web"
protocol = "tcp"
frontend_port_start = 50100
max_members = 10
backend_port = 22
pool = "web-pool"

[[security_rule]]
name = "allow-ssh-pool"
priority = 110
direction = "inbound"
action = "allow"
source = "*"
destination = "203.0.113.10/32"
protocol = "tcp"
destination_ports = "50100-50109"
"#;
