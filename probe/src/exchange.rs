//! One probe's exchange once its socket exists: the TCP close, the HTTP
//! request and status line, and the same inside TLS; each step says the
//! outcome once there is one.

use super::{Attempt, Spec, HEAD_MAX};
use crate::state::Outcome;
use rustls::ClientConnection;
use sluice_core::config::ProbeProtocol;
use smoltcp::iface::SocketSet;
use smoltcp::socket::tcp;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Parses an HTTP status line at the start of `head`: the status once the
/// line is complete, `Err` when it is not HTTP.
pub(super) fn status(head: &[u8]) -> Option<Result<u16, ()>> {
    let end = head.windows(2).position(|w| w == b"\r\n")?;
    let line = std::str::from_utf8(&head[..end]).map_err(|_| ());
    let code = line.and_then(|l| {
        let mut parts = l.split(' ');
        match (parts.next(), parts.next()) {
            (Some(v), Some(c)) if v.starts_with("HTTP/1.") && c.len() == 3 => {
                c.parse::<u16>().map_err(|_| ())
            }
            _ => Err(()),
        }
    });
    Some(code)
}

fn request(spec: &Spec, address: IpAddr) -> String {
    let host = match &spec.host {
        Some(h) => h.clone(),
        None => SocketAddr::new(address, spec.port).to_string(),
    };
    format!(
        "GET {} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: sluice-probe\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        spec.path,
    )
}

/// Moves one probe on; its outcome once there is one.
pub(super) fn step(
    sockets: &mut SocketSet<'static>,
    a: &mut Attempt,
    spec: &Spec,
    tls: &Arc<rustls::ClientConfig>,
    now: u64,
) -> Option<Outcome> {
    let s = sockets.get_mut::<tcp::Socket>(a.handle);
    if !a.established {
        match s.state() {
            tcp::State::SynSent | tcp::State::SynReceived => {
                return (now >= a.deadline).then_some(Outcome::Timeout);
            }
            // Refused: a RST answered the SYN.
            tcp::State::Closed => return Some(Outcome::Refused(0)),
            _ => a.established = true,
        }
    }
    let outcome = match spec.protocol {
        ProbeProtocol::Tcp => tcp_close(s, a),
        ProbeProtocol::Http => http(s, a, spec),
        ProbeProtocol::Https => https(s, a, spec, tls),
    };
    match outcome {
        Some(o) => Some(o),
        None if now >= a.deadline => Some(Outcome::Timeout),
        None => None,
    }
}

/// TCP probe after the handshake: our FIN, then theirs.
fn tcp_close(s: &mut tcp::Socket<'_>, a: &mut Attempt) -> Option<Outcome> {
    if !a.closing {
        s.close();
        a.closing = true;
    }
    match s.state() {
        tcp::State::LastAck => {
            a.last_ack = true;
            None
        }
        tcp::State::TimeWait => Some(Outcome::Success),
        tcp::State::Closed if a.last_ack => Some(Outcome::Success),
        tcp::State::Closed => Some(Outcome::Refused(0)),
        _ => None,
    }
}

/// The response head so far decides, else the connection's end does.
fn verdict(head: &[u8], s: &tcp::Socket<'_>, spec: &Spec) -> Option<Outcome> {
    match status(head) {
        Some(Ok(code)) if spec.passes(code) => return Some(Outcome::Success),
        Some(Ok(code)) => return Some(Outcome::Refused(code)),
        Some(Err(())) => return Some(Outcome::Refused(0)),
        None if head.len() >= HEAD_MAX => return Some(Outcome::Refused(0)),
        None => {}
    }
    // Reset, or closed before a status line.
    (!s.may_recv() && !s.can_recv()).then_some(Outcome::Refused(0))
}

fn http(s: &mut tcp::Socket<'_>, a: &mut Attempt, spec: &Spec) -> Option<Outcome> {
    if !a.sent && s.can_send() {
        let addr = remote(s)?;
        let req = request(spec, addr);
        if s.send_slice(req.as_bytes()).ok()? != req.len() {
            return Some(Outcome::Refused(0));
        }
        a.sent = true;
    }
    let mut buf = [0u8; 512];
    while s.can_recv() && a.head.len() < HEAD_MAX {
        match s.recv_slice(&mut buf) {
            Ok(n) if n > 0 => a.head.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    verdict(&a.head, s, spec)
}

fn remote(s: &tcp::Socket<'_>) -> Option<IpAddr> {
    Some(s.remote_endpoint()?.addr.into())
}

/// Writes TLS records into the socket's send buffer.
struct SocketWriter<'a, 'b>(&'a mut tcp::Socket<'b>);

impl Write for SocketWriter<'_, '_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.send_slice(buf) {
            Ok(0) => Err(std::io::ErrorKind::WouldBlock.into()),
            Ok(n) => Ok(n),
            Err(_) => Err(std::io::ErrorKind::BrokenPipe.into()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn https(
    s: &mut tcp::Socket<'_>,
    a: &mut Attempt,
    spec: &Spec,
    config: &Arc<rustls::ClientConfig>,
) -> Option<Outcome> {
    if a.tls.is_none() {
        let addr = remote(s)?;
        let name = match spec.server_name() {
            Some(n) => match rustls::pki_types::ServerName::try_from(n) {
                Ok(n) => n,
                Err(_) => return Some(Outcome::Refused(0)),
            },
            None => rustls::pki_types::ServerName::IpAddress(addr.into()),
        };
        let Ok(mut conn) = ClientConnection::new(config.clone(), name) else {
            return Some(Outcome::Refused(0));
        };
        // Sent once the handshake is done.
        if conn
            .writer()
            .write_all(request(spec, addr).as_bytes())
            .is_err()
        {
            return Some(Outcome::Refused(0));
        }
        a.tls = Some(Box::new(conn));
    }
    let conn = a.tls.as_mut().expect("set above");
    // Socket -> TLS.
    let mut buf = [0u8; 4096];
    while s.can_recv() {
        let n = match s.recv_slice(&mut buf) {
            Ok(n) if n > 0 => n,
            _ => break,
        };
        let mut rd = &buf[..n];
        while !rd.is_empty() {
            if conn.read_tls(&mut rd).is_err() || conn.process_new_packets().is_err() {
                // A TLS alert or garbage: the member does not serve TLS.
                return Some(Outcome::Refused(0));
            }
        }
    }
    // TLS -> plaintext response head.
    loop {
        if a.head.len() >= HEAD_MAX {
            break;
        }
        match conn.reader().read(&mut buf) {
            Ok(0) => break,
            Ok(n) => a.head.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
    }
    // TLS -> socket.
    while conn.wants_write() && s.can_send() {
        if conn.write_tls(&mut SocketWriter(s)).is_err() {
            break;
        }
    }
    verdict(&a.head, s, spec)
}
