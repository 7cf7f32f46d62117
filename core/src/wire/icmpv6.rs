//! ICMPv6 (RFC 4443) and the neighbour discovery messages Sluice speaks
//! (RFC 4861): echo, neighbour solicitation and advertisement with their
//! link-layer address options.

use super::checksum;
use super::{read_u16, write_u16, Error, MacAddr, Result};
use core::net::Ipv6Addr;

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
    pub const NA_FLAGS: usize = 4;
    pub const ND_TARGET: core::ops::Range<usize> = 8..24;
    pub const ND_OPTIONS: usize = 24;
}

/// Header length (type, code, checksum, 4 bytes of message body).
pub const HEADER_LEN: usize = 8;
/// Length of an NS or NA without options.
pub const ND_LEN: usize = 24;
/// Option type: source link-layer address.
pub const OPT_SOURCE_LL: u8 = 1;
/// Option type: target link-layer address.
pub const OPT_TARGET_LL: u8 = 2;
/// NA flag: sender is a router.
pub const NA_ROUTER: u8 = 0x80;
/// NA flag: response to a solicitation.
pub const NA_SOLICITED: u8 = 0x40;
/// NA flag: override an existing cache entry.
pub const NA_OVERRIDE: u8 = 0x20;

/// ICMPv6 message types; open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// 1
    DstUnreachable,
    /// 2
    PacketTooBig,
    /// 3
    TimeExceeded,
    /// 4
    ParamProblem,
    /// 128
    EchoRequest,
    /// 129
    EchoReply,
    /// 133
    RouterSolicit,
    /// 134
    RouterAdvert,
    /// 135
    NeighborSolicit,
    /// 136
    NeighborAdvert,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for Message {
    fn from(v: u8) -> Self {
        match v {
            1 => Self::DstUnreachable,
            2 => Self::PacketTooBig,
            3 => Self::TimeExceeded,
            4 => Self::ParamProblem,
            128 => Self::EchoRequest,
            129 => Self::EchoReply,
            133 => Self::RouterSolicit,
            134 => Self::RouterAdvert,
            135 => Self::NeighborSolicit,
            136 => Self::NeighborAdvert,
            o => Self::Unknown(o),
        }
    }
}

impl From<Message> for u8 {
    fn from(m: Message) -> u8 {
        match m {
            Message::DstUnreachable => 1,
            Message::PacketTooBig => 2,
            Message::TimeExceeded => 3,
            Message::ParamProblem => 4,
            Message::EchoRequest => 128,
            Message::EchoReply => 129,
            Message::RouterSolicit => 133,
            Message::RouterAdvert => 134,
            Message::NeighborSolicit => 135,
            Message::NeighborAdvert => 136,
            Message::Unknown(o) => o,
        }
    }
}

