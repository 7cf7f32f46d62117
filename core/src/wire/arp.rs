//! ARP for IPv4 over Ethernet (RFC 826). Other hardware or protocol types are
//! `Unsupported`.

use super::{read_u16, write_u16, Error, Field, MacAddr, Result};
use core::net::Ipv4Addr;

mod field {
    use super::Field;
    pub const HTYPE: usize = 0;
    pub const PTYPE: usize = 2;
    pub const HLEN: usize = 4;
    pub const PLEN: usize = 5;
    pub const OPER: usize = 6;
    pub const SHA: Field = 8..14;
    pub const SPA: Field = 14..18;
    pub const THA: Field = 18..24;
    pub const TPA: Field = 24..28;
}

/// Length of an Ethernet/IPv4 ARP packet.
pub const PACKET_LEN: usize = 28;

/// ARP operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    /// 1
    Request,
    /// 2
    Reply,
    /// Anything else.
    Unknown(u16),
}

impl From<u16> for Operation {
    fn from(v: u16) -> Self {
        match v {
            1 => Self::Request,
            2 => Self::Reply,
            o => Self::Unknown(o),
        }
    }
}

impl From<Operation> for u16 {
    fn from(o: Operation) -> u16 {
        match o {
            Operation::Request => 1,
            Operation::Reply => 2,
            Operation::Unknown(v) => v,
        }
    }
}

/// A view of an ARP packet.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps, checking length and that it is Ethernet/IPv4 ARP.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }
    /// Ok when long enough and of hardware type Ethernet, protocol IPv4.
    pub fn check_len(&self) -> Result<()> {
        let b = self.buffer.as_ref();
        if b.len() < PACKET_LEN {
            return Err(Error::Truncated);
        }
        if read_u16(b, field::HTYPE) != 1
            || read_u16(b, field::PTYPE) != 0x0800
            || b[field::HLEN] != 6
            || b[field::PLEN] != 4
        {
            return Err(Error::Unsupported);
        }
        Ok(())
    }
    /// Operation.
    pub fn operation(&self) -> Operation {
        read_u16(self.buffer.as_ref(), field::OPER).into()
    }
    /// Sender hardware address.
    pub fn sender_hw(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::SHA])
    }
    /// Sender protocol address.
    pub fn sender_ip(&self) -> Ipv4Addr {
        ip(&self.buffer.as_ref()[field::SPA])
    }
    /// Target hardware address.
    pub fn target_hw(&self) -> MacAddr {
        MacAddr::from_bytes(&self.buffer.as_ref()[field::THA])
    }
    /// Target protocol address.
    pub fn target_ip(&self) -> Ipv4Addr {
        ip(&self.buffer.as_ref()[field::TPA])
    }
}

fn ip(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    fn set_header(&mut self) {
        let b = self.buffer.as_mut();
        write_u16(b, field::HTYPE, 1);
        write_u16(b, field::PTYPE, 0x0800);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }
    /// Sets the operation.
    pub fn set_operation(&mut self, o: Operation) {
        write_u16(self.buffer.as_mut(), field::OPER, o.into())
    }
    /// Sets the sender addresses.
    pub fn set_sender(&mut self, hw: MacAddr, ip: Ipv4Addr) {
        let b = self.buffer.as_mut();
        b[field::SHA].copy_from_slice(&hw.0);
        b[field::SPA].copy_from_slice(&ip.octets());
    }
    /// Sets the target addresses.
    pub fn set_target(&mut self, hw: MacAddr, ip: Ipv4Addr) {
        let b = self.buffer.as_mut();
        b[field::THA].copy_from_slice(&hw.0);
        b[field::TPA].copy_from_slice(&ip.octets());
    }
}

/// An Ethernet/IPv4 ARP packet, parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Repr {
    /// Request, reply...
    pub operation: Operation,
    /// Sender MAC.
    pub sender_hw: MacAddr,
    /// Sender IPv4.
    pub sender_ip: Ipv4Addr,
    /// Target MAC (zero in requests).
    pub target_hw: MacAddr,
    /// Target IPv4.
    pub target_ip: Ipv4Addr,
}

impl Repr {
    /// Parses a checked packet.
    pub fn parse<T: AsRef<[u8]>>(p: &Packet<T>) -> Repr {
        Repr {
            operation: p.operation(),
            sender_hw: p.sender_hw(),
            sender_ip: p.sender_ip(),
            target_hw: p.target_hw(),
            target_ip: p.target_ip(),
        }
    }
    /// Writes the packet (28 bytes).
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(&self, p: &mut Packet<T>) {
        p.set_header();
        p.set_operation(self.operation);
        p.set_sender(self.sender_hw, self.sender_ip);
        p.set_target(self.target_hw, self.target_ip);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static REQUEST: [u8; 28] = [
        0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x64, 203, 0,
        113, 100, 0, 0, 0, 0, 0, 0, 203, 0, 113, 1,
    ];

    #[test]
    fn parses_request() {
        let r = Repr::parse(&Packet::new_checked(&REQUEST[..]).unwrap());
        assert_eq!(r.operation, Operation::Request);
        assert_eq!(r.sender_hw, MacAddr([2, 0, 0, 0, 0, 0x64]));
        assert_eq!(r.sender_ip, Ipv4Addr::new(203, 0, 113, 100));
        assert_eq!(r.target_ip, Ipv4Addr::new(203, 0, 113, 1));
    }

    #[test]
    fn round_trips() {
        let r = Repr::parse(&Packet::new_checked(&REQUEST[..]).unwrap());
        let mut buf = [0u8; 28];
        r.emit(&mut Packet::new_unchecked(&mut buf[..]));
        assert_eq!(buf, REQUEST);
    }

    #[test]
    fn rejects_short_and_foreign() {
        assert_eq!(
            Packet::new_checked(&REQUEST[..27]).unwrap_err(),
            Error::Truncated
        );
        let mut other = REQUEST;
        other[3] = 0xdd; // protocol type IPv6: not ours
        assert_eq!(
            Packet::new_checked(&other[..]).unwrap_err(),
            Error::Unsupported
        );
        let mut hlen = REQUEST;
        hlen[4] = 8;
        assert_eq!(
            Packet::new_checked(&hlen[..]).unwrap_err(),
            Error::Unsupported
        );
    }
}
