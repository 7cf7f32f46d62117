//! The prober against a second smoltcp interface playing the members,
//! packets passed by hand: every probe kind and verdict without a
//! network (the lab tests run the same against nginx).
use super::*;
use smoltcp::iface::Interface;
use std::net::Ipv4Addr;

const B1: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);
const B2: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 12);
const B3: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 13);

fn config(probe: &str) -> Config {
    let text = format!(
        r#"
[dpdk]
eal_args = ["-l", "0-1", "--no-huge"]
workers = [1]
[[port]]
name = "int"
device = "net_null0"
role = "internal"
addresses = ["10.0.0.1/24"]
[[frontend]]
name = "fe"
address = "10.0.0.100"
kind = "internal"
[[pool]]
name = "p"
members = [{{ address = "10.0.0.11" }}, {{ address = "10.0.0.12" }}, {{ address = "10.0.0.13" }}]
{probe}
[[lb_rule]]
name = "r"
frontend = "fe"
protocol = "tcp"
frontend_port = 80
backend_port = 80
pool = "p"
probe = "pr"
"#
    );
    Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e:?}"))
}

/// The members: B1 answers HTTP with `status` on port 80, B2 has
/// nothing listening (RSTs), B3 never answers (its packets are lost).
struct Members {
    iface: Interface,
    pipe: Pipe,
    sockets: SocketSet<'static>,
    http: SocketHandle,
    status: u16,
    /// The Host header B1 expects.
    host: String,
}

impl Members {
    fn new(status: u16) -> Members {
        let mut pipe = Pipe::default();
        let mut iface = Interface::new(
            IfaceConfig::new(HardwareAddress::Ip),
            &mut pipe,
            Instant::from_millis(0),
        );
        iface.update_ip_addrs(|a| {
            a.push(IpCidr::new(IpAddress::Ipv4(B1), 24)).unwrap();
            a.push(IpCidr::new(IpAddress::Ipv4(B2), 24)).unwrap();
        });
        let mut sockets = SocketSet::new(Vec::new());
        let mut listener = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; 4096]),
            tcp::SocketBuffer::new(vec![0; 4096]),
        );
        listener.listen((IpAddress::Ipv4(B1), 80)).unwrap();
        let http = sockets.add(listener);
        Members {
            iface,
            pipe,
            sockets,
            http,
            status,
            host: "10.0.0.11:80".into(),
        }
    }

    fn serve(&mut self, now: u64) {
        let ts = Instant::from_millis(now as i64);
        self.iface.poll(ts, &mut self.pipe, &mut self.sockets);
        let s = self.sockets.get_mut::<tcp::Socket>(self.http);
        match s.state() {
            tcp::State::Closed | tcp::State::TimeWait => {
                s.abort();
                s.listen((IpAddress::Ipv4(B1), 80)).unwrap();
            }
            tcp::State::Established | tcp::State::CloseWait if s.can_recv() => {
                let mut buf = [0u8; 1024];
                let n = s.recv_slice(&mut buf).unwrap();
                let req = std::str::from_utf8(&buf[..n]).unwrap();
                let want = format!("GET /health HTTP/1.1\r\nHost: {}\r\n", self.host);
                assert!(req.starts_with(&want), "{req:?}");
                let resp = format!("HTTP/1.1 {} X\r\nContent-Length: 0\r\n\r\n", self.status);
                s.send_slice(resp.as_bytes()).unwrap();
                s.close();
            }
            tcp::State::CloseWait => s.close(),
            _ => {}
        }
        self.iface.poll(ts, &mut self.pipe, &mut self.sockets);
    }
}

/// Runs prober and members for `ms` milliseconds from `from`; every
/// change seen.
fn run(p: &mut Prober, m: &mut Members, from: u64, ms: u64) -> Vec<Change> {
    let mut changes = Vec::new();
    for now in from..from + ms {
        changes.extend(p.poll(now));
        let mut out = Vec::new();
        p.drain_tx(|pkt| out.push(pkt.to_vec()));
        for pkt in out {
            // Only packets to B1 and B2 arrive; B3 is silent.
            if pkt[16..20] != B3.octets() {
                m.pipe.push_rx(&pkt);
            }
            assert_eq!(pkt[12..16], [10, 0, 0, 1], "from the internal address");
            let sport = u16::from_be_bytes([pkt[20], pkt[21]]);
            assert!(PROBE_PORTS.contains(&sport), "from a probe port: {sport}");
        }
        m.serve(now);
        let mut back = Vec::new();
        m.pipe.drain_tx(|pkt| back.push(pkt.to_vec()));
        for pkt in back {
            p.push_rx(&pkt);
        }
    }
    changes
}

