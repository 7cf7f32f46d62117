//! The example network the pipeline tests share: ports, MACs, resolved
//! neighbours (gateways and members of both families), a slow path that
//! learns nothing, and one frame through `process`.

use super::*;
use crate::craft::{self, Example};
use crate::neigh::NeighView;
use crate::wire::MacAddr;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub(super) const EXT_MAC: MacAddr = craft::EXAMPLE_EXT_MAC;
pub(super) const INT_MAC: MacAddr = craft::EXAMPLE_INT_MAC;
pub(super) const GW_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0xfe]);
pub(super) const EXT: PortIndex = PortIndex::new(0);
pub(super) const INT: PortIndex = PortIndex::new(1);
/// The MAC of the one IPv6 client on the external link, 2001:db8:1::100.
pub(super) const CLIENT6_MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 0x64]);

/// A member's MAC: 02:00:00:00:01:last for IPv4, 02:00:00:00:06:last for
/// IPv6.
pub(super) fn member_mac(a: IpAddr) -> MacAddr {
    match a {
        IpAddr::V4(a) => MacAddr([2, 0, 0, 0, 1, a.octets()[3]]),
        IpAddr::V6(a) => MacAddr([2, 0, 0, 0, 6, a.octets()[15]]),
    }
}

/// Both gateways, the on-link IPv6 client and the example's members,
/// resolved.
pub(super) fn neigh() -> NeighView {
    let mut v = vec![
        (EXT, IpAddr::V4(Ipv4Addr::new(203, 0, 113, 254)), GW_MAC),
        (EXT, "2001:db8:1::fe".parse().unwrap(), GW_MAC),
        (EXT, "2001:db8:1::100".parse().unwrap(), CLIENT6_MAC),
    ];
    for m in 11..=13 {
        let a = IpAddr::V4(Ipv4Addr::new(10, 0, 0, m));
        v.push((INT, a, member_mac(a)));
    }
    for m in [0x21, 0x22] {
        let a = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 2, 0, 0, 0, 0, m));
        v.push((INT, a, member_mac(a)));
    }
    NeighView::with_entries(v)
}

/// A slow path that takes what it is given and keeps nothing.
pub(super) struct Nop;
impl Slowpath for Nop {
    fn learn(&mut self, _: PortIndex, _: IpAddr, _: MacAddr) -> bool {
        true
    }
}

/// `frame` received on `port`: its fate, the room afterwards (as long as
/// what went in, or what Sluice built in it), and the counters.
pub(super) fn send(ex: &Example, port: PortIndex, frame: Vec<u8>) -> (Fate, Vec<u8>, Counters) {
    let n = neigh();
    let len = frame.len();
    let mut room = frame;
    room.resize(2048, 0);
    let mut c = Counters::default();
    let fate = process(ex.cx(&n, 7), port, &mut room, len, &mut Nop, &mut c);
    let sent = match fate {
        Fate::Tx { len, .. } => usize::from(len),
        _ => 0,
    };
    room.truncate(len.max(sent));
    (fate, room, c)
}
