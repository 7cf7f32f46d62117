//! Health probes of a backend that serves by name, as operators' web
//! servers do: nginx with a default site that answers 404 and refuses TLS
//! without a known server name, and a named site whose `/health` redirects
//! (302). A probe by address fails; with `host` and `sni` it reaches the
//! site, and passes only when `expected_status` admits the 302.

use sluice_tests::lab::Lab;
use sluice_tests::nginx::Nginx;
use std::time::{Duration, Instant};

fn wait_log(d: &sluice_tests::daemon::Daemon, text: &str, after: usize) {
    let end = Instant::now() + Duration::from_secs(8);
    while Instant::now() < end {
        if d.log().matches(text).count() > after {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no {text:?} (after {after}) in\n{}", d.log());
}

#[test]
fn host_sni_and_expected_status_reach_a_named_site() {
    let lab = Lab::new(1);
    let (cert, key) = sluice_tests::nginx::self_signed(&lab, "probe.example");
    let nginx = Nginx::new(&lab, 0);
    nginx.configure_named("probe.example", &(cert, key));
    nginx.start(&lab);
    assert!(lab.wait_until(&lab.backend(0), "ss -ltn | grep -q ':443 '", 10));

    let probe = |extra: &str| {
        format!("[[probe]]\nname = \"site\"\nprotocol = \"https\"\nport = 443\npath = \"/health\"\ninterval = \"1s\"\ntimeout = \"500ms\"\n{extra}")
    };
    let config = |extra: &str| {
        let (text, prefix) = lab.config(&probe(extra));
        let text = text
            .replace("probe = \"http-health\"", "probe = \"site\"")
            .replace("  { address = \"10.0.0.12\", name = \"b2\" },\n", "")
            .replace("  { address = \"10.0.0.13\", name = \"b3\" },\n", "");
        (text, prefix)
    };

    // By address: no SNI, the default site refuses the handshake.
    let (text, prefix) = config("");
    let d = lab.start_sluiced_with(&text, &prefix);
    wait_log(&d, "member 10.0.0.11 down: probe site: refused", 0);

    // The site's name as Host and SNI, and its 302 admitted: up.
    let (text, _) = config("host = \"probe.example\"\nexpected_status = \"200-399\"\n");
    assert!(d.reload(&text), "{}", d.log());
    wait_log(&d, "member 10.0.0.11 up: probe site: answered", 0);

    // The same site, but only 200 passes: the redirect is a refusal.
    let (text, _) = config("host = \"probe.example\"\n");
    assert!(d.reload(&text), "{}", d.log());
    wait_log(&d, "member 10.0.0.11 down: probe site: HTTP status 302", 0);

    // sni alone names the site for TLS, but the Host header stays the
    // address, and nginx picks the site of a request by its Host: the
    // default site's 404, and the member stays down.
    let (text, _) = config("sni = \"probe.example\"\nexpected_status = \"200-399\"\n");
    assert!(d.reload(&text), "{}", d.log());
    let end = Instant::now() + Duration::from_secs(8);
    loop {
        let h = lab.ctl_json(&["health"]);
        let m = h["members"]
            .as_array()
            .and_then(|a| a.first())
            .cloned()
            .unwrap_or_default();
        if m["last"] == "status 404" {
            assert_eq!(m["state"], "down", "{m}");
            break;
        }
        assert!(Instant::now() < end, "no 404 seen: {h}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
