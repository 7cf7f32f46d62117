//! sluiced: the Sluice daemon. Reads the config, starts EAL and the ports,
//! runs the poll-mode workers on their lcores and the control loop on the
//! main lcore, and on SIGTERM/SIGINT stops cleanly and prints its counters.

use anyhow::{bail, Context as _, Result};
use clap::Parser;
use sluice::report;
use sluice_core::config::Config;
use sluice_core::dpdk::{self, Eal, Mempool, Port};
use sluice_core::lb::natmap::PortMap;
use sluice_core::lb::Services;
use sluice_core::neigh::CacheConfig;
use sluice_core::pipeline::Dataplane;
use sluice_core::pipeline::{internal_sources_v4, PROBE_PORTS};
use sluice_core::runtime::{ControlPlane, Shared, Worker};
use sluice_nat::blocks::Assignment;
use sluice_probe::Prober;
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{info, warn};

#[derive(Parser, Debug)]
#[command(
    name = "sluiced",
    version,
    about = "Sluice: a DPDK layer-4 load balancer and NAT gateway"
)]
struct Args {
    /// Run the daemon with this config file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "check_config",
        required_unless_present = "check_config"
    )]
    config: Option<PathBuf>,
    /// Validate FILE, print every error (object, field, reason) and exit.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
    /// Divide every protocol timer (idle timeouts, SNAT port release) by N.
    /// For labs and tests only.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    timer_scale: u32,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = &args.check_config {
        return check_config(path);
    }
    let path = args
        .config
        .clone()
        .expect("clap requires --config without --check-config");
    let cfg = match Config::load(&path) {
        Ok(c) => c,
        Err(errs) => {
            for e in &errs.0 {
                eprintln!("error: {e}");
            }
            eprintln!(
                "sluiced: {} error(s) in {}; not starting",
                errs.0.len(),
                path.display()
            );
            return ExitCode::from(2);
        }
    };
    init_logging(&cfg.control.log);
    match run(cfg, &args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn check_config(path: &std::path::Path) -> ExitCode {
    let loaded = Config::load(path).and_then(|c| {
        let (maps, _) = Services::load_nat_maps(&c, &c.control.state_dir);
        let (snat, _) = sluice_nat::load_assignments(&c, &c.control.state_dir);
        let mut errors = Services::compile(&c, &|_, _| true, &maps)
            .err()
            .unwrap_or_default();
        if let Err(e) = sluice_nat::blocks::plan(&c, &snat) {
            errors.extend(e);
        }
        if errors.is_empty() {
            Ok(c)
        } else {
            Err(sluice_core::config::ConfigErrors(errors))
        }
    });
    match loaded {
        Ok(c) => {
            println!(
                "{}: OK ({} ports, {} frontends, {} pools, {} lb rules, {} outbound rules)",
                path.display(),
                c.ports.len(),
                c.frontends.len(),
                c.pools.len(),
                c.lb_rules.len(),
                c.outbound_rules.len()
            );
            ExitCode::SUCCESS
        }
        Err(errs) => {
            for e in &errs.0 {
                eprintln!("error: {e}");
            }
            eprintln!("{}: {} error(s)", path.display(), errs.0.len());
            ExitCode::FAILURE
        }
    }
}

fn init_logging(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn run(cfg: Config, args: &Args) -> Result<()> {
    if args.timer_scale > 1 {
        warn!(
            scale = args.timer_scale,
            "--timer-scale divides every protocol timer: for labs and tests only"
        );
    }
    let services = compile_services(&cfg)?;
    let eal = Eal::init(&cfg.dpdk.eal_args).context("starting DPDK")?;
    info!(version = %eal.version(), "EAL up");
    let main = dpdk::main_lcore();
    for &w in &cfg.dpdk.workers {
        if w == main || !dpdk::lcore_enabled(w) {
            bail!("[dpdk] workers: lcore {w} is not a worker lcore of eal_args' core list (main lcore is {main})");
        }
    }
    let pool = Arc::new(
        Mempool::new("sluice_mbufs", cfg.dpdk.mbufs, -1).context("creating the mbuf pool")?,
    );
    let nworkers = cfg.dpdk.workers.len() as u16;
    let mut ports = Vec::new();
    for p in &cfg.ports {
        // One TX queue per worker, and one for control where the device
        // has it (else control sends through worker 0).
        let port = Port::start(&p.device, p.rx_queues, nworkers, 1, p.mtu, &pool)
            .with_context(|| format!("port \"{}\"", p.name))?;
        info!(port = %p.name, device = %port.name(), mac = %port.mac(), addresses = ?p.addresses, "port started");
        ports.push(port);
    }
    let macs: Vec<_> = ports.iter().map(Port::mac).collect();
    let shared = Shared::new(
        Dataplane::new(&cfg, &macs),
        services,
        cfg.flow_table.capacity,
        cfg.dpdk.workers.len(),
    );

    let mut workers: Vec<Worker> = (0..cfg.dpdk.workers.len())
        .map(|i| Worker {
            index: i,
            rx: Vec::new(),
            tx: ports.iter().map(|p| p.tx_queue(i as u16)).collect(),
            burst: usize::from(cfg.dpdk.burst),
        })
        .collect();
    let mut k = 0;
    for (pi, p) in cfg.ports.iter().enumerate() {
        for q in 0..p.rx_queues {
            let w = k % workers.len();
            workers[w].rx.push((pi as u16, ports[pi].rx_queue(q)));
            k += 1;
        }
    }
    for (w, &lcore) in workers.into_iter().zip(&cfg.dpdk.workers) {
        let queues: Vec<String> =
            w.rx.iter()
                .map(|(p, _)| cfg.ports[usize::from(*p)].name.clone())
                .collect();
        info!(worker = w.index, lcore, rx = ?queues, "launching worker");
        let s = shared.clone();
        dpdk::launch(lcore, move || w.run(s))?;
    }

    let term = Arc::new(AtomicBool::new(false));
    let hup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGTERM, term.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGINT, term.clone())?;
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hup.clone())?;

    let mut control = ControlPlane::new(
        shared.clone(),
        pool.clone(),
        CacheConfig::default(),
        args.timer_scale,
    );
    for (pi, port) in ports.iter().enumerate() {
        if port.tx_queue_count() > nworkers {
            control.own_tx(pi as u16, port.tx_queue(nworkers));
            info!(port = %cfg.ports[pi].name, queue = nworkers, "control sends on its own TX queue");
        }
    }
    for (pi, p) in cfg.ports.iter().enumerate() {
        if let Some(gw) = p.gateway {
            control.resolve(pi as u16, gw);
        }
    }
    wait_for_links(&ports, &cfg);
    info!(workers = cfg.dpdk.workers.len(), "sluiced ready");

    let clock = Instant::now();
    let sources = internal_sources_v4(&cfg);
    let mut prober = Prober::new(&cfg, &sources, seed(), 0);
    info!(
        probed = prober.status().len(),
        "health probes from {sources:?}, local ports {}-{}",
        PROBE_PORTS.start(),
        PROBE_PORTS.end()
    );

    let mut cfg = cfg;
    while !term.load(Ordering::Relaxed) {
        if hup.swap(false, Ordering::Relaxed) {
            let path = args.config.as_deref().expect("run() has --config");
            match reload(path, &cfg, &macs, &shared, &mut control, &prober) {
                Ok(new) => {
                    cfg = new;
                    prober.reconfigure(&cfg, clock.elapsed().as_millis() as u64);
                }
                Err(errors) => {
                    for e in &errors {
                        tracing::error!("reload: {e}");
                    }
                    control.reload_rejected();
                    warn!(
                        errors = errors.len(),
                        "reload rejected; the running config stays"
                    );
                }
            }
        }
        let busy = control.poll();
        let probed = run_probes(&cfg, &shared, &mut control, &mut prober, clock);
        if !busy && !probed {
            std::thread::sleep(Duration::from_micros(200));
        }
    }

    info!("stopping");
    shared.stop.store(true, Ordering::Relaxed);
    for &lcore in &cfg.dpdk.workers {
        let rc = dpdk::wait(lcore);
        if rc != 0 {
            warn!(lcore, rc, "worker returned an error");
        }
    }
    control.poll();
    while shared.to_prober.pop().is_some() {}
    report::print(&cfg, &shared, &control.counters(), &prober, &ports);
    drop(control);
    drop(ports);
    eal.cleanup();
    Ok(())
}