fn prober(probe: &str) -> Prober {
    Prober::new(
        &config(probe),
        &[(Ipv4Addr::new(10, 0, 0, 1).into(), 24)],
        7,
        0,
    )
}

fn health(p: &Prober, a: Ipv4Addr) -> MemberHealth {
    p.health("pr", IpAddr::V4(a)).unwrap()
}

const HTTP: &str = "[[probe]]\nname = \"pr\"\nprotocol = \"http\"\nport = 80\npath = \"/health\"\ninterval = \"1s\"\ntimeout = \"500ms\"\nthreshold = 2\n";

#[test]
fn http_200_keeps_a_member_up_a_reset_downs_at_once_silence_after_threshold() {
    let mut p = prober(HTTP);
    let mut m = Members::new(200);
    let changes = run(&mut p, &mut m, 0, 1000);
    // One round: B2 refused (down at once); B3 one timeout (not yet).
    assert_eq!(health(&p, B1).last, Some(Outcome::Success));
    assert!(health(&p, B1).up);
    assert_eq!(health(&p, B2).last, Some(Outcome::Refused(0)));
    assert!(!health(&p, B2).up);
    assert!(changes.iter().any(|c| c.address == IpAddr::V4(B2) && !c.up));
    // B3's second probe starts at 1666 and times out at 2166.
    let changes = run(&mut p, &mut m, 1000, 1200);
    assert_eq!(health(&p, B3).last, Some(Outcome::Timeout));
    assert!(!health(&p, B3).up, "two timeouts");
    assert!(changes.iter().any(|c| c.address == IpAddr::V4(B3) && !c.up));
    assert!(p.eligible(0, IpAddr::V4(B1)));
    assert!(!p.eligible(0, IpAddr::V4(B2)));
    let c = p.counters();
    assert_eq!((c.succeeded, c.refused, c.timeouts), (3, 2, 2), "{c:?}");
    assert_eq!(c.skipped, 0);
    assert_eq!(p.sockets.iter().count(), p.in_flight() + p.lingering.len());
}

#[test]
fn expected_status_ranges_pass_and_the_host_header_is_the_probes() {
    let probe = format!("{HTTP}expected_status = \"200-399\"\nhost = \"www.example.com\"\n");
    let mut p = prober(&probe);
    let mut m = Members::new(302);
    m.host = "www.example.com".into();
    run(&mut p, &mut m, 0, 1000);
    assert_eq!(
        health(&p, B1).last,
        Some(Outcome::Success),
        "302 is in 200-399"
    );
    m.status = 404;
    run(&mut p, &mut m, 1000, 1000);
    assert_eq!(health(&p, B1).last, Some(Outcome::Refused(404)));
    assert!(!health(&p, B1).up);
}

#[test]
fn the_tls_server_name_is_sni_else_the_hosts_name() {
    let spec = |host: Option<&str>, sni: Option<&str>| Spec {
        name: "pr".into(),
        protocol: ProbeProtocol::Https,
        port: 443,
        path: "/".into(),
        interval_ms: 1000,
        timeout_ms: 500,
        threshold: 1,
        expected_status: vec![(200, 200)],
        host: host.map(String::from),
        sni: sni.map(String::from),
    };
    assert_eq!(spec(None, None).server_name(), None, "by address: no SNI");
    assert_eq!(
        spec(Some("www.example.com"), None).server_name().as_deref(),
        Some("www.example.com")
    );
    assert_eq!(
        spec(Some("www.example.com:8443"), None)
            .server_name()
            .as_deref(),
        Some("www.example.com")
    );
    assert_eq!(spec(Some("10.0.0.11:443"), None).server_name(), None);
    assert_eq!(spec(Some("[2001:db8::1]:443"), None).server_name(), None);
    assert_eq!(
        spec(Some("a.example"), Some("b.example"))
            .server_name()
            .as_deref(),
        Some("b.example")
    );
}

