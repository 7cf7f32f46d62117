//! Ethernet II frames, with at most one 802.1Q (or 802.1ad) tag.

use super::{read_u16, write_u16, Error, Field, Result};
use core::fmt;

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: MacAddr = MacAddr([0xff; 6]);
    /// 00:00:00:00:00:00, used as "unknown" in ARP requests.
    pub const ZERO: MacAddr = MacAddr([0; 6]);

    /// Reads a MAC address from the first six bytes of `b`.
    pub fn from_bytes(b: &[u8]) -> MacAddr {
        let mut m = [0; 6];
        m.copy_from_slice(&b[..6]);
        MacAddr(m)
    }
    /// Group bit set (multicast or broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 1 == 1
    }
    /// All ones.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }
    /// A unicast address that is not all zeroes.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast() && *self != Self::ZERO
    }
    /// The 33:33:xx:xx:xx:xx group address an IPv6 multicast address maps to.
    pub fn ipv6_multicast(addr: &core::net::Ipv6Addr) -> MacAddr {
        let o = addr.octets();
        MacAddr([0x33, 0x33, o[12], o[13], o[14], o[15]])
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = &self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

impl core::str::FromStr for MacAddr {
    type Err = Error;
    fn from_str(s: &str) -> Result<MacAddr> {
        let mut m = [0u8; 6];
        let mut parts = s.split(':');
        for b in &mut m {
            let p = parts.next().ok_or(Error::Malformed)?;
            *b = u8::from_str_radix(p, 16).map_err(|_| Error::Malformed)?;
        }
        if parts.next().is_some() {
            return Err(Error::Malformed);
        }
        Ok(MacAddr(m))
    }
}

/// EtherType values Sluice cares about; open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800
    Ipv4,
    /// 0x0806
    Arp,
    /// 0x86dd
    Ipv6,
    /// 0x8100, an 802.1Q tag follows.
    Vlan,
    /// 0x88a8, an 802.1ad service tag follows.
    QinQ,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => Self::Ipv4,
            0x0806 => Self::Arp,
            0x86dd => Self::Ipv6,
            0x8100 => Self::Vlan,
            0x88a8 => Self::QinQ,
            o => Self::Unknown(o),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(e: EtherType) -> u16 {
        match e {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Vlan => 0x8100,
            EtherType::QinQ => 0x88a8,
            EtherType::Unknown(o) => o,
        }
    }
}

mod field {
    use super::Field;
    pub const DST: Field = 0..6;
    pub const SRC: Field = 6..12;
    pub const ETHERTYPE: usize = 12;
    pub const TCI: usize = 14;
    pub const INNER_ETHERTYPE: usize = 16;
}

/// Length of an untagged Ethernet header.
pub const HEADER_LEN: usize = 14;
/// Length of a header carrying one VLAN tag.
pub const TAGGED_HEADER_LEN: usize = 18;

/// A view of an Ethernet frame.
#[derive(Debug, Clone)]
pub struct Frame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Frame<T> {
    /// Wraps a buffer without checking it.
    pub fn new_unchecked(buffer: T) -> Self {
        Frame { buffer }
    }
    /// Wraps a buffer, checking that every accessor is in bounds.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let f = Frame { buffer };
        f.check_len()?;
        Ok(f)
    }
    /// Ok when the header (including a tag, if the outer type says so) fits.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN || len < self.header_len() {
            return Err(Error::Truncated);
        }
        Ok(())
    }
    /// Consumes the view, returning the buffer.
    pub fn into_inner(self) -> T {
        self.buffer
    }
    /// Destination MAC.
    pub fn dst_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::DST])
    }
    /// Source MAC.
    pub fn src_addr(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SRC])
    }
    /// The outer EtherType (Vlan/QinQ when tagged).
    pub fn outer_ethertype(&self) -> EtherType {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE).into()
    }
    /// True when one tag follows the addresses. Compares the raw value: this
    /// runs for every frame, more than once.
    #[inline]
    pub fn is_tagged(&self) -> bool {
        let t = read_u16(self.buffer.as_ref(), field::ETHERTYPE);
        t == 0x8100 || t == 0x88a8
    }
    /// The VLAN id of the tag, if tagged.
    pub fn vlan_id(&self) -> Option<u16> {
        self.is_tagged()
            .then(|| read_u16(self.buffer.as_ref(), field::TCI) & 0x0fff)
    }
    /// The EtherType of the payload (after the tag, if any).
    pub fn ethertype(&self) -> EtherType {
        if self.is_tagged() {
            read_u16(self.buffer.as_ref(), field::INNER_ETHERTYPE).into()
        } else {
            self.outer_ethertype()
        }
    }
    /// 14, or 18 with a tag.
    pub fn header_len(&self) -> usize {
        let b = self.buffer.as_ref();
        if b.len() >= HEADER_LEN && self.is_tagged() {
            TAGGED_HEADER_LEN
        } else {
            HEADER_LEN
        }
    }
    /// The payload after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Frame<T> {
    /// Sets the destination MAC.
    pub fn set_dst_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::DST].copy_from_slice(&a.0)
    }
    /// Sets the source MAC.
    pub fn set_src_addr(&mut self, a: MacAddr) {
        self.buffer.as_mut()[field::SRC].copy_from_slice(&a.0)
    }
    /// Sets the outer EtherType (untagged frames).
    pub fn set_ethertype(&mut self, e: EtherType) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE, e.into())
    }
    /// The payload after the header, mutable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let h = self.header_len();
        &mut self.buffer.as_mut()[h..]
    }
}

