//! Sluice as a host on each port: ARP replies, neighbour advertisements and
//! echo replies for the addresses it owns there, built in place in the
//! received buffer. Learning goes to the control thread through [`Slowpath`].

use super::{Context, Counters, DropReason, Fate, Slowpath, Stat};
use crate::neigh::PortIndex;
use crate::wire::{arp, checksum, ethernet, icmpv4, icmpv6, ipv4, ipv6, IpProtocol, MacAddr};
use std::net::{IpAddr, Ipv6Addr};

const ETH: usize = ethernet::HEADER_LEN;
const TTL: u8 = 64;
/// All-nodes multicast, where answers to duplicate-address detection go.
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);

fn learn<S: Slowpath>(
    slow: &mut S,
    cx: Context<'_>,
    port: PortIndex,
    ip: IpAddr,
    mac: MacAddr,
    c: &mut Counters,
) {
    // Only on-link neighbours, and only news: the ring carries changes.
    let p = &cx.dataplane.ports[usize::from(port)];
    if !mac.is_unicast() || !p.on_link(ip) || cx.neigh.lookup(port, ip) == Some(mac) {
        return;
    }
    if !slow.learn(port, ip, mac) {
        c.add(Stat::LearnLost, 1);
    }
}

/// Hands the kernel interface of `port` a copy of `frame` (ARP or ND it
/// needs to learn its neighbours), when the port has one.
fn copy_to_kernel<S: Slowpath>(
    slow: &mut S,
    cx: Context<'_>,
    port: PortIndex,
    frame: &[u8],
    c: &mut Counters,
) {
    if !cx.dataplane.ports[usize::from(port)].kernel {
        return;
    }
    if slow.copy_to_kernel(port, frame) {
        c.add(Stat::KernelCopies, 1);
    } else {
        c.add(Stat::KernelCopiesLost, 1);
    }
}

pub(super) fn arp_input<S: Slowpath>(
    cx: Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    len: usize,
    slow: &mut S,
    c: &mut Counters,
) -> Fate {
    let Ok(p) = arp::Packet::new_checked(&room[ETH..len]) else {
        return Fate::Drop(DropReason::ArpMalformed);
    };
    let r = arp::Repr::parse(&p);
    let sender = IpAddr::V4(r.sender_ip);
    if cx.dataplane.is_spoofed_claim(rx_port, sender) {
        return Fate::Drop(DropReason::NeighSpoof);
    }
    let port = &cx.dataplane.ports[usize::from(rx_port)];
    match r.operation {
        arp::Operation::Request => {
            if !port.owns_v4(r.target_ip) {
                return Fate::Drop(DropReason::ArpNotOurs);
            }
            if !r.sender_ip.is_unspecified() {
                learn(slow, cx, rx_port, sender, r.sender_hw, c);
            }
            if port.kernel_owns(IpAddr::V4(r.target_ip)) {
                copy_to_kernel(slow, cx, rx_port, &room[..len], c);
            }
            let mut f = ethernet::Frame::new_unchecked(&mut room[..len]);
            f.set_dst_addr(r.sender_hw);
            f.set_src_addr(port.mac);
            let mut a = arp::Packet::new_unchecked(f.payload_mut());
            a.set_operation(arp::Operation::Reply);
            a.set_sender(port.mac, r.target_ip);
            a.set_target(r.sender_hw, r.sender_ip);
            c.add(Stat::ArpReplies, 1);
            Fate::Tx {
                port: rx_port,
                len: len as u16,
            }
        }
        arp::Operation::Reply if port.owns_v4(r.target_ip) => {
            learn(slow, cx, rx_port, sender, r.sender_hw, c);
            if port.kernel_owns(IpAddr::V4(r.target_ip)) {
                copy_to_kernel(slow, cx, rx_port, &room[..len], c);
            }
            Fate::Consumed
        }
        _ => Fate::Drop(DropReason::ArpUnhandled),
    }
}

/// Sends an in-place reply towards `dst`: route, then the neighbour's MAC or
/// a hold while control resolves it.
pub(super) fn route_reply(cx: Context<'_>, room: &mut [u8], len: usize, dst: IpAddr) -> Fate {
    let Some((port, next_hop)) = cx.dataplane.route(dst) else {
        return Fate::Drop(DropReason::NoRoute);
    };
    let mut f = ethernet::Frame::new_unchecked(&mut room[..len]);
    f.set_src_addr(cx.dataplane.ports[usize::from(port)].mac);
    match cx.neigh.lookup(port, next_hop) {
        Some(mac) => {
            f.set_dst_addr(mac);
            Fate::Tx {
                port,
                len: len as u16,
            }
        }
        None => Fate::Hold {
            port,
            next_hop,
            len: len as u16,
        },
    }
}

