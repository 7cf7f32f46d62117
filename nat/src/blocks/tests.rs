use super::*;
use proptest::prelude::*;
use sluice_core::craft::EXAMPLE_CONFIG;
use std::net::Ipv4Addr;

/// EXAMPLE_CONFIG plus a second public frontend, a pool of `members`
/// (10.0.0.100 + m) and an outbound rule over both frontends.
fn config(members: &[u8], ports: &str, extra: &str) -> Config {
    let list: Vec<String> = members
        .iter()
        .map(|m| format!("  {{ address = \"10.0.0.{}\" }},", 100 + u16::from(*m)))
        .collect();
    let text = format!(
        "{EXAMPLE_CONFIG}\n[[frontend]]\nname = \"web2\"\naddress = \"203.0.113.11\"\n\
         kind = \"public\"\n[[pool]]\nname = \"p\"\nmembers = [\n{}\n]\n\
         [[outbound_rule]]\nname = \"egress\"\nfrontends = [\"web\", \"web2\"]\npool = \"p\"\n\
         protocol = \"all\"\nports_per_member = {ports}\n{extra}",
        list.join("\n")
    );
    Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

fn ip(m: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 0, 0, 100 + m))
}

const WEB: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10));
const WEB2: IpAddr = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 11));

fn one(cfg: &Config, prev: &BTreeMap<String, Assignment>) -> RulePlan {
    let mut p = plan(cfg, prev).unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(p.len(), 1);
    p.remove(0)
}

#[test]
fn auto_follows_the_pool_size_table() {
    for (n, want) in [
        (1, 1024),
        (50, 1024),
        (51, 512),
        (100, 512),
        (101, 256),
        (200, 256),
        (201, 128),
        (400, 128),
        (401, 64),
        (800, 64),
        (801, 32),
        (1000, 32),
    ] {
        assert_eq!(auto_ports(n), want, "{n} members");
    }
    let p = one(&config(&[1, 2, 3], "\"auto\"", ""), &BTreeMap::new());
    assert_eq!(p.ports_per_member, 1024);
}

#[test]
fn members_get_aligned_contiguous_blocks_on_every_address_in_order() {
    let p = one(&config(&[1, 2], "1000", ""), &BTreeMap::new());
    let run = |address, start| Run {
        address,
        start,
        len: 1000,
    };
    assert_eq!(p.members[&ip(1)], [run(WEB, 1024), run(WEB2, 1024)]);
    assert_eq!(p.members[&ip(2)], [run(WEB, 2024), run(WEB2, 2024)]);
}

#[test]
fn each_address_must_hold_every_members_ports() {
    // 64,000 ports per address: 2 x 32,000 fill each; a third does not fit.
    let p = one(&config(&[1, 2], "32000", ""), &BTreeMap::new());
    for m in [1, 2] {
        let on: Vec<IpAddr> = p.members[&ip(m)].iter().map(|r| r.address).collect();
        assert_eq!(on, [WEB, WEB2]);
    }
    let e = plan(&config(&[1, 2, 3], "32000", ""), &BTreeMap::new()).unwrap_err();
    assert_eq!(e.len(), 2, "one error per address: {e:?}");
}

#[test]
fn a_budget_that_does_not_fit_is_rejected_with_the_numbers() {
    let e = plan(&config(&[1, 2, 3, 4, 5], "32000", ""), &BTreeMap::new()).unwrap_err();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].object, "outbound_rule \"egress\"");
    assert_eq!(e[0].field, "ports_per_member");
    assert!(
        e[0].reason.contains("5 members x 32000 ports = 160000")
            && e[0]
                .reason
                .contains("64000 free ports of frontend address 203.0.113.10"),
        "{}",
        e[0].reason
    );
}

