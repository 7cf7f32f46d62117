//! The frames sluice-gen sends and answers: the payload marker, ARP and
//! neighbour answers for the backend address it plays, the TCP exchange of
//! a whole connection (`--proto conn`: client and server reflectors), new
//! SYNs.

use sluice_core::craft;
use sluice_core::dpdk::{Burst, Mempool};
use sluice_core::wire::{arp, checksum, ethernet, icmpv6, IpProtocol, MacAddr};
use std::net::{IpAddr, Ipv6Addr};

/// Marker the sink looks for in every payload, so a frame that comes back
/// mangled (or is not ours) is counted as bad.
pub(crate) const MAGIC: &[u8; 8] = b"SLUICEGN";

/// The reply to an ARP request (IPv4) or a neighbour solicitation (IPv6)
/// for `ip`, from `mac`.
pub(crate) fn arp_answer(frame: &[u8], ip: IpAddr, mac: MacAddr) -> Option<Vec<u8>> {
    let ip = match ip {
        IpAddr::V4(ip) => ip,
        IpAddr::V6(ip) => return nd_answer(frame, ip, mac),
    };
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if eth.ethertype() != ethernet::EtherType::Arp {
        return None;
    }
    let p = arp::Packet::new_checked(eth.payload()).ok()?;
    let r = arp::Repr::parse(&p);
    (r.operation == arp::Operation::Request && r.target_ip == ip)
        .then(|| craft::arp_reply(mac, ip, r.sender_hw, r.sender_ip))
}

/// The neighbour advertisement answering a solicitation for `target`.
pub(crate) fn nd_answer(frame: &[u8], target: Ipv6Addr, mac: MacAddr) -> Option<Vec<u8>> {
    if frame.len() < 14 + 40 + 24 || frame[12..14] != [0x86, 0xdd] || frame[14 + 6] != 58 {
        return None;
    }
    let icmp = &frame[54..];
    if icmp[0] != 135 || icmp[8..24] != target.octets() {
        return None;
    }
    let asker = Ipv6Addr::from(<[u8; 16]>::try_from(&frame[22..38]).ok()?);
    let mut na = vec![136u8, 0, 0, 0, 0x60, 0, 0, 0];
    na.extend_from_slice(&target.octets());
    na.extend_from_slice(&[2, 1]);
    na.extend_from_slice(&mac.0);
    let pseudo = checksum::pseudo_header_v6(target, asker, 58, na.len() as u32);
    icmpv6::Packet::new_unchecked(&mut na[..]).fill_checksum(pseudo);
    let asker_mac = MacAddr(<[u8; 6]>::try_from(&frame[6..12]).ok()?);
    let mut f = craft::ip_frame(
        mac,
        asker_mac,
        target.into(),
        asker.into(),
        IpProtocol::Icmpv6,
        &na,
    );
    f[14 + 7] = 255; // hop limit of neighbour discovery
    Some(f)
}

/// True for ARP and ICMPv6 neighbour discovery: what the forwarder sends
/// to resolve next hops, not the traffic the sink counts.
pub(crate) fn is_neighbour_traffic(frame: &[u8]) -> bool {
    match frame.get(12..14) {
        Some([0x08, 0x06]) => true,
        Some([0x86, 0xdd]) => {
            frame.get(20) == Some(&58) && frame.get(54).is_some_and(|t| (133..=137).contains(t))
        }
        _ => false,
    }
}

/// Copies `frame` into a new mbuf at the end of `burst`; false when no
/// mbuf or no room was left.
pub(crate) fn push_frame(pool: &Mempool, burst: &mut Burst, frame: &[u8]) -> bool {
    let Some(mut m) = pool.alloc() else {
        return false;
    };
    let (room, _) = m.room_and_len_mut();
    if room.len() < frame.len() {
        return false;
    }
    room[..frame.len()].copy_from_slice(frame);
    m.set_len(frame.len());
    burst.push(m).is_ok()
}

/// Initial sequence numbers of conn mode's clients and servers.
pub(crate) const CLIENT_ISN: u32 = 1000;
pub(crate) const SERVER_ISN: u32 = 5000;
/// What conn mode's clients send as a request and servers as a response.
pub(crate) const REQUEST: &[u8; 8] = b"REQUEST!";
pub(crate) const RESPONSE: &[u8; 8] = b"RESPONSE";

/// What a stateless conn-mode peer does with a received segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Reflect {
    /// The frame was rewritten in place into the reply, this long.
    Reply(usize),
    /// The server's last ACK reached the client: a connection completed.
    Completed,
    /// Not a step of the exchange.
    Ignore,
}

/// The answer to an ARP request for any address, from `mac`.
pub(crate) fn arp_any(frame: &[u8], mac: MacAddr) -> Option<Vec<u8>> {
    let eth = ethernet::Frame::new_checked(frame).ok()?;
    if eth.ethertype() != ethernet::EtherType::Arp {
        return None;
    }
    let p = arp::Packet::new_checked(eth.payload()).ok()?;
    let r = arp::Repr::parse(&p);
    (r.operation == arp::Operation::Request)
        .then(|| craft::arp_reply(mac, r.target_ip, r.sender_hw, r.sender_ip))
}

