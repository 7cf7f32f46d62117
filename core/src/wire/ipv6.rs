//! IPv6 (RFC 8200): fixed header, and a walk over the hop-by-hop, routing,
//! destination-options and fragment extension headers to the upper layer.

use super::{read_u16, write_u16, Error, Field, IpProtocol, Result};
use core::net::Ipv6Addr;

/// Byte offsets of the header's fields, named as the RFC names them: the
/// views below and the per-packet code read fields through these.
#[allow(missing_docs)]
pub mod field {
    use super::Field;
    pub const VER_TC_FL: Field = 0..4;
    pub const PAYLOAD_LEN: usize = 4;
    pub const NEXT_HEADER: usize = 6;
    pub const HOP_LIMIT: usize = 7;
    pub const SRC: Field = 8..24;
    pub const DST: Field = 24..40;
}

/// Length of the fixed header.
pub const HEADER_LEN: usize = 40;
/// Extension headers walked before giving up (a hostile chain is `Malformed`).
const MAX_EXT_HEADERS: usize = 8;

/// Where the upper-layer header starts, and the fragment header if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpperLayer {
    /// Upper-layer protocol (after every skipped extension header).
    pub protocol: IpProtocol,
    /// Offset of the upper-layer header from the start of the IPv6 header.
    pub offset: usize,
    /// The fragment header, when the packet is a fragment.
    pub fragment: Option<Fragment>,
}

/// Fields of an IPv6 fragment header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fragment {
    /// Offset in bytes.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
    /// Identification.
    pub ident: u32,
}

/// A view of an IPv6 packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps, checking version and payload length.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }
    /// Ok when the fixed header and the payload length fit.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if b[0] >> 4 != 6 {
            return Err(Error::Malformed);
        }
        if b.len() < self.total_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }
    /// 40 + payload length.
    pub fn total_len(&self) -> usize {
        HEADER_LEN + usize::from(self.payload_len())
    }
    /// Payload length field.
    pub fn payload_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PAYLOAD_LEN)
    }
    /// Next header of the fixed header.
    pub fn next_header(&self) -> IpProtocol {
        self.buffer.as_ref()[field::NEXT_HEADER].into()
    }
    /// Hop limit.
    pub fn hop_limit(&self) -> u8 {
        self.buffer.as_ref()[field::HOP_LIMIT]
    }
    /// Source address.
    pub fn src_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::SRC])
    }
    /// Destination address.
    pub fn dst_addr(&self) -> Ipv6Addr {
        addr(&self.buffer.as_ref()[field::DST])
    }
    /// Bytes after the fixed header, up to the payload length.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..self.total_len()]
    }

    /// Skips hop-by-hop, routing, destination-options and fragment headers.
    /// A non-first fragment stops the walk: its upper-layer header is elsewhere.
    pub fn upper_layer(&self) -> Result<UpperLayer> {
        let b = &self.buffer.as_ref()[..self.total_len()];
        let mut nh = self.next_header();
        let mut off = HEADER_LEN;
        let mut fragment = None;
        for _ in 0..MAX_EXT_HEADERS {
            match nh {
                IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts => {
                    if b.len() < off + 2 {
                        return Err(Error::Truncated);
                    }
                    let len = (usize::from(b[off + 1]) + 1) * 8;
                    if b.len() < off + len {
                        return Err(Error::Truncated);
                    }
                    nh = b[off].into();
                    off += len;
                }
                IpProtocol::Ipv6Frag => {
                    if b.len() < off + 8 {
                        return Err(Error::Truncated);
                    }
                    let fo = read_u16(b, off + 2);
                    let frag = Fragment {
                        offset: fo & 0xfff8,
                        more: fo & 1 == 1,
                        ident: super::read_u32(b, off + 4),
                    };
                    nh = b[off].into();
                    off += 8;
                    fragment = Some(frag);
                    if frag.offset != 0 {
                        break;
                    }
                }
                _ => break,
            }
        }
        if matches!(
            nh,
            IpProtocol::HopByHop | IpProtocol::Ipv6Route | IpProtocol::Ipv6Opts
        ) && fragment.is_none_or(|f| f.offset == 0)
        {
            return Err(Error::Malformed); // chain longer than we walk
        }
        Ok(UpperLayer {
            protocol: nh,
            offset: off,
            fragment,
        })
    }
}

fn addr(b: &[u8]) -> Ipv6Addr {
    let mut a = [0u8; 16];
    a.copy_from_slice(&b[..16]);
    Ipv6Addr::from(a)
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets version 6, traffic class 0, flow label 0.
    pub fn set_version(&mut self) {
        self.buffer.as_mut()[field::VER_TC_FL].copy_from_slice(&[0x60, 0, 0, 0])
    }
    /// Sets the payload length.
    pub fn set_payload_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::PAYLOAD_LEN, v)
    }
    /// Sets the next header.
    pub fn set_next_header(&mut self, p: IpProtocol) {
        self.buffer.as_mut()[field::NEXT_HEADER] = p.into()
    }
    /// Sets the hop limit.
    pub fn set_hop_limit(&mut self, v: u8) {
        self.buffer.as_mut()[field::HOP_LIMIT] = v
    }
    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.octets())
    }
    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.octets())
    }
    /// Bytes after the fixed header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let t = self.total_len();
        &mut self.buffer.as_mut()[HEADER_LEN..t]
    }
}

