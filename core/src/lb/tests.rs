use super::*;
use crate::config::Direction;
use crate::craft::lb_config;

fn ip(s: &str) -> Ipv4Addr {
    s.parse().unwrap()
}

fn compile() -> Services {
    Services::compile(&lb_config(), &|_, _| true, &BTreeMap::new()).unwrap()
}

fn key(src: &str, sport: u16, dst: &str, dport: u16, proto: u8) -> FlowKey {
    FlowKey {
        src: ip(src),
        dst: ip(dst),
        sport,
        dport,
        proto,
    }
}

#[test]
fn exact_ports_then_ha_ports() {
    let s = compile();
    let fe = ip("203.0.113.10");
    assert_eq!(
        s.lookup(fe.into(), IpProtocol::Tcp, 80).unwrap().1.name,
        "http"
    );
    assert_eq!(
        s.lookup(fe.into(), IpProtocol::Udp, 53).unwrap().1.name,
        "dns"
    );
    assert!(s.lookup(fe.into(), IpProtocol::Udp, 80).is_none());
    assert!(s.lookup(fe.into(), IpProtocol::Tcp, 81).is_none());
    assert_eq!(
        s.lookup(fe.into(), IpProtocol::Tcp, 50001).unwrap().1.name,
        "ssh-b2"
    );
    let ilb = ip("10.0.0.100");
    for (p, port) in [
        (IpProtocol::Tcp, 1),
        (IpProtocol::Udp, 65535),
        (IpProtocol::Unknown(47), 0),
    ] {
        assert_eq!(s.lookup(ilb.into(), p, port).unwrap().1.name, "ha");
    }
}

#[test]
fn admin_down_members_get_no_new_flows() {
    let s = compile();
    let (_, http) = s
        .lookup(ip("203.0.113.10").into(), IpProtocol::Tcp, 80)
        .unwrap();
    let mut seen = [0; 3];
    for p in 0..3000u16 {
        let (m, a) = http
            .pick(&key("198.51.100.7", 1024 + p, "203.0.113.10", 80, 6))
            .unwrap();
        assert_eq!(a, http.members[usize::from(m)]);
        seen[usize::from(m)] += 1;
    }
    assert_eq!(seen[2], 0, "b3 is admin down");
    assert!(seen[0] > 1000 && seen[1] > 1000, "{seen:?}");
}