#[test]
fn rule_ports_reserve_their_aligned_block() {
    // A NAT rule on 1029 takes block 1024..1031 of "web".
    let extra = "[[nat_rule]]\nname = \"n\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
                 frontend_port = 1029\nmember = \"10.0.0.101\"\nbackend_port = 22\n";
    let p = one(&config(&[1], "16", extra), &BTreeMap::new());
    assert_eq!(
        p.members[&ip(1)],
        [
            Run {
                address: WEB,
                start: 1032,
                len: 16
            },
            Run {
                address: WEB2,
                start: 1024,
                len: 16
            }
        ]
    );
    // The reserved block counts against its address only.
    let e = plan(&config(&[1], "64000", extra), &BTreeMap::new()).unwrap_err();
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].reason.contains("63992 free ports"), "{}", e[0].reason);
}

#[test]
fn an_lb_rule_on_an_snat_address_must_disable_outbound_snat() {
    let rule = |disable: bool| {
        format!(
            "[[lb_rule]]\nname = \"http\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
             frontend_port = 80\nbackend_port = 80\npool = \"p\"\n\
             disable_outbound_snat = {disable}\n"
        )
    };
    let e = plan(&config(&[1], "8", &rule(false)), &BTreeMap::new()).unwrap_err();
    assert_eq!(
        (e[0].object.as_str(), e[0].field.as_str()),
        ("lb_rule \"http\"", "disable_outbound_snat")
    );
    assert!(plan(&config(&[1], "8", &rule(true)), &BTreeMap::new()).is_ok());
}

#[test]
fn members_keep_their_blocks_and_newcomers_take_freed_ones() {
    let first = one(&config(&[1, 2, 3], "64", ""), &BTreeMap::new());
    let prev = BTreeMap::from([("egress".to_string(), first.members.clone())]);
    // 2 leaves, 4 joins: 1 and 3 keep theirs, 4 takes 2's.
    let second = one(&config(&[1, 3, 4], "64", ""), &prev);
    assert_eq!(second.members[&ip(1)], first.members[&ip(1)]);
    assert_eq!(second.members[&ip(3)], first.members[&ip(3)]);
    assert_eq!(second.members[&ip(4)], first.members[&ip(2)]);
    assert!(!second.members.contains_key(&ip(2)));
    // A changed size reassigns.
    let third = one(&config(&[1, 3, 4], "128", ""), &prev);
    assert_eq!(third.members[&ip(1)][0].len, 128);
}

#[test]
fn store_and_load_round_trip() {
    let dir = std::env::temp_dir().join(format!("sluice-snat-{}", std::process::id()));
    let p = one(&config(&[1, 2], "32000", ""), &BTreeMap::new());
    store(&dir, "egress", &p.members).unwrap();
    let (back, bad) = load(&dir, "egress");
    assert!(bad.is_empty(), "{bad:?}");
    assert_eq!(back, p.members);
    std::fs::write(path(&dir, "x"), "10.0.0.101 203.0.113.10 1024\n").unwrap();
    assert_eq!(load(&dir, "x").1.len(), 1, "a short line is reported");
    std::fs::remove_dir_all(&dir).unwrap();
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random pool changes: members never overlap each other or a reserved
    /// block, each holds exactly its ports in aligned runs, and members that
    /// stay keep theirs.
    #[test]
    fn pool_changes_keep_blocks_disjoint_and_stable(
        steps in prop::collection::vec(prop::collection::btree_set(1u8..40, 1..30), 1..6),
        ports in prop::sample::select(vec![8u32, 64, 1000, 2048]),
    ) {
        let extra = "[[nat_rule]]\nname = \"n\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
                     frontend_port = 2050\nmember = \"10.0.0.101\"\nbackend_port = 22\n";
        let mut prev: BTreeMap<String, Assignment> = BTreeMap::new();
        for set in steps {
            let mut members: Vec<u8> = set.into_iter().collect();
            if !members.contains(&1) {
                members.push(1); // the NAT rule's member
            }
            let p = one(&config(&members, &ports.to_string(), extra), &prev);
            let mut seen: Vec<(IpAddr, u16)> = Vec::new();
            for (m, runs) in &p.members {
                for a in [WEB, WEB2] {
                    let on: u32 = runs.iter().filter(|r| r.address == a).map(|r| u32::from(r.len)).sum();
                    prop_assert_eq!(on, ports, "on {}", a);
                }
                for r in runs {
                    prop_assert_eq!(r.start % BLOCK, 0);
                    prop_assert_eq!(r.len % BLOCK, 0);
                    prop_assert!(r.start >= FIRST_PORT);
                    prop_assert!(!(r.address == WEB && r.contains(WEB, 2048)), "reserved block");
                    for port in (r.start..).take(usize::from(r.len)) {
                        seen.push((r.address, port));
                    }
                }
                if let Some(old) = prev.get("egress").and_then(|a| a.get(m)) {
                    prop_assert_eq!(old, runs, "member {} moved", m);
                }
            }
            let n = seen.len();
            seen.sort();
            seen.dedup();
            prop_assert_eq!(seen.len(), n, "two members share a port");
            prev.insert("egress".into(), p.members);
        }
    }
}

