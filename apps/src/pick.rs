//! `sluicectl pick`: the member this instance would give a new flow, for a
//! run of client ports, from the rules as published (health included). The
//! same set of members must give the same answer on every instance of a
//! cluster: this is how an operator (and the lab) checks it.

use serde_json::{json, Value};
use sluice_core::config::Config;
use sluice_core::family::{Family, V4, V6};
use sluice_core::flow::FlowKey;
use sluice_core::lb::{Service, Services};
use sluice_core::wire::IpProtocol;
use std::net::{IpAddr, SocketAddr};

/// Most client ports one request may ask about.
pub const MAX_PICKS: usize = 65536;

/// The members for new flows from `client` (its port, then the next
/// `count - 1` ports) to `frontend` (name or address) `protocol` `port`.
pub fn pick(
    cfg: &Config,
    services: &Services,
    frontend: &str,
    protocol: &str,
    port: u16,
    client: &str,
    count: usize,
) -> Result<Value, String> {
    let dst = cfg
        .frontends
        .iter()
        .find(|f| f.name == frontend || f.address.to_string() == frontend)
        .map(|f| f.address)
        .ok_or_else(|| format!("no frontend named or addressed \"{frontend}\""))?;
    let proto = match protocol {
        "tcp" => 6u8,
        "udp" => 17,
        p => return Err(format!("protocol \"{p}\": tcp or udp")),
    };
    let client: SocketAddr = client
        .parse()
        .map_err(|_| format!("client \"{client}\": ADDRESS:PORT (\"192.0.2.1:40000\")"))?;
    if client.is_ipv4() != dst.is_ipv4() {
        return Err(format!(
            "client {client} and frontend {dst} are of different families"
        ));
    }
    if count == 0 || count > MAX_PICKS {
        return Err(format!("count {count}: 1 to {MAX_PICKS}"));
    }
    let (_, s) = services
        .lookup(dst, IpProtocol::from(proto), port)
        .ok_or_else(|| format!("no rule for {dst} {protocol} port {port}"))?;
    let members: Vec<Value> = (0..count)
        .map(|k| {
            let sport = client.port().wrapping_add(k as u16);
            let m = match (client.ip(), dst) {
                (IpAddr::V4(c), IpAddr::V4(d)) => one::<V4>(s, c, d, sport, port, proto),
                (IpAddr::V6(c), IpAddr::V6(d)) => one::<V6>(s, c, d, sport, port, proto),
                _ => None,
            };
            m.map_or(Value::Null, |a| a.to_string().into())
        })
        .collect();
    Ok(json!({"rule": s.label(), "frontend": dst.to_string(), "members": members}))
}

fn one<A: Family>(
    s: &Service,
    src: A,
    dst: A,
    sport: u16,
    dport: u16,
    proto: u8,
) -> Option<IpAddr> {
    let key = FlowKey {
        src,
        dst,
        sport,
        dport,
        proto,
    };
    s.pick(&key).map(|(_, a)| a.into())
}
