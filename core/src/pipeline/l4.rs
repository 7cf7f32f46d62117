//! L4, written once for both families: the ports (and TCP flags and the
//! sequence number after the segment) of a TCP or UDP header, and the
//! byte helpers the per-packet code reads fields with.

use crate::flow::tcp;
use crate::wire::tcp::Flags;

pub(super) const TCP: u8 = 6;
pub(super) const UDP: u8 = 17;

/// Offsets in the TCP and UDP headers, from the `wire` views' field tables.
pub(super) mod field {
    use crate::wire::{tcp, udp};
    /// Both headers start with source then destination port.
    pub const PORTS: usize = tcp::field::SRC_PORT;
    /// TCP: sequence number.
    pub const TCP_SEQ: usize = tcp::field::SEQ;
    /// TCP: acknowledgment number.
    pub const TCP_ACK: usize = tcp::field::ACK;
    /// TCP: window.
    pub const TCP_WINDOW: usize = tcp::field::WINDOW;
    /// TCP: data offset (high nibble of the offset/flags word).
    pub const TCP_OFF: usize = tcp::field::OFF_FLAGS;
    /// TCP: flags (low byte of that word).
    pub const TCP_FLAGS: usize = tcp::field::OFF_FLAGS + 1;
    /// TCP: checksum.
    pub const TCP_CSUM: usize = tcp::field::CHECKSUM;
    /// UDP: checksum.
    pub const UDP_CSUM: usize = udp::field::CHECKSUM;
    const _: () = assert!(udp::field::SRC_PORT == PORTS);
}

#[inline(always)]
pub(super) fn rd16(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}
#[inline(always)]
pub(super) fn wr16(b: &mut [u8], at: usize, v: u16) {
    b[at..at + 2].copy_from_slice(&v.to_be_bytes());
}
#[inline(always)]
pub(super) fn rd32(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// What the L4 header told us.
#[derive(Clone, Copy)]
pub(super) struct L4 {
    pub(super) sport: u16,
    pub(super) dport: u16,
    /// TCP only: the flags' class.
    pub(super) flags: tcp::Class,
    /// TCP only: the sequence number after this segment.
    pub(super) seq_end: u32,
}

impl L4 {
    /// The fast path's plain ACK (or UDP datagram, `seq_end` 0): it reads
    /// nothing of the ports, and leaves them 0.
    #[inline(always)]
    pub(super) fn ack(seq_end: u32) -> L4 {
        L4 {
            sport: 0,
            dport: 0,
            flags: tcp::Class::Ack,
            seq_end,
        }
    }

    /// The fast path's TCP segment with SYN, FIN or RST: `seq_end` counts
    /// the payload only, and each of SYN and FIN takes one more.
    #[cold]
    pub(super) fn flagged(f: Flags, seq_end: u32) -> L4 {
        let syn_fin = u32::from(f.contains(Flags::SYN)) + u32::from(f.contains(Flags::FIN));
        L4 {
            sport: 0,
            dport: 0,
            flags: tcp::classify(f),
            seq_end: seq_end.wrapping_add(syn_fin),
        }
    }
}

/// A TCP window scale no option gives.
pub(super) const NO_WSCALE: u8 = 15;

/// The window scale option of the TCP header `t` (RFC 7323: a shift above
/// 14 is taken as 14), or [`NO_WSCALE`]. Only SYNs carry it.
pub(super) fn wscale(t: &[u8]) -> u8 {
    let off = t.get(field::TCP_OFF).map_or(0, |o| usize::from(o >> 4) * 4);
    let opts = t.get(20..off).unwrap_or(&[]);
    let mut i = 0;
    while let Some(&kind) = opts.get(i) {
        match kind {
            0 => break,
            1 => i += 1,
            _ => {
                let Some(&len) = opts.get(i + 1) else { break };
                if kind == 3 && len == 3 {
                    return opts.get(i + 2).map_or(NO_WSCALE, |&s| s.min(14));
                }
                if len < 2 {
                    break;
                }
                i += usize::from(len);
            }
        }
    }
    NO_WSCALE
}

/// Reads ports (and TCP flags) at `l4` of a packet whose IP payload is
/// `payload_len` bytes. `None` when the header does not fit. Always
/// inlined: the fast path and the full path both call it, and a call costs
/// the fast path more than the copy.
#[inline(always)]
pub(super) fn parse(b: &[u8], l4: usize, payload_len: usize, proto: u8) -> Option<L4> {
    match proto {
        TCP => {
            if payload_len < 20 || b.len() < l4 + 20 {
                return None;
            }
            let off = usize::from(b[l4 + field::TCP_OFF] >> 4) * 4;
            if off < 20 || off > payload_len {
                return None;
            }
            let f = Flags(b[l4 + field::TCP_FLAGS]);
            let seq = rd32(b, l4 + field::TCP_SEQ);
            let syn_fin = u32::from(f.contains(Flags::SYN)) + u32::from(f.contains(Flags::FIN));
            Some(L4 {
                sport: rd16(b, l4),
                dport: rd16(b, l4 + 2),
                flags: tcp::classify(f),
                seq_end: seq
                    .wrapping_add((payload_len - off) as u32)
                    .wrapping_add(syn_fin),
            })
        }
        UDP => {
            if payload_len < 8 || b.len() < l4 + 8 {
                return None;
            }
            Some(L4 {
                sport: rd16(b, l4),
                dport: rd16(b, l4 + 2),
                flags: tcp::Class::Ack,
                seq_end: 0,
            })
        }
        _ => Some(L4 {
            sport: 0,
            dport: 0,
            flags: tcp::Class::Ack,
            seq_end: 0,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(opts: &[u8]) -> Vec<u8> {
        let mut t = vec![0u8; 20];
        t[field::TCP_OFF] = (((20 + opts.len()) / 4) as u8) << 4;
        t.extend_from_slice(opts);
        t
    }

    #[test]
    fn window_scale_is_found_among_the_options() {
        // MSS, SACK permitted, timestamps, NOP, window scale 7 (Linux's SYN).
        let linux = [
            2, 4, 5, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7,
        ];
        assert_eq!(wscale(&header(&linux)), 7);
        assert_eq!(wscale(&header(&[1, 3, 3, 15])), 14, "capped at 14");
        assert_eq!(wscale(&header(&[2, 4, 5, 0xb4])), NO_WSCALE);
        assert_eq!(wscale(&header(&[0, 3, 3, 7])), NO_WSCALE, "after the end");
        assert_eq!(wscale(&header(&[8, 0, 3, 3])), NO_WSCALE, "bad length");
        assert_eq!(wscale(&header(&[3, 3])), NO_WSCALE, "truncated");
        assert_eq!(wscale(&[0x50]), NO_WSCALE, "header cut short");
    }
}
