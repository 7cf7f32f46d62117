//! ICMP for IPv4 (RFC 792): echo, and the errors whose embedded header later
//! issues translate.

use super::checksum;
use super::{read_u16, write_u16, Error, Result};

mod field {
    pub const TYPE: usize = 0;
    pub const CODE: usize = 1;
    pub const CHECKSUM: usize = 2;
    pub const ECHO_IDENT: usize = 4;
    pub const ECHO_SEQ: usize = 6;
}

/// Header length (type, code, checksum and the 4-byte rest-of-header).
pub const HEADER_LEN: usize = 8;

/// ICMP message types; open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Message {
    /// 0
    EchoReply,
    /// 3
    DstUnreachable,
    /// 5
    Redirect,
    /// 8
    EchoRequest,
    /// 11
    TimeExceeded,
    /// 12
    ParamProblem,
    /// Anything else.
    Unknown(u8),
}

impl From<u8> for Message {
    fn from(v: u8) -> Self {
        match v {
            0 => Self::EchoReply,
            3 => Self::DstUnreachable,
            5 => Self::Redirect,
            8 => Self::EchoRequest,
            11 => Self::TimeExceeded,
            12 => Self::ParamProblem,
            o => Self::Unknown(o),
        }
    }
}

impl From<Message> for u8 {
    fn from(m: Message) -> u8 {
        match m {
            Message::EchoReply => 0,
            Message::DstUnreachable => 3,
            Message::Redirect => 5,
            Message::EchoRequest => 8,
            Message::TimeExceeded => 11,
            Message::ParamProblem => 12,
            Message::Unknown(o) => o,
        }
    }
}

impl Message {
    /// Errors carry the header of the packet that caused them.
    pub fn is_error(self) -> bool {
        matches!(
            self,
            Self::DstUnreachable | Self::TimeExceeded | Self::ParamProblem
        )
    }
}

/// A view of an ICMP message.
#[derive(Debug, Clone)]
pub struct Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Packet<T> {
    /// Wraps without checking.
    pub fn new_unchecked(buffer: T) -> Self {
        Packet { buffer }
    }
    /// Wraps, checking the length.
    pub fn new_checked(buffer: T) -> Result<Self> {
        let p = Packet { buffer };
        p.check_len()?;
        Ok(p)
    }
    /// Ok when the 8-byte header fits.
    pub fn check_len(&self) -> Result<()> {
        if self.buffer.as_ref().len() < HEADER_LEN {
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
    /// Next-hop MTU of a "fragmentation needed" message.
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(self.buffer.as_ref(), 6)
    }
    /// Data after the 8-byte header (echo data, or the embedded packet).
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[HEADER_LEN..]
    }
    /// True when the checksum over the whole message is right.
    pub fn verify_checksum(&self) -> bool {
        checksum::fold(checksum::sum(self.buffer.as_ref())) == 0xffff
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
    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT, v)
    }
    /// Sets the echo sequence number.
    pub fn set_echo_seq(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQ, v)
    }
    /// Computes the checksum over the whole message.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Echo request, id 0x0102, seq 7, data "abcd", checksum valid.
    static ECHO: [u8; 12] = [
        8, 0, 0x00, 0x00, 0x01, 0x02, 0x00, 0x07, b'a', b'b', b'c', b'd',
    ];

    #[test]
    fn echo_fields_and_checksum() {
        let mut b = ECHO;
        let mut p = Packet::new_checked(&mut b[..]).unwrap();
        p.fill_checksum();
        assert_eq!(p.msg_type(), Message::EchoRequest);
        assert_eq!((p.echo_ident(), p.echo_seq()), (0x0102, 7));
        assert_eq!(p.data(), b"abcd");
        assert!(p.verify_checksum());
        // RFC 1624 update of the type field (8 -> 0) gives the full-sum answer.
        let old = p.checksum();
        p.set_msg_type(Message::EchoReply);
        let inc = checksum::update16(old, 0x0800, 0x0000);
        p.fill_checksum();
        assert_eq!(inc, p.checksum());
    }

    #[test]
    fn rejects_short() {
        assert_eq!(
            Packet::new_checked(&ECHO[..7]).unwrap_err(),
            Error::Truncated
        );
        assert!(Message::from(3).is_error());
        assert!(!Message::from(8).is_error());
    }
}
