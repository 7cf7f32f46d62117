//! The exception path with real programs: a port with `kernel = "kext"`
//! gets a kernel interface holding the port's addresses. A client reaches
//! a listener in that kernel over IPv4 and IPv6, the kernel reaches the
//! client, the data plane still answers pings itself, and the interface is
//! gone once sluiced is killed.

use sluice_tests::instances::{kernel_off_data_ports, sh};
use sluice_tests::lab::{Lab, CLIENT};
use std::time::Duration;

#[test]
fn the_kernel_reaches_and_is_reached_on_the_port_addresses() {
    let lab = Lab::new(1);
    let (lb, c) = (lab.lb(), lab.client());
    kernel_off_data_ports(&lab, &lb, true);
    let (text, prefix) = lab.config("");
    let ports = "addresses = [\"203.0.113.1/24\", \"2001:db8:1::1/64\"]";
    assert!(
        text.contains(ports),
        "conf/lab.toml's ext port changed shape"
    );
    let text = text.replacen(ports, &format!("{ports}\nkernel = \"kext\""), 1);
    let d = lab.start_sluiced_with(&text, &prefix);
    let show = lab.exec(&lb, &["ip", "addr", "show", "kext"]);
    let show = String::from_utf8_lossy(&show.stdout).into_owned();
    assert!(
        show.contains("203.0.113.1/24") && show.contains("2001:db8:1::1/64"),
        "{show}"
    );

    // In: a listener of the kernel's on the port addresses (SSH, BGP...).
    lab.spawn(
        &lb,
        &[
            "socat",
            "TCP6-LISTEN:2222,fork,reuseaddr",
            "SYSTEM:echo from-the-kernel",
        ],
    );
    assert!(lab.wait_until(&lb, "ss -ltn | grep -q ':2222 '", 10));
    for to in ["TCP:203.0.113.1:2222", "TCP6:[2001:db8:1::1]:2222"] {
        let out = lab.exec(&c, &["timeout", "10", "socat", "-T", "5", "-", to]);
        let got = String::from_utf8_lossy(&out.stdout);
        assert_eq!(got.trim(), "from-the-kernel", "{to}: {out:?}");
    }
    // Out: the kernel's own connection to a host on the segment.
    lab.spawn(
        &c,
        &[
            "socat",
            "TCP-LISTEN:3333,fork,reuseaddr",
            "SYSTEM:echo from-the-client",
        ],
    );
    assert!(lab.wait_until(&c, "ss -ltn | grep -q ':3333 '", 10));
    let out = lab.exec(
        &lb,
        &[
            "timeout",
            "10",
            "socat",
            "-T",
            "5",
            "-",
            &format!("TCP:{CLIENT}:3333"),
        ],
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "from-the-client",
        "{out:?}"
    );
    // A ping of the port address is still the data plane's.
    let before = lab.ctl_json(&["counters"]);
    sh(&lab, &c, "ping -c 3 -i 0.2 -W 2 203.0.113.1 >/dev/null");
    let after = lab.ctl_json(&["counters"]);
    let n = |v: &serde_json::Value, k: &str| v[k].as_u64().unwrap_or(0);
    assert!(
        n(&after, "echo_replies") >= n(&before, "echo_replies") + 3,
        "{after}"
    );
    assert!(
        n(&after, "to_kernel") > 0 && n(&after, "kernel.from_kernel") > 0,
        "{after}"
    );
    assert!(
        n(&after, "kernel_copies") > 0,
        "the kernel learned its neighbours: {after}"
    );
    assert_eq!(n(&after, "drop.kernel_ring_full"), 0, "{after}");

    // The interface lives only as long as sluiced.
    let _ = d.kill9();
    std::thread::sleep(Duration::from_millis(300));
    let gone = lab.exec(&lb, &["ip", "link", "show", "kext"]);
    assert!(!gone.status.success(), "kext outlived sluiced");
}
