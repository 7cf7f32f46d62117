//! Flow ageing, run by the control thread with an injected clock: a sweep
//! visits a slice of the table per call, removes flows idle longer than
//! their state's timeout (divided by `--timer-scale`), and reports the ones
//! that should be reset at both ends. Also builds those RST segments.

use super::tcp::{self, State};
use super::{FlowInfo, FlowKey, FlowTable, Reclaimer};
use crate::family::{Dir, Family};
use crate::wire::{checksum, ethernet, ipv4, ipv6, tcp as wtcp, EtherType, IpProtocol, MacAddr};
use std::net::IpAddr;

/// How long (ms) `f` may idle in its state, timers divided by `scale`.
pub fn idle_limit<A: Family>(f: &FlowInfo<A>, scale: u32) -> u64 {
    let t = if f.snat {
        tcp::snat_timeout(f.state, f.idle_timeout, f.rfc_timers)
    } else {
        tcp::timeout(f.state, f.idle_timeout)
    };
    t.as_millis() as u64 / u64::from(scale.max(1))
}

/// True when `f` has idled out at tick `now` (ms).
pub fn expired<A: Family>(f: &FlowInfo<A>, now: u32, scale: u32) -> bool {
    u64::from(now.wrapping_sub(f.last_seen)) > idle_limit(f, scale)
}

/// True when an expiring flow gets a RST at both ends.
pub fn wants_reset<A: Family>(f: &FlowInfo<A>) -> bool {
    f.tcp_reset && f.state == State::Established
}

/// Walks the table a slice at a time.
#[derive(Debug, Default)]
pub struct Ager {
    pos: u32,
}

impl Ager {
    /// An ager starting at entry 0.
    pub fn new() -> Ager {
        Ager::default()
    }

    /// Visits up to `budget` entries from where the last sweep stopped,
    /// removes every expired flow and hands it to `on_expired` first.
    /// Returns how many were removed.
    pub fn sweep<A: Family>(
        &mut self,
        t: &FlowTable<A>,
        r: &mut Reclaimer,
        now: u32,
        scale: u32,
        budget: u32,
        mut on_expired: impl FnMut(&FlowInfo<A>),
    ) -> usize {
        let hw = t.high_water();
        if hw == 0 {
            return 0;
        }
        let mut removed = 0;
        for _ in 0..budget.min(hw) {
            if self.pos >= hw {
                self.pos = 0;
            }
            let idx = self.pos;
            self.pos += 1;
            let Some(f) = t.info(idx) else { continue };
            if f.kind() == super::FlowKind::Snat && f.key[0].proto == 17 {
                // A UDP SNAT flow keeps its cone mapping alive.
                let cone = FlowKey {
                    dport: 0,
                    proto: crate::lb::snat::CONE,
                    ..f.key[0]
                };
                if let Some((m, crate::family::Dir::Original)) = t.lookup(&cone) {
                    t.entry(m).refresh(f.last_seen);
                }
            }
            if expired(&f, now, scale) {
                on_expired(&f);
                if r.remove(t, idx) {
                    removed += 1;
                }
            }
        }
        removed
    }
}

/// Frame length of an IPv4 RST built by [`build_rst`].
pub const RST_LEN: usize = ethernet::HEADER_LEN + 20 + 20;
/// Frame length of an IPv6 RST.
pub const RST_LEN_V6: usize = ethernet::HEADER_LEN + 40 + 20;

