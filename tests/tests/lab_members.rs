//! Per-member visibility, as `ipvsadm -L -n --stats --rate` gives it:
//! `sluicectl status` lists each rule with its members beneath, and their
//! flows, connections, packets and bytes equal exactly what the clients
//! sent and got; the same series are in /metrics, which `promtool check
//! metrics` accepts; `sluicectl flows` filters by client and shows the
//! time left; `flows --delete` ends what it selects, with a RST at both
//! ends of a TCP connection.

use sluice_tests::instances::field;
use sluice_tests::lab::{Lab, CLIENT, FRONTEND};
use sluice_tests::metric;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const RULES: &str = r#"
[[lb_rule]]
name = "dns"
frontend = "web"
protocol = "udp"
frontend_port = 9000
backend_port = 9000
pool = "web-pool"
idle_timeout = "4m"
disable_outbound_snat = true

[[nat_rule]]
name = "hold-b1"
frontend = "web"
protocol = "tcp"
frontend_port = 7000
member = "b1"
backend_port = 7000

[[security_rule]]
name = "allow-dns"
priority = 120
direction = "inbound"
action = "allow"
source = "*"
destination = "203.0.113.10/32"
protocol = "udp"
destination_ports = "9000"

[[security_rule]]
name = "allow-hold"
priority = 121
direction = "inbound"
action = "allow"
source = "*"
destination = "203.0.113.10/32"
protocol = "tcp"
destination_ports = "7000"
"#;

/// What one member should show: (connections, packets in, bytes in,
/// packets out, bytes out).
type Want = (u64, u64, u64, u64, u64);

