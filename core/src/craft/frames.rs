//! Frames as clients send them, of either family: ARP, echo, neighbour
//! solicitations, UDP and TCP segments, IPv6 extension headers.

use crate::wire::{
    arp, checksum, ethernet, icmpv4, icmpv6, ipv4, ipv6, tcp, udp, EtherType, IpProtocol, MacAddr,
};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fn eth(buf: &mut Vec<u8>, src: MacAddr, dst: MacAddr, ethertype: EtherType) {
    buf.resize(ethernet::HEADER_LEN, 0);
    ethernet::Repr {
        src,
        dst,
        ethertype,
    }
    .emit(&mut ethernet::Frame::new_unchecked(&mut buf[..]));
}

/// Pads to the 60-byte Ethernet minimum, as a NIC would.
fn pad(mut v: Vec<u8>) -> Vec<u8> {
    if v.len() < 60 {
        v.resize(60, 0);
    }
    v
}

/// Broadcast ARP who-has `target` from (`mac`, `ip`).
pub fn arp_request(mac: MacAddr, ip: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut v = vec![0u8; 60];
    crate::neigh::build_arp_request(&mut v, mac, ip, target);
    v
}

/// ARP reply from (`mac`, `ip`) to (`to_mac`, `to_ip`).
pub fn arp_reply(mac: MacAddr, ip: Ipv4Addr, to_mac: MacAddr, to_ip: Ipv4Addr) -> Vec<u8> {
    let mut v = Vec::new();
    eth(&mut v, mac, to_mac, EtherType::Arp);
    v.resize(ethernet::HEADER_LEN + arp::PACKET_LEN, 0);
    arp::Repr {
        operation: arp::Operation::Reply,
        sender_hw: mac,
        sender_ip: ip,
        target_hw: to_mac,
        target_ip: to_ip,
    }
    .emit(&mut arp::Packet::new_unchecked(
        &mut v[ethernet::HEADER_LEN..],
    ));
    pad(v)
}

/// IPv4 packet with `payload` after a 20-byte header, valid checksum.
pub fn ipv4(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    proto: IpProtocol,
    payload: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    eth(&mut v, src_mac, dst_mac, EtherType::Ipv4);
    let start = v.len();
    v.resize(start + ipv4::HEADER_LEN, 0);
    v.extend_from_slice(payload);
    let repr = ipv4::Repr {
        src,
        dst,
        protocol: proto,
        payload_len: payload.len(),
        ttl: 64,
    };
    repr.emit(&mut ipv4::Packet::new_unchecked(&mut v[start..]));
    pad(v)
}

/// ICMP echo request with `data`.
pub fn echo_request_v4(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    ident: u16,
    seq: u16,
    data: &[u8],
) -> Vec<u8> {
    let mut icmp = vec![0u8; icmpv4::HEADER_LEN];
    icmp.extend_from_slice(data);
    let mut p = icmpv4::Packet::new_unchecked(&mut icmp[..]);
    p.set_msg_type(icmpv4::Message::EchoRequest);
    p.set_echo_ident(ident);
    p.set_echo_seq(seq);
    p.fill_checksum();
    ipv4(src_mac, dst_mac, src, dst, IpProtocol::Icmp, &icmp)
}

/// IP packet of either family with `payload` after a plain header (IPv4
/// with a valid checksum; IPv6 with no extension header), in a frame.
pub fn ip_frame(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: IpAddr,
    dst: IpAddr,
    proto: IpProtocol,
    payload: &[u8],
) -> Vec<u8> {
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut v = Vec::new();
            eth(&mut v, src_mac, dst_mac, EtherType::Ipv6);
            let start = v.len();
            v.resize(start + ipv6::HEADER_LEN, 0);
            v.extend_from_slice(payload);
            ipv6::Repr {
                src: s,
                dst: d,
                next_header: proto,
                payload_len: payload.len(),
                hop_limit: 64,
            }
            .emit(&mut ipv6::Packet::new_unchecked(&mut v[start..]));
            pad(v)
        }
        (IpAddr::V4(s), IpAddr::V4(d)) => ipv4(src_mac, dst_mac, s, d, proto, payload),
        _ => panic!("craft: {src} and {dst} are of two families"),
    }
}

/// The pseudo-header sum of either family.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> u32 {
    match (src, dst) {
        (IpAddr::V6(s), IpAddr::V6(d)) => checksum::pseudo_header_v6(s, d, proto, len),
        (IpAddr::V4(s), IpAddr::V4(d)) => checksum::pseudo_header_v4(s, d, proto, len),
        _ => panic!("craft: {src} and {dst} are of two families"),
    }
}

/// A UDP header and `data` with a valid checksum for `src` -> `dst`.
pub fn udp_segment(src: (IpAddr, u16), dst: (IpAddr, u16), data: &[u8]) -> Vec<u8> {
    let mut u = vec![0u8; udp::HEADER_LEN];
    u.extend_from_slice(data);
    let ulen = u.len() as u16;
    let mut p = udp::Packet::new_unchecked(&mut u[..]);
    p.set_src_port(src.1);
    p.set_dst_port(dst.1);
    p.set_len(ulen);
    let pseudo = pseudo_header(src.0, dst.0, 17, u.len() as u32);
    udp::Packet::new_unchecked(&mut u[..]).fill_checksum(pseudo);
    u
}

