//! L3, per family: what the fast path and the full path read from an IPv4
//! or IPv6 header, yielding a family-tagged [`Header`]; everything above it
//! is written once over [`Ip`].

use super::l4::{rd16, wr16, TCP, UDP};
use super::{Context, DropReason};
use crate::family::{Family, V4, V6};
use crate::flow::frag::FragTable;
use crate::flow::{hash_words, Delta, FlowTable, RawRewrite};
use crate::wire::{checksum, ethernet, ipv4, ipv6, Error as WireError};

pub(super) const ETH: usize = ethernet::HEADER_LEN;

/// Offsets in the IPv4 and IPv6 headers: the `wire` views' field tables.
use ipv4::field as v4;
use ipv6::field as v6;

/// A fragment's place in its datagram.
#[derive(Debug, Clone, Copy)]
pub(super) struct Frag {
    /// The first fragment (offset 0).
    pub(super) first: bool,
    /// The datagram's identification.
    pub(super) id: u32,
}

/// What the full path reads from an IP header of either family.
#[derive(Debug, Clone, Copy)]
pub(super) struct Header<A: Family> {
    pub(super) src: A,
    pub(super) dst: A,
    /// The upper-layer protocol (after IPv6 extension headers).
    pub(super) proto: u8,
    pub(super) ttl: u8,
    /// Offset of the upper-layer header from the IP header.
    pub(super) l4: usize,
    /// Bytes of IP packet (header included).
    pub(super) total: usize,
    /// Set when the packet is a fragment.
    pub(super) frag: Option<Frag>,
}

/// A flow key read straight from a plain frame's bytes, and its hash. An
/// IPv4 key is kept as its two [`FlowKey`] words; an IPv6 key's five words
/// are read again from the frame (still in cache) when looked up, so the
/// burst's array of these stays small.
///
/// [`FlowKey`]: crate::flow::FlowKey
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Peek {
    pub(super) w: [u64; 2],
    pub(super) h: u64,
}

/// One family's L3, as the per-packet code uses it.
pub(super) trait Ip: Family {
    /// The ICMP protocol number of the family.
    const ICMP: u8;
    /// The family's flow table.
    fn flows<'a>(cx: &Context<'a>) -> &'a FlowTable<Self>;
    /// The family's fragment table.
    fn frags<'a>(cx: &Context<'a>) -> &'a FragTable<Self>;
    /// The key words of a plain TCP/UDP frame of this family (not a
    /// fragment, no extension header) for the burst's lookup pass, and
    /// their hash.
    fn peek(b: &[u8]) -> Option<(Self::Words, u64)>;
    /// The fast path's checks of a frame `peek` accepted and that holds at
    /// least [`Family::HEADER_LEN`] bytes of IP header and 20 more: the IP
    /// total length, or `None` when the full path must decide (IPv4: also
    /// for a header with options). `verified`: the NIC verified the IPv4
    /// header checksum.
    fn fast_checks(b: &[u8], verified: bool) -> Option<usize>;
    /// The full path's parse of the IP packet `ip`.
    fn parse(ip: &[u8]) -> Result<Header<Self>, DropReason>;
    /// Writes the addresses and TTL / hop limit of `rw` (and, IPv4, its
    /// header checksum).
    fn rewrite(ip: &mut [u8], rw: &RawRewrite<Self>);
}

#[inline]
fn key_words<A: Family>(b: &[u8], l4: usize, proto: u8) -> Option<(A::Words, u64)> {
    let words = words_of::<A>(b, l4, proto)?;
    let h = hash_words(words.as_ref());
    Some((words, h))
}

/// The key words of a frame (the burst's lookup pass re-reads an IPv6
/// frame's rather than keep five words per frame from its first pass);
/// zeros when the frame is too short, which no key matches.
#[inline]
pub(super) fn v6_key_words(b: &[u8]) -> [u64; 5] {
    let proto = b.get(ETH + v6::NEXT_HEADER).copied().unwrap_or(0);
    words_of::<V6>(b, ETH + V6::HEADER_LEN, proto).unwrap_or([0; 5])
}

#[inline]
fn words_of<A: Family>(b: &[u8], l4: usize, proto: u8) -> Option<A::Words> {
    let mut words = A::Words::default();
    let w = words.as_mut();
    // One bounds check for all the address words.
    let addrs = b.get(ETH + A::SRC..ETH + A::SRC + 8 * A::ADDR_WORDS)?;
    for (x, a) in w.iter_mut().zip(addrs.chunks_exact(8)) {
        *x = u64::from_be_bytes(a.try_into().ok()?);
    }
    let ports = match proto {
        TCP | UDP => u64::from(super::l4::rd32(b.get(..l4 + 4)?, l4)),
        _ => 0,
    };
    w[A::ADDR_WORDS] = ports << 8 | u64::from(proto);
    Some(words)
}