#[test]
fn status_counts_each_member_exactly_and_delete_ends_flows() {
    let lab = Lab::new(2);
    lab.server(&lab.backend(0), &["udp", "9000", "b1"]);
    lab.server(&lab.backend(1), &["udp", "9000", "b2"]);
    let server_out = lab.dir.join("hold-server.out");
    let client_out = lab.dir.join("hold-client.out");
    lab.server(
        &lab.backend(0),
        &["hold", "7000", server_out.to_str().unwrap()],
    );
    assert!(lab.wait_until(&lab.backend(0), "ss -ltn | grep -q ':7000 '", 10));
    let (config, prefix) = lab.config(RULES);
    let config = config.replace("  { address = \"10.0.0.13\", name = \"b3\" },\n", "");
    let d = lab.start_sluiced_with(&config, &prefix);

    // 16 UDP flows (one socket each) of 2..17 datagrams of 200 bytes; each
    // reply names the member that answered.
    let mut want: BTreeMap<String, Want> = BTreeMap::new();
    for n in 2..18u64 {
        let out = lab.run_script(
            &lab.client(),
            &["udp-burst", FRONTEND, "9000", &n.to_string(), "200"],
        );
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert_eq!(field(&text, "sent"), n, "{text}");
        let replies = field(&text, "replies");
        assert_eq!(replies, n, "every datagram answered: {text}");
        let member = text
            .split_whitespace()
            .find_map(|kv| kv.strip_prefix("last="))
            .and_then(|l| l.split('_').next())
            .unwrap_or_else(|| panic!("no reply in {text}"))
            .to_string();
        let w = want.entry(member).or_default();
        w.0 += 1;
        w.1 += n;
        w.2 += n * (200 + 28);
        w.3 += replies;
        w.4 += field(&text, "reply_bytes") + 28 * replies;
    }
    assert_eq!(
        want.len(),
        2,
        "16 flows over two members all went to one: {want:?}"
    );
    std::thread::sleep(Duration::from_millis(1500)); // the book updates each second

    let status = lab.ctl_json(&["status"]);
    let rules = status["rules"].as_array().expect("rules");
    let dns = rules
        .iter()
        .find(|r| r["rule"] == "dns")
        .unwrap_or_else(|| panic!("no dns rule in {status}"));
    let members = dns["members"].as_array().expect("members");
    assert_eq!(members.len(), 2, "{dns}");
    for m in members {
        let name = m["name"].as_str().unwrap();
        let (conns, p_in, b_in, p_out, b_out) = want[name];
        let got = |k: &str| m[k].as_u64().unwrap_or_else(|| panic!("{k} in {m}"));
        assert_eq!(
            (
                got("connections"),
                got("packets_in"),
                got("bytes_in"),
                got("packets_out"),
                got("bytes_out")
            ),
            (conns, p_in, b_in, p_out, b_out),
            "{name}: {m}"
        );
        assert_eq!(got("flows"), conns, "every UDP flow is still held: {m}");
        assert_eq!(m["state"], "up", "{m}");
        assert!(m["rates"]["packets_per_s"].as_f64().unwrap() > 0.0, "{m}");
    }
    let total = |i: usize| {
        want.values()
            .map(|w| [w.0, w.1, w.2, w.3, w.4][i])
            .sum::<u64>()
    };
    assert_eq!(dns["connections"], total(0), "{dns}");
    assert_eq!(dns["packets_in"], total(1), "{dns}");
    assert_eq!(dns["bytes_out"], total(4), "{dns}");
    assert_eq!(dns["flows"], 16, "{dns}");
    let table = String::from_utf8_lossy(&lab.ctl(&["status"]).stdout).to_string();
    assert!(
        table.contains("-> b1 10.0.0.11") && table.contains("-> b2 10.0.0.12"),
        "{table}"
    );

    // The same per member in /metrics, labels joining the rule's series.
    let m = lab.metrics();
    for (name, (conns, p_in, b_in, _, b_out)) in &want {
        let l = |dir: &'static str| {
            vec![
                ("rule", "dns"),
                ("member_name", name.as_str()),
                ("direction", dir),
            ]
        };
        let get = |series: &str, labels: &[(&str, &str)]| {
            metric(&m, series, labels).unwrap_or_else(|| panic!("no {series}{labels:?}"))
        };
        assert_eq!(get("sluice_member_packets_total", &l("in")), *p_in as f64);
        assert_eq!(get("sluice_member_bytes_total", &l("in")), *b_in as f64);
        assert_eq!(get("sluice_member_bytes_total", &l("out")), *b_out as f64);
        let ml = [
            ("rule", "dns"),
            ("member_name", name.as_str()),
            ("frontend", "web"),
            ("protocol", "udp"),
        ];
        assert_eq!(get("sluice_member_connections_total", &ml), *conns as f64);
        assert_eq!(get("sluice_member_flows", &ml), *conns as f64);
    }
    assert!(
        !m.lines()
            .any(|l| l.starts_with("sluice_") && l.contains("=\"\"")),
        "a series with an empty label:\n{}",
        m.lines()
            .filter(|l| l.contains("=\"\""))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // Every counter of control, the neighbour cache and the prober is a
    // series (the enums and lists the report prints).
    for s in sluice_core::control_counters::ControlStat::ALL {
        let l = [("event", s.name())];
        assert!(
            metric(&m, "sluice_control_events_total", &l).is_some(),
            "{}",
            s.name()
        );
    }
    for s in sluice_core::neigh::NeighStat::ALL {
        let l = [("event", s.name())];
        assert!(
            metric(&m, "sluice_control_events_total", &l).is_some(),
            "{}",
            s.name()
        );
    }
    let started = metric(
        &m,
        "sluice_probe_events_total",
        &[("event", "probe.started")],
    );
    assert!(started.is_some_and(|n| n >= 2.0), "{started:?}");
    if which("promtool") {
        let dir = lab.dir.join("scrape.prom");
        std::fs::write(&dir, &m).unwrap();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(format!("promtool check metrics < {}", dir.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        panic!("promtool is missing: scripts/deps.sh installs it (prometheus)");
    }

    // flows: by client, with the time left of a 4 minute idle timeout.
    let f = lab.ctl_json(&[
        "flows",
        "--client",
        CLIENT,
        "--protocol",
        "udp",
        "--limit",
        "100",
    ]);
    assert_eq!(f["matched"], 16, "{f}");
    for fl in f["flows"].as_array().unwrap() {
        let left = fl["expires_in_ms"].as_u64().unwrap();
        assert!(left > 200_000 && left <= 240_000, "{fl}");
    }
    let f = lab.ctl_json(&["flows", "--client", "198.51.100.7"]);
    assert_eq!(f["matched"], 0, "{f}");

    // One held TCP connection through the NAT rule, then deleted.
    lab.server(
        &lab.client(),
        &[
            "hold-client",
            FRONTEND,
            "7000",
            client_out.to_str().unwrap(),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let f = lab.ctl_json(&["flows", "--client", CLIENT, "--protocol", "tcp"]);
        let est = f["flows"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["state"] == "established"));
        if est {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the held connection never got established: {f}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let refused = lab.ctl(&["flows", "--delete"]);
    assert_eq!(
        refused.status.code(),
        Some(1),
        "a delete without a filter is refused"
    );
    let del = lab.ctl_json(&["flows", "--delete", "--client", CLIENT, "--protocol", "tcp"]);
    assert_eq!(
        (del["matched"].clone(), del["deleted"].clone()),
        (1.into(), 1.into()),
        "{del}"
    );
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(lab.wait_until(
        &lab.lb(),
        &format!(
            "test -s {} && test -s {}",
            client_out.display(),
            server_out.display()
        ),
        10
    ));
    assert_eq!(read(&client_out).trim(), "reset", "the client got no RST");
    assert_eq!(read(&server_out).trim(), "reset", "the backend got no RST");
    let f = lab.ctl_json(&["flows", "--client", CLIENT]);
    assert_eq!(f["matched"], 16, "the UDP flows stay: {f}");
    let c = lab.ctl_json(&["counters", "flows.deleted"]);
    assert_eq!(c["flows.deleted"], 1, "{c}");

    // No HTTP server answers the web pool's probe: each member going down
    // is a warning in words, not Rust debug text.
    let log = d.log();
    let down: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(" down: probe "))
        .collect();
    assert_eq!(down.len(), 2, "{log}");
    for l in down {
        assert!(
            l.contains("WARN") && l.contains("down: probe http-health: refused (reset"),
            "{l}"
        );
        assert!(!l.contains("Refused("), "{l}");
    }
}

fn which(tool: &str) -> bool {
    std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool} >/dev/null"))
        .status()
        .is_ok_and(|s| s.success())
}
