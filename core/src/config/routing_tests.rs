//! `[routing]`, `[[port]] kernel` and `[[lb_rule]] pickup`: valid values,
//! defaults, and each mistake with its object and field.

use super::tests::MINIMAL;
use super::*;
use std::time::Duration;

fn load(extra: &str) -> Result<Config, ConfigErrors> {
    Config::from_toml_str(&format!("{MINIMAL}\n{extra}"))
}

fn refused(extra: &str) -> Vec<(String, String)> {
    load(extra)
        .expect_err("should be refused")
        .0
        .into_iter()
        .map(|e| (e.object, e.field))
        .collect()
}

const ROUTING: &str = r#"
[routing]
daemon = "bird"
socket = "/run/bird/bird.ctl"
routes_file = "/run/sluice/bird-routes.conf"
"#;

#[test]
fn a_routing_section_loads_with_its_defaults() {
    let c = load(&format!(
        "{ROUTING}internal_routes = [\"0.0.0.0/0\", \"::/0\"]\n"
    ))
    .unwrap();
    let r = c.routing.unwrap();
    assert_eq!(r.daemon, RoutingDaemon::Bird);
    assert_eq!(r.drain_time, Duration::from_secs(30));
    assert_eq!(r.internal_routes.len(), 2);
    assert!(load("").unwrap().routing.is_none());
}

#[test]
fn each_routing_mistake_names_its_field() {
    let obj = "[routing]".to_string();
    for (text, field) in [
        ("daemon = \"quagga\"", "daemon"),
        ("socket = \"bird.ctl\"", "socket"),
        ("routes_file = \"routes.conf\"", "routes_file"),
        ("internal_routes = [\"10.0.0.1/8\"]", "internal_routes[0]"),
        ("internal_routes = [\"default\"]", "internal_routes[0]"),
        ("drain_time = \"2h\"", "drain_time"),
    ] {
        let key = text.split(' ').next().unwrap();
        let rest: String = ROUTING
            .lines()
            .filter(|l| !l.starts_with(key))
            .map(|l| format!("{l}\n"))
            .collect();
        let errs = refused(&format!("{rest}{text}\n"));
        assert!(
            errs.contains(&(obj.clone(), field.into())),
            "{text}: {errs:?}"
        );
    }
    let errs = refused("[routing]\n");
    for f in ["daemon", "socket", "routes_file"] {
        assert!(errs.contains(&(obj.clone(), f.into())), "{errs:?}");
    }
}

#[test]
fn kernel_interface_names_are_checked() {
    let port = |kernel: &str| {
        MINIMAL.replacen(
            "addresses = [\"203.0.113.1/24\"]",
            &format!("addresses = [\"203.0.113.1/24\"]\nkernel = \"{kernel}\""),
            1,
        )
    };
    let c = Config::from_toml_str(&port("sl-ext0")).unwrap();
    assert_eq!(c.ports[0].kernel.as_deref(), Some("sl-ext0"));
    assert_eq!(c.ports[1].kernel, None);
    for bad in ["", "an-interface-name-too-long", "eth 0", "a/b"] {
        let e = Config::from_toml_str(&port(bad)).expect_err(bad).0;
        assert!(
            e.iter()
                .any(|e| e.object == "port \"ext\"" && e.field == "kernel"),
            "{bad:?}: {e:?}"
        );
    }
    let both = port("k0").replacen(
        "addresses = [\"10.0.0.1/24\"]",
        "addresses = [\"10.0.0.1/24\"]\nkernel = \"k0\"",
        1,
    );
    let e = Config::from_toml_str(&both).expect_err("twice").0;
    assert!(e.iter().any(|e| e.field == "kernel"), "{e:?}");
}

#[test]
fn pickup_is_on_in_a_cluster_and_off_alone_unless_set() {
    let rule = |pickup: &str| {
        format!(
            "[[frontend]]\nname = \"web\"\naddress = \"203.0.113.10\"\nkind = \"public\"\n\
             [[pool]]\nname = \"p\"\nmembers = [{{ address = \"10.0.0.11\", name = \"m\" }}]\n\
             [[lb_rule]]\nname = \"http\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
             frontend_port = 80\nbackend_port = 80\npool = \"p\"\n{pickup}\n"
        )
    };
    let key = std::env::temp_dir().join("sluice-test-key-pickup");
    std::fs::write(&key, "a shared secret of some length\n").unwrap();
    let cluster = format!(
        "[cluster]\ninstance = 0\ninstances = 2\npeers = [\"10.0.0.2\"]\nsecret_file = \"{}\"\n",
        key.display()
    );
    assert!(!load(&rule("")).unwrap().lb_rules[0].pickup);
    assert!(load(&rule("pickup = true")).unwrap().lb_rules[0].pickup);
    let c = load(&format!("{}{cluster}", rule(""))).unwrap();
    assert!(c.lb_rules[0].pickup);
    let c = load(&format!("{}{cluster}", rule("pickup = false"))).unwrap();
    assert!(!c.lb_rules[0].pickup);
}
