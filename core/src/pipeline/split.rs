//! IPv4 fragmentation on egress (RFC 791 3.2, RFC 1812 5.2.6): a datagram
//! without DF that is larger than its egress port's MTU leaves as
//! fragments that each fit it. The pipeline rewrites the datagram whole
//! and gives it the fate [`super::Fate::Split`]; whoever owns the buffers
//! (the worker, or control for a retried fragment) cuts it with a
//! [`Split`]: the later fragments are copied into buffers of their own,
//! then the original is cut to the first. Pure functions over bytes, so
//! the cut is unit-tested without DPDK. IPv6 never gets here: routers do
//! not fragment it (RFC 8200 5), it gets Packet Too Big.

use super::l3::ETH;
use super::l4::{rd16, wr16};
use crate::wire::checksum;

const DF: u16 = 0x4000;
const MF: u16 = 0x2000;
const OFFSET: u16 = 0x1fff;

/// How one IPv4 datagram (Ethernet frame) is cut to fit an MTU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Split {
    hl: usize,
    payload: usize,
    /// Payload bytes per fragment but the last: a multiple of 8.
    chunk: usize,
    /// The datagram's own fragment offset, in bytes (it may be a fragment).
    offset: usize,
    /// The datagram's own MF: the last piece of a fragment keeps it.
    more: bool,
    count: usize,
}

impl Split {
    /// The cut of the Ethernet + IPv4 `frame` into packets of at most `mtu`
    /// IP bytes; `None` when it may not or cannot be cut (DF set, a header
    /// too long for the MTU, an inconsistent header).
    pub fn plan(frame: &[u8], mtu: u16) -> Option<Split> {
        let ip = frame.get(ETH..)?;
        let hl = usize::from(ip.first()? & 0x0f) * 4;
        let total = usize::from(rd16(ip.get(..20)?, 2));
        if hl < 20 || total < hl || ip.len() < total {
            return None;
        }
        let ff = rd16(ip, 6);
        let chunk = usize::from(mtu).checked_sub(hl)? & !7;
        if ff & DF != 0 || chunk == 0 {
            return None;
        }
        let payload = total - hl;
        Some(Split {
            hl,
            payload,
            chunk,
            offset: usize::from(ff & OFFSET) * 8,
            more: ff & MF != 0,
            count: payload.div_ceil(chunk).max(1),
        })
    }

    /// How many fragments the datagram leaves as.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Writes fragment `k` (1 ..[`Split::count`]) of `frame` into `out`:
    /// the Ethernet header, the IP header (options that are not copied
    /// into fragments replaced by no-ops), its part of the payload. Its
    /// frame length, or `None` when `k` is past the end or `out` is short.
    pub fn write_later(&self, frame: &[u8], k: usize, out: &mut [u8]) -> Option<usize> {
        let start = k
            .checked_mul(self.chunk)
            .filter(|&s| k > 0 && s < self.payload)?;
        let n = self.chunk.min(self.payload - start);
        let head = ETH + self.hl;
        let out = out.get_mut(..head + n)?;
        out[..head].copy_from_slice(frame.get(..head)?);
        later_options(&mut out[ETH + 20..head]);
        out[head..].copy_from_slice(frame.get(head + start..head + start + n)?);
        self.finish(&mut out[ETH..], start, n, k + 1 < self.count);
        Some(head + n)
    }

    /// Cuts `frame` to its first fragment in place (after the later ones
    /// were written from it) and returns its frame length.
    pub fn cut_first(&self, frame: &mut [u8]) -> usize {
        let n = self.chunk.min(self.payload);
        self.finish(&mut frame[ETH..], 0, n, self.count > 1);
        ETH + self.hl + n
    }

    /// Length, offset, MF and checksum of the fragment of `n` payload
    /// bytes at `start`.
    fn finish(&self, ip: &mut [u8], start: usize, n: usize, more_here: bool) {
        wr16(ip, 2, (self.hl + n) as u16);
        let ff = rd16(ip, 6) & DF;
        let at = ((self.offset + start) / 8) as u16 & OFFSET;
        let mf = if more_here || self.more { MF } else { 0 };
        wr16(ip, 6, ff | mf | at);
        wr16(ip, 10, 0);
        let cs = checksum::checksum(&ip[..self.hl]);
        wr16(ip, 10, cs);
    }
}

