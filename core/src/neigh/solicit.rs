//! Building the requests the cache asks for: ARP who-has and ICMPv6
//! neighbour solicitation. Both write into a caller's buffer (an mbuf's data
//! room) and return the frame length.

use crate::wire::{arp, checksum, ethernet, icmpv6, ipv6, EtherType, IpProtocol, MacAddr};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Minimum Ethernet frame without FCS; shorter frames are padded.
const MIN_FRAME: usize = 60;

/// Writes a broadcast ARP request for `target` from (`mac`, `ip`). `buf` must
/// hold 60 bytes.
pub fn build_arp_request(buf: &mut [u8], mac: MacAddr, ip: Ipv4Addr, target: Ipv4Addr) -> usize {
    buf[..MIN_FRAME].fill(0);
    let mut f = ethernet::Frame::new_unchecked(&mut buf[..MIN_FRAME]);
    ethernet::Repr {
        src: mac,
        dst: MacAddr::BROADCAST,
        ethertype: EtherType::Arp,
    }
    .emit(&mut f);
    let repr = arp::Repr {
        operation: arp::Operation::Request,
        sender_hw: mac,
        sender_ip: ip,
        target_hw: MacAddr::ZERO,
        target_ip: target,
    };
    repr.emit(&mut arp::Packet::new_unchecked(f.payload_mut()));
    MIN_FRAME
}

/// The solicited-node multicast address of `a` (ff02::1:ffXX:XXXX).
pub fn solicited_node(a: Ipv6Addr) -> Ipv6Addr {
    let o = a.octets();
    Ipv6Addr::new(
        0xff02,
        0,
        0,
        0,
        0,
        1,
        0xff00 | u16::from(o[13]),
        u16::from_be_bytes([o[14], o[15]]),
    )
}

/// Writes a neighbour solicitation for `target` to its solicited-node group,
/// with our link-layer address option. `buf` must hold 86 bytes.
pub fn build_neighbor_solicit(
    buf: &mut [u8],
    mac: MacAddr,
    ip: Ipv6Addr,
    target: Ipv6Addr,
) -> usize {
    let nd = Nd {
        message: icmpv6::Message::NeighborSolicit,
        flags: 0,
        option: icmpv6::OPT_SOURCE_LL,
    };
    nd.build(buf, mac, (ip, solicited_node(target)), target)
}

/// Writes an unsolicited neighbour advertisement of `ip` at `mac` to all
/// nodes (RFC 4861 7.2.6: override set, solicited clear, the target's
/// link-layer address), from `ip` itself. `buf` must hold 86 bytes.
pub fn build_unsolicited_advert(buf: &mut [u8], mac: MacAddr, ip: Ipv6Addr) -> usize {
    const OVERRIDE: u8 = 0x20;
    let nd = Nd {
        message: icmpv6::Message::NeighborAdvert,
        flags: OVERRIDE,
        option: icmpv6::OPT_TARGET_LL,
    };
    nd.build(
        buf,
        mac,
        (ip, Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1)),
        ip,
    )
}

/// A neighbour discovery message with one link-layer address option.
struct Nd {
    message: icmpv6::Message,
    flags: u8,
    option: u8,
}

