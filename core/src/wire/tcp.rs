//! TCP segments (RFC 9293): ports, sequence numbers, flags, checksum.

use super::checksum;
use super::{read_u16, read_u32, write_u16, write_u32, Error, Result};

/// Byte offsets of the header's fields, named as the RFC names them: the
/// views below and the per-packet code read fields through these.
#[allow(missing_docs)]
pub mod field {
    pub const SRC_PORT: usize = 0;
    pub const DST_PORT: usize = 2;
    pub const SEQ: usize = 4;
    pub const ACK: usize = 8;
    pub const OFF_FLAGS: usize = 12;
    pub const WINDOW: usize = 14;
    pub const CHECKSUM: usize = 16;
}

/// Length of a header without options.
pub const HEADER_LEN: usize = 20;

/// TCP flag bits (the low byte of the offset/flags word).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub struct Flags(pub u8);

impl Flags {
    /// FIN
    pub const FIN: Flags = Flags(0x01);
    /// SYN
    pub const SYN: Flags = Flags(0x02);
    /// RST
    pub const RST: Flags = Flags(0x04);
    /// PSH
    pub const PSH: Flags = Flags(0x08);
    /// ACK
    pub const ACK: Flags = Flags(0x10);
    /// URG
    pub const URG: Flags = Flags(0x20);
    /// True when every bit of `other` is set.
    pub fn contains(self, other: Flags) -> bool {
        self.0 & other.0 == other.0
    }
}

impl core::ops::BitOr for Flags {
    type Output = Flags;
    fn bitor(self, o: Flags) -> Flags {
        Flags(self.0 | o.0)
    }
}

/// A view of a TCP segment.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps, checking the data offset.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }
    /// Ok when the header and its options fit.
    pub fn check_len(&self) -> Result<()> {
        let len = self.buffer.as_ref().len();
        if len < HEADER_LEN {
            return Err(Error::Truncated);
        }
        let hl = self.header_len();
        if hl < HEADER_LEN {
            return Err(Error::Malformed);
        }
        if len < hl {
            return Err(Error::Truncated);
        }
        Ok(())
    }
    /// Source port.
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT)
    }
    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT)
    }
    /// Sequence number.
    pub fn seq(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ)
    }
    /// Acknowledgement number.
    pub fn ack(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK)
    }
    /// Header length from the data offset.
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::OFF_FLAGS] >> 4) * 4
    }
    /// Flags.
    pub fn flags(&self) -> Flags {
        Flags(self.buffer.as_ref()[field::OFF_FLAGS + 1])
    }
    /// Window.
    pub fn window(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW)
    }
    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM)
    }
    /// Payload after header and options.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
    /// True when the checksum over `pseudo` (a pseudo-header sum) and the whole
    /// segment is right.
    pub fn verify_checksum(&self, pseudo: u32) -> bool {
        checksum::fold(checksum::combine(
            pseudo,
            checksum::sum(self.buffer.as_ref()),
        )) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Packet<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT, v)
    }
    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT, v)
    }
    /// Sets the sequence number.
    pub fn set_seq(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ, v)
    }
    /// Sets the acknowledgement number.
    pub fn set_ack(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::ACK, v)
    }
    /// Sets header length (bytes, multiple of 4) and flags.
    pub fn set_header_len_and_flags(&mut self, len: usize, flags: Flags) {
        let b = self.buffer.as_mut();
        b[field::OFF_FLAGS] = ((len / 4) as u8) << 4;
        b[field::OFF_FLAGS + 1] = flags.0;
    }
    /// Sets the window.
    pub fn set_window(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW, v)
    }
    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM, v)
    }
    /// Computes the checksum over `pseudo` and the whole segment.
    pub fn fill_checksum(&mut self, pseudo: u32) {
        self.set_checksum(0);
        let s = checksum::combine(pseudo, checksum::sum(self.buffer.as_ref()));
        self.set_checksum(!checksum::fold(s));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::Ipv4Addr;

    // SYN 10.0.0.11:40000 -> 10.0.0.1:80, seq 1, MSS option.
    static SYN: [u8; 24] = [
        0x9c, 0x40, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x60, 0x02, 0xfa,
        0xf0, 0x00, 0x00, 0x00, 0x00, 0x02, 0x04, 0x05, 0xb4,
    ];

    fn pseudo() -> u32 {
        checksum::pseudo_header_v4(
            Ipv4Addr::new(10, 0, 0, 11),
            Ipv4Addr::new(10, 0, 0, 1),
            6,
            24,
        )
    }

    #[test]
    fn parses_syn() {
        let p = Packet::new_checked(&SYN[..]).unwrap();
        assert_eq!((p.src_port(), p.dst_port()), (40000, 80));
        assert_eq!(p.seq(), 1);
        assert_eq!(p.header_len(), 24);
        assert!(p.flags().contains(Flags::SYN));
        assert!(!p.flags().contains(Flags::ACK));
        assert_eq!(p.window(), 64240);
        assert!(p.payload().is_empty());
    }

    #[test]
    fn checksum_round_trip() {
        let mut b = SYN;
        let mut p = Packet::new_unchecked(&mut b[..]);
        p.fill_checksum(pseudo());
        assert!(p.verify_checksum(pseudo()));
        p.set_seq(2);
        assert!(!p.verify_checksum(pseudo()));
    }

    #[test]
    fn rejects_bad_offsets() {
        assert_eq!(
            Packet::new_checked(&SYN[..19]).unwrap_err(),
            Error::Truncated
        );
        let mut small = SYN;
        small[12] = 0x40;
        assert_eq!(
            Packet::new_checked(&small[..]).unwrap_err(),
            Error::Malformed
        );
        let mut big = SYN;
        big[12] = 0xf0;
        assert_eq!(Packet::new_checked(&big[..]).unwrap_err(), Error::Truncated);
    }
}
