//! The exception path at start: for each `[[port]]` with `kernel = NAME`,
//! a `net_tap` kernel interface of that name with the port's MAC, MTU and
//! addresses, served by control ([`ControlPlane::add_kernel`]). Routing
//! daemons (BGP, BFD) and operators (SSH) reach Sluice's port addresses
//! through it; it exists only while sluiced runs.

use anyhow::{bail, Context as _, Result};
use sluice_core::config::Config;
use sluice_core::dpdk::{self, Mempool, Port};
use sluice_core::neigh::PortIndex;
use sluice_core::runtime::ControlPlane;
use sluice_core::wire::MacAddr;
use std::process::Command;
use tracing::info;

/// Creates and starts every port's kernel interface; the returned ports
/// must live as long as control polls them.
pub fn start(
    cfg: &Config,
    macs: &[MacAddr],
    pool: &Mempool,
    control: &mut ControlPlane,
) -> Result<Vec<Port>> {
    let mut taps = Vec::new();
    for (pi, p) in PortIndex::all(cfg.ports.len()).zip(&cfg.ports) {
        let Some(iface) = &p.kernel else { continue };
        let what = || format!("[[port]] \"{}\" kernel \"{iface}\"", p.name);
        let device = dpdk::create_tap(
            &format!("net_tap_sluice{}", pi.index()),
            iface,
            macs[pi.index()],
        )
        .with_context(what)?;
        let tap = Port::start(&device, 1, 1, 0, p.mtu, pool).with_context(what)?;
        for a in &p.addresses {
            let family = if a.addr().is_ipv4() { "-4" } else { "-6" };
            let mut args = vec![family, "addr", "add"];
            let net = a.to_string();
            args.extend([net.as_str(), "dev", iface.as_str()]);
            if a.addr().is_ipv6() {
                // The data plane answers for the address already.
                args.push("nodad");
            }
            ip(&args).with_context(what)?;
        }
        ip(&["link", "set", "dev", iface, "up"]).with_context(what)?;
        info!(port = %p.name, kernel = %iface, addresses = ?p.addresses, "kernel interface up");
        control.add_kernel(pi, &tap);
        taps.push(tap);
    }
    Ok(taps)
}

/// Runs `ip ARGS` (iproute2), the way interfaces get addresses on Linux.
fn ip(args: &[&str]) -> Result<()> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .context("running ip (iproute2)")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
