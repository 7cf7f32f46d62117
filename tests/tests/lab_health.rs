//! Health-probe lab tests: nginx (HTTP and HTTPS with a certificate openssl
//! makes here), socat and Python servers on the backends, real clients,
//! sluiced between them. conf/lab.toml probes `/health` on port 80 every
//! second with a threshold of 2.

use sluice_tests::lab::{backend_addr, Lab, FRONTEND, SLUICE_INT};
use sluice_tests::nginx::Nginx;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Interval x threshold + 1 s of conf/lab.toml's probe, plus half a second
/// for the test's own polling.
const TAKE_OUT: Duration = Duration::from_millis(3500);

/// nginx on backends 0..n, `/health` answering `health(i)`.
fn nginx_with(lab: &Lab, n: usize, health: impl Fn(usize) -> u16) -> Vec<Nginx> {
    (0..n)
        .map(|i| {
            let x = Nginx::new(lab, i);
            x.configure(health(i), None, false);
            x.start(lab);
            x
        })
        .collect()
}

/// nginx on backends 0..n, `/health` answering 200.
fn nginx_all(lab: &Lab, n: usize) -> Vec<Nginx> {
    nginx_with(lab, n, |_| 200)
}

/// A line-echo server on `port` in every backend: each line comes back
/// prefixed with the backend's name ("b1=hello").
fn echo_all(lab: &Lab, n: usize, port: u16) {
    for i in 0..n {
        lab.spawn(
            &lab.backend(i),
            &[
                "socat",
                &format!("TCP-LISTEN:{port},fork,reuseaddr"),
                &format!("SYSTEM:sed -u s/^/b{}=/", i + 1),
            ],
        );
    }
    for i in 0..n {
        assert!(lab.wait_until(
            &lab.backend(i),
            &format!("ss -ltn | grep -q ':{port} '"),
            10
        ));
    }
}

/// A rule `name` on TCP (or UDP) `port` over the lab pool, probed by
/// `probe`, with its security rule; `extra` goes into the rule.
fn rule(name: &str, proto: &str, port: u16, probe: &str, extra: &str) -> String {
    format!(
        "[[lb_rule]]\nname = \"{name}\"\nfrontend = \"web\"\nprotocol = \"{proto}\"\n\
         frontend_port = {port}\nbackend_port = {port}\npool = \"web-pool\"\nprobe = \"{probe}\"\n{extra}\n\
         [[security_rule]]\nname = \"allow-{name}\"\npriority = {}\ndirection = \"inbound\"\n\
         action = \"allow\"\nsource = \"*\"\ndestination = \"{FRONTEND}/32\"\nprotocol = \"{proto}\"\n\
         destination_ports = \"{port}\"\n",
        200 + port % 1000
    )
}