/// A TCP header without options and `data`, valid checksum.
pub fn tcp_segment(
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    flags: tcp::Flags,
    (seq, ack): (u32, u32),
    data: &[u8],
) -> Vec<u8> {
    let mut t = vec![0u8; tcp::HEADER_LEN];
    t.extend_from_slice(data);
    let mut p = tcp::Packet::new_unchecked(&mut t[..]);
    p.set_src_port(src.1);
    p.set_dst_port(dst.1);
    p.set_seq(seq);
    p.set_ack(ack);
    p.set_header_len_and_flags(tcp::HEADER_LEN, flags);
    p.set_window(64240);
    let len = t.len() as u32;
    tcp::Packet::new_unchecked(&mut t[..]).fill_checksum(pseudo_header(src.0, dst.0, 6, len));
    t
}

/// UDP datagram of either family with a valid checksum.
pub fn udp_ip(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    data: &[u8],
) -> Vec<u8> {
    let u = udp_segment(src, dst, data);
    ip_frame(src_mac, dst_mac, src.0, dst.0, IpProtocol::Udp, &u)
}

/// TCP segment of either family without options, carrying `data`.
pub fn tcp_ip(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: (IpAddr, u16),
    dst: (IpAddr, u16),
    flags: tcp::Flags,
    seq_ack: (u32, u32),
    data: &[u8],
) -> Vec<u8> {
    let t = tcp_segment(src, dst, flags, seq_ack, data);
    ip_frame(src_mac, dst_mac, src.0, dst.0, IpProtocol::Tcp, &t)
}

/// `frame` (an IPv6 frame without extension headers) with the extension
/// headers `ext` inserted after its fixed header: each `(next header
/// number of this header, its bytes)`, the first byte of each rewritten to
/// chain them; payload length fixed. L4 checksums do not cover extension
/// headers, so they stay valid.
pub fn with_ext_headers(frame: &[u8], ext: &[(u8, Vec<u8>)]) -> Vec<u8> {
    let at = ethernet::HEADER_LEN + ipv6::HEADER_LEN;
    let plen = usize::from(u16::from_be_bytes([frame[18], frame[19]]));
    let upper = frame[ethernet::HEADER_LEN + 6];
    let mut v = frame[..at].to_vec();
    let mut added = 0;
    for (i, (_, h)) in ext.iter().enumerate() {
        let mut h = h.clone();
        h[0] = ext.get(i + 1).map_or(upper, |n| n.0);
        added += h.len();
        v.extend_from_slice(&h);
    }
    v.extend_from_slice(&frame[at..at + plen]);
    if let Some((first, _)) = ext.first() {
        v[ethernet::HEADER_LEN + 6] = *first;
    }
    v[18..20].copy_from_slice(&((plen + added) as u16).to_be_bytes());
    pad(v)
}

/// UDP datagram with a valid checksum.
pub fn udp_v4(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    data: &[u8],
) -> Vec<u8> {
    udp_ip(
        src_mac,
        dst_mac,
        (src.0.into(), src.1),
        (dst.0.into(), dst.1),
        data,
    )
}

/// TCP segment without options or data, valid checksum.
pub fn tcp_v4(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: tcp::Flags,
    seq: u32,
    ack: u32,
) -> Vec<u8> {
    tcp_v4_data(src_mac, dst_mac, src, dst, flags, (seq, ack), &[])
}

/// TCP segment without options, carrying `data`, valid checksum.
pub fn tcp_v4_data(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: (Ipv4Addr, u16),
    dst: (Ipv4Addr, u16),
    flags: tcp::Flags,
    seq_ack: (u32, u32),
    data: &[u8],
) -> Vec<u8> {
    tcp_ip(
        src_mac,
        dst_mac,
        (src.0.into(), src.1),
        (dst.0.into(), dst.1),
        flags,
        seq_ack,
        data,
    )
}

fn ipv6_frame(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    hop_limit: u8,
    icmp: &[u8],
) -> Vec<u8> {
    let mut v = Vec::new();
    eth(&mut v, src_mac, dst_mac, EtherType::Ipv6);
    let start = v.len();
    v.resize(start + ipv6::HEADER_LEN, 0);
    v.extend_from_slice(icmp);
    ipv6::Repr {
        src,
        dst,
        next_header: IpProtocol::Icmpv6,
        payload_len: icmp.len(),
        hop_limit,
    }
    .emit(&mut ipv6::Packet::new_unchecked(&mut v[start..]));
    pad(v)
}

/// ICMPv6 echo request.
pub fn echo_request_v6(
    src_mac: MacAddr,
    dst_mac: MacAddr,
    src: Ipv6Addr,
    dst: Ipv6Addr,
    ident: u16,
    seq: u16,
    data: &[u8],
) -> Vec<u8> {
    let mut icmp = vec![0u8; icmpv6::HEADER_LEN];
    icmp.extend_from_slice(data);
    icmp[0] = 128;
    icmp[4..6].copy_from_slice(&ident.to_be_bytes());
    icmp[6..8].copy_from_slice(&seq.to_be_bytes());
    let pseudo = checksum::pseudo_header_v6(src, dst, 58, icmp.len() as u32);
    icmpv6::Packet::new_unchecked(&mut icmp[..]).fill_checksum(pseudo);
    ipv6_frame(src_mac, dst_mac, src, dst, 64, &icmp)
}

/// Neighbour solicitation for `target` to its solicited-node group.
pub fn neighbor_solicit(src_mac: MacAddr, src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let mut v = vec![0u8; 128];
    let n = crate::neigh::build_neighbor_solicit(&mut v, src_mac, src, target);
    v.truncate(n);
    v
}
