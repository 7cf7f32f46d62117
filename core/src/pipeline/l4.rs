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
