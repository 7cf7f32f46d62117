//! Floating IP, both families: the member gets the client's packets with
//! the frontend still their destination, so the next hop is the member
//! (not the destination, not the gateway), and its replies leave from the
//! frontend unchanged.

use super::test_net::{self, member_mac, EXT, EXT_MAC, GW_MAC, INT, INT_MAC};
use super::*;
use crate::config::Config;
use crate::craft::{self, Example};
use crate::wire::tcp;
use std::net::{IpAddr, Ipv4Addr};

/// The IPv6 example with every lb rule on floating IP.
fn floating() -> Example {
    let text = format!(
        "{}{}{}",
        craft::EXAMPLE_CONFIG,
        craft::LB_CONFIG,
        craft::LB6_CONFIG
    )
    .replace("[[lb_rule]]\n", "[[lb_rule]]\nfloating_ip = true\n");
    Example::from_config(&Config::from_toml_str(&text).expect("valid"), 64)
}

fn send(ex: &Example, port: PortIndex, frame: Vec<u8>) -> (Fate, Vec<u8>) {
    let (fate, room, _) = test_net::send(ex, port, frame);
    (fate, room)
}

fn floating_ip_sends_to_the_member(client: IpAddr, frontend: IpAddr) {
    let ex = floating();
    let v6 = client.is_ipv6();
    let syn = craft::tcp_ip(
        GW_MAC,
        EXT_MAC,
        (client, 40000),
        (frontend, 80),
        tcp::Flags::SYN,
        (1000, 0),
        &[],
    );
    let (fate, f) = send(&ex, EXT, syn);
    assert!(matches!(fate, Fate::Tx { port: INT, .. }), "{fate:?}");
    let (dst_at, n) = if v6 { (38, 16) } else { (30, 4) };
    let kept = match frontend {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    };
    assert_eq!(&f[dst_at..dst_at + n], &kept[..], "destination kept");
    let members: Vec<IpAddr> = if v6 {
        vec![
            "2001:db8:2::21".parse().unwrap(),
            "2001:db8:2::22".parse().unwrap(),
        ]
    } else {
        (11..=13)
            .map(|m| IpAddr::V4(Ipv4Addr::new(10, 0, 0, m)))
            .collect()
    };
    let Some(&member) = members.iter().find(|&&m| f[..6] == member_mac(m).0) else {
        panic!("sent to {:x?}, not to a member's MAC", &f[..6]);
    };
    // The member answers from the frontend address itself (on the rule's
    // backend port, as the SYN arrived).
    let l4 = if v6 { 54 } else { 34 };
    let bport = u16::from_be_bytes([f[l4 + 2], f[l4 + 3]]);
    let reply = craft::tcp_ip(
        member_mac(member),
        INT_MAC,
        (frontend, bport),
        (client, 40000),
        tcp::Flags::SYN | tcp::Flags::ACK,
        (9000, 1001),
        &[],
    );
    let (fate, f) = send(&ex, INT, reply);
    assert!(matches!(fate, Fate::Tx { port: EXT, .. }), "{fate:?}");
    assert_eq!(&f[..6], &GW_MAC.0, "the client is beyond the gateway");
}

#[test]
fn floating_ip_sends_to_the_member_v4() {
    floating_ip_sends_to_the_member(
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 10)),
    );
}

#[test]
fn floating_ip_sends_to_the_member_v6() {
    floating_ip_sends_to_the_member(
        "2001:db8:9::7".parse().unwrap(),
        "2001:db8:1::10".parse().unwrap(),
    );
}
