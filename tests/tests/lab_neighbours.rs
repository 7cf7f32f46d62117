//! Sluice answers ARP, neighbour solicitation and ping for its own addresses
//! through real DPDK ports (net_af_packet), from real Linux hosts in network
//! namespaces; it resolves unknown neighbours itself; it ignores what it
//! does not own and ARP from outside that claims an inside address.

use sluice_tests::lab::*;

/// conf/lab.toml without its health probe: these tests count every ARP
/// request and held packet, and probes to backends would add theirs.
fn unprobed(lab: &Lab) -> (String, String) {
    let (text, prefix) = lab.config("");
    assert!(text.contains("probe = \"http-health\"\n"));
    (text.replace("probe = \"http-health\"\n", ""), prefix)
}

fn start(lab: &Lab) -> sluice_tests::daemon::Daemon {
    let (text, prefix) = unprobed(lab);
    lab.start_sluiced_with(&text, &prefix)
}

fn ok(out: &std::process::Output) -> bool {
    out.status.success()
}

fn show(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn client_and_backend_get_arp_and_ping_answers() {
    let lab = Lab::new(1);
    let d = start(&lab);
    let c = lab.client();
    let b = lab.backend(0);

    let out = lab.exec(&c, &["ping", "-c", "3", "-i", "0.2", "-W", "2", SLUICE_EXT]);
    assert!(ok(&out), "client ping {SLUICE_EXT}: {}", show(&out));
    let out = lab.exec(&c, &["ping", "-c", "2", "-i", "0.2", "-W", "2", FRONTEND]);
    assert!(ok(&out), "client ping frontend {FRONTEND}: {}", show(&out));
    let out = lab.exec(
        &c,
        &[
            "arping", "-c", "2", "-w", "2000000", "-i", "eth0", SLUICE_EXT,
        ],
    );
    assert!(ok(&out), "client arping: {}", show(&out));
    let out = lab.exec(
        &c,
        &["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", SLUICE_EXT6],
    );
    assert!(ok(&out), "client ping6: {}", show(&out));

    let out = lab.exec(&b, &["ping", "-c", "3", "-i", "0.2", "-W", "2", SLUICE_INT]);
    assert!(ok(&out), "backend ping {SLUICE_INT}: {}", show(&out));
    let out = lab.exec(
        &b,
        &[
            "arping", "-c", "2", "-w", "2000000", "-i", "eth0", SLUICE_INT,
        ],
    );
    assert!(ok(&out), "backend arping: {}", show(&out));
    let out = lab.exec(
        &b,
        &["ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", SLUICE_INT6],
    );
    assert!(ok(&out), "backend ping6: {}", show(&out));

    // The answers came from the DPDK port's MAC.
    let ext_mac = lab.mac(&lab.lb(), "ext0");
    let neigh = lab.exec(&c, &["ip", "neigh", "show", SLUICE_EXT]);
    assert!(
        show(&neigh).contains(&ext_mac),
        "client's ARP entry {} should be {ext_mac}",
        show(&neigh)
    );

    let r = d.stop();
    assert!(r.get("echo_replies") >= 5 + 4, "{:?}", r.counters);
    assert!(r.get("arp_replies") >= 4, "{:?}", r.counters);
    assert!(r.get("nd_adverts") >= 2, "{:?}", r.counters);
    assert_eq!(
        r.get("rx"),
        r.get("to_tx") + r.get("held") + r.get("consumed") + r.get("drop.worker")
            - r.get("drop.tx_full")
            - r.get("drop.slowpath_full")
    );
}

#[test]
fn address_sluice_does_not_own_is_not_answered_and_counted() {
    let lab = Lab::new(0);
    let d = start(&lab);
    let c = lab.client();
    // Nobody answers ARP for .77...
    let out = lab.exec(
        &c,
        &[
            "arping",
            "-c",
            "2",
            "-w",
            "1000000",
            "-i",
            "eth0",
            "203.0.113.77",
        ],
    );
    assert!(
        !ok(&out),
        "arping to an unowned address was answered: {}",
        show(&out)
    );
    // ...and an echo sent straight to Sluice's MAC is dropped, not answered.
    let mac = lab.mac(&lab.lb(), "ext0");
    lab.sh(
        &c,
        &format!("ip neigh replace 203.0.113.77 lladdr {mac} dev eth0 nud permanent"),
    );
    let out = lab.exec(
        &c,
        &["ping", "-c", "3", "-i", "0.2", "-W", "1", "203.0.113.77"],
    );
    assert!(
        !ok(&out),
        "ping to an unowned address was answered: {}",
        show(&out)
    );
    let r = d.stop();
    assert!(r.get("drop.arp_not_ours") >= 2, "{:?}", r.counters);
    assert!(r.get("drop.no_rule") >= 3, "{:?}", r.counters);
    assert_eq!(r.get("echo_replies"), 0);
}

#[test]
fn sluice_resolves_a_neighbour_it_has_not_heard_from() {
    let lab = Lab::new(1);
    let d = start(&lab);
    let b = lab.backend(0);
    // The backend knows Sluice's MAC already, so Sluice never sees its ARP
    // request: to answer the ping, Sluice must resolve the backend itself.
    let mac = lab.mac(&lab.lb(), "int0");
    lab.sh(
        &b,
        &format!("ip neigh replace {SLUICE_INT} lladdr {mac} dev eth0 nud permanent"),
    );
    let out = lab.exec(&b, &["ping", "-c", "3", "-i", "0.3", "-W", "2", SLUICE_INT]);
    assert!(ok(&out), "ping needing resolution: {}", show(&out));
    // The same over IPv6: Sluice sends a neighbour solicitation.
    lab.sh(
        &b,
        &format!("ip -6 neigh replace {SLUICE_INT6} lladdr {mac} dev eth0 nud permanent"),
    );
    let out = lab.exec(
        &b,
        &["ping", "-6", "-c", "3", "-i", "0.3", "-W", "2", SLUICE_INT6],
    );
    assert!(ok(&out), "ping6 needing resolution: {}", show(&out));
    let r = d.stop();
    assert!(r.get("neigh.requests") >= 2, "{:?}", r.counters);
    assert!(r.get("neigh.resolved") >= 2, "{:?}", r.counters);
    assert!(
        r.get("neigh.released") >= 1,
        "the held reply went out: {:?}",
        r.counters
    );
    assert!(r.get("held") >= 1);
}

#[test]
fn external_arp_claiming_an_internal_address_is_ignored() {
    let lab = Lab::new(1);
    let d = start(&lab);
    let c = lab.client();
    // An ARP request from outside whose sender claims backend 10.0.0.11.
    let out = lab.exec(
        &c,
        &[
            "arping",
            "-c",
            "2",
            "-w",
            "1000000",
            "-i",
            "eth0",
            "-S",
            &backend_addr(0),
            SLUICE_EXT,
        ],
    );
    assert!(!ok(&out), "spoofed ARP was answered: {}", show(&out));
    // The real backend still reaches Sluice.
    let out = lab.exec(
        &lab.backend(0),
        &["ping", "-c", "2", "-i", "0.2", "-W", "2", SLUICE_INT],
    );
    assert!(ok(&out), "{}", show(&out));
    let r = d.stop();
    assert!(r.get("drop.neigh_spoof") >= 2, "{:?}", r.counters);
}

#[test]
fn gateway_is_resolved_at_start() {
    let lab = Lab::new(0);
    // The internet host plays the gateway of the external port.
    let (config, prefix) = unprobed(&lab);
    let config = config.replacen(
        "role = \"external\"",
        &format!("role = \"external\"\ngateway = \"{INTERNET}\""),
        1,
    );
    assert!(
        config.contains("gateway = "),
        "conf/lab.toml's external port changed shape"
    );
    let d = lab.start_sluiced_with(&config, &prefix);
    // No traffic at all: Sluice asks for the gateway by itself.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let mac = lab.mac(&lab.lb(), "ext0");
    let neigh = lab.exec(&lab.internet(), &["ip", "neigh", "show", SLUICE_EXT]);
    assert!(
        show(&neigh).contains(&mac),
        "the gateway host learned Sluice from its request: {}",
        show(&neigh)
    );
    let r = d.stop();
    assert_eq!(r.get("neigh.resolved"), 1, "{:?}", r.counters);
    assert_eq!(
        r.get("rx") - r.get("consumed"),
        r.get("drop.worker"),
        "only the ARP reply is consumed"
    );
}

#[test]
fn replies_to_a_silent_neighbour_are_dropped_after_retries() {
    let lab = Lab::new(0);
    let d = start(&lab);
    let c = lab.client();
    let mac = lab.mac(&lab.lb(), "ext0");
    // The client pings from an extra address it will not answer ARP for, so
    // Sluice's replies wait for a neighbour that never answers.
    lab.sh(
        &c,
        "ip addr add 203.0.113.150/32 dev lo && sysctl -qw net.ipv4.conf.eth0.arp_ignore=8",
    );
    lab.sh(
        &c,
        &format!("ip neigh replace {SLUICE_EXT} lladdr {mac} dev eth0 nud permanent"),
    );
    let out = lab.exec(
        &c,
        &[
            "ping",
            "-c",
            "2",
            "-i",
            "0.3",
            "-W",
            "1",
            "-I",
            "203.0.113.150",
            SLUICE_EXT,
        ],
    );
    assert!(
        !ok(&out),
        "nobody can deliver these replies: {}",
        show(&out)
    );
    // Three requests one second apart, then the held replies are dropped.
    std::thread::sleep(std::time::Duration::from_millis(3500));
    let r = d.stop();
    assert_eq!(r.get("echo_replies"), 2, "{:?}", r.counters);
    assert_eq!(r.get("neigh.held"), 2, "{:?}", r.counters);
    assert_eq!(r.get("neigh.failed"), 2, "{:?}", r.counters);
    assert_eq!(r.get("drop.neigh_failed"), 2, "a drop like any other");
    assert_eq!(
        r.get("drop.total"),
        r.get("drop.worker") + 2,
        "{:?}",
        r.counters
    );
    assert_eq!(r.get("neigh.requests"), 3, "{:?}", r.counters);
    assert_eq!(r.get("neigh.released"), 0);
}

#[test]
fn two_workers_with_two_queues_per_port() {
    let lab = Lab::new(1);
    // Three lcores on this machine's two CPUs: control on 0, workers 1 and 2.
    let (config, prefix) = unprobed(&lab);
    let config = config
        .replace("\"-l\", \"0-1\"", "\"--lcores=0@0,1@1,2@1\"")
        .replace("iface=ext0\"", "iface=ext0,qpairs=2\"")
        .replace("iface=int0\"", "iface=int0,qpairs=2\"")
        .replace("workers = [1]", "workers = [1, 2]")
        .replace("role = \"external\"", "role = \"external\"\nrx_queues = 2")
        .replace("role = \"internal\"", "role = \"internal\"\nrx_queues = 2");
    assert!(
        config.contains("qpairs=2") && config.contains("workers = [1, 2]"),
        "conf/lab.toml changed shape"
    );
    let d = lab.start_sluiced_with(&config, &prefix);
    assert!(d.log().contains("worker=1"), "{}", d.log());
    let c = lab.client();
    for _ in 0..3 {
        let out = lab.exec(&c, &["ping", "-c", "2", "-i", "0.2", "-W", "2", SLUICE_EXT]);
        assert!(ok(&out), "{}", show(&out));
    }
    let out = lab.exec(
        &lab.backend(0),
        &["ping", "-c", "3", "-i", "0.2", "-W", "2", SLUICE_INT],
    );
    assert!(ok(&out), "{}", show(&out));
    let r = d.stop();
    assert!(r.get("echo_replies") >= 9, "{:?}", r.counters);
    assert!(
        r.counters.contains_key("port.ext.rxq1.packets"),
        "{:?}",
        r.counters
    );
    assert!(
        r.counters.contains_key("port.int.txq1.packets"),
        "{:?}",
        r.counters
    );
}

#[test]
fn every_owned_address_is_announced_at_start() {
    let lab = Lab::new(0);
    // tcpdump on the client's link while sluiced starts: gratuitous ARP
    // (sender = target) and unsolicited neighbour advertisements.
    let cap = lab.dir.join("announce.txt");
    lab.spawn(
        &lab.client(),
        &[
            "sh",
            "-c",
            &format!(
                "timeout 15 tcpdump -l -n -i eth0 'arp or icmp6' > {} 2>/dev/null",
                cap.display()
            ),
        ],
    );
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let d = start(&lab);
    let seen = |what: &str| {
        let end = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let text = std::fs::read_to_string(&cap).unwrap_or_default();
            if text.contains(what) || std::time::Instant::now() > end {
                return text;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    };
    let text = seen(&format!("who-has {FRONTEND} tell {FRONTEND}"));
    let r = d.stop();
    for a in [SLUICE_EXT, FRONTEND] {
        assert!(
            text.contains(&format!("who-has {a} tell {a}")),
            "a gratuitous ARP for {a}:\n{text}"
        );
    }
    assert!(
        text.contains(&format!("tgt is {SLUICE_EXT6}")),
        "an unsolicited NA for {SLUICE_EXT6}:\n{text}"
    );
    assert!(r.get("control.announced") >= 4, "{:?}", r.counters);
}