/// Writes an Ethernet + IP + TCP RST|ACK with `key`'s addresses and ports
/// into `buf` (at least [`RST_LEN_V6`] bytes); the destination MAC is left
/// for whoever resolves the next hop. Returns the frame length (0 only for
/// a key whose addresses are of two families, which no key has).
pub fn build_rst<A: Family>(
    buf: &mut [u8],
    src_mac: MacAddr,
    key: &FlowKey<A>,
    seq: u32,
    ack: u32,
) -> usize {
    let len = if A::V6 { RST_LEN_V6 } else { RST_LEN };
    let buf = &mut buf[..len];
    buf.fill(0);
    ethernet::Repr {
        src: src_mac,
        dst: MacAddr([0; 6]),
        ethertype: if A::V6 {
            EtherType::Ipv6
        } else {
            EtherType::Ipv4
        },
    }
    .emit(&mut ethernet::Frame::new_unchecked(&mut buf[..]));
    let ip_at = ethernet::HEADER_LEN;
    let pseudo = match (key.src.into(), key.dst.into()) {
        (IpAddr::V4(src), IpAddr::V4(dst)) => {
            ipv4::Repr {
                src,
                dst,
                protocol: IpProtocol::Tcp,
                payload_len: 20,
                ttl: 64,
            }
            .emit(&mut ipv4::Packet::new_unchecked(&mut buf[ip_at..]));
            checksum::pseudo_header_v4(src, dst, 6, 20)
        }
        (IpAddr::V6(src), IpAddr::V6(dst)) => {
            ipv6::Repr {
                src,
                dst,
                next_header: IpProtocol::Tcp,
                payload_len: 20,
                hop_limit: 64,
            }
            .emit(&mut ipv6::Packet::new_unchecked(&mut buf[ip_at..]));
            checksum::pseudo_header_v6(src, dst, 6, 20)
        }
        // A key's addresses are of one family: nothing to build otherwise.
        _ => return 0,
    };
    let mut t = wtcp::Packet::new_unchecked(&mut buf[ip_at + A::HEADER_LEN..]);
    t.set_src_port(key.sport);
    t.set_dst_port(key.dport);
    t.set_seq(seq);
    t.set_ack(ack);
    t.set_header_len_and_flags(20, wtcp::Flags::RST | wtcp::Flags::ACK);
    t.set_window(0);
    t.fill_checksum(pseudo);
    len
}

