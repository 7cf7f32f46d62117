//! Config tests: every file in conf/ loads, and each kind of mistake is
//! reported with its object and field.

use super::*;
use std::path::Path;

pub(super) const MINIMAL: &str = r#"
[dpdk]
eal_args = ["-l", "0-1"]
[[port]]
name = "ext"
device = "net_null0"
role = "external"
addresses = ["203.0.113.1/24"]
[[port]]
name = "int"
device = 1
role = "internal"
addresses = ["10.0.0.1/24"]
"#;

fn errors(extra: &str) -> Vec<ConfigError> {
    Config::from_toml_str(&format!("{MINIMAL}\n{extra}"))
        .expect_err("config should be rejected")
        .0
}

fn has(errs: &[ConfigError], object: &str, field: &str) -> bool {
    errs.iter().any(|e| e.object == object && e.field == field)
}

#[test]
fn every_file_in_conf_loads() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Config::load(&path).unwrap_or_else(|e| panic!("{}:\n{e}", path.display()));
            n += 1;
        }
    }
    assert!(n >= 2, "conf/ should hold the lab and reference configs");
}

#[test]
fn minimal_config_gets_defaults() {
    let c = Config::from_toml_str(MINIMAL).unwrap();
    assert_eq!(c.dpdk.workers, vec![1]);
    assert_eq!(c.dpdk.burst, 32);
    assert_eq!(c.ports[1].device, Device::Id(1));
    assert_eq!(c.ports[0].mtu, 1500);
    assert_eq!(c.flow_table.capacity, 1 << 20);
    assert_eq!(c.control.log, "info");
}

#[test]
fn reference_config_resolves_references() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf/reference.toml");
    let c = Config::load(&path).unwrap();
    let ha = c.lb_rules.iter().find(|r| r.name == "ha").unwrap();
    assert!(ha.is_ha_ports());
    assert_eq!(c.frontends[ha.frontend].kind, FrontendKind::Internal);
    assert_eq!(
        c.frontends[ha.frontend].port, 1,
        "internal frontend lives on the internal port"
    );
    let nat = &c.nat_rules[0];
    assert_eq!(
        c.pools[nat.member.pool].members[nat.member.member]
            .name
            .as_deref(),
        Some("vm1")
    );
    assert_eq!(
        c.outbound_rules[0].ports_per_member,
        PortsPerMember::Fixed(10000)
    );
    assert_eq!(c.pools[0].members[1].admin_state, AdminState::Down);
    assert_eq!(c.probes[0].timeout, std::time::Duration::from_secs(5));
    assert_eq!(c.security_rules[1].destination_ports, (50000, 51100));
    let owned = c.owned_addresses(0);
    assert!(owned.contains(&"203.0.113.1".parse().unwrap()));
    assert!(owned.contains(&"203.0.113.10".parse().unwrap()));
    assert!(!owned.contains(&"10.0.0.100".parse().unwrap()));
    assert!(c
        .owned_addresses(1)
        .contains(&"10.0.0.100".parse().unwrap()));
}

#[test]
fn three_mistakes_give_three_errors() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/three-mistakes.toml");
    let errs = Config::load(&path).unwrap_err().0;
    assert_eq!(errs.len(), 3, "{errs:#?}");
    assert!(has(&errs, "port \"ext\"", "speed"));
    assert!(has(&errs, "frontend \"web\"", "address"));
    assert!(has(&errs, "lb_rule \"http\"", "pool"));
}

#[test]
fn unknown_keys_and_sections() {
    let e = errors("[control]\nsockett = \"/x\"\n[extra]\na = 1");
    assert!(has(&e, "[control]", "sockett"), "{e:#?}");
    assert!(has(&e, "file", "extra"), "{e:#?}");
}

#[test]
fn ranges_and_words() {
    let e = errors(
        r#"
[[frontend]]
name = "f"
address = "203.0.113.10"
kind = "publik"
[[pool]]
name = "p"
members = [{ address = "10.0.0.11", admin_state = "sleeping" }, { address = "192.168.9.9" }]
[[probe]]
name = "pr"
protocol = "http"
port = 70000
interval = "5 minutes"
[[outbound_rule]]
name = "o"
frontends = ["f"]
pool = "p"
protocol = "tcp"
ports_per_member = 1001
idle_timeout = "2m"
[[security_rule]]
name = "s"
priority = 5
direction = "inbound"
action = "allow"
source = "10.0.0.0/33"
destination = "*"
protocol = "any"
destination_ports = "90-80"
"#,
    );
    for (o, f) in [
        ("frontend \"f\"", "kind"),
        ("pool \"p\" member 0", "admin_state"),
        ("pool \"p\" member 1", "address"),
        ("probe \"pr\"", "port"),
        ("probe \"pr\"", "interval"),
        ("probe \"pr\"", "path"),
        ("outbound_rule \"o\"", "ports_per_member"),
        ("outbound_rule \"o\"", "idle_timeout"),
        ("security_rule \"s\"", "priority"),
        ("security_rule \"s\"", "source"),
        ("security_rule \"s\"", "destination_ports"),
    ] {
        assert!(has(&e, o, f), "missing {o} {f} in {e:#?}");
    }
}

