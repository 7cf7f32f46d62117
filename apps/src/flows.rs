//! `sluicectl flows`: the tracked flows, filtered, with the time each has
//! left; and `--delete`, which ends the flows a filter selects.
//!
//! A flow shows its packets (both directions); its bytes are not kept: the
//! IPv4 entry is one 64-byte cache line and has no room for them. Bytes
//! are counted per member (`sluicectl status`, `sluice_member_bytes_total`).

use crate::views::{find_member, proto_word, sock, View};
use serde_json::{json, Value};
use sluice_core::family::Family;
use sluice_core::flow::age::idle_limit;
use sluice_core::flow::{FlowInfo, FlowKind, FlowTable};
use sluice_core::lb::snat::RuleRef;
use sluice_core::lb::Services;
use std::net::{IpAddr, SocketAddr};

/// Filters of `sluicectl flows`.
#[derive(Debug, Default, Clone)]
pub struct FlowFilter {
    /// Frontend name or address.
    pub frontend: Option<String>,
    /// Member name or address.
    pub member: Option<String>,
    /// tcp | udp.
    pub protocol: Option<String>,
    /// Inbound flows from this client: ADDRESS or ADDRESS:PORT.
    pub client: Option<String>,
    /// Outbound flows to this remote host: ADDRESS or ADDRESS:PORT.
    pub remote: Option<String>,
    /// At most this many flows listed (the total is still counted).
    pub limit: usize,
}

/// An address, and maybe a port.
#[derive(Debug, Clone, Copy)]
struct Endpoint(IpAddr, Option<u16>);

impl Endpoint {
    fn parse(what: &str, s: &str) -> Result<Endpoint, String> {
        if let Ok(a) = s.parse::<IpAddr>() {
            return Ok(Endpoint(a, None));
        }
        s.parse::<SocketAddr>()
            .map(|sa| Endpoint(sa.ip(), Some(sa.port())))
            .map_err(|_| format!("{what} \"{s}\": an ADDRESS or ADDRESS:PORT ([v6]:port)"))
    }

    fn matches(&self, a: IpAddr, port: u16) -> bool {
        self.0 == a && self.1.is_none_or(|p| p == port)
    }
}

/// What a filter selects, resolved against the config.
struct Select {
    frontend: Option<IpAddr>,
    member: Option<IpAddr>,
    proto: Option<u8>,
    client: Option<Endpoint>,
    remote: Option<Endpoint>,
    limit: usize,
    now: u32,
    scale: u32,
}

/// The flows a filter selects: the rows (up to its limit), how many match,
/// and the entry indices of every match per family (for `--delete`).
pub struct Selected {
    /// The listing.
    pub rows: Vec<Value>,
    /// Every match.
    pub matched: usize,
    /// Entry indices of the matches in the IPv4 table.
    pub v4: Vec<u32>,
    /// And in the IPv6 table.
    pub v6: Vec<u32>,
}

impl View<'_> {
    /// The flows `f` selects; timers divided by `scale` (`--timer-scale`).
    pub fn select_flows(&self, f: &FlowFilter, scale: u32) -> Result<Selected, String> {
        let cfg = self.cfg;
        let frontend = match &f.frontend {
            None => None,
            Some(s) => Some(
                cfg.frontends
                    .iter()
                    .find(|fe| fe.name == *s || fe.address.to_string() == *s)
                    .map(|fe| fe.address)
                    .ok_or_else(|| format!("no frontend named or addressed \"{s}\""))?,
            ),
        };
        let member = match &f.member {
            None => None,
            Some(s) => Some(
                find_member(cfg, s)
                    .ok_or_else(|| format!("no pool member named or addressed \"{s}\""))?,
            ),
        };
        let proto = match f.protocol.as_deref() {
            None => None,
            Some("tcp") => Some(6),
            Some("udp") => Some(17),
            Some(p) => return Err(format!("protocol \"{p}\": tcp or udp")),
        };
        let client = f
            .client
            .as_deref()
            .map(|s| Endpoint::parse("client", s))
            .transpose()?;
        let remote = f
            .remote
            .as_deref()
            .map(|s| Endpoint::parse("remote", s))
            .transpose()?;
        let services = self.shared.services.load();
        let sel = Select {
            frontend,
            member,
            proto,
            client,
            remote,
            limit: f.limit,
            now: self
                .shared
                .now_ms
                .load(std::sync::atomic::Ordering::Relaxed),
            scale,
        };
        let mut out = Selected {
            rows: Vec::new(),
            matched: 0,
            v4: Vec::new(),
            v6: Vec::new(),
        };
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        flow_rows(&self.shared.flows, &services, &sel, &mut out, &mut v4);
        flow_rows(&self.shared.flows6, &services, &sel, &mut out, &mut v6);
        out.v4 = v4;
        out.v6 = v6;
        Ok(out)
    }

    /// `sluicectl flows`.
    pub fn flows(&self, f: &FlowFilter, scale: u32) -> Result<Value, String> {
        let s = self.select_flows(f, scale)?;
        Ok(json!({"matched": s.matched, "shown": s.rows.len(), "flows": s.rows}))
    }
}