/// True when the IPv4 header `h` (its whole length, options included)
/// verifies: the common option-less header by five adds.
#[inline]
pub(super) fn v4_header_ok(h: &[u8]) -> bool {
    match h.try_into() {
        Ok(h20) => checksum::ipv4_header_ok(h20),
        Err(_) => checksum::fold(checksum::sum(h)) == 0xffff,
    }
}

impl Ip for V4 {
    const ICMP: u8 = 1;

    #[inline]
    fn flows<'a>(cx: &Context<'a>) -> &'a FlowTable<V4> {
        cx.flows
    }

    #[inline]
    fn frags<'a>(cx: &Context<'a>) -> &'a FragTable<V4> {
        &cx.frags.v4
    }

    #[inline]
    fn peek(b: &[u8]) -> Option<([u64; 2], u64)> {
        if b.len() < ETH + V4::HEADER_LEN || b[12..14] != [0x08, 0x00] || b[ETH] >> 4 != 4 {
            return None;
        }
        if rd16(b, ETH + v4::FLG_OFF) & 0x3fff != 0 {
            return None;
        }
        let hl = usize::from(b[ETH] & 0x0f) * 4;
        key_words::<V4>(b, ETH + hl, b[ETH + v4::PROTOCOL])
    }

    #[inline]
    fn fast_checks(b: &[u8], verified: bool) -> Option<usize> {
        let h: &[u8; 20] = b.get(ETH..ETH + 20)?.try_into().ok()?;
        let total = usize::from(u16::from_be_bytes([h[v4::LENGTH], h[v4::LENGTH + 1]]));
        if h[0] != 0x45 || total < 20 || ETH + total > b.len() || h[V4::TTL] <= 1 {
            return None;
        }
        if !verified && !checksum::ipv4_header_ok(h) {
            return None;
        }
        Some(total)
    }

    fn parse(ip: &[u8]) -> Result<Header<V4>, DropReason> {
        let p = ipv4::Packet::new_checked(ip).map_err(|_| DropReason::Ipv4Malformed)?;
        let frag = p.is_fragment().then(|| Frag {
            first: p.frag_offset() == 0,
            id: u32::from(p.ident()),
        });
        Ok(Header {
            src: p.src_addr(),
            dst: p.dst_addr(),
            proto: ip[v4::PROTOCOL],
            ttl: p.ttl(),
            l4: p.header_len(),
            total: usize::from(p.total_len()),
            frag,
        })
    }

    #[inline]
    fn rewrite(ip: &mut [u8], rw: &RawRewrite<V4>) {
        ip[V4::SRC..V4::SRC + 8].copy_from_slice(&rw.addrs[0].to_be_bytes());
        ip[V4::TTL] -= 1;
        let cs = rd16(ip, v4::CHECKSUM);
        wr16(ip, v4::CHECKSUM, Delta::apply(cs, rw.delta.ip));
    }
}

impl Ip for V6 {
    const ICMP: u8 = 58;

    #[inline]
    fn flows<'a>(cx: &Context<'a>) -> &'a FlowTable<V6> {
        cx.flows6
    }

    #[inline]
    fn frags<'a>(cx: &Context<'a>) -> &'a FragTable<V6> {
        &cx.frags.v6
    }

    #[inline]
    fn peek(b: &[u8]) -> Option<([u64; 5], u64)> {
        if b.len() < ETH + V6::HEADER_LEN || b[12..14] != [0x86, 0xdd] || b[ETH] >> 4 != 6 {
            return None;
        }
        let proto = b[ETH + v6::NEXT_HEADER];
        if proto != TCP && proto != UDP {
            return None;
        }
        key_words::<V6>(b, ETH + V6::HEADER_LEN, proto)
    }

    #[inline]
    fn fast_checks(b: &[u8], _verified: bool) -> Option<usize> {
        let total = 40 + usize::from(rd16(b, ETH + v6::PAYLOAD_LEN));
        if ETH + total > b.len() || b[ETH + V6::TTL] <= 1 {
            return None;
        }
        Some(total)
    }

    fn parse(ip: &[u8]) -> Result<Header<V6>, DropReason> {
        let p = ipv6::Packet::new_checked(ip).map_err(|_| DropReason::Ipv6Malformed)?;
        let ul = p.upper_layer().map_err(|e| match e {
            WireError::Malformed => DropReason::Ipv6ExtHeaders,
            _ => DropReason::Ipv6Malformed,
        })?;
        Ok(Header {
            src: p.src_addr(),
            dst: p.dst_addr(),
            proto: u8::from(ul.protocol),
            ttl: p.hop_limit(),
            l4: ul.offset,
            total: p.total_len(),
            frag: ul.fragment.map(|f| Frag {
                first: f.offset == 0,
                id: f.ident,
            }),
        })
    }

    #[inline]
    fn rewrite(ip: &mut [u8], rw: &RawRewrite<V6>) {
        for (i, w) in rw.addrs[..V6::ADDR_WORDS].iter().enumerate() {
            let at = V6::SRC + 8 * i;
            ip[at..at + 8].copy_from_slice(&w.to_be_bytes());
        }
        ip[V6::TTL] -= 1;
    }
}