impl Nd {
    /// Writes it from `src` to `dst` (and its multicast MAC) about
    /// `target`; the frame length.
    fn build(
        &self,
        buf: &mut [u8],
        mac: MacAddr,
        (src, dst): (Ipv6Addr, Ipv6Addr),
        target: Ipv6Addr,
    ) -> usize {
        const ICMP_LEN: usize = icmpv6::ND_LEN + 8;
        const LEN: usize = ethernet::HEADER_LEN + ipv6::HEADER_LEN + ICMP_LEN;
        buf[..LEN].fill(0);
        let mut f = ethernet::Frame::new_unchecked(&mut buf[..LEN]);
        ethernet::Repr {
            src: mac,
            dst: MacAddr::ipv6_multicast(&dst),
            ethertype: EtherType::Ipv6,
        }
        .emit(&mut f);
        let mut ip6 = ipv6::Packet::new_unchecked(f.payload_mut());
        ipv6::Repr {
            src,
            dst,
            next_header: IpProtocol::Icmpv6,
            payload_len: ICMP_LEN,
            hop_limit: 255,
        }
        .emit(&mut ip6);
        let mut icmp = icmpv6::Packet::new_unchecked(ip6.payload_mut());
        icmp.set_msg_type(self.message);
        icmp.set_code(0);
        if self.flags != 0 {
            icmp.set_na_flags(self.flags);
        }
        icmp.set_nd_target(target);
        icmp.set_nd_link_layer_option(self.option, mac);
        icmp.fill_checksum(checksum::pseudo_header_v6(src, dst, 58, ICMP_LEN as u32));
        LEN
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: MacAddr = MacAddr([2, 0, 0, 0, 0, 1]);

    #[test]
    fn unsolicited_advert_is_valid_and_overrides() {
        let me: Ipv6Addr = "2001:db8:1::10".parse().unwrap();
        let mut buf = [0u8; 128];
        let n = build_unsolicited_advert(&mut buf, MAC, me);
        assert_eq!(n, 86);
        assert_eq!(&buf[..6], &[0x33, 0x33, 0, 0, 0, 1], "all nodes");
        let ip6 = ipv6::Packet::new_checked(&buf[14..n]).unwrap();
        assert_eq!(ip6.hop_limit(), 255);
        let p = icmpv6::Packet::new_checked(ip6.payload()).unwrap();
        assert_eq!(p.msg_type(), icmpv6::Message::NeighborAdvert);
        assert_eq!(p.nd_target(), me);
        assert_eq!(p.nd_link_layer_option(icmpv6::OPT_TARGET_LL), Ok(Some(MAC)));
        assert_eq!(ip6.payload()[4], 0x20, "override, not solicited");
        let dst = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
        assert!(p.verify_checksum(checksum::pseudo_header_v6(me, dst, 58, 32)));
    }

    #[test]
    fn arp_request_bytes() {
        let mut buf = [0xaau8; 64];
        let n = build_arp_request(
            &mut buf,
            MAC,
            Ipv4Addr::new(10, 0, 0, 1),
            Ipv4Addr::new(10, 0, 0, 11),
        );
        assert_eq!(n, 60);
        assert_eq!(
            &buf[..14],
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x08, 0x06]
        );
        assert_eq!(
            &buf[14..42],
            &[
                0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 1, 10, 0, 0, 1, 0, 0, 0, 0, 0, 0, 10, 0, 0,
                11
            ]
        );
        assert!(buf[42..60].iter().all(|b| *b == 0), "padding is zero");
    }

    #[test]
    fn solicitation_is_valid() {
        let me: Ipv6Addr = "2001:db8:2::1".parse().unwrap();
        let target: Ipv6Addr = "2001:db8:2::abcd:11".parse().unwrap();
        assert_eq!(
            solicited_node(target),
            "ff02::1:ffcd:11".parse::<Ipv6Addr>().unwrap()
        );
        let mut buf = [0u8; 128];
        let n = build_neighbor_solicit(&mut buf, MAC, me, target);
        let f = ethernet::Frame::new_checked(&buf[..n]).unwrap();
        assert_eq!(f.dst_addr(), MacAddr([0x33, 0x33, 0xff, 0xcd, 0x00, 0x11]));
        let ip6 = ipv6::Packet::new_checked(f.payload()).unwrap();
        assert_eq!(ip6.hop_limit(), 255);
        let icmp = icmpv6::Packet::new_checked(ip6.payload()).unwrap();
        assert_eq!(icmp.msg_type(), icmpv6::Message::NeighborSolicit);
        assert_eq!(icmp.nd_target(), target);
        assert_eq!(
            icmp.nd_link_layer_option(icmpv6::OPT_SOURCE_LL),
            Ok(Some(MAC))
        );
        let pseudo = checksum::pseudo_header_v6(me, ip6.dst_addr(), 58, ip6.payload().len() as u32);
        assert!(icmp.verify_checksum(pseudo));
    }
}