/// The row of `fl` when `sel` selects it.
fn row<A: Family>(fl: &FlowInfo<A>, services: &Services, sel: &Select) -> Option<Value> {
    let (k0, k1) = (fl.key[0], fl.key[1]);
    let cone = fl.kind() == FlowKind::Cone;
    let p = if cone { 17 } else { k0.proto };
    if sel.proto.is_some_and(|want| want != p) {
        return None;
    }
    let idle = sel.now.wrapping_sub(fl.last_seen);
    let left = idle_limit(fl, sel.scale).saturating_sub(u64::from(idle));
    if let RuleRef::Snat(mi) = fl.rule {
        let m = services.snat.members.get(usize::from(mi));
        let rule = m
            .and_then(|m| services.snat.rules.get(usize::from(m.rule)))
            .map_or("?", |r| r.name.as_str());
        let public = k1.dst;
        if sel.frontend.is_some_and(|a| a != public.into())
            || sel.member.is_some_and(|a| a != k0.src.into())
            || sel.client.is_some()
            || sel.remote.is_some_and(|r| {
                !r.matches(k0.dst.into(), if cone { 0 } else { k0.dport })
                    || (cone && r.1.is_some())
            })
        {
            return None;
        }
        return Some(json!({
            "direction": "outbound",
            "rule": rule,
            "protocol": if cone { "udp-cone" } else { proto_word(p) },
            "member": sock(k0.src, k0.sport),
            "public": sock(public, k1.dport),
            "remote": if cone { k0.dst.to_string() } else { sock(k0.dst, k0.dport) },
            "state": fl.state.name(),
            "idle_ms": idle,
            "expires_in_ms": left,
            "packets": fl.packets,
        }));
    }
    let RuleRef::Service(sid) = fl.rule else {
        return None;
    };
    let svc = services.services.get(usize::from(sid));
    let current = fl.generation == services.generation;
    let rule = svc.filter(|_| current).map_or("?", |s| s.name.as_str());
    // The reply key's source is the member (or the frontend with floating
    // IP); the forward rewrite's destination is the member.
    let to = fl.rewrite[0].to;
    if sel.frontend.is_some_and(|a| a != k0.dst.into())
        || sel
            .member
            .is_some_and(|a| a != to.dst.into() && a != k1.src.into())
        || sel.remote.is_some()
        || sel
            .client
            .is_some_and(|c| !c.matches(k0.src.into(), k0.sport))
    {
        return None;
    }
    Some(json!({
        "direction": "inbound",
        "rule": rule,
        "protocol": proto_word(p),
        "client": sock(k0.src, k0.sport),
        "frontend": sock(k0.dst, k0.dport),
        "member": sock(to.dst, to.dport),
        "state": fl.state.name(),
        "idle_ms": idle,
        "expires_in_ms": left,
        "packets": fl.packets,
    }))
}

/// The rows of one family's table that `sel` selects, up to its limit;
/// every match is counted and its index kept.
fn flow_rows<A: Family>(
    flows: &FlowTable<A>,
    services: &Services,
    sel: &Select,
    out: &mut Selected,
    indices: &mut Vec<u32>,
) {
    for idx in 0..flows.high_water() {
        let Some(fl) = flows.info(idx) else { continue };
        let Some(r) = row(&fl, services, sel) else {
            continue;
        };
        out.matched += 1;
        indices.push(idx);
        if out.rows.len() < sel.limit {
            out.rows.push(r);
        }
    }
}
