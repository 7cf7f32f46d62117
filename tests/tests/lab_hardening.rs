//! Hardening lab tests (issue #15): attacks and faults a trusted load
//! balancer survives, with real Linux endpoints in namespaces around
//! sluiced (tests/src/lab.rs). Each test builds its own lab and tears it
//! down, also when it fails.

use sluice_tests::lab::{backend_addr, Lab, CLIENT, EGRESS_AND_SSH_POOL, FRONTEND, INTERNET};
use std::time::Duration;

/// An lb_rule "echo" on the public frontend, port 7000, to b1 alone.
const ECHO_RULE: &str = r#"
[[pool]]
name = "echo-pool"
members = [{ address = "10.0.0.11", name = "e1" }]

[[lb_rule]]
name = "echo"
frontend = "web"
protocol = "tcp"
frontend_port = 7000
backend_port = 7000
pool = "echo-pool"
disable_outbound_snat = true

[[security_rule]]
name = "allow-echo"
priority = 101
direction = "inbound"
action = "allow"
source = "*"
destination = "203.0.113.10/32"
protocol = "tcp"
destination_ports = "7000"
"#;

/// `tests/data/blind_rst.py` in `ns`: a connection from `src` to
/// `dst:port`, 100 blind RSTs, `wait` seconds idle, an echo, then one
/// RST in the window. Returns its output; asserts the connection lived.
fn blind_rst(lab: &Lab, ns: &str, src: &str, dst: &str, port: u16, wait: f64) -> String {
    let script = sluice_tests::workspace().join("tests/data/blind_rst.py");
    let out = lab.exec(
        ns,
        &[
            "python3",
            script.to_str().unwrap(),
            "eth0",
            src,
            dst,
            &port.to_string(),
            "100",
            &wait.to_string(),
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("echo1 True"), "{text}");
    assert!(
        out.status.success() && text.contains("echo2 True"),
        "the connection died after blind RSTs: {text}"
    );
    text
}

/// The flows `sluicectl flows ARGS` lists.
fn flows(lab: &Lab, args: &[&str]) -> Vec<serde_json::Value> {
    let mut v = vec!["flows"];
    v.extend_from_slice(args);
    lab.ctl_json(&v)["flows"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Waits until the probes have taken the lab pool's absent members out
/// (`n` healthy of web-pool's three).
fn healthy(lab: &Lab, n: u64) {
    assert!(
        eventually(20, || lab.ctl_json(&["health"])["pools"][0]["healthy"] == n),
        "web-pool never had {n} healthy: {}",
        lab.ctl_json(&["health"])
    );
}

/// Waits up to `secs` for `f` to hold.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = std::time::Instant::now() + Duration::from_secs(secs);
    while std::time::Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    false
}

#[test]
fn blind_resets_do_not_end_inbound_or_snat_connections() {
    let lab = Lab::new(1);
    let b1 = lab.backend(0);
    let snat = "tests/data/snat_lab.py";
    let script = sluice_tests::workspace().join(snat);
    let py = script.to_str().unwrap();
    lab.spawn(&b1, &["python3", py, "tcp-echo", "7000"]);
    lab.spawn(&lab.internet(), &["python3", py, "tcp-echo", "7001"]);
    let (text, prefix) = lab.config(&format!("{ECHO_RULE}\n{EGRESS_AND_SSH_POOL}"));
    let text = sluice_tests::lab::with_outbound(&text);
    // Timers / 5: a reset flow lives 1 s (3 s through SNAT), an
    // established one 48 s; the test idles 4 s after the blind RSTs.
    let d = lab.start_sluiced_args(&text, &prefix, &["--timer-scale", "5"]);
    assert!(lab.wait_until(&b1, "ss -ltn | grep -q :7000", 10));
    assert!(lab.wait_until(&lab.internet(), "ss -ltn | grep -q :7001", 10));

    // Inbound: client -> frontend -> b1.
    blind_rst(&lab, &lab.client(), CLIENT, FRONTEND, 7000, 4.0);
    // The in-window RST ends the flow: reset, then gone on schedule.
    assert!(
        eventually(5, || flows(
            &lab,
            &["--frontend", "web", "--protocol", "tcp"]
        )
        .iter()
        .all(|f| f["rule"] != "echo")),
        "the in-window RST did not end the inbound flow: {:?}",
        flows(&lab, &[])
    );

    // SNAT: b1 -> the internet host, as the public address.
    blind_rst(&lab, &b1, &backend_addr(0), INTERNET, 7001, 4.0);
    assert!(
        eventually(8, || flows(
            &lab,
            &["--member", "10.0.0.11", "--protocol", "tcp"]
        )
        .iter()
        .all(|f| f["direction"] != "outbound")),
        "the in-window RST did not end the SNAT flow: {:?}",
        flows(&lab, &[])
    );

    let r = d.stop();
    assert!(
        r.get("tcp_rst_out_of_window") >= 200,
        "100 blind RSTs at each connection: {}",
        r.log
    );
    assert_eq!(r.get("drop.tcp_no_flow"), 0, "{}", r.log);
}

#[test]
fn snat_uses_the_first_address_then_the_next_and_every_workers_ports() {
    let lab = Lab::new(1);
    let log = lab.dir.join("who.out");
    let script = sluice_tests::workspace().join("tests/data/snat_lab.py");
    let py = script.to_str().unwrap();
    lab.spawn(
        &lab.internet(),
        &["python3", py, "tcp-who", "9000", log.to_str().unwrap()],
    );
    assert!(lab.wait_until(&lab.internet(), "ss -ltn | grep -q ':9000 '", 10));
    // Two public addresses, 8 ports on each; two workers on two RX queues
    // per port (three lcores on this machine's two CPUs), so RSS spreads
    // the member's connections over both workers' slices.
    let extra = "[[frontend]]\nname = \"web2\"\naddress = \"203.0.113.11\"\nkind = \"public\"\n\n\
                 [[outbound_rule]]\nname = \"egress\"\nfrontends = [\"web\", \"web2\"]\n\
                 pool = \"web-pool\"\nprotocol = \"tcp\"\nports_per_member = 8\n";
    let (text, prefix) = lab.config(extra);
    let text = sluice_tests::lab::with_outbound(&text)
        .replace("\"-l\", \"0-1\"", "\"--lcores=0@0,1@1,2@1\"")
        .replace("iface=ext0\"", "iface=ext0,qpairs=2\"")
        .replace("iface=int0\"", "iface=int0,qpairs=2\"")
        .replace("workers = [1]", "workers = [1, 2]")
        .replace("role = \"external\"", "role = \"external\"\nrx_queues = 2")
        .replace("role = \"internal\"", "role = \"internal\"\nrx_queues = 2");
    assert!(
        text.contains("workers = [1, 2]"),
        "conf/lab.toml changed shape"
    );
    let d = lab.start_sluiced_with(&text, &prefix);
    let out = lab.dir.join("fill.out");
    let o = lab.exec(
        &lab.backend(0),
        &[
            "python3",
            py,
            "fill",
            INTERNET,
            "9000",
            "17",
            out.to_str().unwrap(),
        ],
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let opened = std::fs::read_to_string(&out).unwrap_or_default();
    let ok: Vec<&str> = opened.lines().filter(|l| l.ends_with(" 1")).collect();
    assert_eq!(ok.len(), 16, "16 ports, 16 connections:\n{opened}");
    assert!(opened.contains("16 0"), "the 17th fails:\n{opened}");
    assert!(eventually(5, || std::fs::read_to_string(&log)
        .is_ok_and(|s| s.lines().count() == 16)));
    let seen = std::fs::read_to_string(&log).unwrap();
    for line in seen.lines() {
        let (i, from) = line.split_once(' ').unwrap();
        let i: u32 = i.parse().unwrap();
        let want = if i < 8 { FRONTEND } else { "203.0.113.11" };
        assert_eq!(from, want, "connection {i}:\n{seen}");
    }
    let r = d.stop();
    assert_eq!(r.get("snat.egress.10.0.0.11.ok"), 16, "{}", r.log);
    // The 17th SYN and its retransmissions.
    assert!(r.get("snat.egress.10.0.0.11.failed") >= 1, "{}", r.log);
    assert_eq!(r.get("snat.egress.10.0.0.11.ports_allocated"), 16);
    for w in 0..2 {
        assert!(
            r.get(&format!("worker{w}.snat_created")) >= 1,
            "RSS gave worker {w} none of the connections: {}",
            r.log
        );
    }
}

/// Sends `bytes` on a fresh connection to the control socket and returns
/// what comes back (the connection's write side closed after them).
fn raw_request(lab: &Lab, bytes: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::os::unix::net::UnixStream::connect(lab.socket()).expect("control socket");
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let _ = s.write_all(bytes);
    let _ = s.shutdown(std::net::Shutdown::Write);
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn garbage_on_the_control_socket_changes_nothing() {
    let lab = Lab::new(1);
    lab.http_backends(1, 80);
    let d = lab.start_sluiced("");
    healthy(&lab, 1);
    let url = format!("http://{FRONTEND}/");
    assert!(lab.curls(&[CLIENT.to_string()], 1, &url)[0].1 == "b1");
    // Not JSON, binary, a megabyte without a newline: each refused with a
    // reason.
    for bad in [
        b"hello\n".to_vec(),
        vec![0xff, 0x00, 0x13, b'\n'],
        vec![b'a'; 1 << 20],
        b"{\"cmd\": \"nonsense\"}\n".to_vec(),
    ] {
        let reply = raw_request(&lab, &bad);
        let v: serde_json::Value = serde_json::from_str(reply.trim())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {reply}"));
        assert_eq!(v["ok"], false, "{v}");
    }
    // A request written halfway and held open: other clients are still
    // answered, and traffic still flows.
    use std::io::Write;
    let mut half = std::os::unix::net::UnixStream::connect(lab.socket()).unwrap();
    half.write_all(b"{\"cmd\": \"sta").unwrap();
    let t = std::time::Instant::now();
    let out = lab.ctl(&["status"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "answered after {:?}",
        t.elapsed()
    );
    assert!(lab
        .curls(&[CLIENT.to_string()], 3, &url)
        .iter()
        .all(|a| a.1 == "b1"));
    drop(half);
    let r = d.stop();
    assert_eq!(r.get("drop.tcp_no_flow"), 0, "{}", r.log);
}

#[test]
fn a_backend_that_accepts_and_never_answers_is_taken_out() {
    let lab = Lab::new(2);
    lab.server(&lab.backend(0), &["http", "80", "b1"]);
    // b2 accepts every connection and never says a word.
    let hole = "import socket\n\
                s = socket.socket()\n\
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                s.bind(('0.0.0.0', 80))\n\
                s.listen(128)\n\
                held = []\n\
                while True:\n    held.append(s.accept())\n";
    lab.spawn(&lab.backend(1), &["python3", "-c", hole]);
    for i in 0..2 {
        assert!(lab.wait_until(&lab.backend(i), "ss -ltn | grep -q ':80 '", 10));
    }
    let d = lab.start_sluiced("");
    // Probes every second, two failures (timeouts) take a member out; the
    // pool's third member has no backend at all: out too, before traffic.
    assert!(
        eventually(20, || {
            let h = lab.ctl_json(&["health"]);
            let rows = h["members"].as_array().cloned().unwrap_or_default();
            let b2 = rows.iter().any(|m| {
                m["member"] == "10.0.0.12" && m["state"] == "down" && m["last"] == "timeout"
            });
            b2 && h["pools"][0]["healthy"] == 1
        }),
        "b2 was never marked down: {}",
        lab.ctl_json(&["health"])
    );
    let url = format!("http://{FRONTEND}/");
    let answers = lab.curls(&[CLIENT.to_string()], 20, &url);
    let flows = lab.ctl_json(&["flows", "--limit", "100"]);
    assert!(
        answers.iter().all(|a| a.1 == "b1"),
        "every connection to b1: {answers:?}\n{flows}\n{}",
        d.log()
    );
    let r = d.stop();
    assert_eq!(r.get("probe.http-health.10.0.0.12.up"), 0, "{}", r.log);
    assert_eq!(r.get("probe.http-health.10.0.0.11.up"), 1);
}

#[test]
fn a_read_only_state_directory_refuses_the_reload_and_keeps_the_maps() {
    let lab = Lab::new(2);
    lab.http_backends(2, 80);
    let (text, prefix) = lab.config(EGRESS_AND_SSH_POOL);
    let text = sluice_tests::lab::with_outbound(&text);
    let d = lab.start_sluiced_with(&text, &prefix);
    healthy(&lab, 2);
    let state = lab.dir.join("state");
    let map = state.join("nat-pool-ssh-pool.map");
    let before = std::fs::read_to_string(&map).expect("the NAT pool map");
    // The state directory becomes read-only under the daemon (root ignores
    // file modes; a read-only bind mount does not), in its own mount
    // namespace (`ip netns exec` gave it one).
    let dir = state.to_str().unwrap();
    let pid = d.pid().to_string();
    let in_daemon = |args: &[&str]| {
        let mut c = std::process::Command::new("nsenter");
        c.args(["-t", &pid, "-m", "--"]).args(args);
        sluice_tests::must(&mut c)
    };
    in_daemon(&["mount", "--bind", dir, dir]);
    in_daemon(&["mount", "-o", "remount,ro,bind", dir]);
    // A reload that moves a member out of the pool would rewrite the maps.
    let smaller = text.replace("  { address = \"10.0.0.12\", name = \"b2\" },\n", "");
    assert_ne!(smaller, text, "conf/lab.toml's pool changed shape");
    let applied = d.reload(&smaller);
    let log = d.log();
    in_daemon(&["umount", dir]);
    assert!(!applied, "the reload must be refused:\n{log}");
    assert!(log.contains("writing"), "the error is logged:\n{log}");
    assert_eq!(
        std::fs::read_to_string(&map).unwrap(),
        before,
        "map untouched"
    );
    // The running config stays: both members still serve.
    let url = format!("http://{FRONTEND}/");
    let seen: std::collections::HashSet<String> = lab
        .curls(&[CLIENT.to_string()], 20, &url)
        .into_iter()
        .map(|a| a.1)
        .collect();
    assert!(seen.contains("b1") && seen.contains("b2"), "{seen:?}");
    let r = d.stop();
    assert_eq!(r.get("reload.rejected"), 1, "{}", r.log);
}

#[test]
fn a_full_state_directory_refuses_the_reload_and_keeps_the_maps() {
    let lab = Lab::new(2);
    lab.http_backends(2, 80);
    let (text, prefix) = lab.config(EGRESS_AND_SSH_POOL);
    let text = sluice_tests::lab::with_outbound(&text);
    let d = lab.start_sluiced_with(&text, &prefix);
    healthy(&lab, 2);
    let state = lab.dir.join("state");
    let dir = state.to_str().unwrap().to_string();
    let pid = d.pid().to_string();
    let in_daemon = |script: &str| {
        let mut c = std::process::Command::new("nsenter");
        c.args(["-t", &pid, "-m", "--", "sh", "-c", script]);
        c.output().expect("nsenter")
    };
    // A 64 KiB file system over the state directory, in the daemon's own
    // mount namespace, holding the daemon's maps, then filled up.
    let full = in_daemon(&format!(
        "set -e; cp -a {dir} {dir}.copy; mount -t tmpfs -o size=64k tmpfs {dir}; \
         cp -a {dir}.copy/. {dir}/; rm -r {dir}.copy; \
         dd if=/dev/zero of={dir}/filler bs=4k 2>/dev/null || true; \
         cat {dir}/nat-pool-ssh-pool.map"
    ));
    let before = String::from_utf8_lossy(&full.stdout).to_string();
    assert!(before.contains("10.0.0.12"), "the map, copied: {before:?}");
    let smaller = text.replace("  { address = \"10.0.0.12\", name = \"b2\" },\n", "");
    assert_ne!(smaller, text, "conf/lab.toml's pool changed shape");
    let applied = d.reload(&smaller);
    let log = d.log();
    let after = in_daemon(&format!("cat {dir}/nat-pool-ssh-pool.map; ls {dir}"));
    let after = String::from_utf8_lossy(&after.stdout).to_string();
    assert!(!applied, "the reload must be refused:\n{log}");
    assert!(log.contains("writing"), "the error is logged:\n{log}");
    assert!(after.starts_with(&before), "map untouched: {after:?}");
    assert!(
        !after.contains(".tmp"),
        "no half-written file left: {after}"
    );
    // The running config stays: both members still serve.
    let url = format!("http://{FRONTEND}/");
    let seen: std::collections::HashSet<String> = lab
        .curls(&[CLIENT.to_string()], 20, &url)
        .into_iter()
        .map(|a| a.1)
        .collect();
    assert!(seen.contains("b1") && seen.contains("b2"), "{seen:?}");
    // With room again, the same reload applies.
    in_daemon(&format!("rm {dir}/filler"));
    let applied = d.reload(&smaller);
    let after = in_daemon(&format!("cat {dir}/nat-pool-ssh-pool.map; umount {dir}"));
    let after = String::from_utf8_lossy(&after.stdout).to_string();
    assert!(applied, "{}", d.log());
    assert!(!after.contains("10.0.0.12"), "b2 left the map: {after}");
    let r = d.stop();
    assert_eq!(r.get("reload.rejected"), 1, "{}", r.log);
}

#[test]
fn a_config_file_cut_mid_write_is_refused_then_the_whole_one_applies() {
    let lab = Lab::new(1);
    lab.http_backends(1, 80);
    let (text, prefix) = lab.config("");
    let d = lab.start_sluiced_with(&text, &prefix);
    healthy(&lab, 1);
    let url = format!("http://{FRONTEND}/");
    let rule = "\n[[lb_rule]]\nname = \"alt\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
                frontend_port = 8080\nbackend_port = 80\npool = \"web-pool\"\nprobe = \"http-health\"\n\n\
                [[security_rule]]\nname = \"allow-alt\"\npriority = 120\n\
                direction = \"inbound\"\naction = \"allow\"\nsource = \"*\"\n\
                destination = \"203.0.113.10/32\"\nprotocol = \"tcp\"\n\
                destination_ports = \"8080\"\n";
    let whole = format!("{text}{rule}");
    // Written in place, cut in the middle of a table: the watcher sees it.
    let cut = &whole[..whole.len() - 40];
    let log0 = d.log().matches("reload rejected").count();
    std::fs::write(d.config_path(), cut).unwrap();
    assert!(
        eventually(10, || d.log().matches("reload rejected").count() > log0),
        "the watcher never judged the cut file:\n{}",
        d.log()
    );
    assert_eq!(
        lab.curls(&[CLIENT.to_string()], 3, &url)
            .iter()
            .filter(|a| a.1 == "b1")
            .count(),
        3
    );
    // The rest of the write arrives: the whole file applies.
    let applied = d.reload_by(&whole, sluice_tests::daemon::Trigger::FileChange, None);
    assert!(applied, "{}", d.log());
    let alt = lab.curls(
        &[CLIENT.to_string()],
        2,
        &format!("http://{FRONTEND}:8080/"),
    );
    assert!(alt.iter().all(|a| a.1 == "b1"), "{alt:?}");
    let r = d.stop();
    assert!(r.get("reload.rejected") >= 1, "{}", r.log);
}

#[test]
fn a_link_flap_loses_only_the_packets_sent_while_it_was_down() {
    let lab = Lab::new(1);
    lab.http_backends(1, 80);
    let d = lab.start_sluiced("");
    healthy(&lab, 1);
    let url = format!("http://{FRONTEND}/");
    assert_eq!(lab.curls(&[CLIENT.to_string()], 2, &url)[0].1, "b1");
    // The internal veth goes down for a second and comes back.
    assert!(lab
        .sh(
            &lab.lb(),
            "ip link set int0 down && sleep 1 && ip link set int0 up"
        )
        .status
        .success());
    assert!(
        eventually(15, || lab.curls(&[CLIENT.to_string()], 1, &url)[0].1
            == "b1"),
        "traffic never came back after the flap:\n{}",
        d.log()
    );
    let after = lab.curls(&[CLIENT.to_string()], 10, &url);
    assert!(after.iter().all(|a| a.1 == "b1"), "{after:?}");
    d.stop();
}

#[test]
fn members_reach_their_own_public_and_internal_frontends() {
    let lab = Lab::new(3);
    lab.http_backends(3, 80);
    let ilb = "[[frontend]]\nname = \"ilb\"\naddress = \"10.0.0.100\"\nkind = \"internal\"\n\n\
               [[lb_rule]]\nname = \"inner\"\nfrontend = \"ilb\"\nprotocol = \"tcp\"\n\
               frontend_port = 80\nbackend_port = 80\npool = \"web-pool\"\n\
               probe = \"http-health\"\n";
    let d = lab.start_sluiced(ilb);
    healthy(&lab, 3);
    for fe in [FRONTEND, "10.0.0.100"] {
        for i in 0..3 {
            // 20 connections from member i: each answered, and the landing
            // member (whichever, this one included) saw the frontend.
            let script = format!(
                "for n in $(seq 20); do curl -s --max-time 3 http://{fe}/ || echo FAIL x; done"
            );
            let out = lab.sh(&lab.backend(i), &script);
            let text = String::from_utf8_lossy(&out.stdout).to_string();
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 20, "{text}");
            for l in &lines {
                let (who, seen) = l.split_once(' ').unwrap_or(("", ""));
                assert!(who.starts_with('b'), "b{} to {fe}: {l}\n{}", i + 1, d.log());
                assert_eq!(seen, fe, "b{} to {fe}: the member saw {seen}", i + 1);
            }
        }
    }
    let r = d.stop();
    assert!(r.get("hairpin_created") >= 120, "{}", r.log);
    assert_eq!(r.get("drop.hairpin_exhausted"), 0);
}

#[test]
fn a_backend_that_sends_garbage_then_resets_mid_stream_ends_only_that_flow() {
    let lab = Lab::new(1);
    // Each connection: 3000 bytes of noise, then a RST (linger 0).
    let server = "import os, socket, struct\n\
                  s = socket.socket()\n\
                  s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
                  s.bind(('0.0.0.0', 7000))\n\
                  s.listen(16)\n\
                  while True:\n    c, _ = s.accept()\n    c.sendall(bytes(range(256)) * 11 + b'x' * 184)\n    \
                  c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))\n    c.close()\n";
    lab.spawn(&lab.backend(0), &["python3", "-c", server]);
    assert!(lab.wait_until(&lab.backend(0), "ss -ltn | grep -q ':7000 '", 10));
    let d = lab.start_sluiced(ECHO_RULE);
    let client = format!(
        "import socket\n\
         for n in range(3):\n    c = socket.create_connection(('{FRONTEND}', 7000), timeout=3)\n    \
         got = b''\n    \
         try:\n        \
         while True:\n            d = c.recv(65536)\n            if not d: break\n            got += d\n    \
         except ConnectionResetError:\n        pass\n    \
         print(len(got), got[:256] == bytes(range(256)))\n"
    );
    let out = lab.exec(&lab.client(), &["python3", "-c", &client]);
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Every connection got its bytes intact up to the RST (the kernel
    // hands over what it received before reporting the reset), and the
    // next one opened anyway.
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(lines.iter().all(|l| l.ends_with("True")), "{text}");
    // The member's RST ended each flow (reset, then gone on schedule).
    assert!(
        eventually(10, || flows(
            &lab,
            &["--frontend", "web", "--protocol", "tcp"]
        )
        .iter()
        .all(|f| f["rule"] != "echo")),
        "{:?}",
        flows(&lab, &[])
    );
    let r = d.stop();
    assert_eq!(
        r.get("tcp_rst_out_of_window"),
        0,
        "the member's RSTs are in its window"
    );
    assert_eq!(r.get("drop.tcp_no_flow"), 0, "{}", r.log);
}