#[test]
fn ha_ports_and_collisions() {
    let e = errors(
        r#"
[[frontend]]
name = "pub"
address = "203.0.113.10"
kind = "public"
[[frontend]]
name = "in"
address = "10.0.0.100"
kind = "internal"
[[pool]]
name = "p"
members = [{ address = "10.0.0.11", name = "m" }]
[[lb_rule]]
name = "ha-public"
frontend = "pub"
protocol = "all"
frontend_port = 0
backend_port = 0
pool = "p"
[[lb_rule]]
name = "ha1"
frontend = "in"
protocol = "all"
frontend_port = 0
backend_port = 0
pool = "p"
[[lb_rule]]
name = "ha2"
frontend = "in"
protocol = "all"
frontend_port = 0
backend_port = 0
pool = "p"
[[lb_rule]]
name = "web"
frontend = "pub"
protocol = "tcp"
frontend_port = 80
backend_port = 80
pool = "p"
[[nat_rule]]
name = "clash"
frontend = "pub"
protocol = "all"
frontend_port = 80
member = "m"
backend_port = 22
[[nat_pool_rule]]
name = "range"
frontend = "pub"
protocol = "tcp"
frontend_port_start = 79
max_members = 4
backend_port = 22
pool = "p"
"#,
    );
    assert!(has(&e, "lb_rule \"ha-public\"", "frontend"), "{e:#?}");
    assert!(has(&e, "lb_rule \"ha2\"", "frontend"), "{e:#?}");
    assert!(has(&e, "nat_rule \"clash\"", "frontend_port"), "{e:#?}");
    assert!(
        has(&e, "nat_pool_rule \"range\"", "frontend_port_start"),
        "{e:#?}"
    );
    assert!(!has(&e, "lb_rule \"ha1\"", "frontend"), "{e:#?}");
}

#[test]
fn port_consistency() {
    let e = errors(
        r#"
[[port]]
name = "ext"
device = "net_null0"
role = "sideways"
addresses = ["10.0.0.5/24", "172.16.0.0/16"]
gateway = "192.168.1.1"
mtu = 100
"#,
    );
    assert!(has(&e, "port \"ext\"", "name"), "{e:#?}");
    assert!(has(&e, "port \"ext\"", "device"), "{e:#?}");
    assert!(has(&e, "port \"ext\"", "role"), "{e:#?}");
    assert!(
        e.iter().filter(|x| x.field == "addresses").count() == 2,
        "{e:#?}"
    );
    assert!(has(&e, "port \"ext\"", "gateway"), "{e:#?}");
    assert!(has(&e, "port \"ext\"", "mtu"), "{e:#?}");
}

#[test]
fn syntax_error_is_one_error() {
    let e = Config::from_toml_str("[dpdk\neal_args = [").unwrap_err().0;
    assert_eq!(e.len(), 1);
    assert_eq!(e[0].object, "file");
}

#[test]
fn missing_dpdk_section() {
    let e = Config::from_toml_str("[[port]]\nname=\"a\"\ndevice=0\nrole=\"both\"")
        .unwrap_err()
        .0;
    assert!(has(&e, "[dpdk]", "eal_args"), "{e:#?}");
}

#[test]
fn dual_stack_members_and_gateways() {
    let ok = Config::from_toml_str(&format!(
        "{}\n{}",
        MINIMAL.replace(
            "addresses = [\"10.0.0.1/24\"]",
            "addresses = [\"10.0.0.1/24\", \"2001:db8:2::1/64\"]\ngateway = [\"10.0.0.254\", \"2001:db8:2::fe\"]"
        ),
        "[[pool]]\nname = \"p\"\nmembers = [{ addresses = [\"10.0.0.11\", \"2001:db8:2::11\"], name = \"m\" }]\n"
    ))
    .unwrap();
    let m = &ok.pools[0].members[0];
    assert_eq!(m.address, "10.0.0.11".parse::<std::net::IpAddr>().unwrap());
    assert_eq!(m.address_of(true), Some("2001:db8:2::11".parse().unwrap()));
    assert_eq!(ok.ports[1].gateways.len(), 2);
    let e = errors(
        r#"
[[pool]]
name = "p"
members = [
  { addresses = ["10.0.0.11", "10.0.0.12"], name = "two-v4" },
  { address = "10.0.0.13", addresses = ["2001:db8:2::13"], name = "both-keys" },
  { name = "none" },
]
"#,
    );
    assert!(has(&e, "pool \"p\" member two-v4", "addresses"), "{e:#?}");
    assert!(
        has(&e, "pool \"p\" member both-keys", "addresses"),
        "{e:#?}"
    );
    assert!(has(&e, "pool \"p\" member none", "address"), "{e:#?}");
    let e = Config::from_toml_str(&MINIMAL.replace(
        "addresses = [\"10.0.0.1/24\"]",
        "addresses = [\"10.0.0.1/24\"]\ngateway = [\"10.0.0.254\", \"10.0.0.253\"]",
    ))
    .unwrap_err()
    .0;
    assert!(has(&e, "port \"int\"", "gateway"), "{e:#?}");
}