/// A view of an ICMPv6 message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps, checking the length for the message type (NS/NA need 24 bytes).
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }
    /// Ok when the header for this message type fits.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        if matches!(
            self.msg_type(),
            Message::NeighborSolicit | Message::NeighborAdvert
        ) && len < ND_LEN
        {
            return Err(Error::Truncated);
        }
        Ok(())
    }
    /// Message type.
    pub fn msg_type(&self) -> Message {
        self.buffer.as_ref()[field::TYPE].into()
    }
    /// Code.
    pub fn code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT)
    }
    /// Echo sequence number.
    pub fn echo_seq(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQ)
    }
    /// NA flags byte.
    pub fn na_flags(&self) -> u8 {
        self.buffer.as_ref()[field::NA_FLAGS]
    }
    /// Target address of an NS or NA.
    pub fn nd_target(&self) -> Ipv6Addr {
        let mut a = [0u8; 16];
        a.copy_from_slice(&self.buffer.as_ref()[field::ND_TARGET]);
        Ipv6Addr::from(a)
    }
    /// The link-layer address option of type `kind` in an NS/NA, if present.
    /// An option of length zero is `Malformed` (RFC 4861 section 4.6).
    pub fn nd_link_layer_option(&self, kind: u8) -> Result<Option<MacAddr>> {
        let b = self.buffer.as_ref();
        let mut off = field::ND_OPTIONS;
        while off + 2 <= b.len() {
            let len = usize::from(b[off + 1]) * 8;
            if len == 0 {
                return Err(Error::Malformed);
            }
            if off + len > b.len() {
                return Err(Error::Truncated);
            }
            if b[off] == kind && len >= 8 {
                return Ok(Some(MacAddr::from_bytes(&b[off + 2..off + 8])));
            }
            off += len;
        }
        Ok(None)
    }
    /// True when the checksum over `pseudo` and the whole message is right.
    pub fn verify_checksum(&self, pseudo: u32) -> bool {
        checksum::fold(checksum::combine(
            pseudo,
            checksum::sum(self.buffer.as_ref()),
        )) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the type.
    pub fn set_msg_type(&mut self, m: Message) {
        self.buffer.as_mut()[field::TYPE] = m.into()
    }
    /// Sets the code.
    pub fn set_code(&mut self, c: u8) {
        self.buffer.as_mut()[field::CODE] = c
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v)
    }
    /// Sets the 4-byte body word after the checksum (NA flags + reserved).
    pub fn set_na_flags(&mut self, flags: u8) {
        let b = self.buffer.as_mut();
        b[4..8].copy_from_slice(&[flags, 0, 0, 0]);
    }
    /// Sets the NS/NA target.
    pub fn set_nd_target(&mut self, a: Ipv6Addr) {
        self.buffer.as_mut()[field::ND_TARGET].copy_from_slice(&a.octets())
    }
    /// Writes one link-layer address option (8 bytes) right after the target.
    pub fn set_nd_link_layer_option(&mut self, kind: u8, mac: MacAddr) {
        let b = self.buffer.as_mut();
        b[field::ND_OPTIONS] = kind;
        b[field::ND_OPTIONS + 1] = 1;
        b[field::ND_OPTIONS + 2..field::ND_OPTIONS + 8].copy_from_slice(&mac.0);
    }
    /// Computes the checksum over `pseudo` and the whole message.
    pub fn fill_checksum(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let s = checksum::combine(pseudo, checksum::sum(self.buffer.as_ref()));
        self.set_checksum(!checksum::fold(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ns() -> [u8; 32] {
        let mut b = [0u8; 32];
        b[0] = 135;
        b[8..24].copy_from_slice(&"2001:db8:1::1".parse::<Ipv6Addr>().unwrap().octets());
        b[24..32].copy_from_slice(&[1, 1, 2, 0, 0, 0, 0, 0x64]);
        b
    }

    #[test]
    fn parses_solicitation() {
        let b = ns();
        let p = Packet::new_checked(&b[..]).unwrap();
        assert_eq!(p.msg_type(), Message::NeighborSolicit);
        assert_eq!(p.nd_target(), "2001:db8:1::1".parse::<Ipv6Addr>().unwrap());
        assert_eq!(
            p.nd_link_layer_option(OPT_SOURCE_LL),
            Ok(Some(MacAddr([2, 0, 0, 0, 0, 0x64])))
        );
        assert_eq!(p.nd_link_layer_option(OPT_TARGET_LL), Ok(None));
    }

    #[test]
    fn rejects_bad_options_and_lengths() {
        let b = ns();
        assert_eq!(Packet::new_checked(&b[..23]).unwrap_err(), Error::Truncated);
        let mut zero = ns();
        zero[25] = 0;
        let p = Packet::new_checked(&zero[..]).unwrap();
        assert_eq!(p.nd_link_layer_option(OPT_SOURCE_LL), Err(Error::Malformed));
        let mut long = ns();
        long[25] = 2;
        let p = Packet::new_checked(&long[..]).unwrap();
        assert_eq!(p.nd_link_layer_option(OPT_SOURCE_LL), Err(Error::Truncated));
        assert_eq!(
            Packet::new_checked(&[128u8, 0, 0][..]).unwrap_err(),
            Error::Truncated
        );
    }

    #[test]
    fn checksum_with_pseudo_header() {
        let src: Ipv6Addr = "2001:db8:1::100".parse().unwrap();
        let dst: Ipv6Addr = "ff02::1:ff00:1".parse().unwrap();
        let pseudo = checksum::pseudo_header_v6(src, dst, 58, 32);
        let mut b = ns();
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(pseudo);
        assert!(p.verify_checksum(pseudo));
        assert!(!p.verify_checksum(checksum::pseudo_header_v6(dst, dst, 58, 32)));
    }
}