#[test]
fn every_conf_file_plans() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../conf");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let cfg = Config::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if let Err(e) = plan(&cfg, &BTreeMap::new()) {
                panic!("{}: {e:?}", path.display());
            }
        }
    }
}

#[test]
fn each_family_takes_blocks_on_its_own_frontends() {
    let text = format!(
        "{EXAMPLE_CONFIG}\n[[frontend]]\nname = \"web6\"\naddress = \"2001:db8:1::10\"\n\
         kind = \"public\"\n[[pool]]\nname = \"p\"\nmembers = [\n\
         {{ addresses = [\"10.0.0.101\", \"2001:db8:2::101\"] }},\n\
         {{ address = \"2001:db8:2::102\" }},\n{{ address = \"10.0.0.103\" }},\n]\n\
         [[outbound_rule]]\nname = \"egress\"\nfrontends = [\"web\", \"web6\"]\npool = \"p\"\n\
         protocol = \"all\"\nports_per_member = 1000\n"
    );
    let cfg = Config::from_toml_str(&text).unwrap_or_else(|e| panic!("{e}"));
    let p = one(&cfg, &BTreeMap::new());
    let web6: IpAddr = "2001:db8:1::10".parse().unwrap();
    let a = |s: &str| s.parse::<IpAddr>().unwrap();
    assert_eq!(p.members.len(), 4, "{:?}", p.members);
    for (m, public) in [
        ("10.0.0.101", WEB),
        ("2001:db8:2::101", web6),
        ("2001:db8:2::102", web6),
        ("10.0.0.103", WEB),
    ] {
        let runs = &p.members[&a(m)];
        assert!(runs.iter().all(|r| r.address == public), "{m}: {runs:?}");
        assert_eq!(runs.iter().map(|r| u32::from(r.len)).sum::<u32>(), 1000);
    }
    // Same blocks after a restart (the assignment read back).
    let dir = std::env::temp_dir().join(format!("sluice-nat6-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    store(&dir, "egress", &p.members).unwrap();
    let (back, bad) = load(&dir, "egress");
    assert!(bad.is_empty(), "{bad:?}");
    let again = one(&cfg, &BTreeMap::from([("egress".to_string(), back)]));
    assert_eq!(again.members, p.members);
    std::fs::remove_dir_all(&dir).unwrap();
    // IPv6 members alone with only an IPv4 frontend: no family to serve.
    let only6 = text
        .replace("frontends = [\"web\", \"web6\"]", "frontends = [\"web\"]")
        .replace("{ addresses = [\"10.0.0.101\", \"2001:db8:2::101\"] },", "")
        .replace("{ address = \"10.0.0.103\" },", "");
    let cfg = Config::from_toml_str(&only6).unwrap();
    let e = plan(&cfg, &BTreeMap::new()).unwrap_err();
    assert_eq!(
        (e[0].object.as_str(), e[0].field.as_str()),
        ("outbound_rule \"egress\"", "pool")
    );
}