/// The options of a fragment after the first: those without the copied
/// flag become no-ops (RFC 791: "copied" options go into every fragment),
/// as Linux's `ip_options_fragment` does. A malformed list ends there.
fn later_options(opts: &mut [u8]) {
    let mut i = 0;
    while i < opts.len() {
        match opts[i] {
            0 => return,
            1 => i += 1,
            t => {
                let n = opts.get(i + 1).map_or(0, |&n| usize::from(n));
                if n < 2 || i + n > opts.len() {
                    opts[i..].fill(0);
                    return;
                }
                if t & 0x80 == 0 {
                    opts[i..i + n].fill(1);
                }
                i += n;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Ethernet + IPv4 frame: `opts` after the fixed header, `payload`
    /// counting up, flags word `ff`.
    fn datagram(opts: &[u8], payload: usize, ff: u16) -> Vec<u8> {
        let hl = 20 + opts.len();
        let mut f = vec![0xaa; ETH];
        f[12..14].copy_from_slice(&[8, 0]);
        let mut ip = vec![0u8; hl];
        ip[0] = 0x40 | (hl / 4) as u8;
        wr16(&mut ip, 2, (hl + payload) as u16);
        wr16(&mut ip, 4, 0x1234);
        wr16(&mut ip, 6, ff);
        ip[8] = 63;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[10, 0, 0, 11]);
        ip[16..20].copy_from_slice(&[198, 51, 100, 7]);
        ip[20..].copy_from_slice(opts);
        let cs = checksum::checksum(&ip);
        wr16(&mut ip, 10, cs);
        f.extend(ip);
        f.extend((0..payload).map(|i| i as u8));
        f
    }

    /// Every fragment of `frame` at `mtu`: (flags word, header, payload).
    fn cut(frame: &[u8], mtu: u16) -> Vec<(u16, Vec<u8>, Vec<u8>)> {
        let s = Split::plan(frame, mtu).expect("splittable");
        let mut out = Vec::new();
        for k in 1..s.count() {
            let mut b = vec![0u8; 2048];
            let n = s.write_later(frame, k, &mut b).expect("in range");
            b.truncate(n);
            out.push(b);
        }
        assert_eq!(s.write_later(frame, s.count(), &mut [0; 2048]), None);
        let mut first = frame.to_vec();
        let n = s.cut_first(&mut first);
        first.truncate(n);
        out.insert(0, first);
        out.into_iter()
            .map(|f| {
                let ip = &f[ETH..];
                let hl = usize::from(ip[0] & 15) * 4;
                assert!(ip.len() <= usize::from(mtu), "fits the MTU");
                assert_eq!(usize::from(rd16(ip, 2)), ip.len(), "total length");
                assert_eq!(checksum::checksum(&ip[..hl]), 0, "header checksum");
                assert_eq!(&f[..ETH], &frame[..ETH], "same Ethernet header");
                (rd16(ip, 6), ip[..hl].to_vec(), ip[hl..].to_vec())
            })
            .collect()
    }

    #[test]
    fn pieces_fit_and_reassemble_to_the_datagram() {
        let frame = datagram(&[], 1472, 0);
        let parts = cut(&frame, 1280);
        assert_eq!(parts.len(), 2);
        let mut whole = Vec::new();
        for (i, (ff, _, p)) in parts.iter().enumerate() {
            assert_eq!(usize::from(ff & OFFSET) * 8, whole.len(), "offset");
            assert_eq!(ff & MF != 0, i + 1 < parts.len(), "MF on all but the last");
            if i + 1 < parts.len() {
                assert_eq!(p.len() % 8, 0);
            }
            whole.extend_from_slice(p);
        }
        assert_eq!(whole, frame[ETH + 20..]);
    }

    #[test]
    fn a_fragment_is_cut_at_its_own_offset_and_keeps_its_mf() {
        // The middle fragment of someone else's datagram: offset 1480, MF.
        let frame = datagram(&[], 1480, MF | 185);
        let parts = cut(&frame, 576);
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[0].0 & OFFSET, 185);
        assert!(parts.iter().all(|p| p.0 & MF != 0), "the last keeps MF");
        let last = &parts[2];
        assert_eq!(usize::from(last.0 & OFFSET) * 8, 1480 + 2 * 552);
    }

    #[test]
    fn options_not_copied_become_no_ops_after_the_first() {
        // Record route (7, not copied), then a copied option (0x94 router
        // alert), padded with EOL.
        let opts = [7, 7, 4, 0, 0, 0, 0, 0x94, 4, 0, 0, 0];
        let parts = cut(&datagram(&opts, 1000, 0), 576);
        assert_eq!(&parts[0].1[20..], &opts, "the first keeps them all");
        assert_eq!(&parts[1].1[20..], &[1, 1, 1, 1, 1, 1, 1, 0x94, 4, 0, 0, 0]);
    }

    #[test]
    fn df_a_short_mtu_or_a_bad_header_cannot_be_cut() {
        assert_eq!(Split::plan(&datagram(&[], 1472, DF), 1280), None);
        assert_eq!(Split::plan(&datagram(&[0; 40], 100, 0), 60), None);
        let mut short = datagram(&[], 100, 0);
        short.truncate(ETH + 50);
        assert_eq!(Split::plan(&short, 1280), None);
        assert_eq!(Split::plan(&short[..ETH + 10], 1280), None);
        // A datagram that fits is one piece, unchanged but for MF/offset.
        let small = datagram(&[], 100, 0);
        assert_eq!(cut(&small, 1280).len(), 1);
    }

    #[test]
    fn malformed_options_end_the_list() {
        let mut o = [7, 9, 0, 0, 0, 0, 0, 0];
        later_options(&mut o);
        assert_eq!(o, [0; 8]);
        let mut o = [1, 0x83, 3, 5, 0, 0, 0, 0];
        later_options(&mut o);
        assert_eq!(o, [1, 0x83, 3, 5, 0, 0, 0, 0]);
    }
}
