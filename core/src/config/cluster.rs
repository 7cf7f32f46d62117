//! `[cluster]`: this instance's place among several that sync flows, its
//! peers on the internal segment, the sync port and the shared key.

use super::raw;
use super::types::{Cluster, Port, SyncKey};
use super::validate::{address, in_range, port_number, Ctx};
use std::net::IpAddr;
use std::path::PathBuf;

/// Instances a cluster may have.
pub const MAX_INSTANCES: i64 = 16;
/// Bytes of secret a key file must hold at least (after trimming
/// whitespace).
pub const MIN_SECRET: usize = 16;

pub(super) fn check_cluster(ctx: &mut Ctx, c: raw::Cluster, ports: &[Port]) -> Option<Cluster> {
    let obj = "[cluster]";
    let instances = c
        .instances
        .map(|n| in_range(ctx, obj, "instances", n, 1, MAX_INSTANCES));
    let instances = match instances {
        Some(Some(n)) => n as u8,
        Some(None) => return None,
        None => {
            ctx.err(
                obj,
                "instances",
                "missing: how many instances the cluster has",
            );
            return None;
        }
    };
    let instance = match c.instance {
        Some(i) => in_range(ctx, obj, "instance", i, 0, i64::from(instances) - 1)? as u8,
        None => {
            ctx.err(
                obj,
                "instance",
                "missing: this instance's index, 0 .. instances-1",
            );
            return None;
        }
    };
    let mut peers: Vec<IpAddr> = Vec::new();
    for (i, s) in c.peers.unwrap_or_default().iter().enumerate() {
        let field = format!("peers[{i}]");
        let Some(a) = address(ctx, obj, &field, s) else {
            continue;
        };
        let internal = ports
            .iter()
            .filter(|p| p.role.is_internal())
            .any(|p| p.addresses.iter().any(|n| n.contains(&a)));
        if ports
            .iter()
            .any(|p| p.addresses.iter().any(|n| n.addr() == a))
        {
            ctx.err(obj, &field, format!("{a} is this instance's own address"));
        } else if !internal {
            ctx.err(
                obj,
                &field,
                format!(
                    "{a} is on no internal port's subnet (sync goes over the internal segment)"
                ),
            );
        } else if peers.contains(&a) {
            ctx.err(obj, &field, format!("{a} is listed twice"));
        } else {
            peers.push(a);
        }
    }
    if peers.len() + 1 != usize::from(instances) {
        ctx.err(
            obj,
            "peers",
            format!(
                "{} peers for {instances} instances: list every other instance once",
                peers.len()
            ),
        );
    }
    let sync_port = port_number(ctx, obj, "sync_port", c.sync_port.unwrap_or(7400), false);
    if crate::pipeline::PROBE_PORTS.contains(&sync_port) {
        ctx.err(
            obj,
            "sync_port",
            format!("{sync_port} is in the health probes' source ports 61000..=61999"),
        );
    }
    let Some(file) = c.secret_file.map(PathBuf::from) else {
        ctx.err(
            obj,
            "secret_file",
            "missing: the file of the key peers share",
        );
        return None;
    };
    let key = match std::fs::read(&file) {
        Ok(bytes) => {
            let secret = bytes.trim_ascii();
            if secret.len() < MIN_SECRET {
                ctx.err(
                    obj,
                    "secret_file",
                    format!(
                        "{}: {} bytes of secret, at least {MIN_SECRET} needed",
                        file.display(),
                        secret.len()
                    ),
                );
                return None;
            }
            SyncKey::derive(secret)
        }
        Err(e) => {
            ctx.err(obj, "secret_file", format!("{}: {e}", file.display()));
            return None;
        }
    };
    Some(Cluster {
        instance,
        instances,
        peers,
        sync_port,
        secret_file: file,
        key,
    })
}