/// An untagged Ethernet header, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Source MAC.
    pub src: MacAddr,
    /// Destination MAC.
    pub dst: MacAddr,
    /// Payload type.
    pub ethertype: EtherType,
}

impl Repr {
    /// Parses the header of a checked frame (the tag, if any, is skipped).
    pub fn parse<T: AsRef<[u8]>>(f: &Frame<T>) -> Repr {
        Repr {
            src: f.src_addr(),
            dst: f.dst_addr(),
            ethertype: f.ethertype(),
        }
    }
    /// Writes an untagged header into the first 14 bytes of `f`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, f: &mut Frame<T>) {
        f.set_dst_addr(self.dst);
        f.set_src_addr(self.src);
        f.set_ethertype(self.ethertype);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static UNTAGGED: [u8; 16] = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x06, 0xaa,
        0xbb,
    ];
    static TAGGED: [u8; 20] = [
        0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x81, 0x00, 0x20,
        0x64, 0x08, 0x00, 0x45, 0x00,
    ];

    #[test]
    fn parses_untagged() {
        let f = Frame::new_checked(&UNTAGGED[..]).unwrap();
        assert!(f.dst_addr().is_broadcast());
        assert_eq!(f.src_addr(), MacAddr([2, 0, 0, 0, 0, 1]));
        assert_eq!(f.ethertype(), EtherType::Arp);
        assert_eq!(f.vlan_id(), None);
        assert_eq!(f.payload(), &[0xaa, 0xbb]);
    }

    #[test]
    fn parses_vlan_tag() {
        let f = Frame::new_checked(&TAGGED[..]).unwrap();
        assert_eq!(f.vlan_id(), Some(100));
        assert_eq!(f.ethertype(), EtherType::Ipv4);
        assert_eq!(f.header_len(), 18);
        assert_eq!(f.payload(), &[0x45, 0x00]);
    }

    #[test]
    fn rejects_truncated() {
        assert_eq!(
            Frame::new_checked(&UNTAGGED[..13]).unwrap_err(),
            Error::Truncated
        );
        // A tag announced but cut off.
        assert_eq!(
            Frame::new_checked(&TAGGED[..16]).unwrap_err(),
            Error::Truncated
        );
        assert_eq!(Frame::new_checked(&[][..]).unwrap_err(), Error::Truncated);
    }

    #[test]
    fn emit_round_trips() {
        let mut buf = [0u8; 14];
        let repr = Repr {
            src: MacAddr([1; 6]),
            dst: MacAddr([2; 6]),
            ethertype: EtherType::Ipv6,
        };
        repr.emit(&mut Frame::new_unchecked(&mut buf[..]));
        assert_eq!(Repr::parse(&Frame::new_checked(&buf[..]).unwrap()), repr);
        assert_eq!(&buf[12..], &[0x86, 0xdd]);
    }

    #[test]
    fn mac_parse_and_print() {
        let m: MacAddr = "02:ab:00:00:00:0f".parse().unwrap();
        assert_eq!(m.to_string(), "02:ab:00:00:00:0f");
        assert!("02:ab:00".parse::<MacAddr>().is_err());
        assert!("02:ab:00:00:00:0f:01".parse::<MacAddr>().is_err());
    }
}