pub(super) fn ipv4_input(
    cx: Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    len: usize,
    c: &mut Counters,
) -> Fate {
    let Ok(ip) = ipv4::Packet::new_checked(&room[ETH..len]) else {
        return Fate::Drop(DropReason::Ipv4Malformed);
    };
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    // Ownership first: it decides most drops and costs less than summing
    // the header. A corrupted destination is then counted as no_rule.
    if !cx.dataplane.ports[usize::from(rx_port)].owns_v4(dst) {
        return Fate::Drop(DropReason::NoRule);
    }
    if !ip.verify_checksum() {
        return Fate::Drop(DropReason::Ipv4BadChecksum);
    }
    if ip.is_fragment() {
        return Fate::Drop(DropReason::Fragment);
    }
    if ip.protocol() != IpProtocol::Icmp {
        return Fate::Drop(DropReason::NoService);
    }
    let (hl, total, ttl) = (ip.header_len(), usize::from(ip.total_len()), ip.ttl());
    let icmp_room = &room[ETH + hl..ETH + total];
    let Ok(icmp) = icmpv4::Packet::new_checked(icmp_room) else {
        return Fate::Drop(DropReason::IcmpMalformed);
    };
    if !icmp.verify_checksum() {
        return Fate::Drop(DropReason::IcmpMalformed);
    }
    if icmp.msg_type() != icmpv4::Message::EchoRequest {
        return Fate::Drop(DropReason::IcmpUnhandled);
    }
    if src.is_unspecified()
        || src.is_broadcast()
        || src.is_multicast()
        || src.is_loopback()
        || cx.dataplane.is_own(IpAddr::V4(src))
    {
        return Fate::Drop(DropReason::MartianSource);
    }
    let code = icmp.code();

    // Swapping addresses leaves both checksums as they are; TTL and type do not.
    let mut ip = ipv4::Packet::new_unchecked(&mut room[ETH..ETH + total]);
    ip.set_src_addr(dst);
    ip.set_dst_addr(src);
    let proto = u16::from(u8::from(IpProtocol::Icmp));
    let csum = checksum::update16(
        ip.checksum(),
        u16::from(ttl) << 8 | proto,
        u16::from(TTL) << 8 | proto,
    );
    ip.set_ttl(TTL);
    ip.set_checksum(csum);
    let mut icmp = icmpv4::Packet::new_unchecked(&mut room[ETH + hl..ETH + total]);
    let csum = checksum::update16(icmp.checksum(), 8 << 8 | u16::from(code), u16::from(code));
    icmp.set_msg_type(icmpv4::Message::EchoReply);
    icmp.set_checksum(csum);
    c.add(Stat::EchoReplies, 1);
    route_reply(cx, room, len, IpAddr::V4(src))
}