/// A socat session from the client to the frontend: lines written, lines
/// read back.
struct Session {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Session {
    fn open(lab: &Lab, port: u16) -> Session {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &lab.client(), "socat", "-"])
            .arg(format!("TCP:{FRONTEND}:{port},connect-timeout=3"))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let out = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for l in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        Session { child, lines }
    }

    /// Sends `line`; the echo, if it comes within 3 s.
    fn say(&mut self, line: &str) -> Option<String> {
        let stdin = self.child.stdin.as_mut().unwrap();
        writeln!(stdin, "{line}").ok()?;
        stdin.flush().ok()?;
        self.lines.recv_timeout(Duration::from_secs(3)).ok()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `n` one-line connections to the frontend's `port`: the backend that
/// echoed each, or "FAIL".
fn echo_connections(lab: &Lab, port: u16, n: usize) -> Vec<String> {
    let script = format!(
        "for i in $(seq {n}); do r=$(echo x | socat -T2 - TCP:{FRONTEND}:{port},connect-timeout=2 2>/dev/null); \
         echo \"${{r:-FAIL}}\" | cut -d= -f1; done"
    );
    let out = lab.sh(&lab.client(), &script);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// `n` curls to the frontend's `port`: the backend that answered each, or
/// "FAIL".
fn curls(lab: &Lab, port: u16, n: usize) -> Vec<String> {
    let script = format!(
        "for i in $(seq {n}); do curl -s --max-time 2 http://{FRONTEND}:{port}/ || echo FAIL; done"
    );
    let out = lab.sh(&lab.client(), &script);
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.split_whitespace().next().unwrap_or("").to_string())
        .collect()
}

fn count(v: &[String], what: &str) -> usize {
    v.iter().filter(|s| *s == what).count()
}

/// Waits up to `within` for the daemon to log `text`; how long it took.
fn wait_log(d: &sluice_tests::daemon::Daemon, text: &str, within: Duration) -> Duration {
    let start = Instant::now();
    loop {
        if d.log().contains(text) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "no \"{text}\" within {within:?}:\n{}",
            d.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_member_whose_nginx_stops_leaves_new_connections_keeps_its_old_ones_and_returns() {
    let lab = Lab::new(3);
    let nginx = nginx_all(&lab, 3);
    echo_all(&lab, 3, 7000);
    let d = lab.start_sluiced(&rule("echo", "tcp", 7000, "http-health", ""));

    // Probes come from Sluice's internal address, from the probe ports.
    let dump = lab.sh(
        &lab.backend(0),
        "timeout 5 tcpdump -i eth0 -n -l -c 2 'tcp dst port 80 and tcp[tcpflags] & tcp-syn != 0' 2>/dev/null",
    );
    let dump = String::from_utf8_lossy(&dump.stdout);
    let want = format!(" {SLUICE_INT}.61");
    assert!(
        dump.lines().count() == 2
            && dump
                .lines()
                .all(|l| l.contains(&want) && l.contains("> 10.0.0.11.80:")),
        "probes seen on b1:\n{dump}"
    );

    let mut session = Session::open(&lab, 7000);
    let first = session.say("hello").expect("the session echoes");
    let b: usize = first
        .strip_prefix('b')
        .and_then(|r| r.split('=').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("echo {first:?}"));
    let member = backend_addr(b - 1);
    let name = format!("b{b}");

    nginx[b - 1].stop(&lab);
    let took = wait_log(&d, &format!("member {member} down"), TAKE_OUT);
    eprintln!("{member} down {took:?} after nginx stopped");
    let answers = echo_connections(&lab, 7000, 30);
    assert_eq!(answers.len(), 30);
    assert_eq!(count(&answers, "FAIL"), 0, "{answers:?}");
    assert_eq!(
        count(&answers, &name),
        0,
        "a down member took new connections (its echo server still runs): {answers:?}"
    );
    assert_eq!(
        session.say("again").as_deref(),
        Some(format!("{name}=again").as_str()),
        "the connection opened before the member went down goes on"
    );

    nginx[b - 1].start(&lab);
    wait_log(&d, &format!("member {member} up"), TAKE_OUT);
    let answers = echo_connections(&lab, 7000, 30);
    assert_eq!(count(&answers, "FAIL"), 0, "{answers:?}");
    assert!(count(&answers, &name) > 0, "{name} is back: {answers:?}");
    drop(session);

    let r = d.stop();
    let p = format!("probe.http-health.{member}");
    assert_eq!(r.get(&format!("{p}.up")), 1);
    assert!(r.get(&format!("{p}.probes")) >= 3, "{:?}", r.counters);
    assert_eq!(r.get("rule.echo.eligible_members"), 3);
    assert!(r.get("health.published") >= 2);
    assert_eq!(r.get("probe.rx_dropped"), 0);
    assert!(r.get("to_prober") > 0 && r.get("flows_created") >= 61);
}

#[test]
fn a_503_health_page_or_a_closed_tcp_port_takes_a_member_out() {
    let lab = Lab::new(3);
    // b2's /health says 503 from the start.
    let _nginx = nginx_with(&lab, 3, |i| if i == 1 { 503 } else { 200 });
    // The TCP probe's port listens on b1 and b2 only.
    for i in 0..2 {
        lab.spawn(
            &lab.backend(i),
            &["socat", "TCP-LISTEN:9000,fork,reuseaddr", "SYSTEM:true"],
        );
        assert!(lab.wait_until(&lab.backend(i), "ss -ltn | grep -q ':9000 '", 10));
    }
    let tcp_probe = "[[probe]]\nname = \"tcp-9000\"\nprotocol = \"tcp\"\nport = 9000\ninterval = \"1s\"\nthreshold = 2\n";
    // Port 8080 of the frontend reaches nginx's port 80 under the TCP probe.
    let alt = rule("alt", "tcp", 8080, "tcp-9000", "")
        .replace("backend_port = 8080", "backend_port = 80");
    let d = lab.start_sluiced(&format!("{tcp_probe}\n{alt}"));

    // A 503 is a refusal: down at the first probe; a RST likewise.
    wait_log(
        &d,
        "member 10.0.0.12 down: probe http-health: HTTP status 503",
        TAKE_OUT,
    );
    wait_log(
        &d,
        "member 10.0.0.13 down: probe tcp-9000: refused (reset, or an answer that is no HTTP)",
        TAKE_OUT,
    );
    let web = curls(&lab, 80, 30);
    assert_eq!(count(&web, "FAIL"), 0, "{web:?}");
    assert_eq!(count(&web, "b2"), 0, "b2's /health says 503: {web:?}");
    assert!(count(&web, "b3") > 0, "b3 passes the HTTP probe: {web:?}");
    let alt = curls(&lab, 8080, 30);
    assert_eq!(count(&alt, "FAIL"), 0, "{alt:?}");
    assert_eq!(
        count(&alt, "b3"),
        0,
        "nothing listens on b3's 9000: {alt:?}"
    );
    assert!(count(&alt, "b2") > 0, "b2 passes the TCP probe: {alt:?}");

    let r = d.stop();
    assert_eq!(r.get("probe.http-health.10.0.0.12.up"), 0);
    assert_eq!(r.get("probe.http-health.10.0.0.12.last"), 1503);
    assert_eq!(r.get("probe.http-health.10.0.0.13.up"), 1);
    assert_eq!(r.get("probe.tcp-9000.10.0.0.13.up"), 0);
    assert_eq!(r.get("probe.tcp-9000.10.0.0.13.last"), 1000);
    assert_eq!(r.get("probe.tcp-9000.10.0.0.12.last"), 200);
    assert_eq!(r.get("rule.http.eligible_members"), 2);
    assert_eq!(r.get("rule.alt.eligible_members"), 2);
    // b2 fails one probe, b3 the other: only b1 passes both.
    assert_eq!(r.get("pool.web-pool.healthy"), 1);
    assert_eq!(r.get("pool.web-pool.members"), 3);
}

#[test]
fn an_https_probe_passes_a_self_signed_nginx_and_fails_once_tls_stops() {
    let lab = Lab::new(3);
    let (cert, key) = sluice_tests::nginx::self_signed(&lab, "backend.lab");
    let pair = (cert, key);
    let nginx: Vec<Nginx> = (0..3)
        .map(|i| {
            let x = Nginx::new(&lab, i);
            x.configure(200, Some(&pair), false);
            x.start(&lab);
            x
        })
        .collect();
    assert!(lab.wait_until(&lab.backend(0), "ss -ltn | grep -q ':443 '", 10));
    let https = "[[probe]]\nname = \"tls-health\"\nprotocol = \"https\"\nport = 443\npath = \"/health\"\ninterval = \"1s\"\nthreshold = 2\n";
    let (text, prefix) = lab.config(https);
    let text = text.replace("probe = \"http-health\"", "probe = \"tls-health\"");
    let d = lab.start_sluiced_with(&text, &prefix);

    // Two intervals: every member answers its probes over TLS.
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!d.log().contains(" down: probe"), "{}", d.log());
    let web = curls(&lab, 80, 30);
    assert_eq!(count(&web, "FAIL"), 0, "{web:?}");
    for b in ["b1", "b2", "b3"] {
        assert!(count(&web, b) > 0, "{b}: {web:?}");
    }

    // b1's port 443 now speaks plain HTTP: the TLS handshake fails.
    nginx[0].configure(200, None, true);
    nginx[0].reload(&lab);
    wait_log(&d, "member 10.0.0.11 down: probe tls-health", TAKE_OUT);
    let web = curls(&lab, 80, 30);
    assert_eq!(count(&web, "FAIL"), 0, "{web:?}");
    assert_eq!(count(&web, "b1"), 0, "{web:?}");

    let r = d.stop();
    assert_eq!(r.get("probe.tls-health.10.0.0.11.up"), 0);
    for m in ["10.0.0.12", "10.0.0.13"] {
        assert_eq!(r.get(&format!("probe.tls-health.{m}.up")), 1);
        assert_eq!(r.get(&format!("probe.tls-health.{m}.last")), 200);
        assert!(r.get(&format!("probe.tls-health.{m}.consecutive")) >= 3);
    }
}

#[test]
fn with_every_member_down_no_new_flows_are_admitted_until_all_up_is_configured() {
    let lab = Lab::new(2);
    let nginx = nginx_all(&lab, 2);
    echo_all(&lab, 2, 7000);
    let (text, prefix) = lab.config(&rule("echo", "tcp", 7000, "http-health", ""));
    let text = text.replace("  { address = \"10.0.0.13\", name = \"b3\" },\n", "");
    let d = lab.start_sluiced_with(&text, &prefix);

    let mut session = Session::open(&lab, 7000);
    let first = session.say("hello").expect("the session echoes");
    for x in &nginx {
        x.stop(&lab);
    }
    wait_log(&d, "member 10.0.0.11 down", TAKE_OUT);
    wait_log(&d, "member 10.0.0.12 down", TAKE_OUT);
    let answers = echo_connections(&lab, 7000, 5);
    assert_eq!(count(&answers, "FAIL"), 5, "no_new_flows: {answers:?}");
    let b = first.split('=').next().unwrap().to_string();
    assert_eq!(
        session.say("still").as_deref(),
        Some(format!("{b}=still").as_str()),
        "the established connection goes on"
    );

    // all_up: every member takes new flows although all are down.
    let all_up = text.replace(
        "probe = \"http-health\"\n\n[[security_rule]]\nname = \"allow-echo\"",
        "probe = \"http-health\"\nall_down = \"all_up\"\n\n[[security_rule]]\nname = \"allow-echo\"",
    );
    assert_ne!(all_up, text);
    assert!(d.reload(&all_up), "{}", d.log());
    let answers = echo_connections(&lab, 7000, 20);
    assert_eq!(count(&answers, "FAIL"), 0, "all_up: {answers:?}");
    assert!(
        count(&answers, "b1") > 0 && count(&answers, "b2") > 0,
        "spread over every member: {answers:?}"
    );
    assert!(
        session.say("after").is_some(),
        "the session survives the reload"
    );
    drop(session);
    let r = d.stop();
    assert_eq!(
        r.get("probe.http-health.10.0.0.11.up"),
        0,
        "health kept across the reload"
    );
    assert_eq!(r.get("rule.echo.available"), 1);
    assert!(r.get("drop.no_healthy_member") >= 5);
}

#[test]
fn a_udp_flow_moves_off_a_member_that_goes_down_or_is_set_admin_down() {
    let lab = Lab::new(3);
    let nginx = nginx_all(&lab, 3);
    for i in 0..3 {
        lab.server(&lab.backend(i), &["udp", "5000", &format!("b{}", i + 1)]);
        assert!(lab.wait_until(&lab.backend(i), "ss -lun | grep -q ':5000 '", 10));
    }
    let (text, prefix) = lab.config(&rule("dgram", "udp", 5000, "http-health", ""));
    let d = lab.start_sluiced_with(&text, &prefix);
    let out = lab.dir.join("udp-client.out");
    let script = sluice_tests::workspace().join("tests/data/lab_server.py");
    lab.spawn(
        &lab.client(),
        &[
            "python3",
            script.to_str().unwrap(),
            "udp-client",
            FRONTEND,
            "5000",
            "12",
            out.to_str().unwrap(),
        ],
    );
    let read = || -> Vec<String> {
        std::fs::read_to_string(&out)
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(' ').next().unwrap_or("").to_string())
            .collect()
    };
    let start = Instant::now();
    let first = loop {
        if let Some(b) = read().first() {
            break b.clone();
        }
        assert!(start.elapsed() < Duration::from_secs(5), "no UDP reply");
        std::thread::sleep(Duration::from_millis(50));
    };
    let b: usize = first[1..].parse().unwrap();
    nginx[b - 1].stop(&lab);
    wait_log(
        &d,
        &format!("member {} down", backend_addr(b - 1)),
        TAKE_OUT,
    );
    let seen = read().len();
    std::thread::sleep(Duration::from_millis(1500));
    let after: Vec<String> = read().split_off(seen);
    assert!(after.len() >= 5, "replies kept coming: {after:?}");
    let moved = &after[2..];
    assert!(
        moved.iter().all(|x| *x != first),
        "datagrams still reach {first} after it went down: {after:?}"
    );
    assert!(
        moved.windows(2).all(|w| w[0] == w[1]),
        "they moved to one healthy member: {after:?}"
    );

    // Admin down by reload acts as a probe saying down: the flow moves on
    // to the third member.
    let second = moved[0].clone();
    let c: usize = second[1..].parse().unwrap();
    let line = format!(
        "{{ address = \"{}\", name = \"{second}\" }}",
        backend_addr(c - 1)
    );
    assert!(text.contains(&line), "{line}");
    let drained = text.replace(&line, &line.replace(" }", ", admin_state = \"down\" }"));
    let seen = read().len();
    assert!(d.reload(&drained), "{}", d.log());
    std::thread::sleep(Duration::from_millis(1500));
    let after: Vec<String> = read().split_off(seen);
    assert!(after.len() >= 5, "replies kept coming: {after:?}");
    let third = &after[after.len() - 3..];
    assert!(
        third.iter().all(|x| *x != first && *x != second),
        "datagrams still reach {second} after it was set admin down: {after:?}"
    );
    let r = d.stop();
    assert!(r.get("flows.moved_by_health") >= 2, "{:?}", r.counters);
}

#[test]
fn probes_leave_on_controls_own_tx_queue_when_the_port_has_a_spare_one() {
    let lab = Lab::new(1);
    let _nginx = nginx_all(&lab, 1);
    let (text, prefix) = lab.config("");
    // Two queue pairs per port (net_af_packet fans received frames out
    // over both: the one worker polls both RX queues) and one worker: TX
    // queue 1 is control's.
    let text = text
        .replace("iface=ext0\"", "iface=ext0,qpairs=2\"")
        .replace("iface=int0\"", "iface=int0,qpairs=2\"")
        .replace("role = \"external\"", "role = \"external\"\nrx_queues = 2")
        .replace("role = \"internal\"", "role = \"internal\"\nrx_queues = 2")
        .replace("  { address = \"10.0.0.12\", name = \"b2\" },\n", "")
        .replace("  { address = \"10.0.0.13\", name = \"b3\" },\n", "");
    assert!(text.contains("qpairs=2"), "conf/lab.toml changed shape");
    let d = lab.start_sluiced_with(&text, &prefix);
    assert!(
        d.log()
            .contains("control sends on its own TX queue port=int"),
        "{}",
        d.log()
    );
    std::thread::sleep(Duration::from_millis(2500));
    let web = curls(&lab, 80, 5);
    assert_eq!(web, vec!["b1"; 5]);
    let r = d.stop();
    assert!(r.get("probe.succeeded") >= 2, "{:?}", r.counters);
    assert_eq!(r.get("probe.http-health.10.0.0.11.up"), 1);
    assert!(r.get("port.int.txq1.packets") >= r.get("probe.tx_packets"));
    assert_eq!(
        r.get("control.tx_own"),
        r.get("port.int.txq1.packets") + r.get("port.ext.txq1.packets")
    );
    assert_eq!(r.get("from_control"), 0, "nothing went through worker 0");
}
