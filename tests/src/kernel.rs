//! What the lab hosts' kernels counted: where a loss the generators saw
//! happened when Sluice counted none.

use crate::lab::Lab;

/// The kernel's UDP error counters in `ns` (/proc/net/snmp): receive
/// buffer overflows, other input errors, send buffer overflows.
pub fn udp_errors(lab: &Lab, ns: &str) -> [u64; 3] {
    let out = lab.sh(ns, "cat /proc/net/snmp");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut udp = text.lines().filter(|l| l.starts_with("Udp:"));
    let (Some(names), Some(values)) = (udp.next(), udp.next()) else {
        return [0; 3];
    };
    let get = |k: &str| {
        names
            .split_whitespace()
            .position(|n| n == k)
            .and_then(|i| values.split_whitespace().nth(i)?.parse().ok())
            .unwrap_or(0)
    };
    [get("RcvbufErrors"), get("InErrors"), get("SndbufErrors")]
}

/// Frames the links of `ns` dropped (veths and bridges, RX and TX: `ip -s
/// link`).
pub fn link_drops(lab: &Lab, ns: &str) -> u64 {
    let out = lab.sh(ns, "ip -s -j link show");
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).unwrap_or(serde_json::Value::Null);
    v.as_array()
        .into_iter()
        .flatten()
        .map(|l| {
            let s = &l["stats64"];
            s["rx"]["dropped"].as_u64().unwrap_or(0) + s["tx"]["dropped"].as_u64().unwrap_or(0)
        })
        .sum()
}
