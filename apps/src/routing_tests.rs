//! What an instance announces for the example rules, and that the file it
//! writes is a config BIRD itself accepts (`bird -p`).

use super::*;
use sluice_core::config::RoutingDaemon;
use sluice_core::craft;

fn routing() -> Routing {
    Routing {
        daemon: RoutingDaemon::Bird,
        socket: "/run/bird/bird.ctl".into(),
        routes_file: "/tmp/unused".into(),
        internal_routes: vec!["0.0.0.0/0".parse().unwrap()],
        drain_time: Duration::ZERO,
    }
}

fn strings(l: &[IpNet]) -> Vec<String> {
    l.iter().map(ToString::to_string).collect()
}

#[test]
fn frontends_with_an_available_rule_are_announced_on_their_side() {
    let cfg = craft::lb6_config();
    let all_up = Services::compile(&cfg, &|_, _| true, &Default::default()).unwrap();
    let r = Routes::serving(&cfg, &all_up, &routing());
    assert_eq!(strings(&r.ext), ["203.0.113.10/32", "2001:db8:1::10/128"]);
    assert!(r.int.contains(&"10.0.0.100/32".parse().unwrap()), "{r:?}");
    assert!(r.int.contains(&"0.0.0.0/0".parse().unwrap()), "{r:?}");
    // No member healthy: the LB rules are not available, but the
    // frontends' NAT rules still forward (probes do not gate them), so
    // the frontends stay announced.
    let none = Services::compile(&cfg, &|_, _| false, &Default::default()).unwrap();
    assert_eq!(
        Routes::serving(&cfg, &none, &routing()).ext,
        all_up_ext(&cfg)
    );
}

fn all_up_ext(cfg: &sluice_core::config::Config) -> Vec<IpNet> {
    let s = Services::compile(cfg, &|_, _| true, &Default::default()).unwrap();
    Routes::serving(cfg, &s, &routing()).ext
}

#[test]
fn a_frontend_whose_only_rule_has_no_healthy_member_is_withdrawn() {
    let cfg = sluice_core::config::Config::from_toml_str(&lb_only("")).unwrap();
    assert_eq!(strings(&all_up_ext(&cfg)), ["203.0.113.10/32"]);
    let none = Services::compile(&cfg, &|_, _| false, &Default::default()).unwrap();
    let r = Routes::serving(&cfg, &none, &routing());
    assert!(r.ext.is_empty(), "{r:?}");
    // The internal routes stay: the instance is still the pool's way out.
    assert_eq!(strings(&r.int), ["0.0.0.0/0"]);
    // all_down = "all_up" keeps it available.
    let cfg =
        sluice_core::config::Config::from_toml_str(&lb_only("all_down = \"all_up\"")).unwrap();
    let none = Services::compile(&cfg, &|_, _| false, &Default::default()).unwrap();
    assert_eq!(
        strings(&Routes::serving(&cfg, &none, &routing()).ext),
        ["203.0.113.10/32"]
    );
}

/// The example's ports and public frontend, a pool "p" of one member,
/// and `rules`.
fn with_pool(rules: &str) -> String {
    format!(
        "{}\n[[pool]]\nname = \"p\"\nmembers = [{{ address = \"10.0.0.11\", name = \"m\" }}]\n{rules}\n",
        craft::EXAMPLE_CONFIG
    )
}

/// [`with_pool`] with one probed LB rule on the frontend, plus `extra`
/// lines in it.
fn lb_only(extra: &str) -> String {
    with_pool(&format!(
        "[[probe]]\nname = \"tcp\"\nprotocol = \"tcp\"\nport = 80\n\
         [[lb_rule]]\nname = \"http\"\nfrontend = \"web\"\nprotocol = \"tcp\"\n\
         frontend_port = 80\nbackend_port = 80\npool = \"p\"\nprobe = \"tcp\"\n{extra}"
    ))
}

#[test]
fn snat_addresses_are_announced_whatever_the_rules() {
    let cfg = sluice_core::config::Config::from_toml_str(&with_pool(
        "[[outbound_rule]]\nname = \"egress\"\nfrontends = [\"web\"]\npool = \"p\"\n\
         protocol = \"all\"\nports_per_member = 1024",
    ))
    .unwrap();
    let s = Services::compile(&cfg, &|_, _| false, &Default::default()).unwrap();
    let r = Routes::serving(&cfg, &s, &routing());
    assert_eq!(strings(&r.ext), ["203.0.113.10/32"]);
}

#[test]
fn bird_accepts_the_routes_file() {
    if std::process::Command::new("bird")
        .arg("--version")
        .output()
        .is_err()
    {
        panic!("bird (BIRD 2) is missing: scripts/deps.sh installs it");
    }
    let dir = std::env::temp_dir().join(format!("sluice-bird-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let routes = dir.join("routes.conf");
    let r = Routes {
        ext: vec![
            "198.51.100.10/32".parse().unwrap(),
            "2001:db8::10/128".parse().unwrap(),
        ],
        int: vec!["0.0.0.0/0".parse().unwrap()],
    };
    write_bird(&routes, &r).unwrap();
    let text = std::fs::read_to_string(&routes).unwrap();
    assert!(
        text.contains(
            "protocol static sluice_ext4 {\n  ipv4;\n  route 198.51.100.10/32 blackhole;\n}"
        ),
        "{text}"
    );
    assert!(
        text.contains("protocol static sluice_int6 {\n  ipv6;\n}"),
        "{text}"
    );
    let conf = dir.join("bird.conf");
    std::fs::write(
        &conf,
        format!("router id 192.0.2.1;\ninclude \"{}\";\n", routes.display()),
    )
    .unwrap();
    let out = std::process::Command::new("bird")
        .args(["-p", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        out.status.success(),
        "bird -p: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn an_absent_daemon_is_an_error_naming_the_socket() {
    let e = bird_configure(Path::new("/nonexistent/bird.ctl")).unwrap_err();
    assert!(e.contains("/nonexistent/bird.ctl"), "{e}");
}

#[test]
fn a_stop_does_not_wait_on_an_absent_daemon() {
    let dir = std::env::temp_dir().join(format!("sluice-announce-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let r = Routing {
        socket: dir.join("no-bird.ctl"),
        routes_file: dir.join("routes.conf"),
        ..routing()
    };
    let mut a = Announcer::start(&r);
    a.set(Routes {
        ext: vec!["198.51.100.10/32".parse().unwrap()],
        int: Vec::new(),
    });
    std::thread::sleep(Duration::from_millis(200));
    let s = a.state();
    assert!(s.failed >= 1 && s.announced.is_none(), "{s:?}");
    assert!(s.last_error.unwrap().contains("no-bird.ctl"));
    // The file was written all the same: BIRD reads it when it comes.
    let text = std::fs::read_to_string(&r.routes_file).unwrap();
    assert!(text.contains("route 198.51.100.10/32 blackhole;"), "{text}");
    let t = std::time::Instant::now();
    a.withdraw_all();
    assert!(t.elapsed() < Duration::from_secs(3), "{:?}", t.elapsed());
    let text = std::fs::read_to_string(&r.routes_file).unwrap();
    assert!(!text.contains("route "), "withdrawn in the file: {text}");
    let _ = std::fs::remove_dir_all(&dir);
}