/// SIGHUP: reads `path` again and, when it is valid and changes nothing
/// that needs a restart, publishes its rules and frontends. Every error is
/// returned; then nothing that runs has changed.
fn reload(
    path: &std::path::Path,
    running: &Config,
    macs: &[sluice_core::wire::MacAddr],
    shared: &Shared,
    control: &mut ControlPlane,
    prober: &Prober,
) -> std::result::Result<Config, Vec<String>> {
    info!(config = %path.display(), "reload requested");
    let cfg =
        Config::load(path).map_err(|e| e.0.iter().map(|e| e.to_string()).collect::<Vec<_>>())?;
    // What the running data plane was built from: ports, queues, lcores,
    // mempool, table size and control endpoints need a restart.
    let mut errors = Vec::new();
    let same =
        |a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug| format!("{a:?}") == format!("{b:?}");
    let fixed = [
        ("[dpdk]", same(&running.dpdk, &cfg.dpdk)),
        ("[[port]]", same(&running.ports, &cfg.ports)),
        ("[flow_table]", same(&running.flow_table, &cfg.flow_table)),
        ("[control]", same(&running.control, &cfg.control)),
    ];
    for (object, unchanged) in fixed {
        if !unchanged {
            errors.push(format!(
                "{object}: changed; this takes a restart, not a reload"
            ));
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let running = shared.services.load();
    let snat_prev = sluice_nat::assignments(&running.snat);
    // Members keep the health their probe (by name) found.
    let eligible = |p: usize, a: IpAddr| prober.health(&cfg.probes[p].name, a).is_none_or(|h| h.up);
    let services = compile_rules(&cfg, &eligible, &running.nat_maps, &snat_prev)?;
    let n = services.services.len();
    control.reload(Dataplane::new(&cfg, macs), services);
    info!(services = n, "reload applied");
    Ok(cfg)
}

/// Compiles `cfg`'s inbound services and outbound rules from the previous
/// NAT pool port maps and SNAT block assignments, writes both back to the
/// state directory (new members' ports) and logs them. Every error is
/// returned.
fn compile_rules(
    cfg: &Config,
    eligible: &dyn Fn(usize, IpAddr) -> bool,
    maps: &BTreeMap<String, PortMap>,
    snat_prev: &BTreeMap<String, Assignment>,
) -> std::result::Result<Services, Vec<String>> {
    let compiled = Services::compile(cfg, eligible, maps);
    let planned = sluice_nat::compile(cfg, snat_prev, cfg.dpdk.workers.len());
    let (mut services, (snat, plans)) = match (compiled, planned) {
        (Ok(s), Ok(p)) => (s, p),
        (s, p) => {
            let errors = s.err().into_iter().chain(p.err()).flatten();
            return Err(errors.map(|e| e.to_string()).collect());
        }
    };
    services.snat = std::sync::Arc::new(snat);
    let dir = &cfg.control.state_dir;
    services
        .store_nat_maps(dir)
        .map_err(|e| vec![format!("writing NAT pool maps to {}: {e}", dir.display())])?;
    sluice_nat::store(dir, &plans)
        .map_err(|e| vec![format!("writing SNAT blocks to {}: {e}", dir.display())])?;
    for p in &plans {
        for (member, runs) in &p.members {
            for r in runs {
                info!(rule = %p.name, %member, address = %r.address, first = r.start, ports = r.len, "SNAT ports");
            }
        }
    }
    for (rule, map) in &services.nat_maps {
        for (member, port) in map {
            info!(rule, %member, port, "NAT pool port");
        }
    }
    Ok(services)
}

/// The rules at start: NAT pool port maps and SNAT blocks come from the
/// state directory.
fn compile_services(cfg: &Config) -> Result<Services> {
    let dir = &cfg.control.state_dir;
    let (maps, bad) = Services::load_nat_maps(cfg, dir);
    for line in bad {
        warn!(state_dir = %dir.display(), line, "skipping an unreadable NAT pool map line");
    }
    let (snat_prev, bad) = sluice_nat::load_assignments(cfg, dir);
    for (rule, line) in bad {
        warn!(state_dir = %dir.display(), rule, line, "skipping an unreadable SNAT block line");
    }
    // Members start up: probes take them out.
    let services = compile_rules(cfg, &|_, _| true, &maps, &snat_prev).map_err(|errs| {
        for e in &errs {
            tracing::error!("{e}");
        }
        anyhow::anyhow!("{} error(s) compiling the rules", errs.len())
    })?;
    info!(
        services = services.services.len(),
        capacity = cfg.flow_table.capacity,
        "rules compiled"
    );
    Ok(services)
}

/// Varies TCP sequence numbers and probe ports between runs.
fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    t ^ u64::from(std::process::id()) << 32
}

/// Probe replies per round handed from the workers' ring to the prober.
const PROBE_DRAIN: usize = 1024;

/// One round of health probing: replies in, probes run, probe packets out.
/// A member whose verdict changed republishes the rules with the new
/// health (same rule and member ids). True when replies came in.
fn run_probes(
    cfg: &Config,
    shared: &Shared,
    control: &mut ControlPlane,
    prober: &mut Prober,
    clock: Instant,
) -> bool {
    let mut busy = false;
    for _ in 0..PROBE_DRAIN {
        let Some(m) = shared.to_prober.pop() else {
            break;
        };
        busy = true;
        let frame = m.data();
        let Some(ip) = frame.get(14..) else { continue };
        // Trim Ethernet padding: the IP total length says where it ends.
        let total = ip
            .get(2..4)
            .map_or(0, |b| usize::from(u16::from_be_bytes([b[0], b[1]])));
        prober.push_rx(&ip[..total.min(ip.len())]);
    }
    let changes = prober.poll(clock.elapsed().as_millis() as u64);
    for c in &changes {
        let verdict = if c.up { "up" } else { "down" };
        info!(
            "member {} {verdict} (probe {}: {:?})",
            c.address, c.probe, c.outcome
        );
    }
    if !changes.is_empty() {
        let eligible = |p: usize, a: IpAddr| prober.eligible(p, a);
        let maps = shared.services.load().nat_maps.clone();
        match Services::compile(cfg, &eligible, &maps) {
            Ok(services) => control.publish_health(services),
            Err(errors) => {
                for e in errors {
                    tracing::error!("health: recompiling the rules: {e}");
                }
            }
        }
    }
    prober.drain_tx(|p| {
        control.send_ipv4(p);
    });
    busy
}

fn wait_for_links(ports: &[Port], cfg: &Config) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let down: Vec<&str> = ports
            .iter()
            .zip(&cfg.ports)
            .filter(|(p, _)| !p.link().up)
            .map(|(_, c)| c.name.as_str())
            .collect();
        if down.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            warn!(ports = ?down, "link still down; carrying on");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