#[test]
fn at_most_256_ports() {
    // A flow entry keeps a port index in 8 bits.
    let extra: String = (2..=256)
        .map(|i| {
            format!(
                "[[port]]\nname = \"p{i}\"\ndevice = {i}\nrole = \"internal\"\naddresses = [\"10.{}.{}.1/24\"]\n",
                i / 256 + 1,
                i % 256
            )
        })
        .collect();
    let e = errors(&extra);
    assert_eq!(e.len(), 1, "{e:#?}");
    assert!(has(&e, "port \"p256\"", "name"), "{e:#?}");
    assert!(Config::from_toml_str(&format!(
        "{MINIMAL}\n{}",
        &extra[..extra.rfind("[[port]]").unwrap()]
    ))
    .is_ok());
}

/// An outbound rule over a frontend and a pool, with `extra` lines.
fn outbound(extra: &str) -> String {
    format!(
        r#"
[[frontend]]
name = "f"
address = "203.0.113.10"
kind = "public"
[[pool]]
name = "p"
members = [{{ address = "10.0.0.11" }}]
[[outbound_rule]]
name = "o"
frontends = ["f"]
pool = "p"
protocol = "tcp"
{extra}
"#
    )
}

#[test]
fn outbound_rfc_timers() {
    let load = |extra: &str| Config::from_toml_str(&format!("{MINIMAL}\n{}", outbound(extra)));
    let azure = load("").expect("valid");
    assert_eq!(azure.outbound_rules[0].timers, Timers::Azure);
    assert_eq!(azure.outbound_rules[0].idle_timeout.as_secs(), 240);
    // RFC 5382 REQ-5: established TCP idles at least 2 h 4 min.
    let rfc = load("timers = \"rfc\"").expect("valid");
    assert_eq!(rfc.outbound_rules[0].timers, Timers::Rfc);
    assert_eq!(rfc.outbound_rules[0].idle_timeout.as_secs(), 124 * 60);
    let long = load("timers = \"rfc\"\nidle_timeout = \"10h\"").expect("valid");
    assert_eq!(long.outbound_rules[0].idle_timeout.as_secs(), 36_000);
    for (extra, field) in [
        ("timers = \"rfc\"\nidle_timeout = \"120m\"", "idle_timeout"),
        ("idle_timeout = \"3h\"", "idle_timeout"),
        ("timers = \"strict\"", "timers"),
    ] {
        let e = errors(&outbound(extra));
        assert!(has(&e, "outbound_rule \"o\"", field), "{extra}: {e:#?}");
    }
}

#[test]
fn probe_status_ranges_host_and_sni() {
    let probe = |extra: &str, proto: &str| {
        let path = if proto == "tcp" {
            ""
        } else {
            "path = \"/h\"\n"
        };
        format!("[[probe]]\nname = \"p\"\nprotocol = \"{proto}\"\nport = 443\n{path}{extra}")
    };
    let c = Config::from_toml_str(&format!(
        "{MINIMAL}\n{}",
        probe("expected_status = \"200-399, 404\"\nhost = \"www.example.com\"\nsni = \"www.example.com\"\n", "https")
    ))
    .unwrap();
    let p = &c.probes[0];
    assert_eq!(p.expected_status, vec![(200, 399), (404, 404)]);
    assert_eq!(p.host.as_deref(), Some("www.example.com"));
    let d = Config::from_toml_str(&format!("{MINIMAL}\n{}", probe("", "http"))).unwrap();
    assert_eq!(
        d.probes[0].expected_status,
        vec![(200, 200)],
        "200 alone by default"
    );
    for (extra, proto, field) in [
        ("expected_status = \"2xx\"\n", "http", "expected_status"),
        ("expected_status = \"399-200\"\n", "http", "expected_status"),
        ("expected_status = \"600\"\n", "http", "expected_status"),
        ("host = \"a b\"\n", "http", "host"),
        ("host = \"x\"\n", "tcp", "host"),
        ("sni = \"x\"\n", "http", "sni"),
        ("sni = \"10.0.0.1\"\n", "https", "sni"),
    ] {
        let e = errors(&probe(extra, proto));
        assert!(has(&e, "probe \"p\"", field), "{extra}: {e:#?}");
    }
}