#[test]
fn any_status_but_200_is_a_refusal() {
    let mut p = prober(HTTP);
    let mut m = Members::new(503);
    run(&mut p, &mut m, 0, 1000);
    assert_eq!(health(&p, B1).last, Some(Outcome::Refused(503)));
    assert!(!health(&p, B1).up);
    // Healthy again: up after two successes.
    m.status = 200;
    run(&mut p, &mut m, 1000, 1000);
    assert!(!health(&p, B1).up, "one success is not enough");
    let changes = run(&mut p, &mut m, 2000, 1000);
    assert!(health(&p, B1).up);
    assert!(changes.iter().any(|c| c.address == IpAddr::V4(B1) && c.up));
}

#[test]
fn a_tcp_probe_is_a_handshake_and_a_clean_close() {
    let probe = HTTP
        .replace("protocol = \"http\"", "protocol = \"tcp\"")
        .replace("path = \"/health\"\n", "");
    let mut p = prober(&probe);
    let mut m = Members::new(200);
    run(&mut p, &mut m, 0, 3000);
    assert_eq!(health(&p, B1).last, Some(Outcome::Success));
    assert_eq!(health(&p, B1).consecutive, 3);
    assert_eq!(health(&p, B2).last, Some(Outcome::Refused(0)));
    assert_eq!(health(&p, B3).last, Some(Outcome::Timeout));
    // Every socket is gone once its probe is over.
    run(&mut p, &mut m, 3000, 100);
    assert!(
        p.sockets.iter().count() <= 1,
        "{}",
        p.sockets.iter().count()
    );
}

#[test]
fn a_member_walks_the_probe_ports() {
    let mut p = prober(HTTP);
    let mut m = Members::new(200);
    let mut ports = std::collections::HashSet::new();
    for round in 0..5 {
        let from = round * 1000;
        for now in from..from + 1000 {
            p.poll(now);
            let mut out = Vec::new();
            p.drain_tx(|pkt| out.push(pkt.to_vec()));
            for pkt in out {
                if pkt[16..20] == B1.octets() && pkt[33] & 0x02 != 0 {
                    ports.insert(u16::from_be_bytes([pkt[20], pkt[21]]));
                }
                m.pipe.push_rx(&pkt);
            }
            m.serve(now);
            let mut back = Vec::new();
            m.pipe.drain_tx(|pkt| back.push(pkt.to_vec()));
            for pkt in back {
                p.push_rx(&pkt);
            }
        }
    }
    assert_eq!(ports.len(), 5, "a new local port each time: {ports:?}");
}

#[test]
fn status_lines() {
    assert_eq!(status(b"HTTP/1.1 200 OK\r\n"), Some(Ok(200)));
    assert_eq!(status(b"HTTP/1.0 503 Busy\r\nX: y"), Some(Ok(503)));
    assert_eq!(status(b"HTTP/1.1 200"), None, "line not complete");
    assert_eq!(status(b"SSH-2.0-OpenSSH\r\n"), Some(Err(())));
    assert_eq!(status(b"HTTP/1.1 2000 OK\r\n"), Some(Err(())));
}

#[test]
fn health_survives_a_reconfigure_by_probe_name_and_address() {
    let mut p = prober(HTTP);
    let mut m = Members::new(200);
    run(&mut p, &mut m, 0, 1000);
    assert!(!health(&p, B2).up);
    p.reconfigure(&config(HTTP), 1000);
    assert!(!health(&p, B2).up, "kept across a reconfigure");
    assert_eq!(p.pool_health(&config(HTTP)), [("p".to_string(), 2, 3)]);
    // A member that leaves and comes back starts again, up.
    let mut without = config(HTTP);
    without.pools[0].members.remove(1);
    p.reconfigure(&without, 1000);
    assert!(p.health("pr", IpAddr::V4(B2)).is_none());
    p.reconfigure(&config(HTTP), 1000);
    assert!(health(&p, B2).up);
}