#[test]
fn distributions_hash_the_tuple_they_name() {
    let mut cfg = lb_config();
    cfg.lb_rules[0].distribution = Distribution::SourceIp;
    let s = Services::compile(&cfg, &|_, _| true, &BTreeMap::new()).unwrap();
    let (_, http) = s
        .lookup(ip("203.0.113.10").into(), IpProtocol::Tcp, 80)
        .unwrap();
    let first = http.pick(&key("198.51.100.7", 1024, "203.0.113.10", 80, 6));
    for p in 0..200 {
        assert_eq!(
            http.pick(&key("198.51.100.7", 2000 + p, "203.0.113.10", 80, 6)),
            first
        );
    }
    let a = flow_hash(
        &key("1.2.3.4", 5, "6.7.8.9", 80, 6),
        Distribution::SourceIpProtocol,
    );
    let b = flow_hash(
        &key("1.2.3.4", 9, "6.7.8.9", 81, 6),
        Distribution::SourceIpProtocol,
    );
    let c = flow_hash(
        &key("1.2.3.4", 9, "6.7.8.9", 81, 17),
        Distribution::SourceIpProtocol,
    );
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn security_first_match_wins_and_public_defaults_to_deny() {
    let s = compile();
    let (c, fe) = (ip("198.51.100.7"), ip("203.0.113.10"));
    let d = Direction::Inbound;
    assert!(s.security.allows(d, c, fe, 6, 80, false));
    assert!(!s.security.allows(d, c, fe, 6, 81, false), "default deny");
    assert!(s.security.allows(d, c, fe, 17, 53, false));
    assert!(!s.security.allows(Direction::Outbound, c, fe, 6, 80, false));
    assert!(
        s.security.allows(d, c, ip("10.0.0.100"), 6, 81, true),
        "default applies"
    );
}

#[test]
fn nat_pool_rules_get_one_service_per_member_and_keep_ports() {
    let mut text = format!(
        "{}{}",
        crate::craft::EXAMPLE_CONFIG,
        crate::craft::LB_CONFIG
    );
    text.push_str(
        "[[nat_pool_rule]]\nname = \"ssh-pool\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
         frontend_port_start = 50010\nmax_members = 3\nbackend_port = 22\npool = \"web-pool\"\n",
    );
    let cfg = Config::from_toml_str(&text).unwrap();
    let s = Services::compile(&cfg, &|_, _| true, &BTreeMap::new()).unwrap();
    let map = &s.nat_maps["ssh-pool"];
    assert_eq!(map.len(), 3);
    for (a, &port) in map {
        let (_, svc) = s
            .lookup(ip("203.0.113.10").into(), IpProtocol::Tcp, port)
            .unwrap();
        assert_eq!(svc.members[0], *a);
        assert_eq!(svc.backend_port, 22);
    }
    // Same maps in, same ports out; a fourth member does not fit.
    let again = Services::compile(&cfg, &|_, _| true, &s.nat_maps).unwrap();
    assert_eq!(again.nat_maps, s.nat_maps);
    let mut more = cfg.clone();
    more.pools[0].members.push(crate::config::Member {
        address: "10.0.0.14".parse().unwrap(),
        addresses: vec!["10.0.0.14".parse().unwrap()],
        name: None,
        admin_state: AdminState::Up,
    });
    let errs = Services::compile(&more, &|_, _| true, &s.nat_maps).unwrap_err();
    assert_eq!(errs[0].field, "max_members");
}

#[test]
fn a_reload_carries_unchanged_rules_and_remaining_members_only() {
    let old = compile();
    let id = |s: &Services, name: &str| {
        snat::RuleRef::Service(s.services.iter().position(|x| x.name == name).unwrap() as u16)
    };
    // b1 leaves; a rule is added in front (every id shifts); "dns" changes
    // its backend port.
    let text = format!(
        "{}{}",
        crate::craft::EXAMPLE_CONFIG,
        crate::craft::LB_CONFIG
    )
    .replace("  { address = \"10.0.0.11\", name = \"b1\" },\n", "")
    .replace(
        "[[lb_rule]]\nname = \"http\"",
        "[[lb_rule]]\nname = \"alt\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
             frontend_port = 81\nbackend_port = 8081\npool = \"web-pool\"\n\
             [[lb_rule]]\nname = \"http\"",
    )
    .replace(
        "frontend_port = 53\nbackend_port = 53",
        "frontend_port = 53\nbackend_port = 5353",
    );
    let cfg = crate::config::Config::from_toml_str(&text).unwrap();
    let new = Services::compile(&cfg, &|_, _| true, &BTreeMap::new()).unwrap();
    let carry = Carry::between(&old, &new);
    let (http_old, http_new) = (id(&old, "http"), id(&new, "http"));
    assert_ne!(http_old, http_new, "ids shifted");
    // Old members: b1 (0), b2 (1), b3 (2); new: b2 (0), b3 (1).
    assert_eq!(carry.get(http_old, 0), None, "b1's flows end");
    assert_eq!(carry.get(http_old, 1), Some((http_new, 0)));
    assert_eq!(carry.get(http_old, 2), Some((http_new, 1)));
    assert_eq!(carry.get(id(&old, "dns"), 1), None, "a changed rule ends");
    let nat = id(&old, "ssh-b2");
    assert_eq!(carry.get(nat, 0), Some((id(&new, "ssh-b2"), 0)));
    assert_eq!(carry.get(snat::RuleRef::Service(999), 0), None);
}

/// lb_config with a probe on the "http" rule; `down` are the addresses it
/// says are down.
fn compile_with_health(down: &[&str], all_down: AllDown) -> Services {
    let mut cfg = lb_config();
    cfg.probes.push(crate::config::Probe {
        name: "pr".into(),
        protocol: crate::config::ProbeProtocol::Tcp,
        port: 8080,
        path: None,
        interval: Duration::from_secs(1),
        timeout: Duration::from_secs(1),
        threshold: 1,
        expected_status: vec![(200, 200)],
        host: None,
        sni: None,
    });
    cfg.lb_rules[0].probe = Some(0);
    cfg.lb_rules[0].all_down = all_down;
    let down: Vec<IpAddr> = down.iter().map(|a| a.parse().unwrap()).collect();
    let eligible = |p: usize, a: IpAddr| {
        assert_eq!(p, 0);
        !down.contains(&a)
    };
    Services::compile(&cfg, &eligible, &BTreeMap::new()).unwrap()
}

#[test]
fn a_member_its_probe_says_is_down_gets_no_new_flows_of_that_rule_only() {
    let s = compile_with_health(&["10.0.0.11"], AllDown::NoNewFlows);
    let (hid, http) = s
        .lookup(ip("203.0.113.10").into(), IpProtocol::Tcp, 80)
        .unwrap();
    assert_eq!(
        http.eligible,
        [false, true, false],
        "b1 down, b3 admin down"
    );
    for p in 0..500u16 {
        let (m, _) = http
            .pick(&key("198.51.100.7", 1024 + p, "203.0.113.10", 80, 6))
            .unwrap();
        assert_eq!(m, 1);
    }
    // The UDP rule has no probe: b1 still takes its flows.
    let (_, dns) = s
        .lookup(ip("203.0.113.10").into(), IpProtocol::Udp, 53)
        .unwrap();
    assert_eq!(dns.eligible, [true, true, false]);
    // Ids are those of a snapshot compiled with every member up.
    let (hid_up, _) = compile()
        .lookup(ip("203.0.113.10").into(), IpProtocol::Tcp, 80)
        .unwrap();
    assert_eq!(hid, hid_up);
}

#[test]
fn every_member_down_admits_no_new_flows_or_uses_all_with_all_up() {
    let s = compile_with_health(&["10.0.0.11", "10.0.0.12"], AllDown::NoNewFlows);
    let (_, http) = s
        .lookup(ip("203.0.113.10").into(), IpProtocol::Tcp, 80)
        .unwrap();
    assert!(http.maglev.is_none());
    assert!(http
        .pick(&key("198.51.100.7", 1, "203.0.113.10", 80, 6))
        .is_none());
    let s = compile_with_health(&["10.0.0.11", "10.0.0.12"], AllDown::AllUp);
    let (_, http) = s
        .lookup(ip("203.0.113.10").into(), IpProtocol::Tcp, 80)
        .unwrap();
    assert_eq!(
        http.eligible,
        [true, true, true],
        "all_up uses every member"
    );
    let mut seen = [0; 3];
    for p in 0..3000u16 {
        let (m, _) = http
            .pick(&key("198.51.100.7", 1024 + p, "203.0.113.10", 80, 6))
            .unwrap();
        seen[usize::from(m)] += 1;
    }
    assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
}

#[test]
fn an_ipv6_rule_needs_a_pool_member_of_its_family() {
    let text = format!(
        "{}{}[[frontend]]\nname = \"v6\"\naddress = \"2001:db8:1::20\"\nkind = \"public\"\n\
         [[lb_rule]]\nname = \"six\"\nfrontend = \"v6\"\nprotocol = \"tcp\"\n\
         frontend_port = 80\nbackend_port = 80\npool = \"web-pool\"\n",
        crate::craft::EXAMPLE_CONFIG,
        crate::craft::LB_CONFIG
    );
    let cfg = Config::from_toml_str(&text).unwrap();
    let errs = Services::compile(&cfg, &|_, _| true, &BTreeMap::new()).unwrap_err();
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert_eq!(
        (errs[0].object.as_str(), errs[0].field.as_str()),
        ("lb_rule \"six\"", "pool")
    );
    assert!(errs[0].reason.contains("IPv6"), "{}", errs[0].reason);
}

#[test]
fn a_dual_stack_member_is_one_member_for_both_families() {
    let cfg = crate::craft::lb6_config();
    let s = Services::compile(&cfg, &|_, _| true, &BTreeMap::new()).unwrap();
    let six = |s: &Services| {
        s.lookup("2001:db8:1::10".parse().unwrap(), IpProtocol::Tcp, 80)
            .unwrap()
            .1
            .clone()
    };
    let http6 = six(&s);
    let d1: IpAddr = "2001:db8:2::21".parse().unwrap();
    assert_eq!(http6.members[0], d1, "d1 by its IPv6 address");
    assert_eq!(
        http6.eligible,
        [true, true, false],
        "d3 has no IPv6 address"
    );
    // d1 drained (admin down, as sluicectl drain publishes it): no new flows
    // of either family; the v4 pool of the same member index says so too.
    let mut drained = cfg.clone();
    let p = drained
        .pools
        .iter()
        .position(|p| p.name == "pool6")
        .unwrap();
    drained.pools[p].members[0].admin_state = AdminState::Down;
    let s = Services::compile(&drained, &|_, _| true, &BTreeMap::new()).unwrap();
    assert_eq!(six(&s).eligible, [false, true, false]);
    for sport in 0..500u16 {
        let k = FlowKey {
            src: "2001:db8:99::7".parse::<Ipv6Addr>().unwrap(),
            dst: "2001:db8:1::10".parse().unwrap(),
            sport,
            dport: 80,
            proto: 6,
        };
        assert_eq!(six(&s).pick(&k).unwrap().0, 1, "only d2");
    }
}

/// `rules` load-balancing rules (ports 1..) over one pool of `members`.
fn many(rules: u16, members: u16) -> Services {
    let mut text = crate::craft::EXAMPLE_CONFIG.to_string();
    text.push_str("[[pool]]\nname = \"big\"\nmembers = [\n");
    for m in 0..members {
        text.push_str(&format!("  {{ address = \"10.0.0.{}\" }},\n", 20 + m));
    }
    text.push_str("]\n");
    for r in 1..=rules {
        text.push_str(&format!(
            "[[lb_rule]]\nname = \"r{r}\"\nfrontend = \"web\"\nprotocol = \"tcp\"\nfrontend_port = {r}\nbackend_port = 80\npool = \"big\"\n"
        ));
    }
    let cfg = crate::config::Config::from_toml_str(&text).unwrap();
    Services::compile(&cfg, &|_, _| true, &BTreeMap::new()).unwrap()
}

#[test]
fn each_member_of_each_rule_has_its_own_traffic_slot_until_they_do_not_fit() {
    let s = many(4, 200);
    assert!(s.per_member_traffic());
    let mut seen = std::collections::HashSet::new();
    for id in 0..4u16 {
        for m in 0..200u16 {
            let slot = s.traffic_slot(id, m);
            assert!(slot < snat::RULE_BASE, "below the SNAT members' ids");
            assert!(seen.insert(slot), "rule {id} member {m}: slot {slot} twice");
        }
    }
    // An SNAT member's id is its slot.
    assert_eq!(s.traffic_slot(snat::RULE_BASE + 3, 0), snat::RULE_BASE + 3);
    // 170 rules x 200 members do not fit 32,768 slots: per rule only.
    let s = many(170, 200);
    assert!(!s.per_member_traffic());
    assert_eq!(s.traffic_slot(7, 0), 7);
    assert_eq!(s.traffic_slot(7, 199), 7, "every member in the rule's slot");
}