/// Conn mode: rewrites a received TCP segment into the stateless peer's
/// reply. Server side: SYN -> SYN-ACK; the request -> the response with
/// FIN; the client's FIN -> the last ACK. Client side: SYN-ACK -> ACK with
/// the request; the response with FIN -> FIN-ACK; the last ACK completes
/// the connection.
pub(crate) fn reflect(room: &mut [u8], len: usize, server: bool) -> Reflect {
    use sluice_core::wire::checksum;
    const SYN: u8 = 0x02;
    const ACK: u8 = 0x10;
    const FIN: u8 = 0x01;
    const PSH: u8 = 0x08;
    if len < 54
        || room.len() < 62
        || room[12..14] != [0x08, 0x00]
        || room[14] != 0x45
        || room[23] != 6
    {
        return Reflect::Ignore;
    }
    let ip_len = usize::from(u16::from_be_bytes([room[16], room[17]]));
    if ip_len < 40 || 14 + ip_len > len || room[46] >> 4 != 5 {
        return Reflect::Ignore;
    }
    let data = ip_len - 40;
    let rd32 = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let (seq, ack, flags) = (rd32(room, 38), rd32(room, 42), room[47]);
    let (out_flags, out_seq, out_ack, payload): (u8, u32, u32, &[u8]) = if server {
        if flags & (SYN | ACK) == SYN {
            (SYN | ACK, SERVER_ISN, seq.wrapping_add(1), &[])
        } else if flags & FIN != 0 {
            (ACK, ack, seq.wrapping_add(data as u32 + 1), &[])
        } else if data > 0 {
            (
                FIN | ACK | PSH,
                ack,
                seq.wrapping_add(data as u32),
                RESPONSE,
            )
        } else {
            return Reflect::Ignore;
        }
    } else if flags & (SYN | ACK) == SYN | ACK {
        (ACK | PSH, ack, seq.wrapping_add(1), REQUEST)
    } else if flags & FIN != 0 {
        (FIN | ACK, ack, seq.wrapping_add(data as u32 + 1), &[])
    } else if flags == ACK && data == 0 && ack == CLIENT_ISN + 1 + REQUEST.len() as u32 + 1 {
        return Reflect::Completed;
    } else {
        return Reflect::Ignore;
    };
    // Swap MACs, addresses and ports.
    let mut tmp = [0u8; 6];
    tmp.copy_from_slice(&room[0..6]);
    room.copy_within(6..12, 0);
    room[6..12].copy_from_slice(&tmp);
    let mut a4 = [0u8; 4];
    a4.copy_from_slice(&room[26..30]);
    room.copy_within(30..34, 26);
    room[30..34].copy_from_slice(&a4);
    let mut p2 = [0u8; 2];
    p2.copy_from_slice(&room[34..36]);
    room.copy_within(36..38, 34);
    room[36..38].copy_from_slice(&p2);
    let total = 40 + payload.len();
    room[16..18].copy_from_slice(&(total as u16).to_be_bytes());
    room[22] = 64; // TTL
    room[24..26].copy_from_slice(&[0, 0]);
    let c = checksum::checksum(&room[14..34]);
    room[24..26].copy_from_slice(&c.to_be_bytes());
    room[38..42].copy_from_slice(&out_seq.to_be_bytes());
    room[42..46].copy_from_slice(&out_ack.to_be_bytes());
    room[47] = out_flags;
    room[54..54 + payload.len()].copy_from_slice(payload);
    room[50..52].copy_from_slice(&[0, 0]);
    let src = std::net::Ipv4Addr::new(room[26], room[27], room[28], room[29]);
    let dst = std::net::Ipv4Addr::new(room[30], room[31], room[32], room[33]);
    let pseudo = checksum::pseudo_header_v4(src, dst, 6, (total - 20) as u32);
    let t = !checksum::fold(checksum::combine(
        pseudo,
        checksum::sum(&room[34..14 + total]),
    ));
    room[50..52].copy_from_slice(&t.to_be_bytes());
    let frame = (14 + total).max(60);
    room[14 + total..frame].fill(0);
    Reflect::Reply(frame)
}

