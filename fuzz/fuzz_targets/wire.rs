//! Every wire parser on arbitrary bytes: checked constructors, then every
//! accessor. A panic is a bug (the panic contract of `sluice_core::wire`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_core::wire::*;

fuzz_target!(|data: &[u8]| {
    if let Ok(f) = ethernet::Frame::new_checked(data) {
        let _ = (ethernet::Repr::parse(&f), f.vlan_id(), f.payload().len());
    }
    if let Ok(p) = arp::Packet::new_checked(data) {
        let _ = arp::Repr::parse(&p);
    }
    if let Ok(p) = ipv4::Packet::new_checked(data) {
        let _ = (ipv4::Repr::parse(&p), p.options().len(), p.payload().len(), p.frag_offset());
    }
    if let Ok(p) = ipv6::Packet::new_checked(data) {
        let _ = (ipv6::Repr::parse(&p), p.upper_layer(), p.payload().len());
    }
    if let Ok(p) = tcp::Packet::new_checked(data) {
        let _ = (p.flags(), p.payload().len(), p.verify_checksum(0));
    }
    if let Ok(p) = udp::Packet::new_checked(data) {
        let _ = (p.payload().len(), p.verify_checksum(0));
    }
    if let Ok(p) = icmpv4::Packet::new_checked(data) {
        let _ = (p.msg_type(), p.data().len(), p.verify_checksum());
    }
    if let Ok(p) = icmpv6::Packet::new_checked(data) {
        let _ = (p.msg_type(), p.nd_link_layer_option(icmpv6::OPT_SOURCE_LL), p.verify_checksum(0));
        if matches!(p.msg_type(), icmpv6::Message::NeighborSolicit | icmpv6::Message::NeighborAdvert) {
            let _ = p.nd_target();
        }
    }
});