/// The two RSTs for an expiring flow: (direction, key, seq, ack), where
/// direction 0 goes to the member (as the client's packets do) and 1 to
/// the client (as the member's replies do). Each carries the sequence number
/// its receiver expects next and acknowledges what it sent.
pub fn resets<A: Family>(f: &FlowInfo<A>) -> [(Dir, FlowKey<A>, u32, u32); 2] {
    [
        (Dir::Original, f.rewrite[0].to, f.next_seq[0], f.next_seq[1]),
        (Dir::Reply, f.rewrite[1].to, f.next_seq[1], f.next_seq[0]),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::family::Dir;
    use crate::flow::NewFlow;
    use crate::neigh::PortIndex;
    use crate::wire::tcp::Flags;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn flow(i: u8, state: State, idle_s: u64) -> NewFlow {
        let k0 = FlowKey {
            src: Ipv4Addr::new(198, 51, 100, i),
            dst: Ipv4Addr::new(203, 0, 113, 10),
            sport: 40000,
            dport: 80,
            proto: 6,
        };
        let k1 = FlowKey {
            src: Ipv4Addr::new(10, 0, 0, 11),
            dst: k0.src,
            sport: 8080,
            dport: 40000,
            proto: 6,
        };
        NewFlow {
            key: [k0, k1],
            egress: [PortIndex::new(1), PortIndex::new(0)],
            next_hop: [k1.src, Ipv4Addr::new(203, 0, 113, 254)],
            state,
            tcp_reset: true,
            idle_timeout: Duration::from_secs(idle_s),
            rule: crate::lb::snat::RuleRef::Service(0),
            member: 0,
            now: 0,
            generation: false,
            snat: false,
            rfc_timers: false,
        }
    }

    fn sweep_at(t: &FlowTable, r: &mut Reclaimer, now: u32, scale: u32) -> Vec<FlowInfo> {
        let mut out = Vec::new();
        Ager::new().sweep(t, r, now, scale, 1000, |f| out.push(*f));
        out
    }

    #[test]
    fn half_open_flows_go_after_seconds_established_after_the_idle_timeout() {
        let t = FlowTable::new(8, 0);
        let mut r = Reclaimer::new();
        t.insert(&flow(1, State::SynSent, 240)).unwrap();
        t.insert(&flow(2, State::Established, 240)).unwrap();
        t.insert(&flow(3, State::Other, 240)).unwrap();
        assert!(sweep_at(&t, &mut r, 4_000, 1).is_empty());
        let gone = sweep_at(&t, &mut r, 5_001, 1);
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].state, State::SynSent);
        assert!(!wants_reset(&gone[0]), "a half-open flow is not reset");
        assert!(sweep_at(&t, &mut r, 240_000, 1).is_empty());
        let gone = sweep_at(&t, &mut r, 240_001, 1);
        assert_eq!(gone.len(), 2);
        let est = gone.iter().find(|f| f.state == State::Established).unwrap();
        assert!(wants_reset(est));
        assert!(t.is_empty());
    }

    #[test]
    fn the_timer_scale_divides_and_a_packet_restarts_the_clock() {
        let t = FlowTable::new(8, 0);
        let mut r = Reclaimer::new();
        let idx = t.insert(&flow(1, State::Established, 240)).unwrap();
        t.entry(idx).touch(Dir::Original, 2_000);
        assert!(sweep_at(&t, &mut r, 2_000 + 2_400, 100).is_empty());
        assert_eq!(sweep_at(&t, &mut r, 2_000 + 2_401, 100).len(), 1);
    }

    #[test]
    fn rsts_carry_what_each_end_expects() {
        let t = FlowTable::new(8, 0);
        let idx = t.insert(&flow(1, State::Established, 240)).unwrap();
        t.entry(idx).track_seq(Dir::Original, 1000);
        t.entry(idx).track_seq(Dir::Reply, 5000);
        let f = t.info(idx).unwrap();
        let [(d0, k0, s0, a0), (d1, k1, s1, a1)] = resets(&f);
        assert_eq!(
            (d0, k0.dst, k0.dport, s0, a0),
            (Dir::Original, Ipv4Addr::new(10, 0, 0, 11), 8080, 1000, 5000)
        );
        assert_eq!(
            (d1, k1.src, k1.sport, k1.dst, s1, a1),
            (
                Dir::Reply,
                Ipv4Addr::new(203, 0, 113, 10),
                80,
                f.key[0].src,
                5000,
                1000
            )
        );
        let mut buf = [0u8; 128];
        let n = build_rst(&mut buf, MacAddr([2, 0, 0, 0, 0, 1]), &k1, s1, a1);
        let ip = ipv4::Packet::new_checked(&buf[14..n]).unwrap();
        assert!(ip.verify_checksum());
        let tcp = wtcp::Packet::new_checked(ip.payload()).unwrap();
        assert_eq!(tcp.flags(), Flags::RST | Flags::ACK);
        assert_eq!((tcp.seq(), tcp.ack()), (5000, 1000));
        assert!(tcp.verify_checksum(checksum::pseudo_header_v4(k1.src, k1.dst, 6, 20)));
    }

    #[test]
    fn rfc_timers_keep_a_reset_or_half_open_snat_flow_four_minutes() {
        let t = FlowTable::new(8, 0);
        let mut r = Reclaimer::new();
        let rfc = |i, state| NewFlow {
            snat: true,
            rfc_timers: true,
            ..flow(i, state, 124 * 60)
        };
        t.insert(&rfc(1, State::Reset)).unwrap();
        t.insert(&rfc(2, State::SynSent)).unwrap();
        t.insert(&rfc(3, State::Established)).unwrap();
        assert!(
            sweep_at(&t, &mut r, 15_001, 1).is_empty(),
            "not the Azure 15 s"
        );
        assert!(sweep_at(&t, &mut r, 240_000, 1).is_empty());
        assert_eq!(sweep_at(&t, &mut r, 240_001, 1).len(), 2);
        assert!(sweep_at(&t, &mut r, 124 * 60_000, 1).is_empty());
        assert_eq!(sweep_at(&t, &mut r, 124 * 60_000 + 1, 1).len(), 1);
    }

    #[test]
    fn snat_ports_are_released_15s_after_a_rst_240s_after_both_fins_else_when_idle() {
        let t = FlowTable::new(8, 0);
        let mut r = Reclaimer::new();
        let snat = |i, state, idle| NewFlow {
            snat: true,
            rfc_timers: false,
            ..flow(i, state, idle)
        };
        t.insert(&snat(1, State::Reset, 1200)).unwrap();
        t.insert(&snat(2, State::Closing, 1200)).unwrap();
        t.insert(&snat(3, State::Established, 1200)).unwrap();
        // Inbound flows in the same states go sooner (5 s and 10 s).
        t.insert(&flow(4, State::Reset, 1200)).unwrap();
        assert_eq!(sweep_at(&t, &mut r, 5_001, 1).len(), 1, "the inbound reset");
        assert!(sweep_at(&t, &mut r, 15_000, 1).is_empty());
        let gone = sweep_at(&t, &mut r, 15_001, 1);
        assert_eq!((gone.len(), gone[0].state), (1, State::Reset));
        assert!(sweep_at(&t, &mut r, 240_000, 1).is_empty());
        let gone = sweep_at(&t, &mut r, 240_001, 1);
        assert_eq!((gone.len(), gone[0].state), (1, State::Closing));
        assert!(sweep_at(&t, &mut r, 1_200_000, 1).is_empty());
        let gone = sweep_at(&t, &mut r, 1_200_001, 1);
        assert_eq!(gone.len(), 1);
        assert!(
            wants_reset(&gone[0]),
            "tcp_reset: an idle SNAT flow is reset"
        );
        // Scaled for labs: 15 s / 100.
        t.insert(&snat(5, State::Reset, 1200)).unwrap();
        assert_eq!(sweep_at(&t, &mut r, 151, 100).len(), 1);
    }

    #[test]
    fn a_udp_snat_flow_keeps_its_cone_mapping_alive() {
        let t = FlowTable::new(8, 0);
        let mut r = Reclaimer::new();
        let member = FlowKey {
            src: Ipv4Addr::new(10, 0, 0, 11),
            dst: Ipv4Addr::new(198, 51, 100, 7),
            sport: 5000,
            dport: 53,
            proto: 17,
        };
        let public = FlowKey {
            src: member.dst,
            dst: Ipv4Addr::new(203, 0, 113, 10),
            sport: 53,
            dport: 1024,
            proto: 17,
        };
        let base = NewFlow {
            snat: true,
            rfc_timers: false,
            tcp_reset: false,
            ..flow(1, State::Other, 60)
        };
        let mapping = NewFlow {
            key: [
                FlowKey {
                    dport: 0,
                    proto: crate::lb::snat::CONE,
                    ..member
                },
                FlowKey {
                    sport: 0,
                    proto: crate::lb::snat::CONE,
                    ..public
                },
            ],
            ..base
        };
        let m = t.insert(&mapping).unwrap();
        let f = t
            .insert(&NewFlow {
                key: [member, public],
                ..base
            })
            .unwrap();
        // The flow sees a packet at 50 s; the mapping saw none since 0.
        t.entry(f).touch(Dir::Original, 50_000);
        assert!(sweep_at(&t, &mut r, 59_000, 1).is_empty());
        assert_eq!(
            t.info(m).unwrap().last_seen,
            50_000,
            "refreshed by its flow"
        );
        assert!(sweep_at(&t, &mut r, 61_000, 1).is_empty(), "both live on");
        assert_eq!(sweep_at(&t, &mut r, 110_001, 1).len(), 2, "then both go");
    }
}