pub(super) fn ipv6_input<S: Slowpath>(
    cx: Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    len: usize,
    slow: &mut S,
    c: &mut Counters,
) -> Fate {
    let Ok(ip) = ipv6::Packet::new_checked(&room[ETH..len]) else {
        return Fate::Drop(DropReason::Ipv6Malformed);
    };
    let Ok(ul) = ip.upper_layer() else {
        return Fate::Drop(DropReason::Ipv6Malformed);
    };
    let (src, dst, hop_limit, total) =
        (ip.src_addr(), ip.dst_addr(), ip.hop_limit(), ip.total_len());
    let port = &cx.dataplane.ports[usize::from(rx_port)];
    let owned = port.owns_v6(dst);
    if ul.protocol != IpProtocol::Icmpv6 || ul.fragment.is_some() {
        return Fate::Drop(match (owned, ul.fragment.is_some()) {
            (false, _) => DropReason::NoRule,
            (true, true) => DropReason::Fragment,
            (true, false) => DropReason::NoService,
        });
    }
    let icmp_len = total - ul.offset;
    let Ok(icmp) = icmpv6::Packet::new_checked(&room[ETH + ul.offset..ETH + total]) else {
        return Fate::Drop(DropReason::IcmpMalformed);
    };
    if !icmp.verify_checksum(checksum::pseudo_header_v6(src, dst, 58, icmp_len as u32)) {
        return Fate::Drop(DropReason::IcmpMalformed);
    }
    match icmp.msg_type() {
        icmpv6::Message::NeighborSolicit => {
            if hop_limit != 255 || icmp.code() != 0 {
                return Fate::Drop(DropReason::NdInvalid);
            }
            let target = icmp.nd_target();
            let Ok(sll) = icmp.nd_link_layer_option(icmpv6::OPT_SOURCE_LL) else {
                return Fate::Drop(DropReason::NdInvalid);
            };
            if !port.owns_v6(target) {
                return Fate::Drop(DropReason::NdNotOurs);
            }
            if dst != target && dst != crate::neigh::solicited_node(target) {
                return Fate::Drop(DropReason::NdInvalid);
            }
            let dad = src.is_unspecified();
            if dad && sll.is_some() {
                return Fate::Drop(DropReason::NdInvalid);
            }
            if !dad && cx.dataplane.is_spoofed_claim(rx_port, IpAddr::V6(src)) {
                return Fate::Drop(DropReason::NeighSpoof);
            }
            let asker =
                sll.unwrap_or_else(|| ethernet::Frame::new_unchecked(&room[..len]).src_addr());
            if !dad {
                learn(slow, cx, rx_port, IpAddr::V6(src), asker, c);
            }
            if port.kernel_owns(IpAddr::V6(target)) {
                copy_to_kernel(slow, cx, rx_port, &room[..len], c);
            }
            neighbor_advert(
                cx,
                rx_port,
                room,
                target,
                if dad { None } else { Some((src, asker)) },
                c,
            )
        }
        icmpv6::Message::NeighborAdvert => {
            let target = icmp.nd_target();
            let tll = icmp.nd_link_layer_option(icmpv6::OPT_TARGET_LL);
            if hop_limit != 255 || icmp.code() != 0 || tll.is_err() || target.is_multicast() {
                return Fate::Drop(DropReason::NdInvalid);
            }
            if cx.dataplane.is_spoofed_claim(rx_port, IpAddr::V6(target)) {
                return Fate::Drop(DropReason::NeighSpoof);
            }
            let mac = tll
                .ok()
                .flatten()
                .unwrap_or_else(|| ethernet::Frame::new_unchecked(&room[..len]).src_addr());
            learn(slow, cx, rx_port, IpAddr::V6(target), mac, c);
            copy_to_kernel(slow, cx, rx_port, &room[..len], c);
            Fate::Consumed
        }
        icmpv6::Message::EchoRequest if owned => {
            // Extension headers would be reflected back as they are; nobody
            // needs that for a ping, so such echoes are not answered.
            if ul.offset != ipv6::HEADER_LEN {
                return Fate::Drop(DropReason::IcmpUnhandled);
            }
            if src.is_multicast()
                || src.is_unspecified()
                || src.is_loopback()
                || cx.dataplane.is_own(IpAddr::V6(src))
            {
                return Fate::Drop(DropReason::MartianSource);
            }
            let code = u16::from(icmp.code());
            let mut ip = ipv6::Packet::new_unchecked(&mut room[ETH..ETH + total]);
            ip.set_src_addr(dst);
            ip.set_dst_addr(src);
            ip.set_hop_limit(TTL);
            let mut icmp = icmpv6::Packet::new_unchecked(&mut room[ETH + ul.offset..ETH + total]);
            let csum = checksum::update16(icmp.checksum(), 128 << 8 | code, 129 << 8 | code);
            icmp.set_msg_type(icmpv6::Message::EchoReply);
            icmp.set_checksum(csum);
            c.add(Stat::EchoReplies, 1);
            route_reply(cx, room, len, IpAddr::V6(src))
        }
        _ if owned => Fate::Drop(DropReason::IcmpUnhandled),
        _ => Fate::Drop(DropReason::NoRule),
    }
}

/// Rewrites the buffer into a neighbour advertisement for `target`, to the
/// asker (`Some((ip, mac))`) or, answering duplicate-address detection, to
/// all nodes. Always 86 bytes: header, NA and our link-layer address option.
fn neighbor_advert(
    cx: Context<'_>,
    rx_port: PortIndex,
    room: &mut [u8],
    target: Ipv6Addr,
    asker: Option<(Ipv6Addr, MacAddr)>,
    c: &mut Counters,
) -> Fate {
    const ICMP_LEN: usize = icmpv6::ND_LEN + 8;
    const LEN: usize = ETH + ipv6::HEADER_LEN + ICMP_LEN;
    if room.len() < LEN {
        return Fate::Drop(DropReason::NdInvalid);
    }
    let mac = cx.dataplane.ports[usize::from(rx_port)].mac;
    let (dst_ip, dst_mac, flags) = match asker {
        Some((ip, m)) => (ip, m, icmpv6::NA_SOLICITED | icmpv6::NA_OVERRIDE),
        None => (
            ALL_NODES,
            MacAddr::ipv6_multicast(&ALL_NODES),
            icmpv6::NA_OVERRIDE,
        ),
    };
    let mut f = ethernet::Frame::new_unchecked(&mut room[..LEN]);
    f.set_dst_addr(dst_mac);
    f.set_src_addr(mac);
    let mut ip = ipv6::Packet::new_unchecked(f.payload_mut());
    ipv6::Repr {
        src: target,
        dst: dst_ip,
        next_header: IpProtocol::Icmpv6,
        payload_len: ICMP_LEN,
        hop_limit: 255,
    }
    .emit(&mut ip);
    let mut icmp = icmpv6::Packet::new_unchecked(ip.payload_mut());
    icmp.set_msg_type(icmpv6::Message::NeighborAdvert);
    icmp.set_code(0);
    icmp.set_na_flags(flags);
    icmp.set_nd_target(target);
    icmp.set_nd_link_layer_option(icmpv6::OPT_TARGET_LL, mac);
    icmp.fill_checksum(checksum::pseudo_header_v6(
        target,
        dst_ip,
        58,
        ICMP_LEN as u32,
    ));
    c.add(Stat::NdAdverts, 1);
    Fate::Tx {
        port: rx_port,
        len: LEN as u16,
    }
}