/// Writes SYN number `n` of a stream of new flows into `room`: the
/// template with destination port + n % `dst_ports`, then (r = n /
/// dst_ports) source address + r % `src_count` and source port 1024 +
/// (r / src_count) % 60000, checksums updated incrementally.
pub(crate) fn new_syn(room: &mut [u8], template: &[u8], n: u32, src_count: u32, dst_ports: u32) {
    use sluice_core::wire::checksum::{update16, update32};
    room[..template.len()].copy_from_slice(template);
    let rd32 = |b: &[u8], at: usize| u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
    let rd16 = |b: &[u8], at: usize| u16::from_be_bytes([b[at], b[at + 1]]);
    let (old_src, old_port, old_dport) =
        (rd32(template, 26), rd16(template, 34), rd16(template, 36));
    let r = n / dst_ports;
    let dport = old_dport.wrapping_add((n % dst_ports) as u16);
    let src = old_src.wrapping_add(r % src_count);
    let port = 1024 + ((r / src_count) % 60000) as u16;
    room[26..30].copy_from_slice(&src.to_be_bytes());
    room[34..36].copy_from_slice(&port.to_be_bytes());
    room[36..38].copy_from_slice(&dport.to_be_bytes());
    let ip = update32(rd16(template, 24), old_src, src);
    room[24..26].copy_from_slice(&ip.to_be_bytes());
    let l4 = update16(
        update16(update32(rd16(template, 50), old_src, src), old_port, port),
        old_dport,
        dport,
    );
    room[50..52].copy_from_slice(&l4.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_core::wire::tcp;
    use std::net::Ipv4Addr;

    /// The whole exchange between a client and a server, without anything
    /// between them: SYN, SYN-ACK, request, response with FIN, FIN-ACK,
    /// last ACK; every frame checksummed.
    #[test]
    fn a_connection_completes_through_the_reflectors() {
        let c = MacAddr([2, 0, 0, 0, 0, 0xc]);
        let s = MacAddr([2, 0, 0, 0, 0, 0x5]);
        let syn = craft::tcp_v4(
            c,
            s,
            (Ipv4Addr::new(198, 18, 0, 1), 40000),
            (Ipv4Addr::new(10, 0, 0, 11), 80),
            tcp::Flags::SYN,
            CLIENT_ISN,
            0,
        );
        let mut room = vec![0u8; 2048];
        room[..syn.len()].copy_from_slice(&syn);
        let mut len = syn.len();
        let check = |room: &[u8], len: usize| {
            let ip = sluice_core::wire::ipv4::Packet::new_checked(&room[14..len]).unwrap();
            assert!(ip.verify_checksum());
            let p = ip.payload();
            let t = tcp::Packet::new_checked(&p[..usize::from(ip.total_len()) - 20]).unwrap();
            let pseudo = sluice_core::wire::checksum::pseudo_header_v4(
                ip.src_addr(),
                ip.dst_addr(),
                6,
                u32::from(ip.total_len()) - 20,
            );
            assert!(t.verify_checksum(pseudo), "TCP checksum");
        };
        let mut steps = 0;
        let mut server = true;
        loop {
            match reflect(&mut room, len, server) {
                Reflect::Reply(n) => {
                    len = n;
                    check(&room, len);
                    steps += 1;
                }
                Reflect::Completed => break,
                Reflect::Ignore => panic!(
                    "step {steps} ignored ({})",
                    if server { "server" } else { "client" }
                ),
            }
            server = !server;
            assert!(steps < 10);
        }
        assert_eq!(
            steps, 5,
            "SYN-ACK, request, response+FIN, FIN-ACK, last ACK"
        );
        assert!(!server, "the client completes it");
    }

    #[test]
    fn a_neighbour_solicitation_for_the_backend_is_answered_as_sluiced_checks_it() {
        let (sluice, member): (Ipv6Addr, Ipv6Addr) = (
            "2001:db8:2::1".parse().unwrap(),
            "2001:db8:2::11".parse().unwrap(),
        );
        let sluice_mac = MacAddr([2, 0, 0, 0, 0, 2]);
        let me = MacAddr([2, 0, 0, 0, 0, 0x11]);
        let ns = craft::neighbor_solicit(sluice_mac, sluice, member);
        let na = nd_answer(&ns, member, me).expect("answered");
        assert_eq!(&na[..6], &sluice_mac.0);
        assert_eq!(na[14 + 7], 255, "hop limit of neighbour discovery");
        let icmp = &na[54..54 + 32];
        assert_eq!((icmp[0], &icmp[8..24]), (136, &member.octets()[..]));
        let pseudo = checksum::pseudo_header_v6(member, sluice, 58, 32);
        assert!(icmpv6::Packet::new_checked(icmp)
            .unwrap()
            .verify_checksum(pseudo));
        assert_eq!(&icmp[26..32], &me.0, "target link-layer option");
        assert!(nd_answer(&ns, "2001:db8:2::12".parse().unwrap(), me).is_none());
    }

    #[test]
    fn stray_segments_are_ignored() {
        let f = craft::udp_v4(
            MacAddr([2; 6]),
            MacAddr([4; 6]),
            (Ipv4Addr::new(1, 2, 3, 4), 1),
            (Ipv4Addr::new(5, 6, 7, 8), 2),
            b"x",
        );
        let mut room = vec![0u8; 2048];
        room[..f.len()].copy_from_slice(&f);
        assert_eq!(reflect(&mut room, f.len(), true), Reflect::Ignore);
    }
}