/// An IPv6 fixed header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source.
    pub src: Ipv6Addr,
    /// Destination.
    pub dst: Ipv6Addr,
    /// Next header.
    pub next_header: IpProtocol,
    /// Payload length.
    pub payload_len: usize,
    /// Hop limit.
    pub hop_limit: u8,
}

impl Repr {
    /// Parses a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Repr {
        Repr {
            src: p.src_addr(),
            dst: p.dst_addr(),
            next_header: p.next_header(),
            payload_len: usize::from(p.payload_len()),
            hop_limit: p.hop_limit(),
        }
    }
    /// Writes the 40-byte fixed header.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_version();
        p.set_payload_len(self.payload_len as u16);
        p.set_next_header(self.next_header);
        p.set_hop_limit(self.hop_limit);
        p.set_src_addr(self.src);
        p.set_dst_addr(self.dst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(next: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(payload.len() as u16).to_be_bytes());
        v.extend_from_slice(&[next, 64]);
        v.extend_from_slice(&"2001:db8:1::100".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(&"2001:db8:1::1".parse::<Ipv6Addr>().unwrap().octets());
        v.extend_from_slice(payload);
        v
    }

    #[test]
    fn parses_fixed_header() {
        let b = header(17, &[0; 8]);
        let p = Packet::new_checked(&b[..]).unwrap();
        let r = Repr::parse(&p);
        assert_eq!(r.src, "2001:db8:1::100".parse::<Ipv6Addr>().unwrap());
        assert_eq!(r.next_header, IpProtocol::Udp);
        assert_eq!(r.payload_len, 8);
        let ul = p.upper_layer().unwrap();
        assert_eq!(
            (ul.protocol, ul.offset, ul.fragment),
            (IpProtocol::Udp, 40, None)
        );
    }

    #[test]
    fn skips_extension_headers() {
        // hop-by-hop (8 bytes) -> dest opts (16 bytes) -> routing (8) -> TCP
        let mut ext = vec![60, 0, 1, 4, 0, 0, 0, 0];
        ext.extend_from_slice(&[43, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[6, 0, 0, 0, 0, 0, 0, 0]);
        ext.extend_from_slice(&[0; 20]);
        let b = header(0, &ext);
        let ul = Packet::new_checked(&b[..]).unwrap().upper_layer().unwrap();
        assert_eq!(ul.protocol, IpProtocol::Tcp);
        assert_eq!(ul.offset, 40 + 8 + 16 + 8);
    }

    #[test]
    fn fragment_header() {
        // First fragment: offset 0, M=1; UDP follows.
        let first = header(
            44,
            &[17, 0, 0x00, 0x01, 0, 0, 0x12, 0x34, 0, 0, 0, 0, 0, 0, 0, 0],
        );
        let ul = Packet::new_checked(&first[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(ul.protocol, IpProtocol::Udp);
        assert_eq!(ul.offset, 48);
        assert_eq!(
            ul.fragment,
            Some(Fragment {
                offset: 0,
                more: true,
                ident: 0x1234
            })
        );
        // Later fragment: offset 1232, last.
        let later = header(44, &[17, 0, 0x04, 0xd0, 0, 0, 0x12, 0x34, 1, 2, 3, 4]);
        let ul = Packet::new_checked(&later[..])
            .unwrap()
            .upper_layer()
            .unwrap();
        assert_eq!(
            ul.fragment,
            Some(Fragment {
                offset: 1232,
                more: false,
                ident: 0x1234
            })
        );
    }

    #[test]
    fn rejects_bad_input() {
        let b = header(17, &[0; 8]);
        assert_eq!(Packet::new_checked(&b[..39]).unwrap_err(), Error::Truncated);
        assert_eq!(Packet::new_checked(&b[..47]).unwrap_err(), Error::Truncated);
        let mut v4 = b.clone();
        v4[0] = 0x45;
        assert_eq!(Packet::new_checked(&v4[..]).unwrap_err(), Error::Malformed);
        // Extension header whose length runs past the payload.
        let ext = header(0, &[6, 3, 0, 0, 0, 0, 0, 0]);
        assert_eq!(
            Packet::new_checked(&ext[..]).unwrap().upper_layer(),
            Err(Error::Truncated)
        );
        // Endless chain of destination options.
        let chain: Vec<u8> = (0..10).flat_map(|_| [60u8, 0, 0, 0, 0, 0, 0, 0]).collect();
        let b = header(60, &chain);
        assert_eq!(
            Packet::new_checked(&b[..]).unwrap().upper_layer(),
            Err(Error::Malformed)
        );
    }

    #[test]
    fn emit_round_trips() {
        let r = Repr {
            src: "2001:db8::1".parse().unwrap(),
            dst: "ff02::1:ff00:1".parse().unwrap(),
            next_header: IpProtocol::Icmpv6,
            payload_len: 32,
            hop_limit: 255,
        };
        let mut buf = [0u8; 72];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(Repr::parse(&Packet::new_checked(&buf[..]).unwrap()), r);
    }
}
